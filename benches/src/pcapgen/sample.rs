//! The `sample` capture: a small, deterministic pcap that exercises a
//! stateful appliance — TCP sessions with every kind of close, IPv6, UDP
//! request/response, ICMP/ICMPv6 echo, 802.1Q and QinQ tagged flows, SCTP,
//! IPv4 fragments and ARP. Each conversation is built on its own with
//! realistic sequence numbers; the conversations are then interleaved
//! round-robin (keeping each one's order) and stamped 2 ms apart from
//! 2024-01-01 00:00:00 UTC.
//!
//! Addresses: "inside" hosts are 10.0.0.0/24 and fd00::/64 with MACs
//! 02:00:0a:…/02:00:fd:…; "outside" hosts are the documentation ranges
//! 192.0.2.0/24, 198.51.100.0/24 and 2001:db8::/64, all behind one outside
//! router MAC 02:00:c0:00:02:01. Frames shorter than 60 bytes are zero-padded
//! to the Ethernet minimum, as on the wire.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use etherparse::{
    ArpHardwareId, ArpOperation, ArpPacket, EtherType, IpNumber, PacketBuilder, TcpHeader,
    TcpOptionElement,
};

use super::frame::{crc32c, ip_builder, pad_to_min, Host, IpParams, Tags};
use super::writer::{PcapOut, EPOCH_2024};
use super::Result;

/// Time between consecutive frames of the sample.
pub const STEP: Duration = Duration::from_millis(2);

/// MAC of the router behind which every outside address sits.
const OUTSIDE_ROUTER_MAC: [u8; 6] = [0x02, 0x00, 0xc0, 0x00, 0x02, 0x01];
/// TTL / hop limit of packets sent by inside hosts (adjacent).
const TTL_INSIDE: u8 = 64;
/// TTL / hop limit of packets from outside hosts, a few hops away.
const TTL_OUTSIDE: u8 = 57;

/// One conversation's frames, in order.
type Conv = Vec<Vec<u8>>;

fn inside4(last: u8) -> Host {
    Host::new(
        [0x02, 0x00, 0x0a, 0x00, 0x00, last],
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
    )
}

fn outside4(a: u8, b: u8, c: u8, d: u8) -> Host {
    Host::new(OUTSIDE_ROUTER_MAC, IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
}

fn inside6(last: u16) -> Host {
    let [hi, lo] = last.to_be_bytes();
    Host::new(
        [0x02, 0x00, 0xfd, 0x00, hi, lo],
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, last)),
    )
}

fn outside6(last: u16) -> Host {
    Host::new(
        OUTSIDE_ROUTER_MAC,
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last)),
    )
}

/// Writes the sample capture to `path`; returns the number of frames.
pub fn write_sample(path: &Path) -> Result<u64> {
    let frames = build()?;
    let mut out = PcapOut::create(path, EPOCH_2024, STEP)?;
    for f in &frames {
        out.push(f)?;
    }
    out.finish()
}

/// All frames of the sample, in capture order.
pub fn build() -> Result<Vec<Vec<u8>>> {
    let convs = conversations()?;
    Ok(interleave(convs))
}

/// Round-robin merge: first frame of every conversation, then every second
/// frame, and so on. Each conversation keeps its own order.
fn interleave(convs: Vec<Conv>) -> Vec<Vec<u8>> {
    let total = convs.iter().map(Vec::len).sum();
    let mut iters: Vec<_> = convs.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        for it in &mut iters {
            if let Some(f) = it.next() {
                out.push(f);
            }
        }
    }
    out
}

fn conversations() -> Result<Vec<Conv>> {
    let mut convs = vec![arp()?];

    // 1. IPv4 HTTP, client closes first, four-way FIN/ACK close.
    let mut s = TcpSession::new(
        inside4(10),
        outside4(192, 0, 2, 10),
        40001,
        80,
        Tags::None,
        0x1a2b_3c4d,
        0x8f00_0001,
    );
    s.handshake()?;
    s.send(Side::Client, &http_get("www.example.com", "/index.html"))?;
    s.send(Side::Server, &http_ok(&body(120)))?;
    s.ack(Side::Client)?;
    s.close_four_way(Side::Client)?;
    convs.push(s.frames);

    // 2. IPv4 HTTP, two-segment response, server closes first (FIN, FIN+ACK, ACK).
    let mut s = TcpSession::new(
        inside4(11),
        outside4(192, 0, 2, 11),
        40002,
        80,
        Tags::None,
        0x0000_2710,
        // Close below 2^32: the server's sequence numbers wrap mid-response.
        0xffff_ff00,
    );
    s.handshake()?;
    s.send(Side::Client, &http_get("files.example.com", "/blob.txt"))?;
    s.send(Side::Server, &http_ok(&body(2000)))?;
    s.ack(Side::Client)?;
    s.close_three_way(Side::Server)?;
    convs.push(s.frames);

    // 3. IPv4 HTTP on 8080, aborted by the client with RST.
    let mut s = TcpSession::new(
        inside4(12),
        outside4(198, 51, 100, 20),
        40003,
        8080,
        Tags::None,
        0x3c3c_0000,
        0x7777_1234,
    );
    s.handshake()?;
    s.send(Side::Client, &http_get("proxy.example.net", "/"))?;
    s.send(Side::Server, &http_ok(&body(64)))?;
    s.reset(Side::Client)?;
    convs.push(s.frames);

    // 4. IPv4 TCP echo, simultaneous close.
    let mut s = TcpSession::new(
        inside4(13),
        outside4(198, 51, 100, 21),
        40004,
        7,
        Tags::None,
        0x0bad_cafe,
        0x600d_f00d,
    );
    s.handshake()?;
    s.send(Side::Client, b"hello, flowgate\n")?;
    s.send(Side::Server, b"hello, flowgate\n")?;
    s.ack(Side::Client)?;
    s.close_simultaneous()?;
    convs.push(s.frames);

    // 5. IPv4 TCP connection refused: SYN answered by RST+ACK.
    let mut s = TcpSession::new(
        inside4(14),
        outside4(192, 0, 2, 14),
        40005,
        23,
        Tags::None,
        0x5151_5151,
        0,
    );
    s.syn()?;
    s.refuse()?;
    convs.push(s.frames);

    // 6. IPv6 HTTP, full handshake, data, FIN close.
    let mut s = TcpSession::new(
        inside6(0x10),
        outside6(0x10),
        40010,
        80,
        Tags::None,
        0x6666_0000,
        0x9999_0000,
    );
    s.handshake()?;
    s.send(Side::Client, &http_get("v6.example.com", "/"))?;
    s.send(Side::Server, &http_ok(&body(300)))?;
    s.ack(Side::Client)?;
    s.close_three_way(Side::Client)?;
    convs.push(s.frames);

    // 7-10. UDP request/response: DNS and echo, IPv4 and IPv6.
    convs.push(udp_exchange(
        &inside4(15),
        &outside4(192, 0, 2, 53),
        (53000, 53),
        Tags::None,
        &dns_query(0x1001, "www.example.com", DNS_A),
        &dns_response(0x1001, "www.example.com", DNS_A, &[192, 0, 2, 80]),
    )?);
    convs.push(udp_exchange(
        &inside4(15),
        &outside4(192, 0, 2, 7),
        (41000, 7),
        Tags::None,
        b"flowgate udp echo v4",
        b"flowgate udp echo v4",
    )?);
    convs.push(udp_exchange(
        &inside6(0x11),
        &outside6(0x53),
        (53001, 53),
        Tags::None,
        &dns_query(0x1002, "www.example.com", DNS_AAAA),
        &dns_response(
            0x1002,
            "www.example.com",
            DNS_AAAA,
            &Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x80).octets(),
        ),
    )?);
    convs.push(udp_exchange(
        &inside6(0x11),
        &outside6(0x7),
        (41001, 7),
        Tags::None,
        b"flowgate udp echo v6",
        b"flowgate udp echo v6",
    )?);

    // 11-12. ICMP echo (v4) and ICMPv6 echo, two pings each.
    convs.push(ping(&inside4(10), &outside4(192, 0, 2, 1), 0x0100)?);
    convs.push(ping(&inside6(0x10), &outside6(0x1), 0x0200)?);

    // 13-14. The same TCP 5-tuple on VLAN 100 and then on VLAN 200: two
    // distinct flows. They share one interleaving slot, so the VLAN 200
    // session starts once the VLAN 100 one has closed: tshark 4.0 keys TCP
    // conversations without the VLAN and would garble overlapping sessions.
    let mut vlan_conv = Conv::new();
    for (vid, isn_c, isn_s) in [
        (100, 0x1000_0100, 0x2000_0100),
        (200, 0x1000_0200, 0x2000_0200),
    ] {
        let mut s = TcpSession::new(
            inside4(20),
            outside4(192, 0, 2, 20),
            40020,
            80,
            Tags::Dot1q(vid),
            isn_c,
            isn_s,
        );
        s.handshake()?;
        s.send(Side::Client, &http_get("tenant.example.com", "/"))?;
        s.send(Side::Server, &http_ok(&body(80 + usize::from(vid))))?;
        s.ack(Side::Client)?;
        s.close_three_way(Side::Client)?;
        vlan_conv.extend(s.frames);
    }
    convs.push(vlan_conv);

    // 15. QinQ (0x88a8 outer 300, 0x8100 inner 30): a DNS exchange.
    convs.push(udp_exchange(
        &inside4(20),
        &outside4(192, 0, 2, 53),
        (53020, 53),
        Tags::QinQ {
            outer: 300,
            inner: 30,
        },
        &dns_query(0x1003, "qinq.example.com", DNS_A),
        &dns_response(0x1003, "qinq.example.com", DNS_A, &[192, 0, 2, 81]),
    )?);

    // 16. SCTP INIT / INIT-ACK.
    convs.push(sctp_init_pair(&inside4(17), &outside4(192, 0, 2, 17))?);

    // 17. A fragmented UDP echo: request in order, reply's fragments reversed.
    convs.push(fragmented_udp_echo(
        &inside4(16),
        &outside4(192, 0, 2, 16),
        (40040, 7),
        2000,
    )?);

    Ok(convs)
}

// ---------------------------------------------------------------- TCP ----

/// Which end of a TCP session sends a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Client = 0,
    Server = 1,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// TCP control flags of one segment.
#[derive(Clone, Copy, Default)]
struct Flags {
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
    psh: bool,
}

const ACK: Flags = Flags {
    syn: false,
    ack: true,
    fin: false,
    rst: false,
    psh: false,
};

/// A TCP session between an inside client and an outside server that keeps
/// both ends' sequence numbers, windows and IP ids consistent.
struct TcpSession {
    hosts: [Host; 2],
    ports: [u16; 2],
    tags: Tags,
    /// Next sequence number each side will send.
    next: [u32; 2],
    /// Advertised (already scaled-down) window of each side.
    win: [u16; 2],
    ip_id: [u16; 2],
    mss: u16,
    frames: Conv,
}

impl TcpSession {
    fn new(
        client: Host,
        server: Host,
        cport: u16,
        sport: u16,
        tags: Tags,
        isn_c: u32,
        isn_s: u32,
    ) -> Self {
        let mss = if client.ip.is_ipv4() { 1460 } else { 1440 };
        TcpSession {
            hosts: [client, server],
            ports: [cport, sport],
            tags,
            next: [isn_c, isn_s],
            // Linux's initial windows before scaling is agreed.
            win: [64240, 65160],
            ip_id: [isn_c as u16 | 1, (isn_s >> 16) as u16 | 1],
            mss,
            frames: Vec::new(),
        }
    }

    /// Emits one segment from `from`. The ACK number is what `from` has
    /// received so far unless `ack_override` says otherwise.
    fn segment(
        &mut self,
        from: Side,
        f: Flags,
        ack_override: Option<u32>,
        data: &[u8],
    ) -> Result<()> {
        let (s, d) = (from as usize, from.other() as usize);
        let mut h = TcpHeader::new(self.ports[s], self.ports[d], self.next[s], self.win[s]);
        h.syn = f.syn;
        h.fin = f.fin;
        h.rst = f.rst;
        h.psh = f.psh;
        if f.ack {
            h.ack = true;
            h.acknowledgment_number = ack_override.unwrap_or(self.next[d]);
        }
        if f.syn {
            h.set_options(&[
                TcpOptionElement::MaximumSegmentSize(self.mss),
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(7),
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::SelectiveAcknowledgementPermitted,
            ])?;
        }
        let ttl = if from == Side::Client {
            TTL_INSIDE
        } else {
            TTL_OUTSIDE
        };
        let mut p = IpParams::new(ttl, self.ip_id[s], true);
        p.flow_label = 0x1_0000 * (s as u32 + 1) + u32::from(self.ports[0]);
        self.ip_id[s] = self.ip_id[s].wrapping_add(1);
        let b = ip_builder(&self.hosts[s], &self.hosts[d], self.tags, p).tcp_header(h);
        let mut v = Vec::with_capacity(b.size(data.len()));
        b.write(&mut v, data)?;
        pad_to_min(&mut v);
        self.frames.push(v);
        let len = data.len() as u32 + u32::from(f.syn) + u32::from(f.fin);
        self.next[s] = self.next[s].wrapping_add(len);
        Ok(())
    }

    fn syn(&mut self) -> Result<()> {
        let f = Flags {
            syn: true,
            ..Flags::default()
        };
        self.segment(Side::Client, f, None, &[])
    }

    /// SYN, SYN+ACK, ACK; windows are scaled (shift 7) from then on.
    fn handshake(&mut self) -> Result<()> {
        self.syn()?;
        let f = Flags {
            syn: true,
            ack: true,
            ..Flags::default()
        };
        self.segment(Side::Server, f, None, &[])?;
        self.win = [502, 509];
        self.ack(Side::Client)
    }

    /// Sends `data` in MSS-sized segments, PSH on the last one.
    fn send(&mut self, from: Side, data: &[u8]) -> Result<()> {
        let chunks: Vec<&[u8]> = data.chunks(usize::from(self.mss)).collect();
        let last = chunks.len() - 1;
        for (i, c) in chunks.into_iter().enumerate() {
            let f = Flags {
                psh: i == last,
                ..ACK
            };
            self.segment(from, f, None, c)?;
        }
        Ok(())
    }

    fn ack(&mut self, from: Side) -> Result<()> {
        self.segment(from, ACK, None, &[])
    }

    fn fin(&mut self, from: Side, ack_override: Option<u32>) -> Result<()> {
        let f = Flags { fin: true, ..ACK };
        self.segment(from, f, ack_override, &[])
    }

    /// FIN, ACK, FIN, ACK.
    fn close_four_way(&mut self, first: Side) -> Result<()> {
        self.fin(first, None)?;
        self.ack(first.other())?;
        self.fin(first.other(), None)?;
        self.ack(first)
    }

    /// FIN, FIN+ACK, ACK.
    fn close_three_way(&mut self, first: Side) -> Result<()> {
        self.fin(first, None)?;
        self.fin(first.other(), None)?;
        self.ack(first)
    }

    /// Both FINs cross on the wire (each acks only the other's data), then
    /// each side acks the other's FIN.
    fn close_simultaneous(&mut self) -> Result<()> {
        let client_before_fin = self.next[Side::Client as usize];
        self.fin(Side::Client, None)?;
        self.fin(Side::Server, Some(client_before_fin))?;
        self.ack(Side::Client)?;
        self.ack(Side::Server)
    }

    /// RST+ACK from `from`, aborting the session.
    fn reset(&mut self, from: Side) -> Result<()> {
        let f = Flags { rst: true, ..ACK };
        self.segment(from, f, None, &[])
    }

    /// The server answers the SYN with RST+ACK (port closed): seq 0, ack ISN+1.
    fn refuse(&mut self) -> Result<()> {
        self.next[Side::Server as usize] = 0;
        self.win[Side::Server as usize] = 0;
        self.reset(Side::Server)
    }
}

fn http_get(host: &str, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: flowgate-pcapgen\r\nAccept: */*\r\n\r\n"
    )
    .into_bytes()
}

fn http_ok(body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

/// `len` bytes of numbered text lines.
fn body(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 64);
    let mut n = 0;
    while v.len() < len {
        n += 1;
        v.extend_from_slice(format!("line {n:04}: flowgate sample capture\n").as_bytes());
    }
    v.truncate(len);
    v
}

// ----------------------------------------------------- UDP, ICMP, DNS ----

fn ttl_of(h: &Host) -> u8 {
    if h.mac == OUTSIDE_ROUTER_MAC {
        TTL_OUTSIDE
    } else {
        TTL_INSIDE
    }
}

fn udp_frame(
    src: &Host,
    dst: &Host,
    (sport, dport): (u16, u16),
    tags: Tags,
    ip_id: u16,
    payload: &[u8],
) -> Result<Vec<u8>> {
    let b = ip_builder(src, dst, tags, IpParams::new(ttl_of(src), ip_id, false)).udp(sport, dport);
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload)?;
    pad_to_min(&mut v);
    Ok(v)
}

/// A request from `client` and the server's response (ports swapped).
fn udp_exchange(
    client: &Host,
    server: &Host,
    (cport, sport): (u16, u16),
    tags: Tags,
    request: &[u8],
    response: &[u8],
) -> Result<Conv> {
    Ok(vec![
        udp_frame(client, server, (cport, sport), tags, cport, request)?,
        udp_frame(
            server,
            client,
            (sport, cport),
            tags,
            cport ^ 0x5a5a,
            response,
        )?,
    ])
}

const DNS_A: u16 = 1;
const DNS_AAAA: u16 = 28;

fn dns_question(v: &mut Vec<u8>, name: &str, qtype: u16) {
    for label in name.split('.') {
        v.push(label.len() as u8);
        v.extend_from_slice(label.as_bytes());
    }
    v.push(0);
    v.extend_from_slice(&qtype.to_be_bytes());
    v.extend_from_slice(&1u16.to_be_bytes()); // class IN
}

/// A recursive query for `name`.
fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    v.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // 1 question
    dns_question(&mut v, name, qtype);
    v
}

/// The answer to `dns_query(id, name, qtype)` with one record `rdata`.
fn dns_response(id: u16, name: &str, qtype: u16, rdata: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(96);
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&0x8180u16.to_be_bytes()); // QR, RD, RA, NOERROR
    v.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0]); // 1 question, 1 answer
    dns_question(&mut v, name, qtype);
    v.extend_from_slice(&[0xc0, 0x0c]); // name: pointer to the question
    v.extend_from_slice(&qtype.to_be_bytes());
    v.extend_from_slice(&1u16.to_be_bytes()); // class IN
    v.extend_from_slice(&300u32.to_be_bytes()); // TTL
    v.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    v.extend_from_slice(rdata);
    v
}

/// Two echo requests and their replies, with a 56-byte payload like ping's.
fn ping(client: &Host, server: &Host, id: u16) -> Result<Conv> {
    let payload: Vec<u8> = (0x10u8..0x48).collect();
    let mut conv = Vec::new();
    for seq in 1..=2u16 {
        for (src, dst, request) in [(client, server, true), (server, client, false)] {
            let ip_id = id.wrapping_add(seq * 2 + u16::from(!request));
            let p = IpParams::new(ttl_of(src), ip_id, true);
            let b = ip_builder(src, dst, Tags::None, p);
            let mut v = Vec::with_capacity(128);
            match (src.ip.is_ipv4(), request) {
                (true, true) => b.icmpv4_echo_request(id, seq).write(&mut v, &payload)?,
                (true, false) => b.icmpv4_echo_reply(id, seq).write(&mut v, &payload)?,
                (false, true) => b.icmpv6_echo_request(id, seq).write(&mut v, &payload)?,
                (false, false) => b.icmpv6_echo_reply(id, seq).write(&mut v, &payload)?,
            }
            conv.push(v);
        }
    }
    Ok(conv)
}

// ------------------------------------------------------- ARP, SCTP ----

/// "Who has 10.0.0.1? Tell 10.0.0.10" and the gateway's reply.
fn arp() -> Result<Conv> {
    let host = inside4(10);
    let gw_mac = OUTSIDE_ROUTER_MAC;
    let host_ip = [10, 0, 0, 10];
    let gw_ip = [10, 0, 0, 1];
    let mut conv = Vec::new();
    for (src, dst, op, target_mac) in [
        (host.mac, [0xff; 6], ArpOperation::REQUEST, [0u8; 6]),
        (gw_mac, host.mac, ArpOperation::REPLY, host.mac),
    ] {
        let (sender_ip, target_ip) = if op == ArpOperation::REQUEST {
            (host_ip, gw_ip)
        } else {
            (gw_ip, host_ip)
        };
        let arp = ArpPacket::new(
            ArpHardwareId::ETHERNET,
            EtherType::IPV4,
            op,
            &src,
            &sender_ip,
            &target_mac,
            &target_ip,
        )?;
        let b = PacketBuilder::ethernet2(src, dst).arp(arp);
        let mut v = Vec::with_capacity(b.size());
        b.write(&mut v)?;
        pad_to_min(&mut v);
        conv.push(v);
    }
    Ok(conv)
}

/// SCTP common header + chunks, with the CRC32C filled in.
fn sctp_packet(sport: u16, dport: u16, vtag: u32, chunks: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + chunks.len());
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&vtag.to_be_bytes());
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(chunks);
    // RFC 9260 appendix A: the CRC32C goes in least significant byte first.
    let crc = crc32c(&v);
    v[8..12].copy_from_slice(&crc.to_le_bytes());
    v
}

/// An INIT or INIT-ACK chunk (fixed part) followed by `params`.
fn sctp_init_chunk(kind: u8, init_tag: u32, tsn: u32, params: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(20 + params.len());
    v.push(kind);
    v.push(0);
    v.extend_from_slice(&((20 + params.len()) as u16).to_be_bytes());
    v.extend_from_slice(&init_tag.to_be_bytes());
    v.extend_from_slice(&106_496u32.to_be_bytes()); // a_rwnd
    v.extend_from_slice(&10u16.to_be_bytes()); // outbound streams
    v.extend_from_slice(&65535u16.to_be_bytes()); // max inbound streams
    v.extend_from_slice(&tsn.to_be_bytes());
    v.extend_from_slice(params);
    v
}

fn sctp_init_pair(client: &Host, server: &Host) -> Result<Conv> {
    let (cport, sport) = (40030u16, 38412u16);
    let (tag_c, tag_s) = (0x5ca1_ab1e_u32, 0x0ddb_a115_u32);
    let init = sctp_packet(
        cport,
        sport,
        0,
        &sctp_init_chunk(1, tag_c, 0x1000_0000, &[]),
    );
    // Mandatory State Cookie parameter (type 7): 4-byte header + 24 opaque bytes.
    let mut cookie = vec![0x00, 0x07, 0x00, 28];
    cookie.extend((0..24u8).map(|i| i.wrapping_mul(37) ^ 0xa5));
    let init_ack = sctp_packet(
        sport,
        cport,
        tag_c,
        &sctp_init_chunk(2, tag_s, 0x2000_0000, &cookie),
    );
    let mut conv = Vec::new();
    for (src, dst, id, pkt) in [
        (client, server, 0x3001, init),
        (server, client, 0x3002, init_ack),
    ] {
        let b = ip_builder(src, dst, Tags::None, IpParams::new(ttl_of(src), id, true));
        let mut v = Vec::with_capacity(b.size(pkt.len()));
        b.write(&mut v, IpNumber::SCTP, &pkt)?;
        pad_to_min(&mut v);
        conv.push(v);
    }
    Ok(conv)
}

// --------------------------------------------------------- fragments ----

/// IP payload bytes carried by each full fragment (1500-byte MTU, 8-aligned).
const FRAG_CHUNK: usize = 1480;

/// One UDP datagram of `len` payload bytes, split into IPv4 fragments.
fn udp_fragments(
    src: &Host,
    dst: &Host,
    ports: (u16, u16),
    ip_id: u16,
    payload: &[u8],
) -> Result<Conv> {
    // Build the whole datagram once to get the UDP header with its checksum,
    // then cut the IP payload (UDP header + data) into fragments.
    let whole = udp_frame(src, dst, ports, Tags::None, ip_id, payload)?;
    let datagram = &whole[14 + 20..];
    let chunks: Vec<&[u8]> = datagram.chunks(FRAG_CHUNK).collect();
    let mut conv = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.iter().enumerate() {
        let mut p = IpParams::new(ttl_of(src), ip_id, false);
        p.frag_offset = (i * FRAG_CHUNK / 8) as u16;
        p.more_fragments = i + 1 < chunks.len();
        let b = ip_builder(src, dst, Tags::None, p);
        let mut v = Vec::with_capacity(b.size(chunk.len()));
        b.write(&mut v, IpNumber::UDP, chunk)?;
        pad_to_min(&mut v);
        conv.push(v);
    }
    Ok(conv)
}

fn fragmented_udp_echo(
    client: &Host,
    server: &Host,
    (cport, sport): (u16, u16),
    len: usize,
) -> Result<Conv> {
    let payload: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
    let mut conv = udp_fragments(client, server, (cport, sport), 0x4a11, &payload)?;
    let mut reply = udp_fragments(server, client, (sport, cport), 0x4a12, &payload)?;
    reply.reverse();
    conv.extend(reply);
    Ok(conv)
}
