//! Long jobs a worker runs over its own flow table in bounded slices:
//! capture (report matching flows), flush (report and remove them) and
//! query (the newest N matching flows).
//!
//! Control builds a [`JobSpec`] (compiled filters, minimum age, result cap,
//! and for a query a preallocated buffer) and posts it. The worker advances
//! every running job by a bounded number of table entries per loop
//! iteration, between bursts, so forwarding continues while a million-flow
//! table is scanned. Results go back on the reply ring in fixed-size chunks
//! ([`JobResults`]: whole records for a query, [`TakenFlow`]s for a capture
//! or flush) from the ring pair's pool; when the pool is empty or the
//! reply ring full, the job simply waits. The
//! spec travels back in [`crate::command::Reply::JobDone`] so that control,
//! not the worker, frees it.

use std::sync::Arc;

use crate::command::{Reply, WorkerEnd};
use crate::filter::RuleSet;
use crate::flow::{FlowEntry, FlowTable, Scanned, Tuple};

/// Whole records per chunk (a query's results).
pub const CHUNK: usize = 16;

/// Flows per chunk of a capture's or flush's results (8.75 KiB). Handing a
/// chunk over costs a few hundred ns whatever it holds (two trips through
/// rings shared with control's core); at 28 flows a chunk that was about
/// a third of a match-all capture's cost on the worker.
pub const TAKEN_CHUNK: usize = 112;

/// Budget a reported flow costs on top of examining its entry: copying
/// the record out and posting it weighs about as much as examining a few
/// entries.
pub const COST_REPORTED: u32 = 3;

/// Scan keys matched together (one SIMD test per key and rule, one bit
/// per key) before the entries of the matches are read (their misses
/// overlap).
pub const BATCH: u32 = 64;

/// Batches between two looks at the clock (the first look comes after the
/// first batch, so every slice makes some progress).
const CLOCK_EVERY: u32 = 2;

/// How far ahead of the cursor (in scan keys) the scan asks for the
/// index: two batches, so a batch's keys have a batch's time to arrive.
const KEYS_AHEAD: u32 = 2 * BATCH;

/// Most matches in a batch for which the scan prefetches the entries.
const SPARSE: u32 = 8;

/// How many entries ahead of the one it handles a dense batch asks for.
const DENSE_AHEAD: u32 = 4;

/// Scan keys per cache line.
const KEYS_PER_LINE: u32 = 4;

/// Most flows a flush holds matched and not yet removed: they go together
/// ([`FlowTable::remove_all`]), so that their bucket misses overlap, and
/// always before [`Job::step`] returns.
const PRUNE: usize = 128;

/// How much work the jobs may do in one loop iteration: a number of
/// entries (a reported flow counts [`COST_REPORTED`] more) and a TSC
/// deadline, whichever runs out first. Shared by every job of the
/// iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    /// Entries left.
    pub entries: u32,
    /// TSC at which to stop (`u64::MAX`: no deadline).
    pub deadline: u64,
}

impl Slice {
    /// `entries` entries, no deadline.
    pub fn entries(entries: u32) -> Slice {
        Slice {
            entries,
            deadline: u64::MAX,
        }
    }

    /// `entries` entries, until TSC `deadline`.
    pub fn until(deadline: u64, entries: u32) -> Slice {
        Slice { entries, deadline }
    }

    /// The TSC ticks the jobs may have for packet work that took `spent`
    /// ticks, so that they take `share_percent` of the total.
    pub fn allowance(spent: u64, share_percent: u32) -> u64 {
        let share = share_percent.clamp(1, 100) as u64;
        if share >= 100 {
            u64::MAX / 4
        } else {
            spent.saturating_mul(share) / (100 - share)
        }
    }

    /// Whether nothing is left.
    pub fn is_spent(&self) -> bool {
        self.entries == 0
    }

    #[inline]
    fn take(&mut self, n: u32) {
        self.entries = self.entries.saturating_sub(n);
    }

    /// Called every few batches: ends the slice at its deadline.
    #[inline]
    fn check_clock(&mut self) {
        if self.deadline != u64::MAX && flowgate_sys::cpu::tsc() >= self.deadline {
            self.entries = 0;
        }
    }
}

/// What a job does with matching flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Report them.
    Capture,
    /// Report and remove them (later packets arrive mid-stream).
    Flush,
    /// Report the newest `newest` of them, newest first.
    Query,
}

/// A job as control posts it.
#[derive(Debug)]
pub struct JobSpec {
    /// Operation id (control's), echoed in every reply.
    pub op: u64,
    /// What to do.
    pub kind: JobKind,
    /// A flow matches if any rule matches its forward tuple (source = the
    /// side that opened it). An empty set matches nothing.
    pub filters: Arc<RuleSet>,
    /// Only flows at least this old (TSC ticks since first packet).
    pub min_age: u64,
    /// Only flows created at most this long ago (TSC ticks; `u64::MAX`: any).
    pub max_age: u64,
    /// Most flows to report; a capture stops there, a flush keeps
    /// removing but reports no more. Either way the job says it was truncated.
    pub result_cap: u64,
    /// For [`JobKind::Query`]: how many of the newest flows to report.
    pub newest: usize,
    /// For [`JobKind::Query`]: preallocated room for twice `newest` flows
    /// (see [`Job::keep_newest`]). Unused otherwise.
    pub buffer: Vec<FlowRecord>,
    /// Percent (1-100) of a saturated worker's time the job may take (the
    /// worker gives its jobs the largest share any of them asks for).
    pub busy_share: u32,
    /// Which flows the job may take by the port their opener's packets
    /// arrive on.
    pub in_ports: PortScope,
}

/// Which ports a job's flows must come in on ([`FlowEntry::in_port`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortScope {
    /// Any port.
    Any,
    /// One set per rule of the job's filters: a flow counts if some rule
    /// `i` matches it and its opener's packets arrive on a port of set `i`
    /// (a rule without a set admits no port). An F5 query for one
    /// interface asks for its rule on that port or the rule's mirror image
    /// on the port paired with it: one set for both would keep, among the
    /// newest, flows that are in neither direction what was asked.
    PerRule(Vec<InPorts>),
}

impl PortScope {
    /// Whether `e`, which some rule of `filters` matches, is in scope.
    #[inline]
    fn admits(&self, filters: &RuleSet, e: &FlowEntry) -> bool {
        match self {
            PortScope::Any => true,
            PortScope::PerRule(sets) => filters
                .each_match(&e.forward_tuple())
                .any(|i| sets.get(i).is_some_and(|set| set.contains(e.in_port))),
        }
    }
}

/// A set of ports, by index (as [`FlowEntry::in_port`]): a bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InPorts([u64; 4]);

impl InPorts {
    /// Every port.
    pub const ANY: InPorts = InPorts([u64::MAX; 4]);

    /// Just these ports.
    pub fn only(ports: impl IntoIterator<Item = u8>) -> InPorts {
        let mut set = [0u64; 4];
        for p in ports {
            set[usize::from(p >> 6)] |= 1 << (p & 63);
        }
        InPorts(set)
    }

    /// Whether `port` is in the set.
    #[inline]
    pub fn contains(&self, port: u8) -> bool {
        self.0[usize::from(port >> 6)] >> (port & 63) & 1 != 0
    }
}

/// One flow as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowRecord {
    /// The entry as it was when scanned.
    pub entry: FlowEntry,
    /// Its index in the worker's table.
    pub index: u32,
}

/// A captured or flushed flow as it is reported: only what a flow
/// operation shows (the tuple, first seen, counters), 80 bytes instead of
/// a whole record's 144, since a match-all capture copies a million of
/// them from the table to control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TakenFlow {
    /// Its tuple as the opener sent it.
    pub tuple: Tuple,
    /// TSC of its first packet.
    pub first_seen: u64,
    /// Packets, both directions.
    pub packets: u64,
    /// Bytes (whole frames), both directions.
    pub bytes: u64,
    /// Its index in the worker's table.
    pub index: u32,
    /// The worker that holds it (set by control, which knows whose reply
    /// ring the flow came on).
    pub worker: u32,
}

const _: () = assert!(std::mem::size_of::<TakenFlow>() == 80);

impl TakenFlow {
    /// What a capture or flush reports of entry `index`, `e`, whose
    /// forward tuple is `tuple`. Only the entry's second line is read (first
    /// seen and the counters): for an IPv4 flow the scan key holds the
    /// tuple, and a capture need not read the first line at all.
    #[inline]
    pub fn taken(index: u32, tuple: Tuple, e: &FlowEntry) -> TakenFlow {
        TakenFlow {
            tuple,
            first_seen: e.first_seen,
            packets: e.packets[0].saturating_add(e.packets[1]),
            bytes: e.bytes[0].saturating_add(e.bytes[1]),
            index,
            worker: 0,
        }
    }

    /// What a capture or flush reports of record `r`, held by `worker`.
    pub fn of(worker: usize, r: &FlowRecord) -> TakenFlow {
        TakenFlow {
            worker: worker as u32,
            ..TakenFlow::taken(r.index, r.entry.forward_tuple(), &r.entry)
        }
    }
}

/// The positions of the set bits of `m`, lowest first.
#[inline(always)]
fn set_bits(mut m: u64) -> impl Iterator<Item = u32> {
    std::iter::from_fn(move || {
        let k = (m != 0).then(|| m.trailing_zeros())?;
        m &= m - 1;
        Some(k)
    })
}

/// The forward tuple of the flow at `i`: from its scan key if IPv4 (the
/// filters do not test the VLAN, and reports do not show it), else from
/// its entry.
#[inline(always)]
fn forward_tuple(table: &FlowTable, i: u32) -> Tuple {
    match table.scan_key(i).view() {
        Scanned::V4(t) => t.tuple(),
        _ => table.entry(i).forward_tuple(),
    }
}

/// Up to `N` results of a job.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<T: Copy + Default, const N: usize> {
    /// Results used.
    pub len: usize,
    /// The results (`..len` valid).
    pub flows: [T; N],
}

/// Up to [`CHUNK`] whole records (a query's results).
pub type FlowChunk = Chunk<FlowRecord, CHUNK>;

/// Up to [`TAKEN_CHUNK`] flows (a capture's or flush's results).
pub type TakenChunk = Chunk<TakenFlow, TAKEN_CHUNK>;

impl<T: Copy + Default, const N: usize> Default for Chunk<T, N> {
    fn default() -> Self {
        Chunk {
            len: 0,
            flows: [T::default(); N],
        }
    }
}

impl<T: Copy + Default, const N: usize> Chunk<T, N> {
    /// The valid results.
    pub fn records(&self) -> &[T] {
        &self.flows[..self.len]
    }

    fn is_full(&self) -> bool {
        self.len == N
    }

    /// The chunk as it is, leaving this one empty. Only the length is
    /// reset: clearing 2 KiB of results per chunk cost as much as
    /// copying them.
    #[inline]
    fn take(&mut self) -> Chunk<T, N> {
        let full = *self;
        self.len = 0;
        full
    }

    /// Moves the results into `to`, leaving this chunk empty; copies the
    /// valid ones only.
    #[inline]
    fn move_into(&mut self, to: &mut Chunk<T, N>) {
        to.flows[..self.len].copy_from_slice(&self.flows[..self.len]);
        to.len = self.len;
        self.len = 0;
    }

    #[inline]
    fn push(&mut self, r: T) {
        self.flows[self.len] = r;
        self.len += 1;
    }
}

/// Results ready to post: whole records for a query, reported flows for
/// a capture or flush.
///
/// One chunk of the ring pair's pool holds either kind in turn, so it is
/// as large as the larger; it travels boxed.
#[derive(Debug, Clone, Copy)]
#[allow(clippy::large_enum_variant)]
pub enum JobResults {
    /// A query's records.
    Records(FlowChunk),
    /// A capture's or flush's flows.
    Taken(TakenChunk),
}

impl JobResults {
    /// Results in the chunk.
    pub fn len(&self) -> usize {
        match self {
            JobResults::Records(c) => c.len,
            JobResults::Taken(c) => c.len,
        }
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobSummary {
    /// Table slots examined (free ones included).
    pub scanned: u64,
    /// Flows that matched.
    pub matched: u64,
    /// Flows removed (flush).
    pub removed: u64,
    /// Some matching flows were not reported (the result cap).
    pub truncated: bool,
}

/// A running job inside a worker.
#[derive(Debug)]
pub struct Job {
    /// The spec (returned to control at the end).
    pub spec: Box<JobSpec>,
    /// Next table index to examine.
    pub cursor: u32,
    /// Where the scan ends: the table's high-water mark when the job took
    /// its first step. Flows made later at fresh indexes are not the
    /// operation's, and a query that has begun streaming its sorted
    /// results must never scan (and add to them) again.
    end: u32,
    /// Progress so far.
    pub summary: JobSummary,
    /// A query's results not yet posted.
    pub chunk: FlowChunk,
    /// A capture's or flush's results not yet posted.
    pub taken: TakenChunk,
    /// Reported so far.
    pub reported: u64,
    /// For a query: next buffer index to stream after the scan.
    pub drain: usize,
    /// For a query: flows first seen before this are older than the
    /// newest ones already kept.
    floor: u64,
    /// Matches being handled.
    ready: Matches,
    /// Matches of the batch matched last, whose entries are on their way
    /// into the cache: they are handled after the next batch is matched.
    ahead: Matches,
    /// [`FlowTable::changes`] when the job last returned: if the table
    /// still says so, the matches held are still good.
    seen_changes: u64,
    /// A flush's matched flows still in the table: `prune[..pruning]`.
    prune: [u32; PRUNE],
    pruning: usize,
}

/// Matched flows of one batch not yet handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Matches {
    /// First entry of the batch.
    base: u32,
    /// Bit i: entry `base + i`.
    bits: u64,
    /// Too many to prefetch together: each is asked for [`DENSE_AHEAD`]
    /// entries before it is handled.
    dense: bool,
}

/// What the caller should do after [`Job::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Keep going next time.
    Continue,
    /// A chunk is ready: move it out with [`Job::take_chunk`], post it,
    /// then call again. (The chunk stays in the job until then, so it is
    /// copied once, into the chunk that is posted.)
    Emit,
    /// Finished: post the summary (and the spec back).
    Done,
}

impl Job {
    /// A job about to start at entry 0.
    pub fn new(spec: Box<JobSpec>) -> Job {
        Job {
            spec,
            cursor: 0,
            end: u32::MAX,
            summary: JobSummary::default(),
            chunk: FlowChunk::default(),
            taken: TakenChunk::default(),
            reported: 0,
            drain: 0,
            floor: 0,
            ready: Matches::default(),
            ahead: Matches::default(),
            seen_changes: 0,
            prune: [0; PRUNE],
            pruning: 0,
        }
    }

    /// Moves the results [`Step::Emit`] said were ready into `into` (a
    /// chunk of the pool, whatever it held), leaving the job's chunk empty.
    #[inline]
    pub fn take_chunk(&mut self, into: &mut JobResults) {
        match (self.spec.kind, into) {
            (JobKind::Query, JobResults::Records(c)) => self.chunk.move_into(c),
            (JobKind::Capture | JobKind::Flush, JobResults::Taken(c)) => self.taken.move_into(c),
            // A chunk last used by another kind of job.
            (JobKind::Query, into) => *into = JobResults::Records(self.chunk.take()),
            (_, into) => *into = JobResults::Taken(self.taken.take()),
        }
    }

    /// Whether the results in hand fill a chunk.
    #[inline]
    fn chunk_full(&self) -> bool {
        self.chunk.is_full() || self.taken.is_full()
    }

    /// Whether the job reads only the second line of a matched entry
    /// (first seen and the counters): a capture, since an IPv4 flow's
    /// tuple is in its scan key. Asking for the first line too doubled a
    /// match-all capture's memory traffic for the few IPv6 flows that need
    /// it; a flush writes the first line and a query copies both.
    #[inline]
    fn reads_counters_only(&self) -> bool {
        self.spec.kind == JobKind::Capture
    }

    /// Whether `e` is old (and young) enough, at `now`, and came in on one
    /// of the job's ports. In the worker, not after: a query keeps only the
    /// newest flows it matches, and a port picked out of those afterwards
    /// could get far fewer than there are.
    #[inline]
    fn fits(&self, e: &FlowEntry, now: u64) -> bool {
        let age = now.saturating_sub(e.first_seen);
        age >= self.spec.min_age
            && age <= self.spec.max_age
            && self.spec.in_ports.admits(&self.spec.filters, e)
    }

    /// Of the flows at `base..base + n` (at most [`BATCH`]; bit i for
    /// `base + i`) whose bits are set in `of`, those the filters match:
    /// found from the scan keys, and confirmed from the key (inexact rules)
    /// or the entry (IPv6) where the keys alone cannot tell.
    #[inline]
    fn matches_in(&self, table: &FlowTable, base: u32, n: u32, of: u64) -> u64 {
        let filters = &self.spec.filters;
        let found = filters.scan_candidates(table.scan_keys(base, n));
        let mut hits = found.v4 & of;
        if !filters.v4_candidates_exact() {
            for k in set_bits(hits) {
                let view = table.scan_key(base + k).view();
                if !matches!(view, Scanned::V4(t) if filters.any_match_v4(&t)) {
                    hits &= !(1 << k);
                }
            }
        }
        for k in set_bits(found.in_entry & of) {
            if filters.any_match(&table.entry(base + k).forward_tuple()) {
                hits |= 1 << k;
            }
        }
        hits
    }

    /// `m` with the flows that no longer match removed.
    #[inline]
    fn recheck(&self, table: &FlowTable, m: Matches, end: u32) -> Matches {
        if m.bits == 0 {
            return m;
        }
        Matches {
            bits: self.matches_in(table, m.base, BATCH.min(end - m.base), m.bits),
            ..m
        }
    }

    /// Matches the next batch of scan keys from the cursor: the matches
    /// become [`Job::ahead`] and their entries are prefetched together.
    #[inline]
    fn match_batch(&mut self, table: &FlowTable, end: u32) {
        let base = self.cursor;
        let n = BATCH.min(end - base);
        for line in (0..BATCH).step_by(KEYS_PER_LINE as usize) {
            table.prefetch_scan_keys(base + KEYS_AHEAD + line);
        }
        let hits = self.matches_in(table, base, n, u64::MAX);
        let counters_only = self.reads_counters_only();
        // A batch of many matches reads runs of neighbouring entries: they
        // are asked for a few at a time as they are handled (see
        // `Matches::dense`), since asking for all at once only queues.
        let dense = hits.count_ones() > SPARSE;
        for k in set_bits(if dense { 0 } else { hits }) {
            table.prefetch_for_scan(base + k, counters_only);
        }
        self.summary.scanned += n as u64;
        self.cursor = base + n;
        self.ahead = Matches {
            base,
            bits: hits,
            dense,
        };
    }

    /// Advances the job over `table`, spending `slice` (shared by every
    /// job of one loop iteration). A flush has removed the flows it matched
    /// when this returns. Stops early when a chunk is ready to be posted; the caller
    /// posts it and may call again with what is left of the slice.
    ///
    /// The scan reads the table's scan index, [`BATCH`] keys at a time
    /// ([`RuleSet::scan_candidates`]), and the entries of the matches
    /// only, a batch after it matched them. A slice may overrun by up to
    /// one batch.
    pub fn step(&mut self, table: &mut FlowTable, slice: &mut Slice, now: u64) -> Step {
        // The high-water mark never falls: the first step fixes the end.
        self.end = self.end.min(table.scan_end());
        if table.changes() != self.seen_changes {
            // Matches left from an earlier call may have changed since
            // (packets or another job came in between): they are checked
            // again. Not after a mere [`Step::Emit`]: a match-all capture
            // returns every few dozen flows, and checking two batches
            // again each time cost about a quarter of its time.
            self.ready = self.recheck(table, self.ready, self.end);
            self.ahead = self.recheck(table, self.ahead, self.end);
        }
        let step = self.advance(table, slice, now);
        self.prune_matched(table);
        self.seen_changes = table.changes();
        step
    }

    /// Removes the flows a flush matched since it last did. In the job's
    /// own time: left to the expiry sweep, a million removals cost the
    /// worker twice the flush's scan, outside the operation's share.
    #[inline]
    fn prune_matched(&mut self, table: &mut FlowTable) {
        table.remove_all(&self.prune[..self.pruning]);
        self.pruning = 0;
    }

    /// [`Job::step`] with the matches in hand known to be good.
    #[inline]
    fn advance(&mut self, table: &mut FlowTable, slice: &mut Slice, now: u64) -> Step {
        if self.chunk_full() {
            return Step::Emit;
        }
        let end = self.end;
        let counters_only = self.reads_counters_only();
        let mut batches = 0u32;
        loop {
            while self.ready.bits != 0 {
                let i = self.ready.base + self.ready.bits.trailing_zeros();
                self.ready.bits &= self.ready.bits - 1;
                if self.ready.dense {
                    table.prefetch_for_scan(i + DENSE_AHEAD, counters_only);
                }
                let e = table.entry(i);
                if !self.fits(e, now) {
                    continue;
                }
                self.summary.matched += 1;
                slice.take(COST_REPORTED);
                match self.spec.kind {
                    JobKind::Capture => {
                        if self.reported >= self.spec.result_cap {
                            self.summary.truncated = true;
                            self.cursor = end;
                            self.ready.bits = 0;
                            self.ahead.bits = 0;
                            break;
                        }
                        self.reported += 1;
                        self.taken
                            .push(TakenFlow::taken(i, forward_tuple(table, i), e));
                    }
                    JobKind::Flush => {
                        if self.reported < self.spec.result_cap {
                            self.reported += 1;
                            self.taken
                                .push(TakenFlow::taken(i, forward_tuple(table, i), e));
                        } else {
                            self.summary.truncated = true;
                        }
                        self.prune[self.pruning] = i;
                        self.pruning += 1;
                        if self.pruning == PRUNE {
                            self.prune_matched(table);
                        }
                        self.summary.removed += 1;
                    }
                    JobKind::Query => {
                        let rec = FlowRecord {
                            entry: *e,
                            index: i,
                        };
                        self.keep_newest(rec);
                    }
                }
                if self.chunk_full() {
                    return Step::Emit;
                }
            }
            if slice.is_spent() || (self.cursor >= end && self.ahead.bits == 0) {
                break;
            }
            // The batch matched last is handled after this one is matched,
            // so that its entries have had a batch's time to arrive (one
            // match in a batch is otherwise a whole miss).
            self.ready = std::mem::take(&mut self.ahead);
            if self.cursor < end {
                slice.take(BATCH);
                self.match_batch(table, end);
                batches += 1;
                if batches % CLOCK_EVERY == 1 {
                    slice.check_clock();
                }
            }
        }
        if self.cursor < end || self.ahead.bits != 0 {
            return Step::Continue;
        }
        // Scan over: a query now streams what it kept, newest first.
        if self.spec.kind == JobKind::Query {
            if self.drain == 0 {
                // In-place sort: no allocation on the worker.
                self.spec
                    .buffer
                    .sort_unstable_by_key(|r| std::cmp::Reverse(r.entry.first_seen));
                if self.spec.buffer.len() > self.spec.newest {
                    self.spec.buffer.truncate(self.spec.newest);
                    self.summary.truncated = true;
                }
            }
            while self.drain < self.spec.buffer.len() && !self.chunk.is_full() {
                self.chunk.push(self.spec.buffer[self.drain]);
                self.drain += 1;
            }
            if self.chunk.is_full() {
                return Step::Emit;
            }
        }
        if self.chunk.len > 0 || self.taken.len > 0 {
            return Step::Emit;
        }
        Step::Done
    }

    /// Keeps (at least) the newest `newest` flows in the preallocated
    /// buffer of twice that room: records are appended; when the buffer is
    /// full, the newest half is selected in place (O(N)) and the rest
    /// dropped, and older records than those kept are skipped from then on.
    /// Each record is copied once, about O(1) per flow, never growing the
    /// buffer (a heap of whole records cost a dozen record swaps per flow).
    fn keep_newest(&mut self, rec: FlowRecord) {
        let n = self.spec.newest;
        if n == 0 || rec.entry.first_seen < self.floor {
            self.summary.truncated = true;
            return;
        }
        let buf = &mut self.spec.buffer;
        if buf.len() == buf.capacity() && buf.len() >= n {
            buf.select_nth_unstable_by_key(n - 1, |r| std::cmp::Reverse(r.entry.first_seen));
            // Everything before n - 1 is at least as new.
            self.floor = buf[n - 1].entry.first_seen;
            buf.truncate(n);
            self.summary.truncated = true;
            if rec.entry.first_seen < self.floor {
                return;
            }
        }
        if buf.len() < buf.capacity() {
            buf.push(rec);
        } else {
            self.summary.truncated = true;
        }
    }
}

/// The jobs one worker runs at once, each given its turn.
///
/// A slice goes to the jobs in turn, starting each time after the job that
/// had the last one: given to the first job until it ended, a selective
/// capture posted behind a match-all flush of a million flows waited the
/// flush's seconds, and could reach its own deadline unscanned.
#[derive(Debug)]
pub struct RunningJobs {
    jobs: Vec<Job>,
    /// Index of the job whose turn comes next.
    next: usize,
}

impl RunningJobs {
    /// Room for `most` jobs, allocated here and never again.
    pub fn new(most: usize) -> RunningJobs {
        RunningJobs {
            jobs: Vec::with_capacity(most),
            next: 0,
        }
    }

    /// Whether no job runs.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Starts the job `spec` describes; gives the spec back when the
    /// worker runs as many as it has room for.
    pub fn start(&mut self, spec: Box<JobSpec>) -> Result<(), Box<JobSpec>> {
        if self.jobs.len() == self.jobs.capacity() {
            return Err(spec);
        }
        self.jobs.push(Job::new(spec));
        Ok(())
    }

    /// Stops operation `op`'s job, if it still runs, and hands it over.
    pub fn cancel(&mut self, op: u64) -> Option<Job> {
        let j = self.jobs.iter().position(|j| j.spec.op == op)?;
        Some(self.jobs.swap_remove(j))
    }

    /// The largest share of a busy worker's time any running job may take.
    pub fn busy_share(&self) -> u32 {
        self.jobs
            .iter()
            .map(|j| j.spec.busy_share)
            .max()
            .unwrap_or(1)
    }

    /// Advances the jobs over `table` by `slice` in all (see
    /// [`Job::step`]), posting their results and their ends on `ring`. A
    /// reply the ring refuses is kept in `held`, and nothing more is posted
    /// until it has gone. A job whose chunk is full when the pool has none
    /// left waits, and the others go on. Returns the flows flushed.
    pub fn advance(
        &mut self,
        table: &mut FlowTable,
        ring: &mut WorkerEnd,
        held: &mut Option<Reply>,
        mut slice: Slice,
        now: u64,
    ) -> u64 {
        let mut flushed = 0;
        // Jobs that have not yet had their turn in this slice.
        let mut turns = self.jobs.len();
        let mut j = self.next;
        while ring.post_held(held) && turns > 0 && !slice.is_spent() {
            if j >= self.jobs.len() {
                j = 0;
            }
            let job = &mut self.jobs[j];
            let before = job.summary.removed;
            let step = job.step(table, &mut slice, now);
            flushed += job.summary.removed - before;
            let reply = match step {
                Step::Continue => None,
                Step::Emit => ring.spare_chunk().map(|mut chunk| {
                    job.take_chunk(&mut chunk);
                    Reply::Flows {
                        op: job.spec.op,
                        chunk,
                    }
                }),
                Step::Done => {
                    // `remove`, not `swap_remove`: the jobs keep their
                    // order, so the one after it has its turn next and the
                    // last does not take a second turn in this slice.
                    let job = self.jobs.remove(j);
                    turns -= 1;
                    let done = Reply::JobDone {
                        op: job.spec.op,
                        summary: job.summary,
                        spec: job.spec,
                    };
                    ring.post_or_hold(done, held);
                    continue;
                }
            };
            // Its turn is over when it has spent the slice (even on a chunk
            // posted: the next slice starts with the next job), or when it
            // has no chunk to post its results in.
            let turn_over = reply.is_none() || slice.is_spent();
            if let Some(r) = reply {
                ring.post_or_hold(r, held);
            }
            if turn_over {
                turns -= 1;
                j += 1;
            }
        }
        self.next = j;
        flushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{PortRange, Rule};
    use crate::flow::key::v4_bits;
    use crate::flow::AddrFamily;

    /// A table whose entry i (i % 3 != 2) is a TCP flow first seen at
    /// time i, to port 80 (even i) or 443 (odd i); entries i % 3 == 2 are free.
    fn table(n: u32) -> FlowTable {
        table_with_room(n, n)
    }

    /// Inserts a flow from `src:sport` to 192.0.2.1:`dport` first seen at
    /// `seen`; returns where it went.
    fn insert(
        t: &mut FlowTable,
        src: [u8; 4],
        (sport, dport, proto): (u16, u16, u8),
        seen: u64,
    ) -> crate::flow::Insert {
        let tu = Tuple {
            src: v4_bits(src),
            dst: v4_bits([192, 0, 2, 1]),
            sport,
            dport,
            proto,
            family: AddrFamily::V4,
            vlan: 0,
        };
        let (k, side) = tu.canonical();
        t.insert(FlowEntry::new(k, side, seen), k.hash())
    }

    /// [`table`] with room for `capacity` flows.
    fn table_with_room(n: u32, capacity: u32) -> FlowTable {
        let mut t = FlowTable::new(capacity, crate::flow::FullPolicy::DropNew).unwrap();
        for i in 0..n {
            let dport = if i % 2 == 0 { 80 } else { 443 };
            let src = [10, 0, (i >> 8) as u8, i as u8];
            match insert(&mut t, src, (1000 + i as u16, dport, 6), i.into()) {
                crate::flow::Insert::Inserted(idx) => assert_eq!(idx, i),
                other => panic!("{other:?}"),
            }
        }
        for i in (2..n).step_by(3) {
            t.remove(i);
        }
        t
    }

    fn spec(kind: JobKind, rules: &[Rule], cap: u64, buffer: usize) -> Box<JobSpec> {
        Box::new(JobSpec {
            op: 1,
            kind,
            filters: Arc::new(RuleSet::compile(rules)),
            min_age: 0,
            max_age: u64::MAX,
            result_cap: cap,
            newest: buffer,
            buffer: Vec::with_capacity(2 * buffer),
            busy_share: 5,
            in_ports: PortScope::Any,
        })
    }

    /// The flows of a chunk, whichever kind (a query's records as a capture
    /// would report them).
    fn flows(c: &JobResults) -> Vec<TakenFlow> {
        match c {
            JobResults::Records(c) => c.records().iter().map(|r| TakenFlow::of(0, r)).collect(),
            JobResults::Taken(c) => c.records().to_vec(),
        }
    }

    /// The flows of the chunk the job has ready, moved into a chunk as the
    /// pool gives them (of a capture's kind: a query's results take the
    /// path for a chunk last used by another kind of job).
    fn emitted(job: &mut Job) -> Vec<TakenFlow> {
        let mut c = JobResults::Taken(Default::default());
        job.take_chunk(&mut c);
        flows(&c)
    }

    fn run(job: &mut Job, t: &mut FlowTable, now: u64, budget: u32) -> Vec<TakenFlow> {
        let mut out = Vec::new();
        loop {
            let mut slice = Slice::entries(budget);
            match job.step(t, &mut slice, now) {
                Step::Continue => {}
                Step::Emit => out.extend_from_slice(&emitted(job)),
                Step::Done => return out,
            }
        }
    }

    /// What control sees of [`RunningJobs::advance`] run in slices of
    /// `entries` until every job ended: the ops in the order their jobs
    /// ended, and each op's flows. Chunks go back to the pool at once.
    fn run_all(
        jobs: &mut RunningJobs,
        t: &mut FlowTable,
        entries: u32,
    ) -> (Vec<u64>, std::collections::BTreeMap<u64, Vec<TakenFlow>>) {
        let (mut control, mut worker) = crate::command::ring_pair(8, 64, 2);
        let mut held = None;
        let (mut ended, mut taken) = (Vec::new(), std::collections::BTreeMap::new());
        for _ in 0..100_000 {
            if jobs.is_empty() && held.is_none() {
                break;
            }
            jobs.advance(t, &mut worker, &mut held, Slice::entries(entries), 10_000);
            while let Some(r) = control.take_reply() {
                match r {
                    Reply::Flows { op, chunk } => {
                        taken
                            .entry(op)
                            .or_insert_with(Vec::new)
                            .extend(flows(&chunk));
                        control.give_back(chunk);
                    }
                    Reply::JobDone { op, .. } => ended.push(op),
                    other => panic!("{other:?}"),
                }
            }
        }
        assert!(jobs.is_empty(), "the jobs never ended");
        (ended, taken)
    }

    fn with_op(mut spec: Box<JobSpec>, op: u64) -> Box<JobSpec> {
        spec.op = op;
        spec
    }

    #[test]
    fn a_short_job_behind_a_long_one_is_not_kept_waiting() {
        let mut t = table(3000);
        let http = Rule {
            dport: PortRange::single(80),
            ..Rule::ANY
        };
        // Flow 1: 10.0.0.1 to port 443, which the flush leaves alone.
        let one = Rule {
            src: crate::filter::Cidr::v4([10, 0, 0, 1], 32),
            dport: PortRange::single(443),
            ..Rule::ANY
        };
        let mut jobs = RunningJobs::new(8);
        jobs.start(with_op(spec(JobKind::Flush, &[http], u64::MAX, 0), 1))
            .unwrap();
        jobs.start(with_op(spec(JobKind::Capture, &[one], u64::MAX, 0), 2))
            .unwrap();
        // A slice takes the capture twice as far as the flush, which
        // reports a flow in three (ten batches against five): given every
        // slice while it ran, the flush ended first.
        let (ended, flows) = run_all(&mut jobs, &mut t, 640);
        assert_eq!(ended, vec![2, 1], "the capture waited for the flush");
        assert_eq!(
            flows[&2].iter().map(|f| f.index).collect::<Vec<_>>(),
            vec![1]
        );
        let http_flows = (0..3000).filter(|i| i % 3 != 2 && i % 2 == 0).count();
        assert_eq!(flows[&1].len(), http_flows);
        assert_eq!(
            t.len() as usize,
            (0..3000).filter(|i| i % 3 != 2).count() - http_flows
        );
    }

    #[test]
    fn a_job_waiting_for_a_chunk_holds_no_other_back() {
        let mut t = table(3000);
        let none = Rule {
            src: crate::filter::Cidr::v4([192, 168, 0, 0], 16),
            ..Rule::ANY
        };
        let mut jobs = RunningJobs::new(8);
        // The match-all capture fills both chunks of the pool, which
        // control keeps: it can post no more until it is cancelled. The
        // other matches nothing: it needs no chunk to end.
        jobs.start(with_op(
            spec(JobKind::Capture, &[Rule::ANY], u64::MAX, 0),
            1,
        ))
        .unwrap();
        jobs.start(with_op(spec(JobKind::Capture, &[none], u64::MAX, 0), 2))
            .unwrap();
        let (mut control, mut worker) = crate::command::ring_pair(8, 64, 2);
        let mut held = None;
        let mut ended = Vec::new();
        let mut kept = Vec::new();
        for _ in 0..1000 {
            jobs.advance(&mut t, &mut worker, &mut held, Slice::entries(64), 10_000);
            while let Some(r) = control.take_reply() {
                match r {
                    Reply::Flows { op, chunk } => {
                        assert_eq!(op, 1);
                        kept.push(chunk);
                    }
                    Reply::JobDone { op, .. } => ended.push(op),
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(kept.len(), 2);
        assert_eq!(ended, vec![2], "the capture that needs no chunk ended");
        assert!(
            jobs.cancel(1).is_some(),
            "the match-all capture still waits"
        );
        assert!(jobs.is_empty());
    }

    #[test]
    fn a_reply_the_ring_refuses_is_held_and_posted_first() {
        let mut t = table(300);
        let mut jobs = RunningJobs::new(8);
        jobs.start(with_op(
            spec(JobKind::Capture, &[Rule::ANY], u64::MAX, 0),
            1,
        ))
        .unwrap();
        // Room for one reply: the first chunk goes, the second is held.
        let (mut control, mut worker) = crate::command::ring_pair(8, 1, 4);
        let mut held = None;
        jobs.advance(
            &mut t,
            &mut worker,
            &mut held,
            Slice::entries(u32::MAX),
            10_000,
        );
        assert!(matches!(held, Some(Reply::Flows { op: 1, .. })));
        let mut got = Vec::new();
        loop {
            match control.take_reply() {
                Some(Reply::Flows { chunk, .. }) => {
                    got.extend(flows(&chunk).iter().map(|f| f.index));
                    control.give_back(chunk);
                }
                Some(Reply::JobDone { .. }) => break,
                Some(other) => panic!("{other:?}"),
                None => assert!(held.is_some() || !jobs.is_empty(), "no end posted"),
            }
            jobs.advance(
                &mut t,
                &mut worker,
                &mut held,
                Slice::entries(u32::MAX),
                10_000,
            );
        }
        let want: Vec<u32> = (0..300).filter(|i| i % 3 != 2).collect();
        assert_eq!(got, want, "every flow once, in order");
        assert!(held.is_none() && jobs.is_empty());
    }

    #[test]
    fn capture_reports_every_match_once_in_small_slices() {
        let mut t = table(1000);
        let https = Rule {
            dport: PortRange::single(443),
            ..Rule::ANY
        };
        let mut job = Job::new(spec(JobKind::Capture, &[https], u64::MAX, 0));
        let out = run(&mut job, &mut t, 10_000, 7);
        let want: Vec<u32> = (0..1000).filter(|i| i % 3 != 2 && i % 2 == 1).collect();
        assert_eq!(out.iter().map(|r| r.index).collect::<Vec<_>>(), want);
        assert_eq!(job.summary.matched, want.len() as u64);
        assert!(!job.summary.truncated);
        assert_eq!(
            t.len(),
            (0..1000).filter(|i| i % 3 != 2).count() as u32,
            "capture removes nothing"
        );
    }

    #[test]
    fn capture_stops_at_the_cap_and_says_so() {
        let mut t = table(1000);
        let mut job = Job::new(spec(JobKind::Capture, &[Rule::ANY], 10, 0));
        let out = run(&mut job, &mut t, 10_000, 64);
        assert_eq!(out.len(), 10);
        assert!(job.summary.truncated);
    }

    #[test]
    fn flush_removes_matches_even_past_the_cap() {
        let mut t = table(300);
        let http = Rule {
            dport: PortRange::single(80),
            ..Rule::ANY
        };
        let mut job = Job::new(spec(JobKind::Flush, &[http], 5, 0));
        let out = run(&mut job, &mut t, 10_000, 1000);
        assert_eq!(out.len(), 5);
        assert!(job.summary.truncated);
        assert_eq!(
            job.summary.removed,
            (0..300).filter(|i| i % 3 != 2 && i % 2 == 0).count() as u64
        );
        assert!((0..300)
            .map(|i| t.entry(i))
            .filter(|e| e.is_used())
            .all(|e| e.forward_tuple().dport == 443));
        let left = (0..300).filter(|i| i % 3 != 2 && i % 2 == 1).count() as u32;
        // Removed by the job itself, not left for the expiry sweep.
        assert_eq!(t.len(), left);
        // A second flush finds only the others: flushed flows are gone.
        let mut again = Job::new(spec(JobKind::Flush, &[Rule::ANY], 1000, 0));
        let out = run(&mut again, &mut t, 10_000, 1000);
        assert!(out.iter().all(|r| r.tuple.dport == 443));
        assert_eq!(again.summary.removed, left as u64);
        assert!(t.is_empty());
    }

    #[test]
    fn minimum_and_maximum_age() {
        let mut t = table(100);
        let mut s = spec(JobKind::Capture, &[Rule::ANY], u64::MAX, 0);
        s.min_age = 50; // first_seen = index; now = 100: indexes <= 50
        s.max_age = 80; // indexes >= 20
        let mut job = Job::new(s);
        let out = run(&mut job, &mut t, 100, 16);
        assert!(out.iter().all(|r| (20..=50).contains(&r.index)));
        assert_eq!(out.len(), (20..=50).filter(|i| i % 3 != 2).count());
    }

    /// Steps `job` until it has a chunk ready (or is done).
    fn until_emit(job: &mut Job, t: &mut FlowTable) -> Step {
        loop {
            let mut slice = Slice::entries(64);
            match job.step(t, &mut slice, 10_000) {
                Step::Continue => {}
                other => return other,
            }
        }
    }

    #[test]
    fn one_pool_chunk_serves_every_kind_of_job_in_turn() {
        let mut t = table(1000);
        let mut all = Vec::new();
        let mut whole = Job::new(spec(JobKind::Capture, &[Rule::ANY], u64::MAX, 0));
        while until_emit(&mut whole, &mut t) == Step::Emit {
            all.extend(emitted(&mut whole));
        }
        let mut c = JobResults::Records(FlowChunk::default());
        // A capture's chunk into a chunk a query used, a query's into the
        // capture's and into a query's, and a capture's last, short chunk
        // into a full one: each time exactly the job's results come out.
        let mut capture = Job::new(spec(JobKind::Capture, &[Rule::ANY], u64::MAX, 0));
        let mut got = Vec::new();
        while until_emit(&mut capture, &mut t) == Step::Emit {
            capture.take_chunk(&mut c);
            assert!(matches!(c, JobResults::Taken(_)));
            got.extend(flows(&c));
            // Twice: into the capture's chunk, then into a query's.
            for newest in [3, 2] {
                let mut query = Job::new(spec(JobKind::Query, &[Rule::ANY], u64::MAX, newest));
                assert_eq!(until_emit(&mut query, &mut t), Step::Emit);
                query.take_chunk(&mut c);
                let JobResults::Records(r) = &c else {
                    panic!("a query's results are records");
                };
                assert_eq!(r.records().len(), newest);
            }
            c = JobResults::Taken(TakenChunk {
                len: TAKEN_CHUNK,
                ..Default::default()
            });
        }
        assert_eq!(got, all);
        assert!(all.len() % TAKEN_CHUNK != 0, "the last chunk is short");
    }

    #[test]
    fn query_keeps_the_newest_newest_first() {
        let mut t = table(1000);
        let mut job = Job::new(spec(JobKind::Query, &[Rule::ANY], u64::MAX, 20));
        let out = run(&mut job, &mut t, 10_000, 33);
        let want: Vec<u32> = (0..1000u32).rev().filter(|i| i % 3 != 2).take(20).collect();
        assert_eq!(out.iter().map(|r| r.index).collect::<Vec<_>>(), want);
        assert!(job.summary.truncated);
        assert_eq!(job.spec.buffer.capacity(), 40, "the buffer never grew");
    }

    #[test]
    fn flows_made_after_a_query_began_are_not_its_own() {
        // New flows at fresh indexes arrive while the query streams its
        // sorted results: it must not scan again and send more, or some
        // twice, than the newest it kept when its scan ended.
        let mut t = table_with_room(1000, 4096);
        let mut job = Job::new(spec(JobKind::Query, &[Rule::ANY], u64::MAX, 20));
        let mut out = Vec::new();
        let mut arrived = false;
        loop {
            let mut slice = Slice::entries(33);
            match job.step(&mut t, &mut slice, 10_000) {
                Step::Continue => {}
                Step::Emit => {
                    out.extend_from_slice(&emitted(&mut job));
                    if !arrived {
                        arrived = true;
                        // The freed slots are taken first, then fresh ones.
                        let mut fresh = 0;
                        for i in 0..400u32 {
                            let src = [10, 1, (i >> 8) as u8, i as u8];
                            match insert(&mut t, src, (5000, 443, 6), 5_000 + u64::from(i)) {
                                crate::flow::Insert::Inserted(idx) => {
                                    fresh += u32::from(idx >= 1000)
                                }
                                other => panic!("{other:?}"),
                            }
                        }
                        assert!(fresh > 0);
                    }
                }
                Step::Done => break,
            }
        }
        assert!(arrived);
        let want: Vec<u32> = (0..1000u32).rev().filter(|i| i % 3 != 2).take(20).collect();
        assert_eq!(out.iter().map(|r| r.index).collect::<Vec<_>>(), want);
    }

    #[test]
    fn a_query_for_some_ports_keeps_the_newest_flows_of_those_ports() {
        // The newest flows came in on port 0; the port asked for only has
        // older ones, and a query must still find as many as it keeps.
        let mut t = table(1000);
        for i in (0..1000).filter(|i| i % 3 != 2 && i < &300) {
            t.entry_mut(i).in_port = 3;
        }
        let mut s = spec(JobKind::Query, &[Rule::ANY], u64::MAX, 20);
        s.in_ports = PortScope::PerRule(vec![InPorts::only([3, 200])]);
        let mut job = Job::new(s);
        let out = run(&mut job, &mut t, 10_000, 33);
        let want: Vec<u32> = (0..300u32).rev().filter(|i| i % 3 != 2).take(20).collect();
        assert_eq!(out.iter().map(|r| r.index).collect::<Vec<_>>(), want);
        let set = InPorts::only([0, 63, 64, 255]);
        assert!([0, 63, 64, 255].iter().all(|&p| set.contains(p)));
        assert!([1, 62, 65, 254].iter().all(|&p| !set.contains(p)));
        assert!((0..=255).all(|p| InPorts::ANY.contains(p)));
    }

    #[test]
    fn each_rule_of_a_query_takes_only_the_ports_given_for_it() {
        // Entries below 300 came in on port 0, the newer ones on port 1.
        let mut t = table(1000);
        for i in (300..1000).filter(|i| i % 3 != 2) {
            t.entry_mut(i).in_port = 1;
        }
        let to = |port| Rule {
            dport: PortRange::single(port),
            ..Rule::ANY
        };
        let newest = |f: &dyn Fn(u32) -> bool| -> Vec<u32> {
            (0..1000u32)
                .rev()
                .filter(|&i| i % 3 != 2 && f(i))
                .take(20)
                .collect()
        };
        for (rules, sets, want) in [
            // Port 80 on port 0 only: the newer port-80 flows, on port 1,
            // take none of the 20 places.
            (vec![to(80)], vec![[0]], newest(&|i| i % 2 == 0 && i < 300)),
            // Each rule with its own port.
            (
                vec![to(80), to(443)],
                vec![[0], [1]],
                newest(&|i| (i % 2 == 0) == (i < 300)),
            ),
            (
                vec![to(80), to(443)],
                vec![[1], [0]],
                newest(&|i| (i % 2 == 0) == (i >= 300)),
            ),
            // A rule without a set admits nothing.
            (
                vec![to(80), to(443)],
                vec![[1]],
                newest(&|i| i % 2 == 0 && i >= 300),
            ),
        ] {
            let mut s = spec(JobKind::Query, &rules, u64::MAX, 20);
            s.in_ports = PortScope::PerRule(sets.iter().map(|&p| InPorts::only(p)).collect());
            let mut job = Job::new(s);
            let out = run(&mut job, &mut t, 10_000, 33);
            assert_eq!(
                out.iter().map(|r| r.index).collect::<Vec<_>>(),
                want,
                "{sets:?}"
            );
        }
    }

    #[test]
    fn a_passed_deadline_stops_the_slice_within_a_few_entries() {
        let mut t = table(1000);
        // Matches nothing, so no chunk fills before the clock is read.
        let none = Rule {
            dport: PortRange::single(9),
            ..Rule::ANY
        };
        let mut job = Job::new(spec(JobKind::Capture, &[none], u64::MAX, 0));
        let mut slice = Slice {
            entries: 1000,
            deadline: 1, // long past
        };
        assert!(matches!(
            job.step(&mut t, &mut slice, 10_000),
            Step::Continue
        ));
        assert!(slice.is_spent());
        assert_eq!(job.cursor, BATCH, "stopped at the first look at the clock");
    }

    #[test]
    fn matches_left_waiting_are_checked_again() {
        // Table of 1000 (a third removed, and entry 0); a capture of every
        // flow from 10/8 fills its first chunk in the middle of the first
        // batch.
        let mut t = table(1000);
        t.remove(0);
        let ten = Rule {
            src: crate::filter::Cidr::v4([10, 0, 0, 0], 8),
            ..Rule::ANY
        };
        let mut job = Job::new(spec(JobKind::Capture, &[ten], u64::MAX, 0));
        let mut first = Vec::new();
        while job.ready.bits == 0 {
            let mut slice = Slice::entries(1000);
            match job.step(&mut t, &mut slice, 10_000) {
                Step::Emit => first.extend_from_slice(&emitted(&mut job)),
                other => panic!("{other:?} before a chunk filled mid-batch"),
            }
        }
        // Packets come in before the job resumes: each waiting flow ends,
        // and a flow from outside 10/8 takes its entry (freed entries are
        // reused first).
        let mut waiting = Vec::new();
        for w in [job.ready, job.ahead] {
            waiting.extend(set_bits(w.bits).map(|k| w.base + k));
        }
        for &i in &waiting {
            t.remove(i);
            let at = insert(&mut t, [172, 16, 0, i as u8], (5000, 443, 6), 1);
            assert_eq!(at, crate::flow::Insert::Inserted(i));
        }
        let rest = run(&mut job, &mut t, 10_000, 1000);
        let got: Vec<u32> = first.iter().chain(&rest).map(|r| r.index).collect();
        let want: Vec<u32> = (1..1000)
            .filter(|i| i % 3 != 2 && !waiting.contains(i))
            .collect();
        assert!(!waiting.is_empty());
        assert_eq!(got, want);
        assert!(rest.iter().all(|r| r.tuple.sport != 5000));
    }

    #[test]
    fn the_allowance_is_the_share_of_the_total() {
        // 5 %: 95 ticks of packets buy 5 ticks of jobs.
        assert_eq!(Slice::allowance(95, 5), 5);
        assert_eq!(Slice::allowance(100, 50), 100);
        assert!(Slice::allowance(100, 100) > 1 << 60);
        assert_eq!(Slice::allowance(99, 0), 1, "at least 1 %");
    }

    #[test]
    fn query_in_any_order_keeps_exactly_the_newest() {
        // First-seen times a permutation of 0..n, not the table order.
        let n = 997u32;
        let mut t = FlowTable::new(n, crate::flow::FullPolicy::DropNew).unwrap();
        for i in 0..n {
            let seen = (i as u64 * 7919) % n as u64;
            insert(
                &mut t,
                [10, 1, (i >> 8) as u8, i as u8],
                (2000, 53, 17),
                seen,
            );
        }
        for newest in [1usize, 20, 500, 997, 2000] {
            let mut job = Job::new(spec(JobKind::Query, &[Rule::ANY], u64::MAX, newest));
            let out = run(&mut job, &mut t, 10_000, 13);
            let got: Vec<u64> = out.iter().map(|r| r.first_seen).collect();
            let want: Vec<u64> = (0..n as u64).rev().take(newest).collect();
            assert_eq!(got, want, "newest {newest}");
            assert_eq!(
                job.summary.truncated,
                newest < n as usize,
                "newest {newest}"
            );
        }
    }

    #[test]
    fn empty_filter_set_matches_nothing() {
        let mut t = table(100);
        let mut job = Job::new(spec(JobKind::Capture, &[], u64::MAX, 0));
        assert!(run(&mut job, &mut t, 100, 1000).is_empty());
    }
}
