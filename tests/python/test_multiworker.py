"""Two workers on a two-queue device: both directions of every flow reach
the same worker (symmetric distribution), and a flow operation covers the
flows of both, proven on the real binary with net_af_packet on veth pairs
in network namespaces made for the test."""

import json
import pathlib
import sys

from conftest import BINARY, Flowgate, config, free_port
from nfw_helpers import LONG_TIMEOUTS, operations

HERE = pathlib.Path(__file__).parent
FLOWS = 300


def received_total(text):
    """Packets the workers received, summed over the last stats block."""
    block = text.rsplit("flowgate stats", 1)[-1]
    total = 0
    for line in block.splitlines():
        words = line.split()
        if len(words) > 3 and words[0] == "worker" and words[2] == "rx":
            total += int(words[3])
    return total


def two_workers_with_flows(netns, tmpdir_path, extra="", api_extra=""):
    """An appliance with two workers in namespace fw, after FLOWS UDP
    conversations crossed it both ways: (Flowgate, fw, API port). `api_extra`
    goes in its [api] section."""
    fw, client, server = netns.ns("fw"), netns.ns("client"), netns.ns("server")
    netns.veth(fw, "a0", client, "a1")
    netns.veth(fw, "b0", server, "b1")
    api = free_port()
    text = config(
        api,
        [("a", "net_af_packet0,iface=a0,qpairs=2", None), ("b", "net_af_packet1,iface=b0,qpairs=2", None)],
        extra=extra,
        pairs='[["a", "b"]]',
        # Oversubscribed lcores are fine for a correctness test (never for a benchmark).
        workers="[1, 1]",
    )
    text = text.replace(f'listen = "127.0.0.1:{api}"\n', f'listen = "127.0.0.1:{api}"\n{api_extra}')
    fg = Flowgate(text, tmpdir_path, netns=fw)
    fg.wait_output(lambda t: "API on http" in t, "start")
    assert "2 worker(s)" in fg.text()
    netns.run(client, sys.executable, str(HERE / "send_udp.py"), "a1", "fwd", str(FLOWS))
    fg.wait_output(lambda t: received_total(t) == FLOWS, "the forward packets")
    netns.run(server, sys.executable, str(HERE / "send_udp.py"), "b1", "rev", str(FLOWS))
    fg.wait_output(lambda t: received_total(t) == 2 * FLOWS, "the reverse packets")
    return fg, fw, api


def test_both_directions_of_each_flow_land_on_one_worker(netns, tmpdir_path):
    fg, _, _ = two_workers_with_flows(netns, tmpdir_path)
    assert fg.stop() == 0, fg.text()
    workers = fg.final_workers()
    assert len(workers) == 2, fg.text()
    created = [w["created"] for w in workers]
    received = [w["rx"] for w in workers]
    # One flow per conversation in total: had a reply reached the other
    # worker, it would have created a second flow there.
    assert sum(created) == FLOWS, fg.text()
    assert all(c > 0 for c in created), f"flows spread over both workers: {created}"
    # Each worker received both directions of exactly the flows it owns.
    assert received == [2 * c for c in created], fg.text()
    assert BINARY.exists()


def conversation(i):
    """send_udp.py's flow i as a reported Flow: the client opened it; one
    60-byte frame each way."""
    return (f"10.0.{i >> 8}.{i & 255}", 10000 + i, "192.0.2.1", 53, 17, 2, 120)


def test_a_flow_operation_covers_the_flows_of_both_workers(netns, tmpdir_path):
    fg, fw, api = two_workers_with_flows(netns, tmpdir_path, extra=LONG_TIMEOUTS + operations())
    half = FLOWS // 2
    ops = [
        ["capture", [{"DestinationPort": "53", "Protocols": ["17"]}]],
        ["flush", [{"SourcePort": f"10000:{10000 + half - 1}"}]],
        ["capture", [{"DestinationPort": "ANY"}]],
    ]
    # boto3 runs where the API is: inside fw.
    out = netns.run(fw, sys.executable, str(HERE / "ns_flow_ops.py"), f"http://127.0.0.1:{api}", json.dumps(ops),
                    capture_output=True, text=True).stdout
    (s1, captured), (s2, flushed), (s3, left) = [(s, sorted(tuple(f) for f in flows))
                                                 for s, flows, _ in json.loads(out)]
    assert (s1, s2, s3) == ("COMPLETED",) * 3
    assert captured == sorted(conversation(i) for i in range(FLOWS))
    assert flushed == sorted(conversation(i) for i in range(half))
    assert left == sorted(conversation(i) for i in range(half, FLOWS))
    assert fg.stop() == 0, fg.text()
    workers = fg.final_workers()
    created = [w["created"] for w in workers]
    active = [w["active"] for w in workers]
    assert sum(created) == FLOWS and all(c > 0 for c in created), fg.text()
    # Each worker flushed its own part of the first half (300 flows spread
    # by RSS: either worker holding none of 150 has odds of 2^-150).
    assert sum(active) == FLOWS - half and all(a < c for a, c in zip(active, created)), (active, created)


def test_a_flush_failed_by_a_late_worker_lists_what_the_other_removed(netns, tmpdir_path):
    # Worker 1 is wedged (fault injection) past the operations' deadline:
    # the flush fails, but worker 0 has removed its flows by then. They are
    # its results; worker 1's job is cancelled before it ever runs, so its
    # flows are all still there once it is released.
    fg, fw, api = two_workers_with_flows(netns, tmpdir_path,
                                         extra=LONG_TIMEOUTS + operations(worker_timeout_ms=1000),
                                         api_extra="debug_endpoints = true\n")
    ops = [["stall", 1], ["flush", [{}]], ["release", None], ["capture", [{}]]]
    out = netns.run(fw, sys.executable, str(HERE / "ns_flow_ops.py"), f"http://127.0.0.1:{api}", json.dumps(ops),
                    capture_output=True, text=True).stdout
    _, (s2, flushed, m2), _, (s4, left, _) = json.loads(out)
    flushed, left = sorted(tuple(f) for f in flushed), sorted(tuple(f) for f in left)
    assert (s2, m2, s4) == ("FAILED", "Flow timeout", "COMPLETED")
    assert flushed and left, "each worker holds some of the flows"
    assert sorted(flushed + left) == sorted(conversation(i) for i in range(FLOWS))
    assert fg.stop() == 0, fg.text()
    w0, w1 = fg.final_workers()
    assert (w0["active"], len(flushed)) == (0, w0["created"]), fg.text()
    assert (w1["active"], len(left)) == (w1["created"], w1["created"]), fg.text()
