//! Issue 16, item 11: `certprobe healthcheck` with TLS and basic auth on. The container's
//! HEALTHCHECK command, read from the Dockerfile, is run (with the image's paths and port
//! mapped to the test's) against the real daemon serving `tls_server_config` +
//! `basic_auth_users`; and the TLS/credential options against the same daemon.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{free_port, write_file, ChildGuard, Pki};

fn bin() -> String {
    std::env::var("CERTPROBE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_certprobe").into())
}

fn daemon(dir: &Path, port: u16, web: Option<&Path>) -> ChildGuard {
    let cfg = write_file(
        dir,
        "certprobe.yaml",
        "endpoints:\n  - {name: a, host: 127.0.0.1, port: 1}\n",
    );
    let mut cmd = Command::new(bin());
    cmd.args(["probe", "-c"])
        .arg(&cfg)
        .args(["--web.listen-address", &format!("127.0.0.1:{port}")]);
    if let Some(w) = web {
        cmd.arg("--web.config.file").arg(w);
    }
    ChildGuard::spawn(
        cmd,
        None,
        Some(([127, 0, 0, 1], port).into()),
        Duration::from_secs(30),
    )
}

/// The Dockerfile's HEALTHCHECK command, with the image's binary, config directory and port
/// replaced by the test's (what the container's mounts and port give it).
fn dockerfile_healthcheck(etc: &Path, port: u16) -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    let at = text
        .find("\nHEALTHCHECK ")
        .expect("HEALTHCHECK in the Dockerfile");
    let rest = &text[at..];
    let open = rest.find("CMD [").expect("exec-form CMD") + 4;
    let close = rest[open..].find(']').unwrap() + open + 1;
    let argv: Vec<String> = serde_json::from_str(&rest[open..close]).unwrap();
    assert_eq!(argv[0], "/usr/local/bin/certprobe");
    let etc = format!("{}/", etc.display());
    let mut out = vec![bin()];
    out.extend(argv[1..].iter().map(|a| {
        a.replace("127.0.0.1:9915", &format!("127.0.0.1:{port}"))
            .replace("/etc/certprobe/", &etc)
    }));
    out
}

fn run(argv: &[String]) -> (i32, String) {
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn with(argv: &[String], extra: &[&str]) -> Vec<String> {
    let mut v = argv.to_vec();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Before: `healthcheck` refused https URLs and knew no web config or credentials, so the
/// image's HEALTHCHECK failed as soon as `tls_server_config` was on.
#[test]
fn the_container_healthcheck_works_with_tls_and_basic_auth_on() {
    let pki = Pki::new("healthcheck", &["localhost"]);
    let etc = tempfile::tempdir().unwrap();
    let d = etc.path();
    write_file(d, "web.crt", &pki.chain_pem());
    write_file(d, "web.key", &pki.leaf.key_pem);
    write_file(d, "root.pem", &pki.root.pem);
    write_file(d, "password", "s3cret\n");
    write_file(d, "wrong", "guess\n");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    // The image's conventional path (see the Dockerfile's comment).
    let web = write_file(
        d,
        "web-config.yml",
        &format!(
            "tls_server_config:\n  cert_file: web.crt\n  key_file: web.key\n\
             basic_auth_users:\n  prom: '{hash}'\n"
        ),
    );
    let port = free_port("127.0.0.1");
    let mut daemon_tls = daemon(d, port, Some(&web));
    let hc = dockerfile_healthcheck(d, port);
    let (code, err) = run(&hc);
    assert_eq!(code, 0, "{hc:?}: {err}");

    // The same command without the web config speaks plain HTTP to a TLS listener: unhealthy.
    let empty = tempfile::tempdir().unwrap();
    let plain_hc = dockerfile_healthcheck(empty.path(), port);
    let (code, err) = run(&plain_hc);
    assert_eq!(code, 1, "{err}");

    // Pinning: a web config naming another certificate is refused.
    let other = tempfile::tempdir().unwrap();
    let pki2 = Pki::new("other", &["localhost"]);
    write_file(other.path(), "web.crt", &pki2.chain_pem());
    write_file(
        other.path(),
        "web-config.yml",
        "tls_server_config:\n  cert_file: web.crt\n  key_file: web.key\n",
    );
    let (code, err) = run(&dockerfile_healthcheck(other.path(), port));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not serve the certificate"), "{err}");

    // Prometheus-style options: CA file + server name, credentials from a file.
    let base = vec![bin(), "healthcheck".to_string()];
    let metrics = format!("https://127.0.0.1:{port}/metrics");
    let d_s = |f: &str| d.join(f).display().to_string();
    let ca = [
        "--tls.ca-file",
        &d_s("root.pem"),
        "--tls.server-name",
        "localhost",
    ];
    let (code, err) = run(&with(
        &base,
        &[
            &["--url", &metrics][..],
            &ca,
            &[
                "--auth.username",
                "prom",
                "--auth.password-file",
                &d_s("password"),
            ],
        ]
        .concat(),
    ));
    assert_eq!(code, 0, "{err}");
    let (code, err) = run(&with(
        &base,
        &[
            &["--url", &metrics][..],
            &ca,
            &[
                "--auth.username",
                "prom",
                "--auth.password-file",
                &d_s("wrong"),
            ],
        ]
        .concat(),
    ));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("401"), "{err}");
    let (code, err) = run(&with(&base, &[&["--url", &metrics][..], &ca].concat()));
    assert_eq!(code, 1, "no credentials: {err}");
    // Credentials in the URL work too.
    let (code, err) = run(&with(
        &base,
        &[
            &[
                "--url",
                &format!("https://prom:s3cret@127.0.0.1:{port}/metrics"),
            ][..],
            &ca,
        ]
        .concat(),
    ));
    assert_eq!(code, 0, "{err}");
    // Without a CA the listener's private certificate is not trusted; skip-verify accepts it.
    let health = format!("https://127.0.0.1:{port}/healthz");
    let (code, err) = run(&with(&base, &["--url", &health]));
    assert_eq!(code, 1, "{err}");
    let (code, err) = run(&with(
        &base,
        &["--url", &health, "--tls.insecure-skip-verify"],
    ));
    assert_eq!(code, 0, "{err}");
    // A stopped daemon is unhealthy.
    assert!(daemon_tls.terminate(Duration::from_secs(10)).is_some());
    let (code, _) = run(&hc);
    assert_eq!(code, 1);

    // Plain daemon, no web config in the mount: the same HEALTHCHECK passes over HTTP.
    let port2 = free_port("127.0.0.1");
    let plain_dir = tempfile::tempdir().unwrap();
    let _plain = daemon(plain_dir.path(), port2, None);
    let (code, err) = run(&dockerfile_healthcheck(plain_dir.path(), port2));
    assert_eq!(code, 0, "{err}");
}
