//! Per-channel counters, published as `stats.json` in the channel's directory
//! (replaced atomically, so `status` never reads half a file).

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChannelStats {
    pub channel: String,
    pub pid: u32,
    /// How datagrams arrive: `socket` or `xdp`.
    pub input: String,
    pub datagrams_in: u64,
    pub bytes_in: u64,
    /// Sent by this process to the full-rate group (socket mode; in XDP mode
    /// the kernel forwards and counts).
    pub full_rate_out: u64,
    pub full_rate_send_errors: u64,
    pub decimated_out: u64,
    pub decimated_send_errors: u64,
    pub malformed: u64,
    pub quarantined: u64,
    /// Datums that could be neither archived nor quarantined (disk errors).
    pub lost: u64,
    pub records_written: u64,
    pub bytes_written: u64,
    pub files_opened: u64,
    pub current_file: Option<PathBuf>,
    /// Archive files deleted by the retention policy, and their bytes.
    pub retention_deleted_files: u64,
    pub retention_deleted_bytes: u64,
    pub last_error: Option<String>,
}

impl ChannelStats {
    /// Writes `path` atomically (temp file + rename).
    pub fn publish(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).map_err(io::Error::other)?)?;
        std::fs::rename(&tmp, path)
    }

    pub fn read(path: &Path) -> io::Result<ChannelStats> {
        serde_json::from_slice(&std::fs::read(path)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_then_read_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stats.json");
        let s = ChannelStats { channel: "a".into(), datagrams_in: 7, ..Default::default() };
        s.publish(&p).unwrap();
        assert_eq!(ChannelStats::read(&p).unwrap(), s);
        assert!(!p.with_extension("json.tmp").exists());
    }
}
