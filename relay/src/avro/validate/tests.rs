//! Tests of the datum validator.
use super::*;
use crate::avro::testutil::{encode, example_datum, example_schema};
use apache_avro::types::Value;
use std::collections::HashMap;

fn validator(json: &str) -> (Schema, DatumValidator) {
    let schema = Schema::parse_str(json).unwrap();
    let v = DatumValidator::new(&schema).unwrap();
    (schema, v)
}

fn err(v: &DatumValidator, datum: &[u8]) -> DatumError {
    v.validate(datum).expect_err("datum should be rejected")
}

const ALL_TYPES: &str = r#"{
  "type": "record", "name": "all", "namespace": "t",
  "fields": [
    {"name": "n", "type": "null"},
    {"name": "b", "type": "boolean"},
    {"name": "i", "type": "int"},
    {"name": "l", "type": "long"},
    {"name": "f", "type": "float"},
    {"name": "d", "type": "double"},
    {"name": "by", "type": "bytes"},
    {"name": "s", "type": "string"},
    {"name": "fx", "type": {"type": "fixed", "name": "four", "size": 4}},
    {"name": "e", "type": {"type": "enum", "name": "color", "symbols": ["R", "G", "B"]}},
    {"name": "a", "type": {"type": "array", "items": "int"}},
    {"name": "m", "type": {"type": "map", "values": "string"}},
    {"name": "u", "type": ["null", "string", "four"]},
    {"name": "inner", "type": {"type": "record", "name": "inner", "fields": [
        {"name": "values", "type": {"type": "array", "items": "long"}},
        {"name": "c", "type": "color"}
    ]}},
    {"name": "date", "type": {"type": "int", "logicalType": "date"}},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "dec", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
    {"name": "uuid", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "dur", "type": {"type": "fixed", "name": "dur", "size": 12, "logicalType": "duration"}}
  ]
}"#;

fn all_types_value(n: i64) -> Value {
    let mut map = HashMap::new();
    map.insert("k".to_string(), Value::String("v".into()));
    map.insert("κλειδί".to_string(), Value::String("τιμή".into()));
    Value::Record(vec![
        ("n".into(), Value::Null),
        ("b".into(), Value::Boolean(true)),
        ("i".into(), Value::Int(i32::MIN)),
        ("l".into(), Value::Long(i64::MAX - n)),
        ("f".into(), Value::Float(1.5)),
        ("d".into(), Value::Double(-2.25)),
        ("by".into(), Value::Bytes(vec![0, 255, 7])),
        ("s".into(), Value::String("héllo".into())),
        ("fx".into(), Value::Fixed(4, vec![1, 2, 3, 4])),
        ("e".into(), Value::Enum(2, "B".into())),
        (
            "a".into(),
            Value::Array((0..n).map(|x| Value::Int(x as i32)).collect()),
        ),
        ("m".into(), Value::Map(map)),
        (
            "u".into(),
            Value::Union(2, Box::new(Value::Fixed(4, vec![9; 4]))),
        ),
        (
            "inner".into(),
            Value::Record(vec![
                (
                    "values".into(),
                    Value::Array(vec![Value::Long(-1), Value::Long(i64::MIN)]),
                ),
                ("c".into(), Value::Enum(0, "R".into())),
            ]),
        ),
        ("date".into(), Value::Date(19000)),
        ("ts".into(), Value::TimestampMicros(1_700_000_000_000_000)),
        (
            "dec".into(),
            Value::Decimal(apache_avro::Decimal::from(vec![1u8, 0])),
        ),
        (
            "uuid".into(),
            Value::String("936da01f-9abd-4d9d-80c7-02af85c822a8".into()),
        ),
        (
            "dur".into(),
            Value::Duration(apache_avro::Duration::new(
                apache_avro::Months::new(1),
                apache_avro::Days::new(2),
                apache_avro::Millis::new(3),
            )),
        ),
    ])
}

#[test]
fn accepts_the_example_stream() {
    let schema = example_schema();
    let v = DatumValidator::new(&schema).unwrap();
    for i in 0..1000 {
        v.validate(&example_datum(&schema, i)).unwrap();
    }
}

#[test]
fn accepts_every_type_and_rejects_every_truncation_and_extension() {
    let (schema, v) = validator(ALL_TYPES);
    for n in [0, 1, 70] {
        let d = encode(&schema, all_types_value(n));
        v.validate(&d).unwrap();
        // Avro encodings are self-delimiting: no strict prefix is a datum.
        for cut in 0..d.len() {
            assert!(
                v.validate(&d[..cut]).is_err(),
                "prefix of {cut} bytes accepted"
            );
        }
        let mut longer = d.clone();
        longer.push(0);
        let e = err(&v, &longer);
        assert_eq!(e.kind, DatumErrorKind::TrailingBytes(1));
        assert_eq!(e.offset, d.len());
    }
}

#[test]
fn varint_limits() {
    let (_, long) = validator(r#""long""#);
    long.validate(&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
        .unwrap();
    let e = err(
        &long,
        &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
    );
    assert_eq!(e.kind, DatumErrorKind::VarintTooLong);
    let e = err(&long, &[0xff; 11]);
    assert_eq!((e.kind, e.offset), (DatumErrorKind::VarintTooLong, 0));
    assert_eq!(err(&long, &[0x80]).kind, DatumErrorKind::UnexpectedEnd);

    let (_, int) = validator(r#""int""#);
    int.validate(&[0xfe, 0xff, 0xff, 0xff, 0x0f]).unwrap(); // i32::MAX
    int.validate(&[0xff, 0xff, 0xff, 0xff, 0x0f]).unwrap(); // i32::MIN
    assert_eq!(
        err(&int, &[0x80, 0x80, 0x80, 0x80, 0x10]).kind,
        DatumErrorKind::IntOutOfRange
    );
    assert_eq!(
        err(&int, &[0x80, 0x80, 0x80, 0x80, 0x80, 0]).kind,
        DatumErrorKind::VarintTooLong
    );
}

#[test]
fn scalar_errors_name_field_and_offset() {
    let (schema, v) = validator(ALL_TYPES);
    let good = encode(&schema, all_types_value(0));
    // Field `b` (boolean) is the first byte: null takes none.
    let mut d = good.clone();
    d[0] = 2;
    let e = err(&v, &d);
    assert_eq!(
        (e.kind.clone(), e.offset, e.path.as_str()),
        (DatumErrorKind::InvalidBoolean(2), 0, "b")
    );
    assert_eq!(
        e.to_string(),
        "boolean byte 0x02 is neither 0 nor 1 at byte 0 in field `b`"
    );

    let (_, s) =
        validator(r#"{"type":"record","name":"r","fields":[{"name":"message","type":"string"}]}"#);
    let e = err(&s, &[3]);
    assert_eq!(
        (e.kind, e.path.as_str()),
        (DatumErrorKind::NegativeLength(-2), "message")
    );
    let e = err(&s, &[8, b'a', b'b']);
    assert_eq!(
        e.kind,
        DatumErrorKind::LengthBeyondEnd {
            length: 4,
            remaining: 2
        }
    );
    let e = err(&s, &[6, b'a', 0xc3, 0x28]);
    assert_eq!((e.kind, e.offset), (DatumErrorKind::InvalidUtf8, 2));
    s.validate(&[6, b'a', 0xc3, 0xa9]).unwrap();

    let (_, f) = validator(r#"{"type":"fixed","name":"f","size":4}"#);
    assert_eq!(err(&f, &[1, 2, 3]).kind, DatumErrorKind::UnexpectedEnd);

    let (_, en) = validator(r#"{"type":"enum","name":"e","symbols":["A","B"]}"#);
    en.validate(&[2]).unwrap();
    assert_eq!(
        err(&en, &[4]).kind,
        DatumErrorKind::EnumIndexOutOfRange {
            index: 2,
            symbols: 2
        }
    );
    assert_eq!(
        err(&en, &[1]).kind,
        DatumErrorKind::EnumIndexOutOfRange {
            index: -1,
            symbols: 2
        }
    );

    let (_, u) = validator(r#"["null","int"]"#);
    u.validate(&[0]).unwrap();
    u.validate(&[2, 4]).unwrap();
    assert_eq!(
        err(&u, &[4]).kind,
        DatumErrorKind::UnionBranchOutOfRange {
            index: 2,
            branches: 2
        }
    );
    assert_eq!(
        err(&u, &[1]).kind,
        DatumErrorKind::UnionBranchOutOfRange {
            index: -1,
            branches: 2
        }
    );
}

#[test]
fn nested_paths() {
    let (schema, v) = validator(ALL_TYPES);
    let good = encode(&schema, all_types_value(5));
    v.validate(&good).unwrap();
    // Corrupt inner.values[1] (i64::MIN, 10 bytes ending in 0x01) into an
    // 11-byte varint.
    let tail = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    let at = good.windows(10).position(|w| w == tail).unwrap();
    let mut d = good.clone();
    d[at + 9] = 0x81;
    let e = err(&v, &d);
    assert_eq!(
        (e.kind.clone(), e.offset, e.path.as_str()),
        (DatumErrorKind::VarintTooLong, at, "inner.values[1]")
    );

    let (_, m) = validator(
        r#"{"type":"record","name":"r","fields":[{"name":"tags","type":{"type":"map","values":"boolean"}}]}"#,
    );
    m.validate(&[2, 2, b'k', 1, 0]).unwrap();
    let e = err(&m, &[2, 2, b'k', 7, 0]);
    assert_eq!(e.path, r#"tags["k"]"#);
    assert_eq!(e.offset, 3);
}

#[test]
fn blocks_with_byte_sizes() {
    let (_, v) = validator(r#"{"type":"array","items":"int"}"#);
    // Two items in a negative-count block of 2 bytes, then one plain block.
    v.validate(&[3, 4, 2, 4, 2, 6, 0]).unwrap();
    let e = err(&v, &[3, 6, 2, 4, 0]);
    assert_eq!(
        e.kind,
        DatumErrorKind::BlockSizeMismatch {
            declared: 3,
            actual: 2
        }
    );
    assert_eq!(
        err(&v, &[3, 1, 2, 4, 0]).kind,
        DatumErrorKind::NegativeLength(-1)
    );
    let min = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0,
    ];
    assert_eq!(err(&v, &min).kind, DatumErrorKind::InvalidBlockCount);
    // A count that cannot fit is rejected before looping over it.
    let huge = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0];
    assert!(matches!(
        err(&v, &huge).kind,
        DatumErrorKind::BlockCountBeyondEnd { .. }
    ));
    // Missing terminator.
    assert_eq!(err(&v, &[2, 2]).kind, DatumErrorKind::UnexpectedEnd);
}

#[test]
fn zero_size_items_do_not_loop() {
    let (_, v) = validator(r#"{"type":"array","items":"null"}"#);
    let huge = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0];
    let t = std::time::Instant::now();
    v.validate(&huge).unwrap();
    assert!(t.elapsed() < std::time::Duration::from_millis(100));
}

const LIST: &str = r#"{"type":"record","name":"node","namespace":"l","fields":[
    {"name":"value","type":"int"},
    {"name":"next","type":["null","node"]}]}"#;

fn list(n: usize) -> Vec<u8> {
    let mut d = Vec::new();
    for _ in 0..n {
        d.extend_from_slice(&[2, 2]); // value 1, branch "node"
    }
    d.extend_from_slice(&[2, 0]); // value 1, branch null
    d
}

#[test]
fn recursive_schemas() {
    let (schema, v) = validator(LIST);
    v.validate(&list(0)).unwrap();
    v.validate(&list(100)).unwrap();
    let from_lib = encode(
        &schema,
        Value::Record(vec![
            ("value".into(), Value::Int(5)),
            (
                "next".into(),
                Value::Union(
                    1,
                    Box::new(Value::Record(vec![
                        ("value".into(), Value::Int(6)),
                        ("next".into(), Value::Union(0, Box::new(Value::Null))),
                    ])),
                ),
            ),
        ]),
    );
    v.validate(&from_lib).unwrap();
    let mut bad = list(2);
    bad.truncate(5);
    bad[4] = 0x80;
    assert_eq!(err(&v, &bad).path, "next.next.value");
    // An attacker's datum cannot nest past the limit (and the stack).
    assert_eq!(err(&v, &list(30_000)).kind, DatumErrorKind::TooDeep);
}

/// The success path allocates nothing by construction (`Fail` is only built
/// in the cold `fail()`); this keeps its `Result` a single word.
#[test]
fn hot_path_result_is_one_word() {
    assert_eq!(std::mem::size_of::<Res<()>>(), std::mem::size_of::<usize>());
}

/// Differential check against apache-avro's decoder on mutated datums:
/// whenever we accept, it decodes the whole datum; whenever it decodes
/// the whole datum, we accept unless one of our stricter rules applies.
#[test]
fn agrees_with_apache_avro_on_mutations() {
    let (schema, v) = validator(ALL_TYPES);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let base = encode(&schema, all_types_value(3));
    let (mut ours, mut theirs) = (0, 0);
    for _ in 0..20_000 {
        let mut d = base.clone();
        for _ in 0..1 + rand() % 3 {
            let i = (rand() as usize) % d.len();
            d[i] = rand() as u8;
        }
        let mut r = &d[..];
        #[expect(
            deprecated,
            reason = "the simplest whole-datum decoder for a test oracle"
        )]
        let lib = apache_avro::from_avro_datum(&schema, &mut r, None).is_ok() && r.is_empty();
        let mine = v.validate(&d);
        if mine.is_ok() {
            ours += 1;
            assert!(lib, "we accept what apache-avro rejects: {d:?}");
        }
        if lib {
            theirs += 1;
            if let Err(e) = mine {
                // Rules apache-avro does not enforce.
                assert!(
                    matches!(
                        e.kind,
                        DatumErrorKind::IntOutOfRange
                            | DatumErrorKind::VarintTooLong
                            | DatumErrorKind::InvalidBoolean(_)
                            | DatumErrorKind::InvalidUuid
                    ),
                    "apache-avro accepts what we reject: {e} {d:?}"
                );
            }
        }
    }
    assert!(ours > 100 && theirs >= ours, "ours {ours} theirs {theirs}");
}

/// `cargo test --release -p speeddata-xdp --lib validate_throughput -- --ignored --nocapture`
#[test]
#[ignore = "benchmark: run in release mode"]
fn validate_throughput() {
    let schema = example_schema();
    let v = DatumValidator::new(&schema).unwrap();
    let datums: Vec<Vec<u8>> = (0..1024)
        .map(|i| example_datum(&schema, i * 7919))
        .collect();
    let n = 20_000_000usize;
    let t = std::time::Instant::now();
    for i in 0..n {
        v.validate(std::hint::black_box(&datums[i & 1023])).unwrap();
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "validate: {:.1} M datums/s ({} bytes avg)",
        rate / 1e6,
        datums.iter().map(Vec::len).sum::<usize>() / 1024
    );
    assert!(rate > 2e6);
}

const FLAT_TYPES: &str = r#"{
  "type": "record", "name": "flat", "namespace": "t",
  "fields": [
    {"name": "n", "type": "null"},
    {"name": "b", "type": "boolean"},
    {"name": "i", "type": "int"},
    {"name": "l", "type": "long"},
    {"name": "f", "type": "float"},
    {"name": "d", "type": "double"},
    {"name": "by", "type": "bytes"},
    {"name": "s", "type": "string"},
    {"name": "fx", "type": {"type": "fixed", "name": "four", "size": 4}},
    {"name": "e", "type": {"type": "enum", "name": "color", "symbols": ["R", "G", "B"]}},
    {"name": "inner", "type": {"type": "record", "name": "inner", "fields": [
        {"name": "x", "type": "double"},
        {"name": "c", "type": "color"},
        {"name": "z", "type": {"type": "fixed", "size": 0, "name": "nothing"}}
    ]}},
    {"name": "date", "type": {"type": "int", "logicalType": "date"}},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}}
  ]
}"#;

fn flat_value(n: i64) -> Value {
    Value::Record(vec![
        ("n".into(), Value::Null),
        ("b".into(), Value::Boolean(n % 2 == 0)),
        ("i".into(), Value::Int(i32::MIN + n as i32)),
        ("l".into(), Value::Long(i64::MAX - n)),
        ("f".into(), Value::Float(1.5)),
        ("d".into(), Value::Double(-2.25)),
        ("by".into(), Value::Bytes(vec![0, 255, 7])),
        ("s".into(), Value::String("héllo".into())),
        ("fx".into(), Value::Fixed(4, vec![1, 2, 3, 4])),
        ("e".into(), Value::Enum(2, "B".into())),
        (
            "inner".into(),
            Value::Record(vec![
                ("x".into(), Value::Double(0.5)),
                ("c".into(), Value::Enum(0, "R".into())),
                ("z".into(), Value::Fixed(0, vec![])),
            ]),
        ),
        ("date".into(), Value::Date(19_000)),
        ("ts".into(), Value::TimestampMicros(n)),
    ])
}

#[test]
fn fast_path_covers_records_of_scalars_only() {
    let (_, v) = validator(FLAT_TYPES);
    use flat::Op::*;
    assert_eq!(
        v.flat.as_deref(),
        Some(&[Boolean, Int, Long, Skip(12), Bytes, Str, Skip(4), Enum(3), Skip(8), Enum(3), Int, Long][..])
    );
    let v = DatumValidator::new(&example_schema()).unwrap();
    assert_eq!(v.flat.as_deref(), Some(&[Long, Str, Int, Skip(32)][..]));
    // Anything else takes the general walk only.
    assert!(validator(ALL_TYPES).1.flat.is_none());
    assert!(validator(r#"{"type":"record","name":"r","fields":[{"name":"u","type":["null","int"]}]}"#).1.flat.is_none());
    assert!(validator(r#"{"type":"record","name":"r","fields":[{"name":"u","type":{"type":"string","logicalType":"uuid"}}]}"#).1.flat.is_none());
}

/// The fast path never accepts what the general walk rejects, so the two
/// together answer exactly as the general walk alone: every truncation,
/// extension and random mutation of valid datums, and varint edge cases.
#[test]
fn fast_path_agrees_with_the_general_walk() {
    for json in [FLAT_TYPES, crate::avro::testutil::EXAMPLE_SCHEMA] {
        let (schema, v) = validator(json);
        let ops = v.flat.as_deref().expect("flat schema");
        let check = |d: &[u8]| {
            let walk = v.validate_walk(d);
            // Never accepts what the walk rejects; and, though it need not,
            // accepts all that the walk accepts (else no speed-up).
            assert_eq!(flat::accepts(ops, d), walk.is_ok(), "{d:?}: walk says {walk:?}");
            assert_eq!(v.validate(d), walk, "{d:?}");
            walk.is_ok()
        };
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut accepted, mut total) = (0, 0);
        for n in 0..50 {
            let base = if json == FLAT_TYPES {
                encode(&schema, flat_value(n))
            } else {
                example_datum(&schema, n as u64 * 7919)
            };
            assert!(check(&base));
            for cut in 0..base.len() {
                assert!(!check(&base[..cut]));
            }
            let mut longer = base.clone();
            longer.push(0);
            assert!(!check(&longer));
            for _ in 0..2_000 {
                let mut d = base.clone();
                for _ in 0..1 + rand() % 3 {
                    let i = (rand() as usize) % d.len();
                    d[i] = match rand() % 4 {
                        0 => 0x80,
                        1 => 0xff,
                        2 => 0x01,
                        _ => rand() as u8,
                    };
                }
                total += 1;
                accepted += usize::from(check(&d));
            }
        }
        assert!(accepted > 100 && accepted < total, "{accepted} of {total}");
    }
}

/// Varints of every length at every distance from the end of the datum
/// (the fast path reads a word at a time where 8 bytes are left).
#[test]
fn fast_path_varint_edges() {
    let (_, v) = validator(r#"{"type":"record","name":"r","fields":[{"name":"l","type":"long"},{"name":"i","type":"int"}]}"#);
    let ops = v.flat.as_deref().unwrap();
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for l in 1..=11usize {
        for last in [0x00u8, 0x01, 0x02, 0x0f, 0x10, 0x7f, 0x80, 0xff] {
            let mut varint = vec![0x80u8; l - 1];
            varint.push(last);
            cases.push(varint);
        }
    }
    for long in &cases {
        for int in &cases {
            for pad in 0..3 {
                let mut d = long.clone();
                d.extend_from_slice(int);
                d.extend(std::iter::repeat_n(0u8, pad));
                let walk = v.validate_walk(&d);
                assert_eq!(flat::accepts(ops, &d), walk.is_ok(), "{d:?}: walk says {walk:?}");
                assert_eq!(v.validate(&d), walk, "{d:?}");
            }
        }
    }
}
