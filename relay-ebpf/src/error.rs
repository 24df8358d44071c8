//! Why a frame does not take the relay's path, and what happens to it then.

use aya_ebpf::bindings::xdp_action;
use relay_common::{counters::Counter, datagram::NotDatagram};

/// A reason to leave a frame to the network stack.
#[derive(Clone, Copy)]
pub enum Error {
    /// The frame ends before a header it announces.
    Truncated,
    /// Not IPv4 over Ethernet.
    NotIpv4,
    /// IPv4 but not UDP.
    NotUdp,
    /// An IPv4 fragment; only whole datagrams are relayed.
    Fragment,
    /// Impossible IHL, IP total length or UDP length.
    Malformed,
    /// A datagram to a channel with a wrong IPv4 header checksum (the stack
    /// drops it, as it would in socket mode).
    BadChecksum,
    /// The channel's egress interface is not in the `EGRESS` devmap (the
    /// frame is already rewritten, so it cannot go to the stack).
    NoEgress,
}

impl From<NotDatagram> for Error {
    #[inline(always)]
    fn from(e: NotDatagram) -> Self {
        match e {
            NotDatagram::Truncated => Error::Truncated,
            NotDatagram::NotIpv4 => Error::NotIpv4,
            NotDatagram::NotUdp => Error::NotUdp,
            NotDatagram::Fragment => Error::Fragment,
            NotDatagram::Malformed => Error::Malformed,
        }
    }
}

impl Error {
    /// The verdict for a frame that failed this way. Everything the relay does
    /// not handle goes to the stack, which has its own checks.
    #[inline(always)]
    pub fn verdict(self) -> u32 {
        match self {
            Error::Truncated => xdp_action::XDP_PASS,
            Error::NotIpv4 => xdp_action::XDP_PASS,
            Error::NotUdp => xdp_action::XDP_PASS,
            Error::Fragment => xdp_action::XDP_PASS,
            Error::Malformed => xdp_action::XDP_PASS,
            Error::BadChecksum => xdp_action::XDP_PASS,
            Error::NoEgress => xdp_action::XDP_DROP,
        }
    }

    /// The counter that records frames that failed this way.
    #[inline(always)]
    pub fn counter(self) -> Counter {
        match self {
            Error::Truncated => Counter::Truncated,
            Error::NotIpv4 => Counter::NotIpv4,
            Error::NotUdp => Counter::NotUdp,
            Error::Fragment => Counter::Fragment,
            Error::Malformed => Counter::Malformed,
            Error::BadChecksum => Counter::BadChecksum,
            Error::NoEgress => Counter::ForwardFailed,
        }
    }

    /// True for frames a correct sender never produces (worth a debug log).
    #[inline(always)]
    pub fn is_unexpected(self) -> bool {
        match self {
            Error::Truncated | Error::Malformed | Error::BadChecksum | Error::NoEgress => true,
            Error::NotIpv4 | Error::NotUdp | Error::Fragment => false,
        }
    }
}
