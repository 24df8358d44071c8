//! The receiver on the subscriber host: `recvmmsg` batches on a unicast port
//! or a joined multicast group, each datagram's sequence number marked in a
//! bitmap (missing = lost, seen twice = duplicate) and its latency taken as
//! the kernel's receive timestamp (`SO_TIMESTAMPNS`) minus the send time in
//! the datum, both CLOCK_REALTIME on this one machine.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use integration_tests::netns::Netns;
use socket2::{Domain, Protocol, Socket, Type};

use crate::datum;

const BATCH: usize = 64;
const SLOT: usize = 2048;
/// At most this many latency samples are kept (every datum up to it).
const MAX_SAMPLES: usize = 8 << 20;

#[derive(Default)]
pub struct Received {
    pub datagrams: u64,
    /// Distinct sequence numbers seen.
    pub unique: u64,
    pub duplicates: u64,
    pub unparsable: u64,
    /// Latencies in ns, sorted.
    pub latencies: Vec<u64>,
}

impl Received {
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.latencies.is_empty() {
            return None;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        Some(self.latencies[i])
    }
}

pub struct Receiver {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Received>,
}

impl Receiver {
    /// Binds `at` in `ns` (joining the group on `iface` when `at` is
    /// multicast); `expected` bounds the sequence numbers tracked.
    pub fn start(ns: &Netns, at: SocketAddrV4, iface: Ipv4Addr, expected: u64) -> Receiver {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let (ready_tx, ready_rx) = mpsc::channel();
        let handle = ns.spawn(move || {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("receiver socket");
            s.set_reuse_address(true).unwrap();
            force_rcvbuf(&s, 64 << 20);
            s.bind(&at.into()).unwrap_or_else(|e| panic!("binding the receiver to {at}: {e}"));
            if at.ip().is_multicast() {
                s.join_multicast_v4(at.ip(), &iface).unwrap();
            }
            s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            let on: libc::c_int = 1;
            // SAFETY: setsockopt with a valid int option on our socket.
            unsafe {
                libc::setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, (&on as *const libc::c_int).cast(), 4)
            };
            ready_tx.send(()).unwrap();
            receive(&s, expected, &stop2)
        });
        ready_rx.recv_timeout(Duration::from_secs(5)).expect("receiver did not start");
        Receiver { stop, handle }
    }

    /// Stops once the socket has been idle for a moment (what is queued is read first).
    pub fn finish(self) -> Received {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("receiver thread panicked")
    }
}

/// SO_RCVBUFFORCE (we are root), so rmem_max does not cap the buffer.
fn force_rcvbuf(s: &Socket, bytes: libc::c_int) {
    // SAFETY: setsockopt with a valid int option on our socket.
    let rc = unsafe {
        libc::setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, (&bytes as *const libc::c_int).cast(), 4)
    };
    if rc != 0 {
        let _ = s.set_recv_buffer_size(bytes as usize);
    }
}

fn receive(s: &Socket, expected: u64, stop: &AtomicBool) -> Received {
    let mut seen = vec![0u64; (expected as usize).div_ceil(64) + 1];
    let mut r = Received { latencies: Vec::with_capacity((expected as usize).min(MAX_SAMPLES)), ..Default::default() };
    let mut bufs = vec![[0u8; SLOT]; BATCH];
    let mut ctrl = vec![[0u64; 8]; BATCH];
    let mut iovs: Vec<libc::iovec> = bufs.iter_mut().map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: SLOT }).collect();
    // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
    let mut msgs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    let mut idle_since: Option<Instant> = None;
    loop {
        for i in 0..BATCH {
            let h = &mut msgs[i].msg_hdr;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = ctrl[i].as_mut_ptr().cast();
            h.msg_controllen = std::mem::size_of_val(&ctrl[i]);
        }
        // SAFETY: every header points at live buffers owned by this frame.
        let n = unsafe {
            libc::recvmmsg(s.as_raw_fd(), msgs.as_mut_ptr(), BATCH as u32, libc::MSG_WAITFORONE, std::ptr::null_mut())
        };
        if n <= 0 {
            if stop.load(Ordering::Relaxed) {
                // Idle after the stop request: done (bounded by the 100 ms timeout).
                if idle_since.get_or_insert_with(Instant::now).elapsed() >= Duration::from_millis(100) {
                    break;
                }
            }
            continue;
        }
        idle_since = None;
        let fallback = datum::now_ns();
        for i in 0..n as usize {
            r.datagrams += 1;
            let len = msgs[i].msg_len as usize;
            let Some((seq, sent_ns)) = datum::decode(&bufs[i][..len]) else {
                r.unparsable += 1;
                continue;
            };
            let at = kernel_timestamp(&msgs[i].msg_hdr).unwrap_or(fallback);
            if r.latencies.len() < MAX_SAMPLES {
                r.latencies.push(at.saturating_sub(sent_ns).max(0) as u64);
            }
            let (w, b) = (seq as usize / 64, seq % 64);
            match seen.get_mut(w) {
                Some(word) if *word & (1 << b) != 0 => r.duplicates += 1,
                Some(word) => {
                    *word |= 1 << b;
                    r.unique += 1;
                }
                None => r.unique += 1,
            }
        }
    }
    r.latencies.sort_unstable();
    r
}

/// The SCM_TIMESTAMPNS control message of a received datagram, in ns.
fn kernel_timestamp(h: &libc::msghdr) -> Option<i64> {
    // SAFETY: the CMSG macros walk the control buffer the kernel filled,
    // bounded by msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                return Some(ts.tv_sec * 1_000_000_000 + ts.tv_nsec);
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}
