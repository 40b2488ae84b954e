//! The status page in a real browser: Debian's chromium, headless, driven through chromedriver
//! (WebDriver, fantoccini), against the real binary: `certprobe demo` (the eight-endpoint lab),
//! the same with basic auth on, and `certprobe probe -c` against a TLS server in this test whose
//! certificate is hostile (a CN that is a `<script>`, a SAN with quotes and an `onerror`).
//!
//! The browser is started once for this binary: one `#[test]` runs the scenarios in order, each
//! a function whose name says what it checks. Everything listens on 127.0.0.x loopback, the
//! daemons and chromedriver on ports the kernel picks (`127.0.0.1:0`, the bound port read from
//! their output).
//!
//! `CERTPROBE_UPDATE_SCREENSHOT=1` also writes the fleet page's screenshot to
//! docs/statuspage.png (the README's picture).

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use support::{ChildGuard, LeafOptions};

/// The statuses tests/it/quickstart.rs expects of the demo lab.
const DEMO_STATUSES: [(&str, &str); 8] = [
    ("fe01", "OK"),
    ("fe02", "WARNING"),
    ("director", "OK"),
    ("edge-internal", "OK"),
    ("fe-web-internal", "WARNING"),
    ("edge-external", "CRITICAL"),
    ("reverse-proxy", "CRITICAL"),
    ("partner-fabrikam", "CRITICAL"),
];

const MARKER: &str = "__certprobe_pwned";

// === Processes ===

/// chromedriver (which starts and stops chromium) and the WebDriver session.
struct Browser {
    client: Client,
    _driver: ChildGuard,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut cmd = Command::new("chromedriver");
        cmd.arg("--port=0");
        let driver = ChildGuard::spawn(
            cmd,
            Some("started successfully on port"),
            None,
            Duration::from_secs(30),
        );
        let out = driver.output();
        let port: u16 = out
            .split("started successfully on port ")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in chromedriver's output:\n{out}"));
        // Without these flags chromium fails as root and on this closed network (it tries to
        // reach Google's services and waits).
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1400,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": "/usr/bin/chromium", "args": args}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("WebDriver session: {e}\n{}", driver.output()));
        Self {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// A certprobe daemon (`demo` or `probe -c`) on `127.0.0.1:0`; `port` is the one it bound.
struct Daemon {
    _guard: ChildGuard,
    port: u16,
}

fn start_daemon(args: &[&str]) -> Daemon {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_certprobe"));
    cmd.args(args)
        .args(["--web.listen-address", "127.0.0.1:0"])
        .env("NO_COLOR", "1");
    let guard = ChildGuard::spawn(
        cmd,
        Some("listening on http://"),
        None,
        Duration::from_secs(60),
    );
    let out = guard.output();
    let port = out
        .split("listening on http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no bound address in the daemon's output:\n{out}"));
    let d = Daemon {
        _guard: guard,
        port,
    };
    // /ready (never behind auth): the first round of probes is done.
    wait_until("the daemon's first round", Duration::from_secs(60), || {
        http(d.port, "GET", "/ready", &[]).0 == 200
    });
    d
}

impl Daemon {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// A one-shot HTTP/1.1 request: (status, headers lower-cased, body).
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new(), String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return (0, text, String::new());
    };
    let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

// === Page helpers ===

/// (endpoint, status) of every visible row of the fleet table, in page order.
async fn visible_rows(c: &Client) -> Vec<(String, String)> {
    let rows = c
        .execute(
            "return Array.from(document.querySelectorAll('#fleet tbody tr'))\
               .filter(r => r.offsetParent !== null)\
               .map(r => [r.cells[1].innerText.trim(), r.cells[0].innerText.trim()]);",
            vec![],
        )
        .await
        .expect("read the table");
    serde_json::from_value(rows).expect("rows as pairs")
}

/// Wait until the browser has left `from` and the new page has loaded.
async fn navigated(c: &Client, from: &url::Url) -> url::Url {
    let start = Instant::now();
    loop {
        let now = c.current_url().await.expect("current url");
        let ready = c
            .execute("return document.readyState;", vec![])
            .await
            .expect("readyState");
        if now != *from && ready == json!("complete") {
            return now;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no navigation away from {from}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn marker(c: &Client) -> serde_json::Value {
    c.execute(&format!("return typeof window.{MARKER};"), vec![])
        .await
        .expect("read the marker")
}

async fn body_text(c: &Client) -> String {
    c.find(Locator::Css("body"))
        .await
        .expect("body")
        .text()
        .await
        .expect("body text")
}

// === Scenarios ===

async fn fleet_lists_the_eight_demo_endpoints_worst_first_with_the_quickstart_statuses(
    c: &Client,
    demo: &Daemon,
) {
    c.goto(&demo.url("/")).await.expect("open the fleet page");
    let rows = visible_rows(c).await;
    assert_eq!(rows.len(), 8, "{rows:?}");
    for (ep, status) in DEMO_STATUSES {
        let got = rows.iter().find(|(e, _)| e == ep).map(|(_, s)| s.as_str());
        assert_eq!(got, Some(status), "{ep} in {rows:?}");
    }
    // Worst first: every CRITICAL row before every WARNING row before every OK row.
    let rank = |s: &str| match s {
        "CRITICAL" => 0,
        "UNKNOWN" => 1,
        "WARNING" => 2,
        _ => 3,
    };
    let ranks: Vec<i32> = rows.iter().map(|(_, s)| rank(s)).collect();
    let mut sorted = ranks.clone();
    sorted.sort();
    assert_eq!(ranks, sorted, "not worst first: {rows:?}");
    let counts = c
        .find(Locator::Css("p.counts"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for want in ["3 CRITICAL", "0 UNKNOWN", "2 WARNING", "3 OK"] {
        assert!(counts.contains(want), "{want} not in {counts:?}");
    }
    // The app script loaded (the CSP allows 'self' only): the live filter is wired.
    let shown = c
        .find(Locator::Id("shown"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.contains("8 of 8"), "{shown}");
}

async fn typing_fepool_in_the_filter_leaves_fe01_and_fe02(c: &Client, demo: &Daemon) {
    c.goto(&demo.url("/")).await.unwrap();
    let input = c.find(Locator::Id("filter")).await.unwrap();
    input.send_keys("fepool").await.unwrap();
    // Live filtering (app.js) hides the other rows without a request.
    let mut names: Vec<String> = visible_rows(c).await.into_iter().map(|r| r.0).collect();
    names.sort();
    assert_eq!(names, ["fe01", "fe02"]);
    assert!(c.current_url().await.unwrap().query().is_none());
    let shown = c
        .find(Locator::Id("shown"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.starts_with("2 of 8"), "{shown}");
    // Enter submits the form: the server filters (what a browser without JavaScript gets).
    let from = c.current_url().await.unwrap();
    input.send_keys("\u{E007}").await.unwrap();
    let url = navigated(c, &from).await;
    assert_eq!(url.query(), Some("q=fepool"));
    let mut names: Vec<String> = visible_rows(c).await.into_iter().map(|r| r.0).collect();
    names.sort();
    assert_eq!(names, ["fe01", "fe02"]);
    let rows_in_html = c
        .execute(
            "return document.querySelectorAll('#fleet tbody tr').length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(rows_in_html, json!(2), "the server sent only the matches");
}

async fn fe02_detail_shows_the_ten_day_expiry_and_the_inconsistent_pool(c: &Client, demo: &Daemon) {
    c.goto(&demo.url("/")).await.unwrap();
    let from = c.current_url().await.unwrap();
    c.find(Locator::LinkText("fe02"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let url = navigated(c, &from).await;
    assert!(url.path().ends_with("/endpoint/fe02"), "{url}");
    let text = body_text(c).await;
    // The leaf's validity line: "(in 9.9 days)" or "(in 10.0 days)" depending on the seconds
    // between the lab's start and the probe.
    let days: f64 = text
        .split("(in ")
        .nth(1)
        .and_then(|r| r.split(" days").next())
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no days left on the page:\n{text}"));
    assert!((9.5..=10.5).contains(&days), "{days} days:\n{text}");
    assert!(text.contains("expiry"), "{text}");
    let expiry_row = c
        .execute(
            "return Array.from(document.querySelectorAll('table.rules tr'))\
               .filter(r => r.cells[1] && r.cells[1].innerText === 'expiry')\
               .map(r => r.cells[0].innerText)[0];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(expiry_row, json!("warn"));
    let pool = c
        .find(Locator::Css("section.pool"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pool.contains("INCONSISTENT"), "{pool}");
    assert!(pool.contains("fe01") && pool.contains("fe02"), "{pool}");
    // The two members present different leaves: two distinct fingerprints in the table.
    let fps = c
        .execute(
            "return Array.from(document.querySelectorAll('table.members tbody tr')).map(r => r.cells[3].innerText);",
            vec![],
        )
        .await
        .unwrap();
    let fps: Vec<String> = serde_json::from_value(fps).unwrap();
    assert_eq!(fps.len(), 2, "{fps:?}");
    assert_ne!(fps[0], fps[1]);
    // History: the first probe and the first leaf are on record.
    let history = c
        .find(Locator::Css("section.history"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(history.contains("first probe"), "{history}");
    assert!(history.contains("leaf first seen"), "{history}");
}

async fn probe_now_posts_and_comes_back_with_fresh_results(c: &Client, demo: &Daemon) {
    c.goto(&demo.url("/endpoint/fe02")).await.unwrap();
    let before = body_text(c).await;
    assert!(!before.contains("Probed just now"));
    let from = c.current_url().await.unwrap();
    c.find(Locator::Css("form.probe-now button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let url = navigated(c, &from).await;
    assert!(url.path().ends_with("/endpoint/fe02"), "{url}");
    assert_eq!(url.query(), Some("probed=ok"));
    let text = body_text(c).await;
    assert!(text.contains("Probed just now"), "{text}");
    // Re-judged with its pool: still inconsistent, not "consistent with itself".
    let pool = c
        .find(Locator::Css("section.pool"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pool.contains("INCONSISTENT"), "{pool}");
}

fn probe_now_refuses_cross_origin_and_headerless_posts(demo: &Daemon, auth: &[(&str, &str)]) {
    let evil = [auth, &[("Origin", "http://evil.example")]].concat();
    assert_eq!(
        http(demo.port, "POST", "/probe?endpoint=fe01", &evil).0,
        403
    );
    let same = format!("http://127.0.0.1:{}", demo.port);
    let cross_site = [
        auth,
        &[("Origin", same.as_str()), ("Sec-Fetch-Site", "cross-site")],
    ]
    .concat();
    assert_eq!(
        http(demo.port, "POST", "/probe?endpoint=fe01", &cross_site).0,
        403
    );
    assert_eq!(http(demo.port, "POST", "/probe?endpoint=fe01", auth).0, 403);
    let ok = [auth, &[("Origin", same.as_str())]].concat();
    let (status, head, _) = http(demo.port, "POST", "/probe?endpoint=fe01", &ok);
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("location: endpoint/fe01?probed=ok"), "{head}");
}

fn pages_carry_a_strict_csp_and_json_has_the_probe_once_schema(
    demo: &Daemon,
    auth: &[(&str, &str)],
) {
    for path in ["/", "/endpoint/fe02"] {
        let (status, head, _) = http(demo.port, "GET", path, auth);
        assert_eq!(status, 200, "{path}: {head}");
        assert!(
            head.contains("content-security-policy: default-src 'none'; script-src 'self';"),
            "{path}: {head}"
        );
    }
    let (status, _, body) = http(demo.port, "GET", "/?format=json", auth);
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).expect("fleet JSON");
    assert_eq!(doc["version"], 2);
    assert_eq!(doc["results"].as_array().unwrap().len(), 8);
    assert_eq!(doc["results"][0]["status"], "critical", "worst first");
    let (_, _, body) = http(demo.port, "GET", "/endpoint/fe02?format=json", auth);
    let doc: serde_json::Value = serde_json::from_str(&body).expect("endpoint JSON");
    assert_eq!(doc["results"][0]["endpoint"], "fe02");
    assert_eq!(doc["pools"][0]["pool"], "fepool");
    assert_eq!(doc["pools"][0]["consistent"], false);
}

async fn screenshot_of_the_fleet_page_is_not_empty(c: &Client, demo: &Daemon) {
    c.goto(&demo.url("/")).await.unwrap();
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.len() > 1000, "{} bytes", png.len());
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("statuspage.png");
    std::fs::write(&out, &png).unwrap();
    assert!(std::fs::metadata(&out).unwrap().len() > 0);
    if std::env::var_os("CERTPROBE_UPDATE_SCREENSHOT").is_some() {
        std::fs::write(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/statuspage.png"),
            &png,
        )
        .unwrap();
    }
}

async fn basic_auth_protects_the_page_and_the_browser_gets_in_with_credentials(
    c: &Client,
    demo: &Daemon,
) {
    assert_eq!(http(demo.port, "GET", "/", &[]).0, 401);
    assert_eq!(http(demo.port, "GET", "/static/app.js", &[]).0, 401);
    c.goto(&format!("http://operator:s3cret@127.0.0.1:{}/", demo.port))
        .await
        .unwrap();
    let rows = visible_rows(c).await;
    assert_eq!(rows.len(), 8, "{rows:?}");
    // The script came through auth too (the live filter works).
    c.find(Locator::Id("filter"))
        .await
        .unwrap()
        .send_keys("critical")
        .await
        .unwrap();
    let rows = visible_rows(c).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|(_, s)| s == "CRITICAL"), "{rows:?}");
}

async fn hostile_certificate_strings_are_shown_as_text_and_run_no_script(
    c: &Client,
    port: u16,
    cn: &str,
    san: &str,
    name: &str,
) {
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    for page in ["/".to_string(), format!("/endpoint/{}", pct(name))] {
        c.goto(&url(&page)).await.unwrap();
        assert_eq!(marker(c).await, json!("undefined"), "{page}: a payload ran");
        // Only our own script is on the page, and no element came from the payloads.
        let scripts = c
            .execute(
                "return Array.from(document.scripts).map(s => s.getAttribute('src'));",
                vec![],
            )
            .await
            .unwrap();
        let scripts: Vec<Option<String>> = serde_json::from_value(scripts).unwrap();
        assert_eq!(scripts.len(), 1, "{page}: {scripts:?}");
        assert!(
            scripts[0]
                .as_deref()
                .is_some_and(|s| s.ends_with("static/app.js")),
            "{page}: {scripts:?}"
        );
        let injected = c
            .execute(
                "return document.querySelectorAll('img, iframe, object, embed, [onerror], [onload], [onclick]').length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(injected, json!(0), "{page}");
        let text = body_text(c).await;
        assert!(
            text.contains(name),
            "{page}: endpoint name not shown as text:\n{text}"
        );
    }
    // The detail page shows the payloads verbatim, as text.
    let text = body_text(c).await;
    assert!(text.contains(cn), "CN not shown as text:\n{text}");
    let sans = c
        .execute(
            "return Array.from(document.querySelectorAll('ul.sans li')).map(li => li.textContent);",
            vec![],
        )
        .await
        .unwrap();
    let sans: Vec<String> = serde_json::from_value(sans).unwrap();
    assert!(sans.iter().any(|s| s == san), "{sans:?}");
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// === The test ===

#[test]
fn status_page_in_a_real_browser() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    // The hostile server: a certificate whose CN is a script and whose SAN closes an
    // attribute, served on 127.0.0.1 by an in-process rustls server.
    let cn = format!("<script>window.{MARKER}=1</script>");
    let san = format!("x\"><img src=x onerror=\"window.{MARKER}=2\">.example");
    let name = format!("evil'\"><img src=x onerror=window.{MARKER}=3>");
    let ca = support::Ca::root("Hostile Test Root");
    let leaf = ca.leaf_with(&LeafOptions::server(&cn, &[san.as_str()]));
    let hostile_srv = rt.block_on(async {
        let cfg = support::server_config(
            vec![leaf.cert.clone(), ca.cert.clone()],
            leaf.key_der(),
            &[&rustls::version::TLS13],
            support::ClientAuth::None,
        );
        support::TlsServer::start("127.0.0.1", cfg).await
    });
    let addr: SocketAddr = hostile_srv.addr;
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    let cfg = format!(
        "global: {{interval: 2s}}\n\
         trust_stores: {{internal: {{class: internal, pem_files: [ca.pem]}}}}\n\
         endpoints:\n  - name: {}\n    host: 127.0.0.1\n    port: {}\n    sni: hostile.example\n",
        serde_json::to_string(&name).unwrap(),
        addr.port()
    );
    let cfg_path = dir.path().join("hostile.yaml");
    std::fs::write(&cfg_path, cfg).unwrap();

    // Basic auth for the second demo.
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "basic_auth_users:\n  operator: '{}'\n",
            bcrypt::hash("s3cret", 4).unwrap()
        ),
    )
    .unwrap();

    let demo = start_daemon(&["demo", "--lab-net", "61"]);
    let auth_demo = start_daemon(&[
        "demo",
        "--lab-net",
        "62",
        "--web.config.file",
        web.to_str().unwrap(),
    ]);
    let hostile = start_daemon(&["probe", "-c", cfg_path.to_str().unwrap()]);
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "operator:s3cret"
        )
    );
    let auth = [("Authorization", basic.as_str())];

    pages_carry_a_strict_csp_and_json_has_the_probe_once_schema(&demo, &[]);
    probe_now_refuses_cross_origin_and_headerless_posts(&demo, &[]);
    probe_now_refuses_cross_origin_and_headerless_posts(&auth_demo, &auth);

    let browser = rt.block_on(Browser::start());
    let c = browser.client.clone();
    let (demo, auth_demo) = (Arc::new(demo), Arc::new(auth_demo));
    let hostile_port = hostile.port;
    let scenarios = {
        let (demo, auth_demo) = (demo.clone(), auth_demo.clone());
        async move {
            let c = &c;
            fleet_lists_the_eight_demo_endpoints_worst_first_with_the_quickstart_statuses(c, &demo)
                .await;
            typing_fepool_in_the_filter_leaves_fe01_and_fe02(c, &demo).await;
            fe02_detail_shows_the_ten_day_expiry_and_the_inconsistent_pool(c, &demo).await;
            probe_now_posts_and_comes_back_with_fresh_results(c, &demo).await;
            screenshot_of_the_fleet_page_is_not_empty(c, &demo).await;
            hostile_certificate_strings_are_shown_as_text_and_run_no_script(
                c,
                hostile_port,
                &cn,
                &san,
                &name,
            )
            .await;
            basic_auth_protects_the_page_and_the_browser_gets_in_with_credentials(c, &auth_demo)
                .await;
        }
    };
    // In a task, so that a failed assertion still ends the WebDriver session (which stops
    // chromium) before the panic is passed on.
    let result = rt.block_on(rt.spawn(scenarios));
    rt.block_on(browser.close());
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
    drop((demo, auth_demo, hostile));
    drop(hostile_srv);
}
