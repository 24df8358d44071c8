//! Schema and storage paths resolve as SpeedData's: the project root first,
//! then the config directory; stored absolute and normalised.

use std::path::Path;

use super::{relay_with_channels, Project, EXAMPLE_SCHEMA, GLOBAL, RELAY};
use crate::config::load;
use crate::config::resolve::{absolute, normalise};

fn with_schema(schema: &str) -> Project {
    let relay = relay_with_channels(&format!(
        "  - name: a\n    port: 26000\n    schema: {schema}\n"
    ));
    Project::with(&relay, GLOBAL)
}

#[test]
fn project_root_wins_over_the_config_directory() {
    let p = with_schema("agents/s.avsc");
    p.write("agents/s.avsc", EXAMPLE_SCHEMA);
    p.write(
        "config/agents/s.avsc",
        &EXAMPLE_SCHEMA.replace("\"data\"", "\"other\""),
    );
    let c = &p.ok().channels[0];
    assert_eq!(c.schema_path, p.root().join("agents/s.avsc"));
    assert_eq!(c.schema_json, EXAMPLE_SCHEMA);
}

#[test]
fn config_directory_is_the_fallback() {
    let p = with_schema("agents/example.avsc");
    assert_eq!(
        p.ok().channels[0].schema_path,
        p.config_dir().join("agents/example.avsc")
    );
}

#[test]
fn absolute_schema_paths_are_taken_as_they_are() {
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let schema = elsewhere.path().join("s.avsc");
    std::fs::write(&schema, EXAMPLE_SCHEMA).expect("write");
    let p = with_schema(&schema.display().to_string());
    assert_eq!(p.ok().channels[0].schema_path, schema);
}

#[test]
fn paths_are_normalised() {
    let p = with_schema("./config/../config/agents/./example.avsc");
    let cfg = load(&p.config_dir().join("agents/..")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.source, p.config_dir());
    assert_eq!(
        cfg.channels[0].schema_path,
        p.config_dir().join("agents/example.avsc")
    );
}

#[test]
fn single_file_root_is_the_parent_of_its_directory() {
    let p = Project::empty();
    let file = p.write("config/all.yaml", &format!("{RELAY}{GLOBAL}"));
    let cfg = load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cfg.channels[0].schema_path,
        p.root().join("config/agents/example.avsc")
    );
    assert_eq!(cfg.storage.avro_path, p.root().join("data"));
}

#[test]
fn avro_path_relative_to_the_root_or_absolute() {
    let p = Project::with(RELAY, &GLOBAL.replace("\"./data\"", "../archive/avro"));
    let expected = normalise(&p.root().join("../archive/avro"));
    assert_eq!(p.ok().storage.avro_path, expected);
    let p = Project::with(RELAY, &GLOBAL.replace("\"./data\"", "/var/speeddata/avro"));
    assert_eq!(p.ok().storage.avro_path, Path::new("/var/speeddata/avro"));
}

#[test]
fn normalise_and_absolute() {
    assert_eq!(normalise(Path::new("/a/./b/../c")), Path::new("/a/c"));
    assert_eq!(normalise(Path::new("/../a")), Path::new("/a"));
    assert_eq!(normalise(Path::new("../../a/..")), Path::new("../.."));
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(
        absolute(Path::new("x/./y")).expect("absolute"),
        cwd.join("x/y")
    );
}
