//! A host model of the XDP program's frame path (`relay-ebpf/src/main.rs`,
//! `channel.rs`, `forward.rs`) over a byte slice. The parse, the IPv4 header
//! check and the rewrite are the program's own (`relay_common::datagram`,
//! `relay_common::rewrite`); only the channel maps are modelled (as lists).

use relay_common::channel::{Channel, GroupKey, FLAG_FORWARD, FLAG_PASS, FLAG_RING};
use relay_common::checksum;
pub use relay_common::datagram::{Datagram, NotDatagram};
use relay_common::datagram::{self, ipv4_checksum_ok};
use relay_common::rewrite;
use relay_common::wire::{EthHdr, FrameHeader, Ipv4Hdr, UdpHdr, ETH_P_IPV4, IPPROTO_UDP};

/// Mutable views of the three headers of a parsed datagram. `None` when
/// they would overlap (they cannot for a parsed datagram: IHL >= 20).
pub fn headers_mut<'a>(
    frame: &'a mut [u8],
    d: &Datagram,
) -> Option<(&'a mut EthHdr, &'a mut Ipv4Hdr, &'a mut UdpHdr)> {
    fn view<T: FrameHeader>(b: &mut [u8]) -> Option<&mut T> {
        let b = b.get_mut(..core::mem::size_of::<T>())?;
        // SAFETY: `b` holds exactly `size_of::<T>()` bytes, borrowed
        // exclusively for the returned lifetime; `T: FrameHeader` has
        // alignment 1 and accepts any byte pattern.
        Some(unsafe { &mut *(b.as_mut_ptr() as *mut T) })
    }
    if d.ip_offset < EthHdr::LEN || d.udp_offset < d.ip_offset + Ipv4Hdr::LEN {
        return None;
    }
    let (eth, rest) = frame.split_at_mut(d.ip_offset);
    let (ip, udp) = rest.split_at_mut(d.udp_offset - d.ip_offset);
    Some((view(eth)?, view(ip)?, view(udp)?))
}

/// The channel maps: by (group, port), tried first for multicast
/// destinations, then by port (`channel::lookup`).
#[derive(Debug, Default)]
pub struct Channels {
    pub by_group: Vec<(GroupKey, Channel)>,
    pub by_port: Vec<(u16, Channel)>,
}

impl Channels {
    pub fn lookup(&self, d: &Datagram) -> Option<Channel> {
        if d.to_multicast() {
            let key = GroupKey::new(d.dst_addr, d.dst_port);
            if let Some((_, ch)) = self.by_group.iter().find(|(k, _)| *k == key) {
                return Some(*ch);
            }
        }
        self.by_port
            .iter()
            .find(|(p, _)| *p == d.dst_port)
            .map(|(_, ch)| *ch)
    }
}

/// What the program does with a frame (ring copies are not modelled: they
/// only read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not a datagram: `XDP_PASS`.
    NotDatagram(NotDatagram),
    /// A datagram of no channel: `XDP_PASS`.
    NoChannel(Datagram),
    /// A channel's datagram with a wrong IPv4 header checksum: `XDP_PASS`
    /// (the program's `Error::BadChecksum`).
    BadChecksum(Datagram),
    /// A channel's datagram not forwarded: `XDP_PASS` or `XDP_DROP`.
    Kept(Datagram, Channel),
    /// Rewritten in place for the channel and sent.
    Forwarded(Datagram, Channel),
}

/// `try_speeddata` without the ring: parse, look up, rewrite when forwarding.
pub fn handle(frame: &mut [u8], channels: &Channels) -> Outcome {
    let d = match datagram::udp_ipv4(frame) {
        Ok(d) => d,
        Err(e) => return Outcome::NotDatagram(e),
    };
    let Some(ch) = channels.lookup(&d) else {
        return Outcome::NoChannel(d);
    };
    if !ipv4_checksum_ok(frame, &d) {
        return Outcome::BadChecksum(d);
    }
    if !ch.has(FLAG_FORWARD) {
        return Outcome::Kept(d, ch);
    }
    let (eth, ip, udp) = headers_mut(frame, &d).expect("a parsed datagram's headers are disjoint");
    rewrite::to_group(eth, ip, udp, &ch);
    Outcome::Forwarded(d, ch)
}

/// A forwarding channel (flags as the supervisor sets them for XDP mode).
pub fn forwarding(
    index: u32,
    group: [u8; 4],
    group_port: u16,
    src_ip: [u8; 4],
    ttl: u8,
) -> Channel {
    Channel {
        index,
        flags: FLAG_RING | FLAG_FORWARD,
        egress_ifindex: 2,
        group,
        group_port: group_port.to_be_bytes(),
        ttl,
        src_mac: [0x02, 0x5d, 0, 0, 0, index as u8],
        src_ip,
        ..Channel::default()
    }
}

/// A channel that only copies into its ring and passes the frame on.
pub fn ring_only(index: u32) -> Channel {
    Channel {
        index,
        flags: FLAG_RING | FLAG_PASS,
        ..Channel::default()
    }
}

/// An Ethernet/IPv4/UDP frame with `options` bytes of IPv4 options (NOPs),
/// valid checksums (UDP checksum 0 unless `udp_checksum`) and `padding`
/// bytes after the datagram.
pub fn build(
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    options: usize,
    payload: &[u8],
    udp_checksum: bool,
    padding: usize,
) -> Vec<u8> {
    let ihl = Ipv4Hdr::LEN + options;
    let mut f = Vec::new();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&ETH_P_IPV4.to_be_bytes());
    let total = (ihl + UdpHdr::LEN + payload.len()) as u16;
    let mut ip = vec![0x40 | (ihl / 4) as u8, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, IPPROTO_UDP, 0, 0]);
    ip.extend_from_slice(&src.0);
    ip.extend_from_slice(&dst.0);
    ip.resize(ihl, 1);
    let c = checksum::ipv4_header(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut udp = Vec::new();
    udp.extend_from_slice(&src.1.to_be_bytes());
    udp.extend_from_slice(&dst.1.to_be_bytes());
    udp.extend_from_slice(&((UdpHdr::LEN + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    if udp_checksum {
        let c = checksum::udp(src.0, dst.0, &udp);
        udp[6..8].copy_from_slice(&c.to_be_bytes());
    }
    f.extend_from_slice(&udp);
    f.resize(f.len() + padding, 0);
    f
}
