"""Harness for API tests: runs the real flowgate binary on DPDK virtual
devices and gives tests its API address.

Each appliance gets its own EAL file prefix, API port and temporary
directory; it runs without huge pages (tests run side by side) and is
stopped with SIGTERM at the end of the test (or module, for shared ones).
"""

import contextlib
import http.client
import json
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import textwrap
import threading
import time
import urllib.parse
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BINARY = REPO / "target" / "release" / "flowgate"
SAMPLE = REPO / "config" / "sample.pcap"


# The credentials every test appliance accepts (see config()).
ACCESS_KEY = "test"
SECRET_KEY = "test"
API_TOKEN = "test-token"


def signed_headers(url, service, body, headers, key=ACCESS_KEY, secret=SECRET_KEY):
    """`headers` plus SigV4 X-Amz-Date and Authorization for a POST of
    `body` to `url`, signed by botocore itself (the signer boto3 uses)."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    req = botocore.awsrequest.AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), service, "us-east-1").add_auth(req)
    return dict(req.headers.items())


def _debug_post(url, path, body, source):
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request("POST", path, body=body)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


@contextlib.contextmanager
def stalled(url, worker=0, ms=60000, source=None):
    """Worker `worker` stalled (fault injection, which needs `[api]
    debug_endpoints = true`) for the block, and released at its end however
    the block ends. The stall is long and ended by the release, so the block
    never races a guessed window: a slow machine only makes it last longer.
    `source`: the local address to send from (127.0.0.2, say) when the block
    leaves 127.0.0.1 no request slot of its own."""
    stall = json.dumps({"worker": worker, "ms": ms}).encode()
    status, text = _debug_post(url, "/debug/stall-worker", stall, source)
    assert status == 200, text
    try:
        yield
    finally:
        status, text = _debug_post(url, "/debug/release-workers", b"", source)
        assert status == 200, text


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Every appliance started, so that one a failing test leaves running (its
# stop() never reached) is killed when the test ends: left behind, it spun a
# worker CPU for the rest of the run. Module fixtures' appliances are made
# before a test's own fixtures (pytest sets up wider scopes first), so they
# sit below `first` and live on.
_STARTED = []


@pytest.fixture(autouse=True)
def _no_appliance_outlives_its_test():
    first = len(_STARTED)
    yield
    for fg in _STARTED[first:]:
        if fg.proc.poll() is None:
            fg.proc.kill()
            fg.proc.wait()
    del _STARTED[first:]


class Flowgate:
    """A running flowgate. `url` is its API base URL."""

    def __init__(self, config_text, workdir, netns=None):
        self.workdir = pathlib.Path(workdir)
        self.config_path = self.workdir / "flowgate.toml"
        self.config_path.write_text(config_text)
        self.output = []
        prefix = ["ip", "netns", "exec", netns] if netns else []
        self.proc = subprocess.Popen(
            prefix + [str(BINARY), "run", "--config", str(self.config_path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        _STARTED.append(self)
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self):
        for line in self.proc.stdout:
            self.output.append(line)

    def text(self):
        # Once the process has exited, its last lines may still sit in the
        # pipe: `proc.wait()` returns before the drain thread has read them.
        # Reading up to EOF first keeps an exit message from being missed.
        if self.proc.poll() is not None:
            self._drainer.join(timeout=10)
        return "".join(self.output)

    def wait_ready(self, url, limit=60):
        deadline = time.time() + limit
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"flowgate exited {self.proc.returncode}:\n{self.text()}")
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"flowgate not ready after {limit} s:\n{self.text()}")

    def wait_output(self, predicate, what, limit=60):
        deadline = time.time() + limit
        while time.time() < deadline:
            if predicate(self.text()):
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"flowgate exited while waiting for {what}:\n{self.text()}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n{self.text()}")

    def final_workers(self):
        """The final per-worker counter lines as dicts of name -> number."""
        final = self.text().split("final counters", 1)[1]
        workers = []
        for line in final.splitlines():
            words = line.split()
            if len(words) > 2 and words[0] == "worker" and "rx" in words:
                fields = {}
                for i, w in enumerate(words[:-1]):
                    nxt = words[i + 1].rstrip("%")
                    if not w[0].isdigit() and nxt.replace(".", "", 1).isdigit():
                        fields[w] = float(nxt) if "." in nxt else int(nxt)
                workers.append(fields)
        return workers

    def stop(self, limit=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(limit)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"flowgate ignored SIGTERM:\n{self.text()}")
        self._drainer.join(timeout=10)
        return self.proc.returncode


def config(api_port, ports, extra="", pairs='[["inside", "outside"]]', workers="[1]", mode="track",
           dataplane_extra=""):
    """A test config: no huge pages, a unique prefix, one worker on CPU 1.

    `ports` is a list of (name, device, interface_id or None); `extra` is
    appended verbatim (more sections), `dataplane_extra` to [dataplane]."""
    prefix = f"fgpy{os.getpid()}x{api_port}"
    text = textwrap.dedent(
        f"""\
        [eal]
        file_prefix = "{prefix}"
        hugepages = "off"
        memory_mb = 512
        log_level = "warning"

        [dataplane]
        main_cpu = 0
        worker_cpus = {workers}
        mode = "{mode}"
        pairs = {pairs}
        stats_period = 1
        mbufs = 16383
        {dataplane_extra}

        [flows]
        capacity = 65536

        [api]
        listen = "127.0.0.1:{api_port}"

        # Authentication stays on in tests: the real clients sign with these.
        [auth]
        [[auth.keys]]
        id = "{ACCESS_KEY}"
        secret = "{SECRET_KEY}"
        [[auth.f5_tokens]]
        token = "{API_TOKEN}"
        """
    )
    if "[mirror]" not in extra:
        # Each appliance keeps its mirror objects to itself, starting empty
        # (never the repository's state/ directory).
        state = pathlib.Path(tempfile.gettempdir()) / "flowgate-py" / f"{prefix}-mirror.json"
        state.parent.mkdir(exist_ok=True)
        state.unlink(missing_ok=True)
        text += f'\n[mirror]\nstate_file = "{state}"\n'
    for name, device, eni in ports:
        text += f'\n[[ports]]\nname = "{name}"\ndevice = "{device}"\n'
        if eni:
            text += f'interface_id = "{eni}"\n'
    return text + "\n" + extra


class Namespaces:
    """Network namespaces and veth pairs made for one test, removed after.
    Traffic never leaves them."""

    def __init__(self):
        self.tag = f"fg{os.getpid() % 100000}"
        self.names = []

    def ns(self, name):
        full = f"{self.tag}-{name}"
        subprocess.run(["ip", "netns", "add", full], check=True)
        subprocess.run(["ip", "-n", full, "link", "set", "lo", "up"], check=True)
        self.names.append(full)
        return full

    def veth(self, ns_a, dev_a, ns_b, dev_b):
        subprocess.run(["ip", "link", "add", dev_a, "netns", ns_a, "type", "veth", "peer", "name", dev_b, "netns", ns_b], check=True)
        for ns, dev in ((ns_a, dev_a), (ns_b, dev_b)):
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
            # No IPv6 autoconfiguration chatter on the test links.
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"], check=False)

    def run(self, ns, *cmd, **kw):
        return subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True, **kw)

    def cleanup(self):
        for n in self.names:
            subprocess.run(["ip", "netns", "del", n], check=False)


@pytest.fixture
def netns():
    n = Namespaces()
    yield n
    n.cleanup()


@pytest.fixture
def tmpdir_path():
    with tempfile.TemporaryDirectory(prefix="flowgate-py-") as d:
        yield pathlib.Path(d)


@pytest.fixture
def start_flowgate(tmpdir_path):
    """Starts flowgate instances; stops them all at the end of the test.

    Usage: fg = start_flowgate(ports=[...], extra="...") -> (Flowgate, url)."""
    running = []

    def start(ports=None, extra="", **kw):
        port = free_port()
        if ports is None:
            ports = [
                ("inside", f"net_pcap0,rx_pcap={SAMPLE},infinite_rx=1", "eni-0inside0000000001"),
                ("outside", "net_null0,no-rx=1", "eni-0outside000000001"),
            ]
        fg = Flowgate(config(port, ports, extra, **kw), tmpdir_path)
        running.append(fg)
        url = f"http://127.0.0.1:{port}"
        fg.wait_ready(url)
        return fg, url

    yield start
    for fg in running:
        fg.stop()
