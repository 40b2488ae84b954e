//! Probing through real proxies from Debian: tinyproxy (HTTP CONNECT, basic auth) and dante
//! (SOCKS5, local and remote DNS), on loopback, to an in-process TLS server on loopback. Only
//! loopback targets are ever asked for.

use crate::support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

fn probe(args: &[&str]) -> Value {
    let mut all = vec![
        "probe",
        "--once",
        "--output",
        "json",
        "--key-type",
        "ecdsa",
        "--timeout",
        "3s",
    ];
    all.extend_from_slice(args);
    // CERTPROBE_BIN runs another build (to check the test fails before the feature).
    let bin = std::env::var("CERTPROBE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_certprobe").to_string());
    let out = Command::new(bin)
        .args(&all)
        .output()
        .expect("run certprobe");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_connect_and_socks5_proxies_carry_the_probe_and_their_failures_are_typed() {
    let pki = Pki::new("proxied", &["proxied.test"]);
    let server = TlsServer::start(
        "127.0.0.1",
        pki.server_config(&[&rustls::version::TLS13], ClientAuth::None),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (hp, sp) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let tp_conf = write_file(
        dir.path(),
        "tinyproxy.conf",
        &format!("Port {hp}\nListen 127.0.0.1\nTimeout 10\nMaxClients 20\nAllow 127.0.0.1\nBasicAuth svc s3cret\nLogLevel Info\n"),
    );
    let dd_conf = write_file(
        dir.path(),
        "danted.conf",
        &format!(
            "logoutput: stderr\ninternal: 127.0.0.1 port = {sp}\nexternal: 127.0.0.1\nclientmethod: none\nsocksmethod: none\nuser.privileged: root\nuser.unprivileged: nobody\nclient pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\nsocks pass {{ from: 127.0.0.0/8 to: 127.0.0.0/8 }}\nsocks block {{ from: 0.0.0.0/0 to: 0.0.0.0/0 }}\n"
        ),
    );
    let auth = write_file(dir.path(), "auth", "svc:s3cret\n")
        .display()
        .to_string();
    let wrong = write_file(dir.path(), "wrong", "svc:nope\n")
        .display()
        .to_string();
    let mut tp = Command::new("tinyproxy");
    tp.arg("-d").arg("-c").arg(&tp_conf);
    let _tinyproxy = ChildGuard::spawn(
        tp,
        None,
        Some(([127, 0, 0, 1], hp).into()),
        Duration::from_secs(15),
    );
    let mut dd = Command::new("danted");
    dd.arg("-f").arg(&dd_conf);
    let _dante = ChildGuard::spawn(
        dd,
        None,
        Some(([127, 0, 0, 1], sp).into()),
        Duration::from_secs(15),
    );
    let http = format!("http://127.0.0.1:{hp}");
    let socks = format!("socks5://127.0.0.1:{sp}");
    let socksh = format!("socks5h://127.0.0.1:{sp}");
    let target = server.addr.to_string();
    let by_name = format!("localhost:{}", server.addr.port());
    let closed = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let fp = certprobe::chain::parse_cert(&pki.leaf.cert)
        .expect("leaf")
        .fingerprint_sha256;

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--target",
                &target,
                "--proxy",
                &http,
                "--proxy-auth-file",
                &auth,
            ],
            "ok",
        ),
        (vec!["--target", &target, "--proxy", &http], "proxy_auth"),
        (
            vec![
                "--target",
                &target,
                "--proxy",
                &http,
                "--proxy-auth-file",
                &wrong,
            ],
            "proxy_auth",
        ),
        (
            vec![
                "--target",
                &closed,
                "--proxy",
                &http,
                "--proxy-auth-file",
                &auth,
            ],
            "proxy_refused",
        ),
        (vec!["--target", &target, "--proxy", &socks], "ok"),
        (
            vec!["--target", &closed, "--proxy", &socks],
            "proxy_refused",
        ),
        (vec!["--target", &by_name, "--proxy", &socksh], "ok"),
        (
            vec!["--target", &target, "--proxy", "http://127.0.0.1:1"],
            "proxy_connect",
        ),
    ];
    let mut failures = Vec::new();
    for (mut args, want) in cases {
        args.extend_from_slice(&["--sni", "proxied.test"]);
        let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let doc = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
            probe(&refs)
        })
        .await
        .expect("join");
        let r = &doc["results"][0];
        let got = r["capture"]["failure"]["reason"]
            .as_str()
            .unwrap_or("ok")
            .to_string();
        if got != want {
            failures.push(format!(
                "{args:?}: want {want}, got {got}: {:#}",
                r["capture"]["failure"]
            ));
        } else if want == "ok" && r["chain"][0]["fingerprint_sha256"] != fp.as_str() {
            failures.push(format!("{args:?}: another chain came back"));
        }
        if args.contains(&socksh.as_str()) && r["address"] != by_name.as_str() {
            failures.push(format!(
                "socks5h: address label {} (want the name)",
                r["address"]
            ));
        }
        let detail = r["capture"]["failure"]["detail"].as_str().unwrap_or("");
        if detail.contains("s3cret") || detail.contains("nope") {
            failures.push(format!("credentials leaked into the detail: {detail}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
