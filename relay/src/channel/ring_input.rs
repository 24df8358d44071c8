//! XDP mode input: the channel's ring, filled by the XDP program with a
//! [`RecordHeader`] and the datagram's payload per record. The supervisor
//! creates the ring and hands its fd down; the consumer position lives in the
//! ring itself, so a restarted channel continues where the last one stopped.
//! The channel drains it on a timer (see `drain_pacer`), so the fd is
//! never polled.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{FromRawFd, OwnedFd};

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
        Ok(RingInput { ring, corrupt: 0 })
    }

    /// Hands up to `max` records to `f(payload, source)`; returns how many.
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(&[u8], SocketAddr)) -> usize {
        let mut n = 0;
        while n < max {
            let Some(item) = self.ring.next_record() else { break };
            match RecordHeader::parse(&item) {
                Some((h, payload)) => {
                    let src = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(h.src_addr), h.src_port()));
                    f(payload, src);
                }
                None => self.corrupt += 1,
            }
            n += 1;
        }
        self.corrupt += std::mem::take(&mut self.ring.corrupt);
        n
    }
}
