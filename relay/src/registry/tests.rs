use std::path::PathBuf;

use super::*;
use crate::api::overrides::{DecimationOverride, RotationMode, RotationOverride};

const SCHEMA: &str = r#"{"type": "record", "name": "data", "fields": [{"name": "time", "type": "long"}]}"#;

fn channel(name: &str, port: u16) -> NewChannel {
    NewChannel {
        name: name.into(),
        port,
        schema_path: Some("config/agents/example.avsc".into()),
        schema_file: Some(PathBuf::from("/srv/speeddata/config/agents/example.avsc")),
        schema_json: SCHEMA.into(),
        overrides: Overrides {
            decimation: Some(DecimationOverride { factor: Some(5), algorithm: Some("average".into()), ..Default::default() }),
            rotation: Some(RotationOverride { mode: RotationMode::Size, threshold: 1 << 20 }),
        },
    }
}

fn inline(name: &str, port: u16) -> NewChannel {
    NewChannel { schema_path: None, schema_file: None, overrides: Overrides::default(), ..channel(name, port) }
}

#[test]
fn reopened_registry_has_the_same_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".speeddata/registry.sqlite3");
    let (a, b) = {
        let mut reg = Registry::open(&path).unwrap();
        assert!(reg.list().unwrap().is_empty());
        let b = reg.insert(&inline("b", 26002)).unwrap();
        let a = reg.insert(&channel("a", 26001)).unwrap();
        (a, b)
    };
    assert!(a.created_at.ends_with('Z') && a.created_at.contains('T'), "{}", a.created_at);
    let reg = Registry::open(&path).unwrap();
    assert_eq!(reg.list().unwrap(), vec![a.clone(), b.clone()], "by name, everything kept");
    assert_eq!(reg.get("a").unwrap(), Some(a));
    assert_eq!(reg.get("b").unwrap().unwrap().channel, inline("b", 26002));
    assert_eq!(reg.get("c").unwrap(), None);
}

#[test]
fn duplicates_refused_with_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = Registry::open(&dir.path().join("r.sqlite3")).unwrap();
    reg.insert(&channel("a", 26001)).unwrap();
    match reg.insert(&channel("a", 26009)) {
        Err(RegistryError::NameTaken(n)) => assert_eq!(n, "a"),
        other => panic!("{other:?}"),
    }
    match reg.insert(&channel("z", 26001)) {
        Err(RegistryError::PortTaken { port, used_by }) => assert_eq!((port, used_by.as_str()), (26001, "a")),
        other => panic!("{other:?}"),
    }
    assert_eq!(reg.list().unwrap().len(), 1, "nothing half-written by a refused insert");
    // The API maps them to 409s.
    let e: crate::api::ControlError = RegistryError::PortTaken { port: 1, used_by: "a".into() }.into();
    assert_eq!(e, crate::api::ControlError::PortInUse { port: 1, used_by: "a".into() });
}

#[test]
fn deletion_persists_and_frees_name_and_port() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    {
        let mut reg = Registry::open(&path).unwrap();
        reg.insert(&channel("a", 26001)).unwrap();
        reg.insert(&channel("b", 26002)).unwrap();
        assert!(reg.delete("a").unwrap());
        assert!(!reg.delete("a").unwrap());
    }
    let mut reg = Registry::open(&path).unwrap();
    let names: Vec<String> = reg.list().unwrap().into_iter().map(|r| r.channel.name).collect();
    assert_eq!(names, ["b"]);
    reg.insert(&channel("a2", 26001)).unwrap();
    reg.insert(&inline("a", 26003)).unwrap();
}

#[test]
fn wal_mode_and_a_second_connection_sees_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    let mut one = Registry::open(&path).unwrap();
    let two = Registry::open(&path).unwrap();
    one.insert(&channel("a", 26001)).unwrap();
    assert_eq!(two.list().unwrap().len(), 1);
    let mode: String = two.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn newer_layout_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    Connection::open(&path).unwrap().execute_batch("PRAGMA user_version = 99;").unwrap();
    match Registry::open(&path) {
        Err(e @ RegistryError::TooNew { found: 99, .. }) => assert!(e.to_string().contains("newer"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn corrupt_row_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    let mut reg = Registry::open(&path).unwrap();
    reg.insert(&channel("a", 26001)).unwrap();
    reg.conn.execute("UPDATE channels SET config_json = '{\"decimation\": 3}'", []).unwrap();
    let e = reg.list().unwrap_err();
    assert!(matches!(&e, RegistryError::Corrupt { name, .. } if name == "a"), "{e}");
}
