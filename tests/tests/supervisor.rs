//! The supervisor: restarts a killed channel while others lose nothing,
//! applies SIGHUP reloads, and leaves no child behind when it is killed; and
//! a channel held up (stopped) reads its whole backlog when it resumes.
//! Each test runs the relay in a namespace of its own (socket mode, loopback).

use std::path::{Path, PathBuf};
use std::time::Duration;

use integration_tests::datum::send_to_loopback;
use integration_tests::netns::loopback_host;
use integration_tests::relay::{channel_stats, example_schema_path, process_state, read_avro_independently, wait_for, RelayProcess};

fn write_config(root: &Path, channels: &[(&str, u16)]) -> PathBuf {
    let mut y = String::from("channels:\n");
    for (name, port) in channels {
        y += &format!("  - name: {name}\n    port: {port}\n    schema: {}\n", example_schema_path().display());
    }
    y += "decimation:\n  enabled: true\n  factor: 1\n  algorithm: downsample\n";
    y += &format!("storage:\n  avro_path: {}\n", root.join("data").display());
    let f = root.join("relay.yaml");
    std::fs::write(&f, y).unwrap();
    f
}

fn pid_of(data: &Path, ch: &str) -> Option<u32> {
    channel_stats(data, ch).and_then(|s| s["pid"].as_u64()).map(|p| p as u32)
}

/// Running (not gone, not a zombie waiting to be reaped).
fn alive(pid: u32) -> bool {
    process_state(pid).is_some_and(|s| s != 'Z')
}

#[test]
fn killed_channel_restarts_and_the_others_lose_nothing() {
    let ns = loopback_host("sup");
    let dir = integration_tests::relay::tempdir();
    let cfg = write_config(dir.path(), &[("a", 26000), ("b", 26001)]);
    let data = dir.path().join("data");
    let relay = RelayProcess::start(&ns, &["run", "--mode", "socket", "--config", cfg.to_str().unwrap()], dir.path().join("log"));
    wait_for("both channels", Duration::from_secs(10), || pid_of(&data, "a").is_some() && pid_of(&data, "b").is_some());
    let first = pid_of(&data, "a").unwrap();

    send_to_loopback(&ns, 26000, 0..1000, 50);
    wait_for("a to take 1000", Duration::from_secs(10), || channel_stats(&data, "a").is_some_and(|s| s["datagrams_in"] == 1000));
    // Let a block reach the disk, then kill -9 mid-run while b keeps receiving.
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on the channel child we started.
    unsafe { libc::kill(first as i32, libc::SIGKILL) };
    wait_for("a to die", Duration::from_secs(5), || !alive(first));
    // While a is down: its datagrams wait in the socket the supervisor holds.
    send_to_loopback(&ns, 26000, 1000..1500, 50);
    send_to_loopback(&ns, 26001, 0..3000, 50);
    wait_for("a to be restarted", Duration::from_secs(10), || pid_of(&data, "a").is_some_and(|p| p != first));
    wait_for("b to take all 3000", Duration::from_secs(10), || channel_stats(&data, "b").is_some_and(|s| s["datagrams_in"] == 3000));
    wait_for("restarted a to take the 500 sent while it was down", Duration::from_secs(10), || {
        channel_stats(&data, "a").is_some_and(|s| s["datagrams_in"] == 500)
    });
    let log = relay.stop();
    assert!(log.contains("channel a: exited") && log.contains("restarting in 250 ms"), "{log}");

    // Every file a left behind is readable; the killed process lost nothing it had flushed.
    let a = read_avro_independently(&data.join("a"));
    assert_eq!(a.len(), 1500, "all flushed records of a, before and after the kill");
    let b = read_avro_independently(&data.join("b"));
    assert_eq!(b.len(), 3000);
}

/// More datagrams wait than one wake-up reads (16 batches of 64), and none
/// arrive after them: the channel still reads them all. Its `epoll` is
/// edge-triggered, so nothing would wake it for the rest.
#[test]
fn a_backlog_larger_than_one_wake_up_is_read_to_the_end() {
    let ns = loopback_host("blg");
    let dir = integration_tests::relay::tempdir();
    let cfg = write_config(dir.path(), &[("a", 26000)]);
    let data = dir.path().join("data");
    let relay = RelayProcess::start(&ns, &["run", "--mode", "socket", "--config", cfg.to_str().unwrap()], dir.path().join("log"));
    wait_for("the channel", Duration::from_secs(10), || pid_of(&data, "a").is_some());
    let pid = pid_of(&data, "a").unwrap() as i32;
    // SAFETY: kill(2) on the channel child the relay started; SIGCONT follows.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    wait_for("the channel to stop", Duration::from_secs(5), || process_state(pid as u32) == Some('T'));
    send_to_loopback(&ns, 26000, 0..3000, 3000);
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    wait_for("all 3000 taken", Duration::from_secs(10), || channel_stats(&data, "a").is_some_and(|s| s["datagrams_in"] == 3000));
    let log = relay.stop();
    assert!(!log.contains("channel a: exited"), "the channel must not have restarted:\n{log}");
    assert_eq!(read_avro_independently(&data.join("a")).len(), 3000);
}

#[test]
fn sighup_adds_removes_and_restarts_only_changed_channels() {
    let ns = loopback_host("hup");
    let dir = integration_tests::relay::tempdir();
    let cfg = write_config(dir.path(), &[("a", 26000), ("b", 26001), ("c", 26002)]);
    let data = dir.path().join("data");
    let relay = RelayProcess::start(&ns, &["run", "--mode", "socket", "--config", cfg.to_str().unwrap()], dir.path().join("log"));
    wait_for("three channels", Duration::from_secs(10), || ["a", "b", "c"].iter().all(|c| pid_of(&data, c).is_some()));
    let (pa, pb, pc) = (pid_of(&data, "a").unwrap(), pid_of(&data, "b").unwrap(), pid_of(&data, "c").unwrap());
    send_to_loopback(&ns, 26000, 0..200, 50);
    wait_for("a to take 200", Duration::from_secs(10), || channel_stats(&data, "a").is_some_and(|s| s["datagrams_in"] == 200));

    // An invalid config on SIGHUP: reported, and the running one stays.
    std::fs::write(&cfg, "channels: [").unwrap();
    // SAFETY: kill(2) on our relay.
    unsafe { libc::kill(relay.pid() as i32, libc::SIGHUP) };
    wait_for("the invalid reload to be reported", Duration::from_secs(5), || relay.log_text().contains("keeping the running one"));
    assert!(alive(pa) && alive(pb) && alive(pc));

    // a removed, b unchanged, c moved to another port, d added.
    write_config(dir.path(), &[("b", 26001), ("c", 26012), ("d", 26003)]);
    unsafe { libc::kill(relay.pid() as i32, libc::SIGHUP) };
    wait_for("d to start", Duration::from_secs(10), || pid_of(&data, "d").is_some());
    wait_for("c to restart", Duration::from_secs(10), || pid_of(&data, "c").is_some_and(|p| p != pc));
    wait_for("a to stop", Duration::from_secs(10), || !alive(pa));
    assert!(alive(pb), "an unchanged channel must not be touched");
    assert_eq!(pid_of(&data, "b"), Some(pb));
    // The removed channel closed its file valid, with everything it received.
    assert_eq!(read_avro_independently(&data.join("a")).len(), 200);
    send_to_loopback(&ns, 26012, 0..100, 50);
    wait_for("c on its new port", Duration::from_secs(10), || channel_stats(&data, "c").is_some_and(|s| s["datagrams_in"] == 100));
    relay.stop();
}

#[test]
fn killing_the_supervisor_leaves_no_child() {
    let ns = loopback_host("orph");
    let dir = integration_tests::relay::tempdir();
    let cfg = write_config(dir.path(), &[("a", 26000), ("b", 26001)]);
    let data = dir.path().join("data");
    let relay = RelayProcess::start(&ns, &["run", "--mode", "socket", "--config", cfg.to_str().unwrap()], dir.path().join("log"));
    wait_for("both channels", Duration::from_secs(10), || pid_of(&data, "a").is_some() && pid_of(&data, "b").is_some());
    send_to_loopback(&ns, 26000, 0..300, 50);
    wait_for("a to take 300", Duration::from_secs(10), || channel_stats(&data, "a").is_some_and(|s| s["datagrams_in"] == 300));
    let children = [pid_of(&data, "a").unwrap(), pid_of(&data, "b").unwrap()];
    // Started as root, the channels run unprivileged (as nobody by default).
    for pid in children {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(uid.split_whitespace().skip(1).all(|u| u == "65534"), "channel {pid} runs as {uid}");
    }
    // SAFETY: kill(2) on our relay.
    unsafe { libc::kill(relay.pid() as i32, libc::SIGKILL) };
    wait_for("the children to exit", Duration::from_secs(10), || children.iter().all(|p| !alive(*p)));
    // They were told (SIGTERM), so they closed their files valid.
    assert_eq!(read_avro_independently(&data.join("a")).len(), 300);
    drop(relay);
}
