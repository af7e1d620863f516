#![allow(clippy::unwrap_used)]
//! The ACD on a virtual clock: every instant is exact.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hotline_core::acd::{
    Acd, AcdAction, AcdError, CallbackPolicy, CallerId, CallerKind, CallerStatus, LeftQueue,
    OperatorConfig, OperatorState, OperatorStatus, PauseReason, Position, QueueConfig,
    QueueFigures, RingFailure,
};

use common::acd::{
    IN, c, cancel, connected, drain, events, ms, online, queue, ring, secs, waiting,
};

const CB: CallerKind = CallerKind::Callback;

#[test]
fn longest_idle_operator_gets_the_caller() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a", "b", "c"]));
    online(&mut acd, t, "c");
    online(&mut acd, t + secs(1), "a");
    online(&mut acd, t + secs(2), "b");
    assert!(drain(&mut acd).is_empty());

    acd.enqueue(t + secs(3), c(1), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), [ring(1, "c", "q")]);
    acd.ring_answered(t + secs(4), c(1), "c").unwrap();
    acd.enqueue(t + secs(5), c(2), "q", 0, IN).unwrap();
    acd.enqueue(t + secs(5), c(3), "q", 0, IN).unwrap();
    assert_eq!(
        events(&mut acd),
        [connected(1, "c"), ring(2, "a", "q"), ring(3, "b", "q")]
    );
    acd.ring_answered(t + secs(6), c(2), "a").unwrap();
    acd.ring_answered(t + secs(6), c(3), "b").unwrap();

    // Idle time counts from the end of the last call: b ends first, then c, then a.
    acd.call_ended(t + secs(30), c(3));
    acd.call_ended(t + secs(31), c(1));
    acd.call_ended(t + secs(32), c(2));
    acd.handle_timeout(t + secs(42)); // every wrap-up (10 s) is over
    drain(&mut acd);
    for (id, at) in [(4, 50), (5, 50), (6, 50)] {
        acd.enqueue(t + secs(at), c(id), "q", 0, IN).unwrap();
    }
    assert_eq!(
        events(&mut acd),
        [ring(4, "b", "q"), ring(5, "c", "q"), ring(6, "a", "q")]
    );
}

#[test]
fn idle_ties_go_to_member_priority_then_name() {
    let t = Instant::now();
    let mut acd = Acd::new();
    let q = QueueConfig::new("q")
        .with_member("c", 1)
        .with_member("b", 0)
        .with_member("a", 1);
    acd.set_queue(t, q);
    for op in ["a", "b", "c"] {
        online(&mut acd, t, op);
    }
    for id in 1..=3 {
        acd.enqueue(t + secs(1), c(id), "q", 0, IN).unwrap();
    }
    assert_eq!(
        events(&mut acd),
        [ring(1, "b", "q"), ring(2, "a", "q"), ring(3, "c", "q")]
    );
}

#[test]
fn a_caller_needing_a_skill_waits_for_a_member_who_has_it_and_others_pass() {
    let t = Instant::now();
    let mut acd = Acd::new();
    let q = QueueConfig::new("q")
        .with_skilled_member("anna", 0, ["english"])
        .with_skilled_member("bela", 0, ["german"]);
    acd.set_queue(t, q);
    online(&mut acd, t, "bela");
    // The English caller is first, but only bela (German) is there: the caller behind,
    // who needs nothing, gets bela.
    acd.enqueue_needing(t + secs(1), c(1), "q", 0, IN, Some("english"))
        .unwrap();
    acd.enqueue(t + secs(2), c(2), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), [ring(2, "bela", "q")]);
    acd.ring_answered(t + secs(3), c(2), "bela").unwrap();
    drain(&mut acd);
    // Only anna, with English, takes caller 1, even though bela was free first.
    acd.call_ended(t + secs(4), c(2));
    acd.handle_timeout(t + secs(20)); // bela's wrap-up is over
    assert!(
        events(&mut acd).is_empty(),
        "bela must not get the English caller"
    );
    online(&mut acd, t + secs(21), "anna");
    assert_eq!(events(&mut acd), [ring(1, "anna", "q")]);
}

#[test]
fn unavailable_operators_are_skipped() {
    let t = Instant::now();
    let mut acd = Acd::new();
    let all = [
        "busy", "away", "pause", "offline", "unreg", "chat", "ok", "wrapup",
    ];
    acd.set_queue(t, queue("q", &all));
    // "busy" takes a call; "wrapup" has just finished one.
    online(&mut acd, t, "busy");
    acd.enqueue(t, c(100), "q", 0, IN).unwrap();
    acd.ring_answered(t, c(100), "busy").unwrap();
    online(&mut acd, t + secs(1), "wrapup");
    acd.enqueue(t + secs(1), c(101), "q", 0, IN).unwrap();
    acd.ring_answered(t + secs(1), c(101), "wrapup").unwrap();
    acd.call_ended(t + secs(2), c(101));
    // Everyone else was online before "ok".
    online(&mut acd, t + secs(3), "away");
    acd.set_state(t + secs(3), "away", OperatorState::Away);
    online(&mut acd, t + secs(3), "pause");
    acd.set_state(t + secs(3), "pause", OperatorState::Pause);
    acd.set_reachable(t + secs(3), "offline", true);
    acd.set_state(t + secs(3), "unreg", OperatorState::Online); // no registration
    online(&mut acd, t + secs(3), "chat");
    acd.set_chats(t + secs(3), "chat", 1);
    online(&mut acd, t + secs(4), "ok");
    drain(&mut acd);

    acd.enqueue(t + secs(5), c(1), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), [ring(1, "ok", "q")]);
    acd.enqueue(t + secs(5), c(2), "q", 0, IN).unwrap();
    assert!(events(&mut acd).is_empty(), "nobody else may ring");
    assert_eq!(
        acd.operator_view("wrapup").unwrap().state,
        OperatorStatus::WrapUp
    );

    // The phone registers: now the online operator gets the call.
    acd.set_reachable(t + secs(6), "unreg", true);
    assert_eq!(events(&mut acd), [ring(2, "unreg", "q")]);
    // The chat ends: voice again.
    acd.enqueue(t + secs(7), c(3), "q", 0, IN).unwrap();
    assert!(events(&mut acd).is_empty());
    acd.set_chats(t + secs(8), "chat", 0);
    assert_eq!(events(&mut acd), [ring(3, "chat", "q")]);
    // A chat accepted while the phone rings cancels the ring (no miss).
    acd.set_chats(t + secs(9), "chat", 1);
    assert_eq!(events(&mut acd), [cancel(3, "chat")]);
    assert_eq!(acd.operator_view("chat").unwrap().misses, 0);
    // The wrap-up ends at t+12 and that operator takes the caller.
    acd.handle_timeout(t + secs(12));
    assert_eq!(events(&mut acd), [ring(3, "wrapup", "q")]);
}

#[test]
fn ring_timeout_at_exactly_ring_timeout_goes_to_the_next_operator() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a", "b"]));
    online(&mut acd, t, "a");
    online(&mut acd, t + secs(1), "b");
    acd.enqueue(t + secs(2), c(1), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), [ring(1, "a", "q")]);
    assert_eq!(acd.poll_timeout(), Some(t + secs(22)));

    acd.handle_timeout(t + secs(22) - ms(1));
    assert!(drain(&mut acd).is_empty());
    acd.handle_timeout(t + secs(22));
    assert_eq!(events(&mut acd), [cancel(1, "a"), ring(1, "b", "q")]);
    assert_eq!(acd.operator_view("a").unwrap().misses, 1);
    assert_eq!(acd.poll_timeout(), Some(t + secs(42)));
    // A 200 OK that crosses the CANCEL is refused: the daemon hangs that leg up.
    assert_eq!(
        acd.ring_answered(t + secs(22), c(1), "a"),
        Err(AcdError::NotRinging(c(1)))
    );
    acd.ring_answered(t + secs(23), c(1), "b").unwrap();
    assert_eq!(events(&mut acd), [connected(1, "b")]);
    assert_eq!(acd.poll_timeout(), None);
}

#[test]
fn rejected_goes_to_the_next_and_not_back_until_all_were_tried() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a", "b", "c"]));
    online(&mut acd, t, "a");
    online(&mut acd, t + secs(1), "b");
    online(&mut acd, t + secs(2), "c");
    acd.enqueue(t + secs(3), c(1), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), [ring(1, "a", "q")]);
    acd.ring_failed(t + secs(4), c(1), "a", RingFailure::Rejected)
        .unwrap();
    // a is still the longest idle, but this caller goes to b.
    assert_eq!(events(&mut acd), [ring(1, "b", "q")]);
    // Meanwhile a new caller gets a (not tried by them).
    acd.enqueue(t + secs(5), c(2), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), [ring(2, "a", "q")]);
    acd.ring_failed(t + secs(6), c(1), "b", RingFailure::Busy)
        .unwrap();
    // b is idle again and idle longer than c, but caller 1 tried b: c.
    assert_eq!(events(&mut acd), [ring(1, "c", "q")]);
    acd.ring_failed(t + secs(7), c(1), "c", RingFailure::Rejected)
        .unwrap();
    // Every available operator tried (a is ringing for 2): a new round, longest idle first.
    assert_eq!(events(&mut acd), [ring(1, "b", "q")]);
    // A rejection is no miss; Busy is.
    assert_eq!(acd.operator_view("a").unwrap().misses, 0);
    assert_eq!(acd.operator_view("b").unwrap().misses, 1);
    // A wrong or stale report is refused.
    assert_eq!(
        acd.ring_failed(t + secs(9), c(1), "c", RingFailure::NoAnswer),
        Err(AcdError::NotRinging(c(1)))
    );
    assert_eq!(acd.operator_view("c").unwrap().misses, 0);
    // a rejects 2: c (untried by 2) is the only one free.
    acd.ring_failed(t + secs(10), c(2), "a", RingFailure::Rejected)
        .unwrap();
    assert_eq!(events(&mut acd), [ring(2, "c", "q")]);
}

#[test]
fn max_misses_pause_the_operator() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a"]));
    online(&mut acd, t, "a");
    acd.enqueue(t, c(1), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), [ring(1, "a", "q")]);
    acd.handle_timeout(t + secs(20));
    // The only operator: a new round, a again.
    assert_eq!(events(&mut acd), [cancel(1, "a"), ring(1, "a", "q")]);
    acd.handle_timeout(t + secs(40));
    assert_eq!(
        events(&mut acd),
        [
            cancel(1, "a"),
            AcdAction::OperatorPaused {
                operator: "a".into(),
                reason: PauseReason::MissedRings { count: 2 }
            }
        ]
    );
    let view = acd.operator_view("a").unwrap();
    assert_eq!(view.state, OperatorStatus::Pause);
    assert_eq!(view.since, Some(t + secs(40)));
    assert_eq!(view.misses, 0);
    assert_eq!(
        acd.caller_status(c(1)),
        Some(CallerStatus::Waiting {
            queue: "q".into(),
            position: 1
        })
    );
    assert_eq!(acd.poll_timeout(), None);

    // Back online: a miss, then an answer resets the count, so one more miss doesn't pause.
    acd.set_state(t + secs(50), "a", OperatorState::Online);
    assert_eq!(events(&mut acd), [ring(1, "a", "q")]);
    acd.ring_failed(t + secs(51), c(1), "a", RingFailure::NoAnswer)
        .unwrap();
    assert_eq!(events(&mut acd), [ring(1, "a", "q")]);
    assert_eq!(acd.operator_view("a").unwrap().misses, 1);
    acd.ring_answered(t + secs(52), c(1), "a").unwrap();
    assert_eq!(acd.operator_view("a").unwrap().misses, 0);
    acd.call_ended(t + secs(60), c(1));
    acd.handle_timeout(t + secs(70));
    acd.enqueue(t + secs(71), c(2), "q", 0, IN).unwrap();
    acd.ring_failed(t + secs(72), c(2), "a", RingFailure::Unreachable)
        .unwrap();
    assert_eq!(acd.operator_view("a").unwrap().misses, 1);
    assert_eq!(
        acd.operator_view("a").unwrap().state,
        OperatorStatus::Online
    );
    // Rejections never pause.
    for i in 0..5 {
        acd.ring_failed(t + secs(73 + i), c(2), "a", RingFailure::Rejected)
            .unwrap();
    }
    assert_eq!(
        acd.operator_view("a").unwrap().state,
        OperatorStatus::Online
    );
}

#[test]
fn max_misses_zero_never_pauses() {
    let t = Instant::now();
    let mut acd = Acd::new();
    let mut q = queue("q", &["a"]);
    q.max_misses_before_pause = 0;
    acd.set_queue(t, q);
    online(&mut acd, t, "a");
    acd.enqueue(t, c(1), "q", 0, IN).unwrap();
    for i in 1..=5 {
        acd.handle_timeout(t + secs(20 * i));
    }
    assert_eq!(acd.operator_view("a").unwrap().misses, 5);
    assert_eq!(
        acd.operator_view("a").unwrap().state,
        OperatorStatus::Online
    );
}

#[test]
fn wrap_up_ends_at_exactly_wrap_up_and_the_next_caller_rings() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a"]));
    online(&mut acd, t, "a");
    acd.enqueue(t, c(1), "q", 0, IN).unwrap();
    acd.ring_answered(t + secs(5), c(1), "a").unwrap();
    let view = acd.operator_view("a").unwrap();
    assert_eq!(
        (view.state, view.since),
        (OperatorStatus::Busy, Some(t + secs(5)))
    );
    assert_eq!(view.call, Some(c(1)));
    acd.enqueue(t + secs(6), c(2), "q", 0, IN).unwrap();
    drain(&mut acd);
    acd.call_ended(t + secs(65), c(1));
    assert!(events(&mut acd).is_empty());
    let view = acd.operator_view("a").unwrap();
    assert_eq!(
        (view.state, view.since),
        (OperatorStatus::WrapUp, Some(t + secs(65)))
    );
    assert_eq!(acd.poll_timeout(), Some(t + secs(75)));
    acd.handle_timeout(t + secs(75) - ms(1));
    assert!(drain(&mut acd).is_empty());
    acd.handle_timeout(t + secs(75));
    assert_eq!(events(&mut acd), [ring(2, "a", "q")]);
    let view = acd.operator_view("a").unwrap();
    assert_eq!(
        (view.state, view.since, view.ringing),
        (OperatorStatus::Online, Some(t + secs(75)), Some(c(2)))
    );
}

/// The operator ends wrap-up early from the console: the waiting caller rings them at
/// once; a second "Ready", or one outside wrap-up, changes nothing.
#[test]
fn ending_wrap_up_early_rings_the_next_caller_at_once() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a"]));
    online(&mut acd, t, "a");
    assert!(!acd.end_wrap_up(t, "a"), "not in wrap-up");
    acd.enqueue(t, c(1), "q", 0, IN).unwrap();
    acd.ring_answered(t + secs(5), c(1), "a").unwrap();
    acd.enqueue(t + secs(6), c(2), "q", 0, IN).unwrap();
    drain(&mut acd);
    acd.call_ended(t + secs(65), c(1));
    assert!(events(&mut acd).is_empty());
    assert!(acd.end_wrap_up(t + secs(68), "a"));
    assert_eq!(events(&mut acd), [ring(2, "a", "q")]);
    let view = acd.operator_view("a").unwrap();
    assert_eq!(
        (view.state, view.since, view.ringing),
        (OperatorStatus::Online, Some(t + secs(68)), Some(c(2)))
    );
    assert!(!acd.end_wrap_up(t + secs(69), "a"));
    assert!(!acd.end_wrap_up(t + secs(69), "nobody"));
}

/// PRODUCT Q1: an operator on a call of their own (click-to-call, a callback from the list)
/// is busy to the queues: the waiting caller rings the other member, and only reaches
/// the first one after their call and its wrap-up.
#[test]
fn an_operator_on_an_outbound_call_gets_no_queued_call() {
    let t = Instant::now();
    let mut acd = Acd::new();
    let mut q = queue("q", &["a", "b"]);
    q.wrap_up = secs(10);
    acd.set_queue(t, q);
    online(&mut acd, t, "a");
    online(&mut acd, t + secs(1), "b");
    acd.outbound_started(t + secs(2), "a", c(100), Some("q"))
        .unwrap();
    let view = acd.operator_view("a").unwrap();
    assert_eq!(
        (view.state, view.call),
        (OperatorStatus::Busy, Some(c(100)))
    );
    // a has been idle longer, yet the caller rings b.
    acd.enqueue(t + secs(3), c(1), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), [ring(1, "b", "q")]);
    acd.ring_answered(t + secs(4), c(1), "b").unwrap();
    drain(&mut acd);
    // Both busy: the next caller waits.
    acd.enqueue(t + secs(4), c(2), "q", 0, IN).unwrap();
    assert!(
        events(&mut acd).is_empty(),
        "a is on their own call, b on c1"
    );
    // A second call of a's own, or another's ring, is refused while the first is on.
    assert_eq!(
        acd.outbound_started(t + secs(5), "a", c(101), None),
        Err(AcdError::OperatorBusy("a".into()))
    );
    // Someone else's call id does not end a's call.
    acd.outbound_ended(t + secs(6), "a", c(999));
    assert_eq!(acd.operator_view("a").unwrap().state, OperatorStatus::Busy);
    acd.outbound_ended(t + secs(20), "a", c(100));
    assert_eq!(
        acd.operator_view("a").unwrap().state,
        OperatorStatus::WrapUp
    );
    assert_eq!(acd.poll_timeout(), Some(t + secs(30)));
    acd.handle_timeout(t + secs(30) - ms(1));
    assert!(events(&mut acd).is_empty());
    acd.handle_timeout(t + secs(30));
    assert_eq!(events(&mut acd), [ring(2, "a", "q")]);
    // From wrap-up an operator may call out (the wrap-up ends).
    acd.ring_answered(t + secs(31), c(2), "a").unwrap();
    acd.call_ended(t + secs(40), c(2));
    acd.outbound_started(t + secs(41), "a", c(102), None)
        .unwrap();
    assert_eq!(acd.operator_view("a").unwrap().state, OperatorStatus::Busy);
}

/// T6: a caller transferred into a queue keeps their original arrival and class: they go
/// ahead of a caller who came later, and a VIP stays ahead of the default class.
#[test]
fn a_transferred_caller_keeps_their_arrival_and_class() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("sales", &["b"]));
    // c2 arrived in sales at 30 s; c1 had arrived in support at 0 s and is transferred
    // to sales at 60 s; c3, a VIP of support, is transferred at 61 s.
    acd.enqueue(t + secs(30), c(2), "sales", 0, IN).unwrap();
    acd.enqueue_transferred(t + secs(60), c(1), "sales", 0, t)
        .unwrap();
    acd.enqueue_transferred(t + secs(61), c(3), "sales", 5, t + secs(50))
        .unwrap();
    assert_eq!(acd.queue_order("sales"), Some(vec![c(3), c(1), c(2)]));
    let f = acd.figures(t + secs(61), "sales").unwrap();
    assert_eq!(f.longest_wait, secs(61), "c1 has waited since 0 s");
    online(&mut acd, t + secs(62), "b");
    assert_eq!(events(&mut acd), [ring(3, "b", "sales")]);
}

#[test]
fn going_offline_during_a_call_applies_after_the_wrap_up() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a"]));
    online(&mut acd, t, "a");
    acd.enqueue(t, c(1), "q", 0, IN).unwrap();
    acd.ring_answered(t, c(1), "a").unwrap();
    acd.set_state(t + secs(1), "a", OperatorState::Offline);
    assert_eq!(acd.operator_view("a").unwrap().state, OperatorStatus::Busy);
    acd.call_ended(t + secs(10), c(1));
    acd.handle_timeout(t + secs(20));
    let view = acd.operator_view("a").unwrap();
    assert_eq!(
        (view.state, view.since),
        (OperatorStatus::Offline, Some(t + secs(20)))
    );
}

#[test]
fn vip_first_then_fifo() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a"]));
    let p = |acd: &mut Acd, id, prio| {
        acd.enqueue(t + secs(id), c(id), "q", prio, IN)
            .unwrap()
            .position
    };
    assert_eq!(p(&mut acd, 1, 0), 1);
    assert_eq!(p(&mut acd, 2, 5), 1);
    assert_eq!(p(&mut acd, 3, 0), 3);
    assert_eq!(p(&mut acd, 4, 5), 2);
    assert_eq!(acd.queue_order("q").unwrap(), [c(2), c(4), c(1), c(3)]);
    // Positions pushed back are reported.
    let reports = drain(&mut acd);
    assert!(reports.contains(&waiting(1, 2, secs(240))));
    assert!(reports.contains(&waiting(1, 3, secs(360))));
    assert!(reports.contains(&waiting(3, 4, secs(480))));
    online(&mut acd, t + secs(10), "a");
    assert_eq!(events(&mut acd), [ring(2, "a", "q")]);
    acd.ring_answered(t + secs(11), c(2), "a").unwrap();
    let after = drain(&mut acd);
    // With one operator online: 120 s per position.
    assert_eq!(
        after,
        [
            connected(2, "a"),
            waiting(4, 1, secs(120)),
            waiting(1, 2, secs(240)),
            waiting(3, 3, secs(360)),
        ]
    );
}

#[test]
fn callbacks_first_puts_callbacks_ahead_of_inbound_of_the_same_priority() {
    let t = Instant::now();
    let mut acd = Acd::new();
    let mut q = queue("q", &[]);
    q.callback_policy = CallbackPolicy::CallbacksFirst;
    acd.set_queue(t, q.clone());
    acd.enqueue(t, c(1), "q", 0, IN).unwrap();
    acd.enqueue(t, c(2), "q", 0, CB).unwrap();
    acd.enqueue(t, c(3), "q", 0, IN).unwrap();
    acd.enqueue(t, c(4), "q", 9, IN).unwrap();
    acd.enqueue(t, c(5), "q", 0, CB).unwrap();
    assert_eq!(
        acd.queue_order("q").unwrap(),
        [c(4), c(2), c(5), c(1), c(3)]
    );
    // Without the setting: arrival order within a priority.
    q.callback_policy = CallbackPolicy::Interleaved;
    acd.set_queue(t, q.clone());
    assert_eq!(
        acd.queue_order("q").unwrap(),
        [c(4), c(1), c(2), c(3), c(5)]
    );
    q.callback_policy = CallbackPolicy::CallbacksFirst;
    acd.set_queue(t, q);
    assert_eq!(
        acd.queue_order("q").unwrap(),
        [c(4), c(2), c(5), c(1), c(3)]
    );
}

#[test]
fn leave_while_ringing_cancels_the_ring() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a"]));
    online(&mut acd, t, "a");
    acd.enqueue(t + secs(1), c(1), "q", 0, IN).unwrap();
    acd.enqueue(t + secs(2), c(2), "q", 0, IN).unwrap();
    drain(&mut acd);
    assert_eq!(
        acd.leave(t + secs(8), c(1)),
        Some(LeftQueue {
            queue: "q".into(),
            waited: secs(7),
            was_ringing: true
        })
    );
    // The ring stops, the operator takes the next caller, who moved up.
    assert_eq!(
        drain(&mut acd),
        [cancel(1, "a"), ring(2, "a", "q"), waiting(2, 1, secs(120))]
    );
    assert_eq!(acd.operator_view("a").unwrap().misses, 0);
    assert_eq!(acd.leave(t + secs(9), c(1)), None);
    acd.enqueue(t + secs(10), c(3), "q", 0, IN).unwrap();
    assert_eq!(
        acd.leave(t + secs(15), c(3)),
        Some(LeftQueue {
            queue: "q".into(),
            waited: secs(5),
            was_ringing: false
        })
    );
    assert!(events(&mut acd).is_empty());
    assert_eq!(acd.caller_status(c(3)), None);
    // A connected caller's leave ends the call.
    acd.ring_answered(t + secs(16), c(2), "a").unwrap();
    assert_eq!(acd.leave(t + secs(20), c(2)), None);
    assert_eq!(
        acd.operator_view("a").unwrap().state,
        OperatorStatus::WrapUp
    );
}

#[test]
fn expected_wait_from_handling_times() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a", "b"]));
    online(&mut acd, t, "a");
    online(&mut acd, t, "b");
    // 120 s default handling, 2 operators: 60 s per position.
    assert_eq!(
        acd.enqueue(t, c(1), "q", 0, IN),
        Ok(Position {
            position: 1,
            expected_wait: secs(60)
        })
    );
    assert_eq!(
        acd.enqueue(t, c(2), "q", 0, IN).unwrap().expected_wait,
        secs(120)
    );
    acd.ring_answered(t, c(1), "a").unwrap();
    acd.ring_answered(t, c(2), "b").unwrap();
    for id in 3..=5 {
        acd.enqueue(t + secs(1), c(id), "q", 0, IN).unwrap();
    }
    drain(&mut acd);
    // Handling = talk + wrap-up (10 s): 50 + 10 = 60 s.
    acd.call_ended(t + secs(50), c(1));
    assert_eq!(acd.mean_handling("q"), Some(secs(60)));
    assert_eq!(
        drain(&mut acd),
        [
            waiting(3, 1, secs(30)),
            waiting(4, 2, secs(60)),
            waiting(5, 3, secs(90))
        ]
    );
    acd.handle_timeout(t + secs(60)); // a's wrap-up ends: a rings 3, who keeps position 1
    assert_eq!(drain(&mut acd), [ring(3, "a", "q")]);
    // 70 + 10 = 80 s: mean 70 s → 35 s per position. Position 1 moved by 5 s and 2 by
    // 10 s (not reported), 3 by 15 s (reported).
    acd.call_ended(t + secs(70), c(2));
    assert_eq!(acd.mean_handling("q"), Some(secs(70)));
    assert_eq!(drain(&mut acd), [waiting(5, 3, secs(105))]);
    // (60 + 80 + 100) / 3 = 80 s, 2 staffed: 40 s per position; against the last reports
    // (30, 60, 105) positions 2 and 3 moved by 15 s or more.
    acd.record_handling("q", secs(100));
    assert_eq!(acd.mean_handling("q"), Some(secs(80)));
    assert_eq!(acd.expected_wait("q", 1), Some(secs(40)));
    assert_eq!(acd.expected_wait("q", 3), Some(secs(120)));
    assert_eq!(
        drain(&mut acd),
        [waiting(4, 2, secs(80)), waiting(5, 3, secs(120))]
    );
    // b logs off (in wrap-up): one operator left, the estimates double.
    acd.set_state(t + secs(71), "b", OperatorState::Offline);
    assert_eq!(
        drain(&mut acd),
        [
            waiting(3, 1, secs(80)),
            waiting(4, 2, secs(160)),
            waiting(5, 3, secs(240)),
        ]
    );
    // Only the last 20 calls count.
    for _ in 0..20 {
        acd.record_handling("q", secs(30));
    }
    assert_eq!(acd.mean_handling("q"), Some(secs(30)));
    assert_eq!(acd.expected_wait("q", 4), Some(secs(120)));
}

#[test]
fn figures_for_the_transfer_dialog() {
    let t = Instant::now();
    let mut acd = Acd::new();
    let mut q = queue("q", &["a", "b", "c", "d", "e", "f", "g", "h", "i"]);
    q.wrap_up = secs(60);
    acd.set_queue(t, q);
    // c in a call, d in wrap-up.
    online(&mut acd, t, "c");
    acd.enqueue(t, c(100), "q", 0, IN).unwrap();
    acd.ring_answered(t, c(100), "c").unwrap();
    online(&mut acd, t, "d");
    acd.enqueue(t, c(101), "q", 0, IN).unwrap();
    acd.ring_answered(t, c(101), "d").unwrap();
    acd.call_ended(t + secs(1), c(101));
    online(&mut acd, t, "b");
    acd.set_reachable(t, "b", false); // online, phone not registered
    online(&mut acd, t, "e");
    acd.set_state(t, "e", OperatorState::Pause);
    online(&mut acd, t, "f");
    acd.set_state(t, "f", OperatorState::Away);
    // g never logged in; h has as many chats as capacity, i one chat.
    acd.set_operator("h", OperatorConfig { chat_capacity: 2 })
        .unwrap();
    online(&mut acd, t, "h");
    acd.set_chats(t, "h", 2);
    online(&mut acd, t, "i");
    acd.set_chats(t, "i", 1);
    online(&mut acd, t + secs(2), "a");
    assert_eq!(
        acd.figures(t + secs(3), "q"),
        Some(QueueFigures {
            waiting: 0,
            longest_wait: Duration::ZERO,
            online: 3,
            busy: 3,
            paused: 1,
            away: 1,
            available: 1,
        })
    );
    acd.enqueue(t + secs(5), c(1), "q", 0, IN).unwrap(); // rings a
    acd.enqueue(t + secs(8), c(2), "q", 0, IN).unwrap();
    assert_eq!(
        acd.figures(t + secs(20), "q"),
        Some(QueueFigures {
            waiting: 2,
            longest_wait: secs(15),
            online: 3,
            busy: 3,
            paused: 1,
            away: 1,
            available: 0,
        })
    );
    assert_eq!(acd.figures(t, "nope"), None);
    let view = acd.operator_view("h").unwrap();
    assert_eq!((view.chats, view.chat_capacity), (2, 2));
    assert_eq!(view.queues, ["q"]);
    assert_eq!(
        acd.set_operator("h", OperatorConfig { chat_capacity: 11 }),
        Err(AcdError::InvalidCapacity(11))
    );
    assert_eq!(
        acd.set_operator("h", OperatorConfig { chat_capacity: 0 }),
        Err(AcdError::InvalidCapacity(0))
    );
    assert_eq!(acd.operator_view("zz"), None);
}

#[test]
fn an_operator_in_two_queues_is_offered_from_both_without_double_ringing() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q1", &["a"]));
    acd.set_queue(t, queue("q2", &["a", "b"]));
    acd.enqueue(t, c(1), "q2", 0, IN).unwrap();
    acd.enqueue(t + secs(1), c(2), "q1", 0, IN).unwrap();
    online(&mut acd, t + secs(2), "a");
    // The earlier caller first, one ring only.
    assert_eq!(events(&mut acd), [ring(1, "a", "q2")]);
    online(&mut acd, t + secs(3), "b");
    assert!(events(&mut acd).is_empty());
    acd.ring_failed(t + secs(4), c(1), "a", RingFailure::Rejected)
        .unwrap();
    assert_eq!(events(&mut acd), [ring(1, "b", "q2"), ring(2, "a", "q1")]);
    acd.ring_answered(t + secs(5), c(2), "a").unwrap();
    acd.ring_answered(t + secs(5), c(1), "b").unwrap();
    drain(&mut acd);
    assert_eq!(acd.operator_view("a").unwrap().queues, ["q1", "q2"]);

    // Across queues a VIP beats an earlier arrival.
    acd.enqueue(t + secs(6), c(3), "q2", 0, IN).unwrap();
    acd.enqueue(t + secs(7), c(4), "q1", 5, IN).unwrap();
    acd.call_ended(t + secs(8), c(2));
    acd.handle_timeout(t + secs(18));
    assert_eq!(events(&mut acd), [ring(4, "a", "q1")]);
}

#[test]
fn unknown_refused_and_duplicate_callers() {
    let t = Instant::now();
    let mut acd = Acd::new();
    assert_eq!(
        acd.enqueue(t, c(1), "nope", 0, IN),
        Err(AcdError::UnknownQueue("nope".into()))
    );
    assert_eq!(drain(&mut acd), [AcdAction::Unavailable { caller: c(1) }]);

    let mut q = queue("strict", &["a"]);
    q.refuse_when_nobody = true;
    acd.set_queue(t, q);
    acd.set_queue(t, queue("lenient", &["a"]));
    assert_eq!(
        acd.enqueue(t, c(2), "strict", 0, IN),
        Err(AcdError::Refused("strict".into()))
    );
    assert_eq!(drain(&mut acd), [AcdAction::Unavailable { caller: c(2) }]);
    // The default queues the caller: someone may log in.
    acd.enqueue(t, c(3), "lenient", 0, IN).unwrap();
    assert_eq!(drain(&mut acd), [waiting(3, 1, secs(120))]);
    // Online but unregistered is nobody; online and busy is somebody.
    acd.set_state(t, "a", OperatorState::Online);
    assert!(acd.enqueue(t, c(4), "strict", 0, IN).is_err());
    acd.set_reachable(t, "a", true);
    acd.ring_answered(t, c(3), "a").unwrap();
    drain(&mut acd);
    assert!(acd.enqueue(t, c(5), "strict", 0, IN).is_ok());
    assert_eq!(
        acd.enqueue(t, c(5), "lenient", 0, IN),
        Err(AcdError::DuplicateCaller(c(5)))
    );
    assert_eq!(
        acd.enqueue(t, c(3), "lenient", 0, IN),
        Err(AcdError::DuplicateCaller(c(3)))
    );
}

#[test]
fn operator_leaving_while_ringing_cancels_without_a_miss() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a", "b"]));
    online(&mut acd, t, "a");
    online(&mut acd, t + secs(1), "b");
    acd.enqueue(t + secs(2), c(1), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), [ring(1, "a", "q")]);
    acd.set_state(t + secs(3), "a", OperatorState::Pause);
    assert_eq!(events(&mut acd), [cancel(1, "a"), ring(1, "b", "q")]);
    assert_eq!(acd.operator_view("a").unwrap().misses, 0);
    acd.set_reachable(t + secs(4), "b", false);
    assert_eq!(events(&mut acd), [cancel(1, "b")]);
    // Back online: a's idle time starts again now, but a is the only one.
    acd.set_state(t + secs(5), "a", OperatorState::Online);
    assert_eq!(events(&mut acd), [ring(1, "a", "q")]);
    // Removed from the queue while ringing.
    acd.set_queue(t + secs(6), queue("q", &["b"]));
    assert_eq!(events(&mut acd), [cancel(1, "a")]);
    // The queue goes away: its callers are told.
    acd.remove_queue(t + secs(7), "q");
    assert_eq!(drain(&mut acd), [AcdAction::Unavailable { caller: c(1) }]);
    assert_eq!(acd.caller_status(c(1)), None);
}

#[test]
fn removing_a_queue_cancels_its_rings() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a"]));
    acd.set_queue(t, queue("r", &["a"]));
    acd.enqueue(t, c(1), "q", 0, IN).unwrap();
    acd.enqueue(t, c(2), "r", 0, IN).unwrap();
    online(&mut acd, t, "a");
    assert_eq!(events(&mut acd), [ring(1, "a", "q")]);
    acd.remove_queue(t + secs(1), "q");
    assert_eq!(
        events(&mut acd),
        [
            cancel(1, "a"),
            AcdAction::Unavailable { caller: c(1) },
            ring(2, "a", "r")
        ]
    );
}

// ---- churn ---------------------------------------------------------------------------

/// xorshift64*: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Model {
    Waiting,
    Ringing(String),
    Connected(String),
    Gone,
}

struct World {
    callers: BTreeMap<CallerId, Model>,
    /// operator → caller its phone rings for
    ringing: BTreeMap<String, CallerId>,
    in_call: BTreeMap<String, CallerId>,
    /// The last position reported for each caller.
    positions: BTreeMap<CallerId, u32>,
    rings: u64,
    connects: u64,
    pauses: u64,
}

impl World {
    fn apply(&mut self, acd: &mut Acd) {
        while let Some(action) = acd.poll_action() {
            match action {
                AcdAction::Ring {
                    caller, operator, ..
                } => {
                    assert_eq!(
                        self.callers[&caller],
                        Model::Waiting,
                        "{caller:?} rings twice"
                    );
                    assert!(
                        !self.ringing.contains_key(&operator),
                        "{operator} rings twice"
                    );
                    assert!(
                        !self.in_call.contains_key(&operator),
                        "{operator} is in a call"
                    );
                    self.ringing.insert(operator.clone(), caller);
                    self.callers.insert(caller, Model::Ringing(operator));
                    self.rings += 1;
                }
                AcdAction::CancelRing { caller, operator } => {
                    assert_eq!(self.callers[&caller], Model::Ringing(operator.clone()));
                    assert_eq!(self.ringing.remove(&operator), Some(caller));
                    self.callers.insert(caller, Model::Waiting);
                }
                AcdAction::Connected { caller, operator } => {
                    assert_eq!(self.callers[&caller], Model::Connected(operator));
                }
                AcdAction::Waiting {
                    caller, position, ..
                } => {
                    assert!(matches!(
                        self.callers[&caller],
                        Model::Waiting | Model::Ringing(_)
                    ));
                    self.positions.insert(caller, position);
                }
                AcdAction::Unavailable { caller } => {
                    self.callers.insert(caller, Model::Gone);
                }
                AcdAction::OperatorPaused { operator, .. } => {
                    assert!(!self.ringing.contains_key(&operator));
                    self.pauses += 1;
                }
            }
        }
    }

    fn pick(&self, rng: &mut Rng, want: impl Fn(&Model) -> bool) -> Option<(CallerId, Model)> {
        let all: Vec<_> = self.callers.iter().filter(|(_, m)| want(m)).collect();
        if all.is_empty() {
            return None;
        }
        let (id, m) = all[rng.below(all.len())];
        Some((*id, m.clone()))
    }
}

#[test]
fn churn_1000_callers_100_operators() {
    const OPERATORS: usize = 100;
    const CALLERS: u64 = 1000;
    const QUEUES: [&str; 4] = ["sales", "support", "billing", "vip"];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let t0 = Instant::now();
    let mut now = t0;
    let mut acd = Acd::new();
    let ops: Vec<String> = (0..OPERATORS).map(|i| format!("op{i:02}")).collect();
    let mut membership: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for q in QUEUES {
        let mut cfg = QueueConfig::new(q);
        if q == "support" {
            cfg.callback_policy = CallbackPolicy::CallbacksFirst;
        }
        cfg.max_misses_before_pause = if q == "vip" { 0 } else { 2 };
        cfg.wrap_up = secs(rng.below(15) as u64);
        for (i, op) in ops.iter().enumerate() {
            if (i + q.len()) % 3 != 0 || rng.below(4) == 0 {
                cfg = cfg.with_member(op.clone(), rng.below(3) as u8);
            }
        }
        membership.insert(q, cfg.members.iter().map(|m| m.operator.clone()).collect());
        acd.set_queue(now, cfg);
    }
    let mut w = World {
        callers: BTreeMap::new(),
        ringing: BTreeMap::new(),
        in_call: BTreeMap::new(),
        positions: BTreeMap::new(),
        rings: 0,
        connects: 0,
        pauses: 0,
    };
    let mut next_caller = 0u64;
    let mut step = 0u64;
    let mut max_waiting = 0;
    while step < 40_000 {
        step += 1;
        now += ms(rng.below(1500) as u64);
        if acd.poll_timeout().is_some_and(|d| d <= now) {
            acd.handle_timeout(now);
            w.apply(&mut acd);
            assert!(acd.poll_timeout().is_none_or(|d| d > now));
        }
        match rng.below(100) {
            0..=19 if next_caller < CALLERS => {
                let id = CallerId(next_caller);
                next_caller += 1;
                let queue = if rng.below(50) == 0 {
                    "nowhere"
                } else {
                    QUEUES[rng.below(QUEUES.len())]
                };
                let kind = if rng.below(4) == 0 {
                    CallerKind::Callback
                } else {
                    CallerKind::Inbound
                };
                w.callers.insert(id, Model::Waiting);
                let r = acd.enqueue(now, id, queue, rng.below(3) as u8, kind);
                assert_eq!(r.is_err(), queue == "nowhere");
                if r.is_ok() {
                    assert_eq!(
                        acd.enqueue(now, id, QUEUES[0], 0, kind),
                        Err(AcdError::DuplicateCaller(id))
                    );
                }
            }
            20..=23 => {
                // A caller hangs up (waiting, ringing or talking).
                if let Some((id, m)) = w.pick(&mut rng, |m| *m != Model::Gone) {
                    let left = acd.leave(now, id);
                    assert_eq!(left.is_some(), !matches!(m, Model::Connected(_)));
                    if let Some(l) = &left {
                        assert_eq!(l.was_ringing, matches!(m, Model::Ringing(_)));
                    }
                    if let Model::Connected(op) = m {
                        w.in_call.remove(&op);
                        w.callers.insert(id, Model::Gone);
                    }
                    w.apply(&mut acd); // a CancelRing puts it back to waiting first
                    w.callers.insert(id, Model::Gone);
                }
            }
            24..=33 => {
                let op = &ops[rng.below(OPERATORS)];
                let state = match rng.below(10) {
                    0..=5 => OperatorState::Online,
                    6 => OperatorState::Away,
                    7 => OperatorState::Pause,
                    _ => OperatorState::Offline,
                };
                acd.set_state(now, op, state);
            }
            34..=38 => {
                let op = &ops[rng.below(OPERATORS)];
                acd.set_reachable(now, op, rng.below(5) != 0);
            }
            39..=42 => {
                let op = &ops[rng.below(OPERATORS)];
                acd.set_chats(now, op, [0, 0, 1, 2][rng.below(4)]);
            }
            43..=65 => {
                if let Some((id, Model::Ringing(op))) =
                    w.pick(&mut rng, |m| matches!(m, Model::Ringing(_)))
                {
                    // Sometimes the report names the wrong operator: refused.
                    if rng.below(10) == 0 {
                        let other = if op == ops[0] { &ops[1] } else { &ops[0] };
                        assert!(acd.ring_answered(now, id, other).is_err());
                    }
                    acd.ring_answered(now, id, &op).unwrap();
                    w.ringing.remove(&op);
                    w.in_call.insert(op.clone(), id);
                    w.callers.insert(id, Model::Connected(op));
                    w.connects += 1;
                }
            }
            66..=75 => {
                if let Some((id, Model::Ringing(op))) =
                    w.pick(&mut rng, |m| matches!(m, Model::Ringing(_)))
                {
                    let failure = [
                        RingFailure::NoAnswer,
                        RingFailure::Rejected,
                        RingFailure::Busy,
                        RingFailure::Unreachable,
                    ][rng.below(4)];
                    acd.ring_failed(now, id, &op, failure).unwrap();
                    w.ringing.remove(&op);
                    w.callers.insert(id, Model::Waiting);
                }
            }
            76..=82 => {
                if let Some((id, Model::Connected(op))) =
                    w.pick(&mut rng, |m| matches!(m, Model::Connected(_)))
                {
                    acd.call_ended(now, id);
                    w.in_call.remove(&op);
                    w.callers.insert(id, Model::Gone);
                }
            }
            83..=84 => {
                // A stale answer for a caller not ringing is refused.
                if let Some((id, _)) = w.pick(&mut rng, |m| !matches!(m, Model::Ringing(_))) {
                    assert!(acd.ring_answered(now, id, &ops[0]).is_err());
                }
            }
            _ => {}
        }
        w.apply(&mut acd);

        // Operators: the engine agrees with what the actions said.
        for op in &ops {
            if let Some(v) = acd.operator_view(op) {
                assert_eq!(v.ringing, w.ringing.get(op).copied(), "{op} at step {step}");
                assert_eq!(v.call, w.in_call.get(op).copied(), "{op} at step {step}");
                assert!(v.ringing.is_none() || v.call.is_none());
            }
        }
        // Work-conserving: nobody waits (not ringing) while a member is available.
        for q in QUEUES {
            let f = acd.figures(now, q).unwrap();
            max_waiting = max_waiting.max(f.waiting);
            if f.available > 0 {
                for id in acd.queue_order(q).unwrap() {
                    assert!(
                        matches!(acd.caller_status(id), Some(CallerStatus::Ringing { .. })),
                        "{id:?} waits in {q} while an operator is free (step {step})"
                    );
                }
            }
            assert!(membership[q].len() as u32 >= f.online + f.busy + f.paused + f.away);
        }
        // Every caller is waiting, ringing, connected or gone, as the model says.
        if step.is_multiple_of(100) {
            for (id, m) in &w.callers {
                let s = acd.caller_status(*id);
                match (m, &s) {
                    (Model::Waiting, Some(CallerStatus::Waiting { position, .. })) => {
                        // Every change of position was reported.
                        assert_eq!(w.positions.get(id), Some(position), "{id:?}");
                    }
                    (Model::Gone, None) => {}
                    (Model::Ringing(a), Some(CallerStatus::Ringing { operator, .. }))
                    | (Model::Connected(a), Some(CallerStatus::Connected { operator, .. }))
                        if a == operator => {}
                    _ => panic!("{id:?}: model {m:?}, engine {s:?} (step {step})"),
                }
            }
        }
        if next_caller == CALLERS && w.callers.values().all(|m| *m == Model::Gone) {
            break;
        }
    }
    assert_eq!(next_caller, CALLERS);
    assert!(w.connects > 300, "{} connects", w.connects);
    assert!(w.rings > w.connects);
    assert!(w.pauses > 0);
    assert!(max_waiting > 50, "the queues never grew: {max_waiting}");
}

#[test]
fn an_operator_with_a_visual_session_page_open_gets_no_call() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["anna", "bela"]));
    online(&mut acd, t, "anna");
    online(&mut acd, t + secs(1), "bela");
    drain(&mut acd);
    // anna, idle the longest, is with a customer in a visual session.
    acd.set_visual_sessions(t + secs(2), "anna", 1);
    acd.enqueue(t + secs(3), c(1), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), [ring(1, "bela", "q")]);
    assert_eq!(acd.operator_view("anna").unwrap().visual_sessions, 1);
    // The page is closed: the next caller rings anna.
    acd.set_visual_sessions(t + secs(4), "anna", 0);
    acd.enqueue(t + secs(5), c(2), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), [ring(2, "anna", "q")]);
}

#[test]
fn a_consultation_with_a_queue_reaches_its_longest_idle_free_member_but_not_the_asker() {
    let t = Instant::now();
    let mut acd = Acd::new();
    acd.set_queue(t, queue("q", &["a", "b", "c"]));
    online(&mut acd, t, "a");
    online(&mut acd, t + secs(1), "b");
    online(&mut acd, t + secs(2), "c");
    assert_eq!(acd.free_member("q", "x").as_deref(), Some("a"));
    // a asks: the next longest idle.
    assert_eq!(acd.free_member("q", "a").as_deref(), Some("b"));
    // a rings for a caller: not free.
    acd.enqueue(t + secs(3), c(1), "q", 0, IN).unwrap();
    assert_eq!(events(&mut acd), [ring(1, "a", "q")]);
    assert_eq!(acd.free_member("q", "x").as_deref(), Some("b"));
    assert_eq!(acd.free_member("q", "b").as_deref(), Some("c"));
    assert_eq!(acd.free_member("nobody's", "a"), None);
}
