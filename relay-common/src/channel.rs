//! Channel lookup keys and values, per-channel counters.
//!
//! A channel is found by UDP destination port ([`crate::maps::PORTS`], an
//! array indexed by port, pointing into [`crate::maps::PORT_CHANNELS`]) or, for
//! multicast inputs, by destination group and port ([`GroupKey`] in
//! [`crate::maps::GROUP_CHANNELS`], tried first). Arrays, because the verifier
//! inlines array lookups: no hashing and no helper call per datagram.
//! Its [`Channel::index`] selects its ring buffer in [`crate::maps::RINGS`] and
//! its slot in [`crate::maps::CHANNEL_COUNTERS`].

/// Slots in the ring array and the per-channel counters (SpeedData uses ports 26000–27000).
pub const MAX_CHANNELS: u32 = 1024;

/// Bytes of record space in each channel's ring ([`crate::ring`]). Every inner
/// ring has the same size: the kernel requires inner maps to match the template in `RINGS`.
pub const RING_BYTES: u32 = 1 << 22;

/// Largest UDP payload copied into a ring (jumbo frames).
pub const MAX_PAYLOAD: usize = 9000;

/// Copy the payload into the channel's ring.
pub const FLAG_RING: u32 = 1 << 0;
/// Rewrite the frame to the full-rate group and send it (`XDP_TX` or redirect).
pub const FLAG_FORWARD: u32 = 1 << 1;
/// Also hand the original frame to the network stack (only without [`FLAG_FORWARD`]).
pub const FLAG_PASS: u32 = 1 << 2;

/// Entries of [`crate::maps::PORTS`]: one per UDP port.
pub const PORT_COUNT: u32 = 1 << 16;

/// Entries of [`crate::maps::PORT_CHANNELS`]: two per channel index. A port's
/// channel is replaced by writing the slot the port does not use and then
/// pointing the port at it (one 4-byte store): an array entry rewritten in
/// place could be read half-written by the program.
pub const PORT_CHANNEL_SLOTS: u32 = 2 * MAX_CHANNELS;

/// The value of [`crate::maps::PORTS`] for a port routed to `slot` of
/// [`crate::maps::PORT_CHANNELS`]; 0 means no channel.
pub const fn port_entry(slot: u32) -> u32 {
    slot + 1
}

/// The slot a [`crate::maps::PORTS`] value points to (`None` for no channel).
pub const fn port_slot(entry: u32) -> Option<u32> {
    entry.checked_sub(1)
}

/// Lookup by destination (multicast) address and UDP port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GroupKey {
    pub group: [u8; 4],
    /// Network order.
    pub port: [u8; 2],
    pub _pad: [u8; 2],
}

impl GroupKey {
    pub const fn new(group: [u8; 4], port: u16) -> Self {
        GroupKey { group, port: port.to_be_bytes(), _pad: [0; 2] }
    }
}

/// What to do with a channel's datagrams. Addresses and ports in network order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Channel {
    /// Slot of the ring buffer and counters (< [`MAX_CHANNELS`]).
    pub index: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Interface to send the full-rate datagram from. Equal to the ingress
    /// interface: `XDP_TX`; otherwise a redirect through [`crate::maps::EGRESS`].
    pub egress_ifindex: u32,
    /// The full-rate group and port the datagram is rewritten to.
    pub group: [u8; 4],
    pub group_port: [u8; 2],
    /// TTL of the rewritten datagram.
    pub ttl: u8,
    pub _pad0: u8,
    /// MAC and IPv4 address of the egress interface (rewritten source).
    pub src_mac: [u8; 6],
    pub _pad1: [u8; 2],
    pub src_ip: [u8; 4],
}

impl Channel {
    pub const fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

/// Per-channel counters, one per CPU in [`crate::maps::CHANNEL_COUNTERS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelCounters {
    /// Datagrams matched to the channel.
    pub packets: u64,
    /// Their UDP payload bytes.
    pub bytes: u64,
    /// Rewritten and sent to the full-rate group.
    pub forwarded: u64,
    /// Not copied because the ring was full (or the copy failed).
    pub ring_drops: u64,
}

impl core::ops::AddAssign for ChannelCounters {
    fn add_assign(&mut self, o: Self) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.forwarded += o.forwarded;
        self.ring_drops += o.ring_drops;
    }
}

const _: () = {
    assert!(core::mem::size_of::<GroupKey>() == 8);
    assert!(core::mem::size_of::<Channel>() == 32);
    assert!(core::mem::size_of::<ChannelCounters>() == 32);
};
