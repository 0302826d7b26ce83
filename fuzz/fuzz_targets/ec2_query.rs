//! Fuzzes the EC2 Traffic Mirroring face end to end (authentication off):
//! any form body is decoded and run against one in-memory mirror store that
//! lives across inputs, so sequences of creates, modifies and deletes are
//! explored too. Every answer must be 200 with an XML document or one of
//! EC2's errors in its XML error shape; never a panic.
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run ec2_query /tmp/ec2_corpus fuzz/corpus/ec2_query -- -max_total_time=600
//! ```

#![no_main]

use std::sync::{Arc, OnceLock};

use flowgate_control::api::{ec2, ApiRequest, ApiState};
use flowgate_control::config;
use libfuzzer_sys::fuzz_target;

fn state() -> &'static Arc<ApiState> {
    static S: OnceLock<Arc<ApiState>> = OnceLock::new();
    S.get_or_init(|| {
        let c = config::parse(include_str!("../../config/default.toml")).expect("default config");
        Arc::new(ApiState::new(Arc::new(c)))
    })
}

fuzz_target!(|body: &[u8]| {
    let req = ApiRequest {
        method: hyper::Method::POST,
        path: "/".into(),
        query: None,
        headers: hyper::HeaderMap::new(),
        body: bytes::Bytes::copy_from_slice(body),
        peer: "127.0.0.1:1".parse().unwrap(),
    };
    if !ec2::is_ec2(&req) {
        return;
    }
    let resp = ec2::handle(&req, state());
    let status = resp.status().as_u16();
    assert!(
        matches!(status, 200 | 400 | 403 | 412 | 500),
        "status {status}"
    );
});
