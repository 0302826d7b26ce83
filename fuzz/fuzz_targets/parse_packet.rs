//! Fuzzes the packet parser: any byte string is a frame. Beyond "no panic",
//! a successful parse must describe the frame consistently.
//!
//! Run from the workspace root (cargo-fuzz wants nightly flags; on the
//! stable toolchain RUSTC_BOOTSTRAP=1 unlocks them). New inputs go to the
//! first corpus directory, so keep the committed seeds in the second:
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 RUSTFLAGS="-C target-cpu=x86-64-v2" \
//!     cargo fuzz run parse_packet /tmp/parse_corpus fuzz/corpus/parse_packet \
//!     -- -max_total_time=600
//! ```

#![no_main]

use flowgate_dataplane::flow::AddrFamily;
use flowgate_dataplane::parse::{
    ipv4_header_verifies, is_icmp_error, parse, parse_segmented_but_checksum, quoted_flow, tcp_seq,
    Fragment, Malformed, Parsed,
};
use flowgate_dataplane::wire::{ip_protocol, IcmpPacket, SctpPacket, TcpPacket, UdpPacket};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    // What the tracker parses: all but the IPv4 header checksum, so random
    // bytes reach the transport and fragment checks (1 in 65535 would
    // pass the checksum); `parse` is that plus the checksum.
    let parsed = parse_segmented_but_checksum(frame, frame.len());
    let full = parse(frame);
    match parsed {
        Parsed::Ip(p) if p.tuple.family == AddrFamily::V4 => {
            if ipv4_header_verifies(frame, p.l3_offset) {
                assert_eq!(full, parsed);
            } else {
                assert_eq!(full, Parsed::Malformed(Malformed::Ipv4Checksum));
            }
        }
        // Malformed past the IPv4 header: `parse` may have stopped at the
        // checksum first.
        _ => assert!(
            full == parsed || full == Parsed::Malformed(Malformed::Ipv4Checksum),
            "{full:?} against {parsed:?}"
        ),
    }
    // The frame split over two segments (a chained mbuf, the cut taken
    // from the first byte): an error when the cut is inside the headers,
    // else exactly the whole frame's parse, never something else.
    if let Some((&b, _)) = frame.split_first() {
        let cut = usize::from(b).min(frame.len());
        match parse_segmented_but_checksum(&frame[..cut], frame.len()) {
            Parsed::Malformed(_) => {}
            head => assert_eq!(head, parsed, "head of {cut} bytes"),
        }
    }
    match parsed {
        Parsed::Ip(p) => {
            let l3 = usize::from(p.l3_offset);
            let l4 = usize::from(p.l4_offset);
            let end = l3 + usize::from(p.ip_len);
            assert!(matches!(l3, 14 | 18 | 22), "l3 {l3}");
            assert!(
                end <= frame.len(),
                "ip end {end} past frame {}",
                frame.len()
            );
            let min_ip = match p.tuple.family {
                AddrFamily::V4 => 20,
                AddrFamily::V6 => 40,
                AddrFamily::None => panic!("family none"),
            };
            assert!(usize::from(p.ip_len) >= min_ip);
            if p.tuple.family == AddrFamily::V4 {
                assert_eq!(p.tuple.src << 32, 0, "IPv4 lives in the top 32 bits");
                assert_eq!(p.tuple.dst << 32, 0, "IPv4 lives in the top 32 bits");
            }
            if let Fragment::Later { .. } = p.fragment {
                assert_eq!(l4, 0);
                assert_eq!((p.tuple.sport, p.tuple.dport, p.tcp_flags), (0, 0, 0));
                assert_eq!(tcp_seq(frame, &p), None);
            } else {
                assert!(l4 > l3 && l4 <= end, "l3 {l3} l4 {l4} end {end}");
            }
            if p.tuple.proto != ip_protocol::TCP {
                assert_eq!((p.tcp_flags, tcp_seq(frame, &p)), (0, None));
            }
            if p.tuple.vlan >> 24 == 0 {
                assert!(p.tuple.vlan < 4096);
            } else {
                assert_eq!(p.tuple.vlan >> 24, 1);
            }

            // The L4 header the parser read really is at l4_offset.
            if l4 != 0 {
                let seg = &frame[l4..end];
                match p.tuple.proto {
                    ip_protocol::TCP => {
                        let t = TcpPacket::new_checked(seg).expect("tcp header");
                        assert_eq!((t.src_port(), t.dst_port()), (p.tuple.sport, p.tuple.dport));
                        assert_eq!(t.flags(), p.tcp_flags);
                        assert_eq!(tcp_seq(frame, &p), Some(t.seq_number()));
                    }
                    ip_protocol::UDP => {
                        let u = UdpPacket::new_unchecked(seg);
                        assert!(seg.len() >= 8);
                        assert_eq!((u.src_port(), u.dst_port()), (p.tuple.sport, p.tuple.dport));
                    }
                    ip_protocol::SCTP => {
                        let s = SctpPacket::new_checked(seg).expect("sctp header");
                        assert_eq!((s.src_port(), s.dst_port()), (p.tuple.sport, p.tuple.dport));
                    }
                    ip_protocol::ICMP | ip_protocol::ICMPV6 => {
                        // Only the family's own ICMP is parsed; the other is
                        // an opaque protocol with ports 0.
                        let own = (p.tuple.proto == ip_protocol::ICMP)
                            == (p.tuple.family == AddrFamily::V4);
                        if own {
                            assert!(IcmpPacket::new_checked(seg).is_ok());
                        } else {
                            assert_eq!((p.tuple.sport, p.tuple.dport), (0, 0));
                        }
                    }
                    _ => assert_eq!((p.tuple.sport, p.tuple.dport), (0, 0)),
                }
            }

            // An ICMP error's quote is attacker bytes walked a second time
            // (IPv6 extension headers included): what it names is a flow
            // of the error's family and VLAN, sent by the error's
            // destination.
            if is_icmp_error(p.tuple.proto, p.tuple.sport, p.tuple.dport) {
                if let Some(q) = quoted_flow(frame, &p) {
                    assert_eq!((q.family, q.vlan), (p.tuple.family, p.tuple.vlan));
                    assert_eq!(q.src, p.tuple.dst);
                }
            }

            // Bytes after the IP packet are padding: cutting them changes
            // nothing.
            assert_eq!(parse_segmented_but_checksum(&frame[..end], end), parsed);
        }
        Parsed::NotIp { ethertype } => {
            assert!(!matches!(
                ethertype,
                0x0800 | 0x86dd | 0x8100 | 0x88a8 | 0x9100
            ));
        }
        Parsed::Malformed(m) => {
            assert_eq!(Malformed::ALL[m.index()], m);
            assert!(!m.name().is_empty());
        }
    }
});
