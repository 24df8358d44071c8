//! Per-channel counters, published as `stats.json` in the channel's directory.
//!
//! The file is one preallocated page rewritten in place with a single
//! `pwrite`: no new disk blocks are needed, so the counters keep updating on a
//! full disk (when they matter most), and a reader never sees half a page.

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
    /// XDP mode: datagrams with a wrong UDP checksum, dropped (in socket mode
    /// the kernel drops them and counts them in `/proc/net/snmp`, `Udp:
    /// InCsumErrors`). Not in `datagrams_in`.
    #[serde(default)]
    pub bad_udp_checksum: u64,
    /// XDP mode: ring records this process could not read (cannot come from
    /// the relay's own program; skipped).
    #[serde(default)]
    pub ring_corrupt: u64,
    pub quarantined: u64,
    /// Datums that could be neither archived nor quarantined (disk errors).
    pub lost: u64,
    /// Failed archive writes (the datums stay pending and are retried).
    pub archive_errors: u64,
    pub records_written: u64,
    pub bytes_written: u64,
    pub files_opened: u64,
    pub current_file: Option<PathBuf>,
    /// Datums this process found in the journal of one that was killed before
    /// writing them, and archived (included in `records_written`).
    #[serde(default)]
    pub journal_recovered: u64,
    /// Archive files deleted by the retention policy, and their bytes.
    pub retention_deleted_files: u64,
    pub retention_deleted_bytes: u64,
    /// XDP mode, from the kernel (filled in by the supervisor's API, not by
    /// the channel process): datagrams the program re-published at full rate,
    /// and datagrams it could not copy because the channel's ring was full.
    #[serde(default)]
    pub kernel_forwarded: u64,
    #[serde(default)]
    pub ring_drops: u64,
    pub last_error: Option<String>,
}

/// The size `stats.json` is kept at (JSON padded with spaces).
const PAGE: usize = 4096;

/// `stats.json`, kept open and rewritten in place.
pub struct StatsFile {
    path: PathBuf,
    file: Option<std::fs::File>,
    buf: Vec<u8>,
}

impl StatsFile {
    pub fn new(path: PathBuf) -> StatsFile {
        StatsFile { path, file: None, buf: Vec::with_capacity(PAGE) }
    }

    pub fn publish(&mut self, stats: &ChannelStats) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.buf.clear();
        serde_json::to_writer_pretty(&mut self.buf, stats).map_err(io::Error::other)?;
        self.buf.push(b'\n');
        // Padded to whole pages; a longer document (a very long file path)
        // takes more pages, which needs room on the disk once.
        let len = self.buf.len().div_ceil(PAGE) * PAGE;
        self.buf.resize(len, b' ');
        if self.file.is_none() {
            let f = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&self.path)?;
            self.file = Some(f);
        }
        let f = self.file.as_ref().expect("opened above");
        if f.metadata()?.len() > len as u64 {
            f.set_len(len as u64)?;
        }
        f.write_all_at(&self.buf, 0)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A channel's counters in the XDP program, published by the supervisor as
/// `xdp.json` beside `stats.json` (a channel process cannot read the
/// kernel's maps).
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct KernelCounters {
    pub iface: String,
    /// `native`, `skb` or `reused`.
    pub attach: String,
    pub packets: u64,
    pub bytes: u64,
    pub forwarded: u64,
    pub ring_drops: u64,
}

impl KernelCounters {
    pub const FILE: &'static str = "xdp.json";

    /// Writes `dir/xdp.json` atomically (temp file + rename).
    pub fn publish(&self, dir: &Path) -> io::Result<()> {
        let path = dir.join(Self::FILE);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(self).map_err(io::Error::other)?)?;
        std::fs::rename(&tmp, &path)
    }

    pub fn read(dir: &Path) -> io::Result<KernelCounters> {
        serde_json::from_slice(&std::fs::read(dir.join(Self::FILE))?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

impl ChannelStats {
    /// A channel directory's counters: `stats.json`, with the kernel's
    /// (`xdp.json`, XDP mode only) folded in.
    pub fn read_dir(dir: &Path) -> io::Result<ChannelStats> {
        let mut stats = ChannelStats::read(&dir.join("stats.json"))?;
        if let Ok(k) = KernelCounters::read(dir) {
            stats.kernel_forwarded = k.forwarded;
            stats.ring_drops = k.ring_drops;
        }
        Ok(stats)
    }

    pub fn read(path: &Path) -> io::Result<ChannelStats> {
        serde_json::from_slice(&std::fs::read(path)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_counters_fold_into_the_channel_stats() {
        let dir = tempfile::tempdir().unwrap();
        StatsFile::new(dir.path().join("stats.json")).publish(&ChannelStats { datagrams_in: 3, ..Default::default() }).unwrap();
        assert_eq!(ChannelStats::read_dir(dir.path()).unwrap().ring_drops, 0);
        let k = KernelCounters { packets: 9, forwarded: 8, ring_drops: 7, ..Default::default() };
        k.publish(dir.path()).unwrap();
        assert_eq!(KernelCounters::read(dir.path()).unwrap(), k);
        let s = ChannelStats::read_dir(dir.path()).unwrap();
        assert_eq!((s.datagrams_in, s.kernel_forwarded, s.ring_drops), (3, 8, 7));
    }

    #[test]
    fn publish_then_read_round_trips_in_one_page() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stats.json");
        let mut f = StatsFile::new(p.clone());
        let mut s = ChannelStats { channel: "a".into(), datagrams_in: 7, ..Default::default() };
        f.publish(&s).unwrap();
        assert_eq!(ChannelStats::read(&p).unwrap(), s);
        s.datagrams_in = 8;
        s.last_error = Some("x".repeat(5000));
        f.publish(&s).unwrap();
        assert_eq!(ChannelStats::read(&p).unwrap(), s);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 2 * PAGE as u64);
        s.last_error = None;
        f.publish(&s).unwrap();
        assert_eq!(ChannelStats::read(&p).unwrap(), s);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), PAGE as u64);
    }
}
