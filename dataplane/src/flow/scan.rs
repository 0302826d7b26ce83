//! The scan index: 16 bytes per table entry holding what a flow
//! operation's filters read of an IPv4 flow (its tuple as the opener sent
//! it), kept beside the entries by the table on insert, flush and remove.
//!
//! A capture or flush over a million flows then streams 16 MB of these
//! instead of 128 MB of entries, and reads the entries of the flows it
//! matches only. IPv6 flows do not fit; their keys say so and the scan
//! reads their entries. The VLAN is not kept: filters do not test it.

use super::key::{v4_bits, AddrFamily, Tuple};
use super::FlowEntry;

/// What the scan index holds for one table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C, align(16))]
pub struct ScanKey {
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
    proto: u8,
    state: State,
    _pad: [u8; 2],
}

const _: () = assert!(std::mem::size_of::<ScanKey>() == 16);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
enum State {
    /// No flow, or a flushed one: scans pass over it.
    #[default]
    Skip = 0,
    /// An IPv4 flow; the key holds its forward tuple.
    V4 = 1,
    /// A flow whose tuple is only in its entry (IPv6).
    InEntry = 2,
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
    /// Nothing to look at (free or flushed).
    Skip,
    /// A live IPv4 flow with this forward tuple.
    V4(V4Tuple),
    /// A live flow whose tuple must be read from its entry.
    InEntry,
}

impl ScanKey {
    /// The key of a free entry.
    pub const FREE: ScanKey = ScanKey {
        src: 0,
        dst: 0,
        sport: 0,
        dport: 0,
        proto: 0,
        state: State::Skip,
        _pad: [0; 2],
    };

    /// The key of `e` (a used, unflushed entry).
    pub fn of(e: &FlowEntry) -> ScanKey {
        match V4Tuple::of(&e.forward_tuple()) {
            Some(t) => ScanKey {
                src: t.src,
                dst: t.dst,
                sport: t.sport,
                dport: t.dport,
                proto: t.proto,
                state: State::V4,
                _pad: [0; 2],
            },
            None => ScanKey {
                state: State::InEntry,
                ..ScanKey::FREE
            },
        }
    }

    /// This key once its flow is flushed: scans pass over it.
    pub fn flushed(self) -> ScanKey {
        ScanKey {
            state: State::Skip,
            ..self
        }
    }

    /// What a scan does with the entry behind this key.
    #[inline(always)]
    pub fn view(&self) -> Scanned {
        match self.state {
            State::Skip => Scanned::Skip,
            State::InEntry => Scanned::InEntry,
            State::V4 => Scanned::V4(V4Tuple {
                src: self.src,
                dst: self.dst,
                sport: self.sport,
                dport: self.dport,
                proto: self.proto,
            }),
        }
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
        assert_eq!(ScanKey::of(&e).flushed().view(), Scanned::Skip);
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
