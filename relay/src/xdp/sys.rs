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
    let Some(fd) = obj_get(path)? else { return Ok(None) };
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)))?;
    drop(fd);
    Ok(Some(parse_fdinfo_ifindex(&info).unwrap_or(0)))
}

/// Opens a pinned BPF object: `Ok(None)` when nothing is pinned at `path`.
fn obj_get(path: &Path) -> io::Result<Option<OwnedFd>> {
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
    Ok(Some(unsafe { OwnedFd::from_raw_fd(rc as i32) }))
}

/// `BPF_LINK_DETACH` from `include/uapi/linux/bpf.h` (Linux >= 5.9 for XDP links).
const BPF_LINK_DETACH: libc::c_long = 34;

/// Detaches the pinned link at `path` from its interface now. Dropping the
/// last reference to a link also detaches it, but from a kernel work item, a
/// moment later; `detach` promises the interface is free when it returns.
/// Nothing pinned, or a link already detached: `Ok`.
pub fn detach_pinned_link(path: &Path) -> io::Result<()> {
    let Some(fd) = obj_get(path)? else { return Ok(()) };
    // The `link_detach` member of `union bpf_attr`: the link's fd, zero-padded.
    let attr: [u32; 4] = [std::os::fd::AsRawFd::as_raw_fd(&fd) as u32, 0, 0, 0];
    // SAFETY: a valid, zero-padded `bpf_attr` prefix of the stated size.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, BPF_LINK_DETACH, attr.as_ptr(), std::mem::size_of_val(&attr)) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        // ENOLINK: already detached (its interface went away).
        if e.raw_os_error() != Some(libc::ENOLINK) {
            return Err(e);
        }
    }
    Ok(())
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

/// Whether `iface` is administratively up and has a carrier (`IFF_UP` and
/// `IFF_RUNNING`), asked of this network namespace through a socket ioctl
/// (sysfs may belong to another namespace). `None` if there is no such interface.
pub fn is_up(iface: &str) -> Option<bool> {
    let name = iface.as_bytes();
    if name.len() >= libc::IFNAMSIZ {
        return None;
    }
    // SAFETY: a plain datagram socket, closed by OwnedFd below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` is a new descriptor we own.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero ifreq is valid; the name (shorter than IFNAMSIZ) stays NUL-terminated.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags inside `req`.
    let rc = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&sock), libc::SIOCGIFFLAGS, &mut req) };
    if rc < 0 {
        return None;
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let flags = i32::from(unsafe { req.ifr_ifru.ifru_flags });
    Some(flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0)
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
        assert_eq!(is_up("no-such-if0"), None);
        assert!(is_up("lo").is_some());
    }
}
