#!/usr/bin/env python3
"""flowgate's benchmark runner: flowgate side by side with dpdk-testpmd.

Every comparison is taken in one invocation, on the same DPDK virtual
devices (net_pcap replaying a capture forever -> net_null sink), the same
forwarding lcore (1; everything else on 0) and the same captures. Rates are
read from outside each process through DPDK telemetry
(/var/run/dpdk/<prefix>/dpdk_telemetry.v2, `/ethdev/stats,<port>`), so the
same reader serves testpmd and flowgate. Figures are saturated-core rates
(the source never runs dry), not RFC 2544 zero-loss rates.

Scenarios:
  forward  flowgate mode="forward" vs testpmd io                (issue 2)
  flows    flow-count sweep: flowgate track vs testpmd io, macswap, 5tswap,
           csum; cycles/packet and bytes/flow                   (issue 3)
  ops      forwarding rate every 100 ms while a flush and a capture run over
           a 1M-flow table; time to complete each                (issue 4)
  api      matching_flows latency (p50/p99 of 100) on a 1M-flow table while
           forwarding, and the forwarding dip                     (issue 6)
  mirror   no sessions / a session mirroring nothing / ~10 % / 100 % (whole
           frames and PacketLength 64), set through the EC2 API   (issue 5)

Usage: .venv/bin/python benches/run.py [--quick] [SCENARIO ...]
Writes benches/RESULTS.md (and benches/results.json with the raw samples).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
WORK = "/tmp/flowgate-bench"
TESTPMD = "dpdk-testpmd"
WORKER_CPU = 1
MAIN_CPU = 0
API = "127.0.0.1:18080"
KEY, SECRET, TOKEN = "bench", "bench-secret", "bench-token"
# Buffer data room (128 bytes of headroom included) for both systems: ample
# for 64-byte frames, and small enough that 4M preloaded frames fit in memory.
MBUF_ROOM = 512
# The interface ids benches/mirror_setup.py refers to.
ENI = {"inside": "eni-0inside0000000001", "outside": "eni-0outside000000001",
       "collector": "eni-0collector00000001"}
ARN = "arn:aws:network-firewall:us-east-1:123456789012:firewall/flowgate"


def log(*a):
    print("bench:", *a, flush=True)


# ---------------------------------------------------------------- captures

def capture(flows):
    """A capture of `flows` distinct IPv4/UDP flows, one 64-byte frame each."""
    os.makedirs(WORK, exist_ok=True)
    path = os.path.join(WORK, f"flows-{flows}.pcap")
    if not os.path.exists(path):
        log(f"generating {path}")
        subprocess.run([os.path.join(BIN, "flowgate-pcapgen"), "flows", "--count", str(flows),
                        "--out", path], check=True, stdout=subprocess.DEVNULL)
    return path


def hugepages_for(frames):
    """Reserves enough 2 MB pages for a pool of `frames` + 64K mbufs, with
    room to spare (one system runs at a time)."""
    need = int((frames + 65536) * (MBUF_ROOM + 192) / (2 << 20) * 1.3) + 512
    path = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
    try:
        have = int(open(path).read())
        if have < need and os.geteuid() == 0:
            with open(path, "w") as f:
                f.write(str(need))
            have = int(open(path).read())
        return have
    except OSError:
        return 0


# ---------------------------------------------------------------- telemetry

class Telemetry:
    """DPDK telemetry client (SOCK_SEQPACKET), for any DPDK process."""

    def __init__(self, prefix, timeout=30.0):
        self.prefix = prefix
        path = f"/var/run/dpdk/{prefix}/dpdk_telemetry.v2"
        deadline = time.time() + timeout
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.connect(path)
                s.recv(16384)
                self.sock = s
                return
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError(f"no DPDK telemetry at {path}")
                time.sleep(0.2)

    def port(self, port):
        self.sock.send(f"/ethdev/stats,{port}".encode())
        return json.loads(self.sock.recv(65536))["/ethdev/stats"]

    def close(self):
        self.sock.close()


def tx_rate(tel, port, seconds):
    a, ta = tel.port(port)["opackets"], time.monotonic()
    time.sleep(seconds)
    b, tb = tel.port(port)["opackets"], time.monotonic()
    return (b - a) / (tb - ta)


def windows(tel, port, warm, n, length):
    time.sleep(warm)
    return [tx_rate(tel, port, length) for _ in range(n)]


def tsc_hz():
    """The TSC rate flowgate itself reports; falls back to the CPU MHz."""
    for line in open("/proc/cpuinfo"):
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) * 1e6
    return 0.0


# ---------------------------------------------------------------- systems

def vdevs(pcap):
    return [f"net_pcap0,rx_pcap={pcap},infinite_rx=1", "net_null0,no-rx=1"]


def start_testpmd(mode, pcap, frames):
    prefix = "fgbench-testpmd"
    args = [TESTPMD, "-l", f"{MAIN_CPU},{WORKER_CPU}", "--file-prefix", prefix, "--no-pci",
            "--log-level", "notice"]
    for v in vdevs(pcap):
        args += ["--vdev", v]
    args += ["--", f"--forward-mode={mode}", f"--total-num-mbufs={frames + 65536}", f"--mbuf-size={MBUF_ROOM}",
             "--burst=32", "--rxd=1024", "--txd=1024"]
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, cwd=WORK)
    return p, prefix


def flowgate_config(pcap, frames, mode, capacity, collector=False, ports=None, pairs=None, busy_share=4):
    """flowgate's config: by default the pcap replayed forever on "inside"
    -> net_null "outside"; `ports` [(name, device)] and `pairs` [(a, b)]
    replace that layout."""
    prefix = "fgbench-flowgate"
    state = os.path.join(WORK, "mirror.json")
    if os.path.exists(state):
        os.unlink(state)
    if ports is None:
        ports = [("inside", vdevs(pcap)[0]), ("outside", vdevs(pcap)[1])]
        pairs = [("inside", "outside")]
    if collector:
        ports = ports + [("collector", "net_null2,no-rx=1")]
    port_tables = "".join(f"""
[[ports]]
name = "{name}"
device = "{dev}"
interface_id = "{ENI.get(name, 'eni-0' + name.replace('_', ''))}"
""" for name, dev in ports)
    pair_list = ", ".join(f'["{a}", "{b}"]' for a, b in pairs)
    cfg = f"""
[eal]
file_prefix = "{prefix}"
hugepages = "auto"
log_level = "warning"
[dataplane]
main_cpu = {MAIN_CPU}
worker_cpus = [{WORKER_CPU}]
mode = "{mode}"
pairs = [{pair_list}]
mbufs = {frames + 65536}
mbuf_data_room = {MBUF_ROOM}
stats_period = 0
{port_tables}
[flows]
capacity = {capacity}
[flows.timeouts]
udp = 3600
[api]
listen = "{API}"
[operations]
firewall_arn = "{ARN}"
result_cap = 2000000
worker_timeout_ms = 30000
busy_share_percent = {busy_share}
[f5]
max_flows = 1024
[auth]
[[auth.keys]]
id = "{KEY}"
secret = "{SECRET}"
[[auth.f5_tokens]]
token = "{TOKEN}"
[mirror]
state_file = "{state}"
"""
    path = os.path.join(WORK, "flowgate.toml")
    with open(path, "w") as f:
        f.write(cfg)
    return path, prefix


def start_flowgate(pcap, frames, mode, capacity, collector=False, ports=None, pairs=None, busy_share=4):
    path, prefix = flowgate_config(pcap, frames, mode, capacity, collector, ports, pairs, busy_share)
    out = open(os.path.join(WORK, "flowgate.log"), "w")
    p = subprocess.Popen([os.path.join(BIN, "flowgate"), "run", "--config", path],
                         stdout=out, stderr=subprocess.STDOUT, cwd=WORK)
    return p, prefix


# ------------------------------------------------------------ Open vSwitch

OVS_DIR = os.path.join(WORK, "ovs")
OVS_PREFIX = "fgbench-ovs"
# Frames OVS 3.1 can preload on one pcap port: it caps a shared mempool
# at 262,144 mbufs (see ../shared/bench-notes.md).
OVS_MAX_FRAMES = 200_000


class Ovs:
    """A private Open vSwitch instance with DPDK (Debian's
    openvswitch-switch-dpdk): its own database, sockets and logs under
    OVS_DIR; PMD on the forwarding lcore, every other thread on CPU 0; one
    userspace (netdev) bridge between the same two vdevs as the others.
    `conntrack`: table 0 sends IP through ct(), table 1 commits new
    connections and forwards new and established ones."""

    VSWITCHD = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"

    def __init__(self, pcap, frames, conntrack):
        shutil.rmtree(OVS_DIR, ignore_errors=True)
        os.makedirs(OVS_DIR)
        self.env = dict(os.environ, OVS_RUNDIR=OVS_DIR, OVS_LOGDIR=OVS_DIR, OVS_DBDIR=OVS_DIR)
        self.db = f"unix:{OVS_DIR}/db.sock"
        self.procs = []
        try:
            self.setup(pcap, frames, conntrack)
        except BaseException:
            # Never leave a PMD spinning on the forwarding core.
            self.close()
            raise

    def setup(self, pcap, frames, conntrack):
        subprocess.run(["ovsdb-tool", "create", f"{OVS_DIR}/conf.db",
                        "/usr/share/openvswitch/vswitch.ovsschema"], check=True, env=self.env)
        self.procs.append(subprocess.Popen(
            ["taskset", "-c", str(MAIN_CPU), "ovsdb-server", f"{OVS_DIR}/conf.db",
             f"--remote=punix:{OVS_DIR}/db.sock", f"--pidfile={OVS_DIR}/ovsdb.pid",
             f"--unixctl={OVS_DIR}/ovsdb.ctl", f"--log-file={OVS_DIR}/ovsdb.log"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(100):
            if os.path.exists(f"{OVS_DIR}/db.sock"):
                break
            time.sleep(0.1)
        mbuf_mb = int((frames + 65536) * 3.2 / 1024) + 1024
        self.vsctl("--no-wait", "init")
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".",
                   "other_config:dpdk-init=true",
                   f"other_config:pmd-cpu-mask={1 << WORKER_CPU:#x}",
                   f"other_config:dpdk-lcore-mask={1 << MAIN_CPU:#x}",
                   f"other_config:dpdk-socket-mem={mbuf_mb}",
                   f'other_config:dpdk-extra="--no-pci --file-prefix={OVS_PREFIX}"')
        self.procs.append(subprocess.Popen(
            ["taskset", "-c", str(MAIN_CPU), self.VSWITCHD, self.db, f"--pidfile={OVS_DIR}/vswitchd.pid",
             f"--unixctl={OVS_DIR}/vswitchd.ctl", f"--log-file={OVS_DIR}/vswitchd.log"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        src, sink = vdevs(pcap)
        self.vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")
        self.vsctl("add-port", "br0", "p0", "--", "set", "Interface", "p0", "type=dpdk",
                   f"options:dpdk-devargs={src}", "ofport_request=1")
        self.vsctl("add-port", "br0", "p1", "--", "set", "Interface", "p1", "type=dpdk",
                   f"options:dpdk-devargs={sink}", "ofport_request=2")
        for port in ("p0", "p1"):
            err = self.vsctl("get", "Interface", port, "error").strip()
            if err and err != "[]":
                raise RuntimeError(f"ovs: port {port}: {err}")
        self.ofctl("del-flows", "br0")
        if conntrack:
            self.appctl("dpctl/ct-set-maxconns", str(max(4 * frames, 1 << 20)))
            for f in ("table=0,priority=10,ip,ct_state=-trk,actions=ct(table=1)",
                      "table=1,priority=10,ip,ct_state=+trk+new,actions=ct(commit),output:2",
                      "table=1,priority=10,ip,ct_state=+trk+est,actions=output:2",
                      "table=0,priority=0,actions=drop", "table=1,priority=0,actions=drop"):
                self.ofctl("add-flow", "br0", f)
        else:
            self.ofctl("add-flow", "br0", "in_port=1,actions=output:2")

    def run(self, *cmd):
        return subprocess.run(list(cmd), check=True, env=self.env, capture_output=True, text=True,
                              timeout=120).stdout

    def vsctl(self, *a):
        return self.run("ovs-vsctl", f"--db={self.db}", "--timeout=120", *a)

    def ofctl(self, *a):
        return self.run("ovs-ofctl", "-O", "OpenFlow13", *a)

    def appctl(self, *a):
        return self.run("ovs-appctl", "-t", f"{OVS_DIR}/vswitchd.ctl", *a)

    def conns(self):
        try:
            return int(self.appctl("dpctl/ct-get-nconns").strip())
        except (subprocess.SubprocessError, ValueError):
            return None

    def poll(self):
        return None if all(p.poll() is None for p in self.procs) else 1

    def close(self):
        try:
            self.appctl("exit")
        except (subprocess.SubprocessError, OSError):
            # Not started, or its tools are missing: nothing to stop here.
            pass
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def stop(p):
    if isinstance(p, Ovs):
        p.close()
        time.sleep(1)
        return
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    time.sleep(1)  # let the kernel return the huge pages


LAST = {}


def measure(system, mode, pcap, frames, cfg, capacity=1 << 20):
    """Starts one system, returns its Mpps windows on the sink port."""
    if system == "testpmd":
        p, prefix = start_testpmd(mode, pcap, frames)
    elif system == "ovs":
        p, prefix = Ovs(pcap, frames, conntrack=(mode == "conntrack")), OVS_PREFIX
    else:
        p, prefix = start_flowgate(pcap, frames, mode, capacity)
    try:
        tel = Telemetry(prefix, timeout=120)
        w = windows(tel, 1, cfg.warm, cfg.windows, cfg.length)
        tel.close()
        if p.poll() is not None:
            raise RuntimeError(f"{system} exited during the run")
        if isinstance(p, Ovs) and mode == "conntrack":
            LAST["ovs_conns"] = p.conns()
        return [x / 1e6 for x in w]
    finally:
        stop(p)


def summary(samples):
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "samples": samples}


def bytes_per_flow():
    try:
        for line in open(os.path.join(WORK, "flowgate.log")):
            if "bytes per flow" in line:
                return float(line.split("(")[1].split()[0])
    except OSError:
        pass
    return None


# ---------------------------------------------------------------- scenarios

def forward(cfg, res):
    pcap = capture(1024)
    hugepages_for(1024)
    r = {}
    for rep in range(cfg.reps):
        for system, mode in (("testpmd", "io"), ("flowgate", "forward")):
            log(f"forward: {system} {mode} (round {rep + 1})")
            r.setdefault(system, []).extend(measure(system, mode, pcap, 1024, cfg))
    res["forward"] = {k: summary(v) for k, v in r.items()}
    res["forward"]["ratio"] = res["forward"]["flowgate"]["median"] / res["forward"]["testpmd"]["median"]


def flows(cfg, res):
    out = {}
    for n in cfg.flow_counts:
        pcap = capture(n)
        pages = hugepages_for(n)
        log(f"flows {n}: {pages} huge pages")
        cap = max(1 << 20, 2 * n)
        row = {}
        systems = [("testpmd", "io"), ("testpmd", "macswap"), ("testpmd", "5tswap"),
                   ("testpmd", "csum"), ("flowgate", "track")]
        if cfg.ovs and n <= OVS_MAX_FRAMES:
            systems += [("ovs", "plain"), ("ovs", "conntrack")]
        for system, mode in systems:
            log(f"flows {n}: {system} {mode}")
            try:
                row[f"{system} {mode}"] = summary(measure(system, mode, pcap, n, cfg, cap))
            except (RuntimeError, subprocess.SubprocessError) as e:
                row[f"{system} {mode}"] = {"error": str(e)}
            if system == "ovs" and mode == "conntrack":
                row["ovs_conntrack_entries"] = LAST.get("ovs_conns")
            if system == "flowgate":
                row["bytes_per_flow"] = bytes_per_flow()
                row["capacity"] = cap
        out[str(n)] = row
    res["flows"] = out


_NFW = []


def nfw(method, body):
    # One client for the run: making one costs tens of milliseconds, which
    # would swamp the completion times measured by polling.
    if not _NFW:
        import boto3  # from the repo's .venv
        _NFW.append(boto3.client("network-firewall", endpoint_url=f"http://{API}", region_name="us-east-1",
                                 aws_access_key_id=KEY, aws_secret_access_key=SECRET))
    return getattr(_NFW[0], method)(**body)


def rate_series(tel, seconds, step=0.1, port=1):
    """(time, Mpps) every `step` seconds for `seconds`."""
    out = []
    t0 = time.monotonic()
    a, ta = tel.port(port)["opackets"], t0
    while time.monotonic() - t0 < seconds:
        time.sleep(step)
        b, tb = tel.port(port)["opackets"], time.monotonic()
        out.append((round(tb - t0, 3), (b - a) / (tb - ta) / 1e6))
        a, ta = b, tb
    return out


def metric_sum(name):
    """The sum over workers of a counter from flowgate's /metrics."""
    with urllib.request.urlopen(f"http://{API}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def run_op(tel, kind, filters, port):
    """Starts a flow operation, samples forwarding on `port` every 100 ms
    from 1 s before it until 2 s after it ended; returns the completion time
    (StartFlow* call to the first DescribeFlowOperation that is not
    IN_PROGRESS, polled every 2 ms), status, flows reported and samples,
    and the rate over the operation itself: the port's counter read just
    before the start and just after the end (100 ms samples blur an
    operation shorter than a few of them with the time around it)."""
    import threading
    samples = []
    # Its own connection: the sampler thread uses `tel`.
    counter = Telemetry(tel.prefix)

    def read_counter():
        """(packets sent, the time of the read: the middle of the call)."""
        ta = time.monotonic()
        c = counter.port(port)["opackets"]
        return c, (ta + time.monotonic()) / 2
    done = threading.Event()
    t0 = time.monotonic()

    def sampler():
        a, ta = tel.port(port)["opackets"], t0
        after = 0
        while after < 20:  # and 2 s after the end, to see the recovery
            time.sleep(0.1)
            b, tb = tel.port(port)["opackets"], time.monotonic()
            samples.append((round(tb - t0, 3), (b - a) / (tb - ta) / 1e6))
            a, ta = b, tb
            after += done.is_set()

    th = threading.Thread(target=sampler)
    th.start()
    time.sleep(1.0)
    jobs0, busy0 = metric_sum("flowgate_worker_job_busy_ticks_total"), metric_sum("flowgate_worker_busy_ticks_total")
    c_start, w_start = read_counter()
    t_start = time.monotonic()
    r = nfw("start_flow_flush" if kind == "flush" else "start_flow_capture",
            {"FirewallArn": ARN, "FlowFilters": filters})
    op = r["FlowOperationId"]
    while True:
        d = nfw("describe_flow_operation", {"FirewallArn": ARN, "FlowOperationId": op})
        if d["FlowOperationStatus"] != "IN_PROGRESS":
            break
        time.sleep(0.002)
    t_end = time.monotonic()
    c_end, w_end = read_counter()
    counter.close()
    done.set()
    th.join()
    jobs1, busy1 = metric_sum("flowgate_worker_job_busy_ticks_total"), metric_sum("flowgate_worker_busy_ticks_total")
    n = 0
    token = None
    while True:
        args = {"FirewallArn": ARN, "FlowOperationId": op, "MaxResults": 100}
        if token:
            args["NextToken"] = token
        page = nfw("list_flow_operation_results", args)
        n += len(page.get("Flows", []))
        token = page.get("NextToken")
        if not token:
            break
    # Samples whose 100 ms window overlaps the operation.
    during = [m for t, m in samples if t - 0.1 < t_end - t0 and t > t_start - t0]
    return {"seconds": t_end - t_start, "status": d["FlowOperationStatus"],
            "message": d.get("StatusMessage"), "flows": n, "samples": samples,
            "started_at": round(t_start - t0, 3), "ended_at": round(t_end - t0, 3),
            "during": summary(during) if during else None,
            "over": (c_end - c_start) / (w_end - w_start) / 1e6,
            # What the worker itself measured: the share of its forwarding
            # iterations' time the operation took (noise-free, unlike Mpps).
            "worker_share": (jobs1 - jobs0) / (busy1 - busy0) if busy1 > busy0 else None}


def loaded_flowgate(cfg, n):
    """flowgate tracking an `n`-flow replay, every flow created: (process, telemetry)."""
    pcap = capture(n)
    hugepages_for(n)
    p, prefix = start_flowgate(pcap, n, "track", max(1 << 20, 2 * n))
    try:
        tel = Telemetry(prefix, timeout=120)
    except RuntimeError:
        stop(p)
        raise
    time.sleep(cfg.warm + 5)
    return p, tel


def ops(cfg, res):
    """Flow operations over a table of `ops_flows` idle flows while another
    capture keeps the worker saturated. The table is filled by a one-pass
    replay (UDP to port 7) on its own port pair; the load is a 64K-flow
    capture (UDP to port 53) replayed forever on a second pair. The
    operations filter on port 7, so they scan every flow, match the bulk
    and leave the load alone: the forwarding dip is the operation's own
    cost, not that of re-creating flushed flows that keep sending."""
    n = cfg.ops_flows
    bulk = capture(n)
    load = os.path.join(WORK, "load-65536-dport53.pcap")
    if not os.path.exists(load):
        subprocess.run([os.path.join(BIN, "flowgate-pcapgen"), "flows", "--count", "65536", "--dport", "53",
                        "--seed", "7", "--out", load], check=True, stdout=subprocess.DEVNULL)
    hugepages_for(65536)
    out = {"flows": n, "load_flows": 65536, "job_cost": job_cost()}
    # The appliance's default share, a far larger one and all of it: the
    # dip against the duration. Then a worker with nothing else to do, where
    # an operation runs as fast as the worker and control can take it.
    default_share = 3
    for share in (default_share, 4, 50, 100):
        r = ops_run(cfg, n, bulk, load, share)
        if share == default_share:
            out.update(r)
        else:
            out[f"share{share}"] = r
    out["idle"] = ops_run(cfg, n, bulk, None, default_share)
    res["ops"] = out


def job_cost():
    """What an operation costs the worker per table entry on a core of its
    own, without DPDK or packets (`dataplane/examples/job_cost.rs`, 1M
    flows): {"capture, all/handed over": ns, ...}, slices of 4096."""
    log("ops: job_cost (the scan alone, 1M flows)")
    r = subprocess.run(["cargo", "run", "--release", "-q", "-p", "flowgate-dataplane", "--example", "job_cost"],
                       cwd=ROOT, capture_output=True, text=True, check=True)
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r"(.+?)\s+slices of\s+(\d+):.*?([\d.]+) ns per entry, \d+ flows (.+)$", line)
        if m and m.group(2) == "4096":
            out[f"{m.group(1)}/{m.group(4)}"] = float(m.group(3))
    return out


# Runs of the selective capture per share (the median is reported).
SELECTIVE_RUNS = 5


def ops_run(cfg, n, bulk, load, share):
    capacity = max(1 << 20, 2 * n)
    ports = [("bulk", f"net_pcap0,rx_pcap={bulk}"), ("bulk_out", "net_null0,no-rx=1")]
    pairs = [("bulk", "bulk_out")]
    if load:
        ports += [("load", f"net_pcap1,rx_pcap={load},infinite_rx=1"), ("outside", "net_null1,no-rx=1")]
        pairs += [("load", "outside")]
    p, prefix = start_flowgate(None, 65536, "track", capacity, ports=ports, pairs=pairs, busy_share=share)
    # Without a load, the bulk pair's output (nothing once the replay is over).
    out_port = 3 if load else 1
    try:
        tel = Telemetry(prefix, timeout=120)
        deadline = time.monotonic() + 120
        while tel.port(0)["ipackets"] < n and time.monotonic() < deadline:
            time.sleep(0.5)
        got = tel.port(0)["ipackets"]
        if got < n:
            raise RuntimeError(f"ops: the bulk replay delivered {got} of {n} frames")
        time.sleep(cfg.warm)
        base = [r for _, r in rate_series(tel, 3.0, port=out_port)]
        out = {"busy_share_percent": share if load else None, "baseline": summary(base)}
        filters = [{"DestinationPort": "7", "Protocols": ["17"]}]
        nfw("list_flow_operations", {"FirewallArn": ARN})  # the client is made outside the timing
        # A selective capture first: it scans the same million entries but
        # matches 4,095 of them (sources 10.0.0.1-10.0.15.255).
        # It changes nothing, so it is repeated and its median run reported:
        # one sample on this VM can be off by half.
        log(f"ops: selective capture over {n} flows, busy_share_percent {share}, {SELECTIVE_RUNS} runs")
        runs = []
        for _ in range(SELECTIVE_RUNS):
            runs.append(run_op(tel, "capture", [dict(filters[0], SourceAddress={"AddressDefinition": "10.0.0.0/20"})],
                               out_port))
            time.sleep(0.5)
        runs.sort(key=lambda r: r["seconds"])
        out["selective"] = dict(runs[len(runs) // 2], runs_seconds=[r["seconds"] for r in runs],
                                runs_dips=sorted(r["over"] / b - 1 for r in runs if (b := before(r))))
        time.sleep(2)
        for kind in ("capture", "flush"):
            log(f"ops: {kind} over {n} flows, busy_share_percent {share}")
            out[kind] = run_op(tel, kind, filters, out_port)
            time.sleep(2)
        # After the flush the bulk flows are gone; a capture finds none.
        out["after_flush_capture"] = run_op(tel, "capture", filters, out_port)["flows"]
        tel.close()
        return out
    finally:
        stop(p)


def api(cfg, res):
    n = cfg.ops_flows
    p, tel = loaded_flowgate(cfg, n)
    try:
        base = tx_rate(tel, 1, 3.0) / 1e6
        url = f"http://{API}/api/operate/namespaces/system/sites/flowgate/ver/matching_flows"
        body = json.dumps({"dest_port": 7, "proto": 17}).encode()  # every flow of the capture
        lat = []
        a, ta = tel.port(1)["opackets"], time.monotonic()
        for _ in range(100):
            req = urllib.request.Request(url, data=body, method="POST", headers={
                "Authorization": f"APIToken {TOKEN}", "Content-Type": "application/json"})
            t0 = time.perf_counter()
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()
            lat.append((time.perf_counter() - t0) * 1000)
        b, tb = tel.port(1)["opackets"], time.monotonic()
        during = (b - a) / (tb - ta) / 1e6
        lat.sort()
        res["api"] = {"flows": n, "p50_ms": lat[49], "p99_ms": lat[98], "max_ms": lat[-1],
                      "baseline_mpps": base, "during_mpps": during, "wrk": wrk_nfw(tel, cfg)}
        tel.close()
    finally:
        stop(p)


def mirror(cfg, res):
    n = 65536
    pcap = capture(n)
    hugepages_for(n)
    p, prefix = start_flowgate(pcap, n, "track", 1 << 20, collector=True)
    out = {"flows": n}
    try:
        tel = Telemetry(prefix, timeout=120)
        time.sleep(cfg.warm)
        for name, mode, plen in (("no sessions", "none", 0), ("session mirroring nothing", "nothing", 0),
                                 ("~10 % mirrored", "10pct", 0), ("100 % mirrored", "100pct", 0),
                                 ("100 % mirrored, PacketLength 64", "100pct", 64)):
            log(f"mirror: {name}")
            subprocess.run([sys.executable, os.path.join(ROOT, "benches", "mirror_setup.py"), "--endpoint",
                            f"http://{API}", "--keys", f"{KEY}:{SECRET}", "--mode", mode,
                            "--packet-length", str(plen), "--flows", str(n)], check=True)
            time.sleep(cfg.warm)
            fwd, copies = [], []
            for _ in range(cfg.windows):
                a1, a2, ta = tel.port(1)["opackets"], tel.port(2)["opackets"], time.monotonic()
                time.sleep(cfg.length)
                b1, b2, tb = tel.port(1)["opackets"], tel.port(2)["opackets"], time.monotonic()
                fwd.append((b1 - a1) / (tb - ta) / 1e6)
                copies.append((b2 - a2) / (tb - ta) / 1e6)
            out[name] = {"forward": summary(fwd), "copies": summary(copies)}
        tel.close()
        res["mirror"] = out
    finally:
        stop(p)


def wrk_ms(v):
    """wrk's latency ("312.00us", "1.23ms", "1.01s") in milliseconds."""
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * scale
    return float(v)


def wrk_nfw(tel, cfg):
    """wrk (pinned to CPU 0) against ListFlowOperations and
    DescribeFlowOperation, SigV4-signed once (a signature stays valid for
    five minutes); returns requests/s, latency percentiles and forwarding."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    op = nfw("start_flow_capture", {"FirewallArn": ARN, "FlowFilters": [{"DestinationPort": "9"}]})["FlowOperationId"]
    out = {}
    for target, body in (("ListFlowOperations", {"FirewallArn": ARN}),
                         ("DescribeFlowOperation", {"FirewallArn": ARN, "FlowOperationId": op})):
        data = json.dumps(body)
        req = botocore.awsrequest.AWSRequest(method="POST", url=f"http://{API}/", data=data, headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"NetworkFirewall_20201112.{target}"})
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(KEY, SECRET), "network-firewall",
                                "us-east-1").add_auth(req)
        lua = os.path.join(WORK, "wrk.lua")
        with open(lua, "w") as f:
            f.write('wrk.method = "POST"\n')
            f.write(f"wrk.body = {json.dumps(data)}\n")
            for k, v in req.headers.items():
                f.write(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n")
        secs = 5 if cfg.quick else 10
        a, ta = tel.port(1)["opackets"], time.monotonic()
        r = subprocess.run(["taskset", "-c", str(MAIN_CPU), "wrk", "-t1", "-c4", f"-d{secs}s", "--latency",
                            "-s", lua, f"http://{API}/"], capture_output=True, text=True)
        b, tb = tel.port(1)["opackets"], time.monotonic()
        text = r.stdout
        row = {"forwarding_mpps": (b - a) / (tb - ta) / 1e6}
        for line in text.splitlines():
            w = line.split()
            if line.startswith("Requests/sec:"):
                row["rps"] = float(w[1])
            elif len(w) == 2 and w[0] in ("50%", "99%"):
                row[w[0]] = wrk_ms(w[1])
            elif "Non-2xx" in line:
                row["errors"] = line.strip()
        out[target] = row
    return out


# ---------------------------------------------------------------- report

def machine():
    cpu = next((l.split(":")[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
    dpdk = subprocess.run(["pkg-config", "--modversion", "libdpdk"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(int(mem) / 2**20, 1),
            "kernel": platform.release(), "dpdk": dpdk, "tsc_hz": tsc_hz(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def machine_line(m):
    return f"{m['cpu']}, {m['cores']} vCPUs, {m['memory_gib']} GiB, kernel {m['kernel']}"


def fmt(s):
    if "error" in s:
        return "failed"
    return f"{s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f})"


def rates_between(r, lo, hi):
    """Operation `r`'s forwarding samples (Mpps) taken at lo < t <= hi."""
    return [x for t, x in r.get("samples", []) if lo < t <= hi]


def before(r):
    """Median forwarding rate over the second before operation `r` started
    (None without enough samples)."""
    pre = rates_between(r, float("-inf"), r.get("started_at", 0))
    return statistics.median(pre) if len(pre) >= 5 else None


def ops_cost(o):
    """Why the figures are what they are: what an operation costs the worker
    per flow on a core of its own (`job_cost`) and under load (its share of
    the worker's time over the operation's duration), from this run."""
    jc = o.get("job_cost") or {}

    def under_load(kind):
        r = o.get(kind) or {}
        if not r.get("worker_share") or not r.get("seconds"):
            return None
        return r["worker_share"] * r["seconds"] * 1e9 / o["flows"]

    cap, flush = jc.get("capture, all/handed over"), jc.get("flush, all/handed over")
    if cap is None or flush is None:
        return [""]
    share = o.get("busy_share_percent") or 3
    floor = min(cap, flush) * o["flows"] / (share / 100) / 1e9
    loaded = {k: under_load(k) for k in ("selective", "capture", "flush")}
    text = ("A match-all capture reads and reports every flow; a flush also removes it (the worker "
            "removes what it matched before it goes back to packets, so the removals are in the operation's "
            "share, not left to the expiry sweep). "
            f"On a core of its own, without packets, that costs {cap:.0f} ns per flow for a capture and "
            f"{flush:.0f} ns for a flush (`cargo run --release -p flowgate-dataplane --example job_cost`, "
            "run by this bench; bound by memory)")
    kc, kf = jc.get("capture, all/kept"), jc.get("flush, all/kept")
    if kc is not None and kf is not None:
        text += (f"; with the results kept on the worker instead of handed to control, {kc:.0f} and "
                 f"{kf:.0f} ns")
    text += f"; so at {share} % its {o['flows']:,} flows take at least {floor * 1000:.0f} ms (the target: 100 ms)."
    if loaded["capture"] and loaded["flush"]:
        text += (f" Under load the worker spent {loaded['capture']:.0f} ns per flow on the capture and "
                 f"{loaded['flush']:.0f} on the flush (its share of its time over the operation's duration).")
    sel = jc.get("capture, 1 in 256/handed over")
    if sel is not None:
        text += f" A selective operation reads 16-byte scan keys: {sel:.1f} ns per table entry on its own core"
        text += (f", {loaded['selective']:.1f} under load." if loaded["selective"] else ".")
    return [text, ""]


def report(res, cfg, path):
    host = res["machine"]
    measured_on = res.get("measured_on", {})

    def hz_of(scenario):
        # Cycles are counted at the clock of the machine the figures came
        # from, which a --merge may have kept from another machine.
        return measured_on.get(scenario, host).get("tsc_hz") or tsc_hz()

    def measured(scenario):
        # A section kept by --merge from another run says where it ran.
        r = measured_on.get(scenario)
        if r is None or (machine_line(r) == machine_line(host) and r["date"] == host["date"]):
            return []
        return [f"Measured on {machine_line(r)}, {r['date']}: `{r['command']}`.", ""]
    L = ["# flowgate benchmark results", "",
         "Written by `benches/run.py` (`make bench`); do not edit by hand. "
         "Saturated-core rates (the source never runs dry), not RFC 2544 zero-loss rates. "
         "Every ratio compares figures taken in the same invocation, on the same devices "
         "(`net_pcap0,rx_pcap=F,infinite_rx=1` → `net_null0,no-rx=1`), the same forwarding "
         "lcore (1; all else on 0), the same captures (64-byte IPv4/UDP frames, one per flow) "
         "and the same buffer size (512-byte data room). "
         "Mpps are medians of the windows, (min–max) their spread.", "",
         "| | |", "|---|---|",
         f"| machine | {machine_line(host)} |",
         f"| DPDK | {host['dpdk']} (Debian packages) |",
         f"| date | {host['date']} |",
         f"| command | `{res['command']}` |",
         f"| windows | {cfg.reps} round(s) × {cfg.windows} windows of {cfg.length} s after {cfg.warm} s warm-up |",
         ""]
    if cfg.note:
        L += [f"Note: {cfg.note}", ""]
    if "forward" in res:
        f = res["forward"]
        L += ["## Forwarding only (issue 2)", ""] + measured("forward") + [
              "flowgate `mode = \"forward\"` against `dpdk-testpmd --forward-mode=io`, 1,024-frame capture.", "",
              "| system | Mpps |", "|---|---|",
              f"| testpmd io | {fmt(f['testpmd'])} |",
              f"| flowgate forward | {fmt(f['flowgate'])} |",
              f"| **ratio** | **{f['ratio']:.2f}** (target ≥ 0.95) |", ""]
    if "flows" in res:
        L += ["## Flow-count sweep (issue 3)", ""] + measured("flows") + [
              "flowgate tracks every packet (parse, IPv4 header checksum, key, lookup/insert, "
              "per-direction counters, TCP state, default policy). Table capacity: 1,048,576, or twice the flow count "
              "above that. cycles/pkt = TSC Hz / pps on the one forwarding core.", "",
              "| flows | testpmd io | testpmd macswap | testpmd 5tswap | testpmd csum | flowgate track | flowgate / 5tswap | flowgate cycles/pkt | bytes/flow |",
              "|---|---|---|---|---|---|---|---|---|"]
        for n, row in res["flows"].items():
            fg, sw = row.get("flowgate track", {}), row.get("testpmd 5tswap", {})
            ratio = (fg["median"] / sw["median"]) if "median" in fg and "median" in sw else None
            cyc = (hz_of("flows") / (fg["median"] * 1e6)) if "median" in fg else None
            L.append(f"| {int(n):,} | {fmt(row['testpmd io'])} | {fmt(row['testpmd macswap'])} | "
                     f"{fmt(row['testpmd 5tswap'])} | {fmt(row['testpmd csum'])} | {fmt(fg)} | "
                     f"{'%.2f' % ratio if ratio else '-'} | {'%.0f' % cyc if cyc else '-'} | "
                     f"{'%.0f' % row['bytes_per_flow'] if row.get('bytes_per_flow') else '-'} |")
        if any("ovs conntrack" in row for row in res["flows"].values()):
            L += ["", "### The stateful peer: Open vSwitch with DPDK", "",
                  "Debian's openvswitch-switch-dpdk (userspace datapath), a private instance with its PMD "
                  "on the same forwarding lcore and every other thread on CPU 0, between the same two "
                  "vdevs, replaying the same captures. *plain*: one OpenFlow rule `in_port=1 → output:2`. "
                  "*conntrack*: table 0 `ip,ct_state=-trk → ct(table=1)`, table 1 `+trk+new → "
                  "ct(commit),output:2` and `+trk+est → output:2`; the entries it holds "
                  "(`dpctl/ct-get-nconns`) are checked after the run. OVS 3.1 cannot preload more than "
                  f"about {OVS_MAX_FRAMES:,} frames on one pcap port (its shared mempool cap), so it runs "
                  "at the flow counts below that only.", "",
                  "| flows | OVS plain | OVS conntrack | conntrack entries | flowgate track | flowgate / OVS conntrack |",
                  "|---|---|---|---|---|---|"]
            for n, row in res["flows"].items():
                if "ovs conntrack" not in row:
                    continue
                fg, ct = row.get("flowgate track", {}), row["ovs conntrack"]
                ratio = (fg["median"] / ct["median"]) if "median" in fg and "median" in ct else None
                L.append(f"| {int(n):,} | {fmt(row.get('ovs plain', {'error': 1}))} | {fmt(ct)} | "
                         f"{row.get('ovs_conntrack_entries') or '-'} | {fmt(fg)} | "
                         f"{'%.1f×' % ratio if ratio else '-'} |")
        if os.path.exists(os.path.join(os.path.dirname(path), "flows.png")):
            L += ["", "![Mpps against flow count, every system](flows.png)"]
        L += ["", "Targets: ≥ 0.75× 5tswap at 64K flows, ≥ 0.5× at 1M. Where the cycles go: "
              "[PROFILE.md](PROFILE.md).", ""]
    if "ops" in res:
        o = res["ops"]
        base = o["baseline"]["median"]
        L += ["## Flow operations under load (issue 4)", ""] + measured("ops") + [
              f"A table of {o['flows']:,} idle flows (UDP to port 7, created by a one-pass replay on "
              f"their own port pair) while a {o['load_flows']:,}-flow capture (UDP to port 53) "
              f"keeps the worker saturated on a second pair; baseline {fmt(o['baseline'])} Mpps. "
              "Capture and flush filter `DestinationPort 7, Protocols [17]`: they scan every flow, "
              "match every idle flow and leave the load alone, so the dip is the "
              "operation's own cost (a flush of flows that keep sending would add the cost of "
              "re-creating them). The selective capture adds `SourceAddress 10.0.0.0/20`: it scans "
              f"the same entries and matches 4,095; it changes nothing, so it runs {SELECTIVE_RUNS} times per row "
              "and the row shows the median run (the spread of the completion times in brackets). "
              "The idle-worker rows run without the load: the "
              "operation takes what the worker and control can give it. Started with boto3; completion = StartFlow* call to the first "
              "DescribeFlowOperation that is not IN_PROGRESS (polled every 2 ms); flows = what "
              "ListFlowOperationResults returned, page by page. Forwarding sampled every 100 ms.", "",
              "`busy_share_percent` is the appliance's setting (default 3): the share of a saturated "
              "worker's time an operation may take. *Worker share* is what the worker measured itself "
              "(TSC ticks in the operation over ticks of its forwarding iterations meanwhile); the Mpps "
              "columns carry this VM's noise (see the spread of the baseline) and the cache and "
              "memory-bandwidth cost of the scan and of control absorbing the results on the other CPU.", "",
              "*Before* is the median of the ten 100 ms samples of the second just before the operation "
              "started, and the dips are against it, not against the baseline measured earlier: this VM's "
              "rate drifts by a few percent over a minute. *While running* counts the packets sent between "
              "two reads of the port's counter, just before the start and just after the end, so an operation "
              "shorter than a sample is not blurred with the time around it; for the selective capture it is "
              "the median of its five runs (the spread of their dips after it).", "",
              "| operation | busy_share_percent | completion | status | flows | worker share | "
              "before | while running | lowest 100 ms sample |",
              "|---|---|---|---|---|---|---|---|---|"]
        runs = [o] + [o[k] for k in sorted(o, key=lambda k: int(k[5:]) if k[5:].isdigit() else 0)
                      if k.startswith("share")] + ([o["idle"]] if "idle" in o else [])
        for run in runs:
            base = run["baseline"]["median"]
            share = run.get("busy_share_percent")
            for kind in ("selective", "capture", "flush"):
                if kind not in run:
                    continue
                r = run[kind]
                ref = before(r) or base
                # Without a load (the idle worker) there is no rate to dip.
                dip = (lambda x, ref=ref: f"{x:.2f} Mpps ({(x / ref - 1) * 100:+.1f} %)") if base > 0 else (lambda x: "-")
                d = r.get("during") or {"min": 0, "median": 0}
                running = dip(r.get("over", d["median"]))
                dips = r.get("runs_dips")
                if dips and base > 0:
                    # A short operation's dip on this VM is a few points of
                    # noise either way: the median of its runs, and their spread.
                    running = (f"{ref * (1 + statistics.median(dips)):.2f} Mpps ({statistics.median(dips) * 100:+.1f} %; "
                               f"runs {dips[0] * 100:+.1f} to {dips[-1] * 100:+.1f} %)")
                ws = r.get("worker_share")
                spread = r.get("runs_seconds")
                took = f"{r['seconds'] * 1000:.0f} ms" + (
                    f" ({spread[0] * 1000:.0f}–{spread[-1] * 1000:.0f}, median of {len(spread)})" if spread else "")
                L.append(f"| {'capture, 1 in 256 match' if kind == 'selective' else kind} | {'%d %%' % share if share else 'idle worker'} | {took} | "
                         f"{r['status']} | {r.get('flows', 0):,} | "
                         f"{'%.1f %%' % (ws * 100) if ws is not None else '-'} | "
                         f"{f'{ref:.2f} Mpps' if base > 0 else '-'} | {running} | {dip(d['min'])} |")
        after = []
        for kind in ("capture", "flush"):
            r = o.get(kind) or {}
            end = r.get("ended_at")
            later = rates_between(r, end + 0.1, end + 2.0) if end is not None else []
            b = before(r) or o["baseline"]["median"]
            if later and b > 0:
                after.append(f"the {kind} {min(later):.2f} Mpps ({(min(later) / b - 1) * 100:+.1f} %)")
        if after:
            L += ["", f"Lowest 100 ms sample in the 2 s after the operation ended ({o['busy_share_percent']} %): "
                  + ", ".join(after) + "."]
        if "after_flush_capture" in o:
            L += ["", f"A capture after the flush found {o['after_flush_capture']:,} of the flushed flows."]
        L += ["", "Targets: an operation over 1M flows completes in < 100 ms; forwarding dip < 5 %.", "",
              ] + ops_cost(o)
        for kind in ("capture", "flush"):
            if os.path.exists(os.path.join(os.path.dirname(path), f"{kind}.png")):
                L += [f"![forwarding during the {kind}]({kind}.png)", ""]
        L += ["Forwarding rate during the flush (time s: Mpps; the operation ran from "
              f"{o['flush'].get('started_at', 0):.2f} s to {o['flush'].get('ended_at', 0):.2f} s):", "", "```",
              " ".join(f"{t:.1f}:{x:.1f}" for t, x in o["flush"]["samples"]), "```", ""]
    if "api" in res:
        a = res["api"]
        L += ["## matching_flows latency (issue 6)", ""] + measured("api") + [
              f"100 sequential F5 `matching_flows` requests (`dest_port` 7, UDP: every flow matches; the newest 1,024 come back) against a "
              f"{a['flows']:,}-flow table while forwarding.", "",
              "| p50 | p99 | max | forwarding before | forwarding during |", "|---|---|---|---|---|",
              f"| {a['p50_ms']:.1f} ms | {a['p99_ms']:.1f} ms | {a['max_ms']:.1f} ms | "
              f"{a['baseline_mpps']:.2f} Mpps | {a['during_mpps']:.2f} Mpps "
              f"({(a['during_mpps'] / a['baseline_mpps'] - 1) * 100:+.1f} %) |", ""]
        if a.get("wrk"):
            L += ["Network Firewall describe/list under load: `wrk -t1 -c4 --latency` pinned to CPU 0, "
                  "SigV4-signed requests, same table, while forwarding.", "",
                  "| operation | requests/s | p50 | p99 | forwarding during |", "|---|---|---|---|---|"]
            for op, w in a["wrk"].items():
                L.append(f"| {op} | {w.get('rps', 0):.0f} | {w.get('50%', 0):.2f} ms | {w.get('99%', 0):.2f} ms | "
                         f"{w['forwarding_mpps']:.2f} Mpps{' — ' + w['errors'] if w.get('errors') else ''} |")
            L.append("")
    if "mirror" in res:
        m = res["mirror"]
        base = m["no sessions"]["forward"]["median"]
        L += ["## Mirroring cost (issue 5)", ""] + measured("mirror") + [
              f"flowgate tracking {m['flows']:,} flows, one worker; sessions set with boto3 through the EC2 "
              "API (`benches/mirror_setup.py`); copies are VXLAN-encapsulated and sent to a third "
              "port (`net_null2`). Mpps forwarded, copies per second, and cycles per forwarded packet "
              "(copies included).", "",
              "| sessions | forwarded Mpps | copies Mpps | cycles/pkt | vs no sessions |", "|---|---|---|---|---|"]
        for name, r in m.items():
            if name == "flows":
                continue
            med = r["forward"]["median"]
            L.append(f"| {name} | {fmt(r['forward'])} | {fmt(r['copies'])} | "
                     f"{hz_of('mirror') / (med * 1e6):.0f} | {base / med:.2f}× cycles |")
        L += ["", "Target: mirroring 100 % costs no more than 2× the per-packet cycles of not mirroring.", ""]
    # Results kept by other tools (the soak script, the long fuzz runs).
    for name in ("soak-results.md", "fuzz-results.md"):
        extra = os.path.join(ROOT, "benches", name)
        if os.path.exists(extra):
            L += [open(extra).read().rstrip(), ""]
    missing = []
    if not any("ovs conntrack" in row for row in res.get("flows", {}).values()):
        missing.append("- Open vSwitch with DPDK as the stateful peer (`ct(commit)`): see "
                       "`../shared/bench-notes.md` for figures taken on this kind of machine "
                       "(left out with `--no-ovs`, or it failed to start).")
    if not os.path.exists(os.path.join(os.path.dirname(path), "flows.png")):
        missing.append("- Plots: `flowgate-plot` was not built.")
    if missing:
        L += ["## Not measured in this run", ""] + missing + [""]
    with open(path, "w") as f:
        f.write("\n".join(L))


def plots(results, out):
    """PNG plots beside RESULTS.md, drawn by flowgate-plot (plotters)."""
    plot = os.path.join(BIN, "flowgate-plot")
    if not os.path.exists(plot):
        log("no flowgate-plot binary: plots not redrawn (cargo build --release --bins)")
        return
    subprocess.run([plot, "--results", results, "--out-dir", os.path.dirname(os.path.abspath(out))])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", default=["forward", "flows", "ops", "api", "mirror"],
                    help="forward, flows, ops, api, mirror (default: all)")
    ap.add_argument("--quick", action="store_true", help="short windows, 1K and 64K flows only")
    ap.add_argument("--note", default=os.environ.get("BENCH_NOTE", ""), help="a line for RESULTS.md")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite RESULTS.md from benches/results.json without measuring")
    ap.add_argument("--no-ovs", dest="ovs", action="store_false",
                    help="leave Open vSwitch out of the flow-count sweep")
    ap.add_argument("--merge", action="store_true",
                    help="keep the figures of scenarios not run now from benches/results.json")
    ap.add_argument("--ops-flows", type=int, metavar="N",
                    help="idle flows the ops scenario's table holds (default 1,048,576; 65,536 with "
                         "--quick). 1M/N stands for one of N workers sharing a million flows; write "
                         "such a run elsewhere with --out")
    ap.add_argument("--out", default=os.path.join(ROOT, "benches", "RESULTS.md"))
    cfg = ap.parse_args()
    for s in cfg.scenarios:
        if s not in ("forward", "flows", "ops", "api", "mirror"):
            ap.error(f"unknown scenario {s!r}")
    cfg.warm, cfg.windows, cfg.length, cfg.reps = (2, 3, 1, 1) if cfg.quick else (5, 3, 3, 2)
    cfg.flow_counts = [1024, 65536] if cfg.quick else [1024, 65536, 1 << 20, 1 << 22]
    if cfg.ops_flows is None:
        cfg.ops_flows = 65536 if cfg.quick else 1 << 20
    elif cfg.ops_flows < 4096:
        ap.error("--ops-flows: at least 4096 (the selective capture matches 4,095 of them)")
    if "flows" in cfg.scenarios and cfg.ovs and not (
            os.access(Ovs.VSWITCHD, os.X_OK) and shutil.which("ovs-appctl")):
        ap.error(f"Open vSwitch with DPDK ({Ovs.VSWITCHD}) is not installed: `make bench` "
                 "installs it (openvswitch-switch-dpdk), or pass --no-ovs")
    res = {"machine": machine(), "command": " ".join(["benches/run.py"] + sys.argv[1:])}
    saved = os.path.join(os.path.dirname(cfg.out), "results.json")
    if cfg.report_only:
        plots(saved, cfg.out)
        report(json.load(open(saved)), cfg, cfg.out)
        log(f"wrote {cfg.out} from {saved}")
        return
    if cfg.merge and os.path.exists(saved):
        # Keep the other scenarios' figures from the earlier run (each
        # comparison is still taken within one invocation).
        old = json.load(open(saved))
        for k in ("forward", "flows", "ops", "api", "mirror"):
            if k in old and k not in cfg.scenarios:
                res[k] = old[k]
                # Where and how it was measured (a file from before this
                # was recorded: the machine and command of that file).
                res.setdefault("measured_on", {})[k] = old.get("measured_on", {}).get(
                    k, dict(old["machine"], command=old.get("command", "")))
    for s in cfg.scenarios:
        {"forward": forward, "flows": flows, "ops": ops, "api": api, "mirror": mirror}[s](cfg, res)
        res.setdefault("measured_on", {})[s] = dict(res["machine"], command=res["command"])
        with open(os.path.join(WORK, "results.json"), "w") as f:
            json.dump(res, f, indent=1)
    with open(saved, "w") as f:
        json.dump(res, f, indent=1)
    plots(saved, cfg.out)
    report(res, cfg, cfg.out)
    log(f"wrote {cfg.out}")


if __name__ == "__main__":
    main()
