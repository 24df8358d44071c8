//! Crafted Ethernet/IPv4/UDP frames for running the XDP program with
//! `BPF_PROG_TEST_RUN` (tests and the bench), with correct checksums.

use relay_common::checksum;

/// A UDP/IPv4 frame from `src:40000` to `dst:port` carrying `payload`, with
/// `options` bytes of IPv4 options (NOPs; a multiple of 4).
pub fn udp_frame(src: [u8; 4], dst: [u8; 4], port: u16, options: usize, payload: &[u8]) -> Vec<u8> {
    let ihl = 20 + options;
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (ihl + 8 + payload.len()) as u16;
    let mut ip = vec![0x40 | (ihl / 4) as u8, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, 17, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    ip.extend(std::iter::repeat_n(1u8, options));
    let c = checksum::ipv4_header(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&udp_segment(src, dst, port, payload));
    f
}

/// The UDP segment (header and payload) from `src:40000` to `dst:port`
/// carrying `payload`, with its checksum.
pub fn udp_segment(src: [u8; 4], dst: [u8; 4], port: u16, payload: &[u8]) -> Vec<u8> {
    let mut udp = vec![0x9c, 0x40];
    udp.extend_from_slice(&port.to_be_bytes());
    udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let c = checksum::udp(src, dst, &udp);
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    udp
}
