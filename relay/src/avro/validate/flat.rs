//! The validator's fast path for the usual telemetry schema: one record of
//! scalars (nested records flattened), walked as a straight list of ops
//! instead of the recursive node walk. The cost bench (`speeddata-bench
//! --cost-only`) showed the recursive walk at ~45% of the channel's time per
//! 64-byte datum (~800 instructions for 7 fields); this takes ~100.
//!
//! It only ever accepts: a datum it does not accept goes through the general
//! walk, which decides and says what is wrong. So it must never accept what
//! the general walk rejects (tested against it), and need not reject
//! anything for the right reason.

use super::read::{read_int, read_len, read_long, read_str};
use super::schema_table::{Node, SchemaTable};
use super::MAX_DEPTH;

/// Ops longer than this are not worth flattening (nor schemas that big common).
const MAX_OPS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// Fixed-size values (float, double, fixed), adjacent ones merged.
    Skip(usize),
    Boolean,
    Int,
    Long,
    Bytes,
    Str,
    Enum(usize),
}

/// The op list of the schema rooted at `root`, or `None` if it has anything
/// but records and scalars (arrays, maps, unions, uuid strings).
pub(super) fn compile(t: &SchemaTable, root: u32) -> Option<Box<[Op]>> {
    let mut ops = Vec::new();
    walk(t, root, 0, &mut ops)?;
    Some(ops.into_boxed_slice())
}

fn walk(t: &SchemaTable, node: u32, depth: u32, ops: &mut Vec<Op>) -> Option<()> {
    if ops.len() > MAX_OPS {
        return None;
    }
    let op = match t.nodes[node as usize] {
        Node::Null => return Some(()),
        Node::Boolean => Op::Boolean,
        Node::Int => Op::Int,
        Node::Long => Op::Long,
        Node::Float => Op::Skip(4),
        Node::Double => Op::Skip(8),
        Node::Fixed(n) => Op::Skip(n),
        Node::Bytes => Op::Bytes,
        Node::String => Op::Str,
        Node::Enum(symbols) => Op::Enum(symbols),
        Node::Record { first, len } => {
            // The general walk's depth limit (a deeper record is its error to report).
            if depth >= MAX_DEPTH {
                return None;
            }
            for link in first..first + len {
                walk(t, t.links[link as usize], depth + 1, ops)?;
            }
            return Some(());
        }
        Node::Uuid | Node::Array { .. } | Node::Map { .. } | Node::Union { .. } => return None,
    };
    match (ops.last_mut(), op) {
        (_, Op::Skip(0)) => {}
        (Some(Op::Skip(m)), Op::Skip(n)) => *m += n,
        _ => ops.push(op),
    }
    Some(())
}

/// Whether `buf` is exactly one valid datum of `ops`. `false` says nothing
/// more: the general walk finds out what is wrong (or that nothing is).
#[inline]
pub(super) fn accepts(ops: &[Op], buf: &[u8]) -> bool {
    let mut pos = 0usize;
    for &op in ops {
        let ok = match op {
            Op::Skip(n) => {
                let ok = buf.len() - pos >= n;
                pos += n;
                ok
            }
            Op::Boolean => {
                let ok = matches!(buf.get(pos), Some(0 | 1));
                pos += 1;
                ok
            }
            Op::Int => skip_int(buf, &mut pos),
            Op::Long => skip_long(buf, &mut pos),
            Op::Bytes => match read_len(buf, &mut pos) {
                Ok(n) => {
                    pos += n;
                    true
                }
                Err(_) => false,
            },
            Op::Str => read_str(buf, &mut pos).is_ok(),
            Op::Enum(symbols) => read_int(buf, &mut pos).is_ok_and(|i| i >= 0 && (i as usize) < symbols),
        };
        if !ok {
            return false;
        }
    }
    pos == buf.len()
}

/// The bytes ahead as one little-endian word, if there are 8.
#[inline(always)]
fn word(buf: &[u8], pos: usize) -> Option<u64> {
    let w = buf.get(pos..pos + 8)?;
    Some(u64::from_le_bytes(w.try_into().expect("8 bytes")))
}

/// How many bytes the varint starting at the low byte of `w` takes, if it
/// ends within the word (1..=8).
#[inline(always)]
fn varint_len(w: u64) -> Option<usize> {
    let stops = !w & 0x8080_8080_8080_8080;
    (stops != 0).then(|| (stops.trailing_zeros() / 8 + 1) as usize)
}

/// Steps over a long as [`read_long`] reads it, finding its end in one word
/// load where 8 bytes are left (a nanosecond time takes 9 bytes: a
/// byte-at-a-time loop was a third of the fast path's instructions).
#[inline(always)]
fn skip_long(buf: &[u8], pos: &mut usize) -> bool {
    let Some(w) = word(buf, *pos) else { return read_long(buf, pos).is_ok() };
    if let Some(n) = varint_len(w) {
        *pos += n;
        return true;
    }
    // Eight continuation bytes: the 9th ends it, or the 10th (at most 1).
    match (buf.get(*pos + 8), buf.get(*pos + 9)) {
        (Some(&b), _) if b < 0x80 => {
            *pos += 9;
            true
        }
        (Some(_), Some(&b)) if b <= 1 => {
            *pos += 10;
            true
        }
        _ => false,
    }
}

/// Steps over an int as [`read_int`] reads it.
#[inline(always)]
fn skip_int(buf: &[u8], pos: &mut usize) -> bool {
    let Some(w) = word(buf, *pos) else { return read_int(buf, pos).is_ok() };
    match varint_len(w) {
        Some(n @ 1..=4) => {
            *pos += n;
            true
        }
        // The 5th byte carries bits 28..31 only.
        Some(5) if (w >> 32) as u8 <= 0x0f => {
            *pos += 5;
            true
        }
        _ => false,
    }
}
