//! `probe --once` output: a table for people, a stable JSON document for scripts, and the
//! Nagios exit code.

use std::fmt::Write as _;

use serde::Serialize;

use crate::outcome::ProbeOutcome;
use crate::policy::{Status, Verdict};
use crate::text::{escape_control, term};

/// JSON document schema version (bump on incompatible changes; see docs/json-output.md).
pub const JSON_VERSION: u32 = 2;

/// Overall status: the worst of every outcome (and pool verdict).
pub fn overall_status(outcomes: &[ProbeOutcome], pools: &[PoolSummary]) -> Status {
    overall_status_of(outcomes.iter(), pools)
}

fn overall_status_of<'a>(
    outcomes: impl ExactSizeIterator<Item = &'a ProbeOutcome>,
    pools: &[PoolSummary],
) -> Status {
    let mut s = if outcomes.len() == 0 {
        Status::Unknown
    } else {
        Status::Ok
    };
    for o in outcomes {
        s = s.worst(o.evaluation.status);
        if let Some(r) = &o.oauth {
            s = s.worst(r.status);
        }
    }
    for p in pools {
        if !p.consistent {
            s = s.worst(p.status);
        }
    }
    s
}

/// Pool consistency result shown in reports.
#[derive(Debug, Clone, Serialize)]
pub struct PoolSummary {
    pub pool: String,
    pub consistent: bool,
    pub status: Status,
    pub detail: String,
}

#[derive(Serialize)]
struct JsonDoc<'a> {
    version: u32,
    generated_at: String,
    evaluated_at: String,
    status: Status,
    exit_code: u8,
    results: Vec<JsonResult<'a>>,
    pools: &'a [PoolSummary],
}

#[derive(Serialize)]
struct JsonResult<'a> {
    endpoint: &'a str,
    host: &'a str,
    port: u16,
    address: &'a str,
    profile: &'a str,
    pool: Option<&'a str>,
    labels: &'a std::collections::BTreeMap<String, String>,
    status: Status,
    capture: &'a crate::probe::Capture,
    chain: Option<&'a [crate::chain::CertFacts]>,
    report: Option<ReportView<'a>>,
    evaluation: &'a crate::policy::Evaluation,
    client_cert_not_after: Option<i64>,
    finished_at: f64,
    /// The OAuth metadata document (`oauth_metadata`), when fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    oauth: Option<&'a crate::oauth::OAuthReport>,
}

/// A [`ChainReport`](crate::chain::ChainReport) as a result shows it: every field but `certs`,
/// which the result already carries as `chain` (it was 30 % of the document, printed twice).
/// `inspect` prints the whole report, `certs` included.
#[derive(Serialize)]
struct ReportView<'a> {
    parse_errors: &'a [(usize, String)],
    stores: &'a [crate::chain::StoreVerdict],
    hostname: Option<&'a crate::chain::HostnameMatch>,
    hygiene: &'a crate::chain::Hygiene,
    issuer_class: crate::chain::IssuerClass,
    adcs_detected: bool,
    inferences: &'a [String],
    weak_hash_on_path: bool,
    best_path_not_after: Option<i64>,
    anchor: Option<&'a crate::chain::CertFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aia: Option<&'a crate::revocation::aia::AiaReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation: Option<&'a crate::revocation::RevocationReport>,
}

impl<'a> From<&'a crate::chain::ChainReport> for ReportView<'a> {
    fn from(r: &'a crate::chain::ChainReport) -> Self {
        let crate::chain::ChainReport {
            certs: _,
            parse_errors,
            stores,
            hostname,
            hygiene,
            issuer_class,
            adcs_detected,
            inferences,
            weak_hash_on_path,
            best_path_not_after,
            anchor,
            aia,
            revocation,
        } = r;
        Self {
            parse_errors,
            stores,
            hostname: hostname.as_ref(),
            hygiene,
            issuer_class: *issuer_class,
            adcs_detected: *adcs_detected,
            inferences,
            weak_hash_on_path: *weak_hash_on_path,
            best_path_not_after: *best_path_not_after,
            anchor: anchor.as_ref(),
            aia: aia.as_ref(),
            revocation: revocation.as_ref(),
        }
    }
}

use crate::chain::fmt_time as rfc3339;

fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), t.month() as u8, t.day()))
        .unwrap_or_else(|_| unix.to_string())
}

/// Render the JSON document.
pub fn render_json(
    outcomes: &[ProbeOutcome],
    pools: &[PoolSummary],
    now: i64,
    generated: i64,
) -> String {
    let mut buf = Vec::new();
    if let Err(e) = write_json(&mut buf, outcomes, pools, now, generated) {
        return format!("{{\"error\":\"{e}\"}}\n");
    }
    String::from_utf8(buf).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}\n"))
}

/// [`render_json`] streamed into `w` (same bytes): `probe --once` writes straight to stdout
/// instead of building the whole document (about 14 KB per result) in memory first.
pub fn write_json<W: std::io::Write>(
    w: W,
    outcomes: &[ProbeOutcome],
    pools: &[PoolSummary],
    now: i64,
    generated: i64,
) -> std::io::Result<()> {
    let refs: Vec<&ProbeOutcome> = outcomes.iter().collect();
    write_json_refs(w, &refs, pools, now, generated)
}

/// [`write_json`] over borrowed outcomes (the status page's `?format=json` serves outcomes it
/// shares with the board, without copying them).
pub fn write_json_refs<W: std::io::Write>(
    mut w: W,
    outcomes: &[&ProbeOutcome],
    pools: &[PoolSummary],
    now: i64,
    generated: i64,
) -> std::io::Result<()> {
    let status = overall_status_of(outcomes.iter().copied(), pools);
    let doc = JsonDoc {
        version: JSON_VERSION,
        generated_at: rfc3339(generated),
        evaluated_at: rfc3339(now),
        status,
        exit_code: status.exit_code(),
        results: outcomes
            .iter()
            .map(|o| JsonResult {
                endpoint: &o.target.endpoint,
                host: &o.target.host,
                port: o.target.port,
                address: &o.address,
                profile: &o.target.profile,
                pool: o.target.pool.as_deref(),
                labels: &o.target.labels,
                status: o.evaluation.status,
                capture: &o.capture,
                chain: o.report.as_ref().map(|r| r.certs.as_slice()),
                report: o.report.as_deref().map(ReportView::from),
                evaluation: &o.evaluation,
                client_cert_not_after: o.client_cert_not_after,
                finished_at: o.finished_at,
                oauth: o.oauth.as_deref(),
            })
            .collect(),
        pools,
    };
    serde_json::to_writer_pretty(&mut w, &doc)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// Render the human table: one row per (endpoint, address), then details for anything not OK.
pub fn render_table(
    outcomes: &[ProbeOutcome],
    pools: &[PoolSummary],
    now: i64,
    verbose: bool,
) -> String {
    let mut rows: Vec<[String; 9]> = vec![[
        "STATUS".into(),
        "ENDPOINT".into(),
        "ADDRESS".into(),
        "TLS".into(),
        "SUBJECT".into(),
        "ISSUER".into(),
        "NOT AFTER".into(),
        "DAYS".into(),
        "REASON".into(),
    ]];
    for o in outcomes {
        let leaf = o.report.as_ref().and_then(|r| r.leaf());
        let days = leaf.map(|l| (l.not_after - now).div_euclid(86400));
        rows.push([
            o.evaluation.status.human().to_string(),
            o.target.endpoint.clone(),
            // `127.0.0.1:443/rsa` for one certificate of a dual-certificate server.
            o.series_key.clone(),
            o.capture
                .tls_version
                .map_or("-", |v| v.as_str())
                .to_string(),
            leaf.map(|l| l.subject_cn.clone().unwrap_or_else(|| l.subject.clone()))
                .unwrap_or_else(|| "-".into()),
            leaf.map(|l| l.issuer_cn.clone().unwrap_or_else(|| l.issuer.clone()))
                .unwrap_or_else(|| "-".into()),
            leaf.map(|l| date(l.not_after))
                .unwrap_or_else(|| "-".into()),
            days.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
            o.capture
                .failure
                .as_ref()
                .map(|f| match &f.alert {
                    Some(a) => format!("{}({a})", f.reason),
                    None => f.reason.to_string(),
                })
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    let mut widths = [0usize; 9];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(escape_control(cell).chars().count().min(40));
        }
    }
    let mut out = String::new();
    for (ri, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            // Cells come from servers and certificates: control characters shown escaped.
            let cell = escape_control(cell);
            let cell: String = if cell.chars().count() > 40 {
                cell.chars().take(39).chain(std::iter::once('…')).collect()
            } else {
                cell.into_owned()
            };
            if i + 1 == r.len() {
                line.push_str(&cell);
            } else {
                let _ = write!(line, "{:<w$}  ", cell, w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if ri == 0 {
            continue;
        }
        let o = &outcomes[ri - 1];
        let oauth_ok = o.oauth.as_ref().is_none_or(|r| r.status == Status::Ok);
        if o.evaluation.status == Status::Ok && oauth_ok && !verbose {
            continue;
        }
        details(&mut out, o);
    }
    for p in pools {
        let _ = writeln!(
            out,
            "pool {}: {} ({})",
            term(&p.pool),
            if p.consistent {
                "consistent"
            } else {
                "INCONSISTENT"
            },
            term(&p.detail)
        );
    }
    let status = overall_status(outcomes, pools);
    let count = |s: Status| outcomes.iter().filter(|o| o.evaluation.status == s).count();
    let _ = writeln!(
        out,
        "{}: {} probed, {} ok, {} warning, {} critical, {} unknown",
        status.human(),
        outcomes.len(),
        count(Status::Ok),
        count(Status::Warning),
        count(Status::Critical),
        count(Status::Unknown)
    );
    out
}

/// The negotiated TLS parameters in one line: version, suite, key-exchange group, the server's
/// signature scheme, ALPN and whether an OCSP response was stapled. None before a ServerHello.
pub fn tls_line(c: &crate::probe::Capture) -> Option<String> {
    let v = c.tls_version?.as_str();
    let mut parts = vec![format!("{v} {}", c.cipher_suite.as_deref().unwrap_or("-"))];
    if let Some(g) = &c.kx_group {
        parts.push(format!("group {g}"));
    }
    if let Some(s) = &c.signature_scheme {
        parts.push(format!("signature {s}"));
    }
    if let Some(a) = &c.alpn {
        parts.push(format!("ALPN {a}"));
    }
    if c.legacy.is_none() {
        parts.push(match c.ocsp_staple_bytes {
            Some(n) => format!("OCSP staple {n} bytes"),
            None => "no OCSP staple".into(),
        });
    }
    Some(parts.join(", "))
}

fn details(out: &mut String, o: &ProbeOutcome) {
    let pad = "    ";
    if let Some(f) = &o.capture.failure {
        let _ = writeln!(out, "{pad}failure: {} — {}", f.reason, term(&f.detail));
    }
    if let Some(line) = tls_line(&o.capture) {
        let _ = writeln!(out, "{pad}tls: {line}");
    }
    if let Some(l) = &o.capture.legacy {
        let _ = writeln!(
            out,
            "{pad}legacy handshake: {} {}",
            l.version.as_str(),
            l.cipher_suite
        );
    }
    if let Some(r) = &o.report {
        let trust: Vec<String> = r
            .stores
            .iter()
            .map(|s| {
                if s.verified {
                    format!(
                        "{}=verified{}",
                        s.store,
                        if s.legacy_algorithms {
                            "(legacy-alg)"
                        } else {
                            ""
                        }
                    )
                } else {
                    format!("{}={}", s.store, error_name(s.error))
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "{pad}trust: {}  issuer class: {:?}",
            trust.join(" "),
            r.issuer_class
        );
        if let Some(leaf) = r.leaf() {
            let mut sans = leaf.san_dns.clone();
            sans.extend(leaf.san_ip.iter().cloned());
            let _ = writeln!(
                out,
                "{pad}SAN: {}",
                if sans.is_empty() {
                    "(none)".into()
                } else {
                    escape_control(&sans.join(", ")).into_owned()
                }
            );
        }
    }
    if let Some(rev) = o.report.as_ref().and_then(|r| r.revocation.as_ref()) {
        for c in &rev.certs {
            let _ = writeln!(
                out,
                "{pad}revocation [{}]: {} ({}) — {}{}",
                c.position,
                c.status.as_str(),
                c.method.as_str(),
                c.detail,
                match (c.staple_status, c.staple_error) {
                    (Some(st), _) => format!("; OCSP staple: {}", st.as_str()),
                    (None, Some(e)) => format!("; OCSP staple not usable: {}", e.as_str()),
                    _ => String::new(),
                }
            );
        }
    }
    if let Some(m) = o.capture.mtls_enforced {
        let _ = writeln!(
            out,
            "{pad}mtls enforced: {}",
            if m {
                "yes"
            } else {
                "NO (server accepted a client without certificate)"
            }
        );
    }
    for v in &o.evaluation.verdicts {
        let tag = match v.verdict {
            Verdict::Fail => "FAIL",
            Verdict::Warn => "WARN",
            _ => continue,
        };
        let _ = writeln!(out, "{pad}{tag} {}: {}", v.rule, term(&v.message));
    }
    for i in &o.evaluation.info {
        let _ = writeln!(out, "{pad}info: {}", term(i));
    }
    if let Some(r) = &o.oauth {
        oauth_details(out, r);
    }
}

/// The OAuth metadata lines of a table row: the document's status, each certificate, and every
/// finding that did not pass (info findings included). Certificate strings are escaped.
fn oauth_details(out: &mut String, r: &crate::oauth::OAuthReport) {
    let pad = "    ";
    let _ = writeln!(
        out,
        "{pad}oauth: {} (profile {}): {}",
        term(&r.url),
        term(&r.profile),
        r.status.human()
    );
    if let Some(f) = &r.failure {
        let _ = writeln!(
            out,
            "{pad}oauth failure: {} — {}",
            f.reason.as_str(),
            term(&f.detail)
        );
    }
    let findings = |out: &mut String, verdicts: &[crate::policy::RuleVerdict], at: &str| {
        for v in verdicts {
            let tag = match v.verdict {
                Verdict::Fail => "FAIL",
                Verdict::Warn => "WARN",
                Verdict::Pass if v.message.starts_with("(info) ") => "INFO",
                _ => continue,
            };
            let _ = writeln!(out, "{pad}oauth{at} {tag} {}: {}", v.rule, term(&v.message));
        }
    };
    for c in &r.certs {
        let l = &c.cert;
        let _ = writeln!(
            out,
            "{pad}oauth [{}]: {}  issuer {}  {}  not after {}  sha256 {}",
            c.position,
            term(&crate::policy::cert_label(l)),
            term(l.issuer_cn.as_deref().unwrap_or(&l.issuer)),
            term(&l.key.to_string()),
            date(l.not_after),
            &l.fingerprint_sha256[..l.fingerprint_sha256.len().min(16)],
        );
        findings(out, &c.evaluation.verdicts, &format!(" [{}]", c.position));
    }
    findings(out, &r.verdicts, "");
}

/// `inspect` output: every certificate of the chain with its facts.
pub fn render_chain(o: &ProbeOutcome) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} ({})", term(&o.target.endpoint), o.series_key);
    if let Some(f) = &o.capture.failure {
        let _ = writeln!(out, "  failure: {} — {}", f.reason, term(&f.detail));
    }
    if let Some(line) = tls_line(&o.capture) {
        let _ = writeln!(out, "  tls: {line}");
    }
    let Some(r) = &o.report else {
        let _ = writeln!(out, "  no certificate captured");
        return out;
    };
    for (i, c) in r.certs.iter().enumerate() {
        let _ = writeln!(out, "  [{i}] subject: {}", term(&c.subject));
        let _ = writeln!(out, "      issuer:  {}", term(&c.issuer));
        let _ = writeln!(out, "      serial:  {}", term(&c.serial));
        let _ = writeln!(out, "      sha256:  {}", c.fingerprint_sha256);
        let _ = writeln!(
            out,
            "      valid:   {} .. {}",
            rfc3339(c.not_before),
            rfc3339(c.not_after)
        );
        let _ = writeln!(out, "      key:     {}", c.key);
        let _ = writeln!(
            out,
            "      sig:     {} ({})",
            c.signature_algorithm,
            c.signature_hash.as_str()
        );
        if !c.san_dns.is_empty() || !c.san_ip.is_empty() {
            let mut s = c.san_dns.clone();
            s.extend(c.san_ip.iter().cloned());
            let _ = writeln!(out, "      SAN:     {}", term(&s.join(", ")));
        }
        if c.has_eku {
            let _ = writeln!(
                out,
                "      EKU:     {}{}",
                c.eku.join(", "),
                if c.eku_critical { " (critical)" } else { "" }
            );
        }
        if c.has_key_usage {
            let _ = writeln!(
                out,
                "      KU:      {}{}",
                c.key_usage.join(", "),
                if c.key_usage_critical {
                    " (critical)"
                } else {
                    ""
                }
            );
        }
        if c.is_ca {
            let _ = writeln!(
                out,
                "      CA:      yes{}",
                c.path_len
                    .map(|p| format!(", pathlen {p}"))
                    .unwrap_or_default()
            );
        }
        for u in &c.crl_distribution_points {
            let _ = writeln!(out, "      CDP:     {}", term(u));
        }
        for u in &c.ocsp_urls {
            let _ = writeln!(out, "      OCSP:    {}", term(u));
        }
        if c.adcs.any() {
            let _ = writeln!(
                out,
                "      AD CS:   {}",
                serde_json::to_string(&c.adcs).unwrap_or_default()
            );
        }
    }
    for (p, e) in &r.parse_errors {
        let _ = writeln!(out, "  [{p}] unparseable: {}", term(&e.to_string()));
    }
    for s in &r.stores {
        let _ = writeln!(
            out,
            "  store {}: {}",
            s.store,
            if s.verified {
                "verified".to_string()
            } else {
                format!(
                    "{} ({})",
                    error_name(s.error),
                    term(s.detail.as_deref().unwrap_or("no detail"))
                )
            }
        );
    }
    if let Some(h) = &r.hostname {
        let _ = writeln!(
            out,
            "  hostname {}: {}",
            term(&h.name),
            if h.matched { "match" } else { "MISMATCH" }
        );
    }
    for i in &r.inferences {
        let _ = writeln!(out, "  info: {}", term(&i.to_string()));
    }
    out
}

/// The snake_case name of a store's verification error (the label value), or `unverified`.
fn error_name(e: Option<crate::chain::VerifyErrorKind>) -> &'static str {
    e.map_or("unverified", |e| e.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_view_is_the_chain_report_without_certs() {
        let report = crate::chain::analyze(
            &[],
            None,
            &crate::chain::TrustStores::default(),
            rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::ZERO),
        );
        let mut whole = serde_json::to_value(&report).unwrap();
        assert!(whole.as_object_mut().unwrap().remove("certs").is_some());
        let view = serde_json::to_value(ReportView::from(&report)).unwrap();
        assert_eq!(view, whole);
    }
}
