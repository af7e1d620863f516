//! REGISTER (RFC 3261 §10.3): syntax first, then digest authentication
//! (401), then the user may only touch their own AOR, then the bindings.

use std::time::Instant;

use super::Endpoint;
use super::reply::Reply;
use super::server_auth::AuthResult;
use crate::auth::quote;
use crate::msg::{Contact, Essentials, Request, Scheme};
use crate::registrar::{ContactUpdate, RegisterError, Update};
use crate::transaction::ServerKey;

/// A Contact as asked, before the lifetime is checked against our limits.
struct Asked {
    update: ContactUpdate,
    /// From the contact's `expires`, else the Expires header, else `None`.
    expires: Option<u32>,
}

enum Parsed {
    Fetch,
    RemoveAll,
    Contacts(Vec<Asked>),
}

/// §10.3 steps 5–6 as syntax: a SIP AOR in To, SIP contacts, and `*` only
/// with `Expires: 0`.
fn parse(req: &Request, e: &Essentials) -> Result<Parsed, Reply> {
    // RFC 4475 §3.3.4 (unksm2): a To that isn't a SIP or SIPS URI is no AOR.
    if !e.to.uri.is_sip() {
        return Err(Reply::new(400).reason("To must be a SIP or SIPS URI"));
    }
    let header_expires = req.headers.expires().ok().flatten();
    match req.headers.contact() {
        Ok(None) => Ok(Parsed::Fetch),
        Ok(Some(Contact::Star)) => match header_expires {
            Some(0) => Ok(Parsed::RemoveAll),
            _ => Err(Reply::new(400).reason("Contact * needs Expires: 0")),
        },
        Ok(Some(Contact::Addrs(addrs))) => {
            let mut out = Vec::new();
            for a in addrs {
                if !matches!(a.uri.scheme(), Scheme::Sip | Scheme::Sips) {
                    return Err(Reply::new(400).reason("Contact must be a SIP or SIPS URI"));
                }
                out.push(Asked {
                    expires: a.expires().or(header_expires),
                    update: ContactUpdate {
                        instance: a.params.value("+sip.instance").map(str::to_string),
                        reg_id: a.params.value("reg-id").and_then(|v| v.parse().ok()),
                        uri: a.uri,
                        expires: 0,
                    },
                });
            }
            Ok(Parsed::Contacts(out))
        }
        Err(err) => Err(Reply::new(400).reason(err.to_string())),
    }
}

impl Endpoint {
    pub(super) fn on_register(
        &mut self,
        now: Instant,
        key: &ServerKey,
        req: &Request,
        e: &Essentials,
    ) {
        let parsed = match parse(req, e) {
            Ok(p) => p,
            Err(reply) => {
                self.respond(now, key, reply);
                return;
            }
        };
        let Some(source) = self.server_txs.get(key).map(|tx| tx.source) else {
            return;
        };
        let user = match self.authenticate(now, source, req, "Authorization") {
            AuthResult::Authenticated(user) => user,
            AuthResult::Challenge { stale } => {
                let reply = self.challenge(now, 401, stale, e.to.uri.user(), source.addr.ip());
                self.respond(now, key, reply);
                return;
            }
            AuthResult::Forbidden => {
                self.respond(now, key, Reply::new(403));
                return;
            }
        };
        // §10.3 step 4: an operator registers their own AOR only.
        if e.to.uri.user() != Some(user.as_str()) {
            self.respond(now, key, Reply::new(403));
            return;
        }
        let update = match parsed {
            Parsed::Fetch => Update::Fetch,
            Parsed::RemoveAll => Update::RemoveAll,
            Parsed::Contacts(asked) => {
                let (min, max) = (self.cfg.min_expires, self.cfg.max_expires.max(1));
                let mut contacts = Vec::new();
                for a in asked {
                    let expires = a.expires.unwrap_or(self.cfg.default_expires);
                    if expires != 0 && expires < min {
                        let reply = Reply::new(423).header("Min-Expires", min.to_string());
                        self.respond(now, key, reply);
                        return;
                    }
                    contacts.push(ContactUpdate {
                        expires: expires.min(max),
                        ..a.update
                    });
                }
                Update::Contacts(contacts)
            }
        };
        match self
            .registrar
            .apply(now, &user, source, &e.call_id, e.cseq.seq, &update)
        {
            Ok(changed) => {
                let reply = self.bindings_reply(now, &user);
                self.respond(now, key, reply);
                if changed {
                    self.report_bindings(&user);
                }
            }
            Err(err @ RegisterError::OutOfOrder) => {
                self.respond(now, key, Reply::new(500).reason(err.to_string()));
            }
            Err(err @ RegisterError::TooMany) => {
                self.respond(now, key, Reply::new(403).reason(err.to_string()));
            }
        }
    }

    /// 200 listing every current binding with its remaining lifetime (§10.3 step 8).
    fn bindings_reply(&self, now: Instant, user: &str) -> Reply {
        let mut reply = Reply::new(200);
        for b in self.registrar.bindings(user) {
            let left = b.expires_at.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            let mut value = format!("<{}>;expires={secs}", b.uri);
            if let Some(instance) = &b.instance {
                value.push_str(&format!(";+sip.instance={}", quote(instance)));
            }
            if let Some(reg_id) = b.reg_id {
                value.push_str(&format!(";reg-id={reg_id}"));
            }
            reply = reply.header("Contact", value);
        }
        reply
    }
}
