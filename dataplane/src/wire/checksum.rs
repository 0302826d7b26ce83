//! The Internet checksum (RFC 1071) and the pseudo-header sums that TCP,
//! UDP and ICMPv6 fold into theirs.
//!
//! Sums are carried as `u16` ones'-complement partial sums (folded, not yet
//! inverted) so they can be combined in any order; [`finish`] inverts. A
//! partial sum over a byte range is only combinable with the next range if
//! the first range has even length, which holds for every header split the
//! views make.

/// Ones'-complement sum of `data` as big-endian 16-bit words, an odd final
/// byte padded with zero (RFC 1071 section 4.1), folded to 16 bits.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    // 2^16 = 1 (mod 2^16 - 1), so adding 32-bit big-endian words into a wide
    // accumulator and folding at the end gives the same result as adding
    // 16-bit words with end-around carry, at a quarter of the additions.
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes(super::field::bytes(c, 0));
        acc += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for c in &mut rest {
        acc += u64::from(u16::from_be_bytes(super::field::bytes(c, 0)));
    }
    if let Some(&last) = rest.remainder().first() {
        acc += u64::from(last) << 8;
    }
    fold(acc)
}

/// Folds a wide accumulator to a 16-bit ones'-complement sum.
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    // At most four rounds: each halves the width of the carry.
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Ones'-complement addition of two partial sums.
#[inline]
pub fn combine(a: u16, b: u16) -> u16 {
    fold(u64::from(a) + u64::from(b))
}

/// The checksum to store: the inverted partial sum.
#[inline]
pub fn finish(sum: u16) -> u16 {
    !sum
}

/// The Internet checksum of `data`: `finish(sum(data))`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data))
}

/// Partial sum of the IPv4 pseudo-header (RFC 793 / RFC 768): source,
/// destination, zero, protocol, upper-layer length.
#[inline]
pub fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], protocol: u8, length: u16) -> u16 {
    let acc = u64::from(u32::from_be_bytes(src))
        + u64::from(u32::from_be_bytes(dst))
        + u64::from(protocol)
        + u64::from(length);
    fold(acc)
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 section 8.1): source,
/// destination, 32-bit upper-layer length, zeros, next header.
#[inline]
pub fn pseudo_header_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, length: u32) -> u16 {
    let s = u128::from_be_bytes(src);
    let d = u128::from_be_bytes(dst);
    let mut acc = u64::from(next_header) + u64::from(length);
    for a in [s, d] {
        acc += (a >> 64) as u64 >> 32;
        acc += (a >> 64) as u64 & 0xffff_ffff;
        acc += a as u64 >> 32;
        acc += a as u64 & 0xffff_ffff;
    }
    fold(acc)
}

/// Updates a stored checksum after one 16-bit word of the covered data
/// changed from `old` to `new`, without re-summing (RFC 1624 eqn. 3).
#[inline]
pub fn update(checksum: u16, old: u16, new: u16) -> u16 {
    !combine(combine(!checksum, !old), new)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: 16-bit words with end-around carry, straight from RFC 1071.
    fn naive(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for c in data.chunks(2) {
            let w = u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
            acc += w;
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), 0x220d);
        // Byte-order independence: the swapped input gives the swapped sum.
        let swapped = [0x01, 0x00, 0x03, 0xf2, 0xf5, 0xf4, 0xf7, 0xf6];
        assert_eq!(sum(&swapped), 0xf2dd);
    }

    #[test]
    fn ipv4_header_known_answer() {
        // A classic worked example: the header checksum is b861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(sum(&h), 0xffff);
        h[10] = 0;
        h[11] = 0;
        assert_eq!(checksum(&h), 0xb861);
    }

    #[test]
    fn odd_lengths_and_all_sizes_match_reference() {
        let mut x: u32 = 0x9e37_79b9;
        let data: Vec<u8> = (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for n in 0..data.len() {
            assert_eq!(sum(&data[..n]), naive(&data[..n]), "len {n}");
        }
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[]), 0);
        let ff = [0xffu8; 1000];
        assert_eq!(sum(&ff), 0xffff);
    }

    #[test]
    fn even_split_combines() {
        let data: Vec<u8> = (0u8..=200).collect();
        for split in (0..data.len()).step_by(2) {
            let (a, b) = data.split_at(split);
            assert_eq!(combine(sum(a), sum(b)), sum(&data));
        }
    }

    #[test]
    fn pseudo_headers_match_byte_layout() {
        let src = [192, 168, 0, 1];
        let dst = [10, 1, 2, 3];
        let mut v4 = Vec::new();
        v4.extend_from_slice(&src);
        v4.extend_from_slice(&dst);
        v4.extend_from_slice(&[0, 6, 0x05, 0xdc]);
        assert_eq!(pseudo_header_v4(src, dst, 6, 1500), sum(&v4));

        let s6: [u8; 16] = std::array::from_fn(|i| (i * 17 + 3) as u8);
        let d6: [u8; 16] = std::array::from_fn(|i| 0xff - i as u8);
        let mut v6 = Vec::new();
        v6.extend_from_slice(&s6);
        v6.extend_from_slice(&d6);
        v6.extend_from_slice(&70000u32.to_be_bytes());
        v6.extend_from_slice(&[0, 0, 0, 17]);
        assert_eq!(pseudo_header_v6(s6, d6, 17, 70000), sum(&v6));
    }

    #[test]
    fn incremental_update_matches_recompute() {
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        for new_ttl_proto in [0x3f11u16, 0x0011, 0xff11, 0x4006] {
            let old = u16::from_be_bytes([h[8], h[9]]);
            let c = u16::from_be_bytes([h[10], h[11]]);
            let upd = update(c, old, new_ttl_proto);
            h[8..10].copy_from_slice(&new_ttl_proto.to_be_bytes());
            h[10..12].copy_from_slice(&[0, 0]);
            let full = checksum(&h);
            // 0x0000 and 0xffff are the same ones'-complement value.
            assert!(upd == full || (upd, full) == (0xffff, 0) || (upd, full) == (0, 0xffff));
            h[10..12].copy_from_slice(&full.to_be_bytes());
        }
    }
}
