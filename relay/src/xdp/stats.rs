//! Reading the pinned per-CPU counters, summed over CPUs.

use aya::maps::{Map, MapData, PerCpuArray};
use relay_common::counters::{Counter, CounterSet, COUNTER_COUNT};
use relay_common::maps;

use super::{pin_dir, XdpError};

/// The interface-wide counters, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters([u64; COUNTER_COUNT as usize]);

impl Counters {
    pub fn get(&self, counter: Counter) -> u64 {
        self.0[counter.index() as usize]
    }

    /// `(counter, value)` in index order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL.iter().map(|&c| (c, self.get(c)))
    }
}

/// Reads `iface`'s pinned counters map.
pub fn read_counters(iface: &str) -> Result<Counters, XdpError> {
    let dir = pin_dir(iface);
    let path = dir.join(maps::COUNTERS);
    if !path.exists() {
        return Err(XdpError::NotAttached { iface: iface.into(), dir });
    }
    let open_err = |e| XdpError::OpenPinned { path: path.clone(), source: Box::new(e) };
    let data = MapData::from_pin(&path).map_err(open_err)?;
    let map = Map::from_map_data(data).map_err(open_err)?;
    let array: PerCpuArray<MapData, CounterSet> = PerCpuArray::try_from(map).map_err(open_err)?;
    let mut sum = CounterSet::default();
    for set in array.get(&0, 0).map_err(open_err)?.iter() {
        sum += *set;
    }
    Ok(Counters(sum.0))
}
