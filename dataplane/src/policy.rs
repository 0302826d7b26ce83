//! The policy: ordered rules deciding a new flow's verdict.
//!
//! Control sorts the configured rules by priority and compiles them into a
//! [`RuleSet`]; a worker evaluates it once per flow, on the flow's first
//! packet, and keeps the verdict and the deciding rule in the entry.

use crate::filter::{Rule, RuleSet};
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
}

impl Policy {
    /// Rules in evaluation order (already sorted by priority) and what
    /// applies when none matches.
    pub fn new(rules: &[(Rule, RuleAction)], default: RuleAction) -> Policy {
        let (r, a): (Vec<Rule>, Vec<RuleAction>) = rules.iter().copied().unzip();
        Policy {
            rules: RuleSet::compile(&r),
            actions: a,
            default,
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
}
