//! Configuration: SpeedData's `relay.yaml` + `global.yaml` (a directory) or a
//! single YAML file, validated into [`Config`] before anything starts.

mod model;

pub use model::*;

use std::path::Path;

/// Placeholder until the loader lands.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

pub fn load(_path: &Path) -> Result<Config, ConfigError> {
    todo!("config loader")
}
