//! Direct callback (PRODUCT C5/C6), store layer: operators' settings, the link an
//! operator's call makes, the four modes at their edges on a virtual clock (one ms before
//! and at the expiry; mode 3 over weekends, holidays, a moved working Saturday and DST in
//! Europe/Budapest; mode 4 across DST), mode 1 used once even by two calls at once, a newer
//! call replacing the link, and missed calls marked for the operator. Store tests run on
//! SQLite and on PostgreSQL (see `common`). That only admins change settings is checked
//! at the web layer (`hotline-web`, console::direct).

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, TimeZone};
use hotline_core::callbacks::{CallbackSource, NewCallbackNote};
use hotline_core::direct::{DirectError, DirectForm, DirectLengths, DirectMode, binding_expiry};
use hotline_core::operators::NewOperator;
use hotline_core::store::Store;
use hotline_ivr::calendar::{Calendar, load_calendars, parse_calendar};

const T0: i64 = 1_780_000_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

const ANNA: &str = "+3612345601";
const BELA: &str = "+3612345602";
const CUSTOMER: &str = "+36301234567";

fn calendars() -> BTreeMap<String, Arc<Calendar>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ivr-flows/calendars");
    load_calendars(&dir).unwrap()
}

fn hungary() -> Arc<Calendar> {
    calendars().get("hungary").unwrap().clone()
}

/// Unix ms of a wall-clock time in Budapest (`"2026-03-27 15:00"`); DST by the zone.
fn bud(wall: &str) -> i64 {
    let naive = NaiveDateTime::parse_from_str(wall, "%Y-%m-%d %H:%M").unwrap();
    hungary()
        .timezone()
        .from_local_datetime(&naive)
        .single()
        .unwrap()
        .timestamp_millis()
}

/// Unix ms of a UTC time (`"2026-03-30T15:00:00Z"`).
fn utc(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

async fn add_operator(store: &Store, name: &str) {
    store
        .add_operator(&NewOperator {
            name,
            display_name: "",
            sip_user: name,
            realm: "hotline",
            ha1_md5: "x",
            ha1_sha256: "y",
            sip_digest: Default::default(),
            chat_capacity: 3,
            created_at_ms: T0,
        })
        .await
        .unwrap();
}

fn form<'a>(
    number: &'a str,
    mode: i64,
    lengths: DirectLengths,
    calendar: Option<&'a str>,
) -> DirectForm<'a> {
    DirectForm {
        own_number: number,
        mode,
        lengths,
        calendar,
    }
}

fn lengths(minutes: i64, hours: i64, days: i64) -> DirectLengths {
    DirectLengths {
        minutes,
        hours,
        days,
    }
}

/// anna (own number ANNA) in `mode` with the given lengths and the hungary calendar.
async fn anna_in(store: &Store, mode: i64, l: DirectLengths) {
    add_operator(store, "anna").await;
    store
        .set_direct_settings("anna", &form(ANNA, mode, l, Some("hungary")), T0)
        .await
        .unwrap();
}

async fn remember(store: &Store, operator: &str, customer: &str, now: i64) -> Option<String> {
    store
        .remember_direct_call(operator, customer, now, &calendars())
        .await
        .unwrap()
}

async fn route(store: &Store, called: &str, caller: &str, now: i64) -> Option<String> {
    store
        .direct_route(called, caller, now)
        .await
        .unwrap()
        .map(|r| r.operator)
}

on_both_databases!(
    settings_are_checked_and_numbers_unique,
    |store: Store| async move {
        // Off by default.
        assert_eq!(store.direct_settings("anna").await.unwrap(), None);
        assert!(matches!(
            store
                .set_direct_settings("anna", &form(ANNA, 2, DirectLengths::default(), None), T0)
                .await,
            Err(DirectError::UnknownOperator(_))
        ));
        add_operator(&store, "anna").await;
        add_operator(&store, "bela").await;
        let s = store
            .set_direct_settings(
                "anna",
                &form("06 1 234-5601", 2, lengths(15, 3, 10), None),
                T0,
            )
            .await
            .unwrap();
        assert_eq!(s.own_number, ANNA);
        assert_eq!(s.mode, DirectMode::Hours);
        assert_eq!(s.lengths, lengths(15, 3, 10));
        assert_eq!(s.calendar, None);
        assert_eq!(store.direct_settings("anna").await.unwrap(), Some(s));
        assert_eq!(
            store
                .own_number_owner("0612345601")
                .await
                .unwrap()
                .as_deref(),
            Some("anna")
        );
        assert_eq!(store.own_number_owner("+3612345699").await.unwrap(), None);
        assert_eq!(store.own_number_owner("anonymous").await.unwrap(), None);

        // The same number in another form for bela: refused, naming anna.
        let taken = store
            .set_direct_settings(
                "bela",
                &form("+36 1 234 5601", 1, DirectLengths::default(), None),
                T0,
            )
            .await;
        match taken {
            Err(DirectError::NumberTaken { number, operator }) => {
                assert_eq!((number.as_str(), operator.as_str()), (ANNA, "anna"));
            }
            other => panic!("expected NumberTaken, got {other:?}"),
        }
        // Bad input is refused with a message an admin can act on.
        for (f, what) in [
            (
                form("12ab", 1, DirectLengths::default(), None),
                "own number",
            ),
            (form(BELA, 0, DirectLengths::default(), None), "mode 0"),
            (form(BELA, 1, lengths(0, 24, 7), None), "minutes 0"),
            (form(BELA, 2, lengths(30, 169, 7), None), "hours 169"),
            (form(BELA, 4, lengths(30, 24, 0), Some("hungary")), "days 0"),
            (form(BELA, 3, DirectLengths::default(), None), "calendar"),
            (
                form(BELA, 4, DirectLengths::default(), Some("a/b")),
                "calendar name",
            ),
        ] {
            let e = store.set_direct_settings("bela", &f, T0).await.unwrap_err();
            assert!(e.to_string().contains(what), "{what}: {e}");
        }
        assert_eq!(store.direct_settings("bela").await.unwrap(), None);
        store
            .set_direct_settings(
                "bela",
                &form(BELA, 3, DirectLengths::default(), Some("hungary")),
                T0,
            )
            .await
            .unwrap();
        let all: Vec<String> = store
            .all_direct_settings()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.operator)
            .collect();
        assert_eq!(all, ["anna", "bela"]);

        // Off again: no own number, nothing to present.
        assert!(store.clear_direct_settings("anna").await.unwrap());
        assert!(!store.clear_direct_settings("anna").await.unwrap());
        assert_eq!(remember(&store, "anna", CUSTOMER, T0).await, None);
        assert_eq!(store.direct_binding(CUSTOMER).await.unwrap(), None);
    }
);

on_both_databases!(
    mode_1_is_the_next_call_only_within_minutes,
    |store: Store| async move {
        anna_in(&store, 1, lengths(30, 24, 7)).await;
        // The operator dialled the national form; the customer calls from the + form.
        assert_eq!(
            remember(&store, "anna", "06 30 123 4567", T0)
                .await
                .as_deref(),
            Some(ANNA)
        );
        let b = store.direct_binding(CUSTOMER).await.unwrap().unwrap();
        assert_eq!(
            (b.mode, b.expires_at_ms, b.used),
            (DirectMode::NextCall, T0 + 30 * MIN, false)
        );

        // Other numbers and withheld callers never match.
        assert_eq!(route(&store, BELA, CUSTOMER, T0 + MIN).await, None);
        assert_eq!(route(&store, ANNA, "+36309999999", T0 + MIN).await, None);
        assert_eq!(route(&store, ANNA, "anonymous", T0 + MIN).await, None);
        // One ms before the end: the call goes to anna and uses the link up.
        let last = T0 + 30 * MIN - 1;
        let r = store
            .direct_route("0612345601", CUSTOMER, last)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.operator.as_str(), r.mode),
            ("anna", DirectMode::NextCall)
        );
        assert_eq!(route(&store, ANNA, CUSTOMER, last).await, None);
        let b = store.direct_binding(CUSTOMER).await.unwrap().unwrap();
        assert_eq!((b.used, b.last_used_at_ms), (true, Some(last)));

        // A new call by anna makes a fresh link; at its end exactly it is over.
        remember(&store, "anna", CUSTOMER, T0 + HOUR).await;
        assert_eq!(
            route(&store, ANNA, CUSTOMER, T0 + HOUR + 30 * MIN).await,
            None
        );
        assert_eq!(
            route(&store, ANNA, CUSTOMER, T0 + HOUR + 30 * MIN - 1)
                .await
                .as_deref(),
            Some("anna")
        );
    }
);

on_both_databases!(
    mode_1_two_calls_at_once_only_one_gets_the_operator,
    |store: Store| async move {
        anna_in(&store, 1, lengths(30, 24, 7)).await;
        for round in 0..5 {
            let now = T0 + round * HOUR;
            remember(&store, "anna", CUSTOMER, now).await;
            let (a, b, c) = tokio::join!(
                route(&store, ANNA, CUSTOMER, now + MIN),
                route(&store, ANNA, CUSTOMER, now + MIN),
                route(&store, ANNA, CUSTOMER, now + MIN),
            );
            let winners = [a, b, c].into_iter().flatten().count();
            assert_eq!(winners, 1, "round {round}");
        }
    }
);

on_both_databases!(mode_2_is_any_call_within_hours, |store: Store| async move {
    anna_in(&store, 2, lengths(30, 2, 7)).await;
    remember(&store, "anna", CUSTOMER, T0).await;
    for at in [T0, T0 + HOUR, T0 + 2 * HOUR - 1, T0 + 2 * HOUR - 1] {
        assert_eq!(
            route(&store, ANNA, CUSTOMER, at).await.as_deref(),
            Some("anna")
        );
    }
    assert_eq!(route(&store, ANNA, CUSTOMER, T0 + 2 * HOUR).await, None);
    assert!(!store.direct_binding(CUSTOMER).await.unwrap().unwrap().used);
});

/// Mode 3 made at `made` (Budapest wall time) must end exactly at `end` (UTC): in force
/// one ms before, over at the end.
async fn mode_3_ends(store: &Store, customer: &str, made: &str, end: &str) {
    remember(store, "anna", customer, bud(made)).await;
    let b = store.direct_binding(customer).await.unwrap().unwrap();
    assert_eq!(b.expires_at_ms, utc(end), "made {made}");
    assert_eq!(
        route(store, ANNA, customer, utc(end) - 1).await.as_deref(),
        Some("anna"),
        "made {made}"
    );
    assert_eq!(
        route(store, ANNA, customer, utc(end)).await,
        None,
        "made {made}"
    );
}

on_both_databases!(
    mode_3_lasts_until_the_end_of_the_next_working_day,
    |store: Store| async move {
        anna_in(&store, 3, DirectLengths::default()).await;
        // A Tuesday call: Wednesday 17:00 (CET = UTC+1).
        mode_3_ends(
            &store,
            "+36301000001",
            "2026-03-03 10:00",
            "2026-03-04T16:00:00Z",
        )
        .await;
        // A call early on Monday, before opening, still counts Tuesday as the next day.
        mode_3_ends(
            &store,
            "+36301000002",
            "2026-03-09 07:00",
            "2026-03-10T16:00:00Z",
        )
        .await;
        // Friday after closing: over the weekend to Monday 17:00.
        mode_3_ends(
            &store,
            "+36301000003",
            "2026-03-06 15:00",
            "2026-03-09T16:00:00Z",
        )
        .await;
        // A Thursday: the next working day is Friday, which closes at 14:00.
        mode_3_ends(
            &store,
            "+36301000004",
            "2026-03-05 12:00",
            "2026-03-06T13:00:00Z",
        )
        .await;
        // Before Easter: Good Friday, the weekend and Easter Monday are skipped.
        mode_3_ends(
            &store,
            "+36301000005",
            "2026-04-02 10:00",
            "2026-04-07T15:00:00Z",
        )
        .await;
        // Friday before the spring-forward weekend: Monday 17:00 CEST = 15:00 UTC.
        mode_3_ends(
            &store,
            "+36301000006",
            "2026-03-27 10:00",
            "2026-03-30T15:00:00Z",
        )
        .await;
        // Thursday before the 23 October holiday and the fall-back Sunday: Monday 17:00 CET.
        mode_3_ends(
            &store,
            "+36301000007",
            "2026-10-22 16:00",
            "2026-10-26T16:00:00Z",
        )
        .await;
        // New Year's Eve: 1 and 2 January off, then the weekend: Monday 5 January.
        mode_3_ends(
            &store,
            "+36301000008",
            "2025-12-31 11:00",
            "2026-01-05T16:00:00Z",
        )
        .await;
        // Friday 9 January 2026: the moved working Saturday (Friday hours, until 14:00).
        mode_3_ends(
            &store,
            "+36301000009",
            "2026-01-09 16:00",
            "2026-01-10T13:00:00Z",
        )
        .await;
        // A call late on Sunday night counts from Sunday: Monday.
        mode_3_ends(
            &store,
            "+36301000010",
            "2026-03-08 23:30",
            "2026-03-09T16:00:00Z",
        )
        .await;
    }
);

on_both_databases!(
    mode_3_without_its_calendar_makes_no_link,
    |store: Store| async move {
        add_operator(&store, "anna").await;
        store
            .set_direct_settings(
                "anna",
                &form(ANNA, 3, DirectLengths::default(), Some("nowhere")),
                T0,
            )
            .await
            .unwrap();
        let e = store
            .remember_direct_call("anna", CUSTOMER, T0, &calendars())
            .await
            .unwrap_err();
        assert!(
            matches!(&e, DirectError::UnknownCalendar(n) if n == "nowhere"),
            "{e}"
        );
        assert_eq!(store.direct_binding(CUSTOMER).await.unwrap(), None);
        // Anonymous and malformed customers are refused too.
        assert!(matches!(
            store
                .remember_direct_call("anna", "anonymous", T0, &calendars())
                .await,
            Err(DirectError::AnonymousCustomer)
        ));
        assert!(matches!(
            store
                .remember_direct_call("anna", "alice", T0, &calendars())
                .await,
            Err(DirectError::BadCustomerNumber { .. })
        ));
    }
);

on_both_databases!(
    mode_4_counts_days_on_the_calendars_clock,
    |store: Store| async move {
        anna_in(&store, 4, lengths(30, 24, 7)).await;
        // Across the spring-forward: 10:00 CET → 10:00 CEST a week later, an hour short of
        // 7 × 24 h.
        let made = bud("2026-03-25 10:00");
        remember(&store, "anna", CUSTOMER, made).await;
        let end = utc("2026-04-01T08:00:00Z");
        assert_eq!(end - made, 7 * DAY - HOUR);
        for at in [made + 6 * DAY, end - 1, end - 1] {
            assert_eq!(
                route(&store, ANNA, CUSTOMER, at).await.as_deref(),
                Some("anna")
            );
        }
        assert_eq!(route(&store, ANNA, CUSTOMER, end).await, None);

        // Across the fall-back: an hour longer than 7 × 24 h.
        let made = bud("2026-10-20 12:00");
        remember(&store, "anna", CUSTOMER, made).await;
        let end = utc("2026-10-27T11:00:00Z");
        assert_eq!(end - made, 7 * DAY + HOUR);
        assert_eq!(
            route(&store, ANNA, CUSTOMER, end - 1).await.as_deref(),
            Some("anna")
        );
        assert_eq!(route(&store, ANNA, CUSTOMER, end).await, None);
    }
);

on_both_databases!(
    a_newer_call_by_another_operator_replaces_the_link,
    |store: Store| async move {
        anna_in(&store, 2, lengths(30, 24, 7)).await;
        add_operator(&store, "bela").await;
        store
            .set_direct_settings("bela", &form(BELA, 2, lengths(30, 24, 7), None), T0)
            .await
            .unwrap();
        remember(&store, "anna", CUSTOMER, T0).await;
        assert_eq!(
            remember(&store, "bela", CUSTOMER, T0 + MIN)
                .await
                .as_deref(),
            Some(BELA)
        );
        assert_eq!(route(&store, ANNA, CUSTOMER, T0 + 2 * MIN).await, None);
        assert_eq!(
            route(&store, BELA, CUSTOMER, T0 + 2 * MIN).await.as_deref(),
            Some("bela")
        );
        // anna's call that started earlier but is remembered late doesn't take it back.
        remember(&store, "anna", CUSTOMER, T0 + MIN - 1).await;
        let b = store.direct_binding(CUSTOMER).await.unwrap().unwrap();
        assert_eq!((b.operator.as_str(), b.own_number.as_str()), ("bela", BELA));
        // An operator without an own number leaves the link alone.
        add_operator(&store, "cili").await;
        assert_eq!(remember(&store, "cili", CUSTOMER, T0 + 3 * MIN).await, None);
        assert_eq!(
            route(&store, BELA, CUSTOMER, T0 + 4 * MIN).await.as_deref(),
            Some("bela")
        );
    }
);

on_both_databases!(
    changing_or_removing_the_own_number_ends_links,
    |store: Store| async move {
        anna_in(&store, 2, lengths(30, 24, 7)).await;
        remember(&store, "anna", CUSTOMER, T0).await;
        // A new mode leaves the link as it was made.
        store
            .set_direct_settings("anna", &form(ANNA, 1, lengths(5, 24, 7), None), T0 + MIN)
            .await
            .unwrap();
        let b = store.direct_binding(CUSTOMER).await.unwrap().unwrap();
        assert_eq!(
            (b.mode, b.expires_at_ms),
            (DirectMode::Hours, T0 + 24 * HOUR)
        );
        assert_eq!(
            route(&store, ANNA, CUSTOMER, T0 + HOUR).await.as_deref(),
            Some("anna")
        );
        // A new own number: the old one no longer leads to anna.
        store
            .set_direct_settings(
                "anna",
                &form("+3612345609", 2, lengths(30, 24, 7), None),
                T0 + 2 * MIN,
            )
            .await
            .unwrap();
        assert_eq!(route(&store, ANNA, CUSTOMER, T0 + HOUR).await, None);
        assert_eq!(store.direct_binding(CUSTOMER).await.unwrap(), None);
        // Off: links made with the current number end too.
        remember(&store, "anna", CUSTOMER, T0 + 3 * MIN).await;
        assert_eq!(
            route(&store, "+3612345609", CUSTOMER, T0 + HOUR)
                .await
                .as_deref(),
            Some("anna")
        );
        store.clear_direct_settings("anna").await.unwrap();
        assert_eq!(
            route(&store, "+3612345609", CUSTOMER, T0 + HOUR).await,
            None
        );
        assert_eq!(store.own_number_owner("+3612345609").await.unwrap(), None);
    }
);

on_both_databases!(
    a_missed_direct_call_is_marked_for_the_operator,
    |store: Store| async move {
        let entry = store
            .note_callback(&NewCallbackNote {
                number: CUSTOMER,
                queue: Some("support"),
                source: CallbackSource::Missed,
                promised_at_ms: None,
                call_id: Some("call-1"),
                now_ms: T0,
            })
            .await
            .unwrap();
        assert_eq!(store.callback_for_operator(entry.id).await.unwrap(), None);
        assert!(
            store
                .mark_callback_for_operator(entry.id, "anna")
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .callback_for_operator(entry.id)
                .await
                .unwrap()
                .as_deref(),
            Some("anna")
        );
        assert!(
            !store
                .mark_callback_for_operator(entry.id + 1000, "anna")
                .await
                .unwrap()
        );
        assert_eq!(
            store.callback_for_operator(entry.id + 1000).await.unwrap(),
            None
        );
    }
);

// ---- the pure expiry function (no database) -------------------------------------------

#[test]
fn expiry_needs_a_calendar_for_modes_3_and_4_only() {
    let l = lengths(30, 2, 7);
    assert_eq!(
        binding_expiry(DirectMode::NextCall, &l, T0, None).unwrap(),
        T0 + 30 * MIN
    );
    assert_eq!(
        binding_expiry(DirectMode::Hours, &l, T0, None).unwrap(),
        T0 + 2 * HOUR
    );
    for mode in [DirectMode::NextWorkday, DirectMode::Days] {
        assert!(matches!(
            binding_expiry(mode, &l, T0, None),
            Err(DirectError::CalendarNeeded(_))
        ));
    }
    assert!(matches!(
        binding_expiry(DirectMode::Hours, &lengths(30, 0, 7), T0, None),
        Err(DirectError::BadHours(0))
    ));
}

#[test]
fn a_calendar_never_open_has_no_next_working_day() {
    let closed = parse_calendar(
        Path::new("closed.toml"),
        "timezone = \"Europe/Budapest\"\n[hours]\n",
    )
    .unwrap();
    assert!(matches!(
        binding_expiry(
            DirectMode::NextWorkday,
            &DirectLengths::default(),
            T0,
            Some(&closed)
        ),
        Err(DirectError::NoWorkingDay(_))
    ));
}

#[test]
fn overnight_hours_end_the_next_morning_and_a_spring_gap_ends_at_the_jump() {
    // Sunday open 22:00–06:00 only: a Saturday call ends Monday 06:00.
    let night = parse_calendar(
        Path::new("night.toml"),
        "timezone = \"Europe/Budapest\"\n[hours]\nsun = [\"22:00-06:00\"]\n",
    )
    .unwrap();
    let made = bud("2026-03-07 12:00");
    assert_eq!(
        binding_expiry(
            DirectMode::NextWorkday,
            &DirectLengths::default(),
            made,
            Some(&night)
        )
        .unwrap(),
        utc("2026-03-09T05:00:00Z")
    );
    // Closing at 02:30 on the spring-forward night (02:00 → 03:00) ends at the jump.
    let gap = parse_calendar(
        Path::new("gap.toml"),
        "timezone = \"Europe/Budapest\"\n[hours]\nsun = [\"00:00-02:30\"]\n",
    )
    .unwrap();
    let made = bud("2026-03-28 12:00");
    assert_eq!(
        binding_expiry(
            DirectMode::NextWorkday,
            &DirectLengths::default(),
            made,
            Some(&gap)
        )
        .unwrap(),
        utc("2026-03-29T01:00:00Z")
    );
}
