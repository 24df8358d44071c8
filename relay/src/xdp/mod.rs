//! XDP: the embedded eBPF object, attach/detach/pinning and counters.
//!
//! The kernel program (`relay-ebpf`) is embedded at build time when it has
//! been built (see `relay/build.rs`); without it the relay runs in socket mode
//! only and [`embedded_object`] returns `None`.
//!
//! An attachment is pinned under `/sys/fs/bpf/speeddata/<IF>@ns<INODE>/` (the link and
//! the maps listed in [`relay_common::maps::PINNED`]), so it outlives the
//! process that made it; [`detach`] removes the pins, which detaches the
//! program.

mod attach;
mod channels;
pub mod cli;
mod error;
mod pin;
mod ring;
mod stats;
mod sys;

pub use attach::{
    attach, attach_in_child, attached_build_matches, build_id, detach, is_attached, load, load_committing, load_object, relink,
    xdp_program, Attachment, Commit, Detached, Mode,
};
pub use channels::{channel_entry, ChannelMaps, Egress, Forward, Route};
pub use error::XdpError;
pub use pin::{ensure_bpffs, pin_dir, PIN_ROOT};
pub use ring::{RingReader, RingRecord};
pub use stats::{read_counters, Counters};
pub use sys::{ifindex, is_up};

/// What to tell a user who asks for XDP from a binary built without it.
pub const NOT_BUILT: &str = "built without the XDP program: run `cargo xtask build` \
    (or `cargo xtask build-ebpf`, then rebuild speeddata-xdp) to embed it, or use socket mode";

/// The XDP object embedded in this binary, 8-byte aligned as aya requires;
/// `None` when the binary was built without it (socket mode only).
pub fn embedded_object() -> Option<&'static [u8]> {
    #[cfg(speeddata_ebpf)]
    {
        Some(aya::include_bytes_aligned!(env!("SPEEDDATA_EBPF_OBJ")))
    }
    #[cfg(not(speeddata_ebpf))]
    {
        None
    }
}

/// The embedded object, or [`XdpError::NotBuilt`].
pub fn object() -> Result<&'static [u8], XdpError> {
    embedded_object().ok_or(XdpError::NotBuilt)
}
