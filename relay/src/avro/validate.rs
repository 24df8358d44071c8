//! Zero-allocation validation of Avro binary datums against a schema.
//!
//! Hand-written rather than `apache_avro::from_avro_datum` because that
//! decoder builds a heap-allocated `Value` tree for every datum, which caps a
//! channel far below the datagram rates we must sustain. Here the schema is
//! compiled once into a flat table of nodes and a datum is walked in place:
//! the success path allocates nothing. The field path of an error is built
//! only while an error unwinds.

use std::fmt;

use apache_avro::Schema;

use super::schema_table::{self, Node, SchemaTable};
use read::{
    check_block_size, fail, is_uuid, next_depth, push_seg, read_block_header, read_int, read_len,
    read_long, read_str, skip, Fail, Res, Seg,
};

mod flat;
mod read;

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
                write!(
                    f,
                    "block of {count} items cannot fit in the {remaining} bytes left"
                )
            }
            Self::InvalidBlockCount => write!(f, "invalid block count"),
            Self::BlockSizeMismatch { declared, actual } => {
                write!(
                    f,
                    "block declares {declared} bytes but its items take {actual}"
                )
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
            write!(
                f,
                "{} at byte {} in field `{}`",
                self.kind, self.offset, self.path
            )
        }
    }
}

impl std::error::Error for DatumError {}

/// Validates datums of one schema. Build once per channel; `validate` is
/// allocation-free on success.
#[derive(Debug, Clone)]
pub struct DatumValidator {
    c: SchemaTable,
    root: u32,
    /// The fast path, for schemas of records and scalars only.
    flat: Option<Box<[flat::Op]>>,
}

impl DatumValidator {
    pub fn new(schema: &Schema) -> Result<Self, SchemaError> {
        let (c, root) = schema_table::compile(schema)?;
        let flat = flat::compile(&c, root);
        Ok(DatumValidator { c, root, flat })
    }

    /// Checks that `datum` is exactly one well-formed value of the schema.
    pub fn validate(&self, datum: &[u8]) -> Result<(), DatumError> {
        if self.flat.as_deref().is_some_and(|ops| flat::accepts(ops, datum)) {
            return Ok(());
        }
        self.validate_walk(datum)
    }

    /// The general walk: decides every datum the fast path did not accept,
    /// and says what is wrong.
    fn validate_walk(&self, datum: &[u8]) -> Result<(), DatumError> {
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
                    path.push_str(&self.c.labels[l as usize]);
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

    fn check(&self, node: u32, buf: &[u8], pos: &mut usize, depth: u32) -> Res<()> {
        match self.c.nodes[node as usize] {
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
                self.check(
                    self.c.links[(first + index as u32) as usize],
                    buf,
                    pos,
                    depth,
                )
            }
            Node::Record { first, len } => {
                let depth = next_depth(depth, *pos)?;
                for link in first..first + len {
                    self.check(self.c.links[link as usize], buf, pos, depth)
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

#[cfg(test)]
mod tests;
