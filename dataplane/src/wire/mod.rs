//! Typed, zero-copy views over packet bytes, one module per protocol.
//!
//! Every view wraps a buffer (`&[u8]`, `&mut [u8]`, or anything that is
//! `AsRef<[u8]>`) and follows one pattern:
//!
//! - `new_checked` runs the view's single validation (`check_len`): after it
//!   succeeds every accessor reads bytes that are known to be present, and
//!   length fields in the header agree with the buffer.
//! - `new_unchecked` skips validation. It exists for building packets in a
//!   zeroed buffer whose length fields are not written yet. Accessors stay
//!   panic-free even then: all field access goes through the bounds-checked
//!   helpers below, which read zeros past the end and drop writes past the
//!   end. After a successful check the compiler folds those branches away.
//! - Setters exist only when the buffer is also `AsMut<[u8]>`.
//!
//! Protocol numbers are plain integers ([`ethertype`], [`ip_protocol`]) so
//! that they compare and `match` directly against header fields and
//! [`Tuple::proto`](crate::flow::Tuple::proto).
//!
//! [`parse`](crate::parse) composes these views; nothing here knows about
//! flows or policy.

pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod sctp;
pub mod tcp;
pub mod udp;
pub mod vxlan;

pub use ethernet::{EthernetFrame, VlanTag};
pub use icmp::IcmpPacket;
pub use ipv4::Ipv4Packet;
pub use ipv6::{Ipv6ExtHeader, Ipv6FragHeader, Ipv6Packet};
pub use sctp::SctpPacket;
pub use tcp::TcpPacket;
pub use udp::UdpPacket;

/// EtherType values (the 16-bit type field of an Ethernet or VLAN header).
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q customer VLAN tag (C-tag).
    pub const VLAN: u16 = 0x8100;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// IEEE 802.1ad service VLAN tag (S-tag, QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// Link Layer Discovery Protocol.
    pub const LLDP: u16 = 0x88cc;
    /// Pre-standard QinQ outer tag still emitted by some switches.
    pub const QINQ_LEGACY: u16 = 0x9100;
    /// Values below this are IEEE 802.3 length fields, not EtherTypes.
    pub const MIN_ETHERTYPE: u16 = 0x0600;
}

/// IP protocol numbers (IPv4 protocol field, IPv6 next header).
pub mod ip_protocol {
    /// IPv6 hop-by-hop options extension header.
    pub const HOPOPT: u8 = 0;
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 routing extension header.
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 fragment extension header.
    pub const IPV6_FRAG: u8 = 44;
    /// Generic Routing Encapsulation.
    pub const GRE: u8 = 47;
    /// IPsec Encapsulating Security Payload.
    pub const ESP: u8 = 50;
    /// IPsec Authentication Header.
    pub const AH: u8 = 51;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const IPV6_NONXT: u8 = 59;
    /// IPv6 destination options extension header.
    pub const IPV6_OPTS: u8 = 60;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// Why a view refused a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the protocol's fixed header.
    Truncated,
    /// The IP version nibble does not match the view.
    Version,
    /// A header-length field (IPv4 IHL, TCP data offset, IPv6 extension
    /// length) is below the minimum or points past the buffer.
    HeaderLength,
    /// A total-length field (IPv4 total length, IPv6 payload length, UDP
    /// length) is inconsistent with the header or claims more bytes than the
    /// buffer holds.
    Length,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Error::Truncated => "buffer shorter than the header",
            Error::Version => "wrong IP version",
            Error::HeaderLength => "bad header length field",
            Error::Length => "bad total length field",
        })
    }
}

impl std::error::Error for Error {}

/// Panic-free field access shared by the views.
///
/// Reads past the end yield zeros and writes past the end are dropped; the
/// views only rely on that for buffers built with `new_unchecked`. With a
/// constant offset and a length already checked, LLVM removes the branch.
pub(crate) mod field {
    #[inline(always)]
    pub fn bytes<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
        match b.get(at..).and_then(|s| s.first_chunk::<N>()) {
            Some(a) => *a,
            None => [0; N],
        }
    }

    #[inline(always)]
    pub fn u8_at(b: &[u8], at: usize) -> u8 {
        b.get(at).copied().unwrap_or(0)
    }

    #[inline(always)]
    pub fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes(bytes(b, at))
    }

    #[inline(always)]
    pub fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(bytes(b, at))
    }

    #[inline(always)]
    pub fn set_bytes<const N: usize>(b: &mut [u8], at: usize, v: [u8; N]) {
        if let Some(s) = b.get_mut(at..).and_then(|s| s.first_chunk_mut::<N>()) {
            *s = v;
        }
    }

    #[inline(always)]
    pub fn set_u8(b: &mut [u8], at: usize, v: u8) {
        if let Some(x) = b.get_mut(at) {
            *x = v;
        }
    }

    #[inline(always)]
    pub fn set_u16(b: &mut [u8], at: usize, v: u16) {
        set_bytes(b, at, v.to_be_bytes());
    }

    #[inline(always)]
    pub fn set_u32(b: &mut [u8], at: usize, v: u32) {
        set_bytes(b, at, v.to_be_bytes());
    }

    /// `b[from..to]`, clamped to the buffer, empty when inverted.
    #[inline(always)]
    pub fn range(b: &[u8], from: usize, to: usize) -> &[u8] {
        let to = to.min(b.len());
        b.get(from..to).unwrap_or_default()
    }

    /// Mutable twin of [`range`].
    #[inline(always)]
    pub fn range_mut(b: &mut [u8], from: usize, to: usize) -> &mut [u8] {
        let to = to.min(b.len());
        b.get_mut(from..to).unwrap_or_default()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn out_of_range_reads_zero_and_writes_nothing() {
            let mut b = [1u8, 2, 3];
            assert_eq!(u16_at(&b, 1), 0x0203);
            assert_eq!(u16_at(&b, 2), 0);
            assert_eq!(u32_at(&b, 0), 0);
            assert_eq!(u8_at(&b, 3), 0);
            set_u16(&mut b, 2, 0xffff);
            set_u8(&mut b, 9, 1);
            assert_eq!(b, [1, 2, 3]);
            assert_eq!(range(&b, 1, 9), &[2, 3]);
            assert_eq!(range(&b, 2, 1), &[] as &[u8]);
            assert_eq!(range(&b, 5, 9), &[] as &[u8]);
        }
    }
}
