//! Discovery against a real DNS server: Debian's unbound on a loopback address and port of its
//! own, serving contoso.com and fabrikam.com (SRV, A, AAAA, CNAME) that point at in-process
//! rustls servers on loopback. One unbound per test binary; the zone is changed with
//! `unbound-control reload`, so the scenarios run in order in one test.

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

const DNS_IP: &str = "127.0.15.1";
/// The upstream of a broken zone: answers every query SERVFAIL (a dead upstream makes unbound
/// answer SERVFAIL too, but only after its own retries, slower than a probe's DNS timeout).
const DEAD_IP: &str = "127.0.15.2";

/// A UDP DNS "server" on `DEAD_IP` that answers every query with SERVFAIL; returns its port.
fn servfail_upstream() -> u16 {
    let sock = std::net::UdpSocket::bind((DEAD_IP, 0)).expect("bind servfail upstream");
    let port = sock.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            let mut r = buf[..n].to_vec();
            r[2] = 0x80 | (r[2] & 0x79); // QR, keep opcode and RD
            r[3] = 0x80 | 2; // RA, RCODE SERVFAIL
                             // Question only: no answer, authority or additional records.
            r[6..12].fill(0);
            let _ = sock.send_to(&r, from);
        }
    });
    port
}

struct Unbound {
    _child: ChildGuard,
    conf: PathBuf,
    zone: PathBuf,
    port: u16,
}

impl Unbound {
    fn start(dir: &Path, zone: &str) -> Self {
        let port = free_port(DNS_IP);
        let control = free_port(DNS_IP);
        let zone_path = dir.join("zone.conf");
        std::fs::write(&zone_path, zone).unwrap();
        let conf = dir.join("unbound.conf");
        let text = format!(
            r#"server:
  username: ""
  chroot: ""
  directory: "{dir}"
  pidfile: "{dir}/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 1
  interface: {DNS_IP}@{port}
  port: {port}
  do-ip6: no
  do-daemonize: no
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  cache-max-ttl: 0
  cache-max-negative-ttl: 0
  serve-expired: no
  do-not-query-localhost: no
  infra-host-ttl: 1
  outbound-msg-retry: 1
  include: "{zone}"
remote-control:
  control-enable: yes
  control-interface: {DNS_IP}
  control-port: {control}
  control-use-cert: no
"#,
            dir = dir.display(),
            zone = zone_path.display(),
        );
        std::fs::write(&conf, text).unwrap();
        let mut cmd = Command::new("/usr/sbin/unbound");
        cmd.arg("-d").arg("-c").arg(&conf);
        let child = ChildGuard::spawn(
            cmd,
            None,
            Some(format!("{DNS_IP}:{port}").parse().unwrap()),
            Duration::from_secs(20),
        );
        Self {
            _child: child,
            conf,
            zone: zone_path,
            port,
        }
    }

    fn addr(&self) -> String {
        format!("{DNS_IP}:{}", self.port)
    }

    fn set_zone(&self, zone: &str) {
        std::fs::write(&self.zone, zone).unwrap();
        let out = Command::new("/usr/sbin/unbound-control")
            .arg("-c")
            .arg(&self.conf)
            .arg("reload")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "unbound-control reload: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

struct Lab {
    servfail_port: u16,
    fed_ok: SocketAddr,
    fed_bad: SocketAddr,
    fe: SocketAddr,
    disc: SocketAddr,
}

/// The zone: fabrikam.com federation SRV with two targets (one certificate lacks its target
/// name), contoso.com internal SIP SRV (A + AAAA), lyncdiscover CNAME into contoso.net.
fn zone(lab: &Lab, with_second_partner: bool, fabrikam_broken: bool) -> String {
    let mut z = String::new();
    if !fabrikam_broken {
        z.push_str("local-zone: \"fabrikam.com.\" static\n");
        z.push_str(&format!(
            "local-data: \"_sipfederationtls._tcp.fabrikam.com. 0 IN SRV 10 60 {} sip.fabrikam.com.\"\n",
            lab.fed_ok.port()
        ));
        z.push_str(&format!(
            "local-data: \"sip.fabrikam.com. 0 IN A {}\"\n",
            lab.fed_ok.ip()
        ));
        if with_second_partner {
            z.push_str(&format!(
                "local-data: \"_sipfederationtls._tcp.fabrikam.com. 0 IN SRV 20 40 {} sip2.fabrikam.com.\"\n",
                lab.fed_bad.port()
            ));
            z.push_str(&format!(
                "local-data: \"sip2.fabrikam.com. 0 IN A {}\"\n",
                lab.fed_bad.ip()
            ));
        }
    }
    z.push_str("local-zone: \"contoso.com.\" static\n");
    z.push_str(&format!(
        "local-data: \"_sipinternaltls._tcp.contoso.com. 0 IN SRV 0 0 {} fe01.contoso.com.\"\n",
        lab.fe.port()
    ));
    z.push_str(&format!(
        "local-data: \"fe01.contoso.com. 0 IN A {}\"\n",
        lab.fe.ip()
    ));
    z.push_str("local-data: \"fe01.contoso.com. 0 IN AAAA ::1\"\n");
    z.push_str("local-data: \"lyncdiscover.contoso.com. 0 IN CNAME lyncweb.contoso.net.\"\n");
    z.push_str("local-zone: \"contoso.net.\" static\n");
    z.push_str(&format!(
        "local-data: \"lyncweb.contoso.net. 0 IN A {}\"\n",
        lab.disc.ip()
    ));
    if fabrikam_broken {
        // fabrikam.com forwarded to a server that does not answer: SERVFAIL (last, since the
        // clause ends the server: options of the include).
        z.push_str(&format!(
            "forward-zone:\n  name: \"fabrikam.com.\"\n  forward-addr: {DEAD_IP}@{}\n",
            lab.servfail_port
        ));
    }
    z
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn wait_for(addr: SocketAddr, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let page = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))
            .ok()
            .map(|_| http_get(addr, "/metrics"))
            .unwrap_or_default();
        if pred(&page) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn json_once(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_certprobe"))
        .args(["probe", "--once", "--output", "json", "--revocation", "off"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "json: {e}\n{}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn verdict(v: &serde_json::Value, endpoint: &str, rule: &str) -> Option<String> {
    v["results"]
        .as_array()?
        .iter()
        .filter(|r| r["endpoint"].as_str() == Some(endpoint))
        .flat_map(|r| {
            r["evaluation"]["verdicts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|x| x["rule"].as_str() == Some(rule))
        .and_then(|x| x["verdict"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_against_unbound() {
    let files = Files::new();
    let pki_ok = Pki::new("Fabrikam", &["sip.fabrikam.com"]);
    // The second Edge's certificate does not carry sip2.fabrikam.com.
    let bad_leaf = pki_ok
        .intermediate
        .leaf("sip.fabrikam.com", &["sip.fabrikam.com"]);
    let fe = Pki::new("Contoso", &["fe01.contoso.com"]);
    let disc = Pki::new("Contoso Web", &["lyncdiscover.contoso.com"]);
    let versions = &[&rustls::version::TLS13, &rustls::version::TLS12];
    let s_ok = TlsServer::start(
        "127.0.15.10",
        pki_ok.server_config(versions, ClientAuth::None),
    )
    .await;
    let s_bad = TlsServer::start(
        "127.0.15.11",
        server_config(
            vec![bad_leaf.cert.clone(), pki_ok.intermediate.cert.clone()],
            bad_leaf.key_der(),
            versions,
            ClientAuth::None,
        ),
    )
    .await;
    let s_fe = TlsServer::start("127.0.15.12", fe.server_config(versions, ClientAuth::None)).await;
    // fe01 has an AAAA record too: the same port on [::1].
    let fe6 = tokio::net::TcpListener::bind(("::1", s_fe.addr.port())).await;
    let fe6_task = fe6.ok().map(|l| {
        let acceptor =
            tokio_rustls::TlsAcceptor::from(fe.server_config(versions, ClientAuth::None));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                let a = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = a.accept(tcp).await {
                        let mut b = [0u8; 64];
                        let _ = tokio::io::AsyncReadExt::read(&mut tls, &mut b).await;
                    }
                });
            }
        })
    });
    // lyncdiscover is probed on 443 (the record has no port).
    let disc_listener = tokio::net::TcpListener::bind("127.0.15.13:443")
        .await
        .expect("bind 443");
    let disc_addr = disc_listener.local_addr().unwrap();
    {
        let acceptor =
            tokio_rustls::TlsAcceptor::from(disc.server_config(versions, ClientAuth::None));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = disc_listener.accept().await {
                let a = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = a.accept(tcp).await {
                        let mut b = [0u8; 64];
                        let _ = tokio::io::AsyncReadExt::read(&mut tls, &mut b).await;
                    }
                });
            }
        });
    }
    let lab = Lab {
        servfail_port: servfail_upstream(),
        fed_ok: s_ok.addr,
        fed_bad: s_bad.addr,
        fe: s_fe.addr,
        disc: disc_addr,
    };
    let ca_pem = format!("{}{}{}", pki_ok.root.pem, fe.root.pem, disc.root.pem);
    let ca = files.write("roots.pem", &ca_pem);
    let unbound = Unbound::start(files.path(), &zone(&lab, true, false));
    let dns = unbound.addr();

    // 1. Ad hoc: every target of the federation SRV, the federation rule on the bad one.
    let (_, v, stderr) = json_once(&[
        "--discover",
        "srv:_sipfederationtls._tcp.fabrikam.com",
        "--dns-server",
        &dns,
        "--public-ca",
        ca.to_str().unwrap(),
    ]);
    let names: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["endpoint"].as_str().unwrap())
        .collect();
    let ok_name = "sipfederationtls-tcp-fabrikam-com-sipfederationtls-sip-fabrikam-com-"
        .to_string()
        + &lab.fed_ok.port().to_string();
    let bad_name = "sipfederationtls-tcp-fabrikam-com-sipfederationtls-sip2-fabrikam-com-"
        .to_string()
        + &lab.fed_bad.port().to_string();
    assert!(names.contains(&ok_name.as_str()), "{names:?}\n{stderr}");
    assert!(names.contains(&bad_name.as_str()), "{names:?}\n{stderr}");
    assert_eq!(
        verdict(&v, &ok_name, "srv_target_name"),
        Some("pass".to_string()),
        "{v}"
    );
    assert_eq!(
        verdict(&v, &bad_name, "srv_target_name"),
        Some("fail".to_string()),
        "{v}"
    );
    let bad = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["endpoint"].as_str() == Some(&bad_name))
        .unwrap();
    assert_eq!(bad["profile"].as_str(), Some("federation_partner"));
    // --endpoint selects a discovered endpoint (after the lookup).
    let (_, one, stderr) = json_once(&[
        "--discover",
        "srv:_sipfederationtls._tcp.fabrikam.com",
        "--dns-server",
        &dns,
        "--public-ca",
        ca.to_str().unwrap(),
        "--endpoint",
        &bad_name,
    ]);
    let names: Vec<&str> = one["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(names, [bad_name.as_str()], "{stderr}");
    assert_eq!(bad["capture"]["sni"].as_str(), Some("sip2.fabrikam.com"));

    // 2. lync: the internal SIP SRV (A and AAAA, both addresses probed) and the lyncdiscover
    // CNAME into contoso.net, flagged.
    let (_, v, stderr) = json_once(&[
        "--discover",
        "lync:contoso.com",
        "--dns-server",
        &dns,
        "--public-ca",
        ca.to_str().unwrap(),
    ]);
    let results = v["results"].as_array().unwrap();
    let fe_name = format!(
        "contoso-com-sipinternaltls-fe01-contoso-com-{}",
        lab.fe.port()
    );
    let fe_addrs: Vec<&str> = results
        .iter()
        .filter(|r| r["endpoint"].as_str() == Some(&fe_name))
        .map(|r| r["address"].as_str().unwrap())
        .collect();
    assert!(
        fe_addrs.contains(&lab.fe.to_string().as_str()),
        "{fe_addrs:?}\n{stderr}\n{v}"
    );
    if fe6_task.is_some() {
        assert!(
            fe_addrs.contains(&format!("[::1]:{}", lab.fe.port()).as_str()),
            "{fe_addrs:?}"
        );
    }
    assert_eq!(
        verdict(&v, &fe_name, "srv_target_name"),
        Some("pass".to_string())
    );
    let disc_name = "contoso-com-lyncdiscover-lyncdiscover-contoso-com-443";
    assert_eq!(
        verdict(&v, disc_name, "discovery_cname"),
        Some("warn".to_string()),
        "{stderr}\n{v}"
    );
    // The absent records (_sip._tls, _xmpp-server...) are not endpoints and not a failure.
    assert!(!stderr.contains("discovery contoso.com"), "{stderr}");

    // 3. NXDOMAIN is its own reason.
    let out = Command::new(env!("CARGO_BIN_EXE_certprobe"))
        .args([
            "probe",
            "--once",
            "--discover",
            "srv:_sipfederationtls._tcp.nowhere.contoso.com",
        ])
        .args(["--dns-server", &dns])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("nxdomain"), "{stderr}");

    // 4. The daemon: refresh after a record is removed drops the endpoint and its series;
    // SERVFAIL keeps the last set.
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let cfg = files.write(
        "discover.yaml",
        &format!(
            r#"global:
  interval: 1s
  discover_interval: 1s
  revocation: {{method: off}}
  dns: {{nameservers: ["{dns}"], timeout: 2s, attempts: 1}}
trust_stores:
  public: {{class: public, pem_files: ["{ca}"]}}
policy: {{preset: lync2013}}
endpoints:
  # A configured name resolved through global.dns too (unbound), not the system resolver.
  - {{name: fe01-static, host: fe01.contoso.com, port: {fe_port}}}
discover:
  - {{srv: _sipfederationtls._tcp.fabrikam.com, name: fabrikam}}
"#,
            ca = ca.display(),
            fe_port = lab.fe.port()
        ),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_certprobe"));
    cmd.args(["probe", "-c"])
        .arg(&cfg)
        .args(["--web.listen-address", &listen.to_string()]);
    let _daemon = ChildGuard::spawn(cmd, None, Some(listen), Duration::from_secs(20));
    let bad_series = format!(
        "endpoint=\"fabrikam-sipfederationtls-sip2-fabrikam-com-{}\"",
        lab.fed_bad.port()
    );
    let page = wait_for(listen, "both targets probed", |p| {
        p.contains("certprobe_discovery_targets{source=\"fabrikam\"} 2")
            && p.lines()
                .any(|l| l.starts_with("certprobe_probe_success{") && l.contains(&bad_series))
    });
    assert!(
        page.contains("certprobe_discovery_success{source=\"fabrikam\"} 1"),
        "{page}"
    );
    assert!(page.contains("priority=\"20\""), "{page}");
    assert!(page.contains("weight=\"40\""), "{page}");
    assert!(
        page.contains("certprobe_discovery_last_success_timestamp_seconds{source=\"fabrikam\"}")
    );
    assert!(
        page.lines()
            .any(|l| l.starts_with("certprobe_policy_rule_failed")
                && l.contains(&bad_series)
                && l.contains("rule=\"srv_target_name\"")
                && l.ends_with(" 1")),
        "{page}"
    );

    // The second target's record removed: its endpoint and every series go.
    unbound.set_zone(&zone(&lab, false, false));
    let page = wait_for(listen, "the removed target to vanish", |p| {
        p.contains("certprobe_discovery_targets{source=\"fabrikam\"} 1") && !p.contains(&bad_series)
    });
    assert!(page.contains("sip-fabrikam-com"), "{page}");

    // SERVFAIL: reported, and the last good set stays.
    unbound.set_zone(&zone(&lab, false, true));
    let page = wait_for(listen, "servfail", |p| {
        p.contains("certprobe_discovery_success{source=\"fabrikam\"} 0")
    });
    assert!(
        page.contains("certprobe_discovery_failure{source=\"fabrikam\",reason=\"servfail\"} 1"),
        "{page}"
    );
    assert!(
        page.contains("certprobe_discovery_targets{source=\"fabrikam\"} 1"),
        "{page}"
    );
    let ok_series = format!(
        "endpoint=\"fabrikam-sipfederationtls-sip-fabrikam-com-{}\"",
        lab.fed_ok.port()
    );
    assert!(
        page.lines()
            .any(|l| l.starts_with("certprobe_probe_success{") && l.contains(&ok_series)),
        "{page}"
    );
    drop(s_ok);
    drop(s_bad);
    drop(s_fe);
}
