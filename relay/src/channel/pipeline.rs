//! What happens to every datagram after it arrives, whatever the input (socket
//! or XDP ring): validate → archive or quarantine → decimate. Synchronous and
//! clock-free (time is passed in), so tests drive it directly.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};

use super::decimate::Decimator;
use super::out_batch::OutBatch;
use super::quarantine::Quarantine;
use super::ratelimit::RateLimit;
use super::stats::ChannelStats;
use crate::avro::{Archive, DatumValidator};
use crate::config::{ChannelConfig, StorageConfig};

pub struct Pipeline {
    validator: DatumValidator,
    decimator: Option<Decimator>,
    archive: Archive,
    quarantine: Quarantine,
    pub stats: ChannelStats,
    warn_limit: RateLimit,
    /// XDP mode: no datum still to come can be given an earlier time: the
    /// latest of the arrivals handled and of the time up to which drains have
    /// read everything ([`Pipeline::arrivals_read_until`]). Time windows close
    /// only up to it, and a datum stamped earlier (a tick out of order from
    /// another CPU, or read after its window closed) is given this time.
    arrival_floor: Option<SystemTime>,
}

impl Pipeline {
    /// Builds the pipeline for one channel; its files go to `dir`.
    pub fn new(ch: &ChannelConfig, storage: &StorageConfig, dir: &Path) -> Result<Pipeline> {
        let schema = apache_avro::Schema::parse_str(&ch.schema_json)
            .with_context(|| format!("parsing schema {}", ch.schema_path.display()))?;
        let validator = DatumValidator::new(&schema)
            .with_context(|| format!("compiling schema {}", ch.schema_path.display()))?;
        let decimator = Decimator::new(&ch.decimation, &schema)
            .with_context(|| format!("channel {}: decimation with schema {}", ch.name, ch.schema_path.display()))?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating channel directory {}", dir.display()))?;
        let archive = Archive::open(
            dir.to_path_buf(),
            &ch.name,
            &ch.schema_json,
            ch.rotation,
            storage.codec,
            storage.flush_bytes,
            storage.flush_interval,
            SystemTime::now(),
        )
        .with_context(|| format!("opening the Avro archive in {}", dir.display()))?;
        Ok(Pipeline {
            validator,
            decimator,
            archive,
            quarantine: Quarantine::new(dir),
            stats: ChannelStats { channel: ch.name.clone(), pid: std::process::id(), ..Default::default() },
            warn_limit: RateLimit::new(5, std::time::Duration::from_secs(10)),
            arrival_floor: None,
        })
    }

    /// Handles one datagram; a decimated datum, if a window closes, goes to `decimated`.
    pub fn handle(&mut self, datagram: &[u8], source: Option<SocketAddr>, now: SystemTime, decimated: &mut OutBatch) {
        self.handle_arrived(datagram, source, now, now, decimated);
    }

    /// [`Self::handle`] for a datagram that arrived at `arrived`, before
    /// `now` (XDP mode: it waited in the ring until this drain). The
    /// decimator's time windows go by arrival; the files by `now`.
    pub fn handle_arrived(
        &mut self,
        datagram: &[u8],
        source: Option<SocketAddr>,
        now: SystemTime,
        arrived: SystemTime,
        decimated: &mut OutBatch,
    ) {
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += datagram.len() as u64;
        match self.validator.validate(datagram) {
            Ok(()) => {
                if let Err(e) = self.archive.append(datagram, now) {
                    self.archive_error(&e);
                }
                if let Some(d) = &mut self.decimator {
                    let at = self.arrival_floor.map_or(arrived, |floor| arrived.max(floor));
                    self.arrival_floor = self.arrival_floor.map(|_| at);
                    d.push(datagram, at, decimated);
                }
            }
            Err(e) => {
                self.stats.malformed += 1;
                let reason = e.to_string();
                if self.warn_limit.allow(Instant::now()).is_some() {
                    let from = source.map(|s| s.to_string()).unwrap_or_else(|| "?".into());
                    log::warn!("malformed datum ({} bytes from {from}): {reason}", datagram.len());
                }
                match self.quarantine.keep(now, source, datagram, &reason) {
                    Ok(()) => self.stats.quarantined += 1,
                    Err(qe) => {
                        self.stats.lost += 1;
                        self.note_error(format!("writing {}: {qe}", self.quarantine.path().display()));
                    }
                }
            }
        }
    }

    /// A datagram with a wrong UDP checksum (XDP mode; in socket mode the
    /// stack drops these before a socket sees them): counted and logged with
    /// its source, never archived, decimated or quarantined, as in socket mode.
    pub fn bad_udp_checksum(&mut self, len: usize, source: SocketAddr) {
        self.stats.bad_udp_checksum += 1;
        if self.warn_limit.allow(Instant::now()).is_some() {
            // The likeliest cause on a test bench is not corruption but a
            // sender on this host with TX checksum offload (see the README).
            log::warn!(
                "datagram with a wrong UDP checksum ({len} bytes from {source}): dropped, as the kernel drops it in \
                 socket mode (a sender on this host behind a veth must turn TX checksum offload off)"
            );
        }
    }

    /// Journals the batch's datums (see [`crate::avro::journal`]); call after
    /// each receive batch.
    pub fn end_batch(&mut self) {
        if let Err(e) = self.archive.commit() {
            self.archive_error(&e);
        }
    }

    /// Writes a due block; call at [`Pipeline::next_deadline`]. A decimation
    /// window that closes by time adds its output to `decimated`.
    pub fn poll(&mut self, now: SystemTime, decimated: &mut OutBatch) {
        self.poll_ahead(now, Duration::ZERO, decimated);
    }

    /// [`Pipeline::poll`], also writing a block that falls due within
    /// `ahead` ([`crate::avro::Archive::poll_ahead`]).
    pub fn poll_ahead(&mut self, now: SystemTime, ahead: Duration, decimated: &mut OutBatch) {
        if let Err(e) = self.archive.poll_ahead(now, ahead) {
            self.archive_error(&e);
        }
        if let Some(d) = &mut self.decimator {
            match self.arrival_floor {
                // Not `d.poll(floor)`: a time before the window's start
                // reads as a clock stepped back, which closes it too.
                Some(floor) => {
                    if d.next_deadline().is_some_and(|end| end <= floor.min(now)) {
                        d.flush(decimated);
                    }
                }
                None => d.poll(now, decimated),
            }
        }
    }

    /// XDP mode: datums arrive with their arrival time ([`Self::handle_arrived`])
    /// at the next drain, so a time window may only close once every datum
    /// that arrived before its end has been read: `t`, the last drain's
    /// start less the arrival stamp's resolution. Windows then close at
    /// drains, not at their own deadlines.
    pub fn arrivals_read_until(&mut self, t: SystemTime) {
        self.arrival_floor = Some(self.arrival_floor.map_or(t, |floor| floor.max(t)));
    }

    /// The earliest of the archive's block deadline and the end of the
    /// current decimation time window.
    pub fn next_deadline(&self) -> Option<SystemTime> {
        // XDP mode: windows close at drains (see `arrivals_read_until`).
        let decimation = self.decimator.as_ref().filter(|_| self.arrival_floor.is_none()).and_then(Decimator::next_deadline);
        match (self.archive.next_deadline(), decimation) {
            (Some(a), Some(d)) => Some(a.min(d)),
            (a, d) => a.or(d),
        }
    }

    /// Emits a window cut short and closes the archive (files stay valid).
    pub fn finish(&mut self, decimated: &mut OutBatch) -> Result<()> {
        if let Some(d) = &mut self.decimator {
            d.flush(decimated);
        }
        self.archive.close().context("closing the Avro archive")
    }

    /// Counters, with the archive's folded in.
    pub fn snapshot(&mut self) -> &ChannelStats {
        let a = self.archive.stats();
        self.stats.records_written = a.records_written;
        self.stats.bytes_written = a.bytes_written;
        self.stats.files_opened = a.files_opened;
        self.stats.current_file = a.current_file;
        self.stats.journal_recovered = a.recovered;
        &self.stats
    }

    fn archive_error(&mut self, e: &crate::avro::ArchiveError) {
        self.stats.archive_errors += 1;
        if e.datum_refused() {
            self.stats.lost += 1;
        }
        self.note_error(format!("Avro archive: {e}"));
    }

    fn note_error(&mut self, msg: String) {
        if self.warn_limit.allow(Instant::now()).is_some() {
            log::error!("{msg}");
        }
        self.stats.last_error = Some(msg);
    }
}

#[cfg(test)]
mod cost_driver {
    //! What `speeddata-bench --cost-only` measures as "pipeline", small
    //! enough to run under `valgrind --tool=callgrind` (instructions per
    //! datum, whatever the load on the machine):
    //! `PIPE_SIZE=64 PIPE_N=100000 valgrind --tool=callgrind <test binary> --ignored cost_driver`.

    use super::*;
    use crate::channel::out_batch::OutBatch;

    /// A pipeline for one channel with `window` (`factor: N` or
    /// `interval_ms: N`) and `downsample`, its config and files under `dir`.
    pub(super) fn pipeline(dir: &std::path::Path, window: &str) -> Pipeline {
        let cfg_dir = dir.join("config");
        std::fs::create_dir_all(cfg_dir.join("agents")).unwrap();
        std::fs::write(cfg_dir.join("agents/example.avsc"), crate::avro::testutil::EXAMPLE_SCHEMA).unwrap();
        std::fs::write(
            cfg_dir.join("relay.yaml"),
            format!(
                "channels:\n  - name: \"bench00\"\n    port: 26000\n    schema: \"config/agents/example.avsc\"\n\
                 decimation:\n  enabled: true\n  {window}\n  algorithm: \"downsample\"\n\
                 rotation:\n  mode: \"size\"\n  threshold: 268435456\n\
                 retention:\n  mode: \"ttl\"\n  value: 86400\n"
            ),
        )
        .unwrap();
        std::fs::write(
            cfg_dir.join("global.yaml"),
            "multicast:\n  full_rate:\n    address: \"239.1.1.1\"\n    port: 6000\n  decimated:\n    address: \"239.1.1.2\"\n    port: 6001\n\
             storage:\n  avro_path: \"./data\"\n\
             network:\n  egress_iface: \"rout0\"\n  ttl: 4\n",
        )
        .unwrap();
        let cfg = crate::config::load(&cfg_dir).unwrap();
        let ch = &cfg.channels[0];
        Pipeline::new(ch, &cfg.storage, &crate::channel::channel_dir(&cfg.storage, &ch.name)).unwrap()
    }

    /// The bench's datum (bench/src/datum.rs): time, message padded to `size`, counter, 4 doubles.
    pub(super) fn datum(seq: u32, size: usize) -> Vec<u8> {
        let varint = |buf: &mut Vec<u8>, v: i64| crate::avro::ocf::encode_long(v, buf);
        let mut msg_len = size.saturating_sub(42);
        loop {
            let mut d = Vec::new();
            varint(&mut d, 1_760_000_000_000_000_000);
            varint(&mut d, msg_len as i64);
            d.extend(std::iter::repeat_n(b'x', msg_len));
            varint(&mut d, i64::from(seq as i32));
            let t = f64::from(seq) / 1000.0;
            for v in [t.sin(), f64::from(seq % 100) / 100.0, if seq % 50 < 25 { 1.0 } else { -1.0 }, 0.25] {
                d.extend_from_slice(&v.to_le_bytes());
            }
            if d.len() <= size || msg_len == 0 {
                return d;
            }
            msg_len -= 1;
        }
    }

    #[test]
    #[ignore = "a profiling driver, not a test"]
    fn cost_driver() {
        let size: usize = std::env::var("PIPE_SIZE").ok().and_then(|s| s.parse().ok()).unwrap_or(64);
        let n: usize = std::env::var("PIPE_N").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
        let batch_commit = std::env::var("PIPE_COMMIT").is_ok();
        let dir = tempfile::tempdir().unwrap();
        let mut pipe = pipeline(dir.path(), "factor: 10");
        let datums: Vec<Vec<u8>> = (0..1024).map(|s| datum(s * 7919, size)).collect();
        let mut deci = OutBatch::default();
        let src = Some(SocketAddr::from(([192, 0, 2, 1], 40000)));
        let t = Instant::now();
        let mut now = SystemTime::now();
        for i in 0..n {
            if i % 64 == 0 {
                if batch_commit {
                    pipe.end_batch();
                }
                now = SystemTime::now();
                if pipe.next_deadline().is_some_and(|d| d <= now) {
                    pipe.poll(now, &mut deci);
                }
                deci.clear();
            }
            pipe.handle(&datums[i % datums.len()], src, now, &mut deci);
        }
        let handled = t.elapsed();
        pipe.finish(&mut deci).unwrap();
        let per = t.elapsed().as_nanos() as f64 / n as f64;
        assert_eq!(pipe.snapshot().records_written, n as u64);
        eprintln!(
            "{size} B: {per:.1} ns per datum ({:.1} before finish, whose close waits for the file's fdatasync)",
            handled.as_nanos() as f64 / n as f64
        );
    }
}

#[cfg(test)]
mod arrival_windows {
    //! XDP mode: time windows by arrival, closed only as far as drains read.

    use super::cost_driver::{datum, pipeline};
    use super::*;
    use crate::channel::out_batch::OutBatch;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn windows_close_only_as_far_as_read_and_late_datums_go_to_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let mut pipe = pipeline(dir.path(), "interval_ms: 20");
        let mut out = OutBatch::default();
        // A window start: a multiple of 20 ms since the epoch.
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let now = t0 + Duration::from_secs(1);
        pipe.arrivals_read_until(SystemTime::UNIX_EPOCH);
        for (seq, at) in [(1, 2), (2, 9), (3, 18)] {
            pipe.handle_arrived(&datum(seq, 64), None, now, t0 + at * MS, &mut out);
        }
        pipe.poll(now, &mut out);
        assert_eq!(out.len(), 0, "nothing read past the window's end yet");
        assert!(pipe.next_deadline().is_none_or(|d| d > t0 + 20 * MS), "windows close at drains, not at their ends");
        pipe.arrivals_read_until(t0 + 25 * MS);
        pipe.poll(now, &mut out);
        assert_eq!(out.len(), 1, "closed once read past its end");
        // Stamped inside the closed window but read later: the next window.
        for (seq, at) in [(4, 19), (5, 31)] {
            pipe.handle_arrived(&datum(seq, 64), None, now, t0 + at * MS, &mut out);
        }
        assert_eq!(out.len(), 1, "one window for both");
        pipe.arrivals_read_until(t0 + 45 * MS);
        pipe.poll(now, &mut out);
        assert_eq!(out.len(), 2);
        // A tick out of order (another CPU): stamped before the datum that
        // opened the current window, it joins that window.
        for (seq, at) in [(6, 61), (7, 59)] {
            pipe.handle_arrived(&datum(seq, 64), None, now, t0 + at * MS, &mut out);
        }
        assert_eq!(out.len(), 2, "no window for the out-of-order datum alone");
        pipe.arrivals_read_until(t0 + 85 * MS);
        pipe.poll(now, &mut out);
        assert_eq!(out.len(), 3);
    }
}
