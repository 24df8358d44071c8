//! SIGTERM and SIGINT as a descriptor in the channel loop's `epoll` set
//! (`signalfd`): the loop stops at its next turn, between datums, and needs
//! no handler and no runtime for it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub struct StopSignals {
    fd: OwnedFd,
}

impl StopSignals {
    /// Blocks SIGTERM and SIGINT in the calling thread, and so in every
    /// thread it starts afterwards; call it before starting any, or a thread
    /// that does not block them would take the default action (the whole
    /// process ends, with blocks unwritten). The descriptor is readable while
    /// one of them is pending.
    pub fn block() -> io::Result<StopSignals> {
        // SAFETY: a zeroed sigset_t is valid storage that sigemptyset then
        // initialises; the calls only read and write that set.
        let fd = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            let e = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if e != 0 {
                return Err(io::Error::from_raw_os_error(e));
            }
            libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC)
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a new descriptor that nothing else owns.
        Ok(StopSignals { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// The pending stop signal's number, if one is pending (taking it).
    pub fn take(&self) -> io::Result<Option<i32>> {
        // SAFETY: a zeroed signalfd_siginfo is valid; read writes at most its size.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads at most `size` bytes into `info`.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), (&mut info as *mut libc::signalfd_siginfo).cast(), size) };
        if n == size as isize {
            return Ok(Some(info.ssi_signo as i32));
        }
        match io::Error::last_os_error() {
            e if n < 0 && e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            e if n < 0 => Err(e),
            _ => Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("signalfd read {n} bytes, not {size}"))),
        }
    }
}

impl AsRawFd for StopSignals {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a thread of its own: the mask stays with that thread, not
    /// with the test harness's.
    fn on_own_thread(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(f).join().unwrap();
    }

    #[test]
    fn nothing_pending_reads_as_none() {
        on_own_thread(|| {
            let s = StopSignals::block().unwrap();
            assert_eq!(s.take().unwrap(), None);
        });
    }

    #[test]
    fn a_term_sent_to_the_thread_is_taken_not_acted_on() {
        on_own_thread(|| {
            let s = StopSignals::block().unwrap();
            // SAFETY: signals this thread, which blocks SIGTERM now.
            assert_eq!(unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGTERM) }, 0);
            let mut p = libc::pollfd { fd: s.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            assert_eq!(unsafe { libc::poll(&mut p, 1, 1000) }, 1, "not readable");
            assert_eq!(s.take().unwrap(), Some(libc::SIGTERM));
            assert_eq!(s.take().unwrap(), None, "taken once");
        });
    }

    #[test]
    fn an_interrupt_is_taken_too() {
        on_own_thread(|| {
            let s = StopSignals::block().unwrap();
            // SAFETY: as above, for SIGINT.
            assert_eq!(unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGINT) }, 0);
            assert_eq!(s.take().unwrap(), Some(libc::SIGINT));
        });
    }

    #[test]
    fn threads_started_afterwards_block_them_too() {
        on_own_thread(|| {
            let _s = StopSignals::block().unwrap();
            let blocked = std::thread::spawn(|| {
                // SAFETY: reads this thread's mask into a zeroed set.
                unsafe {
                    let mut cur: libc::sigset_t = std::mem::zeroed();
                    libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur);
                    (libc::sigismember(&cur, libc::SIGTERM), libc::sigismember(&cur, libc::SIGINT))
                }
            })
            .join()
            .unwrap();
            assert_eq!(blocked, (1, 1));
        });
    }
}
