"""The Network Firewall flow operations through the aws CLI itself
(`aws --endpoint-url URL network-firewall ...`), its JSON output parsed,
against the real binary replaying the sample capture once. Expected flows
come from tshark alone (tshark_flows.py)."""

import collections
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from nfw_helpers import ARN, expected, flow_key, start, wait_sample


def aws_binary():
    # The aws installed beside this Python (the test venv), else PATH's.
    here = pathlib.Path(sys.executable).parent / "aws"
    return str(here) if here.exists() else shutil.which("aws")


@pytest.fixture(scope="module")
def appliance():
    with tempfile.TemporaryDirectory(prefix="flowgate-awscli-") as d:
        fg, url = start(d)
        wait_sample(fg, url)
        yield fg, url
        assert fg.stop() == 0, fg.text()


@pytest.fixture(scope="module")
def aws(appliance, tmp_path_factory):
    _, url = appliance
    home = tmp_path_factory.mktemp("aws-home")
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        # Nothing from the machine's own AWS setup.
        AWS_CONFIG_FILE=str(home / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
        AWS_MAX_ATTEMPTS="1",
        HOME=str(home),
    )
    binary = aws_binary()
    assert binary, "the aws CLI is not installed (make venv)"

    def run(*args, check=True):
        cmd = [binary, "--endpoint-url", url, "--output", "json", "network-firewall", *args]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        if check:
            assert r.returncode == 0, (cmd, r.stderr)
            return json.loads(r.stdout) if r.stdout.strip() else None
        return r

    return run


def wait_final(aws, op_id, limit=60):
    deadline = time.time() + limit
    while time.time() < deadline:
        d = aws("describe-flow-operation", "--firewall-arn", ARN, "--flow-operation-id", op_id)
        if d["FlowOperationStatus"] != "IN_PROGRESS":
            return d
        time.sleep(0.1)
    raise AssertionError(f"{op_id} still IN_PROGRESS after {limit} s")


def test_capture_describe_and_list_with_the_cli(aws):
    want = expected()
    filters = [{"DestinationPort": "80", "Protocols": ["6"]}]
    r = aws(
        "start-flow-capture",
        "--firewall-arn", ARN,
        "--availability-zone", "us-east-1a",
        "--minimum-flow-age-in-seconds", "0",
        "--flow-filters", json.dumps(filters),
    )
    assert r["FirewallArn"] == ARN and r["FlowOperationStatus"] == "IN_PROGRESS"
    op = r["FlowOperationId"]
    d = wait_final(aws, op)
    assert d["FlowOperationType"] == "FLOW_CAPTURE"
    assert d["FlowOperationStatus"] == "COMPLETED"
    assert d["AvailabilityZone"] == "us-east-1a"
    assert d["FlowOperation"] == {"MinimumFlowAgeInSeconds": 0, "FlowFilters": filters}
    assert d["FlowRequestTimestamp"]
    # --page-size 2 makes the CLI walk the NextTokens itself and merge the pages.
    res = aws("list-flow-operation-results", "--firewall-arn", ARN, "--flow-operation-id", op, "--page-size", "2")
    assert res["FlowOperationStatus"] == "COMPLETED"
    web = collections.Counter({k: n for k, n in want.items() if k[3] == 80 and k[4] == 6})
    assert collections.Counter(flow_key(f) for f in res["Flows"]) == web
    assert len(res["Flows"]) == 5
    assert "NextToken" not in res
    ops = aws("list-flow-operations", "--firewall-arn", ARN, "--flow-operation-type", "FLOW_CAPTURE")
    assert ops["FlowOperations"][0]["FlowOperationId"] == op


def test_shorthand_filters_and_flush_with_the_cli(aws):
    want = expected()
    # The CLI's shorthand syntax for one filter.
    shorthand = "SourceAddress={AddressDefinition=fd00::/16},Protocols=17"
    r = aws("start-flow-capture", "--firewall-arn", ARN, "--flow-filters", shorthand)
    wait_final(aws, r["FlowOperationId"])
    res = aws("list-flow-operation-results", "--firewall-arn", ARN, "--flow-operation-id", r["FlowOperationId"])
    v6_udp = collections.Counter({k: n for k, n in want.items() if k[0].startswith("fd00:") and k[4] == 17})
    assert collections.Counter(flow_key(f) for f in res["Flows"]) == v6_udp
    assert len(v6_udp) == 2

    r = aws("start-flow-flush", "--firewall-arn", ARN, "--flow-filters", shorthand)
    d = wait_final(aws, r["FlowOperationId"])
    assert (d["FlowOperationType"], d["FlowOperationStatus"]) == ("FLOW_FLUSH", "COMPLETED")
    res = aws("list-flow-operation-results", "--firewall-arn", ARN, "--flow-operation-id", r["FlowOperationId"])
    assert collections.Counter(flow_key(f) for f in res["Flows"]) == v6_udp
    # Gone afterwards; everything else still there.
    r = aws("start-flow-capture", "--firewall-arn", ARN, "--flow-filters", "[{}]")
    wait_final(aws, r["FlowOperationId"])
    res = aws("list-flow-operation-results", "--firewall-arn", ARN, "--flow-operation-id", r["FlowOperationId"])
    assert collections.Counter(flow_key(f) for f in res["Flows"]) == want - v6_udp
    flushes = aws("list-flow-operations", "--firewall-arn", ARN, "--flow-operation-type", "FLOW_FLUSH")
    assert [o["FlowOperationType"] for o in flushes["FlowOperations"]] == ["FLOW_FLUSH"]


@pytest.mark.parametrize(
    "args,code",
    [
        (["start-flow-capture", "--firewall-arn", ARN + "x", "--flow-filters", "[{}]"], "ResourceNotFoundException"),
        (["start-flow-capture", "--firewall-arn", ARN, "--flow-filters", '[{"DestinationPort": "9:1"}]'], "InvalidRequestException"),
        (["start-flow-flush", "--firewall-arn", ARN, "--flow-filters",
          '[{"SourceAddress": {"AddressDefinition": "10.0.0.0/40"}}]'], "InvalidRequestException"),
        (["describe-flow-operation", "--firewall-arn", ARN, "--flow-operation-id",
          "00000000-0000-4000-8000-000000000000"], "ResourceNotFoundException"),
        (["list-flow-operations", "--firewall-arn", ARN, "--max-results", "500", "--no-paginate"], "InvalidRequestException"),
    ],
)
def test_errors_through_the_cli(aws, args, code):
    r = aws(*args, check=False)
    assert r.returncode != 0
    assert f"({code})" in r.stderr, r.stderr
