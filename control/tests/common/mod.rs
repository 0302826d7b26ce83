//! Harness for tests that run the real `flowgate` binary on DPDK virtual
//! devices: temporary directories, configs with a unique EAL file prefix and
//! API port, the child process with its output captured (and runs that must
//! exit by themselves bounded by a deadline), pcap helpers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flowgate"))
}

/// The repository root (tests run from the crate directory).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "flowgate-test-{tag}-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The common head of a test config: no huge pages (tests run side by side),
/// a unique file prefix, one worker on CPU 1, control on CPU 0.
pub fn eal_head(tag: &str, api_port: u16, extra_dataplane: &str) -> String {
    format!(
        r#"[eal]
file_prefix = "fgt-{tag}-{pid}-{n}"
hugepages = "off"
memory_mb = 512
log_level = "warning"

[dataplane]
main_cpu = 0
worker_cpus = [1]
stats_period = 1
mbufs = 16383
{extra_dataplane}

[api]
listen = "127.0.0.1:{api_port}"

[auth]
[[auth.keys]]
id = "test"
secret = "test"
[[auth.f5_tokens]]
token = "test-token"
"#,
        pid = std::process::id(),
        n = unique()
    )
}

/// A running flowgate with its stdout and stderr collected.
pub struct Flowgate {
    pub child: Child,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
    pub api_port: u16,
    /// The threads reading stdout and stderr; each ends at its pipe's end.
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn collect(r: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        // Bytes, not `read_line`: a line that is not UTF-8 must not stop the
        // reader (the child would then block on a full pipe).
        let mut r = BufReader::new(r);
        let mut line = Vec::new();
        while r
            .read_until(b'\n', &mut line)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            into.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&line));
            line.clear();
        }
    })
}

/// How long a run that should exit by itself (a refused config, a config
/// check, a capture generator) may take: they finish in a second or two.
pub const EXIT_LIMIT: Duration = Duration::from_secs(60);

/// Runs a command that is expected to exit by itself and returns its status
/// and output, like `Command::output`, but bounded: if it has not exited
/// after `EXIT_LIMIT` (a config check that stopped refusing would start the
/// appliance and run on), it is killed and the test fails with what it
/// printed, instead of hanging.
pub fn run_to_exit(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    let mut p = Flowgate::spawn(cmd, 0);
    match p.wait_exit(EXIT_LIMIT) {
        Some(status) => Output {
            status,
            stdout: p.stdout().into_bytes(),
            stderr: p.stderr().into_bytes(),
        },
        None => {
            let _ = p.child.kill();
            // Reaps it and lets the readers take the last of its output.
            let st = match p.wait_exit(Duration::from_secs(10)) {
                Some(st) => st.to_string(),
                None => "not reaped".into(),
            };
            panic!(
                "{what} did not exit within {} s; killed it ({st})\nstdout:\n{}\nstderr:\n{}",
                EXIT_LIMIT.as_secs(),
                p.stdout(),
                p.stderr()
            );
        }
    }
}

impl Flowgate {
    pub fn start(config: &Path, api_port: u16) -> Flowgate {
        Flowgate::spawn(
            Command::new(bin())
                .args(["run", "--config"])
                .arg(config)
                .current_dir(repo()),
            api_port,
        )
    }

    /// Starts `cmd` with its stdout and stderr collected.
    pub fn spawn(cmd: &mut Command, api_port: u16) -> Flowgate {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        Flowgate {
            child,
            stdout,
            stderr,
            api_port,
            readers,
        }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `pred(stdout)` holds; panics with the output after `limit`.
    pub fn wait_stdout(&mut self, limit: Duration, what: &str, pred: impl Fn(&str) -> bool) {
        let start = Instant::now();
        loop {
            if pred(&self.stdout()) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "flowgate exited ({st}) while waiting for {what}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            if start.elapsed() > limit {
                panic!(
                    "timed out waiting for {what}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for `GET /healthz` to answer 200.
    pub fn wait_ready(&mut self) {
        let port = self.api_port;
        let start = Instant::now();
        loop {
            if let Some((200, _)) = http_get(port, "/healthz") {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "flowgate exited ({st}) before becoming ready\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "not ready after 60 s\n{}\n{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Waits for exit, up to `limit`; returns the status, or None on timeout.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                // The exit can be seen before the readers have read the last
                // lines: wait for them to reach the pipes' ends (bounded, in
                // case something else still holds a pipe open).
                let drained = Instant::now();
                while self.readers.iter().any(|r| !r.is_finished())
                    && drained.elapsed() < Duration::from_secs(10)
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return Some(st);
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then wait (killing it if it hangs); returns the status.
    pub fn stop(mut self) -> (ExitStatus, String, String) {
        self.signal("TERM");
        let st = match self.wait_exit(Duration::from_secs(30)) {
            Some(st) => st,
            None => {
                let _ = self.child.kill();
                panic!(
                    "flowgate did not exit on SIGTERM\n{}\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
        };
        (st, self.stdout(), self.stderr())
    }
}

impl Drop for Flowgate {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A bare HTTP/1.1 GET; returns (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http(port, "GET", path, &[], b"")
}

/// A bare HTTP/1.1 request with `Connection: close`; returns (status, body).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok()?;
    let text = String::from_utf8_lossy(&resp).to_string();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Writes frames to a classic pcap file.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let f = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::with_header(
        f,
        PcapHeader {
            snaplen: 65535,
            ..Default::default()
        },
    )
    .unwrap();
    for (i, fr) in frames.iter().enumerate() {
        w.write_packet(&PcapPacket::new(
            Duration::from_micros(i as u64),
            fr.len() as u32,
            fr,
        ))
        .unwrap();
    }
}

/// Reads every frame of a pcap file.
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    use pcap_file::pcap::PcapReader;
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = PcapReader::new(f).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.unwrap().data.into_owned());
    }
    out
}

/// Distinct frames of varied sizes (60..1514 bytes) with a recognisable payload.
pub fn frames(tag: u8, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let len = 60 + (i * 97) % (1514 - 60);
            let mut f = vec![0u8; len];
            f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, tag]);
            f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 1, tag]);
            f[12..14].copy_from_slice(&[0x88, 0xb5]);
            f[14..18].copy_from_slice(&(i as u32).to_be_bytes());
            for (j, b) in f[18..].iter_mut().enumerate() {
                *b = (j as u8).wrapping_mul(31).wrapping_add(tag);
            }
            f
        })
        .collect()
}
