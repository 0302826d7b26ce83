//! Finds DPDK 22.11 with pkg-config, builds the C shim over DPDK's
//! static-inline functions, and generates the Rust bindings with bindgen.

use std::env;
use std::path::PathBuf;

const INSTALL_HINT: &str = "flowgate needs DPDK 22.11 (Debian 12's libdpdk-dev). \
Install it with: apt-get install libdpdk-dev dpdk libclang-dev pkg-config \
(or run `make deps`)";

fn main() {
    println!("cargo:rerun-if-changed=shim/shim.h");
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let dpdk = match pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            eprintln!("error: {INSTALL_HINT}\npkg-config said: {e}");
            panic!("{INSTALL_HINT}");
        }
    };
    // The ABI (DPDK 23, "pmds-23.0") and the mbuf layout we rely on are those
    // of the 22.11 LTS: refuse anything else rather than misbehave at run time.
    if !dpdk.version.starts_with("22.11") {
        panic!(
            "found DPDK {} but flowgate is pinned to DPDK 22.11 (LTS). {INSTALL_HINT}",
            dpdk.version
        );
    }

    let mut cflags: Vec<String> = Vec::new();
    for p in &dpdk.include_paths {
        cflags.push(format!("-I{}", p.display()));
    }
    // pkg-config also carries `-include rte_config.h` and `-march=corei7`,
    // which the include_paths list drops: take them from the raw cflags.
    let raw = std::process::Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("pkg-config --cflags libdpdk");
    let raw = String::from_utf8_lossy(&raw.stdout).to_string();
    let mut words = raw.split_whitespace();
    while let Some(w) = words.next() {
        if w == "-include" {
            if let Some(f) = words.next() {
                cflags.push("-include".into());
                cflags.push(f.into());
            }
        } else if w.starts_with("-march") || w.starts_with("-m") && !w.starts_with("-mno") {
            cflags.push(w.into());
        }
    }

    let mut build = cc::Build::new();
    build.file("shim/shim.c").opt_level(3).warnings(true);
    for f in &cflags {
        build.flag(f);
    }
    build.compile("flowgate_shim");

    let bindings = bindgen::Builder::default()
        .header("shim/shim.h")
        .clang_args(&cflags)
        .allowlist_function("fg_.*")
        .allowlist_function("rte_eal_(init|cleanup|process_type|has_hugepages|get_runtime_dir|iova_mode)")
        .allowlist_function("rte_(strerror|version|socket_id|lcore_count|get_main_lcore|lcore_is_enabled|lcore_to_socket_id|get_tsc_hz|delay_us_block)")
        .allowlist_function("rte_eal_(remote_launch|wait_lcore|mp_wait_lcore)")
        .allowlist_function("rte_dev_(probe|remove)")
        .allowlist_function("rte_log_(set_global_level|get_global_level)")
        .allowlist_function("rte_openlog_stream")
        .allowlist_function("rte_pktmbuf_(pool_create|free_bulk)")
        .allowlist_function("rte_mempool_(free|avail_count|in_use_count|lookup)")
        .allowlist_function("rte_eth_(dev_count_avail|dev_get_port_by_name|dev_get_name_by_port|dev_info_get|dev_configure|rx_queue_setup|tx_queue_setup|dev_start|dev_stop|dev_close|stats_get|stats_reset|macaddr_get|link_get_nowait|promiscuous_enable|dev_socket_id|find_next_owned_by|dev_is_valid_port|dev_set_mtu|dev_get_mtu|dev_adjust_nb_rx_tx_desc|xstats_get|xstats_get_names|link_speed_to_str|speed_bitflag)")
        .allowlist_type("rte_mbuf")
        .allowlist_type("rte_eth_(conf|stats|dev_info|rxconf|txconf|link|rss_conf|xstat|xstat_name)")
        .allowlist_type("rte_ether_addr")
        .allowlist_var("RTE_.*")
        .allowlist_var("fg_mbuf_off_.*|fg_rss_hf_flows|fg_rx_offload_scatter|fg_tx_offload_multi_segs")
        .blocklist_function("rte_eth_rx_burst|rte_eth_tx_burst")
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .unwrap_or_else(|e| panic!("bindgen over DPDK headers failed: {e}. {INSTALL_HINT}"));

    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");
    println!("cargo:version={}", dpdk.version);
    println!("cargo:rustc-env=FLOWGATE_DPDK_VERSION={}", dpdk.version);
}
