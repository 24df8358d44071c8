//! The record the XDP program writes into a channel's ring buffer: a
//! [`RecordHeader`] followed by `len` bytes of UDP payload, then padding up
//! to the record's size class ([`CLASSES`]).
//!
//! Size classes: the program copies the payload straight from the frame into
//! the ring, and the verifier must be able to bound every write into the ring
//! by constants; so it reserves the smallest class that holds header and payload.
//! Readers must use the header's `len`, never the record's length.

/// Precedes each payload in a ring record. 8-byte aligned, 16 bytes: a
/// small record header leaves more of the ring for payloads (most datums are
/// about 50 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordHeader {
    /// Bits 0–47: `bpf_ktime_get_coarse_ns()` at arrival, modulo 2^48 (78
    /// hours; [`arrival_ago`] takes it back to a full time). It is
    /// CLOCK_MONOTONIC_COARSE, which advances once per kernel tick (1–10 ms):
    /// the precise clock costs the program a TSC read per datagram.
    /// Bits 48–63: the datagram's [`crate::checksum::udp_partial`], its bytes
    /// as a native-endian `u16`, so the channel process can check the UDP
    /// checksum as the stack would (the program does not read the payload).
    pub stamp: u64,
    /// Payload bytes following the header (at most [`crate::channel::MAX_PAYLOAD`]).
    pub len: u16,
    /// Source UDP port, network order.
    pub src_port: [u8; 2],
    /// Source IPv4 address.
    pub src_addr: [u8; 4],
}

/// Bits of [`RecordHeader::stamp`] that hold the arrival time.
pub const ARRIVAL_BITS: u32 = 48;
const ARRIVAL_MASK: u64 = (1 << ARRIVAL_BITS) - 1;

impl RecordHeader {
    pub const LEN: usize = 16;

    /// The header's bytes as two native-endian words, as the program stores
    /// them (two whole-word stores). `udp_partial`, `src_port` and `src_addr`
    /// are bytes as they sit in the frame (or as [`crate::checksum::udp_partial`]
    /// makes them), so the program passes its loads unchanged.
    #[inline(always)]
    pub const fn words(arrival_ns: u64, udp_partial: [u8; 2], len: u16, src_port: [u8; 2], src_addr: [u8; 4]) -> [u64; 2] {
        let (l, p, a) = (len.to_ne_bytes(), src_port, src_addr);
        let stamp = (arrival_ns & ARRIVAL_MASK) | ((u16::from_ne_bytes(udp_partial) as u64) << ARRIVAL_BITS);
        [stamp, u64::from_ne_bytes([l[0], l[1], p[0], p[1], a[0], a[1], a[2], a[3]])]
    }

    pub const fn src_port(&self) -> u16 {
        u16::from_be_bytes(self.src_port)
    }

    /// The arrival time's low [`ARRIVAL_BITS`] bits (see [`arrival_ago`]).
    pub const fn arrival(&self) -> u64 {
        self.stamp & ARRIVAL_MASK
    }

    /// What [`crate::checksum::udp_ok`] needs from the program.
    pub const fn udp_partial(&self) -> [u8; 2] {
        ((self.stamp >> ARRIVAL_BITS) as u16).to_ne_bytes()
    }

    /// Splits a ring record into its header and payload; `None` when it is
    /// shorter than the header or than the length the header announces.
    pub fn parse(record: &[u8]) -> Option<(RecordHeader, &[u8])> {
        let h: &[u8; Self::LEN] = record.get(..Self::LEN)?.try_into().ok()?;
        let header = RecordHeader {
            stamp: u64::from_ne_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]),
            len: u16::from_ne_bytes([h[8], h[9]]),
            src_port: [h[10], h[11]],
            src_addr: [h[12], h[13], h[14], h[15]],
        };
        let payload = record.get(Self::LEN..Self::LEN + usize::from(header.len))?;
        Some((header, payload))
    }
}

/// How long before `now_ns` (the same clock, read later) a record with
/// [`RecordHeader::arrival`] `arrival` arrived: the difference modulo 2^48,
/// right for any record younger than 2^47 ns (39 hours). `None` for a stamp
/// from the future: the coarse clock's reading can be up to a tick ahead of
/// a precise one taken just before it.
pub const fn arrival_ago(arrival: u64, now_ns: u64) -> Option<u64> {
    let ago = now_ns.wrapping_sub(arrival) & ARRIVAL_MASK;
    if ago > ARRIVAL_MASK / 2 { None } else { Some(ago) }
}

const _: () = {
    assert!(core::mem::size_of::<RecordHeader>() == RecordHeader::LEN);
    assert!(crate::channel::MAX_PAYLOAD <= u16::MAX as usize);
};

/// Record sizes (header + payload + padding) the program reserves, ascending;
/// multiples of 8 (the ring's own alignment), the last one holds
/// [`crate::channel::MAX_PAYLOAD`]. In 8-byte steps up to 96 bytes (where
/// most datums are), then at most a third of a record is padding.
pub const CLASSES: [usize; 22] = [
    48, 56, 64, 72, 80, 88, 96, 112, 128, 192, 256, 384, 512, 768, 1024, 1280, 1536, 2048, 3072, 4096, 6144, 9016,
];

/// The record size the program reserves for `payload_len` bytes of payload
/// (`None` above [`crate::channel::MAX_PAYLOAD`]).
pub fn record_size(payload_len: usize) -> Option<usize> {
    CLASSES.iter().copied().find(|&c| RecordHeader::LEN + payload_len <= c)
}

/// What [`by_class`] calls with the chosen record size.
pub trait ClassFn {
    type Out;
    /// Called with `N`, the smallest class with `payload_len <= N - RecordHeader::LEN`.
    fn class<const N: usize>(self) -> Self::Out;
    /// Called when the payload is longer than [`crate::channel::MAX_PAYLOAD`].
    fn too_long(self) -> Self::Out;
}

/// Calls `f.class::<N>()` with `N` = [`record_size`]`(payload_len)`, as a
/// constant: the program can only write records of a constant size.
/// A binary decision tree (at most 5 comparisons), not a scan over `CLASSES`.
#[inline(always)]
pub fn by_class<F: ClassFn>(payload_len: usize, f: F) -> F::Out {
    const fn max(i: usize) -> usize {
        CLASSES[i] - RecordHeader::LEN
    }
    macro_rules! class {
        ($i:literal) => {
            f.class::<{ CLASSES[$i] }>()
        };
    }
    let len = payload_len;
    if len <= max(8) {
        // 48..=128 bytes, 8-byte steps up to 96.
        if len <= max(3) {
            if len <= max(1) {
                if len <= max(0) { class!(0) } else { class!(1) }
            } else if len <= max(2) {
                class!(2)
            } else {
                class!(3)
            }
        } else if len <= max(5) {
            if len <= max(4) { class!(4) } else { class!(5) }
        } else if len <= max(6) {
            class!(6)
        } else if len <= max(7) {
            class!(7)
        } else {
            class!(8)
        }
    } else if len <= max(15) {
        // 192..=1280 bytes.
        if len <= max(11) {
            if len <= max(9) {
                class!(9)
            } else if len <= max(10) {
                class!(10)
            } else {
                class!(11)
            }
        } else if len <= max(13) {
            if len <= max(12) { class!(12) } else { class!(13) }
        } else if len <= max(14) {
            class!(14)
        } else {
            class!(15)
        }
    } else if len <= max(18) {
        // 1536..=3072 bytes.
        if len <= max(16) {
            class!(16)
        } else if len <= max(17) {
            class!(17)
        } else {
            class!(18)
        }
    } else if len <= max(20) {
        if len <= max(19) { class!(19) } else { class!(20) }
    } else if len <= max(21) {
        class!(21)
    } else {
        f.too_long()
    }
}

const _: () = {
    assert!(CLASSES[CLASSES.len() - 1] == RecordHeader::LEN + crate::channel::MAX_PAYLOAD);
    let mut i = 0;
    while i < CLASSES.len() {
        assert!(CLASSES[i] % 8 == 0);
        assert!(i == 0 || CLASSES[i] > CLASSES[i - 1]);
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_record() {
        let mut rec = [0u8; 20];
        rec[0..8].copy_from_slice(&(42u64 | 0x1234 << 48).to_ne_bytes());
        rec[8..10].copy_from_slice(&3u16.to_ne_bytes());
        rec[10..12].copy_from_slice(&40000u16.to_be_bytes());
        rec[12..16].copy_from_slice(&[192, 0, 2, 1]);
        rec[16..19].copy_from_slice(b"abc");
        let (h, p) = RecordHeader::parse(&rec).unwrap();
        assert_eq!((h.arrival(), h.len, h.src_addr, h.src_port()), (42, 3, [192, 0, 2, 1], 40000));
        assert_eq!(h.udp_partial(), 0x1234u16.to_ne_bytes());
        assert_eq!(p, b"abc");
        assert!(RecordHeader::parse(&rec[..15]).is_none());
        rec[8..10].copy_from_slice(&5u16.to_ne_bytes());
        assert!(RecordHeader::parse(&rec).is_none(), "announced length beyond the record");
    }

    #[test]
    fn words_are_the_header_bytes() {
        let mut rec = [0xffu8; 16 + 3];
        for (i, w) in RecordHeader::words(0x0102_0304_0506_0708, [0xab, 0xcd], 3, [0x9c, 0x40], [192, 0, 2, 1]).iter().enumerate() {
            rec[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
        }
        let (h, p) = RecordHeader::parse(&rec).unwrap();
        assert_eq!((h.arrival(), h.len, h.src_addr, h.src_port()), (0x0304_0506_0708, 3, [192, 0, 2, 1], 40000));
        assert_eq!(h.udp_partial(), [0xab, 0xcd]);
        assert_eq!(p, [0xff; 3]);
    }

    #[test]
    fn arrivals_come_back_across_the_wrap() {
        const S: u64 = 1_000_000_000;
        let wrap = 1u64 << ARRIVAL_BITS;
        for now in [5 * S, wrap - 1, wrap, wrap + 3 * S, 40 * wrap + 17, u64::MAX] {
            for ago in [0, 1, 10_000_000, 3600 * S, wrap / 2 - 1] {
                let h = RecordHeader { stamp: RecordHeader::words(now.wrapping_sub(ago), [0xff, 0xff], 0, [0; 2], [0; 4])[0], ..Default::default() };
                assert_eq!(arrival_ago(h.arrival(), now), Some(ago), "now {now} ago {ago}");
            }
            for ahead in [1, 4_000_000, 10_000_000] {
                assert_eq!(arrival_ago(now.wrapping_add(ahead) & ARRIVAL_MASK, now), None, "from the future: now {now} ahead {ahead}");
            }
        }
    }

    #[test]
    fn record_sizes() {
        use crate::channel::MAX_PAYLOAD;
        assert_eq!(record_size(0), Some(48));
        assert_eq!(record_size(32), Some(48));
        assert_eq!(record_size(33), Some(56));
        assert_eq!(record_size(50), Some(72), "a typical datum");
        assert_eq!(record_size(64), Some(80));
        assert_eq!(record_size(128), Some(192));
        assert_eq!(record_size(1400), Some(1536));
        assert_eq!(record_size(MAX_PAYLOAD), Some(9016));
        assert_eq!(record_size(MAX_PAYLOAD + 1), None);
        for len in 0..=MAX_PAYLOAD {
            let c = record_size(len).unwrap();
            let used = (RecordHeader::LEN + len).next_multiple_of(8);
            assert!(used <= c && (c == CLASSES[0] || 3 * (c - used) <= c), "{len} bytes in {c}");
            if c > CLASSES[0] && c <= 96 {
                assert!(c - used < 8, "8-byte steps up to 96 bytes: {len} bytes in {c}");
            }
        }
    }

    #[test]
    fn by_class_is_record_size() {
        struct Size;
        impl ClassFn for Size {
            type Out = Option<usize>;
            fn class<const N: usize>(self) -> Option<usize> {
                Some(N)
            }
            fn too_long(self) -> Option<usize> {
                None
            }
        }
        for len in 0..=crate::channel::MAX_PAYLOAD + 100 {
            assert_eq!(by_class(len, Size), record_size(len), "{len} bytes");
        }
        assert_eq!(by_class(usize::MAX, Size), None);
    }
}
