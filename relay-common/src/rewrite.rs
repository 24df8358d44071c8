//! Rewriting a received datagram in place into its full-rate multicast copy.
//!
//! Only the fields that change are touched, and both checksums are updated
//! incrementally (RFC 1624), so the cost does not depend on the payload size
//! and the payload is never read.

use crate::channel::Channel;
use crate::checksum::Delta;
use crate::wire::{EthHdr, Ipv4Hdr, UdpHdr};

/// The Ethernet address of an IPv4 multicast group: `01:00:5e` and the low 23 bits.
#[inline(always)]
pub const fn multicast_mac(group: [u8; 4]) -> [u8; 6] {
    [0x01, 0x00, 0x5e, group[1] & 0x7f, group[2], group[3]]
}

/// Writes `mac` as a 4-byte and a 2-byte word. Assigning the `[u8; 6]`
/// compiles to a byte-wise copy for the XDP program (alignment 1).
#[inline(always)]
fn store_mac(field: &mut [u8; 6], mac: [u8; 6]) {
    let [a, b, c, d, e, f] = mac;
    let p = field.as_mut_ptr();
    // SAFETY: `p` points to 6 writable bytes; both stores are unaligned-safe
    // and stay inside them (bytes 0..4 and 4..6).
    unsafe {
        p.cast::<u32>().write_unaligned(u32::from_ne_bytes([a, b, c, d]));
        p.add(4).cast::<u16>().write_unaligned(u16::from_ne_bytes([e, f]));
    }
}

/// Writes `addr` as one 4-byte word (see [`store_mac`]).
#[inline(always)]
fn store_addr(field: &mut [u8; 4], addr: [u8; 4]) {
    // SAFETY: `field` is 4 writable bytes; the store is unaligned-safe.
    unsafe { field.as_mut_ptr().cast::<u32>().write_unaligned(u32::from_ne_bytes(addr)) }
}

/// Rewrites the headers to send the datagram to `ch`'s group: destination
/// MAC/IP/port of the group, source MAC/IP of the egress interface, `ch.ttl`;
/// IPv4 checksum updated, UDP checksum updated (left at 0 if the sender sent none).
///
/// Every old value is read before anything is written, and nothing written is
/// read back (a load of bytes just stored stalls the CPU); both checksums are
/// updated in one step each ([`Delta`]).
#[inline(always)]
pub fn to_group(eth: &mut EthHdr, ip: &mut Ipv4Hdr, udp: &mut UdpHdr, ch: &Channel) {
    // The addresses are in both checksums (UDP's through its pseudo-header).
    let addrs = Delta::ZERO.addr(ip.src, ch.src_ip).addr(ip.dst, ch.group);
    let ip_check = addrs.word([ip.ttl, ip.protocol], [ch.ttl, ip.protocol]).apply(ip.check);
    let udp_check = udp.check;

    store_mac(&mut eth.dst, multicast_mac(ch.group));
    store_mac(&mut eth.src, ch.src_mac);
    ip.ttl = ch.ttl;
    ip.check = ip_check;
    store_addr(&mut ip.src, ch.src_ip);
    store_addr(&mut ip.dst, ch.group);
    if udp_check != [0, 0] {
        let c = addrs.word(udp.dst_port, ch.group_port).apply(udp_check);
        // 0 means "no checksum" in UDP; a computed 0 is sent as all ones.
        udp.check = if c == [0, 0] { [0xff, 0xff] } else { c };
    }
    udp.dst_port = ch.group_port;
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::checksum;
    use crate::wire::{FrameHeader, ETH_P_IPV4, IPPROTO_UDP};

    fn channel() -> Channel {
        Channel {
            index: 3,
            flags: crate::channel::FLAG_FORWARD,
            egress_ifindex: 7,
            group: [239, 130, 1, 9],
            group_port: 26901u16.to_be_bytes(),
            ttl: 4,
            src_mac: [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee],
            src_ip: [198, 51, 100, 1],
            ..Channel::default()
        }
    }

    /// A valid frame with `options` bytes of IPv4 options and the given payload.
    fn frame(options: usize, payload: &[u8], udp_checksum: bool) -> Vec<u8> {
        let ihl = 20 + options;
        let mut f = Vec::new();
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&ETH_P_IPV4.to_be_bytes());
        let total = (ihl + 8 + payload.len()) as u16;
        let mut ip = Vec::from([0x40 | (ihl / 4) as u8, 0]);
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, IPPROTO_UDP, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
        ip.extend(core::iter::repeat_n(1u8, options)); // NOP options
        let c = checksum::ipv4_header(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut udp = Vec::from([0x9c, 0x40, 0x65, 0x91]);
        udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        if udp_checksum {
            let c = checksum::udp([192, 0, 2, 1], [192, 0, 2, 2], &udp);
            udp[6..8].copy_from_slice(&c.to_be_bytes());
        }
        f.extend_from_slice(&udp);
        f
    }

    fn split(f: &mut [u8]) -> (&mut EthHdr, &mut Ipv4Hdr, &mut UdpHdr) {
        fn view<T: FrameHeader>(b: &mut [u8]) -> &mut T {
            assert!(b.len() >= core::mem::size_of::<T>());
            // SAFETY: length checked; T is FrameHeader (align 1, any bytes valid).
            unsafe { &mut *(b.as_mut_ptr() as *mut T) }
        }
        let (eth, rest) = f.split_at_mut(EthHdr::LEN);
        let ihl = usize::from(rest[0] & 0x0f) * 4;
        let (ip, udp) = rest.split_at_mut(ihl);
        (view(eth), view(ip), view(udp))
    }

    fn rewrite_and_check(options: usize, payload: &[u8], udp_checksum: bool) {
        let ch = channel();
        let mut f = frame(options, payload, udp_checksum);
        let (eth, ip, udp) = split(&mut f);
        to_group(eth, ip, udp, &ch);

        assert_eq!(f[..6], [0x01, 0x00, 0x5e, 130 & 0x7f, 1, 9]);
        assert_eq!(f[6..12], ch.src_mac);
        let ihl = 20 + options;
        let ip = &f[14..14 + ihl];
        assert_eq!(ip[8], 4, "ttl");
        assert_eq!(ip[12..16], ch.src_ip);
        assert_eq!(ip[16..20], ch.group);
        assert_eq!(u16::from_be_bytes([ip[10], ip[11]]), checksum::ipv4_header(ip), "IPv4 checksum");
        let udp = &f[14 + ihl..];
        assert_eq!(udp[2..4], 26901u16.to_be_bytes());
        assert_eq!(udp[8..], *payload, "payload untouched");
        let got = u16::from_be_bytes([udp[6], udp[7]]);
        if udp_checksum {
            assert_eq!(got, checksum::udp(ch.src_ip, ch.group, udp), "UDP checksum");
        } else {
            assert_eq!(got, 0, "no UDP checksum stays none");
        }
    }

    #[test]
    fn construct_multicast_mac() {
        assert_eq!(multicast_mac([239, 255, 0, 1]), [0x01, 0x00, 0x5e, 0x7f, 0, 1]);
        assert_eq!(multicast_mac([224, 128, 2, 3]), [0x01, 0x00, 0x5e, 0x00, 2, 3]);
    }

    #[test]
    fn rewrite_matches_full_recompute() {
        rewrite_and_check(0, b"datum", true);
        rewrite_and_check(0, b"", true);
        rewrite_and_check(4, b"odd-length payload", true);
        rewrite_and_check(40, &[0xff; 1400], true);
        rewrite_and_check(0, b"no checksum", false);
    }

    #[test]
    fn rewrite_many_payloads() {
        // A cheap sweep over payload contents and lengths (varies the checksum).
        for n in 0..300usize {
            let payload: Vec<u8> = (0..n).map(|i| (i * 31 + n * 7) as u8).collect();
            rewrite_and_check(n % 3 * 4, &payload, true);
        }
    }
}
