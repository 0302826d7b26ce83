//! The packet parser: one Ethernet frame in, a [`Parsed`] verdict out.
//!
//! [`parse`] walks Ethernet, up to two VLAN tags, IPv4 or IPv6 (through up to
//! [`MAX_IPV6_EXT_HEADERS`] extension headers) and the TCP, UDP, SCTP or ICMP
//! header, using the views in [`crate::wire`]. It produces the packet-order
//! [`Tuple`] plus the offsets and header fields that later stages (policy,
//! counters, mirroring, rejects) need, so that no later stage re-parses.
//!
//! It runs once per received packet, so it allocates nothing, loops only
//! over VLAN tags (at most 2) and IPv6 extension headers (at most 8), and
//! makes one length check per header. A frame it cannot trust is
//! [`Parsed::Malformed`] with the first [`Malformed`] reason found; the
//! caller counts and drops it. Bytes after the IP packet (Ethernet padding)
//! are ignored.
//!
//! The IPv4 header checksum is verified in software, as conntrack does
//! without offload: 20 bytes already in cache, yet 5 to 10 % of the
//! tracked rate (see [`parse_segmented_but_checksum`]). Ports do not ask
//! the NIC to check it, since the virtual devices cannot, and TCP/UDP
//! checksums are left to the endpoints: verifying them would read every
//! payload byte, which forwarding otherwise never touches.
//!
//! # Fragments
//!
//! Fragmented packets are not reassembled. The first fragment is parsed like
//! a whole packet and must carry the whole L4 header (RFC 8200 and RFC 7112
//! require that for IPv6; RFC 1858 recommends it for IPv4). Later fragments
//! report addresses, protocol and fragment id with ports 0 and `l4_offset`
//! 0, since their L4 header is in another packet.
//!
//! [`Malformed::FragmentOffset`] covers fragment geometry that no honest
//! sender produces:
//! - a first fragment too short for its L4 header (or, IPv6, for the
//!   extension headers after the fragment header): the tiny-fragment attack
//!   of RFC 1858, reported instead of `truncated_tcp` and friends;
//! - an IPv4 TCP fragment at offset 8 bytes (fragment offset 1), which can
//!   only serve to overwrite the TCP flags of the first fragment (RFC 1858);
//! - a fragment whose offset plus length would reassemble to more than
//!   65535 bytes ("ping of death").
//!
//! An IPv6 atomic fragment (fragment header with offset 0 and M clear,
//! RFC 6946) is a whole packet and reports [`Fragment::None`]. Non-final
//! fragments whose length is not a multiple of 8 are not rejected here.
//!
//! In an IPv6 later fragment the reported protocol is the fragment header's
//! next header, i.e. the first header of the fragmentable part: for a
//! packet with destination options after the fragment header that is 60,
//! while its first fragment reports the upper-layer protocol found after
//! them.

use crate::flow::key::{v4_bits, v6_bits};
use crate::flow::{AddrFamily, Tuple};
use crate::wire::ethernet::is_vlan_tpid;
use crate::wire::ipv6::is_extension_header;
use crate::wire::{
    ethertype, ip_protocol, Error, EthernetFrame, IcmpPacket, Ipv4Packet, Ipv6ExtHeader,
    Ipv6FragHeader, Ipv6Packet, SctpPacket, TcpPacket, UdpPacket, VlanTag,
};

/// VLAN tags accepted before the EtherType of the payload (QinQ).
pub const MAX_VLAN_TAGS: usize = 2;

/// IPv6 extension headers walked before giving up on the chain.
pub const MAX_IPV6_EXT_HEADERS: usize = 8;

/// Fragmentation state of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fragment {
    /// Not a fragment (IPv6 atomic fragments included).
    #[default]
    None,
    /// The fragment at offset 0 with more to follow; its L4 header was
    /// parsed.
    First {
        /// IP identification (IPv4: 16 bits, IPv6: 32 bits).
        id: u32,
    },
    /// A fragment at a non-zero offset; it carries no L4 header.
    Later {
        /// IP identification (IPv4: 16 bits, IPv6: 32 bits).
        id: u32,
    },
}

/// What the parser learned from an IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
// repr(C) with the tuple last: the small variants of [`Parsed`] then share
// bytes with the small fields, never with the tuple, which is written and
// read back whole (a tuple assembled from partial stores stalls the loads
// that follow on store forwarding).
#[repr(C)]
pub struct ParsedPacket {
    /// Offset of the IP header in the frame (14, 18 or 22).
    pub l3_offset: u16,
    /// Offset of the upper-layer header in the frame, after IPv4 options or
    /// IPv6 extension headers, for any protocol (known or not). 0 for later
    /// fragments, whose upper-layer header is in another packet.
    pub l4_offset: u16,
    /// Bytes of the IP packet per its header: the IPv4 total length, or 40
    /// plus the IPv6 payload length. The frame holds at least
    /// `l3_offset + ip_len` bytes.
    pub ip_len: u16,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// The 8 TCP flag bits (see [`crate::wire::tcp::flags`]); 0 for other
    /// protocols and for later fragments.
    pub tcp_flags: u8,
    /// Fragmentation state.
    pub fragment: Fragment,
    /// Packet-order addresses, ports, protocol, family and VLAN (see
    /// [`Tuple`] for the ICMP port convention and VLAN encoding). For
    /// IPv6 `proto` is the upper-layer protocol after the extension headers.
    pub tuple: Tuple,
}

/// The parser's verdict on a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parsed {
    /// An IPv4 or IPv6 packet that passed every check.
    Ip(ParsedPacket),
    /// A well-formed frame of another EtherType (ARP, LLDP, an 802.3
    /// length...), after any VLAN tags.
    NotIp {
        /// The EtherType after the VLAN tags.
        ethertype: u16,
    },
    /// A frame that fails a check; the first failure found.
    Malformed(Malformed),
}

/// Why a frame was rejected. The discriminants are dense from 0, so
/// [`index`](Self::index) can address a per-reason counter array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Malformed {
    /// Frame shorter than the 14-byte Ethernet header.
    Runt = 0,
    /// A VLAN TPID is not followed by the 4 bytes of its tag.
    TruncatedVlan,
    /// More than [`MAX_VLAN_TAGS`] VLAN tags.
    TooManyVlanTags,
    /// EtherType IPv4 but fewer than 20 bytes after L2.
    TruncatedIpv4,
    /// EtherType IPv4 but the version nibble is not 4.
    Ipv4BadVersion,
    /// IHL below 5, or the header runs past the end of the frame.
    Ipv4HeaderLength,
    /// Total length below the header length or past the end of the frame.
    Ipv4TotalLength,
    /// The header checksum does not verify (RFC 791): a header damaged on
    /// the way, none of whose fields (addresses, protocol, fragment offset)
    /// can be trusted. RFC 1812 section 5.2.2 has routers discard these.
    Ipv4Checksum,
    /// EtherType IPv6 but fewer than 40 bytes after L2.
    TruncatedIpv6,
    /// EtherType IPv6 but the version nibble is not 6.
    Ipv6BadVersion,
    /// The payload length claims more bytes than the frame holds (or the
    /// packet would end beyond frame offset 65535, past what the `u16`
    /// offsets can express; no Ethernet frame is that long).
    Ipv6PayloadLength,
    /// An extension header runs past the payload, its length field is
    /// invalid (AH shorter than 12 bytes), the chain is longer than
    /// [`MAX_IPV6_EXT_HEADERS`], hop-by-hop options appear anywhere but
    /// first (RFC 8200 section 4.1), or there are two fragment headers.
    Ipv6ExtensionHeader,
    /// Fewer than 20 bytes of IP payload for TCP.
    TruncatedTcp,
    /// TCP data offset below 5, or the header runs past the IP payload.
    TcpDataOffset,
    /// Fewer than 8 bytes of IP payload for UDP.
    TruncatedUdp,
    /// UDP length below 8, or (outside a first fragment) past the IP
    /// payload.
    UdpLength,
    /// Fewer than 12 bytes of IP payload for SCTP.
    TruncatedSctp,
    /// Fewer than 8 bytes of IP payload for ICMP / ICMPv6.
    TruncatedIcmp,
    /// Fragment geometry no honest sender produces: a first fragment too
    /// short for its L4 header, an IPv4 TCP fragment at offset 8, or a
    /// fragment reaching past 65535 bytes (see the module docs).
    FragmentOffset,
}

impl Malformed {
    /// Number of reasons.
    pub const COUNT: usize = 19;

    /// Every reason, in [`index`](Self::index) order.
    pub const ALL: [Malformed; Self::COUNT] = [
        Malformed::Runt,
        Malformed::TruncatedVlan,
        Malformed::TooManyVlanTags,
        Malformed::TruncatedIpv4,
        Malformed::Ipv4BadVersion,
        Malformed::Ipv4HeaderLength,
        Malformed::Ipv4TotalLength,
        Malformed::Ipv4Checksum,
        Malformed::TruncatedIpv6,
        Malformed::Ipv6BadVersion,
        Malformed::Ipv6PayloadLength,
        Malformed::Ipv6ExtensionHeader,
        Malformed::TruncatedTcp,
        Malformed::TcpDataOffset,
        Malformed::TruncatedUdp,
        Malformed::UdpLength,
        Malformed::TruncatedSctp,
        Malformed::TruncatedIcmp,
        Malformed::FragmentOffset,
    ];

    /// Stable snake_case name, for metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Malformed::Runt => "runt",
            Malformed::TruncatedVlan => "truncated_vlan",
            Malformed::TooManyVlanTags => "too_many_vlan_tags",
            Malformed::TruncatedIpv4 => "truncated_ipv4",
            Malformed::Ipv4BadVersion => "ipv4_bad_version",
            Malformed::Ipv4HeaderLength => "ipv4_header_length",
            Malformed::Ipv4TotalLength => "ipv4_total_length",
            Malformed::Ipv4Checksum => "ipv4_checksum",
            Malformed::TruncatedIpv6 => "truncated_ipv6",
            Malformed::Ipv6BadVersion => "ipv6_bad_version",
            Malformed::Ipv6PayloadLength => "ipv6_payload_length",
            Malformed::Ipv6ExtensionHeader => "ipv6_extension_header",
            Malformed::TruncatedTcp => "truncated_tcp",
            Malformed::TcpDataOffset => "tcp_data_offset",
            Malformed::TruncatedUdp => "truncated_udp",
            Malformed::UdpLength => "udp_length",
            Malformed::TruncatedSctp => "truncated_sctp",
            Malformed::TruncatedIcmp => "truncated_icmp",
            Malformed::FragmentOffset => "fragment_offset",
        }
    }

    /// Position in [`ALL`](Self::ALL), for per-reason counter arrays.
    #[inline(always)]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Parses one Ethernet frame.
#[inline(always)]
pub fn parse(frame: &[u8]) -> Parsed {
    parse_segmented(frame, frame.len())
}

/// Parses a `wire_len`-byte Ethernet frame of which `head` is the first
/// part: a chained mbuf's first segment (a jumbo frame in mbufs smaller
/// than it). The headers must be in `head`; the lengths they announce are
/// checked against `wire_len`.
#[inline(always)]
pub fn parse_segmented(head: &[u8], wire_len: usize) -> Parsed {
    match parse_frame::<true>(head, wire_len.saturating_sub(head.len())) {
        Ok(p) => p,
        Err(m) => Parsed::Malformed(m),
    }
}

/// [`parse_segmented`] but for the IPv4 header checksum, which the caller
/// checks with [`ipv4_header_verifies`] before it acts on the packet. The
/// tracker issues a packet's bucket prefetch first, then sums: here,
/// before the hash, the checksum cost 9 % of the forwarding rate at 64K
/// flows; after the prefetch, 5 to 10 % over several runs. A frame also
/// malformed past its IPv4 header is reported with that reason here, where
/// [`parse_segmented`] names the checksum.
#[inline(always)]
pub fn parse_segmented_but_checksum(head: &[u8], wire_len: usize) -> Parsed {
    match parse_frame::<false>(head, wire_len.saturating_sub(head.len())) {
        Ok(p) => p,
        Err(m) => Parsed::Malformed(m),
    }
}

/// Whether the IPv4 header at `l3_offset` of a frame
/// [`parse_segmented_but_checksum`] found to be IPv4 has a checksum that
/// verifies ([`Malformed::Ipv4Checksum`] otherwise).
#[inline(always)]
pub fn ipv4_header_verifies(head: &[u8], l3_offset: u16) -> bool {
    Ipv4Packet::new_unchecked(tail(head, usize::from(l3_offset))).verify_checksum()
}

/// `b[at..]`, or empty if `at` is past the end.
#[inline(always)]
fn tail(b: &[u8], at: usize) -> &[u8] {
    b.get(at..).unwrap_or_default()
}

/// `beyond`: bytes of the frame after `frame` (in later segments).
#[inline(always)]
fn parse_frame<const CHECKSUM: bool>(frame: &[u8], beyond: usize) -> Result<Parsed, Malformed> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| Malformed::Runt)?;
    let mut ethertype = eth.ethertype();
    let mut l3 = EthernetFrame::<&[u8]>::HEADER_LEN;
    let mut vlan = 0u32;
    for tags in 0..=MAX_VLAN_TAGS {
        if !is_vlan_tpid(ethertype) {
            break;
        }
        if tags == MAX_VLAN_TAGS {
            return Err(Malformed::TooManyVlanTags);
        }
        let tag = VlanTag::new_checked(tail(frame, l3)).map_err(|_| Malformed::TruncatedVlan)?;
        let vid = u32::from(tag.vid());
        vlan = if tags == 0 {
            vid
        } else {
            1 << 24 | vlan << 12 | vid
        };
        ethertype = tag.ethertype();
        l3 += VlanTag::<&[u8]>::LEN;
    }
    match ethertype {
        ethertype::IPV4 => parse_ipv4::<CHECKSUM>(frame, beyond, l3, vlan).map(Parsed::Ip),
        ethertype::IPV6 => parse_ipv6(frame, beyond, l3, vlan).map(Parsed::Ip),
        other => Ok(Parsed::NotIp { ethertype: other }),
    }
}

/// Largest IP datagram a reassembly may produce.
const MAX_DATAGRAM: usize = 65535;

#[inline(always)]
fn parse_ipv4<const CHECKSUM: bool>(
    frame: &[u8],
    beyond: usize,
    l3: usize,
    vlan: u32,
) -> Result<ParsedPacket, Malformed> {
    let ip = Ipv4Packet::new_checked_beyond(tail(frame, l3), beyond).map_err(|e| match e {
        Error::Truncated => Malformed::TruncatedIpv4,
        Error::Version => Malformed::Ipv4BadVersion,
        Error::HeaderLength => Malformed::Ipv4HeaderLength,
        Error::Length => Malformed::Ipv4TotalLength,
    })?;
    if CHECKSUM && !ip.verify_checksum() {
        return Err(Malformed::Ipv4Checksum);
    }
    let proto = ip.protocol();
    let mut pkt = ParsedPacket {
        tuple: Tuple {
            src: v4_bits(ip.src_addr()),
            dst: v4_bits(ip.dst_addr()),
            sport: 0,
            dport: 0,
            proto,
            family: AddrFamily::V4,
            vlan,
        },
        l3_offset: l3 as u16,
        l4_offset: 0,
        ip_len: ip.total_len(),
        ttl: ip.ttl(),
        tcp_flags: 0,
        fragment: Fragment::None,
    };
    let offset = ip.frag_offset();
    if offset != 0 || ip.more_frags() {
        let id = u32::from(ip.ident());
        if usize::from(offset) * 8 + usize::from(ip.total_len()) > MAX_DATAGRAM
            || (offset == 1 && proto == ip_protocol::TCP)
        {
            return Err(Malformed::FragmentOffset);
        }
        if offset != 0 {
            pkt.fragment = Fragment::Later { id };
            return Ok(pkt);
        }
        pkt.fragment = Fragment::First { id };
    }
    // What of the payload is past `frame`: the total length is within the
    // frame, so it is the total's part past the head.
    let payload_beyond = (l3 + usize::from(ip.total_len())).saturating_sub(frame.len());
    transport(
        &mut pkt,
        ip.payload(),
        payload_beyond,
        l3 + ip.header_len(),
        ip_protocol::ICMP,
    )?;
    Ok(pkt)
}

#[inline(always)]
fn parse_ipv6(
    frame: &[u8],
    beyond: usize,
    l3: usize,
    vlan: u32,
) -> Result<ParsedPacket, Malformed> {
    let ip = Ipv6Packet::new_checked_beyond(tail(frame, l3), beyond).map_err(|e| match e {
        Error::Truncated => Malformed::TruncatedIpv6,
        Error::Version => Malformed::Ipv6BadVersion,
        Error::HeaderLength | Error::Length => Malformed::Ipv6PayloadLength,
    })?;
    let ip_len = Ipv6Packet::<&[u8]>::HEADER_LEN + usize::from(ip.payload_len());
    if l3 + ip_len > usize::from(u16::MAX) {
        return Err(Malformed::Ipv6PayloadLength);
    }
    let mut pkt = ParsedPacket {
        tuple: Tuple {
            src: v6_bits(ip.src_addr()),
            dst: v6_bits(ip.dst_addr()),
            sport: 0,
            dport: 0,
            proto: 0,
            family: AddrFamily::V6,
            vlan,
        },
        l3_offset: l3 as u16,
        l4_offset: 0,
        ip_len: ip_len as u16,
        ttl: ip.hop_limit(),
        tcp_flags: 0,
        fragment: Fragment::None,
    };

    let payload = ip.payload();
    let payload_beyond = (l3 + ip_len).saturating_sub(frame.len());
    let mut chain = Ipv6Chain::new(payload, ip.next_header());
    loop {
        let at = chain.pos;
        let step = chain.step().map_err(|e| match e {
            // Past a fragment header, a header that does not fit means the
            // first fragment was cut short of the header chain (RFC 7112).
            ChainError::Cut if matches!(pkt.fragment, Fragment::First { .. }) => {
                Malformed::FragmentOffset
            }
            _ => Malformed::Ipv6ExtensionHeader,
        })?;
        let f = match step {
            ChainStep::End => break,
            ChainStep::Header => continue,
            ChainStep::Fragment(f) => f,
        };
        let offset = f.frag_offset();
        if offset != 0 || f.more_frags() {
            let id = f.ident();
            // The reassembled payload: the unfragmentable headers before
            // this one, then this fragment's data at its offset.
            let data_len =
                (payload.len() + payload_beyond).saturating_sub(at + Ipv6FragHeader::<&[u8]>::LEN);
            if at + usize::from(offset) * 8 + data_len > MAX_DATAGRAM {
                return Err(Malformed::FragmentOffset);
            }
            if offset != 0 {
                pkt.tuple.proto = f.next_header();
                pkt.fragment = Fragment::Later { id };
                return Ok(pkt);
            }
            pkt.fragment = Fragment::First { id };
        }
    }
    pkt.tuple.proto = chain.next;
    transport(
        &mut pkt,
        tail(payload, chain.pos),
        payload_beyond,
        l3 + Ipv6Packet::<&[u8]>::HEADER_LEN + chain.pos,
        ip_protocol::ICMPV6,
    )?;
    Ok(pkt)
}

/// A walk along an IPv6 extension header chain, one header per
/// [`step`](Self::step), under the parser's rules: at most
/// [`MAX_IPV6_EXT_HEADERS`] headers, hop-by-hop options only first, one
/// fragment header. Shared with [`quoted_flow`], so that the packet an
/// ICMPv6 error quotes is keyed as the parser keyed its flow.
struct Ipv6Chain<'a> {
    /// The IPv6 payload, or what of it the buffer holds.
    payload: &'a [u8],
    /// The protocol of the header at `pos`; once the walk ends, the
    /// upper-layer protocol.
    next: u8,
    /// Offset of `next`'s header within `payload`.
    pos: usize,
    walked: usize,
    seen_frag: bool,
}

/// What one [`Ipv6Chain::step`] went past.
enum ChainStep<'a> {
    /// Nothing: `next` is no extension header, the chain ends at `pos`.
    End,
    /// A fragment header. The caller judges it: a later fragment's chain
    /// goes on in another packet, so its walk must stop here.
    Fragment(Ipv6FragHeader<&'a [u8]>),
    /// Another extension header.
    Header,
}

/// Why an [`Ipv6Chain`] cannot be walked further.
enum ChainError {
    /// A header runs past the bytes at hand.
    Cut,
    /// More headers than [`MAX_IPV6_EXT_HEADERS`], hop-by-hop options after
    /// the first, a second fragment header, or a length field no header
    /// can have (AH shorter than 12 bytes).
    Invalid,
}

impl<'a> Ipv6Chain<'a> {
    #[inline(always)]
    fn new(payload: &'a [u8], next: u8) -> Self {
        Ipv6Chain {
            payload,
            next,
            pos: 0,
            walked: 0,
            seen_frag: false,
        }
    }

    #[inline(always)]
    fn step(&mut self) -> Result<ChainStep<'a>, ChainError> {
        let next = self.next;
        if !is_extension_header(next) {
            return Ok(ChainStep::End);
        }
        if self.walked == MAX_IPV6_EXT_HEADERS || (next == ip_protocol::HOPOPT && self.walked != 0)
        {
            return Err(ChainError::Invalid);
        }
        self.walked += 1;
        let rest = tail(self.payload, self.pos);
        if next == ip_protocol::IPV6_FRAG {
            let f = Ipv6FragHeader::new_checked(rest).map_err(|_| ChainError::Cut)?;
            if self.seen_frag {
                return Err(ChainError::Invalid);
            }
            self.seen_frag = true;
            self.next = f.next_header();
            self.pos += Ipv6FragHeader::<&[u8]>::LEN;
            Ok(ChainStep::Fragment(f))
        } else {
            let h = Ipv6ExtHeader::new_checked(rest, next).map_err(|_| {
                // An invalid length field is not a cut, fragment or not.
                let h = Ipv6ExtHeader::new_unchecked(rest, next);
                if rest.len() >= Ipv6ExtHeader::<&[u8]>::MIN_LEN && h.header_len() <= rest.len() {
                    ChainError::Invalid
                } else {
                    ChainError::Cut
                }
            })?;
            self.next = h.next_header();
            self.pos += h.header_len();
            Ok(ChainStep::Header)
        }
    }
}

/// Reads the upper-layer header of `pkt.tuple.proto` from `payload` (the IP
/// payload from the upper-layer header on, `beyond` more bytes of it in
/// later segments), found at frame offset `l4`. `icmp` is the ICMP protocol
/// number of the packet's IP version.
#[inline(always)]
fn transport(
    pkt: &mut ParsedPacket,
    payload: &[u8],
    beyond: usize,
    l4: usize,
    icmp: u8,
) -> Result<(), Malformed> {
    pkt.l4_offset = l4 as u16;
    let first = matches!(pkt.fragment, Fragment::First { .. });
    // In a first fragment a header that does not fit is a fragmentation
    // problem (the sender split inside the L4 header), not a cut frame.
    let short = |m: Malformed| if first { Malformed::FragmentOffset } else { m };
    match pkt.tuple.proto {
        ip_protocol::TCP => {
            let tcp = TcpPacket::new_checked(payload).map_err(|e| match e {
                Error::Truncated => short(Malformed::TruncatedTcp),
                // A data offset below 5 is wrong wherever the packet was cut.
                _ if TcpPacket::new_unchecked(payload).header_len()
                    < TcpPacket::<&[u8]>::MIN_HEADER_LEN =>
                {
                    Malformed::TcpDataOffset
                }
                _ => short(Malformed::TcpDataOffset),
            })?;
            pkt.tuple.sport = tcp.src_port();
            pkt.tuple.dport = tcp.dst_port();
            pkt.tcp_flags = tcp.flags();
        }
        ip_protocol::UDP => {
            let udp = if first {
                // The length field counts the whole datagram, most of which
                // is in later fragments: only the header must be here.
                let udp = UdpPacket::new_unchecked(payload);
                if payload.len() < UdpPacket::<&[u8]>::HEADER_LEN {
                    return Err(Malformed::FragmentOffset);
                }
                if usize::from(udp.len()) < UdpPacket::<&[u8]>::HEADER_LEN {
                    return Err(Malformed::UdpLength);
                }
                udp
            } else {
                UdpPacket::new_checked_beyond(payload, beyond).map_err(|e| match e {
                    Error::Truncated => Malformed::TruncatedUdp,
                    _ => Malformed::UdpLength,
                })?
            };
            pkt.tuple.sport = udp.src_port();
            pkt.tuple.dport = udp.dst_port();
        }
        ip_protocol::SCTP => {
            let sctp =
                SctpPacket::new_checked(payload).map_err(|_| short(Malformed::TruncatedSctp))?;
            pkt.tuple.sport = sctp.src_port();
            pkt.tuple.dport = sctp.dst_port();
        }
        p if p == icmp => {
            let msg =
                IcmpPacket::new_checked(payload).map_err(|_| short(Malformed::TruncatedIcmp))?;
            if msg.is_echo(icmp) {
                pkt.tuple.sport = msg.ident();
                pkt.tuple.dport = msg.ident();
            } else {
                pkt.tuple.sport = u16::from(msg.msg_type()) << 8 | u16::from(msg.code());
            }
        }
        // GRE, ESP, no-next-header and the rest: a flow by addresses and
        // protocol alone.
        _ => {}
    }
    Ok(())
}

/// The sequence number of the TCP header the parser found in `frame`;
/// `None` for other protocols and for later fragments, which carry no
/// header.
///
/// Read back from the frame rather than kept in [`ParsedPacket`]: four
/// more bytes there move the tuple to the next 16 and the packet from 64
/// to 80 bytes, returned by every parse (UDP forwarding at 1K flows lost
/// about 3 %).
#[inline(always)]
pub fn tcp_seq(frame: &[u8], pp: &ParsedPacket) -> Option<u32> {
    if pp.tuple.proto != ip_protocol::TCP || pp.l4_offset == 0 {
        return None;
    }
    let at = usize::from(pp.l4_offset);
    let tcp = TcpPacket::new_unchecked(frame.get(at..)?);
    tcp.check_len().ok()?;
    Some(tcp.seq_number())
}

mod quoted;
pub use quoted::{is_icmp_error, quoted_flow};

#[cfg(test)]
mod tests;
