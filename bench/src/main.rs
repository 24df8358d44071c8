//! `speeddata-bench` (run it with `cargo xtask bench`, which builds the relay
//! with its XDP program and runs this as root): the relay against the
//! machine's own ceiling, in network namespaces created and deleted here.
//!
//! One invocation: the cost per datum (XDP program with BPF_PROG_TEST_RUN,
//! channel pipeline in process), then on one three-host topology: the two
//! baselines (generator into `XDP_DROP`, kernel IP forwarding), XDP and
//! socket mode stepped through offered rates relative to kernel forwarding,
//! and XDP mode with 1, 8 and 32 channels at one total rate, interleaved in
//! rounds. Prints a table and writes it, with a loss-vs-rate plot, into
//! docs/PERFORMANCE.md.
//!
//! Never part of `cargo test`: it needs root, takes minutes and loads the
//! machine.

mod config;
mod cost;
mod datum;
mod generator;
mod ocf_walk;
mod packet_tx;
mod path_drops;
mod procfs;
mod receiver;
mod report;
mod runs;
mod soak;
mod xdp_drop;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

use generator::Generator;
use runs::{Bench, Kind};

#[derive(Parser)]
#[command(about = "speeddata-xdp benchmark (run as root, through `cargo xtask bench`)")]
struct Args {
    /// Under a minute: shorter steps and fewer rates.
    #[arg(long)]
    quick: bool,
    /// Seconds of traffic per step (default 3; 1.5 with --quick).
    #[arg(long)]
    step: Option<f64>,
    /// Offered rates, as fractions of the measured kernel forwarding rate.
    #[arg(long, value_delimiter = ',')]
    rates: Option<Vec<f64>>,
    /// Test runs (and datums) per size for the cost per datum.
    #[arg(long)]
    cost_runs: Option<u64>,
    /// Rounds of --xdp-object comparisons (the least of them counts).
    #[arg(long, default_value_t = 3)]
    cost_rounds: u32,
    /// Rounds of the 1/8/32-channel comparison, each running the three one
    /// after another (default 3; 1 with --quick). The rounds' median counts.
    #[arg(long)]
    multi_rounds: Option<u32>,
    /// Directory for PERFORMANCE.md and loss-vs-rate.svg (default: the workspace's docs/).
    #[arg(long)]
    docs: Option<PathBuf>,
    /// Print the results only; leave docs/ alone.
    #[arg(long)]
    no_write: bool,
    /// Measure and print only the cost per datum, then exit (no topology runs, docs untouched).
    #[arg(long)]
    cost_only: bool,
    /// Compare builds of the XDP program: only its time per frame, for each
    /// object file given (repeatable), interleaved, least of --cost-rounds rounds; then exit.
    #[arg(long)]
    xdp_object: Vec<PathBuf>,
    /// How the generator sends, in every run (the other one's two ceilings are printed for comparison).
    #[arg(long, value_enum, default_value_t = Generator::PacketMmap)]
    generator: Generator,
    /// Run the soak instead (`cargo xtask soak`): see soak.rs.
    #[arg(long)]
    soak: bool,
    /// Soak: seconds of load.
    #[arg(long, default_value_t = 180.0)]
    soak_seconds: f64,
    /// Soak: datums/s (default: half the zero-loss rate measured first).
    #[arg(long)]
    soak_rate: Option<f64>,
    /// Soak: the relay's input mode (xdp or socket).
    #[arg(long, default_value = "xdp")]
    soak_mode: String,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Ctrl-C / SIGTERM end the bench after the current (bounded) step, through
/// the normal error path, so the drop guards delete the namespaces.
fn check_interrupt() -> Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    Ok(())
}

/// `run` with the generator not chosen, for comparison.
fn with_other_generator(b: &mut Bench, run: impl FnOnce(&mut Bench) -> Result<runs::Row>) -> Result<runs::Row> {
    check_interrupt()?;
    b.generator = b.generator.other();
    let row = run(b);
    b.generator = b.generator.other();
    row
}

/// The two ceilings of each generator, `[drop, fwd]` rows, for printing.
fn generator_ceilings(chosen: Generator, rows: [&runs::Row; 2], other: [&runs::Row; 2]) -> String {
    let mut text = String::from("Generators, as fast as each goes (received/s):");
    for (g, [drop, fwd]) in [(chosen, rows), (chosen.other(), other)] {
        text += &format!(
            "\n  {:<12} xdp-drop {:>9.0}  kernel-fwd {:>9.0} (offered {:.0})",
            g.label(),
            drop.delivered_rate(),
            fwd.delivered_rate(),
            fwd.offered()
        );
    }
    text
}

fn main() -> Result<()> {
    let args = Args::parse();
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let step = Duration::from_secs_f64(args.step.unwrap_or(if args.quick { 1.5 } else { 3.0 }));
    let fractions = args.rates.clone().unwrap_or_else(|| {
        if args.quick {
            vec![0.5, 1.0]
        } else {
            vec![0.25, 0.5, 0.75, 1.0, 1.25]
        }
    });
    let multi_fraction = 0.5;
    let bin = integration_tests::relay::binary();
    if args.soak {
        let kind = match args.soak_mode.as_str() {
            "xdp" => Kind::Xdp,
            "socket" => Kind::Socket,
            m => anyhow::bail!("--soak-mode {m}: xdp or socket"),
        };
        return soak::main(bin, kind, args.soak_seconds, args.soak_rate);
    }
    let started = Instant::now();
    let scratch = integration_tests::relay::tempdir();

    // The least of three rounds: other work on the machine only ever adds time.
    let runs = args.cost_runs.unwrap_or(if args.quick { 200_000 } else { 1_000_000 });
    if !args.xdp_object.is_empty() {
        let costs = cost::compare_objects(&args.xdp_object, runs, args.cost_rounds)?;
        println!("| object | datagram bytes | XDP matched ns | XDP unmatched ns |\n|---|---|---|---|");
        for (path, cost) in args.xdp_object.iter().zip(costs) {
            for (size, matched, unmatched) in cost {
                println!("| {} | {size} | {matched:.1} | {unmatched:.1} |", path.display());
            }
        }
        return Ok(());
    }
    println!("bench: cost per datum (BPF_PROG_TEST_RUN, pipeline in process)");
    let mut costs = cost::measure(runs, &scratch.path().join("round0"))?;
    let mut cost_round = |round: u32| -> Result<()> {
        let again = cost::measure(runs, &scratch.path().join(format!("round{round}")))?;
        for (c, a) in costs.iter_mut().zip(again) {
            c.min_with(&a);
        }
        Ok(())
    };
    check_interrupt()?;
    if args.cost_only {
        cost_round(1)?;
        cost_round(2)?;
        // Only the cost table of a report without topology rows.
        let report = report::Report { rows: &[], costs: &costs, forward: 0.0, multi_rate: 0.0, command: String::new(), step: 0.0 };
        println!("Cost per datum:\n{}", report.cost_table());
        println!("bench: done in {:.0} s", started.elapsed().as_secs_f64());
        return Ok(());
    }

    let mut b = Bench::new(bin, step)?;
    b.generator = args.generator;
    let mut rows = Vec::new();
    let mut push = |row: runs::Row| {
        println!(
            "bench: {:<10} {:>2} ch  offered {:>9.0}/s  received {:>9.0}/s  loss {:>6.2} %{}",
            row.kind.label(),
            row.channels,
            row.offered(),
            row.delivered_rate(),
            row.loss_pct(),
            row.round.map(|r| format!("  (comparison round {r})")).unwrap_or_default()
        );
        if let Some(c) = row.control {
            println!(
                "bench:                   control (kernel-forwarded alongside): {} of {} received, p99 {:.0} µs against the relay's {:.0} µs",
                c.delivered,
                c.sent,
                c.p99_ns.unwrap_or(0) as f64 / 1e3,
                row.p99_ns.unwrap_or(0) as f64 / 1e3
            );
        }
        rows.push(row);
    };
    // Each ceiling with both generators, back to back so both see about the
    // same load on the machine; the other generator's are only printed.
    let drop0 = b.drop_baseline(None)?;
    let other_drop = with_other_generator(&mut b, |b| b.drop_baseline(None))?;
    check_interrupt()?;
    let fwd = b.forward_baseline(None)?;
    let other_fwd = with_other_generator(&mut b, |b| b.forward_baseline(None))?;
    let ceilings = generator_ceilings(b.generator, [&drop0, &fwd], [&other_drop, &other_fwd]);
    let forward = fwd.delivered_rate();
    push(drop0);
    push(fwd);
    if forward < 1000.0 {
        bail!("kernel forwarding delivered {forward:.0} datums/s: the topology is broken");
    }
    // The latency targets are read at the comparison's rate: the step
    // nearest it carries a kernel-forwarded control flow (`runs::Control`).
    let paired = fractions.iter().copied().min_by(|a, b| (a - multi_fraction).abs().total_cmp(&(b - multi_fraction).abs()));
    for &f in &fractions {
        for kind in [Kind::Forward, Kind::Xdp, Kind::Socket] {
            check_interrupt()?;
            let rate = Some(f * forward);
            let row = match kind {
                Kind::Forward => b.forward_baseline(rate)?,
                _ => b.relay_run(kind, 1, rate, paired == Some(f))?,
            };
            push(row);
        }
    }
    // The other two cost rounds in the middle and at the end of the run,
    // not back to back with the first: this VM slows down in stretches of
    // seconds, which three consecutive rounds tend to share.
    println!("bench: cost per datum, second round");
    cost_round(1)?;
    // 1, 8 and 32 channels side by side in each round: the VM's slow
    // stretches last seconds, so runs a minute apart (the stepped 1-channel
    // run and a 32-channel one) can differ by 1.5 × in CPU per datum alone.
    let multi_rate = multi_fraction * forward;
    for round in 1..=args.multi_rounds.unwrap_or(if args.quick { 1 } else { 3 }) {
        for n in [1, 8, 32] {
            check_interrupt()?;
            let mut row = b.relay_run(Kind::Xdp, n, Some(multi_rate), false)?;
            row.round = Some(round);
            push(row);
        }
    }
    drop(b);
    check_interrupt()?;
    println!("bench: cost per datum, third round");
    cost_round(2)?;

    let mut command = String::from("cargo xtask bench");
    for a in std::env::args().skip(1) {
        command += " ";
        command += &a;
    }
    let report = report::Report { rows: &rows, costs: &costs, forward, multi_rate, command, step: step.as_secs_f64() };
    println!("\n{}", report.text_table());
    println!("{}", report.summary());
    println!("Cost per datum:\n{}", report.cost_table());
    println!("Targets:\n{}", report.targets());
    println!("{ceilings}");
    println!("bench: done in {:.0} s", started.elapsed().as_secs_f64());
    if !args.no_write {
        let docs = args.docs.unwrap_or_else(|| integration_tests::relay::workspace_root().join("docs"));
        std::fs::create_dir_all(&docs).with_context(|| format!("creating {}", docs.display()))?;
        let path = docs.join("PERFORMANCE.md");
        let old = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Performance\n".into());
        std::fs::write(&path, report::splice(&old, &report.markdown())).with_context(|| format!("writing {}", path.display()))?;
        let svg = docs.join("loss-vs-rate.svg");
        std::fs::write(&svg, report.svg()).with_context(|| format!("writing {}", svg.display()))?;
        println!("bench: wrote {} and {}", path.display(), svg.display());
    }
    Ok(())
}
