//! Relay threads: while a call is plainly bridged (see `CallSession::lend_media`), its four
//! media sockets and its [`Relay`] move to one of these threads, which forwards each
//! datagram in the thread that epoll woke, the way rtpengine's userspace does. On the call's
//! own tokio task every packet cost a task wake-up and a pass over the driver's `select!`,
//! which put the relay's p99 at 2.7× rtpengine's at 500 calls. The call's task takes the
//! sockets back for anything else: a SIP event, a console button, a timer.
//!
//! One thread per core, each with its own epoll; calls are spread round-robin.

use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use hotline_media::bridge::{Relay, Side};
use mio::net::UdpSocket as MioSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use tracing::{error, warn};

/// A lent call's sockets, in this order: the caller's RTP and RTCP, the leg's RTP and RTCP.
pub type Sockets = [UdpSocket; 4];

const WAKE: Token = Token(usize::MAX);
/// Datagrams read from one socket before the others get a turn; the rest wait in line.
const BURST: usize = 32;

enum Command {
    Adopt {
        id: usize,
        sockets: Sockets,
        media: Box<Relay>,
    },
    Return {
        id: usize,
        reply: tokio::sync::oneshot::Sender<(Sockets, Relay)>,
    },
    Forget {
        id: usize,
    },
}

struct Worker {
    commands: mpsc::Sender<Command>,
    waker: Waker,
}

impl Worker {
    fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok() && self.waker.wake().is_ok()
    }
}

/// The relay threads, shared by every call.
pub struct RelayThreads {
    workers: Vec<Worker>,
    next: AtomicUsize,
}

/// A call's media on a relay thread; [`Lent::reclaim`] brings it back. Dropped without
/// that (the call's task ended), the thread closes the sockets.
pub struct Lent {
    threads: Arc<RelayThreads>,
    worker: usize,
    id: usize,
    reclaimed: bool,
}

impl RelayThreads {
    /// Starts `count` threads (at least one).
    pub fn start(count: usize) -> std::io::Result<Arc<RelayThreads>> {
        let mut workers = Vec::new();
        for n in 0..count.max(1) {
            let poll = Poll::new()?;
            let waker = Waker::new(poll.registry(), WAKE)?;
            let (commands, receiver) = mpsc::channel();
            std::thread::Builder::new()
                .name(format!("rtp-relay-{n}"))
                .spawn(move || run(poll, receiver))?;
            workers.push(Worker { commands, waker });
        }
        Ok(Arc::new(RelayThreads {
            workers,
            next: AtomicUsize::new(0),
        }))
    }

    /// Hands a call's sockets and media to a thread; they come back as they were when
    /// that thread is gone (a panic in it), and the call's task relays on its own.
    pub fn lend(
        self: &Arc<Self>,
        sockets: Sockets,
        media: Relay,
    ) -> Result<Lent, Box<(Sockets, Relay)>> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let worker = id % self.workers.len();
        let media = Box::new(media);
        let w = &self.workers[worker];
        match w.commands.send(Command::Adopt { id, sockets, media }) {
            Ok(()) => {
                // Queued: should the wake fail (it cannot short of a broken eventfd), the
                // thread still adopts the call at its next wake, and `Lent` owns it.
                if let Err(e) = w.waker.wake() {
                    warn!(error = %e, "RTP relay thread: cannot wake it");
                }
                Ok(Lent {
                    threads: self.clone(),
                    worker,
                    id,
                    reclaimed: false,
                })
            }
            Err(mpsc::SendError(Command::Adopt { sockets, media, .. })) => {
                Err(Box::new((sockets, *media)))
            }
            Err(_) => unreachable!("the command sent was Adopt"),
        }
    }
}

impl Lent {
    /// The sockets and the media as the thread left them.
    pub async fn reclaim(mut self) -> Option<(Sockets, Relay)> {
        self.reclaimed = true;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let worker = &self.threads.workers[self.worker];
        if !worker.send(Command::Return { id: self.id, reply }) {
            return None;
        }
        answer.await.ok()
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if !self.reclaimed {
            self.threads.workers[self.worker].send(Command::Forget { id: self.id });
        }
    }
}

/// One lent call on its thread.
struct Call {
    sockets: [MioSocket; 4],
    media: Relay,
}

impl Call {
    /// Forwards what socket `i` has, at most [`BURST`] datagrams; `true` when it is empty.
    fn drain(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let side = if i < 2 { Side::A } else { Side::B };
        let rtcp = i % 2 == 1;
        let out = (i + 2) % 4;
        for _ in 0..BURST {
            match self.sockets[i].recv_from(buf) {
                Ok((n, from)) => {
                    let data = &mut buf[..n];
                    if let Some(to) = self.media.forward(Instant::now(), side, rtcp, from, data) {
                        // UDP: a full send buffer drops the packet, as the network would.
                        let _ = self.sockets[out].send_to(data, to);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                // An ICMP error from an earlier send, or an interrupted read: read on.
                Err(_) => {}
            }
        }
        false
    }
}

fn token(id: usize, i: usize) -> Token {
    Token(id << 2 | i)
}

fn run(mut poll: Poll, commands: mpsc::Receiver<Command>) {
    let mut events = Events::with_capacity(512);
    let mut calls: HashMap<usize, Call> = HashMap::new();
    // Sockets with datagrams left after their burst (epoll is edge-triggered: they get no
    // new event until they are read empty).
    let mut unfinished: VecDeque<Token> = VecDeque::new();
    let mut buf = [0u8; 2048];
    loop {
        let timeout = (!unfinished.is_empty()).then_some(std::time::Duration::ZERO);
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() != ErrorKind::Interrupted {
                error!(error = %e, "RTP relay thread: epoll failed");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            continue;
        }
        let mut ready: VecDeque<Token> = std::mem::take(&mut unfinished);
        for event in events.iter() {
            if event.token() == WAKE {
                while let Ok(command) = commands.try_recv() {
                    obey(&poll, &mut calls, command);
                }
            } else {
                ready.push_back(event.token());
            }
        }
        for t in ready {
            let (id, i) = (t.0 >> 2, t.0 & 3);
            if let Some(call) = calls.get_mut(&id)
                && !call.drain(i, &mut buf)
            {
                unfinished.push_back(t);
            }
        }
    }
}

fn obey(poll: &Poll, calls: &mut HashMap<usize, Call>, command: Command) {
    match command {
        Command::Adopt { id, sockets, media } => {
            let mut sockets = sockets.map(MioSocket::from_std);
            for (i, s) in sockets.iter_mut().enumerate() {
                // Cannot fail for a fresh UDP socket short of running out of memory; the
                // call then hears nothing on that socket until it is reclaimed.
                if let Err(e) = poll
                    .registry()
                    .register(s, token(id, i), Interest::READABLE)
                {
                    warn!(error = %e, "RTP relay thread: cannot watch a socket");
                }
            }
            calls.insert(
                id,
                Call {
                    sockets,
                    media: *media,
                },
            );
        }
        Command::Return { id, reply } => {
            if let Some(mut call) = calls.remove(&id) {
                for s in call.sockets.iter_mut() {
                    let _ = poll.registry().deregister(s);
                }
                let _ = reply.send((call.sockets.map(UdpSocket::from), call.media));
            }
        }
        Command::Forget { id } => {
            if let Some(mut call) = calls.remove(&id) {
                for s in call.sockets.iter_mut() {
                    let _ = poll.registry().deregister(s);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use hotline_media::bridge::{Bridge, RtcpRelay};
    use std::time::Duration;

    fn socket() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s
    }

    fn rtp(seq: u8) -> Vec<u8> {
        let mut p = vec![0x80, 8, 0, seq, 0, 0, 0, 0, 0, 0, 0x12, 0x34];
        p.extend([0xd5; 160]);
        p
    }

    /// What `peer` receives next: the sequence number and where it came from.
    fn next(peer: &UdpSocket) -> (u8, std::net::SocketAddr) {
        let mut buf = [0u8; 2048];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(n, 172);
        (buf[3], from)
    }

    #[tokio::test]
    async fn a_lent_call_is_relayed_both_ways_and_comes_back_as_the_thread_left_it() {
        let threads = RelayThreads::start(1).unwrap();
        let ours = [socket(), socket(), socket(), socket()];
        let at = ours.each_ref().map(|s| s.local_addr().unwrap());
        for s in &ours {
            s.set_nonblocking(true).unwrap();
        }
        let (caller, phone, stranger) = (socket(), socket(), socket());
        let media = Relay {
            bridge: Bridge::new(
                Some(caller.local_addr().unwrap()),
                Some(phone.local_addr().unwrap()),
            ),
            rtcp: RtcpRelay::default(),
            translation: None,
        };
        let lent = threads.lend(ours, media).unwrap();

        caller.send_to(&rtp(1), at[0]).unwrap();
        assert_eq!(next(&phone), (1, at[2]));
        phone.send_to(&rtp(2), at[2]).unwrap();
        assert_eq!(next(&caller), (2, at[0]));
        // A stranger on the caller's port is not passed on: the phone's next packet is
        // the caller's.
        stranger.send_to(&rtp(3), at[0]).unwrap();
        caller.send_to(&rtp(4), at[0]).unwrap();
        assert_eq!(next(&phone), (4, at[2]));

        let (sockets, media) = lent.reclaim().await.unwrap();
        assert_eq!(sockets.each_ref().map(|s| s.local_addr().unwrap()), at);
        let stats = media.bridge.stats();
        assert_eq!(
            (
                stats.forwarded_a_to_b,
                stats.forwarded_b_to_a,
                stats.foreign
            ),
            (2, 1, 1)
        );
        assert_eq!(
            media.bridge.latched(Side::A),
            Some(caller.local_addr().unwrap())
        );
        // The thread no longer reads them: a packet now waits in the socket for us.
        caller.send_to(&rtp(5), at[0]).unwrap();
        sockets[0].set_nonblocking(false).unwrap();
        sockets[0]
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        assert_eq!(next(&sockets[0]), (5, caller.local_addr().unwrap()));
    }

    #[tokio::test]
    async fn calls_lent_again_and_on_several_threads_keep_relaying() {
        let threads = RelayThreads::start(2).unwrap();
        let mut calls = Vec::new();
        for _ in 0..8 {
            let ours = [socket(), socket(), socket(), socket()];
            for s in &ours {
                s.set_nonblocking(true).unwrap();
            }
            let (caller, phone) = (socket(), socket());
            calls.push((ours, caller, phone));
        }
        // Three rounds: lent, a packet each way, taken back; the sockets are deregistered
        // from and registered with the threads' epolls each time.
        for round in 0..3u8 {
            let mut lent = Vec::new();
            for (ours, caller, phone) in calls.drain(..) {
                let at = ours.each_ref().map(|s| s.local_addr().unwrap());
                let media = Relay {
                    bridge: Bridge::new(
                        Some(caller.local_addr().unwrap()),
                        Some(phone.local_addr().unwrap()),
                    ),
                    rtcp: RtcpRelay::default(),
                    translation: None,
                };
                lent.push((threads.lend(ours, media).unwrap(), at, caller, phone));
            }
            for (_, at, caller, phone) in &lent {
                caller.send_to(&rtp(round * 2), at[0]).unwrap();
                assert_eq!(next(phone), (round * 2, at[2]));
                phone.send_to(&rtp(round * 2 + 1), at[2]).unwrap();
                assert_eq!(next(caller), (round * 2 + 1, at[0]));
            }
            for (l, _, caller, phone) in lent {
                let (ours, _) = l.reclaim().await.unwrap();
                calls.push((ours, caller, phone));
            }
        }
    }
}
