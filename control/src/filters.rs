//! Building dataplane filters from the strings operators and API clients
//! write: CIDRs, port ranges, protocol names. Shared by the config file,
//! the Network Firewall, EC2 and F5 faces, each of which keeps its own
//! error wording.

use flowgate_dataplane::filter::{Cidr, PortRange};

/// An address or CIDR, v4 or v6 (a bare address is /32 or /128);
/// "any" is every address.
pub fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("any") {
        return Ok(Cidr::ANY);
    }
    if let Ok(net) = s.parse::<ipnet::IpNet>() {
        return Ok(Cidr::from_ip(net.addr(), net.prefix_len()));
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        let full = if ip.is_ipv4() { 32 } else { 128 };
        return Ok(Cidr::from_ip(ip, full));
    }
    Err(format!("{s:?} is not an IP address or CIDR block"))
}

/// A port or range with the given separator ("80", "1000-2000" with '-',
/// "1990:1994" with ':'); "any" (any case) is every port.
pub fn parse_ports(s: &str, sep: char) -> Result<PortRange, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("any") {
        return Ok(PortRange::ANY);
    }
    let port = |p: &str| -> Result<u16, String> {
        p.trim()
            .parse::<u16>()
            .map_err(|_| format!("{p:?} is not a port number (0-65535)"))
    };
    match s.split_once(sep) {
        None => port(s).map(PortRange::single),
        Some((a, b)) => {
            let (lo, hi) = (port(a)?, port(b)?);
            if lo > hi {
                return Err(format!("port range {s:?} is reversed"));
            }
            Ok(PortRange { lo, hi })
        }
    }
}

/// A protocol name (tcp, udp, icmp, icmpv6, sctp, gre, esp, ah) or number.
pub fn parse_proto(s: &str) -> Result<u8, String> {
    let n = match s.trim().to_ascii_lowercase().as_str() {
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmpv6" | "ipv6-icmp" => 58,
        "sctp" => 132,
        other => other
            .parse::<u8>()
            .map_err(|_| format!("{s:?} is not a protocol name or number (0-255)"))?,
    };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowgate_dataplane::flow::AddrFamily;

    #[test]
    fn cidrs() {
        assert_eq!(parse_cidr("any").unwrap(), Cidr::ANY);
        assert_eq!(parse_cidr("10.1.2.3").unwrap(), Cidr::v4([10, 1, 2, 3], 32));
        assert_eq!(
            parse_cidr("10.1.2.3/8").unwrap(),
            Cidr::v4([10, 0, 0, 0], 8)
        );
        let c = parse_cidr("2001:db8::/32").unwrap();
        assert_eq!((c.family, c.prefix), (AddrFamily::V6, 32));
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("nope").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(parse_ports("ANY", ':').unwrap(), PortRange::ANY);
        assert_eq!(parse_ports("80", '-').unwrap(), PortRange::single(80));
        assert_eq!(
            parse_ports("1990:1994", ':').unwrap(),
            PortRange { lo: 1990, hi: 1994 }
        );
        assert!(parse_ports("1994:1990", ':')
            .unwrap_err()
            .contains("reversed"));
        assert!(parse_ports("70000", ':').is_err());
        assert!(parse_ports("1-2", ':').is_err());
    }

    #[test]
    fn protos() {
        assert_eq!(parse_proto("TCP").unwrap(), 6);
        assert_eq!(parse_proto("58").unwrap(), 58);
        assert!(parse_proto("bogus").is_err());
        assert!(parse_proto("300").is_err());
    }
}
