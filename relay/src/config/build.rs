//! From the sections as written to the validated [`Config`]: defaults,
//! per-channel overrides (merged field by field), schemas, and the checks
//! that involve more than one field.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::Duration;

use super::defaults;
use super::error::Problems;
use super::model::{
    ChannelDefaults,
    ChannelConfig, Config, Decimation, NetworkConfig, Retention, Rotation, StorageConfig, Window,
};
use super::raw::{
    RawChannel, RawConfig, RawDecimation, RawGroup, RawRetention, RawRotation, RetentionMode,
    RotationMode,
};
use super::resolve::Layout;
use super::schema;
use super::walk::Loc;

/// A multicast output and where its port was set (for the loop message).
#[derive(Debug, Clone)]
struct Output {
    addr: SocketAddrV4,
    port_origin: String,
    /// The port was set in a channel entry (not globally or by default).
    per_channel: bool,
    /// A field of it was invalid (already reported): no loop check against it.
    suspect: bool,
}

impl Output {
    fn default(addr: SocketAddrV4, kind: &str) -> Output {
        Output {
            addr,
            port_origin: format!("the default {kind} port"),
            per_channel: false,
            suspect: false,
        }
    }
}

/// The global values every channel starts from.
struct Globals {
    decimation: Decimated,
    rotation: Rotation,
    retention: Retention,
    full_rate: Output,
    decimated: Output,
}

pub(super) fn build(raw: RawConfig, layout: &Layout, problems: &mut Problems) -> Config {
    let full_rate = Output::default(defaults::FULL_RATE, "full-rate");
    let decimated = Output::default(defaults::DECIMATED, "decimated");
    let globals = Globals {
        decimation: merge_decimation(Decimated::default(), raw.decimation.as_ref()),
        rotation: merge_rotation(defaults::ROTATION, raw.rotation.as_ref(), problems),
        retention: merge_retention(defaults::RETENTION, raw.retention.as_ref(), problems),
        full_rate: merge_group(full_rate, raw.full_rate.as_ref()),
        decimated: merge_group(decimated, raw.decimated.as_ref()),
    };
    if globals.full_rate.addr == globals.decimated.addr {
        let at = raw
            .decimated
            .as_ref()
            .or(raw.full_rate.as_ref())
            .map(|g| &g.loc);
        if let Some(at) = at {
            same_group(problems, at, globals.full_rate.addr);
        }
    }

    let channels = match &raw.channels {
        Some(list) => channels(list, &globals, layout, problems),
        None => {
            problems.push(
                &layout.main_file,
                "channels",
                "missing required section: a list of channels, each with name, port and schema",
            );
            Vec::new()
        }
    };

    let defaults = ChannelDefaults {
        full_rate: globals.full_rate.addr,
        decimated: globals.decimated.addr,
        decimation: globals.decimation.settings.clone(),
        rotation: globals.rotation,
        retention: globals.retention,
    };
    Config {
        source: layout.source.clone(),
        channels,
        defaults,
        storage: storage(&raw, layout, store_quota(&raw, &globals, problems)),
        network: network(&raw),
    }
}

/// A channel's values after merging its overrides over the globals.
struct Effective<'a> {
    name: Option<&'a str>,
    full_rate: Output,
    decimated: Output,
    decimation: Decimated,
    rotation: Rotation,
    retention: Retention,
}

/// Decimation settings and where `time_field` was written (the default one
/// may be missing from a schema; one the user wrote must exist).
#[derive(Debug, Clone)]
struct Decimated {
    settings: Decimation,
    time_field_at: Option<Loc>,
}

impl Default for Decimated {
    fn default() -> Decimated {
        Decimated {
            settings: defaults::decimation(),
            time_field_at: None,
        }
    }
}

fn effective<'a>(c: &'a RawChannel, globals: &Globals, problems: &mut Problems) -> Effective<'a> {
    let per_channel = |g: &Option<RawGroup>| g.as_ref().is_some_and(|g| g.port.is_some());
    let mut full_rate = merge_group(globals.full_rate.clone(), c.full_rate.as_ref());
    full_rate.per_channel = per_channel(&c.full_rate);
    let mut decimated = merge_group(globals.decimated.clone(), c.decimated.as_ref());
    decimated.per_channel = per_channel(&c.decimated);
    if let Some(over) = c.decimated.as_ref().or(c.full_rate.as_ref()) {
        if full_rate.addr == decimated.addr {
            same_group(problems, &over.loc, full_rate.addr);
        }
    }
    Effective {
        name: c.name.as_deref(),
        full_rate,
        decimated,
        decimation: merge_decimation(globals.decimation.clone(), c.decimation.as_ref()),
        rotation: merge_rotation(globals.rotation, c.rotation.as_ref(), problems),
        retention: merge_retention(globals.retention, c.retention.as_ref(), problems),
    }
}

fn channels(
    list: &[RawChannel],
    globals: &Globals,
    layout: &Layout,
    problems: &mut Problems,
) -> Vec<ChannelConfig> {
    // Every channel's outputs first, so each input can be checked against all of them.
    let effective: Vec<Effective<'_>> = list
        .iter()
        .map(|c| effective(c, globals, problems))
        .collect();
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut ports: HashMap<u16, &str> = HashMap::new();
    let mut built = Vec::with_capacity(list.len());
    for (c, e) in list.iter().zip(&effective) {
        if let Some(name) = &c.name {
            if let Some(first) = names.insert(name, &c.loc.field) {
                problems.push(
                    &c.loc.file,
                    &c.loc.child("name").field,
                    format!("duplicate channel name \"{name}\" (already used by {first})"),
                );
            }
        }
        if let Some(port) = c.port {
            if let Some(first) = ports.insert(port, &c.loc.field) {
                problems.push(
                    &c.loc.file,
                    &c.loc.child("port").field,
                    format!("duplicate channel port {port} (already used by {first})"),
                );
            }
            check_loop(problems, &c.loc, port, &effective);
        }
        let schema = c.schema.as_deref().and_then(|written| {
            schema::load(written, &layout.schema_candidates(written))
                .map_err(|e| problems.push(&c.loc.file, &c.loc.child("schema").field, e))
                .ok()
        });
        let schema =
            schema.filter(|(path, json)| time_field_exists(problems, &e.decimation, path, json));
        if let (Some(name), Some(port), Some((schema_path, schema_json))) =
            (&c.name, c.port, schema)
        {
            built.push(ChannelConfig {
                name: name.clone(),
                port,
                input_group: c.input_group,
                schema_path,
                schema_json,
                full_rate: e.full_rate.addr,
                decimated: e.decimated.addr,
                decimation: e.decimation.settings.clone(),
                rotation: e.rotation,
                retention: e.retention,
            });
        }
    }
    built
}

/// An input port equal to any channel's output port would receive the
/// relay's own multicast (the XDP program matches by destination port).
/// Reported once per input, naming the first clash.
fn check_loop(problems: &mut Problems, at: &Loc, port: u16, all: &[Effective<'_>]) {
    let clash = all.iter().find_map(|e| {
        [("full-rate", &e.full_rate), ("decimated", &e.decimated)]
            .into_iter()
            .find(|(_, o)| o.addr.port() == port && !o.suspect)
            .map(|(kind, o)| (e.name, kind, o))
    });
    if let Some((name, kind, output)) = clash {
        let whose = match name {
            Some(n) if output.per_channel => format!(" of channel \"{n}\""),
            _ => String::new(),
        };
        problems.push(
            &at.file,
            &at.child("port").field,
            format!(
                "input port {port} is also the {kind} multicast output port{whose} ({}, group {}): the relay would receive its own output (a loop)",
                output.port_origin, output.addr
            ),
        );
    }
}

fn same_group(problems: &mut Problems, at: &Loc, addr: SocketAddrV4) {
    problems.push(
        &at.file,
        &at.field,
        format!("full-rate and decimated outputs are the same group {addr}: the two streams would be mixed"),
    );
}

/// A `time_field` the user wrote must name a field of the channel's schema
/// (reported where it was written); the default `time` need not exist.
fn time_field_exists(
    problems: &mut Problems,
    d: &Decimated,
    schema_path: &std::path::Path,
    schema_json: &str,
) -> bool {
    let Some(at) = &d.time_field_at else {
        return true;
    };
    match schema::find_field(schema_path, schema_json, &d.settings.time_field) {
        Ok(()) => true,
        Err(why) => {
            problems.push(&at.file, &at.child("time_field").field, why);
            false
        }
    }
}

/// Field by field; a section that sets `factor` or `interval_ms` replaces
/// the inherited window, whichever kind it was.
fn merge_decimation(base: Decimated, over: Option<&RawDecimation>) -> Decimated {
    let Some(over) = over else { return base };
    let window = match (over.interval_ms, over.factor) {
        (Some(ms), _) => Window::Time(Duration::from_millis(ms)),
        (None, Some(n)) => Window::Count(n),
        (None, None) => base.settings.window,
    };
    let (time_field, time_field_at) = match &over.time_field {
        Some(f) => (f.clone(), Some(over.loc.clone())),
        None => (base.settings.time_field, base.time_field_at),
    };
    Decimated {
        settings: Decimation {
            enabled: over.enabled.unwrap_or(base.settings.enabled),
            window,
            algorithm: over.algorithm.unwrap_or(base.settings.algorithm),
            time_field,
        },
        time_field_at,
    }
}

fn merge_group(base: Output, over: Option<&RawGroup>) -> Output {
    let Some(over) = over else { return base };
    let port_origin = if over.port.is_some() {
        over.loc.child("port").describe()
    } else {
        base.port_origin
    };
    Output {
        addr: SocketAddrV4::new(
            over.address.unwrap_or(*base.addr.ip()),
            over.port.unwrap_or(base.addr.port()),
        ),
        port_origin,
        per_channel: base.per_channel,
        suspect: base.suspect || !over.clean,
    }
}

/// Field by field; changing the mode needs a new threshold, because the
/// inherited one is in the other mode's unit (seconds vs bytes).
fn merge_rotation(base: Rotation, over: Option<&RawRotation>, problems: &mut Problems) -> Rotation {
    let Some(over) = over else { return base };
    let (base_mode, base_threshold) = match base {
        Rotation::Time(d) => (RotationMode::Time, d.as_secs()),
        Rotation::Size(bytes) => (RotationMode::Size, bytes),
    };
    let mode = over.mode.unwrap_or(base_mode);
    if mode != base_mode && over.threshold.is_none() && over.clean {
        unit_change(
            problems,
            &over.loc,
            "threshold",
            name_rotation(mode),
            name_rotation(base_mode),
        );
    }
    let threshold = over.threshold.unwrap_or(base_threshold);
    match mode {
        RotationMode::Time => Rotation::Time(Duration::from_secs(threshold)),
        RotationMode::Size => Rotation::Size(threshold),
    }
}

fn merge_retention(
    base: Retention,
    over: Option<&RawRetention>,
    problems: &mut Problems,
) -> Retention {
    let Some(over) = over else { return base };
    let (base_mode, base_value) = match base {
        Retention::Ttl(d) => (RetentionMode::Ttl, d.as_secs()),
        Retention::Quota(bytes) => (RetentionMode::Quota, bytes),
    };
    let mode = over.mode.unwrap_or(base_mode);
    if mode != base_mode && over.value.is_none() && over.clean {
        unit_change(
            problems,
            &over.loc,
            "value",
            name_retention(mode),
            name_retention(base_mode),
        );
    }
    let value = over.value.unwrap_or(base_value);
    match mode {
        RetentionMode::Ttl => Retention::Ttl(Duration::from_secs(value)),
        RetentionMode::Quota => Retention::Quota(value),
    }
}

fn unit_change(problems: &mut Problems, at: &Loc, key: &str, mode: &str, base_mode: &str) {
    problems.push(
        &at.file,
        &at.child(key).field,
        format!("missing: required when mode is \"{mode}\" (the inherited {key} is for mode \"{base_mode}\", in other units)"),
    );
}

fn name_rotation(mode: RotationMode) -> &'static str {
    match mode {
        RotationMode::Time => "time",
        RotationMode::Size => "size",
    }
}

fn name_retention(mode: RetentionMode) -> &'static str {
    match mode {
        RetentionMode::Ttl => "ttl",
        RetentionMode::Quota => "quota",
    }
}

/// `retention: {mode: quota, scope: store}` in the global section: the quota
/// covers every channel together (a channel's own section cannot say this).
fn store_quota(raw: &RawConfig, globals: &Globals, problems: &mut Problems) -> Option<u64> {
    if let Some(list) = &raw.channels {
        for c in list {
            if let Some(r) = c.retention.as_ref().filter(|r| r.store_scope.is_some()) {
                problems.push(&r.loc.file, &r.loc.child("scope").field, "scope is set in the global retention section only");
            }
        }
    }
    let r = raw.retention.as_ref()?;
    if r.store_scope != Some(true) {
        return None;
    }
    match globals.retention {
        Retention::Quota(bytes) => Some(bytes),
        Retention::Ttl(_) => {
            problems.push(&r.loc.file, &r.loc.child("scope").field, "scope: store needs mode: quota (a TTL is the same for every channel anyway)");
            None
        }
    }
}

fn storage(raw: &RawConfig, layout: &Layout, store_quota: Option<u64>) -> StorageConfig {
    let s = raw.storage.as_ref();
    let avro_path = s
        .and_then(|s| s.avro_path.as_deref())
        .unwrap_or(defaults::AVRO_PATH);
    StorageConfig {
        avro_path: layout.storage_path(avro_path),
        flush_interval: s
            .and_then(|s| s.flush_interval_ms)
            .map_or(defaults::FLUSH_INTERVAL, Duration::from_millis),
        flush_bytes: s
            .and_then(|s| s.flush_bytes)
            .unwrap_or(defaults::FLUSH_BYTES),
        codec: s.and_then(|s| s.codec).unwrap_or(defaults::CODEC),
        store_quota,
    }
}

fn network(raw: &RawConfig) -> NetworkConfig {
    let n = raw.network.as_ref();
    NetworkConfig {
        bind: n.and_then(|n| n.bind).unwrap_or(defaults::BIND),
        ttl: n.and_then(|n| n.ttl).unwrap_or(defaults::TTL),
        egress_iface: n.and_then(|n| n.egress_iface.clone()),
        multicast_loop: n
            .and_then(|n| n.multicast_loop)
            .unwrap_or(defaults::MULTICAST_LOOP),
    }
}
