"""GET /metrics, parsed by the Prometheus project's own Python parsers, and
GET /readyz, against the real binary replaying the sample forever."""

import json
import urllib.error
import urllib.request

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from conftest import API_TOKEN


COUNTERS = [
    "flowgate_port_rx_packets", "flowgate_port_tx_packets", "flowgate_port_rx_bytes",
    "flowgate_port_tx_bytes", "flowgate_port_rx_dropped", "flowgate_port_tx_dropped",
    "flowgate_port_rx_errors",
    "flowgate_worker_rx_packets", "flowgate_worker_rx_bytes", "flowgate_worker_tx_packets",
    "flowgate_worker_tx_dropped", "flowgate_worker_loops", "flowgate_worker_busy_loops",
    "flowgate_worker_flows_created", "flowgate_worker_flows_expired", "flowgate_worker_flows_evicted",
    "flowgate_worker_flows_flushed", "flowgate_worker_job_busy_ticks", "flowgate_worker_busy_ticks",
    "flowgate_worker_job_idle_ticks",
    "flowgate_worker_table_full_drops",
    "flowgate_worker_midstream_packets", "flowgate_worker_malformed_packets",
    "flowgate_worker_malformed_dropped", "flowgate_worker_not_ip_packets",
    "flowgate_worker_fragments_untracked", "flowgate_worker_fragments_untracked_dropped", "flowgate_worker_tcp_out_of_window_packets", "flowgate_worker_icmp_related_packets", "flowgate_worker_fragment_map_overwrites",
    "flowgate_worker_policy_verdicts", "flowgate_worker_verdict_dropped_packets",
    "flowgate_worker_rejects_sent", "flowgate_worker_rejects_failed", "flowgate_worker_rejects_limited", "flowgate_api_requests",
]
GAUGES = ["flowgate_port_up", "flowgate_worker_up", "flowgate_worker_busy_ratio",
          "flowgate_worker_flows_active", "flowgate_mirror_generation", "flowgate_mirror_installed_generation"]


def get(url, accept=None):
    req = urllib.request.Request(url)
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def scrape(url):
    status, ctype, text = get(url + "/metrics")
    assert status == 200
    assert ctype.startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(families, name, **labels):
    fam = families[name]
    want = name + "_total" if fam.type == "counter" else name
    return sum(s.value for s in fam.samples
               if s.name == want and all(s.labels.get(k) == v for k, v in labels.items()))


def test_families_types_help_and_labels(start_flowgate):
    _, url = start_flowgate()
    # One request of the F5 face, so that the request family has a sample.
    req = urllib.request.Request(
        url + "/api/operate/namespaces/system/sites/flowgate/ver/matching_flows",
        data=b"{}", method="POST", headers={"Authorization": f"APIToken {API_TOKEN}"})
    urllib.request.urlopen(req, timeout=30).read()
    fams = scrape(url)
    for name in COUNTERS:
        assert fams[name].type == "counter", name
    for name in GAUGES:
        assert fams[name].type == "gauge", name
    for name, f in fams.items():
        assert name.startswith("flowgate_")
        assert f.documentation and f.documentation.endswith("."), name
    assert {s.labels["port"] for s in fams["flowgate_port_rx_packets"].samples} == {"inside", "outside"}
    assert {s.labels["verdict"] for s in fams["flowgate_worker_policy_verdicts"].samples} == {"pass", "drop", "reject"}
    reasons = {s.labels["reason"] for s in fams["flowgate_worker_malformed_packets"].samples}
    assert {"runt", "truncated_vlan", "truncated_ipv4"} <= reasons
    assert value(fams, "flowgate_port_up", port="inside") == 1
    assert value(fams, "flowgate_worker_up", worker="0") == 1
    assert 0 <= value(fams, "flowgate_worker_busy_ratio", worker="0") <= 1
    assert value(fams, "flowgate_api_requests", face="f5", operation="matching_flows", status="200") == 1
    # No mirror change since the workers started with the store.
    assert value(fams, "flowgate_mirror_installed_generation") == value(fams, "flowgate_mirror_generation") >= 1
    # The query ran on a worker that never idles (the sample is replayed
    # forever), so it took time from forwarding iterations. (How much is
    # bounded is tested on a longer operation: test_busy_share.py.)
    job = value(fams, "flowgate_worker_job_busy_ticks", worker="0")
    busy = value(fams, "flowgate_worker_busy_ticks", worker="0")
    assert 0 < job < busy, (job, busy)


def test_counters_move_as_the_capture_replays(start_flowgate):
    fg, url = start_flowgate()
    first = scrape(url)
    watched = [
        ("flowgate_port_rx_packets", {"port": "inside"}),
        ("flowgate_port_rx_bytes", {"port": "inside"}),
        ("flowgate_port_tx_packets", {"port": "outside"}),
        ("flowgate_worker_rx_packets", {"worker": "0"}),
        ("flowgate_worker_tx_packets", {"worker": "0"}),
        ("flowgate_worker_loops", {"worker": "0"}),
        ("flowgate_worker_not_ip_packets", {"worker": "0"}),
    ]

    def moved(_):
        now = scrape(url)
        return all(value(now, n, **l) > value(first, n, **l) for n, l in watched)

    fg.wait_output(moved, "every watched counter to grow")
    later = scrape(url)
    assert value(later, "flowgate_worker_flows_created", worker="0") >= 17
    assert value(later, "flowgate_worker_flows_active", worker="0") >= 17
    assert value(later, "flowgate_worker_policy_verdicts", verdict="pass") >= 17
    # Requests are counted by face, operation and status, this scrape's
    # predecessors included.
    assert value(later, "flowgate_api_requests", face="http", operation="/metrics", status="200") >= 2


def test_bad_requests_are_counted_by_status(start_flowgate):
    _, url = start_flowgate()
    req = urllib.request.Request(
        url + "/api/operate/namespaces/system/sites/flowgate/ver/matching_flows",
        data=b"{not json", method="POST", headers={"Authorization": f"APIToken {API_TOKEN}"})
    try:
        urllib.request.urlopen(req, timeout=30)
        raise AssertionError("expected 400")
    except urllib.error.HTTPError as e:
        assert e.code == 400
        assert json.loads(e.read())["code"] == 3
    try:
        urllib.request.urlopen(url + "/nope", timeout=30)
    except urllib.error.HTTPError as e:
        assert e.code == 404
    fams = scrape(url)
    assert value(fams, "flowgate_api_requests", face="f5", operation="matching_flows", status="400") == 1
    assert value(fams, "flowgate_api_requests", face="http", operation="other", status="404") == 1


def test_openmetrics_when_asked(start_flowgate):
    _, url = start_flowgate()
    status, ctype, text = get(url + "/metrics", accept="application/openmetrics-text; version=1.0.0")
    assert status == 200 and ctype.startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n")
    fams = {f.name: f for f in openmetrics_families(text)}
    assert fams["flowgate_port_rx_packets"].type == "counter"
    assert fams["flowgate_worker_busy_ratio"].type == "gauge"


def test_readyz_and_healthz(start_flowgate):
    _, url = start_flowgate()
    status, _, text = get(url + "/readyz")
    assert status == 200 and text.startswith("ready: 2 port(s) up, 1 worker(s) answering")
    status, _, text = get(url + "/healthz")
    assert status == 200 and text == "ok\n"
