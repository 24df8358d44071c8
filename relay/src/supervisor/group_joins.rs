//! Multicast input groups (`input_group`) stay joined on `--iface`. A group
//! membership belongs to the interface: deleting the interface drops it, and
//! a re-created interface of the same name starts with none, so its
//! multicast filter (and, in socket mode, the stack) would drop the
//! channel's datagrams from then on. The supervisor, which holds every
//! channel's input socket, joins them again when the interface is back.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use anyhow::Context;

use super::iface_watch::{Event, RetryLog};

pub struct GroupJoins {
    iface: String,
    /// The interface is back and the groups are not joined on it yet.
    pending: bool,
    retry: RetryLog,
}

impl GroupJoins {
    pub fn new(iface: &str) -> GroupJoins {
        GroupJoins { iface: iface.into(), pending: false, retry: RetryLog::default() }
    }

    /// Takes what changed on the interface this tick; joins `sockets`'
    /// groups again once it was re-created. Returns its new address when
    /// it did, for channels started later.
    pub fn tick<'a>(
        &mut self,
        event: Option<Event>,
        sockets: impl Iterator<Item = (&'a str, Ipv4Addr, &'a Arc<OwnedFd>)>,
    ) -> Option<Ipv4Addr> {
        if let Some(Event::Reappeared { .. }) = event {
            self.pending = true;
        }
        if !self.pending {
            return None;
        }
        match self.join(sockets).with_context(|| format!("joining the input groups again on {}", self.iface)) {
            Ok((addr, n)) => {
                self.pending = false;
                self.retry.succeeded();
                if n > 0 {
                    log::info!("joined {n} input group(s) again on {} ({addr})", self.iface);
                }
                Some(addr)
            }
            Err(e) => {
                self.retry.failed(&e);
                None
            }
        }
    }

    fn join<'a>(&self, sockets: impl Iterator<Item = (&'a str, Ipv4Addr, &'a Arc<OwnedFd>)>) -> anyhow::Result<(Ipv4Addr, usize)> {
        let addr = crate::iface::ipv4_of(&self.iface, "--iface")?;
        let mut n = 0;
        for (name, group, sock) in sockets {
            match socket2::SockRef::from(&**sock).join_multicast_v4(&group, &addr) {
                // Still a member (the interface came back before we noticed it gone).
                Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {}
                r => r.with_context(|| format!("channel {name}: joining {group}"))?,
            }
            n += 1;
        }
        Ok((addr, n))
    }
}
