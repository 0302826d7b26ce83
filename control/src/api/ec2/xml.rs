//! Writing EC2 query-protocol responses: members by their `locationName`,
//! list members wrapped in `<item>`.

use quick_xml::escape::escape;

use crate::mirror_store::{Filter, FilterRule, MirrorStore, Ports, Session, Tag, Target};

/// An XML document being written.
#[derive(Debug, Default)]
pub struct Xml(String);

impl Xml {
    /// `<Action>Response xmlns=...>` with the request id.
    pub fn response(action: &str, request_id: &str) -> Xml {
        Xml(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>{request_id}</requestId>"
        ))
    }

    /// Closes the document.
    pub fn finish(mut self, action: &str) -> String {
        self.0.push_str(&format!("</{action}Response>"));
        self.0
    }

    /// `<name>`.
    pub fn open(&mut self, name: &str) -> &mut Self {
        self.0.push('<');
        self.0.push_str(name);
        self.0.push('>');
        self
    }

    /// `</name>`.
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.0.push_str("</");
        self.0.push_str(name);
        self.0.push('>');
        self
    }

    /// `<name>value</name>`, escaped.
    pub fn leaf(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Self {
        let v = value.to_string();
        self.open(name);
        self.0.push_str(&escape(v.as_str()));
        self.close(name)
    }

    /// A leaf only when there is a value.
    pub fn opt(&mut self, name: &str, value: Option<impl std::fmt::Display>) -> &mut Self {
        if let Some(v) = value {
            self.leaf(name, v);
        }
        self
    }

    fn tags(&mut self, tags: &[Tag]) -> &mut Self {
        self.open("tagSet");
        for t in tags {
            self.open("item")
                .leaf("key", &t.key)
                .leaf("value", &t.value)
                .close("item");
        }
        self.close("tagSet")
    }

    fn ports(&mut self, name: &str, p: Option<Ports>) -> &mut Self {
        if let Some(p) = p {
            self.open(name)
                .leaf("fromPort", p.from)
                .leaf("toPort", p.to)
                .close(name);
        }
        self
    }

    /// A TrafficMirrorTarget's members (inside its element).
    pub fn target(&mut self, t: &Target, owner: &str) -> &mut Self {
        self.leaf("trafficMirrorTargetId", &t.id)
            .leaf("networkInterfaceId", &t.network_interface_id)
            .leaf("type", "network-interface")
            .opt("description", t.description.as_ref())
            .leaf("ownerId", owner)
            .tags(&t.tags)
    }

    /// A TrafficMirrorFilterRule's members.
    pub fn rule(&mut self, r: &FilterRule) -> &mut Self {
        self.leaf("trafficMirrorFilterRuleId", &r.id)
            .leaf("trafficMirrorFilterId", &r.filter_id)
            .leaf(
                "trafficDirection",
                if r.ingress { "ingress" } else { "egress" },
            )
            .leaf("ruleNumber", r.rule_number)
            .leaf("ruleAction", if r.accept { "accept" } else { "reject" })
            .opt("protocol", r.protocol)
            .ports("destinationPortRange", r.destination_ports)
            .ports("sourcePortRange", r.source_ports)
            .leaf("destinationCidrBlock", &r.destination_cidr)
            .leaf("sourceCidrBlock", &r.source_cidr)
            .opt("description", r.description.as_ref())
            .tags(&r.tags)
    }

    /// A TrafficMirrorFilter's members, its rules included.
    pub fn filter(&mut self, f: &Filter, store: &MirrorStore) -> &mut Self {
        self.leaf("trafficMirrorFilterId", &f.id);
        for (set, ingress) in [
            ("ingressFilterRuleSet", true),
            ("egressFilterRuleSet", false),
        ] {
            self.open(set);
            for r in store.rules_of(&f.id, ingress) {
                self.open("item").rule(r).close("item");
            }
            self.close(set);
        }
        self.open("networkServiceSet");
        for s in &f.network_services {
            self.leaf("item", s);
        }
        self.close("networkServiceSet")
            .opt("description", f.description.as_ref())
            .tags(&f.tags)
    }

    /// A TrafficMirrorSession's members.
    pub fn session(&mut self, s: &Session, owner: &str) -> &mut Self {
        self.leaf("trafficMirrorSessionId", &s.id)
            .leaf("trafficMirrorTargetId", &s.target_id)
            .leaf("trafficMirrorFilterId", &s.filter_id)
            .leaf("networkInterfaceId", &s.network_interface_id)
            .leaf("ownerId", owner)
            .opt("packetLength", s.packet_length)
            .leaf("sessionNumber", s.session_number)
            .leaf("virtualNetworkId", s.virtual_network_id)
            .opt("description", s.description.as_ref())
            .tags(&s.tags)
    }
}
