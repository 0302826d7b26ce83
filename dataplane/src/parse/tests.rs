//! Parser tests. Valid frames come from `etherparse`, an independent
//! builder; malformed ones are valid frames with bytes overwritten by hand,
//! or bytes written out directly.

use super::*;
use crate::wire::{checksum, icmp, tcp::flags};
use etherparse::{
    EtherType, Ethernet2Header, IpAuthHeader, IpFragOffset, IpHeaders, IpNumber, Ipv4Header,
    Ipv6Extensions, Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader, Ipv6RoutingExtensions,
    PacketBuilder, TcpHeader, VlanId,
};
use proptest::prelude::*;

const MAC_S: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const MAC_D: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const V4S: [u8; 4] = [192, 0, 2, 1];
const V4D: [u8; 4] = [198, 51, 100, 7];
pub(super) const V6S: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub(super) const V6D: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xef,
];

fn vid(v: u16) -> VlanId {
    VlanId::try_new(v).unwrap()
}

fn ip(frame: &[u8]) -> ParsedPacket {
    match parse(frame) {
        Parsed::Ip(p) => {
            check_invariants(frame, &Parsed::Ip(p));
            p
        }
        other => panic!("expected an IP packet, got {other:?}"),
    }
}

fn malformed(frame: &[u8]) -> Malformed {
    match parse(frame) {
        Parsed::Malformed(m) => m,
        other => panic!("expected malformed, got {other:?}"),
    }
}

fn set16(frame: &mut [u8], at: usize, v: u16) {
    frame[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// The properties every `Parsed::Ip` must have, whatever the input.
fn check_invariants(frame: &[u8], parsed: &Parsed) {
    let Parsed::Ip(p) = parsed else { return };
    let l3 = usize::from(p.l3_offset);
    let l4 = usize::from(p.l4_offset);
    let end = l3 + usize::from(p.ip_len);
    assert!(matches!(l3, 14 | 18 | 22), "l3 {l3}");
    assert!(end <= frame.len(), "ip end {end} > {}", frame.len());
    match p.tuple.family {
        AddrFamily::V4 => {
            assert!(p.ip_len >= 20);
            assert_eq!(p.tuple.src & ((1u128 << 96) - 1), 0);
            assert_eq!(p.tuple.dst & ((1u128 << 96) - 1), 0);
        }
        AddrFamily::V6 => assert!(p.ip_len >= 40),
        AddrFamily::None => panic!("family none"),
    }
    if let Fragment::Later { .. } = p.fragment {
        assert_eq!(l4, 0);
        assert_eq!((p.tuple.sport, p.tuple.dport, p.tcp_flags), (0, 0, 0));
        assert_eq!(tcp_seq(frame, p), None);
    } else {
        assert!(l3 < l4 && l4 <= end, "l3 {l3} l4 {l4} end {end}");
    }
    if p.tuple.proto != ip_protocol::TCP {
        assert_eq!((p.tcp_flags, tcp_seq(frame, p)), (0, None));
    }
    if p.tuple.vlan >> 24 == 0 {
        assert!(p.tuple.vlan < 4096);
    } else {
        assert_eq!(p.tuple.vlan >> 24, 1);
    }
}

/// Every prefix of a valid frame is either malformed (if it cuts into the
/// IP packet) or parses exactly like the whole frame (if it only drops
/// padding), and never panics.
fn assert_prefixes(frame: &[u8]) {
    let full = parse(frame);
    let Parsed::Ip(p) = full else {
        panic!("not a valid IP frame: {full:?}")
    };
    let end = usize::from(p.l3_offset) + usize::from(p.ip_len);
    for n in 0..=frame.len() {
        let cut = &frame[..n];
        let r = parse(cut);
        check_invariants(cut, &r);
        if n < 14 {
            assert_eq!(r, Parsed::Malformed(Malformed::Runt));
        } else if n < end {
            assert!(matches!(r, Parsed::Malformed(_)), "prefix {n}: {r:?}");
        } else {
            assert_eq!(r, full, "prefix {n}");
        }
    }
}

fn tcp_v4(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .ipv4(V4S, V4D, 64)
        .tcp(40000, 443, 1000, 65535)
        .syn()
        .ece()
        .cwr()
        .write(&mut v, payload)
        .unwrap();
    v
}

fn udp_v4(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .ipv4(V4S, V4D, 17)
        .udp(5353, 53)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn raw_v4(proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .ipv4(V4S, V4D, 64)
        .write(&mut v, IpNumber(proto), payload)
        .unwrap();
    v
}

/// Recomputes the checksum of the IPv4 header at `l3` after a test has
/// rewritten its fields, so the parser sees the edit and not a damaged
/// header.
fn refill_v4_checksum(frame: &mut [u8], l3: usize) {
    Ipv4Packet::new_unchecked(&mut frame[l3..]).fill_checksum();
}

fn raw_v6(proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .ipv6(V6S, V6D, 64)
        .write(&mut v, IpNumber(proto), payload)
        .unwrap();
    v
}

fn tcp_v6(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .ipv6(V6S, V6D, 33)
        .tcp(22, 50022, 7, 1024)
        .ack(99)
        .psh()
        .write(&mut v, payload)
        .unwrap();
    v
}

fn udp_v6(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .ipv6(V6S, V6D, 1)
        .udp(546, 547)
        .write(&mut v, payload)
        .unwrap();
    v
}

/// IPv6 + UDP behind the given extension headers, built by etherparse.
fn v6_exts(exts: Ipv6Extensions, payload: &[u8]) -> Vec<u8> {
    let hdr = Ipv6Header {
        hop_limit: 64,
        source: V6S,
        destination: V6D,
        ..Default::default()
    };
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .ip(IpHeaders::Ipv6(hdr, exts))
        .udp(1234, 4321)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn opts(next: u8, len8: usize) -> Ipv6RawExtHeader {
    // PadN option filling the header, so it is well-formed.
    let mut body = vec![0u8; len8 * 8 - 2];
    body[0] = 1;
    body[1] = (body.len() - 2) as u8;
    Ipv6RawExtHeader::new_raw(IpNumber(next), &body).unwrap()
}

fn routing() -> Ipv6RawExtHeader {
    // Segment routing header (type 4) with no segments left.
    Ipv6RawExtHeader::new_raw(IpNumber(0), &[4, 0, 0, 0, 0, 0]).unwrap()
}

/// IPv6 with a hand-written extension chain: each entry is (kind, header
/// bytes with a placeholder next-header byte), then `last` and `l4`.
pub(super) fn v6_chain(chain: &[(u8, Vec<u8>)], last: u8, l4: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, (_, h)) in chain.iter().enumerate() {
        let mut h = h.clone();
        h[0] = chain.get(i + 1).map_or(last, |n| n.0);
        body.extend_from_slice(&h);
    }
    body.extend_from_slice(l4);
    // Written by hand below the L2 header: etherparse will not start a raw
    // payload with an extension-header number.
    let ip = Ipv6Header {
        payload_length: body.len() as u16,
        next_header: IpNumber(chain.first().map_or(last, |n| n.0)),
        hop_limit: 64,
        source: V6S,
        destination: V6D,
        ..Default::default()
    };
    let mut v = Vec::new();
    Ethernet2Header {
        source: MAC_S,
        destination: MAC_D,
        ether_type: EtherType::IPV6,
    }
    .write(&mut v)
    .unwrap();
    ip.write(&mut v).unwrap();
    v.extend_from_slice(&body);
    v
}

pub(super) fn dstopt8() -> (u8, Vec<u8>) {
    (ip_protocol::IPV6_OPTS, vec![0, 0, 1, 4, 0, 0, 0, 0])
}

pub(super) fn frag8(offset: u16, more: bool, id: u32) -> (u8, Vec<u8>) {
    let mut h = vec![0u8, 0];
    h.extend_from_slice(&(offset << 3 | u16::from(more)).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    (ip_protocol::IPV6_FRAG, h)
}

pub(super) fn udp_hdr(sport: u16, dport: u16, len: u16) -> Vec<u8> {
    let mut h = Vec::new();
    for w in [sport, dport, len, 0] {
        h.extend_from_slice(&w.to_be_bytes());
    }
    h
}

// ---------------------------------------------------------------- basics

#[test]
fn tcp_over_ipv4() {
    let f = tcp_v4(b"hello");
    let p = ip(&f);
    assert_eq!(p.tuple.src, crate::flow::key::v4_bits(V4S));
    assert_eq!(p.tuple.dst, crate::flow::key::v4_bits(V4D));
    assert_eq!((p.tuple.sport, p.tuple.dport), (40000, 443));
    assert_eq!(p.tuple.proto, ip_protocol::TCP);
    assert_eq!(p.tuple.family, AddrFamily::V4);
    assert_eq!(p.tuple.vlan, 0);
    assert_eq!((p.l3_offset, p.l4_offset), (14, 34));
    assert_eq!(p.ip_len, 20 + 20 + 5);
    assert_eq!(p.ttl, 64);
    assert_eq!(p.tcp_flags, flags::SYN | flags::ECE | flags::CWR);
    assert_eq!(p.fragment, Fragment::None);
}

#[test]
fn captured_tcp_ack_over_ipv4() {
    // A real capture (ACK with timestamps); both checksums verify.
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[
        0x45, 0x00, 0x00, 0x34, 0xed, 0xa5, 0x40, 0x00, 0x40, 0x06, 0x4e, 0xb6, 0xac, 0x16, 0x68,
        0x6d, 0x4a, 0x7d, 0x9f, 0x67, 0xaf, 0x1f, 0x00, 0x50, 0xe8, 0x33, 0x8b, 0x62, 0xfc, 0x13,
        0xda, 0x66, 0x80, 0x10, 0x00, 0x5c, 0x37, 0xa6, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0x04,
        0xb8, 0x66, 0xf7, 0x4a, 0xdd, 0x90, 0x45,
    ]);
    let p = ip(&f);
    assert_eq!((p.tuple.sport, p.tuple.dport), (44831, 80));
    assert_eq!(p.tcp_flags, flags::ACK);
    assert_eq!(tcp_seq(&f, &p), Some(0xe833_8b62));
    assert_eq!(p.ip_len, 52);
    let ipv4 = Ipv4Packet::new_checked(&f[14..]).unwrap();
    assert!(ipv4.verify_checksum());
    let seg = TcpPacket::new_checked(ipv4.payload()).unwrap();
    assert!(seg.verify_checksum_v4(ipv4.src_addr(), ipv4.dst_addr()));
    assert_prefixes(&f);
}

#[test]
fn udp_over_ipv4_with_padding() {
    // 14 + 20 + 8 + 2 = 44 bytes, padded to the 60-byte Ethernet minimum.
    let mut f = udp_v4(b"hi");
    f.resize(60, 0);
    let p = ip(&f);
    assert_eq!((p.tuple.sport, p.tuple.dport), (5353, 53));
    assert_eq!(p.tuple.proto, ip_protocol::UDP);
    assert_eq!(p.ip_len, 30);
    assert_eq!(p.ttl, 17);
    assert_eq!(p.tcp_flags, 0);
    assert_prefixes(&f);
}

#[test]
fn tcp_and_udp_over_ipv6() {
    let f = tcp_v6(b"x");
    let p = ip(&f);
    assert_eq!(
        (p.tuple.src, p.tuple.dst),
        (u128::from_be_bytes(V6S), u128::from_be_bytes(V6D))
    );
    assert_eq!((p.tuple.sport, p.tuple.dport), (22, 50022));
    assert_eq!(p.tuple.family, AddrFamily::V6);
    assert_eq!((p.l3_offset, p.l4_offset), (14, 54));
    assert_eq!(p.ip_len, 40 + 20 + 1);
    assert_eq!(p.ttl, 33);
    assert_eq!(p.tcp_flags, flags::ACK | flags::PSH);

    let f = udp_v6(&[0; 30]);
    let p = ip(&f);
    assert_eq!((p.tuple.sport, p.tuple.dport), (546, 547));
    assert_eq!(p.tuple.proto, ip_protocol::UDP);
    assert_eq!(p.ip_len, 40 + 38);
}

#[test]
fn sctp_ports() {
    let mut s = vec![0x0b, 0x59, 0x0b, 0x5a, 0, 0, 0, 1, 0, 0, 0, 0];
    s.extend_from_slice(&[1, 0, 0, 4]);
    let p = ip(&raw_v4(ip_protocol::SCTP, &s));
    assert_eq!((p.tuple.sport, p.tuple.dport), (2905, 2906));
    assert_eq!(p.tuple.proto, ip_protocol::SCTP);
    let p = ip(&raw_v6(ip_protocol::SCTP, &s));
    assert_eq!((p.tuple.sport, p.tuple.dport), (2905, 2906));
}

#[test]
fn unknown_protocols_are_flows_without_ports() {
    for proto in [ip_protocol::GRE, ip_protocol::ESP, 89, 253] {
        let f = raw_v4(proto, &[0xaa; 12]);
        let p = ip(&f);
        assert_eq!(p.tuple.proto, proto);
        assert_eq!((p.tuple.sport, p.tuple.dport), (0, 0));
        assert_eq!(p.l4_offset, 34);
        let f = raw_v6(proto, &[]);
        let p = ip(&f);
        assert_eq!(p.tuple.proto, proto);
        assert_eq!(p.l4_offset, 54);
    }
    // ICMPv6 inside IPv4 and ICMP inside IPv6 are not ICMP for their family.
    let p = ip(&raw_v4(ip_protocol::ICMPV6, &[1]));
    assert_eq!((p.tuple.sport, p.tuple.dport), (0, 0));
    let p = ip(&raw_v6(ip_protocol::ICMP, &[1]));
    assert_eq!((p.tuple.sport, p.tuple.dport), (0, 0));
    // No next header: nothing after the IPv6 header, still a packet.
    let p = ip(&raw_v6(ip_protocol::IPV6_NONXT, &[]));
    assert_eq!(p.tuple.proto, ip_protocol::IPV6_NONXT);
}

#[test]
fn non_ip_ethertypes() {
    let mut arp = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .arp(
            etherparse::ArpPacket::new(
                etherparse::ArpHardwareId::ETHERNET,
                etherparse::EtherType::IPV4,
                etherparse::ArpOperation::REQUEST,
                &MAC_S,
                &V4S,
                &[0; 6],
                &V4D,
            )
            .unwrap(),
        )
        .write(&mut arp)
        .unwrap();
    assert_eq!(parse(&arp), Parsed::NotIp { ethertype: 0x0806 });

    let mut lldp = vec![0x01, 0x80, 0xc2, 0, 0, 0x0e, 2, 0, 0, 0, 0, 1, 0x88, 0xcc];
    lldp.extend_from_slice(&[0; 46]);
    assert_eq!(parse(&lldp), Parsed::NotIp { ethertype: 0x88cc });

    // An 802.3 frame: the type field is a length.
    let mut llc = vec![0u8; 12];
    llc.extend_from_slice(&[0x00, 0x26]);
    llc.extend_from_slice(&[0x42; 38]);
    assert_eq!(parse(&llc), Parsed::NotIp { ethertype: 0x26 });

    // A bare header with no payload is still a well-formed frame.
    let mut bare = vec![0u8; 12];
    bare.extend_from_slice(&[0x88, 0x47]);
    assert_eq!(parse(&bare), Parsed::NotIp { ethertype: 0x8847 });

    // Behind a VLAN tag too.
    let mut tagged = vec![0u8; 12];
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x08, 0x06]);
    assert_eq!(parse(&tagged), Parsed::NotIp { ethertype: 0x0806 });
}

// ------------------------------------------------------------------ ICMP

fn icmp_v4(build: impl FnOnce(etherparse::PacketBuilderStep<IpHeaders>) -> Vec<u8>) -> Vec<u8> {
    build(PacketBuilder::ethernet2(MAC_S, MAC_D).ipv4(V4S, V4D, 64))
}

#[test]
fn icmp_echo_uses_identifier_as_both_ports() {
    let req = icmp_v4(|b| {
        let mut v = Vec::new();
        b.icmpv4_echo_request(0x4242, 1)
            .write(&mut v, b"abcd")
            .unwrap();
        v
    });
    let p = ip(&req);
    assert_eq!(p.tuple.proto, ip_protocol::ICMP);
    assert_eq!((p.tuple.sport, p.tuple.dport), (0x4242, 0x4242));
    assert_eq!(p.l4_offset, 34);

    let rep = icmp_v4(|b| {
        let mut v = Vec::new();
        b.icmpv4_echo_reply(0x4242, 9).write(&mut v, &[]).unwrap();
        v
    });
    let p2 = ip(&rep);
    assert_eq!((p2.tuple.sport, p2.tuple.dport), (0x4242, 0x4242));
    // Request and reply of one ping share a flow key.
    assert_eq!(p.tuple.canonical().0, p2.tuple.reversed().canonical().0);

    for (ty, build) in [
        (icmp::v6::ECHO_REQUEST, true),
        (icmp::v6::ECHO_REPLY, false),
    ] {
        let mut v = Vec::new();
        let b = PacketBuilder::ethernet2(MAC_S, MAC_D).ipv6(V6S, V6D, 64);
        if build {
            b.icmpv6_echo_request(7, 1).write(&mut v, b"ping").unwrap();
        } else {
            b.icmpv6_echo_reply(7, 1).write(&mut v, b"ping").unwrap();
        }
        assert_eq!(v[54], ty);
        let p = ip(&v);
        assert_eq!(p.tuple.proto, ip_protocol::ICMPV6);
        assert_eq!((p.tuple.sport, p.tuple.dport), (7, 7));
        // etherparse's ICMPv6 checksum agrees with ours.
        let msg = IcmpPacket::new_checked(&v[54..]).unwrap();
        assert!(msg.verify_checksum_v6(V6S, V6D));
    }
}

#[test]
fn other_icmp_uses_type_and_code() {
    let unreach = icmp_v4(|b| {
        let mut v = Vec::new();
        b.icmpv4_raw(3, 1, [0; 4])
            .write(&mut v, &[0x45; 28])
            .unwrap();
        v
    });
    let p = ip(&unreach);
    assert_eq!((p.tuple.sport, p.tuple.dport), (0x0301, 0));
    assert!(IcmpPacket::new_checked(&unreach[34..])
        .unwrap()
        .verify_checksum_v4());

    let mut ns = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .ipv6(V6S, V6D, 255)
        .icmpv6_raw(icmp::v6::NEIGHBOR_SOLICIT, 0, [0; 4])
        .write(&mut ns, &V6D)
        .unwrap();
    let p = ip(&ns);
    assert_eq!((p.tuple.sport, p.tuple.dport), (135 << 8, 0));
    // An ICMPv4 echo type number means nothing in ICMPv6.
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .ipv6(V6S, V6D, 255)
        .icmpv6_raw(8, 0, [0, 5, 0, 1])
        .write(&mut v, &[])
        .unwrap();
    assert_eq!(ip(&v).tuple.sport, 8 << 8);
}

// ------------------------------------------------------------------ VLAN

#[test]
fn single_vlan_tag() {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .single_vlan(vid(100))
        .ipv4(V4S, V4D, 64)
        .udp(1, 2)
        .write(&mut v, &[])
        .unwrap();
    assert_eq!(&v[12..14], &[0x81, 0x00]);
    let p = ip(&v);
    assert_eq!(p.tuple.vlan, 100);
    assert_eq!((p.l3_offset, p.l4_offset), (18, 38));
    assert_prefixes(&v);
}

#[test]
fn qinq_tags() {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .double_vlan(vid(0xabc), vid(0x123))
        .ipv6(V6S, V6D, 64)
        .tcp(1, 2, 3, 4)
        .write(&mut v, &[])
        .unwrap();
    assert_eq!(&v[12..14], &[0x88, 0xa8]);
    let p = ip(&v);
    assert_eq!(p.tuple.vlan, 1 << 24 | 0xabc << 12 | 0x123);
    assert_eq!((p.l3_offset, p.l4_offset), (22, 62));
    assert_prefixes(&v);

    // Legacy 0x9100 outer tag, PCP/DEI bits set: only the VID counts.
    let mut w = v.clone();
    w[12..14].copy_from_slice(&[0x91, 0x00]);
    w[14] |= 0xf0;
    assert_eq!(ip(&w).tuple.vlan, p.tuple.vlan);

    // Outer VID 0 still marks the key as double-tagged.
    let mut z = v.clone();
    z[14..16].copy_from_slice(&[0, 0]);
    assert_eq!(ip(&z).tuple.vlan, 1 << 24 | 0x123);
}

#[test]
fn priority_tag_is_vlan_zero() {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .single_vlan(vid(0))
        .ipv4(V4S, V4D, 64)
        .udp(1, 2)
        .write(&mut v, &[])
        .unwrap();
    v[14] = 0xa0; // PCP 5
    let p = ip(&v);
    assert_eq!(p.tuple.vlan, 0);
    assert_eq!(p.l3_offset, 18);
}

// ------------------------------------------------------------- IPv4 options

#[test]
fn ipv4_options_move_the_l4_header() {
    for options in [
        &[1u8, 1, 1, 0][..],
        &[7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
    ] {
        let mut hdr = Ipv4Header::new(0, 64, IpNumber::UDP, V4S, V4D).unwrap();
        hdr.options = options.try_into().unwrap();
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC_S, MAC_D)
            .ip(IpHeaders::Ipv4(hdr, Default::default()))
            .udp(67, 68)
            .write(&mut v, &[9; 9])
            .unwrap();
        let p = ip(&v);
        assert_eq!(usize::from(p.l4_offset), 34 + options.len());
        assert_eq!((p.tuple.sport, p.tuple.dport), (67, 68));
        assert_eq!(usize::from(p.ip_len), 20 + options.len() + 17);
        let h = Ipv4Packet::new_checked(&v[14..]).unwrap();
        assert_eq!(h.options(), options);
        assert!(h.verify_checksum());
        assert_prefixes(&v);
        // The checksum covers the options too.
        let mut damaged = v.clone();
        damaged[34 + options.len() - 1] ^= 0x01;
        assert_eq!(malformed(&damaged), Malformed::Ipv4Checksum);
    }
    // Maximum header: IHL 15, 40 bytes of options.
    let mut hdr = Ipv4Header::new(0, 64, IpNumber::TCP, V4S, V4D).unwrap();
    hdr.options = [1u8; 40].into();
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .ip(IpHeaders::Ipv4(hdr, Default::default()))
        .tcp(1, 2, 3, 4)
        .write(&mut v, &[])
        .unwrap();
    assert_eq!(ip(&v).l4_offset, 14 + 60);
}

// -------------------------------------------------------- IPv6 extensions

#[test]
fn each_ipv6_extension_header() {
    let hop = Ipv6Extensions {
        hop_by_hop_options: Some(opts(0, 1)),
        ..Default::default()
    };
    let dst = Ipv6Extensions {
        destination_options: Some(opts(0, 3)),
        ..Default::default()
    };
    let rt = Ipv6Extensions {
        routing: Some(Ipv6RoutingExtensions {
            routing: routing(),
            final_destination_options: None,
        }),
        ..Default::default()
    };
    let frag = Ipv6Extensions {
        fragment: Some(Ipv6FragmentHeader::new(
            IpNumber(0),
            IpFragOffset::ZERO,
            false,
            77,
        )),
        ..Default::default()
    };
    let ah = Ipv6Extensions {
        auth: Some(IpAuthHeader::new(IpNumber(0), 0x100, 1, &[0xcc; 12]).unwrap()),
        ..Default::default()
    };
    for (exts, len, first) in [
        (hop, 8, ip_protocol::HOPOPT),
        (dst, 24, ip_protocol::IPV6_OPTS),
        (rt, 8, ip_protocol::IPV6_ROUTE),
        (frag, 8, ip_protocol::IPV6_FRAG),
        (ah, 24, ip_protocol::AH),
    ] {
        let v = v6_exts(exts, b"data");
        assert_eq!(v[20], first, "first next header");
        let p = ip(&v);
        assert_eq!(p.tuple.proto, ip_protocol::UDP);
        assert_eq!((p.tuple.sport, p.tuple.dport), (1234, 4321));
        assert_eq!(usize::from(p.l4_offset), 54 + len, "kind {first}");
        assert_eq!(usize::from(p.ip_len), 40 + len + 12);
        // An atomic fragment is a whole packet.
        assert_eq!(p.fragment, Fragment::None);
        assert_prefixes(&v);
    }
}

#[test]
fn full_ipv6_extension_chain() {
    let exts = Ipv6Extensions {
        hop_by_hop_options: Some(opts(0, 2)),
        destination_options: Some(opts(0, 1)),
        routing: Some(Ipv6RoutingExtensions {
            routing: routing(),
            final_destination_options: Some(opts(0, 1)),
        }),
        fragment: Some(Ipv6FragmentHeader::new(
            IpNumber(0),
            IpFragOffset::ZERO,
            true,
            0xfeed_f00d,
        )),
        auth: Some(IpAuthHeader::new(IpNumber(0), 1, 2, &[0; 4]).unwrap()),
    };
    let v = v6_exts(exts, &[]);
    let p = ip(&v);
    assert_eq!(p.tuple.proto, ip_protocol::UDP);
    assert_eq!(usize::from(p.l4_offset), 54 + 16 + 8 + 8 + 8 + 8 + 16);
    assert_eq!(p.fragment, Fragment::First { id: 0xfeed_f00d });
    assert_prefixes(&v);
}

#[test]
fn eight_extension_headers_are_enough_nine_are_too_many() {
    let udp = udp_hdr(1, 2, 8);
    let eight = v6_chain(&vec![dstopt8(); 8], ip_protocol::UDP, &udp);
    let p = ip(&eight);
    assert_eq!(usize::from(p.l4_offset), 54 + 64);
    assert_eq!((p.tuple.sport, p.tuple.dport), (1, 2));
    assert_prefixes(&eight);
    let nine = v6_chain(&vec![dstopt8(); 9], ip_protocol::UDP, &udp);
    assert_eq!(malformed(&nine), Malformed::Ipv6ExtensionHeader);
    // The limit counts headers, not what ends the chain: 8 then ESP is fine.
    let esp = v6_chain(&vec![dstopt8(); 8], ip_protocol::ESP, &[0; 16]);
    assert_eq!(ip(&esp).tuple.proto, ip_protocol::ESP);
}

// -------------------------------------------------------------- fragments

fn v4_fragment(proto: u8, payload: &[u8], offset: u16, more: bool, id: u16) -> Vec<u8> {
    let mut v = raw_v4(proto, payload);
    set16(&mut v, 18, id);
    set16(&mut v, 20, offset | if more { 0x2000 } else { 0 });
    refill_v4_checksum(&mut v, 14);
    v
}

#[test]
fn ipv4_fragments() {
    // First fragment of a UDP datagram: the length field covers more than
    // this fragment, which is fine here.
    let mut payload = udp_hdr(4000, 53, 3000);
    payload.extend_from_slice(&[0; 1472]);
    let first = v4_fragment(ip_protocol::UDP, &payload, 0, true, 0xbeef);
    let p = ip(&first);
    assert_eq!(p.fragment, Fragment::First { id: 0xbeef });
    assert_eq!((p.tuple.sport, p.tuple.dport), (4000, 53));
    assert_eq!(p.l4_offset, 34);
    assert_prefixes(&first);

    let later = v4_fragment(ip_protocol::UDP, &[0; 1480], 185, true, 0xbeef);
    let p = ip(&later);
    assert_eq!(p.fragment, Fragment::Later { id: 0xbeef });
    assert_eq!(p.tuple.proto, ip_protocol::UDP);
    assert_eq!((p.tuple.sport, p.tuple.dport, p.l4_offset), (0, 0, 0));
    assert_prefixes(&later);

    let last = v4_fragment(ip_protocol::TCP, &[0; 40], 370, false, 1);
    assert_eq!(ip(&last).fragment, Fragment::Later { id: 1 });

    // TCP first fragment with a whole header: flags are read.
    let mut seg = vec![0u8; 24];
    seg[..4].copy_from_slice(&[0, 80, 0x1f, 0x90]);
    seg[12] = 0x50;
    seg[13] = flags::SYN;
    let p = ip(&v4_fragment(ip_protocol::TCP, &seg, 0, true, 2));
    assert_eq!(p.tcp_flags, flags::SYN);
    assert_eq!((p.tuple.sport, p.tuple.dport), (80, 8080));

    // DF alone is not fragmentation.
    let mut df = udp_v4(&[]);
    set16(&mut df, 20, 0x4000);
    assert_eq!(ip(&df).fragment, Fragment::None);
}

#[test]
fn ipv6_fragments() {
    let mut l4 = udp_hdr(4000, 53, 3000);
    l4.extend_from_slice(&[0; 64]);
    let first = v6_chain(&[frag8(0, true, 0xdead_beef)], ip_protocol::UDP, &l4);
    let p = ip(&first);
    assert_eq!(p.fragment, Fragment::First { id: 0xdead_beef });
    assert_eq!((p.tuple.sport, p.tuple.dport), (4000, 53));
    assert_eq!(p.l4_offset, 62);
    assert_prefixes(&first);

    let later = v6_chain(&[frag8(9, false, 0xdead_beef)], ip_protocol::UDP, &[0; 64]);
    let p = ip(&later);
    assert_eq!(p.fragment, Fragment::Later { id: 0xdead_beef });
    assert_eq!(p.tuple.proto, ip_protocol::UDP);
    assert_eq!((p.tuple.sport, p.tuple.dport, p.l4_offset), (0, 0, 0));
    assert_prefixes(&later);

    // Unfragmentable headers before the fragment header are walked; the
    // later fragment reports the fragment header's next header.
    let later = v6_chain(
        &[dstopt8(), frag8(1, true, 5), dstopt8()],
        ip_protocol::TCP,
        &[0; 16],
    );
    let p = ip(&later);
    assert_eq!(p.fragment, Fragment::Later { id: 5 });
    assert_eq!(p.tuple.proto, ip_protocol::IPV6_OPTS);

    // etherparse agrees on the layout of a first fragment.
    let exts = Ipv6Extensions {
        fragment: Some(Ipv6FragmentHeader::new(
            IpNumber(0),
            IpFragOffset::ZERO,
            true,
            42,
        )),
        ..Default::default()
    };
    let p = ip(&v6_exts(exts, &[1; 100]));
    assert_eq!(p.fragment, Fragment::First { id: 42 });
    assert_eq!(p.l4_offset, 62);
}

// -------------------------------------------------------------- malformed

/// One or more hand-made frames for each reason.
fn malformed_cases() -> Vec<(Malformed, Vec<u8>)> {
    use Malformed::*;
    let mut cases = Vec::new();

    cases.push((Runt, vec![0u8; 13]));
    cases.push((Runt, vec![]));

    let mut vlan_cut = udp_v4(&[]);
    vlan_cut.truncate(12);
    vlan_cut.extend_from_slice(&[0x81, 0x00, 0x00]);
    cases.push((TruncatedVlan, vlan_cut.clone()));
    let mut qinq_cut = vlan_cut.clone();
    qinq_cut.extend_from_slice(&[0x05, 0x81, 0x00, 0x00, 0x06]);
    cases.push((TruncatedVlan, qinq_cut));

    let mut three = udp_v4(&[]);
    for tpid in [0x8100u16, 0x88a8, 0x9100] {
        let mut tag = tpid.to_be_bytes().to_vec();
        tag.extend_from_slice(&[0, 1]);
        three.splice(12..12, tag);
    }
    cases.push((TooManyVlanTags, three));

    let mut short4 = udp_v4(&[]);
    short4.truncate(14 + 19);
    cases.push((TruncatedIpv4, short4));
    let mut tagged_short4 = vec![0u8; 12];
    tagged_short4.extend_from_slice(&[0x81, 0, 0, 1, 0x08, 0x00, 0x45]);
    cases.push((TruncatedIpv4, tagged_short4));

    let mut ver = udp_v4(&[]);
    ver[14] = 0x65;
    cases.push((Ipv4BadVersion, ver));

    let mut ihl4 = udp_v4(&[0; 8]);
    ihl4[14] = 0x44;
    cases.push((Ipv4HeaderLength, ihl4));
    let mut ihl_past = udp_v4(&[]);
    ihl_past[14] = 0x4f; // 60-byte header in a 28-byte packet
    cases.push((Ipv4HeaderLength, ihl_past));

    let mut tl_small = udp_v4(&[0; 8]);
    set16(&mut tl_small, 16, 19);
    cases.push((Ipv4TotalLength, tl_small));
    let mut tl_big = udp_v4(&[0; 8]);
    set16(&mut tl_big, 16, 37);
    cases.push((Ipv4TotalLength, tl_big));

    // One bit of the source address flipped on the way.
    let mut flipped = udp_v4(&[0; 8]);
    flipped[14 + 12] ^= 0x10;
    cases.push((Ipv4Checksum, flipped));
    // A hop that decremented the TTL without updating the checksum.
    let mut ttl = udp_v4(&[0; 8]);
    ttl[14 + 8] -= 1;
    cases.push((Ipv4Checksum, ttl));

    let mut short6 = udp_v6(&[]);
    short6.truncate(14 + 39);
    cases.push((TruncatedIpv6, short6));

    let mut ver6 = udp_v6(&[]);
    ver6[14] = 0x45;
    cases.push((Ipv6BadVersion, ver6));

    let mut plen = udp_v6(&[0; 4]);
    set16(&mut plen, 18, 13);
    cases.push((Ipv6PayloadLength, plen));

    let mut hop_long = v6_chain(
        &[(ip_protocol::HOPOPT, vec![0, 0, 1, 4, 0, 0, 0, 0])],
        ip_protocol::UDP,
        &udp_hdr(1, 2, 8),
    );
    hop_long[54 + 1] = 2; // 24 bytes claimed, 16 in the payload
    cases.push((Ipv6ExtensionHeader, hop_long));
    cases.push((
        Ipv6ExtensionHeader,
        v6_chain(
            &[(ip_protocol::IPV6_OPTS, vec![0; 4])],
            ip_protocol::UDP,
            &[],
        ),
    ));
    cases.push((
        Ipv6ExtensionHeader,
        v6_chain(&vec![dstopt8(); 9], ip_protocol::UDP, &udp_hdr(1, 2, 8)),
    ));
    cases.push((
        Ipv6ExtensionHeader,
        v6_chain(
            &[
                dstopt8(),
                (ip_protocol::HOPOPT, vec![0, 0, 1, 4, 0, 0, 0, 0]),
            ],
            ip_protocol::UDP,
            &udp_hdr(1, 2, 8),
        ),
    ));
    cases.push((
        Ipv6ExtensionHeader,
        v6_chain(
            &[frag8(0, false, 1), frag8(0, false, 2)],
            ip_protocol::UDP,
            &udp_hdr(1, 2, 8),
        ),
    ));
    cases.push((
        Ipv6ExtensionHeader,
        v6_chain(
            &[(ip_protocol::AH, vec![0, 0, 0, 0, 0, 0, 0, 1])],
            ip_protocol::UDP,
            &udp_hdr(1, 2, 8),
        ),
    ));

    cases.push((TruncatedTcp, raw_v4(ip_protocol::TCP, &[0; 19])));
    cases.push((TruncatedTcp, raw_v6(ip_protocol::TCP, &[])));
    let mut off4 = tcp_v4(&[0; 8]);
    off4[14 + 20 + 12] = 0x40;
    cases.push((TcpDataOffset, off4));
    let mut off_past = tcp_v4(&[0; 8]);
    off_past[14 + 20 + 12] = 0x80; // 32-byte header in a 28-byte segment
    cases.push((TcpDataOffset, off_past));

    cases.push((TruncatedUdp, raw_v4(ip_protocol::UDP, &[0; 7])));
    cases.push((TruncatedUdp, raw_v6(ip_protocol::UDP, &[0; 3])));
    cases.push((UdpLength, raw_v4(ip_protocol::UDP, &udp_hdr(1, 2, 7))));
    cases.push((UdpLength, raw_v6(ip_protocol::UDP, &udp_hdr(1, 2, 9))));
    let mut udp_past = udp_v4(&[0; 4]);
    udp_past.resize(60, 0); // padding is not UDP payload
    set16(&mut udp_past, 14 + 20 + 4, 13);
    cases.push((UdpLength, udp_past));

    cases.push((TruncatedSctp, raw_v4(ip_protocol::SCTP, &[0; 11])));
    cases.push((
        TruncatedIcmp,
        raw_v4(ip_protocol::ICMP, &[8, 0, 0, 0, 0, 1, 0]),
    ));
    cases.push((TruncatedIcmp, raw_v6(ip_protocol::ICMPV6, &[128, 0, 0, 0])));

    // Tiny first fragments: the L4 header does not fit.
    cases.push((
        FragmentOffset,
        v4_fragment(ip_protocol::TCP, &[0; 16], 0, true, 1),
    ));
    let mut tcp_opts_cut = vec![0u8; 24];
    tcp_opts_cut[12] = 0x80;
    cases.push((
        FragmentOffset,
        v4_fragment(ip_protocol::TCP, &tcp_opts_cut, 0, true, 1),
    ));
    cases.push((
        FragmentOffset,
        v4_fragment(ip_protocol::UDP, &[0; 4], 0, true, 1),
    ));
    cases.push((
        FragmentOffset,
        v4_fragment(ip_protocol::ICMP, &[8, 0, 0, 0], 0, true, 1),
    ));
    cases.push((
        FragmentOffset,
        v4_fragment(ip_protocol::SCTP, &[0; 8], 0, true, 1),
    ));
    cases.push((
        FragmentOffset,
        v6_chain(&[frag8(0, true, 1)], ip_protocol::TCP, &[0; 8]),
    ));
    cases.push((
        FragmentOffset,
        v6_chain(
            &[frag8(0, true, 1), (ip_protocol::IPV6_OPTS, vec![0; 4])],
            ip_protocol::TCP,
            &[],
        ),
    ));
    // RFC 1858: a TCP fragment at offset 8 rewrites the first one's flags.
    cases.push((
        FragmentOffset,
        v4_fragment(ip_protocol::TCP, &[0; 16], 1, true, 1),
    ));
    // Ping of death: offset 65528 + 20 + 8 > 65535.
    cases.push((
        FragmentOffset,
        v4_fragment(ip_protocol::ICMP, &[0; 8], 8191, false, 1),
    ));
    cases.push((
        FragmentOffset,
        v6_chain(&[frag8(8191, false, 1)], ip_protocol::UDP, &[0; 8]),
    ));
    cases
}

#[test]
fn every_malformed_reason_is_detected() {
    let cases = malformed_cases();
    let mut seen = [false; Malformed::COUNT];
    for (i, (want, frame)) in cases.iter().enumerate() {
        let got = parse(frame);
        assert_eq!(got, Parsed::Malformed(*want), "case {i}: {frame:02x?}");
        seen[want.index()] = true;
    }
    for m in Malformed::ALL {
        assert!(seen[m.index()], "no test frame for {}", m.name());
    }
}

#[test]
fn malformed_reasons_are_dense_and_named() {
    let mut names = std::collections::HashSet::new();
    for (i, m) in Malformed::ALL.iter().enumerate() {
        assert_eq!(m.index(), i);
        assert_eq!(*m as u8 as usize, i);
        let n = m.name();
        assert!(n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()));
        assert!(names.insert(n), "duplicate name {n}");
    }
    for required in [
        "runt",
        "truncated_vlan",
        "too_many_vlan_tags",
        "truncated_ipv4",
        "ipv4_bad_version",
        "ipv4_header_length",
        "ipv4_total_length",
        "ipv4_checksum",
        "truncated_ipv6",
        "ipv6_payload_length",
        "ipv6_extension_header",
        "truncated_tcp",
        "tcp_data_offset",
        "truncated_udp",
        "udp_length",
        "truncated_sctp",
        "truncated_icmp",
        "fragment_offset",
    ] {
        assert!(names.contains(required), "{required}");
    }
}

#[test]
fn fragment_edges_that_are_fine() {
    // The largest legal fragment end: 65512 + 20 + 3 = 65535, one more byte
    // is too many.
    let p = ip(&v4_fragment(ip_protocol::UDP, &[0; 3], 8189, false, 3));
    assert_eq!(p.fragment, Fragment::Later { id: 3 });
    assert_eq!(
        malformed(&v4_fragment(ip_protocol::UDP, &[0; 4], 8189, false, 3)),
        Malformed::FragmentOffset
    );
    // IPv6 counts the payload only: 65528 + 7 fits, 8 does not.
    let p = ip(&v6_chain(
        &[frag8(8191, false, 3)],
        ip_protocol::UDP,
        &[0; 7],
    ));
    assert_eq!(p.fragment, Fragment::Later { id: 3 });
    assert_eq!(
        malformed(&v6_chain(
            &[frag8(8191, false, 3)],
            ip_protocol::UDP,
            &[0; 8]
        )),
        Malformed::FragmentOffset
    );
    // Offset 1 is only suspicious for TCP.
    let p = ip(&v4_fragment(ip_protocol::UDP, &[0; 16], 1, true, 3));
    assert_eq!(p.fragment, Fragment::Later { id: 3 });
    // Outside fragments a short header is a plain truncation.
    assert_eq!(
        malformed(&v4_fragment(ip_protocol::TCP, &[0; 16], 0, false, 1)),
        Malformed::TruncatedTcp
    );
    // Invalid length fields keep their own reason inside first fragments.
    let mut off3 = vec![0u8; 24];
    off3[12] = 0x30;
    assert_eq!(
        malformed(&v4_fragment(ip_protocol::TCP, &off3, 0, true, 1)),
        Malformed::TcpDataOffset
    );
    assert_eq!(
        malformed(&v6_chain(
            &[
                frag8(0, true, 1),
                (ip_protocol::AH, vec![0, 0, 0, 0, 0, 0, 0, 1])
            ],
            ip_protocol::UDP,
            &udp_hdr(1, 2, 8),
        )),
        Malformed::Ipv6ExtensionHeader
    );
    assert_eq!(
        malformed(&v4_fragment(
            ip_protocol::UDP,
            &udp_hdr(1, 2, 7),
            0,
            true,
            1
        )),
        Malformed::UdpLength
    );
    // Unknown protocols have no header to cut.
    let p = ip(&v4_fragment(ip_protocol::GRE, &[], 0, true, 4));
    assert_eq!(p.fragment, Fragment::First { id: 4 });
}

// ---------------------------------------------------------- truncations

fn valid_frames() -> Vec<Vec<u8>> {
    let mut frames = vec![
        tcp_v4(b"payload"),
        udp_v4(&[1, 2, 3]),
        tcp_v6(&[]),
        udp_v6(&[0; 5]),
        raw_v4(ip_protocol::SCTP, &[0; 16]),
        raw_v6(ip_protocol::GRE, &[0; 4]),
        v6_chain(
            &[dstopt8(), frag8(0, true, 9), dstopt8()],
            ip_protocol::TCP,
            &{
                let mut t = vec![0u8; 24];
                t[12] = 0x60;
                t
            },
        ),
        v4_fragment(ip_protocol::UDP, &udp_hdr(1, 2, 100), 0, true, 7),
        v4_fragment(ip_protocol::UDP, &[0; 20], 3, false, 7),
    ];
    let mut icmp = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .double_vlan(vid(1), vid(2))
        .ipv4(V4S, V4D, 64)
        .icmpv4_echo_request(1, 2)
        .write(&mut icmp, &[0; 10])
        .unwrap();
    frames.push(icmp);
    let mut padded = udp_v4(&[]);
    padded.resize(64, 0xee);
    frames.push(padded);
    frames
}

#[test]
fn every_truncation_of_valid_frames() {
    for f in valid_frames() {
        assert_prefixes(&f);
    }
}

// ------------------------------------------------------------- proptest

#[derive(Debug, Clone)]
enum L4 {
    Tcp { sport: u16, dport: u16, flags: u8 },
    Udp { sport: u16, dport: u16 },
    Echo { id: u16, seq: u16, reply: bool },
    IcmpOther { ty: u8, code: u8 },
    Other { proto: u8 },
}

fn l4_strategy() -> impl Strategy<Value = L4> {
    prop_oneof![
        (any::<u16>(), any::<u16>(), any::<u8>()).prop_map(|(sport, dport, flags)| L4::Tcp {
            sport,
            dport,
            flags
        }),
        (any::<u16>(), any::<u16>()).prop_map(|(sport, dport)| L4::Udp { sport, dport }),
        (any::<u16>(), any::<u16>(), any::<bool>()).prop_map(|(id, seq, reply)| L4::Echo {
            id,
            seq,
            reply
        }),
        (1u8..=127, any::<u8>()).prop_map(|(ty, code)| L4::IcmpOther { ty, code }),
        prop::sample::select(vec![47u8, 50, 89, 103, 115, 253])
            .prop_map(|proto| L4::Other { proto }),
    ]
}

#[derive(Debug, Clone)]
struct Spec {
    v6: bool,
    vlan: Option<(u16, Option<u16>)>,
    src: [u8; 16],
    dst: [u8; 16],
    ttl: u8,
    l4: L4,
    payload: Vec<u8>,
    pad: usize,
}

fn spec_strategy() -> impl Strategy<Value = Spec> {
    (
        any::<bool>(),
        prop::option::of((0u16..4096, prop::option::of(0u16..4096))),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<u8>(),
        l4_strategy(),
        prop::collection::vec(any::<u8>(), 0..80),
        0usize..24,
    )
        .prop_map(|(v6, vlan, src, dst, ttl, l4, payload, pad)| Spec {
            v6,
            vlan,
            src,
            dst,
            ttl,
            l4,
            payload,
            pad,
        })
}

/// Builds the frame with etherparse and the tuple we expect back.
fn build(spec: &Spec) -> (Vec<u8>, Tuple, u8) {
    use etherparse::PacketBuilderStep;
    let eth = PacketBuilder::ethernet2(MAC_S, MAC_D);
    let (step, vlan): (PacketBuilderStep<IpHeaders>, u32) = {
        let src4: [u8; 4] = spec.src[..4].try_into().unwrap();
        let dst4: [u8; 4] = spec.dst[..4].try_into().unwrap();
        macro_rules! l3 {
            ($b:expr) => {
                if spec.v6 {
                    $b.ipv6(spec.src, spec.dst, spec.ttl)
                } else {
                    $b.ipv4(src4, dst4, spec.ttl)
                }
            };
        }
        match spec.vlan {
            None => (l3!(eth), 0),
            Some((v, None)) => (l3!(eth.single_vlan(vid(v))), u32::from(v)),
            Some((o, Some(i))) => (
                l3!(eth.double_vlan(vid(o), vid(i))),
                1 << 24 | u32::from(o) << 12 | u32::from(i),
            ),
        }
    };
    let (src, dst, family) = if spec.v6 {
        (
            u128::from_be_bytes(spec.src),
            u128::from_be_bytes(spec.dst),
            AddrFamily::V6,
        )
    } else {
        (
            crate::flow::key::v4_bits(spec.src[..4].try_into().unwrap()),
            crate::flow::key::v4_bits(spec.dst[..4].try_into().unwrap()),
            AddrFamily::V4,
        )
    };
    let icmp_proto = if spec.v6 {
        ip_protocol::ICMPV6
    } else {
        ip_protocol::ICMP
    };
    let mut v = Vec::new();
    let (sport, dport, proto, tcp_flags) = match spec.l4 {
        L4::Tcp {
            sport,
            dport,
            flags,
        } => {
            let mut h = TcpHeader::new(sport, dport, 1, 2);
            h.fin = flags & 0x01 != 0;
            h.syn = flags & 0x02 != 0;
            h.rst = flags & 0x04 != 0;
            h.psh = flags & 0x08 != 0;
            h.ack = flags & 0x10 != 0;
            h.urg = flags & 0x20 != 0;
            h.ece = flags & 0x40 != 0;
            h.cwr = flags & 0x80 != 0;
            step.tcp_header(h).write(&mut v, &spec.payload).unwrap();
            (sport, dport, ip_protocol::TCP, flags)
        }
        L4::Udp { sport, dport } => {
            step.udp(sport, dport).write(&mut v, &spec.payload).unwrap();
            (sport, dport, ip_protocol::UDP, 0)
        }
        L4::Echo { id, seq, reply } => {
            match (spec.v6, reply) {
                (false, false) => step
                    .icmpv4_echo_request(id, seq)
                    .write(&mut v, &spec.payload),
                (false, true) => step.icmpv4_echo_reply(id, seq).write(&mut v, &spec.payload),
                (true, false) => step
                    .icmpv6_echo_request(id, seq)
                    .write(&mut v, &spec.payload),
                (true, true) => step.icmpv6_echo_reply(id, seq).write(&mut v, &spec.payload),
            }
            .unwrap();
            (id, id, icmp_proto, 0)
        }
        L4::IcmpOther { ty, code } => {
            // Skip the echo numbers of the family: those are Echo above.
            let ty = if spec.v6 { ty } else { ty.max(9) };
            if spec.v6 {
                step.icmpv6_raw(ty, code, [0; 4])
                    .write(&mut v, &spec.payload)
            } else {
                step.icmpv4_raw(ty, code, [0; 4])
                    .write(&mut v, &spec.payload)
            }
            .unwrap();
            (u16::from(ty) << 8 | u16::from(code), 0, icmp_proto, 0)
        }
        L4::Other { proto } => {
            step.write(&mut v, IpNumber(proto), &spec.payload).unwrap();
            (0, 0, proto, 0)
        }
    };
    v.resize(v.len() + spec.pad, 0);
    let tuple = Tuple {
        src,
        dst,
        sport,
        dport,
        proto,
        family,
        vlan,
    };
    (v, tuple, tcp_flags)
}

#[test]
fn a_frame_in_segments_parses_as_the_whole_once_its_headers_are_in_the_first() {
    let mut frames = valid_frames();
    // Jumbo frames, as they arrive chained over 2048-byte mbufs.
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .ipv4(V4S, V4D, 64)
        .udp(1000, 2000)
        .write(&mut f, &[7; 8972])
        .unwrap();
    frames.push(f);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_S, MAC_D)
        .single_vlan(vid(5))
        .ipv6(V6S, V6D, 64)
        .tcp(1000, 2000, 1, 100)
        .ack(5)
        .write(&mut f, &[8; 5000])
        .unwrap();
    frames.push(f);
    for f in &frames {
        let whole = parse(f);
        assert!(matches!(whole, Parsed::Ip(_)), "{whole:?}");
        let mut since = None;
        for n in 0..=f.len() {
            match parse_segmented(&f[..n], f.len()) {
                r if r == whole => {
                    since.get_or_insert(n);
                }
                Parsed::Malformed(m) => {
                    assert_eq!(since, None, "{m:?} with {n} bytes in the head");
                }
                other => panic!("{n} bytes in the head: {other:?}, not {whole:?}"),
            }
        }
        // A first segment always holds this much.
        assert!(since.unwrap() <= 256, "{since:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..160)) {
        let r = parse(&bytes);
        check_invariants(&bytes, &r);
    }

    #[test]
    fn random_bytes_behind_ip_ethertypes_never_panic(
        et in prop::sample::select(vec![0x0800u16, 0x86dd, 0x8100, 0x88a8, 0x9100]),
        inner in prop::sample::select(vec![0x0800u16, 0x86dd, 0x8100]),
        version in prop::sample::select(vec![0x45u8, 0x46, 0x4f, 0x60, 0x00]),
        proto in prop::sample::select(vec![0u8, 1, 6, 17, 43, 44, 51, 58, 60, 132]),
        tail in prop::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&et.to_be_bytes());
        if crate::wire::ethernet::is_vlan_tpid(et) {
            f.extend_from_slice(&[0, 1]);
            f.extend_from_slice(&inner.to_be_bytes());
        }
        f.push(version);
        f.extend_from_slice(&tail);
        // Point the protocol / next-header byte somewhere interesting.
        let l3 = f.len() - tail.len() - 1;
        if let Some(b) = f.get_mut(l3 + if version >> 4 == 6 { 6 } else { 9 }) {
            *b = proto;
        }
        let r = parse(&f);
        check_invariants(&f, &r);
    }

    #[test]
    fn mutated_valid_frames_never_panic(
        which in 0usize..11,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut f = valid_frames()[which].clone();
        for (at, v) in &flips {
            let i = at.index(f.len());
            f[i] = *v;
        }
        let n = cut.index(f.len() + 1);
        let r = parse(&f[..n]);
        check_invariants(&f[..n], &r);
        let r = parse(&f);
        check_invariants(&f, &r);
    }

    #[test]
    fn etherparse_packets_parse_back(spec in spec_strategy()) {
        let (frame, want, tcp_flags) = build(&spec);
        let p = ip(&frame);
        prop_assert_eq!(p.tuple, want);
        prop_assert_eq!(p.tcp_flags, tcp_flags);
        prop_assert_eq!(p.ttl, spec.ttl);
        prop_assert_eq!(p.fragment, Fragment::None);
        let tags = match spec.vlan { None => 0, Some((_, None)) => 1, Some(_) => 2 };
        prop_assert_eq!(usize::from(p.l3_offset), 14 + 4 * tags);
        let hl = if spec.v6 { 40 } else { 20 };
        prop_assert_eq!(usize::from(p.l4_offset), usize::from(p.l3_offset) + hl);
        prop_assert_eq!(usize::from(p.l3_offset) + usize::from(p.ip_len), frame.len() - spec.pad);

        // Our checksum code agrees with etherparse's.
        let l3 = &frame[usize::from(p.l3_offset)..];
        let l4 = &frame[usize::from(p.l4_offset)..frame.len() - spec.pad];
        let (s4, d4): ([u8; 4], [u8; 4]) = (spec.src[..4].try_into().unwrap(), spec.dst[..4].try_into().unwrap());
        if !spec.v6 {
            prop_assert!(Ipv4Packet::new_checked(l3).unwrap().verify_checksum());
        }
        match (spec.l4, spec.v6) {
            (L4::Tcp { .. }, false) => prop_assert!(TcpPacket::new_checked(l4).unwrap().verify_checksum_v4(s4, d4)),
            (L4::Tcp { .. }, true) => prop_assert!(TcpPacket::new_checked(l4).unwrap().verify_checksum_v6(spec.src, spec.dst)),
            (L4::Udp { .. }, false) => prop_assert!(UdpPacket::new_checked(l4).unwrap().verify_checksum_v4(s4, d4)),
            (L4::Udp { .. }, true) => prop_assert!(UdpPacket::new_checked(l4).unwrap().verify_checksum_v6(spec.src, spec.dst)),
            (L4::Echo { .. } | L4::IcmpOther { .. }, false) => prop_assert!(IcmpPacket::new_checked(l4).unwrap().verify_checksum_v4()),
            (L4::Echo { .. } | L4::IcmpOther { .. }, true) => prop_assert!(IcmpPacket::new_checked(l4).unwrap().verify_checksum_v6(spec.src, spec.dst)),
            (L4::Other { .. }, _) => {}
        }
        // And the whole-sum identity holds for the L4 data itself.
        let _ = checksum::sum(l4);
    }
}
