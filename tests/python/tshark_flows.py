"""The flow records a capture should produce, computed with tshark alone.

Independent of flowgate's code: tshark decodes every frame; this module
keys frames by (VLAN, protocol, addresses, ports) the way the appliance
documents it (QinQ as 1 << 24 | outer << 12 | inner; ICMP echo: the
identifier as both ports, other ICMP: type << 8 | code and 0; later IPv4
fragments take the ports of their first fragment, and are not counted when
that first fragment has not been seen yet), merges both directions of a
conversation (tshark itself would not merge VLAN-separated ones), and counts
frame lengths per direction.
"""

import ipaddress
import subprocess

FIELDS = [
    "frame.len",
    "ieee8021ad.id",
    "vlan.id",
    "ip.src",
    "ip.dst",
    "ip.proto",
    "ip.ttl",
    "ip.id",
    "ip.flags.mf",
    "ip.frag_offset",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.nxt",
    "ipv6.hlim",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags",
    "udp.srcport",
    "udp.dstport",
    "sctp.srcport",
    "sctp.dstport",
    "icmp.type",
    "icmp.code",
    "icmp.ident",
    "icmpv6.type",
    "icmpv6.code",
    "icmpv6.echo.identifier",
]


def frames(pcap):
    cmd = ["tshark", "-r", str(pcap), "-n", "-o", "ip.defragment:FALSE", "-T", "fields",
           "-E", "occurrence=a", "-E", "aggregator=,", "-E", "separator=/t"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        values = line.split("\t")
        values += [""] * (len(FIELDS) - len(values))
        yield dict(zip(FIELDS, values))


def num(s):
    s = s.split(",")[0]
    return int(s, 16) if s.startswith("0x") else int(s)


def vlan_code(f):
    tags = [num(t) for t in (f["ieee8021ad.id"].split(",") + f["vlan.id"].split(",")) if t]
    if not tags:
        return 0
    if len(tags) == 1:
        return tags[0]
    return 1 << 24 | tags[0] << 12 | tags[1]


def expected_flows(pcap):
    """{canonical key: flow} where flow has opener tuple, per-direction
    packets / bytes / TCP flags, and the first packet's TTL."""
    flows = {}
    first_fragments = {}
    for f in frames(pcap):
        length = num(f["frame.len"])
        if f["ip.src"]:
            src, dst = f["ip.src"], f["ip.dst"]
            proto, ttl = num(f["ip.proto"]), num(f["ip.ttl"])
            frag_key = (src, dst, num(f["ip.id"]), proto)
            offset = num(f["ip.frag_offset"] or "0")
            more = f["ip.flags.mf"] in ("1", "True")
        elif f["ipv6.src"]:
            src, dst = f["ipv6.src"], f["ipv6.dst"]
            proto, ttl = num(f["ipv6.nxt"]), num(f["ipv6.hlim"])
            frag_key, offset, more = None, 0, False
        else:
            continue  # not IP: forwarded untracked
        flags = 0
        if offset > 0:
            if frag_key not in first_fragments:
                continue  # the first fragment was not seen: untracked
            sport, dport = first_fragments[frag_key]
        elif proto == 6:
            sport, dport, flags = num(f["tcp.srcport"]), num(f["tcp.dstport"]), num(f["tcp.flags"])
        elif proto == 17:
            sport, dport = num(f["udp.srcport"]), num(f["udp.dstport"])
        elif proto == 132:
            sport, dport = num(f["sctp.srcport"]), num(f["sctp.dstport"])
        elif proto in (1, 58):
            t = num(f["icmp.type"] or f["icmpv6.type"])
            c = num(f["icmp.code"] or f["icmpv6.code"])
            echo = (8, 0) if proto == 1 else (128, 129)
            if t in echo:
                sport = dport = num(f["icmp.ident"] or f["icmpv6.echo.identifier"])
            else:
                sport, dport = t << 8 | c, 0
        else:
            sport = dport = 0
        if offset == 0 and more and frag_key:
            first_fragments[frag_key] = (sport, dport)
        vlan = vlan_code(f)
        a = (ipaddress.ip_address(src), sport)
        b = (ipaddress.ip_address(dst), dport)
        key = (vlan, proto) + (a + b if (a[0].packed, a[1]) <= (b[0].packed, b[1]) else b + a)
        tup = (vlan, proto, str(a[0]), sport, str(b[0]), dport)
        if key not in flows:
            flows[key] = {"forward": tup, "ttl": ttl, "dirs": {}}
        d = flows[key]["dirs"].setdefault(tup, [0, 0, 0])
        d[0] += 1
        d[1] += length
        d[2] |= flags
    return flows


def expected_records(pcap):
    """The records, keyed by their own tuple (vlan, proto, src, sport, dst, dport):
    {tuple: {"direction": "fwd"|"rev", "pkt_count", "byte_count", "flags", "fr_ttl"}}."""
    out = {}
    for flow in expected_flows(pcap).values():
        vlan, proto, src, sport, dst, dport = flow["forward"]
        rev = (vlan, proto, dst, dport, src, sport)
        for tup, direction in ((flow["forward"], "fwd"), (rev, "rev")):
            p, b, fl = flow["dirs"].get(tup, [0, 0, 0])
            out[tup] = {
                "direction": direction,
                "pkt_count": str(p),
                "byte_count": str(b),
                "flags": str(fl),
                "fr_ttl": flow["ttl"] if direction == "fwd" else 0,
            }
    return out


def record_tuple(r):
    f = r["forward_flow"]
    src, dst = str(ipaddress.ip_address(f["src"])), str(ipaddress.ip_address(f["dest"]))
    return (f["vrf_id"], f["proto"], src, f["src_port"], dst, f["dest_port"])
