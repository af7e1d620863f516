//! 100 whispered calls through the mixer (issue 18's benchmark): caller, operator and a
//! supervisor per call, each sending 20 ms of PCMA every 20 ms with up to 10 ms of arrival
//! jitter, for 60 s of virtual time. Prints the mixer's CPU per call (wall time of every
//! push, tick and transmit, over the audio's duration) and the latency the mix adds for
//! the operator's ear: from a supervisor packet's arrival to the tick that sends its
//! audio to the operator.
//!
//! `cargo bench -p hotline-media --bench mixer`. Prints figures; asserts only that every
//! supervisor frame reached the operator.

use std::time::{Duration, Instant};

use hotline_media::Codec;
use hotline_media::g711::{alaw_to_linear, linear_to_alaw};
use hotline_media::mixer::{Mixer, Mode, PartyConfig, PartyId, Role};
use hotline_media::rtp::build_packet;
use rand::{Rng, SeedableRng};

const CALLS: usize = 100;
const SECONDS: u64 = 60;
const FRAME: Duration = Duration::from_millis(20);
const CALLER: PartyId = PartyId(0);
const OPERATOR: PartyId = PartyId(1);
const SUPERVISOR: PartyId = PartyId(2);
/// The supervisor's frame `seq` carries level `LEVEL_STEP · (1 + seq % MARKS)`, so the
/// operator's mix tells which frame it holds.
const MARKS: u16 = 20;
const LEVEL_STEP: i16 = 1200;

fn party(id: PartyId, role: Role) -> PartyConfig {
    PartyConfig {
        id,
        role,
        codec: Codec::Pcma,
        payload_type: 8,
        ssrc: 0x1000 + id.0,
        initial_seq: 0,
        initial_timestamp: 0,
    }
}

struct Call {
    mixer: Mixer,
    /// When each supervisor frame arrived, by sequence number.
    arrived: Vec<Option<Instant>>,
    /// The newest supervisor frame that arrived.
    newest: usize,
}

fn main() {
    let t0 = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(18);
    let mut calls: Vec<Call> = (0..CALLS)
        .map(|_| {
            let mut mixer = Mixer::new(Mode::Whisper);
            for (id, role) in [
                (CALLER, Role::Caller),
                (OPERATOR, Role::Operator),
                (SUPERVISOR, Role::Supervisor),
            ] {
                mixer.add_party(party(id, role)).expect("three parties fit");
            }
            Call {
                mixer,
                arrived: vec![None; (SECONDS * 50) as usize + 1],
                newest: 0,
            }
        })
        .collect();
    let silence = [linear_to_alaw(0); 160];
    let frames = SECONDS * 50;
    // Every packet's arrival in virtual time, sorted: (when, call, party, seq).
    let mut arrivals = Vec::new();
    for call in 0..CALLS {
        for seq in 0..frames {
            for p in [CALLER, OPERATOR, SUPERVISOR] {
                let jitter = Duration::from_micros(rng.random_range(0..10_000));
                arrivals.push((t0 + FRAME * seq as u32 + jitter, call, p, seq as u16));
            }
        }
    }
    arrivals.sort_by_key(|a| a.0);
    let mut latencies = Vec::new();
    let mut busy = Duration::ZERO;
    let mut next = 0;
    let mut tick = t0;
    let end = t0 + FRAME * frames as u32;
    let mut packet = Vec::new();
    while tick <= end {
        // Everything that arrived by this millisecond, then every call's due ticks.
        let now = tick;
        let started = Instant::now();
        while next < arrivals.len() && arrivals[next].0 <= now {
            let (at, c, p, seq) = arrivals[next];
            next += 1;
            let payload = if p == SUPERVISOR {
                calls[c].arrived[seq as usize] = Some(at);
                calls[c].newest = calls[c].newest.max(usize::from(seq));
                [linear_to_alaw(LEVEL_STEP * (1 + (seq % MARKS) as i16)); 160]
            } else {
                silence
            };
            packet.clear();
            packet.extend(build_packet(
                8,
                false,
                seq,
                u32::from(seq) * 160,
                0x1000 + p.0,
                &payload,
            ));
            calls[c].mixer.push(at, p, &packet);
        }
        for call in calls.iter_mut() {
            call.mixer.handle_timeout(now);
            while let Some((to, out)) = call.mixer.poll_transmit() {
                if to != OPERATOR {
                    continue;
                }
                let level = alaw_to_linear(out[12 + 80]);
                if level < LEVEL_STEP / 2 {
                    continue;
                }
                // The newest supervisor frame with this mark that arrived by now.
                let mark =
                    ((f32::from(level) / f32::from(LEVEL_STEP)).round() as u16).clamp(1, MARKS) - 1;
                let newest = call.newest;
                let heard = (newest.saturating_sub(usize::from(MARKS))..=newest)
                    .rev()
                    .filter_map(|seq| call.arrived[seq].map(|at| (seq, at)))
                    .find(|(seq, _)| *seq as u16 % MARKS == mark);
                if let Some((_, at)) = heard {
                    latencies.push(now - at);
                }
            }
        }
        busy += started.elapsed();
        tick += Duration::from_millis(1);
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let heard = latencies.len() as f64 / (CALLS as f64 * frames as f64);
    assert!(
        heard > 0.99,
        "only {:.1} % of supervisor frames reached the operator",
        heard * 100.0
    );
    println!(
        "mixer: {CALLS} whispered calls (3 parties, PCMA, 0-10 ms jitter), {SECONDS} s of audio each"
    );
    println!(
        "  CPU: {:.3} ms per call per second of audio = {:.4} % of a core per call (incl. the benchmark's own bookkeeping)",
        busy.as_secs_f64() * 1000.0 / (CALLS as f64 * SECONDS as f64),
        busy.as_secs_f64() * 100.0 / (CALLS as f64 * SECONDS as f64)
    );
    println!(
        "  added latency for the operator's ear (supervisor packet arrival -> its mix sent): p50 {:?}, p99 {:?}, max {:?}",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}
