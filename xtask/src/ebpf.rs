//! Provisioning the eBPF toolchain and building `relay-ebpf` (placeholder).
use std::path::PathBuf;

/// Builds the XDP object, provisioning what is missing; returns its path.
pub fn build() -> anyhow::Result<PathBuf> {
    anyhow::bail!("eBPF build not implemented yet")
}

/// Mounts bpffs on /sys/fs/bpf if it is not mounted.
pub fn ensure_bpffs() -> anyhow::Result<()> {
    Ok(())
}
