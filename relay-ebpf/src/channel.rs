//! Finding the channel a datagram belongs to.

use relay_common::channel::{Channel, GroupKey, PortKey};

use crate::{
    maps::{CHANNELS, GROUP_CHANNELS},
    parse::Datagram,
};

/// The channel for `d`: by (group, port) when sent to a multicast group and
/// such an entry exists, else by destination port. A copy, so that userspace
/// updating the entry meanwhile cannot tear what this run uses.
#[inline(always)]
pub fn lookup(d: &Datagram) -> Option<Channel> {
    if d.dst_addr[0] & 0xf0 == 0xe0 {
        if let Some(ch) = GROUP_CHANNELS.get_ptr(GroupKey::new(d.dst_addr, d.dst_port)) {
            // SAFETY: a valid map value pointer for this run; read by value.
            return Some(unsafe { core::ptr::read(ch) });
        }
    }
    let ch = CHANNELS.get_ptr(PortKey::new(d.dst_port))?;
    // SAFETY: as above.
    Some(unsafe { core::ptr::read(ch) })
}
