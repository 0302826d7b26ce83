//! Reading and checking requests, in the order an AWS JSON service does:
//! the body must be a JSON object (else SerializationException); every
//! member must be one the operation has (else InvalidRequestException:
//! "unsupported parameter name"); every member must have its JSON type
//! (else SerializationException, naming the member); then the model's
//! constraints, required members first (InvalidRequestException). Only a
//! request that passes all of that is looked at against this firewall
//! (its ARN, then its scope).
//!
//! Filters are compiled here too: a `FlowFilter` becomes one dataplane
//! [`Rule`] (its fields AND), and the operation's rules are OR'd.

use flowgate_dataplane::filter::{Cidr, PortRange, ProtoSet, Rule};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::error::NfwError;
use super::model::{
    kind_from_name, Address, FlowFilter, Input, NfwOp, Scope, ADDRESS_MEMBERS, FLOW_FILTER_MEMBERS,
};
use crate::config::OperationsConfig;
use crate::filters::{parse_cidr, parse_ports, parse_proto};
use crate::ops::OpKind;

/// Filters one operation may carry.
pub const MAX_FILTERS: usize = 20;
/// `PaginationMaxResults` bounds.
pub const MAX_RESULTS: i64 = 100;

/// The firewall and scope every request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `FirewallArn`.
    pub firewall_arn: String,
    /// The optional scope members.
    pub scope: Scope,
}

/// A checked StartFlowCapture / StartFlowFlush.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRequest {
    /// Firewall and scope.
    pub target: Target,
    /// `MinimumFlowAgeInSeconds` as given.
    pub min_age: Option<i64>,
    /// The filters as given (to echo back).
    pub filters: Vec<FlowFilter>,
    /// The filters compiled, one rule each, in order.
    pub rules: Vec<Rule>,
}

/// A checked DescribeFlowOperation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeRequest {
    /// Firewall and scope.
    pub target: Target,
    /// `FlowOperationId`.
    pub id: Uuid,
}

/// A checked ListFlowOperations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOperationsRequest {
    /// Firewall and scope.
    pub target: Target,
    /// `FlowOperationType`; `None`: both.
    pub kind: Option<OpKind>,
    /// `NextToken`, checked for form only.
    pub next_token: Option<String>,
    /// `MaxResults` (default 100).
    pub max_results: usize,
}

/// A checked ListFlowOperationResults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResultsRequest {
    /// Firewall and scope.
    pub target: Target,
    /// `FlowOperationId`.
    pub id: Uuid,
    /// `NextToken`, checked for form only.
    pub next_token: Option<String>,
    /// `MaxResults` (default 100).
    pub max_results: usize,
}

fn invalid(msg: impl Into<String>) -> NfwError {
    NfwError::InvalidRequest(msg.into())
}

fn required<'a, T>(name: &str, v: &'a Option<T>) -> Result<&'a T, NfwError> {
    v.as_ref()
        .ok_or_else(|| invalid(format!("{name} is required")))
}

/// Reads the body into the operation's input: JSON, known members, JSON
/// types. An empty body is an empty object.
pub fn read(op: NfwOp, body: &[u8]) -> Result<Input, NfwError> {
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|e| {
            NfwError::Serialization(format!("The request body is not valid JSON: {e}"))
        })?
    };
    let Value::Object(top) = &value else {
        return Err(NfwError::Serialization(
            "The request body must be a JSON object".into(),
        ));
    };
    known_members("", top, &op.members())?;
    if let Some(Value::Array(filters)) = top.get("FlowFilters") {
        for (i, f) in filters.iter().enumerate() {
            let Value::Object(f) = f else { continue };
            known_members(&format!("FlowFilters[{i}]."), f, &FLOW_FILTER_MEMBERS)?;
            for side in ["SourceAddress", "DestinationAddress"] {
                if let Some(Value::Object(a)) = f.get(side) {
                    known_members(&format!("FlowFilters[{i}].{side}."), a, &ADDRESS_MEMBERS)?;
                }
            }
        }
    }
    serde_path_to_error::deserialize(value)
        .map_err(|e| NfwError::Serialization(format!("{}: {}", e.path(), e.inner())))
}

fn known_members(path: &str, obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), NfwError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid(format!("Unsupported parameter name {path}{k}"))),
        None => Ok(()),
    }
}

/// `ResourceArn`: 1 to 256 characters, `^arn:aws.*`.
fn arn(name: &str, s: &str) -> Result<(), NfwError> {
    if !(1..=256).contains(&s.chars().count()) {
        return Err(invalid(format!("{name} must be 1 to 256 characters long")));
    }
    if !crate::config::is_resource_arn(s) {
        return Err(invalid(format!("{name} must match the pattern ^arn:aws.*")));
    }
    Ok(())
}

fn target(input: &Input) -> Result<Target, NfwError> {
    let firewall_arn = required("FirewallArn", &input.firewall_arn)?;
    arn("FirewallArn", firewall_arn)?;
    if let Some(a) = &input.vpc_endpoint_association_arn {
        arn("VpcEndpointAssociationArn", a)?;
    }
    if let Some(v) = &input.vpc_endpoint_id {
        if !(5..=256).contains(&v.chars().count()) {
            return Err(invalid("VpcEndpointId must be 5 to 256 characters long"));
        }
        if !crate::config::is_vpc_endpoint_id(v) {
            return Err(invalid(
                "VpcEndpointId must match the pattern ^vpce-[a-zA-Z0-9]*$",
            ));
        }
    }
    Ok(Target {
        firewall_arn: firewall_arn.clone(),
        scope: input.scope(),
    })
}

fn operation_id(input: &Input) -> Result<Uuid, NfwError> {
    let s = required("FlowOperationId", &input.flow_operation_id)?;
    // The model's pattern: lower-case hex in 8-4-4-4-12 groups.
    let groups: Vec<&str> = s.split('-').collect();
    let shaped = s.len() == 36
        && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        });
    match Uuid::parse_str(s) {
        Ok(id) if shaped => Ok(id),
        _ => Err(invalid("FlowOperationId must match the UUID pattern")),
    }
}

fn max_results(input: &Input) -> Result<usize, NfwError> {
    match input.max_results {
        None => Ok(MAX_RESULTS as usize),
        Some(n) if (1..=MAX_RESULTS).contains(&n) => Ok(n as usize),
        Some(_) => Err(invalid(format!(
            "MaxResults must be between 1 and {MAX_RESULTS}"
        ))),
    }
}

fn next_token(input: &Input) -> Result<Option<String>, NfwError> {
    let Some(t) = &input.next_token else {
        return Ok(None);
    };
    if !(1..=4096).contains(&t.chars().count()) {
        return Err(invalid("NextToken must be 1 to 4096 characters long"));
    }
    if !t
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '+' | '='))
    {
        return Err(invalid(
            "NextToken must match the pattern [0-9A-Za-z:\\/+=]+$",
        ));
    }
    Ok(Some(t.clone()))
}

/// StartFlowCapture / StartFlowFlush.
pub fn start(input: &Input) -> Result<StartRequest, NfwError> {
    let target = target(input)?;
    let filters = required("FlowFilters", &input.flow_filters)?;
    if filters.is_empty() || filters.len() > MAX_FILTERS {
        return Err(invalid(format!(
            "FlowFilters must hold 1 to {MAX_FILTERS} filters, not {}",
            filters.len()
        )));
    }
    let rules = filters
        .iter()
        .enumerate()
        .map(|(i, f)| compile_filter(i, f))
        .collect::<Result<Vec<Rule>, NfwError>>()?;
    if let Some(age) = input.minimum_flow_age_in_seconds {
        if !(0..=i64::from(i32::MAX)).contains(&age) {
            return Err(invalid(format!(
                "MinimumFlowAgeInSeconds must be between 0 and {}",
                i32::MAX
            )));
        }
    }
    Ok(StartRequest {
        target,
        min_age: input.minimum_flow_age_in_seconds,
        filters: filters.clone(),
        rules,
    })
}

/// DescribeFlowOperation.
pub fn describe(input: &Input) -> Result<DescribeRequest, NfwError> {
    Ok(DescribeRequest {
        target: target(input)?,
        id: operation_id(input)?,
    })
}

/// ListFlowOperations.
pub fn list_operations(input: &Input) -> Result<ListOperationsRequest, NfwError> {
    let target = target(input)?;
    let kind = match &input.flow_operation_type {
        None => None,
        Some(s) => Some(kind_from_name(s).ok_or_else(|| {
            invalid(format!(
                "FlowOperationType must be FLOW_FLUSH or FLOW_CAPTURE, not {s:?}"
            ))
        })?),
    };
    Ok(ListOperationsRequest {
        target,
        kind,
        next_token: next_token(input)?,
        max_results: max_results(input)?,
    })
}

/// ListFlowOperationResults.
pub fn list_results(input: &Input) -> Result<ListResultsRequest, NfwError> {
    Ok(ListResultsRequest {
        target: target(input)?,
        id: operation_id(input)?,
        next_token: next_token(input)?,
        max_results: max_results(input)?,
    })
}

/// Checks the request names this firewall, then that its scope is this
/// firewall's: an unknown firewall is a missing resource, a scope member
/// that does not fit is a bad value.
pub fn check_target(t: &Target, o: &OperationsConfig) -> Result<(), NfwError> {
    if t.firewall_arn != o.firewall_arn {
        return Err(NfwError::ResourceNotFound("Firewall not found".into()));
    }
    let s = &t.scope;
    let mismatch = |name: &str, given: &str, ours: &str| {
        invalid(format!("{name} {given} is not this firewall's ({ours})"))
    };
    if let Some(az) = &s.availability_zone {
        if *az != o.availability_zone {
            return Err(mismatch("AvailabilityZone", az, &o.availability_zone));
        }
    }
    if let Some(id) = &s.availability_zone_id {
        if *id != o.availability_zone_id {
            return Err(mismatch("AvailabilityZoneId", id, &o.availability_zone_id));
        }
    }
    if let Some(v) = &s.vpc_endpoint_id {
        if *v != o.vpc_endpoint_id {
            return Err(mismatch("VpcEndpointId", v, &o.vpc_endpoint_id));
        }
    }
    if let Some(a) = &s.vpc_endpoint_association_arn {
        match &o.vpc_endpoint_association_arn {
            Some(ours) if ours == a => {}
            Some(ours) => return Err(mismatch("VpcEndpointAssociationArn", a, ours)),
            None => {
                return Err(invalid(format!(
                    "VpcEndpointAssociationArn {a} is not this firewall's (it has no VPC endpoint association)"
                )))
            }
        }
    }
    Ok(())
}

/// One filter as a rule: every field given must match (AND); a field left
/// out matches anything.
pub fn compile_filter(i: usize, f: &FlowFilter) -> Result<Rule, NfwError> {
    let at = |member: &str| format!("FlowFilters[{i}].{member}");
    Ok(Rule {
        src: address(&at("SourceAddress"), &f.source_address)?,
        dst: address(&at("DestinationAddress"), &f.destination_address)?,
        sport: ports(&at("SourcePort"), &f.source_port)?,
        dport: ports(&at("DestinationPort"), &f.destination_port)?,
        protos: protocols(&at("Protocols"), &f.protocols)?,
    })
}

/// `AddressDefinition`: 1 to 255 characters, `^([a-fA-F\d:\.]+($|/\d{1,3}))$`,
/// and a real IPv4 or IPv6 address or block.
fn address(path: &str, a: &Option<Address>) -> Result<Cidr, NfwError> {
    let Some(a) = a else {
        return Ok(Cidr::ANY);
    };
    let def = required(&format!("{path}.AddressDefinition"), &a.address_definition)?;
    if !(1..=255).contains(&def.chars().count()) {
        return Err(invalid(format!(
            "{path}.AddressDefinition must be 1 to 255 characters long"
        )));
    }
    let (addr, prefix) = match def.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (def.as_str(), None),
    };
    // A prefix length, when present, is 1 to 3 ASCII digits.
    let prefix_shaped = match prefix {
        None => true,
        Some(p) => (1..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit()),
    };
    let shaped = !addr.is_empty()
        && addr
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        && prefix_shaped;
    if !shaped {
        return Err(invalid(format!(
            "{path}.AddressDefinition must match the pattern ^([a-fA-F\\d:\\.]+($|/\\d{{1,3}}))$"
        )));
    }
    parse_cidr(def).map_err(|e| invalid(format!("{path}.AddressDefinition: {e}")))
}

/// `Port`: `N`, `N:M` (not reversed) or `ANY`.
fn ports(path: &str, p: &Option<String>) -> Result<PortRange, NfwError> {
    let Some(p) = p else {
        return Ok(PortRange::ANY);
    };
    if !(1..=1024).contains(&p.chars().count()) {
        return Err(invalid(format!("{path} must be 1 to 1024 characters long")));
    }
    // Exactly the documented forms: the shared parser also takes spaces,
    // "any" and "+80" (for the config file), which would be echoed back
    // by DescribeFlowOperation in a form the service never shows.
    let digits = |n: &str| (1..=5).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit());
    let documented = p == "ANY"
        || match p.split_once(':') {
            Some((lo, hi)) => digits(lo) && digits(hi),
            None => digits(p),
        };
    if !documented {
        return Err(invalid(format!(
            "{path}: {p:?} is not a port or range (use N, N:M or ANY)"
        )));
    }
    parse_ports(p, ':').map_err(|e| invalid(format!("{path}: {e} (use N, N:M or ANY)")))
}

/// `ProtocolStrings`: IANA protocol numbers; none means every protocol.
fn protocols(path: &str, p: &Option<Vec<String>>) -> Result<ProtoSet, NfwError> {
    let Some(list) = p else {
        return Ok(ProtoSet::ANY);
    };
    let mut nums = Vec::with_capacity(list.len());
    for (j, s) in list.iter().enumerate() {
        // Numbers only: the model asks for IANA numbers, and names would be
        // echoed back in a form the real service never shows.
        let number = (1..=12).contains(&s.len()) && s.chars().all(|c| c.is_ascii_digit());
        let n = if number { parse_proto(s).ok() } else { None };
        match n {
            Some(n) => nums.push(n),
            None => {
                return Err(invalid(format!(
                    "{path}[{j}]: {s:?} is not an IANA protocol number (0-255)"
                )))
            }
        }
    }
    Ok(ProtoSet::of(&nums))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowgate_dataplane::flow::AddrFamily;
    use serde_json::json;

    const ARN: &str = "arn:aws:network-firewall:us-east-1:123456789012:firewall/flowgate";

    fn read_json(op: NfwOp, v: Value) -> Result<Input, NfwError> {
        read(op, v.to_string().as_bytes())
    }

    fn start_json(v: Value) -> Result<StartRequest, NfwError> {
        start(&read_json(NfwOp::StartFlowCapture, v)?)
    }

    fn code(r: Result<impl std::fmt::Debug, NfwError>) -> (&'static str, String) {
        let e = r.unwrap_err();
        (e.code(), e.to_string())
    }

    fn with_filters(filters: Value) -> Value {
        json!({"FirewallArn": ARN, "FlowFilters": filters})
    }

    #[test]
    fn the_wire_example_compiles() {
        let r = start_json(json!({
            "FirewallArn": ARN, "AvailabilityZone": "us-east-1a", "MinimumFlowAgeInSeconds": 30,
            "FlowFilters": [
                {"SourceAddress": {"AddressDefinition": "10.0.0.0/8"}, "DestinationAddress": {"AddressDefinition": "192.0.2.10"},
                 "SourcePort": "ANY", "DestinationPort": "443", "Protocols": ["6"]},
                {"SourceAddress": {"AddressDefinition": "2001:db8::/32"}, "DestinationPort": "1000:2000", "Protocols": ["17"]}
            ]
        }))
        .unwrap();
        assert_eq!(r.min_age, Some(30));
        assert_eq!(
            r.target.scope.availability_zone.as_deref(),
            Some("us-east-1a")
        );
        assert_eq!(r.rules.len(), 2);
        assert_eq!(r.rules[0].src, Cidr::v4([10, 0, 0, 0], 8));
        assert_eq!(r.rules[0].dst, Cidr::v4([192, 0, 2, 10], 32));
        assert_eq!(r.rules[0].sport, PortRange::ANY);
        assert_eq!(r.rules[0].dport, PortRange::single(443));
        assert_eq!(r.rules[0].protos, ProtoSet::of(&[6]));
        assert_eq!(r.rules[1].src.family, AddrFamily::V6);
        assert_eq!(r.rules[1].dst, Cidr::ANY);
        assert_eq!(r.rules[1].dport, PortRange { lo: 1000, hi: 2000 });
        assert_eq!(r.filters[1].source_port, None, "echoed as given");
    }

    #[test]
    fn an_empty_filter_and_empty_protocols_match_everything() {
        let r = start_json(with_filters(json!([{}, {"Protocols": []}]))).unwrap();
        assert_eq!(r.rules, [Rule::ANY, Rule::ANY]);
    }

    #[test]
    fn unparseable_bodies_and_wrong_types_are_serialization_errors() {
        for body in [
            &b"{"[..],
            b"not json",
            b"{\"FirewallArn\": }",
            b"[1]",
            b"\"x\"",
            b"null",
        ] {
            let e = read(NfwOp::StartFlowCapture, body).unwrap_err();
            assert_eq!(e.code(), "SerializationException", "{body:?}");
        }
        assert!(
            read(NfwOp::ListFlowOperations, b"").is_ok(),
            "empty is {{}}"
        );
        for (v, path) in [
            (json!({"FirewallArn": 5}), "FirewallArn"),
            (with_filters(json!({"SourcePort": "80"})), "FlowFilters"),
            (
                with_filters(json!([{"SourcePort": 80}])),
                "FlowFilters[0].SourcePort",
            ),
            (
                with_filters(json!([{"Protocols": [6]}])),
                "FlowFilters[0].Protocols[0]",
            ),
            (
                with_filters(json!([{"SourceAddress": "10.0.0.0/8"}])),
                "FlowFilters[0].SourceAddress",
            ),
            (
                json!({"FirewallArn": ARN, "MinimumFlowAgeInSeconds": "30"}),
                "MinimumFlowAgeInSeconds",
            ),
            (
                json!({"FirewallArn": ARN, "MinimumFlowAgeInSeconds": 1.5}),
                "MinimumFlowAgeInSeconds",
            ),
        ] {
            let (c, msg) = code(read_json(NfwOp::StartFlowCapture, v.clone()));
            assert_eq!(c, "SerializationException", "{v}");
            assert!(msg.starts_with(&format!("{path}:")), "{msg}");
        }
        let (c, msg) = code(read_json(
            NfwOp::ListFlowOperations,
            json!({"FirewallArn": ARN, "MaxResults": "5"}),
        ));
        assert_eq!(
            (c, msg.starts_with("MaxResults:")),
            ("SerializationException", true)
        );
    }

    #[test]
    fn unknown_members_are_unsupported_parameters() {
        for (op, v, name) in [
            (
                NfwOp::StartFlowCapture,
                json!({"FirewallArn": ARN, "Bogus": 1}),
                "Bogus",
            ),
            (
                NfwOp::DescribeFlowOperation,
                json!({"FirewallArn": ARN, "FlowFilters": []}),
                "FlowFilters",
            ),
            (
                NfwOp::StartFlowFlush,
                with_filters(json!([{"SourcePorts": "1"}])),
                "FlowFilters[0].SourcePorts",
            ),
            (
                NfwOp::StartFlowFlush,
                with_filters(json!([{"SourceAddress": {"Cidr": "1"}}])),
                "FlowFilters[0].SourceAddress.Cidr",
            ),
        ] {
            let (c, msg) = code(read_json(op, v));
            assert_eq!(c, "InvalidRequestException");
            assert_eq!(msg, format!("Unsupported parameter name {name}"));
        }
    }

    #[test]
    fn nulls_are_absent() {
        let r = start_json(json!({"FirewallArn": ARN, "VpcEndpointId": null, "FlowFilters": [{"SourcePort": null}]})).unwrap();
        assert_eq!(r.target.scope.vpc_endpoint_id, None);
        assert_eq!(r.rules, [Rule::ANY]);
    }

    #[test]
    fn constraint_violations_are_invalid_requests() {
        let filters20: Vec<Value> = (0..21).map(|_| json!({})).collect();
        let cases = [
            (json!({"FlowFilters": [{}]}), "FirewallArn is required"),
            (json!({"FirewallArn": ARN}), "FlowFilters is required"),
            (json!({"FirewallArn": "", "FlowFilters": [{}]}), "FirewallArn must be 1 to 256 characters long"),
            (json!({"FirewallArn": "firewall/flowgate", "FlowFilters": [{}]}), "FirewallArn must match the pattern ^arn:aws.*"),
            (json!({"FirewallArn": format!("arn:aws:{}", "x".repeat(250)), "FlowFilters": [{}]}), "FirewallArn must be 1 to 256 characters long"),
            (with_filters(json!([])), "FlowFilters must hold 1 to 20 filters, not 0"),
            (with_filters(Value::Array(filters20)), "FlowFilters must hold 1 to 20 filters, not 21"),
            (with_filters(json!([{}, {"SourceAddress": {"AddressDefinition": "10.0.0.0/33"}}])), "FlowFilters[1].SourceAddress.AddressDefinition: \"10.0.0.0/33\" is not an IP address or CIDR block"),
            (with_filters(json!([{"SourceAddress": {"AddressDefinition": "300.1.1.1"}}])), "FlowFilters[0].SourceAddress.AddressDefinition: \"300.1.1.1\" is not an IP address or CIDR block"),
            (with_filters(json!([{"DestinationAddress": {"AddressDefinition": "any"}}])), "FlowFilters[0].DestinationAddress.AddressDefinition must match the pattern ^([a-fA-F\\d:\\.]+($|/\\d{1,3}))$"),
            (with_filters(json!([{"DestinationAddress": {"AddressDefinition": "10.0.0.0/"}}])), "FlowFilters[0].DestinationAddress.AddressDefinition must match the pattern ^([a-fA-F\\d:\\.]+($|/\\d{1,3}))$"),
            (with_filters(json!([{"DestinationAddress": {"AddressDefinition": ""}}])), "FlowFilters[0].DestinationAddress.AddressDefinition must be 1 to 255 characters long"),
            (with_filters(json!([{"DestinationAddress": {}}])), "FlowFilters[0].DestinationAddress.AddressDefinition is required"),
            (with_filters(json!([{"SourceAddress": {"AddressDefinition": "2001:db8::/129"}}])), "FlowFilters[0].SourceAddress.AddressDefinition: \"2001:db8::/129\" is not an IP address or CIDR block"),
            (with_filters(json!([{"DestinationPort": "2000:1000"}])), "FlowFilters[0].DestinationPort: port range \"2000:1000\" is reversed (use N, N:M or ANY)"),
            (with_filters(json!([{"SourcePort": "70000"}])), "FlowFilters[0].SourcePort: \"70000\" is not a port number (0-65535) (use N, N:M or ANY)"),
            (with_filters(json!([{"SourcePort": " +80 "}])), "FlowFilters[0].SourcePort: \" +80 \" is not a port or range (use N, N:M or ANY)"),
            (with_filters(json!([{"DestinationPort": "any"}])), "FlowFilters[0].DestinationPort: \"any\" is not a port or range (use N, N:M or ANY)"),
            (with_filters(json!([{"DestinationPort": "80 : 90"}])), "FlowFilters[0].DestinationPort: \"80 : 90\" is not a port or range (use N, N:M or ANY)"),
            (with_filters(json!([{"SourcePort": "1-2"}])), "FlowFilters[0].SourcePort: \"1-2\" is not a port or range (use N, N:M or ANY)"),
            (with_filters(json!([{"SourcePort": ""}])), "FlowFilters[0].SourcePort must be 1 to 1024 characters long"),
            (with_filters(json!([{"Protocols": ["6", "tcp"]}])), "FlowFilters[0].Protocols[1]: \"tcp\" is not an IANA protocol number (0-255)"),
            (with_filters(json!([{"Protocols": ["256"]}])), "FlowFilters[0].Protocols[0]: \"256\" is not an IANA protocol number (0-255)"),
            (with_filters(json!([{"Protocols": [""]}])), "FlowFilters[0].Protocols[0]: \"\" is not an IANA protocol number (0-255)"),
            (json!({"FirewallArn": ARN, "FlowFilters": [{}], "MinimumFlowAgeInSeconds": -1}), "MinimumFlowAgeInSeconds must be between 0 and 2147483647"),
            (json!({"FirewallArn": ARN, "FlowFilters": [{}], "MinimumFlowAgeInSeconds": 2147483648u64}), "MinimumFlowAgeInSeconds must be between 0 and 2147483647"),
            (json!({"FirewallArn": ARN, "FlowFilters": [{}], "VpcEndpointId": "vpce"}), "VpcEndpointId must be 5 to 256 characters long"),
            (json!({"FirewallArn": ARN, "FlowFilters": [{}], "VpcEndpointId": "vpce-a.b"}), "VpcEndpointId must match the pattern ^vpce-[a-zA-Z0-9]*$"),
            (json!({"FirewallArn": ARN, "FlowFilters": [{}], "VpcEndpointAssociationArn": "x"}), "VpcEndpointAssociationArn must match the pattern ^arn:aws.*"),
        ];
        for (v, want) in cases {
            let (c, msg) = code(start_json(v.clone()));
            assert_eq!((c, msg.as_str()), ("InvalidRequestException", want), "{v}");
        }
    }

    #[test]
    fn length_bounds_count_characters_not_bytes() {
        // As the service counts (and `arn` here): a value within the bound in
        // characters but over it in UTF-8 bytes passes the length check and
        // is refused by the pattern, not called too long. é is two bytes.
        let e = |n: usize| "é".repeat(n);
        let start = |extra: Value| {
            let mut v = json!({"FirewallArn": ARN, "FlowFilters": [{}]});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            code(start_json(v))
        };
        let list = |v: Value| {
            code(read_json(NfwOp::ListFlowOperations, v).and_then(|i| list_operations(&i)))
        };
        let cases = [
            // VpcEndpointId: 5 to 256.
            (
                start(json!({"VpcEndpointId": format!("vpce-{}", e(200))})),
                "VpcEndpointId must match the pattern ^vpce-[a-zA-Z0-9]*$".to_string(),
            ),
            // AddressDefinition: 1 to 255.
            (
                code(start_json(with_filters(
                    json!([{"SourceAddress": {"AddressDefinition": e(200)}}]),
                ))),
                "FlowFilters[0].SourceAddress.AddressDefinition must match the pattern ^([a-fA-F\\d:\\.]+($|/\\d{1,3}))$".to_string(),
            ),
            // SourcePort / DestinationPort: 1 to 1024.
            (
                code(start_json(with_filters(json!([{"DestinationPort": e(600)}])))),
                format!(
                    "FlowFilters[0].DestinationPort: {:?} is not a port or range (use N, N:M or ANY)",
                    e(600)
                ),
            ),
            // NextToken: 1 to 4096.
            (
                list(json!({"FirewallArn": ARN, "NextToken": e(4096)})),
                "NextToken must match the pattern [0-9A-Za-z:\\/+=]+$".to_string(),
            ),
        ];
        for ((c, msg), want) in cases {
            assert_eq!(
                (c, msg.as_str()),
                ("InvalidRequestException", want.as_str())
            );
        }
        // Over the bound in characters is still too long.
        assert_eq!(
            list(json!({"FirewallArn": ARN, "NextToken": e(4097)})).1,
            "NextToken must be 1 to 4096 characters long"
        );
    }

    #[test]
    fn operation_ids_pages_and_types() {
        let id = "6b8c3b4e-2f1a-4c8e-9a0b-1d2e3f4a5b6c";
        let d = |v: Value| describe(&read_json(NfwOp::DescribeFlowOperation, v)?);
        assert_eq!(
            d(json!({"FirewallArn": ARN, "FlowOperationId": id}))
                .unwrap()
                .id
                .to_string(),
            id
        );
        for bad in [
            "6B8C3B4E-2F1A-4C8E-9A0B-1D2E3F4A5B6C",
            "6b8c3b4e2f1a4c8e9a0b1d2e3f4a5b6c",
            "6b8c3b4e-2f1a-4c8e-9a0b-1d2e3f4a5b6",
            "{6b8c3b4e-2f1a-4c8e-9a0b-1d2e3f4a5b}",
            "6b8c3b4e-2f1a-4c8e-9a0b-1d2e3f4a5bxx",
            "",
        ] {
            let (c, msg) = code(d(json!({"FirewallArn": ARN, "FlowOperationId": bad})));
            assert_eq!(
                (c, msg.as_str()),
                (
                    "InvalidRequestException",
                    "FlowOperationId must match the UUID pattern"
                ),
                "{bad}"
            );
        }
        let (_, msg) = code(d(json!({"FirewallArn": ARN})));
        assert_eq!(msg, "FlowOperationId is required");

        let l = |v: Value| list_operations(&read_json(NfwOp::ListFlowOperations, v)?);
        let ok = l(json!({"FirewallArn": ARN})).unwrap();
        assert_eq!((ok.kind, ok.max_results, ok.next_token), (None, 100, None));
        let ok = l(json!({"FirewallArn": ARN, "FlowOperationType": "FLOW_FLUSH", "MaxResults": 1, "NextToken": "b3BzOjE="})).unwrap();
        assert_eq!(
            (ok.kind, ok.max_results, ok.next_token.as_deref()),
            (Some(OpKind::Flush), 1, Some("b3BzOjE="))
        );
        for (v, want) in [
            (
                json!({"FirewallArn": ARN, "MaxResults": 0}),
                "MaxResults must be between 1 and 100",
            ),
            (
                json!({"FirewallArn": ARN, "MaxResults": 101}),
                "MaxResults must be between 1 and 100",
            ),
            (
                json!({"FirewallArn": ARN, "NextToken": ""}),
                "NextToken must be 1 to 4096 characters long",
            ),
            (
                json!({"FirewallArn": ARN, "NextToken": "x".repeat(4097)}),
                "NextToken must be 1 to 4096 characters long",
            ),
            (
                json!({"FirewallArn": ARN, "NextToken": "a b"}),
                "NextToken must match the pattern [0-9A-Za-z:\\/+=]+$",
            ),
            (
                json!({"FirewallArn": ARN, "FlowOperationType": "FLOW_QUERY"}),
                "FlowOperationType must be FLOW_FLUSH or FLOW_CAPTURE, not \"FLOW_QUERY\"",
            ),
        ] {
            let (c, msg) = code(l(v.clone()));
            assert_eq!((c, msg.as_str()), ("InvalidRequestException", want), "{v}");
        }
        let r = |v: Value| list_results(&read_json(NfwOp::ListFlowOperationResults, v)?);
        assert_eq!(
            r(json!({"FirewallArn": ARN, "FlowOperationId": id, "MaxResults": 7}))
                .unwrap()
                .max_results,
            7
        );
        let (_, msg) = code(r(
            json!({"FirewallArn": ARN, "FlowOperationId": id, "MaxResults": -3}),
        ));
        assert_eq!(msg, "MaxResults must be between 1 and 100");
    }

    mod naive {
        //! Filters as strings, matched against flows the obvious way (std
        //! and ipnet parsing, string compares), beside the compiled rules a
        //! worker's capture job runs, minimum age included.

        use super::*;
        use flowgate_dataplane::filter::RuleSet;
        use flowgate_dataplane::flow::key::{v4_bits, v6_bits};
        use flowgate_dataplane::flow::{FlowEntry, FlowTable, FullPolicy, Insert, Tuple};
        use flowgate_dataplane::job::{Job, JobKind, JobResults, JobSpec, Slice, Step};
        use proptest::prelude::*;
        use std::collections::BTreeSet;
        use std::net::IpAddr;
        use std::sync::Arc;

        const V4: [[u8; 4]; 3] = [[10, 0, 0, 1], [10, 0, 1, 2], [192, 0, 2, 9]];
        const V6: [&str; 3] = ["2001:db8::1", "2001:db8:0:1::2", "fd00::9"];
        const PROTOS: [u8; 5] = [1, 6, 17, 58, 132];

        fn arb_address() -> impl Strategy<Value = Option<Address>> {
            prop_oneof![
                Just(None),
                (0usize..3, 0u8..=32).prop_map(|(i, p)| {
                    let [a, b, c, d] = V4[i];
                    Some(Address::new(format!("{a}.{b}.{c}.{d}/{p}")))
                }),
                (0usize..3).prop_map(|i| {
                    let [a, b, c, d] = V4[i];
                    Some(Address::new(format!("{a}.{b}.{c}.{d}")))
                }),
                (
                    0usize..3,
                    prop::sample::select(vec![0u8, 16, 32, 48, 64, 120, 128])
                )
                    .prop_map(|(i, p)| Some(Address::new(format!("{}/{p}", V6[i])))),
                (0usize..3).prop_map(|i| Some(Address::new(V6[i]))),
            ]
        }

        fn arb_port() -> impl Strategy<Value = Option<String>> {
            prop_oneof![
                Just(None),
                Just(Some("ANY".to_string())),
                (0u16..6).prop_map(|p| Some(p.to_string())),
                (0u16..6, 0u16..6).prop_map(|(a, b)| Some(format!("{}:{}", a.min(b), a.max(b)))),
            ]
        }

        fn arb_filter() -> impl Strategy<Value = FlowFilter> {
            let protos = prop_oneof![
                Just(None),
                Just(Some(vec![])),
                prop::collection::vec(prop::sample::select(PROTOS.to_vec()), 1..3)
                    .prop_map(|v| Some(v.iter().map(u8::to_string).collect())),
            ];
            (arb_address(), arb_address(), arb_port(), arb_port(), protos).prop_map(
                |(
                    source_address,
                    destination_address,
                    source_port,
                    destination_port,
                    protocols,
                )| {
                    FlowFilter {
                        source_address,
                        destination_address,
                        source_port,
                        destination_port,
                        protocols,
                    }
                },
            )
        }

        /// (source, destination, sport, dport, proto, first seen, opened by
        /// the source); the tuple is the forward one.
        type Flow = (IpAddr, IpAddr, u16, u16, u8, u64, bool);

        fn arb_flow() -> impl Strategy<Value = Flow> {
            let v4 = (0usize..3, 0usize..3)
                .prop_map(|(a, b)| (IpAddr::from(V4[a]), IpAddr::from(V4[b])));
            let v6 = (0usize..3, 0usize..3).prop_map(|(a, b)| {
                (
                    V6[a].parse::<IpAddr>().unwrap(),
                    V6[b].parse::<IpAddr>().unwrap(),
                )
            });
            (
                prop_oneof![v4, v6],
                0u16..6,
                0u16..6,
                prop::sample::select(PROTOS.to_vec()),
                0u64..100,
                any::<bool>(),
            )
                .prop_map(|((s, d), sp, dp, pr, seen, fwd)| (s, d, sp, dp, pr, seen, fwd))
        }

        fn naive_address(a: &Option<Address>, ip: IpAddr) -> bool {
            let Some(a) = a else { return true };
            let s = a.address_definition.as_deref().unwrap();
            let net: ipnet::IpNet = s
                .parse()
                .unwrap_or_else(|_| ipnet::IpNet::from(s.parse::<IpAddr>().unwrap()));
            net.contains(&ip)
        }

        fn naive_port(p: &Option<String>, port: u16) -> bool {
            match p.as_deref() {
                None | Some("ANY") => true,
                Some(s) => match s.split_once(':') {
                    Some((lo, hi)) => (lo.parse().unwrap()..=hi.parse().unwrap()).contains(&port),
                    None => s.parse::<u16>().unwrap() == port,
                },
            }
        }

        fn naive(filters: &[FlowFilter], f: &Flow, now: u64, min_age: u64) -> bool {
            let (src, dst, sp, dp, pr, seen, _) = *f;
            now - seen >= min_age
                && filters.iter().any(|x| {
                    naive_address(&x.source_address, src)
                        && naive_address(&x.destination_address, dst)
                        && naive_port(&x.source_port, sp)
                        && naive_port(&x.destination_port, dp)
                        && naive_protocols(&x.protocols, pr)
                })
        }

        fn naive_protocols(p: &Option<Vec<String>>, proto: u8) -> bool {
            match p {
                None => true,
                Some(v) => v.is_empty() || v.contains(&proto.to_string()),
            }
        }

        fn bits(ip: IpAddr) -> (u128, AddrFamily) {
            match ip {
                IpAddr::V4(a) => (v4_bits(a.octets()), AddrFamily::V4),
                IpAddr::V6(a) => (v6_bits(a.octets()), AddrFamily::V6),
            }
        }

        /// The forward tuples a capture job over these flows reports.
        fn captured(rules: &[Rule], flows: &[Flow], now: u64, min_age: u64) -> BTreeSet<usize> {
            let mut table = FlowTable::new(256, FullPolicy::DropNew).unwrap();
            let mut index_of = std::collections::HashMap::new();
            for (i, &(src, dst, sp, dp, pr, seen, opened_by_src)) in flows.iter().enumerate() {
                let ((s, fam), (d, _)) = (bits(src), bits(dst));
                let t = Tuple {
                    src: s,
                    dst: d,
                    sport: sp,
                    dport: dp,
                    proto: pr,
                    family: fam,
                    vlan: 0,
                };
                let (key, side) = t.canonical();
                let opener = if opened_by_src { side } else { side.reverse() };
                match table.insert(FlowEntry::new(key, opener, seen), key.hash()) {
                    Insert::Inserted(idx) => {
                        index_of.insert(idx, i);
                    }
                    other => panic!("{other:?}"),
                }
            }
            let mut job = Job::new(Box::new(JobSpec {
                op: 1,
                kind: JobKind::Capture,
                filters: Arc::new(RuleSet::compile(rules)),
                min_age,
                max_age: u64::MAX,
                result_cap: u64::MAX,
                newest: 0,
                buffer: Vec::new(),
                busy_share: 5,
                in_ports: flowgate_dataplane::job::PortScope::Any,
            }));
            let mut out = BTreeSet::new();
            loop {
                match job.step(&mut table, &mut Slice::entries(7), now) {
                    Step::Continue => {}
                    Step::Emit => {
                        let mut chunk = JobResults::Taken(Default::default());
                        job.take_chunk(&mut chunk);
                        let JobResults::Taken(c) = chunk else {
                            panic!("a capture reports taken flows")
                        };
                        out.extend(c.records().iter().map(|r| index_of[&r.index]));
                    }
                    Step::Done => return out,
                }
            }
        }

        proptest! {
            #[test]
            fn captures_equal_a_naive_evaluator(
                filters in prop::collection::vec(arb_filter(), 1..=MAX_FILTERS),
                flows in prop::collection::vec(arb_flow(), 1..40),
                min_age in prop_oneof![Just(0u64), 0u64..120],
            ) {
                // One flow per key (the table keeps one), opened whichever way
                // its first copy says.
                let mut seen_keys = std::collections::HashSet::new();
                let flows: Vec<Flow> = flows
                    .into_iter()
                    .filter(|f| {
                        let (a, b) = ((f.0, f.2), (f.1, f.3));
                        seen_keys.insert((a.min(b), a.max(b), f.4))
                    })
                    .collect();
                let json = serde_json::json!({"FirewallArn": ARN, "FlowFilters": filters});
                let req = start_json(json).unwrap();
                prop_assert_eq!(&req.filters, &filters);
                let now = 100;
                let got = captured(&req.rules, &flows, now, min_age);
                let want: BTreeSet<usize> = (0..flows.len())
                    .filter(|&i| {
                        // The forward tuple: the opener is the source.
                        let mut f = flows[i];
                        if !f.6 {
                            f = (f.1, f.0, f.3, f.2, f.4, f.5, true);
                        }
                        naive(&filters, &f, now, min_age)
                    })
                    .collect();
                prop_assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn the_target_must_be_this_firewall() {
        let mut o = OperationsConfig::default();
        let t = |scope: Scope| Target {
            firewall_arn: o_arn(),
            scope,
        };
        fn o_arn() -> String {
            OperationsConfig::default().firewall_arn
        }
        check_target(&t(Scope::default()), &o).unwrap();
        let all = Scope {
            availability_zone: Some("us-east-1a".into()),
            availability_zone_id: Some("use1-az1".into()),
            vpc_endpoint_id: Some(o.vpc_endpoint_id.clone()),
            vpc_endpoint_association_arn: None,
        };
        check_target(&t(all.clone()), &o).unwrap();
        let other = Target {
            firewall_arn: format!("{}x", o.firewall_arn),
            scope: Scope::default(),
        };
        let e = check_target(&other, &o).unwrap_err();
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            ("ResourceNotFoundException", "Firewall not found")
        );
        for scope in [
            Scope {
                availability_zone: Some("us-east-1b".into()),
                ..Scope::default()
            },
            Scope {
                availability_zone_id: Some("use1-az2".into()),
                ..Scope::default()
            },
            Scope {
                vpc_endpoint_id: Some("vpce-other".into()),
                ..Scope::default()
            },
            Scope {
                vpc_endpoint_association_arn: Some("arn:aws:x".into()),
                ..Scope::default()
            },
        ] {
            let e = check_target(&t(scope.clone()), &o).unwrap_err();
            assert_eq!(e.code(), "InvalidRequestException", "{scope:?}");
        }
        o.vpc_endpoint_association_arn = Some("arn:aws:x".into());
        let with_assoc = Scope {
            vpc_endpoint_association_arn: Some("arn:aws:x".into()),
            ..all
        };
        check_target(&t(with_assoc), &o).unwrap();
    }
}
