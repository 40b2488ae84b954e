//! Issue 16, item 6: the YAML budget scales to 100,000 endpoints of the richest documented
//! shape (before: a 10,000-endpoint config failed with `budget breached: Nodes { nodes: 250001 }`)
//! and still refuses a billion-laughs bomb.

use certprobe::config::{BaseDir, Config, DOCUMENTED_MAX_ENDPOINTS};

fn rich(n: usize) -> String {
    let mut y = String::with_capacity(n * 700);
    y.push_str("global:\n  interval: 1h\n  timeout: 5s\nendpoints:\n");
    for i in 0..n {
        y.push_str(&format!(
            "  - name: ep{i}\n    host: fe{i}.contoso.com\n    port: 5061\n    sni: pool01.contoso.com\n    resolve: [10.0.{}.{}]\n    profile: default\n    pool: pool{}\n    labels: {{site: hq, rack: r{}}}\n    addresses: all\n    expect_client_auth: none\n    interval: 30m\n    timeout: 5s\n    tls: {{min_version: \"1.2\", max_version: \"1.3\", legacy_fallback: true}}\n    alpn: [h2, http/1.1]\n    protocol: none\n    expected_names: [meet.contoso.com]\n",
            (i / 250) % 256,
            i % 250 + 1,
            i % 100,
            i % 40
        ));
    }
    y
}

#[test]
fn the_documented_maximum_of_rich_endpoints_loads() {
    let text = rich(DOCUMENTED_MAX_ENDPOINTS);
    let cfg = Config::from_yaml(&text, "rich.yaml", BaseDir("/nonexistent".into()))
        .unwrap_or_else(|e| panic!("{}", e.to_string().lines().next().unwrap_or("")));
    assert_eq!(cfg.endpoints.len(), DOCUMENTED_MAX_ENDPOINTS);
}

#[test]
fn billion_laughs_is_still_refused_with_a_clear_message() {
    let mut y = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        y.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    y.push_str("bomb: *a9\n");
    // Untyped, through the loader's own parse_yaml and budget: 10^10 strings if expanded.
    let t = std::time::Instant::now();
    let e = certprobe::config::parse_yaml::<serde_json::Value>(&y, "laughs.yaml")
        .unwrap_err()
        .to_string();
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    assert!(e.len() < 2000, "{e}");
    assert!(e.contains("exceeds the YAML size limits"), "{e}");
}
