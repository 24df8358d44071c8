//! XDP attachments made by a test, through the relay's own `attach` command.

use crate::netns::Netns;
use crate::relay::binary;

/// `speeddata-xdp attach` on `iface` in `ns`, detached on drop (also when the
/// test fails). A native redirect into a veth needs a program on the peer:
/// tests attach one to the subscriber's interface this way.
pub struct Attached<'a>(&'a Netns, &'static str);

impl<'a> Attached<'a> {
    pub fn new(ns: &'a Netns, iface: &'static str, mode: &str) -> Attached<'a> {
        let out = ns.output_net_only(&binary(), &["attach", "--iface", iface, "--mode", mode]);
        assert!(out.status.success(), "attach {iface} {mode}: {}", String::from_utf8_lossy(&out.stderr));
        Attached(ns, iface)
    }
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        let _ = self.0.output_net_only(&binary(), &["detach", "--iface", self.1]);
    }
}

/// Whether `ip link` shows an XDP program on `iface`.
pub fn xdp_attached(ns: &Netns, iface: &str) -> bool {
    let out = ns.ip(&["link", "show", "dev", iface]);
    String::from_utf8_lossy(&out.stdout).contains("xdp")
}
