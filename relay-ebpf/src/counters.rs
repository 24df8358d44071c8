//! Incrementing the interface-wide and per-channel per-CPU counters.

use relay_common::{channel::ChannelCounters, counters::Counter};

use crate::maps::{CHANNEL_COUNTERS, COUNTERS};

/// Adds `n` to this CPU's slot of `counter`. Per-CPU, so no atomics needed.
#[inline(always)]
pub fn add(counter: Counter, n: u64) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter.index()) {
        // SAFETY: the kernel returned a pointer to this CPU's u64 slot, valid for
        // the whole program run; XDP runs without preemption on one CPU, so no
        // other writer touches this slot concurrently.
        unsafe { *slot += n };
    }
}

/// Applies `f` to this CPU's counters of channel `index`.
#[inline(always)]
pub fn channel(index: u32, f: impl FnOnce(&mut ChannelCounters)) {
    if let Some(slot) = CHANNEL_COUNTERS.get_ptr_mut(index) {
        // SAFETY: as in `add`: this CPU's slot, valid for the run, no concurrent writer.
        f(unsafe { &mut *slot });
    }
}
