//! Reading the YAML files and splitting them into sections.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde_norway::Value;

use super::error::Problems;
use super::raw::{RawConfig, SECTIONS};
use super::resolve::{Layout, GLOBAL_FILE, RELAY_FILE};
use super::walk::{show, Walker};

/// The parsed documents of `layout`'s files, or `None` (with problems) when
/// one could not be read or is not YAML: checking the rest would only add
/// noise (a missing `channels`, say) to the real problem.
pub(super) fn read(layout: &Layout, problems: &mut Problems) -> Option<Vec<(PathBuf, Value)>> {
    let before = problems.len();
    let mut docs = Vec::with_capacity(layout.files.len());
    for (file, required) in &layout.files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound && !required => continue,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                problems.push(
                    file,
                    "",
                    format!("not found: a config directory must hold {RELAY_FILE} ({GLOBAL_FILE} is optional)"),
                );
                continue;
            }
            Err(e) => {
                problems.push(file, "", format!("cannot read: {e}"));
                continue;
            }
        };
        if let Some(doc) = parse(file, &text, problems) {
            docs.push((file.clone(), doc));
        }
    }
    (problems.len() == before).then_some(docs)
}

/// One YAML document; anchors and `<<` merge keys are honoured (PyYAML does).
fn parse(file: &Path, text: &str, problems: &mut Problems) -> Option<Value> {
    let syntax = |problems: &mut Problems, e: serde_norway::Error| match e.location() {
        Some(at) => problems.push_at(
            file,
            (at.line(), at.column()),
            format!("YAML syntax error: {e}"),
        ),
        None => problems.push(file, "", format!("YAML syntax error: {e}")),
    };
    let mut doc: Value = match serde_norway::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            syntax(problems, e);
            return None;
        }
    };
    if let Err(e) = doc.apply_merge() {
        syntax(problems, e);
        return None;
    }
    Some(doc)
}

/// Reads the sections of every document. As in SpeedData, a section may sit
/// in either file of a directory; one defined in both is refused rather than
/// guessing how SpeedData's merge would have combined them.
pub(super) fn sections(docs: &[(PathBuf, Value)], problems: &mut Problems) -> RawConfig {
    let mut raw = RawConfig::default();
    let mut seen: Vec<(&str, &Path)> = Vec::new();
    for (file, doc) in docs {
        let mut w = Walker { file, problems };
        // An empty file (or only comments) is an empty mapping, as for SpeedData.
        if doc.is_null() {
            continue;
        }
        if !doc.is_mapping() {
            w.error(
                "",
                format!(
                    "expected a mapping of sections at the top level, got {}",
                    show(doc)
                ),
            );
            continue;
        }
        let Some(map) = w.mapping(doc, "", SECTIONS) else {
            continue;
        };
        for section in SECTIONS {
            let Some(value) = map.get(section) else {
                continue;
            };
            if let Some((_, other)) = seen.iter().find(|(s, _)| s == section) {
                w.error(
                    section,
                    format!(
                        "section \"{section}\" is also defined in {}; keep it in one file",
                        other.display()
                    ),
                );
                continue;
            }
            seen.push((section, file));
            raw.read_section(&mut w, section, value);
        }
    }
    raw
}
