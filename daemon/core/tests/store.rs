//! Store tests; every one runs on SQLite and on PostgreSQL (see `common`).

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hotline_core::cdr::{
    CallEnd, CallStart, CdrLog, CdrOptions, CdrSink, CdrWrite, EndReason, LEGACY_OPEN_CALL_MS,
    REJECTED_FILE, SinkError,
};
use hotline_core::store::Store;
use hotline_core::testing::{call_end, call_start, store_finished_call};

on_both_databases!(call_record_round_trip, |store: Store| async move {
    let id = store
        .insert_call(&CallStart {
            flow: Some("main".into()),
            flow_version: Some("1a2b3c".into()),
            ..call_start("abc@192.0.2.1", 1_700_000_000_000)
        })
        .await
        .unwrap();
    store
        .set_call_answered(id, 1_700_000_000_250)
        .await
        .unwrap();
    let path = vec!["greeting".to_string(), "main_menu".into(), "sales".into()];
    store
        .finish_call(
            id,
            &CallEnd {
                ended_at_ms: 1_700_000_009_000,
                reason: EndReason::FlowHangup,
                digits: "1".into(),
                path: path.clone(),
                variables: r#"{"lang":"hu"}"#.into(),
                operator: Some("anna".into()),
                service: Default::default(),
            },
        )
        .await
        .unwrap();
    // A second end (e.g. a late BYE) does not overwrite the first.
    store
        .finish_call(
            id,
            &CallEnd {
                digits: "19".into(),
                ..call_end(1_700_000_010_000)
            },
        )
        .await
        .unwrap();

    let rec = store
        .call_by_call_id("abc@192.0.2.1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.id, id);
    assert_eq!(rec.caller, "+36301234567");
    assert_eq!(rec.called, "100");
    assert_eq!(rec.started_at_ms, 1_700_000_000_000);
    assert_eq!(rec.answered_at_ms, Some(1_700_000_000_250));
    assert_eq!(rec.ended_at_ms, Some(1_700_000_009_000));
    assert_eq!(rec.end_reason.as_deref(), Some("flow_hangup"));
    assert_eq!(rec.digits, "1");
    assert_eq!(rec.flow.as_deref(), Some("main"));
    assert_eq!(rec.flow_version.as_deref(), Some("1a2b3c"));
    assert_eq!(rec.path, "greeting main_menu sales");
    assert_eq!(rec.variables, r#"{"lang":"hu"}"#);
    assert_eq!(rec.operator.as_deref(), Some("anna"));
});

on_both_databases!(
    cdr_log_writes_off_the_call_path,
    |store: Store| async move {
        let dir = std::env::temp_dir().join(format!("hotline-cdr-{}", rand::random::<u64>()));
        let log = CdrLog::start(store.clone(), CdrOptions::new(&dir, "node-a"));
        // Many calls interleaved, as under load: every record must come out whole.
        let starts: Vec<_> = (0..300)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move {
                    log.start_call(CallStart {
                        call_id: format!("load-{i}"),
                        caller: format!("+3630{i:07}"),
                        called: "100".into(),
                        started_at_ms: 1000 + i,
                        flow: Some("main".into()),
                        flow_version: Some("v1".into()),
                    })
                    .await
                })
            })
            .collect();
        let mut refs = Vec::new();
        for s in starts {
            refs.push(s.await.unwrap());
        }
        for (i, r) in refs.iter().enumerate() {
            let i = i as i64;
            if i % 2 == 0 {
                log.answered(*r, 2000 + i).await;
            }
            log.end_call(
                *r,
                CallEnd {
                    ended_at_ms: 3000 + i,
                    reason: EndReason::CallerHangup,
                    digits: i.to_string(),
                    path: vec!["greeting".into()],
                    variables: "{}".into(),
                    operator: None,
                    service: Default::default(),
                },
            )
            .await;
        }
        log.flush().await;
        assert!(!dir.exists(), "nothing journaled while the database works");
        let all = store.recent_calls(1000).await.unwrap();
        assert_eq!(all.len(), 300);
        let rec = store.call_by_call_id("load-42").await.unwrap().unwrap();
        assert_eq!(rec.caller, "+36300000042");
        assert_eq!(rec.answered_at_ms, Some(2042));
        assert_eq!(rec.ended_at_ms, Some(3042));
        assert_eq!(rec.digits, "42");
        assert_eq!(rec.path, "greeting");
        let odd = store.call_by_call_id("load-43").await.unwrap().unwrap();
        assert_eq!(odd.answered_at_ms, None);
        assert_eq!(odd.end_reason.as_deref(), Some("caller_hangup"));
    }
);

on_both_databases!(callback_requests_are_kept, |store: Store| async move {
    use hotline_core::callbacks::requests::{NewCallbackRequest, RequestSource};
    for (number, at) in [("+36301234567", 100), ("+36209876543", 200)] {
        store
            .insert_callback_request(&NewCallbackRequest {
                number,
                queue: Some("support"),
                promise: Some("promise_30min"),
                source: RequestSource::Ivr,
                call_id: Some("c@x"),
                requested_at_ms: at,
            })
            .await
            .unwrap();
    }
    let got = store.recent_callback_requests(10).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].number, "+36209876543", "newest first");
    assert_eq!(got[1].queue.as_deref(), Some("support"));
    assert_eq!(got[1].promise.as_deref(), Some("promise_30min"));
    assert_eq!(got[1].source, "ivr");
    assert_eq!(got[1].requested_at_ms, 100);
});

on_both_databases!(unanswered_and_abandoned_calls, |store: Store| async move {
    store_finished_call(
        &store,
        &CallStart {
            caller: "anonymous".into(),
            ..call_start("c1", 10)
        },
        &CallEnd {
            reason: EndReason::Cancelled,
            ..call_end(20)
        },
    )
    .await
    .unwrap();
    store
        .insert_call(&CallStart {
            caller: "200".into(),
            flow: Some("main".into()),
            flow_version: Some("v".into()),
            ..call_start("c2", 30)
        })
        .await
        .unwrap();
    // The open record has no node: a version before nodes wrote it, maybe a node not yet
    // upgraded whose call goes on. It is closed only once older than any call lasts.
    assert_eq!(store.close_lost_calls("node-a", 99).await.unwrap(), 0);
    let later = 30 + LEGACY_OPEN_CALL_MS + 1;
    assert_eq!(store.close_lost_calls("node-a", later).await.unwrap(), 1);
    let recent = store.recent_calls(10).await.unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0].call_id, "c2", "newest first");
    assert_eq!(recent[0].end_reason.as_deref(), Some("daemon_lost"));
    assert_eq!(recent[0].ended_at_ms, Some(later));
    assert_eq!(recent[1].answered_at_ms, None);
    assert_eq!(recent[1].end_reason.as_deref(), Some("cancelled"));
});

fn cdr_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("hotline-cdr-{}", rand::random::<u64>()))
}

fn cdr_options(dir: &std::path::Path) -> CdrOptions {
    CdrOptions {
        write_timeout: Duration::from_secs(2),
        retry_every: Duration::from_millis(50),
        ..CdrOptions::new(dir, "node-a")
    }
}

/// The store behind a switch that makes it fail like a database that is down.
#[derive(Clone)]
struct DownThenUp {
    store: Store,
    down: Arc<AtomicBool>,
}

impl DownThenUp {
    fn refused(&self) -> Option<SinkError> {
        self.down.load(Ordering::SeqCst).then(|| SinkError {
            transient: true,
            message: "connection refused".into(),
        })
    }
}

impl CdrSink for DownThenUp {
    async fn write_all(&self, writes: &[CdrWrite]) -> Result<(), SinkError> {
        match self.refused() {
            Some(e) => Err(e),
            None => self.store.write_all(writes).await,
        }
    }

    async fn close_lost_of_earlier_runs(
        &self,
        node: &str,
        this_run: &str,
        now_ms: i64,
    ) -> Result<u64, SinkError> {
        match self.refused() {
            Some(e) => Err(e),
            None => {
                self.store
                    .close_lost_of_earlier_runs(node, this_run, now_ms)
                    .await
            }
        }
    }
}

on_both_databases!(
    lost_calls_are_closed_once_the_database_is_back,
    |store: Store| async move {
        let now = chrono::Utc::now().timestamp_millis();
        // Open records: a call of this node's earlier run (killed), another node's
        // call, and two of a version before nodes: one going on (a node not yet
        // upgraded), one left for more than a day.
        let start = |key: &str, node: &str, id: &str| CdrWrite::Start {
            key: key.into(),
            node: node.into(),
            call: call_start(id, now - 60_000),
        };
        store
            .write_all(&[
                start("0123-1", "node-a", "earlier"),
                start("4567-1", "node-b", "other-node"),
            ])
            .await
            .unwrap();
        store
            .insert_call(&call_start("old-version-live", now - 60_000))
            .await
            .unwrap();
        store
            .insert_call(&call_start(
                "old-version-stale",
                now - LEGACY_OPEN_CALL_MS - 60_000,
            ))
            .await
            .unwrap();

        // The database is down when the daemon starts: nothing can be closed yet.
        let dir = cdr_dir();
        let down = Arc::new(AtomicBool::new(true));
        let sink = DownThenUp {
            store: store.clone(),
            down: down.clone(),
        };
        let (log, recovered) = CdrLog::start_recovered(sink, cdr_options(&dir)).await;
        assert!(recovered.is_err());
        // A call of this run, journaled meanwhile.
        log.start_call(call_start("this-run", now)).await;
        log.flush().await;

        down.store(false, Ordering::SeqCst);
        let reason = |id: &'static str| {
            let store = store.clone();
            async move {
                store
                    .call_by_call_id(id)
                    .await
                    .unwrap()
                    .and_then(|c| c.end_reason)
            }
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while reason("earlier").await.is_none() {
            assert!(Instant::now() < deadline, "the lost call never closed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(reason("earlier").await.as_deref(), Some("daemon_lost"));
        assert_eq!(
            reason("old-version-stale").await.as_deref(),
            Some("daemon_lost")
        );
        // Written before the close (the journal goes first), and left alone by it.
        assert!(store.call_by_call_id("this-run").await.unwrap().is_some());
        assert_eq!(reason("this-run").await, None);
        assert_eq!(reason("other-node").await, None);
        assert_eq!(reason("old-version-live").await, None);
        let _ = std::fs::remove_dir_all(&dir);
    }
);

/// The store, refusing (for itself) the start of one call.
#[derive(Clone)]
struct RefusingOneStart {
    store: Store,
    call_id: &'static str,
}

impl CdrSink for RefusingOneStart {
    async fn write_all(&self, writes: &[CdrWrite]) -> Result<(), SinkError> {
        let refused = writes
            .iter()
            .any(|w| matches!(w, CdrWrite::Start { call, .. } if call.call_id == self.call_id));
        if refused {
            return Err(SinkError {
                transient: false,
                message: "value too long".into(),
            });
        }
        self.store.write_all(writes).await
    }
}

on_both_databases!(
    the_answer_and_end_of_a_refused_start_are_kept_beside_it,
    |store: Store| async move {
        let dir = cdr_dir();
        let sink = RefusingOneStart {
            store: store.clone(),
            call_id: "refused",
        };
        let log = CdrLog::start(sink, cdr_options(&dir));
        let refused = log.start_call(call_start("refused", 10)).await;
        log.answered(refused, 15).await;
        log.end_call(refused, call_end(20)).await;
        let fine = log.start_call(call_start("fine", 30)).await;
        log.end_call(fine, call_end(40)).await;
        log.flush().await;
        let rejected = std::fs::read_to_string(dir.join(REJECTED_FILE)).unwrap();
        let lines: Vec<&str> = rejected.lines().collect();
        assert_eq!(lines.len(), 3, "{rejected}");
        assert!(lines[0].contains("start of refused"), "{rejected}");
        assert!(lines[1].contains("answer of"), "{rejected}");
        assert!(
            lines[2].contains("end of") && lines[2].contains("no record"),
            "{rejected}"
        );
        assert!(store.call_by_call_id("refused").await.unwrap().is_none());
        let fine = store.call_by_call_id("fine").await.unwrap().unwrap();
        assert_eq!(fine.ended_at_ms, Some(40));
        // An end written twice (replayed after an unknown outcome) is no refusal.
        let again = CdrWrite::End {
            key: "0123-9".into(),
            end: call_end(60),
        };
        store
            .write_all(&[CdrWrite::Start {
                key: "0123-9".into(),
                node: "node-a".into(),
                call: call_start("twice", 50),
            }])
            .await
            .unwrap();
        store.write_all(std::slice::from_ref(&again)).await.unwrap();
        store.write_all(std::slice::from_ref(&again)).await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
);

on_both_databases!(migrations_are_idempotent, |store: Store| async move {
    store.migrate().await.unwrap();
    assert!(store.recent_calls(1).await.unwrap().is_empty());
});

on_both_databases!(
    operators_are_unique_and_validated,
    |store: Store| async move {
        use hotline_core::operators::{NewOperator, OperatorError};
        let anna = NewOperator {
            name: "anna",
            display_name: "Anna Kovács",
            sip_user: "1001",
            realm: "hotline",
            ha1_md5: "0123",
            ha1_sha256: "4567",
            sip_digest: Default::default(),
            chat_capacity: 3,
            created_at_ms: 5,
        };
        store.add_operator(&anna).await.unwrap();
        // Same name, or same SIP user: refused.
        assert!(matches!(
            store.add_operator(&anna).await,
            Err(OperatorError::Exists(..))
        ));
        let same_user = NewOperator {
            name: "bela",
            ..anna
        };
        assert!(matches!(
            store.add_operator(&same_user).await,
            Err(OperatorError::Exists(..))
        ));
        let bad = NewOperator {
            name: "bad name",
            sip_user: "1002",
            ..anna
        };
        assert!(matches!(
            store.add_operator(&bad).await,
            Err(OperatorError::Invalid(_))
        ));
        let too_many_chats = NewOperator {
            name: "cili",
            sip_user: "1003",
            chat_capacity: 11,
            ..anna
        };
        assert!(matches!(
            store.add_operator(&too_many_chats).await,
            Err(OperatorError::Invalid(_))
        ));
        let ops = store.operators().await.unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].display_name, "Anna Kovács");
        assert_eq!(
            (ops[0].ha1_md5.as_str(), ops[0].ha1_sha256.as_str()),
            ("0123", "4567")
        );
        // MD5 unless chosen; SHA-256 per account.
        assert_eq!(ops[0].sip_digest, "MD5");
        use hotline_core::operators::SipDigest;
        assert!(
            store
                .set_sip_digest("anna", SipDigest::Sha256)
                .await
                .unwrap()
        );
        assert!(
            !store
                .set_sip_digest("nobody", SipDigest::Sha256)
                .await
                .unwrap()
        );
        assert_eq!(store.operators().await.unwrap()[0].sip_digest, "SHA-256");
    }
);

on_both_databases!(missed_calls_are_kept, |store: Store| async move {
    use hotline_core::callbacks::missed::{MissedReason, NewMissedCall};
    store
        .insert_missed_call(&NewMissedCall {
            number: "+36301234567",
            call_id: "m1",
            queue: Some("support"),
            reason: MissedReason::Abandoned,
            waited_ms: 42_000,
            path: "hours who main_menu support_queue",
            missed_at_ms: 77,
        })
        .await
        .unwrap();
    let got = store.recent_missed_calls(5).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].reason, "abandoned");
    assert_eq!(got[0].waited_ms, 42_000);
    assert_eq!(got[0].queue.as_deref(), Some("support"));
});

on_both_databases!(
    an_operators_chosen_state_is_kept_for_a_restart,
    |store: Store| async move {
        use hotline_core::operators::NewOperator;
        let anna = NewOperator {
            name: "anna",
            display_name: "",
            sip_user: "1001",
            realm: "hotline",
            ha1_md5: "0123",
            ha1_sha256: "4567",
            sip_digest: Default::default(),
            chat_capacity: 3,
            created_at_ms: 5,
        };
        store.add_operator(&anna).await.unwrap();
        // Never chosen: offline.
        assert_eq!(
            store.operator_chosen_states().await.unwrap(),
            vec![("anna".to_string(), "offline".to_string())]
        );
        assert!(
            store
                .set_operator_chosen_state("anna", "online")
                .await
                .unwrap()
        );
        assert!(
            store
                .set_operator_chosen_state("anna", "pause")
                .await
                .unwrap()
        );
        assert_eq!(
            store.operator_chosen_states().await.unwrap(),
            vec![("anna".to_string(), "pause".to_string())]
        );
        // Nobody by that name: nothing kept.
        assert!(
            !store
                .set_operator_chosen_state("zoe", "online")
                .await
                .unwrap()
        );
    }
);

/// A SQLite file is in WAL mode (one fsync per checkpoint, readers beside the writer),
/// not the rollback journal the URL alone leaves it in.
#[tokio::test]
async fn a_sqlite_file_is_in_wal_mode() {
    use sqlx::Row;
    let dir = std::env::temp_dir().join(format!("hotline-wal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/hotline.db?mode=rwc", dir.display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let row = sqlx::query("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let mode: String = row.try_get(0).unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

// What happened after the IVR (T6, S3): the queue, wait and hold, every leg with its ring
// and talk time and who transferred to whom; the CSV shows it as Master.csv admins read it.
on_both_databases!(call_legs_round_trip, |store: Store| async move {
    use hotline_core::cdr::{CallLeg, LegOutcome, Service};
    let t = 1_700_000_000_000;
    let id = store
        .insert_call(&CallStart {
            called: "500".into(),
            flow: Some("queue-test".into()),
            flow_version: Some("v1".into()),
            ..call_start("legs@192.0.2.1", t)
        })
        .await
        .unwrap();
    store.set_call_answered(id, t + 100).await.unwrap();
    let leg = |operator: &str, rang: i64, answered: Option<i64>, ended: i64, outcome| CallLeg {
        operator: Some(operator.into()),
        number: None,
        rang_at_ms: t + rang,
        answered_at_ms: answered.map(|a| t + a),
        ended_at_ms: t + ended,
        outcome,
        hold_ms: 0,
        transferred_to: None,
    };
    let service = Service {
        queue: Some("support".into()),
        wait_ms: Some(7_000),
        hold_ms: 4_000,
        legs: vec![
            leg("anna", 1_000, None, 6_000, LegOutcome::NoAnswer),
            CallLeg {
                hold_ms: 4_000,
                transferred_to: Some("cili".into()),
                ..leg("bela", 6_000, Some(8_000), 38_000, LegOutcome::Answered)
            },
            leg("cili", 38_000, Some(39_000), 61_000, LegOutcome::Answered),
        ],
    };
    let end = CallEnd {
        path: vec!["wait".into()],
        operator: Some("cili".into()),
        service: service.clone(),
        ..call_end(t + 61_000)
    };
    store.finish_call(id, &end).await.unwrap();
    // A late second end adds nothing.
    store.finish_call(id, &end).await.unwrap();
    assert!(
        store
            .set_call_wrapup(
                "legs@192.0.2.1",
                Some("billing"),
                Some("asked for a refund"),
                Some("refund")
            )
            .await
            .unwrap()
    );
    let rec = store
        .call_by_call_id("legs@192.0.2.1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.service, service);
    assert_eq!(rec.transfers(), 1);
    assert_eq!(rec.wrapup_category.as_deref(), Some("billing"));
    assert_eq!(rec.wrapup_tags.as_deref(), Some("refund"));
    let csv = rec.to_csv();
    let tail: Vec<&str> = csv.split(',').skip(14).collect();
    assert_eq!(
        tail,
        [
            "2023-11-14T22:13:20.000Z",
            "2023-11-14T22:13:20.100Z",
            "2023-11-14T22:14:21.000Z",
            "61",
            "60",
            "support",
            "7000",
            "4000",
            "1",
            "anna no_answer ring 5.0s; bela answered ring 2.0s talk 26.0s hold 4.0s to cili; \
             cili answered ring 1.0s talk 22.0s",
            "billing",
            "asked for a refund",
            "",
            "refund",
        ]
    );
    assert_eq!(
        hotline_core::cdr::CSV_HEADER.split(',').count(),
        csv.split(',').count()
    );
    // --since/--until pick by start.
    assert_eq!(
        store
            .calls_between(Some(t), Some(t + 1), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .calls_between(Some(t + 1), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
});
