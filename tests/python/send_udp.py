"""Sends crafted UDP frames out of an interface with a raw AF_PACKET socket.

usage: send_udp.py IFACE fwd|rev COUNT
fwd: 10.0.x.y:(10000+i) -> 192.0.2.1:53; rev: the same flows the other way.
Run inside a test's network namespace (ip netns exec)."""

import socket
import struct
import sys


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def frame(i, direction):
    client, server = bytes([10, 0, (i >> 8) & 255, i & 255]), bytes([192, 0, 2, 1])
    cport, sport = 10000 + i, 53
    src, dst, sp, dp = (client, server, cport, sport) if direction == "fwd" else (server, client, sport, cport)
    payload = b"x" * 18
    udp = struct.pack("!HHHH", sp, dp, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + udp


def main():
    iface, direction, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    for i in range(count):
        s.send(frame(i, direction))


if __name__ == "__main__":
    main()
