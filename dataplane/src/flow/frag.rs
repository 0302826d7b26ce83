//! The fragment map: lets non-first IP fragments be counted to their flow.
//!
//! Only the first fragment of a datagram carries the ports. When it passes,
//! the worker remembers the datagram's identity → protocol and ports here;
//! a later fragment with the same identity takes them from the map and is
//! tracked like any packet of the flow. The identity is (src, dst,
//! protocol, IP id, VLAN) for IPv4, and (src, dst, id, VLAN) for IPv6
//! (RFC 8200): an IPv6 later fragment names the header that follows the
//! Fragment header, which is not the upper-layer protocol when another
//! extension header (destination options, AH) comes first.
//!
//! A later fragment that arrives before its first (reordering), or after
//! the entry aged out, is forwarded untracked and counted. The map is a
//! fixed 4-way set-associative array: when a set is full the oldest entry
//! is overwritten (and counted).

use flowgate_sys::cpu::{crc32c_u32, crc32c_u64};

use super::{AddrFamily, Tuple};

const WAYS: usize = 4;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Slot {
    src: u128,
    dst: u128,
    id: u32,
    vlan: u32,
    proto: u8,
    used: bool,
    sport: u16,
    dport: u16,
    seen: u64,
}

/// What [`FragMap::remember`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remembered {
    /// Stored in a free (or expired, or same-datagram) slot.
    Stored,
    /// Stored over the oldest live entry of a full set.
    Overwrote,
}

/// Fixed-size map from datagram identity to ports.
#[derive(Debug)]
pub struct FragMap {
    slots: Vec<Slot>,
    set_mask: u32,
    timeout: u64,
}

/// The protocol as part of a datagram's identity: IPv4's, not IPv6's.
#[inline]
fn ident_proto(t: &Tuple) -> u8 {
    if t.family == AddrFamily::V6 {
        0
    } else {
        t.proto
    }
}

fn ident_hash(t: &Tuple, id: u32) -> u32 {
    let mut c = !0u32;
    for addr in [t.src, t.dst] {
        c = crc32c_u64(c, (addr >> 64) as u64);
        c = crc32c_u64(c, addr as u64);
    }
    c = crc32c_u32(c, id);
    c = crc32c_u32(c, t.vlan ^ (ident_proto(t) as u32) << 24);
    !c
}

impl FragMap {
    /// A map for about `capacity` datagrams in flight, entries valid for
    /// `timeout` TSC ticks.
    pub fn new(capacity: u32, timeout: u64) -> FragMap {
        let sets = (capacity as usize)
            .div_ceil(WAYS)
            .next_power_of_two()
            .max(1);
        FragMap {
            slots: vec![Slot::default(); sets * WAYS],
            set_mask: sets as u32 - 1,
            timeout,
        }
    }

    /// Number of datagrams it can hold.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn set(&self, t: &Tuple, id: u32) -> usize {
        (ident_hash(t, id) & self.set_mask) as usize * WAYS
    }

    fn same(s: &Slot, t: &Tuple, id: u32) -> bool {
        s.used
            && s.id == id
            && (s.proto == t.proto || t.family == AddrFamily::V6)
            && s.vlan == t.vlan
            && s.src == t.src
            && s.dst == t.dst
    }

    /// Remembers the ports of the datagram whose first fragment is `t`
    /// (with IP id `id`).
    pub fn remember(&mut self, t: &Tuple, id: u32, now: u64) -> Remembered {
        let base = self.set(t, id);
        let timeout = self.timeout;
        let set = &mut self.slots[base..base + WAYS];
        let live = |s: &Slot| s.used && now.saturating_sub(s.seen) <= timeout;
        let (way, outcome) =
            if let Some(w) = set.iter().position(|s| Self::same(s, t, id) || !live(s)) {
                (w, Remembered::Stored)
            } else {
                let w = (0..WAYS).min_by_key(|&w| set[w].seen).expect("WAYS > 0");
                (w, Remembered::Overwrote)
            };
        set[way] = Slot {
            src: t.src,
            dst: t.dst,
            id,
            vlan: t.vlan,
            proto: t.proto,
            used: true,
            sport: t.sport,
            dport: t.dport,
            seen: now,
        };
        outcome
    }

    /// The protocol and ports of a later fragment's datagram, if its first
    /// was seen and has not aged out.
    pub fn recall(&self, t: &Tuple, id: u32, now: u64) -> Option<(u8, u16, u16)> {
        let base = self.set(t, id);
        self.slots[base..base + WAYS]
            .iter()
            .find(|s| Self::same(s, t, id) && now.saturating_sub(s.seen) <= self.timeout)
            .map(|s| (s.proto, s.sport, s.dport))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::key::v4_bits;

    fn t(n: u8, sport: u16) -> Tuple {
        Tuple {
            src: v4_bits([10, 0, 0, n]),
            dst: v4_bits([192, 0, 2, 1]),
            sport,
            dport: 53,
            proto: 17,
            family: AddrFamily::V4,
            vlan: 0,
        }
    }

    #[test]
    fn later_fragments_find_their_ports() {
        let mut m = FragMap::new(64, 100);
        assert_eq!(m.remember(&t(1, 4000), 7, 10), Remembered::Stored);
        let later = Tuple {
            sport: 0,
            dport: 0,
            ..t(1, 0)
        };
        assert_eq!(m.recall(&later, 7, 50), Some((17, 4000, 53)));
        assert_eq!(m.recall(&later, 8, 50), None, "other datagram");
        assert_eq!(
            m.recall(&Tuple { proto: 6, ..later }, 7, 50),
            None,
            "other protocol"
        );
        assert_eq!(m.recall(&later, 7, 111), None, "aged out");
    }

    #[test]
    fn an_ipv6_later_fragment_is_known_by_addresses_and_id_alone() {
        // The first fragment's upper layer is UDP behind a destination
        // options header; a later one can only say "destination options"
        // (60), the header after its Fragment header.
        let mut m = FragMap::new(64, 100);
        let first = Tuple {
            src: 0x2001_0db8 << 96 | 1,
            dst: 0x2001_0db8 << 96 | 2,
            family: AddrFamily::V6,
            ..t(0, 4000)
        };
        m.remember(&first, 5, 10);
        let later = Tuple {
            proto: 60,
            sport: 0,
            dport: 0,
            ..first
        };
        assert_eq!(m.recall(&later, 5, 20), Some((17, 4000, 53)));
        assert_eq!(m.recall(&later, 6, 20), None, "other datagram");
        // IPv4 keeps the protocol in the identity (every fragment has it).
        m.remember(&t(1, 4000), 5, 10);
        assert_eq!(
            m.recall(
                &Tuple {
                    proto: 6,
                    sport: 0,
                    dport: 0,
                    ..t(1, 0)
                },
                5,
                20
            ),
            None
        );
    }

    #[test]
    fn full_sets_overwrite_the_oldest() {
        let mut m = FragMap::new(4, 1_000_000); // one set of 4
        for i in 0..4 {
            assert_eq!(
                m.remember(&t(1, 1000 + i), i as u32, i as u64),
                Remembered::Stored
            );
        }
        assert_eq!(m.remember(&t(1, 2000), 99, 10), Remembered::Overwrote);
        let later = Tuple {
            sport: 0,
            dport: 0,
            ..t(1, 0)
        };
        assert_eq!(m.recall(&later, 0, 11), None, "the oldest went");
        assert_eq!(m.recall(&later, 99, 11), Some((17, 2000, 53)));
        assert_eq!(m.recall(&later, 3, 11), Some((17, 1003, 53)));
    }
}
