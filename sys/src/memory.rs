//! Large, zeroed, pre-faulted tables for the hot path.
//!
//! Flow tables are hundreds of MiB. They are mapped once at start, backed by
//! transparent huge pages where the kernel allows (fewer TLB misses), and
//! faulted in up front so the packet path never takes a page fault.
//!
//! Invariant: the mapping lives exactly as long as the [`HugeArray`], and
//! holds `len` valid `T`s because `T: Zeroable` (all-zero bytes are a valid T).

use std::ptr::NonNull;

/// Types for which the all-zero bit pattern is a valid value.
///
/// # Safety
/// Implementors must be valid when every byte is zero, and contain no
/// references or other non-nullable pointers.
pub unsafe trait Zeroable: Sized {}

// SAFETY: zero is a valid value of every integer type.
unsafe impl Zeroable for u8 {}
// SAFETY: as above.
unsafe impl Zeroable for u16 {}
// SAFETY: as above.
unsafe impl Zeroable for u32 {}
// SAFETY: as above.
unsafe impl Zeroable for u64 {}
// SAFETY: as above.
unsafe impl Zeroable for u128 {}
// SAFETY: an array of zeroable values is zeroable.
unsafe impl<T: Zeroable, const N: usize> Zeroable for [T; N] {}

const HUGE_PAGE: usize = 2 << 20;

/// A fixed-size, zero-initialised array in its own (huge-page) mapping.
pub struct HugeArray<T: Zeroable> {
    ptr: NonNull<T>,
    len: usize,
    map_len: usize,
}

// SAFETY: HugeArray owns its memory like a Box<[T]>.
unsafe impl<T: Zeroable + Send> Send for HugeArray<T> {}
// SAFETY: shared access only gives &T.
unsafe impl<T: Zeroable + Sync> Sync for HugeArray<T> {}

impl<T: Zeroable> std::fmt::Debug for HugeArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HugeArray")
            .field("len", &self.len)
            .field("bytes", &self.map_len)
            .finish()
    }
}

impl<T: Zeroable> HugeArray<T> {
    /// Maps `len` zeroed elements. Fails only if the kernel refuses memory.
    pub fn new(len: usize) -> std::io::Result<Self> {
        assert!(std::mem::align_of::<T>() <= 4096, "alignment above a page");
        let bytes = len
            .max(1)
            .checked_mul(std::mem::size_of::<T>().max(1))
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::OutOfMemory, "table size overflows")
            })?;
        let map_len = bytes.div_ceil(HUGE_PAGE) * HUGE_PAGE;
        // SAFETY: an anonymous private mapping with no address hint has no
        // preconditions; the kernel returns zeroed pages.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: p..p+map_len is our fresh mapping. Both calls are hints:
        // failure (e.g. THP disabled) leaves ordinary pages, which is fine.
        unsafe {
            libc::madvise(p, map_len, libc::MADV_HUGEPAGE);
            // Fault every page in now (MADV_POPULATE_WRITE, Linux 5.14+);
            // where unsupported, touch one byte per page instead.
            if libc::madvise(p, map_len, 23 /* MADV_POPULATE_WRITE */) != 0 {
                let b = p.cast::<u8>();
                let mut off = 0;
                while off < map_len {
                    b.add(off).write_volatile(0);
                    off += 4096;
                }
            }
        }
        Ok(Self {
            ptr: NonNull::new(p.cast::<T>()).expect("mmap returned null"),
            len,
            map_len,
        })
    }

    /// Bytes mapped (rounded up to huge pages).
    pub fn mapped_bytes(&self) -> usize {
        self.map_len
    }
}

impl<T: Zeroable> std::ops::Deref for HugeArray<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: the mapping holds len zero-initialised (hence valid) Ts and
        // is page aligned, so aligned for T.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> std::ops::DerefMut for HugeArray<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in deref; &mut self is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> Drop for HugeArray<T> {
    fn drop(&mut self) {
        // SAFETY: T: Zeroable types own no resources (no Drop to run that
        // matters for memory safety), and the mapping is ours.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.map_len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_writable_and_sized() {
        let mut a = HugeArray::<[u64; 16]>::new(100_000).unwrap();
        assert_eq!(a.len(), 100_000);
        assert!(a.iter().all(|e| e.iter().all(|&x| x == 0)));
        a[99_999][15] = 7;
        assert_eq!(a[99_999][15], 7);
        assert_eq!(a.mapped_bytes() % (2 << 20), 0);
    }
}
