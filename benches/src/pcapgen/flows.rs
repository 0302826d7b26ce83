//! The `flows` generator: N distinct IPv4 flows (UDP or TCP), one frame per
//! flow and optionally one reply frame right after it, every frame exactly
//! `frame_size - 4` bytes long in the pcap (the 4-byte FCS is not captured
//! but testpmd and NIC counters count it, so `--frame-size 64` means 60-byte
//! pcap records that a NIC sends as 64-byte frames). Frames are streamed to
//! the file, and the flow order is a cheap keyed permutation so that
//! consecutive frames belong to unrelated flows.
//!
//! Flow `j` (0 ≤ j < N) is
//! `10.0.0.0 + 1 + j mod (2^24 - 2)` : `1025 + j mod 64511` →
//! `192.0.2.1` : [`UDP_PORT`] or [`TCP_PORT`]. Both moduli are coprime, so
//! the (address, port) pair is distinct for every j below their product
//! (over 10^12); consecutive flows differ in both address and port.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use etherparse::{IpHeaders, IpNumber, Ipv4Header, PacketBuilder, TcpHeader};

use super::frame::{Tags, ETH_MIN_NO_FCS, FCS_LEN};
use super::writer::{PcapOut, EPOCH_2024};
use super::Result;

/// Destination (server) port of UDP flows: echo. Client ports span
/// 1025..=65535 and many of them are registered with some tshark dissector
/// that would choke on the zero-filled payload; tshark tries the lower port
/// first, and its echo dissector takes any payload, so captures stay clean.
pub const UDP_PORT: u16 = 7;
/// Destination (server) port of TCP flows: echo, for the same reason.
pub const TCP_PORT: u16 = 7;
/// Smallest accepted `--frame-size` (the Ethernet minimum, FCS included).
pub const MIN_FRAME_SIZE: usize = ETH_MIN_NO_FCS + FCS_LEN;
/// Largest accepted `--frame-size` (a common jumbo-frame limit).
pub const MAX_FRAME_SIZE: usize = 9216;
/// Time between consecutive frames.
pub const STEP: Duration = Duration::from_micros(1);

const HOSTS: u64 = (1 << 24) - 2;
const PORTS: u64 = 65535 - 1025 + 1;
const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x0a, 0x00, 0x00, 0x01];
const ROUTER_MAC: [u8; 6] = [0x02, 0x00, 0xc0, 0x00, 0x02, 0x01];
const SERVER_IP: [u8; 4] = [192, 0, 2, 1];

/// Transport protocol of generated flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    /// UDP datagrams; the reply is a datagram back.
    Udp,
    /// TCP SYN (carrying the fill bytes as data); the reply is a SYN+ACK.
    Tcp,
}

/// What `flows` generates.
#[derive(Clone, Copy, Debug)]
pub struct FlowsConfig {
    /// Number of distinct flows.
    pub count: u64,
    /// Transport protocol.
    pub proto: Proto,
    /// Frame size on the wire, FCS included; pcap records are 4 bytes shorter.
    pub frame_size: usize,
    /// Emit a reply frame right after each flow's first frame.
    pub reply: bool,
    /// Permutation key: the flow set is the same for every seed, the order differs.
    pub seed: u64,
    /// Tag every frame with this 802.1Q VLAN id.
    pub vlan: Option<u16>,
    /// Server port instead of the protocol's default (9 for UDP), so two
    /// captures can hold disjoint flow sets that a port filter tells apart.
    pub dport: Option<u16>,
}

/// One flow's addresses and ports, client side first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowTuple {
    /// Client (inside) address.
    pub src: Ipv4Addr,
    /// Server (outside) address.
    pub dst: Ipv4Addr,
    /// Client port.
    pub sport: u16,
    /// Server port.
    pub dport: u16,
}

/// The 5-tuple of flow `j` (see the module doc).
pub fn flow_tuple(j: u64, proto: Proto) -> FlowTuple {
    FlowTuple {
        src: Ipv4Addr::from((10u32 << 24) + 1 + (j % HOSTS) as u32),
        dst: Ipv4Addr::from(SERVER_IP),
        sport: 1025 + (j % PORTS) as u16,
        dport: match proto {
            Proto::Udp => UDP_PORT,
            Proto::Tcp => TCP_PORT,
        },
    }
}

/// SplitMix64 finaliser, to derive permutation keys from the seed.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A keyed permutation of `0..n`: a bijection on `0..2^bits` (odd
/// multiplies, an add and xor-shifts, all modulo `2^bits`) with cycle
/// walking to stay below `n`. Since `2^bits < 2n`, that takes under two
/// steps on average.
#[derive(Clone, Debug)]
pub struct Shuffle {
    n: u64,
    mask: u64,
    shift: u32,
    mul1: u64,
    add: u64,
    mul2: u64,
}

impl Shuffle {
    /// A permutation of `0..n` keyed by `seed`.
    pub fn new(n: u64, seed: u64) -> Self {
        let bits = (64 - n.saturating_sub(1).leading_zeros()).max(1);
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1 << bits) - 1
        };
        Shuffle {
            n,
            mask,
            shift: bits / 2 + 1,
            mul1: mix(seed) | 1,
            add: mix(seed ^ 0x5555),
            mul2: mix(seed ^ 0xaaaa) | 1,
        }
    }

    fn step(&self, mut x: u64) -> u64 {
        x = x.wrapping_mul(self.mul1).wrapping_add(self.add) & self.mask;
        x ^= x >> self.shift;
        x = x.wrapping_mul(self.mul2) & self.mask;
        x ^ (x >> self.shift)
    }

    /// The image of `i` (which must be below `n`).
    pub fn get(&self, i: u64) -> u64 {
        debug_assert!(i < self.n);
        let mut x = self.step(i);
        while x >= self.n {
            x = self.step(x);
        }
        x
    }
}

/// Header bytes before the payload for this configuration.
fn header_len(cfg: &FlowsConfig) -> usize {
    let l4 = match cfg.proto {
        Proto::Udp => 8,
        Proto::Tcp => 20,
    };
    14 + if cfg.vlan.is_some() { 4 } else { 0 } + 20 + l4
}

/// Checks the configuration; returns the payload length of every frame.
pub fn validate(cfg: &FlowsConfig) -> Result<usize> {
    if cfg.count == 0 {
        return Err("--count must be at least 1".into());
    }
    if cfg.count > u64::from(u32::MAX) {
        return Err(format!("--count must be at most {}", u32::MAX).into());
    }
    if !(MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&cfg.frame_size) {
        return Err(format!(
            "--frame-size must be between {MIN_FRAME_SIZE} and {MAX_FRAME_SIZE} (FCS included)"
        )
        .into());
    }
    if let Some(v) = cfg.vlan {
        if v == 0 || v >= 4095 {
            return Err("--vlan must be between 1 and 4094".into());
        }
    }
    Ok(cfg.frame_size - FCS_LEN - header_len(cfg))
}

/// Streams the flows to `path`; returns the number of frames written.
pub fn write_flows(path: &Path, cfg: &FlowsConfig) -> Result<u64> {
    let payload_len = validate(cfg)?;
    let payload = vec![0u8; payload_len];
    let frame_len = cfg.frame_size - FCS_LEN;
    let tags = cfg.vlan.map_or(Tags::None, Tags::Dot1q);
    let shuffle = Shuffle::new(cfg.count, cfg.seed);
    let mut out = PcapOut::create(path, EPOCH_2024, STEP)?;
    let mut buf = vec![0u8; frame_len];
    for i in 0..cfg.count {
        let j = shuffle.get(i);
        let mut t = flow_tuple(j, cfg.proto);
        if let Some(p) = cfg.dport {
            t.dport = p;
        }
        let n = build_frame(&mut buf, cfg.proto, tags, &t, j, false, &payload)?;
        debug_assert_eq!(n, frame_len);
        out.push(&buf[..n])?;
        if cfg.reply {
            let n = build_frame(&mut buf, cfg.proto, tags, &t, j, true, &payload)?;
            out.push(&buf[..n])?;
        }
    }
    out.finish()
}

/// Writes flow `j`'s frame (client → server, or the reply) into `buf`.
fn build_frame(
    buf: &mut [u8],
    proto: Proto,
    tags: Tags,
    t: &FlowTuple,
    j: u64,
    reply: bool,
    payload: &[u8],
) -> Result<usize> {
    let (smac, dmac, sip, dip, sport, dport, ttl) = if reply {
        (ROUTER_MAC, CLIENT_MAC, t.dst, t.src, t.dport, t.sport, 57)
    } else {
        (CLIENT_MAC, ROUTER_MAC, t.src, t.dst, t.sport, t.dport, 64)
    };
    let mut ip = Ipv4Header::new(0, ttl, IpNumber::UDP, sip.octets(), dip.octets())
        .map_err(|e| e.to_string())?;
    ip.identification = j as u16 ^ if reply { 0x8000 } else { 0 };
    ip.dont_fragment = proto == Proto::Tcp;
    let eth = PacketBuilder::ethernet2(smac, dmac);
    let ipb = match tags {
        Tags::Dot1q(v) => eth
            .single_vlan(v.try_into().map_err(|_| "bad VLAN id")?)
            .ip(IpHeaders::Ipv4(ip, Default::default())),
        _ => eth.ip(IpHeaders::Ipv4(ip, Default::default())),
    };
    let n = match proto {
        Proto::Udp => ipb.udp(sport, dport).write_to_slice(buf, payload)?,
        Proto::Tcp => {
            // Per-flow ISNs derived from j; the SYN+ACK acks the SYN only.
            let isn_c = mix(j) as u32;
            let isn_s = mix(!j) as u32;
            let mut h = TcpHeader::new(sport, dport, if reply { isn_s } else { isn_c }, 64240);
            h.syn = true;
            if reply {
                h.ack = true;
                h.acknowledgment_number = isn_c.wrapping_add(1);
            }
            ipb.tcp_header(h).write_to_slice(buf, payload)?
        }
    };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn shuffle_is_a_permutation() {
        for n in [1u64, 2, 3, 7, 8, 9, 1000, 4097] {
            for seed in [0, 1, 42] {
                let s = Shuffle::new(n, seed);
                let seen: HashSet<u64> = (0..n).map(|i| s.get(i)).collect();
                assert_eq!(seen.len() as u64, n, "n={n} seed={seed}");
                assert!(seen.iter().all(|&x| x < n));
            }
        }
    }

    #[test]
    fn shuffle_is_not_sequential() {
        let s = Shuffle::new(1 << 20, 0);
        let adjacent = (0..1000u64)
            .filter(|&i| s.get(i + 1).abs_diff(s.get(i)) == 1)
            .count();
        assert!(adjacent < 10, "{adjacent} adjacent pairs");
    }

    #[test]
    fn tuples_are_distinct() {
        let n = 200_000;
        let seen: HashSet<FlowTuple> = (0..n).map(|j| flow_tuple(j, Proto::Udp)).collect();
        assert_eq!(seen.len() as u64, n);
        // Distinct beyond one lap of the port range too.
        assert_ne!(flow_tuple(0, Proto::Udp), flow_tuple(PORTS, Proto::Udp));
        assert_ne!(flow_tuple(0, Proto::Udp), flow_tuple(HOSTS, Proto::Udp));
    }
}
