use std::path::Path;

use serde_json::{json, Value};

use super::*;

const SCHEMA: &str = r#"{"namespace": "test.sensor", "type": "record", "name": "data",
  "fields": [{"name": "time", "type": "long"}, {"name": "value", "type": "double"},
             {"name": "hdr", "type": {"type": "record", "name": "Hdr", "fields": [{"name": "seq", "type": "int"}]}},
             {"name": "hdr2", "type": "Hdr"}]}"#;

/// `root/config/agents/s.avsc` (allowed: `root/config`), `root/secret.avsc`
/// (outside), `root/config/agents/link.avsc` → `root/secret.avsc`.
struct Fixture {
    dir: tempfile::TempDir,
    dirs: SchemaDirs,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let agents = root.join("config/agents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(agents.join("s.avsc"), SCHEMA).unwrap();
    std::fs::write(agents.join("enum.avsc"), r#"{"type": "enum", "name": "E", "symbols": ["A"]}"#).unwrap();
    std::fs::write(agents.join("broken.avsc"), "{not json").unwrap();
    std::fs::write(agents.join("notavro.avsc"), r#"{"type": "recordz"}"#).unwrap();
    std::fs::write(root.join("secret.avsc"), SCHEMA).unwrap();
    std::os::unix::fs::symlink(root.join("secret.avsc"), agents.join("link.avsc")).unwrap();
    let dirs = SchemaDirs { bases: vec![root.to_path_buf(), root.join("config")], allowed: vec![root.join("config")] };
    Fixture { dir, dirs }
}

fn request(schema: Value) -> Value {
    json!({"name": "sensor1", "port": 26001, "schema": schema, "config": {"decimation": 5}})
}

fn refused(body: Value, dirs: &SchemaDirs) -> Invalid {
    registration(&body, dirs).expect_err(&body.to_string())
}

#[test]
fn names() {
    for ok in ["a", "sensor-1", "x.y_z", &"n".repeat(64), "a.b."] {
        assert!(channel_name(ok).is_ok(), "{ok}");
    }
    for bad in ["", ".", "..", "...", ".speeddata", "a/b", "a b", "é", &"n".repeat(65), "a\0"] {
        assert_eq!(channel_name(bad).unwrap_err().error(), "Invalid channel name", "{bad:?}");
    }
}

#[test]
fn ports() {
    assert_eq!(port_value(&json!(26001)).unwrap(), 26001);
    assert_eq!(port_value(&json!("26001")).unwrap(), 26001, "Python's int() takes digit strings");
    assert_eq!(port_value(&json!(1024)).unwrap(), 1024);
    assert_eq!(port_value(&json!(65535)).unwrap(), 65535);
    for bad in [json!(1023), json!(65536), json!(-1), json!(1u64 << 40)] {
        assert_eq!(port_value(&bad).unwrap_err().error(), "Port must be between 1024 and 65535", "{bad}");
    }
    for bad in [json!(26001.5), json!("2600x"), json!(true), json!([1])] {
        assert_eq!(port_value(&bad).unwrap_err().error(), "Port must be an integer", "{bad}");
    }
    assert_eq!(port_text("26000", "port").unwrap(), 26000);
    assert!(port_text("+80", "port").is_err());
    assert!(port_text("80", "port").is_err());
}

#[test]
fn registration_with_a_path_as_speeddata_sends_it() {
    let f = fixture();
    let ch = registration(&request(json!("config/agents/s.avsc")), &f.dirs).unwrap();
    assert_eq!((ch.name.as_str(), ch.port), ("sensor1", 26001));
    assert_eq!(ch.schema_path.as_deref(), Some("config/agents/s.avsc"));
    let real = std::fs::canonicalize(f.dir.path().join("config/agents/s.avsc")).unwrap();
    assert_eq!(ch.schema_file.as_deref(), Some(real.as_path()));
    assert_eq!(ch.schema_json, SCHEMA);
    assert_eq!(ch.overrides.decimation.unwrap().factor, Some(5));
    // Relative to the config directory (second base), and absolute.
    assert!(registration(&request(json!("agents/s.avsc")), &f.dirs).is_ok());
    let abs = f.dir.path().join("config/./agents/s.avsc");
    assert!(registration(&request(json!(abs.to_str().unwrap())), &f.dirs).is_ok());
}

#[test]
fn registration_with_an_inline_schema() {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let ch = registration(&request(schema.clone()), &SchemaDirs::default()).unwrap();
    assert_eq!((ch.schema_path, ch.schema_file), (None, None));
    assert_eq!(serde_json::from_str::<Value>(&ch.schema_json).unwrap(), schema);
    let body = json!({"name": "a", "port": 2000, "schema": schema, "config": {"decimation": {"time_field": "hdr2.seq"}}});
    assert!(registration(&body, &SchemaDirs::default()).is_ok());
}

#[test]
fn missing_fields_as_speeddata_reports_them() {
    let dirs = SchemaDirs::default();
    for body in [
        json!({"name": "sensor1"}),
        json!({"name": "", "port": 26001, "schema": "x"}),
        json!({"name": "a", "port": 0, "schema": "x"}),
        json!({"name": "a", "port": 26001, "schema": null}),
    ] {
        let e = refused(body, &dirs);
        assert_eq!(e.error(), "Missing required fields");
        assert_eq!(e.0["required"], json!(["name", "port", "schema"]));
    }
    for body in [json!({}), json!([]), json!("x"), Value::Null] {
        assert_eq!(refused(body, &dirs).error(), "Request body required");
    }
}

#[test]
fn every_field_checked() {
    let f = fixture();
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let d = &f.dirs;
    let cases = [
        (json!({"name": "a", "port": 2000, "schema": schema, "extra": 1}), "Unknown field"),
        (json!({"name": 7, "port": 2000, "schema": schema}), "Invalid channel name"),
        (json!({"name": "a/b", "port": 2000, "schema": schema}), "Invalid channel name"),
        (json!({"name": "a", "port": 80, "schema": schema}), "Port must be between 1024 and 65535"),
        (json!({"name": "a", "port": "x", "schema": schema}), "Port must be an integer"),
        (json!({"name": "a", "port": 2000, "schema": 5}), "Invalid schema"),
        (json!({"name": "a", "port": 2000, "schema": {"type": "string"}}), "Invalid schema"),
        (json!({"name": "a", "port": 2000, "schema": schema, "config": {"decimation": 0}}), "Invalid config"),
        (json!({"name": "a", "port": 2000, "schema": schema, "config": {"retention": 1}}), "Invalid config"),
        (
            json!({"name": "a", "port": 2000, "schema": schema, "config": {"decimation": {"time_field": "hdr.nope"}}}),
            "Invalid config",
        ),
    ];
    for (body, error) in cases {
        assert_eq!(refused(body.clone(), d).error(), error, "{body}");
    }
}

#[test]
fn schema_files_checked() {
    let f = fixture();
    let d = &f.dirs;
    let cases = [
        ("config/agents/missing.avsc", "Schema file not found"),
        ("config/agents/broken.avsc", "Invalid schema file (not valid JSON)"),
        ("config/agents/notavro.avsc", "Invalid schema"),
        ("config/agents/enum.avsc", "Invalid schema"),
        ("config/agents", "Cannot read schema file"),
    ];
    for (path, error) in cases {
        assert_eq!(refused(request(json!(path)), d).error(), error, "{path}");
    }
    let e = refused(request(json!("config/agents/enum.avsc")), d);
    assert!(e.0["details"].as_str().unwrap().contains("record"), "{e:?}");
}

#[test]
fn schema_paths_stay_inside_the_schema_directories() {
    let f = fixture();
    let d = &f.dirs;
    let outside = "Schema path outside the schema directories";
    // Relative to the root it would exist, but the root is not allowed: only
    // the config directory is tried.
    assert_eq!(refused(request(json!("secret.avsc")), d).error(), "Schema file not found");
    let secret = f.dir.path().join("secret.avsc");
    assert_eq!(refused(request(json!(secret.to_str().unwrap())), d).error(), outside);
    assert_eq!(refused(request(json!("/etc/passwd")), d).error(), outside);
    assert_eq!(refused(request(json!("/etc/does-not-exist")), d).error(), outside, "no probing outside");
    assert_eq!(refused(request(json!("config/agents/link.avsc")), d).error(), outside, "symlink escape");
    let e = refused(request(json!("config/agents/../../secret.avsc")), d);
    assert_eq!(e.error(), "Invalid schema path");
    assert_eq!(refused(request(json!("config/../config/agents/s.avsc")), d).error(), "Invalid schema path");
    assert_eq!(refused(request(json!("a\0b")), d).error(), "Invalid schema path");
    // No allowed directory: paths refused, inline schemas only.
    let none = SchemaDirs { bases: d.bases.clone(), allowed: vec![] };
    assert_eq!(refused(request(json!("config/agents/s.avsc")), &none).error(), outside);
}

#[test]
fn oversized_schema_files_refused() {
    let f = fixture();
    let big = f.dir.path().join("config/agents/big.avsc");
    let fields: Vec<String> =
        (0..40_000).map(|i| format!(r#"{{"name": "signal_{i}", "type": "double"}}"#)).collect();
    std::fs::write(&big, format!(r#"{{"type": "record", "name": "r", "fields": [{}]}}"#, fields.join(","))).unwrap();
    assert!(std::fs::metadata(&big).unwrap().len() > SCHEMA_MAX_BYTES as u64);
    assert_eq!(refused(request(json!("config/agents/big.avsc")), &f.dirs).error(), "Schema too large");
    assert!(Path::new(&big).exists());
}

#[test]
fn fields_of_nested_and_named_records() {
    let s = record_schema(SCHEMA).unwrap();
    for (path, has) in [("time", true), ("hdr.seq", true), ("hdr2.seq", true), ("nope", false), ("time.x", false), ("hdr.x", false)] {
        assert_eq!(has_field(&s, path), has, "{path}");
    }
}

#[test]
fn schema_comparison() {
    let registered: Value = serde_json::from_str(SCHEMA).unwrap();
    assert!(same_schema(&registered, &registered.clone()));
    // Documentation and key order do not change the datums.
    let mut documented = registered.clone();
    documented["doc"] = json!("a sensor");
    assert!(same_schema(&registered, &documented));
    let other = json!({"namespace": "wrong", "type": "record", "name": "data", "fields": [{"name": "foo", "type": "int"}]});
    assert!(!same_schema(&registered, &other));
    assert!(!same_schema(&registered, &json!("not a schema")));
}

#[test]
fn provided_schema_forms() {
    let s = json!({"type": "record", "name": "r", "fields": []});
    assert_eq!(provided_schema(&json!({"schema": s})), Some(s.clone()));
    assert_eq!(provided_schema(&json!({"schema": s.to_string()})), Some(s.clone()));
    assert_eq!(provided_schema(&s), Some(s.clone()), "the bare schema, as SpeedData's curl example posts it");
    assert_eq!(provided_schema(&json!({"other": 1})), None);
    assert_eq!(provided_schema(&json!({"schema": null})), None);
    assert_eq!(provided_schema(&json!([1])), None);
}
