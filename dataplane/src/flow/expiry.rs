//! Idle timeouts by protocol and TCP state, in TSC ticks.

use super::entry::flags;
use super::{FlowEntry, TcpState};

/// Idle timeouts in seconds, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutSecs {
    /// TCP during the handshake (SYN_SENT, SYN_RECV).
    pub tcp_handshake: u32,
    /// TCP established.
    pub tcp_established: u32,
    /// TCP closing (FIN_WAIT, CLOSE_WAIT, TIME_WAIT).
    pub tcp_closing: u32,
    /// TCP reset (CLOSED).
    pub tcp_closed: u32,
    /// UDP.
    pub udp: u32,
    /// ICMP and ICMPv6.
    pub icmp: u32,
    /// Any other protocol.
    pub other: u32,
}

impl Default for TimeoutSecs {
    fn default() -> Self {
        TimeoutSecs {
            tcp_handshake: 30,
            tcp_established: 3600,
            tcp_closing: 120,
            tcp_closed: 10,
            udp: 30,
            icmp: 10,
            other: 60,
        }
    }
}

/// The same timeouts in TSC ticks, indexed for the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    tcp: [u64; 8],
    udp: u64,
    icmp: u64,
    other: u64,
}

impl Timeouts {
    /// Converts seconds to ticks of a `tsc_hz` clock.
    pub fn new(s: &TimeoutSecs, tsc_hz: u64) -> Timeouts {
        let t = |secs: u32| u64::from(secs).saturating_mul(tsc_hz);
        let mut tcp = [t(s.tcp_established); 8];
        tcp[TcpState::SynSent as usize] = t(s.tcp_handshake);
        tcp[TcpState::SynRecv as usize] = t(s.tcp_handshake);
        tcp[TcpState::FinWait as usize] = t(s.tcp_closing);
        tcp[TcpState::CloseWait as usize] = t(s.tcp_closing);
        tcp[TcpState::TimeWait as usize] = t(s.tcp_closing);
        tcp[TcpState::Closed as usize] = t(s.tcp_closed);
        Timeouts {
            tcp,
            udp: t(s.udp),
            icmp: t(s.icmp),
            other: t(s.other),
        }
    }

    /// The idle timeout that applies to `e` now.
    #[inline]
    pub fn of(&self, e: &FlowEntry) -> u64 {
        match e.key.proto {
            6 => self.tcp[e.tcp_state as usize],
            17 => self.udp,
            1 | 58 => self.icmp,
            _ => self.other,
        }
    }

    /// Whether `e` is over at `now`: idle past its timeout.
    #[inline]
    pub fn expired(&self, e: &FlowEntry, now: u64) -> bool {
        now.saturating_sub(e.last_seen) > self.of(e)
    }

    /// Whether the sweep ends `e` at `now`: as [`Timeouts::expired`], but a
    /// TCP flow picked up mid-stream that has heard from one side only
    /// keeps the handshake timeout, as an unanswered SYN does, so that one
    /// spoofed ACK does not hold an entry for the established hour. Only
    /// the sweep applies it: it frees the entry, and the per-packet check
    /// stays as it is.
    #[inline]
    pub fn swept(&self, e: &FlowEntry, now: u64) -> bool {
        let idle = now.saturating_sub(e.last_seen);
        let one_sided = e.key.proto == 6
            && e.flags & flags::MIDSTREAM != 0
            && (e.packets[0] == 0 || e.packets[1] == 0);
        if one_sided {
            return idle > self.of(e).min(self.tcp[TcpState::SynSent as usize]);
        }
        idle > self.of(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{AddrFamily, FlowKey, Side, Tuple};

    fn entry(proto: u8, state: TcpState, seen: u64) -> FlowEntry {
        let k: FlowKey = Tuple {
            proto,
            family: AddrFamily::V4,
            ..Tuple::default()
        }
        .canonical()
        .0;
        let mut e = FlowEntry::new(k, Side::LoToHi, seen);
        e.tcp_state = state;
        e
    }

    #[test]
    fn per_protocol_and_state() {
        let t = Timeouts::new(&TimeoutSecs::default(), 1000);
        assert!(!t.expired(&entry(6, TcpState::Established, 0), 3_600_000));
        assert!(t.expired(&entry(6, TcpState::Established, 0), 3_600_001));
        assert!(t.expired(&entry(6, TcpState::Closed, 0), 10_001));
        assert!(t.expired(&entry(6, TcpState::TimeWait, 0), 120_001));
        assert!(t.expired(&entry(6, TcpState::SynSent, 0), 30_001));
        assert!(t.expired(&entry(17, TcpState::None, 0), 30_001));
        assert!(!t.expired(&entry(17, TcpState::None, 0), 30_000));
        assert!(t.expired(&entry(1, TcpState::None, 0), 10_001));
        assert!(t.expired(&entry(58, TcpState::None, 0), 10_001));
        assert!(t.expired(&entry(47, TcpState::None, 0), 60_001));
        // A clock that went backwards never expires anything.
        assert!(!t.expired(&entry(17, TcpState::None, 500), 100));
    }
}
