//! The DPDK environment abstraction layer: one per process.
//!
//! Invariant: `rte_eal_init` runs at most once per process (a second
//! [`Eal::init`] fails), and `rte_eal_cleanup` runs only after every object
//! that depends on EAL — mempools, ports, launched lcores — is gone, because
//! each of them holds a clone of the guard whose drop does the cleanup.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::{ffi, DpdkError};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Calls `rte_eal_cleanup` when the last holder is dropped.
#[derive(Debug)]
pub(crate) struct EalGuard(());

impl Drop for EalGuard {
    fn drop(&mut self) {
        // SAFETY: every mempool, port and lcore task holds an Arc<EalGuard>,
        // so this runs after all of them are released; EAL was initialised
        // (the guard only exists after a successful rte_eal_init).
        unsafe {
            ffi::rte_eal_cleanup();
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
        // SAFETY: argv points to argc valid NUL-terminated strings that live
        // for the rest of the process; this is the only rte_eal_init call
        // (guarded by INITIALISED).
        let ret = unsafe { ffi::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(DpdkError::from_rte_errno("rte_eal_init"));
        }
        Ok(Eal {
            guard: Arc::new(EalGuard(())),
        })
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

    /// Probes a device from its devargs (`net_pcap0,rx_pcap=x.pcap`, a PCI
    /// address, ...) and returns the port it created.
    pub fn probe_port(&self, devargs: &str) -> Result<crate::PortId, DpdkError> {
        crate::port::probe(devargs)
    }
}
