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

/// Whether an IPv4 header is intact, from the sum of all its 16-bit words,
/// checksum field included, taken in either byte order: that sum is all ones
/// exactly when the checksum is right (RFC 1071 4.1). The XDP program sums
/// the words as it loads them; [`ipv4_header_ok`] is the same over a slice.
#[inline(always)]
pub const fn ipv4_sum_ok(sum: u32) -> bool {
    fold(sum) == 0xffff
}

/// Whether `header` (an IPv4 header with its options) carries a correct checksum.
pub fn ipv4_header_ok(header: &[u8]) -> bool {
    ipv4_sum_ok(add_words(0, header))
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

/// A sum of checksum changes, applied in one step (RFC 1624 eqn. 3:
/// `HC' = ~(~HC + ~m + m')`, summed over every changed word `m` -> `m'`).
///
/// Words are taken in memory byte order, not network order: the Internet
/// checksum is independent of byte order (RFC 1071 section 2(B)), so a
/// checksum computed from byte-swapped words is the byte-swapped checksum,
/// and storing it the same way gives the same bytes. The XDP program then
/// loads and stores each field as one word and never swaps bytes. Four-byte
/// fields are added as one 32-bit word (`2^32 = 1` modulo `2^16 - 1`), and
/// the sum is folded once, at the end.
#[derive(Clone, Copy, Debug, Default)]
pub struct Delta(u64);

impl Delta {
    pub const ZERO: Delta = Delta(0);

    /// Adds the change of a 2-byte field at an even offset of the covered data.
    #[inline(always)]
    pub const fn word(self, old: [u8; 2], new: [u8; 2]) -> Delta {
        Delta(self.0 + (!u16::from_ne_bytes(old)) as u64 + u16::from_ne_bytes(new) as u64)
    }

    /// Adds the change of a 4-byte field at an even offset (an IPv4 address).
    #[inline(always)]
    pub const fn addr(self, old: [u8; 4], new: [u8; 4]) -> Delta {
        Delta(self.0 + (!u32::from_ne_bytes(old)) as u64 + u32::from_ne_bytes(new) as u64)
    }

    /// The checksum field `check` (as stored) after the changes, as stored.
    #[inline(always)]
    pub const fn apply(self, check: [u8; 2]) -> [u8; 2] {
        (!fold64((!u16::from_ne_bytes(check)) as u64 + self.0)).to_ne_bytes()
    }
}

/// Folds a one's-complement sum of up to 2^32 words of 32 bits to 16 bits (not inverted).
#[inline(always)]
pub const fn fold64(sum: u64) -> u16 {
    let s = (sum & 0xffff_ffff) + (sum >> 32); // < 2^33
    let s = (s & 0xffff) + (s >> 16); // < 2^17 + 2^16
    let s = (s & 0xffff) + (s >> 16); // <= 2^16 + 2
    let s = (s & 0xffff) + (s >> 16); // <= 0xffff
    s as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 1071 / Wikipedia example header: checksum 0xb861.
    const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0,
        0xa8, 0x00, 0xc7,
    ];

    /// RFC 1624 eqn. 3 for one 16-bit word in network order, folded at once:
    /// the reference [`Delta`] must agree with.
    fn update_word(check: u16, old: u16, new: u16) -> u16 {
        !fold((!check as u32) + (!old as u32) + (new as u32))
    }

    fn update_addr(check: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
        let c = update_word(check, u16::from_be_bytes([old[0], old[1]]), u16::from_be_bytes([new[0], new[1]]));
        update_word(c, u16::from_be_bytes([old[2], old[3]]), u16::from_be_bytes([new[2], new[3]]))
    }

    #[test]
    fn full_ipv4_header() {
        assert_eq!(ipv4_header(&HEADER), 0xb861);
    }

    #[test]
    fn an_intact_header_checks_in_either_byte_order() {
        assert!(ipv4_header_ok(&HEADER));
        // With 8 bytes of options (IHL 7) and its checksum recomputed.
        let mut h = [HEADER.as_slice(), &[1, 1, 1, 0, 0x94, 4, 0, 0]].concat();
        h[0] = 0x47;
        let c = ipv4_header(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(ipv4_header_ok(&h));
        // As the program sums it: words loaded little-endian.
        let le: u32 = h.chunks(2).map(|w| u32::from(u16::from_le_bytes([w[0], w[1]]))).sum();
        assert!(ipv4_sum_ok(le));
    }

    #[test]
    fn every_single_bit_error_is_caught() {
        for bit in 0..HEADER.len() * 8 {
            let mut h = HEADER;
            h[bit / 8] ^= 1 << (bit % 8);
            assert!(!ipv4_header_ok(&h), "bit {bit} flipped");
        }
        assert!(!ipv4_header_ok(&[0; 20]), "all zeros");
    }

    #[test]
    fn update_matches_recompute() {
        let mut h = HEADER;
        let new_dst = [239, 1, 2, 3];
        let old_dst = [h[16], h[17], h[18], h[19]];
        h[16..20].copy_from_slice(&new_dst);
        let updated = Delta::ZERO.addr(old_dst, new_dst).apply(0xb861u16.to_be_bytes());
        assert_eq!(u16::from_be_bytes(updated), ipv4_header(&h));
        let old = [h[8], h[9]];
        h[8] = 1;
        let updated = Delta::ZERO.word(old, [h[8], h[9]]).apply(updated);
        assert_eq!(u16::from_be_bytes(updated), ipv4_header(&h));
    }

    #[test]
    fn delta_matches_word_by_word_update() {
        // xorshift: a fixed sequence of checksums and field values, edge values first.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let edges = [0u64, 0xffff_ffff, 0x0000_ffff, 0xffff_0000, 1, 0xfffe_fffe];
        for i in 0..200_000usize {
            let r = [next(), next(), next()];
            let pick = |k: usize| if i < 216 { edges[(i / 6usize.pow(k as u32)) % 6] } else { r[k] };
            let check = pick(0) as u16;
            let (old_a, new_a) = ((pick(1) as u32).to_be_bytes(), ((pick(1) >> 32) as u32).to_be_bytes());
            let (old_w, new_w) = ((pick(2) as u16).to_be_bytes(), ((pick(2) >> 16) as u16).to_be_bytes());
            let want = update_word(update_addr(check, old_a, new_a), u16::from_be_bytes(old_w), u16::from_be_bytes(new_w));
            let got = Delta::ZERO.addr(old_a, new_a).word(old_w, new_w).apply(check.to_be_bytes());
            assert_eq!(u16::from_be_bytes(got), want, "check {check:#06x} {old_a:?}->{new_a:?} {old_w:?}->{new_w:?}");
        }
    }
}
