//! Configuration: SpeedData's `relay.yaml` + `global.yaml` (a directory) or a
//! single YAML file, validated into [`Config`] before anything starts.
//!
//! # Files
//!
//! - **A directory** (SpeedData's `config/`): `relay.yaml` (required) and
//!   `global.yaml` (optional, as for SpeedData). Other files (`pivot.yaml`,
//!   `agents/`) are ignored. As SpeedData merges the two, any section may sit
//!   in either file, but not in both.
//! - **One file** holding the sections of both. A `relay.yaml` or
//!   `global.yaml` given alone while its sibling sits next to it is refused:
//!   pass the directory.
//!
//! # Sections (defaults when absent)
//!
//! SpeedData's:
//! - `channels` (required, non-empty): list of `{name, port, schema}`; name
//!   `[A-Za-z0-9_.-]{1,64}`, unique; port 1..=65535, unique.
//! - `decimation: {enabled, factor, algorithm}`: `true`, `1`, `downsample`
//!   (`average`, `minmax`, `rms`).
//!   Ours: `interval_ms` (1..=86400000) instead of `factor` makes windows of
//!   arrival time rather than of N datums; one section giving both is an
//!   error, and a section giving either replaces the inherited window (a
//!   channel's `{factor: 50}` under a global `interval_ms` counts datums).
//!   `time_field` (`time`): the field copied from a window's last datum
//!   instead of aggregated, a dotted path for a nested record's field; one
//!   written must exist in the channel's schema, the default need not.
//! - `rotation: {mode, threshold}`: `time`, `3600` (seconds for `time`,
//!   bytes for `size`).
//! - `retention: {mode, value}`: `ttl`, `86400` (seconds for `ttl`, bytes for
//!   `quota`).
//! - `multicast: {full_rate: {address, port}, decimated: {address, port}}`:
//!   239.1.1.1:6000 and 239.1.1.2:6001; addresses in 224.0.0.0/4.
//! - `storage: {avro_path}`: `./data`.
//!
//! Ours (optional):
//! - `storage.flush_interval_ms` (100), `storage.flush_bytes` (65536),
//!   `storage.codec` (`null`; `deflate`, `snappy`, `zstandard`).
//! - `network: {bind, ttl, egress_iface, multicast_loop}`: `0.0.0.0`, `1`
//!   (1..=255), none (the routing table decides), `true`.
//! - Per channel: `full_rate`, `decimated`, `decimation`, `rotation`,
//!   `retention`, each merged **field by field** over the global value (a
//!   channel's `decimation: {factor: 50}` keeps the global algorithm).
//!   Changing a `mode` needs its `threshold`/`value` too, since the inherited
//!   one is in the other mode's unit.
//!
//! Partial sections merge over the defaults the same way. Spellings accepted
//! beyond plain YAML 1.2 (as SpeedData's PyYAML loader did) are listed in
//! [`walk`].
//!
//! # Paths
//!
//! The project root is the parent of the config directory (for one file, the
//! parent of the file's directory). A relative `schema` is tried against the
//! root, then against the config directory; `storage.avro_path` relative is
//! against the root. The model holds absolute, normalised paths.
//!
//! # Errors
//!
//! Every problem found is reported ([`ConfigError`]), each naming the file,
//! the field (`channels[1].port`) and what is wrong, with the value.

mod build;
pub mod defaults;
mod describe;
mod error;
mod files;
mod model;
mod raw;
mod resolve;
mod schema;
mod walk;

#[cfg(test)]
mod tests;

pub use describe::describe;
pub use error::{ConfigError, Problem};
pub use model::*;
pub use resolve::{GLOBAL_FILE, RELAY_FILE};

use std::path::Path;

use error::Problems;
use resolve::Layout;

/// Loads and validates the configuration at `path`: a directory holding
/// `relay.yaml` (+ `global.yaml`), or one YAML file with every section.
/// Reads files only; creates nothing.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let mut problems = Problems::default();
    let Some(layout) = Layout::detect(path, &mut problems) else {
        return Err(problems.into_error());
    };
    let Some(docs) = files::read(&layout, &mut problems) else {
        return Err(problems.into_error());
    };
    let raw = files::sections(&docs, &mut problems);
    let config = build::build(raw, &layout, &mut problems);
    problems.into_result(config)
}
