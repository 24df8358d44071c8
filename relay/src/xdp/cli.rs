//! `attach`, `detach` (placeholder until the XDP module lands).
use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct AttachArgs {
    #[arg(long)]
    pub iface: String,
}
#[derive(clap::Args, Debug)]
pub struct DetachArgs {
    #[arg(long)]
    pub iface: String,
}
pub fn attach(_a: AttachArgs) -> Result<()> {
    anyhow::bail!("XDP support is not built yet")
}
pub fn detach(_a: DetachArgs) -> Result<()> {
    anyhow::bail!("XDP support is not built yet")
}
