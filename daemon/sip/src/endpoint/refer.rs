//! REFER inside a call (RFC 3515): a phone asks us to transfer the other side of its
//! call. The endpoint reports it as [`Event::Refer`]; the daemon decides and answers with
//! [`Endpoint::refer_reply`] (202 to go ahead, or a refusal), then reports how the
//! transfer went with [`Endpoint::refer_notify`] (NOTIFY, `message/sipfrag`).

use std::time::Instant;

use super::reply::{Reply, reason_phrase};
use super::{CallHandle, Endpoint, Event, our_via};
use crate::msg::{Method, NameAddr, Request};
use crate::transaction::{ServerKey, new_branch};

/// Where a REFER asks the call to go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferTarget {
    /// The Refer-To URI without its headers.
    pub uri: String,
    /// Its user part (an operator's SIP user, a number), if any.
    pub user: Option<String>,
    /// The `Replaces` header in the URI (RFC 3891, attended transfer), unescaped.
    pub replaces: Option<String>,
}

impl Endpoint {
    pub(super) fn on_refer(
        &mut self,
        now: Instant,
        handle: CallHandle,
        key: &ServerKey,
        req: &Request,
    ) {
        let values: Vec<&str> = req.headers.get_all("Refer-To").collect();
        let target = match values.as_slice() {
            [one] => NameAddr::parse(one, false).map_err(|_| "Bad Refer-To"),
            _ => Err("Exactly one Refer-To needed"),
        };
        let target = match target {
            Ok(t) => t,
            Err(why) => {
                self.respond(now, key, Reply::new(400).reason(why));
                return;
            }
        };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if !call.established || call.hung_up {
            self.respond(now, key, Reply::new(481));
            return;
        }
        // One transfer at a time (§2.4.6 of RFC 3515 allows refusing more).
        if call.pending_refer.is_some() {
            self.respond(now, key, Reply::new(491));
            return;
        }
        call.pending_refer = Some(key.clone());
        let uri = target.uri.as_str();
        let uri = uri.split_once('?').map_or(uri, |(u, _)| u).to_string();
        let replaces = target
            .uri
            .headers()
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Replaces"))
            .map(|(_, v)| v.clone());
        self.events.push_back(Event::Refer {
            call: handle,
            target: ReferTarget {
                uri,
                user: target.uri.user().map(str::to_string),
                replaces,
            },
        });
    }

    /// The final answer to the call's pending REFER: 202 to go ahead (then send
    /// [`Endpoint::refer_notify`]), or a refusal (403, 404, 501…).
    pub fn refer_reply(&mut self, now: Instant, call: CallHandle, status: u16) {
        let Some(key) = self
            .calls
            .get_mut(&call)
            .and_then(|c| c.pending_refer.take())
        else {
            return;
        };
        self.respond(now, &key, Reply::new(status));
    }

    /// How the transfer the call's REFER asked for is going: a NOTIFY whose
    /// `message/sipfrag` body is the status line `status` (100 while trying, the final
    /// one when done). `done` ends the implicit subscription.
    pub fn refer_notify(&mut self, now: Instant, call: CallHandle, status: u16, done: bool) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let via = our_via(self.cfg.advertised, c.peer.transport, &new_branch());
        let mut notify = c.dialog.request(Method::Notify, &via, &self.cfg.user_agent);
        let (peer, credentials) = (c.peer, c.credentials.clone());
        let state = if done {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        };
        let h = &mut notify.headers;
        h.push("Contact", self.contact(peer));
        h.push("Event", "refer");
        h.push("Subscription-State", state);
        h.push("Content-Type", "message/sipfrag;version=2.0");
        notify.body = format!("SIP/2.0 {status} {}\r\n", reason_phrase(status)).into_bytes();
        self.start_client_tx(now, notify, peer, credentials, 0);
    }
}
