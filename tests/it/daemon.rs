//! The daemon as operators run it: the real binary against the demo lab's real TLS/MTLS servers
//! on loopback; /metrics parsed (not grepped), /probe, reloads (valid and invalid), removal of
//! series, and a clean SIGTERM shutdown.

use crate::metrics_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use metrics_common::parse;

struct Daemon {
    child: Child,
    port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Minimal HTTP/1.1 client: (status, body).
fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // Chunked bodies: good enough to strip the chunk-size lines for our parsers.
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    (status, body)
}

fn dechunk(b: &str) -> String {
    let mut out = String::new();
    let mut rest = b;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

fn wait_until(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {deadline:?} waiting for {what}");
}

fn start_daemon(config: &Path) -> Daemon {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_certprobe"))
        .args(["probe", "-c"])
        .arg(config)
        .args([
            "--web.listen-address",
            &format!("127.0.0.1:{port}"),
            "--shutdown-grace",
            "5s",
            "--web.enable-lifecycle",
            "--log.level",
            "warn",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let d = Daemon { child, port };
    wait_until("/ready", Duration::from_secs(60), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok() && http(port, "GET", "/ready").0 == 200
    });
    d
}

#[test]
fn daemon_serves_metrics_probes_reloads_and_drains() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lab = rt
        .block_on(certprobe::demo::lab::Lab::start_on(dir.path(), 31))
        .unwrap();
    // Probe every second so the test sees several rounds.
    let base = std::fs::read_to_string(&lab.config_path)
        .unwrap()
        .replace("interval: 15s", "interval: 1s");
    std::fs::write(&lab.config_path, &base).unwrap();
    let mut d = start_daemon(&lab.config_path);

    // 1. After the first round: values per endpoint, parsed.
    let (code, body) = http(d.port, "GET", "/metrics");
    assert_eq!(code, 200);
    let m = parse(&body);
    let ep = |e: &'static str| [("endpoint", e)];
    assert_eq!(m.value("certprobe_probe_success", &ep("fe01")), 1.0);
    assert_eq!(m.value("certprobe_policy_status", &ep("fe01")), 0.0);
    assert_eq!(m.value("certprobe_policy_status", &ep("fe02")), 1.0);
    assert_eq!(
        m.value("certprobe_policy_status", &ep("edge-external")),
        2.0
    );
    assert_eq!(
        m.value("certprobe_mtls_enforced", &ep("edge-internal")),
        1.0
    );
    assert_eq!(
        m.value(
            "certprobe_chain_verified",
            &[("endpoint", "partner-fabrikam"), ("store", "internal")]
        ),
        0.0
    );
    assert_eq!(
        m.value(
            "certprobe_chain_verified",
            &[("endpoint", "fe01"), ("store", "internal")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "certprobe_policy_rule_failed",
            &[("endpoint", "edge-external"), ("rule", "san_wildcard")]
        ),
        1.0
    );
    assert_eq!(
        m.value("certprobe_pool_consistent", &[("pool", "fepool")]),
        0.0
    );
    assert_eq!(m.value("certprobe_config_last_reload_successful", &[]), 1.0);
    assert_eq!(m.count("certprobe_probe_success", &[]), 8);

    // 2. /probe: a configured endpoint's families only; unknown 404; ad-hoc refused.
    let (code, body) = http(d.port, "GET", "/probe?endpoint=fe01");
    assert_eq!(code, 200, "{body}");
    let p = parse(&body);
    assert_eq!(p.value("certprobe_probe_success", &ep("fe01")), 1.0);
    assert!(p
        .samples
        .iter()
        .all(|s| s.labels.get("endpoint").is_none_or(|e| e == "fe01")));
    assert_eq!(http(d.port, "GET", "/probe?endpoint=nope").0, 404);
    assert_eq!(http(d.port, "GET", "/probe?target=example.com:443").0, 403);

    // 3. A broken config is rejected: 500 with the check-config message, old config keeps going.
    std::fs::write(
        &lab.config_path,
        base.replace("profile: edge_external", "profile: edge_externl"),
    )
    .unwrap();
    let (code, body) = http(d.port, "POST", "/-/reload");
    assert_eq!(code, 500);
    assert!(body.contains("unknown profile \"edge_externl\""), "{body}");
    let before = parse(&http(d.port, "GET", "/metrics").1)
        .value("certprobe_last_probe_timestamp_seconds", &ep("fe01"));
    wait_until(
        "fe01 probed again under the old config",
        Duration::from_secs(20),
        || {
            let m = parse(&http(d.port, "GET", "/metrics").1);
            m.value("certprobe_config_last_reload_successful", &[]) == 0.0
                && m.value("certprobe_last_probe_timestamp_seconds", &ep("fe01")) > before
        },
    );

    // 4. A valid config without edge-external: 200, and its series disappear.
    let i = base.find("  # Edge external").unwrap();
    let j = base.find("  # Reverse proxy").unwrap();
    let smaller = format!("{}{}", &base[..i], &base[j..]);
    std::fs::write(&lab.config_path, smaller).unwrap();
    let (code, body) = http(d.port, "POST", "/-/reload");
    assert_eq!(code, 200, "{body}");
    let m = parse(&http(d.port, "GET", "/metrics").1);
    assert_eq!(m.value("certprobe_config_last_reload_successful", &[]), 1.0);
    assert_eq!(m.count("certprobe_probe_success", &ep("edge-external")), 0);
    assert_eq!(
        m.count("certprobe_policy_rule_failed", &ep("edge-external")),
        0
    );
    assert_eq!(m.count("certprobe_probe_success", &[]), 7);

    // 5. SIGHUP reloads too (the file is unchanged: still 7 endpoints, still successful).
    let pid = d.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        parse(&http(d.port, "GET", "/metrics").1).count("certprobe_probe_success", &[]),
        7
    );

    // 6. SIGTERM: drain and exit 0.
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = d.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "daemon did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    d.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("config reload rejected"), "{err}");
    drop(lab);
}

/// Series of each (endpoint, address, key_type) in a parsed exposition.
fn series_per_address(
    m: &metrics_common::Exposition,
) -> std::collections::BTreeMap<(String, String, String), usize> {
    let mut per = std::collections::BTreeMap::new();
    for s in &m.samples {
        if let (Some(e), Some(a)) = (s.labels.get("endpoint"), s.labels.get("address")) {
            let k = s.labels.get("key_type").cloned().unwrap_or_default();
            *per.entry((e.clone(), a.clone(), k)).or_insert(0) += 1;
        }
    }
    per
}

/// Issue 19's budget with the lync2013 profiles of the demo (real probes of the lab's servers,
/// two trust stores): a healthy address exports at most 16 series by default (47-51 before);
/// `metrics: {detail: full}` brings every family back.
#[test]
fn lync2013_healthy_addresses_stay_within_the_series_budget() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lab = rt
        .block_on(certprobe::demo::lab::Lab::start_on(dir.path(), 32))
        .unwrap();
    let base = std::fs::read_to_string(&lab.config_path).unwrap();
    let mut counts = Vec::new();
    for detail in ["default", "full"] {
        std::fs::write(
            &lab.config_path,
            base.replace(
                "interval: 15s",
                &format!("interval: 1s\n  metrics: {{detail: {detail}}}"),
            ),
        )
        .unwrap();
        let d = start_daemon(&lab.config_path);
        let mut m = parse(&http(d.port, "GET", "/metrics").1);
        wait_until("every endpoint probed", Duration::from_secs(30), || {
            m = parse(&http(d.port, "GET", "/metrics").1);
            m.count("certprobe_probe_success", &[]) >= 8
        });
        let per = series_per_address(&m);
        let healthy: Vec<_> = per
            .iter()
            .filter(|((e, a, _), _)| {
                let l = [("endpoint", e.as_str()), ("address", a.as_str())];
                m.value("certprobe_probe_success", &l) == 1.0
                    && m.value("certprobe_policy_status", &l) == 0.0
            })
            .collect();
        assert!(!healthy.is_empty(), "no healthy address: {per:?}");
        eprintln!("detail {detail}: healthy {healthy:?}; all {per:?}");
        counts.push(healthy.iter().map(|(_, n)| **n).max().unwrap());
        if detail == "default" {
            for (k, n) in &healthy {
                assert!(**n <= 16, "{k:?}: {n} series, budget 16");
            }
        }
    }
    assert!(counts[1] >= 40, "full detail: {counts:?}");
    drop(lab);
}

/// Operational failures exit with their own code, not 64 (usage or configuration): a listen
/// address that is in use is EX_UNAVAILABLE (69), a web config that does not load is 64.
#[test]
fn a_listen_address_in_use_exits_69_and_a_bad_web_config_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        "endpoints:\n  - {name: web, host: 127.0.0.1, port: 9}\n",
    )
    .unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_certprobe"))
            .args(["probe", "-c"])
            .arg(&config)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--web.listen-address", &addr]);
    assert_eq!(code, Some(69), "{err}");
    assert!(err.contains(&format!("listening on {addr}")), "{err}");

    let web = dir.path().join("web.yml");
    std::fs::write(&web, "tls_server_config: {cert_file: /nonexistent.pem}\n").unwrap();
    let free = free_port().to_string();
    let (code, err) = run(&[
        "--web.listen-address",
        &format!("127.0.0.1:{free}"),
        "--web.config.file",
        web.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("web config"), "{err}");
}
