//! `cargo xtask`: build, run and test speeddata-xdp, provisioning what is
//! missing (eBPF toolchain, bpffs, Python Avro readers) and saying so.

mod bench;
mod cross;
mod ebpf;
mod fuzz;
mod python;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "speeddata-xdp automation")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the XDP object (provisions nightly rust-src and bpf-linker when missing).
    BuildEbpf,
    /// Build the XDP object, then the relay with it embedded (socket-only if the object cannot be built).
    Build,
    /// Build, then run the relay: `cargo xtask run -- --iface eth0` (no args: the demo config in config/).
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build, provision, and run the whole test suite (unit, XDP and end-to-end in network namespaces).
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build, then benchmark the relay against kernel forwarding in namespaces; writes docs/PERFORMANCE.md (as root).
    Bench {
        /// About a minute instead of about five.
        #[arg(long)]
        quick: bool,
        /// Extra arguments for speeddata-bench (`cargo xtask bench -- --help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build, then run the soak as root: the relay in XDP mode at half its zero-loss rate for a bounded
    /// time, files rotated every 3 s and deleted after 20 s; fails on any loss, unreadable file or growth.
    Soak {
        /// Seconds of load.
        #[arg(long, default_value_t = 180)]
        seconds: u64,
        /// Datums/s (default: half the zero-loss rate, measured first).
        #[arg(long)]
        rate: Option<f64>,
        /// The relay's input mode: xdp or socket.
        #[arg(long, default_value = "xdp")]
        mode: String,
    },
    /// Run the unit tests built for 32- and 64-bit ARM (the Raspberry Pi's CPUs) under qemu-user
    /// (part of `test`; provisions the Rust targets, cross gcc and qemu-user).
    Cross,
    /// Run the cargo-fuzz targets (each, or the one named) for N seconds each; fails on a crash.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// One of the targets in fuzz/ (default: all of them, one after another).
        target: Option<String>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::BuildEbpf => {
            let obj = ebpf::build()?;
            println!("xtask: eBPF object at {}", obj.display());
            Ok(())
        }
        Cmd::Build => build(false).map(drop),
        Cmd::Run { args } => run(args),
        Cmd::Test { args } => test(args),
        Cmd::Bench { quick, args } => bench::run(quick, args),
        Cmd::Soak { seconds, rate, mode } => {
            python::ensure_avro_readers()?;
            let mut args = vec!["--soak".to_string(), "--soak-seconds".into(), seconds.to_string(), "--soak-mode".into(), mode];
            if let Some(r) = rate {
                args.extend(["--soak-rate".into(), r.to_string()]);
            }
            bench::run(false, args)
        }
        Cmd::Cross => cross::run(),
        Cmd::Fuzz { seconds, target } => fuzz::run(seconds, target.as_deref()),
    }
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Builds the eBPF object and the relay (release). With `require_xdp`, a
/// failed eBPF build is an error; otherwise the relay is built socket-only.
fn build(require_xdp: bool) -> Result<Built> {
    let obj = match ebpf::build() {
        Ok(obj) => Some(obj),
        Err(e) if require_xdp => return Err(e.context("building the XDP program")),
        Err(e) => {
            eprintln!("xtask: WARNING: building the relay without XDP (socket mode only): {e:#}");
            None
        }
    };
    println!("xtask: building speeddata-xdp (release)");
    let mut cargo = cargo();
    cargo.args(["build", "--release", "-p", "speeddata-xdp"]);
    if let Some(obj) = &obj {
        cargo.env("SPEEDDATA_EBPF_OBJ", obj);
    }
    run_cmd(&mut cargo)?;
    Ok(Built { bin: root().join("target/release/speeddata-xdp"), ebpf: obj })
}

struct Built {
    bin: PathBuf,
    /// The XDP object embedded in `bin`, if it could be built.
    ebpf: Option<PathBuf>,
}

fn run(mut args: Vec<String>) -> Result<()> {
    let bin = build(false)?.bin;
    if is_root() {
        ebpf::ensure_bpffs()?;
    }
    // Without an interface this is the demo: the example config, and a demo
    // source sending 100 datums/s to the example channel over loopback.
    let demo = !args.iter().any(|a| a == "--iface" || a.starts_with("--iface="));
    if !args.iter().any(|a| a == "--config" || a.starts_with("--config=")) {
        args.extend(["--config".into(), root().join("config").display().to_string()]);
    }
    let mut source = None;
    if demo {
        println!("xtask: demo: no --iface given, so a demo source sends to 127.0.0.1:26000 (see `speeddata-xdp status`)");
        let schema = root().join("config/agents/example.avsc");
        source = Some(
            Command::new(&bin)
                .args(["demo-source", "--to", "127.0.0.1:26000", "--rate", "100", "--schema"])
                .arg(schema)
                .spawn()
                .context("starting the demo source")?,
        );
    }
    println!("xtask: running {} run {}", bin.display(), args.join(" "));
    let status = Command::new(&bin).arg("run").args(&args).current_dir(root()).status();
    if let Some(mut s) = source {
        let _ = s.kill();
        let _ = s.wait();
    }
    let status = status.context("starting speeddata-xdp")?;
    if !status.success() {
        bail!("speeddata-xdp exited with {status}");
    }
    Ok(())
}

fn test(args: Vec<String>) -> Result<()> {
    if !is_root() {
        bail!("the test suite creates network namespaces and attaches XDP programs: run it as root");
    }
    ensure_tool("ip", "iproute2")?;
    ensure_tool("ethtool", "ethtool")?;
    python::ensure_avro_readers()?;
    ebpf::ensure_bpffs()?;
    let built = build(true)?;
    println!("xtask: running the test suite");
    let mut cargo = cargo();
    // The same SPEEDDATA_EBPF_OBJ as the build, so cargo does not rebuild the relay.
    cargo.args(["test", "--release", "--workspace", "--lib", "--bins", "--tests"]).env("SPEEDDATA_BIN", &built.bin).args(&args);
    if let Some(obj) = &built.ebpf {
        cargo.env("SPEEDDATA_EBPF_OBJ", obj);
    }
    // A filtered run (`cargo xtask test -- NAME`) is for one test, not the
    // fuzzers. They go first so the run ends with cargo's test summary.
    if args.is_empty() {
        println!("xtask: running each fuzz target briefly");
        fuzz::run_all_briefly()?;
        cross::run()?;
    }
    run_cmd(&mut cargo)
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

pub fn run_cmd(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// Installs a Debian package when a command is missing.
pub fn ensure_tool(cmd: &str, package: &str) -> Result<()> {
    if Command::new("sh").args(["-c", &format!("command -v {cmd}")]).output()?.status.success() {
        return Ok(());
    }
    println!("xtask: installing {package} (for `{cmd}`)");
    apt_install(&[package])
}

/// Whether dpkg has `package` installed.
pub fn deb_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

pub fn apt_install(packages: &[&str]) -> Result<()> {
    run_cmd(Command::new("apt-get").args(["update", "-qq"]))?;
    run_cmd(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}
