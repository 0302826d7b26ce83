"""Two workers on a two-queue device: both directions of every flow reach
the same worker (symmetric distribution), proven on the real binary with
net_af_packet on veth pairs in network namespaces made for the test."""

import pathlib
import sys

from conftest import BINARY, Flowgate, config, free_port

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


def test_both_directions_of_each_flow_land_on_one_worker(netns, tmpdir_path):
    fw, client, server = netns.ns("fw"), netns.ns("client"), netns.ns("server")
    netns.veth(fw, "a0", client, "a1")
    netns.veth(fw, "b0", server, "b1")
    api = free_port()
    text = config(
        api,
        [("a", "net_af_packet0,iface=a0,qpairs=2", None), ("b", "net_af_packet1,iface=b0,qpairs=2", None)],
        pairs='[["a", "b"]]',
        # Oversubscribed lcores are fine for a correctness test (never for a benchmark).
        workers="[1, 1]",
    )
    fg = Flowgate(text, tmpdir_path, netns=fw)
    fg.wait_output(lambda t: "API on http" in t, "start")
    assert "2 worker(s)" in fg.text()
    netns.run(client, sys.executable, str(HERE / "send_udp.py"), "a1", "fwd", str(FLOWS))
    fg.wait_output(lambda t: received_total(t) == FLOWS, "the forward packets")
    netns.run(server, sys.executable, str(HERE / "send_udp.py"), "b1", "rev", str(FLOWS))
    fg.wait_output(lambda t: received_total(t) == 2 * FLOWS, "the reverse packets")
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
