//! The five flow operations. Each takes a request already read into the
//! model's input shape, checks it, acts on the operation store, and answers
//! the JSON body of its output shape.
//!
//! A start never waits for the workers: it creates the operation
//! IN_PROGRESS, answers, and leaves a local task to run the job through the
//! dispatcher and record how it ended. Everything else only reads the store.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use flowgate_dataplane::filter::RuleSet;
use flowgate_dataplane::job::{JobKind, PortScope};
use flowgate_dataplane::worker::MAX_JOBS;
use serde::Serialize;
use uuid::Uuid;

use super::error::NfwError;
use super::model::{
    epoch_seconds, kind_name, status_name, Address, DescribeOutput, Flow, FlowOperationMetadata,
    FlowOperationSpec, Input, ListOperationsOutput, ListResultsOutput, NfwOp, Scope, StartOutput,
};
use super::{token, validate};
use crate::api::ApiState;
use crate::config::OperationsConfig;
use crate::dispatch::{Dispatcher, JobRequest, JobTicket};
use crate::ops::{Finish, FlowResult, OpKind};

/// Runs `op` on `input`; the JSON body of its output.
pub async fn call(op: NfwOp, input: &Input, state: &Arc<ApiState>) -> Result<String, NfwError> {
    match op {
        NfwOp::StartFlowCapture => start(state, OpKind::Capture, input).await,
        NfwOp::StartFlowFlush => start(state, OpKind::Flush, input).await,
        NfwOp::DescribeFlowOperation => describe(state, input),
        NfwOp::ListFlowOperations => list_operations(state, input),
        NfwOp::ListFlowOperationResults => list_results(state, input),
    }
}

fn json(v: &impl Serialize) -> Result<String, NfwError> {
    serde_json::to_string(v).map_err(|e| NfwError::InternalServerError(e.to_string()))
}

fn not_found(id: &Uuid) -> NfwError {
    NfwError::ResourceNotFound(format!("Flow operation {id} not found"))
}

/// The scope an operation reports: what its request named, and the
/// Availability Zone it ran in even when the request did not name one.
fn reported_scope(s: &Scope, o: &OperationsConfig) -> Scope {
    let mut s = s.clone();
    if s.availability_zone.is_none() {
        s.availability_zone = Some(o.availability_zone.clone());
    }
    s
}

async fn start(state: &Arc<ApiState>, kind: OpKind, input: &Input) -> Result<String, NfwError> {
    let req = validate::start(input)?;
    let o = &state.config.operations;
    validate::check_target(&req.target, o)?;
    let Some(dispatcher) = state.dispatcher.get().cloned() else {
        return Err(NfwError::InternalServerError(
            "The data plane is not running yet; retry in a moment".into(),
        ));
    };
    let job = JobRequest {
        kind: match kind {
            OpKind::Capture => JobKind::Capture,
            OpKind::Flush => JobKind::Flush,
        },
        filters: Arc::new(RuleSet::compile(&req.rules)),
        min_age_secs: req.min_age.map_or(0, |a| a.max(0) as u64),
        max_age_secs: None,
        result_cap: o.result_cap,
        room_per_worker: o.result_cap.min(state.config.flows.capacity as u64),
        newest: 0,
        deadline: Duration::from_millis(o.worker_timeout_ms),
        busy_share: o.busy_share_percent,
        in_ports: PortScope::Any,
    };
    let spec = FlowOperationSpec {
        minimum_flow_age_in_seconds: req.min_age,
        flow_filters: req.filters,
        scope: req.target.scope,
    };
    // Matching-flows queries take the workers' job places too.
    let Some(ticket) = dispatcher.reserve_job() else {
        return Err(no_job_place(&dispatcher).await);
    };
    let id = state
        .ops()
        .start(kind, spec, SystemTime::now(), Instant::now())
        .map_err(|e| NfwError::Throttling(e.to_string()))?
        .id;
    tokio::task::spawn_local(run(state.clone(), dispatcher, ticket, id, job));
    json(&StartOutput {
        firewall_arn: o.firewall_arn.clone(),
        flow_operation_id: id.to_string(),
        flow_operation_status: status_name(crate::ops::OpStatus::InProgress),
    })
}

/// Why every job place is taken: by jobs that are running (come back later:
/// the error boto3 backs off and retries), or by jobs that a worker which
/// stopped answering has not given back, which no waiting by the client
/// frees: a fault of the appliance (AWS's "system problem" error, 500).
async fn no_job_place(dispatcher: &Dispatcher) -> NfwError {
    let silent = dispatcher
        .silent_workers(crate::api::metrics::READY_DEADLINE)
        .await;
    if silent.is_empty() {
        NfwError::Throttling(format!(
            "The workers are running {MAX_JOBS} flow operations and queries, the most they run at once"
        ))
    } else {
        NfwError::InternalServerError(format!(
            "Worker(s) {silent} do not answer, and the operations they hold take every place"
        ))
    }
}

/// Runs the job on every worker and records how it ended.
async fn run(
    state: Arc<ApiState>,
    dispatcher: Dispatcher,
    ticket: JobTicket,
    id: Uuid,
    job: JobRequest,
) {
    let (cap, flush) = (job.result_cap, job.kind == JobKind::Flush);
    let outcome = dispatcher.run_job(ticket, job).await;
    let finish = Finish::from_outcome(outcome, flush, cap, flowgate_sys::cpu::tsc_hz());
    state.ops().finish(id, finish, Instant::now());
}

fn describe(state: &Arc<ApiState>, input: &Input) -> Result<String, NfwError> {
    let req = validate::describe(input)?;
    let o = &state.config.operations;
    validate::check_target(&req.target, o)?;
    let mut ops = state.ops();
    let op = ops
        .get(&req.id, Instant::now())
        .ok_or_else(|| not_found(&req.id))?;
    json(&DescribeOutput {
        firewall_arn: o.firewall_arn.clone(),
        scope: reported_scope(&op.spec.scope, o),
        flow_operation_id: op.id.to_string(),
        flow_operation_type: kind_name(op.kind),
        flow_operation_status: status_name(op.status),
        status_message: op.message.clone(),
        flow_request_timestamp: epoch_seconds(op.requested_at),
        flow_operation: op.spec.clone(),
    })
}

fn list_operations(state: &Arc<ApiState>, input: &Input) -> Result<String, NfwError> {
    let req = validate::list_operations(input)?;
    validate::check_target(&req.target, &state.config.operations)?;
    let before = match &req.next_token {
        Some(t) => Some(token::operations_from(t, req.kind)?),
        None => None,
    };
    let mut ops = state.ops();
    let page = ops.list(req.kind, before, req.max_results, Instant::now());
    json(&ListOperationsOutput {
        flow_operations: page
            .items
            .iter()
            .map(|op| FlowOperationMetadata {
                flow_operation_id: op.id.to_string(),
                flow_operation_type: kind_name(op.kind),
                flow_request_timestamp: epoch_seconds(op.requested_at),
                flow_operation_status: status_name(op.status),
            })
            .collect(),
        next_token: page.next.map(|seq| token::operations_token(req.kind, seq)),
    })
}

fn list_results(state: &Arc<ApiState>, input: &Input) -> Result<String, NfwError> {
    let req = validate::list_results(input)?;
    let o = &state.config.operations;
    validate::check_target(&req.target, o)?;
    let mut ops = state.ops();
    let op = ops
        .get(&req.id, Instant::now())
        .ok_or_else(|| not_found(&req.id))?;
    let offset = match &req.next_token {
        Some(t) => token::results_from(t, &op.id, op.results.len())?,
        None => 0,
    };
    let page = op.results.page(offset, req.max_results);
    json(&ListResultsOutput {
        firewall_arn: o.firewall_arn.clone(),
        scope: reported_scope(&op.spec.scope, o),
        flow_operation_id: op.id.to_string(),
        flow_operation_status: status_name(op.status),
        status_message: op.message.clone(),
        flow_request_timestamp: epoch_seconds(op.requested_at),
        flows: page.items.iter().map(flow).collect(),
        next_token: page.next.map(|n| token::results_token(&op.id, n)),
    })
}

/// A result as the model's `Flow`: host addresses as /32 or /128, numbers
/// as strings where the model has strings, counts saturated at the model's
/// integer widths (`Age` and `PacketCount` are 32-bit).
pub fn flow(r: &FlowResult) -> Flow {
    let host = |a: std::net::IpAddr| {
        let bits = if a.is_ipv4() { 32 } else { 128 };
        Address::new(format!("{a}/{bits}"))
    };
    let int32 = |n: u64| n.min(i32::MAX as u64) as i64;
    Flow {
        source_address: host(r.src),
        destination_address: host(r.dst),
        source_port: r.sport.to_string(),
        destination_port: r.dport.to_string(),
        protocol: r.proto.to_string(),
        age: int32(r.age_secs),
        packet_count: int32(r.packets),
        byte_count: r.bytes.min(i64::MAX as u64) as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn flows_render_as_the_model_has_them() {
        let r = FlowResult {
            src: "10.1.2.3".parse::<IpAddr>().unwrap(),
            dst: "2001:db8::1".parse::<IpAddr>().unwrap(),
            sport: 51234,
            dport: 443,
            proto: 6,
            age_secs: 42,
            packets: u64::MAX,
            bytes: 5120,
        };
        let v = serde_json::to_value(flow(&r)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "SourceAddress": {"AddressDefinition": "10.1.2.3/32"},
                "DestinationAddress": {"AddressDefinition": "2001:db8::1/128"},
                "SourcePort": "51234", "DestinationPort": "443", "Protocol": "6",
                "Age": 42, "PacketCount": 2147483647i64, "ByteCount": 5120
            })
        );
    }
}
