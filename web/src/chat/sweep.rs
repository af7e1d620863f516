//! The chat's housekeeping, every [`SWEEP_EVERY`]: this node's connected visitors are
//! marked seen; waiting chats whose visitor has been gone for
//! `chat.abandon_waiting_after_secs` end, with their `chat.ended` webhook (so a flood of
//! started chats leaves nothing in the queue); files uploaded but never sent are removed
//! after `chat.unsent_files_after_secs`; idle rate-limit budgets are forgotten.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::publish;
use crate::state::WebState;
use crate::unix_ms;

/// Well below the shortest `abandon_waiting_after_secs` (60): a visitor connected to any
/// node is always seen more recently than that.
pub const SWEEP_EVERY: Duration = Duration::from_secs(15);

/// Upload leftovers (`*.part`, from a daemon stopped mid-upload) are looked for this
/// often: it reads the whole directory.
const PART_SCAN_EVERY_MS: i64 = 10 * 60 * 1000;

pub fn spawn(state: Arc<WebState>) {
    tokio::spawn(async move {
        let mut last_part_scan = 0;
        while !state.store.is_closed() {
            tokio::time::sleep(SWEEP_EVERY).await;
            let now = unix_ms();
            sweep(&state, now).await;
            if now - last_part_scan >= PART_SCAN_EVERY_MS {
                last_part_scan = now;
                remove_stale_parts(&state, now).await;
            }
        }
    });
}

/// One round at `now_ms` (the tests pass their own time).
pub async fn sweep(state: &WebState, now_ms: i64) {
    let store = &state.store;
    let config = &state.chat.config;
    let hub = &state.chat.hub;
    if let Err(e) = store
        .touch_chat_visitors(&hub.visitor_chats(), now_ms)
        .await
    {
        tracing::warn!("chat sweep: marking visitors seen: {e}");
    }
    match store
        .end_abandoned_chats(now_ms - config.abandon_waiting_after_ms(), now_ms)
        .await
    {
        Ok(ended) => {
            for c in &ended {
                tracing::info!(
                    chat = c.chat_id,
                    "chat ended: the visitor left before an operator took it"
                );
                if let Some(op) = &c.offered_to {
                    hub.to_operator(op, &json!({ "t": "offer_gone", "chat": c.chat_id }));
                }
                publish(state, c.chat_id).await;
                super::post_ended(state, c.chat_id).await;
            }
            if !ended.is_empty() {
                hub.dispatch.notify_one();
            }
        }
        Err(e) if !store.is_closed() => tracing::warn!("chat sweep: abandoned chats: {e}"),
        Err(_) => {}
    }
    match store
        .remove_unsent_chat_files(now_ms - config.unsent_files_after_ms())
        .await
    {
        Ok(ids) => {
            let dir = super::files::dir(state);
            for id in &ids {
                if let Err(e) = tokio::fs::remove_file(dir.join(id)).await
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!("chat sweep: removing unsent file {id}: {e}");
                }
            }
            if !ids.is_empty() {
                tracing::info!("chat sweep: removed {} files never sent", ids.len());
            }
        }
        Err(e) if !store.is_closed() => tracing::warn!("chat sweep: unsent files: {e}"),
        Err(_) => {}
    }
    state.chat.limiters().forget_idle();
}

/// Removes `*.part` files older than `unsent_files_after_secs` (uploads cut off by a
/// stop: a running upload writes to its part all the time).
pub async fn remove_stale_parts(state: &WebState, now_ms: i64) {
    let dir = super::files::dir(state);
    let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
        return;
    };
    let max_age = Duration::from_millis(
        u64::try_from(state.chat.config.unsent_files_after_ms()).unwrap_or(u64::MAX),
    );
    let now = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(now_ms).unwrap_or(0));
    while let Ok(Some(entry)) = entries.next_entry().await {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("part") {
            continue;
        }
        let stale = entry
            .metadata()
            .await
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > max_age);
        if stale {
            let _ = tokio::fs::remove_file(&path).await;
        }
    }
}
