//! Outcome -> series: one [`TargetSeries`] per (endpoint, address), built once when an outcome
//! is recorded.

use super::*;

/// All series of one (endpoint, address), encoded once when its outcome is recorded, in a
/// compact form: the label set every series of the target shares is stored once, and each
/// sample only as the rest of its line. A scrape writes `certprobe_<family>` + `base` + each
/// line; nothing is re-encoded. Gauge sample lines are identical in the text format 0.0.4 and
/// in OpenMetrics, so the same text serves both.
#[derive(Debug, Clone)]
pub(super) struct TargetSeries {
    /// `{endpoint="…",address="…",role="…",pool="…"` and the configured labels, escaped; no
    /// closing brace.
    pub(super) base: Box<str>,
    /// The rest of each sample line (`,phase="connect"} 0.00012\n`, or `} 1\n`), grouped by
    /// family in family order.
    pub(super) tails: Box<str>,
    /// `tails[offsets[f]..offsets[f + 1]]` are the lines of family `f`.
    pub(super) offsets: [u32; NFAM + 1],
    /// Leaf fingerprint and the time it was first seen (leaf_changed state).
    pub(super) leaf: Option<(Box<str>, f64)>,
    /// When the certificate facts on display were observed (None: no chain seen yet).
    pub(super) cert_time: Option<f64>,
}

impl TargetSeries {
    pub(super) fn family(&self, f: usize) -> &str {
        &self.tails[self.offsets[f] as usize..self.offsets[f + 1] as usize]
    }
}

/// `s` cut to at most [`MAX_LABEL_VALUE`] bytes, on a character boundary.
pub(super) fn truncated(s: &str) -> &str {
    if s.len() <= MAX_LABEL_VALUE {
        return s;
    }
    let mut end = MAX_LABEL_VALUE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A bounded, label-safe key-exchange group name (`X25519`, `secp256r1`, `ffdhe2048`,
/// `X25519MLKEM768`): `[A-Za-z0-9_-]`, <= 32 chars; anything else, and unnamed code points (`0x…`), become
/// `other`.
pub(super) fn group_token(s: &str) -> &str {
    // A code point rustls has no name for arrives as `0x…`: peer-chosen, so not a label.
    if !s.is_empty()
        && !s.starts_with("0x")
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        s
    } else {
        "other"
    }
}

/// A bounded, label-safe token from peer-supplied text (alert names): `[a-z0-9_]`, <= 48 chars,
/// anything else becomes `other`.
pub(super) fn token(s: &str) -> &str {
    if !s.is_empty()
        && s.len() <= 48
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        s
    } else {
        "other"
    }
}

pub(super) fn key_labels(k: &KeyAlgorithm) -> (&'static str, String) {
    match k {
        KeyAlgorithm::Rsa { bits } => ("rsa", bits.to_string()),
        KeyAlgorithm::Ec { bits, .. } => ("ec", bits.to_string()),
        KeyAlgorithm::Ed25519 => ("ed25519", "256".to_string()),
        KeyAlgorithm::Ed448 => ("ed448", "456".to_string()),
        KeyAlgorithm::Other { .. } => ("other", String::new()),
    }
}

/// `{endpoint="…",address="…",role="…",pool="…"` plus the configured labels (keys sorted),
/// escaped, without the closing brace.
pub(super) fn base_text(o: &ProbeOutcome) -> Box<str> {
    let t = &o.target;
    let mut base = String::with_capacity(96);
    base.push('{');
    push_label(&mut base, "endpoint", &t.endpoint);
    base.push(',');
    push_label(&mut base, "address", &o.address);
    if let Some(k) = o.capture.key_type {
        // Only for an address probed per key type: a single-certificate server's series keep
        // their label set.
        base.push(',');
        push_label(&mut base, "key_type", k.as_str());
    }
    if let Some(st) = t.starttls {
        // Only where set: implicit-TLS targets keep their label set.
        base.push(',');
        push_label(&mut base, "starttls", st.as_str());
    }
    base.push(',');
    push_label(&mut base, "role", &t.profile);
    base.push(',');
    push_label(&mut base, "pool", t.pool.as_deref().unwrap_or(""));
    for (k, v) in &t.labels {
        if is_allowed_endpoint_label(k) {
            base.push(',');
            push_label(&mut base, k, v);
        } else {
            tracing::debug!(label = %k, endpoint = %t.endpoint, "configured label dropped: reserved or invalid name");
        }
    }
    base.into_boxed_str()
}

/// Build the series of one outcome. `prev` supplies leaf-change history and the last
/// certificate facts for outcomes without a chain.
pub(super) fn build_series(o: &ProbeOutcome, prev: Option<&TargetSeries>) -> TargetSeries {
    let mut l = Lines::new();
    let c = &o.capture;
    let b = |v: bool| Value::Int(i64::from(v));
    // `detail: full` exports today's every family; `default` keeps the series budget
    // (docs/metrics.md "Series budget"): the leaf only, non-passing findings only, and 0/1
    // gauges only when they show a problem.
    let full = o.target.metrics_detail == MetricsDetail::Full;
    // A 0/1 gauge whose `bad` value is a problem: both values in full, only the problem in
    // default.
    let flag = |l: &mut Lines, fam: Fam, v: bool, bad: bool| {
        if full || v == bad {
            l.push(fam, &[], b(v));
        }
    };

    l.push(Fam::ProbeSuccess, &[], b(c.succeeded()));
    let connect = c.connect_duration.map(|d| d.as_secs_f64());
    let handshake = c.handshake_duration.map(|d| d.as_secs_f64());
    if let Some(v) = connect.filter(|_| full) {
        l.push(Fam::ProbeDuration, &[("phase", "connect")], Value::Float(v));
    }
    if let Some(v) = handshake.filter(|_| full) {
        l.push(
            Fam::ProbeDuration,
            &[("phase", "handshake")],
            Value::Float(v),
        );
    }
    if full && (connect.is_some() || handshake.is_some()) {
        let total = connect.unwrap_or(0.0) + handshake.unwrap_or(0.0);
        l.push(
            Fam::ProbeDuration,
            &[("phase", "total")],
            Value::Float(total),
        );
    }
    if let Some(f) = &c.failure {
        let alert = f.alert.as_deref().map(token).unwrap_or("");
        l.push(
            Fam::ProbeFailure,
            &[("reason", f.reason.as_str()), ("alert", alert)],
            Value::Int(1),
        );
    }
    l.push(Fam::LastProbe, &[], Value::Float(o.finished_at));

    let version = c.tls_version.or(c.legacy.as_ref().map(|l| l.version));
    let cipher = c
        .cipher_suite
        .as_deref()
        .or(c.legacy.as_ref().map(|l| l.cipher_suite.as_str()));
    if full {
        if let Some(v) = version {
            l.push(Fam::TlsVersion, &[("version", v.as_str())], Value::Int(1));
        }
        if let Some(v) = cipher {
            l.push(Fam::TlsCipher, &[("cipher", v)], Value::Int(1));
        }
    }
    if version.is_some() || cipher.is_some() {
        let group = c.kx_group.as_deref().map(group_token).unwrap_or("");
        l.push(
            Fam::TlsInfo,
            &[
                ("version", version.map(|v| v.as_str()).unwrap_or("")),
                ("cipher", truncated(cipher.unwrap_or(""))),
                ("group", group),
            ],
            Value::Int(1),
        );
    }
    if version.is_some() || c.legacy.is_some() {
        // By the version spoken: a legacy capture can also come back with TLS 1.2 (a server
        // without rustls' cipher suites, or one that drops TLS 1.3 ClientHellos).
        let legacy = version.is_some_and(crate::vocab::TlsVersion::is_legacy);
        flag(&mut l, Fam::LegacyTls, legacy, true);
    }
    match &c.handshake_signature {
        HandshakeSignature::Verified => flag(&mut l, Fam::HandshakeSignatureWeak, false, true),
        HandshakeSignature::WeakKeyNotVerified(_) | HandshakeSignature::Unverifiable(_) => {
            flag(&mut l, Fam::HandshakeSignatureWeak, true, true)
        }
        HandshakeSignature::NotChecked => {}
    }

    let mut cert_time = None;
    if let Some(r) = &o.report {
        // A report carried over from an earlier probe (`report_from`) is as old as that probe.
        cert_time = Some(o.report_from.unwrap_or(o.finished_at));
        // Presented positions: certs are in order with unparseable positions left out.
        let mut pos = 0usize;
        for cert in &r.certs {
            while r.parse_errors.iter().any(|(p, _)| *p == pos) {
                pos += 1;
            }
            if !full && pos > 0 {
                // Default detail: the leaf only (the path's earliest expiry is chain_expiry).
                break;
            }
            let mut pbuf = itoa::Buffer::new();
            let p = pbuf.format(pos);
            l.push(
                Fam::CertNotAfter,
                &[("position", p)],
                Value::Int(cert.not_after),
            );
            // Default detail: the leaf's notBefore only while it is not yet valid (the
            // CertprobeCertNotYetValid alert), judged at the probe's time.
            if full || (cert.not_before as f64) > o.finished_at {
                l.push(
                    Fam::CertNotBefore,
                    &[("position", p)],
                    Value::Int(cert.not_before),
                );
            }
            let (key_alg, key_bits) = key_labels(&cert.key);
            l.push(
                Fam::CertInfo,
                &[
                    ("position", p),
                    ("subject_cn", cert.subject_cn.as_deref().unwrap_or("")),
                    ("issuer_cn", cert.issuer_cn.as_deref().unwrap_or("")),
                    ("serial", &cert.serial),
                    ("fingerprint_sha256", &cert.fingerprint_sha256),
                    ("signature_algorithm", &cert.signature_algorithm),
                    ("key_algorithm", key_alg),
                    ("key_bits", &key_bits),
                ],
                Value::Int(1),
            );
            pos += 1;
        }
        for st in &r.stores {
            l.push(Fam::ChainVerified, &[("store", &st.store)], b(st.verified));
            if !st.verified {
                if let Some(e) = st.error {
                    l.push(
                        Fam::ChainVerifyError,
                        &[("store", &st.store), ("error", e.as_str())],
                        Value::Int(1),
                    );
                }
            }
        }
        if let Some(t) = r.best_path_not_after {
            l.push(Fam::ChainExpiry, &[], Value::Int(t));
        }
        if !r.certs.is_empty() {
            if full {
                l.push(Fam::ChainOrderValid, &[], b(r.hygiene.order_valid));
                l.push(Fam::ChainComplete, &[], b(r.hygiene.complete));
                l.push(Fam::ChainRootSent, &[], b(r.hygiene.root_sent));
                l.push(Fam::ChainWeakHash, &[], b(r.weak_hash_on_path));
            }
            for (problem, has) in [
                (ChainProblem::OrderInvalid, !r.hygiene.order_valid),
                (ChainProblem::Incomplete, !r.hygiene.complete),
                (ChainProblem::RootSent, r.hygiene.root_sent),
                (ChainProblem::WeakSignatureHash, r.weak_hash_on_path),
            ] {
                if has {
                    l.push(
                        Fam::ChainProblem,
                        &[("problem", problem.as_str())],
                        Value::Int(1),
                    );
                }
            }
        }
        if let Some(h) = &r.hostname {
            flag(&mut l, Fam::HostnameMatch, h.matched, false);
        }
        let t = cert_time.unwrap_or(0.0);
        // Default detail: only when the facts are older than this probe.
        if full || t < o.finished_at {
            l.push(Fam::CertFactsTimestamp, &[], Value::Float(t));
        }
    } else if let Some(p) = prev.filter(|p| p.cert_time.is_some()) {
        // Keep the last certificate facts visible when this probe captured no chain; they are
        // older than this probe now, so their timestamp is shown in either detail.
        cert_time = p.cert_time;
        for f in CERT_FAMS {
            if f != Fam::CertFactsTimestamp as usize {
                l.fams[f].push_str(p.family(f));
            }
        }
        l.push(
            Fam::CertFactsTimestamp,
            &[],
            Value::Float(cert_time.unwrap_or(0.0)),
        );
    }

    l.push(
        Fam::PolicyStatus,
        &[],
        Value::Int(i64::from(o.evaluation.status.exit_code())),
    );
    for v in &o.evaluation.verdicts {
        // `severity` is what this result means: a fail-severity rule whose finding is only
        // advisory (e.g. SHA-1 in a rule's `warn` list) reports `warn`, so alerts can route on
        // the label alone. Passing rules carry their configured severity.
        // Default detail: only the rules that did not pass.
        let (failed, severity) = match v.verdict {
            Verdict::Fail => (1, "fail"),
            Verdict::Warn => (1, "warn"),
            Verdict::Pass if full => (0, v.severity.as_str()),
            Verdict::Pass | Verdict::NotApplicable => continue,
        };
        l.push(
            Fam::PolicyRuleFailed,
            &[
                ("profile", &o.evaluation.profile),
                ("rule", v.rule.as_str()),
                ("severity", severity),
            ],
            Value::Int(failed),
        );
    }
    let ca = &c.client_auth;
    if c.failure.is_none() || !c.chain.is_empty() || o.report.is_some() {
        // Not a problem either way; default detail shows only that a server asked.
        flag(&mut l, Fam::ClientAuthRequested, ca.requested, true);
    }
    if let Some(a) = ca.accepted {
        l.push(Fam::ClientCertAccepted, &[], b(a));
    }
    if let Some(t) = o.client_cert_not_after {
        l.push(Fam::ClientCertNotAfter, &[], Value::Int(t));
    }
    if let Some(m) = c.mtls_enforced {
        l.push(Fam::MtlsEnforced, &[], b(m));
    }

    // Leaf change tracking.
    let leaf = match (o.leaf_fingerprint(), prev.and_then(|p| p.leaf.as_ref())) {
        (Some(fp), Some((old, since))) if **old == *fp => Some((old.clone(), *since)),
        (Some(fp), _) => Some((Box::from(fp), o.report_from.unwrap_or(o.finished_at))),
        (None, old) => old.cloned(),
    };
    if let Some((_, since)) = &leaf {
        l.push(Fam::LeafChanged, &[], Value::Float(*since));
    }
    // Revocation: series only for certificates whose status is not good (a healthy chain adds
    // none to the per-address budget).
    if let Some(rev) = o.report.as_ref().and_then(|r| r.revocation.as_ref()) {
        use crate::revocation::Status as R;
        for cr in &rev.certs {
            let level = match cr.status {
                R::Good => continue,
                R::Unknown => 1,
                R::Unavailable => 2,
                R::Revoked => 3,
            };
            let pos = cr.position.to_string();
            if cr.status == R::Revoked {
                l.push(Fam::CertRevoked, &[("position", &pos)], Value::Int(1));
            }
            l.push(
                Fam::RevocationStatus,
                &[("position", &pos), ("method", cr.method.as_str())],
                Value::Int(level),
            );
        }
    }

    if let Some(r) = o.oauth.as_deref() {
        oauth_series(&mut l, r, full);
    }

    let (tails, offsets) = l.finish();
    TargetSeries {
        base: base_text(o),
        tails,
        offsets,
        leaf,
        cert_time,
    }
}

/// The OAuth metadata of an address (src/oauth.rs), sparse: per published certificate its
/// notAfter and an info series (`source="oauth_metadata"`, `position` = index in `keys[]`), its
/// non-passing rules, and the document-level ones (`position=""`); the failure reason only
/// while the fetch fails.
fn oauth_series(l: &mut Lines, r: &crate::oauth::OAuthReport, full: bool) {
    const SOURCE: (&str, &str) = ("source", "oauth_metadata");
    if let Some(f) = &r.failure {
        l.push(
            Fam::OAuthMetadataFailure,
            &[SOURCE, ("reason", f.reason.as_str())],
            Value::Int(1),
        );
    }
    let rule_line = |l: &mut Lines, v: &crate::policy::RuleVerdict, profile: &str, pos: &str| {
        let (failed, severity) = match v.verdict {
            Verdict::Fail => (1, "fail"),
            Verdict::Warn => (1, "warn"),
            Verdict::Pass if full => (0, v.severity.as_str()),
            Verdict::Pass | Verdict::NotApplicable => return,
        };
        l.push(
            Fam::PolicyRuleFailed,
            &[
                SOURCE,
                ("position", pos),
                ("profile", profile),
                ("rule", v.rule.as_str()),
                ("severity", severity),
            ],
            Value::Int(failed),
        );
    };
    for c in &r.certs {
        let mut pbuf = itoa::Buffer::new();
        let p = pbuf.format(c.position);
        let cert = &c.cert;
        l.push(
            Fam::CertNotAfter,
            &[SOURCE, ("position", p)],
            Value::Int(cert.not_after),
        );
        let (key_alg, key_bits) = key_labels(&cert.key);
        l.push(
            Fam::CertInfo,
            &[
                SOURCE,
                ("position", p),
                ("subject_cn", cert.subject_cn.as_deref().unwrap_or("")),
                ("issuer_cn", cert.issuer_cn.as_deref().unwrap_or("")),
                ("serial", &cert.serial),
                ("fingerprint_sha256", &cert.fingerprint_sha256),
                ("signature_algorithm", &cert.signature_algorithm),
                ("key_algorithm", key_alg),
                ("key_bits", &key_bits),
            ],
            Value::Int(1),
        );
        for v in &c.evaluation.verdicts {
            rule_line(l, v, &r.profile, p);
        }
    }
    for v in &r.verdicts {
        rule_line(l, v, &r.profile, "");
    }
}
