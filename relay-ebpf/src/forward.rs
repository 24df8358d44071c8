//! Rewriting the frame into the full-rate multicast datagram and sending it.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use relay_common::{
    channel::Channel,
    datagram::Datagram,
    rewrite,
    wire::{EthHdr, Ipv4Hdr, UdpHdr},
};

use crate::{error::Error, maps::EGRESS, packet::ref_mut_at};

/// Rewrites `d` in place for `ch` and returns `XDP_TX` (egress is the ingress
/// interface) or the verdict of a devmap redirect to `ch.egress_ifindex`.
#[inline(always)]
pub fn to_group(ctx: &XdpContext, d: &Datagram, ch: &Channel) -> Result<u32, Error> {
    // SAFETY: the three headers do not overlap: Ethernet is 0..14, IPv4 is
    // 14..34 (options not touched), UDP starts at `udp_offset >= 34`; no other
    // reference into the frame is alive.
    let (eth, ip, udp) = unsafe {
        (
            ref_mut_at::<EthHdr>(ctx, 0)?,
            ref_mut_at::<Ipv4Hdr>(ctx, d.ip_offset)?,
            ref_mut_at::<UdpHdr>(ctx, d.udp_offset)?,
        )
    };
    rewrite::to_group(eth, ip, udp, ch);
    if ch.egress_ifindex == ctx.ingress_ifindex() as u32 {
        return Ok(xdp_action::XDP_TX);
    }
    EGRESS
        .redirect(ch.egress_ifindex, u64::from(xdp_action::XDP_DROP))
        .map_err(|_| Error::NoEgress)
}
