//! The three hosts of every end-to-end test:
//!
//! ```text
//!  sender  snd0 192.0.2.1 ──veth── rin0 192.0.2.2   relay   rout0 198.51.100.1 ──veth── sub0 198.51.100.2  subscriber
//! ```
//! Documentation address ranges (RFC 5737), existing only inside these namespaces.
//! Multicast leaves the relay through `rout0` and reaches the subscriber on `sub0`.

use std::net::Ipv4Addr;

use crate::netns::{link, Netns};

pub const SENDER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const RELAY_IN_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const RELAY_OUT_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const SUBSCRIBER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const RELAY_IN_IF: &str = "rin0";
pub const RELAY_OUT_IF: &str = "rout0";
pub const SUBSCRIBER_IF: &str = "sub0";
pub const SENDER_IF: &str = "snd0";

pub struct Topology {
    // Field order is drop order; all three are deleted on drop.
    pub sender: Netns,
    pub relay: Netns,
    pub subscriber: Netns,
}

impl Topology {
    pub fn new() -> Topology {
        let t = Topology {
            sender: Netns::new("snd"),
            relay: Netns::new("rly"),
            subscriber: Netns::new("sub"),
        };
        t.link_sender();
        t.link_subscriber();
        t
    }

    /// The sender ↔ relay veth pair (also to re-create it after a test deleted it).
    pub fn link_sender(&self) {
        link(&self.sender, SENDER_IF, "192.0.2.1/24", &self.relay, RELAY_IN_IF, "192.0.2.2/24");
        // A real source's NIC puts complete UDP checksums on the wire; a veth
        // with TX offload leaves a partial one for the receiver to finish,
        // which an XDP program rewriting the datagram cannot know about.
        crate::netns::run(self.sender.command("ethtool").args(["-K", SENDER_IF, "tx", "off"]));
    }

    /// The relay ↔ subscriber veth pair and its multicast routes (also to
    /// re-create it after a test deleted it).
    pub fn link_subscriber(&self) {
        link(&self.relay, RELAY_OUT_IF, "198.51.100.1/24", &self.subscriber, SUBSCRIBER_IF, "198.51.100.2/24");
        // Multicast routes: the relay publishes through rout0; the subscriber's
        // joins and replies stay on sub0.
        self.relay.ip(&["route", "add", "224.0.0.0/4", "dev", RELAY_OUT_IF]);
        self.subscriber.ip(&["route", "add", "224.0.0.0/4", "dev", SUBSCRIBER_IF]);
    }
}

impl Default for Topology {
    fn default() -> Self {
        Self::new()
    }
}
