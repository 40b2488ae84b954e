//! The OAuth token-issuer certificate (issue 15 part 5), against real parts: one nginx on
//! 127.0.0.1 with a TLS server block per Front End, each serving its own
//! `/metadata/json/1`, certificates made by the openssl CLI (RSA 2048 and 1024), probed
//! through `runner::probe_endpoint` as the daemon and `probe --once` do, then the cross rules,
//! the metrics page, and the `probe --once` binary's JSON and table output.
//!
//! nginx and the PKI are made once per test binary; each test uses its own server blocks.

use crate::support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use certprobe::config::{BaseDir, Config};
use certprobe::daemon::metrics::{BuildInfo, Metrics};
use certprobe::oauth::OAuthFailure;
use certprobe::outcome::ProbeOutcome;
use certprobe::policy::{RuleId, Severity, Status, Verdict};
use certprobe::runner::{self, EvalContext};
use sha2::Digest as _;
use support::ChildGuard;

/// The name every Front End serves (SNI and the name its TLS certificate carries).
const POOL_NAME: &str = "eepool.contoso.test";

/// The server blocks and the metadata document each serves (None: no document, nginx 404).
fn documents(certs: &Certs) -> Vec<(&'static str, Option<String>)> {
    let doc = |ders: &[&Vec<u8>]| {
        let keys: Vec<String> = ders
            .iter()
            .map(|d| {
                format!(
                    r#"{{"usage":"Signing","keyinfo":{{"x5t":"ignored"}},"keyValue":{{"type":"x509Certificate","value":"{}"}}}}"#,
                    base64::engine::general_purpose::STANDARD.encode(d)
                )
            })
            .collect();
        // The shape of a Lync 2013 document, with its extra fields.
        format!(
            r#"{{"id":"_1","version":"1","name":"Microsoft.Lync","realm":"contoso.test","serviceName":"00000004-0000-0ff1-ce00-000000000000","issuer":"00000004-0000-0ff1-ce00-000000000000@contoso.test","allowedAudiences":["00000004-0000-0ff1-ce00-000000000000/eepool.contoso.test@contoso.test"],"keys":[{}],"endpoints":[{{"location":"https://eepool.contoso.test/metadata/json/1","protocol":"OAuth2","usage":"metadata"}}]}}"#,
            keys.join(",")
        )
    };
    vec![
        ("one", Some(doc(&[&certs.a]))),
        ("roll1", Some(doc(&[&certs.a, &certs.b]))),
        // The same two certificates in the other order: still the same set.
        ("roll2", Some(doc(&[&certs.b, &certs.a]))),
        ("diff1", Some(doc(&[&certs.a]))),
        ("diff2", Some(doc(&[&certs.b]))),
        ("weak", Some(doc(&[&certs.weak]))),
        (
            "badjson",
            Some("{\"keys\": [{\"usage\": \"Signing\", ".to_string()),
        ),
        (
            "oversize",
            Some(format!(
                "{{\"pad\": \"{}\", \"keys\": []}}",
                "x".repeat(300 * 1024)
            )),
        ),
        (
            "deep",
            Some(format!(
                "{{\"keys\": {}{}}}",
                "[".repeat(100),
                "]".repeat(100)
            )),
        ),
        ("missing", None),
    ]
}

struct Certs {
    a: Vec<u8>,
    b: Vec<u8>,
    weak: Vec<u8>,
}

/// The shared lab: the PKI (root.pem trusted as `lab`) and nginx with one port per document.
struct Lab {
    dir: PathBuf,
    /// The Front Ends' TLS certificate (DER) and key file, for in-process servers.
    server_der: Vec<u8>,
    server_key: PathBuf,
    ports: BTreeMap<&'static str, u16>,
    certs: Certs,
    _nginx: ChildGuard,
}

fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(build_lab)
}

fn build_lab() -> Lab {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let root = support::ossl_root(&dir, "root", "OAuth Lab Root", 2048, "sha256");
    let server = support::ossl_leaf(
        &dir,
        &root,
        "server",
        POOL_NAME,
        &format!("DNS:{POOL_NAME}"),
        2048,
        "sha256",
    );
    let oauth = |name: &str, bits: u32| {
        support::ossl_leaf(
            &dir,
            &root,
            name,
            &format!("{name}.contoso.test"),
            &format!("DNS:{name}.contoso.test"),
            bits,
            "sha256",
        )
        .der
    };
    let certs = Certs {
        a: oauth("oauth-a", 2048),
        b: oauth("oauth-b", 2048),
        weak: oauth("oauth-weak", 1024),
    };
    let server_chain = std::fs::read_to_string(&server.cert).unwrap();
    let d = dir.display();
    let mut servers = String::new();
    let mut ports = BTreeMap::new();
    for (name, doc) in documents(&certs) {
        let www = dir.join(format!("www-{name}"));
        std::fs::create_dir_all(www.join("metadata/json")).unwrap();
        if let Some(doc) = doc {
            std::fs::write(www.join("metadata/json/1"), doc).unwrap();
        }
        let port = support::free_port("127.0.0.1");
        ports.insert(name, port);
        servers.push_str(&format!(
            r#"  server {{
    listen 127.0.0.1:{port} ssl;
    server_name _;
    ssl_certificate {d}/server-chain.pem;
    ssl_certificate_key {key};
    root {www};
    default_type application/json;
  }}
"#,
            key = server.key.display(),
            www = www.display(),
        ));
    }
    support::write_file(&dir, "server-chain.pem", &server_chain);
    let conf = support::nginx_conf(&dir, 256, &format!("  access_log off;\n{servers}"));
    let conf_path = support::write_file(&dir, "nginx.conf", &conf);
    let mut cmd = support::until_stdin_closes("nginx");
    cmd.arg("-e")
        .arg(format!("{d}/error.log"))
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf_path);
    let last: SocketAddr = ([127, 0, 0, 1], ports["missing"]).into();
    let nginx = ChildGuard::spawn(cmd, None, Some(last), Duration::from_secs(15));
    Lab {
        server_der: server.der.clone(),
        server_key: server.key.clone(),
        dir,
        ports,
        certs,
        _nginx: nginx,
    }
}

fn fingerprint(der: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(der))
}

/// A config with one endpoint per named server block (`(name, pool)`), each fetching its
/// metadata document.
fn config(eps: &[(&str, Option<&str>)]) -> Config {
    let lab = lab();
    let mut yaml = "trust_stores:\n  lab: {class: internal, pem_files: [root.pem]}\nglobal:\n  revocation: {method: off}\nendpoints:\n".to_string();
    for (name, pool) in eps {
        yaml.push_str(&format!(
            "  - {{name: {name}, host: 127.0.0.1, port: {}, sni: {POOL_NAME}, oauth_metadata: true{}}}\n",
            lab.ports[name],
            pool.map(|p| format!(", pool: {p}")).unwrap_or_default()
        ));
    }
    Config::from_yaml(&yaml, "oauth.yaml", BaseDir(lab.dir.clone()))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Probe every endpoint of `eps` once and run the cross-endpoint rules, as a round does.
async fn probe(eps: &[(&str, Option<&str>)]) -> Vec<ProbeOutcome> {
    let cfg = config(eps);
    let ctx = EvalContext {
        stores: cfg.stores.clone(),
        policy: cfg.policy.clone(),
        at: None,
    };
    let mut outcomes = runner::probe_all(&cfg.endpoints, 4, &ctx).await;
    runner::apply_cross_rules(&cfg.policy, &mut outcomes);
    assert_eq!(outcomes.len(), eps.len());
    outcomes
}

/// The endpoint's own probe is judged as always: trusted by `lab`, name matched, OK.
fn assert_endpoint_judged_normally(o: &ProbeOutcome) {
    assert!(o.capture.failure.is_none(), "{:?}", o.capture.failure);
    assert_eq!(
        o.evaluation.verdict(RuleId::Trusted).map(|v| v.verdict),
        Some(Verdict::Pass),
        "{:?}",
        o.evaluation
    );
    assert_eq!(o.evaluation.status, Status::Ok, "{:?}", o.evaluation);
}

fn doc_verdict(o: &ProbeOutcome, rule: RuleId) -> &certprobe::policy::RuleVerdict {
    let r = o.oauth.as_ref().expect("OAuth metadata fetched");
    r.verdicts
        .iter()
        .find(|v| v.rule == rule)
        .unwrap_or_else(|| panic!("no {rule} verdict in {:?}", r.verdicts))
}

fn metrics(outcomes: &[ProbeOutcome]) -> String {
    Metrics::new(BuildInfo {
        version: "t".into(),
        revision: "t".into(),
    })
    .render_outcomes(outcomes, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_certificate_is_found_judged_and_exported_with_source_oauth_metadata() {
    let started = Instant::now();
    let out = probe(&[("one", None)]).await;
    let o = &out[0];
    assert_endpoint_judged_normally(o);
    let r = o.oauth.as_ref().expect("OAuth metadata fetched");
    assert!(r.failure.is_none(), "{:?}", r.failure);
    assert_eq!(
        r.url,
        format!("https://{POOL_NAME}:{}/metadata/json/1", lab().ports["one"])
    );
    assert_eq!(r.profile, "oauth");
    assert_eq!(r.certs.len(), 1);
    let c = &r.certs[0];
    assert_eq!(c.position, 0);
    assert_eq!(c.cert.fingerprint_sha256, fingerprint(&lab().certs.a));
    assert_eq!(c.cert.subject_cn.as_deref(), Some("oauth-a.contoso.test"));
    assert_eq!(
        c.evaluation.verdict(RuleId::Key).map(|v| v.verdict),
        Some(Verdict::Pass)
    );
    assert_eq!(
        c.evaluation.verdict(RuleId::Validity).map(|v| v.verdict),
        Some(Verdict::Pass)
    );
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(doc_verdict(o, RuleId::OAuthMetadata).verdict, Verdict::Pass);
    assert!(
        r.verdicts.iter().all(|v| v.rule != RuleId::OAuthRollWindow),
        "one certificate is no roll window"
    );

    let page = metrics(&out);
    let port = lab().ports["one"];
    let base =
        format!("{{endpoint=\"one\",address=\"127.0.0.1:{port}\",role=\"default\",pool=\"\"");
    let not_after = page
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "certprobe_cert_not_after_timestamp_seconds{base},source=\"oauth_metadata\",position=\"0\"}}"
            ))
        })
        .unwrap_or_else(|| panic!("no OAuth not_after series in\n{page}"));
    assert_eq!(
        not_after
            .rsplit(' ')
            .next()
            .unwrap()
            .parse::<i64>()
            .unwrap(),
        c.cert.not_after
    );
    assert!(
        page.lines().any(|l| l.starts_with("certprobe_cert_info{")
            && l.contains(
                ",source=\"oauth_metadata\",position=\"0\",subject_cn=\"oauth-a.contoso.test\""
            )
            && l.contains(&format!(
                "fingerprint_sha256=\"{}\"",
                c.cert.fingerprint_sha256
            ))
            && l.contains("key_algorithm=\"rsa\",key_bits=\"2048\"")),
        "{page}"
    );
    // The endpoint's own leaf is still exported without the label.
    assert!(page.contains(&format!(
        "certprobe_cert_not_after_timestamp_seconds{base},position=\"0\"}}"
    )));
    // Sparse: a usable document adds no failure series and no rule series.
    assert!(
        !page.contains("certprobe_oauth_metadata_failure{"),
        "{page}"
    );
    assert!(
        !page.contains("source=\"oauth_metadata\",position=\"\""),
        "{page}"
    );
    eprintln!("one certificate: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roll_window_is_an_info_finding_and_two_members_with_both_certificates_are_consistent() {
    let out = probe(&[("roll1", Some("rollpool")), ("roll2", Some("rollpool"))]).await;
    for o in &out {
        assert_endpoint_judged_normally(o);
        let r = o.oauth.as_ref().unwrap();
        assert_eq!(r.certs.len(), 2, "{r:?}");
        let roll = doc_verdict(o, RuleId::OAuthRollWindow);
        assert_eq!(roll.severity, Severity::Info);
        assert_eq!(roll.verdict, Verdict::Pass);
        assert!(
            roll.message
                .starts_with("(info) roll window: 2 certificates published"),
            "{}",
            roll.message
        );
        let pool = doc_verdict(o, RuleId::PoolConsistency);
        assert_eq!(pool.verdict, Verdict::Pass, "{}", pool.message);
        assert!(
            pool.message.contains(
                "2 member address(es) publish the same OAuth certificate set (2 certificate(s))"
            ),
            "{}",
            pool.message
        );
        assert_eq!(r.status, Status::Ok, "{r:?}");
    }
    let positions: Vec<usize> = out[1]
        .oauth
        .as_ref()
        .unwrap()
        .certs
        .iter()
        .map(|c| c.position)
        .collect();
    assert_eq!(positions, [0, 1]);
    assert_eq!(
        out[1].oauth.as_ref().unwrap().certs[0]
            .cert
            .fingerprint_sha256,
        fingerprint(&lab().certs.b),
        "roll2 publishes B first"
    );
    // An info finding is not exported as a failed rule.
    let page = metrics(&out);
    assert!(!page.contains("rule=\"oauth_roll_window\""), "{page}");
    assert_eq!(
        page.lines()
            .filter(|l| l.starts_with("certprobe_cert_info{")
                && l.contains("source=\"oauth_metadata\""))
            .count(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_ends_of_one_pool_with_different_oauth_certificates_fail_pool_consistency() {
    let out = probe(&[("diff1", Some("diffpool")), ("diff2", Some("diffpool"))]).await;
    let (fa, fb) = (fingerprint(&lab().certs.a), fingerprint(&lab().certs.b));
    for o in &out {
        assert_endpoint_judged_normally(o);
        let pool = doc_verdict(o, RuleId::PoolConsistency);
        assert_eq!(pool.verdict, Verdict::Fail, "{}", pool.message);
        assert!(
            pool.message.contains("2 different OAuth certificate sets")
                && pool.message.contains(&fa[..16])
                && pool.message.contains(&fb[..16]),
            "{}",
            pool.message
        );
        assert_eq!(o.oauth.as_ref().unwrap().status, Status::Critical);
    }
    let page = metrics(&out);
    for ep in ["diff1", "diff2"] {
        assert!(
            page.lines().any(|l| l.starts_with(&format!(
                "certprobe_policy_rule_failed{{endpoint=\"{ep}\","
            )) && l.contains(
                "source=\"oauth_metadata\",position=\"\",profile=\"oauth\",rule=\"pool_consistency\",severity=\"fail\"} 1"
            )),
            "{page}"
        );
    }
    // The exit status of `probe --once` counts the OAuth verdicts.
    assert_eq!(
        certprobe::report::overall_status(&out, &[]),
        Status::Critical
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1024_bit_oauth_certificate_fails_the_key_rule() {
    let out = probe(&[("weak", None)]).await;
    let o = &out[0];
    assert_endpoint_judged_normally(o);
    let r = o.oauth.as_ref().unwrap();
    assert_eq!(r.certs.len(), 1);
    let key = r.certs[0].evaluation.verdict(RuleId::Key).unwrap();
    assert_eq!(key.verdict, Verdict::Fail, "{key:?}");
    assert!(key.message.contains("RSA-1024"), "{}", key.message);
    assert_eq!(r.status, Status::Critical);
    let page = metrics(&out);
    assert!(
        page.lines().any(|l| l.starts_with("certprobe_policy_rule_failed{endpoint=\"weak\",")
            && l.contains("source=\"oauth_metadata\",position=\"0\",profile=\"oauth\",rule=\"key\",severity=\"fail\"} 1")),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_documents_have_their_typed_reason_and_the_endpoint_is_still_judged() {
    let cases = [
        ("badjson", OAuthFailure::BadJson),
        ("oversize", OAuthFailure::TooLarge),
        ("deep", OAuthFailure::TooDeep),
        ("missing", OAuthFailure::HttpStatus),
    ];
    let eps: Vec<(&str, Option<&str>)> = cases.iter().map(|(n, _)| (*n, None)).collect();
    let out = probe(&eps).await;
    let page = metrics(&out);
    for ((name, reason), o) in cases.iter().zip(&out) {
        assert_eq!(o.target.endpoint, *name);
        assert_endpoint_judged_normally(o);
        let r = o.oauth.as_ref().unwrap();
        assert_eq!(
            r.failure.as_ref().map(|f| f.reason),
            Some(*reason),
            "{name}: {r:?}"
        );
        assert!(r.certs.is_empty());
        let v = doc_verdict(o, RuleId::OAuthMetadata);
        assert_eq!(
            (v.severity, v.verdict),
            (Severity::Fail, Verdict::Fail),
            "{name}"
        );
        assert_eq!(r.status, Status::Critical);
        let port = lab().ports[name];
        assert!(
            page.contains(&format!(
                "certprobe_oauth_metadata_failure{{endpoint=\"{name}\",address=\"127.0.0.1:{port}\",role=\"default\",pool=\"\",source=\"oauth_metadata\",reason=\"{}\"}} 1",
                reason.as_str()
            )),
            "{name}:\n{page}"
        );
        assert!(
            !page
                .lines()
                .any(|l| l.contains(&format!("endpoint=\"{name}\""))
                    && l.starts_with("certprobe_cert_info{")
                    && l.contains("source=\"oauth_metadata\"")),
            "{name}: no OAuth certificate series"
        );
    }
}

/// `probe --once --oauth-metadata` on an ad-hoc target: the JSON report carries the
/// document's certificates and verdicts, the table its lines.
#[test]
fn probe_once_oauth_metadata_reports_the_certificates_in_json_and_table() {
    let lab = lab();
    let target = format!("127.0.0.1:{}", lab.ports["weak"]);
    let run = |output: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_certprobe"))
            .args(["probe", "--once", "--target", &target, "--sni", POOL_NAME])
            .arg("--ca")
            .arg(lab.dir.join("root.pem"))
            .args([
                "--revocation",
                "off",
                "--oauth-metadata",
                "--output",
                output,
            ])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, json) = run("json");
    assert_eq!(code, Some(2), "the weak OAuth key is critical:\n{json}");
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let result = &doc["results"][0];
    assert_eq!(result["status"], "ok", "the endpoint itself is OK");
    let oauth = &result["oauth"];
    assert_eq!(oauth["status"], "critical");
    assert_eq!(
        oauth["certs"][0]["cert"]["fingerprint_sha256"],
        fingerprint(&lab.certs.weak).as_str()
    );
    let key = oauth["certs"][0]["evaluation"]["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "key")
        .unwrap();
    assert_eq!(key["verdict"], "fail");
    let (code, table) = run("table");
    assert_eq!(code, Some(2));
    assert!(
        table.contains(&format!(
            "oauth: https://{POOL_NAME}:{}/metadata/json/1 (profile oauth): CRITICAL",
            lab.ports["weak"]
        )),
        "{table}"
    );
    assert!(
        table.contains("oauth [0]: CN=oauth-weak.contoso.test")
            && table.contains("oauth [0] FAIL key: "),
        "{table}"
    );
}

/// A Front End that completes the TLS handshake and then never answers the GET: the fetch
/// gives up after the endpoint's connect + handshake timeout with `timeout`, and the endpoint's
/// own probe is judged as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_is_a_timeout_within_the_endpoint_timeouts() {
    use rustls_pki_types::pem::PemObject as _;
    let lab = lab();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&lab.server_key).unwrap();
    let config = support::server_config(
        vec![lab.server_der.clone().into()],
        key,
        &[],
        support::ClientAuth::None,
    );
    let server = support::TlsServer::start("127.0.0.1", config).await;
    let yaml = format!(
        "trust_stores:\n  lab: {{class: internal, pem_files: [root.pem]}}\nglobal:\n  connect_timeout: 1s\n  verdict_timeout: 200ms\n  revocation: {{method: off}}\nendpoints:\n  - {{name: silent, host: 127.0.0.1, port: {}, sni: {POOL_NAME}, timeout: 1s, oauth_metadata: true}}\n",
        server.addr.port()
    );
    let cfg = Config::from_yaml(&yaml, "oauth.yaml", BaseDir(lab.dir.clone())).unwrap();
    let ctx = EvalContext {
        stores: cfg.stores.clone(),
        policy: cfg.policy.clone(),
        at: None,
    };
    let started = Instant::now();
    let out = runner::probe_endpoint(&cfg.endpoints[0], &ctx).await;
    let elapsed = started.elapsed();
    assert_eq!(out.len(), 1);
    assert_endpoint_judged_normally(&out[0]);
    let r = out[0].oauth.as_ref().unwrap();
    assert_eq!(
        r.failure.as_ref().map(|f| f.reason),
        Some(OAuthFailure::Timeout),
        "{r:?}"
    );
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(6),
        "{elapsed:?}"
    );
    // The GET reached the server over TLS (it was read, never answered).
    assert!(server.app_bytes.load(std::sync::atomic::Ordering::SeqCst) > 0);
}
