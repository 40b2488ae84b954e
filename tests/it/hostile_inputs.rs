//! Issue 16, items 5, 8 and 12: files that are not files, values that are too big, and
//! certificate strings that try to repaint the terminal, through the real binary.

use crate::support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustls::version::{TLS12, TLS13};
use support::{server_config, write_file, ClientAuth, Pki, TlsServer};

/// Run the binary with a deadline and an address-space limit: (exit code, stdout, stderr).
fn run(args: &[&str], deadline: Duration) -> (Option<i32>, String, String) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 1048576 && exec \"$0\" \"$@\"")
        .arg(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            let mut err = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code(), out, err);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("certprobe {args:?} did not finish within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The binary under test (CERTPROBE_BIN: another build, for "before" runs).
fn bin() -> String {
    std::env::var("CERTPROBE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_certprobe").into())
}

fn mkfifo(p: &Path) {
    assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
}

/// Before: `check-config -c /dev/zero` read until it had used ~1 GB; a FIFO as client_key
/// blocked until someone wrote to it.
#[test]
fn config_files_that_are_not_regular_files_are_refused_at_once() {
    let (code, _, err) = run(
        &["check-config", "-c", "/dev/zero"],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("/dev/zero is a character device, not a regular file"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("client.key");
    mkfifo(&fifo);
    let pki = Pki::new("files", &["files.test"]);
    write_file(dir.path(), "client.pem", &pki.leaf.pem);
    let cfg = write_file(
        dir.path(),
        "c.yaml",
        "endpoints:\n  - {name: a, host: 127.0.0.1, port: 1, client_cert: client.pem, client_key: client.key}\n",
    );
    let (code, _, err) = run(
        &["check-config", "-c", cfg.to_str().unwrap()],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("client.key is a FIFO, not a regular file"),
        "{err}"
    );

    // A sparse 17 MiB "PEM bundle": refused by size, never read.
    let big = dir.path().join("big.pem");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(17 * 1024 * 1024)
        .unwrap();
    let cfg = write_file(
        dir.path(),
        "d.yaml",
        "trust_stores:\n  x: {class: internal, pem_files: [big.pem]}\nendpoints:\n  - {name: a, host: 127.0.0.1, port: 1}\n",
    );
    let (code, _, err) = run(
        &["check-config", "-c", cfg.to_str().unwrap()],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("more than the limit of 16777216 bytes"),
        "{err}"
    );
    // A FIFO as the web config is refused at start, too.
    let web = dir.path().join("web.yml");
    mkfifo(&web);
    let ok = write_file(
        dir.path(),
        "ok.yaml",
        "endpoints:\n  - {name: a, host: 127.0.0.1, port: 1}\n",
    );
    let (code, _, err) = run(
        &[
            "probe",
            "-c",
            ok.to_str().unwrap(),
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.config.file",
            web.to_str().unwrap(),
        ],
        Duration::from_secs(10),
    );
    assert_ne!(code, Some(0));
    assert!(
        err.contains("web.yml is a FIFO, not a regular file"),
        "{err}"
    );
}

/// Before: a reload that read a FIFO froze the control loop and SIGTERM waited for a writer.
#[test]
fn sigterm_ends_the_daemon_during_a_reload_of_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("fifo", &["fifo.test"]);
    write_file(dir.path(), "client.pem", &pki.leaf.pem);
    write_file(dir.path(), "client.key", &pki.leaf.key_pem);
    let cfg = write_file(
        dir.path(),
        "c.yaml",
        "endpoints:\n  - {name: a, host: 127.0.0.1, port: 1, interval: 1h, client_cert: client.pem, client_key: client.key}\n",
    );
    let port = support::free_port("127.0.0.1");
    let mut cmd = Command::new(bin());
    cmd.args(["probe", "-c"])
        .arg(&cfg)
        .args(["--web.listen-address", &format!("127.0.0.1:{port}")]);
    let mut d = support::ChildGuard::spawn(
        cmd,
        None,
        Some(format!("127.0.0.1:{port}").parse().unwrap()),
        Duration::from_secs(30),
    );
    std::fs::remove_file(dir.path().join("client.key")).unwrap();
    mkfifo(&dir.path().join("client.key"));
    let pid = d.pid().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let status = d
        .terminate(Duration::from_secs(10))
        .expect("exit after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(d.output().contains("not a regular file"), "{}", d.output());
}

/// Before: a CN of `ESC[2K\r ESC[32mOK fake-endpoint` was printed raw by the table and
/// `inspect`, painting a fake green OK row.
#[test]
fn certificate_strings_cannot_repaint_the_terminal() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pki = Pki::new("term", &["term.test"]);
    let evil_cn = "\u{1b}[2K\r \u{1b}[32mOK fake-endpoint\n";
    let leaf = pki.intermediate.leaf(evil_cn, &["term.test"]);
    let cfg = server_config(
        vec![leaf.cert.clone(), pki.intermediate.cert.clone()],
        leaf.key_der(),
        &[&TLS13, &TLS12],
        ClientAuth::None,
    );
    let server = rt.block_on(TlsServer::start("127.0.0.1", cfg));
    let target = format!("127.0.0.1:{}", server.addr.port());
    let (_, table, err) = run(
        &[
            "probe",
            "--once",
            "--target",
            &target,
            "--sni",
            "term.test",
            "-v",
        ],
        Duration::from_secs(30),
    );
    let (_, inspect, err2) = run(
        &["inspect", "--target", &target, "--sni", "term.test"],
        Duration::from_secs(30),
    );
    for (what, out) in [
        ("table", &table),
        ("inspect", &inspect),
        ("stderr", &err),
        ("stderr", &err2),
    ] {
        assert!(
            !out.contains('\u{1b}') && !out.contains('\r'),
            "{what} carries raw control characters: {out:?}"
        );
    }
    assert!(
        table.contains("\\x1b[2K\\r \\x1b[32mOK fake-endpoint\\n"),
        "{table}"
    );
    assert!(
        inspect.contains("\\x1b[2K\\r \\x1b[32mOK fake-endpoint\\n"),
        "{inspect}"
    );
    // One table row per address: the CN's newline did not start another.
    assert_eq!(
        table.lines().filter(|l| l.contains(&target)).count(),
        1,
        "{table}"
    );
}

/// Items 8 and 12: control characters in names and labels are refused at load with a message
/// that names them; a 20 MB value is not echoed whole.
#[test]
fn names_and_labels_with_control_characters_are_refused_and_echoes_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("name: \"fe\\nfake\"", "endpoints[0].name: must not contain control characters: found a newline (\\n)"),
        ("name: \"fe\\rx\"", "found a carriage return (\\r)"),
        ("name: \"fe\\tx\"", "found a tab (\\t)"),
        ("name: \"fe\\0x\"", "found a NUL byte (\\0)"),
        ("name: \"fe\\ex\"", "found an escape character (\\x1b)"),
        ("name: fe, labels: {site: \"\\e[31mhq\"}", "endpoints[0].labels.site: label values must not contain control characters: found an escape character (\\x1b)"),
    ];
    for (i, (yaml, want)) in cases.iter().enumerate() {
        let cfg = write_file(
            dir.path(),
            &format!("c{i}.yaml"),
            &format!("endpoints:\n  - {{{yaml}, host: 127.0.0.1, port: 1}}\n"),
        );
        let (code, _, err) = run(
            &["check-config", "-c", cfg.to_str().unwrap()],
            Duration::from_secs(10),
        );
        assert_eq!(code, Some(64), "{yaml}: {err}");
        assert!(err.contains(want), "{yaml}: want {want:?} in\n{err}");
    }
    let sni = "a".repeat(20 * 1024 * 1024);
    let cfg = write_file(
        dir.path(),
        "big.yaml",
        &format!("endpoints:\n  - {{name: a, host: 127.0.0.1, port: 1, sni: \"{sni}-\"}}\n"),
    );
    let (code, _, err) = run(
        &["check-config", "-c", cfg.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(64));
    assert!(err.len() < 4096, "{} bytes of error output", err.len());
    assert!(err.contains("bytes in all"), "{err}");
}

/// Files named on the command line follow the config's rules (regular files only, opened
/// non-blocking, capped). Before: `--ca /dev/zero` and `inspect --file /dev/zero` read until
/// the address space ran out, and a FIFO as `--ca`, `--client-cert`, `--client-key` or
/// `inspect --file` blocked until someone wrote to it.
#[test]
fn command_line_files_that_are_not_regular_files_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.pem");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    let pki = Pki::new("cli-files", &["files.test"]);
    let cert = write_file(dir.path(), "client.pem", &pki.leaf.pem);
    let key = write_file(dir.path(), "client.key", &pki.leaf.key_pem);
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let once = [
        "probe",
        "--once",
        "--target",
        "127.0.0.1:1",
        "--timeout",
        "1s",
    ];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            [&once[..], &["--ca", "/dev/zero"]].concat(),
            "/dev/zero is a character device",
        ),
        ([&once[..], &["--ca", fifo]].concat(), "fifo.pem is a FIFO"),
        (
            [&once[..], &["--public-ca", "/dev/zero"]].concat(),
            "/dev/zero is a character device",
        ),
        (
            [&once[..], &["--client-cert", fifo, "--client-key", key]].concat(),
            "fifo.pem is a FIFO",
        ),
        (
            [
                &once[..],
                &["--client-cert", cert, "--client-key", "/dev/zero"],
            ]
            .concat(),
            "/dev/zero is a character device",
        ),
        (
            [&once[..], &["--client-cert", cert, "--client-key", fifo]].concat(),
            "fifo.pem is a FIFO",
        ),
        (
            vec!["probe", "--once", "--targets-file", "/dev/zero"],
            "/dev/zero is a character device",
        ),
        (
            vec!["inspect", "--file", "/dev/zero"],
            "/dev/zero is a character device",
        ),
        (vec!["inspect", "--file", fifo], "fifo.pem is a FIFO"),
    ];
    for (args, want) in cases {
        let t = Instant::now();
        let (code, _, err) = run(&args, Duration::from_secs(10));
        assert!(code.is_some_and(|c| c != 0), "{args:?}: exit {code:?}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(err.contains("not a regular file"), "{args:?}: {err}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{args:?}: {:?}",
            t.elapsed()
        );
    }
    // A 2 MiB sparse "key" is refused by size, never read; a good pair still works.
    let big = dir.path().join("big.key");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(2 * 1024 * 1024)
        .unwrap();
    let args = [
        &once[..],
        &["--client-cert", cert, "--client-key", big.to_str().unwrap()],
    ]
    .concat();
    let (code, _, err) = run(&args, Duration::from_secs(10));
    assert!(code.is_some_and(|c| c != 0), "{err}");
    assert!(
        err.contains("more than the limit of 1048576 bytes"),
        "{err}"
    );
    let (code, out, err) = run(
        &["inspect", "--file", cert, "--sni", "files.test"],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("files.test"), "{out}");
}

/// Item 12: `probe --once` showed `OK` beside `REASON tls_error` when a server's chain was
/// captured and the handshake then failed (a renegotiating server). The row's status now
/// agrees with its reason: WARNING, with a note; the same chain from a completed handshake is
/// OK, and a judged failure (a client certificate the endpoint expects to be rejected) keeps
/// its verdict.
#[test]
fn a_failed_handshake_with_a_good_chain_is_not_ok() {
    use certprobe::probe::{Capture, Failure, FailureReason};
    let pki = Pki::new("reneg", &["reneg.test"]);
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "root.pem", &pki.root.pem);
    let cfg_path = write_file(
        dir.path(),
        "c.yaml",
        "trust_stores:\n  lab: {class: internal, pem_files: [root.pem]}\n\
         endpoints:\n  - {name: reneg, host: 127.0.0.1, port: 1, sni: reneg.test}\n",
    );
    let cfg = certprobe::config::Config::load(&cfg_path).unwrap();
    let ctx = certprobe::runner::EvalContext {
        stores: cfg.stores.clone(),
        policy: cfg.policy.clone(),
        at: None,
    };
    let ep = &cfg.endpoints[0];
    let now = certprobe::runner::unix_now();
    let capture = |failure: Option<Failure>| {
        let mut c = Capture::new("127.0.0.1:1".parse().unwrap(), Some("reneg.test".into()));
        c.chain = pki.chain();
        c.tls_version = Some(certprobe::vocab::TlsVersion::Tls12);
        c.failure = failure;
        c
    };
    let done =
        certprobe::runner::evaluate_capture(ep, "127.0.0.1:1".into(), capture(None), &ctx, now);
    assert_eq!(
        done.evaluation.status.human(),
        "OK",
        "{:?}",
        done.evaluation
    );
    let failed = certprobe::runner::evaluate_capture(
        ep,
        "127.0.0.1:1".into(),
        capture(Some(Failure::new(
            FailureReason::TlsError,
            "peer misbehaved: renegotiation refused",
        ))),
        &ctx,
        now,
    );
    assert_eq!(failed.evaluation.status.human(), "WARNING");
    assert!(failed
        .evaluation
        .info
        .iter()
        .any(|i| i.contains("the handshake did not complete (tls_error)")));
    let table = certprobe::report::render_table(&[failed], &[], now as i64, false);
    let row = table.lines().nth(1).unwrap();
    assert!(
        row.starts_with("WARNING") && row.ends_with("tls_error"),
        "{table}"
    );
    // A rejection the policy judges keeps its verdict (mtls_enforced passes).
    let mut mtls = (**ep).clone();
    mtls.spec.expect_client_auth = certprobe::probe::handshake::ClientAuthExpectation::Required;
    let rejected = certprobe::runner::evaluate_capture(
        &mtls,
        "127.0.0.1:1".into(),
        capture(Some(Failure::new(
            FailureReason::ClientCertRejected,
            "certificate_required",
        ))),
        &ctx,
        now,
    );
    assert_eq!(
        rejected.evaluation.status.human(),
        "OK",
        "{:?}",
        rejected.evaluation
    );
}

/// `probe --once --client-cert A --client-key B` with a key that is not A's: refused before any
/// probe, as the config loader refuses it (the ad-hoc path used to probe with the mismatched
/// pair, so the server's rejection looked like an MTLS problem of the endpoint).
#[test]
fn an_adhoc_client_key_that_is_not_the_certificates_is_refused() {
    let a = Pki::new("client-a", &["client-a.test"]);
    let b = Pki::new("client-b", &["client-b.test"]);
    let dir = tempfile::tempdir().unwrap();
    let cert = write_file(dir.path(), "a.pem", &a.leaf.pem);
    let key = write_file(dir.path(), "b.key", &b.leaf.key_pem);
    let probe = |key: &Path| {
        Command::new(bin())
            .args([
                "probe",
                "--once",
                "--target",
                "127.0.0.1:1",
                "--client-cert",
            ])
            .arg(&cert)
            .arg("--client-key")
            .arg(key)
            .output()
            .unwrap()
    };
    let out = probe(&key);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} does not match the certificate in {}",
            key.display(),
            cert.display()
        )),
        "{stderr}"
    );
    // The matching pair passes the check (the probe itself then fails: nothing listens).
    let good_key = write_file(dir.path(), "a.key", &a.leaf.key_pem);
    let out = probe(&good_key);
    assert_ne!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Ad-hoc targets get the config loader's host and SNI checks (one endpoint builder): a bad
/// `--sni`, a bad SNI in a `--targets-file` line and a host that is neither an IP address nor a
/// DNS name are usage errors (exit 64, the loader's message) before any connection or lookup.
/// The ad-hoc path used to probe them, so they surfaced as `tls_error`/`dns` failures (exit 2).
#[test]
fn adhoc_targets_get_the_loaders_host_and_sni_checks() {
    let run = |args: &[&str]| {
        let out = Command::new(bin()).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&[
        "probe",
        "--once",
        "--target",
        "127.0.0.1:1",
        "--sni",
        "bad sni!",
    ]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("--sni: \"bad sni!\" is not a valid DNS name"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let list = write_file(
        dir.path(),
        "targets.txt",
        "127.0.0.1:1 ok.test\n127.0.0.1:2 bad_sni!\n",
    );
    let (code, stderr) = run(&["probe", "--once", "--targets-file", list.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("127.0.0.1:2: SNI: \"bad_sni!\" is not a valid DNS name"),
        "{stderr}"
    );
    let (code, stderr) = run(&["probe", "--once", "--target", "bad host!:443"]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains(
            "--target \"bad host!:443\": \"bad host!\" is neither an IP address nor a valid DNS name"
        ),
        "{stderr}"
    );
}

/// `proxy_auth_file` is read like every other key file (one reader, `fsread`): a FIFO is refused
/// at once. The loader used to read it with `std::fs::read_to_string`, which blocks on a FIFO
/// until a writer appears (check-config and every reload hung).
#[test]
fn a_proxy_auth_file_that_is_a_fifo_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("proxy.auth"));
    let cfg = write_file(
        dir.path(),
        "p.yaml",
        "endpoints:\n  - {name: a, host: 127.0.0.1, port: 1, proxy: \"http://127.0.0.1:3128\", proxy_auth_file: proxy.auth}\n",
    );
    let (code, _, err) = run(
        &["check-config", "-c", cfg.to_str().unwrap()],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("endpoints[0].proxy: ")
            && err.contains("proxy.auth is a FIFO, not a regular file"),
        "{err}"
    );
}
