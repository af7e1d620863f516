//! The operator's console as their phone (PRODUCT T7): a tab that chose "this browser"
//! is the operator's registered phone until it closes or they choose their SIP phone.
//!
//! To the rest of the daemon a browser phone is one more kind of contact: the queue task
//! gets a binding whose URI is `browser:OPERATOR`, and an INVITE to it, through the same
//! [`crate::actors::SipHandle`] every leg is placed with, lands here instead of the SIP
//! task. The leg answers with plain RTP on loopback, so the call session bridges, holds,
//! transfers and records it as any phone's leg; a [`PhoneLeg`] (hotline-webrtc) carries
//! that RTP to and from the page's peer connection. The queue, transfers, hold, busy
//! everywhere and the call records therefore need nothing of their own for the browser.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use hotline_ivr::TransferTarget;
use hotline_sip::endpoint::{CallHandle, OutgoingCall};
use hotline_sip::registrar::Binding;
use hotline_sip::{Peer, Transport};
use hotline_web::telephony::{PageLink, PhoneFromPage, PhoneToPage};
use hotline_webrtc::phone::{CallNews, CallerAudio, PageNews, PhoneLeg, PhoneOutput, PhoneState};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::actors::{AcdHandle, AcdInput, CallEvent, ConsoleControl, SipCommand};
use crate::context::Calls;
use crate::net::RtpPorts;

/// Handles of browser legs have this bit set; the SIP endpoint's count from 1 and never
/// get there. Bit 52, so a leg's number is exact in the page's JavaScript (2^53).
const BROWSER_LEG: u64 = 1 << 52;
/// The Request-URI of an operator's browser phone: `browser:anna`.
const URI_SCHEME: &str = "browser:";

/// Whether `handle` is a browser phone's leg (not the SIP task's).
pub fn is_browser_leg(handle: CallHandle) -> bool {
    handle.0 & BROWSER_LEG != 0
}

/// Whether an outgoing call goes to a browser phone.
pub fn is_browser_uri(uri: &str) -> bool {
    uri.starts_with(URI_SCHEME)
}

/// What a leg's task is told.
enum LegInput {
    /// From the page that answers it (which may be a new tab after a reload).
    Page(PhoneFromPage, PageLink),
    /// The page it was on is gone.
    PageGone,
    /// The operator's phone page is back: offer it the held call.
    PageBack(PageLink),
    /// From the call: the leg is over.
    Hangup,
    /// From the call: the leg's events go to another call now (a transfer).
    Reroute(mpsc::Sender<CallEvent>),
}

struct LegEntry {
    operator: String,
    /// The tab the leg rings or talks on.
    page: u64,
    state: PhoneState,
    inbox: mpsc::Sender<LegInput>,
}

#[derive(Default)]
struct Registry {
    /// Each operator's phone tab.
    pages: HashMap<String, PageLink>,
    legs: HashMap<u64, LegEntry>,
}

/// Every browser phone of this daemon and their legs.
pub struct BrowserPhones {
    acd: AcdHandle,
    rtp_ports: Arc<RtpPorts>,
    /// The address in the legs' ICE candidates (`sip.public_ip`, else the local one).
    advertised: IpAddr,
    /// Where the call's leg sockets are reached from inside the daemon.
    inside: IpAddr,
    /// How long a call whose page went away waits (on hold) for the page to come back.
    reattach: Duration,
    next_leg: AtomicU64,
    /// The calls, to send a caller back to their queue (set once they exist).
    calls: OnceLock<Weak<Calls>>,
    registry: Mutex<Registry>,
}

impl BrowserPhones {
    pub fn new(
        acd: AcdHandle,
        rtp_ports: Arc<RtpPorts>,
        advertised: IpAddr,
        bind_ip: IpAddr,
        reattach: Duration,
    ) -> BrowserPhones {
        let inside = if bind_ip.is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            bind_ip
        };
        BrowserPhones {
            acd,
            rtp_ports,
            advertised,
            inside,
            reattach,
            next_leg: AtomicU64::new(1),
            calls: OnceLock::new(),
            registry: Mutex::new(Registry::default()),
        }
    }

    pub fn set_calls(&self, calls: &Arc<Calls>) {
        let _ = self.calls.set(Arc::downgrade(calls));
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        match self.registry.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The queue task's contact for an operator whose phone is a browser tab.
    fn binding(operator: &str) -> Binding {
        Binding {
            uri: format!("{URI_SCHEME}{operator}"),
            peer: Peer {
                transport: Transport::Udp,
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 9)),
            },
            // Until the tab closes, which removes it.
            expires_at: Instant::now() + Duration::from_secs(10 * 365 * 24 * 3600),
            instance: None,
            reg_id: None,
        }
    }

    /// A message from an operator's console tab.
    pub async fn message(self: &Arc<Self>, operator: &str, page: &PageLink, msg: PhoneFromPage) {
        match msg {
            PhoneFromPage::UseBrowser { on: true } => self.attach(operator, page).await,
            PhoneFromPage::UseBrowser { on: false } => {
                let was = {
                    let mut r = self.registry();
                    match r.pages.get(operator) {
                        Some(p) if p.id == page.id => r.pages.remove(operator).is_some(),
                        _ => false,
                    }
                };
                if was {
                    self.tell_queue(operator, false).await;
                }
                send(
                    page,
                    PhoneToPage::Phone {
                        browser: false,
                        message: None,
                    },
                );
            }
            PhoneFromPage::Answer { leg, .. }
            | PhoneFromPage::Decline { leg }
            | PhoneFromPage::Hangup { leg }
            | PhoneFromPage::Dtmf { leg, .. } => {
                let inbox = {
                    let mut r = self.registry();
                    match r.legs.get_mut(&leg) {
                        Some(l) if l.operator == operator => {
                            if matches!(msg, PhoneFromPage::Answer { .. }) {
                                l.page = page.id;
                            }
                            Some(l.inbox.clone())
                        }
                        _ => None,
                    }
                };
                match inbox {
                    Some(inbox) => {
                        let _ = inbox.send(LegInput::Page(msg, page.clone())).await;
                    }
                    None => send(
                        page,
                        PhoneToPage::Ended {
                            leg,
                            reason: "This call is over.".into(),
                        },
                    ),
                }
            }
        }
    }

    /// `page` becomes the operator's phone; a tab that was it before is told it no
    /// longer is, and a call of theirs that lost its page is offered to this one.
    async fn attach(&self, operator: &str, page: &PageLink) {
        let (previous, waiting) = {
            let mut r = self.registry();
            let previous = r.pages.insert(operator.to_string(), page.clone());
            let waiting: Vec<_> = r
                .legs
                .values()
                .filter(|l| l.operator == operator && l.state == PhoneState::Detached)
                .map(|l| l.inbox.clone())
                .collect();
            (previous.filter(|p| p.id != page.id), waiting)
        };
        if let Some(p) = previous {
            send(
                &p,
                PhoneToPage::Phone {
                    browser: false,
                    message: Some("Another tab is your phone now.".into()),
                },
            );
        }
        info!(%operator, page = page.id, "the console tab is the operator's phone");
        self.tell_queue(operator, true).await;
        send(
            page,
            PhoneToPage::Phone {
                browser: true,
                message: None,
            },
        );
        for inbox in waiting {
            let _ = inbox.send(LegInput::PageBack(page.clone())).await;
        }
    }

    /// The tab `page_id` closed: it is nobody's phone now, and its calls wait for it.
    pub async fn page_closed(&self, operator: &str, page_id: u64) {
        let (was_phone, legs, newer) = {
            let mut r = self.registry();
            let was_phone = match r.pages.get(operator) {
                Some(p) if p.id == page_id => r.pages.remove(operator).is_some(),
                _ => false,
            };
            let legs: Vec<_> = r
                .legs
                .values()
                .filter(|l| l.operator == operator && l.page == page_id)
                .map(|l| l.inbox.clone())
                .collect();
            // A reloaded tab may have become the phone before the old one's close came.
            let newer = r.pages.get(operator).cloned();
            (was_phone, legs, newer)
        };
        if was_phone {
            info!(%operator, page = page_id, "the operator's phone tab closed");
            self.tell_queue(operator, false).await;
        }
        for inbox in legs {
            let _ = inbox.send(LegInput::PageGone).await;
            if let Some(page) = &newer {
                let _ = inbox.send(LegInput::PageBack(page.clone())).await;
            }
        }
    }

    async fn tell_queue(&self, operator: &str, present: bool) {
        self.acd
            .send(AcdInput::BrowserPhone {
                operator: operator.to_string(),
                binding: present.then(|| Self::binding(operator)),
            })
            .await;
    }

    /// Rings the operator's phone tab with the call's offer; `None` when they have none
    /// now or the offer or the ports fail.
    pub async fn invite(
        self: &Arc<Self>,
        call: OutgoingCall,
        owner: mpsc::Sender<CallEvent>,
    ) -> Option<CallHandle> {
        let operator = call.request_uri.strip_prefix(URI_SCHEME)?.to_string();
        let page = self.registry().pages.get(&operator).cloned()?;
        let offer = match hotline_sip::sdp::negotiate(&call.sdp) {
            Ok(n) => n,
            Err(e) => {
                warn!(%operator, "browser phone: the call's offer is not usable: {e}");
                return None;
            }
        };
        let Some((ice, ice_rtcp)) = self.rtp_ports.bind() else {
            warn!(%operator, "no free RTP port for the browser phone");
            return None;
        };
        let inner = UdpSocket::bind(SocketAddr::new(self.inside, 0))
            .await
            .ok()?;
        let inner_port = inner.local_addr().ok()?.port();
        let ice_local = ice.local_addr().ok()?;
        let call_media = SocketAddr::new(self.inside, offer.remote_rtp.port());
        // The call's side sees a phone that answered with its own codec, on loopback.
        let answer = hotline_sip::sdp::answer(&offer, self.inside, inner_port, rand::random(), 1);
        let caller = CallerAudio {
            codec: match offer.codec {
                hotline_sip::sdp::Codec::Pcmu => hotline_media::Codec::Pcmu,
                hotline_sip::sdp::Codec::Pcma => hotline_media::Codec::Pcma,
            },
            payload_type: offer.payload_type,
            telephone_event: offer.telephone_event,
        };
        let leg = PhoneLeg::ring(
            caller,
            ice_local,
            Some(self.advertised),
            (rand::random(), rand::random(), rand::random()),
            self.reattach,
        );
        let handle = CallHandle(BROWSER_LEG | self.next_leg.fetch_add(1, Ordering::Relaxed));
        let (inbox_tx, inbox) = mpsc::channel(32);
        self.registry().legs.insert(
            handle.0,
            LegEntry {
                operator: operator.clone(),
                page: page.id,
                state: PhoneState::Ringing,
                inbox: inbox_tx,
            },
        );
        send(
            &page,
            PhoneToPage::Ring {
                leg: handle.0,
                caller: call.from_user.clone(),
                call_id: None,
                resume: false,
                auto_answer: call.headers.iter().any(|(name, value)| {
                    name.eq_ignore_ascii_case("Call-Info") && value.contains("answer-after=0")
                }),
            },
        );
        let _ = owner.send(CallEvent::LegProgress).await;
        let task = LegTask {
            phones: self.clone(),
            handle,
            operator,
            caller: call.from_user,
            leg,
            sockets: (ice, ice_rtcp, inner),
            call_media,
            answer,
            page: Some(page),
            owner,
        };
        tokio::spawn(task.run(inbox));
        Some(handle)
    }

    /// A command for a browser leg, from its call.
    pub async fn command(&self, command: SipCommand) {
        let (handle, input) = match command {
            SipCommand::Hangup(h) => (h, LegInput::Hangup),
            SipCommand::Reroute { call, owner } => (call, LegInput::Reroute(owner)),
            // Operator legs are never answered, rejected or REFERred from here.
            _ => return,
        };
        let inbox = self.registry().legs.get(&handle.0).map(|l| l.inbox.clone());
        if let Some(inbox) = inbox {
            let _ = inbox.send(input).await;
        }
    }

    fn set_state(&self, handle: CallHandle, state: PhoneState) {
        let mut r = self.registry();
        if state == PhoneState::Over {
            r.legs.remove(&handle.0);
        } else if let Some(l) = r.legs.get_mut(&handle.0) {
            l.state = state;
        }
    }
}

/// To a tab, without waiting: a tab that cannot keep up loses the message, not the call.
fn send(page: &PageLink, message: PhoneToPage) {
    let _ = page.to_page.try_send(message);
}

/// One browser leg's task: its sockets, its page and its call.
struct LegTask {
    phones: Arc<BrowserPhones>,
    handle: CallHandle,
    operator: String,
    caller: String,
    leg: PhoneLeg,
    /// The ICE socket (with its RTCP pair kept, so the range stays in pairs), and the
    /// loopback socket the call's RTP comes and goes on.
    sockets: (UdpSocket, UdpSocket, UdpSocket),
    /// The call's socket for this leg.
    call_media: SocketAddr,
    /// The SDP the call gets when the operator answers.
    answer: String,
    page: Option<PageLink>,
    owner: mpsc::Sender<CallEvent>,
}

impl LegTask {
    async fn run(mut self, mut inbox: mpsc::Receiver<LegInput>) {
        let mut ice_buf = vec![0u8; 2048];
        let mut rtp_buf = vec![0u8; 2048];
        let leg_id = self.handle.0;
        let mut told = PhoneState::Ringing;
        let timer = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(timer);
        loop {
            self.carry_out().await;
            // The registry (shared by every leg) is locked only when the state changed,
            // not per packet.
            let state = self.leg.state();
            if state != told {
                self.phones.set_state(self.handle, state);
                told = state;
            }
            if state == PhoneState::Over {
                break;
            }
            let wake = tokio::time::Instant::from_std(
                self.leg
                    .poll_timeout()
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
            );
            // One timer for the leg's life, moved only when the deadline moves: a new
            // timer per packet costs the relay (as in call.rs).
            if timer.deadline() != wake {
                timer.as_mut().reset(wake);
            }
            let (ice, _, inner) = &self.sockets;
            tokio::select! {
                r = ice.recv_from(&mut ice_buf) => {
                    if let Ok((n, from)) = r {
                        self.leg.datagram(Instant::now(), from, &ice_buf[..n]);
                    }
                }
                r = inner.recv_from(&mut rtp_buf) => {
                    if let Ok((n, from)) = r && from.port() == self.call_media.port() {
                        self.leg.caller_rtp(Instant::now(), &rtp_buf[..n]);
                    }
                }
                input = inbox.recv() => {
                    let now = Instant::now();
                    match input {
                        None | Some(LegInput::Hangup) => self.leg.call_ended("The call ended."),
                        Some(LegInput::Reroute(owner)) => self.owner = owner,
                        Some(LegInput::PageGone) => {
                            self.page = None;
                            self.leg.page_gone(now);
                        }
                        Some(LegInput::PageBack(page)) => {
                            send(&page, PhoneToPage::Ring {
                                leg: leg_id,
                                caller: self.caller.clone(),
                                call_id: None,
                                resume: true,
                                auto_answer: false,
                            });
                            self.page = Some(page);
                        }
                        Some(LegInput::Page(msg, page)) => {
                            match msg {
                                PhoneFromPage::Answer { sdp, .. } => {
                                    info!(operator = %self.operator, leg = leg_id, page = page.id, "the page answers");
                                    self.page = Some(page);
                                    self.leg.answer(now, &sdp);
                                }
                                PhoneFromPage::Decline { .. } => self.leg.decline(),
                                PhoneFromPage::Hangup { .. } => self.leg.hang_up(),
                                PhoneFromPage::Dtmf { digit, .. } => self.leg.dtmf(now, digit),
                                PhoneFromPage::UseBrowser { .. } => {}
                            }
                        }
                    }
                }
                _ = &mut timer => {
                    self.leg.handle_timeout(Instant::now());
                }
            }
        }
    }

    /// Does what the leg asks.
    async fn carry_out(&mut self) {
        let leg_id = self.handle.0;
        while let Some(out) = self.leg.poll() {
            match out {
                PhoneOutput::Transmit { to, data } => {
                    let _ = self.sockets.0.send_to(&data, to).await;
                }
                PhoneOutput::Rtp(packet) => {
                    let _ = self.sockets.2.send_to(&packet, self.call_media).await;
                }
                PhoneOutput::Page(news) => {
                    let message = match news {
                        PageNews::Answered { sdp } => PhoneToPage::Answered { leg: leg_id, sdp },
                        PageNews::Connected => PhoneToPage::Connected { leg: leg_id },
                        PageNews::Ended { reason } => PhoneToPage::Ended {
                            leg: leg_id,
                            reason,
                        },
                        PageNews::Error { message } => {
                            warn!(operator = %self.operator, leg = leg_id, "browser phone: {message}");
                            PhoneToPage::Error {
                                leg: Some(leg_id),
                                message,
                            }
                        }
                    };
                    if let Some(page) = &self.page {
                        send(page, message);
                    }
                }
                PhoneOutput::Call(news) => self.tell_call(news).await,
            }
        }
    }

    async fn tell_call(&mut self, news: CallNews) {
        let leg = self.handle;
        let operator = &self.operator;
        match news {
            CallNews::Answered => {
                info!(%operator, leg = leg.0, "answered in the browser");
                let sdp = Some(self.answer.clone());
                let _ = self.owner.send(CallEvent::LegAnswered { leg, sdp }).await;
            }
            CallNews::Declined => {
                let _ = self
                    .owner
                    .send(CallEvent::LegFailed { leg, status: 603 })
                    .await;
            }
            CallNews::HungUp => {
                let _ = self.owner.send(CallEvent::LegEnded { leg }).await;
            }
            CallNews::PageLost => {
                info!(%operator, "the call's page went away: the caller holds");
                self.hold(true).await;
            }
            CallNews::PageBack => {
                info!(%operator, "the call's page is back");
                self.hold(false).await;
            }
            CallNews::GaveUp => {
                warn!(%operator, "the call's page did not come back: the caller goes back to the queue");
                if !self.back_to_queue().await {
                    let _ = self.owner.send(CallEvent::LegEnded { leg }).await;
                }
            }
        }
    }

    async fn hold(&self, held: bool) {
        let (reply, answer) = oneshot::channel();
        let control = ConsoleControl::Hold { held, reply };
        if self.owner.send(CallEvent::Console(control)).await.is_ok()
            && let Ok(Err(e)) = answer.await
        {
            info!(operator = %self.operator, "hold from the browser phone refused: {e}");
        }
    }

    /// Sends the caller to the queue they came from; `false` when there is none (a call
    /// the operator placed) or it refuses.
    async fn back_to_queue(&self) -> bool {
        let Some(calls) = self.phones.calls.get().and_then(Weak::upgrade) else {
            return false;
        };
        let queue = calls
            .connected
            .lock()
            .ok()
            .and_then(|c| c.get(&self.operator).and_then(|call| call.queue.clone()));
        let Some(queue) = queue else {
            return false;
        };
        let (reply, answer) = oneshot::channel();
        let control = ConsoleControl::Transfer {
            to: TransferTarget::Queue(queue),
            note: format!("{}'s browser lost the call.", self.operator),
            reply,
        };
        if self.owner.send(CallEvent::Console(control)).await.is_err() {
            return false;
        }
        matches!(answer.await, Ok(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The phones of a daemon on loopback, with the queue task's inbox.
    fn phones() -> (Arc<BrowserPhones>, mpsc::Receiver<AcdInput>) {
        let (acd, inputs) = crate::acd_driver::channel();
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let ports = Arc::new(RtpPorts::new(loopback, (41000, 41099)));
        let phones = BrowserPhones::new(acd, ports, loopback, loopback, Duration::from_secs(5));
        (Arc::new(phones), inputs)
    }

    fn tab(id: u64) -> (PageLink, mpsc::Receiver<PhoneToPage>) {
        let (to_page, news) = mpsc::channel(32);
        (PageLink { id, to_page }, news)
    }

    fn offer_to(operator: &str) -> OutgoingCall {
        OutgoingCall {
            request_uri: format!("browser:{operator}"),
            to: Peer {
                transport: Transport::Udp,
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 9)),
            },
            from_user: "+36209990000".into(),
            from_display: None,
            sdp: "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                  m=audio 41500 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
                  a=rtpmap:101 telephone-event/8000\r\n"
                .into(),
            credentials: None,
            headers: Vec::new(),
        }
    }

    fn phone_change(input: Option<AcdInput>) -> (String, bool) {
        match input {
            Some(AcdInput::BrowserPhone { operator, binding }) => (operator, binding.is_some()),
            _ => panic!("the queue task hears of the phone tab"),
        }
    }

    #[tokio::test]
    async fn a_tab_becomes_the_phone_rings_and_a_decline_is_a_reject() {
        let (phones, mut acd) = phones();
        let (page, mut news) = tab(1);
        // No tab yet: the call cannot ring anyone.
        let (owner, mut events) = mpsc::channel(8);
        assert!(
            phones
                .invite(offer_to("anna"), owner.clone())
                .await
                .is_none()
        );

        phones
            .message("anna", &page, PhoneFromPage::UseBrowser { on: true })
            .await;
        assert_eq!(phone_change(acd.recv().await), ("anna".to_string(), true));
        assert_eq!(
            news.recv().await,
            Some(PhoneToPage::Phone {
                browser: true,
                message: None
            })
        );

        let leg = phones.invite(offer_to("anna"), owner).await.unwrap();
        assert!(is_browser_leg(leg) && leg.0 < 1 << 53, "{leg:?}");
        assert_eq!(
            news.recv().await,
            Some(PhoneToPage::Ring {
                leg: leg.0,
                caller: "+36209990000".into(),
                call_id: None,
                resume: false,
                auto_answer: false,
            })
        );
        assert!(matches!(events.recv().await, Some(CallEvent::LegProgress)));

        // Another operator's page cannot touch the leg.
        let (other, mut other_news) = tab(2);
        phones
            .message("bela", &other, PhoneFromPage::Decline { leg: leg.0 })
            .await;
        assert!(matches!(
            other_news.recv().await,
            Some(PhoneToPage::Ended { .. })
        ));

        phones
            .message("anna", &page, PhoneFromPage::Decline { leg: leg.0 })
            .await;
        assert!(matches!(
            events.recv().await,
            Some(CallEvent::LegFailed { status: 603, .. })
        ));
        assert!(matches!(news.recv().await, Some(PhoneToPage::Ended { .. })));

        // The tab closes: the SIP phone is the operator's phone again.
        phones.page_closed("anna", 1).await;
        assert_eq!(phone_change(acd.recv().await), ("anna".to_string(), false));
    }

    #[tokio::test]
    async fn a_second_tab_takes_over_and_the_first_is_told() {
        let (phones, mut acd) = phones();
        let (first, mut first_news) = tab(1);
        let (second, mut second_news) = tab(2);
        phones
            .message("anna", &first, PhoneFromPage::UseBrowser { on: true })
            .await;
        phones
            .message("anna", &second, PhoneFromPage::UseBrowser { on: true })
            .await;
        first_news.recv().await;
        assert_eq!(
            first_news.recv().await,
            Some(PhoneToPage::Phone {
                browser: false,
                message: Some("Another tab is your phone now.".into())
            })
        );
        assert!(matches!(
            second_news.recv().await,
            Some(PhoneToPage::Phone { browser: true, .. })
        ));
        // The first tab's close changes nothing: the second is the phone.
        phone_change(acd.recv().await);
        phone_change(acd.recv().await);
        phones.page_closed("anna", 1).await;
        assert!(acd.try_recv().is_err());
    }
}
