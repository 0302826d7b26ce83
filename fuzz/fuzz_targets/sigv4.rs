//! Fuzzes SigV4: the Authorization header parser, the canonicaliser and the
//! verifier, on requests cut from arbitrary bytes (NUL-separated fields:
//! method, path, query, then header name/value pairs, the last field is the
//! body). Nothing may panic, and a request we sign must verify.
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run sigv4 /tmp/sigv4_corpus fuzz/corpus/sigv4 -- -max_total_time=600
//! ```

#![no_main]

use flowgate_control::auth::sigv4::{self, SignedRequest};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\0');
    let method = fields.next().unwrap_or("");
    let path = fields.next().unwrap_or("");
    let query = fields.next().unwrap_or("");
    let rest: Vec<&str> = fields.collect();
    let (body, pairs) = rest.split_last().map_or(("", &[][..]), |(b, p)| (*b, p));
    let headers: Vec<(&str, &str)> = pairs.chunks(2).map(|c| (c[0], c.get(1).copied().unwrap_or(""))).collect();
    let r = SignedRequest {
        method,
        path,
        query,
        headers: &headers,
        body: body.as_bytes(),
    };
    for (n, v) in &headers {
        if n.eq_ignore_ascii_case("authorization") {
            if let Ok(a) = sigv4::parse_authorization(v) {
                let _ = sigv4::canonical_request(&r, &a.signed_headers);
            }
        }
    }
    let _ = sigv4::verify(&r, |_| Some("secret".to_string()), NOW);
    let all: Vec<String> = headers.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    let _ = sigv4::canonical_request(&r, &all);
});
