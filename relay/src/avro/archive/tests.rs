//! Tests of the archive shell, on real files in a temporary directory, with
//! time driven by hand.

use super::*;
use crate::avro::testutil::{example_datum, example_schema, example_value, EXAMPLE_SCHEMA};
use apache_avro::types::Value;

const T0: u64 = 1_700_000_000;

fn at_ms(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(T0 * 1000 + ms)
}

fn archive(dir: &Path, rotation: Rotation, codec: Codec, flush_bytes: usize) -> Archive {
    Archive::open(
        dir.to_path_buf(),
        "ch",
        EXAMPLE_SCHEMA,
        rotation,
        codec,
        flush_bytes,
        Duration::from_secs(1),
        at_ms(0),
    )
    .unwrap()
}

fn read_file(path: &Path) -> Vec<Value> {
    let f = File::open(path).unwrap();
    apache_avro::Reader::new(f)
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// Every `.avro` file in `dir`, in name order, with its records.
fn read_dir(dir: &Path) -> Vec<(PathBuf, Vec<Value>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "avro"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let records = read_file(&p);
            (p, records)
        })
        .collect()
}

fn all_records(dir: &Path) -> Vec<Value> {
    read_dir(dir).into_iter().flat_map(|(_, r)| r).collect()
}

fn expected(range: std::ops::Range<u64>) -> Vec<Value> {
    range.map(example_value).collect()
}

#[test]
fn records_read_back_in_order_for_every_codec() {
    let schema = example_schema();
    for codec in [Codec::Null, Codec::Deflate, Codec::Snappy, Codec::Zstandard] {
        let dir = tempfile::tempdir().unwrap();
        let mut a = archive(dir.path(), Rotation::Size(1 << 30), codec, 1000);
        for i in 0..500 {
            a.append(&example_datum(&schema, i), at_ms(i)).unwrap();
        }
        a.close().unwrap();
        let files = read_dir(dir.path());
        assert_eq!(files.len(), 1, "{codec:?}");
        assert_eq!(files[0].1, expected(0..500), "{codec:?}");
        let s = a.stats();
        assert_eq!(
            (s.records_written, s.files_opened, s.current_file),
            (500, 1, None)
        );
        assert_eq!(
            s.bytes_written,
            std::fs::metadata(&files[0].0).unwrap().len()
        );
    }
}

#[test]
fn file_name_is_prefix_and_utc_time_and_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let schema = example_schema();
    let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
    let mut a = archive(dir.path(), Rotation::Size(1 << 30), Codec::Null, 1 << 20);
    a.append(&example_datum(&schema, 0), t).unwrap();
    let first = a.stats().current_file.unwrap();
    assert_eq!(first, dir.path().join("ch-20231114T221320.123456Z.avro"));
    // A second archive (a restart) at the same instant gets its own file.
    let mut b = archive(dir.path(), Rotation::Size(1 << 30), Codec::Null, 1 << 20);
    b.append(&example_datum(&schema, 1), t).unwrap();
    let second = b.stats().current_file.unwrap();
    assert_eq!(second, dir.path().join("ch-20231114T221320.123456Z-1.avro"));
    a.close().unwrap();
    b.close().unwrap();
    assert_eq!(read_file(&first), expected(0..1));
    assert_eq!(read_file(&second), expected(1..2));
}

#[test]
fn size_rotation_keeps_files_near_the_threshold_and_none_empty() {
    let dir = tempfile::tempdir().unwrap();
    let schema = example_schema();
    let limit = 4096;
    let mut a = archive(dir.path(), Rotation::Size(limit), Codec::Null, 500);
    for i in 0..3000 {
        a.append(&example_datum(&schema, i), at_ms(i)).unwrap();
    }
    a.close().unwrap();
    let files = read_dir(dir.path());
    assert!(files.len() > 30, "{} files", files.len());
    for (i, (path, records)) in files.iter().enumerate() {
        let size = std::fs::metadata(path).unwrap().len();
        assert!(!records.is_empty(), "{} is empty", path.display());
        assert!(size <= limit, "{} has {size} bytes", path.display());
        // A block is ~560 bytes here; every file but the last is within one of the limit.
        if i + 1 < files.len() {
            assert!(
                size > limit - 700,
                "{} has only {size} bytes",
                path.display()
            );
        }
    }
    assert_eq!(all_records(dir.path()), expected(0..3000));
    assert_eq!(a.stats().files_opened, files.len() as u64);
}

#[test]
fn time_rotation_driven_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let schema = example_schema();
    let period = Duration::from_secs(60);
    let mut a = archive(dir.path(), Rotation::Time(period), Codec::Snappy, 1 << 20);
    // 10 datums/s for 5 minutes; the shell polls at every deadline that passed.
    let n = 3000;
    for i in 0..n {
        let now = at_ms(i * 100);
        while a.next_deadline().is_some_and(|d| d <= now) {
            a.poll(now).unwrap();
        }
        a.append(&example_datum(&schema, i), now).unwrap();
    }
    let last = at_ms(n * 100);
    a.poll(last + Duration::from_secs(2)).unwrap();
    // Idle past the period: the file is closed, and no new (empty) one opened.
    a.poll(last + Duration::from_secs(600)).unwrap();
    assert_eq!(a.stats().current_file, None);
    assert_eq!(a.next_deadline(), None);

    let files = read_dir(dir.path());
    assert_eq!(
        files.len(),
        5,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (path, records) in &files {
        assert!(!records.is_empty());
        let times: Vec<i64> = records
            .iter()
            .map(|r| match r {
                Value::Record(f) => match f[0].1 {
                    Value::Long(t) => t,
                    _ => unreachable!(),
                },
                _ => unreachable!(),
            })
            .collect();
        // example_value(i) is 0.2 ms apart in `time`; arrival is i * 100 ms.
        let span_ms = (times[times.len() - 1] - times[0]) as u64 / 200_000 * 100;
        assert!(span_ms <= 61_000, "{} spans {span_ms} ms", path.display());
    }
    assert_eq!(all_records(dir.path()), expected(0..n));
}

#[test]
fn reader_sees_every_flushed_record_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let schema = example_schema();
    let mut a = archive(dir.path(), Rotation::Size(1 << 30), Codec::Deflate, 2000);
    for i in 0..1000 {
        a.append(&example_datum(&schema, i), at_ms(i)).unwrap();
        if i % 97 == 0 {
            a.poll(at_ms(i + 1000)).unwrap();
        }
        if i % 50 == 0 {
            let s = a.stats();
            let path = s.current_file.unwrap();
            let got = read_file(&path);
            assert_eq!(got.len() as u64, s.records_written);
            assert_eq!(got, expected(0..s.records_written));
        }
    }
    drop(a); // Drop writes what is pending, like close.
    assert_eq!(all_records(dir.path()), expected(0..1000));
}

#[test]
fn flush_interval_and_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let schema = example_schema();
    let mut a = archive(dir.path(), Rotation::Size(1 << 30), Codec::Null, 1 << 20);
    assert_eq!(a.next_deadline(), None);
    a.append(&example_datum(&schema, 0), at_ms(0)).unwrap();
    a.append(&example_datum(&schema, 1), at_ms(300)).unwrap();
    // The file exists (header only) from the first datum on.
    let path = a.stats().current_file.unwrap();
    assert!(read_file(&path).is_empty());
    assert_eq!(a.next_deadline(), Some(at_ms(1000)));
    a.poll(at_ms(999)).unwrap();
    assert_eq!(a.stats().records_written, 0);
    a.poll(at_ms(1000)).unwrap();
    assert_eq!(a.stats().records_written, 2);
    assert_eq!(a.next_deadline(), None);
    assert_eq!(read_file(&path), expected(0..2));
}

#[test]
fn poll_ahead_writes_a_block_that_falls_due_within_the_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let schema = example_schema();
    let mut a = archive(dir.path(), Rotation::Size(1 << 30), Codec::Null, 1 << 20);
    a.append(&example_datum(&schema, 0), at_ms(0)).unwrap();
    // Due at 1000: not within 100 ms of 800, within 200 ms of 800.
    a.poll_ahead(at_ms(800), Duration::from_millis(100)).unwrap();
    assert_eq!(a.stats().records_written, 0);
    a.poll_ahead(at_ms(800), Duration::from_millis(200)).unwrap();
    assert_eq!(a.stats().records_written, 1);
    assert_eq!(a.next_deadline(), None);
    assert_eq!(all_records(dir.path()), expected(0..1));
}

#[test]
fn close_makes_the_file_valid_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let schema = example_schema();
    let mut a = archive(
        dir.path(),
        Rotation::Size(1 << 30),
        Codec::Zstandard,
        1 << 20,
    );
    for i in 0..10 {
        a.append(&example_datum(&schema, i), at_ms(i)).unwrap();
    }
    a.close().unwrap();
    assert_eq!(all_records(dir.path()), expected(0..10));
    // Closing again is harmless; a later datum starts a new file.
    a.close().unwrap();
    a.append(&example_datum(&schema, 10), at_ms(5000)).unwrap();
    a.close().unwrap();
    assert_eq!(read_dir(dir.path()).len(), 2);
    assert_eq!(all_records(dir.path()), expected(0..11));
}

#[test]
fn failed_write_keeps_the_block_and_the_file_valid() {
    let dir = tempfile::tempdir().unwrap();
    let schema = example_schema();
    let mut a = archive(dir.path(), Rotation::Size(1 << 30), Codec::Null, 500);
    let mut i = 0;
    while a.stats().records_written == 0 {
        a.append(&example_datum(&schema, i), at_ms(i)).unwrap();
        i += 1;
    }
    let path = a.stats().current_file.unwrap();
    let good_len = std::fs::metadata(&path).unwrap().len();
    a.fail_writes = 1;
    let err = loop {
        match a.append(&example_datum(&schema, i), at_ms(i)) {
            Ok(()) => i += 1,
            Err(e) => break e,
        }
    };
    i += 1; // That datum was kept.
    assert!(!err.datum_refused());
    assert!(err.to_string().contains("writing a block to"), "{err}");
    // The half-written block was cut off: the file is as before, and valid.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
    let before = a.stats().records_written;
    assert_eq!(read_file(&path), expected(0..before));
    // During the back-off the disk is left alone and datums are buffered.
    let failed_at = at_ms(i);
    assert!(a.next_deadline().unwrap() >= failed_at + Duration::from_millis(900));
    for _ in 0..5 {
        a.append(&example_datum(&schema, i), at_ms(i)).unwrap();
        i += 1;
    }
    assert_eq!(a.stats().records_written, before);
    // After it, the whole backlog goes out.
    a.poll(failed_at + Duration::from_secs(2)).unwrap();
    a.close().unwrap();
    assert_eq!(all_records(dir.path()), expected(0..i));
}

#[test]
fn backlog_is_bounded_and_refusals_are_marked() {
    let dir = tempfile::tempdir().unwrap();
    let schema = example_schema();
    let mut a = archive(dir.path(), Rotation::Size(1 << 30), Codec::Null, 1000);
    a.fail_writes = usize::MAX;
    let mut accepted = 0u64;
    let mut refused = 0;
    // Time moves on, so writes are retried (and fail) throughout.
    for i in 0..40_000u64 {
        match a.append(&example_datum(&schema, accepted), at_ms(i * 10)) {
            Ok(()) => accepted += 1,
            Err(e) if e.datum_refused() => refused += 1,
            Err(e) => {
                assert!(e.to_string().contains("No space left"), "{e}");
                accepted += 1;
            }
        }
    }
    assert!(refused > 0);
    assert!(a.block.data_len() <= MIN_BACKLOG);
    // The disk recovers: everything accepted is written.
    a.fail_writes = 0;
    a.poll(at_ms(40_000 * 10 + 5000)).unwrap();
    a.close().unwrap();
    assert_eq!(all_records(dir.path()), expected(0..accepted));
}

#[test]
fn errors_from_an_unusable_directory() {
    let dir = tempfile::tempdir().unwrap();
    let schema = example_schema();
    // A directory that cannot exist: a path component is a regular file.
    // (A read-only directory does not stop root, which tests may run as.)
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    let e = Archive::open(
        blocker.join("sub"),
        "ch",
        EXAMPLE_SCHEMA,
        Rotation::Size(1 << 20),
        Codec::Null,
        1000,
        Duration::from_secs(1),
        at_ms(0),
    )
    .err()
    .unwrap();
    assert!(
        e.to_string().starts_with("creating archive directory"),
        "{e}"
    );

    // The directory vanishes after open: the datum is kept, not refused.
    let chdir = dir.path().join("ch");
    let mut a = archive(&chdir, Rotation::Size(1 << 20), Codec::Null, 1000);
    std::fs::remove_dir_all(&chdir).unwrap();
    std::fs::write(&chdir, b"").unwrap();
    let e = a.append(&example_datum(&schema, 0), at_ms(0)).unwrap_err();
    assert!(!e.datum_refused());
    assert!(e.to_string().starts_with("creating"), "{e}");
    a.append(&example_datum(&schema, 1), at_ms(10)).unwrap();
    // It comes back; after the back-off everything is written.
    std::fs::remove_file(&chdir).unwrap();
    std::fs::create_dir(&chdir).unwrap();
    a.poll(at_ms(3000)).unwrap();
    a.close().unwrap();
    assert_eq!(all_records(&chdir), expected(0..2));
}

#[test]
fn error_converts_to_io_error() {
    let e = ArchiveError::Backlog {
        pending: 5,
        limit: 4,
    };
    assert!(e.datum_refused());
    assert_eq!(io::Error::from(e).kind(), io::ErrorKind::OutOfMemory);
}

/// What SIGKILL does to the archive: no close, no Drop.
fn kill(a: Archive) {
    std::mem::forget(a);
}

fn reopen(dir: &Path, ms: u64) -> Archive {
    Archive::open(
        dir.to_path_buf(),
        "ch",
        EXAMPLE_SCHEMA,
        Rotation::Size(1 << 30),
        Codec::Deflate,
        1 << 20,
        Duration::from_secs(1),
        at_ms(ms),
    )
    .unwrap()
}

#[test]
fn killed_before_its_block_loses_only_the_uncommitted_batch() {
    let dir = tempfile::tempdir().unwrap();
    let schema = example_schema();
    let mut a = archive(dir.path(), Rotation::Size(1 << 30), Codec::Deflate, 1 << 20);
    for i in 0..100 {
        a.append(&example_datum(&schema, i), at_ms(i)).unwrap();
        if i % 10 == 9 {
            a.commit().unwrap();
        }
    }
    // 100..105 arrived but their batch was not committed when the process died.
    for i in 100..105 {
        a.append(&example_datum(&schema, i), at_ms(i)).unwrap();
    }
    let first = a.stats().current_file.unwrap();
    kill(a);
    assert!(read_file(&first).is_empty(), "nothing was flushed before the kill");

    let b = reopen(dir.path(), 10_000);
    assert_eq!(b.stats().recovered, 100);
    assert_eq!(b.stats().records_written, 100, "written at once");
    let second = b.stats().current_file.unwrap();
    assert_ne!(first, second, "the restarted archive continues in a new file");
    assert_eq!(read_file(&second), expected(0..100));
    drop(b);
    assert!(!dir.path().join(journal::JOURNAL_NAME).exists(), "a clean close leaves no journal");
    assert_eq!(all_records(dir.path()), expected(0..100));
}

#[test]
fn killed_after_its_block_reached_the_file_writes_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let schema = example_schema();
    let mut a = archive(dir.path(), Rotation::Size(1 << 30), Codec::Deflate, 1 << 20);
    for i in 0..10 {
        a.append(&example_datum(&schema, i), at_ms(i)).unwrap();
    }
    a.commit().unwrap();
    a.poll(at_ms(2000)).unwrap();
    let path = a.stats().current_file.unwrap();
    let before_second = std::fs::metadata(&path).unwrap().len();
    for i in 10..15 {
        a.append(&example_datum(&schema, i), at_ms(3000 + i)).unwrap();
    }
    a.commit().unwrap();
    let journal_then = std::fs::read(dir.path().join(journal::JOURNAL_NAME)).unwrap();
    a.poll(at_ms(5000)).unwrap();
    kill(a);
    // Put back the journal as the kill between the block's write and the
    // journal's reset leaves it: the five datums and the intent.
    let mut j = journal::parse(&journal_then);
    assert_eq!(j.later.len(), 5);
    let (mut jf, _) = Journal::open(dir.path()).unwrap();
    jf.replace(&std::mem::take(&mut j.later)).unwrap();
    jf.intent(path.file_name().unwrap().to_str().unwrap(), before_second).unwrap();
    drop(jf);

    let b = reopen(dir.path(), 10_000);
    assert_eq!(b.stats().recovered, 0);
    drop(b);
    assert_eq!(all_records(dir.path()), expected(0..15));

    // Same, but the process died half-way through the block's write: the
    // partial block is cut off and its datums go to the new file.
    let full = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len((before_second + full) / 2).unwrap();
    let (mut jf, _) = Journal::open(dir.path()).unwrap();
    jf.replace(&journal::parse(&journal_then).later).unwrap();
    jf.intent(path.file_name().unwrap().to_str().unwrap(), before_second).unwrap();
    drop(jf);
    let b = reopen(dir.path(), 20_000);
    assert_eq!(b.stats().recovered, 5);
    drop(b);
    assert_eq!(read_file(&path), expected(0..10), "the partial block is gone");
    assert_eq!(all_records(dir.path()), expected(0..15));
}

#[test]
fn a_failed_journal_write_is_reported_and_the_archive_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let schema = example_schema();
    let mut a = archive(dir.path(), Rotation::Size(1 << 30), Codec::Null, 1 << 20);
    a.append(&example_datum(&schema, 0), at_ms(0)).unwrap();
    // Swap the journal for one on a file that refuses writes.
    let j = a.journal.as_mut().unwrap();
    let ro = dir.path().join("ro");
    std::fs::write(&ro, b"").unwrap();
    j.swap_file_for_test(File::open(&ro).unwrap());
    let e = a.commit().unwrap_err();
    assert!(e.to_string().starts_with("writing the journal"), "{e}");
    a.append(&example_datum(&schema, 1), at_ms(1)).unwrap();
    a.commit().unwrap();
    a.close().unwrap();
    assert_eq!(all_records(dir.path()), expected(0..2));
}

/// Files pass 2 GiB within an hour's rotation at a few MB/s: the write at
/// such an offset must not depend on a 32-bit `off_t` (Raspberry Pi OS
/// 32-bit). A sparse file, so nothing that large is written.
#[test]
fn a_block_is_written_past_4_gib() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let file = File::options().create(true).read(true).write(true).open(dir.path().join("big")).unwrap();
    let at = (4u64 << 30) + 5;
    write_all_vectored_at(&file, [b"ab", b"", b"cdef"], at).unwrap();
    let mut back = [0u8; 6];
    file.read_exact_at(&mut back, at).unwrap();
    assert_eq!(&back, b"abcdef");
    assert_eq!(file.metadata().unwrap().len(), at + 6);
}
