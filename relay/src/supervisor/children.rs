//! The channel children: spawn, forward their output line by line with the
//! channel name, restart with backoff, stop them on SIGTERM/SIGINT.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Child;
use tokio::sync::watch;

use std::collections::BTreeMap;

use super::backoff::Backoff;
use super::iface_watch::{seen, IfaceWatch};
use super::spawn::{ChildSpec, Identity};
use crate::config::{ChannelConfig, Config};

/// How long a child may take to flush and close its files after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The running channels, by name.
pub struct Fleet {
    exe: std::path::PathBuf,
    /// The address of `--iface`, where multicast input groups are joined.
    input_iface: Option<std::net::Ipv4Addr>,
    identity: Option<Identity>,
    xdp: Option<super::xdp_input::XdpInput>,
    /// `--iface`, looked at every tick: XDP and the input groups act on what changed.
    input_watch: Option<(String, IfaceWatch)>,
    /// Joins input groups again when `--iface` is re-created.
    joins: Option<super::group_joins::GroupJoins>,
    running: BTreeMap<String, Running>,
}

struct Running {
    cfg: ChannelConfig,
    /// The channel's input socket (also held by its child's spec).
    input: Arc<OwnedFd>,
    state: Arc<ChildState>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// What the supervisor knows of a channel's process, for the API.
#[derive(Default)]
pub struct ChildState {
    /// The running child's pid, 0 while none runs.
    pub pid: AtomicU32,
    pub restarts: AtomicU64,
}

impl Fleet {
    pub fn new(identity: Option<Identity>, xdp: Option<super::xdp_input::XdpInput>, iface: Option<&str>) -> Result<Fleet> {
        let exe = std::env::current_exe().context("locating our own executable")?;
        let input_iface = iface.map(|i| crate::iface::ipv4_of(i, "--iface")).transpose()?;
        let input_watch = iface.map(|i| (i.to_owned(), IfaceWatch::new(seen(i))));
        let joins = iface.map(super::group_joins::GroupJoins::new);
        Ok(Fleet { exe, input_iface, identity, xdp, input_watch, joins, running: BTreeMap::new() })
    }

    /// The process state of a running channel.
    pub fn state(&self, name: &str) -> Option<&ChildState> {
        self.running.get(name).map(|r| &*r.state)
    }

    /// Binds the channel's input socket (kept here across restarts), prepares
    /// its directory and starts its child.
    pub fn start(&mut self, cfg: &Config, ch: &ChannelConfig) -> Result<()> {
        let bind = cfg.network.bind;
        let sock = crate::channel::socket_io::input_socket(bind, ch.port, crate::channel::socket_io::INPUT_RCVBUF)
            .with_context(|| format!("channel {}: binding UDP {bind}:{}", ch.name, ch.port))?;
        crate::channel::socket_io::join_input_group(&sock, ch.input_group, self.input_iface)
            .with_context(|| format!("channel {}: joining input group {:?}", ch.name, ch.input_group))?;
        let dir = crate::channel::channel_dir(&cfg.storage, &ch.name);
        match self.identity {
            Some(id) => id.own_dir(&dir)?,
            None => std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?,
        }
        let ring = match &mut self.xdp {
            Some(x) => Some(Arc::new(x.add(cfg, ch)?)),
            None => None,
        };
        let spec_json = serde_json::to_string(&crate::channel::ChannelSpec::new(cfg, ch)).context("encoding the channel spec")?;
        let input = Arc::new(OwnedFd::from(sock));
        let spec = ChildSpec {
            exe: self.exe.clone(),
            name: ch.name.clone(),
            spec_json: Arc::new(spec_json),
            input: input.clone(),
            ring,
            identity: self.identity,
        };
        let (stop, stop_rx) = watch::channel(false);
        let state = Arc::new(ChildState::default());
        let task = tokio::spawn(keep_running(spec, state.clone(), stop_rx));
        self.running.insert(ch.name.clone(), Running { cfg: ch.clone(), input, state, stop, task });
        Ok(())
    }

    pub async fn stop(&mut self, name: &str) {
        if let Some(x) = &mut self.xdp {
            // First, so the kernel stops filling a ring nobody will drain.
            x.remove(name);
        }
        if let Some(r) = self.running.remove(name) {
            let _ = r.stop.send(true);
            let _ = r.task.await;
        }
    }

    pub fn shutdown_xdp(&mut self, keep_attached: bool) {
        if let Some(x) = self.xdp.take() {
            x.shutdown(keep_attached);
        }
    }

    /// Follows the interfaces: the XDP input and egress (see
    /// `XdpInput::tick`), and `--iface` for the input groups (`GroupJoins`).
    pub fn watch_interfaces(&mut self) {
        let event = self.input_watch.as_mut().and_then(|(name, w)| w.observe(seen(name)));
        if let Some(x) = &mut self.xdp {
            x.tick(event);
        }
        if let Some(j) = &mut self.joins {
            let sockets = self.running.iter().filter_map(|(n, r)| Some((n.as_str(), r.cfg.input_group?, &r.input)));
            if let Some(addr) = j.tick(event, sockets) {
                self.input_iface = Some(addr);
            }
        }
    }

    /// Writes each channel's kernel counters to `xdp.json` in its directory
    /// (for `status`; the channel process cannot read the kernel's maps).
    /// Goes by the configuration, not the running processes, so the last
    /// write after [`Fleet::stop_all`] still has every channel's final counts.
    pub fn publish_xdp_counters(&self, cfg: &Config) {
        let Some(x) = &self.xdp else { return };
        for name in cfg.channels.iter().map(|c| &c.name) {
            let Some(c) = x.counters(name) else { continue };
            let k = crate::channel::stats::KernelCounters {
                iface: x.iface.clone(),
                attach: x.how.clone(),
                packets: c.packets,
                bytes: c.bytes,
                forwarded: c.forwarded,
                ring_drops: c.ring_drops,
            };
            let dir = crate::channel::channel_dir(&cfg.storage, name);
            if let Err(e) = k.publish(&dir) {
                log::warn!("writing the kernel counters in {}: {e}", dir.display());
            }
        }
    }

    pub async fn stop_all(&mut self) {
        for r in self.running.values() {
            let _ = r.stop.send(true);
        }
        for (_, r) in std::mem::take(&mut self.running) {
            let _ = r.task.await;
        }
    }

    /// Applies a new, valid configuration: removed channels stop (their files
    /// closed valid), new ones start, changed ones restart, and unchanged ones
    /// are not touched.
    pub async fn reload(&mut self, old: &Config, new: &Config) {
        let plan = plan_reload(old, new);
        log::info!(
            "SIGHUP: reloading {}: {} added, {} removed, {} changed, {} unchanged",
            new.source.display(),
            plan.added.len(),
            plan.removed.len(),
            plan.changed.len(),
            new.channels.len() - plan.added.len() - plan.changed.len()
        );
        for name in plan.removed.iter().chain(&plan.changed) {
            self.stop(name).await;
        }
        for ch in new.channels.iter().filter(|c| plan.added.contains(&c.name) || plan.changed.contains(&c.name)) {
            if let Err(e) = self.start(new, ch) {
                log::error!("SIGHUP: {e:#}");
            }
        }
        debug_assert!(self.running.values().all(|r| new.channels.contains(&r.cfg)));
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct ReloadPlan {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

/// What a reload must do. A change to storage or network settings changes
/// every channel (each child uses them).
pub fn plan_reload(old: &Config, new: &Config) -> ReloadPlan {
    let shared_changed = old.storage != new.storage || old.network != new.network;
    let mut plan = ReloadPlan::default();
    for ch in &new.channels {
        match old.channels.iter().find(|o| o.name == ch.name) {
            None => plan.added.push(ch.name.clone()),
            Some(o) if shared_changed || o != ch => plan.changed.push(ch.name.clone()),
            Some(_) => {}
        }
    }
    for o in &old.channels {
        if !new.channels.iter().any(|c| c.name == o.name) {
            plan.removed.push(o.name.clone());
        }
    }
    plan
}

async fn keep_running(spec: ChildSpec, state: Arc<ChildState>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::default();
    let mut first = true;
    loop {
        if !std::mem::take(&mut first) {
            state.restarts.fetch_add(1, Ordering::Relaxed);
        }
        let started = Instant::now();
        let mut child = match spec.spawn() {
            Ok(c) => c,
            Err(e) => {
                log::error!("channel {}: cannot start: {e}", spec.name);
                let delay = backoff.after_exit(Duration::ZERO);
                if wait_or_stop(delay, &mut stop).await {
                    return;
                }
                continue;
            }
        };
        let pid = child.id().unwrap_or(0);
        state.pid.store(pid, Ordering::Relaxed);
        log::info!("channel {}: started (pid {pid})", spec.name);
        forward(child.stdout.take(), spec.name.clone());
        forward(child.stderr.take(), spec.name.clone());
        let status = tokio::select! {
            s = child.wait() => s,
            _ = stop.changed() => {
                stop_child(&mut child, &spec.name).await;
                state.pid.store(0, Ordering::Relaxed);
                return;
            }
        };
        state.pid.store(0, Ordering::Relaxed);
        let ran = started.elapsed();
        let delay = backoff.after_exit(ran);
        match status {
            Ok(s) => log::error!(
                "channel {}: exited ({s}) after {:.1} s; restarting in {} ms",
                spec.name,
                ran.as_secs_f64(),
                delay.as_millis()
            ),
            Err(e) => log::error!("channel {}: wait failed: {e}", spec.name),
        }
        if wait_or_stop(delay, &mut stop).await {
            return;
        }
    }
}

/// Sleeps for `delay`; true if asked to stop meanwhile.
async fn wait_or_stop(delay: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

async fn stop_child(child: &mut Child, name: &str) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(Ok(s)) if s.success() => log::info!("channel {name}: stopped"),
        Ok(Ok(s)) => log::warn!("channel {name}: stopped ({s})"),
        Ok(Err(e)) => log::warn!("channel {name}: {e}"),
        Err(_) => {
            log::error!("channel {name}: did not stop within {STOP_GRACE:?}; killing it");
            let _ = child.kill().await;
        }
    }
}

/// Copies a child's output to ours, line by line, prefixed with its channel.
/// Read continuously so a chatty child never blocks on a full pipe.
fn forward(stream: Option<impl AsyncRead + Unpin + Send + 'static>, name: String) {
    let Some(stream) = stream else { return };
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[{name}] {line}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path, channels: &[(&str, u16)], ttl: u32) -> Config {
        let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/agents/example.avsc");
        let mut y = String::from("channels:\n");
        for (name, port) in channels {
            y += &format!("  - name: {name}\n    port: {port}\n    schema: {schema}\n");
        }
        y += &format!("network:\n  ttl: {ttl}\nstorage:\n  avro_path: {}\n", dir.join("data").display());
        let f = dir.join("relay.yaml");
        std::fs::write(&f, y).unwrap();
        crate::config::load(&f).unwrap()
    }

    #[test]
    fn reload_plan_touches_only_what_changed() {
        let d = tempfile::tempdir().unwrap();
        let old = config(d.path(), &[("a", 26000), ("b", 26001), ("c", 26002)], 1);
        let new = config(d.path(), &[("a", 26000), ("b", 26005), ("d", 26003)], 1);
        let plan = plan_reload(&old, &new);
        assert_eq!(plan, ReloadPlan { added: vec!["d".into()], removed: vec!["c".into()], changed: vec!["b".into()] });
        assert_eq!(plan_reload(&new, &new), ReloadPlan::default());
    }

    #[test]
    fn a_shared_setting_change_restarts_every_channel() {
        let d = tempfile::tempdir().unwrap();
        let old = config(d.path(), &[("a", 26000), ("b", 26001)], 1);
        let new = config(d.path(), &[("a", 26000), ("b", 26001)], 4);
        assert_eq!(plan_reload(&old, &new).changed, vec!["a".to_string(), "b".into()]);
    }
}
