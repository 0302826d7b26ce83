"""Mirrored packets on the wire: sessions configured with boto3, a capture
replayed once into the `inside` port, the collector port's transmit side
written by DPDK's net_pcap, and the copies decoded by tshark as VXLAN.

Checks: outer UDP destination port 4789 and the session's VNI; inner frames
byte-identical to the originals up to PacketLength; ingress (entering the
source port) versus egress (leaving it); rule order (lowest RuleNumber
first, first match decides); accept versus reject; session priority
(the lowest SessionNumber whose filter accepts a packet mirrors it); and
Protocol 0 as every protocol (as Terraform and the console send it).
"""

import collections
import contextlib
import json
import os
import pathlib
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import API_TOKEN, Flowgate, config, free_port
from test_ec2_boto3 import INSIDE, OUTSIDE, ec2, raw

COLLECTOR = "eni-0collector00000001"


def checksum(b):
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s & 0xFFFF) + (s >> 16)
    return (~(s + (s >> 16))) & 0xFFFF


def frame(src, dst, proto, sport, dport, payload_len=100, flags=0x02):
    l4 = (struct.pack("!HHH H", sport, dport, 8 + payload_len, 0) if proto == 17
          else struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0))
    data = l4 + bytes((i * 7) & 0xFF for i in range(payload_len))
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(data), 1, 0, 64, proto, 0,
                     bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return bytes.fromhex("020000000002" "020000000001" "0800") + ip + data


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1, i, len(fr), len(fr)))
            f.write(fr)


def read_pcap(path):
    out = []
    with open(path, "rb") as f:
        data = f.read()
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack("<I", data[off + 8:off + 12])[0]
        out.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return out


# The replayed traffic (all of it enters `inside`, leaves by `outside`).
DNS = [frame("10.0.0.1", "10.0.0.2", 17, 1000 + i, 53) for i in range(3)]
WEB_UDP = [frame("10.0.0.1", "10.0.0.3", 17, 2000 + i, 80) for i in range(2)]
TCP = [frame("10.0.0.5", "10.0.0.2", 6, 3000 + i, 443) for i in range(2)]
OTHER = [frame("192.168.1.1", "10.0.0.9", 17, 4000, 9999)]
ALL = DNS + WEB_UDP + TCP + OTHER


def wait_all_received(url):
    """Until the worker has received every frame of ALL (30 s at most)."""
    deadline = time.time() + 30
    while time.time() < deadline:
        m = urllib.request.urlopen(url + "/metrics").read().decode()
        if f'flowgate_worker_rx_packets_total{{worker="0"}} {len(ALL)}' in m:
            return
        time.sleep(0.2)


def rule(c, f, n, action, direction="ingress", **kw):
    args = dict(TrafficMirrorFilterId=f, TrafficDirection=direction, RuleNumber=n, RuleAction=action,
                DestinationCidrBlock="0.0.0.0/0", SourceCidrBlock="0.0.0.0/0")
    args.update(kw)
    c.create_traffic_mirror_filter_rule(**args)


@pytest.fixture
def mirrored(tmp_path):
    """Runs the scenario; returns {vni: [inner frames]} as tshark decoded them."""
    src = tmp_path / "in.pcap"
    write_pcap(src, ALL)
    out, mirror = tmp_path / "out.pcap", tmp_path / "mirror.pcap"
    port = free_port()
    # Sessions are made on an appliance with idle ports, then the one that
    # replays the capture starts from the same state file: the capture is
    # read once at start, so the sessions must exist before it flows.
    state = tmp_path / "state.json"
    extra = f'[mirror]\nstate_file = "{state}"\ntunnel_source_ip = "198.51.100.1"\ntunnel_destination_ip = "198.51.100.2"\n'
    setup = Flowgate(config(port, [("inside", "net_null0,no-rx=1", INSIDE), ("outside", "net_null1,no-rx=1", OUTSIDE),
                                   ("collector", "net_null2,no-rx=1", COLLECTOR)], extra=extra), tmp_path)
    url = f"http://127.0.0.1:{port}"
    setup.wait_ready(url)
    c = ec2(url)
    t = c.create_traffic_mirror_target(NetworkInterfaceId=COLLECTOR)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    # F1 (ingress): reject UDP to port 80 (rule 10) before accepting all UDP (rule 20).
    f1 = c.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    rule(c, f1, 20, "accept", Protocol=17)
    rule(c, f1, 10, "reject", Protocol=17, DestinationPortRange={"FromPort": 80, "ToPort": 80})
    # F2 (ingress): accept everything from 10.0.0.0/8.
    f2 = c.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    rule(c, f2, 1, "accept", SourceCidrBlock="10.0.0.0/8")
    # F3 (egress only): accept TCP.
    f3 = c.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    rule(c, f3, 1, "accept", direction="egress", Protocol=6)
    rule(c, f3, 2, "accept", direction="ingress")  # nothing enters `outside`
    # F4 (egress): accept Protocol 0, all protocols; Describe gives the 0 back.
    f4 = c.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    rule(c, f4, 1, "accept", direction="egress", Protocol=0)
    rules = c.describe_traffic_mirror_filter_rules(TrafficMirrorFilterId=f4)["TrafficMirrorFilterRules"]
    assert [r["Protocol"] for r in rules] == [0]
    # Session 2 is created first: priority is by SessionNumber, not age.
    c.create_traffic_mirror_session(NetworkInterfaceId=INSIDE, TrafficMirrorTargetId=t, TrafficMirrorFilterId=f2,
                                    SessionNumber=2, VirtualNetworkId=222, PacketLength=64)
    c.create_traffic_mirror_session(NetworkInterfaceId=INSIDE, TrafficMirrorTargetId=t, TrafficMirrorFilterId=f1,
                                    SessionNumber=1, VirtualNetworkId=111)
    c.create_traffic_mirror_session(NetworkInterfaceId=OUTSIDE, TrafficMirrorTargetId=t, TrafficMirrorFilterId=f3,
                                    SessionNumber=1, VirtualNetworkId=333)
    c.create_traffic_mirror_session(NetworkInterfaceId=OUTSIDE, TrafficMirrorTargetId=t, TrafficMirrorFilterId=f4,
                                    SessionNumber=2, VirtualNetworkId=444)
    assert setup.stop() == 0
    # The same sessions, restored from the state file, on the real devices.
    ports = [("inside", f"net_pcap0,rx_pcap={src}", INSIDE),
             ("outside", f"net_pcap1,tx_pcap={out}", OUTSIDE),
             ("collector", f"net_pcap2,tx_pcap={mirror}", COLLECTOR)]
    fg = Flowgate(config(port, ports, extra=extra), tmp_path)
    fg.wait_ready(url)
    wait_all_received(url)
    assert fg.stop() == 0
    assert read_pcap(out) == ALL  # forwarding untouched
    fields = subprocess.run(
        ["tshark", "-r", str(mirror), "-d", "udp.port==4789,vxlan", "-T", "fields", "-E", "separator=|",
         "-e", "ip.src", "-e", "ip.dst", "-e", "udp.dstport", "-e", "vxlan.vni"],
        check=True, capture_output=True, text=True).stdout.splitlines()
    copies = read_pcap(mirror)
    assert len(fields) == len(copies)
    by_vni = collections.defaultdict(list)
    for line, raw in zip(fields, copies):
        # Each field lists the outer header's value first, then the inner's.
        ip_src, ip_dst, dport, vni = (f.split(",")[0] for f in line.split("|")[:4])
        assert (ip_src, ip_dst, dport) == ("198.51.100.1", "198.51.100.2", "4789"), line
        assert raw[12:14] == b"\x08\x00" and raw[:6] == bytes.fromhex("020000000002"), raw[:14].hex()
        by_vni[int(vni)].append(raw[50:])
    return by_vni


def test_sessions_rules_and_directions_on_the_wire(mirrored):
    # Session 1 (F1): UDP not to port 80, whole frames.
    assert sorted(mirrored[111]) == sorted(DNS + OTHER)
    # Session 2 (F2) gets what session 1 passed on and F2 accepts
    # (10.0.0.0/8 sources), cut to 64 bytes.
    assert sorted(mirrored[222]) == sorted(f[:64] for f in WEB_UDP + TCP)
    # Egress of `outside`: what leaves it, TCP only.
    assert sorted(mirrored[333]) == sorted(TCP)
    # Then F4's Protocol 0 takes every other protocol leaving `outside`.
    assert sorted(mirrored[444]) == sorted(DNS + WEB_UDP + OTHER)
    assert set(mirrored) == {111, 222, 333, 444}


def metric(url, name):
    for line in urllib.request.urlopen(url + "/metrics").read().decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return int(float(line.split()[-1]))
    return 0


def mirror_generations(url):
    """(stored, installed): the mirror configuration's generation as the
    store has it and as every worker has confirmed it, from /metrics."""
    got = {}
    for line in urllib.request.urlopen(url + "/metrics", timeout=10).read().decode().splitlines():
        name, _, value = line.partition(" ")
        if name in ("flowgate_mirror_generation", "flowgate_mirror_installed_generation"):
            got[name] = int(float(value))
    return got["flowgate_mirror_generation"], got["flowgate_mirror_installed_generation"]


def wait_installed(url, limit=30):
    """Waits until every worker runs the stored mirror configuration: the
    API answers once a change is stored, and installs it on the workers in
    the background (retried with backoff). Returns the generation."""
    deadline = time.time() + limit
    while True:
        stored, installed = mirror_generations(url)
        if installed == stored:
            return stored
        assert time.time() < deadline, f"mirror generation {stored} not installed within {limit} s (at {installed})"
        time.sleep(0.02)


@contextlib.contextmanager
def veth(netns):
    """A veth pair, up, IPv6 off (no router solicitations in the capture):
    (our end, the peer, the sender's namespace that holds the peer)."""
    sender = netns.ns("send")
    dev, peer = f"{netns.tag}m", f"{netns.tag}q"
    subprocess.run(["ip", "link", "add", dev, "type", "veth", "peer", "name", peer, "netns", sender], check=True)
    try:
        subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"], check=True)
        subprocess.run(["ip", "link", "set", dev, "up"], check=True)
        subprocess.run(["ip", "netns", "exec", sender, "sysctl", "-qw", f"net.ipv6.conf.{peer}.disable_ipv6=1"],
                       check=False)
        subprocess.run(["ip", "-n", sender, "link", "set", peer, "up"], check=True)
        yield dev, peer, sender
    finally:
        subprocess.run(["ip", "link", "del", dev], check=False)


def send_five(netns, sender, peer):
    """Five UDP flows (10.0.0.0-4 as sources) from the sender's end."""
    netns.run(sender, sys.executable, str(pathlib.Path(__file__).parent / "send_udp.py"), peer, "fwd", "5")


def mirrored_vnis(mirror):
    """The VNI of each copy the collector port sent, as tshark reads it."""
    return subprocess.run(["tshark", "-r", str(mirror), "-d", "udp.port==4789,vxlan", "-T", "fields",
                           "-e", "vxlan.vni"], check=True, capture_output=True, text=True).stdout.split()


def test_changes_take_effect_while_running(tmp_path, netns):
    """Sessions created, modified and deleted while traffic flows: the same
    five flows are sent after each change (so a cached per-flow decision
    must be dropped when the configuration changes), and the collector sees
    them with no session, then with VNI 501, then 502 and whole frames cut
    to 60 bytes, then not at all."""
    mirror = tmp_path / "mirror.pcap"
    with veth(netns) as (dev, peer, sender):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        ports = [("inside", f"net_af_packet0,iface={dev}", INSIDE), ("outside", "net_null0,no-rx=1", OUTSIDE),
                 ("collector", f"net_pcap1,tx_pcap={mirror}", COLLECTOR)]
        fg = Flowgate(config(port, ports), tmp_path)
        fg.wait_ready(url)
        sent = 0
        generation = wait_installed(url)

        def send():
            nonlocal sent
            send_five(netns, sender, peer)
            sent += 5
            fg.wait_output(lambda _: metric(url, "flowgate_worker_rx_packets_total") >= sent, f"{sent} packets")

        def settle():
            # Every worker runs the change before the packets are sent.
            nonlocal generation
            installed = wait_installed(url)
            assert installed > generation, "the change was stored"
            generation = installed

        try:
            c = ec2(url)
            send()  # nothing configured: nothing mirrored
            t = c.create_traffic_mirror_target(NetworkInterfaceId=COLLECTOR)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
            f = c.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
            rule(c, f, 1, "accept", Protocol=17)
            s = c.create_traffic_mirror_session(NetworkInterfaceId=INSIDE, TrafficMirrorTargetId=t,
                                                TrafficMirrorFilterId=f, SessionNumber=1, VirtualNetworkId=501
                                                )["TrafficMirrorSession"]["TrafficMirrorSessionId"]
            settle()
            send()
            c.modify_traffic_mirror_session(TrafficMirrorSessionId=s, VirtualNetworkId=502, PacketLength=60)
            settle()
            send()
            c.delete_traffic_mirror_session(TrafficMirrorSessionId=s)
            settle()
            send()
            assert metric(url, "flowgate_worker_mirror_copies_total") == 10
        finally:
            assert fg.stop() == 0, fg.text()
    assert mirrored_vnis(mirror) == ["501"] * 5 + ["502"] * 5
    inner = [r[50:] for r in read_pcap(mirror)]
    assert [len(x) for x in inner[5:]] == [60] * 5
    assert all(x[14 + 12:14 + 16] == bytes([10, 0, 0, i % 5]) for i, x in enumerate(inner))


def test_a_session_made_while_the_ports_come_up_is_installed(tmp_path, netns):
    """The API answers while the data plane comes up; a session created then
    is stored at once and must reach the workers once they are up. Its
    target, filter and rule are restored from the state file.

    Bring-up is held while the session is made, with no guessed window: two
    extra ports write their transmit side into FIFOs, and DPDK opens a
    tx_pcap file when it probes the port, which blocks until the FIFO has a
    reader. Ports are probed in config order, after the workers' starting
    configuration is taken from the store: once flowgate has the first FIFO
    open, that is taken (without the session); until the test opens the
    second, the workers cannot start."""
    mirror = tmp_path / "mirror.pcap"
    state = tmp_path / "state.json"
    extra = f'[mirror]\nstate_file = "{state}"\n'
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    setup = Flowgate(config(port, [("inside", "net_null0,no-rx=1", INSIDE), ("outside", "net_null1,no-rx=1", OUTSIDE),
                                   ("collector", "net_null2,no-rx=1", COLLECTOR)], extra=extra), tmp_path)
    setup.wait_ready(url)
    c = ec2(url)
    t = c.create_traffic_mirror_target(NetworkInterfaceId=COLLECTOR)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    f = c.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    rule(c, f, 1, "accept", Protocol=17)
    assert setup.stop() == 0
    session = urllib.parse.urlencode({
        "Action": "CreateTrafficMirrorSession", "Version": "2016-11-15", "NetworkInterfaceId": INSIDE,
        "TrafficMirrorTargetId": t, "TrafficMirrorFilterId": f, "SessionNumber": 1, "VirtualNetworkId": 601})
    entered, held = tmp_path / "entered.fifo", tmp_path / "held.fifo"
    os.mkfifo(entered)
    os.mkfifo(held)
    readers = []

    def writer_came(fd):
        # Non-blocking: no writer yet reads as end of file; one that has
        # written nothing yet, as "try again".
        try:
            return os.read(fd, 4096) != b""
        except BlockingIOError:
            return True

    with veth(netns) as (dev, peer, sender):
        ports = [("inside", f"net_af_packet0,iface={dev}", INSIDE), ("outside", "net_null0,no-rx=1", OUTSIDE),
                 ("collector", f"net_pcap1,tx_pcap={mirror}", COLLECTOR),
                 ("entered", f"net_pcap2,tx_pcap={entered}", None), ("held", f"net_pcap3,tx_pcap={held}", None)]
        fg = Flowgate(config(port, ports, extra=extra), tmp_path)
        try:
            readers.append(os.open(entered, os.O_RDONLY | os.O_NONBLOCK))
            fg.wait_output(lambda _: writer_came(readers[0]), "flowgate to probe the first held port")
            # Signed by hand: boto3 loads EC2's model on its first call of an
            # operation.
            status, text = raw(url, session)
            assert status == 200, text
            with pytest.raises(urllib.error.HTTPError) as unready:
                urllib.request.urlopen(url + "/readyz", timeout=10)
            assert unready.value.code == 503 and b"ports and workers are not up yet" in unready.value.read()
            # Liveness and the F5 face say the same while it starts.
            with pytest.raises(urllib.error.HTTPError) as starting:
                urllib.request.urlopen(url + "/healthz", timeout=10)
            assert (starting.value.code, starting.value.read()) == (503, b"starting: ports are not up yet\n")
            query = urllib.request.Request(
                url + "/api/operate/namespaces/system/sites/flowgate/ver/matching_flows", data=b"{}", method="POST",
                headers={"Content-Type": "application/json", "Authorization": f"APIToken {API_TOKEN}"})
            with pytest.raises(urllib.error.HTTPError) as f5_starting:
                urllib.request.urlopen(query, timeout=10)
            err = json.loads(f5_starting.value.read())
            assert (f5_starting.value.code, err["code"], err["message"]) == \
                (503, 14, "the data plane is starting; try again")
            stored, installed = mirror_generations(url)
            assert installed == 0, "no worker runs anything yet"
            # The bring-up goes on.
            readers.append(os.open(held, os.O_RDONLY | os.O_NONBLOCK))
            fg.wait_ready(url)
            assert wait_installed(url) == stored
            send_five(netns, sender, peer)
            fg.wait_output(lambda _: metric(url, "flowgate_worker_rx_packets_total") >= 5, "5 packets")
            assert metric(url, "flowgate_worker_mirror_copies_total") == 5
        finally:
            if len(readers) < 2:
                # Let a bring-up held by a failed check go on, so it can stop.
                readers.append(os.open(held, os.O_RDONLY | os.O_NONBLOCK))
            try:
                assert fg.stop() == 0, fg.text()
            finally:
                # Closed only now: flowgate writes the FIFOs' pcap headers
                # when it closes the ports.
                for fd in readers:
                    os.close(fd)
    assert mirrored_vnis(mirror) == ["601"] * 5
