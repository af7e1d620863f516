//! Digest authentication, the registrar and the inbound policy on a virtual
//! clock: every instant in ms from `t0`.

use std::time::Instant;

use super::tests::*;
use super::*;
use crate::auth::{self, Algorithm, Challenge, DigestInput};
use crate::msg::Message;

const REALM: &str = "hotline";
const DOMAIN_URI: &str = "sip:192.0.2.100";

/// An operator's phone behind NAT: its Contact says 10.0.0.2, packets
/// come from 203.0.113.10.
fn phone() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "203.0.113.10:5062".parse().unwrap(),
    }
}

fn from_ip(ip: &str) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: format!("{ip}:5062").parse().unwrap(),
    }
}

fn registrar_with(cfg: EndpointConfig) -> Endpoint {
    let mut ep = Endpoint::new(EndpointConfig {
        advertised: "192.0.2.100:5060".parse().unwrap(),
        user_agent: "Hotline/test".into(),
        trusted_sources: vec!["192.0.2.1".parse().unwrap()],
        ..cfg
    });
    // alice's account is set to SHA-256; bob's has the default, MD5.
    ep.set_credentials(
        "alice",
        Some(Credential::from_password("alice", REALM, "secret").with_algorithm(Algorithm::Sha256)),
    );
    ep.set_credentials(
        "bob",
        Some(Credential::from_password("bob", REALM, "hunter2")),
    );
    ep
}

fn registrar() -> Endpoint {
    registrar_with(EndpointConfig::default())
}

/// A REGISTER from `phone()`.
struct Reg {
    user: &'static str,
    call_id: &'static str,
    cseq: u32,
    branch: String,
    contacts: Vec<String>,
    expires: Option<u32>,
    auth: Option<String>,
}

impl Reg {
    fn new(user: &'static str, cseq: u32) -> Reg {
        Reg {
            user,
            call_id: "reg-1@10.0.0.2",
            cseq,
            branch: format!("z9hG4bKreg-{user}-{cseq}"),
            contacts: vec![format!("<sip:{user}@10.0.0.2:5062>")],
            expires: None,
            auth: None,
        }
    }

    fn authed(mut self, auth: String) -> Reg {
        self.branch.push_str("-auth");
        self.auth = Some(auth);
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut s = format!(
            "REGISTER {DOMAIN_URI} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5062;rport;branch={}\r\n\
Max-Forwards: 70\r\nFrom: <sip:{u}@192.0.2.100>;tag=r{u}\r\nTo: <sip:{u}@192.0.2.100>\r\n\
Call-ID: {}\r\nCSeq: {} REGISTER\r\n",
            self.branch,
            self.call_id,
            self.cseq,
            u = self.user
        );
        for c in &self.contacts {
            s.push_str(&format!("Contact: {c}\r\n"));
        }
        if let Some(e) = self.expires {
            s.push_str(&format!("Expires: {e}\r\n"));
        }
        if let Some(a) = &self.auth {
            s.push_str(&format!("Authorization: {a}\r\n"));
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        s.into_bytes()
    }
}

fn headers_of(t: &Transmit, name: &str) -> Vec<String> {
    let Message::Response(r) = parse(t) else {
        panic!("not a response")
    };
    r.headers.get_all(name).map(str::to_string).collect()
}

/// The challenge for `alg` in a 401/407.
fn challenge_of(t: &Transmit, header: &str, alg: Algorithm) -> Challenge {
    headers_of(t, header)
        .iter()
        .flat_map(|v| auth::parse_auth_values(v))
        .filter_map(|v| Challenge::from_value(&v))
        .find(|c| c.algorithm == alg)
        .unwrap_or_else(|| panic!("no {alg:?} challenge"))
}

/// Credentials answering `c` with nonce-count `nc`, as a phone computes them.
fn digest(c: &Challenge, user: &str, password: &str, method: &str, uri: &str, nc: u32) -> String {
    let key = auth::ha1(c.algorithm, user, &c.realm, password);
    let nc = format!("{nc:08x}");
    let cnonce = "0a4f113b";
    let response = auth::response(
        c.algorithm,
        &key,
        &DigestInput {
            method,
            uri,
            nonce: &c.nonce,
            qop_auth: Some((&nc, cnonce)),
        },
    );
    format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", \
algorithm={}, cnonce=\"{cnonce}\", qop=auth, nc={nc}, opaque=\"{}\"",
        c.realm,
        c.nonce,
        c.algorithm.as_str(),
        c.opaque.as_deref().unwrap_or("")
    )
}

/// Sends `reg` without credentials and returns the 401's challenge.
fn challenged(ep: &mut Endpoint, now: Instant, reg: &Reg, alg: Algorithm) -> Challenge {
    ep.handle_input(now, phone(), &reg.bytes());
    let out = sent(ep);
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0]), 401);
    challenge_of(&out[0], "WWW-Authenticate", alg)
}

/// The challenge `from` gets for `reg` (alice's account: SHA-256).
fn challenged_from(ep: &mut Endpoint, now: Instant, from: Peer, reg: &Reg) -> Challenge {
    ep.handle_input(now, from, &reg.bytes());
    let out = sent(ep);
    assert_eq!(status(&out[0]), 401);
    challenge_of(&out[0], "WWW-Authenticate", Algorithm::Sha256)
}

/// A full registration of alice at `now`; returns the challenge (for later
/// nonce-counts) and the 200.
fn register_alice(ep: &mut Endpoint, now: Instant, expires: Option<u32>) -> (Challenge, Transmit) {
    let mut reg = Reg::new("alice", 1);
    reg.expires = expires;
    let c = challenged(ep, now, &reg, Algorithm::Sha256);
    let mut reg =
        Reg::new("alice", 2).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 1));
    reg.expires = expires;
    ep.handle_input(now, phone(), &reg.bytes());
    let mut out = sent(ep);
    assert_eq!(out.len(), 1);
    assert_eq!(
        status(&out[0]),
        200,
        "{}",
        String::from_utf8_lossy(&out[0].data)
    );
    (c, out.remove(0))
}

fn binding(uri: &str, expires_at: Instant) -> Binding {
    Binding {
        uri: uri.into(),
        peer: phone(),
        expires_at,
        instance: None,
        reg_id: None,
    }
}

#[test]
fn register_is_challenged_then_bound() {
    let t0 = Instant::now();
    let mut ep = registrar();
    ep.handle_input(t0, phone(), &Reg::new("alice", 1).bytes());
    let out = sent(&mut ep);
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0]), 401);
    assert_eq!(out[0].to, phone(), "rport: back to the NAT mapping");
    let challenges = headers_of(&out[0], "WWW-Authenticate");
    assert_eq!(
        challenges.len(),
        1,
        "one challenge: the account's algorithm"
    );
    assert!(challenges[0].contains("algorithm=SHA-256"));
    let sha = challenge_of(&out[0], "WWW-Authenticate", Algorithm::Sha256);
    assert_eq!(sha.realm, REALM);
    assert!(sha.qop_auth && !sha.stale && sha.opaque.is_some());
    assert_eq!(sha.nonce.len(), 32, "128 bits in hex");
    assert!(events(&mut ep).is_empty());

    let reg =
        Reg::new("alice", 2).authed(digest(&sha, "alice", "secret", "REGISTER", DOMAIN_URI, 1));
    ep.handle_input(at(t0, 10), phone(), &reg.bytes());
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 200);
    assert_eq!(
        headers_of(&out[0], "Contact"),
        ["<sip:alice@10.0.0.2:5062>;expires=3600"]
    );
    let expected = vec![binding("sip:alice@10.0.0.2:5062", at(t0, 3_600_010))];
    assert_eq!(
        events(&mut ep),
        [Event::Registered {
            user: "alice".into(),
            contacts: expected.clone()
        }]
    );
    assert_eq!(ep.bindings("alice"), expected);
    assert!(ep.bindings("bob").is_empty());
    // Once the transactions' timers have run, the binding's is the next.
    assert!(run_until(&mut ep, t0, 3_600_009).is_empty());
    assert_eq!(ep.poll_timeout().map(|d| ms(t0, d)), Some(3_600_010));
}

#[test]
fn md5_answers_are_accepted_too() {
    let t0 = Instant::now();
    let mut ep = registrar();
    let c = challenged(&mut ep, t0, &Reg::new("bob", 1), Algorithm::Md5);
    let reg = Reg::new("bob", 2).authed(digest(&c, "bob", "hunter2", "REGISTER", DOMAIN_URI, 1));
    ep.handle_input(t0, phone(), &reg.bytes());
    assert_eq!(statuses(&mut ep), [200]);
    assert_eq!(ep.bindings("bob").len(), 1);
}

/// Status line and header names: what could tell two answers apart.
fn shape(t: &Transmit) -> (u16, String, Vec<String>) {
    let Message::Response(r) = parse(t) else {
        panic!()
    };
    let names = r.headers.iter().map(|(n, _)| n.to_string()).collect();
    (r.status, r.reason, names)
}

/// Phones like baresip 1.0 fail a challenge set holding an algorithm they don't know: each
/// account gets one challenge, MD5 unless SHA-256 was chosen for it, and must answer in it.
#[test]
fn each_account_gets_one_challenge_in_its_own_algorithm() {
    let t0 = Instant::now();
    let mut ep = registrar();
    for (user, alg) in [
        ("bob", "MD5"),
        ("alice", "SHA-256"),
        ("mallory", "MD5"), // unknown: looks like a default account
    ] {
        ep.handle_input(t0, phone(), &Reg::new(user, 1).bytes());
        let out = sent(&mut ep);
        let challenges = headers_of(&out[0], "WWW-Authenticate");
        assert_eq!(challenges.len(), 1, "{user}: {challenges:?}");
        assert!(
            challenges[0].contains(&format!("algorithm={alg},")),
            "{user}: {challenges:?}"
        );
    }
    // bob answers in MD5 and registers.
    let c = challenged(&mut ep, t0, &Reg::new("bob", 1), Algorithm::Md5);
    let reg = Reg::new("bob", 2).authed(digest(&c, "bob", "hunter2", "REGISTER", DOMAIN_URI, 1));
    ep.handle_input(t0, phone(), &reg.bytes());
    assert_eq!(statuses(&mut ep), [200]);
    // alice's account is SHA-256: her right password in MD5 is refused.
    let sha = challenged(&mut ep, t0, &Reg::new("alice", 1), Algorithm::Sha256);
    let md5 = Challenge {
        algorithm: Algorithm::Md5,
        ..sha
    };
    let reg =
        Reg::new("alice", 2).authed(digest(&md5, "alice", "secret", "REGISTER", DOMAIN_URI, 1));
    ep.handle_input(t0, phone(), &reg.bytes());
    assert_eq!(statuses(&mut ep), [403]);
    assert!(ep.bindings("alice").is_empty());
}

#[test]
fn wrong_password_and_unknown_user_get_the_same_403() {
    let t0 = Instant::now();
    let mut ep = registrar();
    let c = challenged(&mut ep, t0, &Reg::new("alice", 1), Algorithm::Sha256);
    let wrong =
        Reg::new("alice", 2).authed(digest(&c, "alice", "guess", "REGISTER", DOMAIN_URI, 1));
    ep.handle_input(t0, phone(), &wrong.bytes());
    let wrong = sent(&mut ep);

    // An unknown user is challenged exactly like a known one...
    let c2 = challenged(&mut ep, t0, &Reg::new("mallory", 1), Algorithm::Md5);
    assert_eq!((c2.realm.as_str(), c2.qop_auth), (REALM, true));
    let unknown =
        Reg::new("mallory", 2).authed(digest(&c2, "mallory", "guess", "REGISTER", DOMAIN_URI, 1));
    ep.handle_input(t0, phone(), &unknown.bytes());
    let unknown = sent(&mut ep);
    // ...and refused exactly like a wrong password.
    assert_eq!(shape(&wrong[0]), shape(&unknown[0]));
    assert_eq!(shape(&wrong[0]).0, 403);
    assert!(headers_of(&wrong[0], "WWW-Authenticate").is_empty());
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.stats().auth_failures, 2);
    assert!(ep.bindings("alice").is_empty());
}

#[test]
fn an_expired_nonce_gets_a_stale_challenge() {
    let t0 = Instant::now();
    let mut ep = registrar();
    let c = challenged(&mut ep, t0, &Reg::new("alice", 1), Algorithm::Sha256);
    // The nonce lives 300 s: still good 1 ms before.
    let mut reg =
        Reg::new("alice", 2).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 1));
    ep.handle_input(at(t0, 299_999), phone(), &reg.bytes());
    assert_eq!(statuses(&mut ep), [200]);
    // At 300 s a right answer gets a new nonce with stale=true.
    reg = Reg::new("alice", 3).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 2));
    ep.handle_input(at(t0, 300_000), phone(), &reg.bytes());
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 401);
    let fresh = challenge_of(&out[0], "WWW-Authenticate", Algorithm::Sha256);
    assert!(fresh.stale);
    assert_ne!(fresh.nonce, c.nonce);
    assert!(
        headers_of(&out[0], "WWW-Authenticate")
            .iter()
            .all(|h| h.ends_with(", stale=true"))
    );
    // A wrong password on an expired nonce is only challenged again: just as a nonce
    // we never issued, it is no proof the sender saw our challenge.
    reg = Reg::new("alice", 4).authed(digest(&c, "alice", "guess", "REGISTER", DOMAIN_URI, 3));
    ep.handle_input(at(t0, 300_000), phone(), &reg.bytes());
    assert_eq!(statuses(&mut ep), [401]);
    assert_eq!(ep.stats().auth_failures, 0);
    // The new nonce works.
    reg = Reg::new("alice", 5).authed(digest(&fresh, "alice", "secret", "REGISTER", DOMAIN_URI, 1));
    ep.handle_input(at(t0, 300_001), phone(), &reg.bytes());
    assert_eq!(statuses(&mut ep), [200]);
    // A nonce we never issued (say, before a restart) is stale, not an error.
    let mut forged = fresh.clone();
    forged.nonce = "00112233445566778899aabbccddeeff".into();
    reg = Reg::new("alice", 6).authed(digest(
        &forged, "alice", "secret", "REGISTER", DOMAIN_URI, 1,
    ));
    ep.handle_input(at(t0, 300_002), phone(), &reg.bytes());
    let out = sent(&mut ep);
    assert!(challenge_of(&out[0], "WWW-Authenticate", Algorithm::Sha256).stale);
}

#[test]
fn nonce_counts_must_increase_and_nonces_stay_with_their_user() {
    let t0 = Instant::now();
    let mut ep = registrar();
    let (c, _) = register_alice(&mut ep, t0, None);
    events(&mut ep);
    // The same nc again (a replayed request, new branch and CSeq): refused
    // with a fresh challenge, nothing changes.
    let mut replay =
        Reg::new("alice", 3).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 1));
    replay.expires = Some(0);
    ep.handle_input(at(t0, 1000), phone(), &replay.bytes());
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 401);
    assert_eq!(ep.bindings("alice").len(), 1, "the replay removed nothing");
    // The next count is fine, and a lower one after it is not.
    let mut next =
        Reg::new("alice", 4).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 5));
    next.contacts.clear();
    ep.handle_input(at(t0, 2000), phone(), &next.bytes());
    assert_eq!(statuses(&mut ep), [200]);
    let mut lower =
        Reg::new("alice", 5).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 4));
    lower.contacts.clear();
    ep.handle_input(at(t0, 3000), phone(), &lower.bytes());
    assert_eq!(statuses(&mut ep), [401]);
    // bob can't use alice's nonce, even with his own right password (in his MD5).
    let md5 = Challenge {
        algorithm: Algorithm::Md5,
        ..c.clone()
    };
    let bob = Reg::new("bob", 1).authed(digest(&md5, "bob", "hunter2", "REGISTER", DOMAIN_URI, 9));
    ep.handle_input(at(t0, 4000), phone(), &bob.bytes());
    assert_eq!(statuses(&mut ep), [401]);
    assert!(ep.bindings("bob").is_empty());
}

#[test]
fn credentials_for_another_realm_are_no_credentials() {
    let t0 = Instant::now();
    let mut ep = registrar();
    let mut c = challenged(&mut ep, t0, &Reg::new("alice", 1), Algorithm::Sha256);
    c.realm = "elsewhere".into();
    let reg = Reg::new("alice", 2).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 1));
    ep.handle_input(t0, phone(), &reg.bytes());
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 401);
    assert!(!challenge_of(&out[0], "WWW-Authenticate", Algorithm::Sha256).stale);
    // And a digest over another Request-URI doesn't count for this one.
    let c = challenge_of(&out[0], "WWW-Authenticate", Algorithm::Sha256);
    let reg =
        Reg::new("alice", 3).authed(digest(&c, "alice", "secret", "REGISTER", "sip:other", 1));
    ep.handle_input(t0, phone(), &reg.bytes());
    assert_eq!(statuses(&mut ep), [403]);
}

#[test]
fn only_your_own_aor() {
    let t0 = Instant::now();
    let mut ep = registrar();
    let c = challenged(&mut ep, t0, &Reg::new("alice", 1), Algorithm::Sha256);
    // bob's credentials on a REGISTER for alice's AOR.
    let reg = Reg::new("alice", 2).authed(digest(&c, "bob", "hunter2", "REGISTER", DOMAIN_URI, 1));
    ep.handle_input(t0, phone(), &reg.bytes());
    assert_eq!(statuses(&mut ep), [403]);
    assert!(ep.bindings("alice").is_empty() && ep.bindings("bob").is_empty());
}

#[test]
fn bindings_expire_at_exactly_their_instant() {
    let t0 = Instant::now();
    let mut ep = registrar();
    let (_, ok) = register_alice(&mut ep, t0, Some(60));
    assert_eq!(
        headers_of(&ok, "Contact"),
        ["<sip:alice@10.0.0.2:5062>;expires=60"]
    );
    events(&mut ep);
    assert!(run_until(&mut ep, t0, 59_999).is_empty());
    assert_eq!(ep.poll_timeout().map(|d| ms(t0, d)), Some(60_000));
    ep.handle_timeout(at(t0, 59_999));
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.bindings("alice").len(), 1);
    ep.handle_timeout(at(t0, 60_000));
    assert_eq!(
        events(&mut ep),
        [Event::Registered {
            user: "alice".into(),
            contacts: vec![]
        }]
    );
    assert!(ep.bindings("alice").is_empty());
    assert!(run_until(&mut ep, t0, 200_000).is_empty());
    assert_eq!(ep.poll_timeout(), None);
}

#[test]
fn refresh_extends_without_an_event() {
    let t0 = Instant::now();
    let mut ep = registrar();
    let (c, _) = register_alice(&mut ep, t0, Some(60));
    events(&mut ep);
    let mut refresh =
        Reg::new("alice", 3).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 2));
    refresh.expires = Some(60);
    ep.handle_input(at(t0, 30_000), phone(), &refresh.bytes());
    let out = sent(&mut ep);
    assert_eq!(
        headers_of(&out[0], "Contact"),
        ["<sip:alice@10.0.0.2:5062>;expires=60"]
    );
    assert!(
        events(&mut ep).is_empty(),
        "same contacts: no change to report"
    );
    assert_eq!(ep.registrar.next_expiry().map(|d| ms(t0, d)), Some(90_000));
    // Fetching (no Contact) lists the remaining time, rounded up.
    let mut fetch =
        Reg::new("alice", 4).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 3));
    fetch.contacts.clear();
    ep.handle_input(at(t0, 40_500), phone(), &fetch.bytes());
    let out = sent(&mut ep);
    assert_eq!(
        headers_of(&out[0], "Contact"),
        ["<sip:alice@10.0.0.2:5062>;expires=50"]
    );
}

#[test]
fn several_contacts_unregister_one_then_all() {
    let t0 = Instant::now();
    let mut ep = registrar();
    let (c, _) = register_alice(&mut ep, t0, Some(600));
    events(&mut ep);
    // A second device, two Contacts in one header line, one expires param.
    let mut reg =
        Reg::new("alice", 3).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 2));
    reg.call_id = "reg-2@10.0.0.3";
    reg.contacts = vec!["<sip:alice@10.0.0.3:5060>;expires=120, <sip:alice@10.0.0.3:5080>".into()];
    reg.expires = Some(300);
    ep.handle_input(t0, phone(), &reg.bytes());
    let out = sent(&mut ep);
    assert_eq!(
        headers_of(&out[0], "Contact"),
        [
            "<sip:alice@10.0.0.2:5062>;expires=600",
            "<sip:alice@10.0.0.3:5060>;expires=120",
            "<sip:alice@10.0.0.3:5080>;expires=300",
        ]
    );
    let Some(Event::Registered { contacts, .. }) = events(&mut ep).pop() else {
        panic!()
    };
    assert_eq!(contacts.len(), 3);
    // expires=0 on one contact removes that one.
    let mut one =
        Reg::new("alice", 4).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 3));
    one.call_id = "reg-2@10.0.0.3";
    one.contacts = vec!["<sip:alice@10.0.0.3:5080>;expires=0".into()];
    ep.handle_input(at(t0, 1000), phone(), &one.bytes());
    assert_eq!(statuses(&mut ep), [200]);
    let Some(Event::Registered { contacts, .. }) = events(&mut ep).pop() else {
        panic!()
    };
    let uris: Vec<&str> = contacts.iter().map(|b| b.uri.as_str()).collect();
    assert_eq!(uris, ["sip:alice@10.0.0.2:5062", "sip:alice@10.0.0.3:5060"]);
    // `*` needs Expires: 0.
    let mut star =
        Reg::new("alice", 5).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 4));
    star.contacts = vec!["*".into()];
    ep.handle_input(at(t0, 2000), phone(), &star.bytes());
    assert_eq!(statuses(&mut ep), [400]);
    star = Reg::new("alice", 6).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 5));
    star.contacts = vec!["*".into()];
    star.expires = Some(0);
    ep.handle_input(at(t0, 2000), phone(), &star.bytes());
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 200);
    assert!(headers_of(&out[0], "Contact").is_empty());
    assert_eq!(
        events(&mut ep),
        [Event::Registered {
            user: "alice".into(),
            contacts: vec![]
        }]
    );
    run_until(&mut ep, t0, 100_000);
    assert_eq!(ep.poll_timeout(), None);
}

#[test]
fn instance_and_reg_id_are_kept_and_identify_the_device() {
    let t0 = Instant::now();
    let mut ep = registrar();
    let instance = "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";
    let mut reg = Reg::new("alice", 1);
    reg.contacts = vec![format!(
        "<sip:alice@10.0.0.2:5062>;+sip.instance=\"{instance}\";reg-id=1"
    )];
    let c = challenged(&mut ep, t0, &reg, Algorithm::Sha256);
    let mut reg = Reg {
        auth: Some(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 1)),
        branch: "z9hG4bKinst1".into(),
        cseq: 2,
        ..reg
    };
    ep.handle_input(t0, phone(), &reg.bytes());
    let out = sent(&mut ep);
    assert_eq!(
        headers_of(&out[0], "Contact"),
        [format!(
            "<sip:alice@10.0.0.2:5062>;expires=3600;+sip.instance=\"{instance}\";reg-id=1"
        )]
    );
    let b = &ep.bindings("alice")[0];
    assert_eq!((b.instance.as_deref(), b.reg_id), (Some(instance), Some(1)));
    events(&mut ep);
    // The same device from a new address (new Call-ID after a reboot):
    // its binding moves rather than doubling.
    reg.contacts = vec![format!(
        "<sip:alice@10.0.0.9:5062>;+sip.instance=\"{instance}\";reg-id=1"
    )];
    reg.call_id = "reg-after-reboot";
    reg.cseq = 1;
    reg.branch = "z9hG4bKinst2".into();
    reg.auth = Some(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 2));
    ep.handle_input(at(t0, 10), from_ip("203.0.113.11"), &reg.bytes());
    // The nonce was sent to the old address: challenged again there, then accepted.
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 401);
    let fresh = challenge_of(&out[0], "WWW-Authenticate", Algorithm::Sha256);
    assert!(fresh.stale);
    reg.cseq = 2;
    reg.branch = "z9hG4bKinst3".into();
    reg.auth = Some(digest(&fresh, "alice", "secret", "REGISTER", DOMAIN_URI, 1));
    ep.handle_input(at(t0, 10), from_ip("203.0.113.11"), &reg.bytes());
    assert_eq!(statuses(&mut ep), [200]);
    let bindings = ep.bindings("alice");
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].uri, "sip:alice@10.0.0.9:5062");
    assert_eq!(bindings[0].peer, from_ip("203.0.113.11"));
    assert_eq!(events(&mut ep).len(), 1);
}

#[test]
fn too_brief_is_423_and_too_long_is_cut() {
    let t0 = Instant::now();
    let mut ep = registrar();
    let mut reg = Reg::new("alice", 1);
    reg.expires = Some(30);
    let c = challenged(&mut ep, t0, &reg, Algorithm::Sha256);
    let mut reg =
        Reg::new("alice", 2).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 1));
    reg.expires = Some(30);
    ep.handle_input(t0, phone(), &reg.bytes());
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 423);
    assert_eq!(header(&out[0], "Min-Expires").as_deref(), Some("60"));
    assert!(ep.bindings("alice").is_empty());
    let mut reg =
        Reg::new("alice", 3).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 2));
    reg.expires = Some(86_400);
    ep.handle_input(t0, phone(), &reg.bytes());
    let out = sent(&mut ep);
    assert_eq!(
        headers_of(&out[0], "Contact"),
        ["<sip:alice@10.0.0.2:5062>;expires=3600"]
    );
}

#[test]
fn same_call_id_lower_cseq_is_refused() {
    let t0 = Instant::now();
    let mut ep = registrar();
    let (c, _) = register_alice(&mut ep, t0, None);
    events(&mut ep);
    // CSeq 2 made the binding; CSeq 1 with the same Call-ID is old news.
    let mut old =
        Reg::new("alice", 1).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 2));
    old.expires = Some(0);
    ep.handle_input(t0, phone(), &old.bytes());
    let out = sent(&mut ep);
    assert_eq!(status_line(&out[0]), (500, "Out of order CSeq".into()));
    assert_eq!(ep.bindings("alice").len(), 1);
    assert!(events(&mut ep).is_empty());
}

#[test]
fn tcp_bindings_keep_the_connection() {
    let t0 = Instant::now();
    let mut ep = registrar();
    let conn = Peer {
        transport: Transport::Tcp,
        addr: "203.0.113.10:40123".parse().unwrap(),
    };
    let tcp = |reg: &Reg| with_bytes(&reg.bytes(), "SIP/2.0/UDP", "SIP/2.0/TCP");
    let reg = Reg::new("alice", 1);
    ep.handle_input(t0, conn, &tcp(&reg));
    let out = sent(&mut ep);
    assert_eq!(out[0].to, conn);
    let c = challenge_of(&out[0], "WWW-Authenticate", Algorithm::Sha256);
    let reg = Reg::new("alice", 2).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 1));
    ep.handle_input(t0, conn, &tcp(&reg));
    assert_eq!(statuses(&mut ep), [200]);
    assert_eq!(ep.bindings("alice")[0].peer, conn);
}

fn with_bytes(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .replacen(from, to, 1)
        .into_bytes()
}

#[test]
fn removing_a_user_drops_their_bindings() {
    let t0 = Instant::now();
    let mut ep = registrar();
    register_alice(&mut ep, t0, None);
    events(&mut ep);
    ep.set_credentials("alice", None);
    assert_eq!(
        events(&mut ep),
        [Event::Registered {
            user: "alice".into(),
            contacts: vec![]
        }]
    );
    ep.set_credentials("bob", None);
    assert!(events(&mut ep).is_empty(), "bob had none");
}

#[test]
fn answers_to_challenges_we_never_sent_are_no_failures() {
    // A blind spoofer (using an office's address) never sees our nonces: its guesses
    // are challenged again and count against nobody.
    let t0 = Instant::now();
    let mut ep = registrar();
    let c = challenged(&mut ep, t0, &Reg::new("alice", 1), Algorithm::Sha256);
    let forged = Challenge {
        nonce: "0123456789abcdef0123456789abcdef".into(),
        ..c.clone()
    };
    for i in 0..10u32 {
        let reg = Reg::new("alice", 10 + i)
            .authed(digest(&forged, "alice", "guess", "REGISTER", DOMAIN_URI, 1));
        ep.handle_input(at(t0, u64::from(i)), phone(), &reg.bytes());
        assert_eq!(statuses(&mut ep), [401], "guess {i}");
    }
    // Nor is a nonce the spoofer got at its own address, replayed as the office's.
    let own = challenged_from(
        &mut ep,
        t0,
        from_ip("198.51.100.66"),
        &Reg::new("alice", 50),
    );
    for i in 0..10u32 {
        let reg = Reg::new("alice", 60 + i).authed(digest(
            &own,
            "alice",
            "guess",
            "REGISTER",
            DOMAIN_URI,
            1 + i,
        ));
        ep.handle_input(at(t0, 100 + u64::from(i)), phone(), &reg.bytes());
        assert_eq!(statuses(&mut ep), [401], "replayed guess {i}");
    }
    assert_eq!(ep.stats().auth_failures, 0);
    assert!(security_events(&mut ep).is_empty());
    // The phone itself still registers.
    let reg =
        Reg::new("alice", 30).authed(digest(&c, "alice", "secret", "REGISTER", DOMAIN_URI, 1));
    ep.handle_input(at(t0, 20), phone(), &reg.bytes());
    assert_eq!(statuses(&mut ep), [200]);
}

#[test]
fn failed_authentications_throttle_the_source() {
    let t0 = Instant::now();
    let mut ep = registrar();
    // Five wrong answers at t0 + i s.
    for i in 0..5u32 {
        let now = at(t0, u64::from(i) * 1000);
        let c = challenged(
            &mut ep,
            now,
            &Reg::new("alice", 10 * i + 1),
            Algorithm::Sha256,
        );
        let reg = Reg::new("alice", 10 * i + 2)
            .authed(digest(&c, "alice", "nope", "REGISTER", DOMAIN_URI, 1));
        ep.handle_input(now, phone(), &reg.bytes());
        assert_eq!(statuses(&mut ep), [403], "attempt {i}");
    }
    // Blocked from the fifth failure (4 s) for 60 s: 403, no challenge,
    // even with the right password.
    let blocked = |ep: &mut Endpoint, ms_: u64, cseq: u32| {
        ep.handle_input(at(t0, ms_), phone(), &Reg::new("alice", cseq).bytes());
        let out = sent(ep);
        (
            status(&out[0]),
            headers_of(&out[0], "WWW-Authenticate").is_empty(),
        )
    };
    let security = security_events(&mut ep);
    let ip = phone().addr.ip().to_string();
    let alice = Some("alice".to_string());
    assert_eq!(
        security
            .iter()
            .filter(|e| e.0 == SecurityKind::AuthFailed)
            .count(),
        5
    );
    assert_eq!(
        security.last(),
        Some(&(SecurityKind::AuthBlocked, ip.clone(), alice.clone()))
    );
    assert_eq!(blocked(&mut ep, 5000, 100), (403, true));
    assert_eq!(
        security_events(&mut ep),
        [(SecurityKind::AuthThrottled, ip, alice)]
    );
    // Another phone behind the same address (an office's NAT) is not locked out.
    ep.handle_input(at(t0, 5000), phone(), &Reg::new("bob", 1).bytes());
    assert_eq!(statuses(&mut ep), [401]);
    assert_eq!(blocked(&mut ep, 63_999, 101), (403, true));
    // Another address isn't affected.
    ep.handle_input(
        at(t0, 5000),
        from_ip("203.0.113.99"),
        &Reg::new("bob", 1).bytes(),
    );
    assert_eq!(statuses(&mut ep), [401]);
    // Untrusted INVITEs from the blocked address are refused the same way.
    let mut inv = Req::invite();
    inv.branch = "z9hG4bKblocked".into();
    ep.handle_input(at(t0, 6000), phone(), &inv.bytes());
    assert_eq!(statuses(&mut ep), [403]);
    assert!(ep.stats().auth_throttled >= 3);
    // Cooled down: challenged again.
    assert_eq!(blocked(&mut ep, 64_000, 102), (401, false));
}

#[test]
fn the_rate_limit_answers_503_or_drops() {
    let t0 = Instant::now();
    let mut ep = registrar_with(EndpointConfig {
        rate_limit: Some(crate::limits::RateLimit {
            per_second: 2,
            burst: 3,
        }),
        ..Default::default()
    });
    let options = |i: u32| {
        let mut r = Req::out_of_dialog("OPTIONS");
        r.branch = format!("z9hG4bKopt{i}");
        r.bytes()
    };
    for i in 0..3 {
        ep.handle_input(t0, phone(), &options(i));
        assert_eq!(
            statuses(&mut ep),
            [200],
            "OPTIONS stays open within the limit"
        );
    }
    ep.handle_input(t0, phone(), &options(3));
    assert!(sent(&mut ep).is_empty(), "over the limit: dropped");
    ep.handle_input(t0, phone(), &Reg::new("alice", 1).bytes());
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 503);
    assert_eq!(headers_of(&out[0], "Retry-After"), ["5"]);
    let limited = security_events(&mut ep);
    assert!(!limited.is_empty());
    assert!(
        limited
            .iter()
            .all(|e| e.0 == SecurityKind::RateLimited && e.1 == phone().addr.ip().to_string())
    );
    let mut inv = Req::invite();
    inv.branch = "z9hG4bKlimited".into();
    ep.handle_input(t0, phone(), &inv.bytes());
    assert_eq!(statuses(&mut ep), [503]);
    // One token back after 1/2 s.
    ep.handle_input(at(t0, 499), phone(), &options(4));
    assert!(sent(&mut ep).is_empty());
    ep.handle_input(at(t0, 500), phone(), &options(5));
    assert_eq!(statuses(&mut ep), [200]);
    // The trunk isn't limited.
    for i in 10..20 {
        ep.handle_input(t0, udp(), &options(i));
        assert_eq!(statuses(&mut ep), [200]);
    }
    assert_eq!(ep.stats().rate_limited, 4);
}

// ----------------------------------------------------------- inbound INVITEs

/// An INVITE from an operator's phone (untrusted address).
fn operator_invite(branch: &str, cseq: u32, auth: Option<&str>) -> Vec<u8> {
    let mut inv = Req::invite();
    inv.branch = branch.into();
    inv.cseq = cseq;
    if let Some(a) = auth {
        inv.extra.push_str(&format!("Proxy-Authorization: {a}\r\n"));
    }
    inv.bytes()
}

const INVITE_URI: &str = "sip:1000@192.0.2.100";

#[test]
fn untrusted_invites_must_authenticate_as_an_operator() {
    let t0 = Instant::now();
    let mut ep = registrar();
    ep.handle_input(t0, phone(), &operator_invite("z9hG4bKop1", 1, None));
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 407);
    assert_eq!(headers_of(&out[0], "Proxy-Authenticate").len(), 1);
    assert!(events(&mut ep).is_empty());
    // The ACK to the 407 belongs to its transaction.
    let mut ack = Req::in_dialog("ACK", &to_tag(&out[0]).unwrap(), 1);
    ack.branch = "z9hG4bKop1".into();
    ep.handle_input(t0, phone(), &ack.bytes());
    assert!(sent(&mut ep).is_empty());
    let c = challenge_of(&out[0], "Proxy-Authenticate", Algorithm::Sha256);

    // A wrong password: 403, and no call.
    let bad = digest(&c, "alice", "nope", "INVITE", INVITE_URI, 1);
    ep.handle_input(t0, phone(), &operator_invite("z9hG4bKop2", 2, Some(&bad)));
    assert_eq!(statuses(&mut ep), [403]);
    // Somebody who isn't an operator: the very same 403.
    let nobody = digest(&c, "mallory", "nope", "INVITE", INVITE_URI, 1);
    ep.handle_input(
        t0,
        phone(),
        &operator_invite("z9hG4bKop3", 3, Some(&nobody)),
    );
    assert_eq!(statuses(&mut ep), [403]);
    assert!(events(&mut ep).is_empty());

    // The operator: a call, marked as theirs.
    let good = digest(&c, "alice", "secret", "INVITE", INVITE_URI, 1);
    ep.handle_input(t0, phone(), &operator_invite("z9hG4bKop4", 4, Some(&good)));
    assert_eq!(statuses(&mut ep), [100]);
    let Some(Event::IncomingCall { origin, source, .. }) = events(&mut ep).pop() else {
        panic!("no call")
    };
    assert_eq!(origin, Origin::Operator("alice".into()));
    assert_eq!(source, phone());
    // Credentials in an INVITE from the trunk change nothing: it is the trunk.
    let mut inv = Req::invite();
    inv.branch = "z9hG4bKtrunk".into();
    inv.call_id = "trunk-call";
    inv.extra
        .push_str(&format!("Proxy-Authorization: {good}\r\n"));
    ep.handle_input(t0, udp(), &inv.bytes());
    assert_eq!(statuses(&mut ep), [100]);
    let Some(Event::IncomingCall { origin, .. }) = events(&mut ep).pop() else {
        panic!()
    };
    assert_eq!(origin, Origin::Trunk);
}

#[test]
fn trusted_sources_may_be_networks() {
    let t0 = Instant::now();
    let mut ep = registrar_with(EndpointConfig {
        ..Default::default()
    });
    ep.set_trusted_sources(vec!["203.0.113.0/28".parse().unwrap()]);
    ep.handle_input(t0, phone(), &operator_invite("z9hG4bKnet", 1, None));
    assert_eq!(statuses(&mut ep), [100]);
    ep.handle_input(
        t0,
        from_ip("203.0.113.16"),
        &operator_invite("z9hG4bKnet2", 1, None),
    );
    assert_eq!(statuses(&mut ep), [407]);
}

#[test]
fn max_calls_answers_503_beyond_the_cap() {
    let t0 = Instant::now();
    let mut ep = registrar_with(EndpointConfig {
        max_calls: Some(1),
        ..Default::default()
    });
    ep.handle_input(t0, udp(), &Req::invite().bytes());
    assert_eq!(statuses(&mut ep), [100]);
    let Some(Event::IncomingCall { call, .. }) = events(&mut ep).pop() else {
        panic!()
    };
    let mut second = Req::invite();
    second.branch = "z9hG4bKsecond".into();
    second.call_id = "call-2@192.0.2.1";
    ep.handle_input(t0, udp(), &second.bytes());
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 503);
    assert_eq!(headers_of(&out[0], "Retry-After"), ["10"]);
    assert_eq!(
        security_events(&mut ep),
        [(
            SecurityKind::CallRefused(503),
            udp().addr.ip().to_string(),
            None
        )]
    );
    assert_eq!(ep.stats().calls_over_limit, 1);
    // Once the first call is over there is room again.
    ep.reject(t0, call, 486);
    sent(&mut ep);
    second.branch = "z9hG4bKthird".into();
    second.call_id = "call-3@192.0.2.1";
    ep.handle_input(t0, udp(), &second.bytes());
    assert_eq!(statuses(&mut ep), [100]);
}
