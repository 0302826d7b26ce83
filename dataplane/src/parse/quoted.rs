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

use super::ParsedPacket;
use crate::flow::key::{v4_bits, v6_bits};
use crate::flow::{AddrFamily, Tuple};
use crate::wire::ip_protocol;

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
/// first segment) quotes, as that packet's sender sent it; `None` when the
/// quote is too short to name ports, is a later fragment, names a protocol
/// without ports behind IPv6 extension headers, is itself an ICMP
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
    let (mut t, l4) = match pp.tuple.family {
        AddrFamily::V4 => {
            let h = quote.get(..20)?;
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let later_fragment = u16::from_be_bytes([h[6], h[7]]) & 0x1fff != 0;
            if h[0] >> 4 != 4 || ihl < 20 || later_fragment {
                return None;
            }
            let t = Tuple {
                src: v4_bits(h[12..16].try_into().ok()?),
                dst: v4_bits(h[16..20].try_into().ok()?),
                proto: h[9],
                ..pp.tuple
            };
            (t, quote.get(ihl..)?)
        }
        AddrFamily::V6 => {
            let h = quote.get(..40)?;
            if h[0] >> 4 != 6 {
                return None;
            }
            let t = Tuple {
                src: v6_bits(h[8..24].try_into().ok()?),
                dst: v6_bits(h[24..40].try_into().ok()?),
                proto: h[6],
                ..pp.tuple
            };
            (t, &quote[40..])
        }
        AddrFamily::None => return None,
    };
    if t.src != pp.tuple.dst {
        return None;
    }
    let ports = l4.get(..4)?;
    let (first, second) = (
        u16::from_be_bytes([ports[0], ports[1]]),
        u16::from_be_bytes([ports[2], ports[3]]),
    );
    match t.proto {
        ip_protocol::TCP | ip_protocol::UDP | ip_protocol::SCTP => {
            t.sport = first;
            t.dport = second;
        }
        // An echo that went astray: its identifier is both ports.
        p if (p == ip_protocol::ICMP && matches!(ports[0], 0 | 8))
            || (p == ip_protocol::ICMPV6 && matches!(ports[0], 128 | 129)) =>
        {
            let ident = l4.get(4..6)?;
            t.sport = u16::from_be_bytes([ident[0], ident[1]]);
            t.dport = t.sport;
        }
        _ => return None,
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse, Parsed};
    use etherparse::icmpv4::DestUnreachableHeader;
    use etherparse::{Icmpv4Type, PacketBuilder};

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
}
