//! A channel's schema file: missing, unreadable, not JSON, not Avro, not a record.

use super::{assert_problem, relay_with_channels, Project, GLOBAL};

fn with_schema(schema: &str) -> Project {
    let relay = relay_with_channels(&format!(
        "  - name: a\n    port: 26000\n    schema: {schema}\n"
    ));
    Project::with(&relay, GLOBAL)
}

#[test]
fn missing_schema_lists_the_paths_tried() {
    let p = with_schema("agents/nope.avsc");
    let err = p.err();
    let root_try = p.root().join("agents/nope.avsc").display().to_string();
    let dir_try = p
        .config_dir()
        .join("agents/nope.avsc")
        .display()
        .to_string();
    assert_problem(
        &err,
        "relay.yaml",
        "channels[0].schema",
        &[
            "schema file \"agents/nope.avsc\" not found",
            &format!("tried: {root_try}, {dir_try}"),
        ],
    );
}

#[test]
fn unreadable_schema() {
    let p = with_schema("config/agents/bad.avsc");
    std::fs::write(p.config_dir().join("agents/bad.avsc"), [0xff, 0xfe, b'{']).expect("write");
    assert_problem(
        &p.err(),
        "relay.yaml",
        "channels[0].schema",
        &["cannot read schema file", "bad.avsc"],
    );
    let p = with_schema("config/agents");
    assert_problem(
        &p.err(),
        "relay.yaml",
        "channels[0].schema",
        &["is a directory"],
    );
}

#[test]
fn schema_not_json() {
    let p = with_schema("config/agents/bad.avsc");
    p.write(
        "config/agents/bad.avsc",
        "{\n  \"type\": \"record\",\n  oops\n}\n",
    );
    assert_problem(
        &p.err(),
        "relay.yaml",
        "channels[0].schema",
        &["bad.avsc is not valid JSON", "line 3 column 3"],
    );
}

#[test]
fn schema_not_avro() {
    let p = with_schema("config/agents/bad.avsc");
    p.write(
        "config/agents/bad.avsc",
        r#"{"type": "record", "fields": []}"#,
    );
    assert_problem(
        &p.err(),
        "relay.yaml",
        "channels[0].schema",
        &["bad.avsc is not a valid Avro schema"],
    );
}

#[test]
fn schema_not_a_record() {
    let p = with_schema("config/agents/bad.avsc");
    p.write(
        "config/agents/bad.avsc",
        r#"{"type": "array", "items": "double"}"#,
    );
    assert_problem(
        &p.err(),
        "relay.yaml",
        "channels[0].schema",
        &["must define a record", "Array"],
    );
}

#[test]
fn other_speeddata_schema_loads() {
    let p = with_schema("config/agents/temperature.avsc");
    let text = std::fs::read_to_string(super::fixture_dir().join("agents/temperature.avsc"))
        .expect("fixture");
    p.write("config/agents/temperature.avsc", &text);
    assert_eq!(p.ok().channels[0].schema_json, text);
}
