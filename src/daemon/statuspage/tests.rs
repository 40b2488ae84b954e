//! Unit tests of the board and the renderer: real outcomes (rcgen certificates judged by the
//! real evaluator), rendered to HTML and read back.

use std::sync::Arc;

use super::render::{self, esc, FleetQuery};
use super::*;
use crate::config::{BaseDir, Config};
use crate::runner::{self, EvalContext};

const NOW: f64 = 1_900_000_000.0;

struct Lab {
    cfg: Config,
    ctx: EvalContext,
}

impl Lab {
    fn new(endpoints: &str) -> Self {
        let cfg = Config::from_yaml(
            &format!("endpoints:\n{endpoints}"),
            "<test>",
            BaseDir(".".into()),
        )
        .unwrap();
        let ctx = EvalContext {
            stores: cfg.stores.clone(),
            policy: cfg.policy.clone(),
            at: None,
        };
        Self { cfg, ctx }
    }

    /// An outcome of `name` at 127.0.0.`ip`: a self-signed leaf with `cn`/`sans` valid for
    /// `days` from NOW, or a refused connection when `cn` is None.
    fn outcome(&self, name: &str, ip: u8, cn: Option<(&str, &[&str], i64)>) -> ProbeOutcome {
        let ep = self.cfg.endpoint(name).unwrap();
        let addr = std::net::SocketAddr::from(([127, 0, 0, ip], ep.meta.port));
        let mut c = crate::probe::Capture::new(addr, ep.spec.sni.clone());
        match cn {
            Some((cn, sans, days)) => {
                let key = rcgen::KeyPair::generate().unwrap();
                let mut p = rcgen::CertificateParams::new(
                    sans.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                )
                .unwrap();
                p.distinguished_name.push(rcgen::DnType::CommonName, cn);
                let t = |s: f64| time::OffsetDateTime::from_unix_timestamp(s as i64).unwrap();
                p.not_before = t(NOW - 86400.0);
                p.not_after = t(NOW + days as f64 * 86400.0);
                let cert = p.self_signed(&key).unwrap();
                c.chain = vec![cert.der().clone()];
                c.tls_version = Some(crate::vocab::TlsVersion::Tls13);
            }
            None => {
                c.failure = Some(crate::probe::Failure::new(
                    crate::probe::FailureReason::ConnectRefused,
                    "refused",
                ));
            }
        }
        let ctx = EvalContext {
            at: Some(NOW as i64),
            ..self.ctx.clone()
        };
        runner::evaluate_capture(ep, addr.to_string(), c, &ctx, NOW)
    }
}

fn arcs(v: Vec<ProbeOutcome>) -> Vec<Arc<ProbeOutcome>> {
    v.into_iter().map(Arc::new).collect()
}

/// Endpoint names of the table's rows, in order.
fn row_names(html: &str) -> Vec<String> {
    html.split("<a href=\"endpoint/")
        .skip(1)
        .filter_map(|r| r.split_once("\">").and_then(|(_, t)| t.split_once("</a>")))
        .map(|(t, _)| t.to_string())
        .collect()
}

#[test]
fn esc_turns_markup_and_quotes_into_entities_and_shows_controls() {
    assert_eq!(
        esc("<script>x='1'&\"</script>"),
        "&lt;script&gt;x=&#39;1&#39;&amp;&quot;&lt;/script&gt;"
    );
    assert_eq!(esc("a\u{1b}[2K\u{202e}b"), "a\\x1b[2K\\u{202e}b");
    assert_eq!(render::pct("fe 01/<x>"), "fe%2001%2F%3Cx%3E");
}

#[test]
fn hostile_certificate_and_name_strings_never_reach_the_html_as_markup() {
    let lab = Lab::new(
        "  - {name: \"evil\\\"><img src=x onerror=alert(1)>\", host: evil.test, port: 443, pool: \"p'<b>\"}\n",
    );
    let name = "evil\"><img src=x onerror=alert(1)>";
    let cn = "<script>window.pwned=1</script>";
    let san = "x\"><svg onload=alert(2)>.example";
    let o = lab.outcome(name, 9, Some((cn, &[san], 90)));
    let board = StatusBoard::new();
    board.record(&o);
    let snap = board.snapshot();
    let fleet = render::render_fleet(&snap.outcomes, &snap.pools, &FleetQuery::default(), NOW);
    let detail = render::render_endpoint(name, &board.endpoint(name).unwrap(), NOW, None, true);
    for html in [&fleet, &detail] {
        // Our own script tag is the only one; no payload element or handler survives.
        assert_eq!(html.matches("<script").count(), 1, "{html}");
        for bad in ["<img", "<svg", "<b>"] {
            assert!(!html.contains(bad), "{bad} in:\n{html}");
        }
        assert!(html.contains("evil&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    }
    assert!(detail.contains("&lt;script&gt;window.pwned=1&lt;/script&gt;"));
    assert!(detail.contains("x&quot;&gt;&lt;svg onload=alert(2)&gt;.example"));
    // Links carry the name percent-encoded.
    assert!(
        fleet.contains("href=\"endpoint/evil%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E\"")
    );
    // A hostile filter value is escaped back into the input.
    let q = FleetQuery {
        q: "\"><script>".into(),
        ..FleetQuery::default()
    };
    let page = render::render_fleet(&snap.outcomes, &snap.pools, &q, NOW);
    assert!(
        page.contains("value=\"&quot;&gt;&lt;script&gt;\""),
        "{page}"
    );
    assert_eq!(page.matches("<script").count(), 1);
}

fn fleet_lab() -> (Lab, Vec<ProbeOutcome>) {
    let lab = Lab::new(
        "  - {name: a-ok, host: a.test, port: 443}\n\
         \x20 - {name: b-soon, host: b.test, port: 443, pool: web}\n\
         \x20 - {name: c-down, host: c.test, port: 443, pool: web}\n\
         \x20 - {name: d-later, host: d.test, port: 443}\n",
    );
    let mut outs = vec![
        lab.outcome("a-ok", 1, Some(("a.test", &["a.test"], 300))),
        lab.outcome("b-soon", 2, Some(("b.test", &["b.test"], 5))),
        lab.outcome("c-down", 3, None),
        lab.outcome("d-later", 4, Some(("d.test", &["d.test"], 20))),
    ];
    // Self-signed leaves are CRITICAL (untrusted) under the default profile; two of them get
    // other statuses here so that the order has every level.
    std::sync::Arc::make_mut(&mut outs[0].evaluation).status = Status::Ok;
    std::sync::Arc::make_mut(&mut outs[3].evaluation).status = Status::Warning;
    (lab, outs)
}

#[test]
fn fleet_is_sorted_worst_first_then_soonest_expiry_and_counts_every_status() {
    let (_lab, outs) = fleet_lab();
    let all = arcs(outs);
    let html = render::render_fleet(&all, &[], &FleetQuery::default(), NOW);
    // CRITICAL first, the sooner expiry first among them (no certificate: last of its status),
    // then WARNING, then OK.
    assert_eq!(row_names(&html), ["b-soon", "c-down", "d-later", "a-ok"]);
    let (_, counts) = render::select(&all, "");
    let n = |s: Status| counts[render::severity_rank(s) as usize];
    assert_eq!(
        (
            n(Status::Critical),
            n(Status::Unknown),
            n(Status::Warning),
            n(Status::Ok)
        ),
        (2, 0, 1, 1)
    );
    assert!(html.contains(">2 CRITICAL</a>"), "{html}");
    assert!(html.contains(">1 WARNING</a>"));
    // Days left: floor of the time to the earliest notAfter.
    assert!(html.contains("<td class=\"num\">5</td>") || html.contains("<td class=\"num\">4</td>"));
}

#[test]
fn filter_terms_match_endpoint_pool_role_status_reason_and_rule() {
    let (_lab, outs) = fleet_lab();
    let all = arcs(outs);
    let names = |q: &str| -> Vec<String> {
        let mut n: Vec<String> = render::select(&all, q)
            .0
            .iter()
            .map(|o| o.target.endpoint.clone())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names("web"), ["b-soon", "c-down"]);
    assert_eq!(names("WEB connect_refused"), ["c-down"]);
    assert_eq!(names("d-later"), ["d-later"]);
    assert_eq!(names("reachable"), ["c-down"], "the failing rule");
    assert_eq!(names("default").len(), 4, "the role");
    assert!(names("nothing-matches-this").is_empty());
    // Without JavaScript the server filters: only matching rows are sent.
    let q = FleetQuery {
        q: "web".into(),
        ..FleetQuery::default()
    };
    let html = render::render_fleet(&all, &[], &q, NOW);
    let mut rows = row_names(&html);
    rows.sort();
    assert_eq!(rows, ["b-soon", "c-down"]);
}

#[test]
fn pages_split_the_table_and_clamp_out_of_range_pages() {
    let (_lab, outs) = fleet_lab();
    let all = arcs(outs);
    let q = |page| FleetQuery {
        q: String::new(),
        page,
        page_size: 3,
    };
    let first = render::render_fleet(&all, &[], &q(1), NOW);
    assert_eq!(row_names(&first).len(), 3);
    assert!(first.contains("page 1 of 2"));
    assert!(first.contains("href=\"?q=&amp;page=2\""));
    let second = render::render_fleet(&all, &[], &q(2), NOW);
    assert_eq!(row_names(&second).len(), 1);
    let beyond = render::render_fleet(&all, &[], &q(99), NOW);
    assert_eq!(row_names(&beyond), row_names(&second));
    let single = render::render_fleet(&all, &[], &FleetQuery::default(), NOW);
    assert!(!single.contains("page 1 of"));
}

#[test]
fn history_records_first_sight_then_only_changes_and_stays_bounded() {
    let lab = Lab::new("  - {name: web, host: web.test, port: 443}\n");
    let board = StatusBoard::new();
    let mut a = lab.outcome("web", 1, Some(("web.test", &["web.test"], 90)));
    std::sync::Arc::make_mut(&mut a.evaluation).status = Status::Ok;
    board.record(&a);
    board.record(&a);
    let h = board.endpoint("web").unwrap().entry.history;
    assert_eq!(h.len(), 2, "{h:?}");
    assert!(matches!(h[0].change, Change::Leaf { from: None, .. }));
    assert!(matches!(h[1].change, Change::Status { from: None, .. }));
    // A failed probe: a status change, not a leaf change; the last chain stays visible.
    let down = lab.outcome("web", 1, None);
    board.record(&down);
    let view = board.endpoint("web").unwrap();
    assert_eq!(view.entry.targets[0].report_from, Some(NOW));
    assert_eq!(
        view.entry.targets[0].leaf_fingerprint(),
        a.leaf_fingerprint()
    );
    let h = view.entry.history;
    assert_eq!(h.len(), 3);
    assert!(matches!(
        &h[2].change,
        Change::Status { from: Some(_), to: Status::Critical, rules } if rules.contains(&"reachable".to_string())
    ));
    // A renewed certificate: a leaf change from the old fingerprint.
    let mut renewed = lab.outcome("web", 1, Some(("web.test", &["web.test"], 365)));
    std::sync::Arc::make_mut(&mut renewed.evaluation).status = Status::Ok;
    board.record(&renewed);
    let h = board.endpoint("web").unwrap().entry.history;
    let old = a.leaf_fingerprint().unwrap().to_string();
    assert!(h
        .iter()
        .any(|e| matches!(&e.change, Change::Leaf { from: Some(f), .. } if *f == old)));
    let html = render::render_endpoint("web", &board.endpoint("web").unwrap(), NOW, None, true);
    assert!(html.contains("leaf changed"), "{html}");
    for _ in 0..(HISTORY_CAP * 2) {
        board.record(&down);
        board.record(&renewed);
    }
    assert_eq!(
        board.endpoint("web").unwrap().entry.history.len(),
        HISTORY_CAP
    );
}

#[test]
fn removed_targets_leave_the_board_and_the_detail_page_compares_pool_members() {
    let (_lab, outs) = fleet_lab();
    let board = StatusBoard::new();
    for o in &outs {
        board.record(o);
    }
    board.record_pools(&[crate::report::PoolSummary {
        pool: "web".into(),
        consistent: false,
        status: Status::Warning,
        detail: "2 different certificates".into(),
    }]);
    let view = board.endpoint("b-soon").unwrap();
    assert_eq!(view.pool_members.len(), 1);
    assert_eq!(view.pool_members[0].target.endpoint, "c-down");
    let html = render::render_endpoint("b-soon", &view, NOW, Some(render::ProbeNotice::Done), true);
    assert!(html.contains("INCONSISTENT"));
    assert!(html.contains("href=\"c-down\""));
    assert!(html.contains("Probed just now"));
    assert!(html.contains("action=\"../probe?endpoint=b-soon\""));
    assert!(!render::render_endpoint("b-soon", &view, NOW, None, false).contains("Probe now"));
    // The related outcomes for a re-judgement: the pool's other member only.
    let rel = board.related("b-soon", Some("web"), &[]);
    assert_eq!(rel.len(), 1);
    board.remove("c-down", &[outs[2].series_key.clone()]);
    assert!(board.endpoint("c-down").is_none());
    assert_eq!(board.snapshot().outcomes.len(), 3);
    let keep: std::collections::HashSet<String> = ["a-ok".to_string()].into();
    board.retain_endpoints(&keep);
    assert_eq!(board.snapshot().outcomes.len(), 1);
}

#[test]
fn probe_now_accepts_only_same_origin_requests() {
    use crate::daemon::http::same_origin;
    use axum::http::{HeaderMap, HeaderValue};
    let h = |pairs: &[(&'static str, &'static str)]| {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_static(v));
        }
        m
    };
    let host = ("host", "127.0.0.1:9915");
    assert!(same_origin(&h(&[
        host,
        ("origin", "http://127.0.0.1:9915")
    ])));
    assert!(same_origin(&h(&[
        host,
        ("origin", "https://127.0.0.1:9915"),
        ("sec-fetch-site", "same-origin")
    ])));
    assert!(same_origin(&h(&[
        host,
        ("referer", "http://127.0.0.1:9915/endpoint/fe02")
    ])));
    // Another origin, a cross-site fetch, an opaque origin, or no evidence at all: refused.
    assert!(!same_origin(&h(&[host, ("origin", "http://evil.example")])));
    assert!(!same_origin(&h(&[
        host,
        ("origin", "http://127.0.0.1:9916")
    ])));
    assert!(!same_origin(&h(&[
        host,
        ("origin", "http://127.0.0.1:9915"),
        ("sec-fetch-site", "cross-site")
    ])));
    assert!(!same_origin(&h(&[host, ("origin", "null")])));
    assert!(!same_origin(&h(&[
        host,
        ("referer", "http://127.0.0.1:9915.evil.example/")
    ])));
    assert!(!same_origin(&h(&[host])));
    assert!(!same_origin(&h(&[("origin", "http://127.0.0.1:9915")])));
}

#[test]
fn a_disabled_board_keeps_nothing() {
    let (_lab, outs) = fleet_lab();
    let board = StatusBoard::disabled();
    assert!(!board.is_enabled());
    for o in &outs {
        board.record(o);
    }
    board.record_pools(&[crate::report::PoolSummary {
        pool: "web".into(),
        consistent: true,
        status: Status::Ok,
        detail: String::new(),
    }]);
    let snap = board.snapshot();
    assert!(snap.outcomes.is_empty() && snap.pools.is_empty());
    assert!(board.endpoint("a-ok").is_none());
    assert!(StatusBoard::new().is_enabled());
}

#[test]
fn an_older_outcome_does_not_replace_a_fresher_one() {
    let lab = Lab::new("  - {name: web, host: web.test, port: 443, pool: p}\n");
    let board = StatusBoard::new();
    let mut fresh = lab.outcome("web", 1, Some(("web.test", &["web.test"], 90)));
    fresh.finished_at = NOW + 30.0;
    board.record(&fresh);
    // The scheduler's copy from before a "probe now", re-recorded with its pool.
    let old = lab.outcome("web", 1, None);
    board.record(&old);
    let shown = &board.endpoint("web").unwrap().entry.targets[0];
    assert_eq!(shown.finished_at, NOW + 30.0);
    assert!(shown.capture.failure.is_none());
    assert_eq!(board.endpoint("web").unwrap().entry.history.len(), 2);
    // A much older one (a clock stepped back by more than an hour) is taken.
    let mut stepped = lab.outcome("web", 1, None);
    stepped.finished_at = NOW - 7200.0;
    board.record(&stepped);
    let shown = &board.endpoint("web").unwrap().entry.targets[0];
    assert!(shown.capture.failure.is_some());
}
