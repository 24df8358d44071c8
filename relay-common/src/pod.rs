//! `aya::Pod` for the map keys and values (userspace only, `user` feature).

use crate::channel::{Channel, ChannelCounters, GroupKey};
use crate::counters::CounterSet;
use crate::record::RecordHeader;

// SAFETY: each is `#[repr(C)]`, `Copy`, made of integers and byte arrays with
// explicit padding fields, so every byte is initialised and any bytes are valid.
unsafe impl aya::Pod for GroupKey {}
// SAFETY: as above.
unsafe impl aya::Pod for Channel {}
// SAFETY: as above.
unsafe impl aya::Pod for ChannelCounters {}
// SAFETY: as above.
unsafe impl aya::Pod for RecordHeader {}
// SAFETY: as above.
unsafe impl aya::Pod for CounterSet {}
