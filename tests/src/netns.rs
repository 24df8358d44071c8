//! A network namespace owned by a test: created with `ip netns add`, deleted on
//! drop (also when the test panics), so no test leaves a host behind.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Netns {
    name: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Netns {
    /// A fresh namespace with `lo` up. The name is unique per process and call.
    pub fn new(role: &str) -> Netns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("sdx-{}-{}-{}", role, std::process::id(), n);
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS…`, panicking with the command's stderr on failure.
    pub fn ip(&self, args: &[&str]) -> Output {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `program ARGS` with only its *network* namespace switched to this
    /// one (like `nsenter --net`), keeping the host's mount namespace and so
    /// its /sys/fs/bpf. (`ip netns exec` remounts /sys privately, so pins made
    /// under it vanish when the command exits.)
    pub fn output_net_only(&self, program: &std::path::Path, args: &[&str]) -> Output {
        let mut cmd = self.command_net_only(program);
        cmd.args(args).env("RUST_BACKTRACE", "0").env("RUST_LIB_BACKTRACE", "0");
        cmd.output().unwrap_or_else(|e| panic!("running {program:?}: {e}"))
    }

    /// A command that enters only this network namespace (see [`Netns::output_net_only`]).
    pub fn command_net_only(&self, program: &std::path::Path) -> Command {
        self.command_net_only_as(program, None)
    }

    /// [`Netns::command_net_only`], then dropping to `uid` (as its own group).
    pub fn command_net_only_as(&self, program: &std::path::Path, uid: Option<u32>) -> Command {
        use std::os::unix::process::CommandExt;
        let netns = File::open(format!("/run/netns/{}", self.name)).expect("open netns");
        let mut cmd = Command::new(program);
        // SAFETY: setns is async-signal-safe. The closure owns the namespace
        // file, so its fd is open in the child until exec (then closed: CLOEXEC).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // After setns, which needs the privileges this gives up.
                if let Some(uid) = uid {
                    if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(uid) != 0 || libc::setuid(uid) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        cmd
    }

    /// Runs `f` on a new thread that has entered this namespace, so sockets it
    /// creates live there. Returns the thread's handle.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.name);
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        std::thread::spawn(move || {
            // SAFETY: setns on a valid namespace fd affects only this thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns({path}): {}", std::io::Error::last_os_error());
            drop(file);
            f()
        })
    }
}

impl Netns {
    /// Where the relay pins `iface`'s XDP attachment when it runs in this
    /// namespace (see `relay::xdp::pin_dir`: bpffs is shared by all
    /// namespaces, so the name carries the namespace's inode).
    pub fn pin_dir(&self, iface: &str) -> std::path::PathBuf {
        std::path::Path::new(relay::xdp::PIN_ROOT).join(format!("{iface}@ns{}", self.inode()))
    }

    fn inode(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/run/netns/{}", self.name)).map(|m| m.ino()).unwrap_or(0)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Pins of this namespace's interfaces outlive it in the shared bpffs
        // (a test that failed before `detach`), and so do the owner records
        // of a supervisor killed in it: remove them.
        let suffix = format!("@ns{}", self.inode());
        remove_entries_ending(std::path::Path::new(relay::xdp::PIN_ROOT), &suffix);
        remove_entries_ending(std::path::Path::new(relay::supervisor::OWNER_DIR), &format!("{suffix}.owner"));
        // Kill anything still running in it, then delete it (veths go with it).
        let _ = Command::new("ip").args(["netns", "pids", &self.name]).output().map(|o| {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        });
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Removes the files and directories in `dir` whose names end with `suffix`.
fn remove_entries_ending(dir: &std::path::Path, suffix: &str) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().ends_with(suffix) {
            let path = e.path();
            let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        }
    }
}

/// Runs a command, panicking with its output if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Connects `a` and `b` with a veth pair and gives each end an address (CIDR).
pub fn link(a: &Netns, a_if: &str, a_addr: &str, b: &Netns, b_if: &str, b_addr: &str) {
    a.ip(&["link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name()]);
    a.ip(&["addr", "add", a_addr, "dev", a_if]);
    b.ip(&["addr", "add", b_addr, "dev", b_if]);
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

/// A namespace for a relay on its own loopback, with a multicast route so
/// channels can publish (to nobody).
pub fn loopback_host(role: &str) -> Netns {
    let ns = Netns::new(role);
    ns.ip(&["route", "add", "224.0.0.0/4", "dev", "lo"]);
    ns
}
