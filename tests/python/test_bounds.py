"""Bounded resources and a wedged worker, on the real binary: per-client
in-flight and connection limits answered with each protocol's throttling
error, the header read timeout, the body limit, and a worker that stops
answering its ring (fault injection) noticed by /readyz, by operations
(FAILED "Flow timeout") and by matching-flows (partial answer)."""

import collections
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import boto3
import botocore.config
import pytest

import nfw_helpers

from conftest import API_TOKEN, Flowgate, config, free_port, signed_headers, stalled

ARN = "arn:aws:network-firewall:us-east-1:123456789012:firewall/flowgate"
F5 = "/api/operate/namespaces/system/sites/flowgate/ver/matching_flows"


def start(tmp, api_extra="", extra=""):
    port = free_port()
    text = config(port, [("inside", "net_null0", None), ("outside", "net_null1", None)], pairs='[["inside", "outside"]]', extra=extra)
    text = text.replace(f'listen = "127.0.0.1:{port}"\n', f'listen = "127.0.0.1:{port}"\n{api_extra}')
    fg = Flowgate(text, tmp)
    url = f"http://127.0.0.1:{port}"
    fg.wait_ready(url)
    return fg, url


def http(url, path, body=None, headers=None, method="POST"):
    req = urllib.request.Request(url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def f5(url, body=b"{}"):
    return http(url, F5, body, {"Authorization": f"APIToken {API_TOKEN}", "Content-Type": "application/json"})


def readyz(url):
    return http(url, "/readyz", method="GET")[0]


def poll(pred, what, limit=30):
    deadline = time.time() + limit
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def nfw(url):
    return boto3.client("network-firewall", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=botocore.config.Config(retries={"total_max_attempts": 1}))


def test_debug_endpoint_is_off_by_default(tmpdir_path):
    fg, url = start(tmpdir_path)
    assert http(url, "/debug/stall-worker", b'{"worker":0,"ms":1}')[0] == 404
    assert http(url, "/debug/release-workers", b"")[0] == 404
    assert fg.stop() == 0


def test_a_release_ends_a_stall_before_its_time(tmpdir_path):
    # A minute's stall: /readyz comes back once it is released, within a
    # poll that gives up at half that minute, so a release that ended
    # nothing fails here.
    fg, url = start(tmpdir_path, api_extra="debug_endpoints = true\n")
    status, _, body = http(url, "/debug/stall-worker", b'{"worker": 0, "ms": 60000}')
    assert (status, body) == (200, b"stalling\n")
    poll(lambda: readyz(url) == 503, "/readyz to fail while the worker is stalled")
    status, _, body = http(url, "/debug/release-workers", b"")
    assert (status, body) == (200, b"released 1 stall(s)\n")
    poll(lambda: readyz(url) == 200, "/readyz back once the stall is released")
    # Nothing is left to release; a GET is not the endpoint.
    status, _, body = http(url, "/debug/release-workers", b"")
    assert (status, body) == (200, b"released 0 stall(s)\n")
    assert http(url, "/debug/release-workers", method="GET")[0] == 404
    assert fg.stop() == 0


def test_a_wedged_worker_is_noticed_and_nothing_hangs(tmpdir_path):
    fg, url = start(
        tmpdir_path,
        api_extra="debug_endpoints = true\n",
        extra="[operations]\nworker_timeout_ms = 500\n\n[f5]\ndeadline_ms = 300\n",
    )
    assert readyz(url) == 200
    client = nfw(url)
    with stalled(url):
        poll(lambda: readyz(url) == 503, "/readyz to fail while the worker is wedged")
        op = client.start_flow_capture(FirewallArn=ARN, FlowFilters=[{"DestinationPort": "ANY"}])["FlowOperationId"]
        poll(lambda: client.describe_flow_operation(FirewallArn=ARN, FlowOperationId=op)["FlowOperationStatus"] != "IN_PROGRESS",
             "the operation to end")
        d = client.describe_flow_operation(FirewallArn=ARN, FlowOperationId=op)
        assert (d["FlowOperationStatus"], d["StatusMessage"]) == ("FAILED", "Flow timeout")
        # No worker answered in time: the service's deadline error, not an
        # empty list that would read as "nothing matches".
        status, _, body = f5(url)
        assert (status, json.loads(body)["code"]) == (504, 4)
    # The worker comes back; so does readiness.
    poll(lambda: readyz(url) == 200, "/readyz to recover")
    assert fg.stop() == 0


def worker_jobs(url):
    """Jobs placed on the workers, from /metrics."""
    _, _, body = http(url, "/metrics", method="GET")
    for line in body.decode().splitlines():
        if line.startswith("flowgate_worker_jobs "):
            return float(line.split()[1])
    raise AssertionError("no flowgate_worker_jobs in /metrics")


def test_queries_and_operations_share_the_workers_job_places(tmpdir_path):
    # Queries waiting on a wedged worker hold every job place a worker has
    # (8): an operation is then refused up front, not accepted and then
    # failed by the worker's refusal.
    fg, url = start(tmpdir_path, api_extra="debug_endpoints = true\n", extra="[f5]\ndeadline_ms = 20000\n")
    client = nfw(url)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(f5(url)[0])) for _ in range(8)]
    with stalled(url):
        for t in threads:
            t.start()
        poll(lambda: worker_jobs(url) == 8, "eight queries placed on the worker")
        # Both faces say why no waiting helps: the places are held by a
        # worker that does not answer, not by too many requests (which
        # would be ThrottlingException and 429).
        with pytest.raises(client.exceptions.InternalServerError) as e:
            client.start_flow_capture(FirewallArn=ARN, FlowFilters=[{"DestinationPort": "ANY"}])
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert e.value.response["Error"]["Message"] == (
            "Worker(s) 0 do not answer, and the operations they hold take every place")
        status, _, body = f5(url)
        err = json.loads(body)
        assert (status, err["code"], err["message"]) == (
            503, 14, "worker(s) 0 do not answer, and the jobs they hold take every place")
    for t in threads:
        t.join()
    assert answers == [200] * 8
    poll(lambda: worker_jobs(url) == 0, "the places given back")
    op = client.start_flow_capture(FirewallArn=ARN, FlowFilters=[{"DestinationPort": "ANY"}])["FlowOperationId"]
    assert nfw_helpers.wait_final(client, op)["FlowOperationStatus"] == "COMPLETED"
    assert fg.stop() == 0


def test_an_operation_past_its_deadline_is_dropped_by_the_worker(tmpdir_path):
    # A flush that times out on a wedged worker is reported FAILED: the
    # worker must not carry it out once it comes back.
    fg, url = nfw_helpers.start(tmpdir_path, ops={"worker_timeout_ms": 500}, api_extra="debug_endpoints = true\n")
    nfw_helpers.wait_sample(fg, url)
    client = nfw_helpers.client(url)
    with stalled(url):
        op = client.start_flow_flush(FirewallArn=ARN, FlowFilters=[{"DestinationPort": "ANY"}])["FlowOperationId"]
        d = nfw_helpers.wait_final(client, op)
        assert (d["FlowOperationStatus"], d["StatusMessage"]) == ("FAILED", "Flow timeout")
        assert worker_jobs(url) == 1, "the flush holds its place until the worker drops it"
    poll(lambda: worker_jobs(url) == 0, "the worker to drop the flush")
    d, flows = nfw_helpers.run(client, "capture", [{"DestinationPort": "ANY"}])
    assert d["FlowOperationStatus"] == "COMPLETED"
    assert collections.Counter(nfw_helpers.flow_key(f) for f in flows) == nfw_helpers.expected()
    assert fg.stop() == 0


def test_requests_in_flight_per_client_are_bounded(tmpdir_path):
    fg, url = start(tmpdir_path, api_extra="debug_endpoints = true\nmax_inflight_per_client = 1\n", extra="[f5]\ndeadline_ms = 60000\n")
    slow = {}
    t = threading.Thread(target=lambda: slow.setdefault("r", f5(url)))
    # The stall is released from another address: 127.0.0.1's one slot is
    # the slow query's until then.
    with stalled(url, source="127.0.0.2"):
        # One query waits on the wedged worker (until the release)...
        t.start()
        # ...so this client's next requests are throttled, each in its protocol
        # (/healthz, which never waits on a worker, says when it is admitted).
        poll(lambda: http(url, "/healthz", method="GET")[0] == 429, "the slow query to be in progress")
        status, _, body = f5(url)
        assert (status, json.loads(body)["code"]) == (429, 8)
        headers = signed_headers(url + "/", "network-firewall", b'{"FirewallArn": "%s"}' % ARN.encode(),
                                 {"Content-Type": "application/x-amz-json-1.0",
                                  "X-Amz-Target": "NetworkFirewall_20201112.ListFlowOperations"})
        status, _, body = http(url, "/", b'{"FirewallArn": "%s"}' % ARN.encode(), headers)
        assert (status, json.loads(body)["__type"]) == (400, "ThrottlingException")
        form = b"Action=DescribeTrafficMirrorSessions&Version=2016-11-15"
        headers = signed_headers(url + "/", "ec2", form, {"Content-Type": "application/x-www-form-urlencoded"})
        status, _, body = http(url, "/", form, headers)
        assert status == 503 and b"<Code>RequestLimitExceeded</Code>" in body, body
    t.join()
    assert slow["r"][0] == 200
    assert fg.stop() == 0


def test_a_client_that_leaves_mid_request_gives_its_slot_back(tmpdir_path):
    # The queries' deadline outlasts the test: only the hang-up gives a
    # slot back, never the query being answered.
    fg, url = start(tmpdir_path, api_extra="debug_endpoints = true\nmax_inflight_per_client = 1\n", extra="[f5]\ndeadline_ms = 60000\n")
    port = int(url.rsplit(":", 1)[1])
    with stalled(url):
        for _ in range(3):
            # A query that waits on the wedged worker, from a client that hangs up.
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST " + F5.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: APIToken " + API_TOKEN.encode()
                      + b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            poll(lambda: http(url, "/healthz", method="GET")[0] == 429, "the query to be in progress")
            s.close()
            # The slot comes back once the query is abandoned.
            poll(lambda: http(url, "/healthz", method="GET")[0] == 200, "the client's slot to come back")
    assert f5(url)[0] == 200
    assert fg.stop() == 0


@pytest.mark.parametrize("limit", ["max_connections", "max_connections_per_client"])
def test_connections_beyond_the_limit_are_throttled_and_closed(tmpdir_path, limit):
    # Two connections in all, or two from one address (all of these come
    # from 127.0.0.1): a third is answered with the throttling error.
    fg, url = start(tmpdir_path, api_extra=f"{limit} = 2\n")
    port = int(url.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    time.sleep(0.2)
    status, headers, body = f5(url)
    assert (status, json.loads(body)["code"]) == (429, 8)
    assert {k.lower(): v for k, v in headers.items()}.get("connection") == "close"
    # A big body on such a connection is not read whole to be refused.
    status, _, body = f5(url, b"{" + b" " * 100_000 + b"}")
    assert (status, json.loads(body)["code"]) == (429, 8)
    # Liveness still answers.
    assert http(url, "/healthz", method="GET")[0] == 200
    for s in idle:
        s.close()
    poll(lambda: f5(url)[0] == 200, "service once the idle connections are gone")
    assert fg.stop() == 0


def test_a_client_that_stops_reading_is_cut_off_and_frees_the_connection(tmpdir_path):
    # The only connection the appliance serves pipelines scrapes and reads
    # none of the answers. Unbounded, hyper waited on the full socket for
    # good and every other client was throttled.
    fg, url = start(tmpdir_path, api_extra="write_timeout_ms = 300\nmax_connections = 1\n")
    port = int(url.rsplit(":", 1)[1])
    stuck = socket.create_connection(("127.0.0.1", port), timeout=60)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 3000)
    poll(lambda: f5(url)[0] == 429, "the stuck connection to hold the only place")
    poll(lambda: f5(url)[0] == 200, "the stuck connection to be cut off")
    stuck.close()
    assert fg.stop() == 0


def test_a_body_that_never_comes_is_cut_off_and_frees_the_connection(tmpdir_path):
    # Both connections the appliance serves announce a body and never send
    # it. Unbounded, they held both places for good and every other client
    # was throttled.
    fg, url = start(tmpdir_path, api_extra="body_read_timeout_ms = 300\nmax_connections = 2\n")
    port = int(url.rsplit(":", 1)[1])
    stalled = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(2)]
    for s in stalled:
        s.sendall(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-amz-json-1.0\r\n"
            b"X-Amz-Target: NetworkFirewall_20201112.ListFlowOperations\r\n"
            b"Content-Length: 100\r\n\r\n{\"Fir"
        )
    for s in stalled:
        got = b""
        while chunk := s.recv(4096):
            got += chunk
        s.close()
        assert got.startswith(b"HTTP/1.1 408"), got[:200]
        assert b"connection: close" in got.lower()
    poll(lambda: f5(url)[0] == 200, "service once the stalled bodies are cut off")
    assert fg.stop() == 0


def test_slow_headers_are_cut_off_and_big_bodies_refused(tmpdir_path):
    fg, url = start(tmpdir_path, api_extra="header_read_timeout_ms = 300\nmax_body_bytes = 1024\n")
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
        got = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        # Closed by the server (hyper answers 408 first, or just closes).
        assert got == b"" or got.startswith(b"HTTP/1.1 408")
    status, _, _ = f5(url, b"{" + b" " * 4096 + b"}")
    assert status == 413
    # Counted like any other answer, under its face.
    metrics = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    assert 'flowgate_api_requests_total{face="f5",operation="matching_flows",status="413"} 1' in metrics
    assert fg.stop() == 0
