//! Datums of the example schema, encoded with apache-avro (independently of
//! the relay's own validator).

use apache_avro::types::Value;
use apache_avro::Schema;

pub fn example_schema() -> Schema {
    let text = std::fs::read_to_string(crate::relay::example_schema_path()).expect("read example.avsc");
    Schema::parse_str(&text).expect("parse example.avsc")
}

/// The field values of datum number `seq`, as (name, value).
pub fn example_fields(seq: u32) -> Vec<(&'static str, Value)> {
    let t = seq as f64 / 1000.0 * std::f64::consts::TAU;
    vec![
        ("time", Value::Long(1_700_000_000_000_000_000 + seq as i64 * 1_000_000)),
        ("message", Value::String(format!("datum {seq}"))),
        ("counter", Value::Int(seq as i32)),
        ("sine_wave", Value::Double(t.sin())),
        ("ramp", Value::Double((seq % 100) as f64 / 100.0)),
        ("square_wave", Value::Double(if seq % 50 < 25 { 1.0 } else { -1.0 })),
        ("noise", Value::Double(((seq as u64 * 2_654_435_761) % 1000) as f64 / 1000.0 - 0.5)),
    ]
}

/// Datum `seq` of the example schema, binary-encoded, no header.
pub fn example_datum(schema: &Schema, seq: u32) -> Vec<u8> {
    let record = Value::Record(example_fields(seq).into_iter().map(|(k, v)| (k.to_string(), v)).collect());
    apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .and_then(|w| w.write_value_to_vec(record))
        .expect("encode example datum")
}

/// The JSON a reader should produce for datum `seq` (fastavro/avro print
/// records as plain JSON objects).
pub fn example_json(seq: u32) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in example_fields(seq) {
        let j = match v {
            Value::Long(x) => serde_json::json!(x),
            Value::Int(x) => serde_json::json!(x),
            Value::Double(x) => serde_json::json!(x),
            Value::String(s) => serde_json::json!(s),
            other => panic!("unexpected {other:?}"),
        };
        m.insert(k.to_string(), j);
    }
    serde_json::Value::Object(m)
}

/// Sends example datums `seqs` to 127.0.0.1:`port` from inside `ns`, pausing
/// 1 ms after every `pause_every` so socket buffers never overflow.
pub fn send_to_loopback(ns: &crate::netns::Netns, port: u16, seqs: std::ops::Range<u32>, pause_every: u32) {
    ns.spawn(move || {
        let schema = example_schema();
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for seq in seqs {
            s.send_to(&example_datum(&schema, seq), ("127.0.0.1", port)).unwrap();
            if seq % pause_every == pause_every - 1 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    })
    .join()
    .unwrap();
}
