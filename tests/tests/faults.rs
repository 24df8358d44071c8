//! Faults the relay must ride out without losing anything: a full disk (a
//! small tmpfs) and an archive directory that becomes unwritable. The
//! full-rate relay goes on, the errors are counted and reported, and writing
//! resumes by itself when the fault goes away.

use std::path::{Path, PathBuf};
use std::time::Duration;

use integration_tests::datum::{example_json, send_to_loopback};
use integration_tests::netns::{loopback_host, run};
use integration_tests::relay::{channel_stats, example_schema_path, read_avro_independently, tempdir, wait_for, RelayProcess};

/// A tmpfs mounted for the test, unmounted on drop (also on failure).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        run(std::process::Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"]).arg(path));
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn config(root: &Path, data: &Path) -> PathBuf {
    let f = root.join("relay.yaml");
    std::fs::write(
        &f,
        format!(
            "channels:\n  - name: ch\n    port: 26000\n    schema: {}\nrotation:\n  mode: size\n  threshold: 40000\n\
             storage:\n  avro_path: {}\n  flush_bytes: 4096\n",
            example_schema_path().display(),
            data.display()
        ),
    )
    .unwrap();
    f
}

/// Bytes free on the filesystem holding `path`.
fn available(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs fills the struct for a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    st.f_bavail * st.f_frsize
}

fn stat(data: &Path, key: &str) -> u64 {
    channel_stats(data, "ch").and_then(|s| s[key].as_u64()).unwrap_or(0)
}

/// A relay (socket mode) whose archive is on a `size` tmpfs filled to ~60 KB
/// free: room for the first files, not for much more. Returns what must live
/// as long as the test, the data directory and the filler to delete when
/// space should return.
struct FullDisk {
    relay: RelayProcess,
    data: PathBuf,
    filler: PathBuf,
    ns: integration_tests::netns::Netns,
    // Dropped in this order: unmounted, then the directory removed.
    _fs: Tmpfs,
    _dir: tempfile::TempDir,
}

fn full_disk(role: &str, size: &str) -> FullDisk {
    let ns = loopback_host(role);
    let dir = tempdir();
    let data = dir.path().join("data");
    let fs = Tmpfs::mount(&data, size);
    let cfg = config(dir.path(), &data);
    let relay = RelayProcess::start(&ns, &["run", "--mode", "socket", "--api", "off", "--config", cfg.to_str().unwrap()], dir.path().join("log"));
    wait_for("the channel", Duration::from_secs(10), || channel_stats(&data, "ch").is_some());
    let filler = data.join("filler");
    std::fs::write(&filler, vec![0u8; (available(&data) - 60 * 1024) as usize]).unwrap();
    FullDisk { relay, data, filler, ns, _fs: fs, _dir: dir }
}

#[test]
fn full_disk_keeps_relaying_and_resumes_writing_when_space_returns() {
    const N: u32 = 4000; // ~240 KB of datums
    let disk = full_disk("full", "1m");
    // Partial moves: the tmpfs and the directory go when `disk` does, in that order.
    let (relay, data, filler, ns) = (disk.relay, &disk.data, &disk.filler, &disk.ns);

    send_to_loopback(&ns, 26000, 0..N, 50);
    wait_for("every datagram in", Duration::from_secs(20), || stat(&data, "datagrams_in") == N as u64);
    wait_for("the disk to fill up", Duration::from_secs(10), || stat(&data, "archive_errors") > 0);
    let s = channel_stats(&data, "ch").unwrap();
    assert_eq!(s["full_rate_out"], N, "the full-rate relay goes on with a full disk: {s}");
    assert!(s["records_written"].as_u64().unwrap() < N as u64, "{s}");
    assert!(s["last_error"].as_str().unwrap().contains("No space left"), "{s}");
    assert_eq!(s["lost"], 0, "datums wait in memory while the disk is full: {s}");
    eprintln!("disk full: {N} sent, {} relayed at full rate, {} on disk before space returned, {} write errors", s["full_rate_out"], s["records_written"], s["archive_errors"]);

    // Space returns: the pending datums reach the disk without a restart.
    std::fs::remove_file(&filler).unwrap();
    wait_for("writing to resume", Duration::from_secs(15), || stat(&data, "records_written") == N as u64);
    relay.stop();
    let records = read_avro_independently(&data.join("ch"));
    assert_eq!(records.len() as u32, N, "every datum, in order, in readable files");
    for (seq, r) in records.iter().enumerate() {
        assert_eq!(r, &example_json(seq as u32), "record {seq}");
    }
}

/// A full disk for longer than the memory backlog (1 MiB with 4 KiB blocks)
/// lasts: the datums past it are refused and counted in `lost`, exactly; the
/// rest reach the disk in order once space returns.
#[test]
fn full_disk_past_the_backlog_counts_every_refused_datum() {
    const N: u32 = 30_000; // ~1.5 MB of datums, more than the backlog holds
    let disk = full_disk("blog", "4m");
    // Partial moves: the tmpfs and the directory go when `disk` does, in that order.
    let (relay, data, filler, ns) = (disk.relay, &disk.data, &disk.filler, &disk.ns);

    send_to_loopback(&ns, 26000, 0..N, 50);
    wait_for("every datagram in", Duration::from_secs(30), || stat(&data, "datagrams_in") == N as u64);
    wait_for("the backlog to overflow", Duration::from_secs(10), || stat(&data, "lost") > 0);
    let s = channel_stats(&data, "ch").unwrap();
    assert_eq!(s["full_rate_out"], N, "the full-rate relay goes on: {s}");
    assert!(s["last_error"].as_str().unwrap().contains("dropped") || s["last_error"].as_str().unwrap().contains("No space"), "{s}");

    std::fs::remove_file(&filler).unwrap();
    let lost = stat(&data, "lost");
    wait_for("writing to resume", Duration::from_secs(15), || stat(&data, "records_written") + lost == N as u64);
    let log = relay.stop();
    assert_eq!(stat(&data, "lost"), lost, "nothing refused after space returned");
    let records = read_avro_independently(&data.join("ch"));
    let counters: Vec<u64> = records.iter().map(|r| r["counter"].as_u64().unwrap()).collect();
    assert!(counters.windows(2).all(|w| w[0] < w[1]), "records in order, none twice");
    assert_eq!(counters.len() as u64 + lost, N as u64, "sent = archived + lost, exactly");
    assert!(log.contains("datum dropped"), "the refusal is logged:\n{log}");
    eprintln!("backlog overflow: {N} sent, {} archived, {lost} refused and counted as lost", counters.len());
}

#[test]
fn unwritable_directory_is_reported_and_writing_resumes() {
    use std::os::unix::fs::PermissionsExt;
    const N: u32 = 3000;
    let ns = loopback_host("rofs");
    let dir = tempdir();
    let data = dir.path().join("data");
    let cfg = config(dir.path(), &data);
    let relay = RelayProcess::start(&ns, &["run", "--mode", "socket", "--api", "off", "--config", cfg.to_str().unwrap()], dir.path().join("log"));
    wait_for("the channel", Duration::from_secs(10), || channel_stats(&data, "ch").is_some());
    send_to_loopback(&ns, 26000, 0..500, 50);
    wait_for("the first records", Duration::from_secs(10), || stat(&data, "records_written") == 500);

    // The channel runs as nobody: a root-owned 0555 directory stops new files.
    let chdir = data.join("ch");
    std::os::unix::fs::chown(&chdir, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&chdir, std::fs::Permissions::from_mode(0o555)).unwrap();
    send_to_loopback(&ns, 26000, 500..N, 50);
    wait_for("every datagram in", Duration::from_secs(20), || stat(&data, "datagrams_in") == N as u64);
    wait_for("a rotation to fail", Duration::from_secs(10), || stat(&data, "archive_errors") > 0);
    assert_eq!(stat(&data, "full_rate_out"), N as u64);

    std::fs::set_permissions(&chdir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&chdir, Some(65534), Some(65534)).unwrap();
    wait_for("writing to resume", Duration::from_secs(15), || stat(&data, "records_written") == N as u64);
    relay.stop();
    assert_eq!(read_avro_independently(&chdir).len() as u32, N);
    assert_eq!(channel_stats(&data, "ch").unwrap()["lost"], 0);
}
