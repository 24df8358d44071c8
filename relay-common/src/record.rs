//! The record the XDP program writes into a channel's ring buffer: a
//! [`RecordHeader`] followed by `len` bytes of UDP payload, then padding up
//! to the record's size class ([`CLASSES`]).
//!
//! Size classes: the program copies the payload straight from the frame into
//! a ring reservation, and the verifier only allows reservations of constant
//! size; so it reserves the smallest class that holds header and payload.
//! Readers must use the header's `len`, never the record's length.

/// Precedes each payload in a ring record. 8-byte aligned, 24 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordHeader {
    /// `bpf_ktime_get_coarse_ns()` at arrival: CLOCK_MONOTONIC_COARSE, which
    /// advances once per kernel tick (1–10 ms); the precise clock costs the
    /// program a TSC read per datagram.
    pub arrival_ns: u64,
    /// Payload bytes following the header.
    pub len: u32,
    /// Source IPv4 address.
    pub src_addr: [u8; 4],
    /// Source UDP port, network order.
    pub src_port: [u8; 2],
    pub _pad: [u8; 6],
}

impl RecordHeader {
    pub const LEN: usize = 24;

    /// The header's bytes as three native-endian words, as the program stores
    /// them (whole-word stores, no byte-wise padding writes).
    #[inline(always)]
    pub const fn words(arrival_ns: u64, len: u32, src_addr: [u8; 4], src_port: [u8; 2]) -> [u64; 3] {
        let (l, a) = (len.to_ne_bytes(), src_addr);
        let w1 = u64::from_ne_bytes([l[0], l[1], l[2], l[3], a[0], a[1], a[2], a[3]]);
        let w2 = u64::from_ne_bytes([src_port[0], src_port[1], 0, 0, 0, 0, 0, 0]);
        [arrival_ns, w1, w2]
    }

    pub const fn src_port(&self) -> u16 {
        u16::from_be_bytes(self.src_port)
    }

    /// Splits a ring record into its header and payload; `None` when it is
    /// shorter than the header or than the length the header announces.
    pub fn parse(record: &[u8]) -> Option<(RecordHeader, &[u8])> {
        let h = record.get(..Self::LEN)?;
        let header = RecordHeader {
            arrival_ns: u64::from_ne_bytes(h[0..8].try_into().ok()?),
            len: u32::from_ne_bytes(h[8..12].try_into().ok()?),
            src_addr: h[12..16].try_into().ok()?,
            src_port: h[16..18].try_into().ok()?,
            _pad: [0; 6],
        };
        let payload = record.get(Self::LEN..Self::LEN + header.len as usize)?;
        Some((header, payload))
    }
}

const _: () = assert!(core::mem::size_of::<RecordHeader>() == RecordHeader::LEN);

/// Record sizes (header + payload + padding) the program reserves, ascending;
/// multiples of 8 (the ring's own alignment), the last one holds
/// [`crate::channel::MAX_PAYLOAD`]. Above the smallest class, at most a third
/// of a record is padding.
pub const CLASSES: [usize; 16] = [64, 96, 128, 192, 256, 384, 512, 768, 1024, 1280, 1536, 2048, 3072, 4096, 6144, 9024];

/// The record size the program reserves for `payload_len` bytes of payload
/// (`None` above [`crate::channel::MAX_PAYLOAD`]).
pub fn record_size(payload_len: usize) -> Option<usize> {
    CLASSES.iter().copied().find(|&c| RecordHeader::LEN + payload_len <= c)
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
        let mut rec = [0u8; 28];
        rec[0..8].copy_from_slice(&42u64.to_ne_bytes());
        rec[8..12].copy_from_slice(&3u32.to_ne_bytes());
        rec[12..16].copy_from_slice(&[192, 0, 2, 1]);
        rec[16..18].copy_from_slice(&40000u16.to_be_bytes());
        rec[24..27].copy_from_slice(b"abc");
        let (h, p) = RecordHeader::parse(&rec).unwrap();
        assert_eq!((h.arrival_ns, h.len, h.src_addr, h.src_port()), (42, 3, [192, 0, 2, 1], 40000));
        assert_eq!(p, b"abc");
        assert!(RecordHeader::parse(&rec[..20]).is_none());
        rec[8..12].copy_from_slice(&9u32.to_ne_bytes());
        assert!(RecordHeader::parse(&rec).is_none(), "announced length beyond the record");
    }

    #[test]
    fn words_are_the_header_bytes() {
        let mut rec = [0xffu8; 24 + 3];
        for (i, w) in RecordHeader::words(0x0102_0304_0506_0708, 3, [192, 0, 2, 1], [0x9c, 0x40]).iter().enumerate() {
            rec[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
        }
        let (h, p) = RecordHeader::parse(&rec).unwrap();
        assert_eq!((h.arrival_ns, h.len, h.src_addr, h.src_port()), (0x0102_0304_0506_0708, 3, [192, 0, 2, 1], 40000));
        assert_eq!(p, [0xff; 3]);
        assert_eq!(rec[18..24], [0; 6], "padding is zero");
    }

    #[test]
    fn record_sizes() {
        use crate::channel::MAX_PAYLOAD;
        assert_eq!(record_size(0), Some(64));
        assert_eq!(record_size(40), Some(64));
        assert_eq!(record_size(41), Some(96));
        assert_eq!(record_size(1400), Some(1536));
        assert_eq!(record_size(MAX_PAYLOAD), Some(9024));
        assert_eq!(record_size(MAX_PAYLOAD + 1), None);
        for len in 0..=MAX_PAYLOAD {
            let c = record_size(len).unwrap();
            let used = (RecordHeader::LEN + len).next_multiple_of(8);
            assert!(used <= c && (c == CLASSES[0] || 3 * (c - used) <= c), "{len} bytes in {c}");
        }
    }
}
