//! The long-running service: scheduler, metrics, HTTP exporter, reload, shutdown.

pub mod http;
pub mod metrics;
pub mod scheduler;
pub mod webconfig;

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;

/// Everything `certprobe probe` (daemon mode) needs.
pub struct DaemonOptions {
    pub config_path: Option<PathBuf>,
    pub initial: Config,
    pub listen: String,
    pub web_config: Option<PathBuf>,
    /// `--shard` was given: it overrides `global.shard` on reload too.
    pub shard_override: bool,
    pub watch_config: bool,
    pub shutdown_grace: Duration,
}

/// Run the daemon until SIGTERM/SIGINT.
pub async fn run(opts: DaemonOptions) -> anyhow::Result<()> {
    let _ = opts;
    anyhow::bail!("daemon mode is being wired to the exporter (issue 4); use --once for now")
}
