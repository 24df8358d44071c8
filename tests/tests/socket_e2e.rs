//! Socket mode end to end: sender host → relay host → subscriber host, all in
//! namespaces this test creates. 10,000 datums of the example schema plus one
//! malformed datagram: the subscriber gets every datagram on the full-rate
//! group in order and byte-identical, exactly 10,000/N on the decimated group,
//! and the Avro files (read by Python's fastavro and avro) hold exactly the
//! sent records; the malformed datagram is in quarantine, not in the files.

use std::net::{SocketAddrV4, UdpSocket};
use std::path::Path;
use std::time::Duration;

use integration_tests::datum::{example_datum, example_json, example_schema};
use integration_tests::relay::{channel_stats, read_avro_independently, wait_for, RelayProcess};
use integration_tests::subscriber::Subscriber;
use integration_tests::topology::*;

const N: u32 = 10_000;
const FACTOR: u32 = 10;
const MALFORMED_AT: u32 = 5_000;
const FULL: SocketAddrV4 = SocketAddrV4::new(std::net::Ipv4Addr::new(239, 1, 1, 1), 6000);
const DECI: SocketAddrV4 = SocketAddrV4::new(std::net::Ipv4Addr::new(239, 1, 1, 2), 6001);

/// A SpeedData-style config directory (relay.yaml + global.yaml) in `root/config`.
fn write_config(root: &Path, extra_global: &str) {
    let cfg = root.join("config");
    std::fs::create_dir_all(cfg.join("agents")).unwrap();
    std::fs::copy(integration_tests::relay::example_schema_path(), cfg.join("agents/example.avsc")).unwrap();
    std::fs::write(
        cfg.join("relay.yaml"),
        format!(
            "channels:\n  - name: \"example\"\n    port: 26000\n    schema: \"config/agents/example.avsc\"\n\
             decimation:\n  enabled: true\n  factor: {FACTOR}\n  algorithm: \"downsample\"\n\
             rotation:\n  mode: \"size\"\n  threshold: 200000\n\
             retention:\n  mode: \"ttl\"\n  value: 86400\n"
        ),
    )
    .unwrap();
    std::fs::write(
        cfg.join("global.yaml"),
        format!(
            "multicast:\n  full_rate:\n    address: \"{}\"\n    port: {}\n  decimated:\n    address: \"{}\"\n    port: {}\n\
             storage:\n  avro_path: \"./data\"\n{extra_global}",
            FULL.ip(),
            FULL.port(),
            DECI.ip(),
            DECI.port()
        ),
    )
    .unwrap();
}

#[test]
fn socket_mode_relays_decimates_archives_and_quarantines() {
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    write_config(dir.path(), "network:\n  egress_iface: \"rout0\"\n");
    let data = dir.path().join("data");

    let full_sub = Subscriber::start(&topo.subscriber, FULL, SUBSCRIBER_ADDR);
    let deci_sub = Subscriber::start(&topo.subscriber, DECI, SUBSCRIBER_ADDR);
    let cfg_dir = dir.path().join("config");
    let relay = RelayProcess::start(
        &topo.relay,
        &["run", "--config", cfg_dir.to_str().unwrap(), "--mode", "socket"],
        dir.path().join("relay.log"),
    );
    wait_for("the channel to start", Duration::from_secs(10), || channel_stats(&data, "example").is_some());

    // The datagrams as sent, with one malformed datum (a truncated one) in the middle.
    let schema = example_schema();
    let mut sent: Vec<Vec<u8>> = Vec::new();
    for seq in 0..N {
        if seq == MALFORMED_AT {
            let mut bad = example_datum(&schema, seq);
            bad.truncate(bad.len() - 3);
            sent.push(bad);
        }
        sent.push(example_datum(&schema, seq));
    }
    let to_send = sent.clone();
    topo.sender
        .spawn(move || {
            let s = UdpSocket::bind((SENDER_ADDR, 0)).unwrap();
            s.connect((RELAY_IN_ADDR, 26000)).unwrap();
            for (i, d) in to_send.iter().enumerate() {
                s.send(d).unwrap();
                // Paced (~100k/s) so the test checks the relay, not buffer sizes.
                if i % 100 == 99 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
        .join()
        .unwrap();

    let total = sent.len() as u64;
    wait_for("the relay to receive every datagram", Duration::from_secs(20), || {
        channel_stats(&data, "example").is_some_and(|s| s["datagrams_in"] == total)
    });
    let log = relay.stop();
    let stats = channel_stats(&data, "example").unwrap();
    let full = full_sub.finish();
    let deci = deci_sub.finish();

    // Full rate: every datagram, in order, byte-identical, from the relay.
    assert_eq!(full.len(), sent.len(), "full-rate count; relay log:\n{log}");
    for (i, (got, want)) in full.iter().zip(&sent).enumerate() {
        assert_eq!(&got.payload, want, "full-rate datagram {i} differs");
        assert_eq!(got.source.ip(), std::net::IpAddr::V4(RELAY_OUT_ADDR));
    }
    // Decimated: the last datum of each window of FACTOR valid datums.
    let want_deci: Vec<Vec<u8>> = (0..N).filter(|s| s % FACTOR == FACTOR - 1).map(|s| example_datum(&schema, s)).collect();
    assert_eq!(deci.len() as u32, N / FACTOR);
    for (i, (got, want)) in deci.iter().zip(&want_deci).enumerate() {
        assert_eq!(&got.payload, want, "decimated datagram {i} differs");
    }
    // Archive: exactly the valid records, in order, over several rotated files.
    let records = read_avro_independently(&data.join("example"));
    assert_eq!(records.len() as u32, N);
    for (seq, r) in records.iter().enumerate() {
        assert_eq!(r, &example_json(seq as u32), "record {seq}");
    }
    let files = std::fs::read_dir(data.join("example"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "avro"))
        .count();
    assert!(files >= 2, "size rotation should have produced several files, got {files}");
    // Quarantine: the malformed datagram, verbatim, with a reason.
    let q = std::fs::read_to_string(data.join("example/quarantine.jsonl")).expect("quarantine file");
    let lines: Vec<serde_json::Value> = q.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1);
    let bad = &sent[MALFORMED_AT as usize];
    let hex: String = bad.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(lines[0]["hex"], hex);
    assert!(!lines[0]["reason"].as_str().unwrap().is_empty());
    // Counters agree.
    assert_eq!(stats["malformed"], 1);
    assert_eq!(stats["quarantined"], 1);
    assert_eq!(stats["records_written"], N);
    assert_eq!(stats["full_rate_out"], total);
    assert_eq!(stats["decimated_out"], N / FACTOR);
    assert_eq!(stats["lost"], 0);
}

#[test]
fn invalid_config_is_refused_before_anything_starts() {
    let dir = integration_tests::relay::tempdir();
    write_config(dir.path(), "");
    let relay_yaml = dir.path().join("config/relay.yaml");
    let text = std::fs::read_to_string(&relay_yaml).unwrap().replace("port: 26000", "port: 70000");
    std::fs::write(&relay_yaml, text).unwrap();
    let out = std::process::Command::new(integration_tests::relay::binary())
        .args(["run", "--mode", "socket", "--config"])
        .arg(dir.path().join("config"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("relay.yaml") && err.contains("channels[0].port") && err.contains("70000"), "{err}");
    assert!(!dir.path().join("data").exists(), "nothing may start on an invalid config");
}
