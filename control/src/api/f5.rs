//! The F5 Distributed Cloud VER face: "Show Matching Flows".
//!
//! `POST /api/operate/namespaces/{namespace}/sites/{site}/ver/matching_flows`
//! answers, within the request, the newest flows matching a JSON filter, in
//! the shape of the Contrail / Tungsten Fabric vRouter flow table that the
//! F5 API reports: one record per direction, linked by their indices. This
//! module owns the request's validation (gRPC-gateway rules: unknown fields
//! and wrong types are 400, the `intf` / `vn` / `vn_type` / `pod` /
//! `external_service` oneof admits one member), the mapping of a
//! [`FlowEntry`] to its two records, and the handler that asks the workers.
//!
//! Errors are gRPC-gateway status bodies, `{"code", "message", "details"}`,
//! with the gRPC code that maps to the HTTP status (3 INVALID_ARGUMENT →
//! 400, 5 NOT_FOUND → 404, 12 UNIMPLEMENTED → 405, 14 UNAVAILABLE → 503).

use std::sync::Arc;
use std::time::Duration;

use flowgate_dataplane::filter::{Cidr, PortRange, ProtoSet, Rule, RuleSet};
use flowgate_dataplane::flow::{FlowEntry, Tuple, Verdict};
use flowgate_dataplane::job::{FlowRecord, InPorts, JobKind, PortScope};
use flowgate_dataplane::worker::MAX_JOBS;
use hyper::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{respond, ApiRequest, ApiState, HttpResponse};
use crate::config::Config;
use crate::dispatch::JobRequest;

/// The response header naming workers whose flows are missing.
pub const PARTIAL_HEADER: &str = "x-flowgate-partial";
/// The response header saying that more flows matched than were returned.
pub const TRUNCATED_HEADER: &str = "x-flowgate-truncated";

const PREFIX: &str = "/api/operate/namespaces/";

/// `(namespace, site)` if `path` is a matching-flows path.
pub fn parse_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix(PREFIX)?;
    let mut it = rest.split('/');
    let ns = it.next()?;
    let (sites, site, ver, op) = (it.next()?, it.next()?, it.next()?, it.next()?);
    if it.next().is_some()
        || sites != "sites"
        || ver != "ver"
        || op != "matching_flows"
        || ns.is_empty()
        || site.is_empty()
    {
        return None;
    }
    Some((ns, site))
}

/// An error answer: HTTP status, gRPC code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// gRPC status code.
    pub code: u32,
    /// What is wrong, in one line.
    pub message: String,
}

impl ApiError {
    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: 3,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: 5,
            message: message.into(),
        }
    }

    /// The gRPC-gateway error body.
    pub fn response(&self) -> HttpResponse {
        let body = serde_json::json!({"code": self.code, "message": self.message, "details": []});
        respond(self.status, "application/json", body.to_string())
    }
}

/// Which flows a request selects beyond the tuple filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every port.
    All,
    /// Records whose ingress port (`intf_id`) is this port index.
    Port(u8),
    /// A selector flowgate has no such thing for (`vn`, `vn_type`, `pod`,
    /// `external_service`): it selects no flows.
    Nothing(&'static str),
}

/// A validated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchQuery {
    /// Source address block.
    pub src: Cidr,
    /// Destination address block.
    pub dest: Cidr,
    /// Source port (proto3: 0 is unset, so any).
    pub src_port: Option<u16>,
    /// Destination port.
    pub dest_port: Option<u16>,
    /// IP protocol (0 is unset, so any).
    pub proto: Option<u8>,
    /// Port selection.
    pub scope: Scope,
    /// Only flows created within this many seconds (0: any age).
    pub seconds: u64,
    /// The node named, if any.
    pub node: Option<String>,
    /// The namespace named in the body, if any.
    pub namespace: Option<String>,
    /// The site named in the body, if any.
    pub site: Option<String>,
}

impl MatchQuery {
    /// The rule a record's own tuple must match.
    pub fn rule(&self) -> Rule {
        let port = |p: Option<u16>| p.map_or(PortRange::ANY, PortRange::single);
        Rule {
            src: self.src,
            dst: self.dest,
            sport: port(self.src_port),
            dport: port(self.dest_port),
            protos: self.proto.map_or(ProtoSet::ANY, |p| ProtoSet::of(&[p])),
        }
    }

    /// What the workers match a flow's forward tuple against, and on
    /// which ports: the rule (the forward record matches) with the port
    /// the forward direction enters by, or its mirror image (the reverse
    /// record does) with the ports whose pair peer that is. Control then
    /// checks each record exactly.
    pub fn worker_filters(&self, topo: &Topology) -> (RuleSet, PortScope) {
        let r = self.rule();
        let mirror = Rule {
            src: r.dst,
            dst: r.src,
            sport: r.dport,
            dport: r.sport,
            protos: r.protos,
        };
        let Scope::Port(p) = self.scope else {
            let rules = if mirror == r {
                vec![r]
            } else {
                vec![r, mirror]
            };
            return (RuleSet::compile(&rules), PortScope::Any);
        };
        let forward = InPorts::only([p]);
        let reverse = InPorts::only(topo.entering_from(p));
        if mirror == r {
            // One rule for both records: either port.
            let either = InPorts::only(std::iter::once(p).chain(topo.entering_from(p)));
            (RuleSet::compile(&[r]), PortScope::PerRule(vec![either]))
        } else {
            (
                RuleSet::compile(&[r, mirror]),
                PortScope::PerRule(vec![forward, reverse]),
            )
        }
    }
}

/// Request fields: the proto name and the lowerCamelCase JSON name that
/// protojson also accepts.
const FIELDS: [(&str, &str); 14] = [
    ("src", "src"),
    ("dest", "dest"),
    ("src_port", "srcPort"),
    ("dest_port", "destPort"),
    ("proto", "proto"),
    ("intf", "intf"),
    ("vn", "vn"),
    ("vn_type", "vnType"),
    ("pod", "pod"),
    ("external_service", "externalService"),
    ("node", "node"),
    ("namespace", "namespace"),
    ("site", "site"),
    ("seconds", "seconds"),
];

/// The members of the request's oneof.
const ONEOF: [&str; 5] = ["intf", "vn", "vn_type", "pod", "external_service"];

/// Validates a request body against the configuration (for `intf`).
pub fn parse_request(body: &[u8], config: &Config) -> Result<MatchQuery, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::invalid("the request body is not UTF-8 text"))?;
    // An empty body is the empty message, as gRPC-gateway treats it.
    let value: Value = if text.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str(text)
            .map_err(|e| ApiError::invalid(format!("the request body is not valid JSON: {e}")))?
    };
    let Value::Object(obj) = value else {
        return Err(ApiError::invalid(
            "the request body must be a JSON object (a MatchingFlowsRequest)",
        ));
    };
    let mut fields: Map<String, Value> = Map::new();
    for (k, v) in obj {
        let Some(&(name, _)) = FIELDS.iter().find(|(s, c)| *s == k || *c == k) else {
            return Err(ApiError::invalid(format!(
                "unknown field {k:?} (fields: {})",
                FIELDS.map(|f| f.0).join(", ")
            )));
        };
        // protojson: null is the field's default, i.e. unset.
        if v.is_null() {
            continue;
        }
        if fields.insert(name.to_string(), v).is_some() {
            return Err(ApiError::invalid(format!(
                "field {name:?} is given twice (as {name} and by its JSON name)"
            )));
        }
    }
    let set: Vec<&str> = ONEOF
        .iter()
        .copied()
        .filter(|n| fields.contains_key(*n))
        .collect();
    if set.len() > 1 {
        return Err(ApiError::invalid(format!(
            "{} are mutually exclusive: give at most one of intf, vn, vn_type, pod, external_service",
            set.join(" and ")
        )));
    }

    let string = |name: &str| -> Result<Option<String>, ApiError> {
        match fields.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(ApiError::invalid(format!(
                "field {name:?} must be a string, not {}",
                kind(other)
            ))),
        }
    };
    let number = |name: &str, max: u64| -> Result<Option<u64>, ApiError> {
        let n = match fields.get(name) {
            None => return Ok(None),
            Some(Value::Number(n)) => n.as_u64(),
            // protojson accepts integers written as strings.
            Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "field {name:?} must be a number, not {}",
                    kind(other)
                )))
            }
        };
        match n {
            Some(n) if n <= max => Ok(Some(n)),
            _ => Err(ApiError::invalid(format!(
                "field {name:?} must be an integer from 0 to {max}, not {}",
                fields[name]
            ))),
        }
    };
    let cidr = |name: &str| -> Result<Cidr, ApiError> {
        match string(name)? {
            // proto3: the empty string is unset.
            None => Ok(Cidr::ANY),
            Some(s) if s.trim().is_empty() => Ok(Cidr::ANY),
            Some(s) => crate::filters::parse_cidr(&s)
                .map_err(|e| ApiError::invalid(format!("field {name:?}: {e}"))),
        }
    };
    let nonzero = |n: Option<u64>| n.filter(|&n| n != 0);
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());

    let scope = if let Some(name) = string("intf")? {
        if name.is_empty() {
            Scope::All
        } else {
            Scope::Port(port_by_name(&name, config)?)
        }
    } else if let Some(v) = fields.get("vn_type") {
        if !(v.is_string() || v.is_u64()) {
            return Err(ApiError::invalid(format!(
                "field \"vn_type\" must be an enum name or number, not {}",
                kind(v)
            )));
        }
        Scope::Nothing("vn_type")
    } else if let Some(v) = fields.get("external_service") {
        if !v.is_object() {
            return Err(ApiError::invalid(format!(
                "field \"external_service\" must be an object, not {}",
                kind(v)
            )));
        }
        Scope::Nothing("external_service")
    } else if string("vn")?.is_some() {
        Scope::Nothing("vn")
    } else if string("pod")?.is_some() {
        Scope::Nothing("pod")
    } else {
        Scope::All
    };

    Ok(MatchQuery {
        src: cidr("src")?,
        dest: cidr("dest")?,
        src_port: nonzero(number("src_port", u16::MAX as u64)?).map(|p| p as u16),
        dest_port: nonzero(number("dest_port", u16::MAX as u64)?).map(|p| p as u16),
        proto: nonzero(number("proto", u8::MAX as u64)?).map(|p| p as u8),
        scope,
        seconds: number("seconds", u32::MAX as u64)?.unwrap_or(0),
        node: non_empty(string("node")?),
        namespace: non_empty(string("namespace")?),
        site: non_empty(string("site")?),
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A port's index by its name, its interface id, or its index.
fn port_by_name(name: &str, config: &Config) -> Result<u8, ApiError> {
    let found = config
        .ports
        .iter()
        .position(|p| p.name == name || p.interface_id.as_deref() == Some(name));
    let found = found.or_else(|| {
        name.parse::<usize>()
            .ok()
            .filter(|&i| i < config.ports.len())
    });
    match found {
        Some(i) => Ok(i as u8),
        None => Err(ApiError::not_found(format!(
            "interface {name:?} not found (ports: {})",
            config
                .ports
                .iter()
                .enumerate()
                .map(|(i, p)| match &p.interface_id {
                    Some(id) => format!("{i} {} {id}", p.name),
                    None => format!("{i} {}", p.name),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Checks the path's and the body's namespace, site and node against the
/// configuration.
pub fn check_identity(
    ns: &str,
    site: &str,
    q: &MatchQuery,
    config: &Config,
) -> Result<(), ApiError> {
    let f = &config.f5;
    if ns != f.namespace {
        return Err(ApiError::not_found(format!("namespace {ns:?} not found")));
    }
    if site != f.site {
        return Err(ApiError::not_found(format!(
            "site {site:?} not found in namespace {ns:?}"
        )));
    }
    if let Some(n) = &q.namespace {
        if *n != f.namespace {
            return Err(ApiError::not_found(format!("namespace {n:?} not found")));
        }
    }
    if let Some(s) = &q.site {
        if *s != f.site {
            return Err(ApiError::not_found(format!(
                "site {s:?} not found in namespace {ns:?}"
            )));
        }
    }
    if let Some(n) = &q.node {
        if *n != f.node {
            return Err(ApiError::not_found(format!(
                "node {n:?} not found in site {site:?}"
            )));
        }
    }
    Ok(())
}

/// What record mapping needs to know about the appliance.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Flow table capacity per worker (the stride of global indices).
    pub capacity: u64,
    /// Each port's pair peer, by port index.
    pub peer: Vec<Option<u8>>,
}

impl Topology {
    /// From the configuration.
    pub fn of(config: &Config) -> Topology {
        let index = |n: &str| config.ports.iter().position(|p| p.name == n);
        let mut peer = vec![None; config.ports.len()];
        for [a, b] in &config.dataplane.pairs {
            if let (Some(a), Some(b)) = (index(a), index(b)) {
                peer[a] = Some(b as u8);
                peer[b] = Some(a as u8);
            }
        }
        Topology {
            capacity: config.flows.capacity as u64,
            peer,
        }
    }

    /// The ports whose flows' reverse direction enters by `port` (as
    /// [`map_flow`] names it): those paired with it.
    fn entering_from(&self, port: u8) -> impl Iterator<Item = u8> + '_ {
        (0..self.peer.len())
            .filter_map(|x| u8::try_from(x).ok())
            .filter(move |&x| self.peer_of(x) == port)
    }

    fn peer_of(&self, port: u8) -> u8 {
        self.peer
            .get(port as usize)
            .copied()
            .flatten()
            .unwrap_or(port)
    }
}

/// `forward_flow` of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForwardFlow {
    /// Destination address.
    pub dest: String,
    /// Destination port (ICMP: see the flow key's conventions).
    pub dest_port: u16,
    /// Index of the port this direction's packets arrive on.
    pub intf_id: u32,
    /// IP protocol.
    pub proto: u8,
    /// Source address.
    pub src: String,
    /// Source port.
    pub src_port: u16,
    /// VLAN id (QinQ: `1 << 24 | outer << 12 | inner`; 0 untagged).
    pub vrf_id: u32,
}

/// One direction of a flow, as the F5 API (and vRouter `flow -l`) report it.
/// Fields are in the API's (alphabetical) order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerFlow {
    /// Id of the policy rule that decided the flow (0: the default action).
    pub ace_id: u32,
    /// Group of that rule.
    pub acl_id: u16,
    /// FORWARD, DROP or REJECT (see [`vrouter_action`]).
    pub action: &'static str,
    /// Bytes (frame lengths) in this direction, as a decimal string.
    pub byte_count: String,
    /// Port index this direction's packets leave by (the ingress port's peer).
    pub dest_nh_id: u32,
    /// VLAN the packets leave in: flowgate never translates, so `vrf_id`.
    pub dest_vrf_id: u32,
    /// NONE or POLICY.
    pub drop_reason: &'static str,
    /// No ECMP in flowgate: empty.
    pub ecmp_nh_id: Vec<u32>,
    /// No external services in flowgate: 0.
    pub external_service_nh_id: u32,
    /// TCP flags seen in this direction, OR-ed (a 64-bit value as a
    /// decimal string, as the API types it).
    pub flags: String,
    /// This record's index.
    pub flow_index: u64,
    /// The tuple in this direction.
    pub forward_flow: ForwardFlow,
    /// No MPLS in flowgate: 0.
    pub forward_label: u32,
    /// TTL (hop limit) of the flow's first packet; 0 on the reverse record.
    pub fr_ttl: u8,
    /// Packets in this direction, as a decimal string.
    pub pkt_count: String,
    /// No QoS in flowgate: 0.
    pub qos_id: u32,
    /// The other direction's index.
    pub reverse_flow_index: u64,
    /// Port index this direction's packets arrive on.
    pub src_nh_id: u32,
}

/// A record with what it is sorted and filtered by.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// TSC of the flow's first packet.
    pub first_seen: u64,
    /// The record's tuple.
    pub tuple: Tuple,
    /// The record.
    pub flow: VerFlow,
}

/// A verdict as vRouter's `flow -l` names actions (FORWARD, DROP, NAT, ...):
/// a reject has no vRouter word and keeps flowgate's.
fn vrouter_action(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "FORWARD",
        Verdict::Drop => "DROP",
        Verdict::Reject => "REJECT",
    }
}

/// The forward (opener → responder) and reverse records of one flow.
pub fn map_flow(worker: usize, rec: &FlowRecord, topo: &Topology) -> [Mapped; 2] {
    let e: &FlowEntry = &rec.entry;
    let global = worker as u64 * topo.capacity + rec.index as u64;
    let (fwd_idx, rev_idx) = (2 * global, 2 * global + 1);
    let fwd = e.forward_tuple();
    let rev = fwd.reversed();
    let o = e.opener().index();
    let (pkts, bytes) = (e.packets_fwd_rev(), e.bytes_fwd_rev());
    let in_port = e.in_port;
    let out_port = topo.peer_of(in_port);
    let one = |t: &Tuple,
               index: u64,
               reverse: u64,
               side: usize,
               p: u64,
               b: u64,
               ttl: u8,
               nh: (u8, u8)| Mapped {
        first_seen: e.first_seen,
        tuple: *t,
        flow: VerFlow {
            ace_id: e.rule_id,
            acl_id: e.rule_group,
            action: vrouter_action(e.verdict),
            byte_count: b.to_string(),
            dest_nh_id: nh.1 as u32,
            dest_vrf_id: t.vlan,
            drop_reason: e.drop_reason.name(),
            ecmp_nh_id: Vec::new(),
            external_service_nh_id: 0,
            flags: e.tcp_flags[side].to_string(),
            flow_index: index,
            forward_flow: ForwardFlow {
                dest: t.dst_ip().to_string(),
                dest_port: t.dport,
                intf_id: nh.0 as u32,
                proto: t.proto,
                src: t.src_ip().to_string(),
                src_port: t.sport,
                vrf_id: t.vlan,
            },
            forward_label: 0,
            fr_ttl: ttl,
            pkt_count: p.to_string(),
            qos_id: 0,
            reverse_flow_index: reverse,
            src_nh_id: nh.0 as u32,
        },
    };
    [
        one(
            &fwd,
            fwd_idx,
            rev_idx,
            o,
            pkts.0,
            bytes.0,
            e.ttl,
            (in_port, out_port),
        ),
        one(
            &rev,
            rev_idx,
            fwd_idx,
            1 - o,
            pkts.1,
            bytes.1,
            0,
            (out_port, in_port),
        ),
    ]
}

/// Maps what the workers returned, keeps the records that match exactly,
/// newest first (forward before reverse), at most `max`; and whether some
/// were cut.
pub fn select(
    records: &[(usize, FlowRecord)],
    q: &MatchQuery,
    topo: &Topology,
    max: usize,
) -> (Vec<VerFlow>, bool) {
    let rule = q.rule();
    let mut out: Vec<Mapped> = records
        .iter()
        .flat_map(|(w, r)| map_flow(*w, r, topo))
        .filter(|m| rule.matches(&m.tuple))
        .filter(|m| match q.scope {
            Scope::All => true,
            Scope::Port(p) => m.flow.src_nh_id == p as u32,
            Scope::Nothing(_) => false,
        })
        .collect();
    out.sort_by_key(|m| (std::cmp::Reverse(m.first_seen), m.flow.flow_index));
    let cut = out.len() > max;
    // A flow's two records sit side by side (forward first): the cut does
    // not part them (unless the cap is one record), so no kept record
    // points to one left out.
    let keep = match (max.checked_sub(1).and_then(|l| out.get(l)), out.get(max)) {
        (Some(last), Some(next))
            if max > 1 && last.flow.reverse_flow_index == next.flow.flow_index =>
        {
            max - 1
        }
        _ => max,
    };
    out.truncate(keep);
    (out.into_iter().map(|m| m.flow).collect(), cut)
}

/// The answer body.
#[derive(Debug, Serialize)]
struct MatchingFlows<'a> {
    flow: &'a [VerFlow],
}

/// `POST .../ver/matching_flows`.
pub async fn matching_flows(
    req: &ApiRequest,
    state: &ApiState,
    ns: &str,
    site: &str,
) -> HttpResponse {
    match answer(req, state, ns, site).await {
        Ok(r) => r,
        Err(e) => {
            let mut r = e.response();
            if e.status == StatusCode::UNAUTHORIZED {
                r.headers_mut().insert(
                    hyper::header::WWW_AUTHENTICATE,
                    hyper::header::HeaderValue::from_static("APIToken"),
                );
            }
            r
        }
    }
}

async fn answer(
    req: &ApiRequest,
    state: &ApiState,
    ns: &str,
    site: &str,
) -> Result<HttpResponse, ApiError> {
    // Who is asking comes first, as on the real service. A missing, wrong
    // or expired token is 401 there; 403 is a valid token without the
    // permission, which flowgate's tokens (all or nothing) never are.
    state.auth.f5(req).map_err(|e| ApiError {
        status: StatusCode::UNAUTHORIZED,
        code: 16, // UNAUTHENTICATED
        message: e.to_string(),
    })?;
    if req.method != Method::POST {
        return Err(ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: 12,
            message: "Method Not Allowed: matching_flows is POST".into(),
        });
    }
    let config = &state.config;
    let q = parse_request(&req.body, config)?;
    check_identity(ns, site, &q, config)?;
    let ok = |flows: &[VerFlow], partial: &[usize]| {
        let body = serde_json::to_string(&MatchingFlows { flow: flows }).expect("serialisable");
        let mut r = respond(StatusCode::OK, "application/json", body);
        if !partial.is_empty() {
            let list: Vec<String> = partial.iter().map(usize::to_string).collect();
            r.headers_mut().insert(
                PARTIAL_HEADER,
                format!("workers={}", list.join(","))
                    .parse()
                    .expect("digits and commas are a valid header"),
            );
        }
        r
    };
    if let Scope::Nothing(_) = q.scope {
        return Ok(ok(&[], &[]));
    }
    // Workers that only forward keep no flows: "try again" would never
    // come right.
    if config.dataplane.mode == crate::config::Mode::Forward {
        return Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            code: 9, // FAILED_PRECONDITION
            message: "flows are not tracked: [dataplane] mode = \"forward\"".into(),
        });
    }
    let Some(dispatcher) = state.dispatcher.get() else {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: 14,
            message: "the data plane is starting; try again".into(),
        });
    };
    // Flow operations take the workers' job places too.
    let Some(ticket) = dispatcher.reserve_job() else {
        // Every place is held: by as many jobs as the workers run (too
        // frequent: 429), or by jobs that a worker which stopped answering
        // has not given back, which no waiting by the client frees (503).
        let silent = dispatcher
            .silent_workers(crate::api::metrics::READY_DEADLINE)
            .await;
        return Err(if silent.is_empty() {
            ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: 8,
                message: format!(
                    "the workers are running {MAX_JOBS} flow operations and queries, the most they run at once; try again"
                ),
            }
        } else {
            ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: 14,
                message: format!(
                    "worker(s) {silent} do not answer, and the jobs they hold take every place"
                ),
            }
        });
    };
    let max = config.f5.max_flows;
    let topo = Topology::of(config);
    let (filters, in_ports) = q.worker_filters(&topo);
    let outcome = dispatcher
        .run_job(
            ticket,
            JobRequest {
                kind: JobKind::Query,
                filters: Arc::new(filters),
                min_age_secs: 0,
                max_age_secs: (q.seconds > 0).then_some(q.seconds),
                result_cap: max as u64,
                // A query's records come back in its own preallocated buffer.
                room_per_worker: 0,
                newest: max,
                deadline: Duration::from_millis(config.f5.deadline_ms),
                busy_share: config.f5.busy_share_percent,
                in_ports,
            },
        )
        .await;
    let missing: Vec<usize> = if outcome.complete() {
        Vec::new()
    } else {
        (0..outcome.summaries.len())
            .filter(|&w| outcome.summaries[w].is_none() || outcome.refused.contains(&w))
            .collect()
    };
    // With no worker's answer, an empty list would read as "nothing
    // matches": the service's own errors say what happened instead.
    if !missing.is_empty() && missing.len() == outcome.summaries.len() {
        return Err(if missing.iter().all(|w| outcome.refused.contains(w)) {
            ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: 14, // UNAVAILABLE
                message: "no worker could take the query now; try again".into(),
            }
        } else {
            ApiError {
                status: StatusCode::GATEWAY_TIMEOUT,
                code: 4, // DEADLINE_EXCEEDED
                message: format!(
                    "no worker answered within [f5] deadline_ms ({} ms)",
                    config.f5.deadline_ms
                ),
            }
        });
    }
    let (flows, cut) = select(&outcome.records, &q, &topo, max);
    let mut r = ok(&flows, &missing);
    if cut || outcome.truncated() {
        r.headers_mut().insert(
            TRUNCATED_HEADER,
            hyper::header::HeaderValue::from_static("true"),
        );
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowgate_dataplane::flow::key::v4_bits;
    use flowgate_dataplane::flow::{AddrFamily, DropReason, Verdict};

    const CONFIG: &str = r#"
[dataplane]
pairs = [["inside", "outside"]]
[[ports]]
name = "inside"
device = "net_null0"
interface_id = "eni-0inside0000000001"
[[ports]]
name = "outside"
device = "net_null1"
[flows]
capacity = 1000
[f5]
namespace = "system"
site = "edge"
node = "n1"
"#;

    fn config() -> Config {
        crate::config::parse(CONFIG).unwrap()
    }

    fn parse(body: &str) -> Result<MatchQuery, ApiError> {
        parse_request(body.as_bytes(), &config())
    }

    #[test]
    fn an_interface_scope_asks_the_workers_for_the_flows_entering_it_either_way() {
        let text = CONFIG.replace(
            "pairs = [[\"inside\", \"outside\"]]",
            "pairs = [[\"inside\", \"outside\"], [\"c\", \"d\"]]",
        ) + "[[ports]]\nname = \"c\"\ndevice = \"net_null2\"\n[[ports]]\nname = \"d\"\ndevice = \"net_null3\"\n";
        let topo = Topology::of(&crate::config::parse(&text).unwrap());
        let scope = |body: &str, port: u8| {
            let mut q = parse(body).unwrap();
            q.scope = Scope::Port(port);
            q.worker_filters(&topo)
        };
        // The forward record is on the port its flow came in by; the
        // reverse record on that port's pair peer (a flow that came in on
        // `outside` enters `inside` the other way).
        let (rules, ports) = scope(r#"{"dest_port": 80}"#, 0);
        assert_eq!(rules.len(), 2, "the rule and its mirror image");
        assert_eq!(
            ports,
            PortScope::PerRule(vec![InPorts::only([0]), InPorts::only([1])])
        );
        let (_, ports) = scope(r#"{"dest_port": 80}"#, 3);
        assert_eq!(
            ports,
            PortScope::PerRule(vec![InPorts::only([3]), InPorts::only([2])])
        );
        // A rule that is its own mirror image: one rule, either port.
        let (rules, ports) = scope("{}", 0);
        assert_eq!(rules.len(), 1);
        assert_eq!(ports, PortScope::PerRule(vec![InPorts::only([0, 1])]));
        let (rules, ports) = parse(r#"{"dest_port": 80}"#).unwrap().worker_filters(&topo);
        assert_eq!((rules.len(), ports), (2, PortScope::Any));
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("/api/operate/namespaces/system/sites/edge/ver/matching_flows"),
            Some(("system", "edge"))
        );
        for bad in [
            "/api/operate/namespaces/system/sites/edge/ver/matching_flows/x",
            "/api/operate/namespaces//sites/edge/ver/matching_flows",
            "/api/operate/namespaces/system/site/edge/ver/matching_flows",
            "/api/operate/namespaces/system/sites/edge/ver",
        ] {
            assert_eq!(parse_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn empty_body_and_empty_object_select_everything() {
        for body in ["", "{}", " {} "] {
            let q = parse(body).unwrap();
            assert_eq!(q.rule(), Rule::ANY);
            assert_eq!(q.scope, Scope::All);
            assert_eq!(q.seconds, 0);
        }
    }

    #[test]
    fn fields_in_both_spellings_and_numbers_as_strings() {
        let q = parse(
            r#"{"src": "10.0.0.0/8", "dest": "192.0.2.1", "srcPort": 40001, "dest_port": "80",
                "proto": 6, "seconds": "30", "node": "n1", "site": "edge", "namespace": ""}"#,
        )
        .unwrap();
        assert_eq!(q.src, Cidr::v4([10, 0, 0, 0], 8));
        assert_eq!(q.dest, Cidr::v4([192, 0, 2, 1], 32));
        assert_eq!(
            (q.src_port, q.dest_port, q.proto),
            (Some(40001), Some(80), Some(6))
        );
        assert_eq!(q.seconds, 30);
        assert_eq!(q.namespace, None);
        check_identity("system", "edge", &q, &config()).unwrap();
    }

    #[test]
    fn zero_and_empty_mean_unset() {
        let q = parse(r#"{"src": "", "src_port": 0, "proto": 0, "dest": null}"#).unwrap();
        assert_eq!(q.rule(), Rule::ANY);
    }

    #[test]
    fn bad_bodies_are_400_with_code_3() {
        for (body, want) in [
            ("not json", "not valid JSON"),
            ("[1]", "must be a JSON object"),
            (r#"{"bogus": 1}"#, "unknown field \"bogus\""),
            (r#"{"src_port": "x"}"#, "src_port"),
            (r#"{"src_port": 70000}"#, "0 to 65535"),
            (r#"{"src_port": -1}"#, "src_port"),
            (r#"{"proto": 256}"#, "0 to 255"),
            (r#"{"proto": true}"#, "must be a number"),
            (r#"{"src": 10}"#, "must be a string"),
            (r#"{"src": "10.0.0.0/33"}"#, "not an IP address"),
            (r#"{"seconds": 1.5}"#, "seconds"),
            (r#"{"src_port": 1, "srcPort": 2}"#, "twice"),
            (r#"{"external_service": "x"}"#, "must be an object"),
        ] {
            let e = parse(body).unwrap_err();
            assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, 3), "{body}");
            assert!(e.message.contains(want), "{body}: {}", e.message);
            assert!(!e.message.contains('\n'));
        }
    }

    #[test]
    fn oneof_members_are_exclusive() {
        let e = parse(r#"{"intf": "inside", "pod": "p"}"#).unwrap_err();
        assert_eq!(e.code, 3);
        assert!(
            e.message.contains("intf and pod are mutually exclusive"),
            "{}",
            e.message
        );
        let e =
            parse(r#"{"vn": "a", "vnType": "VIRTUAL_NETWORK_SITE_LOCAL", "external_service": {}}"#)
                .unwrap_err();
        assert!(
            e.message.contains("vn and vn_type and external_service"),
            "{}",
            e.message
        );
        // null is unset, so it does not count.
        assert_eq!(
            parse(r#"{"intf": "inside", "pod": null}"#).unwrap().scope,
            Scope::Port(0)
        );
    }

    #[test]
    fn intf_by_name_id_or_index_and_the_rest_select_nothing() {
        assert_eq!(
            parse(r#"{"intf": "outside"}"#).unwrap().scope,
            Scope::Port(1)
        );
        assert_eq!(
            parse(r#"{"intf": "eni-0inside0000000001"}"#).unwrap().scope,
            Scope::Port(0)
        );
        assert_eq!(parse(r#"{"intf": "1"}"#).unwrap().scope, Scope::Port(1));
        let e = parse(r#"{"intf": "eth9"}"#).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::NOT_FOUND, 5));
        for (body, what) in [
            (r#"{"vn": "x"}"#, "vn"),
            (r#"{"vn_type": "VIRTUAL_NETWORK_SITE_LOCAL"}"#, "vn_type"),
            (r#"{"pod": "x"}"#, "pod"),
            (r#"{"external_service": {}}"#, "external_service"),
        ] {
            assert_eq!(parse(body).unwrap().scope, Scope::Nothing(what));
        }
    }

    #[test]
    fn identity_mismatch_is_404_with_code_5() {
        let c = config();
        let q = parse("{}").unwrap();
        check_identity("system", "edge", &q, &c).unwrap();
        for (ns, site, body) in [
            ("other", "edge", "{}"),
            ("system", "other", "{}"),
            ("system", "edge", r#"{"site": "other"}"#),
            ("system", "edge", r#"{"namespace": "other"}"#),
            ("system", "edge", r#"{"node": "n2"}"#),
        ] {
            let e = check_identity(ns, site, &parse(body).unwrap(), &c).unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (StatusCode::NOT_FOUND, 5),
                "{ns} {site} {body}"
            );
        }
        let body: Value = serde_json::from_slice(&futures_body(
            ApiError::not_found("site \"x\" not found").response(),
        ))
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"code": 5, "message": "site \"x\" not found", "details": []})
        );
    }

    fn futures_body(r: HttpResponse) -> Vec<u8> {
        use http_body_util::BodyExt;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(r.into_body().collect())
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    /// A TCP flow 10.0.0.1:40000 -> 192.0.2.1:80 on VLAN 7, opened by the
    /// client, which sorts last (so the opener is the key's `hi` side).
    fn entry() -> FlowEntry {
        let t = Tuple {
            src: v4_bits([10, 0, 0, 1]),
            dst: v4_bits([192, 0, 2, 1]),
            sport: 40000,
            dport: 80,
            proto: 6,
            family: AddrFamily::V4,
            vlan: 7,
        };
        let (k, side) = t.canonical();
        let mut e = FlowEntry::new(k, side, 1000);
        let (o, r) = (side.index(), 1 - side.index());
        e.packets[o] = 5;
        e.packets[r] = 4;
        e.bytes[o] = 500;
        e.bytes[r] = 4000;
        e.tcp_flags[o] = 0x02 | 0x10 | 0x01; // SYN ACK FIN
        e.tcp_flags[r] = 0x12 | 0x08;
        e.rule_id = 7;
        e.rule_group = 3;
        e.verdict = Verdict::Drop;
        e.drop_reason = DropReason::Policy;
        e.ttl = 63;
        e.in_port = 1;
        e
    }

    #[test]
    fn a_flow_maps_to_two_linked_records() {
        let topo = Topology::of(&config());
        let rec = FlowRecord {
            entry: entry(),
            index: 17,
        };
        let [f, r] = map_flow(2, &rec, &topo).map(|m| m.flow);
        let g = 2 * 1000 + 17;
        assert_eq!((f.flow_index, f.reverse_flow_index), (2 * g, 2 * g + 1));
        assert_eq!((r.flow_index, r.reverse_flow_index), (2 * g + 1, 2 * g));
        let ff = &f.forward_flow;
        assert_eq!(
            (
                ff.src.as_str(),
                ff.src_port,
                ff.dest.as_str(),
                ff.dest_port,
                ff.proto,
                ff.vrf_id
            ),
            ("10.0.0.1", 40000, "192.0.2.1", 80, 6, 7)
        );
        let rf = &r.forward_flow;
        assert_eq!(
            (rf.src.as_str(), rf.src_port, rf.dest.as_str(), rf.dest_port),
            ("192.0.2.1", 80, "10.0.0.1", 40000)
        );
        assert_eq!((f.pkt_count.as_str(), f.byte_count.as_str()), ("5", "500"));
        assert_eq!((r.pkt_count.as_str(), r.byte_count.as_str()), ("4", "4000"));
        assert_eq!((f.flags.as_str(), r.flags.as_str()), ("19", "26"));
        assert_eq!((f.fr_ttl, r.fr_ttl), (63, 0));
        assert_eq!((f.src_nh_id, f.dest_nh_id, ff.intf_id), (1, 0, 1));
        assert_eq!((r.src_nh_id, r.dest_nh_id, rf.intf_id), (0, 1, 0));
        for x in [&f, &r] {
            assert_eq!((x.action, x.drop_reason), ("DROP", "POLICY"));
            assert_eq!((x.ace_id, x.acl_id, x.dest_vrf_id), (7, 3, 7));
            assert_eq!(
                (x.qos_id, x.forward_label, x.external_service_nh_id),
                (0, 0, 0)
            );
            assert!(x.ecmp_nh_id.is_empty());
        }
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["byte_count"], "500");
        assert_eq!(json["forward_flow"]["intf_id"], 1);
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 18);
    }

    #[test]
    fn filters_apply_to_each_records_own_tuple() {
        let c = config();
        let topo = Topology::of(&c);
        let mut newer = entry();
        newer.first_seen = 2000;
        let records = vec![
            (
                0,
                FlowRecord {
                    entry: entry(),
                    index: 1,
                },
            ),
            (
                0,
                FlowRecord {
                    entry: newer,
                    index: 2,
                },
            ),
        ];
        let q = |body: &str| parse_request(body.as_bytes(), &c).unwrap();
        // Both records of both flows, newest flow first, forward first.
        let (all, cut) = select(&records, &q("{}"), &topo, 1024);
        assert!(!cut);
        assert_eq!(
            all.iter().map(|f| f.flow_index).collect::<Vec<_>>(),
            vec![4, 5, 2, 3]
        );
        // The client as source: forward records only.
        let (fwd, _) = select(&records, &q(r#"{"src": "10.0.0.1"}"#), &topo, 1024);
        assert!(fwd.iter().all(|f| f.flow_index % 2 == 0) && fwd.len() == 2);
        // Port 80 as source port: reverse records only.
        let (rev, _) = select(&records, &q(r#"{"src_port": 80}"#), &topo, 1024);
        assert!(rev.iter().all(|f| f.flow_index % 2 == 1) && rev.len() == 2);
        // The ingress port: the forward record's is "outside" (1).
        let (out, _) = select(&records, &q(r#"{"intf": "outside"}"#), &topo, 1024);
        assert!(out.iter().all(|f| f.flow_index % 2 == 0) && out.len() == 2);
        // The cap keeps the newest, and keeps a flow's two records together.
        for (max, want) in [(3, vec![4, 5]), (2, vec![4, 5]), (1, vec![4])] {
            let (capped, cut) = select(&records, &q("{}"), &topo, max);
            assert!(cut);
            assert_eq!(
                capped.iter().map(|f| f.flow_index).collect::<Vec<_>>(),
                want
            );
        }
        // Records of one direction only are cut anywhere.
        let (capped, _) = select(&records, &q(r#"{"src": "10.0.0.1"}"#), &topo, 1);
        assert_eq!(
            capped.iter().map(|f| f.flow_index).collect::<Vec<_>>(),
            vec![4]
        );
        // The workers are asked for the rule or its mirror image.
        let (wq, _) = q(r#"{"src": "10.0.0.1"}"#).worker_filters(&topo);
        let t = entry().forward_tuple();
        assert!(wq.any_match(&t) && wq.any_match(&t.reversed()));
    }
}
