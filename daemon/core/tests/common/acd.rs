//! The ACD on a virtual clock, as its test files drive it: durations, caller ids, the
//! actions it emits and operators online in queues.

use std::time::{Duration, Instant};

use hotline_core::acd::{Acd, AcdAction, CallerId, CallerKind, OperatorState, QueueConfig};

pub const IN: CallerKind = CallerKind::Inbound;

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn c(n: u64) -> CallerId {
    CallerId(n)
}

pub fn drain(acd: &mut Acd) -> Vec<AcdAction> {
    std::iter::from_fn(|| acd.poll_action()).collect()
}

/// Everything but the `Waiting` reports.
pub fn events(acd: &mut Acd) -> Vec<AcdAction> {
    drain(acd)
        .into_iter()
        .filter(|a| !matches!(a, AcdAction::Waiting { .. }))
        .collect()
}

pub fn ring(caller: u64, operator: &str, queue: &str) -> AcdAction {
    AcdAction::Ring {
        caller: c(caller),
        operator: operator.into(),
        queue: queue.into(),
    }
}

pub fn cancel(caller: u64, operator: &str) -> AcdAction {
    AcdAction::CancelRing {
        caller: c(caller),
        operator: operator.into(),
    }
}

pub fn connected(caller: u64, operator: &str) -> AcdAction {
    AcdAction::Connected {
        caller: c(caller),
        operator: operator.into(),
    }
}

pub fn waiting(caller: u64, position: u32, expected: Duration) -> AcdAction {
    AcdAction::Waiting {
        caller: c(caller),
        position,
        expected_wait: expected,
    }
}

/// Online with a registered phone.
pub fn online(acd: &mut Acd, now: Instant, op: &str) {
    acd.set_reachable(now, op, true);
    acd.set_state(now, op, OperatorState::Online);
}

pub fn queue(name: &str, members: &[&str]) -> QueueConfig {
    members
        .iter()
        .fold(QueueConfig::new(name), |q, m| q.with_member(*m, 0))
}
