//! The control side of the worker rings.
//!
//! One task owns every worker's [`ControlEnd`]. API handlers and the stats
//! printer ask it for things through a channel and await the answer; it
//! posts commands, collects replies on a short timer, and answers when every
//! worker has replied or a deadline has passed. Nothing here spins or blocks
//! the HTTP thread, and nothing blocks a worker.
//!
//! A job is counted from the moment an API handler reserves it
//! ([`Dispatcher::reserve_job`]) until every worker has given it back, not
//! until its answer: a job whose deadline passes is cancelled on the
//! workers, and still holds its place (and its results are still drained)
//! until they confirm. So the API throttles before a worker would refuse,
//! whichever face (operations or queries) took the places.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowgate_dataplane::command::{Command, ControlEnd, Reply};
use flowgate_dataplane::filter::RuleSet;
/// A captured or flushed flow as control keeps it: as the worker reported
/// it, with the worker that holds it filled in.
pub use flowgate_dataplane::job::TakenFlow;
use flowgate_dataplane::job::{FlowRecord, JobKind, JobResults, JobSpec, JobSummary, PortScope};
use flowgate_dataplane::mirror::MirrorConfig;
use flowgate_dataplane::stats::WorkerCounters;
use flowgate_dataplane::worker::MAX_JOBS;
use flowgate_sys::HugeVec;
use tokio::sync::{mpsc, oneshot};

/// How often the reply rings are drained.
const POLL: Duration = Duration::from_millis(1);

/// Most flows per worker to make room for up front (320 MiB); beyond it,
/// room is made as flows arrive.
const MAX_ROOM_PER_WORKER: u64 = 1 << 22;

/// A job to run on every worker.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// Capture, flush or query.
    pub kind: JobKind,
    /// Flows matching any rule (forward tuple).
    pub filters: Arc<RuleSet>,
    /// Minimum flow age, seconds.
    pub min_age_secs: u64,
    /// Maximum flow age (created within), seconds; `None`: any.
    pub max_age_secs: Option<u64>,
    /// Most results per worker (capture/flush).
    pub result_cap: u64,
    /// Flows to make room for per worker before the first arrives
    /// (capture/flush): at most the result cap and the flow table's
    /// capacity. More room is made as flows arrive.
    pub room_per_worker: u64,
    /// For a query: the newest N per worker.
    pub newest: usize,
    /// How long to wait for every worker.
    pub deadline: Duration,
    /// Percent of a saturated worker's time the job may take.
    pub busy_share: u32,
    /// Which flows it may take by the port their opener's packets arrive on.
    pub in_ports: PortScope,
}

/// What came back.
#[derive(Debug, Default)]
pub struct JobOutcome {
    /// A query's records, with the worker that holds each flow.
    pub records: Vec<(usize, FlowRecord)>,
    /// A capture's or flush's flows, a segment per worker, no more than
    /// the result cap in all.
    pub flows: FlowSegments,
    /// Each worker's summary; `None` if it did not finish in time.
    pub summaries: Vec<Option<JobSummary>>,
    /// Workers that refused (too many jobs) or whose ring was full.
    pub refused: Vec<usize>,
    /// TSC when the outcome was assembled (to turn TSC stamps into ages).
    pub tsc_now: u64,
}

impl JobOutcome {
    /// Whether every worker finished.
    pub fn complete(&self) -> bool {
        self.refused.is_empty() && self.summaries.iter().all(Option::is_some)
    }

    /// Whether some worker reported that results were cut at the cap.
    pub fn truncated(&self) -> bool {
        self.summaries.iter().flatten().any(|s| s.truncated)
    }
}

/// A capture's or flush's flows as they arrive: one segment per worker,
/// each in table order, so that joining them in worker order gives the
/// (worker, index) order pages are stable in without sorting. Only the
/// first `cap` flows of that order are ever reported, so a flow that could
/// not be among them is dropped as it arrives: control holds at most `cap`
/// flows for an operation, not one cap per worker.
///
/// Segments are in huge pages when the pool has them: a million flows in
/// ordinary pages took 20,000 page faults, half of control's time for the
/// operation.
#[derive(Debug, Clone)]
pub struct FlowSegments {
    segments: Vec<HugeVec<TakenFlow>>,
    /// Most flows kept, all segments together.
    cap: usize,
    /// Flows a segment makes room for when its first arrive.
    room: usize,
    kept: usize,
    dropped: bool,
}

impl Default for FlowSegments {
    fn default() -> Self {
        FlowSegments::new(0, u64::MAX, 0)
    }
}

impl FlowSegments {
    /// Room for `workers` segments keeping at most `cap` flows together;
    /// each segment makes room for up to `room` flows when its first
    /// arrive (more is made as they do).
    pub fn new(workers: usize, cap: u64, room: u64) -> FlowSegments {
        FlowSegments {
            segments: (0..workers).map(|_| HugeVec::new()).collect(),
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            room: usize::try_from(room).unwrap_or(usize::MAX),
            kept: 0,
            dropped: false,
        }
    }

    /// Flows kept.
    pub fn len(&self) -> usize {
        self.kept
    }

    /// Whether none are kept.
    pub fn is_empty(&self) -> bool {
        self.kept == 0
    }

    /// Whether some flow that arrived was dropped at the cap.
    pub fn dropped(&self) -> bool {
        self.dropped
    }

    /// Adds `worker`'s next flows (as its chunks arrive: in table order).
    pub fn push(&mut self, worker: usize, flows: &[TakenFlow]) {
        if worker >= self.segments.len() {
            self.segments.resize_with(worker + 1, HugeVec::new);
        }
        let before: usize = self.segments[..worker].iter().map(|s| s.len()).sum();
        let seg = &mut self.segments[worker];
        // Earlier workers' segments only grow, so a flow beyond the cap
        // now stays beyond it.
        let room = self.cap.saturating_sub(before + seg.len());
        let take = flows.len().min(room);
        self.dropped |= take < flows.len();
        if take == 0 {
            return;
        }
        if seg.capacity() == 0 {
            *seg = HugeVec::with_capacity(self.room.min(room).max(take));
        }
        let w = worker as u32;
        debug_assert!(
            seg.last().is_none_or(|l| l.index < flows[0].index)
                && flows[..take].is_sorted_by_key(|f| f.index),
            "a worker reports its flows in table order"
        );
        seg.extend(flows[..take].iter().map(|f| TakenFlow { worker: w, ..*f }));
        self.kept += take;
        // Later workers' flows that no longer fit are dropped, last first.
        for later in self.segments[worker + 1..].iter_mut().rev() {
            if self.kept <= self.cap {
                break;
            }
            let cut = (self.kept - self.cap).min(later.len());
            if cut == 0 {
                continue;
            }
            later.truncate(later.len() - cut);
            self.kept -= cut;
            self.dropped = true;
            // Give back what was cut once it is half the room, so that
            // dropped flows do not stay resident (a segment cut once
            // never grows again) at a munmap per halving, not per chunk.
            if later.len() <= later.capacity() / 2 {
                later.trim();
            }
        }
    }

    /// The first `cap` flows in (worker, index) order, and whether any
    /// flow that arrived is not among them.
    pub fn join(self, cap: usize) -> (HugeVec<TakenFlow>, bool) {
        let cut = self.dropped || self.kept > cap;
        let want = self.kept.min(cap);
        let mut full = self.segments.into_iter().filter(|s| !s.is_empty());
        let Some(mut first) = full.next() else {
            return (HugeVec::new(), cut);
        };
        if first.len() >= want {
            // One worker matched (or the first alone fills the cap): no copy.
            first.truncate(want);
            return (first, cut);
        }
        let mut all = HugeVec::with_capacity(want);
        all.extend(first.iter().copied());
        drop(first);
        for s in full {
            let n = (want - all.len()).min(s.len());
            all.extend(s[..n].iter().copied());
            if all.len() == want {
                break;
            }
        }
        (all, cut)
    }
}

enum Request {
    Stall {
        worker: usize,
        millis: u32,
        answer: oneshot::Sender<bool>,
    },
    Release {
        answer: oneshot::Sender<usize>,
    },
    Mirror {
        cfg: Arc<MirrorConfig>,
        deadline: Duration,
        answer: oneshot::Sender<Vec<bool>>,
    },
    Counters {
        deadline: Duration,
        answer: oneshot::Sender<Vec<Option<WorkerCounters>>>,
    },
    Job {
        req: JobRequest,
        ticket: JobTicket,
        answer: oneshot::Sender<JobOutcome>,
    },
}

/// A handle for asking the workers things.
#[derive(Clone, Debug)]
pub struct Dispatcher {
    tx: mpsc::Sender<Request>,
    workers: usize,
    jobs: Arc<AtomicUsize>,
}

/// A place for one job on every worker, from [`Dispatcher::reserve_job`]:
/// given back when dropped, which the pump does once every worker has
/// finished, refused or dropped the job.
#[derive(Debug)]
pub struct JobTicket(Arc<AtomicUsize>);

impl Drop for JobTicket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct PendingCounters {
    got: Vec<Option<WorkerCounters>>,
    deadline: Instant,
    answer: oneshot::Sender<Vec<Option<WorkerCounters>>>,
}

struct PendingMirror {
    generation: u32,
    installed: Vec<bool>,
    deadline: Instant,
    answer: oneshot::Sender<Vec<bool>>,
}

struct PendingJob {
    /// A query's answer is what the workers that could run it found; an
    /// operation's is worthless once one worker could not.
    kind: JobKind,
    outcome: JobOutcome,
    deadline: Instant,
    /// `None` once answered (finished, the deadline passed, or a worker
    /// refused an operation).
    answer: Option<oneshot::Sender<JobOutcome>>,
    /// Per worker: the job may still be there (posted, and neither done
    /// nor refused).
    running: Vec<bool>,
    /// Per worker: cancelled (after the answer).
    cancelled: Vec<bool>,
    /// Held until no worker runs the job.
    _ticket: JobTicket,
}

impl Dispatcher {
    /// Starts the pump task on the current runtime (a `LocalSet`).
    pub fn spawn(rings: Vec<ControlEnd>) -> Dispatcher {
        let (tx, rx) = mpsc::channel(64);
        let workers = rings.len();
        tokio::task::spawn_local(pump(rings, rx));
        Dispatcher {
            tx,
            workers,
            jobs: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A place for a job, unless the workers already have as many as they
    /// run at once ([`MAX_JOBS`]; jobs past their deadline that a worker
    /// has not yet dropped count too): then the caller answers with its
    /// face's throttling error, where a worker would refuse the job.
    pub fn reserve_job(&self) -> Option<JobTicket> {
        self.jobs
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_JOBS).then_some(n + 1)
            })
            .ok()
            .map(|_| JobTicket(self.jobs.clone()))
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The workers that do not answer their command ring within
    /// `deadline`, as a comma-separated list ("" when all answer).
    pub async fn silent_workers(&self, deadline: Duration) -> String {
        let answers = self.worker_counters(deadline).await;
        let silent: Vec<String> = (0..answers.len())
            .filter(|&w| answers[w].is_none())
            .map(|w| w.to_string())
            .collect();
        silent.join(", ")
    }

    /// Every worker's counters; `None` for a worker that did not answer
    /// within `deadline`.
    pub async fn worker_counters(&self, deadline: Duration) -> Vec<Option<WorkerCounters>> {
        let (answer, rx) = oneshot::channel();
        if self
            .tx
            .send(Request::Counters { deadline, answer })
            .await
            .is_err()
        {
            return vec![None; self.workers];
        }
        rx.await.unwrap_or_else(|_| vec![None; self.workers])
    }

    /// Fault injection: makes `worker` stop for `millis` ms. Returns whether
    /// the command was posted.
    pub async fn stall_worker(&self, worker: usize, millis: u32) -> bool {
        let (answer, rx) = oneshot::channel();
        if self
            .tx
            .send(Request::Stall {
                worker,
                millis,
                answer,
            })
            .await
            .is_err()
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Fault injection: ends every stall a worker is in or has yet to take
    /// from its ring. Returns how many were ended.
    pub async fn release_stalls(&self) -> usize {
        let (answer, rx) = oneshot::channel();
        if self.tx.send(Request::Release { answer }).await.is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    /// Installs a mirror configuration on every worker; returns, per
    /// worker, whether it confirmed within `deadline`. The configurations
    /// the workers give back are freed here, on control.
    pub async fn install_mirror(&self, cfg: Arc<MirrorConfig>, deadline: Duration) -> Vec<bool> {
        let (answer, rx) = oneshot::channel();
        if self
            .tx
            .send(Request::Mirror {
                cfg,
                deadline,
                answer,
            })
            .await
            .is_err()
        {
            return vec![false; self.workers];
        }
        rx.await.unwrap_or_else(|_| vec![false; self.workers])
    }

    /// Jobs placed on the workers: reserved, and not yet given back by
    /// every worker.
    pub fn jobs_placed(&self) -> usize {
        self.jobs.load(Ordering::Acquire)
    }

    /// Runs a job on every worker, in the place `ticket` reserved, and
    /// waits for all of them (or the deadline, after which the workers
    /// that have not finished are told to drop it).
    pub async fn run_job(&self, ticket: JobTicket, req: JobRequest) -> JobOutcome {
        let (answer, rx) = oneshot::channel();
        let n = self.workers;
        let failed = || JobOutcome {
            summaries: vec![None; n],
            refused: (0..n).collect(),
            ..JobOutcome::default()
        };
        let job = Request::Job {
            req,
            ticket,
            answer,
        };
        if self.tx.send(job).await.is_err() {
            return failed();
        }
        rx.await.unwrap_or_else(|_| failed())
    }
}

fn spec_for(op: u64, r: &JobRequest, tsc_hz: u64) -> Box<JobSpec> {
    Box::new(JobSpec {
        op,
        kind: r.kind,
        filters: r.filters.clone(),
        min_age: r.min_age_secs.saturating_mul(tsc_hz),
        max_age: r.max_age_secs.map_or(u64::MAX, |s| {
            s.saturating_mul(tsc_hz).saturating_add(tsc_hz - 1)
        }),
        result_cap: r.result_cap,
        busy_share: r.busy_share,
        in_ports: r.in_ports.clone(),
        newest: r.newest,
        // Allocated here, on control, so the worker never allocates: twice
        // the flows asked for (see Job::keep_newest). Written once here, so
        // that the worker's first writes do not fault its pages in.
        buffer: if r.kind == JobKind::Query {
            let mut b = vec![FlowRecord::default(); 2 * r.newest];
            b.clear();
            b
        } else {
            Vec::new()
        },
    })
}

async fn pump(mut rings: Vec<ControlEnd>, mut rx: mpsc::Receiver<Request>) {
    let tsc_hz = flowgate_sys::cpu::tsc_hz().max(1);
    let mut next_seq: u64 = 1;
    let mut counters: HashMap<u64, PendingCounters> = HashMap::new();
    let mut jobs: HashMap<u64, PendingJob> = HashMap::new();
    let mut mirrors: Vec<PendingMirror> = Vec::new();
    // The release flags of the stalls posted: one still shared with its
    // worker is live. Dropped here, once the worker has let go of its
    // clone, so that the worker never frees one.
    let mut stalls: Vec<Arc<AtomicBool>> = Vec::new();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            req = rx.recv() => {
                let Some(req) = req else { return };
                let seq = next_seq;
                next_seq += 1;
                match req {
                    Request::Counters { deadline, answer } => {
                        for ring in rings.iter_mut() {
                            // A full ring means that worker is not keeping
                            // up; it shows as not answering.
                            let _ = ring.post(Command::ReadCounters { seq, into: Box::default() });
                        }
                        let got = vec![None; rings.len()];
                        counters.insert(seq, PendingCounters { got, deadline: Instant::now() + deadline, answer });
                    }
                    Request::Stall { worker, millis, answer } => {
                        stalls.retain(|f| Arc::strong_count(f) > 1);
                        let release = Arc::new(AtomicBool::new(false));
                        let stall = Command::Stall { millis, release: release.clone() };
                        let posted = rings.get_mut(worker).is_some_and(|r| r.post(stall).is_ok());
                        if posted {
                            stalls.push(release);
                        }
                        let _ = answer.send(posted);
                    }
                    Request::Release { answer } => {
                        stalls.retain(|f| Arc::strong_count(f) > 1);
                        for f in &stalls {
                            f.store(true, Ordering::Release);
                        }
                        let _ = answer.send(stalls.len());
                    }
                    Request::Mirror { cfg, deadline, answer } => {
                        let mut installed = vec![false; rings.len()];
                        for (w, ring) in rings.iter_mut().enumerate() {
                            // A full ring: that worker keeps its old
                            // configuration and is reported as not installed.
                            if ring.post(Command::InstallMirror(cfg.clone())).is_err() {
                                installed[w] = false;
                            }
                        }
                        mirrors.push(PendingMirror { generation: cfg.generation, installed, deadline: Instant::now() + deadline, answer });
                    }
                    Request::Job { req, ticket, answer } => {
                        let mut outcome = JobOutcome { summaries: vec![None; rings.len()], ..JobOutcome::default() };
                        if req.kind != JobKind::Query {
                            let room = req.room_per_worker.min(MAX_ROOM_PER_WORKER);
                            outcome.flows = FlowSegments::new(rings.len(), req.result_cap, room);
                        }
                        // An operation goes to every worker or none: one
                        // posted before another was found full would
                        // remove flows for a flush that then fails at once.
                        // A query answers with what the others find.
                        let all = req.kind == JobKind::Query || rings.iter().all(ControlEnd::has_room);
                        let mut running = vec![all; rings.len()];
                        for (w, ring) in rings.iter_mut().enumerate() {
                            if !running[w] || ring.post(Command::StartJob(spec_for(seq, &req, tsc_hz))).is_err() {
                                outcome.refused.push(w);
                                running[w] = false;
                            }
                        }
                        let cancelled = vec![false; rings.len()];
                        let deadline = Instant::now() + req.deadline;
                        jobs.insert(seq, PendingJob { kind: req.kind, outcome, deadline, answer: Some(answer), running, cancelled, _ticket: ticket });
                    }
                }
            }
            _ = tick.tick(), if !counters.is_empty() || !jobs.is_empty() || !mirrors.is_empty() => {
                for (w, ring) in rings.iter_mut().enumerate() {
                    while let Some(reply) = ring.take_reply() {
                        match reply {
                            Reply::Counters { seq, counters: c } => {
                                if let Some(p) = counters.get_mut(&seq) {
                                    p.got[w] = Some(*c);
                                }
                            }
                            Reply::Flows { op, chunk } => {
                                // Results of a job already answered are dropped.
                                if let Some(p) = jobs.get_mut(&op).filter(|p| p.answer.is_some()) {
                                    match &*chunk {
                                        JobResults::Records(c) => p.outcome.records.extend(c.records().iter().map(|r| (w, *r))),
                                        JobResults::Taken(c) => p.outcome.flows.push(w, c.records()),
                                    }
                                }
                                ring.give_back(chunk);
                            }
                            // The spec is dropped here, on control.
                            Reply::JobDone { op, summary, spec: _ } => {
                                if let Some(p) = jobs.get_mut(&op) {
                                    p.running[w] = false;
                                    if p.answer.is_some() {
                                        p.outcome.summaries[w] = Some(summary);
                                    }
                                }
                            }
                            // The replaced configuration is dropped here, on control.
                            Reply::MirrorInstalled { generation, old: _ } => {
                                for p in mirrors.iter_mut().filter(|p| p.generation == generation) {
                                    p.installed[w] = true;
                                }
                            }
                            Reply::JobRefused { op, spec: _ } => {
                                if let Some(p) = jobs.get_mut(&op) {
                                    p.running[w] = false;
                                    p.outcome.refused.push(w);
                                }
                            }
                        }
                    }
                }
                let now = Instant::now();
                counters.retain(|_, p| {
                    let done = p.got.iter().all(Option::is_some) || now >= p.deadline;
                    if done {
                        let (tx, _) = oneshot::channel();
                        let answer = std::mem::replace(&mut p.answer, tx);
                        let _ = answer.send(std::mem::take(&mut p.got));
                    }
                    !done
                });
                let mut still = Vec::new();
                for p in mirrors.drain(..) {
                    if p.installed.iter().all(|&x| x) || now >= p.deadline {
                        let _ = p.answer.send(p.installed);
                    } else {
                        still.push(p);
                    }
                }
                mirrors = still;
                // A worker that has stopped answers nothing more.
                for (w, ring) in rings.iter().enumerate() {
                    if ring.worker_gone() {
                        jobs.values_mut().for_each(|p| p.running[w] = false);
                    }
                }
                for (&op, p) in jobs.iter_mut() {
                    let finished = !p.running.contains(&true);
                    // An operation a worker refused ends FAILED whatever
                    // the others do: they stop now (a flush would
                    // otherwise remove flows for an operation that failed).
                    let refused = p.kind != JobKind::Query && !p.outcome.refused.is_empty();
                    if finished || refused || now >= p.deadline {
                        if let Some(answer) = p.answer.take() {
                            p.outcome.tsc_now = flowgate_sys::cpu::tsc();
                            let _ = answer.send(std::mem::take(&mut p.outcome));
                        }
                    }
                    if p.answer.is_none() {
                        // Answered early (the deadline passed, or a worker
                        // refused): the workers still at it drop it. A
                        // full ring is tried again on the next tick.
                        for (w, ring) in rings.iter_mut().enumerate() {
                            if p.running[w] && !p.cancelled[w] && ring.post(Command::CancelJob { op }).is_ok() {
                                p.cancelled[w] = true;
                            }
                        }
                    }
                }
                // The ticket goes with the last worker's answer.
                jobs.retain(|_, p| p.answer.is_some() || p.running.contains(&true));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: JobKind, newest: usize) -> JobRequest {
        JobRequest {
            kind,
            filters: Arc::new(RuleSet::compile(&[])),
            min_age_secs: 2,
            max_age_secs: Some(3),
            result_cap: 10,
            room_per_worker: 10,
            newest,
            deadline: Duration::from_millis(1),
            busy_share: 7,
            in_ports: PortScope::Any,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_operation_one_ring_has_no_room_for_goes_to_no_worker_a_query_to_the_others() {
        use flowgate_dataplane::command::ring_pair;
        tokio::task::LocalSet::new()
            .run_until(async {
                // Worker 0's command ring is full, so it cannot take the
                // flush; worker 1 is not given it either.
                let (mut c0, _w0) = ring_pair(1, 8, 8);
                let (c1, mut w1) = ring_pair(8, 8, 8);
                let stall = Command::Stall {
                    millis: 0,
                    release: Arc::default(),
                };
                assert!(c0.post(stall).is_ok());
                let d = Dispatcher::spawn(vec![c0, c1]);
                let ticket = d.reserve_job().expect("a place");
                let mut flush = request(JobKind::Flush, 0);
                flush.deadline = Duration::from_secs(600);
                let outcome =
                    tokio::time::timeout(Duration::from_secs(30), d.run_job(ticket, flush))
                        .await
                        .expect("answered without waiting for the deadline");
                assert_eq!(outcome.refused, vec![0, 1]);
                assert!(w1.take_command().is_none(), "worker 1 was given the flush");
                wait_for(|| d.jobs_placed() == 0).await;
                // A query changes nothing: worker 1 is given it all the same.
                let ticket = d.reserve_job().expect("a place");
                let mut query = request(JobKind::Query, 4);
                query.deadline = Duration::from_millis(10);
                let outcome = d.run_job(ticket, query).await;
                assert_eq!(outcome.refused, vec![0]);
                assert!(matches!(w1.take_command(), Some(Command::StartJob(_))));
            })
            .await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_operation_a_worker_refuses_is_answered_and_dropped_by_the_others() {
        use flowgate_dataplane::command::ring_pair;
        tokio::task::LocalSet::new()
            .run_until(async {
                let (c0, mut w0) = ring_pair(8, 8, 8);
                let (c1, mut w1) = ring_pair(8, 8, 8);
                let d = Dispatcher::spawn(vec![c0, c1]);
                let ticket = d.reserve_job().expect("a place");
                let mut flush = request(JobKind::Flush, 0);
                flush.deadline = Duration::from_secs(600);
                let answer = tokio::task::spawn_local({
                    let d = d.clone();
                    async move { d.run_job(ticket, flush).await }
                });
                // Worker 0 refuses it, as a worker that does not track flows does.
                let mut given = None;
                wait_for(|| {
                    given = given.take().or_else(|| w0.take_command());
                    given.is_some()
                })
                .await;
                let Some(Command::StartJob(spec)) = given else {
                    panic!("worker 0 was given the flush");
                };
                assert!(w0.post(Reply::JobRefused { op: spec.op, spec }).is_ok());
                let outcome = tokio::time::timeout(Duration::from_secs(30), answer)
                    .await
                    .expect("answered without waiting for the deadline")
                    .unwrap();
                assert_eq!(outcome.refused, vec![0]);
                let Some(Command::StartJob(spec)) = w1.take_command() else {
                    panic!("worker 1 was given the flush");
                };
                let mut cancel = None;
                wait_for(|| {
                    cancel = cancel.take().or_else(|| w1.take_command());
                    cancel.is_some()
                })
                .await;
                let Some(Command::CancelJob { op }) = cancel else {
                    panic!("and then told to drop it");
                };
                assert_eq!(op, spec.op);
                assert_eq!(d.jobs_placed(), 1, "held until worker 1 has dropped it");
                assert!(w1
                    .post(Reply::JobDone {
                        op,
                        summary: JobSummary::default(),
                        spec
                    })
                    .is_ok());
                wait_for(|| d.jobs_placed() == 0).await;
            })
            .await;
    }

    /// Polls `done` every millisecond, for at most ten seconds.
    async fn wait_for(mut done: impl FnMut() -> bool) {
        for _ in 0..10_000 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("waited ten seconds");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_release_ends_the_stalls_the_workers_still_hold() {
        use flowgate_dataplane::command::ring_pair;
        tokio::task::LocalSet::new()
            .run_until(async {
                let (c0, mut w0) = ring_pair(8, 8, 8);
                let (c1, mut w1) = ring_pair(8, 8, 8);
                let d = Dispatcher::spawn(vec![c0, c1]);
                assert!(d.stall_worker(0, 60_000).await);
                assert!(d.stall_worker(1, 60_000).await);
                assert!(!d.stall_worker(2, 60_000).await, "no worker 2");
                let flag = |c| match c {
                    Some(Command::Stall { millis, release }) => {
                        assert_eq!(millis, 60_000);
                        release
                    }
                    other => panic!("a stall, not {other:?}"),
                };
                let (r0, r1) = (flag(w0.take_command()), flag(w1.take_command()));
                // Worker 1 is done with its stall (its time ran out): only
                // worker 0's is still held, and only it is counted.
                drop(r1);
                assert!(!r0.load(Ordering::Acquire));
                assert_eq!(d.release_stalls().await, 1);
                assert!(r0.load(Ordering::Acquire), "worker 0 sees the release");
                drop(r0);
                assert_eq!(d.release_stalls().await, 0, "nothing left to release");
                // A stall posted after a release is not ended by it.
                assert!(d.stall_worker(0, 60_000).await);
                let r = flag(w0.take_command());
                assert!(!r.load(Ordering::Acquire));
                assert_eq!(d.release_stalls().await, 1);
                assert!(r.load(Ordering::Acquire));
            })
            .await;
    }

    #[test]
    fn segments_join_in_worker_then_index_order_and_hold_no_more_than_the_cap() {
        let flow = |index: u32| TakenFlow {
            index,
            ..TakenFlow::default()
        };
        // Three workers' chunks in table order, interleaved as their
        // replies might be; worker 2 matched nothing.
        let chunks: Vec<(usize, Vec<TakenFlow>)> = vec![
            (1, (10..15).map(flow).collect()),
            (3, (0..4).map(flow).collect()),
            (0, (7..9).map(flow).collect()),
            (1, (20..22).map(flow).collect()),
            (3, (9..12).map(flow).collect()),
            (0, (30..33).map(flow).collect()),
        ];
        let mut all: Vec<(u32, u32)> = chunks
            .iter()
            .flat_map(|(w, c)| c.iter().map(move |f| (*w as u32, f.index)))
            .collect();
        all.sort_unstable();
        for cap in [0, 1, 4, 5, 12, all.len(), all.len() + 3] {
            let mut segs = FlowSegments::new(4, cap as u64, 2);
            for (w, c) in &chunks {
                segs.push(*w, c);
                assert!(segs.len() <= cap, "cap {cap}: {} held", segs.len());
            }
            let (flows, cut) = segs.clone().join(cap);
            let got: Vec<(u32, u32)> = flows.iter().map(|f| (f.worker, f.index)).collect();
            assert_eq!(got, all[..cap.min(all.len())], "cap {cap}");
            assert_eq!(cut, cap < all.len(), "cap {cap}");
            // Joined at a smaller cap than gathered (as the face may).
            let (flows, cut) = segs.join(3);
            assert_eq!(flows.len(), cap.min(3));
            assert_eq!(cut, cap.min(all.len()) > 3 || cap < all.len());
        }
    }

    #[test]
    fn job_places_run_out_at_max_jobs_and_come_back_with_their_tickets() {
        let (tx, _rx) = mpsc::channel(1);
        let d = Dispatcher {
            tx,
            workers: 2,
            jobs: Arc::new(AtomicUsize::new(0)),
        };
        let mut held: Vec<JobTicket> = (0..MAX_JOBS)
            .map(|i| d.reserve_job().unwrap_or_else(|| panic!("place {i}")))
            .collect();
        assert_eq!(d.jobs_placed(), MAX_JOBS);
        assert!(d.reserve_job().is_none(), "one more than the workers run");
        assert!(d.clone().reserve_job().is_none(), "clones share the count");
        held.pop();
        let again = d
            .reserve_job()
            .expect("a dropped ticket gives its place back");
        drop((held, again));
        assert_eq!(d.jobs_placed(), 0);
    }

    #[test]
    fn a_query_gets_an_empty_buffer_of_twice_its_flows_others_none() {
        let s = spec_for(9, &request(JobKind::Query, 1024), 1000);
        assert_eq!((s.op, s.newest, s.busy_share), (9, 1024, 7));
        assert!(s.buffer.is_empty() && s.buffer.capacity() == 2048);
        assert_eq!((s.min_age, s.max_age), (2000, 3999));
        let s = spec_for(9, &request(JobKind::Flush, 1024), 1000);
        assert_eq!(s.buffer.capacity(), 0);
    }
}
