//! Restart delay for a crashing channel: 250 ms doubling to 16 s, back to
//! 250 ms once a child has run healthily for 30 s. Pure, time passed in.

use std::time::Duration;

pub const INITIAL: Duration = Duration::from_millis(250);
pub const CAP: Duration = Duration::from_secs(16);
pub const HEALTHY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: INITIAL }
    }
}

impl Backoff {
    /// The delay before restarting a child that ran for `ran` and then died.
    pub fn after_exit(&mut self, ran: Duration) -> Duration {
        if ran >= HEALTHY {
            self.next = INITIAL;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(CAP);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets_after_healthy_run() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(10);
        let delays: Vec<_> = (0..9).map(|_| b.after_exit(quick).as_millis()).collect();
        assert_eq!(delays, vec![250, 500, 1000, 2000, 4000, 8000, 16000, 16000, 16000]);
        assert_eq!(b.after_exit(HEALTHY), INITIAL);
        assert_eq!(b.after_exit(quick), INITIAL * 2);
    }
}
