//! The `info` summary of a capture: frame count, distinct canonical
//! 5-tuples (both directions merged) and distinct flows (5-tuple plus VLAN
//! tags), with an optional per-flow listing. Parsing uses etherparse; ports
//! are read straight from the IP payload for TCP, UDP and SCTP so that a
//! first IPv4 fragment still counts. Non-first fragments (and IPv6
//! fragments) carry no ports and are only counted; ICMP/ICMPv6 echo uses the
//! identifier as both "ports" so a request and its reply form one flow.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::net::IpAddr;
use std::path::Path;

use etherparse::{IpNumber, NetSlice, SlicedPacket};
use pcap_file::pcap::PcapReader;

use super::Result;

/// One end of a flow.
pub type Endpoint = (IpAddr, u16);

/// A flow key in canonical form: the lower endpoint first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// VLAN ids from outermost to innermost (0 = absent).
    pub vlans: [u16; 2],
    /// IP protocol number.
    pub proto: u8,
    /// The lower endpoint.
    pub lo: Endpoint,
    /// The higher endpoint.
    pub hi: Endpoint,
}

/// Per-flow counters, by direction relative to the first frame seen.
#[derive(Clone, Copy, Debug)]
pub struct FlowStats {
    /// Order in which the flow was first seen.
    pub first_seen: u64,
    /// Endpoint that sent the flow's first frame.
    pub initiator: Endpoint,
    /// Frames sent by the initiator.
    pub fwd: u64,
    /// Frames sent towards the initiator.
    pub rev: u64,
}

/// What `info` reports.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// All frames.
    pub frames: u64,
    /// Frames that are not IPv4/IPv6 (ARP, …) or that etherparse rejects.
    pub non_ip: u64,
    /// IP fragments without transport header (non-first IPv4, any IPv6).
    pub port_less_fragments: u64,
    /// Flows keyed with VLAN tags.
    pub flows: HashMap<FlowKey, FlowStats>,
}

impl Summary {
    /// Distinct canonical 5-tuples, ignoring VLAN tags.
    pub fn five_tuples(&self) -> usize {
        let mut keys: Vec<_> = self.flows.keys().map(|k| (k.proto, k.lo, k.hi)).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.len()
    }

    /// Flows sorted by first appearance.
    pub fn sorted_flows(&self) -> Vec<(&FlowKey, &FlowStats)> {
        let mut v: Vec<_> = self.flows.iter().collect();
        v.sort_by_key(|(_, s)| s.first_seen);
        v
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "frames: {}", self.frames)?;
        writeln!(f, "non-ip frames: {}", self.non_ip)?;
        writeln!(f, "port-less fragments: {}", self.port_less_fragments)?;
        writeln!(f, "5-tuples: {}", self.five_tuples())?;
        writeln!(f, "flows (with vlan): {}", self.flows.len())
    }
}

fn proto_name(p: u8) -> String {
    match IpNumber(p) {
        IpNumber::TCP => "tcp".into(),
        IpNumber::UDP => "udp".into(),
        IpNumber::ICMP => "icmp".into(),
        IpNumber::IPV6_ICMP => "icmpv6".into(),
        IpNumber::SCTP => "sctp".into(),
        _ => format!("ip-proto-{p}"),
    }
}

fn fmt_endpoint((ip, port): Endpoint) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// One line per flow, in order of first appearance:
/// `vlan=OUTER/INNER PROTO INITIATOR -> RESPONDER fwd=N rev=M`.
pub fn flow_lines(s: &Summary) -> Vec<String> {
    s.sorted_flows()
        .into_iter()
        .map(|(k, st)| {
            let other = if k.lo == st.initiator { k.hi } else { k.lo };
            format!(
                "vlan={}/{} {} {} -> {} fwd={} rev={}",
                k.vlans[0],
                k.vlans[1],
                proto_name(k.proto),
                fmt_endpoint(st.initiator),
                fmt_endpoint(other),
                st.fwd,
                st.rev
            )
        })
        .collect()
}

/// Ports of a transport payload, or `None` when they cannot be known.
fn ports(proto: IpNumber, payload: &[u8]) -> Option<(u16, u16)> {
    let be = |i: usize| u16::from_be_bytes([payload[i], payload[i + 1]]);
    match proto {
        IpNumber::TCP | IpNumber::UDP | IpNumber::SCTP if payload.len() >= 4 => {
            Some((be(0), be(2)))
        }
        // Echo request/reply: the identifier on both sides.
        IpNumber::ICMP if payload.len() >= 8 && matches!(payload[0], 0 | 8) => Some((be(4), be(4))),
        IpNumber::IPV6_ICMP if payload.len() >= 8 && matches!(payload[0], 128 | 129) => {
            Some((be(4), be(4)))
        }
        IpNumber::TCP | IpNumber::UDP | IpNumber::SCTP => None,
        _ => Some((0, 0)),
    }
}

/// Reads and summarises the pcap at `path`.
pub fn summarize(path: &Path) -> Result<Summary> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut reader = PcapReader::new(BufReader::with_capacity(1 << 20, file))?;
    let mut s = Summary::default();
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt?;
        s.frames += 1;
        let Ok(sliced) = SlicedPacket::from_ethernet(&pkt.data) else {
            s.non_ip += 1;
            continue;
        };
        let (src, dst, payload, first_fragment) = match &sliced.net {
            Some(NetSlice::Ipv4(v4)) => (
                IpAddr::V4(v4.header().source_addr()),
                IpAddr::V4(v4.header().destination_addr()),
                v4.payload(),
                v4.header().fragments_offset().value() == 0,
            ),
            Some(NetSlice::Ipv6(v6)) => (
                IpAddr::V6(v6.header().source_addr()),
                IpAddr::V6(v6.header().destination_addr()),
                v6.payload(),
                !v6.payload().fragmented,
            ),
            _ => {
                s.non_ip += 1;
                continue;
            }
        };
        let p = payload.ip_number;
        let Some((sport, dport)) = ports(p, payload.payload).filter(|_| first_fragment) else {
            s.port_less_fragments += 1;
            continue;
        };
        let mut vlans = [0u16; 2];
        for (slot, id) in vlans.iter_mut().zip(sliced.vlan_ids()) {
            *slot = id.value();
        }
        let (a, b) = ((src, sport), (dst, dport));
        let key = FlowKey {
            vlans,
            proto: p.0,
            lo: a.min(b),
            hi: a.max(b),
        };
        let next = s.flows.len() as u64;
        let st = s.flows.entry(key).or_insert(FlowStats {
            first_seen: next,
            initiator: a,
            fwd: 0,
            rev: 0,
        });
        if st.initiator == a {
            st.fwd += 1;
        } else {
            st.rev += 1;
        }
    }
    Ok(s)
}
