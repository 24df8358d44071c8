//! The speeddata-xdp XDP program.
//!
//! Phase A: parse Ethernet / IPv4 / UDP, count what was seen, and hand every
//! frame to the network stack (`XDP_PASS`). The entry point only calls
//! [`try_speeddata`] and maps each [`Error`] variant to a verdict and a counter.
#![no_std]
#![no_main]

mod counters;
mod error;
mod maps;
mod packet;
mod parse;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use relay_common::counters::Counter;

use crate::error::Error;

#[xdp]
pub fn speeddata(ctx: XdpContext) -> u32 {
    counters::add(Counter::Packets, 1);
    counters::add(Counter::Bytes, (ctx.data_end() - ctx.data()) as u64);
    let verdict = match try_speeddata(&ctx) {
        Ok(verdict) => verdict,
        Err(error) => {
            counters::add(error.counter(), 1);
            if error.is_unexpected() {
                aya_log_ebpf::debug!(&ctx, "speeddata: malformed frame");
            }
            error.verdict()
        }
    };
    if verdict == xdp_action::XDP_PASS {
        counters::add(Counter::Passed, 1);
    }
    verdict
}

#[inline(always)]
fn try_speeddata(ctx: &XdpContext) -> Result<u32, Error> {
    let _datagram = parse::udp_ipv4(ctx)?;
    counters::add(Counter::Udp, 1);
    Ok(xdp_action::XDP_PASS)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any path that could reach here, so it never runs.
    loop {}
}

/// GPL-compatible, so GPL-only helpers (ring buffers, `bpf_xdp_load_bytes`) are usable.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
