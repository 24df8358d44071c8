//! Configuring channels in the XDP program's maps: lookup entries, rings,
//! egress devices, and reading per-channel counters.
//!
//! Everything the program needs lives in maps, so channels can be added and
//! removed while it runs. Rings are created here (all [`VALUE_BYTES`], as the
//! kernel requires inner maps to match their template), placed in `RINGS`,
//! and pinned as `ring-<index>` next to the attachment; the channel process
//! gets its ring's fd from the supervisor and maps it ([`super::RingReader`]).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use aya::maps::{Array, ArrayOfMaps, DevMapHash, HashMap, Map, MapData, PerCpuArray, PerCpuValues};
use aya::Ebpf;
use relay_common::channel::{
    port_entry, port_slot, Channel, ChannelCounters, GroupKey, FLAG_FORWARD, FLAG_PASS, FLAG_RING,
};
use relay_common::maps;
use relay_common::ring::VALUE_BYTES;

use super::{pin_dir, XdpError};

/// `BPF_MAP_TYPE_ARRAY` (linux/bpf.h): a ring is one value of an array.
pub(super) const BPF_MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_F_MMAPABLE` (linux/bpf.h): the channel process maps the ring.
const BPF_F_MMAPABLE: u32 = 1 << 10;

/// How datagrams find a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// By UDP destination port (unicast inputs).
    Port(u16),
    /// By multicast destination group and UDP port.
    Group(Ipv4Addr, u16),
}

/// Where and how a channel's datagrams are re-published at full rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forward {
    pub group: Ipv4Addr,
    pub port: u16,
    pub ttl: u8,
    pub egress: Egress,
}

/// The egress interface's identity, written as the rewritten frame's source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Egress {
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
}

impl Egress {
    /// Looks up `iface`'s index, MAC and first IPv4 address (in this network namespace).
    pub fn of(iface: &str) -> Result<Egress, XdpError> {
        let unknown = || XdpError::UnknownInterface { iface: iface.into() };
        let found = crate::iface::lookup(iface).map_err(|_| unknown())?.ok_or_else(unknown)?;
        let bad = |what| XdpError::BadEgress { iface: iface.into(), what };
        Ok(Egress {
            ifindex: found.index,
            mac: found.mac.ok_or_else(|| bad("no Ethernet address"))?,
            ip: found.ipv4.ok_or_else(|| bad("no IPv4 address"))?,
        })
    }
}

/// The program's value for a channel in slot `index`: copy into its ring when
/// `ring`, and re-publish at full rate when `forward` is given (otherwise the
/// datagram is dropped after the copy, or passed to the stack with `pass`).
pub fn channel_entry(index: u32, ring: bool, forward: Option<&Forward>, pass: bool) -> Channel {
    let mut flags = 0;
    if ring {
        flags |= FLAG_RING;
    }
    if pass {
        flags |= FLAG_PASS;
    }
    let mut ch = Channel { index, ..Channel::default() };
    if let Some(f) = forward {
        flags |= FLAG_FORWARD;
        ch.egress_ifindex = f.egress.ifindex;
        ch.group = f.group.octets();
        ch.group_port = f.port.to_be_bytes();
        ch.ttl = f.ttl;
        ch.src_mac = f.egress.mac;
        ch.src_ip = f.egress.ip.octets();
    }
    ch.flags = flags;
    ch
}

/// The channel maps of one loaded or attached program.
pub struct ChannelMaps {
    ports: Array<MapData, u32>,
    port_channels: Array<MapData, Channel>,
    groups: HashMap<MapData, GroupKey, Channel>,
    rings: ArrayOfMaps<MapData, MapData>,
    counters: PerCpuArray<MapData, ChannelCounters>,
    egress: DevMapHash<MapData>,
    /// Where to pin created rings (attached programs); `None` for unpinned ones.
    pin_dir: Option<PathBuf>,
}

impl ChannelMaps {
    /// Opens the maps pinned for `iface` by [`super::attach`].
    pub fn open(iface: &str) -> Result<ChannelMaps, XdpError> {
        let dir = pin_dir(iface);
        if !dir.join(maps::PORTS).exists() {
            return Err(XdpError::NotAttached { iface: iface.into(), dir });
        }
        let open = |name: &'static str| -> Result<Map, XdpError> {
            let path = dir.join(name);
            let err = |e| XdpError::OpenPinned { path: path.clone(), source: Box::new(e) };
            Map::from_map_data(MapData::from_pin(&path).map_err(err)?).map_err(err)
        };
        Self::from_maps(
            [
                open(maps::PORTS)?,
                open(maps::PORT_CHANNELS)?,
                open(maps::GROUP_CHANNELS)?,
                open(maps::RINGS)?,
                open(maps::CHANNEL_COUNTERS)?,
                open(maps::EGRESS)?,
            ],
            Some(dir),
        )
    }

    /// Takes the channel maps out of a loaded object (after pinning, if any).
    pub fn take(ebpf: &mut Ebpf, pin_dir: Option<PathBuf>) -> Result<ChannelMaps, XdpError> {
        let mut take = |name: &'static str| {
            ebpf.take_map(name).ok_or(XdpError::MissingInObject { what: "map", name })
        };
        Self::from_maps(
            [
                take(maps::PORTS)?,
                take(maps::PORT_CHANNELS)?,
                take(maps::GROUP_CHANNELS)?,
                take(maps::RINGS)?,
                take(maps::CHANNEL_COUNTERS)?,
                take(maps::EGRESS)?,
            ],
            pin_dir,
        )
    }

    fn from_maps(m: [Map; 6], pin_dir: Option<PathBuf>) -> Result<ChannelMaps, XdpError> {
        let [ports, port_channels, groups, rings, counters, egress] = m;
        let bad = |name: &'static str| move |e| XdpError::MapType { name, source: Box::new(e) };
        Ok(ChannelMaps {
            ports: Array::try_from(ports).map_err(bad(maps::PORTS))?,
            port_channels: Array::try_from(port_channels).map_err(bad(maps::PORT_CHANNELS))?,
            groups: HashMap::try_from(groups).map_err(bad(maps::GROUP_CHANNELS))?,
            rings: ArrayOfMaps::try_from(rings).map_err(bad(maps::RINGS))?,
            counters: PerCpuArray::try_from(counters).map_err(bad(maps::CHANNEL_COUNTERS))?,
            egress: DevMapHash::try_from(egress).map_err(bad(maps::EGRESS))?,
            pin_dir,
        })
    }

    /// Installs (or replaces) the channel reached by `route`. Creates its ring
    /// first when it copies to one (returned unmapped: its fd goes to the
    /// channel process; [`super::RingReader::new`] maps it for an in-process reader), and
    /// registers its egress device when it forwards elsewhere. The lookup
    /// entry goes in last, so the program never sees a half-made channel.
    pub fn install(&mut self, route: Route, ch: &Channel) -> Result<Option<MapData>, XdpError> {
        let ring = if ch.has(FLAG_RING) { Some(self.create_ring(ch.index)?) } else { None };
        self.reset_counters(ch.index)?;
        self.set_route(route, ch)?;
        Ok(ring)
    }

    /// Writes the lookup entry for `route` (and registers its egress device),
    /// keeping the channel's ring: to change where an installed channel
    /// forwards (its egress interface was re-created with a new index).
    pub fn set_route(&mut self, route: Route, ch: &Channel) -> Result<(), XdpError> {
        if ch.has(FLAG_FORWARD) {
            self.egress
                .insert(ch.egress_ifindex, ch.egress_ifindex, None, 0)
                .map_err(|e| XdpError::MapWrite { name: maps::EGRESS, detail: e.to_string() })?;
        }
        match route {
            Route::Port(p) => self.install_port(p, ch),
            Route::Group(g, p) => self.groups.insert(GroupKey::new(g.octets(), p), *ch, 0).map_err(write(maps::GROUP_CHANNELS)),
        }
    }

    /// Removes every route: for an attachment taken over from a supervisor
    /// that died, whose channels may not be this configuration's. (Reads the
    /// whole port array, one syscall per port: only done at start.)
    pub fn clear_routes(&mut self) -> Result<usize, XdpError> {
        let ports: Vec<u32> = (0..=u32::from(u16::MAX))
            .filter(|&p| self.ports.get(&p, 0).is_ok_and(|e| port_slot(e).is_some()))
            .collect();
        let groups: Vec<GroupKey> = self.groups.keys().filter_map(Result::ok).collect();
        let n = ports.len() + groups.len();
        for p in ports {
            self.ports.set(p, 0, 0).map_err(write(maps::PORTS))?;
        }
        for k in groups {
            self.groups.remove(&k).map_err(write(maps::GROUP_CHANNELS))?;
        }
        Ok(n)
    }

    /// Writes `ch` into the slot of its pair (`2 * index`, `2 * index + 1`)
    /// that `port` does not point to, then points `port` at it: the program
    /// never reads a slot while it is written (see `PORT_CHANNEL_SLOTS`).
    fn install_port(&mut self, port: u16, ch: &Channel) -> Result<(), XdpError> {
        let current = self.ports.get(&u32::from(port), 0).map_err(write(maps::PORTS))?;
        let pair = 2 * ch.index;
        let slot = if port_slot(current) == Some(pair) { pair + 1 } else { pair };
        self.port_channels.set(slot, *ch, 0).map_err(write(maps::PORT_CHANNELS))?;
        self.ports.set(u32::from(port), port_entry(slot), 0).map_err(write(maps::PORTS))
    }

    /// Removes the channel reached by `route` (its ring stays until replaced or detached).
    pub fn remove(&mut self, route: Route) -> Result<(), XdpError> {
        let r = match route {
            Route::Port(p) => self.ports.set(u32::from(p), 0, 0),
            Route::Group(g, p) => self.groups.remove(&GroupKey::new(g.octets(), p)),
        };
        match r {
            Err(aya::maps::MapError::KeyNotFound) | Ok(()) => Ok(()),
            Err(e) => Err(write(route_map(route))(e)),
        }
    }

    /// A new, empty ring in slot `index` (replacing any earlier one), pinned as
    /// `ring-<index>` when the program is pinned: an array of one
    /// [`VALUE_BYTES`] value laid out as `relay_common::ring` says (zeroed by
    /// the kernel: both positions 0, no record committed). Not mapped here:
    /// only the channel process reads it.
    pub fn create_ring(&mut self, index: u32) -> Result<MapData, XdpError> {
        let obj = aya_obj::Map::new_from_params(BPF_MAP_TYPE_ARRAY, 4, VALUE_BYTES as u32, 1, BPF_F_MMAPABLE);
        let name = format!("sdx_ring_{index}");
        let ring = MapData::create(obj, &name, None)
            .map_err(|e| XdpError::MapWrite { name: maps::RINGS, detail: format!("creating {name}: {e}") })?;
        self.rings
            .set(index, &ring, 0)
            .map_err(|e| XdpError::MapWrite { name: maps::RINGS, detail: format!("placing ring {index}: {e}") })?;
        if let Some(dir) = &self.pin_dir {
            let path = dir.join(ring_pin_name(index));
            let _ = std::fs::remove_file(&path);
            ring.pin(&path).map_err(|e| XdpError::Pin { path, source: Box::new(e) })?;
        }
        Ok(ring)
    }

    /// Zeroes slot `index`'s counters: a new channel must not inherit the
    /// counts of one that used the slot before (or of a killed supervisor's).
    fn reset_counters(&mut self, index: u32) -> Result<(), XdpError> {
        let err = |detail: String| XdpError::MapWrite { name: maps::CHANNEL_COUNTERS, detail };
        let cpus = aya::util::nr_cpus().map_err(|(what, e)| err(format!("{what}: {e}")))?;
        let zeros = PerCpuValues::try_from(vec![ChannelCounters::default(); cpus]).map_err(|e| err(e.to_string()))?;
        self.counters.set(index, zeros, 0).map_err(|e| err(e.to_string()))
    }

    /// Channel `index`'s counters, summed over CPUs.
    pub fn counters(&self, index: u32) -> Result<ChannelCounters, XdpError> {
        let per_cpu = self.counters.get(&index, 0).map_err(|e| XdpError::MapType {
            name: maps::CHANNEL_COUNTERS,
            source: Box::new(e),
        })?;
        let mut sum = ChannelCounters::default();
        for c in per_cpu.iter() {
            sum += *c;
        }
        Ok(sum)
    }
}

/// The error of a failed write to map `name`.
fn write(name: &'static str) -> impl Fn(aya::maps::MapError) -> XdpError {
    move |e| XdpError::MapWrite { name, detail: e.to_string() }
}

fn route_map(route: Route) -> &'static str {
    match route {
        Route::Port(_) => maps::PORTS,
        Route::Group(..) => maps::GROUP_CHANNELS,
    }
}

fn ring_pin_name(index: u32) -> String {
    format!("ring-{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_flags() {
        let e = Egress { ifindex: 3, mac: [2, 0, 0, 0, 0, 1], ip: Ipv4Addr::new(198, 51, 100, 1) };
        let f = Forward { group: Ipv4Addr::new(239, 1, 2, 3), port: 26901, ttl: 8, egress: e };
        let ch = channel_entry(5, true, Some(&f), false);
        assert!(ch.has(FLAG_RING) && ch.has(FLAG_FORWARD) && !ch.has(FLAG_PASS));
        assert_eq!((ch.index, ch.egress_ifindex, ch.group, ch.ttl), (5, 3, [239, 1, 2, 3], 8));
        assert_eq!(ch.group_port, 26901u16.to_be_bytes());
        let ch = channel_entry(1, true, None, true);
        assert!(ch.has(FLAG_RING) && ch.has(FLAG_PASS) && !ch.has(FLAG_FORWARD));
    }
}
