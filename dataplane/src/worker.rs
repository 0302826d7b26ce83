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
use crate::job::{Job, Step};
use crate::reject;
use crate::stats::WorkerCounters;
use crate::track::{Action, Tracker};

/// Loop iterations between two looks at the command ring (a power of two).
const COMMAND_POLL_EVERY: u64 = 64;

/// Jobs a worker runs at once; more are refused (control throttles first).
pub const MAX_JOBS: usize = 8;

/// Table entries a job examines per loop iteration when packets arrived;
/// an idle iteration does [`IDLE_SCAN`] instead.
pub const BUSY_SCAN: u32 = 128;

/// Table entries a job examines per idle loop iteration.
pub const IDLE_SCAN: u32 = 4096;

/// An rx queue and where its packets go.
#[derive(Debug)]
pub struct RxPath {
    /// The queue to poll.
    pub queue: RxQueue,
    /// Index (into the worker's tx queues, = port index) of the port it belongs to.
    pub in_port: usize,
    /// Index of the port its packets leave by.
    pub out: usize,
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
    jobs: Vec<Job>,
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
            // Allocated once here; the loop only pushes within capacity.
            jobs: Vec::with_capacity(MAX_JOBS),
        }
    }

    /// Runs the loop until told to stop; returns the final counters. The
    /// queues are released when this returns (self is consumed).
    pub fn run(mut self) -> WorkerCounters {
        let mut burst = MbufBurst::<BURST_SIZE>::new();
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
                        track_burst(
                            tracker,
                            &mut burst,
                            path,
                            &mut self.tx,
                            &self.pool,
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
                self.advance_jobs(now, if busy { BUSY_SCAN } else { IDLE_SCAN });
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
        Self::deliver(&mut self.ring, &mut self.pending_reply)
    }

    /// Posts a reply, or holds it if the ring is full (callers produce no
    /// new reply while one is held).
    fn post(&mut self, r: Reply) -> bool {
        debug_assert!(self.pending_reply.is_none());
        match self.ring.post(r) {
            Ok(()) => true,
            Err(r) => {
                self.pending_reply = Some(r);
                false
            }
        }
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
                Command::ReadCounters { seq } => Reply::Counters {
                    seq,
                    counters: self.snapshot(),
                },
                Command::StartJob(spec) => {
                    let tracking = matches!(self.processing, Processing::Track(_));
                    if self.jobs.len() < self.jobs.capacity() && tracking {
                        self.jobs.push(Job::new(spec));
                        continue;
                    }
                    Reply::JobRefused { op: spec.op, spec }
                }
            };
            self.post(reply);
        }
    }

    /// Advances every job by up to `budget` table entries, posting results.
    fn advance_jobs(&mut self, now: u64, budget: u32) {
        let Processing::Track(tracker) = &mut self.processing else {
            return;
        };
        let mut j = 0;
        while j < self.jobs.len() {
            if self.pending_reply.is_some()
                && !Self::deliver(&mut self.ring, &mut self.pending_reply)
            {
                return;
            }
            let job = &mut self.jobs[j];
            let before = job.summary.removed;
            let step = job.step(tracker.table_mut(), budget, now);
            self.counters.flows_flushed += job.summary.removed - before;
            match step {
                Step::Continue => j += 1,
                Step::Emit(chunk) => {
                    let r = Reply::Flows {
                        op: job.spec.op,
                        chunk,
                    };
                    if let Err(r) = self.ring.post(r) {
                        self.pending_reply = Some(r);
                        return;
                    }
                }
                Step::Done => {
                    let job = self.jobs.swap_remove(j);
                    let r = Reply::JobDone {
                        op: job.spec.op,
                        summary: job.summary,
                        spec: job.spec,
                    };
                    if let Err(r) = self.ring.post(r) {
                        self.pending_reply = Some(r);
                        return;
                    }
                }
            }
        }
    }

    /// Posts the held reply, if any; false if the ring is still full.
    fn deliver(ring: &mut WorkerEnd, pending: &mut Option<Reply>) -> bool {
        match pending.take() {
            None => true,
            Some(r) => match ring.post(r) {
                Ok(()) => true,
                Err(r) => {
                    *pending = Some(r);
                    false
                }
            },
        }
    }
}

/// The tracked path for one received burst: decide, then send, answer or free.
#[inline]
fn track_burst(
    tracker: &mut Tracker,
    burst: &mut MbufBurst<BURST_SIZE>,
    path: &RxPath,
    tx: &mut [TxQueue],
    pool: &Mempool,
    now: u64,
    c: &mut WorkerCounters,
) {
    let n = burst.len();
    let mut actions = [Action::Forward; BURST_SIZE];
    let mut lens = [0u32; BURST_SIZE];
    {
        let mut frames: [&[u8]; BURST_SIZE] = [&[]; BURST_SIZE];
        for (i, m) in burst.as_slice().iter().enumerate() {
            frames[i] = m.data();
            lens[i] = m.pkt_len();
        }
        tracker.process(
            &frames[..n],
            &lens[..n],
            path.in_port as u8,
            now,
            &mut actions,
            c,
        );
    }
    c.rx_bytes += lens[..n].iter().map(|&l| l as u64).sum::<u64>();

    let mut forward = MbufBurst::<BURST_SIZE>::new();
    let mut replies = MbufBurst::<BURST_SIZE>::new();
    let mut drops = MbufBurst::<BURST_SIZE>::new();
    burst.drain_each(|i, m| match actions[i] {
        Action::Forward => {
            let _ = forward.push(m);
        }
        Action::Drop => {
            let _ = drops.push(m);
        }
        Action::Reject => {
            // None: nothing is due (an ICMP error, a RST...) or no mbuf.
            if let Some(r) = answer(pool, &m) {
                let _ = replies.push(r);
            }
            let _ = drops.push(m);
        }
    });
    if !forward.is_empty() {
        let r = tx[path.out].tx_burst(&mut forward);
        c.tx_packets += r.sent as u64;
        c.tx_dropped += r.dropped as u64;
    }
    if !replies.is_empty() {
        let r = tx[path.in_port].tx_burst(&mut replies);
        c.rejects_sent += r.sent as u64;
        c.rejects_failed += r.dropped as u64;
    }
    drops.clear();
}

/// Builds the RST or ICMP unreachable answering `m` in a fresh mbuf.
fn answer(pool: &Mempool, m: &Mbuf) -> Option<Mbuf> {
    let mut buf = [0u8; reject::MAX_REPLY];
    let len = reject::build(m.data(), &mut buf)?;
    let mut out = pool.alloc()?;
    out.append(len as u16)?.copy_from_slice(&buf[..len]);
    Some(out)
}
