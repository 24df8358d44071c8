//! Copying a datagram's payload, behind a record header, into its channel's ring.
//!
//! The payload goes from the frame straight into a ring reservation (one
//! copy). The verifier only allows reservations of a constant size, so the
//! record is reserved at the smallest size class that holds it
//! ([`relay_common::record::CLASSES`]) and padded; readers use the header's length.

use aya_ebpf::{
    bindings::BPF_RB_NO_WAKEUP,
    btf_maps::RingBuf,
    helpers::generated::{bpf_ktime_get_coarse_ns, bpf_xdp_load_bytes},
    programs::XdpContext,
};
use relay_common::{
    channel::{Channel, RING_BYTES},
    record::{self, ClassFn, RecordHeader},
    wire::UdpHdr,
};

use crate::{maps::RINGS, parse::Datagram};

type Ring = RingBuf<u8, { RING_BYTES as usize }>;

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
}

/// Writes header + payload of `d` as one record into `ch`'s ring.
#[inline(always)]
pub fn copy(ctx: &XdpContext, d: &Datagram, ch: &Channel) -> Result<(), RingError> {
    let ring = RINGS.get(ch.index).ok_or(RingError::NoRing)?;
    // The smallest class for header + payload, by a decision tree over `CLASSES`.
    record::by_class(d.payload_len, Record { ctx, ring, d })
}

/// A record to write: the arguments of [`into_class`], for [`record::by_class`].
struct Record<'a> {
    ctx: &'a XdpContext,
    ring: &'a Ring,
    d: &'a Datagram,
}

impl ClassFn for Record<'_> {
    type Out = Result<(), RingError>;

    #[inline(always)]
    fn class<const N: usize>(self) -> Self::Out {
        into_class::<N>(self.ctx, self.ring, self.d)
    }

    #[inline(always)]
    fn too_long(self) -> Self::Out {
        Err(RingError::TooLong)
    }
}

/// Reserves an `N`-byte record, writes the header and copies the payload
/// into it, if it fits (the caller chose `N` so that it does).
#[inline(always)]
fn into_class<const N: usize>(ctx: &XdpContext, ring: &Ring, d: &Datagram) -> Result<(), RingError> {
    // A volatile read, checked again: LLVM must not derive this bound from
    // the class search (it merges those comparisons into ones the verifier
    // cannot relate to `len`), or the copy below is rejected.
    // SAFETY: reading a plain field through a valid reference.
    let len = unsafe { core::ptr::read_volatile(&d.payload_len) };
    if len > N - RecordHeader::LEN {
        return Err(RingError::TooLong);
    }
    let mut entry = ring.reserve_untyped::<[u8; N]>(0).ok_or(RingError::Full)?;
    let record = entry.as_mut_ptr().cast::<u8>();
    // Two whole-word stores.
    let words = RecordHeader::words(
        // The coarse clock: bpf_ktime_get_ns reads the TSC, which cost about
        // 35 ns per datagram on the bench VM (a third of the program's time),
        // and nothing needs the arrival time finer than a tick.
        // SAFETY: no preconditions.
        unsafe { bpf_ktime_get_coarse_ns() },
        len as u16,
        d.src_port.to_be_bytes(),
        d.src_addr,
    );
    // SAFETY: the reservation is N >= 48 bytes, 8-byte aligned, ours until
    // submitted or discarded; the header is its first 16 bytes.
    unsafe { record.cast::<[u64; 2]>().write(words) };
    if len > 0 {
        // SAFETY: `len <= N - HEADER` bytes after the header stay inside the
        // reservation; the helper bounds-checks the frame side itself.
        let rc = unsafe {
            bpf_xdp_load_bytes(
                ctx.ctx,
                (d.udp_offset + UdpHdr::LEN) as u32,
                record.add(RecordHeader::LEN).cast(),
                len as u32,
            )
        };
        if rc != 0 {
            entry.discard(0);
            return Err(RingError::Copy);
        }
    }
    // No wake-up: the channel drains its ring on a timer and never waits on
    // it (channel/shell.rs, `RING_PERIOD`), so the kernel's wake-up (an
    // irq_work once per drain, for the first record after the consumer
    // caught up) would wake nobody. Measured the same as the default here.
    entry.submit(BPF_RB_NO_WAKEUP as u64);
    Ok(())
}
