//! AWS Signature Version 4, verified the way AWS services check it.
//!
//! A signed request carries `Authorization: AWS4-HMAC-SHA256
//! Credential=<key id>/<date>/<region>/<service>/aws4_request,
//! SignedHeaders=<names>, Signature=<hex>` and an `X-Amz-Date`. The
//! verifier rebuilds the canonical request from what arrived (method, path,
//! query, the signed headers, the body's SHA-256), derives the signing key
//! from the secret of that key id, and compares signatures in constant
//! time (the `hmac` crate's `verify_slice`). Requests older or newer than
//! five minutes are refused, as AWS does.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// How far a request's timestamp may be from now, either way.
pub const MAX_SKEW_SECS: i64 = 5 * 60;

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header (or not a SigV4 one).
    #[error("the request carries no AWS Signature Version 4 authorization")]
    Missing,
    /// The header is not well formed.
    #[error("malformed Authorization header: {0}")]
    Malformed(String),
    /// The access key id is not one we know.
    #[error("unknown access key id")]
    UnknownKey,
    /// The signature does not match.
    #[error("signature mismatch")]
    BadSignature,
    /// The request's time is more than five minutes from ours.
    #[error("signature expired: {signed} is outside {now} +/- 5 min")]
    Expired {
        /// The request's `X-Amz-Date`.
        signed: String,
        /// Our time, same format.
        now: String,
    },
}

/// The parts of an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Access key id.
    pub key_id: String,
    /// Credential scope date (YYYYMMDD).
    pub date: String,
    /// Region.
    pub region: String,
    /// Service name.
    pub service: String,
    /// Signed header names, lower case, in order.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

/// Parses an `Authorization` header value.
pub fn parse_authorization(value: &str) -> Result<Authorization, SigV4Error> {
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256")
        .ok_or(SigV4Error::Missing)?
        .trim();
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let m = |what: &str| SigV4Error::Malformed(format!("no {what}"));
    let credential = credential.ok_or_else(|| m("Credential"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[4] != "aws4_request" || scope[1].len() != 8 {
        return Err(SigV4Error::Malformed(format!(
            "credential scope {credential:?}"
        )));
    }
    let signature = signature.ok_or_else(|| m("Signature"))?;
    if signature.len() != 64 || !signature.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(SigV4Error::Malformed(
            "signature is not 64 hex digits".into(),
        ));
    }
    Ok(Authorization {
        key_id: scope[0].to_string(),
        date: scope[1].to_string(),
        region: scope[2].to_string(),
        service: scope[3].to_string(),
        signed_headers: signed
            .ok_or_else(|| m("SignedHeaders"))?
            .split(';')
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        signature: signature.to_ascii_lowercase(),
    })
}

/// What of a request the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path (as sent, before percent-decoding).
    pub path: &'a str,
    /// Raw query string (without `?`), or empty.
    pub query: &'a str,
    /// Header (name, value) pairs; names in any case, repeated names allowed.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub body: &'a [u8],
}

/// RFC 3986 encoding as SigV4 uses it: unreserved characters stay.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric() || "-_.~".contains(c) || (keep_slash && c == '/') {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The canonical query string: pairs decoded, re-encoded, sorted.
fn canonical_query(q: &str) -> String {
    let mut pairs: Vec<(String, String)> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical request (step 1 of the algorithm); public for fuzzing and tests.
pub fn canonical_request(r: &SignedRequest<'_>, signed_headers: &[String]) -> String {
    let path = if r.path.is_empty() {
        "/".to_string()
    } else {
        uri_encode(&percent_decode(r.path), true)
    };
    let mut headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload_hash = hex::encode(Sha256::digest(r.body));
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        r.method,
        path,
        canonical_query(r.query),
        headers,
        signed_headers.join(";"),
        payload_hash
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// The signing key for a secret, date, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

/// Seconds since the epoch of an `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`).
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, fmt)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// An `X-Amz-Date` for a time.
pub fn format_amz_date(unix: i64) -> String {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| t.format(fmt).unwrap_or_default())
        .unwrap_or_default()
}

/// Verifies a request: returns the access key id it was signed with.
/// `secret_of` looks up a key id's secret; `now` is Unix seconds.
pub fn verify(
    r: &SignedRequest<'_>,
    secret_of: impl Fn(&str) -> Option<String>,
    now: i64,
) -> Result<String, SigV4Error> {
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let auth = parse_authorization(header("authorization").ok_or(SigV4Error::Missing)?)?;
    let amz_date =
        header("x-amz-date").ok_or_else(|| SigV4Error::Malformed("no X-Amz-Date".into()))?;
    let when = parse_amz_date(amz_date)
        .ok_or_else(|| SigV4Error::Malformed(format!("X-Amz-Date {amz_date:?}")))?;
    if !amz_date.starts_with(&auth.date) {
        return Err(SigV4Error::Malformed(
            "credential date differs from X-Amz-Date".into(),
        ));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::Malformed("host is not signed".into()));
    }
    let secret = secret_of(&auth.key_id).ok_or(SigV4Error::UnknownKey)?;
    if (now - when).abs() > MAX_SKEW_SECS {
        return Err(SigV4Error::Expired {
            signed: amz_date.to_string(),
            now: format_amz_date(now),
        });
    }
    let creq = canonical_request(r, &auth.signed_headers);
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(creq.as_bytes()))
    );
    let mut m = HmacSha256::new_from_slice(&signing_key(
        &secret,
        &auth.date,
        &auth.region,
        &auth.service,
    ))
    .expect("any key length");
    m.update(to_sign.as_bytes());
    let given = hex::decode(&auth.signature)
        .map_err(|_| SigV4Error::Malformed("signature is not hex".into()))?;
    m.verify_slice(&given)
        .map_err(|_| SigV4Error::BadSignature)?;
    Ok(auth.key_id)
}

/// Signs a request: returns the `X-Amz-Date` and `Authorization` headers
/// to add. `headers` must include `host`; every header given is signed.
pub fn sign(
    r: &SignedRequest<'_>,
    key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: i64,
) -> [(String, String); 2] {
    let amz_date = format_amz_date(now);
    let date = &amz_date[..8];
    let mut all: Vec<(&str, &str)> = r.headers.to_vec();
    all.push(("x-amz-date", &amz_date));
    let mut names: Vec<String> = all.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    let signed = SignedRequest {
        headers: &all,
        ..*r
    };
    let creq = canonical_request(&signed, &names);
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(creq.as_bytes()))
    );
    let sig = hex::encode(hmac(
        &signing_key(secret, date, region, service),
        to_sign.as_bytes(),
    ));
    [
        ("x-amz-date".to_string(), amz_date.clone()),
        (
            "authorization".to_string(),
            format!(
                "AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={}, Signature={sig}",
                names.join(";")
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn secret(k: &str) -> Option<String> {
        (k == KEY).then(|| SECRET.to_string())
    }

    #[test]
    fn aws_test_suite_get_vanilla() {
        // From the AWS Signature Version 4 test suite.
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ];
        let r = SignedRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let now = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(verify(&r, secret, now), Ok(KEY.to_string()));
    }

    /// Requests signed by botocore 1.x (boto3's signer) for flowgate's two AWS faces.
    fn botocore_json() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Content-Type", "application/x-amz-json-1.0"),
            ("X-Amz-Target", "NetworkFirewall_20201112.ListFlowOperations"),
            ("Host", "127.0.0.1:8080"),
            ("X-Amz-Date", "20261123T231048Z"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/network-firewall/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=97e4757a5957f2064282cad59172f5a8e617fbd21fa571b6ed3451b0c3013988"),
        ]
    }
    const JSON_BODY: &[u8] =
        br#"{"FirewallArn": "arn:aws:network-firewall:us-east-1:123456789012:firewall/flowgate"}"#;

    #[test]
    fn botocore_signed_requests_verify() {
        let now = parse_amz_date("20261123T231048Z").unwrap();
        let h = botocore_json();
        let r = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            body: JSON_BODY,
        };
        assert_eq!(verify(&r, secret, now + 60), Ok(KEY.to_string()));
        let h = [
            ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
            ("Host", "127.0.0.1:8080"),
            ("X-Amz-Date", "20261123T231048Z"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=f36b290e9de7425f6cf7c4bbad691a3274f9e658a2c3d5a1856391415e61eec6"),
        ];
        let r = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            body: b"Action=DescribeTrafficMirrorSessions&Version=2016-11-15",
        };
        assert_eq!(verify(&r, secret, now), Ok(KEY.to_string()));
    }

    #[test]
    fn every_failure_is_told_apart() {
        let now = parse_amz_date("20261123T231048Z").unwrap();
        let h = botocore_json();
        let ok = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            body: JSON_BODY,
        };
        // Tampered body, method or signed header.
        let r = SignedRequest { body: b"{}", ..ok };
        assert_eq!(verify(&r, secret, now), Err(SigV4Error::BadSignature));
        let r = SignedRequest {
            method: "PUT",
            ..ok
        };
        assert_eq!(verify(&r, secret, now), Err(SigV4Error::BadSignature));
        let mut h2 = h.clone();
        h2[1].1 = "NetworkFirewall_20201112.StartFlowFlush";
        let r = SignedRequest { headers: &h2, ..ok };
        assert_eq!(verify(&r, secret, now), Err(SigV4Error::BadSignature));
        // Wrong secret, unknown key, too old, too new, none at all.
        assert_eq!(
            verify(&ok, |_| Some("other".into()), now),
            Err(SigV4Error::BadSignature)
        );
        assert_eq!(verify(&ok, |_| None, now), Err(SigV4Error::UnknownKey));
        assert!(matches!(
            verify(&ok, secret, now + 301),
            Err(SigV4Error::Expired { .. })
        ));
        assert!(matches!(
            verify(&ok, secret, now - 301),
            Err(SigV4Error::Expired { .. })
        ));
        let r = SignedRequest {
            headers: &h[..4],
            ..ok
        };
        assert_eq!(verify(&r, secret, now), Err(SigV4Error::Missing));
        let mut h3 = h.clone();
        h3[4].1 = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE, Signature=zz";
        let r = SignedRequest { headers: &h3, ..ok };
        assert!(matches!(
            verify(&r, secret, now),
            Err(SigV4Error::Malformed(_))
        ));
    }

    #[test]
    fn what_we_sign_verifies_and_matches_the_aws_vector() {
        let now = parse_amz_date("20150830T123600Z").unwrap();
        let base = [("Host", "example.amazonaws.com")];
        let r = SignedRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &base,
            body: b"",
        };
        let added = sign(&r, KEY, SECRET, "us-east-1", "service", now);
        assert!(
            added[1].1.ends_with(
                "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            ),
            "{}",
            added[1].1
        );
        let mut h: Vec<(&str, &str)> = base.to_vec();
        h.extend(added.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let r = SignedRequest { headers: &h, ..r };
        assert_eq!(verify(&r, secret, now), Ok(KEY.to_string()));
    }

    #[test]
    fn canonical_query_and_path() {
        assert_eq!(canonical_query("b=2&a=1&a=0&c"), "a=0&a=1&b=2&c=");
        assert_eq!(canonical_query("k=a%20b&x=%7E"), "k=a%20b&x=~");
        assert_eq!(uri_encode("/a b/c", true), "/a%20b/c");
    }
}
