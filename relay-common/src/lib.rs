//! `#[repr(C)]` types shared by the XDP program (`relay-ebpf`) and userspace
//! (`relay`): map names, counter indices, and the wire views both sides use.
//!
//! Everything here is `no_std` and free of I/O so that the logic the verifier
//! runs can also be unit-tested on the host. The `user` feature adds the
//! `aya::Pod` impls userspace needs to read and write these types in maps.
#![no_std]

pub mod counters;
pub mod maps;
pub mod wire;
