#!/usr/bin/env python3
"""A/B of flowgate builds in track mode: the flows scenario's setup
(benches/run.py: net_pcap replaying N flows forever -> net_null, the
forwarding lcore 1), each build started in turn, round after round.

This VM's rates drift by more than a code change moves them between two
sweeps minutes apart, so a change is judged by alternating its build with
the one before it in one invocation, not by comparing sweeps.

Usage:
  .venv/bin/python benches/ab.py --flows 65536 --rounds 3 DIR_A DIR_B ...
where each DIR holds a `flowgate` binary (e.g. a copy of target/release/flowgate
from each commit). Prints one JSON line per run and the medians per build.
"""

import argparse
import json
import os
import statistics
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("builds", nargs="+", help="directories, each holding a flowgate binary")
    ap.add_argument("--flows", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    # run.py starts processes from its work directory.
    a.builds = [os.path.abspath(d) for d in a.builds]
    for d in a.builds:
        if not os.access(os.path.join(d, "flowgate"), os.X_OK):
            ap.error(f"{d}: no flowgate binary there")
    os.makedirs(run.WORK, exist_ok=True)
    cfg = types.SimpleNamespace(warm=5, windows=3, length=3.0)
    pcap = run.capture(a.flows)
    run.hugepages_for(a.flows)
    capacity = max(1 << 20, 2 * a.flows)
    medians = {d: [] for d in a.builds}
    for r in range(a.rounds):
        for d in a.builds:
            run.BIN = d
            w = run.measure("flowgate", "track", pcap, a.flows, cfg, capacity)
            medians[d].append(statistics.median(w))
            print(json.dumps({"round": r, "build": d, "flows": a.flows, "median_mpps": round(medians[d][-1], 2),
                              "windows": [round(x, 2) for x in w]}), flush=True)
    for d, m in medians.items():
        print(f"{d}: median {statistics.median(m):.2f} Mpps over {len(m)} runs ({min(m):.2f}-{max(m):.2f})")


if __name__ == "__main__":
    main()
