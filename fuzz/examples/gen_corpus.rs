//! Writes the seed corpus, `fuzz/corpus/<target>/`, from the same helpers
//! the targets use: `cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus`.
//! Deterministic, so rerunning it leaves the files as they are.

use std::fs;
use std::path::{Path, PathBuf};

use apache_avro::types::Value;
use speeddata_xdp_fuzz::cursor::Cursor;
use speeddata_xdp_fuzz::frame;
use speeddata_xdp_fuzz::gen::Generator;
use speeddata_xdp_fuzz::schemas;

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    validate_datum(&dir(&corpus, "validate_datum"));
    config_load(&dir(&corpus, "config_load"));
    frames(&dir(&corpus, "frame"));
    decimate(&dir(&corpus, "decimate"));
}

/// An empty `corpus/<target>/`.
fn dir(corpus: &Path, target: &str) -> PathBuf {
    let d = corpus.join(target);
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// Deterministic filler bytes (xorshift), standing in for fuzz input.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The `i`-th sample of the example stream (as the demo source sends).
fn example_value(i: u64) -> Value {
    let t = i as f64 / 1000.0;
    Value::Record(vec![
        (
            "time".into(),
            Value::Long(1_700_000_000_000_000_000 + i as i64 * 200_000),
        ),
        ("message".into(), Value::String(format!("sample {i}"))),
        ("counter".into(), Value::Int(i as i32)),
        ("sine_wave".into(), Value::Double(t.sin())),
        ("ramp".into(), Value::Double(t % 1.0)),
        (
            "square_wave".into(),
            Value::Double(if i % 100 < 50 { 1.0 } else { -1.0 }),
        ),
        (
            "noise".into(),
            Value::Double((i.wrapping_mul(2654435761) % 1000) as f64 / 1000.0),
        ),
    ])
}

fn example_datum(i: u64) -> Vec<u8> {
    let schema = schemas::parse(schemas::EXAMPLE);
    Generator::new(&schema).encode(example_value(i))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::write(dir.join(name), bytes).unwrap();
}

/// Selector byte (0 example, 1 rich, 2 zero-size) + datum.
fn validate_datum(dir: &Path) {
    for i in [0, 7] {
        write(
            dir,
            &format!("example-{i}"),
            &[&[0u8][..], &example_datum(i)].concat(),
        );
    }
    let rich = schemas::parse(schemas::RICH);
    let g = Generator::new(&rich);
    for seed in 0..4 {
        let datum = g.datum(&mut Cursor::new(&noise(seed, 400)));
        write(dir, &format!("rich-{seed}"), &[&[1u8][..], &datum].concat());
    }
    let zero = schemas::parse(schemas::ZERO_SIZE);
    let datum = Generator::new(&zero).datum(&mut Cursor::new(&noise(9, 64)));
    write(dir, "zero-size", &[&[2u8][..], &datum].concat());
}

fn config_load(dir: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    write(
        dir,
        "repo-relay.yaml",
        &fs::read(repo.join("config/relay.yaml")).unwrap(),
    );
    // SpeedData's own file, as its users have it (beside the repository in CI too).
    let fixture = repo.join("../shared/fixtures/speeddata/config/relay.yaml");
    if let Ok(text) = fs::read(&fixture) {
        write(dir, "speeddata-relay.yaml", &text);
    }
    write(
        dir,
        "overrides.yaml",
        br#"channels:
  - name: "example"
    port: 26000
    schema: "config/agents/example.avsc"
    full_rate: {address: "239.1.2.1", port: 6100}
    decimated: {port: 6101}
    decimation: {interval_ms: 10, algorithm: "minmax", time_field: "time"}
    rotation: {mode: "size", threshold: 104857600}
  - name: rich.1
    port: 26001
    schema: agents/rich.avsc
    decimation: {factor: 50, algorithm: rms}
    retention: {mode: quota, value: 1000000}
decimation: {enabled: yes, factor: 10, algorithm: average}
rotation: {mode: time, threshold: 60}
retention: {mode: ttl, value: 3600}
network: {bind: "127.0.0.1", ttl: 4, multicast_loop: false}
"#,
    );
    write(
        dir,
        "errors.yaml",
        br#"channels:
  - {name: "bad name!", port: 70000, schema: "missing.avsc"}
  - {name: "example", port: 26000, schema: "config/agents/example.avsc", decimation: {factor: 5, interval_ms: 10}}
storage: {avro_path: "./elsewhere"}
"#,
    );
}

/// Control bytes the frame target reads first: flags, the channel's group,
/// its source address, TTL and group port (little-endian).
fn control(flags: u8) -> Vec<u8> {
    let mut c = vec![flags, 239, 1, 2, 3, 198, 51, 100, 1, 8];
    c.extend_from_slice(&26900u16.to_le_bytes());
    c
}

fn frames(dir: &Path) {
    let src = ([192, 0, 2, 1], 40000);
    let payload = example_datum(3);
    let cases: [(&str, u8, Vec<u8>); 8] = [
        (
            "forward",
            0,
            frame::build(src, ([192, 0, 2, 2], 26001), 0, &payload, true, 0),
        ),
        (
            "forward-no-udp-checksum",
            0,
            frame::build(src, ([192, 0, 2, 2], 26001), 0, &payload, false, 0),
        ),
        (
            "forward-ip-options",
            0,
            frame::build(src, ([192, 0, 2, 2], 26001), 8, &payload, true, 0),
        ),
        (
            "forward-padded",
            0,
            frame::build(src, ([192, 0, 2, 2], 26001), 0, b"x", true, 17),
        ),
        (
            "group",
            0,
            frame::build(src, ([239, 1, 2, 4], 26003), 0, &payload, true, 0),
        ),
        (
            "ring-only",
            0,
            frame::build(src, ([192, 0, 2, 2], 26002), 0, &payload, true, 0),
        ),
        (
            "no-channel",
            0,
            frame::build(src, ([192, 0, 2, 2], 27000), 0, &payload, true, 0),
        ),
        // REPAIR | KEEP_FRAGMENT over noise: a repaired frame that may be a fragment.
        ("repair-noise", 0x01 | 0x10, noise(5, 120)),
    ];
    for (name, flags, f) in cases {
        write(dir, name, &[control(flags), f].concat());
    }
    let mut fragment = frame::build(src, ([192, 0, 2, 2], 26001), 0, &payload, true, 0);
    fragment[14 + 6] = 0x20; // MF
    write(dir, "fragment", &[control(0), fragment].concat());
    let mut arp = frame::build(src, ([192, 0, 2, 2], 26001), 0, &payload, true, 0);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    write(dir, "not-ipv4", &[control(0), arp].concat());
}

/// Case, algorithm, window shape and size, start time, then operations
/// (0-3 push a new datum, 4 repeat, 5 advance, 6 poll, 7 step back).
fn decimate(dir: &Path) {
    for case in 0..2u8 {
        for alg in 0..4u8 {
            for (shape, window) in [(0u8, [5u8, 0]), (2, [10, 0])] {
                let mut input = vec![case, alg, shape, window[0]];
                if shape == 2 {
                    input.push(window[1]);
                }
                input.extend_from_slice(&3_000_000u32.to_le_bytes());
                let mut ops = noise(u64::from(case * 16 + alg * 4 + shape), 600);
                // Mostly pushes, some time passing, a poll now and then.
                for (i, b) in ops.iter_mut().enumerate() {
                    if i % 40 == 0 {
                        *b = [0, 5, 6, 0, 4, 5, 7, 6][(i / 40) % 8];
                    }
                }
                input.extend_from_slice(&ops);
                write(dir, &format!("case{case}-alg{alg}-shape{shape}"), &input);
            }
        }
    }
}
