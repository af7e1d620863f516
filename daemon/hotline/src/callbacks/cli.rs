//! The callback commands: `hotline callbacks` (requests), `missed`, `callback-list` and
//! `callback-report`, read from the configured database and printed.

use std::path::Path;

use hotline_core::cdr::csv_field;
use hotline_core::store::{Store, StoreError};
use hotline_core::time::unix_ms;

use crate::config::{Config, ProcessEnv};

/// Reads with `read` from the configured database, closed again before anything prints.
async fn read_store<T>(
    config_path: Option<&Path>,
    read: impl AsyncFnOnce(&Store) -> Result<T, StoreError>,
) -> Result<T, String> {
    let config = Config::load_for_command(config_path, &ProcessEnv).map_err(|e| e.to_string())?;
    let store = crate::open_existing_store(&config).await?;
    let result = read(&store).await.map_err(|e| e.to_string());
    store.close().await;
    result
}

/// Callback requests as the IVR recorded them, newest first.
pub async fn requests(config_path: Option<&Path>, limit: i64) -> Result<(), String> {
    let requests = read_store(config_path, async |s| {
        s.recent_callback_requests(limit).await
    })
    .await?;
    println!("{}", hotline_core::callbacks::requests::CSV_HEADER);
    for r in requests {
        println!("{}", r.to_csv());
    }
    Ok(())
}

/// Missed calls, newest first.
pub async fn missed(config_path: Option<&Path>, limit: i64) -> Result<(), String> {
    let missed = read_store(config_path, async |s| s.recent_missed_calls(limit).await).await?;
    println!("{}", hotline_core::callbacks::missed::CSV_HEADER);
    for m in missed {
        println!("{}", m.to_csv());
    }
    Ok(())
}

/// The shared callback list as operators see it now.
pub async fn list(config_path: Option<&Path>, limit: i64) -> Result<(), String> {
    let list = read_store(config_path, async |s| {
        s.callback_list(unix_ms(), limit).await
    })
    .await?;
    println!("id,number,count,first_at_ms,last_at_ms,queue,source,promised_at_ms,attempts");
    for e in list {
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        println!(
            "{},{},{},{},{},{},{},{},{}",
            e.id,
            csv_field(&e.number),
            e.count,
            e.first_at_ms,
            e.last_at_ms,
            csv_field(e.queue.as_deref().unwrap_or("")),
            e.source.as_str(),
            opt(e.promised_at_ms),
            e.attempts
        );
    }
    Ok(())
}

/// How promised callback times were kept, for entries first noted in the last `days`.
pub async fn promise_report(config_path: Option<&Path>, days: i64) -> Result<(), String> {
    if !(1..=3650).contains(&days) {
        return Err(format!("--days {days}: give 1–3650"));
    }
    let now = unix_ms();
    let r = read_store(config_path, async |s| {
        s.callback_promise_report(now - days * 86_400_000, now + 1, now)
            .await
    })
    .await?;
    println!("callback promises, entries of the last {days} days:");
    println!("  kept (called back by the promised time): {}", r.kept);
    println!("  late (called back after it):             {}", r.late);
    println!("  overdue (not called back, time passed):  {}", r.overdue);
    println!("  pending (not called back, time ahead):   {}", r.pending);
    println!(
        "  no promise made:                         {}",
        r.unpromised
    );
    Ok(())
}
