//! Where attachments are pinned, and making sure bpffs is there.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use super::XdpError;

/// Where bpffs is mounted.
const BPFFS: &str = "/sys/fs/bpf";

/// The directory holding one directory per attached interface.
pub const PIN_ROOT: &str = "/sys/fs/bpf/speeddata";

/// Name of the pinned XDP link inside an interface's pin directory.
pub(super) const LINK: &str = "link";

/// `/sys/fs/bpf/speeddata/<IF>`: the link and maps of `iface`'s attachment.
pub fn pin_dir(iface: &str) -> PathBuf {
    Path::new(PIN_ROOT).join(iface)
}

/// Mounts bpffs on /sys/fs/bpf unless it is mounted already.
///
/// Under `ip netns exec`, /sys is a fresh sysfs in a private mount namespace,
/// so the bpffs mounted here (and every pin in it) disappears with that
/// namespace; a warning says so. Enter only the network namespace
/// (`nsenter --net=/run/netns/NS`) to keep attachments after exit.
pub fn ensure_bpffs() -> Result<(), XdpError> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").map_err(|source| XdpError::Io {
        what: "reading",
        path: "/proc/self/mounts".into(),
        source,
    })?;
    if is_bpffs_mounted(&mounts) {
        return Ok(());
    }
    std::fs::create_dir_all(BPFFS).map_err(|source| XdpError::Io {
        what: "creating",
        path: BPFFS.into(),
        source,
    })?;
    let target = CString::new(BPFFS).expect("no NUL");
    let fstype = CString::new("bpf").expect("no NUL");
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call;
    // data is null, which mount(2) accepts for bpffs.
    let rc = unsafe {
        libc::mount(fstype.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null())
    };
    if rc != 0 {
        return Err(XdpError::Bpffs { path: BPFFS.into(), source: io::Error::last_os_error() });
    }
    if in_private_mount_namespace() {
        log::warn!(
            "mounted bpffs on {BPFFS} in a private mount namespace (ip netns exec?): \
             pins last only as long as that namespace"
        );
    }
    Ok(())
}

fn is_bpffs_mounted(mounts: &str) -> bool {
    mounts.lines().any(|l| {
        let mut f = l.split_whitespace();
        let (_dev, dir, fstype) = (f.next(), f.next(), f.next());
        dir == Some(BPFFS) && fstype == Some("bpf")
    })
}

fn in_private_mount_namespace() -> bool {
    match (std::fs::read_link("/proc/self/ns/mnt"), std::fs::read_link("/proc/1/ns/mnt")) {
        (Ok(a), Ok(b)) => a != b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_dir_is_per_interface() {
        assert_eq!(pin_dir("eth0"), Path::new("/sys/fs/bpf/speeddata/eth0"));
    }

    #[test]
    fn finds_bpffs_in_mounts() {
        assert!(is_bpffs_mounted("bpf /sys/fs/bpf bpf rw,relatime 0 0\n"));
        assert!(!is_bpffs_mounted("none /sys/fs/bpf tmpfs rw 0 0\nsysfs /sys sysfs rw 0 0\n"));
    }
}
