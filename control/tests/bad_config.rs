//! Every kind of bad configuration: one line on stderr naming the file and
//! the key, exit status 2, no panic or backtrace.

mod common;

use std::process::Command;

use common::*;

fn run_config(text: Option<&str>, dir: &TempDir) -> (i32, String, String) {
    let path = dir.path("bad.toml");
    if let Some(t) = text {
        std::fs::write(&path, t).unwrap();
    }
    let out = run_to_exit(
        Command::new(bin())
            .args(["run", "--config"])
            .arg(&path)
            .current_dir(repo())
            .env("RUST_BACKTRACE", "1"),
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn good(api: u16, ports: &str, pairs: &str) -> String {
    format!(
        "{}\n{ports}",
        eal_head("bad", api, &format!("pairs = {pairs}"))
    )
}

const PORTS: &str = "[[ports]]\nname = \"a\"\ndevice = \"net_null0\"\n[[ports]]\nname = \"b\"\ndevice = \"net_null1\"\n";

fn expect_one_line(case: &str, text: Option<&str>, key: &str) {
    let dir = TempDir::new("badcfg");
    let (code, out, err) = run_config(text, &dir);
    assert_eq!(code, 2, "{case}: exit status\nstdout:{out}\nstderr:{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{case}: exactly one line on stderr, got:\n{err}"
    );
    let line = lines[0];
    assert!(line.contains("bad.toml"), "{case}: names the file: {line}");
    assert!(line.contains(key), "{case}: names {key}: {line}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{case}: {err}"
    );
}

#[test]
fn missing_file() {
    expect_one_line("missing file", None, "cannot read");
}

#[test]
fn toml_syntax_error() {
    expect_one_line("syntax", Some("[dataplane\nworker_cpus = [1]\n"), "line 1");
}

#[test]
fn unknown_key() {
    let t = good(free_port(), PORTS, "[[\"a\", \"b\"]]").replace("stats_period", "stats_periode");
    expect_one_line("unknown key", Some(&t), "dataplane.stats_periode");
}

#[test]
fn ports_on_a_protocol_without_ports() {
    let rule = "[[policy.rules]]\nid = 1\npriority = 1\naction = \"drop\"\ndst_ports = \"0-1023\"\nprotocols = [\"udp\", \"icmp\"]\n";
    let t = format!("{}{rule}", good(free_port(), PORTS, "[[\"a\", \"b\"]]"));
    expect_one_line("ports with icmp", Some(&t), "policy.rules[0].protocols[1]");
}

#[test]
fn port_named_twice() {
    let t = good(free_port(), &PORTS.replace("\"b\"", "\"a\""), "[]");
    expect_one_line("port twice", Some(&t), "ports[1].name");
}

#[test]
fn lcore_the_machine_lacks() {
    let t = good(free_port(), PORTS, "[[\"a\", \"b\"]]")
        .replace("worker_cpus = [1]", "worker_cpus = [1, 4096]");
    expect_one_line("missing CPU", Some(&t), "dataplane.worker_cpus[1]");
}

#[test]
fn busy_shares_out_of_range() {
    for (section, value) in [
        ("operations", 0),
        ("operations", 101),
        ("f5", 0),
        ("f5", 101),
    ] {
        let t = format!(
            "{}\n[{section}]\nbusy_share_percent = {value}\n",
            good(free_port(), PORTS, "[[\"a\", \"b\"]]")
        );
        expect_one_line(
            &format!("{section} share {value}"),
            Some(&t),
            &format!("{section}.busy_share_percent"),
        );
    }
}

#[test]
fn operation_results_beyond_memory_or_below_the_cap() {
    let t = good(free_port(), PORTS, "[[\"a\", \"b\"]]");
    // 10^12 flows of results are 80 TB: no machine this runs on has them.
    expect_one_line(
        "result budget beyond memory",
        Some(&format!(
            "{t}\n[operations]\nresult_budget = 1000000000000\n"
        )),
        "operations.result_budget",
    );
    expect_one_line(
        "result budget below the cap",
        Some(&format!(
            "{t}\n[operations]\nresult_cap = 5000\nresult_budget = 4999\n"
        )),
        "operations.result_budget",
    );
}

#[test]
fn memory_beyond_the_machine() {
    // Without huge pages EAL would fill 4 TiB page by page before failing.
    let t = good(free_port(), PORTS, "[[\"a\", \"b\"]]")
        .replace("memory_mb = 512", "memory_mb = 4000000");
    expect_one_line("memory beyond the machine", Some(&t), "eal.memory_mb");
}

#[test]
fn pair_naming_unknown_port() {
    let t = good(free_port(), PORTS, "[[\"a\", \"c\"]]");
    expect_one_line("unknown pair port", Some(&t), "dataplane.pairs[0][1]");
}

#[test]
fn devargs_with_missing_capture() {
    let t = good(
        free_port(),
        &PORTS.replace("net_null0", "net_pcap0,rx_pcap=/nonexistent/x.pcap"),
        "[[\"a\", \"b\"]]",
    );
    expect_one_line("missing pcap", Some(&t), "ports[0].device");
}

#[test]
fn devargs_dpdk_refuses() {
    // Passes our checks, fails in DPDK's probe: an unknown driver, and a
    // known driver with an argument it does not take.
    let t = good(
        free_port(),
        &PORTS.replace("net_null0", "net_nosuchpmd0"),
        "[[\"a\", \"b\"]]",
    );
    expect_one_line("unknown driver", Some(&t), "ports[0].device");
    let t = good(
        free_port(),
        &PORTS.replace("net_null1", "net_null1,bogus_arg=1"),
        "[[\"a\", \"b\"]]",
    );
    expect_one_line("bad driver argument", Some(&t), "ports[1].device");
}

#[test]
fn eal_arguments_eal_refuses() {
    // An option DPDK 22.11 does not have is caught before EAL starts; a
    // value it refuses, by EAL itself: both name the key, in one line.
    let with = |args: &str| {
        good(free_port(), PORTS, "[[\"a\", \"b\"]]").replace(
            "memory_mb = 512\n",
            &format!("memory_mb = 512\nextra_args = {args}\n"),
        )
    };
    expect_one_line(
        "unknown EAL option",
        Some(&with(r#"["--in-memroy"]"#)),
        "eal.extra_args[0]",
    );
    expect_one_line(
        "EAL option flowgate sets",
        Some(&with(r#"["--in-memory", "--file=x"]"#)),
        "eal.extra_args[1]",
    );
    expect_one_line(
        "value EAL refuses",
        Some(&with(r#"["--iova-mode=sideways"]"#)),
        "eal.extra_args: DPDK's EAL refused them",
    );
}

#[test]
fn api_address_in_use() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let t = good(port, PORTS, "[[\"a\", \"b\"]]");
    expect_one_line("address in use", Some(&t), "api.listen");
}

#[test]
fn check_config_accepts_the_default_config() {
    let out = run_to_exit(
        Command::new(bin())
            .args(["run", "--check-config", "--config", "config/default.toml"])
            .current_dir(repo()),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("pair: inside <-> outside"), "{stdout}");
}
