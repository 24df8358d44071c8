//! Which values are aggregated and which are copied, as compiled.

use apache_avro::types::Value;
use apache_avro::Schema;

use super::{decimator, nested_schema, run, t0};
use crate::avro::testutil::encode;
use crate::channel::decimate::layout::{compile, Branches, Kind, Op, Slot};
use crate::config::{Algorithm, Window};

fn plain(kind: Kind) -> Slot {
    Slot { kind, union: None }
}

fn nullable(kind: Kind, number: i64, null: i64) -> Slot {
    Slot {
        kind,
        union: Some(Branches {
            number,
            null: Some(null),
        }),
    }
}

#[test]
fn nested_records_flatten_and_nullable_numbers_are_slots() {
    let layout = compile(&nested_schema(), "time").unwrap();
    assert_eq!(
        layout.slots,
        vec![
            plain(Kind::Float),           // pos.x
            plain(Kind::Int),             // pos.y
            nullable(Kind::Double, 1, 0), // pos.z
            nullable(Kind::Double, 1, 0), // temp
            nullable(Kind::Long, 0, 1),   // count: ["long", "null"]
            plain(Kind::Double),          // inner.deep.v
            plain(Kind::Long),            // inner.deep.n
            plain(Kind::Float),           // vel.x (a reference to `vec`)
            plain(Kind::Int),             // vel.y
            nullable(Kind::Double, 1, 0), // vel.z
            plain(Kind::Long),            // big
        ]
    );
    // time, label, flags, extra, status, inner.ok, seen (timestamp-millis).
    let copied = layout
        .ops
        .iter()
        .filter(|op| matches!(op, Op::Skip(_)))
        .count();
    assert_eq!(copied, 7);
}

#[test]
fn the_time_field_may_be_nested_or_absent() {
    let schema = nested_schema();
    let by_time = compile(&schema, "time").unwrap().slots;
    // `inner.deep.n` copied instead: `time` (first) is aggregated, `n` is not.
    let by_n = compile(&schema, "inner.deep.n").unwrap().slots;
    assert_eq!(by_n.len(), by_time.len());
    assert_eq!(by_n[0], plain(Kind::Long));
    assert_eq!(&by_n[1..7], &by_time[..6]);
    assert_eq!(&by_n[7..], &by_time[7..]);
    // No such field: everything numeric is aggregated, `time` included.
    let none = compile(&schema, "no_such_field").unwrap().slots;
    assert_eq!(none.len(), by_time.len() + 1);
    assert_eq!(&none[1..], &by_time[..]);
}

#[test]
fn unions_of_other_shapes_and_recursive_records_are_copied() {
    let schema = Schema::parse_str(
        r#"{"type": "record", "name": "node", "fields": [
            {"name": "v", "type": "double"},
            {"name": "either", "type": ["int", "double"]},
            {"name": "only", "type": ["float"]},
            {"name": "nulls", "type": {"type": "array", "items": "null"}},
            {"name": "next", "type": ["null", "node"]}
        ]}"#,
    )
    .unwrap();
    let layout = compile(&schema, "time").unwrap();
    assert_eq!(
        layout.slots,
        vec![
            plain(Kind::Double),
            Slot {
                kind: Kind::Float,
                union: Some(Branches {
                    number: 0,
                    null: None
                })
            }
        ]
    );
    // Decimate a chain of three: v averaged, the rest from the last datum.
    let datum = |v: f64, depth: u32| {
        fn node(v: f64, depth: u32) -> Value {
            let next = if depth == 0 {
                Value::Union(0, Box::new(Value::Null))
            } else {
                Value::Union(1, Box::new(node(v, depth - 1)))
            };
            Value::Record(vec![
                ("v".into(), Value::Double(v)),
                ("either".into(), Value::Union(1, Box::new(Value::Double(v)))),
                (
                    "only".into(),
                    Value::Union(0, Box::new(Value::Float(v as f32))),
                ),
                ("nulls".into(), Value::Array(vec![Value::Null; 3])),
                ("next".into(), next),
            ])
        }
        node(v, depth)
    };
    let input = [
        (encode(&schema, datum(1.0, 2)), t0()),
        (encode(&schema, datum(3.0, 1)), t0()),
    ];
    let out = run(
        &mut decimator(&schema, Algorithm::Average, Window::Count(2)),
        &input,
    );
    let want = match datum(3.0, 1) {
        Value::Record(mut f) => {
            f[0].1 = Value::Double(2.0);
            f[2].1 = Value::Union(0, Box::new(Value::Float(2.0)));
            Value::Record(f)
        }
        other => other,
    };
    assert_eq!(super::reference::decode(&schema, &out[0]), want);
}
