//! Channel lookup keys and values, per-channel counters.
//!
//! A channel is found by UDP destination port ([`PortKey`] in
//! [`crate::maps::CHANNELS`]) or, for multicast inputs, by destination group
//! and port ([`GroupKey`] in [`crate::maps::GROUP_CHANNELS`], tried first).
//! Its [`Channel::index`] selects its ring buffer in [`crate::maps::RINGS`] and
//! its slot in [`crate::maps::CHANNEL_COUNTERS`].

/// Slots in the ring array and the per-channel counters (SpeedData uses ports 26000–27000).
pub const MAX_CHANNELS: u32 = 1024;

/// Bytes of each channel's ring buffer. Every inner ring must have this size:
/// the kernel requires inner maps to match the template in `RINGS`.
pub const RING_BYTES: u32 = 1 << 22;

/// Largest UDP payload copied into a ring (jumbo frames).
pub const MAX_PAYLOAD: usize = 9000;

/// Copy the payload into the channel's ring.
pub const FLAG_RING: u32 = 1 << 0;
/// Rewrite the frame to the full-rate group and send it (`XDP_TX` or redirect).
pub const FLAG_FORWARD: u32 = 1 << 1;
/// Also hand the original frame to the network stack (only without [`FLAG_FORWARD`]).
pub const FLAG_PASS: u32 = 1 << 2;

/// Lookup by UDP destination port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortKey {
    /// Network order.
    pub port: [u8; 2],
}

impl PortKey {
    pub const fn new(port: u16) -> Self {
        PortKey { port: port.to_be_bytes() }
    }

    pub const fn port(&self) -> u16 {
        u16::from_be_bytes(self.port)
    }
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
    assert!(core::mem::size_of::<PortKey>() == 2);
    assert!(core::mem::size_of::<GroupKey>() == 8);
    assert!(core::mem::size_of::<Channel>() == 32);
    assert!(core::mem::size_of::<ChannelCounters>() == 32);
};
