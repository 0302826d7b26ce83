//! The scan index: 16 bytes per table entry holding what a flow
//! operation's filters read of an IPv4 flow (its tuple as the opener sent
//! it), kept beside the entries by the table on insert, flush and remove.
//!
//! A capture or flush over a million flows then streams 16 MB of these
//! instead of 128 MB of entries, and reads the entries of the flows it
//! matches only. IPv6 flows do not fit; their keys say so and the scan
//! reads their entries. The VLAN is not kept: filters do not test it.

use flowgate_sys::cpu::{LaneBounds, Lanes16};

use super::key::{v4_bits, AddrFamily, Tuple};
use super::FlowEntry;

/// What the scan index holds for one table entry: eight 16-bit lanes, so
/// that one SIMD test ([`flowgate_sys::cpu::lanes_within`]) checks a whole
/// key against a filter's [`ScanKey::bounds`].
///
/// Lanes: source address (low half, high half), destination address (low,
/// high), source port, destination port, protocol (low byte) with the
/// [`State`] (high byte), and a zero lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C, align(16))]
pub struct ScanKey([u16; 8]);

const _: () = assert!(std::mem::size_of::<ScanKey>() == 16);

const SRC: usize = 0;
const DST: usize = 2;
const SPORT: usize = 4;
const DPORT: usize = 5;
const PROTO_STATE: usize = 6;

/// The state byte (high byte of the protocol lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum State {
    /// No flow: scans pass over it.
    Skip = 0,
    /// An IPv4 flow; the key holds its forward tuple.
    V4 = 1,
    /// A flow whose tuple is only in its entry (IPv6).
    InEntry = 2,
}

impl Lanes16 for ScanKey {
    #[inline(always)]
    fn lanes(&self) -> &[u16; 8] {
        &self.0
    }
}

/// An IPv4 flow's tuple as its opener sent it, as the scan index holds it
/// (no VLAN: filters do not test it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V4Tuple {
    /// Source (opener) address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// IP protocol.
    pub proto: u8,
}

impl V4Tuple {
    /// `t` in 32-bit form, if it is IPv4.
    pub fn of(t: &Tuple) -> Option<V4Tuple> {
        // IPv4 sits in the top 32 bits of the 128-bit address.
        (t.family == AddrFamily::V4).then_some(V4Tuple {
            src: (t.src >> 96) as u32,
            dst: (t.dst >> 96) as u32,
            sport: t.sport,
            dport: t.dport,
            proto: t.proto,
        })
    }

    /// The full tuple (VLAN 0).
    pub fn tuple(&self) -> Tuple {
        Tuple {
            src: v4_bits(self.src.to_be_bytes()),
            dst: v4_bits(self.dst.to_be_bytes()),
            sport: self.sport,
            dport: self.dport,
            proto: self.proto,
            family: AddrFamily::V4,
            vlan: 0,
        }
    }
}

/// What a scan learns from a [`ScanKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scanned {
    /// Nothing to look at (a free entry).
    Skip,
    /// A live IPv4 flow with this forward tuple.
    V4(V4Tuple),
    /// A live flow whose tuple must be read from its entry.
    InEntry,
}

/// A 32-bit value as (low, high) lanes.
#[inline(always)]
fn halves(v: u32) -> [u16; 2] {
    [v as u16, (v >> 16) as u16]
}

#[inline(always)]
const fn proto_state(proto: u8, state: State) -> u16 {
    proto as u16 | (state as u16) << 8
}

impl ScanKey {
    /// The key of a free entry.
    pub const FREE: ScanKey = {
        let mut k = [0; 8];
        k[PROTO_STATE] = proto_state(0, State::Skip);
        ScanKey(k)
    };

    /// The key of `e` (a used entry).
    pub fn of(e: &FlowEntry) -> ScanKey {
        match V4Tuple::of(&e.forward_tuple()) {
            Some(t) => {
                let [s0, s1] = halves(t.src);
                let [d0, d1] = halves(t.dst);
                ScanKey([
                    s0,
                    s1,
                    d0,
                    d1,
                    t.sport,
                    t.dport,
                    proto_state(t.proto, State::V4),
                    0,
                ])
            }
            None => {
                let mut k = ScanKey::FREE;
                k.0[PROTO_STATE] = proto_state(0, State::InEntry);
                k
            }
        }
    }

    #[inline(always)]
    fn state(&self) -> u8 {
        (self.0[PROTO_STATE] >> 8) as u8
    }

    #[inline(always)]
    fn u32_at(&self, lane: usize) -> u32 {
        self.0[lane] as u32 | (self.0[lane + 1] as u32) << 16
    }

    /// What a scan does with the entry behind this key.
    #[inline(always)]
    pub fn view(&self) -> Scanned {
        match self.state() {
            s if s == State::V4 as u8 => Scanned::V4(V4Tuple {
                src: self.u32_at(SRC),
                dst: self.u32_at(DST),
                sport: self.0[SPORT],
                dport: self.0[DPORT],
                proto: self.0[PROTO_STATE] as u8,
            }),
            s if s == State::InEntry as u8 => Scanned::InEntry,
            _ => Scanned::Skip,
        }
    }

    /// The bounds that pass exactly the IPv4 keys whose source and
    /// destination addresses, masked by the given (address, mask) pairs,
    /// equal their addresses, whose ports are within the inclusive ranges, and,
    /// if `proto` is given, whose protocol is that one.
    pub fn bounds(
        src: (u32, u32),
        dst: (u32, u32),
        sport: (u16, u16),
        dport: (u16, u16),
        proto: Option<u8>,
    ) -> LaneBounds {
        let mut b = LaneBounds::default();
        for (lane, (addr, mask)) in [(SRC, src), (DST, dst)] {
            let (a, m) = (halves(addr), halves(mask));
            b.and[lane..lane + 2].copy_from_slice(&m);
            b.lo[lane..lane + 2].copy_from_slice(&a);
            b.hi[lane..lane + 2].copy_from_slice(&a);
        }
        for (lane, (lo, hi)) in [(SPORT, sport), (DPORT, dport)] {
            b.and[lane] = 0xffff;
            b.lo[lane] = lo;
            b.hi[lane] = hi;
        }
        let want = proto_state(proto.unwrap_or(0), State::V4);
        b.and[PROTO_STATE] = if proto.is_some() { 0xffff } else { 0xff00 };
        b.lo[PROTO_STATE] = want;
        b.hi[PROTO_STATE] = want;
        b
    }

    /// The bounds that pass the keys of flows whose tuple is in their
    /// entry (IPv6).
    pub fn in_entry_bounds() -> LaneBounds {
        let mut b = LaneBounds::default();
        b.and[PROTO_STATE] = 0xff00;
        b.lo[PROTO_STATE] = proto_state(0, State::InEntry);
        b.hi[PROTO_STATE] = proto_state(0, State::InEntry);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::key::v6_bits;
    use crate::flow::Side;

    fn entry(t: Tuple) -> FlowEntry {
        let (k, side) = t.canonical();
        FlowEntry::new(k, side, 5)
    }

    #[test]
    fn an_ipv4_key_holds_the_forward_tuple() {
        // The opener's address sorts high, so the entry's key is reversed.
        let t = Tuple {
            src: v4_bits([198, 51, 100, 7]),
            dst: v4_bits([10, 0, 0, 1]),
            sport: 40000,
            dport: 53,
            proto: 17,
            family: AddrFamily::V4,
            vlan: 12,
        };
        let e = entry(t);
        assert_eq!(e.opener(), Side::HiToLo);
        let Scanned::V4(got) = ScanKey::of(&e).view() else {
            panic!("not IPv4")
        };
        assert_eq!(got.tuple(), Tuple { vlan: 0, ..t });
        assert_eq!(V4Tuple::of(&t), Some(got));
        assert_eq!(ScanKey::FREE.view(), Scanned::Skip);
        assert_eq!(ScanKey::default(), ScanKey::FREE);
    }

    #[test]
    fn an_ipv6_key_sends_the_scan_to_the_entry() {
        let t = Tuple {
            src: v6_bits([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            dst: v6_bits([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]),
            sport: 1,
            dport: 2,
            proto: 6,
            family: AddrFamily::V6,
            vlan: 0,
        };
        assert_eq!(ScanKey::of(&entry(t)).view(), Scanned::InEntry);
        assert_eq!(V4Tuple::of(&t), None);
    }
}
