"""Runs flow operations with boto3 against an appliance whose API is only
reachable inside a test's network namespace (run it with ip netns exec).

usage: ns_flow_ops.py URL OPERATIONS_JSON
OPERATIONS_JSON: [["capture" | "flush", FlowFilters], ...], run in order.
Prints, as JSON, one [status, flows] per operation, each flow as
nfw_helpers.flow_key gives it."""

import json
import sys

from nfw_helpers import client, flow_key, run


def main():
    url, ops = sys.argv[1], json.loads(sys.argv[2])
    nfw = client(url)
    out = []
    for kind, filters in ops:
        d, flows = run(nfw, kind, filters)
        out.append([d["FlowOperationStatus"], [list(flow_key(f)) for f in flows]])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
