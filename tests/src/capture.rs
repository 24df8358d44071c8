//! Raw frame capture (AF_PACKET) on an interface inside a namespace, to check
//! what the XDP program put on the wire: MACs, TTL and both checksums.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::netns::Netns;

pub struct Capture {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<Vec<u8>>>,
}

/// A parsed IPv4/UDP frame.
#[derive(Debug)]
pub struct UdpFrame<'a> {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub ttl: u8,
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub dst_port: u16,
    pub ip_checksum_ok: bool,
    /// `None` when the UDP checksum is zero (not used).
    pub udp_checksum_ok: Option<bool>,
    pub payload: &'a [u8],
}

impl Capture {
    /// Captures every IPv4 frame arriving on `iface` in `ns`.
    pub fn start(ns: &Netns, iface: &'static str) -> Capture {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let stop2 = stop.clone();
        let handle = ns.spawn(move || {
            let proto = (libc::ETH_P_IP as u16).to_be();
            // SAFETY: plain socket(2)/setsockopt/bind with valid arguments; fd closed at the end.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto as i32) };
            assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
            let name = std::ffi::CString::new(iface).unwrap();
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            assert!(ifindex > 0, "no interface {iface}");
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = ifindex as i32;
            let rc = unsafe {
                libc::bind(fd, (&sll as *const libc::sockaddr_ll).cast(), std::mem::size_of::<libc::sockaddr_ll>() as u32)
            };
            assert_eq!(rc, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
            let size: libc::c_int = 32 << 20;
            let tv = libc::timeval { tv_sec: 0, tv_usec: 50_000 };
            unsafe {
                libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, (&size as *const libc::c_int).cast(), 4);
                libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, (&tv as *const libc::timeval).cast(), std::mem::size_of::<libc::timeval>() as u32);
            }
            ready_tx.send(()).unwrap();
            let mut frames = Vec::new();
            let mut buf = vec![0u8; 65536];
            loop {
                let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n > 0 {
                    frames.push(buf[..n as usize].to_vec());
                } else if stop2.load(Ordering::Relaxed) {
                    break;
                }
            }
            unsafe { libc::close(fd) };
            frames
        });
        ready_rx.recv_timeout(Duration::from_secs(5)).expect("capture did not start");
        Capture { stop, handle }
    }

    pub fn finish(self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("capture thread panicked")
    }
}

/// Parses an Ethernet/IPv4/UDP frame; `None` for anything else.
pub fn parse_udp(frame: &[u8]) -> Option<UdpFrame<'_>> {
    if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = (ip[0] & 0x0f) as usize * 4;
    if ip[0] >> 4 != 4 || ip[9] != 17 || ip.len() < ihl + 8 {
        return None;
    }
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let ip = &ip[..total.min(ip.len())];
    let udp = &ip[ihl..];
    let udp_len = u16::from_be_bytes([udp[4], udp[5]]) as usize;
    let udp = &udp[..udp_len.min(udp.len())];
    let udp_sum = u16::from_be_bytes([udp[6], udp[7]]);
    let udp_checksum_ok = (udp_sum != 0).then(|| {
        let mut pseudo = Vec::with_capacity(12 + udp.len());
        pseudo.extend_from_slice(&ip[12..20]);
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(udp);
        internet_checksum(&pseudo) == 0
    });
    Some(UdpFrame {
        dst_mac: frame[0..6].try_into().unwrap(),
        src_mac: frame[6..12].try_into().unwrap(),
        ttl: ip[8],
        src: ip[12..16].try_into().unwrap(),
        dst: ip[16..20].try_into().unwrap(),
        dst_port: u16::from_be_bytes([udp[2], udp[3]]),
        ip_checksum_ok: internet_checksum(&ip[..ihl]) == 0,
        udp_checksum_ok,
        payload: &udp[8..],
    })
}

/// RFC 1071 one's-complement sum, folded and complemented (0 over data that
/// includes a correct checksum).
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in bytes.chunks(2) {
        let w = if c.len() == 2 { u16::from_be_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], 0]) };
        sum += w as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An interface's MAC address, read inside `ns`.
pub fn mac_of(ns: &Netns, iface: &str) -> [u8; 6] {
    let out = ns.ip(&["-br", "link", "show", "dev", iface]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mac = text.split_whitespace().nth(2).expect("mac in `ip -br link`");
    let mut b = [0u8; 6];
    for (i, part) in mac.split(':').enumerate() {
        b[i] = u8::from_str_radix(part, 16).unwrap();
    }
    b
}
