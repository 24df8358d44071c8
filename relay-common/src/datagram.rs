//! Finding a whole UDP/IPv4 datagram in an Ethernet frame: the parse the XDP
//! program runs on every frame, written once against a [`Frame`] accessor so
//! that the host (unit tests, the fuzzer) runs the very same checks on a byte
//! slice that the verifier runs on packet memory.

use crate::checksum;
use crate::wire::{EthHdr, FrameHeader, Ipv4Hdr, UdpHdr, ETH_P_IPV4, IPPROTO_UDP};

/// Read access to the headers of a frame.
pub trait Frame {
    /// Length of the whole frame (in XDP, fragments of a multi-buffer frame
    /// included; the headers are always in its first part).
    fn frame_len(&self) -> usize;

    /// The `T` that starts `offset` bytes in, or `None` when the (first part
    /// of the) frame ends before `offset + size_of::<T>()`.
    fn header<T: FrameHeader>(&self, offset: usize) -> Option<&T>;
}

impl Frame for [u8] {
    fn frame_len(&self) -> usize {
        self.len()
    }

    fn header<T: FrameHeader>(&self, offset: usize) -> Option<&T> {
        let bytes = self.get(offset..offset.checked_add(core::mem::size_of::<T>())?)?;
        // SAFETY: `bytes` holds exactly `size_of::<T>()` bytes, borrowed for the
        // returned lifetime; `T: FrameHeader` has alignment 1 and accepts every
        // byte pattern.
        Some(unsafe { &*(bytes.as_ptr() as *const T) })
    }
}

/// Why a frame is not a whole UDP/IPv4 datagram. The program leaves all of
/// these to the network stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotDatagram {
    /// The frame ends before a header or length it announces.
    Truncated,
    /// Not IPv4 over Ethernet.
    NotIpv4,
    /// IPv4 but not UDP.
    NotUdp,
    /// An IPv4 fragment; only whole datagrams are relayed.
    Fragment,
    /// Impossible IHL, IP total length or UDP length.
    Malformed,
}

/// Where a whole UDP/IPv4 datagram sits in a frame and what it is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    /// Offset of the IPv4 header.
    pub ip_offset: usize,
    /// Offset of the UDP header (after any IPv4 options).
    pub udp_offset: usize,
    /// UDP payload length, from the UDP header (checked against the IP length).
    pub payload_len: usize,
    pub src_addr: [u8; 4],
    pub dst_addr: [u8; 4],
    pub src_port: u16,
    pub dst_port: u16,
}

impl Datagram {
    /// Sent to an IPv4 multicast group (224.0.0.0/4).
    #[inline(always)]
    pub const fn to_multicast(&self) -> bool {
        self.dst_addr[0] & 0xf0 == 0xe0
    }
}

/// Parses `frame` as a whole (unfragmented) Ethernet/IPv4/UDP datagram,
/// honouring IHL. Bytes after the IP total length (Ethernet padding) are
/// allowed; a UDP length beyond the IP payload is not.
#[inline(always)]
pub fn udp_ipv4<F: Frame + ?Sized>(frame: &F) -> Result<Datagram, NotDatagram> {
    let eth = frame.header::<EthHdr>(0).ok_or(NotDatagram::Truncated)?;
    if eth.ether_type() != ETH_P_IPV4 {
        return Err(NotDatagram::NotIpv4);
    }

    let ip_offset = EthHdr::LEN;
    let ip = frame.header::<Ipv4Hdr>(ip_offset).ok_or(NotDatagram::Truncated)?;
    if ip.version() != 4 {
        return Err(NotDatagram::NotIpv4);
    }
    let ip_header_len = ip.header_len();
    if ip_header_len < Ipv4Hdr::LEN {
        return Err(NotDatagram::Malformed);
    }
    let ip_total_len = ip.total_len() as usize;
    if ip_total_len < ip_header_len + UdpHdr::LEN {
        // Covers non-UDP too only when the length is impossible for any payload.
        if ip.protocol != IPPROTO_UDP {
            return Err(NotDatagram::NotUdp);
        }
        return Err(NotDatagram::Malformed);
    }
    if ip_offset + ip_total_len > frame.frame_len() {
        return Err(NotDatagram::Truncated);
    }
    if ip.protocol != IPPROTO_UDP {
        return Err(NotDatagram::NotUdp);
    }
    if ip.is_fragment() {
        return Err(NotDatagram::Fragment);
    }
    let (src_addr, dst_addr) = (ip.src, ip.dst);

    let udp_offset = ip_offset + ip_header_len;
    let udp = frame.header::<UdpHdr>(udp_offset).ok_or(NotDatagram::Truncated)?;
    let udp_len = udp.length() as usize;
    if udp_len < UdpHdr::LEN || udp_len > ip_total_len - ip_header_len {
        return Err(NotDatagram::Malformed);
    }
    Ok(Datagram {
        ip_offset,
        udp_offset,
        payload_len: udp_len - UdpHdr::LEN,
        src_addr,
        dst_addr,
        src_port: udp.src_port(),
        dst_port: udp.dst_port(),
    })
}

/// Whether `d`'s IPv4 header, options included, carries a correct checksum.
/// Word by word through [`Frame::header`], with a loop bounded by the
/// longest IHL, so that the verifier can follow it. The program asks only
/// for datagrams to a channel: the stack checks everything else, so the
/// unmatched path costs nothing more.
#[inline(always)]
pub fn ipv4_checksum_ok<F: Frame + ?Sized>(frame: &F, d: &Datagram) -> bool {
    let Some(base) = frame.header::<[u8; Ipv4Hdr::LEN]>(d.ip_offset) else {
        return false;
    };
    let mut sum = 0u32;
    for w in base.chunks_exact(2) {
        sum += u32::from(u16::from_ne_bytes([w[0], w[1]]));
    }
    // Options: at most 40 bytes, in 4-byte units (IHL).
    let mut offset = d.ip_offset + Ipv4Hdr::LEN;
    for _ in 0..10 {
        if offset >= d.udp_offset {
            break;
        }
        let Some(w) = frame.header::<[u8; 4]>(offset) else {
            return false;
        };
        sum += u32::from(u16::from_ne_bytes([w[0], w[1]])) + u32::from(u16::from_ne_bytes([w[2], w[3]]));
        offset += 4;
    }
    checksum::ipv4_sum_ok(sum)
}

#[cfg(test)]
mod tests;
