"""Persistence of the traffic-mirroring objects across a `kill -9`.

Targets, filters, rules and sessions are created with boto3 on the real
binary, which is then killed with SIGKILL (no chance to flush anything).
A new process started from the same config must describe exactly the same
objects (same ids, same fields) and must mirror again: it replays a capture
into the source port and the collector port's tx capture, decoded by tshark
as VXLAN, holds the copies with the restored session's VNI. A session whose
port is gone from the config after the restart is kept but left out, with
one line naming it, and the others still mirror. A damaged state file stops
flowgate with one line naming it (exit 2), and a missing one starts empty.
"""

import signal
import subprocess

from conftest import Flowgate, config, free_port
from test_ec2_boto3 import INSIDE, OUTSIDE, ec2
from test_ec2_wire import ALL, COLLECTOR, read_pcap, wait_all_received, write_pcap

VNI = 4242


def describe_all(c):
    return (c.describe_traffic_mirror_targets()["TrafficMirrorTargets"],
            c.describe_traffic_mirror_filters()["TrafficMirrorFilters"],
            c.describe_traffic_mirror_filter_rules()["TrafficMirrorFilterRules"],
            c.describe_traffic_mirror_sessions()["TrafficMirrorSessions"])


def idle_ports():
    return [("inside", "net_null0,no-rx=1", INSIDE), ("outside", "net_null1,no-rx=1", OUTSIDE),
            ("collector", "net_null2,no-rx=1", COLLECTOR)]


def traffic_ports(tmp_path):
    """Ports that carry traffic: the capture enters `inside`; what leaves
    `outside` and `collector` is written to pcap files."""
    src, out, mirror = tmp_path / "in.pcap", tmp_path / "out.pcap", tmp_path / "mirror.pcap"
    write_pcap(src, ALL)
    ports = [("inside", f"net_pcap0,rx_pcap={src}", INSIDE),
             ("outside", f"net_pcap1,tx_pcap={out}", OUTSIDE),
             ("collector", f"net_pcap2,tx_pcap={mirror}", COLLECTOR)]
    return ports, out, mirror


def vnis(capture):
    return subprocess.run(["tshark", "-r", str(capture), "-d", "udp.port==4789,vxlan", "-T", "fields",
                           "-e", "vxlan.vni"], check=True, capture_output=True, text=True).stdout.split()


def test_sessions_survive_kill_9_and_mirroring_resumes(tmp_path):
    state = tmp_path / "mirror.json"
    extra = (f'[mirror]\nstate_file = "{state}"\n'
             'tunnel_source_ip = "198.51.100.1"\ntunnel_destination_ip = "198.51.100.2"\n')
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    fg = Flowgate(config(port, idle_ports(), extra=extra), tmp_path)
    fg.wait_ready(url)
    c = ec2(url)
    t = c.create_traffic_mirror_target(
        NetworkInterfaceId=COLLECTOR, Description="collector",
        TagSpecifications=[{"ResourceType": "traffic-mirror-target", "Tags": [{"Key": "k", "Value": "v"}]}],
    )["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    f = c.create_traffic_mirror_filter(Description="all ingress")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    c.create_traffic_mirror_filter_rule(TrafficMirrorFilterId=f, TrafficDirection="ingress", RuleNumber=1,
                                        RuleAction="accept", DestinationCidrBlock="0.0.0.0/0",
                                        SourceCidrBlock="0.0.0.0/0")
    c.create_traffic_mirror_filter_rule(TrafficMirrorFilterId=f, TrafficDirection="egress", RuleNumber=5,
                                        RuleAction="reject", Protocol=6, DestinationCidrBlock="10.0.0.0/8",
                                        SourceCidrBlock="0.0.0.0/0")
    s = c.create_traffic_mirror_session(NetworkInterfaceId=INSIDE, TrafficMirrorTargetId=t, TrafficMirrorFilterId=f,
                                        SessionNumber=7, VirtualNetworkId=VNI, PacketLength=96,
                                        Description="resumes")["TrafficMirrorSession"]["TrafficMirrorSessionId"]
    # A second session, deleted again: what was removed must stay removed.
    gone = c.create_traffic_mirror_session(NetworkInterfaceId=INSIDE, TrafficMirrorTargetId=t,
                                           TrafficMirrorFilterId=f, SessionNumber=8
                                           )["TrafficMirrorSession"]["TrafficMirrorSessionId"]
    c.delete_traffic_mirror_session(TrafficMirrorSessionId=gone)
    before = describe_all(c)
    assert [x["TrafficMirrorSessionId"] for x in before[3]] == [s]
    fg.proc.send_signal(signal.SIGKILL)
    fg.proc.wait()
    # Only the renamed file is left: never a half-written one in its place.
    assert state.exists() and not (tmp_path / "mirror.json.tmp").exists()

    # Restarted on devices that carry traffic.
    ports, out, mirror = traffic_ports(tmp_path)
    fg2 = Flowgate(config(port, ports, extra=extra), tmp_path)
    try:
        fg2.wait_ready(url)
        assert "restored 1 traffic mirror session" in fg2.text()
        assert describe_all(c) == before
        wait_all_received(url)
    finally:
        assert fg2.stop() == 0
    assert read_pcap(out) == ALL
    assert vnis(mirror) == [str(VNI)] * len(ALL)
    # Outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 = 50 bytes, then the
    # original frame cut to the restored PacketLength.
    assert sorted(r[50:] for r in read_pcap(mirror)) == sorted(fr[:96] for fr in ALL)


def test_a_session_on_a_port_removed_from_the_config_leaves_the_others_mirroring(tmp_path):
    spare = "eni-0spare00000000001"
    state = tmp_path / "mirror.json"
    extra = (f'[mirror]\nstate_file = "{state}"\n'
             'tunnel_source_ip = "198.51.100.1"\ntunnel_destination_ip = "198.51.100.2"\n')
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    fg = Flowgate(config(port, idle_ports() + [("spare", "net_null3,no-rx=1", spare)], extra=extra), tmp_path)
    try:
        fg.wait_ready(url)
        c = ec2(url)
        t = c.create_traffic_mirror_target(NetworkInterfaceId=COLLECTOR)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
        f = c.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
        c.create_traffic_mirror_filter_rule(TrafficMirrorFilterId=f, TrafficDirection="ingress", RuleNumber=1,
                                            RuleAction="accept", DestinationCidrBlock="0.0.0.0/0",
                                            SourceCidrBlock="0.0.0.0/0")
        gone = c.create_traffic_mirror_session(NetworkInterfaceId=spare, TrafficMirrorTargetId=t,
                                               TrafficMirrorFilterId=f, SessionNumber=1, VirtualNetworkId=1
                                               )["TrafficMirrorSession"]["TrafficMirrorSessionId"]
        c.create_traffic_mirror_session(NetworkInterfaceId=INSIDE, TrafficMirrorTargetId=t,
                                        TrafficMirrorFilterId=f, SessionNumber=2, VirtualNetworkId=VNI)
    finally:
        assert fg.stop() == 0

    # The spare port is taken out of the config.
    ports, out, mirror = traffic_ports(tmp_path)
    fg2 = Flowgate(config(port, ports, extra=extra), tmp_path)
    try:
        fg2.wait_ready(url)
        lines = [x for x in fg2.text().splitlines() if gone in x]
        assert len(lines) == 1 and spare in lines[0] and "not installed" in lines[0], fg2.text()
        assert len(c.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]) == 2
        wait_all_received(url)
    finally:
        assert fg2.stop() == 0
    assert read_pcap(out) == ALL
    assert vnis(mirror) == [str(VNI)] * len(ALL)


def test_damaged_or_missing_state_file(tmp_path):
    state = tmp_path / "sub" / "mirror.json"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    text = config(port, idle_ports(), extra=f'[mirror]\nstate_file = "{state}"\n')
    # Missing (and its directory too): starts empty, creates both on the first change.
    fg = Flowgate(text, tmp_path)
    try:
        fg.wait_ready(url)
        c = ec2(url)
        assert c.describe_traffic_mirror_sessions()["TrafficMirrorSessions"] == []
        c.create_traffic_mirror_filter()
        assert state.exists()
    finally:
        fg.stop()
    state.write_text("{ not json")
    fg = Flowgate(text, tmp_path)
    assert fg.proc.wait(30) == 2
    lines = fg.text().strip().splitlines()
    assert len(lines) == 1 and "mirror.state_file" in lines[0] and "mirror.json" in lines[0], lines
