//! The call session in a world without sockets: one caller, the real queue engine (`Acd`)
//! and operators' phones that answer, ignore or refuse as scripted, all on one virtual
//! clock. Queue, ring timeout, answer, hold, transfers and hang-up from either side are
//! checked to the millisecond. The SIPp checks in tests/run.sh are the end-to-end proof.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_core::acd::{
    Acd, AcdAction, CallerId, OperatorConfig, OperatorState, OperatorStatus, QueueConfig,
};
use hotline_core::call_session::{
    CALLER, CallSession, Check, Destination, FinishedCall, HandedLeg, LegId, LocalMedia, Output,
    PlacedSetup, PlacedStart, Port, QueueOut, RecordingEvent, Refusal, SessionSetup, SipOut,
};
use hotline_core::callbacks::missed::MissedReason;
use hotline_core::cdr::{EndReason, LegOutcome};
use hotline_core::ivr_call::PromptLibrary;
use hotline_ivr::{FlowSet, QueueStatus, TransferTarget};
use hotline_media::bridge::Side;

const CALLER_RTP: &str = "192.0.2.10:4000";
const ID: CallerId = CallerId(1);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A phone's RTP address: each operator and number has its own.
fn phone_rtp(who: &str) -> SocketAddr {
    match who {
        "anna" => addr("192.0.2.21:5000"),
        "bela" => addr("192.0.2.22:5000"),
        "sara" => addr("192.0.2.23:5000"),
        _ => addr("192.0.2.99:5000"),
    }
}

fn sdp_offer(at: SocketAddr, direction: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n",
        ip = at.ip(),
        port = at.port()
    )
}

/// An RTP packet (PCMA) with this sequence number.
fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend([0xd5; 160]);
    p
}

/// Flows for the world: 500 waits in `support` with hold music; 600 transfers to the
/// `sales` queue, 601 to operator bela, 700 to an outside number; each fails to `bye`.
fn flows() -> (FlowSet, Arc<PromptLibrary>) {
    let dir = std::env::temp_dir().join(format!(
        "hotline-world-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("prompts")).unwrap();
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ivr-flows/prompts");
    for p in ["hold-music", "goodbye"] {
        std::fs::copy(
            examples.join(format!("{p}.wav")),
            dir.join("prompts").join(format!("{p}.wav")),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("queues.toml"),
        "[queues.support]\nmembers = [\"anna\", \"bela\"]\n\
         [queues.support.skills]\nenglish = [\"anna\"]\n\
         [queues.sales]\nmembers = [\"bela\"]\n",
    )
    .unwrap();
    let flow = |name: &str, number: &str, first: &str| {
        format!(
            "name = \"{name}\"\nnumbers = [\"{number}\"]\nring_ms = 0\nstart = \"go\"\n\
             [steps.go]\n{first}\n\
             [steps.bye]\ntype = \"hangup\"\nprompts = [\"goodbye\"]\n"
        )
    };
    let files = [
        (
            "wait",
            flow(
                "wait",
                "500",
                "type = \"queue\"\nqueue = \"support\"\nmusic = \"hold-music\"\non_unavailable = \"bye\"",
            ),
        ),
        (
            "to-sales",
            flow(
                "to-sales",
                "600",
                "type = \"transfer\"\nqueue = \"sales\"\non_fail = \"bye\"",
            ),
        ),
        (
            "to-bela",
            flow(
                "to-bela",
                "601",
                "type = \"transfer\"\noperator = \"bela\"\non_fail = \"bye\"",
            ),
        ),
        (
            "out",
            flow(
                "out",
                "700",
                "type = \"transfer\"\nnumber = \"+36 1 555 0100\"\non_fail = \"bye\"",
            ),
        ),
    ];
    for (file, text) in files {
        std::fs::write(dir.join(format!("{file}.toml")), text).unwrap();
    }
    // 800: tags the caller VIP, asks for a key, and queues "2" for support in English.
    std::fs::write(
        dir.join("menu.toml"),
        "name = \"menu\"\nnumbers = [\"800\"]\nring_ms = 0\nstart = \"mark\"\n\
         [steps.mark]\ntype = \"set\"\nvariables = { lang = \"en\" }\ntags = [\"vip\"]\n\
         next = \"choose\"\n\
         [steps.choose]\ntype = \"menu\"\nprompt = \"goodbye\"\ntimeout_ms = 5000\n\
         choices = { \"2\" = \"wait\" }\non_fail = \"bye\"\n\
         [steps.wait]\ntype = \"queue\"\nqueue = \"support\"\nskill = \"english\"\n\
         music = \"hold-music\"\non_unavailable = \"bye\"\n\
         [steps.bye]\ntype = \"hangup\"\nprompts = [\"goodbye\"]\n",
    )
    .unwrap();
    let set = hotline_ivr::load_dir(&dir).unwrap();
    let mut prompts = PromptLibrary::new();
    for name in set.prompt_names() {
        let p = hotline_media::wav::load_prompt(&set.prompt_path(&name)).unwrap();
        prompts.insert(name, p);
    }
    let _ = std::fs::remove_dir_all(&dir);
    (set, Arc::new(prompts))
}

/// What a phone does when it rings.
#[derive(Clone, Copy)]
enum Phone {
    AnswersAfter(u64),
    Refuses(u64, u16),
    Ignores,
}

/// Something a phone does at a set time.
enum Due {
    Answer(LegId, String),
    Fail(LegId, u16),
}

struct World {
    t0: Instant,
    now: Instant,
    s: CallSession,
    acd: Acd,
    /// Every leg the session placed, and whom it rang.
    legs: HashMap<LegId, String>,
    phones: HashMap<String, Phone>,
    due: Vec<(Instant, Due)>,
    /// What happened, as "ms what".
    log: Vec<String>,
    /// When each packet the session itself sent the caller (prompts, music) left.
    to_caller: Vec<u64>,
    /// A monitored call's mix: (ms, leg, address, packet) for every party.
    mixed: Vec<(u64, LegId, SocketAddr, Vec<u8>)>,
    /// Whether a transfer target may be used, as the daemon's lookup would say.
    online_for_transfer: bool,
    /// The caller's media address in its offer (packets to the caller go there, or
    /// where its media was latched).
    caller_sdp: SocketAddr,
    /// The call's recording as the driver would write it.
    recorded: Vec<i16>,
}

impl World {
    fn new(number: &str) -> World {
        World::with_caller_sdp(number, addr(CALLER_RTP))
    }

    /// A call whose offer names `caller_sdp` as the caller's media address.
    fn with_caller_sdp(number: &str, caller_sdp: SocketAddr) -> World {
        World::build(number, caller_sdp, Duration::ZERO)
    }

    /// A call ended by dead-call detection after `rtp_timeout` without RTP.
    fn with_rtp_timeout(number: &str, rtp_timeout: Duration) -> World {
        World::build(number, addr(CALLER_RTP), rtp_timeout)
    }

    fn build(number: &str, caller_sdp: SocketAddr, rtp_timeout: Duration) -> World {
        let (set, prompts) = flows();
        let t0 = Instant::now();
        let mut acd = Acd::new();
        for (name, def) in set.queues() {
            let mut q = QueueConfig::new(name.clone());
            for (i, m) in def.members.iter().enumerate() {
                q = q.with_member(m.clone(), u8::try_from(i).unwrap());
            }
            acd.set_queue(t0, q);
        }
        for op in ["anna", "bela", "sara"] {
            acd.set_operator(op, OperatorConfig::default()).unwrap();
            acd.set_state(t0, op, OperatorState::Online);
            acd.set_reachable(t0, op, true);
        }
        let s = CallSession::new(
            t0,
            SessionSetup {
                call_id: "world".into(),
                caller: "+36301234567".into(),
                called: number.into(),
                flow: set.for_number(number).unwrap(),
                prompts,
                offer: Some(sdp_offer(caller_sdp, "sendrecv")),
                media: LocalMedia {
                    ip: "192.0.2.1".parse().unwrap(),
                    port: 20000,
                },
                sdp_session: 7,
                rtp_timeout,
                flow_clock: chrono::DateTime::parse_from_rfc3339("2026-12-07T10:00:00+01:00")
                    .unwrap()
                    .to_utc(),
                unix_ms: 1_000_000,
                direct: None,
                ssrc: 1,
                initial_seq: 1,
                initial_timestamp: 0,
            },
        );
        World {
            t0,
            now: t0,
            s,
            acd,
            legs: HashMap::new(),
            phones: HashMap::new(),
            due: Vec::new(),
            log: Vec::new(),
            to_caller: Vec::new(),
            mixed: Vec::new(),
            online_for_transfer: true,
            caller_sdp,
            recorded: Vec::new(),
        }
    }

    /// A call Hotline placed, its customer answered at 0 (at [`CALLER_RTP`]).
    fn placed(start: PlacedStart) -> World {
        let (set, prompts) = flows();
        let mut w = World::new("500");
        let (s, _) = CallSession::placed(
            w.t0,
            PlacedSetup {
                call_id: "placed".into(),
                customer: "+36301234567".into(),
                prompts,
                answer: hotline_sip::sdp::negotiate(&sdp_offer(addr(CALLER_RTP), "sendrecv"))
                    .unwrap(),
                media: LocalMedia {
                    ip: "192.0.2.1".parse().unwrap(),
                    port: 20000,
                },
                sdp_session: 7,
                sdp_version: 1,
                queue: None,
                rtp_timeout: Duration::ZERO,
                flow_clock: chrono::DateTime::parse_from_rfc3339("2026-12-07T10:00:00+01:00")
                    .unwrap()
                    .to_utc(),
                unix_ms: 1_000_000,
                ssrc: 1,
                initial_seq: 1,
                initial_timestamp: 0,
                start,
            },
        );
        drop(set);
        w.s = s;
        w.log.clear();
        w
    }

    /// anna's phone answered the click-to-call at 0 (her leg is 1).
    fn anna_answered() -> HandedLeg {
        HandedLeg {
            leg: 0,
            operator: "anna".into(),
            remote: Some(phone_rtp("anna")),
            media: LocalMedia {
                ip: "192.0.2.1".parse().unwrap(),
                port: 20002,
            },
            sdp_version: 1,
            rang_at_ms: 999_000,
            answered_at_ms: Some(1_000_000),
            format: (hotline_media::Codec::Pcma, 8, Some(101)),
        }
    }

    fn ms(&self) -> u64 {
        u64::try_from((self.now - self.t0).as_millis()).unwrap()
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn note(&mut self, what: String) {
        let line = format!("{} {what}", self.ms());
        self.log.push(line);
    }

    fn phone(mut self, who: &str, behaviour: Phone) -> World {
        self.phones.insert(who.into(), behaviour);
        self
    }

    /// Carries out everything the session and the queue engine ask, at `now`.
    fn pump(&mut self) {
        loop {
            while let Some((port, to, packet)) = self.s.poll_transmit() {
                let Port::Rtp(leg) = port else {
                    panic!("RTCP sent by the session")
                };
                let ms = self.ms();
                if self.s.monitored().is_some() {
                    self.mixed.push((ms, leg, to, packet));
                    continue;
                }
                assert_eq!(leg, CALLER);
                assert!(
                    to == addr(CALLER_RTP) || self.caller_sdp != addr(CALLER_RTP),
                    "sent to {to}"
                );
                self.to_caller.push(ms);
            }
            self.s.take_recorded(&mut self.recorded);
            if let Some(out) = self.s.poll_output() {
                self.carry_out(out);
                continue;
            }
            if let Some(action) = self.acd.poll_action() {
                self.queue_action(action);
                continue;
            }
            return;
        }
    }

    fn carry_out(&mut self, out: Output) {
        let now = self.now;
        match out {
            Output::Sip(SipOut::Answer { leg, .. }) => self.note(format!("answer {leg}")),
            Output::Sip(s) => self.note(format!("{s:?}")),
            Output::Queue(QueueOut::Enqueue {
                queue,
                priority,
                first,
                ..
            }) => {
                self.note(format!("enqueue {queue} first={first:?}"));
                let _ = match first {
                    Some(op) => self
                        .acd
                        .enqueue_direct(now, ID, &queue, priority, None, &op),
                    None => self.acd.enqueue_needing(
                        now,
                        ID,
                        &queue,
                        priority,
                        hotline_core::acd::CallerKind::Inbound,
                        None,
                    ),
                };
            }
            Output::Queue(QueueOut::EnqueueTransferred {
                queue,
                priority,
                since,
            }) => {
                self.note(format!("enqueue {queue} transferred"));
                let _ = self
                    .acd
                    .enqueue_transferred(now, ID, &queue, priority, since);
            }
            Output::Queue(QueueOut::Leave) => {
                self.note("leave".into());
                self.acd.leave(now, ID);
            }
            Output::Queue(QueueOut::RingAnswered { leg, operator }) => {
                let ok = self.acd.ring_answered(now, ID, &operator).is_ok();
                self.s.ring_accepted(now, leg, ok);
            }
            Output::Queue(QueueOut::RingFailed { operator, failure }) => {
                self.note(format!("ring failed {operator} {failure:?}"));
                let _ = self.acd.ring_failed(now, ID, &operator, failure);
            }
            Output::Queue(QueueOut::CallEnded) => {
                self.note("call ended".into());
                self.acd.call_ended(now, ID);
            }
            Output::Queue(QueueOut::Rekey) => self.note("rekey".into()),
            Output::Queue(QueueOut::OutboundEnded { operator }) => {
                self.note(format!("outbound ended {operator}"));
                self.acd.outbound_ended(now, &operator, ID);
            }
            Output::Queue(QueueOut::OutboundCancelled { operator }) => {
                self.note(format!("outbound cancelled {operator}"));
                self.acd.outbound_cancelled(now, &operator, ID);
            }
            Output::Queue(QueueOut::EnqueueCallback { queue, since }) => {
                let ago = (now - since).as_secs();
                self.note(format!("enqueue callback {queue} since -{ago}s"));
                if self
                    .acd
                    .enqueue_callback(now, ID, &queue, 0, since)
                    .is_err()
                {
                    self.s.queue_status(now, QueueStatus::Unavailable);
                }
            }
            Output::Answered { at_ms } => self.note(format!("answered at {at_ms}")),
            Output::PlaceExternal { leg, number } => {
                self.note(format!("dial {number}"));
                self.place(leg, number);
            }
            Output::Check(check) => {
                let result = self.resolve(&check);
                self.s.target_checked(now, result);
            }
            Output::Callback { number, .. } => self.note(format!("callback {number}")),
            Output::Connected { operator, note, .. } => {
                self.note(format!("connected {operator} note={note:?}"))
            }
            Output::Held { operator, held } => self.note(format!("held {operator} {held}")),
            Output::Disconnected { operator } => self.note(format!("disconnected {operator}")),
            Output::ConsoleReply(r) => self.note(format!("console {r:?}")),
            Output::PlaceOperator {
                leg,
                operator,
                auto_answer,
            } => {
                let auto = if auto_answer { " (auto answer)" } else { "" };
                self.note(format!("place operator {operator}{auto}"));
                match self.acd.outbound_started(now, &operator, ID, None) {
                    Ok(()) => self.place(leg, operator),
                    Err(_) => self.s.leg_not_placed(now, leg),
                }
            }
            Output::Monitor {
                supervisor,
                operator,
                state,
            } => self.note(format!("monitor {supervisor} on {operator}: {state:?}")),
            Output::Consulting { operator, state } => {
                self.note(format!("consulting {operator} {state:?}"))
            }
            Output::Recording(RecordingEvent::Started { by, stereo, .. }) => {
                self.note(format!("recording started by={by:?} stereo={stereo}"))
            }
            Output::Recording(RecordingEvent::Mark { offset_ms, label }) => {
                self.note(format!("mark {offset_ms} {label}"))
            }
            Output::Recording(RecordingEvent::Stopped { by, duration_ms }) => {
                // The driver writes the last audio before it closes the file.
                self.s.take_recorded(&mut self.recorded);
                self.note(format!(
                    "recording stopped by={by:?} after {duration_ms} ms"
                ))
            }
            // The test hands the consultation call's party over itself.
            Output::Replace { dialog, from } => self.note(format!("replace {dialog} from {from}")),
        }
    }

    /// The daemon's lookup, for the targets these tests use.
    fn resolve(&self, check: &Check) -> Result<Destination, Refusal> {
        let target = match check {
            Check::Refer { target, .. } => match target.user.as_deref() {
                Some("1002") => TransferTarget::Operator("bela".into()),
                Some("600") => TransferTarget::Queue("sales".into()),
                _ => return Err((404, "nobody".into())),
            },
            // sales' free member is bela.
            Check::Consult {
                to: TransferTarget::Queue(_),
                ..
            } => TransferTarget::Operator("bela".into()),
            Check::Console { to, .. } | Check::Consult { to, .. } | Check::Flow(to) => to.clone(),
        };
        if !self.online_for_transfer {
            return Err((480, "cannot take a call now".into()));
        }
        Ok(match target {
            TransferTarget::Operator(op) => Destination::Operator {
                operator: op,
                queue: "sales".into(),
            },
            TransferTarget::Queue(q) => Destination::Queue(q),
            TransferTarget::External(n) => Destination::External(n),
        })
    }

    fn queue_action(&mut self, action: AcdAction) {
        let now = self.now;
        match action {
            AcdAction::Ring { operator, .. } => {
                self.note(format!("ring {operator}"));
                if let Some(leg) = self.s.ring_operator(now, &operator) {
                    self.place(leg, operator);
                }
            }
            AcdAction::CancelRing { operator, .. } => {
                self.note(format!("cancel ring {operator}"));
                self.s.cancel_ring(now);
            }
            AcdAction::Waiting {
                position,
                expected_wait,
                ..
            } => self.s.queue_status(
                now,
                QueueStatus::Waiting {
                    position,
                    expected_wait,
                },
            ),
            AcdAction::Unavailable { .. } => {
                self.note("unavailable".into());
                self.s.queue_status(now, QueueStatus::Unavailable);
            }
            AcdAction::Connected { .. } | AcdAction::OperatorPaused { .. } => {}
        }
    }

    /// The INVITE is out: the phone does what its script says.
    fn place(&mut self, leg: LegId, who: String) {
        self.s.leg_placed(
            self.now,
            leg,
            LocalMedia {
                ip: "192.0.2.1".parse().unwrap(),
                port: 20002 + u16::try_from(leg).unwrap() * 2,
            },
        );
        match self.phones.get(&who).copied().unwrap_or(Phone::Ignores) {
            Phone::AnswersAfter(ms) => self.due.push((
                self.now + Duration::from_millis(ms),
                Due::Answer(leg, who.clone()),
            )),
            Phone::Refuses(ms, status) => self
                .due
                .push((self.now + Duration::from_millis(ms), Due::Fail(leg, status))),
            Phone::Ignores => {}
        }
        self.legs.insert(leg, who);
    }

    /// Runs the world until `ms` after the call came in.
    fn run_until(&mut self, ms: u64) {
        let until = self.at(ms);
        loop {
            self.pump();
            let next = [
                self.s.poll_timeout(),
                self.acd.poll_timeout(),
                self.due.iter().map(|(t, _)| *t).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|t| *t <= until) else {
                self.now = until;
                self.pump();
                return;
            };
            self.now = next.max(self.now);
            let now = self.now;
            if self.acd.poll_timeout().is_some_and(|t| t <= now) {
                self.acd.handle_timeout(now);
            }
            if self.s.poll_timeout().is_some_and(|t| t <= now) {
                self.s.handle_timeout(now);
            }
            let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.due)
                .into_iter()
                .partition(|(t, _)| *t <= now);
            self.due = later;
            for (_, due) in ready {
                match due {
                    Due::Answer(leg, who) => {
                        let sdp = sdp_offer(phone_rtp(&who), "sendrecv");
                        self.s.leg_answered(now, leg, Some(&sdp));
                    }
                    Due::Fail(leg, status) => self.s.leg_failed(now, leg, status),
                }
                self.pump();
            }
        }
    }

    /// Something happens at `ms`: the world runs until then first.
    fn at_ms(&mut self, ms: u64, f: impl FnOnce(&mut CallSession, Instant)) {
        self.run_until(ms);
        f(&mut self.s, self.now);
        self.pump();
    }

    fn leg_of(&self, who: &str) -> LegId {
        *self
            .legs
            .iter()
            .filter(|(_, w)| *w == who)
            .map(|(l, _)| l)
            .max()
            .unwrap()
    }

    /// Lines of the log that start with one of `prefixes` (after the time).
    fn events(&self, of: &[&str]) -> Vec<String> {
        self.log
            .iter()
            .filter(|l| {
                let what = l.split_once(' ').map_or("", |(_, w)| w);
                of.iter().any(|p| what.starts_with(p))
            })
            .cloned()
            .collect()
    }

    fn outcome(self) -> FinishedCall {
        assert!(self.s.ended().is_some(), "the call is over");
        self.s.into_outcome()
    }

    /// The caller's RTP reaches the operator's phone (`Some(leg)`), or nobody.
    fn caller_speaks(&mut self, seq: u16) -> Option<(Port, SocketAddr)> {
        self.s
            .handle_datagram(self.now, Port::Rtp(CALLER), addr(CALLER_RTP), &mut rtp(seq))
    }

    /// Packets the session sent the caller in [from, to) ms.
    fn caller_heard(&self, from: u64, to: u64) -> Vec<u64> {
        self.to_caller
            .iter()
            .copied()
            .filter(|t| (from..to).contains(t))
            .collect()
    }
}

#[test]
fn queued_caller_rings_an_operator_who_answers_and_the_caller_hangs_up() {
    let mut w = World::new("500").phone("anna", Phone::AnswersAfter(3000));
    w.at_ms(10_000, |s, now| {
        s.caller_ended(now, EndReason::CallerHangup)
    });
    assert_eq!(
        w.log,
        [
            "0 answer 0",
            "0 answered at 1000000",
            "0 enqueue support first=None",
            "0 ring anna",
            "3000 connected anna note=None",
            "10000 Hangup { leg: 1 }",
            "10000 disconnected anna",
            "10000 call ended",
        ]
    );
    // Hold music while waiting, at 20 ms pacing; nothing from us once bridged.
    let waiting = w.caller_heard(0, 3000);
    assert_eq!(waiting.len(), 150);
    assert!(waiting.windows(2).all(|p| p[1] - p[0] == 20));
    // (The tick due at 3000 ms went out just before the answer of the same ms.)
    assert!(w.caller_heard(3001, 10_000).is_empty());
    let o = w.outcome();
    assert_eq!(o.reason, EndReason::CallerHangup);
    assert_eq!(o.operator.as_deref(), Some("anna"));
    assert_eq!(o.missed, None);
    assert_eq!(o.service.queue.as_deref(), Some("support"));
    assert_eq!(o.service.wait_ms, Some(3000));
    let [leg] = &o.service.legs[..] else { panic!() };
    assert_eq!(
        (leg.rang_at_ms, leg.answered_at_ms, leg.ended_at_ms),
        (1_000_000, Some(1_003_000), 1_010_000)
    );
    assert_eq!(leg.outcome, LegOutcome::Answered);
}

#[test]
fn bridged_media_passes_both_ways_unchanged() {
    let mut w = World::new("500").phone("anna", Phone::AnswersAfter(1000));
    w.run_until(999);
    // Before the answer, the caller's RTP is the IVR's.
    assert_eq!(w.caller_speaks(1), None);
    w.run_until(1000);
    let leg = w.leg_of("anna");
    assert_eq!(
        w.caller_speaks(2),
        Some((Port::Rtp(leg), phone_rtp("anna")))
    );
    let back =
        w.s.handle_datagram(w.now, Port::Rtp(leg), phone_rtp("anna"), &mut rtp(9));
    assert_eq!(back, Some((Port::Rtp(CALLER), addr(CALLER_RTP))));
    // A stranger's packets on the operator's port after latching still go to the
    // caller (symmetric RTP latches on the first), but never on a port of no leg.
    assert_eq!(
        w.s.handle_datagram(w.now, Port::Rtp(leg + 1), phone_rtp("x"), &mut rtp(1)),
        None
    );
}

#[test]
fn a_plainly_bridged_call_lends_its_media_and_dead_call_detection_still_holds() {
    let mut w = World::with_rtp_timeout("500", Duration::from_secs(30))
        .phone("anna", Phone::AnswersAfter(1000));
    w.run_until(1000);
    let anna = w.leg_of("anna");
    // Nothing heard since the bridge at 1000: dead at 31,000 unless the caller speaks.
    let due = w.s.poll_timeout();
    assert_eq!(due, Some(w.at(31_000)));
    let (leg, mut relay) = w.s.lend_media().expect("plainly bridged");
    assert_eq!(leg, anna);
    // On the relay thread: the same forwarding as the session's own.
    let caller = addr(CALLER_RTP);
    assert_eq!(
        relay.forward(w.at(20_000), Side::A, false, caller, &mut rtp(2)),
        Some(phone_rtp("anna"))
    );
    assert_eq!(
        relay.forward(w.at(20_000), Side::B, false, phone_rtp("anna"), &mut rtp(3)),
        Some(caller)
    );
    // RTCP from a stranger learns nothing; the phone's is held until the caller's
    // side has sent its own.
    let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    let stranger = addr("198.51.100.66:7001");
    assert_eq!(
        relay.forward(w.at(20_000), Side::B, true, stranger, &mut rtcp.clone()),
        None
    );
    // Back in the session when the old deadline comes: the caller spoke at 20,000, so
    // the call lives on, now to 50,000.
    w.s.return_media(relay);
    w.run_until(31_000);
    assert!(w.s.ended().is_none());
    assert_eq!(w.s.poll_timeout(), Some(w.at(50_000)));
    w.run_until(50_000);
    assert_eq!(w.s.ended(), Some(EndReason::RtpTimeout));
}

#[test]
fn held_or_consulting_calls_keep_their_media() {
    let mut w = World::new("500").phone("anna", Phone::AnswersAfter(1000));
    w.run_until(500);
    assert!(w.s.lend_media().is_none(), "in the flow");
    w.run_until(1000);
    let leg = w.leg_of("anna");
    let hold = sdp_offer(phone_rtp("anna"), "sendonly");
    w.at_ms(5000, |s, now| s.leg_reinvite(now, leg, Some(&hold)));
    assert!(w.s.lend_media().is_none(), "held");
    let resume = sdp_offer(phone_rtp("anna"), "sendrecv");
    w.at_ms(8000, |s, now| s.leg_reinvite(now, leg, Some(&resume)));
    let (_, relay) = w.s.lend_media().expect("resumed");
    w.s.return_media(relay);
    w.run_until(8000);
    assert!(w.caller_speaks(4).is_some());
}

#[test]
fn the_bridge_keeps_the_caller_latched_where_the_ivr_heard_them() {
    // The caller is behind two NATs (its SDP names a private address, its router's is a
    // carrier's shared one); the IVR heard it from the router's address.
    let router = addr("100.64.0.9:61000");
    let mut w = World::with_caller_sdp("500", addr("10.0.0.5:4000"))
        .phone("anna", Phone::AnswersAfter(1000));
    w.run_until(500);
    assert_eq!(
        w.s.handle_datagram(w.now, Port::Rtp(CALLER), router, &mut rtp(1)),
        None,
        "the IVR's"
    );
    w.run_until(1000);
    let leg = w.leg_of("anna");
    // Bridged: a stranger sending first on the caller's side takes nothing...
    assert_eq!(
        w.s.handle_datagram(
            w.now,
            Port::Rtp(CALLER),
            addr("198.51.100.66:7000"),
            &mut rtp(2)
        ),
        None
    );
    // ...the caller is heard, and the operator's media goes to the router's address.
    assert_eq!(
        w.s.handle_datagram(w.now, Port::Rtp(CALLER), router, &mut rtp(3)),
        Some((Port::Rtp(leg), phone_rtp("anna")))
    );
    assert_eq!(
        w.s.handle_datagram(w.now, Port::Rtp(leg), phone_rtp("anna"), &mut rtp(9)),
        Some((Port::Rtp(CALLER), router))
    );
}

#[test]
fn an_unanswered_ring_times_out_to_the_next_operator_at_exactly_20_s() {
    let mut w = World::new("500")
        .phone("anna", Phone::Ignores)
        .phone("bela", Phone::AnswersAfter(1500));
    w.at_ms(30_000, |s, now| {
        s.caller_ended(now, EndReason::CallerHangup)
    });
    assert_eq!(
        w.events(&["ring", "cancel", "Hangup", "connected"]),
        [
            "0 ring anna",
            "20000 cancel ring anna",
            "20000 Hangup { leg: 1 }",
            "20000 ring bela",
            "21500 connected bela note=None",
            "30000 Hangup { leg: 2 }",
        ]
    );
    let o = w.outcome();
    assert_eq!(o.service.wait_ms, Some(21_500));
    let outcomes: Vec<_> = o
        .service
        .legs
        .iter()
        .map(|l| (l.operator.clone().unwrap(), l.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("anna".to_string(), LegOutcome::Cancelled),
            ("bela".to_string(), LegOutcome::Answered)
        ]
    );
}

#[test]
fn a_busy_phone_sends_the_caller_to_the_next_operator_at_once() {
    let mut w = World::new("500")
        .phone("anna", Phone::Refuses(700, 486))
        .phone("bela", Phone::AnswersAfter(300));
    w.run_until(5000);
    assert_eq!(
        w.events(&["ring", "connected"]),
        [
            "0 ring anna",
            "700 ring failed anna Busy",
            "700 ring bela",
            "1000 connected bela note=None"
        ]
    );
}

#[test]
fn operator_hold_plays_music_to_the_caller_and_counts_hold_time() {
    let mut w = World::new("500").phone("anna", Phone::AnswersAfter(1000));
    w.run_until(1000);
    let leg = w.leg_of("anna");
    let hold = sdp_offer(phone_rtp("anna"), "sendonly");
    w.at_ms(5000, |s, now| s.leg_reinvite(now, leg, Some(&hold)));
    // Held: the operator hears nothing of the caller.
    assert_eq!(w.caller_speaks(3), None);
    let resume = sdp_offer(phone_rtp("anna"), "sendrecv");
    w.at_ms(8000, |s, now| s.leg_reinvite(now, leg, Some(&resume)));
    assert!(w.caller_speaks(4).is_some());
    w.at_ms(12_000, |s, now| s.leg_ended(now, leg));
    assert_eq!(
        w.events(&["held", "answer 1", "Hangup", "call ended"]),
        [
            "5000 answer 1",
            "5000 held anna true",
            "8000 answer 1",
            "8000 held anna false",
            "12000 Hangup { leg: 0 }",
            "12000 call ended",
        ]
    );
    // Music from 5000 to 8000 (its tick of that ms went out before the resume), every
    // 20 ms; none before (bridged at 1000) or after.
    let music = w.caller_heard(1001, 12_001);
    assert_eq!(music.first(), Some(&5000));
    assert_eq!(music.last(), Some(&8000));
    assert_eq!(music.len(), 151);
    assert!(music.windows(2).all(|p| p[1] - p[0] == 20));
    let o = w.outcome();
    assert_eq!(o.reason, EndReason::OperatorHangup);
    assert_eq!(o.service.hold_ms, 3000);
}

#[test]
fn console_hold_is_refused_until_the_call_is_connected() {
    let mut w = World::new("500").phone("anna", Phone::AnswersAfter(1000));
    w.run_until(500);
    assert!(w.s.console_hold(w.now, true).is_err());
    w.run_until(1000);
    assert_eq!(w.s.console_hold(w.now, true), Ok(()));
    assert_eq!(w.s.connected(), Some(("anna", true)));
}

#[test]
fn a_refer_from_the_operator_moves_the_caller_to_bela_who_answers() {
    let mut w = World::new("500")
        .phone("anna", Phone::AnswersAfter(1000))
        .phone("bela", Phone::AnswersAfter(2000));
    w.run_until(1000);
    let anna = w.leg_of("anna");
    let target = hotline_sip::ReferTarget {
        uri: "sip:1002@hotline".into(),
        user: Some("1002".into()),
        replaces: None,
    };
    w.at_ms(4000, |s, now| s.leg_refer(now, anna, target));
    w.at_ms(9000, |s, now| s.caller_ended(now, EndReason::CallerHangup));
    assert_eq!(
        w.log[4..],
        [
            "1000 connected anna note=None",
            "4000 ReferReply { leg: 1, status: 202 }",
            "4000 ReferNotify { leg: 1, status: 100, last: false }",
            "4000 ReferNotify { leg: 1, status: 200, last: true }",
            "4000 Hangup { leg: 1 }",
            "4000 disconnected anna",
            "4000 call ended",
            "4000 enqueue sales first=Some(\"bela\")",
            "4000 ring bela",
            "6000 connected bela note=None",
            "9000 Hangup { leg: 2 }",
            "9000 disconnected bela",
            "9000 call ended",
        ]
    );
    // The caller heard music while bela's phone rang.
    assert_eq!(w.caller_heard(4000, 6000).len(), 100);
    let o = w.outcome();
    assert_eq!(o.operator.as_deref(), Some("bela"));
    assert_eq!(
        o.service.wait_ms,
        Some(1000),
        "the wait until the first answer"
    );
    let legs: Vec<_> = o
        .service
        .legs
        .iter()
        .map(|l| {
            (
                l.operator.clone().unwrap(),
                l.answered_at_ms,
                l.ended_at_ms,
                l.transferred_to.clone(),
            )
        })
        .collect();
    assert_eq!(
        legs,
        [
            (
                "anna".to_string(),
                Some(1_001_000),
                1_004_000,
                Some("operator bela".to_string())
            ),
            ("bela".to_string(), Some(1_006_000), 1_009_000, None),
        ]
    );
}

#[test]
fn refers_are_refused_with_the_right_status() {
    let mut w = World::new("500").phone("anna", Phone::AnswersAfter(1000));
    let refer = |user: &str, replaces: Option<&str>| hotline_sip::ReferTarget {
        uri: format!("sip:{user}@hotline"),
        user: Some(user.into()),
        replaces: replaces.map(Into::into),
    };
    // Ringing, not yet connected: only the connected operator may transfer.
    w.at_ms(500, |s, now| s.leg_refer(now, 1, refer("1002", None)));
    w.run_until(1000);
    // A Replaces that names no call.
    w.at_ms(1100, |s, now| {
        s.leg_refer(now, 1, refer("1002", Some(";to-tag=1;from-tag=2")))
    });
    w.at_ms(1200, |s, now| s.leg_refer(now, 1, refer("555", None)));
    w.online_for_transfer = false;
    w.at_ms(1300, |s, now| s.leg_refer(now, 1, refer("1002", None)));
    assert_eq!(
        w.events(&["ReferReply"]),
        [
            "500 ReferReply { leg: 1, status: 403 }",
            "1100 ReferReply { leg: 1, status: 400 }",
            "1200 ReferReply { leg: 1, status: 404 }",
            "1300 ReferReply { leg: 1, status: 480 }",
        ]
    );
    // Still connected to anna.
    assert_eq!(w.s.connected(), Some(("anna", false)));
}

#[test]
fn a_console_transfer_to_a_queue_keeps_the_note_for_the_next_operator() {
    let mut w = World::new("500")
        .phone("anna", Phone::AnswersAfter(1000))
        .phone("bela", Phone::AnswersAfter(500));
    w.run_until(2000);
    w.at_ms(2000, |s, now| {
        s.console_transfer(
            now,
            TransferTarget::Queue("sales".into()),
            "wants a refund".into(),
        )
    });
    w.run_until(3000);
    assert_eq!(
        w.events(&["console", "enqueue", "connected"]),
        [
            "0 enqueue support first=None",
            "1000 connected anna note=None",
            "2000 console Ok(())",
            "2000 enqueue sales transferred",
            "2500 connected bela note=Some((\"anna\", \"wants a refund\"))",
        ]
    );
}

#[test]
fn the_operator_hanging_up_ends_the_call_for_the_caller() {
    let mut w = World::new("500").phone("anna", Phone::AnswersAfter(1000));
    w.run_until(1000);
    let anna = w.leg_of("anna");
    w.at_ms(7000, |s, now| s.leg_ended(now, anna));
    assert_eq!(
        w.log[w.log.len() - 3..],
        [
            "7000 disconnected anna",
            "7000 Hangup { leg: 0 }",
            "7000 call ended"
        ]
    );
    assert_eq!(w.outcome().reason, EndReason::OperatorHangup);
}

#[test]
fn an_admin_hangup_byes_the_caller_and_the_operator_as_if_the_operator_hung_up() {
    let mut w = World::new("500").phone("anna", Phone::AnswersAfter(1000));
    w.run_until(1000);
    let anna = w.leg_of("anna");
    w.at_ms(4000, |s, now| s.hang_up(now));
    let mut byes = w.events(&["Hangup", "disconnected", "call ended"]);
    byes.sort();
    assert_eq!(
        byes,
        [
            "4000 Hangup { leg: 0 }".to_string(),
            format!("4000 Hangup {{ leg: {anna} }}"),
            "4000 call ended".to_string(),
            "4000 disconnected anna".to_string(),
        ]
    );
    let o = w.outcome();
    assert_eq!(o.reason, EndReason::OperatorHangup);
    assert_eq!(o.operator.as_deref(), Some("anna"));
    assert_eq!(o.missed, None);
}

#[test]
fn an_admin_hangup_of_a_waiting_caller_is_the_daemon_s_and_a_missed_call() {
    let mut w = World::new("500");
    w.at_ms(3000, |s, now| s.hang_up(now));
    assert_eq!(
        w.events(&["Hangup { leg: 0 }", "leave"]),
        ["3000 Hangup { leg: 0 }", "3000 leave"]
    );
    let o = w.outcome();
    assert_eq!(o.reason, EndReason::FlowHangup);
    assert_eq!(o.missed.map(|m| m.reason), Some(MissedReason::Abandoned));
}

#[test]
fn a_caller_who_hangs_up_while_waiting_is_a_missed_call_with_their_wait() {
    let mut w = World::new("500");
    w.at_ms(12_345, |s, now| {
        s.caller_ended(now, EndReason::CallerHangup)
    });
    assert_eq!(
        w.events(&["leave", "Hangup"]),
        ["12345 Hangup { leg: 1 }", "12345 leave"]
    );
    let o = w.outcome();
    assert_eq!(
        o.missed,
        Some(hotline_core::call_session::Missed {
            queue: Some("support".into()),
            reason: MissedReason::Abandoned,
            waited: Duration::from_millis(12_345),
        })
    );
    assert_eq!(o.service.wait_ms, Some(12_345));
}

#[test]
fn the_flow_transfer_to_a_queue_nobody_can_take_goes_to_on_fail() {
    let mut w = World::new("600");
    // Nobody in sales (bela) is online.
    w.acd.set_state(w.now, "bela", OperatorState::Offline);
    let mut q = QueueConfig::new("sales").with_member("bela", 1);
    q.refuse_when_nobody = true;
    w.acd.set_queue(w.now, q);
    w.run_until(60_000);
    assert_eq!(
        w.events(&["enqueue", "unavailable", "Hangup"])[..2],
        ["0 enqueue sales transferred", "0 unavailable"]
    );
    let o = w.outcome();
    assert_eq!(o.reason, EndReason::FlowHangup);
    assert_eq!(o.path, ["go", "bye"]);
}

#[test]
fn the_flow_transfer_to_an_operator_rings_them_first() {
    let mut w = World::new("601").phone("bela", Phone::AnswersAfter(4000));
    w.run_until(5000);
    assert_eq!(
        w.events(&["enqueue", "ring", "connected"]),
        [
            "0 enqueue sales first=Some(\"bela\")",
            "0 ring bela",
            "4000 connected bela note=None"
        ]
    );
}

#[test]
fn an_outside_number_that_never_answers_fails_the_transfer_after_60_s() {
    let mut w = World::new("700");
    w.run_until(70_000);
    assert_eq!(
        w.events(&["dial", "Hangup"])[..2],
        ["0 dial +3615550100", "60000 Hangup { leg: 1 }"]
    );
    let o = w.outcome();
    assert_eq!(o.path, ["go", "bye"]);
    assert_eq!(o.service.legs[0].number.as_deref(), Some("+3615550100"));
    assert_eq!(o.service.legs[0].outcome, LegOutcome::NoAnswer);
}

#[test]
fn an_outside_number_that_answers_is_bridged_and_leaves_the_flow() {
    let mut w = World::new("700").phone("+3615550100", Phone::AnswersAfter(8000));
    w.run_until(8000);
    let leg = w.leg_of("+3615550100");
    assert_eq!(
        w.caller_speaks(1),
        Some((Port::Rtp(leg), phone_rtp("+3615550100")))
    );
    // Music while it rang, silence from us after.
    assert_eq!(w.caller_heard(0, 8000).len(), 400);
    w.at_ms(20_000, |s, now| s.leg_ended(now, leg));
    let o = w.outcome();
    assert_eq!(o.reason, EndReason::OperatorHangup);
    assert_eq!(o.path, ["go"]);
    assert_eq!(o.operator, None);
}

/// A call to 500 whose flow rings 2 s before answering, at its start.
fn ringing_session() -> (Instant, CallSession) {
    let (set, prompts) = flows();
    let mut flow = (*set.for_number("500").unwrap()).clone();
    flow.ring_ms = 2000;
    let t0 = Instant::now();
    let s = CallSession::new(
        t0,
        SessionSetup {
            call_id: "ring".into(),
            caller: "+36301234567".into(),
            called: "500".into(),
            flow: Arc::new(flow),
            prompts,
            offer: Some(sdp_offer(addr(CALLER_RTP), "sendrecv")),
            media: LocalMedia {
                ip: "192.0.2.1".parse().unwrap(),
                port: 20000,
            },
            sdp_session: 7,
            rtp_timeout: Duration::ZERO,
            flow_clock: chrono::Utc::now(),
            unix_ms: 0,
            direct: None,
            ssrc: 1,
            initial_seq: 1,
            initial_timestamp: 0,
        },
    );
    (t0, s)
}

#[test]
fn a_cancel_while_ringing_before_the_answer_needs_no_bye() {
    let (t0, mut s) = ringing_session();
    assert_eq!(s.poll_output(), Some(Output::Sip(SipOut::Ringing)));
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_millis(2000)));
    s.caller_cancelled(t0 + Duration::from_millis(1500));
    assert_eq!(s.poll_output(), None);
    assert_eq!(s.ended(), Some(EndReason::Cancelled));
}

#[test]
fn an_admin_hangup_while_ringing_before_the_answer_refuses_the_call_with_480() {
    let (t0, mut s) = ringing_session();
    assert_eq!(s.poll_output(), Some(Output::Sip(SipOut::Ringing)));
    s.hang_up(t0 + Duration::from_millis(500));
    assert_eq!(
        s.poll_output(),
        Some(Output::Sip(SipOut::Reject {
            leg: CALLER,
            status: 480
        }))
    );
    assert_eq!(s.poll_output(), None);
    assert_eq!(s.ended(), Some(EndReason::FlowHangup));
    // Once over, another hang-up does nothing.
    s.hang_up(t0 + Duration::from_millis(600));
    assert_eq!(s.poll_output(), None);
}

#[test]
fn an_offer_without_a_common_codec_is_refused_with_488() {
    let (set, prompts) = flows();
    let t0 = Instant::now();
    let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
                 m=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let mut s = CallSession::new(
        t0,
        SessionSetup {
            call_id: "g729".into(),
            caller: "+36301234567".into(),
            called: "500".into(),
            flow: set.for_number("500").unwrap(),
            prompts,
            offer: Some(offer.into()),
            media: LocalMedia {
                ip: "192.0.2.1".parse().unwrap(),
                port: 20000,
            },
            sdp_session: 7,
            rtp_timeout: Duration::ZERO,
            flow_clock: chrono::Utc::now(),
            unix_ms: 0,
            direct: None,
            ssrc: 1,
            initial_seq: 1,
            initial_timestamp: 0,
        },
    );
    assert_eq!(
        s.poll_output(),
        Some(Output::Sip(SipOut::Reject {
            leg: CALLER,
            status: 488
        }))
    );
    assert_eq!(s.ended(), Some(EndReason::Rejected));
}

#[test]
fn an_attended_transfer_joins_the_caller_with_the_colleague_anna_consulted() {
    // The caller talks with anna, who holds them and calls bela (a consultation call:
    // the built-in flow rings bela, as the "601" flow does here).
    let mut x = World::new("500").phone("anna", Phone::AnswersAfter(1000));
    x.run_until(1000);
    let anna = x.leg_of("anna");
    let hold = sdp_offer(phone_rtp("anna"), "sendonly");
    x.at_ms(2000, |s, now| s.leg_reinvite(now, anna, Some(&hold)));
    let mut y = World::new("601").phone("bela", Phone::AnswersAfter(1500));
    y.run_until(1500);
    let bela = y.leg_of("bela");
    assert_eq!(y.s.connected(), Some(("bela", false)));
    // anna's phone: REFER with Replaces naming the consultation dialog.
    let target = hotline_sip::ReferTarget {
        uri: "sip:1002@hotline".into(),
        user: Some("1002".into()),
        replaces: Some("consult-1;to-tag=h1;from-tag=a1".into()),
    };
    x.at_ms(5000, |s, now| s.leg_refer(now, anna, target));
    assert_eq!(x.log.last().unwrap(), "5000 replace consult-1 from anna");
    y.run_until(3500);
    let handed = y.s.hand_over(y.now).unwrap();
    assert_eq!((handed.leg, handed.operator.as_str()), (bela, "bela"));
    assert_eq!(handed.remote, Some(phone_rtp("bela")));
    y.pump();
    // The consultation call ends: anna's consultation dialog is hung up, bela's is not,
    // and bela stays busy (no "call ended" to the queue engine).
    assert_eq!(
        y.log[y.log.len() - 2..],
        ["3500 disconnected bela", "3500 Hangup { leg: 0 }"]
    );
    assert_eq!(y.s.ended(), Some(EndReason::Replaced));
    let joined = x.s.replaced(x.now, Ok(handed)).unwrap();
    x.pump();
    assert_eq!(
        x.log[x.log.len() - 9..],
        [
            "5000 ReferReply { leg: 1, status: 202 }",
            "5000 ReferNotify { leg: 1, status: 100, last: false }",
            "5000 ReferNotify { leg: 1, status: 200, last: true }",
            "5000 held anna false",
            "5000 Hangup { leg: 1 }",
            "5000 disconnected anna",
            "5000 call ended",
            "5000 rekey",
            "5000 connected bela note=None",
        ]
    );
    // The caller's voice reaches bela's phone; the music stopped.
    assert_eq!(
        x.caller_speaks(7),
        Some((Port::Rtp(joined), phone_rtp("bela")))
    );
    assert!(x.caller_heard(5001, 9000).is_empty());
    x.at_ms(9000, |s, now| s.leg_ended(now, joined));
    let o = x.outcome();
    assert_eq!(o.reason, EndReason::OperatorHangup);
    assert_eq!(o.operator.as_deref(), Some("bela"));
    let legs: Vec<_> = o
        .service
        .legs
        .iter()
        .map(|l| {
            (
                l.operator.clone().unwrap(),
                l.hold_ms,
                l.transferred_to.clone(),
            )
        })
        .collect();
    assert_eq!(
        legs,
        [
            (
                "anna".to_string(),
                3000,
                Some("operator bela (attended)".to_string())
            ),
            ("bela".to_string(), 0, None),
        ]
    );
}

#[test]
fn an_attended_transfer_to_a_call_that_is_gone_is_refused_and_anna_keeps_the_caller() {
    let mut w = World::new("500").phone("anna", Phone::AnswersAfter(1000));
    w.run_until(1000);
    let anna = w.leg_of("anna");
    let target = hotline_sip::ReferTarget {
        uri: "sip:1002@hotline".into(),
        user: Some("1002".into()),
        replaces: Some("gone;to-tag=h1;from-tag=a1".into()),
    };
    w.at_ms(3000, |s, now| s.leg_refer(now, anna, target));
    assert_eq!(w.s.replaced(w.now, Err((481, "no call gone".into()))), None);
    w.pump();
    assert_eq!(
        w.log.last().unwrap(),
        "3000 ReferReply { leg: 1, status: 481 }"
    );
    assert_eq!(w.s.connected(), Some(("anna", false)));
}

#[test]
fn a_click_to_call_holds_with_music_and_transfers_the_customer_to_bela() {
    let mut w = World::placed(PlacedStart::Operator {
        leg: World::anna_answered(),
        outbound: true,
    })
    .phone("bela", Phone::AnswersAfter(2000));
    w.acd.outbound_started(w.t0, "anna", ID, None).unwrap();
    w.run_until(0);
    // Bridged from the start: the customer's voice reaches anna's phone.
    assert_eq!(w.caller_speaks(1), Some((Port::Rtp(1), phone_rtp("anna"))));
    let hold = sdp_offer(phone_rtp("anna"), "sendonly");
    w.at_ms(2000, |s, now| s.leg_reinvite(now, 1, Some(&hold)));
    let resume = sdp_offer(phone_rtp("anna"), "sendrecv");
    w.at_ms(4000, |s, now| s.leg_reinvite(now, 1, Some(&resume)));
    let target = hotline_sip::ReferTarget {
        uri: "sip:1002@hotline".into(),
        user: Some("1002".into()),
        replaces: None,
    };
    w.at_ms(6000, |s, now| s.leg_refer(now, 1, target));
    w.at_ms(10_000, |s, now| {
        s.caller_ended(now, EndReason::CallerHangup)
    });
    assert_eq!(
        w.events(&[
            "answered",
            "connected",
            "held",
            "Refer",
            "Hangup",
            "disconnected",
            "outbound",
            "enqueue",
            "ring",
            "call ended"
        ]),
        [
            "0 answered at 1000000",
            "0 connected anna note=None",
            "2000 held anna true",
            "4000 held anna false",
            "6000 ReferReply { leg: 1, status: 202 }",
            "6000 ReferNotify { leg: 1, status: 100, last: false }",
            "6000 ReferNotify { leg: 1, status: 200, last: true }",
            "6000 Hangup { leg: 1 }",
            "6000 disconnected anna",
            "6000 outbound ended anna",
            "6000 enqueue sales first=Some(\"bela\")",
            "6000 ring bela",
            "8000 connected bela note=None",
            "10000 Hangup { leg: 2 }",
            "10000 disconnected bela",
            "10000 call ended",
        ]
    );
    // Music while anna held (2000..4000) and while bela's phone rang (6000..8000).
    assert_eq!(w.caller_heard(1, 5000).len(), 101);
    assert_eq!(w.caller_heard(6000, 8000).len(), 100);
    let o = w.outcome();
    assert_eq!(o.reason, EndReason::CallerHangup);
    assert_eq!(o.operator.as_deref(), Some("bela"));
    assert_eq!(o.service.hold_ms, 2000);
    let legs: Vec<_> = o
        .service
        .legs
        .iter()
        .map(|l| (l.operator.clone().unwrap(), l.transferred_to.clone()))
        .collect();
    assert_eq!(
        legs,
        [
            ("anna".to_string(), Some("operator bela".to_string())),
            ("bela".to_string(), None),
        ]
    );
}

#[test]
fn a_click_to_call_ends_anna_s_own_call_when_either_side_hangs_up() {
    let mut w = World::placed(PlacedStart::Operator {
        leg: World::anna_answered(),
        outbound: true,
    });
    w.acd.outbound_started(w.t0, "anna", ID, None).unwrap();
    w.at_ms(3000, |s, now| s.leg_ended(now, 1));
    assert_eq!(
        w.events(&["Hangup", "disconnected", "outbound", "call ended"]),
        [
            "3000 disconnected anna",
            "3000 Hangup { leg: 0 }",
            "3000 outbound ended anna",
        ]
    );
    assert_eq!(w.outcome().reason, EndReason::OperatorHangup);
}

fn customer_first(w: &mut World) {
    let flow = hotline_core::call_session::confirmation_flow(
        "goodbye",
        '1',
        "support",
        Duration::from_secs(120),
    );
    let since = w.t0.checked_sub(Duration::from_secs(600)).unwrap();
    *w = World::placed(PlacedStart::Flow {
        flow: Arc::new(flow),
        called: "callback".into(),
        callback_since: since,
    })
    .phone("anna", Phone::AnswersAfter(1500));
}

#[test]
fn a_customer_first_callback_queues_only_after_the_key_and_keeps_its_first_call_time() {
    let mut w = World::new("500");
    customer_first(&mut w);
    w.run_until(2000);
    // The confirmation prompt plays from 0; nobody is rung before the key.
    assert!(!w.caller_heard(0, 2000).is_empty());
    assert!(w.events(&["ring"]).is_empty());
    w.at_ms(3000, |s, now| s.caller_dtmf(now, '1'));
    w.run_until(6000);
    assert_eq!(
        w.events(&["enqueue", "ring", "connected"]),
        [
            "3000 enqueue callback support since -603s",
            "3000 ring anna",
            "4500 connected anna note=None",
        ]
    );
    w.at_ms(9000, |s, now| s.caller_ended(now, EndReason::CallerHangup));
    let o = w.outcome();
    assert_eq!(o.operator.as_deref(), Some("anna"));
    assert_eq!(o.service.queue.as_deref(), Some("support"));
}

#[test]
fn a_customer_first_callback_without_the_key_is_hung_up_and_never_queued() {
    let mut w = World::new("500");
    customer_first(&mut w);
    // Another key is not the confirmation: the prompt plays again.
    w.at_ms(1000, |s, now| s.caller_dtmf(now, '5'));
    w.run_until(120_000);
    assert!(w.events(&["enqueue", "ring"]).is_empty());
    assert_eq!(
        w.events(&["Hangup"]).len(),
        1,
        "the customer is hung up: {:?}",
        w.log
    );
    let o = w.outcome();
    assert_eq!(o.reason, EndReason::FlowHangup);
    assert_eq!(o.operator, None);
}

/// anna has the caller from 1000; at 3000 she consults bela from the console.
fn anna_consults_bela(bela: Phone) -> World {
    let mut w = World::new("500")
        .phone("anna", Phone::AnswersAfter(1000))
        .phone("bela", bela);
    w.run_until(1000);
    w.at_ms(3000, |s, now| {
        s.console_consult(
            now,
            TransferTarget::Operator("bela".into()),
            "Wants a refund".into(),
        )
    });
    w
}

#[test]
fn a_console_consultation_completes_to_bela_with_the_note() {
    let mut w = anna_consults_bela(Phone::AnswersAfter(2000));
    w.run_until(6000);
    // anna and bela hear each other; the caller hears music, and neither of them.
    let anna = w.leg_of("anna");
    let bela = w.leg_of("bela");
    let now = w.now;
    assert_eq!(
        w.s.handle_datagram(now, Port::Rtp(anna), phone_rtp("anna"), &mut rtp(10)),
        Some((Port::Rtp(bela), phone_rtp("bela")))
    );
    assert_eq!(
        w.s.handle_datagram(now, Port::Rtp(bela), phone_rtp("bela"), &mut rtp(11)),
        Some((Port::Rtp(anna), phone_rtp("anna")))
    );
    assert_eq!(w.caller_speaks(12), None);
    // bela is busy to the queues meanwhile.
    assert_eq!(
        w.acd.operator_view("bela").map(|v| v.state),
        Some(OperatorStatus::Busy)
    );
    w.at_ms(8000, |s, now| {
        assert_eq!(s.console_end_consult(now, true), Ok(()))
    });
    assert_eq!(
        w.caller_speaks(13),
        Some((Port::Rtp(bela), phone_rtp("bela")))
    );
    w.at_ms(10_000, |s, now| {
        s.caller_ended(now, EndReason::CallerHangup)
    });
    assert_eq!(
        w.events(&[
            "console",
            "held",
            "consulting",
            "place",
            "Hangup",
            "disconnected",
            "call ended",
            "outbound",
            "connected"
        ]),
        [
            "1000 connected anna note=None",
            "3000 console Ok(())",
            "3000 held anna true",
            "3000 consulting anna Ringing { with: \"bela\" }",
            "3000 place operator bela",
            "5000 consulting anna Talking { with: \"bela\" }",
            "8000 Hangup { leg: 1 }",
            "8000 disconnected anna",
            "8000 call ended",
            "8000 connected bela note=Some((\"anna\", \"Wants a refund\"))",
            "10000 Hangup { leg: 2 }",
            "10000 disconnected bela",
            "10000 outbound ended bela",
        ]
    );
    // Music from the hold at 3000 until the transfer at 8000, every 20 ms.
    assert_eq!(w.caller_heard(3000, 8001).len(), 251);
    let o = w.outcome();
    assert_eq!(o.operator.as_deref(), Some("bela"));
    assert_eq!(o.service.hold_ms, 5000);
    let legs: Vec<_> = o
        .service
        .legs
        .iter()
        .map(|l| (l.operator.clone().unwrap(), l.transferred_to.clone()))
        .collect();
    assert_eq!(
        legs,
        [
            (
                "anna".to_string(),
                Some("operator bela (consulted)".to_string())
            ),
            ("bela".to_string(), None),
        ]
    );
}

#[test]
fn a_cancelled_consultation_gives_anna_the_caller_back_and_frees_bela() {
    let mut w = anna_consults_bela(Phone::AnswersAfter(2000));
    w.run_until(6000);
    assert!(
        w.s.console_hold(w.now, false).is_err(),
        "no resume mid-consultation"
    );
    w.at_ms(7000, |s, now| {
        assert_eq!(s.console_end_consult(now, false), Ok(()))
    });
    let anna = w.leg_of("anna");
    assert_eq!(
        w.caller_speaks(20),
        Some((Port::Rtp(anna), phone_rtp("anna")))
    );
    assert_ne!(
        w.acd.operator_view("bela").map(|v| v.state),
        Some(OperatorStatus::Busy)
    );
    assert_eq!(
        w.events(&["Hangup", "outbound", "consulting anna Ended", "held"]),
        [
            "3000 held anna true",
            "7000 Hangup { leg: 2 }",
            "7000 outbound ended bela",
            "7000 consulting anna Ended { message: \"Back with the caller.\" }",
            "7000 held anna false",
        ]
    );
    assert_eq!(w.s.connected(), Some(("anna", false)));
}

#[test]
fn a_consultation_bela_refuses_ends_with_a_message_and_anna_keeps_the_caller() {
    let mut w = anna_consults_bela(Phone::Refuses(1500, 486));
    w.run_until(6000);
    assert_eq!(
        w.events(&["consulting anna Ended", "held anna false"]),
        [
            "4500 consulting anna Ended { message: \"bela did not answer (486).\" }",
            "4500 held anna false",
        ]
    );
    assert_eq!(w.s.connected(), Some(("anna", false)));
    assert!(w.s.console_end_consult(w.now, true).is_err());
}

#[test]
fn a_consultation_with_a_queue_reaches_its_free_member() {
    let mut w = World::new("500")
        .phone("anna", Phone::AnswersAfter(1000))
        .phone("bela", Phone::AnswersAfter(500));
    w.run_until(1000);
    w.at_ms(2000, |s, now| {
        s.console_consult(now, TransferTarget::Queue("sales".into()), String::new())
    });
    w.run_until(3000);
    assert_eq!(
        w.events(&["place", "consulting"]),
        [
            "2000 consulting anna Ringing { with: \"bela\" }",
            "2000 place operator bela",
            "2500 consulting anna Talking { with: \"bela\" }",
        ]
    );
}

#[test]
fn a_caller_whose_transfer_fails_goes_back_to_their_queue() {
    let mut w = World::new("500")
        .phone("anna", Phone::AnswersAfter(1000))
        .phone("+36 1 555 0100", Phone::Refuses(3000, 486))
        .phone("bela", Phone::AnswersAfter(1000));
    w.run_until(1000);
    w.at_ms(2000, |s, now| {
        s.console_transfer(
            now,
            TransferTarget::External("+36 1 555 0100".into()),
            String::new(),
        )
    });
    w.run_until(8000);
    assert_eq!(
        w.events(&["dial", "enqueue", "ring", "connected"]),
        [
            "0 enqueue support first=None",
            "0 ring anna",
            "1000 connected anna note=None",
            "2000 dial +36 1 555 0100",
            "5000 enqueue support transferred",
            "5000 ring bela",
            "6000 connected bela note=None",
        ]
    );
    // Music from the transfer until bela answered.
    assert_eq!(w.caller_heard(2000, 6000).len(), 200);
}

#[test]
fn a_caller_transferred_to_a_queue_that_turns_them_away_goes_back_to_their_own() {
    let mut w = World::new("500").phone("anna", Phone::AnswersAfter(1000));
    w.run_until(1000);
    // Nobody in sales (bela) is online, and sales refuses callers then.
    w.acd.set_state(w.now, "bela", OperatorState::Offline);
    let mut q = QueueConfig::new("sales").with_member("bela", 1);
    q.refuse_when_nobody = true;
    w.acd.set_queue(w.now, q);
    w.at_ms(2000, |s, now| {
        s.console_transfer(now, TransferTarget::Queue("sales".into()), String::new())
    });
    w.run_until(3000);
    assert_eq!(
        w.events(&["enqueue", "unavailable"]),
        [
            "0 enqueue support first=None",
            "2000 enqueue sales transferred",
            "2000 unavailable",
            "2000 enqueue support transferred",
        ]
    );
    assert!(w.s.ended().is_none(), "the caller waits in support again");
}

#[test]
fn a_consulted_operator_who_never_answered_is_free_at_once_without_wrap_up() {
    let mut w = anna_consults_bela(Phone::Ignores);
    w.at_ms(5000, |s, now| {
        assert_eq!(s.console_end_consult(now, false), Ok(()))
    });
    assert_eq!(w.events(&["outbound"]), ["5000 outbound cancelled bela"]);
    assert_eq!(
        w.acd.operator_view("bela").map(|v| v.state),
        Some(OperatorStatus::Online)
    );
}

#[test]
fn the_screen_pop_tells_the_flow_path_digits_variables_wait_queue_and_skill() {
    let mut w = World::new("800");
    let before = w.s.caller_so_far(w.now);
    assert_eq!(before.flow.as_deref(), Some("menu"));
    assert_eq!(before.queue, None);
    assert_eq!(before.wait_ms, None);
    w.at_ms(500, |s, now| s.caller_dtmf(now, '2'));
    w.run_until(2500);
    let so_far = w.s.caller_so_far(w.now);
    assert_eq!(so_far.flow.as_deref(), Some("menu"));
    assert_eq!(so_far.path, ["mark", "choose", "wait"]);
    assert_eq!(so_far.digits, "2");
    assert_eq!(so_far.variables.get("lang").map(String::as_str), Some("en"));
    assert_eq!(
        so_far.variables.get("tags").map(String::as_str),
        Some("vip")
    );
    assert!(so_far.vip, "the flow tagged the caller vip");
    assert_eq!(so_far.queue.as_deref(), Some("support"));
    assert_eq!(so_far.skill.as_deref(), Some("english"));
    // Queued at the key (500 ms): the wait grows while they wait.
    assert_eq!(so_far.wait_ms, Some(2000));
    w.at_ms(3000, |s, now| s.caller_ended(now, EndReason::CallerHangup));
    // What the record gets is what the screen pop showed.
    let last = w.s.caller_so_far(w.now);
    let o = w.outcome();
    assert_eq!(o.path, last.path);
    assert_eq!(o.digits, last.digits);
    assert_eq!(o.variables, serde_json::to_string(&last.variables).unwrap());
}

#[test]
fn the_ringing_operator_is_known_until_the_answer_and_the_wait_then_stays() {
    let mut w = World::new("500").phone("anna", Phone::AnswersAfter(3000));
    assert_eq!(w.s.ringing_operator(), None);
    w.run_until(1000);
    assert_eq!(w.s.ringing_operator(), Some("anna"));
    let ringing = w.s.caller_so_far(w.now);
    assert_eq!(ringing.wait_ms, Some(1000));
    assert_eq!(ringing.queue.as_deref(), Some("support"));
    assert_eq!(ringing.skill, None);
    assert!(!ringing.vip);
    assert_eq!(ringing.path, ["go"]);
    w.run_until(5000);
    assert_eq!(w.s.ringing_operator(), None);
    assert_eq!(w.s.connected(), Some(("anna", false)));
    // Answered at 3000: the wait is the one until the answer.
    assert_eq!(w.s.caller_so_far(w.now).wait_ms, Some(3000));
}

#[test]
fn a_cancelled_ring_is_no_longer_ringing() {
    let mut w = World::new("500").phone("anna", Phone::Ignores);
    w.run_until(1000);
    assert_eq!(w.s.ringing_operator(), Some("anna"));
    w.at_ms(2000, |s, now| s.cancel_ring(now));
    assert_eq!(w.s.ringing_operator(), None);
}

// ---- a supervisor on the call (issue 18) --------------------------------------------------

/// A PCMA packet of 20 ms whose every sample is `level`, from `ssrc`.
fn tone(ssrc: u32, seq: u16, level: i16) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend(seq.to_be_bytes());
    p.extend((u32::from(seq) * 160).to_be_bytes());
    p.extend(ssrc.to_be_bytes());
    p.extend([hotline_media::g711::linear_to_alaw(level); 160]);
    p
}

/// What a party's mix carries: the linear value of its packets' middle sample, from
/// the packets sent to `leg` in [from, to) ms.
fn levels_to(w: &World, leg: LegId, from: u64, to: u64) -> Vec<i16> {
    w.mixed
        .iter()
        .filter(|(ms, l, _, _)| *l == leg && (from..to).contains(ms))
        .map(|(_, _, _, p)| hotline_media::g711::alaw_to_linear(p[12 + 80]))
        .collect()
}

/// Caller, anna and sara each send a steady level every 20 ms from `from` to `to` ms.
fn everyone_speaks(w: &mut World, from: u64, to: u64) {
    let (anna, sara) = (w.leg_of("anna"), w.leg_of("sara"));
    for t in (from..to).step_by(20) {
        w.run_until(t);
        let seq = u16::try_from(t / 20).unwrap();
        let now = w.now;
        let sends = [
            (CALLER, addr(CALLER_RTP), 0xC, 1000),
            (anna, phone_rtp("anna"), 0xA, 2000),
            (sara, phone_rtp("sara"), 0x5, 4000),
        ];
        for (leg, from, ssrc, level) in sends {
            let out =
                w.s.handle_datagram(now, Port::Rtp(leg), from, &mut tone(ssrc, seq, level));
            assert_eq!(out, None, "mixed, not forwarded");
        }
    }
    w.run_until(to);
}

/// The one value heard in a window (the mix is steady once everyone speaks).
fn steady(levels: &[i16]) -> i16 {
    let tail = &levels[levels.len() / 2..];
    assert!(!tail.is_empty(), "nothing was sent");
    assert!(tail.iter().all(|l| *l == tail[0]), "{tail:?}");
    tail[0]
}

/// A-law's nearest value to `level` (what a steady tone comes out as).
fn alaw(level: i16) -> i16 {
    use hotline_media::g711::{alaw_to_linear, linear_to_alaw};
    alaw_to_linear(linear_to_alaw(level))
}

/// sara joins the call in `mode` at `ms`, or switches to it if she is on it.
fn sara_switches(w: &mut World, ms: u64, mode: hotline_core::call_session::MonitorMode) {
    use hotline_core::call_session::MonitorRequest;
    w.at_ms(ms, |s, now| {
        assert_eq!(
            s.monitor(now, "sara", MonitorRequest::Mode { mode, beep: false }),
            Ok(())
        )
    });
}

#[test]
fn a_supervisor_listens_whispers_barges_and_takes_over_without_redialling() {
    use hotline_core::call_session::{MonitorMode, MonitorRequest};
    let mut w = World::new("500")
        .phone("anna", Phone::AnswersAfter(1000))
        .phone("sara", Phone::AnswersAfter(500));
    w.run_until(1000);
    let anna = w.leg_of("anna");
    w.at_ms(2000, |s, now| {
        assert_eq!(
            s.monitor(
                now,
                "sara",
                MonitorRequest::Mode {
                    mode: MonitorMode::Listen,
                    beep: true
                }
            ),
            Ok(())
        );
        // Somebody else can't join, and nobody can while sara's phone rings for it.
        assert_eq!(
            s.monitor(
                now,
                "bela",
                MonitorRequest::Mode {
                    mode: MonitorMode::Listen,
                    beep: false
                }
            ),
            Err("sara is already on this call.".into())
        );
        assert_eq!(
            s.monitor(now, "sara", MonitorRequest::TakeOver),
            Err("Your phone has not answered yet.".into())
        );
    });
    assert!(
        w.s.lend_media().is_none(),
        "a monitored call keeps its media"
    );
    let sara = w.leg_of("sara");
    // sara is busy to the queues while she listens.
    assert_eq!(
        w.acd.operator_view("sara").map(|v| v.state),
        Some(OperatorStatus::Busy)
    );

    // Listen: sara hears caller and anna summed; they hear each other only.
    everyone_speaks(&mut w, 2500, 3500);
    let both = alaw(alaw(1000) + alaw(2000));
    assert_eq!(steady(&levels_to(&w, sara, 2500, 3500)), both);
    assert_eq!(steady(&levels_to(&w, anna, 2500, 3500)), alaw(1000));
    // The queue's beep told anna first: the mix's first 150 ms carry more than the caller.
    let first = levels_to(&w, anna, 2500, 2660);
    assert!(first.iter().any(|l| *l != alaw(1000)), "{first:?}");
    assert!(
        levels_to(&w, anna, 2700, 3500)
            .iter()
            .all(|l| *l == alaw(1000))
    );
    assert_eq!(steady(&levels_to(&w, CALLER, 2500, 3500)), alaw(2000));
    // Every party gets a packet every 20 ms from the first audio on, at its address.
    let to_sara: Vec<_> = w.mixed.iter().filter(|m| m.1 == sara).collect();
    assert!(to_sara.iter().all(|m| m.2 == phone_rtp("sara")));
    assert!(
        to_sara.windows(2).all(|p| p[1].0 - p[0].0 == 20),
        "20 ms pacing"
    );
    // Ticks at 2500, 2520 … 3500 (the first audio starts the clock).
    assert_eq!(to_sara.first().map(|m| m.0), Some(2500));
    assert_eq!(to_sara.len(), 51);

    // Whisper: anna hears sara too, the caller still doesn't.
    sara_switches(&mut w, 3500, MonitorMode::Whisper);
    everyone_speaks(&mut w, 3500, 4500);
    assert_eq!(
        steady(&levels_to(&w, anna, 3500, 4500)),
        alaw(alaw(1000) + alaw(4000))
    );
    assert_eq!(steady(&levels_to(&w, CALLER, 3500, 4500)), alaw(2000));
    assert_eq!(steady(&levels_to(&w, sara, 3500, 4500)), both);

    // Barge: everyone hears the other two.
    sara_switches(&mut w, 4500, MonitorMode::Barge);
    everyone_speaks(&mut w, 4500, 5500);
    assert_eq!(
        steady(&levels_to(&w, CALLER, 4500, 5500)),
        alaw(alaw(2000) + alaw(4000))
    );

    // Take over: anna's leg drops (wrap-up), the caller is bridged with sara.
    w.at_ms(6000, |s, now| {
        assert_eq!(s.monitor(now, "sara", MonitorRequest::TakeOver), Ok(()))
    });
    assert_eq!(w.s.monitored(), None);
    assert_eq!(
        w.caller_speaks(900),
        Some((Port::Rtp(sara), phone_rtp("sara")))
    );
    w.at_ms(9000, |s, now| s.caller_ended(now, EndReason::CallerHangup));
    assert_eq!(
        w.events(&[
            "monitor",
            "place",
            "Hangup",
            "disconnected",
            "call ended",
            "outbound",
            "connected"
        ]),
        [
            "1000 connected anna note=None",
            "2000 monitor sara on anna: Ringing(Listen)",
            "2000 place operator sara (auto answer)",
            "2500 monitor sara on anna: Active(Listen)",
            "3500 monitor sara on anna: Active(Whisper)",
            "4500 monitor sara on anna: Active(Barge)",
            "6000 monitor sara on anna: TookOver",
            "6000 Hangup { leg: 1 }",
            "6000 disconnected anna",
            "6000 call ended",
            "6000 connected sara note=None",
            "9000 Hangup { leg: 2 }",
            "9000 disconnected sara",
            "9000 outbound ended sara",
        ]
    );
    let o = w.outcome();
    assert_eq!(o.operator.as_deref(), Some("sara"));
    let legs: Vec<_> = o
        .service
        .legs
        .iter()
        .map(|l| {
            (
                l.operator.clone().unwrap(),
                l.transferred_to.clone(),
                l.answered_at_ms,
            )
        })
        .collect();
    assert_eq!(
        legs,
        [
            (
                "anna".to_string(),
                Some("supervisor sara (took over)".to_string()),
                Some(1_001_000)
            ),
            ("sara".to_string(), None, Some(1_002_500)),
        ]
    );
}

#[test]
fn a_supervisor_who_stops_or_hangs_up_leaves_caller_and_operator_bridged() {
    use hotline_core::call_session::{MonitorMode, MonitorRequest};
    let mut w = World::new("500")
        .phone("anna", Phone::AnswersAfter(1000))
        .phone("sara", Phone::AnswersAfter(500));
    w.run_until(1000);
    let anna = w.leg_of("anna");
    sara_switches(&mut w, 2000, MonitorMode::Barge);
    everyone_speaks(&mut w, 2500, 3000);
    w.at_ms(3000, |s, now| {
        s.monitor(now, "sara", MonitorRequest::Stop).unwrap()
    });
    // Plainly bridged again: the caller's packets go to anna as they came, no wrap-up
    // for sara, and the media may go to a relay thread again.
    assert_eq!(
        w.caller_speaks(300),
        Some((Port::Rtp(anna), phone_rtp("anna")))
    );
    assert_eq!(
        w.acd.operator_view("sara").map(|v| v.state),
        Some(OperatorStatus::Online)
    );
    let (_, relay) = w.s.lend_media().expect("bridged again");
    w.s.return_media(relay);
    // Again, and this time sara hangs up her phone; then anna holds with nobody on.
    sara_switches(&mut w, 4000, MonitorMode::Listen);
    w.run_until(4500);
    let sara = w.leg_of("sara");
    w.at_ms(5000, |s, now| s.leg_ended(now, sara));
    assert_eq!(w.s.monitored(), None);
    // A monitor is refused while the operator holds the caller, and ends when they do.
    sara_switches(&mut w, 6000, MonitorMode::Listen);
    w.run_until(6500);
    w.at_ms(7000, |s, now| s.console_hold(now, true).unwrap());
    assert_eq!(w.s.monitored(), None);
    w.at_ms(7500, |s, now| {
        assert_eq!(
            s.monitor(
                now,
                "sara",
                MonitorRequest::Mode {
                    mode: MonitorMode::Listen,
                    beep: false
                }
            ),
            Err("The operator holds the caller now.".into())
        )
    });
    assert_eq!(
        w.events(&["monitor", "Hangup", "outbound"]),
        [
            "2000 monitor sara on anna: Ringing(Barge)",
            "2500 monitor sara on anna: Active(Barge)",
            "3000 Hangup { leg: 2 }",
            "3000 outbound cancelled sara",
            "3000 monitor sara on anna: Ended(\"Stopped.\")",
            "4000 monitor sara on anna: Ringing(Listen)",
            "4500 monitor sara on anna: Active(Listen)",
            "5000 outbound cancelled sara",
            "5000 monitor sara on anna: Ended(\"You hung up.\")",
            "6000 monitor sara on anna: Ringing(Listen)",
            "6500 monitor sara on anna: Active(Listen)",
            "7000 Hangup { leg: 4 }",
            "7000 outbound cancelled sara",
            "7000 monitor sara on anna: Ended(\"The operator put the caller on hold.\")",
        ]
    );
    // The record has anna's leg only.
    w.at_ms(8000, |s, now| s.caller_ended(now, EndReason::CallerHangup));
    let o = w.outcome();
    assert_eq!(o.service.legs.len(), 1);
}

// ---- recording (issue 18, S2) -----------------------------------------------------------

/// The caller (level 1000) and anna (level 2000) each send a steady A-law tone every
/// 20 ms in [from, to) ms, relayed to each other.
fn caller_and_anna_speak(w: &mut World, from: u64, to: u64) {
    let anna = w.leg_of("anna");
    for t in (from..to).step_by(20) {
        w.run_until(t);
        let seq = u16::try_from(t / 20).unwrap();
        let now = w.now;
        let caller = w.s.handle_datagram(
            now,
            Port::Rtp(CALLER),
            addr(CALLER_RTP),
            &mut tone(0xC, seq, 1000),
        );
        let back = w.s.handle_datagram(
            now,
            Port::Rtp(anna),
            phone_rtp("anna"),
            &mut tone(0xA, seq, 2000),
        );
        // Recording taps the bridge; the packets still pass (not while held).
        if w.s.connected().is_some_and(|(_, held)| !held) {
            assert_eq!(caller, Some((Port::Rtp(anna), phone_rtp("anna"))));
            assert_eq!(back, Some((Port::Rtp(CALLER), addr(CALLER_RTP))));
        }
        w.pump();
    }
    w.run_until(to);
}

#[test]
fn a_recorded_call_has_both_voices_on_one_timeline_with_its_marks() {
    let mut w = World::new("500").phone("anna", Phone::AnswersAfter(1000));
    w.at_ms(1000, |s, now| {
        assert_eq!(s.start_recording(now, false, Some("anna".into())), Ok(()));
        // Every packet must pass the tap: the media is not lent to a relay thread.
        assert!(s.lend_media().is_none());
    });
    caller_and_anna_speak(&mut w, 1000, 2000);
    w.at_ms(2000, |s, now| assert_eq!(s.console_hold(now, true), Ok(())));
    caller_and_anna_speak(&mut w, 2000, 2500);
    w.at_ms(2500, |s, now| {
        assert_eq!(s.console_hold(now, false), Ok(()))
    });
    caller_and_anna_speak(&mut w, 2500, 3000);
    w.at_ms(3000, |s, now| s.caller_ended(now, EndReason::CallerHangup));
    assert_eq!(
        w.events(&["recording", "mark"]),
        [
            "1000 recording started by=Some(\"anna\") stereo=false",
            "1000 mark 0 talking with anna",
            "2000 mark 1000 on hold (anna)",
            "2500 mark 1500 off hold (anna)",
            "3000 mark 2000 call ended (caller_hangup)",
            "3000 recording stopped by=None after 2000 ms",
        ]
    );
    // 2 s at 8 kHz, every sample the two voices summed.
    assert_eq!(w.recorded.len(), 16_000);
    let both = alaw(1000) + alaw(2000);
    assert!(
        w.recorded.iter().all(|&s| s == both),
        "{:?}",
        &w.recorded[..10]
    );
}

#[test]
fn a_stereo_recording_keeps_the_caller_left_and_the_operator_right() {
    let mut w = World::new("500").phone("anna", Phone::AnswersAfter(1000));
    w.at_ms(1000, |s, now| {
        assert_eq!(s.start_recording(now, true, None), Ok(()))
    });
    caller_and_anna_speak(&mut w, 1000, 1200);
    w.at_ms(1200, |s, now| {
        assert_eq!(s.stop_recording(now, Some("sara".into())), Ok(()))
    });
    assert_eq!(
        w.events(&["recording"]),
        [
            "1000 recording started by=None stereo=true",
            "1200 recording stopped by=Some(\"sara\") after 200 ms",
        ]
    );
    assert_eq!(w.recorded.len(), 2 * 1600);
    assert!(w.recorded.chunks(2).all(|f| f == [alaw(1000), alaw(2000)]));
    // Stopped, the call is plainly bridged again and may be lent.
    assert!(w.s.lend_media().is_some());
}

#[test]
fn recording_is_refused_before_the_answer_and_twice() {
    let mut w = World::new("500").phone("anna", Phone::AnswersAfter(1000));
    w.at_ms(500, |s, now| {
        assert_eq!(
            s.start_recording(now, false, None),
            Err("Nobody is talking with the caller.".into())
        );
        assert_eq!(
            s.stop_recording(now, None),
            Err("The call is not being recorded.".into())
        );
    });
    w.at_ms(1000, |s, now| {
        assert_eq!(s.start_recording(now, false, None), Ok(()));
        assert_eq!(
            s.start_recording(now, false, None),
            Err("The call is already being recorded.".into())
        );
    });
}
