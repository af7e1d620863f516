//! The UAS core: §8.2 checks, one handler per method, and the commands the
//! daemon gives about a call.

use std::time::Instant;

use super::reply::Reply;
use super::server_auth::AuthResult;
use super::{
    Call, CallHandle, EndReason, Endpoint, Event, Origin, Pending, SecurityKind, Unacked, our_via,
};
use crate::Peer;
use crate::dialog::{Dialog, DialogId};
use crate::msg::{Contact, Essentials, Headers, MediaType, Method, Request, Scheme, multipart};
use crate::sdp::{self, SdpError};
use crate::transaction::{Backoff, ServerKey, new_branch};

pub(super) const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REGISTER";
const ACCEPT: &str = "application/sdp";
/// Option tags we implement (Require / Supported); none yet.
pub(super) const SUPPORTED: &[&str] = &[];
/// Seconds a draining endpoint asks callers to wait.
const RETRY_AFTER_DRAINING: &str = "30";
/// Over `max_calls`: calls end within minutes; try again shortly.
const RETRY_AFTER_BUSY: &str = "10";

fn options_reply() -> Reply {
    Reply::new(200)
        .header("Allow", ALLOW)
        .header("Accept", ACCEPT)
        .header("Supported", SUPPORTED.join(", "))
}

fn not_implemented() -> Reply {
    Reply::new(501).header("Allow", ALLOW)
}

fn unsupported_media() -> Reply {
    Reply::new(415).header("Accept", ACCEPT)
}

/// §14.2: "try again in 0–10 s" for an INVITE that collides with a pending one.
fn retry_later() -> Reply {
    Reply::new(500).header("Retry-After", (rand::random::<u8>() % 11).to_string())
}

/// §8.2.2 checks every request passes before its method handler sees it.
///
/// Max-Forwards is deliberately not among them: a request that reached us
/// is for us, and RFC 4475 §3.3.11 (zeromf) says an endpoint "should
/// process the request as if the Max-Forwards field value were still
/// positive"; 483 is a proxy's answer (§16.3).
fn check_request(req: &Request) -> Option<Reply> {
    if matches!(req.uri.scheme(), Scheme::Other(_)) {
        return Some(Reply::new(416));
    }
    let unsupported: Vec<String> = req
        .headers
        .require()
        .unwrap_or_default()
        .into_iter()
        .filter(|tag| !SUPPORTED.contains(&tag.as_str()))
        .collect();
    if !unsupported.is_empty() {
        return Some(Reply::new(420).header("Unsupported", unsupported.join(", ")));
    }
    None
}

/// §8.2.3 and the offer of an INVITE: `Ok(None)` without a body.
fn read_offer(req: &Request) -> Result<Option<String>, Reply> {
    let encoded = req
        .headers
        .get("Content-Encoding")
        .map(str::trim)
        .filter(|e| !e.is_empty());
    if encoded.is_some_and(|e| !e.eq_ignore_ascii_case("identity")) {
        return Err(Reply::new(415).header("Accept-Encoding", "identity"));
    }
    // RFC 4475 sdp01: our answer is SDP, so the caller must accept it.
    if let Ok(Some(accept)) = req.headers.accept()
        && !accept.iter().any(|m| m.accepts("application", "sdp"))
    {
        return Err(
            Reply::new(406).header("Warning", "399 hotline \"Only application/sdp answers\"")
        );
    }
    if req.body.is_empty() {
        return Ok(None);
    }
    let sdp = match req.headers.content_type() {
        Ok(Some(ct)) if ct.is("application", "sdp") => &req.body[..],
        // SIP-I/SIP-T gateways put the SDP next to ISUP.
        Ok(Some(ct)) if ct.kind == "multipart" => ct
            .params
            .value("boundary")
            .and_then(|b| multipart::find_part(&req.body, b, "application", "sdp"))
            .ok_or_else(unsupported_media)?,
        Ok(None) => return Err(Reply::new(400).reason("Missing Content-Type header")),
        _ => return Err(unsupported_media()),
    };
    let sdp =
        std::str::from_utf8(sdp).map_err(|_| Reply::new(400).reason("Malformed SDP: not UTF-8"))?;
    match sdp::negotiate(sdp) {
        Ok(_) => Ok(Some(sdp.to_string())),
        Err(SdpError::NoCommonCodec) => {
            Err(Reply::new(488).header("Warning", "305 hotline \"Incompatible media format\""))
        }
        Err(SdpError::Malformed(why)) => {
            Err(Reply::new(400).reason(format!("Malformed SDP: {why}")))
        }
    }
}

/// The SDP of a response body, if it carries one (plain or in a multipart).
pub(super) fn sdp_body(headers: &Headers, body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let sdp = match headers.content_type() {
        Ok(Some(ct)) if ct.is("application", "sdp") => body,
        Ok(Some(ct)) if ct.kind == "multipart" => ct
            .params
            .value("boundary")
            .and_then(|b| multipart::find_part(body, b, "application", "sdp"))?,
        _ => return None,
    };
    std::str::from_utf8(sdp).ok().map(str::to_string)
}

/// The digit and duration of an INFO body (application/dtmf-relay or
/// application/dtmf).
fn parse_dtmf(content_type: &MediaType, body: &[u8]) -> Option<(char, Option<u32>)> {
    let text = std::str::from_utf8(body).ok()?;
    let digit = |s: &str| match s.trim() {
        // Some devices send 10 and 11 for * and #.
        "10" => Some('*'),
        "11" => Some('#'),
        s => {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_digit() || "*#ABCDabcd".contains(c) => {
                    Some(c.to_ascii_uppercase())
                }
                _ => None,
            }
        }
    };
    if content_type.is("application", "dtmf") {
        return Some((digit(text)?, None));
    }
    let (mut signal, mut duration) = (None, None);
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "signal" => signal = digit(value),
            "duration" => duration = value.trim().parse().ok(),
            _ => {}
        }
    }
    Some((signal?, duration))
}

impl Endpoint {
    /// A new request with its server transaction in place.
    pub(super) fn dispatch(
        &mut self,
        now: Instant,
        key: &ServerKey,
        req: &Request,
        e: &Essentials,
    ) {
        if let Some(reply) = check_request(req) {
            self.respond(now, key, reply);
            return;
        }
        if let Some(id) = DialogId::of_request(e) {
            match self.dialogs.get(&id).copied() {
                Some(call) => self.in_dialog(now, call, key, req, e),
                // §12.2.2
                None => {
                    self.respond(now, key, Reply::new(481));
                }
            }
            return;
        }
        match req.method {
            Method::Invite => self.on_invite(now, key, req, e),
            Method::Register => self.on_register(now, key, req, e),
            Method::Options => {
                self.respond(now, key, options_reply());
            }
            // Only meaningful inside a dialog.
            Method::Bye | Method::Info | Method::Update | Method::Prack => {
                self.respond(now, key, Reply::new(481));
            }
            // SUBSCRIBE, MESSAGE, extensions: one arm each as they come.
            _ => {
                self.respond(now, key, not_implemented());
            }
        }
    }

    fn in_dialog(
        &mut self,
        now: Instant,
        handle: CallHandle,
        key: &ServerKey,
        req: &Request,
        e: &Essentials,
    ) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if !call.dialog.accept_remote_cseq(e.cseq.seq) {
            self.respond(now, key, Reply::new(500).reason("Out of order CSeq"));
            return;
        }
        let local_tag = call.dialog.id.local_tag.clone();
        if let Some(tx) = self.server_txs.get_mut(key) {
            tx.to_tag = local_tag;
            tx.call = Some(handle);
        }
        match req.method {
            Method::Bye => self.on_bye(now, handle, key),
            Method::Invite => self.on_reinvite(now, handle, key, req, e),
            Method::Info => self.on_info(now, handle, key, req),
            Method::Refer => self.on_refer(now, handle, key, req),
            Method::Options => {
                self.respond(now, key, options_reply());
            }
            _ => {
                self.respond(now, key, not_implemented());
            }
        }
    }

    fn on_invite(&mut self, now: Instant, key: &ServerKey, req: &Request, e: &Essentials) {
        let Some(source) = self.server_txs.get(key).map(|tx| tx.source) else {
            return;
        };
        // T5: only the trunk and authenticated operators may call in.
        let origin = if self.is_trusted(source.addr.ip()) {
            Origin::Trunk
        } else {
            match self.authenticate(now, source, req, "Proxy-Authorization") {
                AuthResult::Authenticated(user) => Origin::Operator(user),
                AuthResult::Challenge { stale } => {
                    let reply =
                        self.challenge(now, 407, stale, e.from.uri.user(), source.addr.ip());
                    self.respond(now, key, reply);
                    return;
                }
                AuthResult::Forbidden => {
                    let user = e.from.uri.user().map(str::to_string);
                    self.security(SecurityKind::CallRefused(403), source.addr.ip(), user);
                    self.respond(now, key, Reply::new(403));
                    return;
                }
            }
        };
        let offer = match read_offer(req) {
            Ok(offer) => offer,
            Err(reply) => {
                self.respond(now, key, reply);
                return;
            }
        };
        if self.draining {
            self.respond(
                now,
                key,
                Reply::new(503).header("Retry-After", RETRY_AFTER_DRAINING),
            );
            return;
        }
        if self
            .cfg
            .max_calls
            .is_some_and(|max| self.inbound_calls() >= max)
        {
            self.stats.calls_over_limit += 1;
            self.security(SecurityKind::CallRefused(503), source.addr.ip(), None);
            self.respond(
                now,
                key,
                Reply::new(503).header("Retry-After", RETRY_AFTER_BUSY),
            );
            return;
        }
        let Some(tx) = self.server_txs.get_mut(key) else {
            return;
        };
        // The transaction's To tag is the dialog's local tag: one per call.
        let dialog = match Dialog::uas(req, e, &tx.to_tag) {
            Ok(d) => d,
            Err(err) => {
                self.respond(now, key, Reply::new(400).reason(err.to_string()));
                return;
            }
        };
        let handle = CallHandle(self.next_call);
        self.next_call += 1;
        tx.call = Some(handle);
        self.respond(now, key, Reply::new(100));
        self.dialogs.insert(dialog.id.clone(), handle);
        let pending = Some(Pending {
            key: key.clone(),
            cseq: e.cseq.seq,
        });
        let call = Call {
            dialog,
            peer: source,
            inbound: true,
            credentials: None,
            established: false,
            pending,
            unacked: None,
            hung_up: false,
            pending_refer: None,
        };
        self.calls.insert(handle, call);
        self.events.push_back(Event::IncomingCall {
            call: handle,
            call_id: e.call_id.clone(),
            caller: e
                .from
                .uri
                .user()
                .filter(|u| !u.is_empty())
                .unwrap_or("anonymous")
                .to_string(),
            caller_name: e.from.display_name.clone(),
            called: req.uri.user().unwrap_or_default().to_string(),
            offer,
            source,
            origin,
        });
    }

    fn on_reinvite(
        &mut self,
        now: Instant,
        handle: CallHandle,
        key: &ServerKey,
        req: &Request,
        e: &Essentials,
    ) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.pending.is_some() || !call.established || call.hung_up {
            self.respond(now, key, retry_later());
            return;
        }
        let offer = match read_offer(req) {
            Ok(offer) => offer,
            Err(reply) => {
                self.respond(now, key, reply);
                return;
            }
        };
        // Target refresh (§12.2.2).
        if let Ok(Some(Contact::Addrs(addrs))) = req.headers.contact()
            && let [one] = addrs.as_slice()
        {
            call.dialog.remote_target = one.uri.clone();
        }
        call.pending = Some(Pending {
            key: key.clone(),
            cseq: e.cseq.seq,
        });
        self.respond(now, key, Reply::new(100));
        self.events.push_back(Event::ReInvite {
            call: handle,
            offer,
        });
    }

    fn on_bye(&mut self, now: Instant, handle: CallHandle, key: &ServerKey) {
        self.respond(now, key, Reply::new(200));
        let Some(call) = self.remove_call(handle) else {
            return;
        };
        // §15.1.2: an INVITE still pending is answered 487.
        if let Some(pending) = &call.pending {
            self.respond(now, &pending.key, Reply::new(487));
        }
        if !call.hung_up {
            self.events.push_back(Event::CallEnded {
                call: handle,
                reason: EndReason::RemoteBye,
            });
        }
    }

    fn on_info(&mut self, now: Instant, handle: CallHandle, key: &ServerKey, req: &Request) {
        if req.body.is_empty() {
            self.respond(now, key, Reply::new(200));
            return;
        }
        let content_type = req.headers.content_type().ok().flatten();
        let dtmf = content_type
            .filter(|t| t.is("application", "dtmf-relay") || t.is("application", "dtmf"));
        let Some(content_type) = dtmf else {
            self.respond(
                now,
                key,
                Reply::new(415).header("Accept", "application/dtmf-relay, application/dtmf"),
            );
            return;
        };
        match parse_dtmf(&content_type, &req.body) {
            Some((digit, duration_ms)) => {
                self.respond(now, key, Reply::new(200));
                self.events.push_back(Event::Dtmf {
                    call: handle,
                    digit,
                    duration_ms,
                });
            }
            None => {
                self.respond(now, key, Reply::new(400).reason("Malformed DTMF body"));
            }
        }
    }

    /// §9.2: the CANCEL gets its own transaction and a 200 when it matches
    /// an INVITE transaction; a still pending INVITE is answered 487.
    pub(super) fn on_cancel(
        &mut self,
        now: Instant,
        source: Peer,
        key: ServerKey,
        req: Request,
        e: &Essentials,
    ) {
        let invite_key = key.with_method(Method::Invite);
        let target = self
            .server_txs
            .get(&invite_key)
            .filter(|tx| !key.is_legacy() || tx.request_to_tag.as_deref() == e.to.tag())
            .map(|tx| (tx.to_tag.clone(), tx.call, tx.machine.is_pending_invite()));
        self.new_server_tx(key.clone(), req, source, e);
        let Some((to_tag, call, pending)) = target else {
            self.respond(now, &key, Reply::new(481));
            return;
        };
        // The 200 to the CANCEL carries the INVITE response's To tag.
        if let Some(tx) = self.server_txs.get_mut(&key) {
            tx.to_tag = to_tag;
        }
        self.respond(now, &key, Reply::new(200));
        if !pending {
            return;
        }
        self.respond(now, &invite_key, Reply::new(487));
        let Some(handle) = call else { return };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.pending.as_ref().is_some_and(|p| p.key == invite_key) {
            call.pending = None;
            // A cancelled re-INVITE leaves the call as it was.
            if !call.established {
                self.remove_call(handle);
                self.events.push_back(Event::CallCancelled { call: handle });
            }
        }
    }

    /// An ACK no transaction took: the ACK to our 2xx, matched by dialog.
    /// Anything else is dropped.
    pub(super) fn on_ack(&mut self, now: Instant, e: &Essentials) {
        let Some(handle) = DialogId::of_request(e).and_then(|id| self.dialogs.get(&id).copied())
        else {
            return;
        };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let Some(acked) = call.unacked.take_if(|u| u.cseq == e.cseq.seq) else {
            return;
        };
        if call.hung_up {
            self.send_bye(now, handle);
            self.remove_call(handle);
        } else if acked.initial {
            self.events.push_back(Event::CallAcked { call: handle });
        }
    }

    /// 2xx retransmission and the 64·T1 wait for its ACK (§13.3.1.4).
    pub(super) fn call_timers(&mut self, now: Instant) {
        let mut resend = Vec::new();
        let mut gave_up = Vec::new();
        for handle in self.calls.due(now) {
            let Some(call) = self.calls.get_mut(&handle) else {
                continue;
            };
            let Some(u) = call.unacked.as_mut() else {
                continue;
            };
            if now >= u.give_up {
                gave_up.push((handle, call.hung_up));
            } else if u.backoff.due(now) {
                u.backoff.step(now);
                resend.push(u.out.clone());
            }
        }
        for out in resend {
            self.send(out);
        }
        for (handle, hung_up) in gave_up {
            // The dialog is confirmed all the same; the session ends with BYE.
            self.send_bye(now, handle);
            self.remove_call(handle);
            if !hung_up {
                self.events.push_back(Event::CallEnded {
                    call: handle,
                    reason: EndReason::AckTimeout,
                });
            }
        }
    }

    pub(super) fn send_bye(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let via = our_via(self.cfg.advertised, call.peer.transport, &new_branch());
        let bye = call.dialog.request(Method::Bye, &via, &self.cfg.user_agent);
        let (peer, credentials) = (call.peer, call.credentials.clone());
        self.start_client_tx(now, bye, peer, credentials, 0);
    }

    /// Our Contact, reachable over the transport the call came on.
    pub(super) fn contact(&self, peer: Peer) -> String {
        match peer.transport {
            crate::Transport::Udp => format!("<sip:{}>", self.cfg.advertised),
            crate::Transport::Tcp => format!("<sip:{};transport=tcp>", self.cfg.advertised),
        }
    }

    /// Contact and the copied Record-Route of responses that create the
    /// dialog (§12.1.1).
    fn dialog_reply(&self, mut reply: Reply, call: &Call, key: &ServerKey) -> Reply {
        reply = reply.header("Contact", self.contact(call.peer));
        if let Some(tx) = self.server_txs.get(key) {
            for rr in tx.headers.get_all("Record-Route") {
                reply = reply.header("Record-Route", rr);
            }
        }
        reply
    }

    /// 180 Ringing on the pending initial INVITE.
    pub fn ringing(&mut self, now: Instant, call: CallHandle) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let Some(pending) = c.pending.as_ref().filter(|_| !c.established) else {
            return;
        };
        let key = pending.key.clone();
        let reply = self.dialog_reply(Reply::new(180), c, &key);
        self.respond(now, &key, reply);
    }

    /// 200 OK with `sdp` to the pending INVITE or re-INVITE; retransmitted
    /// until the ACK arrives.
    pub fn answer(&mut self, now: Instant, call: CallHandle, sdp: &str) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let Some(pending) = c.pending.clone() else {
            return;
        };
        let initial = !c.established;
        let reply = Reply::new(200)
            .header("Allow", ALLOW)
            .header("Supported", SUPPORTED.join(", "))
            .body("application/sdp", sdp.as_bytes());
        let reply = if initial {
            self.dialog_reply(reply, c, &pending.key)
        } else {
            reply.header("Contact", self.contact(c.peer))
        };
        let Some(sent) = self.respond(now, &pending.key, reply) else {
            return;
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.pending = None;
        c.established = true;
        c.unacked = Some(Unacked {
            out: sent,
            backoff: Backoff::start(now, self.timers.t1, Some(self.timers.t2)),
            give_up: now + self.timers.t1x64(),
            cseq: pending.cseq,
            initial,
        });
    }

    /// A final non-2xx (300–699; anything else becomes 500) to the pending
    /// INVITE or re-INVITE. Rejecting the initial INVITE ends the call.
    pub fn reject(&mut self, now: Instant, call: CallHandle, status: u16) {
        let status = if (300..=699).contains(&status) {
            status
        } else {
            500
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(pending) = c.pending.take() else {
            return;
        };
        let initial = !c.established;
        self.respond(now, &pending.key, Reply::new(status));
        if initial {
            self.remove_call(call);
        }
    }

    /// Ends the call from our side: BYE once confirmed (held until the ACK,
    /// §15), 480 while still ringing. A call we placed and that has no
    /// final response yet is cancelled (CANCEL once a provisional response
    /// has arrived, §9.1). No event follows.
    pub fn hangup(&mut self, now: Instant, call: CallHandle) {
        if self.outgoing.contains_key(&call) {
            self.cancel_outgoing(now, call);
            return;
        }
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let pending = c.pending.take();
        let established = c.established;
        let waiting_for_ack = c.unacked.is_some();
        if waiting_for_ack {
            c.hung_up = true;
        }
        if let Some(p) = pending {
            let status = if established { 487 } else { 480 };
            self.respond(now, &p.key, Reply::new(status));
        }
        if !established {
            self.remove_call(call);
        } else if !waiting_for_ack {
            self.send_bye(now, call);
            self.remove_call(call);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_bodies() {
        let relay = MediaType::parse("application/dtmf-relay").unwrap();
        assert_eq!(
            parse_dtmf(&relay, b"Signal=5\r\nDuration=160\r\n"),
            Some(('5', Some(160)))
        );
        assert_eq!(parse_dtmf(&relay, b"signal = #\r\n"), Some(('#', None)));
        assert_eq!(
            parse_dtmf(&relay, b"Signal=10\r\nDuration=100"),
            Some(('*', Some(100)))
        );
        assert_eq!(parse_dtmf(&relay, b"Signal=x\r\n"), None);
        assert_eq!(parse_dtmf(&relay, b"Duration=100"), None);
        let plain = MediaType::parse("application/dtmf").unwrap();
        assert_eq!(parse_dtmf(&plain, b"a\r\n"), Some(('A', None)));
        assert_eq!(parse_dtmf(&plain, b"55"), None);
    }
}
