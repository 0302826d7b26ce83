//! Frame building blocks shared by the generators: hosts (MAC + IP),
//! 802.1Q / QinQ tagging, the Ethernet → IP part of an etherparse
//! `PacketBuilder`, Ethernet minimum-size padding, and the CRC32C that SCTP
//! needs (etherparse has no SCTP support).

use std::net::IpAddr;

use etherparse::{
    IpFragOffset, IpHeaders, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, PacketBuilder,
    PacketBuilderStep, VlanId,
};

/// Smallest Ethernet frame on the wire without its 4-byte FCS (64 - 4).
pub const ETH_MIN_NO_FCS: usize = 60;

/// Length of the Ethernet FCS, which pcap captures do not contain but NIC
/// counters (testpmd, `rte_eth_stats`) do count.
pub const FCS_LEN: usize = 4;

/// VLAN tagging of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tags {
    /// Untagged.
    None,
    /// One 802.1Q tag (TPID 0x8100) with this VLAN id.
    Dot1q(u16),
    /// QinQ: an 802.1ad service tag (TPID 0x88a8) around an 802.1Q tag.
    QinQ {
        /// Outer (service) VLAN id.
        outer: u16,
        /// Inner (customer) VLAN id.
        inner: u16,
    },
}

impl Tags {
    /// Bytes the tags add to the Ethernet header.
    pub fn len(self) -> usize {
        match self {
            Tags::None => 0,
            Tags::Dot1q(_) => 4,
            Tags::QinQ { .. } => 8,
        }
    }

    /// True when the frame is untagged.
    pub fn is_empty(self) -> bool {
        self == Tags::None
    }
}

/// An endpoint at L2 + L3: the MAC it sends from (or is reached at) and its
/// IP address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    /// MAC address.
    pub mac: [u8; 6],
    /// IP address (v4 or v6).
    pub ip: IpAddr,
}

impl Host {
    /// A host with the given MAC and address.
    pub const fn new(mac: [u8; 6], ip: IpAddr) -> Self {
        Host { mac, ip }
    }
}

/// IP-level knobs of one packet.
#[derive(Clone, Copy, Debug)]
pub struct IpParams {
    /// IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification (ignored for IPv6).
    pub id: u16,
    /// IPv4 don't-fragment bit.
    pub df: bool,
    /// IPv4 fragment offset in 8-byte units.
    pub frag_offset: u16,
    /// IPv4 more-fragments bit.
    pub more_fragments: bool,
    /// IPv6 flow label (ignored for IPv4).
    pub flow_label: u32,
}

impl IpParams {
    /// An unfragmented packet.
    pub const fn new(ttl: u8, id: u16, df: bool) -> Self {
        IpParams {
            ttl,
            id,
            df,
            frag_offset: 0,
            more_fragments: false,
            flow_label: 0,
        }
    }
}

fn vlan_id(id: u16) -> VlanId {
    VlanId::try_new(id).expect("VLAN id must be below 4095")
}

/// Builds the Ethernet (+ tags) + IP part of a packet from `src` to `dst`.
/// Lengths, protocol numbers and checksums are filled in by etherparse when
/// the packet is written.
///
/// # Panics
/// If `src` and `dst` are not of the same IP version, or a VLAN id or
/// fragment offset is out of range (programming errors in the generator).
pub fn ip_builder(src: &Host, dst: &Host, tags: Tags, p: IpParams) -> PacketBuilderStep<IpHeaders> {
    let ip = match (src.ip, dst.ip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = Ipv4Header::new(0, p.ttl, IpNumber::UDP, s.octets(), d.octets())
                .expect("zero payload length always fits");
            h.identification = p.id;
            h.dont_fragment = p.df;
            h.more_fragments = p.more_fragments;
            h.fragment_offset =
                IpFragOffset::try_new(p.frag_offset).expect("fragment offset below 8192");
            IpHeaders::Ipv4(h, Default::default())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => IpHeaders::Ipv6(
            Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::try_new(p.flow_label).expect("20-bit flow label"),
                payload_length: 0,
                next_header: IpNumber::UDP,
                hop_limit: p.ttl,
                source: s.octets(),
                destination: d.octets(),
            },
            Default::default(),
        ),
        _ => panic!("mixed IPv4/IPv6 endpoints {} -> {}", src.ip, dst.ip),
    };
    let eth = PacketBuilder::ethernet2(src.mac, dst.mac);
    match tags {
        Tags::None => eth.ip(ip),
        Tags::Dot1q(v) => eth.single_vlan(vlan_id(v)).ip(ip),
        Tags::QinQ { outer, inner } => eth.double_vlan(vlan_id(outer), vlan_id(inner)).ip(ip),
    }
}

/// Pads `frame` with zero bytes up to the Ethernet minimum (60 bytes without
/// FCS), as a NIC does on transmit. The IP total length still tells the real
/// packet length, so the padding shows as an Ethernet trailer.
pub fn pad_to_min(frame: &mut Vec<u8>) {
    if frame.len() < ETH_MIN_NO_FCS {
        frame.resize(ETH_MIN_NO_FCS, 0);
    }
}

/// CRC32C (Castagnoli), as SCTP's checksum (RFC 9260 appendix A) uses it.
/// Bitwise: it only runs over the sample capture's few SCTP packets.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The standard CRC-32C check value.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }
}
