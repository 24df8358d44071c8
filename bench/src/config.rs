//! The relay's config for a run: `n` channels of the example schema on ports
//! 26000.., all publishing to the same full-rate and decimated groups (so one
//! receiver per group sees the total), archives under `root/data`.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub const FIRST_PORT: u16 = 26000;
pub const FULL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 1), 6000);
pub const DECI: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 2), 6001);
pub const FACTOR: u64 = 10;

pub fn channel_name(i: usize) -> String {
    format!("bench{i:02}")
}

/// Size rotation at 256 MiB and a day's retention: no file turns over in a bench run.
const BENCH_FILES: &str = "rotation:\n  mode: \"size\"\n  threshold: 268435456\n\
                           retention:\n  mode: \"ttl\"\n  value: 86400\n";

/// Writes `root/config/{relay,global}.yaml`; returns the config directory.
pub fn write(root: &Path, channels: usize) -> Result<PathBuf> {
    write_with(root, channels, BENCH_FILES)
}

/// [`write`] with the given `rotation:` and `retention:` YAML.
pub fn write_with(root: &Path, channels: usize, files: &str) -> Result<PathBuf> {
    let cfg = root.join("config");
    std::fs::create_dir_all(cfg.join("agents")).with_context(|| format!("creating {}", cfg.display()))?;
    std::fs::copy(integration_tests::relay::example_schema_path(), cfg.join("agents/example.avsc"))
        .context("copying the example schema")?;
    let mut relay = String::from("channels:\n");
    for i in 0..channels {
        relay += &format!(
            "  - name: \"{}\"\n    port: {}\n    schema: \"config/agents/example.avsc\"\n",
            channel_name(i),
            FIRST_PORT + i as u16
        );
    }
    relay += &format!("decimation:\n  enabled: true\n  factor: {FACTOR}\n  algorithm: \"downsample\"\n{files}");
    std::fs::write(cfg.join("relay.yaml"), relay).context("writing relay.yaml")?;
    std::fs::write(
        cfg.join("global.yaml"),
        format!(
            "multicast:\n  full_rate:\n    address: \"{}\"\n    port: {}\n  decimated:\n    address: \"{}\"\n    port: {}\n\
             storage:\n  avro_path: \"./data\"\n\
             network:\n  egress_iface: \"rout0\"\n  ttl: 4\n",
            FULL.ip(),
            FULL.port(),
            DECI.ip(),
            DECI.port()
        ),
    )
    .context("writing global.yaml")?;
    Ok(cfg)
}
