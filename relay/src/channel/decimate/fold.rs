//! The arithmetic: per-slot accumulators folded one datum at a time, the
//! window's result per algorithm, and the output datum encoded as the last
//! datum's bytes with its numeric slots replaced.

use super::layout::{Kind, Layout, Slot};
use super::scan::Num;

/// One slot's running statistics over the current window. Only the ones the
/// algorithm needs are updated.
#[derive(Debug, Clone, Copy)]
pub(super) struct Acc {
    /// Non-null values folded in.
    pub n: u64,
    /// Exact sum of integer values.
    pub int_sum: i128,
    /// Sum of floating-point values.
    pub float_sum: f64,
    /// Sum of squares (integers converted to f64 first).
    pub squares: f64,
    pub int_min: i64,
    pub int_max: i64,
    /// NaN until a value is seen; NaN values never replace a number.
    pub float_min: f64,
    pub float_max: f64,
}

impl Default for Acc {
    fn default() -> Acc {
        Acc {
            n: 0,
            int_sum: 0,
            float_sum: 0.0,
            squares: 0.0,
            int_min: i64::MAX,
            int_max: i64::MIN,
            float_min: f64::NAN,
            float_max: f64::NAN,
        }
    }
}

/// What a window's numbers are reduced to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stat {
    Mean,
    Min,
    Max,
    Rms,
}

impl Acc {
    #[inline]
    pub(super) fn add_mean(&mut self, v: Num) {
        match v {
            Num::Null => return,
            Num::Int(i) => self.int_sum += i128::from(i),
            Num::Float(f) => self.float_sum += f,
        }
        self.n += 1;
    }

    #[inline]
    pub(super) fn add_extremes(&mut self, v: Num) {
        match v {
            Num::Null => return,
            Num::Int(i) => {
                self.int_min = self.int_min.min(i);
                self.int_max = self.int_max.max(i);
            }
            Num::Float(f) => {
                if self.float_min.is_nan() || f < self.float_min {
                    self.float_min = f;
                }
                if self.float_max.is_nan() || f > self.float_max {
                    self.float_max = f;
                }
            }
        }
        self.n += 1;
    }

    #[inline]
    pub(super) fn add_square(&mut self, v: Num) {
        let f = match v {
            Num::Null => return,
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        };
        self.squares += f * f;
        self.n += 1;
    }

    /// The window's value for a slot of `kind`; `Null` when every value was null.
    pub(super) fn result(&self, kind: Kind, stat: Stat) -> Num {
        if self.n == 0 {
            return Num::Null;
        }
        let int = kind.is_integer();
        match (stat, int) {
            (Stat::Mean, true) => Num::Int(round_div(self.int_sum, self.n)),
            (Stat::Mean, false) => Num::Float(self.float_sum / self.n as f64),
            (Stat::Min, true) => Num::Int(self.int_min),
            (Stat::Min, false) => Num::Float(self.float_min),
            (Stat::Max, true) => Num::Int(self.int_max),
            (Stat::Max, false) => Num::Float(self.float_max),
            (Stat::Rms, _) => {
                let rms = (self.squares / self.n as f64).sqrt();
                if int {
                    Num::Int(round_to_int(rms, kind))
                } else {
                    Num::Float(rms)
                }
            }
        }
    }
}

/// `sum / n` rounded to the nearest integer, halves away from zero. The mean
/// of i64 values is an i64.
fn round_div(sum: i128, n: u64) -> i64 {
    let n = i128::from(n);
    let (q, r) = (sum / n, sum % n);
    let q = if 2 * r.abs() >= n { q + r.signum() } else { q };
    i64::try_from(q).expect("a mean lies between the values")
}

/// `v` rounded into the range of `kind` (the RMS of `int`s reaches 2^31 for
/// a window of `i32::MIN`s, which saturates).
fn round_to_int(v: f64, kind: Kind) -> i64 {
    match kind {
        Kind::Int => i64::from(v.round() as i32),
        _ => v.round() as i64,
    }
}

/// Appends to `out` the datum `last` with each slot's range replaced by the
/// encoding of `values[slot]`.
pub(super) fn encode(
    layout: &Layout,
    last: &[u8],
    ranges: &[(usize, usize)],
    values: &[Num],
    out: &mut Vec<u8>,
) {
    let mut copied = 0;
    for ((slot, &(start, end)), &value) in layout.slots.iter().zip(ranges).zip(values) {
        out.extend_from_slice(&last[copied..start]);
        encode_slot(*slot, value, out);
        copied = end;
    }
    out.extend_from_slice(&last[copied..]);
}

fn encode_slot(slot: Slot, value: Num, out: &mut Vec<u8>) {
    if let Some(b) = slot.union {
        let branch = match value {
            Num::Null => b.null.expect("null only comes from a null branch"),
            _ => b.number,
        };
        write_long(branch, out);
    }
    match (slot.kind, value) {
        (_, Num::Null) => {}
        (Kind::Int, Num::Int(i)) => write_long(
            i64::from(i.clamp(i32::MIN.into(), i32::MAX.into()) as i32),
            out,
        ),
        (Kind::Long, Num::Int(i)) => write_long(i, out),
        (Kind::Float, Num::Float(f)) => out.extend_from_slice(&(f as f32).to_le_bytes()),
        (Kind::Double, Num::Float(f)) => out.extend_from_slice(&f.to_le_bytes()),
        (kind, value) => unreachable!("slot of kind {kind:?} holds {value:?}"),
    }
}

/// Zigzag varint.
pub(super) fn write_long(v: i64, out: &mut Vec<u8>) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}
