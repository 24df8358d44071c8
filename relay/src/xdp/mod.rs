//! XDP: the embedded eBPF object, attach/detach/pinning and counters.
pub mod cli;
