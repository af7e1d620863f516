//! IVR flows for Hotline: admins keep call flows as TOML files in a
//! directory (see `ivr-flows/README.md` for the format); this crate loads and
//! checks them with the queues, calendars, VIP lists and prompts they use
//! ([`load_dir`], [`check_dir`]), walks one call through a flow
//! ([`FlowRun`]) and simulates calls on a virtual clock ([`simulate`]).
//! Queues carry their callback settings ([`CallbackSettings`]), with the
//! windows in which auto-callbacks may dial ([`CallbackWindow`]).
//!
//! Pure by design: the loader reads files, but the interpreter does no I/O
//! and never reads the clock — events carry `now`, and the daemon performs
//! the [`Action`]s it returns. That keeps `flow simulate` and tests exact.

pub mod calendar;
mod check;
pub mod dialplan;
mod error;
mod load;
mod model;
pub mod number;
mod parse;
mod queues;
mod run;
mod schema;
mod sim;
mod vars;
mod vip;
mod wav;
pub mod window;

pub use error::{FlowError, Loc};
pub use load::{CheckReport, FlowSet, check_dir, load_dir};
pub use model::{
    Callback, CallerBranch, CallerMatch, CallerRule, Choice, DaySel, Flow, Goto, Hangup, Menu,
    OfferRule, OfferSet, OfferWhen, Play, Queue, Ref, STEP_TYPES, Schedule, SetVars, Step,
    StepKind, Transfer, TransferTo,
};
pub use queues::{
    CallbackMode, CallbackPolicy, CallbackSettings, DEFAULT_CALLBACK_MAX_SHARE,
    DEFAULT_CONFIRM_KEY, DEFAULT_HIDE_AFTER_FAILURE_SECS, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_DELAY_SECS, DEFAULT_SUCCESS_AFTER_SECS, QUEUES_FILE, QueueDef, RecordMode,
};
pub use run::{Action, CallContext, FlowRun, QueueStatus, TransferTarget, describe_target};
pub use schema::FLOW_SCHEMA_JSON;
pub use sim::{SimError, SimInput, SimLine, simulate};
pub use vip::VipList;
pub use wav::silent_wav;
pub use window::{CallbackWindow, WindowError, WindowRule};
