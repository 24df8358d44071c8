//! The speeddata-xdp XDP program.
//!
//! Parses Ethernet / IPv4 / UDP, finds the datagram's channel by destination
//! port (or group and port), copies the payload into that channel's ring
//! buffer, and rewrites the frame into the full-rate multicast datagram
//! (`XDP_TX` or a devmap redirect). Everything else goes to the stack. The
//! entry point only calls [`try_speeddata`] and maps each [`Error`] variant to
//! a verdict and a counter.
#![no_std]
#![no_main]
// BPF atomics (`cmpxchg`, `xchg`) through the intrinsics: see `ring`.
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod channel;
mod counters;
mod error;
mod forward;
mod maps;
mod packet;
mod ring;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use relay_common::{
    channel::{FLAG_FORWARD, FLAG_PASS, FLAG_RING},
    counters::Counter,
    datagram::{self, Frame},
};

use crate::{counters::Counters, error::Error, packet::XdpFrame, ring::RingError};

/// `frags`: jumbo datagrams may arrive as multi-buffer frames (Linux >= 5.18);
/// the headers are always in the linear part, the payload copy reads across
/// fragments, and lengths use the whole frame ([`XdpFrame`]).
#[xdp(frags)]
pub fn speeddata(ctx: XdpContext) -> u32 {
    // One lookup for all interface-wide counters of this CPU.
    let Some(counters) = Counters::this_cpu() else {
        return xdp_action::XDP_PASS;
    };
    let frame = XdpFrame::new(&ctx);
    counters.add(Counter::Packets, 1);
    counters.add(Counter::Bytes, frame.frame_len() as u64);
    let verdict = match try_speeddata(&ctx, &frame, &counters) {
        Ok(verdict) => verdict,
        Err(error) => {
            counters.add(error.counter(), 1);
            if error.is_unexpected() {
                aya_log_ebpf::debug!(&ctx, "speeddata: malformed frame or missing egress");
            }
            error.verdict()
        }
    };
    if verdict == xdp_action::XDP_PASS {
        counters.add(Counter::Passed, 1);
    }
    verdict
}

#[inline(always)]
fn try_speeddata(ctx: &XdpContext, frame: &XdpFrame, counters: &Counters) -> Result<u32, Error> {
    let d = datagram::udp_ipv4(frame)?;
    counters.add(Counter::Udp, 1);
    let Some(ch) = channel::lookup(&d) else {
        return Ok(xdp_action::XDP_PASS);
    };
    // Before anything is copied or rewritten: socket mode never sees such a
    // datagram (the stack drops it), so neither does the archive here.
    if !datagram::ipv4_checksum_ok(frame, &d) {
        return Err(Error::BadChecksum);
    }
    counters.add(Counter::Matched, 1);
    // One lookup for the channel's counters; `None` only for an index beyond
    // the array, which userspace never installs (then nothing is counted).
    // SAFETY: the only call this run.
    let mut ch_counters = unsafe { counters::channel(ch.index) };
    if let Some(c) = ch_counters.as_deref_mut() {
        c.packets += 1;
        c.bytes += d.payload_len as u64;
    }

    if ch.has(FLAG_RING) {
        if let Err(e) = ring::copy(ctx, &d, &ch) {
            counters.add(Counter::RingDrops, 1);
            if let Some(c) = ch_counters.as_deref_mut() {
                c.ring_drops += 1;
            }
            let why = match e {
                RingError::TooLong => "payload too long",
                RingError::NoRing => "no ring",
                RingError::Copy => "copy failed",
                RingError::Full => "ring full",
                RingError::Contended => "ring contended",
            };
            aya_log_ebpf::debug!(ctx, "speeddata: ring drop on channel {}: {}", ch.index, why);
        }
    }

    if ch.has(FLAG_FORWARD) {
        let verdict = forward::to_group(ctx, &d, &ch)?;
        counters.add(Counter::Forwarded, 1);
        if let Some(c) = ch_counters {
            c.forwarded += 1;
        }
        return Ok(verdict);
    }
    Ok(if ch.has(FLAG_PASS) { xdp_action::XDP_PASS } else { xdp_action::XDP_DROP })
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any path that could reach here, so it never runs.
    loop {}
}

/// GPL-compatible, so GPL-only helpers are usable.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
