//! The AWS Network Firewall face: the five flow operations (StartFlowCapture,
//! StartFlowFlush, DescribeFlowOperation, ListFlowOperations,
//! ListFlowOperationResults) in the AWS JSON 1.0 protocol, so that boto3's
//! `network-firewall` client and `aws network-firewall ...` work unchanged
//! against the appliance.
//!
//! A request is `POST` with `X-Amz-Target: NetworkFirewall_20201112.<Op>`
//! and a JSON body; the answer is `application/x-amz-json-1.0`, 200 with the
//! output shape or an error shape ([`error`]). Every request's SigV4
//! signature is checked first ([`crate::auth`]) unless authentication is off.
//!
//! - [`model`]: the input and output shapes;
//! - [`validate`]: reading, checking and compiling requests;
//! - [`token`]: pagination tokens;
//! - [`handlers`]: the operations themselves, over [`crate::ops`];
//! - [`error`]: the error enum and its one mapping to HTTP.

pub mod error;
pub mod handlers;
pub mod model;
pub mod token;
pub mod validate;

use std::sync::Arc;

use hyper::header::HeaderValue;
use hyper::StatusCode;

use self::error::{NfwError, CONTENT_TYPE};
use self::model::{NfwOp, TARGET_PREFIX};
use crate::api::{respond, ApiRequest, ApiState, HttpResponse};

/// Answers one request that carries an `X-Amz-Target` header.
pub async fn handle(req: &ApiRequest, state: &Arc<ApiState>) -> HttpResponse {
    let target = req.header("x-amz-target").unwrap_or_default();
    let result = match state.auth.aws(req, "network-firewall") {
        Err(e) => Err(NfwError::from(e)),
        Ok(_) => dispatch(target, req, state).await,
    };
    let mut resp = match result {
        Ok(body) => respond(StatusCode::OK, CONTENT_TYPE, body),
        Err(e) => e.into_response(),
    };
    // botocore reports it as ResponseMetadata.RequestId.
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

async fn dispatch(
    target: &str,
    req: &ApiRequest,
    state: &Arc<ApiState>,
) -> Result<String, NfwError> {
    match NfwOp::from_target(target) {
        None => Err(NfwError::UnknownOperation(format!(
            "Unknown operation {target:?}: this firewall serves {TARGET_PREFIX}.StartFlowCapture, \
             StartFlowFlush, DescribeFlowOperation, ListFlowOperations and ListFlowOperationResults"
        ))),
        Some(op) => {
            let input = validate::read(op, &req.body)?;
            handlers::call(op, &input, state).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Instant, SystemTime};

    use http_body_util::BodyExt;
    use hyper::header::HeaderMap;
    use hyper::Method;
    use serde_json::{json, Value};

    use crate::dispatch::TakenFlow;
    use crate::ops::{Finish, OpKind, OpStatus, Results};
    use flowgate_dataplane::flow::key::v4_bits;
    use flowgate_dataplane::flow::{AddrFamily, Tuple};

    const ARN: &str = "arn:aws:network-firewall:us-east-1:123456789012:firewall/flowgate";

    fn state() -> Arc<ApiState> {
        let text =
            "[[ports]]\nname = \"a\"\ndevice = \"net_null0\"\n[operations]\nmax_in_progress = 2\n";
        let config = crate::config::parse(text).unwrap();
        Arc::new(ApiState::new(Arc::new(config)))
    }

    fn call(state: &Arc<ApiState>, target: &str, body: &str) -> (u16, Value) {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-target", HeaderValue::from_str(target).unwrap());
        let req = ApiRequest {
            method: Method::POST,
            path: "/".into(),
            query: None,
            headers,
            body: body.to_string().into(),
            peer: "127.0.0.1:1".parse().unwrap(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let resp = rt.block_on(handle(&req, state));
        assert_eq!(resp.headers()["content-type"], CONTENT_TYPE);
        assert!(resp.headers().contains_key("x-amzn-requestid"));
        let status = resp.status().as_u16();
        let bytes = rt.block_on(async { resp.into_body().collect().await.unwrap().to_bytes() });
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn op(name: &str) -> String {
        format!("{TARGET_PREFIX}.{name}")
    }

    fn error(state: &Arc<ApiState>, target: &str, body: Value) -> (u16, String, String) {
        let (status, v) = call(state, target, &body.to_string());
        (
            status,
            v["__type"].as_str().unwrap().to_string(),
            v["message"].as_str().unwrap().to_string(),
        )
    }

    /// A store with one finished capture of `n` flows and one running flush.
    fn populated(n: u16) -> (Arc<ApiState>, String, String) {
        let s = state();
        let now = Instant::now();
        let mut ops = s.ops();
        let spec = model::FlowOperationSpec {
            minimum_flow_age_in_seconds: Some(30),
            flow_filters: vec![model::FlowFilter {
                destination_port: Some("443".into()),
                ..Default::default()
            }],
            scope: model::Scope::default(),
        };
        let capture = ops
            .start(OpKind::Capture, spec.clone(), SystemTime::now(), now)
            .unwrap()
            .id;
        let flows = (0..n)
            .map(|p| TakenFlow {
                worker: 0,
                index: p as u32,
                tuple: Tuple {
                    src: v4_bits([10, 0, 0, 1]),
                    dst: v4_bits([192, 0, 2, 1]),
                    sport: 1000 + p,
                    dport: 443,
                    proto: 6,
                    family: AddrFamily::V4,
                    vlan: 0,
                },
                first_seen: 0,
                packets: 2,
                bytes: 120,
            })
            .collect();
        // Aged 5 s at 1000 ticks a second.
        let results = Results::new(flows, 5_000, 1_000);
        let f = Finish {
            status: OpStatus::Completed,
            message: None,
            results,
        };
        ops.finish(capture, f, now);
        let flush = ops
            .start(OpKind::Flush, spec, SystemTime::now(), now)
            .unwrap()
            .id;
        drop(ops);
        (s, capture.to_string(), flush.to_string())
    }

    #[test]
    fn unknown_targets_and_bad_bodies() {
        let s = state();
        for target in [
            "NetworkFirewall_20201112.DescribeFirewall",
            "Foo.StartFlowCapture",
            "",
        ] {
            let (status, code, _) = error(&s, target, json!({}));
            assert_eq!(
                (status, code.as_str()),
                (400, "UnknownOperationException"),
                "{target:?}"
            );
        }
        let (status, v) = call(&s, &op("StartFlowCapture"), "{\"FirewallArn\": ");
        assert_eq!(
            (status, v["__type"].as_str()),
            (400, Some("SerializationException"))
        );
    }

    #[test]
    fn start_validates_then_needs_the_data_plane() {
        let s = state();
        let filters = json!([{"DestinationPort": "443"}]);
        let (status, code, msg) = error(
            &s,
            &op("StartFlowFlush"),
            json!({"FirewallArn": format!("{ARN}x"), "FlowFilters": filters}),
        );
        assert_eq!(
            (status, code.as_str(), msg.as_str()),
            (400, "ResourceNotFoundException", "Firewall not found")
        );
        // Validation comes before the firewall lookup.
        let (_, code, _) = error(
            &s,
            &op("StartFlowFlush"),
            json!({"FirewallArn": format!("{ARN}x"), "FlowFilters": []}),
        );
        assert_eq!(code, "InvalidRequestException");
        let (_, code, _) = error(
            &s,
            &op("StartFlowFlush"),
            json!({"FirewallArn": ARN, "AvailabilityZone": "us-east-1b", "FlowFilters": filters}),
        );
        assert_eq!(code, "InvalidRequestException");
        let (status, code, _) = error(
            &s,
            &op("StartFlowCapture"),
            json!({"FirewallArn": ARN, "FlowFilters": filters}),
        );
        assert_eq!((status, code.as_str()), (500, "InternalServerError"));
        assert_eq!(s.ops().held(), 0, "nothing was started");
    }

    #[test]
    fn describe_and_list_read_the_store() {
        let (s, capture, flush) = populated(5);
        let (status, v) = call(
            &s,
            &op("DescribeFlowOperation"),
            &json!({"FirewallArn": ARN, "FlowOperationId": capture}).to_string(),
        );
        assert_eq!(status, 200);
        assert_eq!(v["FirewallArn"], ARN);
        assert_eq!(v["AvailabilityZone"], "us-east-1a");
        assert_eq!(v["FlowOperationType"], "FLOW_CAPTURE");
        assert_eq!(v["FlowOperationStatus"], "COMPLETED");
        assert!(v["FlowRequestTimestamp"].as_f64().unwrap() > 1.6e9);
        assert_eq!(
            v["FlowOperation"],
            json!({"MinimumFlowAgeInSeconds": 30, "FlowFilters": [{"DestinationPort": "443"}]})
        );

        let (_, v) = call(
            &s,
            &op("ListFlowOperations"),
            &json!({"FirewallArn": ARN}).to_string(),
        );
        let ids: Vec<&str> = v["FlowOperations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["FlowOperationId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [flush.as_str(), capture.as_str()], "newest first");
        assert!(v.get("NextToken").is_none());
        let (_, v) = call(
            &s,
            &op("ListFlowOperations"),
            &json!({"FirewallArn": ARN, "FlowOperationType": "FLOW_FLUSH"}).to_string(),
        );
        assert_eq!(v["FlowOperations"][0]["FlowOperationStatus"], "IN_PROGRESS");
        assert_eq!(v["FlowOperations"].as_array().unwrap().len(), 1);

        // Results page by two: 2 + 2 + 1, each flow once.
        let mut token: Option<String> = None;
        let mut ports = Vec::new();
        loop {
            let mut body = json!({"FirewallArn": ARN, "FlowOperationId": capture, "MaxResults": 2});
            if let Some(t) = &token {
                body["NextToken"] = json!(t);
            }
            let (status, v) = call(&s, &op("ListFlowOperationResults"), &body.to_string());
            assert_eq!(status, 200, "{v}");
            for f in v["Flows"].as_array().unwrap() {
                ports.push(f["SourcePort"].as_str().unwrap().to_string());
            }
            match v.get("NextToken") {
                Some(t) => token = Some(t.as_str().unwrap().to_string()),
                None => break,
            }
        }
        assert_eq!(ports, ["1000", "1001", "1002", "1003", "1004"]);

        let (_, v) = call(
            &s,
            &op("ListFlowOperationResults"),
            &json!({"FirewallArn": ARN, "FlowOperationId": flush}).to_string(),
        );
        assert_eq!(
            (
                v["FlowOperationStatus"].as_str(),
                v["Flows"].as_array().map(Vec::len)
            ),
            (Some("IN_PROGRESS"), Some(0))
        );
    }

    #[test]
    fn lookups_fail_as_the_service_does() {
        let (s, capture, _) = populated(3);
        let missing = uuid::Uuid::new_v4().to_string();
        let (status, code, msg) = error(
            &s,
            &op("DescribeFlowOperation"),
            json!({"FirewallArn": ARN, "FlowOperationId": missing}),
        );
        assert_eq!(
            (status, code.as_str(), msg),
            (
                400,
                "ResourceNotFoundException",
                format!("Flow operation {missing} not found")
            )
        );
        let (_, code, _) = error(
            &s,
            &op("ListFlowOperationResults"),
            json!({"FirewallArn": ARN, "FlowOperationId": missing}),
        );
        assert_eq!(code, "ResourceNotFoundException");
        let (_, code, msg) = error(
            &s,
            &op("DescribeFlowOperation"),
            json!({"FirewallArn": ARN, "FlowOperationId": "nope"}),
        );
        assert_eq!(
            (code.as_str(), msg.as_str()),
            (
                "InvalidRequestException",
                "FlowOperationId must match the UUID pattern"
            )
        );
        let other = token::results_token(&uuid::Uuid::new_v4(), 1);
        for t in [other.as_str(), "bm9wZQ==", "b3BzOkFOWToz"] {
            let (_, code, msg) = error(
                &s,
                &op("ListFlowOperationResults"),
                json!({"FirewallArn": ARN, "FlowOperationId": capture, "NextToken": t}),
            );
            assert_eq!(
                (code.as_str(), msg.as_str()),
                ("InvalidRequestException", "Invalid NextToken")
            );
        }
        let (_, code, msg) = error(
            &s,
            &op("ListFlowOperations"),
            json!({"FirewallArn": ARN, "NextToken": token::operations_token(Some(OpKind::Flush), 3)}),
        );
        assert_eq!(
            (code.as_str(), msg.as_str()),
            ("InvalidRequestException", "Invalid NextToken")
        );
        let (_, code, _) = error(
            &s,
            &op("ListFlowOperations"),
            json!({"FirewallArn": ARN, "MaxResults": 101}),
        );
        assert_eq!(code, "InvalidRequestException");
    }
}
