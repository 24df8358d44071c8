//! The journal's format and recovery decisions, on bytes; and the file shell
//! on a real file.

use super::*;
use std::fs::File;
use crate::avro::ocf::{encode_long, BlockBuilder};
use crate::config::Codec;

const SYNC: SyncMarker = *b"0123456789abcdef";

fn journal(records: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, payload) in records {
        put_record(*tag, &[payload], &mut out);
    }
    out
}

fn intent(name: &str, offset: u64) -> (u8, Vec<u8>) {
    let mut p = offset.to_le_bytes().to_vec();
    p.extend_from_slice(name.as_bytes());
    (TAG_INTENT, p)
}

fn d(s: &str) -> (u8, Vec<u8>) {
    (TAG_DATUM, s.as_bytes().to_vec())
}

fn v(items: &[&str]) -> Vec<Vec<u8>> {
    items.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// A file's tail from the sync marker before `offset`: the marker, then the
/// framed block of `datums`.
fn tail_with_block(datums: &[&str]) -> Vec<u8> {
    let mut b = BlockBuilder::new(Codec::Null).unwrap();
    for x in datums {
        b.push(x.as_bytes());
    }
    let mut out = SYNC.to_vec();
    b.encode(&SYNC, &mut out).unwrap();
    out
}

#[test]
fn parse_splits_at_the_last_intent_and_ignores_a_torn_end() {
    let mut bytes = journal(&[d("a"), d("b"), intent("f1.avro", 100), d("c"), intent("f1.avro", 100), d("e")]);
    let whole = bytes.len();
    bytes.extend_from_slice(&[TAG_DATUM, 9, 0, 0, 0, b'x']);
    let p = parse(&bytes);
    assert_eq!(p.announced, v(&["a", "b", "c"]));
    assert_eq!(p.intent, Some(Intent { file_name: "f1.avro".into(), offset: 100 }));
    assert_eq!(p.later, v(&["e"]));
    assert_eq!(p.torn_bytes, bytes.len() - whole);
}

#[test]
fn parse_stops_at_garbage() {
    let mut bytes = journal(&[d("a")]);
    bytes.extend_from_slice(&[b'X', 0, 0, 0, 0, 0, 0]);
    let p = parse(&bytes);
    assert_eq!(p.later, v(&["a"]));
    assert_eq!(p.torn_bytes, 7);
    assert_eq!(parse(&[]), Parsed::default());
}

#[test]
fn parse_ends_at_the_end_marker_and_ignores_what_follows() {
    let mut bytes = journal(&[d("a")]);
    bytes.push(TAG_END);
    bytes.extend_from_slice(&journal(&[d("stale"), intent("f", 40)]));
    bytes.extend_from_slice(&[0; 100]);
    let p = parse(&bytes);
    assert_eq!((p.later, p.intent, p.torn_bytes), (v(&["a"]), None, 0));
    assert_eq!(records_len(&bytes), journal(&[d("a")]).len());
}

#[test]
fn without_an_intent_everything_is_pending() {
    let r = plan_recovery(parse(&journal(&[d("a"), d("b")])), None);
    assert_eq!(r, Recovery { pending: v(&["a", "b"]), truncate: None, announced_written: false });
}

#[test]
fn a_block_that_reached_the_file_is_not_written_again() {
    let p = parse(&journal(&[d("a"), d("b"), intent("f", 40), d("c")]));
    let tail = tail_with_block(&["a", "b"]);
    let r = plan_recovery(p, Some(&tail));
    assert_eq!(r, Recovery { pending: v(&["c"]), truncate: None, announced_written: true });
}

#[test]
fn a_later_block_after_a_stale_intent_also_counts_as_written() {
    // The journal could not be emptied and the file moved on: its announced
    // datums are in the file, whatever follows.
    let p = parse(&journal(&[d("a"), intent("f", 40)]));
    let mut tail = tail_with_block(&["a"]);
    tail.extend_from_slice(&tail_with_block(&["b"])[16..]);
    assert!(plan_recovery(p, Some(&tail)).announced_written);
}

#[test]
fn a_partial_block_is_cut_off_and_its_datums_are_pending() {
    let p = parse(&journal(&[d("a"), d("b"), intent("f", 40), d("c")]));
    let tail = tail_with_block(&["a", "b"]);
    for cut in [17, tail.len() / 2, tail.len() - 1] {
        let r = plan_recovery(parse(&journal(&[d("a"), d("b"), intent("f", 40), d("c")])), Some(&tail[..cut]));
        assert_eq!(r, Recovery { pending: v(&["a", "b", "c"]), truncate: Some(("f".into(), 40)), announced_written: false }, "cut at {cut}");
    }
    // Nothing after the marker: nothing to cut.
    let r = plan_recovery(p, Some(&tail[..16]));
    assert_eq!(r, Recovery { pending: v(&["a", "b", "c"]), truncate: None, announced_written: false });
}

#[test]
fn a_missing_file_or_a_foreign_marker_means_not_written() {
    let p = || parse(&journal(&[d("a"), intent("f", 40)]));
    assert_eq!(plan_recovery(p(), None).pending, v(&["a"]));
    let mut tail = tail_with_block(&["a"]);
    tail[0] ^= 1; // the marker before the block is not the block's own
    assert!(!plan_recovery(p(), Some(&tail)).announced_written);
}

#[test]
fn complete_block_rejects_nonsense_counts() {
    let mut b = Vec::new();
    encode_long(0, &mut b);
    encode_long(0, &mut b);
    b.extend_from_slice(&SYNC);
    assert_eq!(complete_block(&b, &SYNC), None, "a block of zero datums is never written");
    let mut b = Vec::new();
    encode_long(1, &mut b);
    encode_long(-5, &mut b);
    assert_eq!(complete_block(&b, &SYNC), None);
}

fn on_disk(j: &Journal) -> Parsed {
    parse(&std::fs::read(j.path()).unwrap())
}

#[test]
fn file_shell_commits_per_batch_and_resets() {
    for mapped in [true, false] {
        file_shell_commits_per_batch_and_resets_when(mapped);
    }
}

fn file_shell_commits_per_batch_and_resets_when(mapped: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, old) = Journal::open_as(dir.path(), Some(mapped)).unwrap();
    assert!(old.is_empty());
    j.record(b"a");
    j.record(b"b");
    assert_eq!(on_disk(&j), Parsed::default(), "nothing written before commit");
    j.commit().unwrap();
    j.intent("f", 7).unwrap();
    j.record(b"c");
    j.commit().unwrap();
    let p = on_disk(&j);
    assert_eq!((p.announced, p.later, p.torn_bytes), (v(&["a", "b"]), v(&["c"]), 0));
    j.reset().unwrap();
    assert_eq!(on_disk(&j), Parsed::default(), "empty after a reset");
    j.record(b"d");
    j.commit().unwrap();
    // The new record is followed by an end marker: the older ones behind it
    // ("b", the intent, "c") are not read again.
    assert_eq!(on_disk(&j), Parsed { later: v(&["d"]), ..Parsed::default() });
    drop(j);
    let (j, old) = Journal::open_as(dir.path(), Some(!mapped)).unwrap();
    assert_eq!(old, journal(&[d("d")]), "contents survive a reopen (by the other write path), without the rest");
    j.remove().unwrap();
    assert!(!dir.path().join(JOURNAL_NAME).exists());
}

#[test]
fn the_file_grows_for_a_batch_larger_than_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open_as(dir.path(), Some(true)).unwrap();
    let big = vec![7u8; 100_000];
    for _ in 0..5 {
        j.record(&big);
    }
    j.commit().unwrap();
    assert!(std::fs::metadata(j.path()).unwrap().len() >= 5 * 100_005);
    assert_eq!(on_disk(&j).later, vec![big; 5]);
}

#[test]
fn a_journal_from_a_pwrite_era_process_opens_and_continues() {
    // Older processes wrote records up to the end of the file, with no marker.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(JOURNAL_NAME), journal(&[d("a"), d("b")])).unwrap();
    let (mut j, old) = Journal::open(dir.path()).unwrap();
    assert_eq!(parse(&old).later, v(&["a", "b"]));
    j.record(b"c");
    j.commit().unwrap();
    assert_eq!(on_disk(&j).later, v(&["a", "b", "c"]));
}

#[test]
fn the_write_path_follows_the_file_system() {
    // This machine's temporary directory: whichever it is, a journal works.
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path()).unwrap();
    j.record(b"x");
    j.commit().unwrap();
    assert_eq!(on_disk(&j).later, v(&["x"]));
    // /dev/shm is tmpfs, which overwrites in place.
    if let Ok(f) = File::open("/dev/shm") {
        assert!(overwrites_in_place(&f));
    }
}
