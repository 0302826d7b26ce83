"""Authentication on the real binary: SigV4 on the Network Firewall face
with boto3 and the aws CLI, the API token on the F5 face with curl, the
warnings when auth is off or the API is exposed, and the credentials
generated at first start."""

import datetime
import json
import os
import stat
import subprocess
from unittest import mock

import boto3
import botocore.config
import pytest

from conftest import API_TOKEN, Flowgate, config, free_port

ARN = "arn:aws:network-firewall:us-east-1:123456789012:firewall/flowgate"
F5 = "/api/operate/namespaces/system/sites/flowgate/ver/matching_flows"


def nfw(url, key="test", secret="test"):
    return boto3.client(
        "network-firewall", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"total_max_attempts": 1}),
    )


def error_of(call):
    with pytest.raises(Exception) as e:
        call()
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def test_boto3_right_keys_work_and_wrong_ones_get_the_real_errors(start_flowgate):
    _, url = start_flowgate()
    assert nfw(url).list_flow_operations(FirewallArn=ARN)["FlowOperations"] == []
    code, status, _ = error_of(lambda: nfw(url, key="AKIDNOBODYKNOWS").list_flow_operations(FirewallArn=ARN))
    assert (code, status) == ("UnrecognizedClientException", 403)
    code, status, msg = error_of(lambda: nfw(url, secret="wrong").list_flow_operations(FirewallArn=ARN))
    assert (code, status) == ("InvalidSignatureException", 403)
    assert "does not match the signature you provided" in msg
    # Signed ten minutes ago: outside the five-minute window.
    past = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=10)
    with mock.patch("botocore.auth.get_current_datetime", return_value=past):
        code, status, msg = error_of(lambda: nfw(url).list_flow_operations(FirewallArn=ARN))
    assert (code, status) == ("InvalidSignatureException", 403)
    assert msg.startswith("Signature expired:")
    # No signature at all.
    unsigned = boto3.client(
        "network-firewall", endpoint_url=url, region_name="us-east-1",
        config=botocore.config.Config(signature_version=botocore.UNSIGNED, retries={"total_max_attempts": 1}),
    )
    code, status, _ = error_of(lambda: unsigned.list_flow_operations(FirewallArn=ARN))
    assert (code, status) == ("MissingAuthenticationTokenException", 403)
    # Each refused request is counted, by status.
    metrics = subprocess.run(["curl", "-s", url + "/metrics"], capture_output=True, text=True, check=True).stdout
    assert 'operation="ListFlowOperations",status="403"' in metrics


def aws(url, *args, key="test", secret="test", extra_env=None):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1")
    for k in ("AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE"):
        env.pop(k, None)
    if extra_env:
        env.update(extra_env)
        if "AWS_PROFILE" in extra_env:
            env.pop("AWS_ACCESS_KEY_ID")
            env.pop("AWS_SECRET_ACCESS_KEY")
    return subprocess.run(["aws", "--endpoint-url", url, "network-firewall", *args],
                          capture_output=True, text=True, timeout=120, env=env)


def test_aws_cli_right_and_wrong_keys(start_flowgate):
    _, url = start_flowgate()
    ok = aws(url, "list-flow-operations", "--firewall-arn", ARN)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["FlowOperations"] == []
    bad = aws(url, "list-flow-operations", "--firewall-arn", ARN, secret="nope")
    assert bad.returncode != 0 and "InvalidSignatureException" in bad.stderr, bad.stderr
    unknown = aws(url, "list-flow-operations", "--firewall-arn", ARN, key="AKIDUNKNOWN")
    assert unknown.returncode != 0 and "UnrecognizedClientException" in unknown.stderr, unknown.stderr


def curl_f5(url, token, scheme="APIToken"):
    """(HTTP status, JSON body, WWW-Authenticate or None) of a query with
    this token (None: no Authorization header)."""
    cmd = ["curl", "-s", "-D", "-", "-X", "POST", url + F5,
           "-H", "Content-Type: application/json", "--data-binary", "{}"]
    if token is not None:
        cmd += ["-H", f"Authorization: {scheme} {token}"]
    # text=True turns each CRLF into a newline.
    head, _, body = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.partition("\n\n")
    lines = head.split("\n")
    status = int(lines[0].split()[1])
    challenge = next((l.split(":", 1)[1].strip() for l in lines[1:] if l.lower().startswith("www-authenticate:")), None)
    return status, json.loads(body), challenge


def test_f5_token_401_without_or_wrong_200_right(start_flowgate):
    _, url = start_flowgate()
    # As F5 XC: a missing, empty or wrong (expired) token is 401 with gRPC
    # status UNAUTHENTICATED (16) and a message, and a challenge naming the
    # scheme. (403 is a valid token without the permission; flowgate's
    # tokens carry every permission.)
    for token, scheme in ((None, None), ("", "APIToken"), ("not-the-token", "APIToken"),
                          (API_TOKEN, "Bearer")):
        status, err, challenge = curl_f5(url, token, scheme)
        assert (status, err["code"], err["details"], challenge) == (401, 16, [], "APIToken"), (token, scheme)
        assert err["message"] == ("the API token is not valid" if token == "not-the-token"
                                  else "no API token: send Authorization: APIToken <token>")
    # The scheme in any case (RFC 9110).
    for scheme in ("APIToken", "apitoken", "APITOKEN"):
        status, data, challenge = curl_f5(url, API_TOKEN, scheme)
        assert (status, challenge) == (200, None) and "flow" in data, scheme


def test_auth_off_only_when_asked_and_then_flowgate_warns(tmpdir_path):
    port = free_port()
    text = config(port, [("inside", "net_null0", None), ("outside", "net_null1", None)], pairs='[["inside", "outside"]]')
    text = text.replace("[auth]\n", "[auth]\nenabled = false\n")
    fg = Flowgate(text, tmpdir_path)
    url = f"http://127.0.0.1:{port}"
    fg.wait_ready(url)
    assert "API authentication is OFF" in fg.text()
    # Unsigned requests are served, and answered as from nobody in particular.
    assert curl_f5(url, None)[0] == 200
    assert fg.stop() == 0


def test_an_api_off_loopback_is_warned_about(netns, tmpdir_path):
    ns = netns.ns("mgmt")
    # A management link of the test's own, inside its namespace.
    netns.run(ns, "ip", "link", "add", "mgmt0", "type", "veth", "peer", "name", "mgmt1")
    netns.run(ns, "ip", "addr", "add", "192.0.2.10/24", "dev", "mgmt0")
    netns.run(ns, "ip", "link", "set", "mgmt0", "up")
    netns.run(ns, "ip", "link", "set", "mgmt1", "up")
    text = config(free_port(), [("inside", "net_null0", None), ("outside", "net_null1", None)], pairs='[["inside", "outside"]]')
    text = text.replace('listen = "127.0.0.1:', 'listen = "192.0.2.10:')
    fg = Flowgate(text, tmpdir_path, netns=ns)
    fg.wait_output(lambda t: "API on http" in t, "start")
    assert "not on loopback" in fg.text()
    assert fg.stop() == 0


def test_credentials_generated_once_at_first_start_0600_and_usable(tmpdir_path):
    creds = tmpdir_path / "state" / "credentials"
    port = free_port()
    text = config(port, [("inside", "net_null0", None), ("outside", "net_null1", None)], pairs='[["inside", "outside"]]')
    # Auth on, no key configured: flowgate makes one.
    block = '[auth]\n[[auth.keys]]\nid = "test"\nsecret = "test"\n[[auth.f5_tokens]]\ntoken = "test-token"\n'
    assert block in text
    text = text.replace(block, f'[auth]\ncredentials_file = "{creds}"\n')
    url = f"http://127.0.0.1:{port}"
    fg = Flowgate(text, tmpdir_path)
    fg.wait_ready(url)
    out = fg.text()
    assert "generated API credentials" in out and "shown only now" in out
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    body = creds.read_text()
    assert "[flowgate]" in body and "aws_access_key_id = AKFG" in body
    token = body.split("flowgate_api_token = ")[1].split()[0]
    # The aws CLI uses the file as it is, through its profile.
    r = aws(url, "list-flow-operations", "--firewall-arn", ARN,
            extra_env={"AWS_SHARED_CREDENTIALS_FILE": str(creds), "AWS_PROFILE": "flowgate"})
    assert r.returncode == 0, r.stderr
    assert curl_f5(url, token)[0] == 200
    assert fg.stop() == 0
    secret = body.split("aws_secret_access_key = ")[1].split()[0]
    assert secret not in fg.text()[len(out) :], "the secret is printed once, at generation"
    # A second start reuses the file and prints no secret.
    fg2 = Flowgate(text, tmpdir_path)
    fg2.wait_ready(url)
    assert "generated API credentials" not in fg2.text() and secret not in fg2.text()
    assert fg2.stop() == 0
