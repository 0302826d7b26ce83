//! A worker's flow table: preallocated, bucketised, looked up in bursts.
//!
//! Entries ([`FlowEntry`], 128 bytes) live in one array; buckets of 8 slots
//! hold a 16-bit signature and an entry index per slot, in one cache line,
//! so a single SIMD compare ([`flowgate_sys::cpu::eq_mask_u16x8`]) finds
//! the candidate slots of a bucket. Each key has two buckets (the second
//! derived from the first and the signature, so entries can move between
//! them); inserts go to the first with room, then try moving one occupant
//! to its other bucket. Nothing allocates after [`FlowTable::new`].
//!
//! For bursts the worker first calls [`FlowTable::prefetch_bucket`] for
//! every packet, then [`FlowTable::prefetch_entry`], then
//! [`FlowTable::lookup`], so the cache misses of a burst overlap.
//!
//! Beside the entries, the table keeps the scan index ([`ScanKey`], 16
//! bytes per entry) that flow operations scan instead of the entries.
//!
//! When the table is full ([`FullPolicy`]): refuse the new flow, or evict
//! the least recently seen flow among those sharing its two buckets (or,
//! if they are empty, among a few entries under a rotating hand).

use flowgate_sys::cpu::{eq_mask_u16x8, prefetch0};
use flowgate_sys::HugeArray;

use super::{FlowEntry, FlowKey, ScanKey};

const SLOTS: usize = 8;

#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket {
    sig: [u16; SLOTS],
    idx: [u32; SLOTS],
    _pad: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<Bucket>() == 64);

/// What to do with a new flow when there is no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullPolicy {
    /// Do not track it (the caller counts and drops it).
    DropNew,
    /// Evict the least recently seen flow among its neighbours.
    EvictOldest,
}

/// The result of an insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// Stored at this index.
    Inserted(u32),
    /// Stored at this index after evicting this flow.
    Evicted(u32, FlowEntry),
    /// No room (with [`FullPolicy::DropNew`]).
    Full,
}

/// Entries scanned by the rotating hand when an eviction victim must come
/// from outside the new key's buckets.
const HAND_SCAN: u32 = 64;

/// A preallocated flow table.
pub struct FlowTable {
    buckets: HugeArray<Bucket>,
    entries: HugeArray<FlowEntry>,
    /// Per entry, what a flow operation's scan reads (see [`ScanKey`]).
    scan: HugeArray<ScanKey>,
    free: HugeArray<u32>,
    free_len: u32,
    mask: u32,
    len: u32,
    /// One past the highest index ever handed out: scans stop here.
    high_water: u32,
    policy: FullPolicy,
    hand: u32,
    /// Bumped whenever a scan key changes (insert, flush, remove).
    changes: u64,
}

impl std::fmt::Debug for FlowTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowTable")
            .field("capacity", &self.capacity())
            .field("len", &self.len)
            .field("buckets", &self.buckets.len())
            .finish()
    }
}

#[inline(always)]
fn sig_of(hash: u32) -> u16 {
    // 0 marks a free slot.
    ((hash >> 16) as u16).max(1)
}

#[inline(always)]
fn alt_bucket(b: u32, sig: u16, mask: u32) -> u32 {
    // An involution: alt(alt(b)) == b, so an entry can always find its
    // other bucket from where it is and its signature.
    b ^ ((((sig as u32).wrapping_mul(0x9e37_79b1) >> 7) | 1) & mask)
}

impl FlowTable {
    /// A table for `capacity` flows (at least 8). Maps and touches all its
    /// memory now.
    pub fn new(capacity: u32, policy: FullPolicy) -> std::io::Result<FlowTable> {
        let capacity = capacity.max(8);
        let nb = Self::buckets_for(capacity);
        let buckets = HugeArray::new(nb, Bucket::default())?;
        let entries = HugeArray::new(capacity as usize, FlowEntry::default())?;
        let scan = HugeArray::new(capacity as usize, ScanKey::FREE)?;
        let mut free = HugeArray::new(capacity as usize, 0u32)?;
        // Pop order 0, 1, 2...: new flows fill the array from the front,
        // which keeps scans of a lightly used table short and sequential.
        for (i, f) in free.iter_mut().enumerate() {
            *f = capacity - 1 - i as u32;
        }
        Ok(FlowTable {
            buckets,
            entries,
            scan,
            free,
            free_len: capacity,
            mask: nb as u32 - 1,
            len: 0,
            high_water: 0,
            policy,
            hand: 0,
            changes: 0,
        })
    }

    /// Maximum number of flows.
    pub fn capacity(&self) -> u32 {
        self.entries.len() as u32
    }

    /// Flows held.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether no flow is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every used entry lies below this index. Entries are handed out
    /// lowest first and freed ones are reused first, so a table that never
    /// held more than N flows is scanned over about N entries, not its
    /// capacity.
    #[inline]
    pub fn scan_end(&self) -> u32 {
        self.high_water
    }

    /// A count of scan key changes (inserts, removals): a job
    /// that finds it as it left it knows the matches it holds still hold.
    #[inline(always)]
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// What a scan reads of entry `idx` (below [`FlowTable::scan_end`]).
    #[inline(always)]
    pub fn scan_key(&self, idx: u32) -> &ScanKey {
        &self.scan[idx as usize]
    }

    /// The scan keys of entries `from..from + n` (all below
    /// [`FlowTable::scan_end`]).
    #[inline(always)]
    pub fn scan_keys(&self, from: u32, n: u32) -> &[ScanKey] {
        &self.scan[from as usize..(from + n) as usize]
    }

    /// Asks for the cache line of scan keys (4 of them) holding `idx`, into
    /// every level. Out of range: nothing.
    ///
    /// Not non-temporal, although the scan reads each line once: with a
    /// non-temporal hint a selective capture over a million flows at a 4 %
    /// share took 112-137 ms on a saturated worker, against 71-80 ms with
    /// this one, and forwarding dipped no less (an Intel Xeon VM, ops
    /// bench setup, alternating builds).
    #[inline(always)]
    pub fn prefetch_scan_keys(&self, idx: u32) {
        if let Some(k) = self.scan.get(idx as usize) {
            prefetch0(k);
        }
    }

    /// Asks for entry `idx`, which a scan is about to read: both lines, or
    /// with `counters_only` the second (first seen and the counters, all a
    /// capture reads of an IPv4 flow). Out of range: nothing.
    ///
    /// Into every level, as [`FlowTable::prefetch_scan_keys`]: with a
    /// non-temporal hint a capture that reports a million flows at a 4 %
    /// share took 1158-1170 ms and a flush 1261-1310 ms, against 895-959
    /// and 869-938 ms with this one, for the same forwarding dip.
    #[inline(always)]
    pub fn prefetch_for_scan(&self, idx: u32, counters_only: bool) {
        if let Some(e) = self.entries.get(idx as usize) {
            if !counters_only {
                prefetch0(e);
            }
            prefetch0((e as *const FlowEntry).cast::<u8>().wrapping_add(64));
        }
    }

    /// The one writer of the scan index, so that every change is counted
    /// in [`FlowTable::changes`].
    #[inline(always)]
    fn set_scan_key(&mut self, idx: u32, k: ScanKey) {
        self.scan[idx as usize] = k;
        self.changes += 1;
    }

    /// Memory of the whole table divided by its capacity.
    pub fn bytes_per_flow(&self) -> f64 {
        self.mapped_bytes() as f64 / self.capacity() as f64
    }

    /// Buckets for `capacity` flows: about half the slots stay free at
    /// full capacity, so inserts almost never find both buckets full.
    fn buckets_for(capacity: u32) -> usize {
        (capacity as usize)
            .div_ceil(SLOTS / 2)
            .next_power_of_two()
            .max(2)
    }

    /// The memory a table of `capacity` flows takes, before it is made (to
    /// refuse a config the machine cannot hold with a message, not meet the
    /// OOM killer when the workers first touch their tables).
    pub fn footprint(capacity: u32) -> usize {
        let capacity = capacity.max(8) as usize;
        Self::buckets_for(capacity as u32) * std::mem::size_of::<Bucket>()
            + capacity
                * (std::mem::size_of::<FlowEntry>()
                    + std::mem::size_of::<ScanKey>()
                    + std::mem::size_of::<u32>())
    }

    /// Total bytes mapped.
    pub fn mapped_bytes(&self) -> usize {
        self.buckets.mapped_bytes()
            + self.entries.mapped_bytes()
            + self.scan.mapped_bytes()
            + self.free.mapped_bytes()
    }

    /// Stage 1 of a burst lookup: fetch the key's first bucket.
    #[inline(always)]
    pub fn prefetch_bucket(&self, hash: u32) {
        prefetch0(&self.buckets[(hash & self.mask) as usize]);
    }

    /// Stage 2: fetch the entries whose signature matches in the first
    /// bucket; returns the first such entry, a hint for [`FlowTable::lookup_hinted`]
    /// (`u32::MAX`: none).
    #[inline(always)]
    pub fn prefetch_entry(&self, hash: u32) -> u32 {
        let b = &self.buckets[(hash & self.mask) as usize];
        let mut m = eq_mask_u16x8(&b.sig, sig_of(hash));
        let hint = if m != 0 {
            b.idx[m.trailing_zeros() as usize]
        } else {
            u32::MAX
        };
        while m != 0 {
            let e = &self.entries[b.idx[m.trailing_zeros() as usize] as usize];
            prefetch0(e);
            prefetch0((e as *const FlowEntry).cast::<u8>().wrapping_add(64));
            m &= m - 1;
        }
        hint
    }

    /// Stage 3: [`FlowTable::lookup`], trying first the entry stage 2
    /// pointed at. The hint may be stale (the table changed since): it is
    /// only trusted if that entry holds the key.
    #[inline(always)]
    pub fn lookup_hinted(&self, key: &FlowKey, hash: u32, hint: u32) -> Option<u32> {
        if let Some(e) = self.entries.get(hint as usize) {
            if e.key == *key {
                return Some(hint);
            }
        }
        self.lookup(key, hash)
    }

    #[inline(always)]
    fn find_in(&self, b: u32, sig: u16, key: &FlowKey) -> Option<u32> {
        let bucket = &self.buckets[b as usize];
        let mut m = eq_mask_u16x8(&bucket.sig, sig);
        while m != 0 {
            let idx = bucket.idx[m.trailing_zeros() as usize];
            if self.entries[idx as usize].key == *key {
                return Some(idx);
            }
            m &= m - 1;
        }
        None
    }

    /// The index of `key`'s entry (`hash` = `key.hash()`).
    #[inline(always)]
    pub fn lookup(&self, key: &FlowKey, hash: u32) -> Option<u32> {
        let sig = sig_of(hash);
        let b1 = hash & self.mask;
        if let Some(i) = self.find_in(b1, sig, key) {
            return Some(i);
        }
        let b2 = alt_bucket(b1, sig, self.mask);
        if b2 == b1 {
            return None;
        }
        self.find_in(b2, sig, key)
    }

    /// Asks for the first line of the entry at `idx` (its key, state and
    /// last-seen time: what the expiry sweep reads), if it exists.
    #[inline(always)]
    pub fn prefetch_index(&self, idx: u32) {
        if let Some(e) = self.entries.get(idx as usize) {
            prefetch0(e);
        }
    }

    /// The entry at `idx`.
    #[inline(always)]
    pub fn entry(&self, idx: u32) -> &FlowEntry {
        &self.entries[idx as usize]
    }

    /// The entry at `idx`, writable. The key must not be changed.
    #[inline(always)]
    pub fn entry_mut(&mut self, idx: u32) -> &mut FlowEntry {
        &mut self.entries[idx as usize]
    }

    fn free_slot(&self, b: u32) -> Option<usize> {
        let m = eq_mask_u16x8(&self.buckets[b as usize].sig, 0);
        (m != 0).then(|| m.trailing_zeros() as usize)
    }

    /// Tries to move one occupant of bucket `b` to its other bucket; returns
    /// the slot freed in `b`.
    fn make_room(&mut self, b: u32) -> Option<usize> {
        for s in 0..SLOTS {
            let sig = self.buckets[b as usize].sig[s];
            let other = alt_bucket(b, sig, self.mask);
            if other == b {
                continue;
            }
            if let Some(t) = self.free_slot(other) {
                let idx = self.buckets[b as usize].idx[s];
                let ob = &mut self.buckets[other as usize];
                ob.sig[t] = sig;
                ob.idx[t] = idx;
                self.buckets[b as usize].sig[s] = 0;
                return Some(s);
            }
        }
        None
    }

    /// The least recently seen occupant of buckets `b1` and `b2`.
    fn oldest_in(&self, b1: u32, b2: u32) -> Option<u32> {
        let mut best: Option<(u64, u32)> = None;
        for b in [b1, b2] {
            let bucket = &self.buckets[b as usize];
            for s in 0..SLOTS {
                if bucket.sig[s] != 0 {
                    let idx = bucket.idx[s];
                    let t = self.entries[idx as usize].last_seen;
                    if best.is_none_or(|(bt, _)| t < bt) {
                        best = Some((t, idx));
                    }
                }
            }
        }
        best.map(|(_, i)| i)
    }

    /// The least recently seen of the next few used entries under the hand.
    fn oldest_under_hand(&mut self) -> Option<u32> {
        let cap = self.capacity();
        let mut best: Option<(u64, u32)> = None;
        let mut seen = 0;
        let mut steps = 0;
        while seen < HAND_SCAN && steps < cap {
            let i = self.hand;
            self.hand = if self.hand + 1 == cap {
                0
            } else {
                self.hand + 1
            };
            steps += 1;
            let e = &self.entries[i as usize];
            if e.is_used() {
                seen += 1;
                if best.is_none_or(|(bt, _)| e.last_seen < bt) {
                    best = Some((e.last_seen, i));
                }
            }
        }
        best.map(|(_, i)| i)
    }

    /// Stores `entry` (whose key must not be in the table; `hash` is its
    /// key's hash).
    pub fn insert(&mut self, entry: FlowEntry, hash: u32) -> Insert {
        let sig = sig_of(hash);
        let b1 = hash & self.mask;
        let b2 = alt_bucket(b1, sig, self.mask);
        let mut evicted = None;

        if self.free_len == 0 {
            if self.policy == FullPolicy::DropNew {
                return Insert::Full;
            }
            let victim = match self.oldest_in(b1, b2) {
                Some(v) => v,
                None => self
                    .oldest_under_hand()
                    .expect("a full table has used entries"),
            };
            evicted = Some(self.entries[victim as usize]);
            self.remove(victim);
        }

        let (b, s) = if let Some(s) = self.free_slot(b1) {
            (b1, s)
        } else if let Some(s) = self.free_slot(b2) {
            (b2, s)
        } else if let Some(s) = self.make_room(b1) {
            (b1, s)
        } else if let Some(s) = self.make_room(b2) {
            (b2, s)
        } else {
            // Both buckets full and nothing can move: a rare collision
            // cluster; the table may have free entries elsewhere.
            if self.policy == FullPolicy::DropNew {
                return Insert::Full;
            }
            let victim = self.oldest_in(b1, b2).expect("both buckets are full");
            evicted = Some(self.entries[victim as usize]);
            self.remove(victim);
            match self.free_slot(b1) {
                Some(s) => (b1, s),
                None => (b2, self.free_slot(b2).expect("the victim freed a slot")),
            }
        };

        self.free_len -= 1;
        let idx = self.free[self.free_len as usize];
        self.set_scan_key(idx, ScanKey::of(&entry));
        self.entries[idx as usize] = entry;
        self.high_water = self.high_water.max(idx + 1);
        let bucket = &mut self.buckets[b as usize];
        bucket.sig[s] = sig;
        bucket.idx[s] = idx;
        self.len += 1;
        match evicted {
            Some(e) => Insert::Evicted(idx, e),
            None => Insert::Inserted(idx),
        }
    }

    /// Removes the flow at `idx` (which must be used).
    pub fn remove(&mut self, idx: u32) {
        let hash = self.entries[idx as usize].key.hash();
        self.remove_hashed(idx, hash);
    }

    /// Removes the flows at `idxs` (each used, none twice), as
    /// [`FlowTable::remove`] would one by one, with the buckets of the
    /// flows a few places ahead already asked for: a flow being removed
    /// is found through its bucket, which for a table larger than the
    /// cache is a miss per flow that a loop of `remove` waits out in turn.
    pub fn remove_all(&mut self, idxs: &[u32]) {
        const AHEAD: usize = 16;
        // Most sweep calls and flush steps find nothing to remove.
        if idxs.is_empty() {
            return;
        }
        let mut hashes = [0u32; AHEAD];
        for (h, &i) in hashes.iter_mut().zip(idxs) {
            *h = self.prefetch_first_bucket(i);
        }
        for (j, &i) in idxs.iter().enumerate() {
            let hash = hashes[j % AHEAD];
            if let Some(&next) = idxs.get(j + AHEAD) {
                hashes[j % AHEAD] = self.prefetch_first_bucket(next);
            }
            self.remove_hashed(i, hash);
        }
    }

    /// Asks for the first bucket of the flow at `idx`, where it almost
    /// always is (half the slots stay free); returns its hash. Asking for
    /// the second as well cost a removal more than it saved (31 against
    /// 36 ns per flow, `job_cost`).
    #[inline(always)]
    fn prefetch_first_bucket(&self, idx: u32) -> u32 {
        let hash = self.entries[idx as usize].key.hash();
        let b1 = hash & self.mask;
        prefetch0(&self.buckets[b1 as usize]);
        hash
    }

    /// [`FlowTable::remove`] with the flow's hash known.
    #[inline(always)]
    fn remove_hashed(&mut self, idx: u32, hash: u32) {
        debug_assert!(self.entries[idx as usize].key.is_used());
        let sig = sig_of(hash);
        let b1 = hash & self.mask;
        for b in [b1, alt_bucket(b1, sig, self.mask)] {
            let bucket = &mut self.buckets[b as usize];
            let mut m = eq_mask_u16x8(&bucket.sig, sig);
            while m != 0 {
                let s = m.trailing_zeros() as usize;
                if bucket.idx[s] == idx {
                    bucket.sig[s] = 0;
                    // Line 0 only: an insert writes the whole entry, and
                    // clearing line 1 too cost the sweep a miss per flow.
                    let e = &mut self.entries[idx as usize];
                    e.key = FlowKey::default();
                    e.flags = 0;
                    self.set_scan_key(idx, ScanKey::FREE);
                    self.free[self.free_len as usize] = idx;
                    self.free_len += 1;
                    self.len -= 1;
                    return;
                }
                m &= m - 1;
            }
        }
        debug_assert!(false, "entry {idx} is not in its buckets");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::key::v4_bits;
    use crate::flow::{AddrFamily, Scanned, Side, Tuple, V4Tuple};
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn footprint_is_what_a_table_maps_before_rounding() {
        for capacity in [8, 1000, 1 << 16, 1 << 20] {
            let t = FlowTable::new(capacity, FullPolicy::DropNew).unwrap();
            let (want, got) = (FlowTable::footprint(capacity), t.mapped_bytes());
            // Each of the four arrays is rounded up to whole 2 MiB pages.
            assert!(
                want <= got && got < want + 4 * (2 << 20),
                "{capacity}: {want} {got}"
            );
        }
    }

    fn key(n: u32) -> FlowKey {
        Tuple {
            src: v4_bits(n.to_be_bytes()),
            dst: v4_bits([192, 0, 2, 1]),
            sport: (n % 7) as u16,
            dport: 80,
            proto: 6,
            family: AddrFamily::V4,
            vlan: 0,
        }
        .canonical()
        .0
    }

    fn add(t: &mut FlowTable, k: FlowKey, now: u64) -> Insert {
        t.insert(FlowEntry::new(k, Side::LoToHi, now), k.hash())
    }

    #[test]
    fn entries_sit_on_whole_cache_lines() {
        let t = FlowTable::new(1000, FullPolicy::DropNew).unwrap();
        for i in [0, 1, 2, 999] {
            let at = t.entry(i) as *const FlowEntry as usize;
            assert_eq!(at % 64, 0, "entry {i}");
        }
    }

    #[test]
    fn insert_lookup_remove() {
        let mut t = FlowTable::new(1000, FullPolicy::DropNew).unwrap();
        for n in 0..1000 {
            assert!(
                matches!(add(&mut t, key(n), n as u64), Insert::Inserted(_)),
                "{n}"
            );
        }
        assert_eq!(t.len(), 1000);
        assert_eq!(add(&mut t, key(5000), 0), Insert::Full);
        for n in 0..1000 {
            let k = key(n);
            let i = t.lookup(&k, k.hash()).expect("present");
            assert_eq!(t.entry(i).key, k);
        }
        assert!(t.lookup(&key(5000), key(5000).hash()).is_none());
        for n in (0..1000).step_by(2) {
            let k = key(n);
            let i = t.lookup(&k, k.hash()).unwrap();
            t.remove(i);
        }
        assert_eq!(t.len(), 500);
        for n in 0..1000 {
            let k = key(n);
            assert_eq!(t.lookup(&k, k.hash()).is_some(), n % 2 == 1);
        }
    }

    #[test]
    fn scans_stop_at_the_high_water_mark() {
        let mut t = FlowTable::new(1000, FullPolicy::DropNew).unwrap();
        assert_eq!(t.scan_end(), 0);
        for n in 0..10 {
            add(&mut t, key(n), 0);
        }
        assert_eq!(t.scan_end(), 10);
        // Freed entries are reused first: churn does not widen the scan.
        for round in 0..100 {
            let k = key(round % 10);
            t.remove(t.lookup(&k, k.hash()).unwrap());
            add(&mut t, k, 0);
        }
        assert_eq!(t.scan_end(), 10);
        assert!((10..1000).all(|i| !t.entry(i).is_used()));
    }

    #[test]
    fn every_scan_key_change_is_counted() {
        let mut t = FlowTable::new(8, FullPolicy::DropNew).unwrap();
        let mut last = t.changes();
        let mut changed = |t: &FlowTable| {
            let moved = t.changes() != last;
            last = t.changes();
            moved
        };
        add(&mut t, key(1), 0);
        assert!(changed(&t), "insert");
        let k = key(1);
        let i = t.lookup(&k, k.hash()).unwrap();
        t.entry_mut(i).packets[0] += 1;
        assert!(
            !changed(&t),
            "a packet's counters are not a scan key change"
        );
        t.remove(i);
        assert!(changed(&t), "remove");
    }

    #[test]
    fn eviction_takes_the_least_recently_seen() {
        let mut t = FlowTable::new(8, FullPolicy::EvictOldest).unwrap();
        for n in 0..8 {
            add(&mut t, key(n), 100 + n as u64);
        }
        // Entry 3 is the oldest.
        let k3 = key(3);
        let i3 = t.lookup(&k3, k3.hash()).unwrap();
        t.entry_mut(i3).last_seen = 1;
        match add(&mut t, key(99), 1000) {
            Insert::Evicted(_, old) => assert_eq!(old.key, k3),
            other => panic!("{other:?}"),
        }
        assert!(t.lookup(&k3, k3.hash()).is_none());
        assert_eq!(t.len(), 8);
    }

    #[test]
    fn memory_per_flow_is_reported() {
        let t = FlowTable::new(1 << 20, FullPolicy::DropNew).unwrap();
        let b = t.bytes_per_flow();
        // 128 entry + 16 scan key + 16 bucket share + 4 free list.
        assert!((144.0..=176.0).contains(&b), "{b}");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32, u64),
        Lookup(u32),
        Remove(u32),
        Expire(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u32..300, 0u64..1000).prop_map(|(k, t)| Op::Insert(k, t)),
            2 => (0u32..300).prop_map(Op::Lookup),
            1 => (0u32..300).prop_map(Op::Remove),
            1 => (0u64..1000).prop_map(Op::Expire),
        ]
    }

    fn check(policy: FullPolicy, cap: u32, ops: Vec<Op>) -> Result<(), TestCaseError> {
        let mut t = FlowTable::new(cap, policy).unwrap();
        let mut model: HashMap<FlowKey, u64> = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(n, now) => {
                    let k = key(n);
                    if let Some(i) = t.lookup(&k, k.hash()) {
                        prop_assert!(model.contains_key(&k));
                        t.entry_mut(i).last_seen = now;
                        model.insert(k, now);
                        continue;
                    }
                    prop_assert!(!model.contains_key(&k));
                    match add(&mut t, k, now) {
                        Insert::Inserted(i) => {
                            prop_assert_eq!(t.entry(i).key, k);
                            model.insert(k, now);
                        }
                        Insert::Evicted(i, old) => {
                            prop_assert_eq!(policy, FullPolicy::EvictOldest);
                            prop_assert_eq!(t.entry(i).key, k);
                            prop_assert!(
                                model.remove(&old.key).is_some(),
                                "evicted a flow the model lacks"
                            );
                            model.insert(k, now);
                        }
                        Insert::Full => {
                            prop_assert_eq!(policy, FullPolicy::DropNew);
                        }
                    }
                }
                Op::Lookup(n) => {
                    let k = key(n);
                    let got = t.lookup(&k, k.hash()).map(|i| t.entry(i).last_seen);
                    prop_assert_eq!(got, model.get(&k).copied());
                }
                Op::Remove(n) => {
                    let k = key(n);
                    if let Some(i) = t.lookup(&k, k.hash()) {
                        t.remove(i);
                        prop_assert!(model.remove(&k).is_some());
                    } else {
                        prop_assert!(!model.contains_key(&k));
                    }
                }
                Op::Expire(before) => {
                    // An expiry sweep: walk every entry, remove the old
                    // ones together, as the tracker's sweep does.
                    let old: Vec<u32> = (0..t.capacity())
                        .filter(|&i| t.entry(i).is_used() && t.entry(i).last_seen < before)
                        .collect();
                    t.remove_all(&old);
                    model.retain(|_, &mut seen| seen >= before);
                }
            }
            prop_assert_eq!(t.len() as usize, model.len());
            prop_assert!(t.len() <= t.capacity());
        }
        for (k, seen) in &model {
            let i = t.lookup(k, k.hash());
            prop_assert!(i.is_some());
            prop_assert_eq!(t.entry(i.unwrap()).last_seen, *seen);
        }
        // The scan index says what the entries say, everywhere.
        for i in 0..t.capacity() {
            let e = t.entry(i);
            let want = if e.is_used() {
                Scanned::V4(V4Tuple::of(&e.forward_tuple()).unwrap())
            } else {
                Scanned::Skip
            };
            prop_assert_eq!(t.scan_key(i).view(), want, "entry {}", i);
            prop_assert!(!e.is_used() || i < t.scan_end());
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn matches_a_hashmap_drop_new(ops in prop::collection::vec(op(), 1..400), cap in 8u32..80) {
            check(FullPolicy::DropNew, cap, ops)?;
        }

        #[test]
        fn matches_a_hashmap_evict_oldest(ops in prop::collection::vec(op(), 1..400), cap in 8u32..80) {
            check(FullPolicy::EvictOldest, cap, ops)?;
        }
    }
}
