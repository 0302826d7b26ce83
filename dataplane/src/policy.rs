//! The policy: ordered rules deciding a new flow's verdict.
//!
//! Control sorts the configured rules by priority and compiles them into a
//! [`RuleSet`]; a worker evaluates it once per flow, on the flow's first
//! packet, and keeps the verdict and the deciding rule in the entry.

use crate::filter::{PortRange, Rule, RuleSet};
use crate::flow::{Tuple, Verdict};

/// What a rule decides, and who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleAction {
    /// The verdict.
    pub verdict: Verdict,
    /// The rule's id (reported as `ace_id`).
    pub rule_id: u32,
    /// The rule's group (reported as `acl_id`).
    pub group: u16,
}

/// A compiled policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    rules: RuleSet,
    actions: Vec<RuleAction>,
    default: RuleAction,
    /// The rules with their ports widened to any, for packets whose ports
    /// are not known (see [`Policy::passes_whatever_ports`]).
    any_ports: RuleSet,
    /// Per rule: whether it names ports.
    names_ports: Vec<bool>,
}

impl Policy {
    /// Rules in evaluation order (already sorted by priority) and what
    /// applies when none matches.
    pub fn new(rules: &[(Rule, RuleAction)], default: RuleAction) -> Policy {
        let (r, a): (Vec<Rule>, Vec<RuleAction>) = rules.iter().copied().unzip();
        let widened: Vec<Rule> = r
            .iter()
            .map(|r| Rule {
                sport: PortRange::ANY,
                dport: PortRange::ANY,
                ..*r
            })
            .collect();
        Policy {
            rules: RuleSet::compile(&r),
            actions: a,
            default,
            any_ports: RuleSet::compile(&widened),
            names_ports: r
                .iter()
                .map(|r| r.sport != PortRange::ANY || r.dport != PortRange::ANY)
                .collect(),
        }
    }

    /// Passes everything (rule 0, group 0).
    pub fn pass_all() -> Policy {
        Policy::new(
            &[],
            RuleAction {
                verdict: Verdict::Pass,
                rule_id: 0,
                group: 0,
            },
        )
    }

    /// The decision for a flow whose first packet is `t` (source = opener).
    #[inline]
    pub fn decide(&self, t: &Tuple) -> RuleAction {
        match self.rules.first_match(t) {
            Some(i) => self.actions[i],
            None => self.default,
        }
    }

    /// The verdict for a flow picked up mid-stream, whose first packet
    /// seen may be the answer (a server's segment after a flush): the rule
    /// that comes first in either direction decides, the default last; and
    /// whether it matched the reversed tuple, i.e. the flow was opened from
    /// the other side. Deciding on the packet's own direction alone would
    /// turn "pass to the server's port 80" into the default for a download
    /// picked up from the server's side. Out of line: flows are picked up
    /// mid-stream rarely.
    #[cold]
    #[inline(never)]
    pub fn decide_either_way(&self, t: &Tuple) -> (RuleAction, bool) {
        let seen = self.rules.first_match(t);
        let answered = self.rules.first_match(&t.reversed());
        match (seen, answered) {
            (Some(a), Some(b)) if b < a => (self.actions[b], true),
            (Some(a), _) => (self.actions[a], false),
            (None, Some(b)) => (self.actions[b], true),
            (None, None) => (self.default, false),
        }
    }

    /// Whether a packet whose ports are not known (a later fragment whose
    /// first was not seen) would pass whatever its ports were, as the
    /// opener's packet or as the answer: the first rule that matches it
    /// whatever its ports decides, and every rule before it that could
    /// match, given some ports, must pass too. A policy that could drop it
    /// drops it, since letting it by would let a fragment through that the
    /// rules stop in its flow. Out of line: such fragments are rare.
    #[cold]
    #[inline(never)]
    pub fn passes_whatever_ports(&self, t: &Tuple) -> bool {
        self.passes_one_way(t) || self.passes_one_way(&t.reversed())
    }

    fn passes_one_way(&self, t: &Tuple) -> bool {
        for i in self.any_ports.each_match(t) {
            if self.actions[i].verdict != Verdict::Pass {
                return false;
            }
            if !self.names_ports[i] {
                return true;
            }
        }
        self.default.verdict == Verdict::Pass
    }

    /// Number of rules (the default not counted).
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// Whether only the default applies.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{PortRange, ProtoSet};
    use crate::flow::key::v4_bits;
    use crate::flow::AddrFamily;

    #[test]
    fn first_matching_rule_decides_else_default() {
        let ssh = RuleAction {
            verdict: Verdict::Reject,
            rule_id: 22,
            group: 1,
        };
        let udp = RuleAction {
            verdict: Verdict::Drop,
            rule_id: 53,
            group: 1,
        };
        let dflt = RuleAction {
            verdict: Verdict::Pass,
            rule_id: 0,
            group: 0,
        };
        let p = Policy::new(
            &[
                (
                    Rule {
                        dport: PortRange::single(22),
                        protos: ProtoSet::of(&[6]),
                        ..Rule::ANY
                    },
                    ssh,
                ),
                (
                    Rule {
                        protos: ProtoSet::of(&[17]),
                        ..Rule::ANY
                    },
                    udp,
                ),
            ],
            dflt,
        );
        let t = |dport, proto| Tuple {
            src: v4_bits([10, 0, 0, 1]),
            dst: v4_bits([10, 0, 0, 2]),
            sport: 999,
            dport,
            proto,
            family: AddrFamily::V4,
            vlan: 0,
        };
        assert_eq!(p.decide(&t(22, 6)), ssh);
        assert_eq!(p.decide(&t(22, 17)), udp);
        assert_eq!(p.decide(&t(80, 6)), dflt);
        assert_eq!(Policy::pass_all().decide(&t(1, 1)).verdict, Verdict::Pass);
    }

    #[test]
    fn a_packet_without_ports_passes_only_where_no_ports_could_drop_it() {
        let act = |verdict| RuleAction {
            verdict,
            rule_id: 1,
            group: 1,
        };
        let (pass, drop) = (act(Verdict::Pass), act(Verdict::Drop));
        let inside = crate::filter::Cidr::v4([10, 0, 0, 0], 8);
        let udp = ProtoSet::of(&[17]);
        let dns = Rule {
            dport: PortRange::single(53),
            protos: udp,
            ..Rule::ANY
        };
        let from_inside = Rule {
            src: inside,
            ..Rule::ANY
        };
        let ssh = Rule {
            dport: PortRange::single(22),
            protos: ProtoSet::of(&[6]),
            ..Rule::ANY
        };
        let any_udp = Rule {
            protos: udp,
            ..Rule::ANY
        };
        // A fragment's tuple: no ports.
        let frag = |src: [u8; 4], dst: [u8; 4], proto| Tuple {
            src: v4_bits(src),
            dst: v4_bits(dst),
            sport: 0,
            dport: 0,
            proto,
            family: AddrFamily::V4,
            vlan: 0,
        };
        let (client, server) = ([10, 0, 0, 1], [192, 0, 2, 1]);
        for (rules, default, t, want) in [
            (vec![], pass, frag(client, server, 17), true),
            (vec![], drop, frag(client, server, 17), false),
            // Passed to port 53 only: other ports would be dropped.
            (vec![(dns, pass)], drop, frag(client, server, 17), false),
            // Everything from inside passes, whatever the ports, either
            // way (the answer of a flow opened from inside).
            (
                vec![(from_inside, pass)],
                drop,
                frag(client, server, 6),
                true,
            ),
            (
                vec![(from_inside, pass)],
                drop,
                frag(server, client, 6),
                true,
            ),
            (
                vec![(from_inside, pass)],
                drop,
                frag(server, [192, 0, 2, 2], 6),
                false,
            ),
            // Port 22 dropped: a TCP fragment could be SSH, a UDP one not.
            (vec![(ssh, drop)], pass, frag(client, server, 6), false),
            (vec![(ssh, drop)], pass, frag(client, server, 17), true),
            // A port rule that passes, then one that drops whatever the
            // ports: the fragment may be either.
            (
                vec![(dns, pass), (any_udp, drop)],
                pass,
                frag(client, server, 17),
                false,
            ),
            // Dropped from inside, but as the answer of a DNS query from
            // the server it would pass.
            (
                vec![(dns, pass), (from_inside, drop)],
                pass,
                frag(client, server, 17),
                true,
            ),
            // A rule that drops after one that passes whatever the ports:
            // never reached.
            (
                vec![(from_inside, pass), (ssh, drop)],
                drop,
                frag(client, server, 6),
                true,
            ),
        ] {
            let p = Policy::new(&rules, default);
            assert_eq!(
                p.passes_whatever_ports(&t),
                want,
                "{rules:?} {default:?} {t:?}"
            );
        }
    }
}
