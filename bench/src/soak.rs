//! The soak (`cargo xtask soak`): the relay in XDP mode (or socket mode, with
//! `--mode socket`) for a bounded time at half its zero-loss rate (found first, on the same topology, unless given),
//! with files rotated every few seconds and a TTL retention deleting them
//! behind. While it runs, every file that is closed is checked and its records
//! counted before retention deletes it (walked block by block; one in five
//! also decoded by fastavro), and the resident
//! memory of the supervisor and the channel process is sampled. Passes when
//! nothing is lost anywhere (full-rate group, ring, files), every file reads,
//! the file count stays bounded, the channel never restarts and memory does
//! not grow.

use std::collections::BTreeSet;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use integration_tests::relay::RelayProcess;
use integration_tests::topology::*;

use crate::config::{self, FULL};
use crate::path_drops::PathDrops;
use crate::procfs;
use crate::receiver::Receiver;
use crate::runs::{self, Bench, Kind};

/// Seconds per file (time rotation).
const ROTATE_S: u64 = 3;
/// Files older than this are deleted by retention.
const TTL_S: u64 = 20;
/// Every this many closed files, one is decoded in full by fastavro (the
/// others are walked block by block: fastavro cannot keep up with a soak's
/// rate on two shared cores without taking CPU from the relay).
const DECODE_EVERY: usize = 5;
/// Allowed growth of either process's resident memory from the first sample
/// (taken after warm-up) to the end.
const RSS_GROWTH_KIB: u64 = 4096;

fn files_yaml() -> String {
    format!("rotation:\n  mode: \"time\"\n  threshold: {ROTATE_S}\nretention:\n  mode: \"ttl\"\n  value: {TTL_S}\n")
}

/// The highest rate at which XDP mode lost nothing (full-rate group, ring,
/// files), stepping up through fractions of kernel forwarding.
fn zero_loss_rate(b: &mut Bench, kind: Kind) -> Result<f64> {
    let forward = b.forward_baseline(None)?.delivered_rate();
    println!("soak: kernel forwarding {forward:.0}/s; finding {} mode's zero-loss rate", kind.label());
    let mut best = None;
    for f in [0.25, 0.5, 0.75, 1.0, 1.25, 1.5] {
        let row = b.relay_run(kind, 1, Some(f * forward), false)?;
        let clean = row.loss_pct() == 0.0 && row.archive_complete() && row.ring_drops.unwrap_or(0) == 0;
        println!("soak:   offered {:.0}/s: loss {:.3} %, {}", row.offered(), row.loss_pct(), if clean { "clean" } else { "lossy" });
        if !clean {
            break;
        }
        // The generator may offer less than asked: keep the highest clean rate.
        best = Some(best.unwrap_or(0.0f64).max(row.offered()));
    }
    best.with_context(|| format!("{} mode lost datums even at 0.25 × kernel forwarding", kind.label()))
}

/// What the sampler saw while the load ran.
#[derive(Default)]
struct Samples {
    /// (seconds since start, supervisor VmRSS KiB, channel VmRSS KiB).
    rss: Vec<(f64, u64, u64)>,
    max_files: usize,
    /// Closed files read back, and their records.
    checked: BTreeSet<PathBuf>,
    records: u64,
    unreadable: Vec<String>,
    /// Files fastavro decoded in full.
    decoded: usize,
    /// Channel process ids seen (more than one = it restarted).
    pids: BTreeSet<u64>,
}

struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Samples>,
}

impl Sampler {
    fn start(dir: PathBuf, supervisor: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            let start = Instant::now();
            let mut s = Samples::default();
            while !stop2.load(Ordering::Relaxed) {
                s.look(&dir, supervisor, start.elapsed().as_secs_f64());
                std::thread::sleep(Duration::from_secs(1));
            }
            s
        });
        Sampler { stop, handle }
    }

    fn finish(self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("soak sampler panicked")
    }
}

impl Samples {
    fn look(&mut self, dir: &Path, supervisor: u32, t: f64) {
        let stats = runs::read_json(&dir.join("stats.json")).unwrap_or_default();
        let pid = stats["pid"].as_u64();
        if let Some(p) = pid {
            self.pids.insert(p);
        }
        if let (Some(sup), Some(ch)) = (procfs::rss_kib(supervisor), pid.and_then(|p| procfs::rss_kib(p as u32))) {
            self.rss.push((t, sup, ch));
        }
        // Names sort by creation time: the newest is being written (stats.json,
        // published once a second, may still name the one before it).
        let current = stats["current_file"].as_str().map(PathBuf::from);
        let mut files = avro_files(dir);
        self.max_files = self.max_files.max(files.len());
        files.pop();
        let closed: Vec<PathBuf> =
            files.into_iter().filter(|f| Some(f) != current.as_ref() && !self.checked.contains(f)).collect();
        self.check(&closed);
    }

    /// Checks `files`: each one walked block by block (complete, well-formed,
    /// its records counted), and every [`DECODE_EVERY`]th one also decoded in
    /// full by fastavro, whose count must agree.
    fn check(&mut self, files: &[PathBuf]) {
        for f in files {
            let walked = std::fs::read(f).map_err(anyhow::Error::from).and_then(|b| crate::ocf_walk::records(&b));
            match walked {
                Ok(n) => {
                    self.records += n;
                    if self.checked.len() % DECODE_EVERY == 0 {
                        self.decode(f, n);
                    }
                }
                Err(e) => self.unreadable.push(format!("{}: {e:#}", f.display())),
            }
            self.checked.insert(f.clone());
        }
    }

    fn decode(&mut self, file: &Path, walked: u64) {
        let script = integration_tests::relay::workspace_root().join("tests/py/read_avro.py");
        // At the lowest priority: the check must not take CPU from the relay or the receiver.
        let out = std::process::Command::new("nice").args(["-n", "19", "python3"]).arg(script).arg("--count").arg(file).output();
        match out {
            Ok(o) if o.status.success() => {
                let n = String::from_utf8_lossy(&o.stdout).rsplit_once(' ').and_then(|(_, n)| n.trim().parse::<u64>().ok());
                self.decoded += 1;
                if n != Some(walked) {
                    self.unreadable.push(format!("{}: fastavro read {n:?} records, the block walk counted {walked}", file.display()));
                }
            }
            Ok(o) => self.unreadable.push(format!("{}: {}", file.display(), String::from_utf8_lossy(&o.stderr).trim())),
            Err(e) => self.unreadable.push(format!("running python3: {e}")),
        }
    }
}

fn avro_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "avro")).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Runs the soak for `seconds`; `rate` overrides half the measured zero-loss
/// rate. Returns whether it passed (the report says what failed).
pub fn run(bin: PathBuf, kind: Kind, seconds: f64, rate: Option<f64>) -> Result<bool> {
    let started = Instant::now();
    let mut b = Bench::new(bin, Duration::from_secs_f64(1.5))?;
    let rate = match rate {
        Some(r) => r,
        None => zero_loss_rate(&mut b, kind)? / 2.0,
    };
    println!("soak: {} mode, {seconds:.0} s at {rate:.0} datums/s, files rotated every {ROTATE_S} s, deleted after {TTL_S} s", kind.label());

    let root = b.scratch().join("soak");
    let cfg = config::write_with(&root, 1, &files_yaml())?;
    let data = root.join("data");
    let name = config::channel_name(0);
    let dir = data.join(&name);
    let full = Receiver::start(&b.topo.subscriber, FULL, SUBSCRIBER_ADDR, (rate * seconds * 1.1) as u64 + 4096);
    let cfg_s = cfg.to_string_lossy().into_owned();
    let mut args = vec!["run", "--config", &cfg_s, "--api", "off"];
    args.extend(if kind == Kind::Xdp { ["--mode", "xdp", "--iface", RELAY_IN_IF].as_slice() } else { ["--mode", "socket"].as_slice() });
    let relay = RelayProcess::start_net_only(&b.topo.relay, &args, root.join("relay.log"));
    let pids = runs::wait_for_channels(&relay, &data, std::slice::from_ref(&name))?;
    println!("soak: supervisor pid {}, channel pid {:?}", relay.pid(), pids);
    let supervisor = relay.pid();
    let sampler = Sampler::start(dir.clone(), supervisor);

    let drops0 = PathDrops::read(&b.topo);
    b.step = Duration::from_secs_f64(seconds);
    let sent = b.send(vec![SocketAddrV4::new(RELAY_IN_ADDR, config::FIRST_PORT)], Some(rate))?;
    runs::settle(&data, std::slice::from_ref(&name), sent.datums);
    let mut samples = sampler.finish();
    let peaks = (procfs::peak_rss_kib(supervisor), pids.first().and_then(|&p| procfs::peak_rss_kib(p)));
    let log = runs::stop(relay)?;
    // The clean stop closed the last file: read what the sampler has not.
    let rest: Vec<PathBuf> = avro_files(&dir).into_iter().filter(|f| !samples.checked.contains(f)).collect();
    samples.check(&rest);
    let got = full.finish();
    let drops = PathDrops::read(&b.topo).since(drops0);
    let stats = runs::read_json(&dir.join("stats.json")).context("the channel's stats.json")?;
    // Socket mode: no kernel counters; the relay's own count of what it sent stands in.
    let kernel = match kind {
        Kind::Xdp => runs::read_json(&dir.join("xdp.json")).context("the channel's xdp.json")?,
        _ => serde_json::json!({ "forwarded": stats["full_rate_out"], "ring_drops": 0 }),
    };

    let n = sent.datums;
    let u = |v: &serde_json::Value| v.as_u64().unwrap_or(u64::MAX);
    let file_bound = (TTL_S / ROTATE_S) as usize + 3;
    // A file is deleted once it is older than the TTL, so only a soak longer
    // than the TTL and two rotations (the file's own and the one whose
    // retention pass sees it old, plus a margin) must have deleted one.
    let retention_due = seconds > (TTL_S + 2 * ROTATE_S + 2) as f64;
    let first = samples.rss.iter().find(|s| s.0 >= seconds.min(10.0) / 2.0).or(samples.rss.first()).copied();
    let last = samples.rss.last().copied();
    let (rss0, rss1) = (first.unwrap_or_default(), last.unwrap_or_default());
    let checks: Vec<(String, bool)> = vec![
        (format!("relay forwarded {} of {n} to the full-rate group", u(&kernel["forwarded"])), u(&kernel["forwarded"]) == n),
        // What the relay handed on and the subscriber did not get must be
        // counted by the kernel on the way (the veth queue into the
        // subscriber's namespace, or its socket buffer): every datagram
        // accounted for. A loss is printed either way.
        (
            format!(
                "full-rate group: {} of {n} received, {} duplicates; missing {}, of which counted on the way: \
                 {SUBSCRIBER_IF} rx dropped {} ({RELAY_OUT_IF} tx dropped {}), subscriber receive-buffer overflows {}",
                got.unique,
                got.duplicates,
                n.saturating_sub(got.unique),
                drops.sub0_rx_dropped,
                drops.rout0_tx_dropped,
                drops.subscriber_rcvbuf
            ),
            got.duplicates == 0 && got.unique + drops.sub0_rx_dropped + drops.subscriber_rcvbuf == n,
        ),
        (
            format!(
                "channel took {} of {n} (relay input-socket overflows counted by the kernel: {})",
                u(&stats["datagrams_in"]),
                drops.relay_rcvbuf
            ),
            u(&stats["datagrams_in"]) == n,
        ),
        (format!("records written {} of {n}, lost {}", u(&stats["records_written"]), u(&stats["lost"])), u(&stats["records_written"]) == n && u(&stats["lost"]) == 0),
        (format!("ring drops {}", u(&kernel["ring_drops"])), u(&kernel["ring_drops"]) == 0),
        (
            format!(
                "records in the files {} of {n}: {} files walked block by block, {} of them decoded by fastavro with the same count, {} unreadable",
                samples.records,
                samples.checked.len(),
                samples.decoded,
                samples.unreadable.len()
            ),
            samples.records == n && samples.unreadable.is_empty(),
        ),
        (
            format!(
                "files in the directory at most {} (bound {file_bound}); deleted by retention {}{}",
                samples.max_files,
                u(&stats["retention_deleted_files"]),
                if retention_due { "" } else { " (none due: the soak is shorter than the TTL and two rotations)" }
            ),
            samples.max_files <= file_bound && (!retention_due || u(&stats["retention_deleted_files"]) > 0),
        ),
        (format!("channel process ids seen: {}", samples.pids.len()), samples.pids.len() == 1),
        (
            format!(
                "supervisor RSS {} → {} KiB (peak {}); channel RSS {} → {} KiB (peak {}), from t = {:.0} s to t = {:.0} s",
                rss0.1, rss1.1, peaks.0.unwrap_or(0), rss0.2, rss1.2, peaks.1.unwrap_or(0), rss0.0, rss1.0
            ),
            first.is_some() && rss1.1 <= rss0.1 + RSS_GROWTH_KIB && rss1.2 <= rss0.2 + RSS_GROWTH_KIB,
        ),
    ];
    println!("\nsoak: {n} datums in {:.0} s ({:.0}/s offered)", sent.elapsed.as_secs_f64(), n as f64 / sent.elapsed.as_secs_f64());
    for (what, ok) in &checks {
        println!("  [{}] {what}", if *ok { "ok" } else { "FAILED" });
    }
    for e in &samples.unreadable {
        println!("  unreadable: {e}");
    }
    let passed = checks.iter().all(|c| c.1);
    if !passed {
        println!("relay log:\n{log}");
    }
    println!("soak: {} in {:.0} s", if passed { "passed" } else { "FAILED" }, started.elapsed().as_secs_f64());
    Ok(passed)
}

/// Fails the process when the soak did not pass.
pub fn main(bin: PathBuf, kind: Kind, seconds: f64, rate: Option<f64>) -> Result<()> {
    if !run(bin, kind, seconds, rate)? {
        bail!("the soak failed (see above)");
    }
    Ok(())
}
