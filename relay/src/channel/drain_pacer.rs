//! How long the channel waits between drains of its ring (XDP mode). Sans-IO:
//! fed the size of each drain, it says when the next one is due.
//!
//! The ring is drained on a timer, never waited on (see `shell.rs`). Each
//! drain has a fixed cost (a timer, a decimated send, a journal commit) that a
//! channel receiving a few thousand datums a second pays for a few dozen
//! records, and 32 such channels pay it 32 times over. So the period doubles,
//! up to [`MAX`], while drains bring few records, and is back at [`MIN`] as
//! soon as one brings many; a drain that hits its limit is followed by
//! another at once. [`MAX`] bounds the delay of the archive and the decimated
//! stream, and keeps the ring from filling before the next drain below
//! about 1M records/s of the smallest records (4 MiB ring).

use std::time::Duration;

/// The period while records arrive at a moderate or high rate.
pub const MIN: Duration = Duration::from_millis(20);
/// The longest period, reached while records arrive slowly.
pub const MAX: Duration = Duration::from_millis(50);
/// A drain that brings at least this many sets it back to [`MIN`].
const MANY: usize = 1024;
/// Drains that bring fewer records than this lengthen the period: twice as
/// long, the next drain still brings fewer than [`MANY`]. (At 256, a channel
/// at 6.4k datums/s, one of the bench's 32, stayed at 40 ms.)
const FEW: usize = MANY / 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainPacer {
    period: Duration,
}

impl Default for DrainPacer {
    fn default() -> Self {
        DrainPacer { period: MIN }
    }
}

impl DrainPacer {
    /// After a drain of `records`, `busy` when it stopped at its limit
    /// (more are waiting): how long until the next drain.
    pub fn after_drain(&mut self, records: usize, busy: bool) -> Duration {
        if busy || records >= MANY {
            self.period = MIN;
        } else if records < FEW {
            self.period = (self.period * 2).min(MAX);
        }
        if busy { Duration::ZERO } else { self.period }
    }

    pub fn period(&self) -> Duration {
        self.period
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_records_lengthen_the_period_up_to_the_maximum() {
        let mut p = DrainPacer::default();
        assert_eq!(p.period(), MIN);
        assert_eq!(p.after_drain(100, false), Duration::from_millis(40));
        assert_eq!(p.after_drain(100, false), MAX);
        assert_eq!(p.after_drain(0, false), MAX);
    }

    #[test]
    fn many_records_or_a_full_drain_bring_it_back_at_once() {
        let mut p = DrainPacer::default();
        p.after_drain(10, false);
        p.after_drain(10, false);
        assert_eq!(p.after_drain(MANY, false), MIN);
        p.after_drain(10, false);
        assert_eq!(p.after_drain(50, true), Duration::ZERO, "more waiting: drain again now");
        assert_eq!(p.period(), MIN);
    }

    #[test]
    fn a_moderate_drain_keeps_the_period() {
        let mut p = DrainPacer::default();
        p.after_drain(10, false);
        assert_eq!(p.after_drain(600, false), Duration::from_millis(40));
        assert_eq!(p.after_drain(600, false), Duration::from_millis(40));
        // 320 records per 40 ms (8k/s): the next, 50 ms, still brings
        // fewer than MANY, so the period lengthens.
        assert_eq!(p.after_drain(320, false), MAX);
    }
}
