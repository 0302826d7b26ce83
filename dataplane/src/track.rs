//! Flow tracking for one worker: parse, key, look up, account, decide.
//!
//! [`Tracker::process`] takes a burst of frames and decides an [`Action`]
//! for each, in the stages of a burst lookup: parse every frame and hash
//! its key (prefetching its bucket), prefetch candidate entries, then look
//! up, update or create each flow in order. It works on byte slices, so it
//! is tested without DPDK; the worker feeds it mbuf data.

use std::sync::Arc;

use flowgate_sys::BURST_SIZE;

use crate::flow::entry::flags;
use crate::flow::frag::{FragMap, Remembered};
use crate::flow::tcp;
use crate::flow::{
    DropReason, FlowEntry, FlowKey, FlowTable, FullPolicy, Insert, Side, TcpState, TimeoutSecs,
    Timeouts, Verdict,
};
use crate::parse::{parse, Fragment, Parsed};
use crate::policy::Policy;
use crate::stats::WorkerCounters;

/// What happens to malformed frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedAction {
    /// Count and drop.
    Drop,
    /// Count and forward untracked.
    Pass,
}

/// What happens to a TCP packet without SYN whose flow is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamException {
    /// Drop it.
    Drop,
    /// Track it as an established flow picked up mid-stream.
    Continue,
    /// Drop it and answer with a TCP RST.
    Reject,
}

/// Tracking settings (from config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSettings {
    /// Flows per worker.
    pub capacity: u32,
    /// What to do when the table is full.
    pub when_full: FullPolicy,
    /// Idle timeouts.
    pub timeouts: TimeoutSecs,
    /// Malformed frames.
    pub malformed: MalformedAction,
    /// Mid-stream TCP.
    pub stream_exception: StreamException,
    /// Datagrams the fragment map can hold.
    pub fragment_map: u32,
    /// Seconds a first fragment's ports are remembered.
    pub fragment_timeout: u32,
    /// Entries the expiry sweep examines per loop iteration.
    pub sweep_per_loop: u32,
}

impl Default for TrackSettings {
    fn default() -> Self {
        TrackSettings {
            capacity: 1 << 20,
            when_full: FullPolicy::DropNew,
            timeouts: TimeoutSecs::default(),
            malformed: MalformedAction::Drop,
            stream_exception: StreamException::Continue,
            fragment_map: 4096,
            fragment_timeout: 30,
            sweep_per_loop: 16,
        }
    }
}

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Send it on (to the paired port).
    #[default]
    Forward,
    /// Free it.
    Drop,
    /// Free it and answer the sender (RST / ICMP unreachable).
    Reject,
}

/// One worker's flow state.
pub struct Tracker {
    table: FlowTable,
    frags: FragMap,
    policy: Arc<Policy>,
    timeouts: Timeouts,
    settings: TrackSettings,
    sweep_cursor: u32,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Default)]
struct Pending {
    tracked: bool,
    key: FlowKey,
    side: Option<Side>,
    hash: u32,
    tcp_flags: u8,
    ttl: u8,
}

impl Tracker {
    /// A tracker with its table allocated (all memory touched now).
    pub fn new(
        settings: TrackSettings,
        policy: Arc<Policy>,
        tsc_hz: u64,
    ) -> std::io::Result<Tracker> {
        Ok(Tracker {
            table: FlowTable::new(settings.capacity, settings.when_full)?,
            frags: FragMap::new(
                settings.fragment_map,
                settings.fragment_timeout as u64 * tsc_hz,
            ),
            policy,
            timeouts: Timeouts::new(&settings.timeouts, tsc_hz),
            settings,
            sweep_cursor: 0,
        })
    }

    /// The flow table.
    pub fn table(&self) -> &FlowTable {
        &self.table
    }

    /// The flow table, writable (for jobs that prune it).
    pub fn table_mut(&mut self) -> &mut FlowTable {
        &mut self.table
    }

    /// The idle timeouts in ticks.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Replaces the policy (applies to flows created from now on).
    pub fn set_policy(&mut self, p: Arc<Policy>) -> Arc<Policy> {
        std::mem::replace(&mut self.policy, p)
    }

    /// Decides an action for each frame of a burst received on `in_port`.
    /// `frames[i]` is the first segment, `lens[i]` the whole frame length.
    pub fn process(
        &mut self,
        frames: &[&[u8]],
        lens: &[u32],
        in_port: u8,
        now: u64,
        actions: &mut [Action],
        c: &mut WorkerCounters,
    ) {
        let n = frames.len().min(BURST_SIZE);
        let mut p = [Pending::default(); BURST_SIZE];

        // Stage 1: parse, key, hash; fetch buckets.
        for i in 0..n {
            actions[i] = Action::Forward;
            match parse(frames[i]) {
                Parsed::Ip(pp) => {
                    let mut t = pp.tuple;
                    match pp.fragment {
                        Fragment::None => {}
                        Fragment::First { id } => {
                            if self.frags.remember(&t, id, now) == Remembered::Overwrote {
                                c.fragment_map_overwrites += 1;
                            }
                        }
                        Fragment::Later { id } => match self.frags.recall(&t, id, now) {
                            Some((s, d)) => {
                                t.sport = s;
                                t.dport = d;
                            }
                            None => {
                                c.fragments_untracked += 1;
                                continue;
                            }
                        },
                    }
                    let (key, side) = t.canonical();
                    let hash = key.hash();
                    self.table.prefetch_bucket(hash);
                    p[i] = Pending {
                        tracked: true,
                        key,
                        side: Some(side),
                        hash,
                        tcp_flags: pp.tcp_flags,
                        ttl: pp.ttl,
                    };
                }
                Parsed::NotIp { .. } => c.not_ip += 1,
                Parsed::Malformed(m) => {
                    c.malformed[m.index()] += 1;
                    if self.settings.malformed == MalformedAction::Drop {
                        c.malformed_dropped += 1;
                        actions[i] = Action::Drop;
                    }
                }
            }
        }
        // Stage 2: fetch the entries the signatures point at.
        for pi in p.iter().take(n).filter(|x| x.tracked) {
            self.table.prefetch_entry(pi.hash);
        }
        // Stage 3: account each packet to its flow, in order.
        for i in 0..n {
            if p[i].tracked {
                let x = p[i];
                actions[i] = self.account(&x, lens[i], in_port, now, c);
            }
        }
    }

    fn account(
        &mut self,
        x: &Pending,
        len: u32,
        in_port: u8,
        now: u64,
        c: &mut WorkerCounters,
    ) -> Action {
        let side = x.side.expect("tracked packets have a side");
        let tcp_proto = x.key.proto == 6;
        if let Some(idx) = self.table.lookup(&x.key, x.hash) {
            let e = *self.table.entry(idx);
            let stale = self.timeouts.expired(&e, now);
            let reopen = tcp_proto && tcp::reopens(e.tcp_state, x.tcp_flags);
            if !stale && !reopen {
                let e = self.table.entry_mut(idx);
                let s = side.index();
                e.last_seen = now;
                e.packets[s] += 1;
                e.bytes[s] += len as u64;
                e.tcp_flags[s] |= x.tcp_flags;
                if tcp_proto {
                    e.tcp_state = tcp::advance(e.tcp_state, x.tcp_flags, side == e.opener());
                }
                return Self::verdict_action(e.verdict, c);
            }
            // Timed out but not yet swept, or a new connection on a closed
            // tuple: the old flow is over.
            self.table.remove(idx);
            c.flows_expired += 1;
        }

        // A new flow.
        let mut midstream = false;
        if tcp_proto && !tcp::opens_flow(x.tcp_flags) {
            c.midstream_packets += 1;
            match self.settings.stream_exception {
                StreamException::Drop => {
                    c.verdict_dropped += 1;
                    return Action::Drop;
                }
                StreamException::Reject => {
                    c.verdict_dropped += 1;
                    return Action::Reject;
                }
                StreamException::Continue => midstream = true,
            }
        }
        let decision = self.policy.decide(&x.key.oriented(side));
        match decision.verdict {
            Verdict::Pass => c.policy_pass += 1,
            Verdict::Drop => c.policy_drop += 1,
            Verdict::Reject => c.policy_reject += 1,
        }
        let mut e = FlowEntry::new(x.key, side, now);
        let s = side.index();
        e.packets[s] = 1;
        e.bytes[s] = len as u64;
        e.tcp_flags[s] = x.tcp_flags;
        e.ttl = x.ttl;
        e.in_port = in_port;
        e.verdict = decision.verdict;
        e.rule_id = decision.rule_id;
        e.rule_group = decision.group;
        if decision.verdict != Verdict::Pass {
            e.drop_reason = DropReason::Policy;
        }
        if tcp_proto {
            e.tcp_state = if midstream {
                e.flags |= flags::MIDSTREAM;
                // A mid-stream RST or FIN still says where the flow is.
                tcp::advance(TcpState::Established, x.tcp_flags, true)
            } else {
                TcpState::SynSent
            };
        }
        match self.table.insert(e, x.hash) {
            Insert::Inserted(_) => c.flows_created += 1,
            Insert::Evicted(_, _) => {
                c.flows_created += 1;
                c.flows_evicted += 1;
            }
            Insert::Full => {
                c.table_full_drops += 1;
                return Action::Drop;
            }
        }
        Self::verdict_action(decision.verdict, c)
    }

    #[inline(always)]
    fn verdict_action(v: Verdict, c: &mut WorkerCounters) -> Action {
        match v {
            Verdict::Pass => Action::Forward,
            Verdict::Drop => {
                c.verdict_dropped += 1;
                Action::Drop
            }
            Verdict::Reject => {
                c.verdict_dropped += 1;
                Action::Reject
            }
        }
    }

    /// Advances the expiry sweep by a bounded number of entries.
    pub fn sweep(&mut self, now: u64, c: &mut WorkerCounters) {
        let cap = self.table.capacity();
        for _ in 0..self.settings.sweep_per_loop {
            let i = self.sweep_cursor;
            self.sweep_cursor = if i + 1 >= cap { 0 } else { i + 1 };
            let e = self.table.entry(i);
            if e.is_used() && self.timeouts.expired(e, now) {
                self.table.remove(i);
                c.flows_expired += 1;
            }
        }
    }
}
