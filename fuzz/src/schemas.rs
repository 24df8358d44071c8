//! The schemas the targets fuzz against.

use apache_avro::Schema;

/// SpeedData's example channel (`config/agents/example.avsc`).
pub const EXAMPLE: &str = include_str!("../../config/agents/example.avsc");

/// Every kind of value the validator walks: primitives, logical types,
/// enum, fixed, unions (with null, with a named type), nested and reused
/// records, arrays and maps of records and unions, and recursion.
pub const RICH: &str = r#"{
    "type": "record", "name": "rich", "namespace": "fuzz",
    "fields": [
        {"name": "time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "flag", "type": "boolean"},
        {"name": "count", "type": "int"},
        {"name": "ratio", "type": "float"},
        {"name": "value", "type": "double"},
        {"name": "label", "type": "string"},
        {"name": "blob", "type": "bytes"},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "state", "type": {"type": "enum", "name": "state", "symbols": ["OK", "WARN", "ERROR"]}},
        {"name": "mac", "type": {"type": "fixed", "name": "mac", "size": 6}},
        {"name": "maybe", "type": ["null", "double"]},
        {"name": "choice", "type": ["null", "string", "long", "fuzz.mac"]},
        {"name": "point", "type": {"type": "record", "name": "point", "fields": [
            {"name": "x", "type": "double"},
            {"name": "y", "type": "double"},
            {"name": "tag", "type": ["null", "fuzz.state"]}
        ]}},
        {"name": "origin", "type": "fuzz.point"},
        {"name": "samples", "type": {"type": "array", "items": "int"}},
        {"name": "points", "type": {"type": "array", "items": "fuzz.point"}},
        {"name": "gauges", "type": {"type": "map", "values": "double"}},
        {"name": "series", "type": {"type": "map", "values": {"type": "array", "items": ["null", "float"]}}},
        {"name": "next", "type": ["null", "fuzz.rich"]}
    ]
}"#;

/// Items that encode to zero bytes, whose block counts the validator cannot
/// bound by the datum's size. Only checked for panics and hangs: a reference
/// decoder would materialise every counted item.
pub const ZERO_SIZE: &str = r#"{
    "type": "record", "name": "zero", "namespace": "fuzz",
    "fields": [
        {"name": "n", "type": "long"},
        {"name": "nulls", "type": {"type": "array", "items": "null"}},
        {"name": "empties", "type": {"type": "array", "items": {"type": "fixed", "name": "none", "size": 0}}},
        {"name": "units", "type": {"type": "array", "items": {"type": "record", "name": "unit", "fields": [
            {"name": "a", "type": "null"}, {"name": "b", "type": "fuzz.none"}
        ]}}},
        {"name": "keys", "type": {"type": "map", "values": "null"}}
    ]
}"#;

/// What the decimators fold: nested records, nullable numbers, numbers of
/// every width, numbers inside arrays/maps (copied), a union of two numbers
/// (copied), and the time field inside a nested record (`header.stamp`).
pub const DECIMATE: &str = r#"{
    "type": "record", "name": "sample", "namespace": "fuzz",
    "fields": [
        {"name": "header", "type": {"type": "record", "name": "header", "fields": [
            {"name": "stamp", "type": "long"},
            {"name": "seq", "type": "int"}
        ]}},
        {"name": "time", "type": "long"},
        {"name": "label", "type": "string"},
        {"name": "x", "type": "float"},
        {"name": "y", "type": "double"},
        {"name": "n", "type": "int"},
        {"name": "big", "type": "long"},
        {"name": "temp", "type": ["null", "double"]},
        {"name": "count", "type": ["long", "null"]},
        {"name": "either", "type": ["int", "double"]},
        {"name": "pos", "type": {"type": "record", "name": "vec", "fields": [
            {"name": "x", "type": "float"},
            {"name": "y", "type": ["null", "int"]}
        ]}},
        {"name": "vel", "type": "fuzz.vec"},
        {"name": "flags", "type": {"type": "array", "items": "double"}},
        {"name": "extra", "type": {"type": "map", "values": "long"}},
        {"name": "status", "type": {"type": "enum", "name": "status", "symbols": ["OK", "BAD"]}},
        {"name": "seen", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "ok", "type": "boolean"},
        {"name": "raw", "type": {"type": "fixed", "name": "raw", "size": 3}}
    ]
}"#;

pub fn parse(text: &str) -> Schema {
    Schema::parse_str(text).expect("the fuzz schemas parse")
}
