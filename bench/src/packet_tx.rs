//! The fast generator's transmit path: whole Ethernet/IPv4/UDP frames written
//! into an `AF_PACKET` TX ring (`PACKET_TX_RING`, TPACKET_V2) on the sender's
//! interface, past the qdisc (`PACKET_QDISC_BYPASS`), one `send()` per batch.
//! No UDP socket, route lookup or neighbour lookup per datagram: the sender's
//! own CPU time per datum drops, which matters on veth, where the relay host's
//! softirq work also runs on the sender's CPU.
//!
//! Hand-written (about 150 lines over `libc`) rather than a crate: the one
//! maintained TX-ring crate found, `netring` 0.29, writes TPACKET_V1 frame
//! headers into a ring it set to TPACKET_V3, and in a namespace its
//! `Injector` queued and flushed 10 frames that never left (`lo` tx_packets
//! stayed 0); `af_packet` is receive-side and GPL-3.0.
//!
//! Each frame starts with a `virtio_net_hdr` (`PACKET_VNET_HDR`) whose
//! `hdr_len` covers the whole frame. That makes the kernel copy the frame into
//! the skb's linear area, as a UDP socket's skb is. Without it, everything past
//! the Ethernet header stays in the ring's pages as page fragments, which veth
//! then copies again page by page (a zero-copy skb crossing into another
//! namespace), and the relay's XDP on the peer has to linearize.

use std::io;
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use relay_common::checksum;

/// Ethernet + IPv4 (no options) + UDP headers.
pub const HEADERS: usize = 14 + 20 + 8;
/// UDP source port when the load's `from` has port 0.
pub const DEFAULT_SRC_PORT: u16 = 40000;

/// Addresses of every frame the generator sends on one link.
#[derive(Clone, Copy, Debug)]
pub struct Frames {
    pub src_mac: [u8; 6],
    /// The next hop's MAC (the relay's input interface for every destination).
    pub dst_mac: [u8; 6],
    pub src: SocketAddrV4,
}

impl Frames {
    /// Writes the frame to `to` carrying `payload` at the start of `buf`;
    /// returns its length. Both checksums are computed: a real source's NIC
    /// puts a complete UDP checksum on the wire, and the relay's XDP rewrite
    /// updates it incrementally. The IPv4 header is the test harness's
    /// (`integration_tests::frames::udp_frame`: ID 0x1234, DF, TTL 64).
    pub fn write(&self, buf: &mut [u8], to: SocketAddrV4, payload: &[u8]) -> usize {
        let len = HEADERS + payload.len();
        let f = &mut buf[..len];
        f[0..6].copy_from_slice(&self.dst_mac);
        f[6..12].copy_from_slice(&self.src_mac);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let src = self.src.ip().octets();
        let dst = to.ip().octets();
        {
            let ip = &mut f[14..34];
            ip[0] = 0x45;
            ip[1] = 0;
            ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
            ip[4..10].copy_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, 17]);
            ip[12..16].copy_from_slice(&src);
            ip[16..20].copy_from_slice(&dst);
            let c = checksum::ipv4_header(ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
        }
        let udp = &mut f[34..];
        let port = if self.src.port() == 0 { DEFAULT_SRC_PORT } else { self.src.port() };
        udp[0..2].copy_from_slice(&port.to_be_bytes());
        udp[2..4].copy_from_slice(&to.port().to_be_bytes());
        udp[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp[8..].copy_from_slice(payload);
        let c = checksum::udp(src, dst, udp);
        udp[6..8].copy_from_slice(&c.to_be_bytes());
        len
    }
}

/// Ring geometry: 1024 frames of 256 bytes (16 to a 4 KiB block), far more
/// than one batch, since every `send()` waits until its batch has left.
const FRAME_SIZE: usize = 256;
const BLOCK_SIZE: usize = 4096;
const FRAME_NR: usize = 1024;
/// Where a frame's data starts when `PACKET_TX_HAS_OFF` is not set:
/// `TPACKET2_HDRLEN - sizeof(sockaddr_ll)` = the aligned `tpacket2_hdr`.
const DATA_OFFSET: usize = libc::TPACKET2_HDRLEN - std::mem::size_of::<libc::sockaddr_ll>();
/// `struct virtio_net_hdr` (no `num_buffers`).
const VNET_HDR: usize = 10;
/// Bound on waiting for the kernel to hand a frame back, and on one `send()`.
const WAIT: Duration = Duration::from_secs(2);

/// Largest frame (Ethernet onwards) a slot holds.
pub const MAX_FRAME: usize = FRAME_SIZE - DATA_OFFSET - VNET_HDR;

/// An `AF_PACKET` socket bound to one interface with a mapped TX ring.
pub struct TxRing {
    fd: OwnedFd,
    map: NonNull<u8>,
    next: usize,
    queued: usize,
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T, what: &str) -> Result<()> {
    // SAFETY: value points at a live T of the size passed.
    let r = unsafe {
        libc::setsockopt(fd.as_raw_fd(), level, name, (value as *const T).cast(), std::mem::size_of::<T>() as u32)
    };
    if r != 0 {
        bail!("setsockopt({what}) on the generator's packet socket: {}", io::Error::last_os_error());
    }
    Ok(())
}

impl TxRing {
    /// Opens the ring on `iface` in the calling thread's network namespace (root).
    pub fn open(iface: &str) -> Result<TxRing> {
        // Protocol 0: the socket receives nothing; it only sends.
        // SAFETY: plain socket(2).
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            bail!("AF_PACKET socket for the generator: {}", io::Error::last_os_error());
        }
        // SAFETY: a new fd nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setsockopt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &(libc::tpacket_versions::TPACKET_V2 as libc::c_int),
            "PACKET_VERSION",
        )?;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &1 as &libc::c_int, "PACKET_VNET_HDR")?;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &1 as &libc::c_int, "PACKET_QDISC_BYPASS")?;
        let timeout = libc::timeval { tv_sec: WAIT.as_secs() as libc::time_t, tv_usec: 0 };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDTIMEO, &timeout, "SO_SNDTIMEO")?;
        let req = libc::tpacket_req {
            tp_block_size: BLOCK_SIZE as u32,
            tp_block_nr: (FRAME_NR * FRAME_SIZE / BLOCK_SIZE) as u32,
            tp_frame_size: FRAME_SIZE as u32,
            tp_frame_nr: FRAME_NR as u32,
        };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_TX_RING, &req, "PACKET_TX_RING")?;
        // SAFETY: maps the ring the kernel just allocated for this fd.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                FRAME_NR * FRAME_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            bail!("mapping the generator's TX ring: {}", io::Error::last_os_error());
        }
        let ring = TxRing { fd, map: NonNull::new(map.cast()).expect("mmap returned null"), next: 0, queued: 0 };
        let name = std::ffi::CString::new(iface)?;
        // SAFETY: a valid C string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            bail!("no interface {iface} for the generator's packet socket");
        }
        // SAFETY: sockaddr_ll is plain data; all-zero is valid before the fields are set.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: sll is a sockaddr_ll of the size passed.
        let r = unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r != 0 {
            bail!("binding the generator's packet socket to {iface}: {}", io::Error::last_os_error());
        }
        Ok(ring)
    }

    fn frame(&self, i: usize) -> *mut u8 {
        // SAFETY: i < FRAME_NR, so the offset is inside the mapping.
        unsafe { self.map.as_ptr().add(i * FRAME_SIZE) }
    }

    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: tp_status is the first, 4-byte aligned u32 of each frame;
        // the kernel updates it concurrently, hence atomic.
        unsafe { &*self.frame(i).cast::<AtomicU32>() }
    }

    /// The next free frame's room for a frame of up to [`MAX_FRAME`] bytes.
    /// Waits (bounded) if the kernel still holds it.
    pub fn next_frame(&mut self) -> Result<&mut [u8]> {
        let start = Instant::now();
        loop {
            match self.status(self.next).load(Ordering::Acquire) {
                libc::TP_STATUS_AVAILABLE => break,
                libc::TP_STATUS_WRONG_FORMAT => {
                    bail!(
                        "the kernel rejected a generator frame (TP_STATUS_WRONG_FORMAT) in TX ring slot {}",
                        self.next
                    )
                }
                _ if start.elapsed() > WAIT => {
                    bail!("TX ring slot {} still not sent after {WAIT:?}", self.next)
                }
                _ => {
                    let _ = self.flush();
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        }
        // SAFETY: an AVAILABLE frame belongs to user space until we set
        // SEND_REQUEST; the data area lies inside the frame.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.frame(self.next).add(DATA_OFFSET + VNET_HDR), MAX_FRAME) })
    }

    /// Hands the frame from the last [`next_frame`](Self::next_frame), `len`
    /// bytes of it, to the kernel (sent on the next [`flush`](Self::flush)).
    pub fn queue(&mut self, len: usize) {
        assert!(len <= MAX_FRAME, "frame of {len} bytes in a {MAX_FRAME}-byte slot");
        let f = self.frame(self.next);
        let total = (VNET_HDR + len) as u32;
        // virtio_net_hdr: no flags, no GSO, hdr_len (little-endian) = the
        // whole frame, so the kernel copies it into the skb's linear area.
        let mut vnet = [0u8; VNET_HDR];
        vnet[2..4].copy_from_slice(&(len as u16).to_le_bytes());
        // SAFETY: the frame is ours (AVAILABLE); tpacket2_hdr is at its
        // start, the vnet header at DATA_OFFSET.
        unsafe {
            std::ptr::copy_nonoverlapping(vnet.as_ptr(), f.add(DATA_OFFSET), VNET_HDR);
            let h = f.cast::<libc::tpacket2_hdr>();
            (*h).tp_len = total;
            (*h).tp_snaplen = total;
        }
        // Release: the frame's bytes are visible before the kernel sees the status.
        self.status(self.next).store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.next = (self.next + 1) % FRAME_NR;
        self.queued += 1;
    }

    /// One `send()` for every queued frame; it returns once they have left
    /// (or after [`WAIT`]). Frames a failed call left queued go with the next.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.queued == 0 {
            return Ok(());
        }
        loop {
            // SAFETY: with a TX ring, send(2) ignores the buffer.
            let r = unsafe { libc::send(self.fd.as_raw_fd(), std::ptr::null(), 0, 0) };
            if r >= 0 {
                self.queued = 0;
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Drop for TxRing {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in open, once.
        unsafe { libc::munmap(self.map.as_ptr().cast(), FRAME_NR * FRAME_SIZE) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// The frame is the test harness's crafted frame (built with
    /// relay-common's checksums) with this link's MACs.
    #[test]
    fn frame_matches_the_harness_frame() {
        let frames = Frames {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 0),
        };
        for payload in [&b""[..], b"odd", &[0xab; 60][..], &[0xff; MAX_FRAME - HEADERS][..]] {
            let to = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 2), 7001);
            let mut buf = [0u8; MAX_FRAME];
            let n = frames.write(&mut buf, to, payload);
            let mut want = integration_tests::frames::udp_frame([192, 0, 2, 1], [198, 51, 100, 2], 7001, 0, payload);
            want[0..6].copy_from_slice(&frames.dst_mac);
            want[6..12].copy_from_slice(&frames.src_mac);
            assert_eq!(&buf[..n], &want[..]);
            let ip = &buf[14..34];
            assert_eq!(u16::from_be_bytes([ip[10], ip[11]]), checksum::ipv4_header(ip));
        }
    }
}
