//! A supervisor on a connected call (PRODUCT S1, issue 18): listen, whisper, barge, take
//! over. The supervisor's phone (SIP or browser) is rung as a third leg, answering by
//! itself; once it answers, the call's media runs through a [`Mixer`] instead of the
//! two-party bridge, so each party hears the mix the mode allows and never itself. Modes
//! switch in the mixer without redialling. Stopping drops the supervisor's leg and the
//! bridge takes over again; taking over drops the operator's leg instead and bridges the
//! caller with the supervisor, who is then the call's operator.
//!
//! The bridge stays in place while mixing: it still checks where the caller's and the
//! operator's packets come from, latches them and keeps dead-call detection fed; only its
//! forwarding is replaced by the mix.

use std::net::SocketAddr;
use std::time::Instant;

use hotline_media::bridge::{Bridge, Side};
use hotline_media::mixer::{self, Mixer, PartyConfig, PartyId, Role};
use hotline_sip::sdp;
use tracing::{info, warn};

use super::{
    CALLER, CallSession, Conversation, Leg, LegId, LegState, LocalMedia, Output, Party, Port,
    QueueOut, SipOut, media_codec, rtp_destination,
};

/// What a supervisor does on a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorMode {
    /// Hears caller and operator; nobody hears them.
    Listen,
    /// The operator hears them, the caller does not.
    Whisper,
    /// A three-way call.
    Barge,
}

impl MonitorMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorMode::Listen => "listen",
            MonitorMode::Whisper => "whisper",
            MonitorMode::Barge => "barge",
        }
    }

    fn mixer_mode(self) -> mixer::Mode {
        match self {
            MonitorMode::Listen => mixer::Mode::Listen,
            MonitorMode::Whisper => mixer::Mode::Whisper,
            MonitorMode::Barge => mixer::Mode::Barge,
        }
    }
}

/// A supervisor's request on a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorRequest {
    /// Join in this mode (their phone is rung; `beep`: the operator hears a beep when
    /// the supervisor comes on, the queue's `monitor_beep`), or switch to it.
    Mode { mode: MonitorMode, beep: bool },
    /// The operator's leg drops; the supervisor keeps the caller.
    TakeOver,
    /// Leave the call.
    Stop,
}

/// Where a supervisor's monitoring stands, as the board and the audit log get it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MonitorState {
    /// Their phone rings (it should answer by itself).
    Ringing(MonitorMode),
    /// On the call in this mode.
    Active(MonitorMode),
    /// They took the call over: they are its operator now.
    TookOver,
    /// They left, or could not join (why).
    Ended(String),
}

impl MonitorState {
    /// The word the audit log and the board use.
    pub fn as_str(&self) -> &'static str {
        match self {
            MonitorState::Ringing(_) => "ringing",
            MonitorState::Active(m) => m.as_str(),
            MonitorState::TookOver => "take_over",
            MonitorState::Ended(_) => "ended",
        }
    }
}

/// The supervisor's leg and, once it answered, the mix.
pub(super) struct Monitor {
    leg: Leg,
    mode: MonitorMode,
    /// The supervisor's leg's peer, on side B (side A unused): it latches their address
    /// as the caller's bridge does.
    peer: Bridge,
    mixer: Option<Mixer>,
    beep: bool,
}

/// What an operator hears when a supervisor comes on the call: 150 ms at 1.4 kHz, quiet
/// (-16 dBFS), faded in and out so it does not click.
fn beep() -> Vec<i16> {
    const SAMPLES: usize = 1200;
    (0..SAMPLES)
        .map(|i| {
            let fade = (i.min(SAMPLES - 1 - i) as f64 / 80.0).min(1.0);
            let phase = 2.0 * std::f64::consts::PI * 1400.0 * i as f64 / 8000.0;
            (5200.0 * fade * phase.sin()).round() as i16
        })
        .collect()
}

/// The mix's own streams: another SSRC per party than anything they heard before, so a
/// phone's jitter buffer starts afresh rather than seeing a sequence jump.
fn mix_ssrc(base: u32, party: LegId) -> u32 {
    base.wrapping_add(0x9E37_79B9_u32.wrapping_mul(party.wrapping_add(1)))
}

impl CallSession {
    /// A supervisor (`supervisor`: their operator account, whose phone is rung) asks to
    /// listen, whisper, barge, switch, take over or stop. `Ok` means it is under way: the
    /// progress comes as [`Output::Monitor`].
    pub fn monitor(
        &mut self,
        now: Instant,
        supervisor: &str,
        request: MonitorRequest,
    ) -> Result<(), String> {
        if let Some(m) = &self.monitor
            && m.leg.party.name() != supervisor
        {
            return Err(format!("{} is already on this call.", m.leg.party.name()));
        }
        match request {
            MonitorRequest::Stop => {
                if self.monitor.is_none() {
                    return Err("You are not on this call.".into());
                }
                self.end_monitor(now, "Stopped.");
            }
            MonitorRequest::Mode { mode, beep } => {
                if let Some(m) = self.monitor.as_mut() {
                    m.mode = mode;
                    let state = match m.mixer.as_mut() {
                        Some(mixer) => {
                            mixer.set_mode(mode.mixer_mode());
                            MonitorState::Active(mode)
                        }
                        None => MonitorState::Ringing(mode),
                    };
                    info!(call_id = %self.call_id, %supervisor, mode = mode.as_str(), "monitoring mode");
                    self.monitor_news(state);
                    return Ok(());
                }
                self.start_monitor(now, supervisor, mode, beep)?;
            }
            MonitorRequest::TakeOver => self.take_over(now)?,
        }
        self.settle(now);
        Ok(())
    }

    /// The supervisor on the call and their mode, if any.
    pub fn monitored(&self) -> Option<(&str, MonitorMode)> {
        self.monitor.as_ref().map(|m| (m.leg.party.name(), m.mode))
    }

    fn start_monitor(
        &mut self,
        now: Instant,
        supervisor: &str,
        mode: MonitorMode,
        beep: bool,
    ) -> Result<(), String> {
        let Some((operator, held)) = self.connected().map(|(o, h)| (o.to_string(), h)) else {
            return Err("Nobody is talking with the caller now.".into());
        };
        if operator == supervisor {
            return Err("This is your own call.".into());
        }
        if held {
            return Err("The operator holds the caller now.".into());
        }
        if self.consult.is_some() || self.checking.is_some() {
            return Err("The operator is transferring the caller now.".into());
        }
        let id = self.new_leg_id();
        let leg = Leg::placing(
            id,
            Party::Operator(supervisor.to_string()),
            self.unix_ms(now),
        );
        info!(call_id = %self.call_id, %supervisor, %operator, mode = mode.as_str(), "monitoring: ringing the supervisor");
        self.monitor = Some(Monitor {
            leg,
            mode,
            peer: Bridge::new(None, None),
            mixer: None,
            beep,
        });
        self.monitor_news(MonitorState::Ringing(mode));
        self.outputs.push_back(Output::PlaceOperator {
            leg: id,
            operator: supervisor.to_string(),
            auto_answer: true,
        });
        Ok(())
    }

    /// The operator's leg drops (filed as handed to the supervisor, the operator goes to
    /// wrap-up) and the caller is bridged with the supervisor, now the call's operator.
    fn take_over(&mut self, now: Instant) -> Result<(), String> {
        match &self.monitor {
            Some(m) if m.leg.state == LegState::Talking => {}
            Some(_) => return Err("Your phone has not answered yet.".into()),
            None => return Err("Listen to the call first.".into()),
        }
        let Some(m) = self.monitor.take() else {
            return Ok(());
        };
        let supervisor = m.leg.party.name().to_string();
        info!(call_id = %self.call_id, %supervisor, "monitoring: taking over");
        self.monitor_news_for(&supervisor, MonitorState::TookOver);
        self.hand_off(
            now,
            "take over",
            format!("supervisor {supervisor} (took over)"),
        );
        self.end_conversation();
        let mut leg = m.leg;
        leg.deadline = None;
        let remote = m.peer.remote(Side::B);
        let mut bridge = self.caller_bridge(remote);
        if let Some(addr) = m.peer.latched(Side::B) {
            bridge.set_latched(Side::B, addr);
        }
        self.leg = Some(leg);
        self.bridge = Some(bridge);
        self.rtcp = Default::default();
        self.bridged_at = Some(now);
        // Their phone was marked busy under this call when it was rung.
        self.in_call = Some(Conversation::Outbound(supervisor.clone()));
        self.outputs.push_back(Output::Connected {
            operator: supervisor.clone(),
            queue: self.was_queued.clone(),
            note: None,
            record: self.record_step,
        });
        self.recording_note(now, format!("{supervisor} took over"));
        self.operator = Some(supervisor);
        Ok(())
    }

    /// The supervisor leaves (`why`, for the board): their leg is hung up, they are free
    /// again without wrap-up, and caller and operator are bridged as before.
    pub(super) fn end_monitor(&mut self, _now: Instant, why: &str) {
        let Some(m) = self.monitor.take() else {
            return;
        };
        info!(call_id = %self.call_id, supervisor = %m.leg.party.name(), "monitoring ended: {why}");
        self.sip(SipOut::Hangup { leg: m.leg.id });
        self.queue(QueueOut::OutboundCancelled {
            operator: m.leg.party.name().to_string(),
        });
        self.monitor_news_for(m.leg.party.name(), MonitorState::Ended(why.to_string()));
    }

    fn monitor_news(&mut self, state: MonitorState) {
        let Some(supervisor) = self
            .monitor
            .as_ref()
            .map(|m| m.leg.party.name().to_string())
        else {
            return;
        };
        self.monitor_news_for(&supervisor, state);
    }

    fn monitor_news_for(&mut self, supervisor: &str, state: MonitorState) {
        let operator = self
            .leg
            .as_ref()
            .map(|l| l.party.name().to_string())
            .unwrap_or_default();
        self.outputs.push_back(Output::Monitor {
            supervisor: supervisor.to_string(),
            operator,
            state,
        });
    }

    // ---- the supervisor's leg --------------------------------------------------------

    /// The supervisor's leg was placed; `false` when `leg` is not theirs.
    pub(super) fn monitor_leg_placed(
        &mut self,
        now: Instant,
        leg: LegId,
        media: LocalMedia,
    ) -> bool {
        let Some(m) = self.monitor.as_mut().filter(|m| m.leg.id == leg) else {
            return false;
        };
        if m.leg.state == LegState::Placing {
            m.leg.state = LegState::Ringing;
            m.leg.media = Some(media);
            // It answers by itself; one that doesn't is not kept ringing forever.
            m.leg.deadline = Some(now + super::EXTERNAL_RING_LIMIT);
        }
        true
    }

    /// The supervisor's phone answered: the mix starts. `false` when `leg` is not theirs.
    pub(super) fn monitor_leg_answered(
        &mut self,
        now: Instant,
        leg: LegId,
        answer: Option<&str>,
    ) -> bool {
        if self.monitor.as_ref().is_none_or(|m| m.leg.id != leg) {
            return false;
        }
        if self
            .monitor
            .as_ref()
            .is_some_and(|m| m.leg.state != LegState::Ringing)
        {
            return true;
        }
        let negotiated = answer.and_then(|s| sdp::negotiate(s).ok());
        let (Some(n), Some(operator_leg)) = (negotiated, self.leg.as_ref()) else {
            self.end_monitor(now, "Your phone answered without usable audio.");
            return true;
        };
        let caller = (
            media_codec(self.negotiated.codec),
            self.negotiated.payload_type,
        );
        // A leg joined by an attended transfer may speak the other law.
        let operator = operator_leg
            .translation
            .map_or(caller, |(to_leg, _)| to_leg.to);
        let operator_leg_id = operator_leg.id;
        let parties = [
            (CALLER, Role::Caller, caller),
            (operator_leg_id, Role::Operator, operator),
            (
                leg,
                Role::Supervisor,
                (media_codec(n.codec), n.payload_type),
            ),
        ];
        let answered_at = self.unix_ms(now);
        let Some(m) = self.monitor.as_mut() else {
            return true;
        };
        let mut mixer = Mixer::new(m.mode.mixer_mode());
        for (id, role, (codec, payload_type)) in parties {
            let added = mixer.add_party(PartyConfig {
                id: PartyId(id),
                role,
                codec,
                payload_type,
                ssrc: mix_ssrc(self.ssrc, id),
                initial_seq: self.initial_seq.wrapping_add(id as u16),
                initial_timestamp: self.initial_timestamp,
            });
            if let Err(e) = added {
                warn!(call_id = %self.call_id, "monitoring: {e}");
            }
        }
        if m.beep {
            mixer.play_to(PartyId(operator_leg_id), &beep());
        }
        m.peer.set_remote(Side::B, rtp_destination(&n));
        m.leg.state = LegState::Talking;
        m.leg.answered_at_ms = Some(answered_at);
        m.leg.deadline = None;
        m.mixer = Some(mixer);
        let mode = m.mode;
        info!(call_id = %self.call_id, supervisor = %m.leg.party.name(), mode = mode.as_str(), "monitoring");
        self.monitor_news(MonitorState::Active(mode));
        true
    }

    /// The supervisor's phone failed or hung up. `false` when `leg` is not theirs.
    pub(super) fn monitor_leg_gone(
        &mut self,
        now: Instant,
        leg: LegId,
        status: Option<u16>,
    ) -> bool {
        let Some(m) = self.monitor.as_ref().filter(|m| m.leg.id == leg) else {
            return false;
        };
        let why = match (status, &m.leg.state) {
            (None, LegState::Talking) => "You hung up.".to_string(),
            (None, _) => "Your phone gave up.".to_string(),
            (Some(503), _) => "Your phone cannot be reached now.".to_string(),
            (Some(status), _) => format!("Your phone did not answer ({status})."),
        };
        // Its dialog is over: no BYE for it.
        let Some(m) = self.monitor.take() else {
            return true;
        };
        info!(call_id = %self.call_id, supervisor = %m.leg.party.name(), "monitoring ended: {why}");
        self.queue(QueueOut::OutboundCancelled {
            operator: m.leg.party.name().to_string(),
        });
        self.monitor_news_for(m.leg.party.name(), MonitorState::Ended(why));
        self.settle(now);
        true
    }

    /// A re-INVITE on the supervisor's leg (a new address; hold is not honoured: they
    /// hear the call or leave it). `false` when `leg` is not theirs.
    pub(super) fn monitor_leg_reinvite(&mut self, leg: LegId, offer: Option<&str>) -> bool {
        let Some(m) = self.monitor.as_mut().filter(|m| m.leg.id == leg) else {
            return false;
        };
        let answer = match super::negotiate(offer) {
            Ok(n) => {
                m.leg.sdp_version += 1;
                let media = m.leg.media.unwrap_or(self.media);
                if let Some(remote) = rtp_destination(&n) {
                    m.peer.set_remote(Side::B, Some(remote));
                }
                SipOut::Answer {
                    leg,
                    sdp: sdp::answer(
                        &n,
                        media.ip,
                        media.port,
                        self.sdp_session,
                        m.leg.sdp_version,
                    ),
                }
            }
            Err(status) => SipOut::Reject { leg, status },
        };
        self.sip(answer);
        true
    }

    // ---- media -------------------------------------------------------------------------

    /// While mixing, every party's RTP goes into the mix; `false` when not mixing.
    pub(super) fn mix_datagram(
        &mut self,
        now: Instant,
        port: Port,
        from: SocketAddr,
        data: &[u8],
    ) -> bool {
        let Some(m) = self.monitor.as_mut() else {
            return false;
        };
        let Some(mixer) = m.mixer.as_mut() else {
            return false;
        };
        let Port::Rtp(leg) = port else {
            // RTCP is not relayed while three parties share the call.
            return true;
        };
        let operator = self.leg.as_ref().map(|l| l.id);
        let heard = if leg == CALLER || Some(leg) == operator {
            let side = if leg == CALLER { Side::A } else { Side::B };
            // The bridge checks the source, latches it and notes it is alive.
            self.bridge.as_mut().is_some_and(|b| {
                b.hears(side, from, false) && {
                    b.forward(now, side, from, data);
                    true
                }
            })
        } else if leg == m.leg.id {
            m.peer.hears(Side::B, from, false) && {
                m.peer.forward(now, Side::B, from, data);
                true
            }
        } else {
            false
        };
        if heard {
            mixer.push(now, PartyId(leg), data);
        }
        true
    }

    /// The mix's next packet, and where it goes.
    pub(super) fn mix_transmit(&mut self) -> Option<(Port, SocketAddr, Vec<u8>)> {
        let m = self.monitor.as_mut()?;
        let mixer = m.mixer.as_mut()?;
        while let Some((PartyId(leg), packet)) = mixer.poll_transmit() {
            let to = if leg == m.leg.id {
                m.peer.remote(Side::B)
            } else {
                let side = if leg == CALLER { Side::A } else { Side::B };
                self.bridge.as_ref().and_then(|b| b.remote(side))
            };
            if let Some(to) = to {
                return Some((Port::Rtp(leg), to, packet));
            }
        }
        None
    }

    pub(super) fn mix_timeout(&self) -> Option<Instant> {
        let m = self.monitor.as_ref()?;
        m.mixer
            .as_ref()
            .and_then(Mixer::poll_timeout)
            .or(m.leg.deadline)
    }

    pub(super) fn mix_handle_timeout(&mut self, now: Instant) {
        let expired = self
            .monitor
            .as_ref()
            .is_some_and(|m| m.leg.deadline.is_some_and(|d| d <= now));
        if expired {
            self.end_monitor(now, "Your phone did not answer.");
            return;
        }
        if let Some(mixer) = self.monitor.as_mut().and_then(|m| m.mixer.as_mut()) {
            mixer.handle_timeout(now);
        }
    }
}
