//! `GET /metrics` (Prometheus / OpenMetrics text, via `prometheus-client`),
//! `GET /readyz`, and the API's own request counters.
//!
//! The data plane's numbers are not kept here: every scrape reads the
//! ports' DPDK counters and asks each worker for a snapshot of its
//! [`WorkerCounters`], then renders them into a fresh registry. Only the
//! request counters live in the control thread, in [`RequestCounters`].

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use flowgate_dataplane::parse::Malformed;
use flowgate_dataplane::stats::WorkerCounters;
use flowgate_sys::PortStats;
use hyper::StatusCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{respond, text, ApiRequest, ApiState, HttpResponse};

/// How long a scrape waits for worker snapshots.
const SCRAPE_DEADLINE: Duration = Duration::from_millis(500);
/// How long `/readyz` waits for every worker to answer.
pub const READY_DEADLINE: Duration = Duration::from_millis(250);
/// Distinct (face, operation, status) series kept; past it, new
/// operations count as "other" (clients choose operation names).
const MAX_REQUEST_SERIES: usize = 512;

/// The content type of the OpenMetrics exposition (for clients that ask).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the classic Prometheus text exposition (the default).
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Labels of the request counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `network_firewall`, `ec2`, `f5` or `http`.
    pub face: String,
    /// The operation: X-Amz-Target suffix, EC2 Action, `matching_flows`,
    /// or the path (`other` for unknown paths).
    pub operation: String,
    /// HTTP status code.
    pub status: String,
}

/// Requests answered, by face, operation and status.
#[derive(Debug, Default)]
pub struct RequestCounters {
    counts: Mutex<HashMap<RequestLabels, u64>>,
}

impl RequestCounters {
    /// Counts one answered request.
    pub fn record(&self, face: &str, operation: &str, status: u16) {
        let mut m = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mut key = RequestLabels {
            face: face.to_string(),
            operation: operation.to_string(),
            status: status.to_string(),
        };
        if !m.contains_key(&key) && m.len() >= MAX_REQUEST_SERIES {
            key.operation = "other".into();
        }
        *m.entry(key).or_insert(0) += 1;
    }

    /// Every series and its count.
    pub fn snapshot(&self) -> Vec<(RequestLabels, u64)> {
        let m = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// The face and operation a request is counted under.
pub fn classify(req: &ApiRequest) -> (&'static str, String) {
    // Operation names come from clients: keep them short and plain.
    let clean = |s: &str| -> String {
        if !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric()) {
            s.to_string()
        } else {
            "invalid".to_string()
        }
    };
    if super::f5::parse_path(&req.path).is_some() {
        return ("f5", "matching_flows".into());
    }
    if req.path == "/" {
        if let Some(target) = req.header("x-amz-target") {
            let op = target.rsplit('.').next().unwrap_or(target);
            return ("network_firewall", clean(op));
        }
        let form = std::str::from_utf8(&req.body).unwrap_or("");
        let action = req
            .query
            .iter()
            .map(String::as_str)
            .chain([form])
            .flat_map(|q| q.split('&'))
            .find_map(|kv| kv.strip_prefix("Action="));
        if let Some(a) = action {
            return ("ec2", clean(a));
        }
    }
    match req.path.as_str() {
        p @ ("/healthz" | "/readyz" | "/metrics") => ("http", p.to_string()),
        _ => ("http", "other".into()),
    }
}

/// Labels of per-port families.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PortLabels {
    port: String,
}

/// Labels of per-worker families.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MalformedLabels {
    worker: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    worker: String,
    verdict: String,
}

/// One port as a scrape saw it.
#[derive(Debug, Clone)]
pub struct PortSample {
    /// Configured name.
    pub name: String,
    /// DPDK counters.
    pub stats: PortStats,
    /// Link up.
    pub up: bool,
}

/// Everything one scrape renders.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Ports in config order (empty before they are up).
    pub ports: Vec<PortSample>,
    /// Each worker's counters; `None` if it did not answer in time.
    pub workers: Vec<Option<WorkerCounters>>,
    /// API request counts.
    pub requests: Vec<(RequestLabels, u64)>,
    /// Flow operations held, by type and status.
    pub operations: Vec<(OperationLabels, u64)>,
    /// Jobs placed on the workers (see [`crate::dispatch::Dispatcher::jobs_placed`]).
    pub jobs: usize,
    /// The mirror store's generation (bumped by every EC2 change).
    pub mirror_generation: u32,
    /// The newest mirror generation every worker has confirmed.
    pub mirror_installed_generation: u32,
}

/// Labels of the flow-operation gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// `FLOW_CAPTURE` or `FLOW_FLUSH`.
    pub r#type: String,
    /// `IN_PROGRESS`, `COMPLETED`, `COMPLETED_WITH_ERRORS` or `FAILED`.
    pub status: String,
}

fn counters<L>(reg: &mut Registry, name: &str, help: &str, rows: impl IntoIterator<Item = (L, u64)>)
where
    L: Clone + Debug + Hash + Eq + EncodeLabelSet + Send + Sync + 'static,
{
    let f = Family::<L, Counter>::default();
    for (l, v) in rows {
        f.get_or_create(&l).inc_by(v);
    }
    reg.register(name, help, f);
}

/// One gauge without labels.
fn gauge(reg: &mut Registry, name: &str, help: &str, v: f64) {
    let g = Gauge::<f64, AtomicU64>::default();
    g.set(v);
    reg.register(name, help, g);
}

fn gauges<L>(reg: &mut Registry, name: &str, help: &str, rows: impl IntoIterator<Item = (L, f64)>)
where
    L: Clone + Debug + Hash + Eq + EncodeLabelSet + Send + Sync + 'static,
{
    let f = Family::<L, Gauge<f64, AtomicU64>>::default();
    for (l, v) in rows {
        f.get_or_create(&l).set(v);
    }
    reg.register(name, help, f);
}

/// The OpenMetrics exposition of a snapshot.
pub fn render(s: &Snapshot) -> String {
    let mut reg = Registry::with_prefix("flowgate");
    register(&mut reg, s);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &reg).expect("writing to a String");
    out
}

/// The classic Prometheus text format (0.0.4) of an OpenMetrics
/// exposition. The two differ in what a counter family is called:
/// OpenMetrics names it without the `_total` its samples carry, the
/// classic format (and its parsers) by the sample name. No `# EOF`.
pub fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 64 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((p, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                out.push_str(&format!("{p}{name}{suffix} {tail}"));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Registers every family of a snapshot.
pub fn register(reg: &mut Registry, s: &Snapshot) {
    let port = |f: fn(&PortSample) -> u64| {
        s.ports.iter().map(move |p| {
            (
                PortLabels {
                    port: p.name.clone(),
                },
                f(p),
            )
        })
    };
    counters(
        reg,
        "port_rx_packets",
        "Packets the port received (DPDK ipackets)",
        port(|p| p.stats.ipackets),
    );
    counters(
        reg,
        "port_tx_packets",
        "Packets the port sent (DPDK opackets)",
        port(|p| p.stats.opackets),
    );
    counters(
        reg,
        "port_rx_bytes",
        "Bytes the port received (DPDK ibytes)",
        port(|p| p.stats.ibytes),
    );
    counters(
        reg,
        "port_tx_bytes",
        "Bytes the port sent (DPDK obytes)",
        port(|p| p.stats.obytes),
    );
    counters(
        reg,
        "port_rx_dropped",
        "Packets the port dropped on receive: no room in the rx ring (imissed) or no mbuf (rx_nombuf)",
        port(|p| p.stats.imissed + p.stats.rx_nombuf),
    );
    counters(
        reg,
        "port_tx_dropped",
        "Packets the port failed to send (DPDK oerrors)",
        port(|p| p.stats.oerrors),
    );
    counters(
        reg,
        "port_rx_errors",
        "Erroneous packets the port received (DPDK ierrors)",
        port(|p| p.stats.ierrors),
    );
    gauges(
        reg,
        "port_up",
        "1 if the port's link is up, else 0",
        s.ports.iter().map(|p| {
            (
                PortLabels {
                    port: p.name.clone(),
                },
                f64::from(u8::from(p.up)),
            )
        }),
    );

    let label = |w: usize| WorkerLabels {
        worker: w.to_string(),
    };
    gauges(
        reg,
        "worker_up",
        "1 if the worker answered this scrape's counters request on its ring, else 0 (then it has no other samples)",
        s.workers
            .iter()
            .enumerate()
            .map(|(w, c)| (label(w), f64::from(u8::from(c.is_some())))),
    );
    let answered: Vec<(usize, &WorkerCounters)> = s
        .workers
        .iter()
        .enumerate()
        .filter_map(|(w, c)| c.as_ref().map(|c| (w, c)))
        .collect();
    let worker =
        |f: fn(&WorkerCounters) -> u64| answered.iter().map(move |(w, c)| (label(*w), f(c)));
    counters(
        reg,
        "worker_rx_packets",
        "Packets the worker received from its rx queues",
        worker(|c| c.rx_packets),
    );
    counters(
        reg,
        "worker_rx_bytes",
        "Bytes the worker received and tracked (0 in forward mode, which reads no packet, as testpmd's io mode: see flowgate_port_rx_bytes_total)",
        worker(|c| c.rx_bytes),
    );
    counters(
        reg,
        "worker_tx_packets",
        "Packets the worker handed to a driver",
        worker(|c| c.tx_packets),
    );
    counters(
        reg,
        "worker_tx_dropped",
        "Packets a driver refused from the worker (freed)",
        worker(|c| c.tx_dropped),
    );
    counters(
        reg,
        "worker_loops",
        "Iterations of the worker's polling loop",
        worker(|c| c.loops),
    );
    counters(
        reg,
        "worker_busy_loops",
        "Loop iterations that received at least one packet",
        worker(|c| c.busy_loops),
    );
    gauges(
        reg,
        "worker_busy_ratio",
        "Busy loop iterations over all iterations since start (busy_loops / loops; idle is 1 minus this)",
        answered
            .iter()
            .map(|(w, c)| (label(*w), c.busy_loops as f64 / c.loops.max(1) as f64)),
    );
    gauges(
        reg,
        "worker_flows_active",
        "Flows in the worker's table",
        answered
            .iter()
            .map(|(w, c)| (label(*w), c.flows_active as f64)),
    );
    counters(
        reg,
        "worker_flows_created",
        "Flows the worker created",
        worker(|c| c.flows_created),
    );
    counters(
        reg,
        "worker_flows_expired",
        "Flows removed by the idle-timeout sweep",
        worker(|c| c.flows_expired),
    );
    counters(
        reg,
        "worker_flows_evicted",
        "Flows evicted to make room for new ones (when_full = evict-oldest)",
        worker(|c| c.flows_evicted),
    );
    counters(
        reg,
        "worker_flows_flushed",
        "Flows removed by flush operations",
        worker(|c| c.flows_flushed),
    );
    counters(
        reg,
        "worker_job_busy_ticks",
        "TSC ticks flow operations took from loop iterations that also forwarded packets (see worker_busy_ticks)",
        worker(|c| c.job_busy_ticks),
    );
    counters(
        reg,
        "worker_busy_ticks",
        "TSC ticks of the loop iterations that forwarded packets while a flow operation ran",
        worker(|c| c.busy_ticks),
    );
    counters(
        reg,
        "worker_job_idle_ticks",
        "TSC ticks flow operations took from loop iterations that received nothing (spare time)",
        worker(|c| c.job_idle_ticks),
    );
    counters(
        reg,
        "worker_table_full_drops",
        "Packets of new flows dropped because the table was full",
        worker(|c| c.table_full_drops),
    );
    counters(
        reg,
        "worker_midstream_packets",
        "TCP packets without SYN of unknown flows (stream exception policy)",
        worker(|c| c.midstream_packets),
    );
    counters(
        reg,
        "worker_malformed_packets",
        "Malformed frames, by the first problem found",
        answered.iter().flat_map(|(w, c)| {
            Malformed::ALL.iter().map(move |m| {
                (
                    MalformedLabels {
                        worker: w.to_string(),
                        reason: m.name().to_string(),
                    },
                    c.malformed[m.index()],
                )
            })
        }),
    );
    counters(
        reg,
        "worker_malformed_dropped",
        "Malformed frames dropped (the rest were passed untracked)",
        worker(|c| c.malformed_dropped),
    );
    counters(
        reg,
        "worker_not_ip_packets",
        "Frames that are not IP (ARP, LLDP, ...), forwarded untracked",
        worker(|c| c.not_ip),
    );
    counters(
        reg,
        "worker_fragments_untracked",
        "Non-first fragments whose first fragment was not seen, untracked",
        worker(|c| c.fragments_untracked),
    );
    counters(
        reg,
        "worker_fragments_untracked_dropped",
        "Untracked non-first fragments dropped: the policy could drop them, given their ports",
        worker(|c| c.fragments_untracked_dropped),
    );
    counters(
        reg,
        "worker_tcp_out_of_window_packets",
        "TCP packets too far from their side's sequence number to change their flow's state (forwarded as its verdict says)",
        worker(|c| c.tcp_out_of_window),
    );
    counters(
        reg,
        "worker_icmp_related_packets",
        "ICMP errors about a tracked flow, given that flow's verdict (untracked)",
        worker(|c| c.icmp_related),
    );
    counters(
        reg,
        "worker_fragment_map_overwrites",
        "Fragment map entries overwritten while live (map full)",
        worker(|c| c.fragment_map_overwrites),
    );
    counters(
        reg,
        "worker_policy_verdicts",
        "New flows by the verdict the policy gave them",
        answered.iter().flat_map(|(w, c)| {
            [
                ("pass", c.policy_pass),
                ("drop", c.policy_drop),
                ("reject", c.policy_reject),
            ]
            .map(|(v, n)| {
                (
                    VerdictLabels {
                        worker: w.to_string(),
                        verdict: v.to_string(),
                    },
                    n,
                )
            })
        }),
    );
    counters(
        reg,
        "worker_verdict_dropped_packets",
        "Packets dropped because their flow's verdict is drop or reject",
        worker(|c| c.verdict_dropped),
    );
    counters(
        reg,
        "worker_rejects_sent",
        "TCP RSTs and ICMP unreachables sent for rejected flows",
        worker(|c| c.rejects_sent),
    );
    counters(
        reg,
        "worker_rejects_failed",
        "Rejects that could not be sent (no mbuf, or tx refused)",
        worker(|c| c.rejects_failed),
    );
    counters(
        reg,
        "worker_rejects_limited",
        "Rejected packets not answered: over [policy] reject_rate",
        worker(|c| c.rejects_limited),
    );

    counters(
        reg,
        "worker_mirror_copies",
        "Mirror copies sent to a traffic mirror target",
        worker(|c| c.mirror_copies),
    );
    counters(
        reg,
        "worker_mirror_dropped",
        "Mirror copies dropped (no mbuf, or no room on the target's tx queue); forwarding is unaffected",
        worker(|c| c.mirror_dropped),
    );
    gauge(
        reg,
        "worker_jobs",
        "Flow operations and matching-flows queries placed on the workers, including those past their deadline that a worker has yet to drop",
        s.jobs as f64,
    );
    gauge(
        reg,
        "mirror_generation",
        "Generation of the traffic mirror configuration stored (bumped by every EC2 change); equal to mirror_installed_generation once every worker runs it",
        f64::from(s.mirror_generation),
    );
    gauge(
        reg,
        "mirror_installed_generation",
        "Newest traffic mirror configuration generation every worker has confirmed; compare with mirror_generation to know a change reached every worker",
        f64::from(s.mirror_installed_generation),
    );
    gauges(
        reg,
        "flow_operations",
        "Flow operations held (running, or finished and not yet forgotten), by type and status",
        s.operations.iter().map(|(l, n)| (l.clone(), *n as f64)),
    );

    counters(
        reg,
        "api_requests",
        "HTTP API requests answered, by face, operation and status",
        s.requests.iter().cloned(),
    );
}

/// `GET /metrics`: the classic text format, or OpenMetrics when the
/// `Accept` header asks for it (as Prometheus itself does).
pub async fn metrics(req: &ApiRequest, state: &ApiState) -> HttpResponse {
    let operations = {
        state
            .ops()
            .census()
            .into_iter()
            .map(|((k, st), n)| {
                let l = OperationLabels {
                    r#type: crate::api::nfw::model::kind_name(k).to_string(),
                    status: crate::api::nfw::model::status_name(st).to_string(),
                };
                (l, n)
            })
            .collect()
    };
    let mut snap = Snapshot {
        requests: state.requests.snapshot(),
        operations,
        // The store first: an installed generation that then equals it
        // means every change answered before this scrape reached the workers.
        mirror_generation: state.mirror().state.generation,
        mirror_installed_generation: state.installed_mirror_generation(),
        ..Snapshot::default()
    };
    if let Some(ports) = state.ports.get() {
        for p in ports {
            let Some(stats) = state.port_stats(p) else {
                break; // closing down
            };
            snap.ports.push(PortSample {
                name: p.name.clone(),
                stats,
                up: state.port_up(p),
            });
        }
    }
    if let Some(d) = state.dispatcher.get() {
        snap.jobs = d.jobs_placed();
        snap.workers = d.worker_counters(SCRAPE_DEADLINE).await;
    }
    let om = render(&snap);
    let wants_om = req
        .header("accept")
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    if wants_om {
        respond(StatusCode::OK, OPENMETRICS, om)
    } else {
        respond(StatusCode::OK, PROMETHEUS_TEXT, prometheus_text(&om))
    }
}

/// `GET /readyz`: ready when the ports are up and every worker answers.
pub async fn readyz(state: &ApiState) -> HttpResponse {
    let unavailable = |why: String| {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
    };
    let (Some(ports), Some(d)) = (state.ports.get(), state.dispatcher.get()) else {
        return unavailable("starting: ports and workers are not up yet".into());
    };
    if !state.ready.load(Ordering::Acquire) {
        return unavailable("stopping or starting".into());
    }
    let down: Vec<&str> = ports
        .iter()
        .filter(|p| !state.port_up(p))
        .map(|p| p.name.as_str())
        .collect();
    if !down.is_empty() {
        return unavailable(format!("link down on port(s) {}", down.join(", ")));
    }
    let silent = d.silent_workers(READY_DEADLINE).await;
    if !silent.is_empty() {
        return unavailable(format!(
            "worker(s) {silent} did not answer on their ring within {} ms",
            READY_DEADLINE.as_millis()
        ));
    }
    text(
        StatusCode::OK,
        format!(
            "ready: {} port(s) up, {} worker(s) answering\n",
            ports.len(),
            d.workers()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let mut w = WorkerCounters {
            rx_packets: 91,
            loops: 1000,
            busy_loops: 250,
            flows_active: 14,
            policy_drop: 2,
            mirror_copies: 4,
            ..WorkerCounters::default()
        };
        w.malformed[Malformed::Runt.index()] = 3;
        let req = RequestCounters::default();
        req.record("f5", "matching_flows", 200);
        req.record("f5", "matching_flows", 200);
        req.record("http", "/metrics", 200);
        Snapshot {
            ports: vec![PortSample {
                name: "inside".into(),
                stats: PortStats {
                    ipackets: 91,
                    ibytes: 9000,
                    imissed: 2,
                    rx_nombuf: 3,
                    oerrors: 4,
                    ..PortStats::default()
                },
                up: true,
            }],
            workers: vec![Some(w), None],
            requests: req.snapshot(),
            operations: vec![(
                OperationLabels {
                    r#type: "FLOW_FLUSH".into(),
                    status: "COMPLETED".into(),
                },
                3,
            )],
            jobs: 2,
            mirror_generation: 7,
            mirror_installed_generation: 6,
        }
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn families_have_help_type_and_values() {
        let out = render(&snapshot());
        let l = lines(&out);
        assert!(
            l.contains(&"# TYPE flowgate_port_rx_packets counter"),
            "{out}"
        );
        assert!(l.contains(
            &"# HELP flowgate_port_rx_packets Packets the port received (DPDK ipackets)."
        ));
        assert!(l.contains(&"flowgate_port_rx_packets_total{port=\"inside\"} 91"));
        assert!(l.contains(&"flowgate_port_rx_dropped_total{port=\"inside\"} 5"));
        assert!(l.contains(&"flowgate_port_tx_dropped_total{port=\"inside\"} 4"));
        assert!(l.contains(&"flowgate_port_up{port=\"inside\"} 1.0"));
        assert!(l.contains(&"flowgate_worker_up{worker=\"0\"} 1.0"));
        assert!(l.contains(&"flowgate_worker_up{worker=\"1\"} 0.0"));
        assert!(l.contains(&"flowgate_worker_busy_ratio{worker=\"0\"} 0.25"));
        assert!(l.contains(&"flowgate_worker_flows_active{worker=\"0\"} 14.0"));
        assert!(
            l.contains(&"flowgate_worker_malformed_packets_total{worker=\"0\",reason=\"runt\"} 3")
        );
        assert!(
            l.contains(&"flowgate_worker_policy_verdicts_total{worker=\"0\",verdict=\"drop\"} 2")
        );
        assert!(l.contains(&"flowgate_api_requests_total{face=\"f5\",operation=\"matching_flows\",status=\"200\"} 2"));
        assert!(l.contains(&"flowgate_worker_mirror_copies_total{worker=\"0\"} 4"));
        assert!(
            l.contains(&"flowgate_flow_operations{type=\"FLOW_FLUSH\",status=\"COMPLETED\"} 3.0")
        );
        assert!(l.contains(&"flowgate_worker_jobs 2.0"));
        assert!(l.contains(&"flowgate_mirror_generation 7.0"));
        assert!(l.contains(&"flowgate_mirror_installed_generation 6.0"));
        assert_eq!(l.last(), Some(&"# EOF"));
        // A silent worker has no samples beyond worker_up.
        assert!(!out.contains("worker=\"1\"} 0\n"));
        // Every family has help and a type.
        let types = l.iter().filter(|x| x.starts_with("# TYPE")).count();
        let helps = l.iter().filter(|x| x.starts_with("# HELP")).count();
        assert_eq!(types, helps);
        assert!(types >= 30, "{types}");
    }

    #[test]
    fn classic_text_names_counter_families_by_their_samples() {
        let t = prometheus_text(&render(&snapshot()));
        let l = lines(&t);
        assert!(
            l.contains(&"# TYPE flowgate_port_rx_packets_total counter"),
            "{t}"
        );
        assert!(l.contains(
            &"# HELP flowgate_port_rx_packets_total Packets the port received (DPDK ipackets)."
        ));
        assert!(l.contains(&"flowgate_port_rx_packets_total{port=\"inside\"} 91"));
        assert!(l.contains(&"# TYPE flowgate_worker_busy_ratio gauge"));
        assert!(!t.contains("# EOF"));
        // Every sample belongs to the family declared just before it.
        let mut family = "";
        for line in l {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap();
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(name, family, "{line}");
            }
        }
    }

    #[test]
    fn request_series_are_bounded() {
        let r = RequestCounters::default();
        for i in 0..(MAX_REQUEST_SERIES + 10) {
            r.record("ec2", &format!("Op{i}"), 400);
        }
        let s = r.snapshot();
        assert_eq!(s.len(), MAX_REQUEST_SERIES + 1);
        let other = s.iter().find(|(k, _)| k.operation == "other").unwrap();
        assert_eq!(other.1, 10);
    }

    fn request(path: &str, headers: &[(&str, &str)], body: &str) -> ApiRequest {
        let mut h = hyper::header::HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        ApiRequest {
            method: hyper::Method::POST,
            path: path.into(),
            query: None,
            headers: h,
            body: body.to_string().into(),
            peer: "127.0.0.1:1".parse().unwrap(),
        }
    }

    #[test]
    fn requests_are_classified_by_face() {
        let nfw = request(
            "/",
            &[(
                "x-amz-target",
                "NetworkFirewall_20201112.ListFlowOperations",
            )],
            "{}",
        );
        assert_eq!(
            classify(&nfw),
            ("network_firewall", "ListFlowOperations".into())
        );
        let ec2 = request(
            "/",
            &[],
            "Action=DescribeTrafficMirrorSessions&Version=2016-11-15",
        );
        assert_eq!(
            classify(&ec2),
            ("ec2", "DescribeTrafficMirrorSessions".into())
        );
        let bad = request("/", &[("x-amz-target", "x.<script>")], "");
        assert_eq!(classify(&bad).1, "invalid");
        let f5 = request(
            "/api/operate/namespaces/system/sites/s/ver/matching_flows",
            &[],
            "{}",
        );
        assert_eq!(classify(&f5), ("f5", "matching_flows".into()));
        assert_eq!(
            classify(&request("/metrics", &[], "")),
            ("http", "/metrics".into())
        );
        assert_eq!(
            classify(&request("/wp-admin", &[], "")),
            ("http", "other".into())
        );
    }
}
