//! XDP mode for the supervisor: attach (or reuse an attachment made by
//! `speeddata-xdp attach`), install each channel's route and ring, and hand
//! each ring to its channel process.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{Context, Result};
use relay_common::channel::MAX_CHANNELS;

use crate::config::{ChannelConfig, Config};
use crate::xdp::{self, ChannelMaps, Egress, Forward, Route};

pub struct XdpInput {
    pub iface: String,
    /// `native`, `skb`, or `reused` (attached beforehand with `attach`).
    pub how: String,
    /// Whether we attached (and so detach on shutdown).
    attached_here: bool,
    maps: ChannelMaps,
    /// Channel name → (slot in the program's maps, its route).
    slots: BTreeMap<String, (u32, Route)>,
}

impl XdpInput {
    /// Attaches to `iface`: reuses a live attachment, else native XDP, else
    /// generic (skb) XDP when `allow_skb`. The error says why XDP is not possible.
    pub fn setup(iface: &str, allow_skb: bool) -> Result<XdpInput> {
        xdp::object()?;
        xdp::ensure_bpffs()?;
        if xdp::is_attached(iface) {
            let maps = ChannelMaps::open(iface).with_context(|| format!("reusing the XDP attachment on {iface}"))?;
            return Ok(XdpInput { iface: iface.into(), how: "reused".into(), attached_here: false, maps, slots: BTreeMap::new() });
        }
        let native = xdp::attach(iface, xdp::Mode::Native, false);
        let (att, how) = match native {
            Ok(a) => (a, "native"),
            Err(e) if allow_skb => {
                log::info!("native XDP on {iface} failed ({e}); trying generic (skb) XDP");
                (xdp::attach(iface, xdp::Mode::Skb, false)?, "skb")
            }
            Err(e) => return Err(e.into()),
        };
        drop(att); // the pins keep it attached
        let maps = ChannelMaps::open(iface)?;
        Ok(XdpInput { iface: iface.into(), how: how.into(), attached_here: true, maps, slots: BTreeMap::new() })
    }

    /// Installs a channel: its ring, its full-rate rewrite and its route.
    /// Returns the ring's fd for the channel process.
    pub fn add(&mut self, cfg: &Config, ch: &ChannelConfig) -> Result<OwnedFd> {
        let egress_if = cfg.network.egress_iface.as_deref().unwrap_or(&self.iface);
        let egress = Egress::of(egress_if).with_context(|| format!("channel {}: egress interface {egress_if}", ch.name))?;
        let index = self.free_slot().with_context(|| format!("channel {}: all {MAX_CHANNELS} XDP channel slots are in use", ch.name))?;
        let forward = forward(ch.full_rate, cfg.network.ttl, egress);
        let entry = xdp::channel_entry(index, true, Some(&forward), false);
        let route = match ch.input_group {
            Some(group) => Route::Group(group, ch.port),
            None => Route::Port(ch.port),
        };
        let ring = self
            .maps
            .install(route, &entry)
            .with_context(|| format!("channel {}: installing its XDP route and ring", ch.name))?
            .context("the XDP program returned no ring for a ring channel")?;
        let fd = ring.as_fd().try_clone_to_owned().context("duplicating the ring fd")?;
        self.slots.insert(ch.name.clone(), (index, route));
        Ok(fd)
    }

    /// Removes a channel's route: its datagrams go to the stack (and are
    /// dropped there, as nothing listens) from now on.
    pub fn remove(&mut self, name: &str) {
        if let Some((_, route)) = self.slots.remove(name) {
            if let Err(e) = self.maps.remove(route) {
                log::warn!("removing the XDP route of channel {name}: {e}");
            }
        }
    }

    /// Per-channel kernel counters: (packets, bytes, forwarded, ring drops).
    pub fn counters(&self, name: &str) -> Option<relay_common::channel::ChannelCounters> {
        let (index, _) = self.slots.get(name)?;
        self.maps.counters(*index).ok()
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
    }

    fn free_slot(&self) -> Option<u32> {
        (0..MAX_CHANNELS).find(|i| !self.slots.values().any(|(s, _)| s == i))
    }
}

fn forward(group: SocketAddrV4, ttl: u32, egress: Egress) -> Forward {
    Forward { group: *group.ip(), port: group.port(), ttl: ttl.min(255) as u8, egress }
}
