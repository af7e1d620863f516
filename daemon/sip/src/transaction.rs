//! RFC 3261 §17 transaction state machines, sans-IO.
//!
//! Each machine is fed messages and `now`, returns what to put on the wire,
//! and reports its next deadline. INVITE machines include the "Accepted"
//! state of RFC 6026, which absorbs retransmissions around a 2xx while the
//! transaction user retransmits the 2xx (server) or ACKs it (client).
//!
//! Over a reliable transport nothing is retransmitted and the absorbing
//! timers D, I, J and K are zero: the machine terminates at once.

use std::time::{Duration, Instant};

use crate::Peer;
use crate::msg::{Essentials, Method, Request, Response};

/// RFC 3261 magic cookie: a branch starting with it is unique (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Branch values this endpoint generates.
pub fn new_branch() -> String {
    format!("{MAGIC_COOKIE}{:016x}", rand::random::<u64>())
}

/// An RFC 3261 branch: the cookie and something after it. A bare cookie
/// (RFC 4475 badbranch) identifies nothing.
pub fn is_rfc3261_branch(branch: &str) -> bool {
    branch.len() > MAGIC_COOKIE.len() && branch.starts_with(MAGIC_COOKIE)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// Timers B, F, H, J (unreliable), L and M.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }
}

/// Timer D on an unreliable transport (§17.1.1.2).
const TIMER_D: Duration = Duration::from_secs(32);

/// What a message is, for the endpoint's statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Request(Method),
    Response(u16),
}

/// A message for the wire; transactions keep one to retransmit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub to: Peer,
    pub data: Vec<u8>,
    pub kind: Kind,
}

impl Outgoing {
    fn status(&self) -> Option<u16> {
        match self.kind {
            Kind::Response(s) => Some(s),
            Kind::Request(_) => None,
        }
    }
}

/// Retransmission interval starting at T1 and doubling, up to `cap` if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub next: Instant,
    interval: Duration,
    cap: Option<Duration>,
}

impl Backoff {
    pub fn start(now: Instant, first: Duration, cap: Option<Duration>) -> Self {
        Backoff {
            next: now + first,
            interval: first,
            cap,
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// After a retransmission at `now`: double the interval and reschedule.
    pub fn step(&mut self, now: Instant) {
        let doubled = self.interval * 2;
        self.interval = self.cap.map_or(doubled, |cap| doubled.min(cap));
        self.next = now + self.interval;
    }

    /// Reschedules with a fixed interval (Timer E in Proceeding: T2).
    fn step_fixed(&mut self, now: Instant, interval: Duration) {
        self.interval = interval;
        self.next = now + interval;
    }
}

/// What a timer firing produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fired {
    pub send: Option<Outgoing>,
    /// Timer B, F or H: the other side never answered / never ACKed.
    pub timed_out: bool,
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `now + d`, or `None` (terminate now) for the zero timers of reliable transports.
fn after(now: Instant, reliable: bool, d: Duration) -> Option<Instant> {
    (!reliable).then_some(now + d)
}

// ---------------------------------------------------------------- matching

/// Which server transaction a request belongs to (§17.2.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServerKey {
    /// RFC 3261: branch, sent-by, and method with ACK folded into INVITE.
    Branch {
        branch: String,
        sent_by: String,
        method: Method,
    },
    /// RFC 2543 peers (no magic cookie). The To tag is compared apart,
    /// because the ACK to a non-2xx carries the tag we added.
    Legacy {
        request_uri: String,
        from_tag: Option<String>,
        call_id: String,
        cseq: u32,
        top_via: String,
        method: Method,
    },
}

impl ServerKey {
    pub fn for_request(req: &Request, e: &Essentials) -> Option<ServerKey> {
        let via = e.top_via()?;
        let method = match req.method {
            Method::Ack => Method::Invite,
            ref m => m.clone(),
        };
        Some(match via.branch() {
            Some(branch) if is_rfc3261_branch(branch) => ServerKey::Branch {
                branch: branch.to_string(),
                sent_by: via.sent_by(),
                method,
            },
            _ => ServerKey::Legacy {
                request_uri: req.uri.to_string(),
                from_tag: e.from.tag().map(str::to_string),
                call_id: e.call_id.clone(),
                cseq: e.cseq.seq,
                top_via: via.to_string(),
                method,
            },
        })
    }

    /// The same request seen as another method: a CANCEL's INVITE (§9.2).
    pub fn with_method(&self, method: Method) -> ServerKey {
        let mut key = self.clone();
        match &mut key {
            ServerKey::Branch { method: m, .. } | ServerKey::Legacy { method: m, .. } => {
                *m = method
            }
        }
        key
    }

    pub fn is_legacy(&self) -> bool {
        matches!(self, ServerKey::Legacy { .. })
    }
}

/// Which client transaction a response belongs to (§17.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey {
    pub branch: String,
    pub method: Method,
}

impl ClientKey {
    pub fn for_response(e: &Essentials) -> Option<ClientKey> {
        Some(ClientKey {
            branch: e.top_via()?.branch()?.to_string(),
            method: e.cseq.method.clone(),
        })
    }
}

// ----------------------------------------------------- server INVITE §17.2.1

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerInviteState {
    Proceeding,
    Completed,
    Confirmed,
    /// RFC 6026: a 2xx was sent; its retransmission is the TU's job.
    Accepted,
    Terminated,
}

/// What an ACK matching a server INVITE transaction means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckMatch {
    /// The ACK to our non-2xx: the transaction keeps it.
    Absorbed,
    /// The ACK to a 2xx (RFC 2543 peers reuse the INVITE's Via): for the TU.
    ForTu,
}

#[derive(Debug)]
pub struct ServerInvite {
    state: ServerInviteState,
    reliable: bool,
    timers: Timers,
    last: Option<Outgoing>,
    /// Timer G.
    retransmit: Option<Backoff>,
    /// Timer H (Completed), I (Confirmed) or L (Accepted).
    deadline: Option<Instant>,
}

impl ServerInvite {
    pub fn new(reliable: bool, timers: Timers) -> Self {
        ServerInvite {
            state: ServerInviteState::Proceeding,
            reliable,
            timers,
            last: None,
            retransmit: None,
            deadline: None,
        }
    }

    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// A response from the TU. Returns it for the wire, or `None` when the
    /// transaction has already sent a final response.
    pub fn respond(&mut self, now: Instant, out: Outgoing) -> Option<Outgoing> {
        let status = out.status()?;
        if self.state != ServerInviteState::Proceeding {
            return None;
        }
        match status {
            100..=199 => self.last = Some(out.clone()),
            200..=299 => {
                self.state = ServerInviteState::Accepted;
                self.deadline = Some(now + self.timers.t1x64());
                self.last = None;
            }
            _ => {
                self.state = ServerInviteState::Completed;
                self.retransmit = (!self.reliable)
                    .then(|| Backoff::start(now, self.timers.t1, Some(self.timers.t2)));
                self.deadline = Some(now + self.timers.t1x64());
                self.last = Some(out.clone());
            }
        }
        Some(out)
    }

    /// The INVITE came again: resend the last provisional or final response.
    pub fn on_retransmission(&self) -> Option<Outgoing> {
        match self.state {
            ServerInviteState::Proceeding | ServerInviteState::Completed => self.last.clone(),
            _ => None,
        }
    }

    pub fn on_ack(&mut self, now: Instant) -> AckMatch {
        match self.state {
            ServerInviteState::Completed => {
                self.retransmit = None;
                match after(now, self.reliable, self.timers.t4) {
                    Some(i) => {
                        self.state = ServerInviteState::Confirmed;
                        self.deadline = Some(i);
                    }
                    None => self.terminate(),
                }
                AckMatch::Absorbed
            }
            ServerInviteState::Accepted => AckMatch::ForTu,
            _ => AckMatch::Absorbed,
        }
    }

    pub fn on_timer(&mut self, now: Instant) -> Fired {
        let mut fired = Fired::default();
        if self.deadline.is_some_and(|d| now >= d) {
            fired.timed_out = self.state == ServerInviteState::Completed;
            self.terminate();
            return fired;
        }
        if let Some(g) = self.retransmit.as_mut().filter(|g| g.due(now)) {
            g.step(now);
            fired.send = self.last.clone();
        }
        fired
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(self.retransmit.map(|g| g.next), self.deadline)
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerInviteState::Terminated
    }

    fn terminate(&mut self) {
        self.state = ServerInviteState::Terminated;
        self.retransmit = None;
        self.deadline = None;
    }
}

// ------------------------------------------------- server non-INVITE §17.2.2

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct ServerNonInvite {
    state: ServerNonInviteState,
    reliable: bool,
    timers: Timers,
    last: Option<Outgoing>,
    /// Timer J.
    deadline: Option<Instant>,
}

impl ServerNonInvite {
    pub fn new(reliable: bool, timers: Timers) -> Self {
        ServerNonInvite {
            state: ServerNonInviteState::Trying,
            reliable,
            timers,
            last: None,
            deadline: None,
        }
    }

    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    pub fn respond(&mut self, now: Instant, out: Outgoing) -> Option<Outgoing> {
        let status = out.status()?;
        if !matches!(
            self.state,
            ServerNonInviteState::Trying | ServerNonInviteState::Proceeding
        ) {
            return None;
        }
        if status < 200 {
            self.state = ServerNonInviteState::Proceeding;
        } else {
            match after(now, self.reliable, self.timers.t1x64()) {
                Some(j) => {
                    self.state = ServerNonInviteState::Completed;
                    self.deadline = Some(j);
                }
                None => self.state = ServerNonInviteState::Terminated,
            }
        }
        self.last = Some(out.clone());
        Some(out)
    }

    pub fn on_retransmission(&self) -> Option<Outgoing> {
        match self.state {
            ServerNonInviteState::Proceeding | ServerNonInviteState::Completed => self.last.clone(),
            _ => None,
        }
    }

    pub fn on_timer(&mut self, now: Instant) -> Fired {
        if self.deadline.is_some_and(|d| now >= d) {
            self.state = ServerNonInviteState::Terminated;
            self.deadline = None;
        }
        Fired::default()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerNonInviteState::Terminated
    }
}

// ----------------------------------------------------- client INVITE §17.1.1

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientInviteState {
    Calling,
    Proceeding,
    Completed,
    /// RFC 6026: a 2xx arrived; retransmitted 2xx still go to the TU.
    Accepted,
    Terminated,
}

/// What a response to a client transaction means.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ClientOutcome {
    /// The response is news for the TU (not a retransmission).
    pub for_tu: bool,
    /// The ACK to a non-2xx.
    pub send: Option<Outgoing>,
}

#[derive(Debug)]
pub struct ClientInvite {
    state: ClientInviteState,
    reliable: bool,
    timers: Timers,
    request: Request,
    sent: Outgoing,
    ack: Option<Outgoing>,
    /// Timer A.
    retransmit: Option<Backoff>,
    /// Timer B (Calling), D (Completed) or M (Accepted).
    deadline: Option<Instant>,
}

impl ClientInvite {
    /// Starts the transaction; returns it and the INVITE to send.
    pub fn start(now: Instant, request: Request, to: Peer, timers: Timers) -> (Self, Outgoing) {
        let reliable = to.transport.is_reliable();
        let sent = Outgoing {
            to,
            data: request.to_bytes(),
            kind: Kind::Request(request.method.clone()),
        };
        let tx = ClientInvite {
            state: ClientInviteState::Calling,
            reliable,
            timers,
            request,
            sent: sent.clone(),
            ack: None,
            // Timer A doubles without a cap (§17.1.1.2).
            retransmit: (!reliable).then(|| Backoff::start(now, timers.t1, None)),
            deadline: Some(now + timers.t1x64()),
        };
        (tx, sent)
    }

    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    pub fn on_response(&mut self, now: Instant, resp: &Response) -> ClientOutcome {
        use ClientInviteState::*;
        let mut out = ClientOutcome::default();
        match (self.state, resp.status) {
            (Calling | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.retransmit = None;
                self.deadline = None;
                out.for_tu = true;
            }
            (Calling | Proceeding, 200..=299) => {
                self.state = Accepted;
                self.retransmit = None;
                self.deadline = Some(now + self.timers.t1x64());
                out.for_tu = true;
            }
            (Calling | Proceeding, _) => {
                self.retransmit = None;
                let ack = self.ack_for(resp);
                self.ack = Some(ack.clone());
                out.send = Some(ack);
                out.for_tu = true;
                match after(now, self.reliable, TIMER_D) {
                    Some(d) => {
                        self.state = Completed;
                        self.deadline = Some(d);
                    }
                    None => self.terminate(),
                }
            }
            (Completed, 300..) => out.send = self.ack.clone(),
            (Accepted, 200..=299) => out.for_tu = true,
            _ => {}
        }
        out
    }

    /// The ACK to a non-2xx (§17.1.1.3): same Request-URI, top Via, From,
    /// Call-ID, CSeq number and Route as the INVITE; To from the response.
    fn ack_for(&self, resp: &Response) -> Outgoing {
        let mut ack = Request::new(Method::Ack, self.request.uri.clone());
        let req = &self.request.headers;
        if let Some(via) = req.via().ok().and_then(|v| v.into_iter().next()) {
            ack.headers.push("Via", via.to_string());
        }
        for name in ["Max-Forwards", "Route", "From"] {
            for v in req.get_all(name) {
                ack.headers.push(name, v);
            }
        }
        if let Some(to) = resp.headers.get("To") {
            ack.headers.push("To", to);
        }
        if let Some(id) = req.get("Call-ID") {
            ack.headers.push("Call-ID", id);
        }
        if let Ok(cseq) = req.cseq() {
            ack.headers.push("CSeq", format!("{} ACK", cseq.seq));
        }
        Outgoing {
            to: self.sent.to,
            data: ack.to_bytes(),
            kind: Kind::Request(Method::Ack),
        }
    }

    pub fn on_timer(&mut self, now: Instant) -> Fired {
        let mut fired = Fired::default();
        if self.deadline.is_some_and(|d| now >= d) {
            fired.timed_out = self.state == ClientInviteState::Calling;
            self.terminate();
            return fired;
        }
        if let Some(a) = self.retransmit.as_mut().filter(|a| a.due(now)) {
            a.step(now);
            fired.send = Some(self.sent.clone());
        }
        fired
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(self.retransmit.map(|a| a.next), self.deadline)
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientInviteState::Terminated
    }

    fn terminate(&mut self) {
        self.state = ClientInviteState::Terminated;
        self.retransmit = None;
        self.deadline = None;
    }
}

// ------------------------------------------------- client non-INVITE §17.1.2

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct ClientNonInvite {
    state: ClientNonInviteState,
    reliable: bool,
    timers: Timers,
    sent: Outgoing,
    /// Timer E.
    retransmit: Option<Backoff>,
    /// Timer F (Trying, Proceeding) or K (Completed).
    deadline: Option<Instant>,
}

impl ClientNonInvite {
    pub fn start(now: Instant, sent: Outgoing, timers: Timers) -> (Self, Outgoing) {
        let reliable = sent.to.transport.is_reliable();
        let tx = ClientNonInvite {
            state: ClientNonInviteState::Trying,
            reliable,
            timers,
            sent: sent.clone(),
            retransmit: (!reliable).then(|| Backoff::start(now, timers.t1, Some(timers.t2))),
            deadline: Some(now + timers.t1x64()),
        };
        (tx, sent)
    }

    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    /// Returns whether the response is news for the TU.
    pub fn on_response(&mut self, now: Instant, status: u16) -> bool {
        use ClientNonInviteState::*;
        match (self.state, status) {
            (Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                true
            }
            (Trying | Proceeding, _) => {
                self.retransmit = None;
                match after(now, self.reliable, self.timers.t4) {
                    Some(k) => {
                        self.state = Completed;
                        self.deadline = Some(k);
                    }
                    None => self.terminate(),
                }
                true
            }
            _ => false,
        }
    }

    pub fn on_timer(&mut self, now: Instant) -> Fired {
        let mut fired = Fired::default();
        if self.deadline.is_some_and(|d| now >= d) {
            fired.timed_out = self.state != ClientNonInviteState::Completed;
            self.terminate();
            return fired;
        }
        if let Some(e) = self.retransmit.as_mut().filter(|e| e.due(now)) {
            match self.state {
                ClientNonInviteState::Proceeding => e.step_fixed(now, self.timers.t2),
                _ => e.step(now),
            }
            fired.send = Some(self.sent.clone());
        }
        fired
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(self.retransmit.map(|e| e.next), self.deadline)
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientNonInviteState::Terminated
    }

    fn terminate(&mut self) {
        self.state = ClientNonInviteState::Terminated;
        self.retransmit = None;
        self.deadline = None;
    }
}

#[cfg(test)]
mod tests;
