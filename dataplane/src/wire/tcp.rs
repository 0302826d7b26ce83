//! TCP segment headers (RFC 9293) and their checksum over the IPv4 or IPv6
//! pseudo-header.
//!
//! The checksum methods cover the whole wrapped buffer, so the view must
//! wrap exactly the segment (the IP payload), not the rest of the frame.

use super::checksum;
use super::field::{range, range_mut, set_u16, set_u32, set_u8, u16_at, u32_at, u8_at};
use super::{ip_protocol, Error};

/// TCP flag bits as they sit in the flags byte (byte 13 of the header).
pub mod flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer field is significant.
    pub const URG: u8 = 0x20;
    /// ECN echo.
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced.
    pub const CWR: u8 = 0x80;
}

/// A view of a TCP segment: header, options, payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T> {
    buffer: T,
}

const SRC_PORT: usize = 0;
const DST_PORT: usize = 2;
const SEQ: usize = 4;
const ACK: usize = 8;
const DATA_OFFSET: usize = 12;
const FLAGS: usize = 13;
const WINDOW: usize = 14;
const CHECKSUM: usize = 16;
const URGENT: usize = 18;

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Length of a header without options.
    pub const MIN_HEADER_LEN: usize = 20;

    /// Wraps a buffer without checking it (for building segments).
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps a buffer that holds the whole TCP header, options included.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The one validation: [`Error::Truncated`] if under 20 bytes,
    /// [`Error::HeaderLength`] if the data offset is under 5 or past the
    /// buffer.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < Self::MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < Self::MIN_HEADER_LEN || hl > len {
            return Err(Error::HeaderLength);
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

    /// Sequence number.
    #[inline(always)]
    pub fn seq_number(&self) -> u32 {
        u32_at(self.buffer.as_ref(), SEQ)
    }

    /// Acknowledgment number.
    #[inline(always)]
    pub fn ack_number(&self) -> u32 {
        u32_at(self.buffer.as_ref(), ACK)
    }

    /// Header length in bytes (data offset × 4).
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        usize::from(u8_at(self.buffer.as_ref(), DATA_OFFSET) >> 4) * 4
    }

    /// The 8 flag bits, CWR (0x80) down to FIN (0x01); see [`flags`].
    #[inline(always)]
    pub fn flags(&self) -> u8 {
        u8_at(self.buffer.as_ref(), FLAGS)
    }

    /// Whether every bit of `mask` is set in [`flags`](Self::flags).
    #[inline(always)]
    pub fn has_flags(&self, mask: u8) -> bool {
        self.flags() & mask == mask
    }

    /// Receive window.
    #[inline(always)]
    pub fn window(&self) -> u16 {
        u16_at(self.buffer.as_ref(), WINDOW)
    }

    /// Checksum as stored.
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        u16_at(self.buffer.as_ref(), CHECKSUM)
    }

    /// Urgent pointer.
    #[inline(always)]
    pub fn urgent(&self) -> u16 {
        u16_at(self.buffer.as_ref(), URGENT)
    }

    /// Option bytes.
    #[inline(always)]
    pub fn options(&self) -> &[u8] {
        range(
            self.buffer.as_ref(),
            Self::MIN_HEADER_LEN,
            self.header_len(),
        )
    }

    /// Segment data after the header.
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        range(b, self.header_len(), b.len())
    }

    fn sum_with(&self, pseudo: u16) -> u16 {
        checksum::combine(pseudo, checksum::sum(self.buffer.as_ref()))
    }

    /// Whether the checksum is correct for an IPv4 packet `src` → `dst`.
    #[inline]
    pub fn verify_checksum_v4(&self, src: [u8; 4], dst: [u8; 4]) -> bool {
        let len = self.buffer.as_ref().len() as u16;
        self.sum_with(checksum::pseudo_header_v4(src, dst, ip_protocol::TCP, len)) == 0xffff
    }

    /// Whether the checksum is correct for an IPv6 packet `src` → `dst`.
    #[inline]
    pub fn verify_checksum_v6(&self, src: [u8; 16], dst: [u8; 16]) -> bool {
        let len = self.buffer.as_ref().len() as u32;
        self.sum_with(checksum::pseudo_header_v6(src, dst, ip_protocol::TCP, len)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
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

    /// Sets the sequence number.
    #[inline(always)]
    pub fn set_seq_number(&mut self, seq: u32) {
        set_u32(self.buffer.as_mut(), SEQ, seq);
    }

    /// Sets the acknowledgment number.
    #[inline(always)]
    pub fn set_ack_number(&mut self, ack: u32) {
        set_u32(self.buffer.as_mut(), ACK, ack);
    }

    /// Sets the header length in bytes (stored as `len / 4` in the data
    /// offset nibble; the reserved bits are kept).
    #[inline(always)]
    pub fn set_header_len(&mut self, len: usize) {
        let b = self.buffer.as_mut();
        let v = u8_at(b, DATA_OFFSET) & 0x0f | ((len / 4) as u8) << 4;
        set_u8(b, DATA_OFFSET, v);
    }

    /// Sets the 8 flag bits.
    #[inline(always)]
    pub fn set_flags(&mut self, flags: u8) {
        set_u8(self.buffer.as_mut(), FLAGS, flags);
    }

    /// Sets the receive window.
    #[inline(always)]
    pub fn set_window(&mut self, window: u16) {
        set_u16(self.buffer.as_mut(), WINDOW, window);
    }

    /// Stores a checksum as given.
    #[inline(always)]
    pub fn set_checksum(&mut self, checksum: u16) {
        set_u16(self.buffer.as_mut(), CHECKSUM, checksum);
    }

    /// Sets the urgent pointer.
    #[inline(always)]
    pub fn set_urgent(&mut self, urgent: u16) {
        set_u16(self.buffer.as_mut(), URGENT, urgent);
    }

    /// Computes and stores the checksum for an IPv4 packet `src` → `dst`;
    /// call after the header and payload are final.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: [u8; 4], dst: [u8; 4]) {
        self.set_checksum(0);
        let len = self.buffer.as_ref().len() as u16;
        let s = self.sum_with(checksum::pseudo_header_v4(src, dst, ip_protocol::TCP, len));
        self.set_checksum(checksum::finish(s));
    }

    /// Computes and stores the checksum for an IPv6 packet `src` → `dst`.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: [u8; 16], dst: [u8; 16]) {
        self.set_checksum(0);
        let len = self.buffer.as_ref().len() as u32;
        let s = self.sum_with(checksum::pseudo_header_v6(src, dst, ip_protocol::TCP, len));
        self.set_checksum(checksum::finish(s));
    }

    /// Mutable option bytes.
    #[inline(always)]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        range_mut(self.buffer.as_mut(), Self::MIN_HEADER_LEN, hl)
    }

    /// Mutable segment data.
    #[inline(always)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        let len = b.len();
        range_mut(b, hl, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A captured packet (172.22.104.109:44831 -> 74.125.159.103:80, ACK
    /// with a timestamp option) as published in a checksum tutorial; its
    /// on-the-wire TCP checksum 0x37a6 verifies, so it is an independent
    /// known answer.
    const SRC: [u8; 4] = [172, 22, 104, 109];
    const DST: [u8; 4] = [74, 125, 159, 103];
    const SEG: [u8; 32] = [
        0xaf, 0x1f, 0x00, 0x50, 0xe8, 0x33, 0x8b, 0x62, 0xfc, 0x13, 0xda, 0x66, 0x80, 0x10, 0x00,
        0x5c, 0x37, 0xa6, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0x04, 0xb8, 0x66, 0xf7, 0x4a, 0xdd,
        0x90, 0x45,
    ];

    #[test]
    fn reads_a_captured_segment() {
        let t = TcpPacket::new_checked(&SEG[..]).unwrap();
        assert_eq!(t.src_port(), 44831);
        assert_eq!(t.dst_port(), 80);
        assert_eq!(t.seq_number(), 0xe833_8b62);
        assert_eq!(t.ack_number(), 0xfc13_da66);
        assert_eq!(t.header_len(), 32);
        assert_eq!(t.flags(), flags::ACK);
        assert!(t.has_flags(flags::ACK));
        assert!(!t.has_flags(flags::SYN | flags::ACK));
        assert_eq!(t.window(), 0x5c);
        assert_eq!(t.urgent(), 0);
        assert_eq!(
            t.options(),
            &[1, 1, 8, 10, 0x04, 0xb8, 0x66, 0xf7, 0x4a, 0xdd, 0x90, 0x45]
        );
        assert!(t.payload().is_empty());
        assert_eq!(t.checksum(), 0x37a6);
        assert!(t.verify_checksum_v4(SRC, DST));
        assert!(!t.verify_checksum_v4(SRC, [74, 125, 159, 104]));
    }

    #[test]
    fn fill_reproduces_known_checksum() {
        let mut s = SEG;
        let mut t = TcpPacket::new_checked(&mut s[..]).unwrap();
        t.set_checksum(0xffff);
        t.fill_checksum_v4(SRC, DST);
        assert_eq!(t.checksum(), 0x37a6);
    }

    #[test]
    fn checks() {
        assert_eq!(
            TcpPacket::new_checked(&SEG[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            TcpPacket::new_checked(&SEG[..31]).unwrap_err(),
            Error::HeaderLength
        );
        let mut s = SEG;
        s[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&s[..]).unwrap_err(),
            Error::HeaderLength
        );
        s[12] = 0x50;
        let t = TcpPacket::new_checked(&s[..]).unwrap();
        assert_eq!(t.payload().len(), 12);
    }

    #[test]
    fn setters_and_v6_checksum() {
        let mut b = [0u8; 24];
        let mut t = TcpPacket::new_unchecked(&mut b[..]);
        t.set_src_port(443);
        t.set_dst_port(50000);
        t.set_seq_number(1);
        t.set_ack_number(2);
        t.set_header_len(20);
        t.set_flags(flags::ACK | flags::PSH);
        t.set_window(512);
        t.set_urgent(7);
        t.payload_mut().copy_from_slice(b"ping");
        assert!(t.options_mut().is_empty());
        let src = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        t.fill_checksum_v6(src, dst);
        assert!(t.verify_checksum_v6(src, dst));
        assert!(!t.verify_checksum_v6(dst, [0; 16]));
        let t = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!((t.src_port(), t.dst_port()), (443, 50000));
        assert_eq!((t.seq_number(), t.ack_number()), (1, 2));
        assert_eq!(t.flags(), 0x18);
        assert_eq!((t.window(), t.urgent()), (512, 7));
        assert_eq!(t.payload(), b"ping");
    }
}
