//! XDP mode for the supervisor: attach (or reuse an attachment made by
//! `speeddata-xdp attach`, or take over one left by a supervisor that was
//! killed), install each channel's route and ring, hand each ring to its
//! channel process, and follow the interfaces: re-attach when the input
//! interface is re-created, re-route when an egress interface is.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddrV4;
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{Context, Result};
use relay_common::channel::MAX_CHANNELS;

use super::iface_watch::{seen, Event, IfaceWatch, RetryLog};
use super::owner::{self, Owner};
use crate::config::{ChannelConfig, Config};
use crate::xdp::{self, ChannelMaps, Egress, Forward, Mode, Route};

pub struct XdpInput {
    pub iface: String,
    /// `native`, `skb`, `reused` (attached beforehand with `attach`) or
    /// `taken over` (left attached by a supervisor that died).
    pub how: String,
    /// The mode we attached in; `None` when reused (re-attach tries native, then skb).
    mode: Option<Mode>,
    /// Whether we own the attachment (and so detach on shutdown).
    attached_here: bool,
    maps: ChannelMaps,
    /// Channel name → its slot in the program's maps and how it forwards.
    slots: BTreeMap<String, Slot>,
    /// Egress interfaces other than the input one, by name.
    egress: BTreeMap<String, IfaceWatch>,
    /// The input interface is back but the program is not attached to it yet.
    relink_pending: bool,
    /// Egress interfaces whose channels' routes must be rewritten (new index, MAC).
    reroute_pending: BTreeSet<String>,
    retry: RetryLog,
}

struct Slot {
    index: u32,
    route: Route,
    full_rate: SocketAddrV4,
    ttl: u32,
    egress_if: String,
}

impl XdpInput {
    /// Attaches to `iface`: reuses a live attachment, else native XDP, else
    /// generic (skb) XDP when `allow_skb`. The error says why XDP is not possible.
    pub fn setup(iface: &str, allow_skb: bool) -> Result<XdpInput> {
        xdp::object()?;
        xdp::ensure_bpffs()?;
        let attached = xdp::is_attached(iface);
        let owner = if attached { owner::read(iface)? } else { None };
        if let Some(Owner { pid, .. }) = owner.as_ref().filter(|o| owner::is_alive(o.pid)) {
            anyhow::bail!("another speeddata-xdp supervisor (pid {pid}) runs XDP on {iface}; stop it first");
        }
        let reuse = attached && Self::same_build(iface)?;
        let (how, mode, attached_here, maps) = if reuse {
            let mut maps = ChannelMaps::open(iface).with_context(|| format!("reusing the XDP attachment on {iface}"))?;
            let (how, owned) = match owner {
                Some(Owner { pid, owned }) => {
                    log::warn!(
                        "the XDP attachment on {iface} was left by a supervisor (pid {pid}) that is gone \
                         (killed?): taking it over"
                    );
                    ("taken over", owned)
                }
                None => ("reused", false),
            };
            // No other supervisor lives (checked above): any route is stale.
            let stale = maps.clear_routes().with_context(|| format!("clearing stale routes on {iface}"))?;
            if stale > 0 {
                log::info!("removed {stale} stale XDP route(s) on {iface}");
            }
            (how, None, owned, maps)
        } else {
            // In a child: see `attach_in_child` (the supervisor's peak memory).
            let (how, mode) = match xdp::attach_in_child(iface, Mode::Native) {
                Ok(()) => ("native", Mode::Native),
                Err(e) if allow_skb => {
                    log::info!("native XDP on {iface} failed ({e}); trying generic (skb) XDP");
                    xdp::attach_in_child(iface, Mode::Skb)?;
                    ("skb", Mode::Skb)
                }
                Err(e) => return Err(e.into()),
            };
            (how, Some(mode), true, ChannelMaps::open(iface)?)
        };
        owner::write(iface, attached_here)?;
        Ok(XdpInput {
            iface: iface.into(),
            how: how.into(),
            mode,
            attached_here,
            maps,
            slots: BTreeMap::new(),
            egress: BTreeMap::new(),
            relink_pending: false,
            reroute_pending: BTreeSet::new(),
            retry: RetryLog::default(),
        })
    }

    /// Whether the attachment on `iface` (no live supervisor's) was made by
    /// this build; if not, detaches it (its maps may have another layout: an
    /// upgrade changed the rings, for one).
    fn same_build(iface: &str) -> Result<bool> {
        if xdp::attached_build_matches(iface) {
            return Ok(true);
        }
        log::warn!(
            "the XDP attachment on {iface} was made by another build of speeddata-xdp (its maps may differ): \
             replacing it with this build's"
        );
        xdp::detach(iface).with_context(|| format!("detaching the other build's program from {iface}"))?;
        Ok(false)
    }

    /// Installs a channel: its ring, its full-rate rewrite and its route.
    /// Returns the ring's fd for the channel process.
    pub fn add(&mut self, cfg: &Config, ch: &ChannelConfig) -> Result<OwnedFd> {
        let egress_if = cfg.network.egress_iface.clone().unwrap_or_else(|| self.iface.clone());
        let egress = Egress::of(&egress_if).with_context(|| format!("channel {}: egress interface {egress_if}", ch.name))?;
        let index = self.free_slot().with_context(|| format!("channel {}: all {MAX_CHANNELS} XDP channel slots are in use", ch.name))?;
        let route = match ch.input_group {
            Some(group) => Route::Group(group, ch.port),
            None => Route::Port(ch.port),
        };
        let slot = Slot { index, route, full_rate: ch.full_rate, ttl: cfg.network.ttl, egress_if };
        let ring = self
            .maps
            .install(route, &slot.entry(egress))
            .with_context(|| format!("channel {}: installing its XDP route and ring", ch.name))?
            .context("the XDP program returned no ring for a ring channel")?;
        let fd = ring.fd().as_fd().try_clone_to_owned().context("duplicating the ring fd")?;
        if slot.egress_if != self.iface && !self.egress.contains_key(&slot.egress_if) {
            self.egress.insert(slot.egress_if.clone(), IfaceWatch::new(seen(&slot.egress_if)));
        }
        self.slots.insert(ch.name.clone(), slot);
        Ok(fd)
    }

    /// Removes a channel's route: its datagrams go to the stack (and are
    /// dropped there, as nothing listens) from now on.
    pub fn remove(&mut self, name: &str) {
        if let Some(slot) = self.slots.remove(name) {
            if let Err(e) = self.maps.remove(slot.route) {
                log::warn!("removing the XDP route of channel {name}: {e}");
            }
        }
    }

    /// Per-channel kernel counters: (packets, bytes, forwarded, ring drops).
    pub fn counters(&self, name: &str) -> Option<relay_common::channel::ChannelCounters> {
        let slot = self.slots.get(name)?;
        self.maps.counters(slot.index).ok()
    }

    /// Every supervisor tick, with what changed on the input interface
    /// (the supervisor looks at it): reports it going down, up, away or
    /// coming back, re-attaches the program (same maps and rings, so
    /// channels keep running) when it comes back, and rewrites routes whose
    /// egress interface was re-created.
    pub fn tick(&mut self, input: Option<Event>) {
        let iface = self.iface.clone();
        match input {
            Some(Event::WentDown) => log::warn!(
                "interface {iface} is down or lost its carrier: no input until it is up again (XDP stays attached)"
            ),
            Some(Event::CameUp) => log::info!("interface {iface} is up again: XDP input resumes"),
            Some(Event::Disappeared) => log::error!(
                "interface {iface} disappeared: the kernel detached the XDP program and the channels get no input; \
                 it is re-attached, with the same channels, when an interface named {iface} exists again"
            ),
            Some(Event::Reappeared { ifindex, up }) => {
                log::info!("interface {iface} exists again (index {ifindex}, {}): re-attaching XDP", if up { "up" } else { "down" });
                self.relink_pending = true;
                self.reroute_pending.insert(iface.clone());
            }
            None => {}
        }
        let names: Vec<String> = self.egress.keys().cloned().collect();
        for name in names {
            let event = self.egress.get_mut(&name).and_then(|w| w.observe(seen(&name)));
            match event {
                Some(Event::Disappeared) => log::error!(
                    "egress interface {name} disappeared: full-rate datagrams through it are dropped until it \
                     exists again; archiving goes on"
                ),
                Some(Event::Reappeared { .. }) => {
                    log::info!("egress interface {name} exists again: re-routing its channels");
                    self.reroute_pending.insert(name);
                }
                Some(Event::WentDown) => log::warn!("egress interface {name} is down: full-rate datagrams are lost until it is up"),
                Some(Event::CameUp) => log::info!("egress interface {name} is up again"),
                None => {}
            }
        }
        if let Err(e) = self.retry_pending() {
            self.retry.failed(&e);
        }
    }

    fn retry_pending(&mut self) -> Result<()> {
        if self.relink_pending {
            let how = self.relink().with_context(|| format!("re-attaching XDP to {}", self.iface))?;
            self.relink_pending = false;
            self.retry.succeeded();
            log::info!("re-attached XDP to {} ({how} mode): the channels' input resumes", self.iface);
        }
        for name in self.reroute_pending.clone() {
            if !self.slots.values().any(|s| s.egress_if == name) {
                self.reroute_pending.remove(&name);
                continue;
            }
            let egress = Egress::of(&name).with_context(|| format!("re-routing the channels that forward through {name}"))?;
            for (ch, slot) in self.slots.iter().filter(|(_, s)| s.egress_if == name) {
                self.maps
                    .set_route(slot.route, &slot.entry(egress))
                    .with_context(|| format!("channel {ch}: rewriting its XDP route for {name}"))?;
            }
            self.reroute_pending.remove(&name);
            self.retry.succeeded();
            log::info!("channels forwarding through {name} use its new index {} and address {}", egress.ifindex, egress.ip);
        }
        Ok(())
    }

    /// Attaches the pinned program to the re-created input interface, in the
    /// mode we attached in (native, then skb, when reused).
    fn relink(&self) -> Result<Mode, xdp::XdpError> {
        match self.mode {
            Some(mode) => xdp::relink(&self.iface, mode).map(|_| mode),
            None => xdp::relink(&self.iface, Mode::Native)
                .map(|_| Mode::Native)
                .or_else(|_| xdp::relink(&self.iface, Mode::Skb).map(|_| Mode::Skb)),
        }
    }

    /// Removes every route, and detaches if we attached (unless `keep`).
    pub fn shutdown(mut self, keep: bool) {
        let names: Vec<_> = self.slots.keys().cloned().collect();
        for n in names {
            self.remove(&n);
        }
        if self.attached_here && !keep {
            match xdp::detach(&self.iface) {
                Ok(_) => log::info!("detached XDP from {}", self.iface),
                Err(e) => log::error!("detaching XDP from {}: {e}", self.iface),
            }
        }
        owner::remove(&self.iface);
    }

    fn free_slot(&self) -> Option<u32> {
        (0..MAX_CHANNELS).find(|i| !self.slots.values().any(|s| s.index == *i))
    }
}

impl Slot {
    fn entry(&self, egress: Egress) -> relay_common::channel::Channel {
        let f = Forward { group: *self.full_rate.ip(), port: self.full_rate.port(), ttl: self.ttl.min(255) as u8, egress };
        xdp::channel_entry(self.index, true, Some(&f), false)
    }
}
