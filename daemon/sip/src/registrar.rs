//! Registrar bindings (RFC 3261 §10.3): per user (the AOR's user part), with
//! expiry on the caller's clock. The endpoint authenticates REGISTER and
//! turns a request into a [`Update`]; this module keeps the bindings.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::Peer;
use crate::msg::{Scheme, Uri};

/// Bindings one user may have at once; more are refused (403).
pub const MAX_BINDINGS_PER_USER: usize = 10;

/// A registered contact: where to reach one of the user's devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI as registered: the Request-URI for an INVITE to it.
    pub uri: String,
    /// Where the REGISTER came from (received/rport, or the TCP connection):
    /// send requests there, so phones behind NAT are reached.
    pub peer: Peer,
    pub expires_at: Instant,
    /// `+sip.instance` (RFC 5626), e.g. `<urn:uuid:…>`.
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626).
    pub reg_id: Option<u32>,
}

/// One Contact of a REGISTER, already checked and clamped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactUpdate {
    pub uri: Uri,
    /// Seconds; 0 removes the binding.
    pub expires: u32,
    pub instance: Option<String>,
    pub reg_id: Option<u32>,
}

/// What a REGISTER asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// No Contact: just list the bindings.
    Fetch,
    /// `Contact: *` with `Expires: 0`.
    RemoveAll,
    Contacts(Vec<ContactUpdate>),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// §10.3 step 7: same Call-ID, CSeq not higher than the binding's.
    #[error("Out of order CSeq")]
    OutOfOrder,
    #[error("Too many registrations")]
    TooMany,
}

#[derive(Clone, Debug)]
struct Record {
    key: String,
    binding: Binding,
    call_id: String,
    cseq: u32,
}

/// The fields whose change the daemon hears about (not a refresh).
fn identity(r: &Record) -> (&str, &str, Peer, Option<&str>, Option<u32>) {
    (
        &r.key,
        &r.binding.uri,
        r.binding.peer,
        r.binding.instance.as_deref(),
        r.binding.reg_id,
    )
}

/// What identifies a binding: the instance (RFC 5626 §6: a device that
/// re-registers from a new address replaces its old binding), otherwise
/// the URI compared as §19.1.4 does for the parts that matter.
fn binding_key(c: &ContactUpdate) -> String {
    match &c.instance {
        Some(instance) => format!("instance {instance} {}", c.reg_id.unwrap_or(0)),
        None => {
            let uri = &c.uri;
            let scheme = match uri.scheme() {
                Scheme::Sips => "sips",
                _ => "sip",
            };
            let transport = uri
                .param("transport")
                .flatten()
                .unwrap_or("")
                .to_ascii_lowercase();
            format!(
                "uri {scheme}:{}@{}:{}:{transport}",
                uri.user().unwrap_or(""),
                uri.host(),
                uri.port().unwrap_or(0)
            )
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Registrar {
    users: HashMap<String, Vec<Record>>,
}

impl Registrar {
    /// Applies a REGISTER of `user` atomically (§10.3: all or nothing).
    /// Returns whether the set of bindings changed (not just refreshed).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply(
        &mut self,
        now: Instant,
        user: &str,
        source: Peer,
        call_id: &str,
        cseq: u32,
        update: &Update,
    ) -> Result<bool, RegisterError> {
        let current = self.users.get(user).cloned().unwrap_or_default();
        let stale = |r: &Record| r.call_id == call_id && cseq <= r.cseq;
        let mut next = current.clone();
        match update {
            Update::Fetch => return Ok(false),
            Update::RemoveAll => {
                if current.iter().any(stale) {
                    return Err(RegisterError::OutOfOrder);
                }
                next.clear();
            }
            Update::Contacts(contacts) => {
                for c in contacts {
                    let key = binding_key(c);
                    let existing = next.iter().position(|r| r.key == key);
                    if let Some(i) = existing
                        && next.get(i).is_some_and(stale)
                    {
                        return Err(RegisterError::OutOfOrder);
                    }
                    if let Some(i) = existing {
                        next.remove(i);
                    }
                    if c.expires == 0 {
                        continue;
                    }
                    next.push(Record {
                        key,
                        binding: Binding {
                            uri: c.uri.to_string(),
                            peer: source,
                            expires_at: now + Duration::from_secs(u64::from(c.expires)),
                            instance: c.instance.clone(),
                            reg_id: c.reg_id,
                        },
                        call_id: call_id.to_string(),
                        cseq,
                    });
                }
                if next.len() > MAX_BINDINGS_PER_USER && next.len() > current.len() {
                    return Err(RegisterError::TooMany);
                }
            }
        }
        let changed = !same_set(&current, &next);
        if next.is_empty() {
            self.users.remove(user);
        } else {
            self.users.insert(user.to_string(), next);
        }
        Ok(changed)
    }

    /// Removes bindings whose time is up; returns the users that lost some.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut changed = Vec::new();
        self.users.retain(|user, records| {
            let before = records.len();
            records.retain(|r| r.binding.expires_at > now);
            if records.len() != before {
                changed.push(user.clone());
            }
            !records.is_empty()
        });
        changed.sort();
        changed
    }

    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.users
            .values()
            .flatten()
            .map(|r| r.binding.expires_at)
            .min()
    }

    pub(crate) fn bindings(&self, user: &str) -> Vec<Binding> {
        self.users
            .get(user)
            .map(|rs| rs.iter().map(|r| r.binding.clone()).collect())
            .unwrap_or_default()
    }

    /// Drops every binding of `user`; true if there were any.
    pub(crate) fn remove_user(&mut self, user: &str) -> bool {
        self.users.remove(user).is_some()
    }
}

fn same_set(a: &[Record], b: &[Record]) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|r| b.iter().any(|s| identity(s) == identity(r)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Transport;

    fn peer(port: u16) -> Peer {
        Peer {
            transport: Transport::Udp,
            addr: format!("192.0.2.1:{port}").parse().unwrap(),
        }
    }

    fn contact(uri: &str, expires: u32) -> ContactUpdate {
        ContactUpdate {
            uri: Uri::parse(uri).unwrap(),
            expires,
            instance: None,
            reg_id: None,
        }
    }

    #[test]
    fn uri_keys_ignore_host_case_but_not_user_or_port() {
        let k = |u| binding_key(&contact(u, 60));
        assert_eq!(k("sip:a@Host.example"), k("sip:a@host.example"));
        assert_ne!(k("sip:a@host"), k("sip:A@host"));
        assert_ne!(k("sip:a@host"), k("sip:a@host:5062"));
        assert_ne!(k("sip:a@host"), k("sip:a@host;transport=tcp"));
    }

    #[test]
    fn a_refresh_that_changes_the_contact_is_a_change() {
        let t0 = Instant::now();
        let mut r = Registrar::default();
        let outbound = |uri| {
            Update::Contacts(vec![ContactUpdate {
                instance: Some("<urn:uuid:00000000-0000-1000-8000-000a95a0e128>".into()),
                reg_id: Some(1),
                ..contact(uri, 60)
            }])
        };
        assert_eq!(
            r.apply(t0, "a", peer(1), "cid", 1, &outbound("sip:a@10.0.0.2")),
            Ok(true)
        );
        assert_eq!(
            r.apply(t0, "a", peer(1), "cid", 2, &outbound("sip:a@10.0.0.2")),
            Ok(false)
        );
        // The phone moved (a new address on the same instance): reported, and the old
        // contact is gone.
        assert_eq!(
            r.apply(t0, "a", peer(1), "cid", 3, &outbound("sip:a@10.0.0.9:5070")),
            Ok(true)
        );
        let now = r.bindings("a");
        assert_eq!(now.len(), 1);
        assert_eq!(now[0].uri, "sip:a@10.0.0.9:5070");
        // The same contact from another source (NAT rebinding) is a change too.
        assert_eq!(
            r.apply(t0, "a", peer(7), "cid", 4, &outbound("sip:a@10.0.0.9:5070")),
            Ok(true)
        );
    }

    #[test]
    fn add_refresh_remove_and_ordering() {
        let t0 = Instant::now();
        let mut r = Registrar::default();
        let c = |e| Update::Contacts(vec![contact("sip:a@10.0.0.2", e)]);
        assert_eq!(r.apply(t0, "a", peer(1), "cid", 1, &c(60)), Ok(true));
        // Refresh: same set, later expiry, no change reported.
        assert_eq!(r.apply(t0, "a", peer(1), "cid", 2, &c(120)), Ok(false));
        assert_eq!(r.bindings("a")[0].expires_at, t0 + Duration::from_secs(120));
        // Same Call-ID, CSeq not higher: refused, nothing changes.
        assert_eq!(
            r.apply(t0, "a", peer(1), "cid", 2, &c(0)),
            Err(RegisterError::OutOfOrder)
        );
        // Another Call-ID may do anything.
        assert_eq!(r.apply(t0, "a", peer(2), "other", 1, &c(60)), Ok(true));
        assert_eq!(r.bindings("a")[0].peer, peer(2), "a new source is a change");
        assert_eq!(r.apply(t0, "a", peer(2), "cid", 9, &c(0)), Ok(true));
        assert!(r.bindings("a").is_empty());
        assert_eq!(r.next_expiry(), None);
    }

    #[test]
    fn too_many_bindings() {
        let t0 = Instant::now();
        let mut r = Registrar::default();
        let many: Vec<ContactUpdate> = (0..=MAX_BINDINGS_PER_USER)
            .map(|i| contact(&format!("sip:a@10.0.0.{i}"), 60))
            .collect();
        assert_eq!(
            r.apply(t0, "a", peer(1), "c", 1, &Update::Contacts(many)),
            Err(RegisterError::TooMany)
        );
        assert!(r.bindings("a").is_empty());
    }
}
