//! The end-to-end scenario both input modes must pass: 10,000 datums of the
//! example schema plus one malformed datagram, from the sender host through
//! the relay host to a subscriber host. Checked: every datagram on the
//! full-rate group, in order and byte-identical, from the relay's egress
//! address; exactly 10,000/N on the decimated group; the Avro files (read by
//! Python's fastavro and avro) hold exactly the sent records; the malformed
//! datagram is in quarantine, not in the files.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::datum::{example_datum, example_json, example_schema};
use crate::relay::{channel_stats, read_avro_independently, wait_for, RelayProcess};
use crate::subscriber::{Received, Subscriber};
use crate::topology::*;

pub const N: u32 = 10_000;
pub const FACTOR: u32 = 10;
pub const MALFORMED_AT: u32 = 5_000;
pub const PORT: u16 = 26000;
pub const FULL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 1), 6000);
pub const DECI: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 2), 6001);

/// A SpeedData-style config directory (relay.yaml + global.yaml) in
/// `root/config`; `extra_global` is appended to global.yaml.
pub fn write_config(root: &Path, extra_global: &str) -> PathBuf {
    let cfg = root.join("config");
    std::fs::create_dir_all(cfg.join("agents")).unwrap();
    std::fs::copy(crate::relay::example_schema_path(), cfg.join("agents/example.avsc")).unwrap();
    std::fs::write(
        cfg.join("relay.yaml"),
        format!(
            "channels:\n  - name: \"example\"\n    port: {PORT}\n    schema: \"config/agents/example.avsc\"\n\
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
    cfg
}

/// Makes the channel of the config in `cfg` (from [`write_config`]) take
/// its input from multicast `group`.
pub fn set_input_group(cfg: &Path, group: Ipv4Addr) {
    edit_channel(cfg, &format!("    port: {PORT}\n    input_group: \"{group}\"\n"));
}

/// Moves the channel of the config in `cfg` (from [`write_config`]) to `port`.
pub fn set_port(cfg: &Path, port: u16) {
    edit_channel(cfg, &format!("    port: {port}\n"));
}

/// Replaces the channel's `port:` line in relay.yaml with `lines`.
fn edit_channel(cfg: &Path, lines: &str) {
    let relay_yaml = cfg.join("relay.yaml");
    let text = std::fs::read_to_string(&relay_yaml).unwrap().replace(&format!("    port: {PORT}\n"), lines);
    std::fs::write(&relay_yaml, text).unwrap();
}

/// The datagrams as sent: the example stream with one truncated datum in the middle.
pub fn datagrams() -> Vec<Vec<u8>> {
    let schema = example_schema();
    let mut sent = Vec::new();
    for seq in 0..N {
        if seq == MALFORMED_AT {
            let mut bad = example_datum(&schema, seq);
            bad.truncate(bad.len() - 3);
            sent.push(bad);
        }
        sent.push(example_datum(&schema, seq));
    }
    sent
}

/// Sends the datagrams from the sender host to the relay's channel port, paced
/// in bursts of 25 a millisecond, so the test checks the relay, not buffer
/// sizes: larger bursts can overflow the 256-frame veth ring that feeds native
/// XDP on the subscriber's interface when the CPUs are busy.
pub fn send_from_sender(topo: &Topology, datagrams: Vec<Vec<u8>>) {
    send_from_sender_to(topo, SocketAddrV4::new(RELAY_IN_ADDR, PORT), datagrams);
}

/// [`send_from_sender`] to another destination (a multicast input group:
/// the sender needs a multicast route).
pub fn send_from_sender_to(topo: &Topology, to: SocketAddrV4, datagrams: Vec<Vec<u8>>) {
    topo.sender
        .spawn(move || {
            let s = UdpSocket::bind((SENDER_ADDR, 0)).unwrap();
            s.connect(to).unwrap();
            paced(&datagrams, |d| {
                s.send(d).unwrap();
            });
        })
        .join()
        .unwrap();
}

/// Sends UDP segments (header and payload, checksum as given) from the
/// sender host to the relay's input address through a raw socket, which
/// leaves the checksum alone (a UDP socket always computes a right one).
/// Paced like [`send_from_sender`].
pub fn send_segments_from_sender(topo: &Topology, segments: Vec<Vec<u8>>) {
    topo.sender
        .spawn(move || {
            // SAFETY: plain socket(2); the fd is owned at once.
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_UDP) };
            assert!(fd >= 0, "raw UDP socket: {}", std::io::Error::last_os_error());
            // SAFETY: a fresh fd, owned by nothing else.
            let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            let to = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: 0,
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(RELAY_IN_ADDR.octets()) },
                sin_zero: [0; 8],
            };
            paced(&segments, |seg| {
                // SAFETY: valid buffer and address for the call's duration.
                let n = unsafe {
                    libc::sendto(
                        std::os::fd::AsRawFd::as_raw_fd(&fd),
                        seg.as_ptr().cast(),
                        seg.len(),
                        0,
                        (&to as *const libc::sockaddr_in).cast(),
                        std::mem::size_of::<libc::sockaddr_in>() as u32,
                    )
                };
                assert_eq!(n, seg.len() as isize, "sendto: {}", std::io::Error::last_os_error());
            });
        })
        .join()
        .unwrap();
}

/// Calls `send` on each datagram, 25 a millisecond (see [`send_from_sender`]).
fn paced(datagrams: &[Vec<u8>], mut send: impl FnMut(&[u8])) {
    for (i, d) in datagrams.iter().enumerate() {
        send(d);
        if i % 25 == 24 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Starts the relay on the relay host with the scenario's config (egress
/// `rout0`, no API) and `mode_args`, and waits for its channel. Returns the
/// relay and the data directory.
pub fn start_relay(topo: &Topology, dir: &Path, mode_args: &[&str]) -> (RelayProcess, PathBuf) {
    start_relay_with(topo, dir, mode_args, |_| {})
}

/// [`start_relay`], with `edit` applied to the config directory first.
pub fn start_relay_with(topo: &Topology, dir: &Path, mode_args: &[&str], edit: impl FnOnce(&Path)) -> (RelayProcess, PathBuf) {
    let cfg = write_config(dir, "network:\n  egress_iface: \"rout0\"\n");
    edit(&cfg);
    let data = dir.join("data");
    let mut args = vec!["run", "--api", "off", "--config", cfg.to_str().unwrap()];
    args.extend_from_slice(mode_args);
    let relay = RelayProcess::start_net_only(&topo.relay, &args, dir.join("relay.log"));
    wait_for("the channel to start", Duration::from_secs(15), || channel_stats(&data, "example").is_some());
    (relay, data)
}

pub struct Outcome {
    pub sent: Vec<Vec<u8>>,
    pub full: Vec<Received>,
    pub decimated: Vec<Received>,
    pub stats: serde_json::Value,
    pub data: PathBuf,
    pub log: String,
}

/// Runs the relay with `run_args` (plus `--config`) on the relay host, sends
/// the stream, stops the relay cleanly and collects what came out.
/// `during` runs while the relay is up and the stream has been received.
pub fn run(topo: &Topology, dir: &Path, run_args: &[&str], during: impl FnOnce()) -> Outcome {
    run_with(topo, dir, RelayProcess::start, run_args, during)
}

/// [`run`], starting the relay with `launch` (e.g. [`RelayProcess::start_net_only`]).
pub fn run_with(
    topo: &Topology,
    dir: &Path,
    launch: impl FnOnce(&crate::netns::Netns, &[&str], PathBuf) -> RelayProcess,
    run_args: &[&str],
    during: impl FnOnce(),
) -> Outcome {
    let cfg = write_config(dir, "network:\n  egress_iface: \"rout0\"\n  ttl: 4\n");
    let data = dir.join("data");
    let full_sub = Subscriber::start(&topo.subscriber, FULL, SUBSCRIBER_ADDR);
    let deci_sub = Subscriber::start(&topo.subscriber, DECI, SUBSCRIBER_ADDR);
    let mut args = vec!["run", "--config", cfg.to_str().unwrap()];
    args.extend_from_slice(run_args);
    let relay = launch(&topo.relay, &args, dir.join("relay.log"));
    wait_for("the channel to start", Duration::from_secs(15), || channel_stats(&data, "example").is_some());

    let sent = datagrams();
    send_from_sender(topo, sent.clone());
    let total = sent.len() as u64;
    wait_for("the channel to receive every datagram", Duration::from_secs(20), || {
        channel_stats(&data, "example").is_some_and(|s| s["datagrams_in"] == total)
    });
    during();
    let log = relay.stop();
    Outcome {
        sent,
        full: full_sub.finish(),
        decimated: deci_sub.finish(),
        stats: channel_stats(&data, "example").unwrap(),
        data,
        log,
    }
}

/// The checks every mode must pass.
pub fn check(o: &Outcome) {
    let log = &o.log;
    // Full rate: every datagram, in order, byte-identical, from the relay's egress address.
    assert_eq!(o.full.len(), o.sent.len(), "full-rate count; relay log:\n{log}");
    for (i, (got, want)) in o.full.iter().zip(&o.sent).enumerate() {
        assert_eq!(&got.payload, want, "full-rate datagram {i} differs");
        assert_eq!(got.source.ip(), std::net::IpAddr::V4(RELAY_OUT_ADDR), "full-rate source");
    }
    // Decimated: the last datum of each window of FACTOR valid datums.
    let schema = example_schema();
    let want: Vec<Vec<u8>> = (0..N).filter(|s| s % FACTOR == FACTOR - 1).map(|s| example_datum(&schema, s)).collect();
    assert_eq!(o.decimated.len() as u32, N / FACTOR, "decimated count; relay log:\n{log}");
    for (i, (got, want)) in o.decimated.iter().zip(&want).enumerate() {
        assert_eq!(&got.payload, want, "decimated datagram {i} differs");
    }
    // Archive: exactly the valid records, in order, over several rotated files.
    let dir = o.data.join("example");
    let records = read_avro_independently(&dir);
    assert_eq!(records.len() as u32, N);
    for (seq, r) in records.iter().enumerate() {
        assert_eq!(r, &example_json(seq as u32), "record {seq}");
    }
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "avro"))
        .count();
    assert!(files >= 2, "size rotation should have produced several files, got {files}");
    // Quarantine: the malformed datagram, verbatim, with a reason.
    let q = std::fs::read_to_string(dir.join("quarantine.jsonl")).expect("quarantine file");
    let lines: Vec<serde_json::Value> = q.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1);
    let hex: String = o.sent[MALFORMED_AT as usize].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(lines[0]["hex"], hex);
    assert!(!lines[0]["reason"].as_str().unwrap().is_empty());
    // Counters agree.
    let s = &o.stats;
    assert_eq!(s["malformed"], 1);
    assert_eq!(s["quarantined"], 1);
    assert_eq!(s["records_written"], N);
    assert_eq!(s["decimated_out"], N / FACTOR);
    assert_eq!(s["lost"], 0);
}
