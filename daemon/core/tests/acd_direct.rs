#![allow(clippy::unwrap_used)]
//! Direct callers in the ACD (`Acd::enqueue_direct`, PRODUCT C5) on a virtual clock: the
//! linked operator rings first when available; otherwise, or after that ring, the caller
//! is an ordinary caller of its queue with the place it got on entry.

mod common;

use std::time::Instant;

use hotline_core::acd::{
    Acd, AcdAction, AcdError, CallerStatus, LeftQueue, OperatorState, RingFailure,
};

use common::acd::{IN, c, cancel, connected, drain, events, ms, online, queue, ring, secs};

fn waiting_at(acd: &Acd, caller: u64) -> Option<u32> {
    match acd.caller_status(c(caller)) {
        Some(CallerStatus::Waiting { position, .. }) => Some(position),
        _ => None,
    }
}

#[test]
fn an_available_operator_rings_first_even_outside_the_queue_and_ahead_of_others() {
    let t = Instant::now();
    let mut acd = Acd::new();
    // Nobody of "q" is online: caller 1 waits there.
    acd.set_queue(t, queue("q", &["a"]));
    online(&mut acd, t, "anna");
    acd.enqueue(t, c(1), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), []);

    // anna is no member of "q", yet the direct caller rings her at once, ahead of 1.
    let p = acd
        .enqueue_direct(t + secs(1), c(2), "q", 0, None, "anna")
        .unwrap();
    assert_eq!(p.position, 2);
    assert_eq!(events(&mut acd), [ring(2, "anna", "q")]);
    assert_eq!(
        acd.caller_status(c(2)),
        Some(CallerStatus::Ringing {
            queue: "q".into(),
            operator: "anna".into()
        })
    );
    acd.ring_answered(t + secs(3), c(2), "anna").unwrap();
    assert_eq!(events(&mut acd), [connected(2, "anna")]);
    assert_eq!(waiting_at(&acd, 1), Some(1));
}

#[test]
fn the_linked_member_rings_rather_than_the_longest_idle_one() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a", "b"]));
    online(&mut acd, t, "a"); // idle the longest
    online(&mut acd, t + secs(5), "b");
    drain(&mut acd);
    acd.enqueue_direct(t + secs(10), c(1), "q", 0, None, "b")
        .unwrap();
    assert_eq!(events(&mut acd), [ring(1, "b", "q")]);
    // An ordinary caller next goes to the longest idle as usual.
    acd.enqueue(t + secs(11), c(2), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), [ring(2, "a", "q")]);
}

#[test]
fn an_unavailable_operator_leaves_an_ordinary_caller() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a", "b"]));
    online(&mut acd, t, "a");
    online(&mut acd, t, "b");
    // b is in a call: the direct caller for b goes to a, the free member.
    acd.enqueue(t, c(1), "q", 0, IN).unwrap();
    let first = events(&mut acd);
    let busy = match first.as_slice() {
        [AcdAction::Ring { operator, .. }] => operator.clone(),
        other => panic!("expected one ring, got {other:?}"),
    };
    acd.ring_answered(t + secs(1), c(1), &busy).unwrap();
    drain(&mut acd);
    let free = if busy == "a" { "b" } else { "a" };
    acd.enqueue_direct(t + secs(2), c(2), "q", 0, None, &busy)
        .unwrap();
    assert_eq!(events(&mut acd), [ring(2, free, "q")]);

    // Paused, offline, with a chat, in wrap-up, unregistered: never rung directly.
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["x"]));
    for (op, setup) in [
        ("paused", 0),
        ("offline", 1),
        ("chatting", 2),
        ("wrapping", 3),
        ("unregistered", 4),
    ] {
        match setup {
            0 => {
                online(&mut acd, t, op);
                acd.set_state(t, op, OperatorState::Pause);
            }
            1 => acd.set_reachable(t, op, true),
            2 => {
                online(&mut acd, t, op);
                acd.set_chats(t, op, 1);
            }
            3 => {
                acd.set_queue(t, queue("w", &[op]));
                online(&mut acd, t, op);
                acd.enqueue(t, c(100), "w", 0, IN).unwrap();
                acd.ring_answered(t, c(100), op).unwrap();
                acd.call_ended(t + secs(1), c(100)); // wrap-up: 10 s
            }
            _ => acd.set_state(t, op, OperatorState::Online),
        }
    }
    drain(&mut acd);
    for (i, op) in ["paused", "offline", "chatting", "wrapping", "unregistered"]
        .into_iter()
        .enumerate()
    {
        let id = 10 + i as u64;
        let p = acd
            .enqueue_direct(t + secs(2), c(id), "q", 0, None, op)
            .unwrap();
        assert_eq!(p.position, i as u32 + 1, "{op}");
        assert_eq!(events(&mut acd), [], "{op}");
        assert_eq!(waiting_at(&acd, id), Some(i as u32 + 1), "{op}");
    }
    // The wrap-up ends: the operator is free, but the callers are ordinary callers of
    // "q" now, which "wrapping" is no member of.
    acd.handle_timeout(t + secs(11));
    assert_eq!(events(&mut acd), []);
}

#[test]
fn a_direct_ring_that_times_out_keeps_the_callers_place() {
    let t = Instant::now();
    let mut acd = Acd::new();
    let mut q = queue("q", &["a"]);
    q.ring_timeout = secs(20);
    acd.set_queue(t, q);
    online(&mut acd, t, "anna");
    acd.enqueue_direct(t, c(1), "q", 0, None, "anna").unwrap();
    acd.enqueue(t + secs(1), c(2), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), [ring(1, "anna", "q")]);
    assert_eq!(acd.poll_timeout(), Some(t + secs(20)));

    // One ms before the timeout it still rings; at the timeout it is cancelled.
    acd.handle_timeout(t + secs(20) - ms(1));
    assert_eq!(events(&mut acd), []);
    acd.handle_timeout(t + secs(20));
    assert_eq!(events(&mut acd), [cancel(1, "anna")]);
    assert_eq!(acd.operator_view("anna").unwrap().misses, 1);
    // First in the queue still, ahead of caller 2 who came later.
    assert_eq!(waiting_at(&acd, 1), Some(1));
    assert_eq!(waiting_at(&acd, 2), Some(2));

    // A member comes: the ordinary order holds, and anna is no longer offered it.
    online(&mut acd, t + secs(21), "a");
    assert_eq!(events(&mut acd), [ring(1, "a", "q")]);
}

#[test]
fn a_rejected_direct_ring_goes_to_the_others_first() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a", "b"]));
    online(&mut acd, t, "a");
    online(&mut acd, t + secs(1), "b");
    drain(&mut acd);
    // b, not the longest idle a, rings for the direct caller.
    acd.enqueue_direct(t + secs(2), c(1), "q", 0, None, "b")
        .unwrap();
    assert_eq!(events(&mut acd), [ring(1, "b", "q")]);
    acd.ring_failed(t + secs(3), c(1), "b", RingFailure::Rejected)
        .unwrap();
    // Back to ordinary distribution: a, who hasn't been tried; a rejection is no miss.
    assert_eq!(events(&mut acd), [ring(1, "a", "q")]);
    assert_eq!(acd.operator_view("b").unwrap().misses, 0);
}

#[test]
fn an_operator_leaving_mid_ring_ends_the_direct_offer_for_good() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a"]));
    online(&mut acd, t, "anna");
    acd.enqueue(t, c(1), "q", 0, IN).unwrap();
    acd.enqueue_direct(t, c(2), "q", 0, None, "anna").unwrap();
    assert_eq!(events(&mut acd), [ring(2, "anna", "q")]);
    acd.set_state(t + secs(2), "anna", OperatorState::Pause);
    assert_eq!(events(&mut acd), [cancel(2, "anna")]);
    // Back online: caller 2 is an ordinary caller of "q" now; anna isn't a member.
    acd.set_state(t + secs(5), "anna", OperatorState::Online);
    assert_eq!(events(&mut acd), []);
    assert_eq!(waiting_at(&acd, 2), Some(2));
    // A later ordinary caller is not pulled to anna either.
    acd.enqueue(t + secs(6), c(3), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), []);
}

#[test]
fn a_caller_who_hangs_up_during_the_direct_ring_frees_the_operator() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["anna"]));
    online(&mut acd, t, "anna");
    acd.enqueue_direct(t, c(1), "q", 0, None, "anna").unwrap();
    assert_eq!(events(&mut acd), [ring(1, "anna", "q")]);
    let left = acd.leave(t + secs(4), c(1)).unwrap();
    assert_eq!(
        left,
        LeftQueue {
            queue: "q".into(),
            waited: secs(4),
            was_ringing: true
        }
    );
    assert_eq!(events(&mut acd), [cancel(1, "anna")]);
    acd.enqueue(t + secs(5), c(2), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), [ring(2, "anna", "q")]);
}

#[test]
fn a_failed_enqueue_rings_nobody_and_leaves_no_offer_behind() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["b"]));
    online(&mut acd, t, "anna");
    assert_eq!(
        acd.enqueue_direct(t, c(1), "nope", 0, None, "anna"),
        Err(AcdError::UnknownQueue("nope".into()))
    );
    assert_eq!(drain(&mut acd), [AcdAction::Unavailable { caller: c(1) }]);
    assert_eq!(acd.caller_status(c(1)), None);

    // A refusing queue refuses a direct caller too.
    let mut refusing = queue("r", &["b"]);
    refusing.refuse_when_nobody = true;
    acd.set_queue(t, refusing);
    assert_eq!(
        acd.enqueue_direct(t, c(2), "r", 0, None, "anna"),
        Err(AcdError::Refused("r".into()))
    );
    assert_eq!(drain(&mut acd), [AcdAction::Unavailable { caller: c(2) }]);

    // A caller already in a queue can't enter twice; the ring in progress stays.
    acd.enqueue_direct(t, c(3), "q", 0, None, "anna").unwrap();
    assert_eq!(events(&mut acd), [ring(3, "anna", "q")]);
    acd.ring_failed(t, c(3), "anna", RingFailure::Busy).unwrap();
    drain(&mut acd);
    assert_eq!(
        acd.enqueue_direct(t, c(3), "q", 0, None, "anna"),
        Err(AcdError::DuplicateCaller(c(3)))
    );
    assert_eq!(events(&mut acd), []);
    assert_eq!(waiting_at(&acd, 3), Some(1));

    // An ordinary caller right after is offered as usual (anna is free, no member).
    acd.enqueue(t + secs(1), c(4), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), []);
    online(&mut acd, t + secs(2), "b");
    assert_eq!(events(&mut acd), [ring(3, "b", "q")]);
}

#[test]
fn two_direct_callers_for_one_operator_ring_one_at_a_time() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a"]));
    online(&mut acd, t, "anna");
    acd.enqueue_direct(t, c(1), "q", 0, None, "anna").unwrap();
    acd.enqueue_direct(t, c(2), "q", 0, None, "anna").unwrap();
    // anna rings for 1; 2 found her busy ringing and is an ordinary caller.
    assert_eq!(events(&mut acd), [ring(1, "anna", "q")]);
    acd.ring_answered(t + secs(1), c(1), "anna").unwrap();
    acd.call_ended(t + secs(60), c(1));
    acd.handle_timeout(t + secs(70));
    assert_eq!(events(&mut acd), [connected(1, "anna")]);
    assert_eq!(waiting_at(&acd, 2), Some(1));
}
