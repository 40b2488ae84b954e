//! `certprobe demo`: an embedded lab that plays a Lync Server 2013 estate on loopback, probed by
//! the same code path as production (config loader, probes, evaluation, daemon, exporter).

pub mod lab;
pub mod pki;

use std::process::ExitCode;

use crate::cli::{DemoArgs, OutputFormat};
use crate::config::Config;

/// Why the demo could not run. [`Error::exit_code`]: the runtime is the OS's (71), an invalid
/// embedded config is a bug reported as a config error (64), and everything else is the lab
/// not being set up on this machine: its loopback addresses or ports, its files (69).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    /// Creating the lab directory or writing one of its files.
    #[error("{0}")]
    Io(String, #[source] std::io::Error),
    /// Binding one of the lab's servers.
    #[error("{0}")]
    Bind(String, #[source] std::io::Error),
    /// Generating the lab PKI.
    #[error("{0}")]
    Pki(&'static str, #[source] rcgen::Error),
    #[error("{0}")]
    Pem(&'static str, #[source] rustls_pki_types::pem::Error),
    #[error("{0}")]
    Tls(&'static str, #[source] rustls::Error),
    #[error("lab client verifier")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    #[error("the demo config is invalid (a bug):\n{0}")]
    Config(crate::config::ConfigErrors),
    /// The daemon on the lab's config (its own exit code).
    #[error(transparent)]
    Daemon(Box<crate::daemon::Error>),
}

impl Error {
    /// The process exit code for this failure (sysexits.h).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Runtime(_) => crate::cli::EXIT_OSERR,
            Error::Config(_) => crate::cli::EXIT_USAGE,
            Error::Daemon(d) => d.exit_code(),
            _ => crate::cli::EXIT_UNAVAILABLE,
        }
    }
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// Run the demo (blocking).
pub fn run(args: DemoArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    rt.block_on(run_async(args))
}

async fn run_async(args: DemoArgs) -> Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("certprobe-demo-{}", std::process::id()));
    let lab = lab::Lab::start_on(&dir, args.lab_net).await?;
    let result = drive(&lab, &args).await;
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn drive(lab: &lab::Lab, args: &DemoArgs) -> Result<ExitCode> {
    let cfg = Config::load(&lab.config_path).map_err(Error::Config)?;
    if args.once {
        let code = crate::cli::run_once(&cfg, None, args.output, false).await;
        return Ok(ExitCode::from(code));
    }
    eprintln!(
        "certprobe demo: lab of {} endpoints on 127.0.{}.x, PKI and config in {}",
        cfg.endpoints.len(),
        args.lab_net,
        lab.dir.display()
    );
    let code = crate::cli::run_once(&cfg, None, OutputFormat::Table, false).await;
    eprintln!();
    eprintln!(
        "That was `certprobe probe --once -c {}` (exit code {code}).",
        lab.config_path.display()
    );
    eprintln!("Now running the daemon on the same config. Try, in another terminal:");
    eprintln!(
        "  open http://{}/ in a browser (the status page: fleet, worst first; click an endpoint)",
        args.listen
    );
    eprintln!("  curl -s http://{}/metrics | grep -E 'certprobe_(policy_status|policy_rule_failed|pool_consistent|mtls_enforced)' | grep -v ' 0$'", args.listen);
    eprintln!(
        "  curl -s 'http://{}/probe?endpoint=edge-external'",
        args.listen
    );
    eprintln!(
        "What to look at: fe02 expires in 10 days and presents another key than fe01 (pool fepool"
    );
    eprintln!(
        "inconsistent); fe-web-internal is signed with SHA-1 by the legacy Windows Server 2003 CA;"
    );
    eprintln!(
        "edge-external carries a wildcard SAN and lacks sip.fabrikam.com; reverse-proxy lacks"
    );
    eprintln!("lyncdiscover.fabrikam.com; partner-fabrikam chains to a root nobody here trusts;");
    eprintln!(
        "the public CA revoked edge-external's certificate, and the CRL shard of reverse-proxy's"
    );
    eprintln!(
        "runs out in 6 hours (the lab's CAs publish CRLs on 127.0.{}.9:18080).",
        args.lab_net
    );
    eprintln!("Press Ctrl-C to stop.");
    crate::daemon::run(crate::daemon::DaemonOptions {
        config_path: Some(lab.config_path.clone()),
        initial: cfg,
        listen: args.listen.clone(),
        web_config: args.web_config.clone(),
        shard_override: false,
        watch_config: false,
        shutdown_grace: std::time::Duration::from_secs(5),
        web: crate::daemon::listener::WebArgs::default(),
    })
    .await
    .map_err(|e| Error::Daemon(Box::new(e)))?;
    Ok(ExitCode::SUCCESS)
}
