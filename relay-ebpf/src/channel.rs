//! Finding the channel a datagram belongs to.

use relay_common::{
    channel::{port_slot, Channel, GroupKey},
    datagram::Datagram,
};

use crate::maps::{GROUP_CHANNELS, PORTS, PORT_CHANNELS};

/// The channel for `d`: by (group, port) when sent to a multicast group and
/// such an entry exists, else by destination port. A copy, so that userspace
/// updating the entry meanwhile cannot tear what this run uses.
#[inline(always)]
pub fn lookup(d: &Datagram) -> Option<Channel> {
    if d.to_multicast() {
        if let Some(ch) = GROUP_CHANNELS.get_ptr(GroupKey::new(d.dst_addr, d.dst_port)) {
            // SAFETY: a valid map value pointer for this run; read by value.
            return Some(unsafe { core::ptr::read(ch) });
        }
    }
    by_port(d.dst_port)
}

/// The channel `PORTS` routes `port` to. Two inlined array lookups. Userspace
/// never rewrites the slot a port points to (it writes the other slot of the
/// channel's pair, then switches the port), so the copy is never torn.
#[inline(always)]
fn by_port(port: u16) -> Option<Channel> {
    let entry = PORTS.get_ptr(u32::from(port))?;
    // SAFETY: a valid map value pointer for this run. One 4-byte load:
    // userspace switches a port with one 4-byte store.
    let slot = port_slot(unsafe { core::ptr::read_volatile(entry) })?;
    let ch = PORT_CHANNELS.get_ptr(slot)?;
    // SAFETY: a valid map value pointer for this run; read by value.
    Some(unsafe { core::ptr::read(ch) })
}
