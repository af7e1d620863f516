//! hotline-core: the contact-center logic between the protocol cores and the web:
//! the store (sqlx on SQLite/PostgreSQL), call detail records, the IVR call that joins
//! a caller's RTP session to a flow run, queues (ACD), web users, visual sessions and the
//! notifications (SMS, e-mail) they send, the shared callback list, and web chat.
//!
//! It owns no sockets and reads no clock in its call logic; the `hotline` binary drives it.

pub mod acd;
pub mod address;
pub mod api_tokens;
pub mod call_session;
pub mod callbacks;
pub mod cdr;
pub mod chat;
pub mod direct;
pub mod ivr_call;
pub mod monitoring;
pub mod notify;
pub mod operator_states;
pub mod operators;
pub mod recordings;
pub mod reports;
pub mod store;
pub mod tasks;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod time;
pub mod tokens;
pub mod users;
pub mod visual;
