//! Issue 7, "Bad configuration and operations": secrets (the MTLS client private key, basic-auth
//! passwords and their bcrypt hashes) never appear in any output of the real binary — `probe
//! --once`, `check-config`, and the daemon with a `--web.config.file` — at debug level, in text
//! and JSON logs, nor in /metrics. A key file readable by others produces a warning.

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_certprobe");
const PASSWORD: &str = "s3cr3t-Pa55w0rd-7f3a9c-never-logged";
const WRONG_PASSWORD: &str = "wr0ng-Pa55w0rd-c81e20-never-logged";

/// The secrets of one run, and where they must not appear.
struct Secrets {
    /// Each base64 line of the private key PEM body, the body joined, and its DER in hex.
    key_fragments: Vec<String>,
    /// Plaintext passwords and the bcrypt hash.
    auth: Vec<String>,
}

impl Secrets {
    fn new(key_pem: &str, extra: &[&str]) -> Self {
        let body: Vec<&str> = key_pem
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("-----"))
            .collect();
        let joined = body.concat();
        let der = base64::engine::general_purpose::STANDARD
            .decode(&joined)
            .expect("key PEM body is base64");
        let mut key_fragments: Vec<String> = body
            .iter()
            .filter(|l| l.len() >= 16)
            .map(|l| l.to_string())
            .collect();
        assert!(!key_fragments.is_empty(), "the key has base64 lines");
        key_fragments.push(joined);
        key_fragments.push(hex::encode(&der));
        key_fragments.push(hex::encode_upper(&der));
        Self {
            key_fragments,
            auth: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn assert_absent(&self, label: &str, text: &str) {
        for s in self.key_fragments.iter().chain(&self.auth) {
            assert!(
                !text.contains(s.as_str()),
                "{label} contains a secret ({}...):\n{text}",
                &s[..s.len().min(12)]
            );
        }
    }
}

/// An MTLS server requiring a client certificate, the client identity files, and a config that
/// uses them.
struct MtlsLab {
    dir: tempfile::TempDir,
    config: PathBuf,
    key_path: PathBuf,
    key_pem: String,
    _server: TlsServer,
}

async fn mtls_lab(key_mode: u32, interval: &str) -> MtlsLab {
    let pki = Pki::new("secrets", &["mtls.test"]);
    let client_root = Ca::root("secrets client root");
    let client = client_root.client("probe-client");
    let server = TlsServer::start(
        "127.0.0.1",
        pki.server_config(&[], ClientAuth::Required(vec![client_root.cert.clone()])),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_file(d, "root.pem", &pki.root.pem);
    write_file(d, "client.pem", &client.pem);
    let key_path = write_file(d, "client.key", &client.key_pem);
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(key_mode))
        .expect("chmod key");
    let yaml = format!(
        "global:\n  interval: {interval}\n  connect_timeout: 2s\n  timeout: 3s\n  verdict_timeout: 500ms\ntrust_stores:\n  lab:\n    class: internal\n    pem_files: [root.pem]\nendpoints:\n  - name: mtls\n    host: 127.0.0.1\n    port: {}\n    sni: mtls.test\n    client_cert: client.pem\n    client_key: client.key\n    expect_client_auth: required\n",
        server.addr.port()
    );
    let config = write_file(d, "certprobe.yaml", &yaml);
    MtlsLab {
        dir,
        config,
        key_path,
        key_pem: client.key_pem.clone(),
        _server: server,
    }
}

fn run(args: &[&str]) -> (Output, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("CERTPROBE_LOG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run certprobe");
    let text = format!(
        "--- status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_once_and_check_config_never_print_the_client_key() {
    let lab = mtls_lab(0o600, "60s").await;
    let secrets = Secrets::new(&lab.key_pem, &[]);
    let cfg = path(&lab.config);
    let mut seen = 0;
    for format in ["json", "text"] {
        for output in ["json", "table"] {
            let (out, text) = tokio::task::block_in_place(|| {
                run(&[
                    "--log.level",
                    "debug",
                    "--log.format",
                    format,
                    "probe",
                    "--once",
                    "-c",
                    cfg,
                    "--output",
                    output,
                    "--verbose",
                ])
            });
            secrets.assert_absent(&format!("probe --once ({format} logs, {output})"), &text);
            // The probe really used the key: the MTLS handshake succeeded.
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("mtls"), "{text}");
            if output == "json" {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                    .unwrap_or_else(|e| panic!("json output: {e}\n{text}"));
                let s = v.to_string();
                assert!(s.contains("\"client_cert_sent\":true"), "{text}");
                assert!(s.contains("\"accepted\":true"), "{text}");
            }
            assert!(!text.contains("readable by group/others"), "{text}");
            seen += 1;
        }
        let (out, text) = tokio::task::block_in_place(|| {
            run(&[
                "--log.level",
                "debug",
                "--log.format",
                format,
                "check-config",
                "-c",
                cfg,
            ])
        });
        assert!(out.status.success(), "{text}");
        secrets.assert_absent(&format!("check-config ({format} logs)"), &text);
        seen += 1;
    }
    assert_eq!(seen, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_readable_by_others_is_warned_about() {
    let lab = mtls_lab(0o644, "60s").await;
    let secrets = Secrets::new(&lab.key_pem, &[]);
    let cfg = path(&lab.config);
    let key = lab.key_path.display().to_string();
    let (out, text) = tokio::task::block_in_place(|| run(&["check-config", "-c", cfg]));
    assert!(out.status.success(), "a warning is not an error: {text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("readable by group/others") && stderr.contains(&key),
        "{text}"
    );
    assert!(stderr.contains("644"), "{text}");
    secrets.assert_absent("check-config", &text);
    let (_, text) = tokio::task::block_in_place(|| {
        run(&["--log.level", "debug", "probe", "--once", "-c", cfg])
    });
    let stderr_once = text.split("--- stderr").nth(1).unwrap_or("");
    assert!(
        stderr_once.contains("readable by group/others"),
        "probe --once warns too: {text}"
    );
    secrets.assert_absent("probe --once", &text);
    // 0600: no warning.
    std::fs::set_permissions(&lab.key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, text) = tokio::task::block_in_place(|| run(&["check-config", "-c", cfg]));
    assert!(!text.contains("readable by group/others"), "{text}");
    drop(lab.dir);
}

// === The daemon with basic auth ===

/// One HTTP/1.1 GET with an optional basic-auth pair; returns (status, whole response).
fn http_get(addr: SocketAddr, path: &str, auth: Option<(&str, &str)>) -> (u16, String) {
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some((user, pass)) = auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        req.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes()).expect("write request");
    let mut response = Vec::new();
    let _ = tcp.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_with_basic_auth_never_logs_or_exports_secrets() {
    let lab = mtls_lab(0o600, "1s").await;
    let hash = bcrypt::hash(PASSWORD, 6).expect("bcrypt");
    let secrets = Secrets::new(&lab.key_pem, &[PASSWORD, WRONG_PASSWORD, &hash]);
    let web = write_file(
        lab.dir.path(),
        "web.yml",
        &format!("basic_auth_users:\n  prometheus: '{hash}'\n"),
    );
    let port = free_port("127.0.0.1");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let listen = addr.to_string();
    let mut child = Command::new(BIN)
        .args([
            "--log.level",
            "debug",
            "--log.format",
            "json",
            "probe",
            "-c",
            path(&lab.config),
            "--web.listen-address",
            &listen,
            "--web.config.file",
            path(&web),
        ])
        .env_remove("CERTPROBE_LOG")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn daemon");
    let pid = child.id();
    // Collect all output on threads so pipes never fill.
    let out_thread = {
        let mut s = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v);
            v
        })
    };
    let err_thread = {
        let mut s = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v);
            v
        })
    };
    let result = tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "daemon did not listen on {addr}");
            assert!(
                child.try_wait().expect("try_wait").is_none(),
                "daemon exited early"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut bodies = Vec::new();
        let (status, body) = http_get(addr, "/metrics", None);
        assert_eq!(status, 401, "no credentials: {body}");
        bodies.push(body);
        let (status, body) = http_get(addr, "/metrics", Some(("prometheus", WRONG_PASSWORD)));
        assert_eq!(status, 401, "wrong password: {body}");
        bodies.push(body);
        // A few rounds at a 1 s interval, then the authenticated scrapes.
        let deadline = Instant::now() + Duration::from_secs(20);
        let metrics = loop {
            let (status, body) = http_get(addr, "/metrics", Some(("prometheus", PASSWORD)));
            assert_eq!(status, 200, "right password: {body}");
            if body.contains("certprobe_probe_success{") || Instant::now() > deadline {
                break body;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        std::thread::sleep(Duration::from_secs(3));
        let (status, again) = http_get(addr, "/metrics", Some(("prometheus", PASSWORD)));
        assert_eq!(status, 200);
        bodies.push(metrics.clone());
        bodies.push(again);
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        (bodies, metrics, status)
    });
    let stdout = String::from_utf8_lossy(&out_thread.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err_thread.join().unwrap()).into_owned();
    let (bodies, metrics, status) = result;
    let all = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(status.is_some(), "daemon did not stop on SIGTERM:\n{all}");
    // The run really probed the MTLS endpoint with the key, and logged at debug level in JSON.
    assert!(
        metrics.contains("certprobe_probe_success{") && metrics.contains("endpoint=\"mtls\""),
        "{metrics}"
    );
    assert!(stderr.contains("\"level\":\"DEBUG\"") || stdout.contains("\"level\":\"DEBUG\""));
    secrets.assert_absent("daemon output", &all);
    for (i, body) in bodies.iter().enumerate() {
        secrets.assert_absent(&format!("HTTP response {i}"), body);
    }
}
