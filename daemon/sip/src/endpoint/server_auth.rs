//! Digest authentication of requests we receive (RFC 3261 §22.2–22.3,
//! RFC 8760): the nonces we issued, checking credentials, and the failed-
//! authentication throttle.
//!
//! Unknown users are checked against a secret no password matches, so they
//! cost the same and get the same 403 as a wrong password.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::reply::Reply;
use super::{Endpoint, Peer, SecurityKind};
use crate::auth::{
    Algorithm, Credentials, DigestInput, constant_time_eq, parse_auth_values, parse_nc, quote,
    response,
};
use crate::msg::Request;

/// Nonces remembered at most; the oldest go first. A client whose nonce
/// was pushed out gets a `stale=true` challenge and answers it again.
const NONCE_CAP: usize = 16 * 1024;

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

#[derive(Debug)]
struct NonceEntry {
    issued: Instant,
    /// The highest nonce-count used so far (0: none).
    last_nc: u32,
    /// The user the nonce was first used by; nobody else may use it.
    user: Option<String>,
    /// Where the challenge went: only an answer from there proves it was read.
    issued_to: IpAddr,
}

#[derive(Debug)]
pub(super) struct NonceStore {
    lifetime: Duration,
    entries: HashMap<String, NonceEntry>,
    /// Issue order, for expiry and the cap.
    order: VecDeque<(Instant, String)>,
    /// Sent with every challenge and checked when returned (RFC 7616 §3.3).
    opaque: String,
}

#[derive(Debug, PartialEq, Eq)]
enum NonceCheck {
    Valid,
    /// Unknown, expired, replayed or another user's: challenge again.
    Stale,
}

impl NonceStore {
    pub(super) fn new(lifetime: Duration) -> Self {
        NonceStore {
            lifetime,
            entries: HashMap::new(),
            order: VecDeque::new(),
            opaque: random_hex(16),
        }
    }

    /// A fresh nonce: 128 random bits from the thread's CSPRNG.
    fn issue(&mut self, now: Instant, to: IpAddr) -> String {
        while let Some((issued, nonce)) = self.order.front() {
            let expired = now.saturating_duration_since(*issued) >= self.lifetime;
            if !expired && self.order.len() < NONCE_CAP {
                break;
            }
            self.entries.remove(nonce);
            self.order.pop_front();
        }
        let nonce = random_hex(16);
        self.entries.insert(
            nonce.clone(),
            NonceEntry {
                issued: now,
                last_nc: 0,
                user: None,
                issued_to: to.to_canonical(),
            },
        );
        self.order.push_back((now, nonce.clone()));
        nonce
    }

    /// Whether we issued `nonce` to `from` and it has not expired.
    fn issued(&self, now: Instant, nonce: &str, from: IpAddr) -> bool {
        self.entries.get(nonce).is_some_and(|e| {
            e.issued_to == from.to_canonical()
                && now.saturating_duration_since(e.issued) < self.lifetime
        })
    }

    /// Uses `nonce` with count `nc` for `user` (whose response was right).
    fn check(&mut self, now: Instant, nonce: &str, user: &str, nc: u32) -> NonceCheck {
        let Some(entry) = self.entries.get_mut(nonce) else {
            return NonceCheck::Stale;
        };
        let expired = now.saturating_duration_since(entry.issued) >= self.lifetime;
        let other_user = entry.user.as_deref().is_some_and(|u| u != user);
        if expired || other_user || nc <= entry.last_nc {
            return NonceCheck::Stale;
        }
        entry.last_nc = nc;
        entry.user = Some(user.to_string());
        NonceCheck::Valid
    }
}

/// The account a request without usable credentials names: a REGISTER's To
/// user, anything else's From user.
fn claimed_account(req: &Request) -> Option<String> {
    let addr = if req.method == crate::msg::Method::Register {
        req.headers.to_addr()
    } else {
        req.headers.from_addr()
    };
    addr.ok()?.uri.user().map(str::to_string)
}

/// What a request's credentials are worth.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum AuthResult {
    Authenticated(String),
    /// No credentials for our realm, or right ones on a nonce we can't
    /// accept (expired, unknown, replayed): challenge (again).
    Challenge {
        stale: bool,
    },
    /// Wrong response, unknown user, unusable credentials, or a throttled
    /// source: 403, the same whatever the cause.
    Forbidden,
}

impl Endpoint {
    /// Checks the digest credentials of `req` in `header` (Authorization
    /// or Proxy-Authorization) against our realm and users.
    pub(super) fn authenticate(
        &mut self,
        now: Instant,
        source: Peer,
        req: &Request,
        header: &str,
    ) -> AuthResult {
        let ip = source.addr.ip();
        let cred = req
            .headers
            .get_all(header)
            .flat_map(parse_auth_values)
            .filter_map(|v| Credentials::from_value(&v))
            .find(|c| c.realm == self.cfg.realm);
        // The account the request speaks for: its credentials', else the one it names.
        let account = cred
            .as_ref()
            .map(|c| c.username.clone())
            .or_else(|| claimed_account(req))
            .unwrap_or_default();
        if self.throttle.is_blocked(ip, &account, now) {
            self.stats.auth_throttled += 1;
            self.security(SecurityKind::AuthThrottled, ip, Some(account));
            return AuthResult::Forbidden;
        }
        let Some(cred) = cred else {
            return AuthResult::Challenge { stale: false };
        };
        // Only an answer to a challenge we sent to this address counts as a failure: a
        // blind spoofer using someone else's address never saw their nonce, so it cannot
        // run up anyone's failures there.
        if !self.nonces.issued(now, &cred.nonce, ip) {
            return AuthResult::Challenge { stale: true };
        }
        match self.verify(req, &cred) {
            Some(nc) => {
                let opaque_ok = cred
                    .opaque
                    .as_deref()
                    .is_none_or(|o| o == self.nonces.opaque);
                if opaque_ok
                    && self.nonces.check(now, &cred.nonce, &cred.username, nc) == NonceCheck::Valid
                {
                    AuthResult::Authenticated(cred.username)
                } else {
                    AuthResult::Challenge { stale: true }
                }
            }
            None => {
                self.stats.auth_failures += 1;
                self.security(SecurityKind::AuthFailed, ip, Some(cred.username.clone()));
                if self.throttle.record_failure(ip, &cred.username, now) {
                    self.security(SecurityKind::AuthBlocked, ip, Some(cred.username));
                }
                AuthResult::Forbidden
            }
        }
    }

    /// The nonce-count of credentials whose response is right; `None` for
    /// anything else. Every path computes one digest, known user or not.
    fn verify(&self, req: &Request, cred: &Credentials) -> Option<u32> {
        let algorithm = match cred.algorithm.as_deref() {
            None => Some(Algorithm::Md5),
            // We offer neither the -sess variants nor SHA-512-256.
            Some(a) => match Algorithm::parse(a) {
                Some((alg @ (Algorithm::Md5 | Algorithm::Sha256), false)) => Some(alg),
                _ => None,
            },
        };
        // Only the algorithm the account is challenged with: an account set to SHA-256
        // must not be reachable through its MD5 HA1.
        let account = self
            .credentials
            .get(&cred.username)
            .filter(|c| Some(c.algorithm) == algorithm);
        let (algorithm, ha1, known) = match (algorithm, account) {
            (Some(Algorithm::Md5), Some(c)) => {
                (Algorithm::Md5, c.ha1_md5.to_ascii_lowercase(), true)
            }
            (Some(Algorithm::Sha256), Some(c)) => {
                (Algorithm::Sha256, c.ha1_sha256.to_ascii_lowercase(), true)
            }
            (alg, _) => {
                // No such user (or no usable algorithm): a key nothing matches, same work.
                let alg = alg.unwrap_or(Algorithm::Md5);
                (alg, alg.hex(random_hex(16).as_bytes()), false)
            }
        };
        let qop_auth = cred
            .qop
            .as_deref()
            .is_some_and(|q| q.eq_ignore_ascii_case("auth"));
        let nc = cred.nc.as_deref().and_then(parse_nc);
        let cnonce = cred.cnonce.as_deref().filter(|c| !c.is_empty());
        let expected = response(
            algorithm,
            &ha1,
            &DigestInput {
                method: req.method.as_str(),
                uri: &cred.uri,
                nonce: &cred.nonce,
                qop_auth: Some((cred.nc.as_deref().unwrap_or(""), cnonce.unwrap_or(""))),
            },
        );
        let matches = constant_time_eq(
            expected.as_bytes(),
            cred.response.to_ascii_lowercase().as_bytes(),
        );
        // The digest covers `uri`; it must be this request's Request-URI,
        // or a captured answer could be replayed at another target.
        let uri_ok = cred.uri.eq_ignore_ascii_case(req.uri.as_str());
        // We offered qop="auth" only: an answer without it is refused.
        let usable = known && qop_auth && cnonce.is_some();
        if matches && uri_ok && usable {
            nc
        } else {
            None
        }
    }

    /// A 401 (REGISTER) or 407 (INVITE) with one challenge: in the algorithm of the
    /// account `user` names (the To user of a REGISTER, the From user of an INVITE),
    /// MD5 for anyone else, so an unknown user looks like a default account.
    pub(super) fn challenge(
        &mut self,
        now: Instant,
        status: u16,
        stale: bool,
        user: Option<&str>,
        to: IpAddr,
    ) -> Reply {
        self.stats.auth_challenges += 1;
        let nonce = self.nonces.issue(now, to);
        let name = if status == 401 {
            "WWW-Authenticate"
        } else {
            "Proxy-Authenticate"
        };
        let algorithm = user
            .and_then(|u| self.credentials.get(u))
            .map_or(Algorithm::Md5, |c| c.algorithm);
        let mut value = format!(
            "Digest realm={}, nonce=\"{nonce}\", opaque=\"{}\", algorithm={}, qop=\"auth\"",
            quote(&self.cfg.realm),
            self.nonces.opaque,
            algorithm.as_str()
        );
        if stale {
            value.push_str(", stale=true");
        }
        Reply::new(status).header(name, value)
    }
}
