//! The DPDK environment abstraction layer: one per process.
//!
//! Invariant: `rte_eal_init` runs at most once per process (a second
//! [`Eal::init`] fails), and `rte_eal_cleanup` runs only after every object
//! that depends on EAL — mempools, ports, queue handles, launched lcores —
//! is gone, because each of them holds a clone of the guard whose drop does
//! the cleanup. A mempool dropped while mbufs are still out (an mbuf holds
//! no guard of its own) keeps its guard for good, so EAL is never cleaned
//! up under them.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Arc;

use crate::{ffi, DpdkError};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// DPDK's log stream: stdout, line buffered (set before EAL init so that
/// nothing DPDK prints lands on stderr, which is kept for flowgate's errors).
static LOG_STREAM: AtomicPtr<libc::FILE> = AtomicPtr::new(std::ptr::null_mut());

fn route_logs_to_stdout() {
    if !LOG_STREAM.load(Ordering::Acquire).is_null() {
        return;
    }
    // SAFETY: dup on fd 1; the shim's stream takes the copy and, like the
    // FILE it returns, lives for the rest of the process (DPDK keeps the
    // pointer), so neither is ever closed.
    unsafe {
        let fd = libc::dup(1);
        if fd < 0 {
            return;
        }
        let f = ffi::fg_log_stream_open(fd);
        if f.is_null() {
            libc::close(fd);
            return;
        }
        LOG_STREAM.store(f.cast(), Ordering::Release);
        ffi::rte_openlog_stream(f);
    }
}

/// Runs `f` with DPDK's log lines captured instead of printed; returns its
/// result and what DPDK logged meanwhile (other threads' lines included).
/// The stream DPDK writes to is never swapped or closed: the shim's stream
/// switches between stdout and a buffer under its own lock.
fn capture_logs<R>(f: impl FnOnce() -> R) -> (R, String) {
    let stream = LOG_STREAM.load(Ordering::Acquire);
    if stream.is_null() {
        return (f(), String::new());
    }
    // SAFETY: takes the shim's lock; no pointer is involved.
    unsafe { ffi::fg_log_capture_begin() };
    let r = f();
    let mut len: usize = 0;
    // SAFETY: stream is the shim's log FILE, never closed; the buffer the
    // shim hands back is `len` bytes from malloc, now ours, freed here.
    let text = unsafe {
        let buf = ffi::fg_log_capture_end(stream.cast(), &mut len);
        if buf.is_null() {
            String::new()
        } else {
            let t = String::from_utf8_lossy(std::slice::from_raw_parts(buf.cast::<u8>(), len))
                .into_owned();
            libc::free(buf.cast());
            t
        }
    };
    (r, text)
}

/// Runs `f` with file descriptor 2 pointed at an anonymous file; returns
/// its result and what was written there. For `rte_eal_init` only, while
/// no other thread of ours exists: EAL writes an alert straight to stderr
/// beside the line it logs, and glibc's getopt writes its complaint there
/// too, where flowgate keeps one line per error.
fn capture_stderr<R>(f: impl FnOnce() -> R) -> (R, String) {
    use std::io::{Read, Seek};
    use std::os::fd::{AsFd, AsRawFd, FromRawFd};
    // SAFETY: memfd_create takes a NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"eal-stderr".as_ptr(), 0) };
    if fd < 0 {
        return (f(), String::new());
    }
    // SAFETY: `fd` was just opened and nothing else holds it; the File
    // closes it.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    let Ok(saved) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return (f(), String::new());
    };
    // SAFETY: dup2 on two open fds: fd 2 names the file, and the
    // terminal's stderr stays open in `saved`.
    if unsafe { libc::dup2(file.as_raw_fd(), 2) } < 0 {
        return (f(), String::new());
    }
    let r = f();
    // SAFETY: as above: fd 2 names the saved stderr again.
    unsafe { libc::dup2(saved.as_raw_fd(), 2) };
    let mut text = Vec::new();
    let _ = file.rewind().and_then(|()| file.read_to_end(&mut text));
    (r, String::from_utf8_lossy(&text).into_owned())
}

/// What DPDK logged, as one line: its non-empty lines joined by "; ";
/// `None` if it logged nothing.
fn one_line<'a>(lines: impl Iterator<Item = &'a str>) -> Option<String> {
    let lines: Vec<&str> = lines.map(str::trim).filter(|l| !l.is_empty()).collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

/// Calls `rte_eal_cleanup` when the last holder is dropped, then removes
/// this process's runtime directory (`/var/run/dpdk/<file prefix>`), which
/// DPDK leaves behind with megabytes of memory maps in it: one per prefix,
/// so a test suite with a prefix per appliance would otherwise fill the
/// disk run after run.
#[derive(Debug)]
pub(crate) struct EalGuard {
    runtime_dir: String,
}

impl Drop for EalGuard {
    fn drop(&mut self) {
        // SAFETY: every mempool, port and lcore task holds an Arc<EalGuard>,
        // so this runs after all of them are released; EAL was initialised
        // (the guard only exists after a successful rte_eal_init).
        unsafe {
            ffi::rte_eal_cleanup();
        }
        // No other process uses it now: a second primary with this prefix
        // is refused by EAL, and a secondary (dpdk-proc-info) could only
        // attach while this one ran.
        if !self.runtime_dir.is_empty() {
            let _ = std::fs::remove_dir_all(&self.runtime_dir);
        }
    }
}

/// An initialised EAL. Dropping it (and everything made from it) cleans up.
#[derive(Debug, Clone)]
pub struct Eal {
    pub(crate) guard: Arc<EalGuard>,
}

/// Facts about the running EAL, for start-up logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EalInfo {
    /// Whether EAL runs on huge pages (false with `--no-huge`).
    pub hugepages: bool,
    /// The runtime directory (holds the telemetry socket).
    pub runtime_dir: String,
    /// The main lcore (the thread that called [`Eal::init`]).
    pub main_lcore: u32,
    /// Number of enabled lcores, main included.
    pub lcore_count: u32,
    /// The DPDK version string, e.g. "DPDK 22.11.11".
    pub version: String,
}

/// The release of a DPDK version, `22.11` of `22.11.11` or of
/// `DPDK 22.11.11`: what the ABI and the mbuf layout go by.
fn release(version: &str) -> &str {
    let v = version.strip_prefix("DPDK ").unwrap_or(version);
    v.match_indices('.').nth(1).map_or(v, |(i, _)| &v[..i])
}

impl Eal {
    /// Initialises EAL from an argument list (without the program name).
    /// Fails if EAL was initialised before in this process.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal, DpdkError> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::other(
                "rte_eal_init",
                "EAL is already initialised in this process",
            ));
        }
        let mut owned: Vec<CString> = vec![CString::new("flowgate").expect("no NUL")];
        for a in args {
            owned.push(CString::new(a.as_ref()).map_err(|_| {
                DpdkError::other(
                    "rte_eal_init",
                    format!("argument {:?} contains NUL", a.as_ref()),
                )
            })?);
        }
        // EAL permutes argv and may keep pointers into it for the life of the
        // process, so the strings and the array are deliberately leaked.
        let strings: &'static [CString] = Box::leak(owned.into_boxed_slice());
        let argv: &'static mut [*mut c_char] = Box::leak(
            strings
                .iter()
                .map(|s| s.as_ptr() as *mut c_char)
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let argc = argv.len() as c_int;
        route_logs_to_stdout();
        // DPDK's lines are captured so that a failure can say what EAL
        // refused in one line, and printed as they were when it succeeds.
        let (((ret, mut e), logged), alerts) = capture_stderr(|| {
            capture_logs(|| {
                // SAFETY: argv points to argc valid NUL-terminated strings
                // that live for the rest of the process; this is the only
                // rte_eal_init call (guarded by INITIALISED).
                let ret = unsafe { ffi::rte_eal_init(argc, argv.as_mut_ptr()) };
                // Read before anything else can call into DPDK.
                (ret, DpdkError::from_rte_errno("rte_eal_init"))
            })
        });
        if ret < 0 {
            // EAL's alert repeats a line it logged; getopt's complaint is
            // only on stderr.
            let alerts = alerts.lines().filter(|l| !l.starts_with("EAL: FATAL"));
            if let Some(said) = one_line(logged.lines().chain(alerts)) {
                e.message = format!("{} ({said})", e.message);
            }
            return Err(e);
        }
        print!("{logged}");
        eprint!("{alerts}");
        let eal = Eal {
            guard: Arc::new(EalGuard {
                // SAFETY: EAL is initialised; the string is EAL's own, static.
                runtime_dir: unsafe { CStr::from_ptr(ffi::rte_eal_get_runtime_dir()) }
                    .to_string_lossy()
                    .into_owned(),
            }),
        };
        // The build pins the release (build.rs), but the libraries' soname
        // (23) is shared by 22.11, 23.03 and 23.07: a binary moved to
        // another machine would start on them unchecked. (Returning drops
        // `eal`, which cleans EAL up.)
        let running = eal.info().version;
        if release(&running) != release(crate::DPDK_VERSION) {
            return Err(DpdkError::other(
                "rte_eal_init",
                format!(
                    "running on {running}; flowgate is built for DPDK {}",
                    crate::DPDK_VERSION
                ),
            ));
        }
        Ok(eal)
    }

    /// Facts about this EAL.
    pub fn info(&self) -> EalInfo {
        // SAFETY: all of these read state EAL set during init, which succeeded
        // (self exists); the returned C strings are static.
        unsafe {
            EalInfo {
                hugepages: ffi::rte_eal_has_hugepages() != 0,
                runtime_dir: CStr::from_ptr(ffi::rte_eal_get_runtime_dir())
                    .to_string_lossy()
                    .into_owned(),
                main_lcore: ffi::rte_get_main_lcore(),
                lcore_count: ffi::rte_lcore_count(),
                version: CStr::from_ptr(ffi::rte_version())
                    .to_string_lossy()
                    .into_owned(),
            }
        }
    }

    /// Sets DPDK's global log level (1 emergency .. 8 debug).
    pub fn set_log_level(&self, level: u32) {
        // SAFETY: plain setter of a global EAL variable.
        unsafe { ffi::rte_log_set_global_level(level) }
    }

    /// DPDK's global log level.
    pub fn log_level(&self) -> u32 {
        // SAFETY: plain getter.
        unsafe { ffi::rte_log_get_global_level() }
    }

    /// Probes a device from its devargs (`net_pcap0,rx_pcap=x.pcap`, a PCI
    /// address, ...) and returns the port it created. On failure the error
    /// message is what DPDK logged about it (its error codes alone say little).
    ///
    /// What other threads log while it runs lands in that message too.
    /// Probes from several threads run one at a time: `rte_dev_probe`
    /// inserts into EAL's device list without a lock of its own, and each
    /// probe's log capture would otherwise take the other's lines.
    pub fn probe_port(&self, devargs: &str) -> Result<crate::PortId, DpdkError> {
        static PROBING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        // A panic while probing leaves DPDK's list as consistent as a
        // failed probe does, so a poisoned lock is still usable.
        let _one_at_a_time = PROBING.lock().unwrap_or_else(|e| e.into_inner());
        let (r, logged) = capture_logs(|| crate::port::probe(devargs));
        r.map_err(|mut e| {
            if let Some(said) = one_line(logged.lines()) {
                e.message = said;
            }
            e
        })
    }
}

#[cfg(test)]
mod tests {
    use super::release;

    #[test]
    fn a_release_is_the_first_two_parts_of_a_version() {
        assert_eq!(release("DPDK 22.11.11"), "22.11");
        assert_eq!(release("22.11.1"), "22.11");
        assert_eq!(release("DPDK 23.07.0-rc1"), "23.07");
        assert_eq!(release("22.11"), "22.11");
        assert_ne!(release("DPDK 22.11.4"), release("23.03.0"));
    }
}
