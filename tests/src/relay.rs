//! Finding and driving the `speeddata-xdp` binary under test.

use std::path::{Path, PathBuf};

/// The binary under test: `$SPEEDDATA_BIN` (set by `cargo xtask test`), else
/// the workspace's release then debug build.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SPEEDDATA_BIN") {
        return PathBuf::from(p);
    }
    let root = workspace_root();
    for profile in ["release", "debug"] {
        let p = root.join("target").join(profile).join("speeddata-xdp");
        if p.exists() {
            return p;
        }
    }
    panic!("speeddata-xdp is not built: run `cargo xtask test` (or set SPEEDDATA_BIN)")
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// SpeedData's own configuration directory, as its users have it.
pub fn speeddata_fixture() -> PathBuf {
    workspace_root().join("../shared/fixtures/speeddata")
}

/// The example channel schema shipped in `config/`.
pub fn example_schema_path() -> PathBuf {
    workspace_root().join("config/agents/example.avsc")
}

/// A relay process running inside a namespace; SIGKILLed on drop if still alive.
pub struct RelayProcess {
    child: std::process::Child,
    pub log: PathBuf,
}

impl RelayProcess {
    /// Starts `speeddata-xdp ARGS…` in `ns` (under `ip netns exec`, so with a
    /// private /sys and bpffs: XDP pins vanish with the process), its output
    /// going to `log`.
    pub fn start(ns: &crate::netns::Netns, args: &[&str], log: PathBuf) -> RelayProcess {
        Self::spawn(ns.command(binary().to_str().unwrap()), args, log)
    }

    /// Like [`RelayProcess::start`], with only the network namespace switched:
    /// the host's bpffs is shared, so `attach` pins are visible to it.
    pub fn start_net_only(ns: &crate::netns::Netns, args: &[&str], log: PathBuf) -> RelayProcess {
        Self::spawn(ns.command_net_only(&binary()), args, log)
    }

    /// [`RelayProcess::start_net_only`] as an unprivileged user.
    pub fn start_unprivileged(ns: &crate::netns::Netns, args: &[&str], log: PathBuf, uid: u32) -> RelayProcess {
        Self::spawn(ns.command_net_only_as(&binary(), Some(uid)), args, log)
    }

    fn spawn(mut cmd: std::process::Command, args: &[&str], log: PathBuf) -> RelayProcess {
        let out = std::fs::File::create(&log).expect("create relay log");
        let child = cmd
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn speeddata-xdp");
        RelayProcess { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits (bounded) for a clean exit; panics with the log otherwise.
    pub fn stop(mut self) -> String {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(std::time::Instant::now() < deadline, "relay did not stop: {}", self.log_text());
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let log = self.log_text();
        assert!(status.success(), "relay exited with {status}:\n{log}");
        log
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- relay log ({}) ---\n{}", self.log.display(), self.log_text());
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The state letter of process `pid` (`R`, `S`, `T` stopped, `Z` zombie, …),
/// the field after the parenthesised command name in `/proc/PID/stat`; `None`
/// once it is gone.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Waits (bounded) until `cond` holds, panicking with `what` otherwise.
pub fn wait_for(what: &str, timeout: std::time::Duration, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A channel's published counters (`stats.json`), as JSON.
pub fn channel_stats(avro_root: &Path, channel: &str) -> Option<serde_json::Value> {
    let text = std::fs::read(avro_root.join(channel).join("stats.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Every record in a channel directory's Avro files, read by Python's
/// fastavro and avro (which must agree), as JSON values.
pub fn read_avro_independently(dir: &Path) -> Vec<serde_json::Value> {
    let script = workspace_root().join("tests/py/read_avro.py");
    let out = std::process::Command::new("python3").arg(script).arg(dir).output().expect("run python3");
    assert!(
        out.status.success(),
        "independent Avro reader failed on {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("reader printed JSON"))
        .collect()
}

/// A temporary directory the relay's unprivileged channel processes can
/// reach (tempfile makes them 0700).
pub fn tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod tempdir");
    d
}
