#!/usr/bin/env python3
"""What did the caller hear? Reads a tcpdump capture of the daemon's RTP towards the
caller, joins the payloads of each source (SSRC) in capture order, and checks which
prompts are in any of them.

usage: heard.py CAPTURE.pcap MEDIA_PORT CODEC(pcma|pcmu) --heard a.wav|b.pcap ... --not-heard c.wav ...
               [--dtmf DIGITS] [--tone HZ] [--tone-in-mix HZ] [--no-tone HZ] [--between T0 T1]

--dtmf: these RFC 4733 telephone-event digits (any payload type other than the codec's)
must have arrived, each with its end bit.

--tone: a tone of HZ (a browser's microphone, which its audio processing and encoder
change, so it cannot match byte for byte) must be in some source for at least half a
second: 20 ms frames whose energy is mostly at HZ (Goertzel) and that are not silence.
--tone-in-mix: the same for a tone mixed with other voices (HZ holds at least 15 % of a
frame's energy); --no-tone: no such frames at all (at most 100 ms of them).

--between: only packets captured from T0 to T1 (Unix seconds), e.g. one phase of a call.

A .wav is a prompt; a .pcap is audio someone else sent (e.g. the operator's phone
playing g711a.pcap), whose RTP payload must have reached this side through Hotline.

The prompts are encoded with Python's own G.711 (audioop, an implementation we did not
write), and a 200 ms stretch from the middle of each must appear byte for byte in what was
sent: that is what the caller's phone would have played.
"""
import struct
import sys
import warnings
import wave

warnings.filterwarnings("ignore", category=DeprecationWarning)
import audioop  # noqa: E402  (Python 3.11 on this machine; removed only in 3.13)


def rtp_payloads(path, dst_port):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    link_len = {1: 14, 113: 16, 0: 4}.get(linktype)
    if link_len is None:
        sys.exit(f"unsupported capture link type {linktype}")
    off, packets = 24, []
    while off + 16 <= len(data):
        secs, usecs, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ip = pkt[link_len:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 0x0F) * 4:]
        if len(udp) < 8 or struct.unpack(">H", udp[2:4])[0] != dst_port:
            continue
        rtp = udp[8:]
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            continue
        cc = rtp[0] & 0x0F
        ssrc = struct.unpack(">I", rtp[8:12])[0]
        packets.append((ssrc, rtp[1] & 0x7F, rtp[12 + 4 * cc:], secs + usecs / 1e6))
    return packets


def encoded_middle(wav_path, codec):
    with wave.open(wav_path, "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2), wav_path
        pcm = w.readframes(w.getnframes())
    enc = audioop.lin2alaw(pcm, 2) if codec == "pcma" else audioop.lin2ulaw(pcm, 2)
    mid = len(enc) // 2
    # The middle, and an early stretch for audio heard only briefly (hold music).
    return [enc[mid - 800:mid + 800], enc[3200:4800]]


def pcap_middle(path):
    """A 200 ms stretch from the middle of the RTP audio in a capture file of any port."""
    data = open(path, "rb").read()
    endian = "<" if struct.unpack("<I", data[:4])[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off, payload = 24, b""
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ip = pkt[14:]
        if len(ip) < 20 or ip[9] != 17:
            continue
        rtp = ip[(ip[0] & 0x0F) * 4 + 8:]
        if len(rtp) >= 12 and rtp[0] >> 6 == 2 and (rtp[1] & 0x7F) in (0, 8):
            payload += rtp[12 + 4 * (rtp[0] & 0x0F):]
    mid = len(payload) // 2
    return [payload[mid - 800:mid + 800]]


def tone_frames(stream, codec, hz, share=0.5):
    """How many 20 ms frames of a G.711 stream are a tone of `hz`: loud enough, and more
    than `share` of their energy at that frequency."""
    pcm = audioop.alaw2lin(stream, 2) if codec == "pcma" else audioop.ulaw2lin(stream, 2)
    return tone_frames_pcm(struct.unpack(f"<{len(pcm) // 2}h", pcm), hz, share)


def tone_frames_pcm(samples, hz, share=0.5):
    """The same for 8 kHz linear samples (Goertzel on 160-sample frames)."""
    import math
    coeff = 2 * math.cos(2 * math.pi * hz / 8000)
    found = 0
    for start in range(0, len(samples) - 160 + 1, 160):
        frame = samples[start:start + 160]
        energy = sum(x * x for x in frame)
        if energy < 160 * 300 * 300:  # quieter than about -40 dBFS: silence
            continue
        s1 = s2 = 0.0
        for x in frame:
            s1, s2 = x + coeff * s1 - s2, s1
        power = s1 * s1 + s2 * s2 - coeff * s1 * s2
        # A pure tone puts (N/2)·energy into its bin.
        if power / (80 * energy) > share:
            found += 1
    return found


def expected(path, codec):
    return pcap_middle(path) if path.endswith(".pcap") else encoded_middle(path, codec)


def main():
    args = sys.argv[1:]
    cap, port, codec = args[0], int(args[1]), args[2]
    heard, not_heard, mode, dtmf, tones = [], [], None, "", []
    mixed_tones, no_tones, between = [], [], []
    for a in args[3:]:
        if a in ("--heard", "--not-heard", "--dtmf", "--tone", "--tone-in-mix", "--no-tone",
                 "--between"):
            mode = a
        elif mode == "--dtmf":
            dtmf += a
        elif mode == "--tone":
            tones.append(int(a))
        elif mode == "--tone-in-mix":
            mixed_tones.append(int(a))
        elif mode == "--no-tone":
            no_tones.append(int(a))
        elif mode == "--between":
            between.append(float(a))
        elif mode == "--heard":
            heard.append(a)
        else:
            not_heard.append(a)
    packets = rtp_payloads(cap, port)
    if between:
        t0, t1 = between
        packets = [p for p in packets if t0 <= p[3] <= t1]
    pt = 8 if codec == "pcma" else 0
    audio_packets = [p for p in packets if p[1] == pt]
    if not audio_packets:
        print(f"heard: no RTP with payload type {pt} to port {port} in {cap}")
        return 1
    # One stream per source (the IVR's prompts and music, each phone relayed through
    # Hotline), in capture order: on loopback nothing is reordered, and a phone that
    # replays the same pcap twice (same sequence numbers) stays in order.
    streams = {}
    for ssrc, _, payload, _ in audio_packets:
        streams.setdefault(ssrc, []).append(payload)
    streams = [b"".join(s) for s in streams.values()]
    total = sum(len(s) for s in streams)
    print(f"heard: {len(audio_packets)} packets, {total / 8000:.2f} s of audio from {len(streams)} sources")
    ok = True
    for w in heard:
        if any(chunk in stream for chunk in expected(w, codec) for stream in streams):
            print(f"heard: {w}: heard")
        else:
            print(f"heard: {w}: NOT heard, but should have been")
            ok = False
    for w in not_heard:
        if any(chunk in stream for chunk in expected(w, codec) for stream in streams):
            print(f"heard: {w}: heard, but should not have been")
            ok = False
        else:
            print(f"heard: {w}: not heard, as expected")
    wanted = [(hz, 0.5, "") for hz in tones] + [(hz, 0.15, " in the mix") for hz in mixed_tones]
    for hz, share, where in wanted:
        frames = max(tone_frames(stream, codec, hz, share) for stream in streams)
        if frames >= 25:
            print(f"heard: a {hz} Hz tone{where}: {frames * 20} ms of it")
        else:
            print(f"heard: a {hz} Hz tone{where}: NOT heard ({frames * 20} ms of it, 500 wanted)")
            ok = False
    for hz in no_tones:
        frames = max(tone_frames(stream, codec, hz, 0.15) for stream in streams)
        if frames <= 5:
            print(f"heard: no {hz} Hz tone, as expected ({frames * 20} ms that might be)")
        else:
            print(f"heard: a {hz} Hz tone: heard ({frames * 20} ms of it), but should not have been")
            ok = False
    # Events 0-9, then * (10) and # (11).
    ended = {p[2][0] for p in packets if p[1] != pt and len(p[2]) >= 4 and p[2][1] & 0x80}
    got = "".join("0123456789*#"[e] for e in sorted(ended) if e < 12)
    for d in dtmf:
        if "0123456789*#".index(d) in ended:
            print(f"heard: DTMF {d}: arrived")
        else:
            print(f"heard: DTMF {d}: NOT arrived (digits that did: {got or 'none'})")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
