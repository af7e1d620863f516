//! Call records when the database fails, and after a crash (issue 15): the journal, its
//! replay into the real store, idempotent writes, and `daemon_lost`. Every test runs on
//! SQLite and on PostgreSQL (see `common`).

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hotline_core::cdr::{
    CallEnd, CallStart, CdrLog, CdrOptions, CdrSink, CdrWrite, EndReason, JOURNAL_FILE, SinkError,
    recover,
};
use hotline_core::store::Store;

/// The real store behind a switch that makes it fail like a database that is down.
#[derive(Clone)]
struct Flaky {
    store: Store,
    down: Arc<AtomicBool>,
}

impl CdrSink for Flaky {
    async fn write_all(&self, writes: &[CdrWrite]) -> Result<(), SinkError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(SinkError {
                transient: true,
                message: "connection refused".into(),
            });
        }
        self.store.write_all(writes).await
    }
}

fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("hotline-cdr-test-{:016x}", rand::random::<u64>()))
}

fn options(dir: &std::path::Path, node: &str) -> CdrOptions {
    CdrOptions {
        write_timeout: Duration::from_secs(2),
        retry_every: Duration::from_millis(50),
        ..CdrOptions::new(dir, node)
    }
}

fn start(call_id: &str, at: i64) -> CallStart {
    CallStart {
        call_id: call_id.into(),
        caller: "+36301234567".into(),
        called: "100".into(),
        started_at_ms: at,
        flow: Some("main".into()),
        flow_version: Some("v1".into()),
    }
}

fn end(at: i64) -> CallEnd {
    CallEnd {
        ended_at_ms: at,
        reason: EndReason::CallerHangup,
        digits: "1".into(),
        path: vec!["greeting".into()],
        variables: "{}".into(),
        operator: None,
        service: Default::default(),
    }
}

on_both_databases!(
    records_survive_an_outage_and_a_crash,
    |store: Store| async move {
        let dir = temp_dir();
        let down = Arc::new(AtomicBool::new(false));
        let flaky = Flaky {
            store: store.clone(),
            down: down.clone(),
        };
        let log = CdrLog::start(flaky, options(&dir, "node-a"));
        // Written while the database works: the row is there from the start, open.
        let talking = log.start_call(start("talking", 1000)).await;
        log.answered(talking, 1100).await;
        let ending = log.start_call(start("ending", 1200)).await;
        log.flush().await;
        let open = store.call_by_call_id("talking").await.unwrap().unwrap();
        assert_eq!((open.answered_at_ms, open.ended_at_ms), (Some(1100), None));

        // The database goes down: a new call and an end go to the journal.
        down.store(true, Ordering::SeqCst);
        let late = log.start_call(start("late", 1300)).await;
        log.end_call(ending, end(1400)).await;
        log.answered(late, 1350).await;
        log.flush().await;
        assert!(dir.join(JOURNAL_FILE).exists());
        assert!(store.call_by_call_id("late").await.unwrap().is_none());

        // Killed here (kill -9): the writer never sees the database again. Another node
        // has a call open in the same database meanwhile.
        drop(log);
        let other = CdrLog::start(store.clone(), options(&temp_dir(), "node-b"));
        other.start_call(start("elsewhere", 1500)).await;
        other.flush().await;

        // The restart: the journal goes in, then what is still open of ours is lost.
        let done = recover(&store, &options(&dir, "node-a"), 9000)
            .await
            .unwrap();
        assert_eq!(done.replayed, 3);
        assert_eq!(done.lost, 2, "talking and late");
        assert!(!dir.join(JOURNAL_FILE).exists());
        let ending = store.call_by_call_id("ending").await.unwrap().unwrap();
        assert_eq!(ending.end_reason.as_deref(), Some("caller_hangup"));
        assert_eq!(ending.ended_at_ms, Some(1400));
        let late = store.call_by_call_id("late").await.unwrap().unwrap();
        assert_eq!(late.answered_at_ms, Some(1350));
        assert_eq!(late.end_reason.as_deref(), Some("daemon_lost"));
        assert_eq!(late.ended_at_ms, Some(9000));
        let talking = store.call_by_call_id("talking").await.unwrap().unwrap();
        assert_eq!(talking.end_reason.as_deref(), Some("daemon_lost"));
        let elsewhere = store.call_by_call_id("elsewhere").await.unwrap().unwrap();
        assert_eq!(
            elsewhere.ended_at_ms, None,
            "another node's call is left alone"
        );
        assert_eq!(store.recent_calls(100).await.unwrap().len(), 4);
        let _ = std::fs::remove_dir_all(&dir);
    }
);

on_both_databases!(
    writes_are_idempotent_and_a_real_end_replaces_daemon_lost,
    |store: Store| async move {
        let key = "run1-1".to_string();
        let start = CdrWrite::Start {
            key: key.clone(),
            node: "node-a".into(),
            call: start("twice", 10),
        };
        let mut finish = end(50);
        finish.service.legs.push(hotline_core::cdr::CallLeg {
            operator: Some("anna".into()),
            number: None,
            rang_at_ms: 20,
            answered_at_ms: Some(25),
            ended_at_ms: 50,
            outcome: hotline_core::cdr::LegOutcome::Answered,
            hold_ms: 0,
            transferred_to: None,
        });
        let finish = CdrWrite::End {
            key: key.clone(),
            end: finish,
        };
        // A write whose commit was not confirmed is written again from the journal.
        store.write_all(std::slice::from_ref(&start)).await.unwrap();
        store.write_all(std::slice::from_ref(&start)).await.unwrap();
        assert_eq!(store.recent_calls(10).await.unwrap().len(), 1);
        // Killed before the end reached the database; the restart closes the record...
        assert_eq!(store.close_lost_calls("node-a", 99).await.unwrap(), 1);
        // ...and the end, replayed from the journal afterwards, is the real one.
        store
            .write_all(std::slice::from_ref(&finish))
            .await
            .unwrap();
        store
            .write_all(std::slice::from_ref(&finish))
            .await
            .unwrap();
        let rec = store.call_by_call_id("twice").await.unwrap().unwrap();
        assert_eq!(rec.end_reason.as_deref(), Some("caller_hangup"));
        assert_eq!(rec.ended_at_ms, Some(50));
        assert_eq!(rec.service.legs.len(), 1, "no leg twice");
    }
);
