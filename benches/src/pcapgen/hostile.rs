//! The hostile capture: frames built to break a parser or a flow table,
//! interleaved with valid frames, so a replay shows both that nothing
//! crashes and that forwarding continues.
//!
//! Contents (deterministic for a seed): random bytes of every length class
//! (0..=1600); every truncation of a set of valid frames (IPv4/IPv6,
//! TCP/UDP/ICMP/SCTP, VLAN, QinQ, IPv4 options, IPv6 extension headers);
//! IPv6 extension-header chains at the parser's limit (8) and past it;
//! overlapping, tiny and oversized-offset IPv4 fragments; lying length
//! fields; and, after every ten hostile frames, one valid UDP frame.

use std::path::Path;
use std::time::Duration;

use etherparse::PacketBuilder;

use super::writer::PcapOut;
use super::Result;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// A small deterministic generator (xorshift64*), so the capture is the
/// same for a seed on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Valid frames whose every prefix is also written.
fn valid_frames() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut push = |f: Vec<u8>| out.push(f);
    let payload = [0x5a; 40];
    let mut v = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv4([10, 0, 0, 1], [192, 0, 2, 1], 64)
        .tcp(40000, 80, 1, 1000)
        .syn()
        .write(&mut v, &[])
        .unwrap();
    push(v);
    let mut v = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv4([10, 0, 0, 1], [192, 0, 2, 1], 64)
        .udp(5000, 53)
        .write(&mut v, &payload)
        .unwrap();
    push(v);
    let mut v = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv6([0xfd; 16], [0x20; 16], 64)
        .tcp(1, 2, 3, 4)
        .ack(5)
        .write(&mut v, &payload)
        .unwrap();
    push(v);
    let mut v = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .single_vlan(100.try_into().unwrap())
        .ipv4([10, 0, 0, 2], [192, 0, 2, 2], 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut v, &payload)
        .unwrap();
    push(v);
    let mut v = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .double_vlan(300.try_into().unwrap(), 30.try_into().unwrap())
        .ipv6([0xfd; 16], [0x20; 16], 64)
        .icmpv6_echo_request(9, 9)
        .write(&mut v, &payload)
        .unwrap();
    push(v);
    // IPv4 with options (IHL 8) carrying UDP.
    let mut v = ipv4_raw(
        [10, 0, 0, 3],
        [192, 0, 2, 3],
        17,
        0,
        false,
        8,
        &udp_bytes(7, 7, &payload),
    );
    push(std::mem::take(&mut v));
    // IPv6 with hop-by-hop + destination options in front of UDP.
    push(ipv6_chain(&[0, 60], 17, &udp_bytes(9, 9, &payload)));
    // SCTP (common header + a chunk header).
    let mut sctp = vec![0u8; 16];
    sctp[0..2].copy_from_slice(&5000u16.to_be_bytes());
    sctp[2..4].copy_from_slice(&38412u16.to_be_bytes());
    push(ipv4_raw(
        [10, 0, 0, 4],
        [192, 0, 2, 4],
        132,
        0,
        false,
        5,
        &sctp,
    ));
    out
}

fn udp_bytes(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// An Ethernet + IPv4 frame, header length `ihl` words (options zero),
/// fragment offset `off` (8-byte units) and more-fragments `mf`.
fn ipv4_raw(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    off: u16,
    mf: bool,
    ihl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let hl = ihl as usize * 4;
    let mut f = Vec::with_capacity(14 + hl + payload.len());
    f.extend_from_slice(&B);
    f.extend_from_slice(&A);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0u8; hl];
    ip[0] = 0x40 | ihl;
    ip[2..4].copy_from_slice(&((hl + payload.len()) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&0x4242u16.to_be_bytes());
    ip[6..8].copy_from_slice(&((off & 0x1fff) | if mf { 0x2000 } else { 0 }).to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let sum = etherparse::checksum::Sum16BitWords::new()
        .add_slice(&ip)
        .ones_complement();
    ip[10..12].copy_from_slice(&sum.to_ne_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(payload);
    f
}

/// An Ethernet + IPv6 frame with the given chain of 8-byte extension
/// headers (by protocol number) in front of `upper`.
fn ipv6_chain(chain: &[u8], upper_proto: u8, upper: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&B);
    f.extend_from_slice(&A);
    f.extend_from_slice(&[0x86, 0xdd]);
    let payload_len = chain.len() * 8 + upper.len();
    let mut ip = vec![0u8; 40];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&(payload_len as u16).to_be_bytes());
    ip[6] = chain.first().copied().unwrap_or(upper_proto);
    ip[7] = 64;
    ip[8..24].copy_from_slice(&[0xfd; 16]);
    ip[24..40].copy_from_slice(&[0x20; 16]);
    f.extend_from_slice(&ip);
    for (i, _) in chain.iter().enumerate() {
        let next = chain.get(i + 1).copied().unwrap_or(upper_proto);
        let mut h = [0u8; 8];
        h[0] = next;
        h[1] = 0; // 8 bytes
        if chain[i] == 44 {
            h[3] = 0; // offset 0, no more fragments: an atomic fragment
        }
        f.extend_from_slice(&h);
    }
    f.extend_from_slice(upper);
    f
}

/// Writes the hostile capture; returns (frames written, valid frames among them).
pub fn write_hostile(path: &Path, seed: u64, random: usize) -> Result<(u64, u64)> {
    let mut out = PcapOut::create(
        path,
        Duration::from_secs(1_704_067_200),
        Duration::from_micros(10),
    )?;
    let mut rng = Rng(seed | 1);
    let mut hostile: Vec<Vec<u8>> = Vec::new();

    // Random bytes, in every size class, some behind IP EtherTypes.
    for i in 0..random {
        let len = (rng.next() % 1601) as usize;
        let mut f: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if len >= 14 && i % 3 == 0 {
            let et: &[u8] = [&[0x08, 0x00][..], &[0x86, 0xdd][..], &[0x81, 0x00][..]][i % 9 / 3];
            f[12..14].copy_from_slice(et);
        }
        hostile.push(f);
    }
    // Every truncation of every valid frame.
    for v in valid_frames() {
        for cut in 0..v.len() {
            hostile.push(v[..cut].to_vec());
        }
    }
    // IPv6 extension-header chains: at the limit, past it, and looping on
    // hop-by-hop in the wrong place.
    let udp = udp_bytes(1, 2, &[0; 8]);
    hostile.push(ipv6_chain(&[0, 60, 43, 60, 60, 60, 60, 60], 17, &udp));
    hostile.push(ipv6_chain(&[0, 60, 43, 60, 60, 60, 60, 60, 60], 17, &udp));
    hostile.push(ipv6_chain(&[60, 0], 17, &udp));
    hostile.push(ipv6_chain(&[44, 44], 17, &udp));
    hostile.push(ipv6_chain(&[60; 32], 17, &udp));
    // Fragments: overlapping, tiny (RFC 1858), and past 65535.
    let data = [0x11u8; 64];
    hostile.push(ipv4_raw(
        [10, 0, 9, 1],
        [192, 0, 2, 9],
        17,
        0,
        true,
        5,
        &udp_bytes(7, 7, &data[..24]),
    ));
    hostile.push(ipv4_raw(
        [10, 0, 9, 1],
        [192, 0, 2, 9],
        17,
        1,
        true,
        5,
        &data[..32],
    ));
    hostile.push(ipv4_raw(
        [10, 0, 9, 1],
        [192, 0, 2, 9],
        17,
        2,
        false,
        5,
        &data,
    ));
    hostile.push(ipv4_raw(
        [10, 0, 9, 2],
        [192, 0, 2, 9],
        6,
        0,
        true,
        5,
        &data[..8],
    ));
    hostile.push(ipv4_raw(
        [10, 0, 9, 2],
        [192, 0, 2, 9],
        6,
        1,
        false,
        5,
        &data[..20],
    ));
    hostile.push(ipv4_raw(
        [10, 0, 9, 3],
        [192, 0, 2, 9],
        17,
        8190,
        false,
        5,
        &data,
    ));
    // Lying length fields.
    let mut v = ipv4_raw(
        [10, 0, 9, 4],
        [192, 0, 2, 9],
        17,
        0,
        false,
        5,
        &udp_bytes(1, 2, &data),
    );
    v[16..18].copy_from_slice(&65535u16.to_be_bytes());
    hostile.push(v);
    let mut v = ipv4_raw(
        [10, 0, 9, 4],
        [192, 0, 2, 9],
        17,
        0,
        false,
        5,
        &udp_bytes(1, 2, &data),
    );
    v[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&9000u16.to_be_bytes());
    hostile.push(v);
    let mut v = ipv4_raw([10, 0, 9, 4], [192, 0, 2, 9], 6, 0, false, 5, &[0u8; 20]);
    v[14 + 20 + 12] = 0xf0; // TCP data offset 60 bytes in a 20-byte segment
    hostile.push(v);

    let mut valid = 0u64;
    for (i, f) in hostile.iter().enumerate() {
        out.push(f)?;
        if i % 10 == 9 {
            let mut good = Vec::new();
            PacketBuilder::ethernet2(A, B)
                .ipv4([10, 1, (i >> 8) as u8, i as u8], [192, 0, 2, 200], 64)
                .udp(10000 + (i % 50000) as u16, 53)
                .write(&mut good, b"still forwarding")
                .unwrap();
            out.push(&good)?;
            valid += 1;
        }
    }
    let total = out.finish()?;
    Ok((total, valid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_mixed() {
        let dir = std::env::temp_dir().join(format!("fg-hostile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.pcap"), dir.join("b.pcap"));
        let (n, valid) = write_hostile(&a, 7, 500).unwrap();
        write_hostile(&b, 7, 500).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert!(n > 1000 && valid > 90, "{n} {valid}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The hand-built headers carry a checksum that verifies, with options
    /// too, so their lies reach the checks past the header checksum.
    #[test]
    fn raw_ipv4_headers_verify() {
        for ihl in [5u8, 6, 15] {
            let f = ipv4_raw([10, 0, 0, 1], [192, 0, 2, 1], 17, 3, true, ihl, &[0; 8]);
            let h = etherparse::Ipv4HeaderSlice::from_slice(&f[14..]).unwrap();
            assert_eq!(
                h.header_checksum(),
                h.to_header().calc_header_checksum(),
                "ihl {ihl}"
            );
        }
    }
}
