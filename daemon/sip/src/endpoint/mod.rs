//! The UA core the daemon drives, sans-IO: inbound calls (UAS), the
//! registrar for operators' phones, and outgoing calls (UAC).
//!
//! Input flows: bytes → parser (400 for broken requests) → transaction layer
//! (retransmissions absorbed, §17.2.3) → source policy (rate limit) → UAS
//! core checks (§8.2) → method handler in [`uas`] / [`register`], with
//! digest authentication ([`server_auth`]) where the source isn't trusted.
//! Responses go to the client transactions of [`uac`]. Everything to send is
//! queued as [`Transmit`], every happening as [`Event`]; `poll_timeout` says
//! when to call `handle_timeout`.

mod refer;
mod register;
mod reply;
mod server_auth;
mod timed;
mod uac;
mod uas;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

pub use refer::ReferTarget;

use crate::auth::Credential;
use crate::dialog::{Dialog, DialogId};
use crate::limits::{FailureThrottle, IpNet, RateLimit, RateLimiter};
use crate::msg::{
    Essentials, Message, Method, Params, Request, Response, SIP_2_0, Via, parse_head,
};
use crate::registrar::{Binding, Registrar};
use crate::transaction::{
    AckMatch, Backoff, ClientKey, Fired, Kind, Outgoing, ServerInvite, ServerInviteState,
    ServerKey, ServerNonInvite, Timers,
};
use crate::{Peer, Transport};
use reply::Reply;
use server_auth::NonceStore;
use timed::{Deadline, TimedMap};
use uac::{ClientInviteTx, ClientTx, Uac};

/// Over the per-source rate: the bucket refills within seconds.
const RETRY_AFTER_RATE: &str = "5";

#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// host:port written into Via and Contact.
    pub advertised: SocketAddr,
    /// Server / User-Agent header value.
    pub user_agent: String,
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
    /// Digest realm of our challenges; the HA1s in [`Credential`] are
    /// computed with it.
    pub realm: String,
    /// Sources whose INVITEs are accepted without authentication (the
    /// trunk). Everyone else must authenticate as an operator.
    pub trusted_sources: Vec<IpNet>,
    /// Concurrent inbound calls; INVITEs beyond get 503.
    pub max_calls: Option<usize>,
    /// Requests per untrusted source; beyond, INVITE and REGISTER get 503
    /// and anything else is dropped. Trusted sources and requests inside
    /// a dialog aren't counted.
    pub rate_limit: Option<RateLimit>,
    /// How long a nonce we issued is good for; after that a correct answer
    /// gets a new challenge with `stale=true`.
    pub nonce_lifetime: Duration,
    /// Failed authentications from one address within
    /// `auth_failure_window` that block it for the window: its requests
    /// needing authentication get 403 without a challenge meanwhile.
    pub auth_failure_limit: u32,
    pub auth_failure_window: Duration,
    /// Registration lifetimes (seconds): below `min_expires` is 423, above
    /// `max_expires` is cut down; `default_expires` when none is asked.
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
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
            realm: "hotline".to_string(),
            trusted_sources: Vec::new(),
            max_calls: None,
            rate_limit: Some(RateLimit {
                per_second: 20,
                burst: 100,
            }),
            nonce_lifetime: Duration::from_secs(300),
            auth_failure_limit: 5,
            auth_failure_window: Duration::from_secs(60),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
        }
    }
}

/// Who an inbound call comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A trusted source (`trusted_sources`): the trunk.
    Trunk,
    /// An operator's phone, digest-authenticated as this SIP user.
    Operator(String),
}

/// A call the daemon places: an operator's phone, or out through the trunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingCall {
    /// `sip:user@host:port`: the Request-URI.
    pub request_uri: String,
    /// Where to send the INVITE.
    pub to: Peer,
    /// User part of our From (the caller ID).
    pub from_user: String,
    pub from_display: Option<String>,
    /// Our SDP offer.
    pub sdp: String,
    /// User and password for a peer that challenges us (a trunk).
    pub credentials: Option<(String, String)>,
    /// Extra headers (P-Asserted-Identity, ...). Names that aren't tokens,
    /// values with line breaks, and headers the endpoint writes itself are
    /// left out.
    pub headers: Vec<(String, String)>,
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
    /// A refusal worth a line in the security log (fail2ban reads it).
    Security(SecurityEvent),
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
        /// The trunk, or the operator who authenticated.
        origin: Origin,
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
    /// A REFER inside the call (RFC 3515): transfer the other side of the call to
    /// `target`. Answer with `refer_reply`, report with `refer_notify`.
    Refer {
        call: CallHandle,
        target: ReferTarget,
    },
    /// Also for calls we placed, once answered.
    CallEnded {
        call: CallHandle,
        reason: EndReason,
    },
    /// A user's bindings changed (added, removed, expired, moved to another
    /// source): here is the whole current set, empty when none are left.
    /// A refresh that only extends the expiry is not reported.
    Registered {
        user: String,
        contacts: Vec<Binding>,
    },
    /// A provisional response (180, 183, ...; not 100) to our INVITE.
    OutgoingProgress {
        call: CallHandle,
        status: u16,
        sdp: Option<String>,
    },
    /// A 2xx to our INVITE: the dialog is confirmed and the ACK sent.
    OutgoingAnswered {
        call: CallHandle,
        sdp: Option<String>,
    },
    /// A final non-2xx to our INVITE, or 408 when nothing answered (timer B).
    /// Not reported after `hangup`.
    OutgoingFailed {
        call: CallHandle,
        status: u16,
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

/// A refused or failed request, by source; the daemon logs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityEvent {
    pub kind: SecurityKind,
    pub from: std::net::IpAddr,
    /// The account the request spoke for, when known.
    pub user: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityKind {
    /// A wrong digest response (or an unknown user) to one of our challenges.
    AuthFailed,
    /// That failure blocked the account from this address for the throttle's window.
    AuthBlocked,
    /// A request from an address and account that is blocked.
    AuthThrottled,
    /// Over the per-source request rate.
    RateLimited,
    /// An INVITE refused with this status (403 failed authentication, 503 over the cap).
    CallRefused(u16),
}

impl SecurityKind {
    /// The word in the log line.
    pub fn as_str(&self) -> &'static str {
        match self {
            SecurityKind::AuthFailed => "sip auth failed",
            SecurityKind::AuthBlocked => "sip auth blocked",
            SecurityKind::AuthThrottled => "sip auth throttled",
            SecurityKind::RateLimited => "sip rate limited",
            SecurityKind::CallRefused(_) => "sip call refused",
        }
    }
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
    /// 401/407 challenges sent.
    pub auth_challenges: u64,
    /// Failed digest authentications (wrong password or unknown user).
    pub auth_failures: u64,
    /// Requests refused because their source failed too often.
    pub auth_throttled: u64,
    /// Requests over a source's rate limit.
    pub rate_limited: u64,
    /// INVITEs refused by `max_calls`.
    pub calls_over_limit: u64,
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
    /// The request's headers, to build responses from; dropped after the final
    /// response, since tens of thousands of finished transactions linger for timer J.
    headers: crate::msg::Headers,
    source: Peer,
    /// To tag of our responses; for an INVITE, the dialog's local tag.
    to_tag: String,
    /// The request's own To tag, for RFC 2543 matching.
    request_to_tag: Option<String>,
    call: Option<CallHandle>,
}

impl Deadline for ServerTx {
    fn deadline(&self) -> Option<Instant> {
        self.machine.next_deadline()
    }
    fn is_done(&self) -> bool {
        self.machine.is_terminated()
    }
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
    /// Where the INVITE came from (or went to, for ours); our in-dialog
    /// requests go there too.
    peer: Peer,
    /// Created by an INVITE we received (counted by `max_calls`).
    inbound: bool,
    /// For a peer that challenges our BYE (a call we placed).
    credentials: Option<(String, String)>,
    /// A 2xx to the initial INVITE has been sent.
    established: bool,
    pending: Option<Pending>,
    unacked: Option<Unacked>,
    /// The daemon hung up while a 2xx waited for its ACK: BYE follows the
    /// ACK (§15), and no more events are reported.
    hung_up: bool,
    /// A REFER waiting for the daemon's `refer_reply`.
    pending_refer: Option<ServerKey>,
}

impl Deadline for Call {
    /// The next 2xx retransmission, or giving up on its ACK.
    fn deadline(&self) -> Option<Instant> {
        self.unacked.as_ref().map(|u| u.backoff.next.min(u.give_up))
    }
}

pub struct Endpoint {
    cfg: EndpointConfig,
    timers: Timers,
    server_txs: TimedMap<ServerKey, ServerTx>,
    client_txs: TimedMap<ClientKey, ClientTx>,
    client_invites: TimedMap<ClientKey, ClientInviteTx>,
    calls: TimedMap<CallHandle, Call>,
    /// Calls we placed that have no final response yet.
    outgoing: TimedMap<CallHandle, Uac>,
    dialogs: HashMap<DialogId, CallHandle>,
    next_call: u64,
    draining: bool,
    credentials: HashMap<String, Credential>,
    nonces: NonceStore,
    throttle: FailureThrottle,
    rate: Option<RateLimiter>,
    registrar: Registrar,
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
            nonces: NonceStore::new(cfg.nonce_lifetime),
            throttle: FailureThrottle::new(cfg.auth_failure_limit, cfg.auth_failure_window),
            rate: cfg.rate_limit.map(RateLimiter::new),
            cfg,
            timers,
            server_txs: TimedMap::new(),
            client_txs: TimedMap::new(),
            client_invites: TimedMap::new(),
            calls: TimedMap::new(),
            outgoing: TimedMap::new(),
            dialogs: HashMap::new(),
            next_call: 1,
            draining: false,
            credentials: HashMap::new(),
            registrar: Registrar::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: SipStats::default(),
        }
    }

    /// Loads (or with `None` removes) a SIP user's digest secrets. Removing
    /// a user also drops their bindings (reported as `Registered` with no
    /// contacts).
    pub fn set_credentials(&mut self, user: &str, cred: Option<Credential>) {
        match cred {
            Some(c) => {
                self.credentials.insert(user.to_string(), c);
            }
            None => {
                self.credentials.remove(user);
                if self.registrar.remove_user(user) {
                    self.events.push_back(Event::Registered {
                        user: user.to_string(),
                        contacts: Vec::new(),
                    });
                }
            }
        }
    }

    /// The realm the daemon must compute HA1s with.
    pub fn realm(&self) -> &str {
        &self.cfg.realm
    }

    /// Replaces the trusted sources (configuration reload).
    pub fn set_trusted_sources(&mut self, sources: Vec<IpNet>) {
        self.cfg.trusted_sources = sources;
    }

    pub fn set_max_calls(&mut self, max_calls: Option<usize>) {
        self.cfg.max_calls = max_calls;
    }

    /// A user's current bindings.
    pub fn bindings(&self, user: &str) -> Vec<Binding> {
        self.registrar.bindings(user)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.cfg.trusted_sources.iter().any(|n| n.contains(ip))
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
        for key in self.server_txs.due(now) {
            if let Some(tx) = self.server_txs.get_mut(&key) {
                // Timer H (no ACK for our non-2xx) needs nothing from the core.
                out.extend(tx.machine.on_timer(now).send);
            }
        }
        for key in self.client_txs.due(now) {
            if let Some(tx) = self.client_txs.get_mut(&key) {
                // A BYE or CANCEL that times out leaves nothing to clean up.
                out.extend(tx.machine.on_timer(now).send);
            }
        }
        let mut timed_out = Vec::new();
        for key in self.client_invites.due(now) {
            if let Some(tx) = self.client_invites.get_mut(&key) {
                let fired = tx.machine.on_timer(now);
                out.extend(fired.send);
                if fired.timed_out {
                    timed_out.push((tx.call, key));
                }
            }
        }
        for o in out {
            self.send(o);
        }
        for (call, key) in timed_out {
            self.uac_timed_out(call, &key);
        }
        self.uac_give_up(now);
        self.call_timers(now);
        for user in self.registrar.expire(now) {
            self.report_bindings(&user);
        }
        self.collect_garbage();
    }

    /// The earliest pending timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.server_txs.next_deadline(),
            self.client_txs.next_deadline(),
            self.client_invites.next_deadline(),
            self.calls.next_deadline(),
            self.outgoing.next_deadline(),
            self.registrar.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
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

    /// Calls with a dialog, plus calls we placed that are still ringing.
    pub fn active_calls(&self) -> usize {
        self.calls.len() + self.outgoing.len()
    }

    fn inbound_calls(&self) -> usize {
        self.calls.values().filter(|c| c.inbound).count()
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
        if !self.within_rate(now, source, &req, &e) {
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

    /// The per-source rate limit. Trusted sources, ACKs and requests inside
    /// our dialogs pass uncounted; over the limit, INVITE and REGISTER get
    /// a stateless 503 and the rest is dropped.
    fn within_rate(&mut self, now: Instant, source: Peer, req: &Request, e: &Essentials) -> bool {
        let ip = source.addr.ip();
        if req.method == Method::Ack
            || self.is_trusted(ip)
            || DialogId::of_request(e).is_some_and(|id| self.dialogs.contains_key(&id))
        {
            return true;
        }
        let Some(rate) = self.rate.as_mut() else {
            return true;
        };
        if rate.allow(ip, now) {
            return true;
        }
        self.stats.rate_limited += 1;
        self.security(SecurityKind::RateLimited, ip, None);
        if matches!(req.method, Method::Invite | Method::Register) {
            self.reply_stateless(
                source,
                req,
                Reply::new(503).header("Retry-After", RETRY_AFTER_RATE),
            );
        }
        false
    }

    fn security(&mut self, kind: SecurityKind, from: std::net::IpAddr, user: Option<String>) {
        self.events
            .push_back(Event::Security(SecurityEvent { kind, from, user }));
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
            headers: request.headers,
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
        let is_final = reply.status >= 200;
        let out = reply::build(&tx.headers, tx.source, to_tag, &self.cfg.user_agent, reply);
        let sent = tx.machine.respond(now, out)?;
        if is_final {
            tx.headers = Default::default();
        }
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
        let Some((key, e)) = resp
            .essentials()
            .ok()
            .and_then(|e| Some((ClientKey::for_response(&e)?, e)))
        else {
            self.stats.stray_responses += 1;
            return;
        };
        if self.client_invites.contains_key(&key) {
            self.on_invite_response(now, &key, &resp, &e);
        } else if self.client_txs.contains_key(&key) {
            self.on_non_invite_response(now, &key, &resp);
        } else {
            self.stats.stray_responses += 1;
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

    /// Finished transactions go (calls are removed where they end), and what changed
    /// is indexed by its next deadline again.
    fn collect_garbage(&mut self) {
        self.server_txs.refresh();
        self.client_txs.refresh();
        self.client_invites.refresh();
        self.calls.refresh();
        self.outgoing.refresh();
    }

    fn report_bindings(&mut self, user: &str) {
        self.events.push_back(Event::Registered {
            user: user.to_string(),
            contacts: self.registrar.bindings(user),
        });
    }

    fn remove_call(&mut self, handle: CallHandle) -> Option<Call> {
        let call = self.calls.remove(&handle)?;
        self.dialogs.remove(&call.dialog.id);
        Some(call)
    }
}

/// Our Via for a request we send, with a fresh branch and rport (RFC 3581).
fn our_via(advertised: SocketAddr, transport: Transport, branch: &str) -> Via {
    let mut params = Params::default();
    params.set("branch", Some(branch.to_string()));
    params.set("rport", None);
    Via {
        protocol: SIP_2_0.to_string(),
        transport: transport.via_token().to_string(),
        host: host_of(advertised),
        port: Some(advertised.port()),
        params,
    }
}

/// The host part of an address as SIP writes it (IPv6 in brackets).
fn host_of(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_register;
#[cfg(test)]
mod tests_uac;
