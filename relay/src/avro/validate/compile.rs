//! Compiling an `apache_avro::Schema` into the flat node table the
//! validator walks.

use std::collections::HashMap;

use apache_avro::schema::{Alias, InnerDecimalSchema, Name, UuidSchema};
use apache_avro::Schema;

use super::SchemaError;

/// One compiled schema node. Logical types are reduced to their base types
/// and named references to the index of their definition.
#[derive(Debug, Clone, Copy)]
pub(super) enum Node {
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
pub(super) struct Compiled {
    pub nodes: Vec<Node>,
    pub links: Vec<u32>,
    /// Parallel to `links`: field names (records); empty for union branches.
    pub labels: Vec<Box<str>>,
    pub root: u32,
}

pub(super) fn compile(schema: &Schema) -> Result<Compiled, SchemaError> {
    let mut c = Compiler::default();
    let root = c.compile(schema)?;
    let mut out = Compiled {
        nodes: c.nodes,
        links: c.links,
        labels: c.labels,
        root,
    };
    mark_empty_items(&mut out);
    Ok(out)
}

/// Least fixpoint of "always encodes to zero bytes": recursive records
/// stay `false`, which only costs them the count-vs-size shortcut.
fn mark_empty_items(c: &mut Compiled) {
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

#[derive(Default)]
struct Compiler {
    nodes: Vec<Node>,
    links: Vec<u32>,
    labels: Vec<Box<str>>,
    named: HashMap<String, u32>,
}

impl Compiler {
    fn push(&mut self, node: Node) -> Result<u32, SchemaError> {
        let i =
            u32::try_from(self.nodes.len()).map_err(|_| SchemaError::TooLarge(self.nodes.len()))?;
        self.nodes.push(node);
        Ok(i)
    }

    /// Registers a named type before its body is compiled, so recursive
    /// references resolve to it.
    fn define(
        &mut self,
        name: &Name,
        aliases: Option<&Vec<Alias>>,
        node: Node,
    ) -> Result<u32, SchemaError> {
        let i = self.push(node)?;
        self.named.insert(name.fullname(None), i);
        for alias in aliases.into_iter().flatten() {
            let full = alias.fully_qualified_name(name.namespace()).fullname(None);
            self.named.insert(full, i);
        }
        Ok(i)
    }

    fn add_links(&mut self, children: &[(u32, String)]) -> Result<(u32, u32), SchemaError> {
        let first =
            u32::try_from(self.links.len()).map_err(|_| SchemaError::TooLarge(self.links.len()))?;
        for (child, label) in children {
            self.links.push(*child);
            self.labels.push(label.as_str().into());
        }
        Ok((first, children.len() as u32))
    }

    fn compile(&mut self, schema: &Schema) -> Result<u32, SchemaError> {
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
                InnerDecimalSchema::Fixed(f) => {
                    return self.define(&f.name, f.aliases.as_ref(), Node::Fixed(f.size))
                }
            },
            Schema::Uuid(UuidSchema::Fixed(f)) | Schema::Fixed(f) | Schema::Duration(f) => {
                return self.define(&f.name, f.aliases.as_ref(), Node::Fixed(f.size));
            }
            Schema::Enum(e) => {
                return self.define(&e.name, e.aliases.as_ref(), Node::Enum(e.symbols.len()));
            }
            Schema::Ref { name } => {
                let full = name.fullname(None);
                return self
                    .named
                    .get(&full)
                    .copied()
                    .ok_or(SchemaError::UnknownName(full));
            }
            Schema::Array(a) => {
                let items = self.compile(&a.items)?;
                Node::Array {
                    items,
                    empty: false,
                }
            }
            Schema::Map(m) => {
                let values = self.compile(&m.types)?;
                Node::Map { values }
            }
            Schema::Union(u) => {
                let mut children = Vec::with_capacity(u.variants().len());
                for v in u.variants() {
                    children.push((self.compile(v)?, String::new()));
                }
                let (first, len) = self.add_links(&children)?;
                Node::Union { first, len }
            }
            Schema::Record(r) => {
                // Placeholder until the fields are compiled: they may refer back.
                let i = self.define(&r.name, r.aliases.as_ref(), Node::Null)?;
                let mut children = Vec::with_capacity(r.fields.len());
                for f in &r.fields {
                    children.push((self.compile(&f.schema)?, f.name.clone()));
                }
                let (first, len) = self.add_links(&children)?;
                self.nodes[i as usize] = Node::Record { first, len };
                return Ok(i);
            }
        };
        self.push(node)
    }
}
