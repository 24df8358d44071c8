//! The generator: example datums with a sequence number and a send time,
//! in batches of [`BATCH`], paced by a token bucket to a fixed offered rate
//! (or as fast as the kernel takes them). Runs on a thread in the sender's
//! namespace. Two ways to hand a batch to the kernel, chosen by
//! [`Generator`]: whole frames through an `AF_PACKET` TX ring (the default,
//! see [`crate::packet_tx`]) or `sendmmsg` on a UDP socket.

use std::net::SocketAddrV4;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};

use crate::datum;
use crate::packet_tx::{Frames, TxRing};

pub const BATCH: usize = 64;
const SLOT: usize = 256;

/// How the generator hands datagrams to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Generator {
    /// Ethernet frames written into an AF_PACKET TX ring, one `send()` per batch, past the qdisc.
    PacketMmap,
    /// A UDP socket, one `sendmmsg` per batch.
    Sendmmsg,
}

impl Generator {
    pub fn label(self) -> &'static str {
        match self {
            Generator::PacketMmap => "packet-mmap",
            Generator::Sendmmsg => "sendmmsg",
        }
    }

    pub fn other(self) -> Generator {
        match self {
            Generator::PacketMmap => Generator::Sendmmsg,
            Generator::Sendmmsg => Generator::PacketMmap,
        }
    }
}

pub struct Load {
    pub from: SocketAddrV4,
    /// Datum `seq` goes to `to[seq % to.len()]` (one per channel).
    pub to: Vec<SocketAddrV4>,
    /// Datums per second; `None`: as fast as the sender can.
    pub rate: Option<f64>,
    pub duration: Duration,
}

pub struct Sent {
    pub datums: u64,
    pub elapsed: Duration,
    /// Send calls that failed outright (`sendmmsg`: the rest of its batch was
    /// not sent; packet-mmap: the batch went with a later call, if at all).
    pub errors: u64,
}

/// One batch at a time into the kernel.
trait Transmit {
    /// Adds datagram `payload` to `to[dest]` to the batch.
    fn queue(&mut self, dest: usize, payload: &[u8]) -> Result<()>;
    /// Hands the batch to the kernel; returns the number of failed calls.
    fn flush(&mut self) -> u64;
}

/// Sends for `load.duration` (bounded) with `sendmmsg`; returns what was handed to the kernel.
pub fn run(load: &Load) -> Result<Sent> {
    pace(load, &mut Mmsg::new(load)?)
}

/// Sends for `load.duration` (bounded) as frames through a TX ring on
/// `iface`, addressed with `frames`; returns what was handed to the kernel.
pub fn run_packet_mmap(load: &Load, iface: &str, frames: Frames) -> Result<Sent> {
    let mut tx = PacketMmap { ring: TxRing::open(iface)?, frames, to: load.to.clone() };
    pace(load, &mut tx)
}

/// The pacing loop shared by both transmit paths: the send time is stamped
/// once per batch.
fn pace(load: &Load, tx: &mut impl Transmit) -> Result<Sent> {
    // 1 ns: the pacing sleeps end when due.
    relay::channel::socket_io::set_timer_slack(1).context("setting the generator's timer slack")?;
    let mut scratch = Vec::with_capacity(SLOT);
    let start = Instant::now();
    let mut seq: u32 = 0;
    let mut sent = 0u64;
    let mut errors = 0u64;
    loop {
        let elapsed = start.elapsed();
        if elapsed >= load.duration {
            break;
        }
        let due = match load.rate {
            Some(r) => ((r * elapsed.as_secs_f64()) as u64).saturating_sub(sent).min(BATCH as u64) as usize,
            None => BATCH,
        };
        if due == 0 {
            // Sleep until the next datum is due (at least ~timer resolution);
            // a token bucket catches up with a burst after an oversleep.
            let r = load.rate.unwrap_or(1.0);
            let next = Duration::from_secs_f64((sent + 1) as f64 / r);
            std::thread::sleep(next.saturating_sub(elapsed).max(Duration::from_micros(20)));
            continue;
        }
        let now = datum::now_ns();
        for i in 0..due {
            let s = seq.wrapping_add(i as u32);
            scratch.clear();
            datum::encode(&mut scratch, s, now, datum::MESSAGE);
            tx.queue(s as usize % load.to.len(), &scratch)?;
        }
        errors += tx.flush();
        seq = seq.wrapping_add(due as u32);
        sent += due as u64;
    }
    Ok(Sent { datums: sent, elapsed: start.elapsed(), errors })
}

struct PacketMmap {
    ring: TxRing,
    frames: Frames,
    to: Vec<SocketAddrV4>,
}

impl Transmit for PacketMmap {
    fn queue(&mut self, dest: usize, payload: &[u8]) -> Result<()> {
        let to = self.to[dest];
        let frames = self.frames;
        let len = frames.write(self.ring.next_frame()?, to, payload);
        self.ring.queue(len);
        Ok(())
    }

    fn flush(&mut self) -> u64 {
        u64::from(self.ring.flush().is_err())
    }
}

fn sockaddr(a: &SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
        sin_zero: [0; 8],
    }
}

struct Mmsg {
    socket: Socket,
    dests: Vec<libc::sockaddr_in>,
    bufs: Vec<[u8; SLOT]>,
    iovs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    n: usize,
}

impl Mmsg {
    fn new(load: &Load) -> Result<Mmsg> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).context("generator socket")?;
        s.set_send_buffer_size(4 << 20).context("generator SO_SNDBUF")?;
        s.bind(&load.from.into()).with_context(|| format!("binding the generator to {}", load.from))?;
        Ok(Mmsg {
            socket: s,
            dests: load.to.iter().map(sockaddr).collect(),
            bufs: vec![[0u8; SLOT]; BATCH],
            iovs: (0..BATCH).map(|_| libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }).collect(),
            // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
            msgs: (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect(),
            n: 0,
        })
    }
}

impl Transmit for Mmsg {
    fn queue(&mut self, dest: usize, payload: &[u8]) -> Result<()> {
        let i = self.n;
        self.bufs[i][..payload.len()].copy_from_slice(payload);
        self.iovs[i] = libc::iovec { iov_base: self.bufs[i].as_mut_ptr().cast(), iov_len: payload.len() };
        let h = &mut self.msgs[i].msg_hdr;
        h.msg_name = (&self.dests[dest] as *const libc::sockaddr_in).cast_mut().cast();
        h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
        h.msg_iov = &mut self.iovs[i];
        h.msg_iovlen = 1;
        self.n += 1;
        Ok(())
    }

    fn flush(&mut self) -> u64 {
        let due = std::mem::take(&mut self.n);
        let mut done = 0;
        while done < due {
            // SAFETY: msgs[done..due] point at live buffers, iovecs and addresses.
            let n = unsafe {
                libc::sendmmsg(self.socket.as_raw_fd(), self.msgs[done..].as_mut_ptr(), (due - done) as u32, 0)
            };
            if n < 0 {
                // Not sent: skip the rest of this batch rather than spin on it.
                return 1;
            }
            done += n as usize;
        }
        0
    }
}
