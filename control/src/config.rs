//! The operator's TOML file: its schema, defaults and validation.
//!
//! Every problem is reported as one line naming the file, the key and what
//! is wrong (`config/x.toml: dataplane.worker_cpus[1]: CPU 9 is not
//! available on this machine (available: 0-1)`), and `flowgate` exits with
//! status 2. Unknown keys are rejected so typos do not silently fall back
//! to defaults.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A configuration problem: file, key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {problem}")]
pub struct ConfigError {
    /// The config file.
    pub file: String,
    /// Dotted path of the offending key (or `line:column` for syntax errors).
    pub key: String,
    /// What is wrong, in one line.
    pub problem: String,
}

/// The whole file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// DPDK environment (EAL) settings.
    #[serde(default)]
    pub eal: EalConfig,
    /// Workers, buffers, forwarding.
    #[serde(default)]
    pub dataplane: DataplaneConfig,
    /// The ports, by DPDK device name.
    pub ports: Vec<PortConfig>,
    /// Flow tracking.
    #[serde(default)]
    pub flows: FlowsConfig,
    /// The policy deciding each new flow's verdict.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// The HTTP control API.
    #[serde(default)]
    pub api: ApiConfig,
    /// The F5 Distributed Cloud "matching flows" face.
    #[serde(default)]
    pub f5: F5Config,
    /// Flow operations: the AWS Network Firewall face.
    #[serde(default)]
    pub operations: OperationsConfig,
    /// Who may use the API.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Traffic mirroring: the EC2 face.
    #[serde(default)]
    pub mirror: MirrorSection,
}

/// `[mirror]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MirrorSection {
    /// The account id shown as OwnerId.
    pub owner_id: String,
    /// Where targets, filters, rules and sessions are kept.
    pub state_file: PathBuf,
    /// Outer source IPv4 address of mirrored copies.
    pub tunnel_source_ip: std::net::Ipv4Addr,
    /// Outer destination IPv4 address (the collector, VXLAN endpoint).
    pub tunnel_destination_ip: std::net::Ipv4Addr,
    /// Outer destination MAC (the next hop towards the collector).
    pub next_hop_mac: String,
    /// Most targets.
    pub max_targets: usize,
    /// Most filters.
    pub max_filters: usize,
    /// Most rules per filter and direction.
    pub max_rules_per_filter: usize,
    /// Most sessions (at most 254, the data plane's table).
    pub max_sessions: usize,
}

impl Default for MirrorSection {
    fn default() -> Self {
        Self {
            owner_id: "123456789012".into(),
            state_file: PathBuf::from("state/mirror.json"),
            tunnel_source_ip: std::net::Ipv4Addr::new(192, 0, 2, 1),
            tunnel_destination_ip: std::net::Ipv4Addr::new(192, 0, 2, 2),
            next_hop_mac: "02:00:00:00:00:02".into(),
            max_targets: 16,
            max_filters: 64,
            max_rules_per_filter: 10,
            max_sessions: 64,
        }
    }
}

/// A MAC address written `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        m[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

/// Whether EAL runs on huge pages.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum HugepageMode {
    /// Use huge pages when some are reserved and mounted, else `--no-huge`.
    #[default]
    Auto,
    /// Require huge pages.
    On,
    /// Never use them (`--no-huge`).
    Off,
}

/// `[eal]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EalConfig {
    /// Names this instance's runtime files (`/var/run/dpdk/<prefix>/`).
    pub file_prefix: String,
    /// Huge pages: auto, on or off.
    pub hugepages: HugepageMode,
    /// Memory for EAL, in MiB, when running without huge pages.
    pub memory_mb: u32,
    /// DPDK log level (emergency..debug, or 1..8).
    pub log_level: String,
    /// Further EAL arguments, passed as they are.
    pub extra_args: Vec<String>,
}

impl Default for EalConfig {
    fn default() -> Self {
        Self {
            file_prefix: "flowgate".into(),
            hugepages: HugepageMode::Auto,
            memory_mb: 1024,
            log_level: "notice".into(),
            extra_args: Vec::new(),
        }
    }
}

/// What workers do with packets.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Forward every packet to the paired port, untouched and unexamined.
    Forward,
    /// Track every flow, apply the policy, then forward.
    #[default]
    Track,
}

/// `[dataplane]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataplaneConfig {
    /// CPU of the control thread and EAL's main lcore.
    pub main_cpu: usize,
    /// One worker per entry, on that CPU (repeat a CPU only for tests).
    pub worker_cpus: Vec<usize>,
    /// What workers do with packets.
    pub mode: Mode,
    /// Port pairs: what enters one port leaves by the other, both ways.
    pub pairs: Vec<[String; 2]>,
    /// Packet buffers in the pool.
    pub mbufs: u32,
    /// Per-lcore mempool cache.
    pub mbuf_cache: u32,
    /// Bytes per packet buffer, headroom (128) included.
    pub mbuf_data_room: u16,
    /// Rx descriptors per queue.
    pub rx_desc: u16,
    /// Tx descriptors per queue.
    pub tx_desc: u16,
    /// Seconds between periodic statistics lines (0: none).
    pub stats_period: u64,
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        Self {
            main_cpu: 0,
            worker_cpus: vec![1],
            mode: Mode::Track,
            pairs: Vec::new(),
            mbufs: 32767,
            mbuf_cache: 256,
            mbuf_data_room: 2048 + 128,
            rx_desc: 1024,
            tx_desc: 1024,
            stats_period: 5,
        }
    }
}

/// `[flows]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FlowsConfig {
    /// Flows each worker can track.
    pub capacity: u32,
    /// When the table is full: "drop-new" or "evict-oldest".
    pub when_full: WhenFull,
    /// Malformed frames: "drop" or "pass" (untracked).
    pub malformed: OnMalformed,
    /// Whether an IPv4 header whose checksum does not verify is malformed.
    pub verify_ipv4_checksum: bool,
    /// TCP without SYN of an unknown flow: "drop", "continue" or "reject".
    pub stream_exception: OnMidstream,
    /// Datagrams whose first fragment's ports are remembered.
    pub fragment_map: u32,
    /// Seconds a first fragment's ports are remembered.
    pub fragment_timeout: u32,
    /// Milliseconds for the expiry sweep to pass once over every entry that
    /// has held a flow.
    pub sweep_period_ms: u32,
    /// Idle timeouts in seconds.
    pub timeouts: TimeoutsConfig,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig {
            capacity: 1 << 20,
            when_full: WhenFull::DropNew,
            malformed: OnMalformed::Drop,
            verify_ipv4_checksum: true,
            stream_exception: OnMidstream::Continue,
            fragment_map: 4096,
            fragment_timeout: 30,
            sweep_period_ms: 1000,
            timeouts: TimeoutsConfig::default(),
        }
    }
}

/// `[flows] when_full`
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum WhenFull {
    /// Refuse (and drop the packets of) new flows.
    DropNew,
    /// Evict the least recently seen neighbour.
    EvictOldest,
}

/// `[flows] malformed`
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnMalformed {
    /// Count and drop.
    Drop,
    /// Count and forward untracked.
    Pass,
}

/// `[flows] stream_exception`
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnMidstream {
    /// Drop.
    Drop,
    /// Track as an established flow.
    Continue,
    /// Drop and answer with a TCP RST.
    Reject,
}

/// `[flows.timeouts]`, seconds.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    /// TCP in SYN_SENT / SYN_RECV.
    pub tcp_handshake: u32,
    /// TCP established.
    pub tcp_established: u32,
    /// TCP in FIN_WAIT / CLOSE_WAIT / TIME_WAIT.
    pub tcp_closing: u32,
    /// TCP after RST.
    pub tcp_closed: u32,
    /// UDP.
    pub udp: u32,
    /// ICMP / ICMPv6.
    pub icmp: u32,
    /// Other protocols.
    pub other: u32,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        let d = flowgate_dataplane::flow::TimeoutSecs::default();
        TimeoutsConfig {
            tcp_handshake: d.tcp_handshake,
            tcp_established: d.tcp_established,
            tcp_closing: d.tcp_closing,
            tcp_closed: d.tcp_closed,
            udp: d.udp,
            icmp: d.icmp,
            other: d.other,
        }
    }
}

/// `[policy]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Verdict when no rule matches: "pass", "drop" or "reject".
    pub default_action: PolicyAction,
    /// The rules, evaluated by ascending priority (then file order).
    pub rules: Vec<PolicyRule>,
    /// Answers (RSTs, ICMP unreachables) to rejected packets each worker
    /// sends a second, at most (0: no limit).
    pub reject_rate: u32,
    /// Answers that may go at once, above the rate.
    pub reject_burst: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            default_action: PolicyAction::Pass,
            rules: Vec::new(),
            reject_rate: 1000,
            reject_burst: 50,
        }
    }
}

/// A rule's action.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PolicyAction {
    /// Forward.
    Pass,
    /// Drop silently.
    Drop,
    /// Drop and answer (TCP RST, else ICMP port unreachable).
    Reject,
}

/// `[[policy.rules]]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// Rule id, reported with the flows it decides (non-zero; 0 is the default).
    pub id: u32,
    /// Rule group id.
    #[serde(default)]
    pub group: u16,
    /// Lower is evaluated first.
    #[serde(default)]
    pub priority: u32,
    /// pass, drop or reject.
    pub action: PolicyAction,
    /// Source address or CIDR ("any" or absent: every address).
    #[serde(default)]
    pub src: Option<String>,
    /// Destination address or CIDR.
    #[serde(default)]
    pub dst: Option<String>,
    /// Source ports: "80", "1000-2000" or "any".
    #[serde(default)]
    pub src_ports: Option<String>,
    /// Destination ports.
    #[serde(default)]
    pub dst_ports: Option<String>,
    /// Protocols by name (tcp, udp, icmp, icmpv6, sctp) or number; empty: all.
    #[serde(default)]
    pub protocols: Vec<ProtoName>,
}

/// A protocol given by name or number.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ProtoName {
    /// IANA number.
    Number(u8),
    /// Name.
    Name(String),
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Check SigV4 on the AWS faces and the API token on the F5 face.
    /// Only an explicit `false` turns it off (flowgate then warns at start).
    pub enabled: bool,
    /// Where credentials are generated at first start when no key or token
    /// is configured (AWS shared-credentials format, profile `flowgate`, 0600).
    pub credentials_file: Option<String>,
    /// Access keys for the AWS faces.
    pub keys: Vec<AuthKey>,
    /// API tokens for the F5 face.
    pub f5_tokens: Vec<ApiToken>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: true,
            credentials_file: Some("state/credentials".into()),
            keys: Vec::new(),
            f5_tokens: Vec::new(),
        }
    }
}

/// `[[auth.keys]]`: an access key id and its secret, given inline, in a
/// file, or in an environment variable (exactly one).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthKey {
    /// The access key id.
    pub id: String,
    /// The secret access key.
    pub secret: Option<String>,
    /// A file holding it.
    pub secret_file: Option<String>,
    /// An environment variable holding it.
    pub secret_env: Option<String>,
}

/// `[[auth.f5_tokens]]`: an API token, inline, in a file or in an
/// environment variable (exactly one).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// The token.
    pub token: Option<String>,
    /// A file holding it.
    pub token_file: Option<String>,
    /// An environment variable holding it.
    pub token_env: Option<String>,
}

/// `[[ports]]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Our name for the port (used by pairs and the API).
    pub name: String,
    /// DPDK device: a PCI address or a vdev with its arguments.
    pub device: String,
    /// Interface id the mirror API knows the port by (`eni-...`).
    #[serde(default)]
    pub interface_id: Option<String>,
    /// MTU to set on the device (default: the device's own, 1500 on
    /// Ethernet). Frames larger than an mbuf's room arrive and leave as
    /// chains of mbufs.
    #[serde(default)]
    pub mtu: Option<u16>,
}

impl PortConfig {
    /// The interface id the mirroring API knows the port by: the configured
    /// one, or one derived from the port's name (stable across restarts).
    pub fn eni(&self) -> String {
        self.interface_id.clone().unwrap_or_else(|| {
            // FNV-1a over the name: stable, and distinct for distinct names
            // in practice (names are few).
            let h = self.name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
            format!("eni-{h:017x}")
        })
    }
}

/// `[api]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Milliseconds a client may take to send a request's headers.
    pub header_read_timeout_ms: u64,
    /// Milliseconds a client may take to send a request's body once its
    /// headers are in; slower ones get 408 and the connection is closed.
    pub body_read_timeout_ms: u64,
    /// Milliseconds an answer may wait for a client that does not read it;
    /// past that the connection is closed.
    pub write_timeout_ms: u64,
    /// Open connections served normally; requests on connections beyond
    /// get the protocol's throttling error and the connection is closed.
    pub max_connections: usize,
    /// Requests one client address may have in progress at once; more get
    /// the protocol's throttling error.
    pub max_inflight_per_client: usize,
    /// Connections one client address may have open at once; requests on
    /// more are answered as past `max_connections`.
    pub max_connections_per_client: usize,
    /// Serve `POST /debug/stall-worker` and `POST /debug/release-workers`
    /// (fault injection for tests: stall a worker, end every stall). Never
    /// turn it on in production.
    pub debug_endpoints: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1 << 20,
            header_read_timeout_ms: 5000,
            body_read_timeout_ms: 10_000,
            write_timeout_ms: 10_000,
            max_connections: 256,
            max_inflight_per_client: 32,
            max_connections_per_client: 64,
            debug_endpoints: false,
        }
    }
}

/// `[f5]`: who the appliance is to the F5 Distributed Cloud VER API.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct F5Config {
    /// The namespace in the request path (F5 uses "system" for sites).
    pub namespace: String,
    /// The site name in the request path.
    pub site: String,
    /// The node name a request's `node` field may name.
    pub node: String,
    /// Milliseconds a request waits for the workers; the answer then holds
    /// what arrived, flagged partial.
    pub deadline_ms: u64,
    /// Most flow records in one answer (the F5 API's own limit is 1024).
    pub max_flows: usize,
    /// Percent (1-100) of a saturated worker's time a query may take: an
    /// interactive query gets more than a background operation.
    pub busy_share_percent: u32,
}

impl Default for F5Config {
    fn default() -> Self {
        F5Config {
            namespace: "system".into(),
            site: "flowgate".into(),
            node: "flowgate-0".into(),
            deadline_ms: 1000,
            max_flows: 1024,
            busy_share_percent: 50,
        }
    }
}

/// The longest `[f5] deadline_ms` (a request must not hold a client for long).
pub const F5_MAX_DEADLINE_MS: u64 = 60_000;

/// `[operations]`: who the appliance claims to be on the Network Firewall
/// face, and the limits of the operation store.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OperationsConfig {
    /// The firewall ARN requests must name (any other: ResourceNotFoundException).
    pub firewall_arn: String,
    /// The Availability Zone a request may scope to (`AvailabilityZone`).
    pub availability_zone: String,
    /// The Availability Zone id a request may scope to (`AvailabilityZoneId`).
    pub availability_zone_id: String,
    /// The firewall endpoint id a request may scope to (`VpcEndpointId`).
    pub vpc_endpoint_id: String,
    /// The VPC endpoint association a request may scope to; none: requests
    /// naming one are refused.
    pub vpc_endpoint_association_arn: Option<String>,
    /// Operations running at once; one more gets ThrottlingException.
    pub max_in_progress: usize,
    /// Most flows one operation reports; beyond it the operation ends
    /// COMPLETED_WITH_ERRORS.
    pub result_cap: u64,
    /// Seconds a finished operation (and its results) is kept.
    pub retention_seconds: u64,
    /// Finished operations kept at most; the oldest is forgotten first.
    pub retention_count: usize,
    /// Flows finished operations keep at most, all together; beyond it
    /// the oldest finished operation is forgotten (whole). Unset:
    /// [`DEFAULT_RESULT_BUDGET`], or `result_cap` when larger.
    pub result_budget: Option<u64>,
    /// How long every worker has to finish its part; a late worker makes
    /// the operation FAILED ("Flow timeout").
    pub worker_timeout_ms: u64,
    /// Percent (1-100) of a saturated worker's time an operation may take
    /// from forwarding; idle time it uses freely. Lower: a smaller dip,
    /// a longer operation.
    pub busy_share_percent: u32,
}

impl Default for OperationsConfig {
    fn default() -> Self {
        Self {
            firewall_arn: "arn:aws:network-firewall:us-east-1:123456789012:firewall/flowgate"
                .into(),
            availability_zone: "us-east-1a".into(),
            availability_zone_id: "use1-az1".into(),
            vpc_endpoint_id: "vpce-0f10a7e0000000001".into(),
            vpc_endpoint_association_arn: None,
            max_in_progress: 4,
            result_cap: 10_000,
            retention_seconds: 3600,
            retention_count: 100,
            result_budget: None,
            worker_timeout_ms: 5000,
            busy_share_percent: 3,
        }
    }
}

/// `[operations] result_budget` when unset: what the default `result_cap`
/// and `retention_count` could hold (76 MiB of results), so that the
/// defaults forget nothing they did not before.
pub const DEFAULT_RESULT_BUDGET: u64 = 1_000_000;

/// Bytes control holds per flow an operation reports.
pub const RESULT_FLOW_BYTES: u64 = std::mem::size_of::<flowgate_dataplane::job::TakenFlow>() as u64;

impl OperationsConfig {
    /// The result budget in force: the key, or its default.
    pub fn result_budget(&self) -> u64 {
        self.result_budget
            .unwrap_or(DEFAULT_RESULT_BUDGET.max(self.result_cap))
    }
}

/// Whether `s` fits the model's `ResourceArn`: 1 to 256 characters, `^arn:aws.*`
/// (`.` excludes line breaks).
pub fn is_resource_arn(s: &str) -> bool {
    (1..=256).contains(&s.chars().count()) && s.starts_with("arn:aws") && !s.contains(['\n', '\r'])
}

/// Whether `s` fits the model's `VpcEndpointId`: 5 to 256 characters,
/// `^vpce-[a-zA-Z0-9]*$`.
pub fn is_vpc_endpoint_id(s: &str) -> bool {
    (5..=256).contains(&s.len())
        && s.strip_prefix("vpce-")
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// A loaded, validated configuration and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file.
    pub path: PathBuf,
    /// Its contents.
    pub config: Config,
}

impl Loaded {
    /// A problem with `key` of this file.
    pub fn error(&self, key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.path.display().to_string(),
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// Reads, parses and validates a config file for running it here: the file
/// itself ([`validate`]) and this machine's fit for it ([`check_machine`]).
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let loaded = load_file(path)?;
    check_machine(&loaded, &available_cpus())?;
    check_memory(&loaded, available_memory())?;
    Ok(loaded)
}

/// Whether the workers' flow tables, and besides them the flow operations'
/// results, fit in `available` bytes (`None`: not known, not checked).
/// Table memory is taken, and first touched, by each worker as it starts;
/// results are taken by control as operations run: the kernel grants the
/// mappings and then kills the process with no word once they do not fit.
pub fn check_memory(l: &Loaded, available: Option<u64>) -> Result<(), ConfigError> {
    let c = &l.config;
    let Some(available) = available else {
        return Ok(());
    };
    if c.dataplane.mode != Mode::Track {
        return Ok(());
    }
    // Each refusal says what takes the memory, then what the machine has.
    let short = |key: &str, what: String| {
        Err(l.error(
            key,
            format!("{what}; this machine has {} MiB available", available >> 20),
        ))
    };
    let workers = c.dataplane.worker_cpus.len() as u64;
    let need = flowgate_dataplane::flow::FlowTable::footprint(c.flows.capacity) as u64 * workers;
    if need > available {
        return short(
            "flows.capacity",
            format!(
                "{} flows per worker take {} MiB of flow tables for {workers} worker(s)",
                c.flows.capacity,
                need >> 20
            ),
        );
    }
    // Control keeps at most result_cap flows of one operation, whatever
    // the number of workers (see dispatch::FlowSegments).
    let o = &c.operations;
    let one = o.result_cap.saturating_mul(RESULT_FLOW_BYTES);
    if need.saturating_add(one) > available {
        return short(
            "operations.result_cap",
            format!(
                "one operation's {} flows take {} MiB besides {} MiB of flow tables",
                o.result_cap,
                one >> 20,
                need >> 20
            ),
        );
    }
    let budget = o.result_budget();
    let running = o.result_cap.saturating_mul(o.max_in_progress as u64);
    let all = budget
        .saturating_add(running)
        .saturating_mul(RESULT_FLOW_BYTES);
    if need.saturating_add(all) > available {
        return short(
            "operations.result_budget",
            format!(
                "{budget} flows of finished operations and {running} of {} running ones (max_in_progress x result_cap) take {} MiB besides {} MiB of flow tables",
                o.max_in_progress,
                all >> 20,
                need >> 20
            ),
        );
    }
    Ok(())
}

/// MemAvailable from /proc/meminfo, in bytes.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    Some(meminfo_field(&info, "MemAvailable:")? * 1024)
}

/// The number on the line of `/proc/meminfo` text that starts with `name`
/// (its own unit: kB for sizes, a count for huge pages).
pub fn meminfo_field(meminfo: &str, name: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with(name))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Reads, parses and validates a config file, without asking whether this
/// machine could run it (`--check-config` may vet a file for another one).
pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    let err = |key: &str, problem: String| ConfigError {
        file: file.clone(),
        key: key.to_string(),
        problem,
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| err("(file)", format!("cannot read: {e}")))?;
    let config = parse(&text).map_err(|(key, problem)| err(&key, problem))?;
    let loaded = Loaded {
        path: path.to_path_buf(),
        config,
    };
    validate(&loaded)?;
    Ok(loaded)
}

/// Whether this machine has what the config asks for: its CPUs.
pub fn check_machine(l: &Loaded, cpus: &[usize]) -> Result<(), ConfigError> {
    let dp = &l.config.dataplane;
    if !cpus.contains(&dp.main_cpu) {
        return Err(l.error(
            "dataplane.main_cpu",
            format!(
                "CPU {} is not available on this machine (available: {})",
                dp.main_cpu,
                cpu_list(cpus)
            ),
        ));
    }
    for (i, &cpu) in dp.worker_cpus.iter().enumerate() {
        if !cpus.contains(&cpu) {
            return Err(l.error(
                format!("dataplane.worker_cpus[{i}]"),
                format!(
                    "CPU {cpu} is not available on this machine (available: {})",
                    cpu_list(cpus)
                ),
            ));
        }
    }
    Ok(())
}

/// Parses TOML text; on failure returns (key or line:column, problem).
pub fn parse(text: &str) -> Result<Config, (String, String)> {
    let located = |e: &toml::de::Error| -> String {
        match e.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {col}")
            }
            None => "(syntax)".to_string(),
        }
    };
    let de =
        toml::de::Deserializer::parse(text).map_err(|e| (located(&e), one_line(e.message())))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner();
        let key = if path.is_empty() || path == "." {
            located(inner)
        } else {
            format!(
                "{path} (line {})",
                located(inner)
                    .trim_start_matches("line ")
                    .split(',')
                    .next()
                    .unwrap_or("?")
            )
        };
        (key, one_line(inner.message()))
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// CPUs this process may run on.
pub fn available_cpus() -> Vec<usize> {
    let mut v: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    v.sort_unstable();
    v
}

fn cpu_list(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end + 1 {
            i += 1;
            end = cpus[i];
        }
        out.push(if start == end {
            format!("{start}")
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// Splits `name,key=value,...` devargs into the device name and its pairs.
pub fn split_devargs(device: &str) -> (&str, Vec<(&str, &str)>) {
    let mut parts = device.split(',');
    let name = parts.next().unwrap_or("");
    let kv = parts
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    (name, kv)
}

/// Whether a device string names a PCI device (`0000:03:00.0` or `03:00.0`).
pub fn is_pci(device: &str) -> bool {
    pci_canonical(split_devargs(device).0).is_some()
}

/// A PCI address as DPDK names the port it probes: with its domain, in
/// lower case (`03:00.0` and `0000:03:00.0` are one device); `None` when
/// `name` is not a PCI address.
pub fn pci_canonical(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split(':').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
    let devfn = |s: &str| {
        s.split_once('.').is_some_and(|(d, f)| {
            hex(d, 2) && f.len() == 1 && f.chars().all(|c| ('0'..='7').contains(&c))
        })
    };
    let full = match parts.as_slice() {
        [dom, bus, df] if hex(dom, 4) && hex(bus, 2) && devfn(df) => name.to_string(),
        [bus, df] if hex(bus, 2) && devfn(df) => format!("0000:{name}"),
        _ => return None,
    };
    Some(full.to_ascii_lowercase())
}

/// The longest idle timeout, in seconds: a year.
pub const MAX_TIMEOUT_SECS: u32 = 31_536_000;

/// Checks what serde cannot: names, references, CPUs, files.
pub fn validate(l: &Loaded) -> Result<(), ConfigError> {
    let c = &l.config;
    let dp = &c.dataplane;
    if c.ports.is_empty() {
        return Err(l.error("ports", "at least one [[ports]] entry is needed"));
    }
    if c.eal.file_prefix.is_empty()
        || !c
            .eal
            .file_prefix
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    {
        return Err(l.error(
            "eal.file_prefix",
            "must be non-empty letters, digits, '-' or '_'",
        ));
    }
    if log_level_number(&c.eal.log_level).is_none() {
        return Err(l.error(
            "eal.log_level",
            format!("unknown level {:?} (emergency, alert, critical, error, warning, notice, info, debug)", c.eal.log_level),
        ));
    }
    if let Err((i, problem)) = crate::eal_args::check_extra_args(&c.eal.extra_args) {
        return Err(l.error(format!("eal.extra_args[{i}]"), problem));
    }
    if dp.worker_cpus.is_empty() {
        return Err(l.error("dataplane.worker_cpus", "at least one worker CPU is needed"));
    }
    for (i, &cpu) in dp.worker_cpus.iter().enumerate() {
        if cpu == dp.main_cpu {
            return Err(l.error(
                format!("dataplane.worker_cpus[{i}]"),
                format!("CPU {cpu} is the control thread's (dataplane.main_cpu); workers need CPUs of their own"),
            ));
        }
    }
    if dp.worker_cpus.len() > 127 {
        return Err(l.error("dataplane.worker_cpus", "at most 127 workers"));
    }
    if dp.mbufs < 1024 {
        return Err(l.error("dataplane.mbufs", "at least 1024 packet buffers are needed"));
    }
    // DPDK's own bounds on a pool's per-lcore cache (it refuses the pool
    // otherwise, long after the file was read).
    if dp.mbuf_cache > MAX_MBUF_CACHE || u64::from(dp.mbuf_cache) * 3 / 2 > u64::from(dp.mbufs) {
        return Err(l.error(
            "dataplane.mbuf_cache",
            format!(
                "{} is over {MAX_MBUF_CACHE}, or over two thirds of dataplane.mbufs ({})",
                dp.mbuf_cache, dp.mbufs
            ),
        ));
    }
    if dp.stats_period > MAX_STATS_PERIOD {
        return Err(l.error(
            "dataplane.stats_period",
            format!("{} is outside 0..={MAX_STATS_PERIOD}", dp.stats_period),
        ));
    }
    if dp.mbuf_data_room < 256 + 128 {
        return Err(l.error(
            "dataplane.mbuf_data_room",
            "at least 384 bytes (128 of headroom and a frame)",
        ));
    }
    for (key, v) in [
        ("dataplane.rx_desc", dp.rx_desc),
        ("dataplane.tx_desc", dp.tx_desc),
    ] {
        if v < 32 || !v.is_power_of_two() {
            return Err(l.error(key, format!("{v} is not a power of two of at least 32")));
        }
    }
    let mut names = HashSet::new();
    let mut devices = HashSet::new();
    let mut enis = HashSet::new();
    for (i, p) in c.ports.iter().enumerate() {
        if p.name.is_empty() {
            return Err(l.error(format!("ports[{i}].name"), "must not be empty"));
        }
        if !names.insert(p.name.as_str()) {
            return Err(l.error(
                format!("ports[{i}].name"),
                format!("port name {:?} is used twice", p.name),
            ));
        }
        let (dev, kvs) = split_devargs(&p.device);
        if dev.is_empty() {
            return Err(l.error(
                format!("ports[{i}].device"),
                "no device name before the first ','",
            ));
        }
        if !devices.insert(pci_canonical(dev).unwrap_or_else(|| dev.to_string())) {
            return Err(l.error(
                format!("ports[{i}].device"),
                format!("device {dev:?} is used by two ports"),
            ));
        }
        for (k, v) in kvs {
            if k.is_empty() || (v.is_empty() && !p.device.contains(&format!("{k}="))) {
                return Err(l.error(
                    format!("ports[{i}].device"),
                    format!("malformed device argument {k:?} (expected key=value)"),
                ));
            }
            if k == "rx_pcap" && !Path::new(v).is_file() {
                return Err(l.error(
                    format!("ports[{i}].device"),
                    format!("rx_pcap file {v:?} does not exist"),
                ));
            }
            if k == "tx_pcap" {
                let parent = Path::new(v)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                if !parent.is_dir() {
                    return Err(l.error(
                        format!("ports[{i}].device"),
                        format!("tx_pcap directory {:?} does not exist", parent.display()),
                    ));
                }
            }
        }
        if let Some(id) = &p.interface_id {
            if !id.starts_with("eni-") || id.len() < 5 {
                return Err(l.error(
                    format!("ports[{i}].interface_id"),
                    format!("{id:?} does not look like an interface id (eni-...)"),
                ));
            }
        }
        if let Some(mtu) = p.mtu {
            if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
                return Err(l.error(
                    format!("ports[{i}].mtu"),
                    format!("{mtu} is outside {MIN_MTU}..={MAX_MTU}"),
                ));
            }
        }
        // Mirror sessions and F5 queries name ports by it.
        if !enis.insert(p.eni()) {
            return Err(l.error(
                format!("ports[{i}].interface_id"),
                format!("{:?} is another port's interface id", p.eni()),
            ));
        }
    }
    if c.flows.capacity < 8 || c.flows.capacity > 1 << 28 {
        return Err(l.error(
            "flows.capacity",
            format!("{} is outside 8..=268435456", c.flows.capacity),
        ));
    }
    if !(1..=MAX_REJECT_BURST).contains(&c.policy.reject_burst) {
        return Err(l.error(
            "policy.reject_burst",
            format!(
                "{} is outside 1..={MAX_REJECT_BURST}",
                c.policy.reject_burst
            ),
        ));
    }
    if !(1..=MAX_FRAGMENT_MAP).contains(&c.flows.fragment_map) {
        return Err(l.error(
            "flows.fragment_map",
            format!("{} is outside 1..={MAX_FRAGMENT_MAP}", c.flows.fragment_map),
        ));
    }
    let t = &c.flows.timeouts;
    for (key, secs) in [
        ("flows.timeouts.tcp_handshake", t.tcp_handshake),
        ("flows.timeouts.tcp_established", t.tcp_established),
        ("flows.timeouts.tcp_closing", t.tcp_closing),
        ("flows.timeouts.tcp_closed", t.tcp_closed),
        ("flows.timeouts.udp", t.udp),
        ("flows.timeouts.icmp", t.icmp),
        ("flows.timeouts.other", t.other),
        ("flows.fragment_timeout", c.flows.fragment_timeout),
    ] {
        // 0 would expire a flow at its first sweep, between its packets;
        // "never" is not a timeout, and a huge one only wraps in ticks.
        if !(1..=MAX_TIMEOUT_SECS).contains(&secs) {
            return Err(l.error(
                key,
                format!("{secs} is outside 1..={MAX_TIMEOUT_SECS} seconds (a year)"),
            ));
        }
    }
    if !(10..=60_000).contains(&c.flows.sweep_period_ms) {
        return Err(l.error(
            "flows.sweep_period_ms",
            format!("{} is outside 10..=60000", c.flows.sweep_period_ms),
        ));
    }
    validate_f5(l)?;
    validate_operations(l)?;
    validate_auth(l)?;
    let m = &c.mirror;
    if parse_mac(&m.next_hop_mac).is_none() {
        return Err(l.error(
            "mirror.next_hop_mac",
            format!(
                "{:?} is not a MAC address (aa:bb:cc:dd:ee:ff)",
                m.next_hop_mac
            ),
        ));
    }
    if m.owner_id.len() != 12 || !m.owner_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(l.error("mirror.owner_id", "must be a 12-digit account id"));
    }
    if !(1..=flowgate_dataplane::mirror::MAX_SESSIONS).contains(&m.max_sessions) {
        return Err(l.error(
            "mirror.max_sessions",
            format!(
                "{} is outside 1..={}",
                m.max_sessions,
                flowgate_dataplane::mirror::MAX_SESSIONS
            ),
        ));
    }
    for (key, v) in [
        ("mirror.max_targets", m.max_targets),
        ("mirror.max_filters", m.max_filters),
        ("mirror.max_rules_per_filter", m.max_rules_per_filter),
    ] {
        if !(1..=10_000).contains(&v) {
            return Err(l.error(key, format!("{v} is outside 1..=10000")));
        }
    }
    let api = &c.api;
    for (key, v) in [
        ("api.max_body_bytes", api.max_body_bytes as u64),
        ("api.header_read_timeout_ms", api.header_read_timeout_ms),
        ("api.body_read_timeout_ms", api.body_read_timeout_ms),
        ("api.write_timeout_ms", api.write_timeout_ms),
        ("api.max_connections", api.max_connections as u64),
        (
            "api.max_inflight_per_client",
            api.max_inflight_per_client as u64,
        ),
        (
            "api.max_connections_per_client",
            api.max_connections_per_client as u64,
        ),
    ] {
        if v == 0 {
            return Err(l.error(key, "must be at least 1"));
        }
    }
    compile_policy(l)?;
    let mut paired = HashSet::new();
    for (i, [a, b]) in dp.pairs.iter().enumerate() {
        for (j, n) in [a, b].into_iter().enumerate() {
            if !names.contains(n.as_str()) {
                return Err(l.error(
                    format!("dataplane.pairs[{i}][{j}]"),
                    format!("no port is named {n:?}"),
                ));
            }
            if !paired.insert(n.as_str()) {
                return Err(l.error(
                    format!("dataplane.pairs[{i}][{j}]"),
                    format!("port {n:?} is already in a pair"),
                ));
            }
        }
        // A frame received on one port leaves by the other as it came: a
        // larger one would be dropped by the other's link, or, chained, sent
        // by a queue not set up for chains.
        let mtu = |n: &str| {
            c.ports
                .iter()
                .find(|p| p.name == n)
                .and_then(|p| p.mtu)
                .unwrap_or(flowgate_sys::ETHERNET_MTU)
        };
        if mtu(a) != mtu(b) {
            return Err(l.error(
                format!("dataplane.pairs[{i}][1]"),
                format!(
                    "port {b:?} has MTU {} and its pair {a:?} {}: the ports of a pair need the same MTU",
                    mtu(b),
                    mtu(a)
                ),
            ));
        }
    }
    Ok(())
}

/// Largest per-lcore mbuf cache DPDK accepts.
const MAX_MBUF_CACHE: u32 = flowgate_sys::ffi::RTE_MEMPOOL_CACHE_MAX_SIZE;

/// Longest statistics period, seconds (a day).
const MAX_STATS_PERIOD: u64 = 86_400;

/// Most fragment-map slots per worker (64 bytes each: 256 MiB).
const MAX_FRAGMENT_MAP: u32 = 1 << 22;

/// Most answers a worker may send at once above its reject rate.
const MAX_REJECT_BURST: u32 = 1_000_000;

/// MTU bounds: IPv4's minimum, and the largest jumbo frame DPDK names
/// (RTE_ETHER_MAX_JUMBO_FRAME_LEN, 16128) less the Ethernet header and
/// FCS. The device's own bounds are checked when it comes up.
const MIN_MTU: u16 = 68;
const MAX_MTU: u16 = 16_110;

/// `[auth]` as the file gives it: each secret from exactly one source, an
/// inline one not empty. (Whether a file can be read or a variable is set
/// is the machine's, checked at start.)
fn validate_auth(l: &Loaded) -> Result<(), ConfigError> {
    let a = &l.config.auth;
    if !a.enabled {
        return Ok(());
    }
    let sources = a
        .keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            (
                format!("auth.keys[{i}].secret"),
                [&k.secret, &k.secret_file, &k.secret_env],
            )
        })
        .chain(a.f5_tokens.iter().enumerate().map(|(i, t)| {
            (
                format!("auth.f5_tokens[{i}].token"),
                [&t.token, &t.token_file, &t.token_env],
            )
        }));
    for (key, [inline, file, env]) in sources {
        check_secret_source(l, &key, inline, file, env)?;
    }
    Ok(())
}

/// A secret's source as the file gives it: exactly one of the value, a
/// file or an environment variable, and a value not empty.
pub fn check_secret_source(
    l: &Loaded,
    key: &str,
    inline: &Option<String>,
    file: &Option<String>,
    env: &Option<String>,
) -> Result<(), ConfigError> {
    if [inline, file, env].iter().filter(|s| s.is_some()).count() != 1 {
        return Err(l.error(key, "give exactly one of the value, a _file or an _env"));
    }
    if inline.as_deref() == Some("") {
        return Err(l.error(key, "is empty"));
    }
    Ok(())
}

fn validate_f5(l: &Loaded) -> Result<(), ConfigError> {
    let f = &l.config.f5;
    for (key, v) in [
        ("f5.namespace", &f.namespace),
        ("f5.site", &f.site),
        ("f5.node", &f.node),
    ] {
        // They appear as path segments, so they must be one.
        if v.is_empty() || v.contains('/') || v.chars().any(char::is_whitespace) {
            return Err(l.error(
                key,
                format!("{v:?} must be a non-empty name without '/' or spaces"),
            ));
        }
    }
    // 0 would answer before any worker could: every query a 504.
    if !(1..=F5_MAX_DEADLINE_MS).contains(&f.deadline_ms) {
        return Err(l.error(
            "f5.deadline_ms",
            format!("{} is outside 1..={F5_MAX_DEADLINE_MS}", f.deadline_ms),
        ));
    }
    if !(1..=100).contains(&f.busy_share_percent) {
        return Err(l.error(
            "f5.busy_share_percent",
            format!("{} is outside 1..=100", f.busy_share_percent),
        ));
    }
    if !(1..=1024).contains(&f.max_flows) {
        return Err(l.error(
            "f5.max_flows",
            format!("{} is outside 1..=1024 (the F5 API's limit)", f.max_flows),
        ));
    }
    Ok(())
}

fn validate_operations(l: &Loaded) -> Result<(), ConfigError> {
    let o = &l.config.operations;
    if !is_resource_arn(&o.firewall_arn) {
        return Err(l.error(
            "operations.firewall_arn",
            format!(
                "{:?} is not an ARN (arn:aws..., at most 256 characters)",
                o.firewall_arn
            ),
        ));
    }
    if let Some(arn) = &o.vpc_endpoint_association_arn {
        if !is_resource_arn(arn) {
            return Err(l.error(
                "operations.vpc_endpoint_association_arn",
                format!("{arn:?} is not an ARN (arn:aws..., at most 256 characters)"),
            ));
        }
    }
    for (key, v) in [
        ("operations.availability_zone", &o.availability_zone),
        ("operations.availability_zone_id", &o.availability_zone_id),
    ] {
        if v.trim().is_empty() {
            return Err(l.error(key, "must not be empty"));
        }
    }
    if !is_vpc_endpoint_id(&o.vpc_endpoint_id) {
        return Err(l.error(
            "operations.vpc_endpoint_id",
            format!(
                "{:?} is not an endpoint id (vpce- and letters or digits)",
                o.vpc_endpoint_id
            ),
        ));
    }
    // Each operation is one job on every worker, and a worker runs at most
    // MAX_JOBS: more would be refused there, so throttle before.
    let most = flowgate_dataplane::worker::MAX_JOBS;
    if !(1..=most).contains(&o.max_in_progress) {
        return Err(l.error(
            "operations.max_in_progress",
            format!(
                "{} is outside 1..={most} (jobs a worker runs at once)",
                o.max_in_progress
            ),
        ));
    }
    if !(1..=10_000_000).contains(&o.result_cap) {
        return Err(l.error(
            "operations.result_cap",
            format!("{} is outside 1..=10000000", o.result_cap),
        ));
    }
    if o.retention_seconds == 0 {
        return Err(l.error(
            "operations.retention_seconds",
            "must be at least 1, or results are gone before anyone can read them",
        ));
    }
    if o.retention_count == 0 {
        return Err(l.error("operations.retention_count", "must be at least 1"));
    }
    if let Some(b) = o.result_budget.filter(|&b| b < o.result_cap) {
        return Err(l.error(
            "operations.result_budget",
            format!(
                "{b} is below result_cap ({}): an operation that reaches the cap would be forgotten as it finishes",
                o.result_cap
            ),
        ));
    }
    if !(1..=3_600_000).contains(&o.worker_timeout_ms) {
        return Err(l.error(
            "operations.worker_timeout_ms",
            format!(
                "{} is outside 1..=3600000 (0 would fail every operation at once)",
                o.worker_timeout_ms
            ),
        ));
    }
    if !(1..=100).contains(&o.busy_share_percent) {
        return Err(l.error(
            "operations.busy_share_percent",
            format!("{} is outside 1..=100", o.busy_share_percent),
        ));
    }
    Ok(())
}

/// The protocols whose flow keys hold ports.
const PORT_PROTOCOLS: [u8; 3] = {
    use flowgate_dataplane::wire::ip_protocol::{SCTP, TCP, UDP};
    [TCP, UDP, SCTP]
};

/// The policy the config describes, compiled.
pub fn compile_policy(l: &Loaded) -> Result<flowgate_dataplane::policy::Policy, ConfigError> {
    use crate::filters::{parse_cidr, parse_ports, parse_proto};
    use flowgate_dataplane::filter::{PortRange, ProtoSet, Rule};
    use flowgate_dataplane::policy::{Policy, RuleAction};
    let verdict = |a: PolicyAction| match a {
        PolicyAction::Pass => flowgate_dataplane::flow::Verdict::Pass,
        PolicyAction::Drop => flowgate_dataplane::flow::Verdict::Drop,
        PolicyAction::Reject => flowgate_dataplane::flow::Verdict::Reject,
    };
    let p = &l.config.policy;
    let mut rules = Vec::new();
    let mut ids = HashSet::new();
    for (i, r) in p.rules.iter().enumerate() {
        let key = |f: &str| format!("policy.rules[{i}].{f}");
        if r.id == 0 {
            return Err(l.error(
                key("id"),
                "0 is reserved for the default action; use 1 or more",
            ));
        }
        if !ids.insert(r.id) {
            return Err(l.error(key("id"), format!("rule id {} is used twice", r.id)));
        }
        let cidr = |f: &str, v: &Option<String>| match v {
            None => Ok(flowgate_dataplane::filter::Cidr::ANY),
            Some(s) => parse_cidr(s).map_err(|e| l.error(key(f), e)),
        };
        let ports = |f: &str, v: &Option<String>| match v {
            None => Ok(PortRange::ANY),
            Some(s) => parse_ports(s, '-').map_err(|e| l.error(key(f), e)),
        };
        let mut protos = Vec::new();
        for (j, pn) in r.protocols.iter().enumerate() {
            protos.push(match pn {
                ProtoName::Number(n) => *n,
                ProtoName::Name(s) => parse_proto(s)
                    .map_err(|e| l.error(format!("policy.rules[{i}].protocols[{j}]"), e))?,
            });
        }
        // Only TCP, UDP and SCTP have ports. Other protocols' keys hold an
        // ICMP type and code, an echo's identifier or zeros, which a port
        // range would match by accident ("0-1023" catching every GRE flow):
        // ports without protocols mean these three, and ports with another
        // protocol are refused.
        if r.src_ports.is_some() || r.dst_ports.is_some() {
            if protos.is_empty() {
                protos = PORT_PROTOCOLS.to_vec();
            } else if let Some(j) = protos.iter().position(|p| !PORT_PROTOCOLS.contains(p)) {
                return Err(l.error(
                    format!("policy.rules[{i}].protocols[{j}]"),
                    format!(
                        "protocol {} has no ports, and the rule gives src_ports or dst_ports (tcp, udp and sctp have ports)",
                        protos[j]
                    ),
                ));
            }
        }
        let (src, dst) = (cidr("src", &r.src)?, cidr("dst", &r.dst)?);
        let family = |c: &flowgate_dataplane::filter::Cidr| match c.family {
            flowgate_dataplane::flow::AddrFamily::V4 => "IPv4",
            _ => "IPv6",
        };
        if src.family != flowgate_dataplane::flow::AddrFamily::None
            && dst.family != flowgate_dataplane::flow::AddrFamily::None
            && src.family != dst.family
        {
            return Err(l.error(
                key("dst"),
                format!(
                    "is {} but src is {}: no packet has both, so the rule would never match",
                    family(&dst),
                    family(&src)
                ),
            ));
        }
        let rule = Rule {
            src,
            dst,
            sport: ports("src_ports", &r.src_ports)?,
            dport: ports("dst_ports", &r.dst_ports)?,
            protos: ProtoSet::of(&protos),
        };
        rules.push((
            r.priority,
            i,
            rule,
            RuleAction {
                verdict: verdict(r.action),
                rule_id: r.id,
                group: r.group,
            },
        ));
    }
    rules.sort_by_key(|&(prio, i, _, _)| (prio, i));
    let rules: Vec<_> = rules.into_iter().map(|(_, _, r, a)| (r, a)).collect();
    Ok(Policy::new(
        &rules,
        RuleAction {
            verdict: verdict(p.default_action),
            rule_id: 0,
            group: 0,
        },
    ))
}

/// The tracking settings the config describes.
pub fn track_settings(c: &Config) -> flowgate_dataplane::track::TrackSettings {
    use flowgate_dataplane::flow::{FullPolicy, TimeoutSecs};
    use flowgate_dataplane::track::{MalformedAction, StreamException, TrackSettings};
    let f = &c.flows;
    let t = &f.timeouts;
    TrackSettings {
        capacity: f.capacity,
        when_full: match f.when_full {
            WhenFull::DropNew => FullPolicy::DropNew,
            WhenFull::EvictOldest => FullPolicy::EvictOldest,
        },
        timeouts: TimeoutSecs {
            tcp_handshake: t.tcp_handshake,
            tcp_established: t.tcp_established,
            tcp_closing: t.tcp_closing,
            tcp_closed: t.tcp_closed,
            udp: t.udp,
            icmp: t.icmp,
            other: t.other,
        },
        malformed: match f.malformed {
            OnMalformed::Drop => MalformedAction::Drop,
            OnMalformed::Pass => MalformedAction::Pass,
        },
        verify_ipv4_checksum: f.verify_ipv4_checksum,
        stream_exception: match f.stream_exception {
            OnMidstream::Drop => StreamException::Drop,
            OnMidstream::Continue => StreamException::Continue,
            OnMidstream::Reject => StreamException::Reject,
        },
        fragment_map: f.fragment_map,
        fragment_timeout: f.fragment_timeout,
        reject_rate: c.policy.reject_rate,
        reject_burst: c.policy.reject_burst,
        sweep_period_ms: f.sweep_period_ms,
    }
}

/// DPDK's numeric log level for a name or number.
pub fn log_level_number(s: &str) -> Option<u32> {
    let names = [
        "emergency",
        "alert",
        "critical",
        "error",
        "warning",
        "notice",
        "info",
        "debug",
    ];
    if let Ok(n) = s.parse::<u32>() {
        return (1..=8).contains(&n).then_some(n);
    }
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[dataplane]
worker_cpus = [1]
pairs = [["a", "b"]]
[[ports]]
name = "a"
device = "net_null0"
[[ports]]
name = "b"
device = "net_null1"
"#;

    fn check(text: &str) -> Result<(), ConfigError> {
        let config = parse(text).map_err(|(key, problem)| ConfigError {
            file: "t.toml".into(),
            key,
            problem,
        })?;
        let l = Loaded {
            path: "t.toml".into(),
            config,
        };
        validate(&l)?;
        check_machine(&l, &[0, 1])
    }

    #[test]
    fn flow_tables_must_fit_in_the_memory_available() {
        let l = |text: String| Loaded {
            path: "t.toml".into(),
            config: parse(&text).unwrap(),
        };
        let big = l(format!("{GOOD}[flows]\ncapacity = 268435456\n"));
        let e = check_memory(&big, Some(8 << 30)).unwrap_err();
        assert_eq!(e.key, "flows.capacity");
        assert!(e.problem.contains("8192 MiB available"), "{e}");
        check_memory(&big, Some(1 << 40)).unwrap();
        check_memory(&big, None).unwrap();
        let tables = flowgate_dataplane::flow::FlowTable::footprint(1 << 20) as u64 * 2;
        // One operation at the largest cap takes 762 MiB: one per worker
        // would take twice that, and is not what control holds.
        let two = GOOD.replace("worker_cpus = [1]", "worker_cpus = [1, 2]");
        let cap = l(format!(
            "{two}[flows]\ncapacity = 1048576\n[operations]\nresult_cap = 10000000\nmax_in_progress = 1\nresult_budget = 10000000\n"
        ));
        let e = check_memory(&cap, Some(tables + (700 << 20))).unwrap_err();
        assert_eq!(e.key, "operations.result_cap");
        assert!(e.problem.contains("762 MiB besides"), "{e}");
        assert!(!e.to_string().contains('\n'));
        // The budget and the running operation: twice that.
        let e = check_memory(&cap, Some(tables + (800 << 20))).unwrap_err();
        assert_eq!(e.key, "operations.result_budget");
        assert!(e.problem.contains("1525 MiB besides"), "{e}");
        check_memory(&cap, Some(tables + (1530 << 20))).unwrap();
        // Forwarding only: no tables.
        let forward = GOOD.replace("[dataplane]\n", "[dataplane]\nmode = \"forward\"\n");
        check_memory(
            &l(format!("{forward}[flows]\ncapacity = 268435456\n")),
            Some(8 << 30),
        )
        .unwrap();
    }

    #[test]
    fn good_config_loads_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.api.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.eal.hugepages, HugepageMode::Auto);
        check(GOOD).unwrap();
    }

    #[test]
    fn unknown_key_is_named() {
        let e = check(&GOOD.replace("worker_cpus", "worker_cpu")).unwrap_err();
        assert!(e.key.starts_with("dataplane.worker_cpu"), "{e}");
        assert!(e.problem.contains("unknown field"), "{e}");
    }

    #[test]
    fn syntax_error_names_line() {
        let e = check("[dataplane\n").unwrap_err();
        assert!(e.key.contains("line 1"), "{e}");
    }

    #[test]
    fn wrong_type_names_key() {
        let e = check(&GOOD.replace("worker_cpus = [1]", "worker_cpus = \"one\"")).unwrap_err();
        assert!(e.key.starts_with("dataplane.worker_cpus"), "{e}");
    }

    #[test]
    fn semantic_errors_name_their_key() {
        let cases = [
            (
                GOOD.replace("name = \"b\"", "name = \"a\""),
                "ports[1].name",
            ),
            (GOOD.replace("net_null1", "net_null0"), "ports[1].device"),
            (
                GOOD.replace("[\"a\", \"b\"]", "[\"a\", \"c\"]"),
                "dataplane.pairs[0][1]",
            ),
            (
                GOOD.replace("device = \"net_null0\"", "device = \"net_null0\"\nmtu = 9000"),
                "dataplane.pairs[0][1]",
            ),
            (
                GOOD.replace("worker_cpus = [1]", "worker_cpus = [1, 64]"),
                "dataplane.worker_cpus[1]",
            ),
            (
                GOOD.replace("worker_cpus = [1]", "worker_cpus = [0]"),
                "dataplane.worker_cpus[0]",
            ),
            (
                GOOD.replace("net_null0", "net_pcap0,rx_pcap=/nonexistent.pcap"),
                "ports[0].device",
            ),
            (
                GOOD.replace("net_null0", "net_null0,,=x"),
                "ports[0].device",
            ),
            (
                format!("{GOOD}[flows]\nfragment_map = 4294967295\n"),
                "flows.fragment_map",
            ),
            (
                GOOD.replace("worker_cpus = [1]", "worker_cpus = [1]\nmbuf_cache = 1024"),
                "dataplane.mbuf_cache",
            ),
            (
                GOOD.replace(
                    "worker_cpus = [1]",
                    "worker_cpus = [1]\nmbufs = 1024\nmbuf_cache = 700",
                ),
                "dataplane.mbuf_cache",
            ),
            (
                GOOD.replace(
                    "worker_cpus = [1]",
                    "worker_cpus = [1]\nstats_period = 9223372036854775807",
                ),
                "dataplane.stats_period",
            ),
            (
                GOOD.replace(
                    "device = \"net_null1\"",
                    "device = \"net_null1\"\ninterface_id = \"eni-0a\"",
                )
                .replace(
                    "device = \"net_null0\"",
                    "device = \"net_null0\"\ninterface_id = \"eni-0a\"",
                ),
                "ports[1].interface_id",
            ),
            (
                format!("{GOOD}[policy]\nreject_burst = 0\n"),
                "policy.reject_burst",
            ),
            (
                GOOD.replace(
                    "device = \"net_null1\"",
                    "device = \"net_null1\"\nmtu = 20000",
                ),
                "ports[1].mtu",
            ),
            (
                GOOD.replace("device = \"net_null0\"", "device = \"net_null0\"\nmtu = 67"),
                "ports[0].mtu",
            ),
            (
                format!(
                    "{GOOD}[auth]\n[[auth.keys]]\nid = \"A\"\nsecret = \"x\"\nsecret_env = \"Y\"\n"
                ),
                "auth.keys[0].secret",
            ),
            (
                format!("{GOOD}[auth]\n[[auth.f5_tokens]]\ntoken = \"\"\n"),
                "auth.f5_tokens[0].token",
            ),
            (
                "ports = []\n[dataplane]\nworker_cpus = [1]\n".to_string(),
                "ports",
            ),
            (
                format!("{GOOD}[eal]\nfile_prefix = \"a/b\"\n"),
                "eal.file_prefix",
            ),
            (
                format!("{GOOD}[eal]\nlog_level = \"loud\"\n"),
                "eal.log_level",
            ),
            (
                GOOD.replace("worker_cpus = [1]", "worker_cpus = []"),
                "dataplane.worker_cpus",
            ),
            (
                GOOD.replace(
                    "worker_cpus = [1]",
                    &format!("worker_cpus = {:?}", (1..=128).collect::<Vec<u32>>()),
                ),
                "dataplane.worker_cpus",
            ),
            (
                GOOD.replace("worker_cpus = [1]", "worker_cpus = [1]\nmbufs = 1023"),
                "dataplane.mbufs",
            ),
            (
                GOOD.replace("worker_cpus = [1]", "worker_cpus = [1]\nmbuf_data_room = 383"),
                "dataplane.mbuf_data_room",
            ),
            (
                GOOD.replace("worker_cpus = [1]", "worker_cpus = [1]\nrx_desc = 1000"),
                "dataplane.rx_desc",
            ),
            (
                GOOD.replace("worker_cpus = [1]", "worker_cpus = [1]\ntx_desc = 16"),
                "dataplane.tx_desc",
            ),
            (
                GOOD.replace("name = \"a\"", "name = \"\""),
                "ports[0].name",
            ),
            (
                GOOD.replace("net_null0", ",x=1"),
                "ports[0].device",
            ),
            (
                GOOD.replace("net_null0", "03:00.0")
                    .replace("net_null1", "0000:03:00.0"),
                "ports[1].device",
            ),
            (
                GOOD.replace("net_null0", "net_pcap0,tx_pcap=/nonexistent/out.pcap"),
                "ports[0].device",
            ),
            (
                GOOD.replace(
                    "device = \"net_null1\"",
                    "device = \"net_null1\"\ninterface_id = \"if-1\"",
                ),
                "ports[1].interface_id",
            ),
            (
                format!("{GOOD}[flows]\ncapacity = 4\n"),
                "flows.capacity",
            ),
            (
                format!("{GOOD}[flows]\nsweep_period_ms = 5\n"),
                "flows.sweep_period_ms",
            ),
            (
                format!("{GOOD}[flows.timeouts]\ntcp_established = 0\n"),
                "flows.timeouts.tcp_established",
            ),
            (
                format!("{GOOD}[flows.timeouts]\nudp = 4294967295\n"),
                "flows.timeouts.udp",
            ),
            (
                format!("{GOOD}[flows]\nfragment_timeout = 0\n"),
                "flows.fragment_timeout",
            ),
            (
                format!("{GOOD}[eal]\nextra_args = [\"--in-memory\", \"--lcores=0-3\"]\n"),
                "eal.extra_args[1]",
            ),
            (
                format!("{GOOD}[eal]\nextra_args = [\"-l0-1\"]\n"),
                "eal.extra_args[0]",
            ),
            (
                format!("{GOOD}[eal]\nextra_args = [\"--allow\", \"0000:03:00.0\"]\n"),
                "eal.extra_args[0]",
            ),
            (
                format!("{GOOD}[mirror]\nnext_hop_mac = \"02:00:00:00:00\"\n"),
                "mirror.next_hop_mac",
            ),
            (
                format!("{GOOD}[mirror]\nowner_id = \"12345\"\n"),
                "mirror.owner_id",
            ),
            (
                format!("{GOOD}[mirror]\nmax_sessions = 0\n"),
                "mirror.max_sessions",
            ),
            (
                format!("{GOOD}[mirror]\nmax_rules_per_filter = 10001\n"),
                "mirror.max_rules_per_filter",
            ),
            (
                format!("{GOOD}[api]\nmax_body_bytes = 0\n"),
                "api.max_body_bytes",
            ),
            (
                format!("{GOOD}[api]\nwrite_timeout_ms = 0\n"),
                "api.write_timeout_ms",
            ),
            (
                format!("{GOOD}[api]\nmax_connections_per_client = 0\n"),
                "api.max_connections_per_client",
            ),
            (
                GOOD.replace("[\"a\", \"b\"]", "[\"a\", \"b\"], [\"b\", \"a\"]"),
                "dataplane.pairs[1][0]",
            ),
            (
                format!("{GOOD}[f5]\nnode = \"a b\"\n"),
                "f5.node",
            ),
            (
                format!("{GOOD}[operations]\navailability_zone_id = \"\"\n"),
                "operations.availability_zone_id",
            ),
            (
                format!(
                    "{GOOD}[[policy.rules]]\nid = 7\naction = \"drop\"\n[[policy.rules]]\nid = 7\naction = \"drop\"\n"
                ),
                "policy.rules[1].id",
            ),
        ];
        for (text, key) in cases {
            let e = check(&text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn policy_rules_compile_and_errors_name_the_field() {
        let rules = r#"
[[policy.rules]]
id = 7
priority = 5
action = "reject"
dst = "192.0.2.0/24"
dst_ports = "22"
protocols = ["tcp", 17]
"#;
        check(&format!("{GOOD}{rules}")).unwrap();
        for (bad, key) in [
            (
                rules.replace("192.0.2.0/24", "192.0.2.0/40"),
                "policy.rules[0].dst",
            ),
            (
                rules.replace("\"22\"", "\"30-20\""),
                "policy.rules[0].dst_ports",
            ),
            (
                rules.replace("\"tcp\"", "\"tpc\""),
                "policy.rules[0].protocols[0]",
            ),
            (rules.replace("id = 7", "id = 0"), "policy.rules[0].id"),
            (
                rules.replace("dst = ", "src = \"2001:db8::/32\"\ndst = "),
                "policy.rules[0].dst",
            ),
            (rules.replace("reject", "deny"), "policy.rules[0].action"),
            (
                rules.replace("[\"tcp\", 17]", "[\"tcp\", \"icmp\"]"),
                "policy.rules[0].protocols[1]",
            ),
        ] {
            let e = check(&format!("{GOOD}{bad}")).unwrap_err();
            assert!(e.key.starts_with(key), "{e}");
        }
    }

    #[test]
    fn ports_without_protocols_match_tcp_udp_and_sctp_only() {
        use flowgate_dataplane::flow::{AddrFamily, Tuple, Verdict};
        let rules =
            "\n[[policy.rules]]\nid = 3\npriority = 1\naction = \"drop\"\ndst_ports = \"0-1023\"\n";
        let l = Loaded {
            path: "t.toml".into(),
            config: parse(&format!("{GOOD}{rules}")).unwrap(),
        };
        let policy = compile_policy(&l).unwrap();
        let to = |proto: u8, sport: u16, dport: u16| Tuple {
            src: flowgate_dataplane::flow::key::v4_bits([10, 0, 0, 1]),
            dst: flowgate_dataplane::flow::key::v4_bits([192, 0, 2, 1]),
            sport,
            dport,
            proto,
            family: AddrFamily::V4,
            vlan: 0,
        };
        for (proto, sport, dport, verdict) in [
            (6, 40000, 22, Verdict::Drop),
            (17, 40000, 53, Verdict::Drop),
            (132, 40000, 80, Verdict::Drop),
            (17, 40000, 5353, Verdict::Pass),
            // GRE and ESP: zeros where ports would be.
            (47, 0, 0, Verdict::Pass),
            (50, 0, 0, Verdict::Pass),
            // An echo: its identifier as both ports.
            (1, 700, 700, Verdict::Pass),
        ] {
            assert_eq!(
                policy.decide(&to(proto, sport, dport)).verdict,
                verdict,
                "protocol {proto}"
            );
        }
    }

    #[test]
    fn operations_defaults_and_errors_name_the_key() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.operations, OperationsConfig::default());
        assert_eq!(c.operations.result_budget(), DEFAULT_RESULT_BUDGET);
        let big_cap = OperationsConfig {
            result_cap: 2_000_000,
            ..OperationsConfig::default()
        };
        assert_eq!(big_cap.result_budget(), 2_000_000, "the newest is kept");
        assert!(is_resource_arn(&c.operations.firewall_arn));
        assert!(is_vpc_endpoint_id(&c.operations.vpc_endpoint_id));
        let ok = "\n[operations]\nvpc_endpoint_association_arn = \"arn:aws:network-firewall:us-east-1:123456789012:vpc-endpoint-association/a\"\nworker_timeout_ms = 1\n";
        check(&format!("{GOOD}{ok}")).unwrap();
        for (bad, key) in [
            ("firewall_arn = \"flowgate\"", "operations.firewall_arn"),
            (
                "vpc_endpoint_association_arn = \"x\"",
                "operations.vpc_endpoint_association_arn",
            ),
            ("availability_zone = \" \"", "operations.availability_zone"),
            (
                "vpc_endpoint_id = \"vpce-a_b\"",
                "operations.vpc_endpoint_id",
            ),
            ("max_in_progress = 0", "operations.max_in_progress"),
            ("max_in_progress = 9", "operations.max_in_progress"),
            ("result_cap = 0", "operations.result_cap"),
            ("retention_seconds = 0", "operations.retention_seconds"),
            ("retention_count = 0", "operations.retention_count"),
            (
                "result_cap = 5000\nresult_budget = 4999",
                "operations.result_budget",
            ),
            (
                "worker_timeout_ms = 3600001",
                "operations.worker_timeout_ms",
            ),
            ("worker_timeout_ms = 0", "operations.worker_timeout_ms"),
            ("busy_share_percent = 0", "operations.busy_share_percent"),
            ("busy_share_percent = 101", "operations.busy_share_percent"),
            ("max_in_progres = 1", "operations.max_in_progres"),
        ] {
            let e = check(&format!("{GOOD}\n[operations]\n{bad}\n")).unwrap_err();
            assert!(e.key.starts_with(key), "{bad}: {e}");
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn f5_section_defaults_and_errors() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.f5, F5Config::default());
        assert_eq!(c.f5.max_flows, 1024);
        for (bad, key) in [
            ("[f5]\nsite = \"a/b\"\n", "f5.site"),
            ("[f5]\nnamespace = \"\"\n", "f5.namespace"),
            ("[f5]\nmax_flows = 2000\n", "f5.max_flows"),
            ("[f5]\nmax_flows = 0\n", "f5.max_flows"),
            ("[f5]\nbusy_share_percent = 0\n", "f5.busy_share_percent"),
            ("[f5]\ndeadline_ms = 600000\n", "f5.deadline_ms"),
            ("[f5]\ndeadline_ms = 0\n", "f5.deadline_ms"),
            ("[f5]\nsite = 3\n", "f5.site"),
        ] {
            let e = check(&format!("{GOOD}{bad}")).unwrap_err();
            assert!(e.key.starts_with(key), "{e}");
        }
        check(&format!("{GOOD}[f5]\nsite = \"edge-1\"\ndeadline_ms = 1\n")).unwrap();
        // EAL options flowgate does not set pass through.
        check(&format!(
            "{GOOD}[eal]\nextra_args = [\"--log-level=pmd.net.*:debug\", \"--iova-mode=va\", \"--base-virtaddr=0x100000000\", \"--vdev\", \"net_null9\", \"-n4\"]\n"
        ))
        .unwrap();
    }

    #[test]
    fn pci_addresses_are_recognised() {
        assert!(is_pci("0000:03:00.0"));
        assert!(is_pci("03:00.1,rx_queues=2"));
        assert_eq!(pci_canonical("03:00.1").as_deref(), Some("0000:03:00.1"));
        assert_eq!(
            pci_canonical("0000:3B:00.0").as_deref(),
            Some("0000:3b:00.0")
        );
        assert_eq!(pci_canonical("net_null0"), None);
        assert!(!is_pci("net_pcap0,rx_pcap=a.pcap"));
        assert!(!is_pci("net_null0"));
    }

    #[test]
    fn cpu_lists_are_compact() {
        assert_eq!(cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }
}
