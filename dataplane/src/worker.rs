//! The worker lcore's loop: run to completion, one burst at a time.
//!
//! A worker owns queue k of every port it serves (rx and tx), its command
//! ring end, and (with flow tracking) its flow table. Nothing it touches per
//! packet is shared: it never locks, allocates or waits on control. Each
//! iteration reads top to bottom: rx burst, parse, look up, act, tx burst;
//! then a bounded slice of background work (expiry sweep, commands).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use flowgate_sys::{cpu, Mbuf, MbufBurst, Mempool, RxQueue, TxQueue, BURST_SIZE};

use crate::command::{Command, Reply, WorkerEnd};
use crate::job::{RunningJobs, Slice};
use crate::mirror::{Decision, MirrorConfig, OUTER_LEN};
use crate::reject::{self, AnswerLimit};
use crate::stats::WorkerCounters;
use crate::track::{Action, BurstOut, Tracker};

/// Loop iterations between two looks at the command ring (a power of two).
const COMMAND_POLL_EVERY: u64 = 64;

/// Jobs a worker runs at once; more are refused (control throttles first).
pub const MAX_JOBS: usize = 8;

/// Most table entries the jobs examine in a loop iteration that received
/// packets (the time share usually stops them first).
pub const BUSY_SCAN: u32 = 8192;

/// Most table entries the jobs examine in an idle loop iteration: a
/// selective scan reaches this first, one that reports every flow reaches
/// the iteration's time bound ([`idle_slice_nanos`]) first.
pub const IDLE_SCAN: u32 = 4096;

/// Longest slice (µs) the jobs take in an idle loop iteration. Frames that
/// arrive meanwhile wait in the rx ring: 20 µs is 300 frames at 10GbE line
/// rate and 750 at 25GbE, inside a 1024-descriptor ring. Bounded by entries
/// alone, a match-all capture took 4096 entries in 100-200 µs, long enough
/// for a line-rate burst after an idle spell to overflow the ring. Faster
/// ports or smaller rings shorten it (see [`idle_slice_nanos`]).
const IDLE_SLICE_MICROS: u64 = 20;

/// The shortest idle slice (ns), whatever the ports. The scan looks at the
/// clock after its first batch, so a shorter bound would not be kept anyway.
const MIN_IDLE_SLICE_NANOS: u64 = 1_000;

/// Bits a minimum frame occupies on the wire: 64 bytes, the preamble and
/// the inter-frame gap (84 bytes), which is what fills a ring fastest.
const MIN_FRAME_WIRE_BITS: u64 = 84 * 8;

/// Most credit (ns) the jobs may bank, so a job that waited on a full
/// reply ring does not then take a long bite.
const MAX_CREDIT_NANOS: u64 = 40_000;

/// Least credit (ns) the jobs wait for on a busy worker before they run.
/// A 5 % share of one burst is a couple of hundred ns: spent every
/// iteration, it bought a table entry or two per resume, and resuming
/// (reading the clock, the job's state, restarting the prefetch stream)
/// cost more than the entries. Banked into a few µs, each resume covers
/// tens of entries; the share over time is unchanged.
const JOB_QUANTUM_NANOS: u64 = 3_400;

/// How long (ns) an idle iteration may lend the jobs, given each rx
/// queue's ring size and its port's line rate in Mb/s (0: unknown):
/// [`IDLE_SLICE_MICROS`], or half the time the quickest of the rings takes
/// to fill with minimum frames at line rate when that is shorter, so that
/// traffic resuming mid-slice still finds room.
pub fn idle_slice_nanos(rings: impl IntoIterator<Item = (u16, u32)>) -> u64 {
    rings
        .into_iter()
        .filter(|&(_, mbps)| mbps > 0)
        // bits / (Mb/s) is µs; ×1000 for ns.
        .map(|(desc, mbps)| u64::from(desc) * MIN_FRAME_WIRE_BITS * 1000 / u64::from(mbps) / 2)
        .fold(IDLE_SLICE_MICROS * 1000, u64::min)
        .max(MIN_IDLE_SLICE_NANOS)
}

/// `nanos` in ticks of a `hz` clock, at least one.
fn ticks(nanos: u64, hz: u64) -> u64 {
    (u128::from(nanos) * u128::from(hz) / 1_000_000_000).max(1) as u64
}

/// An rx queue and where its packets go.
#[derive(Debug)]
pub struct RxPath {
    /// The queue to poll.
    pub queue: RxQueue,
    /// Index (into the worker's tx queues, = port index) of the port it belongs to.
    pub in_port: usize,
    /// Index of the port its packets leave by.
    pub out: usize,
    /// The fastest the port can receive, Mb/s (0: unknown).
    pub line_rate_mbps: u32,
}

impl RxPath {
    /// The queue's ring size and its port's line rate, what
    /// [`idle_slice_nanos`] weighs.
    pub fn ring(&self) -> (u16, u32) {
        (self.queue.descriptors(), self.line_rate_mbps)
    }
}

/// What the worker does to packets.
pub enum Processing {
    /// Forward untouched (the testpmd-io baseline).
    Forward,
    /// Track flows and apply the policy.
    Track(Box<Tracker>),
}

impl std::fmt::Debug for Processing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Processing::Forward => f.write_str("Forward"),
            Processing::Track(t) => write!(f, "Track({t:?})"),
        }
    }
}

/// Everything one worker owns.
#[derive(Debug)]
pub struct Worker {
    /// The worker's number (0-based), also its queue id on every port.
    pub id: usize,
    rx: Vec<RxPath>,
    tx: Vec<TxQueue>,
    pool: Arc<Mempool>,
    ring: WorkerEnd,
    stop: Arc<AtomicBool>,
    processing: Processing,
    counters: WorkerCounters,
    pending_reply: Option<Reply>,
    jobs: RunningJobs,
    /// TSC ticks the jobs may still spend in busy iterations (negative:
    /// they overspent and wait).
    job_credit: i64,
    /// [`idle_slice_nanos`] of the worker's rx queues, in TSC ticks.
    idle_slice: u64,
    /// [`MAX_CREDIT_NANOS`] in TSC ticks.
    max_credit: i64,
    /// [`JOB_QUANTUM_NANOS`] in TSC ticks.
    job_quantum: i64,
    /// Mirror copies waiting to be sent, per port.
    mirror_bursts: Vec<MbufBurst<BURST_SIZE>>,
}

impl Worker {
    /// A worker polling `rx`, sending through `tx` (indexed by port),
    /// allocating replies from `pool`, answering control on `ring`. It runs
    /// until `stop` is set.
    pub fn new(
        id: usize,
        rx: Vec<RxPath>,
        tx: Vec<TxQueue>,
        pool: Arc<Mempool>,
        ring: WorkerEnd,
        stop: Arc<AtomicBool>,
        processing: Processing,
    ) -> Self {
        let ports = tx.len();
        // EAL is up (the queues exist), so the clock rate is known.
        let hz = cpu::tsc_hz();
        let idle_slice = ticks(idle_slice_nanos(rx.iter().map(RxPath::ring)), hz);
        Self {
            id,
            rx,
            tx,
            pool,
            ring,
            stop,
            processing,
            counters: WorkerCounters::default(),
            pending_reply: None,
            jobs: RunningJobs::new(MAX_JOBS),
            job_credit: 0,
            idle_slice,
            max_credit: ticks(MAX_CREDIT_NANOS, hz) as i64,
            job_quantum: ticks(JOB_QUANTUM_NANOS, hz) as i64,
            mirror_bursts: (0..ports).map(|_| MbufBurst::new()).collect(),
        }
    }

    /// Runs the loop until told to stop; returns the final counters. The
    /// queues are released when this returns (self is consumed).
    pub fn run(mut self) -> WorkerCounters {
        let mut burst = MbufBurst::<BURST_SIZE>::new();
        let mut decided = Box::<BurstOut>::default();
        while !self.stop.load(Ordering::Relaxed) {
            let now = cpu::tsc();
            let mut busy = false;
            for path in self.rx.iter_mut() {
                let n = path.queue.rx_burst(&mut burst);
                if n == 0 {
                    continue;
                }
                busy = true;
                self.counters.rx_packets += n as u64;
                match &mut self.processing {
                    Processing::Forward => {
                        let r = self.tx[path.out].tx_burst(&mut burst);
                        self.counters.tx_packets += r.sent as u64;
                        self.counters.tx_dropped += r.dropped as u64;
                    }
                    Processing::Track(tracker) => {
                        let mut o = Outputs {
                            tx: &mut self.tx,
                            pool: &self.pool,
                            mirror: &mut self.mirror_bursts,
                        };
                        track_burst(
                            tracker,
                            &mut burst,
                            &mut decided,
                            path,
                            &mut o,
                            now,
                            &mut self.counters,
                        );
                    }
                }
            }
            self.counters.loops += 1;
            self.counters.busy_loops += busy as u64;
            if let Processing::Track(t) = &mut self.processing {
                t.sweep(now, &mut self.counters);
            }
            if !self.jobs.is_empty() {
                self.run_jobs(now, busy);
            }
            if self.counters.loops & (COMMAND_POLL_EVERY - 1) == 0 {
                self.serve_commands();
            }
        }
        // A last look so a counters request racing with stop is answered.
        self.serve_commands();
        self.snapshot()
    }

    fn snapshot(&self) -> WorkerCounters {
        let mut c = self.counters;
        if let Processing::Track(t) = &self.processing {
            c.flows_active = t.table().len() as u64;
        }
        c
    }

    /// Delivers the reply held back by a full ring; false if it still waits.
    fn flush_pending(&mut self) -> bool {
        self.ring.post_held(&mut self.pending_reply)
    }

    /// Posts a reply, or holds it if the ring is full (callers produce no
    /// new reply while one is held).
    fn post(&mut self, r: Reply) -> bool {
        self.ring.post_or_hold(r, &mut self.pending_reply)
    }

    /// Handles the commands waiting on the ring, bounded per call.
    fn serve_commands(&mut self) {
        for _ in 0..8 {
            // Control is slow to collect: take no command until the held
            // reply is delivered.
            if !self.flush_pending() {
                return;
            }
            let Some(cmd) = self.ring.take_command() else {
                return;
            };
            let reply = match cmd {
                Command::ReadCounters { seq, mut into } => {
                    *into = self.snapshot();
                    Reply::Counters {
                        seq,
                        counters: into,
                    }
                }
                Command::CancelJob { op } => {
                    // Already done: its JobDone is on its way.
                    let Some(job) = self.jobs.cancel(op) else {
                        continue;
                    };
                    Reply::JobDone {
                        op,
                        summary: job.summary,
                        spec: job.spec,
                    }
                }
                Command::Stall { millis, release } => {
                    stall(millis, &release);
                    continue;
                }
                Command::InstallMirror(cfg) => match &mut self.processing {
                    Processing::Track(t) => {
                        let generation = cfg.generation;
                        let old = t.set_mirror(cfg);
                        Reply::MirrorInstalled { generation, old }
                    }
                    // Forwarding untouched: nothing to mirror from; give it back.
                    Processing::Forward => Reply::MirrorInstalled {
                        generation: cfg.generation,
                        old: cfg,
                    },
                },
                Command::StartJob(spec) => {
                    let started = match self.processing {
                        Processing::Track(_) => self.jobs.start(spec),
                        Processing::Forward => Err(spec),
                    };
                    match started {
                        Ok(()) => continue,
                        Err(spec) => Reply::JobRefused { op: spec.op, spec },
                    }
                }
            };
            self.post(reply);
        }
    }

    /// Gives the jobs their time. A saturated worker lends them a fixed
    /// share of its time through a credit of TSC ticks: each busy
    /// iteration earns its share, and what the jobs spend (clock reads,
    /// posting chunks and all) is paid back, so over any stretch the
    /// forwarding loses that share and no more, whatever the jobs match.
    /// An idle worker lends them a larger slice freely, bounded in time so
    /// that traffic resuming mid-slice waits in the rx ring, not beyond it.
    fn run_jobs(&mut self, now: u64, busy: bool) {
        if matches!(self.processing, Processing::Forward) {
            return;
        }
        if !busy {
            let start = cpu::tsc();
            self.advance_jobs(now, Slice::until(start + self.idle_slice, IDLE_SCAN));
            self.counters.job_idle_ticks += cpu::tsc().saturating_sub(start);
            return;
        }
        let share = self.jobs.busy_share();
        let start = cpu::tsc();
        let spent = start.saturating_sub(now);
        self.job_credit =
            (self.job_credit + Slice::allowance(spent, share) as i64).min(self.max_credit);
        self.counters.busy_ticks += spent;
        if self.job_credit < self.job_quantum {
            return;
        }
        self.advance_jobs(now, Slice::until(start + self.job_credit as u64, BUSY_SCAN));
        let used = cpu::tsc().saturating_sub(start);
        self.job_credit -= used as i64;
        self.counters.job_busy_ticks += used;
        self.counters.busy_ticks += used;
    }

    /// Advances the jobs by `slice` in all (see [`RunningJobs::advance`]).
    /// The slice is the iteration's, not each job's or each chunk's, so
    /// the time taken from forwarding stays bounded however many jobs run
    /// and however many flows they match.
    fn advance_jobs(&mut self, now: u64, slice: Slice) {
        let Processing::Track(tracker) = &mut self.processing else {
            return;
        };
        self.counters.flows_flushed += self.jobs.advance(
            tracker.table_mut(),
            &mut self.ring,
            &mut self.pending_reply,
            slice,
            now,
        );
    }
}

/// What the tracked path sends through, besides the rx path itself.
struct Outputs<'a> {
    tx: &'a mut [TxQueue],
    pool: &'a Mempool,
    /// Mirror copies waiting, per port.
    mirror: &'a mut [MbufBurst<BURST_SIZE>],
}

/// The tracked path for one received burst: decide, then send, answer,
/// mirror or free.
#[inline]
fn track_burst(
    tracker: &mut Tracker,
    burst: &mut MbufBurst<BURST_SIZE>,
    out: &mut BurstOut,
    path: &RxPath,
    o: &mut Outputs<'_>,
    now: u64,
    c: &mut WorkerCounters,
) {
    let n = burst.len();
    let ports = (path.in_port as u8, path.out as u8);
    tracker.process(burst.as_slice(), ports, now, out, c);
    c.rx_bytes += burst
        .as_slice()
        .iter()
        .map(|m| m.pkt_len() as u64)
        .sum::<u64>();

    // The common case: everything passes and nothing is mirrored; send the
    // burst as it came.
    let plain = out.actions[..n].iter().all(|a| *a == Action::Forward)
        && out.mirror[..n].iter().all(|m| *m == 0);
    if plain {
        let r = o.tx[path.out].tx_burst(burst);
        c.tx_packets += r.sent as u64;
        c.tx_dropped += r.dropped as u64;
        return;
    }

    let mut forward = MbufBurst::<BURST_SIZE>::new();
    let mut replies = MbufBurst::<BURST_SIZE>::new();
    let mut drops = MbufBurst::<BURST_SIZE>::new();
    let (mirror_cfg, answers) = tracker.mirror_and_answers();
    burst.drain_each(|i, m| {
        if out.mirror[i] != 0 {
            // Copies are made before the original goes anywhere; egress
            // copies only of what the verdict lets leave (a copy is made
            // even if the tx ring then refuses the original: counted in
            // tx_dropped, not taken back).
            let d = Decision::decode(out.mirror[i]);
            let forwarded = out.actions[i] == Action::Forward;
            for s in [d.ingress, d.egress.filter(|_| forwarded)]
                .into_iter()
                .flatten()
            {
                mirror_copy(mirror_cfg, s, &m, out.hash[i], o, c);
            }
        }
        match out.actions[i] {
            Action::Forward => {
                let _ = forward.push(m);
            }
            Action::Drop => {
                let _ = drops.push(m);
            }
            Action::Reject => {
                if let Some(r) = answer(o.pool, &m, answers, now, c) {
                    let _ = replies.push(r);
                }
                let _ = drops.push(m);
            }
        }
    });
    if !forward.is_empty() {
        let r = o.tx[path.out].tx_burst(&mut forward);
        c.tx_packets += r.sent as u64;
        c.tx_dropped += r.dropped as u64;
    }
    if !replies.is_empty() {
        let r = o.tx[path.in_port].tx_burst(&mut replies);
        c.rejects_sent += r.sent as u64;
        c.rejects_failed += r.dropped as u64;
    }
    drops.clear();
    flush_mirrors(o, c);
}

/// Queues session `s`'s VXLAN copy of `m` for its target port; never
/// waits: no mbuf or a full queue counts a dropped copy.
#[inline]
fn mirror_copy(
    cfg: &MirrorConfig,
    s: usize,
    m: &Mbuf,
    hash: u32,
    o: &mut Outputs<'_>,
    c: &mut WorkerCounters,
) {
    let port = cfg.target_of(s).port;
    let Some(mut copy) = o.pool.alloc() else {
        c.mirror_dropped += 1;
        return;
    };
    let head = m.data();
    let frame_len = m.pkt_len() as usize;
    let len = cfg.copy_len(s, frame_len);
    // The common case, one segment in and one out (append fails only when
    // the copy does not fit one mbuf); the rest builds a chain.
    let one = head.len() == frame_len
        && match copy.append(len as u16) {
            Some(buf) => {
                cfg.encapsulate(s, head, hash, buf);
                true
            }
            None => false,
        };
    if !one && !chain_copy(cfg, s, m, hash, len, &mut copy, o.pool) {
        c.mirror_dropped += 1;
        return;
    }
    if let Err(copy) = o.mirror[port].push(copy) {
        // Full: send what is queued, then queue this one.
        let r = o.tx[port].tx_burst(&mut o.mirror[port]);
        c.mirror_copies += r.sent as u64;
        c.mirror_dropped += r.dropped as u64;
        let _ = o.mirror[port].push(copy);
    }
}

/// Builds session `s`'s `len`-byte copy of a frame that came in over
/// several segments or does not fit one mbuf (a jumbo frame) in `copy`
/// (empty) and more mbufs from `pool` chained to it; false when the pool
/// runs short.
#[cold]
#[inline(never)]
fn chain_copy(
    cfg: &MirrorConfig,
    s: usize,
    m: &Mbuf,
    hash: u32,
    len: usize,
    copy: &mut Mbuf,
    pool: &Mempool,
) -> bool {
    let inner = len - OUTER_LEN;
    let first = len.min(usize::from(copy.tailroom()));
    let Some(buf) = copy.append(first as u16) else {
        return false;
    };
    let (outer, rest) = buf.split_at_mut(OUTER_LEN);
    cfg.outer_header(s, len, hash, outer);
    // A chain whose segments hold less than its length says (a driver's
    // fault) ends the copy rather than the loop.
    let mut done = m.read(0, rest);
    if done < rest.len() {
        return false;
    }
    while done < inner {
        let Some(mut seg) = pool.alloc() else {
            return false;
        };
        let n = (inner - done).min(usize::from(seg.tailroom()));
        let Some(room) = seg.append(n as u16) else {
            return false;
        };
        if m.read(done, room) < n || copy.chain(seg).is_err() {
            return false;
        }
        done += n;
    }
    true
}

/// Sends every queued mirror copy.
#[inline]
fn flush_mirrors(o: &mut Outputs<'_>, c: &mut WorkerCounters) {
    for (port, q) in o.mirror.iter_mut().enumerate() {
        if !q.is_empty() {
            let r = o.tx[port].tx_burst(q);
            c.mirror_copies += r.sent as u64;
            c.mirror_dropped += r.dropped as u64;
        }
    }
}

/// The RST or ICMP unreachable answering `m`, in a fresh mbuf; `None`
/// when no answer is due (to an ICMP error, a RST...), or when one is due
/// but over the rate limit or without an mbuf (both counted).
#[inline(never)]
fn answer(
    pool: &Mempool,
    m: &Mbuf,
    answers: &mut AnswerLimit,
    now: u64,
    c: &mut WorkerCounters,
) -> Option<Mbuf> {
    // The limit first: building an answer (copying and summing up to
    // 1280 bytes) is the cost it caps under a flood. Over it, a packet that
    // would have got no answer anyway (a RST...) is counted as limited too.
    if !answers.has_room(now) {
        c.rejects_limited += 1;
        return None;
    }
    let mut buf = [0u8; reject::MAX_REPLY];
    // The answer goes in one mbuf: with a small data room an ICMPv6 error
    // quotes less rather than failing.
    let room = usize::from(pool.segment_room()).min(buf.len());
    let len = reject::build(m.data(), m.pkt_len() as usize, &mut buf[..room])?;
    answers.admit(now);
    let out = pool.alloc().and_then(|mut out| {
        out.append(len as u16)?.copy_from_slice(&buf[..len]);
        Some(out)
    });
    if out.is_none() {
        c.rejects_failed += 1;
    }
    out
}

/// Fault injection: sleeps `millis` ms, or until `release` is set;
/// returns whether it was released. Sleeps in short steps because a
/// stall control ends early must not hold the worker for the rest of its
/// time (a test stalls for a minute and releases once its checks are done).
fn stall(millis: u32, release: &AtomicBool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_millis(u64::from(millis));
    loop {
        if release.load(Ordering::Acquire) {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_ends_when_released_or_when_its_time_is_up() {
        // Released before its minute is up (set first: a stall that ignored
        // the flag would run its minute and report it was not released).
        assert!(stall(60_000, &AtomicBool::new(true)));
        assert!(!stall(0, &AtomicBool::new(false)));
        // Released from another thread while it sleeps.
        let release = Arc::new(AtomicBool::new(false));
        let setter = {
            let r = release.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                r.store(true, Ordering::Release);
            })
        };
        assert!(stall(60_000, &release));
        setter.join().unwrap();
    }

    #[test]
    fn the_idle_slice_leaves_half_the_quickest_ring_free() {
        // Nothing known about the ports: the fixed bound.
        assert_eq!(idle_slice_nanos([]), 20_000);
        assert_eq!(idle_slice_nanos([(1024, 0)]), 20_000);
        // 1024 descriptors at 10GbE fill in 68.8 µs: the fixed bound is shorter.
        assert_eq!(idle_slice_nanos([(1024, 10_000)]), 20_000);
        // At 25GbE they fill in 27.5 µs, at 100GbE in 6.9 µs.
        assert_eq!(idle_slice_nanos([(1024, 25_000)]), 13_762);
        assert_eq!(idle_slice_nanos([(1024, 100_000)]), 3_440);
        // The quickest ring of the worker decides.
        assert_eq!(
            idle_slice_nanos([(4096, 100_000), (128, 10_000), (1024, 0)]),
            4_300
        );
        // Never below the scan's own granularity.
        assert_eq!(idle_slice_nanos([(64, 200_000)]), 1_000);
    }

    #[test]
    fn durations_become_ticks_of_the_clock() {
        assert_eq!(ticks(20_000, 2_400_000_000), 48_000);
        assert_eq!(ticks(3_400, 2_400_000_000), 8_160);
        assert_eq!(ticks(40_000, 3_000_000_000), 120_000);
        // A clock too slow to tick within the span still gives one tick.
        assert_eq!(ticks(1, 1_000), 1);
        // No overflow for long spans on fast clocks.
        assert_eq!(ticks(u64::MAX / 1_000, 5_000_000_000), u64::MAX / 1_000 * 5);
    }
}
