//! Errors of the XDP module. Each says what was being done and on what.

use std::io;
use std::path::PathBuf;

use super::Mode;

#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("{}", super::NOT_BUILT)]
    NotBuilt,

    #[error("no network interface named {iface:?} (in this network namespace)")]
    UnknownInterface { iface: String },

    #[error(
        "{iface} already has the speeddata XDP program attached (pinned at {}); \
         pass --force to replace it, or run `speeddata-xdp detach --iface {iface}`",
        dir.display()
    )]
    AlreadyAttached { iface: String, dir: PathBuf },

    #[error(
        "no speeddata XDP attachment on {iface} (nothing pinned at {}); \
         run `speeddata-xdp attach --iface {iface}`",
        dir.display()
    )]
    NotAttached { iface: String, dir: PathBuf },

    #[error("mounting bpffs on {} (needs root or CAP_SYS_ADMIN)", path.display())]
    Bpffs { path: PathBuf, source: io::Error },

    #[error("loading the XDP object")]
    Load(#[source] Box<aya::EbpfError>),

    #[error("loading the XDP program into the kernel")]
    Verify(#[source] Box<aya::programs::ProgramError>),

    #[error("the XDP object has no {what} named {name:?} (object and binary out of step?)")]
    MissingInObject { what: &'static str, name: &'static str },

    #[error("attaching the XDP program to {iface} in {mode} mode{hint}")]
    Attach {
        iface: String,
        mode: Mode,
        hint: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("attaching the XDP program to {iface} in {mode} mode: {message}")]
    Child { iface: String, mode: Mode, message: String },

    #[error("pinning {}", path.display())]
    Pin {
        path: PathBuf,
        #[source]
        source: Box<aya::pin::PinError>,
    },

    #[error("opening the pinned {}", path.display())]
    OpenPinned {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("the map {name} in the XDP object has an unexpected type or layout")]
    MapType {
        name: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },

    #[error("reading a channel ring: {detail}")]
    Ring { detail: String },

    #[error("writing the map {name}: {detail}")]
    MapWrite { name: &'static str, detail: String },

    #[error("{iface} cannot be an egress interface: {what}")]
    BadEgress { iface: String, what: &'static str },

    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
