"""The AWS Network Firewall flow-operations face, driven with boto3 against
the real binary.

The sample capture is replayed once; what captures return is compared with
the flow set tshark alone computes from the capture (tshark_flows.py):
the opener is the source, packets and bytes are both directions summed.
Errors are checked as boto3 raises them (its exception classes), and, where
boto3's own parameter validation would refuse to send a request, on the
wire. No assertion depends on how fast anything runs; waits are bounded
polls of DescribeFlowOperation.
"""

import collections
import datetime
import ipaddress
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.parse

import botocore.exceptions
import pytest

from conftest import ACCESS_KEY, SECRET_KEY, BINARY, signed_headers, stalled

from nfw_helpers import (
    ARN,
    TARGET,
    all_results,
    client,
    expected,
    flow_key,
    raw,
    run,
    start,
    wait_final,
    wait_sample,
)


@pytest.fixture(scope="module")
def sample_once():
    """One appliance that has replayed the sample capture once, fully. The
    tests using it only capture (nothing changes its flow table)."""
    with tempfile.TemporaryDirectory(prefix="flowgate-nfw-") as d:
        fg, url = start(d)
        wait_sample(fg, url)
        yield fg, url
        assert fg.stop() == 0, fg.text()


@pytest.fixture(scope="module")
def nfw(sample_once):
    return client(sample_once[1])


@pytest.fixture(scope="module")
def want():
    return expected()


def in_net(addr, cidr):
    a = ipaddress.ip_address(addr)
    n = ipaddress.ip_network(cidr, strict=False)
    return a.version == n.version and a in n


def test_capture_of_everything_equals_tshark(nfw, want):
    filters = [{"SourceAddress": {"AddressDefinition": "0.0.0.0/0"}}, {"SourceAddress": {"AddressDefinition": "::/0"}}]
    d, flows = run(nfw, "capture", filters, AvailabilityZone="us-east-1a")
    assert d["FlowOperationStatus"] == "COMPLETED"
    assert "StatusMessage" not in d
    assert d["FlowOperationType"] == "FLOW_CAPTURE"
    assert d["FirewallArn"] == ARN
    assert d["AvailabilityZone"] == "us-east-1a"
    assert d["FlowOperation"] == {"FlowFilters": filters}
    assert isinstance(d["FlowRequestTimestamp"], datetime.datetime)
    assert abs(d["FlowRequestTimestamp"].timestamp() - time.time()) < 3600
    assert collections.Counter(flow_key(f) for f in flows) == want
    assert sum(want.values()) == len(flows) == 17
    for f in flows:
        assert isinstance(f["Age"], int) and f["Age"] >= 0
        assert isinstance(f["SourcePort"], str) and isinstance(f["Protocol"], str)


# (FlowFilters, which expected flows they select). Flows are matched on
# their forward tuple: the source is the side that opened the flow.
FILTERS = [
    ([{}], lambda k: True),
    ([{"Protocols": []}], lambda k: True),
    ([{"SourceAddress": {"AddressDefinition": "10.0.0.0/24"}}], lambda k: in_net(k[0], "10.0.0.0/24")),
    ([{"SourceAddress": {"AddressDefinition": "192.0.2.0/24"}}], lambda k: False),
    ([{"DestinationAddress": {"AddressDefinition": "2001:db8::/32"}}], lambda k: in_net(k[2], "2001:db8::/32")),
    ([{"SourceAddress": {"AddressDefinition": "fd00::10"}}], lambda k: k[0] == "fd00::10"),
    ([{"DestinationAddress": {"AddressDefinition": "192.0.2.20/32"}, "DestinationPort": "ANY"}], lambda k: k[2] == "192.0.2.20"),
    ([{"DestinationPort": "80", "Protocols": ["6"]}], lambda k: k[3] == 80 and k[4] == 6),
    ([{"DestinationPort": "1:1024"}], lambda k: 1 <= k[3] <= 1024),
    ([{"SourcePort": "40000:40010"}], lambda k: 40000 <= k[1] <= 40010),
    ([{"Protocols": ["17", "132"]}], lambda k: k[4] in (17, 132)),
    ([{"DestinationPort": "53"}, {"Protocols": ["1", "58"]}], lambda k: k[3] == 53 or k[4] in (1, 58)),
    (
        [{"SourceAddress": {"AddressDefinition": "10.0.0.0/8"}, "DestinationAddress": {"AddressDefinition": "198.51.100.0/24"}, "SourcePort": "40003", "Protocols": ["6"]}],
        lambda k: k[0].startswith("10.") and k[2].startswith("198.51.100.") and k[1] == 40003 and k[4] == 6,
    ),
    ([{"DestinationAddress": {"AddressDefinition": "203.0.113.0/24"}}], lambda k: False),
]


@pytest.mark.parametrize("filters,pick", FILTERS, ids=[repr(f[0]) for f in FILTERS])
def test_capture_filters_select_exactly_the_expected_flows(nfw, want, filters, pick):
    d, flows = run(nfw, "capture", filters)
    assert d["FlowOperationStatus"] == "COMPLETED"
    assert d["FlowOperation"]["FlowFilters"] == filters
    chosen = collections.Counter({k: n for k, n in want.items() if pick(k)})
    assert collections.Counter(flow_key(f) for f in flows) == chosen


def test_minimum_flow_age(nfw, want):
    _, flows = run(nfw, "capture", [{}])
    youngest = min(f["Age"] for f in flows)
    oldest = max(f["Age"] for f in flows)
    # Every flow is at least as old as it was a moment ago.
    d, again = run(nfw, "capture", [{}], MinimumFlowAgeInSeconds=youngest)
    assert d["FlowOperation"]["MinimumFlowAgeInSeconds"] == youngest
    assert collections.Counter(flow_key(f) for f in again) == want
    assert all(f["Age"] >= youngest for f in again)
    _, none = run(nfw, "capture", [{}], MinimumFlowAgeInSeconds=oldest + 86400)
    assert none == []


def test_results_pages_walk_every_flow_once(nfw, want):
    r = nfw.start_flow_capture(FirewallArn=ARN, FlowFilters=[{}])
    op = r["FlowOperationId"]
    wait_final(nfw, op)
    seen, tokens, pages = [], set(), 0
    token = None
    while True:
        kw = {"NextToken": token} if token else {}
        p = nfw.list_flow_operation_results(FirewallArn=ARN, FlowOperationId=op, MaxResults=5, **kw)
        pages += 1
        assert p["FlowOperationId"] == op and p["FlowOperationStatus"] == "COMPLETED"
        assert len(p["Flows"]) <= 5
        seen += p["Flows"]
        token = p.get("NextToken")
        if token is None:
            break
        assert token not in tokens
        tokens.add(token)
    assert pages == 4
    assert collections.Counter(flow_key(f) for f in seen) == want
    # boto3's own paginator sees the same flows in the same order.
    assert all_results(nfw, op, page_size=3) == seen


def test_operations_are_listed_newest_first_and_paged(nfw):
    started = []
    for _ in range(3):
        started.append(nfw.start_flow_capture(FirewallArn=ARN, FlowFilters=[{"DestinationPort": "7"}])["FlowOperationId"])
    for op in started:
        wait_final(nfw, op)
    listed, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        p = nfw.list_flow_operations(FirewallArn=ARN, MaxResults=1, **kw)
        assert len(p["FlowOperations"]) == 1
        listed += p["FlowOperations"]
        token = p.get("NextToken")
        if token is None:
            break
    ids = [o["FlowOperationId"] for o in listed]
    assert len(ids) == len(set(ids)), "each operation once"
    assert ids[:3] == started[::-1], "newest first"
    times = [o["FlowRequestTimestamp"] for o in listed]
    assert times == sorted(times, reverse=True)
    assert {o["FlowOperationType"] for o in listed} == {"FLOW_CAPTURE"}
    assert {o["FlowOperationStatus"] for o in listed} == {"COMPLETED"}
    pages = nfw.get_paginator("list_flow_operations").paginate(FirewallArn=ARN, PaginationConfig={"PageSize": 2})
    assert [o["FlowOperationId"] for p in pages for o in p["FlowOperations"]] == ids
    flushes = nfw.list_flow_operations(FirewallArn=ARN, FlowOperationType="FLOW_FLUSH")
    assert flushes["FlowOperations"] == []


def test_flush_removes_exactly_the_matching_flows(tmp_path, want):
    fg, url = start(tmp_path)
    try:
        wait_sample(fg, url)
        nfw = client(url)
        dns = [{"DestinationPort": "53"}]
        d, flushed = run(nfw, "flush", dns)
        assert d["FlowOperationType"] == "FLOW_FLUSH"
        assert d["FlowOperationStatus"] == "COMPLETED"
        is_dns = lambda k: k[3] == 53
        assert collections.Counter(flow_key(f) for f in flushed) == collections.Counter({k: n for k, n in want.items() if is_dns(k)})
        assert len(flushed) == 3
        # A capture afterwards: the flushed flows are gone, the others untouched.
        _, left = run(nfw, "capture", [{}])
        assert collections.Counter(flow_key(f) for f in left) == collections.Counter({k: n for k, n in want.items() if not is_dns(k)})
        # Nothing left to flush.
        _, again = run(nfw, "flush", dns)
        assert again == []
        ops = nfw.list_flow_operations(FirewallArn=ARN, FlowOperationType="FLOW_FLUSH")["FlowOperations"]
        assert len(ops) == 2
    finally:
        assert fg.stop() == 0, fg.text()


def error_of(call, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kw)
    err = e.value.response["Error"]
    return e.value, err["Code"], err["Message"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


OP_ID = "6b8c3b4e-2f1a-4c8e-9a0b-1d2e3f4a5b6c"


def test_errors_map_to_boto3_exception_classes(nfw):
    X = nfw.exceptions
    start_capture = nfw.start_flow_capture
    cases = [
        # (call, kwargs, exception class, code, message or None)
        (start_capture, {"FirewallArn": ARN + "x", "FlowFilters": [{}]}, X.ResourceNotFoundException, "Firewall not found"),
        (nfw.describe_flow_operation, {"FirewallArn": ARN, "FlowOperationId": OP_ID}, X.ResourceNotFoundException, f"Flow operation {OP_ID} not found"),
        (nfw.list_flow_operation_results, {"FirewallArn": ARN, "FlowOperationId": OP_ID}, X.ResourceNotFoundException, f"Flow operation {OP_ID} not found"),
        (nfw.list_flow_operations, {"FirewallArn": "arn:aws:network-firewall:us-east-1:123456789012:firewall/other"}, X.ResourceNotFoundException, "Firewall not found"),
        (start_capture, {"FirewallArn": ARN, "FlowFilters": [{"SourceAddress": {"AddressDefinition": "10.0.0.0/33"}}]}, X.InvalidRequestException,
         'FlowFilters[0].SourceAddress.AddressDefinition: "10.0.0.0/33" is not an IP address or CIDR block'),
        (start_capture, {"FirewallArn": ARN, "FlowFilters": [{"DestinationAddress": {"AddressDefinition": "2001:db8::zz"}}]}, X.InvalidRequestException, None),
        (start_capture, {"FirewallArn": ARN, "FlowFilters": [{"DestinationPort": "2000:1000"}]}, X.InvalidRequestException,
         'FlowFilters[0].DestinationPort: port range "2000:1000" is reversed (use N, N:M or ANY)'),
        (nfw.start_flow_flush, {"FirewallArn": ARN, "FlowFilters": [{}] * 21}, X.InvalidRequestException, "FlowFilters must hold 1 to 20 filters, not 21"),
        (nfw.start_flow_flush, {"FirewallArn": ARN, "FlowFilters": []}, X.InvalidRequestException, "FlowFilters must hold 1 to 20 filters, not 0"),
        (start_capture, {"FirewallArn": ARN, "FlowFilters": [{"Protocols": ["tcp"]}]}, X.InvalidRequestException, None),
        (start_capture, {"FirewallArn": ARN, "FlowFilters": [{}], "AvailabilityZone": "us-east-1b"}, X.InvalidRequestException, None),
        (start_capture, {"FirewallArn": ARN, "FlowFilters": [{}], "VpcEndpointId": "vpce-0somethingelse"}, X.InvalidRequestException, None),
        (start_capture, {"FirewallArn": "firewall/flowgate", "FlowFilters": [{}]}, X.InvalidRequestException, "FirewallArn must match the pattern ^arn:aws.*"),
        (start_capture, {"FirewallArn": ARN, "FlowFilters": [{}], "MinimumFlowAgeInSeconds": -1}, X.InvalidRequestException, None),
        (nfw.describe_flow_operation, {"FirewallArn": ARN, "FlowOperationId": "6B8C3B4E-2F1A-4C8E-9A0B-1D2E3F4A5B6C"}, X.InvalidRequestException, "FlowOperationId must match the UUID pattern"),
        (nfw.list_flow_operations, {"FirewallArn": ARN, "MaxResults": 101}, X.InvalidRequestException, "MaxResults must be between 1 and 100"),
        (nfw.list_flow_operations, {"FirewallArn": ARN, "NextToken": "bm9wZQ=="}, X.InvalidRequestException, "Invalid NextToken"),
        (nfw.list_flow_operations, {"FirewallArn": ARN, "NextToken": "not a token"}, X.InvalidRequestException, None),
        (nfw.list_flow_operation_results, {"FirewallArn": ARN, "FlowOperationId": OP_ID, "MaxResults": 1000}, X.InvalidRequestException, None),
    ]
    for call, kw, cls, message in cases:
        with pytest.raises(cls) as e:
            call(**kw)
        err = e.value.response["Error"]
        assert err["Code"] == cls.__name__, (kw, err)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        if message is not None:
            assert err["Message"] == message, (kw, err)


def test_a_bad_token_for_another_operation_is_invalid(nfw):
    a = nfw.start_flow_capture(FirewallArn=ARN, FlowFilters=[{}])["FlowOperationId"]
    b = nfw.start_flow_capture(FirewallArn=ARN, FlowFilters=[{}])["FlowOperationId"]
    wait_final(nfw, a)
    wait_final(nfw, b)
    token = nfw.list_flow_operation_results(FirewallArn=ARN, FlowOperationId=a, MaxResults=2)["NextToken"]
    with pytest.raises(nfw.exceptions.InvalidRequestException):
        nfw.list_flow_operation_results(FirewallArn=ARN, FlowOperationId=b, NextToken=token)
    t = nfw.list_flow_operations(FirewallArn=ARN, MaxResults=1)["NextToken"]
    with pytest.raises(nfw.exceptions.InvalidRequestException):
        nfw.list_flow_operations(FirewallArn=ARN, MaxResults=1, NextToken=t, FlowOperationType="FLOW_FLUSH")


def test_wrong_types_through_boto3_are_serialization_errors(sample_once):
    # boto3 checks types itself; with that off, the server's answer shows.
    loose = client(sample_once[1], parameter_validation=False)
    _, code, message, status = error_of(loose.start_flow_capture, FirewallArn=ARN, FlowFilters=[{"SourcePort": 80}])
    assert (code, status) == ("SerializationException", 400)
    assert message.startswith("FlowFilters[0].SourcePort: invalid type")
    _, code, _, _ = error_of(loose.list_flow_operations, FirewallArn=ARN, MaxResults="5")
    assert code == "SerializationException"
    _, code, message, _ = error_of(loose.describe_flow_operation, FirewallArn=ARN, FlowOperationId="x")
    assert (code, message) == ("InvalidRequestException", "FlowOperationId must match the UUID pattern")


# Requests boto3 would not send as they are (its own checks refuse them):
# sent as bytes, checked on the wire.
RAW = [
    ("StartFlowCapture", b'{"FirewallArn": ', 400, "SerializationException", None),
    ("StartFlowCapture", b"<xml/>", 400, "SerializationException", None),
    ("StartFlowCapture", b"[]", 400, "SerializationException", "The request body must be a JSON object"),
    ("StartFlowCapture", {"FirewallArn": 5, "FlowFilters": [{}]}, 400, "SerializationException", None),
    ("StartFlowCapture", {"FirewallArn": ARN, "FlowFilters": {"SourcePort": "80"}}, 400, "SerializationException", None),
    ("StartFlowFlush", {"FirewallArn": ARN, "FlowFilters": [{"Protocols": [6]}]}, 400, "SerializationException", None),
    ("StartFlowCapture", {}, 400, "InvalidRequestException", "FirewallArn is required"),
    ("StartFlowCapture", {"FirewallArn": ARN}, 400, "InvalidRequestException", "FlowFilters is required"),
    ("StartFlowCapture", {"FirewallArn": ARN, "FlowFilters": [{"SourcePorts": "80"}]}, 400, "InvalidRequestException",
     "Unsupported parameter name FlowFilters[0].SourcePorts"),
    ("DescribeFlowOperation", {"FirewallArn": ARN, "FlowOperationId": "nope"}, 400, "InvalidRequestException",
     "FlowOperationId must match the UUID pattern"),
    ("DescribeFlowOperation", {"FirewallArn": ARN}, 400, "InvalidRequestException", "FlowOperationId is required"),
    ("ListFlowOperations", {"FirewallArn": ARN, "MaxResults": 0}, 400, "InvalidRequestException", "MaxResults must be between 1 and 100"),
    ("ListFlowOperations", {"FirewallArn": ARN, "NextToken": ""}, 400, "InvalidRequestException", "NextToken must be 1 to 4096 characters long"),
    ("ListFlowOperations", {"FirewallArn": ARN, "FlowOperationType": "FLOW_QUERY"}, 400, "InvalidRequestException", None),
    ("ListFlowOperationResults", {"FirewallArn": "", "FlowOperationId": OP_ID}, 400, "InvalidRequestException",
     "FirewallArn must be 1 to 256 characters long"),
    ("DescribeFirewall", {"FirewallArn": ARN}, 400, "UnknownOperationException", None),
    ("NetworkFirewall_20201111.StartFlowCapture", {}, 400, "UnknownOperationException", None),
    ("", {}, 400, "UnknownOperationException", None),
]


@pytest.mark.parametrize("target,body,status,code,message", RAW, ids=[f"{r[0]}-{i}" for i, r in enumerate(RAW)])
def test_raw_requests_get_the_json_error_shape(sample_once, target, body, status, code, message):
    _, url = sample_once
    got_status, headers, data = raw(url, target, body)
    assert got_status == status
    assert headers["content-type"] == "application/x-amz-json-1.0"
    assert set(data) == {"__type", "message"}
    assert data["__type"] == code, data
    if message is not None:
        assert data["message"] == message


def test_an_empty_body_is_an_empty_request(sample_once):
    status, _, data = raw(sample_once[1], "ListFlowOperations", b"")
    assert (status, data["__type"], data["message"]) == (400, "InvalidRequestException", "FirewallArn is required")
    status, headers, data = raw(sample_once[1], "ListFlowOperations", {"FirewallArn": ARN, "MaxResults": 1})
    assert status == 200 and "FlowOperations" in data and "x-amzn-requestid" in headers


def test_a_worker_that_does_not_answer_in_time_fails_the_operation(tmp_path):
    # The worker is wedged (fault injection) for longer than the
    # operations wait for it: every operation times out.
    fg, url = start(tmp_path, ops={"worker_timeout_ms": 300}, api_extra="debug_endpoints = true\n")
    try:
        wait_sample(fg, url)
        nfw = client(url)
        with stalled(url):
            for kind in ("capture", "flush"):
                d, flows = run(nfw, kind, [{}])
                assert d["FlowOperationStatus"] == "FAILED"
                assert d["StatusMessage"] == "Flow timeout"
                assert flows == []
                r = nfw.list_flow_operation_results(FirewallArn=ARN, FlowOperationId=d["FlowOperationId"])
                assert (r["FlowOperationStatus"], r["StatusMessage"], r["Flows"]) == ("FAILED", "Flow timeout", [])
    finally:
        assert fg.stop() == 0, fg.text()


def test_a_worker_that_refuses_fails_the_operation(tmp_path):
    # Forwarding-only workers track no flows and refuse every job.
    fg, url = start(tmp_path, mode="forward")
    try:
        d, flows = run(client(url), "capture", [{}])
        assert (d["FlowOperationStatus"], d["StatusMessage"], flows) == ("FAILED", "Flow operation error", [])
    finally:
        assert fg.stop() == 0, fg.text()


def pipelined(url, bodies):
    """Sends several StartFlowCapture requests in one write on one
    connection (pipelined); [(status, JSON body)] in order."""
    u = urllib.parse.urlparse(url)
    wire = b""
    for b in bodies:
        data = json.dumps(b).encode()
        headers = signed_headers(
            url + "/",
            "network-firewall",
            data,
            {"X-Amz-Target": f"{TARGET}.StartFlowCapture", "Content-Type": "application/x-amz-json-1.0"},
        )
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        wire += (
            f"POST / HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n{lines}Content-Length: {len(data)}\r\n\r\n"
        ).encode() + data
    answers, buf = [], b""
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        s.sendall(wire)
        while len(answers) < len(bodies):
            head, sep, rest = buf.partition(b"\r\n\r\n")
            length = None
            if sep:
                lines = head.decode().split("\r\n")
                fields = dict(l.split(":", 1) for l in lines[1:])
                length = int({k.lower(): v for k, v in fields.items()}["content-length"])
            if length is not None and len(rest) >= length:
                answers.append((int(lines[0].split()[1]), json.loads(rest[:length])))
                buf = rest[length:]
                continue
            chunk = s.recv(65536)
            assert chunk, f"connection closed after {len(answers)} answers"
            buf += chunk
    return answers


def test_more_operations_than_allowed_are_throttled(tmp_path):
    # The worker is held (fault injection) while operations are started, so
    # the two allowed stay IN_PROGRESS however quick their scans would be;
    # they wait for it far longer than the test holds it.
    fg, url = start(tmp_path, ops={"max_in_progress": 2, "worker_timeout_ms": 60000},
                    api_extra="debug_endpoints = true\n")
    try:
        wait_sample(fg, url)
        nfw = client(url)
        body = {"FirewallArn": ARN, "FlowFilters": [{}]}
        with stalled(url):
            answers = pipelined(url, [body, body, body])
        assert [s for s, _ in answers] == [200, 200, 400]
        assert answers[2][1]["__type"] == "ThrottlingException"
        started = [a["FlowOperationId"] for _, a in answers[:2]]
        for op in started:
            assert wait_final(nfw, op)["FlowOperationStatus"] == "COMPLETED"
        # Through boto3 (retries off): two started, the third refused.
        with stalled(url):
            started = [nfw.start_flow_capture(**body)["FlowOperationId"] for _ in range(2)]
            with pytest.raises(nfw.exceptions.ThrottlingException) as refused:
                nfw.start_flow_capture(**body)
            for op in started:
                d = nfw.describe_flow_operation(FirewallArn=ARN, FlowOperationId=op)
                assert d["FlowOperationStatus"] == "IN_PROGRESS"
        assert refused.value.response["Error"]["Code"] == "ThrottlingException"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        for op in started:
            assert wait_final(nfw, op)["FlowOperationStatus"] == "COMPLETED"
        # Once they are done, a new one is accepted again.
        assert nfw.start_flow_capture(**body)["FlowOperationStatus"] == "IN_PROGRESS"
    finally:
        assert fg.stop() == 0, fg.text()


def test_result_cap_and_retention(tmp_path, want):
    fg, url = start(tmp_path, ops={"result_cap": 5, "retention_count": 2})
    try:
        wait_sample(fg, url)
        nfw = client(url)
        d, flows = run(nfw, "capture", [{}])
        assert d["FlowOperationStatus"] == "COMPLETED_WITH_ERRORS"
        assert d["StatusMessage"] == "Result cap of 5 flows reached"
        assert len(flows) == 5
        assert all(want[flow_key(f)] for f in flows)
        first = d["FlowOperationId"]
        # Exactly as many matches as the cap: nothing is missing.
        d2, web = run(nfw, "capture", [{"DestinationPort": "80"}])
        assert sum(n for k, n in want.items() if k[3] == 80) == len(web) == 5
        assert d2["FlowOperationStatus"] == "COMPLETED" and "StatusMessage" not in d2
        run(nfw, "capture", [{"DestinationPort": "53"}])
        # Three finished, two kept: the oldest is forgotten.
        with pytest.raises(nfw.exceptions.ResourceNotFoundException):
            nfw.describe_flow_operation(FirewallArn=ARN, FlowOperationId=first)
        listed = nfw.list_flow_operations(FirewallArn=ARN)["FlowOperations"]
        assert len(listed) == 2 and first not in {o["FlowOperationId"] for o in listed}
    finally:
        assert fg.stop() == 0, fg.text()


def test_flowgate_ops_lists_what_boto3_lists(nfw, sample_once):
    _, url = sample_once
    op = nfw.start_flow_flush(FirewallArn=ARN, FlowFilters=[{"DestinationPort": "65000"}])["FlowOperationId"]
    wait_final(nfw, op)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    r = subprocess.run([str(BINARY), "ops", "--api", url, "--firewall-arn", ARN, "--json"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    mine = [o["FlowOperationId"] for o in json.loads(r.stdout)["FlowOperations"]]
    pages = nfw.get_paginator("list_flow_operations").paginate(FirewallArn=ARN)
    assert mine == [o["FlowOperationId"] for p in pages for o in p["FlowOperations"]]
    assert mine[0] == op
