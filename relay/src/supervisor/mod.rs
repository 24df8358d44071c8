//! `speeddata-xdp run`: the supervisor. Loads and validates the config (nothing
//! starts on an invalid one), chooses the input mode, and keeps one channel
//! process per channel running, restarting crashed ones with backoff.

pub mod backoff;
mod children;
pub mod spawn;
mod status;

pub use status::{status, StatusArgs};

use std::path::PathBuf;

use anyhow::{Context, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Native XDP, then generic XDP, then sockets.
    Auto,
    /// XDP only: fail with the reason instead of falling back.
    Xdp,
    /// Plain sockets (no privileges needed).
    Socket,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// A directory holding relay.yaml + global.yaml, or one YAML file.
    #[arg(long, default_value = "config")]
    pub config: PathBuf,
    /// The interface sources send to (XDP attaches here).
    #[arg(long)]
    pub iface: Option<String>,
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    pub mode: Mode,
    /// When started as root, channel processes run as this user (they get
    /// their sockets and files from the supervisor). `root` keeps root.
    #[arg(long, default_value = "nobody")]
    pub user: String,
}

pub fn run(args: RunArgs) -> Result<()> {
    let cfg = crate::config::load(&args.config)?;
    let input = choose_input(&args)?;
    log::info!(
        "speeddata-xdp {}: {} channel(s) from {}, input mode {input}",
        env!("CARGO_PKG_VERSION"),
        cfg.channels.len(),
        cfg.source.display()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let identity = if spawn::running_as_root() && args.user != "root" {
        let id = spawn::Identity::lookup(&args.user)?;
        log::info!("channel processes run as {} (uid {}, gid {})", args.user, id.uid, id.gid);
        Some(id)
    } else {
        None
    };
    rt.block_on(children::supervise(&cfg, identity))
}

/// Decides between XDP and sockets, and says in one line which and why.
fn choose_input(args: &RunArgs) -> Result<&'static str> {
    let why_not_xdp = if crate::xdp::embedded_object().is_none() {
        "this binary was built without the XDP program (build with `cargo xtask build`)".to_string()
    } else {
        "the XDP input path is not wired into the channel processes yet".to_string()
    };
    match args.mode {
        Mode::Socket => Ok("socket (asked for with --mode socket)"),
        Mode::Xdp => anyhow::bail!("--mode xdp: cannot use XDP: {why_not_xdp}"),
        Mode::Auto => {
            log::info!("input mode: socket, because {why_not_xdp}");
            Ok("socket")
        }
    }
}
