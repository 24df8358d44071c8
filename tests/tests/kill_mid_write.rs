//! A channel process killed with SIGKILL mid-write at 10,000 datums/s, twice,
//! in socket and in XDP mode: every file left behind is readable by an
//! independent reader, each restarted process continues in a new file, no
//! record is written twice, and at most the one receive batch each killed
//! process held (≤ 64 datums) is missing. Everything else adds up exactly:
//! sent = archived + quarantined + counted drops + (≤ 64 per kill).

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use integration_tests::datum::{example_datum, example_schema};
use integration_tests::relay::{channel_stats, process_state, read_avro_independently, wait_for};
use integration_tests::scenario::{start_relay, PORT};
use integration_tests::topology::{Topology, RELAY_IN_ADDR, RELAY_IN_IF, SENDER_ADDR};

const RATE: u32 = 10_000;
const SECONDS: u32 = 4;
const TOTAL: u32 = RATE * SECONDS;
/// Every this many datums one truncated (malformed) datagram is sent too.
const MALFORMED_EVERY: u32 = 1000;
/// The most datums one receive batch holds (`socket_io::BATCH`).
const BATCH: u64 = 64;
const KILLS: usize = 2;

#[test]
fn killed_channel_in_socket_mode_loses_at_most_its_batch() {
    killed_channel_loses_at_most_its_batch(&["--mode", "socket"], false);
}

#[test]
fn killed_channel_in_xdp_mode_loses_at_most_its_batch() {
    killed_channel_loses_at_most_its_batch(&["--mode", "xdp", "--iface", RELAY_IN_IF], true);
}

fn killed_channel_loses_at_most_its_batch(mode: &[&str], xdp: bool) {
    let topo = Topology::new();
    let dir = integration_tests::relay::tempdir();
    let (relay, data) = start_relay(&topo, dir.path(), mode);
    let ch = data.join("example");

    let start = Instant::now();
    let sender = topo.sender.spawn(send_paced);
    // Kill at 1/3 and 2/3 of the stream, each time while a block is pending
    // (journaled, not yet written), so every kill exercises recovery.
    let mut killed = Vec::new();
    for k in 1..=KILLS as u32 {
        let at = start + Duration::from_millis(u64::from(SECONDS * 1000 * k / (KILLS as u32 + 1)));
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let p = pid(&data).expect("channel running");
        assert!(killed.last() != Some(&p), "the channel was not restarted after the last kill");
        kill_with_pending_block(p, &ch);
        killed.push(p);
        wait_for("the channel to be restarted", Duration::from_secs(10), || pid(&data).is_some_and(|n| n != p));
    }
    let (sent_valid, sent_malformed) = sender.join().unwrap();
    // Settle: what is in the socket or ring is drained by the last process.
    let settled = |s: &serde_json::Value| s["datagrams_in"].as_u64();
    let mut last = None;
    wait_for("the last channel process to settle", Duration::from_secs(20), || {
        std::thread::sleep(Duration::from_millis(300));
        let now = channel_stats(&data, "example").and_then(|s| settled(&s));
        let done = now.is_some() && now == last;
        last = now;
        done
    });
    let log = relay.stop();

    // Drops the relay counted: the kernel's ring drops (XDP) or the input
    // socket's receive-buffer drops (socket mode).
    let drops = if xdp {
        let k: serde_json::Value = serde_json::from_slice(&std::fs::read(ch.join("xdp.json")).expect("xdp.json")).unwrap();
        k["ring_drops"].as_u64().unwrap()
    } else {
        udp_rcvbuf_errors(&topo)
    };
    let records = read_avro_independently(&ch);
    let counters: Vec<u64> = records.iter().map(|r| r["counter"].as_u64().unwrap()).collect();
    let unique: BTreeSet<u64> = counters.iter().copied().collect();
    assert_eq!(unique.len(), counters.len(), "a record was written twice");
    let mut sorted = counters.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, counters, "records out of order across files");
    let quarantined = quarantine_lines(&ch);
    let files = avro_files(&ch);
    let missing = sent_valid + sent_malformed - counters.len() as u64 - quarantined - drops;
    let recovered: Vec<&str> = log.lines().filter(|l| l.contains("recovered") && l.contains("from the journal")).collect();
    eprintln!(
        "kill -9 x{KILLS} ({}): sent {sent_valid} valid + {sent_malformed} malformed; archived {}, quarantined {quarantined}, \
         drops {drops}, missing {missing}; {} files; {recovered:?}",
        mode.join(" "),
        counters.len(),
        files.len()
    );
    assert!(
        sent_valid + sent_malformed >= counters.len() as u64 + quarantined + drops,
        "more came out than went in"
    );
    assert!(missing <= BATCH * KILLS as u64, "{missing} datums missing after {KILLS} kills (at most {BATCH} each)\n{log}");
    // Each restarted process recovered the killed one's pending block (at
    // 10,000/s and 100 ms blocks there always is one) into a new file.
    assert_eq!(recovered.len(), KILLS, "{log}");
    assert!(files.len() > KILLS, "each restarted process starts a new file: {files:?}");
    assert!(!ch.join(".journal").exists(), "a clean stop leaves no journal");
}

/// Sends TOTAL example datums at RATE from the sender host (10 per ms, paced
/// on the clock), plus a truncated datum every MALFORMED_EVERY. Returns how
/// many valid and malformed datagrams went out.
fn send_paced() -> (u64, u64) {
    let schema = example_schema();
    let s = UdpSocket::bind((SENDER_ADDR, 0)).unwrap();
    s.connect((RELAY_IN_ADDR, PORT)).unwrap();
    let start = Instant::now();
    let per_ms = RATE / 1000;
    let mut malformed = 0;
    for seq in 0..TOTAL {
        if seq % per_ms == 0 {
            let due = start + Duration::from_millis(u64::from(seq / per_ms));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let d = example_datum(&schema, seq);
        s.send(&d).unwrap();
        if seq % MALFORMED_EVERY == MALFORMED_EVERY / 2 {
            s.send(&d[..d.len() - 3]).unwrap();
            malformed += 1;
        }
    }
    (u64::from(TOTAL), malformed)
}

/// SIGKILLs channel process `p` at a moment its journal holds datums. The
/// process is stopped (SIGSTOP) while the journal is read, so that it dies
/// with what was read; if the journal was empty (a block had just been
/// written, as at every other ring drain in XDP mode) it is let go and
/// tried again a few ms later. Bounded.
fn kill_with_pending_block(p: u32, ch: &Path) {
    let signal = |sig| {
        // SAFETY: kill(2) on the channel process the relay started.
        unsafe { libc::kill(p as i32, sig) };
    };
    wait_for("a moment with a pending block to kill the channel", Duration::from_secs(5), || {
        signal(libc::SIGSTOP);
        wait_for("the channel to stop", Duration::from_secs(2), || process_state(p) == Some('T'));
        let journal = std::fs::read(ch.join(".journal")).map(|b| relay::avro::journal::parse(&b)).unwrap_or_default();
        let pending = !journal.later.is_empty() || !journal.announced.is_empty();
        if pending {
            signal(libc::SIGKILL);
        } else {
            signal(libc::SIGCONT);
            std::thread::sleep(Duration::from_millis(7));
        }
        pending
    });
}

fn pid(data: &Path) -> Option<u32> {
    channel_stats(data, "example").and_then(|s| s["pid"].as_u64()).map(|p| p as u32)
}

fn quarantine_lines(ch: &Path) -> u64 {
    std::fs::read_to_string(ch.join("quarantine.jsonl")).map(|t| t.lines().count() as u64).unwrap_or(0)
}

fn avro_files(ch: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(ch)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".avro"))
        .collect();
    v.sort();
    v
}

/// UDP `RcvbufErrors` of the relay's namespace (/proc/net/snmp is per namespace).
fn udp_rcvbuf_errors(topo: &Topology) -> u64 {
    let out = topo.relay.command("cat").arg("/proc/net/snmp").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next().unwrap(), udp.next().unwrap());
    let i = names.split_whitespace().position(|n| n == "RcvbufErrors").unwrap();
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}
