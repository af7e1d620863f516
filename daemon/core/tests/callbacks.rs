//! The shared callback list: one entry per number, anonymous callers ignored, concurrent
//! notes and claims, claim expiry and hiding on a virtual clock, outcomes and history.
//! Every test runs on SQLite and on PostgreSQL (see `common`).

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use hotline_core::callbacks::{
    AttemptOutcome, CallbackEntry, CallbackError, CallbackSource, EntryState, NewCallbackNote,
};
use hotline_core::store::Store;

const T0: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const CLAIM: i64 = 10 * MIN;
const HIDE: i64 = 30 * MIN;

fn missed(number: &str, now_ms: i64) -> NewCallbackNote<'_> {
    NewCallbackNote {
        number,
        queue: Some("sales"),
        source: CallbackSource::Missed,
        promised_at_ms: None,
        call_id: None,
        now_ms,
    }
}

async fn note(store: &Store, n: NewCallbackNote<'_>) -> CallbackEntry {
    store.note_callback(&n).await.unwrap()
}

async fn listed(store: &Store, now_ms: i64) -> Vec<i64> {
    store
        .callback_list(now_ms, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect()
}

on_both_databases!(one_entry_per_number, |store: Store| async move {
    let a = note(&store, missed("+36301111111", T0)).await;
    assert_eq!(
        (a.count, a.first_at_ms, a.last_at_ms, a.state),
        (1, T0, T0, EntryState::Open)
    );
    assert_eq!(a.queue.as_deref(), Some("sales"));
    assert_eq!(a.source, CallbackSource::Missed);
    assert_eq!(a.promised_at_ms, None);

    // A callback request from the same number later: same entry, updated.
    let b = note(
        &store,
        NewCallbackNote {
            number: " +36301111111 ",
            queue: Some("support"),
            source: CallbackSource::Ivr,
            promised_at_ms: Some(T0 + 3 * HOUR),
            call_id: Some("call-2"),
            now_ms: T0 + HOUR,
        },
    )
    .await;
    assert_eq!(b.id, a.id);
    assert_eq!((b.count, b.first_at_ms, b.last_at_ms), (2, T0, T0 + HOUR));
    assert_eq!(b.queue.as_deref(), Some("support"));
    assert_eq!(b.source, CallbackSource::Ivr);
    assert_eq!(b.call_id.as_deref(), Some("call-2"));
    assert_eq!(b.promised_at_ms, Some(T0 + 3 * HOUR));

    // A later, later promise: the earliest promise is kept (keeping it keeps both).
    let c = note(
        &store,
        NewCallbackNote {
            number: "+36301111111",
            queue: None,
            source: CallbackSource::Ivr,
            promised_at_ms: Some(T0 + 5 * HOUR),
            call_id: None,
            now_ms: T0 + 2 * HOUR,
        },
    )
    .await;
    assert_eq!((c.id, c.count, c.last_at_ms), (a.id, 3, T0 + 2 * HOUR));
    assert_eq!(c.promised_at_ms, Some(T0 + 3 * HOUR));
    // No queue or call id in the note: the older ones stay.
    assert_eq!(c.queue.as_deref(), Some("support"));
    assert_eq!(c.call_id.as_deref(), Some("call-2"));

    // An earlier promise replaces it; a missed call without one leaves it.
    let d = note(
        &store,
        NewCallbackNote {
            promised_at_ms: Some(T0 + 2 * HOUR + 30 * MIN),
            ..missed("+36301111111", T0 + 2 * HOUR)
        },
    )
    .await;
    assert_eq!(d.promised_at_ms, Some(T0 + 2 * HOUR + 30 * MIN));
    let e = note(&store, missed("+36301111111", T0 + 2 * HOUR + MIN)).await;
    assert_eq!(e.promised_at_ms, Some(T0 + 2 * HOUR + 30 * MIN));
    assert_eq!(e.count, 5);

    // Another number is another entry.
    let other = note(&store, missed("+36302222222", T0 + MIN)).await;
    assert_ne!(other.id, a.id);
    assert_eq!(listed(&store, T0 + 3 * HOUR).await.len(), 2);
});

on_both_databases!(
    anonymous_callers_are_not_entries,
    |store: Store| async move {
        for number in ["anonymous", "Anonymous", "", "   "] {
            let err = store.note_callback(&missed(number, T0)).await.unwrap_err();
            assert!(matches!(err, CallbackError::Anonymous), "{number:?}: {err}");
        }
        let err = store
            .note_callback(&missed("+3630\n1111111", T0))
            .await
            .unwrap_err();
        assert!(matches!(err, CallbackError::Invalid(_)), "{err}");
        assert!(listed(&store, T0).await.is_empty());
    }
);

on_both_databases!(list_order_and_fields, |store: Store| async move {
    // Oldest promise first, else the first call.
    let plain = note(&store, missed("+36301000001", T0 + 10 * MIN)).await;
    let promised_late = note(
        &store,
        NewCallbackNote {
            promised_at_ms: Some(T0 + HOUR),
            ..missed("+36301000002", T0)
        },
    )
    .await;
    let promised_early = note(
        &store,
        NewCallbackNote {
            promised_at_ms: Some(T0 + 5 * MIN),
            ..missed("+36301000003", T0 + 2 * MIN)
        },
    )
    .await;
    let list = store.callback_list(T0 + 20 * MIN, 100).await.unwrap();
    let ids: Vec<i64> = list.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![promised_early.id, plain.id, promised_late.id]);
    assert_eq!(list[0], promised_early);
    assert_eq!(list[0].attempts, 0);
    assert_eq!(store.callback_list(T0, 2).await.unwrap().len(), 2);
});

on_both_databases!(concurrent_notes_make_one_entry, |store: Store| async move {
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .note_callback(&missed("+36305555555", T0 + i))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let list = store.callback_list(T0 + MIN, 100).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].count, 10);
    assert_eq!((list[0].first_at_ms, list[0].last_at_ms), (T0, T0 + 9));
});

on_both_databases!(one_claim_wins, |store: Store| async move {
    let e = note(&store, missed("+36306666666", T0)).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_callback(e.id, &format!("op{i}"), CLAIM, T0 + MIN)
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(entry) => winners.push(entry.claimed_by.unwrap()),
            Err(CallbackError::AlreadyClaimed { by }) => losers.push(by),
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(losers.len(), 19);
    assert!(losers.iter().all(|by| *by == winners[0]), "{losers:?}");
    // One attempt started, by the winner.
    let history = store.callback_history(e.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].operator, winners[0]);
    assert_eq!((history[0].outcome, history[0].ended_at_ms), (None, None));
});

on_both_databases!(claims_hide_and_expire, |store: Store| async move {
    let e = note(&store, missed("+36307777777", T0)).await;
    let other = note(&store, missed("+36307777778", T0)).await;
    let claimed = store.claim_callback(e.id, "anna", CLAIM, T0).await.unwrap();
    assert_eq!(claimed.claimed_by.as_deref(), Some("anna"));
    assert_eq!(claimed.claim_expires_at_ms, Some(T0 + CLAIM));
    assert!(!claimed.is_listed_at(T0));

    // Gone from everyone's list while the claim lasts, to the millisecond.
    assert_eq!(listed(&store, T0).await, vec![other.id]);
    assert_eq!(listed(&store, T0 + CLAIM - 1).await, vec![other.id]);
    let err = store
        .claim_callback(e.id, "bela", CLAIM, T0 + CLAIM - 1)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallbackError::AlreadyClaimed { by } if by == "anna"),
        "{err}"
    );
    // A new call from the number doesn't bring it back while it is being called.
    note(&store, missed("+36307777777", T0 + MIN)).await;
    assert_eq!(listed(&store, T0 + MIN).await, vec![other.id]);

    // Anna vanished: the entry comes back, and Bela may take it.
    let back = listed(&store, T0 + CLAIM).await;
    assert!(back.contains(&e.id), "{back:?}");
    let bela = store
        .claim_callback(e.id, "bela", CLAIM, T0 + CLAIM)
        .await
        .unwrap();
    assert_eq!(bela.claimed_by.as_deref(), Some("bela"));
    assert_eq!(bela.claimed_at_ms, Some(T0 + CLAIM));
    // Anna's attempt ended when Bela took over, without an outcome.
    let history = store.callback_history(e.id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        (
            history[0].operator.as_str(),
            history[0].outcome,
            history[0].ended_at_ms
        ),
        ("anna", None, Some(T0 + CLAIM))
    );
    assert_eq!(
        (history[1].operator.as_str(), history[1].ended_at_ms),
        ("bela", None)
    );
    // And Anna may no longer finish it.
    let err = store
        .finish_callback(
            e.id,
            "anna",
            AttemptOutcome::Success,
            None,
            HIDE,
            T0 + CLAIM + 1,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallbackError::NotClaimer { by: Some(by) } if by == "bela"),
        "{err}"
    );

    // The claimer may extend the claim; it stays one attempt.
    let again = store
        .claim_callback(e.id, "bela", CLAIM, T0 + CLAIM + 5 * MIN)
        .await
        .unwrap();
    assert_eq!(again.claim_expires_at_ms, Some(T0 + 2 * CLAIM + 5 * MIN));
    assert_eq!(again.claimed_at_ms, Some(T0 + CLAIM));
    assert_eq!(store.callback_history(e.id).await.unwrap().len(), 2);
    assert_eq!(listed(&store, T0 + 2 * CLAIM + 1).await, vec![other.id]);

    let err = store
        .claim_callback(999_999, "bela", CLAIM, T0)
        .await
        .unwrap_err();
    assert!(matches!(err, CallbackError::NotFound), "{err}");
});

on_both_databases!(
    failure_hides_for_exactly_hide_ms,
    |store: Store| async move {
        let e = note(&store, missed("+36308888888", T0)).await;
        store.claim_callback(e.id, "anna", CLAIM, T0).await.unwrap();
        let t = T0 + 2 * MIN;

        // Only the claimer may finish.
        let err = store
            .finish_callback(e.id, "bela", AttemptOutcome::NoAnswer, None, HIDE, t)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, CallbackError::NotClaimer { by: Some(by) } if by == "anna"),
            "{err}"
        );

        let after = store
            .finish_callback(
                e.id,
                "anna",
                AttemptOutcome::NoAnswer,
                Some("voicemail"),
                HIDE,
                t,
            )
            .await
            .unwrap();
        assert_eq!(after.state, EntryState::Open);
        assert_eq!(after.attempts, 1);
        assert_eq!(after.last_outcome, Some(AttemptOutcome::NoAnswer));
        assert_eq!(after.claimed_by, None);
        assert_eq!(after.hidden_until_ms, Some(t + HIDE));

        assert!(listed(&store, t).await.is_empty());
        assert!(listed(&store, t + HIDE - 1).await.is_empty());
        assert_eq!(listed(&store, t + HIDE).await, vec![e.id]);
        let err = store
            .claim_callback(e.id, "bela", CLAIM, t + HIDE - 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, CallbackError::Hidden { until_ms } if until_ms == t + HIDE),
            "{err}"
        );
        // Finishing twice: the claim is gone.
        let err = store
            .finish_callback(e.id, "anna", AttemptOutcome::Busy, None, HIDE, t + 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, CallbackError::NotClaimer { by: None }),
            "{err}"
        );

        // Second attempt, by Bela, busy.
        store
            .claim_callback(e.id, "bela", CLAIM, t + HIDE)
            .await
            .unwrap();
        let after = store
            .finish_callback(
                e.id,
                "bela",
                AttemptOutcome::Busy,
                None,
                HIDE,
                t + HIDE + MIN,
            )
            .await
            .unwrap();
        assert_eq!(after.attempts, 2);

        // The customer calls again while hidden: back on the list at once.
        assert!(listed(&store, t + HIDE + 2 * MIN).await.is_empty());
        let renewed = note(&store, missed("+36308888888", t + HIDE + 2 * MIN)).await;
        assert_eq!((renewed.id, renewed.count), (e.id, 2));
        assert_eq!(renewed.hidden_until_ms, None);
        assert_eq!(listed(&store, t + HIDE + 2 * MIN).await, vec![e.id]);

        let history = store.callback_history(e.id).await.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].operator, "anna");
        assert_eq!(history[0].outcome, Some(AttemptOutcome::NoAnswer));
        assert_eq!(history[0].note.as_deref(), Some("voicemail"));
        assert_eq!(
            (history[0].started_at_ms, history[0].ended_at_ms),
            (T0, Some(t))
        );
        assert_eq!(history[1].operator, "bela");
        assert_eq!(history[1].outcome, Some(AttemptOutcome::Busy));
        assert_eq!(history[1].note, None);
        assert_eq!(
            (history[1].started_at_ms, history[1].ended_at_ms),
            (t + HIDE, Some(t + HIDE + MIN))
        );
    }
);

on_both_databases!(success_removes_for_good, |store: Store| async move {
    let e = note(&store, missed("+36309999999", T0)).await;
    note(&store, missed("+36309999999", T0 + MIN)).await;
    store
        .claim_callback(e.id, "anna", CLAIM, T0 + 2 * MIN)
        .await
        .unwrap();
    // Success is accepted even after the claim lapsed, if nobody took the entry since.
    let done = store
        .finish_callback(
            e.id,
            "anna",
            AttemptOutcome::Success,
            Some("sorted"),
            HIDE,
            T0 + 20 * MIN,
        )
        .await
        .unwrap();
    assert_eq!(done.state, EntryState::Done);
    assert_eq!(done.done_at_ms, Some(T0 + 20 * MIN));
    assert_eq!((done.attempts, done.count), (1, 2));

    // Never on the list again, can't be claimed or finished again.
    for at in [T0 + 20 * MIN, T0 + 1000 * HOUR] {
        assert!(listed(&store, at).await.is_empty());
    }
    let err = store
        .claim_callback(e.id, "bela", CLAIM, T0 + HOUR)
        .await
        .unwrap_err();
    assert!(matches!(err, CallbackError::Done), "{err}");
    let err = store
        .finish_callback(e.id, "anna", AttemptOutcome::Success, None, HIDE, T0 + HOUR)
        .await
        .unwrap_err();
    assert!(matches!(err, CallbackError::Done), "{err}");

    // A new call from the number later is a new entry; the old one is kept.
    let fresh = note(&store, missed("+36309999999", T0 + 2 * HOUR)).await;
    assert_ne!(fresh.id, e.id);
    assert_eq!(
        (fresh.count, fresh.first_at_ms, fresh.attempts),
        (1, T0 + 2 * HOUR, 0)
    );
    assert_eq!(listed(&store, T0 + 2 * HOUR).await, vec![fresh.id]);
    let old = store.callback_entry(e.id).await.unwrap().unwrap();
    assert_eq!(old.state, EntryState::Done);
    let history = store.callback_history(e.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].outcome, Some(AttemptOutcome::Success));
    assert_eq!(history[0].note.as_deref(), Some("sorted"));
    assert!(store.callback_history(fresh.id).await.unwrap().is_empty());
});

on_both_databases!(
    a_released_claim_is_back_at_once_without_an_attempt,
    |store: Store| async move {
        let e = note(&store, missed("+36301230001", T0)).await;
        store.claim_callback(e.id, "anna", CLAIM, T0).await.unwrap();
        assert!(listed(&store, T0 + 1).await.is_empty());
        // Only the claimer can give it back.
        assert!(matches!(
            store.release_callback(e.id, "bela", "no", T0 + 1).await,
            Err(CallbackError::NotClaimer { .. })
        ));
        store
            .release_callback(e.id, "anna", "anna's phone is not registered", T0 + 2)
            .await
            .unwrap();
        assert_eq!(listed(&store, T0 + 2).await, [e.id]);
        let e = store.callback_entry(e.id).await.unwrap().unwrap();
        assert_eq!((e.attempts, e.hidden_until_ms), (0, None));
        let h = store.callback_history(e.id).await.unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].outcome, None);
        assert_eq!(h[0].note.as_deref(), Some("anna's phone is not registered"));
        // Bela takes it now.
        store
            .claim_callback(e.id, "bela", CLAIM, T0 + 3)
            .await
            .unwrap();
    }
);

on_both_databases!(
    the_operator_corrects_a_voicemail_success,
    |store: Store| async move {
        let e = note(&store, missed("+36301230002", T0)).await;
        store.claim_callback(e.id, "anna", CLAIM, T0).await.unwrap();
        let done = store
            .finish_callback(e.id, "anna", AttemptOutcome::Success, None, HIDE, T0 + MIN)
            .await
            .unwrap();
        assert_eq!(done.state, EntryState::Done);
        // Someone else can't.
        assert!(matches!(
            store
                .correct_callback(
                    e.id,
                    "bela",
                    AttemptOutcome::Failed,
                    None,
                    HIDE,
                    HOUR,
                    T0 + MIN
                )
                .await,
            Err(CallbackError::NotClaimer { .. })
        ));
        // Anna: it was a voicemail. The entry is open again, hidden for the hide time.
        let back = store
            .correct_callback(
                e.id,
                "anna",
                AttemptOutcome::NoAnswer,
                Some("voicemail"),
                HIDE,
                HOUR,
                T0 + 2 * MIN,
            )
            .await
            .unwrap();
        assert_eq!(back.state, EntryState::Open);
        assert_eq!(back.hidden_until_ms, Some(T0 + 2 * MIN + HIDE));
        assert_eq!(back.last_outcome, Some(AttemptOutcome::NoAnswer));
        assert!(listed(&store, T0 + 2 * MIN + HIDE - 1).await.is_empty());
        assert_eq!(listed(&store, T0 + 2 * MIN + HIDE).await, [e.id]);
        let h = store.callback_history(e.id).await.unwrap();
        assert_eq!(h[0].outcome, Some(AttemptOutcome::NoAnswer));
        assert_eq!(h[0].note.as_deref(), Some("voicemail"));
        // And back to success: done again.
        let again = store
            .correct_callback(
                e.id,
                "anna",
                AttemptOutcome::Success,
                None,
                HIDE,
                HOUR,
                T0 + 3 * MIN,
            )
            .await
            .unwrap();
        assert_eq!(again.state, EntryState::Done);
        // After the window, no more changes.
        assert!(matches!(
            store
                .correct_callback(
                    e.id,
                    "anna",
                    AttemptOutcome::Failed,
                    None,
                    HIDE,
                    HOUR,
                    T0 + MIN + HOUR + 1
                )
                .await,
            Err(CallbackError::TooLate)
        ));
    }
);

on_both_databases!(
    a_correction_does_not_make_a_second_open_entry,
    |store: Store| async move {
        let e = note(&store, missed("+36301230003", T0)).await;
        store.claim_callback(e.id, "anna", CLAIM, T0).await.unwrap();
        store
            .finish_callback(e.id, "anna", AttemptOutcome::Success, None, HIDE, T0 + MIN)
            .await
            .unwrap();
        // The customer calls again: a new entry.
        let newer = note(&store, missed("+36301230003", T0 + 2 * MIN)).await;
        assert_ne!(newer.id, e.id);
        let old = store
            .correct_callback(
                e.id,
                "anna",
                AttemptOutcome::Failed,
                None,
                HIDE,
                HOUR,
                T0 + 3 * MIN,
            )
            .await
            .unwrap();
        assert_eq!(old.state, EntryState::Done, "the newer entry stands for it");
        assert_eq!(listed(&store, T0 + 3 * MIN).await, [newer.id]);
    }
);

on_both_databases!(
    automatic_attempts_retry_after_the_delay_up_to_the_maximum,
    |store: Store| async move {
        const AUTO: &str = "Automatic callback";
        let e = note(&store, missed("+36301230004", T0)).await;
        let other = note(
            &store,
            NewCallbackNote {
                queue: Some("support"),
                ..missed("+36301230005", T0)
            },
        )
        .await;
        let due = |now| {
            let store = store.clone();
            async move {
                store
                    .auto_callback_candidates("sales", 2, now, 10)
                    .await
                    .unwrap()
                    .iter()
                    .map(|e| e.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(due(T0).await, [e.id], "only the queue's entries");
        store.claim_callback(e.id, AUTO, CLAIM, T0).await.unwrap();
        assert!(due(T0 + 1).await.is_empty(), "claimed");
        let after = store
            .finish_auto_callback(
                e.id,
                AUTO,
                AttemptOutcome::NoAnswer,
                None,
                0,
                10 * MIN,
                T0 + MIN,
            )
            .await
            .unwrap();
        assert_eq!((after.auto_attempts, after.attempts), (1, 1));
        assert_eq!(after.next_auto_at_ms, Some(T0 + 11 * MIN));
        // On the operators' list at once (hide 0), but not due for the scheduler yet.
        assert_eq!(listed(&store, T0 + MIN).await, [e.id, other.id]);
        assert!(due(T0 + 11 * MIN - 1).await.is_empty());
        assert_eq!(due(T0 + 11 * MIN).await, [e.id]);
        store
            .claim_callback(e.id, AUTO, CLAIM, T0 + 11 * MIN)
            .await
            .unwrap();
        let after = store
            .finish_auto_callback(
                e.id,
                AUTO,
                AttemptOutcome::Busy,
                None,
                0,
                10 * MIN,
                T0 + 12 * MIN,
            )
            .await
            .unwrap();
        assert_eq!(after.auto_attempts, 2);
        // The maximum (2) is reached: the scheduler leaves it to the operators.
        assert!(due(T0 + 99 * MIN).await.is_empty());
        assert!(listed(&store, T0 + 99 * MIN).await.contains(&e.id));
        // An operator's attempt doesn't count as automatic.
        store
            .claim_callback(e.id, "anna", CLAIM, T0 + 100 * MIN)
            .await
            .unwrap();
        let after = store
            .finish_callback(
                e.id,
                "anna",
                AttemptOutcome::NoAnswer,
                None,
                0,
                T0 + 101 * MIN,
            )
            .await
            .unwrap();
        assert_eq!((after.auto_attempts, after.attempts), (2, 3));
    }
);

on_both_databases!(backlog_and_promise_report, |store: Store| async move {
    let promised = |number, at, promise| NewCallbackNote {
        promised_at_ms: promise,
        ..missed(number, at)
    };
    let kept = note(&store, promised("+36301230010", T0, Some(T0 + HOUR))).await;
    let late = note(&store, promised("+36301230011", T0, Some(T0 + HOUR))).await;
    let _overdue = note(&store, promised("+36301230012", T0, Some(T0 + HOUR))).await;
    let _pending = note(&store, promised("+36301230013", T0, Some(T0 + 5 * HOUR))).await;
    let _none = note(&store, promised("+36301230014", T0, None)).await;
    let _before = note(&store, promised("+36301230015", T0 - HOUR, None)).await;
    assert_eq!(store.callback_backlog("sales", T0).await.unwrap(), 2);
    assert_eq!(store.callback_backlog("sales", T0 + HOUR).await.unwrap(), 5);
    assert_eq!(
        store.callback_backlog("support", T0 + HOUR).await.unwrap(),
        0
    );
    for (e, at) in [(&kept, T0 + HOUR), (&late, T0 + HOUR + 1)] {
        store.claim_callback(e.id, "anna", CLAIM, at).await.unwrap();
        store
            .finish_callback(e.id, "anna", AttemptOutcome::Success, None, HIDE, at)
            .await
            .unwrap();
    }
    let r = store
        .callback_promise_report(T0, T0 + 1, T0 + 2 * HOUR)
        .await
        .unwrap();
    assert_eq!(
        (r.kept, r.late, r.overdue, r.pending, r.unpromised),
        (1, 1, 1, 1, 1)
    );
});

// T5: a number the dial plan refuses stays on the list, marked, and automatic callbacks
// pass it by; marked dialable again, it is a candidate like any other.
on_both_databases!(
    undialable_numbers_are_listed_but_never_dialled_by_themselves,
    |store: Store| async move {
        let entry = note(
            &store,
            NewCallbackNote {
                number: "+3690123456",
                queue: Some("support"),
                source: CallbackSource::Missed,
                promised_at_ms: None,
                call_id: Some("c-premium"),
                now_ms: 1_000,
            },
        )
        .await;
        store
            .mark_undialable(
                entry.id,
                Some("+3690123456 is blocked by the dial plan (+3690.)"),
            )
            .await
            .unwrap();
        let listed = store.callback_list(2_000, 10).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            listed[0].undialable.as_deref(),
            Some("+3690123456 is blocked by the dial plan (+3690.)")
        );
        assert!(
            store
                .auto_callback_candidates("support", 3, 2_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        store.mark_undialable(entry.id, None).await.unwrap();
        assert_eq!(
            store
                .auto_callback_candidates("support", 3, 2_000, 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }
);

on_both_databases!(
    a_double_click_claims_to_call_once,
    |store: Store| async move {
        let e = note(&store, missed("+36305555000", T0)).await;
        // Two tabs (or a double click) of the same operator, at the same moment.
        let tries: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(
                    async move { store.claim_callback_once(e.id, "anna", CLAIM, T0).await },
                )
            })
            .collect();
        let mut won = 0;
        for t in tries {
            match t.await.unwrap() {
                Ok(entry) => {
                    won += 1;
                    assert_eq!(entry.claimed_by.as_deref(), Some("anna"));
                }
                Err(CallbackError::AlreadyClaimed { by }) => assert_eq!(by, "anna"),
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!(won, 1, "exactly one claim starts a call");
        // A later click while the call is on is refused too, and so is another operator.
        for who in ["anna", "bela"] {
            let again = store
                .claim_callback_once(e.id, who, CLAIM, T0 + MIN)
                .await
                .unwrap_err();
            assert!(
                matches!(&again, CallbackError::AlreadyClaimed { by } if by == "anna"),
                "{again}"
            );
        }
        assert_eq!(store.callback_history(e.id).await.unwrap().len(), 1);
        // The claim lapses: the entry may be taken to call again.
        store
            .claim_callback_once(e.id, "anna", CLAIM, T0 + CLAIM)
            .await
            .unwrap();
    }
);
