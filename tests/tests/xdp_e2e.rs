//! XDP mode end to end, native and generic: the kernel re-publishes every
//! datagram on the full-rate group (checked on the wire: multicast MAC, the
//! egress interface's MAC and address, the configured TTL, valid checksums,
//! byte-identical payload), the channel process gets every datum through its
//! ring (decimated stream, Avro files and quarantine as in socket mode), and
//! traffic that is not for a channel passes through untouched.
//!
//! These tests take turns ([`SERIAL`]) so that two traffic bursts do not share
//! the 2 cores, and detach what they attached even when they fail.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::Mutex;
use std::time::Duration;

use integration_tests::capture::{mac_of, parse_udp, Capture};
use integration_tests::relay::RelayProcess;
use integration_tests::scenario::{self, FULL};
use integration_tests::topology::*;
use integration_tests::xdp::{xdp_attached, Attached};

static SERIAL: Mutex<()> = Mutex::new(());

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
    assert!(!topo.relay.pin_dir(RELAY_IN_IF).exists(), "pins left behind");
}

#[test]
fn xdp_native_relays_decimates_archives_and_passes_other_traffic() {
    xdp_end_to_end("native");
}

#[test]
fn xdp_generic_reuses_attachment_and_relays() {
    xdp_end_to_end("skb");
}

/// Two-channel SpeedData config: `a` on 26000, and `b` on 26001 if `with_b`.
fn write_two(root: &std::path::Path, with_b: bool) -> std::path::PathBuf {
    let cfg = scenario::write_config(root, "network:\n  egress_iface: \"rout0\"\n");
    let mut relay = String::from("channels:\n  - name: a\n    port: 26000\n    schema: config/agents/example.avsc\n");
    if with_b {
        relay += "  - name: b\n    port: 26001\n    schema: config/agents/example.avsc\n";
    }
    relay += "decimation:\n  enabled: true\n  factor: 10\n  algorithm: downsample\n";
    std::fs::write(cfg.join("relay.yaml"), relay).unwrap();
    cfg
}

#[test]
fn xdp_channels_added_and_removed_while_another_flows_lose_nothing() {
    use integration_tests::datum::{example_datum, example_schema};
    use integration_tests::relay::{channel_stats, read_avro_independently, wait_for};
    use integration_tests::subscriber::Subscriber;

    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    let _peer = Attached::new(&topo.subscriber, SUBSCRIBER_IF, "native");
    let cfg = write_two(dir.path(), false);
    let data = dir.path().join("data");
    let full = Subscriber::start(&topo.subscriber, FULL, SUBSCRIBER_ADDR);
    let relay = RelayProcess::start_net_only(
        &topo.relay,
        &["run", "--mode", "xdp", "--iface", RELAY_IN_IF, "--api", "off", "--config", cfg.to_str().unwrap()],
        dir.path().join("relay.log"),
    );
    wait_for("channel a", Duration::from_secs(15), || channel_stats(&data, "a").is_some());

    // Channel a streams for about two seconds while b comes and goes.
    const N: u32 = 10_000;
    let a_stream = topo.sender.spawn(|| {
        let schema = example_schema();
        let s = UdpSocket::bind((SENDER_ADDR, 0)).unwrap();
        for seq in 0..N {
            s.send_to(&example_datum(&schema, seq), (RELAY_IN_ADDR, 26000)).unwrap();
            if seq % 25 == 24 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    write_two(dir.path(), true);
    // SAFETY: kill(2) on our relay.
    unsafe { libc::kill(relay.pid() as i32, libc::SIGHUP) };
    wait_for("channel b", Duration::from_secs(10), || channel_stats(&data, "b").is_some());
    topo.sender
        .spawn(|| {
            let schema = example_schema();
            let s = UdpSocket::bind((SENDER_ADDR, 0)).unwrap();
            for seq in 100_000..100_300 {
                s.send_to(&example_datum(&schema, seq), (RELAY_IN_ADDR, 26001)).unwrap();
            }
        })
        .join()
        .unwrap();
    wait_for("b to take 300", Duration::from_secs(10), || channel_stats(&data, "b").is_some_and(|s| s["datagrams_in"] == 300));
    write_two(dir.path(), false);
    unsafe { libc::kill(relay.pid() as i32, libc::SIGHUP) };
    wait_for("b to stop", Duration::from_secs(10), || relay.log_text().contains("channel b: stopped"));
    assert!(!a_stream.is_finished(), "a's stream should still be flowing during the reloads (make it longer)");
    a_stream.join().unwrap();
    wait_for("a to take everything", Duration::from_secs(20), || channel_stats(&data, "a").is_some_and(|s| s["datagrams_in"] == N));
    let log = relay.stop();
    assert!(log.contains("1 added, 0 removed, 0 changed, 1 unchanged"), "{log}");
    assert!(log.contains("0 added, 1 removed, 0 changed, 1 unchanged"), "{log}");

    // a lost nothing on any path; b's datagrams all got through while it existed.
    let schema = example_schema();
    let got = full.finish();
    let want_a: Vec<Vec<u8>> = (0..N).map(|s| example_datum(&schema, s)).collect();
    let want_b: Vec<Vec<u8>> = (100_000..100_300).map(|s| example_datum(&schema, s)).collect();
    let a_full: Vec<&Vec<u8>> = got.iter().map(|r| &r.payload).filter(|p| !want_b.contains(p)).collect();
    assert_eq!(a_full.len() as u32, N, "a's full-rate datagrams");
    assert!(a_full.iter().zip(&want_a).all(|(g, w)| *g == w), "a's full-rate stream in order, byte-identical");
    assert_eq!(got.len() as u32, N + 300, "a's and b's full-rate datagrams");
    assert_eq!(read_avro_independently(&data.join("a")).len() as u32, N);
    assert_eq!(read_avro_independently(&data.join("b")).len(), 300);
    let k: serde_json::Value = serde_json::from_slice(&std::fs::read(data.join("a/xdp.json")).unwrap()).unwrap();
    assert_eq!(k["ring_drops"], 0, "{k}");
}

#[test]
fn ring_overflow_counts_exact_drops_and_spares_other_channels() {
    use integration_tests::datum::{example_datum, example_schema};
    use integration_tests::relay::{channel_stats, wait_for};

    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    let cfg = write_two(dir.path(), true);
    let data = dir.path().join("data");
    let relay = RelayProcess::start_net_only(
        &topo.relay,
        &["run", "--mode", "xdp", "--iface", RELAY_IN_IF, "--config", cfg.to_str().unwrap()],
        dir.path().join("relay.log"),
    );
    wait_for("both channels", Duration::from_secs(15), || {
        channel_stats(&data, "a").is_some() && channel_stats(&data, "b").is_some()
    });
    // a's process stops draining: its ring (4 MiB: ~52,000 records of this
    // size, 80 bytes each) overflows. Generic-mode semantics are the same;
    // native is used.
    let a_pid = channel_stats(&data, "a").unwrap()["pid"].as_u64().unwrap() as i32;
    // SAFETY: kill(2) on the channel process we started.
    unsafe { libc::kill(a_pid, libc::SIGSTOP) };
    // Twice what the ring holds of the smallest records.
    const A: u32 = relay_common::channel::RING_BYTES / 40;
    const B: u32 = 2_000;
    topo.sender
        .spawn(|| {
            let schema = example_schema();
            let s = UdpSocket::bind((SENDER_ADDR, 0)).unwrap();
            let b = example_datum(&schema, 7);
            for seq in 0..A {
                s.send_to(&example_datum(&schema, seq), (RELAY_IN_ADDR, 26000)).unwrap();
                if seq % 30 == 0 && seq / 30 < B {
                    s.send_to(&b, (RELAY_IN_ADDR, 26001)).unwrap();
                }
                if seq % 200 == 199 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
        .join()
        .unwrap();
    wait_for("b to take all of its datagrams", Duration::from_secs(10), || {
        channel_stats(&data, "b").is_some_and(|s| s["datagrams_in"] == B)
    });
    unsafe { libc::kill(a_pid, libc::SIGCONT) };
    let kernel = |ch: &str| -> serde_json::Value {
        std::fs::read(data.join(ch).join("xdp.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    };
    // Every datagram is accounted for: drained from the ring or counted as a ring drop.
    wait_for("a's accounting to add up", Duration::from_secs(20), || {
        let drained = channel_stats(&data, "a").and_then(|s| s["datagrams_in"].as_u64()).unwrap_or(0);
        let k = kernel("a");
        k["packets"] == A && drained + k["ring_drops"].as_u64().unwrap_or(0) == A as u64
    });
    let k = kernel("a");
    assert!(k["ring_drops"].as_u64().unwrap() > 0, "the ring should have overflowed: {k}");
    assert_eq!(k["forwarded"], A, "a full ring does not stop the full-rate relay: {k}");
    let kb = kernel("b");
    assert_eq!(kb["ring_drops"], 0, "another channel's ring is unaffected: {kb}");
    // The drops reach the control API's metrics too.
    let metrics = topo
        .relay
        .spawn(|| relay::api::client::request("127.0.0.1:8080".parse().unwrap(), "GET", "/metrics", None).unwrap().1)
        .join()
        .unwrap();
    let drops = k["ring_drops"].as_u64().unwrap();
    assert!(
        metrics.lines().any(|l| l.contains("ring_drops") && l.contains("channel=\"a\"") && l.ends_with(&format!(" {drops}"))),
        "ring drops ({drops}) not in /metrics:\n{metrics}"
    );
    let log = relay.stop();
    let records = channel_stats(&data, "a").unwrap()["records_written"].as_u64().unwrap();
    eprintln!("ring overflow: sent {A}, ring drops {}, archived {records}, forwarded {}; other channel: {B} sent, {} drops", k["ring_drops"], k["forwarded"], kb["ring_drops"]);
    assert_eq!(records + k["ring_drops"].as_u64().unwrap(), A as u64, "{log}");
}

/// Sources that send to a multicast group: the relay joins it on the input
/// interface (visible as a membership on rin0) and relays and archives every
/// datagram, in XDP mode (matched by group and port) and in socket mode.
fn multicast_input(mode: &str) {
    use integration_tests::datum::{example_datum, example_schema};
    use integration_tests::relay::{channel_stats, read_avro_independently, wait_for};
    use integration_tests::subscriber::Subscriber;

    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let topo = Topology::new();
    topo.sender.ip(&["route", "add", "224.0.0.0/4", "dev", SENDER_IF]);
    let dir = integration_tests::relay::tempdir();
    let _peer = Attached::new(&topo.subscriber, SUBSCRIBER_IF, "native");
    let cfg = scenario::write_config(dir.path(), "network:\n  egress_iface: \"rout0\"\n");
    scenario::set_input_group(&cfg, std::net::Ipv4Addr::new(239, 5, 5, 5));
    let data = dir.path().join("data");
    let full = Subscriber::start(&topo.subscriber, FULL, SUBSCRIBER_ADDR);
    let relay = RelayProcess::start_net_only(
        &topo.relay,
        &["run", "--mode", mode, "--iface", RELAY_IN_IF, "--api", "off", "--config", cfg.to_str().unwrap()],
        dir.path().join("relay.log"),
    );
    wait_for("the channel", Duration::from_secs(15), || channel_stats(&data, "example").is_some());
    let maddr = topo.relay.ip(&["maddr", "show", "dev", RELAY_IN_IF]);
    assert!(String::from_utf8_lossy(&maddr.stdout).contains("239.5.5.5"), "group not joined on rin0");

    const N: u32 = 2000;
    let schema = example_schema();
    let group = std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(239, 5, 5, 5), scenario::PORT);
    scenario::send_from_sender_to(&topo, group, (0..N).map(|seq| example_datum(&schema, seq)).collect());
    wait_for("every datagram", Duration::from_secs(15), || {
        channel_stats(&data, "example").is_some_and(|s| s["datagrams_in"] == N)
    });
    let log = relay.stop();
    let got = full.finish();
    assert_eq!(got.len() as u32, N, "full-rate datagrams ({mode}):\n{log}");
    assert_eq!(read_avro_independently(&data.join("example")).len() as u32, N);
    assert_eq!(channel_stats(&data, "example").unwrap()["input"], if mode == "xdp" { "xdp" } else { "socket" });
}

#[test]
fn multicast_input_xdp() {
    multicast_input("xdp");
}

#[test]
fn multicast_input_socket() {
    multicast_input("socket");
}

#[test]
fn the_kernel_counters_and_the_ring_are_final_at_stop() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    let _peer = Attached::new(&topo.subscriber, SUBSCRIBER_IF, "native");
    let (relay, data) = scenario::start_relay(&topo, dir.path(), &["--mode", "xdp", "--iface", RELAY_IN_IF]);
    let xdp_json = data.join("example/xdp.json");
    integration_tests::relay::wait_for("the first xdp.json", Duration::from_secs(10), || xdp_json.exists());
    // Counters are written once a second while running: stop well within
    // one, so only the write at stop can have these datagrams.
    let sent = scenario::datagrams()[..100].to_vec();
    scenario::send_from_sender(&topo, sent);
    relay.stop();
    let k: serde_json::Value = serde_json::from_slice(&std::fs::read(&xdp_json).unwrap()).unwrap();
    assert_eq!((k["packets"].as_u64(), k["forwarded"].as_u64()), (Some(100), Some(100)), "{k}");
    // The channel drains its ring every 20–50 ms; what arrived since the
    // last drain is drained at stop, not left behind in the ring.
    assert_eq!(integration_tests::relay::read_avro_independently(&data.join("example")).len(), 100);
}

/// Time windows (`interval_ms`) shorter than a drain period: in XDP mode a
/// datum waits in the ring for up to a drain period (25–50 ms), and the
/// windows must go by its arrival, not by the drain that read it (which would
/// give one window per drain).
#[test]
fn time_windows_shorter_than_a_drain_follow_arrival() {
    const WINDOW_MS: u64 = 20;
    const DATUMS: u32 = 1000;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    let _peer = Attached::new(&topo.subscriber, SUBSCRIBER_IF, "native");
    let deci = integration_tests::subscriber::Subscriber::start(&topo.subscriber, scenario::DECI, SUBSCRIBER_ADDR);
    let (relay, data) = scenario::start_relay_with(&topo, dir.path(), &["--mode", "xdp", "--iface", RELAY_IN_IF], |cfg| {
        let path = cfg.join("relay.yaml");
        let yaml = std::fs::read_to_string(&path).unwrap();
        let yaml = yaml.replace(&format!("factor: {}", scenario::FACTOR), &format!("interval_ms: {WINDOW_MS}"));
        std::fs::write(&path, yaml).unwrap();
    });

    // One datum a millisecond, paced by the clock (bounded: DATUMS sends).
    let schema = integration_tests::datum::example_schema();
    let datums: Vec<Vec<u8>> = (0..DATUMS).map(|s| integration_tests::datum::example_datum(&schema, s)).collect();
    let to = std::net::SocketAddrV4::new(RELAY_IN_ADDR, scenario::PORT);
    let took = topo
        .sender
        .spawn(move || {
            let s = UdpSocket::bind((SENDER_ADDR, 0)).unwrap();
            let start = std::time::Instant::now();
            for (i, d) in datums.iter().enumerate() {
                let due = start + Duration::from_millis(i as u64);
                std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
                s.send_to(d, to).unwrap();
            }
            start.elapsed()
        })
        .join()
        .unwrap();
    integration_tests::relay::wait_for("the channel to take every datum", Duration::from_secs(20), || {
        integration_tests::relay::channel_stats(&data, "example").is_some_and(|s| s["datagrams_in"] == u64::from(DATUMS))
    });
    let log = relay.stop();
    let got = deci.finish().len() as u64;
    // One datum per window that saw arrivals: took / WINDOW_MS and the
    // windows cut at either end (51 in 12 of 12 runs). Windows by drain
    // would give at most one per drain (every 25 or 50 ms: 20-40 here).
    let windows = took.as_millis() as u64 / WINDOW_MS + 1;
    eprintln!("{got} decimated datums in {WINDOW_MS} ms windows over {took:?} (about {windows} windows)");
    assert!(
        got * 10 >= windows * 9 && got <= windows + 2,
        "{got} decimated datums for {DATUMS} datums over {took:?} in {WINDOW_MS} ms windows (about {windows} expected)\n{log}"
    );
}
