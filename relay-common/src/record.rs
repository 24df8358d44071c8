//! The record the XDP program writes into a channel's ring buffer: a
//! [`RecordHeader`] followed by `len` bytes of UDP payload.

/// Precedes each payload in a ring record. 8-byte aligned, 24 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordHeader {
    /// `bpf_ktime_get_ns()` at arrival (CLOCK_MONOTONIC).
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
}
