//! One answered call in the IVR, sans-IO: the caller's RTP session and the flow run
//! joined together, plus dead-call detection. The daemon's call task feeds it datagrams,
//! SIP DTMF and timer firings, and sends what it returns.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_ivr::{Action, CallContext, Flow, FlowRun, QueueStatus, TransferTarget};
use hotline_media::rtp::{MediaEvent, RtpConfig, RtpSession, RtpStats};
use hotline_media::wav::Prompt;

/// Prompts by name, loaded once and shared by every call.
pub type PromptLibrary = HashMap<String, Prompt>;

/// What the flow asks of the world outside the call; the driver answers with
/// `queue_status` / `transfer_result`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    EnterQueue {
        queue: String,
        priority: u8,
        skill: Option<String>,
        /// The queue step's recording setting; `None`: the queue's.
        record: Option<hotline_ivr::RecordMode>,
    },
    LeaveQueue,
    Callback {
        number: String,
        queue: Option<String>,
        promise: Option<String>,
    },
    Transfer(TransferTarget),
}

/// Why the call wants to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hangup {
    /// The flow reached its end.
    FlowEnded,
    /// No RTP from the caller for the configured time.
    RtpTimeout,
}

pub struct IvrCall {
    rtp: RtpSession,
    flow: FlowRun,
    prompts: Arc<PromptLibrary>,
    /// Token of the playback the flow is waiting for; older tokens are stale (barge-in).
    playing: Option<u64>,
    /// Hold music: replayed whenever it ends, until the flow plays or stops something else.
    looping: Option<(u64, Vec<Prompt>)>,
    requests: std::collections::VecDeque<Request>,
    next_token: u64,
    rtp_timeout: Duration,
    /// Start of the current silence window for dead-call detection.
    heard_at: Instant,
    on_hold: bool,
    /// Connected to an operator: media flows through the bridge, not through us.
    bridged: bool,
    /// What played while the caller waited (the queue's music): played again while the
    /// operator holds the bridged call.
    music: Vec<Prompt>,
    hangup: Option<Hangup>,
    missing_prompts: Vec<String>,
}

impl IvrCall {
    pub fn new(
        flow: Arc<Flow>,
        call: CallContext,
        prompts: Arc<PromptLibrary>,
        rtp: RtpConfig,
        rtp_timeout: Duration,
        now: Instant,
    ) -> IvrCall {
        IvrCall {
            rtp: RtpSession::new(rtp, now),
            flow: FlowRun::new(flow, call),
            prompts,
            playing: None,
            looping: None,
            requests: Default::default(),
            next_token: 1,
            rtp_timeout,
            heard_at: now,
            on_hold: false,
            bridged: false,
            music: Vec::new(),
            hangup: None,
            missing_prompts: Vec::new(),
        }
    }

    /// The call was answered: the flow begins.
    pub fn start(&mut self, now: Instant) {
        self.heard_at = now;
        self.flow.start(now);
        self.run_flow(now);
    }

    /// The call goes on without running its flow (a call Hotline placed and connected):
    /// the flow's part counts as over.
    pub fn skip_flow(&mut self, now: Instant) {
        self.heard_at = now;
        self.flow.skip(now);
    }

    /// A datagram on the call's RTP port.
    pub fn handle_rtp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.rtp.handle_input(now, from, data);
        if self.rtp.last_received() == Some(now) {
            self.heard_at = now;
        }
        self.drain_media_events(now);
    }

    /// A digit that came by SIP INFO rather than RTP.
    pub fn handle_sip_dtmf(&mut self, now: Instant, digit: char) {
        self.flow.on_digit(now, digit);
        self.run_flow(now);
    }

    /// The queue's answer to `Request::EnterQueue`, and later changes.
    pub fn queue_status(&mut self, now: Instant, status: QueueStatus) {
        self.flow.on_queue_status(now, status);
        self.run_flow(now);
    }

    /// The answer to `Request::Transfer`.
    pub fn transfer_result(&mut self, now: Instant, ok: bool) {
        self.flow.on_transfer_result(now, ok);
        self.run_flow(now);
    }

    /// The time computed for the callback the flow just requested (`Request::Callback`):
    /// `in_ms` from now, `same_day` when still today on the flows' clock.
    pub fn callback_promise(&mut self, now: Instant, in_ms: u64, same_day: bool) {
        self.flow.on_callback_promise(now, in_ms, same_day);
        self.run_flow(now);
    }

    /// The next thing the flow asks of the outside world.
    pub fn poll_request(&mut self) -> Option<Request> {
        self.requests.pop_front()
    }

    /// The flow's part is over (e.g. connected to an operator): no more prompts from it.
    pub fn flow_finished(&self) -> bool {
        self.flow.is_finished()
    }

    /// Variables and tags the flow set (`set` steps), for the CDR.
    pub fn variables(&self) -> &std::collections::BTreeMap<String, String> {
        self.flow.variables()
    }

    /// The caller is now talking to an operator through a bridge: stop playing, and leave
    /// dead-call detection to whoever watches the bridge.
    pub fn set_bridged(&mut self, now: Instant) {
        if let Some((_, music)) = &self.looping {
            self.music = music.clone();
        }
        self.stop_playing(now);
        self.bridged = true;
    }

    /// The bridge is gone (the caller was transferred on): dead-call detection watches
    /// the caller again, from `now`.
    pub fn set_unbridged(&mut self, now: Instant) {
        self.bridged = false;
        self.heard_at = now;
    }

    /// Hold music on (`true`) or off, outside the flow: while the operator holds the
    /// bridged call (the driver then sends what [`IvrCall::poll_transmit`] gives instead
    /// of the bridge's), or while a transfer out of the flow waits. The caller hears the
    /// music they waited with, or the `fallback` prompt when there was none.
    pub fn hold_music(&mut self, now: Instant, on: bool, fallback: &str) {
        if let Some((_, music)) = &self.looping {
            self.music = music.clone();
        }
        self.stop_playing(now);
        if !on {
            return;
        }
        if self.music.is_empty() {
            self.music = self.resolve(vec![fallback.to_string()]);
        }
        if !self.music.is_empty() {
            let token = self.next_token();
            let music = self.music.clone();
            self.rtp.play(now, music.clone(), token);
            self.looping = Some((token, music));
        }
    }

    /// Where the caller's media goes (SDP address, or where their RTP comes from).
    pub fn rtp_destination(&self) -> Option<SocketAddr> {
        self.rtp.destination()
    }

    /// Where the caller's media was latched, if it was.
    pub fn rtp_latched(&self) -> Option<SocketAddr> {
        self.rtp.latched()
    }

    /// A re-INVITE: new address, or hold (`None`). Silence is expected while held.
    pub fn set_remote(&mut self, now: Instant, remote: Option<SocketAddr>) {
        self.on_hold = remote.is_none();
        self.heard_at = now;
        self.rtp.set_remote(remote);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.rtp.handle_timeout(now);
        self.drain_media_events(now);
        if self.flow.poll_timeout().is_some_and(|t| t <= now) {
            self.flow.handle_timeout(now);
            self.run_flow(now);
        }
        if let Some(dead_at) = self.dead_call_deadline()
            && dead_at <= now
            && self.hangup.is_none()
        {
            self.hangup = Some(Hangup::RtpTimeout);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.hangup.is_some() {
            return self.rtp.poll_timeout();
        }
        [
            self.rtp.poll_timeout(),
            self.flow.poll_timeout(),
            self.dead_call_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.rtp.poll_transmit()
    }

    /// Set once the call should be hung up; the driver sends BYE and ends the task.
    pub fn hangup(&self) -> Option<Hangup> {
        self.hangup
    }

    pub fn digits(&self) -> &str {
        self.flow.digits()
    }

    pub fn path(&self) -> &[String] {
        self.flow.path()
    }

    pub fn rtp_stats(&self) -> RtpStats {
        self.rtp.stats()
    }

    /// Prompts the flow asked for that are not loaded (reported once each by the driver).
    pub fn take_missing_prompts(&mut self) -> Vec<String> {
        std::mem::take(&mut self.missing_prompts)
    }

    fn dead_call_deadline(&self) -> Option<Instant> {
        (!self.on_hold && !self.bridged && !self.rtp_timeout.is_zero())
            .then(|| self.heard_at + self.rtp_timeout)
    }

    fn drain_media_events(&mut self, now: Instant) {
        while let Some(event) = self.rtp.poll_event() {
            match event {
                MediaEvent::Dtmf { digit, .. } => self.flow.on_digit(now, digit),
                MediaEvent::PlaybackDone { token } => {
                    if self.playing == Some(token) {
                        self.playing = None;
                        self.flow.on_playback_done(now);
                    } else if let Some((loop_token, prompts)) = self.looping.take()
                        && loop_token == token
                    {
                        let next = self.next_token();
                        self.rtp.play(now, prompts.clone(), next);
                        self.looping = Some((next, prompts));
                    }
                }
            }
            self.run_flow(now);
        }
    }

    fn stop_playing(&mut self, now: Instant) {
        self.playing = None;
        self.looping = None;
        if self.rtp.is_playing() {
            self.rtp.stop(now);
        }
    }

    fn next_token(&mut self) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        token
    }

    fn resolve(&mut self, names: Vec<String>) -> Vec<Prompt> {
        let mut found = Vec::with_capacity(names.len());
        for name in names {
            match self.prompts.get(&name) {
                Some(p) => found.push(p.clone()),
                None => self.missing_prompts.push(name),
            }
        }
        found
    }

    /// Carries out what the flow asks until it waits for something.
    fn run_flow(&mut self, now: Instant) {
        while let Some(action) = self.flow.poll_action() {
            match action {
                Action::Play { prompts } => {
                    let found = self.resolve(prompts);
                    // A new play replaces whatever is playing (the flow's contract);
                    // chained prompts (nothing playing) stay in one gap-free talkspurt.
                    self.stop_playing(now);
                    let token = self.next_token();
                    self.playing = Some(token);
                    // An empty play still completes, so the flow never stalls.
                    self.rtp.play(now, found, token);
                }
                Action::PlayLoop { prompts } => {
                    let found = self.resolve(prompts);
                    self.stop_playing(now);
                    // Nothing to loop (all missing) must not spin: just stay silent.
                    if !found.is_empty() {
                        let token = self.next_token();
                        self.rtp.play(now, found.clone(), token);
                        self.looping = Some((token, found));
                    }
                }
                Action::StopPlayback => self.stop_playing(now),
                Action::Hangup => {
                    if self.hangup.is_none() {
                        self.hangup = Some(Hangup::FlowEnded);
                    }
                }
                Action::EnterQueue {
                    queue,
                    priority,
                    skill,
                    record,
                } => {
                    self.requests.push_back(Request::EnterQueue {
                        queue,
                        priority,
                        skill,
                        record,
                    });
                }
                Action::LeaveQueue => self.requests.push_back(Request::LeaveQueue),
                Action::CallbackRequest {
                    number,
                    queue,
                    promise,
                } => self.requests.push_back(Request::Callback {
                    number,
                    queue,
                    promise,
                }),
                Action::Transfer { target } => self.requests.push_back(Request::Transfer(target)),
                // Read at the end through `variables()`.
                Action::SetVariable { .. } => {}
            }
        }
    }
}
