//! Which supervisor owns an interface's XDP attachment, in a small file under
//! /run: so that a supervisor started after one was killed (SIGKILL leaves the
//! program attached and pinned) can tell a leftover from a live neighbour or
//! from an attachment made by `speeddata-xdp attach`. bpffs holds only BPF
//! objects, hence a separate directory. /run is emptied at boot, as pins are.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// Where the owner records are.
pub const DIR: &str = "/run/speeddata-xdp";

/// The supervisor recorded for an interface.
#[derive(Debug, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// It attached the program itself (and detaches it on a clean exit).
    pub owned: bool,
}

fn path(iface: &str) -> PathBuf {
    // The pin directory's name carries the network namespace (`IF@nsINODE`).
    let pin = crate::xdp::pin_dir(iface);
    let name = pin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| iface.to_owned());
    PathBuf::from(DIR).join(format!("{name}.owner"))
}

/// Records this process as `iface`'s supervisor.
pub fn write(iface: &str, owned: bool) -> Result<()> {
    let p = path(iface);
    std::fs::create_dir_all(DIR).with_context(|| format!("creating {DIR}"))?;
    std::fs::write(&p, format(&Owner { pid: std::process::id(), owned })).with_context(|| format!("writing {}", p.display()))
}

/// The recorded supervisor, if any.
pub fn read(iface: &str) -> Result<Option<Owner>> {
    let p = path(iface);
    match std::fs::read_to_string(&p) {
        Ok(s) => Ok(parse(&s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

pub fn remove(iface: &str) {
    let _ = std::fs::remove_file(path(iface));
}

/// Whether `pid` is a live process running this same executable (a recycled
/// pid running something else does not count).
pub fn is_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    let exe = |p: &str| std::fs::read_link(format!("/proc/{p}/exe")).ok();
    matches!((exe(&pid.to_string()), exe("self")), (Some(a), Some(b)) if a == b)
}

fn format(o: &Owner) -> String {
    format!("pid {}\nowned {}\n", o.pid, o.owned)
}

fn parse(s: &str) -> Option<Owner> {
    let mut pid = None;
    let mut owned = None;
    for line in s.lines() {
        match line.split_once(' ') {
            Some(("pid", v)) => pid = v.trim().parse().ok(),
            Some(("owned", v)) => owned = v.trim().parse().ok(),
            _ => {}
        }
    }
    Some(Owner { pid: pid?, owned: owned? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let o = Owner { pid: 4321, owned: true };
        assert_eq!(parse(&format(&o)), Some(o));
        assert_eq!(parse("pid 7\n"), None);
        assert_eq!(parse("garbage"), None);
    }

    #[test]
    fn our_own_pid_is_not_another_live_supervisor() {
        assert!(!is_alive(std::process::id()));
        // pid 1 runs something else than this test binary.
        assert!(!is_alive(1));
    }
}
