//! One run = one offered load through the three-host topology, measured from
//! the generator, the receivers, the relay's published counters and /proc.
//! The topology, the subscriber-side XDP program and every relay process are
//! drop guards, so nothing outlives the bench (also on failure or ctrl-C,
//! which `main` turns into an unwinding exit).

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use integration_tests::netns::Netns;
use integration_tests::relay::RelayProcess;
use integration_tests::topology::*;
use serde_json::Value;

use crate::config::{self, DECI, FULL};
use crate::generator::{self, Generator, Load};
use crate::packet_tx::Frames;
use crate::path_drops::PathDrops;
use crate::procfs;
use crate::receiver::{Received, Receiver};

/// How long after the send the channels' CPU is read: the longest drain
/// period and a margin for the drain itself.
const CPU_TAIL: Duration = Duration::from_millis(relay::channel::drain_pacer::MAX.as_millis() as u64 + 20);

/// XDP mode: how long the channels' CPU is read with no traffic before the
/// load, after [`IDLE_WARMUP`] (the first drains find the ring empty and take
/// the period to its longest). What the channel processes cost just to be
/// there, which 32 of them pay 32 times.
const IDLE_WINDOW: Duration = Duration::from_secs(1);
const IDLE_WARMUP: Duration = Duration::from_millis(200);

/// Where the kernel-forwarding baseline sends: a unicast port on the subscriber host.
const FORWARD_TO: SocketAddrV4 = SocketAddrV4::new(SUBSCRIBER_ADDR, 7000);

/// A paired relay run sends one datum in this many to [`FORWARD_TO`]
/// instead of the channel: kernel-forwarded datums in the same batches as
/// the relay's, the control for its added latency (see [`Control`]).
pub const CONTROL_EVERY: u64 = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The generator into `XDP_DROP` on rin0.
    Drop,
    /// The relay host IP-forwarding to a unicast receiver.
    Forward,
    Xdp,
    Socket,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Drop => "xdp-drop",
            Kind::Forward => "kernel-fwd",
            Kind::Xdp => "xdp",
            Kind::Socket => "socket",
        }
    }
}

/// What one run measured. Rates are datums per second.
#[derive(Clone, Debug)]
pub struct Row {
    pub kind: Kind,
    pub channels: usize,
    pub sent: u64,
    pub seconds: f64,
    /// Datums that arrived where this run counts them: the full-rate
    /// receiver (forward, relay runs) or the drop program (drop).
    pub delivered: u64,
    pub decimated_rx: Option<u64>,
    pub decimated_out: Option<u64>,
    pub records: Option<u64>,
    pub ring_drops: Option<u64>,
    pub p50_ns: Option<u64>,
    pub p99_ns: Option<u64>,
    /// CPU of the channel processes (summed), in cores over the send window.
    pub channel_cpu: Option<f64>,
    /// The same with no traffic, just before the load (XDP runs).
    pub idle_cpu: Option<f64>,
    pub channel_rss_kib: Option<u64>,
    pub supervisor_rss_kib: Option<u64>,
    /// The round of the interleaved 1/8/32-channel comparison this run
    /// belongs to; `None` for the stepped runs.
    pub round: Option<u32>,
    /// A paired run's kernel-forwarded datums (`sent` and `delivered` count
    /// the relay's alone).
    pub control: Option<Control>,
    /// Relay runs: what the kernel counted as dropped outside the relay
    /// while the run's datums were on their way.
    pub path_drops: Option<PathDrops>,
}

/// Datums kernel-forwarded during a relay run, interleaved with the
/// relay's in the generator's batches: the same machine at the same moment
/// without the relay. On two shared cores the latency tail moves by
/// hundreds of µs between runs seconds apart, more than the relay adds, so
/// the relay's added latency is its datums' latency minus these.
#[derive(Clone, Copy, Debug)]
pub struct Control {
    pub sent: u64,
    pub delivered: u64,
    pub p50_ns: Option<u64>,
    pub p99_ns: Option<u64>,
}

#[derive(Clone, Copy)]
pub enum Quantile {
    P50,
    P99,
}

/// A paired run's latency at `q` minus its control's, in µs.
pub fn added_us(r: &Row, q: Quantile) -> Option<f64> {
    let c = r.control?;
    let (relay, control) = match q {
        Quantile::P50 => (r.p50_ns?, c.p50_ns?),
        Quantile::P99 => (r.p99_ns?, c.p99_ns?),
    };
    Some((relay as f64 - control as f64) / 1e3)
}

impl Row {
    pub fn offered(&self) -> f64 {
        self.sent as f64 / self.seconds
    }
    pub fn delivered_rate(&self) -> f64 {
        self.delivered as f64 / self.seconds
    }
    pub fn loss_pct(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        100.0 * self.sent.saturating_sub(self.delivered) as f64 / self.sent as f64
    }
    /// Channel-process CPU per datum offered, in ns.
    pub fn cpu_ns_per_datum(&self) -> Option<f64> {
        self.channel_cpu.map(|c| c * self.seconds * 1e9 / self.sent.max(1) as f64)
    }
    /// Every datum sent is in the Avro files.
    pub fn archive_complete(&self) -> bool {
        self.records == Some(self.sent)
    }
}

pub struct Bench {
    pub topo: Topology,
    pub bin: PathBuf,
    pub step: Duration,
    /// How every run's generator sends (packet-mmap unless changed).
    pub generator: Generator,
    /// The sender link's addresses, for the packet-mmap generator.
    frames: Frames,
    dir: tempfile::TempDir,
    runs: usize,
}

impl Bench {
    pub fn new(bin: PathBuf, step: Duration) -> Result<Bench> {
        let topo = Topology::new();
        integration_tests::netns::run(topo.relay.command("sysctl").args(["-qw", "net.ipv4.ip_forward=1"]));
        topo.sender.ip(&["route", "add", "198.51.100.0/24", "via", &RELAY_IN_ADDR.to_string()]);
        topo.subscriber.ip(&["route", "add", "192.0.2.0/24", "via", &RELAY_OUT_ADDR.to_string()]);
        // A permanent neighbour for the relay's input address: under
        // `XDP_DROP` on rin0 no ARP reply would ever come back.
        let relay_mac = integration_tests::capture::mac_of(&topo.relay, RELAY_IN_IF);
        let frames = Frames {
            src_mac: integration_tests::capture::mac_of(&topo.sender, SENDER_IF),
            dst_mac: relay_mac,
            src: SocketAddrV4::new(SENDER_ADDR, 0),
        };
        let mac = relay_mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        topo.sender.ip(&["neigh", "replace", &RELAY_IN_ADDR.to_string(), "lladdr", &mac, "dev", SENDER_IF, "nud", "permanent"]);
        // Native XDP redirect into the rout0/sub0 veth needs a program on sub0
        // (see DESIGN.md); it stays for every run, baselines included, and
        // goes in `Drop`.
        let out = topo.subscriber.output_net_only(&bin, &["attach", "--iface", SUBSCRIBER_IF, "--mode", "native"]);
        if !out.status.success() {
            bail!("attaching XDP_PASS to {SUBSCRIBER_IF}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(Bench { topo, bin, step, generator: Generator::PacketMmap, frames, dir: integration_tests::relay::tempdir(), runs: 0 })
    }

    pub(crate) fn send(&self, to: Vec<SocketAddrV4>, rate: Option<f64>) -> Result<generator::Sent> {
        let load = Load { from: self.frames.src, to, rate, duration: self.step };
        let (kind, frames) = (self.generator, self.frames);
        let sent = self
            .topo
            .sender
            .spawn(move || match kind {
                Generator::PacketMmap => generator::run_packet_mmap(&load, SENDER_IF, frames),
                Generator::Sendmmsg => generator::run(&load),
            })
            .join()
            .expect("generator thread panicked")?;
        if sent.errors > 0 {
            eprintln!("bench: {} {} calls failed (their datums count as offered)", sent.errors, kind.label());
        }
        Ok(sent)
    }

    /// A directory for this bench's runs (deleted with it).
    pub(crate) fn scratch(&self) -> &Path {
        self.dir.path()
    }

    fn expected(&self, rate: Option<f64>) -> u64 {
        let r = rate.unwrap_or(5e6);
        (r * self.step.as_secs_f64() * 1.2) as u64 + 4096
    }

    /// The drop baseline at `rate` (None: as fast as the generator goes).
    pub fn drop_baseline(&mut self, rate: Option<f64>) -> Result<Row> {
        let link = self
            .topo
            .relay
            .spawn(|| crate::xdp_drop::attach(RELAY_IN_IF))
            .join()
            .expect("attach thread panicked")?;
        let before = veth_xdp_count(&self.topo.relay, RELAY_IN_IF)?;
        let sent = self.send(vec![SocketAddrV4::new(RELAY_IN_ADDR, config::FIRST_PORT)], rate)?;
        std::thread::sleep(Duration::from_millis(100));
        let after = veth_xdp_count(&self.topo.relay, RELAY_IN_IF)?;
        drop(link);
        Ok(Row {
            kind: Kind::Drop,
            channels: 0,
            sent: sent.datums,
            seconds: sent.elapsed.as_secs_f64(),
            delivered: after.saturating_sub(before),
            ..empty(Kind::Drop)
        })
    }

    /// Kernel forwarding from the sender to a unicast receiver on the subscriber host.
    pub fn forward_baseline(&mut self, rate: Option<f64>) -> Result<Row> {
        let rx = Receiver::start(&self.topo.subscriber, FORWARD_TO, SUBSCRIBER_ADDR, self.expected(rate));
        let sent = self.send(vec![FORWARD_TO], rate)?;
        let got = rx.finish();
        Ok(Row {
            sent: sent.datums,
            seconds: sent.elapsed.as_secs_f64(),
            delivered: got.unique,
            p50_ns: got.percentile(0.5),
            p99_ns: got.percentile(0.99),
            ..empty(Kind::Forward)
        })
    }

    /// The relay (`kind` Xdp or Socket) with `channels` channels, the load
    /// spread over them round-robin at `rate` in total. `paired`: with a
    /// [`Control`] flow on top (one datum in [`CONTROL_EVERY`] of what the
    /// generator sends, so the relay still gets `rate`).
    pub fn relay_run(&mut self, kind: Kind, channels: usize, rate: Option<f64>, paired: bool) -> Result<Row> {
        self.runs += 1;
        let root = self.dir.path().join(format!("run{:02}", self.runs));
        let cfg = config::write(&root, channels)?;
        let data = root.join("data");
        let names: Vec<String> = (0..channels).map(config::channel_name).collect();
        // What the generator sends in all: the relay's share stays `rate`.
        let every = CONTROL_EVERY as f64;
        let total = if paired { rate.map(|r| r * every / (every - 1.0)) } else { rate };
        let full = Receiver::start(&self.topo.subscriber, FULL, SUBSCRIBER_ADDR, self.expected(total));
        let deci = Receiver::start(&self.topo.subscriber, DECI, SUBSCRIBER_ADDR, self.expected(total));
        let control = paired.then(|| Receiver::start(&self.topo.subscriber, FORWARD_TO, SUBSCRIBER_ADDR, self.expected(total)));
        let cfg_s = cfg.to_string_lossy().into_owned();
        let mut args = vec!["run", "--config", &cfg_s, "--api", "off"];
        match kind {
            Kind::Xdp => args.extend(["--mode", "xdp", "--iface", RELAY_IN_IF]),
            Kind::Socket => args.extend(["--mode", "socket"]),
            _ => bail!("relay_run is for the relay's modes"),
        }
        let relay = RelayProcess::start_net_only(&self.topo.relay, &args, root.join("relay.log"));
        let pids = wait_for_channels(&relay, &data, &names)?;
        if kind == Kind::Xdp && !relay.log_text().contains("input mode: XDP (native)") {
            bail!("the relay did not choose native XDP:\n{}", relay.log_text());
        }

        let cpu = || -> f64 { pids.iter().filter_map(|&p| procfs::cpu_seconds(p)).sum() };
        let idle_cpu = (kind == Kind::Xdp).then(|| {
            std::thread::sleep(IDLE_WARMUP);
            let (t0, c0) = (Instant::now(), cpu());
            std::thread::sleep(IDLE_WINDOW);
            (cpu() - c0) / t0.elapsed().as_secs_f64()
        });
        let cpu0 = cpu();
        let drops0 = PathDrops::read(&self.topo);
        let sent = self.send(destinations(channels, paired), total)?;
        // Datum `seq` goes to `to[seq % len]`; the control is the last of CONTROL_EVERY.
        let control_sent = if paired { sent.datums / CONTROL_EVERY } else { 0 };
        let relay_sent = sent.datums - control_sent;
        // CPU while the load runs, plus the drain that takes its last
        // datums: a channel drains at least every drain period. Not until
        // `settle`, which waits up to a second for the stats file and would
        // add that second's idle wake-ups of every channel to the load's
        // cost (32 channels idle cost more than one).
        std::thread::sleep(CPU_TAIL);
        let cpu1 = cpu();
        settle(&data, &names, relay_sent);
        let path_drops = PathDrops::read(&self.topo).since(drops0);
        let channel_rss = pids.iter().filter_map(|&p| procfs::peak_rss_kib(p)).max();
        let supervisor_rss = procfs::peak_rss_kib(relay.pid());
        let ring_drops = (kind == Kind::Xdp).then(|| sum(&data, &names, "xdp.json", "ring_drops"));
        let log = stop(relay)?;
        let records = sum(&data, &names, "stats.json", "records_written");
        let decimated_out = sum(&data, &names, "stats.json", "decimated_out");
        let got: Received = full.finish();
        let deci_got = deci.finish();
        let control = control.map(|rx| {
            let c = rx.finish();
            Control { sent: control_sent, delivered: c.unique, p50_ns: c.percentile(0.5), p99_ns: c.percentile(0.99) }
        });
        if records == 0 && relay_sent > 0 {
            bail!("no records written; relay log:\n{log}");
        }
        Ok(Row {
            kind,
            channels,
            sent: relay_sent,
            seconds: sent.elapsed.as_secs_f64(),
            delivered: got.unique,
            decimated_rx: Some(deci_got.unique),
            decimated_out: Some(decimated_out),
            records: Some(records),
            ring_drops,
            p50_ns: got.percentile(0.5),
            p99_ns: got.percentile(0.99),
            channel_cpu: Some((cpu1 - cpu0) / sent.elapsed.as_secs_f64()),
            idle_cpu,
            channel_rss_kib: channel_rss,
            supervisor_rss_kib: supervisor_rss,
            round: None,
            control,
            path_drops: Some(path_drops),
        })
    }
}

impl Drop for Bench {
    /// Detaches the subscriber's program (its pins are in the host bpffs)
    /// before the namespaces go.
    fn drop(&mut self) {
        let _ = self.topo.subscriber.output_net_only(&self.bin, &["detach", "--iface", SUBSCRIBER_IF]);
    }
}

/// The generator's destinations, datum `seq` going to `[seq % len]`: the
/// channels' ports round-robin, and when `paired`, [`CONTROL_EVERY`] slots of
/// which the last is the control's (`channels` must then divide the others).
fn destinations(channels: usize, paired: bool) -> Vec<SocketAddrV4> {
    let port = |i: usize| SocketAddrV4::new(RELAY_IN_ADDR, config::FIRST_PORT + (i % channels) as u16);
    if !paired {
        return (0..channels).map(port).collect();
    }
    let relay_slots = CONTROL_EVERY as usize - 1;
    assert_eq!(relay_slots % channels, 0, "a paired run's {channels} channels would not get equal shares");
    (0..relay_slots).map(port).chain([FORWARD_TO]).collect()
}

fn empty(kind: Kind) -> Row {
    Row {
        kind,
        channels: 0,
        sent: 0,
        seconds: 1.0,
        delivered: 0,
        decimated_rx: None,
        decimated_out: None,
        records: None,
        ring_drops: None,
        p50_ns: None,
        p99_ns: None,
        channel_cpu: None,
        idle_cpu: None,
        channel_rss_kib: None,
        supervisor_rss_kib: None,
        round: None,
        control: None,
        path_drops: None,
    }
}

/// Frames the XDP program on a veth saw (`ethtool -S`: the per-queue
/// `xdp_packets` counters, which count every frame run through XDP).
fn veth_xdp_count(ns: &Netns, iface: &str) -> Result<u64> {
    let out = ns.command("ethtool").args(["-S", iface]).output().context("running ethtool -S")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let n = text
        .lines()
        .filter_map(|l| l.trim().split_once(':'))
        .filter(|(k, _)| k.ends_with("xdp_packets"))
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .sum();
    Ok(n)
}

pub(crate) fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

pub(crate) fn sum(data: &Path, names: &[String], file: &str, field: &str) -> u64 {
    names.iter().filter_map(|n| read_json(&data.join(n).join(file))).filter_map(|v| v[field].as_u64()).sum()
}

/// Waits (bounded) until every channel has published its stats; returns their pids.
pub(crate) fn wait_for_channels(relay: &RelayProcess, data: &Path, names: &[String]) -> Result<Vec<u32>> {
    let deadline = Instant::now() + Duration::from_secs(30 + names.len() as u64);
    loop {
        let pids: Vec<u32> = names
            .iter()
            .filter_map(|n| read_json(&data.join(n).join("stats.json")))
            .filter_map(|v| v["pid"].as_u64().map(|p| p as u32))
            .collect();
        if pids.len() == names.len() {
            return Ok(pids);
        }
        if Instant::now() > deadline {
            bail!("{} of {} channels started; relay log:\n{}", pids.len(), names.len(), relay.log_text());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the channels have taken in everything that reached them: their
/// `datagrams_in` (published every second) accounts for every datum sent, or
/// has stopped moving for over a publishing period. Bounded.
pub(crate) fn settle(data: &Path, names: &[String], sent: u64) {
    let start = Instant::now();
    let mut last = (u64::MAX, Instant::now());
    while start.elapsed() < Duration::from_secs(6) {
        let n = sum(data, names, "stats.json", "datagrams_in") + sum(data, names, "xdp.json", "ring_drops");
        if n >= sent {
            return;
        }
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(1300) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM and a bounded wait; the relay's log on success.
pub(crate) fn stop(relay: RelayProcess) -> Result<String> {
    let pid = relay.pid();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| relay.stop()))
        .map_err(|_| anyhow::anyhow!("the relay (pid {pid}) did not stop cleanly"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paired_run_sends_one_datum_in_control_every_to_the_control() {
        let to = destinations(1, true);
        assert_eq!(to.len() as u64, CONTROL_EVERY);
        let channel = SocketAddrV4::new(RELAY_IN_ADDR, config::FIRST_PORT);
        assert!(to[..to.len() - 1].iter().all(|&a| a == channel), "{to:?}");
        assert_eq!(to[to.len() - 1], FORWARD_TO);
        // The generator's `seq % len` then puts datums CONTROL_EVERY - 1,
        // 2 * CONTROL_EVERY - 1, … on the control: n / CONTROL_EVERY of n.
        let n = 1000u64;
        assert_eq!((0..n).filter(|s| to[(*s % to.len() as u64) as usize] == FORWARD_TO).count() as u64, n / CONTROL_EVERY);
        // Unpaired: one slot per channel.
        let to = destinations(32, false);
        assert_eq!(to.len(), 32);
        assert_eq!(to[31], SocketAddrV4::new(RELAY_IN_ADDR, config::FIRST_PORT + 31));
    }
}
