//! Write-ahead journal of the pending block, so that a channel process killed
//! with SIGKILL loses at most the receive batch it held, not the up to
//! `flush_interval` / `flush_bytes` of datums waiting for their block.
//!
//! `.journal` in the archive directory holds, in order:
//! - `D` records: each datum added to the pending block, written once per
//!   receive batch ([`Journal::commit`]);
//! - a `W` record ("intent") just before a block is written: the file name and
//!   the offset the block goes to;
//! - a zero byte, or the end of the file, after the last record.
//!
//! After the block is written the journal is emptied (a zero byte at its
//! start). On file systems that overwrite in place (ext4, XFS, tmpfs) the
//! file is written through a shared memory mapping of zeroed, already
//! allocated blocks: a commit is a copy, with no syscall; elsewhere, two
//! `pwrite`s. Either way what is written is in the page cache at once, so it
//! survives the death of the process (not of the machine, which is not what
//! this is for: no fsync per batch). A `pwrite` per batch and an `ftruncate`
//! per block cost the channel about a fifth of its CPU at low rates
//! (`perf trace`, 2026-11-29).
//!
//! On start, [`plan_recovery`] decides from the journal and the named file
//! whether the last block reached the file (then only later datums are
//! pending) or not (then a partial block is cut off and every journaled datum
//! is pending again). Nothing is written twice and nothing journaled is lost.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::ocf::{read_long, SyncMarker};

pub const JOURNAL_NAME: &str = ".journal";

/// Ends the records (the zeroed rest of the file reads as one).
const TAG_END: u8 = 0;
const TAG_DATUM: u8 = b'D';
const TAG_INTENT: u8 = b'W';
/// Tag byte + u32 length.
const RECORD_HEADER: usize = 5;

/// Appends one record (tag, little-endian u32 length, payload) to `out`.
fn put_record(tag: u8, payload: &[&[u8]], out: &mut Vec<u8>) {
    let len: usize = payload.iter().map(|p| p.len()).sum();
    out.push(tag);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    for p in payload {
        out.extend_from_slice(p);
    }
}

/// Where the last block was about to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub file_name: String,
    pub offset: u64,
}

/// What a journal holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Datums journaled before the last intent (the block it announced).
    pub announced: Vec<Vec<u8>>,
    pub intent: Option<Intent>,
    /// Datums journaled after the last intent (its write failed and the
    /// process went on), or all of them when there is no intent.
    pub later: Vec<Vec<u8>>,
    /// Bytes at the end that do not form a whole record (the process died
    /// inside a write): ignored.
    pub torn_bytes: usize,
}

/// Reads journal bytes. Stops at a torn or unknown record: everything before
/// it was written completely.
pub fn parse(bytes: &[u8]) -> Parsed {
    parse_to_end(bytes).0
}

/// [`parse`], and where it stopped: at the end marker, at the end of
/// `bytes`, or at a torn or unknown record.
fn parse_to_end(bytes: &[u8]) -> (Parsed, usize) {
    let mut p = Parsed::default();
    let mut at = 0;
    while bytes.len() - at >= RECORD_HEADER {
        let tag = bytes[at];
        if tag == TAG_END {
            break;
        }
        let len = u32::from_le_bytes(bytes[at + 1..at + 5].try_into().expect("4 bytes")) as usize;
        let Some(payload) = bytes.get(at + RECORD_HEADER..at + RECORD_HEADER + len) else { break };
        match tag {
            TAG_DATUM => p.later.push(payload.to_vec()),
            TAG_INTENT if len >= 8 => {
                let offset = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
                let Ok(name) = std::str::from_utf8(&payload[8..]) else { break };
                // A later intent supersedes an earlier one whose write failed:
                // the datums of both are pending until some block is written.
                p.announced.append(&mut p.later);
                p.intent = Some(Intent { file_name: name.to_owned(), offset });
            }
            _ => break,
        }
        at += RECORD_HEADER + len;
    }
    // Past an end marker is stale or zeroed, not torn.
    p.torn_bytes = if bytes.get(at) == Some(&TAG_END) { 0 } else { bytes.len() - at };
    (p, at)
}

/// What to do on start, given the journal and (if it names one) the file.
#[derive(Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Datums to archive again, in arrival order.
    pub pending: Vec<Vec<u8>>,
    /// Cut the named file back to this length: its last block is incomplete.
    pub truncate: Option<(String, u64)>,
    /// The announced block is in the file already.
    pub announced_written: bool,
}

/// Decides recovery from a parsed journal and the named file's bytes from
/// `offset - 16` (its sync marker precedes every block) to its end, or `None`
/// if the file is gone or shorter than that.
pub fn plan_recovery(parsed: Parsed, tail: Option<&[u8]>) -> Recovery {
    let Parsed { mut announced, intent, mut later, .. } = parsed;
    let Some(intent) = intent else {
        return Recovery { pending: later, truncate: None, announced_written: false };
    };
    let written = tail.is_some_and(|t| {
        t.len() >= 16 && complete_block(&t[16..], t[..16].try_into().expect("16 bytes")).is_some()
    });
    if written {
        return Recovery { pending: later, truncate: None, announced_written: true };
    }
    let partial = tail.is_some_and(|t| t.len() > 16);
    announced.append(&mut later);
    Recovery {
        pending: announced,
        truncate: partial.then(|| (intent.file_name, intent.offset)),
        announced_written: false,
    }
}

/// The length of the whole block at the start of `bytes` (count, size, data,
/// a sync marker equal to `sync`), or `None` if it is incomplete or not one.
fn complete_block(bytes: &[u8], sync: &SyncMarker) -> Option<usize> {
    let mut pos = 0;
    let count = read_long(bytes, &mut pos)?;
    let size = read_long(bytes, &mut pos)?;
    if count <= 0 || size < 0 {
        return None;
    }
    let end = pos.checked_add(size as usize)?;
    (bytes.get(end..end.checked_add(16)?)? == sync).then_some(end + 16)
}

/// Bytes a mapped journal file starts with; it doubles when a commit needs more.
const INITIAL_CAPACITY: usize = 256 << 10;

/// The journal file of one archive directory.
pub struct Journal {
    file: File,
    path: PathBuf,
    /// Written through a shared mapping (see [`overwrites_in_place`]);
    /// otherwise with `pwrite`.
    mapped: bool,
    /// The whole file, shared with the page cache, when `mapped`; `None`
    /// until the first growth and after a failed one.
    map: Option<memmap2::MmapMut>,
    /// Bytes of records in the file (where the end marker is).
    len: usize,
    /// Records of the current batch, not yet written.
    buf: Vec<u8>,
    /// A write failed: nothing is journaled until [`Journal::reset`] succeeds
    /// (a journal with holes would recover datums out of order).
    broken: bool,
}

impl Journal {
    /// Opens `dir/.journal`, returning its previous contents (empty if there
    /// was none). The file keeps them until the first [`Journal::reset`].
    pub fn open(dir: &Path) -> io::Result<(Journal, Vec<u8>)> {
        Self::open_as(dir, None)
    }

    /// [`Journal::open`], mapped or not as `mapped` says (`None`: as the
    /// file system allows).
    pub(crate) fn open_as(dir: &Path, mapped: Option<bool>) -> io::Result<(Journal, Vec<u8>)> {
        let path = dir.join(JOURNAL_NAME);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        let mut old = std::fs::read(&path)?;
        // Only the records matter, not the zeroed or stale rest.
        let records = records_len(&old);
        old.truncate(records);
        let mapped = mapped.unwrap_or_else(|| overwrites_in_place(&file));
        let mut j = Journal { file, path, mapped, map: None, len: records, buf: Vec::new(), broken: false };
        j.grow(records + 1)?;
        Ok((j, old))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Journals a datum with the current batch.
    pub fn record(&mut self, datum: &[u8]) {
        if !self.broken {
            put_record(TAG_DATUM, &[datum], &mut self.buf);
        }
    }

    /// Writes the current batch's records: all of them but their first tag
    /// byte, and a new end marker after them; then that tag byte, over the
    /// old end marker. A process killed anywhere in here leaves either the
    /// old end in place (this batch not journaled) or every byte of it.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.buf.is_empty() || self.broken {
            self.buf.clear();
            return Ok(());
        }
        let at = self.len;
        self.buf.push(TAG_END);
        let r = self.write_batch(at);
        let n = self.buf.len() - 1;
        self.buf.clear();
        match r {
            Ok(()) => {
                self.len += n;
                Ok(())
            }
            Err(e) => Err(self.break_off(e)),
        }
    }

    /// Writes `buf` (records and an end marker) at `at`, first byte last.
    fn write_batch(&mut self, at: usize) -> io::Result<()> {
        let end = at + self.buf.len();
        if !self.mapped {
            self.file.write_all_at(&self.buf[1..], at as u64 + 1)?;
            return self.file.write_all_at(&self.buf[..1], at as u64);
        }
        self.grow(end)?;
        let map = self.map.as_mut().expect("grow maps the file");
        map[at + 1..end].copy_from_slice(&self.buf[1..]);
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        // SAFETY: at < end <= map.len(), checked by the slicing above.
        unsafe { std::ptr::write_volatile(map.as_mut_ptr().add(at), self.buf[0]) };
        Ok(())
    }

    /// Writes the pending records and an intent: the block goes to
    /// `file_name` at `offset`.
    pub fn intent(&mut self, file_name: &str, offset: u64) -> io::Result<()> {
        if self.broken {
            return Ok(());
        }
        put_record(TAG_INTENT, &[&offset.to_le_bytes(), file_name.as_bytes()], &mut self.buf);
        self.commit()
    }

    /// Empties the journal after its datums' block was written: an end
    /// marker at its start (the file keeps its blocks for the next batches).
    pub fn reset(&mut self) -> io::Result<()> {
        self.buf.clear();
        if self.len == 0 && !self.broken {
            return Ok(());
        }
        if self.broken {
            // After a failed write: start again from an empty file.
            self.map = None;
            self.file.set_len(0)?;
            self.grow(1)?;
        } else {
            match self.map.as_mut() {
                Some(map) => map[0] = TAG_END,
                None => self.file.write_all_at(&[TAG_END], 0)?,
            }
        }
        self.len = 0;
        self.broken = false;
        Ok(())
    }

    /// Makes the journal hold exactly `datums` (and nothing else): written to
    /// a new file renamed over the old one, so a crash leaves one or the other.
    pub fn replace(&mut self, datums: &[Vec<u8>]) -> io::Result<()> {
        let mut bytes = Vec::new();
        for d in datums {
            put_record(TAG_DATUM, &[d], &mut bytes);
        }
        let tmp = self.path.with_extension("new");
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, &self.path)?;
        self.map = None;
        self.file = OpenOptions::new().read(true).write(true).open(&self.path)?;
        self.len = bytes.len();
        self.buf.clear();
        self.broken = false;
        self.grow(self.len + 1)
    }

    /// When mapped: makes the file at least `need` bytes (doubling from
    /// [`INITIAL_CAPACITY`]) of allocated, zeroed blocks, and maps it.
    /// Zeros are written, not left as a hole or reserved with `fallocate`:
    /// a full disk then fails this write, instead of a later store to the
    /// mapping (which would be SIGBUS).
    fn grow(&mut self, need: usize) -> io::Result<()> {
        let have = self.map.as_ref().map_or(0, |m| m.len());
        if !self.mapped || need <= have {
            return Ok(());
        }
        let file_len = self.file.metadata()?.len() as usize;
        let mut capacity = INITIAL_CAPACITY.max(file_len);
        while capacity < need {
            capacity *= 2;
        }
        self.map = None;
        if file_len < capacity {
            self.file.write_all_at(&vec![0; capacity - file_len], file_len as u64)?;
        }
        // SAFETY: the file is this process's own journal; nothing else
        // truncates it while mapped (a shorter file would fault the stores).
        self.map = Some(unsafe { memmap2::MmapMut::map_mut(&self.file)? });
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn swap_file_for_test(&mut self, file: File) {
        self.map = None;
        self.file = file;
    }

    /// Removes the file (on a clean close nothing is pending).
    pub fn remove(mut self) -> io::Result<()> {
        self.map = None;
        std::fs::remove_file(&self.path)
    }

    /// After a failed write: empty the file, so that no journal whose datums
    /// later reach a block without an intent is left to be recovered twice.
    fn break_off(&mut self, e: io::Error) -> io::Error {
        self.broken = true;
        self.map = None;
        if self.file.set_len(0).is_err() {
            let _ = std::fs::remove_file(&self.path);
        }
        self.len = 0;
        e
    }
}

/// Whether the journal's file system overwrites a file's allocated blocks in
/// place, so that a store to a mapping of them can never need new space (on
/// a full disk, a store that does gets SIGBUS instead of an error): ext2/3/4,
/// XFS and tmpfs. Copy-on-write ones (btrfs, ZFS, bcachefs) and anything
/// else get `pwrite`.
fn overwrites_in_place(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    const EXT4: i64 = 0xEF53;
    const XFS: i64 = 0x5846_5342;
    const TMPFS: i64 = 0x0102_1994;
    // SAFETY: fstatfs fills the zeroed struct for an open fd.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    matches!(st.f_type as i64, EXT4 | XFS | TMPFS)
}

/// Bytes of whole records at the start of a journal file: up to its end
/// marker, or all of it (a journal written before end markers, or torn).
fn records_len(bytes: &[u8]) -> usize {
    match parse_to_end(bytes) {
        (p, at) if p.torn_bytes == 0 => at,
        _ => bytes.len(),
    }
}

#[cfg(test)]
mod tests;
