//! The supervisors' audit log (`hotline_core::monitoring`) on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests may unwrap

#[macro_use]
mod common;

use hotline_core::monitoring::MonitoringEntry;
use hotline_core::store::Store;

fn entry(at_ms: i64, action: &str, detail: Option<&str>) -> MonitoringEntry {
    MonitoringEntry {
        at_ms,
        supervisor: "sara".into(),
        call_id: "c-1".into(),
        caller: "+36201234567".into(),
        operator: "anna".into(),
        queue: (at_ms > 1).then(|| "support".to_string()),
        action: action.into(),
        detail: detail.map(str::to_string),
    }
}

on_both_databases!(entries_come_back_newest_first, |store: Store| async move {
    let written = [
        entry(1, "listen", None),
        entry(2, "whisper", None),
        entry(3, "ended", Some("Stopped.")),
    ];
    for e in &written {
        store.log_monitoring(e).await.unwrap();
    }
    let read = store.monitoring_log(2).await.unwrap();
    assert_eq!(read, [written[2].clone(), written[1].clone()]);
});
