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
//! stream (one and a half times [`MAX`] once, for the drain that joins the
//! grid after the period changed), and keeps the ring from filling before the
//! next drain below about 1M records/s of the smallest records (4 MiB ring).
//!
//! Drains fall on a grid shared by every channel process: multiples of the
//! period on CLOCK_MONOTONIC ([`on_grid`]), like the kernel's
//! `round_jiffies` for its own timers. Channels with the same period then
//! wake on one timer interrupt and run back to back, instead of each taking
//! the CPU out of idle on its own; the periods nest ([`MAX`] is twice
//! [`MIN`]) so that channels at different periods still meet on every other
//! grid point.

use std::time::Duration;

/// The period while records arrive at a moderate or high rate.
pub const MIN: Duration = Duration::from_millis(25);
/// The longest period, reached while records arrive slowly.
pub const MAX: Duration = Duration::from_millis(50);
/// A drain that brings at least this many sets it back to [`MIN`].
const MANY: usize = 1024;
/// Drains that bring fewer records than this lengthen the period: twice as
/// long, the next drain still brings fewer than [`MANY`].
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
    /// (more are waiting): how long until the next drain, `now` being
    /// CLOCK_MONOTONIC's reading.
    pub fn after_drain(&mut self, records: usize, busy: bool, now: Duration) -> Duration {
        if busy || records >= MANY {
            self.period = MIN;
        } else if records < FEW {
            self.period = (self.period * 2).min(MAX);
        }
        if busy { Duration::ZERO } else { on_grid(now, self.period) }
    }

    pub fn period(&self) -> Duration {
        self.period
    }
}

/// The wait from `now` to the first multiple of `period` at least half a
/// period away: a whole period once on the grid, between half and one and a
/// half periods for the drain that joins it.
pub fn on_grid(now: Duration, period: Duration) -> Duration {
    let (now, p) = (now.as_nanos(), period.as_nanos().max(1));
    let at = (now + p / 2).div_ceil(p) * p;
    Duration::from_nanos((at - now) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A drain at `now` with the period as it then is, on the grid.
    fn drain(p: &mut DrainPacer, records: usize) -> Duration {
        // 3 ms past a 50 ms grid point (and so past a 25 ms one).
        p.after_drain(records, false, 1000 * MS + 3 * MS)
    }

    #[test]
    fn few_records_lengthen_the_period_up_to_the_maximum() {
        let mut p = DrainPacer::default();
        assert_eq!(p.period(), MIN);
        assert_eq!(drain(&mut p, 100), MAX - 3 * MS);
        assert_eq!(p.period(), MAX);
        assert_eq!(drain(&mut p, 0), MAX - 3 * MS);
        assert_eq!(p.period(), MAX);
    }

    #[test]
    fn many_records_or_a_full_drain_bring_it_back_at_once() {
        let mut p = DrainPacer::default();
        drain(&mut p, 10);
        assert_eq!(drain(&mut p, MANY), MIN - 3 * MS);
        assert_eq!(p.period(), MIN);
        drain(&mut p, 10);
        assert_eq!(p.after_drain(50, true, 1003 * MS), Duration::ZERO, "more waiting: drain again now");
        assert_eq!(p.period(), MIN);
    }

    #[test]
    fn a_moderate_drain_keeps_the_period() {
        let mut p = DrainPacer::default();
        assert_eq!(drain(&mut p, 600), MIN - 3 * MS);
        assert_eq!(p.period(), MIN);
        drain(&mut p, 10);
        // 600 records per 50 ms (12k/s): fewer than MANY, not fewer than FEW.
        drain(&mut p, 600);
        assert_eq!(p.period(), MAX);
        // 320 records per 25 ms (12.8k/s): the next, 50 ms, still brings
        // fewer than MANY, so the period lengthens.
        drain(&mut p, MANY);
        drain(&mut p, 320);
        assert_eq!(p.period(), MAX);
    }

    #[test]
    fn drains_fall_on_multiples_of_the_period() {
        let p = 50 * MS;
        // On the grid (woken a little late): the next grid point.
        assert_eq!(on_grid(1000 * MS + Duration::from_micros(40), p), p - Duration::from_micros(40));
        assert_eq!(on_grid(1000 * MS, p), p);
        // Joining it: the first grid point at least half a period away.
        assert_eq!(on_grid(1010 * MS, p), 40 * MS);
        assert_eq!(on_grid(1030 * MS, p), 70 * MS);
        assert_eq!(on_grid(1025 * MS, p), 25 * MS);
        for now_ms in 990..1100u32 {
            let now = MS * now_ms + Duration::from_nanos(u64::from(now_ms) * 7919);
            for period in [MIN, MAX] {
                let wait = on_grid(now, period);
                assert!(wait >= period / 2 && wait < period * 3 / 2, "{now:?} {period:?}: {wait:?}");
                assert_eq!((now + wait).as_nanos() % period.as_nanos(), 0, "{now:?} {period:?}");
            }
        }
    }

    #[test]
    fn periods_nest_so_channels_meet_on_the_grid() {
        assert_eq!(MAX, MIN * 2);
    }
}
