//! This CPU's interface-wide and per-channel counters, each found with one
//! map lookup per frame and then updated through the pointer.

use relay_common::{
    channel::ChannelCounters,
    counters::{Counter, CounterSet},
};

use crate::maps::{CHANNEL_COUNTERS, COUNTERS};

/// This CPU's interface-wide counters.
pub struct Counters(*mut CounterSet);

impl Counters {
    /// `None` only if the per-CPU array had no entry 0, which it always has.
    #[inline(always)]
    pub fn this_cpu() -> Option<Counters> {
        COUNTERS.get_ptr_mut(0).map(Counters)
    }

    /// Adds `n` to `counter`. Per-CPU, so no atomics needed.
    #[inline(always)]
    pub fn add(&self, counter: Counter, n: u64) {
        // SAFETY: the kernel returned a pointer to this CPU's value, valid for
        // the whole program run; XDP runs without preemption on one CPU, so no
        // other writer touches it concurrently.
        unsafe { (*self.0).add(counter, n) }
    }
}

/// This CPU's counters of channel `index` (`None` when the index is out of range).
///
/// # Safety
///
/// At most one call per program run: the reference must be the only one.
#[inline(always)]
pub unsafe fn channel(index: u32) -> Option<&'static mut ChannelCounters> {
    // SAFETY: as in `Counters::add`: this CPU's slot, valid for the run, no
    // concurrent writer; the caller makes it the only reference.
    CHANNEL_COUNTERS.get_ptr_mut(index).map(|p| unsafe { &mut *p })
}
