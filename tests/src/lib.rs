//! Shared harness for the end-to-end tests: network namespaces that clean up
//! after themselves, the three-host topology, the relay binary and datum
//! generators.

pub mod datum;
pub mod netns;
pub mod relay;
pub mod subscriber;
pub mod topology;
