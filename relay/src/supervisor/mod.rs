//! `speeddata-xdp run`: the supervisor. Loads and validates the config (nothing
//! starts on an invalid one), chooses the input mode, and keeps one channel
//! process per channel running, restarting crashed ones with backoff.

pub mod backoff;
mod children;
mod group_joins;
mod iface_watch;
pub mod control;
mod main_loop;
mod owner;
pub mod spawn;
pub mod xdp_input;
mod status;

pub use owner::DIR as OWNER_DIR;
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
    /// Leave the XDP program attached on exit (the next `run` reuses it).
    #[arg(long)]
    pub keep_attached: bool,
    /// Address of the control API (HTTP/JSON), or `off`.
    #[arg(long, default_value = crate::api::DEFAULT_ADDR)]
    pub api: String,
    /// The durable registry of channels added through the API
    /// (default: `.speeddata/registry.sqlite3` under `storage.avro_path`).
    #[arg(long)]
    pub registry: Option<PathBuf>,
}

/// How datagrams reach the channel processes.
pub enum Input {
    Socket,
    Xdp(xdp_input::XdpInput),
}

pub fn run(args: RunArgs) -> Result<()> {
    let cfg = crate::config::load(&args.config)?;
    log::info!(
        "speeddata-xdp {}: {} channel(s) from {}",
        env!("CARGO_PKG_VERSION"),
        cfg.channels.len(),
        cfg.source.display()
    );
    let identity = if spawn::running_as_root() && args.user != "root" {
        let id = spawn::Identity::lookup(&args.user)?;
        log::info!("channel processes run as {} (uid {}, gid {})", args.user, id.uid, id.gid);
        Some(id)
    } else {
        None
    };
    let input = choose_input(&args)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let api = match args.api.as_str() {
        "off" => None,
        a => Some(a.parse().with_context(|| format!("--api {a}: not an address:port (or `off`)"))?),
    };
    let opts = main_loop::Options { identity, input, keep_attached: args.keep_attached, api, registry: args.registry, iface: args.iface.clone() };
    rt.block_on(main_loop::supervise(cfg, opts))
}

/// Decides between XDP and sockets, and says in one line which and why.
fn choose_input(args: &RunArgs) -> Result<Input> {
    if args.mode == Mode::Socket {
        log::info!("input mode: socket (asked for with --mode socket)");
        return Ok(Input::Socket);
    }
    let why_not = match &args.iface {
        None => "no --iface given".to_string(),
        Some(_) if crate::xdp::embedded_object().is_none() => crate::xdp::NOT_BUILT.to_string(),
        Some(_) if !spawn::running_as_root() => "not running as root (XDP needs CAP_BPF and CAP_NET_ADMIN)".to_string(),
        Some(iface) => match xdp_input::XdpInput::setup(iface, true) {
            Ok(x) => {
                log::info!("input mode: XDP ({}) on {iface}", x.how);
                return Ok(Input::Xdp(x));
            }
            Err(e) => format!("{e:#}"),
        },
    };
    match args.mode {
        Mode::Xdp => anyhow::bail!("--mode xdp: cannot use XDP: {why_not}"),
        _ => {
            log::info!("input mode: socket, because {why_not}");
            Ok(Input::Socket)
        }
    }
}
