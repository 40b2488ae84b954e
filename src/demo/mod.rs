//! The embedded demo lab.

use std::process::ExitCode;

/// Run the demo.
pub fn run(args: crate::cli::DemoArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("the demo lab is not built yet (issue 6)")
}
