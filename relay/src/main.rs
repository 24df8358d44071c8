//! `speeddata-xdp`: the relay's command line. Thin: every command lives in the library.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "speeddata-xdp", version, about = "UDP telemetry relay (XDP fast path, socket fallback)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay: one channel process per configured channel.
    Run(relay::supervisor::RunArgs),
    /// Run one channel (spawned by `run`; usable alone for debugging).
    Channel(relay::channel::ChannelArgs),
    /// Load the configuration, print what it resolves to, and exit.
    Check {
        /// A directory holding relay.yaml + global.yaml, or one YAML file.
        #[arg(long, default_value = "config")]
        config: PathBuf,
    },
    /// Load the XDP program on an interface and pin it under /sys/fs/bpf/speeddata/IF@nsINODE/.
    Attach(relay::xdp::cli::AttachArgs),
    /// Remove the pinned XDP program from an interface (idempotent).
    Detach(relay::xdp::cli::DetachArgs),
    /// Print per-channel counters.
    Status(relay::supervisor::StatusArgs),
    /// Send demo datums of a schema to a channel port (a stand-in source).
    DemoSource(relay::demo::DemoArgs),
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,apache_avro=error"))
        .format_timestamp_millis()
        .init();
    match Cli::parse().command {
        Command::Run(args) => relay::supervisor::run(args),
        Command::Channel(args) => relay::channel::run(args),
        Command::Check { config } => {
            let cfg = relay::config::load(&config)?;
            println!("{}", relay::config::describe(&cfg));
            Ok(())
        }
        Command::Attach(args) => relay::xdp::cli::attach(args),
        Command::Detach(args) => relay::xdp::cli::detach(args),
        Command::Status(args) => relay::supervisor::status(args),
        Command::DemoSource(args) => relay::demo::run(args),
    }
}
