//! Pagination tokens: opaque to clients, checked when they come back.
//!
//! A token is base64 (whose alphabet fits the model's `[0-9A-Za-z:\/+=]+$`)
//! of a short text saying which list it continues and where:
//! `ops:<type>:<seq>` continues a ListFlowOperations of that type filter
//! below operation number `seq` (so operations started between two pages
//! neither repeat nor vanish), `res:<id>:<offset>` continues the results of
//! operation `id` at that offset (results never change once final). A token
//! that does not decode, or belongs to another list or filter, is an
//! InvalidRequestException, as AWS answers a token used with different
//! parameters.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use uuid::Uuid;

use super::error::NfwError;
use super::model::kind_name;
use crate::ops::OpKind;

fn invalid() -> NfwError {
    NfwError::InvalidRequest("Invalid NextToken".into())
}

fn filter_label(kind: Option<OpKind>) -> &'static str {
    kind.map_or("ANY", kind_name)
}

fn decode(token: &str) -> Result<String, NfwError> {
    let bytes = STANDARD.decode(token).map_err(|_| invalid())?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

/// A token continuing a ListFlowOperations below operation number `seq`.
pub fn operations_token(kind: Option<OpKind>, seq: u64) -> String {
    STANDARD.encode(format!("ops:{}:{seq}", filter_label(kind)))
}

/// The operation number a ListFlowOperations token continues below; it must
/// have been issued for the same type filter.
pub fn operations_from(token: &str, kind: Option<OpKind>) -> Result<u64, NfwError> {
    let text = decode(token)?;
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("ops"), Some(label), Some(seq)) if label == filter_label(kind) => {
            seq.parse().map_err(|_| invalid())
        }
        _ => Err(invalid()),
    }
}

/// A token continuing operation `id`'s results at `offset`.
pub fn results_token(id: &Uuid, offset: u64) -> String {
    STANDARD.encode(format!("res:{id}:{offset}"))
}

/// The offset a ListFlowOperationResults token continues at; it must have
/// been issued for operation `id`, and point inside its `len` results.
pub fn results_from(token: &str, id: &Uuid, len: usize) -> Result<usize, NfwError> {
    let text = decode(token)?;
    let mut parts = text.splitn(3, ':');
    let (Some("res"), Some(tid), Some(offset)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if tid != id.to_string() {
        return Err(invalid());
    }
    match offset.parse::<usize>() {
        Ok(o) if o > 0 && o < len => Ok(o),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fits_model_pattern(t: &str) -> bool {
        (1..=4096).contains(&t.len())
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '+' | '='))
    }

    #[test]
    fn operation_tokens_round_trip_for_their_filter_only() {
        let t = operations_token(Some(OpKind::Flush), 42);
        assert!(fits_model_pattern(&t));
        assert_eq!(operations_from(&t, Some(OpKind::Flush)).unwrap(), 42);
        assert!(operations_from(&t, None).is_err());
        assert!(operations_from(&t, Some(OpKind::Capture)).is_err());
        let any = operations_token(None, u64::MAX);
        assert_eq!(operations_from(&any, None).unwrap(), u64::MAX);
    }

    #[test]
    fn result_tokens_round_trip_for_their_operation_only() {
        let id = Uuid::new_v4();
        let t = results_token(&id, 100);
        assert!(fits_model_pattern(&t));
        assert_eq!(results_from(&t, &id, 101).unwrap(), 100);
        assert!(results_from(&t, &id, 100).is_err(), "past the end");
        assert!(results_from(&t, &Uuid::new_v4(), 1000).is_err());
        assert!(results_from(&results_token(&id, 0), &id, 10).is_err());
    }

    #[test]
    fn foreign_tokens_are_invalid() {
        let id = Uuid::new_v4();
        let results = results_token(&id, 5);
        for bad in [
            "b3BzOjE=",     // "ops:1": too few parts
            "bm9wZQ==",     // "nope"
            "!!!",          // not base64
            "/w==",         // not UTF-8
            "b3BzOkFOWTp4", // "ops:ANY:x"
            results.as_str(),
        ] {
            let e = operations_from(bad, None).unwrap_err();
            assert_eq!(e.to_string(), "Invalid NextToken", "{bad}");
            assert_eq!(e.code(), "InvalidRequestException");
        }
        let ops = operations_token(None, 3);
        assert!(results_from(&ops, &id, 10).is_err());
    }
}
