//! Decimation windows by count (`factor`) or by time (`interval_ms`), never
//! both in one section, and the configurable time field.

use std::time::Duration;

use super::{assert_problem, relay_with_channels, Project, GLOBAL, RELAY};
use crate::config::{describe, Algorithm, Window};

/// A schema whose timestamp sits in a nested record and has another name.
const NESTED_SCHEMA: &str = r#"{
    "type": "record", "name": "frame",
    "fields": [
        {"name": "header", "type": {"type": "record", "name": "hdr", "fields": [
            {"name": "stamp", "type": "long"},
            {"name": "seq", "type": "int"}
        ]}},
        {"name": "value", "type": "double"}
    ]
}"#;

#[test]
fn interval_ms_makes_a_time_window() {
    let relay = RELAY.replace("factor: 5", "interval_ms: 10");
    let cfg = Project::with(&relay, GLOBAL).ok();
    let c = &cfg.channels[0];
    assert_eq!(c.decimation.window, Window::Time(Duration::from_millis(10)));
    assert_eq!(c.decimation.time_field, "time");
    assert!(
        describe(&cfg).contains("(every 10 ms, downsample)"),
        "{}",
        describe(&cfg)
    );
}

#[test]
fn a_section_setting_either_replaces_the_inherited_window() {
    let channels = "  - name: by_time
    port: 26000
    schema: config/agents/example.avsc
    decimation: {interval_ms: 20}
  - name: by_count
    port: 26001
    schema: config/agents/example.avsc
    decimation: {factor: 50}
  - name: inherits
    port: 26002
    schema: config/agents/example.avsc
    decimation: {algorithm: minmax}
";
    // Global: a count window of 5.
    let cfg = Project::with(&relay_with_channels(channels), GLOBAL).ok();
    let windows: Vec<Window> = cfg.channels.iter().map(|c| c.decimation.window).collect();
    assert_eq!(
        windows,
        [
            Window::Time(Duration::from_millis(20)),
            Window::Count(50),
            Window::Count(5)
        ]
    );
    // Global: a time window of 10 ms.
    let relay = relay_with_channels(channels).replace("factor: 5\n", "interval_ms: 10\n");
    let cfg = Project::with(&relay, GLOBAL).ok();
    let windows: Vec<Window> = cfg.channels.iter().map(|c| c.decimation.window).collect();
    assert_eq!(
        windows,
        [
            Window::Time(Duration::from_millis(20)),
            Window::Count(50),
            Window::Time(Duration::from_millis(10))
        ]
    );
    assert_eq!(cfg.channels[2].decimation.algorithm, Algorithm::MinMax);
}

#[test]
fn factor_and_interval_ms_together_are_refused() {
    let relay = RELAY.replace("factor: 5", "factor: 5\n  interval_ms: 10");
    assert_problem(
        &Project::with(&relay, GLOBAL).err(),
        "relay.yaml",
        "decimation.interval_ms",
        &["conflicts with decimation.factor", "not both"],
    );
    let channels = "  - name: a
    port: 26000
    schema: config/agents/example.avsc
    decimation: {factor: 2, interval_ms: 10}
";
    assert_problem(
        &Project::with(&relay_with_channels(channels), GLOBAL).err(),
        "relay.yaml",
        "channels[0].decimation.interval_ms",
        &["conflicts with channels[0].decimation.factor"],
    );
}

#[test]
fn interval_ms_range() {
    let err = Project::with(&RELAY.replace("factor: 5", "interval_ms: 0"), GLOBAL).err();
    assert_problem(
        &err,
        "relay.yaml",
        "decimation.interval_ms",
        &["must be at least 1, got 0"],
    );
    let err = Project::with(&RELAY.replace("factor: 5", "interval_ms: 86400001"), GLOBAL).err();
    assert_problem(
        &err,
        "relay.yaml",
        "decimation.interval_ms",
        &["86400001 is out of range", "1..=86400000"],
    );
    let err = Project::with(&RELAY.replace("factor: 5", "interval_ms: 2.5"), GLOBAL).err();
    assert_problem(
        &err,
        "relay.yaml",
        "decimation.interval_ms",
        &["expected a whole number, got 2.5"],
    );
}

#[test]
fn time_field_may_be_nested_and_is_checked_against_the_schema() {
    let channels = "  - name: a
    port: 26000
    schema: config/agents/nested.avsc
    decimation: {time_field: header.stamp, algorithm: average}
";
    let p = Project::with(&relay_with_channels(channels), GLOBAL);
    p.write("config/agents/nested.avsc", NESTED_SCHEMA);
    let cfg = p.ok();
    assert_eq!(cfg.channels[0].decimation.time_field, "header.stamp");
    assert!(
        describe(&cfg).contains("time field header.stamp"),
        "{}",
        describe(&cfg)
    );

    // The default `time` need not exist: every numeric field is then aggregated.
    let channels = "  - {name: a, port: 26000, schema: config/agents/nested.avsc}\n";
    let p = Project::with(&relay_with_channels(channels), GLOBAL);
    p.write("config/agents/nested.avsc", NESTED_SCHEMA);
    assert_eq!(p.ok().channels[0].decimation.time_field, "time");
}

#[test]
fn a_written_time_field_missing_from_the_schema_is_reported_where_written() {
    let relay = RELAY.replace("factor: 5", "factor: 5\n  time_field: stamp");
    assert_problem(
        &Project::with(&relay, GLOBAL).err(),
        "relay.yaml",
        "decimation.time_field",
        &[
            "no field \"stamp\"",
            "example.avsc",
            "time, message, counter",
        ],
    );
    let channels = "  - name: a
    port: 26000
    schema: config/agents/nested.avsc
    decimation: {time_field: value.stamp}
";
    let p = Project::with(&relay_with_channels(channels), GLOBAL);
    p.write("config/agents/nested.avsc", NESTED_SCHEMA);
    assert_problem(
        &p.err(),
        "relay.yaml",
        "channels[0].decimation.time_field",
        &["no field \"value.stamp\"", "\"value\" is not a record"],
    );
    let channels = "  - name: a
    port: 26000
    schema: config/agents/nested.avsc
    decimation: {time_field: header.time}
";
    let p = Project::with(&relay_with_channels(channels), GLOBAL);
    p.write("config/agents/nested.avsc", NESTED_SCHEMA);
    assert_problem(
        &p.err(),
        "relay.yaml",
        "channels[0].decimation.time_field",
        &[
            "no field \"header.time\"",
            "\"header\" has fields stamp, seq",
        ],
    );
}

#[test]
fn time_field_must_be_a_name() {
    for bad in ["\"1st\"", "\"a..b\"", "\"a-b\"", "\"\"", "5"] {
        let relay = RELAY.replace("factor: 5", &format!("factor: 5\n  time_field: {bad}"));
        let err = Project::with(&relay, GLOBAL).err();
        assert!(
            err.problems
                .iter()
                .any(|p| p.field == "decimation.time_field"),
            "{bad}: {err}"
        );
    }
}
