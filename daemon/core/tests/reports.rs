//! Call reports read from the store (`Store::calls_started_in`, paged) and summed by
//! `hotline_core::reports`, on SQLite and on PostgreSQL (see `common`), against figures
//! computed by hand; the day is Budapest's 25-hour day.

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use chrono::NaiveDate;
use hotline_core::cdr::{
    CallEnd, CallFilter, CallLeg, CallRecord, CallStart, EndReason, LegOutcome, Service,
};
use hotline_core::reports::{
    CallFigures, OperatorFigures, ReportOptions, day_bounds, day_report, range_report,
};
use hotline_core::store::Store;
use hotline_core::testing::{call_end, call_start, store_finished_call};
use hotline_ivr::window::DEFAULT_TIME_ZONE as BUDAPEST;

/// Unix ms of a UTC wall time.
fn utc(s: &str) -> i64 {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

/// A leg to `operator` ringing at `rang_ms` for `ring_s`; answered: talking `talk_s`
/// with `hold_s` of it on hold.
fn leg(
    operator: &str,
    rang_ms: i64,
    ring_s: i64,
    answered: bool,
    talk_s: i64,
    hold_s: i64,
) -> CallLeg {
    let answered_at_ms = answered.then_some(rang_ms + ring_s * 1000);
    CallLeg {
        operator: Some(operator.into()),
        number: None,
        rang_at_ms: rang_ms,
        answered_at_ms,
        ended_at_ms: answered_at_ms.unwrap_or(rang_ms + ring_s * 1000) + talk_s * 1000,
        outcome: if answered {
            LegOutcome::Answered
        } else {
            LegOutcome::NoAnswer
        },
        hold_ms: hold_s * 1000,
        transferred_to: None,
    }
}

/// A call that started at `start` (UTC), waited `wait_s` in `queue`, and ended as
/// `reason` after its legs (or its wait).
async fn call(
    store: &Store,
    n: u32,
    start: &str,
    queue: Option<&str>,
    wait_s: i64,
    reason: EndReason,
    legs: Vec<CallLeg>,
) {
    let started = utc(start);
    let ended = legs
        .iter()
        .map(|l| l.ended_at_ms)
        .max()
        .unwrap_or(started + wait_s * 1000);
    let start = CallStart {
        ..call_start(&format!("call-{n}"), started)
    };
    let end = CallEnd {
        reason,
        operator: legs
            .iter()
            .rev()
            .find(|l| l.answered_at_ms.is_some())
            .and_then(|l| l.operator.clone()),
        service: Service {
            queue: queue.map(String::from),
            wait_ms: queue.map(|_| wait_s * 1000),
            hold_ms: legs.iter().map(|l| l.hold_ms).sum(),
            legs,
        },
        ..call_end(ended)
    };
    store_finished_call(store, &start, &end).await.unwrap();
}

/// 25 October 2026 in Budapest: 03:00 CEST becomes 02:00 CET at 01:00 UTC.
async fn seed(store: &Store) {
    use EndReason::*;
    // 02:10 CEST: sales, answered by anna after 8 s of waiting, 90 s talk, 15 s of it
    // on hold.
    let s = utc("2026-10-25 00:10:00");
    call(
        store,
        1,
        "2026-10-25 00:10:00",
        Some("sales"),
        8,
        CallerHangup,
        vec![leg("anna", s + 3000, 5, true, 90, 15)],
    )
    .await;
    // 02:20 CEST: sales, bela missed it, anna took it after 35 s and passed it to bela's
    // queue; 40 s talk.
    let s = utc("2026-10-25 00:20:00");
    let mut passed = leg("anna", s + 25_000, 10, true, 40, 0);
    passed.transferred_to = Some("support".into());
    call(
        store,
        2,
        "2026-10-25 00:20:00",
        Some("sales"),
        35,
        OperatorHangup,
        vec![leg("bela", s + 5000, 20, false, 0, 0), passed],
    )
    .await;
    // 02:15 CET (the second 02:00 hour): support, the caller gave up after 45 s.
    call(
        store,
        3,
        "2026-10-25 01:15:00",
        Some("support"),
        45,
        Cancelled,
        vec![],
    )
    .await;
    // 02:40 CET: support, hung up after 2 s: a short abandon.
    call(
        store,
        4,
        "2026-10-25 01:40:00",
        Some("support"),
        2,
        CallerHangup,
        vec![],
    )
    .await;
    // 14:00 CET: support, bela answered at once (1 s), 120 s.
    let s = utc("2026-10-25 13:00:00");
    call(
        store,
        5,
        "2026-10-25 13:00:00",
        Some("support"),
        1,
        CallerHangup,
        vec![leg("bela", s, 1, true, 120, 0)],
    )
    .await;
    // 15:00 CET: support timed out, the flow hung up: other unanswered.
    call(
        store,
        6,
        "2026-10-25 14:00:00",
        Some("support"),
        180,
        FlowHangup,
        vec![],
    )
    .await;
    // An IVR-only call, and one on each neighbouring day (00:00 CET on the 26th is
    // 23:00 UTC).
    call(store, 7, "2026-10-25 10:00:00", None, 0, FlowHangup, vec![]).await;
    call(
        store,
        8,
        "2026-10-24 21:59:59",
        Some("sales"),
        30,
        CallerHangup,
        vec![],
    )
    .await;
    call(
        store,
        9,
        "2026-10-25 23:00:00",
        Some("sales"),
        30,
        CallerHangup,
        vec![],
    )
    .await;
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 25).unwrap()
}

on_both_databases!(a_dst_day_from_the_store, |store: Store| async move {
    seed(&store).await;
    let (since, until) = day_bounds(&BUDAPEST, day()).unwrap();
    assert_eq!(until - since, 25 * 3_600_000);
    let (calls, more) = store.calls_started_in(since, until).await.unwrap();
    assert!(!more);
    assert_eq!(calls.len(), 7, "the day's calls, IVR-only included");
    // What the reports read of them is what the full records hold.
    let full = store
        .calls_matching(&CallFilter {
            since_ms: Some(since),
            until_ms: Some(until),
            limit: 100,
            ..CallFilter::default()
        })
        .await
        .unwrap();
    let read = |c: &CallRecord| {
        (
            c.id,
            c.started_at_ms,
            c.answered_at_ms,
            c.ended_at_ms,
            c.end_reason.clone(),
            c.operator.clone(),
            c.service.clone(),
        )
    };
    assert_eq!(
        calls.iter().map(read).collect::<Vec<_>>(),
        full.iter().map(read).collect::<Vec<_>>()
    );
    let r = day_report(&calls, &BUDAPEST, day(), &ReportOptions::default()).unwrap();
    assert_eq!(r.hours.len(), 25);

    // Calls 1 and 2: waits 8 and 35 s (one within 20 s), talk 90-15 + 40, hold 15,
    // one transfer.
    let first = &r
        .hours
        .iter()
        .find(|h| h.label == "02:00 +02:00")
        .unwrap()
        .figures;
    assert_eq!(
        *first,
        CallFigures {
            offered: 2,
            answered: 2,
            answered_in_target: 1,
            transfers: 1,
            answer_wait_ms: 43_000,
            talk_ms: 115_000,
            hold_ms: 15_000,
            ..CallFigures::default()
        }
    );
    assert_eq!(first.service_level(), Some(50.0));
    let second = &r
        .hours
        .iter()
        .find(|h| h.label == "02:00 +01:00")
        .unwrap()
        .figures;
    assert_eq!(
        (
            second.offered,
            second.abandoned,
            second.short_abandoned,
            second.answered
        ),
        (2, 1, 1, 0)
    );
    // The short abandon is left out: 0 of 1.
    assert_eq!(second.service_level(), Some(0.0));

    assert_eq!(
        r.total,
        CallFigures {
            offered: 6,
            answered: 3,
            answered_in_target: 2,
            abandoned: 1,
            short_abandoned: 1,
            other_unanswered: 1,
            transfers: 1,
            answer_wait_ms: 44_000,
            talk_ms: 235_000,
            hold_ms: 15_000,
        }
    );
    // 2 within the target of 5 (6 offered less the short abandon).
    assert_eq!(r.total.service_level(), Some(40.0));
    let sales = &r.queues["sales"];
    assert_eq!(
        (sales.offered, sales.answered, sales.average_answer_secs()),
        (2, 2, Some(21.5))
    );
    let support = &r.queues["support"];
    assert_eq!(
        (
            support.offered,
            support.answered,
            support.abandoned,
            support.short_abandoned,
            support.other_unanswered
        ),
        (4, 1, 1, 1, 1)
    );
    assert_eq!(support.service_level(), Some(100.0 / 3.0));
    assert_eq!(
        r.operators["anna"],
        OperatorFigures {
            offered: 2,
            answered: 2,
            missed: 0,
            ring_ms: 15_000,
            talk_ms: 115_000,
            hold_ms: 15_000,
            transfers: 1,
        }
    );
    assert_eq!(
        r.operators["bela"],
        OperatorFigures {
            offered: 2,
            answered: 1,
            missed: 1,
            ring_ms: 1000,
            talk_ms: 120_000,
            hold_ms: 0,
            transfers: 0,
        }
    );

    // The three days around it: calls 8 and 9 are the neighbours' abandons.
    let from = day().pred_opt().unwrap();
    let to = day().succ_opt().unwrap();
    let (since, _) = day_bounds(&BUDAPEST, from).unwrap();
    let (_, until) = day_bounds(&BUDAPEST, to).unwrap();
    let (calls, _) = store.calls_started_in(since, until).await.unwrap();
    let range = range_report(&calls, &BUDAPEST, from, to, &ReportOptions::default()).unwrap();
    let per_day: Vec<_> = range
        .days
        .iter()
        .map(|(_, f)| (f.offered, f.abandoned))
        .collect();
    assert_eq!(per_day, [(1, 1), (6, 1), (1, 1)]);
    assert_eq!(range.queues["sales"].abandoned, 2);
});

on_both_databases!(
    many_calls_are_read_page_by_page,
    |store: Store| async move {
        // More than a page (500) of calls, one a second from 10:00 CET: the even ones
        // anna answered after 3 s, the odd ones short abandons. In their midst, a call of
        // the next day that rang bela: its leg must not be read with the page.
        let start = utc("2026-12-07 09:00:00");
        for n in 0..520 {
            let at = start + n * 1000;
            let legs = if n % 2 == 0 {
                vec![leg("anna", at + 1000, 2, true, 10, 0)]
            } else {
                Vec::new()
            };
            let end = CallEnd {
                service: Service {
                    queue: Some("sales".into()),
                    wait_ms: Some(3000),
                    hold_ms: 0,
                    legs,
                },
                ..call_end(at + 13_000)
            };
            store_finished_call(&store, &call_start(&format!("c{n}"), at), &end)
                .await
                .unwrap();
            if n == 250 {
                call(
                    &store,
                    9999,
                    "2026-12-08 09:00:00",
                    Some("sales"),
                    1,
                    EndReason::CallerHangup,
                    vec![leg("bela", utc("2026-12-08 09:00:00"), 1, true, 10, 0)],
                )
                .await;
            }
        }
        let date = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let (since, until) = day_bounds(&BUDAPEST, date).unwrap();
        let (calls, more) = store.calls_started_in(since, until).await.unwrap();
        assert_eq!((calls.len(), more), (520, false));
        let r = day_report(&calls, &BUDAPEST, date, &ReportOptions::default()).unwrap();
        assert_eq!(
            (r.total.offered, r.total.answered, r.total.short_abandoned),
            (520, 260, 260)
        );
        let ten = &r.hours.iter().find(|h| h.label == "10:00").unwrap().figures;
        assert_eq!(ten.offered, 520);
        assert_eq!(
            (r.operators["anna"].offered, r.operators["anna"].talk_ms),
            (260, 2_600_000)
        );
        assert!(!r.operators.contains_key("bela"));
    }
);

// Chats of a day per queue: three in support (one answered in 40 s and handled for 5 min
// with the category "Order", one accepted and still open, one never accepted), one in
// sales answered in 10 s and wrapped up "Complaint"; one the day before. By hand:
// support offered 3, accepted 2, first response 40 s (one reply), handled 1 of 300 s;
// sales 1, 1, 10 s, 60 s.
on_both_databases!(chats_of_a_day_per_queue, |store: Store| async move {
    use common::chat::{SEC, accepted_chat, agent, op, waiting_chat};
    use hotline_core::chat::{EventKind, NewEvent};
    use hotline_core::reports::chat_total;
    let day = utc("2026-12-07 00:00:00");
    let anna = agent(&store, "anna", 5).await;
    let reply = |text: &str| NewEvent::new(EventKind::Message, op(anna), text);
    // Answered 40 s after the start (the acceptance is at +1 s), ended 5 min later.
    let c1 = accepted_chat(&store, "support", "anna", anna, day + 3600 * SEC).await;
    let mut private = reply("note to self");
    private.private = true;
    store
        .add_chat_event(c1.id, &private, day + 3610 * SEC)
        .await
        .unwrap();
    store
        .add_chat_event(c1.id, &reply("Hello"), day + 3640 * SEC)
        .await
        .unwrap();
    store
        .add_chat_event(c1.id, &reply("Again"), day + 3650 * SEC)
        .await
        .unwrap();
    store
        .end_chat(c1.id, op(anna), day + 3601 * SEC + 300 * SEC)
        .await
        .unwrap();
    store
        .wrap_up_chat(c1.id, anna, "Order", "", day + 3950 * SEC)
        .await
        .unwrap();
    // Accepted, no reply yet, still open; and one nobody took.
    accepted_chat(&store, "support", "anna", anna, day + 7200 * SEC).await;
    waiting_chat(&store, "support", day + 7300 * SEC).await;
    let c4 = accepted_chat(&store, "sales", "anna", anna, day + 9000 * SEC).await;
    store
        .add_chat_event(c4.id, &reply("Hi"), day + 9010 * SEC)
        .await
        .unwrap();
    store
        .end_chat(c4.id, op(anna), day + 9061 * SEC)
        .await
        .unwrap();
    store
        .wrap_up_chat(c4.id, anna, "Complaint", "", day + 9070 * SEC)
        .await
        .unwrap();
    waiting_chat(&store, "sales", day - 60 * SEC).await;

    let r = store.chat_report(day, day + 86_400 * SEC).await.unwrap();
    let support = &r["support"];
    assert_eq!(
        (
            support.offered,
            support.accepted,
            support.responded,
            support.handled
        ),
        (3, 2, 1, 1)
    );
    assert_eq!(support.average_first_response_secs(), Some(40.0));
    assert_eq!(support.average_handling_secs(), Some(300.0));
    assert_eq!(support.categories_text(), "Order 1");
    let sales = &r["sales"];
    assert_eq!((sales.offered, sales.accepted), (1, 1));
    assert_eq!(sales.average_first_response_secs(), Some(10.0));
    assert_eq!(sales.average_handling_secs(), Some(60.0));
    let total = chat_total(&r);
    assert_eq!((total.offered, total.accepted), (4, 3));
    assert_eq!(total.average_first_response_secs(), Some(25.0));
    assert_eq!(total.categories_text(), "Complaint 1, Order 1");
});
