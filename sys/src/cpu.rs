//! CPU helpers for the hot path: timestamp counter, prefetch, CRC32C and
//! the 8-lane compares of flow-table buckets and flow-operation scans.
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

/// Per-lane bounds for [`lanes_within`]: lane j of a key passes when
/// `lo[j] <= key[j] & and[j] <= hi[j]` (unsigned). An exact lane has
/// `lo == hi`; a lane that does not matter has `and == 0` and `lo == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C, align(16))]
pub struct LaneBounds {
    /// Bits of each lane that are tested.
    pub and: [u16; 8],
    /// Lowest passing value of each (masked) lane.
    pub lo: [u16; 8],
    /// Highest passing value of each (masked) lane.
    pub hi: [u16; 8],
}

/// Something that is eight 16-bit lanes (a key [`lanes_within`] tests).
pub trait Lanes16 {
    /// The lanes.
    fn lanes(&self) -> &[u16; 8];
}

impl Lanes16 for [u16; 8] {
    #[inline(always)]
    fn lanes(&self) -> &[u16; 8] {
        self
    }
}

/// Bit i of the result is set when every lane of `keys[i]` is within
/// `b`: mask, prefix and range tests of a whole 8-lane key in five SSE2
/// operations. At most the first 64 keys are tested.
#[inline]
pub fn lanes_within<K: Lanes16>(keys: &[K], b: &LaneBounds) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::*;
        // SAFETY: SSE2 is part of x86_64; every load reads one [u16; 8]
        // (16 bytes) through a reference, and _mm_loadu_si128 has no
        // alignment requirement.
        unsafe {
            let and = _mm_loadu_si128(b.and.as_ptr().cast());
            let lo = _mm_loadu_si128(b.lo.as_ptr().cast());
            let hi = _mm_loadu_si128(b.hi.as_ptr().cast());
            let zero = _mm_setzero_si128();
            let mut m = 0u64;
            for (i, k) in keys.iter().take(64).enumerate() {
                let v = _mm_and_si128(_mm_loadu_si128(k.lanes().as_ptr().cast()), and);
                // Saturating differences are zero exactly when lo <= v <= hi.
                let out = _mm_or_si128(_mm_subs_epu16(lo, v), _mm_subs_epu16(v, hi));
                let inside = _mm_movemask_epi8(_mm_cmpeq_epi8(out, zero)) == 0xffff;
                m |= (inside as u64) << i;
            }
            m
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        lanes_within_scalar(keys, b)
    }
}

/// Portable twin of [`lanes_within`].
pub fn lanes_within_scalar<K: Lanes16>(keys: &[K], b: &LaneBounds) -> u64 {
    keys.iter().take(64).enumerate().fold(0, |m, (i, k)| {
        let inside = k.lanes().iter().enumerate().all(|(j, &l)| {
            let v = l & b.and[j];
            b.lo[j] <= v && v <= b.hi[j]
        });
        m | (inside as u64) << i
    })
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
        // SAFETY: fg_prefetch0 issues a prefetch hint, which never faults.
        unsafe { crate::ffi::fg_prefetch0(std::ptr::null()) };
    }

    #[test]
    fn lane_bounds_twins_agree() {
        let mut x: u64 = 11;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2_000 {
            // Few distinct values (and the lane extremes) so that every
            // outcome of every lane is frequent.
            let pick = |r: u64| [0u16, 1, 2, 3, 0x7fff, 0x8000, 0xfffe, 0xffff][(r & 7) as usize];
            let keys: Vec<[u16; 8]> = (0..64)
                .map(|_| {
                    let r = next();
                    std::array::from_fn(|j| pick(r >> (j * 3)))
                })
                .collect();
            let (r1, r2, r3) = (next(), next(), next());
            let b = LaneBounds {
                and: std::array::from_fn(|j| {
                    if (r1 >> j) & 1 == 0 {
                        0xffff
                    } else {
                        pick(r1 >> (8 + j * 3))
                    }
                }),
                lo: std::array::from_fn(|j| pick(r2 >> (j * 3))),
                hi: std::array::from_fn(|j| pick(r3 >> (j * 3))),
            };
            for n in [0, 1, 7, 64] {
                assert_eq!(
                    lanes_within(&keys[..n], &b),
                    lanes_within_scalar(&keys[..n], &b),
                    "{b:?}"
                );
            }
        }
        let any = LaneBounds {
            and: [0; 8],
            lo: [0; 8],
            hi: [0; 8],
        };
        assert_eq!(lanes_within(&[[9u16; 8]; 64], &any), u64::MAX);
        let mut range = any;
        range.and[3] = 0xffff;
        (range.lo[3], range.hi[3]) = (10, 20);
        let keys = [[0, 0, 0, 9], [0, 0, 0, 10], [0, 0, 0, 20], [0, 0, 0, 21u16]].map(|k| {
            let mut l = [0u16; 8];
            l[..4].copy_from_slice(&k);
            l
        });
        assert_eq!(lanes_within(&keys, &range), 0b0110);
    }
}
