//! Where things are: which files make up the configuration, the project
//! root that SpeedData's relative paths are relative to, and absolute,
//! normalised paths.

use std::path::{Component, Path, PathBuf};

use super::error::Problems;

/// SpeedData's relay settings: channels, decimation, rotation, retention.
pub const RELAY_FILE: &str = "relay.yaml";
/// SpeedData's settings shared by all its services: multicast groups, storage.
pub const GLOBAL_FILE: &str = "global.yaml";

/// The files to read and the directories paths resolve against.
#[derive(Debug)]
pub(super) struct Layout {
    /// What `load` was given, absolute and normalised.
    pub source: PathBuf,
    /// `(file, required)`, in reading order.
    pub files: Vec<(PathBuf, bool)>,
    /// Where a missing required section is reported: relay.yaml or the single file.
    pub main_file: PathBuf,
    /// The directory holding the config file(s).
    pub config_dir: PathBuf,
    /// The parent of `config_dir` (or `config_dir` itself at `/`).
    pub root: PathBuf,
}

impl Layout {
    /// A directory holds `relay.yaml` (required) and `global.yaml` (optional,
    /// as for SpeedData); anything else is one file with all the sections.
    pub(super) fn detect(path: &Path, problems: &mut Problems) -> Option<Layout> {
        let source = match absolute(path) {
            Ok(source) => source,
            Err(e) => {
                problems.push(path, "", format!("cannot resolve the path: {e}"));
                return None;
            }
        };
        let metadata = match std::fs::metadata(&source) {
            Ok(m) => m,
            Err(e) => {
                problems.push(
                    &source,
                    "",
                    format!("cannot read the configuration: {e} (expected a directory holding {RELAY_FILE} and {GLOBAL_FILE}, or one YAML file)"),
                );
                return None;
            }
        };
        let (config_dir, files, main_file) = if metadata.is_dir() {
            let relay = source.join(RELAY_FILE);
            let files = vec![(relay.clone(), true), (source.join(GLOBAL_FILE), false)];
            (source.clone(), files, relay)
        } else {
            let dir = source
                .parent()
                .map_or_else(|| source.clone(), Path::to_path_buf);
            refuse_half_a_directory(&source, &dir, problems)?;
            (dir, vec![(source.clone(), true)], source.clone())
        };
        let root = config_dir
            .parent()
            .map_or_else(|| config_dir.clone(), Path::to_path_buf);
        Some(Layout {
            source,
            files,
            main_file,
            config_dir,
            root,
        })
    }

    /// Candidates for a schema path, in the order SpeedData tries them:
    /// absolute as-is; relative against the project root, then against the
    /// config directory.
    pub(super) fn schema_candidates(&self, schema: &str) -> Vec<PathBuf> {
        let schema = Path::new(schema);
        if schema.is_absolute() {
            return vec![normalise(schema)];
        }
        let mut candidates = vec![normalise(&self.root.join(schema))];
        let in_config_dir = normalise(&self.config_dir.join(schema));
        if !candidates.contains(&in_config_dir) {
            candidates.push(in_config_dir);
        }
        candidates
    }

    /// `storage.avro_path`: relative against the project root.
    pub(super) fn storage_path(&self, path: &str) -> PathBuf {
        normalise(&self.root.join(path))
    }
}

/// Given `config/relay.yaml` with `config/global.yaml` beside it, reading the
/// one file alone would silently drop the other's multicast and storage
/// settings: ask for the directory instead.
fn refuse_half_a_directory(file: &Path, dir: &Path, problems: &mut Problems) -> Option<()> {
    let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
        return Some(());
    };
    let sibling = match name {
        RELAY_FILE => GLOBAL_FILE,
        GLOBAL_FILE => RELAY_FILE,
        _ => return Some(()),
    };
    if dir.join(sibling).exists() {
        problems.push(
            file,
            "",
            format!(
                "this file is half of a SpeedData config directory ({sibling} is next to it); pass the directory {} so both are read",
                dir.display()
            ),
        );
        return None;
    }
    Some(())
}

/// `path` made absolute against the current directory, then normalised.
pub(super) fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    Ok(normalise(&std::path::absolute(path)?))
}

/// Removes `.` and resolves `..` lexically (symbolic links are not followed:
/// the path stays the one the user wrote, minus the noise).
pub(super) fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                // `..` at the root stays at the root; leading `..` of a relative path are kept.
                let leading = out
                    .components()
                    .next_back()
                    .is_none_or(|c| c == Component::ParentDir);
                if leading {
                    if !out.has_root() {
                        out.push("..");
                    }
                } else {
                    out.pop();
                }
            }
            other => out.push(other),
        }
    }
    out
}
