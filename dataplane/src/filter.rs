//! Filters compiled into a struct-of-arrays form.
//!
//! One [`RuleSet`] serves the policy, the flush/capture filters and the
//! mirror filter rules: control builds [`Rule`]s from its own formats,
//! compiles them once, and hands the immutable result to workers (behind an
//! `Arc`). Matching a tuple against many rules is a loop over parallel
//! arrays that computes one bit per rule without branches, 64 rules at a
//! time, so the compiler can vectorise it; the first match is a
//! `trailing_zeros`. [`Rule::matches`] is the naive twin the tests compare
//! against.
//!
//! Flow operations scan IPv4 flows from the table's scan index; for them a
//! rule set also keeps its rules in 32-bit form ([`RuleSet::any_match_v4`]),
//! which costs a nanosecond or two per rule instead of the 128-bit arrays'
//! dozen, and as scan-key bounds ([`RuleSet::scan_candidates`]) that test
//! a whole key per SIMD operation.

use flowgate_sys::cpu::{lanes_within, LaneBounds};

use crate::flow::{AddrFamily, ScanKey, Tuple, V4Tuple};

/// An address block: any address, or a CIDR of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// [`AddrFamily::None`] means any address of either family.
    pub family: AddrFamily,
    /// Network address as a big-endian integer (IPv4 in the top 32 bits).
    pub addr: u128,
    /// Prefix length (0..=32 for IPv4, 0..=128 for IPv6).
    pub prefix: u8,
}

impl Cidr {
    /// Any address.
    pub const ANY: Cidr = Cidr {
        family: AddrFamily::None,
        addr: 0,
        prefix: 0,
    };

    /// An IPv4 block.
    pub fn v4(a: [u8; 4], prefix: u8) -> Cidr {
        let prefix = prefix.min(32);
        let addr = (u32::from_be_bytes(a) as u128) << 96;
        Cidr {
            family: AddrFamily::V4,
            addr: addr & mask(prefix),
            prefix,
        }
    }

    /// An IPv6 block.
    pub fn v6(a: [u8; 16], prefix: u8) -> Cidr {
        let prefix = prefix.min(128);
        Cidr {
            family: AddrFamily::V6,
            addr: u128::from_be_bytes(a) & mask(prefix),
            prefix,
        }
    }

    /// From a std network (`ipnet`-style pieces).
    pub fn from_ip(ip: std::net::IpAddr, prefix: u8) -> Cidr {
        match ip {
            std::net::IpAddr::V4(a) => Cidr::v4(a.octets(), prefix),
            std::net::IpAddr::V6(a) => Cidr::v6(a.octets(), prefix),
        }
    }

    /// The mask for the prefix, in the same bit layout as `addr`.
    #[inline(always)]
    pub fn mask(&self) -> u128 {
        mask(self.prefix)
    }

    /// Naive check of one address.
    pub fn contains(&self, family: AddrFamily, bits: u128) -> bool {
        match self.family {
            AddrFamily::None => true,
            f => f == family && (bits & self.mask()) == self.addr,
        }
    }
}

#[inline(always)]
fn mask(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix as u32)
    }
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// Lowest port.
    pub lo: u16,
    /// Highest port.
    pub hi: u16,
}

impl PortRange {
    /// Every port.
    pub const ANY: PortRange = PortRange {
        lo: 0,
        hi: u16::MAX,
    };

    /// One port.
    pub fn single(p: u16) -> PortRange {
        PortRange { lo: p, hi: p }
    }

    /// Whether `p` is inside.
    pub fn contains(&self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }
}

/// A set of IP protocol numbers (a 256-bit map).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtoSet(pub [u64; 4]);

impl ProtoSet {
    /// Every protocol.
    pub const ANY: ProtoSet = ProtoSet([u64::MAX; 4]);

    /// The given protocols; an empty list means every protocol.
    pub fn of(protos: &[u8]) -> ProtoSet {
        if protos.is_empty() {
            return ProtoSet::ANY;
        }
        let mut s = [0u64; 4];
        for &p in protos {
            s[(p >> 6) as usize] |= 1 << (p & 63);
        }
        ProtoSet(s)
    }

    /// Whether `p` is in the set.
    #[inline(always)]
    pub fn contains(&self, p: u8) -> bool {
        (self.0[(p >> 6) as usize] >> (p & 63)) & 1 != 0
    }
}

/// One rule: every field must match (AND).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Source block.
    pub src: Cidr,
    /// Destination block.
    pub dst: Cidr,
    /// Source ports.
    pub sport: PortRange,
    /// Destination ports.
    pub dport: PortRange,
    /// Protocols.
    pub protos: ProtoSet,
}

impl Rule {
    /// A rule that matches everything.
    pub const ANY: Rule = Rule {
        src: Cidr::ANY,
        dst: Cidr::ANY,
        sport: PortRange::ANY,
        dport: PortRange::ANY,
        protos: ProtoSet::ANY,
    };

    /// The naive, field-by-field evaluation.
    pub fn matches(&self, t: &Tuple) -> bool {
        self.src.contains(t.family, t.src_bits())
            && self.dst.contains(t.family, t.dst_bits())
            && self.sport.contains(t.sport)
            && self.dport.contains(t.dport)
            && self.protos.contains(t.proto)
    }
}

/// Rules in struct-of-arrays form, in their original order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    // Families as u8 where 0 = any.
    src_family: Vec<u8>,
    src_addr: Vec<u128>,
    src_mask: Vec<u128>,
    dst_family: Vec<u8>,
    dst_addr: Vec<u128>,
    dst_mask: Vec<u128>,
    sport_lo: Vec<u16>,
    sport_hi: Vec<u16>,
    dport_lo: Vec<u16>,
    dport_hi: Vec<u16>,
    protos: Vec<[u64; 4]>,
    /// The rules that can match an IPv4 tuple, in 32-bit form.
    v4: Vec<V4Rule>,
    /// Whether some rule can match an IPv6 tuple (whose scan key sends
    /// the scan to its entry).
    matches_v6: bool,
    /// Whether [`RuleSet::scan_candidates`] is exact for IPv4 keys (every
    /// rule names one protocol or all of them).
    v4_exact: bool,
}

/// What [`RuleSet::scan_candidates`] finds in a run of scan keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidates {
    /// IPv4 flows: every one some rule matches, and only those when
    /// [`RuleSet::v4_candidates_exact`].
    pub v4: u64,
    /// Every flow whose tuple is in its entry (IPv6), if some rule can
    /// match IPv6; else none.
    pub in_entry: u64,
}

/// A rule as it applies to IPv4 tuples (an any-address side has a zero
/// mask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct V4Rule {
    src_addr: u32,
    src_mask: u32,
    dst_addr: u32,
    dst_mask: u32,
    sport: (u16, u16),
    dport: (u16, u16),
    protos: [u64; 4],
    /// The rule as scan-key bounds: exact, or (for a set of several but
    /// not all protocols) passing every protocol.
    bounds: LaneBounds,
    /// Whether `bounds` tests the protocol.
    exact: bool,
}

impl V4Rule {
    /// The rule's IPv4 form, or `None` if it names an IPv6 block (and so
    /// matches no IPv4 tuple).
    fn of(r: &Rule) -> Option<V4Rule> {
        let side = |c: &Cidr| match c.family {
            AddrFamily::None => Some((0, 0)),
            AddrFamily::V4 => Some(((c.addr >> 96) as u32, (c.mask() >> 96) as u32)),
            AddrFamily::V6 => None,
        };
        let (src_addr, src_mask) = side(&r.src)?;
        let (dst_addr, dst_mask) = side(&r.dst)?;
        let count: u32 = r.protos.0.iter().map(|w| w.count_ones()).sum();
        let (proto, exact) = match count {
            1 => ((0..=255u8).find(|&p| r.protos.contains(p)), true),
            256 => (None, true),
            _ => (None, false),
        };
        let sport = (r.sport.lo, r.sport.hi);
        let dport = (r.dport.lo, r.dport.hi);
        Some(V4Rule {
            src_addr,
            src_mask,
            dst_addr,
            dst_mask,
            sport,
            dport,
            protos: r.protos.0,
            bounds: ScanKey::bounds(
                (src_addr, src_mask),
                (dst_addr, dst_mask),
                sport,
                dport,
                proto,
            ),
            exact,
        })
    }

    #[inline(always)]
    fn matches(&self, t: &V4Tuple) -> bool {
        let src = (t.src & self.src_mask) == self.src_addr;
        let dst = (t.dst & self.dst_mask) == self.dst_addr;
        let sport = (self.sport.0 <= t.sport) & (t.sport <= self.sport.1);
        let dport = (self.dport.0 <= t.dport) & (t.dport <= self.dport.1);
        let proto = (self.protos[(t.proto >> 6) as usize] >> (t.proto & 63)) & 1 != 0;
        src & dst & sport & dport & proto
    }
}

impl RuleSet {
    /// Compiles rules, keeping their order.
    pub fn compile(rules: &[Rule]) -> RuleSet {
        let mut s = RuleSet::default();
        for r in rules {
            s.src_family.push(r.src.family as u8);
            s.src_addr.push(r.src.addr);
            s.src_mask.push(r.src.mask());
            s.dst_family.push(r.dst.family as u8);
            s.dst_addr.push(r.dst.addr);
            s.dst_mask.push(r.dst.mask());
            s.sport_lo.push(r.sport.lo);
            s.sport_hi.push(r.sport.hi);
            s.dport_lo.push(r.dport.lo);
            s.dport_hi.push(r.dport.hi);
            s.protos.push(r.protos.0);
            s.v4.extend(V4Rule::of(r));
            s.matches_v6 |= r.src.family != AddrFamily::V4 && r.dst.family != AddrFamily::V4;
        }
        s.v4_exact = s.v4.iter().all(|r| r.exact);
        s
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.src_addr.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.src_addr.is_empty()
    }

    /// One bit per rule of `[base, base + 64)`: bit i set when rule base+i
    /// matches. Branch-free over the parallel arrays.
    #[inline]
    fn chunk(&self, base: usize, t: &Tuple) -> u64 {
        let end = (base + 64).min(self.len());
        let fam = t.family as u8;
        let (src, dst) = (t.src_bits(), t.dst_bits());
        let (pw, pb) = ((t.proto >> 6) as usize, t.proto & 63);
        let mut m = 0u64;
        for i in base..end {
            let sf = self.src_family[i];
            let df = self.dst_family[i];
            let src_ok = (sf == 0) | ((sf == fam) & ((src & self.src_mask[i]) == self.src_addr[i]));
            let dst_ok = (df == 0) | ((df == fam) & ((dst & self.dst_mask[i]) == self.dst_addr[i]));
            let sp_ok = (self.sport_lo[i] <= t.sport) & (t.sport <= self.sport_hi[i]);
            let dp_ok = (self.dport_lo[i] <= t.dport) & (t.dport <= self.dport_hi[i]);
            let pr_ok = (self.protos[i][pw] >> pb) & 1 != 0;
            m |= ((src_ok & dst_ok & sp_ok & dp_ok & pr_ok) as u64) << (i - base);
        }
        m
    }

    /// Index of the first rule that matches `t`.
    #[inline]
    pub fn first_match(&self, t: &Tuple) -> Option<usize> {
        let mut base = 0;
        while base < self.len() {
            let m = self.chunk(base, t);
            if m != 0 {
                return Some(base + m.trailing_zeros() as usize);
            }
            base += 64;
        }
        None
    }

    /// The rules that match `t`, in order.
    pub fn each_match<'a>(&'a self, t: &'a Tuple) -> impl Iterator<Item = usize> + 'a {
        (0..self.len()).step_by(64).flat_map(move |base| {
            let mut m = self.chunk(base, t);
            std::iter::from_fn(move || {
                (m != 0).then(|| {
                    let i = m.trailing_zeros() as usize;
                    m &= m - 1;
                    base + i
                })
            })
        })
    }

    /// Whether any rule matches `t`.
    #[inline]
    pub fn any_match(&self, t: &Tuple) -> bool {
        self.first_match(t).is_some()
    }

    /// Whether any rule matches the IPv4 tuple `t`: [`RuleSet::any_match`]
    /// for the scan index's tuples, in 32-bit arithmetic.
    #[inline]
    pub fn any_match_v4(&self, t: &V4Tuple) -> bool {
        self.v4.iter().any(|r| r.matches(t))
    }

    /// Which of `keys` (at most 64; bit i for `keys[i]`) may hold a flow
    /// some rule matches, tested one SIMD operation per key and rule.
    #[inline]
    pub fn scan_candidates(&self, keys: &[ScanKey]) -> Candidates {
        Candidates {
            v4: self
                .v4
                .iter()
                .fold(0, |m, r| m | lanes_within(keys, &r.bounds)),
            in_entry: if self.matches_v6 {
                lanes_within(keys, &ScanKey::in_entry_bounds())
            } else {
                0
            },
        }
    }

    /// Whether every IPv4 candidate of [`RuleSet::scan_candidates`]
    /// matches.
    #[inline]
    pub fn v4_candidates_exact(&self) -> bool {
        self.v4_exact
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::key::v4_bits;
    use proptest::prelude::*;

    fn v4t(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, proto: u8) -> Tuple {
        Tuple {
            src: v4_bits(src),
            dst: v4_bits(dst),
            sport,
            dport,
            proto,
            family: AddrFamily::V4,
            vlan: 0,
        }
    }

    #[test]
    fn fields_and_order() {
        let rules = [
            Rule {
                dport: PortRange::single(22),
                protos: ProtoSet::of(&[6]),
                ..Rule::ANY
            },
            Rule {
                src: Cidr::v4([10, 0, 0, 0], 8),
                ..Rule::ANY
            },
            Rule::ANY,
        ];
        let s = RuleSet::compile(&rules);
        assert_eq!(
            s.first_match(&v4t([1, 1, 1, 1], 5, [2, 2, 2, 2], 22, 6)),
            Some(0)
        );
        assert_eq!(
            s.first_match(&v4t([1, 1, 1, 1], 5, [2, 2, 2, 2], 22, 17)),
            Some(2)
        );
        assert_eq!(
            s.first_match(&v4t([10, 9, 9, 9], 5, [2, 2, 2, 2], 23, 17)),
            Some(1)
        );
        assert_eq!(
            RuleSet::compile(&[]).first_match(&v4t([1, 1, 1, 1], 1, [1, 1, 1, 1], 1, 1)),
            None
        );
    }

    #[test]
    fn families_do_not_cross() {
        let r = Rule {
            src: Cidr::v4([0, 0, 0, 0], 0),
            ..Rule::ANY
        };
        let s = RuleSet::compile(&[r]);
        let mut t = v4t([1, 2, 3, 4], 1, [5, 6, 7, 8], 2, 17);
        assert!(s.any_match(&t));
        t.family = AddrFamily::V6;
        assert!(
            !s.any_match(&t),
            "0.0.0.0/0 is every IPv4 address, not every address"
        );
        assert!(RuleSet::compile(&[Rule::ANY]).any_match(&t));
    }

    #[test]
    fn more_than_64_rules() {
        let mut rules: Vec<Rule> = (0..200)
            .map(|i| Rule {
                dport: PortRange::single(i),
                ..Rule::ANY
            })
            .collect();
        rules.push(Rule::ANY);
        let s = RuleSet::compile(&rules);
        for p in [0u16, 63, 64, 127, 128, 199, 200, 5000] {
            let want = if p < 200 { p as usize } else { 200 };
            assert_eq!(
                s.first_match(&v4t([1, 1, 1, 1], 1, [2, 2, 2, 2], p, 6)),
                Some(want)
            );
        }
    }

    fn arb_cidr() -> impl Strategy<Value = Cidr> {
        prop_oneof![
            Just(Cidr::ANY),
            (any::<[u8; 4]>(), 0u8..=32).prop_map(|(a, p)| Cidr::v4(a, p)),
            (any::<[u8; 16]>(), 0u8..=128).prop_map(|(a, p)| Cidr::v6(a, p)),
            // Narrow ranges near the tuples generated below so matches happen.
            (0u8..4, 24u8..=32).prop_map(|(x, p)| Cidr::v4([10, 0, 0, x], p)),
            (0u8..4, 120u8..=128).prop_map(|(x, p)| {
                let mut a = [0u8; 16];
                a[0] = 0xfd;
                a[15] = x;
                Cidr::v6(a, p)
            }),
        ]
    }

    fn arb_ports() -> impl Strategy<Value = PortRange> {
        prop_oneof![
            Just(PortRange::ANY),
            (0u16..8, 0u16..8).prop_map(|(a, b)| PortRange {
                lo: a.min(b),
                hi: a.max(b)
            })
        ]
    }

    fn arb_rule() -> impl Strategy<Value = Rule> {
        (
            arb_cidr(),
            arb_cidr(),
            arb_ports(),
            arb_ports(),
            prop::collection::vec(0u8..20, 0..3),
        )
            .prop_map(|(src, dst, sport, dport, protos)| Rule {
                src,
                dst,
                sport,
                dport,
                protos: ProtoSet::of(&protos),
            })
    }

    fn arb_tuple() -> impl Strategy<Value = Tuple> {
        (
            any::<bool>(),
            0u8..4,
            0u8..4,
            0u16..8,
            0u16..8,
            0u8..20,
            any::<u128>(),
        )
            .prop_map(|(v6, s, d, sp, dp, pr, noise)| {
                let (src, dst, family) = if v6 {
                    let mut a = [0u8; 16];
                    a[0] = 0xfd;
                    let mut b = a;
                    a[15] = s;
                    b[15] = d;
                    if noise % 5 == 0 {
                        a = noise.to_be_bytes();
                    }
                    (
                        u128::from_be_bytes(a),
                        u128::from_be_bytes(b),
                        AddrFamily::V6,
                    )
                } else {
                    let a = if noise % 5 == 0 {
                        (noise as u32).to_be_bytes()
                    } else {
                        [10, 0, 0, s]
                    };
                    (v4_bits(a), v4_bits([10, 0, 0, d]), AddrFamily::V4)
                };
                Tuple {
                    src,
                    dst,
                    sport: sp,
                    dport: dp,
                    proto: pr,
                    family,
                    vlan: 0,
                }
            })
    }

    proptest! {
        #[test]
        fn compiled_equals_naive(rules in prop::collection::vec(arb_rule(), 0..150), tuples in prop::collection::vec(arb_tuple(), 1..40)) {
            let s = RuleSet::compile(&rules);
            for t in &tuples {
                let naive = rules.iter().position(|r| r.matches(t));
                prop_assert_eq!(s.first_match(t), naive);
                prop_assert_eq!(s.any_match(t), naive.is_some());
                if let Some(v4) = V4Tuple::of(t) {
                    prop_assert_eq!(s.any_match_v4(&v4), naive.is_some(), "{:?}", t);
                }
            }
        }

        #[test]
        fn scan_candidates_hold_every_match(rules in prop::collection::vec(arb_rule(), 0..24), tuples in prop::collection::vec(arb_tuple(), 1..64)) {
            let s = RuleSet::compile(&rules);
            let keys: Vec<ScanKey> = tuples
                .iter()
                .map(|t| {
                    let (k, side) = t.canonical();
                    ScanKey::of(&crate::flow::FlowEntry::new(k, side, 0))
                })
                .collect();
            let got = s.scan_candidates(&keys);
            for (i, t) in tuples.iter().enumerate() {
                let naive = rules.iter().any(|r| r.matches(t));
                let (v4, v6) = (got.v4 >> i & 1 == 1, got.in_entry >> i & 1 == 1);
                if t.family == AddrFamily::V4 {
                    prop_assert!(v4 || !naive, "match {:?} not a candidate", t);
                    prop_assert!(!v6);
                    if s.v4_candidates_exact() {
                        prop_assert_eq!(v4, naive, "{:?}", t);
                    }
                } else {
                    prop_assert!(v6 || !naive, "match {:?} not a candidate", t);
                    prop_assert!(!v4);
                }
            }
            // Free entries are never candidates, whatever the rules.
            let free = vec![ScanKey::FREE; keys.len()];
            let none = Candidates { v4: 0, in_entry: 0 };
            prop_assert_eq!(s.scan_candidates(&free), none);
        }
    }
}
