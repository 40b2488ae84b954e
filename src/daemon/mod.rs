//! The long-running service: metrics exposition, HTTP exporter, exporter web config.

pub mod http;
pub mod metrics;
pub mod webconfig;
