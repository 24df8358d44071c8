//! The supervisor's side of the control API: registered channels merged over
//! the YAML baseline (the registry wins), and [`ControlHandle`], the
//! [`Control`] the HTTP server calls. Changes go to the supervise loop as
//! requests, so one task owns the fleet and the registry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::api::{ChannelView, Control, ControlError, NewChannel, SchemaDirs, Source};
use crate::channel::stats::ChannelStats;
use crate::config::{ChannelConfig, ChannelDefaults, Config};
use crate::registry::Registered;

pub enum Request {
    Add(NewChannel, oneshot::Sender<Result<ChannelView, ControlError>>),
    Remove(String, oneshot::Sender<Result<(), ControlError>>),
}

/// Where a channel came from, and when it was registered.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub source: Source,
    pub created_at: Option<String>,
}

/// A registered channel as a channel of this config: the global settings
/// (groups, retention) with its own decimation/rotation overrides on top.
pub fn registered_channel(r: &Registered, defaults: &ChannelDefaults) -> ChannelConfig {
    let req = &r.channel;
    let (decimation, rotation) = req.overrides.apply(&defaults.decimation, defaults.rotation);
    ChannelConfig {
        name: req.name.clone(),
        port: req.port,
        input_group: None,
        schema_path: req.schema_file.clone().unwrap_or_else(|| PathBuf::from("(inline)")),
        schema_json: req.schema_json.clone(),
        full_rate: defaults.full_rate,
        decimated: defaults.decimated,
        decimation,
        rotation,
        retention: defaults.retention,
    }
}

/// The YAML config with the registered channels merged in: a registered
/// channel replaces a YAML one of the same name or port.
pub fn merge(mut cfg: Config, registered: &[Registered]) -> (Config, HashMap<String, Origin>) {
    let mut origins: HashMap<String, Origin> =
        cfg.channels.iter().map(|c| (c.name.clone(), Origin { source: Source::Config, created_at: None })).collect();
    for r in registered {
        let ch = registered_channel(r, &cfg.defaults);
        cfg.channels.retain(|c| {
            let clash = c.name == ch.name || c.port == ch.port;
            if clash && c.name != ch.name {
                log::warn!("channel {} (relay.yaml) gives way to registered channel {} on port {}", c.name, ch.name, ch.port);
                origins.remove(&c.name);
            }
            !clash
        });
        origins.insert(ch.name.clone(), Origin { source: Source::Api, created_at: Some(r.created_at.clone()) });
        cfg.channels.push(ch);
    }
    (cfg, origins)
}

/// Why `req` cannot run next to `cfg`'s channels, beyond what the registry checks.
pub fn check_new(cfg: &Config, req: &NewChannel) -> Result<ChannelConfig, ControlError> {
    if cfg.channels.iter().any(|c| c.name == req.name) {
        return Err(ControlError::NameInUse(req.name.clone()));
    }
    if let Some(c) = cfg.channels.iter().find(|c| c.port == req.port) {
        return Err(ControlError::PortInUse { port: req.port, used_by: c.name.clone() });
    }
    let outputs = cfg
        .channels
        .iter()
        .flat_map(|c| [c.full_rate.port(), c.decimated.port()])
        .chain([cfg.defaults.full_rate.port(), cfg.defaults.decimated.port()]);
    if outputs.into_iter().any(|p| p == req.port) {
        return Err(ControlError::Invalid(format!(
            "port {} is a multicast output port of this relay: a channel there would receive its own output",
            req.port
        )));
    }
    let registered = Registered { channel: req.clone(), created_at: String::new() };
    let ch = registered_channel(&registered, &cfg.defaults);
    // What the channel process will check at start, checked here so the
    // client gets a 400 rather than a crash-looping channel.
    let schema = apache_avro::Schema::parse_str(&ch.schema_json).map_err(|e| ControlError::Invalid(format!("schema: {e}")))?;
    crate::avro::DatumValidator::new(&schema).map_err(|e| ControlError::Invalid(format!("schema: {e}")))?;
    crate::channel::decimate::Decimator::new(&ch.decimation, &schema)
        .map_err(|e| ControlError::Invalid(format!("decimation: {e}")))?;
    Ok(ch)
}

/// What `channels()` and `stats()` answer from, refreshed by the supervise loop.
#[derive(Default)]
pub struct Shared {
    pub views: Vec<ChannelView>,
}

#[derive(Clone)]
pub struct ControlHandle {
    pub tx: mpsc::Sender<Request>,
    pub shared: Arc<Mutex<Shared>>,
    pub dirs: SchemaDirs,
}

impl Control for ControlHandle {
    fn channels(&self) -> Vec<ChannelView> {
        self.shared.lock().expect("control snapshot lock").views.clone()
    }

    async fn add(&self, req: NewChannel) -> Result<ChannelView, ControlError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Request::Add(req, tx)).await.map_err(|_| stopping())?;
        rx.await.map_err(|_| stopping())?
    }

    async fn remove(&self, name: &str) -> Result<(), ControlError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Request::Remove(name.to_string(), tx)).await.map_err(|_| stopping())?;
        rx.await.map_err(|_| stopping())?
    }

    fn stats(&self, name: &str) -> Option<ChannelStats> {
        let dir = self.channels().into_iter().find(|v| v.name == name)?.storage_dir?;
        ChannelStats::read_dir(&dir).ok()
    }

    fn schema_dirs(&self) -> SchemaDirs {
        self.dirs.clone()
    }
}

fn stopping() -> ControlError {
    ControlError::Failed("the relay is shutting down".into())
}

/// SpeedData's schema lookup for API requests: the project root (the config
/// directory's parent), then the config directory; files only from the config
/// directory.
pub fn schema_dirs(source: &Path) -> SchemaDirs {
    let config_dir = if source.is_dir() { source.to_path_buf() } else { source.parent().unwrap_or(Path::new("/")).to_path_buf() };
    let mut bases = Vec::new();
    if let Some(root) = config_dir.parent() {
        bases.push(root.to_path_buf());
    }
    bases.push(config_dir.clone());
    let allowed = std::fs::canonicalize(&config_dir).map(|d| vec![d]).unwrap_or_default();
    SchemaDirs { bases, allowed }
}

/// Where the registry lives: beside the archives, in a directory no channel
/// can be named (channel names never start with `.speeddata`).
pub fn registry_path(cfg: &Config) -> PathBuf {
    cfg.storage.avro_path.join(".speeddata").join("registry.sqlite3")
}
