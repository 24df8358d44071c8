//! The quarantine: malformed datagrams kept verbatim, so nothing a source sent
//! is lost even when it cannot go into the Avro file.
//!
//! One JSON object per line (`quarantine.jsonl` in the channel's directory):
//! `{"received":"…Z","source":"ip:port","len":N,"reason":"…","hex":"…"}`.
//! Each line is written with a single `write` on an `O_APPEND` file, so a
//! killed process leaves at most nothing of the line it was writing.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub struct Quarantine {
    path: PathBuf,
    file: Option<File>,
    line: String,
}

impl Quarantine {
    pub fn new(dir: &Path) -> Quarantine {
        Quarantine { path: dir.join("quarantine.jsonl"), file: None, line: String::new() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one datagram with why it was rejected. The file is created on
    /// first use, so a clean channel has none.
    pub fn keep(&mut self, received: SystemTime, source: Option<SocketAddr>, datagram: &[u8], reason: &str) -> io::Result<()> {
        format_line(&mut self.line, received, source, datagram, reason);
        if self.file.is_none() {
            let f = OpenOptions::new().create(true).append(true).open(&self.path)?;
            self.file = Some(f);
        }
        self.file.as_mut().expect("opened above").write_all(self.line.as_bytes())
    }
}

/// Formats one quarantine line (with its newline) into `out`.
pub fn format_line(out: &mut String, received: SystemTime, source: Option<SocketAddr>, datagram: &[u8], reason: &str) {
    out.clear();
    let ts = chrono::DateTime::<chrono::Utc>::from(received).format("%Y-%m-%dT%H:%M:%S%.6fZ");
    let source = source.map(|s| s.to_string()).unwrap_or_default();
    let _ = write!(
        out,
        "{{\"received\":\"{ts}\",\"source\":{},\"len\":{},\"reason\":{},\"hex\":\"",
        serde_json::Value::String(source),
        datagram.len(),
        serde_json::Value::String(reason.to_owned()),
    );
    for b in datagram {
        let _ = write!(out, "{b:02x}");
    }
    out.push_str("\"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn line_is_json_with_everything_needed_to_recover_the_datagram() {
        let mut s = String::new();
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        format_line(&mut s, t, Some("192.0.2.1:4000".parse().unwrap()), &[0, 0xff, 0x10], "trailing \"bytes\"");
        assert!(s.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["received"], "2023-11-14T22:13:20.123456Z");
        assert_eq!(v["source"], "192.0.2.1:4000");
        assert_eq!(v["len"], 3);
        assert_eq!(v["reason"], "trailing \"bytes\"");
        assert_eq!(v["hex"], "00ff10");
    }

    #[test]
    fn appends_lines_and_creates_file_lazily() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Quarantine::new(dir.path());
        assert!(!q.path().exists());
        q.keep(SystemTime::now(), None, b"a", "x").unwrap();
        q.keep(SystemTime::now(), None, b"b", "y").unwrap();
        let text = std::fs::read_to_string(q.path()).unwrap();
        assert_eq!(text.lines().count(), 2);
    }
}
