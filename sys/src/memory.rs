//! Memory in mappings of its own: large, pre-faulted tables for the hot
//! path, and large buffers that control fills fast.
//!
//! Flow tables are hundreds of MiB. They are mapped once at start, backed by
//! transparent huge pages where the kernel allows (fewer TLB misses), and
//! every element is written at creation, which also faults every page in, so
//! the packet path never takes a page fault.
//!
//! A flow operation's results can be a million flows (80 MiB) that control
//! writes once. In ordinary pages that is 20,000 page faults, which cost
//! control more than copying the flows; a [`HugeVec`] takes its pages from
//! the kernel's huge page pool when it has enough free (reserved when
//! mapped, faulted in 16 MiB at a time ahead of the elements), and
//! ordinary pages otherwise. Huge pages are faulted in with
//! `MADV_POPULATE_WRITE`, which fails with an error where a plain write
//! would die of SIGBUS (a cgroup's huge page limit below the pool's free
//! pages): the vector then moves to ordinary pages.
//!
//! Invariants: a mapping lives exactly as long as its owner; a
//! [`HugeArray`] holds `len` initialised `T`s (written before any slice is
//! formed); a [`HugeVec`] holds `len` initialised `T`s at the start of a
//! mapping of `map_len >= len * size_of::<T>()` bytes, and
//! only its first `ready` bytes are ever written (all of them in ordinary
//! pages).

use std::ptr::NonNull;

const HUGE_PAGE: usize = 2 << 20;
const PAGE: usize = 4096;
/// Bytes of huge pages faulted in at a time, ahead of the elements.
const POPULATE_STEP: usize = 8 * HUGE_PAGE;

/// A fresh private anonymous mapping of `len` bytes with extra mmap
/// `flags`; `None` when the kernel refuses (errno says why).
fn map_anonymous(len: usize, flags: libc::c_int) -> Option<NonNull<u8>> {
    // SAFETY: an anonymous private mapping with no address hint has no
    // preconditions.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then(|| NonNull::new(p.cast::<u8>()).expect("mmap gave null"))
}

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
        assert!(std::mem::align_of::<T>() <= PAGE, "alignment above a page");
        let bytes = len
            .max(1)
            .checked_mul(std::mem::size_of::<T>().max(1))
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::OutOfMemory, "table size overflows")
            })?;
        let map_len = bytes.div_ceil(HUGE_PAGE) * HUGE_PAGE;
        let p = map_anonymous(map_len, 0).ok_or_else(std::io::Error::last_os_error)?;
        // SAFETY: p..p+map_len is our fresh mapping; the advice is a hint
        // (ordinary pages remain if THP is off).
        unsafe { libc::madvise(p.as_ptr().cast(), map_len, libc::MADV_HUGEPAGE) };
        let ptr = p.cast::<T>();
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

/// A growable vector of plain values in a mapping of its own, in pages
/// from the kernel's huge page pool when it has enough free, else in
/// ordinary pages. Like `Vec`, it aborts when memory runs out.
pub struct HugeVec<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    map_len: usize,
    ready: usize,
    huge: bool,
}

// SAFETY: HugeVec owns its memory like a Vec<T>.
unsafe impl<T: Copy + Send> Send for HugeVec<T> {}
// SAFETY: shared access only gives &T.
unsafe impl<T: Copy + Sync> Sync for HugeVec<T> {}

/// Faults in `len` bytes at `p` without writing them; false where a write
/// would have raised SIGBUS, or where the kernel predates
/// `MADV_POPULATE_WRITE` (5.14).
fn populate(p: *mut u8, len: usize) -> bool {
    if len == 0 {
        return true;
    }
    #[cfg(test)]
    if POPULATE_FAILS.get() {
        return false;
    }
    // SAFETY: callers pass a range inside one of their own mappings; the
    // advice writes nothing (it faults pages in, zero-filled).
    unsafe { libc::madvise(p.cast(), len, libc::MADV_POPULATE_WRITE) == 0 }
}

#[cfg(test)]
thread_local! {
    /// Makes this thread's populates fail, as a cgroup's huge page limit
    /// would (it cannot be set up here).
    static POPULATE_FAILS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A fresh private anonymous mapping of at least `bytes`, in huge pages
/// when `huge` and the pool has enough free (the first `ready` bytes
/// faulted in), else in ordinary pages. (pointer, bytes mapped, bytes
/// ready to write, huge).
fn map(bytes: usize, ready: usize, huge: bool) -> Option<(NonNull<u8>, usize, usize, bool)> {
    if huge {
        let len = bytes.checked_next_multiple_of(HUGE_PAGE)?;
        if let Some(p) = map_anonymous(len, libc::MAP_HUGETLB | libc::MAP_HUGE_2MB) {
            let ready = ready.next_multiple_of(POPULATE_STEP).min(len);
            if populate(p.as_ptr(), ready) {
                return Some((p, len, ready, true));
            }
            // SAFETY: p..p+len is the mapping just made, never shared.
            unsafe { libc::munmap(p.as_ptr().cast(), len) };
        }
    }
    // Untouched pages cost nothing, so room for a generous guess is not
    // charged until it is used (and trim gives back what never was).
    let len = bytes.checked_next_multiple_of(PAGE)?;
    map_anonymous(len, libc::MAP_NORESERVE).map(|p| (p, len, len, false))
}

impl<T: Copy> HugeVec<T> {
    /// An empty vector; nothing is mapped until the first push.
    pub fn new() -> Self {
        assert!(std::mem::size_of::<T>() > 0, "zero-sized elements");
        assert!(std::mem::align_of::<T>() <= PAGE, "alignment above a page");
        Self {
            ptr: NonNull::dangling(),
            len: 0,
            map_len: 0,
            ready: 0,
            huge: false,
        }
    }

    /// An empty vector with room for `cap` elements.
    pub fn with_capacity(cap: usize) -> Self {
        let mut v = Self::new();
        v.remap(cap, true);
        v
    }

    /// Like [`HugeVec::with_capacity`], in ordinary pages only.
    #[cfg(test)]
    fn with_capacity_in_small_pages(cap: usize) -> Self {
        let mut v = Self::new();
        v.remap(cap, false);
        v
    }

    /// Elements it holds without remapping.
    pub fn capacity(&self) -> usize {
        self.map_len / std::mem::size_of::<T>()
    }

    /// Whether its pages are huge pages.
    pub fn is_huge(&self) -> bool {
        self.huge
    }

    /// Bytes mapped.
    pub fn mapped_bytes(&self) -> usize {
        self.map_len
    }

    /// Moves the elements into a new mapping with room for `cap` (>= len)
    /// elements.
    fn remap(&mut self, cap: usize, huge: bool) {
        let size = std::mem::size_of::<T>();
        let bytes = cap
            .max(1)
            .checked_mul(size)
            .expect("HugeVec capacity overflows");
        let Some((p, map_len, ready, huge)) = map(bytes, self.len * size, huge) else {
            std::alloc::handle_alloc_error(
                std::alloc::Layout::from_size_align(bytes, PAGE).expect("layout"),
            );
        };
        let new = p.cast::<T>();
        // SAFETY: the new mapping holds at least cap >= len elements, the
        // first len ready to write; the old one holds len initialised
        // elements; they do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), new.as_ptr(), self.len) };
        self.unmap();
        self.ptr = new;
        self.map_len = map_len;
        self.ready = ready;
        self.huge = huge;
    }

    /// Faults in the next step of a huge mapping; where that fails, moves
    /// to ordinary pages.
    #[cold]
    fn populate_more(&mut self) {
        let end = (self.ready + POPULATE_STEP).min(self.map_len);
        // SAFETY: ready <= end <= map_len: inside our mapping.
        let from = unsafe { self.ptr.as_ptr().cast::<u8>().add(self.ready) };
        if populate(from, end - self.ready) {
            self.ready = end;
        } else {
            self.remap(self.capacity(), false);
        }
    }

    fn unmap(&mut self) {
        if self.map_len > 0 {
            // SAFETY: ptr..ptr+map_len is our mapping; no reference into it
            // outlives this call (&mut self).
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.map_len) };
        }
        self.map_len = 0;
        self.ready = 0;
    }

    /// Appends `v`, remapping to twice the room when full.
    #[inline]
    pub fn push(&mut self, v: T) {
        if self.len == self.capacity() {
            let cap = self.capacity().saturating_mul(2).max(PAGE);
            self.remap(cap, true);
        }
        if (self.len + 1) * std::mem::size_of::<T>() > self.ready {
            self.populate_more();
        }
        // SAFETY: len < capacity and the slot's bytes are ready: it lies inside
        // the mapping, in pages already faulted in (huge) or that fault in
        // like any memory (ordinary).
        unsafe { self.ptr.as_ptr().add(self.len).write(v) };
        self.len += 1;
    }

    /// Keeps the first `n` elements.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// Gives back the pages beyond the elements it holds. Elements that
    /// fill less than half a huge page move to ordinary pages, so that
    /// many small vectors kept for long do not each hold a huge page.
    pub fn trim(&mut self) {
        if self.len == 0 {
            self.unmap();
            self.ptr = NonNull::dangling();
            return;
        }
        let used = self.len * std::mem::size_of::<T>();
        if self.huge && used < HUGE_PAGE / 2 {
            self.remap(self.len, false);
        }
        let page = if self.huge { HUGE_PAGE } else { PAGE };
        let keep = used.next_multiple_of(page);
        if keep < self.map_len {
            // SAFETY: keep is a multiple of the mapping's page size, so
            // the tail is whole pages of our mapping, past every element.
            unsafe {
                libc::munmap(
                    self.ptr.as_ptr().cast::<u8>().add(keep).cast(),
                    self.map_len - keep,
                )
            };
            self.map_len = keep;
            self.ready = self.ready.min(keep);
        }
    }
}

impl<T: Copy> Default for HugeVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy> Drop for HugeVec<T> {
    fn drop(&mut self) {
        self.unmap();
    }
}

impl<T: Copy> std::ops::Deref for HugeVec<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: the first len elements are initialised (a dangling,
        // aligned pointer is valid for an empty slice).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> std::ops::DerefMut for HugeVec<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in deref; &mut self is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Extend<T> for HugeVec<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for v in iter {
            self.push(v);
        }
    }
}

impl<T: Copy> FromIterator<T> for HugeVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut v = Self::new();
        v.extend(iter);
        v
    }
}

impl<T: Copy> Clone for HugeVec<T> {
    fn clone(&self) -> Self {
        let mut v = Self::with_capacity(self.len);
        v.extend(self.iter().copied());
        v
    }
}

impl<T: Copy + PartialEq> PartialEq for HugeVec<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Copy + Eq> Eq for HugeVec<T> {}

impl<T: Copy> std::fmt::Debug for HugeVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HugeVec")
            .field("len", &self.len)
            .field("bytes", &self.map_len)
            .field("ready", &self.ready)
            .field("huge", &self.huge)
            .finish()
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

#[cfg(test)]
mod huge_vec_tests {
    use super::*;

    type Flow = [u64; 10];

    fn check(mut v: HugeVec<Flow>) {
        let n = 100_000u64;
        v.extend((0..n).map(|i| [i; 10]));
        assert_eq!(v.len(), n as usize);
        assert!(v
            .iter()
            .enumerate()
            .all(|(i, f)| f[0] == i as u64 && f[9] == i as u64));
        assert!(v.capacity() >= v.len());
        v[5][3] = 7;
        assert_eq!(v[5][3], 7);
        let copy = v.clone();
        assert_eq!(copy, v);
        v.truncate(30_000);
        v.trim();
        assert_eq!(v.len(), 30_000);
        assert!(v.mapped_bytes() >= 30_000 * 80);
        assert!(v.mapped_bytes() < 30_000 * 80 + (2 << 20));
        assert_eq!(v[29_999], [29_999; 10]);
        // Still usable after the trim.
        v.push([1; 10]);
        assert_eq!(v.len(), 30_001);
        assert_eq!(copy.len(), n as usize);
        v.truncate(0);
        v.trim();
        assert_eq!(v.mapped_bytes(), 0);
        assert!(v.is_empty());
        v.push([2; 10]);
        assert_eq!(&v[..], &[[2; 10]]);
    }

    fn free_huge_pages() -> u64 {
        std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Whether the huge-page tests can run: with room to spare, as other
    /// processes may take pages meanwhile. `make test` reserves pages when
    /// it can and then sets FLOWGATE_REQUIRE_HUGEPAGES=1, so that there a
    /// missing reservation fails instead of skipping.
    fn huge_pages_to_test() -> bool {
        let free = free_huge_pages();
        if free >= 96 {
            return true;
        }
        assert!(
            std::env::var("FLOWGATE_REQUIRE_HUGEPAGES").as_deref() != Ok("1"),
            "{free} free 2 MB huge pages: 96 are needed (make hugepages)"
        );
        println!("skipped: {free} free 2 MB huge pages, 96 needed");
        false
    }

    #[test]
    fn takes_huge_pages_when_the_pool_has_them() {
        if huge_pages_to_test() {
            let v = HugeVec::<Flow>::with_capacity(1000);
            assert!(v.is_huge());
            assert_eq!(v.mapped_bytes(), 2 << 20);
            assert_eq!(v.capacity(), (2 << 20) / 80);
            // A few elements kept: moved to ordinary pages.
            let mut small = v.clone();
            small.extend([[1; 10]; 100]);
            small.trim();
            assert!(!small.is_huge());
            assert_eq!(small.mapped_bytes(), 8192);
            assert_eq!(&small[..], &[[1; 10]; 100]);
            // Many: they keep their huge pages, the room beyond goes back.
            let mut big = HugeVec::<Flow>::with_capacity(100_000);
            big.extend((0..30_000).map(|i| [i; 10]));
            big.trim();
            assert!(big.is_huge());
            assert_eq!(big.mapped_bytes(), 4 << 20);
            // Past several steps of faulting in, and past the room made.
            let mut more = HugeVec::<Flow>::with_capacity(200_000);
            more.extend((0..500_000).map(|i| [i; 10]));
            assert!(more.is_huge());
            assert!(more.iter().enumerate().all(|(i, f)| f[9] == i as u64));
        }
    }

    #[test]
    fn huge_pages_that_cannot_be_faulted_in_give_way_to_ordinary_ones() {
        if huge_pages_to_test() {
            let mut v = HugeVec::<Flow>::with_capacity(300_000);
            v.extend((0..10).map(|i| [i; 10]));
            assert!(v.is_huge());
            POPULATE_FAILS.set(true);
            // Past the first 16 MiB faulted in: the next step fails.
            v.extend((10..250_000).map(|i| [i; 10]));
            assert!(!v.is_huge());
            assert!(v.iter().enumerate().all(|(i, f)| f[0] == i as u64));
            // A new one does not get huge pages it could not fault in.
            let mut w: HugeVec<Flow> = HugeVec::new();
            w.extend((0..250_000).map(|i| [i; 10]));
            assert!(!w.is_huge());
            POPULATE_FAILS.set(false);
        }
    }

    #[test]
    fn grows_holds_trims_in_either_kind_of_page() {
        check(HugeVec::with_capacity(1000));
        check(HugeVec::with_capacity_in_small_pages(1000));
        check(HugeVec::new());
        check(HugeVec::default());
    }

    #[test]
    fn small_pages_are_not_huge_and_trim_by_the_page() {
        let mut v = HugeVec::<u8>::with_capacity_in_small_pages(3 * 4096);
        assert!(!v.is_huge());
        assert_eq!(v.mapped_bytes(), 3 * 4096);
        v.extend(std::iter::repeat_n(9, 5000));
        v.trim();
        assert_eq!(v.mapped_bytes(), 2 * 4096);
    }

    #[test]
    fn collects_and_compares() {
        let a: HugeVec<u32> = (0..10).collect();
        let b: HugeVec<u32> = (0..10).collect();
        let c: HugeVec<u32> = (1..11).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(format!("{a:?}").contains("len: 10"));
    }
}
