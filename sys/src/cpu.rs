//! CPU helpers for the hot path: timestamp counter and prefetch.
//!
//! These are the Rust-side equivalents of DPDK's `rte_rdtsc` and
//! `rte_prefetch0`; they compile to one instruction. The shim's `fg_rdtsc` /
//! `fg_prefetch0` exist so the tests can check both agree.

/// Reads the time-stamp counter.
#[inline(always)]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no memory effects and is available on every x86_64 CPU.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: fg_rdtsc only reads the CPU's cycle counter.
        unsafe { crate::ffi::fg_rdtsc() }
    }
}

/// The TSC frequency EAL measured at start, in Hz. Requires an initialised EAL.
pub fn tsc_hz() -> u64 {
    // SAFETY: rte_get_tsc_hz reads a value EAL set at init (0 before).
    unsafe { crate::ffi::rte_get_tsc_hz() }
}

/// Hints the CPU to fetch the cache line holding `p` into all cache levels.
/// Never faults, whatever `p` is.
#[inline(always)]
pub fn prefetch0<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: prefetch is a hint; the CPU ignores invalid addresses and it
        // has no architectural effect on memory.
        unsafe { core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: as above, the prefetch never dereferences p.
        unsafe { crate::ffi::fg_prefetch0(p.cast()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_tsc_and_shim_tsc_move_together() {
        let a = tsc();
        // SAFETY: fg_rdtsc reads the cycle counter, nothing else.
        let b = unsafe { crate::ffi::fg_rdtsc() };
        let c = tsc();
        assert!(a <= b && b <= c, "{a} {b} {c}");
    }

    #[test]
    fn prefetch_of_any_address_is_harmless() {
        let x = [0u8; 64];
        prefetch0(x.as_ptr());
        prefetch0(std::ptr::null::<u8>());
        prefetch0(usize::MAX as *const u8);
        // SAFETY: fg_prefetch0 issues a prefetch hint, which never faults.
        unsafe { crate::ffi::fg_prefetch0(std::ptr::null()) };
    }
}
