//! speeddata-xdp: a UDP telemetry relay.
//!
//! The full-rate path runs in the kernel (XDP) or, as a fallback, in the
//! channel process with batched socket calls; every channel process validates,
//! decimates and archives its datums.

pub mod api;
pub mod avro;
pub mod channel;
pub mod config;
pub mod demo;
pub mod iface;
pub mod registry;
pub mod retention;
pub mod supervisor;
pub mod xdp;
