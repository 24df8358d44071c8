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

/// Receive buffer of a channel's input socket: absorbs bursts and the times
/// the channel process is off the CPU, and holds what arrives while a channel
/// process restarts. The kernel charges each datagram its buffer's true size
/// (0.7–4.5 KiB for a 50-byte datum, by driver and sender), and doubles this
/// value: 128 MiB holds 30,000–180,000 datums. At 16 MiB, socket mode lost
/// 3.6 % at 250k/s on two shared cores to overflows of this buffer while
/// its channel process used 60 % of a core (`cargo xtask soak --mode socket
/// --rate 250000`, 2026-11-29); at 64 MiB nothing. Only a backlog uses it,
/// and `net.ipv4.udp_mem` caps all UDP sockets' memory together.
pub const INPUT_RCVBUF: usize = 64 << 20;

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

/// `UDP_SEGMENT` from linux/udp.h (libc exports it only for some targets).
const UDP_SEGMENT: libc::c_int = 103;
/// Most segments one GSO send may carry (`UDP_MAX_SEGMENTS`, 64 before Linux 6.9).
const MAX_SEGMENTS: usize = 64;
/// Most payload bytes one GSO send may carry (one IPv4 datagram's worth).
const MAX_GSO_BYTES: usize = 65_000;

/// Whether and how far a socket may use UDP segmentation offload (GSO): one
/// `sendmmsg` message carries a run of equal-sized datagrams and goes through
/// the IP output path once, split into datagrams further down (by the NIC, or
/// by the kernel just before the driver). Identical on the wire to one message
/// per datagram.
#[derive(Debug)]
pub struct Gso {
    /// Largest segment that fits the route's MTU; 0 once the kernel refused GSO.
    max_segment: std::cell::Cell<usize>,
}

impl Gso {
    /// For a connected socket: segments up to its route's MTU (`IP_MTU`).
    pub fn for_socket(fd: RawFd) -> Gso {
        let mut mtu: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `mtu`.
        let rc = unsafe { libc::getsockopt(fd, libc::IPPROTO_IP, libc::IP_MTU, (&mut mtu as *mut libc::c_int).cast(), &mut len) };
        // 20 bytes of IPv4 header (no options) and 8 of UDP per segment.
        let max = if rc == 0 && mtu > 28 { mtu as usize - 28 } else { 0 };
        Gso { max_segment: std::cell::Cell::new(max) }
    }

    /// No segmentation: one message per datagram.
    pub fn off() -> Gso {
        Gso { max_segment: std::cell::Cell::new(0) }
    }

    pub fn enabled(&self) -> bool {
        self.max_segment.get() > 0
    }
}

/// Splits datagrams (by length) into runs that one message can carry: with
/// GSO, datagrams of one size (at most `max_segment`) followed by at most one
/// shorter one, within the kernel's limits; without it (`max_segment` 0),
/// one datagram per run. Calls `run(start, count)` for each, in order.
pub fn gso_runs(lens: &[usize], max_segment: usize, mut run: impl FnMut(usize, usize)) {
    let mut i = 0;
    while i < lens.len() {
        let seg = lens[i];
        let mut n = 1;
        if seg > 0 && seg <= max_segment {
            let mut bytes = seg;
            while i + n < lens.len() && n < MAX_SEGMENTS && bytes + lens[i + n] <= MAX_GSO_BYTES {
                let l = lens[i + n];
                if l > seg || l == 0 {
                    break;
                }
                bytes += l;
                n += 1;
                if l < seg {
                    break; // only the last segment may be shorter
                }
            }
        }
        run(i, n);
        i += n;
    }
}

/// Sends datagrams on a connected socket with `sendmmsg`, up to [`BATCH`] per
/// call, runs of equal-sized datagrams as one GSO message each where `gso`
/// allows. Returns how many datagrams the kernel took (it may be fewer than
/// given, or `WouldBlock` for none). If the kernel refuses GSO, `gso` is
/// turned off for good and the datagrams go one per message.
///
/// Hand-written: quinn-udp does GSO but sends one message per call, which for
/// datagrams of varying sizes would be one syscall per datagram.
pub fn send_batch<'a>(fd: RawFd, datagrams: impl Iterator<Item = &'a [u8]>, gso: &Gso) -> io::Result<usize> {
    // SAFETY: as in RecvBatch::recv; the iovecs point into borrowed slices
    // that live for the duration of the call.
    let mut iov: [libc::iovec; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
    let mut lens = [0usize; BATCH];
    let mut n = 0;
    for d in datagrams.take(BATCH) {
        iov[n].iov_base = d.as_ptr() as *mut libc::c_void;
        iov[n].iov_len = d.len();
        lens[n] = d.len();
        n += 1;
    }
    if n == 0 {
        return Ok(0);
    }
    loop {
        let max_segment = gso.max_segment.get();
        // SAFETY: all-zero mmsghdrs are valid empty messages.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
        // One control message (UDP_SEGMENT, a u16) per message, 8-byte aligned.
        let mut cmsgs = [[0u64; 4]; BATCH];
        let mut counts = [0usize; BATCH];
        let mut m = 0;
        gso_runs(&lens[..n], max_segment, |start, count| {
            let h = &mut msgs[m].msg_hdr;
            h.msg_iov = &mut iov[start];
            h.msg_iovlen = count;
            if count > 1 {
                // SAFETY: cmsgs[m] has room for one cmsghdr and a u16
                // (CMSG_SPACE(2) = 24 ≤ 32 bytes), and is 8-byte aligned.
                unsafe {
                    h.msg_control = cmsgs[m].as_mut_ptr().cast();
                    h.msg_controllen = libc::CMSG_SPACE(2) as usize;
                    let c = libc::CMSG_FIRSTHDR(h);
                    (*c).cmsg_level = libc::SOL_UDP;
                    (*c).cmsg_type = UDP_SEGMENT;
                    (*c).cmsg_len = libc::CMSG_LEN(2) as usize;
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), lens[start] as u16);
                }
            }
            counts[m] = count;
            m += 1;
        });
        // SAFETY: the first m headers are initialised and point into iov and
        // cmsgs, which outlive the call; the socket is connected, so no names.
        let rc = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), m as u32, libc::MSG_DONTWAIT) };
        if rc >= 0 {
            return Ok(counts[..rc as usize].iter().sum());
        }
        let e = io::Error::last_os_error();
        // Only a refused GSO message (old kernel, a device or route that can't
        // segment) turns GSO off; other errors are the datagram's own.
        let refused = matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP));
        if counts[0] > 1 && refused {
            log::info!("UDP segmentation offload refused ({e}); sending one datagram per message on this socket");
            gso.max_segment.set(0);
            continue;
        }
        return Err(e);
    }
}

/// Waits until `fd` can be written, at most `timeout`; whether it can.
pub fn wait_writable(fd: RawFd, timeout: std::time::Duration) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut p, 1, ms) };
    rc > 0 && p.revents & libc::POLLOUT != 0
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

/// Sets the calling thread's timer slack (how late the kernel may end its
/// sleeps, to merge wake-ups), in ns.
pub fn set_timer_slack(ns: u32) -> io::Result<()> {
    // Every argument as the unsigned long the kernel reads: a u64 through
    // the variadic call would take the wrong registers on 32-bit ARM.
    let (ns, zero) = (libc::c_ulong::from(ns), 0 as libc::c_ulong);
    // SAFETY: PR_SET_TIMERSLACK only changes this thread's timer slack.
    if unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns, zero, zero, zero) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An input socket on loopback and a sender connected to it.
    fn loopback_pair(rcvbuf: usize) -> (UdpSocket, UdpSocket) {
        let rx = input_socket(Ipv4Addr::LOCALHOST, 0, rcvbuf).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(("127.0.0.1", rx.local_addr().unwrap().port())).unwrap();
        (rx, tx)
    }

    /// Sends all of `payloads` with [`send_batch`], as many calls as it takes.
    fn send_all(tx: &UdpSocket, payloads: &[Vec<u8>], gso: &Gso) {
        let mut sent = 0;
        while sent < payloads.len() {
            sent += send_batch(tx.as_raw_fd(), payloads[sent..].iter().map(|p| &p[..]), gso).unwrap();
        }
    }

    /// What `rx` receives, datagrams with their sources, until `n` have come
    /// (or 5 s have passed).
    fn recv_n(rx: &UdpSocket, n: usize) -> Vec<(Vec<u8>, SocketAddr)> {
        let mut got = Vec::new();
        let mut batch = RecvBatch::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < n && std::time::Instant::now() < deadline {
            match batch.recv(rx.as_raw_fd()) {
                Ok(k) => {
                    assert!(k <= BATCH);
                    got.extend((0..k).map(|i| (batch.datagram(i).to_vec(), batch.source(i))));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        got
    }

    fn payloads_of(got: Vec<(Vec<u8>, SocketAddr)>) -> Vec<Vec<u8>> {
        got.into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn batch_round_trip_on_loopback_keeps_order_bytes_and_sources() {
        let (rx, tx) = loopback_pair(1 << 20);
        let payloads: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; i as usize]).collect();
        send_all(&tx, &payloads, &Gso::off());
        let got = recv_n(&rx, payloads.len());
        assert!(got.iter().all(|(_, src)| *src == tx.local_addr().unwrap()));
        assert_eq!(payloads_of(got), payloads);
    }

    fn runs(lens: &[usize], max_segment: usize) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        gso_runs(lens, max_segment, |s, n| v.push((s, n)));
        v
    }

    #[test]
    fn runs_are_equal_sizes_with_at_most_one_shorter_last() {
        assert_eq!(runs(&[50, 50, 50], 1472), [(0, 3)]);
        assert_eq!(runs(&[50, 50, 40, 50], 1472), [(0, 3), (3, 1)]);
        assert_eq!(runs(&[50, 60, 60, 60], 1472), [(0, 1), (1, 3)]);
        assert_eq!(runs(&[50, 40, 30], 1472), [(0, 2), (2, 1)]);
        assert_eq!(runs(&[], 1472), []);
    }

    #[test]
    fn runs_respect_the_kernels_limits_and_the_mtu() {
        // Segments larger than the route allows, and empty datagrams, go alone.
        assert_eq!(runs(&[2000, 2000], 1472), [(0, 1), (1, 1)]);
        assert_eq!(runs(&[0, 0, 10, 0], 1472), [(0, 1), (1, 1), (2, 1), (3, 1)]);
        // Without GSO every datagram is its own message.
        assert_eq!(runs(&[50, 50], 0), [(0, 1), (1, 1)]);
        // At most MAX_SEGMENTS per run, and at most MAX_GSO_BYTES.
        assert_eq!(runs(&[10; 100], 1472), [(0, 64), (64, 36)]);
        let big = runs(&[1400; 64], 1472);
        assert_eq!(big, [(0, 46), (46, 18)]);
        assert!(big.iter().all(|&(_, n)| n * 1400 <= MAX_GSO_BYTES));
    }

    #[test]
    fn segmented_sends_arrive_as_the_same_datagrams_in_order() {
        let (rx, tx) = loopback_pair(4 << 20);
        let gso = Gso::for_socket(tx.as_raw_fd());
        assert!(gso.enabled(), "loopback takes UDP GSO");
        // Runs of equal sizes, shorter tails, a size change, an empty datagram.
        let sizes = [50, 50, 50, 49, 50, 50, 1400, 1400, 1400, 0, 7, 7, 3, 64, 64, 64, 64];
        let payloads: Vec<Vec<u8>> = (0..300).map(|i| vec![i as u8; sizes[i % sizes.len()]]).collect();
        send_all(&tx, &payloads, &gso);
        assert!(gso.enabled(), "the kernel took the segmented messages");
        assert_eq!(payloads_of(recv_n(&rx, payloads.len())), payloads);
    }

    #[test]
    fn a_refused_segmented_send_falls_back_to_one_datagram_per_message() {
        let (rx, tx) = loopback_pair(1 << 20);
        let gso = Gso::for_socket(tx.as_raw_fd());
        // Without UDP checksums (SO_NO_CHECK) the kernel refuses GSO with EINVAL.
        let one: libc::c_int = 1;
        // SAFETY: setsockopt with a pointer to a c_int of the right length.
        let rc = unsafe { libc::setsockopt(tx.as_raw_fd(), libc::SOL_SOCKET, libc::SO_NO_CHECK, (&one as *const libc::c_int).cast(), 4) };
        assert_eq!(rc, 0);
        let payloads: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 20]).collect();
        let sent = send_batch(tx.as_raw_fd(), payloads.iter().map(|p| &p[..]), &gso).unwrap();
        assert_eq!(sent, 10);
        assert!(!gso.enabled(), "GSO is off after the refusal");
        assert_eq!(payloads_of(recv_n(&rx, payloads.len())), payloads);
    }

    #[test]
    fn empty_socket_would_block() {
        let rx = input_socket(Ipv4Addr::LOCALHOST, 0, 1 << 16).unwrap();
        let err = RecvBatch::new().recv(rx.as_raw_fd()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn the_timer_slack_is_set_for_the_calling_thread() {
        // A thread of its own: the slack is per thread.
        std::thread::spawn(|| {
            // SAFETY: PR_GET_TIMERSLACK reads this thread's slack (returned, in ns).
            let get = || unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) };
            set_timer_slack(1_000).unwrap();
            assert_eq!(get(), 1_000);
            set_timer_slack(12_345).unwrap();
            assert_eq!(get(), 12_345);
        })
        .join()
        .unwrap();
    }
}
