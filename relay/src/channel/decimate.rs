//! Decimation: what goes to the decimated stream (browser stripcharts want
//! ~100 Hz out of 5 kHz). Sans-IO: driven by one [`Decimator::push`] per
//! valid datum and by [`Decimator::poll`] at [`Decimator::next_deadline`],
//! with the arrival time passed in, so it is tested without sockets or clocks.
//!
//! # Windows
//!
//! - **Count** (`factor: N`): a window closes on its N-th datum.
//! - **Time** (`interval_ms`): windows are the intervals `[k·I, (k+1)·I)` of
//!   *arrival time* since the Unix epoch (the `now` the pipeline passes in,
//!   not the datum's time field, which a source may set to anything). A
//!   window closes when a datum arrives at or after its end, or when
//!   [`Decimator::poll`] is called at or after its end (the channel shell
//!   calls it at [`Decimator::next_deadline`]), so its output leaves on time
//!   even if the source goes quiet. Empty windows emit nothing. A wall clock
//!   stepping backwards before the window's start closes it too.
//!
//! A window cut short ([`Decimator::flush`]: shutdown, reload) is emitted.
//!
//! # Algorithms
//!
//! - `downsample`: the last datum of the window, byte for byte (no decoding).
//! - `average`: the mean of every numeric value, `int`/`long` rounded to the
//!   nearest (halves away from zero, exact: summed in i128).
//! - `minmax`: two datums per window, the minima then the maxima (NaN is
//!   ignored unless every value is NaN).
//! - `rms`: the root mean square of every numeric value (`int`/`long`
//!   rounded, saturating at the type's range).
//!
//! Output datums are the window's **last datum** with its numeric values
//! replaced, so they decode with the channel's own schema; everything not
//! numeric, and the time field (`time_field`, default `time`, a dotted path
//! for a nested record's field), comes from that last datum.
//!
//! **Numeric** means a plain `int`, `long`, `float` or `double` field, also
//! inside nested records (at any depth), and a union of one of those with
//! `null` (`["null", "double"]`): nulls are skipped, and a window whose values
//! were all null gives null. **Copied** from the last datum are: strings,
//! bytes, booleans, enums, fixed; arrays and maps (even of numbers: their
//! lengths vary from datum to datum); unions of anything else (two numeric
//! branches, records); logical types over int/long (dates, times, timestamps:
//! instants rather than measurements).
//!
//! # Cost
//!
//! The schema is compiled once into a flat list of ops ([`layout`]); a datum
//! is walked once, decoding only numeric values and stepping over the rest
//! ([`scan`]), into preallocated accumulators ([`fold`]). No allocation per
//! datum in steady state: the scratch, the last datum and the output buffer
//! are reused.

mod fold;
mod layout;
mod scan;

#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime};

use apache_avro::Schema;

use super::out_batch::OutBatch;
use crate::config::{Algorithm, Decimation, Window};
use fold::{Acc, Stat};
use crate::avro::SchemaError;
use layout::Layout;
use scan::{Num, Scan};

/// One channel's decimator.
#[derive(Debug)]
pub struct Decimator {
    window: Window,
    algorithm: Algorithm,
    /// `None` for `downsample`, which never looks inside a datum.
    layout: Option<Layout>,
    /// Datums in the current window.
    filled: u32,
    /// Time windows: the current window's `[start, end)`, set by its first datum.
    span: Option<(SystemTime, SystemTime)>,
    /// The last datum of the current window and its slots' byte ranges.
    last: Vec<u8>,
    last_ranges: Vec<(usize, usize)>,
    /// The datum being folded in.
    scratch: Scan,
    accs: Vec<Acc>,
    /// Per-slot results and the encoded output datum.
    results: Vec<Num>,
    encoded: Vec<u8>,
    /// Datums the layout could not walk (the validator let them through, so
    /// this stays 0 unless the two disagree).
    pub unreadable: u64,
}

impl Decimator {
    /// The decimator for a channel of `schema`; `None` when decimation is
    /// disabled.
    pub fn new(cfg: &Decimation, schema: &Schema) -> Result<Option<Decimator>, SchemaError> {
        if !cfg.enabled {
            return Ok(None);
        }
        let window = match cfg.window {
            Window::Count(n) => Window::Count(n.max(1)),
            Window::Time(t) => Window::Time(t.max(Duration::from_nanos(1))),
        };
        let layout = match cfg.algorithm {
            Algorithm::Downsample => None,
            _ => Some(layout::compile(schema, &cfg.time_field)?),
        };
        let slots = layout.as_ref().map_or(0, |l| l.slots.len());
        Ok(Some(Decimator {
            window,
            algorithm: cfg.algorithm,
            scratch: layout.as_ref().map(Scan::for_layout).unwrap_or_default(),
            layout,
            filled: 0,
            span: None,
            last: Vec::new(),
            last_ranges: vec![(0, 0); slots],
            accs: vec![Acc::default(); slots],
            results: vec![Num::Null; slots],
            encoded: Vec::new(),
            unreadable: 0,
        }))
    }

    /// Feeds one valid datum that arrived at `now`; windows it closes add
    /// their output datums to `out`.
    pub fn push(&mut self, datum: &[u8], now: SystemTime, out: &mut OutBatch) {
        if self.filled > 0 && self.due(now) {
            self.emit(out);
        }
        if !self.absorb(datum) {
            self.unreadable += 1;
            return;
        }
        if self.filled == 0 {
            if let Window::Time(interval) = self.window {
                self.span = Some(aligned(now, interval));
            }
        }
        self.filled += 1;
        if let Window::Count(n) = self.window {
            if self.filled == n {
                self.emit(out);
            }
        }
    }

    /// Closes a time window whose end has passed by `now`, adding its output to `out`.
    pub fn poll(&mut self, now: SystemTime, out: &mut OutBatch) {
        if self.filled > 0 && self.due(now) {
            self.emit(out);
        }
    }

    /// When [`Decimator::poll`] must next be called: the end of the current
    /// time window, if it holds datums.
    pub fn next_deadline(&self) -> Option<SystemTime> {
        self.span.filter(|_| self.filled > 0).map(|(_, end)| end)
    }

    /// Closes a window cut short (shutdown, reload), adding its output to `out`.
    pub fn flush(&mut self, out: &mut OutBatch) {
        self.emit(out);
    }

    fn due(&self, now: SystemTime) -> bool {
        self.span
            .is_some_and(|(start, end)| now >= end || now < start)
    }

    /// Folds `datum` into the window; false if it cannot be walked (the
    /// window is left as it was).
    fn absorb(&mut self, datum: &[u8]) -> bool {
        if let Some(layout) = &self.layout {
            if scan::scan(layout, datum, &mut self.scratch).is_none() {
                return false;
            }
            let (accs, values) = (&mut self.accs, &self.scratch.values);
            match self.algorithm {
                Algorithm::Average => accs
                    .iter_mut()
                    .zip(values)
                    .for_each(|(a, &v)| a.add_mean(v)),
                Algorithm::MinMax => accs
                    .iter_mut()
                    .zip(values)
                    .for_each(|(a, &v)| a.add_extremes(v)),
                Algorithm::Rms => accs
                    .iter_mut()
                    .zip(values)
                    .for_each(|(a, &v)| a.add_square(v)),
                Algorithm::Downsample => {}
            }
            std::mem::swap(&mut self.last_ranges, &mut self.scratch.ranges);
        }
        self.last.clear();
        self.last.extend_from_slice(datum);
        true
    }

    /// Emits the current window, if it holds datums, and starts an empty one.
    fn emit(&mut self, out: &mut OutBatch) {
        if self.filled == 0 {
            return;
        }
        self.filled = 0;
        self.span = None;
        match self.algorithm {
            Algorithm::Downsample => out.push(&self.last),
            Algorithm::Average => self.emit_stat(Stat::Mean, out),
            Algorithm::Rms => self.emit_stat(Stat::Rms, out),
            Algorithm::MinMax => {
                self.emit_stat(Stat::Min, out);
                self.emit_stat(Stat::Max, out);
            }
        }
        self.accs.iter_mut().for_each(|a| *a = Acc::default());
    }

    fn emit_stat(&mut self, stat: Stat, out: &mut OutBatch) {
        let Some(layout) = &self.layout else { return };
        for ((r, acc), slot) in self.results.iter_mut().zip(&self.accs).zip(&layout.slots) {
            *r = acc.result(slot.kind, stat);
        }
        self.encoded.clear();
        fold::encode(
            layout,
            &self.last,
            &self.last_ranges,
            &self.results,
            &mut self.encoded,
        );
        out.push(&self.encoded);
    }
}

/// The window of length `interval` that holds `now`, on the grid of
/// multiples of `interval` since the Unix epoch (so a steady source gives a
/// steady output rate); before the epoch, a window starting at `now`.
fn aligned(now: SystemTime, interval: Duration) -> (SystemTime, SystemTime) {
    let Ok(since) = now.duration_since(SystemTime::UNIX_EPOCH) else {
        return (now, now + interval);
    };
    let step = interval.as_nanos();
    let into = since.as_nanos() % step;
    // `into` < `interval`, which is a Duration: it fits.
    let start = now - Duration::from_nanos(u64::try_from(into).unwrap_or(u64::MAX));
    (start, start + interval)
}
