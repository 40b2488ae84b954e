//! `certprobe inspect`: the full parsed chain of a PEM file and of a live endpoint.

use std::process::Command;

#[test]
fn inspect_prints_every_certificate_of_a_pem_chain_with_its_facts() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/src/demo/fixtures");
    let leaf = std::fs::read_to_string(format!("{fixtures}/legacy-sha1-leaf.pem")).unwrap();
    let root = std::fs::read_to_string(format!("{fixtures}/legacy-sha1-root.pem")).unwrap();
    let chain = dir.path().join("chain.pem");
    std::fs::write(&chain, format!("{leaf}{root}")).unwrap();
    let roots = dir.path().join("root.pem");
    std::fs::write(&roots, &root).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_certprobe"))
        .args(["inspect", "--file"])
        .arg(&chain)
        .args(["--sni", "lyncweb.contoso.com", "--ca"])
        .arg(&roots)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("[0] subject: CN=lyncweb.contoso.com"),
        "{text}"
    );
    assert!(
        text.contains("[1] subject: CN=Contoso Legacy WS2003 Root CA,DC=contoso,DC=com"),
        "{text}"
    );
    assert!(text.contains("sha1WithRSAEncryption"), "{text}");
    assert!(text.contains("\"template_name\":\"WebServer\""), "{text}");
    assert!(
        text.contains("ldap:///CN=Contoso%20Legacy%20WS2003%20Root%20CA"),
        "{text}"
    );
    assert!(text.contains("store internal: verified"), "{text}");
    assert!(text.contains("store public: unknown_issuer ("), "{text}");
    assert!(
        text.contains("hostname lyncweb.contoso.com: match"),
        "{text}"
    );
}

#[test]
fn inspect_json_of_a_live_endpoint_carries_the_parsed_chain() {
    // A live TLS server on loopback: the demo lab's Front End (127.0.41.1:15061).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lab = rt
        .block_on(certprobe::demo::lab::Lab::start_on(dir.path(), 41))
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_certprobe"))
        .args([
            "inspect",
            "--target",
            "127.0.41.1:15061",
            "--sni",
            "fepool.contoso.com",
            "--output",
            "json",
            "--ca",
        ])
        .arg(dir.path().join("internal-root.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = &v[0];
    assert_eq!(report["certs"][0]["subject_cn"], "fepool.contoso.com");
    assert_eq!(report["certs"][0]["adcs"]["template_name"], "WebServer");
    assert_eq!(report["certs"][1]["adcs"]["ca_version"], "V0.0");
    assert_eq!(report["stores"][0]["store"], "internal");
    assert_eq!(report["stores"][0]["verified"], true);
    assert_eq!(report["hostname"]["matched"], true);
    drop(lab);
}
