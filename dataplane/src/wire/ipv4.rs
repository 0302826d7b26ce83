//! IPv4 headers (RFC 791), options included, and the header checksum.

use super::checksum;
use super::field::{bytes, range, range_mut, set_bytes, set_u16, set_u8, u16_at, u8_at};
use super::Error;

/// A view of an IPv4 packet: header, options, payload.
///
/// After [`new_checked`](Self::new_checked) the header length and total
/// length agree with each other and with the buffer, so
/// [`payload`](Self::payload) is exactly the IP payload: bytes past the total
/// length (Ethernet padding) are excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T> {
    buffer: T,
}

const VER_IHL: usize = 0;
const DSCP_ECN: usize = 1;
const TOTAL_LEN: usize = 2;
const IDENT: usize = 4;
const FLAGS_FRAG: usize = 6;
const TTL: usize = 8;
const PROTOCOL: usize = 9;
const CHECKSUM: usize = 10;
const SRC: usize = 12;
const DST: usize = 16;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Length of a header without options.
    pub const MIN_HEADER_LEN: usize = 20;

    /// Wraps a buffer without checking it (for building packets).
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer that holds a consistent IPv4 header and the whole
    /// packet its total length announces.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// As [`new_checked`](Self::new_checked) for a packet of which the
    /// buffer holds the first part (the first segment of a chained mbuf)
    /// and `beyond` bytes follow elsewhere: the header must be in the
    /// buffer, the total length within both. [`payload`](Self::payload) is
    /// then the part of the payload the buffer holds.
    #[inline(always)]
    pub fn new_checked_beyond(buffer: T, beyond: usize) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len_beyond(beyond)?;
        Ok(p)
    }

    /// The one validation, in order: [`Error::Truncated`] if under 20 bytes,
    /// [`Error::Version`] if not version 4, [`Error::HeaderLength`] if IHL is
    /// under 5 or the header runs past the buffer, [`Error::Length`] if the
    /// total length is under the header length or past the buffer.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), Error> {
        self.check_len_beyond(0)
    }

    /// [`check_len`](Self::check_len) with `beyond` more bytes of the packet
    /// after the buffer.
    #[inline(always)]
    fn check_len_beyond(&self, beyond: usize) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < Self::MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::Version);
        }
        let hl = self.header_len();
        if hl < Self::MIN_HEADER_LEN || hl > len {
            return Err(Error::HeaderLength);
        }
        let total = usize::from(self.total_len());
        if total < hl || total > len + beyond {
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
        u8_at(self.buffer.as_ref(), VER_IHL) >> 4
    }

    /// Header length in bytes (IHL × 4).
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        usize::from(u8_at(self.buffer.as_ref(), VER_IHL) & 0x0f) * 4
    }

    /// Differentiated services code point (6 bits).
    #[inline(always)]
    pub fn dscp(&self) -> u8 {
        u8_at(self.buffer.as_ref(), DSCP_ECN) >> 2
    }

    /// Explicit congestion notification (2 bits).
    #[inline(always)]
    pub fn ecn(&self) -> u8 {
        u8_at(self.buffer.as_ref(), DSCP_ECN) & 3
    }

    /// Total length of the packet (header and payload) in bytes.
    #[inline(always)]
    pub fn total_len(&self) -> u16 {
        u16_at(self.buffer.as_ref(), TOTAL_LEN)
    }

    /// Identification (fragment group).
    #[inline(always)]
    pub fn ident(&self) -> u16 {
        u16_at(self.buffer.as_ref(), IDENT)
    }

    /// Don't-fragment flag.
    #[inline(always)]
    pub fn dont_frag(&self) -> bool {
        u16_at(self.buffer.as_ref(), FLAGS_FRAG) & FLAG_DF != 0
    }

    /// More-fragments flag.
    #[inline(always)]
    pub fn more_frags(&self) -> bool {
        u16_at(self.buffer.as_ref(), FLAGS_FRAG) & FLAG_MF != 0
    }

    /// Fragment offset in 8-byte units (13 bits).
    #[inline(always)]
    pub fn frag_offset(&self) -> u16 {
        u16_at(self.buffer.as_ref(), FLAGS_FRAG) & FRAG_OFFSET_MASK
    }

    /// Time to live.
    #[inline(always)]
    pub fn ttl(&self) -> u8 {
        u8_at(self.buffer.as_ref(), TTL)
    }

    /// Protocol of the payload.
    #[inline(always)]
    pub fn protocol(&self) -> u8 {
        u8_at(self.buffer.as_ref(), PROTOCOL)
    }

    /// Header checksum as stored.
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        u16_at(self.buffer.as_ref(), CHECKSUM)
    }

    /// Source address.
    #[inline(always)]
    pub fn src_addr(&self) -> [u8; 4] {
        bytes(self.buffer.as_ref(), SRC)
    }

    /// Destination address.
    #[inline(always)]
    pub fn dst_addr(&self) -> [u8; 4] {
        bytes(self.buffer.as_ref(), DST)
    }

    /// Option bytes (between the fixed header and the header length).
    #[inline(always)]
    pub fn options(&self) -> &[u8] {
        range(
            self.buffer.as_ref(),
            Self::MIN_HEADER_LEN,
            self.header_len(),
        )
    }

    /// The payload: from the header length up to the total length.
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        range(
            self.buffer.as_ref(),
            self.header_len(),
            usize::from(self.total_len()),
        )
    }

    /// Whether the header checksum is correct.
    ///
    /// It runs on every packet, so a header without options (nearly all)
    /// takes three loads and a fold of fixed length: the general fold loops
    /// a number of times that depends on the addresses, a branch the CPU
    /// mispredicts. Words are added as they lie in memory, with no byte
    /// swaps: the ones'-complement sum only comes out byte-swapped (RFC
    /// 1071 section 2(B)), and all ones swapped is all ones.
    #[inline(always)]
    pub fn verify_checksum(&self) -> bool {
        let b = self.buffer.as_ref();
        let Some(h) = b.first_chunk::<20>().filter(|h| h[0] & 0x0f == 5) else {
            return self.verify_checksum_any_length();
        };
        let w0 = u64::from_ne_bytes(bytes(h, 0));
        let w1 = u64::from_ne_bytes(bytes(h, 8));
        let w2 = u32::from_ne_bytes(bytes(h, 16));
        // Five 32-bit terms: under 2^35, so three 16-bit folds end it.
        let mut acc = (w0 & 0xffff_ffff) + (w0 >> 32) + (w1 & 0xffff_ffff) + (w1 >> 32);
        acc += u64::from(w2);
        acc = (acc & 0xffff) + (acc >> 16);
        acc = (acc & 0xffff) + (acc >> 16);
        acc = (acc & 0xffff) + (acc >> 16);
        acc == 0xffff
    }

    /// [`verify_checksum`](Self::verify_checksum) for any header length,
    /// with the general sum: the twin its fast path is tested against.
    #[inline(never)]
    pub fn verify_checksum_any_length(&self) -> bool {
        checksum::sum(range(self.buffer.as_ref(), 0, self.header_len())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version nibble.
    #[inline(always)]
    pub fn set_version(&mut self, version: u8) {
        let b = self.buffer.as_mut();
        let v = u8_at(b, VER_IHL) & 0x0f | version << 4;
        set_u8(b, VER_IHL, v);
    }

    /// Sets the header length in bytes (stored as `len / 4`).
    #[inline(always)]
    pub fn set_header_len(&mut self, len: usize) {
        let b = self.buffer.as_mut();
        let v = u8_at(b, VER_IHL) & 0xf0 | ((len / 4) as u8 & 0x0f);
        set_u8(b, VER_IHL, v);
    }

    /// Sets the DSCP (low 6 bits).
    #[inline(always)]
    pub fn set_dscp(&mut self, dscp: u8) {
        let b = self.buffer.as_mut();
        let v = u8_at(b, DSCP_ECN) & 3 | dscp << 2;
        set_u8(b, DSCP_ECN, v);
    }

    /// Sets the ECN bits (low 2 bits).
    #[inline(always)]
    pub fn set_ecn(&mut self, ecn: u8) {
        let b = self.buffer.as_mut();
        let v = u8_at(b, DSCP_ECN) & !3 | ecn & 3;
        set_u8(b, DSCP_ECN, v);
    }

    /// Sets the total length.
    #[inline(always)]
    pub fn set_total_len(&mut self, len: u16) {
        set_u16(self.buffer.as_mut(), TOTAL_LEN, len);
    }

    /// Sets the identification.
    #[inline(always)]
    pub fn set_ident(&mut self, ident: u16) {
        set_u16(self.buffer.as_mut(), IDENT, ident);
    }

    fn set_flags_frag(&mut self, mask: u16, value: u16) {
        let b = self.buffer.as_mut();
        let v = u16_at(b, FLAGS_FRAG) & !mask | value & mask;
        set_u16(b, FLAGS_FRAG, v);
    }

    /// Sets the don't-fragment flag.
    #[inline(always)]
    pub fn set_dont_frag(&mut self, df: bool) {
        self.set_flags_frag(FLAG_DF, if df { FLAG_DF } else { 0 });
    }

    /// Sets the more-fragments flag.
    #[inline(always)]
    pub fn set_more_frags(&mut self, mf: bool) {
        self.set_flags_frag(FLAG_MF, if mf { FLAG_MF } else { 0 });
    }

    /// Sets the fragment offset in 8-byte units (low 13 bits).
    #[inline(always)]
    pub fn set_frag_offset(&mut self, offset: u16) {
        self.set_flags_frag(FRAG_OFFSET_MASK, offset);
    }

    /// Sets the time to live.
    #[inline(always)]
    pub fn set_ttl(&mut self, ttl: u8) {
        set_u8(self.buffer.as_mut(), TTL, ttl);
    }

    /// Sets the payload protocol.
    #[inline(always)]
    pub fn set_protocol(&mut self, protocol: u8) {
        set_u8(self.buffer.as_mut(), PROTOCOL, protocol);
    }

    /// Stores a header checksum as given.
    #[inline(always)]
    pub fn set_checksum(&mut self, checksum: u16) {
        set_u16(self.buffer.as_mut(), CHECKSUM, checksum);
    }

    /// Sets the source address.
    #[inline(always)]
    pub fn set_src_addr(&mut self, addr: [u8; 4]) {
        set_bytes(self.buffer.as_mut(), SRC, addr);
    }

    /// Sets the destination address.
    #[inline(always)]
    pub fn set_dst_addr(&mut self, addr: [u8; 4]) {
        set_bytes(self.buffer.as_mut(), DST, addr);
    }

    /// Computes and stores the header checksum over the header length
    /// (options included); call after every other header field is final.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(range(self.buffer.as_ref(), 0, hl));
        self.set_checksum(c);
    }

    /// Mutable option bytes.
    #[inline(always)]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        range_mut(self.buffer.as_mut(), Self::MIN_HEADER_LEN, hl)
    }

    /// Mutable payload, up to the total length.
    #[inline(always)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, total) = (self.header_len(), usize::from(self.total_len()));
        range_mut(self.buffer.as_mut(), hl, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 192.168.0.1 -> 192.168.0.199, UDP, total length 0x73, checksum b861.
    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn packet() -> Vec<u8> {
        let mut p = HDR.to_vec();
        p.resize(0x73, 0xee);
        p
    }

    #[test]
    fn reads_fields() {
        let p = packet();
        let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert_eq!(ip.version(), 4);
        assert_eq!(ip.header_len(), 20);
        assert_eq!(ip.dscp(), 0);
        assert_eq!(ip.ecn(), 0);
        assert_eq!(ip.total_len(), 0x73);
        assert_eq!(ip.ident(), 0);
        assert!(ip.dont_frag());
        assert!(!ip.more_frags());
        assert_eq!(ip.frag_offset(), 0);
        assert_eq!(ip.ttl(), 64);
        assert_eq!(ip.protocol(), 17);
        assert_eq!(ip.checksum(), 0xb861);
        assert_eq!(ip.src_addr(), [192, 168, 0, 1]);
        assert_eq!(ip.dst_addr(), [192, 168, 0, 199]);
        assert!(ip.options().is_empty());
        assert_eq!(ip.payload().len(), 0x73 - 20);
        assert!(ip.verify_checksum());
    }

    #[test]
    fn padding_is_excluded_from_payload() {
        let mut p = packet();
        p.extend_from_slice(&[0; 10]);
        let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert_eq!(ip.payload().len(), 0x73 - 20);
    }

    #[test]
    fn check_order_and_errors() {
        let p = packet();
        assert_eq!(
            Ipv4Packet::new_checked(&p[..19]).unwrap_err(),
            Error::Truncated
        );
        let mut q = p.clone();
        q[0] = 0x65;
        assert_eq!(Ipv4Packet::new_checked(&q[..]).unwrap_err(), Error::Version);
        q[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&q[..]).unwrap_err(),
            Error::HeaderLength
        );
        q[0] = 0x4f;
        assert_eq!(
            Ipv4Packet::new_checked(&q[..40]).unwrap_err(),
            Error::HeaderLength
        );
        q[0] = 0x46;
        q[2..4].copy_from_slice(&23u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&q[..]).unwrap_err(), Error::Length);
        q[2..4].copy_from_slice(&24u16.to_be_bytes());
        let ip = Ipv4Packet::new_checked(&q[..]).unwrap();
        assert!(ip.payload().is_empty());
        assert_eq!(ip.options().len(), 4);
        assert_eq!(
            Ipv4Packet::new_checked(&p[..0x72]).unwrap_err(),
            Error::Length
        );
    }

    #[test]
    fn setters_build_the_reference_header() {
        let mut b = [0u8; 20];
        let mut ip = Ipv4Packet::new_unchecked(&mut b[..]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_dscp(0x2e);
        ip.set_ecn(3);
        ip.set_dscp(0);
        ip.set_ecn(0);
        ip.set_total_len(0x73);
        ip.set_ident(0);
        ip.set_more_frags(true);
        ip.set_frag_offset(0x1fff);
        ip.set_more_frags(false);
        ip.set_frag_offset(0);
        ip.set_dont_frag(true);
        ip.set_ttl(64);
        ip.set_protocol(17);
        ip.set_src_addr([192, 168, 0, 1]);
        ip.set_dst_addr([192, 168, 0, 199]);
        ip.fill_checksum();
        assert_eq!(b, HDR);
    }

    #[test]
    fn field_setters_do_not_clobber_neighbours() {
        let mut b = [0xffu8; 24];
        let mut ip = Ipv4Packet::new_unchecked(&mut b[..]);
        ip.set_version(4);
        ip.set_header_len(24);
        ip.set_ecn(1);
        ip.set_dscp(10);
        ip.set_frag_offset(100);
        ip.set_dont_frag(false);
        assert_eq!(ip.version(), 4);
        assert_eq!(ip.header_len(), 24);
        assert_eq!((ip.dscp(), ip.ecn()), (10, 1));
        assert!(ip.more_frags());
        assert!(!ip.dont_frag());
        assert_eq!(ip.frag_offset(), 100);
        ip.options_mut().copy_from_slice(&[1, 1, 1, 0]);
        ip.fill_checksum();
        assert!(ip.verify_checksum());
        ip.set_ttl(1);
        assert!(!ip.verify_checksum());
        assert_eq!(&b[20..24], &[1, 1, 1, 0]);
    }

    proptest::proptest! {
        /// The fast path agrees with the general sum on any header, and a
        /// filled checksum verifies whatever the fields.
        #[test]
        fn fast_checksum_agrees_with_the_general_sum(
            mut b in proptest::collection::vec(proptest::prelude::any::<u8>(), 60),
            ihl in 5u8..=15,
            damage in 0usize..60,
        ) {
            b[0] = 0x40 | ihl;
            let hl = usize::from(ihl) * 4;
            let ip = Ipv4Packet::new_unchecked(&b[..hl]);
            proptest::prop_assert_eq!(ip.verify_checksum(), ip.verify_checksum_any_length());
            let mut ip = Ipv4Packet::new_unchecked(&mut b[..hl]);
            ip.fill_checksum();
            proptest::prop_assert!(ip.verify_checksum());
            let at = damage % hl;
            b[at] ^= 0x20;
            let ip = Ipv4Packet::new_unchecked(&b[..hl]);
            proptest::prop_assert!(!ip.verify_checksum());
            proptest::prop_assert!(!ip.verify_checksum_any_length());
        }
    }

    #[test]
    fn unchecked_short_buffer_never_panics() {
        let b = [0x4fu8, 0, 0xff, 0xff];
        let ip = Ipv4Packet::new_unchecked(&b[..]);
        assert_eq!(ip.src_addr(), [0; 4]);
        assert!(ip.options().is_empty());
        assert!(ip.payload().is_empty());
        let _ = ip.verify_checksum();
    }
}
