//! Write-ahead journal of the pending block, so that a channel process killed
//! with SIGKILL loses at most the receive batch it held, not the up to
//! `flush_interval` / `flush_bytes` of datums waiting for their block.
//!
//! `.journal` in the archive directory holds, in order:
//! - `D` records: each datum added to the pending block, written once per
//!   receive batch ([`Journal::commit`]: one `pwrite`);
//! - a `W` record ("intent") just before a block is written: the file name and
//!   the offset the block goes to.
//!
//! After the block is written the journal is emptied. Page-cache writes
//! survive the death of the process (not of the machine, which is not what
//! this is for: no fsync per batch).
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
    let mut p = Parsed::default();
    let mut at = 0;
    while bytes.len() - at >= RECORD_HEADER {
        let tag = bytes[at];
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
    p.torn_bytes = bytes.len() - at;
    p
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

/// The journal file of one archive directory.
pub struct Journal {
    file: File,
    path: PathBuf,
    /// Bytes in the file.
    len: u64,
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
        let path = dir.join(JOURNAL_NAME);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        let old = std::fs::read(&path)?;
        let len = old.len() as u64;
        Ok((Journal { file, path, len, buf: Vec::new(), broken: false }, old))
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

    /// Writes the current batch's records.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.buf.is_empty() || self.broken {
            self.buf.clear();
            return Ok(());
        }
        let r = self.file.write_all_at(&self.buf, self.len);
        let n = self.buf.len() as u64;
        self.buf.clear();
        match r {
            Ok(()) => {
                self.len += n;
                Ok(())
            }
            Err(e) => Err(self.break_off(e)),
        }
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

    /// Empties the journal after its datums' block was written.
    pub fn reset(&mut self) -> io::Result<()> {
        self.buf.clear();
        if self.len == 0 && !self.broken {
            return Ok(());
        }
        self.file.set_len(0)?;
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
        self.file = OpenOptions::new().read(true).write(true).open(&self.path)?;
        self.len = bytes.len() as u64;
        self.buf.clear();
        self.broken = false;
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn swap_file_for_test(&mut self, file: File) {
        self.file = file;
    }

    /// Removes the file (on a clean close nothing is pending).
    pub fn remove(self) -> io::Result<()> {
        std::fs::remove_file(&self.path)
    }

    /// After a failed write: empty the file, so that no journal whose datums
    /// later reach a block without an intent is left to be recovered twice.
    fn break_off(&mut self, e: io::Error) -> io::Error {
        self.broken = true;
        if self.file.set_len(0).is_ok() {
            self.len = 0;
        } else {
            let _ = std::fs::remove_file(&self.path);
        }
        e
    }
}

#[cfg(test)]
mod tests;
