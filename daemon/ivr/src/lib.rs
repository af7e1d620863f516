//! IVR flows for Hotline: admins keep call flows as TOML files in a
//! directory (see `ivr-flows/README.md` for the format); this crate loads and
//! validates them ([`load_dir`]) and walks one call through a flow
//! ([`FlowRun`]).
//!
//! Pure by design: the loader reads files, but the interpreter does no I/O
//! and never reads the clock — events carry `now`, and the daemon performs
//! the [`Action`]s it returns. That keeps `flow simulate` and tests exact.

mod error;
mod load;
mod model;
mod parse;
mod run;
mod sha256;
mod wav;

pub use error::{FlowError, Loc};
pub use load::{FlowSet, load_dir};
pub use model::{Choice, Flow, Hangup, Menu, Play, Ref, Step, StepKind};
pub use run::{Action, FlowRun};
pub use wav::silent_wav;
