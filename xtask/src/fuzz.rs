//! `cargo xtask fuzz`: the cargo-fuzz targets in `fuzz/`, provisioned and
//! run one after another, each for a fixed time.
//!
//! Provisioning: a nightly toolchain (sanitizers need it) and `cargo-fuzz`,
//! installed only when missing. Each target starts from its seed corpus
//! (`fuzz/corpus/<target>/`, in the repository, never written to) plus its
//! working corpus (`fuzz/work/<target>/`, ignored by git, kept between runs
//! so longer fuzzing builds on earlier runs); libFuzzer's output goes to
//! `fuzz/work/<target>.log`. A crashing input lands in
//! `fuzz/artifacts/<target>/`, is named in the summary, and fails the run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::{root, run_cmd};

/// Every target, in the order they run.
pub const TARGETS: [&str; 4] = ["validate_datum", "config_load", "frame", "decimate"];

/// Seconds per target when the test suite runs them.
const BRIEF_SECONDS: u64 = 10;

/// Longest a single input may take before libFuzzer calls it a hang.
const TIMEOUT_SECONDS: u64 = 10;

/// Runs every target for a few seconds (for the test suite).
pub fn run_all_briefly() -> Result<()> {
    run(BRIEF_SECONDS, None)
}

/// Runs `target` (every target when `None`) for `seconds` each; fails when
/// any of them finds a crash, naming the crashing inputs.
pub fn run(seconds: u64, target: Option<&str>) -> Result<()> {
    let targets: Vec<&str> = match target {
        Some(t) if TARGETS.contains(&t) => vec![t],
        Some(t) => bail!("no fuzz target {t:?} (targets: {})", TARGETS.join(", ")),
        None => TARGETS.to_vec(),
    };
    crate::ebpf::ensure_nightly()?;
    ensure_cargo_fuzz()?;

    println!(
        "xtask: building fuzz targets ({}) with nightly and ASan",
        targets.join(", ")
    );
    let mut build = cargo_fuzz();
    build.arg("build").args(fuzz_dir_arg());
    if let [t] = targets[..] {
        build.arg(t);
    }
    run_cmd(&mut build).context("building the fuzz targets")?;

    let mut crashes = Vec::new();
    for t in targets {
        let report = run_target(t, seconds)?;
        println!("xtask: fuzz {t}: {}", report.summary());
        if let Some(input) = report.crash {
            crashes.push((t, input));
        }
    }
    if !crashes.is_empty() {
        let list: Vec<String> = crashes
            .iter()
            .map(|(t, p)| {
                format!(
                    "  {t}: reproduce with `cargo +nightly fuzz run --fuzz-dir fuzz {t} {}`",
                    p.display()
                )
            })
            .collect();
        bail!(
            "fuzzing found {} crash(es):\n{}",
            crashes.len(),
            list.join("\n")
        );
    }
    Ok(())
}

/// What one target's run did.
struct Report {
    runs: Option<u64>,
    per_second: Option<u64>,
    corpus: usize,
    /// The crashing input, when libFuzzer wrote one.
    crash: Option<PathBuf>,
}

impl Report {
    fn summary(&self) -> String {
        let runs = self
            .runs
            .map_or("? runs".to_string(), |r| format!("{r} runs"));
        let rate = self
            .per_second
            .map_or(String::new(), |r| format!(" ({r}/s)"));
        let verdict = match &self.crash {
            Some(p) => format!("CRASH, input saved at {}", p.display()),
            None => "no crash".to_string(),
        };
        format!("{runs}{rate}, corpus {} inputs: {verdict}", self.corpus)
    }
}

fn run_target(target: &str, seconds: u64) -> Result<Report> {
    let fuzz = root().join("fuzz");
    let seeds = fuzz.join("corpus").join(target);
    let work = fuzz.join("work").join(target);
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let log_path = fuzz.join("work").join(format!("{target}.log"));
    let log =
        fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;

    println!(
        "xtask: fuzzing {target} for {seconds} s (log: {})",
        log_path.display()
    );
    let mut cmd = cargo_fuzz();
    cmd.arg("run").args(fuzz_dir_arg()).arg(target).arg(&work);
    if seeds.is_dir() {
        // libFuzzer adds new inputs to the first directory only.
        cmd.arg(&seeds);
    }
    cmd.arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={TIMEOUT_SECONDS}"))
        .arg("-print_final_stats=1");
    let dict = fuzz.join("dicts").join(format!("{target}.dict"));
    if dict.is_file() {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    cmd.stdout(log.try_clone()?).stderr(log);
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    // The config_load target's scratch project roots (one per process).
    let _ = fs::remove_dir_all(std::env::temp_dir().join("speeddata-fuzz-config"));

    let text =
        fs::read_to_string(&log_path).with_context(|| format!("reading {}", log_path.display()))?;
    let crash = crash_input(&text);
    if !status.success() && crash.is_none() {
        bail!(
            "fuzzing {target} failed ({status}) without a crashing input:\n{}",
            tail(&text, 40)
        );
    }
    if crash.is_some() {
        println!("xtask: fuzz {target} crashed:\n{}", failure(&text));
    }
    Ok(Report {
        runs: stat(&text, "stat::number_of_executed_units:").or_else(|| done_runs(&text)),
        per_second: stat(&text, "stat::average_exec_per_sec:"),
        corpus: count_files(&work) + count_files(&seeds),
        crash,
    })
}

/// `cargo fuzz` under nightly, from the workspace root.
fn cargo_fuzz() -> Command {
    let mut c = Command::new("rustup");
    c.args(["run", "nightly", "cargo", "fuzz"])
        .current_dir(root())
        .env_remove("RUSTUP_TOOLCHAIN")
        // The fuzz targets never load the XDP object: do not embed (or
        // rebuild for) whatever object happens to exist.
        .env("SPEEDDATA_EBPF_OBJ", "none");
    c
}

fn fuzz_dir_arg() -> [&'static str; 2] {
    ["--fuzz-dir", "fuzz"]
}


fn ensure_cargo_fuzz() -> Result<()> {
    let present = Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    println!("xtask: installing cargo-fuzz");
    run_cmd(
        Command::new("cargo")
            .args(["install", "cargo-fuzz", "--locked"])
            .env_remove("RUSTUP_TOOLCHAIN"),
    )
    .context("installing cargo-fuzz; run `cargo install cargo-fuzz --locked` by hand to see why")
}

/// The input libFuzzer saved for a crash, leak, timeout or OOM.
fn crash_input(log: &str) -> Option<PathBuf> {
    log.lines()
        .filter_map(|l| l.split_once("Test unit written to "))
        .map(|(_, p)| PathBuf::from(p.trim()))
        .next_back()
        .map(|p| if p.is_relative() { root().join(p) } else { p })
}

/// The last value of a `-print_final_stats` line.
fn stat(log: &str, key: &str) -> Option<u64> {
    log.lines()
        .filter_map(|l| l.strip_prefix(key))
        .filter_map(|v| v.trim().parse().ok())
        .next_back()
}

/// `Done 1234 runs in 10 second(s)`.
fn done_runs(log: &str) -> Option<u64> {
    log.lines()
        .filter_map(|l| l.strip_prefix("Done "))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .next_back()
}

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .count()
        })
        .unwrap_or(0)
}

/// The part of a log that says what failed: from the panic or sanitizer
/// report on, or the end of the log.
fn failure(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let markers = ["panicked at", "==ERROR:", "ERROR: libFuzzer", "SUMMARY:"];
    match lines
        .iter()
        .position(|l| markers.iter().any(|m| l.contains(m)))
    {
        Some(start) => lines[start..lines.len().min(start + 40)].join("\n"),
        None => tail(log, 40),
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRASH_LOG: &str = "\
thread '<unnamed>' panicked at fuzz_targets/frame.rs:10:5:
==1234== ERROR: libFuzzer: deadly signal
MS: 1 ChangeBit-; base unit: 0000
artifact_prefix='/w/fuzz/artifacts/frame/'; Test unit written to /w/fuzz/artifacts/frame/crash-abcd
stat::number_of_executed_units: 5321
stat::average_exec_per_sec:     1773
";

    #[test]
    fn parse_crash_log() {
        assert_eq!(
            crash_input(CRASH_LOG),
            Some(PathBuf::from("/w/fuzz/artifacts/frame/crash-abcd"))
        );
        assert_eq!(
            stat(CRASH_LOG, "stat::number_of_executed_units:"),
            Some(5321)
        );
        assert_eq!(stat(CRASH_LOG, "stat::average_exec_per_sec:"), Some(1773));
        assert!(
            failure(CRASH_LOG).starts_with("thread '<unnamed>' panicked at fuzz_targets/frame.rs")
        );
    }

    #[test]
    fn parse_clean_log() {
        let log = "#4096\tpulse  cov: 10 ft: 20\nDone 40960 runs in 10 second(s)\n";
        assert_eq!(crash_input(log), None);
        assert_eq!(done_runs(log), Some(40960));
    }
}
