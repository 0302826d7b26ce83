//! Writing EC2 query-protocol responses: members by their `locationName`,
//! list members wrapped in `<item>`.
//!
//! Every string written goes through [`text`], so no stored value or
//! echoed input can make a document that a strict parser (botocore's
//! expat) refuses.

use std::borrow::Cow;

use crate::mirror_store::{Filter, FilterRule, MirrorStore, Ports, Session, Tag, Target};

/// Whether XML 1.0 allows `c` anywhere in a document (its `Char`
/// production); the others are refused even as character references.
/// Surrogates cannot occur in a `char`.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `s` as XML character data. Beyond the five markup characters, `\r` is
/// written as a reference because a parser turns a bare one into `\n`, and a
/// character XML 1.0 forbids becomes U+FFFD: input is checked, but values
/// stored before that check, and ids or names echoed in errors, must not
/// break the document.
pub fn text(s: &str) -> Cow<'_, str> {
    let plain = |c: char| is_xml_char(c) && !matches!(c, '<' | '>' | '&' | '\'' | '"' | '\r');
    if s.chars().all(plain) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push(char::REPLACEMENT_CHARACTER),
        }
    }
    Cow::Owned(out)
}

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
        self.0.push_str(&text(&v));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character XML 1.0 forbids, and every one it allows at the
    /// edges of its ranges.
    fn edges() -> String {
        let mut s: String = (0u32..0x20).filter_map(char::from_u32).collect();
        for c in [
            0x7f, 0x80, 0x9f, 0xd7ff, 0xe000, 0xfffd, 0xfffe, 0xffff, 0x10000, 0x10ffff,
        ] {
            s.push(char::from_u32(c).unwrap());
        }
        s + "<>&'\""
    }

    #[test]
    fn xml_chars_are_those_of_xml_1_0() {
        let allowed: Vec<u32> = (0u32..0x20)
            .chain([0xfffe, 0xffff])
            .filter(|&c| is_xml_char(char::from_u32(c).unwrap()))
            .collect();
        assert_eq!(allowed, [0x9, 0xa, 0xd]);
        for c in [0x20, 0x7f, 0xd7ff, 0xe000, 0xfffd, 0x10000, 0x10ffff] {
            assert!(is_xml_char(char::from_u32(c).unwrap()), "{c:#x}");
        }
    }

    #[test]
    fn a_leaf_with_every_control_character_stays_well_formed() {
        let value = edges();
        let mut doc = Xml::response("DescribeTrafficMirrorFilters", "r1");
        doc.leaf("description", &value);
        let doc = doc.finish("DescribeTrafficMirrorFilters");
        // quick-xml does not check characters: check them directly, as a
        // strict parser (expat) would.
        assert!(doc.chars().all(is_xml_char), "{doc:?}");
        assert!(!doc.contains('\r'), "a bare CR reads back as LF");
        // And it reads back as the value, forbidden characters replaced.
        let mut r = quick_xml::Reader::from_str(&doc);
        let mut got = None;
        loop {
            match r.read_event().unwrap() {
                quick_xml::events::Event::Text(t) => got
                    .get_or_insert(String::new())
                    .push_str(&t.xml_content().unwrap()),
                quick_xml::events::Event::GeneralRef(g) => {
                    let name = g.decode().unwrap();
                    let c = match name.as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        _ => g.resolve_char_ref().unwrap().unwrap(),
                    };
                    got.get_or_insert(String::new()).push(c);
                }
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        let want: String = value
            .chars()
            .map(|c| if is_xml_char(c) { c } else { '\u{fffd}' })
            .collect();
        assert!(got.unwrap().ends_with(&want));
    }

    #[test]
    fn plain_text_is_not_copied() {
        assert!(matches!(text("tmf-0123 a description"), Cow::Borrowed(_)));
        assert_eq!(text("a\rb\u{1}c&"), "a&#13;b\u{fffd}c&amp;");
    }
}
