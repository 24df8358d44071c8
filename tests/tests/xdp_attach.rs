//! `speeddata-xdp attach` / `detach` on the relay's ingress veth, in native and
//! generic (SKB) mode: the program counts every UDP datagram it sees, lets all
//! traffic through, and leaves nothing behind once detached.
//!
//! The binary runs with only its *network* namespace switched (like
//! `nsenter --net`), not under `ip netns exec`: that one remounts /sys in a
//! private mount namespace, so pins would vanish when the command exits.
//! Pins live in the host's shared bpffs under the interface's name and the
//! namespace's inode; the tests still take turns ([`SERIAL`]) so that two
//! traffic bursts do not share the 2 cores.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use integration_tests::netns::Netns;
use integration_tests::relay::binary;
use integration_tests::topology::{Topology, RELAY_IN_ADDR, RELAY_IN_IF, SENDER_ADDR};
use relay_common::counters::{Counter, COUNTER_COUNT};

/// One traffic test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const PORT: u16 = 26001;
const DATAGRAMS: u64 = 200;
const PAYLOAD: usize = 72;

#[test]
fn attach_count_pass_detach_native() {
    attach_count_pass_detach("native", "xdp");
}

#[test]
fn attach_count_pass_detach_skb() {
    attach_count_pass_detach("skb", "xdpgeneric");
}

fn attach_count_pass_detach(mode: &str, ip_link_word: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let topo = Topology::new();
    let _pins = PinGuard(topo.relay.pin_dir(RELAY_IN_IF));

    // Attach, and refuse a second attach without --force.
    let out = xdp(&topo.relay, &["attach", "--iface", RELAY_IN_IF, "--mode", mode]);
    assert_ok(&out, "attach");
    let link = topo.relay.ip(&["link", "show", RELAY_IN_IF]);
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(
        link.split_whitespace().any(|w| w == ip_link_word) && link.contains("prog/xdp"),
        "`ip link` should show {ip_link_word} with a program after attach --mode {mode}:\n{link}"
    );
    assert!(topo.relay.pin_dir(RELAY_IN_IF).join("link").exists(), "link not pinned");

    let again = xdp(&topo.relay, &["attach", "--iface", RELAY_IN_IF, "--mode", mode]);
    assert!(!again.status.success(), "a second attach without --force must fail");
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already has the speeddata XDP program") && err.contains("--force"), "{err}");
    assert_ok(&xdp(&topo.relay, &["attach", "--iface", RELAY_IN_IF, "--mode", mode, "--force"]), "attach --force");

    // Traffic passes: ICMP echo, then N datagrams all reach a socket on the relay.
    assert!(echo(&topo.sender, RELAY_IN_ADDR), "no ICMP echo reply through {mode} XDP");
    let before = read_counters(&topo.relay.pin_dir(RELAY_IN_IF));
    let received = send_and_receive(&topo, DATAGRAMS);
    assert_eq!(received, DATAGRAMS, "datagrams received by a socket behind {mode} XDP");
    let after = read_counters(&topo.relay.pin_dir(RELAY_IN_IF));

    let delta = |c: Counter| after[c.index() as usize] - before[c.index() as usize];
    // Nothing else in these namespaces sends UDP over IPv4, so this is exact.
    assert_eq!(delta(Counter::Udp), DATAGRAMS, "udp counter ({mode}): before {before:?} after {after:?}");
    assert!(delta(Counter::Packets) >= DATAGRAMS, "packets counter");
    assert_eq!(delta(Counter::Passed), delta(Counter::Packets), "phase A passes everything");
    let frame = (14 + 20 + 8 + PAYLOAD) as u64;
    assert!(delta(Counter::Bytes) >= DATAGRAMS * frame, "bytes counter: {}", delta(Counter::Bytes));
    assert_eq!(delta(Counter::Malformed) + delta(Counter::Truncated), 0, "well-formed traffic");
    assert!(echo(&topo.sender, RELAY_IN_ADDR), "no ICMP echo reply after the datagrams");

    // Detach: no XDP on the link, no pins; detaching again is fine.
    assert_ok(&xdp(&topo.relay, &["detach", "--iface", RELAY_IN_IF]), "detach");
    let link = topo.relay.ip(&["link", "show", RELAY_IN_IF]);
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(!link.contains("xdp"), "`ip link` still shows XDP after detach:\n{link}");
    assert!(!topo.relay.pin_dir(RELAY_IN_IF).exists(), "pin directory left behind");
    let again = xdp(&topo.relay, &["detach", "--iface", RELAY_IN_IF]);
    assert_ok(&again, "second detach");
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
    assert!(echo(&topo.sender, RELAY_IN_ADDR), "no ICMP echo reply after detach");
}

/// Removes the test's pins even when an assertion fails midway (the
/// namespaces go with [`Topology`]'s drop, which also detaches the link).
struct PinGuard(PathBuf);

impl Drop for PinGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `speeddata-xdp ARGS` in `ns`'s network namespace, keeping the host's
/// mount namespace (and so its /sys/fs/bpf).
fn xdp(ns: &Netns, args: &[&str]) -> Output {
    ns.output_net_only(&binary(), args)
}

fn assert_ok(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("built without the XDP program"),
        "{} was built without the XDP program, so XDP cannot be tested: \
         run `cargo xtask build-ebpf`, rebuild speeddata-xdp, and run the tests again",
        binary().display()
    );
    assert!(
        out.status.success(),
        "speeddata-xdp {what} failed ({}):\n{}{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Sends `n` datagrams sender → relay and returns how many a socket on the relay got.
fn send_and_receive(topo: &Topology, n: u64) -> u64 {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let receiver = topo.relay.spawn(move || {
        let sock = UdpSocket::bind(SocketAddrV4::new(RELAY_IN_ADDR, PORT)).expect("bind receiver");
        sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        ready_tx.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 2048];
        let mut got = 0;
        while got < n && Instant::now() < deadline {
            if let Ok(len) = sock.recv(&mut buf) {
                assert_eq!(len, PAYLOAD);
                got += 1;
            }
        }
        got
    });
    ready_rx.recv_timeout(Duration::from_secs(5)).expect("receiver ready");
    topo.sender
        .spawn(move || {
            let sock = UdpSocket::bind(SocketAddrV4::new(SENDER_ADDR, 0)).expect("bind sender");
            for i in 0..n {
                let payload = [i as u8; PAYLOAD];
                sock.send_to(&payload, SocketAddrV4::new(RELAY_IN_ADDR, PORT)).expect("send");
                if i % 32 == 31 {
                    // Stay well inside the veth's XDP ring (native mode).
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
        .join()
        .expect("sender thread");
    receiver.join().expect("receiver thread")
}

/// One ICMP echo from `ns` to `dst` (raw socket; no `ping` binary needed).
fn echo(ns: &Netns, dst: Ipv4Addr) -> bool {
    ns.spawn(move || {
        // SAFETY: plain socket(2); the fd is owned right away.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        // SAFETY: fd is a fresh, valid descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let sock = socket2::Socket::from(fd);
        sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let id = (std::process::id() & 0xffff) as u16;
        for seq in 0..4u16 {
            let mut req = [8u8, 0, 0, 0, (id >> 8) as u8, id as u8, (seq >> 8) as u8, seq as u8, 1, 2, 3, 4];
            let sum = inet_checksum(&req);
            req[2..4].copy_from_slice(&sum.to_be_bytes());
            let to = socket2::SockAddr::from(SocketAddrV4::new(dst, 0));
            sock.send_to(&req, &to).expect("send echo");
            let deadline = Instant::now() + Duration::from_secs(1);
            while Instant::now() < deadline {
                let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1500];
                let Ok(len) = sock.recv(&mut buf) else { break };
                // SAFETY: recv initialised the first `len` bytes.
                let pkt: Vec<u8> = buf[..len].iter().map(|b| unsafe { b.assume_init() }).collect();
                let ihl = usize::from(pkt[0] & 0x0f) * 4;
                let icmp = &pkt[ihl..];
                if icmp.len() >= 8 && icmp[0] == 0 && icmp[4..6] == id.to_be_bytes() && icmp[6..8] == seq.to_be_bytes() {
                    return true;
                }
            }
        }
        false
    })
    .join()
    .expect("echo thread")
}

fn inet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes.chunks(2).map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0))).sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The pinned counters of `iface`, summed over CPUs, read with raw bpf(2)
/// calls so the test does not depend on the code under test.
fn read_counters(pins: &Path) -> [u64; COUNTER_COUNT as usize] {
    let path = pins.join(relay_common::maps::COUNTERS);
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut get = [0u64; 3]; // bpf_attr for BPF_OBJ_GET: pathname, bpf_fd/file_flags, path_fd
    get[0] = cpath.as_ptr() as u64;
    // SAFETY: `get` is a zeroed bpf_attr prefix whose pathname outlives the call.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, 7 /* BPF_OBJ_GET */, get.as_ptr(), 24) };
    assert!(fd >= 0, "opening {}: {}", path.display(), std::io::Error::last_os_error());
    // SAFETY: BPF_OBJ_GET returned a new fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // One entry (key 0): all counters of a CPU, one u64 each, per possible CPU.
    const N: usize = COUNTER_COUNT as usize;
    let cpus = possible_cpus();
    let key = 0u32;
    let mut values = vec![0u64; cpus * N];
    // bpf_attr for BPF_MAP_LOOKUP_ELEM: map_fd (+pad), key, value, flags.
    let attr = [fd.as_raw_fd() as u64, &key as *const u32 as u64, values.as_mut_ptr() as u64, 0];
    // SAFETY: key and value buffers are valid; value holds N u64 per possible CPU.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, 1 /* BPF_MAP_LOOKUP_ELEM */, attr.as_ptr(), 32) };
    assert_eq!(rc, 0, "lookup in {}: {}", path.display(), std::io::Error::last_os_error());
    let mut sums = [0u64; N];
    for cpu in values.chunks(N) {
        for (sum, v) in sums.iter_mut().zip(cpu) {
            *sum += v;
        }
    }
    sums
}

/// The number of possible CPUs (per-CPU map values have one slot each).
fn possible_cpus() -> usize {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/possible").expect("cpu/possible");
    s.trim()
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
}
