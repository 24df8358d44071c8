//! The channel schema compiled once into what decimation needs: the datum's
//! top-level values in order, nested records flattened, each either a numeric
//! slot (aggregated) or a value to skip (copied from the window's last datum).

use apache_avro::schema::RecordSchema;
use apache_avro::Schema;

use crate::avro::schema_table::{SchemaTable, TableBuilder};
use crate::avro::SchemaError;

/// How a numeric slot is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Zigzag varint, 32-bit range.
    Int,
    /// Zigzag varint, 64-bit range.
    Long,
    /// 4 bytes little-endian IEEE 754.
    Float,
    /// 8 bytes little-endian IEEE 754.
    Double,
}

impl Kind {
    pub(super) fn is_integer(self) -> bool {
        matches!(self, Kind::Int | Kind::Long)
    }
}

/// A numeric value to aggregate: a plain `int`/`long`/`float`/`double`, or a
/// union of one of those with `null` (or alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    pub kind: Kind,
    /// For a union: the branch index of the number and of `null`.
    pub union: Option<Branches>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Branches {
    pub number: i64,
    pub null: Option<i64>,
}

/// One step over a datum, in encoding order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// The next numeric slot (slots are numbered in encoding order).
    Number,
    /// A value copied from the last datum: skipped with `table.nodes[i]`.
    Skip(u32),
}

/// The compiled schema.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub ops: Vec<Op>,
    /// Parallel to the `Op::Number`s of `ops`.
    pub slots: Vec<Slot>,
    /// The skipped values' nodes: the validator's table, so both agree on
    /// where each value ends.
    pub table: SchemaTable,
}

/// Compiles `schema`; the field at dotted path `time_field` (if the schema
/// has it) is copied, not aggregated.
pub(super) fn compile(schema: &Schema, time_field: &str) -> Result<Layout, SchemaError> {
    let mut c = Compiler { table: TableBuilder::new(schema), ops: Vec::new(), slots: Vec::new(), inlining: Vec::new() };
    c.flatten(schema, "", time_field)?;
    Ok(Layout { ops: c.ops, slots: c.slots, table: c.table.finish() })
}

struct Compiler<'s> {
    table: TableBuilder<'s>,
    ops: Vec<Op>,
    slots: Vec<Slot>,
    /// Records being flattened (a record cannot be inlined into itself).
    inlining: Vec<String>,
}

/// A plain numeric type (logical types over int/long — dates, times,
/// timestamps — are instants, not measurements: they are copied).
fn numeric(schema: &Schema) -> Option<Kind> {
    match schema {
        Schema::Int => Some(Kind::Int),
        Schema::Long => Some(Kind::Long),
        Schema::Float => Some(Kind::Float),
        Schema::Double => Some(Kind::Double),
        _ => None,
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

impl<'s> Compiler<'s> {
    /// Appends the ops of a value at field path `path`.
    fn flatten(
        &mut self,
        schema: &'s Schema,
        path: &str,
        time_field: &str,
    ) -> Result<(), SchemaError> {
        let resolved = self.table.resolve(schema)?;
        if !path.is_empty() && path == time_field {
            return self.skip_op(schema);
        }
        if let Some(kind) = numeric(resolved) {
            return self.number(Slot { kind, union: None });
        }
        match resolved {
            Schema::Record(r) if !self.inlining.contains(&r.name.fullname(None)) => {
                self.inline(r, path, time_field)
            }
            Schema::Union(u) => match nullable_number(u.variants()) {
                Some(slot) => self.number(slot),
                None => self.skip_op(schema),
            },
            _ => self.skip_op(schema),
        }
    }

    fn inline(
        &mut self,
        r: &'s RecordSchema,
        path: &str,
        time_field: &str,
    ) -> Result<(), SchemaError> {
        self.inlining.push(r.name.fullname(None));
        for f in &r.fields {
            self.flatten(&f.schema, &join(path, &f.name), time_field)?;
        }
        self.inlining.pop();
        Ok(())
    }

    fn number(&mut self, slot: Slot) -> Result<(), SchemaError> {
        self.slots.push(slot);
        self.ops.push(Op::Number);
        Ok(())
    }

    fn skip_op(&mut self, schema: &'s Schema) -> Result<(), SchemaError> {
        let node = self.table.node(schema)?;
        self.ops.push(Op::Skip(node));
        Ok(())
    }
}

/// A union that is one plain number, alone or with `null`.
fn nullable_number(variants: &[Schema]) -> Option<Slot> {
    let mut number = None;
    let mut null = None;
    for (i, v) in variants.iter().enumerate() {
        let i = i as i64;
        match (v, numeric(v)) {
            (Schema::Null, _) => null = Some(i),
            (_, Some(kind)) if number.is_none() => number = Some((i, kind)),
            _ => return None,
        }
    }
    let (number, kind) = number?;
    Some(Slot {
        kind,
        union: Some(Branches { number, null }),
    })
}
