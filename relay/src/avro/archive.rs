//! The archive of one channel: a thin file-I/O shell around [`BlockBuilder`]
//! and [`should_rotate`]. Time is passed in, so tests drive it by hand.
//!
//! Every file is valid at every moment for a reader: the header is written
//! when the file is created and each block with a single positioned write;
//! a failed write is cut back off the file, and its datums stay pending.
//!
//! Pending datums are also in the [`Journal`], committed once per receive
//! batch, so a process killed with SIGKILL loses at most the batch it held:
//! the next [`Archive::open`] writes them to a new file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::journal::{self, Journal};
use super::ocf::{self, BlockBuilder, SyncMarker};
use super::rotation::{rotation_deadline, should_rotate, FileState};
use crate::config::{Codec, Rotation};

/// While writes fail, pending datums may grow to this many blocks' worth
/// before new ones are refused.
const BACKLOG_BLOCKS: usize = 16;
/// The backlog limit never goes below this, so a small `flush_bytes` does not
/// turn a short disk hiccup into drops.
const MIN_BACKLOG: usize = 1 << 20;
/// After a failed write, wait this long before touching the disk again
/// (a full disk rarely frees up within milliseconds).
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Name suffixes tried when a file name is taken.
const MAX_NAME_SUFFIX: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A file operation failed. A datum passed to `append` that returns this
    /// was kept (pending) and will be written by a later append/poll/close.
    #[error("{action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    /// The datum was refused (dropped): writes keep failing and the pending
    /// datums reached the memory limit. Count it as lost.
    #[error("datum dropped: {pending} bytes already wait for the disk (limit {limit})")]
    Backlog { pending: usize, limit: usize },
}

impl ArchiveError {
    /// Whether the datum handed to `append` was dropped rather than kept.
    pub fn datum_refused(&self) -> bool {
        matches!(self, ArchiveError::Backlog { .. })
    }
}

impl From<ArchiveError> for io::Error {
    fn from(e: ArchiveError) -> io::Error {
        match e {
            ArchiveError::Io { error, .. } => error,
            e @ ArchiveError::Backlog { .. } => io::Error::new(io::ErrorKind::OutOfMemory, e),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveStats {
    /// Records in blocks written to disk.
    pub records_written: u64,
    /// Bytes written to disk, headers included.
    pub bytes_written: u64,
    pub files_opened: u64,
    pub current_file: Option<PathBuf>,
    /// Datums a previous process left in the journal, archived again at open.
    pub recovered: u64,
}

struct OpenFile {
    file: File,
    path: PathBuf,
    sync: SyncMarker,
    /// Length up to the end of the last good block: what a reader sees.
    len: u64,
    has_blocks: bool,
    opened: SystemTime,
}

impl OpenFile {
    fn state(&self) -> FileState {
        FileState {
            size: self.len,
            has_blocks: self.has_blocks,
            opened: self.opened,
        }
    }
}

pub struct Archive {
    dir: PathBuf,
    prefix: String,
    schema_json: String,
    rotation: Rotation,
    codec: Codec,
    flush_bytes: usize,
    flush_interval: Duration,
    block: BlockBuilder,
    /// Arrival time of the pending block's first datum.
    first_pending: Option<SystemTime>,
    /// No disk access before this, after a failure.
    retry_at: Option<SystemTime>,
    /// The latest time we were given (used by `close`, which takes none).
    last_now: SystemTime,
    file: Option<OpenFile>,
    /// The time in the newest file name, kept increasing so that names sort
    /// in creation order even when the clock steps back or stands still.
    last_stamp: Option<SystemTime>,
    /// The count and byte size of the block being written, reused.
    scratch: Vec<u8>,
    /// `None` only while dropping.
    journal: Option<Journal>,
    /// A journal failure outside [`Archive::commit`], reported by the next one.
    journal_error: Option<io::Error>,
    stats: ArchiveStats,
    /// Syncs closed files and new names off this thread.
    syncer: super::syncer::Syncer,
    /// Tests: make this many block writes fail half-way (ENOSPC).
    #[cfg(test)]
    fail_writes: usize,
}

impl Archive {
    /// Prepares an archive in `dir` (created if missing). The first file is
    /// created with the first datum, or at once (named after `now`) when the
    /// journal holds datums a killed process left.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        dir: PathBuf,
        file_prefix: &str,
        schema_json: &str,
        rotation: Rotation,
        codec: Codec,
        flush_bytes: usize,
        flush_interval: Duration,
        now: SystemTime,
    ) -> Result<Self, ArchiveError> {
        std::fs::create_dir_all(&dir).map_err(|error| ArchiveError::Io {
            action: "creating archive directory",
            path: dir.clone(),
            error,
        })?;
        let block = BlockBuilder::new(codec).map_err(|error| ArchiveError::Io {
            action: "setting up the compressor for",
            path: dir.clone(),
            error,
        })?;
        let (journal, old) = Journal::open(&dir).map_err(|error| ArchiveError::Io {
            action: "opening the journal in",
            path: dir.clone(),
            error,
        })?;
        let dir_for_syncer = dir.clone();
        let mut archive = Archive {
            dir,
            prefix: file_prefix.to_owned(),
            schema_json: schema_json.to_owned(),
            rotation,
            codec,
            flush_bytes,
            flush_interval,
            block,
            first_pending: None,
            retry_at: None,
            last_now: SystemTime::UNIX_EPOCH,
            file: None,
            last_stamp: None,
            scratch: Vec::new(),
            journal: Some(journal),
            journal_error: None,
            stats: ArchiveStats::default(),
            syncer: super::syncer::Syncer::new().map_err(|error| ArchiveError::Io {
                action: "starting the sync thread for",
                path: dir_for_syncer,
                error,
            })?,
            #[cfg(test)]
            fail_writes: 0,
        };
        archive.recover(&old, now)?;
        Ok(archive)
    }

    /// Re-archives what a previous process journaled but did not write: cuts
    /// an incomplete last block off its file, makes the journal hold exactly
    /// the recovered datums (replaced in one rename, so a crash here loses
    /// nothing either), and writes them as the first block of a new file.
    fn recover(&mut self, old: &[u8], now: SystemTime) -> Result<(), ArchiveError> {
        if old.is_empty() {
            return Ok(());
        }
        let parsed = journal::parse(old);
        let torn = parsed.torn_bytes;
        let tail = parsed.intent.as_ref().and_then(|i| self.read_tail(i));
        let plan = journal::plan_recovery(parsed, tail.as_deref());
        if let Some((name, len)) = &plan.truncate {
            let path = self.dir.join(name);
            let cut = OpenOptions::new().write(true).open(&path).and_then(|f| f.set_len(*len));
            cut.map_err(|error| ArchiveError::Io { action: "cutting an incomplete block off", path: path.clone(), error })?;
            log::warn!("cut an incomplete last block off {} (its datums are recovered from the journal)", path.display());
        }
        let journal = self.journal.as_mut().expect("open until close");
        journal.replace(&plan.pending).map_err(|error| ArchiveError::Io {
            action: "rewriting the journal",
            path: journal.path().to_path_buf(),
            error,
        })?;
        if torn > 0 {
            log::warn!("the journal in {} ended in a torn record of {torn} bytes: ignored", self.dir.display());
        }
        if plan.pending.is_empty() {
            return Ok(());
        }
        for d in &plan.pending {
            self.block.push(d);
        }
        self.stats.recovered = plan.pending.len() as u64;
        self.first_pending = Some(now);
        log::warn!(
            "recovered {} datums from the journal in {} (the previous process did not close the archive)",
            plan.pending.len(),
            self.dir.display()
        );
        // Not fatal: they stay pending (and journaled) like any datum.
        if let Err(e) = self.flush(now) {
            log::warn!("writing the recovered datums: {e}");
        }
        Ok(())
    }

    /// The named file from 16 bytes before the intent's offset to its end.
    fn read_tail(&self, i: &journal::Intent) -> Option<Vec<u8>> {
        let f = File::open(self.dir.join(&i.file_name)).ok()?;
        let len = f.metadata().ok()?.len();
        let from = i.offset.checked_sub(16)?;
        if len < i.offset {
            return None;
        }
        let mut tail = vec![0; (len - from) as usize];
        f.read_exact_at(&mut tail, from).ok()?;
        Some(tail)
    }

    /// Writes the current batch's datums to the journal; call once per
    /// receive batch. An error means they are only in memory until their
    /// block is written (the archive itself goes on).
    pub fn commit(&mut self) -> Result<(), ArchiveError> {
        let Some(j) = self.journal.as_mut() else { return Ok(()) };
        let r = match self.journal_error.take() {
            Some(e) => Err(e),
            None => j.commit(),
        };
        r.map_err(|error| ArchiveError::Io { action: "writing the journal", path: j.path().to_path_buf(), error })
    }

    /// Adds one (already validated) datum. Writes a block once `flush_bytes`
    /// are pending, rolling to a new file first if the policy says so.
    pub fn append(&mut self, datum: &[u8], now: SystemTime) -> Result<(), ArchiveError> {
        self.last_now = now;
        let limit = self
            .flush_bytes
            .saturating_mul(BACKLOG_BLOCKS)
            .max(MIN_BACKLOG);
        if self.block.data_len() + datum.len() > limit {
            if self.write_allowed(now) {
                // Its error was reported when the backlog built up; what
                // matters now is whether room was made.
                let _ = self.flush(now);
            }
            if self.block.data_len() + datum.len() > limit {
                return Err(ArchiveError::Backlog {
                    pending: self.block.data_len(),
                    limit,
                });
            }
        }
        if self.block.is_empty() {
            self.first_pending = Some(now);
        }
        self.block.push(datum);
        if let Some(j) = &mut self.journal {
            j.record(datum);
        }
        if !self.write_allowed(now) {
            return Ok(());
        }
        if self.block.data_len() >= self.flush_bytes {
            self.flush(now)
        } else if self.file.is_none() {
            // Create the file now so that it appears with its first datum.
            self.open_file(now).map(drop)
        } else {
            Ok(())
        }
    }

    /// Writes the pending block once `flush_interval` has passed since its
    /// first datum, and closes a time-rotated file that is due.
    pub fn poll(&mut self, now: SystemTime) -> Result<(), ArchiveError> {
        self.poll_ahead(now, Duration::ZERO)
    }

    /// [`Archive::poll`], also writing a block that falls due within
    /// `ahead`: a caller that will be awake then anyway (the next ring drain)
    /// writes it early rather than wake up in between for it.
    pub fn poll_ahead(&mut self, now: SystemTime, ahead: Duration) -> Result<(), ArchiveError> {
        self.last_now = now;
        if !self.write_allowed(now) {
            return Ok(());
        }
        let by = now.checked_add(ahead).unwrap_or(now);
        let flush_due = self
            .first_pending
            .is_some_and(|t| t.checked_add(self.flush_interval).is_none_or(|d| by >= d));
        let rotate_due = self
            .file
            .as_ref()
            .is_some_and(|f| should_rotate(self.rotation, f.state(), now, 0));
        if rotate_due {
            // The file's time is up: what is pending arrived before now, so
            // it still belongs in this file.
            self.write_block(now, false)?;
            self.close_file()
        } else if flush_due {
            self.flush(now)
        } else {
            Ok(())
        }
    }

    /// When `poll` next has work to do.
    pub fn next_deadline(&self) -> Option<SystemTime> {
        let flush = self
            .first_pending
            .map(|t| t.checked_add(self.flush_interval).unwrap_or(t));
        let rotate = self
            .file
            .as_ref()
            .and_then(|f| rotation_deadline(self.rotation, f.state()));
        let due = match (flush, rotate) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (due, self.retry_at) {
            (Some(d), Some(r)) => Some(d.max(r)),
            (d, _) => d,
        }
    }

    /// Writes what is pending and syncs and closes the current file, which
    /// stays valid. On error the pending datums are kept; calling again retries.
    pub fn close(&mut self) -> Result<(), ArchiveError> {
        if !self.block.is_empty() {
            self.flush(self.last_now)?;
        }
        self.close_file()?;
        // Closing is a promise that the file is on disk.
        self.syncer.wait();
        self.sync_failure()?;
        if let Some(Err(e)) = self.journal.as_mut().map(Journal::reset) {
            self.journal_error.get_or_insert(e);
        }
        Ok(())
    }

    pub fn stats(&self) -> ArchiveStats {
        ArchiveStats {
            current_file: self.file.as_ref().map(|f| f.path.clone()),
            ..self.stats.clone()
        }
    }

    fn write_allowed(&self, now: SystemTime) -> bool {
        self.retry_at.is_none_or(|r| now >= r)
    }

    /// Notes a failure so the disk is left alone for a while.
    fn failed(&mut self, now: SystemTime, e: ArchiveError) -> ArchiveError {
        self.retry_at = Some(now + RETRY_AFTER);
        e
    }

    /// Writes the pending block as one block, rolling first if due.
    fn flush(&mut self, now: SystemTime) -> Result<(), ArchiveError> {
        self.write_block(now, true)
    }

    /// Writes the pending block, to a new file if `may_roll` and the policy
    /// says the current one is done.
    fn write_block(&mut self, now: SystemTime, may_roll: bool) -> Result<(), ArchiveError> {
        if self.block.is_empty() {
            return Ok(());
        }
        self.scratch.clear();
        let block_len = match self.block.frame(&mut self.scratch) {
            Ok(payload) => (self.scratch.len() + payload.len() + 16) as u64,
            Err(error) => {
                let e = ArchiveError::Io {
                    action: "compressing a block for",
                    path: self.dir.clone(),
                    error,
                };
                return Err(self.failed(now, e));
            }
        };
        if may_roll
            && self
                .file
                .as_ref()
                .is_some_and(|f| should_rotate(self.rotation, f.state(), now, block_len))
        {
            self.close_file()?;
        }
        let opened_time = self.first_pending.unwrap_or(now);
        self.open_file(opened_time)?;
        let file = self.file.as_mut().expect("opened above");
        // Framed before we knew which file it goes to: the sync marker is the file's.
        let parts = [&self.scratch[..], self.block.payload(), &file.sync[..]];
        let at = file.len;
        if let Some(j) = &mut self.journal {
            let name = file.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if let Err(e) = j.intent(&name, at) {
                self.journal_error.get_or_insert(e);
            }
        }
        #[cfg(test)]
        let result = if self.fail_writes > 0 {
            self.fail_writes -= 1;
            let whole = parts.concat();
            let _ = file.file.write_all_at(&whole[..whole.len() / 2], at);
            Err(io::Error::from_raw_os_error(libc::ENOSPC))
        } else {
            write_all_vectored_at(&file.file, parts, at)
        };
        #[cfg(not(test))]
        let result = write_all_vectored_at(&file.file, parts, at);
        if let Err(error) = result {
            let path = file.path.clone();
            // Cut the partial block off so the file stays readable; if even
            // that fails, give the file up and start a new one next time.
            if file.file.set_len(at).is_err() {
                self.file = None;
            }
            let e = ArchiveError::Io {
                action: "writing a block to",
                path,
                error,
            };
            return Err(self.failed(now, e));
        }
        file.len += block_len;
        file.has_blocks = true;
        self.stats.records_written += self.block.count();
        self.stats.bytes_written += block_len;
        self.block.clear();
        self.first_pending = None;
        self.retry_at = None;
        if let Some(Err(e)) = self.journal.as_mut().map(Journal::reset) {
            self.journal_error.get_or_insert(e);
        }
        // A file that is full now is finished now, not when the next block comes.
        if matches!(self.rotation, Rotation::Size(_))
            && self
                .file
                .as_ref()
                .is_some_and(|f| should_rotate(self.rotation, f.state(), now, 0))
        {
            self.close_file()?;
        }
        Ok(())
    }

    /// The current file, creating it (named after `now`) if there is none.
    fn open_file(&mut self, now: SystemTime) -> Result<&mut OpenFile, ArchiveError> {
        if self.file.is_none() {
            match self.create_file(now) {
                Ok(f) => {
                    self.stats.files_opened += 1;
                    self.stats.bytes_written += f.len;
                    self.file = Some(f);
                }
                Err(e) => return Err(self.failed(now, e)),
            }
        }
        Ok(self.file.as_mut().expect("just opened"))
    }

    fn create_file(&mut self, now: SystemTime) -> Result<OpenFile, ArchiveError> {
        let io_err = |action, path: &Path| {
            let path = path.to_path_buf();
            move |error| ArchiveError::Io {
                action,
                path,
                error,
            }
        };
        let mut sync = [0u8; 16];
        getrandom::fill(&mut sync).map_err(|e| {
            io_err("drawing a sync marker for", &self.dir)(io::Error::other(e.to_string()))
        })?;
        let stamp = match self.last_stamp {
            Some(last) if now <= last => last + Duration::from_micros(1),
            _ => now,
        };
        let (path, mut file) = self.create_unique(stamp)?;
        self.last_stamp = Some(stamp);
        let header = ocf::header(&self.schema_json, self.codec, &sync);
        if let Err(error) = file.write_all(&header) {
            // Leave no headerless file behind.
            let _ = std::fs::remove_file(&path);
            return Err(io_err("writing the header of", &path)(error));
        }
        // Make the new name durable (in the background); the data is synced on close.
        self.syncer.dir(self.dir.clone());
        Ok(OpenFile {
            file,
            path,
            sync,
            len: header.len() as u64,
            has_blocks: false,
            opened: now,
        })
    }

    /// `<prefix>-<YYYYMMDDTHHMMSS.ffffff>Z.avro`, with `-N` added before the
    /// extension if taken (say, by a previous run): an existing file is never
    /// overwritten.
    fn create_unique(&self, now: SystemTime) -> Result<(PathBuf, File), ArchiveError> {
        let stamp = DateTime::<Utc>::from(now).format("%Y%m%dT%H%M%S%.6f");
        let base = format!("{}-{stamp}Z", self.prefix);
        for n in 0..MAX_NAME_SUFFIX {
            let name = if n == 0 {
                format!("{base}.avro")
            } else {
                format!("{base}-{n}.avro")
            };
            let path = self.dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => return Ok((path, f)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => {
                    return Err(ArchiveError::Io {
                        action: "creating",
                        path,
                        error,
                    })
                }
            }
        }
        Err(ArchiveError::Io {
            action: "finding a free file name for",
            path: self.dir.join(format!("{base}.avro")),
            error: io::ErrorKind::AlreadyExists.into(),
        })
    }

    /// Closes the current file and has it synced in the background; reports
    /// an earlier background sync that failed. A file is given up even if
    /// its sync fails: after a failed fsync the kernel may have dropped the
    /// pages, and retrying proves nothing.
    fn close_file(&mut self) -> Result<(), ArchiveError> {
        if let Some(f) = self.file.take() {
            self.syncer.file(f.file, f.path);
        }
        self.sync_failure()
    }

    /// The first background sync that failed since the last report.
    fn sync_failure(&mut self) -> Result<(), ArchiveError> {
        match self.syncer.take_failures().into_iter().next() {
            Some((path, error)) => Err(ArchiveError::Io { action: "syncing", path, error }),
            None => Ok(()),
        }
    }
}

/// `pwritev` of `parts` at `offset`, all of them: one positioned write,
/// like `write_all_at`, without first copying them into one buffer.
fn write_all_vectored_at(file: &File, parts: [&[u8]; 3], mut offset: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut parts = parts;
    loop {
        let mut iov = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; 3];
        let mut n = 0;
        for p in parts.iter().filter(|p| !p.is_empty()) {
            iov[n] = libc::iovec { iov_base: p.as_ptr().cast_mut().cast(), iov_len: p.len() };
            n += 1;
        }
        if n == 0 {
            return Ok(());
        }
        // The 64-bit offset call: `off_t` is 32 bits on 32-bit ARM, where
        // `pwritev` could not reach past 2 GiB in a file.
        let off = libc::off64_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: the iovecs point into `parts`, which outlive the call.
        let written = unsafe { libc::pwritev64(file.as_raw_fd(), iov.as_ptr(), n as libc::c_int, off) };
        if written < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        offset += written as u64;
        let mut left = written as usize;
        for p in &mut parts {
            let k = left.min(p.len());
            *p = &p[k..];
            left -= k;
        }
    }
}

impl Drop for Archive {
    /// Best effort for a shell that forgot `close`: what is pending is still
    /// written.
    fn drop(&mut self) {
        if !self.block.is_empty() || self.file.is_some() {
            let _ = self.close();
        }
        // Nothing pending: the journal would only be empty.
        if self.block.is_empty() {
            if let Some(j) = self.journal.take() {
                let _ = j.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests;
