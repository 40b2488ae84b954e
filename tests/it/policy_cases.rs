//! Policy evaluation over real certificates generated at test time (rcgen; the openssl CLI for
//! SHA-1, RSA-1024/3072 and RSASSA-PSS), analyzed by `chain::analyze`, with hand-built
//! captures for the handshake facts. Covers every rule and the 25 test cases of
//! lync-policy.md §4 (numbered `case_NN_...`).

use crate::support;

use std::sync::OnceLock;
use support::openssl;

use certprobe::chain::{analyze, ChainReport, NameCheck, StoreClass, TrustStore, TrustStores};
use certprobe::policy::cross::pool_verdicts_for_members;
use certprobe::policy::{
    evaluate, pool_consistency, same_issuer_as, EndpointContext, Evaluation, Member, Policy,
    PolicySpec, Status, Verdict,
};
use certprobe::probe::{Capture, HandshakeSignature, LegacyFacts};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CrlDistributionPoint, CustomExtension,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P384_SHA384,
};
use rustls_pki_types::{CertificateDer, UnixTime};
use time::{Duration, OffsetDateTime};

const DAY: i64 = 86_400;

/// Reference time: the wall clock when the test binary started (openssl-made certificates
/// start "now"; rcgen ones are placed relative to it). Evaluations run one day later.
fn t0() -> i64 {
    static T: OnceLock<i64> = OnceLock::new();
    *T.get_or_init(|| OffsetDateTime::now_utc().unix_timestamp())
}

fn now() -> i64 {
    t0() + DAY
}

fn at(offset_days: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t0()).unwrap() + Duration::days(offset_days)
}

// === openssl helpers ===

fn rsa_key_pem(bits: u32) -> String {
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            &format!("rsa_keygen_bits:{bits}"),
            "-out",
            "k.pem",
        ],
    );
    std::fs::read_to_string(dir.path().join("k.pem")).unwrap()
}

fn rsa2048() -> &'static str {
    static K: OnceLock<String> = OnceLock::new();
    K.get_or_init(|| rsa_key_pem(2048))
}

// === DER helpers for extensions rcgen does not offer ===

fn der_len(n: usize) -> Vec<u8> {
    if n < 128 {
        vec![n as u8]
    } else if n < 256 {
        vec![0x81, n as u8]
    } else {
        vec![0x82, (n >> 8) as u8, n as u8]
    }
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend(der_len(body.len()));
    v.extend_from_slice(body);
    v
}

const OID_SERVER_AUTH: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

fn ext(oid: &[u64], content: Vec<u8>, critical: bool) -> CustomExtension {
    let mut e = CustomExtension::from_oid_content(oid, content);
    e.set_criticality(critical);
    e
}

fn ocsp_aia(url: &str) -> CustomExtension {
    let ad = [
        vec![0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01],
        tlv(0x86, url.as_bytes()),
    ]
    .concat();
    ext(
        &[1, 3, 6, 1, 5, 5, 7, 1, 1],
        tlv(0x30, &tlv(0x30, &ad)),
        false,
    )
}

fn bmp(s: &str) -> Vec<u8> {
    let units: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    tlv(0x1e, &units)
}

// === the PKI world ===

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    key_pem: String,
}

impl Ca {
    fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }
}

fn ca_params(cn: &str, org: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name.push(DnType::OrganizationName, org);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = at(-3000);
    p.not_after = at(3000);
    p
}

fn root(cn: &str, org: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let key_pem = key.serialize_pem();
    Ca {
        issuer: CertifiedIssuer::self_signed(ca_params(cn, org), key).unwrap(),
        key_pem,
    }
}

fn issuing(cn: &str, org: &str, parent: &Ca, rsa: bool, ca_version: bool) -> Ca {
    let (key, key_pem) = if rsa {
        let pem = rsa_key_pem(2048);
        (KeyPair::from_pem(&pem).unwrap(), pem)
    } else {
        let k = KeyPair::generate().unwrap();
        let pem = k.serialize_pem();
        (k, pem)
    };
    let mut p = ca_params(cn, org);
    p.not_before = at(-1000);
    p.not_after = at(2000);
    p.use_authority_key_identifier_extension = true;
    if ca_version {
        // 1.3.6.1.4.1.311.21.1 CA Version, INTEGER 0 => V0.0
        p.custom_extensions.push(ext(
            &[1, 3, 6, 1, 4, 1, 311, 21, 1],
            vec![0x02, 0x01, 0x00],
            false,
        ));
    }
    Ca {
        issuer: CertifiedIssuer::signed_by(p, key, &parent.issuer).unwrap(),
        key_pem,
    }
}

struct World {
    int_root: Ca,
    /// AD CS-like issuing CA: RSA-2048 key (so openssl can sign SHA-1 / PSS), CA Version V0.0.
    int_ca: Ca,
    pub_root: Ca,
    pub_ca: Ca,
    /// A CA nobody trusts (federation partner) / a second internal-looking CA.
    other_root: Ca,
    other_ca: Ca,
    stores: TrustStores,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let int_root = root("Contoso Root CA", "Contoso");
        let int_ca = issuing("Contoso Issuing CA", "Contoso", &int_root, true, true);
        let pub_root = root("Public Trust Root", "Public Trust");
        let pub_ca = issuing(
            "Public Trust TLS CA",
            "Public Trust",
            &pub_root,
            false,
            false,
        );
        let other_root = root("Fabrikam Root CA", "Fabrikam");
        let other_ca = issuing("Fabrikam Issuing CA", "Fabrikam", &other_root, false, false);
        let stores = TrustStores {
            stores: vec![
                TrustStore::from_bundle("internal", StoreClass::Internal, vec![int_root.der()])
                    .unwrap(),
                TrustStore::from_bundle("public", StoreClass::Public, vec![pub_root.der()])
                    .unwrap(),
            ],
        };
        World {
            int_root,
            int_ca,
            pub_root,
            pub_ca,
            other_root,
            other_ca,
            stores,
        }
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Iss {
    Internal,
    Public,
    Other,
}

fn ca_of(i: Iss) -> &'static Ca {
    let w = world();
    match i {
        Iss::Internal => &w.int_ca,
        Iss::Public => &w.pub_ca,
        Iss::Other => &w.other_ca,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Key {
    P256,
    P384,
    Rsa2048,
}

/// A leaf certificate description; defaults are a well-formed Lync server certificate.
#[derive(Clone)]
struct Leaf {
    cn: Option<String>,
    sans: Vec<String>,
    server_auth: bool,
    client_auth: bool,
    no_eku: bool,
    eku_critical: bool,
    ku_critical: bool,
    cdp: bool,
    ocsp: bool,
    from: i64,
    to: i64,
    key: Key,
    issuer: Iss,
    template: Option<&'static str>,
}

fn leaf(cn: &str, sans: &[&str]) -> Leaf {
    Leaf {
        cn: Some(cn.into()),
        sans: sans.iter().map(|s| s.to_string()).collect(),
        server_auth: true,
        client_auth: false,
        no_eku: false,
        eku_critical: false,
        ku_critical: true,
        cdp: true,
        ocsp: false,
        from: -30,
        to: 700,
        key: Key::P256,
        issuer: Iss::Internal,
        template: None,
    }
}

impl Leaf {
    fn issuer(mut self, i: Iss) -> Self {
        self.issuer = i;
        self
    }
    fn key(mut self, k: Key) -> Self {
        self.key = k;
        self
    }
    fn days(mut self, from: i64, to: i64) -> Self {
        self.from = from;
        self.to = to;
        self
    }

    fn params(&self) -> CertificateParams {
        let mut p = CertificateParams::new(self.sans.clone()).unwrap();
        if let Some(cn) = &self.cn {
            p.distinguished_name.push(DnType::CommonName, cn.as_str());
        }
        p.is_ca = IsCa::ExplicitNoCa;
        p.use_authority_key_identifier_extension = true;
        p.not_before = at(self.from);
        p.not_after = at(self.to);
        if self.ku_critical {
            p.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
        } else {
            // digitalSignature + keyEncipherment, not critical
            p.custom_extensions
                .push(ext(&[2, 5, 29, 15], vec![0x03, 0x02, 0x05, 0xa0], false));
        }
        if !self.no_eku {
            if self.eku_critical {
                p.custom_extensions
                    .push(ext(&[2, 5, 29, 37], tlv(0x30, OID_SERVER_AUTH), true));
            } else {
                if self.server_auth {
                    p.extended_key_usages
                        .push(ExtendedKeyUsagePurpose::ServerAuth);
                }
                if self.client_auth {
                    p.extended_key_usages
                        .push(ExtendedKeyUsagePurpose::ClientAuth);
                }
            }
        }
        if self.cdp {
            p.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec!["http://pki.contoso.com/crl/issuing.crl".into()],
            }];
        }
        if self.ocsp {
            p.custom_extensions
                .push(ocsp_aia("http://ocsp.example.net"));
        }
        if let Some(t) = self.template {
            p.custom_extensions
                .push(ext(&[1, 3, 6, 1, 4, 1, 311, 20, 2], bmp(t), false));
        }
        p
    }

    /// rcgen-made leaf, chain = [leaf, issuing CA].
    fn chain(&self) -> Vec<CertificateDer<'static>> {
        let key = match self.key {
            Key::P256 => KeyPair::generate().unwrap(),
            Key::P384 => KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap(),
            Key::Rsa2048 => KeyPair::from_pem(rsa2048()).unwrap(),
        };
        let ca = ca_of(self.issuer);
        let cert = self.params().signed_by(&key, &ca.issuer).unwrap();
        vec![cert.der().clone(), ca.der()]
    }
}

#[derive(Clone, Copy)]
enum Sig {
    Sha256,
    Sha1,
    Pss,
}

/// openssl-made leaf under the internal RSA issuing CA (SHA-1, PSS, RSA-1024/3072), valid from
/// now for `days`. Chain = [leaf, issuing CA].
fn openssl_leaf(
    cn: &str,
    sans: &[&str],
    rsa_bits: u32,
    sig: Sig,
    days: u32,
) -> Vec<CertificateDer<'static>> {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("ca.pem"), w.int_ca.issuer.pem()).unwrap();
    std::fs::write(d.join("ca.key"), &w.int_ca.key_pem).unwrap();
    let key = if rsa_bits == 2048 {
        rsa2048().to_string()
    } else {
        rsa_key_pem(rsa_bits)
    };
    std::fs::write(d.join("leaf.key"), key).unwrap();
    let san = sans
        .iter()
        .map(|s| format!("DNS:{s}"))
        .collect::<Vec<_>>()
        .join(",");
    std::fs::write(
        d.join("ext.cnf"),
        format!(
            "[v3]\nbasicConstraints=CA:FALSE\nsubjectAltName={san}\nextendedKeyUsage=serverAuth\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             crlDistributionPoints=URI:http://pki.contoso.com/crl/issuing.crl\n\
             authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
        ),
    )
    .unwrap();
    openssl(
        d,
        &[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-subj",
            &format!("/CN={cn}"),
            "-out",
            "leaf.csr",
        ],
    );
    let days = days.to_string();
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "4242",
        "-days",
        &days,
        "-extfile",
        "ext.cnf",
        "-extensions",
        "v3",
        "-outform",
        "DER",
        "-out",
        "leaf.der",
    ];
    match sig {
        Sig::Sha256 => args.push("-sha256"),
        Sig::Sha1 => args.push("-sha1"),
        Sig::Pss => args.extend([
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:32",
        ]),
    }
    openssl(d, &args);
    let der = std::fs::read(d.join("leaf.der")).unwrap();
    vec![CertificateDer::from(der), w.int_ca.der()]
}

// === policy and evaluation helpers ===

fn base_yaml(preset: &str, domains: &[&str], meet: &[&str], features: &str) -> String {
    format!(
        "version: 1
preset: {preset}
vars:
  sip_domains: [{}]
  fe_pool: eepool.contoso.com
  fe_servers: [ee01.contoso.com, ee02.contoso.com]
  fe_web_internal: webint.contoso.com
  fe_web_external: webext.contoso.com
  director_pool: dirpool.contoso.com
  director_web_external: webdirext.contoso.com
  mediation_pool: medpool.contoso.com
  edge_access_fqdn: sip.contoso.com
  edge_webconf_fqdn: webcon.contoso.com
  edge_av_fqdn: av.contoso.com
  edge_internal_fqdn: lsedge.contoso.net
  meet_urls: [{}]
  dialin_urls: [dialin.contoso.com]
  admin_url: admin.contoso.com
  owa_fqdn: officewebapps01.contoso.com
  features: {{ {features} }}
",
        domains.join(", "),
        meet.join(", ")
    )
}

fn policy_from(yaml: &str) -> Policy {
    let spec: PolicySpec = serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    Policy::from_spec(spec).unwrap_or_else(|e| panic!("{e:?}"))
}

const TWO: &[&str] = &["contoso.com", "fabrikam.com"];
const MEET2: &[&str] = &["meet.contoso.com", "meet.fabrikam.com"];

/// The lync2013 estate with two SIP domains, Autodiscover on 443, no AOL.
fn lync() -> Policy {
    policy_from(&base_yaml(
        "lync2013",
        TWO,
        MEET2,
        "autodiscover_https: true",
    ))
}

fn lync_with(features: &str, profiles: &str) -> Policy {
    policy_from(&format!(
        "{}{profiles}",
        base_yaml("lync2013", TWO, MEET2, features)
    ))
}

fn unix(t: i64) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(t as u64))
}

fn capture(chain: &[CertificateDer<'static>], sni: &str) -> Capture {
    let mut c = Capture::new("127.0.0.1:5061".parse().unwrap(), Some(sni.to_string()));
    c.tls_version = certprobe::vocab::TlsVersion::from_name("TLSv1.2");
    c.chain = chain.to_vec();
    c.handshake_signature = HandshakeSignature::Verified;
    c
}

fn report(chain: &[CertificateDer<'static>], name: &str, t: i64) -> ChainReport {
    analyze(
        chain,
        Some(&NameCheck {
            name: name.into(),
            allow_cn_fallback: false,
        }),
        &world().stores,
        unix(t),
    )
}

fn ctx(host: &str, name: &str) -> EndpointContext {
    EndpointContext {
        endpoint: host.into(),
        host: host.into(),
        name: Some(name.into()),
        ..Default::default()
    }
}

/// Evaluate a chain probed at `name` (host = name) at `now()`.
fn eval(p: &Policy, profile: &str, chain: &[CertificateDer<'static>], name: &str) -> Evaluation {
    eval_full(p, profile, &capture(chain, name), &ctx(name, name), now())
}

fn eval_full(p: &Policy, profile: &str, cap: &Capture, cx: &EndpointContext, t: i64) -> Evaluation {
    let name = cx.name.clone().unwrap_or_else(|| cx.host.clone());
    let r = report(&cap.chain, &name, t);
    evaluate(p, profile, cap, &r, cx, t)
}

fn vname(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Warn => "warn",
        Verdict::Fail => "fail",
        Verdict::NotApplicable => "na",
    }
}

/// Every verdict that is not `pass`, as `rule=verdict`, in evaluation order.
fn issues(e: &Evaluation) -> String {
    e.verdicts
        .iter()
        .filter(|v| v.verdict != Verdict::Pass)
        .map(|v| format!("{}={}", v.rule, vname(v.verdict)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn dump(e: &Evaluation) -> String {
    e.verdicts
        .iter()
        .map(|v| format!("  {} {} : {}", v.rule, vname(v.verdict), v.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Assert the exact set of non-passing verdicts and the rolled-up status.
#[track_caller]
fn check(e: &Evaluation, status: Status, expected_issues: &str) {
    assert_eq!(issues(e), expected_issues, "verdicts:\n{}", dump(e));
    assert_eq!(e.status, status, "verdicts:\n{}", dump(e));
}

fn msg<'a>(e: &'a Evaluation, rule: &str) -> &'a str {
    &e.verdict(certprobe::vocab::RuleId::from_name(rule).expect("a rule id"))
        .unwrap_or_else(|| panic!("rule {rule} did not run:\n{}", dump(e)))
        .message
}

/// Rules every lync2013 profile runs, in order, for a well-formed certificate (all pass except
/// the two MTLS rules that have nothing to judge in a plain probe).
const LYNC_NA: &str = "mtls_enforced=na client_cert_accepted=na";

fn ids(e: &Evaluation) -> Vec<&'static str> {
    e.verdicts.iter().map(|v| v.rule.as_str()).collect()
}

// === §4 test cases ===

fn fe_leaf() -> Leaf {
    leaf(
        "eepool.contoso.com",
        &["eepool.contoso.com", "ee01.contoso.com"],
    )
}

#[test]
fn case_01_fe_default_from_internal_adcs_ca_rsa2048_sha256_is_compliant() {
    let chain = fe_leaf().key(Key::Rsa2048).chain();
    let e = eval(&lync(), "fe_default", &chain, "ee01.contoso.com");
    check(&e, Status::Ok, LYNC_NA);
    assert_eq!(
        ids(&e),
        vec![
            "reachable",
            "trusted",
            "issuer_class",
            "hostname",
            "validity",
            "expiry",
            "signature_hash",
            "rsassa_pss",
            "key",
            "eku",
            "crl_dp",
            "cdp_ldap_only",
            "san_required",
            "subject_in_san",
            "cn_wildcard",
            "san_wildcard",
            "tls_version",
            "mtls_enforced",
            "client_cert_accepted",
            "handshake_signature",
            "chain_hygiene",
            "intermediate_expiry",
        ]
    );
    assert_eq!(msg(&e, "key"), "RSA-2048");
    assert_eq!(msg(&e, "trusted"), "verified by store internal");
    assert_eq!(msg(&e, "issuer_class"), "issuer class internal is allowed");
}

fn edge_sans() -> Vec<&'static str> {
    vec!["sip.contoso.com", "webcon.contoso.com", "sip.fabrikam.com"]
}

fn edge_leaf() -> Leaf {
    leaf("sip.contoso.com", &edge_sans()).issuer(Iss::Public)
}

#[test]
fn case_02_edge_external_from_internal_ca_is_non_compliant() {
    let chain = edge_leaf().issuer(Iss::Internal).chain();
    let e = eval(&lync(), "edge_external", &chain, "sip.contoso.com");
    check(
        &e,
        Status::Critical,
        &format!("issuer_class=fail {LYNC_NA}"),
    );
    assert!(msg(&e, "issuer_class").starts_with("issuer class internal (issuer "));
    assert!(msg(&e, "issuer_class").ends_with("is not allowed; allowed: public"));
}

#[test]
fn case_02b_edge_external_from_public_ca_is_compliant() {
    let e = eval(
        &lync(),
        "edge_external",
        &edge_leaf().chain(),
        "sip.contoso.com",
    );
    check(&e, Status::Ok, LYNC_NA);
}

#[test]
fn case_03_edge_external_sn_not_repeated_in_san() {
    let chain = leaf(
        "sip.contoso.com",
        &["webcon.contoso.com", "sip.fabrikam.com"],
    )
    .issuer(Iss::Public)
    .chain();
    let e = eval(&lync(), "edge_external", &chain, "webcon.contoso.com");
    check(
        &e,
        Status::Critical,
        &format!("san_required=fail subject_in_san=fail {LYNC_NA}"),
    );
    assert_eq!(
        msg(&e, "subject_in_san"),
        "subject CN sip.contoso.com is not repeated in the SAN [webcon.contoso.com, sip.fabrikam.com]"
    );
    assert!(msg(&e, "san_required").contains("lacks sip.contoso.com"));
}

#[test]
fn case_04_edge_external_wildcard_subject_cn() {
    let chain = leaf("*.contoso.com", &edge_sans())
        .issuer(Iss::Public)
        .chain();
    let e = eval(&lync(), "edge_external", &chain, "sip.contoso.com");
    check(
        &e,
        Status::Critical,
        &format!("subject_in_san=fail cn_wildcard=fail {LYNC_NA}"),
    );
    assert_eq!(
        msg(&e, "cn_wildcard"),
        "wildcard in the subject CN *.contoso.com (not supported for any role)"
    );
}

#[test]
fn case_05_edge_external_wildcard_san_instead_of_webconf_name() {
    let chain = leaf(
        "sip.contoso.com",
        &["sip.contoso.com", "*.contoso.com", "sip.fabrikam.com"],
    )
    .issuer(Iss::Public)
    .chain();
    let e = eval(&lync(), "edge_external", &chain, "sip.contoso.com");
    check(
        &e,
        Status::Critical,
        &format!("san_required=fail san_wildcard=fail {LYNC_NA}"),
    );
    assert!(
        msg(&e, "san_required")
            .contains("webcon.contoso.com (only covered by wildcard *.contoso.com)"),
        "{}",
        msg(&e, "san_required")
    );
    assert_eq!(
        msg(&e, "san_wildcard"),
        "wildcard SAN *.contoso.com is not supported for this role"
    );
}

#[test]
fn case_06_edge_external_missing_second_sip_domain() {
    let chain = leaf(
        "sip.contoso.com",
        &["sip.contoso.com", "webcon.contoso.com"],
    )
    .issuer(Iss::Public)
    .chain();
    let e = eval(&lync(), "edge_external", &chain, "sip.contoso.com");
    check(
        &e,
        Status::Critical,
        &format!("san_required=fail {LYNC_NA}"),
    );
    assert!(msg(&e, "san_required").contains("lacks sip.fabrikam.com (SAN ["));
}

#[test]
fn case_07_edge_external_client_eku_only_required_with_aol() {
    let chain = edge_leaf().chain();
    let off = eval(&lync(), "edge_external", &chain, "sip.contoso.com");
    check(&off, Status::Ok, LYNC_NA);
    assert_eq!(
        msg(&off, "eku"),
        "EKU [server_auth] (client_auth not required: public_im_aol off)"
    );
    let aol = lync_with("autodiscover_https: true, public_im_aol: true", "");
    let on = eval(&aol, "edge_external", &chain, "sip.contoso.com");
    check(&on, Status::Critical, &format!("eku=fail {LYNC_NA}"));
    assert!(msg(&on, "eku").ends_with("EKU [server_auth] lacks client_auth"));
    // With both EKUs the AOL estate is compliant.
    let mut both = edge_leaf();
    both.client_auth = true;
    let ok = eval(&aol, "edge_external", &both.chain(), "sip.contoso.com");
    check(&ok, Status::Ok, LYNC_NA);
}

fn members<'a>(
    rows: &'a [(String, String, ChainReport)],
    profile: &'a str,
    pool: &'a str,
) -> Vec<Member<'a>> {
    rows.iter()
        .map(|(ep, addr, r)| Member {
            endpoint: ep,
            address: addr,
            profile,
            pool: Some(pool),
            report: Some(r),
            key_type: None,
        })
        .collect()
}

#[test]
fn case_08_edge_pool_members_with_different_keys() {
    let p = lync();
    let a = edge_leaf().chain();
    let b = edge_leaf().chain(); // same names, different key
    let rows = vec![
        (
            "edge1".to_string(),
            "127.0.0.1:443".to_string(),
            report(&a, "sip.contoso.com", now()),
        ),
        (
            "edge2".to_string(),
            "127.0.0.2:443".to_string(),
            report(&b, "sip.contoso.com", now()),
        ),
    ];
    let m = members(&rows, "edge_external", "edgepool");
    let pv = pool_consistency(&p, &m);
    assert_eq!(pv.len(), 1);
    assert!(!pv[0].consistent);
    assert_eq!(pv[0].verdict, Verdict::Fail);
    assert_eq!(pv[0].distinct, 2);
    assert!(
        pv[0].detail.starts_with("2 different public keys: "),
        "{}",
        pv[0].detail
    );
    // Attached to each member's evaluation, the status becomes critical.
    let cross = pool_verdicts_for_members(&p, &m);
    assert_eq!(cross.len(), 2);
    let mut e = eval(&p, "edge_external", &a, "sip.contoso.com");
    check(&e, Status::Ok, LYNC_NA);
    e.add_verdict(cross[0].verdict.clone());
    check(
        &e,
        Status::Critical,
        &format!("{LYNC_NA} pool_consistency=fail"),
    );

    // Same key on both members (a renewed certificate with the same key counts too).
    let rows = vec![
        (
            "edge1".to_string(),
            "127.0.0.1:443".to_string(),
            report(&a, "sip.contoso.com", now()),
        ),
        (
            "edge2".to_string(),
            "127.0.0.2:443".to_string(),
            report(&a, "sip.contoso.com", now()),
        ),
    ];
    let pv = pool_consistency(&p, &members(&rows, "edge_external", "edgepool"));
    assert!(pv[0].consistent);
    assert_eq!(pv[0].verdict, Verdict::Pass);
    assert_eq!(
        pv[0].detail,
        "2 member address(es) present the same public key"
    );
}

#[test]
fn case_09_edge_internal_cn_only_without_san_is_compliant_under_san_or_cn() {
    let chain = leaf("lsedge.contoso.net", &[]).chain();
    let e = eval(&lync(), "edge_internal", &chain, "lsedge.contoso.net");
    check(&e, Status::Ok, LYNC_NA);
    assert!(
        e.verdict(certprobe::vocab::RuleId::SubjectInSan).is_none(),
        "subject_in_san is off for Edge internal"
    );
    assert_eq!(
        msg(&e, "hostname"),
        "lsedge.contoso.net matches subject CN=lsedge.contoso.net (no SAN entries; CN fallback allowed)"
    );
    // The same certificate under the built-in default profile (SAN only) fails the name.
    let d = eval(&lync(), "default", &chain, "lsedge.contoso.net");
    check(&d, Status::Critical, "hostname=fail");
}

#[test]
fn case_10_edge_internal_wildcard_san_is_compliant_with_warning() {
    let chain = leaf("lsedge.contoso.net", &["*.contoso.net"]).chain();
    let e = eval(&lync(), "edge_internal", &chain, "lsedge.contoso.net");
    check(&e, Status::Warning, &format!("san_wildcard=warn {LYNC_NA}"));
    assert_eq!(
        msg(&e, "hostname"),
        "lsedge.contoso.net matches SAN *.contoso.net"
    );
}

fn rp_sans() -> Vec<&'static str> {
    vec![
        "webext.contoso.com",
        "webdirext.contoso.com",
        "dialin.contoso.com",
        "meet.contoso.com",
        "officewebapps01.contoso.com",
        "lyncdiscover.contoso.com",
        "*.contoso.com",
    ]
}

fn single_domain() -> Policy {
    policy_from(&base_yaml(
        "lync2013",
        &["contoso.com"],
        &["meet.contoso.com"],
        "autodiscover_https: true",
    ))
}

#[test]
fn case_11_reverse_proxy_public_cert_with_wildcard_for_simple_urls_is_compliant() {
    let chain = leaf("webext.contoso.com", &rp_sans())
        .issuer(Iss::Public)
        .key(Key::Rsa2048)
        .chain();
    let e = eval(
        &single_domain(),
        "reverse_proxy",
        &chain,
        "webext.contoso.com",
    );
    check(&e, Status::Ok, LYNC_NA);
    assert_eq!(
        msg(&e, "key_usage"),
        "keyUsage [digital_signature, key_encipherment] (critical)"
    );
    assert_eq!(msg(&e, "eku_critical"), "EKU extension is not critical");
    assert_eq!(
        msg(&e, "san_wildcard"),
        "wildcard SAN *.contoso.com used only for allowed names"
    );
}

#[test]
fn case_12_reverse_proxy_sn_absent_from_san() {
    let sans: Vec<&str> = rp_sans()
        .into_iter()
        .filter(|s| *s != "webext.contoso.com")
        .collect();
    let chain = leaf("webext.contoso.com", &sans)
        .issuer(Iss::Public)
        .key(Key::Rsa2048)
        .chain();
    let e = eval(
        &single_domain(),
        "reverse_proxy",
        &chain,
        "webext.contoso.com",
    );
    check(
        &e,
        Status::Critical,
        &format!("san_required=fail subject_in_san=fail san_wildcard=fail {LYNC_NA}"),
    );
    assert!(msg(&e, "san_wildcard").contains(
        "endpoint name webext.contoso.com is matched only through wildcard *.contoso.com"
    ));
}

#[test]
fn case_13_reverse_proxy_lyncdiscover_required_only_when_autodiscover_on_443() {
    let chain = leaf(
        "webext.contoso.com",
        &[
            "webext.contoso.com",
            "webdirext.contoso.com",
            "dialin.contoso.com",
            "meet.contoso.com",
            "meet.fabrikam.com",
            "officewebapps01.contoso.com",
            "lyncdiscover.contoso.com",
        ],
    )
    .issuer(Iss::Public)
    .key(Key::Rsa2048)
    .chain();
    let e443 = eval(&lync(), "reverse_proxy", &chain, "webext.contoso.com");
    check(
        &e443,
        Status::Critical,
        &format!("san_required=fail {LYNC_NA}"),
    );
    assert!(msg(&e443, "san_required").contains("lacks lyncdiscover.fabrikam.com ("));
    let port80 = lync_with("autodiscover_https: false", "");
    let e80 = eval(&port80, "reverse_proxy", &chain, "webext.contoso.com");
    check(&e80, Status::Ok, LYNC_NA);
}

#[test]
fn case_14_fe_web_internal_with_only_a_wildcard_san_is_non_compliant() {
    let chain = leaf("eepool.contoso.com", &["*.contoso.com"]).chain();
    let cx = ctx("ee01.contoso.com", "ee01.contoso.com");
    let e = eval_full(
        &lync(),
        "fe_web_internal",
        &capture(&chain, "ee01.contoso.com"),
        &cx,
        now(),
    );
    check(
        &e,
        Status::Critical,
        &format!("san_required=fail subject_in_san=fail san_wildcard=fail {LYNC_NA}"),
    );
    let m = msg(&e, "san_required");
    for n in [
        "webint.contoso.com",
        "eepool.contoso.com",
        "ee01.contoso.com",
    ] {
        assert!(
            m.contains(&format!("{n} (only covered by wildcard *.contoso.com)")),
            "{m}"
        );
    }
    // meet.contoso.com is a simple URL: the wildcard may stand for it.
    assert!(!m.contains("meet.contoso.com"), "{m}");
}

#[test]
fn case_15_mediation_with_wildcard_san_is_unsupported() {
    let chain = leaf(
        "medpool.contoso.com",
        &["medpool.contoso.com", "med01.contoso.com", "*.contoso.com"],
    )
    .chain();
    let e = eval(&lync(), "mediation", &chain, "med01.contoso.com");
    check(
        &e,
        Status::Critical,
        &format!("san_wildcard=fail {LYNC_NA}"),
    );
}

#[test]
fn case_16_rsassa_pss_leaf_is_non_compliant() {
    let chain = openssl_leaf(
        "eepool.contoso.com",
        &["eepool.contoso.com", "ee01.contoso.com"],
        2048,
        Sig::Pss,
        700,
    );
    let e = eval(&lync(), "fe_default", &chain, "ee01.contoso.com");
    check(&e, Status::Critical, &format!("rsassa_pss=fail {LYNC_NA}"));
    assert_eq!(
        msg(&e, "rsassa_pss"),
        "RSASSA-PSS signature (1.2.840.113549.1.1.10, unsupported by Lync) on CN=eepool.contoso.com"
    );
}

#[test]
fn case_17_sha1_internal_fe_cert_docs_vs_hardened() {
    let chain = openssl_leaf(
        "eepool.contoso.com",
        &["eepool.contoso.com", "ee01.contoso.com"],
        2048,
        Sig::Sha1,
        700,
    );
    let docs = eval(&lync(), "fe_default", &chain, "ee01.contoso.com");
    check(&docs, Status::Ok, LYNC_NA);
    assert_eq!(
        msg(&docs, "trusted"),
        "verified by store internal (with legacy SHA-1/RSA-1024 algorithms)"
    );
    let hardened = policy_from(&base_yaml("lync2013-hardened", TWO, MEET2, ""));
    let h = eval(&hardened, "fe_default", &chain, "ee01.contoso.com");
    check(
        &h,
        Status::Critical,
        &format!("signature_hash=fail {LYNC_NA}"),
    );
    assert_eq!(
        msg(&h, "signature_hash"),
        "CN=eepool.contoso.com signed with sha1 (allowed: sha224, sha256, sha384, sha512)"
    );
    // The built-in default profile: SHA-1 is a warning.
    let d = eval(&lync(), "default", &chain, "ee01.contoso.com");
    check(&d, Status::Warning, "signature_hash=warn");
}

#[test]
fn case_18_leaf_without_crl_distribution_point() {
    let mut l = fe_leaf();
    l.cdp = false;
    l.ocsp = true;
    let e = eval(&lync(), "fe_default", &l.chain(), "ee01.contoso.com");
    check(&e, Status::Critical, &format!("crl_dp=fail {LYNC_NA}"));
    assert_eq!(
        msg(&e, "crl_dp"),
        "leaf CN=eepool.contoso.com has no CRL distribution point (OCSP http://ocsp.example.net alone does not satisfy the CDP requirement)"
    );
}

#[test]
fn case_19_key_sizes_rsa1024_rsa3072_and_director_p384() {
    let sans = ["eepool.contoso.com", "ee01.contoso.com"];
    // RSA-1024: supported with a warning (and the handshake signature cannot be verified).
    let c1024 = openssl_leaf("eepool.contoso.com", &sans, 1024, Sig::Sha256, 700);
    let mut cap = capture(&c1024, "ee01.contoso.com");
    cap.handshake_signature = HandshakeSignature::WeakKeyNotVerified("RSA-1024".into());
    let e = eval_full(
        &lync(),
        "fe_default",
        &cap,
        &ctx("ee01.contoso.com", "ee01.contoso.com"),
        now(),
    );
    check(
        &e,
        Status::Warning,
        "key=warn mtls_enforced=na client_cert_accepted=na handshake_signature=warn",
    );
    assert_eq!(
        msg(&e, "key"),
        "leaf CN=eepool.contoso.com has an RSA-1024 key (2048 or more recommended)"
    );
    // RSA-3072: warn in strict-size mode (the preset), pass in min_rsa_bits mode.
    let c3072 = openssl_leaf("eepool.contoso.com", &sans, 3072, Sig::Sha256, 700);
    let strict = eval(&lync(), "fe_default", &c3072, "ee01.contoso.com");
    check(&strict, Status::Warning, &format!("key=warn {LYNC_NA}"));
    assert!(msg(&strict, "key").contains("not one of the supported sizes [1024, 2048, 4096]"));
    let min_mode = lync_with(
        "",
        "profiles:\n  fe_default:\n    rules:\n      key: { rsa_sizes: [] }\n",
    );
    let relaxed = eval(&min_mode, "fe_default", &c3072, "ee01.contoso.com");
    check(&relaxed, Status::Ok, LYNC_NA);
    // Director with ECDSA P-384.
    let dir = leaf(
        "dirpool.contoso.com",
        &["dirpool.contoso.com", "dir01.contoso.com"],
    )
    .key(Key::P384)
    .chain();
    let d = eval(&lync(), "director", &dir, "dir01.contoso.com");
    check(&d, Status::Ok, LYNC_NA);
    assert_eq!(msg(&d, "key"), "EC P-384");
}

fn oauth_chain(bits: u32) -> Vec<CertificateDer<'static>> {
    openssl_leaf(
        "oauth.contoso.com",
        &["oauth.contoso.com"],
        bits,
        Sig::Sha256,
        700,
    )
}

fn eval_oauth(p: &Policy, chain: &[CertificateDer<'static>], t: i64) -> Evaluation {
    // The OAuth certificate is supplied as a chain (e.g. read from /metadata/json/1); there is
    // no TLS handshake, so the capture carries only the chain.
    let mut cap = Capture::new("127.0.0.1:443".parse().unwrap(), None);
    cap.chain = chain.to_vec();
    let cx = EndpointContext {
        endpoint: "oauth".into(),
        host: "eepool.contoso.com".into(),
        ..Default::default()
    };
    let r = report(chain, "oauth.contoso.com", t);
    evaluate(p, "oauth_token_issuer", &cap, &r, &cx, t)
}

#[test]
fn case_20_oauth_rsa1024_fails_by_default_and_warns_when_following_d16() {
    let chain = oauth_chain(1024);
    let e = eval_oauth(&lync(), &chain, now());
    let na = "tls_version=na mtls_enforced=na client_cert_accepted=na handshake_signature=na";
    check(&e, Status::Critical, &format!("key=fail {na}"));
    assert_eq!(
        msg(&e, "key"),
        "leaf CN=oauth.contoso.com has an RSA-1024 key (minimum 2048)"
    );
    assert_eq!(
        msg(&e, "subject_contains"),
        "subject CN=oauth.contoso.com contains contoso.com"
    );
    let d16 = lync_with(
        "",
        "profiles:\n  oauth_token_issuer:\n    rules:\n      key: { severity: warn }\n",
    );
    let w = eval_oauth(&d16, &chain, now());
    check(&w, Status::Warning, &format!("key=warn {na}"));
    // 2048 passes.
    let ok = eval_oauth(&lync(), &oauth_chain(2048), now());
    check(&ok, Status::Ok, na);
}

#[test]
fn case_21_front_ends_publishing_different_oauth_certs() {
    let p = lync();
    let a = oauth_chain(2048);
    let b = leaf("oauth.contoso.com", &["oauth.contoso.com"]).chain();
    let rows = vec![
        (
            "fe01".to_string(),
            "127.0.0.1:443".to_string(),
            report(&a, "oauth.contoso.com", now()),
        ),
        (
            "fe02".to_string(),
            "127.0.0.2:443".to_string(),
            report(&b, "oauth.contoso.com", now()),
        ),
    ];
    let pv = pool_consistency(&p, &members(&rows, "oauth_token_issuer", "eepool"));
    assert_eq!(pv.len(), 1);
    assert_eq!(pv[0].mode, certprobe::policy::spec::PoolMode::SameCert);
    assert!(!pv[0].consistent);
    assert_eq!(pv[0].verdict, Verdict::Fail);
    assert!(pv[0]
        .detail
        .starts_with("2 different certificates: certificate "));
    let rows = vec![
        (
            "fe01".to_string(),
            "127.0.0.1:443".to_string(),
            report(&a, "oauth.contoso.com", now()),
        ),
        (
            "fe02".to_string(),
            "127.0.0.2:443".to_string(),
            report(&a, "oauth.contoso.com", now()),
        ),
    ];
    let pv = pool_consistency(&p, &members(&rows, "oauth_token_issuer", "eepool"));
    assert!(pv[0].consistent && pv[0].verdict == Verdict::Pass);
}

#[test]
fn case_22_expiry_windows_oauth_24h_and_lync_7_days() {
    let na = "tls_version=na mtls_enforced=na client_cert_accepted=na handshake_signature=na";
    // OAuth cert valid for 700 days: 20 h before notAfter is inside the 24 h critical window.
    let chain = oauth_chain(2048);
    let not_after = report(&chain, "x", now()).certs[0].not_after;
    let e = eval_oauth(&lync(), &chain, not_after - 20 * 3600);
    check(&e, Status::Critical, &format!("expiry=fail {na}"));
    assert!(
        msg(&e, "expiry").contains("expires in 0.8 days"),
        "{}",
        msg(&e, "expiry")
    );
    // 30 h before: outside 24 h, inside the 30-day warning window.
    let e = eval_oauth(&lync(), &chain, not_after - 30 * 3600);
    check(&e, Status::Warning, &format!("expiry=warn {na}"));
    // Any Lync cert expiring in 6 days: critical under the default 7-day window.
    let six = fe_leaf().days(-300, 6).chain();
    let e = eval(&lync(), "fe_default", &six, "ee01.contoso.com");
    check(&e, Status::Critical, &format!("expiry=fail {LYNC_NA}"));
    assert!(msg(&e, "expiry").starts_with("CN=eepool.contoso.com expires in 5.0 days at "));
    // ... and a warning when the operator lowers the critical window to 3 days.
    let p3 = lync_with(
        "",
        "profiles:\n  fe_default:\n    rules:\n      expiry: { critical_days: 3 }\n",
    );
    let e = eval(&p3, "fe_default", &six, "ee01.contoso.com");
    check(&e, Status::Warning, &format!("expiry=warn {LYNC_NA}"));
}

#[test]
fn case_23_persistent_chat_issued_by_a_different_ca_than_the_front_end() {
    let p = lync();
    let fe = fe_leaf().chain();
    let pchat_other = leaf("pchat.contoso.com", &["pchat.contoso.com"])
        .issuer(Iss::Other)
        .chain();
    let pchat_same = leaf("pchat.contoso.com", &["pchat.contoso.com"]).chain();
    let r_fe = report(&fe, "ee01.contoso.com", now());
    let r_other = report(&pchat_other, "pchat.contoso.com", now());
    let r_same = report(&pchat_same, "pchat.contoso.com", now());
    let m = |r: &'static str, rep| Member {
        endpoint: r,
        address: "127.0.0.1:443",
        profile: if r == "fe01" {
            "fe_default"
        } else {
            "persistent_chat"
        },
        pool: None,
        key_type: None,
        report: Some(rep),
    };
    let v = same_issuer_as(
        &p,
        &[
            m("fe01", &r_fe),
            m("pchat-other", &r_other),
            m("pchat-same", &r_same),
        ],
    );
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].endpoint, "pchat-other");
    assert_eq!(v[0].verdict.rule.as_str(), "same_issuer");
    assert_eq!(v[0].verdict.verdict, Verdict::Fail);
    assert!(
        v[0].verdict
            .message
            .starts_with("issuer O=Fabrikam,CN=Fabrikam Issuing CA"),
        "{}",
        v[0].verdict.message
    );
    assert_eq!(v[1].verdict.verdict, Verdict::Pass);
    // Without any probed Front End there is nothing to compare with.
    let v = same_issuer_as(&p, &[m("pchat-other", &r_other)]);
    assert_eq!(v[0].verdict.verdict, Verdict::NotApplicable);
    // The single-endpoint evaluation of the Persistent Chat cert itself is fine: the other CA
    // is untrusted here, so it fails `trusted`, which is a separate finding.
    let e = eval(&p, "persistent_chat", &pchat_same, "pchat.contoso.com");
    check(&e, Status::Ok, LYNC_NA);
}

#[test]
fn case_24_federation_partner_chaining_to_an_untrusted_root() {
    let chain = leaf("sip.partner.example", &["sip.partner.example"])
        .issuer(Iss::Other)
        .chain();
    let e = eval(&lync(), "federation_partner", &chain, "sip.partner.example");
    check(
        &e,
        Status::Critical,
        // Leaf and issuing CA sent, root unknown: untrusted (`trusted`), not incomplete.
        &format!("trusted=fail issuer_class=na {LYNC_NA}"),
    );
    let m = msg(&e, "trusted");
    assert!(m.contains("internal: unknown_issuer"), "{m}");
    assert!(m.contains("public: unknown_issuer"), "{m}");
    // A partner on a public CA is fine.
    let ok = leaf("sip.partner.example", &["sip.partner.example"])
        .issuer(Iss::Public)
        .chain();
    check(
        &eval(&lync(), "federation_partner", &ok, "sip.partner.example"),
        Status::Ok,
        LYNC_NA,
    );
}

#[test]
fn case_25_adcs_webserver_template_sha256_issuing_ca_v0_0() {
    let mut l = fe_leaf().key(Key::Rsa2048);
    l.template = Some("WebServer");
    let chain = l.chain();
    let e = eval(&lync(), "fe_default", &chain, "ee01.contoso.com");
    check(&e, Status::Ok, LYNC_NA);
    assert!(
        e.info
            .iter()
            .any(|i| i
                == "SHA-2 signature from an AD CS CA => Windows Server 2008+ CA with a CNG KSP"),
        "{:?}",
        e.info
    );
    assert!(e
        .info
        .contains(&"issuer class: internal (AD CS markers present)".to_string()));
    let r = report(&chain, "ee01.contoso.com", now());
    assert_eq!(r.certs[0].adcs.template_name.as_deref(), Some("WebServer"));
    assert_eq!(r.certs[1].adcs.ca_version.as_deref(), Some("V0.0"));
}

// === remaining rules ===

#[test]
fn reachable_without_a_chain_is_critical_whatever_the_profile() {
    let mut cap = Capture::new(
        "127.0.0.1:5061".parse().unwrap(),
        Some("x.contoso.com".into()),
    );
    cap.failure = Some(certprobe::probe::Failure::new(
        certprobe::probe::FailureReason::ConnectRefused,
        "connection refused",
    ));
    let r = report(&[], "x.contoso.com", now());
    for profile in ["default", "fe_default", "edge_external"] {
        let e = evaluate(
            &lync(),
            profile,
            &cap,
            &r,
            &ctx("x.contoso.com", "x.contoso.com"),
            now(),
        );
        check(&e, Status::Critical, "reachable=fail");
        assert_eq!(
            msg(&e, "reachable"),
            "no certificate chain captured (connect_refused: connection refused)"
        );
    }
}

#[test]
fn mtls_rejection_with_a_chain_is_still_reachable_and_judged() {
    let chain = fe_leaf().chain();
    let mut cap = capture(&chain, "ee01.contoso.com");
    cap.client_auth.requested = true;
    cap.client_auth.client_cert_sent = true;
    cap.client_auth.accepted = Some(false);
    cap.mtls_enforced = Some(false);
    cap.failure = Some(
        certprobe::probe::Failure::new(
            certprobe::probe::FailureReason::ClientCertRejected,
            "received fatal alert: UnknownCA",
        )
        .with_alert("unknown_ca"),
    );
    let mut cx = ctx("ee01.contoso.com", "ee01.contoso.com");
    cx.expect_client_auth_required = true;
    let e = eval_full(&lync(), "fe_default", &cap, &cx, now());
    check(
        &e,
        Status::Critical,
        "mtls_enforced=fail client_cert_accepted=fail",
    );
    assert!(msg(&e, "reachable")
        .starts_with("chain of 2 certificate(s) captured although the handshake failed"));
    assert_eq!(
        msg(&e, "client_cert_accepted"),
        "the server rejected our client certificate (client_cert_rejected: received fatal alert: UnknownCA)"
    );
    cap.mtls_enforced = Some(true);
    cap.client_auth.accepted = Some(true);
    cap.failure = None;
    let e = eval_full(&lync(), "fe_default", &cap, &cx, now());
    check(&e, Status::Ok, "");
}

#[test]
fn validity_not_yet_valid_and_expired_leaf() {
    let future = fe_leaf().days(5, 400).chain();
    let e = eval(&lync(), "fe_default", &future, "ee01.contoso.com");
    // webpki rejects it too, so `trusted` fails alongside `validity`.
    check(
        &e,
        Status::Critical,
        &format!("trusted=fail issuer_class=na validity=fail {LYNC_NA}"),
    );
    assert!(
        msg(&e, "validity").starts_with("leaf CN=eepool.contoso.com is not yet valid (notBefore ")
    );
    let past = fe_leaf().days(-400, -1).chain();
    let e = eval(&lync(), "default", &past, "ee01.contoso.com");
    check(
        &e,
        Status::Critical,
        "trusted=fail validity=fail expiry=fail",
    );
    assert!(
        msg(&e, "trusted").contains("expired"),
        "{}",
        msg(&e, "trusted")
    );
}

#[test]
fn max_validity_and_public_web_preset() {
    let p = policy_from("preset: public-web\n");
    let long = leaf("www.example.org", &["www.example.org"])
        .issuer(Iss::Public)
        .days(-10, 500)
        .chain();
    let e = eval(&p, "public_web", &long, "www.example.org");
    check(&e, Status::Critical, "max_validity=fail");
    assert_eq!(
        msg(&e, "max_validity"),
        "leaf CN=www.example.org is valid for 510.0 days (> 398 days)"
    );
    let ok = leaf("www.example.org", &["www.example.org"])
        .issuer(Iss::Public)
        .days(-10, 300)
        .chain();
    check(
        &eval(&p, "public_web", &ok, "www.example.org"),
        Status::Ok,
        "",
    );
    // An internal certificate is not acceptable for public web.
    let int = leaf("www.example.org", &["www.example.org"])
        .days(-10, 300)
        .chain();
    check(
        &eval(&p, "public_web", &int, "www.example.org"),
        Status::Critical,
        "issuer_class=fail",
    );
    // SHA-1 fails there.
    let sha1 = openssl_leaf(
        "www.example.org",
        &["www.example.org"],
        2048,
        Sig::Sha1,
        300,
    );
    let e = eval(&p, "public_web", &sha1, "www.example.org");
    assert!(issues(&e).contains("signature_hash=fail"), "{}", dump(&e));
}

#[test]
fn eku_critical_and_key_usage_criticality_on_the_reverse_proxy() {
    let mut l = leaf("webext.contoso.com", &rp_sans()).issuer(Iss::Public);
    l.eku_critical = true;
    let e = eval(
        &single_domain(),
        "reverse_proxy",
        &l.chain(),
        "webext.contoso.com",
    );
    check(
        &e,
        Status::Critical,
        &format!("eku_critical=fail {LYNC_NA}"),
    );
    let mut l = leaf("webext.contoso.com", &rp_sans()).issuer(Iss::Public);
    l.ku_critical = false;
    let e = eval(
        &single_domain(),
        "reverse_proxy",
        &l.chain(),
        "webext.contoso.com",
    );
    check(&e, Status::Critical, &format!("key_usage=fail {LYNC_NA}"));
    assert_eq!(
        msg(&e, "key_usage"),
        "leaf CN=webext.contoso.com: keyUsage must be critical"
    );
}

#[test]
fn eku_missing_server_auth_and_default_profile_without_eku() {
    let mut l = fe_leaf();
    l.server_auth = false;
    l.client_auth = true;
    let e = eval(&lync(), "fe_default", &l.chain(), "ee01.contoso.com");
    check(&e, Status::Critical, &format!("eku=fail {LYNC_NA}"));
    assert!(msg(&e, "eku").ends_with("EKU [client_auth] lacks server_auth"));
    assert!(
        msg(&e, "trusted").contains("failed only on the EKU"),
        "{}",
        msg(&e, "trusted")
    );
    // No EKU at all: the default profile accepts it ("serverAuth if it has an EKU").
    let mut l = fe_leaf();
    l.no_eku = true;
    let e = eval(&lync(), "default", &l.chain(), "ee01.contoso.com");
    check(&e, Status::Ok, "eku=na");
    let e = eval(&lync(), "fe_default", &l.chain(), "ee01.contoso.com");
    check(&e, Status::Critical, &format!("eku=fail {LYNC_NA}"));
}

#[test]
fn tls_version_minimum_from_rustls_and_legacy_captures() {
    let chain = fe_leaf().chain();
    let hardened = policy_from(&base_yaml("lync2013-hardened", TWO, MEET2, ""));
    let mut cap = capture(&chain, "ee01.contoso.com");
    cap.tls_version = None;
    cap.legacy = Some(Box::new(LegacyFacts {
        version: certprobe::vocab::TlsVersion::Tls10,
        cipher_suite: "TLS_RSA_WITH_AES_128_CBC_SHA".into(),
    }));
    cap.handshake_signature = HandshakeSignature::NotChecked;
    let cx = ctx("ee01.contoso.com", "ee01.contoso.com");
    let e = eval_full(&hardened, "fe_default", &cap, &cx, now());
    check(
        &e,
        Status::Warning,
        "tls_version=warn mtls_enforced=na client_cert_accepted=na handshake_signature=na",
    );
    assert_eq!(
        msg(&e, "tls_version"),
        "negotiated TLSv1.0 is below the minimum TLSv1.2"
    );
    // The documentation preset allows TLS 1.0.
    let e = eval_full(&lync(), "fe_default", &cap, &cx, now());
    check(
        &e,
        Status::Ok,
        "mtls_enforced=na client_cert_accepted=na handshake_signature=na",
    );
}

#[test]
fn chain_hygiene_missing_intermediate_and_intermediate_expiry() {
    let chain = fe_leaf().chain();
    let e = eval(&lync(), "fe_default", &chain[..1], "ee01.contoso.com");
    // Without the intermediate no store can build the path either.
    check(
        &e,
        Status::Critical,
        &format!(
            "trusted=fail issuer_class=na {LYNC_NA} chain_hygiene=warn intermediate_expiry=na"
        ),
    );
    assert!(msg(&e, "chain_hygiene").contains("chain incomplete"));
    // Intermediate expiring in 20 days (evaluated 1980 days after t0: the issuing CA ends at
    // t0+2000) warns; the leaf is still fine.
    let late = fe_leaf().days(1900, 2100).chain();
    let t = t0() + 1980 * DAY;
    let e = eval_full(
        &lync(),
        "fe_default",
        &capture(&late, "ee01.contoso.com"),
        &ctx("ee01.contoso.com", "ee01.contoso.com"),
        t,
    );
    check(
        &e,
        Status::Warning,
        &format!("expiry=warn {LYNC_NA} intermediate_expiry=warn"),
    );
    assert!(
        msg(&e, "expiry").starts_with("CN=Contoso Issuing CA expires in 20.0 days"),
        "{}",
        msg(&e, "expiry")
    );
}

#[test]
fn hostname_mismatch_and_cn_ignored_in_san_mode() {
    let chain = fe_leaf().chain();
    let e = eval(&lync(), "default", &chain, "other.contoso.com");
    check(&e, Status::Critical, "hostname=fail");
    assert_eq!(
        msg(&e, "hostname"),
        "other.contoso.com does not match CN=eepool.contoso.com (SAN [eepool.contoso.com, ee01.contoso.com])"
    );
    let cn_only = leaf("lsedge.contoso.net", &[]).chain();
    let e = eval(&lync(), "default", &cn_only, "lsedge.contoso.net");
    assert!(
        msg(&e, "hostname").ends_with("(it matches the subject CN, which is ignored: SAN only)")
    );
}

#[test]
fn subject_contains_sip_domain_for_oauth_warns() {
    let chain = openssl_leaf(
        "ee01.internal.example",
        &["ee01.internal.example"],
        2048,
        Sig::Sha256,
        700,
    );
    let e = eval_oauth(&lync(), &chain, now());
    check(
        &e,
        Status::Warning,
        "subject_contains=warn tls_version=na mtls_enforced=na client_cert_accepted=na handshake_signature=na",
    );
    assert_eq!(
        msg(&e, "subject_contains"),
        "subject CN=ee01.internal.example contains none of [contoso.com, fabrikam.com]"
    );
}

#[test]
fn default_profile_rsa_below_2048_warns_and_untrusted_is_critical() {
    let c = openssl_leaf(
        "app.contoso.com",
        &["app.contoso.com"],
        1024,
        Sig::Sha256,
        700,
    );
    let e = eval(&Policy::default(), "default", &c, "app.contoso.com");
    check(&e, Status::Warning, "key=warn");
    let other = leaf("app.contoso.com", &["app.contoso.com"])
        .issuer(Iss::Other)
        .chain();
    let e = eval(&Policy::default(), "default", &other, "app.contoso.com");
    check(&e, Status::Critical, "trusted=fail");
    // The default profile's rule set.
    assert_eq!(
        ids(&e),
        vec![
            "reachable",
            "trusted",
            "hostname",
            "validity",
            "expiry",
            "signature_hash",
            "key",
            "eku",
            "chain_hygiene"
        ]
    );
}

#[test]
fn severity_info_and_off_never_degrade_the_status() {
    let p = lync_with(
        "",
        "profiles:\n  edge_lenient:\n    extends: edge_external\n    rules:\n      issuer_class: { severity: info }\n      san_required: { severity: off }\n",
    );
    let chain = leaf("sip.contoso.com", &["sip.contoso.com"]).chain(); // internal, names missing
    let e = eval(&p, "edge_lenient", &chain, "sip.contoso.com");
    check(&e, Status::Ok, LYNC_NA);
    assert!(e.verdict(certprobe::vocab::RuleId::SanRequired).is_none());
    assert!(msg(&e, "issuer_class").starts_with("(info) issuer class internal"));
    assert!(e
        .info
        .iter()
        .any(|i| i.starts_with("issuer_class: issuer class internal")));
}

#[test]
fn trusted_restricted_to_named_stores() {
    let p = lync_with(
        "",
        "profiles:\n  internal_only:\n    extends: fe_default\n    rules:\n      trusted: { stores: [internal] }\n      issuer_class: { allowed: [internal, public] }\n",
    );
    let public = fe_leaf().issuer(Iss::Public).chain();
    let e = eval(&p, "internal_only", &public, "ee01.contoso.com");
    check(&e, Status::Critical, &format!("trusted=fail {LYNC_NA}"));
    assert!(
        msg(&e, "trusted").contains("not verified by any allowed store: internal: unknown_issuer")
    );
    let _ = (&world().int_root, &world().pub_root, &world().other_root);
}

#[test]
fn unknown_profile_is_unknown_status() {
    let chain = fe_leaf().chain();
    let e = eval(&lync(), "nope", &chain, "ee01.contoso.com");
    assert_eq!(e.status, Status::Unknown);
    assert!(e.verdicts.is_empty());
}

/// A leaf (RSA-2048, SHA-256) under an RSA-1024 intermediate that the internal root signed.
fn chain_under_weak_intermediate() -> Vec<CertificateDer<'static>> {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("root.pem"), w.int_root.issuer.pem()).unwrap();
    std::fs::write(d.join("root.key"), &w.int_root.key_pem).unwrap();
    std::fs::write(d.join("weak.key"), rsa_key_pem(1024)).unwrap();
    std::fs::write(d.join("leaf.key"), rsa2048()).unwrap();
    std::fs::write(
        d.join("ext.cnf"),
        "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n\
         [leaf]\nbasicConstraints=CA:FALSE\nsubjectAltName=DNS:app.contoso.com\n\
         extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         crlDistributionPoints=URI:http://pki.contoso.com/crl/weak.crl\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "req",
            "-new",
            "-key",
            "weak.key",
            "-subj",
            "/O=Contoso/CN=Contoso Weak CA",
            "-out",
            "weak.csr",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "weak.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-set_serial",
            "9",
            "-days",
            "800",
            "-sha256",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "ca",
            "-outform",
            "DER",
            "-out",
            "weak.der",
        ],
    );
    openssl(
        d,
        &[
            "x509", "-inform", "DER", "-in", "weak.der", "-out", "weak.pem",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-subj",
            "/CN=app.contoso.com",
            "-out",
            "leaf.csr",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "weak.pem",
            "-CAkey",
            "weak.key",
            "-set_serial",
            "10",
            "-days",
            "397",
            "-sha256",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "leaf",
            "-outform",
            "DER",
            "-out",
            "leaf.der",
        ],
    );
    vec![
        CertificateDer::from(std::fs::read(d.join("leaf.der")).unwrap()),
        CertificateDer::from(std::fs::read(d.join("weak.der")).unwrap()),
    ]
}

#[test]
fn key_rule_flags_weak_rsa_issuers_on_the_path() {
    let chain = chain_under_weak_intermediate();
    let e = eval(&Policy::default(), "default", &chain, "app.contoso.com");
    check(&e, Status::Warning, "key=warn");
    assert_eq!(
        msg(&e, "key"),
        "issuer CN=Contoso Weak CA has an RSA-1024 key (2048 or more recommended)"
    );
    let hardened = policy_from(&base_yaml("lync2013-hardened", TWO, MEET2, ""));
    let e = eval(&hardened, "federation_partner", &chain, "app.contoso.com");
    assert!(issues(&e).starts_with("key=fail"), "{}", dump(&e));
    assert_eq!(
        msg(&e, "key"),
        "issuer CN=Contoso Weak CA has an RSA-1024 key (minimum 2048)"
    );
}

#[test]
fn expected_names_are_checked_even_without_a_san_required_rule() {
    let chain = fe_leaf().chain();
    let mut cx = ctx("ee01.contoso.com", "ee01.contoso.com");
    cx.expected_names = vec!["eepool.contoso.com".into(), "sip.contoso.com".into()];
    let e = eval_full(
        &lync(),
        "default",
        &capture(&chain, "ee01.contoso.com"),
        &cx,
        now(),
    );
    check(&e, Status::Critical, "san_required=fail");
    assert!(msg(&e, "san_required").contains("lacks sip.contoso.com (SAN ["));
}

/// The partner's Access Edge found through `_sipfederationtls._tcp.fabrikam.com`.
fn discovered_ctx(target: &str) -> EndpointContext {
    EndpointContext {
        endpoint: "fab".into(),
        host: target.into(),
        name: Some(target.into()),
        discovered: Some(std::sync::Arc::new(certprobe::discovery::Discovered {
            source: "fab".into(),
            record: certprobe::discovery::DiscoveryRecord::SipFederationTls,
            query: "_sipfederationtls._tcp.fabrikam.com".into(),
            domain: "fabrikam.com".into(),
            target: target.into(),
            priority: Some(10),
            weight: Some(0),
            require_sip_domain: None,
            cnames: Vec::new(),
        })),
        ..Default::default()
    }
}

#[test]
fn federation_srv_target_must_be_an_explicit_san_with_the_partner_sip_domain() {
    let p = lync();
    let eval_at = |sans: &[&str], target: &str| {
        let chain = leaf(sans[0], sans).issuer(Iss::Public).chain();
        eval_full(
            &p,
            "federation_partner",
            &capture(&chain, target),
            &discovered_ctx(target),
            now(),
        )
    };
    let ok = eval_at(
        &["edge.fabrikam.com", "sip.fabrikam.com"],
        "edge.fabrikam.com",
    );
    assert_eq!(
        ok.verdict(certprobe::vocab::RuleId::SrvTargetName)
            .map(|v| v.verdict),
        Some(Verdict::Pass),
        "{}",
        dump(&ok)
    );
    // The target is present but the partner's sip.<domain> is not (federation_partner asks).
    let no_sip = eval_at(&["edge.fabrikam.com"], "edge.fabrikam.com");
    assert_eq!(no_sip.status, Status::Critical, "{}", dump(&no_sip));
    assert!(
        msg(&no_sip, "srv_target_name").contains("lacks sip.fabrikam.com"),
        "{}",
        msg(&no_sip, "srv_target_name")
    );
    // A certificate that lacks the SRV target (the hostname check fails too, separately).
    let other = eval_at(&["sip.fabrikam.com"], "edge2.fabrikam.com");
    assert!(
        msg(&other, "srv_target_name").contains("lacks edge2.fabrikam.com"),
        "{}",
        msg(&other, "srv_target_name")
    );
    // Configured (not discovered) endpoints do not run the rule.
    let chain = leaf("sip.fabrikam.com", &["sip.fabrikam.com"])
        .issuer(Iss::Public)
        .chain();
    let plain = eval(&p, "federation_partner", &chain, "sip.fabrikam.com");
    assert!(plain
        .verdict(certprobe::vocab::RuleId::SrvTargetName)
        .is_none());
}
