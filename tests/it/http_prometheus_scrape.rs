//! End to end: a real Prometheus server (Debian `prometheus` package) scrapes the exporter on
//! loopback with its default Accept header (OpenMetrics preferred), and the ingested series are
//! queried back through its HTTP API.

use crate::http_common;
use crate::metrics_common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use certprobe::daemon::http::{serve, AppState, ProbeFuture, ProbeQuery, ProbeRefused};
use certprobe::daemon::metrics::{BuildInfo, Metrics};
use http_common::*;
use metrics_common::*;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Values of an instant vector query, as (labels JSON object, value).
async fn query(prom: SocketAddr, q: &str) -> Vec<(serde_json::Value, f64)> {
    let path = format!("/api/v1/query?query={}", urlencode(q));
    let r = get(prom, &path).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["metric"].clone(),
                s["value"][1].as_str().unwrap().parse::<f64>().unwrap(),
            )
        })
        .collect()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_ingests_the_exposition() {
    let metrics = Arc::new(Metrics::new(BuildInfo {
        version: "0.1.0".into(),
        revision: "e2e".into(),
    }));
    metrics.record(&ok_outcome("web", "127.0.0.1:443", "aaaaaaaa"));
    metrics.record(&refused_outcome("fe1", "127.0.0.3:443"));
    metrics.record(&mtls_outcome("edge", "127.0.0.4:443"));
    metrics.record(&legacy_outcome("fe2", "127.0.0.5:5061"));
    metrics.record_pools(&[
        ("fe-pool".to_string(), true),
        ("edge-pool".to_string(), false),
    ]);
    metrics.set_config_reload(true, NOW);
    let prober = Arc::new(|q: ProbeQuery| -> ProbeFuture {
        Box::pin(async move {
            match q {
                ProbeQuery::Endpoint(n) => Err(ProbeRefused::UnknownEndpoint(n)),
                ProbeQuery::Target { host, .. } => Err(ProbeRefused::NotAllowed(host)),
            }
        })
    });
    let state = Arc::new(AppState::new(metrics, prober));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let exporter = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async move {
        let _ = rx.await;
    }));

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: certprobe\n    static_configs:\n      - targets: ['{exporter}']\n"
        ),
    )
    .unwrap();
    let prom_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _prom = KillOnDrop(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus must be installed (apt-get install prometheus)"),
    );

    // Wait (bounded) until a scrape succeeded.
    let mut up = Vec::new();
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if tokio::net::TcpStream::connect(prom_addr).await.is_err() {
            continue;
        }
        up = query(prom_addr, "up{job=\"certprobe\"}").await;
        if up.first().is_some_and(|(_, v)| *v == 1.0) {
            break;
        }
    }
    assert_eq!(up.len(), 1, "prometheus never scraped the exporter: {up:?}");
    assert_eq!(up[0].1, 1.0, "scrape failed: {up:?}");

    let r = query(prom_addr, "certprobe_probe_success").await;
    assert_eq!(r.len(), 4, "{r:?}");
    let web = query(
        prom_addr,
        "certprobe_probe_success{endpoint=\"web\",team=\"pki\",pool=\"\"}",
    )
    .await;
    assert_eq!(web.len(), 1);
    assert_eq!(web[0].1, 1.0);
    let fail = query(
        prom_addr,
        "certprobe_probe_failure{reason=\"connect_refused\"}",
    )
    .await;
    assert_eq!(fail.len(), 1);
    assert_eq!(fail[0].0["endpoint"], "fe1");
    let days = query(
        prom_addr,
        "certprobe_cert_not_after_timestamp_seconds{endpoint=\"web\",position=\"0\"}",
    )
    .await;
    assert_eq!(days[0].1, 1_900_000_000.0);
    let info = query(prom_addr, "certprobe_build_info").await;
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(info[0].0["revision"], "e2e");
    let probes = query(prom_addr, "certprobe_probes_total{result=\"failure\"}").await;
    assert_eq!(probes[0].1, 2.0);
    let pools = query(prom_addr, "certprobe_pool_consistent").await;
    assert_eq!(pools.len(), 2, "{pools:?}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
