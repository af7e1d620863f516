//! Who is connected to this node: visitors' sockets per chat and operators' chat sockets
//! per operator. Events are in the store before anyone is woken; a wake makes a socket
//! read what it has not sent yet, so a lost wake costs latency, never a message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Notify, mpsc};

/// What a socket task is told.
#[derive(Clone, Debug)]
pub enum Push {
    /// The chat has news in the store (events, state, details): read and send it.
    Wake(i64),
    /// A frame that is never stored (typing, drafts, offers), as JSON text.
    Frame(String),
}

pub type PushTx = mpsc::UnboundedSender<Push>;

#[derive(Default)]
pub struct ChatHub {
    visitors: Mutex<HashMap<i64, Vec<(u64, PushTx)>>>,
    operators: Mutex<HashMap<String, Vec<(u64, PushTx)>>>,
    next: AtomicU64,
    /// Wakes the offer loop: a chat waits, an offer was refused, capacity was freed.
    pub dispatch: Notify,
}

fn send_all(list: Option<&Vec<(u64, PushTx)>>, push: &Push) {
    for (_, tx) in list.into_iter().flatten() {
        let _ = tx.send(push.clone());
    }
}

impl ChatHub {
    fn id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    pub fn join_visitor(&self, chat: i64, tx: PushTx) -> u64 {
        let id = self.id();
        if let Ok(mut m) = self.visitors.lock() {
            m.entry(chat).or_default().push((id, tx));
        }
        id
    }

    pub fn leave_visitor(&self, chat: i64, id: u64) {
        if let Ok(mut m) = self.visitors.lock()
            && let Some(list) = m.get_mut(&chat)
        {
            list.retain(|(i, _)| *i != id);
            if list.is_empty() {
                m.remove(&chat);
            }
        }
    }

    pub fn join_operator(&self, operator: &str, tx: PushTx) -> u64 {
        let id = self.id();
        if let Ok(mut m) = self.operators.lock() {
            m.entry(operator.to_string()).or_default().push((id, tx));
        }
        self.dispatch.notify_one();
        id
    }

    pub fn leave_operator(&self, operator: &str, id: u64) {
        if let Ok(mut m) = self.operators.lock()
            && let Some(list) = m.get_mut(operator)
        {
            list.retain(|(i, _)| *i != id);
            if list.is_empty() {
                m.remove(operator);
            }
        }
    }

    /// Chats whose visitor has a socket open on this node.
    pub fn visitor_chats(&self) -> Vec<i64> {
        self.visitors
            .lock()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Operators with the chat page open on this node.
    pub fn connected_operators(&self) -> Vec<String> {
        self.operators
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The chat's visitor sockets and the named operators' sockets read what is new.
    pub fn wake(&self, chat: i64, operators: &[String]) {
        let push = Push::Wake(chat);
        if let Ok(m) = self.visitors.lock() {
            send_all(m.get(&chat), &push);
        }
        if let Ok(m) = self.operators.lock() {
            for op in operators {
                send_all(m.get(op), &push);
            }
        }
    }

    pub fn to_visitor(&self, chat: i64, frame: &serde_json::Value) {
        if let Ok(m) = self.visitors.lock() {
            send_all(m.get(&chat), &Push::Frame(frame.to_string()));
        }
    }

    pub fn to_operator(&self, operator: &str, frame: &serde_json::Value) {
        if let Ok(m) = self.operators.lock() {
            send_all(m.get(operator), &Push::Frame(frame.to_string()));
        }
    }
}
