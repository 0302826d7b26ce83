//! The client subcommands: `flowgate flows`, `flowgate stats` and
//! `flowgate ops` ask a running appliance over its HTTP API and print an
//! aligned table (the way `conntrack -L` and `ovs-appctl
//! dpctl/dump-conntrack` do) or, with `--json`, JSON. Failures are one line
//! on stderr and exit status 1.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{json, Value};

use crate::client::{base_url, Client, ClientError, RawConfig, Target};

/// `flowgate flows` options.
#[derive(clap::Args, Debug)]
pub struct FlowsArgs {
    /// Records whose source is in this address or CIDR.
    #[arg(long, value_name = "CIDR")]
    pub src: Option<String>,
    /// Records whose destination is in this address or CIDR.
    #[arg(long, value_name = "CIDR")]
    pub dst: Option<String>,
    /// Records with this source or destination port.
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// IP protocol, by name (tcp, udp, icmp, icmpv6, sctp, ...) or number.
    #[arg(long, value_name = "P")]
    pub proto: Option<String>,
    /// Only flows created within the last N seconds (0: all).
    #[arg(long, value_name = "N")]
    pub seconds: Option<u64>,
    /// Records that arrive on this port (name, interface id or index).
    #[arg(long, value_name = "PORT")]
    pub intf: Option<String>,
    /// The F5 namespace [default: the config's [f5] namespace, or "system"].
    #[arg(long)]
    pub namespace: Option<String>,
    /// The F5 site [default: the config's [f5] site, or "flowgate"].
    #[arg(long)]
    pub site: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

/// `flowgate stats` options.
#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

/// `flowgate ops` options.
#[derive(clap::Args, Debug)]
pub struct OpsArgs {
    /// The firewall ARN [default: the config's firewall_arn].
    #[arg(long, value_name = "ARN")]
    pub firewall_arn: Option<String>,
    /// Only operations of this type (FLOW_CAPTURE or FLOW_FLUSH).
    #[arg(long, value_name = "TYPE")]
    pub r#type: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

/// Runs a client subcommand's body, printing its error; the exit status.
/// A reader that stops reading (`flowgate flows | head -1`) ends the
/// output quietly, as it does for other Unix tools.
pub fn exit_status(r: Result<String, ClientError>) -> i32 {
    match r {
        Ok(out) => {
            let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
            0
        }
        Err(e) => {
            say_err!("flowgate: {e}");
            1
        }
    }
}

fn connect(t: &Target) -> Result<(Client, RawConfig), ClientError> {
    let config = RawConfig::load(t.config.as_deref())?;
    let base = base_url(t.api.as_deref(), &config);
    let creds = crate::client::Credentials::from_config(&config);
    Ok((
        Client::new(base, Duration::from_secs(t.timeout.max(1))).with_credentials(creds),
        config,
    ))
}

/// `flowgate flows`.
pub fn flows(a: &FlowsArgs) -> Result<String, ClientError> {
    let (client, config) = connect(&a.target)?;
    let ns = a
        .namespace
        .clone()
        .or_else(|| config.get("f5", "namespace").map(str::to_string))
        .unwrap_or_else(|| "system".into());
    let site = a
        .site
        .clone()
        .or_else(|| config.get("f5", "site").map(str::to_string))
        .unwrap_or_else(|| "flowgate".into());
    let mut body = serde_json::Map::new();
    for (k, v) in [("src", &a.src), ("dest", &a.dst), ("intf", &a.intf)] {
        if let Some(v) = v {
            body.insert(k.into(), json!(v));
        }
    }
    if let Some(p) = &a.proto {
        let n = crate::filters::parse_proto(p).map_err(|e| ClientError(format!("--proto: {e}")))?;
        body.insert("proto".into(), json!(n));
    }
    if let Some(s) = a.seconds {
        body.insert("seconds".into(), json!(s));
    }
    let path = format!("/api/operate/namespaces/{ns}/sites/{site}/ver/matching_flows");
    let ask = |extra: Option<(&str, u16)>| -> Result<Vec<Value>, ClientError> {
        let mut b = body.clone();
        if let Some((k, v)) = extra {
            b.insert(k.into(), json!(v));
        }
        let r = client.post_json(&path, "application/json", &[], &Value::Object(b))?;
        if r.status != 200 {
            return Err(api_error(&client, "matching_flows", r.status, &r.body));
        }
        let v: Value = serde_json::from_str(&r.body)
            .map_err(|e| ClientError(format!("matching_flows: the answer is not JSON: {e}")))?;
        Ok(v.get("flow")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    };
    let records = match a.port {
        // The API ANDs its fields; "either port" is two questions.
        Some(p) if p != 0 => either_port(
            ask(Some(("src_port", p)))?,
            ask(Some(("dest_port", p)))?,
            1024,
        ),
        _ => ask(None)?,
    };
    if a.json {
        return Ok(pretty(&json!({ "flow": records })));
    }
    Ok(flows_table(&records))
}

/// The union of two newest-first record lists, newest first.
///
/// Every flow with port N on either side has one record in each list (the
/// direction with N as source, and the one with N as destination), so both
/// lists hold the same flows in the same order: walk them together and
/// emit each flow's records forward first.
pub fn either_port(a: Vec<Value>, b: Vec<Value>, max: usize) -> Vec<Value> {
    let index = |r: &Value| r.get("flow_index").and_then(Value::as_u64).unwrap_or(0);
    let mut order: Vec<u64> = Vec::new();
    let mut by_flow: HashMap<u64, BTreeMap<u64, Value>> = HashMap::new();
    let (mut ia, mut ib) = (a.into_iter(), b.into_iter());
    loop {
        let (x, y) = (ia.next(), ib.next());
        if x.is_none() && y.is_none() {
            break;
        }
        for r in [x, y].into_iter().flatten() {
            let i = index(&r);
            let recs = by_flow.entry(i / 2).or_insert_with(|| {
                order.push(i / 2);
                BTreeMap::new()
            });
            recs.insert(i, r);
        }
    }
    order
        .into_iter()
        .flat_map(|f| by_flow.remove(&f).unwrap_or_default().into_values())
        .take(max)
        .collect()
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("serialisable");
    s.push('\n');
    s
}

/// The line for a 4xx/5xx answer: the API's own message when it sent one.
fn api_error(client: &Client, what: &str, status: u16, body: &str) -> ClientError {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let msg = v
        .get("message")
        .or_else(|| v.get("Message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.trim().lines().next().unwrap_or("").to_string());
    let kind = v
        .get("__type")
        .and_then(Value::as_str)
        .map(|t| format!("{}: ", t.rsplit('#').next().unwrap_or(t)))
        .unwrap_or_default();
    ClientError(format!(
        "{what}: {kind}{msg} (HTTP {status} from {})",
        client.base()
    ))
}

/// Aligned columns; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let n = cells.len();
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i + 1 == n {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// A protocol number's usual name.
pub fn proto_name(p: u64) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

/// TCP flags as letters (tcpdump's: S SYN, A ACK, F FIN, R RST, P PSH,
/// U URG, E ECE, C CWR); "-" for none.
pub fn tcp_flags(bits: u64) -> String {
    let s: String = [
        (0x02, 'S'),
        (0x10, 'A'),
        (0x08, 'P'),
        (0x01, 'F'),
        (0x04, 'R'),
        (0x20, 'U'),
        (0x40, 'E'),
        (0x80, 'C'),
    ]
    .iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, c)| *c)
    .collect();
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

/// The records as a `flow -l`-like table: one line per direction.
pub fn flows_table(records: &[Value]) -> String {
    let u = |v: &Value, k: &str| -> u64 {
        match v.get(k) {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            _ => 0,
        }
    };
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let f = r.get("forward_flow").cloned().unwrap_or(Value::Null);
            let dir = if u(r, "flow_index") % 2 == 0 {
                "fwd"
            } else {
                "rev"
            };
            let proto = u(&f, "proto");
            vec![
                u(r, "flow_index").to_string(),
                u(r, "reverse_flow_index").to_string(),
                dir.to_string(),
                proto_name(proto),
                s(&f, "src"),
                u(&f, "src_port").to_string(),
                s(&f, "dest"),
                u(&f, "dest_port").to_string(),
                u(&f, "intf_id").to_string(),
                u(&f, "vrf_id").to_string(),
                s(r, "action"),
                u(r, "ace_id").to_string(),
                u(r, "pkt_count").to_string(),
                u(r, "byte_count").to_string(),
                if proto == 6 {
                    tcp_flags(u(r, "flags"))
                } else {
                    "-".into()
                },
                s(r, "drop_reason"),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "INDEX",
            "REVERSE",
            "DIR",
            "PROTO",
            "SOURCE",
            "SPORT",
            "DESTINATION",
            "DPORT",
            "INTF",
            "VLAN",
            "ACTION",
            "RULE",
            "PACKETS",
            "BYTES",
            "TCP",
            "DROP",
        ],
        &rows,
    );
    out.push_str(&format!("{} record(s)\n", records.len()));
    out
}

/// One sample of the exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (with its `_total` suffix, as exposed).
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// The samples of a Prometheus / OpenMetrics text exposition.
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .ok_or_else(|| bad("no value"))?;
        let name = line[..name_end].to_string();
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices();
            let mut key = String::new();
            let end;
            loop {
                let Some((i, c)) = chars.next() else {
                    return Err(bad("unterminated labels"));
                };
                match c {
                    '}' => {
                        end = i + 1;
                        break;
                    }
                    ',' | ' ' => {}
                    '=' => {
                        if chars.next().map(|x| x.1) != Some('"') {
                            return Err(bad("label value not quoted"));
                        }
                        let mut val = String::new();
                        loop {
                            match chars.next() {
                                None => return Err(bad("unterminated label value")),
                                Some((_, '"')) => break,
                                Some((_, '\\')) => match chars.next().map(|x| x.1) {
                                    Some('n') => val.push('\n'),
                                    Some(c) => val.push(c),
                                    None => return Err(bad("unterminated escape")),
                                },
                                Some((_, c)) => val.push(c),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), val);
                    }
                    c => key.push(c),
                }
            }
            rest = &r[end..];
        }
        let value = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| bad("no value"))?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse::<f64>().map_err(|_| bad("value is not a number"))?,
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    Ok(out)
}

/// `flowgate stats`.
pub fn stats(a: &StatsArgs) -> Result<String, ClientError> {
    let (client, _) = connect(&a.target)?;
    let r = client.get("/metrics")?;
    if r.status != 200 {
        return Err(api_error(&client, "metrics", r.status, &r.body));
    }
    let samples = parse_exposition(&r.body)
        .map_err(|e| ClientError(format!("metrics: the exposition does not parse: {e}")))?;
    let view = StatsView::of(&samples);
    if a.json {
        return Ok(pretty(&view.json()));
    }
    Ok(view.tables())
}

/// Samples grouped by port and by worker.
#[derive(Debug, Default)]
pub struct StatsView {
    /// Port name → metric (without prefix and suffix) → value.
    pub ports: BTreeMap<String, BTreeMap<String, f64>>,
    /// Worker → metric → value.
    pub workers: BTreeMap<u64, BTreeMap<String, f64>>,
    /// "face operation status" → requests.
    pub requests: BTreeMap<String, f64>,
}

impl StatsView {
    /// Groups samples.
    pub fn of(samples: &[Sample]) -> StatsView {
        let mut v = StatsView::default();
        for s in samples {
            let name = s.name.trim_start_matches("flowgate_");
            let name = name.strip_suffix("_total").unwrap_or(name);
            if let (Some(p), Some(m)) = (s.labels.get("port"), name.strip_prefix("port_")) {
                v.ports
                    .entry(p.clone())
                    .or_default()
                    .insert(m.to_string(), s.value);
            } else if let (Some(w), Some(m)) = (
                s.labels.get("worker").and_then(|w| w.parse::<u64>().ok()),
                name.strip_prefix("worker_"),
            ) {
                let m = match (s.labels.get("reason"), s.labels.get("verdict")) {
                    (Some(r), _) => format!("{m}:{r}"),
                    (_, Some(x)) => format!("{m}:{x}"),
                    _ => m.to_string(),
                };
                *v.workers.entry(w).or_default().entry(m).or_insert(0.0) += s.value;
            } else if name == "api_requests" {
                let l = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
                v.requests.insert(
                    format!("{} {} {}", l("face"), l("operation"), l("status")),
                    s.value,
                );
            }
        }
        v
    }

    fn total(m: &BTreeMap<String, f64>, prefix: &str) -> f64 {
        m.iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    }

    /// JSON: ports and workers by name, metric names as in /metrics.
    pub fn json(&self) -> Value {
        json!({
            "ports": self.ports,
            "workers": self.workers.iter().map(|(w, m)| (w.to_string(), m)).collect::<BTreeMap<_, _>>(),
            "api_requests": self.requests,
        })
    }

    /// The aligned tables.
    pub fn tables(&self) -> String {
        let n = |m: &BTreeMap<String, f64>, k: &str| -> String {
            m.get(k).map_or("-".into(), |v| format!("{}", *v as u64))
        };
        let ports: Vec<Vec<String>> = self
            .ports
            .iter()
            .map(|(p, m)| {
                vec![
                    p.clone(),
                    match m.get("up") {
                        Some(v) if *v > 0.0 => "up".into(),
                        Some(_) => "down".into(),
                        None => "-".into(),
                    },
                    n(m, "rx_packets"),
                    n(m, "rx_bytes"),
                    n(m, "rx_dropped"),
                    n(m, "rx_errors"),
                    n(m, "tx_packets"),
                    n(m, "tx_bytes"),
                    n(m, "tx_dropped"),
                ]
            })
            .collect();
        let mut out = table(
            &[
                "PORT",
                "LINK",
                "RX-PACKETS",
                "RX-BYTES",
                "RX-DROPPED",
                "RX-ERRORS",
                "TX-PACKETS",
                "TX-BYTES",
                "TX-DROPPED",
            ],
            &ports,
        );
        out.push('\n');
        let workers: Vec<Vec<String>> = self
            .workers
            .iter()
            .map(|(w, m)| {
                if m.get("up") == Some(&0.0) {
                    let mut r = vec![w.to_string(), "no answer".into()];
                    r.resize(15, "-".into());
                    return r;
                }
                vec![
                    w.to_string(),
                    m.get("busy_ratio")
                        .map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
                    n(m, "rx_packets"),
                    n(m, "tx_packets"),
                    n(m, "tx_dropped"),
                    n(m, "flows_active"),
                    n(m, "flows_created"),
                    n(m, "flows_expired"),
                    n(m, "flows_evicted"),
                    n(m, "flows_flushed"),
                    n(m, "midstream_packets"),
                    format!("{}", Self::total(m, "malformed_packets:") as u64),
                    n(m, "not_ip_packets"),
                    n(m, "table_full_drops"),
                    format!(
                        "{}/{}/{}",
                        n(m, "policy_verdicts:pass"),
                        n(m, "policy_verdicts:drop"),
                        n(m, "policy_verdicts:reject")
                    ),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "WORKER",
                "BUSY",
                "RX-PACKETS",
                "TX-PACKETS",
                "TX-DROPPED",
                "FLOWS",
                "CREATED",
                "EXPIRED",
                "EVICTED",
                "FLUSHED",
                "MIDSTREAM",
                "MALFORMED",
                "NOT-IP",
                "TABLE-FULL",
                "PASS/DROP/REJECT",
            ],
            &workers,
        ));
        out
    }
}

/// `flowgate ops`: ListFlowOperations on the Network Firewall face, every page.
pub fn ops(a: &OpsArgs) -> Result<String, ClientError> {
    let (client, config) = connect(&a.target)?;
    let arn = a
        .firewall_arn
        .clone()
        .or_else(|| config.find("firewall_arn").map(str::to_string))
        .ok_or_else(|| {
            ClientError(
                "ops: which firewall? pass --firewall-arn ARN (or set firewall_arn in the config)"
                    .into(),
            )
        })?;
    let mut all: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    // Bounded: a server that keeps returning tokens must not loop us forever.
    for _ in 0..10_000 {
        let mut body = json!({ "FirewallArn": arn });
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        if let Some(t) = &a.r#type {
            body["FlowOperationType"] = json!(t);
        }
        let r = client.post_json(
            "/",
            "application/x-amz-json-1.0",
            &[(
                "x-amz-target",
                "NetworkFirewall_20201112.ListFlowOperations",
            )],
            &body,
        )?;
        if r.status == 404 && !r.body.trim_start().starts_with('{') {
            return Err(ClientError(format!(
                "ops: the appliance at {} has no Network Firewall API (HTTP 404)",
                client.base()
            )));
        }
        if r.status != 200 {
            return Err(api_error(&client, "ListFlowOperations", r.status, &r.body));
        }
        let v: Value = serde_json::from_str(&r.body)
            .map_err(|e| ClientError(format!("ListFlowOperations: the answer is not JSON: {e}")))?;
        if let Some(ops) = v.get("FlowOperations").and_then(Value::as_array) {
            all.extend(ops.iter().cloned());
        }
        token = v
            .get("NextToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    if a.json {
        return Ok(pretty(&json!({ "FlowOperations": all })));
    }
    Ok(ops_table(&all))
}

/// Operations as a table.
pub fn ops_table(ops: &[Value]) -> String {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
    let rows: Vec<Vec<String>> = ops
        .iter()
        .map(|o| {
            vec![
                s(o, "FlowOperationId"),
                s(o, "FlowOperationType"),
                s(o, "FlowOperationStatus"),
                match o.get("FlowRequestTimestamp") {
                    Some(Value::Number(n)) => n.as_f64().map_or("-".into(), rfc3339),
                    Some(Value::String(t)) => t.clone(),
                    _ => "-".into(),
                },
            ]
        })
        .collect();
    let mut out = table(&["OPERATION", "TYPE", "STATUS", "REQUESTED"], &rows);
    out.push_str(&format!("{} operation(s)\n", ops.len()));
    out
}

/// Epoch seconds as a UTC RFC 3339 time.
pub fn rfc3339(epoch: f64) -> String {
    let secs = epoch.floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["A", "BB", "C"],
            &[
                vec!["xxx".into(), "y".into(), "z".into()],
                vec!["1".into(), "2".into(), "3".into()],
            ],
        );
        assert_eq!(t, "A    BB  C\nxxx  y   z\n1    2   3\n");
    }

    fn rec(index: u64, src: &str, sport: u64, flags: &str) -> Value {
        json!({
            "flow_index": index, "reverse_flow_index": index ^ 1, "action": "FORWARD", "ace_id": 1,
            "pkt_count": "3", "byte_count": "180", "flags": flags, "drop_reason": "NONE",
            "forward_flow": {"src": src, "src_port": sport, "dest": "192.0.2.1", "dest_port": 80,
                             "proto": 6, "intf_id": 0, "vrf_id": 0}
        })
    }

    #[test]
    fn flows_table_has_one_line_per_record() {
        let t = flows_table(&[
            rec(4, "10.0.0.1", 40000, "19"),
            rec(5, "2001:db8::1", 80, "0"),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[0].starts_with("INDEX  REVERSE  DIR  PROTO  SOURCE"));
        assert!(lines[1].contains("fwd") && lines[1].contains("SAF"), "{t}");
        assert!(
            lines[2].contains("rev") && lines[2].contains("2001:db8::1"),
            "{t}"
        );
        assert_eq!(lines[3], "2 record(s)");
        // Columns line up: DIR starts at the same offset on every line.
        let col = lines[0].find("DIR").unwrap();
        assert_eq!(&lines[1][col..col + 3], "fwd");
        assert_eq!(&lines[2][col..col + 3], "rev");
    }

    #[test]
    fn either_port_merges_both_lists_newest_first() {
        // Flows 3 (newest), 1 and 0: A has the direction from port N, B
        // the one to it.
        let a = vec![
            rec(7, "x", 0, "0"),
            rec(2, "x", 0, "0"),
            rec(1, "x", 0, "0"),
        ];
        let b = vec![
            rec(6, "x", 0, "0"),
            rec(3, "x", 0, "0"),
            rec(0, "x", 0, "0"),
        ];
        let m = either_port(a, b, 1024);
        let idx: Vec<u64> = m
            .iter()
            .map(|r| r["flow_index"].as_u64().unwrap())
            .collect();
        assert_eq!(idx, vec![6, 7, 2, 3, 0, 1]);
        assert_eq!(either_port(vec![], vec![], 10).len(), 0);
        let capped = either_port(vec![rec(1, "x", 0, "0")], vec![rec(0, "x", 0, "0")], 1);
        assert_eq!(capped[0]["flow_index"], 0);
    }

    #[test]
    fn exposition_parses() {
        let text = "# HELP a_total x.\n# TYPE a counter\na_total{port=\"in\\\"side\",x=\"1\"} 91\nb 0.25\n# EOF\n";
        let s = parse_exposition(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "a_total");
        assert_eq!(s[0].labels["port"], "in\"side");
        assert_eq!(s[0].value, 91.0);
        assert_eq!(s[1].value, 0.25);
        assert!(parse_exposition("a{x=1} 2\n").is_err());
        assert!(parse_exposition("a{x=\"1\"} zz\n").is_err());
    }

    #[test]
    fn stats_view_from_real_rendering() {
        use crate::api::metrics::{render, PortSample, Snapshot};
        let snap = Snapshot {
            ports: vec![PortSample {
                name: "inside".into(),
                stats: flowgate_sys::PortStats {
                    ipackets: 91,
                    ..Default::default()
                },
                up: true,
            }],
            workers: vec![
                Some(flowgate_dataplane::stats::WorkerCounters {
                    rx_packets: 91,
                    flows_created: 14,
                    policy_pass: 14,
                    loops: 4,
                    busy_loops: 1,
                    ..Default::default()
                }),
                None,
            ],
            requests: vec![],
            operations: vec![],
            jobs: 0,
            ..Snapshot::default()
        };
        let v = StatsView::of(&parse_exposition(&render(&snap)).unwrap());
        assert_eq!(v.ports["inside"]["rx_packets"], 91.0);
        assert_eq!(v.workers[&0]["flows_created"], 14.0);
        let t = v.tables();
        assert!(t.contains("inside  up"), "{t}");
        assert!(t.contains("25.0%"), "{t}");
        assert!(t.contains("14/0/0"), "{t}");
        assert!(t.contains("no answer"), "{t}");
        assert_eq!(v.json()["workers"]["0"]["rx_packets"], 91.0);
    }

    #[test]
    fn ops_table_and_times() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000.5), "2023-11-14T22:13:20Z");
        let t = ops_table(&[json!({
            "FlowOperationId": "0b5d7b1a-0000-4000-8000-000000000001",
            "FlowOperationType": "FLOW_FLUSH",
            "FlowOperationStatus": "COMPLETED",
            "FlowRequestTimestamp": 1_700_000_000
        })]);
        assert!(
            t.contains("FLOW_FLUSH  COMPLETED  2023-11-14T22:13:20Z"),
            "{t}"
        );
        assert!(t.ends_with("1 operation(s)\n"));
    }

    #[test]
    fn flags_as_letters() {
        assert_eq!(tcp_flags(0x12), "SA");
        assert_eq!(tcp_flags(0), "-");
        assert_eq!(tcp_flags(0x1f), "SAPFR");
    }
}
