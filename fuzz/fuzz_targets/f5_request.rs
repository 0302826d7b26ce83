//! Fuzzes the F5 "matching flows" request decoder against the default
//! configuration: any body is either a query (whose compiled rule must be
//! usable by a worker) or a 4xx error with a one-line message.
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run f5_request /tmp/f5_corpus fuzz/corpus/f5_request -- -max_total_time=600
//! ```

#![no_main]

use std::sync::OnceLock;

use flowgate_control::api::f5;
use flowgate_control::config::{self, Config};
use libfuzzer_sys::fuzz_target;

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| {
        config::parse(include_str!("../../config/default.toml")).expect("default config parses")
    })
}

fuzz_target!(|body: &[u8]| {
    match f5::parse_request(body, config()) {
        Ok(q) => {
            let _ = q.rule();
            let _ = q.worker_filters(&f5::Topology::of(config()));
        }
        Err(e) => {
            assert!(e.status.is_client_error() || e.status.as_u16() == 404, "{}", e.status);
            assert!(!e.message.contains('\n'), "{}", e.message);
            let _ = e.response();
        }
    }
});
