//! Zero-allocation validation of Avro binary datums against a schema.
//!
//! Hand-written rather than `apache_avro::from_avro_datum` because that
//! decoder builds a heap-allocated `Value` tree for every datum, which caps a
//! channel far below the datagram rates we must sustain. Here the schema is
//! compiled once into a flat table of [`Node`]s and a datum is walked in place:
//! the success path allocates nothing. The field path of an error is built
//! only while an error unwinds.

use std::collections::HashMap;
use std::fmt;

use apache_avro::schema::{InnerDecimalSchema, Name, UuidSchema};
use apache_avro::Schema;

/// Nesting limit (records, arrays, maps). Only recursive schemas can
/// nest deeper than the schema text itself, and an untrusted datum must not be
/// able to exhaust the stack of the channel process: a level costs ~250 bytes
/// of stack in release builds and ~4.5 KiB in debug builds (test threads
/// have 2 MiB).
const MAX_DEPTH: u32 = 128;

/// A schema that cannot be compiled into a validator.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemaError {
    /// A named reference with no earlier definition (apache-avro normally
    /// rejects these while parsing).
    #[error("schema refers to unknown named type `{0}`")]
    UnknownName(String),
    /// More nodes than the compact form can index.
    #[error("schema is too large to compile ({0} nodes)")]
    TooLarge(usize),
}

/// What was wrong with a datum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatumErrorKind {
    /// The datum ended inside a value.
    UnexpectedEnd,
    /// A long took more than 10 bytes (or overflowed 64 bits), an int more than 5.
    VarintTooLong,
    /// An int varint decodes outside the i32 range.
    IntOutOfRange,
    /// A string, bytes or block byte-size length is negative.
    NegativeLength(i64),
    /// A length runs past the end of the datum.
    LengthBeyondEnd { length: u64, remaining: usize },
    /// A string is not valid UTF-8.
    InvalidUtf8,
    /// A `uuid` string not in the canonical 8-4-4-4-12 hex form (readers
    /// that map the logical type, like fastavro, would fail on it).
    InvalidUuid,
    /// A boolean byte other than 0 or 1.
    InvalidBoolean(u8),
    /// An enum symbol index outside the symbol list.
    EnumIndexOutOfRange { index: i64, symbols: usize },
    /// A union branch index outside the union.
    UnionBranchOutOfRange { index: i64, branches: usize },
    /// An array/map block announces more items than the datum can hold.
    BlockCountBeyondEnd { count: u64, remaining: usize },
    /// A block count of i64::MIN, whose magnitude does not fit.
    InvalidBlockCount,
    /// A negative-count block whose byte size differs from its items' size.
    BlockSizeMismatch { declared: u64, actual: usize },
    /// Values nested deeper than the validator allows.
    TooDeep,
    /// Bytes left over after the top-level value.
    TrailingBytes(usize),
}

impl fmt::Display for DatumErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedEnd => write!(f, "datum ends inside a value"),
            Self::VarintTooLong => write!(f, "varint too long"),
            Self::IntOutOfRange => write!(f, "int varint out of the 32-bit range"),
            Self::NegativeLength(n) => write!(f, "negative length {n}"),
            Self::LengthBeyondEnd { length, remaining } => {
                write!(f, "length {length} exceeds the {remaining} bytes left")
            }
            Self::InvalidUtf8 => write!(f, "string is not valid UTF-8"),
            Self::InvalidUuid => write!(f, "uuid string is not 8-4-4-4-12 hex digits"),
            Self::InvalidBoolean(b) => write!(f, "boolean byte {b:#04x} is neither 0 nor 1"),
            Self::EnumIndexOutOfRange { index, symbols } => {
                write!(f, "enum index {index} out of range (0..{symbols})")
            }
            Self::UnionBranchOutOfRange { index, branches } => {
                write!(f, "union branch {index} out of range (0..{branches})")
            }
            Self::BlockCountBeyondEnd { count, remaining } => {
                write!(f, "block of {count} items cannot fit in the {remaining} bytes left")
            }
            Self::InvalidBlockCount => write!(f, "invalid block count"),
            Self::BlockSizeMismatch { declared, actual } => {
                write!(f, "block declares {declared} bytes but its items take {actual}")
            }
            Self::TooDeep => write!(f, "values nested deeper than {MAX_DEPTH} levels"),
            Self::TrailingBytes(n) => write!(f, "{n} trailing bytes after the datum"),
        }
    }
}

/// A datum that does not match the schema: what, where (byte offset into the
/// datum) and in which field (`message`, `inner.values[3]`, `tags["k"]`;
/// empty for the top-level value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatumError {
    pub kind: DatumErrorKind,
    pub offset: usize,
    pub path: String,
}

impl fmt::Display for DatumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{} at byte {}", self.kind, self.offset)
        } else {
            write!(f, "{} at byte {} in field `{}`", self.kind, self.offset, self.path)
        }
    }
}

impl std::error::Error for DatumError {}

/// One compiled schema node. Logical types are reduced to their base types
/// and named references to the index of their definition.
#[derive(Debug, Clone, Copy)]
enum Node {
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
    Array { items: u32, empty: bool },
    Map { values: u32 },
    /// Branches are `links[first..first + len]`.
    Union { first: u32, len: u32 },
    /// Fields are `links[first..first + len]`, named by `labels[..]`.
    Record { first: u32, len: u32 },
}

/// Validates datums of one schema. Build once per channel; `validate` is
/// allocation-free on success.
#[derive(Debug, Clone)]
pub struct DatumValidator {
    nodes: Vec<Node>,
    links: Vec<u32>,
    /// Parallel to `links`: field names (records); empty for union branches.
    labels: Vec<Box<str>>,
    root: u32,
}

/// Internal failure: boxed so the hot path's `Result` stays one word.
struct Fail {
    kind: DatumErrorKind,
    offset: usize,
    /// Innermost first; reversed when rendered.
    path: Vec<Seg>,
}

enum Seg {
    Link(u32),
    Index(u64),
    Key(usize, usize),
}

type Res<T> = Result<T, Box<Fail>>;

#[cold]
#[inline(never)]
fn fail<T>(kind: DatumErrorKind, offset: usize) -> Res<T> {
    Err(Box::new(Fail {
        kind,
        offset,
        path: Vec::new(),
    }))
}

#[inline(never)]
#[cold]
fn push_seg(mut e: Box<Fail>, seg: Seg) -> Box<Fail> {
    e.path.push(seg);
    e
}

impl DatumValidator {
    pub fn new(schema: &Schema) -> Result<Self, SchemaError> {
        let mut c = Compiler::default();
        let root = c.compile(schema)?;
        let mut v = DatumValidator {
            nodes: c.nodes,
            links: c.links,
            labels: c.labels,
            root,
        };
        v.mark_empty_items();
        Ok(v)
    }

    /// Checks that `datum` is exactly one well-formed value of the schema.
    pub fn validate(&self, datum: &[u8]) -> Result<(), DatumError> {
        let mut pos = 0;
        let result = self.check(self.root, datum, &mut pos, 0).and_then(|()| {
            if pos == datum.len() {
                Ok(())
            } else {
                fail(DatumErrorKind::TrailingBytes(datum.len() - pos), pos)
            }
        });
        result.map_err(|e| self.render(*e, datum))
    }

    fn render(&self, e: Fail, datum: &[u8]) -> DatumError {
        let mut path = String::new();
        for seg in e.path.iter().rev() {
            match *seg {
                Seg::Link(l) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&self.labels[l as usize]);
                }
                Seg::Index(i) => path.push_str(&format!("[{i}]")),
                Seg::Key(start, end) => {
                    let key = String::from_utf8_lossy(&datum[start..end]);
                    let short: String = key.chars().take(32).collect();
                    path.push_str(&format!("[{short:?}]"));
                }
            }
        }
        DatumError {
            kind: e.kind,
            offset: e.offset,
            path,
        }
    }

    /// Least fixpoint of "always encodes to zero bytes": recursive records
    /// stay `false`, which only costs them the count-vs-size shortcut.
    fn mark_empty_items(&mut self) {
        let mut empty = vec![false; self.nodes.len()];
        loop {
            let mut changed = false;
            for (i, node) in self.nodes.iter().enumerate() {
                let e = match *node {
                    Node::Null | Node::Fixed(0) => true,
                    Node::Record { first, len } => self.links
                        [first as usize..(first + len) as usize]
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
        for node in &mut self.nodes {
            if let Node::Array { items, empty: e } = node {
                *e = empty[*items as usize];
            }
        }
    }

    fn check(&self, node: u32, buf: &[u8], pos: &mut usize, depth: u32) -> Res<()> {
        match self.nodes[node as usize] {
            Node::Null => Ok(()),
            Node::Boolean => match buf.get(*pos) {
                Some(0 | 1) => {
                    *pos += 1;
                    Ok(())
                }
                Some(&b) => fail(DatumErrorKind::InvalidBoolean(b), *pos),
                None => fail(DatumErrorKind::UnexpectedEnd, *pos),
            },
            Node::Int => read_int(buf, pos).map(drop),
            Node::Long => read_long(buf, pos).map(drop),
            Node::Float => skip(buf, pos, 4),
            Node::Double => skip(buf, pos, 8),
            Node::Fixed(n) => skip(buf, pos, n),
            Node::Bytes => read_len(buf, pos).map(|n| *pos += n),
            Node::String => read_str(buf, pos),
            Node::Uuid => {
                let at = *pos;
                let n = read_len(buf, pos)?;
                if !is_uuid(&buf[*pos..*pos + n]) {
                    return fail(DatumErrorKind::InvalidUuid, at);
                }
                *pos += n;
                Ok(())
            }
            Node::Enum(symbols) => {
                let at = *pos;
                let index = read_int(buf, pos)?;
                if index < 0 || index as usize >= symbols {
                    return fail(
                        DatumErrorKind::EnumIndexOutOfRange {
                            index: index.into(),
                            symbols,
                        },
                        at,
                    );
                }
                Ok(())
            }
            Node::Union { first, len } => {
                let at = *pos;
                let index = read_long(buf, pos)?;
                if index < 0 || index >= i64::from(len) {
                    return fail(
                        DatumErrorKind::UnionBranchOutOfRange {
                            index,
                            branches: len as usize,
                        },
                        at,
                    );
                }
                // Not a level of its own: a branch is never a union itself.
                self.check(self.links[(first + index as u32) as usize], buf, pos, depth)
            }
            Node::Record { first, len } => {
                let depth = next_depth(depth, *pos)?;
                for link in first..first + len {
                    self.check(self.links[link as usize], buf, pos, depth)
                        .map_err(|e| push_seg(e, Seg::Link(link)))?;
                }
                Ok(())
            }
            Node::Array { items, empty } => {
                let depth = next_depth(depth, *pos)?;
                let mut index = 0u64;
                while let Some((count, declared)) = read_block_header(buf, pos, !empty)? {
                    let start = *pos;
                    if empty {
                        index = index.saturating_add(count);
                    } else {
                        for _ in 0..count {
                            self.check(items, buf, pos, depth)
                                .map_err(|e| push_seg(e, Seg::Index(index)))?;
                            index += 1;
                        }
                    }
                    check_block_size(declared, start, *pos)?;
                }
                Ok(())
            }
            Node::Map { values } => {
                let depth = next_depth(depth, *pos)?;
                while let Some((count, declared)) = read_block_header(buf, pos, true)? {
                    let start = *pos;
                    for _ in 0..count {
                        let key_at = *pos;
                        read_str(buf, pos)?;
                        let key_end = *pos;
                        self.check(values, buf, pos, depth).map_err(|e| {
                            // Re-read the (already valid) length prefix to find the key.
                            let mut key_start = key_at;
                            let _ = read_long(buf, &mut key_start);
                            push_seg(e, Seg::Key(key_start, key_end))
                        })?;
                    }
                    check_block_size(declared, start, *pos)?;
                }
                Ok(())
            }
        }
    }
}

fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[inline]
fn next_depth(depth: u32, pos: usize) -> Res<u32> {
    if depth >= MAX_DEPTH {
        return fail(DatumErrorKind::TooDeep, pos);
    }
    Ok(depth + 1)
}

#[inline]
fn skip(buf: &[u8], pos: &mut usize, n: usize) -> Res<()> {
    if buf.len() - *pos < n {
        return fail(DatumErrorKind::UnexpectedEnd, *pos);
    }
    *pos += n;
    Ok(())
}

/// A zigzag long: at most 10 bytes, the 10th carrying only bit 63.
#[inline]
fn read_long(buf: &[u8], pos: &mut usize) -> Res<i64> {
    let start = *pos;
    let mut raw = 0u64;
    let mut shift = 0;
    loop {
        let Some(&b) = buf.get(*pos) else {
            return fail(DatumErrorKind::UnexpectedEnd, start);
        };
        *pos += 1;
        if shift == 63 && b > 1 {
            return fail(DatumErrorKind::VarintTooLong, start);
        }
        raw |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
        shift += 7;
    }
}

/// A zigzag int: at most 5 bytes and, before unzigzag, within u32 (which is
/// exactly the zigzag image of the i32 range).
#[inline]
fn read_int(buf: &[u8], pos: &mut usize) -> Res<i32> {
    let start = *pos;
    let mut raw = 0u32;
    let mut shift = 0;
    loop {
        let Some(&b) = buf.get(*pos) else {
            return fail(DatumErrorKind::UnexpectedEnd, start);
        };
        *pos += 1;
        if shift == 28 && b > 0x0f {
            let kind = if b & 0x80 != 0 {
                DatumErrorKind::VarintTooLong
            } else {
                DatumErrorKind::IntOutOfRange
            };
            return fail(kind, start);
        }
        raw |= u32::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok((raw >> 1) as i32 ^ -((raw & 1) as i32));
        }
        shift += 7;
    }
}

/// A non-negative length that fits in what is left of the datum.
#[inline]
fn read_len(buf: &[u8], pos: &mut usize) -> Res<usize> {
    let at = *pos;
    let n = read_long(buf, pos)?;
    if n < 0 {
        return fail(DatumErrorKind::NegativeLength(n), at);
    }
    let remaining = buf.len() - *pos;
    if n as u64 > remaining as u64 {
        return fail(
            DatumErrorKind::LengthBeyondEnd {
                length: n as u64,
                remaining,
            },
            at,
        );
    }
    Ok(n as usize)
}

#[inline]
fn read_str(buf: &[u8], pos: &mut usize) -> Res<()> {
    let n = read_len(buf, pos)?;
    let bytes = &buf[*pos..*pos + n];
    // ASCII fast path: telemetry strings rarely leave it.
    if !bytes.is_ascii() {
        if let Err(e) = std::str::from_utf8(bytes) {
            return fail(DatumErrorKind::InvalidUtf8, *pos + e.valid_up_to());
        }
    }
    *pos += n;
    Ok(())
}

/// Reads one array/map block header: `None` at the terminating zero count,
/// else the item count and, for negative counts, the declared byte size.
/// `sized_items`: every item takes at least one byte, so the count is bounded
/// by the bytes left (this also bounds the loop an attacker can request).
#[inline]
fn read_block_header(
    buf: &[u8],
    pos: &mut usize,
    sized_items: bool,
) -> Res<Option<(u64, Option<u64>)>> {
    let at = *pos;
    let count = read_long(buf, pos)?;
    if count == 0 {
        return Ok(None);
    }
    let declared = if count < 0 {
        if count == i64::MIN {
            return fail(DatumErrorKind::InvalidBlockCount, at);
        }
        Some(read_len(buf, pos)? as u64)
    } else {
        None
    };
    let count = count.unsigned_abs();
    let remaining = buf.len() - *pos;
    if sized_items && count > remaining as u64 {
        return fail(DatumErrorKind::BlockCountBeyondEnd { count, remaining }, at);
    }
    Ok(Some((count, declared)))
}

#[inline]
fn check_block_size(declared: Option<u64>, start: usize, end: usize) -> Res<()> {
    match declared {
        Some(d) if d != (end - start) as u64 => fail(
            DatumErrorKind::BlockSizeMismatch {
                declared: d,
                actual: end - start,
            },
            start,
        ),
        _ => Ok(()),
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
        let i = u32::try_from(self.nodes.len()).map_err(|_| SchemaError::TooLarge(self.nodes.len()))?;
        self.nodes.push(node);
        Ok(i)
    }

    /// Registers a named type before its body is compiled, so recursive
    /// references resolve to it.
    fn define(&mut self, name: &Name, aliases: Option<&Vec<apache_avro::schema::Alias>>, node: Node) -> Result<u32, SchemaError> {
        let i = self.push(node)?;
        self.named.insert(name.fullname(None), i);
        for alias in aliases.into_iter().flatten() {
            let full = alias.fully_qualified_name(name.namespace()).fullname(None);
            self.named.insert(full, i);
        }
        Ok(i)
    }

    fn add_links(&mut self, children: &[(u32, String)]) -> Result<(u32, u32), SchemaError> {
        let first = u32::try_from(self.links.len()).map_err(|_| SchemaError::TooLarge(self.links.len()))?;
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

#[cfg(test)]
mod tests;
