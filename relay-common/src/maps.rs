//! Map names, defined once and used by both sides.
//!
//! The kernel side names its map statics after these constants and checks the
//! spelling at compile time (see `relay-ebpf/src/maps.rs`), so a rename here
//! that is not followed there fails the eBPF build instead of failing at load.

/// Per-CPU array with one entry, a [`crate::counters::CounterSet`]: what the
/// program saw on this interface, summed over CPUs by userspace.
pub const COUNTERS: &str = "COUNTERS";

/// Array of `u32` indexed by UDP destination port: 0 for no channel, else
/// [`crate::channel::port_entry`] of the port's slot in [`PORT_CHANNELS`].
pub const PORTS: &str = "PORTS";

/// Array of [`crate::channel::Channel`], [`crate::channel::PORT_CHANNEL_SLOTS`]
/// entries: the channels [`PORTS`] points to (slots `2 * index` and `2 * index + 1`).
pub const PORT_CHANNELS: &str = "PORT_CHANNELS";

/// Hash map [`crate::channel::GroupKey`] → [`crate::channel::Channel`], for
/// multicast inputs; tried before [`PORTS`] when the destination is multicast.
pub const GROUP_CHANNELS: &str = "GROUP_CHANNELS";

/// Array of maps, indexed by [`crate::channel::Channel::index`]: each
/// channel's ring, an mmapable array of one [`crate::ring::VALUE_BYTES`]
/// value laid out as [`crate::ring`] says; userspace creates and places the rings.
pub const RINGS: &str = "RINGS";

/// Per-CPU array of [`crate::channel::ChannelCounters`], indexed by channel index.
pub const CHANNEL_COUNTERS: &str = "CHANNEL_COUNTERS";

/// Devmap (hash, keyed by ifindex) of egress interfaces for redirects.
pub const EGRESS: &str = "EGRESS";

/// The XDP program's function name in the object (the `#[xdp]` entry point).
pub const PROGRAM: &str = "speeddata";

/// A `u8` global of the program (`.rodata`, set by the loader): 1 when a
/// plain store publishes a ring record in order (x86's total store order:
/// every earlier store, the payload copy included, is visible first), 0
/// for an atomic exchange (a full barrier, needed where stores may be
/// reordered, e.g. arm64). See [`crate::ring`].
pub const COMMIT_BY_STORE: &str = "COMMIT_BY_STORE";

/// Every map userspace pins under `/sys/fs/bpf/speeddata/<IF>@ns<INODE>/`.
pub const PINNED: &[&str] = &[COUNTERS, PORTS, PORT_CHANNELS, GROUP_CHANNELS, RINGS, CHANNEL_COUNTERS, EGRESS];

/// Compile-time string equality, for checking map statics against these names.
pub const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_eq_compares_bytes() {
        assert!(str_eq(COUNTERS, "COUNTERS"));
        assert!(!str_eq(COUNTERS, "COUNTER"));
        assert!(!str_eq("ab", "ac"));
    }
}
