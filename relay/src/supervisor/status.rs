//! `speeddata-xdp status`: per-channel counters from the running relay's control
//! API, or from the files the channels last published when it is not running.

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
    /// The running relay's control API.
    #[arg(long, default_value = crate::api::DEFAULT_ADDR)]
    pub api: std::net::SocketAddr,
    /// Also print the XDP program's counters on this interface.
    #[arg(long)]
    pub iface: Option<String>,
}

/// A channel's row: its counters (with the kernel's, in XDP mode).
struct Row {
    name: String,
    stats: Option<ChannelStats>,
}

pub fn status(args: StatusArgs) -> Result<()> {
    let rows = match from_api(args.api) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("(control API at {} not reachable: {e}; reading the channels' files under the config's storage path)", args.api);
            from_files(&args.config)?
        }
    };
    print(&rows, args.json)?;
    if let Some(iface) = args.iface {
        println!();
        crate::xdp::cli::status(crate::xdp::cli::XdpStatusArgs { iface })?;
    }
    Ok(())
}

/// Every channel the running relay knows (YAML and API), with its counters.
fn from_api(addr: std::net::SocketAddr) -> Result<Vec<Row>> {
    use crate::api::client::request;
    let (code, body) = request(addr, "GET", "/api/v1/channels", None)?;
    anyhow::ensure!(code == 200, "GET /api/v1/channels answered {code}");
    let list: serde_json::Value = serde_json::from_str(&body)?;
    let mut rows = Vec::new();
    for ch in list["channels"].as_array().into_iter().flatten() {
        let name = ch["name"].as_str().unwrap_or_default().to_string();
        let (code, body) = request(addr, "GET", &format!("/api/v1/channels/{name}/stats"), None)?;
        let v: serde_json::Value = if code == 200 { serde_json::from_str(&body)? } else { serde_json::Value::Null };
        let stats = serde_json::from_value(v["stats"].clone()).ok();
        rows.push(Row { name, stats });
    }
    Ok(rows)
}

/// Without a running API: the counters the channels last published.
fn from_files(config: &std::path::Path) -> Result<Vec<Row>> {
    let cfg = crate::config::load(config)?;
    Ok(cfg
        .channels
        .iter()
        .map(|ch| {
            let dir = crate::channel::channel_dir(&cfg.storage, &ch.name);
            Row { name: ch.name.clone(), stats: ChannelStats::read_dir(&dir).ok() }
        })
        .collect())
}

fn print(rows: &[Row], json: bool) -> Result<()> {
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| serde_json::json!({ "channel": r.name, "stats": r.stats }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<16} {:>6} {:>12} {:>12} {:>10} {:>9} {:>12} {:>12}  current file",
        "channel", "input", "in", "full-rate", "decimated", "malformed", "records", "bytes"
    );
    for Row { name, stats } in rows {
        if let Some(s) = stats.as_ref().filter(|s| s.input == "xdp") {
            println!(
                "{:<16} kernel: {} forwarded, {} ring drops; {} wrong UDP checksums dropped",
                name, s.kernel_forwarded, s.ring_drops, s.bad_udp_checksum
            );
            if s.ring_corrupt > 0 {
                println!("{:<16} {} unreadable ring records skipped", name, s.ring_corrupt);
            }
        }
        match stats.clone() {
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
