//! The program's maps (and its one global). Each static is named after its constant in
//! `relay_common::maps`, and [`named!`] checks the spelling at compile time.

use aya_ebpf::{
    bindings::BPF_F_MMAPABLE,
    btf_maps::{Array, ArrayOfMaps, DevMapHash, HashMap, PerCpuArray},
    macros::btf_map,
};
use relay_common::{
    channel::{Channel, ChannelCounters, GroupKey, MAX_CHANNELS, PORT_CHANNEL_SLOTS, PORT_COUNT},
    counters::CounterSet,
};

/// Fails the build if a map static's identifier differs from its name constant.
macro_rules! named {
    ($map:ident, $name:path) => {
        const _: () = assert!(
            relay_common::maps::str_eq(stringify!($map), $name),
            "map static name differs from relay_common::maps"
        );
    };
}

#[btf_map]
pub static COUNTERS: PerCpuArray<CounterSet, 1> = PerCpuArray::new();
named!(COUNTERS, relay_common::maps::COUNTERS);

#[btf_map]
pub static PORTS: Array<u32, { PORT_COUNT as usize }> = Array::new();
named!(PORTS, relay_common::maps::PORTS);

#[btf_map]
pub static PORT_CHANNELS: Array<Channel, { PORT_CHANNEL_SLOTS as usize }> = Array::new();
named!(PORT_CHANNELS, relay_common::maps::PORT_CHANNELS);

#[btf_map]
pub static GROUP_CHANNELS: HashMap<GroupKey, Channel, { MAX_CHANNELS as usize }> = HashMap::new();
named!(GROUP_CHANNELS, relay_common::maps::GROUP_CHANNELS);

#[btf_map]
pub static RINGS: ArrayOfMaps<Ring, { MAX_CHANNELS as usize }> = ArrayOfMaps::new();
named!(RINGS, relay_common::maps::RINGS);

/// A channel's ring: one mmapable value laid out as `relay_common::ring` says.
pub type Ring = Array<RingValue, 1, { BPF_F_MMAPABLE as usize }>;

/// The ring's bytes, as words: the value is 8-byte aligned.
pub type RingValue = [u64; relay_common::ring::VALUE_BYTES / 8];

#[btf_map]
pub static CHANNEL_COUNTERS: PerCpuArray<ChannelCounters, { MAX_CHANNELS as usize }> = PerCpuArray::new();
named!(CHANNEL_COUNTERS, relay_common::maps::CHANNEL_COUNTERS);

#[btf_map]
pub static EGRESS: DevMapHash<64> = DevMapHash::new();
named!(EGRESS, relay_common::maps::EGRESS);

/// 1 where a plain store publishes a ring record in order, else 0 (see
/// `relay_common::maps::COMMIT_BY_STORE`); set by the loader. Read with
/// `read_volatile`, or LLVM folds this initial 0 into the program.
#[unsafe(no_mangle)]
pub static COMMIT_BY_STORE: u8 = 0;
named!(COMMIT_BY_STORE, relay_common::maps::COMMIT_BY_STORE);
