//! VXLAN (RFC 7348): the 8-byte header carried in UDP port 4789 that EC2
//! traffic mirroring puts in front of every mirrored frame.

use super::field;
use super::Error;

/// The IANA UDP port for VXLAN.
pub const PORT: u16 = 4789;

/// A VXLAN header view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VxlanHeader<T> {
    /// Header length.
    pub const LEN: usize = 8;

    /// A view without checking the length (for building).
    pub const fn new_unchecked(buffer: T) -> Self {
        VxlanHeader { buffer }
    }

    /// A view of at least 8 bytes.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let v = Self::new_unchecked(buffer);
        if v.buffer.as_ref().len() < Self::LEN {
            return Err(Error::Truncated);
        }
        Ok(v)
    }

    /// Whether the I flag (a valid VNI) is set.
    pub fn vni_valid(&self) -> bool {
        field::u8_at(self.buffer.as_ref(), 0) & 0x08 != 0
    }

    /// The 24-bit VXLAN network identifier.
    pub fn vni(&self) -> u32 {
        field::u32_at(self.buffer.as_ref(), 4) >> 8
    }

    /// The encapsulated Ethernet frame.
    pub fn payload(&self) -> &[u8] {
        field::range(self.buffer.as_ref(), Self::LEN, self.buffer.as_ref().len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VxlanHeader<T> {
    /// Writes flags (I set) and the VNI; reserved fields zero.
    pub fn fill(&mut self, vni: u32) {
        let b = self.buffer.as_mut();
        field::set_u32(b, 0, 0x0800_0000);
        field::set_u32(b, 4, (vni & 0x00ff_ffff) << 8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vni_round_trip() {
        let mut b = [0xffu8; 8];
        VxlanHeader::new_unchecked(&mut b[..]).fill(0x123456);
        assert_eq!(b, [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
        let v = VxlanHeader::new_checked(&b[..]).unwrap();
        assert!(v.vni_valid());
        assert_eq!(v.vni(), 0x123456);
        assert!(VxlanHeader::new_checked(&b[..7]).is_err());
    }
}
