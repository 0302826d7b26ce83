#!/usr/bin/env python3
"""Soak: flowgate under steady traffic and a stream of API work, then checks.

Not part of `make test` (it runs for minutes). Run it with the repo's venv:

    .venv/bin/python tests/soak/soak.py [--minutes 10] [--flows 200000] [--report FILE]

It starts the real binary (track mode, one worker on CPU 1) replaying a
capture of --flows distinct flows forever into net_null, and meanwhile a
client loop, bounded in rate, on loopback only:
  - Network Firewall: StartFlowCapture / StartFlowFlush on random subsets,
    DescribeFlowOperation until final, ListFlowOperationResults (boto3);
  - F5 matching_flows queries (APIToken);
  - EC2 traffic-mirroring changes (boto3 ec2: create and delete sessions),
    skipped with a message while the appliance has no EC2 face.
At the end it checks: the process is alive; its RSS grew less than
--rss-growth-mib over the run (after a warm-up); every operation reached a
final status; every mirror object created and not deleted is still
described; and after SIGTERM the appliance reports every mbuf back in its
pool and exits 0. It prints the report and writes it as markdown.
"""

import argparse
import datetime
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release")
KEY, SECRET, TOKEN = "soak", "soak-secret", "soak-token"
ARN = "arn:aws:network-firewall:us-east-1:123456789012:firewall/flowgate"


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def config(pcap, frames, port, flows):
    return f"""
[eal]
file_prefix = "flowgate-soak"
log_level = "warning"
[dataplane]
main_cpu = 0
worker_cpus = [1]
mode = "track"
pairs = [["inside", "outside"]]
mbufs = {frames + 32768}
stats_period = 0
[[ports]]
name = "inside"
device = "net_pcap0,rx_pcap={pcap},infinite_rx=1"
interface_id = "eni-0inside0000000001"
[[ports]]
name = "outside"
device = "net_null0,no-rx=1"
interface_id = "eni-0outside000000001"
[flows]
capacity = {max(1 << 16, 2 * flows)}
[api]
listen = "127.0.0.1:{port}"
[operations]
firewall_arn = "{ARN}"
[auth]
[[auth.keys]]
id = "{KEY}"
secret = "{SECRET}"
[[auth.f5_tokens]]
token = "{TOKEN}"
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--flows", type=int, default=200000)
    ap.add_argument("--port", type=int, default=18181)
    ap.add_argument("--rss-growth-mib", type=float, default=64.0)
    ap.add_argument("--rate", type=float, default=5.0, help="API requests per second, at most")
    ap.add_argument("--report", default=None, help="write the markdown report here")
    a = ap.parse_args()

    import boto3
    from botocore.exceptions import ClientError, EndpointConnectionError

    work = tempfile.mkdtemp(prefix="flowgate-soak.")
    pcap = os.path.join(work, "flows.pcap")
    subprocess.run([os.path.join(BIN, "flowgate-pcapgen"), "flows", "--count", str(a.flows), "--out", pcap],
                   check=True, stdout=subprocess.DEVNULL)
    cfg = os.path.join(work, "soak.toml")
    open(cfg, "w").write(config(pcap, a.flows, a.port, a.flows))
    out = open(os.path.join(work, "flowgate.log"), "w")
    p = subprocess.Popen([os.path.join(BIN, "flowgate"), "run", "--config", cfg], stdout=out,
                         stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{a.port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2).read()
            break
        except (urllib.error.URLError, ConnectionError):
            if time.time() > deadline or p.poll() is not None:
                sys.exit(f"soak: flowgate did not come up; see {work}/flowgate.log")
            time.sleep(0.5)

    kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY, aws_secret_access_key=SECRET)
    nfw = boto3.client("network-firewall", **kw)
    ec2 = boto3.client("ec2", **kw)
    f5 = url + "/api/operate/namespaces/system/sites/flowgate/ver/matching_flows"

    counts = {"capture": 0, "flush": 0, "throttled": 0, "matching_flows": 0, "mirror_changes": 0}
    ops = {}
    mirror = {"state": "unknown", "sessions": set(), "target": None, "filter": None}
    errors = []

    def mirror_step():
        if mirror["state"] == "absent":
            return
        try:
            if mirror["target"] is None:
                mirror["target"] = ec2.create_traffic_mirror_target(
                    NetworkInterfaceId="eni-0outside000000001")["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
                mirror["filter"] = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
                mirror["state"] = "present"
            if mirror["sessions"] and random.random() < 0.5:
                s = random.choice(sorted(mirror["sessions"]))
                ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=s)
                mirror["sessions"].discard(s)
            elif len(mirror["sessions"]) < 8:
                n = random.randrange(1, 32767)
                s = ec2.create_traffic_mirror_session(
                    NetworkInterfaceId="eni-0inside0000000001", TrafficMirrorTargetId=mirror["target"],
                    TrafficMirrorFilterId=mirror["filter"], SessionNumber=n)
                mirror["sessions"].add(s["TrafficMirrorSession"]["TrafficMirrorSessionId"])
            counts["mirror_changes"] += 1
        except ClientError as e:
            code = e.response["Error"]["Code"]
            if code in ("InvalidAction", "UnknownOperationException", "UnsupportedOperation") or \
                    e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                mirror["state"] = "absent"
                print(f"soak: the EC2 mirroring face is not present ({code}); skipping mirror changes")
            elif code not in ("InvalidParameterValue", "TrafficMirrorSessionLimitExceeded"):
                errors.append(f"ec2: {code}: {e}")

    start = time.time()
    end = start + a.minutes * 60
    rss0 = None
    rss_samples = []
    i = 0
    while time.time() < end:
        i += 1
        if p.poll() is not None:
            errors.append("flowgate exited during the soak")
            break
        if rss0 is None and time.time() - start > min(60, a.minutes * 6):
            rss0 = rss_kib(p.pid)  # after warm-up: every flow created, pools warm
        if i % 10 == 0:
            rss_samples.append((round(time.time() - start), rss_kib(p.pid)))
        r = random.random()
        try:
            if r < 0.3:
                kind = random.choice(["capture", "flush"])
                net = f"10.{random.randrange(256)}.0.0/16"
                call = nfw.start_flow_capture if kind == "capture" else nfw.start_flow_flush
                try:
                    op = call(FirewallArn=ARN, FlowFilters=[{"SourceAddress": {"AddressDefinition": net}}])
                    ops[op["FlowOperationId"]] = kind
                    counts[kind] += 1
                except ClientError as e:
                    if e.response["Error"]["Code"] == "ThrottlingException":
                        counts["throttled"] += 1
                    else:
                        raise
            elif r < 0.6:
                req = urllib.request.Request(f5, data=json.dumps({"proto": 17, "dest_port": random.randrange(1, 65536)}).encode(),
                                             method="POST", headers={"Authorization": f"APIToken {TOKEN}",
                                                                     "Content-Type": "application/json"})
                urllib.request.urlopen(req, timeout=30).read()
                counts["matching_flows"] += 1
            elif r < 0.8:
                mirror_step()
            elif ops:
                # Only operations the store still keeps ([operations]
                # retention_count, default 100): older ones are forgotten by
                # design and answer ResourceNotFoundException.
                op = random.choice(list(ops)[-50:])
                nfw.list_flow_operation_results(FirewallArn=ARN, FlowOperationId=op, MaxResults=100)
        except (ClientError, urllib.error.URLError, EndpointConnectionError) as e:
            errors.append(f"request failed: {e}")
        time.sleep(1.0 / a.rate)

    # Checks.
    alive = p.poll() is None
    rss1 = rss_kib(p.pid) if alive else 0
    finals = {}
    pending = []
    t_wait = time.time() + 60
    for op, kind in ops.items():
        while True:
            try:
                d = nfw.describe_flow_operation(FirewallArn=ARN, FlowOperationId=op)
                st = d["FlowOperationStatus"]
            except ClientError as e:
                st = "FORGOTTEN" if e.response["Error"]["Code"] == "ResourceNotFoundException" else "ERROR"
            if st != "IN_PROGRESS" or time.time() > t_wait:
                break
            time.sleep(0.2)
        finals[st] = finals.get(st, 0) + 1
        if st in ("IN_PROGRESS", "ERROR"):
            pending.append(op)
    mirror_ok = True
    if mirror["state"] == "present":
        described = {s["TrafficMirrorSessionId"] for s in ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]}
        mirror_ok = mirror["sessions"] <= described
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = "killed after 60 s"
    out.close()
    log = open(os.path.join(work, "flowgate.log")).read()
    no_leak = "mbufs in use after close: 0 (no leak)" in log
    growth = (rss1 - rss0) / 1024 if rss0 else 0.0

    checks = [
        ("process alive at the end", alive),
        (f"RSS growth after warm-up < {a.rss_growth_mib} MiB ({growth:.1f} MiB: {rss0} -> {rss1} KiB)",
         alive and growth < a.rss_growth_mib),
        (f"every operation final ({len(ops)} started: {finals})", not pending),
        ("every mirror session still described" if mirror["state"] == "present"
         else "mirror objects: skipped (no EC2 face)", mirror_ok),
        ("mempool back to its start level after stop (mbufs in use after close: 0)", no_leak),
        (f"clean exit (status {rc})", rc == 0),
        (f"no failed requests ({len(errors)})", not errors),
    ]
    ok = all(c for _, c in checks)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"### Soak ({when}): {'PASS' if ok else 'FAIL'}", "",
             f"`.venv/bin/python tests/soak/soak.py --minutes {a.minutes:g} --flows {a.flows}` — "
             f"{a.minutes:g} min, {a.flows:,} flows replayed forever, API at most {a.rate:g} req/s.", "",
             "| check | result |", "|---|---|"]
    lines += [f"| {name} | {'ok' if c else 'FAILED'} |" for name, c in checks]
    lines += ["", f"Requests: {counts}.", ""]
    if errors:
        lines += ["Errors (first 10):", ""] + [f"- {e}" for e in errors[:10]] + [""]
    lines += ["RSS over time (s: KiB): " + ", ".join(f"{t}: {k}" for t, k in rss_samples[:: max(1, len(rss_samples) // 12)]), ""]
    text = "\n".join(lines)
    print(text)
    if a.report:
        open(a.report, "w").write(text + "\n")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
