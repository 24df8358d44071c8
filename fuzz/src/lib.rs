//! Shared helpers of the speeddata-xdp fuzz targets: the schemas they use,
//! a byte cursor that turns fuzz input into choices, a generator of valid
//! Avro values, and a host model of the XDP program's frame path.
//!
//! `examples/gen_corpus.rs` writes the seed corpus from the same helpers.

pub mod cursor;
pub mod frame;
pub mod gen;
pub mod schemas;
