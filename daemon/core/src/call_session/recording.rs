//! Recording a call (PRODUCT S2): a tap on the bridged media. Every RTP packet the
//! caller or the talking leg sends is copied, as it came, into a
//! [`hotline_media::recorder::Recorder`], which puts both voices on one timeline; the
//! relayed packets themselves are untouched, so recording adds nothing to what the
//! parties hear. The driver takes the PCM ([`CallSession::take_recorded`]) and writes the
//! file; [`Output::Recording`] tells it when a recording starts, what happens in it
//! (marks: who talks, hold) and when it stops.
//!
//! One recording per call: it goes on across holds, transfers and a supervisor taking
//! over (the operator's track is whoever talks with the caller), with each change marked.
//! A recorded call's media is never lent to a relay thread, since the tap must see every
//! packet.

use std::net::SocketAddr;
use std::time::Instant;

use hotline_media::bridge::Side;
use hotline_media::recorder::{Layout, Recorder, Track};
use tracing::info;

use super::{CALLER, CallSession, LegState, Output, Phase, Port, media_codec};

/// What happens to a call's recording, for the driver's file and the record.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordingEvent {
    /// Open the file: the recording's timeline starts now. `by`: the console user who
    /// started it (`None`: the queue records every call).
    Started {
        by: Option<String>,
        stereo: bool,
        operator: Option<String>,
        queue: Option<String>,
    },
    /// Something happened at `offset_ms` into the recording.
    Mark { offset_ms: u64, label: String },
    /// Take the rest of the audio ([`CallSession::take_recorded`]) and close the file.
    Stopped {
        by: Option<String>,
        duration_ms: u64,
    },
}

pub(super) struct Recording {
    recorder: Recorder,
    /// Released audio the driver has not taken yet.
    pcm: Vec<i16>,
}

impl CallSession {
    /// Starts recording the connected call (the queue records always, or the operator or
    /// a supervisor pressed record). `Err` says why not, for the console.
    pub fn start_recording(
        &mut self,
        now: Instant,
        stereo: bool,
        by: Option<String>,
    ) -> Result<(), String> {
        if !matches!(self.phase, Phase::Answered) {
            return Err("The call is over.".into());
        }
        if self.recording.is_some() {
            return Err("The call is already being recorded.".into());
        }
        let Some(with) = self.talking_party() else {
            return Err("Nobody is talking with the caller.".into());
        };
        info!(call_id = %self.call_id, by = by.as_deref().unwrap_or("-"), "recording started");
        let layout = if stereo { Layout::Stereo } else { Layout::Mono };
        self.recording = Some(Recording {
            recorder: Recorder::new(now, layout),
            pcm: Vec::new(),
        });
        self.outputs
            .push_back(Output::Recording(RecordingEvent::Started {
                by,
                stereo,
                operator: self.operator.clone(),
                queue: self.was_queued.clone(),
            }));
        self.recording_note(now, format!("talking with {with}"));
        Ok(())
    }

    /// Stops the recording (from the console, or the call ended).
    pub fn stop_recording(&mut self, now: Instant, by: Option<String>) -> Result<(), String> {
        let Some(mut r) = self.recording.take() else {
            return Err("The call is not being recorded.".into());
        };
        let tail = r.recorder.finish(now);
        r.pcm.extend_from_slice(&tail);
        let duration_ms = r.recorder.released() / 8;
        info!(call_id = %self.call_id, duration_ms, "recording stopped");
        // The driver takes the tail when it handles `Stopped`.
        self.stopped_pcm = r.pcm;
        self.outputs
            .push_back(Output::Recording(RecordingEvent::Stopped {
                by,
                duration_ms,
            }));
        Ok(())
    }

    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// The recorded audio released since the last call (16-bit PCM at 8 kHz,
    /// interleaved caller/operator when stereo), appended to `out`.
    pub fn take_recorded(&mut self, out: &mut Vec<i16>) {
        out.append(&mut self.stopped_pcm);
        if let Some(r) = self.recording.as_mut() {
            out.append(&mut r.pcm);
        }
    }

    /// Marks the recording, if there is one, at `now`.
    pub(super) fn recording_note(&mut self, now: Instant, label: String) {
        if let Some(r) = &self.recording {
            let offset_ms = r.recorder.offset_ms(now);
            self.outputs
                .push_back(Output::Recording(RecordingEvent::Mark { offset_ms, label }));
        }
    }

    /// Who talks with the caller now: the operator's or outside number's leg.
    fn talking_party(&self) -> Option<String> {
        self.leg
            .as_ref()
            .filter(|l| l.state == LegState::Talking)
            .map(|l| l.party.name().to_string())
    }

    /// Copies an RTP packet from the caller or the talking leg, from the address the
    /// bridge takes that side's media from, into the recording.
    pub(super) fn record_tap(&mut self, now: Instant, port: Port, from: SocketAddr, data: &[u8]) {
        let Some(r) = self.recording.as_mut() else {
            return;
        };
        let Port::Rtp(id) = port else { return };
        let caller = (
            media_codec(self.negotiated.codec),
            self.negotiated.payload_type,
        );
        let talking = self.leg.as_ref().filter(|l| l.state == LegState::Talking);
        let (track, side, (codec, pt)) = match talking {
            _ if id == CALLER => (Track::Caller, Side::A, caller),
            Some(l) if l.id == id => (
                Track::Operator,
                Side::B,
                // A leg joined by an attended transfer may speak the other law.
                l.translation.map_or(caller, |(to_leg, _)| to_leg.to),
            ),
            _ => return,
        };
        if !self
            .bridge
            .as_ref()
            .is_some_and(|b| b.hears(side, from, false))
        {
            return;
        }
        r.recorder.push(now, track, codec, pt, data);
        r.recorder.pull_into(now, &mut r.pcm);
    }
}
