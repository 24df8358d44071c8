//! Reading primitives off a datum, and the failure type the walk returns.

use super::{DatumErrorKind, MAX_DEPTH};

/// Internal failure: boxed so the hot path's `Result` stays one word.
pub(super) struct Fail {
    pub kind: DatumErrorKind,
    pub offset: usize,
    /// Innermost first; reversed when rendered.
    pub path: Vec<Seg>,
}

pub(super) enum Seg {
    Link(u32),
    Index(u64),
    Key(usize, usize),
}

pub(super) type Res<T> = Result<T, Box<Fail>>;

#[cold]
#[inline(never)]
pub(super) fn fail<T>(kind: DatumErrorKind, offset: usize) -> Res<T> {
    Err(Box::new(Fail {
        kind,
        offset,
        path: Vec::new(),
    }))
}

#[inline(never)]
#[cold]
pub(super) fn push_seg(mut e: Box<Fail>, seg: Seg) -> Box<Fail> {
    e.path.push(seg);
    e
}

pub(super) fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[inline]
pub(super) fn next_depth(depth: u32, pos: usize) -> Res<u32> {
    if depth >= MAX_DEPTH {
        return fail(DatumErrorKind::TooDeep, pos);
    }
    Ok(depth + 1)
}

#[inline]
pub(super) fn skip(buf: &[u8], pos: &mut usize, n: usize) -> Res<()> {
    if buf.len() - *pos < n {
        return fail(DatumErrorKind::UnexpectedEnd, *pos);
    }
    *pos += n;
    Ok(())
}

/// A zigzag long: at most 10 bytes, the 10th carrying only bit 63.
#[inline(always)]
pub(super) fn read_long(buf: &[u8], pos: &mut usize) -> Res<i64> {
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
#[inline(always)]
pub(super) fn read_int(buf: &[u8], pos: &mut usize) -> Res<i32> {
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
#[inline(always)]
pub(super) fn read_len(buf: &[u8], pos: &mut usize) -> Res<usize> {
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

#[inline(always)]
pub(super) fn read_str(buf: &[u8], pos: &mut usize) -> Res<()> {
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
pub(super) fn read_block_header(
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
pub(super) fn check_block_size(declared: Option<u64>, start: usize, end: usize) -> Res<()> {
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
