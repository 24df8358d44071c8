//! A log rate limiter: at most `burst` messages per `period`, counting the rest
//! so the next message can say how many were suppressed.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimit {
    period: Duration,
    burst: u32,
    window_start: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl RateLimit {
    pub fn new(burst: u32, period: Duration) -> Self {
        RateLimit { period, burst, window_start: None, used: 0, suppressed: 0 }
    }

    /// `Some(n)` when a message may be logged now; `n` were suppressed before it.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let start = *self.window_start.get_or_insert(now);
        if now.duration_since(start) >= self.period {
            self.window_start = Some(now);
            self.used = 0;
        }
        if self.used < self.burst {
            self.used += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_suppresses_then_reports_count() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(2, Duration::from_secs(1));
        assert_eq!(r.allow(t0), Some(0));
        assert_eq!(r.allow(t0), Some(0));
        assert_eq!(r.allow(t0), None);
        assert_eq!(r.allow(t0 + Duration::from_millis(500)), None);
        assert_eq!(r.allow(t0 + Duration::from_secs(1)), Some(2));
    }
}
