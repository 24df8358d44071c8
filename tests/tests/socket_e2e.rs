//! Socket mode end to end (see `integration_tests::scenario` for what is
//! checked), and a config that is refused before anything starts.

use integration_tests::scenario;
use integration_tests::topology::Topology;

#[test]
fn socket_mode_relays_decimates_archives_and_quarantines() {
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    let data = dir.path().join("data");
    let o = scenario::run(&topo, dir.path(), &["--mode", "socket"], || {
        // The gather before a receive sleeps 50 µs, not 50 µs plus the
        // default 50 µs of timer slack (shell.rs, SOCKET_TIMER_SLACK_NS).
        let pid = integration_tests::relay::channel_stats(&data, "example").unwrap()["pid"].as_u64().unwrap();
        let slack = std::fs::read_to_string(format!("/proc/{pid}/timerslack_ns")).unwrap();
        assert_eq!(slack.trim(), "1000", "the socket-mode channel's timer slack");
    });
    scenario::check(&o);
    // In socket mode the channel process itself re-publishes every datagram.
    assert_eq!(o.stats["input"], "socket");
    assert_eq!(o.stats["full_rate_out"], o.sent.len() as u64);
}

/// Decimated datums wait for a batch of them, or 10 ms (`DECIMATED_DELAY`
/// in shell.rs), not for the channel's next timer: a trickle of one
/// decimated datum at a time still goes out at once. (Blocks are flushed
/// every 5 s here, so the next timer otherwise is the stats, once a second.)
#[test]
fn a_trickle_of_decimated_datums_goes_out_within_its_delay() {
    use integration_tests::subscriber::Subscriber;
    use integration_tests::topology::SUBSCRIBER_ADDR;
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    let deci = Subscriber::start(&topo.subscriber, scenario::DECI, SUBSCRIBER_ADDR);
    let (relay, _data) = scenario::start_relay_with(&topo, dir.path(), &["--mode", "socket"], |cfg| {
        let global = cfg.join("global.yaml");
        let text = std::fs::read_to_string(&global).unwrap().replace("storage:\n", "storage:\n  flush_interval_ms: 5000\n");
        std::fs::write(&global, text).unwrap();
    });
    let schema = integration_tests::datum::example_schema();
    // Three rounds, so that a send that happens to fall just before a
    // stats tick cannot pass for the delay.
    for round in 0..3u32 {
        let datums = (0..scenario::FACTOR).map(|i| integration_tests::datum::example_datum(&schema, round * scenario::FACTOR + i)).collect();
        scenario::send_from_sender(&topo, datums);
        let sent = std::time::Instant::now();
        let want = round as usize + 1;
        while deci.received() < want && sent.elapsed() < std::time::Duration::from_secs(2) {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let took = sent.elapsed();
        assert_eq!(deci.received(), want, "round {round}: the decimated datum did not arrive");
        assert!(took < std::time::Duration::from_millis(300), "round {round}: the decimated datum took {took:?}");
    }
    relay.stop();
    assert_eq!(deci.finish().len(), 3);
}

#[test]
fn auto_mode_without_privileges_falls_back_to_sockets() {
    use integration_tests::relay::RelayProcess;
    const NOBODY: u32 = 65534;
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    // The unprivileged relay writes its archive where that user may.
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::os::unix::fs::chown(dir.path().join("data"), Some(NOBODY), Some(NOBODY)).unwrap();
    let o = scenario::run_with(
        &topo,
        dir.path(),
        |ns, args, log| RelayProcess::start_unprivileged(ns, args, log, NOBODY),
        &["--mode", "auto", "--iface", "rin0", "--api", "off"],
        || {},
    );
    assert!(
        o.log.contains("input mode: socket, because not running as root"),
        "auto mode must say why it fell back:\n{}",
        o.log
    );
    scenario::check(&o);
    assert_eq!(o.stats["input"], "socket");
}

#[test]
fn invalid_config_is_refused_before_anything_starts() {
    let dir = integration_tests::relay::tempdir();
    let cfg = scenario::write_config(dir.path(), "");
    let relay_yaml = cfg.join("relay.yaml");
    let text = std::fs::read_to_string(&relay_yaml).unwrap().replace("port: 26000", "port: 70000");
    std::fs::write(&relay_yaml, text).unwrap();
    let out = std::process::Command::new(integration_tests::relay::binary())
        .args(["run", "--mode", "socket", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("relay.yaml") && err.contains("channels[0].port") && err.contains("70000"), "{err}");
    assert!(!dir.path().join("data").exists(), "nothing may start on an invalid config");
}

/// A host with no route for the groups (no default route, no
/// `network.egress_iface`): the channel cannot open its sending sockets, and
/// the error says what to configure, not only "Network is unreachable".
#[test]
fn a_group_without_a_route_is_reported_with_the_fix() {
    use integration_tests::relay::{wait_for, RelayProcess};
    let host = integration_tests::netns::Netns::new("nrt");
    host.ip(&["link", "set", "lo", "up"]);
    let dir = integration_tests::relay::tempdir();
    let cfg = scenario::write_config(dir.path(), "");
    let args = ["run", "--api", "off", "--mode", "socket", "--config", cfg.to_str().unwrap()];
    let relay = RelayProcess::start_net_only(&host, &args, dir.path().join("relay.log"));
    let want = "socket to 239.1.1.1:6000 (no route to the group: set network.egress_iface in global.yaml, or add a route for 224.0.0.0/4)";
    wait_for("the channel's error in the log", std::time::Duration::from_secs(10), || relay.log_text().contains(want));
    // Fixed while it runs: the supervisor's next restart of the channel works.
    host.ip(&["route", "add", "224.0.0.0/4", "dev", "lo"]);
    let data = dir.path().join("data");
    wait_for("the channel to run", std::time::Duration::from_secs(30), || {
        integration_tests::relay::channel_stats(&data, "example").is_some()
    });
    let log = relay.stop();
    assert!(log.contains("Network is unreachable"), "{log}");
}
