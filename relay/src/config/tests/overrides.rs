//! Per-channel overrides merge over the globals field by field; absent
//! sections take the documented defaults.

use std::time::Duration;

use super::{relay_with_channels, Project, GLOBAL, RELAY};
use crate::config::{defaults, Algorithm, Decimation, Retention, Rotation, Window};

#[test]
fn channel_overrides_merge_field_by_field() {
    let channels = "  - name: fast
    port: 26000
    schema: config/agents/example.avsc
    full_rate: {address: 239.5.5.5}
    decimated: {port: 7001}
    decimation: {factor: 50, algorithm: rms}
    rotation: {mode: size, threshold: 1048576}
    retention: {value: 600}
  - name: plain
    port: 26001
    schema: config/agents/example.avsc
    decimation: {enabled: false}
";
    let cfg = Project::with(&relay_with_channels(channels), GLOBAL).ok();
    let fast = &cfg.channels[0];
    assert_eq!(fast.full_rate.to_string(), "239.5.5.5:6000");
    assert_eq!(fast.decimated.to_string(), "239.1.1.2:7001");
    assert_eq!(
        fast.decimation,
        Decimation {
            enabled: true,
            window: Window::Count(50),
            algorithm: Algorithm::Rms,
            time_field: "time".into(),
        }
    );
    assert_eq!(fast.rotation, Rotation::Size(1_048_576));
    assert_eq!(fast.retention, Retention::Ttl(Duration::from_secs(600)));

    let plain = &cfg.channels[1];
    assert_eq!(plain.full_rate.to_string(), "239.1.1.1:6000");
    assert_eq!(plain.decimated.to_string(), "239.1.1.2:6001");
    assert_eq!(
        plain.decimation,
        Decimation {
            enabled: false,
            window: Window::Count(5),
            algorithm: Algorithm::Downsample,
            time_field: "time".into(),
        }
    );
    assert_eq!(plain.rotation, Rotation::Time(Duration::from_secs(3600)));
    assert_eq!(plain.retention, Retention::Ttl(Duration::from_secs(86_400)));
}

#[test]
fn same_mode_keeps_the_inherited_threshold() {
    let channels = "  - name: a
    port: 26000
    schema: config/agents/example.avsc
    rotation: {mode: time}
    retention: {mode: quota, value: 1000000}
";
    let relay = relay_with_channels(channels).replace("threshold: 3600", "threshold: 60");
    let c = &Project::with(&relay, GLOBAL).ok().channels[0];
    assert_eq!(c.rotation, Rotation::Time(Duration::from_secs(60)));
    assert_eq!(c.retention, Retention::Quota(1_000_000));
}

#[test]
fn absent_sections_take_the_defaults() {
    let relay = "channels:\n  - {name: a, port: 26000, schema: config/agents/example.avsc}\n";
    let cfg = Project::with(relay, "").ok();
    let c = &cfg.channels[0];
    assert_eq!(c.decimation, defaults::decimation());
    assert_eq!(c.rotation, defaults::ROTATION);
    assert_eq!(c.retention, defaults::RETENTION);
    assert_eq!(c.full_rate, defaults::FULL_RATE);
    assert_eq!(c.decimated, defaults::DECIMATED);
    assert_eq!(cfg.storage.avro_path, Project::root_of(&cfg).join("data"));
}

#[test]
fn partial_global_sections_merge_over_the_defaults() {
    let relay = "channels:\n  - {name: a, port: 26000, schema: config/agents/example.avsc}\n\
                 decimation: {factor: 4}\nrotation: {threshold: 60}\nretention:\n";
    let global = "multicast:\n  decimated: {address: 239.7.7.7}\nstorage:\n  codec: zstandard\n\
                  network: {ttl: 4, egress_iface: eth1, multicast_loop: false, bind: 10.0.0.2}\n";
    let cfg = Project::with(relay, global).ok();
    let c = &cfg.channels[0];
    assert_eq!(c.decimation.window, Window::Count(4));
    assert!(c.decimation.enabled);
    assert_eq!(c.rotation, Rotation::Time(Duration::from_secs(60)));
    assert_eq!(c.retention, defaults::RETENTION);
    assert_eq!(c.decimated.to_string(), "239.7.7.7:6001");
    assert_eq!(cfg.storage.codec, crate::config::Codec::Zstandard);
    assert_eq!(cfg.network.ttl, 4);
    assert_eq!(cfg.network.egress_iface.as_deref(), Some("eth1"));
    assert!(!cfg.network.multicast_loop);
    assert_eq!(cfg.network.bind.to_string(), "10.0.0.2");
}

#[test]
fn storage_extensions() {
    let global =
        format!("{GLOBAL}  flush_interval_ms: 250\n  flush_bytes: 131072\n  codec: Deflate\n");
    let cfg = Project::with(RELAY, &global).ok();
    assert_eq!(cfg.storage.flush_interval, Duration::from_millis(250));
    assert_eq!(cfg.storage.flush_bytes, 131_072);
    assert_eq!(cfg.storage.codec, crate::config::Codec::Deflate);
    // `codec: null` unquoted is YAML's null: the default, which is the null codec.
    let cfg = Project::with(RELAY, &format!("{GLOBAL}  codec: null\n")).ok();
    assert_eq!(cfg.storage.codec, crate::config::Codec::Null);
}

impl Project {
    /// The project root of a loaded directory config.
    fn root_of(cfg: &crate::config::Config) -> std::path::PathBuf {
        cfg.source
            .parent()
            .expect("config dir has a parent")
            .to_path_buf()
    }
}

#[test]
fn input_group_is_a_multicast_address() {
    let channels = "  - name: grp
    port: 26000
    schema: config/agents/example.avsc
    input_group: 239.9.9.9
  - name: uni
    port: 26001
    schema: config/agents/example.avsc
";
    let cfg = Project::with(&relay_with_channels(channels), GLOBAL).ok();
    assert_eq!(cfg.channels[0].input_group, Some("239.9.9.9".parse().unwrap()));
    assert_eq!(cfg.channels[1].input_group, None);

    let bad = "  - name: grp
    port: 26000
    schema: config/agents/example.avsc
    input_group: 10.1.2.3
";
    let err = Project::with(&relay_with_channels(bad), GLOBAL).err();
    super::assert_problem(&err, "relay.yaml", "channels[0].input_group", &["10.1.2.3", "not a multicast address"]);
}

#[test]
fn store_scope_quota_covers_every_channel() {
    let relay = RELAY.replace("mode: \"ttl\"", "mode: \"quota\"\n  scope: \"store\"").replace("value: 86400", "value: 1000000");
    let cfg = Project::with(&relay, GLOBAL).ok();
    assert_eq!(cfg.storage.store_quota, Some(1_000_000));
    assert_eq!(cfg.channels[0].retention, Retention::Quota(1_000_000));

    let ttl = RELAY.replace("mode: \"ttl\"", "mode: \"ttl\"\n  scope: \"store\"");
    let err = Project::with(&ttl, GLOBAL).err();
    super::assert_problem(&err, "relay.yaml", "retention.scope", &["needs mode: quota"]);

    let per_channel = relay_with_channels(
        "  - name: a\n    port: 26000\n    schema: config/agents/example.avsc\n    retention: {mode: quota, value: 5, scope: store}\n",
    );
    let err = Project::with(&per_channel, GLOBAL).err();
    super::assert_problem(&err, "relay.yaml", "channels[0].retention.scope", &["global retention section only"]);
}
