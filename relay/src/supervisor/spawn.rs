//! Starting one channel child: the input socket the supervisor owns is
//! inherited as fd 3, the child drops to an unprivileged user, and it is tied
//! to the supervisor's life.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

/// The fd numbers a child finds its input socket and (XDP mode) ring at.
pub const INPUT_FD: i32 = 3;
pub const RING_FD: i32 = 4;

/// An unprivileged identity for the channel children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

impl Identity {
    /// Looks a user up by name (or numeric id).
    pub fn lookup(user: &str) -> Result<Identity> {
        let name = std::ffi::CString::new(user).context("user name")?;
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the call; buf outlives the use of pw's strings (none kept).
        let rc = unsafe { libc::getpwnam_r(name.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
        if rc == 0 && !out.is_null() {
            return Ok(Identity { uid: pw.pw_uid, gid: pw.pw_gid });
        }
        if let Ok(uid) = user.parse::<u32>() {
            return Ok(Identity { uid, gid: uid });
        }
        bail!("--user {user}: no such user on this system")
    }

    /// Gives the channel's directory, and the files in it, to this identity so
    /// the child can write there after dropping privileges.
    pub fn own_dir(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::os::unix::fs::chown(dir, Some(self.uid), Some(self.gid))
            .with_context(|| format!("giving {} to uid {}", dir.display(), self.uid))?;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::os::unix::fs::chown(entry.path(), Some(self.uid), Some(self.gid))
                    .with_context(|| format!("giving {} to uid {}", entry.path().display(), self.uid))?;
            }
        }
        Ok(())
    }
}

pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[derive(Clone)]
pub struct ChildSpec {
    pub exe: PathBuf,
    pub name: String,
    /// The channel's resolved settings ([`crate::channel::ChannelSpec`]) as
    /// JSON, written to the child's stdin.
    pub spec_json: Arc<String>,
    /// The channel's input socket, owned by the supervisor across restarts so
    /// datagrams wait in its buffer while a child restarts.
    pub input: Arc<OwnedFd>,
    /// XDP mode: the channel's ring buffer map.
    pub ring: Option<Arc<OwnedFd>>,
    pub identity: Option<Identity>,
}

impl ChildSpec {
    pub fn spawn(&self) -> std::io::Result<Child> {
        let mut cmd = Command::new(&self.exe);
        cmd.arg("channel").arg("--spec-stdin").arg("--name").arg(&self.name);
        cmd.arg("--input-fd").arg(INPUT_FD.to_string());
        if self.ring.is_some() {
            cmd.arg("--ring-fd").arg(RING_FD.to_string());
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // Above the fixed numbers, so moving one into place cannot clobber the other.
        let fd = high_fd(&self.input)?;
        let ring = self.ring.as_ref().map(|r| high_fd(r)).transpose()?;
        let (fd_raw, ring_raw) = (fd.as_raw_fd(), ring.as_ref().map(|r| r.as_raw_fd()));
        let identity = self.identity;
        // SAFETY: getpid before fork; in the child only async-signal-safe calls.
        let parent = unsafe { libc::getpid() };
        unsafe {
            cmd.pre_exec(move || {
                // The input socket and ring at fixed fds, without close-on-exec
                // (dup2 clears it on the copy).
                cvt(libc::dup2(fd_raw, INPUT_FD))?;
                if let Some(r) = ring_raw {
                    cvt(libc::dup2(r, RING_FD))?;
                }
                if let Some(id) = identity {
                    cvt(libc::setgroups(0, std::ptr::null()))?;
                    cvt(libc::setgid(id.gid))?;
                    cvt(libc::setuid(id.uid))?;
                }
                // After setuid, which clears it: a child never outlives the
                // supervisor; it gets SIGTERM (and closes its files) when we
                // die, even by SIGKILL.
                cvt(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM))?;
                // The supervisor may have died before the prctl.
                if libc::getppid() != parent {
                    libc::raise(libc::SIGTERM);
                }
                Ok(())
            });
        }
        let child = cmd.spawn();
        drop((fd, ring)); // the parent's temporary copies
        let mut child = child?;
        if let Some(mut stdin) = child.stdin.take() {
            let spec = self.spec_json.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                // A child that dies before reading it is restarted anyway.
                let _ = stdin.write_all(spec.as_bytes()).await;
            });
        }
        Ok(child)
    }
}

/// A close-on-exec duplicate numbered 10 or above.
fn high_fd(fd: &OwnedFd) -> std::io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd we own, or -1.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

fn cvt(rc: libc::c_int) -> std::io::Result<()> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_users() {
        assert_eq!(Identity::lookup("root").unwrap(), Identity { uid: 0, gid: 0 });
        assert_eq!(Identity::lookup("4242").unwrap().uid, 4242);
        let err = Identity::lookup("no-such-user-here").unwrap_err().to_string();
        assert!(err.contains("no-such-user-here"), "{err}");
    }
}
