//! Answers to rejected packets: a TCP RST for TCP, an ICMP or ICMPv6 port
//! unreachable for anything else, sent back out of the ingress port.
//!
//! The answer mirrors the offending frame's layer 2 (MACs swapped, VLAN tags
//! kept) so it reaches the sender on the same segment. Following RFC 793,
//! the RST acknowledges exactly what the segment occupied, or takes its
//! sequence number from the segment's ACK. Following RFC 1122 / 4443, no
//! answer goes to an ICMP error, a RST, a non-first fragment, or a packet
//! from or to a multicast or broadcast address (MAC or IP), or from an
//! unspecified or loopback one: an answer to a group destination reaches
//! every member (and would leave with the group address as its source).
//! The caller then just drops the packet.

use crate::parse::{parse_segmented, Fragment, Parsed, ParsedPacket};
use crate::wire::icmp::IcmpPacket;
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::Ipv6Packet;
use crate::wire::tcp::{flags as tcpf, TcpPacket};

/// How many answers a worker sends: at most `rate` a second on average,
/// `burst` at once. RFC 4443 §2.4(f) requires ICMPv6 errors to be
/// rate-limited; the limit covers RSTs and ICMPv4 too, so that a flood of
/// rejected packets (with spoofed sources, say) is not answered at its own
/// rate. A generic cell rate: each answer moves a theoretical arrival time
/// `interval` on, and one is refused while that time is more than the
/// burst ahead of the clock. Nothing to refill, no division per packet.
#[derive(Debug, Clone)]
pub struct AnswerLimit {
    /// TSC ticks per answer (0: no limit).
    interval: u64,
    /// How far ahead of the clock the arrival time may run.
    window: u64,
    /// The theoretical arrival time of the next answer.
    next: u64,
}

impl AnswerLimit {
    /// `rate` answers a second (0: no limit), `burst` at once (at least 1),
    /// on a clock of `tsc_hz` ticks a second.
    pub fn new(rate: u32, burst: u32, tsc_hz: u64) -> AnswerLimit {
        let interval = if rate == 0 {
            0
        } else {
            (tsc_hz / u64::from(rate)).max(1)
        };
        AnswerLimit {
            interval,
            window: interval * u64::from(burst.max(1) - 1),
            next: 0,
        }
    }

    /// Whether an answer may go at TSC `now`, without counting one.
    #[inline]
    pub fn has_room(&self, now: u64) -> bool {
        self.interval == 0 || self.next.max(now) - now <= self.window
    }

    /// Whether an answer may go at TSC `now`; if so it is counted.
    #[inline]
    pub fn admit(&mut self, now: u64) -> bool {
        if !self.has_room(now) {
            return false;
        }
        if self.interval != 0 {
            self.next = self.next.max(now) + self.interval;
        }
        true
    }
}

/// The largest answer: an ICMPv6 error is kept within the IPv6 minimum MTU
/// (1280) after the Ethernet header and two VLAN tags.
pub const MAX_REPLY: usize = 22 + 1280;

const TTL: u8 = 64;

/// `::1`.
const LOOPBACK_V6: [u8; 16] = {
    let mut a = [0; 16];
    a[15] = 1;
    a
};

/// Writes the answer to `frame` into `out`; returns its length, or `None`
/// when no answer is due or none fits.
///
/// `frame` is the first `frame.len()` bytes of a `wire_len`-byte frame (the
/// first segment of a chained mbuf): the answer needs only the headers and
/// what it quotes, which a first segment holds. The answer is kept within
/// `out` (at most [`MAX_REPLY`] is used): an ICMPv6 error quotes less of
/// the packet when one mbuf holds less than the IPv6 minimum MTU.
pub fn build(frame: &[u8], wire_len: usize, out: &mut [u8]) -> Option<usize> {
    let Parsed::Ip(p) = parse_segmented(frame, wire_len) else {
        return None;
    };
    if matches!(p.fragment, Fragment::Later { .. }) {
        return None;
    }
    let l3 = p.l3_offset as usize;
    // Never answer from or to a group address (the I/G bit of either MAC).
    if frame[0] & 1 != 0 || frame[6] & 1 != 0 {
        return None;
    }
    let room = out.len().min(MAX_REPLY);
    let out = &mut out[..room];
    // Layer 2: swap the MACs, keep the tags and EtherType.
    out.get_mut(..l3)?.copy_from_slice(&frame[..l3]);
    out[..6].copy_from_slice(&frame[6..12]);
    out[6..12].copy_from_slice(&frame[..6]);
    let v6 = p.tuple.family == crate::flow::AddrFamily::V6;
    let ip_hdr = if v6 { 40 } else { 20 };
    let l4 = l3 + ip_hdr;
    if out.len() < l4 {
        return None;
    }
    let l4_len = if p.tuple.proto == 6 {
        tcp_rst(frame, &p, &mut out[l4..])?
    } else {
        icmp_unreachable(frame, &p, &mut out[l4..])?
    };
    let total = ip_hdr + l4_len;
    // The parse above checked the offending packet's IP header.
    if v6 {
        let orig = Ipv6Packet::new_unchecked(&frame[l3..]);
        let (s, d) = (orig.src_addr(), orig.dst_addr());
        if s[0] == 0xff || d[0] == 0xff || s == [0; 16] || s == LOOPBACK_V6 {
            return None;
        }
        let mut ip = Ipv6Packet::new_unchecked(&mut out[l3..l3 + total]);
        ip.set_version(6);
        ip.set_traffic_class(0);
        ip.set_flow_label(0);
        ip.set_payload_len(l4_len as u16);
        ip.set_next_header(if p.tuple.proto == 6 { 6 } else { 58 });
        ip.set_hop_limit(TTL);
        ip.set_src_addr(d);
        ip.set_dst_addr(s);
        if p.tuple.proto == 6 {
            TcpPacket::new_unchecked(&mut out[l4..l4 + l4_len]).fill_checksum_v6(d, s);
        } else {
            IcmpPacket::new_unchecked(&mut out[l4..l4 + l4_len]).fill_checksum_v6(d, s);
        }
    } else {
        let orig = Ipv4Packet::new_unchecked(&frame[l3..]);
        let (s, d) = (orig.src_addr(), orig.dst_addr());
        // 224/4 multicast and 240/4 (with the limited broadcast) either way;
        // 0/8 and 127/8 are no sender to answer.
        if s[0] >= 224 || d[0] >= 224 || s[0] == 0 || s[0] == 127 {
            return None;
        }
        let mut ip = Ipv4Packet::new_unchecked(&mut out[l3..l3 + total]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_dscp(0);
        ip.set_ecn(0);
        ip.set_total_len(total as u16);
        ip.set_ident(0);
        ip.set_dont_frag(true);
        ip.set_more_frags(false);
        ip.set_frag_offset(0);
        ip.set_ttl(TTL);
        ip.set_protocol(if p.tuple.proto == 6 { 6 } else { 1 });
        ip.set_src_addr(d);
        ip.set_dst_addr(s);
        ip.fill_checksum();
        if p.tuple.proto == 6 {
            TcpPacket::new_unchecked(&mut out[l4..l4 + l4_len]).fill_checksum_v4(d, s);
        } else {
            IcmpPacket::new_unchecked(&mut out[l4..l4 + l4_len]).fill_checksum_v4();
        }
    }
    Some(l3 + total)
}

/// The IP packet of `p` in `frame`, or its part there when the frame
/// goes on in later segments.
fn ip_packet<'a>(frame: &'a [u8], p: &ParsedPacket) -> &'a [u8] {
    let l3 = usize::from(p.l3_offset);
    &frame[l3..(l3 + usize::from(p.ip_len)).min(frame.len())]
}

/// The RST for a TCP segment (20-byte header, checksum filled by the caller).
fn tcp_rst(frame: &[u8], p: &ParsedPacket, out: &mut [u8]) -> Option<usize> {
    let seg =
        TcpPacket::new_checked(&ip_packet(frame, p)[p.l4_offset as usize - p.l3_offset as usize..])
            .ok()?;
    if seg.has_flags(tcpf::RST) {
        return None;
    }
    let mut rst = TcpPacket::new_unchecked(out.get_mut(..20)?);
    rst.set_src_port(seg.dst_port());
    rst.set_dst_port(seg.src_port());
    rst.set_header_len(20);
    rst.set_window(0);
    rst.set_urgent(0);
    rst.set_checksum(0);
    if seg.has_flags(tcpf::ACK) {
        rst.set_seq_number(seg.ack_number());
        rst.set_ack_number(0);
        rst.set_flags(tcpf::RST);
    } else {
        // The whole segment's data, not the part in the first mbuf.
        let data =
            usize::from(p.ip_len) - (usize::from(p.l4_offset - p.l3_offset) + seg.header_len());
        let occupied =
            data as u32 + seg.has_flags(tcpf::SYN) as u32 + seg.has_flags(tcpf::FIN) as u32;
        rst.set_seq_number(0);
        rst.set_ack_number(seg.seq_number().wrapping_add(occupied));
        rst.set_flags(tcpf::RST | tcpf::ACK);
    }
    Some(20)
}

/// An ICMP(v6) port unreachable quoting the offending packet.
fn icmp_unreachable(frame: &[u8], p: &ParsedPacket, out: &mut [u8]) -> Option<usize> {
    let v6 = p.tuple.family == crate::flow::AddrFamily::V6;
    let l3 = p.l3_offset as usize;
    let ip = ip_packet(frame, p);
    // No error about an error: only echo messages among ICMP may be answered.
    if (p.tuple.proto == 1 && !v6) || (p.tuple.proto == 58 && v6) {
        let icmp = IcmpPacket::new_checked(&ip[p.l4_offset as usize - l3..]).ok()?;
        if !icmp.is_echo(p.tuple.proto) {
            return None;
        }
    }
    // RFC 792: the IP header and 8 bytes; RFC 4443: as much as fits in
    // 1280 (and in `out`).
    let quote = if v6 {
        ip.len().min(1280 - 40 - 8).min(out.len().saturating_sub(8))
    } else {
        ip.len().min((p.l4_offset as usize - l3) + 8)
    };
    let len = 8 + quote;
    out.get_mut(8..len)?.copy_from_slice(&ip[..quote]);
    let mut icmp = IcmpPacket::new_unchecked(&mut out[..len]);
    if v6 {
        icmp.set_msg_type(1); // destination unreachable
        icmp.set_code(4); // port unreachable
    } else {
        icmp.set_msg_type(3); // destination unreachable
        icmp.set_code(3); // port unreachable
    }
    icmp.set_rest_of_header(0);
    icmp.set_checksum(0);
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn answer(frame: &[u8]) -> Option<Vec<u8>> {
        let mut out = [0u8; MAX_REPLY];
        build(frame, frame.len(), &mut out).map(|n| out[..n].to_vec())
    }

    fn check_ip(reply: &[u8]) -> etherparse::SlicedPacket<'_> {
        etherparse::SlicedPacket::from_ethernet(reply).expect("answer parses")
    }

    /// A UDP datagram over IPv6 with `payload` bytes.
    fn udp6(payload: usize) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(A, B)
            .ipv6([0xfd; 16], [0x20; 16], 64)
            .udp(5000, 53)
            .write(&mut f, &vec![2; payload])
            .unwrap();
        f
    }

    /// The ICMPv6 message of an answer, its checksum checked: (type, code,
    /// quoted bytes, the IPv6 payload length).
    fn icmpv6(r: &[u8]) -> (u8, u8, Vec<u8>, u16) {
        let s = check_ip(r);
        let Some(etherparse::TransportSlice::Icmpv6(i)) = &s.transport else {
            panic!("{:?}", s.transport)
        };
        let Some(etherparse::NetSlice::Ipv6(ip)) = &s.net else {
            panic!()
        };
        let h = ip.header().to_header();
        assert_eq!(
            i.icmp_type()
                .calc_checksum(h.source, h.destination, i.payload())
                .unwrap(),
            i.checksum()
        );
        (
            i.type_u8(),
            i.code_u8(),
            i.payload().to_vec(),
            h.payload_length,
        )
    }

    #[test]
    fn answers_keep_to_the_rate_after_a_burst() {
        // A clock of 1000 ticks a second, 10 answers a second, 3 at once.
        let mut l = AnswerLimit::new(10, 3, 1000);
        let admitted =
            |l: &mut AnswerLimit, now: u64, n: usize| (0..n).filter(|_| l.admit(now)).count();
        assert_eq!(admitted(&mut l, 5000, 10), 3, "the burst");
        assert_eq!(admitted(&mut l, 5050, 10), 0, "half an interval later");
        // Asking whether there is room takes none.
        assert!((0..10).all(|_| l.has_room(5100)));
        assert!(!l.has_room(5099));
        assert_eq!(admitted(&mut l, 5100, 10), 1, "one interval later");
        assert_eq!(admitted(&mut l, 7000, 10), 3, "idle: the whole burst again");
        // Over a second of steady offers, the rate.
        let mut l = AnswerLimit::new(10, 3, 1000);
        let sent = (0..1000u64).filter(|t| l.admit(10_000 + t)).count();
        assert_eq!(sent, 3 + 9);
        // 0: no limit; a burst of 0 is 1.
        let mut l = AnswerLimit::new(0, 0, 1000);
        assert_eq!(admitted(&mut l, 0, 100), 100);
        let mut l = AnswerLimit::new(10, 0, 1000);
        assert_eq!(admitted(&mut l, 0, 100), 1);
    }

    #[test]
    fn a_frame_in_segments_gets_the_answer_the_whole_frame_gets() {
        let mut syn = Vec::new();
        PacketBuilder::ethernet2(A, B)
            .ipv4([10, 0, 0, 1], [192, 0, 2, 1], 64)
            .tcp(40000, 22, 1000, 64240)
            .syn()
            .write(&mut syn, &[3; 8000])
            .unwrap();
        let udp6 = udp6(7000);
        let mut ping = Vec::new();
        PacketBuilder::ethernet2(A, B)
            .ipv4([10, 0, 0, 1], [192, 0, 2, 1], 64)
            .icmpv4_echo_request(9, 1)
            .write(&mut ping, &[1; 8000])
            .unwrap();
        for f in [syn, udp6, ping] {
            let whole = answer(&f).expect("an answer");
            // The first segment of a chain from 2048-byte mbufs.
            let mut out = [0u8; MAX_REPLY];
            let n = build(&f[..2048], f.len(), &mut out).expect("an answer from the head");
            assert_eq!(&out[..n], &whole[..]);
        }
    }

    #[test]
    fn rst_answers_a_syn() {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(A, B)
            .ipv4([10, 0, 0, 1], [192, 0, 2, 1], 64)
            .tcp(40000, 22, 1000, 64240)
            .syn()
            .write(&mut f, &[])
            .unwrap();
        let r = answer(&f).expect("a RST");
        assert_eq!(&r[..6], &A, "back to the sender");
        let s = check_ip(&r);
        let Some(etherparse::NetSlice::Ipv4(ip)) = &s.net else {
            panic!()
        };
        assert_eq!(ip.header().source(), [192, 0, 2, 1]);
        assert_eq!(ip.header().destination(), [10, 0, 0, 1]);
        let Some(etherparse::TransportSlice::Tcp(t)) = &s.transport else {
            panic!()
        };
        assert!(t.rst() && t.ack() && !t.syn());
        assert_eq!((t.source_port(), t.destination_port()), (22, 40000));
        assert_eq!(t.acknowledgment_number(), 1001, "SYN occupies one");
        let ipv4 = etherparse::Ipv4HeaderSlice::from_slice(&r[14..])
            .unwrap()
            .to_header();
        assert_eq!(
            t.to_header().calc_checksum_ipv4(&ipv4, &[]).unwrap(),
            t.checksum()
        );
        assert_eq!(ipv4.header_checksum, ipv4.calc_header_checksum());
    }

    #[test]
    fn rst_to_an_ack_takes_its_sequence() {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(A, B)
            .single_vlan(7.try_into().unwrap())
            .ipv6([0xfd; 16], [0x20; 16], 64)
            .tcp(40000, 80, 5, 100)
            .ack(777)
            .write(&mut f, b"data")
            .unwrap();
        let r = answer(&f).expect("a RST");
        let s = check_ip(&r);
        assert!(s.vlan().is_some(), "tags kept");
        let Some(etherparse::TransportSlice::Tcp(t)) = &s.transport else {
            panic!()
        };
        assert!(t.rst() && !t.ack());
        assert_eq!(t.sequence_number(), 777);
        let Some(etherparse::NetSlice::Ipv6(ip)) = &s.net else {
            panic!()
        };
        let h = ip.header().to_header();
        assert_eq!(h.source, [0x20; 16]);
        assert_eq!(
            t.to_header().calc_checksum_ipv6(&h, &[]).unwrap(),
            t.checksum()
        );
    }

    #[test]
    fn icmp_port_unreachable_for_udp_v4_and_v6() {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(A, B)
            .ipv4([10, 0, 0, 1], [192, 0, 2, 1], 64)
            .udp(5000, 53)
            .write(&mut f, &[1; 40])
            .unwrap();
        let r = answer(&f).expect("ICMP");
        let s = check_ip(&r);
        let Some(etherparse::TransportSlice::Icmpv4(i)) = &s.transport else {
            panic!("{:?}", s.transport)
        };
        assert_eq!((i.type_u8(), i.code_u8()), (3, 3));
        assert_eq!(&i.payload()[..20], &f[14..34], "quotes the IP header");
        assert_eq!(i.payload().len(), 28, "header + 8 bytes");
        assert_eq!(
            etherparse::checksum::Sum16BitWords::new()
                .add_slice(&r[34..])
                .ones_complement(),
            0
        );

        let f = udp6(2000);
        let r = answer(&f).expect("ICMPv6");
        assert_eq!(r.len() - 14, 1280, "as much as fits in the minimum MTU");
        let (kind, code, quote, _) = icmpv6(&r);
        assert_eq!((kind, code), (1, 4));
        assert_eq!(quote, &f[14..14 + 1280 - 48]);
    }

    #[test]
    fn an_icmpv6_error_quotes_what_one_small_mbuf_holds() {
        let f = udp6(2000);
        // The smallest mbuf the config allows holds 256 bytes.
        let mut out = [0u8; 256];
        let n = build(&f, f.len(), &mut out).expect("an answer that fits");
        assert_eq!(n, 256);
        let (kind, code, quote, payload_len) = icmpv6(&out[..n]);
        assert_eq!((kind, code), (1, 4));
        assert_eq!(quote, &f[14..14 + 256 - 14 - 48], "the packet's start");
        assert_eq!(usize::from(payload_len), 256 - 14 - 40);
        // A RST and an ICMP error fit in any room the config allows; below
        // the headers, no answer.
        assert!(build(&f, f.len(), &mut [0u8; 60]).is_none());
    }

    #[test]
    fn no_answer_to_errors_resets_fragments_or_multicast() {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(A, B)
            .ipv4([10, 0, 0, 1], [192, 0, 2, 1], 64)
            .tcp(1, 2, 3, 4)
            .rst()
            .write(&mut f, &[])
            .unwrap();
        assert!(answer(&f).is_none(), "RST");
        let mut f = Vec::new();
        PacketBuilder::ethernet2(A, B)
            .ipv4([10, 0, 0, 1], [192, 0, 2, 1], 64)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Port,
            ))
            .write(&mut f, &[0; 28])
            .unwrap();
        assert!(answer(&f).is_none(), "ICMP error");
        let mut f = Vec::new();
        PacketBuilder::ethernet2(A, B)
            .ipv4([10, 0, 0, 1], [192, 0, 2, 1], 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut f, &[0; 8])
            .unwrap();
        assert!(answer(&f).is_some(), "echo is answered");
        let mut f = Vec::new();
        PacketBuilder::ethernet2([1, 0, 0x5e, 0, 0, 1], B)
            .ipv4([10, 0, 0, 1], [192, 0, 2, 1], 64)
            .udp(1, 2)
            .write(&mut f, &[0; 8])
            .unwrap();
        assert!(answer(&f).is_none(), "group source MAC");
        // etherparse takes (source, destination).
        for (dst_mac, dst_ip, what) in [
            (B, [224, 0, 0, 251], "multicast destination (mDNS)"),
            (B, [255, 255, 255, 255], "limited broadcast"),
            ([0xff; 6], [192, 0, 2, 255], "broadcast MAC"),
            (
                [1, 0, 0x5e, 0, 0, 0xfb],
                [192, 0, 2, 1],
                "group destination MAC",
            ),
        ] {
            let mut f = Vec::new();
            PacketBuilder::ethernet2(A, dst_mac)
                .ipv4([10, 0, 0, 1], dst_ip, 64)
                .udp(5353, 5353)
                .write(&mut f, &[0; 8])
                .unwrap();
            assert!(answer(&f).is_none(), "{what}");
        }
        for (src, what) in [
            ([127, 0, 0, 1], "loopback source"),
            ([0, 0, 0, 0], "unspecified source"),
        ] {
            let mut f = Vec::new();
            PacketBuilder::ethernet2(A, B)
                .ipv4(src, [192, 0, 2, 1], 64)
                .udp(1, 2)
                .write(&mut f, &[0; 8])
                .unwrap();
            assert!(answer(&f).is_none(), "{what}");
        }
        let mdns6 = {
            let mut d = [0u8; 16];
            d[0] = 0xff;
            d[1] = 0x02;
            d[15] = 0xfb;
            d
        };
        let host6 = {
            let mut a = [0u8; 16];
            a[0] = 0x20;
            a[1] = 0x01;
            a[15] = 1;
            a
        };
        for (src, dst, what) in [
            (host6, mdns6, "IPv6 multicast destination"),
            ([0; 16], host6, "IPv6 unspecified source"),
            (LOOPBACK_V6, host6, "IPv6 loopback source"),
        ] {
            let mut f = Vec::new();
            PacketBuilder::ethernet2(A, B)
                .ipv6(src, dst, 64)
                .udp(5353, 5353)
                .write(&mut f, &[0; 8])
                .unwrap();
            assert!(answer(&f).is_none(), "{what}");
        }
        let mut f = Vec::new();
        PacketBuilder::ethernet2(A, B)
            .ipv6(
                host6,
                {
                    let mut d = host6;
                    d[15] = 2;
                    d
                },
                64,
            )
            .udp(5353, 5353)
            .write(&mut f, &[0; 8])
            .unwrap();
        assert!(answer(&f).is_some(), "IPv6 unicast is answered");
        assert!(answer(&[0u8; 10]).is_none(), "runt");
    }
}
