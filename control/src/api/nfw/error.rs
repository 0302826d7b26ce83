//! Every error the Network Firewall face answers, and the one place they
//! become HTTP: the JSON 1.0 error shape, `{"__type": "<Code>", "message":
//! "<text>"}`, which boto3 turns into `client.exceptions.<Code>`.
//!
//! The four modeled errors are the ones botocore's model lists for every
//! flow operation. Two more come from the AWS JSON protocol itself, as AWS
//! JSON services answer them: `SerializationException` when the body is not
//! JSON or a member has the wrong JSON type (the request cannot be read
//! into the operation's shapes), and `UnknownOperationException` for an
//! `X-Amz-Target` that names no operation this face serves. boto3 raises
//! those as a plain `ClientError` carrying the code.

use hyper::StatusCode;

use crate::api::{respond, HttpResponse};

/// The content type of every response of this face.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NfwError {
    /// A bad parameter name or value, a malformed ARN, a scope that is not
    /// this firewall's, a bad pagination token.
    #[error("{0}")]
    InvalidRequest(String),
    /// An unknown firewall or flow operation.
    #[error("{0}")]
    ResourceNotFound(String),
    /// Too many operations in progress.
    #[error("{0}")]
    Throttling(String),
    /// The request was valid but the appliance could not act on it.
    #[error("{0}")]
    InternalServerError(String),
    /// The body is not JSON, or a member has the wrong JSON type.
    #[error("{0}")]
    Serialization(String),
    /// `X-Amz-Target` names no operation served here.
    #[error("{0}")]
    UnknownOperation(String),
    /// No SigV4 `Authorization` header.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// An access key id we do not know.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// A signature that does not match, or that expired.
    #[error("{0}")]
    InvalidSignature(String),
    /// An `Authorization` header that is not well formed.
    #[error("{0}")]
    IncompleteSignature(String),
}

impl From<crate::auth::sigv4::SigV4Error> for NfwError {
    fn from(e: crate::auth::sigv4::SigV4Error) -> NfwError {
        use crate::auth::sigv4::{format_amz_date, parse_amz_date, SigV4Error, MAX_SKEW_SECS};
        match e {
            SigV4Error::Missing => NfwError::MissingAuthenticationToken,
            SigV4Error::UnknownKey => NfwError::UnrecognizedClient,
            SigV4Error::BadSignature => NfwError::InvalidSignature(
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
                    .into(),
            ),
            SigV4Error::Expired { signed, now } => {
                let earliest = parse_amz_date(&now).map_or(now.clone(), |t| format_amz_date(t - MAX_SKEW_SECS));
                NfwError::InvalidSignature(format!("Signature expired: {signed} is now earlier than {earliest} ({now} - 5 min.)"))
            }
            SigV4Error::Malformed(m) => NfwError::IncompleteSignature(m),
        }
    }
}

impl NfwError {
    /// The `__type` code.
    pub fn code(&self) -> &'static str {
        match self {
            NfwError::InvalidRequest(_) => "InvalidRequestException",
            NfwError::ResourceNotFound(_) => "ResourceNotFoundException",
            NfwError::Throttling(_) => "ThrottlingException",
            NfwError::InternalServerError(_) => "InternalServerError",
            NfwError::Serialization(_) => "SerializationException",
            NfwError::UnknownOperation(_) => "UnknownOperationException",
            NfwError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            NfwError::UnrecognizedClient => "UnrecognizedClientException",
            NfwError::InvalidSignature(_) => "InvalidSignatureException",
            NfwError::IncompleteSignature(_) => "IncompleteSignatureException",
        }
    }

    /// The HTTP status: 500 for the server's fault, 403 for failed
    /// authentication, 400 for the rest.
    pub fn status(&self) -> StatusCode {
        match self {
            NfwError::InternalServerError(_) => StatusCode::INTERNAL_SERVER_ERROR,
            NfwError::MissingAuthenticationToken
            | NfwError::UnrecognizedClient
            | NfwError::InvalidSignature(_)
            | NfwError::IncompleteSignature(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        serde_json::json!({ "__type": self.code(), "message": self.to_string() }).to_string()
    }

    /// The whole HTTP answer.
    pub fn into_response(self) -> HttpResponse {
        respond(self.status(), CONTENT_TYPE, self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn parts(e: NfwError) -> (StatusCode, String, serde_json::Value) {
        let r = e.into_response();
        let status = r.status();
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        let body = futures_body(r);
        (status, ct, serde_json::from_slice(&body).unwrap())
    }

    fn futures_body(r: HttpResponse) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async { r.into_body().collect().await.unwrap().to_bytes().to_vec() })
    }

    #[test]
    fn each_error_maps_to_its_code_and_status() {
        let cases = [
            (
                NfwError::InvalidRequest("FlowOperationId must match the UUID pattern".into()),
                "InvalidRequestException",
                400,
            ),
            (
                NfwError::ResourceNotFound("Firewall not found".into()),
                "ResourceNotFoundException",
                400,
            ),
            (NfwError::Throttling("x".into()), "ThrottlingException", 400),
            (
                NfwError::InternalServerError("x".into()),
                "InternalServerError",
                500,
            ),
            (
                NfwError::Serialization("x".into()),
                "SerializationException",
                400,
            ),
            (
                NfwError::UnknownOperation("x".into()),
                "UnknownOperationException",
                400,
            ),
        ];
        for (e, code, status) in cases {
            let msg = e.to_string();
            let (s, ct, body) = parts(e);
            assert_eq!(s.as_u16(), status);
            assert_eq!(ct, CONTENT_TYPE);
            assert_eq!(body["__type"], code);
            assert_eq!(body["message"], msg.as_str());
            assert_eq!(body.as_object().unwrap().len(), 2);
        }
    }

    #[test]
    fn messages_are_json_escaped() {
        let (_, _, body) = parts(NfwError::InvalidRequest("\"10.0.0.0/33\"\n".into()));
        assert_eq!(body["message"], "\"10.0.0.0/33\"\n");
    }
}
