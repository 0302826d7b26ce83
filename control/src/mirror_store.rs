//! The traffic-mirroring objects (targets, filters with their rules,
//! sessions) as EC2 models them, their bounds, their persistence, and their
//! compilation into the data plane's [`MirrorConfig`].
//!
//! The store is the source of truth; every change is written to the state
//! file atomically (temporary file, fsync, rename, fsync of the directory)
//! before it is answered, so a `kill -9` loses nothing that was
//! acknowledged. At start the file is read back and the sessions are
//! installed again.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use flowgate_dataplane::filter::{Cidr, PortRange, ProtoSet, Rule};
use flowgate_dataplane::mirror::{
    DirectionRules, MirrorAction, MirrorConfig, MirrorFilter, MirrorSession, MirrorTarget,
    VxlanTunnel,
};
use serde::{Deserialize, Serialize};

/// A tag (`Key`, `Value`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// Where copies go: a flowgate port (by its interface id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// `tmt-...`.
    pub id: String,
    /// The port's interface id.
    pub network_interface_id: String,
    /// Description.
    pub description: Option<String>,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// A port range of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    /// First port.
    pub from: u16,
    /// Last port.
    pub to: u16,
}

/// One rule of a filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRule {
    /// `tmfr-...`.
    pub id: String,
    /// The filter it belongs to.
    pub filter_id: String,
    /// `ingress` or `egress`.
    pub ingress: bool,
    /// Evaluation order (lowest first), unique per filter and direction.
    pub rule_number: u32,
    /// `accept` or `reject`.
    pub accept: bool,
    /// IP protocol as the client gave it (and Describe echoes it); `None`
    /// and 0 both mean all, 0 being how AWS tooling says so.
    pub protocol: Option<u8>,
    /// Destination ports.
    pub destination_ports: Option<Ports>,
    /// Source ports.
    pub source_ports: Option<Ports>,
    /// Destination CIDR block.
    pub destination_cidr: String,
    /// Source CIDR block.
    pub source_cidr: String,
    /// Description.
    pub description: Option<String>,
    /// Tags (absent from state files written before rules kept them).
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A filter: its rules live in [`MirrorStore::rules`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// `tmf-...`.
    pub id: String,
    /// Description.
    pub description: Option<String>,
    /// `amazon-dns` when added (flowgate has no DNS service to mirror; kept
    /// and reported as EC2 does).
    pub network_services: Vec<String>,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// A session: mirror what a source port sees to a target, through a filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// `tms-...`.
    pub id: String,
    /// The source port's interface id.
    pub network_interface_id: String,
    /// Target id.
    pub target_id: String,
    /// Filter id.
    pub filter_id: String,
    /// Bytes to mirror of each packet; `None` = all.
    pub packet_length: Option<u16>,
    /// 1..=32766, lowest first; unique per source port.
    pub session_number: u16,
    /// VXLAN network identifier.
    pub virtual_network_id: u32,
    /// Description.
    pub description: Option<String>,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// Everything persisted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorState {
    /// Targets by id.
    pub targets: BTreeMap<String, Target>,
    /// Filters by id.
    pub filters: BTreeMap<String, Filter>,
    /// Rules by id.
    pub rules: BTreeMap<String, FilterRule>,
    /// Sessions by id.
    pub sessions: BTreeMap<String, Session>,
    /// Creation order of every object, so describe calls list oldest first.
    #[serde(default)]
    pub order: BTreeMap<String, u64>,
    /// Next creation sequence number.
    #[serde(default)]
    pub next_seq: u64,
    /// Bumped on every change; the data plane's generation.
    #[serde(default)]
    pub generation: u32,
    /// The ClientTokens of the latest creates (at most
    /// [`MAX_CLIENT_TOKENS`]), so that a retried create answers with the
    /// object the first attempt made.
    #[serde(default)]
    pub client_tokens: BTreeMap<String, ClientTokenUse>,
}

/// A port as mirroring sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorPort {
    /// Its interface id (`eni-...`).
    pub eni: String,
    /// Its MAC address (the source of copies it sends).
    pub mac: [u8; 6],
    /// Its MTU (copies it sends are cut to fit).
    pub mtu: u16,
}

/// The MTU assumed for a port whose driver is not asked (not up yet).
pub use flowgate_sys::ETHERNET_MTU;

/// Most ClientTokens remembered; the oldest is forgotten first.
pub const MAX_CLIENT_TOKENS: usize = 1024;

/// What a ClientToken was used for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientTokenUse {
    /// The create action.
    pub action: String,
    /// SHA-256 of the request's other parameters.
    pub parameters: String,
    /// The object it created.
    pub id: String,
    /// Creation order of that object (the oldest use is forgotten first).
    pub seq: u64,
}

/// A session that is kept but not mirrored: see [`MirrorStore::left_out`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// The session's id.
    pub session_id: String,
    /// Each interface it needs that is not a configured port, with its role
    /// (`source` or `target`).
    pub missing: Vec<(&'static str, String)>,
}

impl std::fmt::Display for LeftOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "traffic mirror session {} not installed:",
            self.session_id
        )?;
        for (i, (role, eni)) in self.missing.iter().enumerate() {
            let and = if i == 0 { "" } else { " and" };
            write!(f, "{and} its {role} interface {eni}")?;
        }
        let verb = if self.missing.len() == 1 { "is" } else { "are" };
        write!(
            f,
            " {verb} not in [[ports]] (kept; it mirrors again once the port is back)"
        )
    }
}

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not a mirror state.
    #[error("{path}: not a flowgate mirror state file: {problem}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

/// The objects and the file they are kept in.
#[derive(Debug)]
pub struct MirrorStore {
    /// The objects.
    pub state: MirrorState,
    path: Option<PathBuf>,
}

/// A new EC2-style id: prefix, dash, 17 hex digits.
pub fn new_id(prefix: &str) -> String {
    let n: u128 = rand::random();
    format!("{prefix}-{:017x}", n & ((1u128 << 68) - 1))
}

impl MirrorStore {
    /// An empty store kept in memory only (tests).
    pub fn in_memory() -> MirrorStore {
        MirrorStore {
            state: MirrorState::default(),
            path: None,
        }
    }

    /// A copy of the objects, not tied to the file (to compile elsewhere).
    pub fn snapshot(&self) -> MirrorStore {
        MirrorStore {
            state: self.state.clone(),
            path: None,
        }
    }

    /// Opens the state file, or starts empty when there is none yet.
    pub fn open(path: &Path) -> Result<MirrorStore, StoreError> {
        let p = path.display().to_string();
        let state = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: p.clone(),
                problem: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MirrorState::default(),
            Err(e) => return Err(StoreError::Io { path: p, source: e }),
        };
        let mut store = MirrorStore {
            state,
            path: Some(path.to_path_buf()),
        };
        store.order_unlisted();
        // A flow entry starts out decided as of generation 0 ("mirror
        // nothing"): a file without a generation (written by hand or by a
        // tool) would otherwise have its sessions never looked at.
        store.state.generation = store.state.generation.max(1);
        Ok(store)
    }

    /// Gives every object the file lists without a creation order (a file
    /// edited by hand) one after the others, so that describes, which page
    /// by creation order, still list it.
    fn order_unlisted(&mut self) {
        let st = &self.state;
        let unlisted: Vec<String> = st
            .targets
            .keys()
            .chain(st.filters.keys())
            .chain(st.rules.keys())
            .chain(st.sessions.keys())
            .filter(|id| !st.order.contains_key(*id))
            .cloned()
            .collect();
        let top = self.state.order.values().copied().max().unwrap_or(0);
        self.state.next_seq = self.state.next_seq.max(top);
        for id in unlisted {
            self.created(&id);
        }
    }

    /// Records a new object's creation order.
    pub fn created(&mut self, id: &str) {
        self.state.next_seq += 1;
        self.state.order.insert(id.to_string(), self.state.next_seq);
    }

    /// Remembers that `token` made `id` (the object created last), for
    /// `action` with these `parameters`.
    pub fn remember_token(&mut self, token: &str, action: &str, parameters: String, id: String) {
        if self.state.client_tokens.len() >= MAX_CLIENT_TOKENS {
            let oldest = self
                .state
                .client_tokens
                .iter()
                .min_by_key(|(_, u)| u.seq)
                .map(|(t, _)| t.clone());
            if let Some(t) = oldest {
                self.state.client_tokens.remove(&t);
            }
        }
        let seq = self.state.next_seq;
        self.state.client_tokens.insert(
            token.to_string(),
            ClientTokenUse {
                action: action.to_string(),
                parameters,
                id,
                seq,
            },
        );
    }

    /// The object created last, if it still exists.
    pub fn newest(&self) -> Option<&str> {
        self.state
            .order
            .iter()
            .find(|(_, &seq)| seq == self.state.next_seq)
            .map(|(id, _)| id.as_str())
    }

    /// Creation order of an object (for listing).
    pub fn seq(&self, id: &str) -> u64 {
        self.state.order.get(id).copied().unwrap_or(0)
    }

    /// Writes the state (after a change): temp file, fsync, rename, fsync
    /// of the directory, so the file is always the old or the new state.
    pub fn save(&mut self) -> Result<(), StoreError> {
        self.state.generation = self.state.generation.wrapping_add(1).max(1);
        self.state.order.retain(|id, _| {
            self.state.targets.contains_key(id)
                || self.state.filters.contains_key(id)
                || self.state.rules.contains_key(id)
                || self.state.sessions.contains_key(id)
        });
        let Some(path) = &self.path else {
            return Ok(());
        };
        let p = path.display().to_string();
        let io = |e| StoreError::Io {
            path: p.clone(),
            source: e,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.state).expect("state serialises");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(())
    }

    /// Rules of a filter in one direction, by rule number.
    pub fn rules_of(&self, filter_id: &str, ingress: bool) -> Vec<&FilterRule> {
        let mut v: Vec<&FilterRule> = self
            .state
            .rules
            .values()
            .filter(|r| r.filter_id == filter_id && r.ingress == ingress)
            .collect();
        v.sort_by_key(|r| r.rule_number);
        v
    }

    /// What to tell the operator when `mode` keeps every session from
    /// mirroring: `forward` workers never parse a packet, so they have no
    /// tuple to match a filter against. The sessions are still accepted,
    /// kept and described (a session is configuration, as with a port
    /// that is gone, and switching the mode back mirrors them), so this
    /// line, at start and at each change, is what says they are idle.
    /// `None` when the mode mirrors or there is no session.
    pub fn idle_in(&self, mode: crate::config::Mode) -> Option<String> {
        let n = self.state.sessions.len();
        (mode == crate::config::Mode::Forward && n > 0).then(|| {
            format!(
                "[dataplane] mode = \"forward\" mirrors nothing: {n} traffic mirror \
                 session(s) kept but not installed (mode = \"track\" mirrors them)"
            )
        })
    }

    /// The sessions [`MirrorStore::compile`] leaves out because an
    /// interface they name (their source, or their target's) is not among
    /// `ports`. The API refuses such interfaces, so only a session restored
    /// after its port left the configuration is one; it stays in the store
    /// so that putting the port back mirrors it again.
    pub fn left_out(&self, ports: &[MirrorPort]) -> Vec<LeftOut> {
        let configured = |eni: &str| ports.iter().any(|p| p.eni == eni);
        self.state
            .sessions
            .values()
            .filter_map(|s| {
                let mut missing = Vec::new();
                if !configured(&s.network_interface_id) {
                    missing.push(("source", s.network_interface_id.clone()));
                }
                // A missing target id is not this case: the data plane's
                // Dangling check catches it.
                if let Some(t) = self.state.targets.get(&s.target_id) {
                    if !configured(&t.network_interface_id) {
                        missing.push(("target", t.network_interface_id.clone()));
                    }
                }
                (!missing.is_empty()).then(|| LeftOut {
                    session_id: s.id.clone(),
                    missing,
                })
            })
            .collect()
    }

    /// The data plane's view: ports are given in port order; the tunnel's
    /// addresses come from config. Sessions on an interface that is not a
    /// port are left out ([`MirrorStore::left_out`]) rather than failing the
    /// whole configuration, so the others keep mirroring.
    pub fn compile(
        &self,
        ports: &[MirrorPort],
        tunnel: &TunnelConfig,
    ) -> Result<MirrorConfig, flowgate_dataplane::mirror::MirrorConfigError> {
        let port_of = |eni: &str| ports.iter().position(|p| p.eni == eni);
        let target_ids: Vec<&String> = self.state.targets.keys().collect();
        let targets = self
            .state
            .targets
            .values()
            .map(|t| {
                let port = port_of(&t.network_interface_id).unwrap_or(usize::MAX);
                MirrorTarget {
                    port,
                    mtu: ports.get(port).map_or(ETHERNET_MTU, |p| p.mtu),
                    tunnel: VxlanTunnel {
                        src_mac: ports.get(port).map_or([0; 6], |p| p.mac),
                        dst_mac: tunnel.next_hop_mac,
                        src_ip: tunnel.source_ip,
                        dst_ip: tunnel.destination_ip,
                    },
                }
            })
            .collect();
        let filter_ids: Vec<&String> = self.state.filters.keys().collect();
        let filters = self
            .state
            .filters
            .keys()
            .map(|f| MirrorFilter {
                ingress: DirectionRules::new(&self.compiled_rules(f, true)),
                egress: DirectionRules::new(&self.compiled_rules(f, false)),
            })
            .collect();
        let left_out: Vec<String> = self
            .left_out(ports)
            .into_iter()
            .map(|l| l.session_id)
            .collect();
        let sessions: Vec<(usize, u16, MirrorSession)> = self
            .state
            .sessions
            .values()
            .filter(|s| !left_out.contains(&s.id))
            .map(|s| {
                (
                    port_of(&s.network_interface_id).unwrap_or(usize::MAX),
                    s.session_number,
                    MirrorSession {
                        vni: s.virtual_network_id,
                        packet_length: s.packet_length,
                        target: target_ids
                            .iter()
                            .position(|t| **t == s.target_id)
                            .unwrap_or(usize::MAX),
                        filter: filter_ids
                            .iter()
                            .position(|f| **f == s.filter_id)
                            .unwrap_or(usize::MAX),
                    },
                )
            })
            .collect();
        MirrorConfig::new(
            self.state.generation,
            ports.len(),
            targets,
            filters,
            &sessions,
        )
    }

    fn compiled_rules(&self, filter_id: &str, ingress: bool) -> Vec<(Rule, MirrorAction)> {
        self.rules_of(filter_id, ingress)
            .into_iter()
            .map(|r| {
                let cidr = |s: &str| s.parse::<ipnet::IpNet>().map_or(Cidr::ANY, cidr_of);
                let ports = |p: Option<Ports>| {
                    p.map_or(PortRange::ANY, |p| PortRange {
                        lo: p.from,
                        hi: p.to,
                    })
                };
                let rule = Rule {
                    src: cidr(&r.source_cidr),
                    dst: cidr(&r.destination_cidr),
                    sport: ports(r.source_ports),
                    dport: ports(r.destination_ports),
                    // AWS tooling sends 0 for all protocols (Terraform's
                    // default, the console's "All protocols"); as a number
                    // it is IPv6's hop-by-hop header, which the parser
                    // walks past, so taken literally it would match nothing.
                    protos: match r.protocol {
                        None | Some(0) => ProtoSet::ANY,
                        Some(p) => ProtoSet::of(&[p]),
                    },
                };
                let action = if r.accept {
                    MirrorAction::Accept
                } else {
                    MirrorAction::Reject
                };
                (rule, action)
            })
            .collect()
    }
}

/// A CIDR block as the filters compare it. `0.0.0.0/0` is every IPv4
/// address (not IPv6), as in EC2.
pub fn cidr_of(n: ipnet::IpNet) -> Cidr {
    Cidr::from_ip(n.network(), n.prefix_len())
}

/// The VXLAN tunnel's addresses (`[mirror]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelConfig {
    /// Outer source IPv4 address.
    pub source_ip: [u8; 4],
    /// Outer destination IPv4 address (the collector).
    pub destination_ip: [u8; 4],
    /// Outer destination MAC (the next hop towards the collector).
    pub next_hop_mac: [u8; 6],
}

impl TunnelConfig {
    /// From `[mirror]` (validated: the MAC parses).
    pub fn from_config(m: &crate::config::MirrorSection) -> TunnelConfig {
        TunnelConfig {
            source_ip: m.tunnel_source_ip.octets(),
            destination_ip: m.tunnel_destination_ip.octets(),
            next_hop_mac: crate::config::parse_mac(&m.next_hop_mac).unwrap_or([0xff; 6]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, n: u16, target: &str, filter: &str) -> Session {
        Session {
            id: id.into(),
            network_interface_id: "eni-a".into(),
            target_id: target.into(),
            filter_id: filter.into(),
            packet_length: None,
            session_number: n,
            virtual_network_id: 7,
            description: None,
            tags: vec![],
        }
    }

    /// Adds target `id` on `eni` and an empty filter `tmf-1`.
    fn add_target_and_filter(s: &mut MirrorStore, targets: &[(&str, &str)]) {
        for &(id, eni) in targets {
            s.state.targets.insert(
                id.into(),
                Target {
                    id: id.into(),
                    network_interface_id: eni.into(),
                    description: None,
                    tags: vec![],
                },
            );
        }
        s.state.filters.insert(
            "tmf-1".into(),
            Filter {
                id: "tmf-1".into(),
                description: None,
                network_services: vec![],
                tags: vec![],
            },
        );
    }

    const TUNNEL: TunnelConfig = TunnelConfig {
        source_ip: [192, 0, 2, 1],
        destination_ip: [192, 0, 2, 2],
        next_hop_mac: [6; 6],
    };

    #[test]
    fn ids_look_like_ec2s() {
        let id = new_id("tms");
        assert_eq!(id.len(), 4 + 17);
        assert!(id[4..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn state_survives_a_save_and_an_open() {
        let dir = std::env::temp_dir().join(format!("fg-mirror-{}", std::process::id()));
        let path = dir.join("mirror.json");
        let mut s = MirrorStore::open(&path).unwrap();
        s.state.targets.insert(
            "tmt-1".into(),
            Target {
                id: "tmt-1".into(),
                network_interface_id: "eni-b".into(),
                description: Some("collector".into()),
                tags: vec![],
            },
        );
        s.created("tmt-1");
        s.save().unwrap();
        let again = MirrorStore::open(&path).unwrap();
        assert_eq!(again.state, s.state);
        // A file without creation orders (edited by hand): each object gets
        // one after the others, so describes still list it.
        s.state
            .targets
            .insert("tmt-2".into(), s.state.targets["tmt-1"].clone());
        s.state.order.clear();
        s.state.order.insert("tmt-2".into(), 5);
        s.state.next_seq = 1;
        std::fs::write(&path, serde_json::to_vec(&s.state).unwrap()).unwrap();
        let mended = MirrorStore::open(&path).unwrap();
        assert_eq!(mended.seq("tmt-2"), 5);
        assert_eq!(mended.seq("tmt-1"), 6);
        assert_eq!(mended.state.next_seq, 6);
        // Nor a generation: it is not the one new flows start with.
        s.state.generation = 0;
        std::fs::write(&path, serde_json::to_vec(&s.state).unwrap()).unwrap();
        assert_eq!(MirrorStore::open(&path).unwrap().state.generation, 1);
        std::fs::write(&path, b"{not json").unwrap();
        let e = MirrorStore::open(&path).unwrap_err().to_string();
        assert!(e.contains("mirror.json") && !e.contains('\n'), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn compiles_sessions_filters_and_targets() {
        let mut s = MirrorStore::in_memory();
        add_target_and_filter(&mut s, &[("tmt-1", "eni-b")]);
        s.state.rules.insert(
            "tmfr-1".into(),
            FilterRule {
                id: "tmfr-1".into(),
                filter_id: "tmf-1".into(),
                ingress: true,
                rule_number: 10,
                accept: true,
                protocol: Some(17),
                destination_ports: Some(Ports { from: 53, to: 53 }),
                source_ports: None,
                destination_cidr: "0.0.0.0/0".into(),
                source_cidr: "10.0.0.0/8".into(),
                description: None,
                tags: vec![],
            },
        );
        s.state
            .sessions
            .insert("tms-1".into(), session("tms-1", 1, "tmt-1", "tmf-1"));
        let port = |eni: &str, mac, mtu| MirrorPort {
            eni: eni.into(),
            mac,
            mtu,
        };
        let ports = vec![port("eni-a", [2; 6], 1500), port("eni-b", [4; 6], 9000)];
        let c = s.compile(&ports, &TUNNEL).unwrap();
        assert_eq!(c.session_count(), 1);
        assert_eq!(c.target_of(0).port, 1);
        assert_eq!(c.target_of(0).tunnel.src_mac, [4; 6]);
        assert_eq!(c.target_of(0).mtu, 9000);
        assert!(c.watches(0, 1));
        assert!(!c.watches(1, 1));
    }

    #[test]
    fn protocol_0_is_every_protocol_and_is_kept_as_0() {
        let mut s = MirrorStore::in_memory();
        add_target_and_filter(&mut s, &[("tmt-1", "eni-b")]);
        for (id, n, protocol) in [
            ("tmfr-1", 10, Some(0)),
            ("tmfr-2", 20, Some(6)),
            ("tmfr-3", 30, None),
        ] {
            s.state.rules.insert(
                id.into(),
                FilterRule {
                    id: id.into(),
                    filter_id: "tmf-1".into(),
                    ingress: true,
                    rule_number: n,
                    accept: true,
                    protocol,
                    destination_ports: None,
                    source_ports: None,
                    destination_cidr: "0.0.0.0/0".into(),
                    source_cidr: "0.0.0.0/0".into(),
                    description: None,
                    tags: vec![],
                },
            );
        }
        let rules = s.compiled_rules("tmf-1", true);
        let protos: Vec<ProtoSet> = rules.iter().map(|(r, _)| r.protos).collect();
        assert_eq!(protos, [ProtoSet::ANY, ProtoSet::of(&[6]), ProtoSet::ANY]);
        assert_eq!(s.state.rules["tmfr-1"].protocol, Some(0));
    }

    #[test]
    fn forward_mode_says_its_sessions_are_idle() {
        use crate::config::Mode;
        let mut s = MirrorStore::in_memory();
        add_target_and_filter(&mut s, &[("tmt-1", "eni-b")]);
        assert_eq!(s.idle_in(Mode::Forward), None, "no session, nothing to say");
        for (id, n) in [("tms-1", 1), ("tms-2", 2)] {
            let x = session(id, n, "tmt-1", "tmf-1");
            s.state.sessions.insert(x.id.clone(), x);
        }
        assert_eq!(s.idle_in(Mode::Track), None);
        let note = s.idle_in(Mode::Forward).unwrap();
        assert!(
            note.starts_with("[dataplane] mode = \"forward\" mirrors nothing: 2 traffic"),
            "{note}"
        );
    }

    #[test]
    fn a_session_on_a_port_no_longer_configured_is_left_out_alone() {
        let mut s = MirrorStore::in_memory();
        add_target_and_filter(&mut s, &[("tmt-1", "eni-b"), ("tmt-2", "eni-d")]);
        let healthy = Session {
            virtual_network_id: 42,
            ..session("tms-1", 3, "tmt-1", "tmf-1")
        };
        let gone_source = Session {
            network_interface_id: "eni-c".into(),
            ..session("tms-2", 1, "tmt-1", "tmf-1")
        };
        let gone_target = session("tms-3", 2, "tmt-2", "tmf-1");
        for x in [healthy, gone_source, gone_target] {
            s.state.sessions.insert(x.id.clone(), x);
        }
        let ports: Vec<MirrorPort> = ["eni-a", "eni-b"]
            .into_iter()
            .map(|eni| MirrorPort {
                eni: eni.into(),
                mac: [2; 6],
                mtu: 1500,
            })
            .collect();
        let c = s.compile(&ports, &TUNNEL).unwrap();
        assert_eq!(c.session_count(), 1);
        assert_eq!(c.session(0).vni, 42);
        assert_eq!(c.target_of(0).port, 1);
        assert!(c.watches(0, 1));
        let left: Vec<String> = s.left_out(&ports).iter().map(|l| l.to_string()).collect();
        assert_eq!(
            left,
            [
                "traffic mirror session tms-2 not installed: its source interface eni-c \
                 is not in [[ports]] (kept; it mirrors again once the port is back)",
                "traffic mirror session tms-3 not installed: its target interface eni-d \
                 is not in [[ports]] (kept; it mirrors again once the port is back)",
            ]
        );
        // Both missing: one line names both.
        s.state
            .sessions
            .get_mut("tms-3")
            .unwrap()
            .network_interface_id = "eni-e".into();
        assert!(s.left_out(&ports)[1]
            .to_string()
            .contains("its source interface eni-e and its target interface eni-d are not"));
    }
}
