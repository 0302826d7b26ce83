//! The face's shapes, as botocore's `network-firewall` 2020-11-12 model
//! names them: what requests may carry (read with serde, every member
//! optional so that a missing one is a validation error, not a parse
//! error), and what responses carry (written with serde, absent members
//! left out, timestamps as epoch seconds as the JSON 1.0 protocol writes
//! them).

use serde::{Deserialize, Serialize};

use crate::ops::{OpKind, OpStatus};

/// The `X-Amz-Target` prefix of every operation.
pub const TARGET_PREFIX: &str = "NetworkFirewall_20201112";

/// The operations this face serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NfwOp {
    /// StartFlowCapture.
    StartFlowCapture,
    /// StartFlowFlush.
    StartFlowFlush,
    /// DescribeFlowOperation.
    DescribeFlowOperation,
    /// ListFlowOperations.
    ListFlowOperations,
    /// ListFlowOperationResults.
    ListFlowOperationResults,
}

const SCOPE: [&str; 4] = [
    "AvailabilityZone",
    "AvailabilityZoneId",
    "VpcEndpointAssociationArn",
    "VpcEndpointId",
];

impl NfwOp {
    /// Every operation.
    pub const ALL: [NfwOp; 5] = [
        NfwOp::StartFlowCapture,
        NfwOp::StartFlowFlush,
        NfwOp::DescribeFlowOperation,
        NfwOp::ListFlowOperations,
        NfwOp::ListFlowOperationResults,
    ];

    /// The name after the prefix in `X-Amz-Target`.
    pub fn name(self) -> &'static str {
        match self {
            NfwOp::StartFlowCapture => "StartFlowCapture",
            NfwOp::StartFlowFlush => "StartFlowFlush",
            NfwOp::DescribeFlowOperation => "DescribeFlowOperation",
            NfwOp::ListFlowOperations => "ListFlowOperations",
            NfwOp::ListFlowOperationResults => "ListFlowOperationResults",
        }
    }

    /// The operation an `X-Amz-Target` value names.
    pub fn from_target(target: &str) -> Option<NfwOp> {
        let (prefix, name) = target.split_once('.')?;
        if prefix != TARGET_PREFIX {
            return None;
        }
        NfwOp::ALL.into_iter().find(|o| o.name() == name)
    }

    /// The members its input shape has.
    pub fn members(self) -> Vec<&'static str> {
        let own: &[&str] = match self {
            NfwOp::StartFlowCapture | NfwOp::StartFlowFlush => {
                &["MinimumFlowAgeInSeconds", "FlowFilters"]
            }
            NfwOp::DescribeFlowOperation => &["FlowOperationId"],
            NfwOp::ListFlowOperations => &["FlowOperationType", "NextToken", "MaxResults"],
            NfwOp::ListFlowOperationResults => &["FlowOperationId", "NextToken", "MaxResults"],
        };
        let mut m = vec!["FirewallArn"];
        m.extend_from_slice(&SCOPE);
        m.extend_from_slice(own);
        m
    }
}

/// The members of a `FlowFilter`.
pub const FLOW_FILTER_MEMBERS: [&str; 5] = [
    "SourceAddress",
    "DestinationAddress",
    "SourcePort",
    "DestinationPort",
    "Protocols",
];

/// The members of an `Address`.
pub const ADDRESS_MEMBERS: [&str; 1] = ["AddressDefinition"];

/// Every member any of the five inputs has, each as its JSON type allows;
/// which ones an operation accepts and requires is checked after reading.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    /// `ResourceArn`.
    pub firewall_arn: Option<String>,
    /// `AvailabilityZone`.
    pub availability_zone: Option<String>,
    /// `AvailabilityZoneId`.
    pub availability_zone_id: Option<String>,
    /// `ResourceArn`.
    pub vpc_endpoint_association_arn: Option<String>,
    /// `VpcEndpointId`.
    pub vpc_endpoint_id: Option<String>,
    /// `Age` (a 32-bit integer in the model; range-checked later).
    pub minimum_flow_age_in_seconds: Option<i64>,
    /// `FlowFilters`.
    pub flow_filters: Option<Vec<FlowFilter>>,
    /// `FlowOperationId`.
    pub flow_operation_id: Option<String>,
    /// `FlowOperationType`.
    pub flow_operation_type: Option<String>,
    /// `PaginationToken`.
    pub next_token: Option<String>,
    /// `PaginationMaxResults`.
    pub max_results: Option<i64>,
}

impl Input {
    /// The scope members.
    pub fn scope(&self) -> Scope {
        Scope {
            availability_zone: self.availability_zone.clone(),
            availability_zone_id: self.availability_zone_id.clone(),
            vpc_endpoint_association_arn: self.vpc_endpoint_association_arn.clone(),
            vpc_endpoint_id: self.vpc_endpoint_id.clone(),
        }
    }
}

/// Where an operation applies: optional in every request, echoed in
/// describe and results responses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Scope {
    /// `AvailabilityZone`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// `AvailabilityZoneId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone_id: Option<String>,
    /// `VpcEndpointAssociationArn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_association_arn: Option<String>,
    /// `VpcEndpointId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_id: Option<String>,
}

/// `FlowFilter`: read from requests, echoed as given by DescribeFlowOperation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FlowFilter {
    /// `Address`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_address: Option<Address>,
    /// `Address`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_address: Option<Address>,
    /// `Port`: `N`, `N:M` or `ANY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_port: Option<String>,
    /// `Port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_port: Option<String>,
    /// `ProtocolStrings`: IANA numbers; empty or absent is every protocol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocols: Option<Vec<String>>,
}

/// `Address`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Address {
    /// `AddressDefinition`: a CIDR block or an address (required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_definition: Option<String>,
}

impl Address {
    /// An address definition.
    pub fn new(s: impl Into<String>) -> Address {
        Address {
            address_definition: Some(s.into()),
        }
    }
}

/// What a capture or flush asked for, kept with the operation and echoed by
/// DescribeFlowOperation as `FlowOperation`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FlowOperationSpec {
    /// As given (absent stays absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_flow_age_in_seconds: Option<i64>,
    /// As given.
    pub flow_filters: Vec<FlowFilter>,
    /// The scope the request named.
    #[serde(skip)]
    pub scope: Scope,
}

/// `FlowOperationType`.
pub fn kind_name(k: OpKind) -> &'static str {
    match k {
        OpKind::Capture => "FLOW_CAPTURE",
        OpKind::Flush => "FLOW_FLUSH",
    }
}

/// `FlowOperationType` from its name.
pub fn kind_from_name(s: &str) -> Option<OpKind> {
    match s {
        "FLOW_CAPTURE" => Some(OpKind::Capture),
        "FLOW_FLUSH" => Some(OpKind::Flush),
        _ => None,
    }
}

/// `FlowOperationStatus`.
pub fn status_name(s: OpStatus) -> &'static str {
    match s {
        OpStatus::InProgress => "IN_PROGRESS",
        OpStatus::Completed => "COMPLETED",
        OpStatus::CompletedWithErrors => "COMPLETED_WITH_ERRORS",
        OpStatus::Failed => "FAILED",
    }
}

/// `FlowRequestTimestamp`: epoch seconds, to the millisecond.
pub fn epoch_seconds(t: std::time::SystemTime) -> f64 {
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    ms as f64 / 1000.0
}

/// StartFlowCapture / StartFlowFlush output.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartOutput {
    /// The firewall.
    pub firewall_arn: String,
    /// The new operation's id.
    pub flow_operation_id: String,
    /// IN_PROGRESS.
    pub flow_operation_status: &'static str,
}

/// DescribeFlowOperation output.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeOutput {
    /// The firewall.
    pub firewall_arn: String,
    /// The operation's scope.
    #[serde(flatten)]
    pub scope: Scope,
    /// The id.
    pub flow_operation_id: String,
    /// FLOW_CAPTURE or FLOW_FLUSH.
    pub flow_operation_type: &'static str,
    /// The status.
    pub flow_operation_status: &'static str,
    /// Why, when not COMPLETED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// When it was requested (epoch seconds).
    pub flow_request_timestamp: f64,
    /// The minimum age and filters as given.
    pub flow_operation: FlowOperationSpec,
}

/// `FlowOperationMetadata`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FlowOperationMetadata {
    /// The id.
    pub flow_operation_id: String,
    /// FLOW_CAPTURE or FLOW_FLUSH.
    pub flow_operation_type: &'static str,
    /// When it was requested.
    pub flow_request_timestamp: f64,
    /// The status.
    pub flow_operation_status: &'static str,
}

/// ListFlowOperations output.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOperationsOutput {
    /// Newest first.
    pub flow_operations: Vec<FlowOperationMetadata>,
    /// Present when more remain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `Flow`: one result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Flow {
    /// The side that opened the flow, as a /32 or /128.
    pub source_address: Address,
    /// The other side.
    pub destination_address: Address,
    /// The opener's port.
    pub source_port: String,
    /// The other side's port.
    pub destination_port: String,
    /// IANA protocol number.
    pub protocol: String,
    /// Seconds since the first packet.
    pub age: i64,
    /// Packets, both directions (`PacketCount` is a 32-bit integer in the
    /// model: saturated there).
    pub packet_count: i64,
    /// Bytes, both directions.
    pub byte_count: i64,
}

/// ListFlowOperationResults output.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListResultsOutput {
    /// The firewall.
    pub firewall_arn: String,
    /// The operation's scope.
    #[serde(flatten)]
    pub scope: Scope,
    /// The id.
    pub flow_operation_id: String,
    /// The status.
    pub flow_operation_status: &'static str,
    /// Why, when not COMPLETED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// When it was requested.
    pub flow_request_timestamp: f64,
    /// This page of flows (empty while IN_PROGRESS and when FAILED).
    pub flows: Vec<Flow>,
    /// Present when more remain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            NfwOp::from_target("NetworkFirewall_20201112.StartFlowFlush"),
            Some(NfwOp::StartFlowFlush)
        );
        for bad in [
            "NetworkFirewall_20201112.DescribeFirewall",
            "NetworkFirewall_20201111.StartFlowFlush",
            "StartFlowFlush",
            "NetworkFirewall_20201112.",
            "",
        ] {
            assert_eq!(NfwOp::from_target(bad), None, "{bad}");
        }
    }

    #[test]
    fn shapes_serialise_with_model_names_and_without_absent_members() {
        let f = FlowFilter {
            source_address: Some(Address::new("10.0.0.0/8")),
            destination_port: Some("443".into()),
            ..FlowFilter::default()
        };
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({"SourceAddress": {"AddressDefinition": "10.0.0.0/8"}, "DestinationPort": "443"})
        );
        let d = DescribeOutput {
            firewall_arn: "arn:aws:x".into(),
            scope: Scope {
                availability_zone: Some("us-east-1a".into()),
                ..Scope::default()
            },
            flow_operation_id: "id".into(),
            flow_operation_type: kind_name(OpKind::Flush),
            flow_operation_status: status_name(OpStatus::CompletedWithErrors),
            status_message: None,
            flow_request_timestamp: 1763900000.123,
            flow_operation: FlowOperationSpec {
                minimum_flow_age_in_seconds: Some(30),
                flow_filters: vec![f],
                scope: Scope::default(),
            },
        };
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["AvailabilityZone"], "us-east-1a");
        assert!(v.get("VpcEndpointId").is_none());
        assert!(v.get("StatusMessage").is_none());
        assert_eq!(v["FlowOperationType"], "FLOW_FLUSH");
        assert_eq!(v["FlowOperationStatus"], "COMPLETED_WITH_ERRORS");
        assert_eq!(v["FlowOperation"]["MinimumFlowAgeInSeconds"], 30);
        assert!(v["FlowOperation"].get("Scope").is_none());
        assert!(serde_json::to_string(&d)
            .unwrap()
            .contains("\"FlowRequestTimestamp\":1763900000.123"));
    }
}
