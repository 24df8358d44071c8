//! The channel's I/O loop: batches in from the socket, full-rate out with one
//! `sendmmsg` per batch, the pipeline for each datum, decimated datums out,
//! timers for block flushes and stats, and a clean close on SIGTERM/SIGINT.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{signal, SignalKind};

use super::out_batch::OutBatch;
use super::pipeline::Pipeline;
use super::ring_input::RingInput;
use super::socket_io::{self, RecvBatch};
use super::ChannelSpec;
use crate::config::ChannelConfig;

const STATS_PERIOD: Duration = Duration::from_secs(1);
/// Retention runs after every rotation (seen at the next stats tick) and at least this often.
const RETENTION_PERIOD: Duration = Duration::from_secs(60);
/// Batches drained per wake-up before timers and signals get a look in.
const BATCHES_PER_WAKE: usize = 16;
const SNDBUF: usize = 4 << 20;
/// XDP mode: how long ring records gather after a wake-up before a drain.
/// Delays the archive and the decimated stream by at most this; the ring
/// ([`relay_common::channel::RING_BYTES`]) holds far more than this long at
/// any rate one core can drain.
const RING_GATHER: Duration = Duration::from_millis(20);
/// Socket mode: how long datagrams gather after a wake-up that found the
/// socket idle, before the first receive. The socket wakes its reader for the
/// first datagram, so without this a burst is taken a few datagrams per
/// `recvmmsg`, and the syscalls per wake-up (receive, send, journal) cost
/// several µs each. Delays the full-rate stream by at most this (plus the
/// kernel's timer slack); a blocking sleep, since tokio's timers have 1 ms
/// resolution.
const SOCKET_GATHER: Duration = Duration::from_micros(50);

pub async fn run(spec: &ChannelSpec, input_fd: Option<i32>, ring_fd: Option<i32>) -> Result<()> {
    let ch = &spec.channel;
    let dir = super::channel_dir(&spec.storage, &ch.name);
    let mut pipeline = Pipeline::new(ch, &spec.storage, &dir)?;
    let mut stats_file = super::stats::StatsFile::new(dir.join("stats.json"));
    let net = &spec.network;
    let egress = match &net.egress_iface {
        Some(name) => Some(crate::iface::ipv4_of(name, "network.egress_iface")?),
        None => None,
    };

    let input = match input_fd {
        Some(fd) => inherited_socket(fd).with_context(|| format!("channel {}: input socket at fd {fd}", ch.name))?,
        None => socket_io::input_socket(net.bind, ch.port, socket_io::INPUT_RCVBUF)
            .and_then(|s| socket_io::join_input_group(&s, ch.input_group, None).map(|()| s))
            .with_context(|| format!("channel {}: binding UDP {}:{}", ch.name, net.bind, ch.port))?,
    };
    let input = register(input)?;
    let full = output(ch.full_rate, net.ttl, net.multicast_loop, egress, &ch.name, "full-rate")?;
    let deci = output(ch.decimated, net.ttl, net.multicast_loop, egress, &ch.name, "decimated")?;
    let mut ring = match ring_fd {
        Some(fd) => Some(RingInput::from_fd(fd).with_context(|| format!("channel {}: ring buffer at fd {fd}", ch.name))?),
        None => None,
    };
    // In XDP mode the socket still gets what the program passes to the stack
    // (fragments, oversize datagrams), relayed here like in socket mode.
    pipeline.stats.input = if ring.is_some() { "xdp" } else { "socket" }.into();
    log::info!(
        "channel {}: {}:{} → full-rate {} decimated {}; files in {}",
        ch.name, net.bind, ch.port, ch.full_rate, ch.decimated, dir.display()
    );

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut batch = RecvBatch::new();
    let mut decimated = OutBatch::default();
    let mut next_stats = tokio::time::Instant::now();
    // The last ring drain (socket receive) stopped at its limit: more is
    // waiting, no need to gather.
    let mut ring_busy = false;
    let mut input_busy = false;
    let mut retention = RetentionState { files_seen: u64::MAX, next: tokio::time::Instant::now() };

    loop {
        let flush_at = pipeline.next_deadline().map(to_tokio).unwrap_or(next_stats);
        let wake = flush_at.min(next_stats);
        tokio::select! {
            guard = input.readable() => {
                let mut guard = guard?;
                if !input_busy {
                    std::thread::sleep(SOCKET_GATHER);
                }
                input_busy = false;
                for _ in 0..BATCHES_PER_WAKE {
                    match guard.try_io(|s| batch.recv(s.get_ref().as_raw_fd())) {
                        Ok(Ok(n)) => input_busy = n == socket_io::BATCH,
                        Ok(Err(e)) => {
                            log::warn!("channel {}: receive: {e}", ch.name);
                            break;
                        }
                        Err(_would_block) => {
                            input_busy = false;
                            break;
                        }
                    }
                    let sent = send_all(&full, &batch).await;
                    pipeline.stats.full_rate_out += sent as u64;
                    pipeline.stats.full_rate_send_errors += (batch.len() - sent) as u64;
                    let now = SystemTime::now();
                    for i in 0..batch.len() {
                        pipeline.handle(batch.datagram(i), Some(batch.source(i)), now, &mut decimated);
                    }
                    pipeline.end_batch();
                    publish_decimated(&deci, &mut decimated, &mut pipeline).await;
                }
            }
            ready = ring_ready(&ring) => {
                ready?;
                if !ring_busy {
                    // The kernel wakes the consumer for the first record after
                    // the ring ran empty, which at moderate rates is nearly
                    // every record. Letting records gather first turns
                    // thousands of wake-ups a second into at most one per
                    // RING_GATHER; the full-rate path does not wait for this.
                    tokio::time::sleep(RING_GATHER).await;
                }
                let r = ring.as_mut().expect("ring_ready pends without a ring");
                let now = SystemTime::now();
                ring_busy = false;
                for _ in 0..BATCHES_PER_WAKE {
                    let n = r.drain(socket_io::BATCH, |payload, src| pipeline.handle(payload, Some(src), now, &mut decimated));
                    pipeline.end_batch();
                    publish_decimated(&deci, &mut decimated, &mut pipeline).await;
                    if n < socket_io::BATCH {
                        break;
                    }
                    ring_busy = true;
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
        pipeline.poll(SystemTime::now(), &mut decimated);
        publish_decimated(&deci, &mut decimated, &mut pipeline).await;
        if tokio::time::Instant::now() >= next_stats {
            retention.run_if_due(&mut pipeline, &dir, ch);
            publish_stats(&mut pipeline, &mut stats_file);
            next_stats = tokio::time::Instant::now() + STATS_PERIOD;
        }
    }

    log::info!("channel {}: stopping", ch.name);
    let closed = pipeline.finish(&mut decimated);
    publish_decimated(&deci, &mut decimated, &mut pipeline).await;
    publish_stats(&mut pipeline, &mut stats_file);
    closed
}

/// The input socket the supervisor bound and handed down at `fd`.
fn inherited_socket(fd: i32) -> Result<UdpSocket> {
    use std::os::fd::FromRawFd;
    // SAFETY: fstat on any integer is safe; it tells whether fd is open.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        anyhow::bail!("fd {fd} is not an open socket (is this process started by `speeddata-xdp run`?)");
    }
    // SAFETY: fd is an open socket handed to this process for its sole use.
    let sock = unsafe { UdpSocket::from_raw_fd(fd) };
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// A publishing socket and how far it may segment (UDP GSO).
struct Output {
    sock: AsyncFd<UdpSocket>,
    gso: socket_io::Gso,
}

fn output(group: std::net::SocketAddrV4, ttl: u32, lp: bool, egress: Option<Ipv4Addr>, name: &str, what: &str) -> Result<Output> {
    let s = socket_io::output_socket(group, ttl, lp, egress, SNDBUF)
        .with_context(|| format!("channel {name}: {what} socket to {group}"))?;
    let gso = socket_io::Gso::for_socket(s.as_raw_fd());
    Ok(Output { sock: register(s)?, gso })
}

/// Registers a socket with the reactor.
fn register(s: UdpSocket) -> Result<AsyncFd<UdpSocket>> {
    // SAFETY: the AsyncFd owns the UdpSocket, whose fd stays open and the
    // same until the AsyncFd is dropped.
    unsafe { AsyncFd::register(s) }.map_err(|e| anyhow::anyhow!("registering a socket with tokio: {e}"))
}

/// Sends every datagram of the batch, waiting for room when the socket buffer
/// is full. Returns how many were sent; the rest failed (counted by the caller).
async fn send_all(out: &Output, batch: &RecvBatch) -> usize {
    send_iter(out, batch.len(), |from| Box::new((from..batch.len()).map(|i| batch.datagram(i)))).await
}

async fn publish_decimated(sock: &Output, out: &mut OutBatch, pipeline: &mut Pipeline) {
    if out.is_empty() {
        return;
    }
    let sent = send_iter(sock, out.len(), |from| Box::new(out.iter_from(from))).await;
    pipeline.stats.decimated_out += sent as u64;
    pipeline.stats.decimated_send_errors += (out.len() - sent) as u64;
    out.clear();
}

async fn send_iter<'a>(
    out: &Output,
    total: usize,
    datagrams: impl Fn(usize) -> Box<dyn Iterator<Item = &'a [u8]> + 'a>,
) -> usize {
    let mut done = 0;
    let mut failed = 0;
    while done + failed < total {
        let Ok(mut guard) = out.sock.writable().await else { return done };
        match guard.try_io(|s| socket_io::send_batch(s.get_ref().as_raw_fd(), datagrams(done + failed), &out.gso)) {
            Ok(Ok(n)) => done += n,
            // A datagram the kernel refused outright (e.g. ENOBUFS, no route):
            // skip it, counted as a send error, and carry on with the rest.
            Ok(Err(_)) => failed += 1,
            Err(_would_block) => continue,
        }
    }
    done
}

struct RetentionState {
    /// `files_opened` when retention last ran: a change means a rotation.
    files_seen: u64,
    next: tokio::time::Instant,
}

impl RetentionState {
    fn run_if_due(&mut self, pipeline: &mut Pipeline, dir: &std::path::Path, ch: &ChannelConfig) {
        let s = pipeline.snapshot();
        let now = tokio::time::Instant::now();
        if s.files_opened == self.files_seen && now < self.next {
            return;
        }
        self.files_seen = s.files_opened;
        self.next = now + RETENTION_PERIOD;
        let current = s.current_file.clone();
        match crate::retention::enforce(dir, &ch.name, ch.retention, current.as_deref(), SystemTime::now()) {
            Ok((files, bytes)) => {
                pipeline.stats.retention_deleted_files += files;
                pipeline.stats.retention_deleted_bytes += bytes;
            }
            Err(e) => log::warn!("channel {}: retention in {}: {e}", ch.name, dir.display()),
        }
    }
}

/// Resolves when the ring has records; never without a ring.
async fn ring_ready(ring: &Option<RingInput>) -> std::io::Result<()> {
    match ring {
        Some(r) => r.readable().await,
        None => std::future::pending().await,
    }
}

fn publish_stats(pipeline: &mut Pipeline, file: &mut super::stats::StatsFile) {
    if let Err(e) = file.publish(pipeline.snapshot()) {
        log::warn!("writing {}: {e}", file.path().display());
    }
}

fn to_tokio(t: SystemTime) -> tokio::time::Instant {
    let now = SystemTime::now();
    let d = t.duration_since(now).unwrap_or_default();
    tokio::time::Instant::now() + d
}
