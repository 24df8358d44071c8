//! Looking up a network interface by name (in this network namespace): its
//! index, Ethernet address and first IPv4 address. One place for the socket
//! path (which joins groups and sends from an interface's address) and the
//! XDP path (which writes them into rewritten frames).

use std::net::Ipv4Addr;

/// What the relay needs to know of an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub index: u32,
    pub mac: Option<[u8; 6]>,
    pub ipv4: Option<Ipv4Addr>,
}

/// The interface named `name`, `Ok(None)` if there is none.
pub fn lookup(name: &str) -> std::io::Result<Option<Interface>> {
    use network_interface::{Addr, NetworkInterface, NetworkInterfaceConfig};
    let all = NetworkInterface::show().map_err(std::io::Error::other)?;
    // The crate lists an interface once per address.
    let entries: Vec<_> = all.into_iter().filter(|n| n.name == name).collect();
    let Some(first) = entries.first() else { return Ok(None) };
    let ipv4 = entries.iter().flat_map(|n| n.addr.iter()).find_map(|a| match a {
        Addr::V4(v4) => Some(v4.ip),
        Addr::V6(_) => None,
    });
    Ok(Some(Interface { index: first.index, mac: first.mac_addr.as_deref().and_then(parse_mac), ipv4 }))
}

/// The first IPv4 address of `name`, with an error that says which interface
/// and what it lacks; `role` says what the interface is for (`--iface`,
/// `network.egress_iface`).
pub fn ipv4_of(name: &str, role: &str) -> anyhow::Result<Ipv4Addr> {
    use anyhow::Context;
    let iface = lookup(name).context("listing network interfaces")?;
    let iface = iface.with_context(|| format!("{role}: there is no interface {name:?} (in this network namespace)"))?;
    iface.ipv4.with_context(|| format!("{role}: interface {name:?} has no IPv4 address"))
}

/// `02:aa:0b:cc:dd:0e` → bytes.
fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_mac_addresses() {
        assert_eq!(parse_mac("02:aa:0b:cc:dd:0e"), Some([2, 0xaa, 0x0b, 0xcc, 0xdd, 0x0e]));
        assert_eq!(parse_mac("02:aa:0b:cc:dd"), None);
        assert_eq!(parse_mac("02:aa:0b:cc:dd:0e:ff"), None);
    }

    #[test]
    fn loopback_is_found_and_a_missing_one_is_not() {
        let lo = lookup("lo").unwrap().expect("lo");
        assert_eq!(lo.ipv4, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(lookup("no-such-if0").unwrap(), None);
        let e = ipv4_of("no-such-if0", "--iface").unwrap_err().to_string();
        assert!(e.contains("--iface") && e.contains("no-such-if0"), "{e}");
    }
}
