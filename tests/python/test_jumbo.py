"""Jumbo frames end to end: ports with `mtu = 9000`, frames larger than one
mbuf (net_pcap chains them over 2048-byte mbufs, as a NIC with scattered rx
does), replayed once into `inside`.

Checks: every frame leaves `outside` byte for byte; none is counted
malformed; a capture reports each flow with the bytes of its whole frames
(tshark's count of the replayed capture); a mirror target with room for the
whole frame gets the whole frame as its VXLAN copy, and a target with the
default MTU gets it cut to MTU - 36 bytes, as EC2 does.
"""

import struct
import subprocess
import time
import urllib.request

from conftest import Flowgate, config, free_port
from nfw_helpers import ARN, LONG_TIMEOUTS, client, expected, flow_key, operations, run
from test_ec2_boto3 import INSIDE, OUTSIDE, ec2
from test_ec2_wire import frame, read_pcap, write_pcap

WIDE = "eni-0wide000000000001"
NARROW = "eni-0narrow0000000001"
MACS = bytes.fromhex("020000000002" "020000000001")


def udp_v4(sport, size):
    """An IPv4 UDP frame of `size` bytes in all."""
    return frame("10.1.0.1", "10.2.0.1", 17, sport, 7000, payload_len=size - 42)


def tcp_v6(sport, size):
    """An IPv6 TCP segment (ACK) of `size` bytes in all."""
    tcp = struct.pack("!HHIIBBHHH", sport, 443, 1, 1, 5 << 4, 0x10, 65535, 0, 0)
    data = tcp + bytes((i * 3) % 251 for i in range(size - 74))
    ip = struct.pack("!IHBB16s16s", 6 << 28, len(data), 6, 64,
                     bytes.fromhex("fd000000000000000000000000000001"),
                     bytes.fromhex("fd000000000000000000000000000002"))
    return MACS + b"\x86\xdd" + ip + data


FRAMES = [udp_v4(1000, 9014), udp_v4(1000, 9014), udp_v4(1001, 4000),
          tcp_v6(2000, 9014), tcp_v6(2000, 6000), udp_v4(1002, 100)]


def with_mtu(text, device, mtu):
    line = f'device = "{device}"\n'
    assert line in text
    return text.replace(line, f"{line}mtu = {mtu}\n")


def test_jumbo_frames_are_forwarded_tracked_and_mirrored_whole(tmp_path):
    src, out = tmp_path / "in.pcap", tmp_path / "out.pcap"
    wide, narrow = tmp_path / "wide.pcap", tmp_path / "narrow.pcap"
    write_pcap(src, FRAMES)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    state = tmp_path / "state.json"
    extra = (LONG_TIMEOUTS + operations() + f'[mirror]\nstate_file = "{state}"\n'
             'tunnel_source_ip = "198.51.100.1"\ntunnel_destination_ip = "198.51.100.2"\n')

    # The sessions are made first, on idle ports: the capture is read once
    # at start.
    idle = [("inside", "net_null0,no-rx=1", INSIDE), ("outside", "net_null1,no-rx=1", OUTSIDE),
            ("wide", "net_null2,no-rx=1", WIDE), ("narrow", "net_null3,no-rx=1", NARROW)]
    setup = Flowgate(config(port, idle, extra=extra), tmp_path)
    setup.wait_ready(url)
    c = ec2(url)
    f = c.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    for direction in ("ingress", "egress"):
        c.create_traffic_mirror_filter_rule(
            TrafficMirrorFilterId=f, TrafficDirection=direction, RuleNumber=1, RuleAction="accept",
            SourceCidrBlock="0.0.0.0/0", DestinationCidrBlock="0.0.0.0/0")
        c.create_traffic_mirror_filter_rule(
            TrafficMirrorFilterId=f, TrafficDirection=direction, RuleNumber=2, RuleAction="accept",
            SourceCidrBlock="::/0", DestinationCidrBlock="::/0")
    for eni, target, vni in ((INSIDE, WIDE, 11), (OUTSIDE, NARROW, 22)):
        t = c.create_traffic_mirror_target(NetworkInterfaceId=target)["TrafficMirrorTarget"]
        c.create_traffic_mirror_session(
            NetworkInterfaceId=eni, TrafficMirrorTargetId=t["TrafficMirrorTargetId"],
            TrafficMirrorFilterId=f, SessionNumber=1, VirtualNetworkId=vni)
    assert setup.stop() == 0

    devices = [("inside", f"net_pcap0,rx_pcap={src}", INSIDE), ("outside", f"net_pcap1,tx_pcap={out}", OUTSIDE),
               ("wide", f"net_pcap2,tx_pcap={wide}", WIDE), ("narrow", f"net_pcap3,tx_pcap={narrow}", NARROW)]
    text = config(port, devices, extra=extra)
    text = with_mtu(with_mtu(text, devices[0][1], 9000), devices[1][1], 9000)
    text = with_mtu(text, devices[2][1], 9050)  # the whole 9014-byte frame and 36 bytes of headers
    fg = Flowgate(text, tmp_path)
    fg.wait_ready(url)
    deadline = time.time() + 30
    metrics = ""
    while time.time() < deadline:
        metrics = urllib.request.urlopen(url + "/metrics").read().decode()
        if f'flowgate_worker_rx_packets_total{{worker="0"}} {len(FRAMES)}' in metrics:
            break
        time.sleep(0.2)
    assert f'flowgate_worker_tx_packets_total{{worker="0"}} {len(FRAMES)}' in metrics, metrics
    malformed = [line for line in metrics.splitlines() if line.startswith("flowgate_worker_malformed_packets_total")]
    assert malformed and all(line.endswith(" 0") for line in malformed), malformed

    # Tracked with their whole length, as tshark counts them.
    d, flows = run(client(url), "capture", [{"SourceAddress": {"AddressDefinition": "0.0.0.0/0"}},
                                            {"SourceAddress": {"AddressDefinition": "::/0"}}])
    assert d["FlowOperationStatus"] == "COMPLETED", d
    got = sorted(flow_key(x) for x in flows)
    assert got == sorted(expected(src).elements())
    assert max(x[6] for x in got) == 2 * 9014

    assert fg.stop() == 0
    assert "mbufs in use after close: 0 (no leak)" in fg.text()
    assert read_pcap(out) == FRAMES

    for pcap, vni, room in ((wide, 11, 9050 - 36), (narrow, 22, 1500 - 36)):
        copies = read_pcap(pcap)
        assert [c[50:] for c in copies] == [fr[:room] for fr in FRAMES], pcap.name
        fields = subprocess.run(
            ["tshark", "-r", str(pcap), "-d", "udp.port==4789,vxlan", "-T", "fields", "-E", "separator=|",
             "-e", "ip.len", "-e", "ip.flags.df", "-e", "udp.dstport", "-e", "vxlan.vni"],
            check=True, capture_output=True, text=True).stdout.splitlines()
        assert len(fields) == len(FRAMES)
        for line, fr in zip(fields, FRAMES):
            ip_len, df, dport, got_vni = (x.split(",")[0] for x in line.split("|"))
            assert (df, dport, int(got_vni)) == ("1", "4789", vni), line
            assert int(ip_len) == 36 + min(len(fr), room), line
