#![allow(clippy::unwrap_used)]
//! The ACD's callback policy and the room it leaves for automatic callbacks, on a virtual
//! clock.

mod common;

use std::time::Instant;

use hotline_core::acd::{Acd, AcdAction, CallbackPolicy, CallerId, OperatorState, QueueConfig};

use common::acd::{IN, c, online, secs};

fn queue(members: &[&str], policy: CallbackPolicy, share: u8) -> QueueConfig {
    let mut q = members
        .iter()
        .fold(QueueConfig::new("q"), |q, m| q.with_member(*m, 0));
    q.callback_policy = policy;
    q.callback_max_share = share;
    q
}

/// Who rang whom, in order.
fn rings(acd: &mut Acd) -> Vec<(u64, String)> {
    std::iter::from_fn(|| acd.poll_action())
        .filter_map(|a| match a {
            AcdAction::Ring {
                caller, operator, ..
            } => Some((caller.0, operator)),
            _ => None,
        })
        .collect()
}

/// Three live callers arrive at t+10, t+20, t+30 s with nobody online; a callback whose
/// customer first called at t+15 s is placed at t+40 s. Then one operator comes online.
fn order_under(policy: CallbackPolicy) -> Vec<CallerId> {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue(&["a"], policy, 100));
    acd.enqueue(t + secs(10), c(1), "q", 0, IN).unwrap();
    acd.enqueue(t + secs(20), c(2), "q", 0, IN).unwrap();
    acd.enqueue(t + secs(30), c(3), "q", 0, IN).unwrap();
    acd.enqueue_callback(t + secs(40), c(9), "q", 0, t + secs(15))
        .unwrap();
    acd.enqueue(t + secs(41), c(4), "q", 7, IN).unwrap();
    acd.queue_order("q").unwrap()
}

#[test]
fn callbacks_first_puts_the_callback_ahead_of_every_live_caller_of_its_priority() {
    assert_eq!(
        order_under(CallbackPolicy::CallbacksFirst),
        [c(4), c(9), c(1), c(2), c(3)]
    );
}

#[test]
fn interleaved_orders_the_callback_by_the_customers_original_call() {
    assert_eq!(
        order_under(CallbackPolicy::Interleaved),
        [c(4), c(1), c(9), c(2), c(3)]
    );
}

#[test]
fn live_first_puts_the_callback_behind_every_live_caller() {
    assert_eq!(
        order_under(CallbackPolicy::LiveFirst),
        [c(4), c(1), c(2), c(3), c(9)]
    );
}

#[test]
fn a_callback_from_the_future_counts_from_now() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue(&[], CallbackPolicy::Interleaved, 100));
    acd.enqueue(t, c(1), "q", 0, IN).unwrap();
    acd.enqueue_callback(t + secs(1), c(9), "q", 0, t + secs(60))
        .unwrap();
    acd.enqueue(t + secs(2), c(2), "q", 0, IN).unwrap();
    assert_eq!(acd.queue_order("q").unwrap(), [c(1), c(9), c(2)]);
}

#[test]
fn the_free_operator_takes_the_callback_under_callbacks_first() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue(&["a"], CallbackPolicy::CallbacksFirst, 100));
    acd.enqueue(t, c(1), "q", 0, IN).unwrap();
    acd.enqueue_callback(t + secs(1), c(9), "q", 0, t + secs(1))
        .unwrap();
    online(&mut acd, t + secs(2), "a");
    assert_eq!(rings(&mut acd), [(9, "a".to_string())]);
}

#[test]
fn room_is_the_available_members_up_to_the_share_of_the_staffed() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(
        t,
        queue(&["a", "b", "c", "d"], CallbackPolicy::Interleaved, 50),
    );
    assert_eq!(acd.callback_room("q"), 0, "nobody online");
    online(&mut acd, t, "a");
    // One staffed member: 50 % of 1 rounds up to 1, so a lone operator still gets callbacks.
    assert_eq!(acd.callback_room("q"), 1);
    for op in ["b", "c", "d"] {
        online(&mut acd, t, op);
    }
    // Four available, but callbacks may take only half of the four.
    assert_eq!(acd.callback_room("q"), 2);
    acd.enqueue_callback(t, c(9), "q", 0, t).unwrap();
    assert_eq!(rings(&mut acd).len(), 1);
    assert_eq!(acd.callback_room("q"), 1, "one callback is ringing");
    acd.ring_answered(t + secs(1), c(9), "a").unwrap();
    assert_eq!(acd.callback_room("q"), 1, "and now connected: still counts");
    acd.call_ended(t + secs(60), c(9));
    assert_eq!(acd.callback_room("q"), 2);
    assert_eq!(acd.callback_room("nope"), 0);
}

#[test]
fn room_never_exceeds_the_free_operators() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue(&["a", "b"], CallbackPolicy::Interleaved, 100));
    online(&mut acd, t, "a");
    online(&mut acd, t, "b");
    assert_eq!(acd.callback_room("q"), 2);
    // A live caller takes one operator: one is left.
    acd.enqueue(t, c(1), "q", 0, IN).unwrap();
    let op = rings(&mut acd)[0].1.clone();
    acd.ring_answered(t, c(1), &op).unwrap();
    assert_eq!(acd.callback_room("q"), 1);
    acd.set_state(t, "b", OperatorState::Pause);
    acd.set_state(t, "a", OperatorState::Pause);
    assert_eq!(acd.callback_room("q"), 0);
}

#[test]
fn live_first_leaves_no_room_while_live_callers_wait() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue(&["a", "b"], CallbackPolicy::LiveFirst, 100));
    // Live callers wait for an operator who has a skill nobody online has.
    acd.enqueue_needing(t, c(1), "q", 0, IN, Some("french"))
        .unwrap();
    online(&mut acd, t, "a");
    online(&mut acd, t, "b");
    assert_eq!(acd.callback_room("q"), 1, "two free, one live caller waits");
    acd.enqueue_needing(t, c(2), "q", 0, IN, Some("french"))
        .unwrap();
    assert_eq!(acd.callback_room("q"), 0);
    // Interleaved doesn't hold back for them.
    acd.set_queue(t, queue(&["a", "b"], CallbackPolicy::Interleaved, 100));
    assert_eq!(acd.callback_room("q"), 2);
}
