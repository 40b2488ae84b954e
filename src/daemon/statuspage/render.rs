//! HTML of the status page: pure functions of (outcomes, pools, history, query, now). No clock,
//! no I/O: the HTTP handlers pass the board's snapshot and the time in.
//!
//! Every string that comes from a certificate, a server, or the config goes through [`esc`]
//! (HTML text and double-quoted attribute values alike); URLs built from names go through
//! [`pct`] first. The page carries no inline script, style or event handler (the CSP forbids
//! them): behaviour is in `static/app.js`, looks in `static/app.css`.
//!
//! Size: about 910 lines, the fleet table, the endpoint page and their JSON views side by side,
//! because they share the escaping helpers and the row builder; the tests are in `tests.rs`.

use std::fmt::Write as _;
use std::sync::Arc;

use super::{Change, EndpointView, HistoryEvent};
use crate::chain::fmt_time;
use crate::outcome::ProbeOutcome;
use crate::policy::{Status, Verdict};
use crate::report::PoolSummary;

/// `s` for HTML text or a double-quoted attribute value: `& < > " '` as entities, control and
/// bidi characters shown escaped (`\x1b`, `\u{202e}`) as on the terminal.
pub fn esc(s: &str) -> String {
    let s = crate::text::escape_control(s);
    let mut out = String::with_capacity(s.len() + 8);
    push_esc(&mut out, &s);
    out
}

fn push_esc(out: &mut String, s: &str) {
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&s[last..]);
}

/// [`esc`] appended to `out` (no intermediate string when nothing needs escaping).
fn put(out: &mut String, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == 0x7f || b >= 0x80) {
        push_esc(out, &crate::text::escape_control(s));
    } else {
        push_esc(out, s);
    }
}

/// Percent-encoding of a path segment or query value: everything but `A-Z a-z 0-9 - . _ ~`.
pub fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Worst first: critical, unknown, warning, ok.
pub fn severity_rank(s: Status) -> u8 {
    match s {
        Status::Critical => 3,
        Status::Unknown => 2,
        Status::Warning => 1,
        Status::Ok => 0,
    }
}

/// The fleet table's query: filter terms and page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetQuery {
    /// Space-separated terms; a row is shown when each term is a substring (case-insensitive) of
    /// its endpoint, address, role, pool, status, failure reason or a failing rule.
    pub q: String,
    /// 1-based.
    pub page: usize,
    pub page_size: usize,
}

impl Default for FleetQuery {
    fn default() -> Self {
        Self {
            q: String::new(),
            page: 1,
            page_size: super::DEFAULT_PAGE_SIZE,
        }
    }
}

/// notAfter of the earliest-expiring certificate of the best verified path, else of the leaf.
pub fn expiry(o: &ProbeOutcome) -> Option<i64> {
    let r = o.report.as_ref()?;
    r.best_path_not_after
        .or_else(|| r.leaf().map(|l| l.not_after))
}

fn days_left(not_after: i64, now: f64) -> f64 {
    (not_after as f64 - now) / 86400.0
}

fn reason(o: &ProbeOutcome) -> Option<String> {
    o.capture.failure.as_ref().map(|f| match &f.alert {
        Some(a) => format!("{}({a})", f.reason),
        None => f.reason.to_string(),
    })
}

fn failing(o: &ProbeOutcome) -> impl Iterator<Item = (&'static str, Verdict)> + '_ {
    o.evaluation.failing().map(|v| (v.rule.as_str(), v.verdict))
}

/// The lower-cased text the filter searches (also the row's `data-filter` for app.js).
pub fn filter_text(o: &ProbeOutcome) -> String {
    let mut s = String::with_capacity(96);
    s.push_str(&o.target.endpoint);
    s.push(' ');
    s.push_str(&o.series_key);
    s.push(' ');
    s.push_str(&o.target.profile);
    s.push(' ');
    if let Some(p) = &o.target.pool {
        s.push_str(p);
        s.push(' ');
    }
    s.push_str(o.evaluation.status.as_str());
    if let Some(r) = reason(o) {
        s.push(' ');
        s.push_str(&r);
    }
    for (rule, _) in failing(o) {
        s.push(' ');
        s.push_str(rule);
    }
    s.to_lowercase()
}

fn matches(text: &str, terms: &[String]) -> bool {
    terms.iter().all(|t| text.contains(t.as_str()))
}

/// The rows the query selects, worst first (then soonest expiry, then name and address), and
/// the number of rows per status over the whole fleet.
pub fn select<'a>(
    outcomes: &'a [Arc<ProbeOutcome>],
    q: &str,
) -> (Vec<&'a ProbeOutcome>, [usize; 4]) {
    let terms: Vec<String> = q.split_whitespace().map(str::to_lowercase).collect();
    let mut counts = [0usize; 4];
    let mut rows: Vec<&ProbeOutcome> = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        counts[severity_rank(o.evaluation.status) as usize] += 1;
        if terms.is_empty() || matches(&filter_text(o), &terms) {
            rows.push(o);
        }
    }
    rows.sort_by(|a, b| {
        severity_rank(b.evaluation.status)
            .cmp(&severity_rank(a.evaluation.status))
            .then_with(|| {
                expiry(a)
                    .unwrap_or(i64::MAX)
                    .cmp(&expiry(b).unwrap_or(i64::MAX))
            })
            .then_with(|| a.target.endpoint.cmp(&b.target.endpoint))
            .then_with(|| a.series_key.cmp(&b.series_key))
    });
    (rows, counts)
}

/// The page `query.page` of `rows` (clamped to the last page), and the number of pages.
pub fn page<'a, T>(rows: &'a [T], query: &FleetQuery) -> (&'a [T], usize, usize) {
    let size = query.page_size.max(1);
    let pages = rows.len().div_ceil(size).max(1);
    let page = query.page.clamp(1, pages);
    let start = (page - 1) * size;
    (&rows[start..(start + size).min(rows.len())], page, pages)
}

fn status_class(s: Status) -> &'static str {
    match s {
        Status::Ok => "st-ok",
        Status::Warning => "st-warning",
        Status::Critical => "st-critical",
        Status::Unknown => "st-unknown",
    }
}

fn age(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 120.0 {
        format!("{s:.0} s ago")
    } else if s < 7200.0 {
        format!("{:.0} min ago", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.0} h ago", s / 3600.0)
    } else {
        format!("{:.0} d ago", s / 86400.0)
    }
}

fn head(out: &mut String, title: &str, base: &str) {
    out.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<title>");
    put(out, title);
    out.push_str(" · certprobe</title>\n");
    let _ = writeln!(
        out,
        "<link rel=\"stylesheet\" href=\"{base}static/app.css\">\n<script src=\"{base}static/app.js\" defer></script>\n</head><body>"
    );
    let _ = writeln!(
        out,
        "<header><a class=\"brand\" href=\"{base}./\">certprobe</a> <nav><a href=\"{base}./\">fleet</a> <a href=\"{base}metrics\">/metrics</a> <a href=\"{base}ready\">/ready</a> <a href=\"{base}healthz\">/healthz</a></nav></header>\n<main>"
    );
}

fn foot(out: &mut String, now: f64) {
    let _ = write!(
        out,
        "</main>\n<footer>rendered {} · certprobe {}</footer>\n</body></html>\n",
        fmt_time(now as i64),
        env!("CARGO_PKG_VERSION")
    );
}

fn badge(out: &mut String, s: Status) {
    let _ = write!(
        out,
        "<span class=\"badge {}\">{}</span>",
        status_class(s),
        s.human()
    );
}

/// `GET /`: the fleet table.
pub fn render_fleet(
    outcomes: &[Arc<ProbeOutcome>],
    pools: &[PoolSummary],
    query: &FleetQuery,
    now: f64,
) -> String {
    let (rows, counts) = select(outcomes, &query.q);
    let (shown, page_no, pages) = page(&rows, query);
    let mut out = String::with_capacity(4096 + shown.len() * 700);
    head(&mut out, "fleet", "");
    out.push_str("<h1>Fleet</h1>\n<p class=\"counts\">");
    let _ = write!(out, "<span>{} targets</span>", outcomes.len());
    for s in [
        Status::Critical,
        Status::Unknown,
        Status::Warning,
        Status::Ok,
    ] {
        let _ = write!(
            out,
            " <a class=\"count {}\" href=\"?q={}\">{} {}</a>",
            status_class(s),
            s.as_str(),
            counts[severity_rank(s) as usize],
            s.human()
        );
    }
    out.push_str("</p>\n");
    let bad_pools: Vec<&PoolSummary> = pools.iter().filter(|p| !p.consistent).collect();
    if !bad_pools.is_empty() {
        out.push_str("<ul class=\"pools\">");
        for p in bad_pools {
            out.push_str("<li>pool <b>");
            put(&mut out, &p.pool);
            out.push_str("</b>: <span class=\"bad\">INCONSISTENT</span> — ");
            put(&mut out, &p.detail);
            out.push_str("</li>");
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<form class=\"filter\" method=\"get\"><label for=\"filter\">Filter</label> <input id=\"filter\" name=\"q\" type=\"search\" autocomplete=\"off\" placeholder=\"endpoint, pool, role, status, rule\" value=\"");
    put(&mut out, &query.q);
    out.push_str("\"> <button type=\"submit\">Filter</button> <span id=\"shown\">");
    let _ = write!(
        out,
        "{} of {} shown",
        shown.len(),
        if query.q.is_empty() {
            outcomes.len()
        } else {
            rows.len()
        }
    );
    out.push_str("</span></form>\n");
    out.push_str("<table id=\"fleet\"><thead><tr><th>status</th><th>endpoint</th><th>address</th><th>role</th><th>pool</th><th>days left</th><th>failure reason</th><th>failing rules</th><th>last probe</th></tr></thead>\n<tbody>\n");
    for o in shown {
        fleet_row(&mut out, o, now);
    }
    out.push_str("</tbody></table>\n");
    if rows.is_empty() {
        out.push_str("<p class=\"empty\">No target matches.</p>\n");
    }
    if pages > 1 {
        out.push_str("<nav class=\"pages\">");
        let link = |out: &mut String, p: usize, label: &str| {
            let _ = write!(
                out,
                " <a href=\"?q={}&amp;page={p}\">{label}</a>",
                pct(&query.q)
            );
        };
        if page_no > 1 {
            link(&mut out, page_no - 1, "‹ previous");
        }
        let _ = write!(
            out,
            " <span>page {page_no} of {pages} ({} rows)</span>",
            rows.len()
        );
        if page_no < pages {
            link(&mut out, page_no + 1, "next ›");
        }
        out.push_str("</nav>\n");
    }
    foot(&mut out, now);
    out
}

fn fleet_row(out: &mut String, o: &ProbeOutcome, now: f64) {
    let s = o.evaluation.status;
    out.push_str("<tr data-filter=\"");
    put(out, &filter_text(o));
    let _ = write!(out, "\" class=\"{}\"><td>", status_class(s));
    badge(out, s);
    out.push_str("</td><td><a href=\"endpoint/");
    out.push_str(&pct(&o.target.endpoint));
    out.push_str("\">");
    put(out, &o.target.endpoint);
    out.push_str("</a></td><td>");
    put(out, &o.series_key);
    out.push_str("</td><td>");
    put(out, &o.target.profile);
    out.push_str("</td><td>");
    put(out, o.target.pool.as_deref().unwrap_or(""));
    out.push_str("</td><td class=\"num\">");
    match expiry(o) {
        Some(t) => {
            let d = days_left(t, now).floor();
            let _ = write!(out, "{d:.0}");
        }
        None => out.push('-'),
    }
    out.push_str("</td><td>");
    put(out, reason(o).as_deref().unwrap_or(""));
    out.push_str("</td><td>");
    let mut first = true;
    for (rule, v) in failing(o) {
        if !first {
            out.push(' ');
        }
        first = false;
        let _ = write!(
            out,
            "<span class=\"rule {}\">{rule}</span>",
            if v == Verdict::Fail { "fail" } else { "warn" }
        );
    }
    out.push_str("</td><td>");
    out.push_str(&age(now - o.finished_at));
    out.push_str("</td></tr>\n");
}

/// A fixed notice after "probe now" (never text from the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeNotice {
    Done,
    Busy,
    Failed,
    Disabled,
}

impl ProbeNotice {
    pub fn from_query(s: &str) -> Option<Self> {
        Some(match s {
            "ok" => Self::Done,
            "busy" => Self::Busy,
            "failed" => Self::Failed,
            "disabled" => Self::Disabled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "ok",
            Self::Busy => "busy",
            Self::Failed => "failed",
            Self::Disabled => "disabled",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Done => "Probed just now: the results below are fresh.",
            Self::Busy => "Too many on-demand probes are running: try again in a moment.",
            Self::Failed => "The on-demand probe could not run (see the daemon's log).",
            Self::Disabled => "On-demand probes are disabled (--web.disable-probe).",
        }
    }
}

fn row2(out: &mut String, k: &str, v: &str) {
    out.push_str("<tr><th>");
    out.push_str(k);
    out.push_str("</th><td>");
    put(out, v);
    out.push_str("</td></tr>\n");
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `GET /endpoint/NAME`: everything about one endpoint. `probe_enabled`: whether the "probe
/// now" button is offered.
pub fn render_endpoint(
    name: &str,
    view: &EndpointView,
    now: f64,
    notice: Option<ProbeNotice>,
    probe_enabled: bool,
) -> String {
    let targets = &view.entry.targets;
    let mut out = String::with_capacity(16 * 1024);
    head(&mut out, name, "../");
    let status = targets
        .iter()
        .map(|t| t.evaluation.status)
        .max_by_key(|s| severity_rank(*s))
        .unwrap_or(Status::Unknown);
    out.push_str("<h1>");
    badge(&mut out, status);
    out.push(' ');
    put(&mut out, name);
    out.push_str("</h1>\n");
    if let Some(n) = notice {
        let _ = writeln!(
            out,
            "<p class=\"notice notice-{}\">{}</p>",
            n.as_str(),
            n.message()
        );
    }
    if let Some(t) = targets.first() {
        out.push_str("<table class=\"kv\">\n");
        row2(
            &mut out,
            "host",
            &format!("{}:{}", t.target.host, t.target.port),
        );
        row2(&mut out, "role (profile)", &t.target.profile);
        row2(&mut out, "pool", t.target.pool.as_deref().unwrap_or("-"));
        if let Some(st) = t.target.starttls {
            row2(&mut out, "STARTTLS", st.as_str());
        }
        if !t.target.labels.is_empty() {
            let labels: Vec<String> = t
                .target
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            row2(&mut out, "labels", &labels.join(", "));
        }
        let addrs: Vec<&str> = targets.iter().map(|t| t.series_key.as_str()).collect();
        row2(&mut out, "addresses", &addrs.join(", "));
        out.push_str("</table>\n");
    }
    if probe_enabled {
        out.push_str("<form class=\"probe-now\" method=\"post\" action=\"../probe?endpoint=");
        out.push_str(&pct(name));
        out.push_str("\"><button type=\"submit\">Probe now</button></form>\n");
    }
    for t in targets {
        address_section(&mut out, t, now);
    }
    pool_section(&mut out, targets, view);
    history_section(&mut out, &view.entry.history);
    foot(&mut out, now);
    out
}

fn address_section(out: &mut String, o: &ProbeOutcome, now: f64) {
    out.push_str("<section class=\"address\"><h2>");
    badge(out, o.evaluation.status);
    out.push(' ');
    put(out, &o.series_key);
    out.push_str("</h2>\n<table class=\"kv\">\n");
    row2(
        out,
        "last probe",
        &format!(
            "{} ({})",
            fmt_time(o.finished_at as i64),
            age(now - o.finished_at)
        ),
    );
    if let Some(from) = o.report_from {
        row2(
            out,
            "certificate facts from",
            &format!(
                "{} (this probe captured no chain: last good facts shown)",
                fmt_time(from as i64)
            ),
        );
    }
    if let Some(f) = &o.capture.failure {
        row2(
            out,
            "failure",
            &match &f.alert {
                Some(a) => format!("{} (alert {a}): {}", f.reason, f.detail),
                None => format!("{}: {}", f.reason, f.detail),
            },
        );
    }
    row2(out, "SNI", o.capture.sni.as_deref().unwrap_or("(none)"));
    if let Some(line) = crate::report::tls_line(&o.capture) {
        row2(out, "TLS", &line);
    }
    if let Some(l) = &o.capture.legacy {
        row2(
            out,
            "legacy handshake",
            &format!("{} {}", l.version.as_str(), l.cipher_suite),
        );
    }
    let ca = &o.capture.client_auth;
    row2(
        out,
        "MTLS: client certificate requested",
        yes_no(ca.requested),
    );
    if ca.requested {
        let mut names = ca.acceptable_ca_names.join("; ");
        if names.is_empty() {
            names = "(none sent)".into();
        }
        if ca.acceptable_ca_names_truncated {
            names.push_str(" … (more not kept)");
        }
        row2(out, "MTLS: acceptable CA names", &names);
    }
    row2(
        out,
        "MTLS: client certificate sent",
        yes_no(ca.client_cert_sent),
    );
    row2(
        out,
        "MTLS: accepted",
        match ca.accepted {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        },
    );
    row2(
        out,
        "MTLS: enforced",
        match o.capture.mtls_enforced {
            Some(true) => "yes (a client without certificate was refused)",
            Some(false) => "NO (the server accepted a client without certificate)",
            None => "not checked",
        },
    );
    if let Some(t) = o.client_cert_not_after {
        row2(
            out,
            "our client certificate expires",
            &format!("{} (in {:.1} days)", fmt_time(t), days_left(t, now)),
        );
    }
    out.push_str("</table>\n");

    // Verdicts.
    out.push_str("<h3>Rules</h3>\n<table class=\"rules\"><thead><tr><th>verdict</th><th>rule</th><th>severity</th><th>message</th></tr></thead><tbody>\n");
    for v in &o.evaluation.verdicts {
        let _ = write!(
            out,
            "<tr class=\"v-{0}\"><td>{0}</td><td>{1}</td><td>{2}</td><td>",
            v.verdict.as_str(),
            v.rule.as_str(),
            v.severity.as_str()
        );
        put(out, &v.message);
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody></table>\n");
    if !o.evaluation.info.is_empty() {
        out.push_str("<ul class=\"info\">");
        for i in &o.evaluation.info {
            out.push_str("<li>");
            put(out, i);
            out.push_str("</li>");
        }
        out.push_str("</ul>\n");
    }

    let Some(r) = &o.report else {
        out.push_str("<p>No certificate captured.</p></section>\n");
        return;
    };
    // Trust stores.
    out.push_str("<h3>Verified path per trust store</h3>\n<table class=\"stores\"><thead><tr><th>store</th><th>class</th><th>result</th><th>path</th><th>path expires</th></tr></thead><tbody>\n");
    for s in &r.stores {
        out.push_str("<tr><td>");
        put(out, &s.store);
        out.push_str("</td><td>");
        put(out, &format!("{:?}", s.class).to_lowercase());
        out.push_str("</td><td>");
        if s.verified {
            out.push_str("<span class=\"ok\">verified</span>");
            if s.legacy_algorithms {
                out.push_str(" (legacy algorithms: SHA-1 or RSA &lt; 2048)");
            }
        } else {
            out.push_str("<span class=\"bad\">");
            out.push_str(s.error.map_or("unverified", |e| e.as_str()));
            out.push_str("</span>");
            if let Some(p) = s.error_position {
                let _ = write!(out, " at [{p}]");
            }
            if let Some(d) = &s.detail {
                out.push_str(": ");
                put(out, d);
            }
        }
        out.push_str("</td><td class=\"mono\">");
        for (i, p) in s.path.iter().enumerate() {
            if i > 0 {
                out.push_str(" → ");
            }
            put(out, short(p));
        }
        if !s.intermediates_from_store.is_empty() {
            out.push_str(" (from the store's bundle: ");
            put(out, &s.intermediates_from_store.join("; "));
            out.push(')');
        }
        out.push_str("</td><td>");
        if let Some(t) = s.path_not_after {
            put(
                out,
                &format!("{} ({:.1} days)", fmt_time(t), days_left(t, now)),
            );
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody></table>\n");
    if let Some(h) = &r.hostname {
        out.push_str("<p>hostname ");
        put(out, &h.name);
        out.push_str(": ");
        if h.matched {
            out.push_str("<span class=\"ok\">matches</span>");
            if let Some(by) = &h.matched_by {
                out.push_str(" (by ");
                put(out, by);
                out.push(')');
            }
        } else {
            out.push_str("<span class=\"bad\">MISMATCH</span>");
        }
        out.push_str("</p>\n");
    }
    // The presented chain.
    out.push_str("<h3>Presented chain</h3>\n");
    for (i, c) in r.certs.iter().enumerate() {
        let _ = write!(out, "<table class=\"kv cert\"><caption>[{i}] ");
        put(out, c.subject_cn.as_deref().unwrap_or(&c.subject));
        out.push_str("</caption>\n");
        row2(out, "subject", &c.subject);
        row2(out, "issuer", &c.issuer);
        let mut sans = c.san_dns.clone();
        sans.extend(c.san_ip.iter().cloned());
        if c.has_san_extension || !sans.is_empty() {
            out.push_str("<tr><th>SANs</th><td><ul class=\"sans\">");
            for s in &sans {
                out.push_str("<li>");
                put(out, s);
                out.push_str("</li>");
            }
            out.push_str("</ul></td></tr>\n");
        }
        let d = days_left(c.not_after, now);
        out.push_str("<tr><th>validity</th><td>");
        put(
            out,
            &format!("{} .. {}", fmt_time(c.not_before), fmt_time(c.not_after)),
        );
        let _ = writeln!(
            out,
            " <span class=\"{}\">({} {:.1} days)</span></td></tr>",
            if d < 0.0 {
                "bad"
            } else if d < 30.0 {
                "warn"
            } else {
                "ok"
            },
            if d < 0.0 { "expired" } else { "in" },
            d.abs()
        );
        row2(out, "key", &c.key.to_string());
        row2(
            out,
            "signature",
            &format!("{} ({})", c.signature_algorithm, c.signature_hash.as_str()),
        );
        row2(out, "serial", &c.serial);
        out.push_str("<tr><th>SHA-256</th><td class=\"mono\">");
        put(out, &c.fingerprint_sha256);
        out.push_str("</td></tr>\n<tr><th>SPKI SHA-256</th><td class=\"mono\">");
        put(out, &c.spki_sha256);
        out.push_str("</td></tr>\n");
        if c.has_eku {
            row2(out, "EKU", &c.eku.join(", "));
        }
        if c.has_key_usage {
            row2(out, "key usage", &c.key_usage.join(", "));
        }
        if c.is_ca {
            row2(
                out,
                "CA",
                &c.path_len
                    .map_or("yes".to_string(), |p| format!("yes, pathlen {p}")),
            );
        }
        for u in &c.crl_distribution_points {
            row2(out, "CRL DP", u);
        }
        for u in &c.ocsp_urls {
            row2(out, "OCSP", u);
        }
        let a = &c.adcs;
        if a.any() {
            let mut m = Vec::new();
            if let Some(t) = &a.template_name {
                m.push(format!("template {t}"));
            }
            if let Some(t) = &a.template_oid {
                m.push(format!(
                    "template OID {t} v{}.{}",
                    a.template_major.unwrap_or(0),
                    a.template_minor.unwrap_or(0)
                ));
            }
            if !a.application_policies.is_empty() {
                m.push(format!(
                    "application policies {}",
                    a.application_policies.join(", ")
                ));
            }
            if let Some(v) = &a.ca_version {
                m.push(format!("CA version {v}"));
            }
            if a.ldap_urls {
                m.push("ldap:/// URLs (AD-integrated CA)".into());
            }
            row2(out, "AD CS markers", &m.join("; "));
        }
        out.push_str("</table>\n");
    }
    for (p, e) in &r.parse_errors {
        let _ = write!(out, "<p class=\"bad\">[{p}] does not parse: ");
        put(out, e);
        out.push_str("</p>\n");
    }
    out.push_str("</section>\n");
}

/// The first 16 hex digits of a fingerprint (the anchor's subject is kept whole).
fn short(fp: &str) -> &str {
    if fp.len() == 64 && fp.bytes().all(|b| b.is_ascii_hexdigit()) {
        &fp[..16]
    } else {
        fp
    }
}

fn pool_section(out: &mut String, targets: &[Arc<ProbeOutcome>], view: &EndpointView) {
    let Some(pool) = targets.first().and_then(|t| t.target.pool.as_deref()) else {
        return;
    };
    out.push_str("<section class=\"pool\"><h2>Pool ");
    put(out, pool);
    out.push_str("</h2>\n");
    match &view.pool {
        Some(p) if p.consistent => {
            out.push_str("<p><span class=\"ok\">consistent</span>: ");
            put(out, &p.detail);
            out.push_str("</p>\n");
        }
        Some(p) => {
            out.push_str(
                "<p class=\"pool-inconsistent\"><span class=\"bad\">INCONSISTENT</span>: ",
            );
            put(out, &p.detail);
            out.push_str("</p>\n");
        }
        None => out.push_str("<p>No pool verdict yet.</p>\n"),
    }
    out.push_str("<table class=\"members\"><thead><tr><th>member</th><th>address</th><th>status</th><th>leaf SHA-256</th><th>key (SPKI SHA-256)</th><th>subject</th><th>expires</th></tr></thead><tbody>\n");
    let mut all: Vec<&ProbeOutcome> = targets.iter().map(|t| &**t).collect();
    all.extend(view.pool_members.iter().map(|t| &**t));
    for o in all {
        let leaf = o.report.as_ref().and_then(|r| r.leaf());
        out.push_str("<tr><td><a href=\"");
        out.push_str(&pct(&o.target.endpoint));
        out.push_str("\">");
        put(out, &o.target.endpoint);
        out.push_str("</a></td><td>");
        put(out, &o.series_key);
        out.push_str("</td><td>");
        badge(out, o.evaluation.status);
        out.push_str("</td><td class=\"mono\">");
        put(out, leaf.map_or("-", |l| short(&l.fingerprint_sha256)));
        out.push_str("</td><td class=\"mono\">");
        put(out, leaf.map_or("-", |l| short(&l.spki_sha256)));
        out.push_str("</td><td>");
        put(out, leaf.map_or("-", |l| l.subject.as_str()));
        out.push_str("</td><td>");
        put(
            out,
            &leaf.map_or("-".to_string(), |l| fmt_time(l.not_after)),
        );
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody></table></section>\n");
}

fn history_section(out: &mut String, history: &std::collections::VecDeque<HistoryEvent>) {
    let _ = write!(
        out,
        "<section class=\"history\"><h2>History</h2>\n<p class=\"hint\">The last {} leaf and status changes, kept in memory since the daemon started (newest first).</p>\n<table><thead><tr><th>when</th><th>address</th><th>change</th></tr></thead><tbody>\n",
        super::HISTORY_CAP
    );
    for e in history.iter().rev() {
        out.push_str("<tr><td>");
        out.push_str(&fmt_time(e.at as i64));
        out.push_str("</td><td>");
        put(out, &e.address);
        out.push_str("</td><td>");
        match &e.change {
            Change::Leaf { from, to, subject } => {
                out.push_str("leaf ");
                match from {
                    Some(f) => {
                        out.push_str("changed <span class=\"mono\">");
                        put(out, short(f));
                        out.push_str("</span> → ");
                    }
                    None => out.push_str("first seen "),
                }
                out.push_str("<span class=\"mono\">");
                put(out, short(to));
                out.push_str("</span> ");
                put(out, subject);
            }
            Change::Status { from, to, rules } => {
                out.push_str("status ");
                match from {
                    Some(f) => {
                        badge(out, *f);
                        out.push_str(" → ");
                    }
                    None => out.push_str("first probe: "),
                }
                badge(out, *to);
                if !rules.is_empty() {
                    out.push(' ');
                    put(out, &rules.join(", "));
                }
            }
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody></table></section>\n");
}

/// The page for a name the board does not know.
pub fn render_not_found(name: &str, now: f64) -> String {
    let mut out = String::new();
    head(&mut out, "not found", "../");
    out.push_str("<h1>Unknown endpoint</h1>\n<p>No endpoint named <code>");
    put(&mut out, name);
    out.push_str("</code> has been probed (yet).</p>\n");
    foot(&mut out, now);
    out
}
