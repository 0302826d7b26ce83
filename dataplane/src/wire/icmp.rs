//! ICMP for IPv4 (RFC 792) and ICMPv6 (RFC 4443): one view, since both
//! share the layout type, code, checksum, then 4 bytes whose meaning depends
//! on the type (identifier and sequence number for echo). They differ in
//! their type numbers ([`v4`], [`v6`]) and in the checksum: ICMPv6 covers
//! the IPv6 pseudo-header, ICMPv4 only the message.
//!
//! The checksum methods cover the whole wrapped buffer, so the view must
//! wrap exactly the message (the IP payload).

use super::checksum;
use super::field::{range, range_mut, set_u16, set_u32, set_u8, u16_at, u32_at, u8_at};
use super::{ip_protocol, Error};

/// ICMPv4 message types.
pub mod v4 {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
}

/// ICMPv6 message types.
pub mod v6 {
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Neighbor solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// A view of an ICMPv4 or ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpPacket<T> {
    buffer: T,
}

const TYPE: usize = 0;
const CODE: usize = 1;
const CHECKSUM: usize = 2;
const IDENT: usize = 4;
const SEQ: usize = 6;

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Length of the header: type, code, checksum and the 4 type-specific
    /// bytes every ICMPv4 and ICMPv6 message carries.
    pub const HEADER_LEN: usize = 8;

    /// Wraps a buffer without checking it (for building messages).
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        IcmpPacket { buffer }
    }

    /// Wraps a buffer that holds the 8-byte header.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The one validation: the 8-byte header is present.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    #[inline(always)]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    #[inline(always)]
    pub fn msg_type(&self) -> u8 {
        u8_at(self.buffer.as_ref(), TYPE)
    }

    /// Message code.
    #[inline(always)]
    pub fn code(&self) -> u8 {
        u8_at(self.buffer.as_ref(), CODE)
    }

    /// Checksum as stored.
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        u16_at(self.buffer.as_ref(), CHECKSUM)
    }

    /// Echo identifier (bytes 4..6).
    #[inline(always)]
    pub fn ident(&self) -> u16 {
        u16_at(self.buffer.as_ref(), IDENT)
    }

    /// Echo sequence number (bytes 6..8).
    #[inline(always)]
    pub fn seq_number(&self) -> u16 {
        u16_at(self.buffer.as_ref(), SEQ)
    }

    /// The 4 type-specific header bytes as one word (unused, MTU, pointer,
    /// gateway address...).
    #[inline(always)]
    pub fn rest_of_header(&self) -> u32 {
        u32_at(self.buffer.as_ref(), IDENT)
    }

    /// Whether this is an ICMPv4 echo request or reply.
    #[inline(always)]
    pub fn is_echo_v4(&self) -> bool {
        matches!(self.msg_type(), v4::ECHO_REQUEST | v4::ECHO_REPLY)
    }

    /// Whether this is an ICMPv6 echo request or reply.
    #[inline(always)]
    pub fn is_echo_v6(&self) -> bool {
        matches!(self.msg_type(), v6::ECHO_REQUEST | v6::ECHO_REPLY)
    }

    /// Whether this is an echo request or reply of `icmp`, the protocol it
    /// travels as: [`ip_protocol::ICMP`](super::ip_protocol::ICMP) or
    /// ICMPv6, whose echo types differ.
    #[inline(always)]
    pub fn is_echo(&self, icmp: u8) -> bool {
        if icmp == super::ip_protocol::ICMPV6 {
            self.is_echo_v6()
        } else {
            self.is_echo_v4()
        }
    }

    /// Message body after the 8-byte header (echo data, or the invoking
    /// packet of an error message).
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        range(b, Self::HEADER_LEN, b.len())
    }

    fn pseudo_v6(&self, src: [u8; 16], dst: [u8; 16]) -> u16 {
        let len = self.buffer.as_ref().len() as u32;
        checksum::pseudo_header_v6(src, dst, ip_protocol::ICMPV6, len)
    }

    /// Whether the ICMPv4 checksum (over the message alone) is correct.
    #[inline]
    pub fn verify_checksum_v4(&self) -> bool {
        checksum::sum(self.buffer.as_ref()) == 0xffff
    }

    /// Whether the ICMPv6 checksum (pseudo-header included) is correct for
    /// a packet `src` → `dst`.
    #[inline]
    pub fn verify_checksum_v6(&self, src: [u8; 16], dst: [u8; 16]) -> bool {
        let s = checksum::combine(
            self.pseudo_v6(src, dst),
            checksum::sum(self.buffer.as_ref()),
        );
        s == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    /// Sets the message type.
    #[inline(always)]
    pub fn set_msg_type(&mut self, t: u8) {
        set_u8(self.buffer.as_mut(), TYPE, t);
    }

    /// Sets the message code.
    #[inline(always)]
    pub fn set_code(&mut self, code: u8) {
        set_u8(self.buffer.as_mut(), CODE, code);
    }

    /// Stores a checksum as given.
    #[inline(always)]
    pub fn set_checksum(&mut self, checksum: u16) {
        set_u16(self.buffer.as_mut(), CHECKSUM, checksum);
    }

    /// Sets the echo identifier.
    #[inline(always)]
    pub fn set_ident(&mut self, ident: u16) {
        set_u16(self.buffer.as_mut(), IDENT, ident);
    }

    /// Sets the echo sequence number.
    #[inline(always)]
    pub fn set_seq_number(&mut self, seq: u16) {
        set_u16(self.buffer.as_mut(), SEQ, seq);
    }

    /// Sets the 4 type-specific header bytes.
    #[inline(always)]
    pub fn set_rest_of_header(&mut self, rest: u32) {
        set_u32(self.buffer.as_mut(), IDENT, rest);
    }

    /// Computes and stores the ICMPv4 checksum; call when the message is
    /// final.
    #[inline]
    pub fn fill_checksum_v4(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Computes and stores the ICMPv6 checksum for a packet `src` → `dst`.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: [u8; 16], dst: [u8; 16]) {
        self.set_checksum(0);
        let s = checksum::combine(
            self.pseudo_v6(src, dst),
            checksum::sum(self.buffer.as_ref()),
        );
        self.set_checksum(checksum::finish(s));
    }

    /// Mutable message body.
    #[inline(always)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let len = b.len();
        range_mut(b, Self::HEADER_LEN, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo request: id 0x1234, seq 1, 4 bytes of data; checksum 0x482d
    /// worked out by hand.
    const ECHO: [u8; 12] = [
        8, 0, 0x48, 0x2d, 0x12, 0x34, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef,
    ];

    #[test]
    fn echo_v4() {
        let p = IcmpPacket::new_checked(&ECHO[..]).unwrap();
        assert_eq!(p.msg_type(), v4::ECHO_REQUEST);
        assert_eq!(p.code(), 0);
        assert_eq!(p.ident(), 0x1234);
        assert_eq!(p.seq_number(), 1);
        assert_eq!(p.rest_of_header(), 0x1234_0001);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(p.is_echo_v4());
        assert!(!p.is_echo_v6());
        assert!(p.verify_checksum_v4());
        assert_eq!(
            IcmpPacket::new_checked(&ECHO[..7]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn build_v4_matches_reference() {
        let mut b = [0u8; 12];
        let mut p = IcmpPacket::new_unchecked(&mut b[..]);
        p.set_msg_type(v4::ECHO_REQUEST);
        p.set_code(0);
        p.set_rest_of_header(0xffff_ffff);
        p.set_ident(0x1234);
        p.set_seq_number(1);
        p.payload_mut().copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        p.fill_checksum_v4();
        assert_eq!(b, ECHO);
    }

    #[test]
    fn v6_checksum_covers_pseudo_header() {
        let src = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut b = [0u8; 8];
        let mut p = IcmpPacket::new_unchecked(&mut b[..]);
        p.set_msg_type(v6::ECHO_REPLY);
        p.set_ident(7);
        p.fill_checksum_v6(src, dst);
        assert!(p.verify_checksum_v6(src, dst));
        assert!(!p.verify_checksum_v6(src, src));
        assert!(!p.verify_checksum_v4());
        assert!(p.is_echo_v6());
    }
}
