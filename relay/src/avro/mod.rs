//! Avro: datum validation against a channel schema and Object Container File
//! archives.
//!
//! The pure parts — [`DatumValidator`], OCF framing ([`ocf`]) and rotation
//! decisions ([`rotation`]) — take bytes and times as inputs and are tested
//! without files or clocks; [`Archive`] is the thin file-I/O shell around them.

pub mod archive;
pub mod journal;
pub mod ocf;
pub mod rotation;
pub(crate) mod schema_table;
mod syncer;
pub mod validate;

pub use archive::{Archive, ArchiveError, ArchiveStats};
pub use ocf::{BlockBuilder, SyncMarker};
pub use rotation::{should_rotate, FileState};
pub use validate::{DatumError, DatumErrorKind, DatumValidator, SchemaError};

#[cfg(test)]
pub(crate) mod testutil {
    //! The example channel's schema and datums, shared by the tests.

    use apache_avro::types::Value;
    use apache_avro::writer::datum::GenericDatumWriter;
    use apache_avro::Schema;

    /// SpeedData's example schema (the repository's copy of it).
    pub const EXAMPLE_SCHEMA: &str = include_str!("../../../config/agents/example.avsc");

    pub fn example_schema() -> Schema {
        Schema::parse_str(EXAMPLE_SCHEMA).unwrap()
    }

    /// The `i`-th sample of the example stream.
    pub fn example_value(i: u64) -> Value {
        let t = i as f64 / 1000.0;
        Value::Record(vec![
            (
                "time".into(),
                Value::Long(1_700_000_000_000_000_000 + i as i64 * 200_000),
            ),
            ("message".into(), Value::String(format!("sample {i}"))),
            ("counter".into(), Value::Int(i as i32)),
            ("sine_wave".into(), Value::Double(t.sin())),
            ("ramp".into(), Value::Double(t % 1.0)),
            (
                "square_wave".into(),
                Value::Double(if i % 100 < 50 { 1.0 } else { -1.0 }),
            ),
            (
                "noise".into(),
                Value::Double((i.wrapping_mul(2654435761) % 1000) as f64 / 1000.0),
            ),
        ])
    }

    pub fn encode(schema: &Schema, value: Value) -> Vec<u8> {
        GenericDatumWriter::builder(schema)
            .build()
            .unwrap()
            .write_value_to_vec(value)
            .unwrap()
    }

    pub fn example_datum(schema: &Schema, i: u64) -> Vec<u8> {
        encode(schema, example_value(i))
    }
}
