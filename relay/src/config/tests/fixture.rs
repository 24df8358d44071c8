//! SpeedData's own files, the repository's example config and the
//! single-file form load, with the values they say.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use super::{copy_tree, fixture_dir, Project, GLOBAL, RELAY};
use crate::config::{
    describe, load, Algorithm, Codec, Config, Decimation, Retention, Rotation, Window,
};

/// What SpeedData's shipped files say, for a project rooted at `root`.
fn assert_speeddata_values(cfg: &Config, root: &Path) {
    assert_eq!(cfg.channels.len(), 1);
    let c = &cfg.channels[0];
    assert_eq!(c.name, "example");
    assert_eq!(c.port, 26000);
    assert_eq!(c.schema_path, root.join("config/agents/example.avsc"));
    assert_eq!(
        c.schema_json,
        std::fs::read_to_string(&c.schema_path).expect("schema readable")
    );
    assert_eq!(
        c.full_rate,
        SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 1), 6000)
    );
    assert_eq!(
        c.decimated,
        SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 2), 6001)
    );
    assert_eq!(
        c.decimation,
        Decimation {
            enabled: true,
            window: Window::Count(5),
            algorithm: Algorithm::Downsample,
            time_field: "time".into(),
        }
    );
    assert_eq!(c.rotation, Rotation::Time(Duration::from_secs(3600)));
    assert_eq!(c.retention, Retention::Ttl(Duration::from_secs(86_400)));
    assert_eq!(cfg.storage.avro_path, root.join("data"));
    assert_eq!(cfg.storage.flush_interval, Duration::from_millis(100));
    assert_eq!(cfg.storage.flush_bytes, 65_536);
    assert_eq!(cfg.storage.codec, Codec::Null);
    assert_eq!(cfg.network.bind, Ipv4Addr::UNSPECIFIED);
    assert_eq!(cfg.network.ttl, 1);
    assert_eq!(cfg.network.egress_iface, None);
    assert!(cfg.network.multicast_loop);
}

#[test]
fn speeddata_fixture_loads_unchanged_from_a_copy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("speeddata");
    copy_tree(&fixture_dir(), &root.join("config"));
    let cfg = load(&root.join("config")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.source, root.join("config"));
    assert_speeddata_values(&cfg, &root);
}

#[test]
fn speeddata_fixture_loads_in_place() {
    let dir = fixture_dir();
    let cfg = load(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_speeddata_values(&cfg, dir.parent().expect("the fixture has a parent"));
}

#[test]
fn repository_config_loads() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config"));
    let cfg = load(dir).unwrap_or_else(|e| panic!("{e}"));
    let root = crate::config::resolve::normalise(&dir.join(".."));
    assert_eq!(cfg.channels.len(), 1);
    let c = &cfg.channels[0];
    assert_eq!((c.name.as_str(), c.port), ("example", 26000));
    assert_eq!(c.schema_path, root.join("config/agents/example.avsc"));
    assert_eq!(c.decimation.window, Window::Count(10));
    assert_eq!(c.decimation.algorithm, Algorithm::Downsample);
    assert_eq!(c.rotation, Rotation::Time(Duration::from_secs(3600)));
    assert_eq!(c.retention, Retention::Ttl(Duration::from_secs(86_400)));
    assert_eq!(
        c.full_rate,
        SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 1), 6000)
    );
    assert_eq!(
        c.decimated,
        SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 2), 6001)
    );
    assert_eq!(cfg.storage.avro_path, root.join("data"));
}

#[test]
fn single_file_holds_both_files_sections() {
    let p = Project::empty();
    let file = p.write("config/speeddata.yaml", &format!("{RELAY}\n{GLOBAL}"));
    let cfg = load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.source, file);
    assert_speeddata_values(&cfg, &p.root());
}

#[test]
fn global_yaml_is_optional_and_other_files_are_ignored() {
    let p = Project::empty();
    p.write("config/relay.yaml", RELAY);
    p.write(
        "config/pivot.yaml",
        "api:\n  port: 8000\n  not: [valid for us\n",
    );
    let cfg = p.ok();
    assert_speeddata_values(&cfg, &p.root());
}

#[test]
fn sections_may_sit_in_either_file() {
    // SpeedData merges global.yaml and relay.yaml, so `storage` in relay.yaml works there too.
    let p = Project::with(
        &format!("{RELAY}storage:\n  avro_path: /srv/avro\n"),
        "multicast:\n  full_rate: {address: 239.9.9.9, port: 7000}\n",
    );
    let cfg = p.ok();
    assert_eq!(cfg.storage.avro_path, Path::new("/srv/avro"));
    assert_eq!(cfg.channels[0].full_rate.to_string(), "239.9.9.9:7000");
}

#[test]
fn describe_names_everything() {
    let p = Project::with(RELAY, GLOBAL);
    let text = describe(&p.ok());
    for needle in [
        &*p.config_dir().display().to_string(),
        "example: udp port 26000",
        &*p.root()
            .join("config/agents/example.avsc")
            .display()
            .to_string(),
        "record speeddata.example.data, 7 fields",
        "full-rate: 239.1.1.1:6000",
        "decimated: 239.1.1.2:6001 (factor 5, downsample)",
        "rotation: every 3600 s (1h)",
        "retention: delete after 86400 s (1d)",
        &*format!("storage: {}", p.root().join("data").display()),
        "codec null, flush every 100 ms or at 65536 bytes (64.0 KiB)",
        "network: bind 0.0.0.0, multicast ttl 1",
        "multicast loop on",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}
