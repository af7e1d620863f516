//! Call recordings' rows, marks and audit log (`hotline_core::recordings`) on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use hotline_core::recordings::*;
use hotline_core::store::{Store, StoreError};

/// Anna's recording of call `call_id`, started at `started_at_ms`, in support.
fn new(call_id: &str, started_at_ms: i64) -> NewRecording<'_> {
    NewRecording {
        call_id,
        caller: "+36301234567",
        operator: None,
        queue: Some("support"),
        path: "2026/12/07/c-1.wav",
        layout: "stereo",
        started_by: None,
        started_at_ms,
    }
}

/// The row `new(call_id, started_at_ms)` makes, with `id`, before it is finished.
fn started(id: i64, call_id: &str, started_at_ms: i64) -> Recording {
    Recording {
        id,
        call_id: call_id.into(),
        caller: "+36301234567".into(),
        operator: None,
        queue: Some("support".into()),
        path: "2026/12/07/c-1.wav".into(),
        layout: "stereo".into(),
        started_by: None,
        started_at_ms,
        ended_at_ms: None,
        duration_ms: None,
        bytes: None,
        status: RecordingStatus::Recording,
        purged_at_ms: None,
        marks: Vec::new(),
    }
}

fn ids(recordings: &[Recording]) -> Vec<i64> {
    recordings.iter().map(|r| r.id).collect()
}

#[test]
fn statuses_have_one_name_each() {
    for status in [
        RecordingStatus::Recording,
        RecordingStatus::Complete,
        RecordingStatus::Repaired,
        RecordingStatus::Purged,
    ] {
        assert_eq!(RecordingStatus::parse(status.as_str()), Some(status));
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            serde_json::json!(status.as_str())
        );
    }
    assert_eq!(RecordingStatus::parse("Complete"), None);
    assert_eq!(RecordingStatus::parse(""), None);
}

on_both_databases!(a_recording_round_trips, |store: Store| async move {
    let id = store
        .insert_recording(&NewRecording {
            started_by: Some("sara"),
            layout: "mono",
            ..new("c-1", 1_000)
        })
        .await
        .unwrap();
    store
        .add_recording_mark(id, 9_500, "on hold")
        .await
        .unwrap();
    store
        .add_recording_mark(id, 1_200, "anna answered")
        .await
        .unwrap();
    store.set_recording_operator(id, "anna").await.unwrap();
    store.set_recording_operator(id, "ben").await.unwrap();
    assert_eq!(
        store.recording(id).await.unwrap().unwrap().status,
        RecordingStatus::Recording
    );
    store
        .finish_recording(id, 61_000, 60_000, 1_920_044, RecordingStatus::Complete)
        .await
        .unwrap();
    let expected = Recording {
        operator: Some("anna".into()),
        layout: "mono".into(),
        started_by: Some("sara".into()),
        ended_at_ms: Some(61_000),
        duration_ms: Some(60_000),
        bytes: Some(1_920_044),
        status: RecordingStatus::Complete,
        marks: vec![
            RecordingMark {
                offset_ms: 1_200,
                label: "anna answered".into(),
            },
            RecordingMark {
                offset_ms: 9_500,
                label: "on hold".into(),
            },
        ],
        ..started(id, "c-1", 1_000)
    };
    assert_eq!(store.recording(id).await.unwrap(), Some(expected.clone()));
    assert_eq!(store.recording(id + 1).await.unwrap(), None);

    // A second recording of the same call (stopped and started again), another call's.
    let again = store.insert_recording(&new("c-1", 70_000)).await.unwrap();
    store.insert_recording(&new("c-2", 2_000)).await.unwrap();
    store
        .add_recording_mark(again, 0, "restarted")
        .await
        .unwrap();
    let of_call = store.recordings_of_call("c-1").await.unwrap();
    assert_eq!(
        of_call,
        [
            expected,
            Recording {
                marks: vec![RecordingMark {
                    offset_ms: 0,
                    label: "restarted".into(),
                }],
                ..started(again, "c-1", 70_000)
            }
        ]
    );
    assert_eq!(store.recordings_of_call("c-3").await.unwrap(), []);
    // A page of call records asks for several calls at once.
    let of_calls = store
        .recordings_of_calls(&["c-2", "c-1", "c-3"])
        .await
        .unwrap();
    let found: Vec<(&str, i64)> = of_calls
        .iter()
        .map(|r| (r.call_id.as_str(), r.started_at_ms))
        .collect();
    assert_eq!(found, [("c-1", 1_000), ("c-2", 2_000), ("c-1", 70_000)]);
    assert_eq!(of_calls[2].marks.len(), 1);
    assert_eq!(store.recordings_of_calls(&[]).await.unwrap(), []);
});

on_both_databases!(
    unfinished_are_the_rows_still_recording,
    |store: Store| async move {
        let late = store.insert_recording(&new("c-1", 3_000)).await.unwrap();
        let done = store.insert_recording(&new("c-2", 1_000)).await.unwrap();
        let early = store.insert_recording(&new("c-3", 2_000)).await.unwrap();
        store
            .finish_recording(done, 5_000, 4_000, 128_044, RecordingStatus::Complete)
            .await
            .unwrap();
        store
            .add_recording_mark(early, 100, "anna answered")
            .await
            .unwrap();
        let unfinished = store.unfinished_recordings().await.unwrap();
        assert_eq!(
            unfinished,
            [
                Recording {
                    marks: vec![RecordingMark {
                        offset_ms: 100,
                        label: "anna answered".into(),
                    }],
                    ..started(early, "c-3", 2_000)
                },
                started(late, "c-1", 3_000),
            ]
        );

        // Repaired at the next start: no longer unfinished.
        store
            .finish_recording(early, 9_000, 7_000, 224_044, RecordingStatus::Repaired)
            .await
            .unwrap();
        assert_eq!(ids(&store.unfinished_recordings().await.unwrap()), [late]);
        let repaired = store.recording(early).await.unwrap().unwrap();
        assert_eq!(repaired.status, RecordingStatus::Repaired);
        assert_eq!(
            (repaired.ended_at_ms, repaired.duration_ms, repaired.bytes),
            (Some(9_000), Some(7_000), Some(224_044))
        );
    }
);

on_both_databases!(
    purging_respects_cutoff_status_and_limit,
    |store: Store| async move {
        let mut made = Vec::new();
        for (n, status) in [
            RecordingStatus::Complete,
            RecordingStatus::Repaired,
            RecordingStatus::Recording,
            RecordingStatus::Complete,
            RecordingStatus::Complete,
        ]
        .into_iter()
        .enumerate()
        {
            let at = 1_000 * (n as i64 + 1);
            let id = store
                .insert_recording(&new(&format!("c-{n}"), at))
                .await
                .unwrap();
            if status != RecordingStatus::Recording {
                store
                    .finish_recording(id, at + 500, 500, 16_044, status)
                    .await
                    .unwrap();
            }
            made.push(id);
        }
        // Started at 1000, 2000, 3000 (still recording), 4000, 5000; the cutoff is exclusive.
        assert_eq!(
            ids(&store.recordings_to_purge(5_000, 10).await.unwrap()),
            [made[0], made[1], made[3]]
        );
        assert_eq!(
            ids(&store.recordings_to_purge(5_001, 2).await.unwrap()),
            [made[0], made[1]]
        );
        assert_eq!(store.recordings_to_purge(1_000, 10).await.unwrap(), []);

        store.mark_recording_purged(made[0], 90_000).await.unwrap();
        // Purged twice (a retention run that stopped before its log): the first time stays.
        store.mark_recording_purged(made[0], 95_000).await.unwrap();
        let purged = store.recording(made[0]).await.unwrap().unwrap();
        assert_eq!(
            (purged.status, purged.purged_at_ms, purged.bytes),
            (RecordingStatus::Purged, Some(90_000), Some(16_044))
        );
        assert_eq!(
            ids(&store.recordings_to_purge(5_001, 2).await.unwrap()),
            [made[1], made[3]]
        );
    }
);

on_both_databases!(
    between_is_newest_first_within_bounds,
    |store: Store| async move {
        let a = store.insert_recording(&new("c-a", 1_000)).await.unwrap();
        let b = store.insert_recording(&new("c-b", 2_000)).await.unwrap();
        let b2 = store.insert_recording(&new("c-b2", 2_000)).await.unwrap();
        let c = store.insert_recording(&new("c-c", 3_000)).await.unwrap();
        store.insert_recording(&new("c-d", 4_000)).await.unwrap();
        store
            .add_recording_mark(b, 50, "anna answered")
            .await
            .unwrap();
        store.add_recording_mark(c, 70, "on hold").await.unwrap();
        store
            .add_recording_mark(c, 20, "anna answered")
            .await
            .unwrap();

        // [1000, 4000): 4000 is out; ties by the newer row first.
        let between = store.recordings_between(1_000, 4_000, 10).await.unwrap();
        assert_eq!(ids(&between), [c, b2, b, a]);
        let marks = |labels: &[(i64, &str)]| -> Vec<RecordingMark> {
            labels
                .iter()
                .map(|&(offset_ms, label)| RecordingMark {
                    offset_ms,
                    label: label.into(),
                })
                .collect()
        };
        assert_eq!(
            between.iter().map(|r| r.marks.clone()).collect::<Vec<_>>(),
            [
                marks(&[(20, "anna answered"), (70, "on hold")]),
                marks(&[]),
                marks(&[(50, "anna answered")]),
                marks(&[]),
            ]
        );
        assert_eq!(between[1], started(b2, "c-b2", 2_000));

        // The limit keeps the newest, and their marks only.
        let newest = store.recordings_between(1_000, 4_000, 2).await.unwrap();
        assert_eq!(ids(&newest), [c, b2]);
        assert_eq!(newest[0].marks.len(), 2);
        assert_eq!(
            ids(&store.recordings_between(1_001, 3_000, 10).await.unwrap()),
            [b2, b]
        );
        assert_eq!(
            store.recordings_between(5_000, 9_000, 10).await.unwrap(),
            []
        );
    }
);

on_both_databases!(
    access_log_comes_back_newest_first,
    |store: Store| async move {
        let entry =
            |at_ms: i64, user: Option<&str>, action: &str, detail: Option<&str>| RecordingAccess {
                at_ms,
                user: user.map(str::to_string),
                recording_id: 7,
                call_id: "c-1".into(),
                action: action.into(),
                detail: detail.map(str::to_string),
            };
        let written = [
            entry(1, Some("sara"), "start", None),
            entry(2, None, "stop", Some("call ended")),
            entry(2, Some("ben"), "refused", Some("not a supervisor")),
            entry(3, Some("sara"), "play", None),
        ];
        for e in &written {
            store.log_recording_access(e).await.unwrap();
        }
        assert_eq!(
            store.recording_log(3).await.unwrap(),
            [written[3].clone(), written[2].clone(), written[1].clone()]
        );
        assert_eq!(store.recording_log(10).await.unwrap().len(), 4);
    }
);

on_both_databases!(an_unknown_status_is_an_error, |store: Store| async move {
    let id = store.insert_recording(&new("c-1", 1_000)).await.unwrap();
    sqlx::query("UPDATE recordings SET status = 'lost' WHERE id = $1")
        .bind(id)
        .execute(store.pool())
        .await
        .unwrap();
    let err = store.recording(id).await.unwrap_err();
    assert!(matches!(err, StoreError::Query(_)), "{err}");
    assert!(
        err.to_string()
            .contains("unknown recording status \"lost\" in the database"),
        "{err}"
    );
});
