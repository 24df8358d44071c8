//! The channel's I/O loop: batches in from the socket, full-rate out with one
//! `sendmmsg` per batch, the pipeline for each datum, decimated datums out,
//! timers for block flushes and stats, and a clean close on SIGTERM/SIGINT.
//!
//! One thread waiting in `epoll` (mio) on three descriptors: the input
//! socket, a timerfd and a signalfd. Not a tokio runtime: a runtime's turn
//! cost 23–26 µs of CPU per wake-up against 15 µs for a bare `epoll_wait`
//! loop on the same descriptors (32 processes woken together on a 50 ms
//! grid, three rounds), and in XDP mode every channel wakes 20–40 times a
//! second whether or not datums arrive, so 32 channels paid it 32 times.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::drain_pacer::{self, DrainPacer};
use super::out_batch::{OutBatch, SendWhenDue};
use super::pipeline::Pipeline;
use super::ring_input::RingInput;
use super::socket_io::{self, RecvBatch};
use super::stop_signals::StopSignals;
use super::wake_timer::{self, WakeTimer};
use super::ChannelSpec;
use crate::config::ChannelConfig;

const STATS_PERIOD: Duration = Duration::from_secs(1);
/// Retention runs after every rotation (seen at the next stats tick) and at least this often.
const RETENTION_PERIOD: Duration = Duration::from_secs(60);
/// Batches drained per wake-up before timers and signals get a look in.
const BATCHES_PER_WAKE: usize = 16;
const SNDBUF: usize = 4 << 20;
/// Longest a send waits for room in a full socket buffer (the egress is
/// down or far slower than the input) before counting the rest as send
/// errors, so the archive and the other stream go on.
const SEND_WAIT: Duration = Duration::from_millis(100);
// XDP mode: the ring is drained on a timer whose period [`DrainPacer`] sets
// (25 or 50 ms, on a grid all channels share), and never polled: the kernel
// would wake the consumer for the first record after each drain, and each
// wake-up (plus the gather timer it armed) cost the channel more than the
// records it brought at moderate rates, once per channel process. Delays the
// archive and the decimated stream by at most the period (one and a half
// periods once, on joining the grid); the ring
// ([`relay_common::channel::RING_BYTES`]) holds far more than that at any
// rate one core can drain.
/// How early a drain may run when the channel is awake for something else.
const DRAIN_SLACK: Duration = Duration::from_millis(5);
/// Batches drained at most when stopping: a full ring of the smallest
/// records (48 bytes and the ring's 8-byte header).
const FINAL_DRAIN_BATCHES: usize = relay_common::channel::RING_BYTES as usize / 56 / socket_io::BATCH;
/// Socket mode: how long datagrams gather after a wake-up that found the
/// socket idle, before the first receive. The socket wakes its reader for the
/// first datagram, so without this a burst is taken a few datagrams per
/// `recvmmsg`, and the syscalls per wake-up (receive, send, journal) cost
/// several µs each. Delays the full-rate stream by at most this; a blocking
/// sleep, shorter than any timer's wake-up.
const SOCKET_GATHER: Duration = Duration::from_micros(50);
/// Socket mode: the thread's timer slack, in ns. The default (50 µs) let the
/// gather above sleep about 100 µs (scheduler trace); with 1 µs the added
/// latency p50 fell from +79–89 to +42–50 µs, CPU per datum within the
/// runs' spread (three quick bench runs each, interleaved).
const SOCKET_TIMER_SLACK_NS: u32 = 1_000;
/// Datagrams from the socket: decimated datums go out once a batch of them
/// waits, or once the first has waited this long. Sent after every
/// receive, they cost a `sendmmsg` (and a wake-up of every subscriber) per
/// ten datagrams in at factor 10, and kept the next receive waiting behind
/// it. XDP mode sends them once per drain, 25–50 ms apart.
const DECIMATED_DELAY: Duration = Duration::from_millis(10);
const INPUT: Token = Token(0);
const TIMER: Token = Token(1);
const STOP: Token = Token(2);

/// Runs the channel until `stop` is signalled. `stop` must have been set up
/// before any thread was started (see [`StopSignals::block`]).
pub fn run(spec: &ChannelSpec, input_fd: Option<i32>, ring_fd: Option<i32>, stop: StopSignals) -> Result<()> {
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
    let full = output(ch.full_rate, net.ttl, net.multicast_loop, egress, &ch.name, "full-rate")?;
    let deci = output(ch.decimated, net.ttl, net.multicast_loop, egress, &ch.name, "decimated")?;
    let mut ring = match ring_fd {
        Some(fd) => Some(RingInput::from_fd(fd).with_context(|| format!("channel {}: ring buffer at fd {fd}", ch.name))?),
        None => None,
    };
    // In XDP mode the socket still gets what the program passes to the stack
    // (fragments, oversize datagrams), relayed here like in socket mode.
    pipeline.stats.input = if ring.is_some() { "xdp" } else { "socket" }.into();
    if ring.is_some() {
        // Nothing read yet: time windows close only as far as drains have read.
        pipeline.arrivals_read_until(SystemTime::UNIX_EPOCH);
    }
    log::info!(
        "channel {}: {}:{} → full-rate {} decimated {}; files in {}",
        ch.name, net.bind, ch.port, ch.full_rate, ch.decimated, dir.display()
    );

    if ring.is_none() {
        if let Err(e) = socket_io::set_timer_slack(SOCKET_TIMER_SLACK_NS) {
            log::warn!("channel {}: setting the timer slack for the receive gather: {e}", ch.name);
        }
    }
    let mut batch = RecvBatch::new();
    let mut decimated = OutBatch::default();
    let mut decimated_due = SendWhenDue::new(socket_io::BATCH, DECIMATED_DELAY);
    let mut timer = WakeTimer::new().context("creating the channel's timer")?;
    let mut poll = Poll::new().context("creating the channel's epoll set")?;
    for (fd, token) in [(input.as_raw_fd(), INPUT), (timer.as_raw_fd(), TIMER), (stop.as_raw_fd(), STOP)] {
        poll.registry().register(&mut SourceFd(&fd), token, Interest::READABLE).context("adding to the channel's epoll set")?;
    }
    let mut events = Events::with_capacity(4);
    // mio's epoll is edge-triggered: the socket counts as readable until a
    // receive finds it empty, whether or not a new event came. At first it
    // may hold datagrams from before the channel started.
    let mut input_ready = true;
    let mut next_stats = Instant::now();
    // The last socket receive stopped at its limit: more is waiting, no
    // need to gather.
    let mut input_busy = false;
    let mut pacer = DrainPacer::default();
    let mut next_drain = Instant::now() + drain_pacer::on_grid(wake_timer::monotonic_now(), pacer.period());
    let mut retention = RetentionState { files_seen: u64::MAX, next: Instant::now() };

    loop {
        let flush_at = pipeline.next_deadline().map(to_instant).unwrap_or(next_stats);
        let mut wake = flush_at.min(next_stats);
        // XDP mode: the drain also sends what was decimated.
        let also = if ring.is_some() { Some(next_drain) } else { decimated_due.deadline() };
        if let Some(t) = also {
            wake = wake.min(t);
        }
        timer.set(wake).context("arming the channel's timer")?;
        // Readable input not yet emptied: only look at the other events.
        let wait = if input_ready { Some(Duration::ZERO) } else { None };
        match poll.poll(&mut events, wait) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r.context("waiting in the channel's epoll set")?,
        }
        let mut stopping = None;
        for ev in events.iter() {
            match ev.token() {
                INPUT => input_ready = true,
                TIMER => timer.fired(),
                _ => stopping = stop.take().context("reading the channel's stop signal")?,
            }
        }
        if let Some(sig) = stopping {
            log::info!("channel {}: signal {sig}", ch.name);
            break;
        }
        if input_ready {
            if !input_busy {
                std::thread::sleep(SOCKET_GATHER);
            }
            input_busy = false;
            for _ in 0..BATCHES_PER_WAKE {
                match batch.recv(input.as_raw_fd()) {
                    // Fewer than a batch: the socket was empty at that
                    // moment, and a datagram after it is a new edge.
                    Ok(n) => {
                        input_busy = n == socket_io::BATCH;
                        input_ready = input_busy;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        input_ready = false;
                        input_busy = false;
                        break;
                    }
                    Err(e) => {
                        log::warn!("channel {}: receive: {e}", ch.name);
                        break;
                    }
                }
                let sent = send_all(&full, &batch);
                pipeline.stats.full_rate_out += sent as u64;
                pipeline.stats.full_rate_send_errors += (batch.len() - sent) as u64;
                let now = SystemTime::now();
                for i in 0..batch.len() {
                    pipeline.handle(batch.datagram(i), Some(batch.source(i)), now, &mut decimated);
                }
                pipeline.end_batch();
                if decimated_due.now(decimated.len(), Instant::now()) {
                    publish_decimated(&deci, &mut decimated, &mut pipeline);
                }
                if !input_busy {
                    break;
                }
            }
        }
        // Awake anyway (a block flush, stats, the socket): drain now if one
        // is due soon, rather than wake again for it in a moment.
        if let Some(r) = ring.as_mut().filter(|_| Instant::now() + DRAIN_SLACK >= next_drain) {
            let (records, busy) = r.drain_through(BATCHES_PER_WAKE, &mut pipeline, &mut decimated);
            // Once per drain, not per batch: the records waited up to a
            // drain period already, and a send per batch cost a syscall per
            // few decimated datums.
            publish_decimated(&deci, &mut decimated, &mut pipeline);
            // Busy (stopped at its limit): drain again at once, after a look
            // at the other events.
            next_drain = Instant::now() + pacer.after_drain(records, busy, wake_timer::monotonic_now());
        }
        // XDP mode: what would fall due before the next drain is done now,
        // so the channel wakes once per drain (a block is written up to a
        // drain period early, stats published up to one early).
        let ahead = match ring {
            Some(_) => next_drain.saturating_duration_since(Instant::now()),
            None => Duration::ZERO,
        };
        pipeline.poll_ahead(SystemTime::now(), ahead, &mut decimated);
        // XDP mode: everything decimated goes with the drain (a wake-up of
        // its own would cost more than the wait saves).
        if ring.is_some() || decimated_due.now(decimated.len(), Instant::now()) {
            publish_decimated(&deci, &mut decimated, &mut pipeline);
        }
        if Instant::now() + ahead >= next_stats {
            retention.run_if_due(&mut pipeline, &dir, ch);
            publish_stats(&mut pipeline, &mut stats_file);
            next_stats = Instant::now() + STATS_PERIOD;
        }
    }

    log::info!("channel {}: stopping", ch.name);
    if let Some(r) = ring.as_mut() {
        // What the ring holds now would otherwise wait for the next process,
        // or be gone with the ring if the relay is stopping. Bounded: the
        // program may still be adding records.
        r.drain_through(FINAL_DRAIN_BATCHES, &mut pipeline, &mut decimated);
    }
    let closed = pipeline.finish(&mut decimated);
    publish_decimated(&deci, &mut decimated, &mut pipeline);
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

/// A publishing socket and how far it may segment (UDP GSO). Not in the
/// epoll set: sends don't wait, and an epoll-registered UDP socket gets a
/// wake-up callback for every datagram the kernel frees after sending it.
struct Output {
    sock: UdpSocket,
    gso: socket_io::Gso,
}

fn output(group: std::net::SocketAddrV4, ttl: u32, lp: bool, egress: Option<Ipv4Addr>, name: &str, what: &str) -> Result<Output> {
    let sock = socket_io::output_socket(group, ttl, lp, egress, SNDBUF).map_err(|e| {
        // Connecting finds the route: a fresh host with no default route
        // and no egress interface configured has none for the group.
        let hint = match (e.raw_os_error(), egress) {
            (Some(libc::ENETUNREACH), None) => {
                " (no route to the group: set network.egress_iface in global.yaml, or add a route for 224.0.0.0/4)"
            }
            _ => "",
        };
        anyhow::Error::new(e).context(format!("channel {name}: {what} socket to {group}{hint}"))
    })?;
    let gso = socket_io::Gso::for_socket(sock.as_raw_fd());
    Ok(Output { sock, gso })
}

/// Sends every datagram of the batch. Returns how many were sent; the rest
/// failed (counted by the caller).
fn send_all(out: &Output, batch: &RecvBatch) -> usize {
    send_iter(out, batch.len(), |from| Box::new((from..batch.len()).map(|i| batch.datagram(i))))
}

fn publish_decimated(sock: &Output, out: &mut OutBatch, pipeline: &mut Pipeline) {
    if out.is_empty() {
        return;
    }
    let sent = send_iter(sock, out.len(), |from| Box::new(out.iter_from(from)));
    pipeline.stats.decimated_out += sent as u64;
    pipeline.stats.decimated_send_errors += (out.len() - sent) as u64;
    out.clear();
}

/// Sends `total` datagrams, waiting for room while the socket buffer is full,
/// up to [`SEND_WAIT`] in all; what is still unsent then failed.
fn send_iter<'a>(out: &Output, total: usize, datagrams: impl Fn(usize) -> Box<dyn Iterator<Item = &'a [u8]> + 'a>) -> usize {
    let fd = out.sock.as_raw_fd();
    let deadline = std::time::Instant::now() + SEND_WAIT;
    let mut done = 0;
    let mut failed = 0;
    while done + failed < total {
        match socket_io::send_batch(fd, datagrams(done + failed), &out.gso) {
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() || !socket_io::wait_writable(fd, left) {
                    break;
                }
            }
            // A datagram the kernel refused outright (e.g. ENOBUFS, no route):
            // skip it, counted as a send error, and carry on with the rest.
            Err(_) => failed += 1,
        }
    }
    done
}

struct RetentionState {
    /// `files_opened` when retention last ran: a change means a rotation.
    files_seen: u64,
    next: Instant,
}

impl RetentionState {
    fn run_if_due(&mut self, pipeline: &mut Pipeline, dir: &std::path::Path, ch: &ChannelConfig) {
        let s = pipeline.snapshot();
        let now = Instant::now();
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

fn publish_stats(pipeline: &mut Pipeline, file: &mut super::stats::StatsFile) {
    if let Err(e) = file.publish(pipeline.snapshot()) {
        log::warn!("writing {}: {e}", file.path().display());
    }
}

fn to_instant(t: SystemTime) -> Instant {
    let now = SystemTime::now();
    let d = t.duration_since(now).unwrap_or_default();
    Instant::now() + d
}
