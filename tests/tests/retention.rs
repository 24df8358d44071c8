//! Retention through the real relay: `ttl` deletes rotated files as they age,
//! a store-wide `quota` keeps all channels together under the value; neither
//! touches the file being written or a file the relay did not write.

use std::path::Path;
use std::time::Duration;

use integration_tests::datum::send_to_loopback;
use integration_tests::netns::loopback_host;
use integration_tests::relay::{channel_stats, example_schema_path, read_avro_independently, tempdir, wait_for, RelayProcess};

fn config(root: &Path, channels: &[(&str, u16)], retention: &str) -> std::path::PathBuf {
    let mut y = String::from("channels:\n");
    for (name, port) in channels {
        y += &format!("  - name: {name}\n    port: {port}\n    schema: {}\n", example_schema_path().display());
    }
    y += &format!("rotation:\n  mode: size\n  threshold: 20000\nretention:\n{retention}\nstorage:\n  avro_path: {}\n  flush_bytes: 4096\n", root.join("data").display());
    let f = root.join("relay.yaml");
    std::fs::write(&f, y).unwrap();
    f
}

fn avro_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "avro"))
        .collect();
    v.sort();
    v
}

#[test]
fn ttl_deletes_aged_rotated_files_only() {
    let ns = loopback_host("ttl");
    let dir = tempdir();
    let cfg = config(dir.path(), &[("ch", 26000)], "  mode: ttl\n  value: 1");
    let data = dir.path().join("data");
    let relay = RelayProcess::start(&ns, &["run", "--mode", "socket", "--api", "off", "--config", cfg.to_str().unwrap()], dir.path().join("log"));
    wait_for("the channel", Duration::from_secs(10), || channel_stats(&data, "ch").is_some());
    let foreign = data.join("ch/notes.avro");
    std::fs::write(&foreign, b"not ours").unwrap();
    // Rotating every ~330 datums.
    // ~3 s of data at 1 ms a datum.
    send_to_loopback(&ns, 26000, 0..3000, 1);
    wait_for("every datum written", Duration::from_secs(15), || {
        channel_stats(&data, "ch").is_some_and(|s| s["records_written"] == 3000)
    });
    wait_for("aged files deleted", Duration::from_secs(10), || {
        channel_stats(&data, "ch").is_some_and(|s| s["retention_deleted_files"].as_u64().unwrap_or(0) > 3)
    });
    relay.stop();
    let s = channel_stats(&data, "ch").unwrap();
    let left = avro_files(&data.join("ch"));
    assert!(foreign.exists(), "a file the relay did not write is never deleted");
    assert_eq!(
        left.len() as u64 - 1 + s["retention_deleted_files"].as_u64().unwrap(),
        s["files_opened"].as_u64().unwrap(),
        "every file opened is either deleted or still there: {s}"
    );
    std::fs::remove_file(&foreign).unwrap();
    let kept = read_avro_independently(&data.join("ch"));
    assert!(!kept.is_empty() && kept.len() < 3000, "{} records kept", kept.len());
}

#[test]
fn store_quota_keeps_all_channels_under_the_value() {
    const QUOTA: u64 = 100_000;
    let ns = loopback_host("quota");
    let dir = tempdir();
    let cfg = config(dir.path(), &[("a", 26000), ("b", 26001)], &format!("  mode: quota\n  value: {QUOTA}\n  scope: store"));
    let data = dir.path().join("data");
    let relay = RelayProcess::start(&ns, &["run", "--mode", "socket", "--api", "off", "--config", cfg.to_str().unwrap()], dir.path().join("log"));
    wait_for("the channels", Duration::from_secs(10), || channel_stats(&data, "a").is_some() && channel_stats(&data, "b").is_some());
    send_to_loopback(&ns, 26000, 0..3000, 50);
    send_to_loopback(&ns, 26001, 0..3000, 50);
    let total = || -> u64 {
        ["a", "b"].iter().flat_map(|c| avro_files(&data.join(c))).map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum()
    };
    wait_for("everything written", Duration::from_secs(15), || {
        ["a", "b"].iter().all(|c| channel_stats(&data, c).is_some_and(|s| s["records_written"] == 3000))
    });
    // About 360 KB written in all; the supervisor trims to the quota.
    wait_for("the store under its quota", Duration::from_secs(10), || total() <= QUOTA);
    relay.stop();
    assert!(total() <= QUOTA + 2 * 20_000, "after the last flushes: {}", total());
    for c in ["a", "b"] {
        assert!(!avro_files(&data.join(c)).is_empty(), "channel {c} keeps its newest file");
        read_avro_independently(&data.join(c));
    }
}
