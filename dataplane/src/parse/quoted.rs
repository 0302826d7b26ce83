//! The flow an ICMP error is about: the tuple of the packet it quotes.
//!
//! A router that cannot forward a packet (too big, TTL exceeded, no route)
//! answers its sender with an ICMP error quoting the packet's IP header and
//! at least its first 8 payload bytes (RFC 792, RFC 4443), which hold the
//! ports. The error is no flow of its own: it belongs to the quoted one
//! (conntrack's RELATED), and must get that flow's verdict. Decided as a
//! flow of its own, a policy that passes a TCP port would drop the
//! "fragmentation needed" or "packet too big" its connections depend on
//! for path MTU discovery.

use super::{ChainStep, Ipv6Chain, ParsedPacket};
use crate::flow::key::{v4_bits, v6_bits};
use crate::flow::{AddrFamily, Tuple};
use crate::wire::{ip_protocol, Error, IcmpPacket, Ipv4Packet, Ipv6Packet};

/// ICMPv4 errors that quote a packet: destination unreachable, source
/// quench, redirect, time exceeded, parameter problem.
const ICMP4_ERRORS: [u8; 5] = [3, 4, 5, 11, 12];
/// ICMPv6 errors (types below 128): destination unreachable, packet too
/// big, time exceeded, parameter problem.
const ICMP6_ERRORS: [u8; 4] = [1, 2, 3, 4];

/// Whether a packet of protocol `proto` whose tuple has ports `sport` and
/// `dport` is an ICMP error. As the parser builds the tuple, a message
/// that is not an echo has its type in the high byte of `sport` and a
/// zero `dport`; an echo has its identifier in both, which must not be
/// read as a type (an echo with identifier 0x0303 would otherwise carry
/// a forged quote through as RELATED). By value: the caller's tuple stays
/// in registers.
#[inline(always)]
pub fn is_icmp_error(proto: u8, sport: u16, dport: u16) -> bool {
    let ty = (sport >> 8) as u8;
    match proto {
        ip_protocol::ICMP => dport == 0 && ICMP4_ERRORS.contains(&ty),
        ip_protocol::ICMPV6 => dport == 0 && ICMP6_ERRORS.contains(&ty),
        _ => false,
    }
}

/// The tuple of the packet the ICMP error `pp` (parsed from `frame`, its
/// first segment) quotes, as that packet's sender sent it, keyed as the
/// parser keyed that packet's flow: ports past IPv4 options and IPv6
/// extension headers, none for a protocol without them. `None` when the
/// quote is too short for the headers and ports, is a later fragment, has
/// an extension header chain the parser would refuse, is itself an ICMP
/// message other than an echo (errors are not sent about errors), or was
/// not sent to the quoted packet's sender (as Linux conntrack, which
/// otherwise lets an error about any passing flow through to any host).
#[cold]
#[inline(never)]
pub fn quoted_flow(frame: &[u8], pp: &ParsedPacket) -> Option<Tuple> {
    // The quote follows the error's 8-byte ICMP header, up to the end of
    // the IP packet (or of the first segment).
    let end = (usize::from(pp.l3_offset) + usize::from(pp.ip_len)).min(frame.len());
    let quote = frame.get(usize::from(pp.l4_offset) + 8..end)?;
    let icmp = if pp.tuple.family == AddrFamily::V4 {
        ip_protocol::ICMP
    } else {
        ip_protocol::ICMPV6
    };
    if pp.tuple.proto != icmp {
        return None;
    }
    // Out here, since the upper-layer header returned borrows from them.
    let (ip4, ip6) = (
        Ipv4Packet::new_unchecked(quote),
        Ipv6Packet::new_unchecked(quote),
    );
    // A quote is cut short of the length its header announces
    // (`Error::Length`); every other refusal leaves no header to read.
    let (mut t, l4) = match pp.tuple.family {
        AddrFamily::V4 => {
            if !matches!(ip4.check_len(), Ok(()) | Err(Error::Length)) || ip4.frag_offset() != 0 {
                return None;
            }
            let t = Tuple {
                src: v4_bits(ip4.src_addr()),
                dst: v4_bits(ip4.dst_addr()),
                proto: ip4.protocol(),
                sport: 0,
                dport: 0,
                ..pp.tuple
            };
            (t, ip4.payload())
        }
        AddrFamily::V6 => {
            if !matches!(ip6.check_len(), Ok(()) | Err(Error::Length)) {
                return None;
            }
            let mut chain = Ipv6Chain::new(ip6.payload(), ip6.next_header());
            loop {
                match chain.step().ok()? {
                    ChainStep::End => break,
                    // A later fragment: the ports are in the first.
                    ChainStep::Fragment(f) if f.frag_offset() != 0 => return None,
                    ChainStep::Fragment(_) | ChainStep::Header => {}
                }
            }
            let t = Tuple {
                src: v6_bits(ip6.src_addr()),
                dst: v6_bits(ip6.dst_addr()),
                proto: chain.next,
                sport: 0,
                dport: 0,
                ..pp.tuple
            };
            (t, ip6.payload().get(chain.pos..)?)
        }
        AddrFamily::None => return None,
    };
    if t.src != pp.tuple.dst {
        return None;
    }
    match t.proto {
        // The quote holds the ports, the first 4 bytes of each of these
        // headers, but RFC 792 promises only 8 bytes: not a whole TCP or
        // SCTP header.
        ip_protocol::TCP | ip_protocol::UDP | ip_protocol::SCTP => {
            let ports = l4.get(..4)?;
            t.sport = u16::from_be_bytes([ports[0], ports[1]]);
            t.dport = u16::from_be_bytes([ports[2], ports[3]]);
        }
        p if p == icmp => {
            let msg = IcmpPacket::new_checked(l4).ok()?;
            // An echo that went astray: its identifier is both ports.
            if !msg.is_echo(icmp) {
                return None;
            }
            t.sport = msg.ident();
            t.dport = t.sport;
        }
        // GRE, ESP, no next header and the rest: the parser keys their
        // flows by addresses and protocol alone.
        _ => {}
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::tests::{dstopt8, frag8, udp_hdr, v6_chain, V6D, V6S};
    use crate::parse::{parse, Parsed};
    use etherparse::icmpv4::DestUnreachableHeader;
    use etherparse::icmpv6::TimeExceededCode;
    use etherparse::{
        Icmpv4Type, Icmpv6Type, IpAuthHeader, IpFragOffset, IpHeaders, IpNumber, Ipv6Extensions,
        Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader, Ipv6RoutingExtensions, PacketBuilder,
    };

    const CLIENT: [u8; 4] = [10, 0, 0, 1];
    const SERVER: [u8; 4] = [192, 0, 2, 1];

    /// An ICMPv4 port unreachable from the server to the client, quoting
    /// `quote`.
    fn error(quote: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv4(SERVER, CLIENT, 64)
            .icmpv4(Icmpv4Type::DestinationUnreachable(
                DestUnreachableHeader::Port,
            ))
            .write(&mut v, quote)
            .unwrap();
        v
    }

    fn quoted(frame: &[u8]) -> Option<Tuple> {
        let Parsed::Ip(pp) = parse(frame) else {
            panic!("{frame:?}")
        };
        assert!(is_icmp_error(
            pp.tuple.proto,
            pp.tuple.sport,
            pp.tuple.dport
        ));
        quoted_flow(frame, &pp)
    }

    #[test]
    fn the_quote_names_the_flow_as_its_sender_sent_it() {
        let mut udp = Vec::new();
        PacketBuilder::ipv4(CLIENT, SERVER, 64)
            .udp(5353, 53)
            .write(&mut udp, b"query")
            .unwrap();
        let t = quoted(&error(&udp[..28])).unwrap();
        assert_eq!(
            (t.src, t.dst, t.sport, t.dport, t.proto),
            (v4_bits(CLIENT), v4_bits(SERVER), 5353, 53, 17)
        );
        // An echo request that went astray: its identifier.
        let mut echo = Vec::new();
        PacketBuilder::ipv4(CLIENT, SERVER, 64)
            .icmpv4_echo_request(0x4242, 1)
            .write(&mut echo, &[])
            .unwrap();
        let t = quoted(&error(&echo)).unwrap();
        assert_eq!((t.sport, t.dport, t.proto), (0x4242, 0x4242, 1));
        // GRE: no ports, as the parser keys its flows.
        let mut gre = Vec::new();
        PacketBuilder::ipv4(CLIENT, SERVER, 64)
            .write(&mut gre, IpNumber(ip_protocol::GRE), &[0; 16])
            .unwrap();
        let t = quoted(&error(&gre[..28])).unwrap();
        assert_eq!(
            (t.src, t.dst, t.sport, t.dport, t.proto),
            (v4_bits(CLIENT), v4_bits(SERVER), 0, 0, ip_protocol::GRE)
        );
    }

    #[test]
    fn quotes_that_name_no_flow() {
        let mut udp = Vec::new();
        PacketBuilder::ipv4(CLIENT, SERVER, 64)
            .udp(5353, 53)
            .write(&mut udp, b"query")
            .unwrap();
        // Too short for the ports, or for the IP header.
        assert_eq!(quoted(&error(&udp[..23])), None);
        assert_eq!(quoted(&error(&udp[..19])), None);
        // A later fragment: no ports in it.
        let mut later = udp.clone();
        later[6..8].copy_from_slice(&3u16.to_be_bytes());
        assert_eq!(quoted(&error(&later[..28])), None);
        // Not IPv4 inside.
        let mut v6 = udp.clone();
        v6[0] = 0x65;
        assert_eq!(quoted(&error(&v6[..28])), None);
        // An error about an error.
        let inner = error(&udp[..28]);
        assert_eq!(quoted(&error(&inner[14..14 + 28])), None);
        // An error sent to another host than the quoted packet's sender.
        let mut astray = Vec::new();
        PacketBuilder::ipv4(SERVER, CLIENT, 64)
            .udp(53, 5353)
            .write(&mut astray, b"answer")
            .unwrap();
        assert_eq!(quoted(&error(&astray[..28])), None);
    }

    #[test]
    fn an_echo_is_never_an_error_whatever_its_identifier() {
        // Identifier 0x0303 puts "destination unreachable" in the byte an
        // error's type takes; the payload is a quote naming a flow.
        let mut udp = Vec::new();
        PacketBuilder::ipv4(CLIENT, SERVER, 64)
            .udp(5353, 53)
            .write(&mut udp, b"query")
            .unwrap();
        for (ident, v6) in [
            (0x0303, false),
            (0x0b00, false),
            (0x0101, true),
            (0x0400, true),
        ] {
            let mut v = Vec::new();
            let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1]);
            if v6 {
                b.ipv6(
                    [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                    [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                    64,
                )
                .icmpv6_echo_request(ident, 1)
                .write(&mut v, &udp[..28])
                .unwrap();
            } else {
                b.ipv4(SERVER, CLIENT, 64)
                    .icmpv4_echo_request(ident, 1)
                    .write(&mut v, &udp[..28])
                    .unwrap();
            }
            let Parsed::Ip(pp) = parse(&v) else {
                panic!("{v:?}")
            };
            assert_eq!((pp.tuple.sport, pp.tuple.dport), (ident, ident));
            assert!(!is_icmp_error(
                pp.tuple.proto,
                pp.tuple.sport,
                pp.tuple.dport
            ));
        }
        // The same type byte in a real error is one.
        let Parsed::Ip(pp) = parse(&error(&udp[..28])) else {
            panic!()
        };
        assert!(is_icmp_error(
            pp.tuple.proto,
            pp.tuple.sport,
            pp.tuple.dport
        ));
    }

    /// An ICMPv6 error of type `ty` from `V6D` to `V6S`, quoting `quote`.
    fn error6(ty: Icmpv6Type, quote: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv6(V6D, V6S, 64)
            .icmpv6(ty)
            .write(&mut v, quote)
            .unwrap();
        v
    }

    /// A frame from `V6S` to `V6D` behind the extension headers `exts`:
    /// UDP 5353 to 53, or TCP 40000 to 443.
    fn behind(exts: Ipv6Extensions, tcp: bool) -> Vec<u8> {
        let hdr = Ipv6Header {
            hop_limit: 64,
            source: V6S,
            destination: V6D,
            ..Default::default()
        };
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ip(IpHeaders::Ipv6(hdr, exts));
        let mut v = Vec::new();
        if tcp {
            b.tcp(40000, 443, 1, 1024).ack(1).write(&mut v, &[0; 64])
        } else {
            b.udp(5353, 53).write(&mut v, &[0; 64])
        }
        .unwrap();
        v
    }

    fn parsed(frame: &[u8]) -> ParsedPacket {
        let Parsed::Ip(pp) = parse(frame) else {
            panic!("{frame:?}")
        };
        pp
    }

    /// The tuple the parser gives the frame's own flow.
    fn flow(frame: &[u8]) -> Tuple {
        parsed(frame).tuple
    }

    fn frag_header(offset: u16, more: bool) -> Ipv6FragmentHeader {
        let offset = IpFragOffset::try_new(offset).unwrap();
        Ipv6FragmentHeader::new(IpNumber(0), offset, more, 0xfeed)
    }

    fn padn(len8: usize) -> Ipv6RawExtHeader {
        let mut body = vec![0u8; len8 * 8 - 2];
        body[0] = 1;
        body[1] = (body.len() - 2) as u8;
        Ipv6RawExtHeader::new_raw(IpNumber(0), &body).unwrap()
    }

    #[test]
    fn ipv6_quotes_are_read_past_extension_headers() {
        let packet_too_big = Icmpv6Type::PacketTooBig { mtu: 1280 };
        // Reassembly timed out: the destination quotes the first fragment,
        // whose fragment header comes before the ports.
        let first = behind(
            Ipv6Extensions {
                fragment: Some(frag_header(0, true)),
                ..Default::default()
            },
            false,
        );
        let reassembly = Icmpv6Type::TimeExceeded(TimeExceededCode::FragmentReassemblyTimeExceeded);
        let t = quoted(&error6(reassembly, &first[14..])).unwrap();
        assert_eq!(t, flow(&first));
        assert_eq!((t.sport, t.dport, t.proto), (5353, 53, 17));
        // Too big, about a TCP segment with destination options.
        let opts = behind(
            Ipv6Extensions {
                destination_options: Some(padn(2)),
                ..Default::default()
            },
            true,
        );
        let t = quoted(&error6(packet_too_big, &opts[14..])).unwrap();
        assert_eq!(t, flow(&opts));
        assert_eq!((t.sport, t.dport, t.proto), (40000, 443, 6));
        // Every kind the parser walks, the quote ending 8 bytes into the
        // UDP header.
        let all = behind(
            Ipv6Extensions {
                hop_by_hop_options: Some(padn(1)),
                destination_options: Some(padn(1)),
                routing: Some(Ipv6RoutingExtensions {
                    routing: Ipv6RawExtHeader::new_raw(IpNumber(0), &[4, 0, 0, 0, 0, 0]).unwrap(),
                    final_destination_options: Some(padn(3)),
                }),
                fragment: Some(frag_header(0, true)),
                auth: Some(IpAuthHeader::new(IpNumber(0), 1, 2, &[0; 4]).unwrap()),
            },
            false,
        );
        let l4 = usize::from(parsed(&all).l4_offset);
        let t = quoted(&error6(packet_too_big, &all[14..l4 + 8])).unwrap();
        assert_eq!(t, flow(&all));
        // No ports, as the parser keys them: by addresses and protocol.
        for last in [ip_protocol::ESP, ip_protocol::IPV6_NONXT] {
            let portless = v6_chain(&[dstopt8()], last, &[0; 16]);
            let t = quoted(&error6(packet_too_big, &portless[14..])).unwrap();
            assert_eq!(t, flow(&portless));
            assert_eq!((t.sport, t.dport, t.proto), (0, 0, last));
        }
    }

    #[test]
    fn ipv6_quotes_whose_extension_headers_name_no_flow() {
        let ty = Icmpv6Type::PacketTooBig { mtu: 1280 };
        let udp = udp_hdr(5353, 53, 8);
        // A later fragment: its ports are in the first.
        let later = v6_chain(&[frag8(9, true, 7)], ip_protocol::UDP, &udp);
        assert_eq!(quoted(&error6(ty, &later[14..])), None);
        let later = v6_chain(&[dstopt8(), frag8(9, false, 7)], ip_protocol::UDP, &udp);
        assert_eq!(quoted(&error6(ty, &later[14..])), None);
        // Cut inside the chain (10 of the destination options' 16 bytes),
        // or between the chain and the ports.
        let opts = behind(
            Ipv6Extensions {
                destination_options: Some(padn(2)),
                ..Default::default()
            },
            false,
        );
        assert_eq!(quoted(&error6(ty, &opts[14..14 + 50])), None);
        assert_eq!(quoted(&error6(ty, &opts[14..14 + 58])), None);
        assert!(quoted(&error6(ty, &opts[14..14 + 60])).is_some());
        // Longer than the parser walks: nine headers.
        let nine = v6_chain(&vec![dstopt8(); 9], ip_protocol::UDP, &udp);
        assert_eq!(quoted(&error6(ty, &nine[14..])), None);
        let eight = v6_chain(&vec![dstopt8(); 8], ip_protocol::UDP, &udp);
        assert_eq!(quoted(&error6(ty, &eight[14..])), Some(flow(&eight)));
        // An error about an error, behind a header.
        let inner = error6(ty, &udp);
        let about_error = v6_chain(&[dstopt8()], ip_protocol::ICMPV6, &inner[54..]);
        assert_eq!(quoted(&error6(ty, &about_error[14..])), None);
    }
}
