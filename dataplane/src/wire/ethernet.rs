//! Ethernet II frames and IEEE 802.1Q / 802.1ad VLAN tags.
//!
//! A tagged frame is read as an [`EthernetFrame`] whose EtherType is a tag
//! protocol identifier ([`is_vlan_tpid`]), followed by one [`VlanTag`] per
//! tag. The tag view starts at the TCI, i.e. it covers the 4 bytes after the
//! TPID, so that its [`VlanTag::ethertype`] is the next protocol in the
//! chain, the same way an untagged frame's EtherType is.

use super::field::{bytes, range, range_mut, set_bytes, set_u16, u16_at};
use super::{ethertype, Error};

/// Whether an EtherType value announces a VLAN tag (802.1Q C-tag, 802.1ad
/// S-tag, or the pre-standard 0x9100 outer tag).
#[inline(always)]
pub fn is_vlan_tpid(value: u16) -> bool {
    matches!(
        value,
        ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_LEGACY
    )
}

/// A view of an Ethernet II frame: destination, source, EtherType, payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Length of the untagged header.
    pub const HEADER_LEN: usize = 14;

    /// Wraps a buffer without checking it (for building frames).
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer that holds at least the 14-byte header.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// The one validation: the fixed header is present.
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

    /// Destination MAC address.
    #[inline(always)]
    pub fn dst(&self) -> [u8; 6] {
        bytes(self.buffer.as_ref(), 0)
    }

    /// Source MAC address.
    #[inline(always)]
    pub fn src(&self) -> [u8; 6] {
        bytes(self.buffer.as_ref(), 6)
    }

    /// The EtherType field (a TPID if the frame is tagged; a length if below
    /// [`ethertype::MIN_ETHERTYPE`]).
    #[inline(always)]
    pub fn ethertype(&self) -> u16 {
        u16_at(self.buffer.as_ref(), 12)
    }

    /// Everything after the 14-byte header (tags included, if any).
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        range(b, Self::HEADER_LEN, b.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address.
    #[inline(always)]
    pub fn set_dst(&mut self, mac: [u8; 6]) {
        set_bytes(self.buffer.as_mut(), 0, mac);
    }

    /// Sets the source MAC address.
    #[inline(always)]
    pub fn set_src(&mut self, mac: [u8; 6]) {
        set_bytes(self.buffer.as_mut(), 6, mac);
    }

    /// Sets the EtherType field.
    #[inline(always)]
    pub fn set_ethertype(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), 12, value);
    }

    /// Mutable payload after the 14-byte header.
    #[inline(always)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let len = b.len();
        range_mut(b, Self::HEADER_LEN, len)
    }
}

/// A view of one VLAN tag as it follows its TPID: TCI (PCP, DEI, VID), then
/// the EtherType of what comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    /// Bytes of a tag after its TPID.
    pub const LEN: usize = 4;

    /// Wraps a buffer without checking it (for building frames).
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        VlanTag { buffer }
    }

    /// Wraps a buffer that holds at least the 4 tag bytes.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let t = Self::new_unchecked(buffer);
        t.check_len()?;
        Ok(t)
    }

    /// The one validation: the 4 tag bytes are present.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < Self::LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The tag control information word.
    #[inline(always)]
    pub fn tci(&self) -> u16 {
        u16_at(self.buffer.as_ref(), 0)
    }

    /// Priority code point (3 bits).
    #[inline(always)]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// Drop eligible indicator.
    #[inline(always)]
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// VLAN identifier (12 bits).
    #[inline(always)]
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// EtherType of the encapsulated protocol (or of the next tag's TPID).
    #[inline(always)]
    pub fn ethertype(&self) -> u16 {
        u16_at(self.buffer.as_ref(), 2)
    }

    /// Everything after the tag.
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        range(b, Self::LEN, b.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanTag<T> {
    /// Sets the whole TCI word.
    #[inline(always)]
    pub fn set_tci(&mut self, tci: u16) {
        set_u16(self.buffer.as_mut(), 0, tci);
    }

    /// Sets the priority code point (low 3 bits of `pcp`).
    #[inline(always)]
    pub fn set_pcp(&mut self, pcp: u8) {
        let tci = self.tci() & 0x1fff | (u16::from(pcp) & 7) << 13;
        self.set_tci(tci);
    }

    /// Sets the drop eligible indicator.
    #[inline(always)]
    pub fn set_dei(&mut self, dei: bool) {
        let tci = self.tci() & !0x1000 | u16::from(dei) << 12;
        self.set_tci(tci);
    }

    /// Sets the VLAN identifier (low 12 bits of `vid`).
    #[inline(always)]
    pub fn set_vid(&mut self, vid: u16) {
        let tci = self.tci() & 0xf000 | vid & 0x0fff;
        self.set_tci(tci);
    }

    /// Sets the encapsulated EtherType.
    #[inline(always)]
    pub fn set_ethertype(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), 2, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_header_fields() {
        let mut f = [0u8; 20];
        f[..6].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        f[6..12].copy_from_slice(&[7, 8, 9, 10, 11, 12]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0xaa;
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(e.dst(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(e.src(), [7, 8, 9, 10, 11, 12]);
        assert_eq!(e.ethertype(), ethertype::IPV4);
        assert_eq!(e.payload().len(), 6);
        assert_eq!(e.payload()[0], 0xaa);
    }

    #[test]
    fn checked_needs_full_header() {
        let f = [0u8; 14];
        for n in 0..14 {
            assert_eq!(
                EthernetFrame::new_checked(&f[..n]).unwrap_err(),
                Error::Truncated
            );
        }
        assert!(EthernetFrame::new_checked(&f[..])
            .unwrap()
            .payload()
            .is_empty());
    }

    #[test]
    fn setters_round_trip() {
        let mut f = [0u8; 14];
        let mut e = EthernetFrame::new_unchecked(&mut f[..]);
        e.set_dst([0xff; 6]);
        e.set_src([0x02, 0, 0, 0, 0, 1]);
        e.set_ethertype(ethertype::IPV6);
        assert_eq!(e.dst(), [0xff; 6]);
        assert_eq!(e.src(), [0x02, 0, 0, 0, 0, 1]);
        assert_eq!(e.ethertype(), ethertype::IPV6);
        assert!(e.payload_mut().is_empty());
        assert_eq!(&f[12..], &[0x86, 0xdd]);
    }

    #[test]
    fn vlan_tag_fields() {
        // PCP 5, DEI 1, VID 0x123, then IPv4.
        let t = [0xb1, 0x23, 0x08, 0x00, 0x45];
        let v = VlanTag::new_checked(&t[..]).unwrap();
        assert_eq!(v.pcp(), 5);
        assert!(v.dei());
        assert_eq!(v.vid(), 0x123);
        assert_eq!(v.ethertype(), ethertype::IPV4);
        assert_eq!(v.payload(), &[0x45]);
        assert_eq!(VlanTag::new_checked(&t[..3]).unwrap_err(), Error::Truncated);

        let mut b = [0u8; 4];
        let mut w = VlanTag::new_unchecked(&mut b[..]);
        w.set_vid(0xfff);
        w.set_pcp(7);
        w.set_dei(true);
        w.set_dei(false);
        w.set_ethertype(ethertype::VLAN);
        assert_eq!((w.vid(), w.pcp(), w.dei()), (0xfff, 7, false));
        w.set_vid(1);
        assert_eq!(w.tci(), 0xe001);
        assert_eq!(b, [0xe0, 0x01, 0x81, 0x00]);
    }

    #[test]
    fn tpids() {
        assert!(is_vlan_tpid(0x8100));
        assert!(is_vlan_tpid(0x88a8));
        assert!(is_vlan_tpid(0x9100));
        assert!(!is_vlan_tpid(0x0800));
        assert!(!is_vlan_tpid(0x9200));
    }
}
