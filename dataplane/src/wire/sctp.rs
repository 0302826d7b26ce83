//! SCTP common headers (RFC 9260): the 12 bytes every SCTP packet starts
//! with. Chunks are left to whoever needs them; the parser only wants ports.

use super::field::{range, set_u16, set_u32, u16_at, u32_at};
use super::Error;

/// A view of an SCTP packet's common header and its chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SctpPacket<T> {
    buffer: T,
}

const SRC_PORT: usize = 0;
const DST_PORT: usize = 2;
const VTAG: usize = 4;
const CHECKSUM: usize = 8;

impl<T: AsRef<[u8]>> SctpPacket<T> {
    /// Length of the common header.
    pub const HEADER_LEN: usize = 12;

    /// Wraps a buffer without checking it (for building packets).
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        SctpPacket { buffer }
    }

    /// Wraps a buffer that holds the common header.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The one validation: the 12-byte common header is present.
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

    /// Verification tag.
    #[inline(always)]
    pub fn verification_tag(&self) -> u32 {
        u32_at(self.buffer.as_ref(), VTAG)
    }

    /// CRC32c checksum field as stored (its bytes read big-endian).
    #[inline(always)]
    pub fn checksum(&self) -> u32 {
        u32_at(self.buffer.as_ref(), CHECKSUM)
    }

    /// The chunks after the common header.
    #[inline(always)]
    pub fn chunks(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        range(b, Self::HEADER_LEN, b.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> SctpPacket<T> {
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

    /// Sets the verification tag.
    #[inline(always)]
    pub fn set_verification_tag(&mut self, tag: u32) {
        set_u32(self.buffer.as_mut(), VTAG, tag);
    }

    /// Stores a checksum field as given (big-endian byte order).
    #[inline(always)]
    pub fn set_checksum(&mut self, checksum: u32) {
        set_u32(self.buffer.as_mut(), CHECKSUM, checksum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_check() {
        let mut b = [0u8; 16];
        let mut s = SctpPacket::new_unchecked(&mut b[..]);
        s.set_src_port(2905);
        s.set_dst_port(36412);
        s.set_verification_tag(0x0102_0304);
        s.set_checksum(0xa1b2_c3d4);
        let s = SctpPacket::new_checked(&b[..]).unwrap();
        assert_eq!((s.src_port(), s.dst_port()), (2905, 36412));
        assert_eq!(s.verification_tag(), 0x0102_0304);
        assert_eq!(s.checksum(), 0xa1b2_c3d4);
        assert_eq!(s.chunks().len(), 4);
        assert_eq!(&b[..4], &[0x0b, 0x59, 0x8e, 0x3c]);
        assert_eq!(
            SctpPacket::new_checked(&b[..11]).unwrap_err(),
            Error::Truncated
        );
    }
}
