//! An `apache_avro::Schema` compiled into a flat table of nodes: what the
//! validator walks for every datum, and what the decimator skips values with.
//! One table, so the two can never disagree on where a value ends.

use std::collections::HashMap;

use apache_avro::schema::{Alias, InnerDecimalSchema, Name, UuidSchema};
use apache_avro::Schema;

use super::SchemaError;

/// One compiled schema node. Logical types are reduced to their base types
/// and named references to the index of their definition.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    /// A string with logical type `uuid`.
    Uuid,
    Fixed(usize),
    Enum(usize),
    /// `empty`: the items always encode to zero bytes (null, fixed(0), records
    /// of those), so a block's count says nothing about its size.
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
    /// Fields are `links[first..first + len]`, named by `labels[..]`.
    Record {
        first: u32,
        len: u32,
    },
}

/// The compiled table: nodes refer to each other by index, records and
/// unions to runs of `links`.
#[derive(Debug, Clone)]
pub(crate) struct SchemaTable {
    pub nodes: Vec<Node>,
    pub links: Vec<u32>,
    /// Parallel to `links`: field names (records); empty for union branches.
    pub labels: Vec<Box<str>>,
}

/// The table of `schema` and its root node.
pub(crate) fn compile(schema: &Schema) -> Result<(SchemaTable, u32), SchemaError> {
    let mut b = TableBuilder::new(schema);
    let root = b.node(schema)?;
    Ok((b.finish(), root))
}

/// Least fixpoint of "always encodes to zero bytes": recursive records
/// stay `false`, which only costs them the count-vs-size shortcut.
fn mark_empty_items(c: &mut SchemaTable) {
    let mut empty = vec![false; c.nodes.len()];
    loop {
        let mut changed = false;
        for (i, node) in c.nodes.iter().enumerate() {
            let e = match *node {
                Node::Null | Node::Fixed(0) => true,
                Node::Record { first, len } => c.links[first as usize..(first + len) as usize]
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
    for node in &mut c.nodes {
        if let Node::Array { items, empty: e } = node {
            *e = empty[*items as usize];
        }
    }
}

/// Builds a table node by node, for the whole schema or for the parts of it
/// a caller picks (the decimator compiles only the values it skips).
pub(crate) struct TableBuilder<'s> {
    table: SchemaTable,
    /// Named types already compiled.
    named: HashMap<String, u32>,
    /// Every named type's definition, so a reference resolves wherever it is
    /// met first (the decimator may meet a reference before the definition,
    /// which it flattened instead of compiling).
    defs: HashMap<String, &'s Schema>,
}

impl<'s> TableBuilder<'s> {
    pub(crate) fn new(schema: &'s Schema) -> TableBuilder<'s> {
        let mut defs = HashMap::new();
        collect_definitions(schema, &mut defs);
        TableBuilder {
            table: SchemaTable { nodes: Vec::new(), links: Vec::new(), labels: Vec::new() },
            named: HashMap::new(),
            defs,
        }
    }

    pub(crate) fn finish(mut self) -> SchemaTable {
        mark_empty_items(&mut self.table);
        self.table
    }

    /// `schema` itself, or the definition a reference names.
    pub(crate) fn resolve(&self, schema: &'s Schema) -> Result<&'s Schema, SchemaError> {
        match schema {
            Schema::Ref { name } => {
                let full = name.fullname(None);
                self.defs.get(&full).copied().ok_or(SchemaError::UnknownName(full))
            }
            other => Ok(other),
        }
    }

    fn push(&mut self, node: Node) -> Result<u32, SchemaError> {
        let n = self.table.nodes.len();
        let i = u32::try_from(n).map_err(|_| SchemaError::TooLarge(n))?;
        self.table.nodes.push(node);
        Ok(i)
    }

    /// Registers a named type before its body is compiled, so recursive
    /// references resolve to it.
    fn define(&mut self, name: &Name, aliases: Option<&Vec<Alias>>, node: Node) -> Result<u32, SchemaError> {
        let i = self.push(node)?;
        for full in full_names(name, aliases) {
            self.named.insert(full, i);
        }
        Ok(i)
    }

    fn add_links(&mut self, children: &[(u32, String)]) -> Result<(u32, u32), SchemaError> {
        let n = self.table.links.len();
        let first = u32::try_from(n).map_err(|_| SchemaError::TooLarge(n))?;
        for (child, label) in children {
            self.table.links.push(*child);
            self.table.labels.push(label.as_str().into());
        }
        Ok((first, children.len() as u32))
    }

    /// The node of `schema`, compiled now unless it is a named type compiled before.
    pub(crate) fn node(&mut self, schema: &'s Schema) -> Result<u32, SchemaError> {
        let node = match schema {
            Schema::Null => Node::Null,
            Schema::Boolean => Node::Boolean,
            Schema::Int | Schema::Date | Schema::TimeMillis => Node::Int,
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => Node::Long,
            Schema::Float => Node::Float,
            Schema::Double => Node::Double,
            Schema::Bytes | Schema::BigDecimal => Node::Bytes,
            Schema::String => Node::String,
            Schema::Uuid(UuidSchema::Bytes) => Node::Bytes,
            Schema::Uuid(UuidSchema::String) => Node::Uuid,
            Schema::Decimal(d) => match &d.inner {
                InnerDecimalSchema::Bytes => Node::Bytes,
                InnerDecimalSchema::Fixed(f) => return self.named_or(&f.name, f.aliases.as_ref(), Node::Fixed(f.size)),
            },
            Schema::Uuid(UuidSchema::Fixed(f)) | Schema::Fixed(f) | Schema::Duration(f) => {
                return self.named_or(&f.name, f.aliases.as_ref(), Node::Fixed(f.size));
            }
            Schema::Enum(e) => return self.named_or(&e.name, e.aliases.as_ref(), Node::Enum(e.symbols.len())),
            Schema::Ref { name } => {
                let full = name.fullname(None);
                if let Some(&i) = self.named.get(&full) {
                    return Ok(i);
                }
                let def = self.resolve(schema)?;
                return self.node(def);
            }
            Schema::Array(a) => {
                let items = self.node(&a.items)?;
                Node::Array { items, empty: false }
            }
            Schema::Map(m) => {
                let values = self.node(&m.types)?;
                Node::Map { values }
            }
            Schema::Union(u) => {
                let mut children = Vec::with_capacity(u.variants().len());
                for v in u.variants() {
                    children.push((self.node(v)?, String::new()));
                }
                let (first, len) = self.add_links(&children)?;
                Node::Union { first, len }
            }
            Schema::Record(r) => {
                if let Some(&i) = self.named.get(&r.name.fullname(None)) {
                    return Ok(i);
                }
                // Placeholder until the fields are compiled: they may refer back.
                let i = self.define(&r.name, r.aliases.as_ref(), Node::Null)?;
                let mut children = Vec::with_capacity(r.fields.len());
                for f in &r.fields {
                    children.push((self.node(&f.schema)?, f.name.clone()));
                }
                let (first, len) = self.add_links(&children)?;
                self.table.nodes[i as usize] = Node::Record { first, len };
                return Ok(i);
            }
        };
        self.push(node)
    }

    /// A named leaf type: its earlier node, or a new one.
    fn named_or(&mut self, name: &Name, aliases: Option<&Vec<Alias>>, node: Node) -> Result<u32, SchemaError> {
        match self.named.get(&name.fullname(None)) {
            Some(&i) => Ok(i),
            None => self.define(name, aliases, node),
        }
    }
}

/// A named type's full name and those of its aliases.
fn full_names(name: &Name, aliases: Option<&Vec<Alias>>) -> Vec<String> {
    let mut v = vec![name.fullname(None)];
    for alias in aliases.into_iter().flatten() {
        v.push(alias.fully_qualified_name(name.namespace()).fullname(None));
    }
    v
}

/// Every named type by full name and aliases.
fn collect_definitions<'s>(schema: &'s Schema, defs: &mut HashMap<String, &'s Schema>) {
    let mut define = |name: &Name, aliases: Option<&Vec<Alias>>| {
        for full in full_names(name, aliases) {
            defs.entry(full).or_insert(schema);
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
        Schema::Fixed(f) | Schema::Duration(f) | Schema::Uuid(UuidSchema::Fixed(f)) => define(&f.name, f.aliases.as_ref()),
        Schema::Decimal(d) => {
            if let InnerDecimalSchema::Fixed(f) = &d.inner {
                define(&f.name, f.aliases.as_ref());
            }
        }
        Schema::Array(a) => collect_definitions(&a.items, defs),
        Schema::Map(m) => collect_definitions(&m.types, defs),
        Schema::Union(u) => u.variants().iter().for_each(|v| collect_definitions(v, defs)),
        _ => {}
    }
}
