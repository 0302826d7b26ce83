"""The EC2 Traffic Mirroring face through the aws CLI itself
(`aws --endpoint-url URL ec2 ...`): create, describe, modify and delete each
kind of object, a Describe filter, DryRun and an error code as the CLI
prints them."""

import json
import os
import subprocess

import pytest

from conftest import Flowgate, config, free_port
from test_ec2_boto3 import INSIDE, OUTSIDE
from test_nfw_awscli import aws_binary


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    d = tmp_path_factory.mktemp("ec2-awscli")
    port = free_port()
    fg = Flowgate(config(port, [("inside", "net_null0,no-rx=1", INSIDE), ("outside", "net_null1,no-rx=1", OUTSIDE)]), d)
    url = f"http://127.0.0.1:{port}"
    fg.wait_ready(url)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=str(d / "config"), AWS_SHARED_CREDENTIALS_FILE=str(d / "credentials"),
               AWS_MAX_ATTEMPTS="1", HOME=str(d))

    def run(*args, check=True, key="test", secret="test"):
        cmd = [aws_binary(), "--endpoint-url", url, "--output", "json", "ec2", *args]
        r = subprocess.run(cmd, env=dict(env, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret),
                           capture_output=True, text=True, timeout=120)
        if check:
            assert r.returncode == 0, (cmd, r.stderr)
            return json.loads(r.stdout) if r.stdout.strip() else None
        return r

    yield run
    assert fg.stop() == 0


def test_lifecycle_with_the_aws_cli(aws):
    t = aws("create-traffic-mirror-target", "--network-interface-id", OUTSIDE,
            "--description", "collector")["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    f = aws("create-traffic-mirror-filter")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    r = aws("create-traffic-mirror-filter-rule", "--traffic-mirror-filter-id", f, "--traffic-direction", "ingress",
            "--rule-number", "100", "--rule-action", "accept", "--protocol", "17",
            "--destination-port-range", "FromPort=53,ToPort=53",
            "--destination-cidr-block", "0.0.0.0/0", "--source-cidr-block", "10.0.0.0/8")["TrafficMirrorFilterRule"]
    assert r["DestinationPortRange"] == {"FromPort": 53, "ToPort": 53}
    s = aws("create-traffic-mirror-session", "--network-interface-id", INSIDE, "--traffic-mirror-target-id", t,
            "--traffic-mirror-filter-id", f, "--session-number", "1", "--virtual-network-id", "9",
            "--packet-length", "128")["TrafficMirrorSession"]
    got = aws("describe-traffic-mirror-sessions", "--filters", "Name=virtual-network-id,Values=9")["TrafficMirrorSessions"]
    assert [x["TrafficMirrorSessionId"] for x in got] == [s["TrafficMirrorSessionId"]]
    m = aws("modify-traffic-mirror-session", "--traffic-mirror-session-id", s["TrafficMirrorSessionId"],
            "--remove-fields", "packet-length")["TrafficMirrorSession"]
    assert "PacketLength" not in m
    dry = aws("delete-traffic-mirror-session", "--traffic-mirror-session-id", s["TrafficMirrorSessionId"], "--dry-run",
              check=False)
    assert dry.returncode != 0 and "DryRunOperation" in dry.stderr
    aws("delete-traffic-mirror-session", "--traffic-mirror-session-id", s["TrafficMirrorSessionId"])
    gone = aws("describe-traffic-mirror-sessions", "--traffic-mirror-session-ids", s["TrafficMirrorSessionId"], check=False)
    assert gone.returncode != 0 and "InvalidTrafficMirrorSessionId.NotFound" in gone.stderr
    aws("delete-traffic-mirror-filter-rule", "--traffic-mirror-filter-rule-id", r["TrafficMirrorFilterRuleId"])
    aws("delete-traffic-mirror-filter", "--traffic-mirror-filter-id", f)
    aws("delete-traffic-mirror-target", "--traffic-mirror-target-id", t)
    assert aws("describe-traffic-mirror-targets")["TrafficMirrorTargets"] == []


def test_wrong_keys_and_pagination_with_the_aws_cli(aws):
    bad = aws("describe-traffic-mirror-targets", key="AKIDUNKNOWN", check=False)
    assert bad.returncode != 0 and "AuthFailure" in bad.stderr, bad.stderr
    bad = aws("describe-traffic-mirror-targets", secret="wrong", check=False)
    assert bad.returncode != 0 and "SignatureDoesNotMatch" in bad.stderr, bad.stderr
    made = [aws("create-traffic-mirror-filter", "--description", f"page{i}")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
            for i in range(7)]
    # The CLI follows NextToken itself: pages of 5 come back as one list.
    got = aws("describe-traffic-mirror-filters", "--page-size", "5")["TrafficMirrorFilters"]
    assert [f["TrafficMirrorFilterId"] for f in got] == made
    one = aws("describe-traffic-mirror-filters", "--max-results", "5", "--no-paginate")
    assert len(one["TrafficMirrorFilters"]) == 5 and one["NextToken"]
    rest = aws("describe-traffic-mirror-filters", "--max-results", "5", "--no-paginate", "--next-token", one["NextToken"])
    assert [f["TrafficMirrorFilterId"] for f in one["TrafficMirrorFilters"] + rest["TrafficMirrorFilters"]] == made
    bad = aws("describe-traffic-mirror-filters", "--max-results", "5", "--no-paginate", "--next-token", "nope", check=False)
    assert bad.returncode != 0 and "InvalidPaginationToken" in bad.stderr, bad.stderr
    for f in made:
        aws("delete-traffic-mirror-filter", "--traffic-mirror-filter-id", f)
