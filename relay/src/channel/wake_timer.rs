//! The channel loop's one timer: a `timerfd` in tokio's reactor.
//!
//! Not tokio's timers, for two wake-ups they add to every drain of an
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
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;

/// CLOCK_MONOTONIC's reading (std's `Instant` is that clock but hides the
/// value; the drain grid needs it).
pub fn monotonic_now() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: writes one timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

pub struct WakeTimer {
    fd: AsyncFd<OwnedFd>,
    /// The deadline the timer is armed for, until its expiry is read.
    armed: Option<Instant>,
}

impl WakeTimer {
    /// A disarmed timer. Needs a tokio runtime with I/O enabled.
    pub fn new() -> io::Result<WakeTimer> {
        // SAFETY: timerfd_create has no memory preconditions; the result is
        // checked before it is owned.
        let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the AsyncFd owns the descriptor, which stays open and the
        // same until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register(fd) }?;
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

    /// Resolves once the armed deadline has passed. Cancel-safe: an expiry
    /// not read here stays pending for the next call (or is reset by
    /// [`WakeTimer::set`] with a new deadline).
    pub async fn expired(&mut self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut ticks = [0u8; 8];
            let read = guard.try_io(|fd| {
                // SAFETY: reads 8 bytes into an 8-byte buffer.
                let n = unsafe { libc::read(fd.as_raw_fd(), ticks.as_mut_ptr().cast(), ticks.len()) };
                if n < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
            });
            match read {
                Ok(Ok(())) => {
                    // Nothing more to read until it is re-armed and expires,
                    // which is a new edge: saves the next call a read that
                    // would find nothing.
                    guard.clear_ready();
                    self.armed = None;
                    return Ok(());
                }
                Ok(Err(e)) => return Err(e),
                // Readiness was stale (re-armed since): wait again.
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn fires_at_its_deadline_not_before() {
        rt().block_on(async {
            let mut t = WakeTimer::new().unwrap();
            let start = Instant::now();
            t.set(start + Duration::from_millis(30)).unwrap();
            t.expired().await.unwrap();
            let took = start.elapsed();
            assert!(took >= Duration::from_millis(30), "fired after {took:?}");
            assert!(took < Duration::from_secs(2), "fired after {took:?}");
        });
    }

    #[test]
    fn a_deadline_in_the_past_fires_at_once() {
        rt().block_on(async {
            let mut t = WakeTimer::new().unwrap();
            let start = Instant::now();
            t.set(start - Duration::from_millis(5)).unwrap();
            t.expired().await.unwrap();
            assert!(start.elapsed() < Duration::from_secs(1));
        });
    }

    #[test]
    fn rearming_replaces_the_deadline() {
        rt().block_on(async {
            let mut t = WakeTimer::new().unwrap();
            let start = Instant::now();
            // Armed far away, then moved near: the near one counts.
            t.set(start + Duration::from_secs(30)).unwrap();
            t.set(start + Duration::from_millis(20)).unwrap();
            tokio::time::timeout(Duration::from_secs(5), t.expired()).await.expect("did not fire").unwrap();
            // Moved away after firing once: it does not fire again early.
            t.set(Instant::now() + Duration::from_secs(30)).unwrap();
            let early = tokio::time::timeout(Duration::from_millis(100), t.expired()).await;
            assert!(early.is_err(), "fired before its new deadline");
        });
    }

    #[test]
    fn an_expiry_missed_while_busy_is_still_seen() {
        rt().block_on(async {
            let mut t = WakeTimer::new().unwrap();
            t.set(Instant::now() + Duration::from_millis(10)).unwrap();
            // Not waiting while it fires (the loop was busy with the socket).
            std::thread::sleep(Duration::from_millis(30));
            tokio::time::timeout(Duration::from_secs(5), t.expired()).await.expect("expiry lost").unwrap();
        });
    }
}
