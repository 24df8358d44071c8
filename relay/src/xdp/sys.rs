//! The few raw syscalls aya does not expose, each behind one narrow function.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `BPF_OBJ_GET` from `include/uapi/linux/bpf.h`.
const BPF_OBJ_GET: libc::c_long = 7;

/// The `BPF_OBJ_*` member of `union bpf_attr`, zero-padded to 24 bytes.
#[repr(C)]
#[derive(Default)]
struct ObjAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
    path_fd: i32,
    _pad: u32,
}

/// The interface index a pinned XDP link is attached to: `Ok(None)` when no
/// link is pinned at `path`, `Ok(Some(0))` when the link outlived its
/// interface (the interface or its namespace was deleted).
pub fn pinned_link_ifindex(path: &Path) -> io::Result<Option<u32>> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let attr = ObjAttr { pathname: c_path.as_ptr() as u64, ..ObjAttr::default() };
    // SAFETY: `attr` is a valid, zero-padded `bpf_attr` prefix whose pathname
    // points at a NUL-terminated string that outlives the call; the kernel
    // reads at most `size_of::<ObjAttr>()` bytes.
    let rc = unsafe {
        libc::syscall(libc::SYS_bpf, BPF_OBJ_GET, &attr as *const ObjAttr, std::mem::size_of::<ObjAttr>())
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::NotFound => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: on success BPF_OBJ_GET returns a new file descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(rc as i32) };
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)))?;
    drop(fd);
    Ok(Some(parse_fdinfo_ifindex(&info).unwrap_or(0)))
}

fn parse_fdinfo_ifindex(fdinfo: &str) -> Option<u32> {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("ifindex:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The index of `iface` in this network namespace, `None` if there is none.
pub fn ifindex(iface: &str) -> Option<u32> {
    let c = CString::new(iface).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (index != 0).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_xdp_link_fdinfo() {
        let info = "pos:\t0\nflags:\t02000000\nmnt_id:\t15\nino:\t1057\nlink_type:\txdp\nlink_id:\t3\nprog_tag:\tabc\nprog_id:\t10\nifindex:\t4\n";
        assert_eq!(parse_fdinfo_ifindex(info), Some(4));
        assert_eq!(parse_fdinfo_ifindex("link_type:\txdp\n"), None);
    }

    #[test]
    fn loopback_has_an_index() {
        assert!(ifindex("lo").is_some());
        assert!(ifindex("no-such-if0").is_none());
    }
}
