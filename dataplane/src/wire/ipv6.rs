//! IPv6 headers (RFC 8200) and the extension headers the parser walks:
//! hop-by-hop options (0), routing (43), fragment (44), destination options
//! (60) and the IPsec authentication header (51, RFC 4302).
//!
//! The generic [`Ipv6ExtHeader`] view knows the three length rules: units
//! of 8 bytes not counting the first 8 for the option-style headers, units
//! of 4 bytes not counting the first 8 for AH, and a fixed 8 bytes for the
//! fragment header, whose second byte is reserved rather than a length.

use super::field::{
    bytes, range, range_mut, set_bytes, set_u16, set_u32, set_u8, u16_at, u32_at, u8_at,
};
use super::{ip_protocol, Error};

/// A view of an IPv6 packet: fixed header and payload.
///
/// After [`new_checked`](Self::new_checked) the payload length fits the
/// buffer, so [`payload`](Self::payload) is exactly the IP payload
/// (extension headers included; Ethernet padding excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T> {
    buffer: T,
}

const VTF: usize = 0;
const PAYLOAD_LEN: usize = 4;
const NEXT_HEADER: usize = 6;
const HOP_LIMIT: usize = 7;
const SRC: usize = 8;
const DST: usize = 24;

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = 40;

    /// Wraps a buffer without checking it (for building packets).
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer that holds the fixed header and the payload length it
    /// announces.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// As [`new_checked`](Self::new_checked) for a packet of which the
    /// buffer holds the first part (the first segment of a chained mbuf)
    /// and `beyond` bytes follow elsewhere: the fixed header must be in the
    /// buffer, the payload length within both. [`payload`](Self::payload)
    /// is then the part of the payload the buffer holds.
    #[inline(always)]
    pub fn new_checked_beyond(buffer: T, beyond: usize) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len_beyond(beyond)?;
        Ok(p)
    }

    /// The one validation, in order: [`Error::Truncated`] if under 40 bytes,
    /// [`Error::Version`] if not version 6, [`Error::Length`] if the payload
    /// length runs past the buffer.
    ///
    /// A payload length of 0 is accepted as an empty payload; jumbograms
    /// (RFC 2675) do not fit an Ethernet frame.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), Error> {
        self.check_len_beyond(0)
    }

    /// [`check_len`](Self::check_len) with `beyond` more bytes of the packet
    /// after the buffer.
    #[inline(always)]
    fn check_len_beyond(&self, beyond: usize) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 6 {
            return Err(Error::Version);
        }
        if Self::HEADER_LEN + usize::from(self.payload_len()) > len + beyond {
            return Err(Error::Length);
        }
        Ok(())
    }

    /// The wrapped buffer.
    #[inline(always)]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// IP version nibble.
    #[inline(always)]
    pub fn version(&self) -> u8 {
        u8_at(self.buffer.as_ref(), VTF) >> 4
    }

    /// Traffic class (DSCP and ECN).
    #[inline(always)]
    pub fn traffic_class(&self) -> u8 {
        (u32_at(self.buffer.as_ref(), VTF) >> 20) as u8
    }

    /// Flow label (20 bits).
    #[inline(always)]
    pub fn flow_label(&self) -> u32 {
        u32_at(self.buffer.as_ref(), VTF) & 0x000f_ffff
    }

    /// Payload length (extension headers and upper layer) in bytes.
    #[inline(always)]
    pub fn payload_len(&self) -> u16 {
        u16_at(self.buffer.as_ref(), PAYLOAD_LEN)
    }

    /// Protocol of the first header after the fixed header.
    #[inline(always)]
    pub fn next_header(&self) -> u8 {
        u8_at(self.buffer.as_ref(), NEXT_HEADER)
    }

    /// Hop limit.
    #[inline(always)]
    pub fn hop_limit(&self) -> u8 {
        u8_at(self.buffer.as_ref(), HOP_LIMIT)
    }

    /// Source address.
    #[inline(always)]
    pub fn src_addr(&self) -> [u8; 16] {
        bytes(self.buffer.as_ref(), SRC)
    }

    /// Destination address.
    #[inline(always)]
    pub fn dst_addr(&self) -> [u8; 16] {
        bytes(self.buffer.as_ref(), DST)
    }

    /// The payload: the payload-length bytes after the fixed header.
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        range(
            self.buffer.as_ref(),
            Self::HEADER_LEN,
            Self::HEADER_LEN + usize::from(self.payload_len()),
        )
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    fn set_vtf(&mut self, mask: u32, value: u32) {
        let b = self.buffer.as_mut();
        let v = u32_at(b, VTF) & !mask | value & mask;
        set_u32(b, VTF, v);
    }

    /// Sets the version nibble.
    #[inline(always)]
    pub fn set_version(&mut self, version: u8) {
        self.set_vtf(0xf000_0000, u32::from(version) << 28);
    }

    /// Sets the traffic class.
    #[inline(always)]
    pub fn set_traffic_class(&mut self, tc: u8) {
        self.set_vtf(0x0ff0_0000, u32::from(tc) << 20);
    }

    /// Sets the flow label (low 20 bits).
    #[inline(always)]
    pub fn set_flow_label(&mut self, label: u32) {
        self.set_vtf(0x000f_ffff, label);
    }

    /// Sets the payload length.
    #[inline(always)]
    pub fn set_payload_len(&mut self, len: u16) {
        set_u16(self.buffer.as_mut(), PAYLOAD_LEN, len);
    }

    /// Sets the next header.
    #[inline(always)]
    pub fn set_next_header(&mut self, protocol: u8) {
        set_u8(self.buffer.as_mut(), NEXT_HEADER, protocol);
    }

    /// Sets the hop limit.
    #[inline(always)]
    pub fn set_hop_limit(&mut self, hops: u8) {
        set_u8(self.buffer.as_mut(), HOP_LIMIT, hops);
    }

    /// Sets the source address.
    #[inline(always)]
    pub fn set_src_addr(&mut self, addr: [u8; 16]) {
        set_bytes(self.buffer.as_mut(), SRC, addr);
    }

    /// Sets the destination address.
    #[inline(always)]
    pub fn set_dst_addr(&mut self, addr: [u8; 16]) {
        set_bytes(self.buffer.as_mut(), DST, addr);
    }

    /// Mutable payload, up to the payload length.
    #[inline(always)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = Self::HEADER_LEN + usize::from(self.payload_len());
        range_mut(self.buffer.as_mut(), Self::HEADER_LEN, end)
    }
}

/// Whether `protocol` is one of the extension headers the parser walks
/// through to find the upper-layer protocol.
#[inline(always)]
pub fn is_extension_header(protocol: u8) -> bool {
    matches!(
        protocol,
        ip_protocol::HOPOPT
            | ip_protocol::IPV6_ROUTE
            | ip_protocol::IPV6_FRAG
            | ip_protocol::IPV6_OPTS
            | ip_protocol::AH
    )
}

/// A view of one extension header of a known kind (the previous header's
/// next-header value), bounded by its own length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6ExtHeader<T> {
    buffer: T,
    kind: u8,
}

impl<T: AsRef<[u8]>> Ipv6ExtHeader<T> {
    /// Smallest extension header.
    pub const MIN_LEN: usize = 8;
    /// Smallest valid AH: next header, length, reserved, SPI, sequence.
    pub const MIN_AH_LEN: usize = 12;

    /// Wraps a buffer that starts with an extension header of type `kind`,
    /// without checking it.
    #[inline(always)]
    pub const fn new_unchecked(buffer: T, kind: u8) -> Self {
        Ipv6ExtHeader { buffer, kind }
    }

    /// Wraps a buffer that holds the whole extension header of type `kind`.
    #[inline(always)]
    pub fn new_checked(buffer: T, kind: u8) -> Result<Self, Error> {
        let h = Self::new_unchecked(buffer, kind);
        h.check_len()?;
        Ok(h)
    }

    /// The one validation: [`Error::Truncated`] if under 8 bytes,
    /// [`Error::HeaderLength`] if the length field runs past the buffer (or,
    /// for AH, is too small to hold the SPI and sequence number).
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < Self::MIN_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl > len || (self.kind == ip_protocol::AH && hl < Self::MIN_AH_LEN) {
            return Err(Error::HeaderLength);
        }
        Ok(())
    }

    /// The extension header type this view was made for.
    #[inline(always)]
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// Protocol of the header that follows.
    #[inline(always)]
    pub fn next_header(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 0)
    }

    /// The raw length byte (meaningless for the fragment header).
    #[inline(always)]
    pub fn len_field(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 1)
    }

    /// Length of this header in bytes, by the rule for its kind.
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        let n = usize::from(self.len_field());
        match self.kind {
            ip_protocol::IPV6_FRAG => 8,
            ip_protocol::AH => (n + 2) * 4,
            _ => (n + 1) * 8,
        }
    }

    /// The header's bytes after the next-header and length bytes.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        range(self.buffer.as_ref(), 2, self.header_len())
    }

    /// Routing type (routing header only).
    #[inline(always)]
    pub fn routing_type(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 2)
    }

    /// Segments left (routing header only).
    #[inline(always)]
    pub fn segments_left(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 3)
    }

    /// Everything after this header.
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        range(b, self.header_len(), b.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6ExtHeader<T> {
    /// Sets the next header.
    #[inline(always)]
    pub fn set_next_header(&mut self, protocol: u8) {
        set_u8(self.buffer.as_mut(), 0, protocol);
    }

    /// Sets the length field so that [`header_len`](Self::header_len) is
    /// `len` bytes (rounded down to the kind's unit); no-op for fragments.
    #[inline(always)]
    pub fn set_header_len(&mut self, len: usize) {
        let raw = match self.kind {
            ip_protocol::IPV6_FRAG => return,
            ip_protocol::AH => (len / 4).saturating_sub(2),
            _ => (len / 8).saturating_sub(1),
        };
        set_u8(self.buffer.as_mut(), 1, raw as u8);
    }

    /// Mutable bytes after the next-header and length bytes.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        range_mut(self.buffer.as_mut(), 2, hl)
    }
}

/// A view of the IPv6 fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6FragHeader<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6FragHeader<T> {
    /// Fixed length of the fragment header.
    pub const LEN: usize = 8;

    /// Wraps a buffer without checking it (for building packets).
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6FragHeader { buffer }
    }

    /// Wraps a buffer that holds the 8-byte fragment header.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// The one validation: the 8 bytes are present.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < Self::LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Protocol of the first header of the fragmentable part.
    #[inline(always)]
    pub fn next_header(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 0)
    }

    /// Fragment offset in 8-byte units (13 bits).
    #[inline(always)]
    pub fn frag_offset(&self) -> u16 {
        u16_at(self.buffer.as_ref(), 2) >> 3
    }

    /// More-fragments flag.
    #[inline(always)]
    pub fn more_frags(&self) -> bool {
        u16_at(self.buffer.as_ref(), 2) & 1 != 0
    }

    /// Identification (fragment group).
    #[inline(always)]
    pub fn ident(&self) -> u32 {
        u32_at(self.buffer.as_ref(), 4)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6FragHeader<T> {
    /// Sets the next header.
    #[inline(always)]
    pub fn set_next_header(&mut self, protocol: u8) {
        set_u8(self.buffer.as_mut(), 0, protocol);
    }

    /// Sets the fragment offset in 8-byte units (low 13 bits).
    #[inline(always)]
    pub fn set_frag_offset(&mut self, offset: u16) {
        let b = self.buffer.as_mut();
        let v = u16_at(b, 2) & 7 | offset << 3;
        set_u16(b, 2, v);
    }

    /// Sets the more-fragments flag.
    #[inline(always)]
    pub fn set_more_frags(&mut self, mf: bool) {
        let b = self.buffer.as_mut();
        let v = u16_at(b, 2) & !1 | u16::from(mf);
        set_u16(b, 2, v);
    }

    /// Sets the identification.
    #[inline(always)]
    pub fn set_ident(&mut self, ident: u32) {
        set_u32(self.buffer.as_mut(), 4, ident);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(payload_len: u16, next: u8) -> Vec<u8> {
        let mut b = vec![0u8; 40 + usize::from(payload_len)];
        let mut ip = Ipv6Packet::new_unchecked(&mut b[..]);
        ip.set_version(6);
        ip.set_traffic_class(0xb8);
        ip.set_flow_label(0x12345);
        ip.set_payload_len(payload_len);
        ip.set_next_header(next);
        ip.set_hop_limit(64);
        ip.set_src_addr([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        ip.set_dst_addr([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        b
    }

    #[test]
    fn fields_round_trip() {
        let b = header(8, ip_protocol::UDP);
        assert_eq!(&b[..4], &[0x6b, 0x81, 0x23, 0x45]);
        let ip = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(ip.version(), 6);
        assert_eq!(ip.traffic_class(), 0xb8);
        assert_eq!(ip.flow_label(), 0x12345);
        assert_eq!(ip.payload_len(), 8);
        assert_eq!(ip.next_header(), 17);
        assert_eq!(ip.hop_limit(), 64);
        assert_eq!(ip.src_addr()[15], 1);
        assert_eq!(ip.dst_addr()[15], 2);
        assert_eq!(ip.payload().len(), 8);
    }

    #[test]
    fn checks() {
        let mut b = header(8, ip_protocol::UDP);
        assert_eq!(
            Ipv6Packet::new_checked(&b[..39]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv6Packet::new_checked(&b[..47]).unwrap_err(),
            Error::Length
        );
        b.extend_from_slice(&[0; 6]);
        assert_eq!(Ipv6Packet::new_checked(&b[..]).unwrap().payload().len(), 8);
        b[0] = 0x45;
        assert_eq!(Ipv6Packet::new_checked(&b[..]).unwrap_err(), Error::Version);
    }

    #[test]
    fn extension_length_rules() {
        // Option-style: (len + 1) * 8.
        let opts = [6u8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xaa];
        let h = Ipv6ExtHeader::new_checked(&opts[..], ip_protocol::IPV6_OPTS).unwrap();
        assert_eq!(h.header_len(), 16);
        assert_eq!(h.next_header(), 6);
        assert_eq!(h.data().len(), 14);
        assert_eq!(h.payload(), &[0xaa]);
        assert_eq!(
            Ipv6ExtHeader::new_checked(&opts[..15], ip_protocol::HOPOPT).unwrap_err(),
            Error::HeaderLength
        );
        assert_eq!(
            Ipv6ExtHeader::new_checked(&opts[..7], ip_protocol::HOPOPT).unwrap_err(),
            Error::Truncated
        );
        // AH: (len + 2) * 4, so 1 -> 12 and 4 -> 24; 0 is too short.
        let ah = [17u8, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 0xbb];
        let h = Ipv6ExtHeader::new_checked(&ah[..], ip_protocol::AH).unwrap();
        assert_eq!(h.header_len(), 12);
        assert_eq!(h.payload(), &[0xbb]);
        let mut ah0 = ah;
        ah0[1] = 0;
        assert_eq!(
            Ipv6ExtHeader::new_checked(&ah0[..], ip_protocol::AH).unwrap_err(),
            Error::HeaderLength
        );
        // Fragment: always 8, whatever the reserved byte says.
        let frag = [6u8, 0xff, 0, 0, 0, 0, 0, 0];
        let h = Ipv6ExtHeader::new_checked(&frag[..], ip_protocol::IPV6_FRAG).unwrap();
        assert_eq!(h.header_len(), 8);
    }

    #[test]
    fn extension_setters() {
        let mut b = [0u8; 24];
        let mut h = Ipv6ExtHeader::new_unchecked(&mut b[..], ip_protocol::IPV6_ROUTE);
        h.set_next_header(ip_protocol::TCP);
        h.set_header_len(24);
        assert_eq!(h.header_len(), 24);
        assert_eq!(h.data_mut().len(), 22);
        let mut a = Ipv6ExtHeader::new_unchecked(&mut b[..], ip_protocol::AH);
        a.set_header_len(24);
        assert_eq!(a.len_field(), 4);
        assert_eq!(a.header_len(), 24);
        assert!(is_extension_header(ip_protocol::AH));
        assert!(!is_extension_header(ip_protocol::ESP));
    }

    #[test]
    fn fragment_header() {
        let mut b = [0u8; 8];
        let mut f = Ipv6FragHeader::new_unchecked(&mut b[..]);
        f.set_next_header(ip_protocol::UDP);
        f.set_frag_offset(0x1fff);
        f.set_more_frags(true);
        f.set_ident(0xdead_beef);
        assert_eq!(b, [17, 0, 0xff, 0xf9, 0xde, 0xad, 0xbe, 0xef]);
        let f = Ipv6FragHeader::new_checked(&b[..]).unwrap();
        assert_eq!(f.frag_offset(), 0x1fff);
        assert!(f.more_frags());
        assert_eq!(f.ident(), 0xdead_beef);
        assert_eq!(f.next_header(), 17);
        assert_eq!(
            Ipv6FragHeader::new_checked(&b[..7]).unwrap_err(),
            Error::Truncated
        );
    }
}
