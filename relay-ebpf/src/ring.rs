//! Copying a datagram's payload, behind a record header, into its channel's ring.
//!
//! The payload goes from the frame straight into a ring reservation (one
//! copy). The verifier only allows reservations of a constant size, so the
//! record is reserved at the smallest size class that holds it
//! ([`relay_common::record::CLASSES`]) and padded; readers use the header's length.

use aya_ebpf::{
    btf_maps::RingBuf,
    helpers::generated::{bpf_ktime_get_coarse_ns, bpf_xdp_load_bytes},
    programs::XdpContext,
};
use relay_common::{
    channel::{Channel, RING_BYTES},
    record::{RecordHeader, CLASSES},
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
    let len = d.payload_len;
    // The smallest class for header + len, by binary search over `CLASSES`.
    macro_rules! class {
        ($i:literal) => {
            into_class::<{ CLASSES[$i] }>(ctx, ring, d)
        };
    }
    const fn max(i: usize) -> usize {
        CLASSES[i] - RecordHeader::LEN
    }
    if len <= max(6) {
        if len <= max(2) {
            if len <= max(0) {
                class!(0)
            } else if len <= max(1) {
                class!(1)
            } else {
                class!(2)
            }
        } else if len <= max(4) {
            if len <= max(3) { class!(3) } else { class!(4) }
        } else if len <= max(5) {
            class!(5)
        } else {
            class!(6)
        }
    } else if len <= max(11) {
        if len <= max(8) {
            if len <= max(7) { class!(7) } else { class!(8) }
        } else if len <= max(9) {
            class!(9)
        } else if len <= max(10) {
            class!(10)
        } else {
            class!(11)
        }
    } else if len <= max(13) {
        if len <= max(12) { class!(12) } else { class!(13) }
    } else if len <= max(14) {
        class!(14)
    } else if len <= max(15) {
        class!(15)
    } else {
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
    // Whole-word stores: a `RecordHeader` literal would zero its padding
    // with a byte-wise memset call.
    let words = RecordHeader::words(
        // The coarse clock: bpf_ktime_get_ns reads the TSC, which cost about
        // 35 ns per datagram on the bench VM (a third of the program's time),
        // and nothing needs the arrival time finer than a tick.
        // SAFETY: no preconditions.
        unsafe { bpf_ktime_get_coarse_ns() },
        len as u32,
        d.src_addr,
        d.src_port.to_be_bytes(),
    );
    // SAFETY: the reservation is N >= 64 bytes, 8-byte aligned, ours until
    // submitted or discarded; the header is its first 24 bytes.
    unsafe { record.cast::<[u64; 3]>().write(words) };
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
    entry.submit(0);
    Ok(())
}
