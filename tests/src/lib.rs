//! Shared harness for the end-to-end tests: network namespaces that clean up
//! after themselves, the three-host topology, the relay binary and datum
//! generators.

pub mod capture;
pub mod datum;
pub mod frames;
pub mod http;
pub mod netns;
pub mod relay;
pub mod scenario;
pub mod subscriber;
pub mod topology;
pub mod xdp;
