//! `#[repr(C)]` types shared by the XDP program and userspace.
#![no_std]
