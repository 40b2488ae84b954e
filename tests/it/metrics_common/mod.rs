//! Shared test support for the metrics/http tests: hand-built outcomes (all contract fields are
//! pub) and a small parser for the Prometheus text format 0.0.4.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use certprobe::chain::{
    AdcsExtensions, CertFacts, ChainReport, HostnameMatch, Hygiene, IssuerClass, KeyAlgorithm,
    SignatureHash, StoreClass, StoreVerdict, VerifyErrorKind,
};
use certprobe::outcome::{ProbeOutcome, TargetMeta};
use certprobe::policy::{Evaluation, RuleVerdict, Severity, Status, Verdict};
use certprobe::probe::{Capture, Failure, FailureReason, HandshakeSignature, LegacyFacts};

pub const NOW: f64 = 1_800_000_000.5;

/// A real certificate parsed by `chain::parse_cert` (generated once with rcgen), so new
/// `CertFacts` fields never break these fixtures; the tests then set the fields they assert.
fn base_facts() -> CertFacts {
    static BASE: std::sync::OnceLock<CertFacts> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let ck = rcgen::generate_simple_self_signed(vec!["base.example".to_string()]).unwrap();
        certprobe::chain::parse_cert(ck.cert.der()).expect("parse_cert of an rcgen certificate")
    })
    .clone()
}

pub fn cert(cn: &str, issuer: &str, fp: &str, not_after: i64, key: KeyAlgorithm) -> CertFacts {
    let mut c = base_facts();
    c.subject = format!("CN={cn}");
    c.subject_cn = Some(cn.to_string());
    c.issuer = format!("CN={issuer}");
    c.issuer_cn = Some(issuer.to_string());
    c.serial = format!("01:{}", &fp[..2]);
    c.fingerprint_sha256 = fp.to_string();
    c.spki_sha256 = "00".into();
    c.not_before = not_after - 365 * 86400;
    c.not_after = not_after;
    c.san_dns = vec![cn.to_string()];
    c.key = key;
    c.signature_oid = "1.2.840.113549.1.1.11".into();
    c.signature_algorithm = "sha256WithRSAEncryption".into();
    c.signature_hash = SignatureHash::Sha256;
    c.self_signed = false;
    c.adcs = AdcsExtensions::default();
    c
}

pub fn store(name: &str, verified: bool, error: Option<VerifyErrorKind>) -> StoreVerdict {
    StoreVerdict {
        store: name.to_string(),
        class: StoreClass::Internal,
        verified,
        legacy_algorithms: false,
        error,
        error_position: None,
        detail: error.map(|e| format!("{e:?} detail text")),
        path: vec![],
        path_not_after: None,
        trusted_ignoring_eku: false,
        intermediates_from_store: vec![],
        intermediates_from_aia: vec![],
    }
}

pub fn report(certs: Vec<CertFacts>, stores: Vec<StoreVerdict>, host: &str) -> ChainReport {
    let best = if stores.iter().any(|s| s.verified) {
        certs.iter().map(|c| c.not_after).min()
    } else {
        None
    };
    ChainReport {
        certs,
        parse_errors: vec![],
        stores,
        hostname: Some(HostnameMatch {
            name: host.to_string(),
            matched: true,
            matched_by: Some(host.to_string()),
            via_wildcard: false,
            via_cn: false,
        }),
        hygiene: Hygiene {
            order_valid: true,
            root_sent: false,
            complete: true,
            missing_intermediates: vec![],
            completed_by_aia: vec![],
            superfluous: vec![],
            expired_intermediates: vec![],
            earliest_not_after: None,
        },
        issuer_class: IssuerClass::Internal,
        adcs_detected: false,
        inferences: vec![],
        weak_hash_on_path: false,
        best_path_not_after: best,
        anchor: None,
        aia: None,
        revocation: None,
    }
}

/// A target with `metrics: {detail: full}`: the fixtures below assert every family (the
/// series-budget tests set `MetricsDetail::Default` themselves).
pub fn target(endpoint: &str, profile: &str, pool: Option<&str>) -> TargetMeta {
    TargetMeta {
        endpoint: endpoint.to_string(),
        host: format!("{endpoint}.corp.example"),
        port: 443,
        profile: profile.to_string(),
        pool: pool.map(str::to_string),
        labels: BTreeMap::new(),
        starttls: None,
        metrics_detail: certprobe::vocab::MetricsDetail::Full,
    }
}

pub fn eval(
    profile: &str,
    status: Status,
    verdicts: &[(&'static str, Severity, Verdict)],
) -> std::sync::Arc<Evaluation> {
    std::sync::Arc::new(Evaluation {
        profile: profile.to_string(),
        status,
        verdicts: verdicts
            .iter()
            .map(|(rule, severity, verdict)| RuleVerdict {
                rule: certprobe::vocab::RuleId::from_name(rule).expect("a rule id"),
                severity: *severity,
                verdict: *verdict,
                message: format!("{rule}: some message with \"quotes\""),
            })
            .collect(),
        info: vec![],
    })
}

/// A successful TLS 1.3 probe with a 2-certificate chain.
pub fn ok_outcome(endpoint: &str, address: &str, leaf_fp: &str) -> ProbeOutcome {
    let mut t = target(endpoint, "web", None);
    t.labels.insert("team".into(), "pki".into());
    let mut c = Capture::new(address.parse().unwrap(), Some(t.host.clone()));
    c.connect_duration = Some(Duration::from_millis(2));
    c.handshake_duration = Some(Duration::from_millis(8));
    c.tls_version = certprobe::vocab::TlsVersion::from_name("TLSv1.3");
    c.cipher_suite = Some("TLS13_AES_256_GCM_SHA384".into());
    c.handshake_signature = HandshakeSignature::Verified;
    let host = t.host.clone();
    ProbeOutcome {
        target: t.into(),
        address: address.to_string(),
        series_key: address.to_string(),
        capture: c,
        report: Some(
            report(
                vec![
                    cert(
                        &host,
                        "Corp Issuing CA",
                        leaf_fp,
                        1_900_000_000,
                        KeyAlgorithm::Rsa { bits: 2048 },
                    ),
                    cert(
                        "Corp Issuing CA",
                        "Corp Root CA",
                        "bbbbbbbb",
                        2_000_000_000,
                        KeyAlgorithm::Ec {
                            curve: "P-256".into(),
                            bits: 256,
                        },
                    ),
                ],
                vec![
                    store("enterprise", true, None),
                    store("public", false, Some(VerifyErrorKind::UnknownIssuer)),
                ],
                &host,
            )
            .into(),
        ),
        evaluation: eval(
            "web",
            Status::Ok,
            &[
                ("signature_hash", Severity::Fail, Verdict::Pass),
                ("key", Severity::Fail, Verdict::Pass),
                ("crl_dp", Severity::Warn, Verdict::NotApplicable),
            ],
        ),
        client_cert_not_after: None,
        report_from: None,
        oauth: None,
        finished_at: NOW,
    }
}

/// A probe that failed before any certificate (connection refused).
pub fn refused_outcome(endpoint: &str, address: &str) -> ProbeOutcome {
    let t = target(endpoint, "default", Some("fe-pool"));
    let mut c = Capture::new(address.parse().unwrap(), Some(t.host.clone()));
    c.connect_duration = Some(Duration::from_millis(1));
    c.failure = Some(Failure::new(
        FailureReason::ConnectRefused,
        "Connection refused (os error 111) to \"10.0.0.1\"",
    ));
    ProbeOutcome {
        target: t.into(),
        address: address.to_string(),
        series_key: address.to_string(),
        capture: c,
        report: None,
        evaluation: eval("default", Status::Unknown, &[]),
        client_cert_not_after: None,
        report_from: None,
        oauth: None,
        finished_at: NOW,
    }
}

/// An MTLS endpoint: client certificate required, the server enforces it and accepted ours.
pub fn mtls_outcome(endpoint: &str, address: &str) -> ProbeOutcome {
    let mut o = ok_outcome(endpoint, address, "cccccccc");
    std::sync::Arc::make_mut(&mut o.target).profile = "lync_edge".into();
    std::sync::Arc::make_mut(&mut o.target).pool = Some("edge-pool".into());
    o.capture.client_auth.requested = true;
    o.capture.client_auth.client_cert_sent = true;
    o.capture.client_auth.accepted = Some(true);
    o.capture.mtls_enforced = Some(true);
    o.client_cert_not_after = Some(1_850_000_000);
    o.evaluation = eval(
        "lync_edge",
        Status::Warning,
        &[
            ("client_cert_accepted", Severity::Warn, Verdict::Warn),
            ("signature_hash", Severity::Fail, Verdict::Pass),
        ],
    );
    o
}

/// A TLS 1.0-only server captured by the legacy path, SHA-1 chain, policy critical.
pub fn legacy_outcome(endpoint: &str, address: &str) -> ProbeOutcome {
    let t = target(endpoint, "lync_front_end", Some("fe-pool"));
    let mut c = Capture::new(address.parse().unwrap(), Some(t.host.clone()));
    c.connect_duration = Some(Duration::from_millis(3));
    c.handshake_duration = Some(Duration::from_millis(5));
    c.legacy = Some(Box::new(LegacyFacts {
        version: certprobe::vocab::TlsVersion::Tls10,
        cipher_suite: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA".into(),
    }));
    c.failure = Some(
        Failure::new(
            FailureReason::ProtocolVersion,
            "received fatal alert: ProtocolVersion",
        )
        .with_alert("protocol_version"),
    );
    let host = t.host.clone();
    let mut leaf = cert(
        &host,
        "Lync CA",
        "dddddddd",
        1_700_000_000,
        KeyAlgorithm::Rsa { bits: 1024 },
    );
    leaf.signature_algorithm = "sha1WithRSAEncryption".into();
    leaf.signature_hash = SignatureHash::Sha1;
    let mut r = report(
        vec![leaf],
        vec![store("enterprise", false, Some(VerifyErrorKind::Expired))],
        &host,
    );
    r.weak_hash_on_path = true;
    r.hygiene.complete = false;
    ProbeOutcome {
        target: t.into(),
        address: address.to_string(),
        series_key: address.to_string(),
        capture: c,
        report: Some(r.into()),
        evaluation: eval(
            "lync_front_end",
            Status::Critical,
            &[
                ("signature_hash", Severity::Fail, Verdict::Fail),
                ("key", Severity::Fail, Verdict::Fail),
                ("tls_version", Severity::Warn, Verdict::Warn),
            ],
        ),
        client_cert_not_after: None,
        report_from: None,
        oauth: None,
        finished_at: NOW,
    }
}

/// One parsed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition: samples plus HELP/TYPE per family.
#[derive(Debug, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    pub help: HashMap<String, String>,
    pub types: HashMap<String, String>,
}

impl Exposition {
    /// Samples of `name` whose labels include every (k, v) of `want`.
    pub fn find(&self, name: &str, want: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && want
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of the single sample matching; panics when there is not exactly one.
    pub fn value(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        let found = self.find(name, want);
        assert_eq!(
            found.len(),
            1,
            "expected exactly one {name}{want:?}, got {found:?}"
        );
        found[0].value
    }

    pub fn count(&self, name: &str, want: &[(&str, &str)]) -> usize {
        self.find(name, want).len()
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some(o) => panic!("bad escape \\{o}"),
                None => panic!("dangling backslash"),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_labels(s: &str) -> (BTreeMap<String, String>, &str) {
    // s starts after '{'; returns labels and the rest after '}'.
    let mut labels = BTreeMap::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        if bytes[i] == b'}' {
            return (labels, &s[i + 1..]);
        }
        let eq = s[i..].find('=').expect("label '='") + i;
        let key = s[i..eq].to_string();
        assert!(
            key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad label name {key:?}"
        );
        assert_eq!(bytes[eq + 1], b'"', "label value must be quoted");
        let mut j = eq + 2;
        while bytes[j] != b'"' {
            if bytes[j] == b'\\' {
                j += 1;
            }
            j += 1;
        }
        let value = unescape(&s[eq + 2..j]);
        assert!(
            labels.insert(key.clone(), value).is_none(),
            "duplicate label {key}"
        );
        i = j + 1;
        if bytes[i] == b',' {
            i += 1;
        }
    }
}

fn parse_value(v: &str) -> f64 {
    match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => v.parse().unwrap_or_else(|_| panic!("bad value {v:?}")),
    }
}

/// Parse the Prometheus text format 0.0.4 (and the OpenMetrics text subset certprobe emits).
/// Panics on anything malformed, and on duplicate series.
pub fn parse(text: &str) -> Exposition {
    let mut e = Exposition::default();
    let mut seen = std::collections::HashSet::new();
    for line in text.lines() {
        if line.is_empty() || line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP text");
            e.help.insert(name.to_string(), help.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').expect("TYPE");
            e.types.insert(name.to_string(), ty.to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).expect("sample line");
        let name = &line[..name_end];
        let (labels, rest) = if line.as_bytes()[name_end] == b'{' {
            parse_labels(&line[name_end + 1..])
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let mut parts = rest.split_whitespace();
        let value = parse_value(parts.next().expect("value"));
        assert!(
            seen.insert((name.to_string(), labels.clone())),
            "duplicate series {name}{labels:?}"
        );
        e.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    e
}

/// Run `promtool check metrics` on `text`; returns (exit success, combined output).
pub fn promtool_check(text: &str) -> (bool, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (apt-get install prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut msg = String::from_utf8_lossy(&out.stdout).to_string();
    msg.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), msg)
}
