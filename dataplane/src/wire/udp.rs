//! UDP datagram headers (RFC 768) and their checksum over the IPv4 or IPv6
//! pseudo-header.
//!
//! The datagram is what the UDP length field says, so bytes the buffer holds
//! beyond it are neither payload nor checksummed.

use super::checksum;
use super::field::{range, range_mut, set_u16, u16_at};
use super::{ip_protocol, Error};

/// A view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T> {
    buffer: T,
}

const SRC_PORT: usize = 0;
const DST_PORT: usize = 2;
const LENGTH: usize = 4;
const CHECKSUM: usize = 6;

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Length of the header.
    pub const HEADER_LEN: usize = 8;

    /// Wraps a buffer without checking it (for building datagrams, or for
    /// the header of a first IP fragment, whose length field covers bytes
    /// that arrive in later fragments).
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps a buffer that holds the whole datagram its length announces.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// As [`new_checked`](Self::new_checked) for a datagram of which the
    /// buffer holds the first part and `beyond` bytes follow elsewhere (a
    /// chained mbuf): the header must be in the buffer, the length field
    /// within both.
    #[inline(always)]
    pub fn new_checked_beyond(buffer: T, beyond: usize) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len_beyond(beyond)?;
        Ok(p)
    }

    /// The one validation: [`Error::Truncated`] if under 8 bytes,
    /// [`Error::Length`] if the length field is under 8 or past the buffer.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), Error> {
        self.check_len_beyond(0)
    }

    /// [`check_len`](Self::check_len) with `beyond` more bytes of the
    /// datagram after the buffer.
    #[inline(always)]
    fn check_len_beyond(&self, beyond: usize) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = usize::from(self.len());
        if l < Self::HEADER_LEN || l > len + beyond {
            return Err(Error::Length);
        }
        Ok(())
    }

    /// The wrapped buffer.
    #[inline(always)]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline(always)]
    pub fn src_port(&self) -> u16 {
        u16_at(self.buffer.as_ref(), SRC_PORT)
    }

    /// Destination port.
    #[inline(always)]
    pub fn dst_port(&self) -> u16 {
        u16_at(self.buffer.as_ref(), DST_PORT)
    }

    /// Length of header and payload, as stored.
    #[inline(always)]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        u16_at(self.buffer.as_ref(), LENGTH)
    }

    /// Checksum as stored (0 = none, IPv4 only).
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        u16_at(self.buffer.as_ref(), CHECKSUM)
    }

    /// Payload, up to the length field.
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        range(
            self.buffer.as_ref(),
            Self::HEADER_LEN,
            usize::from(self.len()),
        )
    }

    fn sum_with(&self, pseudo: u16) -> u16 {
        let d = range(self.buffer.as_ref(), 0, usize::from(self.len()));
        checksum::combine(pseudo, checksum::sum(d))
    }

    /// Whether the checksum is correct for an IPv4 packet `src` → `dst`;
    /// a zero checksum means the sender computed none and passes.
    #[inline]
    pub fn verify_checksum_v4(&self, src: [u8; 4], dst: [u8; 4]) -> bool {
        self.checksum() == 0
            || self.sum_with(checksum::pseudo_header_v4(
                src,
                dst,
                ip_protocol::UDP,
                self.len(),
            )) == 0xffff
    }

    /// Whether the checksum is correct for an IPv6 packet `src` → `dst`
    /// (where it is mandatory: zero fails).
    #[inline]
    pub fn verify_checksum_v6(&self, src: [u8; 16], dst: [u8; 16]) -> bool {
        self.checksum() != 0
            && self.sum_with(checksum::pseudo_header_v6(
                src,
                dst,
                ip_protocol::UDP,
                u32::from(self.len()),
            )) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline(always)]
    pub fn set_src_port(&mut self, port: u16) {
        set_u16(self.buffer.as_mut(), SRC_PORT, port);
    }

    /// Sets the destination port.
    #[inline(always)]
    pub fn set_dst_port(&mut self, port: u16) {
        set_u16(self.buffer.as_mut(), DST_PORT, port);
    }

    /// Sets the length field.
    #[inline(always)]
    pub fn set_len(&mut self, len: u16) {
        set_u16(self.buffer.as_mut(), LENGTH, len);
    }

    /// Stores a checksum as given.
    #[inline(always)]
    pub fn set_checksum(&mut self, checksum: u16) {
        set_u16(self.buffer.as_mut(), CHECKSUM, checksum);
    }

    // A computed checksum of 0 is sent as 0xffff (the same ones'-complement
    // value) because 0 on the wire means "no checksum".
    fn store(&mut self, sum: u16) {
        let c = checksum::finish(sum);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Computes and stores the checksum for an IPv4 packet `src` → `dst`;
    /// call after the length field and payload are final.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: [u8; 4], dst: [u8; 4]) {
        self.set_checksum(0);
        let p = checksum::pseudo_header_v4(src, dst, ip_protocol::UDP, self.len());
        let s = self.sum_with(p);
        self.store(s);
    }

    /// Computes and stores the checksum for an IPv6 packet `src` → `dst`.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: [u8; 16], dst: [u8; 16]) {
        self.set_checksum(0);
        let p = checksum::pseudo_header_v6(src, dst, ip_protocol::UDP, u32::from(self.len()));
        let s = self.sum_with(p);
        self.store(s);
    }

    /// Mutable payload, up to the length field.
    #[inline(always)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        range_mut(self.buffer.as_mut(), Self::HEADER_LEN, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 8 + payload.len()];
        let mut u = UdpPacket::new_unchecked(&mut b[..]);
        u.set_src_port(5353);
        u.set_dst_port(53);
        u.set_len((8 + payload.len()) as u16);
        u.payload_mut().copy_from_slice(payload);
        b
    }

    #[test]
    fn fields_and_checks() {
        let mut b = datagram(b"hello");
        b.extend_from_slice(&[0xee; 3]);
        let u = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!((u.src_port(), u.dst_port(), u.len()), (5353, 53, 13));
        assert_eq!(u.payload(), b"hello");
        assert_eq!(
            UdpPacket::new_checked(&b[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(UdpPacket::new_checked(&b[..12]).unwrap_err(), Error::Length);
        b[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(UdpPacket::new_checked(&b[..]).unwrap_err(), Error::Length);
    }

    #[test]
    fn checksum_v4_known_answer() {
        // Computed by hand over pseudo-header + datagram:
        // 0a00 0001 0a00 0002 0011 000d + 14e9 0035 000d 0000 6865 6c6c 6f00.
        let mut b = datagram(b"hello");
        let (src, dst) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let mut u = UdpPacket::new_checked(&mut b[..]).unwrap();
        assert!(u.verify_checksum_v4(src, dst), "zero means none");
        u.fill_checksum_v4(src, dst);
        assert_eq!(u.checksum(), 0x92e1);
        assert!(u.verify_checksum_v4(src, dst));
        assert!(!u.verify_checksum_v4(dst, [10, 0, 0, 3]));
    }

    #[test]
    fn checksum_v6() {
        let mut b = datagram(b"hello");
        let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let mut u = UdpPacket::new_checked(&mut b[..]).unwrap();
        assert!(!u.verify_checksum_v6(src, dst), "zero is invalid on v6");
        u.fill_checksum_v6(src, dst);
        assert!(u.verify_checksum_v6(src, dst));
        assert!(!u.verify_checksum_v6(src, [0; 16]));
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Pick the payload word so that the total sum is 0xffff.
        let (src, dst) = ([0u8; 4], [0u8; 4]);
        let mut b = datagram(&[0, 0]);
        let partial = checksum::combine(
            checksum::pseudo_header_v4(src, dst, ip_protocol::UDP, 10),
            checksum::sum(&b),
        );
        b[8..10].copy_from_slice(&(!partial).to_be_bytes());
        let mut u = UdpPacket::new_checked(&mut b[..]).unwrap();
        u.fill_checksum_v4(src, dst);
        assert_eq!(u.checksum(), 0xffff);
        assert!(u.verify_checksum_v4(src, dst));
    }
}
