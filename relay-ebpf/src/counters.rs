//! Incrementing the interface-wide per-CPU counters.

use relay_common::counters::Counter;

use crate::maps::COUNTERS;

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
