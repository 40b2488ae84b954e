//! The exporter's HTTP server on real loopback sockets: /metrics content and negotiation,
//! /probe configured vs unconfigured vs ad-hoc, /ready, /-/reload.

use crate::http_common;
use crate::metrics_common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use certprobe::daemon::http::{
    parse_target, serve, AppState, HostPattern, ProbeFuture, ProbeQuery, ProbeRefused, Prober,
    ReloadRequest,
};
use certprobe::daemon::metrics::{BuildInfo, Metrics};
use http_common::*;
use metrics_common::*;
use tokio::sync::{mpsc, oneshot};

struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
    calls: Arc<Mutex<Vec<ProbeQuery>>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn shutdown(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        let r = tokio::time::timeout(std::time::Duration::from_secs(10), self.task)
            .await
            .expect("server did not shut down")
            .unwrap();
        r.unwrap();
    }
}

/// The daemon's injection seam: configured endpoints are `web` and `edge`; an ad-hoc target
/// gets a hand-built outcome named after it.
fn fake_prober(calls: Arc<Mutex<Vec<ProbeQuery>>>) -> Prober {
    Arc::new(move |q: ProbeQuery| -> ProbeFuture {
        calls.lock().unwrap().push(q.clone());
        Box::pin(async move {
            match q {
                ProbeQuery::Endpoint(name) if name == "web" => {
                    let mut o = ok_outcome("web", "127.0.0.1:443", "aaaaaaaa");
                    o.finished_at = NOW + 5.0;
                    Ok(vec![o, ok_outcome("web", "127.0.0.2:443", "aaaaaaaa")])
                }
                ProbeQuery::Endpoint(name) if name == "edge" => {
                    Ok(vec![mtls_outcome("edge", "127.0.0.4:443")])
                }
                ProbeQuery::Endpoint(name) if name == "hangs" => std::future::pending().await,
                ProbeQuery::Endpoint(name) if name == "busy" => {
                    Err(ProbeRefused::Unavailable("shutting down".into()))
                }
                ProbeQuery::Endpoint(name) => Err(ProbeRefused::UnknownEndpoint(name)),
                ProbeQuery::Target { host, port } => {
                    let mut o = ok_outcome(
                        &format!("adhoc:{host}:{port}"),
                        "127.0.0.9:8443",
                        "ffffffff",
                    );
                    std::sync::Arc::make_mut(&mut o.target).host = host;
                    std::sync::Arc::make_mut(&mut o.target).port = port;
                    Ok(vec![o])
                }
            }
        })
    })
}

async fn start(configure: impl FnOnce(AppState) -> AppState) -> Server {
    let metrics = Arc::new(Metrics::new(BuildInfo {
        version: "0.1.0".into(),
        revision: "test".into(),
    }));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let state = Arc::new(configure(AppState::new(
        metrics,
        fake_prober(calls.clone()),
    )));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    Server {
        addr,
        state,
        calls,
        stop: Some(tx),
        task,
    }
}

#[tokio::test]
async fn metrics_serves_recorded_outcomes_in_text_format() {
    let s = start(|s| s).await;
    s.state
        .metrics
        .record(&ok_outcome("web", "127.0.0.1:443", "aaaaaaaa"));
    s.state
        .metrics
        .record(&refused_outcome("fe1", "127.0.0.3:443"));
    s.state.metrics.set_config_reload(true, NOW);
    let r = get(s.addr, "/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let e = parse(&r.body);
    assert_eq!(
        e.value(
            "certprobe_probe_success",
            &[("endpoint", "web"), ("address", "127.0.0.1:443")]
        ),
        1.0
    );
    assert_eq!(
        e.value("certprobe_probe_success", &[("endpoint", "fe1")]),
        0.0
    );
    assert_eq!(
        e.value(
            "certprobe_probe_failure",
            &[("endpoint", "fe1"), ("reason", "connect_refused")]
        ),
        1.0
    );
    assert_eq!(e.value("certprobe_config_last_reload_successful", &[]), 1.0);
    assert_eq!(
        e.value("certprobe_probes_total", &[("result", "failure")]),
        1.0
    );
    let (ok, out) = promtool_check(&r.body);
    assert!(ok && out.trim().is_empty(), "{out}");
    // A scrape never probes.
    assert!(s.calls.lock().unwrap().is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn metrics_negotiates_openmetrics() {
    let s = start(|s| s).await;
    s.state
        .metrics
        .record(&ok_outcome("web", "127.0.0.1:443", "aaaaaaaa"));
    let r = request(
        s.addr,
        "GET",
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        )],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"].starts_with("application/openmetrics-text; version=1.0.0"),
        "{:?}",
        r.headers
    );
    assert!(r.body.ends_with("# EOF\n"));
    let e = parse(&r.body);
    assert_eq!(
        e.value("certprobe_probe_success", &[("endpoint", "web")]),
        1.0
    );
    assert_eq!(e.types["certprobe_build"], "info");
    // Plain Prometheus Accept header gets the text format.
    let r = request(
        s.addr,
        "GET",
        "/metrics",
        &[("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")],
    )
    .await;
    assert!(r.headers["content-type"].starts_with("text/plain; version=0.0.4"));
    assert!(!r.body.contains("# EOF"));
    s.shutdown().await;
}

#[tokio::test]
async fn probe_configured_endpoint_returns_only_its_metrics() {
    let s = start(|s| s).await;
    s.state
        .metrics
        .record(&refused_outcome("fe1", "127.0.0.3:443"));
    s.state
        .metrics
        .record(&ok_outcome("web", "127.0.0.1:443", "aaaaaaaa"));
    let r = get(s.addr, "/probe?endpoint=web").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let e = parse(&r.body);
    assert!(e.samples.iter().all(|x| x.labels["endpoint"] == "web"));
    assert_eq!(e.count("certprobe_probe_success", &[]), 2);
    assert_eq!(
        e.value(
            "certprobe_last_probe_timestamp_seconds",
            &[("address", "127.0.0.1:443")]
        ),
        NOW + 5.0
    );
    assert_eq!(e.count("certprobe_probes_total", &[]), 0);
    let (ok, out) = promtool_check(&r.body);
    assert!(ok && out.trim().is_empty(), "{out}");
    assert_eq!(
        *s.calls.lock().unwrap(),
        vec![ProbeQuery::Endpoint("web".into())]
    );

    let r = get(s.addr, "/probe?endpoint=edge").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        parse(&r.body).value("certprobe_mtls_enforced", &[("endpoint", "edge")]),
        1.0
    );

    let r = get(s.addr, "/probe?endpoint=nope").await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("unknown endpoint \"nope\""), "{}", r.body);
    s.shutdown().await;
}

#[tokio::test]
async fn probe_adhoc_target_is_refused_unless_allowed() {
    let s = start(|s| s).await;
    // No allow list: every ad-hoc target is refused before the prober is called.
    let r = get(s.addr, "/probe?target=intranet.corp.example:443").await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = get(s.addr, "/probe?target=169.254.169.254:80").await;
    assert_eq!(r.status, 403);
    assert!(s.calls.lock().unwrap().is_empty());

    s.state
        .set_adhoc_patterns(&["*.corp.example".into(), "10.1.*:443".into()])
        .unwrap();
    let r = get(s.addr, "/probe?target=Lync-FE.corp.example:5061").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let e = parse(&r.body);
    assert_eq!(
        e.value(
            "certprobe_probe_success",
            &[("endpoint", "adhoc:lync-fe.corp.example:5061")]
        ),
        1.0
    );
    assert_eq!(
        s.calls.lock().unwrap().last().unwrap(),
        &ProbeQuery::Target {
            host: "lync-fe.corp.example".into(),
            port: 5061
        }
    );
    let r = get(s.addr, "/probe?target=10.1.2.3").await;
    assert_eq!(r.status, 200, "default port 443 matches the pattern port");
    for refused in [
        "/probe?target=10.1.2.3:8443",
        "/probe?target=corp.example.evil.net:443",
        "/probe?target=10.1.evil.example:443",
        "/probe?target=127.0.0.1:9915",
    ] {
        let n = s.calls.lock().unwrap().len();
        let r = get(s.addr, refused).await;
        assert_eq!(r.status, 403, "{refused}: {}", r.body);
        assert_eq!(
            s.calls.lock().unwrap().len(),
            n,
            "{refused} reached the prober"
        );
    }
    for bad in [
        "/probe",
        "/probe?endpoint=web&target=a.corp.example",
        "/probe?target=a.corp.example:0",
        "/probe?target=a%20b.corp.example",
        "/probe?target=http://x.corp.example/",
    ] {
        let r = get(s.addr, bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    s.shutdown().await;
}

#[tokio::test]
async fn healthz_ready_and_index() {
    let s = start(|s| s).await;
    let r = get(s.addr, "/healthz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    assert_eq!(get(s.addr, "/ready").await.status, 503);
    s.state.set_ready(true);
    assert_eq!(get(s.addr, "/ready").await.status, 200);
    s.state.set_ready(false);
    assert_eq!(get(s.addr, "/ready").await.status, 503);
    let r = get(s.addr, "/").await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"].starts_with("text/html"));
    assert!(r.body.contains("href=\"metrics\""));
    assert_eq!(get(s.addr, "/nope").await.status, 404);
    s.shutdown().await;
}

#[tokio::test]
async fn reload_success_and_failure() {
    let (tx, mut rx) = mpsc::channel::<ReloadRequest>(4);
    // The daemon side: first reload succeeds, second fails with check-config's message.
    let daemon = tokio::spawn(async move {
        let mut n = 0;
        while let Some(req) = rx.recv().await {
            n += 1;
            let answer = if n == 1 {
                Ok(())
            } else {
                Err(certprobe::daemon::ReloadError::Invalid(
                    certprobe::config::ConfigErrors(vec![certprobe::config::ConfigError {
                        file: "config.yaml".into(),
                        line: Some(3),
                        column: Some(5),
                        path: String::new(),
                        message: "unknown field `hots`, expected one of `host`, `port`".into(),
                    }]),
                ))
            };
            req.reply.send(answer).unwrap();
        }
        n
    });
    let s = start(|s| s.with_reload(tx).with_lifecycle(true)).await;
    let r = request(s.addr, "POST", "/-/reload", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = request(s.addr, "POST", "/-/reload", &[]).await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.body,
        "config.yaml:3:5: unknown field `hots`, expected one of `host`, `port`\n"
    );
    let r = get(s.addr, "/-/reload").await;
    assert_eq!(r.status, 405);
    s.shutdown().await;
    // The server dropped its sender: the daemon loop ends after exactly two requests.
    assert_eq!(daemon.await.unwrap(), 2);
}

#[tokio::test]
async fn reload_without_reloader_is_unavailable() {
    let s = start(|s| s.with_lifecycle(true)).await;
    assert_eq!(request(s.addr, "POST", "/-/reload", &[]).await.status, 503);
    s.shutdown().await;
}

#[test]
fn target_parsing() {
    assert_eq!(
        parse_target("Host.Example").unwrap(),
        ("host.example".into(), 443)
    );
    assert_eq!(
        parse_target("host.example:5061").unwrap(),
        ("host.example".into(), 5061)
    );
    assert_eq!(parse_target("[::1]:8443").unwrap(), ("::1".into(), 8443));
    assert_eq!(
        parse_target("127.0.0.1:443").unwrap(),
        ("127.0.0.1".into(), 443)
    );
    for bad in [
        "",
        "::1",
        "a..b",
        "-a.example",
        "a.example:99999",
        "a.example:x",
        "[zz]:1",
        "a/b",
    ] {
        assert!(parse_target(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn host_patterns() {
    let p = HostPattern::parse("*.corp.example").unwrap();
    assert!(p.matches("a.corp.example", 1));
    assert!(p.matches("a.b.corp.example", 443));
    assert!(!p.matches("corp.example", 443));
    assert!(!p.matches("a.corp.example.evil", 443));
    let p = HostPattern::parse("10.0.?.*:443").unwrap();
    assert!(p.matches("10.0.1.200", 443));
    assert!(!p.matches("10.0.12.1", 443));
    assert!(!p.matches("10.0.1.200", 80));
    let p = HostPattern::parse("[fd00::*]").unwrap();
    assert!(p.matches("fd00::1", 443));
    assert!(!p.matches("fd01::1", 443));
    for open in ["*", "*.*", "*:443", "", "a b"] {
        assert!(HostPattern::parse(open).is_err(), "{open:?} accepted");
    }
}

#[tokio::test]
async fn probe_is_bounded_by_the_prometheus_scrape_timeout() {
    let s = start(|s| s).await;
    let r = request(
        s.addr,
        "GET",
        "/probe?endpoint=hangs",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "0.6")],
    )
    .await;
    assert_eq!(r.status, 504, "{}", r.body);
    assert!(r.body.contains("scrape timeout"), "{}", r.body);
    let r = get(s.addr, "/probe?endpoint=busy").await;
    assert_eq!(r.status, 503);
    s.shutdown().await;
}

/// Issue 16, item 7: the open-relay guard decides by what a pattern can match. Before, `*a*`,
/// `*-*`, `*0*` and `[*:*]` passed while `*` was refused.
#[test]
fn host_patterns_are_judged_by_what_they_can_match() {
    for open in [
        "*a*",
        "*-*",
        "*0*",
        "[*:*]",
        "*.com",
        "*example.com",
        "*.co?",
        "1*",
        "*.1",
        "?*",
        "[*]:443",
        "**.*",
    ] {
        let e = HostPattern::parse(open).expect_err(open);
        assert!(e.to_string().contains("open relay"), "{open}: {e}");
    }
    for bounded in [
        "fe?.corp.example",
        "*.corp.example",
        "lync-*.contoso.com:5061",
        "10.*",
        "10.0.?.*:443",
        "[2001:db8:*]",
        "[fd00::*]:5061",
        "sip.contoso.com",
    ] {
        assert!(HostPattern::parse(bounded).is_ok(), "{bounded} refused");
    }
}

/// Issue 16, item 4: /probe runs a bounded number of probes; a request that finds no slot within
/// the queue timeout is answered 429 (before: every request probed at once).
#[tokio::test]
async fn probe_requests_beyond_the_bound_get_429() {
    let s = start(|s| s.with_probe_limits(1, std::time::Duration::from_millis(300))).await;
    let addr = s.addr;
    let hung = tokio::spawn(async move {
        request(
            addr,
            "GET",
            "/probe?endpoint=hangs",
            &[("X-Prometheus-Scrape-Timeout-Seconds", "3")],
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let r = get(s.addr, "/probe?endpoint=web").await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.headers.get("retry-after").map(String::as_str), Some("1"));
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(hung.await.unwrap().status, 504);
    // The slot is free again.
    assert_eq!(get(s.addr, "/probe?endpoint=web").await.status, 200);
    s.shutdown().await;
}

/// Issue 16, item 10: POST /-/reload is refused unless the lifecycle API is enabled; /probe can
/// be turned off.
#[tokio::test]
async fn lifecycle_is_off_by_default_and_probe_can_be_disabled() {
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let s = start(|s| s.with_reload(tx).with_probe_enabled(false)).await;
    let r = request(s.addr, "POST", "/-/reload", &[]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("--web.enable-lifecycle"), "{}", r.body);
    for path in ["/probe?endpoint=web", "/probe?target=a.corp.example:443"] {
        let r = get(s.addr, path).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert!(r.body.contains("disabled"), "{}", r.body);
    }
    assert!(s.calls.lock().unwrap().is_empty());
    s.shutdown().await;
}
