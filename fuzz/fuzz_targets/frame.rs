//! The frame path (parse, channel lookup, in-place rewrite) on arbitrary
//! frames: never panics; a frame the program does not forward is never
//! modified; a forwarded one changes only the rewritten fields, to the
//! channel's values, and checksums that verified before still verify by full
//! recompute afterwards (a zero UDP checksum stays zero).
//!
//! Input: 12 control bytes, then the frame. The first control byte can ask
//! for the frame to be "repaired" into a well-formed datagram to one of the
//! channels (lengths, protocol, destination, both checksums), so the
//! rewrite is reached without the fuzzer having to find valid checksums.

#![no_main]

use libfuzzer_sys::fuzz_target;
use relay_common::channel::GroupKey;
use relay_common::checksum;
use relay_common::rewrite::multicast_mac;
use relay_common::wire::{EthHdr, Ipv4Hdr, UdpHdr, ETH_P_IPV4, IPPROTO_UDP};
use speeddata_xdp_fuzz::cursor::Cursor;
use speeddata_xdp_fuzz::frame::{self, Channels, Outcome};

const FORWARD_PORT: u16 = 26001;
const RING_ONLY_PORT: u16 = 26002;
const GROUP_PORT: u16 = 26003;
const NO_CHANNEL_PORT: u16 = 27000;

const REPAIR: u8 = 1 << 0;
const NO_UDP_CHECKSUM: u8 = 1 << 1;
const KEEP_FRAGMENT: u8 = 1 << 4;
const PADDING: u8 = 1 << 5;

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let flags = c.u8();
    let mut group: [u8; 4] = c.bytes(4).try_into().unwrap_or([239, 1, 1, 1]);
    group[0] = 0xe0 | (group[0] & 0x0f);
    let src_ip: [u8; 4] = c.bytes(4).try_into().unwrap_or([10, 0, 0, 1]);
    let ttl = c.u8();
    let group_port = c.u16();
    let mut f = c.rest().to_vec();

    let input_group = [group[0], group[1], group[2], group[3].wrapping_add(1)];
    let channels = Channels {
        by_group: vec![(
            GroupKey::new(input_group, GROUP_PORT),
            frame::forwarding(3, group, group_port, src_ip, ttl),
        )],
        by_port: vec![
            (
                FORWARD_PORT,
                frame::forwarding(1, group, group_port, src_ip, ttl),
            ),
            (RING_ONLY_PORT, frame::ring_only(2)),
        ],
    };
    if flags & REPAIR != 0 {
        repair(&mut f, flags, input_group);
    }

    let orig = f.clone();
    match frame::handle(&mut f, &channels) {
        Outcome::Forwarded(d, ch) => {
            let (ip, udp) = (d.ip_offset, d.udp_offset);
            let ihl = udp - ip;
            let udp_len = UdpHdr::LEN + d.payload_len;
            // Only the rewritten fields change.
            for (i, (a, b)) in orig.iter().zip(&f).enumerate() {
                let rewritten = i < 12
                    || i == ip + 8
                    || (ip + 10..ip + 20).contains(&i)
                    || (udp + 2..udp + 4).contains(&i)
                    || (udp + 6..udp + 8).contains(&i);
                assert!(
                    rewritten || a == b,
                    "byte {i} changed ({a:#04x} -> {b:#04x}) outside the rewritten fields"
                );
            }
            assert_eq!(f[..6], multicast_mac(ch.group), "destination MAC");
            assert_eq!(f[6..12], ch.src_mac, "source MAC");
            assert_eq!(f[ip + 8], ch.ttl, "TTL");
            assert_eq!(f[ip + 12..ip + 16], ch.src_ip, "source address");
            assert_eq!(f[ip + 16..ip + 20], ch.group, "destination address");
            assert_eq!(f[udp + 2..udp + 4], ch.group_port, "destination port");

            let stored = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
            // Only intact headers are forwarded, and they stay intact.
            assert!(checksum::ipv4_header_ok(&orig[ip..udp]), "forwarded a header with a wrong checksum");
            assert_eq!(stored(&f, ip + 10), checksum::ipv4_header(&f[ip..udp]), "IPv4 checksum (IHL {ihl})");
            let before = stored(&orig, udp + 6);
            let after = stored(&f, udp + 6);
            if before == 0 {
                assert_eq!(after, 0, "a datagram without UDP checksum got one");
            } else if checksum::udp(d.src_addr, d.dst_addr, &orig[udp..udp + udp_len]) == before {
                let full = checksum::udp(ch.src_ip, ch.group, &f[udp..udp + udp_len]);
                assert_eq!(after, full, "UDP checksum ({udp_len} bytes)");
            }
        }
        outcome => assert!(
            f == orig,
            "frame modified without being forwarded: {outcome:?}"
        ),
    }
});

/// Makes `f` a well-formed UDP/IPv4 datagram addressed as `flags` say, with
/// valid checksums, keeping the fuzzer's bytes everywhere else.
fn repair(f: &mut [u8], flags: u8, input_group: [u8; 4]) {
    let ip = EthHdr::LEN;
    if f.len() < ip + Ipv4Hdr::LEN + UdpHdr::LEN {
        return;
    }
    f[12..14].copy_from_slice(&ETH_P_IPV4.to_be_bytes());
    let mut ihl = (5 + (f[ip] & 0x0f) % 11) as usize * 4;
    if ip + ihl + UdpHdr::LEN > f.len() {
        ihl = Ipv4Hdr::LEN;
    }
    let room = f.len() - ip - ihl - UdpHdr::LEN;
    let padding = if flags & PADDING != 0 {
        usize::from(f[ip + 1] % 8).min(room)
    } else {
        0
    };
    let total = (f.len() - ip - padding).min(usize::from(u16::MAX));
    f[ip] = 0x40 | (ihl / 4) as u8;
    f[ip + 2..ip + 4].copy_from_slice(&(total as u16).to_be_bytes());
    if flags & KEEP_FRAGMENT == 0 {
        f[ip + 6] &= 0x40;
        f[ip + 7] = 0;
    }
    f[ip + 9] = IPPROTO_UDP;
    let udp = ip + ihl;
    let port = match (flags >> 2) & 3 {
        0 => FORWARD_PORT,
        1 => RING_ONLY_PORT,
        2 => {
            f[ip + 16..ip + 20].copy_from_slice(&input_group);
            GROUP_PORT
        }
        _ => NO_CHANNEL_PORT,
    };
    f[udp + 2..udp + 4].copy_from_slice(&port.to_be_bytes());
    let udp_len = total - ihl;
    f[udp + 4..udp + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    f[ip + 10..ip + 12].fill(0);
    let c = checksum::ipv4_header(&f[ip..udp]);
    f[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
    let c = if flags & NO_UDP_CHECKSUM != 0 {
        0
    } else {
        let (src, dst) = (
            f[ip + 12..ip + 16].try_into().unwrap(),
            f[ip + 16..ip + 20].try_into().unwrap(),
        );
        checksum::udp(src, dst, &f[udp..udp + udp_len])
    };
    f[udp + 6..udp + 8].copy_from_slice(&c.to_be_bytes());
}
