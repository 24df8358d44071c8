//! Valid Avro values of a schema, chosen by fuzz input, and their encoding.
//!
//! Covers what the fuzz schemas use (no decimals or durations). Collections
//! and recursion shrink with depth, so every value is finite and small.

use std::collections::HashMap;

use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{Schema, Uuid};

use crate::cursor::Cursor;

/// Past this depth unions take their `null` branch (when they have one) and
/// arrays and maps are empty.
const MAX_DEPTH: u32 = 4;

/// Generates values of one schema.
pub struct Generator<'s> {
    schema: &'s Schema,
    names: HashMap<Name, &'s Schema>,
    writer: GenericDatumWriter<'s>,
}

impl<'s> Generator<'s> {
    pub fn new(schema: &'s Schema) -> Self {
        let resolved = ResolvedSchema::try_from(schema).expect("the fuzz schemas resolve");
        Generator {
            schema,
            names: resolved.get_names().clone(),
            writer: GenericDatumWriter::builder(schema)
                .build()
                .expect("a writer for the fuzz schemas"),
        }
    }

    /// A value of the whole schema.
    pub fn value(&self, c: &mut Cursor) -> Value {
        self.gen(self.schema, c, 0)
    }

    /// The Avro binary encoding of `value` (one datum, no header).
    pub fn encode(&self, value: Value) -> Vec<u8> {
        self.writer
            .write_value_to_vec(value)
            .expect("generated values match their schema")
    }

    /// An encoded datum of the schema.
    pub fn datum(&self, c: &mut Cursor) -> Vec<u8> {
        self.encode(self.value(c))
    }

    fn gen(&self, schema: &Schema, c: &mut Cursor, depth: u32) -> Value {
        let small = |c: &mut Cursor, max: u8| {
            if depth >= MAX_DEPTH {
                0
            } else {
                usize::from(c.u8() % (max + 1))
            }
        };
        match schema {
            Schema::Null => Value::Null,
            Schema::Boolean => Value::Boolean(c.u8() & 1 == 1),
            Schema::Int => Value::Int(c.u32() as i32),
            Schema::Long => Value::Long(c.u64() as i64),
            Schema::Float => Value::Float(c.f32()),
            Schema::Double => Value::Double(c.f64()),
            Schema::Date => Value::Date(c.u32() as i32),
            Schema::TimestampMillis => Value::TimestampMillis(c.u64() as i64),
            Schema::TimestampMicros => Value::TimestampMicros(c.u64() as i64),
            Schema::TimestampNanos => Value::TimestampNanos(c.u64() as i64),
            Schema::Uuid(_) => Value::Uuid(Uuid::from_u64_pair(c.u64(), c.u64())),
            Schema::Bytes => {
                let n = usize::from(c.u8() % 17);
                Value::Bytes(c.bytes(n).to_vec())
            }
            Schema::String => {
                let n = usize::from(c.u8() % 17);
                Value::String(string(c, n))
            }
            Schema::Fixed(f) => {
                let mut b = c.bytes(f.size).to_vec();
                b.resize(f.size, 0);
                Value::Fixed(f.size, b)
            }
            Schema::Enum(e) => {
                let i = usize::from(c.u8()) % e.symbols.len();
                Value::Enum(i as u32, e.symbols[i].clone())
            }
            Schema::Union(u) => {
                let variants = u.variants();
                let null = variants.iter().position(|v| matches!(v, Schema::Null));
                let i = match null {
                    Some(n) if depth >= MAX_DEPTH => n,
                    _ => usize::from(c.u8()) % variants.len(),
                };
                Value::Union(i as u32, Box::new(self.gen(&variants[i], c, depth)))
            }
            Schema::Record(r) => Value::Record(
                r.fields
                    .iter()
                    .map(|f| (f.name.clone(), self.gen(&f.schema, c, depth + 1)))
                    .collect(),
            ),
            Schema::Array(a) => {
                let n = small(c, 4);
                Value::Array((0..n).map(|_| self.gen(&a.items, c, depth + 1)).collect())
            }
            Schema::Map(m) => {
                let n = small(c, 4);
                Value::Map(
                    (0..n)
                        .map(|_| {
                            let key_len = usize::from(c.u8() % 5);
                            (string(c, key_len), self.gen(&m.types, c, depth + 1))
                        })
                        .collect(),
                )
            }
            Schema::Ref { name } => {
                let target = self
                    .names
                    .get(name)
                    .unwrap_or_else(|| panic!("unresolved {name:?}"));
                self.gen(target, c, depth)
            }
            other => unimplemented!("the generator does not cover {other:?}"),
        }
    }
}

/// Up to `n` bytes of input as a string (invalid UTF-8 replaced).
fn string(c: &mut Cursor, n: usize) -> String {
    String::from_utf8_lossy(c.bytes(n)).into_owned()
}
