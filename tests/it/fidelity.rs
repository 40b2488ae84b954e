//! Fidelity against TLS stacks nobody here wrote: certprobe's verdict must be the one a real
//! client reaches. Each test drives a foreign server from Debian (openssl s_server,
//! gnutls-serv, stunnel4, haproxy, apache2, nginx) on loopback and runs the real binary
//! (`probe --once`, `inspect`) or the library probe against it. Every test here failed before
//! the fix it covers (issue "Fidelity"): the table in docs/reliability.md lists them.

use crate::support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use support::*;

/// Run the real binary; returns (exit code, stdout, stderr). `CERTPROBE_BIN` runs another
/// build instead (how the "fails before the fix" column of docs/reliability.md was checked:
/// `CERTPROBE_BIN=/path/to/old/certprobe cargo test --test it fidelity::`).
fn certprobe(args: &[&str]) -> (i32, String, String) {
    let bin = std::env::var("CERTPROBE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_certprobe").to_string());
    let out = Command::new(bin)
        .args(args)
        .output()
        .expect("run certprobe");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `probe --once … --output json` (verdict read long enough for a loaded machine); returns the
/// exit code and the document.
fn probe_json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["probe", "--once", "--output", "json", "--timeout", "5s"];
    all.extend_from_slice(args);
    let (code, out, err) = certprobe(&all);
    let doc: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("probe --once printed no JSON ({e}): {out}\nstderr: {err}"));
    (code, doc)
}

fn result(doc: &Value, i: usize) -> &Value {
    &doc["results"][i]
}

fn verdict<'a>(r: &'a Value, rule: &str) -> Option<&'a Value> {
    r["evaluation"]["verdicts"]
        .as_array()?
        .iter()
        .find(|v| v["rule"] == rule)
}

fn target(addr: std::net::SocketAddr) -> String {
    addr.to_string()
}

/// A rogue client identity (from a CA no server here trusts) and the real client CA.
struct Clients {
    f: Files,
    ca: Ca,
    rogue_cert: PathBuf,
    rogue_key: PathBuf,
    good_cert: PathBuf,
    good_key: PathBuf,
    ca_file: PathBuf,
}

impl Clients {
    fn new() -> Self {
        let f = Files::new();
        let ca = Ca::root("Fidelity Client CA");
        let good = ca.client("good-client");
        let rogue = Ca::root("Rogue CA").client("rogue-client");
        Self {
            rogue_cert: f.write("rogue.pem", &rogue.pem),
            rogue_key: f.write("rogue.key", &rogue.key_pem),
            good_cert: f.write("good.pem", &good.pem),
            good_key: f.write("good.key", &good.key_pem),
            ca_file: f.write("client-ca.pem", &ca.pem),
            ca,
            f,
        }
    }
}

/// Item 1: a rejected client certificate is CRITICAL under the default profile, whatever stack
/// refuses it; the accepted one is OK.
fn assert_rejected_is_critical(
    name: &str,
    addr: std::net::SocketAddr,
    root: &std::path::Path,
    sni: &str,
    c: &Clients,
    extra: &[&str],
) {
    let t = target(addr);
    let root = root.display().to_string();
    // One probe with the given client identity.
    let with_identity = |cert: &std::path::Path, key: &std::path::Path| {
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        let mut args = vec![
            "--target",
            &t,
            "--sni",
            sni,
            "--ca",
            &root,
            "--client-cert",
            &cert,
            "--client-key",
            &key,
        ];
        args.extend_from_slice(extra);
        probe_json(&args)
    };
    let (code, doc) = with_identity(&c.rogue_cert, &c.rogue_key);
    let r = result(&doc, 0);
    assert_eq!(
        r["capture"]["client_auth"]["client_cert_sent"], true,
        "{name}: {r:#}"
    );
    assert_eq!(
        r["capture"]["failure"]["reason"], "client_cert_rejected",
        "{name}: {:#}",
        r["capture"]
    );
    assert_eq!(r["status"], "critical", "{name}: {:#}", r["evaluation"]);
    assert_eq!(
        verdict(r, "client_cert_accepted").expect("client_cert_accepted ran")["verdict"],
        "fail",
        "{name}"
    );
    assert_eq!(
        code, 2,
        "{name}: a rejected client certificate must exit CRITICAL"
    );

    let (code, doc) = with_identity(&c.good_cert, &c.good_key);
    let r = result(&doc, 0);
    assert_eq!(
        r["capture"]["client_auth"]["accepted"], true,
        "{name}: {:#}",
        r["capture"]
    );
    assert_eq!(
        verdict(r, "client_cert_accepted").expect("ran")["verdict"],
        "pass",
        "{name}"
    );
    assert_eq!(code, 0, "{name}: {:#}", r["evaluation"]);
}

#[test]
fn rejected_client_certificate_is_critical_with_haproxy() {
    let pki = Pki::new("haproxy", &["haproxy.test"]);
    let c = Clients::new();
    let f = Files::new();
    let root = f.write("root.pem", &pki.root.pem);
    let srv = Haproxy::start(
        &pki.chain_pem(),
        &pki.leaf.key_pem,
        &format!("verify required ca-file {}", c.ca_file.display()),
    );
    assert_rejected_is_critical(
        "haproxy",
        srv.addr,
        &root,
        "haproxy.test",
        &c,
        &["--protocol", "http"],
    );
}

#[test]
fn rejected_client_certificate_is_critical_with_gnutls() {
    let pki = Pki::new("gnutls", &["gnutls.test"]);
    let c = Clients::new();
    let f = Files::new();
    let root = f.write("root.pem", &pki.root.pem);
    let chain = f.write("chain.pem", &pki.chain_pem());
    let key = f.write("key.pem", &pki.leaf.key_pem);
    let ca = c.ca_file.display().to_string();
    let srv = GnutlsServer::start(
        &chain,
        &key,
        &[
            "--require-client-cert",
            "--verify-client-cert",
            "--x509cafile",
            &ca,
        ],
    );
    assert_rejected_is_critical("gnutls-serv", srv.addr, &root, "gnutls.test", &c, &[]);
}

#[test]
fn rejected_client_certificate_is_critical_with_stunnel() {
    let pki = Pki::new("stunnel", &["stunnel.test"]);
    let c = Clients::new();
    let f = Files::new();
    let root = f.write("root.pem", &pki.root.pem);
    let srv = Stunnel::start(
        &pki.chain_pem(),
        &pki.leaf.key_pem,
        &format!("verifyChain = yes\nCAfile = {}", c.ca_file.display()),
    );
    assert_rejected_is_critical("stunnel", srv.addr, &root, "stunnel.test", &c, &[]);
}

#[test]
fn rejected_client_certificate_is_critical_with_apache() {
    let pki = Pki::new("apache", &["apache.test"]);
    let c = Clients::new();
    let f = Files::new();
    let root = f.write("root.pem", &pki.root.pem);
    let srv = Apache::start(
        &pki.leaf.pem,
        &pki.intermediate.pem,
        &pki.leaf.key_pem,
        &format!(
            "SSLVerifyClient require\n  SSLCACertificateFile {}",
            c.ca_file.display()
        ),
    );
    assert_rejected_is_critical(
        "apache2",
        srv.addr,
        &root,
        "apache.test",
        &c,
        &["--protocol", "http"],
    );
}

#[test]
fn rejected_client_certificate_is_critical_with_openssl_tls12_and_the_version_is_kept() {
    let pki = Pki::new("ossl12", &["ossl12.test"]);
    let c = Clients::new();
    let f = Files::new();
    let root = f.write("root.pem", &pki.root.pem);
    let ca = c.ca_file.display().to_string();
    let srv = OpensslServer::start(
        &f.write("leaf.pem", &pki.leaf.pem),
        &f.write("leaf.key", &pki.leaf.key_pem),
        Some(&f.write("chain.pem", &pki.intermediate.pem)),
        &[
            "-tls1_2",
            "-Verify",
            "1",
            "-verify_return_error",
            "-CAfile",
            &ca,
        ],
    );
    assert_rejected_is_critical(
        "s_server -tls1_2 -Verify",
        srv.addr,
        &root,
        "ossl12.test",
        &c,
        &[],
    );
    // Item 7: the TLS 1.2 rejection kills the handshake; what the ServerHello negotiated stays.
    let t = target(srv.addr);
    let (root, cert, key) = (
        root.display().to_string(),
        c.rogue_cert.display().to_string(),
        c.rogue_key.display().to_string(),
    );
    let (_, doc) = probe_json(&[
        "--target",
        &t,
        "--sni",
        "ossl12.test",
        "--ca",
        &root,
        "--client-cert",
        &cert,
        "--client-key",
        &key,
    ]);
    let cap = &result(&doc, 0)["capture"];
    assert_eq!(cap["tls_version"], "TLSv1.2", "{cap:#}");
    assert!(
        cap["cipher_suite"]
            .as_str()
            .is_some_and(|s| s.starts_with("TLS_ECDHE_ECDSA")),
        "{cap:#}"
    );
    drop(c.f);
    let _ = &c.ca;
}

/// Item 2: an endpoint addressed by IP gets a hostname verdict against its IP SANs, in JSON and
/// as the `certprobe_hostname_match` series.
#[test]
fn ip_literal_target_is_checked_against_ip_sans() {
    let pki = Pki::new("ipname", &["ipname.test"]);
    let f = Files::new();
    let root = f.write("root.pem", &pki.root.pem).display().to_string();
    let srv = Stunnel::start(&pki.chain_pem(), &pki.leaf.key_pem, "");
    let t = target(srv.addr);
    let (code, doc) = probe_json(&["--target", &t, "--ca", &root]);
    let r = result(&doc, 0);
    assert_eq!(
        r["report"]["hostname"]["name"], "127.0.0.1",
        "{:#}",
        r["report"]
    );
    assert_eq!(r["report"]["hostname"]["matched"], false);
    assert_eq!(
        verdict(r, "hostname").expect("hostname ran")["verdict"],
        "fail"
    );
    assert_eq!(code, 2);
    // Item 8: no SNI was sent for the IP literal, even when it is given as --sni.
    assert_eq!(r["capture"]["sni"], Value::Null, "{:#}", r["capture"]);
    let (_, doc) = probe_json(&["--target", &t, "--ca", &root, "--sni", "127.0.0.1"]);
    assert_eq!(result(&doc, 0)["capture"]["sni"], Value::Null);

    // A leaf that carries the IP SAN matches.
    let ip_pki = Pki::new("ipsan", &["ipsan.test", "127.0.0.1"]);
    let root2 = f.write("root2.pem", &ip_pki.root.pem).display().to_string();
    let srv2 = Stunnel::start(&ip_pki.chain_pem(), &ip_pki.leaf.key_pem, "");
    let t2 = target(srv2.addr);
    let (code, doc) = probe_json(&["--target", &t2, "--ca", &root2]);
    let r = result(&doc, 0);
    assert_eq!(
        r["report"]["hostname"]["matched"], true,
        "{:#}",
        r["report"]
    );
    assert_eq!(code, 0, "{:#}", r["evaluation"]);
}

/// Item 3: the trust bundle holds the issuing CA, the server sends only its leaf. Verified (the
/// intermediate helps path building) but incomplete, with a finding that names the CA.
#[test]
fn leaf_only_server_is_incomplete_even_when_the_bundle_holds_the_intermediate() {
    let pki = Pki::new("leafonly", &["leafonly.test"]);
    let f = Files::new();
    let bundle = f
        .write(
            "bundle.pem",
            &format!("{}{}", pki.root.pem, pki.intermediate.pem),
        )
        .display()
        .to_string();
    let srv = Nginx::start(&pki.leaf.pem, &pki.leaf.key_pem, "");
    let t = target(srv.addr);
    let (code, doc) = probe_json(&["--target", &t, "--sni", "leafonly.test", "--ca", &bundle]);
    let r = result(&doc, 0);
    let hygiene = &r["report"]["hygiene"];
    assert_eq!(hygiene["complete"], false, "{:#}", r["report"]);
    assert!(
        hygiene["missing_intermediates"][0]
            .as_str()
            .is_some_and(|s| s.contains("leafonly Issuing CA")),
        "{hygiene:#}"
    );
    let stores = r["report"]["stores"].as_array().unwrap();
    let internal = stores.iter().find(|s| s["store"] == "internal").unwrap();
    assert_eq!(internal["verified"], true, "{internal:#}");
    let h = verdict(r, "chain_hygiene").expect("chain_hygiene in the default profile");
    assert_eq!(h["verdict"], "warn");
    assert!(
        h["message"]
            .as_str()
            .unwrap()
            .contains("leafonly Issuing CA"),
        "{h:#}"
    );
    assert_eq!(r["status"], "warning");
    assert_eq!(code, 1);

    // Served with its intermediate, the same chain is complete and OK.
    let srv = Nginx::start(&pki.chain_pem(), &pki.leaf.key_pem, "");
    let t = target(srv.addr);
    let (code, doc) = probe_json(&["--target", &t, "--sni", "leafonly.test", "--ca", &bundle]);
    assert_eq!(result(&doc, 0)["report"]["hygiene"]["complete"], true);
    assert_eq!(code, 0, "{:#}", result(&doc, 0)["evaluation"]);
}

/// Item 4: an expired internal intermediate is the internal store's error; the public store
/// cannot build a path at all and says `unknown_issuer`.
#[test]
fn expired_internal_intermediate_is_unknown_issuer_for_the_public_store() {
    let root = Ca::root("Expired Int Root CA");
    let now = time::OffsetDateTime::now_utc();
    let inter = root.intermediate_valid(
        "Expired Int Issuing CA",
        now - time::Duration::days(400),
        now - time::Duration::days(2),
    );
    let leaf = inter.leaf("expint.test", &["expint.test"]);
    let f = Files::new();
    let chain = f.write("chain.pem", &format!("{}{}", leaf.pem, inter.pem));
    let key = f.write("key.pem", &leaf.key_pem);
    let rootf = f.write("root.pem", &root.pem).display().to_string();
    let srv = GnutlsServer::start(&chain, &key, &["--disable-client-cert"]);
    let t = target(srv.addr);
    let (_, doc) = probe_json(&["--target", &t, "--sni", "expint.test", "--ca", &rootf]);
    let stores = doc["results"][0]["report"]["stores"]
        .as_array()
        .unwrap()
        .clone();
    let by = |n: &str| stores.iter().find(|s| s["store"] == n).unwrap().clone();
    assert_eq!(by("internal")["error"], "expired", "{stores:#?}");
    assert_eq!(by("public")["error"], "unknown_issuer", "{stores:#?}");
    // Messages are sentences with RFC 3339 dates, never Rust debug text.
    let detail = by("internal")["detail"].as_str().unwrap().to_string();
    assert!(
        !detail.contains("UnixTime") && !detail.contains("CertExpired"),
        "{detail}"
    );
    assert!(detail.contains("expired at 20"), "{detail}");
}

/// Item 5: nginx with an ECDSA and an expired RSA certificate. The default `auto` finds the
/// second certificate and judges both; `--key-type rsa` alone sees the RSA one.
#[test]
fn dual_certificate_nginx_shows_both_certificates() {
    let root = Ca::root("Dual Root CA");
    let inter = root.intermediate("Dual Issuing CA");
    let ec = inter.leaf("dual.test", &["dual.test"]);
    let f = Files::new();
    let rsa_key = ossl_key(
        f.path(),
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let now = time::OffsetDateTime::now_utc();
    let rsa = inter.leaf_with_key(
        &LeafOptions {
            cn: "dual.test",
            sans: &["dual.test"],
            validity: Some((
                now - time::Duration::days(100),
                now - time::Duration::days(1),
            )),
            client: false,
        },
        &rsa_key,
    );
    let d = f.path().display().to_string();
    f.write("rsa-chain.pem", &format!("{}{}", rsa.pem, inter.pem));
    f.write("rsa.key.pem", &rsa.key_pem);
    let extra =
        format!("ssl_certificate {d}/rsa-chain.pem;\n    ssl_certificate_key {d}/rsa.key.pem;");
    let srv = Nginx::start(&format!("{}{}", ec.pem, inter.pem), &ec.key_pem, &extra);
    let rootf = f.write("root.pem", &root.pem).display().to_string();
    let t = target(srv.addr);
    let (code, doc) = probe_json(&["--target", &t, "--sni", "dual.test", "--ca", &rootf]);
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "one result per certificate: {doc:#}");
    let by = |kt: &str| {
        results
            .iter()
            .find(|r| r["capture"]["key_type"] == kt)
            .unwrap_or_else(|| panic!("no {kt} result: {doc:#}"))
    };
    assert_eq!(
        by("ecdsa")["status"],
        "ok",
        "{:#}",
        by("ecdsa")["evaluation"]
    );
    assert_eq!(by("ecdsa")["chain"][0]["key"]["type"], "ec");
    assert_eq!(
        by("rsa")["status"],
        "critical",
        "{:#}",
        by("rsa")["evaluation"]
    );
    assert_eq!(by("rsa")["chain"][0]["key"]["type"], "rsa");
    assert_eq!(by("rsa")["capture"]["several_certificates"], true);
    assert_eq!(code, 2);

    let (code, doc) = probe_json(&[
        "--target",
        &t,
        "--sni",
        "dual.test",
        "--ca",
        &rootf,
        "--key-type",
        "rsa",
    ]);
    assert_eq!(doc["results"].as_array().unwrap().len(), 1);
    assert_eq!(doc["results"][0]["chain"][0]["key"]["type"], "rsa");
    assert_eq!(code, 2);

    // A single-certificate server: one result, no key_type, checked and found alone.
    let single = Nginx::start(&format!("{}{}", ec.pem, inter.pem), &ec.key_pem, "");
    let t = target(single.addr);
    let (code, doc) = probe_json(&["--target", &t, "--sni", "dual.test", "--ca", &rootf]);
    assert_eq!(doc["results"].as_array().unwrap().len(), 1, "{doc:#}");
    assert_eq!(doc["results"][0]["capture"]["key_type"], Value::Null);
    assert_eq!(doc["results"][0]["capture"]["several_certificates"], false);
    assert_eq!(code, 0);
}

/// Item 6: out-of-order chain warns under the default profile; a sent root is info only.
#[test]
fn out_of_order_chain_warns_and_a_sent_root_is_info() {
    let pki = Pki::new("order", &["order.test"]);
    let f = Files::new();
    let rootf = f.write("root.pem", &pki.root.pem).display().to_string();
    // leaf, root, intermediate: out of order (stunnel sends the file as it is).
    let srv = Stunnel::start(
        &format!("{}{}{}", pki.leaf.pem, pki.root.pem, pki.intermediate.pem),
        &pki.leaf.key_pem,
        "",
    );
    let t = target(srv.addr);
    let (code, doc) = probe_json(&["--target", &t, "--sni", "order.test", "--ca", &rootf]);
    let r = result(&doc, 0);
    assert_eq!(r["report"]["hygiene"]["order_valid"], false);
    let h = verdict(r, "chain_hygiene").expect("chain_hygiene");
    assert_eq!(h["verdict"], "warn", "{h:#}");
    assert!(h["message"].as_str().unwrap().contains("out of order"));
    assert_eq!(code, 1);

    // In order, root included: OK, with the root reported as info.
    let srv = Stunnel::start(
        &format!("{}{}{}", pki.leaf.pem, pki.intermediate.pem, pki.root.pem),
        &pki.leaf.key_pem,
        "",
    );
    let t = target(srv.addr);
    let (code, doc) = probe_json(&["--target", &t, "--sni", "order.test", "--ca", &rootf]);
    let r = result(&doc, 0);
    assert_eq!(r["report"]["hygiene"]["root_sent"], true);
    assert!(
        r["evaluation"]["info"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().contains("self-signed root")),
        "{:#}",
        r["evaluation"]
    );
    assert_eq!(code, 0, "{:#}", r["evaluation"]);
    // The table shows the info line.
    let (_, table, _) = certprobe(&[
        "probe",
        "--once",
        "--verbose",
        "--target",
        &t,
        "--sni",
        "order.test",
        "--ca",
        &rootf,
    ]);
    assert!(table.contains("sends its self-signed root"), "{table}");
}

/// Capture gap: an ECDSA P-521 leaf (ring cannot verify P-521). TLS 1.3 is negotiated, the
/// chain captured, the handshake signature reported unverifiable.
/// An openssl-made leaf with the `-newkey` arguments, served by s_server, probed ad hoc:
/// (the root file, the target, the result, the server kept alive).
fn probe_ossl_leaf(name: &str, newkey: &[&str]) -> (String, String, Value, OpensslServer, Files) {
    let f = Files::new();
    let ca = ossl_root(f.path(), "ca", &format!("{name} Test Root"), 2048, "sha256");
    let leaf = ossl_leaf_key(f.path(), &ca, "leaf", name, &format!("DNS:{name}"), newkey);
    let srv = OpensslServer::start(&leaf.cert, &leaf.key, None, &[]);
    let t = target(srv.addr);
    let rootf = ca.cert.display().to_string();
    let (_, doc) = probe_json(&["--target", &t, "--sni", name, "--ca", &rootf]);
    (rootf, t, result(&doc, 0).clone(), srv, f)
}

#[test]
fn p521_leaf_is_captured_over_tls13_and_flagged_unverifiable() {
    let (_, _, r, _srv, _f) =
        probe_ossl_leaf("p521.test", &["ec", "-pkeyopt", "ec_paramgen_curve:P-521"]);
    let cap = &r["capture"];
    assert_eq!(cap["failure"], Value::Null, "{cap:#}");
    assert_eq!(cap["tls_version"], "TLSv1.3", "{cap:#}");
    assert_eq!(cap["signature_scheme"], "ecdsa_secp521r1_sha512");
    assert_eq!(
        cap["handshake_signature"]["status"], "unverifiable",
        "{cap:#}"
    );
    assert_eq!(r["chain"][0]["key"]["curve"], "P-521");
    assert_eq!(
        r["report"]["stores"][0]["verified"], true,
        "{:#}",
        r["report"]
    );
}

/// Capture gap: an RSA-PSS-keyed leaf (SPKI id-RSASSA-PSS): captured over TLS 1.3 with
/// rsa_pss_pss_sha256, the signature verified with ring, the key size shown.
#[test]
fn rsa_pss_keyed_leaf_is_captured_and_verified() {
    let (rootf, t, r, _srv, _f) =
        probe_ossl_leaf("pss.test", &["rsa-pss", "-pkeyopt", "rsa_keygen_bits:2048"]);
    let cap = &r["capture"];
    assert_eq!(cap["failure"], Value::Null, "{cap:#}");
    assert_eq!(cap["handshake_signature"]["status"], "verified", "{cap:#}");
    assert!(
        cap["signature_scheme"]
            .as_str()
            .unwrap()
            .starts_with("rsa_pss_pss_"),
        "{cap:#}"
    );
    assert_eq!(r["chain"][0]["key"]["bits"], 2048);
    // inspect shows the key size, as a sentence (no `Rsa { bits: … }`).
    let (_, out, _) = certprobe(&[
        "inspect", "--target", &t, "--sni", "pss.test", "--ca", &rootf,
    ]);
    assert!(out.contains("key:     RSA 2048"), "{out}");
    assert!(!out.contains("bits:"), "{out}");
}

/// Ad-hoc parity: `--protocol http` makes nginx's HTTP 400 for a rejected certificate visible.
#[test]
fn protocol_http_flag_sees_nginx_rejecting_the_client_certificate() {
    let pki = Pki::new("nginxmtls", &["nginxmtls.test"]);
    let c = Clients::new();
    let f = Files::new();
    let root = f.write("root.pem", &pki.root.pem);
    let srv = Nginx::start(
        &pki.chain_pem(),
        &pki.leaf.key_pem,
        &format!(
            "ssl_verify_client on;\n    ssl_client_certificate {};",
            c.ca_file.display()
        ),
    );
    assert_rejected_is_critical(
        "nginx ssl_verify_client on",
        srv.addr,
        &root,
        "nginxmtls.test",
        &c,
        &["--protocol", "http"],
    );
}

/// `inspect --target` with nothing captured exits non-zero and says why.
#[test]
fn inspect_exits_non_zero_when_nothing_was_captured() {
    let port = free_port("127.0.0.1");
    let t = format!("127.0.0.1:{port}");
    let (code, _, err) = certprobe(&["inspect", "--target", &t]);
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("connect_refused"), "{err}");
}

/// Messages are sentences: a broken PEM file is described, not dumped as byte arrays or Rust
/// debug text.
#[test]
fn pem_errors_are_sentences() {
    let f = Files::new();
    let bad_char = f.write(
        "bad.pem",
        "-----BEGIN CERTIFICATE-----\nMIIB!AAA\n-----END CERTIFICATE-----\n",
    );
    let (code, _, err) = certprobe(&["inspect", "--file", &bad_char.display().to_string()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("character '!' (byte 33) is not base64"),
        "{err}"
    );
    assert!(!err.contains("InvalidCharacter"), "{err}");
    let truncated = f.write("trunc.pem", "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n");
    let (_, _, err) = certprobe(&["inspect", "--file", &truncated.display().to_string()]);
    assert!(
        err.contains("has no end line (expected \"-----END CERTIFICATE-----\")"),
        "{err}"
    );
    assert!(!err.contains("[45, 45"), "{err}");
}
