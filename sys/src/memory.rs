//! Large, pre-faulted tables for the hot path.
//!
//! Flow tables are hundreds of MiB. They are mapped once at start, backed by
//! transparent huge pages where the kernel allows (fewer TLB misses), and
//! every element is written at creation, which also faults every page in, so
//! the packet path never takes a page fault.
//!
//! Invariant: the mapping lives exactly as long as the [`HugeArray`] and
//! holds `len` initialised `T`s (written before any slice is formed).

use std::ptr::NonNull;

const HUGE_PAGE: usize = 2 << 20;

/// A fixed-size array in its own (huge-page) mapping.
pub struct HugeArray<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    map_len: usize,
}

// SAFETY: HugeArray owns its memory like a Box<[T]>.
unsafe impl<T: Copy + Send> Send for HugeArray<T> {}
// SAFETY: shared access only gives &T.
unsafe impl<T: Copy + Sync> Sync for HugeArray<T> {}

impl<T: Copy> std::fmt::Debug for HugeArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HugeArray")
            .field("len", &self.len)
            .field("bytes", &self.map_len)
            .finish()
    }
}

impl<T: Copy> HugeArray<T> {
    /// Maps `len` elements, each set to `fill`. Fails only if the kernel
    /// refuses memory.
    pub fn new(len: usize, fill: T) -> std::io::Result<Self> {
        assert!(std::mem::align_of::<T>() <= 4096, "alignment above a page");
        let bytes = len
            .max(1)
            .checked_mul(std::mem::size_of::<T>().max(1))
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::OutOfMemory, "table size overflows")
            })?;
        let map_len = bytes.div_ceil(HUGE_PAGE) * HUGE_PAGE;
        // SAFETY: an anonymous private mapping with no address hint has no
        // preconditions.
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
        // SAFETY: p..p+map_len is our fresh mapping; the advice is a hint
        // (ordinary pages remain if THP is off).
        unsafe { libc::madvise(p, map_len, libc::MADV_HUGEPAGE) };
        let ptr = NonNull::new(p.cast::<T>()).expect("mmap returned null");
        for i in 0..len {
            // SAFETY: i < len and len * size_of::<T>() <= map_len; the
            // mapping is page aligned, hence aligned for T.
            unsafe { ptr.as_ptr().add(i).write(fill) };
        }
        Ok(Self { ptr, len, map_len })
    }

    /// Bytes mapped (rounded up to huge pages).
    pub fn mapped_bytes(&self) -> usize {
        self.map_len
    }
}

impl<T: Copy> std::ops::Deref for HugeArray<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: the mapping holds len initialised Ts (written in new).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> std::ops::DerefMut for HugeArray<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in deref; &mut self is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for HugeArray<T> {
    fn drop(&mut self) {
        // SAFETY: T: Copy has no drop glue; the mapping is ours and no
        // reference into it outlives self.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.map_len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_writable_and_sized() {
        let mut a = HugeArray::<[u64; 16]>::new(100_000, [3; 16]).unwrap();
        assert_eq!(a.len(), 100_000);
        assert!(a.iter().all(|e| e.iter().all(|&x| x == 3)));
        a[99_999][15] = 7;
        assert_eq!(a[99_999][15], 7);
        assert_eq!(a.mapped_bytes() % (2 << 20), 0);
        let empty = HugeArray::<u8>::new(0, 0).unwrap();
        assert!(empty.is_empty());
    }
}
