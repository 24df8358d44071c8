//! `speeddata-xdp status`: per-channel counters from the channels' `stats.json`.

use std::path::PathBuf;

use anyhow::Result;

use crate::channel::stats::ChannelStats;

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// A directory holding relay.yaml + global.yaml, or one YAML file.
    #[arg(long, default_value = "config")]
    pub config: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn status(args: StatusArgs) -> Result<()> {
    let cfg = crate::config::load(&args.config)?;
    let mut rows = Vec::new();
    for ch in &cfg.channels {
        let path = crate::channel::channel_dir(&cfg.storage, &ch.name).join("stats.json");
        rows.push((ch.name.clone(), ChannelStats::read(&path).ok()));
    }
    if args.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(name, s)| serde_json::json!({ "channel": name, "stats": s }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<16} {:>6} {:>12} {:>12} {:>10} {:>9} {:>12} {:>12}  current file",
        "channel", "input", "in", "full-rate", "decimated", "malformed", "records", "bytes"
    );
    for (name, s) in rows {
        match s {
            Some(s) => println!(
                "{:<16} {:>6} {:>12} {:>12} {:>10} {:>9} {:>12} {:>12}  {}",
                name,
                s.input,
                s.datagrams_in,
                s.full_rate_out,
                s.decimated_out,
                s.malformed,
                s.records_written,
                s.bytes_written,
                s.current_file.map(|p| p.display().to_string()).unwrap_or_default()
            ),
            None => println!("{name:<16} (no stats yet: not running, or not started since the last clean)"),
        }
    }
    Ok(())
}
