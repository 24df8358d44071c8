//! Interface-wide counters kept by the XDP program in a per-CPU array.
//!
//! The array has one entry, a [`CounterSet`] (one `u64` per [`Counter`]), so
//! the program finds all of them with one lookup per frame. Userspace sums the
//! per-CPU values. Counters only grow; a reader computes rates from deltas.

/// Index of a counter in a [`CounterSet`].
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
    /// Datagrams to a channel whose IPv4 header checksum is wrong: left to the
    /// stack, which drops them (as it does in socket mode), neither copied
    /// nor forwarded. Other traffic is not checked (the stack does).
    BadChecksum = 13,
}

/// Number of counters in a [`CounterSet`].
pub const COUNTER_COUNT: u32 = 14;

/// The value of the one entry of [`crate::maps::COUNTERS`]: every counter of one CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterSet(pub [u64; COUNTER_COUNT as usize]);

impl CounterSet {
    /// Adds `n` to `counter`.
    #[inline(always)]
    pub fn add(&mut self, counter: Counter, n: u64) {
        // `Counter` indices are all < COUNTER_COUNT: no bounds check is emitted.
        self.0[counter.index() as usize] += n;
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.0[counter.index() as usize]
    }
}

impl core::ops::AddAssign for CounterSet {
    fn add_assign(&mut self, o: Self) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a += b;
        }
    }
}

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
        Counter::BadChecksum,
    ];

    /// The index in a [`CounterSet`].
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
            Counter::BadChecksum => "bad_checksum",
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
