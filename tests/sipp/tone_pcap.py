#!/usr/bin/env python3
"""Writes a capture of RTP carrying a steady tone, for SIPp's play_pcap_audio: a caller
whose voice a check can recognise anywhere (a supervisor's ear, a recording).

usage: tone_pcap.py OUT.pcap HZ SECONDS [pcma|pcmu]

PCMA (payload type 8) or PCMU (0), 20 ms packets at -10 dBFS, in Ethernet/IPv4/UDP
frames timed 20 ms apart (SIPp replays them at that pace and rewrites the addresses).
"""
import math
import struct
import sys
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
import audioop  # noqa: E402  (Python 3.11 on this machine; removed only in 3.13)


def main():
    out, hz, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    codec = sys.argv[4] if len(sys.argv) > 4 else "pcma"
    pt = 8 if codec == "pcma" else 0
    packets = int(seconds * 50)
    amplitude = 10362  # -10 dBFS
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for n in range(packets):
            pcm = struct.pack("<160h", *(int(amplitude * math.sin(2 * math.pi * hz * (n * 160 + i) / 8000))
                                         for i in range(160)))
            payload = audioop.lin2alaw(pcm, 2) if pt == 8 else audioop.lin2ulaw(pcm, 2)
            rtp = struct.pack(">BBHII", 0x80, pt, n & 0xFFFF, n * 160, 0x70AE) + payload
            udp = struct.pack(">HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp
            ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
            frame = b"\x00" * 12 + b"\x08\x00" + ip
            t = n * 20_000
            f.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(frame), len(frame)))
            f.write(frame)


if __name__ == "__main__":
    main()
