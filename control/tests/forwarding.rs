//! The real binary forwarding between two net_pcap ports, and its shutdown.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn pcap_pair_forwards_every_frame_byte_for_byte_both_ways() {
    let dir = TempDir::new("fwd");
    let in_a = frames(0xa, 1000);
    let in_b = frames(0xb, 777);
    write_pcap(&dir.path("in_a.pcap"), &in_a);
    write_pcap(&dir.path("in_b.pcap"), &in_b);
    let api = free_port();
    let cfg = format!(
        "{}\n[[ports]]\nname = \"a\"\ndevice = \"net_pcap0,rx_pcap={},tx_pcap={}\"\n[[ports]]\nname = \"b\"\ndevice = \"net_pcap1,rx_pcap={},tx_pcap={}\"\n",
        eal_head("fwd", api, "pairs = [[\"a\", \"b\"]]"),
        dir.path("in_a.pcap").display(),
        dir.path("out_a.pcap").display(),
        dir.path("in_b.pcap").display(),
        dir.path("out_b.pcap").display(),
    );
    std::fs::write(dir.path("fg.toml"), cfg).unwrap();
    let mut fg = Flowgate::start(&dir.path("fg.toml"), api);
    fg.wait_ready();
    // Both captures are consumed once; wait until a stats line shows it.
    fg.wait_stdout(Duration::from_secs(60), "all frames forwarded", |out| {
        out.lines().any(|l| {
            l.contains("worker 0") && l.contains(&format!("tx {}", in_a.len() + in_b.len()))
        })
    });
    let (st, out, err) = fg.stop();
    assert_eq!(st.code(), Some(0), "{out}\n{err}");
    assert_eq!(
        read_pcap(&dir.path("out_b.pcap")),
        in_a,
        "port b sends exactly what port a received"
    );
    assert_eq!(
        read_pcap(&dir.path("out_a.pcap")),
        in_b,
        "port a sends exactly what port b received"
    );

    // Final counters match the captures.
    let bytes = |f: &[Vec<u8>]| f.iter().map(|x| x.len()).sum::<usize>();
    let line_a = out
        .lines()
        .rev()
        .find(|l| l.contains("port 0") && l.contains("RX-bytes"))
        .unwrap();
    assert!(
        line_a.contains(&format!(
            "RX-packets: {}  RX-bytes: {}  TX-packets: {}",
            in_a.len(),
            bytes(&in_a),
            in_b.len()
        )),
        "{line_a}"
    );
    let line_b = out
        .lines()
        .rev()
        .find(|l| l.contains("port 1") && l.contains("RX-bytes"))
        .unwrap();
    assert!(
        line_b.contains(&format!(
            "RX-packets: {}  RX-bytes: {}  TX-packets: {}",
            in_b.len(),
            bytes(&in_b),
            in_a.len()
        )),
        "{line_b}"
    );
    assert!(
        out.contains("mbufs in use after close: 0 (no leak)"),
        "{out}"
    );
}

#[test]
fn sigterm_at_full_rate_exits_cleanly_and_returns_every_mbuf() {
    let dir = TempDir::new("term");
    write_pcap(&dir.path("in.pcap"), &frames(1, 512));
    let api = free_port();
    let cfg = format!(
        "{}\n[[ports]]\nname = \"in\"\ndevice = \"net_pcap0,rx_pcap={},infinite_rx=1\"\n[[ports]]\nname = \"out\"\ndevice = \"net_null0,no-rx=1\"\n",
        eal_head("term", api, "pairs = [[\"in\", \"out\"]]"),
        dir.path("in.pcap").display()
    );
    std::fs::write(dir.path("fg.toml"), cfg).unwrap();
    let mut fg = Flowgate::start(&dir.path("fg.toml"), api);
    fg.wait_ready();
    assert_eq!(http_get(api, "/healthz").map(|r| r.0), Some(200));
    assert_eq!(http_get(api, "/nope").map(|r| r.0), Some(404));
    // Forwarding at full rate: a stats line with a non-zero Tx-pps on the sink.
    fg.wait_stdout(Duration::from_secs(60), "traffic", |out| {
        out.lines().any(|l| {
            l.contains("port 1") && l.contains("Tx-pps") && !l.contains("Tx-pps:          0")
        })
    });
    fg.signal("TERM");
    let st = fg
        .wait_exit(Duration::from_secs(30))
        .expect("exit after SIGTERM");
    let out = fg.stdout();
    assert_eq!(st.code(), Some(0), "{out}\n{}", fg.stderr());
    assert!(out.contains("SIGTERM: stopping"), "{out}");
    assert!(
        out.contains("mbufs in use after close: 0 (no leak)"),
        "{out}"
    );
    // Every packet the worker received was sent or counted as dropped.
    let final_part = out.split("final counters").nth(1).expect("final counters");
    let w = final_part
        .lines()
        .find(|l| l.trim_start().starts_with("worker 0"))
        .expect("final worker line");
    let words: Vec<&str> = w.split_whitespace().collect();
    let field = |name: &str| -> u64 {
        let i = words
            .iter()
            .position(|x| *x == name)
            .unwrap_or_else(|| panic!("{name} in {w}"));
        words[i + 1].parse().unwrap()
    };
    assert_eq!(
        field("rx"),
        field("tx") + field("tx-dropped"),
        "rx = tx + dropped: {w}"
    );
}
