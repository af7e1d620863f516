#!/usr/bin/env python3
"""Sends one RFC 4733 digit to HOST:PORT from a port of its own, as a spoofer on the
caller's host would: five 20 ms event packets, then three end packets.

Usage: spoof_dtmf.py HOST PORT DIGIT [PAYLOAD_TYPE]"""
import socket
import struct
import sys
import time

EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}


def main():
    host, port, digit = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    pt = int(sys.argv[4]) if len(sys.argv) > 4 else 101
    event = EVENTS[digit]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    ssrc, ts = 0x5B00F, 80_000
    seq = 1
    for i in range(8):
        end = i >= 5
        duration = min(i + 1, 5) * 160
        header = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | pt, seq, ts, ssrc)
        payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)
        s.sendto(header + payload, (host, port))
        seq += 1
        time.sleep(0.02)
    print(f"spoofed digit {digit} to {host}:{port} from port {s.getsockname()[1]}")


if __name__ == "__main__":
    main()
