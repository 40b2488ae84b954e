//! Revocation end to end: a PKI made with `openssl ca` (index, `-gencrl`), CRLs served over HTTP
//! by nginx on 127.0.0.1, TLS servers on loopback presenting leaves whose CDP points at it.
//! OCSP: responses made by `openssl ocsp` from the CA's index, stapled by `openssl s_server
//! -status_file`, and a live responder (`openssl ocsp -reqin/-respout` run per request by
//! Apache's mod_cgi on 127.0.0.1: `openssl ocsp -port` listens on every interface).
//! The PKI, nginx and Apache are made once per test binary; each test uses its own URLs, so
//! the process-wide caches do not couple them.

use crate::support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use certprobe::config::{BaseDir, Config};
use certprobe::outcome::ProbeOutcome;
use certprobe::policy::Verdict;
use certprobe::revocation::{Reason, Status};
use certprobe::runner::{self, EvalContext};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use support::{openssl, ChildGuard, ClientAuth, TlsServer};

/// The shared lab: a directory with the PKI, nginx serving `www/` with an access log.
struct Lab {
    dir: PathBuf,
    http: SocketAddr,
    /// Apache with the OCSP responders `/int` (the issuing CA's index, signed by its delegated
    /// responder) and `/empty` (an empty index: every certificate unknown).
    ocsp: SocketAddr,
    _nginx: ChildGuard,
    _apache: ChildGuard,
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
    let conf = support::nginx_conf(
        &dir,
        256,
        &format!(
            r#"  log_format plain '$request_uri $status';
  access_log {d}/access.log plain;
  server {{
    listen 127.0.0.1:{port};
    root {d}/www;
    location /redirect-away.crl {{ return 302 http://localhost:{port}/int.crl; }}
  }}
"#
        ),
    );
    let conf_path = support::write_file(&dir, "nginx.conf", &conf);
    let mut cmd = support::until_stdin_closes("nginx");
    cmd.arg("-e")
        .arg(format!("{d}/error.log"))
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf_path);
    let nginx = ChildGuard::spawn(cmd, None, Some(http), Duration::from_secs(15));
    let ocsp: SocketAddr = ([127, 0, 0, 1], support::free_port("127.0.0.1")).into();
    make_pki(&dir, port, ocsp.port());
    let apache = start_ocsp_responders(&dir, ocsp);
    Lab {
        dir,
        http,
        ocsp,
        _nginx: nginx,
        _apache: apache,
    }
}

/// An OCSP responder as a CGI script: `openssl ocsp` answers the request (GET: base64 in the
/// last path segment, RFC 6960 A.1; POST: the body) from `index`, signed by `signer`.
fn responder_cgi(dir: &Path, name: &str, index: &str, signer: &str) -> PathBuf {
    let d = dir.display();
    let script = format!(
        r#"#!/bin/sh
req=$(mktemp) || exit 1
resp=$(mktemp) || exit 1
if [ "$REQUEST_METHOD" = POST ]; then
  cat > "$req"
else
  printf '%s' "${{REQUEST_URI##*/}}" | sed 's/%2B/+/g; s/%2F/\//g; s/%3D/=/g' | base64 -d > "$req"
fi
if openssl ocsp -index {d}/{index} -CA {d}/int.pem -rsigner {d}/{signer}.pem -rkey {d}/{signer}.key      -reqin "$req" -respout "$resp" -ndays 1 >/dev/null 2>&1; then
  printf 'Content-Type: application/ocsp-response

'
  cat "$resp"
else
  printf 'Status: 500
Content-Type: text/plain

ocsp failed
'
fi
rm -f "$req" "$resp"
"#
    );
    let path = support::write_file(dir, &format!("{name}.cgi"), &script);
    let _ = Command::new("chmod").arg("755").arg(&path).status();
    path
}

fn start_ocsp_responders(dir: &Path, addr: SocketAddr) -> ChildGuard {
    let d = dir.display();
    let int = responder_cgi(dir, "ocsp-int", "int/index.txt", "int_ocsp");
    let empty = responder_cgi(dir, "ocsp-empty", "empty-index.txt", "int");
    let m = "/usr/lib/apache2/modules";
    let conf = format!(
        r#"ServerRoot {d}
ServerName localhost
LoadModule mpm_prefork_module {m}/mod_mpm_prefork.so
LoadModule authz_core_module {m}/mod_authz_core.so
LoadModule alias_module {m}/mod_alias.so
LoadModule cgi_module {m}/mod_cgi.so
User www-data
Group www-data
PidFile {d}/apache.pid
ErrorLog {d}/apache-error.log
LogFormat "%U %>s" plain
CustomLog {d}/ocsp-access.log plain
Mutex file:{d} default
DefaultRuntimeDir {d}
Listen {addr}
AllowEncodedSlashes NoDecode
ScriptAlias /int {int}
ScriptAlias /live {int}
ScriptAlias /hostile {int}
ScriptAlias /empty {empty}
"#,
        int = int.display(),
        empty = empty.display()
    );
    let conf_path = support::write_file(dir, "apache.conf", &conf);
    // The CGI runs as www-data: it reads the CA's index, certificates and the signers' keys.
    let _ = Command::new("chmod")
        .arg("-R")
        .arg("a+rX")
        .arg(dir)
        .status();
    let mut cmd = support::until_stdin_closes("apache2");
    cmd.arg("-X").arg("-f").arg(&conf_path);
    ChildGuard::spawn(cmd, None, Some(addr), Duration::from_secs(20))
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
    // Delta CRLs: the base names its delta (Freshest CRL).
    ("delta_revoked", "int", "URI:{B}/int-base.crl"),
    ("delta_held", "int", "URI:{B}/int-base.crl"),
    // OCSP (a CDP too, for `ocsp_then_crl`). `*_revoked` are revoked after the CRLs were
    // published: only OCSP knows.
    ("staple_revoked", "int", "URI:{B}/int.crl"),
    (
        "ocsp_live",
        "int",
        "URI:{B}/int.crl\nauthorityInfoAccess=OCSP;URI:{O}/live",
    ),
    (
        "ocsp_live_revoked",
        "int",
        "URI:{B}/int.crl\nauthorityInfoAccess=OCSP;URI:{O}/int",
    ),
    (
        "ocsp_unknown",
        "int",
        "URI:{B}/int.crl\nauthorityInfoAccess=OCSP;URI:{O}/empty",
    ),
    (
        "ocsp_down",
        "int",
        "URI:{B}/int.crl\nauthorityInfoAccess=OCSP;URI:http://127.0.0.1:{REFUSED}/",
    ),
    (
        "ocsp_metadata",
        "int",
        "URI:{B}/int.crl\nauthorityInfoAccess=OCSP;URI:http://169.254.169.254/ocsp",
    ),
    // AIA caIssuers (served alone, without the issuing CA): the issuer is fetched only from
    // hosts in `revocation.allow_hosts`.
    (
        "aia",
        "int",
        "URI:{B}/int.crl\nauthorityInfoAccess=caIssuers;URI:{B}/aia/int.crt",
    ),
    (
        "aia_off",
        "int",
        "URI:{B}/int.crl\nauthorityInfoAccess=caIssuers;URI:{B}/aia/int-off.crt",
    ),
    (
        "aia_pem",
        "int",
        "URI:{B}/int.crl\nauthorityInfoAccess=caIssuers;URI:{B}/aia/missing.crt,caIssuers;URI:{B}/aia/int.pem",
    ),
    (
        "aia_rogue",
        "int",
        "URI:{B}/int.crl\nauthorityInfoAccess=caIssuers;URI:{B}/aia/rogue.crt",
    ),
    (
        "aia_elsewhere",
        "int",
        "URI:{B}/int.crl\nauthorityInfoAccess=caIssuers;URI:{L}/aia/elsewhere.crt",
    ),
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

fn make_pki(dir: &Path, port: u16, ocsp_port: u16) {
    let base = format!("http://127.0.0.1:{port}");
    let ocsp_base = format!("http://127.0.0.1:{ocsp_port}");
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
            .replace("{O}", &ocsp_base)
            .replace("{L}", &format!("http://localhost:{port}"))
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
    make_deltas(dir, &base);
    make_ocsp(dir);
    // The issuing CA as AD CS publishes it (DER `.crt`), the same in PEM, and the rogue CA
    // (same subject, another key) where a leaf's AIA points.
    std::fs::create_dir_all(dir.join("www/aia")).unwrap();
    let int_der = der_of(dir, "int");
    for f in ["int.crt", "int-off.crt", "elsewhere.crt"] {
        std::fs::write(dir.join("www/aia").join(f), int_der.as_ref()).unwrap();
    }
    std::fs::copy(dir.join("int.pem"), dir.join("www/aia/int.pem")).unwrap();
    std::fs::write(dir.join("www/aia/rogue.crt"), der_of(dir, "rogue").as_ref()).unwrap();
}

/// A base CRL naming its delta CRL (AD CS's default), then a delta: `delta_revoked` is revoked
/// after the base was published (only the delta lists it), and `delta_held`, on hold in the
/// base, is released by the delta (removeFromCRL).
fn make_deltas(dir: &Path, base_url: &str) {
    let mut cnf = std::fs::read_to_string(dir.join("int.cnf")).unwrap();
    let base_number = std::fs::read_to_string(dir.join("int/crlnumber")).unwrap();
    cnf.push_str(&format!(
        "[crl_base]\nauthorityKeyIdentifier = keyid:always\nfreshestCRL = URI:{base_url}/int-delta.crl\n[crl_delta]\nauthorityKeyIdentifier = keyid:always\n2.5.29.27 = critical,ASN1:INTEGER:0x{}\n",
        base_number.trim()
    ));
    std::fs::write(dir.join("int-delta.cnf"), cnf).unwrap();
    revoke(dir, "int", "delta_held", "certificateHold");
    let gen = |file: &str, section: &str| {
        let pem = format!("{file}.pem");
        openssl(
            dir,
            &[
                "ca",
                "-gencrl",
                "-config",
                "int-delta.cnf",
                "-crlexts",
                section,
                "-out",
                &pem,
            ],
        );
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
    };
    gen("int-base.crl", "crl_base");
    revoke(dir, "int", "delta_revoked", "keyCompromise");
    // openssl ca cannot revoke twice: the index entry of the held certificate is edited to
    // removeFromCRL, as a CA releasing a hold publishes it.
    let index = std::fs::read_to_string(dir.join("int/index.txt")).unwrap();
    std::fs::write(
        dir.join("int/index.txt"),
        index.replace(",certificateHold", ",removeFromCRL"),
    )
    .unwrap();
    gen("int-delta.crl", "crl_delta");
}

const OCSP_SIGNER_EXT: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning\nauthorityKeyIdentifier=keyid:always";

/// Responder certificates and the stapled responses of the lab (in `staples/`).
fn make_ocsp(dir: &Path) {
    // The issuing CA's delegated responder, and one issued by the rogue CA (same issuer name
    // as the issuing CA, another key).
    sign(
        dir,
        "int",
        "int_ocsp",
        "Revocation Test OCSP",
        OCSP_SIGNER_EXT,
        false,
    );
    sign(
        dir,
        "rogue",
        "rogue_ocsp",
        "Rogue OCSP",
        OCSP_SIGNER_EXT,
        false,
    );
    // Revoked after the CRLs: the CRLs say good, OCSP says revoked.
    revoke(dir, "int", "staple_revoked", "keyCompromise");
    revoke(dir, "int", "ocsp_live_revoked", "superseded");
    std::fs::create_dir_all(dir.join("staples")).unwrap();
    std::fs::write(dir.join("empty-index.txt"), "").unwrap();
    let staple = |file: &str, cert: &str, index: &str, signer: &str, extra: &[&str]| {
        let out = format!("staples/{file}");
        let mut args = vec![
            "ocsp",
            "-index",
            index,
            "-CA",
            "int.pem",
            "-rsigner",
            &format!("{signer}.pem"),
            "-rkey",
            &format!("{signer}.key"),
            "-issuer",
            "int.pem",
            "-cert",
            &format!("{cert}.pem"),
            "-no_nonce",
            "-respout",
            &out,
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl(dir, &refs);
    };
    let idx = "int/index.txt";
    staple("good.der", "good", idx, "int", &["-ndays", "1"]);
    staple(
        "revoked.der",
        "staple_revoked",
        idx,
        "int",
        &["-ndays", "1"],
    );
    staple(
        "unknown.der",
        "good",
        "empty-index.txt",
        "int",
        &["-ndays", "1"],
    );
    staple("delegated.der", "good", idx, "int_ocsp", &["-ndays", "1"]);
    staple("rogue_key.der", "good", idx, "rogue", &["-ndays", "1"]);
    staple(
        "rogue_delegate.der",
        "good",
        idx,
        "rogue_ocsp",
        &["-ndays", "1"],
    );
    staple("other_cert.der", "revoked", idx, "int", &["-ndays", "1"]);
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
    let ports: Vec<u16> = servers.iter().map(|s| s.addr.port()).collect();
    config_ports(&ports, revocation)
}

fn config_ports(ports: &[u16], revocation: &str) -> Config {
    let mut yaml = format!(
        "trust_stores:\n  lab: {{class: internal, pem_files: [root.pem]}}\nglobal:\n  revocation: {revocation}\nendpoints:\n"
    );
    for (i, port) in ports.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: ep{i}\n    host: 127.0.0.1\n    port: {port}\n    sni: probe.test\n"
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

// === OCSP ===

/// `openssl s_server` on 127.0.0.1 presenting `leaf` and the issuing CA, stapling
/// `staples/<staple>` (as read by `-status_file`).
fn staple_server(leaf: &str, staple: &str) -> support::OpensslServer {
    let d = &lab().dir;
    support::OpensslServer::start(
        &d.join(format!("{leaf}.pem")),
        &d.join(format!("{leaf}.key")),
        Some(&d.join("int.pem")),
        &[
            "-status_file",
            &d.join("staples").join(staple).display().to_string(),
        ],
    )
}

async fn probe_port(port: u16, revocation: &str, at: Option<i64>) -> ProbeOutcome {
    let cfg = config_ports(&[port], revocation);
    let mut out = runner::probe_endpoint(&cfg.endpoints[0], &ctx(&cfg, at)).await;
    assert_eq!(out.len(), 1);
    out.remove(0)
}

async fn probe_stapled(
    leaf: &str,
    staple: &str,
    revocation: &str,
    at: Option<i64>,
) -> ProbeOutcome {
    let s = staple_server(leaf, staple);
    let o = probe_port(s.addr.port(), revocation, at).await;
    assert!(
        o.capture.ocsp_staple_bytes.is_some(),
        "stapled: {:?}",
        o.capture
    );
    o
}

/// Requests Apache logged for the OCSP responder under `prefix` (`/int`, `/empty`). Apache
/// logs a request after answering it: give it a moment.
fn ocsp_requests(prefix: &str) -> usize {
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(lab().dir.join("ocsp-access.log")).unwrap_or_default();
    log.lines()
        .filter(|l| l.starts_with(&format!("{prefix}/")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stapled_revoked_response_is_reported_revoked_even_under_crl() {
    use certprobe::revocation::{ocsp::CertStatus, Source};
    // The CRL (published before the revocation) says good; the staple says revoked.
    for method in ["{method: crl}", "{method: stapled_only}", "{method: ocsp}"] {
        let o = probe_stapled("staple_revoked", "revoked.der", method, None).await;
        let leaf = &revocation(&o).certs[0];
        assert_eq!(leaf.status, Status::Revoked, "{method}: {leaf:?}");
        assert_eq!(leaf.method, Source::OcspStapled, "{method}");
        assert_eq!(leaf.staple_status, Some(CertStatus::Revoked));
        assert_eq!(leaf.revocation_reason.as_deref(), Some("keyCompromise"));
        assert!(leaf.revoked_at.is_some_and(|t| (now() - t).abs() < 3600));
        let v = verdict(&o, "revocation");
        assert_eq!(
            v.verdict,
            certprobe::policy::Verdict::Fail,
            "{method}: {v:?}"
        );
        assert!(v.message.contains("stapled OCSP"), "{}", v.message);
    }
    // A good staple on the same kind of server: good.
    let o = probe_stapled("good", "good.der", "{method: stapled_only}", None).await;
    let leaf = &revocation(&o).certs[0];
    assert_eq!(leaf.status, Status::Good, "{leaf:?}");
    assert_eq!(leaf.method, Source::OcspStapled);
    assert!(leaf.ocsp_next_update.is_some_and(|n| n > now()));
    // stapled_only checks only the leaf.
    assert_eq!(revocation(&o).certs[1].unknown_because, Some("not_stapled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stapled_responses_are_verified_before_they_count() {
    use certprobe::revocation::ocsp::CertStatus;
    let only = "{method: stapled_only}";
    // Signed by the issuer's delegated responder (id-kp-OCSPSigning, issued by it): good.
    let o = probe_stapled("good", "delegated.der", only, None).await;
    let leaf = &revocation(&o).certs[0];
    assert_eq!(leaf.status, Status::Good, "{leaf:?}");
    assert!(
        leaf.detail.contains("delegated responder"),
        "{}",
        leaf.detail
    );
    let cases = [
        // The responder does not know the certificate.
        ("unknown.der", None, Reason::CertUnknown),
        // Signed with another key under the issuer's name.
        ("rogue_key.der", None, Reason::BadSignature),
        // A "delegated responder" issued by another CA.
        ("rogue_delegate.der", None, Reason::Unauthorized),
        // A genuine response about another certificate.
        ("other_cert.der", None, Reason::NoMatchingResponse),
        // Past its nextUpdate (one day), and before its thisUpdate.
        ("good.der", Some(now() + 2 * DAY_SECS), Reason::Expired),
        ("good.der", Some(now() - 3600), Reason::NotYetValid),
    ];
    for (file, at, reason) in cases {
        let o = probe_stapled("good", file, only, at).await;
        let leaf = &revocation(&o).certs[0];
        assert_eq!(leaf.status, Status::Unavailable, "{file}: {leaf:?}");
        assert_eq!(leaf.reason, Some(reason), "{file}: {leaf:?}");
        assert_eq!(
            verdict(&o, "revocation").verdict,
            certprobe::policy::Verdict::Fail,
            "{file}"
        );
    }
    let o = probe_stapled("good", "unknown.der", only, None).await;
    assert_eq!(
        revocation(&o).certs[0].staple_status,
        Some(CertStatus::Unknown)
    );
    // Under crl, an unusable staple leaves the CRL's verdict and is reported beside it.
    let o = probe_stapled("good", "rogue_delegate.der", DEFAULTS, None).await;
    let leaf = &revocation(&o).certs[0];
    assert_eq!(leaf.status, Status::Good, "{leaf:?}");
    assert_eq!(leaf.staple_error, Some(Reason::Unauthorized));
    // No staple at all.
    let s = server("good", "int").await;
    let o = probe_port(s.addr.port(), only, None).await;
    assert_eq!(revocation(&o).certs[0].unknown_because, Some("no_staple"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_staple_is_malformed_never_good() {
    // openssl s_server and gnutls-serv refuse to load garbage as a staple (gnutls-serv
    // --ignore-ocsp-response-errors would, but it listens on every interface): a rustls server
    // staples the bytes as given.
    let l = lab();
    let provider = certprobe::crypto_provider();
    let chain = vec![der_of(&l.dir, "good"), der_of(&l.dir, "int")];
    let mut certified =
        rustls::sign::CertifiedKey::from_der(chain, key_of(&l.dir, "good"), &provider).unwrap();
    for (bytes, reason) in [
        (
            b"\x30\x82\xff\xff garbage, not an OCSP response".to_vec(),
            Reason::BadDer,
        ),
        (b"\x30\x03\x0a\x01\x03".to_vec(), Reason::ResponderStatus),
    ] {
        certified.ocsp = Some(bytes);
        let cfg = support::server_config_with_key(
            std::sync::Arc::new(certified.clone()),
            &[],
            ClientAuth::None,
        );
        let s = TlsServer::start("127.0.0.1", cfg).await;
        let o = probe_port(s.addr.port(), "{method: stapled_only}", None).await;
        let leaf = &revocation(&o).certs[0];
        assert_eq!(leaf.status, Status::Unavailable, "{leaf:?}");
        assert_eq!(leaf.reason, Some(reason), "{leaf:?}");
        let o = probe_port(s.addr.port(), DEFAULTS, None).await;
        let leaf = &revocation(&o).certs[0];
        assert_eq!(leaf.status, Status::Good, "the CRL decides: {leaf:?}");
        assert_eq!(leaf.staple_error, Some(reason));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_ocsp_asks_the_aia_responder_once_per_certificate() {
    use certprobe::revocation::Source;
    let before = ocsp_requests("/live");
    let o = probe("ocsp_live", "{method: ocsp}", None).await;
    let r = revocation(&o);
    let leaf = &r.certs[0];
    assert_eq!(leaf.status, Status::Good, "{leaf:?}");
    assert_eq!(leaf.method, Source::Ocsp);
    assert!(leaf.url.as_deref().unwrap().ends_with("/live"), "{leaf:?}");
    assert!(
        leaf.detail.contains("delegated responder"),
        "{}",
        leaf.detail
    );
    // The issuing CA names no OCSP responder: not checked under `ocsp`...
    assert_eq!(r.certs[1].unknown_because, Some("no_ocsp_url"), "{r:?}");
    assert_eq!(ocsp_requests("/live"), before + 1);
    // ... and checked by its CRL under `ocsp_then_crl` (the leaf's answer is cached).
    let o = probe("ocsp_live", "{method: ocsp_then_crl}", None).await;
    let r = revocation(&o);
    assert_eq!(r.certs[0].status, Status::Good);
    assert_eq!(r.certs[0].method, Source::Ocsp);
    assert_eq!(r.certs[1].status, Status::Good, "{r:?}");
    assert_eq!(r.certs[1].method, Source::Crl);
    assert_eq!(
        ocsp_requests("/live"),
        before + 1,
        "cached until nextUpdate/max_age"
    );
    // Revoked after the CRL was published: OCSP knows.
    let o = probe("ocsp_live_revoked", "{method: ocsp}", None).await;
    let leaf = &revocation(&o).certs[0];
    assert_eq!(leaf.status, Status::Revoked, "{leaf:?}");
    assert_eq!(leaf.revocation_reason.as_deref(), Some("superseded"));
    assert_eq!(
        verdict(&o, "revocation").verdict,
        certprobe::policy::Verdict::Fail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_or_unreachable_responder_is_unavailable_and_ocsp_then_crl_falls_back() {
    use certprobe::revocation::Source;
    let cases = [
        ("ocsp_unknown", Reason::CertUnknown),
        ("ocsp_down", Reason::Connect),
        ("ocsp_metadata", Reason::Blocked),
    ];
    for (name, reason) in cases {
        let o = probe(name, "{method: ocsp}", None).await;
        let leaf = &revocation(&o).certs[0];
        assert_eq!(leaf.status, Status::Unavailable, "{name}: {leaf:?}");
        assert_eq!(leaf.reason, Some(reason), "{name}: {leaf:?}");
        assert_eq!(
            verdict(&o, "revocation").verdict,
            certprobe::policy::Verdict::Fail
        );
        let o = probe(name, "{method: ocsp_then_crl}", None).await;
        let leaf = &revocation(&o).certs[0];
        assert_eq!(leaf.status, Status::Good, "{name}: {leaf:?}");
        assert_eq!(leaf.method, Source::Crl);
        assert_eq!(leaf.attempts[0].error, Some(reason), "{name}: {leaf:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_servers_ocsp_responder_is_not_asked() {
    let l = lab();
    let hostile = tempfile::tempdir().unwrap();
    let h = hostile.path();
    ca_conf(h, "evil");
    sign(h, "evil", "evil", "Evil Root", CA_EXT, true);
    let aia = format!(
        "crlDistributionPoints=URI:http://{}/hostile.crl\nauthorityInfoAccess=OCSP;URI:http://{}/hostile",
        l.http, l.ocsp
    );
    sign(h, "evil", "leaf", "leaf.probe.test", &leaf_ext(&aia), false);
    let chain = vec![der_of(h, "leaf"), der_of(h, "evil")];
    let s = TlsServer::start(
        "127.0.0.1",
        support::server_config(chain, key_of(h, "leaf"), &[], ClientAuth::None),
    )
    .await;
    let before = ocsp_requests("/hostile");
    let o = probe_port(s.addr.port(), "{method: ocsp_then_crl}", None).await;
    let report = o.report.as_ref().expect("a chain was captured");
    assert!(report.certs[0].ocsp_urls[0].ends_with("/hostile"));
    assert!(report.revocation.as_ref().unwrap().certs.is_empty());
    assert_eq!(ocsp_requests("/hostile"), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_responders_and_outcomes_are_exported() {
    use certprobe::daemon::metrics::{BuildInfo, Metrics};
    let metrics = Metrics::new(BuildInfo {
        version: "0".into(),
        revision: "t".into(),
    });
    let revoked = probe("ocsp_live_revoked", "{method: ocsp}", None).await;
    let down = probe("ocsp_down", "{method: ocsp}", None).await;
    let stapled = probe_stapled("staple_revoked", "revoked.der", DEFAULTS, None).await;
    for o in [&revoked, &down, &stapled] {
        metrics.record(o);
    }
    let page = metrics.render_text();
    let has = |line: &str| page.lines().any(|l| l == line);
    let int = format!("http://{}/int", lab().ocsp);
    let down_url = format!("http://127.0.0.1:{}/", refused_port());
    assert!(
        has(&format!("certprobe_ocsp_fetch_success{{url=\"{int}\"}} 1")),
        "{page}"
    );
    assert!(has(&format!(
        "certprobe_ocsp_fetch_success{{url=\"{down_url}\"}} 0"
    )));
    assert!(has(&format!(
        "certprobe_ocsp_fetch_failure{{url=\"{down_url}\",reason=\"connect\"}} 1"
    )));
    let next = page
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "certprobe_ocsp_next_update_timestamp_seconds{{url=\"{int}\"}}"
            ))
        })
        .expect("next update of the responder");
    let t: i64 = next.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(t > now() && t <= now() + DAY_SECS + 60, "{next}");
    let status: Vec<&str> = page
        .lines()
        .filter(|l| l.starts_with("certprobe_revocation_status{") && l.contains("position=\"0\""))
        .collect();
    assert!(
        status.iter().any(|l| l.ends_with("method=\"ocsp\"} 3")),
        "{status:?}"
    );
    assert!(
        status.iter().any(|l| l.ends_with("method=\"ocsp\"} 2")),
        "{status:?}"
    );
    assert!(
        status
            .iter()
            .any(|l| l.ends_with("method=\"ocsp_stapled\"} 3")),
        "{status:?}"
    );
}

// === Delta CRLs ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_crl_is_merged_with_its_base() {
    // Revoked only in the delta.
    let o = probe("delta_revoked", DEFAULTS, None).await;
    let leaf = &revocation(&o).certs[0];
    assert_eq!(leaf.status, Status::Revoked, "{leaf:?}");
    assert_eq!(leaf.revocation_reason.as_deref(), Some("keyCompromise"));
    assert!(leaf.url.as_deref().unwrap().ends_with("/int-base.crl"));
    assert!(leaf
        .delta_url
        .as_deref()
        .unwrap()
        .ends_with("/int-delta.crl"));
    assert!(leaf.detail.contains("delta CRL"), "{}", leaf.detail);
    // On hold in the base, released by the delta (removeFromCRL).
    let o = probe("delta_held", DEFAULTS, None).await;
    let leaf = &revocation(&o).certs[0];
    assert_eq!(leaf.status, Status::Good, "{leaf:?}");
    assert!(leaf.delta_url.is_some());
    assert_eq!(
        requests("/int-delta.crl"),
        ["/int-delta.crl 200"],
        "cached like a base"
    );
}

/// A TLS server on 127.0.0.1 presenting leaf `name` alone (its issuing CA is not sent).
async fn leaf_only_server(name: &str) -> TlsServer {
    let l = lab();
    let cfg = support::server_config(
        vec![der_of(&l.dir, name)],
        key_of(&l.dir, name),
        &[],
        ClientAuth::None,
    );
    TlsServer::start("127.0.0.1", cfg).await
}

/// AIA allowed from the lab's nginx; CDPs from any host of a verified chain (as before).
const AIA_ALLOWED: &str = "{method: crl, aia_hosts: ['127.0.0.1']}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aia_completes_a_chain_the_server_sends_without_its_issuer() {
    // Two endpoints present the same leaf without its issuing CA: the CA is fetched once from
    // the leaf's caIssuers URL (the process-wide cache), the chain verifies as Windows would
    // verify it, and `aia_completes_chain` reports it complete only through AIA.
    let (a, b) = (leaf_only_server("aia").await, leaf_only_server("aia").await);
    let cfg = config(&[&a, &b], AIA_ALLOWED);
    let c = ctx(&cfg, None);
    for ep in &cfg.endpoints {
        let o = runner::probe_endpoint(ep, &c).await.remove(0);
        let report = o.report.as_ref().expect("chain");
        assert_eq!(report.certs.len(), 1, "only the leaf was presented");
        assert!(
            report.verified_stores().next().is_some(),
            "verified through AIA: {:?}",
            report.stores
        );
        assert_eq!(
            report.stores[0].intermediates_from_aia,
            vec!["CN=Revocation Test Issuing CA".to_string()]
        );
        assert!(!report.hygiene.complete);
        assert_eq!(report.hygiene.completed_by_aia.len(), 1);
        assert_eq!(verdict(&o, "trusted").verdict, Verdict::Pass);
        let v = verdict(&o, "aia_completes_chain");
        assert_eq!(v.verdict, Verdict::Warn, "{v:?}");
        assert!(v.message.contains("/aia/int.crt"), "{}", v.message);
        assert_eq!(o.evaluation.status, certprobe::policy::Status::Warning);
        // The AIA-fetched issuing CA is itself checked against the root's CRL.
        let r = revocation(&o);
        assert_eq!(r.certs.len(), 2, "{r:?}");
        assert_eq!(r.certs[1].status, Status::Good, "{r:?}");
    }
    assert_eq!(
        requests("/aia/int.crt").len(),
        1,
        "one fetch for both endpoints"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_aia_hosts_no_aia_url_is_fetched_and_the_chain_is_untrusted() {
    let s = leaf_only_server("aia_off").await;
    let cfg = config(&[&s], DEFAULTS);
    let o = runner::probe_endpoint(&cfg.endpoints[0], &ctx(&cfg, None))
        .await
        .remove(0);
    let report = o.report.as_ref().unwrap();
    assert!(report.aia.is_none());
    assert_eq!(verdict(&o, "trusted").verdict, Verdict::Fail);
    assert!(o
        .evaluation
        .verdicts
        .iter()
        .all(|r| r.rule.as_str() != "aia_completes_chain"));
    assert!(requests("/aia/int-off.crt").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aia_urls_are_tried_in_order_and_pem_is_read() {
    let s = leaf_only_server("aia_pem").await;
    let cfg = config(&[&s], AIA_ALLOWED);
    let o = runner::probe_endpoint(&cfg.endpoints[0], &ctx(&cfg, None))
        .await
        .remove(0);
    let aia = o.report.as_ref().unwrap().aia.as_ref().expect("chased");
    assert_eq!(aia.fetches.len(), 2, "{aia:?}");
    assert_eq!(aia.fetches[0].reason, Some(Reason::HttpStatus), "404 first");
    assert!(aia.fetches[1].issuer.is_some(), "{aia:?}");
    assert_eq!(verdict(&o, "trusted").verdict, Verdict::Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aia_certificate_with_the_issuers_name_but_another_key_does_not_make_a_chain_trusted() {
    let s = leaf_only_server("aia_rogue").await;
    let cfg = config(&[&s], AIA_ALLOWED);
    let o = runner::probe_endpoint(&cfg.endpoints[0], &ctx(&cfg, None))
        .await
        .remove(0);
    let report = o.report.as_ref().unwrap();
    assert_eq!(requests("/aia/rogue.crt").len(), 1, "fetched once");
    assert!(
        report.verified_stores().next().is_none(),
        "{:?}",
        report.stores
    );
    assert_eq!(verdict(&o, "trusted").verdict, Verdict::Fail);
    assert_eq!(
        verdict(&o, "aia_completes_chain").verdict,
        Verdict::NotApplicable
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aia_url_on_a_host_outside_aia_hosts_is_not_fetched() {
    // The leaf's caIssuers names `localhost`; only `127.0.0.1` is allowed (the same nginx):
    // the URL is refused before any connection.
    let s = leaf_only_server("aia_elsewhere").await;
    let cfg = config(&[&s], AIA_ALLOWED);
    let o = runner::probe_endpoint(&cfg.endpoints[0], &ctx(&cfg, None))
        .await
        .remove(0);
    let aia = o.report.as_ref().unwrap().aia.as_ref().expect("chased");
    assert_eq!(aia.fetches[0].reason, Some(Reason::Blocked), "{aia:?}");
    assert!(requests("/aia/elsewhere.crt").is_empty());
    assert_eq!(verdict(&o, "trusted").verdict, Verdict::Fail);
}
