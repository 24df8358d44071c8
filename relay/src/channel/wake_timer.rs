//! The channel loop's one timer: a `timerfd` in the loop's `epoll` set.
//!
//! Not tokio's timers, for two wake-ups they added to every drain of an
//! otherwise idle channel (strace of a channel at 3850 datums/s, 50 ms
//! drains: 36 wake-ups a second where 21 were asked for). Tokio's wheel files
//! a deadline that lies past the next 64 ms slot boundary on a coarser level
//! and wakes the thread at that boundary only to re-file it; and arming a
//! new sleep from inside the task writes the reactor's eventfd, which
//! returns the next `epoll_wait` at once. A wake-up costs 12–53 µs of CPU on
//! the 2-core VM the bench runs on, and 32 channel processes pay it 32 times.
//! A timerfd wakes the thread when it is due and at no other time. No crate
//! of ours has one (nix's `TimerFd` would add nix for three calls).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// CLOCK_MONOTONIC's reading (std's `Instant` is that clock but hides the
/// value; the drain grid needs it).
pub fn monotonic_now() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: writes one timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

pub struct WakeTimer {
    fd: OwnedFd,
    /// The deadline the timer is armed for, until its expiry is noted ([`WakeTimer::fired`]).
    armed: Option<Instant>,
}

impl WakeTimer {
    /// A disarmed, non-blocking timer.
    pub fn new() -> io::Result<WakeTimer> {
        // SAFETY: timerfd_create has no memory preconditions; the result is
        // checked before it is owned.
        let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(WakeTimer { fd, armed: None })
    }

    /// Arms the timer for `at` (a time in the past fires at once). A system
    /// call only when the deadline changed.
    pub fn set(&mut self, at: Instant) -> io::Result<()> {
        if self.armed == Some(at) {
            return Ok(());
        }
        // Relative: std's Instant is CLOCK_MONOTONIC but does not expose its
        // value. A zero it_value would disarm, hence at least 1 ns.
        let d = at.saturating_duration_since(Instant::now()).max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec { tv_sec: d.as_secs() as libc::time_t, tv_nsec: d.subsec_nanos() as libc::c_long },
        };
        // SAFETY: a valid timerfd and a valid itimerspec; the old value is not asked for.
        if unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed = Some(at);
        Ok(())
    }

    /// Takes note of an expiry that the loop's (edge-triggered) `epoll`
    /// reported, so that the next [`WakeTimer::set`] arms the timer even for
    /// the same deadline. No read of the expiry count: `timerfd_settime`
    /// resets it, and `epoll` checks that a descriptor is still readable
    /// before it reports an event, so an expiry from before a re-arm is never
    /// reported. That leaves two system calls a wake-up (the wait and the
    /// re-arm), not three; one is about 2.5 µs on the bench's VM.
    pub fn fired(&mut self) {
        self.armed = None;
    }
}

impl AsRawFd for WakeTimer {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::unix::SourceFd;
    use mio::{Events, Interest, Poll, Token};

    /// The timer in an edge-triggered `epoll` set, as the channel loop has it.
    struct Loop {
        timer: WakeTimer,
        poll: Poll,
        events: Events,
    }

    impl Loop {
        fn new() -> Loop {
            let timer = WakeTimer::new().unwrap();
            let poll = Poll::new().unwrap();
            poll.registry().register(&mut SourceFd(&timer.as_raw_fd()), Token(0), Interest::READABLE).unwrap();
            Loop { timer, poll, events: Events::with_capacity(2) }
        }

        /// Waits up to `limit` for an expiry to be reported, as the loop
        /// does; true if one was (and notes it, as the loop does).
        fn fires_within(&mut self, limit: Duration) -> bool {
            self.poll.poll(&mut self.events, Some(limit)).unwrap();
            let fired = !self.events.is_empty();
            if fired {
                self.timer.fired();
            }
            fired
        }
    }

    #[test]
    fn fires_at_its_deadline_not_before() {
        let mut l = Loop::new();
        let start = Instant::now();
        l.timer.set(start + Duration::from_millis(30)).unwrap();
        assert!(l.fires_within(Duration::from_secs(2)));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(30), "fired after {took:?}");
    }

    #[test]
    fn a_deadline_in_the_past_fires_at_once() {
        let mut l = Loop::new();
        l.timer.set(Instant::now() - Duration::from_millis(5)).unwrap();
        assert!(l.fires_within(Duration::from_millis(500)));
    }

    #[test]
    fn rearming_replaces_the_deadline() {
        let mut l = Loop::new();
        let start = Instant::now();
        // Armed far away, then moved near: the near one counts.
        l.timer.set(start + Duration::from_secs(30)).unwrap();
        l.timer.set(start + Duration::from_millis(20)).unwrap();
        assert!(l.fires_within(Duration::from_secs(5)), "did not fire");
        // Moved away after firing once: it does not fire again early.
        l.timer.set(Instant::now() + Duration::from_secs(30)).unwrap();
        assert!(!l.fires_within(Duration::from_millis(100)), "fired before its new deadline");
    }

    #[test]
    fn fires_again_for_each_deadline_without_reading_the_count() {
        // `set` skips the system call for an unchanged deadline; after an
        // expiry it must not, or the loop would sleep forever (the count is
        // never read, so nothing else makes a new edge).
        let mut l = Loop::new();
        for round in 0..3 {
            let at = Instant::now() + Duration::from_millis(5);
            l.timer.set(at).unwrap();
            assert!(l.fires_within(Duration::from_secs(5)), "round {round}");
            l.timer.set(at).unwrap();
            assert!(l.fires_within(Duration::from_secs(5)), "round {round}: the same deadline not armed again");
        }
    }

    #[test]
    fn an_expiry_from_before_a_rearm_is_not_reported() {
        let mut l = Loop::new();
        l.timer.set(Instant::now() + Duration::from_millis(5)).unwrap();
        // Fired while the loop was busy, then re-armed before it waited.
        std::thread::sleep(Duration::from_millis(20));
        let far = Instant::now() + Duration::from_secs(30);
        l.timer.set(far).unwrap();
        assert!(!l.fires_within(Duration::from_millis(50)), "a stale expiry woke the loop");
        assert_eq!(l.timer.armed, Some(far));
    }

    #[test]
    fn an_expiry_missed_while_busy_is_still_seen() {
        let mut l = Loop::new();
        l.timer.set(Instant::now() + Duration::from_millis(10)).unwrap();
        // Not waiting while it fires (the loop was busy with the socket).
        std::thread::sleep(Duration::from_millis(30));
        assert!(l.fires_within(Duration::from_millis(500)), "expiry lost");
    }
}
