"""`flowgate flows`, `flowgate stats` and `flowgate ops`, the client
subcommands, against a running appliance. `ops` is also pointed at a small
recording server, to see the exact requests it sends while it follows
NextToken across pages."""

import http.server
import json
import os
import pathlib
import subprocess
import tempfile
import threading

import pytest

from conftest import ACCESS_KEY, API_TOKEN, BINARY, SAMPLE, SECRET_KEY, Flowgate, config, free_port
from test_f5 import F5, LONG_TIMEOUTS, PORTS_ONCE, SITE, wait_rx
from tshark_flows import expected_records, record_tuple


def cli(*args, check=True, creds=True):
    # The test appliances' credentials, as an operator would export them.
    env = dict(os.environ)
    if creds:
        env.update(FLOWGATE_API_TOKEN=API_TOKEN, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    r = subprocess.run([str(BINARY), *args], capture_output=True, text=True, timeout=60, env=env)
    if check:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def appliance():
    with tempfile.TemporaryDirectory(prefix="flowgate-cli-") as d:
        api = free_port()
        text = config(api, PORTS_ONCE, LONG_TIMEOUTS + F5.format(deadline=1000))
        fg = Flowgate(text, pathlib.Path(d))
        url = f"http://127.0.0.1:{api}"
        fg.wait_ready(url)
        wait_rx(fg, url, 91, "the sample")
        yield fg, url
        assert fg.stop() == 0, fg.text()


def table(out):
    """Header words and rows (lists of cells) of an aligned table; the
    trailing count line is dropped."""
    lines = [l for l in out.splitlines() if l and not l.endswith(("record(s)", "operation(s)"))]
    return lines[0].split(), [l.split() for l in lines[1:]]


def test_flows_json_is_the_api_answer_and_the_table_shows_each_record(appliance):
    fg, url = appliance
    data = json.loads(cli("flows", "--api", url, "--site", SITE, "--json").stdout)
    assert {record_tuple(r) for r in data["flow"]} == set(expected_records(SAMPLE))
    out = cli("flows", "--config", str(fg.config_path)).stdout
    header, rows = table(out)
    assert header[:8] == ["INDEX", "REVERSE", "DIR", "PROTO", "SOURCE", "SPORT", "DESTINATION", "DPORT"]
    assert len(rows) == len(data["flow"]) == 34
    assert out.rstrip().endswith("34 record(s)")
    # Rows follow the API's order, and columns line up under the header.
    assert [int(r[0]) for r in rows] == [r["flow_index"] for r in data["flow"]]
    col = out.splitlines()[0].index("SOURCE")
    assert all(l[col - 2:col] == "  " for l in out.splitlines()[1:-1])
    first = data["flow"][0]
    assert rows[0][3:8] == ["tcp", first["forward_flow"]["src"], str(first["forward_flow"]["src_port"]),
                            first["forward_flow"]["dest"], str(first["forward_flow"]["dest_port"])]


@pytest.mark.parametrize("args,want", [
    (["--port", "80"], lambda t: 80 in (t[3], t[5])),
    (["--port", "53", "--proto", "udp"], lambda t: 53 in (t[3], t[5]) and t[1] == 17),
    (["--src", "10.0.0.0/24", "--proto", "tcp"], lambda t: t[2].startswith("10.0.0.") and t[1] == 6),
    (["--dst", "fd00::/16"], lambda t: t[4].startswith("fd00:")),
    (["--seconds", "0", "--proto", "58"], lambda t: t[1] == 58),
])
def test_flows_filters(appliance, args, want):
    _, url = appliance
    data = json.loads(cli("flows", "--api", url, "--site", SITE, "--json", *args).stdout)
    assert {record_tuple(r) for r in data["flow"]} == {t for t in expected_records(SAMPLE) if want(t)}


def test_flows_port_keeps_both_records_of_each_flow_together(appliance):
    _, url = appliance
    got = json.loads(cli("flows", "--api", url, "--site", SITE, "--json", "--port", "80").stdout)["flow"]
    idx = [r["flow_index"] for r in got]
    assert all(idx[i] + 1 == idx[i + 1] for i in range(0, len(idx), 2)), idx


def test_flows_errors_are_one_line(appliance):
    _, url = appliance
    r = cli("flows", "--api", url, "--site", "elsewhere", check=False)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "site \"elsewhere\" not found" in r.stderr and "HTTP 404" in r.stderr
    r = cli("flows", "--api", url, "--site", SITE, "--proto", "bogus", check=False)
    assert r.returncode == 1 and r.stderr.startswith("flowgate: --proto")
    r = cli("flows", "--api", f"http://127.0.0.1:{free_port()}", check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot reach the flowgate API" in r.stderr
    r = cli("stats", "--config", "/nonexistent.toml", check=False)
    assert r.returncode == 1 and "/nonexistent.toml" in r.stderr


def test_stats_table_and_json(appliance):
    fg, url = appliance
    out = cli("stats", "--config", str(fg.config_path)).stdout
    ports, workers = out.split("\n\n")
    header, rows = table(ports)
    assert header == ["PORT", "LINK", "RX-PACKETS", "RX-BYTES", "RX-DROPPED", "RX-ERRORS",
                      "TX-PACKETS", "TX-BYTES", "TX-DROPPED"]
    inside = next(r for r in rows if r[0] == "inside")
    assert inside[1] == "up" and inside[2] == "91"
    header, rows = table(workers)
    assert header[:3] == ["WORKER", "BUSY", "RX-PACKETS"]
    assert rows[0][0] == "0" and rows[0][2] == "91"
    assert rows[0][header.index("CREATED")] == "17"
    data = json.loads(cli("stats", "--api", url, "--json").stdout)
    assert data["ports"]["inside"]["rx_packets"] == 91
    assert data["workers"]["0"]["flows_created"] == 17
    assert data["workers"]["0"]["malformed_packets:runt"] == 0


class FakeNetworkFirewall(http.server.BaseHTTPRequestHandler):
    """ListFlowOperations as the Network Firewall face answers it, in two pages."""

    seen = []
    PAGES = {
        None: {"FlowOperations": [{"FlowOperationId": "11111111-2222-4333-8444-555555555555",
                                    "FlowOperationType": "FLOW_CAPTURE",
                                    "FlowRequestTimestamp": 1700000000,
                                    "FlowOperationStatus": "COMPLETED"}],
               "NextToken": "page2"},
        "page2": {"FlowOperations": [{"FlowOperationId": "66666666-7777-4888-8999-000000000000",
                                       "FlowOperationType": "FLOW_FLUSH",
                                       "FlowRequestTimestamp": 1700000060.5,
                                       "FlowOperationStatus": "IN_PROGRESS"}]},
    }

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        if body.get("FirewallArn") != "arn:aws:network-firewall:us-east-1:111122223333:firewall/lab":
            code, answer = 400, {"__type": "ResourceNotFoundException", "message": "no such firewall"}
        else:
            code, answer = 200, self.PAGES[body.get("NextToken")]
        data = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


@pytest.fixture
def fake_nfw():
    server = http.server.HTTPServer(("127.0.0.1", 0), FakeNetworkFirewall)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FakeNetworkFirewall.seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


ARN = "arn:aws:network-firewall:us-east-1:111122223333:firewall/lab"
# The appliance's own (config/default.toml's, which the tests' config keeps).
APPLIANCE_ARN = "arn:aws:network-firewall:us-east-1:123456789012:firewall/flowgate"


def test_ops_lists_every_page(fake_nfw, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[api]\nlisten = "{fake_nfw[len("http://"):]}"\n[operations]\nfirewall_arn = "{ARN}"\n')
    out = cli("ops", "--config", str(cfg)).stdout
    header, rows = table(out)
    assert header == ["OPERATION", "TYPE", "STATUS", "REQUESTED"]
    assert rows == [
        ["11111111-2222-4333-8444-555555555555", "FLOW_CAPTURE", "COMPLETED", "2023-11-14T22:13:20Z"],
        ["66666666-7777-4888-8999-000000000000", "FLOW_FLUSH", "IN_PROGRESS", "2023-11-14T22:14:20Z"],
    ]
    path, headers, body = FakeNetworkFirewall.seen[0]
    assert path == "/"
    assert headers["x-amz-target"] == "NetworkFirewall_20201112.ListFlowOperations"
    assert headers["content-type"] == "application/x-amz-json-1.0"
    assert body == {"FirewallArn": ARN}
    assert FakeNetworkFirewall.seen[1][2] == {"FirewallArn": ARN, "NextToken": "page2"}
    data = json.loads(cli("ops", "--api", fake_nfw, "--firewall-arn", ARN, "--json").stdout)
    assert [o["FlowOperationType"] for o in data["FlowOperations"]] == ["FLOW_CAPTURE", "FLOW_FLUSH"]


def test_ops_errors_are_one_line(fake_nfw, appliance, tmp_path):
    r = cli("ops", "--api", fake_nfw, "--firewall-arn", "arn:aws:x", check=False)
    assert r.returncode == 1
    assert r.stderr == f"flowgate: ListFlowOperations: ResourceNotFoundException: no such firewall (HTTP 400 from {fake_nfw})\n"
    # No ARN on the command line nor in the config ([operations]
    # firewall_arn; config/default.toml has one).
    bare = tmp_path / "bare.toml"
    bare.write_text("[api]\n")
    r = cli("ops", "--api", fake_nfw, "--config", str(bare), check=False)
    assert r.returncode == 1 and "--firewall-arn" in r.stderr
    # The real appliance: another firewall's ARN gets the service's error
    # as one line; its own, the table.
    _, url = appliance
    r = cli("ops", "--api", url, "--firewall-arn", ARN, check=False)
    assert r.returncode == 1
    assert r.stderr == f"flowgate: ListFlowOperations: ResourceNotFoundException: Firewall not found (HTTP 400 from {url})\n"
    r = cli("ops", "--api", url, "--firewall-arn", APPLIANCE_ARN)
    assert r.stdout.splitlines()[0].split() == ["OPERATION", "TYPE", "STATUS", "REQUESTED"]
