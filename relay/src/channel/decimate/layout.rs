//! The channel schema compiled once into what decimation needs: the datum's
//! top-level values in order, nested records flattened, each either a numeric
//! slot (aggregated) or a value to skip (copied from the window's last datum).

use std::collections::HashMap;

use apache_avro::schema::{InnerDecimalSchema, Name, RecordSchema, UuidSchema};
use apache_avro::Schema;

use super::DecimatorError;

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
    /// A value copied from the last datum: skipped with `nodes[i]`.
    Skip(u32),
}

/// The shape of a skipped value, enough to find its end. Logical types are
/// reduced to their encodings, named references to their definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Node {
    /// Encodes to nothing.
    Null,
    /// One byte (boolean).
    Byte,
    /// int, long, enum.
    Varint,
    /// float, double, fixed.
    Fixed(usize),
    /// string, bytes: a long length, then that many bytes.
    Sized,
    /// `empty`: the items always encode to zero bytes (null, records of
    /// nulls), so a block's count is not bounded by the datum's size and must
    /// not be looped over.
    Array {
        items: u32,
        empty: bool,
    },
    Map {
        values: u32,
    },
    /// Branches are `links[first..first + len]`.
    Union {
        first: u32,
        len: u32,
    },
    /// Fields are `links[first..first + len]`.
    Record {
        first: u32,
        len: u32,
    },
}

/// The compiled schema.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub ops: Vec<Op>,
    /// Parallel to the `Op::Number`s of `ops`.
    pub slots: Vec<Slot>,
    pub nodes: Vec<Node>,
    pub links: Vec<u32>,
}

/// Compiles `schema`; the field at dotted path `time_field` (if the schema
/// has it) is copied, not aggregated.
pub(super) fn compile(schema: &Schema, time_field: &str) -> Result<Layout, DecimatorError> {
    let mut defs = HashMap::new();
    collect_definitions(schema, &mut defs);
    let mut c = Compiler {
        defs,
        named: HashMap::new(),
        layout: Layout {
            ops: Vec::new(),
            slots: Vec::new(),
            nodes: Vec::new(),
            links: Vec::new(),
        },
        inlining: Vec::new(),
    };
    c.flatten(schema, "", time_field)?;
    mark_empty_items(&mut c.layout);
    Ok(c.layout)
}

/// Least fixpoint of "always encodes to zero bytes" (recursive records stay
/// `false`: they cannot be empty without being infinite).
fn mark_empty_items(layout: &mut Layout) {
    let mut empty = vec![false; layout.nodes.len()];
    loop {
        let mut changed = false;
        for (i, node) in layout.nodes.iter().enumerate() {
            let e = match *node {
                Node::Null | Node::Fixed(0) => true,
                Node::Record { first, len } => layout.links[first as usize..(first + len) as usize]
                    .iter()
                    .all(|&l| empty[l as usize]),
                _ => false,
            };
            if e && !empty[i] {
                empty[i] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    for node in &mut layout.nodes {
        if let Node::Array { items, empty: e } = node {
            *e = empty[*items as usize];
        }
    }
}

/// Every named type by full name and aliases, so references resolve
/// wherever they are met first.
fn collect_definitions<'s>(schema: &'s Schema, defs: &mut HashMap<String, &'s Schema>) {
    let mut define = |name: &Name, aliases: Option<&Vec<apache_avro::schema::Alias>>| {
        defs.insert(name.fullname(None), schema);
        for alias in aliases.into_iter().flatten() {
            defs.insert(
                alias.fully_qualified_name(name.namespace()).fullname(None),
                schema,
            );
        }
    };
    match schema {
        Schema::Record(r) => {
            define(&r.name, r.aliases.as_ref());
            for f in &r.fields {
                collect_definitions(&f.schema, defs);
            }
        }
        Schema::Enum(e) => define(&e.name, e.aliases.as_ref()),
        Schema::Fixed(f) | Schema::Duration(f) | Schema::Uuid(UuidSchema::Fixed(f)) => {
            define(&f.name, f.aliases.as_ref());
        }
        Schema::Decimal(d) => {
            if let InnerDecimalSchema::Fixed(f) = &d.inner {
                define(&f.name, f.aliases.as_ref());
            }
        }
        Schema::Array(a) => collect_definitions(&a.items, defs),
        Schema::Map(m) => collect_definitions(&m.types, defs),
        Schema::Union(u) => u
            .variants()
            .iter()
            .for_each(|v| collect_definitions(v, defs)),
        _ => {}
    }
}

struct Compiler<'s> {
    defs: HashMap<String, &'s Schema>,
    /// Skip nodes of named types already compiled.
    named: HashMap<String, u32>,
    layout: Layout,
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
    fn resolve(&self, schema: &'s Schema) -> Result<&'s Schema, DecimatorError> {
        match schema {
            Schema::Ref { name } => {
                let full = name.fullname(None);
                self.defs
                    .get(&full)
                    .copied()
                    .ok_or(DecimatorError::UnknownName(full))
            }
            other => Ok(other),
        }
    }

    /// Appends the ops of a value at field path `path`.
    fn flatten(
        &mut self,
        schema: &'s Schema,
        path: &str,
        time_field: &str,
    ) -> Result<(), DecimatorError> {
        let resolved = self.resolve(schema)?;
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
    ) -> Result<(), DecimatorError> {
        self.inlining.push(r.name.fullname(None));
        for f in &r.fields {
            self.flatten(&f.schema, &join(path, &f.name), time_field)?;
        }
        self.inlining.pop();
        Ok(())
    }

    fn number(&mut self, slot: Slot) -> Result<(), DecimatorError> {
        self.layout.slots.push(slot);
        self.layout.ops.push(Op::Number);
        Ok(())
    }

    fn skip_op(&mut self, schema: &'s Schema) -> Result<(), DecimatorError> {
        let node = self.node(schema)?;
        self.layout.ops.push(Op::Skip(node));
        Ok(())
    }

    fn push(&mut self, node: Node) -> Result<u32, DecimatorError> {
        let n = self.layout.nodes.len();
        let i = u32::try_from(n).map_err(|_| DecimatorError::TooLarge(n))?;
        self.layout.nodes.push(node);
        Ok(i)
    }

    fn add_links(&mut self, children: &[u32]) -> Result<(u32, u32), DecimatorError> {
        let n = self.layout.links.len();
        let first = u32::try_from(n).map_err(|_| DecimatorError::TooLarge(n))?;
        self.layout.links.extend_from_slice(children);
        Ok((first, children.len() as u32))
    }

    /// Compiles the skip node of `schema` (once per named type).
    fn node(&mut self, schema: &'s Schema) -> Result<u32, DecimatorError> {
        let named = |name: &Name| name.fullname(None);
        let schema = self.resolve(schema)?;
        let key = match schema {
            Schema::Record(r) => Some(named(&r.name)),
            Schema::Enum(e) => Some(named(&e.name)),
            Schema::Fixed(f) | Schema::Duration(f) | Schema::Uuid(UuidSchema::Fixed(f)) => {
                Some(named(&f.name))
            }
            Schema::Decimal(d) => match &d.inner {
                InnerDecimalSchema::Fixed(f) => Some(named(&f.name)),
                InnerDecimalSchema::Bytes => None,
            },
            _ => None,
        };
        if let Some(i) = key.as_ref().and_then(|k| self.named.get(k)) {
            return Ok(*i);
        }
        let node = match schema {
            Schema::Null => Node::Null,
            Schema::Boolean => Node::Byte,
            Schema::Int
            | Schema::Date
            | Schema::TimeMillis
            | Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos
            | Schema::Enum(_) => Node::Varint,
            Schema::Float => Node::Fixed(4),
            Schema::Double => Node::Fixed(8),
            Schema::Bytes | Schema::BigDecimal | Schema::String => Node::Sized,
            Schema::Uuid(UuidSchema::Bytes | UuidSchema::String) => Node::Sized,
            Schema::Decimal(d) => match &d.inner {
                InnerDecimalSchema::Bytes => Node::Sized,
                InnerDecimalSchema::Fixed(f) => Node::Fixed(f.size),
            },
            Schema::Uuid(UuidSchema::Fixed(f)) | Schema::Fixed(f) | Schema::Duration(f) => {
                Node::Fixed(f.size)
            }
            Schema::Array(a) => {
                let items = self.node(&a.items)?;
                Node::Array {
                    items,
                    empty: false,
                }
            }
            Schema::Map(m) => {
                let values = self.node(&m.types)?;
                Node::Map { values }
            }
            Schema::Union(u) => {
                let children = u
                    .variants()
                    .iter()
                    .map(|v| self.node(v))
                    .collect::<Result<Vec<_>, _>>()?;
                let (first, len) = self.add_links(&children)?;
                Node::Union { first, len }
            }
            Schema::Record(r) => {
                // Registered before its fields, which may refer back to it.
                let i = self.push(Node::Null)?;
                self.named.insert(named(&r.name), i);
                let children = r
                    .fields
                    .iter()
                    .map(|f| self.node(&f.schema))
                    .collect::<Result<Vec<_>, _>>()?;
                let (first, len) = self.add_links(&children)?;
                self.layout.nodes[i as usize] = Node::Record { first, len };
                return Ok(i);
            }
            Schema::Ref { name } => return Err(DecimatorError::UnknownName(named(name))),
        };
        let i = self.push(node)?;
        if let Some(k) = key {
            self.named.insert(k, i);
        }
        Ok(i)
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
