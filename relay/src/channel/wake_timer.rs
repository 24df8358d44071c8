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
    /// The deadline the timer is armed for, until its expiry is read.
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

    /// Takes note of an expiry (the loop saw the descriptor readable). An
    /// expiry that was stale (re-armed since) leaves the timer armed.
    pub fn clear(&mut self) -> io::Result<()> {
        let mut ticks = [0u8; 8];
        // SAFETY: reads at most 8 bytes into an 8-byte buffer.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), ticks.as_mut_ptr().cast(), ticks.len()) };
        if n >= 0 {
            self.armed = None;
            return Ok(());
        }
        match io::Error::last_os_error() {
            e if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            e => Err(e),
        }
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

    /// Waits up to `limit` for the timer to expire, as the loop's poll would;
    /// true if it did (and the expiry was taken).
    fn expires_within(t: &mut WakeTimer, limit: Duration) -> bool {
        let mut p = libc::pollfd { fd: t.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, limit.as_millis() as i32) };
        assert!(n >= 0, "poll: {}", io::Error::last_os_error());
        if n == 0 {
            return false;
        }
        let armed = t.armed;
        t.clear().unwrap();
        assert_eq!(t.armed, None, "an expiry read does not leave the timer armed (was {armed:?})");
        true
    }

    #[test]
    fn fires_at_its_deadline_not_before() {
        let mut t = WakeTimer::new().unwrap();
        let start = Instant::now();
        t.set(start + Duration::from_millis(30)).unwrap();
        assert!(expires_within(&mut t, Duration::from_secs(2)));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(30), "fired after {took:?}");
    }

    #[test]
    fn a_deadline_in_the_past_fires_at_once() {
        let mut t = WakeTimer::new().unwrap();
        t.set(Instant::now() - Duration::from_millis(5)).unwrap();
        assert!(expires_within(&mut t, Duration::from_millis(500)));
    }

    #[test]
    fn rearming_replaces_the_deadline() {
        let mut t = WakeTimer::new().unwrap();
        let start = Instant::now();
        // Armed far away, then moved near: the near one counts.
        t.set(start + Duration::from_secs(30)).unwrap();
        t.set(start + Duration::from_millis(20)).unwrap();
        assert!(expires_within(&mut t, Duration::from_secs(5)), "did not fire");
        // Moved away after firing once: it does not fire again early.
        t.set(Instant::now() + Duration::from_secs(30)).unwrap();
        assert!(!expires_within(&mut t, Duration::from_millis(100)), "fired before its new deadline");
    }

    #[test]
    fn the_same_deadline_is_armed_again_after_it_fired() {
        // `set` skips the system call for an unchanged deadline; after an
        // expiry it must not, or the loop would sleep forever.
        let mut t = WakeTimer::new().unwrap();
        let at = Instant::now() + Duration::from_millis(10);
        t.set(at).unwrap();
        assert!(expires_within(&mut t, Duration::from_secs(5)));
        t.set(at).unwrap();
        assert!(expires_within(&mut t, Duration::from_secs(5)), "not re-armed");
    }

    #[test]
    fn a_stale_expiry_leaves_the_new_deadline_armed() {
        let mut t = WakeTimer::new().unwrap();
        t.set(Instant::now() + Duration::from_millis(5)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        // Re-armed after it fired but before the loop read it: the read finds
        // nothing, and the new deadline stays.
        let far = Instant::now() + Duration::from_secs(30);
        t.set(far).unwrap();
        t.clear().unwrap();
        assert_eq!(t.armed, Some(far));
        assert!(!expires_within(&mut t, Duration::from_millis(50)));
    }

    #[test]
    fn an_expiry_missed_while_busy_is_still_seen() {
        let mut t = WakeTimer::new().unwrap();
        t.set(Instant::now() + Duration::from_millis(10)).unwrap();
        // Not waiting while it fires (the loop was busy with the socket).
        std::thread::sleep(Duration::from_millis(30));
        assert!(expires_within(&mut t, Duration::from_millis(500)), "expiry lost");
    }
}
