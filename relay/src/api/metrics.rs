//! `GET /metrics`: the Prometheus text exposition format (0.0.4). Rates are
//! Prometheus's to compute (`rate(speeddata_channel_datagrams_in_total[1m])`).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::control::{ChannelStatus, ChannelView};
use crate::channel::stats::ChannelStats;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What is known of one channel when the metrics are asked for.
pub struct Sample<'a> {
    pub view: &'a ChannelView,
    pub stats: Option<ChannelStats>,
    /// Bytes under the channel's archive directory, when it has one.
    pub disk_bytes: Option<u64>,
}

/// Renders every channel's metrics, grouped by metric as the format wants.
/// Every numeric field of [`ChannelStats`] except `pid` is a counter
/// (`speeddata_channel_<field>_total`), so new counters appear here by
/// themselves.
pub fn render(samples: &[Sample<'_>]) -> String {
    let mut out = String::new();
    family(&mut out, "speeddata_channels", "gauge", "Channels known (relay.yaml and registered).");
    let _ = writeln!(out, "speeddata_channels {}", samples.len());

    family(&mut out, "speeddata_channel_up", "gauge", "1 while the channel's process runs.");
    for s in samples {
        let up = u8::from(s.view.status == ChannelStatus::Active);
        line(&mut out, "speeddata_channel_up", &s.view.name, up);
    }
    family(&mut out, "speeddata_channel_restarts_total", "counter", "Restarts of the channel's process after it died.");
    for s in samples {
        line(&mut out, "speeddata_channel_restarts_total", &s.view.name, s.view.restarts);
    }
    family(&mut out, "speeddata_channel_disk_bytes", "gauge", "Bytes in the channel's archive directory.");
    for s in samples {
        if let Some(b) = s.disk_bytes {
            line(&mut out, "speeddata_channel_disk_bytes", &s.view.name, b);
        }
    }

    let stats: Vec<(&str, serde_json::Map<String, Value>)> = samples
        .iter()
        .filter_map(|s| {
            let v = serde_json::to_value(s.stats.as_ref()?).ok()?;
            Some((s.view.name.as_str(), v.as_object()?.clone()))
        })
        .collect();
    let counters: Vec<&str> = match stats.first() {
        Some((_, m)) => m
            .iter()
            .filter(|(k, v)| k.as_str() != "pid" && v.is_u64())
            .map(|(k, _)| k.as_str())
            .collect(),
        None => Vec::new(),
    };
    for field in counters {
        let metric = format!("speeddata_channel_{field}_total");
        family(&mut out, &metric, "counter", &format!("The channel's {} counter.", field.replace('_', " ")));
        for (name, m) in &stats {
            if let Some(n) = m.get(field).and_then(Value::as_u64) {
                line(&mut out, &metric, name, n);
            }
        }
    }
    out
}

fn family(out: &mut String, metric: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {metric} {help}");
    let _ = writeln!(out, "# TYPE {metric} {kind}");
}

fn line(out: &mut String, metric: &str, channel: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{metric}{{channel=\"{}\"}} {value}", escape(channel));
}

/// Label values escape `\`, `"` and newlines.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Sum of the sizes of the regular files under `dir` (symbolic links are not
/// followed; unreadable entries are skipped). Blocking.
pub fn disk_bytes(dir: &Path) -> Option<u64> {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    let mut seen_root = false;
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            if !seen_root {
                return None;
            }
            continue;
        };
        seen_root = true;
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                total = total.saturating_add(meta.len());
            }
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::control::Source;

    fn view(name: &str, status: ChannelStatus, restarts: u64) -> ChannelView {
        ChannelView {
            name: name.into(),
            port: 26000,
            schema_path: None,
            schema_json: String::new(),
            status,
            pid: None,
            created_at: None,
            config: Value::Null,
            source: Source::Api,
            restarts,
            storage_dir: None,
        }
    }

    #[test]
    fn renders_families_once_with_one_line_per_channel() {
        let a = view("a", ChannelStatus::Active, 0);
        let b = view("b", ChannelStatus::Registered, 3);
        let stats = ChannelStats { channel: "a".into(), pid: 42, datagrams_in: 7, bytes_in: 700, ..Default::default() };
        let text = render(&[
            Sample { view: &a, stats: Some(stats), disk_bytes: Some(1234) },
            Sample { view: &b, stats: None, disk_bytes: None },
        ]);
        for want in [
            "speeddata_channels 2\n",
            "speeddata_channel_up{channel=\"a\"} 1\n",
            "speeddata_channel_up{channel=\"b\"} 0\n",
            "speeddata_channel_restarts_total{channel=\"b\"} 3\n",
            "speeddata_channel_disk_bytes{channel=\"a\"} 1234\n",
            "# TYPE speeddata_channel_datagrams_in_total counter\n",
            "speeddata_channel_datagrams_in_total{channel=\"a\"} 7\n",
            "speeddata_channel_bytes_in_total{channel=\"a\"} 700\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("pid"), "{text}");
        assert!(!text.contains("disk_bytes{channel=\"b\"}"));
        assert_eq!(text.matches("# TYPE speeddata_channel_up ").count(), 1);
        // Every non-comment line is `name{labels} value` or `name value`.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = l.rsplit_once(' ').unwrap();
            value.parse::<u64>().unwrap_or_else(|_| panic!("{l}"));
        }
    }

    #[test]
    fn label_values_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn disk_bytes_sums_files_recursively() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.avro"), [0u8; 100]).unwrap();
        std::fs::create_dir(dir.path().join("quarantine")).unwrap();
        std::fs::write(dir.path().join("quarantine/x"), [0u8; 23]).unwrap();
        assert_eq!(disk_bytes(dir.path()), Some(123));
        assert_eq!(disk_bytes(&dir.path().join("missing")), None);
    }
}
