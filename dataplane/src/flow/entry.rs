//! One flow's state, as a worker keeps it: two cache lines.
//!
//! Line 0 holds what a lookup compares and every packet updates first (the
//! key, TCP state and flags, last-seen time, the mirror generation); line 1
//! the counters, the verdict and the cached mirror decision with the port
//! it was made for. Both directions of a conversation share one entry;
//! per-direction fields are indexed by [`Side`].

use super::{FlowKey, Side};

/// TCP connection state, as seen from the middle of the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum TcpState {
    /// Not TCP.
    #[default]
    None = 0,
    /// The opener's SYN was seen.
    SynSent = 1,
    /// The responder's SYN-ACK was seen.
    SynRecv = 2,
    /// Handshake complete (or picked up mid-stream).
    Established = 3,
    /// The opener sent the first FIN.
    FinWait = 4,
    /// The responder sent the first FIN.
    CloseWait = 5,
    /// Both sides sent FIN.
    TimeWait = 6,
    /// Reset.
    Closed = 7,
}

impl TcpState {
    /// Every state, in order.
    pub const ALL: [TcpState; 8] = [
        TcpState::None,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::Established,
        TcpState::FinWait,
        TcpState::CloseWait,
        TcpState::TimeWait,
        TcpState::Closed,
    ];

    /// Upper-case name as conntrack and the F5 API spell states.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Closed => "CLOSED",
        }
    }
}

/// What the appliance does with a flow's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Verdict {
    /// Forward.
    #[default]
    Pass = 0,
    /// Discard silently.
    Drop = 1,
    /// Discard and answer (TCP RST or ICMP port unreachable).
    Reject = 2,
}

impl Verdict {
    /// Upper-case name.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Drop => "DROP",
            Verdict::Reject => "REJECT",
        }
    }
}

/// Why a flow's packets are dropped (kept in the entry for reporting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum DropReason {
    /// Not dropped.
    #[default]
    None = 0,
    /// A policy rule said drop or reject. (Under a drop or reject stream
    /// exception policy, a TCP flow first seen mid-stream gets no entry.)
    Policy = 1,
}

impl DropReason {
    /// Upper-case name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::None => "NONE",
            DropReason::Policy => "POLICY",
        }
    }
}

/// [`FlowEntry::flags`] bits.
pub mod flags {
    /// The `hi` endpoint opened the flow.
    pub const OPENED_BY_HI: u8 = 1 << 0;
    /// First seen mid-stream (TCP without a SYN), tracked anyway.
    pub const MIDSTREAM: u8 = 1 << 1;
    /// [`super::FlowEntry::seq`] holds a sequence number for the `lo` side;
    /// the next bit up, for the `hi` side.
    pub const SEQ_KNOWN_LO: u8 = 1 << 2;
    /// The `lo` side's number is on trial: it comes from one packet (see
    /// [`crate::flow::tcp::follow`]); the next bit up, for the `hi` side.
    pub const SEQ_TRIAL_LO: u8 = 1 << 4;

    /// The bit saying side `s` has a sequence number.
    #[inline(always)]
    pub const fn seq_known(s: super::Side) -> u8 {
        SEQ_KNOWN_LO << (s as u8)
    }

    /// The bit saying side `s`'s number is on trial.
    #[inline(always)]
    pub const fn seq_on_trial(s: super::Side) -> u8 {
        SEQ_TRIAL_LO << (s as u8)
    }
}

/// One flow.
///
/// Not `align(64)`: the table's array is page-aligned with a 128-byte
/// stride, so every entry there spans exactly two cache lines anyway, and
/// copies of an entry (in reported records) need not carry 64 bytes of
/// padding each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct FlowEntry {
    /// The canonical key; `key.family == None` marks a free entry.
    pub key: FlowKey,
    /// TCP state ([`TcpState::None`] for other protocols).
    pub tcp_state: TcpState,
    /// [`flags`] bits.
    pub flags: u8,
    /// TCP flags seen, OR-ed, per side.
    pub tcp_flags: [u8; 2],
    /// Mirror configuration generation the cached decision belongs to.
    pub mirror_gen: u32,
    /// TSC of the last packet.
    pub last_seen: u64,
    /// Packets per side.
    pub packets: [u64; 2],
    /// Bytes (frame lengths) per side.
    pub bytes: [u64; 2],
    /// TSC of the first packet.
    pub first_seen: u64,
    /// Id of the policy rule that decided the verdict (0: the default).
    pub rule_id: u32,
    /// TCP: the highest sequence number seen per side, where
    /// [`flags::seq_known`] says one was (see [`super::tcp::follow`]).
    pub seq: [u32; 2],
    /// Cached mirror decision per side (meaning owned by the mirror module).
    pub mirror: [u16; 2],
    /// Group of that rule.
    pub rule_group: u16,
    /// The verdict.
    pub verdict: Verdict,
    /// Why dropped, if dropped.
    pub drop_reason: DropReason,
    /// TTL (hop limit) of the opener's first packet seen (0 for a flow
    /// picked up mid-stream from the other side).
    pub ttl: u8,
    /// Port index (config order) the opener's packets arrive on.
    pub in_port: u8,
    /// Per side, the port the cached [`FlowEntry::mirror`] decision was made
    /// for a packet arriving on: sessions belong to ports, and a flow's
    /// packets of one side may arrive on more than one (several pairs, or
    /// either port of one). Only the in-port is kept, as a port is in one
    /// pair at most and so names the port a packet leaves by.
    pub mirror_in: [u8; 2],
}

const _: () = assert!(std::mem::size_of::<FlowEntry>() == 128);
const _: () = assert!(128 % std::mem::align_of::<FlowEntry>() == 0);

impl FlowEntry {
    /// A fresh entry for `key`, first seen now.
    pub fn new(key: FlowKey, opener: Side, now: u64) -> FlowEntry {
        FlowEntry {
            key,
            flags: if opener == Side::HiToLo {
                flags::OPENED_BY_HI
            } else {
                0
            },
            last_seen: now,
            first_seen: now,
            ..FlowEntry::default()
        }
    }

    /// The side that opened the flow.
    #[inline(always)]
    pub fn opener(&self) -> Side {
        if self.flags & flags::OPENED_BY_HI != 0 {
            Side::HiToLo
        } else {
            Side::LoToHi
        }
    }

    /// Whether the entry holds a flow.
    #[inline(always)]
    pub fn is_used(&self) -> bool {
        self.key.is_used()
    }

    /// The flow's tuple as its opener sent it (source = opener).
    pub fn forward_tuple(&self) -> super::Tuple {
        self.key.oriented(self.opener())
    }

    /// Packets sent by the opener, and by the responder.
    pub fn packets_fwd_rev(&self) -> (u64, u64) {
        let o = self.opener().index();
        (self.packets[o], self.packets[1 - o])
    }

    /// Bytes sent by the opener, and by the responder.
    pub fn bytes_fwd_rev(&self) -> (u64, u64) {
        let o = self.opener().index();
        (self.bytes[o], self.bytes[1 - o])
    }
}
