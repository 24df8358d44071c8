//! Tests of the loader: SpeedData's own files, the repository's example,
//! the single-file form, overrides, path resolution and every validation
//! error. Each test builds its project in a temporary directory.

mod decimation;
mod errors;
mod fixture;
mod lenient;
mod overrides;
mod paths;
mod schemas;

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::{load, Config, ConfigError};

/// SpeedData's example schema (the repository's copy of it).
pub(super) const EXAMPLE_SCHEMA: &str = include_str!("../../../../config/agents/example.avsc");

/// SpeedData's `relay.yaml` as shipped.
pub(super) const RELAY: &str = r#"
channels:
  - name: "example"
    port: 26000
    schema: "config/agents/example.avsc"
decimation:
  enabled: true
  factor: 5
  algorithm: "downsample"
rotation:
  mode: "time"
  threshold: 3600
retention:
  mode: "ttl"
  value: 86400
"#;

/// SpeedData's `global.yaml` as shipped.
pub(super) const GLOBAL: &str = r#"
multicast:
  full_rate:
    address: "239.1.1.1"
    port: 6000
  decimated:
    address: "239.1.1.2"
    port: 6001
storage:
  avro_path: "./data"
"#;

/// A SpeedData project in a temporary directory: `ROOT/config/` holds the
/// YAML files and `ROOT/config/agents/example.avsc`.
pub(super) struct Project {
    dir: TempDir,
}

impl Project {
    /// The schema only; add the YAML files with [`Project::write`].
    pub(super) fn empty() -> Project {
        let project = Project {
            dir: tempfile::tempdir().expect("create a temporary directory"),
        };
        project.write("config/agents/example.avsc", EXAMPLE_SCHEMA);
        project
    }

    /// `relay.yaml` and `global.yaml` as given.
    pub(super) fn with(relay: &str, global: &str) -> Project {
        let project = Project::empty();
        project.write("config/relay.yaml", relay);
        project.write("config/global.yaml", global);
        project
    }

    /// The project root (the config directory's parent).
    pub(super) fn root(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub(super) fn config_dir(&self) -> PathBuf {
        self.root().join("config")
    }

    /// Writes `text` at `relative` (to the root), creating directories.
    pub(super) fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.root().join(relative);
        fs::create_dir_all(path.parent().expect("a file has a parent"))
            .expect("create directories");
        fs::write(&path, text).expect("write a test file");
        path
    }

    pub(super) fn load(&self) -> Result<Config, ConfigError> {
        load(&self.config_dir())
    }

    pub(super) fn ok(&self) -> Config {
        self.load()
            .unwrap_or_else(|e| panic!("expected a valid config, got:\n{e}"))
    }

    pub(super) fn err(&self) -> ConfigError {
        match self.load() {
            Ok(cfg) => panic!("expected an invalid config, got {cfg:#?}"),
            Err(e) => e,
        }
    }
}

/// `relay.yaml` with the example channel replaced by `channels` (YAML list
/// items, indented by two spaces) and the rest as SpeedData ships it.
pub(super) fn relay_with_channels(channels: &str) -> String {
    RELAY.replace(
        "  - name: \"example\"\n    port: 26000\n    schema: \"config/agents/example.avsc\"\n",
        channels,
    )
}

/// Asserts that `err` holds a problem in a file named `file`, at `field`,
/// whose message contains every one of `needles`, and that its printed
/// line shows all of them.
#[track_caller]
pub(super) fn assert_problem(err: &ConfigError, file: &str, field: &str, needles: &[&str]) {
    let found = err.problems.iter().find(|p| {
        p.file.file_name().is_some_and(|n| n == file)
            && p.field == field
            && needles.iter().all(|n| p.message.contains(n))
    });
    let Some(problem) = found else {
        panic!("no problem in {file} at `{field}` mentioning {needles:?}; got:\n{err}");
    };
    let line = problem.to_string();
    assert!(line.contains(file) && line.contains(field), "{line}");
    assert!(err.to_string().lines().any(|l| l == line), "{err}");
}

/// SpeedData's fixture directory, next to the repository (`shared/fixtures`).
pub(super) fn fixture_dir() -> PathBuf {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/speeddata/config"
    ));
    assert!(
        dir.join("relay.yaml").is_file(),
        "SpeedData's fixture is missing at {}: these tests expect the repository checked out \
         next to shared/ (shared/fixtures/speeddata/config/relay.yaml)",
        dir.display()
    );
    super::resolve::normalise(dir)
}

/// Copies the directory tree `from` into `to` (files and directories only).
pub(super) fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create a directory");
    for entry in fs::read_dir(from).expect("read a fixture directory") {
        let entry = entry.expect("read a fixture entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy a fixture file");
        }
    }
}
