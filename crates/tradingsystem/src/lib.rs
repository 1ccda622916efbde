//! The `tradingsystem` binary's building blocks: configuration, logging and the all-in-one server. A library so
//! that benchmarks and tests can start the same server in-process.

pub mod config;
pub mod import;
pub mod jobs;
pub mod logging;
pub mod serve;
