//! The Internet checksum (RFC 1071), full and incremental (RFC 1624).
//!
//! The XDP program only uses the incremental updates (a handful of words per
//! rewritten frame); the full computations exist so host tests can check the
//! updates against a recompute.

/// Adds `bytes` as big-endian 16-bit words to `sum` (odd tail padded with 0).
pub fn add_words(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for w in &mut chunks {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// Folds a 32-bit one's-complement sum to 16 bits (not inverted).
#[inline(always)]
pub const fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// The checksum of an IPv4 header (with options), ignoring its checksum field.
pub fn ipv4_header(header: &[u8]) -> u16 {
    let sum = add_words(add_words(0, &header[..10]), &header[12..]);
    !fold(sum)
}

/// The UDP checksum of `segment` (header + payload, checksum field ignored)
/// between `src` and `dst`; a computed 0 is sent as 0xffff (RFC 768).
pub fn udp(src: [u8; 4], dst: [u8; 4], segment: &[u8]) -> u16 {
    let mut sum = add_words(add_words(0, &src), &dst);
    sum += u32::from(crate::wire::IPPROTO_UDP);
    sum += segment.len() as u32;
    sum = add_words(add_words(sum, &segment[..6]), &segment[8..]);
    match !fold(sum) {
        0 => 0xffff,
        c => c,
    }
}

/// RFC 1624 eqn. 3: the checksum after one covered 16-bit word changes from
/// `old` to `new`: `HC' = ~(~HC + ~m + m')`.
#[inline(always)]
pub const fn update_word(check: u16, old: u16, new: u16) -> u16 {
    let sum = (!check as u32) + (!old as u32) + (new as u32);
    !fold(sum)
}

/// [`update_word`] for a 4-byte field (an IPv4 address), word-aligned in the covered data.
#[inline(always)]
pub const fn update_addr(check: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    let c = update_word(check, u16::from_be_bytes([old[0], old[1]]), u16::from_be_bytes([new[0], new[1]]));
    update_word(c, u16::from_be_bytes([old[2], old[3]]), u16::from_be_bytes([new[2], new[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 1071 / Wikipedia example header: checksum 0xb861.
    const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0,
        0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn full_ipv4_header() {
        assert_eq!(ipv4_header(&HEADER), 0xb861);
    }

    #[test]
    fn update_matches_recompute() {
        let mut h = HEADER;
        let new_dst = [239, 1, 2, 3];
        let old_dst = [h[16], h[17], h[18], h[19]];
        h[16..20].copy_from_slice(&new_dst);
        let updated = update_addr(0xb861, old_dst, new_dst);
        assert_eq!(updated, ipv4_header(&h));
        let old = u16::from_be_bytes([h[8], h[9]]);
        h[8] = 1;
        let updated = update_word(updated, old, u16::from_be_bytes([h[8], h[9]]));
        assert_eq!(updated, ipv4_header(&h));
    }
}
