//! `attach`, `detach` and the XDP part of `status`.
use anyhow::{Context, Result};

use super::{Counters, Detached, Mode};

#[derive(clap::Args, Debug)]
pub struct AttachArgs {
    /// The interface to attach to (its name in the current network namespace).
    #[arg(long)]
    pub iface: String,
    /// native: in the driver (fastest); skb: generic XDP, works on any interface.
    #[arg(long, value_enum, default_value_t = Mode::Native)]
    pub mode: Mode,
    /// Replace an existing speeddata attachment on the interface.
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Args, Debug)]
pub struct DetachArgs {
    #[arg(long)]
    pub iface: String,
}

#[derive(clap::Args, Debug)]
pub struct XdpStatusArgs {
    /// The interface whose pinned counters to print.
    #[arg(long)]
    pub iface: String,
}

pub fn attach(a: AttachArgs) -> Result<()> {
    let att = super::attach(&a.iface, a.mode, a.force)
        .with_context(|| format!("attaching XDP to {}", a.iface))?;
    println!(
        "{} speeddata XDP program on {} ({} mode), pinned at {}",
        if att.replaced { "replaced the" } else { "attached the" },
        att.iface,
        att.mode,
        att.pin_dir.display()
    );
    Ok(())
}

pub fn detach(a: DetachArgs) -> Result<()> {
    match super::detach(&a.iface).with_context(|| format!("detaching XDP from {}", a.iface))? {
        Detached::Removed { dir } => {
            println!("detached the speeddata XDP program from {} (removed {})", a.iface, dir.display())
        }
        Detached::NotAttached { dir } => {
            println!("no speeddata XDP program on {} (nothing pinned at {}): nothing to do", a.iface, dir.display())
        }
    }
    Ok(())
}

/// The summed per-CPU counters pinned for `iface`.
pub fn counters(iface: &str) -> Result<Counters> {
    super::read_counters(iface).with_context(|| format!("reading the XDP counters of {iface}"))
}

/// Prints `iface`'s XDP counters, one `name: value` line each.
pub fn status(a: XdpStatusArgs) -> Result<()> {
    let counters = counters(&a.iface)?;
    println!("xdp {}:", a.iface);
    for (counter, value) in counters.iter() {
        println!("  {}: {value}", counter.name());
    }
    Ok(())
}
