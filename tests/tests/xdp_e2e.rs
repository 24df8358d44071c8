//! XDP mode end to end, native and generic: the kernel re-publishes every
//! datagram on the full-rate group (checked on the wire: multicast MAC, the
//! egress interface's MAC and address, the configured TTL, valid checksums,
//! byte-identical payload), the channel process gets every datum through its
//! ring (decimated stream, Avro files and quarantine as in socket mode), and
//! traffic that is not for a channel passes through untouched.
//!
//! Pins live in the host's bpffs under interface names, so these tests take
//! turns ([`SERIAL`]) and detach what they attached even when they fail.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::Mutex;
use std::time::Duration;

use integration_tests::capture::{mac_of, parse_udp, Capture};
use integration_tests::netns::Netns;
use integration_tests::relay::{binary, RelayProcess};
use integration_tests::scenario::{self, FULL};
use integration_tests::topology::*;

static SERIAL: Mutex<()> = Mutex::new(());

/// Detaches `iface` in `ns` on drop (also when the test fails).
struct Attached<'a>(&'a Netns, &'static str);

impl<'a> Attached<'a> {
    fn new(ns: &'a Netns, iface: &'static str, mode: &str) -> Attached<'a> {
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

fn xdp_attached(ns: &Netns, iface: &str) -> bool {
    let out = ns.ip(&["link", "show", "dev", iface]);
    String::from_utf8_lossy(&out.stdout).contains("xdp")
}

/// UDP to a port no channel uses, and TCP, from the sender to the relay host.
fn unrelated_traffic_passes(topo: &Topology) {
    let udp = topo.relay.spawn(|| {
        let s = UdpSocket::bind((RELAY_IN_ADDR, 26999)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    });
    let udp = udp.join().unwrap();
    let tcp = topo.relay.spawn(|| TcpListener::bind((RELAY_IN_ADDR, 8081)).unwrap()).join().unwrap();
    topo.sender
        .spawn(|| {
            let s = UdpSocket::bind((SENDER_ADDR, 0)).unwrap();
            for i in 0..10u8 {
                s.send_to(&[i; 32], (RELAY_IN_ADDR, 26999)).unwrap();
            }
            let mut c = TcpStream::connect_timeout(&(RELAY_IN_ADDR, 8081).into(), Duration::from_secs(5)).unwrap();
            c.write_all(b"hello through XDP").unwrap();
        })
        .join()
        .unwrap();
    let mut buf = [0u8; 64];
    for i in 0..10u8 {
        let (n, _) = udp.recv_from(&mut buf).expect("unmatched UDP must reach the stack");
        assert_eq!(&buf[..n], &[i; 32]);
    }
    let (mut conn, _) = tcp.accept().unwrap();
    let mut got = String::new();
    conn.read_to_string(&mut got).unwrap();
    assert_eq!(got, "hello through XDP");
}

fn xdp_end_to_end(mode: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    // Native XDP that redirects into a veth needs a program on the peer.
    let _peer = Attached::new(&topo.subscriber, SUBSCRIBER_IF, "native");
    // Generic mode: attached beforehand with `attach`, which `run` reuses.
    let pre = (mode == "skb").then(|| Attached::new(&topo.relay, RELAY_IN_IF, "skb"));
    let capture = Capture::start(&topo.subscriber, SUBSCRIBER_IF);

    let o = scenario::run_with(&topo, dir.path(), RelayProcess::start_net_only, &["--mode", "xdp", "--iface", RELAY_IN_IF], || {
        unrelated_traffic_passes(&topo)
    });
    let k: serde_json::Value =
        serde_json::from_slice(&std::fs::read(o.data.join("example/xdp.json")).expect("xdp.json")).unwrap();
    assert_eq!(k["forwarded"], o.sent.len() as u64, "{k}");
    assert_eq!(k["packets"], o.sent.len() as u64, "{k}");
    assert_eq!(k["ring_drops"], 0, "{k}");

    // On the wire: exactly the rewritten datagrams, in order.
    let frames = capture.finish();
    let relay_mac = mac_of(&topo.relay, RELAY_OUT_IF);
    let full: Vec<_> = frames.iter().filter_map(|f| parse_udp(f)).filter(|u| u.dst_port == FULL.port()).collect();
    assert_eq!(full.len(), o.sent.len());
    for (i, (f, want)) in full.iter().zip(&o.sent).enumerate() {
        assert_eq!(f.payload, &want[..], "frame {i} payload");
        assert_eq!(f.dst_mac, [0x01, 0x00, 0x5e, 0x01, 0x01, 0x01], "frame {i} multicast MAC");
        assert_eq!(f.src_mac, relay_mac, "frame {i} source MAC");
        assert_eq!(f.src, RELAY_OUT_ADDR.octets(), "frame {i} source address");
        assert_eq!(f.dst, FULL.ip().octets(), "frame {i} group");
        assert_eq!(f.ttl, 4, "frame {i} TTL");
        assert!(f.ip_checksum_ok, "frame {i} IPv4 checksum");
        assert_ne!(f.udp_checksum_ok, Some(false), "frame {i} UDP checksum");
    }

    scenario::check(&o);
    let expect_line = if mode == "skb" { "input mode: XDP (reused) on rin0" } else { "input mode: XDP (native) on rin0" };
    assert!(o.log.contains(expect_line), "expected {expect_line:?} in:\n{}", o.log);
    assert_eq!(o.stats["input"], "xdp");
    // Ring records are re-published by the kernel; the process forwards only
    // what the program passed to the stack (nothing here).
    assert_eq!(o.stats["full_rate_out"], 0);
    if mode == "skb" {
        // `run` leaves an attachment it reused; `detach` removes it.
        assert!(xdp_attached(&topo.relay, RELAY_IN_IF));
        drop(pre);
    }
    assert!(!xdp_attached(&topo.relay, RELAY_IN_IF), "no XDP program may be left on rin0");
    assert!(!std::path::Path::new("/sys/fs/bpf/speeddata/rin0").exists(), "pins left behind");
}

#[test]
fn xdp_native_relays_decimates_archives_and_passes_other_traffic() {
    xdp_end_to_end("native");
}

#[test]
fn xdp_generic_reuses_attachment_and_relays() {
    xdp_end_to_end("skb");
}
