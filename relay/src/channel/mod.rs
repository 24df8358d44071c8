//! The channel process: one per channel, one thread waiting in `epoll` (see
//! `shell.rs` for why not a tokio runtime). It is the only code that touches
//! untrusted payload bytes.

pub mod decimate;
pub mod drain_pacer;
pub mod out_batch;
pub mod pipeline;
pub mod quarantine;
pub mod ratelimit;
pub mod ring_input;
pub mod socket_io;
pub mod stats;

mod shell;
mod stop_signals;
mod wake_timer;

use std::path::PathBuf;

use anyhow::{Context, Result};

#[derive(clap::Args, Debug)]
pub struct ChannelArgs {
    /// A directory holding relay.yaml + global.yaml, or one YAML file.
    #[arg(long, default_value = "config")]
    pub config: PathBuf,
    /// The channel to run (its `name` in relay.yaml).
    #[arg(long)]
    pub name: String,
    /// Read the channel's resolved settings as JSON ([`ChannelSpec`]) from
    /// standard input instead of the config (how `run` starts channels).
    #[arg(long)]
    pub spec_stdin: bool,
    /// Use the already bound UDP socket at this fd (as `run` hands it down)
    /// instead of binding the channel's port.
    #[arg(long)]
    pub input_fd: Option<i32>,
    /// XDP mode: the channel's ring buffer map at this fd (handed down by `run`).
    #[arg(long)]
    pub ring_fd: Option<i32>,
}

/// Everything one channel process needs: its channel and the shared settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChannelSpec {
    pub channel: crate::config::ChannelConfig,
    pub storage: crate::config::StorageConfig,
    pub network: crate::config::NetworkConfig,
}

impl ChannelSpec {
    pub fn new(cfg: &crate::config::Config, ch: &crate::config::ChannelConfig) -> ChannelSpec {
        ChannelSpec { channel: ch.clone(), storage: cfg.storage.clone(), network: cfg.network.clone() }
    }
}

pub fn run(args: ChannelArgs) -> Result<()> {
    // First: every thread started from here on inherits the blocked mask.
    let stop = stop_signals::StopSignals::block().context("setting up SIGTERM/SIGINT for the channel")?;
    let spec = if args.spec_stdin {
        let spec: ChannelSpec = serde_json::from_reader(std::io::stdin().lock()).context("reading the channel spec from stdin")?;
        anyhow::ensure!(spec.channel.name == args.name, "the spec on stdin is for channel {:?}, not {:?}", spec.channel.name, args.name);
        spec
    } else {
        let cfg = crate::config::load(&args.config)?;
        let Some(ch) = cfg.channels.iter().find(|c| c.name == args.name) else {
            let names: Vec<_> = cfg.channels.iter().map(|c| c.name.as_str()).collect();
            anyhow::bail!("no channel named {:?} in {} (channels: {})", args.name, cfg.source.display(), names.join(", "));
        };
        ChannelSpec::new(&cfg, ch)
    };
    shell::run(&spec, args.input_fd, args.ring_fd, stop)
}

/// The directory holding a channel's files.
pub fn channel_dir(storage: &crate::config::StorageConfig, name: &str) -> PathBuf {
    storage.avro_path.join(name)
}
