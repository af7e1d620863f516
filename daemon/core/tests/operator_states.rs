//! The operators' state history (`hotline_core::operator_states`): the time per state, and the store on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use std::collections::BTreeMap;

use hotline_core::acd::OperatorStatus;
use hotline_core::operator_states::*;
use hotline_core::store::Store;

/// A minute, in ms.
const MIN: i64 = 60_000;

/// `operator` in `state` from `at_min` minutes on.
fn change(operator: &str, state: &str, at_min: i64) -> StateChange {
    StateChange {
        operator: operator.into(),
        state: state.into(),
        at_ms: at_min * MIN,
    }
}

/// The window [60, 180) minutes (01:00 to 03:00), and what two operators did around it.
fn two_operators() -> Vec<StateChange> {
    vec![
        // Online since before the window: 60..75 counts.
        change("anna", "online", 30),
        change("anna", "busy", 75),
        // A wrap-up filed twice (a restart): one period of 8 minutes.
        change("anna", "wrap_up", 90),
        change("anna", "wrap_up", 95),
        change("anna", "online", 98),
        // Not a state this module knows: 10 minutes not counted.
        change("anna", "lunch", 120),
        change("anna", "pause", 130),
        change("anna", "offline", 150),
        // Online past the end of the window: 170..180 counts.
        change("anna", "online", 170),
        change("anna", "offline", 200),
        // In wrap-up since before the window: 60..70 counts, not as a period begun.
        change("bela", "wrap_up", 40),
        change("bela", "away", 70),
        change("bela", "busy", 100),
        change("bela", "wrap_up", 110),
        // Online until the end of the window (or now).
        change("bela", "online", 112),
        // Offline all along, then online only after the window.
        change("cyril", "offline", 10),
        change("cyril", "online", 190),
        // Only in a state not known.
        change("dora", "lunch", 70),
    ]
}

#[test]
fn state_times_clip_sum_and_count() {
    let changes = two_operators();
    let anna = StateTimes {
        online_ms: (15 + 22 + 10) * MIN,
        busy_ms: 15 * MIN,
        wrap_up_ms: 8 * MIN,
        away_ms: 0,
        pause_ms: 20 * MIN,
        wrap_ups: 1,
    };
    let bela = StateTimes {
        online_ms: 68 * MIN,
        busy_ms: 10 * MIN,
        wrap_up_ms: (10 + 2) * MIN,
        away_ms: 30 * MIN,
        pause_ms: 0,
        wrap_ups: 1,
    };
    let times = state_times(&changes, 60 * MIN, 180 * MIN, 500 * MIN);
    assert_eq!(
        times,
        BTreeMap::from([("anna".to_string(), anna.clone()), ("bela".into(), bela)])
    );
    assert_eq!(times["anna"].logged_in_ms(), 90 * MIN);
    // Bela was logged in for the whole window.
    assert_eq!(times["bela"].logged_in_ms(), 120 * MIN);
    assert_eq!(times["anna"].average_wrap_up_secs(), Some(480.0));
    assert_eq!(times["bela"].average_wrap_up_secs(), Some(720.0));
    assert_eq!(StateTimes::default().average_wrap_up_secs(), None);

    // The operators' order does not matter, nor the order of an operator's rows.
    let mut reversed = changes.clone();
    reversed.reverse();
    assert_eq!(
        state_times(&reversed, 60 * MIN, 180 * MIN, 500 * MIN),
        times
    );

    // The day still going on at 02:20: the last rows run until now.
    let so_far: Vec<StateChange> = changes
        .iter()
        .filter(|c| c.at_ms <= 140 * MIN)
        .cloned()
        .collect();
    let times = state_times(&so_far, 60 * MIN, 180 * MIN, 140 * MIN);
    assert_eq!(
        times["anna"],
        StateTimes {
            online_ms: (15 + 22) * MIN,
            pause_ms: 10 * MIN,
            ..anna
        }
    );
    assert_eq!(times["bela"].online_ms, 28 * MIN);
    assert_eq!(times["bela"].logged_in_ms(), 80 * MIN);
    assert_eq!(times.len(), 2);

    // Bela and cyril stay online after their last rows; before anyone logged in,
    // nothing.
    let later = state_times(&changes, 300 * MIN, 400 * MIN, 500 * MIN);
    assert_eq!(later["bela"].online_ms, 100 * MIN);
    assert_eq!(later["cyril"].online_ms, 100 * MIN);
    assert_eq!(later.len(), 2);
    assert_eq!(
        state_times(&changes, 0, 10 * MIN, 500 * MIN),
        BTreeMap::new()
    );
    assert_eq!(state_times(&[], 0, 100, 100), BTreeMap::new());
}

#[test]
fn a_25_hour_day_counts_25_hours_online() {
    use hotline_ivr::window::DEFAULT_TIME_ZONE as BUDAPEST;

    // 25 October 2026 in Budapest: 03:00 CEST becomes 02:00 CET.
    let date = chrono::NaiveDate::from_ymd_opt(2026, 10, 25).unwrap();
    let (from, to) = hotline_core::reports::day_bounds(&BUDAPEST, date).unwrap();
    let hour = 60 * MIN;
    assert_eq!(to - from, 25 * hour);
    let changes = [
        StateChange {
            operator: "anna".into(),
            state: "online".into(),
            at_ms: from - 3 * hour,
        },
        StateChange {
            operator: "anna".into(),
            state: "offline".into(),
            at_ms: to + hour,
        },
    ];
    let times = state_times(&changes, from, to, to + 2 * hour);
    assert_eq!(times["anna"].online_ms, 25 * hour);
    assert_eq!(times["anna"].logged_in_ms(), 25 * hour);
}

#[test]
fn every_status_but_offline_is_counted_under_its_name() {
    for status in [
        OperatorStatus::Online,
        OperatorStatus::Busy,
        OperatorStatus::WrapUp,
        OperatorStatus::Away,
        OperatorStatus::Pause,
        OperatorStatus::Offline,
    ] {
        let changes = [change("anna", state_name(status), 0)];
        let times = state_times(&changes, 0, MIN, MIN);
        let logged_in = times.get("anna").map_or(0, StateTimes::logged_in_ms);
        let expected = if status == OperatorStatus::Offline {
            0
        } else {
            MIN
        };
        assert_eq!(logged_in, expected, "{status:?}");
    }
    // The API's spelling counts as wrap-up, and continues a `wrap_up` period.
    let changes = [
        change("anna", "wrap-up", 0),
        change("anna", "wrap_up", 1),
        change("anna", "wrap-up", 2),
    ];
    let times = state_times(&changes, 0, 3 * MIN, 3 * MIN);
    assert_eq!(
        (times["anna"].wrap_up_ms, times["anna"].wrap_ups),
        (3 * MIN, 1)
    );
}

on_both_databases!(
    between_reads_the_state_at_from_and_the_window,
    |store: Store| async move {
        let log = [
            // Filed out of order: rows come back by time, not by when filed.
            ("anna", "wrap_up", 150),
            ("anna", "online", 10),
            ("anna", "away", 50),
            // The same ms, filed later: the state anna was in at 100.
            ("anna", "pause", 50),
            ("anna", "busy", 100),
            ("anna", "online", 199),
            // At and after the end: not read.
            ("anna", "offline", 200),
            ("anna", "online", 250),
            // No row before the window.
            ("bela", "online", 120),
            ("bela", "pause", 180),
            ("bela", "offline", 300),
            // Logged off before the window: still its state at 100.
            ("cyril", "online", 20),
            ("cyril", "offline", 40),
            // Only after the window.
            ("dora", "online", 200),
            ("dora", "offline", 260),
        ];
        for (operator, state, at_ms) in log {
            store
                .log_operator_state(operator, state, at_ms)
                .await
                .unwrap();
        }
        let row = |operator: &str, state: &str, at_ms: i64| StateChange {
            operator: operator.into(),
            state: state.into(),
            at_ms,
        };
        let expected = vec![
            row("anna", "pause", 50),
            row("anna", "busy", 100),
            row("anna", "wrap_up", 150),
            row("anna", "online", 199),
            row("bela", "online", 120),
            row("bela", "pause", 180),
            row("cyril", "offline", 40),
        ];
        let between = |limit| store.operator_states_between(100, 200, limit);
        assert_eq!(between(100).await.unwrap(), (expected.clone(), false));
        assert_eq!(between(7).await.unwrap(), (expected.clone(), false));
        // The limit keeps the first rows in order and says it cut.
        assert_eq!(between(6).await.unwrap(), (expected[..6].to_vec(), true));
        assert_eq!(between(2).await.unwrap(), (expected[..2].to_vec(), true));
        assert_eq!(between(0).await.unwrap(), (vec![], true));

        // What the rows make of [100, 200) at 1000.
        let times = state_times(&expected, 100, 200, 1_000);
        assert_eq!(
            times,
            BTreeMap::from([
                (
                    "anna".to_string(),
                    StateTimes {
                        online_ms: 1,
                        busy_ms: 50,
                        wrap_up_ms: 49,
                        wrap_ups: 1,
                        ..StateTimes::default()
                    }
                ),
                (
                    "bela".to_string(),
                    StateTimes {
                        online_ms: 60,
                        pause_ms: 20,
                        ..StateTimes::default()
                    }
                ),
            ])
        );

        // After everything: each operator's last row, none in the window.
        assert_eq!(
            store
                .operator_states_between(1_000, 2_000, 100)
                .await
                .unwrap(),
            (
                vec![
                    row("anna", "online", 250),
                    row("bela", "offline", 300),
                    row("cyril", "offline", 40),
                    row("dora", "offline", 260),
                ],
                false
            )
        );
        // Before everything: nothing.
        assert_eq!(
            store.operator_states_between(0, 5, 100).await.unwrap(),
            (vec![], false)
        );
    }
);

on_both_databases!(an_empty_history_reads_empty, |store: Store| async move {
    assert_eq!(
        store
            .operator_states_between(0, i64::MAX, 10)
            .await
            .unwrap(),
        (vec![], false)
    );
});
