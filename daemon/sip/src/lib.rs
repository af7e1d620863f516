//! SIP (RFC 3261) for Hotline, sans-IO: no sockets, no tasks, no clock.
//!
//! The daemon feeds datagrams / framed TCP messages and timer ticks into an
//! [`Endpoint`], passing `now` explicitly, and drains what it wants sent
//! ([`Transmit`]) and what happened ([`Event`]). The endpoint answers calls,
//! places them, registers operators' phones and authenticates them with
//! digest; which call goes where is the daemon's business, not this crate's.

pub mod auth;
pub mod dialog;
pub mod endpoint;
pub mod limits;
pub mod msg;
pub mod registrar;
pub mod sdp;
pub mod transaction;

pub use auth::{Algorithm, Credential, ha1};
pub use endpoint::{
    CallHandle, EndReason, Endpoint, EndpointConfig, Event, Origin, OutgoingCall, ReferTarget,
    SecurityEvent, SecurityKind, SipStats, Transmit,
};
pub use limits::{IpNet, RateLimit};
pub use registrar::Binding;

/// The transports the endpoint speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// Reliable transports don't retransmit and keep no absorbing timers (§17).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }

    /// The token used in Via headers.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// The other end of a message: transport and socket address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: Transport,
    pub addr: std::net::SocketAddr,
}
