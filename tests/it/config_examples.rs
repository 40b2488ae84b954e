//! Every shipped example config validates, the committed JSON schema is current, and the
//! README's quick-start command (`certprobe demo --once`) works.

use std::path::{Path, PathBuf};
use std::process::Command;

use certprobe::config::Config;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn check_config_cli(path: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_certprobe"))
        .args(["check-config", "-c"])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn minimal_and_public_web_examples_pass_check_config() {
    for name in ["minimal.yaml", "public-web.yaml"] {
        let p = repo().join("config").join(name);
        let cfg = Config::load(&p).unwrap_or_else(|e| panic!("{name}:\n{e}"));
        assert!(!cfg.endpoints.is_empty());
        let (code, out) = check_config_cli(&p);
        assert_eq!(code, 0, "{name}: {out}");
        assert!(out.contains(": OK ("), "{out}");
    }
}

#[test]
fn the_lync2013_example_passes_check_config_with_its_certificates_in_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("config/lync2013.yaml"),
        dir.path().join("lync2013.yaml"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    let root = rcgen::generate_simple_self_signed(vec!["root.contoso.com".to_string()]).unwrap();
    let client =
        rcgen::generate_simple_self_signed(vec!["certprobe.contoso.com".to_string()]).unwrap();
    certprobe::demo::pki::write(
        &dir.path().join("certs"),
        "contoso-enterprise-root.pem",
        &root.cert.pem(),
        false,
    )
    .unwrap();
    certprobe::demo::pki::write(
        &dir.path().join("certs"),
        "certprobe-client.pem",
        &client.cert.pem(),
        false,
    )
    .unwrap();
    certprobe::demo::pki::write(
        &dir.path().join("certs"),
        "certprobe-client.key",
        &client.signing_key.serialize_pem(),
        true,
    )
    .unwrap();
    let p = dir.path().join("lync2013.yaml");
    let cfg = Config::load(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.endpoints.len(), 10);
    // Federation partners and the estate's own Lync records come from DNS.
    let sources: Vec<&str> = cfg.discover.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        sources,
        ["contoso.com", "partner-fabrikam", "partner-litware"]
    );
    assert_eq!(cfg.discover[0].queries.len(), 6);
    assert_eq!(cfg.discover[1].queries[0].profile, "federation_partner");
    assert!(cfg.discover[1].template.spec.client_identity.is_some());
    // The STARTTLS examples take their protocol's port.
    let ports: Vec<(String, u16)> = cfg
        .endpoints
        .iter()
        .filter(|e| e.meta.starttls.is_some())
        .map(|e| (e.meta.endpoint.clone(), e.meta.port))
        .collect();
    assert_eq!(
        ports,
        vec![
            ("exchange-smtp".to_string(), 25),
            ("dc01-ldap".to_string(), 389),
            ("xmpp-gateway".to_string(), 5269)
        ]
    );
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    let (code, out) = check_config_cli(&p);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn the_demo_config_validates_once_the_lab_has_written_its_pki() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Only the config is checked here: start the lab to get its PKI files, then drop it.
    let lab = rt
        .block_on(certprobe::demo::lab::Lab::start_on(dir.path(), 21))
        .unwrap_or_else(|e| panic!("starting the lab: {e:#}"));
    let cfg = Config::load(&lab.config_path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.endpoints.len(), 8);
    let (code, out) = check_config_cli(&lab.config_path);
    assert_eq!(code, 0, "{out}");
    drop(lab);
}

#[test]
fn the_committed_json_schema_is_up_to_date() {
    let want = serde_json::to_string_pretty(&certprobe::config::json_schema()).unwrap() + "\n";
    let got = std::fs::read_to_string(repo().join("config/certprobe.schema.json")).unwrap();
    assert!(
        got == want,
        "config/certprobe.schema.json is stale: run `cargo run -- schema > config/certprobe.schema.json`"
    );
    // Documented fields carry their doc comments into the schema.
    assert!(got.contains("Connect to these IP addresses instead of resolving"));
}

/// A reload keeps the state of endpoints whose digest is unchanged. The digest covers the
/// validated endpoint, not the raw YAML: a comment line inserted above an endpoint used to
/// change the digest of every endpoint below it (the raw type carries line/column spans), and
/// a change of `global.revocation` changed none (the raw endpoint does not carry it).
#[test]
fn endpoint_digests_follow_what_defines_the_endpoint_not_where_it_sits_in_the_file() {
    let base = certprobe::config::BaseDir(std::env::temp_dir());
    let yaml = |head: &str, revocation: &str| {
        format!(
            "{head}global:\n  revocation: {{method: {revocation}}}\nendpoints:\n  - {{name: a, host: a.example, port: 443}}\n  - {{name: b, host: b.example, port: 5061}}\n"
        )
    };
    let digests = |text: String| -> Vec<String> {
        Config::from_yaml(&text, "<test>", base.clone())
            .unwrap_or_else(|e| panic!("{e}"))
            .endpoints
            .iter()
            .map(|e| e.digest.clone())
            .collect()
    };
    let before = digests(yaml("", "crl"));
    assert_eq!(before.len(), 2);
    assert_ne!(before[0], before[1]);
    let commented = digests(yaml("# a comment line\n# and another\n", "crl"));
    assert_eq!(before, commented, "a comment moved the endpoints' digests");
    let off = digests(yaml("", "off"));
    assert_ne!(
        before[0], off[0],
        "global.revocation must reach every endpoint"
    );
    assert_ne!(before[1], off[1]);
}

/// `metrics.detail`: `default` unless set, global for every endpoint, an endpoint's own value
/// wins; anything else is rejected with the accepted names; a change moves the digest (a
/// reload rebuilds that endpoint's series).
#[test]
fn metrics_detail_is_global_with_an_endpoint_override_and_validated() {
    use certprobe::vocab::MetricsDetail;
    let base = certprobe::config::BaseDir(std::env::temp_dir());
    let load = |global: &str, b: &str| {
        Config::from_yaml(
            &format!(
                "global:\n{global}endpoints:\n  - {{name: a, host: a.example}}\n  - {{name: b, host: b.example{b}}}\n"
            ),
            "<test>",
            base.clone(),
        )
    };
    let details = |c: Config| -> Vec<(MetricsDetail, String)> {
        c.endpoints
            .iter()
            .map(|e| (e.meta.metrics_detail, e.digest.clone()))
            .collect()
    };
    let plain = details(load("  interval: 60s\n", "").unwrap());
    assert_eq!(plain[0].0, MetricsDetail::Default);
    assert_eq!(plain[1].0, MetricsDetail::Default);
    let one = details(load("  interval: 60s\n", ", metrics: {detail: full}").unwrap());
    assert_eq!(one[0].0, MetricsDetail::Default);
    assert_eq!(one[1].0, MetricsDetail::Full);
    assert_eq!(one[0].1, plain[0].1);
    assert_ne!(one[1].1, plain[1].1, "detail must move the digest");
    let all = details(
        load(
            "  metrics: {detail: full}\n",
            ", metrics: {detail: default}",
        )
        .unwrap(),
    );
    assert_eq!(all[0].0, MetricsDetail::Full);
    assert_eq!(all[1].0, MetricsDetail::Default);
    let err = load("  metrics: {detail: verbose}\n", "")
        .unwrap_err()
        .to_string();
    assert!(err.contains("verbose") && err.contains("full"), "{err}");
    let err = load("  metrics: {level: full}\n", "")
        .unwrap_err()
        .to_string();
    assert!(err.contains("level"), "{err}");
}
