//! Flow tracking for one worker: parse, key, look up, account, decide.
//!
//! [`Tracker::process`] takes a burst of frames and decides an [`Action`]
//! for each, in the stages of a burst lookup: parse every frame and hash
//! its key (prefetching its bucket), prefetch candidate entries, then look
//! up, update or create each flow in order. It reads frames through
//! [`Frame`], so the worker hands it the burst's mbufs as they are and
//! tests and benches hand it byte buffers.

use std::sync::Arc;

use flowgate_sys::{Mbuf, BURST_SIZE};

use crate::flow::entry::flags;
use crate::flow::frag::{FragMap, Remembered};
use crate::flow::tcp;
use crate::flow::{AddrFamily, Tuple};
use crate::flow::{
    DropReason, FlowEntry, FlowKey, FlowTable, FullPolicy, Insert, Side, TcpState, TimeoutSecs,
    Timeouts, Verdict,
};
use crate::mirror::{MirrorConfig, UNDECIDED};
use crate::parse::{
    ipv4_header_verifies, is_icmp_error, parse_segmented_but_checksum, quoted_flow, tcp_seq,
    Fragment, Malformed, Parsed, ParsedPacket,
};
use crate::policy::Policy;
use crate::reject::AnswerLimit;
use crate::stats::WorkerCounters;

/// A received frame as the tracker reads it.
pub trait Frame {
    /// The first segment's bytes: what parsing reads.
    fn head(&self) -> &[u8];
    /// The whole frame's length, every segment: what the flow counts.
    fn wire_len(&self) -> u32;
}

impl Frame for Mbuf {
    #[inline(always)]
    fn head(&self) -> &[u8] {
        self.data()
    }

    #[inline(always)]
    fn wire_len(&self) -> u32 {
        self.pkt_len()
    }
}

/// A whole frame in one buffer (tests, benches).
impl Frame for Vec<u8> {
    #[inline(always)]
    fn head(&self) -> &[u8] {
        self
    }

    #[inline(always)]
    fn wire_len(&self) -> u32 {
        self.len() as u32
    }
}

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
    /// Whether an IPv4 header whose checksum does not verify is malformed
    /// ([`Malformed::Ipv4Checksum`]); off, such a packet is tracked as it
    /// reads.
    pub verify_ipv4_checksum: bool,
    /// Mid-stream TCP.
    pub stream_exception: StreamException,
    /// Datagrams the fragment map can hold.
    pub fragment_map: u32,
    /// Seconds a first fragment's ports are remembered.
    pub fragment_timeout: u32,
    /// Milliseconds for the expiry sweep to pass once over every entry
    /// that may hold a flow.
    pub sweep_period_ms: u32,
    /// Answers to rejected packets a second (0: no limit).
    pub reject_rate: u32,
    /// Answers that may go at once.
    pub reject_burst: u32,
}

impl Default for TrackSettings {
    fn default() -> Self {
        TrackSettings {
            capacity: 1 << 20,
            when_full: FullPolicy::DropNew,
            timeouts: TimeoutSecs::default(),
            malformed: MalformedAction::Drop,
            verify_ipv4_checksum: true,
            stream_exception: StreamException::Continue,
            fragment_map: 4096,
            fragment_timeout: 30,
            sweep_period_ms: 1000,
            reject_rate: 1000,
            reject_burst: 50,
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

/// What [`Tracker::process`] decides per packet of a burst, and the
/// scratch it decides in. Made once per worker and reused for every burst:
/// `process` writes each field it later reads, and building the 2 KiB of
/// scratch afresh per burst took 221 instructions (1.5 KiB of keys copied)
/// and about 3 % of the tracked rate at 1K flows.
#[derive(Debug)]
pub struct BurstOut {
    /// What to do with each packet.
    pub actions: [Action; BURST_SIZE],
    /// Encoded [`crate::mirror::Decision`]; 0 for none.
    pub mirror: [u16; BURST_SIZE],
    /// The flow hash (valid where `mirror` is non-zero).
    pub hash: [u32; BURST_SIZE],
    stage: Burst,
}

impl Default for BurstOut {
    fn default() -> Self {
        BurstOut {
            actions: [Action::Forward; BURST_SIZE],
            mirror: [0; BURST_SIZE],
            hash: [0; BURST_SIZE],
            stage: Burst {
                keys: [FlowKey::default(); BURST_SIZE],
                hashes: [0; BURST_SIZE],
                sides: [Side::LoToHi; BURST_SIZE],
                tcp_flags: [0; BURST_SIZE],
                tcp_seqs: [0; BURST_SIZE],
                with_seq: 0,
                ttls: [0; BURST_SIZE],
                hints: [u32::MAX; BURST_SIZE],
                tracked: 0,
            },
        }
    }
}

/// What stage 3 needs of one packet besides its key.
#[derive(Clone, Copy)]
struct Packet {
    side: Side,
    hash: u32,
    hint: u32,
    tcp_flags: u8,
    /// `None` for a later fragment (no TCP header) and other protocols.
    tcp_seq: Option<u32>,
    ttl: u8,
    len: u32,
}

/// One worker's flow state.
pub struct Tracker {
    table: FlowTable,
    frags: FragMap,
    policy: Arc<Policy>,
    mirror: Arc<MirrorConfig>,
    timeouts: Timeouts,
    settings: TrackSettings,
    sweep_cursor: u32,
    /// TSC up to which the sweep has done its share of work.
    sweep_clock: u64,
    /// TSC ticks per full pass.
    sweep_period: u64,
    /// The flows one sweep call found over: not on the stack, where each
    /// call zeroed 1 KiB, nor inline, where the tracker's extra 1 KiB cost
    /// forwarding 2-11 % at 1K flows (the same build boxed: 0-3 %).
    swept: Box<[u32; SWEEP_MAX as usize]>,
    /// Answers to rejected packets still allowed.
    answers: AnswerLimit,
}

/// Most entries one sweep call examines (after an idle spell the rest
/// follows on later calls).
pub const SWEEP_MAX: u64 = 256;

/// Entries the sweep waits for before it goes (fewer in a smaller table).
const SWEEP_BATCH: u64 = 32;

/// How many entries ahead of the one it reads the sweep asks for.
const SWEEP_LEAD: u64 = 8;

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

/// Whether an IPv4 header at `v4_l3` has a checksum that verifies; `v4_l3`
/// 0 (IPv6, or checksums not verified) passes.
#[inline(always)]
fn header_verifies(head: &[u8], v4_l3: u16) -> bool {
    v4_l3 == 0 || ipv4_header_verifies(head, v4_l3)
}

/// How many packets ahead of the one it accounts the tracker fetches
/// entries.
const ENTRY_LEAD: usize = 8;

/// The per-burst scratch of the staged lookup, as parallel arrays so each
/// stage reads exactly what the previous one wrote, at the same width.
/// Only the entries of packets whose `tracked` bit is set are meaningful:
/// stage 1 writes them before any later stage reads them.
#[derive(Debug)]
struct Burst {
    keys: [FlowKey; BURST_SIZE],
    hashes: [u32; BURST_SIZE],
    sides: [Side; BURST_SIZE],
    tcp_flags: [u8; BURST_SIZE],
    /// Where `with_seq` says there is one.
    tcp_seqs: [u32; BURST_SIZE],
    /// Bit i set: packet i has a TCP header, whose number is `tcp_seqs[i]`.
    with_seq: u32,
    ttls: [u8; BURST_SIZE],
    /// Stage 2's guess at each packet's entry.
    hints: [u32; BURST_SIZE],
    /// Bit i set: packet i is tracked.
    tracked: u32,
}

impl Burst {
    /// Stage 2 for the first packet left in `ahead` (none: nothing): fetch
    /// the entry its signature points at, keep that guess, and take the
    /// packet out of `ahead`.
    #[inline(always)]
    fn fetch_next_entry(&mut self, table: &FlowTable, ahead: &mut u32) {
        if *ahead != 0 {
            let j = ahead.trailing_zeros() as usize;
            self.hints[j] = table.prefetch_entry(self.hashes[j]);
            *ahead &= *ahead - 1;
        }
    }
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
                u64::from(settings.fragment_timeout).saturating_mul(tsc_hz),
            ),
            policy,
            mirror: Arc::new(MirrorConfig::empty(0)),
            timeouts: Timeouts::new(&settings.timeouts, tsc_hz),
            sweep_period: (settings.sweep_period_ms.max(1) as u64 * tsc_hz / 1000).max(1),
            answers: AnswerLimit::new(settings.reject_rate, settings.reject_burst, tsc_hz),
            settings,
            sweep_cursor: 0,
            sweep_clock: 0,
            swept: Box::new([0; SWEEP_MAX as usize]),
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

    /// The mirror configuration in use and the answer rate limit, together
    /// (what a burst's sending needs, one read and one written).
    #[inline]
    pub fn mirror_and_answers(&mut self) -> (&MirrorConfig, &mut AnswerLimit) {
        (&self.mirror, &mut self.answers)
    }

    /// The idle timeouts in ticks.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Replaces the mirror configuration; returns the old one (for control
    /// to free). Cached decisions go stale through the generation.
    pub fn set_mirror(&mut self, m: Arc<MirrorConfig>) -> Arc<MirrorConfig> {
        std::mem::replace(&mut self.mirror, m)
    }

    /// Replaces the policy (applies to flows created from now on).
    pub fn set_policy(&mut self, p: Arc<Policy>) -> Arc<Policy> {
        std::mem::replace(&mut self.policy, p)
    }

    /// Decides what to do with each frame of a burst received on port
    /// `ports.0` (whose traffic leaves by `ports.1`). Per packet, `out`
    /// gets the action, the encoded mirror [`crate::mirror::Decision`] (0:
    /// none) and the flow hash.
    pub fn process<F: Frame>(
        &mut self,
        frames: &[F],
        ports: (u8, u8),
        now: u64,
        out: &mut BurstOut,
        c: &mut WorkerCounters,
    ) {
        let actions = &mut out.actions;
        let (in_port, out_port) = ports;
        let n = frames.len().min(BURST_SIZE);
        let b = &mut out.stage;
        b.tracked = 0;
        b.with_seq = 0;

        let mirroring = self.mirror.watches(in_port as usize, out_port as usize);
        let verify_checksum = self.settings.verify_ipv4_checksum;
        // Stage 1: parse, key, hash; fetch buckets.
        for i in 0..n {
            actions[i] = Action::Forward;
            out.mirror[i] = 0;
            match parse_segmented_but_checksum(frames[i].head(), frames[i].wire_len() as usize) {
                Parsed::Ip(pp) => {
                    // The IPv4 header checksum is verified once the bucket
                    // fetch is under way (see `parse_segmented_but_checksum`),
                    // or before a cold path acts on the header.
                    let v4_l3 = if verify_checksum && pp.tuple.family == AddrFamily::V4 {
                        pp.l3_offset
                    } else {
                        0
                    };
                    // The cold paths take copies: a tuple whose address is
                    // taken is kept in memory on the common path too (see
                    // `fragment`), which cost 5 % of the forwarding rate.
                    let t = if pp.fragment == Fragment::None {
                        if is_icmp_error(pp.tuple.proto, pp.tuple.sport, pp.tuple.dport) {
                            if !header_verifies(frames[i].head(), v4_l3) {
                                actions[i] = self.malformed(Malformed::Ipv4Checksum, c);
                                continue;
                            }
                            if let Some(u) = self.related(frames[i].head(), pp, ports, mirroring, c)
                            {
                                (actions[i], out.mirror[i], out.hash[i]) = u;
                                continue;
                            }
                        }
                        pp.tuple
                    } else {
                        if !header_verifies(frames[i].head(), v4_l3) {
                            actions[i] = self.malformed(Malformed::Ipv4Checksum, c);
                            continue;
                        }
                        match self.fragment(pp.tuple, pp.fragment, now, c) {
                            Some(t) => t,
                            None => {
                                (actions[i], out.mirror[i], out.hash[i]) =
                                    self.untracked_fragment(pp.tuple, ports, mirroring, c);
                                continue;
                            }
                        }
                    };
                    let (key, side) = t.canonical();
                    let hash = key.hash();
                    self.table.prefetch_bucket(hash);
                    if !header_verifies(frames[i].head(), v4_l3) {
                        actions[i] = self.malformed(Malformed::Ipv4Checksum, c);
                        continue;
                    }
                    b.keys[i] = key;
                    b.hashes[i] = hash;
                    b.sides[i] = side;
                    b.tcp_flags[i] = pp.tcp_flags;
                    if let Some(seq) = tcp_seq(frames[i].head(), &pp) {
                        b.tcp_seqs[i] = seq;
                        b.with_seq |= 1 << i;
                    }
                    b.ttls[i] = pp.ttl;
                    b.tracked |= 1 << i;
                }
                Parsed::NotIp { .. } => c.not_ip += 1,
                Parsed::Malformed(m) => actions[i] = self.malformed(m, c),
            }
        }
        // Stage 2: fetch the entries the signatures point at, ENTRY_LEAD
        // packets ahead of stage 3 rather than all at once: 64 lines asked
        // for back to back outrun the core's miss buffers, and the fetches
        // stall the loop that issues them.
        let mut ahead = b.tracked;
        for _ in 0..ENTRY_LEAD {
            b.fetch_next_entry(&self.table, &mut ahead);
        }
        // Stage 3: account each packet to its flow, in order.
        let mut m = b.tracked;
        while m != 0 {
            b.fetch_next_entry(&self.table, &mut ahead);
            let i = m.trailing_zeros() as usize;
            let pkt = Packet {
                side: b.sides[i],
                hash: b.hashes[i],
                hint: b.hints[i],
                tcp_flags: b.tcp_flags[i],
                tcp_seq: (b.with_seq & 1 << i != 0).then_some(b.tcp_seqs[i]),
                ttl: b.ttls[i],
                len: frames[i].wire_len(),
            };
            let (action, idx) = self.account(&b.keys[i], pkt, (in_port, out_port), now, c);
            actions[i] = action;
            if mirroring {
                out.mirror[i] = match idx {
                    Some(idx) => self.mirror_decision(idx, b.sides[i], in_port, out_port),
                    // No flow (a stray RST, a full table...): still a packet
                    // the port received.
                    None => self.untracked_mirror(&b.keys[i].oriented(b.sides[i]), ports),
                };
                out.hash[i] = b.hashes[i];
            }
            m &= m - 1;
        }
    }

    /// The flow's cached mirror decision for packets travelling `side`,
    /// computed when the configuration changed since it was cached or the
    /// packet came in on another port than the one it was made for. The
    /// in-port alone stands for both ports: a port is in one pair at most
    /// (control refuses a config otherwise), so it names the out-port too.
    #[inline]
    fn mirror_decision(&mut self, idx: u32, side: Side, in_port: u8, out_port: u8) -> u16 {
        let generation = self.mirror.generation;
        let e = self.table.entry_mut(idx);
        if e.mirror_gen != generation {
            e.mirror_gen = generation;
            e.mirror = [UNDECIDED; 2];
        }
        let s = side.index();
        if e.mirror[s] == UNDECIDED || e.mirror_in[s] != in_port {
            let t = e.key.oriented(side);
            e.mirror_in[s] = in_port;
            e.mirror[s] = self
                .mirror
                .decide(&t, in_port as usize, out_port as usize)
                .encode();
        }
        self.table.entry(idx).mirror[s]
    }

    /// A malformed frame: counted, and dropped, or forwarded untracked with
    /// `malformed = "pass"`. Fragments shaped to slip ports past a filter
    /// (RFC 1858) go whatever the setting: it is for damage.
    #[cold]
    #[inline(never)]
    fn malformed(&self, m: Malformed, c: &mut WorkerCounters) -> Action {
        c.malformed[m.index()] += 1;
        if self.settings.malformed == MalformedAction::Drop || m == Malformed::FragmentOffset {
            c.malformed_dropped += 1;
            Action::Drop
        } else {
            Action::Forward
        }
    }

    /// What becomes of a later fragment whose first was not seen: it has
    /// no flow, so the policy decides on what it knows (see
    /// [`Policy::passes_whatever_ports`]); a fragment gets no answer.
    /// Returns the action, the mirror decision and the hash.
    #[cold]
    #[inline(never)]
    fn untracked_fragment(
        &self,
        t: Tuple,
        ports: (u8, u8),
        mirroring: bool,
        c: &mut WorkerCounters,
    ) -> (Action, u16, u32) {
        let action = if self.policy.passes_whatever_ports(&t) {
            Action::Forward
        } else {
            c.fragments_untracked_dropped += 1;
            Action::Drop
        };
        self.untracked(action, &t, ports, mirroring)
    }

    /// An ICMP error about a tracked flow (see [`crate::parse::quoted_flow`])
    /// gets that flow's verdict, untracked: forwarded if it passes, else
    /// dropped (an error is never answered); as
    /// [`Tracker::untracked_fragment`]. `None`: no such flow, and the error
    /// is decided as a flow of its own.
    #[cold]
    #[inline(never)]
    fn related(
        &self,
        frame: &[u8],
        pp: ParsedPacket,
        ports: (u8, u8),
        mirroring: bool,
        c: &mut WorkerCounters,
    ) -> Option<(Action, u16, u32)> {
        let (key, _) = quoted_flow(frame, &pp)?.canonical();
        let idx = self.table.lookup(&key, key.hash())?;
        c.icmp_related += 1;
        let action = match self.table.entry(idx).verdict {
            Verdict::Pass => Action::Forward,
            Verdict::Drop | Verdict::Reject => Action::Drop,
        };
        Some(self.untracked(action, &pp.tuple, ports, mirroring))
    }

    /// A packet without a flow: its action, the mirror decision (made
    /// without a flow to cache it in) and its hash.
    fn untracked(
        &self,
        action: Action,
        t: &Tuple,
        ports: (u8, u8),
        mirroring: bool,
    ) -> (Action, u16, u32) {
        let mirror = if mirroring {
            self.untracked_mirror(t, ports)
        } else {
            0
        };
        (action, mirror, t.canonical().0.hash())
    }

    /// The mirror decision for a packet without a flow to cache it in.
    #[cold]
    #[inline(never)]
    fn untracked_mirror(&self, t: &Tuple, (in_port, out_port): (u8, u8)) -> u16 {
        self.mirror
            .decide(t, in_port as usize, out_port as usize)
            .encode()
    }

    /// The tuple of a fragment: a first fragment's ports are remembered, a
    /// later fragment takes them from the map (`None`: forward untracked).
    /// Out of line and by value so the common path keeps its tuple in
    /// registers (a tuple whose address is taken is spilled with partial
    /// stores, and re-reading it stalls on store forwarding).
    #[inline(never)]
    #[cold]
    fn fragment(
        &mut self,
        mut t: Tuple,
        f: Fragment,
        now: u64,
        c: &mut WorkerCounters,
    ) -> Option<Tuple> {
        match f {
            Fragment::None => {}
            Fragment::First { id } => {
                if self.frags.remember(&t, id, now) == Remembered::Overwrote {
                    c.fragment_map_overwrites += 1;
                }
            }
            Fragment::Later { id } => match self.frags.recall(&t, id, now) {
                Some((proto, s, d)) => {
                    t.proto = proto;
                    t.sport = s;
                    t.dport = d;
                }
                None => {
                    c.fragments_untracked += 1;
                    return None;
                }
            },
        }
        Some(t)
    }

    #[inline(always)]
    fn account(
        &mut self,
        key: &FlowKey,
        x: Packet,
        (in_port, out_port): (u8, u8),
        now: u64,
        c: &mut WorkerCounters,
    ) -> (Action, Option<u32>) {
        let (side, len) = (x.side, x.len);
        let tcp_proto = key.proto == 6;
        if let Some(idx) = self.table.lookup_hinted(key, x.hash, x.hint) {
            // By reference: copying the 128-byte entry out cost a memcpy
            // call per packet.
            let e = self.table.entry(idx);
            let stale = self.timeouts.expired(e, now);
            let reopen = tcp_proto && tcp::reopens(e.tcp_state, x.tcp_flags);
            if !stale && !reopen {
                let e = self.table.entry_mut(idx);
                let s = side.index();
                e.last_seen = now;
                e.packets[s] += 1;
                e.bytes[s] += len as u64;
                let believed = match x.tcp_seq {
                    Some(seq) => tcp::follow(e, side, x.tcp_flags, seq),
                    None => true,
                };
                if believed {
                    e.tcp_flags[s] |= x.tcp_flags;
                } else {
                    // Forwarded (the endpoint judges it), but believed in
                    // nothing: neither its state nor its flags.
                    c.tcp_out_of_window += 1;
                }
                return (Self::verdict_action(e.verdict, c), Some(idx));
            }
            // Timed out but not yet swept, or a new connection
            // on a closed tuple: the old flow is over.
            self.end_flow(idx, c);
        }

        // A new flow.
        let mut midstream = false;
        if tcp_proto && !tcp::opens_flow(x.tcp_flags) {
            c.midstream_packets += 1;
            match self.settings.stream_exception {
                StreamException::Drop => {
                    c.verdict_dropped += 1;
                    return (Action::Drop, None);
                }
                StreamException::Reject => {
                    c.verdict_dropped += 1;
                    return (Action::Reject, None);
                }
                StreamException::Continue => midstream = true,
            }
        }
        // A mid-stream flow may have been opened from the other side.
        let (decision, opener) = if midstream {
            let (d, reversed) = self.policy.decide_either_way(&key.oriented(side));
            if x.tcp_flags & tcp::tcp_flags::RST != 0 {
                // A stray RST ends what it names: nothing to track (as
                // conntrack, which makes no entry for it).
                return (Self::verdict_action(d.verdict, c), None);
            }
            (d, if reversed { side.reverse() } else { side })
        } else {
            (self.policy.decide(&key.oriented(side)), side)
        };
        let mut e = FlowEntry::new(*key, opener, now);
        let s = side.index();
        e.packets[s] = 1;
        e.bytes[s] = len as u64;
        e.tcp_flags[s] = x.tcp_flags;
        // The entry describes the opener's direction. A flow picked up from
        // its other side: the opener's packets come in where this one
        // leaves, and their TTL is not known yet.
        (e.in_port, e.ttl) = if opener == side {
            (in_port, x.ttl)
        } else {
            (out_port, 0)
        };
        e.verdict = decision.verdict;
        e.rule_id = decision.rule_id;
        e.rule_group = decision.group;
        if decision.verdict != Verdict::Pass {
            e.drop_reason = DropReason::Policy;
        }
        if let Some(seq) = x.tcp_seq {
            tcp::first_seen(&mut e, side, seq);
        }
        if tcp_proto {
            e.tcp_state = if midstream {
                e.flags |= flags::MIDSTREAM;
                // A mid-stream FIN still says where the flow is.
                tcp::advance(TcpState::Established, x.tcp_flags, opener == side)
            } else {
                TcpState::SynSent
            };
        }
        let idx = match self.table.insert(e, x.hash) {
            Insert::Inserted(i) => {
                c.flows_created += 1;
                i
            }
            Insert::Evicted(i, _) => {
                c.flows_created += 1;
                c.flows_evicted += 1;
                i
            }
            Insert::Full => {
                c.table_full_drops += 1;
                return (Action::Drop, None);
            }
        };
        // Counted once the flow exists: a full table decides nothing.
        match decision.verdict {
            Verdict::Pass => c.policy_pass += 1,
            Verdict::Drop => c.policy_drop += 1,
            Verdict::Reject => c.policy_reject += 1,
        }
        (Self::verdict_action(decision.verdict, c), Some(idx))
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

    /// Advances the expiry sweep by the entries due since the last call:
    /// every entry that may hold a flow (those below the table's
    /// [`FlowTable::scan_end`]) once per sweep period, so a busy loop pays
    /// a few entries per iteration, never a stop-the-world pass. A table
    /// that never held more than N flows is swept over about N entries, not
    /// its capacity: 64K flows in a million-flow table would otherwise
    /// stream 128 MB of mostly free entries through the caches every period.
    pub fn sweep(&mut self, now: u64, c: &mut WorkerCounters) {
        let end = self.table.scan_end() as u64;
        if self.sweep_clock == 0 || now < self.sweep_clock || end == 0 {
            self.sweep_clock = now;
            return;
        }
        let due = mul_div(now - self.sweep_clock, end, self.sweep_period);
        // Entries in batches, each asked for a few entries before it is
        // read: one or two entries a loop iteration, each a cache miss of
        // its own, cost a million-flow table 4.4 % of the worker's samples
        // (3.6 % so; asking for the whole next batch at the end of a call
        // gained nothing, as the prefetches themselves stall).
        if due < SWEEP_BATCH.min(end) {
            return;
        }
        // Never past a whole pass: an entry met twice in one call would be
        // removed twice.
        let n = due.min(SWEEP_MAX).min(end);
        // Advance the clock by exactly the work done, so none is lost.
        self.sweep_clock += mul_div(n, self.sweep_period, end);
        // Found first, removed together, so the bucket misses of the
        // removals overlap (after a burst of short flows most of a call's
        // entries may go).
        let mut found = 0;
        let lead = SWEEP_LEAD.min(n) as u32;
        for k in 0..lead {
            self.table.prefetch_index(self.sweep_cursor + k);
        }
        for _ in 0..n {
            let i = self.sweep_cursor;
            self.table.prefetch_index(i + lead);
            // The scan end never falls, so the cursor stays below it.
            self.sweep_cursor = if i as u64 + 1 >= end { 0 } else { i + 1 };
            let e = self.table.entry(i);
            if e.is_used() && self.timeouts.swept(e, now) {
                self.swept[found] = i;
                found += 1;
            }
        }
        c.flows_expired += found as u64;
        self.table.remove_all(&self.swept[..found]);
    }

    /// Removes the flow at `idx`, which is over, counting it as expired.
    /// Out of line: a packet rarely finds its flow over, and the removal
    /// inlined into the per-packet path grew it by 2 KiB.
    #[inline(never)]
    #[cold]
    fn end_flow(&mut self, idx: u32, c: &mut WorkerCounters) {
        c.flows_expired += 1;
        self.table.remove(idx);
    }
}

/// `a * b / c` (`c` > 0), in 64 bits when the product fits: this runs
/// every loop iteration, and a 128-bit division is a library call several
/// times slower than the instruction.
#[inline]
fn mul_div(a: u64, b: u64, c: u64) -> u64 {
    match a.checked_mul(b) {
        Some(p) => p / c,
        None => (a as u128 * b as u128 / c as u128) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{PortRange, ProtoSet, Rule};

    use crate::flow::tcp::tcp_flags::*;
    use crate::policy::RuleAction;
    use etherparse::PacketBuilder;

    #[test]
    fn mul_div_agrees_with_128_bits() {
        for (a, b, c) in [
            (0, 5, 7),
            (9_000, 2 << 20, 3_000_000_000),
            (u64::MAX, u64::MAX, u64::MAX),
            (u64::MAX / 2, 3, 2),
            (1 << 40, 1 << 30, 1 << 20),
        ] {
            assert_eq!(
                mul_div(a, b, c),
                (a as u128 * b as u128 / c as u128) as u64,
                "{a} {b} {c}"
            );
        }
    }

    const HZ: u64 = 1000; // one tick per millisecond

    fn tracker(settings: TrackSettings, policy: Policy) -> Tracker {
        Tracker::new(settings, Arc::new(policy), HZ).unwrap()
    }

    fn small() -> TrackSettings {
        TrackSettings {
            capacity: 1024,
            ..TrackSettings::default()
        }
    }

    /// A TCP segment from `a` to `b` with the given flags.
    fn tcp(a: ([u8; 4], u16), b: ([u8; 4], u16), f: u8, payload: &[u8]) -> Vec<u8> {
        tcp_at(a, b, f, 1000, payload)
    }

    /// A TCP segment from `a` to `b` with the given flags and sequence
    /// number.
    fn tcp_at(a: ([u8; 4], u16), b: ([u8; 4], u16), f: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let mut t = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(a.0, b.0, 64)
            .tcp(a.1, b.1, seq, 1000);
        if f & SYN != 0 {
            t = t.syn();
        }
        if f & ACK != 0 {
            t = t.ack(1);
        }
        if f & FIN != 0 {
            t = t.fin();
        }
        if f & RST != 0 {
            t = t.rst();
        }
        t.write(&mut v, payload).unwrap();
        v
    }

    fn udp(a: ([u8; 4], u16), b: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(a.0, b.0, 64)
            .udp(a.1, b.1)
            .write(&mut v, payload)
            .unwrap();
        v
    }

    /// Runs frames through the tracker one burst at a time; returns actions.
    fn run(t: &mut Tracker, frames: &[Vec<u8>], now: u64, c: &mut WorkerCounters) -> Vec<Action> {
        let mut out = Vec::new();
        for chunk in frames.chunks(BURST_SIZE) {
            let mut o = BurstOut::default();
            t.process(chunk, (3, 4), now, &mut o, c);
            out.extend_from_slice(&o.actions[..chunk.len()]);
        }
        out
    }

    fn only_flow(t: &Tracker) -> FlowEntry {
        let used: Vec<FlowEntry> = (0..t.table().capacity())
            .map(|i| *t.table().entry(i))
            .filter(|e| e.is_used())
            .collect();
        assert_eq!(used.len(), 1, "{used:?}");
        used[0]
    }

    const C: ([u8; 4], u16) = ([10, 0, 0, 1], 40000);
    const S: ([u8; 4], u16) = ([192, 0, 2, 1], 80);

    #[test]
    fn a_tcp_session_is_one_flow_with_per_direction_counters() {
        let mut t = tracker(small(), Policy::pass_all());
        let mut c = WorkerCounters::default();
        let frames = vec![
            tcp(C, S, SYN, &[]),
            tcp(S, C, SYN | ACK, &[]),
            tcp(C, S, ACK, &[]),
            tcp(C, S, ACK, b"GET / HTTP/1.1\r\n\r\n"),
            tcp(S, C, ACK, &[0; 500]),
            tcp(C, S, FIN | ACK, &[]),
            tcp(S, C, FIN | ACK, &[]),
            tcp(C, S, ACK, &[]),
        ];
        let actions = run(&mut t, &frames, 5, &mut c);
        assert!(actions.iter().all(|a| *a == Action::Forward));
        let e = only_flow(&t);
        assert_eq!(e.tcp_state, TcpState::TimeWait);
        assert_eq!(e.forward_tuple().sport, 40000, "the client opened it");
        assert_eq!(e.packets_fwd_rev(), (5, 3));
        let bytes = |who: &[usize]| who.iter().map(|&i| frames[i].len() as u64).sum::<u64>();
        assert_eq!(
            e.bytes_fwd_rev(),
            (bytes(&[0, 2, 3, 5, 7]), bytes(&[1, 4, 6]))
        );
        assert_eq!(e.tcp_flags[e.opener().index()], SYN | ACK | FIN);
        assert_eq!(e.tcp_flags[e.opener().reverse().index()], SYN | ACK | FIN);
        assert_eq!(e.in_port, 3);
        assert_eq!(e.ttl, 64);
        assert_eq!(
            (c.flows_created, c.policy_pass, c.midstream_packets),
            (1, 1, 0)
        );
    }

    #[test]
    fn a_rst_or_fin_far_from_its_senders_sequence_moves_nothing() {
        let mut t = tracker(small(), Policy::pass_all());
        let mut c = WorkerCounters::default();
        // The client's numbers wrap past 2^32 during the connection.
        let (ci, si) = (u32::MAX - 100, 7_000_000u32);
        let opened = [
            tcp_at(C, S, SYN, ci, &[]),
            tcp_at(S, C, SYN | ACK, si, &[]),
            tcp_at(C, S, ACK, ci.wrapping_add(1), &[]),
            tcp_at(C, S, ACK, ci.wrapping_add(1), &[0; 400]),
            tcp_at(S, C, ACK, si + 1, &[0; 300]),
        ];
        run(&mut t, &opened, 5, &mut c);
        assert_eq!(only_flow(&t).tcp_state, TcpState::Established);

        // The highest numbers each side sent: its last segment's start.
        let (client, server) = (ci.wrapping_add(1), si + 1);
        let forged = [
            tcp_at(S, C, RST, server.wrapping_add(1 << 31), &[]),
            tcp_at(
                C,
                S,
                RST | ACK,
                client.wrapping_sub(tcp::SEQ_WINDOW + 1),
                &[],
            ),
            tcp_at(
                C,
                S,
                FIN | ACK,
                client.wrapping_add(tcp::SEQ_WINDOW + 1),
                &[],
            ),
            // Far ahead, so it does not move the client's number either...
            tcp_at(C, S, ACK, client.wrapping_add(3 << 20), &[0; 10]),
            // ...and a RST there is still far.
            tcp_at(C, S, RST, client.wrapping_add(3 << 20), &[]),
        ];
        let actions = run(&mut t, &forged, 6, &mut c);
        assert!(actions.iter().all(|a| *a == Action::Forward), "{actions:?}");
        let e = only_flow(&t);
        assert_eq!(e.tcp_state, TcpState::Established);
        assert_eq!(c.tcp_out_of_window, 5);
        assert_eq!(
            e.tcp_flags,
            [SYN | ACK; 2],
            "flags it did not believe are not kept"
        );
        assert_eq!(e.packets_fwd_rev(), (7, 3), "still counted as forwarded");

        // The real ones, a segment ahead of what each side sent.
        run(
            &mut t,
            &[tcp_at(C, S, FIN | ACK, client.wrapping_add(400), &[])],
            7,
            &mut c,
        );
        assert_eq!(only_flow(&t).tcp_state, TcpState::FinWait);
        run(&mut t, &[tcp_at(S, C, RST, server + 300, &[])], 8, &mut c);
        assert_eq!(only_flow(&t).tcp_state, TcpState::Closed);
        assert_eq!(c.tcp_out_of_window, 5);
    }

    #[test]
    fn a_number_from_one_packet_is_on_trial_until_the_next() {
        let mut t = tracker(small(), Policy::pass_all());
        let mut c = WorkerCounters::default();
        // The client gives up and retries from the same port with a new
        // initial number before any answer: the retry replaces the first
        // number, which only one packet had shown.
        run(
            &mut t,
            &[
                tcp_at(C, S, SYN, 5, &[]),
                tcp_at(C, S, SYN, 3_000_000_000, &[]),
            ],
            5,
            &mut c,
        );
        assert_eq!(only_flow(&t).seq, [3_000_000_000, 0]);
        // A port that refuses answers with a number never seen before.
        run(&mut t, &[tcp_at(S, C, RST | ACK, 0, &[])], 6, &mut c);
        assert_eq!(only_flow(&t).tcp_state, TcpState::Closed);

        // A forged SYN-ACK ahead of the real one: the real one replaces
        // its number, the handshake completes, and the server's close is
        // followed; the forger's number is far from it by then.
        let mut t = tracker(small(), Policy::pass_all());
        let (forged, real) = (1_000u32, 2_000_000_000u32);
        let frames = [
            tcp_at(C, S, SYN, 77, &[]),
            tcp_at(S, C, SYN | ACK, forged, &[]),
            tcp_at(S, C, SYN | ACK, real, &[]),
            tcp_at(C, S, ACK, 78, &[]),
            tcp_at(S, C, ACK, real + 1, &[0; 10]),
            tcp_at(S, C, RST, forged + 1, &[]),
        ];
        run(&mut t, &frames, 7, &mut c);
        let e = only_flow(&t);
        assert_eq!(
            (e.tcp_state, e.seq),
            (TcpState::Established, [78, real + 1])
        );
        run(
            &mut t,
            &[tcp_at(S, C, FIN | ACK, real + 11, &[])],
            8,
            &mut c,
        );
        assert_eq!(only_flow(&t).tcp_state, TcpState::CloseWait);
        // The retry, the real SYN-ACK (each replacing a number on trial)
        // and the forged RST.
        assert_eq!(c.tcp_out_of_window, 3);

        // Picked up mid-stream: once a second packet confirms the side's
        // number, far packets move nothing, a SYN included; the side not
        // seen yet is believed.
        let mut t = tracker(small(), Policy::pass_all());
        let mut c = WorkerCounters::default();
        let midstream = [
            tcp_at(C, S, ACK, 123_456, &[0; 100]),
            tcp_at(C, S, ACK, 123_556, &[0; 100]),
            tcp_at(C, S, RST, 123_456 + (1 << 30), &[]),
        ];
        run(&mut t, &midstream, 5, &mut c);
        let e = only_flow(&t);
        assert_eq!(
            (e.tcp_state, e.seq[e.opener().index()], c.tcp_out_of_window),
            (TcpState::Established, 123_556, 1)
        );
        run(&mut t, &[tcp_at(S, C, FIN | ACK, 99, &[])], 6, &mut c);
        assert_eq!(only_flow(&t).tcp_state, TcpState::CloseWait);
        run(
            &mut t,
            &[
                tcp_at(C, S, SYN, 1 << 31, &[]),
                tcp_at(C, S, RST, 1 << 31, &[]),
            ],
            7,
            &mut c,
        );
        assert_eq!(
            (only_flow(&t).tcp_state, c.tcp_out_of_window),
            (TcpState::CloseWait, 3)
        );
    }

    #[test]
    fn mid_stream_policies() {
        for (policy, action, tracked) in [
            (StreamException::Drop, Action::Drop, false),
            (StreamException::Reject, Action::Reject, false),
            (StreamException::Continue, Action::Forward, true),
        ] {
            let mut t = tracker(
                TrackSettings {
                    stream_exception: policy,
                    ..small()
                },
                Policy::pass_all(),
            );
            let mut c = WorkerCounters::default();
            let a = run(&mut t, &[tcp(C, S, ACK, b"x")], 5, &mut c);
            assert_eq!(a, vec![action], "{policy:?}");
            assert_eq!(c.midstream_packets, 1);
            assert_eq!(t.table().len() == 1, tracked, "{policy:?}");
            if tracked {
                let e = only_flow(&t);
                assert_eq!(e.tcp_state, TcpState::Established);
                assert!(e.flags & flags::MIDSTREAM != 0);
            }
        }
    }

    #[test]
    fn a_flow_picked_up_from_its_answer_gets_the_verdict_of_its_opener() {
        let action = |verdict, rule_id| RuleAction {
            verdict,
            rule_id,
            group: 1,
        };
        let to_web = Rule {
            dst: crate::filter::Cidr::v4(S.0, 32),
            dport: PortRange::single(S.1),
            protos: ProtoSet::of(&[6]),
            ..Rule::ANY
        };
        let to_ssh = Rule {
            dport: PortRange::single(22),
            protos: ProtoSet::of(&[6]),
            ..Rule::ANY
        };
        let ssh = ([192, 0, 2, 9], 22);
        // `opened`: where the opener's packets come in (the frames arrive on
        // port 3 and leave by 4) and their TTL (unknown when the other side
        // was seen first).
        for (rules, default, first, want, opened) in [
            // Pass to the server's port 80, default drop: a download picked
            // up from the server's segment passes.
            (
                vec![(to_web, action(Verdict::Pass, 80))],
                action(Verdict::Drop, 0),
                tcp(S, C, ACK, b"data"),
                (Action::Forward, 80),
                (4, 0),
            ),
            // Drop to port 22, default pass: the server speaking first does
            // not get the session through.
            (
                vec![(to_ssh, action(Verdict::Drop, 22))],
                action(Verdict::Pass, 0),
                tcp(ssh, C, ACK, b"banner"),
                (Action::Drop, 22),
                (4, 0),
            ),
            // The packet's own direction matches first: it decides.
            (
                vec![(to_web, action(Verdict::Pass, 80))],
                action(Verdict::Drop, 0),
                tcp(C, S, ACK, b"get"),
                (Action::Forward, 80),
                (3, 64),
            ),
        ] {
            let mut t = tracker(small(), Policy::new(&rules, default));
            let mut c = WorkerCounters::default();
            let a = run(&mut t, &[first], 5, &mut c);
            let e = only_flow(&t);
            assert_eq!((a[0], e.rule_id), want);
            // The client opened it, whichever side was seen first.
            let opener = e.key.oriented(e.opener());
            assert_eq!(
                opener.src_ip(),
                std::net::IpAddr::from(std::net::Ipv4Addr::from(C.0))
            );
            assert!(e.flags & flags::MIDSTREAM != 0);
            assert_eq!((e.in_port, e.ttl), opened);
        }
    }

    #[test]
    fn a_stray_rst_is_decided_but_not_tracked() {
        let mut t = tracker(small(), Policy::pass_all());
        let mut c = WorkerCounters::default();
        let a = run(&mut t, &[tcp(S, C, RST | ACK, &[])], 5, &mut c);
        assert_eq!(a, vec![Action::Forward]);
        assert_eq!(
            (t.table().len(), c.flows_created, c.midstream_packets),
            (0, 0, 1)
        );
    }

    #[test]
    fn an_icmp_error_gets_the_verdict_of_the_flow_it_quotes() {
        use etherparse::icmpv4::DestUnreachableHeader;
        use etherparse::{
            Icmpv4Type, Icmpv6Type, IpHeaders, IpNumber, Ipv6Extensions, Ipv6Header,
            Ipv6RawExtHeader,
        };
        let act = |verdict, rule_id| RuleAction {
            verdict,
            rule_id,
            group: 1,
        };
        // Web passes, telnet drops, the rest (ICMP too) drops.
        let tcp_to = |port| Rule {
            dport: PortRange::single(port),
            protos: ProtoSet::of(&[6]),
            ..Rule::ANY
        };
        let policy = Policy::new(
            &[
                (tcp_to(80), act(Verdict::Pass, 80)),
                (tcp_to(23), act(Verdict::Drop, 23)),
            ],
            act(Verdict::Drop, 0),
        );
        let mut t = tracker(small(), policy);
        let router = [198, 51, 100, 1];
        let error4 = |from: [u8; 4], ty: Icmpv4Type, quoted: &[u8]| {
            let mut v = Vec::new();
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0, 1])
                .ipv4(from, C.0, 64)
                .icmpv4(ty)
                .write(&mut v, &quoted[14..14 + 28])
                .unwrap();
            v
        };
        let too_big =
            Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
                next_hop_mtu: 1400,
            });
        let unreachable = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port);
        let telnet = ([192, 0, 2, 1], 23);
        // IPv6: a connection to port 80 and a router's packet too big.
        let (c6, s6, r6) = (
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 1, 0xd, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        );
        let mut syn6 = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv6(c6, s6, 64)
            .tcp(40000, 80, 1000, 1000)
            .syn()
            .write(&mut syn6, &[])
            .unwrap();
        let mut too_big6 = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0, 1])
            .ipv6(r6, c6, 64)
            .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 })
            .write(&mut too_big6, &syn6[14..14 + 48])
            .unwrap();
        // The same flow's segment behind destination options, as a router
        // quotes it: the ports are past the header.
        let mut opts6 = Vec::new();
        let exts = Ipv6Extensions {
            destination_options: Some(
                Ipv6RawExtHeader::new_raw(IpNumber(0), &[1, 4, 0, 0, 0, 0]).unwrap(),
            ),
            ..Default::default()
        };
        let hdr = Ipv6Header {
            hop_limit: 64,
            source: c6,
            destination: s6,
            ..Default::default()
        };
        PacketBuilder::ip(IpHeaders::Ipv6(hdr, exts))
            .tcp(40000, 80, 1001, 1000)
            .ack(1)
            .write(&mut opts6, &[0; 1400])
            .unwrap();
        let mut too_big6_opts = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0, 1])
            .ipv6(r6, c6, 64)
            .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 })
            .write(&mut too_big6_opts, &opts6[..1232])
            .unwrap();
        let frames = vec![tcp(C, S, SYN, &[]), tcp(C, telnet, SYN, &[]), syn6];
        let mut c = WorkerCounters::default();
        let a = run(&mut t, &frames, 5, &mut c);
        assert_eq!(a, vec![Action::Forward, Action::Drop, Action::Forward]);
        let errors = vec![
            // About the web flow: passes, as the flow does.
            error4(router, too_big, &tcp(C, S, ACK, &[0; 100])),
            // About the telnet flow: dropped with it.
            error4(router, unreachable.clone(), &tcp(C, telnet, SYN, &[])),
            // About no flow: a flow of its own, which the default drops.
            error4(S.0, unreachable, &udp((C.0, 5353), (S.0, 53), b"q")),
            too_big6,
            too_big6_opts,
        ];
        let a = run(&mut t, &errors, 6, &mut c);
        assert_eq!(
            a,
            vec![
                Action::Forward,
                Action::Drop,
                Action::Drop,
                Action::Forward,
                Action::Forward
            ]
        );
        assert_eq!(c.icmp_related, 4);
        assert_eq!(
            t.table().len(),
            4,
            "the unrelated error is a flow of its own"
        );
        assert_eq!(c.flows_created, 4);
        // Forged: an echo whose identifier puts an error's type where the
        // parser keeps it, quoting the web flow; and an error about the web
        // flow sent to a host that is not its sender. Neither is RELATED:
        // each is a flow of its own, which the default drops.
        let web = tcp(C, S, ACK, &[0; 100]);
        let mut echo = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv4(S.0, C.0, 64)
            .icmpv4_echo_request(0x0303, 1)
            .write(&mut echo, &web[14..14 + 28])
            .unwrap();
        let mut astray = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0, 1])
            .ipv4(router, [10, 0, 0, 99], 64)
            .icmpv4(Icmpv4Type::DestinationUnreachable(
                DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
            ))
            .write(&mut astray, &web[14..14 + 28])
            .unwrap();
        let a = run(&mut t, &[echo, astray], 7, &mut c);
        assert_eq!(a, vec![Action::Drop, Action::Drop]);
        assert_eq!(c.icmp_related, 4);
    }

    #[test]
    fn packets_without_a_flow_are_mirrored_like_any_other() {
        use crate::mirror::{Decision, DirectionRules, MirrorAction, MirrorFilter, MirrorSession};
        // One session on the frames' ingress port (3), accepting all.
        let all = MirrorFilter {
            ingress: DirectionRules::new(&[(Rule::ANY, MirrorAction::Accept)]),
            egress: DirectionRules::default(),
        };
        let target = crate::mirror::tests::target(5);
        let session = MirrorSession {
            vni: 7,
            packet_length: None,
            target: 0,
            filter: 0,
        };
        let cfg =
            crate::mirror::MirrorConfig::new(1, 6, vec![target], vec![all], &[(3, 1, session)])
                .unwrap();
        let mut t = tracker(small(), Policy::pass_all());
        t.set_mirror(Arc::new(cfg));
        // A stray RST (decided, not tracked) and a later fragment whose
        // first was not seen, beside a packet of a tracked flow.
        let mut later = udp(C, S, &[0; 16]);
        later[20..22].copy_from_slice(&4u16.to_be_bytes()); // offset 32, last
        crate::wire::Ipv4Packet::new_unchecked(&mut later[14..]).fill_checksum();
        let frames = [tcp(S, C, RST | ACK, &[]), later, udp(C, S, b"q")];
        let mut c = WorkerCounters::default();
        let mut out = BurstOut::default();
        t.process(&frames, (3, 4), 5, &mut out, &mut c);
        assert_eq!((t.table().len(), c.fragments_untracked), (1, 1));
        let mirrored = Decision {
            ingress: Some(0),
            egress: None,
        };
        for i in 0..3 {
            assert_eq!(out.actions[i], Action::Forward, "{i}");
            assert_eq!(Decision::decode(out.mirror[i]), mirrored, "{i}");
        }
    }

    #[test]
    fn a_flow_side_arriving_on_another_port_gets_that_port_s_mirror_decision() {
        use crate::mirror::{Decision, DirectionRules, MirrorAction, MirrorFilter, MirrorSession};
        // Sessions on the ingress of ports 3 (index 0) and 1 (index 1),
        // both accepting all; pairs 3-4 and 1-0.
        let all = MirrorFilter {
            ingress: DirectionRules::new(&[(Rule::ANY, MirrorAction::Accept)]),
            egress: DirectionRules::default(),
        };
        let session = MirrorSession {
            vni: 7,
            packet_length: None,
            target: 0,
            filter: 0,
        };
        let cfg = crate::mirror::MirrorConfig::new(
            1,
            6,
            vec![crate::mirror::tests::target(5)],
            vec![all],
            &[(3, 1, session), (1, 2, session)],
        )
        .unwrap();
        let mut t = tracker(small(), Policy::pass_all());
        t.set_mirror(Arc::new(cfg));
        let mut c = WorkerCounters::default();
        // One side of one flow, in on 3, then on 1, then on 3 again.
        for (ports, session) in [((3, 4), 0), ((1, 0), 1), ((3, 4), 0)] {
            let mut out = BurstOut::default();
            t.process(&[udp(C, S, b"q")], ports, 5, &mut out, &mut c);
            let want = Decision {
                ingress: Some(session),
                egress: None,
            };
            assert_eq!(Decision::decode(out.mirror[0]), want, "in on {}", ports.0);
        }
        assert_eq!(t.table().len(), 1);
    }

    #[test]
    fn a_one_sided_mid_stream_flow_is_swept_after_the_handshake_timeout() {
        let mut t = tracker(small(), Policy::pass_all());
        let mut c = WorkerCounters::default();
        let spoofed = ([10, 9, 9, 9], 1234);
        run(
            &mut t,
            &[
                tcp(spoofed, S, ACK, b"x"),
                tcp(C, S, ACK, b"y"),
                tcp(S, C, ACK, b"z"),
            ],
            0,
            &mut c,
        );
        assert_eq!(t.table().len(), 2);
        // Past the handshake timeout (30 s) but well inside the hour.
        let now = 31 * HZ;
        t.sweep(now, &mut c);
        t.sweep(now + 1_000_000, &mut c);
        assert_eq!(t.table().len(), 1, "the answered one stays");
        let e = only_flow(&t);
        assert_eq!(
            e.key.oriented(e.opener()).src_ip(),
            std::net::IpAddr::from(std::net::Ipv4Addr::from(C.0))
        );
    }

    #[test]
    fn policy_verdict_is_decided_once_and_kept_with_the_rule() {
        let reject_ssh = (
            Rule {
                dport: PortRange::single(22),
                protos: ProtoSet::of(&[6]),
                ..Rule::ANY
            },
            RuleAction {
                verdict: Verdict::Reject,
                rule_id: 22,
                group: 7,
            },
        );
        let drop_dns = (
            Rule {
                dport: PortRange::single(53),
                ..Rule::ANY
            },
            RuleAction {
                verdict: Verdict::Drop,
                rule_id: 53,
                group: 7,
            },
        );
        let p = Policy::new(
            &[reject_ssh, drop_dns],
            RuleAction {
                verdict: Verdict::Pass,
                rule_id: 0,
                group: 0,
            },
        );
        let mut t = tracker(small(), p);
        let mut c = WorkerCounters::default();
        let ssh = ([192, 0, 2, 9], 22);
        let dns = ([192, 0, 2, 53], 53);
        let a = run(
            &mut t,
            &[
                tcp(C, ssh, SYN, &[]),
                tcp(C, ssh, SYN, &[]),
                udp(C, dns, b"q"),
                udp(dns, C, b"a"),
                udp(C, S, b"ok"),
            ],
            5,
            &mut c,
        );
        assert_eq!(
            a,
            vec![
                Action::Reject,
                Action::Reject,
                Action::Drop,
                Action::Drop,
                Action::Forward
            ]
        );
        assert_eq!(
            (c.policy_reject, c.policy_drop, c.policy_pass),
            (1, 1, 1),
            "decided once per flow"
        );
        assert_eq!(c.verdict_dropped, 4);
        let k = udp(C, dns, b"q");
        let Parsed::Ip(p) = crate::parse::parse(&k) else {
            panic!()
        };
        let (key, _) = p.tuple.canonical();
        let e = t.table().entry(t.table().lookup(&key, key.hash()).unwrap());
        assert_eq!(
            (e.verdict, e.rule_id, e.rule_group, e.drop_reason),
            (Verdict::Drop, 53, 7, DropReason::Policy)
        );
    }

    #[test]
    fn malformed_frames_are_counted_per_reason_and_dropped_or_passed() {
        let mut bad = udp(C, S, b"hello");
        bad[14] = 0x44; // IHL 4 < 5
        for (setting, want) in [
            (MalformedAction::Drop, Action::Drop),
            (MalformedAction::Pass, Action::Forward),
        ] {
            let mut t = tracker(
                TrackSettings {
                    malformed: setting,
                    ..small()
                },
                Policy::pass_all(),
            );
            let mut c = WorkerCounters::default();
            // A TCP fragment at offset 8, over the first's flags (RFC
            // 1858): dropped whatever the setting.
            let mut overlap = tcp(C, S, ACK, &[0; 32]);
            overlap[20..22].copy_from_slice(&1u16.to_be_bytes());
            crate::wire::Ipv4Packet::new_unchecked(&mut overlap[14..]).fill_checksum();
            let a = run(
                &mut t,
                &[bad.clone(), vec![0; 9], udp(C, S, b"ok"), overlap],
                5,
                &mut c,
            );
            assert_eq!(a, vec![want, want, Action::Forward, Action::Drop]);
            assert_eq!(
                c.malformed[crate::parse::Malformed::FragmentOffset.index()],
                1
            );
            assert_eq!(
                c.malformed[crate::parse::Malformed::Ipv4HeaderLength.index()],
                1
            );
            assert_eq!(c.malformed[crate::parse::Malformed::Runt.index()], 1);
            assert_eq!(
                c.malformed_dropped,
                if setting == MalformedAction::Drop {
                    3
                } else {
                    1
                }
            );
            assert_eq!(t.table().len(), 1, "the good packet is tracked");
        }
    }

    #[test]
    fn a_damaged_ipv4_header_is_malformed_wherever_the_packet_would_go() {
        use crate::wire::Ipv4Packet;
        let damaged = |mut f: Vec<u8>| {
            f[14 + 8] -= 1; // a TTL decremented, the checksum left as it was
            f
        };
        let mut first_frag = udp(C, S, &[0; 32]);
        first_frag[20] = 0x20; // more fragments, offset 0
        Ipv4Packet::new_unchecked(&mut first_frag[14..]).fill_checksum();
        let mut later = udp(C, S, &[0; 32]);
        later[20..22].copy_from_slice(&5u16.to_be_bytes());
        Ipv4Packet::new_unchecked(&mut later[14..]).fill_checksum();
        let error = {
            let mut v = Vec::new();
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0, 1])
                .ipv4([198, 51, 100, 1], C.0, 64)
                .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                    etherparse::icmpv4::DestUnreachableHeader::Port,
                ))
                .write(&mut v, &udp(C, S, b"q")[14..14 + 28])
                .unwrap();
            v
        };
        for (malformed, verify) in [
            (MalformedAction::Drop, true),
            (MalformedAction::Pass, true),
            (MalformedAction::Drop, false),
        ] {
            let mut t = tracker(
                TrackSettings {
                    malformed,
                    verify_ipv4_checksum: verify,
                    ..small()
                },
                Policy::pass_all(),
            );
            let mut c = WorkerCounters::default();
            // A flow, then (in the next burst: an error is looked up
            // before its burst's new flows are in) damaged copies of one of
            // its packets, an ICMP error about it, a first fragment whose
            // later one follows, and a new flow's opener.
            assert_eq!(
                run(&mut t, &[udp(C, S, b"q")], 5, &mut c),
                [Action::Forward]
            );
            let frames = [
                damaged(udp(C, S, b"q")),
                damaged(error.clone()),
                damaged(first_frag.clone()),
                later.clone(),
                damaged(udp(([10, 9, 9, 9], 7), S, b"new")),
            ];
            let a = run(&mut t, &frames, 5, &mut c);
            let bad = c.malformed[Malformed::Ipv4Checksum.index()];
            if verify {
                let damaged_go = match malformed {
                    MalformedAction::Drop => Action::Drop,
                    MalformedAction::Pass => Action::Forward,
                };
                assert_eq!(
                    a,
                    [
                        damaged_go,
                        damaged_go,
                        damaged_go,
                        Action::Forward, // pass-all: untracked, as any such
                        damaged_go,
                    ]
                );
                assert_eq!(bad, 4);
                assert_eq!(c.icmp_related, 0, "the damaged error is not read");
                assert_eq!(c.fragments_untracked, 1, "the first was not remembered");
                assert_eq!(t.table().len(), 1, "no flow from a damaged header");
            } else {
                assert_eq!(a, [Action::Forward; 5]);
                assert_eq!(bad, 0);
                assert_eq!(c.icmp_related, 1);
                assert_eq!(c.fragments_untracked, 0);
                assert_eq!(t.table().len(), 2);
            }
        }
    }

    #[test]
    fn a_reused_burst_out_decides_as_a_fresh_one() {
        // The worker keeps one BurstOut for all its bursts. Nothing a
        // burst leaves in it may reach the next: here a full burst of
        // tracked flows, then a shorter one whose first three packets are
        // not tracked at all (malformed, a runt, not IP).
        let mut bad = udp(C, S, b"hello");
        bad[14] = 0x44;
        let mut arp = udp(C, S, b"x");
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let bursts: Vec<Vec<Vec<u8>>> = vec![
            (0..BURST_SIZE as u8)
                .map(|n| udp(([10, 0, 0, n], 1000), S, b"x"))
                .collect(),
            vec![
                bad,
                vec![0; 9],
                arp,
                tcp(C, S, ACK, &[]),
                udp(([10, 0, 0, 4], 1000), S, b"y"),
            ],
            (0..3)
                .map(|n| tcp(([10, 0, 1, n], 1000), S, SYN, &[]))
                .collect(),
        ];
        let settings = || TrackSettings {
            stream_exception: StreamException::Drop,
            malformed: MalformedAction::Drop,
            ..small()
        };
        let (mut reusing, mut fresh) = (
            tracker(settings(), Policy::pass_all()),
            tracker(settings(), Policy::pass_all()),
        );
        let (mut cr, mut cf) = (WorkerCounters::default(), WorkerCounters::default());
        let mut kept = BurstOut::default();
        let mut decided = Vec::new();
        for (now, frames) in bursts.iter().enumerate() {
            let n = frames.len();
            reusing.process(frames, (3, 4), now as u64, &mut kept, &mut cr);
            let mut new = BurstOut::default();
            fresh.process(frames, (3, 4), now as u64, &mut new, &mut cf);
            assert_eq!(kept.actions[..n], new.actions[..n], "burst {now}");
            assert_eq!(kept.mirror[..n], new.mirror[..n], "burst {now}");
            decided.push(kept.actions[..n].to_vec());
        }
        use Action::{Drop, Forward};
        assert_eq!(decided[1], [Drop, Drop, Forward, Drop, Forward]);
        assert_eq!(cr, cf);
        let flows = |t: &Tracker| {
            (0..t.table().capacity())
                .map(|i| *t.table().entry(i))
                .filter(|e| e.is_used())
                .map(|e| (e.key, e.packets))
                .collect::<Vec<_>>()
        };
        assert_eq!(flows(&reusing), flows(&fresh));
        assert_eq!(reusing.table().len(), BURST_SIZE as u32 + 3);
    }

    #[test]
    fn one_sweep_call_after_a_long_idle_spell_removes_each_flow_once() {
        // A table smaller than a sweep call's most entries.
        let mut t = tracker(
            TrackSettings {
                capacity: 8,
                ..small()
            },
            Policy::pass_all(),
        );
        let mut c = WorkerCounters::default();
        let frames: Vec<Vec<u8>> = (0..8)
            .map(|n| udp(([10, 0, 0, n], 1000), S, b"x"))
            .collect();
        run(&mut t, &frames, 0, &mut c);
        assert_eq!(t.table().len(), 8);
        t.sweep(1, &mut c);
        t.sweep(1_000_000, &mut c);
        assert_eq!((t.table().len(), c.flows_expired), (0, 8));
        // The room of each flow came back once: eight new flows fit, a
        // ninth does not.
        let frames: Vec<Vec<u8>> = (0..9)
            .map(|n| udp(([10, 0, 1, n], 1000), S, b"x"))
            .collect();
        let passed = c.policy_pass;
        run(&mut t, &frames, 1_000_001, &mut c);
        assert_eq!(t.table().len(), 8);
        assert_eq!(c.table_full_drops, 1);
        assert_eq!(
            c.policy_pass - passed,
            8,
            "the refused flow decided nothing"
        );
    }

    #[test]
    fn the_sweep_passes_over_the_entries_that_held_flows_not_the_capacity() {
        let mut t = tracker(
            TrackSettings {
                capacity: 1 << 16,
                ..small()
            },
            Policy::pass_all(),
        );
        let mut c = WorkerCounters::default();
        let frames: Vec<Vec<u8>> = (0..4)
            .map(|n| udp(([10, 0, 0, n], 1000), S, b"x"))
            .collect();
        run(&mut t, &frames, 0, &mut c);
        assert_eq!(t.table().scan_end(), 4);
        // UDP idles out after 30 s (30,000 ticks); the sweep period is 1,000
        // ticks. Over the capacity, one tick would be 65 entries due.
        for now in 1..=30_000 {
            t.sweep(now, &mut c);
            assert!(t.sweep_cursor < 4, "at {now}: cursor {}", t.sweep_cursor);
        }
        assert_eq!(t.table().len(), 4, "nothing expires early");
        for now in 30_001..=31_001 {
            t.sweep(now, &mut c);
        }
        // Within a period of their timeout.
        assert_eq!((t.table().len(), c.flows_expired), (0, 4));
    }

    #[test]
    fn idle_flows_expire_by_protocol_and_state() {
        let mut t = tracker(small(), Policy::pass_all());
        let mut c = WorkerCounters::default();
        run(
            &mut t,
            &[udp(C, S, b"x"), tcp(([10, 0, 0, 2], 1), S, SYN, &[])],
            0,
            &mut c,
        );
        assert_eq!(t.table().len(), 2);
        // UDP: 30 s; TCP handshake: 30 s. The sweep passes over the whole
        // table once a second (1000 ticks), in small steps.
        for now in (1..=29_000).step_by(7) {
            t.sweep(now, &mut c);
        }
        assert_eq!(t.table().len(), 2);
        for now in (29_000..=32_000).step_by(7) {
            t.sweep(now, &mut c);
        }
        assert_eq!(t.table().len(), 0);
        assert_eq!(c.flows_expired, 2);
    }

    #[test]
    fn a_stale_flow_is_replaced_not_revived() {
        let mut t = tracker(small(), Policy::pass_all());
        let mut c = WorkerCounters::default();
        run(&mut t, &[udp(C, S, b"x")], 0, &mut c);
        run(&mut t, &[udp(C, S, b"x")], 40_000, &mut c);
        let e = only_flow(&t);
        assert_eq!(e.first_seen, 40_000);
        assert_eq!((c.flows_created, c.flows_expired), (2, 1));
    }

    #[test]
    fn a_flushed_flow_is_gone_when_the_flush_returns_and_its_next_packet_is_mid_stream() {
        use crate::filter::{Rule, RuleSet};
        use crate::job::{Job, JobKind, JobSpec, Slice, Step};
        let mut t = tracker(
            TrackSettings {
                stream_exception: StreamException::Drop,
                ..small()
            },
            Policy::pass_all(),
        );
        let mut c = WorkerCounters::default();
        let opened = [
            tcp(C, S, SYN, &[]),
            tcp(S, C, SYN | ACK, &[]),
            tcp(C, S, ACK, &[]),
        ];
        run(&mut t, &opened, 0, &mut c);
        run(&mut t, &[udp(C, S, b"x")], 0, &mut c);
        assert_eq!(t.table().len(), 2);
        let mut flush = Job::new(Box::new(JobSpec {
            op: 1,
            kind: JobKind::Flush,
            filters: Arc::new(RuleSet::compile(&[Rule::ANY])),
            min_age: 0,
            max_age: u64::MAX,
            result_cap: u64::MAX,
            newest: 0,
            buffer: Vec::new(),
            busy_share: 5,
            in_ports: crate::job::PortScope::Any,
        }));
        // One step between two bursts, as the worker runs it: the flows
        // are reported and already gone.
        let step = flush.step(t.table_mut(), &mut Slice::entries(1 << 20), 10);
        assert_eq!(step, Step::Emit);
        let mut flushed = crate::job::JobResults::Taken(Default::default());
        flush.take_chunk(&mut flushed);
        assert_eq!((flushed.len(), flush.summary.removed), (2, 2));
        assert!(t.table().is_empty());
        assert!(
            (0..t.table().capacity()).all(|i| !t.table().entry(i).is_used()),
            "removed by the flush, not left for the sweep"
        );
        let step = flush.step(t.table_mut(), &mut Slice::entries(1 << 20), 10);
        assert_eq!(step, Step::Done);
        // The TCP flow's next segment arrives mid-stream, and goes by the
        // stream exception policy; the UDP flow starts again. Neither old
        // flow counts as expired.
        let a = run(&mut t, &[tcp(C, S, ACK, b"x"), udp(C, S, b"x")], 20, &mut c);
        assert_eq!(a, vec![Action::Drop, Action::Forward]);
        assert_eq!(c.midstream_packets, 1);
        let e = only_flow(&t);
        assert_eq!((e.key.proto, e.first_seen), (17, 20));
        assert_eq!((c.flows_created, c.flows_expired), (3, 0));
    }

    #[test]
    fn a_later_tcp_fragment_carries_no_sequence_number_to_check() {
        use etherparse::{IpFragOffset, IpNumber, Ipv4Header, TcpHeader};
        let mut syn = TcpHeader::new(40000, 443, 3_000_000_000, 64240);
        syn.syn = true;
        let mut l4 = syn.to_bytes().to_vec();
        l4.extend_from_slice(&[7; 44]);
        let frag = |off: usize, data: &[u8], more: bool| {
            let mut ip = Ipv4Header::new(data.len() as u16, 64, IpNumber::TCP, C.0, S.0).unwrap();
            ip.identification = 9;
            ip.more_fragments = more;
            ip.fragment_offset = IpFragOffset::try_new((off / 8) as u16).unwrap();
            ip.header_checksum = ip.calc_header_checksum();
            let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
            f.extend_from_slice(&ip.to_bytes());
            f.extend_from_slice(data);
            f
        };
        let mut t = tracker(small(), Policy::pass_all());
        let mut c = WorkerCounters::default();
        let frames = [frag(0, &l4[..40], true), frag(40, &l4[40..], false)];
        run(&mut t, &frames, 1, &mut c);
        let e = only_flow(&t);
        assert_eq!(
            (e.tcp_state, e.packets_fwd_rev()),
            (TcpState::SynSent, (2, 0))
        );
        assert_eq!(e.seq[e.opener().index()], 3_000_000_000);
        assert_eq!(c.tcp_out_of_window, 0);
    }

    #[test]
    fn later_fragments_are_counted_to_their_flow() {
        use etherparse::{IpFragOffset, IpNumber, Ipv4Header};
        let payload: Vec<u8> = (0..64u8).collect();
        let mut udp_hdr =
            etherparse::UdpHeader::without_ipv4_checksum(5000, 53, payload.len()).unwrap();
        udp_hdr.checksum = 0;
        let mut l4 = udp_hdr.to_bytes().to_vec();
        l4.extend_from_slice(&payload);
        let frag = |off: usize, data: &[u8], more: bool| {
            let mut ip = Ipv4Header::new(
                data.len() as u16,
                64,
                IpNumber::UDP,
                [10, 0, 0, 1],
                [192, 0, 2, 1],
            )
            .unwrap();
            ip.identification = 77;
            ip.more_fragments = more;
            ip.fragment_offset = IpFragOffset::try_new((off / 8) as u16).unwrap();
            ip.header_checksum = ip.calc_header_checksum();
            let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
            f.extend_from_slice(&ip.to_bytes());
            f.extend_from_slice(data);
            f
        };
        let first = frag(0, &l4[..40], true);
        let later = frag(40, &l4[40..], false);
        let mut t = tracker(small(), Policy::pass_all());
        let mut c = WorkerCounters::default();
        // A later fragment before its first one is forwarded untracked.
        run(&mut t, std::slice::from_ref(&later), 1, &mut c);
        assert_eq!((t.table().len(), c.fragments_untracked), (0, 1));
        run(&mut t, &[first.clone(), later.clone()], 2, &mut c);
        let e = only_flow(&t);
        assert_eq!(e.forward_tuple().dport, 53);
        assert_eq!(e.packets_fwd_rev(), (2, 0));
        assert_eq!(e.bytes_fwd_rev().0, (first.len() + later.len()) as u64);
        assert_eq!(c.fragments_untracked_dropped, 0);

        // Under a policy that passes port 53 only, a later fragment whose
        // first was not seen could be of any port: dropped. Once its first
        // is seen, it is part of a passed flow.
        let dns = Rule {
            dport: PortRange::single(53),
            protos: ProtoSet::of(&[17]),
            ..Rule::ANY
        };
        let act = |verdict| RuleAction {
            verdict,
            rule_id: 1,
            group: 1,
        };
        let policy = Policy::new(&[(dns, act(Verdict::Pass))], act(Verdict::Drop));
        let mut t = tracker(small(), policy);
        let mut c = WorkerCounters::default();
        let a = run(&mut t, std::slice::from_ref(&later), 1, &mut c);
        assert_eq!(a, vec![Action::Drop]);
        assert_eq!(
            (
                t.table().len(),
                c.fragments_untracked,
                c.fragments_untracked_dropped
            ),
            (0, 1, 1)
        );
        let a = run(&mut t, &[first.clone(), later.clone()], 2, &mut c);
        assert_eq!(a, vec![Action::Forward, Action::Forward]);
        assert_eq!(c.fragments_untracked_dropped, 1);
    }

    #[test]
    fn a_full_table_drops_new_flows_or_evicts() {
        for (when_full, drops, evicted) in
            [(FullPolicy::DropNew, 2, 0), (FullPolicy::EvictOldest, 0, 2)]
        {
            let mut t = tracker(
                TrackSettings {
                    capacity: 8,
                    when_full,
                    ..small()
                },
                Policy::pass_all(),
            );
            let mut c = WorkerCounters::default();
            let frames: Vec<Vec<u8>> = (0..10u16)
                .map(|i| udp(([10, 0, 0, 1], 1000 + i), S, b"x"))
                .collect();
            let a = run(&mut t, &frames, 1, &mut c);
            assert_eq!(
                a.iter().filter(|x| **x == Action::Drop).count() as u64,
                drops
            );
            assert_eq!(
                (c.table_full_drops, c.flows_evicted, t.table().len()),
                (drops, evicted, 8)
            );
        }
    }
}
