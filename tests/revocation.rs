//! Revocation end to end: a PKI made with `openssl ca` (index, `-gencrl`), CRLs served over HTTP
//! by nginx on 127.0.0.1, TLS servers on loopback presenting leaves whose CDP points at it.
//! The PKI and nginx are made once per test binary; each test uses its own URLs, so the
//! process-wide CRL cache does not couple them.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use certprobe::config::{BaseDir, Config};
use certprobe::outcome::ProbeOutcome;
use certprobe::revocation::{Reason, Status};
use certprobe::runner::{self, EvalContext};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use support::{openssl, ChildGuard, ClientAuth, TlsServer};

/// The shared lab: a directory with the PKI, nginx serving `www/` with an access log.
struct Lab {
    dir: PathBuf,
    http: SocketAddr,
    _nginx: ChildGuard,
}

fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(build_lab)
}

fn build_lab() -> Lab {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let port = support::free_port("127.0.0.1");
    let http: SocketAddr = ([127, 0, 0, 1], port).into();
    let d = dir.display();
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
  log_format plain '$request_uri $status';
  access_log {d}/access.log plain;
  open_file_cache off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {d}/www;
    location /redirect-away.crl {{ return 302 http://localhost:{port}/int.crl; }}
  }}
}}
"#
    );
    let conf_path = support::write_file(&dir, "nginx.conf", &conf);
    let mut cmd = Command::new("nginx");
    cmd.arg("-e")
        .arg(format!("{d}/error.log"))
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf_path);
    let nginx = ChildGuard::spawn(cmd, None, Some(http), Duration::from_secs(15));
    make_pki(&dir, port);
    Lab {
        dir,
        http,
        _nginx: nginx,
    }
}

/// A minimal `openssl ca` configuration for CA `name` (database under `dir/name/`).
fn ca_conf(dir: &Path, name: &str) {
    let ca = dir.join(name);
    std::fs::create_dir_all(ca.join("new")).unwrap();
    std::fs::write(ca.join("index.txt"), "").unwrap();
    std::fs::write(ca.join("crlnumber"), "1000\n").unwrap();
    let serial = format!("{:02x}{}\n", name.len(), "1000");
    std::fs::write(ca.join("serial"), serial).unwrap();
    let c = ca.display();
    std::fs::write(
        dir.join(format!("{name}.cnf")),
        format!(
            r#"[ca]
default_ca = ca_{name}
[ca_{name}]
dir = {c}
database = {c}/index.txt
new_certs_dir = {c}/new
serial = {c}/serial
crlnumber = {c}/crlnumber
certificate = {dir}/{name}.pem
private_key = {dir}/{name}.key
default_md = sha256
default_days = 90
default_crl_days = 2
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
[req]
distinguished_name = dn
[dn]
[crl_ext]
authorityKeyIdentifier = keyid:always
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
}

fn key(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &format!("{name}.key"),
        ],
    );
}

/// Sign `name` (CSR for `cn`) with CA `ca` using extension section `ext` written to a file.
fn sign(dir: &Path, ca: &str, name: &str, cn: &str, ext: &str, selfsign: bool) {
    key(dir, name);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={cn}"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    std::fs::write(dir.join(format!("{name}.ext")), format!("[e]\n{ext}\n")).unwrap();
    let cnf = format!("{ca}.cnf");
    let mut args = vec![
        "ca",
        "-batch",
        "-config",
        &cnf,
        "-in",
        &format!("{name}.csr"),
        "-out",
        &format!("{name}.pem"),
        "-notext",
        "-extfile",
        &format!("{name}.ext"),
        "-extensions",
        "e",
        "-startdate",
        "20250101000000Z",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    if selfsign {
        args.extend(["-selfsign".into(), "-keyfile".into(), format!("{name}.key")]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    openssl(dir, &refs);
}

fn revoke(dir: &Path, ca: &str, name: &str, reason: &str) {
    openssl(
        dir,
        &[
            "ca",
            "-config",
            &format!("{ca}.cnf"),
            "-revoke",
            &format!("{name}.pem"),
            "-crl_reason",
            reason,
        ],
    );
}

/// `openssl ca -gencrl` for `ca` into `www/<file>` (DER).
fn gencrl(dir: &Path, ca: &str, file: &str, extra: &[&str]) {
    let pem = format!("{file}.pem");
    let cnf = format!("{ca}.cnf");
    let mut args = vec![
        "ca", "-gencrl", "-config", &cnf, "-crlexts", "crl_ext", "-out", &pem,
    ];
    args.extend_from_slice(extra);
    openssl(dir, &args);
    openssl(
        dir,
        &[
            "crl",
            "-in",
            &pem,
            "-outform",
            "DER",
            "-out",
            &format!("www/{file}"),
        ],
    );
}

const CA_EXT: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always";

fn leaf_ext(cdp: &str) -> String {
    format!(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:probe.test,IP:127.0.0.1\nauthorityKeyIdentifier=keyid:always\n{cdp}"
    )
}

/// The leaves of the lab, by name, with their CDPs (`{B}` is the nginx base URL).
const LEAVES: &[(&str, &str, &str)] = &[
    // (name, issuing CA, crlDistributionPoints)
    ("good", "int", "URI:{B}/int.crl"),
    ("revoked", "int", "URI:{B}/int.crl"),
    ("second_url", "int", "URI:{B}/missing.crl,URI:{B}/int.crl"),
    ("expired_crl", "int", "URI:{B}/int-short.crl"),
    ("forged_crl", "int", "URI:{B}/int-forged.crl"),
    ("wrong_issuer", "int", "URI:{B}/root.crl"),
    ("not_found", "int", "URI:{B}/missing.crl"),
    ("refused", "int", "URI:http://127.0.0.1:{REFUSED}/x.crl"),
    ("timeout", "int", "URI:http://127.0.0.1:{SILENT}/x.crl"),
    ("oversized", "int", "URI:{B}/big.crl"),
    (
        "ldap_only",
        "int",
        "URI:ldap:///CN=int?certificateRevocationList?base?objectClass=cRLDistributionPoint",
    ),
    ("redirect", "int", "URI:{B}/redirect-away.crl"),
    ("shared", "int", "URI:{B}/shared.crl"),
    ("stale", "int", "URI:{B}/stale.crl"),
    (
        "metadata",
        "int",
        "URI:http://169.254.169.254/latest/meta-data/x.crl",
    ),
    ("under_revoked_int", "int2", "URI:{B}/int2.crl"),
];

fn refused_port() -> u16 {
    static P: OnceLock<u16> = OnceLock::new();
    *P.get_or_init(|| support::free_port("127.0.0.1"))
}

/// A listener that accepts and never answers (kept for the whole binary).
fn silent_port() -> u16 {
    static L: OnceLock<std::net::TcpListener> = OnceLock::new();
    L.get_or_init(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .local_addr()
        .unwrap()
        .port()
}

fn make_pki(dir: &Path, port: u16) {
    let base = format!("http://127.0.0.1:{port}");
    for ca in ["root", "int", "int2", "rogue"] {
        ca_conf(dir, ca);
    }
    // Root (self-signed through `openssl ca -selfsign`, backdated so that `--at` in the past
    // still finds every certificate valid).
    sign(dir, "root", "root", "Revocation Test Root", CA_EXT, true);
    let int_ext = format!("{CA_EXT}\ncrlDistributionPoints=URI:{base}/root.crl");
    sign(
        dir,
        "root",
        "int",
        "Revocation Test Issuing CA",
        &int_ext,
        false,
    );
    sign(
        dir,
        "root",
        "int2",
        "Revocation Test Revoked CA",
        &int_ext,
        false,
    );
    // A CA with the issuing CA's name but another key: its CRLs are forgeries.
    sign(
        dir,
        "root",
        "rogue",
        "Revocation Test Issuing CA",
        CA_EXT,
        false,
    );
    for (name, ca, cdp) in LEAVES {
        let cdp = cdp
            .replace("{B}", &base)
            .replace("{REFUSED}", &refused_port().to_string())
            .replace("{SILENT}", &silent_port().to_string());
        sign(
            dir,
            ca,
            name,
            &format!("{name}.probe.test"),
            &leaf_ext(&format!("crlDistributionPoints={cdp}")),
            false,
        );
    }
    revoke(dir, "int", "revoked", "keyCompromise");
    revoke(dir, "root", "int2", "cACompromise");
    gencrl(dir, "root", "root.crl", &[]);
    gencrl(dir, "int", "int.crl", &[]);
    gencrl(dir, "int2", "int2.crl", &[]);
    gencrl(dir, "int", "shared.crl", &[]);
    gencrl(dir, "int", "stale.crl", &[]);
    gencrl(dir, "int", "int-short.crl", &["-crlhours", "1"]);
    gencrl(dir, "rogue", "int-forged.crl", &[]);
    std::fs::write(dir.join("www/big.crl"), vec![0x30u8; 3 * 1024 * 1024]).unwrap();
}

fn der_of(dir: &Path, name: &str) -> CertificateDer<'static> {
    let pem = std::fs::read(dir.join(format!("{name}.pem"))).unwrap();
    rustls_pki_types::pem::PemObject::from_pem_slice(&pem).expect("pem cert")
}

fn key_of(dir: &Path, name: &str) -> PrivateKeyDer<'static> {
    let pem = std::fs::read(dir.join(format!("{name}.key"))).unwrap();
    rustls_pki_types::pem::PemObject::from_pem_slice(&pem).expect("pem key")
}

/// A TLS server on 127.0.0.1 presenting leaf `name` and its issuing CA.
async fn server(name: &str, issuer: &str) -> TlsServer {
    let l = lab();
    let chain = vec![der_of(&l.dir, name), der_of(&l.dir, issuer)];
    let cfg = support::server_config(chain, key_of(&l.dir, name), &[], ClientAuth::None);
    TlsServer::start("127.0.0.1", cfg).await
}

fn issuer_of(name: &str) -> &'static str {
    LEAVES
        .iter()
        .find(|l| l.0 == name)
        .map(|l| l.1)
        .unwrap_or("int")
}

/// Endpoints (one per server) trusting the lab's root, with `revocation` YAML under global.
fn config(servers: &[&TlsServer], revocation: &str) -> Config {
    let mut yaml = format!(
        "trust_stores:\n  lab: {{class: internal, pem_files: [root.pem]}}\nglobal:\n  revocation: {revocation}\nendpoints:\n"
    );
    for (i, s) in servers.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: ep{i}\n    host: 127.0.0.1\n    port: {}\n    sni: probe.test\n",
            s.addr.port()
        ));
    }
    Config::from_yaml(&yaml, "revocation.yaml", BaseDir(lab().dir.clone()))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn ctx(cfg: &Config, at: Option<i64>) -> EvalContext {
    EvalContext {
        stores: cfg.stores.clone(),
        policy: cfg.policy.clone(),
        at,
    }
}

fn now() -> i64 {
    runner::unix_now() as i64
}

/// Probe leaf `name` once (its own server) and return the outcome.
async fn probe(name: &str, revocation: &str, at: Option<i64>) -> ProbeOutcome {
    let s = server(name, issuer_of(name)).await;
    let cfg = config(&[&s], revocation);
    let mut out = runner::probe_endpoint(&cfg.endpoints[0], &ctx(&cfg, at)).await;
    assert_eq!(out.len(), 1);
    out.remove(0)
}

fn revocation(o: &ProbeOutcome) -> &certprobe::revocation::RevocationReport {
    o.report
        .as_ref()
        .and_then(|r| r.revocation.as_ref())
        .unwrap_or_else(|| panic!("no revocation report: {o:?}"))
}

/// Requests nginx logged for `path` (`$request_uri $status` lines).
fn requests(path: &str) -> Vec<String> {
    let log = std::fs::read_to_string(lab().dir.join("access.log")).unwrap_or_default();
    log.lines()
        .filter(|l| l.split(' ').next() == Some(path))
        .map(str::to_string)
        .collect()
}

const DEFAULTS: &str = "{method: crl}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_leaf_and_its_issuing_ca_are_checked_against_their_crls() {
    let o = probe("good", DEFAULTS, None).await;
    let r = revocation(&o);
    assert_eq!(
        r.certs.len(),
        2,
        "leaf and intermediate, not the anchor: {r:?}"
    );
    assert_eq!(r.certs[0].status, Status::Good, "{r:?}");
    assert!(r.certs[0].url.as_deref().unwrap().ends_with("/int.crl"));
    assert_eq!(r.certs[1].status, Status::Good, "{r:?}");
    assert!(r.certs[1].url.as_deref().unwrap().ends_with("/root.crl"));
    assert!(r.certs[0].crl_next_update.unwrap() > now());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_leaf_is_reported_with_its_reason_and_date() {
    let o = probe("revoked", DEFAULTS, None).await;
    let leaf = &revocation(&o).certs[0];
    assert_eq!(leaf.status, Status::Revoked, "{leaf:?}");
    assert_eq!(leaf.revocation_reason.as_deref(), Some("keyCompromise"));
    let at = leaf.revoked_at.unwrap();
    assert!((now() - at).abs() < 3600, "revoked just now: {at}");
    // The default profile's `revocation` rule fails the endpoint.
    assert_eq!(o.evaluation.status, certprobe::policy::Status::Critical);
    let v = verdict(&o, "revocation");
    assert_eq!(v.verdict, certprobe::policy::Verdict::Fail, "{v:?}");
    assert!(v.message.contains("keyCompromise"), "{}", v.message);
    // The good leaf passes it.
    let o = probe("good", DEFAULTS, None).await;
    assert_eq!(
        verdict(&o, "revocation").verdict,
        certprobe::policy::Verdict::Pass
    );
    assert_eq!(
        o.evaluation.status,
        certprobe::policy::Status::Ok,
        "{:?}",
        o.evaluation
    );
}

fn verdict<'a>(o: &'a ProbeOutcome, rule: &str) -> &'a certprobe::policy::RuleVerdict {
    o.evaluation
        .verdicts
        .iter()
        .find(|v| v.rule.as_str() == rule)
        .unwrap_or_else(|| panic!("no {rule} verdict: {:?}", o.evaluation))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intermediate_revoked_by_the_roots_crl_is_reported_at_its_position() {
    let o = probe("under_revoked_int", DEFAULTS, None).await;
    let r = revocation(&o);
    assert_eq!(r.certs[0].status, Status::Good, "{r:?}");
    assert_eq!(r.certs[1].position, 1);
    assert_eq!(r.certs[1].status, Status::Revoked, "{r:?}");
    assert_eq!(
        r.certs[1].revocation_reason.as_deref(),
        Some("cACompromise")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crl_past_its_next_update_is_unavailable_and_one_not_yet_valid_too() {
    // int-short.crl's nextUpdate is in one hour: judged two hours from now it has expired.
    let o = probe("expired_crl", DEFAULTS, Some(now() + 2 * 3600)).await;
    let leaf = &revocation(&o).certs[0];
    assert_eq!(leaf.status, Status::Unavailable, "{leaf:?}");
    assert_eq!(leaf.reason, Some(Reason::Expired));
    assert_eq!(
        verdict(&o, "revocation").verdict,
        certprobe::policy::Verdict::Fail
    );
    assert_eq!(
        verdict(&o, "crl_fresh").verdict,
        certprobe::policy::Verdict::Warn
    );
    // Judged an hour ago (before every CRL's thisUpdate; the certificates are backdated).
    let o = probe("good", DEFAULTS, Some(now() - 3600)).await;
    let leaf = &revocation(&o).certs[0];
    assert_eq!(leaf.status, Status::Unavailable, "{leaf:?}");
    assert_eq!(leaf.reason, Some(Reason::NotYetValid));
    // And the same CRL judged now is fine.
    let o = probe("expired_crl", DEFAULTS, None).await;
    assert_eq!(revocation(&o).certs[0].status, Status::Good);
    // ... but it expires within crl_fresh's 24 hours: a warning.
    let v = verdict(&o, "crl_fresh");
    assert_eq!(v.verdict, certprobe::policy::Verdict::Warn, "{v:?}");
    assert!(v.message.contains("int-short.crl"), "{}", v.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crl_signed_by_another_key_or_issued_by_another_ca_is_not_used() {
    let o = probe("forged_crl", DEFAULTS, None).await;
    let leaf = &revocation(&o).certs[0];
    assert_eq!(leaf.status, Status::Unavailable, "{leaf:?}");
    assert_eq!(leaf.reason, Some(Reason::BadSignature));
    let o = probe("wrong_issuer", DEFAULTS, None).await;
    let leaf = &revocation(&o).certs[0];
    assert_eq!(leaf.status, Status::Unavailable, "{leaf:?}");
    assert_eq!(leaf.reason, Some(Reason::WrongIssuer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_cdps_give_bounded_reasons_and_the_next_url_is_tried() {
    let cases = [
        ("not_found", Reason::HttpStatus),
        ("refused", Reason::Connect),
        ("oversized", Reason::TooLarge),
        ("redirect", Reason::Redirect),
        ("metadata", Reason::Blocked),
    ];
    for (name, reason) in cases {
        let o = probe(name, "{method: crl, max_crl_bytes: 1048576}", None).await;
        let leaf = &revocation(&o).certs[0];
        assert_eq!(leaf.status, Status::Unavailable, "{name}: {leaf:?}");
        assert_eq!(leaf.reason, Some(reason), "{name}: {leaf:?}");
    }
    // The 404 comes first, the second URL gives the verdict.
    let o = probe("second_url", DEFAULTS, None).await;
    let leaf = &revocation(&o).certs[0];
    assert_eq!(leaf.status, Status::Good, "{leaf:?}");
    assert_eq!(leaf.attempts.len(), 2);
    assert_eq!(leaf.attempts[0].error, Some(Reason::HttpStatus));
    assert!(leaf.url.as_deref().unwrap().ends_with("/int.crl"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_cdp_times_out_within_the_configured_bound() {
    let started = std::time::Instant::now();
    let o = probe("timeout", "{method: crl, timeout: 1s}", None).await;
    let leaf = &revocation(&o).certs[0];
    assert_eq!(leaf.status, Status::Unavailable, "{leaf:?}");
    assert_eq!(leaf.reason, Some(Reason::Timeout));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ldap_only_cdp_is_not_fetched_and_is_reported_as_such() {
    let o = probe("ldap_only", DEFAULTS, None).await;
    let leaf = &revocation(&o).certs[0];
    assert_eq!(leaf.status, Status::Unknown, "{leaf:?}");
    assert!(leaf.ldap_only);
    assert_eq!(leaf.unknown_because, Some("ldap_only"));
    assert!(leaf.attempts.is_empty());
    // `cdp_ldap_only` in the lync2013 preset: a failure for the Edge's external interface, a
    // warning for an internal role; `revocation` itself does not fail on it.
    let s = server("ldap_only", "int").await;
    let yaml = format!(
        "trust_stores:\n  lab: {{class: internal, pem_files: [root.pem]}}\npolicy:\n  preset: lync2013\n  vars:\n    sip_domains: [probe.test]\n    fe_pool: probe.test\n    edge_access_fqdn: probe.test\n    edge_webconf_fqdn: probe.test\nendpoints:\n  - {{name: ext, host: 127.0.0.1, port: {p}, sni: probe.test, profile: edge_external}}\n  - {{name: int, host: 127.0.0.1, port: {p}, sni: probe.test, profile: fe_default}}\n",
        p = s.addr.port()
    );
    let cfg = Config::from_yaml(&yaml, "lync.yaml", BaseDir(lab().dir.clone()))
        .unwrap_or_else(|e| panic!("{e}"));
    let c = ctx(&cfg, None);
    let ext = runner::probe_endpoint(&cfg.endpoints[0], &c)
        .await
        .remove(0);
    let int = runner::probe_endpoint(&cfg.endpoints[1], &c)
        .await
        .remove(0);
    use certprobe::policy::Verdict;
    assert_eq!(
        verdict(&ext, "cdp_ldap_only").verdict,
        Verdict::Fail,
        "{:?}",
        ext.evaluation
    );
    assert_eq!(
        verdict(&int, "cdp_ldap_only").verdict,
        Verdict::Warn,
        "{:?}",
        int.evaluation
    );
    assert_eq!(verdict(&int, "revocation").verdict, Verdict::Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_servers_cdp_is_not_fetched() {
    // A chain of a CA nobody configured, whose leaf points at the lab's nginx.
    let l = lab();
    let hostile = tempfile::tempdir().unwrap();
    let h = hostile.path();
    ca_conf(h, "evil");
    sign(h, "evil", "evil", "Evil Root", CA_EXT, true);
    let cdp = format!("crlDistributionPoints=URI:http://{}/hostile.crl", l.http);
    sign(h, "evil", "leaf", "leaf.probe.test", &leaf_ext(&cdp), false);
    let chain = vec![der_of(h, "leaf"), der_of(h, "evil")];
    let s = TlsServer::start(
        "127.0.0.1",
        support::server_config(chain, key_of(h, "leaf"), &[], ClientAuth::None),
    )
    .await;
    let cfg = config(&[&s], DEFAULTS);
    let o = runner::probe_endpoint(&cfg.endpoints[0], &ctx(&cfg, None)).await;
    let report = o[0].report.as_ref().expect("a chain was captured");
    assert!(report.verified_stores().next().is_none());
    assert!(report.certs[0].crl_distribution_points[0].ends_with("/hostile.crl"));
    let rev = report.revocation.as_ref().unwrap();
    assert!(rev.certs.is_empty(), "nothing planned: {rev:?}");
    // A request would have reached nginx (and been logged) before the probe returned.
    assert!(requests("/hostile.crl").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_endpoints_sharing_a_cdp_cause_one_fetch_per_refresh() {
    let mut servers = Vec::new();
    for _ in 0..20 {
        servers.push(server("shared", "int").await);
    }
    let refs: Vec<&TlsServer> = servers.iter().collect();
    let cfg = config(&refs, "{method: crl, max_age: 2s}");
    let c = ctx(&cfg, None);
    let outcomes = runner::probe_all(&cfg.endpoints, 20, &c).await;
    assert_eq!(outcomes.len(), 20);
    for o in &outcomes {
        assert_eq!(revocation(o).certs[0].status, Status::Good, "{o:?}");
    }
    assert_eq!(
        requests("/shared.crl"),
        ["/shared.crl 200"],
        "one fetch for 20 endpoints"
    );
    // Within max_age: no fetch at all.
    runner::probe_all(&cfg.endpoints, 20, &c).await;
    assert_eq!(requests("/shared.crl").len(), 1);
    // After max_age: one conditional GET (nginx answers 304), however many endpoints ask.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let outcomes = runner::probe_all(&cfg.endpoints, 20, &c).await;
    assert_eq!(
        requests("/shared.crl"),
        ["/shared.crl 200", "/shared.crl 304"]
    );
    assert!(outcomes
        .iter()
        .all(|o| revocation(o).certs[0].status == Status::Good));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_good_copy_is_kept_and_reported_stale_when_a_refetch_fails() {
    let o = probe("stale", "{method: crl, max_age: 1s}", None).await;
    assert!(!revocation(&o).certs[0].stale);
    std::fs::remove_file(lab().dir.join("www/stale.crl")).unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let o = probe("stale", "{method: crl, max_age: 1s}", None).await;
    let leaf = &revocation(&o).certs[0];
    assert_eq!(leaf.status, Status::Good, "{leaf:?}");
    assert!(leaf.stale, "{leaf:?}");
    assert_eq!(requests("/stale.crl"), ["/stale.crl 200", "/stale.crl 404"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_off_fetches_nothing() {
    let o = probe("good", "{method: off}", None).await;
    assert!(o.report.as_ref().unwrap().revocation.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crl_urls_and_revoked_certificates_are_exported() {
    use certprobe::daemon::metrics::{BuildInfo, Metrics};
    let metrics = Metrics::new(BuildInfo {
        version: "0".into(),
        revision: "t".into(),
    });
    let revoked = probe("revoked", DEFAULTS, None).await;
    let good = probe("good", DEFAULTS, None).await;
    let missing = probe("not_found", DEFAULTS, None).await;
    for o in [&revoked, &good, &missing] {
        metrics.record(o);
    }
    let page = metrics.render_text();
    let base = format!("http://{}", lab().http);
    let has = |line: &str| page.lines().any(|l| l == line);
    assert!(
        has(&format!(
            "certprobe_crl_fetch_success{{url=\"{base}/int.crl\"}} 1"
        )),
        "{page}"
    );
    assert!(has(&format!(
        "certprobe_crl_fetch_success{{url=\"{base}/missing.crl\"}} 0"
    )));
    assert!(has(&format!(
        "certprobe_crl_fetch_failure{{url=\"{base}/missing.crl\",reason=\"http_status\"}} 1"
    )));
    let next = page
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "certprobe_crl_next_update_timestamp_seconds{{url=\"{base}/int.crl\"}}"
            ))
        })
        .expect("next update of int.crl");
    let t: i64 = next.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(t > now() && t < now() + 3 * DAY_SECS, "{next}");
    assert!(has(&format!(
        "certprobe_crl_entries{{url=\"{base}/int.crl\"}} 1"
    )));
    // Per certificate: only the revoked leaf and the unavailable one have series.
    let revoked_lines: Vec<&str> = page
        .lines()
        .filter(|l| l.starts_with("certprobe_cert_revoked{"))
        .collect();
    assert_eq!(revoked_lines.len(), 1, "{revoked_lines:?}");
    assert!(revoked_lines[0].contains(&format!("endpoint=\"ep0\",address=\"{}\"", revoked.address)));
    assert!(
        revoked_lines[0].ends_with(",position=\"0\"} 1"),
        "{}",
        revoked_lines[0]
    );
    let status: Vec<&str> = page
        .lines()
        .filter(|l| l.starts_with("certprobe_revocation_status{"))
        .collect();
    assert_eq!(
        status.len(),
        2,
        "revoked leaf, unavailable leaf; nothing for good ones: {status:?}"
    );
    assert!(status
        .iter()
        .any(|l| l.ends_with(",position=\"0\",method=\"crl\"} 3")));
    assert!(status
        .iter()
        .any(|l| l.ends_with(",position=\"0\",method=\"crl\"} 2")));
}

const DAY_SECS: i64 = 86_400;
