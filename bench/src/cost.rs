//! Cost per datum, independent of the topology: the XDP program's own time
//! per frame (`BPF_PROG_TEST_RUN`, repeated), and the channel pipeline's time
//! per datum (the real [`relay::channel::pipeline::Pipeline`], in process),
//! at three datagram sizes.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{ensure, Context, Result};
use aya::programs::{TestRun, TestRunOptions};
use relay::channel::out_batch::OutBatch;
use relay::channel::pipeline::Pipeline;
use relay::channel::ring_input::RingInput;
use relay::xdp::RingReader;
use relay::xdp::{channel_entry, ChannelMaps, Egress, Forward, Route};

use crate::datum;

/// Datagram (UDP payload = one datum) sizes the costs are measured at.
pub const SIZES: [usize; 3] = [64, 128, 1400];

const SRC: [u8; 4] = [192, 0, 2, 1];
const DST: [u8; 4] = [192, 0, 2, 2];
const PORT: u16 = 26000;
const GROUP: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const GROUP_PORT: u16 = 6000;
/// With no `ctx_in` a test run's ingress is loopback (ifindex 1): egress 1 means `XDP_TX`.
const EGRESS: Egress = Egress { ifindex: 1, mac: [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee], ip: Ipv4Addr::new(198, 51, 100, 1) };

#[derive(Clone, Debug)]
pub struct Cost {
    pub size: usize,
    /// XDP program, datagram to a channel's port (how sources send): port
    /// lookup, ring copy, rewrite, `XDP_TX`. The median over chunks of test
    /// runs: a chunk that the host interrupted (this is a VM on shared
    /// cores) moves the mean by tens of ns from one run to the next.
    pub xdp_matched_ns: f64,
    /// The same, mean over all runs.
    pub xdp_matched_mean_ns: f64,
    /// The same for a datagram to a channel's input group: the (group,
    /// port) hash lookup first. Median over chunks.
    pub xdp_group_ns: f64,
    /// XDP program, UDP to a port no channel uses (`XDP_PASS`).
    pub xdp_unmatched_ns: f64,
    /// Every repeated run was a match and none hit a full ring.
    pub xdp_all_matched: bool,
    pub validate_ns: f64,
    /// `Pipeline::handle` (validate + Avro append + decimate) on datums in memory.
    pub pipeline_ns: f64,
    /// Ring drain (records written by the program) + `Pipeline::handle`.
    pub drain_pipeline_ns: f64,
}

impl Cost {
    /// Keeps the lower of each time (interference only adds).
    pub fn min_with(&mut self, o: &Cost) {
        self.xdp_matched_ns = self.xdp_matched_ns.min(o.xdp_matched_ns);
        self.xdp_matched_mean_ns = self.xdp_matched_mean_ns.min(o.xdp_matched_mean_ns);
        self.xdp_group_ns = self.xdp_group_ns.min(o.xdp_group_ns);
        self.xdp_unmatched_ns = self.xdp_unmatched_ns.min(o.xdp_unmatched_ns);
        self.xdp_all_matched &= o.xdp_all_matched;
        self.validate_ns = self.validate_ns.min(o.validate_ns);
        self.pipeline_ns = self.pipeline_ns.min(o.pipeline_ns);
        self.drain_pipeline_ns = self.drain_pipeline_ns.min(o.drain_pipeline_ns);
    }
}

/// An Ethernet/IPv4/UDP frame carrying `payload` to `dst:port`.
fn frame(dst: [u8; 4], port: u16, payload: &[u8]) -> Vec<u8> {
    integration_tests::frames::udp_frame(SRC, dst, port, 0, payload)
}

fn pipeline(root: &Path) -> Result<Pipeline> {
    let cfg_dir = crate::config::write(root, 1)?;
    let cfg = relay::config::load(&cfg_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let ch = &cfg.channels[0];
    Pipeline::new(ch, &cfg.storage, &relay::channel::channel_dir(&cfg.storage, &ch.name))
}

/// A test run with `repeat` reruns the program on the frame it left behind,
/// so each channel here forwards to the address it is matched by: port 26000
/// → ring 2, "forwarded" to 192.0.2.2:26000 (unicast, which the program
/// rewrites like a group), and the group 239.1.1.1:6000 → ring 3, forwarded
/// to itself. Every repeat is then a full match of the same kind: lookup,
/// ring copy and rewrite. (Until session 5 the port's channel forwarded to
/// the group, so runs alternated between the two lookups.) Returns the maps
/// (keep them) and both rings.
fn looped_channels(ebpf: &mut aya::Ebpf) -> Result<(ChannelMaps, RingInput, RingInput)> {
    let mut maps = ChannelMaps::take(ebpf, None)?;
    let to_port = Forward { group: Ipv4Addr::from(DST), port: PORT, ttl: 4, egress: EGRESS };
    let to_group = Forward { group: GROUP, port: GROUP_PORT, ttl: 4, egress: EGRESS };
    let ring2 = maps.install(Route::Port(PORT), &channel_entry(2, true, Some(&to_port), false))?.context("ring 2")?;
    let ring3 = maps.install(Route::Group(GROUP, GROUP_PORT), &channel_entry(3, true, Some(&to_group), false))?.context("ring 3")?;
    Ok((maps, RingInput::new(RingReader::new(ring2)?), RingInput::new(RingReader::new(ring3)?)))
}

/// Test runs between two ring drains: half a ring of `size`-byte datagrams
/// (each record is the ring's 8-byte header plus the record's size class;
/// older builds of the program write smaller records), so none is dropped.
fn runs_per_chunk(size: usize) -> Result<u64> {
    let record = (8 + relay_common::record::record_size(size).context("datagram size")?) as u64;
    Ok((u64::from(relay_common::channel::RING_BYTES) / record / 2).min(20_000))
}

/// Measures every size; `runs` test runs and datums per size (fewer for 1400 bytes).
pub fn measure(runs: u64, dir: &Path) -> Result<Vec<Cost>> {
    let mut ebpf = relay::xdp::load().context("loading the XDP program (is the relay built with it? `cargo xtask build`)")?;
    let (maps, mut ring2, mut ring3) = looped_channels(&mut ebpf)?;
    let mut out = Vec::new();
    for &size in &SIZES {
        let n = if size > 1000 { runs / 4 } else { runs };
        let payload = datum::of_size(1, datum::now_ns(), size);
        let matched = frame(DST, PORT, &payload);
        // The program on its own first, its ring drained between chunks
        // without the pipeline, and with nothing left to write back: the
        // pipeline's files (hundreds of MB a round) written back meanwhile
        // took memory bandwidth from the ring's writes and added 20-30 ns.
        // SAFETY: no preconditions.
        unsafe { libc::sync() };
        let before = maps.counters(2)?;
        let prog = looped_runs(&mut ebpf, &mut ring2, &matched, size, n)?;
        let group = looped_runs(&mut ebpf, &mut ring3, &frame(GROUP.octets(), GROUP_PORT, &payload), size, n / 4)?;
        // Before the pipeline too, for the same reason: measured after it,
        // a full run read 27 ns where `--cost-only` had read 13-14 minutes before.
        let unmatched = run(&mut ebpf, &frame(DST, 5353, &payload), n.min(u32::MAX as u64) as u32)?;
        ensure!(unmatched.return_value == 2, "unmatched frame: verdict {} (want XDP_PASS)", unmatched.return_value);
        // Then the channel's side on the records the program writes.
        let mut pipe = pipeline(&dir.join(format!("cost{size}")))?;
        let chunk = runs_per_chunk(size)?;
        let (mut chunks, mut drain_ns, mut drained) = (Chunks::default(), Duration::ZERO, 0u64);
        let mut deci = OutBatch::default();
        while chunks.runs < n {
            let repeat = chunk.min(n - chunks.runs) as u32;
            let r = run(&mut ebpf, &matched, repeat)?;
            ensure!(r.return_value == 3, "matched frame: verdict {} (want XDP_TX)", r.return_value);
            chunks.add(r.duration.as_nanos() as f64, repeat);
            let t = Instant::now();
            drained += ring2.drain_through(usize::MAX, &mut pipe, &mut deci).0 as u64;
            drain_ns += t.elapsed();
            deci.clear();
        }
        let after = maps.counters(2)?;
        let packets = after.packets - before.packets;
        let drops = after.ring_drops - before.ring_drops;
        let s = pipe.snapshot();
        // Every record went through validation and the archive: a wrong
        // checksum would skip both and make the pipeline look cheap.
        ensure!(
            s.bad_udp_checksum == 0 && s.malformed == 0 && s.datagrams_in == drained,
            "{size}-byte records: {} in, {} with a wrong checksum, {} malformed, of {drained}",
            s.datagrams_in,
            s.bad_udp_checksum,
            s.malformed
        );
        pipe.finish(&mut deci)?;

        let datums: Vec<Vec<u8>> = (0..1024).map(|s| datum::of_size(s * 7919, datum::now_ns(), size)).collect();
        let (validate_ns, pipeline_ns) = in_memory(&datums, n, &dir.join(format!("mem{size}")))?;
        out.push(Cost {
            size,
            xdp_matched_ns: prog.median(),
            xdp_matched_mean_ns: prog.mean(),
            xdp_group_ns: group.median(),
            xdp_unmatched_ns: unmatched.duration.as_nanos() as f64,
            xdp_all_matched: packets == prog.runs + chunks.runs && drops == 0 && drained == chunks.runs,
            validate_ns,
            pipeline_ns,
            drain_pipeline_ns: drain_ns.as_nanos() as f64 / drained.max(1) as f64,
        });
    }
    Ok(out)
}

/// Per-run times of chunks of test runs (the kernel reports each chunk's
/// mean, in whole ns).
#[derive(Default)]
struct Chunks {
    /// (ns per run, runs) of each chunk.
    each: Vec<(f64, u32)>,
    runs: u64,
}

impl Chunks {
    fn add(&mut self, ns: f64, repeat: u32) {
        self.each.push((ns, repeat));
        self.runs += u64::from(repeat);
    }

    fn mean(&self) -> f64 {
        self.each.iter().map(|&(ns, r)| ns * f64::from(r)).sum::<f64>() / self.runs.max(1) as f64
    }

    /// The time per run that half of all runs were at or below (chunks weighted by their runs).
    fn median(&self) -> f64 {
        let mut each = self.each.clone();
        each.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut seen = 0u64;
        for (ns, r) in each {
            seen += u64::from(r);
            if 2 * seen >= self.runs {
                return ns;
            }
        }
        f64::NAN
    }

    fn least(&self) -> f64 {
        self.each.iter().map(|c| c.0).fold(f64::INFINITY, f64::min)
    }
}

/// The program's time per run on `frame`, a `size`-byte datagram that the
/// channel of `ring` matches (and forwards to itself, see
/// [`looped_channels`]), over `n` runs in chunks, the ring drained between
/// them. Fails unless every run was a match that reached the ring.
fn looped_runs(ebpf: &mut aya::Ebpf, ring: &mut RingInput, frame: &[u8], size: usize, n: u64) -> Result<Chunks> {
    let chunk = runs_per_chunk(size)?;
    let (mut chunks, mut drained) = (Chunks::default(), 0u64);
    while chunks.runs < n {
        let repeat = chunk.min(n - chunks.runs) as u32;
        let r = run(ebpf, frame, repeat)?;
        ensure!(r.return_value == 3, "{size}-byte matched frame: verdict {} (want XDP_TX)", r.return_value);
        chunks.add(r.duration.as_nanos() as f64, repeat);
        drained += ring.drain(usize::MAX, |_| ()) as u64;
    }
    let done = chunks.runs;
    ensure!(drained == done, "{size}-byte matched frame: {drained} records for {done} runs (ring drops?)");
    Ok(chunks)
}

fn run(ebpf: &mut aya::Ebpf, frame: &[u8], repeat: u32) -> Result<aya::programs::TestRunResult> {
    let program = relay::xdp::xdp_program(ebpf)?;
    let mut data_out = vec![0u8; frame.len() + 256];
    program
        .test_run(TestRunOptions { data_in: Some(frame), data_out: Some(&mut data_out), repeat, ..TestRunOptions::default() })
        .context("BPF_PROG_TEST_RUN")
}

/// (validate ns, pipeline ns) per datum over `n` datums cycled from `datums`.
fn in_memory(datums: &[Vec<u8>], n: u64, dir: &Path) -> Result<(f64, f64)> {
    let schema = integration_tests::datum::example_schema();
    let v = relay::avro::DatumValidator::new(&schema)?;
    let t = Instant::now();
    for i in 0..n as usize {
        v.validate(std::hint::black_box(&datums[i % datums.len()])).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let validate = t.elapsed().as_nanos() as f64 / n as f64;

    let mut pipe = pipeline(dir)?;
    let mut deci = OutBatch::default();
    let src = Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(SRC), 40000)));
    let t = Instant::now();
    let mut now = SystemTime::now();
    for i in 0..n as usize {
        if i % 64 == 0 {
            // As the shell does: one clock read per batch, blocks written when due.
            now = SystemTime::now();
            if pipe.next_deadline().is_some_and(|d| d <= now) {
                pipe.poll(now, &mut deci);
            }
            deci.clear();
        }
        pipe.handle(&datums[i % datums.len()], src, now, &mut deci);
    }
    pipe.finish(&mut deci)?;
    let per = t.elapsed().as_nanos() as f64 / n as f64;
    ensure!(pipe.snapshot().records_written == n, "pipeline wrote {} of {n} records", pipe.stats.records_written);
    Ok((validate, per))
}

/// The XDP program's time per frame in one build: `(size, matched ns, unmatched ns)`.
pub type XdpCost = Vec<(usize, f64, f64)>;

/// Compares builds of the XDP program (object files, e.g. copies of
/// `relay-ebpf/target/bpfel-unknown-none/release/relay-ebpf`): the XDP part of
/// [`measure`] only, each object in turn within each round, so that load on
/// the machine hits all of them alike; the least of `rounds` for each, and
/// within a round the least over chunks of test runs (the kernel reports
/// whole nanoseconds per run, averaged over a chunk).
pub fn compare_objects(objects: &[PathBuf], runs: u64, rounds: u32) -> Result<Vec<XdpCost>> {
    // aya parses the ELF in place: give it 8-byte aligned copies.
    let aligned: Vec<(Vec<u64>, usize)> = objects
        .iter()
        .map(|p| {
            let b = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let mut words = vec![0u64; b.len().div_ceil(8)];
            for (w, chunk) in words.iter_mut().zip(b.chunks(8)) {
                let mut word = [0u8; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                *w = u64::from_ne_bytes(word);
            }
            Ok((words, b.len()))
        })
        .collect::<Result<_>>()?;
    let mut best: Vec<XdpCost> = vec![Vec::new(); objects.len()];
    for _ in 0..rounds {
        for ((words, len), (path, best)) in aligned.iter().zip(objects.iter().zip(&mut best)) {
            // SAFETY: the first `len <= 8 * words.len()` bytes of an initialised u64 buffer.
            let object = unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), *len) };
            let ebpf = relay::xdp::load_object(object).with_context(|| format!("loading {}", path.display()))?;
            let got = xdp_only(ebpf, runs)?;
            if best.is_empty() {
                *best = got;
            } else {
                for (b, g) in best.iter_mut().zip(got) {
                    b.1 = b.1.min(g.1);
                    b.2 = b.2.min(g.2);
                }
            }
        }
    }
    Ok(best)
}

/// The XDP part of [`measure`] on a loaded program: rings drained without the pipeline.
fn xdp_only(mut ebpf: aya::Ebpf, runs: u64) -> Result<XdpCost> {
    let (_maps, mut ring2, _ring3) = looped_channels(&mut ebpf)?;
    let mut out = Vec::new();
    for &size in &SIZES {
        let n = if size > 1000 { runs / 4 } else { runs };
        let payload = datum::of_size(1, datum::now_ns(), size);
        let matched = frame(DST, PORT, &payload);
        let prog_ns = looped_runs(&mut ebpf, &mut ring2, &matched, size, n)?.least();
        let mut unmatched_ns = f64::MAX;
        for _ in 0..10 {
            let unmatched = run(&mut ebpf, &frame(DST, 5353, &payload), (n / 10) as u32)?;
            ensure!(unmatched.return_value == 2, "unmatched frame: verdict {} (want XDP_PASS)", unmatched.return_value);
            unmatched_ns = unmatched_ns.min(unmatched.duration.as_nanos() as f64);
        }
        out.push((size, prog_ns, unmatched_ns));
    }
    Ok(out)
}
