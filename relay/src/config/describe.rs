//! A human-readable summary of a loaded [`Config`] (`speeddata-xdp check`).

use std::fmt::Write as _;
use std::time::Duration;

use super::defaults;
use super::model::{Algorithm, ChannelConfig, Codec, Config, Retention, Rotation, Window};
use super::schema;

/// What `cfg` resolves to, one fact per line: source, channels (port,
/// schema, groups, decimation, rotation, retention), storage, network.
pub fn describe(cfg: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "config: {}", cfg.source.display());
    let _ = writeln!(out, "channels: {}", cfg.channels.len());
    for channel in &cfg.channels {
        describe_channel(&mut out, channel);
    }
    let s = &cfg.storage;
    let _ = writeln!(out, "storage: {}", s.avro_path.display());
    let _ = writeln!(
        out,
        "  codec {}, flush every {} ms or at {}",
        codec(s.codec),
        s.flush_interval.as_millis(),
        bytes(s.flush_bytes as u64)
    );
    let n = &cfg.network;
    let _ = writeln!(out, "network: bind {}, multicast ttl {}", n.bind, n.ttl);
    let _ = write!(
        out,
        "  egress interface {}, multicast loop {}",
        n.egress_iface.as_deref().unwrap_or("(routing table)"),
        if n.multicast_loop { "on" } else { "off" }
    );
    out
}

fn describe_channel(out: &mut String, c: &ChannelConfig) {
    match c.input_group {
        Some(g) => {
            let _ = writeln!(out, "  {}: udp port {} on multicast group {g}", c.name, c.port);
        }
        None => {
            let _ = writeln!(out, "  {}: udp port {}", c.name, c.port);
        }
    }
    let _ = writeln!(
        out,
        "    schema: {} ({})",
        c.schema_path.display(),
        schema::summary(&c.schema_json)
    );
    let _ = writeln!(out, "    full-rate: {}", c.full_rate);
    let d = &c.decimation;
    if d.enabled {
        let window = match d.window {
            Window::Count(n) => format!("factor {n}"),
            Window::Time(t) => format!("every {} ms", t.as_millis()),
        };
        let time_field = if d.time_field == defaults::TIME_FIELD {
            String::new()
        } else {
            format!(", time field {}", d.time_field)
        };
        let _ = writeln!(
            out,
            "    decimated: {} ({window}, {}{time_field})",
            c.decimated,
            algorithm(d.algorithm)
        );
    } else {
        let _ = writeln!(out, "    decimated: off (group {} unused)", c.decimated);
    }
    let rotation = match c.rotation {
        Rotation::Time(t) => format!("every {}", duration(t)),
        Rotation::Size(b) => format!("at {}", bytes(b)),
    };
    let retention = match c.retention {
        Retention::Ttl(t) => format!("delete after {}", duration(t)),
        Retention::Quota(b) => format!("keep under {}", bytes(b)),
    };
    let _ = writeln!(out, "    rotation: {rotation}");
    let _ = writeln!(out, "    retention: {retention}");
}

fn algorithm(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Downsample => "downsample",
        Algorithm::Average => "average",
        Algorithm::MinMax => "minmax",
        Algorithm::Rms => "rms",
    }
}

fn codec(c: Codec) -> &'static str {
    match c {
        Codec::Null => "null",
        Codec::Deflate => "deflate",
        Codec::Snappy => "snappy",
        Codec::Zstandard => "zstandard",
    }
}

/// `3600 s (1h)`.
fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        return format!("{secs} s");
    }
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (h, rest) = (rest / 3600, rest % 3600);
    let (m, s) = (rest / 60, rest % 60);
    let mut parts = String::new();
    for (n, unit) in [(days, "d"), (h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            let _ = write!(parts, "{n}{unit}");
        }
    }
    format!("{secs} s ({parts})")
}

/// `1048576 bytes (1.0 MiB)`.
fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = b as f64;
    let mut unit = None;
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = Some(u);
    }
    match unit {
        Some(u) => format!("{b} bytes ({value:.1} {u})"),
        None => format!("{b} bytes"),
    }
}
