//! Traffic mirroring as EC2 does it: sessions on a port's ingress or egress,
//! filters with ordered accept/reject rules, and VXLAN-encapsulated copies.
//!
//! Control compiles its sessions, filters and targets into an immutable
//! [`MirrorConfig`] and swaps it into every worker with a command. For a
//! packet entering port A and leaving port B, the sessions watching A's
//! ingress are tried in session-number order: the first one whose filter's
//! first matching ingress rule (by rule number) says accept mirrors it; a
//! reject or no matching rule passes on to the next session. B's egress
//! sessions are tried the same way with the egress rules. The decision is
//! cached in the flow entry per direction, with the port the packet came in
//! on, and recomputed only when the configuration generation or that port
//! changes, so the steady-state cost is a few compares.
//!
//! A copy is the original frame cut to the session's packet length, behind
//! outer Ethernet / IPv4 / UDP (destination port 4789, source port from the
//! flow hash) / VXLAN with the session's VNI.

use crate::filter::{Rule, RuleSet};
use crate::flow::Tuple;
use crate::wire::ethernet::EthernetFrame;
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::udp::UdpPacket;
use crate::wire::vxlan::{self, VxlanHeader};

/// Bytes in front of a mirrored frame: Ethernet 14, IPv4 20, UDP 8, VXLAN 8.
pub const OUTER_LEN: usize = 50;

/// At most this many sessions in one configuration: a cached decision
/// keeps a session index in a byte, and 0xff marks "not yet decided".
pub const MAX_SESSIONS: usize = 254;

/// A cached decision that must be computed.
pub const UNDECIDED: u16 = 0xffff;

/// The tunnel a target's copies travel through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanTunnel {
    /// Source MAC of the outer frame (the port's own address).
    pub src_mac: [u8; 6],
    /// Destination MAC: the next hop towards the collector.
    pub dst_mac: [u8; 6],
    /// Source IPv4 address of the tunnel.
    pub src_ip: [u8; 4],
    /// The collector's IPv4 address.
    pub dst_ip: [u8; 4],
}

/// Where copies go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorTarget {
    /// Port index (config order) the copies leave by.
    pub port: usize,
    /// That port's MTU: a copy is cut so that its outer IP packet fits, as
    /// EC2 cuts copies to the target's MTU (a 1500-byte path would drop a
    /// full-size frame's copy, 50 bytes over, without a trace).
    pub mtu: u16,
    /// The tunnel.
    pub tunnel: VxlanTunnel,
}

/// A filter rule's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorAction {
    /// Mirror the packet.
    Accept,
    /// Do not mirror it (with this session).
    Reject,
}

/// One direction's rules of a filter, compiled, in rule-number order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectionRules {
    rules: RuleSet,
    actions: Vec<MirrorAction>,
}

impl DirectionRules {
    /// Rules already sorted by rule number.
    pub fn new(rules: &[(Rule, MirrorAction)]) -> DirectionRules {
        let (r, a): (Vec<Rule>, Vec<MirrorAction>) = rules.iter().copied().unzip();
        DirectionRules {
            rules: RuleSet::compile(&r),
            actions: a,
        }
    }

    /// Whether the first matching rule accepts `t`.
    #[inline]
    pub fn accepts(&self, t: &Tuple) -> bool {
        self.rules
            .first_match(t)
            .is_some_and(|i| self.actions[i] == MirrorAction::Accept)
    }
}

/// A filter: rules for traffic entering and leaving the source port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorFilter {
    /// Rules for packets entering the source port.
    pub ingress: DirectionRules,
    /// Rules for packets leaving it.
    pub egress: DirectionRules,
}

/// A session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorSession {
    /// VXLAN network identifier (24 bits).
    pub vni: u32,
    /// Bytes of the frame to copy (`None`: the whole frame).
    pub packet_length: Option<u16>,
    /// Index into [`MirrorConfig::targets`].
    pub target: usize,
    /// Index into [`MirrorConfig::filters`].
    pub filter: usize,
}

/// Why a configuration cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MirrorConfigError {
    /// More than [`MAX_SESSIONS`] sessions.
    #[error("at most {MAX_SESSIONS} mirror sessions")]
    TooManySessions,
    /// A session names a target, filter or port that does not exist.
    #[error("session {0} refers to a missing target, filter or port")]
    Dangling(usize),
}

/// Everything the workers need to mirror, immutable once built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    /// Changes whenever the configuration does (cached decisions compare it).
    pub generation: u32,
    targets: Vec<MirrorTarget>,
    filters: Vec<MirrorFilter>,
    sessions: Vec<MirrorSession>,
    /// Per port: sessions on its ingress, in session-number order.
    ingress: Vec<Vec<u8>>,
    /// Per port: sessions on its egress, in session-number order.
    egress: Vec<Vec<u8>>,
}

/// A decision: which session mirrors the packet in, and which out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    /// Session index mirroring it on its way in.
    pub ingress: Option<usize>,
    /// Session index mirroring it on its way out.
    pub egress: Option<usize>,
}

impl Decision {
    /// The cached form (`ingress + 1` in the low byte, `egress + 1` high).
    pub fn encode(self) -> u16 {
        let b = |s: Option<usize>| s.map_or(0, |i| i as u16 + 1);
        b(self.ingress) | b(self.egress) << 8
    }

    /// From the cached form.
    pub fn decode(v: u16) -> Decision {
        let s = |b: u16| (b != 0).then(|| b as usize - 1);
        Decision {
            ingress: s(v & 0xff),
            egress: s(v >> 8),
        }
    }
}

impl MirrorConfig {
    /// No sessions at all, for `ports` ports.
    pub fn empty(ports: usize) -> MirrorConfig {
        MirrorConfig {
            generation: 0,
            targets: Vec::new(),
            filters: Vec::new(),
            sessions: Vec::new(),
            ingress: vec![Vec::new(); ports],
            egress: vec![Vec::new(); ports],
        }
    }

    /// A configuration. `sessions` are (source port, session number,
    /// session); the order of evaluation is by session number.
    pub fn new(
        generation: u32,
        ports: usize,
        targets: Vec<MirrorTarget>,
        filters: Vec<MirrorFilter>,
        sessions: &[(usize, u16, MirrorSession)],
    ) -> Result<MirrorConfig, MirrorConfigError> {
        if sessions.len() > MAX_SESSIONS {
            return Err(MirrorConfigError::TooManySessions);
        }
        let mut order: Vec<usize> = (0..sessions.len()).collect();
        order.sort_by_key(|&i| sessions[i].1);
        let mut cfg = MirrorConfig {
            generation,
            targets,
            filters,
            sessions: Vec::new(),
            ..MirrorConfig::empty(ports)
        };
        for (i, (port, _, s)) in sessions.iter().enumerate() {
            if *port >= ports
                || s.target >= cfg.targets.len()
                || s.filter >= cfg.filters.len()
                || cfg.targets[s.target].port >= ports
            {
                return Err(MirrorConfigError::Dangling(i));
            }
            cfg.sessions.push(*s);
        }
        for i in order {
            let port = sessions[i].0;
            cfg.ingress[port].push(i as u8);
            cfg.egress[port].push(i as u8);
        }
        Ok(cfg)
    }

    /// Whether any session watches packets entering `in_port` or leaving `out_port`.
    #[inline(always)]
    pub fn watches(&self, in_port: usize, out_port: usize) -> bool {
        self.ingress.get(in_port).is_some_and(|v| !v.is_empty())
            || self.egress.get(out_port).is_some_and(|v| !v.is_empty())
    }

    /// Which sessions mirror a packet `t` entering `in_port` and leaving
    /// `out_port` (`usize::MAX`: it leaves by no port).
    pub fn decide(&self, t: &Tuple, in_port: usize, out_port: usize) -> Decision {
        let first = |list: Option<&Vec<u8>>, ingress: bool| {
            list?.iter().map(|&s| s as usize).find(|&s| {
                let f = &self.filters[self.sessions[s].filter];
                if ingress {
                    f.ingress.accepts(t)
                } else {
                    f.egress.accepts(t)
                }
            })
        };
        Decision {
            ingress: first(self.ingress.get(in_port), true),
            egress: first(self.egress.get(out_port), false),
        }
    }

    /// A session.
    pub fn session(&self, i: usize) -> &MirrorSession {
        &self.sessions[i]
    }

    /// A session's target.
    pub fn target_of(&self, i: usize) -> &MirrorTarget {
        &self.targets[self.sessions[i].target]
    }

    /// Number of sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Length of the copy of a `frame_len`-byte frame by session `i`.
    pub fn copy_len(&self, i: usize, frame_len: usize) -> usize {
        OUTER_LEN + self.inner_len(i, frame_len)
    }

    /// How much of a `frame_len`-byte frame session `i` copies: all of it,
    /// or its PacketLength, and no more than the target's MTU leaves room
    /// for after the outer IPv4, UDP and VXLAN headers.
    #[inline]
    fn inner_len(&self, i: usize, frame_len: usize) -> usize {
        let s = &self.sessions[i];
        let room = usize::from(self.targets[s.target].mtu).saturating_sub(OUTER_LEN - 14);
        s.packet_length
            .map_or(frame_len, |l| frame_len.min(l as usize))
            .min(room)
    }

    /// Writes session `i`'s copy of `frame` into `out` (exactly
    /// [`MirrorConfig::copy_len`] bytes); `flow_hash` picks the outer UDP
    /// source port so a collector can spread flows.
    pub fn encapsulate(&self, i: usize, frame: &[u8], flow_hash: u32, out: &mut [u8]) {
        let inner = self.inner_len(i, frame.len());
        let (outer, rest) = out[..OUTER_LEN + inner].split_at_mut(OUTER_LEN);
        self.outer_header(i, OUTER_LEN + inner, flow_hash, outer);
        rest.copy_from_slice(&frame[..inner]);
    }

    /// Writes the outer headers (the first [`OUTER_LEN`] bytes of `out`)
    /// of session `i`'s copy of `total` bytes in all
    /// ([`MirrorConfig::copy_len`]), the copied frame to follow them.
    #[inline]
    pub fn outer_header(&self, i: usize, total: usize, flow_hash: u32, out: &mut [u8]) {
        let s = &self.sessions[i];
        let tun = &self.targets[s.target].tunnel;
        let out = &mut out[..OUTER_LEN];
        // The room comes from a reused mbuf: bits no setter names (the
        // IPv4 reserved flag) would otherwise keep what was there.
        out.fill(0);
        let mut eth = EthernetFrame::new_unchecked(&mut out[..14]);
        eth.set_dst(tun.dst_mac);
        eth.set_src(tun.src_mac);
        eth.set_ethertype(crate::wire::ethertype::IPV4);
        let ip_len = (total - 14) as u16;
        let mut ip = Ipv4Packet::new_unchecked(&mut out[14..34]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_dscp(0);
        ip.set_ecn(0);
        ip.set_total_len(ip_len);
        ip.set_ident(0);
        ip.set_dont_frag(true);
        ip.set_more_frags(false);
        ip.set_frag_offset(0);
        ip.set_ttl(64);
        ip.set_protocol(crate::wire::ip_protocol::UDP);
        ip.set_src_addr(tun.src_ip);
        ip.set_dst_addr(tun.dst_ip);
        ip.fill_checksum();
        let mut udp = UdpPacket::new_unchecked(&mut out[34..42]);
        // Ephemeral range, as RFC 7348 recommends, derived from the inner flow.
        udp.set_src_port(49152 | (flow_hash as u16 & 0x3fff));
        udp.set_dst_port(vxlan::PORT);
        udp.set_len(ip_len - 20);
        // Zero: no UDP checksum, allowed over IPv4 and usual for VXLAN.
        udp.set_checksum(0);
        VxlanHeader::new_unchecked(&mut out[42..50]).fill(s.vni);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::filter::{PortRange, ProtoSet};
    use crate::flow::key::v4_bits;
    use crate::flow::AddrFamily;

    fn t(dport: u16, proto: u8) -> Tuple {
        Tuple {
            src: v4_bits([10, 0, 0, 1]),
            dst: v4_bits([192, 0, 2, 1]),
            sport: 1000,
            dport,
            proto,
            family: AddrFamily::V4,
            vlan: 0,
        }
    }

    /// A target on `port` (for this crate's tests).
    pub(crate) fn target(port: usize) -> MirrorTarget {
        MirrorTarget {
            port,
            mtu: 1500,
            tunnel: VxlanTunnel {
                src_mac: [2, 0, 0, 0, 0, 9],
                dst_mac: [2, 0, 0, 0, 0, 8],
                src_ip: [10, 9, 0, 1],
                dst_ip: [10, 9, 0, 2],
            },
        }
    }

    fn session(filter: usize, vni: u32) -> MirrorSession {
        MirrorSession {
            vni,
            packet_length: None,
            target: 0,
            filter,
        }
    }

    #[test]
    fn rule_order_accept_reject_and_session_priority() {
        let tcp = Rule {
            protos: ProtoSet::of(&[6]),
            ..Rule::ANY
        };
        let ssh = Rule {
            dport: PortRange::single(22),
            ..tcp
        };
        // Filter 0: reject ssh, then accept tcp (ingress); egress accepts all.
        let f0 = MirrorFilter {
            ingress: DirectionRules::new(&[
                (ssh, MirrorAction::Reject),
                (tcp, MirrorAction::Accept),
            ]),
            egress: DirectionRules::new(&[(Rule::ANY, MirrorAction::Accept)]),
        };
        // Filter 1: accept everything on ingress.
        let f1 = MirrorFilter {
            ingress: DirectionRules::new(&[(Rule::ANY, MirrorAction::Accept)]),
            egress: DirectionRules::default(),
        };
        // Sessions on port 0: number 20 uses f1, number 10 uses f0 (10 goes first).
        let cfg = MirrorConfig::new(
            1,
            3,
            vec![target(2)],
            vec![f0, f1],
            &[(0, 20, session(1, 200)), (0, 10, session(0, 100))],
        )
        .unwrap();
        assert!(cfg.watches(0, 1) && !cfg.watches(1, 1));
        // TCP to 80: session 10 (index 1) accepts.
        assert_eq!(
            cfg.decide(&t(80, 6), 0, 1),
            Decision {
                ingress: Some(1),
                egress: None
            }
        );
        // SSH: session 10 rejects, session 20 (index 0) takes it.
        assert_eq!(cfg.decide(&t(22, 6), 0, 1).ingress, Some(0));
        // UDP: session 10 has no matching ingress rule, session 20 accepts.
        assert_eq!(cfg.decide(&t(53, 17), 0, 1).ingress, Some(0));
        // Leaving port 0 (a reply): egress rules of session 10.
        assert_eq!(
            cfg.decide(&t(53, 17), 1, 0),
            Decision {
                ingress: None,
                egress: Some(1)
            }
        );
        for d in [
            Decision::default(),
            Decision {
                ingress: Some(253),
                egress: Some(0),
            },
        ] {
            assert_eq!(Decision::decode(d.encode()), d);
            assert_ne!(d.encode(), UNDECIDED);
        }
    }

    #[test]
    fn dangling_and_too_many() {
        assert_eq!(
            MirrorConfig::new(
                1,
                2,
                vec![target(5)],
                vec![MirrorFilter::default()],
                &[(0, 1, session(0, 1))]
            ),
            Err(MirrorConfigError::Dangling(0))
        );
        let many: Vec<_> = (0..255).map(|i| (0, i as u16, session(0, 1))).collect();
        assert_eq!(
            MirrorConfig::new(1, 2, vec![target(1)], vec![MirrorFilter::default()], &many),
            Err(MirrorConfigError::TooManySessions)
        );
    }

    /// One target, one filter, one session from port 0.
    fn one_session(t: MirrorTarget, s: MirrorSession) -> MirrorConfig {
        MirrorConfig::new(1, 2, vec![t], vec![MirrorFilter::default()], &[(0, 1, s)]).unwrap()
    }

    #[test]
    fn copies_are_cut_to_the_targets_mtu() {
        // An outer IP packet of at most the MTU: 36 bytes of IPv4, UDP and
        // VXLAN headers leave MTU - 36 for the copied frame.
        let mut small = target(1);
        small.mtu = 100;
        let cfg = one_session(small, session(0, 7));
        assert_eq!(cfg.copy_len(0, 200), 50 + 64);
        assert_eq!(cfg.copy_len(0, 60), 50 + 60, "shorter frames whole");
        let frame: Vec<u8> = (0..200u8).collect();
        let mut out = vec![0u8; 114];
        cfg.encapsulate(0, &frame, 1, &mut out);
        assert_eq!(
            u16::from_be_bytes([out[16], out[17]]),
            100,
            "outer total length"
        );
        assert_eq!(out[50..], frame[..64]);
        // PacketLength below the MTU's room still decides.
        let mut s = session(0, 7);
        s.packet_length = Some(40);
        assert_eq!(one_session(target(1), s).copy_len(0, 1514), 50 + 40);
        let full = one_session(target(1), session(0, 7)).copy_len(0, 1514);
        assert_eq!(full, 50 + 1464, "a full-size frame at MTU 1500");
    }

    #[test]
    fn encapsulation_is_what_wireshark_expects() {
        let mut s = session(0, 0xabcdef);
        s.packet_length = Some(40);
        let cfg = one_session(target(1), s);
        let frame: Vec<u8> = (0..100u8).collect();
        assert_eq!(cfg.copy_len(0, frame.len()), 90);
        // Room as a reused mbuf gives it: whatever was there before.
        let mut out = vec![0xffu8; 90];
        cfg.encapsulate(0, &frame, 0x1234_5678, &mut out);
        assert_eq!(out[20..22], [0x40, 0], "DF alone in the flags and offset");
        let p = etherparse::SlicedPacket::from_ethernet(&out).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
            panic!()
        };
        assert_eq!(ip.header().total_len(), 76);
        assert_eq!(
            ip.header().to_header().calc_header_checksum(),
            ip.header().header_checksum()
        );
        let Some(etherparse::TransportSlice::Udp(u)) = &p.transport else {
            panic!()
        };
        assert_eq!(u.destination_port(), 4789);
        assert!(u.source_port() >= 49152);
        assert_eq!(u.length(), 56);
        let v = VxlanHeader::new_checked(&out[42..]).unwrap();
        assert_eq!(v.vni(), 0xabcdef);
        assert_eq!(
            v.payload(),
            &frame[..40],
            "the inner frame, cut to the packet length"
        );
    }
}
