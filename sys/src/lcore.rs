//! Running work on EAL worker lcores.
//!
//! Invariant: a launched closure always finishes before EAL is cleaned up:
//! [`LcoreTask`] holds the EAL guard and waits for the lcore when dropped
//! (a task forgotten instead keeps its guard, so cleanup never runs).

use std::os::raw::{c_int, c_void};
use std::sync::Arc;

use crate::eal::EalGuard;
use crate::{ffi, DpdkError, Eal};

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

/// The lcore the calling thread runs as (`u32::MAX` for non-EAL threads).
pub fn current() -> u32 {
    // SAFETY: reads the calling thread's per-lcore variable.
    unsafe { ffi::fg_lcore_id() }
}

/// The NUMA socket of the calling thread's CPU.
pub fn socket_id() -> u32 {
    // SAFETY: plain query.
    unsafe { ffi::rte_socket_id() }
}

/// Enabled worker lcores (every enabled lcore but the main one), in order.
pub fn workers(_eal: &Eal) -> Vec<u32> {
    // SAFETY: EAL is initialised; these are plain queries.
    let main = unsafe { ffi::rte_get_main_lcore() };
    (0..ffi::RTE_MAX_LCORE)
        // SAFETY: as above; any id below RTE_MAX_LCORE may be asked about.
        .filter(|&l| l != main && unsafe { ffi::rte_lcore_is_enabled(l) } != 0)
        .collect()
}

/// A closure running on a worker lcore.
#[derive(Debug)]
pub struct LcoreTask {
    lcore: u32,
    done: bool,
    _eal: Arc<EalGuard>,
}

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: arg is the Box<Job> leaked by launch, handed to exactly one lcore.
    let job: Box<Job> = unsafe { Box::from_raw(arg.cast::<Job>()) };
    // Unwinding into C is undefined behaviour: stop the process instead.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
        Ok(code) => code,
        Err(_) => {
            eprintln!("flowgate: a worker lcore panicked; aborting");
            std::process::abort();
        }
    }
}

/// Runs `f` on worker lcore `lcore`, from the main lcore; anything else is
/// refused. DPDK itself checks neither: it indexes its lcore table with
/// any id, and two threads launching on one lcore could both hand it a
/// job (only one thread is the main lcore, so launches never race).
pub fn launch<F>(eal: &Eal, lcore: u32, f: F) -> Result<LcoreTask, DpdkError>
where
    F: FnOnce() -> i32 + Send + 'static,
{
    let op = format!("rte_eal_remote_launch(lcore {lcore})");
    // SAFETY: EAL is initialised (eal); a plain query.
    if current() != unsafe { ffi::rte_get_main_lcore() } {
        return Err(DpdkError::other(op, "not called from the main lcore"));
    }
    if !workers(eal).contains(&lcore) {
        return Err(DpdkError::other(op, "not an enabled worker lcore"));
    }
    let job: Box<Job> = Box::new(Box::new(f));
    let arg = Box::into_raw(job).cast::<c_void>();
    // SAFETY: trampoline has the lcore_function_t signature and takes back
    // ownership of arg; on failure the lcore never runs it and we free it.
    let ret = unsafe { ffi::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
    if ret != 0 {
        // SAFETY: the launch failed, so arg was not handed to any lcore.
        drop(unsafe { Box::from_raw(arg.cast::<Job>()) });
        return Err(DpdkError::from_ret(op, ret));
    }
    Ok(LcoreTask {
        lcore,
        done: false,
        _eal: eal.guard.clone(),
    })
}

impl LcoreTask {
    /// The lcore it runs on.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Waits for the closure to return and gives its return value.
    pub fn join(mut self) -> i32 {
        self.wait()
    }

    fn wait(&mut self) -> i32 {
        self.done = true;
        // SAFETY: called from the main lcore for a lcore we launched.
        unsafe { ffi::rte_eal_wait_lcore(self.lcore) }
    }
}

impl Drop for LcoreTask {
    fn drop(&mut self) {
        if !self.done {
            self.wait();
        }
    }
}
