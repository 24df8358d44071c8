//! XDP mode input: the channel's ring, filled by the XDP program with a
//! [`RecordHeader`] and the datagram's payload per record. The supervisor
//! creates the ring and hands its fd down; the consumer position lives in the
//! ring itself, so a restarted channel continues where the last one stopped.
//! The channel drains it on a timer (see `drain_pacer`), so the fd is
//! never polled.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use aya::maps::MapData;
use relay_common::{checksum, record::RecordHeader};

use super::out_batch::OutBatch;
use super::pipeline::Pipeline;
use super::socket_io;
use crate::xdp::RingReader;

pub struct RingInput {
    ring: RingReader,
    /// Records too short for their header (never written by our program).
    pub corrupt: u64,
}

/// A datagram read from the ring.
pub struct RingDatum<'a> {
    pub payload: &'a [u8],
    pub source: SocketAddr,
    /// The program's arrival stamp, [`RecordHeader::arrival`] (see [`arrival_time`]).
    pub arrival: u64,
    /// Whether the UDP checksum is right (or absent). The stack drops a
    /// datagram with a wrong one before a socket sees it; the program cannot
    /// (it does not read the payload), so the channel checks here, on bytes
    /// it reads anyway.
    pub checksum_ok: bool,
}

impl RingInput {
    /// The ring map at `fd`, handed down by the supervisor.
    pub fn from_fd(fd: i32) -> Result<RingInput> {
        // SAFETY: the fd was handed to this process for its sole use.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let data = MapData::from_fd(owned).with_context(|| format!("fd {fd} is not a BPF map"))?;
        let ring = RingReader::new(data).with_context(|| format!("fd {fd} is not a channel ring"))?;
        Ok(RingInput::new(ring))
    }

    /// Input from `ring`, mapped in this process.
    pub fn new(ring: RingReader) -> RingInput {
        RingInput { ring, corrupt: 0 }
    }

    /// Hands up to `max` records to `f`. Returns how many.
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(RingDatum)) -> usize {
        let mut n = 0;
        while n < max {
            let Some(item) = self.ring.next_record() else { break };
            match RecordHeader::parse(&item) {
                Some((h, payload)) => f(RingDatum {
                    payload,
                    source: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(h.src_addr), h.src_port())),
                    arrival: h.arrival(),
                    checksum_ok: checksum::udp_ok(h.udp_partial(), h.src_addr, h.src_port, payload),
                }),
                None => self.corrupt += 1,
            }
            n += 1;
        }
        self.corrupt += std::mem::take(&mut self.ring.corrupt);
        n
    }

    /// Drains up to `batches` batches of records through the pipeline, each
    /// journaled as it goes: what the channel does per wake-up. Returns the
    /// records drained and whether it stopped at its limit (more may be waiting).
    pub fn drain_through(&mut self, batches: usize, pipeline: &mut Pipeline, decimated: &mut OutBatch) -> (usize, bool) {
        // Both clocks once per drain: records carry their arrival on CLOCK_MONOTONIC.
        let (now, monotonic) = (SystemTime::now(), super::wake_timer::monotonic_now());
        let mut records = 0;
        for _ in 0..batches {
            let n = self.drain(socket_io::BATCH, |d| {
                if d.checksum_ok {
                    let arrived = arrival_time(now, monotonic, d.arrival);
                    pipeline.handle_arrived(d.payload, Some(d.source), now, arrived, decimated)
                } else {
                    pipeline.bad_udp_checksum(d.payload.len(), d.source);
                }
            });
            pipeline.end_batch();
            pipeline.stats.ring_corrupt = self.corrupt;
            records += n;
            if n < socket_io::BATCH {
                // Everything that arrived before `now` is read, as the program
                // stamped it: up to a tick early (a tick is at most 10 ms).
                pipeline.arrivals_read_until(now - ARRIVAL_STAMP_RESOLUTION);
                return (records, false);
            }
        }
        (records, true)
    }
}

/// How much earlier than the real arrival the program's stamp
/// (`bpf_ktime_get_coarse_ns`, the last tick) can be: one tick, at HZ >= 100.
const ARRIVAL_STAMP_RESOLUTION: Duration = Duration::from_millis(10);

/// The wall-clock time of an arrival stamped `arrival` ([`RecordHeader::arrival`],
/// CLOCK_MONOTONIC modulo 2^48, read by the program at kernel-tick
/// resolution, so up to a tick early), given `now` read on both clocks. A
/// stamp from the future or none at all (0) reads as `now`.
pub fn arrival_time(now: SystemTime, monotonic_now: Duration, arrival: u64) -> SystemTime {
    let now_ns = monotonic_now.as_nanos() as u64;
    match relay_common::record::arrival_ago(arrival, now_ns) {
        Some(ago) if arrival > 0 => now.checked_sub(Duration::from_nanos(ago)).unwrap_or(now),
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrival_times_are_now_minus_the_wait() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mono = Duration::from_secs(5000);
        let ms = |n: u64| Duration::from_millis(n);
        assert_eq!(arrival_time(now, mono, (mono - ms(37)).as_nanos() as u64), now - ms(37));
        assert_eq!(arrival_time(now, mono, mono.as_nanos() as u64), now);
        assert_eq!(arrival_time(now, mono, (mono + ms(4)).as_nanos() as u64), now, "from the future");
        assert_eq!(arrival_time(now, mono, 0), now, "no stamp");
        // The stamp keeps 48 bits: 78 hours of nanoseconds.
        let late = Duration::from_secs(100 * 3600);
        let stamp = |t: Duration| t.as_nanos() as u64 & ((1 << 48) - 1);
        assert_eq!(arrival_time(now, late, stamp(late - ms(37))), now - ms(37), "past the wrap");
        assert_eq!(arrival_time(now, late, stamp(late + ms(4))), now, "from the future, past the wrap");
    }
}
