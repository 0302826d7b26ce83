//! Packet-buffer pools.
//!
//! Invariant: a pool is freed only when no mbuf from it is outstanding. Ports
//! hold an `Arc<Mempool>` until they are closed (a closed port has returned
//! every buffer), and [`Mempool`]'s drop checks the in-use count and leaks
//! the pool rather than free memory that an [`crate::Mbuf`] could still point to.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::eal::EalGuard;
use crate::{ffi, DpdkError, Eal, Mbuf};

/// A DPDK pktmbuf pool.
#[derive(Debug)]
pub struct Mempool {
    raw: NonNull<ffi::rte_mempool>,
    name: String,
    size: u32,
    _eal: Arc<EalGuard>,
}

// SAFETY: rte_mempool get/put are multi-producer/multi-consumer safe (the
// default ring ops); per-lcore caches are keyed by the calling lcore.
unsafe impl Send for Mempool {}
// SAFETY: as above; &Mempool only exposes thread-safe DPDK calls.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `n` packet buffers with `data_room` bytes each
    /// (headroom included, e.g. 2048 + 128) on NUMA `socket` (-1: any).
    pub fn new(
        eal: &Eal,
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Arc<Mempool>, DpdkError> {
        let cname = CString::new(name)
            .map_err(|_| DpdkError::other("rte_pktmbuf_pool_create", "name contains NUL"))?;
        // SAFETY: cname is a valid C string; EAL is initialised (eal exists).
        let raw =
            unsafe { ffi::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket) };
        let raw = NonNull::new(raw).ok_or_else(|| {
            DpdkError::from_rte_errno(format!("rte_pktmbuf_pool_create({name}, {n} mbufs)"))
        })?;
        Ok(Arc::new(Mempool {
            raw,
            name: name.to_string(),
            size: n,
            _eal: eal.guard.clone(),
        }))
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of mbufs the pool was created with.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Bytes of packet data one mbuf holds after its headroom: a frame
    /// longer than this takes a chain of mbufs.
    pub fn segment_room(&self) -> u16 {
        // SAFETY: raw is a packet pool (made by rte_pktmbuf_pool_create)
        // that lives as long as self.
        let room = unsafe { ffi::fg_pktmbuf_data_room_size(self.raw.as_ptr()) };
        room.saturating_sub(ffi::RTE_PKTMBUF_HEADROOM as u16)
    }

    /// Mbufs currently free (in the ring and in lcore caches).
    pub fn avail_count(&self) -> u32 {
        // SAFETY: raw is a live pool (freed only in drop).
        unsafe { ffi::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Mbufs currently taken out of the pool.
    pub fn in_use_count(&self) -> u32 {
        // SAFETY: raw is a live pool.
        unsafe { ffi::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    /// Takes one mbuf out of the pool, reset and empty; `None` when exhausted.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: raw is a live pktmbuf pool; the returned mbuf (if any) is
        // exclusively ours.
        let m = unsafe { ffi::fg_pktmbuf_alloc(self.raw.as_ptr()) };
        NonNull::new(m).map(|m| {
            // SAFETY: a freshly allocated mbuf has refcnt 1 and nobody else
            // holds it.
            unsafe { Mbuf::from_raw(m) }
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut ffi::rte_mempool {
        self.raw.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        if self.in_use_count() != 0 {
            // Freeing now would leave outstanding mbufs pointing at freed
            // memory; a leak at shutdown is the safe choice.
            eprintln!(
                "flowgate-sys: mempool {} dropped with {} mbufs in use; not freeing it",
                self.name,
                self.in_use_count()
            );
            // Nor may EAL be cleaned up under those mbufs: its memory
            // would go with it. The guard is kept for good.
            std::mem::forget(self._eal.clone());
            return;
        }
        // SAFETY: no mbuf from this pool is outstanding, no port uses it
        // (ports hold an Arc), and this is the last reference.
        unsafe { ffi::rte_mempool_free(self.raw.as_ptr()) }
    }
}
