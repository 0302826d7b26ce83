"""Harness for API tests: runs the real flowgate binary on DPDK virtual
devices and gives tests its API address.

Each appliance gets its own EAL file prefix, API port and temporary
directory; it runs without huge pages (tests run side by side) and is
stopped with SIGTERM at the end of the test (or module, for shared ones).
"""

import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import textwrap
import threading
import time
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BINARY = REPO / "target" / "release" / "flowgate"
SAMPLE = REPO / "config" / "sample.pcap"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Flowgate:
    """A running flowgate. `url` is its API base URL."""

    def __init__(self, config_text, workdir):
        self.workdir = pathlib.Path(workdir)
        self.config_path = self.workdir / "flowgate.toml"
        self.config_path.write_text(config_text)
        self.output = []
        self.proc = subprocess.Popen(
            [str(BINARY), "run", "--config", str(self.config_path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stdout:
            self.output.append(line)

    def text(self):
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

    def stop(self, limit=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(limit)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"flowgate ignored SIGTERM:\n{self.text()}")
        return self.proc.returncode


def config(api_port, ports, extra="", pairs='[["inside", "outside"]]', workers="[1]", mode="track"):
    """A test config: no huge pages, a unique prefix, one worker on CPU 1.

    `ports` is a list of (name, device, interface_id or None); `extra` is
    appended verbatim (more sections)."""
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

        [flows]
        capacity = 65536

        [api]
        listen = "127.0.0.1:{api_port}"
        """
    )
    for name, device, eni in ports:
        text += f'\n[[ports]]\nname = "{name}"\ndevice = "{device}"\n'
        if eni:
            text += f'interface_id = "{eni}"\n'
    return text + "\n" + extra


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
