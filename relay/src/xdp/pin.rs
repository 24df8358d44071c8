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

/// Name of the pinned program (for attaching it again: [`super::relink`]).
pub(super) const PROG: &str = "prog";

/// Pin name of a one-entry array holding [`super::build_id`] of the
/// object that was attached: maps made by another build may have another
/// layout (a ring, a counter set), so a supervisor reuses only its own.
pub(super) const BUILD: &str = "build";

/// `/sys/fs/bpf/speeddata/<IF>@ns<INODE>`: the link and maps of `iface`'s
/// attachment. bpffs is shared by every network namespace, so the name
/// carries the namespace's inode: two namespaces each with an `eth0` must not
/// share (or detach) one pin. (Which namespace is the host's cannot be told
/// from inside a container, so even that one gets the suffix.)
pub fn pin_dir(iface: &str) -> PathBuf {
    let own = std::fs::read_link("/proc/self/ns/net").ok();
    Path::new(PIN_ROOT).join(pin_name(iface, own.as_deref().and_then(Path::to_str)))
}

fn pin_name(iface: &str, netns_link: Option<&str>) -> String {
    match netns_link.and_then(netns_inode) {
        Some(ino) => format!("{iface}@ns{ino}"),
        None => iface.to_owned(),
    }
}

/// `net:[4026531840]` → `4026531840`.
fn netns_inode(link: &str) -> Option<&str> {
    link.strip_prefix("net:[")?.strip_suffix(']')
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
    fn pin_name_is_per_interface_and_namespace() {
        assert_eq!(pin_name("eth0", Some("net:[4026532297]")), "eth0@ns4026532297");
        assert_eq!(pin_name("eth0", None), "eth0");
        assert_eq!(pin_name("eth0", Some("garbled")), "eth0");
    }

    #[test]
    fn finds_bpffs_in_mounts() {
        assert!(is_bpffs_mounted("bpf /sys/fs/bpf bpf rw,relatime 0 0\n"));
        assert!(!is_bpffs_mounted("none /sys/fs/bpf tmpfs rw 0 0\nsysfs /sys sysfs rw 0 0\n"));
    }
}
