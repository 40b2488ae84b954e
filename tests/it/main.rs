//! certprobe's integration tests: one test binary (ripgrep's layout), one module per suite.
//!
//! A binary per suite linked the whole crate 35 times and ran the suites one after another;
//! here the crate is linked once and the suites' tests share the test harness's threads, so a
//! suite that waits on a server overlaps with one that computes. Shared servers (the test
//! PKI's nginx, unbound, chromedriver...) are started once per binary by the suite that needs
//! them. Run one suite with `cargo test --test it NAME::` (e.g. `cargo test --test it corpus::
//! -- --nocapture`).

mod http_common;
mod metrics_common;
mod support;

mod allocator;
mod chain_facts;
mod chain_openssl;
mod chain_verify;
mod config_examples;
mod config_fixtures;
mod config_props;
mod config_scale;
mod corpus;
mod daemon;
mod discovery_dns;
mod fidelity;
mod healthcheck;
mod hostile_inputs;
mod hostile_peers;
mod http_prometheus_scrape;
mod http_server;
mod http_tls_auth;
mod inspect;
mod listener_dos;
mod metrics_exposition;
mod oauth;
mod policy_cases;
mod policy_live;
mod policy_spec;
mod probe_foreign;
mod probe_hostile;
mod probe_rustls;
mod proxy;
mod quickstart;
mod revocation;
mod runner_cross;
mod secrets;
mod starttls;
mod statuspage_browser;
