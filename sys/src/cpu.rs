//! CPU helpers for the hot path: timestamp counter, prefetch, CRC32C and
//! the 8-lane signature compare of flow-table buckets.
//!
//! `tsc` and `prefetch0` are the Rust-side equivalents of DPDK's `rte_rdtsc`
//! and `rte_prefetch0` and compile to one instruction; the shim's
//! `fg_rdtsc` / `fg_prefetch0` exist so the tests can check both agree.
//! Every SIMD helper has a portable `*_scalar` twin and a test that they agree.

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

/// Hints the CPU to fetch the cache line holding `p` close to the core
/// while disturbing the outer caches as little as it can: for data read
/// once (a table scan) that must not push the hot flows out. Never faults.
#[inline(always)]
pub fn prefetch_nta<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: prefetch is a hint; the CPU ignores invalid addresses and it
        // has no architectural effect on memory.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_NTA }>(p.cast())
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        prefetch0(p)
    }
}

/// One CRC32C (Castagnoli) step over 8 bytes, little-endian, without the
/// initial/final inversion (callers chain steps and invert themselves).
#[inline(always)]
pub fn crc32c_u64(crc: u32, v: u64) -> u32 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse4.2"))]
    {
        // SAFETY: the crate is compiled with SSE4.2 enabled (cfg above), so
        // the instruction exists; it has no memory operands.
        unsafe { core::arch::x86_64::_mm_crc32_u64(crc as u64, v) as u32 }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse4.2")))]
    {
        crc32c_scalar(crc, &v.to_le_bytes())
    }
}

/// One CRC32C step over 4 bytes; see [`crc32c_u64`].
#[inline(always)]
pub fn crc32c_u32(crc: u32, v: u32) -> u32 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse4.2"))]
    {
        // SAFETY: as in crc32c_u64.
        unsafe { core::arch::x86_64::_mm_crc32_u32(crc, v) }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse4.2")))]
    {
        crc32c_scalar(crc, &v.to_le_bytes())
    }
}

/// Bitwise CRC32C over `bytes`: the portable twin of the two functions above.
pub fn crc32c_scalar(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Bit i of the result is set when `lanes[i] == needle`: one SSE2 compare
/// tests a whole 8-slot bucket of signatures.
#[inline(always)]
pub fn eq_mask_u16x8(lanes: &[u16; 8], needle: u16) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::*;
        // SAFETY: SSE2 is part of x86_64; lanes is 16 readable bytes and
        // _mm_loadu_si128 has no alignment requirement.
        unsafe {
            let v = _mm_loadu_si128(lanes.as_ptr().cast());
            let n = _mm_set1_epi16(needle as i16);
            let eq = _mm_cmpeq_epi16(v, n);
            // Lanes are 0 or -1: saturating them to bytes keeps one mask
            // bit per lane, in order, in the low 8 bits.
            (_mm_movemask_epi8(_mm_packs_epi16(eq, eq)) & 0xff) as u32
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        eq_mask_u16x8_scalar(lanes, needle)
    }
}

/// Portable twin of [`eq_mask_u16x8`].
pub fn eq_mask_u16x8_scalar(lanes: &[u16; 8], needle: u16) -> u32 {
    lanes
        .iter()
        .enumerate()
        .fold(0, |m, (i, &l)| if l == needle { m | 1 << i } else { m })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_answer_and_twins_agree() {
        assert_eq!(!crc32c_scalar(!0, b"123456789"), 0xe306_9283);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let c = x as u32;
            assert_eq!(crc32c_u64(c, x), crc32c_scalar(c, &x.to_le_bytes()));
            assert_eq!(
                crc32c_u32(c, (x >> 7) as u32),
                crc32c_scalar(c, &((x >> 7) as u32).to_le_bytes())
            );
        }
    }

    #[test]
    fn signature_compare_twins_agree() {
        let mut x: u64 = 7;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Small value range so matches are frequent.
            let lanes: [u16; 8] = std::array::from_fn(|i| ((x >> (i * 3)) & 3) as u16);
            let needle = ((x >> 40) & 3) as u16;
            assert_eq!(
                eq_mask_u16x8(&lanes, needle),
                eq_mask_u16x8_scalar(&lanes, needle)
            );
        }
        assert_eq!(eq_mask_u16x8(&[5; 8], 5), 0xff);
        assert_eq!(eq_mask_u16x8(&[0, 0, 0, 9, 0, 0, 0, 9], 9), 0b1000_1000);
    }

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
        prefetch_nta(x.as_ptr());
        prefetch_nta(std::ptr::null::<u8>());
        prefetch_nta(usize::MAX as *const u8);
        // SAFETY: fg_prefetch0 issues a prefetch hint, which never faults.
        unsafe { crate::ffi::fg_prefetch0(std::ptr::null()) };
    }
}
