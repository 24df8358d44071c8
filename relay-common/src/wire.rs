//! Views of the Ethernet, IPv4 and UDP headers as they sit in a frame.
//!
//! Every field is a byte array in network order with typed accessors, so the
//! structs have alignment 1 and any byte pattern is a valid value: they can be
//! referenced at any offset of packet memory (see [`FrameHeader`]).

/// Header types that may be referenced at any byte offset of a frame.
///
/// # Safety
///
/// Implementors must have alignment 1, no padding, and accept every byte
/// pattern as a valid value (i.e. consist of `u8` and `[u8; N]` fields only).
pub unsafe trait FrameHeader: Sized {}

/// EtherType of IPv4.
pub const ETH_P_IPV4: u16 = 0x0800;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// An Ethernet II header (no VLAN tag).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub ether_type: [u8; 2],
}

impl EthHdr {
    pub const LEN: usize = 14;

    pub const fn ether_type(&self) -> u16 {
        u16::from_be_bytes(self.ether_type)
    }
}

/// An IPv4 header without options (options follow it when `ihl > 5`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Hdr {
    pub version_ihl: u8,
    pub tos: u8,
    pub total_len: [u8; 2],
    pub id: [u8; 2],
    pub frag_off: [u8; 2],
    pub ttl: u8,
    pub protocol: u8,
    pub check: [u8; 2],
    pub src: [u8; 4],
    pub dst: [u8; 4],
}

impl Ipv4Hdr {
    /// Length of the header without options.
    pub const LEN: usize = 20;
    /// The "more fragments" flag in `frag_off`.
    const MF: u16 = 0x2000;
    /// The fragment offset bits in `frag_off`.
    const OFFSET_MASK: u16 = 0x1fff;

    pub const fn version(&self) -> u8 {
        self.version_ihl >> 4
    }

    /// Header length in bytes as announced by IHL (20..=60 when valid).
    pub const fn header_len(&self) -> usize {
        ((self.version_ihl & 0x0f) as usize) * 4
    }

    pub const fn total_len(&self) -> u16 {
        u16::from_be_bytes(self.total_len)
    }

    /// True for any fragment: first (MF set) or later (offset non-zero).
    pub const fn is_fragment(&self) -> bool {
        let f = u16::from_be_bytes(self.frag_off);
        f & (Self::MF | Self::OFFSET_MASK) != 0
    }

    pub const fn checksum(&self) -> u16 {
        u16::from_be_bytes(self.check)
    }
}

/// A UDP header.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpHdr {
    pub src_port: [u8; 2],
    pub dst_port: [u8; 2],
    pub len: [u8; 2],
    pub check: [u8; 2],
}

impl UdpHdr {
    pub const LEN: usize = 8;

    pub const fn src_port(&self) -> u16 {
        u16::from_be_bytes(self.src_port)
    }

    pub const fn dst_port(&self) -> u16 {
        u16::from_be_bytes(self.dst_port)
    }

    /// Length of header plus payload, as announced.
    pub const fn length(&self) -> u16 {
        u16::from_be_bytes(self.len)
    }

    pub const fn checksum(&self) -> u16 {
        u16::from_be_bytes(self.check)
    }
}

// SAFETY: only u8 / [u8; N] fields, repr(C) so no reordering; align 1, no padding.
unsafe impl FrameHeader for EthHdr {}
// SAFETY: as above.
unsafe impl FrameHeader for Ipv4Hdr {}
// SAFETY: as above.
unsafe impl FrameHeader for UdpHdr {}
// SAFETY: bytes: align 1, no padding, any pattern valid (raw words of a header).
unsafe impl<const N: usize> FrameHeader for [u8; N] {}

const _: () = {
    assert!(core::mem::size_of::<EthHdr>() == EthHdr::LEN);
    assert!(core::mem::size_of::<Ipv4Hdr>() == Ipv4Hdr::LEN);
    assert!(core::mem::size_of::<UdpHdr>() == UdpHdr::LEN);
    assert!(core::mem::align_of::<EthHdr>() == 1);
    assert!(core::mem::align_of::<Ipv4Hdr>() == 1);
    assert!(core::mem::align_of::<UdpHdr>() == 1);
};

#[cfg(test)]
mod tests {
    use super::*;

    // A UDP/IPv4 frame: 192.0.2.1:40000 -> 192.0.2.2:26001, 4 payload bytes.
    const FRAME: [u8; 54] = [
        0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, // eth
        0x45, 0, 0, 32, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2, // ipv4
        0x9c, 0x40, 0x65, 0x91, 0, 12, 0, 0, // udp
        1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, // payload + padding
    ];

    fn view<T: FrameHeader + Copy>(bytes: &[u8]) -> T {
        assert!(bytes.len() >= core::mem::size_of::<T>());
        // SAFETY: length checked; T is FrameHeader (align 1, any bytes valid).
        unsafe { *(bytes.as_ptr() as *const T) }
    }

    #[test]
    fn deconstruct() {
        let eth: EthHdr = view(&FRAME);
        assert_eq!(eth.ether_type(), ETH_P_IPV4);
        let ip: Ipv4Hdr = view(&FRAME[EthHdr::LEN..]);
        assert_eq!(ip.version(), 4);
        assert_eq!(ip.header_len(), 20);
        assert_eq!(ip.total_len(), 32);
        assert_eq!(ip.protocol, IPPROTO_UDP);
        assert!(!ip.is_fragment(), "DF alone is not a fragment");
        let udp: UdpHdr = view(&FRAME[EthHdr::LEN + ip.header_len()..]);
        assert_eq!(udp.src_port(), 40000);
        assert_eq!(udp.dst_port(), 26001);
        assert_eq!(udp.length(), 12);
    }

    #[test]
    fn fragments() {
        let mut ip: Ipv4Hdr = view(&FRAME[EthHdr::LEN..]);
        ip.frag_off = [0x20, 0x00];
        assert!(ip.is_fragment(), "MF");
        ip.frag_off = [0x00, 0x01];
        assert!(ip.is_fragment(), "offset");
        ip.frag_off = [0x40, 0x00];
        assert!(!ip.is_fragment(), "DF");
    }
}
