//! Flow keys: the packet-order [`Tuple`] and the direction-free [`FlowKey`].
//!
//! A [`FlowKey`] is canonical: both directions of a conversation produce the
//! same key, with the (address, port) pair that sorts first stored as `lo`.
//! The [`Side`] tells which way a given packet went, so an entry can keep
//! per-direction counters and remember which side opened the flow.
//!
//! Addresses are big-endian integers (`u128`): IPv6 as is, IPv4 in the top
//! 32 bits (the rest zero), so one compare orders them and a prefix mask
//! selects a CIDR block; `family` tells the two apart. Ports are host order. For
//! ICMP echo the identifier is both ports; for other ICMP messages the source
//! port is `type << 8 | code` and the destination port 0.

/// IP version of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum AddrFamily {
    /// Unused key (an empty table slot).
    #[default]
    None = 0,
    /// IPv4.
    V4 = 4,
    /// IPv6.
    V6 = 6,
}

/// Which way a packet travelled relative to its canonical key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Side {
    /// From the `lo` endpoint to the `hi` endpoint.
    LoToHi = 0,
    /// From `hi` to `lo`.
    HiToLo = 1,
}

impl Side {
    /// Index for per-direction arrays.
    #[inline(always)]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The other direction.
    #[inline(always)]
    pub fn reverse(self) -> Side {
        match self {
            Side::LoToHi => Side::HiToLo,
            Side::HiToLo => Side::LoToHi,
        }
    }
}

/// A packet's addresses, ports and protocol in the order it carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct Tuple {
    /// Source address (IPv4 in the top 32 bits).
    pub src: u128,
    /// Destination address.
    pub dst: u128,
    /// Source port (or ICMP identifier / type-code, see module docs).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// IP protocol number.
    pub proto: u8,
    /// IP version.
    pub family: AddrFamily,
    /// VLAN tag(s): the VID of a single tag; for two tags (QinQ)
    /// `1 << 24 | outer << 12 | inner`; 0 untagged.
    pub vlan: u32,
}

/// The canonical, direction-free key of a flow (48 bytes).
#[derive(Debug, Clone, Copy, Eq, Default)]
#[repr(C)]
pub struct FlowKey {
    /// Address of the endpoint that sorts first.
    pub addr_lo: u128,
    /// Address of the other endpoint.
    pub addr_hi: u128,
    /// Port of the `lo` endpoint.
    pub port_lo: u16,
    /// Port of the `hi` endpoint.
    pub port_hi: u16,
    /// VLAN tag(s), as in [`Tuple::vlan`].
    pub vlan: u32,
    /// IP protocol number.
    pub proto: u8,
    /// IP version; [`AddrFamily::None`] marks an unused key.
    pub family: AddrFamily,
    _pad: [u8; 2],
}

const _: () = assert!(std::mem::size_of::<FlowKey>() == 48);

/// An IPv4 address in the address-field form (top 32 bits).
#[inline(always)]
pub fn v4_bits(a: [u8; 4]) -> u128 {
    (u32::from_be_bytes(a) as u128) << 96
}

/// An IPv6 address in the address-field form.
#[inline(always)]
pub fn v6_bits(a: [u8; 16]) -> u128 {
    u128::from_be_bytes(a)
}

impl Tuple {
    /// The canonical key and the side this packet travelled.
    #[inline(always)]
    pub fn canonical(&self) -> (FlowKey, Side) {
        let src_first = (self.src, self.sport) <= (self.dst, self.dport);
        let (lo, plo, hi, phi, side) = if src_first {
            (self.src, self.sport, self.dst, self.dport, Side::LoToHi)
        } else {
            (self.dst, self.dport, self.src, self.sport, Side::HiToLo)
        };
        (
            FlowKey {
                addr_lo: lo,
                addr_hi: hi,
                port_lo: plo,
                port_hi: phi,
                vlan: self.vlan,
                proto: self.proto,
                family: self.family,
                _pad: [0; 2],
            },
            side,
        )
    }

    /// Source address as a big-endian integer (IPv4 in the top 32 bits),
    /// the form the compiled filters compare against.
    #[inline(always)]
    pub fn src_bits(&self) -> u128 {
        self.src
    }

    /// Destination address as a big-endian integer.
    #[inline(always)]
    pub fn dst_bits(&self) -> u128 {
        self.dst
    }

    /// Source address as a std address.
    pub fn src_ip(&self) -> std::net::IpAddr {
        to_ip(self.family, self.src)
    }

    /// Destination address as a std address.
    pub fn dst_ip(&self) -> std::net::IpAddr {
        to_ip(self.family, self.dst)
    }

    /// The same conversation seen from the other end.
    pub fn reversed(&self) -> Tuple {
        Tuple {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            ..*self
        }
    }
}

fn to_ip(family: AddrFamily, a: u128) -> std::net::IpAddr {
    match family {
        AddrFamily::V6 => std::net::IpAddr::V6(a.into()),
        _ => std::net::IpAddr::V4(((a >> 96) as u32).into()),
    }
}

impl PartialEq for FlowKey {
    /// Word-wise and branch-free: the lookup compares many keys, and a
    /// field-by-field early exit mispredicts.
    #[inline(always)]
    fn eq(&self, o: &FlowKey) -> bool {
        let (a, b) = (self.words(), o.words());
        (a[0] ^ b[0])
            | (a[1] ^ b[1])
            | (a[2] ^ b[2])
            | (a[3] ^ b[3])
            | (a[4] ^ b[4])
            | (a[5] ^ b[5])
            == 0
    }
}

impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // The same words equality compares, so Hash agrees with Eq.
        self.words().hash(state);
    }
}

impl FlowKey {
    /// Whether this is a real key (not an empty slot).
    #[inline(always)]
    pub fn is_used(&self) -> bool {
        self.family != AddrFamily::None
    }

    /// The tuple of a packet that travelled `side`.
    #[inline(always)]
    pub fn oriented(&self, side: Side) -> Tuple {
        let (src, sport, dst, dport) = match side {
            Side::LoToHi => (self.addr_lo, self.port_lo, self.addr_hi, self.port_hi),
            Side::HiToLo => (self.addr_hi, self.port_hi, self.addr_lo, self.port_lo),
        };
        Tuple {
            src,
            dst,
            sport,
            dport,
            proto: self.proto,
            family: self.family,
            vlan: self.vlan,
        }
    }

    /// The key as six words (every field, losslessly), for hashing and
    /// comparing.
    #[inline(always)]
    fn words(&self) -> [u64; 6] {
        [
            (self.addr_lo >> 64) as u64,
            self.addr_lo as u64,
            (self.addr_hi >> 64) as u64,
            self.addr_hi as u64,
            self.port_lo as u64 | (self.port_hi as u64) << 16 | (self.vlan as u64) << 32,
            self.proto as u64 | (self.family as u64) << 8,
        ]
    }

    /// CRC32C of the key (the hardware instruction on x86_64).
    #[inline(always)]
    pub fn hash(&self) -> u32 {
        use flowgate_sys::cpu::{crc32c_u32, crc32c_u64};
        let w = self.words();
        let mut c = !0u32;
        for v in &w[..5] {
            c = crc32c_u64(c, *v);
        }
        !crc32c_u32(c, w[5] as u32)
    }

    /// The portable twin of [`FlowKey::hash`]: bitwise CRC32C, same result.
    pub fn hash_scalar(&self) -> u32 {
        let w = self.words();
        let mut bytes: Vec<u8> = w[..5].iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes.extend_from_slice(&(w[5] as u32).to_le_bytes());
        !flowgate_sys::cpu::crc32c_scalar(!0, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Tuple {
        Tuple {
            src: v4_bits(src),
            dst: v4_bits(dst),
            sport,
            dport,
            proto: 6,
            family: AddrFamily::V4,
            vlan: 0,
        }
    }

    #[test]
    fn both_directions_share_a_key() {
        let a = t([10, 0, 0, 1], 1234, [10, 0, 0, 2], 80);
        let (k1, s1) = a.canonical();
        let (k2, s2) = a.reversed().canonical();
        assert_eq!(k1, k2);
        assert_ne!(s1, s2);
        assert_eq!(k1.oriented(s1), a);
        assert_eq!(k2.oriented(s2), a.reversed());
        assert_eq!(k1.hash(), k2.hash());
    }

    #[test]
    fn same_addresses_ports_decide_order() {
        let a = t([10, 0, 0, 1], 9, [10, 0, 0, 1], 8);
        let (k, s) = a.canonical();
        assert_eq!(s, Side::HiToLo);
        assert_eq!(k.port_lo, 8);
    }

    #[test]
    fn vlan_and_family_are_part_of_the_key() {
        let a = t([10, 0, 0, 1], 1, [10, 0, 0, 2], 2);
        let mut b = a;
        b.vlan = 5;
        assert_ne!(a.canonical().0, b.canonical().0);
        let mut c = a;
        c.family = AddrFamily::V6;
        assert_ne!(a.canonical().0.hash(), c.canonical().0.hash());
    }

    #[test]
    fn hardware_and_scalar_crc_agree() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for i in 0..10_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut k = t(
                (x as u32).to_be_bytes(),
                (x >> 32) as u16,
                ((x >> 16) as u32).to_be_bytes(),
                (x >> 48) as u16,
            );
            k.vlan = i;
            k.proto = (x >> 40) as u8;
            if i % 3 == 0 {
                k.family = AddrFamily::V6;
                k.src = (x as u128) << 64 | x as u128;
            }
            let key = k.canonical().0;
            assert_eq!(key.hash(), key.hash_scalar());
        }
    }
}
