//! The boundary between the HTTP API and whatever runs the channels (the
//! supervisor; a fake in tests). The API validates every request before it
//! gets here: a [`NewChannel`] is well-formed, its schema parsed.

use std::future::Future;
use std::path::PathBuf;

use serde::Serialize;

use super::overrides::{effective_config, Overrides};
use crate::channel::stats::ChannelStats;
use crate::config::ChannelConfig;

/// What the API needs from the supervisor.
pub trait Control: Clone + Send + Sync + 'static {
    /// Every channel known: the YAML baseline merged with the registry, with
    /// whether its process is running.
    fn channels(&self) -> Vec<ChannelView>;

    /// Registers `req` durably and starts it. The API has already refused a
    /// name or port it saw in [`Control::channels`]; this still answers
    /// [`ControlError::NameInUse`]/[`ControlError::PortInUse`] for a race,
    /// [`ControlError::Invalid`] for what only the supervisor can check
    /// (e.g. the port is one of the multicast output ports).
    fn add(&self, req: NewChannel) -> impl Future<Output = Result<ChannelView, ControlError>> + Send;

    /// Stops the channel (its files closed valid) and forgets it.
    fn remove(&self, name: &str) -> impl Future<Output = Result<(), ControlError>> + Send;

    /// The channel's latest counters, if it has published any.
    fn stats(&self, name: &str) -> Option<ChannelStats>;

    /// Where a schema given as a path may be read from.
    fn schema_dirs(&self) -> SchemaDirs;
}

/// A channel as the API shows it: SpeedData's fields (`name`, `port`,
/// `schema_path`, `status`, `pid`, `created_at`, `config`) and ours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelView {
    pub name: String,
    pub port: u16,
    /// The schema path as registered (SpeedData's field; the resolved path
    /// for YAML channels), `null` for a schema sent inline.
    pub schema_path: Option<String>,
    /// The schema's JSON text, served by `GET /channels/{name}/schema`.
    #[serde(skip)]
    pub schema_json: String,
    pub status: ChannelStatus,
    /// The channel process, while one runs.
    pub pid: Option<u32>,
    /// When it was registered (RFC 3339, UTC); `null` for YAML channels.
    pub created_at: Option<String>,
    /// The effective settings (see [`effective_config`]).
    pub config: serde_json::Value,
    /// Where the channel was defined.
    pub source: Source,
    /// How often its process was restarted after dying.
    pub restarts: u64,
    /// The channel's archive directory, for the bytes-on-disk metric.
    #[serde(skip)]
    pub storage_dir: Option<PathBuf>,
}

impl ChannelView {
    /// A view of `ch`, not running, with its effective settings; the caller
    /// fills in status, pid, created_at, restarts and storage_dir.
    pub fn new(ch: &ChannelConfig, source: Source) -> ChannelView {
        ChannelView {
            name: ch.name.clone(),
            port: ch.port,
            schema_path: Some(ch.schema_path.display().to_string()),
            schema_json: ch.schema_json.clone(),
            status: ChannelStatus::Registered,
            pid: None,
            created_at: None,
            config: effective_config(ch),
            source,
            restarts: 0,
            storage_dir: None,
        }
    }
}

/// SpeedData's two states (and `?status=` filter values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelStatus {
    /// Known, but no process is running (starting, or waiting to restart).
    Registered,
    /// Its process is running.
    Active,
}

impl ChannelStatus {
    pub fn parse(s: &str) -> Option<ChannelStatus> {
        match s {
            "registered" => Some(ChannelStatus::Registered),
            "active" => Some(ChannelStatus::Active),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `relay.yaml`: changed by editing the file (and SIGHUP).
    Config,
    /// Registered through the API (kept in the registry).
    Api,
}

/// A validated registration request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChannel {
    /// `[A-Za-z0-9_.-]{1,64}`, not `.` or `..`.
    pub name: String,
    /// 1024..=65535.
    pub port: u16,
    /// The schema path as the client wrote it; `None` when sent inline.
    pub schema_path: Option<String>,
    /// Where that path resolved: canonical, inside [`SchemaDirs::allowed`].
    pub schema_file: Option<PathBuf>,
    /// The schema's JSON text (parsed, a record): what the channel validates
    /// datums against and writes into its Avro headers.
    pub schema_json: String,
    pub overrides: Overrides,
}

/// Where schema paths in requests resolve and may lead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaDirs {
    /// A relative path is tried against each, in order (SpeedData's: the
    /// project root, then the config directory).
    pub bases: Vec<PathBuf>,
    /// The file found (after following symbolic links) must be inside one of
    /// these; none = schema paths are refused (inline schemas still work).
    pub allowed: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// 404.
    #[error("channel \"{0}\" not found")]
    NotFound(String),
    /// 409.
    #[error("channel name \"{0}\" already registered")]
    NameInUse(String),
    /// 409.
    #[error("port {port} already in use by channel \"{used_by}\"")]
    PortInUse { port: u16, used_by: String },
    /// 400: the request cannot work (message says why).
    #[error("{0}")]
    Invalid(String),
    /// 409: the request is valid but conflicts with the state (e.g. removing
    /// a channel defined in `relay.yaml`).
    #[error("{0}")]
    Conflict(String),
    /// 500: the registry could not be written, the process not started…
    #[error("{0}")]
    Failed(String),
}
