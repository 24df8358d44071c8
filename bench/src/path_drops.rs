//! Where datagrams can be lost on the test topology outside the relay, as
//! the kernel counts them: read before and after a run.

use integration_tests::topology::{Topology, RELAY_OUT_IF, SUBSCRIBER_IF};

/// Where datagrams can be lost outside the relay on their way to the
/// subscriber: its UDP receive-buffer overflows, and the drops counted by the
/// veth pair between relay and subscriber.
#[derive(Clone, Copy, Debug, Default)]
pub struct PathDrops {
    /// The relay's input socket (socket mode) overflowed.
    pub relay_rcvbuf: u64,
    pub subscriber_rcvbuf: u64,
    pub sub0_rx_dropped: u64,
    pub rout0_tx_dropped: u64,
}

impl PathDrops {
    pub fn read(topo: &Topology) -> PathDrops {
        let cat = |ns: &integration_tests::netns::Netns, path: &str| {
            ns.command("cat").arg(path).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
        };
        let num = |s: String| s.trim().parse().unwrap_or(0);
        PathDrops {
            relay_rcvbuf: udp_rcvbuf_errors(&cat(&topo.relay, "/proc/net/snmp")),
            subscriber_rcvbuf: udp_rcvbuf_errors(&cat(&topo.subscriber, "/proc/net/snmp")),
            sub0_rx_dropped: num(cat(&topo.subscriber, &format!("/sys/class/net/{SUBSCRIBER_IF}/statistics/rx_dropped"))),
            rout0_tx_dropped: num(cat(&topo.relay, &format!("/sys/class/net/{RELAY_OUT_IF}/statistics/tx_dropped"))),
        }
    }

    pub fn since(self, before: PathDrops) -> PathDrops {
        PathDrops {
            relay_rcvbuf: self.relay_rcvbuf - before.relay_rcvbuf,
            subscriber_rcvbuf: self.subscriber_rcvbuf - before.subscriber_rcvbuf,
            sub0_rx_dropped: self.sub0_rx_dropped - before.sub0_rx_dropped,
            rout0_tx_dropped: self.rout0_tx_dropped - before.rout0_tx_dropped,
        }
    }

    /// For a report line: each counter that is not zero, or "none".
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            ("`rout0` tx dropped (the veth ring into `sub0`)", self.rout0_tx_dropped),
            ("`sub0` rx dropped", self.sub0_rx_dropped),
            ("subscriber receive-buffer overflows", self.subscriber_rcvbuf),
            ("relay input-socket overflows", self.relay_rcvbuf),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{what} {n}"))
        .collect();
        if parts.is_empty() { "none counted".into() } else { parts.join(", ") }
    }
}

/// `RcvbufErrors` of the `Udp:` lines of /proc/net/snmp (a header line, then values).
fn udp_rcvbuf_errors(snmp: &str) -> u64 {
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else { return 0 };
    names.split_whitespace().zip(values.split_whitespace()).find(|(n, _)| *n == "RcvbufErrors").and_then(|(_, v)| v.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rcvbuf_errors_from_snmp() {
        let snmp = "Ip: Forwarding\nIp: 1\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
                    Udp: 10 0 7 3 5 0\nUdpLite: InDatagrams\nUdpLite: 0\n";
        assert_eq!(super::udp_rcvbuf_errors(snmp), 5);
        assert_eq!(super::udp_rcvbuf_errors(""), 0);
    }

    #[test]
    fn describes_only_what_was_counted() {
        assert_eq!(PathDrops::default().describe(), "none counted");
        let d = PathDrops { rout0_tx_dropped: 288, subscriber_rcvbuf: 3, ..Default::default() };
        assert_eq!(d.describe(), "`rout0` tx dropped (the veth ring into `sub0`) 288, subscriber receive-buffer overflows 3");
    }
}
