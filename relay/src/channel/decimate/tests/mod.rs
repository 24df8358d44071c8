//! Decimator tests: windows and downsample here; algorithm results against
//! an independent reference ([`reference`]) on the example schema and on a
//! schema with nested records and nullable numbers; property tests
//! ([`props`]); an ignored throughput measurement ([`throughput`]).

mod layout;
mod props;
mod reference;
mod throughput;
mod windows;

use std::time::{Duration, SystemTime};

use apache_avro::Schema;

use super::{Decimator, OutBatch};
use crate::config::{Algorithm, Decimation, Window};

pub(super) const ALGORITHMS: [Algorithm; 4] = [
    Algorithm::Downsample,
    Algorithm::Average,
    Algorithm::MinMax,
    Algorithm::Rms,
];

/// A schema with nested records, nullable numbers, a float, numbers inside
/// an array and a map (copied), an enum and a timestamp other than `time`.
pub(super) const NESTED_SCHEMA: &str = r#"{
    "type": "record", "name": "sample", "namespace": "test",
    "fields": [
        {"name": "time", "type": "long"},
        {"name": "label", "type": "string"},
        {"name": "pos", "type": {"type": "record", "name": "vec", "fields": [
            {"name": "x", "type": "float"},
            {"name": "y", "type": "int"},
            {"name": "z", "type": ["null", "double"]}
        ]}},
        {"name": "temp", "type": ["null", "double"]},
        {"name": "count", "type": ["long", "null"]},
        {"name": "flags", "type": {"type": "array", "items": "int"}},
        {"name": "extra", "type": {"type": "map", "values": "double"}},
        {"name": "status", "type": {"type": "enum", "name": "status", "symbols": ["OK", "BAD"]}},
        {"name": "inner", "type": {"type": "record", "name": "inner", "fields": [
            {"name": "deep", "type": {"type": "record", "name": "deep", "fields": [
                {"name": "v", "type": "double"},
                {"name": "n", "type": "long"}
            ]}},
            {"name": "ok", "type": "boolean"}
        ]}},
        {"name": "vel", "type": "test.vec"},
        {"name": "seen", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "big", "type": "long"}
    ]
}"#;

pub(super) fn nested_schema() -> Schema {
    Schema::parse_str(NESTED_SCHEMA).unwrap()
}

/// Arrival times start here: 3 ms into a 10 ms grid cell, so the first time
/// window is a partial one.
pub(super) fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_003_000_000)
}

pub(super) fn config(algorithm: Algorithm, window: Window) -> Decimation {
    Decimation {
        enabled: true,
        window,
        algorithm,
        time_field: "time".into(),
    }
}

pub(super) fn decimator(schema: &Schema, algorithm: Algorithm, window: Window) -> Decimator {
    Decimator::new(&config(algorithm, window), schema)
        .unwrap()
        .expect("enabled")
}

pub(super) fn collect(out: &OutBatch) -> Vec<Vec<u8>> {
    out.iter_from(0).map(<[u8]>::to_vec).collect()
}

/// Pushes every `(datum, arrival)`, then flushes; returns every output.
pub(super) fn run(d: &mut Decimator, input: &[(Vec<u8>, SystemTime)]) -> Vec<Vec<u8>> {
    let mut out = OutBatch::default();
    for (datum, at) in input {
        d.push(datum, *at, &mut out);
    }
    d.flush(&mut out);
    assert_eq!(d.unreadable, 0, "the layout could not walk a valid datum");
    collect(&out)
}
