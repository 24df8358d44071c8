//! The program's maps. Each static is named after its constant in
//! `relay_common::maps`, and [`named!`] checks the spelling at compile time.

use aya_ebpf::{btf_maps::PerCpuArray, macros::btf_map};
use relay_common::counters::COUNTER_COUNT;

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
pub static COUNTERS: PerCpuArray<u64, { COUNTER_COUNT as usize }> = PerCpuArray::new();
named!(COUNTERS, relay_common::maps::COUNTERS);
