//! The UA core the daemon drives: inbound calls (UAS), sans-IO.
//!
//! Input flows: bytes → parser (400 for broken requests) → transaction layer
//! (retransmissions absorbed, §17.2.3) → UAS core checks (§8.2) → method
//! handler in [`uas`]. Everything to send is queued as [`Transmit`], every
//! happening as [`Event`]; `poll_timeout` says when to call `handle_timeout`.

mod reply;
mod uas;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::Peer;
use crate::dialog::{Dialog, DialogId};
use crate::msg::{Essentials, Message, Method, Request, Response, SIP_2_0, parse_head};
use crate::transaction::{
    AckMatch, Backoff, ClientKey, ClientNonInvite, Fired, Kind, Outgoing, ServerInvite,
    ServerInviteState, ServerKey, ServerNonInvite, Timers,
};
use reply::Reply;

pub struct EndpointConfig {
    /// host:port written into Via and Contact.
    pub advertised: SocketAddr,
    /// Server / User-Agent header value.
    pub user_agent: String,
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        let timers = Timers::default();
        EndpointConfig {
            advertised: SocketAddr::from(([127, 0, 0, 1], 5060)),
            user_agent: concat!("Hotline/", env!("CARGO_PKG_VERSION")).to_string(),
            t1: timers.t1,
            t2: timers.t2,
            t4: timers.t4,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

/// Bytes to send to a peer (over TCP: on the connection to `to`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: Peer,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    IncomingCall {
        call: CallHandle,
        call_id: String,
        /// User part of the From URI, or "anonymous".
        caller: String,
        caller_name: Option<String>,
        /// User part of the Request-URI.
        called: String,
        /// The SDP offer (taken out of a multipart body if need be).
        offer: Option<String>,
        source: Peer,
    },
    CallAcked {
        call: CallHandle,
    },
    /// 200 to the CANCEL and 487 to the INVITE are already sent.
    CallCancelled {
        call: CallHandle,
    },
    /// Answer with `answer()` or `reject()`.
    ReInvite {
        call: CallHandle,
        offer: Option<String>,
    },
    /// From SIP INFO (application/dtmf-relay or application/dtmf), answered 200.
    Dtmf {
        call: CallHandle,
        digit: char,
        duration_ms: Option<u32>,
    },
    CallEnded {
        call: CallHandle,
        reason: EndReason,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    RemoteBye,
    /// No ACK for our 2xx within 64·T1; the endpoint sent a BYE.
    AckTimeout,
    /// Not produced by the endpoint yet: the driver has no way to report a
    /// transport failure to it.
    TransportError,
}

/// Counters the daemon exports. Method labels are the standard method
/// names or "OTHER" (bounded label sets); classes are "1xx".."6xx".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SipStats {
    pub requests_in: BTreeMap<String, u64>,
    pub responses_in: BTreeMap<String, u64>,
    pub requests_out: BTreeMap<String, u64>,
    pub responses_out: BTreeMap<String, u64>,
    pub parse_errors: u64,
    /// Responses matching no client transaction, dropped (§17.1.3).
    pub stray_responses: u64,
}

fn method_label(m: &Method) -> String {
    match m {
        Method::Other(_) => "OTHER".to_string(),
        known => known.as_str().to_string(),
    }
}

fn class_label(status: u16) -> String {
    format!("{}xx", status / 100)
}

/// Tags (§19.3) and other random identifiers.
pub(crate) fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

enum ServerMachine {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

impl ServerMachine {
    fn respond(&mut self, now: Instant, out: Outgoing) -> Option<Outgoing> {
        match self {
            ServerMachine::Invite(m) => m.respond(now, out),
            ServerMachine::NonInvite(m) => m.respond(now, out),
        }
    }

    fn on_retransmission(&self) -> Option<Outgoing> {
        match self {
            ServerMachine::Invite(m) => m.on_retransmission(),
            ServerMachine::NonInvite(m) => m.on_retransmission(),
        }
    }

    fn on_timer(&mut self, now: Instant) -> Fired {
        match self {
            ServerMachine::Invite(m) => m.on_timer(now),
            ServerMachine::NonInvite(m) => m.on_timer(now),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        match self {
            ServerMachine::Invite(m) => m.next_deadline(),
            ServerMachine::NonInvite(m) => m.next_deadline(),
        }
    }

    fn is_terminated(&self) -> bool {
        match self {
            ServerMachine::Invite(m) => m.is_terminated(),
            ServerMachine::NonInvite(m) => m.is_terminated(),
        }
    }

    /// An INVITE still waiting for its final response.
    fn is_pending_invite(&self) -> bool {
        matches!(self, ServerMachine::Invite(m) if m.state() == ServerInviteState::Proceeding)
    }
}

/// A server transaction with what the core needs to answer through it.
struct ServerTx {
    machine: ServerMachine,
    request: Request,
    source: Peer,
    /// To tag of our responses; for an INVITE, the dialog's local tag.
    to_tag: String,
    /// The request's own To tag, for RFC 2543 matching.
    request_to_tag: Option<String>,
    call: Option<CallHandle>,
}

/// An INVITE or re-INVITE waiting for `answer()` / `reject()`.
#[derive(Clone, Debug)]
struct Pending {
    key: ServerKey,
    cseq: u32,
}

/// A 2xx the core retransmits until its ACK arrives (§13.3.1.4).
struct Unacked {
    out: Outgoing,
    backoff: Backoff,
    give_up: Instant,
    cseq: u32,
    /// The 2xx to the initial INVITE: its ACK is reported as CallAcked.
    initial: bool,
}

struct Call {
    dialog: Dialog,
    /// Where the INVITE came from; our in-dialog requests go there too.
    peer: Peer,
    /// A 2xx to the initial INVITE has been sent.
    established: bool,
    pending: Option<Pending>,
    unacked: Option<Unacked>,
    /// The daemon hung up while a 2xx waited for its ACK: BYE follows the
    /// ACK (§15), and no more events are reported.
    hung_up: bool,
}

pub struct Endpoint {
    cfg: EndpointConfig,
    timers: Timers,
    server_txs: BTreeMap<ServerKey, ServerTx>,
    client_txs: BTreeMap<ClientKey, ClientNonInvite>,
    calls: BTreeMap<CallHandle, Call>,
    dialogs: HashMap<DialogId, CallHandle>,
    next_call: u64,
    draining: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: SipStats,
}

impl Endpoint {
    pub fn new(cfg: EndpointConfig) -> Self {
        let timers = Timers {
            t1: cfg.t1,
            t2: cfg.t2,
            t4: cfg.t4,
        };
        Endpoint {
            cfg,
            timers,
            server_txs: BTreeMap::new(),
            client_txs: BTreeMap::new(),
            calls: BTreeMap::new(),
            dialogs: HashMap::new(),
            next_call: 1,
            draining: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: SipStats::default(),
        }
    }

    /// One UDP datagram, or one framed TCP message. Malformed requests get
    /// a 400 when a response can be formed; anything else broken is dropped.
    pub fn handle_input(&mut self, now: Instant, from: Peer, data: &[u8]) {
        let Ok(head) = parse_head(data) else {
            self.stats.parse_errors += 1;
            return;
        };
        match head.finish(data) {
            Ok(Message::Request(req)) => self.on_request(now, from, req),
            Ok(Message::Response(resp)) => self.on_response(now, resp),
            Err(err) => {
                self.stats.parse_errors += 1;
                // Nobody waits for an answer to an ACK, and without a Via
                // nobody could match one.
                if head.is_request() && head.method_token() != "ACK" && head.headers.contains("Via")
                {
                    let reply = Reply::new(400).reason(err.to_string());
                    let out = reply::build(
                        &head.headers,
                        from,
                        Some(&new_tag()),
                        &self.cfg.user_agent,
                        reply,
                    );
                    self.send(out);
                }
            }
        }
        self.collect_garbage();
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let mut out = Vec::new();
        for tx in self.server_txs.values_mut() {
            // Timer H (no ACK for our non-2xx) needs nothing from the core.
            out.extend(tx.machine.on_timer(now).send);
        }
        for tx in self.client_txs.values_mut() {
            // A BYE that times out leaves nothing to clean up.
            out.extend(tx.on_timer(now).send);
        }
        for o in out {
            self.send(o);
        }
        self.call_timers(now);
        self.collect_garbage();
    }

    /// The earliest pending timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let servers = self
            .server_txs
            .values()
            .filter_map(|t| t.machine.next_deadline());
        let clients = self
            .client_txs
            .values()
            .filter_map(ClientNonInvite::next_deadline);
        let calls = self
            .calls
            .values()
            .filter_map(|c| c.unacked.as_ref().map(|u| u.backoff.next.min(u.give_up)));
        servers.chain(clients).chain(calls).min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// While draining, new INVITEs are refused with 503 and Retry-After.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    pub fn stats(&self) -> &SipStats {
        &self.stats
    }

    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    fn on_request(&mut self, now: Instant, source: Peer, req: Request) {
        *self
            .stats
            .requests_in
            .entry(method_label(&req.method))
            .or_default() += 1;
        // The parser has checked these; a failure here would be a bug, not input.
        let Ok(e) = req.essentials() else { return };
        if req.version != SIP_2_0 {
            if req.method != Method::Ack {
                self.reply_stateless(source, &req, Reply::new(505));
            }
            return;
        }
        let Some(key) = ServerKey::for_request(&req, &e) else {
            return;
        };
        if self.absorbed(now, &key, &req, &e) {
            return;
        }
        match req.method {
            Method::Ack => self.on_ack(now, &e),
            Method::Cancel => self.on_cancel(now, source, key, req, &e),
            _ => {
                self.new_server_tx(key.clone(), req.clone(), source, &e);
                self.dispatch(now, &key, &req, &e);
            }
        }
    }

    /// §17.2.3: a retransmission, or the ACK to our non-2xx, is the
    /// transaction's business.
    fn absorbed(&mut self, now: Instant, key: &ServerKey, req: &Request, e: &Essentials) -> bool {
        let Some(tx) = self.server_txs.get_mut(key) else {
            return false;
        };
        if key.is_legacy() {
            // RFC 2543: the To tag must match too — ours for an ACK.
            let expected = match req.method {
                Method::Ack => Some(tx.to_tag.as_str()),
                _ => tx.request_to_tag.as_deref(),
            };
            if e.to.tag() != expected {
                return false;
            }
        }
        let resend = match (&mut tx.machine, &req.method) {
            (ServerMachine::Invite(m), Method::Ack) => match m.on_ack(now) {
                AckMatch::Absorbed => None,
                AckMatch::ForTu => return false,
            },
            (m, _) => m.on_retransmission(),
        };
        if let Some(out) = resend {
            self.send(out);
        }
        true
    }

    fn new_server_tx(&mut self, key: ServerKey, request: Request, source: Peer, e: &Essentials) {
        let reliable = source.transport.is_reliable();
        let machine = match request.method {
            Method::Invite => ServerMachine::Invite(ServerInvite::new(reliable, self.timers)),
            _ => ServerMachine::NonInvite(ServerNonInvite::new(reliable, self.timers)),
        };
        let request_to_tag = e.to.tag().map(str::to_string);
        let tx = ServerTx {
            machine,
            request,
            source,
            to_tag: new_tag(),
            request_to_tag,
            call: None,
        };
        self.server_txs.insert(key, tx);
    }

    /// Sends `reply` through server transaction `key`; returns what was sent.
    fn respond(&mut self, now: Instant, key: &ServerKey, reply: Reply) -> Option<Outgoing> {
        let tx = self.server_txs.get_mut(key)?;
        let to_tag = (reply.status != 100).then_some(tx.to_tag.as_str());
        let out = reply::build(
            &tx.request.headers,
            tx.source,
            to_tag,
            &self.cfg.user_agent,
            reply,
        );
        let sent = tx.machine.respond(now, out)?;
        self.send(sent.clone());
        Some(sent)
    }

    /// A response outside any transaction (505, and 400 from the parser).
    fn reply_stateless(&mut self, source: Peer, req: &Request, reply: Reply) {
        let out = reply::build(
            &req.headers,
            source,
            Some(&new_tag()),
            &self.cfg.user_agent,
            reply,
        );
        self.send(out);
    }

    fn on_response(&mut self, now: Instant, resp: Response) {
        *self
            .stats
            .responses_in
            .entry(class_label(resp.status))
            .or_default() += 1;
        let key = resp
            .essentials()
            .ok()
            .and_then(|e| ClientKey::for_response(&e));
        match key.and_then(|k| self.client_txs.get_mut(&k)) {
            // Our only client transactions are BYEs: their answer ends nothing more.
            Some(tx) => {
                tx.on_response(now, resp.status);
            }
            None => self.stats.stray_responses += 1,
        }
    }

    fn send(&mut self, out: Outgoing) {
        let counter = match &out.kind {
            Kind::Request(m) => self.stats.requests_out.entry(method_label(m)),
            Kind::Response(s) => self.stats.responses_out.entry(class_label(*s)),
        };
        *counter.or_default() += 1;
        self.transmits.push_back(Transmit {
            to: out.to,
            data: out.data,
        });
    }

    /// Finished transactions go; calls are removed where they end.
    fn collect_garbage(&mut self) {
        self.server_txs.retain(|_, tx| !tx.machine.is_terminated());
        self.client_txs.retain(|_, tx| !tx.is_terminated());
    }

    fn remove_call(&mut self, handle: CallHandle) -> Option<Call> {
        let call = self.calls.remove(&handle)?;
        self.dialogs.remove(&call.dialog.id);
        Some(call)
    }
}

#[cfg(test)]
mod tests;
