//! End-to-end tests of the `flowgate-pcapgen` binary: determinism of the
//! sample, the committed `config/sample.pcap` being current, tshark reading
//! every generated capture cleanly (checksums verified, no malformed packet,
//! no error-level expert info), and the `flows` counts and frame sizes.
//! tshark is required: without it these tests fail and say how to install it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use flowgate_bench::pcapgen::info;
use pcap_file::pcap::PcapReader;

const BIN: &str = env!("CARGO_BIN_EXE_flowgate-pcapgen");

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pcapgen-tests");
    fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn pcapgen(args: &[&str]) {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "flowgate-pcapgen {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sample(name: &str) -> PathBuf {
    let p = tmp(name);
    pcapgen(&["sample", "--out", p.to_str().unwrap()]);
    p
}

/// Runs tshark on `file` with checksum validation on for every protocol
/// that has it; returns stdout.
fn tshark(file: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-o",
            "sctp.checksum:CRC 32c",
        ])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            if e.kind() == ErrorKind::NotFound {
                panic!(
                    "tshark is not installed, and these tests need it to check the \
                     generated captures: install it (Debian: apt-get install tshark)"
                )
            }
            panic!("cannot run tshark: {e}")
        });
    assert!(
        out.status.success(),
        "tshark {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One line per frame of the given fields (tab-separated, all occurrences
/// comma-separated).
fn fields(file: &Path, filter: Option<&str>, names: &[&str]) -> Vec<String> {
    let mut args = vec!["-T", "fields", "-E", "occurrence=a"];
    for n in names {
        args.extend(["-e", n]);
    }
    if let Some(f) = filter {
        args.extend(["-Y", f]);
    }
    tshark(file, &args).lines().map(str::to_owned).collect()
}

/// Frames matching `filter`.
fn count(file: &Path, filter: &str) -> usize {
    fields(file, Some(filter), &["frame.number"]).len()
}

/// No malformed packet, no error-level expert info, every checksum good.
fn assert_tshark_clean(file: &Path) {
    let bad = fields(
        file,
        Some("_ws.malformed || _ws.expert.severity >= error"),
        &["frame.number", "_ws.expert.message"],
    );
    assert!(
        bad.is_empty(),
        "tshark reports errors:\n{}\n{}",
        bad.join("\n"),
        tshark(file, &["-q", "-z", "expert,error"])
    );
    let statuses = [
        "ip.checksum.status",
        "tcp.checksum.status",
        "udp.checksum.status",
        "sctp.checksum.status",
        "icmp.checksum.status",
        "icmpv6.checksum.status",
    ];
    for line in fields(file, None, &statuses) {
        for (name, value) in statuses.iter().zip(line.split('\t')) {
            // 1 = good; empty = protocol absent (or not verifiable).
            for v in value.split(',').filter(|v| !v.is_empty()) {
                assert_eq!(v, "1", "{name} not good in {line:?}");
            }
        }
    }
}

fn record_lengths(file: &Path) -> Vec<usize> {
    let mut r = PcapReader::new(fs::File::open(file).unwrap()).unwrap();
    let mut v = Vec::new();
    while let Some(p) = r.next_packet() {
        v.push(p.unwrap().data.len());
    }
    v
}

// ------------------------------------------------------------ sample ----

#[test]
fn sample_is_byte_identical_across_runs() {
    let a = fs::read(sample("sample-a.pcap")).unwrap();
    let b = fs::read(sample("sample-b.pcap")).unwrap();
    assert!(a == b, "two runs of `sample` differ");
    assert!(a.len() < 64 * 1024, "sample is {} bytes", a.len());
}

#[test]
fn committed_sample_is_current() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/sample.pcap");
    let fresh = fs::read(sample("sample-fresh.pcap")).unwrap();
    let old = fs::read(&committed).unwrap_or_default();
    assert!(
        old == fresh,
        "config/sample.pcap is missing or stale: run config/make-sample-pcap.sh and commit it"
    );
}

#[test]
fn sample_starts_2024_and_steps_2ms() {
    let p = sample("sample-ts.pcap");
    let ts = fields(&p, None, &["frame.time_epoch"]);
    assert_eq!(ts[0], "1704067200.000000000");
    assert_eq!(ts[1], "1704067200.002000000");
}

#[test]
fn sample_reads_clean_in_tshark() {
    let p = sample("sample-clean.pcap");
    assert_tshark_clean(&p);
    // Sequence/ack numbers are consistent: the only warnings tshark may
    // raise are for the two RSTs (the aborted session and the refused SYN).
    let warns = fields(
        &p,
        Some("_ws.expert.severity == warning && !(tcp.flags.reset == 1)"),
        &["frame.number", "_ws.expert.message"],
    );
    assert!(warns.is_empty(), "unexpected warnings: {warns:?}");
    let analysis = fields(
        &p,
        Some("tcp.analysis.flags && !tcp.analysis.reused_ports"),
        &["frame.number"],
    );
    assert!(analysis.is_empty(), "tcp analysis flags: {analysis:?}");
    assert!(
        fields(&p, None, &["frame.len"])
            .iter()
            .all(|l| l.parse::<usize>().unwrap() >= 60),
        "frames below the Ethernet minimum"
    );
}

#[test]
fn sample_has_every_protocol() {
    let p = sample("sample-protos.pcap");
    let protos: BTreeSet<String> = fields(&p, None, &["frame.protocols"])
        .iter()
        .flat_map(|l| l.split(':').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    for want in [
        "arp",
        "ip",
        "ipv6",
        "tcp",
        "udp",
        "icmp",
        "icmpv6",
        "sctp",
        "vlan",
        "ieee8021ad",
        "dns",
        "http",
    ] {
        assert!(protos.contains(want), "no {want} in {protos:?}");
    }
    // TCP: handshakes, data both ways, FINs, RSTs.
    assert!(count(&p, "tcp.flags.syn == 1 && tcp.flags.ack == 0") >= 6);
    assert!(count(&p, "tcp.flags.syn == 1 && tcp.flags.ack == 1") >= 5);
    assert!(count(&p, "tcp.flags.fin == 1") >= 10);
    assert_eq!(count(&p, "tcp.flags.reset == 1"), 2);
    assert!(count(&p, "ipv6 && tcp.flags.fin == 1") >= 2);
    // UDP request/response on 53 and another port, v4 and v6.
    assert_eq!(count(&p, "ip && dns"), 4); // incl. the QinQ pair
    assert_eq!(count(&p, "ipv6 && dns"), 2);
    assert_eq!(count(&p, "ipv6 && udp.port == 7"), 2);
    // Echo both ways.
    assert_eq!(count(&p, "icmp.type == 8"), count(&p, "icmp.type == 0"));
    assert!(count(&p, "icmp.type == 8") >= 1);
    assert_eq!(
        count(&p, "icmpv6.type == 128"),
        count(&p, "icmpv6.type == 129")
    );
    assert!(count(&p, "icmpv6.type == 128") >= 1);
    // Two 802.1Q VLANs with the same addresses, and one QinQ flow.
    let vlan_ips: BTreeSet<String> = fields(
        &p,
        Some("eth.type == 0x8100 && tcp"),
        &["vlan.id", "ip.src", "ip.dst"],
    )
    .into_iter()
    .collect();
    let ids: BTreeSet<&str> = vlan_ips
        .iter()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from(["100", "200"]));
    assert_eq!(vlan_ips.len(), 4, "{vlan_ips:?}"); // 2 VLANs x 2 directions
    assert_eq!(
        count(
            &p,
            "eth.type == 0x88a8 && frame[16:2] == 81:00 && ieee8021ad.id == 300 \
             && vlan.id == 30 && ip"
        ),
        2
    );
    // SCTP INIT and INIT-ACK.
    assert_eq!(count(&p, "sctp.chunk_type == 1"), 1);
    assert_eq!(count(&p, "sctp.chunk_type == 2"), 1);
    // ARP request and reply.
    assert_eq!(count(&p, "arp.opcode == 1"), 1);
    assert_eq!(count(&p, "arp.opcode == 2"), 1);
    // IPv4 fragments, both datagrams reassembled.
    assert!(count(&p, "ip.flags.mf == 1") >= 2);
    assert!(count(&p, "ip.frag_offset > 0") >= 2);
    assert_eq!(count(&p, "ip.reassembled.length"), 2);
}

#[test]
fn sample_flow_counts_match_tshark() {
    let p = sample("sample-info.pcap");
    let s = info::summarize(&p).unwrap();
    let frames = fields(&p, None, &["frame.number"]).len();
    assert_eq!(s.frames as usize, frames);
    assert!(frames <= 300);
    assert_eq!(s.non_ip, 2); // the ARP pair
                             // The same 5-tuple on VLAN 100 and 200 is two flows.
    assert_eq!(s.flows.len(), s.five_tuples() + 1);
    // tshark's own per-frame view of the TCP/UDP flows, VLAN included.
    let mut tshark_flows: BTreeMap<String, usize> = BTreeMap::new();
    for l in fields(
        &p,
        Some("tcp || udp"),
        &[
            "vlan.id",
            "ip.src",
            "ipv6.src",
            "tcp.srcport",
            "udp.srcport",
            "ip.dst",
            "ipv6.dst",
            "tcp.dstport",
            "udp.dstport",
        ],
    ) {
        let f: Vec<&str> = l.split('\t').collect();
        let a = format!("{}{}:{}{}", f[1], f[2], f[3], f[4]);
        let b = format!("{}{}:{}{}", f[5], f[6], f[7], f[8]);
        let key = format!(
            "{} {}",
            f[0],
            if a < b { a + " " + &b } else { b + " " + &a }
        );
        *tshark_flows.entry(key).or_default() += 1;
    }
    let ours = s
        .flows
        .keys()
        .filter(|k| k.proto == 6 || k.proto == 17)
        .count();
    assert_eq!(tshark_flows.len(), ours, "{tshark_flows:#?}");
}

// ------------------------------------------------------------- flows ----

fn flows(name: &str, extra: &[&str]) -> PathBuf {
    let p = tmp(name);
    let mut args = vec!["flows", "--out", p.to_str().unwrap()];
    args.extend_from_slice(extra);
    pcapgen(&args);
    p
}

/// Canonical (both directions merged) TCP/UDP 5-tuples as tshark sees them.
fn tshark_tuples(file: &Path) -> BTreeSet<String> {
    fields(
        file,
        None,
        &[
            "ip.proto",
            "ip.src",
            "tcp.srcport",
            "udp.srcport",
            "ip.dst",
            "tcp.dstport",
            "udp.dstport",
        ],
    )
    .into_iter()
    .map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        let a = format!("{}:{}{}", f[1], f[2], f[3]);
        let b = format!("{}:{}{}", f[4], f[5], f[6]);
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        format!("{} {lo} {hi}", f[0])
    })
    .collect()
}

#[test]
fn flows_1000_udp() {
    let p = flows("flows-udp.pcap", &["--count", "1000"]);
    let lens = record_lengths(&p);
    assert_eq!(lens.len(), 1000);
    assert!(
        lens.iter().all(|&l| l == 60),
        "64-byte frames are 60 in pcap"
    );
    let s = info::summarize(&p).unwrap();
    assert_eq!((s.frames, s.five_tuples()), (1000, 1000));
    assert_tshark_clean(&p);
    assert_eq!(tshark_tuples(&p).len(), 1000);
}

#[test]
fn flows_1000_udp_with_reply() {
    let p = flows("flows-udp-reply.pcap", &["--count", "1000", "--reply"]);
    let lens = record_lengths(&p);
    assert_eq!(lens.len(), 2000);
    assert!(lens.iter().all(|&l| l == 60));
    let s = info::summarize(&p).unwrap();
    assert_eq!((s.frames, s.five_tuples()), (2000, 1000));
    assert!(s.flows.values().all(|f| f.fwd == 1 && f.rev == 1));
    assert_tshark_clean(&p);
    assert_eq!(tshark_tuples(&p).len(), 1000);
}

#[test]
fn flows_1000_tcp_vlan_128() {
    let p = flows(
        "flows-tcp.pcap",
        &[
            "--count",
            "1000",
            "--proto",
            "tcp",
            "--frame-size",
            "128",
            "--vlan",
            "42",
            "--reply",
        ],
    );
    let lens = record_lengths(&p);
    assert_eq!(lens.len(), 2000);
    assert!(lens.iter().all(|&l| l == 124));
    let s = info::summarize(&p).unwrap();
    assert_eq!((s.frames, s.five_tuples()), (2000, 1000));
    assert!(s.flows.keys().all(|k| k.vlans == [42, 0] && k.proto == 6));
    assert_tshark_clean(&p);
    assert_eq!(count(&p, "tcp.flags.syn == 1 && tcp.flags.ack == 0"), 1000);
    assert_eq!(count(&p, "tcp.flags.syn == 1 && tcp.flags.ack == 1"), 1000);
    assert_eq!(tshark_tuples(&p).len(), 1000);
}

#[test]
fn flows_seed_changes_order_not_set() {
    let a = flows("flows-seed-a.pcap", &["--count", "500", "--seed", "1"]);
    let a2 = flows("flows-seed-a2.pcap", &["--count", "500", "--seed", "1"]);
    let b = flows("flows-seed-b.pcap", &["--count", "500", "--seed", "2"]);
    assert!(
        fs::read(&a).unwrap() == fs::read(&a2).unwrap(),
        "not deterministic"
    );
    assert!(
        fs::read(&a).unwrap() != fs::read(&b).unwrap(),
        "seed ignored"
    );
    let (sa, sb) = (info::summarize(&a).unwrap(), info::summarize(&b).unwrap());
    let keys = |s: &info::Summary| s.flows.keys().copied().collect::<BTreeSet<_>>();
    assert_eq!(keys(&sa), keys(&sb));
    // Shuffled: consecutive frames are not consecutive source addresses.
    let srcs: Vec<u32> = fields(&a, None, &["ip.src"])
        .iter()
        .map(|s| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()))
        .collect();
    let adjacent = srcs.windows(2).filter(|w| w[0].abs_diff(w[1]) == 1).count();
    assert!(adjacent < 10, "{adjacent} sequential neighbours");
}

#[test]
fn flows_rejects_bad_arguments() {
    for bad in [
        &["--count", "10", "--frame-size", "63"][..],
        &["--count", "0"],
        &["--count", "10", "--vlan", "4095"],
    ] {
        let p = tmp("flows-bad.pcap");
        let out = Command::new(BIN)
            .args(["flows", "--out", p.to_str().unwrap()])
            .args(bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?} accepted");
    }
}

#[test]
fn info_prints_counts() {
    let p = flows("flows-info.pcap", &["--count", "100", "--reply"]);
    let out = Command::new(BIN)
        .args(["info", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("frames: 200\n"), "{text}");
    assert!(text.contains("5-tuples: 100\n"), "{text}");
}
