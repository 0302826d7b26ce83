//! Fuzzes the Network Firewall JSON 1.0 request decoders: the first byte
//! picks the operation (as X-Amz-Target would), the rest is the body. Any
//! input must decode or be refused with an error the API can render: a
//! known error code and a JSON body, never a panic.
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run nfw_request /tmp/nfw_corpus fuzz/corpus/nfw_request -- -max_total_time=600
//! ```

#![no_main]

use flowgate_control::api::nfw::model::NfwOp;
use flowgate_control::api::nfw::{error::NfwError, validate};
use libfuzzer_sys::fuzz_target;

fn check(e: NfwError) {
    assert!(!e.code().is_empty());
    let body = e.body();
    let v: serde_json::Value = serde_json::from_str(&body).expect("error body is JSON");
    assert!(v.get("__type").is_some() || v.get("message").is_some(), "{body}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let op = NfwOp::ALL[usize::from(sel) % NfwOp::ALL.len()];
    let input = match validate::read(op, body) {
        Ok(i) => i,
        Err(e) => return check(e),
    };
    let r = match op {
        NfwOp::StartFlowCapture | NfwOp::StartFlowFlush => validate::start(&input).map(|_| ()),
        NfwOp::DescribeFlowOperation => validate::describe(&input).map(|_| ()),
        NfwOp::ListFlowOperations => validate::list_operations(&input).map(|_| ()),
        NfwOp::ListFlowOperationResults => validate::list_results(&input).map(|_| ()),
    };
    if let Err(e) = r {
        check(e);
    }
});
