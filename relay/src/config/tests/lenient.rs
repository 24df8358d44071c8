//! Spellings SpeedData's PyYAML loader accepted, taken where unambiguous.

use std::time::Duration;

use super::{assert_problem, Project, GLOBAL};
use crate::config::{Algorithm, Retention, Rotation, Window};

#[test]
fn numbers_as_strings_floats_and_with_separators() {
    let relay = r#"
channels:
  - name: a
    port: "26000"
    schema: config/agents/example.avsc
decimation: {enabled: yes, factor: 1e1, algorithm: Average}
rotation: {mode: TIME, threshold: 3_600}
retention: {mode: ttl, value: "86_400"}
"#;
    let cfg = Project::with(relay, &GLOBAL.replace("port: 6000", "port: \"6000\"")).ok();
    let c = &cfg.channels[0];
    assert_eq!(c.port, 26000);
    assert!(c.decimation.enabled);
    assert_eq!(c.decimation.window, Window::Count(10));
    assert_eq!(c.decimation.algorithm, Algorithm::Average);
    assert_eq!(c.rotation, Rotation::Time(Duration::from_secs(3600)));
    assert_eq!(c.retention, Retention::Ttl(Duration::from_secs(86_400)));
    assert_eq!(c.full_rate.port(), 6000);
}

#[test]
fn booleans_in_yaml_1_1_spellings() {
    for (text, expected) in [
        ("off", false),
        ("No", false),
        ("\"false\"", false),
        ("ON", true),
        ("1", true),
    ] {
        let relay = format!(
            "channels: [{{name: a, port: 26000, schema: config/agents/example.avsc}}]\ndecimation: {{enabled: {text}}}\n"
        );
        let cfg = Project::with(&relay, GLOBAL).ok();
        assert_eq!(cfg.channels[0].decimation.enabled, expected, "{text}");
    }
}

#[test]
fn ambiguous_numbers_are_refused() {
    let relay = "channels: [{name: a, port: \"026000\", schema: config/agents/example.avsc}]\n\
                 rotation: {threshold: \"1_\"}\n";
    let err = Project::with(relay, GLOBAL).err();
    assert_problem(
        &err,
        "relay.yaml",
        "channels[0].port",
        &["ambiguous number \"026000\"", "octal"],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "rotation.threshold",
        &["expected a whole number, got \"1_\""],
    );
}

#[test]
fn anchors_and_merge_keys() {
    let relay = "common: &common {schema: config/agents/example.avsc}\n";
    // `common` is not a section: refused, even as an anchor holder.
    assert_problem(
        &Project::with(relay, GLOBAL).err(),
        "relay.yaml",
        "common",
        &["unknown key"],
    );
    let relay = "channels:\n  - &a {name: a, port: 26000, schema: config/agents/example.avsc}\n  - {<<: *a, name: b, port: 26001}\n";
    let cfg = Project::with(relay, GLOBAL).ok();
    assert_eq!(cfg.channels[1].name, "b");
    assert_eq!(cfg.channels[1].schema_path, cfg.channels[0].schema_path);
}

#[test]
fn empty_global_file_and_empty_sections() {
    let relay = "channels: [{name: a, port: 26000, schema: config/agents/example.avsc}]\ndecimation:\nrotation:\n";
    Project::with(relay, "# nothing here yet\n").ok();
}
