//! The channel process: one per channel, a single-threaded tokio runtime.
//! It is the only code that touches untrusted payload bytes.

pub mod decimate;
pub mod out_batch;
pub mod pipeline;
pub mod quarantine;
pub mod ratelimit;
pub mod ring_input;
pub mod socket_io;
pub mod stats;

mod shell;

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
    /// Use the already bound UDP socket at this fd (as `run` hands it down)
    /// instead of binding the channel's port.
    #[arg(long)]
    pub input_fd: Option<i32>,
    /// XDP mode: the channel's ring buffer map at this fd (handed down by `run`).
    #[arg(long)]
    pub ring_fd: Option<i32>,
}

pub fn run(args: ChannelArgs) -> Result<()> {
    let cfg = crate::config::load(&args.config)?;
    let Some(ch) = cfg.channels.iter().find(|c| c.name == args.name) else {
        let names: Vec<_> = cfg.channels.iter().map(|c| c.name.as_str()).collect();
        anyhow::bail!("no channel named {:?} in {} (channels: {})", args.name, cfg.source.display(), names.join(", "));
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(shell::run(&cfg, ch, args.input_fd, args.ring_fd))
}

/// The directory holding a channel's files.
pub fn channel_dir(storage: &crate::config::StorageConfig, name: &str) -> PathBuf {
    storage.avro_path.join(name)
}
