//! The README's first command: `certprobe demo --once` probes the embedded Lync 2013 lab and
//! reports its deliberate problems with the CRITICAL exit code.

use std::process::Command;

#[test]
fn demo_once_reports_the_labs_deliberate_problems_and_exits_critical() {
    // The README's exact command (default lab net 127.0.10.x).
    let out = Command::new(env!("CARGO_BIN_EXE_certprobe"))
        .args(["demo", "--once"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let row = |ep: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(ep))
            .unwrap_or_else(|| panic!("no row for {ep}:\n{stdout}"))
            .to_string()
    };
    assert!(row("fe01").starts_with("OK "), "{}", row("fe01"));
    assert!(row("fe02").starts_with("WARNING "), "{}", row("fe02"));
    assert!(row("director").starts_with("OK "));
    assert!(row("edge-internal").starts_with("OK "));
    assert!(row("fe-web-internal").starts_with("WARNING "));
    assert!(row("edge-external").starts_with("CRITICAL "));
    assert!(row("reverse-proxy").starts_with("CRITICAL "));
    assert!(row("partner-fabrikam").starts_with("CRITICAL "));
    for needle in [
        "WARN expiry:",
        "WARN signature_hash: CN=lyncweb.contoso.com signed with sha1",
        "FAIL san_wildcard: wildcard SAN *.contoso.com",
        "lacks sip.fabrikam.com",
        "lacks lyncdiscover.fabrikam.com",
        "FAIL trusted:",
        "pool fepool: INCONSISTENT",
        "mtls enforced: yes",
        // Revocation at work: the lab's CAs publish CRLs on 127.0.10.9:18080.
        "FAIL revocation: revoked: CN=sip.contoso.com",
        "reason keyCompromise",
        "WARN crl_fresh: CRL http://127.0.10.9:18080/public/tls-2.crl expires at",
        "revocation [0]: good (crl)",
        "CRITICAL: 8 probed, 3 ok, 2 warning, 3 critical, 0 unknown",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
}

#[test]
fn demo_once_json_carries_fingerprints_and_verdicts() {
    let out = Command::new(env!("CARGO_BIN_EXE_certprobe"))
        .args(["demo", "--once", "--output", "json", "--lab-net", "22"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["version"], 2);
    assert_eq!(doc["exit_code"], 2);
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 8);
    for r in results {
        let fp = r["chain"][0]["fingerprint_sha256"].as_str().unwrap();
        // The parsed chain is printed once, as `chain`; `report` has the rest.
        assert!(r["report"]["stores"].is_array(), "{r}");
        assert!(r["report"].get("certs").is_none(), "{r}");
        assert_eq!(fp.len(), 64);
        assert!(fp
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
    let edge = results
        .iter()
        .find(|r| r["endpoint"] == "edge-external")
        .unwrap();
    let rules: Vec<(&str, &str)> = edge["evaluation"]["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["rule"].as_str().unwrap(), v["verdict"].as_str().unwrap()))
        .collect();
    assert!(rules.contains(&("san_wildcard", "fail")), "{rules:?}");
    assert!(rules.contains(&("trusted", "pass")), "{rules:?}");
}
