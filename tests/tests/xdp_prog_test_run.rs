//! The loaded XDP program itself, run with `BPF_PROG_TEST_RUN` on crafted
//! frames: what it passes, what it counts, what it writes into a channel's
//! ring, and how it rewrites a matched datagram.
//!
//! Each test loads its own instance (own maps); nothing is attached. Runs as
//! root. A binary built without the XDP object fails here, loudly.

use std::net::Ipv4Addr;

use std::os::fd::AsFd;

use aya::maps::{MapData, PerCpuArray};
use aya::programs::{TestRun, TestRunOptions};
use aya::Ebpf;
use relay::xdp::{channel_entry, ChannelMaps, Commit, Egress, Forward, RingReader, Route};
use relay_common::checksum;
use relay_common::counters::{Counter, CounterSet};
use relay_common::record::RecordHeader;
use relay_common::rewrite::multicast_mac;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

const PORT: u16 = 26001;
const GROUP_IN: Ipv4Addr = Ipv4Addr::new(239, 192, 0, 7);
const GROUP_IN_PORT: u16 = 26002;
const RING_ONLY_PORT: u16 = 26003;
const FULL_RATE: Ipv4Addr = Ipv4Addr::new(239, 130, 1, 9);
const FULL_RATE_PORT: u16 = 26901;
/// With no `ctx_in`, test runs see the loopback device as ingress (ifindex 1),
/// so an egress of 1 makes the program answer `XDP_TX`.
const EGRESS: Egress = Egress { ifindex: 1, mac: [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee], ip: Ipv4Addr::new(198, 51, 100, 1) };
const SRC: [u8; 4] = [192, 0, 2, 1];
const DST: [u8; 4] = [192, 0, 2, 2];

struct Harness {
    ebpf: Ebpf,
    maps: ChannelMaps,
    ring: RingReader,
    group_ring: RingReader,
}

impl Harness {
    /// Loads the program with: port 26001 → ring 2 + forward; (239.192.0.7, 26002)
    /// → ring 3 + forward; port 26003 → ring 4 only (dropped after the copy).
    fn new() -> Harness {
        Harness::committing(Commit::NATIVE)
    }

    /// As [`Harness::new`], with the ring commit `commit` (what the relay
    /// loads is [`Commit::NATIVE`]: a plain store on x86).
    fn committing(commit: Commit) -> Harness {
        assert!(
            relay::xdp::embedded_object().is_some(),
            "this test binary was built without the XDP program: run `cargo xtask build-ebpf` and rebuild"
        );
        let mut ebpf = relay::xdp::load_committing(commit)
            .unwrap_or_else(|e| panic!("loading the XDP program: {:?}", anyhow::Error::from(e)));
        let mut maps = ChannelMaps::take(&mut ebpf, None).expect("channel maps");
        let fwd = Forward { group: FULL_RATE, port: FULL_RATE_PORT, ttl: 4, egress: EGRESS };
        let ring = maps.install(Route::Port(PORT), &channel_entry(2, true, Some(&fwd), false)).unwrap().unwrap();
        let ring = RingReader::new(ring).unwrap();
        let group_ring = maps
            .install(Route::Group(GROUP_IN, GROUP_IN_PORT), &channel_entry(3, true, Some(&fwd), false))
            .unwrap()
            .unwrap();
        let group_ring = RingReader::new(group_ring).unwrap();
        maps.install(Route::Port(RING_ONLY_PORT), &channel_entry(4, true, None, false)).unwrap();
        Harness { ebpf, maps, ring, group_ring }
    }

    /// Runs the program on `frame`; returns the verdict and the frame after the run.
    fn run(&mut self, frame: &[u8]) -> (u32, Vec<u8>) {
        self.run_repeated(frame, 1)
    }

    /// Runs the program `repeat` times, each on the frame the last run left.
    fn run_repeated(&mut self, frame: &[u8], repeat: u32) -> (u32, Vec<u8>) {
        let program = relay::xdp::xdp_program(&mut self.ebpf).expect("program");
        let mut out = vec![0u8; frame.len() + 256];
        let result = program
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat,
                ..TestRunOptions::default()
            })
            .expect("BPF_PROG_TEST_RUN");
        out.truncate(result.data_size_out as usize);
        (result.return_value, out)
    }

    fn counter(&self, c: Counter) -> u64 {
        let map = self.ebpf.map(relay_common::maps::COUNTERS).expect("COUNTERS");
        let array: PerCpuArray<&MapData, CounterSet> = PerCpuArray::try_from(map).expect("per-CPU counter set array");
        array.get(&0, 0).expect("read counters").iter().map(|set| set.get(c)).sum()
    }

    /// Runs `frame`, expecting it to go to the stack untouched and to count once as `counter`.
    fn expect_pass(&mut self, frame: &[u8], counter: Counter, what: &str) {
        let before = self.counter(counter);
        let (verdict, out) = self.run(frame);
        assert_eq!(verdict, XDP_PASS, "{what}: verdict");
        assert_eq!(out, frame, "{what}: frame modified");
        assert_eq!(self.counter(counter) - before, 1, "{what}: counter {}", counter.name());
        assert!(self.ring.next_record().is_none(), "{what}: wrote to a ring");
    }
}

/// A UDP/IPv4 frame from [`SRC`] with `options` bytes of IPv4 options (NOPs).
fn frame(dst: [u8; 4], port: u16, options: usize, payload: &[u8]) -> Vec<u8> {
    integration_tests::frames::udp_frame(SRC, dst, port, options, payload)
}

/// Checks `out` is `input` rewritten to the full-rate group, payload intact.
fn assert_rewritten(input: &[u8], out: &[u8]) {
    assert_eq!(out.len(), input.len());
    assert_eq!(out[..6], multicast_mac(FULL_RATE.octets()), "dst MAC");
    assert_eq!(out[6..12], EGRESS.mac, "src MAC");
    let ihl = usize::from(out[14] & 0x0f) * 4;
    let ip = &out[14..14 + ihl];
    assert_eq!(ip[20..], input[34..14 + ihl], "IPv4 options preserved");
    assert_eq!(ip[8], 4, "TTL");
    assert_eq!(ip[12..16], EGRESS.ip.octets(), "src IP");
    assert_eq!(ip[16..20], FULL_RATE.octets(), "dst IP");
    assert_eq!(u16::from_be_bytes([ip[10], ip[11]]), checksum::ipv4_header(ip), "IPv4 checksum");
    let udp = &out[14 + ihl..];
    assert_eq!(udp[..2], input[14 + ihl..16 + ihl], "src port");
    assert_eq!(udp[2..4], FULL_RATE_PORT.to_be_bytes(), "dst port");
    assert_eq!(udp[8..], input[14 + ihl + 8..], "payload");
    assert_eq!(u16::from_be_bytes([udp[6], udp[7]]), checksum::udp(EGRESS.ip.octets(), FULL_RATE.octets(), udp));
}

fn assert_record(ring: &mut RingReader, payload: &[u8]) {
    let item = ring.next_record().expect("a record in the channel's ring");
    let (header, got) = RecordHeader::parse(&item).expect("well-formed record");
    assert_eq!(got, payload, "ring payload");
    assert_eq!(header.len as usize, payload.len());
    assert_eq!(header.src_addr, SRC);
    assert_eq!(header.src_port(), 40000);
    assert!(header.arrival() > 0);
    assert!(checksum::udp_ok(header.udp_partial(), header.src_addr, header.src_port, got), "a right UDP checksum reads as wrong");
}

/// The program forwards a datagram whatever its UDP checksum (the
/// subscribers' stacks check it) and records what the channel process needs
/// to check it as the relay host's stack would: right and absent ones pass,
/// a corrupted payload or checksum field does not. To a unicast address and
/// port, with IPv4 options, and to a group.
#[test]
fn records_let_the_channel_check_udp_checksums() {
    let mut h = Harness::new();
    let payload: Vec<u8> = (0..61u8).map(|i| i.wrapping_mul(29)).collect();
    for (dst, port, options) in [(DST, PORT, 4), (GROUP_IN.octets(), GROUP_IN_PORT, 0)] {
        let right = frame(dst, port, options, &payload);
        let check = 14 + 20 + options + 6;
        let mut absent = right.clone();
        absent[check..check + 2].copy_from_slice(&[0, 0]);
        let mut bad_payload = right.clone();
        bad_payload[check + 2 + 17] ^= 0x10;
        let mut bad_field = right.clone();
        bad_field[check] ^= 0x01;
        for (f, ok, what) in [(right, true, "right"), (absent, true, "absent"), (bad_payload, false, "payload bit"), (bad_field, false, "field bit")] {
            let (verdict, _) = h.run(&f);
            assert_eq!(verdict, XDP_TX, "{what}: forwarded");
            let ring = if port == PORT { &mut h.ring } else { &mut h.group_ring };
            let item = ring.next_record().expect("a record in the channel's ring");
            let (header, got) = RecordHeader::parse(&item).expect("well-formed record");
            let verdict = checksum::udp_ok(header.udp_partial(), header.src_addr, header.src_port, got);
            assert_eq!(verdict, ok, "{what}, to {dst:?}:{port}");
        }
    }
}

#[test]
fn matched_channel_is_copied_rewritten_and_sent() {
    let mut h = Harness::new();
    let payload = b"\x02\x80\xde\xad one datum of the example schema";
    let input = frame(DST, PORT, 0, payload);
    let (verdict, out) = h.run(&input);
    assert_eq!(verdict, XDP_TX);
    assert_rewritten(&input, &out);
    assert_record(&mut h.ring, payload);
    assert!(h.ring.next_record().is_none(), "exactly one record");
    let c = h.maps.counters(2).unwrap();
    assert_eq!((c.packets, c.bytes, c.forwarded, c.ring_drops), (1, payload.len() as u64, 1, 0));
    assert_eq!(h.counter(Counter::Matched), 1);
    assert_eq!(h.counter(Counter::Forwarded), 1);
}

#[test]
fn ihl_above_5_is_honoured() {
    let mut h = Harness::new();
    for options in [4, 12, 40] {
        let payload = vec![options as u8; 100 + options];
        let input = frame(DST, PORT, options, &payload);
        let (verdict, out) = h.run(&input);
        assert_eq!(verdict, XDP_TX, "IHL {}", 5 + options / 4);
        assert_rewritten(&input, &out);
        assert_record(&mut h.ring, &payload);
    }
}

#[test]
fn payload_sizes_up_to_jumbo() {
    let mut h = Harness::new();
    for len in [0usize, 1, 7, 8, 255, 1472, 4000, 8972] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
        let (verdict, _) = h.run(&frame(DST, PORT, 0, &payload));
        assert_eq!(verdict, XDP_TX, "payload {len}");
        assert_record(&mut h.ring, &payload);
    }
}

#[test]
fn multicast_input_matches_by_group_and_port() {
    let mut h = Harness::new();
    let input = frame(GROUP_IN.octets(), GROUP_IN_PORT, 0, b"from a group");
    let (verdict, out) = h.run(&input);
    assert_eq!(verdict, XDP_TX);
    assert_rewritten(&input, &out);
    assert_record(&mut h.group_ring, b"from a group");
    // The same port to a unicast address has no channel.
    h.expect_pass(&frame(DST, GROUP_IN_PORT, 0, b"x"), Counter::Passed, "unicast to a group-only port");
}

#[test]
fn ring_only_channel_consumes_the_datagram() {
    let mut h = Harness::new();
    let (verdict, _) = h.run(&frame(DST, RING_ONLY_PORT, 0, b"archive me"));
    assert_eq!(verdict, XDP_DROP, "copied to the ring, not forwarded, not passed");
    let c = h.maps.counters(4).unwrap();
    assert_eq!((c.packets, c.forwarded, c.ring_drops), (1, 0, 0));
}

/// The ring as the program fills it: a full ring drops (and counts) what
/// does not fit and never overwrites unread records; records that cross the
/// ring's end come out whole, in order; a second reader of the same ring (a
/// restarted channel process) continues where the first stopped.
#[test]
fn a_full_ring_drops_the_rest_then_laps_intact_across_readers() {
    const RING_PORT: u16 = 26005;
    const CHUNK: u32 = 1000;
    let mut h = Harness::new();
    let ring = h.maps.install(Route::Port(RING_PORT), &channel_entry(5, true, None, false)).unwrap().unwrap();
    let dup = MapData::from_fd(ring.fd().as_fd().try_clone_to_owned().unwrap()).unwrap();
    let mut reader = RingReader::new(ring).unwrap();
    // 50-byte payloads: 80-byte records (commit word + 72), which do not
    // divide the ring, so one record of each lap runs past its end.
    let span = relay_common::ring::span(relay_common::record::record_size(50).unwrap());
    let fits = relay_common::ring::RING_BYTES / span;
    let chunks = (fits as u32).div_ceil(CHUNK) + 5;
    let offer = |h: &mut Harness, first: u32| {
        for id in first..first + chunks {
            let (verdict, _) = h.run_repeated(&frame(DST, RING_PORT, 0, &[id as u8; 50]), CHUNK);
            assert_eq!(verdict, XDP_DROP, "ring-only channel");
        }
    };
    let offered = u64::from(chunks * CHUNK);

    offer(&mut h, 0);
    let c = h.maps.counters(5).unwrap();
    assert_eq!((c.packets, c.ring_drops), (offered, offered - fits as u64), "a full ring drops what does not fit");
    for i in 0..fits {
        let rec = reader.next_record().unwrap_or_else(|| panic!("record {i} of {fits}"));
        let (_, payload) = RecordHeader::parse(&rec).expect("well-formed record");
        assert_eq!(payload, [(i / CHUNK as usize) as u8; 50], "record {i}: the oldest kept, in order");
    }
    assert!(reader.next_record().is_none(), "nothing beyond what fitted");

    // The next lap starts a record past the ring's end; read half of it,
    // then the rest through the other reader.
    offer(&mut h, chunks);
    let c = h.maps.counters(5).unwrap();
    assert_eq!(c.ring_drops, 2 * (offered - fits as u64), "the emptied ring takes as many again");
    let check = |r: &mut RingReader, i: usize| {
        let rec = r.next_record().unwrap_or_else(|| panic!("lap 2, record {i} of {fits}"));
        let (h, payload) = RecordHeader::parse(&rec).expect("well-formed record");
        assert_eq!(
            (payload, h.src_addr),
            (&[(chunks as usize + i / CHUNK as usize) as u8; 50][..], SRC),
            "lap 2, record {i}"
        );
    };
    for i in 0..fits / 2 {
        check(&mut reader, i);
    }
    drop(reader);
    let mut second = RingReader::new(dup).unwrap();
    for i in fits / 2..fits {
        check(&mut second, i);
    }
    assert!(second.next_record().is_none());
    assert_eq!(second.corrupt, 0);
}

/// Two CPUs run the program at once into one channel's ring while a third
/// thread reads it, with each way of committing a record: every record read
/// is whole (its bytes are the datagram's, and its UDP checksum holds), and
/// each CPU's records come out in the order it wrote them. A record published
/// before its bytes are written would be read with the bytes of the ring's
/// last lap (or zeros) in it.
#[test]
fn records_written_on_two_cpus_at_once_are_read_whole_with_either_commit() {
    const RING_PORT: u16 = 26006;
    const PER_CPU: u32 = 40_000;
    // Payload: the CPU, the sequence number, then bytes that depend on both;
    // 8 to 71 bytes long, so that records of different sizes share the ring.
    let payload = |cpu: u8, seq: u32| -> Vec<u8> {
        let len = 8 + (seq as usize * 7 + usize::from(cpu)) % 64;
        let mut p = vec![cpu];
        p.extend(seq.to_le_bytes());
        p.extend((5..len).map(|i| (seq as usize * 31 + i * 7 + usize::from(cpu) * 101) as u8));
        p
    };
    for commit in [Commit::Store, Commit::Exchange] {
        let mut h = Harness::committing(commit);
        let ring = h.maps.install(Route::Port(RING_PORT), &channel_entry(6, true, None, false)).unwrap().unwrap();
        let mut reader = RingReader::new(ring).unwrap();
        let program: &aya::programs::Xdp = relay::xdp::xdp_program(&mut h.ebpf).expect("program");
        let producing = std::sync::atomic::AtomicUsize::new(2);
        let mut next = [0u32; 2];
        let mut read = 0u64;
        std::thread::scope(|s| {
            for cpu in 0..2u8 {
                let producing = &producing;
                s.spawn(move || {
                    // A test run stays on the CPU it is called on.
                    pin_to_cpu(usize::from(cpu));
                    for seq in 0..PER_CPU {
                        let f = frame(DST, RING_PORT, 0, &payload(cpu, seq));
                        let r = program.test_run(TestRunOptions { data_in: Some(&f), ..TestRunOptions::default() });
                        assert_eq!(r.expect("BPF_PROG_TEST_RUN").return_value, XDP_DROP, "ring-only channel");
                    }
                    producing.fetch_sub(1, std::sync::atomic::Ordering::Release);
                });
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            loop {
                let done = producing.load(std::sync::atomic::Ordering::Acquire) == 0;
                let Some(rec) = reader.next_record() else {
                    if done {
                        break;
                    }
                    assert!(std::time::Instant::now() < deadline, "{commit:?}: producers still running after 120 s");
                    std::hint::spin_loop();
                    continue;
                };
                let (header, got) = RecordHeader::parse(&rec).expect("well-formed record");
                let (cpu, seq) = (got[0], u32::from_le_bytes(got[1..5].try_into().unwrap()));
                assert!(cpu < 2, "{commit:?}: record {read} names CPU {cpu}: {got:?}");
                assert!(seq >= next[usize::from(cpu)], "{commit:?}: CPU {cpu}'s record {seq} after {}", next[usize::from(cpu)]);
                assert_eq!(got, payload(cpu, seq), "{commit:?}: CPU {cpu}'s record {seq} read with other bytes");
                assert!(checksum::udp_ok(header.udp_partial(), header.src_addr, header.src_port, got), "{commit:?}: checksum");
                next[usize::from(cpu)] = seq + 1;
                read += 1;
            }
        });
        assert_eq!(reader.corrupt, 0, "{commit:?}");
        // A reader slower than both CPUs may fill the ring: what did not fit is counted.
        let c = h.maps.counters(6).unwrap();
        assert_eq!(read + c.ring_drops, 2 * u64::from(PER_CPU), "{commit:?}: read {read}, dropped {}", c.ring_drops);
        assert!(read > u64::from(PER_CPU), "{commit:?}: only {read} read");
    }
}

/// The loader's choice reaches the program: the verifier, knowing the
/// read-only global, removes the commit instruction not chosen. With
/// [`Commit::Store`] no atomic exchange is left (only the reservations'
/// compare-exchanges); with [`Commit::Exchange`] there is one per size class.
#[test]
fn the_commit_instruction_is_the_one_the_loader_chose() {
    // BPF_STX | BPF_ATOMIC | BPF_DW, and its `imm`: BPF_XCHG, BPF_CMPXCHG (uapi/linux/bpf.h).
    const ATOMIC_DW: u8 = 0xdb;
    let count = |insns: &[[u8; 8]], imm: u8| insns.iter().filter(|i| i[0] == ATOMIC_DW && i[4] == imm).count();
    let classes = relay_common::record::CLASSES.len();
    for commit in [Commit::Store, Commit::Exchange] {
        let mut ebpf = relay::xdp::load_committing(commit)
            .unwrap_or_else(|e| panic!("loading the XDP program: {:?}", anyhow::Error::from(e)));
        let insns = xlated(relay::xdp::xdp_program(&mut ebpf).expect("program"));
        let (xchg, cmpxchg) = (count(&insns, 0xe1), count(&insns, 0xf1));
        assert!(cmpxchg >= classes, "{commit:?}: {cmpxchg} compare-exchanges for {classes} size classes");
        let want = if commit == Commit::Store { 0 } else { classes };
        assert_eq!(xchg, want, "{commit:?}: exchanges in the loaded program");
    }
    let x86 = cfg!(any(target_arch = "x86_64", target_arch = "x86"));
    assert_eq!(Commit::NATIVE, if x86 { Commit::Store } else { Commit::Exchange });
}

/// The program's instructions as the verifier left them
/// (`BPF_OBJ_GET_INFO_BY_FD`; aya does not expose them).
fn xlated(program: &aya::programs::Xdp) -> Vec<[u8; 8]> {
    use std::os::fd::AsRawFd;
    let fd = program.fd().expect("loaded").as_fd().as_raw_fd();
    // struct bpf_prog_info: xlated_prog_len at byte 20, xlated_prog_insns at 32.
    let info = |buf: &mut [u8; 256]| {
        #[repr(C)]
        struct Attr {
            bpf_fd: u32,
            info_len: u32,
            info: u64,
        }
        let attr = Attr { bpf_fd: fd as u32, info_len: 256, info: buf.as_mut_ptr() as u64 };
        // SAFETY: BPF_OBJ_GET_INFO_BY_FD (15) writes at most info_len bytes
        // into `buf`, and the instructions into the buffer `buf` names.
        let r = unsafe { libc::syscall(libc::SYS_bpf, 15, &attr as *const Attr, std::mem::size_of::<Attr>()) };
        assert_eq!(r, 0, "BPF_OBJ_GET_INFO_BY_FD: {}", std::io::Error::last_os_error());
    };
    let mut buf = [0u8; 256];
    info(&mut buf);
    let len = u32::from_ne_bytes(buf[20..24].try_into().unwrap()) as usize;
    assert!(len > 0, "the kernel withheld the program's instructions (kernel.kptr_restrict?)");
    let mut insns = vec![[0u8; 8]; len / 8];
    let mut buf = [0u8; 256];
    buf[20..24].copy_from_slice(&(len as u32).to_ne_bytes());
    buf[32..40].copy_from_slice(&(insns.as_mut_ptr() as u64).to_ne_bytes());
    info(&mut buf);
    insns
}

fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % std::thread::available_parallelism().map_or(1, |n| n.get()), &mut set);
        assert_eq!(libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set), 0, "pinning to CPU {cpu}");
    }
}

#[test]
fn unmatched_port_passes() {
    let mut h = Harness::new();
    h.expect_pass(&frame(DST, 5353, 0, b"not ours"), Counter::Udp, "other port");
    assert_eq!(h.counter(Counter::Matched), 0);
}

#[test]
fn truncated_headers_pass() {
    let mut h = Harness::new();
    let full = frame(DST, PORT, 0, b"payload");
    // Cut inside the IPv4 header, inside the UDP header, and inside options.
    for cut in [14, 20, 33, 34, 38, 41] {
        h.expect_pass(&full[..cut], Counter::Truncated, &format!("cut at {cut}"));
    }
    let with_options = frame(DST, PORT, 8, b"payload");
    h.expect_pass(&with_options[..38], Counter::Truncated, "cut inside options");
    // IP total length beyond the frame.
    h.expect_pass(&full[..full.len() - 3], Counter::Truncated, "IP length beyond frame");
}

#[test]
fn a_wrong_ipv4_header_checksum_is_left_to_the_stack() {
    let mut h = Harness::new();
    // Every kind of channel (forwarding by port, with options, by group, ring
    // only): nothing copied or rewritten, and the stack will drop it, as it
    // does in socket mode.
    for (dst, port, options, what) in [
        (DST, PORT, 0, "port channel"),
        (DST, PORT, 8, "port channel, IHL 7"),
        (GROUP_IN.octets(), GROUP_IN_PORT, 0, "group channel"),
        (DST, RING_ONLY_PORT, 0, "ring-only channel"),
    ] {
        let good = frame(dst, port, options, b"a datum");
        // The checksum field, the TTL, the source address and an option
        // byte (not the destination: that would change the match).
        for at in [24, 22, 27].into_iter().chain((options > 0).then_some(35)) {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            h.expect_pass(&bad, Counter::BadChecksum, &format!("{what}, byte {at} flipped"));
            assert!(h.group_ring.next_record().is_none(), "{what}: wrote to the group ring");
        }
    }
    assert_eq!(h.counter(Counter::Matched), 0, "a datagram with a wrong checksum counted as matched");
    // Traffic for no channel is not checked here (the stack does).
    let mut other = frame(DST, 5353, 0, b"not ours");
    other[24] ^= 0x01;
    h.expect_pass(&other, Counter::Udp, "no channel");
    assert_eq!(h.counter(Counter::BadChecksum), 13);
}

#[test]
fn fragments_pass() {
    let mut h = Harness::new();
    for (flags, what) in [([0x20, 0x00], "first fragment (MF)"), ([0x00, 0x10], "later fragment"), ([0x20, 0x10], "middle")] {
        let mut f = frame(DST, PORT, 0, b"fragmented");
        f[20..22].copy_from_slice(&flags);
        h.expect_pass(&f, Counter::Fragment, what);
    }
}

#[test]
fn wrong_lengths_pass() {
    let mut h = Harness::new();
    let good = frame(DST, PORT, 0, b"twelve bytes");
    let mut long_udp = good.clone();
    long_udp[38..40].copy_from_slice(&100u16.to_be_bytes());
    h.expect_pass(&long_udp, Counter::Malformed, "UDP length beyond IP payload");
    let mut short_udp = good.clone();
    short_udp[38..40].copy_from_slice(&7u16.to_be_bytes());
    h.expect_pass(&short_udp, Counter::Malformed, "UDP length below header");
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x44;
    h.expect_pass(&bad_ihl, Counter::Malformed, "IHL 4");
}

#[test]
fn other_protocols_pass() {
    let mut h = Harness::new();
    let good = frame(DST, PORT, 0, b"payload");
    let mut arp = good.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    h.expect_pass(&arp, Counter::NotIpv4, "ARP ethertype");
    let mut ipv6 = good.clone();
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    h.expect_pass(&ipv6, Counter::NotIpv4, "IPv6 ethertype");
    let mut version6 = good.clone();
    version6[14] = 0x65;
    h.expect_pass(&version6, Counter::NotIpv4, "IPv4 ethertype, version 6");
    let mut tcp = good.clone();
    tcp[23] = 6;
    h.expect_pass(&tcp, Counter::NotUdp, "TCP");
}

/// A small deterministic generator (xorshift64*): the same frames every run,
/// so a failure reproduces; the seed is in the failure message.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A frame derived from a valid one by one of: flipped bytes (header bytes
/// more often), a cut, appended bytes, or bytes all random.
fn mutated(rng: &mut Rng, valid: &[Vec<u8>]) -> Vec<u8> {
    let mut f = valid[rng.below(valid.len())].clone();
    match rng.below(5) {
        0 | 1 => {
            for _ in 0..1 + rng.below(4) {
                // Half of the flips land in the first 50 bytes (the headers).
                let at = if rng.below(2) == 0 { rng.below(f.len().min(50)) } else { rng.below(f.len()) };
                f[at] ^= 1 << rng.below(8);
            }
        }
        2 => f.truncate(14 + rng.below(f.len() - 13)),
        3 => f.extend((0..1 + rng.below(64)).map(|_| rng.next() as u8)),
        _ => {
            let len = 15 + rng.below(300);
            f = (0..len).map(|_| rng.next() as u8).collect();
            if rng.below(2) == 0 {
                // Keep it IPv4 so that the random bytes get past the first check.
                f[12..14].copy_from_slice(&[0x08, 0x00]);
                f[14] = 0x45;
            }
        }
    }
    f
}

/// A forwarded mutated frame: rewritten like a valid one, its IPv4 header
/// intact before and after (one with a wrong checksum goes to the stack), and
/// its UDP checksum as valid as it was. The program updates checksums
/// incrementally, so a datagram whose payload arrived corrupted stays
/// detectably corrupted (the subscriber's stack drops it, as the relay host's
/// would have) instead of being laundered into a valid one.
fn assert_forwarded_keeps_checksum_validity(input: &[u8], out: &[u8], what: &str) {
    assert_eq!(out.len(), input.len(), "{what}");
    assert_eq!(out[..6], multicast_mac(FULL_RATE.octets()), "dst MAC: {what}");
    assert_eq!(out[6..12], EGRESS.mac, "src MAC: {what}");
    let ihl = usize::from(out[14] & 0x0f) * 4;
    let (ip_in, ip_out) = (&input[14..14 + ihl], &out[14..14 + ihl]);
    assert_eq!((ip_out[8], &ip_out[12..16], &ip_out[16..20]), (4, &EGRESS.ip.octets()[..], &FULL_RATE.octets()[..]), "{what}");
    assert!(checksum::ipv4_header_ok(ip_in), "forwarded a header with a wrong checksum: {what}");
    assert!(checksum::ipv4_header_ok(ip_out), "IPv4 checksum wrong after the rewrite: {what}");
    let (udp_in, udp_out) = (&input[14 + ihl..], &out[14 + ihl..]);
    assert_eq!(udp_out[2..4], FULL_RATE_PORT.to_be_bytes(), "dst port: {what}");
    assert_eq!(udp_out[8..], udp_in[8..], "payload: {what}");
    let len = usize::from(u16::from_be_bytes([udp_in[4], udp_in[5]])).min(udp_in.len());
    let udp_ok = |seg: &[u8], src: &[u8], dst: &[u8]| {
        let field = u16::from_be_bytes([seg[6], seg[7]]);
        field == 0 || field == checksum::udp(src.try_into().unwrap(), dst.try_into().unwrap(), seg)
    };
    assert_eq!(
        udp_ok(&udp_out[..len], &ip_out[12..16], &ip_out[16..20]),
        udp_ok(&udp_in[..len], &ip_in[12..16], &ip_in[16..20]),
        "UDP checksum validity changed: {what}"
    );
}

/// The UDP destination port of a frame as sent, if it has one where an IPv4/UDP
/// frame would put it.
fn udp_dst_port(f: &[u8]) -> Option<u16> {
    let ihl = usize::from(*f.get(14)? & 0x0f) * 4;
    Some(u16::from_be_bytes([*f.get(14 + ihl + 2)?, *f.get(14 + ihl + 3)?]))
}

#[test]
fn random_and_mutated_frames_get_only_expected_verdicts_and_no_stray_rewrite() {
    const FRAMES: usize = 20_000;
    let seed = 0x5eed_da7a_u64;
    let mut rng = Rng(seed);
    let mut h = Harness::new();
    let payload: Vec<u8> = (0..40u8).collect();
    let valid = vec![
        frame(DST, PORT, 0, &payload),
        frame(DST, PORT, 8, &payload),
        frame(GROUP_IN.octets(), GROUP_IN_PORT, 0, &payload),
        frame(DST, RING_ONLY_PORT, 0, &payload),
        frame(DST, 5353, 0, &payload),
    ];
    let (mut passed, mut copied) = (0u64, 0u64);
    let packets_before = h.counter(Counter::Packets);
    for i in 0..FRAMES {
        let input = mutated(&mut rng, &valid);
        let what = format!("frame {i} (seed {seed:#x}): {input:02x?}");
        let (verdict, out) = h.run(&input);
        match verdict {
            XDP_PASS => {
                passed += 1;
                assert_eq!(out, input, "passed but modified: {what}");
            }
            XDP_TX => {
                let port = udp_dst_port(&input);
                assert!(port == Some(PORT) || port == Some(GROUP_IN_PORT), "forwarded a frame for {port:?}: {what}");
                assert_forwarded_keeps_checksum_validity(&input, &out, &what);
                let ring = if port == Some(PORT) { &mut h.ring } else { &mut h.group_ring };
                let item = ring.next_record().unwrap_or_else(|| panic!("forwarded without a ring record: {what}"));
                let (_, got) = RecordHeader::parse(&item).expect("well-formed record");
                // The datum is the UDP payload by the UDP length: trailing
                // bytes (Ethernet padding) are not part of it.
                let udp = &input[14 + usize::from(input[14] & 0x0f) * 4..];
                let len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
                assert_eq!(got, &udp[8..len], "ring payload: {what}");
                copied += 1;
            }
            XDP_DROP => assert_eq!(udp_dst_port(&input), Some(RING_ONLY_PORT), "dropped: {what}"),
            v => panic!("unexpected verdict {v}: {what}"),
        }
        assert!(
            h.ring.next_record().is_none() && h.group_ring.next_record().is_none(),
            "a stray ring record after {what}"
        );
    }
    assert_eq!(h.counter(Counter::Packets) - packets_before, FRAMES as u64, "every run counted");
    assert_eq!(h.counter(Counter::Passed), passed, "every pass counted");
    // The mutations keep a good share valid and make a good share invalid.
    assert!(copied > FRAMES as u64 / 20 && passed > FRAMES as u64 / 4, "copied {copied}, passed {passed}");
}

#[test]
fn port_channel_replaced_twice_then_removed() {
    let mut h = Harness::new();
    // Replacing flips between the two slots of the channel's pair; each
    // replacement takes effect, and removal passes the port to the stack.
    for round in 0..3u32 {
        let forward = round % 2 == 0;
        let fwd = Forward { group: FULL_RATE, port: FULL_RATE_PORT, ttl: 4, egress: EGRESS };
        let ring = h.maps.install(Route::Port(PORT), &channel_entry(2, true, forward.then_some(&fwd), false)).unwrap().unwrap();
        h.ring = RingReader::new(ring).unwrap();
        let (verdict, _) = h.run(&frame(DST, PORT, 0, b"again"));
        assert_eq!(verdict, if forward { XDP_TX } else { XDP_DROP }, "round {round}");
        assert_record(&mut h.ring, b"again");
    }
    h.maps.remove(Route::Port(PORT)).unwrap();
    h.expect_pass(&frame(DST, PORT, 0, b"gone"), Counter::Passed, "removed port");
}
