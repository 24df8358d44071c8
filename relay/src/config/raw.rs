//! The sections as written: every field optional, each value type- and
//! range-checked on its own. Defaults, overrides and checks across fields
//! come later ([`super::build`]).

use std::net::Ipv4Addr;

use serde_norway::Value;

use super::model::{Algorithm, Codec};
use super::walk::{index, join, Loc, Walker};

/// Top-level sections, in either file of a directory or in a single file.
pub(super) const SECTIONS: &[&str] = &[
    "channels",
    "decimation",
    "rotation",
    "retention",
    "multicast",
    "storage",
    "network",
];

const CHANNEL_KEYS: &[&str] = &[
    "name",
    "port",
    "schema",
    "input_group",
    "full_rate",
    "decimated",
    "decimation",
    "rotation",
    "retention",
];
const DECIMATION_KEYS: &[&str] = &[
    "enabled",
    "factor",
    "interval_ms",
    "algorithm",
    "time_field",
];
const ROTATION_KEYS: &[&str] = &["mode", "threshold"];
const RETENTION_KEYS: &[&str] = &["mode", "value", "scope"];
const MULTICAST_KEYS: &[&str] = &["full_rate", "decimated"];
const GROUP_KEYS: &[&str] = &["address", "port"];
const STORAGE_KEYS: &[&str] = &["avro_path", "flush_interval_ms", "flush_bytes", "codec"];
const NETWORK_KEYS: &[&str] = &["bind", "ttl", "egress_iface", "multicast_loop"];

const ALGORITHMS: &[(&str, Algorithm)] = &[
    ("downsample", Algorithm::Downsample),
    ("average", Algorithm::Average),
    ("minmax", Algorithm::MinMax),
    ("rms", Algorithm::Rms),
];
const CODECS: &[(&str, Codec)] = &[
    ("null", Codec::Null),
    ("deflate", Codec::Deflate),
    ("snappy", Codec::Snappy),
    ("zstandard", Codec::Zstandard),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RotationMode {
    Time,
    Size,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RetentionMode {
    Ttl,
    Quota,
}

/// Longest interface name Linux accepts (`IFNAMSIZ` minus the NUL).
const IFNAME_MAX: usize = 15;
/// Avro readers in other languages keep a block's size in a signed 32-bit int.
const FLUSH_BYTES_MAX: u64 = i32::MAX as u64;
/// Longest decimation window by time: a day (a stripchart wants milliseconds).
const INTERVAL_MS_MAX: u64 = 86_400_000;

#[derive(Debug, Default)]
pub(super) struct RawConfig {
    pub channels: Option<Vec<RawChannel>>,
    pub decimation: Option<RawDecimation>,
    pub rotation: Option<RawRotation>,
    pub retention: Option<RawRetention>,
    pub full_rate: Option<RawGroup>,
    pub decimated: Option<RawGroup>,
    pub storage: Option<RawStorage>,
    pub network: Option<RawNetwork>,
}

/// `factor` and `interval_ms` are never both set: giving both is reported
/// and only `interval_ms` is kept.
#[derive(Debug)]
pub(super) struct RawDecimation {
    pub loc: Loc,
    pub enabled: Option<bool>,
    pub factor: Option<u32>,
    pub interval_ms: Option<u64>,
    pub algorithm: Option<Algorithm>,
    pub time_field: Option<String>,
}

/// `clean` is false when reading the section reported a problem, so the
/// mode/threshold consistency check stays quiet instead of repeating it.
#[derive(Debug)]
pub(super) struct RawRotation {
    pub loc: Loc,
    pub clean: bool,
    pub mode: Option<RotationMode>,
    pub threshold: Option<u64>,
}

#[derive(Debug)]
pub(super) struct RawRetention {
    pub loc: Loc,
    pub clean: bool,
    pub mode: Option<RetentionMode>,
    pub value: Option<u64>,
    /// `scope: store` (global section only): one quota over every channel.
    pub store_scope: Option<bool>,
}

#[derive(Debug)]
pub(super) struct RawGroup {
    pub loc: Loc,
    /// False when reading the group reported a problem.
    pub clean: bool,
    pub address: Option<Ipv4Addr>,
    pub port: Option<u16>,
}

#[derive(Debug)]
pub(super) struct RawChannel {
    pub loc: Loc,
    /// Name, port and schema are required: `None` means already reported.
    pub name: Option<String>,
    pub port: Option<u16>,
    pub schema: Option<String>,
    /// Sources send to this multicast group (and the channel's port).
    pub input_group: Option<Ipv4Addr>,
    pub full_rate: Option<RawGroup>,
    pub decimated: Option<RawGroup>,
    pub decimation: Option<RawDecimation>,
    pub rotation: Option<RawRotation>,
    pub retention: Option<RawRetention>,
}

#[derive(Debug)]
pub(super) struct RawStorage {
    pub avro_path: Option<String>,
    pub flush_interval_ms: Option<u64>,
    pub flush_bytes: Option<usize>,
    pub codec: Option<Codec>,
}

#[derive(Debug)]
pub(super) struct RawNetwork {
    pub bind: Option<Ipv4Addr>,
    pub ttl: Option<u32>,
    pub egress_iface: Option<String>,
    pub multicast_loop: Option<bool>,
}

impl RawConfig {
    /// Reads top-level `section` (already checked to be a known name) from `w`'s file.
    pub(super) fn read_section(&mut self, w: &mut Walker<'_>, section: &str, value: &Value) {
        match section {
            "channels" => self.channels = channels(w, value),
            "decimation" => self.decimation = decimation(w, value, "decimation"),
            "rotation" => self.rotation = rotation(w, value, "rotation"),
            "retention" => self.retention = retention(w, value, "retention"),
            "multicast" => {
                if let Some(m) = w.mapping(value, "multicast", MULTICAST_KEYS) {
                    self.full_rate = m
                        .get("full_rate")
                        .and_then(|v| group(w, v, "multicast.full_rate"));
                    self.decimated = m
                        .get("decimated")
                        .and_then(|v| group(w, v, "multicast.decimated"));
                }
            }
            "storage" => self.storage = storage(w, value),
            "network" => self.network = network(w, value),
            other => unreachable!("unknown section {other} passed the key check"),
        }
    }
}

fn channels(w: &mut Walker<'_>, value: &Value) -> Option<Vec<RawChannel>> {
    let items = w.sequence(value, "channels")?;
    if items.is_empty() {
        w.error(
            "channels",
            "at least one channel is required, got an empty list",
        );
    }
    Some(
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| channel(w, item, &index("channels", i)))
            .collect(),
    )
}

fn channel(w: &mut Walker<'_>, value: &Value, field: &str) -> Option<RawChannel> {
    let m = w.mapping(value, field, CHANNEL_KEYS)?;
    let required = |w: &mut Walker<'_>, key: &str| {
        let v = m.get(key);
        if v.is_none() {
            w.error(
                &join(field, key),
                format!("missing required field \"{key}\" (a channel needs name, port and schema)"),
            );
        }
        v
    };
    let name = required(w, "name").and_then(|v| channel_name(w, v, &join(field, "name")));
    let port = required(w, "port").and_then(|v| w.port(v, &join(field, "port")));
    let schema = required(w, "schema").and_then(|v| w.string(v, &join(field, "schema")));
    Some(RawChannel {
        loc: w.loc(field),
        name,
        port,
        schema,
        input_group: m
            .get("input_group")
            .and_then(|v| multicast_address(w, v, &join(field, "input_group"))),
        full_rate: m
            .get("full_rate")
            .and_then(|v| group(w, v, &join(field, "full_rate"))),
        decimated: m
            .get("decimated")
            .and_then(|v| group(w, v, &join(field, "decimated"))),
        decimation: m
            .get("decimation")
            .and_then(|v| decimation(w, v, &join(field, "decimation"))),
        rotation: m
            .get("rotation")
            .and_then(|v| rotation(w, v, &join(field, "rotation"))),
        retention: m
            .get("retention")
            .and_then(|v| retention(w, v, &join(field, "retention"))),
    })
}

/// `[A-Za-z0-9_.-]{1,64}`, and not `.` or `..`: the name is also a directory name.
fn channel_name(w: &mut Walker<'_>, value: &Value, field: &str) -> Option<String> {
    let name = w.string(value, field)?;
    let charset_ok = name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !charset_ok {
        w.error(
            field,
            format!("invalid channel name \"{name}\": use 1 to 64 of A-Z a-z 0-9 _ . -"),
        );
        None
    } else if name.starts_with('.') {
        // "." and ".." are directory names; ".speeddata" holds the registry.
        w.error(
            field,
            format!("invalid channel name \"{name}\": it may not start with \".\" (it is also a directory name)"),
        );
        None
    } else {
        Some(name)
    }
}

/// A window is a count (`factor`) or a time span (`interval_ms`), never both
/// in one section: a section giving either replaces the inherited window.
fn decimation(w: &mut Walker<'_>, value: &Value, field: &str) -> Option<RawDecimation> {
    let m = w.mapping(value, field, DECIMATION_KEYS)?;
    let mut factor = m
        .get("factor")
        .and_then(|v| w.uint(v, &join(field, "factor"), 1..=u64::from(u32::MAX)))
        .map(|f| u32::try_from(f).expect("range-checked"));
    let interval_ms = m
        .get("interval_ms")
        .and_then(|v| w.uint(v, &join(field, "interval_ms"), 1..=INTERVAL_MS_MAX));
    if m.get("factor").is_some() && m.get("interval_ms").is_some() {
        w.error(
            &join(field, "interval_ms"),
            format!(
                "conflicts with {}: give either factor (a window of N datums) or interval_ms (a window of arrival time), not both",
                join(field, "factor")
            ),
        );
        factor = None;
    }
    Some(RawDecimation {
        loc: w.loc(field),
        enabled: m
            .get("enabled")
            .and_then(|v| w.bool(v, &join(field, "enabled"))),
        factor,
        interval_ms,
        algorithm: m
            .get("algorithm")
            .and_then(|v| w.choice(v, &join(field, "algorithm"), ALGORITHMS)),
        time_field: m
            .get("time_field")
            .and_then(|v| time_field(w, v, &join(field, "time_field"))),
    })
}

/// A field name, or a dotted path into nested records (`header.time`), each
/// part an Avro name `[A-Za-z_][A-Za-z0-9_]*`. Whether the schema has it is
/// checked with the schema ([`super::build`]).
fn time_field(w: &mut Walker<'_>, value: &Value, field: &str) -> Option<String> {
    let path = w.string(value, field)?;
    let is_name = |part: &str| {
        part.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    if path.split('.').all(is_name) {
        Some(path)
    } else {
        w.error(
            field,
            format!("invalid field name \"{path}\": use Avro names ([A-Za-z_][A-Za-z0-9_]*), joined by '.' for a nested record's field"),
        );
        None
    }
}

fn rotation(w: &mut Walker<'_>, value: &Value, field: &str) -> Option<RawRotation> {
    const MODES: &[(&str, RotationMode)] =
        &[("time", RotationMode::Time), ("size", RotationMode::Size)];
    let before = w.problems.len();
    let m = w.mapping(value, field, ROTATION_KEYS)?;
    let mode = m
        .get("mode")
        .and_then(|v| w.choice(v, &join(field, "mode"), MODES));
    let threshold = m
        .get("threshold")
        .and_then(|v| w.uint(v, &join(field, "threshold"), 1..=u64::MAX));
    Some(RawRotation {
        loc: w.loc(field),
        clean: w.problems.len() == before,
        mode,
        threshold,
    })
}

fn retention(w: &mut Walker<'_>, value: &Value, field: &str) -> Option<RawRetention> {
    const MODES: &[(&str, RetentionMode)] =
        &[("ttl", RetentionMode::Ttl), ("quota", RetentionMode::Quota)];
    let before = w.problems.len();
    let m = w.mapping(value, field, RETENTION_KEYS)?;
    let mode = m
        .get("mode")
        .and_then(|v| w.choice(v, &join(field, "mode"), MODES));
    let value = m
        .get("value")
        .and_then(|v| w.uint(v, &join(field, "value"), 1..=u64::MAX));
    const SCOPES: &[(&str, bool)] = &[("channel", false), ("store", true)];
    let store_scope = m.get("scope").and_then(|v| w.choice(v, &join(field, "scope"), SCOPES));
    Some(RawRetention {
        loc: w.loc(field),
        clean: w.problems.len() == before,
        mode,
        value,
        store_scope,
    })
}

/// A multicast output: `{address, port}`, address in 224.0.0.0/4.
fn group(w: &mut Walker<'_>, value: &Value, field: &str) -> Option<RawGroup> {
    let before = w.problems.len();
    let m = w.mapping(value, field, GROUP_KEYS)?;
    let address = m.get("address").and_then(|v| multicast_address(w, v, &join(field, "address")));
    let port = m.get("port").and_then(|v| w.port(v, &join(field, "port")));
    Some(RawGroup {
        loc: w.loc(field),
        clean: w.problems.len() == before,
        address,
        port,
    })
}

/// An IPv4 address in 224.0.0.0/4.
fn multicast_address(w: &mut Walker<'_>, value: &Value, field: &str) -> Option<Ipv4Addr> {
    let a = w.ipv4(value, field)?;
    if !a.is_multicast() {
        w.error(field, format!("{a} is not a multicast address (must be in 224.0.0.0/4)"));
        return None;
    }
    Some(a)
}

fn storage(w: &mut Walker<'_>, value: &Value) -> Option<RawStorage> {
    let m = w.mapping(value, "storage", STORAGE_KEYS)?;
    Some(RawStorage {
        avro_path: m
            .get("avro_path")
            .and_then(|v| w.string(v, "storage.avro_path")),
        flush_interval_ms: m
            .get("flush_interval_ms")
            .and_then(|v| w.uint(v, "storage.flush_interval_ms", 1..=u64::MAX)),
        flush_bytes: m
            .get("flush_bytes")
            .and_then(|v| w.uint(v, "storage.flush_bytes", 1..=FLUSH_BYTES_MAX))
            .map(|b| usize::try_from(b).expect("at most i32::MAX")),
        codec: m
            .get("codec")
            .and_then(|v| w.choice(v, "storage.codec", CODECS)),
    })
}

fn network(w: &mut Walker<'_>, value: &Value) -> Option<RawNetwork> {
    let m = w.mapping(value, "network", NETWORK_KEYS)?;
    let egress_iface = m
        .get("egress_iface")
        .and_then(|v| w.string(v, "network.egress_iface"))
        .filter(|name| {
            let ok = name.len() <= IFNAME_MAX && !name.contains(['/', ' ', '\t', ':']);
            if !ok {
                w.error(
                    "network.egress_iface",
                    format!("invalid interface name \"{name}\" (at most {IFNAME_MAX} characters, no '/', ':' or spaces)"),
                );
            }
            ok
        });
    Some(RawNetwork {
        bind: m.get("bind").and_then(|v| w.ipv4(v, "network.bind")),
        ttl: m
            .get("ttl")
            .and_then(|v| w.uint(v, "network.ttl", 1..=255))
            .map(|t| u32::try_from(t).expect("range-checked")),
        egress_iface,
        multicast_loop: m
            .get("multicast_loop")
            .and_then(|v| w.bool(v, "network.multicast_loop")),
    })
}
