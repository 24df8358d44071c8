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
use relay_common::record::RecordHeader;

use crate::xdp::RingReader;

pub struct RingInput {
    ring: RingReader,
    /// Records too short for their header (never written by our program).
    pub corrupt: u64,
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

    /// Hands up to `max` records to `f(payload, source, arrival)`, where
    /// `arrival` is the program's `bpf_ktime_get_coarse_ns()` (see
    /// [`arrival_time`]). Returns how many.
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(&[u8], SocketAddr, u64)) -> usize {
        let mut n = 0;
        while n < max {
            let Some(item) = self.ring.next_record() else { break };
            match RecordHeader::parse(&item) {
                Some((h, payload)) => {
                    let src = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(h.src_addr), h.src_port()));
                    f(payload, src, h.arrival_ns);
                }
                None => self.corrupt += 1,
            }
            n += 1;
        }
        self.corrupt += std::mem::take(&mut self.ring.corrupt);
        n
    }
}

/// The wall-clock time of an arrival stamped `arrival_ns` on CLOCK_MONOTONIC
/// (the program reads it at kernel-tick resolution, so up to a tick early),
/// given `now` read on both clocks. A stamp from the future or none at all
/// (0) reads as `now`.
pub fn arrival_time(now: SystemTime, monotonic_now: Duration, arrival_ns: u64) -> SystemTime {
    let arrival = Duration::from_nanos(arrival_ns);
    match monotonic_now.checked_sub(arrival) {
        Some(ago) if arrival_ns > 0 => now.checked_sub(ago).unwrap_or(now),
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
    }
}
