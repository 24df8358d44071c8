//! XDP mode input: the channel's ring buffer, filled by the XDP program with
//! a [`RecordHeader`] and the datagram's payload per record. The supervisor
//! creates the ring and hands its fd down; the consumer position lives in the
//! ring itself, so a restarted channel continues where the last one stopped.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{FromRawFd, OwnedFd};

use anyhow::{Context, Result};
use aya::maps::{Map, MapData, RingBuf};
use relay_common::record::RecordHeader;
use tokio::io::unix::AsyncFd;

pub struct RingInput {
    ring: AsyncFd<RingBuf<MapData>>,
    /// Records too short for their header (never written by our program).
    pub corrupt: u64,
    /// The last drain stopped at its limit: records may be waiting.
    more: bool,
}

impl RingInput {
    /// The ring buffer map at `fd`, handed down by the supervisor.
    pub fn from_fd(fd: i32) -> Result<RingInput> {
        // SAFETY: the fd was handed to this process for its sole use.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let data = MapData::from_fd(owned).with_context(|| format!("fd {fd} is not a BPF map"))?;
        let ring = RingBuf::try_from(Map::RingBuf(data)).with_context(|| format!("fd {fd} is not a ring buffer"))?;
        // SAFETY: the AsyncFd owns the RingBuf, whose fd stays open and the same until dropped.
        let ring = unsafe { AsyncFd::register(ring) }.map_err(|e| anyhow::anyhow!("registering the ring with tokio: {e}"))?;
        Ok(RingInput { ring, corrupt: 0, more: false })
    }

    /// Waits until the ring has records.
    pub async fn readable(&self) -> std::io::Result<()> {
        if self.more {
            tokio::task::yield_now().await;
            return Ok(());
        }
        let mut guard = self.ring.readable().await?;
        // Readiness is edge-triggered by the kernel's wake-up; the drain
        // below empties the ring, so clearing here cannot lose a wake-up.
        guard.clear_ready();
        Ok(())
    }

    /// Hands up to `max` records to `f(payload, source)`; returns how many.
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(&[u8], SocketAddr)) -> usize {
        let ring = self.ring.get_mut();
        let mut n = 0;
        while n < max {
            let Some(item) = ring.next() else { break };
            match RecordHeader::parse(&item) {
                Some((h, payload)) => {
                    let src = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(h.src_addr), h.src_port()));
                    f(payload, src);
                }
                None => self.corrupt += 1,
            }
            n += 1;
        }
        self.more = n == max;
        n
    }
}
