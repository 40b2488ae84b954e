//! One certificate's facts, parsed with x509-parser.
//!
//! Size: about 760 lines of code (every extension reported, AD CS ones included) and 110 of tests.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;
use x509_parser::prelude::*;

pub use crate::vocab::SignatureHash;

impl std::fmt::Display for KeyAlgorithm {
    /// `RSA 2048`, `EC P-256`, `Ed25519`, `key 1.2.3` (never Rust debug text).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyAlgorithm::Rsa { bits } => write!(f, "RSA {bits}"),
            KeyAlgorithm::Ec { curve, .. } => write!(f, "EC {curve}"),
            KeyAlgorithm::Ed25519 => f.write_str("Ed25519"),
            KeyAlgorithm::Ed448 => f.write_str("Ed448"),
            KeyAlgorithm::Other { oid } => write!(f, "key algorithm {oid}"),
        }
    }
}

/// Public key algorithm and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum KeyAlgorithm {
    Rsa {
        bits: u32,
    },
    /// `curve` is `P-256`, `P-384`, `P-521` or the OID string.
    Ec {
        curve: String,
        bits: u32,
    },
    Ed25519,
    Ed448,
    Other {
        oid: String,
    },
}

/// Microsoft AD CS extensions found on a certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AdcsExtensions {
    /// 1.3.6.1.4.1.311.20.2 (v1 template name, BMPString or UTF8String).
    pub template_name: Option<String>,
    /// 1.3.6.1.4.1.311.21.7: template OID with major/minor version.
    pub template_oid: Option<String>,
    pub template_major: Option<u64>,
    pub template_minor: Option<u64>,
    /// 1.3.6.1.4.1.311.21.10: application policy OIDs.
    pub application_policies: Vec<String>,
    /// 1.3.6.1.4.1.311.21.1 on CA certs, rendered `V<cert>.<key>`.
    pub ca_version: Option<String>,
    /// A CDP or AIA URL is `ldap:///CN=...` (AD-integrated enterprise CA).
    pub ldap_urls: bool,
}

impl AdcsExtensions {
    /// Any AD CS marker present.
    pub fn any(&self) -> bool {
        self.template_name.is_some()
            || self.template_oid.is_some()
            || !self.application_policies.is_empty()
            || self.ca_version.is_some()
            || self.ldap_urls
    }
}

/// Everything the evaluator, the metrics and the reports need about one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertFacts {
    /// RFC 4514 subject DN.
    pub subject: String,
    pub subject_cn: Option<String>,
    pub issuer: String,
    pub issuer_cn: Option<String>,
    /// Serial as lowercase hex without separators.
    pub serial: String,
    /// SHA-256 of the DER, lowercase hex without separators.
    pub fingerprint_sha256: String,
    /// SHA-256 of the SubjectPublicKeyInfo DER, lowercase hex (same key across renewals).
    pub spki_sha256: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub san_dns: Vec<String>,
    /// IP SANs, formatted normally (`127.0.0.1`, `::1`).
    pub san_ip: Vec<String>,
    /// Whether a SAN extension is present at all.
    pub has_san_extension: bool,
    pub key: KeyAlgorithm,
    /// Signature algorithm OID (dotted) and a short name (`sha256WithRSAEncryption`,
    /// `rsassaPss-SHA256` (hash from the parameters), `ecdsa-with-SHA256`, ...; the dotted OID
    /// when unknown).
    pub signature_oid: String,
    pub signature_algorithm: String,
    pub signature_hash: SignatureHash,
    pub is_rsassa_pss: bool,
    /// basicConstraints cA.
    pub is_ca: bool,
    pub path_len: Option<u32>,
    /// Subject == issuer and the signature verifies with its own key (checked when cheap).
    pub self_signed: bool,
    /// keyUsage names (`digital_signature`, `key_encipherment`, `key_cert_sign`, ...).
    pub key_usage: Vec<String>,
    pub key_usage_critical: bool,
    pub has_key_usage: bool,
    /// EKU names: `server_auth`, `client_auth`, `any`, or dotted OIDs for others.
    pub eku: Vec<String>,
    pub eku_critical: bool,
    pub has_eku: bool,
    pub crl_distribution_points: Vec<String>,
    pub ocsp_urls: Vec<String>,
    pub ca_issuers_urls: Vec<String>,
    pub certificate_policies: Vec<String>,
    pub subject_key_id: Option<String>,
    pub authority_key_id: Option<String>,
    pub adcs: AdcsExtensions,
    /// X.509 version (1, 2 or 3).
    pub version: u32,
    /// Critical extensions outside the set a path validator understands (dotted OIDs).
    pub unknown_critical_extensions: Vec<String>,
    /// The certificate carries a nameConstraints extension (a CA that constrains the names
    /// below it).
    pub has_name_constraints: bool,
    /// DER of the SubjectPublicKeyInfo (not serialized).
    #[serde(skip)]
    pub spki_der: Vec<u8>,
    /// Contents (without the outer SEQUENCE header) of the subject Name DER, as webpki's
    /// `TrustAnchor::subject` holds it (not serialized).
    #[serde(skip)]
    pub subject_der: Vec<u8>,
    /// Contents of the issuer Name DER, same form as `subject_der` (not serialized).
    #[serde(skip)]
    pub issuer_der: Vec<u8>,
}

/// Why a DER certificate does not parse (the text goes into a chain report's `parse_errors`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertParseError {
    #[error("certificate DER has {0} trailing byte(s)")]
    TrailingBytes(usize),
    /// x509-parser's error, rendered (it borrows nothing, but its text is what matters).
    #[error("certificate DER does not parse: {0}")]
    Der(String),
}

/// Parse one DER certificate. Never panics; any malformed input is an `Err` with context.
pub fn parse_cert(der: &[u8]) -> Result<CertFacts, CertParseError> {
    let x509 = parse_x509(der)?;
    Ok(facts_from_x509(&x509, der))
}

/// Most certificates [`parse_cert_cached`] remembers; when full it starts over (a fleet shares
/// a few intermediates and wildcard leaves, and re-presents the same chains every round).
pub const FACTS_CACHE_CAP: usize = 1024;

static CACHE: std::sync::LazyLock<super::memo::BoundedMemo<[u8; 32], CertFacts>> =
    std::sync::LazyLock::new(|| super::memo::BoundedMemo::new(FACTS_CACHE_CAP));

/// [`parse_cert`], memoized by the SHA-256 of the DER. The facts are a pure function of the
/// DER, so a hit is exactly what parsing would return; failures are not cached.
pub fn parse_cert_cached(der: &[u8]) -> Result<CertFacts, CertParseError> {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    if let Some(f) = CACHE.get(&key, |f| Some(f.clone())) {
        return Ok(f);
    }
    let facts = parse_cert(der)?;
    CACHE.insert(key, facts.clone());
    Ok(facts)
}

/// Parse the DER with x509-parser, rejecting trailing data.
pub(crate) fn parse_x509(der: &[u8]) -> Result<X509Certificate<'_>, CertParseError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(CertParseError::TrailingBytes(rest.len())),
        Err(e) => Err(CertParseError::Der(e.to_string())),
    }
}

/// Extensions a path validator understands (RFC 5280 §4.2 plus AIA).
const KNOWN_EXTENSIONS: &[&str] = &[
    "2.5.29.14",         // subjectKeyIdentifier
    "2.5.29.15",         // keyUsage
    "2.5.29.17",         // subjectAltName
    "2.5.29.18",         // issuerAltName
    "2.5.29.19",         // basicConstraints
    "2.5.29.30",         // nameConstraints
    "2.5.29.31",         // cRLDistributionPoints
    "2.5.29.32",         // certificatePolicies
    "2.5.29.33",         // policyMappings
    "2.5.29.35",         // authorityKeyIdentifier
    "2.5.29.36",         // policyConstraints
    "2.5.29.37",         // extKeyUsage
    "2.5.29.54",         // inhibitAnyPolicy
    "1.3.6.1.5.5.7.1.1", // authorityInfoAccess
];

const OID_TEMPLATE_NAME: &str = "1.3.6.1.4.1.311.20.2";
const OID_TEMPLATE_INFO: &str = "1.3.6.1.4.1.311.21.7";
const OID_APP_POLICIES: &str = "1.3.6.1.4.1.311.21.10";
const OID_CA_VERSION: &str = "1.3.6.1.4.1.311.21.1";

/// Build the facts from an already parsed certificate (used by `analyze` to parse only once).
pub(crate) fn facts_from_x509(x509: &X509Certificate<'_>, der: &[u8]) -> CertFacts {
    let subject_der = name_contents(x509.subject().as_raw());
    let issuer_der = name_contents(x509.issuer().as_raw());
    let spki_der = x509.public_key().raw.to_vec();

    let (signature_algorithm, signature_hash, is_rsassa_pss) = signature_info(x509);

    let mut f = CertFacts {
        subject: rfc4514(x509.subject()),
        subject_cn: first_cn(x509.subject()),
        issuer: rfc4514(x509.issuer()),
        issuer_cn: first_cn(x509.issuer()),
        serial: serial_hex(x509.raw_serial()),
        fingerprint_sha256: sha256_hex(der),
        spki_sha256: sha256_hex(&spki_der),
        not_before: x509.validity().not_before.timestamp(),
        not_after: x509.validity().not_after.timestamp(),
        san_dns: Vec::new(),
        san_ip: Vec::new(),
        has_san_extension: false,
        key: key_algorithm(x509.public_key()),
        signature_oid: x509.signature_algorithm.algorithm.to_id_string(),
        signature_algorithm,
        signature_hash,
        is_rsassa_pss,
        is_ca: false,
        path_len: None,
        self_signed: false,
        key_usage: Vec::new(),
        key_usage_critical: false,
        has_key_usage: false,
        eku: Vec::new(),
        eku_critical: false,
        has_eku: false,
        crl_distribution_points: Vec::new(),
        ocsp_urls: Vec::new(),
        ca_issuers_urls: Vec::new(),
        certificate_policies: Vec::new(),
        subject_key_id: None,
        authority_key_id: None,
        adcs: AdcsExtensions::default(),
        version: x509.version().0 + 1,
        unknown_critical_extensions: Vec::new(),
        has_name_constraints: false,
        spki_der,
        subject_der,
        issuer_der,
    };

    for ext in x509.extensions() {
        let oid = ext.oid.to_id_string();
        if ext.critical && !KNOWN_EXTENSIONS.contains(&oid.as_str()) {
            f.unknown_critical_extensions.push(oid.clone());
        }
        if oid == "2.5.29.30" {
            f.has_name_constraints = true;
        }
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                f.has_san_extension = true;
                for gn in &san.general_names {
                    match gn {
                        GeneralName::DNSName(d) => f.san_dns.push((*d).to_string()),
                        GeneralName::IPAddress(b) => f.san_ip.push(format_ip(b)),
                        _ => {}
                    }
                }
            }
            ParsedExtension::BasicConstraints(bc) => {
                f.is_ca = bc.ca;
                f.path_len = bc.path_len_constraint;
            }
            ParsedExtension::KeyUsage(ku) => {
                f.has_key_usage = true;
                f.key_usage_critical = ext.critical;
                f.key_usage = key_usage_names(ku);
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                f.has_eku = true;
                f.eku_critical = ext.critical;
                f.eku = eku_names(eku);
            }
            ParsedExtension::CRLDistributionPoints(cdp) => {
                for p in cdp.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                        for n in names {
                            if let GeneralName::URI(u) = n {
                                f.crl_distribution_points.push((*u).to_string());
                            }
                        }
                    }
                }
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for ad in aia.iter() {
                    if let GeneralName::URI(u) = &ad.access_location {
                        match ad.access_method.to_id_string().as_str() {
                            "1.3.6.1.5.5.7.48.1" => f.ocsp_urls.push((*u).to_string()),
                            "1.3.6.1.5.5.7.48.2" => f.ca_issuers_urls.push((*u).to_string()),
                            _ => {}
                        }
                    }
                }
            }
            ParsedExtension::CertificatePolicies(cp) => {
                for p in cp.iter() {
                    f.certificate_policies.push(p.policy_id.to_id_string());
                }
            }
            ParsedExtension::SubjectKeyIdentifier(k) => {
                f.subject_key_id = Some(hex::encode(k.0));
            }
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                f.authority_key_id = aki.key_identifier.as_ref().map(|k| hex::encode(k.0));
            }
            _ => match oid.as_str() {
                OID_TEMPLATE_NAME => f.adcs.template_name = decode_any_string(ext.value),
                OID_TEMPLATE_INFO => {
                    if let Some((t, major, minor)) = decode_template_info(ext.value) {
                        f.adcs.template_oid = Some(t);
                        f.adcs.template_major = major;
                        f.adcs.template_minor = minor;
                    }
                }
                OID_APP_POLICIES => f.adcs.application_policies = decode_app_policies(ext.value),
                OID_CA_VERSION => f.adcs.ca_version = decode_ca_version(ext.value),
                _ => {}
            },
        }
    }

    f.adcs.ldap_urls = f
        .crl_distribution_points
        .iter()
        .chain(f.ocsp_urls.iter())
        .chain(f.ca_issuers_urls.iter())
        .any(|u| u.len() >= 5 && u[..5].eq_ignore_ascii_case("ldap:"));

    // Self-signed, cheaply: same DN, and the key identifiers (when both present) agree.
    f.self_signed = f.subject_der == f.issuer_der
        && match (&f.subject_key_id, &f.authority_key_id) {
            (Some(s), Some(a)) => s == a,
            _ => true,
        };
    f
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

fn serial_hex(raw: &[u8]) -> String {
    let mut s = raw;
    while s.len() > 1 && s[0] == 0 {
        s = &s[1..];
    }
    hex::encode(s)
}

/// Format an IP SAN (4 or 16 bytes) normally; anything else as `invalid:<hex>`.
pub(crate) fn format_ip(b: &[u8]) -> String {
    match b.len() {
        4 => Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Ipv6Addr::from(a).to_string()
        }
        _ => format!("invalid:{}", hex::encode(b)),
    }
}

fn first_cn(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .next()
        .map(|a| attr_string(a.attr_value()).unwrap_or_else(|| hex::encode(a.attr_value().data)))
}

fn attr_short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "serialNumber",
        "2.5.4.4" => "SN",
        "2.5.4.42" => "GN",
        "2.5.4.12" => "title",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

/// Decode a directory string of any common type. None for non-string tags or bad encodings.
fn attr_string(v: &x509_parser::asn1_rs::Any<'_>) -> Option<String> {
    decode_string(v.tag().0, v.data)
}

fn decode_string(tag: u32, data: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, NumericString, PrintableString, IA5String, VisibleString
        12 | 18 | 19 | 22 | 26 => std::str::from_utf8(data).ok().map(str::to_string),
        // T61String / TeletexString: treat as Latin-1
        20 => Some(data.iter().map(|&b| b as char).collect()),
        // BMPString: UTF-16BE
        30 => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        // UniversalString: UTF-32BE
        28 => {
            if !data.len().is_multiple_of(4) {
                return None;
            }
            data.chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        _ => None,
    }
}

fn escape_rfc4514(v: &str, out: &mut String) {
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == n && c == ' ');
        if c == '\0' {
            out.push_str("\\00");
        } else if special {
            out.push('\\');
            out.push(c);
        } else {
            out.push(c);
        }
    }
}

/// RFC 4514 string: RDNs in reverse order, `,` between RDNs, `+` inside multi-valued RDNs.
pub(crate) fn rfc4514(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    let rdns: Vec<_> = name.iter_rdn().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = atv.attr_type().to_id_string();
            match attr_short_name(&oid) {
                Some(n) => out.push_str(n),
                None => out.push_str(&oid),
            }
            out.push('=');
            match attr_string(atv.attr_value()) {
                Some(s) => escape_rfc4514(&s, &mut out),
                None => {
                    out.push('#');
                    out.push_str(&hex::encode(atv.attr_value().data));
                }
            }
        }
    }
    out
}

fn key_algorithm(spki: &SubjectPublicKeyInfo<'_>) -> KeyAlgorithm {
    let oid = spki.algorithm.algorithm.to_id_string();
    match oid.as_str() {
        "1.2.840.113549.1.1.1" => match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => KeyAlgorithm::Rsa {
                bits: rsa.key_size() as u32,
            },
            _ => KeyAlgorithm::Rsa { bits: 0 },
        },
        // id-RSASSA-PSS keys (RFC 4055): the same RSAPublicKey in the bit string, which
        // x509-parser's `parsed()` does not decode for this OID.
        "1.2.840.113549.1.1.10" => {
            use x509_parser::prelude::FromDer;
            let bits =
                x509_parser::public_key::RSAPublicKey::from_der(&spki.subject_public_key.data)
                    .map(|(_, k)| k.key_size() as u32)
                    .unwrap_or(0);
            KeyAlgorithm::Rsa { bits }
        }
        "1.2.840.10045.2.1" => {
            let curve_oid = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            let (curve, bits) = match curve_oid.as_deref() {
                Some("1.2.840.10045.3.1.7") => ("P-256".to_string(), 256),
                Some("1.3.132.0.34") => ("P-384".to_string(), 384),
                Some("1.3.132.0.35") => ("P-521".to_string(), 521),
                Some("1.2.840.10045.3.1.1") => ("P-192".to_string(), 192),
                Some("1.3.132.0.10") => ("secp256k1".to_string(), 256),
                Some(o) => (o.to_string(), 0),
                // Explicit curve parameters (not a named curve).
                None => ("explicit".to_string(), 0),
            };
            KeyAlgorithm::Ec { curve, bits }
        }
        "1.3.101.112" => KeyAlgorithm::Ed25519,
        "1.3.101.113" => KeyAlgorithm::Ed448,
        _ => KeyAlgorithm::Other { oid },
    }
}

fn hash_from_oid(oid: &str) -> SignatureHash {
    match oid {
        "1.2.840.113549.2.5" => SignatureHash::Md5,
        "1.3.14.3.2.26" => SignatureHash::Sha1,
        "2.16.840.1.101.3.4.2.4" => SignatureHash::Sha224,
        "2.16.840.1.101.3.4.2.1" => SignatureHash::Sha256,
        "2.16.840.1.101.3.4.2.2" => SignatureHash::Sha384,
        "2.16.840.1.101.3.4.2.3" => SignatureHash::Sha512,
        _ => SignatureHash::Unknown,
    }
}

/// (friendly name, hash, is RSASSA-PSS)
fn signature_info(x509: &X509Certificate<'_>) -> (String, SignatureHash, bool) {
    use SignatureHash as H;
    let alg = &x509.signature_algorithm;
    let oid = alg.algorithm.to_id_string();
    let (name, hash) = match oid.as_str() {
        "1.2.840.113549.1.1.2" => ("md2WithRSAEncryption", H::Unknown),
        "1.2.840.113549.1.1.4" => ("md5WithRSAEncryption", H::Md5),
        "1.3.14.3.2.3" => ("md5WithRSA", H::Md5),
        // Bare digest OIDs used as a signature algorithm by very old (SSLeay-era) issuers.
        "1.2.840.113549.2.5" => ("md5", H::Md5),
        "1.3.14.3.2.26" => ("sha1", H::Sha1),
        "1.2.840.113549.1.1.5" => ("sha1WithRSAEncryption", H::Sha1),
        "1.3.14.3.2.29" => ("sha1WithRSASignature", H::Sha1),
        "1.2.840.113549.1.1.14" => ("sha224WithRSAEncryption", H::Sha224),
        "1.2.840.113549.1.1.11" => ("sha256WithRSAEncryption", H::Sha256),
        "1.2.840.113549.1.1.12" => ("sha384WithRSAEncryption", H::Sha384),
        "1.2.840.113549.1.1.13" => ("sha512WithRSAEncryption", H::Sha512),
        "1.2.840.10045.4.1" => ("ecdsa-with-SHA1", H::Sha1),
        "1.2.840.10045.4.3.1" => ("ecdsa-with-SHA224", H::Sha224),
        "1.2.840.10045.4.3.2" => ("ecdsa-with-SHA256", H::Sha256),
        "1.2.840.10045.4.3.3" => ("ecdsa-with-SHA384", H::Sha384),
        "1.2.840.10045.4.3.4" => ("ecdsa-with-SHA512", H::Sha512),
        "1.2.840.10040.4.3" => ("dsa-with-sha1", H::Sha1),
        "2.16.840.1.101.3.4.3.1" => ("dsa-with-sha224", H::Sha224),
        "2.16.840.1.101.3.4.3.2" => ("dsa-with-sha256", H::Sha256),
        "1.3.101.112" => ("Ed25519", H::Intrinsic),
        "1.3.101.113" => ("Ed448", H::Intrinsic),
        "1.2.840.113549.1.1.10" => {
            // RSASSA-PSS: the hash is in the parameters (SHA-1 when absent, RFC 4055).
            let hash = match alg.parameters.as_ref() {
                None => H::Sha1,
                Some(p) => match x509_parser::signature_algorithm::RsaSsaPssParams::try_from(p) {
                    Ok(params) => hash_from_oid(&params.hash_algorithm_oid().to_id_string()),
                    Err(_) => H::Unknown,
                },
            };
            return (
                format!("rsassaPss-{}", SignatureHash::human(hash)),
                hash,
                true,
            );
        }
        _ => return (oid.clone(), H::Unknown, false),
    };
    (name.to_string(), hash, false)
}

fn key_usage_names(ku: &KeyUsage) -> Vec<String> {
    let pairs: [(bool, &str); 9] = [
        (ku.digital_signature(), "digital_signature"),
        (ku.non_repudiation(), "non_repudiation"),
        (ku.key_encipherment(), "key_encipherment"),
        (ku.data_encipherment(), "data_encipherment"),
        (ku.key_agreement(), "key_agreement"),
        (ku.key_cert_sign(), "key_cert_sign"),
        (ku.crl_sign(), "crl_sign"),
        (ku.encipher_only(), "encipher_only"),
        (ku.decipher_only(), "decipher_only"),
    ];
    pairs
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| (*n).to_string())
        .collect()
}

fn eku_names(eku: &ExtendedKeyUsage<'_>) -> Vec<String> {
    let mut v = Vec::new();
    let known: [(bool, &str); 7] = [
        (eku.any, "any"),
        (eku.server_auth, "server_auth"),
        (eku.client_auth, "client_auth"),
        (eku.code_signing, "1.3.6.1.5.5.7.3.3"),
        (eku.email_protection, "1.3.6.1.5.5.7.3.4"),
        (eku.time_stamping, "1.3.6.1.5.5.7.3.8"),
        (eku.ocsp_signing, "1.3.6.1.5.5.7.3.9"),
    ];
    for (on, n) in known {
        if on {
            v.push(n.to_string());
        }
    }
    for o in &eku.other {
        v.push(o.to_id_string());
    }
    v
}

// ---- minimal, panic-free DER reading for the Microsoft extensions ----

/// Read one TLV: (tag byte, contents, rest). Definite lengths only.
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-byte tags are not used by the structures we read
    }
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (l0 as usize, rest)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | b as usize;
        }
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Strip the outer SEQUENCE header of a Name (webpki keeps only the contents).
fn name_contents(raw: &[u8]) -> Vec<u8> {
    match read_tlv(raw) {
        Some((0x30, c, _)) => c.to_vec(),
        _ => raw.to_vec(),
    }
}

fn oid_to_string(content: &[u8]) -> Option<String> {
    if content.is_empty() || content[content.len() - 1] & 0x80 != 0 {
        return None;
    }
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in content {
        if acc > (u64::MAX >> 7) {
            return None;
        }
        acc = (acc << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
        }
    }
    let first = arcs[0];
    let (a, b) = if first < 40 {
        (0, first)
    } else if first < 80 {
        (1, first - 40)
    } else {
        (2, first - 80)
    };
    let mut s = format!("{a}.{b}");
    for x in &arcs[1..] {
        let _ = write!(s, ".{x}");
    }
    Some(s)
}

fn der_uint(content: &[u8]) -> Option<u64> {
    if content.is_empty() || content[0] & 0x80 != 0 {
        return None; // negative
    }
    let mut c = content;
    while c.len() > 1 && c[0] == 0 {
        c = &c[1..];
    }
    if c.len() > 8 {
        return None;
    }
    Some(c.iter().fold(0u64, |a, &b| (a << 8) | b as u64))
}

fn decode_any_string(value: &[u8]) -> Option<String> {
    let (tag, content, _) = read_tlv(value)?;
    decode_string(tag as u32, content)
}

fn decode_template_info(value: &[u8]) -> Option<(String, Option<u64>, Option<u64>)> {
    let (tag, seq, _) = read_tlv(value)?;
    if tag != 0x30 {
        return None;
    }
    let (t, oid, rest) = read_tlv(seq)?;
    if t != 0x06 {
        return None;
    }
    let oid = oid_to_string(oid)?;
    let mut major = None;
    let mut minor = None;
    if let Some((0x02, c, rest)) = read_tlv(rest) {
        major = der_uint(c);
        if let Some((0x02, c, _)) = read_tlv(rest) {
            minor = der_uint(c);
        }
    }
    Some((oid, major, minor))
}

fn decode_app_policies(value: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let Some((0x30, mut seq, _)) = read_tlv(value) else {
        return out;
    };
    while let Some((tag, inner, rest)) = read_tlv(seq) {
        if tag == 0x30 {
            if let Some((0x06, oid, _)) = read_tlv(inner) {
                if let Some(s) = oid_to_string(oid) {
                    out.push(s);
                }
            }
        }
        seq = rest;
    }
    out
}

fn decode_ca_version(value: &[u8]) -> Option<String> {
    let (tag, c, _) = read_tlv(value)?;
    if tag != 0x02 {
        return None;
    }
    let v = der_uint(c)?;
    Some(format!("V{}.{}", v & 0xffff, (v >> 16) & 0xffff))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(cn: &str) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::new(vec![format!("{cn}.test")]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn cached_facts_equal_parsed_facts_and_the_cache_is_bounded() {
        let der = self_signed("cached");
        let fresh = parse_cert(&der).unwrap();
        assert_eq!(parse_cert_cached(&der).unwrap(), fresh, "miss");
        assert_eq!(parse_cert_cached(&der).unwrap(), fresh, "hit");
        // Failures are reported the same way and never cached.
        let mut bad = der.clone();
        bad.push(0);
        assert_eq!(parse_cert_cached(&bad), parse_cert(&bad));
        assert!(parse_cert_cached(&bad).is_err());
        for i in 0..FACTS_CACHE_CAP + 8 {
            let d = self_signed(&format!("n{i}"));
            assert_eq!(
                parse_cert_cached(&d).unwrap().subject_cn.as_deref(),
                Some(format!("n{i}").as_str())
            );
            assert!(CACHE.len() <= FACTS_CACHE_CAP);
        }
    }

    #[test]
    fn ca_version_renders_cert_index_then_key_index() {
        // 0x00010002 = key index 1, cert index 2
        assert_eq!(
            decode_ca_version(&[0x02, 0x04, 0x00, 0x01, 0x00, 0x02]).as_deref(),
            Some("V2.1")
        );
        assert_eq!(
            decode_ca_version(&[0x02, 0x01, 0x00]).as_deref(),
            Some("V0.0")
        );
    }

    #[test]
    fn template_info_decodes_oid_and_versions_with_optional_minor() {
        // SEQUENCE { OID 1.2.3.4, INTEGER 100, INTEGER 4 }
        let v = [
            0x30, 0x0b, 0x06, 0x03, 0x2a, 0x03, 0x04, 0x02, 0x01, 0x64, 0x02, 0x01, 0x04,
        ];
        assert_eq!(
            decode_template_info(&v),
            Some(("1.2.3.4".to_string(), Some(100), Some(4)))
        );
        let v = [0x30, 0x08, 0x06, 0x03, 0x2a, 0x03, 0x04, 0x02, 0x01, 0x64];
        assert_eq!(
            decode_template_info(&v),
            Some(("1.2.3.4".to_string(), Some(100), None))
        );
    }

    #[test]
    fn template_name_accepts_bmp_utf8_and_printable_strings() {
        let bmp = [0x1e, 0x06, 0x00, 0x57, 0x00, 0x65, 0x00, 0x62];
        assert_eq!(decode_any_string(&bmp).as_deref(), Some("Web"));
        let utf8 = [0x0c, 0x03, b'W', b'e', b'b'];
        assert_eq!(decode_any_string(&utf8).as_deref(), Some("Web"));
        let printable = [0x13, 0x03, b'W', b'e', b'b'];
        assert_eq!(decode_any_string(&printable).as_deref(), Some("Web"));
        assert_eq!(decode_any_string(&[0x1e, 0x03, 0, 1, 2]), None);
    }

    #[test]
    fn application_policies_list_each_policy_identifier() {
        // SEQUENCE { SEQUENCE { OID 1.3.6.1.5.5.7.3.1 }, SEQUENCE { OID 1.3.6.1.5.5.7.3.2 } }
        let v = [
            0x30, 0x18, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01,
            0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02,
        ];
        assert_eq!(
            decode_app_policies(&v),
            vec![
                "1.3.6.1.5.5.7.3.1".to_string(),
                "1.3.6.1.5.5.7.3.2".to_string()
            ]
        );
    }

    #[test]
    fn ip_addresses_are_formatted_as_addresses_not_hex() {
        assert_eq!(format_ip(&[127, 0, 0, 1]), "127.0.0.1");
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(format_ip(&v6), "::1");
        assert_eq!(format_ip(&[1, 2, 3]), "invalid:010203");
    }

    #[test]
    fn garbage_never_panics_and_is_an_error() {
        for len in 0..64usize {
            let v: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            assert!(parse_cert(&v).is_err());
        }
        let mut v = vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff];
        v.extend_from_slice(&[0; 10]);
        assert!(parse_cert(&v).is_err());
        assert_eq!(read_tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(oid_to_string(&[0x80]), None);
    }
}
