//! Flow tracking through the real binary: malformed frames counted per
//! reason while forwarding continues; policy and stream-exception rejects
//! answered on the ingress port (decoded with tshark).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::{Icmpv4Type, Icmpv6Type, PacketBuilder};

const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// Recomputes the IPv4 header checksum of an untagged frame after a test
/// rewrote a header field, so the appliance sees the edit, not damage.
fn refill_ipv4_checksum(frame: &mut [u8]) {
    let hl = usize::from(frame[14] & 0x0f) * 4;
    frame[24..26].fill(0);
    let sum = etherparse::checksum::Sum16BitWords::new()
        .add_slice(&frame[14..14 + hl])
        .ones_complement();
    frame[24..26].copy_from_slice(&sum.to_ne_bytes());
}

fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut v, payload)
        .unwrap();
    v
}

/// A TCP segment without data: a SYN, or a RST when `rst`.
fn tcp_bare(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, seq: u32, rst: bool) -> Vec<u8> {
    let mut v = Vec::new();
    let window = if rst { 0 } else { 64240 };
    let b = PacketBuilder::ethernet2(A, B)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, seq, window);
    let b = if rst { b.rst() } else { b.syn() };
    b.write(&mut v, &[]).unwrap();
    v
}

fn tcp_syn(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, seq: u32) -> Vec<u8> {
    tcp_bare(src, sport, dst, dport, seq, false)
}

fn tcp_rst(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, seq: u32) -> Vec<u8> {
    tcp_bare(src, sport, dst, dport, seq, true)
}

fn tcp_ack(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, seq: u32, ack: u32) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, seq, 64240)
        .ack(ack)
        .write(&mut v, b"data")
        .unwrap();
    v
}

/// Runs flowgate once over `frames` arriving on port a (b receives
/// nothing); returns (stdout, frames sent out of a, frames sent out of b).
fn replay(tag: &str, frames: &[Vec<u8>], extra: &str) -> (String, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (out, out_a, out_b, _) = replay_both(tag, frames, &[], extra);
    (out, out_a, out_b)
}

/// Runs flowgate once over `from_a` arriving on port a and `from_b` on
/// port b; returns (stdout, frames sent out of a, frames sent out of b,
/// /metrics once every frame was received).
///
/// The one worker polls a before b in each turn of its loop, and the pcap
/// driver hands over a file's frames a whole burst (32) at a time: the
/// first 32 of `from_a` are tracked before any of `from_b` is seen, so
/// b's frames can be answers to those.
fn replay_both(
    tag: &str,
    from_a: &[Vec<u8>],
    from_b: &[Vec<u8>],
    extra: &str,
) -> (String, Vec<Vec<u8>>, Vec<Vec<u8>>, String) {
    let dir = TempDir::new(tag);
    write_pcap(&dir.path("in_a.pcap"), from_a);
    write_pcap(&dir.path("in_b.pcap"), from_b);
    let api = free_port();
    let cfg = format!(
        "{}\n{extra}\n[[ports]]\nname = \"a\"\ndevice = \"net_pcap0,rx_pcap={},tx_pcap={}\"\n[[ports]]\nname = \"b\"\ndevice = \"net_pcap1,rx_pcap={},tx_pcap={}\"\n",
        eal_head(tag, api, "mode = \"track\"\npairs = [[\"a\", \"b\"]]"),
        dir.path("in_a.pcap").display(),
        dir.path("out_a.pcap").display(),
        dir.path("in_b.pcap").display(),
        dir.path("out_b.pcap").display(),
    );
    std::fs::write(dir.path("fg.toml"), cfg).unwrap();
    let mut fg = Flowgate::start(&dir.path("fg.toml"), api);
    fg.wait_ready();
    let n = from_a.len() + from_b.len();
    fg.wait_stdout(Duration::from_secs(60), "every frame received", |out| {
        out.lines()
            .any(|l| l.trim_start().starts_with("worker 0") && l.contains(&format!("rx {n} ")))
    });
    let (status, metrics) = http_get(api, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "{metrics}");
    let (st, out, err) = fg.stop();
    assert_eq!(st.code(), Some(0), "{out}\n{err}");
    (
        out,
        read_pcap(&dir.path("out_a.pcap")),
        read_pcap(&dir.path("out_b.pcap")),
        metrics,
    )
}

fn final_section(out: &str) -> &str {
    out.split("final counters").nth(1).expect("final counters")
}

#[test]
fn malformed_frames_are_counted_per_reason_and_forwarding_continues() {
    let good = udp([10, 0, 0, 1], 1000, [192, 0, 2, 1], 53, b"query");
    let good2 = tcp_syn([10, 0, 0, 2], 2000, [192, 0, 2, 1], 80, 1);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = good.clone();
        f(&mut v);
        v
    };
    let mut vlan_cut = good[..14].to_vec();
    vlan_cut[12..14].copy_from_slice(&[0x81, 0x00]);
    vlan_cut.extend_from_slice(&[0x00]);
    let mut v6 = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv6([0xfd; 16], [0x20; 16], 64)
        .udp(1, 2)
        .write(&mut v6, b"x")
        .unwrap();
    let mut tcp_bad_offset = good2.clone();
    tcp_bad_offset[14 + 20 + 12] = 0x20; // data offset 2 words
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("runt", good[..10].to_vec()),
        ("truncated_vlan", vlan_cut),
        ("truncated_ipv4", good[..20].to_vec()),
        ("ipv4_header_length", with(&|v| v[14] = 0x4f)),
        (
            "ipv4_total_length",
            with(&|v| v[16..18].copy_from_slice(&2000u16.to_be_bytes())),
        ),
        // A hop that decremented the TTL and left the checksum as it was.
        ("ipv4_checksum", with(&|v| v[22] -= 1)),
        ("truncated_ipv6", v6[..40].to_vec()),
        ("ipv6_payload_length", {
            let mut x = v6.clone();
            x[18..20].copy_from_slice(&900u16.to_be_bytes());
            x
        }),
        ("tcp_data_offset", tcp_bad_offset),
        (
            "udp_length",
            with(&|v| v[38..40].copy_from_slice(&3u16.to_be_bytes())),
        ),
    ];
    let mut frames = vec![good.clone()];
    for (_, f) in &cases {
        frames.push(f.clone());
        frames.push(good2.clone());
    }
    let (out, _, out_b) = replay("malformed", &frames, "");
    let fin = final_section(&out);
    let line = fin
        .lines()
        .find(|l| l.contains("malformed:"))
        .unwrap_or_else(|| panic!("{out}"));
    // Only reasons with a count are listed: each case's once, no other.
    let words: Vec<&str> = line
        .split_once("malformed:")
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let counted: std::collections::BTreeMap<&str, &str> =
        words.chunks(2).map(|w| (w[0], w[1])).collect();
    let want: std::collections::BTreeMap<&str, &str> =
        cases.iter().map(|(reason, _)| (*reason, "1")).collect();
    assert_eq!(counted, want, "{line}");
    // Every good frame went through, in order; no malformed one did.
    let mut want = vec![good.clone()];
    want.extend(std::iter::repeat_n(good2.clone(), cases.len()));
    assert_eq!(out_b, want);
}

fn tshark(frames: &[Vec<u8>], fields: &[&str]) -> Vec<Vec<String>> {
    let dir = TempDir::new("tshark");
    write_pcap(&dir.path("x.pcap"), frames);
    let mut args = vec![
        "-r".to_string(),
        dir.path("x.pcap").display().to_string(),
        "-T".into(),
        "fields".into(),
        "-E".into(),
        "separator=,".into(),
        "-E".into(),
        "occurrence=f".into(),
    ];
    for f in fields {
        args.push("-e".into());
        args.push(f.to_string());
    }
    let out = Command::new("tshark")
        .args(&args)
        .output()
        .expect("tshark is installed (make test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn rejects_answer_on_the_ingress_port_and_nothing_leaks_through() {
    let policy = r#"
[flows]
stream_exception = "reject"
capacity = 4096

[[policy.rules]]
id = 22
group = 2
priority = 1
action = "reject"
dst_ports = "22"
protocols = ["tcp"]

[[policy.rules]]
id = 53
group = 2
priority = 2
action = "reject"
dst_ports = "53"
protocols = ["udp"]

[[policy.rules]]
id = 99
group = 2
priority = 3
action = "drop"
dst_ports = "99"
"#;
    let client = [10, 0, 0, 7];
    let server = [192, 0, 2, 9];
    let frames = vec![
        tcp_syn(client, 40000, server, 22, 5000),
        udp(client, 40001, server, 53, b"dns?"),
        udp(client, 40002, server, 99, b"dropped silently"),
        tcp_ack(client, 40003, server, 80, 7000, 9000), // mid-stream: reject
        udp(client, 40004, server, 54, b"passes"),
    ];
    let (out, out_a, out_b) = replay("reject", &frames, policy);
    assert_eq!(
        out_b,
        vec![frames[4].clone()],
        "only the passed packet is forwarded"
    );
    assert_eq!(out_a.len(), 3, "three answers: RST, ICMP, RST\n{out}");
    let rows = tshark(
        &out_a,
        &[
            "ip.src",
            "ip.dst",
            "tcp.srcport",
            "tcp.dstport",
            "tcp.flags.reset",
            "tcp.flags.ack",
            "tcp.seq_raw",
            "tcp.ack_raw",
            "icmp.type",
            "icmp.code",
            "udp.dstport",
            "tcp.checksum.status",
            "ip.checksum.status",
        ],
    );
    // RST|ACK to the SYN, acknowledging seq + 1.
    assert_eq!(
        &rows[0][..8],
        &[
            "192.0.2.9",
            "10.0.0.7",
            "22",
            "40000",
            "1",
            "1",
            "0",
            "5001"
        ]
    );
    // ICMP port unreachable quoting the UDP datagram.
    assert_eq!(&rows[1][..2], &["192.0.2.9", "10.0.0.7"]);
    assert_eq!(&rows[1][8..11], &["3", "3", "53"]);
    // RST to the mid-stream ACK, taking its sequence from the ACK.
    assert_eq!(
        &rows[2][..8],
        &[
            "192.0.2.9",
            "10.0.0.7",
            "80",
            "40003",
            "1",
            "0",
            "9000",
            "0"
        ]
    );
    let fin = final_section(&out);
    let w = fin
        .lines()
        .find(|l| l.trim_start().starts_with("worker 0"))
        .unwrap();
    assert!(w.contains("midstream 1") && w.contains("rejects 3"), "{w}");
}

#[test]
fn answers_to_a_flood_of_rejected_packets_keep_to_the_rate() {
    // 400 datagrams to a rejected port replay in well under the 40 s it
    // would take to pass 1 a second; each one is answered or counted.
    let policy = "[policy]\ndefault_action = \"reject\"\nreject_rate = 10\nreject_burst = 5\n";
    let frames: Vec<Vec<u8>> = (0..400u16)
        .map(|i| udp([10, 0, 0, 7], 10_000 + i, [192, 0, 2, 9], 53, b"q"))
        .collect();
    let (out, out_a, out_b) = replay("rejrate", &frames, policy);
    assert!(out_b.is_empty());
    let answers = out_a.len();
    assert!((5..40).contains(&answers), "{answers} answers\n{out}");
    let w = final_section(&out)
        .lines()
        .find(|l| l.trim_start().starts_with("worker 0"))
        .unwrap()
        .to_string();
    assert!(
        w.contains(&format!(
            "rejects {answers}  rejects-limited {}",
            400 - answers
        )),
        "{w}"
    );
}

#[test]
fn a_later_fragment_without_its_first_meets_the_policy() {
    // The second fragment of a datagram to port 53, its first never seen:
    // its ports are unknown.
    let mut later = udp([10, 0, 0, 7], 10_000, [192, 0, 2, 9], 53, &[7; 32]);
    later[20..22].copy_from_slice(&5u16.to_be_bytes()); // offset 40, the last
    refill_ipv4_checksum(&mut later);
    // Port 53 passes, the rest drops: the fragment could be of any port.
    let dns_only = "[policy]\ndefault_action = \"drop\"\n[[policy.rules]]\nid = 1\npriority = 1\naction = \"pass\"\ndst_ports = \"53\"\nprotocols = [\"udp\"]\n";
    let (out, _, out_b) = replay("fragpol", std::slice::from_ref(&later), dns_only);
    assert!(out_b.is_empty(), "{out}");
    // Everything passes: so does the fragment, byte for byte.
    let (out, _, out_b) = replay("fragpass", std::slice::from_ref(&later), "");
    assert_eq!(out_b, vec![later], "{out}");
}

/// A full-sized TCP segment (a 1500-byte IP packet, no Ethernet header):
/// the kind a router finds too big for a smaller next hop.
fn big_segment4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .tcp(sport, dport, 1001, 64240)
        .ack(1)
        .write(&mut v, &[0x5a; 1460])
        .unwrap();
    v
}

/// As [`big_segment4`], over IPv6.
fn big_segment6(src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(src, dst, 64)
        .tcp(sport, dport, 1001, 64240)
        .ack(1)
        .write(&mut v, &[0x5a; 1440])
        .unwrap();
    v
}

/// An ICMPv4 "fragmentation needed" from `router` to `to`, Ethernet `eth`
/// (source, destination), quoting `quote`.
fn frag_needed(eth: ([u8; 6], [u8; 6]), router: [u8; 4], to: [u8; 4], quote: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(eth.0, eth.1)
        .ipv4(router, to, 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
        ))
        .write(&mut v, quote)
        .unwrap();
    v
}

/// An ICMPv6 "packet too big" from `router` to `to`, quoting as much of
/// `packet` as fits in the minimum IPv6 MTU (RFC 4443 2.4 (c)).
fn packet_too_big(router: [u8; 16], to: [u8; 16], packet: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(B, A)
        .ipv6(router, to, 64)
        .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 })
        .write(&mut v, &packet[..1280 - 40 - 8])
        .unwrap();
    v
}

#[test]
fn icmp_errors_about_a_passed_connection_pass_and_the_rest_meet_the_policy() {
    // Only HTTPS out: an ICMP error is no TCP to 443, and passes only as
    // part of a connection the policy passed (path MTU discovery).
    let https_only = "[policy]\ndefault_action = \"drop\"\n[[policy.rules]]\nid = 1\npriority = 1\naction = \"pass\"\ndst_ports = \"443\"\nprotocols = [\"tcp\"]\n";
    let (client, server) = ([10, 0, 0, 7], [192, 0, 2, 9]);
    // Routers on either side of flowgate: the near one where the clients
    // are (port a), the far one towards the servers (port b).
    let (near, far) = ([10, 0, 0, 1], [198, 51, 100, 1]);
    let v6 = |net: u8, host: u8| {
        let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, net, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        a[15] = host;
        a
    };
    let (client6, server6, far6) = (v6(0, 7), v6(1, 9), v6(2, 1));
    let mut syn6 = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv6(client6, server6, 64)
        .tcp(40000, 443, 1000, 64240)
        .syn()
        .write(&mut syn6, &[])
        .unwrap();
    let mut from_a = vec![
        tcp_syn(client, 40000, server, 443, 1000),
        tcp_syn(client, 40001, server, 80, 2000), // dropped
        syn6,
    ];
    // Other clients' connections, enough to fill the first burst: a burst's
    // errors are looked up before its new flows are made, and a real error
    // comes after its flow's packet was sent on anyway.
    from_a.extend((0..29).map(|i| tcp_syn(client, 41000 + i, server, 443, 1)));
    // The server's answer was too big for the near router, which tells
    // the server: an error arriving where the connection was opened,
    // quoting the answer direction.
    from_a.push(frag_needed(
        (A, B),
        near,
        server,
        &big_segment4(server, 443, client, 40000)[..28],
    ));
    // The far router tells the client, quoting the client's packet. A
    // classic router quotes the IP header and 8 bytes: just the ports.
    let far_error = |sport, dport| {
        frag_needed(
            (B, A),
            far,
            client,
            &big_segment4(client, sport, server, dport)[..28],
        )
    };
    let from_b = vec![
        far_error(40000, 443),
        far_error(40001, 80),
        // A connection to 443 the policy would pass, but never seen: the
        // error is a flow of its own, ICMP, dropped.
        far_error(40002, 443),
        packet_too_big(far6, client6, &big_segment6(client6, 40000, server6, 443)),
        packet_too_big(far6, client6, &big_segment6(client6, 40001, server6, 443)),
        // Forged, each quoting the passed connection: an error sent to a
        // host that is not its client, and an echo whose identifier puts
        // "unreachable" where an error's type is read. Neither is
        // RELATED: each is an ICMP flow of its own, dropped.
        frag_needed(
            (B, A),
            far,
            [10, 0, 0, 99],
            &big_segment4(client, 40000, server, 443)[..28],
        ),
        {
            let mut echo = Vec::new();
            PacketBuilder::ethernet2(B, A)
                .ipv4(server, client, 64)
                .icmpv4_echo_request(0x0303, 1)
                .write(&mut echo, &big_segment4(client, 40000, server, 443)[..28])
                .unwrap();
            echo
        },
    ];
    let (out, out_a, out_b, metrics) = replay_both("icmprel", &from_a, &from_b, https_only);
    // Byte for byte: what the policy passed, and the errors about it.
    let mut passed = from_a.clone();
    passed.remove(1);
    assert_eq!(out_b, passed, "{out}");
    assert_eq!(out_a, vec![from_b[0].clone(), from_b[3].clone()], "{out}");
    let rows = tshark(
        &out_a,
        &[
            "icmp.type",
            "icmp.code",
            "icmp.checksum.status",
            "icmpv6.type",
            "icmpv6.checksum.status",
            "tcp.dstport",
        ],
    );
    // What the client gets is what its stack would act on: a
    // fragmentation needed and a packet too big, checksums good, about
    // its connection to 443.
    assert_eq!(
        rows,
        [
            ["3", "4", "1", "", "", "443"],
            ["", "", "", "2", "1", "443"]
        ]
    );
    // Four errors were about a tracked flow (one of them the dropped
    // one's): none made a flow; the two unrelated ones and the two forged
    // ones made one each.
    let related = metrics
        .lines()
        .find(|l| l.starts_with("flowgate_worker_icmp_related_packets_total{"))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(related.ends_with(" 4"), "{related}");
    let w = final_section(&out)
        .lines()
        .find(|l| l.trim_start().starts_with("worker 0"))
        .unwrap();
    assert!(w.contains("  created 36  "), "{w}");
}

#[test]
fn a_rst_far_from_the_senders_sequence_closes_nothing() {
    // Two connections picked up mid-stream, each sent a RST and then a SYN
    // on the same ports. A SYN on a closed connection starts a new flow;
    // on a live one it is part of it. The forged RST (half the sequence
    // space from what two segments showed) must leave its connection
    // live; the real one (at the next byte) must close its own.
    let (forged, real, server) = ([10, 0, 0, 1], [10, 0, 0, 2], [192, 0, 2, 1]);
    let frames = vec![
        tcp_ack(forged, 40000, server, 443, 1000, 1),
        tcp_ack(forged, 40000, server, 443, 1004, 1),
        tcp_rst(forged, 40000, server, 443, 1008 + (1 << 31)),
        tcp_syn(forged, 40000, server, 443, 7),
        tcp_ack(real, 40000, server, 443, 1000, 1),
        tcp_rst(real, 40000, server, 443, 1004),
        tcp_syn(real, 40000, server, 443, 7),
    ];
    let (out, _, out_b, metrics) = replay_both("tcpseq", &frames, &[], "");
    assert_eq!(
        out_b, frames,
        "every frame is forwarded, the forged RST too\n{out}"
    );
    let w = final_section(&out)
        .lines()
        .find(|l| l.trim_start().starts_with("worker 0"))
        .unwrap();
    assert!(w.contains("  created 3  "), "{w}");
    let oow = metrics
        .lines()
        .find(|l| l.starts_with("flowgate_worker_tcp_out_of_window_packets_total{"))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(oow.ends_with(" 1"), "{oow}");
}

#[test]
fn hostile_frames_at_full_rate_crash_nothing_and_every_frame_is_counted() {
    let dir = TempDir::new("hostile");
    let pcap = dir.path("hostile.pcap");
    let gen =
        std::path::Path::new(env!("CARGO_BIN_EXE_flowgate")).with_file_name("flowgate-pcapgen");
    assert!(
        gen.exists(),
        "flowgate-pcapgen is built with the workspace (cargo build --release --workspace)"
    );
    let out = run_to_exit(Command::new(&gen).args(["hostile", "--out"]).arg(&pcap));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let api = free_port();
    let cfg = format!(
        "{}\n[[ports]]\nname = \"a\"\ndevice = \"net_pcap0,rx_pcap={},infinite_rx=1\"\n[[ports]]\nname = \"b\"\ndevice = \"net_null0,no-rx=1\"\n",
        eal_head("hostile", api, "mode = \"track\"\npairs = [[\"a\", \"b\"]]"),
        pcap.display()
    );
    std::fs::write(dir.path("fg.toml"), cfg).unwrap();
    let mut fg = Flowgate::start(&dir.path("fg.toml"), api);
    fg.wait_ready();
    // Several passes over the capture, at full rate.
    fg.wait_stdout(Duration::from_secs(120), "three replays", |out| {
        out.lines()
            .filter(|l| l.trim_start().starts_with("worker 0"))
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.iter()
                    .position(|x| *x == "rx")
                    .and_then(|i| w[i + 1].parse::<u64>().ok())
            })
            .any(|rx| rx > 3 * 6294)
    });
    assert_eq!(
        http_get(api, "/healthz").map(|r| r.0),
        Some(200),
        "still serving"
    );
    let (st, out, err) = fg.stop();
    assert_eq!(st.code(), Some(0), "{out}\n{err}");
    let fin = final_section(&out);
    let w = fin
        .lines()
        .find(|l| l.trim_start().starts_with("worker 0") && l.contains(" rx "))
        .unwrap();
    let words: Vec<&str> = w.split_whitespace().collect();
    let field = |name: &str| -> u64 {
        let i = words
            .iter()
            .position(|x| *x == name)
            .unwrap_or_else(|| panic!("{name} in {w}"));
        words[i + 1].parse().unwrap()
    };
    let (rx, tx) = (field("rx"), field("tx"));
    assert!(tx > 0, "forwarding continued: {w}");
    // Every frame received is accounted for: sent, refused by the driver,
    // or dropped by flowgate under a counted reason.
    let malformed_line = fin
        .lines()
        .find(|l| l.contains("malformed:"))
        .expect("malformed reasons");
    let malformed: u64 = malformed_line
        .split_whitespace()
        .filter_map(|x| x.parse::<u64>().ok())
        .skip(1)
        .sum();
    assert!(malformed > 0, "{malformed_line}");
    assert_eq!(
        rx,
        tx + field("tx-dropped") + malformed + field("verdict-dropped") + field("table-full"),
        "every frame counted: {w}\n{malformed_line}"
    );
}
