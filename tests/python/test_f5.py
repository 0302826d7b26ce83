"""The F5 VER matching-flows face, driven with curl against the real binary.

The sample capture is replayed once; what the API returns is compared with
what tshark alone says the capture holds (tshark_flows.py), filter by
filter. No assertion depends on how fast anything runs.
"""

import ipaddress
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import REPO, SAMPLE, Flowgate, config, free_port, stalled, API_TOKEN
from tshark_flows import expected_records, record_tuple

HERE = pathlib.Path(__file__).parent
NS, SITE = "system", "lab-1"
PATH = f"/api/operate/namespaces/{NS}/sites/{SITE}/ver/matching_flows"

# Nothing expires while the tests look.
LONG_TIMEOUTS = """
[flows.timeouts]
tcp_handshake = 86400
tcp_established = 86400
tcp_closing = 86400
tcp_closed = 86400
udp = 86400
icmp = 86400
other = 86400
"""

F5 = f"""
[f5]
namespace = "{NS}"
site = "{SITE}"
node = "node-a"
deadline_ms = {{deadline}}
"""

# Telnet to 192.0.2.14 is dropped by rule 7 of group 3; the rest pass by rule 1.
POLICY = """
[policy]
default_action = "pass"
[[policy.rules]]
id = 7
group = 3
priority = 10
action = "drop"
dst = "192.0.2.14"
dst_ports = "23"
protocols = ["tcp"]
[[policy.rules]]
id = 1
group = 1
priority = 100
action = "pass"
"""

PORTS_ONCE = [
    ("inside", f"net_pcap0,rx_pcap={SAMPLE}", "eni-0inside0000000001"),
    ("outside", "net_null0,no-rx=1", "eni-0outside000000001"),
]


def curl(url, body=None, method="POST", raw=False, token=API_TOKEN):
    """(status, headers, parsed JSON or text) of one curl call."""
    with tempfile.NamedTemporaryFile() as hdr:
        cmd = ["curl", "-s", "-S", "-X", method, "-D", hdr.name, "-w", "\n%{http_code}", url]
        if token is not None:
            cmd += ["-H", f"Authorization: APIToken {token}"]
        if body is not None:
            data = body if isinstance(body, str) else json.dumps(body)
            cmd += ["-H", "Content-Type: application/json", "--data-binary", data]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout
        text, status = out.rsplit("\n", 1)
        headers = {}
        for line in pathlib.Path(hdr.name).read_text().splitlines()[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
    return int(status), headers, (text if raw else json.loads(text) if text else None)


def worker_rx(url):
    """Packets the workers received, from /metrics."""
    _, _, text = curl(url + "/metrics", method="GET", raw=True)
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("flowgate_worker_rx_packets_total")
    )


def wait_rx(fg, url, n, what):
    fg.wait_output(lambda _: worker_rx(url) >= n, what)
    assert worker_rx(url) == n


def start(tmp, ports, deadline=1000, capacity=65536, api_extra="", **kw):
    api = free_port()
    text = config(api, ports, LONG_TIMEOUTS + F5.format(deadline=deadline) + POLICY, **kw)
    text = text.replace("capacity = 65536", f"capacity = {capacity}")
    text = text.replace(f'listen = "127.0.0.1:{api}"\n', f'listen = "127.0.0.1:{api}"\n{api_extra}')
    fg = Flowgate(text, tmp)
    url = f"http://127.0.0.1:{api}"
    fg.wait_ready(url)
    return fg, url


@pytest.fixture(scope="module")
def sample_once():
    """One appliance that has replayed the sample capture once, fully."""
    with tempfile.TemporaryDirectory(prefix="flowgate-f5-") as d:
        fg, url = start(pathlib.Path(d), PORTS_ONCE)
        wait_rx(fg, url, 91, "the 91 frames of the sample")
        yield fg, url
        assert fg.stop() == 0, fg.text()


@pytest.fixture(scope="module")
def expected():
    return expected_records(SAMPLE)


def flows(url, body):
    status, headers, data = curl(url + PATH, body)
    assert status == 200, data
    assert "x-flowgate-partial" not in headers
    return data["flow"]


def in_cidr(addr, cidr):
    return ipaddress.ip_address(addr) in ipaddress.ip_network(cidr, strict=False)


FILTERS = [
    ({}, lambda t: True),
    ({"src": "10.0.0.0/24"}, lambda t: in_cidr(t[2], "10.0.0.0/24")),
    ({"dest": "2001:db8::/32"}, lambda t: in_cidr(t[4], "2001:db8::/32")),
    ({"src": "192.0.2.20", "dest": "10.0.0.20"}, lambda t: t[2] == "192.0.2.20" and t[4] == "10.0.0.20"),
    ({"dest_port": 80}, lambda t: t[5] == 80),
    ({"src_port": 53}, lambda t: t[3] == 53),
    ({"proto": 17}, lambda t: t[1] == 17),
    ({"proto": 6, "dest": "192.0.2.20"}, lambda t: t[1] == 6 and t[4] == "192.0.2.20"),
    ({"srcPort": "40040", "proto": 17}, lambda t: t[3] == 40040 and t[1] == 17),
    ({"dest": "203.0.113.0/24"}, lambda t: False),
]


@pytest.mark.parametrize("body,want", FILTERS, ids=[json.dumps(f[0]) for f in FILTERS])
def test_filters_return_exactly_the_expected_records(sample_once, expected, body, want):
    _, url = sample_once
    got = flows(url, body)
    tuples = [record_tuple(r) for r in got]
    assert len(tuples) == len(set(tuples)), "a record appears once"
    assert set(tuples) == {t for t in expected if want(t)}
    for r in got:
        e = expected[record_tuple(r)]
        assert (r["pkt_count"], r["byte_count"]) == (e["pkt_count"], e["byte_count"]), r
        assert r["flags"] == e["flags"], r
        assert r["fr_ttl"] == e["fr_ttl"], r
        assert (r["flow_index"] % 2 == 0) == (e["direction"] == "fwd"), r


def test_records_are_linked_pairs_with_the_documented_constants(sample_once, expected):
    _, url = sample_once
    got = flows(url, {})
    assert len(got) == len(expected) == 34
    by_index = {r["flow_index"]: r for r in got}
    for r in got:
        partner = by_index[r["reverse_flow_index"]]
        assert partner["reverse_flow_index"] == r["flow_index"]
        assert {r["flow_index"], partner["flow_index"]} == {r["flow_index"] & ~1, r["flow_index"] | 1}
        f, p = r["forward_flow"], partner["forward_flow"]
        assert (f["src"], f["src_port"], f["dest"], f["dest_port"]) == (p["dest"], p["dest_port"], p["src"], p["src_port"])
        forward = r["flow_index"] % 2 == 0
        # Everything entered on "inside" (0), whose pair peer is "outside" (1).
        assert (r["src_nh_id"], r["dest_nh_id"], f["intf_id"]) == ((0, 1, 0) if forward else (1, 0, 1))
        assert r["dest_vrf_id"] == f["vrf_id"]
        assert (r["ecmp_nh_id"], r["qos_id"], r["forward_label"], r["external_service_nh_id"]) == ([], 0, 0, 0)
        assert isinstance(r["byte_count"], str) and isinstance(r["pkt_count"], str)
        assert isinstance(r["flags"], str)
        if f["dest"] == "192.0.2.14" or f["src"] == "192.0.2.14":
            assert (r["action"], r["drop_reason"], r["ace_id"], r["acl_id"]) == ("DROP", "POLICY", 7, 3)
        else:
            assert (r["action"], r["drop_reason"], r["ace_id"], r["acl_id"]) == ("FORWARD", "NONE", 1, 1)
    # Newest first: the VLAN 200 conversation opens last in the capture.
    assert got[0]["forward_flow"]["vrf_id"] == 200 and got[0]["flow_index"] % 2 == 0


def test_intf_selects_by_ingress_port(sample_once, expected):
    _, url = sample_once
    fwd = {t for t, e in expected.items() if e["direction"] == "fwd"}
    for name in ("inside", "eni-0inside0000000001", "0"):
        assert {record_tuple(r) for r in flows(url, {"intf": name})} == fwd
    assert {record_tuple(r) for r in flows(url, {"intf": "outside"})} == set(expected) - fwd
    status, _, err = curl(url + PATH, {"intf": "eth7"})
    assert status == 404 and err["code"] == 5 and "eth7" in err["message"]


@pytest.mark.parametrize("member", ["vn", "pod", "vn_type", "external_service"])
def test_selectors_flowgate_has_no_such_thing_for_match_nothing(sample_once, member):
    _, url = sample_once
    value = {} if member == "external_service" else "VIRTUAL_NETWORK_SITE_LOCAL"
    assert flows(url, {member: value}) == []


@pytest.mark.parametrize("body", [
    {"intf": "inside", "pod": "web-0"},
    {"vn": "a", "vn_type": "VIRTUAL_NETWORK_SITE_LOCAL"},
    {"intf": "inside", "external_service": {}},
])
def test_exclusive_selectors_are_a_400(sample_once, body):
    _, url = sample_once
    status, _, err = curl(url + PATH, body)
    assert status == 400
    assert err["code"] == 3 and err["details"] == []
    assert "mutually exclusive" in err["message"]
    for k in body:
        assert k in err["message"]


@pytest.mark.parametrize("body,words", [
    ("not json", "not valid JSON"),
    ("[]", "JSON object"),
    ('{"src_port": "eighty"}', "src_port"),
    ('{"proto": 300}', "0 to 255"),
    ('{"src": 10}', "must be a string"),
    ('{"src": "10.0.0.0/40"}', "src"),
    ('{"sorce": "10.0.0.1"}', 'unknown field "sorce"'),
])
def test_bad_bodies_are_a_400(sample_once, body, words):
    _, url = sample_once
    status, headers, err = curl(url + PATH, body)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert err["code"] == 3 and words in err["message"], err


@pytest.mark.parametrize("path,body", [
    (f"/api/operate/namespaces/{NS}/sites/other/ver/matching_flows", {}),
    (f"/api/operate/namespaces/default/sites/{SITE}/ver/matching_flows", {}),
    (PATH, {"site": "other"}),
    (PATH, {"node": "node-b"}),
])
def test_unknown_site_namespace_or_node_is_a_404(sample_once, path, body):
    _, url = sample_once
    status, _, err = curl(url + path, body)
    assert status == 404
    assert err["code"] == 5 and err["details"] == [] and err["message"]
    assert flows(url, {"node": "node-a", "site": SITE, "namespace": NS})


def test_wrong_method_is_a_405(sample_once):
    _, url = sample_once
    status, _, err = curl(url + PATH, method="GET")
    assert status == 405 and err["code"] == 12


def test_the_cap_holds_on_a_capture_with_more_flows(tmp_path):
    pcap = tmp_path / "many.pcap"
    subprocess.run([str(REPO / "target/release/flowgate-pcapgen"), "flows", "--count", "3000",
                    "--reply", "--out", str(pcap)], check=True, capture_output=True)
    ports = [("inside", f"net_pcap0,rx_pcap={pcap}", None), ("outside", "net_null0,no-rx=1", None)]
    fg, url = start(tmp_path, ports)
    try:
        wait_rx(fg, url, 6000, "the 6000 frames")
        status, headers, data = curl(url + PATH, {})
        assert status == 200
        got = data["flow"]
        assert len(got) == 1024
        assert headers.get("x-flowgate-truncated") == "true"
        # Whole flows: both records of each of the newest 512.
        indices = {r["flow_index"] for r in got}
        assert all(r["reverse_flow_index"] in indices for r in got)
        assert all(r["pkt_count"] == "1" for r in got)
        # A filter that matches fewer records than the cap gets them all:
        # exactly the records tshark finds with such a source.
        status, headers, data = curl(url + PATH, {"src": "10.0.0.0/24", "proto": 17})
        few = data["flow"]
        want = {t for t in expected_records(pcap) if t[1] == 17 and in_cidr(t[2], "10.0.0.0/24")}
        assert 0 < len(want) < 1024
        assert sorted(record_tuple(r) for r in few) == sorted(want)
        assert "x-flowgate-truncated" not in headers
    finally:
        assert fg.stop() == 0, fg.text()


def test_forwarding_only_workers_answer_that_flows_are_not_tracked(tmp_path):
    # Not 503 "try again": no retry can succeed while [dataplane] mode = "forward".
    fg, url = start(tmp_path, PORTS_ONCE, mode="forward")
    try:
        status, _, data = curl(url + PATH, {})
        assert (status, data) == (400, {"code": 9, "details": [],
                                        "message": 'flows are not tracked: [dataplane] mode = "forward"'})
    finally:
        assert fg.stop() == 0, fg.text()


def test_no_answer_within_the_deadline_is_504(tmp_path):
    # The worker is held (fault injection) while the query is made, so it
    # cannot answer before the control thread gives up on a 1 ms deadline.
    # No worker answered: an empty list would say "nothing matches", so the
    # answer is the service's deadline error.
    fg, url = start(tmp_path, PORTS_ONCE, deadline=1, api_extra="debug_endpoints = true\n")
    try:
        wait_rx(fg, url, 91, "the sample")
        with stalled(url):
            status, headers, data = curl(url + PATH, {})
        assert (status, data) == (504, {"code": 4, "details": [],
                                        "message": "no worker answered within [f5] deadline_ms (1 ms)"})
    finally:
        assert fg.stop() == 0, fg.text()


def test_a_worker_that_does_not_answer_in_time_is_named(tmp_path):
    # Two workers (oversubscribed on one CPU: a correctness test). One held:
    # the other's answer, with a header naming the missing one. Both held:
    # 504.
    ports = [("inside", "net_null0,no-rx=1", None), ("outside", "net_null1,no-rx=1", None)]
    fg, url = start(tmp_path, ports, deadline=300, api_extra="debug_endpoints = true\n", workers="[1, 1]")
    try:
        assert "2 worker(s)" in fg.text()
        status, headers, data = curl(url + PATH, {})
        assert (status, data) == (200, {"flow": []}) and "x-flowgate-partial" not in headers
        with stalled(url, worker=1):
            status, headers, data = curl(url + PATH, {})
            assert (status, data) == (200, {"flow": []})
            assert headers["x-flowgate-partial"] == "workers=1"
            with stalled(url, worker=0):
                status, _, data = curl(url + PATH, {})
                assert (status, data["code"]) == (504, 4), data
    finally:
        assert fg.stop() == 0, fg.text()


def test_seconds_excludes_flows_created_before(tmp_path, netns):
    """Old flows: the sample, replayed at start. New flows: five UDP
    conversations sent later into a veth. `seconds` is chosen from the
    test's own clock so that it covers the new flows and not the old ones
    however slowly anything runs (see the inequalities below)."""
    sender = netns.ns("send")
    dev, peer = f"{netns.tag}l", f"{netns.tag}p"
    subprocess.run(["ip", "link", "add", dev, "type", "veth", "peer", "name", peer, "netns", sender], check=True)
    try:
        subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"], check=True)
        subprocess.run(["ip", "link", "set", dev, "up"], check=True)
        subprocess.run(["ip", "netns", "exec", sender, "sysctl", "-qw", f"net.ipv6.conf.{peer}.disable_ipv6=1"], check=False)
        subprocess.run(["ip", "-n", sender, "link", "set", peer, "up"], check=True)
        ports = PORTS_ONCE + [("late", f"net_af_packet0,iface={dev}", None), ("sink", "net_null1,no-rx=1", None)]
        fg, url = start(tmp_path, ports, pairs='[["inside", "outside"], ["late", "sink"]]')
        try:
            wait_rx(fg, url, 91, "the sample")
            sample_done = time.time()  # every old flow was created before this
            gap = 5
            time.sleep(gap)
            t_inject = time.time()  # every new flow is created after this
            netns.run(sender, sys.executable, str(HERE / "send_udp.py"), peer, "fwd", "5")
            wait_rx(fg, url, 96, "the five new flows")
            # s <= (t_query - t_inject) + 2. An old flow's age at the scan is
            # >= gap + (t_query - t_inject) >= s + 3, past the s + 1 limit.
            # A new flow's age is <= t_scan - t_inject < s + 1 as long as the
            # answer comes within 2 s of the query.
            s = int(time.time() - t_inject) + 2
            assert sample_done <= t_inject - gap
            young = flows(url, {"seconds": s})
            assert {r["forward_flow"]["src"] for r in young if r["flow_index"] % 2 == 0} == {
                f"10.0.0.{i}" for i in range(5)
            }
            assert len(young) == 10
            assert all(r["forward_flow"]["intf_id"] == (2 if r["flow_index"] % 2 == 0 else 3) for r in young)
            assert len(flows(url, {"seconds": 0})) == 34 + 10
            assert len(flows(url, {"seconds": 86400})) == 34 + 10
        finally:
            assert fg.stop() == 0, fg.text()
    finally:
        subprocess.run(["ip", "link", "del", dev], check=False)



def conversations(proto):
    """tshark's own conversation table (-z conv) for untagged, unfragmented
    traffic (tshark neither separates VLANs nor counts fragments per
    conversation the way a flow table does): {(A, pA, B, pB): (frames A->B,
    bytes A->B, frames B->A, bytes B->A)}."""
    flt = "not vlan and not ieee8021ad and not ip.flags.mf == 1 and not ip.frag_offset > 0"
    out = subprocess.run(
        ["tshark", "-r", str(SAMPLE), "-q", "-z", f"conv,{proto},{flt}"],
        check=True, capture_output=True, text=True,
    ).stdout
    convs = {}
    for line in out.splitlines():
        m = re.match(r"^(\S+)\s+<->\s+(\S+)\s+(\d+)\s+(\d+) bytes\s+(\d+)\s+(\d+) bytes", line)
        if not m:
            continue
        a, pa = m.group(1).rsplit(":", 1)
        b, pb = m.group(2).rsplit(":", 1)
        # tshark's "<-" columns are B to A, "->" columns A to B.
        back_f, back_b, fwd_f, fwd_b = (int(m.group(i)) for i in range(3, 7))
        convs[(a, int(pa), b, int(pb))] = (fwd_f, fwd_b, back_f, back_b)
    assert convs, out
    return convs


@pytest.mark.parametrize("proto,number", [("tcp", 6), ("udp", 17)])
def test_per_direction_counts_equal_tshark_conversations(sample_once, proto, number):
    _, url = sample_once
    records = flows(url, {"proto": number})
    by_tuple = {}
    for r in records:
        f = r["forward_flow"]
        if f["vrf_id"] == 0:
            by_tuple[(f["src"], f["src_port"], f["dest"], f["dest_port"])] = (int(r["pkt_count"]), int(r["byte_count"]))
    for (a, pa, b, pb), (fwd_f, fwd_b, back_f, back_b) in conversations(proto).items():
        assert by_tuple.get((a, pa, b, pb)) == (fwd_f, fwd_b), f"{a}:{pa} -> {b}:{pb}"
        assert by_tuple.get((b, pb, a, pa)) == (back_f, back_b), f"{b}:{pb} -> {a}:{pa}"
