//! Batched UDP I/O: `recvmmsg`/`sendmmsg` over preallocated buffers, so one
//! syscall moves up to [`BATCH`] datagrams. Written against libc because the
//! socket crates we use (socket2, tokio) send and receive one datagram per call.

use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

/// Datagrams per syscall.
pub const BATCH: usize = 64;
/// Room for the largest UDP payload over IPv4 (65,507) so nothing is truncated.
/// The buffers are allocated zeroed and untouched, so only the pages that
/// datagrams actually fill count towards the process's memory.
pub const MAX_DATAGRAM: usize = 65_536;

/// Receive buffer of a channel's input socket: absorbs bursts and holds what
/// arrives while a channel process restarts (16 MiB ≈ 200,000 example datums).
pub const INPUT_RCVBUF: usize = 16 << 20;

/// Receive buffers for one `recvmmsg` call.
pub struct RecvBatch {
    buf: Vec<u8>,
    lens: [usize; BATCH],
    addrs: Box<[libc::sockaddr_in; BATCH]>,
    n: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    pub fn new() -> RecvBatch {
        RecvBatch {
            buf: vec![0; BATCH * MAX_DATAGRAM],
            lens: [0; BATCH],
            // SAFETY: sockaddr_in is plain old data; all-zero is a valid value.
            addrs: Box::new(unsafe { MaybeUninit::zeroed().assume_init() }),
            n: 0,
        }
    }

    /// One non-blocking `recvmmsg`: the number of datagrams now in the batch,
    /// or `WouldBlock` when none is waiting.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // SAFETY: zeroed iovec/mmsghdr are valid "empty" values; every pointer
        // set below points into self.buf / self.addrs, which outlive the call.
        let mut iov: [libc::iovec; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
        for i in 0..BATCH {
            iov[i].iov_base = self.buf[i * MAX_DATAGRAM..].as_mut_ptr().cast();
            iov[i].iov_len = MAX_DATAGRAM;
            msgs[i].msg_hdr.msg_iov = &mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_in).cast();
            msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
        }
        // SAFETY: msgs holds BATCH initialised headers as set up above.
        let rc = unsafe {
            libc::recvmmsg(fd, msgs.as_mut_ptr(), BATCH as u32, libc::MSG_DONTWAIT, std::ptr::null_mut())
        };
        if rc < 0 {
            self.n = 0;
            return Err(io::Error::last_os_error());
        }
        self.n = rc as usize;
        for i in 0..self.n {
            // A datagram larger than the buffer cannot exist over IPv4 (see MAX_DATAGRAM).
            self.lens[i] = (msgs[i].msg_len as usize).min(MAX_DATAGRAM);
        }
        Ok(self.n)
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Datagram `i` of the last `recv`.
    pub fn datagram(&self, i: usize) -> &[u8] {
        assert!(i < self.n);
        &self.buf[i * MAX_DATAGRAM..i * MAX_DATAGRAM + self.lens[i]]
    }

    /// The source of datagram `i`.
    pub fn source(&self, i: usize) -> SocketAddr {
        let a = &self.addrs[i];
        SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
            u16::from_be(a.sin_port),
        ))
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.n).map(|i| self.datagram(i))
    }
}

/// Sends datagrams on a connected socket with `sendmmsg`, up to [`BATCH`] per
/// call. Returns how many the kernel took (it may be fewer than given, or
/// `WouldBlock` for none).
pub fn send_batch<'a>(fd: RawFd, datagrams: impl Iterator<Item = &'a [u8]>) -> io::Result<usize> {
    // SAFETY: as in RecvBatch::recv; the iovecs point into borrowed slices
    // that live for the duration of the call.
    let mut iov: [libc::iovec; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
    let mut n = 0;
    for d in datagrams.take(BATCH) {
        iov[n].iov_base = d.as_ptr() as *mut libc::c_void;
        iov[n].iov_len = d.len();
        msgs[n].msg_hdr.msg_iov = &mut iov[n];
        msgs[n].msg_hdr.msg_iovlen = 1;
        n += 1;
    }
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: the first n headers are initialised; the socket is connected, so no names.
    let rc = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), n as u32, libc::MSG_DONTWAIT) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc as usize)
}

/// The channel's input socket: bound to `bind:port`, non-blocking, with a
/// large receive buffer so bursts wait in the kernel rather than being dropped.
pub fn input_socket(bind: Ipv4Addr, port: u16, rcvbuf: usize) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    set_buffer(&s, libc::SO_RCVBUFFORCE, rcvbuf, |s, n| s.set_recv_buffer_size(n));
    s.bind(&SocketAddrV4::new(bind, port).into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Joins the channel's input group (if any) on the interface with address
/// `iface` (any interface when `None`): the kernel then answers IGMP queries
/// for it, so switches deliver the group's datagrams to this host.
pub fn join_input_group(sock: &UdpSocket, group: Option<Ipv4Addr>, iface: Option<Ipv4Addr>) -> io::Result<()> {
    match group {
        Some(g) => sock.join_multicast_v4(&g, &iface.unwrap_or(Ipv4Addr::UNSPECIFIED)),
        None => Ok(()),
    }
}

/// A socket connected to a multicast group, for publishing.
pub fn output_socket(group: SocketAddrV4, ttl: u32, loop_back: bool, egress: Option<Ipv4Addr>, sndbuf: usize) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_multicast_ttl_v4(ttl)?;
    s.set_multicast_loop_v4(loop_back)?;
    if let Some(addr) = egress {
        s.set_multicast_if_v4(&addr)?;
    }
    set_buffer(&s, libc::SO_SNDBUFFORCE, sndbuf, |s, n| s.set_send_buffer_size(n));
    s.connect(&group.into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Sets a socket buffer size: the `*FORCE` option first (root may exceed
/// `net.core.[rw]mem_max`), then the ordinary one, which the kernel caps.
fn set_buffer(s: &Socket, force_opt: libc::c_int, size: usize, fallback: impl Fn(&Socket, usize) -> io::Result<()>) {
    let v = size as libc::c_int;
    // SAFETY: setsockopt with a pointer to a c_int of the right length.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            force_opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    if rc != 0 {
        // Best effort: a smaller buffer still works, it only absorbs less of a burst.
        let _ = fallback(s, size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trip_on_loopback_keeps_order_bytes_and_sources() {
        let rx = input_socket(Ipv4Addr::LOCALHOST, 0, 1 << 20).unwrap();
        let port = rx.local_addr().unwrap().port();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(("127.0.0.1", port)).unwrap();
        let payloads: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; i as usize]).collect();
        let mut sent = 0;
        while sent < payloads.len() {
            sent += send_batch(tx.as_raw_fd(), payloads[sent..].iter().map(|p| &p[..])).unwrap();
        }
        let mut got = Vec::new();
        let mut batch = RecvBatch::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < payloads.len() && std::time::Instant::now() < deadline {
            match batch.recv(rx.as_raw_fd()) {
                Ok(n) => {
                    assert!(n <= BATCH);
                    for i in 0..n {
                        assert_eq!(batch.source(i), tx.local_addr().unwrap());
                        got.push(batch.datagram(i).to_vec());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, payloads);
    }

    #[test]
    fn empty_socket_would_block() {
        let rx = input_socket(Ipv4Addr::LOCALHOST, 0, 1 << 16).unwrap();
        let err = RecvBatch::new().recv(rx.as_raw_fd()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }
}
