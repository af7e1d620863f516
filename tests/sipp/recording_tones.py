#!/usr/bin/env python3
"""Is this a recording of both sides of a call? Reads a call recording (WAV, 8000 Hz
16-bit, mono or stereo) and checks, with Python's own wave module (a reader we did not
write), that each of the given tones is present, mixed with the others, for at least a
second (20 ms frames holding at least 15 % of their energy at that frequency, Goertzel).
Stereo files are checked per channel: --left HZ and --right HZ must be in that channel.

usage: recording_tones.py FILE.wav [--tone HZ ...] [--left HZ] [--right HZ]
"""
import os
import struct
import sys
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from heard import tone_frames_pcm  # noqa: E402  (beside this file)


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    path, wanted = args[0], []
    i = 1
    while i < len(args):
        if args[i] not in ("--tone", "--left", "--right") or i + 1 >= len(args):
            sys.exit(__doc__)
        wanted.append((args[i][2:], int(args[i + 1])))
        i += 2
    with wave.open(path, "rb") as w:
        channels, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        raw = w.readframes(n)
    if width != 2 or rate != 8000:
        sys.exit(f"{path}: {rate} Hz {8 * width}-bit; expected 8000 Hz 16-bit")
    samples = struct.unpack(f"<{len(raw) // 2}h", raw)
    tracks = {"tone": samples[0::channels]} if channels == 1 else {
        "left": samples[0::2], "right": samples[1::2]}
    print(f"{path}: {channels} channel(s), {n / 8000:.1f} s")
    ok = True
    for where, hz in wanted:
        if where == "tone" and channels != 1:
            where = "left"
        track = tracks.get(where)
        if track is None:
            print(f"  no {where} channel in a {channels}-channel file")
            ok = False
            continue
        found = tone_frames_pcm(track, hz, share=0.15)
        good = found >= 50
        ok &= good
        print(f"  {hz} Hz ({where}): {found * 20} ms {'ok' if good else 'MISSING (need 1000 ms)'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
