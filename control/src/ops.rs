//! The flow-operation store: every capture and flush the API started, from
//! IN_PROGRESS to its final status, with the flows it found.
//!
//! It is bounded three ways: at most `max_in_progress` operations run at
//! once (one more is refused, which the API reports as throttling); a
//! finished operation keeps at most `result_cap` flows; and finished
//! operations are forgotten `retention` after they finished, or sooner when
//! more than `retention_count` of them are kept, or when their results
//! together exceed `result_budget` flows (oldest first, whole operations:
//! a client paging through results gets all of them or ResourceNotFound,
//! never a silently shorter list). Without the budget, result_cap times
//! retention_count could hold tens of GB. Forgetting is lazy, on each
//! access, so no timer task is needed.
//!
//! The store is face-neutral: it knows nothing of JSON. Each operation
//! carries a face-defined `S` (what the request asked for, to echo back),
//! and results are plain [`FlowResult`]s that a face renders its own way.
//! Operations are numbered in creation order (`seq`), which gives
//! newest-first listing and pagination that insertions and removals do not
//! disturb.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant, SystemTime};

use flowgate_dataplane::flow::AddrFamily;
use flowgate_sys::HugeVec;
use uuid::Uuid;

use crate::dispatch::{JobOutcome, TakenFlow};

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// List the matching flows.
    Capture,
    /// Remove the matching flows, and list them.
    Flush,
}

/// Where an operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpStatus {
    /// Workers are still scanning.
    InProgress,
    /// Every worker answered; every matching flow is in the results.
    Completed,
    /// Every worker answered, but some matching flows are missing from the
    /// results (the result cap).
    CompletedWithErrors,
    /// No usable results: a worker did not answer in time, or refused.
    Failed,
}

impl OpStatus {
    /// Whether the operation is over.
    pub fn is_final(self) -> bool {
        self != OpStatus::InProgress
    }
}

/// Why a flow operation failed, in the words the Network Firewall API uses.
pub const MSG_TIMEOUT: &str = "Flow timeout";
/// A worker refused the job (it runs too many already, its ring was full,
/// or it does not track flows).
pub const MSG_ERROR: &str = "Flow operation error";

/// The store's bounds (from `[operations]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Operations running at once.
    pub max_in_progress: usize,
    /// Most flows one operation keeps.
    pub result_cap: u64,
    /// How long a finished operation is kept.
    pub retention: Duration,
    /// Finished operations kept at most.
    pub retention_count: usize,
    /// Flows kept at most by finished operations together (each keeps
    /// all of its results or is forgotten).
    pub result_budget: u64,
}

impl Limits {
    /// The limits `[operations]` sets.
    pub fn from_config(c: &crate::config::OperationsConfig) -> Limits {
        Limits {
            max_in_progress: c.max_in_progress,
            result_cap: c.result_cap,
            retention: Duration::from_secs(c.retention_seconds),
            retention_count: c.retention_count,
            result_budget: c.result_budget(),
        }
    }
}

/// One flow an operation found, as of when its worker scanned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowResult {
    /// The address of the side that opened the flow.
    pub src: IpAddr,
    /// The other side.
    pub dst: IpAddr,
    /// The opener's port (ICMP: identifier or type/code).
    pub sport: u16,
    /// The other side's port.
    pub dport: u16,
    /// IP protocol number.
    pub proto: u8,
    /// Whole seconds since the flow's first packet.
    pub age_secs: u64,
    /// Packets, both directions.
    pub packets: u64,
    /// Bytes (whole frames), both directions.
    pub bytes: u64,
}

impl FlowResult {
    /// A flow a worker reported, aged against `tsc_now` (the TSC when the
    /// outcome was assembled; every worker reads the same invariant TSC).
    pub fn from_taken(f: &TakenFlow, tsc_now: u64, tsc_hz: u64) -> FlowResult {
        let t = &f.tuple;
        // IPv4 sits in the top 32 bits of the 128-bit address.
        let addr = |bits: u128| -> IpAddr {
            match t.family {
                AddrFamily::V6 => IpAddr::V6(Ipv6Addr::from(bits)),
                _ => IpAddr::V4(Ipv4Addr::from((bits >> 96) as u32)),
            }
        };
        FlowResult {
            src: addr(t.src),
            dst: addr(t.dst),
            sport: t.sport,
            dport: t.dport,
            proto: t.proto,
            age_secs: tsc_now.saturating_sub(f.first_seen) / tsc_hz.max(1),
            packets: f.packets,
            bytes: f.bytes,
        }
    }
}

/// An operation's flows, kept as the workers reported them and turned
/// into [`FlowResult`]s a page at a time: converting a million flows when
/// the operation ends (and allocating for them) was most of the time
/// between the last worker's answer and COMPLETED.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Results {
    flows: HugeVec<TakenFlow>,
    /// TSC when the operation ended: ages are as of then.
    aged_at: u64,
    tsc_hz: u64,
}

impl Results {
    /// `flows`, in the order pages give them, aged as of TSC `aged_at`.
    /// The room beyond them goes back: they are kept as long as the
    /// operation is.
    pub fn new(mut flows: HugeVec<TakenFlow>, aged_at: u64, tsc_hz: u64) -> Results {
        flows.trim();
        Results {
            flows,
            aged_at,
            tsc_hz,
        }
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Keeps the first `n`.
    pub fn truncate(&mut self, n: usize) {
        self.flows.truncate(n);
        self.flows.trim();
    }

    /// From `offset`, at most `max`; the next page's offset if more remain.
    pub fn page(&self, offset: usize, max: usize) -> Page<FlowResult> {
        let start = offset.min(self.flows.len());
        let end = start.saturating_add(max.max(1)).min(self.flows.len());
        Page {
            items: self.flows[start..end]
                .iter()
                .map(|f| FlowResult::from_taken(f, self.aged_at, self.tsc_hz))
                .collect(),
            next: (end < self.flows.len()).then_some(end as u64),
        }
    }
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// The final status.
    pub status: OpStatus,
    /// Why, when not plainly COMPLETED.
    pub message: Option<String>,
    /// The flows found. When FAILED: none for a capture; for a flush, the
    /// flows the workers had removed and reported when it failed.
    pub results: Results,
}

impl Finish {
    /// Turns what the workers of a `flush` (or capture) sent back into a
    /// final status and results, keeping at most `cap` flows.
    pub fn from_outcome(outcome: JobOutcome, flush: bool, cap: u64, tsc_hz: u64) -> Finish {
        // Each worker honours the cap alone, so together they may exceed
        // it: the first workers' flows are kept, in (worker, index) order
        // so that pages are stable.
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        if !outcome.complete() {
            // The workers that answered in time have removed what they
            // matched, failed or not: those are listed, as a flush's
            // results are. A capture's part would pass for the whole.
            let results = if flush {
                Results::new(outcome.flows.join(cap).0, outcome.tsc_now, tsc_hz)
            } else {
                Results::default()
            };
            // A refusal is reported before a timeout: that worker did answer.
            let message = if outcome.refused.is_empty() {
                MSG_TIMEOUT
            } else {
                MSG_ERROR
            };
            return Finish {
                status: OpStatus::Failed,
                message: Some(message.to_string()),
                results,
            };
        }
        let truncated = outcome.truncated();
        let (flows, cut) = outcome.flows.join(cap);
        let results = Results::new(flows, outcome.tsc_now, tsc_hz);
        if cut || truncated {
            Finish {
                status: OpStatus::CompletedWithErrors,
                // The model's StatusReason allows letters, digits, '-' and spaces only.
                message: Some(format!("Result cap of {cap} flows reached")),
                results,
            }
        } else {
            Finish {
                status: OpStatus::Completed,
                message: None,
                results,
            }
        }
    }
}

/// One operation.
#[derive(Debug, Clone)]
pub struct Operation<S> {
    /// Its id, as clients see it.
    pub id: Uuid,
    /// Creation order (larger is newer).
    pub seq: u64,
    /// Capture or flush.
    pub kind: OpKind,
    /// Where it stands.
    pub status: OpStatus,
    /// Why it ended as it did, when that needs saying.
    pub message: Option<String>,
    /// Wall-clock time it was requested.
    pub requested_at: SystemTime,
    /// When it finished (for retention).
    pub finished_at: Option<Instant>,
    /// What the face wants to echo back (the request as given).
    pub spec: S,
    /// The flows found, in a stable order.
    pub results: Results,
}

/// Why an operation was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// `max_in_progress` operations are running.
    #[error("{running} flow operations are in progress, the most this appliance runs at once")]
    Busy {
        /// How many are running.
        running: usize,
    },
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts, if there is one.
    pub next: Option<u64>,
}

/// Every operation the appliance remembers.
#[derive(Debug)]
pub struct OperationStore<S> {
    limits: Limits,
    next_seq: u64,
    by_seq: BTreeMap<u64, Operation<S>>,
    by_id: HashMap<Uuid, u64>,
}

impl<S> OperationStore<S> {
    /// An empty store.
    pub fn new(limits: Limits) -> Self {
        OperationStore {
            limits,
            next_seq: 1,
            by_seq: BTreeMap::new(),
            by_id: HashMap::new(),
        }
    }

    /// Operations still running.
    pub fn in_progress(&self) -> usize {
        self.by_seq
            .values()
            .filter(|o| o.status == OpStatus::InProgress)
            .count()
    }

    /// Operations held (running and finished, not yet forgotten), counted
    /// by kind and status.
    pub fn census(&self) -> Vec<((OpKind, OpStatus), u64)> {
        let mut n: HashMap<(OpKind, OpStatus), u64> = HashMap::new();
        for o in self.by_seq.values() {
            *n.entry((o.kind, o.status)).or_default() += 1;
        }
        n.into_iter().collect()
    }

    /// Operations held, running and finished.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.by_seq.len()
    }

    /// Creates an IN_PROGRESS operation, unless too many are running.
    pub fn start(
        &mut self,
        kind: OpKind,
        spec: S,
        requested_at: SystemTime,
        now: Instant,
    ) -> Result<&Operation<S>, StartError> {
        self.prune(now);
        let running = self.in_progress();
        if running >= self.limits.max_in_progress {
            return Err(StartError::Busy { running });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = Uuid::new_v4();
        self.by_id.insert(id, seq);
        let op = Operation {
            id,
            seq,
            kind,
            status: OpStatus::InProgress,
            message: None,
            requested_at,
            finished_at: None,
            spec,
            results: Results::default(),
        };
        Ok(self.by_seq.entry(seq).or_insert(op))
    }

    /// Records how an operation ended. An operation already forgotten, or
    /// already final, is left as it is (false).
    pub fn finish(&mut self, id: Uuid, mut f: Finish, now: Instant) -> bool {
        let Some(op) = self.by_id.get(&id).and_then(|s| self.by_seq.get_mut(s)) else {
            return false;
        };
        if op.status.is_final() {
            return false;
        }
        f.results
            .truncate(usize::try_from(self.limits.result_cap).unwrap_or(usize::MAX));
        op.status = f.status;
        op.message = f.message;
        op.results = f.results;
        op.finished_at = Some(now);
        self.prune(now);
        true
    }

    /// The operation with this id, if it is still remembered.
    pub fn get(&mut self, id: &Uuid, now: Instant) -> Option<&Operation<S>> {
        self.prune(now);
        self.by_id.get(id).and_then(|s| self.by_seq.get(s))
    }

    /// Operations of `kind` (any when `None`), newest first, starting below
    /// `before` (a `next` of an earlier page), at most `max`.
    pub fn list(
        &mut self,
        kind: Option<OpKind>,
        before: Option<u64>,
        max: usize,
        now: Instant,
    ) -> Page<&Operation<S>> {
        self.prune(now);
        let upper = before.unwrap_or(u64::MAX);
        let mut matching = self
            .by_seq
            .range(..upper)
            .rev()
            .map(|(_, o)| o)
            .filter(|o| kind.is_none() || kind == Some(o.kind));
        let items: Vec<&Operation<S>> = matching.by_ref().take(max.max(1)).collect();
        let next = match (items.last(), matching.next()) {
            (Some(last), Some(_)) => Some(last.seq),
            _ => None,
        };
        Page { items, next }
    }

    /// Forgets finished operations past their retention, then the oldest
    /// finished ones beyond the count or the result budget. Running ones
    /// are never forgotten.
    pub fn prune(&mut self, now: Instant) {
        let keep_for = self.limits.retention;
        let expired: Vec<u64> = self
            .by_seq
            .values()
            .filter(|o| {
                o.finished_at
                    .is_some_and(|t| now.saturating_duration_since(t) >= keep_for)
            })
            .map(|o| o.seq)
            .collect();
        for seq in expired {
            self.forget(seq);
        }
        let mut finished: Vec<(Instant, u64)> = self
            .by_seq
            .values()
            .filter_map(|o| o.finished_at.map(|t| (t, o.seq)))
            .collect();
        finished.sort_unstable();
        let excess = finished.len().saturating_sub(self.limits.retention_count);
        for &(_, seq) in &finished[..excess] {
            self.forget(seq);
        }
        let mut held: u64 = finished[excess..]
            .iter()
            .map(|&(_, seq)| self.by_seq[&seq].results.len() as u64)
            .sum();
        for &(_, seq) in &finished[excess..] {
            if held <= self.limits.result_budget {
                break;
            }
            held -= self.by_seq[&seq].results.len() as u64;
            self.forget(seq);
        }
    }

    fn forget(&mut self, seq: u64) {
        if let Some(op) = self.by_seq.remove(&seq) {
            self.by_id.remove(&op.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::FlowSegments;
    use flowgate_dataplane::flow::key::v4_bits;
    use flowgate_dataplane::flow::{FlowEntry, Tuple};
    use flowgate_dataplane::job::{FlowRecord, JobSummary};

    fn limits() -> Limits {
        Limits {
            max_in_progress: 2,
            result_cap: 3,
            retention: Duration::from_secs(10),
            retention_count: 3,
            result_budget: 1000,
        }
    }

    fn done_with(flows: u16) -> Finish {
        Finish {
            results: Results::new((0..flows).map(taken).collect(), 4000, 1000),
            ..done()
        }
    }

    fn done() -> Finish {
        Finish {
            status: OpStatus::Completed,
            message: None,
            results: Results::default(),
        }
    }

    fn taken(port: u16) -> TakenFlow {
        TakenFlow {
            worker: 0,
            index: port as u32,
            tuple: Tuple {
                src: v4_bits([10, 0, 0, 1]),
                dst: v4_bits([10, 0, 0, 2]),
                sport: port,
                dport: 80,
                proto: 6,
                family: AddrFamily::V4,
                vlan: 0,
            },
            first_seen: 1000,
            packets: 1,
            bytes: 60,
        }
    }

    fn result(port: u16) -> FlowResult {
        FlowResult {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            sport: port,
            dport: 80,
            proto: 6,
            age_secs: 3,
            packets: 1,
            bytes: 60,
        }
    }

    #[test]
    fn lifecycle_and_throttling() {
        let t0 = Instant::now();
        let mut s: OperationStore<&str> = OperationStore::new(limits());
        let a = s
            .start(OpKind::Capture, "a", SystemTime::now(), t0)
            .unwrap()
            .id;
        let b = s
            .start(OpKind::Flush, "b", SystemTime::now(), t0)
            .unwrap()
            .id;
        assert_eq!(s.in_progress(), 2);
        assert_eq!(
            s.start(OpKind::Capture, "c", SystemTime::now(), t0)
                .unwrap_err(),
            StartError::Busy { running: 2 }
        );
        assert_eq!(s.get(&a, t0).unwrap().status, OpStatus::InProgress);
        let results = Results::new((0..5).map(taken).collect(), 4000, 1000);
        let f = Finish {
            status: OpStatus::Completed,
            message: None,
            results,
        };
        assert!(s.finish(a, f, t0));
        let op = s.get(&a, t0).unwrap();
        assert_eq!(op.status, OpStatus::Completed);
        assert_eq!(op.results.len(), 3, "kept at most result_cap");
        assert!(!s.finish(a, done(), t0), "a final status is final");
        // A slot is free again.
        s.start(OpKind::Capture, "c", SystemTime::now(), t0)
            .unwrap();
        assert!(s.finish(b, done(), t0));
        assert!(
            !s.finish(Uuid::new_v4(), done(), t0),
            "unknown ids are ignored"
        );
    }

    #[test]
    fn retention_by_time_and_count_spares_running_ones() {
        let t0 = Instant::now();
        let mut s: OperationStore<()> = OperationStore::new(Limits {
            max_in_progress: 8,
            ..limits()
        });
        let running = s
            .start(OpKind::Flush, (), SystemTime::now(), t0)
            .unwrap()
            .id;
        let ids: Vec<Uuid> = (0..5)
            .map(|i| {
                let id = s
                    .start(OpKind::Capture, (), SystemTime::now(), t0)
                    .unwrap()
                    .id;
                s.finish(id, done(), t0 + Duration::from_secs(i));
                id
            })
            .collect();
        let now = t0 + Duration::from_secs(5);
        // Five finished, three kept: the two that finished first are gone.
        assert!(s.get(&ids[0], now).is_none());
        assert!(s.get(&ids[1], now).is_none());
        assert!(s.get(&ids[2], now).is_some());
        assert_eq!(s.held(), 4);
        // 10 s after finishing, each is forgotten; the running one stays.
        let later = t0 + Duration::from_millis(12_500);
        assert!(s.get(&ids[2], later).is_none());
        assert!(s.get(&ids[3], later).is_some());
        let much_later = t0 + Duration::from_secs(3600);
        assert!(s.get(&ids[4], much_later).is_none());
        assert!(s.get(&running, much_later).is_some());
        assert_eq!(s.held(), 1);
    }

    #[test]
    fn the_result_budget_forgets_whole_finished_operations_oldest_first() {
        let t0 = Instant::now();
        let mut s: OperationStore<u32> = OperationStore::new(Limits {
            max_in_progress: 8,
            result_cap: 4,
            retention_count: 100,
            result_budget: 7,
            ..limits()
        });
        let start = |s: &mut OperationStore<u32>, i| {
            s.start(OpKind::Capture, i, SystemTime::now(), t0)
                .unwrap()
                .id
        };
        let (a, b, running, c, d) = (
            start(&mut s, 0),
            start(&mut s, 1),
            start(&mut s, 2),
            start(&mut s, 3),
            start(&mut s, 4),
        );
        // b was started after a but finished first: it is the older.
        assert!(s.finish(b, done_with(3), t0));
        assert!(s.finish(a, done_with(3), t0 + Duration::from_secs(1)));
        let now = t0 + Duration::from_secs(2);
        assert!(s.get(&b, now).is_some(), "6 flows fit in 7");
        // 6 + 4 > 7: b goes, and a (3 + 4 = 7) stays whole.
        assert!(s.finish(c, done_with(5), now));
        assert!(s.get(&b, now).is_none());
        assert_eq!(s.get(&a, now).unwrap().results.len(), 3);
        assert_eq!(s.get(&c, now).unwrap().results.len(), 4);
        // Empty results cost nothing.
        assert!(s.finish(d, done(), now));
        assert!(s.get(&a, now).is_some());
        // A running operation is never forgotten, whatever the budget.
        s.limits.result_budget = 0;
        s.prune(now);
        assert!(s.get(&a, now).is_none());
        assert!(s.get(&c, now).is_none());
        assert!(s.get(&d, now).is_some(), "holds no flows");
        assert_eq!(s.get(&running, now).unwrap().status, OpStatus::InProgress);
    }

    #[test]
    fn listing_is_newest_first_filtered_and_paged_stably() {
        let t0 = Instant::now();
        let mut s: OperationStore<u32> = OperationStore::new(Limits {
            max_in_progress: 8,
            retention_count: 100,
            ..limits()
        });
        for i in 0..7 {
            let kind = if i % 2 == 0 {
                OpKind::Capture
            } else {
                OpKind::Flush
            };
            let id = s.start(kind, i, SystemTime::now(), t0).unwrap().id;
            s.finish(id, done(), t0);
        }
        let p = s.list(None, None, 3, t0);
        assert_eq!(
            p.items.iter().map(|o| o.spec).collect::<Vec<_>>(),
            [6, 5, 4]
        );
        let next = p.next.unwrap();
        // A new operation between pages does not shift the next page.
        let id = s
            .start(OpKind::Capture, 7, SystemTime::now(), t0)
            .unwrap()
            .id;
        s.finish(id, done(), t0);
        let p = s.list(None, Some(next), 3, t0);
        assert_eq!(
            p.items.iter().map(|o| o.spec).collect::<Vec<_>>(),
            [3, 2, 1]
        );
        let next = p.next;
        let p = s.list(None, next, 3, t0);
        assert_eq!(p.items.iter().map(|o| o.spec).collect::<Vec<_>>(), [0]);
        assert_eq!(p.next, None);
        let p = s.list(Some(OpKind::Flush), None, 2, t0);
        assert_eq!(p.items.iter().map(|o| o.spec).collect::<Vec<_>>(), [5, 3]);
        let next = p.next;
        let p = s.list(Some(OpKind::Flush), next, 2, t0);
        assert_eq!(p.items.iter().map(|o| o.spec).collect::<Vec<_>>(), [1]);
        assert_eq!(p.next, None, "no empty last page");
        let p = s.list(Some(OpKind::Flush), None, 3, t0);
        assert_eq!((p.items.len(), p.next), (3, None));
    }

    #[test]
    fn results_pages_cover_everything_once() {
        let all = Results::new((0..7).map(taken).collect(), 4000, 1000);
        let mut seen = Vec::new();
        let mut off = 0;
        loop {
            let p = all.page(off, 3);
            seen.extend(p.items);
            match p.next {
                Some(n) => off = n as usize,
                None => break,
            }
        }
        assert_eq!(seen, (0..7).map(result).collect::<Vec<_>>());
        assert_eq!(all.page(7, 3).items, []);
        assert_eq!(
            Results::default().page(0, 3),
            Page {
                items: vec![],
                next: None
            }
        );
    }

    fn record(opened_by_sender: bool, index: u32, first_seen: u64) -> FlowRecord {
        let t = Tuple {
            src: v4_bits([10, 0, 0, 9]),
            dst: v4_bits([10, 0, 0, 1]),
            sport: 40000,
            dport: 80,
            proto: 6,
            family: AddrFamily::V4,
            vlan: 0,
        };
        let (k, side) = t.canonical();
        let opener = if opened_by_sender {
            side
        } else {
            side.reverse()
        };
        let mut e = FlowEntry::new(k, opener, first_seen);
        e.packets = [3, 4];
        e.bytes = [300, 4000];
        FlowRecord { entry: e, index }
    }

    #[test]
    fn outcomes_become_statuses() {
        let summary = Some(JobSummary::default());
        let ok = JobOutcome {
            records: vec![],
            // Worker 1 answers first.
            flows: {
                let mut f = FlowSegments::default();
                f.push(1, &[TakenFlow::of(1, &record(true, 5, 1000))]);
                f.push(0, &[TakenFlow::of(0, &record(false, 9, 0))]);
                f
            },
            summaries: vec![summary, summary],
            refused: vec![],
            tsc_now: 10_500,
        };
        let f = Finish::from_outcome(ok.clone_for_test(), false, 10, 1000);
        let f_results = f.results.page(0, 10).items;
        assert_eq!(f.status, OpStatus::Completed);
        assert_eq!(f.message, None);
        // Sorted by worker, then table index.
        assert_eq!(f_results[0].age_secs, 10);
        assert_eq!(f_results[1].age_secs, 9);
        // The opener is the source, whichever endpoint sorts first.
        assert_eq!(f_results[1].src.to_string(), "10.0.0.9");
        assert_eq!((f_results[1].sport, f_results[1].dport), (40000, 80));
        assert_eq!(f_results[0].src.to_string(), "10.0.0.1");
        assert_eq!((f_results[0].packets, f_results[0].bytes), (7, 4300));

        let cut = Finish::from_outcome(ok.clone_for_test(), false, 1, 1000);
        assert_eq!(cut.status, OpStatus::CompletedWithErrors);
        assert_eq!(cut.results.len(), 1);
        assert_eq!(
            cut.message.as_deref(),
            Some("Result cap of 1 flows reached")
        );

        let mut truncated = ok.clone_for_test();
        truncated.summaries[0] = Some(JobSummary {
            truncated: true,
            ..JobSummary::default()
        });
        assert_eq!(
            Finish::from_outcome(truncated, false, 10, 1000).status,
            OpStatus::CompletedWithErrors
        );

        let mut late = ok.clone_for_test();
        late.summaries[1] = None;
        let f = Finish::from_outcome(late.clone_for_test(), false, 10, 1000);
        assert_eq!(
            (f.status, f.message.as_deref()),
            (OpStatus::Failed, Some(MSG_TIMEOUT))
        );
        assert!(f.results.is_empty(), "a failed capture lists nothing");
        // A flush lists what it removed before it failed, within the cap.
        let f = Finish::from_outcome(late.clone_for_test(), true, 10, 1000);
        assert_eq!(
            (f.status, f.message.as_deref(), f.results.len()),
            (OpStatus::Failed, Some(MSG_TIMEOUT), 2)
        );
        let f = Finish::from_outcome(late.clone_for_test(), true, 1, 1000);
        assert_eq!((f.status, f.results.len()), (OpStatus::Failed, 1));

        let mut refused = late.clone_for_test();
        refused.refused = vec![1];
        let f = Finish::from_outcome(refused, true, 10, 1000);
        assert_eq!(
            (f.status, f.message.as_deref(), f.results.len()),
            (OpStatus::Failed, Some(MSG_ERROR), 2)
        );
    }

    impl JobOutcome {
        fn clone_for_test(&self) -> JobOutcome {
            JobOutcome {
                records: self.records.clone(),
                flows: self.flows.clone(),
                summaries: self.summaries.clone(),
                refused: self.refused.clone(),
                tsc_now: self.tsc_now,
            }
        }
    }
}
