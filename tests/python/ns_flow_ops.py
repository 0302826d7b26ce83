"""Runs flow operations with boto3 against an appliance whose API is only
reachable inside a test's network namespace (run it with ip netns exec).

usage: ns_flow_ops.py URL OPERATIONS_JSON
OPERATIONS_JSON: [["capture" | "flush", FlowFilters], ...], run in order;
also ["stall", WORKER] and ["release", null] (fault injection: `[api]
debug_endpoints = true`).
Prints, as JSON, one [status, flows, status message] per operation, each
flow as nfw_helpers.flow_key gives it (["stalled" | "released", [], null]
for the fault injections)."""

import json
import sys
import urllib.request

from nfw_helpers import client, flow_key, run


def debug_post(url, path, body):
    with urllib.request.urlopen(urllib.request.Request(url + path, data=body, method="POST"), timeout=10) as r:
        assert r.status == 200, r.read()


def main():
    url, ops = sys.argv[1], json.loads(sys.argv[2])
    nfw = client(url)
    out = []
    for kind, arg in ops:
        if kind == "stall":
            debug_post(url, "/debug/stall-worker", json.dumps({"worker": arg, "ms": 60000}).encode())
            out.append(["stalled", [], None])
        elif kind == "release":
            debug_post(url, "/debug/release-workers", b"")
            out.append(["released", [], None])
        else:
            d, flows = run(nfw, kind, arg)
            out.append([d["FlowOperationStatus"], [list(flow_key(f)) for f in flows], d.get("StatusMessage")])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
