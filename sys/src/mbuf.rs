//! Owned packet buffers and fixed-size bursts of them.
//!
//! Invariant: an [`Mbuf`] is the only reference to its DPDK mbuf (refcnt 1,
//! a direct buffer), and to the segments chained after it (a frame larger
//! than one buffer: received with scatter, or built by [`Mbuf::chain`]). It is created only by rx bursts and pool allocation, and
//! this crate offers no way to clone, attach or share one, so `&mut Mbuf`
//! really is exclusive access to the packet bytes. Dropping it returns it to
//! its pool; sending it hands it to the driver.

use std::mem::MaybeUninit;
use std::ptr::NonNull;

use crate::ffi;

/// Packets moved per rx/tx call, as in DPDK's examples.
pub const BURST_SIZE: usize = 32;

/// One owned packet: its first segment and any chained after it.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf(NonNull<ffi::rte_mbuf>);

// SAFETY: an Mbuf is exclusively owned (see module invariant); DPDK mbufs may
// be freed or sent from any lcore.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Wraps a raw mbuf.
    ///
    /// # Safety
    /// `m` must be a valid, exclusively owned, direct mbuf (refcnt 1).
    #[inline(always)]
    pub(crate) unsafe fn from_raw(m: NonNull<ffi::rte_mbuf>) -> Mbuf {
        Mbuf(m)
    }

    #[inline(always)]
    fn raw(&self) -> &ffi::rte_mbuf {
        // SAFETY: self.0 is a valid mbuf for as long as self lives.
        unsafe { self.0.as_ref() }
    }

    /// Bytes in the first segment.
    #[inline(always)]
    pub fn data_len(&self) -> usize {
        self.raw().data_len as usize
    }

    /// Bytes in the whole packet (all segments).
    #[inline(always)]
    pub fn pkt_len(&self) -> u32 {
        self.raw().pkt_len
    }

    /// Number of segments.
    #[inline(always)]
    pub fn nb_segs(&self) -> u16 {
        self.raw().nb_segs
    }

    /// The port the packet was received on (as set by the driver).
    #[inline(always)]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    #[inline(always)]
    fn data_ptr(&self) -> *mut u8 {
        let m = self.raw();
        // rte_pktmbuf_mtod: the data starts data_off bytes into the buffer.
        (m.buf_addr as *mut u8).wrapping_add(m.data_off as usize)
    }

    /// The first segment's bytes.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        // SAFETY: DPDK guarantees buf_addr + data_off .. + data_len lies in
        // the mbuf's buffer; we hold the only reference (module invariant).
        unsafe { std::slice::from_raw_parts(self.data_ptr(), self.data_len()) }
    }

    /// The first segment's bytes, writable.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in data(); &mut self makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.data_ptr(), self.data_len()) }
    }

    /// Prefetches the first cache line of packet data.
    #[inline(always)]
    pub fn prefetch_data(&self) {
        crate::cpu::prefetch0(self.data_ptr());
    }

    /// Grows the packet at its tail by `len` bytes and returns them (their
    /// content is unspecified); `None` if the tailroom is too small.
    pub fn append(&mut self, len: u16) -> Option<&mut [u8]> {
        // SAFETY: self.0 is a valid, exclusively owned mbuf.
        let p = unsafe { ffi::fg_pktmbuf_append(self.0.as_ptr(), len) };
        // SAFETY: on success p points at len writable bytes inside the buffer.
        NonNull::new(p).map(|p| unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), len as usize) })
    }

    /// Grows the packet at its head by `len` bytes and returns them; `None`
    /// if the headroom is too small.
    pub fn prepend(&mut self, len: u16) -> Option<&mut [u8]> {
        // SAFETY: self.0 is a valid, exclusively owned mbuf.
        let p = unsafe { ffi::fg_pktmbuf_prepend(self.0.as_ptr(), len) };
        // SAFETY: on success p points at len writable bytes inside the buffer.
        NonNull::new(p).map(|p| unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), len as usize) })
    }

    /// Each segment's bytes, the first segment first.
    #[inline]
    pub fn segments(&self) -> Segments<'_> {
        Segments {
            next: self.raw(),
            _packet: std::marker::PhantomData,
        }
    }

    /// Copies the packet's bytes from `offset` on into `out`, across
    /// segments; returns how many were copied (fewer than `out.len()` when
    /// the packet ends first).
    pub fn read(&self, offset: usize, out: &mut [u8]) -> usize {
        let mut skip = offset;
        let mut done = 0;
        for seg in self.segments() {
            if done == out.len() {
                break;
            }
            if skip >= seg.len() {
                skip -= seg.len();
                continue;
            }
            let n = (seg.len() - skip).min(out.len() - done);
            out[done..done + n].copy_from_slice(&seg[skip..skip + n]);
            done += n;
            skip = 0;
        }
        done
    }

    /// Chains `tail` (with its own segments) after this packet's last
    /// segment: the packet grows by `tail`'s length. Gives `tail` back when
    /// the chain would pass DPDK's segment limit.
    pub fn chain(&mut self, tail: Mbuf) -> Result<(), Mbuf> {
        // SAFETY: both are valid, exclusively owned mbufs (module invariant)
        // and distinct (two owners cannot alias). On success DPDK links
        // tail's segments into self's chain, so self now owns them: tail
        // must not free them, hence the forget.
        let ret = unsafe { ffi::fg_pktmbuf_chain(self.0.as_ptr(), tail.0.as_ptr()) };
        if ret == 0 {
            std::mem::forget(tail);
            Ok(())
        } else {
            Err(tail)
        }
    }

    /// Removes `len` bytes from the tail; false if the last segment is shorter.
    pub fn trim(&mut self, len: u16) -> bool {
        // SAFETY: self.0 is a valid, exclusively owned mbuf.
        unsafe { ffi::fg_pktmbuf_trim(self.0.as_ptr(), len) == 0 }
    }

    /// Free space before the data.
    pub fn headroom(&self) -> u16 {
        // SAFETY: read-only access to a valid mbuf.
        unsafe { ffi::fg_pktmbuf_headroom(self.0.as_ptr()) }
    }

    /// Free space after the data in the last segment.
    pub fn tailroom(&self) -> u16 {
        // SAFETY: read-only access to a valid mbuf.
        unsafe { ffi::fg_pktmbuf_tailroom(self.0.as_ptr()) }
    }
}

/// The segments of one packet, as byte slices (see [`Mbuf::segments`]).
pub struct Segments<'a> {
    next: *const ffi::rte_mbuf,
    _packet: std::marker::PhantomData<&'a Mbuf>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.next.is_null() {
            return None;
        }
        // SAFETY: `next` is the packet's first segment or a `next` link of
        // one, which DPDK keeps valid or null; the packet is borrowed for
        // 'a, so no segment is freed or changed meanwhile.
        let seg = unsafe { &*self.next };
        self.next = seg.next;
        let data = (seg.buf_addr as *const u8).wrapping_add(usize::from(seg.data_off));
        // SAFETY: DPDK keeps buf_addr + data_off .. + data_len inside each
        // segment's buffer.
        Some(unsafe { std::slice::from_raw_parts(data, usize::from(seg.data_len)) })
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; after this it is never touched again.
        unsafe { ffi::fg_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// Up to `N` owned mbufs, filled by an rx burst and drained by a tx burst.
/// Lives on the worker's stack; dropping it frees what it still holds with
/// one bulk call.
pub struct MbufBurst<const N: usize = BURST_SIZE> {
    slots: [MaybeUninit<Mbuf>; N],
    len: usize,
}

impl<const N: usize> Default for MbufBurst<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> std::fmt::Debug for MbufBurst<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MbufBurst").field("len", &self.len).finish()
    }
}

impl<const N: usize> MbufBurst<N> {
    /// An empty burst.
    #[inline(always)]
    pub fn new() -> Self {
        Self {
            slots: [const { MaybeUninit::uninit() }; N],
            len: 0,
        }
    }

    /// Number of packets held.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no packet.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether it is full.
    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.len == N
    }

    /// Room left.
    #[inline(always)]
    pub fn room(&self) -> usize {
        N - self.len
    }

    /// The packets held.
    #[inline(always)]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: slots[..len] are initialised.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().cast::<Mbuf>(), self.len) }
    }

    /// The packets held, writable.
    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: slots[..len] are initialised; &mut self is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr().cast::<Mbuf>(), self.len) }
    }

    /// Adds a packet; gives it back when the burst is full.
    #[inline(always)]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == N {
            return Err(m);
        }
        self.slots[self.len].write(m);
        self.len += 1;
        Ok(())
    }

    /// Moves every packet out, in order, to `f`; the burst is empty after.
    #[inline(always)]
    pub fn drain_each(&mut self, mut f: impl FnMut(usize, Mbuf)) {
        let n = self.len;
        // Set len first so a panic in f cannot lead to a double free.
        self.len = 0;
        for i in 0..n {
            // SAFETY: slots[i] for i < n were initialised, and each is read
            // exactly once (len is already 0).
            let m = unsafe { self.slots[i].assume_init_read() };
            f(i, m);
        }
    }

    /// Frees every packet held (one bulk call).
    #[inline]
    pub fn clear(&mut self) {
        if self.len == 0 {
            return;
        }
        let n = self.len as u32;
        self.len = 0;
        // SAFETY: slots[..n] hold owned mbufs (Mbuf is repr(transparent) over
        // a non-null rte_mbuf pointer); len is zeroed first so none is freed twice.
        unsafe { ffi::rte_pktmbuf_free_bulk(self.slots.as_mut_ptr().cast(), n) }
    }

    /// Pointer to the slot array as DPDK's `struct rte_mbuf **`, for rx/tx.
    #[inline(always)]
    pub(crate) fn raw_slots(&mut self) -> *mut *mut ffi::rte_mbuf {
        self.slots.as_mut_ptr().cast()
    }

    /// Records that DPDK wrote `n` more mbufs after the current ones.
    ///
    /// # Safety
    /// slots[len..len+n] must now hold owned mbufs.
    #[inline(always)]
    pub(crate) unsafe fn grow(&mut self, n: usize) {
        debug_assert!(self.len + n <= N);
        self.len += n;
    }

    /// Forgets the first `n` packets (the driver took them) and moves the
    /// rest to the front.
    ///
    /// # Safety
    /// The first `n` mbufs must have been handed over to DPDK.
    #[inline(always)]
    pub(crate) unsafe fn consume_front(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        let rest = self.len - n;
        if rest > 0 && n > 0 {
            // SAFETY: both ranges lie within slots (n + rest == len <= N);
            // ptr::copy handles the overlap.
            unsafe { std::ptr::copy(self.slots.as_ptr().add(n), self.slots.as_mut_ptr(), rest) };
        }
        self.len = rest;
    }
}

impl<const N: usize> Drop for MbufBurst<N> {
    fn drop(&mut self) {
        self.clear();
    }
}

impl<const N: usize> std::ops::Index<usize> for MbufBurst<N> {
    type Output = Mbuf;
    #[inline(always)]
    fn index(&self, i: usize) -> &Mbuf {
        &self.as_slice()[i]
    }
}

impl<const N: usize> std::ops::IndexMut<usize> for MbufBurst<N> {
    #[inline(always)]
    fn index_mut(&mut self, i: usize) -> &mut Mbuf {
        &mut self.as_mut_slice()[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_c_compiler() {
        // The hot path reads these fields through bindgen's struct: it must
        // agree with offsetof() as the C compiler sees it.
        // SAFETY: the fg_mbuf_off_* constants are plain u32 statics.
        unsafe {
            assert_eq!(
                std::mem::offset_of!(ffi::rte_mbuf, buf_addr) as u32,
                ffi::fg_mbuf_off_buf_addr
            );
            assert_eq!(
                std::mem::offset_of!(ffi::rte_mbuf, data_off) as u32,
                ffi::fg_mbuf_off_data_off
            );
            assert_eq!(
                std::mem::offset_of!(ffi::rte_mbuf, data_len) as u32,
                ffi::fg_mbuf_off_data_len
            );
            assert_eq!(
                std::mem::offset_of!(ffi::rte_mbuf, pkt_len) as u32,
                ffi::fg_mbuf_off_pkt_len
            );
        }
        assert_eq!(
            std::mem::size_of::<Mbuf>(),
            std::mem::size_of::<*mut ffi::rte_mbuf>()
        );
    }
}
