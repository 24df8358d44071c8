//! Parsing Ethernet / IPv4 (IHL honoured) / UDP.

use aya_ebpf::{helpers::generated::bpf_xdp_get_buff_len, programs::XdpContext};
use relay_common::{
    checksum,
    wire::{EthHdr, Ipv4Hdr, UdpHdr, ETH_P_IPV4, IPPROTO_UDP},
};

use crate::{error::Error, packet::ref_mut_at};

/// Where a whole UDP/IPv4 datagram sits in the frame and what it is addressed to.
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

/// Length of the whole frame, including fragments of a multi-buffer frame.
#[inline(always)]
pub fn frame_len(ctx: &XdpContext) -> usize {
    // SAFETY: `ctx.ctx` is the kernel-provided context of this run.
    unsafe { bpf_xdp_get_buff_len(ctx.ctx) as usize }
}

/// Parses the frame (of [`frame_len`] bytes) as a whole (unfragmented) UDP/IPv4 datagram.
#[inline(always)]
pub fn udp_ipv4(ctx: &XdpContext, frame_len: usize) -> Result<Datagram, Error> {
    // SAFETY: the only live header reference; it ends with this statement.
    let ether_type = unsafe { ref_mut_at::<EthHdr>(ctx, 0) }?.ether_type();
    if ether_type != ETH_P_IPV4 {
        return Err(Error::NotIpv4);
    }

    let ip_offset = EthHdr::LEN;
    // SAFETY: no other header reference is alive while `ip` is.
    let ip = unsafe { ref_mut_at::<Ipv4Hdr>(ctx, ip_offset) }?;
    if ip.version() != 4 {
        return Err(Error::NotIpv4);
    }
    let ip_header_len = ip.header_len();
    if ip_header_len < Ipv4Hdr::LEN {
        return Err(Error::Malformed);
    }
    let ip_total_len = ip.total_len() as usize;
    if ip_total_len < ip_header_len + UdpHdr::LEN {
        // Covers non-UDP too only when the length is impossible for any payload.
        if ip.protocol != IPPROTO_UDP {
            return Err(Error::NotUdp);
        }
        return Err(Error::Malformed);
    }
    if ip_offset + ip_total_len > frame_len {
        return Err(Error::Truncated);
    }
    if ip.protocol != IPPROTO_UDP {
        return Err(Error::NotUdp);
    }
    if ip.is_fragment() {
        return Err(Error::Fragment);
    }
    let (src_addr, dst_addr) = (ip.src, ip.dst);

    let udp_offset = ip_offset + ip_header_len;
    // SAFETY: `ip` is no longer used; `udp` is the only live header reference.
    let udp = unsafe { ref_mut_at::<UdpHdr>(ctx, udp_offset) }?;
    let udp_len = udp.length() as usize;
    if udp_len < UdpHdr::LEN || udp_len > ip_total_len - ip_header_len {
        return Err(Error::Malformed);
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
/// Only asked for datagrams to a channel: the stack checks everything else,
/// and so the unmatched path costs nothing more.
#[inline(always)]
pub fn ipv4_checksum_ok(ctx: &XdpContext, d: &Datagram) -> bool {
    // SAFETY: no other header reference is alive while these are.
    let Ok(base) = (unsafe { ref_mut_at::<[u8; Ipv4Hdr::LEN]>(ctx, d.ip_offset) }) else {
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
        // SAFETY: as above.
        let Ok(w) = (unsafe { ref_mut_at::<[u8; 4]>(ctx, offset) }) else {
            return false;
        };
        sum += u32::from(u16::from_ne_bytes([w[0], w[1]])) + u32::from(u16::from_ne_bytes([w[2], w[3]]));
        offset += 4;
    }
    checksum::ipv4_sum_ok(sum)
}
