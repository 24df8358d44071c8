//! Avro files in every codec (`storage.codec`), written by the relay's archive,
//! are read back record for record by Python's fastavro and by the reference
//! `avro` package (the consumers SpeedData's users already have).

use std::time::{Duration, SystemTime};

use integration_tests::datum::{example_datum, example_json, example_schema};
use integration_tests::relay::read_avro_independently;
use relay::avro::Archive;
use relay::config::{Codec, Rotation};

fn round_trip(codec: Codec) {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(integration_tests::relay::example_schema_path()).unwrap();
    let schema = example_schema();
    // Small size rotation and blocks, so several files of several blocks each.
    let mut archive = Archive::open(
        dir.path().to_path_buf(),
        "example",
        &text,
        Rotation::Size(20_000),
        codec,
        4096,
        Duration::from_millis(100),
        SystemTime::now(),
    )
    .unwrap();
    let t0 = SystemTime::now();
    for seq in 0..2000u32 {
        archive.append(&example_datum(&schema, seq), t0 + Duration::from_micros(seq as u64)).unwrap();
    }
    archive.close().unwrap();
    assert!(archive.stats().files_opened >= 2, "{codec:?}: expected rotation");
    let records = read_avro_independently(dir.path());
    assert_eq!(records.len(), 2000, "{codec:?}");
    for (seq, r) in records.iter().enumerate() {
        assert_eq!(r, &example_json(seq as u32), "{codec:?} record {seq}");
    }
}

#[test]
fn null_codec() {
    round_trip(Codec::Null);
}

#[test]
fn deflate_codec() {
    round_trip(Codec::Deflate);
}

#[test]
fn snappy_codec() {
    round_trip(Codec::Snappy);
}

#[test]
fn zstandard_codec() {
    round_trip(Codec::Zstandard);
}
