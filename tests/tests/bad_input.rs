//! Hostile datagrams in the stream, in socket and XDP mode: empty, truncated,
//! with trailing bytes, a datum of another channel's schema, random bytes, an
//! oversize datagram (larger than the XDP ring copy, IP-fragmented on the
//! wire) of garbage, and an oversize but *valid* datum. Every bad one is
//! counted and kept verbatim in the quarantine, none reaches the Avro files,
//! every valid one does, and the channel process never restarts.
//!
//! Also: datagrams with a wrong UDP checksum are dropped in both modes (by
//! the stack in socket mode, by the channel process in XDP mode, where the
//! program passes them on), and ones sent without a checksum are kept.

use std::collections::BTreeSet;
use std::time::Duration;

use apache_avro::types::Value;
use integration_tests::datum::{example_datum, example_fields, example_schema};
use integration_tests::relay::{channel_stats, read_avro_independently, wait_for};
use integration_tests::scenario::{send_from_sender, send_segments_from_sender, start_relay, PORT};
use integration_tests::topology::{Topology, RELAY_IN_ADDR, RELAY_IN_IF, SENDER_ADDR};

const VALID: u32 = 2000;

#[test]
fn bad_datagrams_are_quarantined_in_socket_mode() {
    bad_datagrams_are_quarantined(&["--mode", "socket"]);
}

#[test]
fn bad_datagrams_are_quarantined_in_xdp_mode() {
    bad_datagrams_are_quarantined(&["--mode", "xdp", "--iface", RELAY_IN_IF]);
}

#[test]
fn wrong_udp_checksums_are_dropped_in_socket_mode() {
    wrong_udp_checksums_are_dropped(&["--mode", "socket"]);
}

#[test]
fn wrong_udp_checksums_are_dropped_in_xdp_mode() {
    wrong_udp_checksums_are_dropped(&["--mode", "xdp", "--iface", RELAY_IN_IF]);
}

fn encode(schema: &apache_avro::Schema, value: Value) -> Vec<u8> {
    apache_avro::writer::datum::GenericDatumWriter::builder(schema).build().unwrap().write_value_to_vec(value).unwrap()
}

/// The bad datagrams, each with what it is.
fn bad_datagrams() -> Vec<(&'static str, Vec<u8>)> {
    let schema = example_schema();
    let good = example_datum(&schema, 7);
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"\x00\x01extra");
    let other = apache_avro::Schema::parse_str(
        r#"{"type":"record","name":"other","fields":[{"name":"id","type":"int"},{"name":"temp","type":"float"}]}"#,
    )
    .unwrap();
    let other_datum = encode(&other, Value::Record(vec![("id".into(), Value::Int(3)), ("temp".into(), Value::Float(21.5))]));
    // Deterministic noise (an LCG): the same bytes on every run.
    let mut x: u32 = 12345;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect()
    };
    vec![
        ("empty", Vec::new()),
        ("truncated", good[..good.len() - 5].to_vec()),
        ("one byte", good[..1].to_vec()),
        ("trailing bytes", trailing),
        ("another channel's schema", other_datum),
        ("random bytes", noise(200)),
        ("oversize garbage", noise(20_000)),
    ]
}

fn bad_datagrams_are_quarantined(mode: &[&str]) {
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    let (relay, data) = start_relay(&topo, dir.path(), mode);
    let ch = data.join("example");
    let pid = channel_stats(&data, "example").unwrap()["pid"].clone();

    // An oversize but valid datum: a 20,000-character message.
    let schema = example_schema();
    let big_seq = VALID;
    let mut fields = example_fields(big_seq);
    fields[1].1 = Value::String("x".repeat(20_000));
    let big = encode(&schema, Value::Record(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));

    let bad = bad_datagrams();
    let mut stream: Vec<Vec<u8>> = Vec::new();
    for seq in 0..VALID {
        stream.push(example_datum(&schema, seq));
        if seq % 250 == 100 {
            let (_, d) = &bad[(seq / 250) as usize % bad.len()];
            stream.push(d.clone());
        }
    }
    // Each bad kind at least once more, and the big valid datum.
    stream.extend(bad.iter().map(|(_, d)| d.clone()));
    stream.push(big.clone());
    let bad_sent: Vec<Vec<u8>> = stream.iter().filter(|d| bad.iter().any(|(_, b)| b == *d)).cloned().collect();
    let total = stream.len() as u64;
    send_from_sender(&topo, stream);
    wait_for("every datagram to be taken in", Duration::from_secs(20), || {
        channel_stats(&data, "example").is_some_and(|s| s["datagrams_in"] == total)
    });
    let log = relay.stop();
    let s = channel_stats(&data, "example").unwrap();
    assert_eq!(s["pid"], pid, "the channel process restarted:\n{log}");
    assert!(!log.contains("exited"), "{log}");
    assert_eq!(s["malformed"], bad_sent.len(), "{s}");
    assert_eq!(s["quarantined"], bad_sent.len(), "{s}");
    assert_eq!(s["lost"], 0, "{s}");

    // The quarantine holds each bad datagram verbatim, with a reason.
    let lines = std::fs::read_to_string(ch.join("quarantine.jsonl")).unwrap();
    let kept: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // As multisets: in XDP mode the oversize datagram comes through the
    // socket (too long for the ring), not in order with the ring's records.
    let mut kept_hex: Vec<String> = kept.iter().map(|q| q["hex"].as_str().unwrap().to_owned()).collect();
    let mut sent_hex: Vec<String> = bad_sent.iter().map(|d| d.iter().map(|b| format!("{b:02x}")).collect()).collect();
    kept_hex.sort();
    sent_hex.sort();
    assert!(kept_hex == sent_hex, "quarantine differs from what was sent: {} kept, {} sent", kept_hex.len(), sent_hex.len());
    for (what, d) in &bad {
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        let q = kept.iter().find(|q| q["hex"] == hex.as_str()).unwrap();
        assert!(!q["reason"].as_str().unwrap().is_empty(), "{what}: no reason");
        eprintln!("{what}: {}", q["reason"]);
    }

    // The Avro files hold every valid datum, the big one included, and nothing else.
    let records = read_avro_independently(&ch);
    let counters: BTreeSet<u64> = records.iter().map(|r| r["counter"].as_u64().unwrap()).collect();
    assert_eq!(records.len() as u32, VALID + 1);
    assert_eq!(counters, (0..=u64::from(VALID)).collect::<BTreeSet<u64>>());
    let big_back = records.iter().find(|r| r["counter"] == big_seq).unwrap();
    assert_eq!(big_back["message"].as_str().unwrap().len(), 20_000);
}

/// A UDP segment from the sender to the channel's port carrying `payload`,
/// its checksum right, absent (0) or wrong.
fn segment(payload: &[u8], check: Check) -> Vec<u8> {
    let mut seg = integration_tests::frames::udp_segment(SENDER_ADDR.octets(), RELAY_IN_ADDR.octets(), PORT, payload);
    let right = u16::from_be_bytes([seg[6], seg[7]]);
    let c = match check {
        Check::Right => right,
        Check::Absent => 0,
        // Never 0 (which would read as "no checksum").
        Check::Wrong => match right ^ 0x0100 {
            0 => 0x0101,
            c => c,
        },
    };
    seg[6..8].copy_from_slice(&c.to_be_bytes());
    seg
}

#[derive(Clone, Copy)]
enum Check {
    Right,
    Absent,
    Wrong,
}

/// The UDP `InCsumErrors` counter of the relay host's stack.
fn udp_checksum_errors(topo: &Topology) -> u64 {
    let out = topo.relay.command("cat").arg("/proc/net/snmp").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut udp = text.lines().filter(|l| l.starts_with("Udp: "));
    let (names, values) = (udp.next().unwrap(), udp.next().unwrap());
    let i = names.split_whitespace().position(|n| n == "InCsumErrors").unwrap();
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

/// 1,000 valid datums with a right checksum, 50 with none, and 50 with a
/// wrong one, interleaved: the files hold the first 1,050 and none of the
/// others, whichever path drops them.
fn wrong_udp_checksums_are_dropped(mode: &[&str]) {
    const RIGHT: u32 = 1000;
    const ABSENT: u32 = 50;
    const WRONG: u32 = 50;
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    let (relay, data) = start_relay(&topo, dir.path(), mode);
    let xdp = mode.contains(&"xdp");
    let schema = example_schema();
    let errors_before = udp_checksum_errors(&topo);

    // Counters: right 0.., absent 10,000.., wrong 20,000.. (each a valid datum).
    let mut segments = Vec::new();
    for i in 0..RIGHT {
        segments.push(segment(&example_datum(&schema, i), Check::Right));
        if i % 20 == 10 {
            let k = i / 20;
            segments.push(segment(&example_datum(&schema, 10_000 + k), Check::Absent));
            segments.push(segment(&example_datum(&schema, 20_000 + k), Check::Wrong));
        }
    }
    send_segments_from_sender(&topo, segments);
    let kept = u64::from(RIGHT + ABSENT);
    // In XDP mode the channel reads all of them; in socket mode the stack
    // keeps the wrong ones from it.
    let reach = if xdp { kept + u64::from(WRONG) } else { kept };
    wait_for("the datagrams to reach the channel", Duration::from_secs(20), || {
        channel_stats(&data, "example").is_some_and(|s| {
            s["datagrams_in"].as_u64().unwrap() + s["bad_udp_checksum"].as_u64().unwrap_or(0) >= reach
        })
    });
    let log = relay.stop();
    let s = channel_stats(&data, "example").unwrap();
    assert_eq!(s["datagrams_in"], kept, "{s}");
    assert_eq!(s["malformed"], 0, "{s}");
    if xdp {
        // The program saw them all and passed them to the channel, which dropped these.
        assert_eq!(s["bad_udp_checksum"], WRONG, "{s}");
        assert!(log.contains("wrong UDP checksum"), "no warning in the log:\n{log}");
    } else {
        // The stack dropped them before the relay's socket.
        assert_eq!(s["bad_udp_checksum"], 0, "{s}");
        assert!(udp_checksum_errors(&topo) >= errors_before + u64::from(WRONG), "the stack did not see the wrong checksums");
    }
    let records = read_avro_independently(&data.join("example"));
    let counters: BTreeSet<u64> = records.iter().map(|r| r["counter"].as_u64().unwrap()).collect();
    let want: BTreeSet<u64> = (0..u64::from(RIGHT)).chain(10_000..10_000 + u64::from(ABSENT)).collect();
    assert_eq!(records.len() as u64, kept);
    assert!(counters == want, "archived: {} records, {} of them not sent right", records.len(), counters.difference(&want).count());
}
