//! Retention: which archive files to delete. The plan is pure (files, policy
//! and time in; indices out); the scan and the deletions are a thin shell.
//! Only files whose names the archive writes are candidates, and never the
//! file being written.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::Retention;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFile {
    pub path: PathBuf,
    pub len: u64,
    pub modified: SystemTime,
}

/// Whether `name` is one the archive writes for `prefix`:
/// `<prefix>-YYYYMMDDTHHMMSS.ffffffZ.avro`, optionally with `-N` before `.avro`.
pub fn is_archive_name(prefix: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else { return false };
    let Some(rest) = rest.strip_suffix(".avro") else { return false };
    let b = rest.as_bytes();
    // YYYYMMDD T HHMMSS . ffffff Z  = 8 + 1 + 6 + 1 + 6 + 1 = 23 bytes
    if b.len() < 23 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let stamp_ok = digits(0..8) && b[8] == b'T' && digits(9..15) && b[15] == b'.' && digits(16..22) && b[22] == b'Z';
    let suffix = &b[23..];
    let suffix_ok = suffix.is_empty()
        || (suffix.len() >= 2 && suffix[0] == b'-' && suffix[1..].iter().all(u8::is_ascii_digit));
    stamp_ok && suffix_ok
}

/// The files (indices into `files`, which is sorted oldest first) that the
/// policy deletes at `now`. `current` is never deleted.
pub fn plan(policy: Retention, files: &[ArchiveFile], current: Option<&Path>, now: SystemTime) -> Vec<usize> {
    let is_current = |f: &ArchiveFile| current.is_some_and(|c| c == f.path);
    match policy {
        Retention::Ttl(ttl) => files
            .iter()
            .enumerate()
            .filter(|(_, f)| !is_current(f) && now.duration_since(f.modified).is_ok_and(|age| age > ttl))
            .map(|(i, _)| i)
            .collect(),
        Retention::Quota(quota) => {
            let mut total: u64 = files.iter().map(|f| f.len).sum();
            let mut out = Vec::new();
            for (i, f) in files.iter().enumerate() {
                if total <= quota {
                    break;
                }
                if !is_current(f) {
                    total -= f.len;
                    out.push(i);
                }
            }
            out
        }
    }
}

/// The archive files of `prefix` in `dir`, oldest first (by name, which
/// carries the creation time, then by modification time).
pub fn scan(dir: &Path, prefix: &str) -> io::Result<Vec<ArchiveFile>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_archive_name(prefix, name) {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(m) if m.is_file() => m,
            _ => continue, // vanished meanwhile, or not a regular file
        };
        files.push(ArchiveFile { path: entry.path(), len: meta.len(), modified: meta.modified()? });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path).then(a.modified.cmp(&b.modified)));
    Ok(files)
}

/// Applies the policy to `dir`: returns (files deleted, bytes freed).
pub fn enforce(dir: &Path, prefix: &str, policy: Retention, current: Option<&Path>, now: SystemTime) -> io::Result<(u64, u64)> {
    let files = scan(dir, prefix)?;
    let (mut n, mut bytes) = (0, 0);
    for i in plan(policy, &files, current, now) {
        match std::fs::remove_file(&files[i].path) {
            Ok(()) => {
                n += 1;
                bytes += files[i].len;
                log::info!("retention: deleted {} ({} bytes)", files[i].path.display(), files[i].len);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("deleting {}: {e}", files[i].path.display()))),
        }
    }
    Ok((n, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    fn file(name: &str, len: u64, age_s: u64, now: SystemTime) -> ArchiveFile {
        ArchiveFile { path: PathBuf::from(name), len, modified: now - Duration::from_secs(age_s) }
    }

    #[test]
    fn recognises_only_archive_names() {
        assert!(is_archive_name("ex", "ex-20261122T044127.012305Z.avro"));
        assert!(is_archive_name("ex", "ex-20261122T044127.012305Z-3.avro"));
        assert!(!is_archive_name("ex", "ex-20261122T044127.012305Z.avro.bak"));
        assert!(!is_archive_name("ex", "other-20261122T044127.012305Z.avro"));
        assert!(!is_archive_name("ex", "ex-2026112T044127.012305Z.avro"));
        assert!(!is_archive_name("ex", "ex-20261122T044127.012305Z-.avro"));
        assert!(!is_archive_name("ex", "ex-notes.avro"));
        assert!(!is_archive_name("ex", "quarantine.jsonl"));
        // A channel whose name is a prefix of another's does not claim its files.
        assert!(!is_archive_name("ex", "ex-b-20261122T044127.012305Z.avro"));
    }

    #[test]
    fn ttl_deletes_only_old_files_and_never_the_current_one() {
        let now = T0 + Duration::from_secs(1_000_000);
        let files = vec![file("a", 1, 500, now), file("b", 1, 200, now), file("c", 1, 50, now), file("d", 1, 900, now)];
        let ttl = Retention::Ttl(Duration::from_secs(100));
        assert_eq!(plan(ttl, &files, Some(Path::new("d")), now), vec![0, 1]);
        assert_eq!(plan(ttl, &files, None, now), vec![0, 1, 3]);
    }

    #[test]
    fn quota_deletes_oldest_until_under_and_skips_the_current_one() {
        let now = T0 + Duration::from_secs(1_000);
        let files = vec![file("a", 40, 9, now), file("b", 30, 8, now), file("c", 20, 7, now), file("d", 10, 6, now)];
        assert_eq!(plan(Retention::Quota(100), &files, None, now), Vec::<usize>::new());
        assert_eq!(plan(Retention::Quota(60), &files, None, now), vec![0]);
        assert_eq!(plan(Retention::Quota(25), &files, None, now), vec![0, 1, 2]);
        // The current file counts towards the quota but is never deleted.
        assert_eq!(plan(Retention::Quota(70), &files, Some(Path::new("a")), now), vec![1]);
        assert_eq!(plan(Retention::Quota(25), &files, Some(Path::new("a")), now), vec![1, 2, 3]);
    }

    #[test]
    fn enforce_deletes_on_disk_and_leaves_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let names = ["ch-20260101T000000.000000Z.avro", "ch-20260101T000001.000000Z.avro", "ch-20260101T000002.000000Z.avro"];
        for n in names {
            std::fs::write(dir.path().join(n), [0u8; 100]).unwrap();
        }
        std::fs::write(dir.path().join("notes.avro"), [0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("quarantine.jsonl"), [0u8; 1000]).unwrap();
        let current = dir.path().join(names[0]);
        let (n, bytes) = enforce(dir.path(), "ch", Retention::Quota(250), Some(&current), SystemTime::now()).unwrap();
        assert_eq!((n, bytes), (1, 100));
        assert!(current.exists());
        assert!(!dir.path().join(names[1]).exists());
        assert!(dir.path().join(names[2]).exists());
        assert!(dir.path().join("notes.avro").exists());
        assert!(dir.path().join("quarantine.jsonl").exists());
    }
}
