//! Walking one datum along its [`Layout`]: the numeric slots decoded, their
//! byte ranges noted, everything else skipped without decoding.
//!
//! Datums reach the decimator validated, so a failure here means the layout
//! and the validator disagree; it is reported as `None`, never a panic.

use super::layout::{Kind, Layout, Op};
use crate::avro::ocf::read_long;
use crate::avro::schema_table::Node;

/// A slot's value in one datum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Num {
    /// The `null` branch of a nullable number.
    Null,
    Int(i64),
    Float(f64),
}

/// Per-datum scratch, sized once for the layout and reused.
#[derive(Debug, Clone, Default)]
pub(super) struct Scan {
    pub values: Vec<Num>,
    /// Byte range of each slot (union index included) in the datum.
    pub ranges: Vec<(usize, usize)>,
}

impl Scan {
    pub(super) fn for_layout(layout: &Layout) -> Scan {
        Scan {
            values: vec![Num::Null; layout.slots.len()],
            ranges: vec![(0, 0); layout.slots.len()],
        }
    }
}

/// Fills `scan` from `buf`; `None` if `buf` is not a datum of the layout.
pub(super) fn scan(layout: &Layout, buf: &[u8], scan: &mut Scan) -> Option<()> {
    let mut pos = 0;
    let mut slot = 0;
    for op in &layout.ops {
        match *op {
            Op::Number => {
                let s = layout.slots[slot];
                let start = pos;
                let present = match s.union {
                    None => true,
                    Some(b) => {
                        let branch = read_long(buf, &mut pos)?;
                        if branch == b.number {
                            true
                        } else if Some(branch) == b.null {
                            false
                        } else {
                            return None;
                        }
                    }
                };
                scan.values[slot] = if present {
                    read_number(s.kind, buf, &mut pos)?
                } else {
                    Num::Null
                };
                scan.ranges[slot] = (start, pos);
                slot += 1;
            }
            Op::Skip(node) => skip(layout, node, buf, &mut pos)?,
        }
    }
    (pos == buf.len()).then_some(())
}

#[inline]
fn read_number(kind: Kind, buf: &[u8], pos: &mut usize) -> Option<Num> {
    Some(match kind {
        Kind::Int | Kind::Long => Num::Int(read_long(buf, pos)?),
        Kind::Float => Num::Float(f64::from(f32::from_le_bytes(take(buf, pos)?))),
        Kind::Double => Num::Float(f64::from_le_bytes(take(buf, pos)?)),
    })
}

#[inline]
fn take<const N: usize>(buf: &[u8], pos: &mut usize) -> Option<[u8; N]> {
    let bytes = buf.get(*pos..*pos + N)?.try_into().ok()?;
    *pos += N;
    Some(bytes)
}

fn read_len(buf: &[u8], pos: &mut usize) -> Option<usize> {
    let n = usize::try_from(read_long(buf, pos)?).ok()?;
    (n <= buf.len() - *pos).then_some(n)
}

fn advance(buf: &[u8], pos: &mut usize, n: usize) -> Option<()> {
    if n > buf.len() - *pos {
        return None;
    }
    *pos += n;
    Some(())
}

/// Skips one value (validated datums only nest as deep as the validator allows).
fn skip(layout: &Layout, node: u32, buf: &[u8], pos: &mut usize) -> Option<()> {
    let t = &layout.table;
    match t.nodes[node as usize] {
        Node::Null => Some(()),
        Node::Boolean => advance(buf, pos, 1),
        Node::Int | Node::Long | Node::Enum(_) => read_long(buf, pos).map(drop),
        Node::Float => advance(buf, pos, 4),
        Node::Double => advance(buf, pos, 8),
        Node::Fixed(n) => advance(buf, pos, n),
        Node::Bytes | Node::String | Node::Uuid => {
            let n = read_len(buf, pos)?;
            advance(buf, pos, n)
        }
        Node::Union { first, len } => {
            let branch = u32::try_from(read_long(buf, pos)?)
                .ok()
                .filter(|b| *b < len)?;
            skip(layout, t.links[(first + branch) as usize], buf, pos)
        }
        Node::Record { first, len } => {
            for link in first..first + len {
                skip(layout, t.links[link as usize], buf, pos)?;
            }
            Some(())
        }
        Node::Array { empty: true, .. } => skip_blocks(buf, pos, |_, _| Some(()), true),
        Node::Array {
            items,
            empty: false,
        } => skip_blocks(buf, pos, |buf, pos| skip(layout, items, buf, pos), false),
        Node::Map { values } => skip_blocks(
            buf,
            pos,
            |buf, pos| {
                let n = read_len(buf, pos)?;
                advance(buf, pos, n)?;
                skip(layout, values, buf, pos)
            },
            false,
        ),
    }
}

/// Array/map blocks; a negative count carries the block's byte size, which
/// lets the whole block be stepped over. Items of zero bytes (`empty`) are
/// not looped over: their count can be anything.
fn skip_blocks(
    buf: &[u8],
    pos: &mut usize,
    mut item: impl FnMut(&[u8], &mut usize) -> Option<()>,
    empty: bool,
) -> Option<()> {
    loop {
        let count = read_long(buf, pos)?;
        if count == 0 {
            return Some(());
        }
        if count < 0 {
            let size = read_len(buf, pos)?;
            advance(buf, pos, size)?;
        } else if !empty {
            for _ in 0..count {
                item(buf, pos)?;
            }
        }
    }
}
