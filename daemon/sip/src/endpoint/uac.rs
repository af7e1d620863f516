//! Calls we place (UAC): the INVITE client transaction, answering digest
//! challenges, CANCEL (§9.1), ACK for 2xx (§13.2.2.4) and forked answers.
//!
//! A call lives in `Endpoint::outgoing` until its final response; a 2xx
//! turns it into an ordinary [`Call`] with a confirmed dialog, so BYE,
//! re-INVITE and INFO from the far end take the same paths as for calls
//! we received.

use std::time::Instant;

use super::timed::Deadline;
use super::uas::{ALLOW, SUPPORTED, sdp_body};
use super::{Call, CallHandle, Endpoint, Event, OutgoingCall, Peer, host_of, new_tag, our_via};
use crate::auth::{Challenge, is_header_name, quote};
use crate::dialog::Dialog;
use crate::msg::{Essentials, Method, Request, Response, Uri};
use crate::transaction::{ClientInvite, ClientKey, ClientNonInvite, Kind, Outgoing, new_branch};

/// Challenges answered per request when each says `stale=true`; a
/// challenge that isn't stale is answered once.
const MAX_AUTH_ATTEMPTS: u8 = 3;

/// Headers the endpoint writes itself; the daemon's extra headers can't
/// replace them.
const OWN_HEADERS: &[&str] = &[
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Max-Forwards",
    "Contact",
    "Content-Type",
    "Content-Length",
    "Authorization",
    "Proxy-Authorization",
];

/// A call we placed that has no final response yet.
#[derive(Debug)]
pub(super) struct Uac {
    /// The INVITE as last sent (a challenge makes a new one).
    request: Request,
    to: Peer,
    /// Its client transaction.
    key: ClientKey,
    credentials: Option<(String, String)>,
    auth_attempts: u8,
    /// A provisional response arrived: a CANCEL may be sent (§9.1).
    provisional: bool,
    /// The daemon hung up: cancel, report nothing more.
    hung_up: bool,
    cancel_sent: bool,
    /// 64·T1 after the CANCEL: stop waiting for the INVITE's final response.
    pub(super) give_up: Option<Instant>,
}

/// An INVITE client transaction and what its 2xx need.
#[derive(Debug)]
pub(super) struct ClientInviteTx {
    pub(super) machine: ClientInvite,
    pub(super) call: CallHandle,
    request: Request,
    to: Peer,
    credentials: Option<(String, String)>,
    /// The ACK sent for each 2xx (by To tag), sent again when it repeats.
    acks: Vec<(Option<String>, Outgoing)>,
}

/// A non-INVITE client transaction (BYE, CANCEL).
#[derive(Debug)]
pub(super) struct ClientTx {
    pub(super) machine: ClientNonInvite,
    request: Request,
    to: Peer,
    credentials: Option<(String, String)>,
    auth_attempts: u8,
}

impl Deadline for Uac {
    /// Giving up on a CANCEL that never got its final response.
    fn deadline(&self) -> Option<Instant> {
        self.give_up
    }
}

impl Deadline for ClientInviteTx {
    fn deadline(&self) -> Option<Instant> {
        self.machine.next_deadline()
    }
    fn is_done(&self) -> bool {
        self.machine.is_terminated()
    }
}

impl Deadline for ClientTx {
    fn deadline(&self) -> Option<Instant> {
        self.machine.next_deadline()
    }
    fn is_done(&self) -> bool {
        self.machine.is_terminated()
    }
}

/// A user part for a SIP URI, escaped (§25.1 `user`).
fn escape_user(user: &str) -> String {
    let mut out = String::new();
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn has_line_break(s: &str) -> bool {
    s.contains(['\r', '\n'])
}

fn challenge_header(status: u16) -> (&'static str, &'static str) {
    if status == 401 {
        ("WWW-Authenticate", "Authorization")
    } else {
        ("Proxy-Authenticate", "Proxy-Authorization")
    }
}

/// A fresh client nonce: 128 random bits.
fn cnonce() -> String {
    format!("{}{}", new_tag(), new_tag())
}

/// The request again with a new branch, the next CSeq and credentials
/// answering `challenge` (§22.2: same Call-ID and tags, CSeq + 1).
fn with_credentials(
    req: &Request,
    via: String,
    header: &str,
    challenge: &Challenge,
    (user, password): (&str, &str),
) -> Request {
    let mut req = req.clone();
    req.headers.replace("Via", via);
    let seq = req.headers.cseq().map_or(1, |c| c.seq.wrapping_add(1));
    req.headers.replace("CSeq", format!("{seq} {}", req.method));
    let value = challenge.authorization(
        user,
        password,
        req.method.as_str(),
        req.uri.as_str(),
        &cnonce(),
    );
    req.headers.replace(header, value);
    req
}

impl Endpoint {
    /// Places a call: an INVITE in its own client transaction (timers A and
    /// B), reported by `OutgoingProgress` / `OutgoingAnswered` /
    /// `OutgoingFailed`. A Request-URI that doesn't parse fails at once
    /// (400, or 416 for a scheme other than sip/sips).
    pub fn invite(&mut self, now: Instant, call: OutgoingCall) -> CallHandle {
        let handle = CallHandle(self.next_call);
        self.next_call += 1;
        let uri = match Uri::parse(&call.request_uri) {
            Ok(uri) if uri.is_sip() => uri,
            Ok(_) => return self.failed_at_once(handle, 416),
            Err(_) => return self.failed_at_once(handle, 400),
        };
        let branch = new_branch();
        let via = our_via(self.cfg.advertised, call.to.transport, &branch);
        let host = host_of(self.cfg.advertised);
        let user = match call.from_user.as_str() {
            "" => "anonymous".to_string(),
            u => escape_user(u),
        };
        let mut from = format!("<sip:{user}@{host}>;tag={}", new_tag());
        if let Some(name) = call.from_display.as_deref().filter(|n| !n.is_empty()) {
            from = format!("{} {from}", quote(name));
        }
        let mut req = Request::new(Method::Invite, uri);
        let h = &mut req.headers;
        h.push("Via", via.to_string());
        h.push("Max-Forwards", "70");
        h.push("From", from);
        h.push("To", format!("<{}>", call.request_uri));
        h.push("Call-ID", format!("{}@{host}", cnonce()));
        h.push("CSeq", "1 INVITE");
        h.push("Contact", self.contact(call.to));
        h.push("Allow", ALLOW);
        h.push("Supported", SUPPORTED.join(", "));
        h.push("User-Agent", self.cfg.user_agent.clone());
        for (name, value) in &call.headers {
            let own = OWN_HEADERS.iter().any(|o| o.eq_ignore_ascii_case(name));
            if is_header_name(name) && !has_line_break(value) && !own {
                h.push(name, value.clone());
            }
        }
        h.push("Content-Type", "application/sdp");
        req.body = call.sdp.into_bytes();
        let (machine, first) = ClientInvite::start(now, req.clone(), call.to, self.timers);
        let key = ClientKey {
            branch,
            method: Method::Invite,
        };
        self.client_invites.insert(
            key.clone(),
            ClientInviteTx {
                machine,
                call: handle,
                request: req.clone(),
                to: call.to,
                credentials: call.credentials.clone(),
                acks: Vec::new(),
            },
        );
        self.outgoing.insert(
            handle,
            Uac {
                request: req,
                to: call.to,
                key,
                credentials: call.credentials,
                auth_attempts: 0,
                provisional: false,
                hung_up: false,
                cancel_sent: false,
                give_up: None,
            },
        );
        self.send(first);
        handle
    }

    fn failed_at_once(&mut self, call: CallHandle, status: u16) -> CallHandle {
        self.events
            .push_back(Event::OutgoingFailed { call, status });
        call
    }

    pub(super) fn on_invite_response(
        &mut self,
        now: Instant,
        key: &ClientKey,
        resp: &Response,
        e: &Essentials,
    ) {
        let Some(tx) = self.client_invites.get_mut(key) else {
            return;
        };
        let outcome = tx.machine.on_response(now, resp);
        let handle = tx.call;
        if let Some(ack) = outcome.send {
            self.send(ack);
        }
        if !outcome.for_tu {
            return;
        }
        match resp.status {
            100..=199 => self.uac_provisional(now, handle, key, resp),
            200..=299 => self.uac_answered(now, key, resp, e),
            _ => self.uac_failed(now, handle, key, resp),
        }
    }

    fn uac_provisional(
        &mut self,
        now: Instant,
        call: CallHandle,
        key: &ClientKey,
        resp: &Response,
    ) {
        let Some(u) = self.outgoing.get_mut(&call).filter(|u| u.key == *key) else {
            return;
        };
        u.provisional = true;
        if u.hung_up {
            // The CANCEL held back for want of a provisional (§9.1).
            if !u.cancel_sent {
                self.send_cancel(now, call);
            }
            return;
        }
        if resp.status > 100 {
            self.events.push_back(Event::OutgoingProgress {
                call,
                status: resp.status,
                sdp: sdp_body(&resp.headers, &resp.body),
            });
        }
    }

    /// A 2xx: ACK it (again, if it is a retransmission). The first one
    /// answers the call; any other (a fork, or after hangup) is ended with
    /// BYE at once.
    fn uac_answered(&mut self, now: Instant, key: &ClientKey, resp: &Response, e: &Essentials) {
        let Some(tx) = self.client_invites.get_mut(key) else {
            return;
        };
        let to_tag = e.to.tag().map(str::to_string);
        if let Some((_, ack)) = tx.acks.iter().find(|(t, _)| *t == to_tag) {
            let ack = ack.clone();
            self.send(ack);
            return;
        }
        let (call, peer, credentials) = (tx.call, tx.to, tx.credentials.clone());
        let Ok(mut dialog) = Dialog::uac(&tx.request, resp) else {
            // Unusable 2xx (several Contacts): nothing to ACK it with.
            if let Some(u) = self.outgoing.remove(&call)
                && !u.hung_up
            {
                self.events
                    .push_back(Event::OutgoingFailed { call, status: 502 });
            }
            return;
        };
        let via = our_via(self.cfg.advertised, peer.transport, &new_branch());
        let seq = tx.request.headers.cseq().map_or(1, |c| c.seq);
        let mut ack = dialog.ack(seq, &via, &self.cfg.user_agent);
        // §22.1: the ACK for a 2xx carries the INVITE's credentials.
        for name in ["Authorization", "Proxy-Authorization"] {
            for v in tx.request.headers.get_all(name) {
                ack.headers.push(name, v);
            }
        }
        let ack = Outgoing {
            to: peer,
            data: ack.to_bytes(),
            kind: Kind::Request(Method::Ack),
        };
        tx.acks.push((to_tag, ack.clone()));
        self.send(ack);
        match self.outgoing.remove(&call) {
            Some(u) if !u.hung_up => {
                self.dialogs.insert(dialog.id.clone(), call);
                self.calls.insert(
                    call,
                    Call {
                        dialog,
                        peer,
                        inbound: false,
                        credentials,
                        established: true,
                        pending: None,
                        unacked: None,
                        hung_up: false,
                        pending_refer: None,
                    },
                );
                self.events.push_back(Event::OutgoingAnswered {
                    call,
                    sdp: sdp_body(&resp.headers, &resp.body),
                });
            }
            _ => {
                let via = our_via(self.cfg.advertised, peer.transport, &new_branch());
                let bye = dialog.request(Method::Bye, &via, &self.cfg.user_agent);
                self.start_client_tx(now, bye, peer, credentials, 0);
            }
        }
    }

    /// A final non-2xx (the transaction has ACKed it): answer a challenge
    /// if we may, else the call failed.
    fn uac_failed(&mut self, now: Instant, call: CallHandle, key: &ClientKey, resp: &Response) {
        let Some(u) = self.outgoing.get_mut(&call).filter(|u| u.key == *key) else {
            return;
        };
        if matches!(resp.status, 401 | 407)
            && !u.hung_up
            && let Some((user, password)) = u.credentials.clone()
        {
            let (challenge_name, header) = challenge_header(resp.status);
            if let Some(challenge) = Challenge::select(resp.headers.get_all(challenge_name))
                && (u.auth_attempts == 0
                    || (challenge.stale && u.auth_attempts < MAX_AUTH_ATTEMPTS))
            {
                let branch = new_branch();
                let via = our_via(self.cfg.advertised, u.to.transport, &branch);
                let req = with_credentials(
                    &u.request,
                    via.to_string(),
                    header,
                    &challenge,
                    (&user, &password),
                );
                let (machine, first) = ClientInvite::start(now, req.clone(), u.to, self.timers);
                let key = ClientKey {
                    branch,
                    method: Method::Invite,
                };
                u.request = req.clone();
                u.key = key.clone();
                u.auth_attempts += 1;
                u.provisional = false;
                self.client_invites.insert(
                    key,
                    ClientInviteTx {
                        machine,
                        call,
                        request: req,
                        to: u.to,
                        credentials: u.credentials.clone(),
                        acks: Vec::new(),
                    },
                );
                self.send(first);
                return;
            }
        }
        if let Some(u) = self.outgoing.remove(&call)
            && !u.hung_up
        {
            self.events.push_back(Event::OutgoingFailed {
                call,
                status: resp.status,
            });
        }
    }

    /// Timer B: nothing answered the INVITE.
    pub(super) fn uac_timed_out(&mut self, call: CallHandle, key: &ClientKey) {
        if self.outgoing.get(&call).is_none_or(|u| u.key != *key) {
            return;
        }
        if let Some(u) = self.outgoing.remove(&call)
            && !u.hung_up
        {
            self.events
                .push_back(Event::OutgoingFailed { call, status: 408 });
        }
    }

    /// §9.1: 64·T1 after a CANCEL with no final response to the INVITE,
    /// the INVITE transaction is given up.
    pub(super) fn uac_give_up(&mut self, now: Instant) {
        for call in self.outgoing.due(now) {
            if let Some(u) = self.outgoing.remove(&call) {
                self.client_invites.remove(&u.key);
            }
        }
    }

    /// `hangup` of a call still ringing: CANCEL now if a provisional
    /// response arrived, else as soon as one does (or never, if timer B
    /// fires first).
    pub(super) fn cancel_outgoing(&mut self, now: Instant, call: CallHandle) {
        let Some(u) = self.outgoing.get_mut(&call) else {
            return;
        };
        if u.hung_up {
            return;
        }
        u.hung_up = true;
        if u.provisional {
            self.send_cancel(now, call);
        }
    }

    /// The CANCEL for the pending INVITE (§9.1): same Request-URI, top Via
    /// (branch), From, To, Call-ID and CSeq number, and its own transaction.
    fn send_cancel(&mut self, now: Instant, call: CallHandle) {
        let Some(u) = self.outgoing.get_mut(&call) else {
            return;
        };
        u.cancel_sent = true;
        u.give_up = Some(now + self.timers.t1x64());
        let inv = &u.request;
        let mut cancel = Request::new(Method::Cancel, inv.uri.clone());
        let h = &mut cancel.headers;
        if let Some(via) = inv.headers.get("Via") {
            h.push("Via", via);
        }
        h.push("Max-Forwards", "70");
        for name in ["Route", "From", "To", "Call-ID"] {
            for v in inv.headers.get_all(name) {
                h.push(name, v);
            }
        }
        let seq = inv.headers.cseq().map_or(1, |c| c.seq);
        h.push("CSeq", format!("{seq} CANCEL"));
        h.push("User-Agent", self.cfg.user_agent.clone());
        let to = u.to;
        self.start_client_tx(now, cancel, to, None, 0);
    }

    /// Sends `req` in a new non-INVITE client transaction (timers E, F, K).
    pub(super) fn start_client_tx(
        &mut self,
        now: Instant,
        req: Request,
        to: Peer,
        credentials: Option<(String, String)>,
        auth_attempts: u8,
    ) {
        let branch = req
            .headers
            .via()
            .ok()
            .and_then(|v| v.into_iter().next())
            .and_then(|v| v.branch().map(str::to_string));
        let Some(branch) = branch else { return };
        let key = ClientKey {
            branch,
            method: req.method.clone(),
        };
        let out = Outgoing {
            to,
            data: req.to_bytes(),
            kind: Kind::Request(req.method.clone()),
        };
        let (machine, first) = ClientNonInvite::start(now, out, self.timers);
        self.client_txs.insert(
            key,
            ClientTx {
                machine,
                request: req,
                to,
                credentials,
                auth_attempts,
            },
        );
        self.send(first);
    }

    /// A response to our BYE or CANCEL. A challenged BYE (a trunk may want
    /// credentials for it too) is sent again with them; CANCEL can't be
    /// challenged (§22.1).
    pub(super) fn on_non_invite_response(
        &mut self,
        now: Instant,
        key: &ClientKey,
        resp: &Response,
    ) {
        let Some(tx) = self.client_txs.get_mut(key) else {
            return;
        };
        let news = tx.machine.on_response(now, resp.status);
        if !news || !matches!(resp.status, 401 | 407) || tx.request.method == Method::Cancel {
            return;
        }
        let Some((user, password)) = tx.credentials.clone() else {
            return;
        };
        let (challenge_name, header) = challenge_header(resp.status);
        let Some(challenge) = Challenge::select(resp.headers.get_all(challenge_name)) else {
            return;
        };
        if !(tx.auth_attempts == 0 || (challenge.stale && tx.auth_attempts < MAX_AUTH_ATTEMPTS)) {
            return;
        }
        let via = our_via(self.cfg.advertised, tx.to.transport, &new_branch());
        let req = with_credentials(
            &tx.request,
            via.to_string(),
            header,
            &challenge,
            (&user, &password),
        );
        let (to, attempts) = (tx.to, tx.auth_attempts + 1);
        self.start_client_tx(now, req, to, Some((user, password)), attempts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_parts_are_escaped() {
        assert_eq!(escape_user("+3612345"), "+3612345");
        assert_eq!(escape_user("a b@c"), "a%20b%40c");
    }
}
