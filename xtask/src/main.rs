//! `cargo xtask`: build, run and test speeddata-xdp, provisioning what is missing.
mod ebpf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the XDP object (provisions nightly rust-src and bpf-linker when missing).
    BuildEbpf,
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::BuildEbpf => {
            let obj = ebpf::build()?;
            println!("xtask: eBPF object at {}", obj.display());
            Ok(())
        }
    }
}
