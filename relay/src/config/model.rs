//! The validated configuration model. Built only by [`super::load`]; every
//! value here has been checked, and paths are absolute.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file or directory the config was loaded from (for messages and reload).
    pub source: PathBuf,
    pub channels: Vec<ChannelConfig>,
    /// The global channel settings (after defaults), for channels that come
    /// from elsewhere than relay.yaml (the control API).
    pub defaults: ChannelDefaults,
    pub storage: StorageConfig,
    pub network: NetworkConfig,
}

/// What a channel inherits when it does not say otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelDefaults {
    pub full_rate: SocketAddrV4,
    pub decimated: SocketAddrV4,
    pub decimation: Decimation,
    pub rotation: Rotation,
    pub retention: Retention,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelConfig {
    /// `[A-Za-z0-9_.-]{1,64}`: also the name of the channel's storage directory.
    pub name: String,
    /// UDP port the sources send to (1..=65535).
    pub port: u16,
    /// The multicast group the sources send to, if not to the relay's own
    /// address: the relay joins it on the input interface.
    #[serde(default)]
    pub input_group: Option<Ipv4Addr>,
    /// Resolved absolute path of the `.avsc` file.
    pub schema_path: PathBuf,
    /// The schema's JSON text as read from the file (written into the Avro header).
    pub schema_json: String,
    /// Full-rate multicast group and port (global default or per-channel override).
    pub full_rate: SocketAddrV4,
    /// Decimated multicast group and port (global default or per-channel override).
    pub decimated: SocketAddrV4,
    pub decimation: Decimation,
    pub rotation: Rotation,
    pub retention: Retention,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decimation {
    pub enabled: bool,
    /// What closes a window: a count of datums (`factor`) or a span of
    /// arrival time (`interval_ms`).
    pub window: Window,
    pub algorithm: Algorithm,
    /// The field copied from the last datum of a window rather than
    /// aggregated (default `time`; a dotted path reaches into nested records).
    /// When the schema has no such field, every numeric field is aggregated.
    pub time_field: String,
}

/// How a decimation window is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Window {
    /// After this many datums (`factor`; 1 = every datum).
    Count(u32),
    /// After this much arrival time (`interval_ms`), windows aligned to
    /// multiples of it since the Unix epoch.
    Time(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    Downsample,
    Average,
    MinMax,
    Rms,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rotation {
    /// Start a new file when the current one reaches this many bytes.
    Size(u64),
    /// Start a new file when the current one is this old.
    Time(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Retention {
    /// Delete files older than this.
    Ttl(Duration),
    /// Keep the channel's files under this many bytes.
    Quota(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Codec {
    Null,
    Deflate,
    Snappy,
    Zstandard,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageConfig {
    /// Root of the archive: one sub-directory per channel. Relative `avro_path`
    /// values resolve against the project root (the config directory's parent).
    pub avro_path: PathBuf,
    /// A block is written at least this often while datums arrive (default 100 ms).
    pub flush_interval: Duration,
    /// A block is written when it reaches this many bytes (default 64 KiB).
    pub flush_bytes: usize,
    pub codec: Codec,
    /// `retention: {mode: quota, scope: store}`: the oldest files of any
    /// channel are deleted until the whole store is under this many bytes.
    #[serde(default)]
    pub store_quota: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Address the channel sockets bind to (default 0.0.0.0: sources are remote).
    pub bind: Ipv4Addr,
    /// TTL of the multicast datagrams we send (default 1).
    pub ttl: u32,
    /// Interface the multicast datagrams leave through (default: the routing table's choice).
    pub egress_iface: Option<String>,
    /// Whether our multicast is looped back to local listeners (default true).
    pub multicast_loop: bool,
}
