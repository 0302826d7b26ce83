"""Shared pieces of the Network Firewall face tests: the appliance config,
the flow set tshark alone computes from the sample capture, and a few
small clients (boto3, raw HTTP) with bounded waits."""

import collections
import http.client
import ipaddress
import json
import pathlib
import time
import urllib.parse
import urllib.request

import boto3
import botocore.config

from conftest import SAMPLE, Flowgate, config, free_port, signed_headers
from tshark_flows import expected_flows

ARN = "arn:aws:network-firewall:us-east-1:123456789012:firewall/flowgate"
TARGET = "NetworkFirewall_20201112"

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

# The sample replayed once: inside receives it, outside is a sink.
PORTS_ONCE = [
    ("inside", f"net_pcap0,rx_pcap={SAMPLE}", "eni-0inside0000000001"),
    ("outside", "net_null0,no-rx=1", "eni-0outside000000001"),
]
SAMPLE_FRAMES = 91


def operations(**keys):
    """An [operations] section with the default ARN and these keys."""
    text = f'\n[operations]\nfirewall_arn = "{ARN}"\n'
    for k, v in keys.items():
        text += f"{k} = {json.dumps(v)}\n"
    return text


def start(tmp, ports=PORTS_ONCE, capacity=65536, ops=None, api_extra="", **kw):
    """Starts an appliance; (Flowgate, url). `api_extra`: more [api] keys."""
    api = free_port()
    text = config(api, ports, LONG_TIMEOUTS + operations(**(ops or {})), **kw)
    text = text.replace("capacity = 65536", f"capacity = {capacity}")
    text = text.replace(f'listen = "127.0.0.1:{api}"\n', f'listen = "127.0.0.1:{api}"\n{api_extra}')
    fg = Flowgate(text, pathlib.Path(tmp))
    url = f"http://127.0.0.1:{api}"
    fg.wait_ready(url)
    return fg, url


def worker_rx(url):
    """Packets the workers received, from /metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("flowgate_worker_rx_packets_total")
    )


def wait_sample(fg, url):
    """Waits until the workers have received every frame of the sample."""
    fg.wait_output(lambda _: worker_rx(url) >= SAMPLE_FRAMES, "the frames of the sample")
    assert worker_rx(url) == SAMPLE_FRAMES


def client(url, **config):
    """A boto3 network-firewall client on the appliance, retries off (an
    error must surface, not be retried away)."""
    cfg = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}, **config)
    return boto3.client(
        "network-firewall",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=cfg,
    )


def wait_final(nfw, op_id, limit=60):
    """Polls DescribeFlowOperation until the status is final (bounded)."""
    deadline = time.time() + limit
    while time.time() < deadline:
        d = nfw.describe_flow_operation(FirewallArn=ARN, FlowOperationId=op_id)
        if d["FlowOperationStatus"] != "IN_PROGRESS":
            return d
        time.sleep(0.02)
    raise AssertionError(f"operation {op_id} still IN_PROGRESS after {limit} s")


def all_results(nfw, op_id, page_size=None):
    """Every flow of an operation, through boto3's paginator."""
    kw = {"PaginationConfig": {"PageSize": page_size}} if page_size else {}
    pages = nfw.get_paginator("list_flow_operation_results").paginate(
        FirewallArn=ARN, FlowOperationId=op_id, **kw
    )
    return [f for p in pages for f in p["Flows"]]


def run(nfw, kind, filters, **kw):
    """Starts a capture or flush, waits for it; (describe, flows)."""
    begin = nfw.start_flow_capture if kind == "capture" else nfw.start_flow_flush
    r = begin(FirewallArn=ARN, FlowFilters=filters, **kw)
    assert r["FirewallArn"] == ARN
    assert r["FlowOperationStatus"] == "IN_PROGRESS"
    d = wait_final(nfw, r["FlowOperationId"])
    return d, all_results(nfw, r["FlowOperationId"])


def host(a):
    """An AddressDefinition the face reports, as a plain address."""
    net = ipaddress.ip_network(a)
    assert net.num_addresses == 1, a
    return str(net.network_address)


def flow_key(f):
    """A reported Flow as (src, sport, dst, dport, proto, packets, bytes)."""
    return (
        host(f["SourceAddress"]["AddressDefinition"]),
        int(f["SourcePort"]),
        host(f["DestinationAddress"]["AddressDefinition"]),
        int(f["DestinationPort"]),
        int(f["Protocol"]),
        f["PacketCount"],
        f["ByteCount"],
    )


def expected(pcap=SAMPLE):
    """What tshark alone says a capture of everything returns: one entry per
    flow (VLANs apart, so a multiset), the opener as the source, packets and
    bytes of both directions summed."""
    out = collections.Counter()
    for flow in expected_flows(pcap).values():
        _vlan, proto, src, sport, dst, dport = flow["forward"]
        packets = sum(d[0] for d in flow["dirs"].values())
        octets = sum(d[1] for d in flow["dirs"].values())
        out[(str(ipaddress.ip_address(src)), sport, str(ipaddress.ip_address(dst)), dport, proto, packets, octets)] += 1
    return out


def raw(url, target, body, content_type="application/x-amz-json-1.0", sign=True):
    """One request as bytes on the wire, bypassing boto3's own checks but
    signed like boto3 (unless sign=False); (status, headers, parsed JSON body)."""
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {"Content-Type": content_type}
    if target is not None:
        headers["X-Amz-Target"] = target if "." in target else f"{TARGET}.{target}"
    if sign:
        headers = signed_headers(url + "/", "network-firewall", data, headers)
    conn.request("POST", "/", body=data, headers=headers)
    r = conn.getresponse()
    out = r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(r.read() or b"null")
    conn.close()
    return out
