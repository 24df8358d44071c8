//! The generator: example datums with a sequence number and a send time,
//! `sendmmsg` batches of [`BATCH`], paced by a token bucket to a fixed
//! offered rate (or as fast as the socket takes them). Runs on a thread in
//! the sender's namespace.

use std::net::SocketAddrV4;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};

use crate::datum;

pub const BATCH: usize = 64;
const SLOT: usize = 256;

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
    /// `sendmmsg` calls that failed outright (the datagrams were not sent).
    pub errors: u64,
}

fn sockaddr(a: &SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
        sin_zero: [0; 8],
    }
}

/// Sends for `load.duration` (bounded), returns what was handed to the kernel.
pub fn run(load: &Load) -> Result<Sent> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).context("generator socket")?;
    s.set_send_buffer_size(4 << 20).context("generator SO_SNDBUF")?;
    s.bind(&load.from.into()).with_context(|| format!("binding the generator to {}", load.from))?;
    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's timer slack.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1u64, 0, 0, 0) };
    let dests: Vec<libc::sockaddr_in> = load.to.iter().map(sockaddr).collect();
    let mut bufs = vec![[0u8; SLOT]; BATCH];
    let mut iovs: Vec<libc::iovec> = (0..BATCH).map(|_| libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }).collect();
    // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
    let mut msgs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
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
            scratch.clear();
            datum::encode(&mut scratch, seq.wrapping_add(i as u32), now, datum::MESSAGE);
            bufs[i][..scratch.len()].copy_from_slice(&scratch);
            iovs[i] = libc::iovec { iov_base: bufs[i].as_mut_ptr().cast(), iov_len: scratch.len() };
            let d = &dests[seq.wrapping_add(i as u32) as usize % dests.len()];
            let h = &mut msgs[i].msg_hdr;
            h.msg_name = (d as *const libc::sockaddr_in).cast_mut().cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
        }
        let mut done = 0;
        while done < due {
            // SAFETY: msgs[done..due] point at live buffers, iovecs and addresses.
            let n = unsafe { libc::sendmmsg(s.as_raw_fd(), msgs[done..].as_mut_ptr(), (due - done) as u32, 0) };
            if n < 0 {
                errors += 1;
                // Not sent: skip the rest of this batch rather than spin on it.
                break;
            }
            done += n as usize;
        }
        seq = seq.wrapping_add(due as u32);
        sent += due as u64;
    }
    Ok(Sent { datums: sent, elapsed: start.elapsed(), errors })
}
