//! `#[repr(C)]` types shared by the XDP program (`relay-ebpf`) and userspace
//! (`relay`): map names, keys and values, counter indices, the ring record
//! header, and the parse, checksum and rewrite logic the program runs.
//!
//! Everything here is `no_std` and free of I/O so that the logic the verifier
//! runs can also be unit-tested on the host. The `user` feature adds the
//! `aya::Pod` impls userspace needs to read and write these types in maps.
#![no_std]

pub mod channel;
pub mod checksum;
pub mod counters;
pub mod datagram;
pub mod maps;
#[cfg(feature = "user")]
mod pod;
pub mod record;
pub mod rewrite;
pub mod ring;
pub mod wire;
