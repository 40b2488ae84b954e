//! STARTTLS against the real daemons around a Lync estate (Debian packages): postfix (SMTP),
//! dovecot (IMAP, POP3, LMTP, ManageSieve), slapd (LDAP StartTLS), prosody (XMPP c2s and s2s),
//! postgresql, mariadb, vsftpd (FTP AUTH TLS) and INN's innd (NNTP, STARTTLS after MODE READER), each on a loopback port of its own with a
//! certificate from the test PKI; plus hostile in-process peers (a server that never answers
//! EHLO, one that offers STARTTLS then closes, an endless multi-line reply, plain text where a
//! reply code belongs, bytes injected after the go-ahead). Every daemon starts once, in
//! parallel, inside the one test that uses them all.

use crate::support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

fn certprobe(args: &[&str]) -> (i32, Value, String) {
    let bin = std::env::var("CERTPROBE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_certprobe").to_string());
    let mut all = vec!["probe", "--once", "--output", "json"];
    all.extend_from_slice(args);
    let out = Command::new(bin)
        .args(&all)
        .output()
        .expect("run certprobe");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {text}\nstderr: {err}"));
    (out.status.code().unwrap_or(-1), doc, err)
}

fn port() -> u16 {
    free_port("127.0.0.1")
}

fn addr(p: u16) -> SocketAddr {
    ([127, 0, 0, 1], p).into()
}

/// `cmd` run as `user` (setpriv execs, so the guard's signal reaches the daemon itself).
fn as_user(user: &str, program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={user}"),
        &format!("--regid={user}"),
        "--init-groups",
        "--",
        program,
    ]);
    c
}

fn run_ok(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Lab {
    dir: tempfile::TempDir,
    chain: String,
    key: String,
}

impl Lab {
    fn sub(&self, name: &str) -> PathBuf {
        let d = self.dir.path().join(name);
        std::fs::create_dir_all(&d).expect("mkdir");
        write_file(&d, "chain.pem", &self.chain);
        write_file(&d, "key.pem", &self.key);
        let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(&d).status();
        d
    }
}

fn dovecot(lab: &Lab, ports: [u16; 4]) -> ChildGuard {
    let d = lab.sub("dovecot");
    let ds = d.display();
    let [imap, pop3, lmtp, sieve] = ports;
    let conf = format!(
        "base_dir = {ds}/run\nstate_dir = {ds}/state\nlog_path = {ds}/dovecot.log\n\
         protocols = imap pop3 lmtp sieve\nlisten = 127.0.0.1\nssl = yes\n\
         ssl_cert = <{ds}/chain.pem\nssl_key = <{ds}/key.pem\n\
         passdb {{\n  driver = static\n  args = nopassword=y\n}}\n\
         userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home=/tmp\n}}\n\
         service imap-login {{\n  inet_listener imap {{\n    port = {imap}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
         service pop3-login {{\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
         service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {lmtp}\n  }}\n}}\n\
         service managesieve-login {{\n  inet_listener sieve {{\n    port = {sieve}\n  }}\n}}\n"
    );
    let conf = write_file(&d, "dovecot.conf", &conf);
    let mut c = Command::new("dovecot");
    c.arg("-F").arg("-c").arg(conf);
    ChildGuard::spawn(c, None, Some(addr(sieve)), Duration::from_secs(30))
}

fn postfix(lab: &Lab, smtp: u16) -> ChildGuard {
    let d = lab.sub("postfix");
    let ds = d.display();
    let main = format!(
        "compatibility_level = 3.6\nqueue_directory = {ds}/queue\ndata_directory = {ds}/data\n\
         mail_owner = postfix\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n\
         myhostname = mail.starttls.test\nmydestination =\n\
         smtpd_tls_cert_file = {ds}/chain.pem\nsmtpd_tls_key_file = {ds}/key.pem\n\
         smtpd_tls_security_level = may\nmaillog_file = {ds}/maillog\nmaillog_file_prefixes = {ds}\n"
    );
    write_file(&d, "main.cf", &main);
    // Debian's master.cf with smtpd on our address and no chroot.
    let stock = std::fs::read_to_string("/etc/postfix/master.cf").expect("postfix master.cf");
    let mut master = String::new();
    for line in stock.lines() {
        if line.starts_with('#') || line.starts_with([' ', '\t']) || line.trim().is_empty() {
            master.push_str(line);
            master.push('\n');
            continue;
        }
        let mut f: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        if f.len() >= 8 {
            if f[0] == "smtp" && f[1] == "inet" {
                f[0] = format!("127.0.0.1:{smtp}");
            }
            if f[0] == "submission" || f[0] == "smtps" {
                continue;
            }
            f[4] = "n".into();
        }
        master.push_str(&f.join(" "));
        master.push('\n');
    }
    write_file(&d, "master.cf", &master);
    std::fs::create_dir_all(d.join("queue")).expect("queue");
    std::fs::create_dir_all(d.join("data")).expect("data");
    let mut perms = Command::new("postfix");
    perms
        .arg("-c")
        .arg(&d)
        .args(["set-permissions", "create-missing"]);
    run_ok(perms, "postfix set-permissions");
    let mut c = Command::new("/usr/lib/postfix/sbin/master");
    c.arg("-c").arg(&d).arg("-d");
    ChildGuard::spawn(c, None, Some(addr(smtp)), Duration::from_secs(30))
}

fn slapd(lab: &Lab, p: u16) -> ChildGuard {
    let d = lab.sub("slapd");
    let ds = d.display();
    let conf = write_file(
        &d,
        "slapd.conf",
        &format!(
            "include /etc/ldap/schema/core.schema\npidfile {ds}/slapd.pid\n\
             TLSCertificateFile {ds}/chain.pem\nTLSCertificateKeyFile {ds}/key.pem\n"
        ),
    );
    let mut c = Command::new("slapd");
    c.args(["-d", "0", "-h", &format!("ldap://127.0.0.1:{p}/"), "-f"])
        .arg(conf);
    ChildGuard::spawn(c, None, Some(addr(p)), Duration::from_secs(30))
}

fn prosody(lab: &Lab, c2s: u16, s2s: u16) -> ChildGuard {
    let d = lab.sub("prosody");
    std::fs::create_dir_all(d.join("data")).expect("data");
    let ds = d.display();
    let conf = write_file(
        &d,
        "prosody.cfg.lua",
        &format!(
            "pidfile = \"{ds}/prosody.pid\"\ndata_path = \"{ds}/data\"\nrun_as_root = true\n\
             log = {{ {{ levels = {{ min = \"info\" }}, to = \"console\" }} }}\n\
             interfaces = {{ \"127.0.0.1\" }}\nc2s_ports = {{ {c2s} }}\ns2s_ports = {{ {s2s} }}\n\
             c2s_direct_tls_ports = {{ }}\ns2s_secure_auth = false\n\
             modules_enabled = {{ \"tls\", \"dialback\", \"saslauth\", \"disco\" }}\n\
             certificates = \"{ds}/certs\"\n\
             VirtualHost \"xmpp.starttls.test\"\n  ssl = {{ certificate = \"{ds}/chain.pem\", key = \"{ds}/key.pem\" }}\n"
        ),
    );
    let mut c = Command::new("prosody");
    c.arg("--config").arg(conf).arg("-F");
    ChildGuard::spawn(c, None, Some(addr(s2s)), Duration::from_secs(30))
}

fn postgres(lab: &Lab, p: u16) -> ChildGuard {
    let d = lab.sub("postgres");
    let key = d.join("key.pem");
    run_ok(
        {
            let mut c = Command::new("chown");
            c.args(["-R", "postgres"]).arg(&d);
            c
        },
        "chown",
    );
    run_ok(
        {
            let mut c = Command::new("chmod");
            c.arg("600").arg(&key);
            c
        },
        "chmod",
    );
    let bin = Path::new("/usr/lib/postgresql/15/bin");
    let mut init = as_user("postgres", &bin.join("initdb").display().to_string());
    init.arg("-D")
        .arg(d.join("data"))
        .args(["-A", "trust", "-U", "postgres"]);
    run_ok(init, "initdb");
    let mut c = as_user("postgres", &bin.join("postgres").display().to_string());
    c.arg("-D")
        .arg(d.join("data"))
        .arg("-k")
        .arg(&d)
        .args(["-h", "127.0.0.1", "-p", &p.to_string(), "-c", "ssl=on"])
        .arg("-c")
        .arg(format!("ssl_cert_file={}", d.join("chain.pem").display()))
        .arg("-c")
        .arg(format!("ssl_key_file={}", key.display()));
    ChildGuard::spawn(c, None, Some(addr(p)), Duration::from_secs(60))
}

fn mariadb(lab: &Lab, p: u16) -> ChildGuard {
    let d = lab.sub("mariadb");
    run_ok(
        {
            let mut c = Command::new("chown");
            c.args(["-R", "mysql"]).arg(&d);
            c
        },
        "chown",
    );
    let mut init = Command::new("mariadb-install-db");
    init.arg("--user=mysql")
        .arg(format!("--datadir={}", d.join("data").display()))
        .arg("--skip-test-db")
        .arg("--auth-root-authentication-method=normal");
    run_ok(init, "mariadb-install-db");
    let mut c = Command::new("mariadbd");
    c.arg("--no-defaults")
        .arg("--user=mysql")
        .arg(format!("--datadir={}", d.join("data").display()))
        .arg(format!("--socket={}", d.join("sock").display()))
        .arg(format!("--port={p}"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--ssl-cert={}", d.join("chain.pem").display()))
        .arg(format!("--ssl-key={}", d.join("key.pem").display()))
        .arg("--skip-grant-tables");
    ChildGuard::spawn(c, None, Some(addr(p)), Duration::from_secs(60))
}

fn vsftpd(lab: &Lab, p: u16) -> ChildGuard {
    let d = lab.sub("vsftpd");
    std::fs::create_dir_all(d.join("empty")).expect("empty");
    let ds = d.display();
    let conf = write_file(
        &d,
        "vsftpd.conf",
        &format!(
            "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nlisten_port={p}\nbackground=NO\n\
             ssl_enable=YES\nrsa_cert_file={ds}/chain.pem\nrsa_private_key_file={ds}/key.pem\n\
             secure_chroot_dir={ds}/empty\nanonymous_enable=YES\nanon_root={ds}/empty\n\
             no_anon_password=YES\nlocal_enable=NO\nseccomp_sandbox=NO\n"
        ),
    );
    let _ = Command::new("chmod").arg("600").arg(&conf).status();
    let mut c = Command::new("vsftpd");
    c.arg(conf);
    ChildGuard::spawn(c, None, Some(addr(p)), Duration::from_secs(30))
}

/// INN's innd (Debian inn2) as a private instance: its own inn.conf (via `INNCONF`) with every
/// path under the lab directory, the packaged configuration files copied beside it, an active
/// file and an empty history. innd is a mode-switching server: STARTTLS is offered only after
/// `MODE READER` hands the connection to nnrpd, which serves the lab's certificate.
fn innd(lab: &Lab, p: u16) -> ChildGuard {
    let d = lab.sub("inn");
    let ds = d.display();
    run_ok(
        {
            let mut c = Command::new("cp");
            c.arg("-a").arg("/etc/news/.").arg(d.join("etc"));
            c
        },
        "copy /etc/news",
    );
    let packaged = std::fs::read_to_string("/etc/news/inn.conf").expect("/etc/news/inn.conf");
    let overrides = [
        ("pathetc", format!("{ds}/etc")),
        ("pathdb", format!("{ds}/db")),
        ("pathrun", format!("{ds}/run")),
        ("pathspool", format!("{ds}/spool")),
        ("patharticles", format!("{ds}/spool/articles")),
        ("pathoverview", format!("{ds}/spool/overview")),
        ("pathincoming", format!("{ds}/spool/incoming")),
        ("pathoutgoing", format!("{ds}/spool/outgoing")),
        ("patharchive", format!("{ds}/spool/archive")),
        ("pathlog", format!("{ds}/log")),
        ("pathtmp", format!("{ds}/tmp")),
        ("pathhttp", format!("{ds}/http")),
        ("port", p.to_string()),
        ("bindaddress", "127.0.0.1".into()),
        ("bindaddress6", "none".into()),
        ("domain", "starttls.test".into()),
        ("pathhost", "news.starttls.test".into()),
        ("server", "127.0.0.1".into()),
        ("tlscertfile", format!("{ds}/chain.pem")),
        ("tlskeyfile", format!("{ds}/key.pem")),
    ];
    let mut conf: String = packaged
        .lines()
        .filter(|l| {
            let key = l
                .split(':')
                .next()
                .unwrap_or("")
                .trim_start_matches('#')
                .trim();
            !overrides.iter().any(|(k, _)| *k == key)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    for (k, v) in &overrides {
        conf.push_str(&format!("{k}: {v}\n"));
    }
    write_file(&d.join("etc"), "inn.conf", &conf);
    for sub in [
        "db",
        "run",
        "spool/articles",
        "spool/overview",
        "spool/incoming/bad",
        "spool/outgoing",
        "spool/archive",
        "log",
        "tmp",
        "http",
    ] {
        std::fs::create_dir_all(d.join(sub)).expect("mkdir");
    }
    write_file(
        &d.join("db"),
        "active",
        "control 0000000000 0000000001 n\ncontrol.cancel 0000000000 0000000001 n\njunk 0000000000 0000000001 n\n",
    );
    for f in ["newsgroups", "active.times", "history"] {
        write_file(&d.join("db"), f, "");
    }
    run_ok(
        {
            let mut c = Command::new("chown");
            c.arg("-R").arg("news:news").arg(&d);
            c
        },
        "chown news",
    );
    let _ = Command::new("chmod")
        .arg("600")
        .arg(d.join("key.pem"))
        .status();
    let innconf = d.join("etc/inn.conf");
    run_ok(
        {
            let mut c = as_user("news", "/usr/lib/news/bin/makedbz");
            c.args(["-i", "-o"])
                .current_dir(d.join("db"))
                .env("INNCONF", &innconf);
            c
        },
        "makedbz",
    );
    let mut c = as_user("news", "/usr/lib/news/bin/innd");
    c.arg("-f").env("INNCONF", &innconf);
    ChildGuard::spawn(c, None, Some(addr(p)), Duration::from_secs(30))
}

/// Every protocol against its real server: the upgrade succeeds, the chain is the test PKI's,
/// the verdict is OK against its root, and the facts an operator checks are reported.
#[test]
fn every_starttls_protocol_against_its_real_server() {
    let pki = Pki::new(
        "starttls",
        &["mail.starttls.test", "xmpp.starttls.test", "127.0.0.1"],
    );
    let lab = Lab {
        dir: tempfile::tempdir().expect("tempdir"),
        chain: pki.chain_pem(),
        key: pki.leaf.key_pem.clone(),
    };
    let _ = Command::new("chmod")
        .arg("755")
        .arg(lab.dir.path())
        .status();
    let root = write_file(lab.dir.path(), "root.pem", &pki.root.pem);
    let [smtp, imap, pop3, lmtp, sieve, ldap, c2s, s2s, pg, my, ftp, nntp] =
        [(); 12].map(|_| port());
    // Start the daemons in parallel: postgres' and mariadb's initialisation dominate.
    let guards: Vec<ChildGuard> = std::thread::scope(|s| {
        let lab = &lab;
        let hs = vec![
            s.spawn(move || dovecot(lab, [imap, pop3, lmtp, sieve])),
            s.spawn(move || postfix(lab, smtp)),
            s.spawn(move || slapd(lab, ldap)),
            s.spawn(move || prosody(lab, c2s, s2s)),
            s.spawn(move || postgres(lab, pg)),
            s.spawn(move || mariadb(lab, my)),
            s.spawn(move || vsftpd(lab, ftp)),
            s.spawn(move || innd(lab, nntp)),
        ];
        hs.into_iter()
            .map(|h| h.join().expect("daemon started"))
            .collect()
    });
    let root = root.display().to_string();
    let cases: &[(&str, u16, &str)] = &[
        ("smtp", smtp, "mail.starttls.test"),
        ("lmtp", lmtp, "mail.starttls.test"),
        ("imap", imap, "mail.starttls.test"),
        ("pop3", pop3, "mail.starttls.test"),
        ("sieve", sieve, "mail.starttls.test"),
        ("ldap", ldap, "mail.starttls.test"),
        ("xmpp-client", c2s, "xmpp.starttls.test"),
        ("xmpp-server", s2s, "xmpp.starttls.test"),
        ("postgres", pg, "mail.starttls.test"),
        ("mysql", my, "mail.starttls.test"),
        ("ftp", ftp, "mail.starttls.test"),
        ("nntp", nntp, "mail.starttls.test"),
    ];
    let leaf_fp = certprobe::chain::parse_cert(&pki.leaf.cert)
        .expect("leaf")
        .fingerprint_sha256;
    let mut failures = Vec::new();
    for (proto, p, sni) in cases {
        let target = format!("127.0.0.1:{p}");
        let (code, doc, err) = certprobe(&[
            "--target",
            &target,
            "--sni",
            sni,
            "--starttls",
            proto,
            "--ca",
            &root,
            "--key-type",
            "ecdsa",
        ]);
        let r = &doc["results"][0];
        let c = &r["capture"];
        let ok = code == 0
            && c["failure"].is_null()
            && c["tls_version"] == "TLSv1.3"
            && r["chain"][0]["fingerprint_sha256"] == leaf_fp.as_str()
            && c["starttls"]["protocol"] == *proto;
        if !ok {
            failures.push(format!(
                "{proto}: exit {code}, capture {c:#}, evaluation {:#}\n{err}",
                r["evaluation"]
            ));
            continue;
        }
        let facts = &c["starttls"];
        let fact_ok = match *proto {
            "smtp" => {
                facts["banner"]
                    .as_str()
                    .is_some_and(|b| b.contains("Postfix"))
                    && facts["capabilities"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|c| c == "STARTTLS"))
                    && facts["hello_name"] == "certprobe.invalid"
            }
            "imap" | "pop3" | "lmtp" => facts["banner"]
                .as_str()
                .is_some_and(|b| b.contains("Dovecot")),
            "sieve" => facts["banner"]
                .as_str()
                .is_some_and(|b| b.contains("Pigeonhole")),
            "xmpp-client" => facts["xmpp_from"] == "xmpp.starttls.test",
            "xmpp-server" => {
                facts["xmpp_from"] == "xmpp.starttls.test" && facts["xmpp_dialback"] == true
            }
            "mysql" => facts["server_version"]
                .as_str()
                .is_some_and(|v| v.contains("MariaDB")),
            "ftp" => facts["banner"]
                .as_str()
                .is_some_and(|b| b.contains("vsFTPd")),
            // The transit greeting, then nnrpd's capabilities after MODE READER.
            "nntp" => {
                facts["banner"]
                    .as_str()
                    .is_some_and(|b| b.contains("InterNetNews"))
                    && facts["capabilities"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|c| c == "READER"))
            }
            _ => true,
        };
        if !fact_ok {
            failures.push(format!("{proto}: facts {facts:#}"));
        }
    }
    // An SMTP probe without --starttls at the STARTTLS port: the banner is not TLS.
    let (_, doc, _) = certprobe(&["--target", &format!("127.0.0.1:{smtp}"), "--timeout", "2s"]);
    let reason = doc["results"][0]["capture"]["failure"]["reason"].clone();
    if reason != "not_tls" {
        failures.push(format!("implicit TLS at the SMTP port: reason {reason}"));
    }
    for mut g in guards {
        let _ = g.terminate(Duration::from_secs(5));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A scripted plaintext peer: sends `greeting`, then answers each line it receives with the
/// next of `answers` (raw bytes) per request it reads, then stays open (or closes when
/// `close_after`).
async fn scripted(
    greeting: &'static [u8],
    answers: Vec<&'static [u8]>,
    close_after: bool,
) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let a = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let answers = answers.clone();
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = w.write_all(greeting).await;
                let mut buf = [0u8; 4096];
                for ans in answers {
                    // Each request (a command line, an SSLRequest) arrives in one write.
                    if r.read(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let _ = w.write_all(ans).await;
                }
                if close_after {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    a
}

fn reason_of(doc: &Value) -> (String, String) {
    let f = &doc["results"][0]["capture"]["failure"];
    (
        f["reason"].as_str().unwrap_or("none").to_string(),
        f["detail"].as_str().unwrap_or("").to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_starttls_peers_get_typed_reasons_within_the_timeout() {
    // Each case: (greeting, answers, close, protocol, expected reason, detail fragment).
    let endless: &'static [u8] = Box::leak(
        std::iter::repeat_n("250-X\r\n", 20_000)
            .collect::<String>()
            .into_bytes()
            .into_boxed_slice(),
    );
    type Case = (
        &'static [u8],
        Vec<&'static [u8]>,
        bool,
        &'static str,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        // Greets, never answers EHLO.
        (
            b"220 mx ESMTP\r\n",
            vec![],
            false,
            "smtp",
            "handshake_timeout",
            "did not answer",
        ),
        // Offers STARTTLS, then closes instead of answering it.
        (
            b"220 mx\r\n",
            vec![b"250-mx\r\n250 STARTTLS\r\n"],
            true,
            "smtp",
            "starttls_protocol",
            "closed",
        ),
        // An endless multi-line EHLO answer.
        (
            b"220 mx\r\n",
            vec![endless],
            false,
            "smtp",
            "starttls_protocol",
            "256 lines",
        ),
        // Plain text where the STARTTLS reply code belongs.
        (
            b"220 mx\r\n",
            vec![b"250-mx\r\n250 STARTTLS\r\n", b"hello there\r\n"],
            false,
            "smtp",
            "starttls_protocol",
            "not a numeric reply",
        ),
        // No STARTTLS offered.
        (
            b"220 mx\r\n",
            vec![b"250-mx\r\n250 SIZE 100\r\n"],
            false,
            "smtp",
            "starttls_unsupported",
            "does not offer STARTTLS",
        ),
        // STARTTLS refused.
        (
            b"220 mx\r\n",
            vec![
                b"250-mx\r\n250 STARTTLS\r\n",
                b"454 4.7.0 TLS not available\r\n",
            ],
            false,
            "smtp",
            "starttls_refused",
            "454",
        ),
        // Data injected after the go-ahead (CVE-2011-0411 pattern).
        (
            b"220 mx\r\n",
            vec![b"250-mx\r\n250 STARTTLS\r\n", b"220 go\r\n250 injected\r\n"],
            false,
            "smtp",
            "starttls_protocol",
            "injection",
        ),
        // IMAP: BYE greeting.
        (
            b"* BYE go away\r\n",
            vec![],
            false,
            "imap",
            "starttls_refused",
            "BYE",
        ),
        // POP3 without STLS.
        (
            b"+OK hi\r\n",
            vec![b"+OK\r\nUSER\r\n.\r\n"],
            false,
            "pop3",
            "starttls_unsupported",
            "STLS",
        ),
        // PostgreSQL with TLS off.
        (
            b"",
            vec![b"N"],
            false,
            "postgres",
            "starttls_refused",
            "TLS off",
        ),
    ];
    let mut failures = Vec::new();
    for (greeting, answers, close, proto, want, frag) in cases {
        let a = scripted(greeting, answers, close).await;
        let target = a.to_string();
        let (proto, want, frag) = (proto.to_string(), want.to_string(), frag.to_string());
        let started = std::time::Instant::now();
        let doc = tokio::task::spawn_blocking(move || {
            certprobe(&[
                "--target",
                &target,
                "--starttls",
                &proto,
                "--timeout",
                "1s",
                "--key-type",
                "ecdsa",
            ])
            .1
        })
        .await
        .expect("join");
        let (reason, detail) = reason_of(&doc);
        if reason != want || !detail.contains(&frag) {
            failures.push(format!("{want}/{frag}: got {reason}: {detail}"));
        }
        // Bounded: the 1 s step timeout plus the process, never the server's 30 s.
        if started.elapsed() > Duration::from_secs(10) {
            failures.push(format!("{want}: took {:?}", started.elapsed()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
