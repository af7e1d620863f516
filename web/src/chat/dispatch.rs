//! The offer loop: each waiting chat, oldest first, is offered to one operator who has
//! the chat page open on this node, is online (not on a call, not away or paused), is in
//! the chat's queue (or is the operator it was transferred to), never declined it, and
//! has room under their capacity, the least loaded first. The store makes the offer one
//! exclusive update, so two nodes never offer one chat twice or overfill an operator.
//! Unanswered offers are taken back after `offer_timeout_secs`. Each round also tells the
//! queues how many chats each connected operator has: with any, no voice call rings them.
//!
//! After each round, waiting visitors whose place in the queue changed are told.
//!
//! Beside it runs the tail: one query a second for the chats that got events lately,
//! whichever node stored them, so sockets here learn of other nodes' events without
//! each polling the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hotline_core::chat::{ChatError, ChatState};
use serde_json::json;

use super::publish;
use super::view::chat_view;
use crate::state::WebState;
use crate::unix_ms;

/// Also runs this often when nothing wakes it (expiries, other nodes' chats).
const TICK: Duration = Duration::from_secs(1);

/// How far back the tail looks each time (events commit out of id order on PostgreSQL:
/// a window, not a cursor).
const TAIL_WINDOW_MS: i64 = 15_000;

pub fn spawn(state: Arc<WebState>) {
    super::sweep::spawn(state.clone());
    let tail = state.clone();
    tokio::spawn(async move {
        let mut seen: HashMap<i64, i64> = HashMap::new();
        // Both loops end with the store (the daemon is stopping).
        while !tail.store.is_closed() {
            tokio::time::sleep(TICK).await;
            let since = unix_ms() - TAIL_WINDOW_MS;
            match tail.store.recent_chat_activity(since).await {
                Ok(rows) => {
                    let mut now_seen = HashMap::with_capacity(rows.len());
                    for (chat, seq) in rows {
                        if seen.get(&chat).is_none_or(|s| *s < seq) {
                            publish(&tail, chat).await;
                        }
                        now_seen.insert(chat, seq);
                    }
                    seen = now_seen;
                }
                Err(e) if !tail.store.is_closed() => tracing::warn!("chat tail: {e}"),
                Err(_) => {}
            }
        }
    });
    tokio::spawn(async move {
        let mut places = HashMap::new();
        while !state.store.is_closed() {
            if let Err(e) = round(&state).await
                && !state.store.is_closed()
            {
                tracing::warn!("chat offers: {e}");
            }
            if let Err(e) = tell_places(&state, &mut places).await
                && !state.store.is_closed()
            {
                tracing::warn!("chat queue places: {e}");
            }
            tokio::select! {
                _ = state.chat.hub.dispatch.notified() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    });
}

/// Tells waiting visitors on this node their place in the queue when it changed (one
/// query a round, whatever the number of visitors).
async fn tell_places(
    state: &WebState,
    told: &mut HashMap<i64, (ChatState, i64)>,
) -> Result<(), ChatError> {
    let now: HashMap<i64, (ChatState, i64)> = state
        .store
        .queue_positions()
        .await?
        .into_iter()
        .map(|(chat, chat_state, position)| (chat, (chat_state, position)))
        .collect();
    for (chat, place) in &now {
        if told.get(chat) != Some(place) {
            let (chat_state, position) = place;
            state.chat.hub.to_visitor(
                *chat,
                &json!({ "t": "state", "state": chat_state, "position": position }),
            );
        }
    }
    *told = now;
    Ok(())
}

async fn round(state: &WebState) -> Result<(), ChatError> {
    let store = &state.store;
    let hub = &state.chat.hub;
    let now = unix_ms();
    for (chat, operator) in store.expire_offers(now).await? {
        tracing::info!(chat, %operator, "chat offer not answered in time");
        hub.to_operator(&operator, &json!({ "t": "offer_gone", "chat": chat }));
        publish(state, chat).await;
    }
    // Who could take a chat now: online here, with room. (Voice only without another
    // conversation: the queues learn each operator's chats on the way.)
    let mut open = Vec::new(); // (load, capacity, operator)
    for op in hub.connected_operators() {
        let (load, capacity) = store.chat_room(&op).await?;
        state.telephony.set_chat_load(&op, load).await;
        if load < capacity
            && state.telephony.operator_status(&op).await.as_deref() == Some("online")
        {
            open.push((load, capacity, op));
        }
    }
    if open.is_empty() {
        // However long the queue, nobody can take a chat: it isn't read.
        return Ok(());
    }
    let timeout_ms = i64::try_from(state.chat.config.offer_timeout_secs)
        .unwrap_or(30)
        .saturating_mul(1000);
    for chat in store.waiting_chats(now).await? {
        if open.is_empty() {
            break;
        }
        let members = state.telephony.queue_members(&chat.queue);
        let mut candidates: Vec<(i64, String)> = open
            .iter()
            .filter(|(_, _, op)| match &chat.for_operator {
                Some(target) => target == op,
                None => members.contains(op),
            })
            .map(|(load, _, op)| (*load, op.clone()))
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let declined = store.chat_declines(chat.id).await?;
        candidates.retain(|(_, op)| !declined.contains(op));
        // Least loaded first.
        candidates.sort();
        for (_, op) in candidates {
            let expires = now.saturating_add(timeout_ms);
            if store.offer_chat(chat.id, &op, now, expires).await? {
                tracing::info!(chat = chat.id, operator = %op, "chat offered");
                if let Some(i) = open.iter().position(|(_, _, o)| *o == op) {
                    open[i].0 += 1;
                    if open[i].0 >= open[i].1 {
                        open.remove(i);
                    }
                }
                let Some(offered) = store.chat(chat.id).await? else {
                    break;
                };
                let view = chat_view(state, &offered).await;
                hub.to_operator(
                    &op,
                    &json!({ "t": "offer", "chat": view, "expires_at": expires, "now": now }),
                );
                publish(state, chat.id).await;
                break;
            }
        }
    }
    Ok(())
}
