//! Issue 16, item 11: `certprobe healthcheck` with TLS and basic auth on. The container's
//! HEALTHCHECK command, read from the Dockerfile, is run (with the image's paths and port
//! mapped to the test's) against the real daemon serving `tls_server_config` +
//! `basic_auth_users`; and the TLS/credential options against the same daemon.

use crate::support;

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

/// The Deployment of a kustomize tree, rendered by `kubectl kustomize`, as JSON.
fn rendered_deployment(tree: &str) -> serde_json::Value {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes/");
    let out = Command::new("kubectl")
        .args(["kustomize", &format!("{dir}{tree}")])
        .output()
        .expect("kubectl (Debian: kubernetes-client)");
    assert!(
        out.status.success(),
        "kubectl kustomize {tree}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut py = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    py.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let json = py.wait_with_output().unwrap();
    assert!(json.status.success());
    let docs: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    docs.into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment")
}

/// The manifests' startup, readiness and liveness probes, checked against the daemon run with
/// the manifest's own arguments (paths mapped to the test's files, the listen address to
/// loopback): the probe's port is the one the daemon listens on, its scheme the one it speaks,
/// its path answers 200 without credentials. The kubelet does not verify certificates; the
/// stand-in is `certprobe healthcheck --tls.insecure-skip-verify`.
#[test]
fn the_kubernetes_probes_reach_the_daemon_with_tls_and_basic_auth_on() {
    for (tree, tls) in [("base", false), ("overlays/web-tls", true)] {
        let dep = rendered_deployment(tree);
        let c = &dep["spec"]["template"]["spec"]["containers"][0];
        let port = free_port("127.0.0.1");
        let etc = tempfile::tempdir().unwrap();
        let d = etc.path();
        write_file(
            d,
            "certprobe.yaml",
            "global:\n  interval: 1s\nendpoints:\n  - {name: a, host: 127.0.0.1, port: 1}\n",
        );
        std::fs::create_dir_all(d.join("web")).unwrap();
        let pki = Pki::new("k8s", &["certprobe"]);
        write_file(&d.join("web"), "tls.crt", &pki.chain_pem());
        write_file(&d.join("web"), "tls.key", &pki.leaf.key_pem);
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        write_file(
            &d.join("web"),
            "web-config.yml",
            &format!(
                "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n\
                 basic_auth_users:\n  prom: '{hash}'\n"
            ),
        );
        let args: Vec<String> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                a.as_str()
                    .unwrap()
                    .replace("0.0.0.0:9915", &format!("127.0.0.1:{port}"))
                    .replace("/etc/certprobe/", &format!("{}/", d.display()))
            })
            .collect();
        assert_eq!(
            args.iter().any(|a| a.starts_with("--web.config.file=")),
            tls,
            "{tree}: {args:?}"
        );
        let named: Vec<(String, u64)> = c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["containerPort"].as_u64().unwrap(),
                )
            })
            .collect();
        let mut cmd = Command::new(bin());
        cmd.args(&args);
        let _daemon = ChildGuard::spawn(
            cmd,
            None,
            Some(([127, 0, 0, 1], port).into()),
            Duration::from_secs(30),
        );
        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            let get = &c[probe]["httpGet"];
            let port_ref = get["port"].as_str().expect("named port");
            let container_port = named
                .iter()
                .find(|(n, _)| n == port_ref)
                .map(|p| p.1)
                .unwrap_or_else(|| panic!("{tree} {probe}: no port named {port_ref}"));
            assert_eq!(
                container_port, 9915,
                "{tree} {probe}: the daemon listens on 9915"
            );
            let scheme = get["scheme"].as_str().unwrap_or("HTTP");
            assert_eq!(scheme, if tls { "HTTPS" } else { "HTTP" }, "{tree} {probe}");
            let url = format!(
                "{}://127.0.0.1:{port}{}",
                scheme.to_ascii_lowercase(),
                get["path"].as_str().unwrap()
            );
            let mut argv = vec![bin(), "healthcheck".into(), "--url".into(), url.clone()];
            if tls {
                argv.push("--tls.insecure-skip-verify".into());
            }
            // Readiness turns true after the first round: retry as the kubelet does.
            let mut last = (1, String::new());
            for _ in 0..50 {
                last = run(&argv);
                if last.0 == 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            assert_eq!(last.0, 0, "{tree} {probe} {url}: {}", last.1);
            // The other scheme fails: the probe's scheme matters.
            if tls {
                let plain = url.replacen("https://", "http://", 1);
                let (code, _) = run(&[bin(), "healthcheck".into(), "--url".into(), plain]);
                assert_eq!(code, 1, "{tree} {probe}: plain HTTP must fail against TLS");
            }
        }
    }
}
