//! SIP over TCP: accepting connections within limits, framing what they send, and
//! closing the ones that hold a slot without using it.
//!
//! A peer (an IPv4 address, an IPv6 /64) gets at most `max_per_address` connections and
//! everyone together `max_connections`; beyond that a new connection is closed at once.
//! A message must arrive whole within `message_timeout` of its first byte, and a new
//! connection must send a whole SIP message (keep-alives don't count) within that time,
//! so a slowloris peer is cut off in seconds; a connection that is quiet between
//! messages is closed after `idle_timeout`, which is longer than the longest
//! registration, so a registered phone's refreshes keep it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotline_sip::{Peer, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::actors::SipInput;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpLimits {
    pub max_connections: usize,
    pub max_per_address: usize,
    pub message_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: 1024,
            max_per_address: 128,
            message_timeout: Duration::from_secs(10),
            // The registrar grants at most 3600 s.
            idle_timeout: Duration::from_secs(3900),
        }
    }
}

/// Connections open, in all and per address.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// The connection slots; a [`Slot`] gives its place back when dropped.
#[derive(Clone, Debug, Default)]
pub struct Slots {
    limits: Option<TcpLimits>,
    open: Arc<Mutex<Open>>,
}

/// Why a connection was refused a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    Total,
    Address,
}

#[derive(Debug)]
pub struct Slot {
    ip: IpAddr,
    open: Arc<Mutex<Open>>,
}

impl Slots {
    pub fn new(limits: TcpLimits) -> Slots {
        Slots {
            limits: Some(limits),
            open: Arc::default(),
        }
    }

    pub fn take(&self, ip: IpAddr) -> Result<Slot, Full> {
        let limits = self.limits.unwrap_or_default();
        let ip = host(ip);
        // A poisoned lock only means another connection's task panicked mid-count.
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= limits.max_connections {
            return Err(Full::Total);
        }
        let mine = open.per_address.entry(ip).or_default();
        if *mine >= limits.max_per_address {
            return Err(Full::Address);
        }
        *mine += 1;
        open.total += 1;
        Ok(Slot {
            ip,
            open: self.open.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.per_address.remove(&self.ip);
            }
        }
    }
}

/// The peer as a whole: an IPv6 host has a /64 of its own.
fn host(ip: IpAddr) -> IpAddr {
    hotline_sip::limits::source_host(ip)
}

/// Accepts connections until the SIP task is gone.
pub async fn accept_loop(listener: TcpListener, limits: TcpLimits, tx: mpsc::Sender<SipInput>) {
    let slots = Slots::new(limits);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => match slots.take(peer.ip()) {
                Ok(slot) => {
                    tokio::spawn(connection(stream, peer, limits, slot, tx.clone()));
                }
                Err(full) => {
                    let why = match full {
                        Full::Total => "all connections in use (sip.tcp_max_connections)",
                        Full::Address => "too many from this address (sip.tcp_max_per_address)",
                    };
                    crate::security::log(
                        "sip tcp refused",
                        peer.ip(),
                        &format!("reason=\"{why}\""),
                    );
                    drop(stream);
                }
            },
            Err(e) => {
                warn!("sip tcp accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    limits: TcpLimits,
    _slot: Slot,
    tx: mpsc::Sender<SipInput>,
) {
    let (mut reader, mut writer) = stream.into_split();
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);
    if tx
        .send(SipInput::TcpOpened {
            peer,
            writer: out_tx,
        })
        .await
        .is_err()
    {
        return;
    }
    let write_task = tokio::spawn(async move {
        while let Some(data) = out_rx.recv().await {
            if writer.write_all(&data).await.is_err() {
                break;
            }
        }
    });
    let mut framer = hotline_sip::msg::StreamFramer::new();
    let mut buf = vec![0u8; 16 * 1024];
    let start = tokio::time::Instant::now();
    // The first message is due like any message: from the connection's start.
    let mut message_started = Some(start);
    let mut last_activity = start;
    // Until a whole SIP message came, the connection is on the message clock: CRLF
    // keep-alives alone don't earn the idle time.
    let mut delivered = false;
    'read: loop {
        let deadline = match message_started {
            Some(t) => t + limits.message_timeout,
            None => last_activity + limits.idle_timeout,
        };
        let n = match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => n,
            Err(_) => {
                if message_started.is_some() {
                    crate::security::log(
                        "sip tcp timeout",
                        peer.ip(),
                        "reason=\"no whole message in time\"",
                    );
                } else {
                    info!(
                        "sip tcp {peer}: idle for {:?}; closing",
                        limits.idle_timeout
                    );
                }
                break;
            }
        };
        let now = tokio::time::Instant::now();
        framer.push(&buf[..n]);
        let mut completed = false;
        loop {
            match framer.next_message() {
                Ok(Some(data)) => {
                    completed = true;
                    delivered = true;
                    let from = Peer {
                        transport: Transport::Tcp,
                        addr: peer,
                    };
                    if tx.send(SipInput::Message { from, data }).await.is_err() {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // A stream we can't frame can't be resynchronised: close it.
                    info!("sip tcp {peer}: {e}; closing");
                    break 'read;
                }
            }
        }
        // Between messages (keep-alive CRLFs included) the idle clock runs; a message
        // begun has its own, from its first byte.
        if !framer.is_mid_message() && delivered {
            message_started = None;
            last_activity = now;
        } else if completed || message_started.is_none() {
            message_started = Some(now);
        }
    }
    write_task.abort();
    let _ = tx.send(SipInput::TcpClosed { peer }).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn slots_are_capped_in_all_and_per_address_and_given_back() {
        let slots = Slots::new(TcpLimits {
            max_connections: 3,
            max_per_address: 2,
            ..TcpLimits::default()
        });
        let a1 = slots.take(ip("192.0.2.1")).unwrap();
        let _a2 = slots.take(ip("192.0.2.1")).unwrap();
        assert_eq!(slots.take(ip("192.0.2.1")).unwrap_err(), Full::Address);
        let _b1 = slots.take(ip("192.0.2.2")).unwrap();
        assert_eq!(slots.take(ip("192.0.2.3")).unwrap_err(), Full::Total);
        drop(a1);
        assert!(slots.take(ip("192.0.2.3")).is_ok());
    }

    /// A listener with `limits` on loopback, and the SIP task's end of its channel.
    async fn listen(limits: TcpLimits) -> (SocketAddr, mpsc::Receiver<SipInput>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(accept_loop(listener, limits, tx));
        (addr, rx)
    }

    /// Reads until the server closes the connection; how long that took.
    async fn until_closed(stream: &mut TcpStream) -> Duration {
        let start = tokio::time::Instant::now();
        let mut buf = [0u8; 64];
        while stream.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        start.elapsed()
    }

    #[tokio::test]
    async fn a_message_that_never_ends_is_cut_off() {
        let limits = TcpLimits {
            message_timeout: Duration::from_millis(300),
            ..TcpLimits::default()
        };
        let (addr, mut rx) = listen(limits).await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        // Half a request line, then a byte now and then, never the end of the header.
        slow.write_all(b"OPTIONS sip:a@b SIP/2.0\r\n")
            .await
            .unwrap();
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            slow.write_all(b"X").await.unwrap();
        }
        let took = until_closed(&mut slow).await;
        assert!(
            took < Duration::from_millis(400),
            "closed {took:?} after the last byte"
        );
        let mut messages = 0;
        while let Ok(input) = rx.try_recv() {
            messages += usize::from(matches!(input, SipInput::Message { .. }));
        }
        assert_eq!(messages, 0);
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed_and_a_busy_one_is_not() {
        let limits = TcpLimits {
            message_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(600),
            ..TcpLimits::default()
        };
        let (addr, mut rx) = listen(limits).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let took = until_closed(&mut silent).await;
        assert!(took < Duration::from_millis(500), "silent for {took:?}");

        // Whole messages (and keep-alives) keep a connection; silence after them ends it
        // after the idle time.
        let mut phone = TcpStream::connect(addr).await.unwrap();
        let msg = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n";
        for _ in 0..3 {
            phone.write_all(msg).await.unwrap();
            tokio::time::sleep(Duration::from_millis(250)).await;
            phone.write_all(b"\r\n\r\n").await.unwrap();
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let took = until_closed(&mut phone).await;
        assert!(
            took > Duration::from_millis(50) && took < Duration::from_millis(700),
            "idle close after {took:?}"
        );
        let mut messages = 0;
        while let Ok(input) = rx.try_recv() {
            messages += usize::from(matches!(input, SipInput::Message { .. }));
        }
        assert_eq!(messages, 3);
    }

    #[tokio::test]
    async fn keep_alives_alone_do_not_hold_a_connection() {
        let limits = TcpLimits {
            message_timeout: Duration::from_millis(300),
            ..TcpLimits::default()
        };
        let (addr, _rx) = listen(limits).await;
        let mut idler = TcpStream::connect(addr).await.unwrap();
        let start = tokio::time::Instant::now();
        // CRLFs every 100 ms, never a message: closed on the message clock.
        while idler.write_all(b"\r\n\r\n").await.is_ok() && start.elapsed() < Duration::from_secs(2)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let took = start.elapsed();
        assert!(took < Duration::from_millis(700), "held for {took:?}");
    }

    #[test]
    fn an_ipv6_host_is_its_slash_64() {
        let slots = Slots::new(TcpLimits {
            max_per_address: 1,
            ..TcpLimits::default()
        });
        let _a = slots.take(ip("2001:db8::1")).unwrap();
        assert_eq!(slots.take(ip("2001:db8::2")).unwrap_err(), Full::Address);
        assert!(slots.take(ip("2001:db8:0:1::1")).is_ok());
    }

    #[tokio::test]
    async fn connections_over_the_per_address_cap_are_closed_at_once() {
        let limits = TcpLimits {
            max_per_address: 2,
            ..TcpLimits::default()
        };
        let (addr, _rx) = listen(limits).await;
        let _a = TcpStream::connect(addr).await.unwrap();
        let _b = TcpStream::connect(addr).await.unwrap();
        let mut c = TcpStream::connect(addr).await.unwrap();
        let took = until_closed(&mut c).await;
        assert!(took < Duration::from_millis(500), "third held for {took:?}");
    }
}
