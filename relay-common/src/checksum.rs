//! The Internet checksum (RFC 1071), full and incremental (RFC 1624).
//!
//! The XDP program only uses the incremental updates (a handful of words per
//! rewritten frame); the full computations exist so host tests can check the
//! updates against a recompute.

/// Adds `bytes` as big-endian 16-bit words to `sum` (odd tail padded with 0),
/// reduced modulo `2^16 - 1` to at most 0xffff (0 only for a zero sum), so
/// callers may add a few more words without overflow. The channel process
/// checks every XDP-mode payload's UDP checksum with this, up to 9000 bytes,
/// so it is written for speed: 32-bit words summed in 64 bits (`2^16 = 1`
/// modulo `2^16 - 1`), in memory order with one byte swap at the end (the sum
/// is byte-order independent, RFC 1071 2(B)), no swap per word:
/// 1392 bytes in 55–66 instead of 107–143 ns, 50 bytes in 9–12.
pub fn add_words(sum: u32, bytes: &[u8]) -> u32 {
    // Eight bytes a load, as two 32-bit words in two accumulators.
    let (mut lo, mut hi) = (0u64, 0u64);
    let mut octs = bytes.chunks_exact(8);
    for o in &mut octs {
        let w = u64::from_ne_bytes([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]]);
        lo += w & 0xffff_ffff;
        hi += w >> 32;
    }
    // The rest as 16-bit words (a variable-length copy into a padded word
    // would call memcpy: 10 ns of 24 at 50 bytes).
    let mut acc = lo + hi;
    let mut pairs = octs.remainder().chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_ne_bytes([p[0], p[1]]));
    }
    if let [last] = *pairs.remainder() {
        acc += u64::from(u16::from_ne_bytes([last, 0]));
    }
    let be = u16::from_be_bytes(fold64(acc).to_ne_bytes());
    u32::from(fold64(u64::from(sum) + u64::from(be)))
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

/// What the XDP program records of a UDP checksum for the channel process to
/// check it against the payload ([`udp_ok`]): the checksum field plus the
/// parts of the pseudo-header and header the ring record does not carry (the
/// destination address and port), as stored (memory byte order, like
/// [`Delta`]). `[0, 0]` when the datagram has no checksum (field 0, RFC 768);
/// a one's-complement sum of words that are not all zero is never 0.
#[inline(always)]
pub const fn udp_partial(check: [u8; 2], dst_addr: [u8; 4], dst_port: [u8; 2]) -> [u8; 2] {
    if u16::from_ne_bytes(check) == 0 {
        return [0, 0];
    }
    // Four 16-bit words (the address's two halves, in memory order either
    // way round): under 2^18, so two 32-bit folds do, fewer steps than `fold64`.
    let a = u32::from_ne_bytes(dst_addr);
    let sum = u16::from_ne_bytes(check) as u32 + (a >> 16) + (a & 0xffff) + u16::from_ne_bytes(dst_port) as u32;
    fold(sum).to_ne_bytes()
}

/// Whether a UDP datagram from `src_addr:src_port` carrying `payload` has a
/// correct checksum, given the program's [`udp_partial`] of it: the sum over
/// pseudo-header, header (checksum field included) and payload is all ones
/// (RFC 1071 4.1). A datagram without a checksum passes, as the stack lets it.
pub fn udp_ok(partial: [u8; 2], src_addr: [u8; 4], src_port: [u8; 2], payload: &[u8]) -> bool {
    if partial == [0, 0] {
        return true;
    }
    let udp_len = (crate::wire::UdpHdr::LEN + payload.len()) as u32;
    // The partial's bytes, read big-endian, are the big-endian sum (see `Delta`).
    let mut sum = u32::from(u16::from_be_bytes(partial)) + u32::from(u16::from_be_bytes(src_port));
    sum += u32::from(crate::wire::IPPROTO_UDP) + 2 * udp_len; // pseudo-header and header lengths
    sum += add_words(0, &src_addr);
    fold(add_words(sum, payload)) == 0xffff
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
    extern crate std;
    use std::vec::Vec;

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

    /// A UDP segment from 192.0.2.1:40000 to `dst:port` carrying `payload`,
    /// with its checksum.
    fn segment(dst: [u8; 4], port: u16, payload: &[u8]) -> Vec<u8> {
        let len = (8 + payload.len()) as u16;
        let mut seg = [&40000u16.to_be_bytes()[..], &port.to_be_bytes(), &len.to_be_bytes(), &[0, 0], payload].concat();
        let c = udp([192, 0, 2, 1], dst, &seg);
        seg[6..8].copy_from_slice(&c.to_be_bytes());
        seg
    }

    /// What the channel process concludes from the program's partial.
    fn checks(dst: [u8; 4], seg: &[u8]) -> bool {
        // The program loads the fields from the frame as they sit there.
        let partial = udp_partial([seg[6], seg[7]], dst, [seg[2], seg[3]]);
        udp_ok(partial, [192, 0, 2, 1], [seg[0], seg[1]], &seg[8..])
    }

    #[test]
    fn add_words_matches_word_by_word() {
        let bytes: Vec<u8> = (0..1001u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in [0, 1, 2, 3, 4, 5, 6, 7, 63, 64, 65, 1000, 1001] {
            let mut slow = 0u64;
            for w in bytes[..len].chunks(2) {
                slow += u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
            }
            for start in [0u32, 7, 0xffff, 0xfff0_0000] {
                assert_eq!(fold(add_words(start, &bytes[..len])), fold64(slow + u64::from(start)), "len {len} start {start:#x}");
            }
        }
        assert_eq!(add_words(0, &[]), 0);
        assert_eq!(add_words(0, &[0xff; 9000]), 0xffff);
    }

    #[test]
    fn udp_partial_and_ok_accept_intact_datagrams_and_no_others() {
        let payload: Vec<u8> = (0..97u8).map(|i| i.wrapping_mul(37)).collect();
        for (dst, port) in [([192, 0, 2, 2], 26000), ([239, 255, 1, 2], 26001), ([255, 255, 255, 255], 65535), ([10, 0, 0, 1], 1)] {
            for len in [0, 1, 2, 3, 50, 64, 97] {
                let seg = segment(dst, port, &payload[..len]);
                assert!(checks(dst, &seg), "intact: {dst:?}:{port}, {len} bytes");
                // Every single-bit error in the payload or the checksum field.
                for bit in (6 * 8..8 * 8).chain(64..seg.len() * 8) {
                    let mut bad = seg.clone();
                    bad[bit / 8] ^= 1 << (bit % 8);
                    if bad[6..8] == [0, 0] {
                        continue; // now says "no checksum"
                    }
                    assert!(!checks(dst, &bad), "bit {bit} flipped: {dst:?}:{port}, {len} bytes");
                }
                // Sent to another address or port than it was summed for.
                assert!(!checks([192, 0, 2, 3], &seg) || dst == [192, 0, 2, 3]);
                // Without a checksum: accepted, whatever the payload.
                let mut none = seg.clone();
                none[6..8].copy_from_slice(&[0, 0]);
                none[8..].iter_mut().for_each(|b| *b = !*b);
                assert!(checks(dst, &none), "no checksum");
            }
        }
        // A checksum that computes to 0 is sent as 0xffff, and checks: a
        // payload chosen to make the sum all ones.
        let (src, dst) = ([192, 0, 2, 1], [192, 0, 2, 2]);
        let mut seg = segment(dst, 26000, &[0, 0]);
        seg[6..8].copy_from_slice(&[0, 0]);
        let s0 = add_words(add_words(add_words(17 + seg.len() as u32, &src), &dst), &seg);
        seg[8..10].copy_from_slice(&(0xffff - fold(s0)).to_be_bytes());
        let c = udp(src, dst, &seg);
        assert_eq!(c, 0xffff);
        seg[6..8].copy_from_slice(&c.to_be_bytes());
        assert!(checks(dst, &seg));
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
