//! Copying a datagram's payload, behind a record header, into its channel's ring.
//!
//! The ring is hand-written (layout and protocol in `relay_common::ring`):
//! a `cmpxchg` reserves, a store of the commit word publishes. The payload
//! goes from the frame straight into the reserved record (one copy). Records
//! have constant sizes, so that the verifier can bound every write: the
//! smallest size class that holds the payload
//! ([`relay_common::record::CLASSES`]), padded; readers use the header's length.

use core::intrinsics::{
    atomic_cxchg, atomic_xchg,
    AtomicOrdering::{Relaxed, SeqCst},
};

use aya_ebpf::{
    helpers::generated::{bpf_ktime_get_coarse_ns, bpf_xdp_load_bytes},
    programs::XdpContext,
};
use relay_common::{
    channel::Channel,
    checksum,
    datagram::Datagram,
    record::{self, ClassFn, RecordHeader},
    ring::{self as layout, COMMIT_LEN, CONSUMER_POS, DATA, OFFSET_MASK, PRODUCER_POS},
    wire::UdpHdr,
};

use crate::{
    maps::{COMMIT_BY_STORE, RINGS},
    packet::ref_mut_at,
};

/// Reservation attempts before a datagram counts as a drop: each failed
/// `cmpxchg` means another CPU reserved meanwhile, on the same channel.
const RESERVE_TRIES: usize = 4;

/// Why a payload did not reach the ring (counted as a ring drop).
pub enum RingError {
    /// Longer than [`relay_common::channel::MAX_PAYLOAD`].
    TooLong,
    /// No ring placed at the channel's index.
    NoRing,
    /// Reading the payload out of the frame failed.
    Copy,
    /// The ring is full: the channel process is behind. Never blocks.
    Full,
    /// Other CPUs kept reserving in the same ring ([`RESERVE_TRIES`]).
    Contended,
}

/// Writes header + payload of `d` as one record into `ch`'s ring.
#[inline(always)]
pub fn copy(ctx: &XdpContext, d: &Datagram, ch: &Channel) -> Result<(), RingError> {
    let ring = RINGS.get(ch.index).ok_or(RingError::NoRing)?;
    let base = ring.get_ptr_mut(0).ok_or(RingError::NoRing)?.cast::<u8>();
    // The smallest class for header + payload, by a decision tree over `CLASSES`.
    record::by_class(d.payload_len, Record { ctx, base, d })
}

/// A record to write: the arguments of [`into_class`], for [`record::by_class`].
struct Record<'a> {
    ctx: &'a XdpContext,
    base: *mut u8,
    d: &'a Datagram,
}

impl ClassFn for Record<'_> {
    type Out = Result<(), RingError>;

    #[inline(always)]
    fn class<const N: usize>(self) -> Self::Out {
        into_class::<N>(self.ctx, self.base, self.d)
    }

    #[inline(always)]
    fn too_long(self) -> Self::Out {
        Err(RingError::TooLong)
    }
}

/// Reserves an `N`-byte record (plus its commit word), writes the header and
/// copies the payload into it, if it fits (the caller chose `N` so that it
/// does), then commits it.
#[inline(always)]
fn into_class<const N: usize>(ctx: &XdpContext, base: *mut u8, d: &Datagram) -> Result<(), RingError> {
    // A volatile read, checked again: LLVM must not derive this bound from
    // the class search (it merges those comparisons into ones the verifier
    // cannot relate to `len`), or the copy below is rejected.
    // SAFETY: reading a plain field through a valid reference.
    let len = unsafe { core::ptr::read_volatile(&d.payload_len) };
    if len > N - RecordHeader::LEN {
        return Err(RingError::TooLong);
    }
    // The UDP checksum field as it came in (the rewrite runs after the copy),
    // loaded here rather than in the parse: traffic for no channel never needs it.
    // SAFETY: a short-lived reference to a header `parse` found in the frame.
    let udp_check = unsafe { ref_mut_at::<UdpHdr>(ctx, d.udp_offset) }.map_err(|_| RingError::Copy)?.check;
    let pos = reserve(base, layout::span(N))?;
    // SAFETY: `DATA + (pos & OFFSET_MASK) + span(N) <= VALUE_BYTES` (a
    // constant bound, checked in relay_common::ring), so the commit word and
    // the record are inside the map value; 8-byte aligned (the mask clears
    // the low bits); ours between the reservation and the commit.
    let at = unsafe { base.add(DATA + (pos & OFFSET_MASK) as usize) };
    let record = unsafe { at.add(COMMIT_LEN) };
    // Two whole-word stores.
    let words = RecordHeader::words(
        // The coarse clock: bpf_ktime_get_ns reads the TSC, which cost about
        // 35 ns per datagram on the bench VM (a third of the program's time),
        // and nothing needs the arrival time finer than a tick.
        // SAFETY: no preconditions.
        unsafe { bpf_ktime_get_coarse_ns() },
        // The channel process checks the UDP checksum against the payload it
        // reads anyway; the rest of the sum is a few words at hand here.
        checksum::udp_partial(udp_check, d.dst_addr, d.dst_port.to_be_bytes()),
        len as u16,
        d.src_port.to_be_bytes(),
        d.src_addr,
    );
    // SAFETY: see `at`; the header is the record's first 16 bytes. Volatile,
    // so that LLVM keeps it before the commit store when there is no payload
    // copy (a helper call) in between.
    unsafe { record.cast::<[u64; 2]>().write_volatile(words) };
    let mut discarded = false;
    if len > 0 {
        // SAFETY: `len <= N - HEADER` bytes after the header stay inside the
        // record; the helper bounds-checks the frame side itself.
        let rc = unsafe {
            bpf_xdp_load_bytes(
                ctx.ctx,
                (d.udp_offset + UdpHdr::LEN) as u32,
                record.add(RecordHeader::LEN).cast(),
                len as u32,
            )
        };
        discarded = rc != 0;
    }
    // Published after every byte above. A reserved record must always be
    // committed, or the reader stops at it for good; a failed copy is
    // committed as discarded.
    let commit = layout::commit_word(pos, discarded);
    // SAFETY: a plain read of the program's own read-only global.
    if unsafe { core::ptr::read_volatile(&COMMIT_BY_STORE) } != 0 {
        // x86: stores become visible in program order, and a discrete store
        // after a string copy (the helper's memcpy) is ordered after all of
        // its stores (Intel SDM vol. 3, "Fast-String Operation and
        // Out-of-Order Stores"). So a plain store is a release, which is
        // what the kernel's JIT emits for BPF's store-release there. The
        // `xchg` below cost 3-8 ns more per datagram: as a full barrier it
        // waits for the record's stores to reach the cache
        // (docs/PERFORMANCE.md). The verifier prunes the branch not taken.
        // SAFETY: the commit word, 8-byte aligned, inside the value.
        unsafe { core::ptr::write_volatile(at.cast::<u64>(), commit) };
    } else {
        // Elsewhere (arm64) only a barrier orders it: BPF's atomic exchange
        // is fully ordered on every JIT. (BPF's store-release would do, but
        // needs Linux 6.15: XDP mode would be lost on older kernels.)
        // SAFETY: as above.
        unsafe { atomic_xchg::<u64, { SeqCst }>(at.cast(), commit) };
    }
    if discarded {
        return Err(RingError::Copy);
    }
    Ok(())
}

/// Reserves `span` bytes: the record's position.
#[inline(always)]
fn reserve(base: *mut u8, span: usize) -> Result<u64, RingError> {
    // SAFETY: both positions are 8-byte aligned words inside the value.
    // A stale consumer position only makes the ring look fuller.
    let consumer = unsafe { core::ptr::read_volatile(base.add(CONSUMER_POS).cast::<u64>()) };
    let producer = unsafe { base.add(PRODUCER_POS).cast::<u64>() };
    // SAFETY: as above.
    let mut pos = unsafe { core::ptr::read_volatile(producer) };
    for _ in 0..RESERVE_TRIES {
        if !layout::fits(pos, consumer, span) {
            return Err(RingError::Full);
        }
        // Core's atomic types have no compare-exchange on this target; the
        // intrinsic becomes BPF_CMPXCHG (fully ordered).
        // SAFETY: as above.
        let (now, won) = unsafe { atomic_cxchg::<u64, { SeqCst }, { Relaxed }>(producer, pos, pos + span as u64) };
        if won {
            return Ok(pos);
        }
        pos = now;
    }
    Err(RingError::Contended)
}
