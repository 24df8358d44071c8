extern crate std;
use std::vec::Vec;

use super::*;

const SRC: [u8; 4] = [192, 0, 2, 1];
const DST: [u8; 4] = [192, 0, 2, 2];
const IP: usize = EthHdr::LEN;

/// An Ethernet/IPv4/UDP frame from `SRC:40000` to `dst:26001` with `options`
/// bytes of IPv4 options (NOPs), a correct IPv4 checksum, and `padding`
/// bytes after the datagram.
fn frame(dst: [u8; 4], options: usize, payload: &[u8], padding: usize) -> Vec<u8> {
    let ihl = Ipv4Hdr::LEN + options;
    let total = (ihl + UdpHdr::LEN + payload.len()) as u16;
    let mut f = std::vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[0x40 | (ihl / 4) as u8, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, IPPROTO_UDP, 0, 0]);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&dst);
    f.resize(IP + ihl, 1);
    let c = checksum::ipv4_header(&f[IP..IP + ihl]);
    f[IP + 10..IP + 12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&[0x9c, 0x40, 0x65, 0x91]);
    f.extend_from_slice(&((UdpHdr::LEN + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f.resize(f.len() + padding, 0);
    f
}

/// Sets a 16-bit field of the IPv4 header and mends the header checksum, so
/// that only the field under test is wrong.
fn set_ip_u16(f: &mut [u8], at: usize, value: u16) {
    f[IP + at..IP + at + 2].copy_from_slice(&value.to_be_bytes());
    mend_ip_checksum(f);
}

fn mend_ip_checksum(f: &mut [u8]) {
    let ihl = usize::from(f[IP] & 0x0f) * 4;
    f[IP + 10..IP + 12].fill(0);
    let c = checksum::ipv4_header(&f[IP..IP + ihl.max(Ipv4Hdr::LEN)]);
    f[IP + 10..IP + 12].copy_from_slice(&c.to_be_bytes());
}

fn parse(f: &[u8]) -> Result<Datagram, NotDatagram> {
    udp_ipv4(f)
}

#[test]
fn a_datagram_with_and_without_options() {
    for options in [0, 4, 40] {
        let f = frame(DST, options, b"a datum", 0);
        let d = parse(&f).unwrap_or_else(|e| panic!("{options} bytes of options: {e:?}"));
        assert_eq!(
            d,
            Datagram {
                ip_offset: IP,
                udp_offset: IP + 20 + options,
                payload_len: 7,
                src_addr: SRC,
                dst_addr: DST,
                src_port: 40000,
                dst_port: 26001,
            }
        );
        assert!(ipv4_checksum_ok(&f[..], &d), "{options} bytes of options");
    }
}

#[test]
fn padding_after_the_datagram_is_not_payload() {
    let d = parse(&frame(DST, 0, b"x", 17)).unwrap();
    assert_eq!(d.payload_len, 1);
}

#[test]
fn an_empty_payload_is_a_datagram() {
    assert_eq!(parse(&frame(DST, 0, b"", 0)).unwrap().payload_len, 0);
}

#[test]
fn frames_that_end_early_are_truncated() {
    let f = frame(DST, 8, b"payload", 0);
    for len in [0, EthHdr::LEN - 1, EthHdr::LEN, IP + Ipv4Hdr::LEN - 1] {
        assert_eq!(parse(&f[..len]), Err(NotDatagram::Truncated), "{len} bytes");
    }
    // Whole headers, but the IP total length runs past the end.
    assert_eq!(parse(&f[..f.len() - 1]), Err(NotDatagram::Truncated));
}

#[test]
fn other_ether_types_and_ip_versions_are_not_ipv4() {
    let mut arp = frame(DST, 0, b"x", 0);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert_eq!(parse(&arp), Err(NotDatagram::NotIpv4));
    let mut v6 = frame(DST, 0, b"x", 0);
    v6[IP] = 0x65;
    assert_eq!(parse(&v6), Err(NotDatagram::NotIpv4));
}

#[test]
fn impossible_lengths_are_malformed() {
    let mut short_ihl = frame(DST, 0, b"x", 0);
    short_ihl[IP] = 0x44;
    assert_eq!(parse(&short_ihl), Err(NotDatagram::Malformed), "IHL 4");

    let mut f = frame(DST, 0, b"payload", 0);
    set_ip_u16(&mut f, 2, (Ipv4Hdr::LEN + UdpHdr::LEN - 1) as u16);
    assert_eq!(parse(&f), Err(NotDatagram::Malformed), "IP total length below IHL + UDP header");

    let udp_len = IP + Ipv4Hdr::LEN + 4;
    let mut f = frame(DST, 0, b"payload", 0);
    f[udp_len..udp_len + 2].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(parse(&f), Err(NotDatagram::Malformed), "UDP length below its header");
    f[udp_len..udp_len + 2].copy_from_slice(&16u16.to_be_bytes());
    assert_eq!(parse(&f), Err(NotDatagram::Malformed), "UDP length past the IP payload");
    f[udp_len..udp_len + 2].copy_from_slice(&15u16.to_be_bytes());
    assert!(parse(&f).is_ok(), "UDP length = the IP payload");
}

#[test]
fn other_protocols_are_not_udp() {
    let mut tcp = frame(DST, 0, b"a tcp segment, long enough", 0);
    tcp[IP + 9] = 6;
    mend_ip_checksum(&mut tcp);
    assert_eq!(parse(&tcp), Err(NotDatagram::NotUdp));
    // Too short for a UDP header, but not UDP: not ours rather than malformed.
    set_ip_u16(&mut tcp, 2, Ipv4Hdr::LEN as u16);
    assert_eq!(parse(&tcp), Err(NotDatagram::NotUdp));
}

#[test]
fn any_fragment_is_a_fragment_but_dont_fragment_is_not() {
    for (frag_off, want) in [
        (0x2000, Err(NotDatagram::Fragment)),
        (0x0001, Err(NotDatagram::Fragment)),
        (0x1fff, Err(NotDatagram::Fragment)),
        (0x4000, Ok(())),
        (0x0000, Ok(())),
    ] {
        let mut f = frame(DST, 0, b"x", 0);
        set_ip_u16(&mut f, 6, frag_off);
        assert_eq!(parse(&f).map(|_| ()), want, "frag_off {frag_off:#06x}");
    }
}

#[test]
fn the_ipv4_checksum_covers_every_word_of_the_header_and_its_options() {
    for options in [0, 4, 40] {
        let f = frame(DST, options, b"a datum", 0);
        let d = parse(&f).unwrap();
        for at in 0..Ipv4Hdr::LEN + options {
            let mut bad = f.clone();
            bad[IP + at] ^= 0x10;
            // Flipping the version or IHL nibbles changes the parse itself.
            if at == 0 {
                continue;
            }
            assert!(!ipv4_checksum_ok(&bad[..], &d), "byte {at} of {} changed", Ipv4Hdr::LEN + options);
        }
        // The UDP header and payload are not the IPv4 header's business.
        let mut other = f.clone();
        other[d.udp_offset] ^= 0x10;
        assert!(ipv4_checksum_ok(&other[..], &d));
    }
}

#[test]
fn a_checksum_over_a_frame_cut_inside_the_options_fails() {
    let f = frame(DST, 40, b"", 0);
    let d = parse(&f).unwrap();
    assert!(!ipv4_checksum_ok(&f[..IP + Ipv4Hdr::LEN + 20], &d));
}

#[test]
fn multicast_destinations() {
    for (dst, want) in [([224, 0, 0, 1], true), ([239, 255, 1, 2], true), ([240, 0, 0, 1], false), (DST, false)] {
        assert_eq!(parse(&frame(dst, 0, b"x", 0)).unwrap().to_multicast(), want, "{dst:?}");
    }
}

#[test]
fn slice_headers_stop_at_the_end() {
    let bytes = [1u8, 2, 3, 4];
    assert_eq!(Frame::header::<[u8; 4]>(&bytes[..], 0), Some(&[1, 2, 3, 4]));
    assert_eq!(Frame::header::<[u8; 2]>(&bytes[..], 2), Some(&[3, 4]));
    assert_eq!(Frame::header::<[u8; 2]>(&bytes[..], 3), None);
    assert_eq!(Frame::header::<[u8; 1]>(&bytes[..], usize::MAX), None, "no overflow");
}
