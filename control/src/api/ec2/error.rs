//! EC2's errors: one typed error per situation, rendered once in the EC2
//! query protocol's XML error shape.

use hyper::StatusCode;

use crate::api::{respond, HttpResponse};
use crate::auth::sigv4::SigV4Error;

/// What went wrong, as EC2 names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ec2Error {
    /// A parameter's value is not allowed.
    #[error("{0}")]
    InvalidParameterValue(String),
    /// A required parameter is missing.
    #[error("The request must contain the parameter {0}")]
    MissingParameter(String),
    /// Parameters that cannot go together.
    #[error("{0}")]
    InvalidParameterCombination(String),
    /// An object does not exist: (code, message).
    #[error("{1}")]
    NotFound(&'static str, String),
    /// The object is in use.
    #[error("{0}")]
    DependencyViolation(String),
    /// A configured bound is reached: (code, message).
    #[error("{1}")]
    LimitExceeded(&'static str, String),
    /// A ClientToken already used with other parameters, or for an object
    /// since deleted.
    #[error("{0}")]
    IdempotentParameterMismatch(String),
    /// The NextToken is not one we gave out.
    #[error("The specified pagination token is not valid.")]
    InvalidPaginationToken,
    /// The Action is not one this appliance serves.
    #[error("The action {0} is not valid for this web service.")]
    InvalidAction(String),
    /// DryRun, and the caller may do it.
    #[error("Request would have succeeded, but DryRun flag is set.")]
    DryRunOperation,
    /// DryRun, and the caller could not be told apart from anyone.
    #[error("You are not authorized to perform this operation.")]
    UnauthorizedOperation,
    /// Unknown key, or a malformed Authorization header.
    #[error("AWS was not able to validate the provided access credentials")]
    AuthFailure,
    /// The signature does not match.
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")]
    SignatureDoesNotMatch,
    /// Signed more than 5 minutes away from our clock.
    #[error("Request has expired.")]
    RequestExpired,
    /// No Authorization at all.
    #[error("Request is missing Authentication Token")]
    MissingAuthenticationToken,
    /// Too many requests.
    #[error("Request limit exceeded.")]
    RequestLimitExceeded,
    /// The state file could not be written; nothing changed.
    #[error("An internal error has occurred: {0}")]
    InternalError(String),
}

impl Ec2Error {
    /// The `<Code>`.
    pub fn code(&self) -> &'static str {
        match self {
            Ec2Error::InvalidParameterValue(_) => "InvalidParameterValue",
            Ec2Error::MissingParameter(_) => "MissingParameter",
            Ec2Error::InvalidParameterCombination(_) => "InvalidParameterCombination",
            Ec2Error::NotFound(c, _) | Ec2Error::LimitExceeded(c, _) => c,
            Ec2Error::DependencyViolation(_) => "DependencyViolation",
            Ec2Error::IdempotentParameterMismatch(_) => "IdempotentParameterMismatch",
            Ec2Error::InvalidPaginationToken => "InvalidPaginationToken",
            Ec2Error::InvalidAction(_) => "InvalidAction",
            Ec2Error::DryRunOperation => "DryRunOperation",
            Ec2Error::UnauthorizedOperation => "UnauthorizedOperation",
            Ec2Error::AuthFailure => "AuthFailure",
            Ec2Error::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Ec2Error::RequestExpired => "RequestExpired",
            Ec2Error::MissingAuthenticationToken => "MissingAuthenticationToken",
            Ec2Error::RequestLimitExceeded => "RequestLimitExceeded",
            Ec2Error::InternalError(_) => "InternalError",
        }
    }

    /// The HTTP status EC2 answers it with.
    pub fn status(&self) -> StatusCode {
        match self {
            Ec2Error::DryRunOperation => StatusCode::PRECONDITION_FAILED,
            Ec2Error::UnauthorizedOperation | Ec2Error::SignatureDoesNotMatch => {
                StatusCode::FORBIDDEN
            }
            Ec2Error::AuthFailure | Ec2Error::MissingAuthenticationToken => {
                StatusCode::UNAUTHORIZED
            }
            Ec2Error::RequestLimitExceeded => StatusCode::SERVICE_UNAVAILABLE,
            Ec2Error::InternalError(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The XML error document. Messages echo what the caller sent (ids,
    /// values), so they are written as [`super::xml::text`] writes them.
    pub fn body(&self, request_id: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code>\
             <Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
            self.code(),
            super::xml::text(&self.to_string()),
            super::xml::text(request_id)
        )
    }

    /// The whole HTTP response.
    pub fn into_response(self, request_id: &str) -> HttpResponse {
        respond(self.status(), super::CONTENT_TYPE, self.body(request_id))
    }
}

impl From<SigV4Error> for Ec2Error {
    fn from(e: SigV4Error) -> Self {
        match e {
            SigV4Error::Missing => Ec2Error::MissingAuthenticationToken,
            SigV4Error::Malformed(_) | SigV4Error::UnknownKey => Ec2Error::AuthFailure,
            SigV4Error::BadSignature => Ec2Error::SignatureDoesNotMatch,
            SigV4Error::Expired { .. } => Ec2Error::RequestExpired,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_render_in_the_ec2_shape() {
        let e = Ec2Error::NotFound(
            "InvalidTrafficMirrorSessionId.NotFound",
            "The traffic mirror session 'tms-1' does not exist.".into(),
        );
        let b = e.body("r1");
        assert!(b.contains("<Code>InvalidTrafficMirrorSessionId.NotFound</Code>"));
        assert!(b.contains(
            "<Message>The traffic mirror session &apos;tms-1&apos; does not exist.</Message>"
        ));
        assert!(b.contains("<RequestID>r1</RequestID>"));
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(Ec2Error::DryRunOperation.status().as_u16(), 412);
        assert_eq!(Ec2Error::from(SigV4Error::UnknownKey).code(), "AuthFailure");
    }

    #[test]
    fn an_echoed_control_character_keeps_the_error_document_well_formed() {
        let e = Ec2Error::NotFound(
            "InvalidTrafficMirrorSessionId.NotFound",
            "The traffic mirror session ID 'tms-\u{1}\r' does not exist.".into(),
        );
        let b = e.body("r1");
        assert!(b.chars().all(super::super::xml::is_xml_char), "{b:?}");
        assert!(b.contains("&apos;tms-\u{fffd}&#13;&apos;"), "{b}");
    }
}
