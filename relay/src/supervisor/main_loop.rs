//! The supervisor's loop: one task owns the fleet, the config and the
//! registry, and reacts to signals (SIGHUP reload, SIGTERM/SIGINT stop),
//! control API requests, and its counter tick.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use super::children::Fleet;
use super::control::{self, ControlHandle, Origin, Request, Shared};
use super::spawn::Identity;
use crate::api::{ChannelStatus, ChannelView, ControlError, Source};
use crate::config::Config;
use crate::registry::Registry;

/// How often the kernel's per-channel counters and the API's view are refreshed.
const TICK: Duration = Duration::from_secs(1);

pub struct Options {
    pub identity: Option<Identity>,
    pub input: super::Input,
    pub keep_attached: bool,
    /// Where the control API listens; `None` = no API.
    pub api: Option<SocketAddr>,
    /// The durable registry of API channels; default beside the archives.
    pub registry: Option<PathBuf>,
    /// `--iface`: where multicast input groups are joined.
    pub iface: Option<String>,
}

struct State {
    fleet: Fleet,
    /// The YAML config with the registered channels merged in.
    current: Config,
    origins: HashMap<String, Origin>,
    registry: Registry,
    shared: Arc<Mutex<Shared>>,
}

pub async fn supervise(yaml: Config, opts: Options) -> Result<()> {
    let registry_path = opts.registry.clone().unwrap_or_else(|| control::registry_path(&yaml));
    let registry = Registry::open(&registry_path).with_context(|| format!("opening the channel registry {}", registry_path.display()))?;
    let registered = registry.list().context("reading the channel registry")?;
    let (current, origins) = control::merge(yaml, &registered);
    let xdp = match opts.input {
        super::Input::Xdp(x) => Some(x),
        super::Input::Socket => None,
    };
    let mut st = State { fleet: Fleet::new(opts.identity, xdp, opts.iface.as_deref())?, current, origins, registry, shared: Default::default() };
    for ch in st.current.channels.clone() {
        // At start, a channel that cannot be set up stops everything: nothing
        // starts half-configured.
        if let Err(e) = st.fleet.start(&st.current, &ch) {
            st.fleet.stop_all().await;
            st.fleet.shutdown_xdp(opts.keep_attached);
            return Err(e);
        }
    }
    st.refresh();

    let (tx, mut requests) = mpsc::channel(16);
    let _api = match opts.api {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("control API: binding {addr}"))?;
            let handle = ControlHandle { tx, shared: st.shared.clone(), dirs: control::schema_dirs(&st.current.source) };
            log::info!("control API on http://{}", listener.local_addr()?);
            Some(AbortOnDrop(tokio::spawn(async move {
                if let Err(e) = crate::api::serve(listener, handle).await {
                    log::error!("control API stopped: {e:#}");
                }
            })))
        }
        None => None,
    };

    let mut tick = tokio::time::interval(TICK);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => { log::info!("SIGTERM: stopping channels"); break }
            _ = int.recv() => { log::info!("SIGINT: stopping channels"); break }
            _ = hup.recv() => st.reload().await,
            Some(req) = requests.recv() => st.handle(req).await,
            _ = tick.tick() => {
                st.fleet.watch_interfaces();
                st.fleet.publish_xdp_counters(&st.current);
                st.store_retention();
                st.refresh();
            }
        }
    }
    st.fleet.stop_all().await;
    st.fleet.publish_xdp_counters(&st.current);
    st.fleet.shutdown_xdp(opts.keep_attached);
    log::info!("all channels stopped");
    Ok(())
}

impl State {
    async fn reload(&mut self) {
        let merged = crate::config::load(&self.current.source)
            .map_err(|e| e.to_string())
            .and_then(|yaml| self.registry.list().map(|r| control::merge(yaml, &r)).map_err(|e| e.to_string()));
        match merged {
            Ok((new, origins)) => {
                self.fleet.reload(&self.current, &new).await;
                self.current = new;
                self.origins = origins;
                self.refresh();
            }
            Err(e) => log::error!("SIGHUP: the new configuration is invalid; keeping the running one:\n{e}"),
        }
    }

    async fn handle(&mut self, req: Request) {
        match req {
            Request::Add(new, reply) => {
                let _ = reply.send(self.add(new));
            }
            Request::Remove(name, reply) => {
                let r = self.remove(&name).await;
                let _ = reply.send(r);
            }
        }
        self.refresh();
    }

    fn add(&mut self, new: crate::api::NewChannel) -> Result<ChannelView, ControlError> {
        let ch = control::check_new(&self.current, &new)?;
        let registered = self.registry.insert(&new)?;
        if let Err(e) = self.fleet.start(&self.current, &ch) {
            if let Err(re) = self.registry.delete(&new.name) {
                log::error!("channel {}: could not start ({e:#}), and could not be unregistered: {re}", new.name);
            }
            return Err(ControlError::Failed(format!("Failed to start relay process: {e:#}")));
        }
        log::info!("control API: registered and started channel {} on port {}", ch.name, ch.port);
        self.current.channels.push(ch);
        self.origins.insert(new.name.clone(), Origin { source: Source::Api, created_at: Some(registered.created_at) });
        self.refresh();
        self.view(&new.name).ok_or_else(|| ControlError::Failed("the channel vanished".into()))
    }

    async fn remove(&mut self, name: &str) -> Result<(), ControlError> {
        match self.origins.get(name).map(|o| o.source) {
            None => Err(ControlError::NotFound(name.to_string())),
            Some(Source::Config) => Err(ControlError::Conflict(format!(
                "channel {name} is defined in {}: remove it there and send SIGHUP",
                self.current.source.display()
            ))),
            Some(Source::Api) => {
                self.registry.delete(name).map_err(ControlError::from)?;
                self.fleet.stop(name).await;
                self.current.channels.retain(|c| c.name != name);
                self.origins.remove(name);
                log::info!("control API: stopped and unregistered channel {name}");
                Ok(())
            }
        }
    }

    /// The store-wide quota (`retention.scope: store`), checked every tick:
    /// a scan of the channel directories, cheap next to a second of data.
    fn store_retention(&self) {
        let Some(quota) = self.current.storage.store_quota else { return };
        let root = &self.current.storage.avro_path;
        let names: Vec<String> = self.current.channels.iter().map(|c| c.name.clone()).collect();
        let current: Vec<PathBuf> = names
            .iter()
            .filter_map(|n| crate::channel::stats::ChannelStats::read(&root.join(n).join("stats.json")).ok()?.current_file)
            .collect();
        if let Err(e) = crate::retention::enforce_store(root, &names, &current, quota) {
            log::warn!("retention (store quota) in {}: {e}", root.display());
        }
    }

    fn view(&self, name: &str) -> Option<ChannelView> {
        self.shared.lock().ok()?.views.iter().find(|v| v.name == name).cloned()
    }

    /// Rebuilds the API's view of every channel.
    fn refresh(&self) {
        let views = self
            .current
            .channels
            .iter()
            .map(|ch| {
                let origin = self.origins.get(&ch.name);
                let mut v = ChannelView::new(ch, origin.map_or(Source::Config, |o| o.source));
                v.created_at = origin.and_then(|o| o.created_at.clone());
                v.storage_dir = Some(crate::channel::channel_dir(&self.current.storage, &ch.name));
                if let Some(state) = self.fleet.state(&ch.name) {
                    let pid = state.pid.load(Ordering::Relaxed);
                    v.pid = (pid != 0).then_some(pid);
                    v.restarts = state.restarts.load(Ordering::Relaxed);
                    v.status = if pid != 0 { ChannelStatus::Active } else { ChannelStatus::Registered };
                }
                v
            })
            .collect();
        if let Ok(mut s) = self.shared.lock() {
            s.views = views;
        }
    }
}

/// Stops the API server when the supervisor returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
