//! One answered call in the IVR, sans-IO: the caller's RTP session and the flow run
//! joined together, plus dead-call detection. The daemon's call task feeds it datagrams,
//! SIP DTMF and timer firings, and sends what it returns.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_ivr::{Action, Flow, FlowRun};
use hotline_media::rtp::{MediaEvent, RtpConfig, RtpSession, RtpStats};
use hotline_media::wav::Prompt;

/// Prompts by name, loaded once and shared by every call.
pub type PromptLibrary = HashMap<String, Prompt>;

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
    next_token: u64,
    rtp_timeout: Duration,
    /// Start of the current silence window for dead-call detection.
    heard_at: Instant,
    on_hold: bool,
    hangup: Option<Hangup>,
    missing_prompts: Vec<String>,
}

impl IvrCall {
    pub fn new(
        flow: Arc<Flow>,
        prompts: Arc<PromptLibrary>,
        rtp: RtpConfig,
        rtp_timeout: Duration,
        now: Instant,
    ) -> IvrCall {
        IvrCall {
            rtp: RtpSession::new(rtp, now),
            flow: FlowRun::new(flow),
            prompts,
            playing: None,
            next_token: 1,
            rtp_timeout,
            heard_at: now,
            on_hold: false,
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
        (!self.on_hold && !self.rtp_timeout.is_zero()).then(|| self.heard_at + self.rtp_timeout)
    }

    fn drain_media_events(&mut self, now: Instant) {
        while let Some(event) = self.rtp.poll_event() {
            match event {
                MediaEvent::Dtmf { digit, .. } => self.flow.on_digit(now, digit),
                MediaEvent::PlaybackDone { token } => {
                    if self.playing == Some(token) {
                        self.playing = None;
                        self.flow.on_playback_done(now);
                    }
                }
            }
            self.run_flow(now);
        }
    }

    /// Carries out what the flow asks until it waits for something.
    fn run_flow(&mut self, now: Instant) {
        while let Some(action) = self.flow.poll_action() {
            match action {
                Action::Play { prompts } => {
                    let mut found = Vec::with_capacity(prompts.len());
                    for name in prompts {
                        match self.prompts.get(&name) {
                            Some(p) => found.push(p.clone()),
                            None => self.missing_prompts.push(name),
                        }
                    }
                    let token = self.next_token;
                    self.next_token += 1;
                    self.playing = Some(token);
                    // An empty play still completes, so the flow never stalls.
                    self.rtp.play(now, found, token);
                }
                Action::StopPlayback => {
                    self.playing = None;
                    self.rtp.stop(now);
                }
                Action::Hangup => {
                    if self.hangup.is_none() {
                        self.hangup = Some(Hangup::FlowEnded);
                    }
                }
            }
        }
    }
}
