//! Interface-wide counters kept by the XDP program in a per-CPU array.
//!
//! Each slot is a `u64`; the index is a [`Counter`]. Userspace sums the
//! per-CPU values. Counters only grow; a reader computes rates from deltas.

/// Index of a counter in the [`crate::maps::COUNTERS`] per-CPU array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Every frame the program saw.
    Packets = 0,
    /// Bytes of every frame the program saw (linear part, as XDP sees it).
    Bytes = 1,
    /// Frames handed to the network stack (`XDP_PASS`), whatever the reason.
    Passed = 2,
    /// Frames that are not IPv4 over Ethernet.
    NotIpv4 = 3,
    /// IPv4 packets that are not UDP.
    NotUdp = 4,
    /// IPv4 fragments (the relay only handles whole datagrams).
    Fragment = 5,
    /// Frames shorter than the headers they announce.
    Truncated = 6,
    /// IPv4 header length or UDP length that cannot be right.
    Malformed = 7,
    /// Well-formed UDP/IPv4 datagrams (whether or not a channel matched).
    Udp = 8,
    /// UDP datagrams that matched a channel (per-channel detail in `CHANNEL_COUNTERS`).
    Matched = 9,
    /// Matched datagrams rewritten and sent to their full-rate group.
    Forwarded = 10,
    /// Matched datagrams whose payload did not fit their ring (full, or too long).
    RingDrops = 11,
    /// Matched datagrams dropped because the rewrite or redirect failed.
    ForwardFailed = 12,
}

/// Number of slots in the counters array.
pub const COUNTER_COUNT: u32 = 13;

impl Counter {
    /// All counters, in index order.
    pub const ALL: [Counter; COUNTER_COUNT as usize] = [
        Counter::Packets,
        Counter::Bytes,
        Counter::Passed,
        Counter::NotIpv4,
        Counter::NotUdp,
        Counter::Fragment,
        Counter::Truncated,
        Counter::Malformed,
        Counter::Udp,
        Counter::Matched,
        Counter::Forwarded,
        Counter::RingDrops,
        Counter::ForwardFailed,
    ];

    /// The slot index in the map.
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// A stable, lower-case name for printing (`status`) and tests.
    pub const fn name(self) -> &'static str {
        match self {
            Counter::Packets => "packets",
            Counter::Bytes => "bytes",
            Counter::Passed => "passed",
            Counter::NotIpv4 => "not_ipv4",
            Counter::NotUdp => "not_udp",
            Counter::Fragment => "fragment",
            Counter::Truncated => "truncated",
            Counter::Malformed => "malformed",
            Counter::Udp => "udp",
            Counter::Matched => "matched",
            Counter::Forwarded => "forwarded",
            Counter::RingDrops => "ring_drops",
            Counter::ForwardFailed => "forward_failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_index_order_and_complete() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.index() as usize, i, "{c:?}");
        }
        assert_eq!(Counter::ALL.len(), COUNTER_COUNT as usize);
    }
}
