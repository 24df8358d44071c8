//! XDP mode when the interfaces change under a running relay, and when the
//! supervisor itself is killed: nothing needs a restart by hand.
//!
//! - The input interface goes down and up (the program stays attached), then
//!   is deleted and created again (the kernel detaches the program; the
//!   supervisor re-attaches the pinned one, maps and rings included).
//! - The egress interface is deleted and created again (new index and MAC:
//!   the routes are rewritten).
//! - The supervisor gets SIGKILL: its channel processes die with it, the
//!   attachment stays pinned, and the next start takes it over, clears its
//!   stale routes and detaches it on a clean exit.
//! - A second supervisor for the same interface is refused, and the first
//!   goes on undisturbed.
//!
//! Every datagram is counted through the kernel's own counters: a channel
//! keeps its socket in XDP mode, so datums would reach the files even with the
//! program gone; only `forwarded` and the full-rate subscriber prove the
//! program handled them.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Mutex;
use std::time::Duration;

use integration_tests::datum::{example_datum, example_schema};
use integration_tests::relay::{channel_stats, process_state, read_avro_independently, wait_for, RelayProcess};
use integration_tests::scenario::{self, FULL};
use integration_tests::subscriber::Subscriber;
use integration_tests::topology::*;
use integration_tests::xdp::{xdp_attached, Attached};

/// One XDP topology at a time: the bursts share two cores.
static SERIAL: Mutex<()> = Mutex::new(());

const BATCH: u32 = 500;

/// Sends datums `seqs` from the sender host to the relay's `port`, paced.
fn send(topo: &Topology, port: u16, seqs: std::ops::Range<u32>) {
    let schema = example_schema();
    let to = SocketAddrV4::new(RELAY_IN_ADDR, port);
    scenario::send_from_sender_to(topo, to, seqs.map(|s| example_datum(&schema, s)).collect());
}

fn kernel_counters(data: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(data.join("example/xdp.json")).unwrap_or_default()).unwrap_or_default()
}

/// Sends the next batch and waits until the kernel forwarded and the channel
/// took all of it. `since` is `next` when the channel was installed (its
/// kernel counters start there) and when its process last started.
fn batch_through_xdp(topo: &Topology, data: &std::path::Path, next: &mut u32, since: u32) {
    batch_to_port(topo, data, scenario::PORT, next, since);
}

/// [`batch_through_xdp`] to the channel on `port`.
fn batch_to_port(topo: &Topology, data: &std::path::Path, port: u16, next: &mut u32, since: u32) {
    send(topo, port, *next..*next + BATCH);
    *next += BATCH;
    let want = u64::from(*next - since);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (k, s) = (kernel_counters(data), channel_stats(data, "example").unwrap_or_default());
        if k["forwarded"] == want && s["datagrams_in"] == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited 20 s for {want} datagrams forwarded by the program and taken by the channel:\nkernel {k}\nchannel {s}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_log(relay: &RelayProcess, needle: &str) {
    wait_for(&format!("{needle:?} in the relay log"), Duration::from_secs(10), || relay.log_text().contains(needle));
}

#[test]
fn input_interface_down_up_deleted_and_recreated_keeps_relaying_through_xdp() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    let _peer = Attached::new(&topo.subscriber, SUBSCRIBER_IF, "native");
    let full = Subscriber::start(&topo.subscriber, FULL, SUBSCRIBER_ADDR);
    let (relay, data) = scenario::start_relay(&topo, dir.path(), &["--mode", "xdp", "--iface", RELAY_IN_IF]);
    let mut next = 0;
    batch_through_xdp(&topo, &data, &mut next, 0);

    topo.relay.ip(&["link", "set", RELAY_IN_IF, "down"]);
    wait_log(&relay, "interface rin0 is down");
    topo.relay.ip(&["link", "set", RELAY_IN_IF, "up"]);
    wait_log(&relay, "interface rin0 is up again");
    assert!(xdp_attached(&topo.relay, RELAY_IN_IF), "down/up must not detach");
    batch_through_xdp(&topo, &data, &mut next, 0);

    // Deleting one end of a veth deletes both.
    topo.relay.ip(&["link", "del", RELAY_IN_IF]);
    wait_log(&relay, "interface rin0 disappeared");
    topo.link_sender();
    wait_log(&relay, "re-attached XDP to rin0");
    assert!(xdp_attached(&topo.relay, RELAY_IN_IF), "the program must be on the new rin0");
    batch_through_xdp(&topo, &data, &mut next, 0);

    let log = relay.stop();
    let got = full.finish();
    assert_eq!(got.len() as u32, next, "full-rate datagrams; log:\n{log}");
    let records = read_avro_independently(&data.join("example"));
    assert_eq!(records.len() as u32, next, "archived records; log:\n{log}");
    let stats = channel_stats(&data, "example").unwrap();
    assert_eq!(stats["lost"], 0);
    assert_eq!(kernel_counters(&data)["ring_drops"], 0);
    assert!(!log.contains("panicked"), "{log}");
    assert!(!xdp_attached(&topo.relay, RELAY_IN_IF), "detached on exit");
    assert!(!topo.relay.pin_dir(RELAY_IN_IF).exists(), "pins left behind");
}

#[test]
fn egress_interface_recreated_gets_its_routes_rewritten() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    let (relay, data) = scenario::start_relay(&topo, dir.path(), &["--mode", "xdp", "--iface", RELAY_IN_IF]);
    let mut next = 0;
    {
        let _peer = Attached::new(&topo.subscriber, SUBSCRIBER_IF, "native");
        let full = Subscriber::start(&topo.subscriber, FULL, SUBSCRIBER_ADDR);
        batch_through_xdp(&topo, &data, &mut next, 0);
        assert_eq!(full.finish().len() as u32, next);
    }

    topo.relay.ip(&["link", "del", RELAY_OUT_IF]);
    wait_log(&relay, "egress interface rout0 disappeared");
    topo.link_subscriber();
    wait_log(&relay, "channels forwarding through rout0 use its new index");

    let _peer = Attached::new(&topo.subscriber, SUBSCRIBER_IF, "native");
    let full = Subscriber::start(&topo.subscriber, FULL, SUBSCRIBER_ADDR);
    batch_through_xdp(&topo, &data, &mut next, 0);
    let log = relay.stop();
    assert_eq!(full.finish().len() as u32, BATCH, "full-rate datagrams after the egress came back; log:\n{log}");
    assert_eq!(read_avro_independently(&data.join("example")).len() as u32, next);
}

/// The child processes of `pid` (from /proc).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Starts the relay in XDP mode, relays one batch and kills the supervisor
/// with SIGKILL. Returns the data directory, the next datum's number and the
/// channel processes the supervisor had.
fn one_batch_then_sigkill(topo: &Topology, dir: &std::path::Path) -> (std::path::PathBuf, u32, Vec<u32>) {
    let (relay, data) = scenario::start_relay(topo, dir, &["--mode", "xdp", "--iface", RELAY_IN_IF]);
    let mut next = 0;
    batch_through_xdp(topo, &data, &mut next, 0);
    let kids = children(relay.pid());
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(relay.pid() as i32, libc::SIGKILL) };
    drop(relay);
    (data, next, kids)
}

#[test]
fn supervisor_sigkill_leaves_no_child_and_the_next_start_takes_over() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    let _peer = Attached::new(&topo.subscriber, SUBSCRIBER_IF, "native");
    let (data, mut next, kids) = one_batch_then_sigkill(&topo, dir.path());
    assert!(!kids.is_empty(), "the supervisor runs a channel process");
    wait_for("the channel processes to die with the supervisor", Duration::from_secs(10), || {
        kids.iter().all(|&k| process_state(k).is_none_or(|s| s == 'Z'))
    });
    assert!(topo.relay.pin_dir(RELAY_IN_IF).exists(), "SIGKILL leaves the attachment pinned");
    assert!(xdp_attached(&topo.relay, RELAY_IN_IF));

    // The channel moved to another port: the next start takes the attachment
    // over and clears the old port's route. (The old run's stats.json is
    // still there: wait for the new channel.)
    const NEW_PORT: u16 = scenario::PORT + 1;
    let (relay, _) = scenario::start_relay_with(&topo, dir.path(), &["--mode", "xdp", "--iface", RELAY_IN_IF], |cfg| {
        scenario::set_port(cfg, NEW_PORT)
    });
    wait_log(&relay, "channel example: started");
    wait_log(&relay, "taking it over");
    wait_log(&relay, "removed 1 stale XDP route(s) on rin0");
    // The old port is no channel's now: the program passes it to the stack,
    // which has no socket there. A stale route would forward it, counted on
    // the slot the new channel took over.
    // (Unconnected: the stack answers with port-unreachable, which would fail
    // a connected socket's next send.)
    let stale = (next..next + BATCH).map(|s| example_datum(&example_schema(), s)).collect::<Vec<_>>();
    topo.sender
        .spawn(move || {
            let s = std::net::UdpSocket::bind((SENDER_ADDR, 0)).unwrap();
            for d in &stale {
                s.send_to(d, (RELAY_IN_ADDR, scenario::PORT)).unwrap();
            }
        })
        .join()
        .unwrap();
    next += BATCH;
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(kernel_counters(&data)["forwarded"], 0, "datagrams to the old port were forwarded");
    let lost_to_old_port = BATCH;
    batch_to_port(&topo, &data, NEW_PORT, &mut next, 2 * BATCH);
    let log = relay.stop();
    assert!(log.contains("input mode: XDP (taken over) on rin0"), "{log}");
    assert!(!xdp_attached(&topo.relay, RELAY_IN_IF), "the taken-over attachment is detached on exit");
    assert!(!topo.relay.pin_dir(RELAY_IN_IF).exists(), "pins left behind");
    // Every datum to a channel once: the journal covers what the killed channel held.
    assert_eq!(read_avro_independently(&data.join("example")).len() as u32, next - lost_to_old_port, "{log}");
}

/// A second supervisor started for an interface a live one runs XDP on
/// (another config, say) must not take the attachment over: it would clear
/// the first one's routes. It exits with the reason, touching nothing, and
/// the first goes on relaying and detaches on its own exit.
#[test]
fn a_second_supervisor_on_the_same_interface_is_refused() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let topo = Topology::new();
    let (dir, other) = (integration_tests::relay::tempdir(), integration_tests::relay::tempdir());
    let _peer = Attached::new(&topo.subscriber, SUBSCRIBER_IF, "native");
    let (relay, data) = scenario::start_relay(&topo, dir.path(), &["--mode", "xdp", "--iface", RELAY_IN_IF]);
    let mut next = 0;
    batch_through_xdp(&topo, &data, &mut next, 0);

    let cfg = scenario::write_config(other.path(), "network:\n  egress_iface: \"rout0\"\n");
    let bin = integration_tests::relay::binary();
    let args = ["20", bin.to_str().unwrap(), "run", "--api", "off", "--config", cfg.to_str().unwrap(), "--mode", "xdp", "--iface", RELAY_IN_IF];
    // Bounded: a second supervisor that started would run until `timeout` stops it.
    let out = topo.relay.output_net_only(std::path::Path::new("timeout"), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "the second supervisor did not exit with an error:\n{stderr}");
    let want = format!("another speeddata-xdp supervisor (pid {}) runs XDP on {RELAY_IN_IF}; stop it first", relay.pid());
    assert!(stderr.contains(&want), "{stderr}");
    assert!(channel_stats(&other.path().join("data"), "example").is_none(), "the second supervisor started a channel");

    // The first one's route, rings and attachment are intact.
    batch_through_xdp(&topo, &data, &mut next, 0);
    let log = relay.stop();
    assert!(!xdp_attached(&topo.relay, RELAY_IN_IF), "detached on exit");
    assert!(!topo.relay.pin_dir(RELAY_IN_IF).exists(), "pins left behind");
    assert_eq!(read_avro_independently(&data.join("example")).len() as u32, next, "{log}");
}

/// An attachment left pinned by another build of the relay (an upgrade while
/// attached: its maps may have another layout, as the rings did) is not
/// reused: the next start detaches it and attaches its own program.
#[test]
fn an_attachment_left_by_another_build_is_replaced() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    let _peer = Attached::new(&topo.subscriber, SUBSCRIBER_IF, "native");
    let (data, mut next, _) = one_batch_then_sigkill(&topo, dir.path());
    let pins = topo.relay.pin_dir(RELAY_IN_IF);
    assert!(xdp_attached(&topo.relay, RELAY_IN_IF), "SIGKILL leaves the attachment");

    // Make the pinned attachment another build's.
    let build = aya::maps::MapData::from_pin(pins.join("build")).expect("the attachment records its build");
    let mut build: aya::maps::Array<_, u64> = aya::maps::Array::try_from(aya::maps::Map::Array(build)).unwrap();
    build.set(0, build.get(&0, 0).unwrap() ^ 1, 0).unwrap();
    drop(build);
    let prog_before = std::fs::metadata(pins.join("prog")).unwrap();

    let (relay, _) = scenario::start_relay(&topo, dir.path(), &["--mode", "xdp", "--iface", RELAY_IN_IF]);
    wait_log(&relay, "channel example: started");
    wait_log(&relay, "made by another build of speeddata-xdp");
    let new_prog = std::fs::metadata(pins.join("prog")).unwrap();
    assert_ne!(
        std::os::unix::fs::MetadataExt::ino(&new_prog),
        std::os::unix::fs::MetadataExt::ino(&prog_before),
        "the program was pinned anew"
    );
    // The program attached now forwards (its counters start from zero).
    batch_through_xdp(&topo, &data, &mut next, BATCH);
    let log = relay.stop();
    assert!(log.contains("input mode: XDP (native) on rin0"), "{log}");
    assert!(!log.contains("taking it over"), "{log}");
    assert!(!pins.exists(), "pins left behind");
    assert_eq!(read_avro_independently(&data.join("example")).len() as u32, next, "{log}");
}

/// A channel with `input_group`, in socket mode: the group membership goes
/// with the deleted interface, and without a new join the stack drops the
/// group's datagrams. The supervisor joins again on the re-created one.
#[test]
fn input_group_is_joined_again_on_a_recreated_interface() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const GROUP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 5, 5, 5), scenario::PORT);
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    let cfg = scenario::write_config(dir.path(), "network:\n  egress_iface: \"rout0\"\n");
    scenario::set_input_group(&cfg, *GROUP.ip());
    let data = dir.path().join("data");
    let relay = RelayProcess::start_net_only(
        &topo.relay,
        &["run", "--mode", "socket", "--iface", RELAY_IN_IF, "--api", "off", "--config", cfg.to_str().unwrap()],
        dir.path().join("relay.log"),
    );
    wait_log(&relay, "channel example: started");
    let joined =
        || String::from_utf8_lossy(&topo.relay.ip(&["maddr", "show", "dev", RELAY_IN_IF]).stdout).contains(&GROUP.ip().to_string());
    let send_to_group = |seqs: std::ops::Range<u32>| {
        topo.sender.ip(&["route", "replace", "224.0.0.0/4", "dev", SENDER_IF]);
        let schema = example_schema();
        scenario::send_from_sender_to(&topo, GROUP, seqs.map(|s| example_datum(&schema, s)).collect());
    };
    let taken = |n: u64| {
        let data = data.clone();
        move || channel_stats(&data, "example").is_some_and(|s| s["datagrams_in"] == n)
    };
    wait_for("the group joined on rin0", Duration::from_secs(5), joined);
    send_to_group(0..BATCH);
    wait_for("the first batch", Duration::from_secs(10), taken(u64::from(BATCH)));

    topo.relay.ip(&["link", "del", RELAY_IN_IF]);
    topo.link_sender();
    wait_log(&relay, "joined 1 input group(s) again on rin0");
    assert!(joined(), "the group must be joined on the new rin0");
    send_to_group(BATCH..2 * BATCH);
    wait_for("the second batch", Duration::from_secs(10), taken(u64::from(2 * BATCH)));
    let log = relay.stop();
    assert_eq!(read_avro_independently(&data.join("example")).len() as u32, 2 * BATCH, "{log}");
}
