//! Copying a datagram's payload, behind a record header, into its channel's ring.

use aya_ebpf::{
    helpers::generated::{bpf_ktime_get_ns, bpf_xdp_load_bytes},
    programs::XdpContext,
};
use relay_common::{
    channel::{Channel, MAX_PAYLOAD},
    record::RecordHeader,
};

use crate::{
    maps::{RINGS, SCRATCH, SCRATCH_PAYLOAD},
    parse::Datagram,
};

/// Why a payload did not reach the ring (counted as a ring drop).
pub enum RingError {
    /// Longer than [`MAX_PAYLOAD`].
    TooLong,
    /// No ring placed at the channel's index, or no scratch buffer.
    NoRing,
    /// Reading the payload out of the frame failed.
    Copy,
    /// The ring is full: the channel process is behind. Never blocks.
    Full,
}

/// Writes header + payload of `d` as one record into `ch`'s ring.
#[inline(always)]
pub fn copy(ctx: &XdpContext, d: &Datagram, ch: &Channel) -> Result<(), RingError> {
    if d.payload_len > MAX_PAYLOAD {
        return Err(RingError::TooLong);
    }
    let ring = RINGS.get(ch.index).ok_or(RingError::NoRing)?;
    let scratch = SCRATCH.get_ptr_mut(0).ok_or(RingError::NoRing)?;
    // Masking keeps the verifier's bound on the length; a no-op after the check above.
    let len = d.payload_len & (SCRATCH_PAYLOAD - 1);
    // SAFETY: `scratch` is this CPU's scratch value, valid for the run and used
    // by nothing else (XDP is not preempted); the header is written in place.
    unsafe {
        (*scratch).header = RecordHeader {
            arrival_ns: bpf_ktime_get_ns(),
            len: len as u32,
            src_addr: d.src_addr,
            src_port: d.src_port.to_be_bytes(),
            _pad: [0; 6],
        };
    }
    if len > 0 {
        // SAFETY: the destination is `len <= SCRATCH_PAYLOAD` bytes inside this
        // CPU's scratch buffer; the helper bounds-checks the frame side itself.
        let rc = unsafe {
            bpf_xdp_load_bytes(
                ctx.ctx,
                (d.udp_offset + relay_common::wire::UdpHdr::LEN) as u32,
                (&raw mut (*scratch).payload).cast(),
                len as u32,
            )
        };
        if rc != 0 {
            return Err(RingError::Copy);
        }
    }
    // SAFETY: header plus `len` payload bytes were initialised above and lie
    // inside the scratch value (`len <= SCRATCH_PAYLOAD`).
    let record = unsafe { core::slice::from_raw_parts(scratch.cast::<u8>(), RecordHeader::LEN + len) };
    ring.output_untyped::<[u8]>(record, 0).map_err(|_| RingError::Full)
}
