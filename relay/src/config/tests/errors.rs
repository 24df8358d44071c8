//! Every validation error names the file, the field and the problem (with
//! the offending value).

use super::{assert_problem, relay_with_channels, Project, GLOBAL, RELAY};
use crate::config::load;

const EXAMPLE: &str = "config/agents/example.avsc";

fn channel(name: &str, port: &str) -> String {
    format!("  - name: {name}\n    port: {port}\n    schema: {EXAMPLE}\n")
}

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let p = Project::with(RELAY, "multicast:\n  full_rate: [239.1.1.1\nstorage: {}\n");
    let err = p.err();
    assert_eq!(err.problems.len(), 1, "{err}");
    let problem = &err.problems[0];
    assert!(problem.file.ends_with("config/global.yaml"));
    assert_eq!(problem.position, Some((3, 8)));
    let line = err.to_string();
    assert!(
        line.contains("global.yaml:3:8: YAML syntax error"),
        "{line}"
    );
}

#[test]
fn duplicate_yaml_key_is_a_syntax_error() {
    let p = Project::with(&format!("{RELAY}rotation:\n  mode: size\n"), GLOBAL);
    let err = p.err();
    assert!(err.to_string().contains("relay.yaml"), "{err}");
    assert!(
        err.to_string()
            .contains("duplicate entry with key \"rotation\""),
        "{err}"
    );
}

#[test]
fn unknown_keys_anywhere_list_the_allowed_ones() {
    let relay = relay_with_channels(&format!(
        "  - name: a\n    port: 26000\n    schema: {EXAMPLE}\n    prot: 1\n    full_rate: {{address: 239.3.3.3, porr: 1}}\n"
    ));
    let p = Project::with(
        &format!("{relay}stripchart:\n  port: 8080\n"),
        &format!("{GLOBAL}  avro_pth: x\n"),
    );
    let err = p.err();
    assert_problem(
        &err,
        "relay.yaml",
        "stripchart",
        &[
            "unknown key \"stripchart\"",
            "allowed: channels, decimation",
        ],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "channels[0].prot",
        &[
            "unknown key \"prot\"",
            "allowed: name, port, schema",
            "did you mean \"port\"?",
        ],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "channels[0].full_rate.porr",
        &["allowed: address, port"],
    );
    assert_problem(
        &err,
        "global.yaml",
        "storage.avro_pth",
        &["allowed: avro_path, flush_interval_ms, flush_bytes, codec"],
    );
}

#[test]
fn wrong_types() {
    let relay = relay_with_channels(&format!(
        "  - name: 42\n    port: [1]\n    schema: {EXAMPLE}\n    decimation: on\n"
    ));
    let p = Project::with(&relay, "multicast: [1, 2]\nstorage:\n  codec: 3\n");
    let err = p.err();
    assert_problem(
        &err,
        "relay.yaml",
        "channels[0].name",
        &["expected a string, got 42"],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "channels[0].port",
        &["expected a whole number, got a list"],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "channels[0].decimation",
        &["expected a mapping", "got \"on\""],
    );
    assert_problem(
        &err,
        "global.yaml",
        "multicast",
        &["expected a mapping", "got a list"],
    );
    assert_problem(
        &err,
        "global.yaml",
        "storage.codec",
        &["expected one of null, deflate, snappy, zstandard, got 3"],
    );

    let p = Project::with("channels:\n  name: a\n", GLOBAL);
    assert_problem(
        &p.err(),
        "relay.yaml",
        "channels",
        &["expected a list, got a mapping"],
    );
    let p = Project::with("- 1\n", GLOBAL);
    assert_problem(
        &p.err(),
        "relay.yaml",
        "",
        &["expected a mapping of sections", "got a list"],
    );
    let p = Project::with(&RELAY.replace("enabled: true", "enabled: maybe"), GLOBAL);
    assert_problem(
        &p.err(),
        "relay.yaml",
        "decimation.enabled",
        &["expected true or false, got \"maybe\""],
    );
    let p = Project::with(&RELAY.replace("factor: 5", "factor: 2.5"), GLOBAL);
    assert_problem(
        &p.err(),
        "relay.yaml",
        "decimation.factor",
        &["expected a whole number, got 2.5"],
    );
    let p = Project::with(&RELAY.replace("factor: 5", "factor: !env FACTOR"), GLOBAL);
    assert_problem(
        &p.err(),
        "relay.yaml",
        "decimation.factor",
        &["YAML tags are not supported", "!env"],
    );
}

#[test]
fn missing_required_channel_fields() {
    let p = Project::with(
        &relay_with_channels(
            "  - port: 26000\n  - name: b\n    schema: x.avsc\n  - {name: c, port: 26002}\n",
        ),
        GLOBAL,
    );
    let err = p.err();
    assert_problem(
        &err,
        "relay.yaml",
        "channels[0].name",
        &["missing required field \"name\""],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "channels[0].schema",
        &["missing required field \"schema\""],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "channels[1].port",
        &["missing required field \"port\""],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "channels[2].schema",
        &["missing required field \"schema\""],
    );
}

#[test]
fn missing_or_empty_channels() {
    let p = Project::with("decimation: {factor: 2}\n", GLOBAL);
    assert_problem(
        &p.err(),
        "relay.yaml",
        "channels",
        &["missing required section"],
    );
    let p = Project::with("channels: []\n", GLOBAL);
    assert_problem(
        &p.err(),
        "relay.yaml",
        "channels",
        &["at least one channel is required"],
    );
}

#[test]
fn duplicate_channel_names_and_ports() {
    let channels = [
        channel("a", "26000"),
        channel("a", "26001"),
        channel("b", "26000"),
    ]
    .concat();
    let err = Project::with(&relay_with_channels(&channels), GLOBAL).err();
    assert_problem(
        &err,
        "relay.yaml",
        "channels[1].name",
        &["duplicate channel name \"a\"", "channels[0]"],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "channels[2].port",
        &["duplicate channel port 26000", "channels[0]"],
    );
}

#[test]
fn channel_name_format() {
    let long = "x".repeat(65);
    let channels = [
        channel("\"a b\"", "26000"),
        channel(&long, "26001"),
        channel("\"..\"", "26002"),
        channel("\"\"", "26003"),
        channel("\".speeddata\"", "26004"),
    ]
    .concat();
    let err = Project::with(&relay_with_channels(&channels), GLOBAL).err();
    assert_problem(
        &err,
        "relay.yaml",
        "channels[0].name",
        &["invalid channel name \"a b\"", "A-Z a-z 0-9 _ . -"],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "channels[1].name",
        &["invalid channel name", &long],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "channels[2].name",
        &["invalid channel name \"..\""],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "channels[3].name",
        &["must not be empty"],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "channels[4].name",
        &["invalid channel name \".speeddata\"", "may not start with"],
    );
    // 64 characters of the whole alphabet are fine.
    let ok = format!("{}_.-", "aZ09".repeat(15));
    Project::with(&relay_with_channels(&channel(&ok, "26000")), GLOBAL).ok();
}

#[test]
fn port_out_of_range() {
    let channels = [
        channel("a", "0"),
        channel("b", "65536"),
        channel("c", "-1"),
        channel("d", "\"x\""),
    ]
    .concat();
    let err = Project::with(&relay_with_channels(&channels), GLOBAL).err();
    assert_problem(
        &err,
        "relay.yaml",
        "channels[0].port",
        &["must be at least 1, got 0", "1..=65535"],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "channels[1].port",
        &["65536 is out of range", "1..=65535"],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "channels[2].port",
        &["-1 is out of range"],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "channels[3].port",
        &["expected a whole number, got \"x\""],
    );
}

#[test]
fn multicast_address_must_be_multicast() {
    let global = GLOBAL
        .replace("\"239.1.1.1\"", "10.0.0.1")
        .replace("\"239.1.1.2\"", "not-an-ip");
    let err = Project::with(RELAY, &global).err();
    assert_problem(
        &err,
        "global.yaml",
        "multicast.full_rate.address",
        &["10.0.0.1 is not a multicast address", "224.0.0.0/4"],
    );
    assert_problem(
        &err,
        "global.yaml",
        "multicast.decimated.address",
        &["not an IPv4 address: \"not-an-ip\""],
    );
    let relay = relay_with_channels(&format!(
        "{}    decimated: {{address: 240.0.0.1}}\n",
        channel("a", "26000")
    ));
    assert_problem(
        &Project::with(&relay, GLOBAL).err(),
        "relay.yaml",
        "channels[0].decimated.address",
        &["240.0.0.1 is not a multicast address"],
    );
}

#[test]
fn output_port_zero() {
    let err = Project::with(RELAY, &GLOBAL.replace("port: 6001", "port: 0")).err();
    assert_problem(
        &err,
        "global.yaml",
        "multicast.decimated.port",
        &["must be at least 1, got 0"],
    );
}

#[test]
fn input_port_equal_to_an_output_port_is_a_loop() {
    let err = Project::with(&relay_with_channels(&channel("a", "6000")), GLOBAL).err();
    assert_problem(
        &err,
        "relay.yaml",
        "channels[0].port",
        &[
            "input port 6000",
            "full-rate",
            "multicast.full_rate.port in global.yaml",
            "loop",
        ],
    );
    // Against another channel's own output, and against a default port.
    let channels = [
        channel("a", "26000"),
        "    decimated: {port: 26001}\n".to_owned(),
        channel("b", "26001"),
        channel("c", "6001"),
    ]
    .concat();
    let err = Project::with(&relay_with_channels(&channels), "").err();
    assert_problem(
        &err,
        "relay.yaml",
        "channels[1].port",
        &[
            "decimated",
            "channel \"a\"",
            "channels[0].decimated.port in relay.yaml",
        ],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "channels[2].port",
        &["6001", "the default decimated port"],
    );
}

#[test]
fn same_group_for_both_outputs() {
    let err = Project::with(
        RELAY,
        &GLOBAL
            .replace("239.1.1.2", "239.1.1.1")
            .replace("6001", "6000"),
    )
    .err();
    assert_problem(
        &err,
        "global.yaml",
        "multicast.decimated",
        &["same group 239.1.1.1:6000"],
    );
    let relay = relay_with_channels(&format!(
        "{}    full_rate: {{address: 239.1.1.2, port: 6001}}\n",
        channel("a", "26000")
    ));
    assert_problem(
        &Project::with(&relay, GLOBAL).err(),
        "relay.yaml",
        "channels[0].full_rate",
        &["same group 239.1.1.2:6001"],
    );
}

#[test]
fn decimation_factor_below_one() {
    let err = Project::with(&RELAY.replace("factor: 5", "factor: 0"), GLOBAL).err();
    assert_problem(
        &err,
        "relay.yaml",
        "decimation.factor",
        &["must be at least 1, got 0"],
    );
}

#[test]
fn zero_thresholds_and_values() {
    let relay = RELAY
        .replace("threshold: 3600", "threshold: 0")
        .replace("value: 86400", "value: 0");
    let global = format!("{GLOBAL}  flush_interval_ms: 0\n  flush_bytes: 0\nnetwork:\n  ttl: 0\n");
    let err = Project::with(&relay, &global).err();
    assert_problem(
        &err,
        "relay.yaml",
        "rotation.threshold",
        &["must be at least 1, got 0"],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "retention.value",
        &["must be at least 1, got 0"],
    );
    assert_problem(
        &err,
        "global.yaml",
        "storage.flush_interval_ms",
        &["must be at least 1, got 0"],
    );
    assert_problem(
        &err,
        "global.yaml",
        "storage.flush_bytes",
        &["must be at least 1, got 0"],
    );
    assert_problem(
        &err,
        "global.yaml",
        "network.ttl",
        &["must be at least 1, got 0", "1..=255"],
    );
    let err = Project::with(RELAY, &format!("{GLOBAL}network: {{ttl: 256}}\n")).err();
    assert_problem(
        &err,
        "global.yaml",
        "network.ttl",
        &["256 is out of range (allowed 1..=255)"],
    );
}

#[test]
fn unknown_algorithm_mode_and_codec() {
    let relay = RELAY
        .replace("\"downsample\"", "median")
        .replace("\"time\"", "daily")
        .replace("\"ttl\"", "forever");
    let err = Project::with(&relay, &format!("{GLOBAL}  codec: lz4\n")).err();
    assert_problem(
        &err,
        "relay.yaml",
        "decimation.algorithm",
        &[
            "unknown value \"median\"",
            "downsample, average, minmax, rms",
        ],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "rotation.mode",
        &["unknown value \"daily\"", "time, size"],
    );
    assert_problem(
        &err,
        "relay.yaml",
        "retention.mode",
        &["unknown value \"forever\"", "ttl, quota"],
    );
    assert_problem(
        &err,
        "global.yaml",
        "storage.codec",
        &["unknown value \"lz4\"", "null, deflate, snappy, zstandard"],
    );
}

#[test]
fn changing_mode_needs_a_new_threshold() {
    let relay = RELAY
        .replace("threshold: 3600", "")
        .replace("mode: \"time\"", "mode: size");
    let err = Project::with(&relay, GLOBAL).err();
    assert_problem(
        &err,
        "relay.yaml",
        "rotation.threshold",
        &["required when mode is \"size\""],
    );
    let relay = relay_with_channels(&format!(
        "{}    retention: {{mode: quota}}\n",
        channel("a", "26000")
    ));
    let err = Project::with(&relay, GLOBAL).err();
    assert_problem(
        &err,
        "relay.yaml",
        "channels[0].retention.value",
        &["required when mode is \"quota\""],
    );
}

#[test]
fn a_section_in_both_files() {
    let err = Project::with(&format!("{RELAY}storage: {{avro_path: /a}}\n"), GLOBAL).err();
    assert_problem(
        &err,
        "global.yaml",
        "storage",
        &["also defined in", "relay.yaml", "keep it in one file"],
    );
}

#[test]
fn interface_and_bind_address() {
    let global = format!("{GLOBAL}network:\n  bind: 0.0.0.0.0\n  egress_iface: averyveryverylongname\n  multicast_loop: sometimes\n");
    let err = Project::with(RELAY, &global).err();
    assert_problem(
        &err,
        "global.yaml",
        "network.bind",
        &["not an IPv4 address: \"0.0.0.0.0\""],
    );
    assert_problem(
        &err,
        "global.yaml",
        "network.egress_iface",
        &["invalid interface name \"averyveryverylongname\""],
    );
    assert_problem(
        &err,
        "global.yaml",
        "network.multicast_loop",
        &["expected true or false, got \"sometimes\""],
    );
}

#[test]
fn missing_files() {
    let p = Project::empty();
    p.write("config/global.yaml", GLOBAL);
    let err = p.err();
    assert_problem(&err, "relay.yaml", "", &["not found", "relay.yaml"]);
    let nowhere = p.root().join("nowhere");
    let err = load(&nowhere).expect_err("nothing there");
    assert_problem(
        &err,
        "nowhere",
        "",
        &["cannot read the configuration", "No such file"],
    );
}

#[test]
fn half_of_a_config_directory_is_refused() {
    let p = Project::with(RELAY, GLOBAL);
    let err = load(&p.config_dir().join("relay.yaml")).expect_err("global.yaml would be ignored");
    assert_problem(
        &err,
        "relay.yaml",
        "",
        &["global.yaml is next to it", "pass the directory"],
    );
}

#[test]
fn all_problems_are_reported_one_per_line() {
    let relay = relay_with_channels(&[channel("a", "0"), channel("a", "26001")].concat())
        .replace("factor: 5", "factor: 0");
    let err = Project::with(&relay, &GLOBAL.replace("239.1.1.1", "1.1.1.1")).err();
    assert_eq!(err.problems.len(), 4, "{err}");
    assert_eq!(err.to_string().lines().count(), 4, "{err}");
    let _: &dyn std::error::Error = &err;
}
