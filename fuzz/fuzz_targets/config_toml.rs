//! Fuzzes the config loader on arbitrary text: it parses and validates, or
//! names one key and one problem on one line (what an operator sees before
//! exit status 2). Never a panic.
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run config_toml /tmp/config_corpus fuzz/corpus/config_toml -- -max_total_time=600
//! ```

#![no_main]

use flowgate_control::config::{self, Loaded};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::parse(text) {
        Ok(config) => {
            let l = Loaded {
                path: "/nonexistent/flowgate-fuzz.toml".into(),
                config,
            };
            if let Err(e) = config::validate(&l) {
                let line = e.to_string();
                assert!(!line.contains('\n'), "{line}");
                assert!(!e.key.is_empty());
            }
        }
        Err((key, problem)) => {
            assert!(!key.is_empty());
            assert!(!problem.contains('\n'), "{problem}");
        }
    }
});
