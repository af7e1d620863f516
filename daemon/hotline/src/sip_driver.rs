//! Drives the sans-IO SIP endpoint with tokio: UDP and TCP sockets in, timers, and the
//! calls' commands; datagrams out and events to the call tasks.
//!
//! One task owns the `Endpoint`, so SIP state needs no locks. Socket readers and call
//! tasks talk to it over one channel.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_sip::{CallHandle, Endpoint, Event, Peer, Transport};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::actors::{
    CallEvent, CallSetup, CallSpawner, Registration, SipCommand, SipHandle, SipInput,
};

/// Where a call's events go: the task of the inbound call, or of the call that placed
/// this outgoing leg.
struct Route {
    tx: mpsc::Sender<CallEvent>,
    leg: bool,
}

/// Largest UDP datagram we accept; bigger ones are truncated by the kernel and then
/// fail to parse (a 400 or a drop), which is what RFC 3261 asks.
const MAX_DATAGRAM: usize = 65_535;

pub struct SipSockets {
    pub udp: Arc<UdpSocket>,
    pub tcp: TcpListener,
}

impl SipSockets {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<SipSockets> {
        let udp = Arc::new(UdpSocket::bind(addr).await?);
        // TCP on the same port; with port 0 take the port UDP got.
        let tcp_addr = SocketAddr::new(addr.ip(), udp.local_addr()?.port());
        let tcp = TcpListener::bind(tcp_addr).await?;
        Ok(SipSockets { udp, tcp })
    }
}

/// The SIP task's channel; legs to browser phones go to `phones` instead.
pub fn channel(
    phones: Option<std::sync::Arc<crate::browser_phone::BrowserPhones>>,
) -> (SipHandle, mpsc::Receiver<SipInput>) {
    let (tx, rx) = mpsc::channel(4096);
    (SipHandle(tx, phones), rx)
}

/// Starts the socket readers; they stop when the SIP task is gone.
pub fn spawn_readers(sockets: SipSockets, sip: SipHandle, tcp_limits: crate::sip_tcp::TcpLimits) {
    let udp = sockets.udp.clone();
    let tx = sip.0.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            match udp.recv_from(&mut buf).await {
                Ok((n, from)) => {
                    let msg = SipInput::Message {
                        from: Peer {
                            transport: Transport::Udp,
                            addr: from,
                        },
                        data: buf[..n].to_vec(),
                    };
                    if tx.send(msg).await.is_err() {
                        return;
                    }
                }
                // ICMP errors from earlier sends surface here on Linux; keep reading.
                Err(e) => debug!("sip udp recv: {e}"),
            }
        }
    });
    tokio::spawn(crate::sip_tcp::accept_loop(sockets.tcp, tcp_limits, sip.0));
}

/// Registration changes on their way to the queue task. Each carries a user's whole
/// set of bindings, so only the latest per user matters: while the queue task is busy
/// they wait here, one per user, and none is dropped.
#[derive(Debug, Default)]
struct RegistrationOutbox {
    waiting: BTreeMap<String, Vec<hotline_sip::Binding>>,
}

impl RegistrationOutbox {
    fn push(&mut self, user: String, contacts: Vec<hotline_sip::Binding>) {
        self.waiting.insert(user, contacts);
    }

    /// Sends what the channel takes now.
    fn flush(&mut self, tx: &mpsc::Sender<Registration>) {
        while let Some((user, contacts)) = self.waiting.pop_first() {
            match tx.try_reserve() {
                Ok(permit) => permit.send(Registration { user, contacts }),
                Err(mpsc::error::TrySendError::Full(())) => {
                    self.waiting.insert(user, contacts);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(())) => {
                    self.waiting.clear();
                    return;
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

/// The SIP task: owns the endpoint until the input channel closes.
pub async fn run(
    mut endpoint: Endpoint,
    udp: Arc<UdpSocket>,
    mut inputs: mpsc::Receiver<SipInput>,
    spawn_call: CallSpawner,
    registrations: mpsc::Sender<Registration>,
) {
    let mut tcp: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut registered = RegistrationOutbox::default();
    let mut routes: HashMap<CallHandle, Route> = HashMap::new();
    let mut stats_tick = tokio::time::interval(Duration::from_secs(1));
    let far_future = Duration::from_secs(3600);
    // Calls refused by the cap are logged once a second at most, as a count.
    let mut refused_reported = 0;

    loop {
        let deadline = endpoint
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + far_future);
        tokio::select! {
            input = inputs.recv() => {
                let Some(input) = input else { break };
                let now = Instant::now();
                match input {
                    SipInput::Message { from, data } => {
                        crate::logging::sip_trace("in", &from, &data);
                        endpoint.handle_input(now, from, &data)
                    }
                    SipInput::TcpOpened { peer, writer } => { tcp.insert(peer, writer); }
                    SipInput::TcpClosed { peer } => { tcp.remove(&peer); }
                    SipInput::Command(cmd) => match cmd {
                        SipCommand::Ringing(call) => endpoint.ringing(now, call),
                        SipCommand::Answer(call, sdp) => endpoint.answer(now, call, &sdp),
                        SipCommand::Reject(call, status) => endpoint.reject(now, call, status),
                        SipCommand::Hangup(call) => endpoint.hangup(now, call),
                        SipCommand::ReferReply(call, status) => endpoint.refer_reply(now, call, status),
                        SipCommand::ReferNotify(call, status, done) => endpoint.refer_notify(now, call, status, done),
                        SipCommand::Drain => endpoint.set_draining(true),
                        SipCommand::Invite { call, owner, reply } => {
                            let handle = endpoint.invite(now, *call);
                            routes.insert(handle, Route { tx: owner, leg: true });
                            let _ = reply.send(handle);
                        }
                        SipCommand::SetCredentials(user, cred) => endpoint.set_credentials(&user, cred),
                        SipCommand::Reroute { call, owner } => {
                            if let Some(route) = routes.get_mut(&call) {
                                route.tx = owner;
                            }
                        }
                    },
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                endpoint.handle_timeout(Instant::now());
            }
            permit = registrations.reserve(), if !registered.is_empty() => {
                // The queue task has room again.
                drop(permit);
                registered.flush(&registrations);
                continue;
            }
            _ = stats_tick.tick() => {
                let stats = endpoint.stats();
                crate::metrics::export_sip_stats(stats);
                if stats.calls_over_limit > refused_reported {
                    warn!(refused = stats.calls_over_limit - refused_reported,
                          "calls refused with 503: the concurrent-call cap (sip.max_calls) is reached");
                    refused_reported = stats.calls_over_limit;
                }
                continue;
            }
        }

        while let Some(event) = endpoint.poll_event() {
            // Only an operator's phone may transfer its caller (T6): a REFER from the
            // caller's side is refused here.
            if let Event::Refer { call, .. } = &event
                && !is_leg(&routes, *call)
            {
                endpoint.refer_reply(Instant::now(), *call, 403);
                continue;
            }
            dispatch(event, &mut routes, &spawn_call, &mut registered);
        }
        registered.flush(&registrations);
        while let Some(t) = endpoint.poll_transmit() {
            crate::logging::sip_trace("out", &t.to, &t.data);
            match t.to.transport {
                Transport::Udp => {
                    if let Err(e) = udp.send_to(&t.data, t.to.addr).await {
                        debug!("sip udp send to {}: {e}", t.to.addr);
                    }
                }
                Transport::Tcp => match tcp.get(&t.to.addr) {
                    Some(w) => {
                        if w.try_send(t.data).is_err() {
                            debug!("sip tcp {}: send queue full or closed", t.to.addr);
                        }
                    }
                    None => debug!("sip tcp {}: connection gone, message dropped", t.to.addr),
                },
            }
        }

        // Call tasks that finished on their own (flow hangup) dropped their receivers.
        if routes.len() > 64 && routes.len() > 2 * endpoint.active_calls() {
            routes.retain(|_, r| !r.tx.is_closed());
        }
    }
}

/// Whether `call` is a leg a call task placed (an operator's phone, the trunk).
fn is_leg(routes: &HashMap<CallHandle, Route>, call: CallHandle) -> bool {
    routes.get(&call).is_some_and(|r| r.leg)
}

fn dispatch(
    event: Event,
    routes: &mut HashMap<CallHandle, Route>,
    spawn_call: &CallSpawner,
    registered: &mut RegistrationOutbox,
) {
    match event {
        Event::Security(e) => {
            let details = e.user.map(|u| format!("user={u:?}")).unwrap_or_default();
            let details = match e.kind {
                hotline_sip::SecurityKind::CallRefused(status) => {
                    format!("{details} status={status}")
                        .trim_start()
                        .to_string()
                }
                _ => details,
            };
            crate::security::log(e.kind.as_str(), e.from, &details);
        }
        Event::IncomingCall {
            call,
            call_id,
            caller,
            caller_name: _,
            called,
            offer,
            source,
            origin,
        } => {
            let (tx, rx) = mpsc::channel(64);
            routes.insert(
                call,
                Route {
                    tx: tx.clone(),
                    leg: false,
                },
            );
            let setup = CallSetup {
                handle: call,
                call_id,
                caller,
                called,
                offer,
                source,
                origin,
                events_tx: tx,
            };
            spawn_call(setup, rx);
        }
        Event::CallAcked { call } => forward(routes, call, CallEvent::Acked),
        Event::CallCancelled { call } => {
            forward(routes, call, CallEvent::Cancelled);
            routes.remove(&call);
        }
        Event::ReInvite { call, offer } => {
            let event = if is_leg(routes, call) {
                CallEvent::LegReInvite { leg: call, offer }
            } else {
                CallEvent::ReInvite(offer)
            };
            forward(routes, call, event);
        }
        Event::Dtmf { call, digit, .. } => {
            // An operator's keypad (INFO) is not the caller's: the IVR is not listening then.
            if !is_leg(routes, call) {
                forward(routes, call, CallEvent::Dtmf(digit));
            }
        }
        Event::CallEnded { call, reason } => {
            let event = if is_leg(routes, call) {
                CallEvent::LegEnded { leg: call }
            } else {
                CallEvent::Ended(reason)
            };
            forward(routes, call, event);
            routes.remove(&call);
        }
        Event::Refer { call, target } => {
            forward(routes, call, CallEvent::LegRefer { leg: call, target });
        }
        Event::OutgoingProgress { call, .. } => {
            forward(routes, call, CallEvent::LegProgress);
        }
        Event::OutgoingAnswered { call, sdp } => {
            forward(routes, call, CallEvent::LegAnswered { leg: call, sdp });
        }
        Event::OutgoingFailed { call, status } => {
            forward(routes, call, CallEvent::LegFailed { leg: call, status });
            routes.remove(&call);
        }
        Event::Registered { user, contacts } => registered.push(user, contacts),
    }
}

fn forward(routes: &mut HashMap<CallHandle, Route>, call: CallHandle, event: CallEvent) {
    if let Some(route) = routes.get(&call)
        && route.tx.try_send(event).is_err()
    {
        debug!("call {call:?}: task gone or busy, event dropped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(uri: &str) -> hotline_sip::Binding {
        hotline_sip::Binding {
            uri: uri.into(),
            peer: Peer {
                transport: Transport::Udp,
                addr: "192.0.2.1:5060".parse().unwrap(),
            },
            expires_at: Instant::now(),
            instance: None,
            reg_id: None,
        }
    }

    #[test]
    fn registration_changes_wait_for_a_busy_queue_task_and_none_is_lost() {
        // The queue task is busy: its channel is full.
        let (tx, mut rx) = mpsc::channel(1);
        tx.try_send(Registration {
            user: "earlier".into(),
            contacts: vec![],
        })
        .unwrap();
        let mut outbox = RegistrationOutbox::default();
        outbox.push("anna".into(), vec![binding("sip:anna@10.0.0.1")]);
        outbox.push("bela".into(), vec![binding("sip:bela@10.0.0.2")]);
        // Anna's phone moved before the queue task got the first change: only the
        // latest set matters.
        outbox.push("anna".into(), vec![binding("sip:anna@10.0.0.9")]);
        outbox.flush(&tx);
        assert!(!outbox.is_empty(), "kept while the channel is full");
        let mut got = Vec::new();
        while !outbox.is_empty() || !rx.is_empty() {
            if let Ok(r) = rx.try_recv() {
                got.push((
                    r.user,
                    r.contacts.iter().map(|b| b.uri.clone()).collect::<Vec<_>>(),
                ));
            }
            outbox.flush(&tx);
        }
        assert_eq!(
            got,
            [
                ("earlier".to_string(), vec![]),
                ("anna".to_string(), vec!["sip:anna@10.0.0.9".to_string()]),
                ("bela".to_string(), vec!["sip:bela@10.0.0.2".to_string()]),
            ]
        );
    }
}
