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

/// The store-wide quota: every channel's archive files, oldest first (by
/// modification time), minus the files being written, deleted until the
/// whole store is under `quota`. Each channel's newest file counts as being
/// written too (a rotation may have happened since `current` was read).
pub fn plan_store(quota: u64, channels: &[(String, Vec<ArchiveFile>)], current: &[PathBuf]) -> Vec<PathBuf> {
    let mut all: Vec<(&ArchiveFile, bool)> = Vec::new();
    for (_, files) in channels {
        let newest = files.iter().max_by(|a, b| a.path.cmp(&b.path)).map(|f| &f.path);
        for f in files {
            let keep = Some(&f.path) == newest || current.contains(&f.path);
            all.push((f, keep));
        }
    }
    all.sort_by(|a, b| a.0.modified.cmp(&b.0.modified).then(a.0.path.cmp(&b.0.path)));
    let mut total: u64 = all.iter().map(|(f, _)| f.len).sum();
    let mut out = Vec::new();
    for (f, keep) in all {
        if total <= quota {
            break;
        }
        if !keep {
            total -= f.len;
            out.push(f.path.clone());
        }
    }
    out
}

/// Applies the store-wide quota under `root` to the named channels' files.
pub fn enforce_store(root: &Path, channels: &[String], current: &[PathBuf], quota: u64) -> io::Result<(u64, u64)> {
    let mut scanned = Vec::new();
    for name in channels {
        match scan(&root.join(name), name) {
            Ok(files) => scanned.push((name.clone(), files)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let (mut n, mut bytes) = (0, 0);
    for path in plan_store(quota, &scanned, current) {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                n += 1;
                bytes += len;
                log::info!("retention (store quota): deleted {} ({len} bytes)", path.display());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("deleting {}: {e}", path.display()))),
        }
    }
    Ok((n, bytes))
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
    fn store_quota_deletes_oldest_across_channels_keeping_each_newest_and_current() {
        let now = T0 + Duration::from_secs(1_000);
        let a = vec![file("a-1", 40, 90, now), file("a-2", 40, 50, now), file("a-3", 40, 10, now)];
        let b = vec![file("b-1", 40, 80, now), file("b-2", 40, 40, now)];
        let chans = vec![("a".to_string(), a), ("b".to_string(), b)];
        // 200 bytes over 5 files; a-3 and b-2 are newest, so never deleted.
        let del = |q, cur: &[&str]| -> Vec<String> {
            let cur: Vec<PathBuf> = cur.iter().map(PathBuf::from).collect();
            plan_store(q, &chans, &cur).iter().map(|p| p.display().to_string()).collect()
        };
        assert_eq!(del(200, &[]), Vec::<String>::new());
        assert_eq!(del(160, &[]), vec!["a-1"]);
        assert_eq!(del(120, &[]), vec!["a-1", "b-1"]);
        assert_eq!(del(0, &[]), vec!["a-1", "b-1", "a-2"]);
        assert_eq!(del(0, &["a-2"]), vec!["a-1", "b-1"]);
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
