"""The EC2 Traffic Mirroring face, driven with boto3's `ec2` client against
the real binary: the lifecycle of targets, filters, rules and sessions,
Describe filters and pagination, DryRun, EC2's error codes and SigV4
(persistence across a kill -9 is test_ec2_persist.py).
"""

import datetime
import os
import subprocess
import sys
import urllib.error
import urllib.request
import xml.etree.ElementTree
from unittest import mock

import boto3
import botocore
import botocore.config
import botocore.exceptions
import pytest

from conftest import ACCESS_KEY, SECRET_KEY, Flowgate, config, free_port, signed_headers

INSIDE, OUTSIDE = "eni-0inside0000000001", "eni-0outside000000001"


def ec2(url, key=ACCESS_KEY, secret=SECRET_KEY):
    return boto3.client("ec2", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret)


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def appliance(tmp_path_factory):
    d = tmp_path_factory.mktemp("ec2")
    port = free_port()
    fg = Flowgate(config(port, [("inside", "net_null0,no-rx=1", INSIDE), ("outside", "net_null1,no-rx=1", OUTSIDE)],
                         extra="[mirror]\nstate_file = \"%s\"\nmax_sessions = 4\n" % (d / "mirror.json")), d)
    url = f"http://127.0.0.1:{port}"
    fg.wait_ready(url)
    yield url
    fg.stop()


def raw(url, body):
    """POSTs a signed EC2 query body; returns (status, text)."""
    h = signed_headers(url + "/", "ec2", body, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    req = urllib.request.Request(url + "/", data=body.encode(), method="POST", headers=h)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def make_filter(c, **kw):
    return c.create_traffic_mirror_filter(**kw)["TrafficMirrorFilter"]["TrafficMirrorFilterId"]


def test_target_lifecycle(appliance):
    c = ec2(appliance)
    t = c.create_traffic_mirror_target(NetworkInterfaceId=OUTSIDE, Description="collector",
                                       TagSpecifications=[{"ResourceType": "traffic-mirror-target",
                                                           "Tags": [{"Key": "team", "Value": "net"}]}])["TrafficMirrorTarget"]
    assert t["TrafficMirrorTargetId"].startswith("tmt-") and len(t["TrafficMirrorTargetId"]) == 21
    assert t["NetworkInterfaceId"] == OUTSIDE
    assert t["Type"] == "network-interface"
    assert t["OwnerId"] == "123456789012"
    assert t["Tags"] == [{"Key": "team", "Value": "net"}]
    got = c.describe_traffic_mirror_targets(TrafficMirrorTargetIds=[t["TrafficMirrorTargetId"]])["TrafficMirrorTargets"]
    assert got == [t]
    c.delete_traffic_mirror_target(TrafficMirrorTargetId=t["TrafficMirrorTargetId"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_traffic_mirror_targets(TrafficMirrorTargetIds=[t["TrafficMirrorTargetId"]])
    assert code(e) == "InvalidTrafficMirrorTargetId.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_traffic_mirror_target(NetworkInterfaceId="eni-0nothere000000001")
    assert code(e) == "InvalidNetworkInterfaceId.NotFound"


def test_filter_rules_lifecycle_and_modify(appliance):
    c = ec2(appliance)
    f = make_filter(c, Description="web")
    r = c.create_traffic_mirror_filter_rule(
        TrafficMirrorFilterId=f, TrafficDirection="ingress", RuleNumber=10, RuleAction="accept",
        Protocol=6, DestinationPortRange={"FromPort": 80, "ToPort": 443},
        DestinationCidrBlock="0.0.0.0/0", SourceCidrBlock="10.0.0.0/8", Description="http",
        TagSpecifications=[{"ResourceType": "traffic-mirror-filter-rule",
                            "Tags": [{"Key": "app", "Value": "web"}]}])["TrafficMirrorFilterRule"]
    assert r["Tags"] == [{"Key": "app", "Value": "web"}]
    assert r["TrafficMirrorFilterRuleId"].startswith("tmfr-")
    assert r["DestinationPortRange"] == {"FromPort": 80, "ToPort": 443}
    assert r["RuleAction"] == "accept" and r["RuleNumber"] == 10 and r["Protocol"] == 6
    eg = c.create_traffic_mirror_filter_rule(
        TrafficMirrorFilterId=f, TrafficDirection="egress", RuleNumber=10, RuleAction="reject",
        DestinationCidrBlock="0.0.0.0/0", SourceCidrBlock="0.0.0.0/0")["TrafficMirrorFilterRule"]
    got = c.describe_traffic_mirror_filters(TrafficMirrorFilterIds=[f])["TrafficMirrorFilters"][0]
    assert [x["TrafficMirrorFilterRuleId"] for x in got["IngressFilterRules"]] == [r["TrafficMirrorFilterRuleId"]]
    assert [x["TrafficMirrorFilterRuleId"] for x in got["EgressFilterRules"]] == [eg["TrafficMirrorFilterRuleId"]]
    assert got["Description"] == "web"
    # The same rule number twice in one direction is refused.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_traffic_mirror_filter_rule(TrafficMirrorFilterId=f, TrafficDirection="ingress", RuleNumber=10,
                                            RuleAction="accept", DestinationCidrBlock="0.0.0.0/0", SourceCidrBlock="0.0.0.0/0")
    assert code(e) == "InvalidParameterValue"
    # Modify, then remove fields.
    m = c.modify_traffic_mirror_filter_rule(TrafficMirrorFilterRuleId=r["TrafficMirrorFilterRuleId"], RuleAction="reject",
                                            RuleNumber=20)["TrafficMirrorFilterRule"]
    assert m["RuleAction"] == "reject" and m["RuleNumber"] == 20
    m = c.modify_traffic_mirror_filter_rule(TrafficMirrorFilterRuleId=r["TrafficMirrorFilterRuleId"],
                                            RemoveFields=["destination-port-range", "description"])["TrafficMirrorFilterRule"]
    assert "DestinationPortRange" not in m and "Description" not in m
    rules = c.describe_traffic_mirror_filter_rules(TrafficMirrorFilterId=f,
                                                   Filters=[{"Name": "traffic-direction", "Values": ["egress"]}])
    assert [x["TrafficMirrorFilterRuleId"] for x in rules["TrafficMirrorFilterRules"]] == [eg["TrafficMirrorFilterRuleId"]]
    n = c.modify_traffic_mirror_filter_network_services(TrafficMirrorFilterId=f, AddNetworkServices=["amazon-dns"])
    assert n["TrafficMirrorFilter"]["NetworkServices"] == ["amazon-dns"]
    c.delete_traffic_mirror_filter_rule(TrafficMirrorFilterRuleId=eg["TrafficMirrorFilterRuleId"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_traffic_mirror_filter_rule(TrafficMirrorFilterRuleId=eg["TrafficMirrorFilterRuleId"])
    assert code(e) == "InvalidTrafficMirrorFilterRuleId.NotFound"
    # Ports without TCP/UDP, a bad CIDR, a bad direction.
    for kw, want in [
        (dict(SourcePortRange={"FromPort": 1, "ToPort": 2}), "InvalidParameterCombination"),
        (dict(Protocol=0, DestinationPortRange={"FromPort": 1, "ToPort": 2}), "InvalidParameterCombination"),
        (dict(SourceCidrBlock="10.0.0.0/33"), "InvalidParameterValue"),
        (dict(TrafficDirection="sideways"), "InvalidParameterValue"),
        (dict(TrafficMirrorFilterId="tmf-00000000000000000"), "InvalidTrafficMirrorFilterId.NotFound"),
    ]:
        args = dict(TrafficMirrorFilterId=f, TrafficDirection="ingress", RuleNumber=30, RuleAction="accept",
                    DestinationCidrBlock="0.0.0.0/0", SourceCidrBlock="0.0.0.0/0")
        args.update(kw)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            c.create_traffic_mirror_filter_rule(**args)
        assert code(e) == want, kw
    c.delete_traffic_mirror_filter(TrafficMirrorFilterId=f)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_traffic_mirror_filter_rules(TrafficMirrorFilterRuleIds=[r["TrafficMirrorFilterRuleId"]])
    assert code(e) == "InvalidTrafficMirrorFilterRuleId.NotFound"


def test_rule_bound_per_direction_holds_on_modify(appliance):
    # max_rules_per_filter = 10 (default) per direction: creating the 11th
    # and moving a rule into a full direction both answer the limit error.
    c = ec2(appliance)
    f = make_filter(c)
    base = dict(TrafficMirrorFilterId=f, RuleAction="accept", DestinationCidrBlock="0.0.0.0/0",
                SourceCidrBlock="0.0.0.0/0")
    for n in range(1, 11):
        c.create_traffic_mirror_filter_rule(TrafficDirection="egress", RuleNumber=n, **base)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_traffic_mirror_filter_rule(TrafficDirection="egress", RuleNumber=11, **base)
    assert code(e) == "TrafficMirrorFilterRuleLimitExceeded"
    r = c.create_traffic_mirror_filter_rule(TrafficDirection="ingress", RuleNumber=50, **base)
    rid = r["TrafficMirrorFilterRule"]["TrafficMirrorFilterRuleId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.modify_traffic_mirror_filter_rule(TrafficMirrorFilterRuleId=rid, TrafficDirection="egress")
    assert code(e) == "TrafficMirrorFilterRuleLimitExceeded"
    got = c.describe_traffic_mirror_filter_rules(TrafficMirrorFilterRuleIds=[rid])["TrafficMirrorFilterRules"]
    assert got[0]["TrafficDirection"] == "ingress"  # refused changes leave nothing behind
    c.delete_traffic_mirror_filter(TrafficMirrorFilterId=f)


def test_session_lifecycle_dependencies_and_limits(appliance):
    c = ec2(appliance)
    t = c.create_traffic_mirror_target(NetworkInterfaceId=OUTSIDE)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    f = make_filter(c)
    s = c.create_traffic_mirror_session(NetworkInterfaceId=INSIDE, TrafficMirrorTargetId=t, TrafficMirrorFilterId=f,
                                        SessionNumber=1, PacketLength=100, Description="first")["TrafficMirrorSession"]
    assert s["TrafficMirrorSessionId"].startswith("tms-")
    assert 0 <= s["VirtualNetworkId"] < 1 << 24  # chosen at random, as EC2 does
    assert s["PacketLength"] == 100 and s["SessionNumber"] == 1
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_traffic_mirror_target(TrafficMirrorTargetId=t)
    assert code(e) == "DependencyViolation"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_traffic_mirror_filter(TrafficMirrorFilterId=f)
    assert code(e) == "DependencyViolation"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_traffic_mirror_session(NetworkInterfaceId=INSIDE, TrafficMirrorTargetId=t, TrafficMirrorFilterId=f,
                                        SessionNumber=32767)
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_traffic_mirror_session(NetworkInterfaceId=INSIDE, TrafficMirrorTargetId="tmt-00000000000000000",
                                        TrafficMirrorFilterId=f, SessionNumber=2)
    assert code(e) == "InvalidTrafficMirrorTargetId.NotFound"
    # A port cannot mirror itself to itself.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_traffic_mirror_session(NetworkInterfaceId=OUTSIDE, TrafficMirrorTargetId=t, TrafficMirrorFilterId=f,
                                        SessionNumber=2)
    assert code(e) == "InvalidParameterCombination"
    m = c.modify_traffic_mirror_session(TrafficMirrorSessionId=s["TrafficMirrorSessionId"], VirtualNetworkId=77,
                                        RemoveFields=["packet-length", "description"])["TrafficMirrorSession"]
    assert m["VirtualNetworkId"] == 77 and "PacketLength" not in m and "Description" not in m
    # The configured bound (max_sessions = 4) answers EC2's limit error.
    made = []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        for n in range(2, 10):
            made.append(c.create_traffic_mirror_session(NetworkInterfaceId=INSIDE, TrafficMirrorTargetId=t,
                                                        TrafficMirrorFilterId=f, SessionNumber=n)["TrafficMirrorSession"]["TrafficMirrorSessionId"])
    assert code(e) == "TrafficMirrorSessionLimitExceeded"
    assert len(made) == 3
    for sid in made + [s["TrafficMirrorSessionId"]]:
        c.delete_traffic_mirror_session(TrafficMirrorSessionId=sid)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_traffic_mirror_session(TrafficMirrorSessionId=s["TrafficMirrorSessionId"])
    assert code(e) == "InvalidTrafficMirrorSessionId.NotFound"
    c.delete_traffic_mirror_filter(TrafficMirrorFilterId=f)
    c.delete_traffic_mirror_target(TrafficMirrorTargetId=t)


def test_describe_filters_and_pagination(appliance):
    c = ec2(appliance)
    t = c.create_traffic_mirror_target(NetworkInterfaceId=OUTSIDE)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    f = make_filter(c)
    ids = []
    for n in (1, 2, 3, 4):
        ids.append(c.create_traffic_mirror_session(NetworkInterfaceId=INSIDE, TrafficMirrorTargetId=t,
                                                   TrafficMirrorFilterId=f, SessionNumber=n, VirtualNetworkId=100 + n,
                                                   Description=f"s{n}")["TrafficMirrorSession"]["TrafficMirrorSessionId"])
    try:
        one = c.describe_traffic_mirror_sessions(Filters=[{"Name": "session-number", "Values": ["2", "4"]},
                                                          {"Name": "virtual-network-id", "Values": ["104"]}])
        assert [s["TrafficMirrorSessionId"] for s in one["TrafficMirrorSessions"]] == [ids[3]]
        ored = c.describe_traffic_mirror_sessions(Filters=[{"Name": "description", "Values": ["s1", "s3"]}])
        assert [s["TrafficMirrorSessionId"] for s in ored["TrafficMirrorSessions"]] == [ids[0], ids[2]]
        wild = c.describe_traffic_mirror_sessions(Filters=[{"Name": "traffic-mirror-session-id", "Values": [ids[1][:8] + "*"]}])
        assert [s["TrafficMirrorSessionId"] for s in wild["TrafficMirrorSessions"]] == \
            [i for i in ids if i.startswith(ids[1][:8])]
        # Pagination: MaxResults 5..1000; pages of 5 over more than 5 objects
        # are exercised with filters (the session bound is 4 here).
        page = c.describe_traffic_mirror_sessions(MaxResults=5)
        assert len(page["TrafficMirrorSessions"]) == 4 and "NextToken" not in page
        extra = [make_filter(c, Description=f"p{i}") for i in range(7)]
        seen, token = [], None
        while True:
            kw = {"MaxResults": 5, "Filters": [{"Name": "description", "Values": ["p*"]}]}
            if token:
                kw["NextToken"] = token
            r = c.describe_traffic_mirror_filters(**kw)
            seen += [x["TrafficMirrorFilterId"] for x in r["TrafficMirrorFilters"]]
            token = r.get("NextToken")
            if not token:
                break
        assert seen == extra
        # A page's token still leads to every object left when some listed
        # before it are deleted in between.
        kw = {"MaxResults": 5, "Filters": [{"Name": "description", "Values": ["p*"]}]}
        first = c.describe_traffic_mirror_filters(**kw)
        assert [x["TrafficMirrorFilterId"] for x in first["TrafficMirrorFilters"]] == extra[:5]
        c.delete_traffic_mirror_filter(TrafficMirrorFilterId=extra[0])
        rest = c.describe_traffic_mirror_filters(NextToken=first["NextToken"], **kw)
        assert [x["TrafficMirrorFilterId"] for x in rest["TrafficMirrorFilters"]] == extra[5:]
        assert "NextToken" not in rest
        extra = extra[1:]
        pages = list(c.get_paginator("describe_traffic_mirror_filters").paginate(PaginationConfig={"PageSize": 5}))
        assert len(pages) >= 2
        # boto3 itself refuses MaxResults below 5; on the wire it is EC2's error.
        status, text = raw(appliance, "Action=DescribeTrafficMirrorSessions&Version=2016-11-15&MaxResults=4")
        assert status == 400 and "<Code>InvalidParameterValue</Code>" in text, text
        for bad, want in [({"NextToken": "bogus"}, "InvalidPaginationToken"),
                          ({"Filters": [{"Name": "colour", "Values": ["red"]}]}, "InvalidParameterValue")]:
            with pytest.raises(botocore.exceptions.ClientError) as e:
                c.describe_traffic_mirror_sessions(**bad)
            assert code(e) == want, bad
        for x in extra:
            c.delete_traffic_mirror_filter(TrafficMirrorFilterId=x)
    finally:
        for sid in ids:
            c.delete_traffic_mirror_session(TrafficMirrorSessionId=sid)
        c.delete_traffic_mirror_filter(TrafficMirrorFilterId=f)
        c.delete_traffic_mirror_target(TrafficMirrorTargetId=t)


def test_tags_are_bounded_as_ec2_bounds_them(appliance):
    c = ec2(appliance)

    def spec(tags):
        return [{"ResourceType": "traffic-mirror-filter", "Tags": tags}]

    most = [{"Key": f"k{i:02}" + "x" * 125, "Value": "v" * 256} for i in range(50)]
    f = make_filter(c, TagSpecifications=spec(most))
    got = c.describe_traffic_mirror_filters(TrafficMirrorFilterIds=[f])["TrafficMirrorFilters"][0]["Tags"]
    assert sorted(got, key=lambda t: t["Key"]) == most
    c.delete_traffic_mirror_filter(TrafficMirrorFilterId=f)
    before = len(c.describe_traffic_mirror_filters()["TrafficMirrorFilters"])
    for tags, want in [
        (most + [{"Key": "one-more", "Value": ""}], "TagLimitExceeded"),
        ([{"Key": "k" * 129, "Value": ""}], "InvalidParameterValue"),
        ([{"Key": "k", "Value": "v" * 257}], "InvalidParameterValue"),
        ([{"Key": "AWS:owner", "Value": "me"}], "InvalidParameterValue"),
        ([{"Key": "twice", "Value": "1"}, {"Key": "twice", "Value": "2"}], "InvalidParameterValue"),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            make_filter(c, TagSpecifications=spec(tags))
        assert code(e) == want, tags[-1]["Key"][:10]
    # Refused, and nothing was created.
    assert len(c.describe_traffic_mirror_filters()["TrafficMirrorFilters"]) == before


def test_a_create_retried_with_its_client_token_makes_one_object(appliance):
    # boto3 fills ClientToken in and sends the same one on each retry of a
    # create whose answer was lost; here the retry is sent by hand.
    c = ec2(appliance)
    before = len(c.describe_traffic_mirror_targets()["TrafficMirrorTargets"])
    made = [c.create_traffic_mirror_target(NetworkInterfaceId=OUTSIDE, Description="retried", ClientToken="tok-retry")
            for _ in range(2)]
    ids = {m["TrafficMirrorTarget"]["TrafficMirrorTargetId"] for m in made}
    assert len(ids) == 1 and all(m["ClientToken"] == "tok-retry" for m in made)
    assert len(c.describe_traffic_mirror_targets()["TrafficMirrorTargets"]) == before + 1
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_traffic_mirror_target(NetworkInterfaceId=OUTSIDE, Description="other", ClientToken="tok-retry")
    assert code(e) == "IdempotentParameterMismatch"
    c.delete_traffic_mirror_target(TrafficMirrorTargetId=ids.pop())


def test_dry_run_and_unknown_action(appliance):
    c = ec2(appliance)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_traffic_mirror_filter(DryRun=True)
    assert code(e) == "DryRunOperation"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert c.describe_traffic_mirror_filters()["TrafficMirrorFilters"] == []
    status, text = raw(appliance, "Action=RunInstances&Version=2016-11-15")
    assert status == 400
    assert "<Code>InvalidAction</Code>" in text and "<RequestID>" in text


def test_wrong_keys_are_refused_with_ec2_codes(appliance):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2(appliance, key="nobody").describe_traffic_mirror_targets()
    assert code(e) == "AuthFailure"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2(appliance, secret="wrong").describe_traffic_mirror_targets()
    assert code(e) == "SignatureDoesNotMatch"


def test_dry_run_without_authentication_is_unauthorized(tmp_path):
    port = free_port()
    text = config(port, [("inside", "net_null0,no-rx=1", INSIDE), ("outside", "net_null1,no-rx=1", OUTSIDE)])
    text = text.replace("[auth]\n", "[auth]\nenabled = false\n", 1)
    fg = Flowgate(text, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        fg.wait_ready(url)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2(url).create_traffic_mirror_filter(DryRun=True)
        assert code(e) == "UnauthorizedOperation"
    finally:
        fg.stop()


def test_stale_unsigned_and_curl_requests_get_ec2_auth_errors(appliance):
    # Signed ten minutes ago: outside the five-minute window.
    past = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=10)
    with mock.patch("botocore.auth.get_current_datetime", return_value=past):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2(appliance).describe_traffic_mirror_sessions()
    assert code(e) == "RequestExpired"
    unsigned = boto3.client("ec2", endpoint_url=appliance, region_name="us-east-1",
                            config=botocore.config.Config(signature_version=botocore.UNSIGNED,
                                                          retries={"total_max_attempts": 1}))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        unsigned.describe_traffic_mirror_targets()
    assert code(e) == "MissingAuthenticationToken"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    # curl with no signature: the XML error document itself.
    out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "-X", "POST", appliance + "/",
                          "-H", "Content-Type: application/x-www-form-urlencoded",
                          "--data", "Action=DescribeTrafficMirrorTargets&Version=2016-11-15"],
                         capture_output=True, text=True, check=True).stdout
    body, status = out.rsplit("\n", 1)
    assert status == "401"
    assert "<Response><Errors><Error><Code>MissingAuthenticationToken</Code>" in body
    assert "<RequestID>" in body


def test_benchmark_setup_script_configures_each_mode(appliance):
    # benches/mirror_setup.py drives the same API; each mode leaves the
    # objects that benchmark scenario needs, and `none` removes them all.
    script = os.path.join(os.path.dirname(__file__), "..", "..", "benches", "mirror_setup.py")
    c = ec2(appliance)

    def setup(mode, *extra):
        subprocess.run([sys.executable, script, "--endpoint", appliance, "--keys", f"{ACCESS_KEY}:{SECRET_KEY}",
                        "--mode", mode, "--source", INSIDE, "--target", OUTSIDE, *extra], check=True, timeout=120)
        return c.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]

    assert setup("100pct", "--packet-length", "64")[0]["PacketLength"] == 64
    rules = c.describe_traffic_mirror_filter_rules()["TrafficMirrorFilterRules"]
    assert [(r["SourceCidrBlock"], r.get("Protocol")) for r in rules] == [("0.0.0.0/0", None)]
    s = setup("10pct", "--flows", "1024")
    assert len(s) == 1 and "PacketLength" not in s[0]
    rules = c.describe_traffic_mirror_filter_rules()["TrafficMirrorFilterRules"]
    assert [r["SourceCidrBlock"] for r in rules] == ["10.0.0.0/25"]
    setup("nothing")
    rules = c.describe_traffic_mirror_filter_rules()["TrafficMirrorFilterRules"]
    assert [r["Protocol"] for r in rules] == [132]
    assert setup("none") == []
    assert c.describe_traffic_mirror_filters()["TrafficMirrorFilters"] == []
    assert c.describe_traffic_mirror_targets()["TrafficMirrorTargets"] == []


def test_characters_xml_cannot_carry_are_refused_and_answers_stay_parseable(appliance):
    # `%01` decodes to U+0001, which XML 1.0 forbids even as a reference:
    # stored, it would make every later Describe unreadable to botocore.
    c = ec2(appliance)
    before = c.describe_traffic_mirror_filters()["TrafficMirrorFilters"]
    for kw, name in [
        (dict(Description="a\x01b"), "Description"),
        (dict(TagSpecifications=[{"ResourceType": "traffic-mirror-filter", "Tags": [{"Key": "k\x1f", "Value": ""}]}]),
         "Tag.Key"),
        (dict(TagSpecifications=[{"ResourceType": "traffic-mirror-filter", "Tags": [{"Key": "k", "Value": "\x7f\x00"}]}]),
         "Tag.Value"),
        (dict(ClientToken="tok\x02"), "ClientToken"),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            c.create_traffic_mirror_filter(**kw)
        assert code(e) == "InvalidParameterValue", name
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert e.value.response["Error"]["Message"].startswith(f"Value for parameter {name} is invalid."), name
    # Nothing was kept, and Describe still parses.
    assert c.describe_traffic_mirror_filters()["TrafficMirrorFilters"] == before
    # Tab, LF and CR are XML characters: they come back as sent (a bare CR
    # would read back as LF).
    f = make_filter(c, Description="a\tb\nc\rd")
    got = c.describe_traffic_mirror_filters(TrafficMirrorFilterIds=[f])["TrafficMirrorFilters"][0]
    assert got["Description"] == "a\tb\nc\rd"
    c.delete_traffic_mirror_filter(TrafficMirrorFilterId=f)
    # Errors that echo what was sent stay well-formed: botocore reads the
    # code, and the forbidden character comes back as U+FFFD.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_traffic_mirror_filters(TrafficMirrorFilterIds=["tmf-\x01\r"])
    assert code(e) == "InvalidTrafficMirrorFilterId.NotFound"
    assert "'tmf-\ufffd\r'" in e.value.response["Error"]["Message"]
    for body in ["Action=CreateTrafficMirrorFilterRule&Version=2016-11-15&TrafficMirrorFilterId=tmf-x"
                 "&TrafficDirection=%01&RuleNumber=1&RuleAction=accept&DestinationCidrBlock=0.0.0.0/0"
                 "&SourceCidrBlock=0.0.0.0/0",
                 "Action=DeleteTrafficMirrorSession&Version=2016-11-15&TrafficMirrorSessionId=tms-%01%EF%BF%BF",
                 "Action=Run%08Instances&Version=2016-11-15"]:
        status, text = raw(appliance, body)
        assert status == 400, text
        # expat, as botocore uses: strict about characters.
        root = xml.etree.ElementTree.fromstring(text)
        assert "\ufffd" in root.find("Errors/Error/Message").text, text


def test_forward_mode_accepts_sessions_and_says_they_mirror_nothing(tmp_path):
    # Forwarding-only workers parse no packet, so no filter can match: the
    # session is kept as configuration, and the operator is told, at each
    # change and at start.
    port = free_port()
    state = tmp_path / "mirror.json"
    text = config(port, [("inside", "net_null0,no-rx=1", INSIDE), ("outside", "net_null1,no-rx=1", OUTSIDE)],
                  extra=f'[mirror]\nstate_file = "{state}"\n', mode="forward")
    url = f"http://127.0.0.1:{port}"
    line = '[dataplane] mode = "forward" mirrors nothing: 1 traffic mirror session(s) kept but not installed'
    fg = Flowgate(text, tmp_path)
    try:
        fg.wait_ready(url)
        c = ec2(url)
        t = c.create_traffic_mirror_target(NetworkInterfaceId=OUTSIDE)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
        f = make_filter(c)
        assert "mirrors nothing" not in fg.text(), "no session yet: nothing to say"
        s = c.create_traffic_mirror_session(NetworkInterfaceId=INSIDE, TrafficMirrorTargetId=t,
                                            TrafficMirrorFilterId=f, SessionNumber=1)
        sid = s["TrafficMirrorSession"]["TrafficMirrorSessionId"]
        fg.wait_output(lambda out: line in out, "the idle-session line after the change")
        assert [x["TrafficMirrorSessionId"] for x in c.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]] == [sid]
    finally:
        assert fg.stop() == 0, fg.text()
    # Restored at start: said again before any change.
    again = Flowgate(text, tmp_path)
    try:
        again.wait_ready(url)
        again.wait_output(lambda out: line in out, "the idle-session line at start")
    finally:
        assert again.stop() == 0, again.text()
