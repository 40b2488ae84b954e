//! One invalid config fixture per validation rule (tests/fixtures/config/*.yaml), each checked
//! against its exact expected messages (`*.expected`, `{DIR}` = the fixture directory).
//! Set UPDATE_SNAPSHOTS=1 to write missing `.expected` files after reviewing the output.

use std::fs;
use std::path::{Path, PathBuf};

use certprobe::config::Config;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config")
}

/// Copy the fixtures into a temp dir next to generated key material.
fn stage() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(fixture_dir()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "yaml") {
            fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    let client =
        rcgen::generate_simple_self_signed(vec!["client.contoso.com".to_string()]).unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    fs::write(dir.path().join("client.pem"), client.cert.pem()).unwrap();
    write_private(
        &dir.path().join("client.key"),
        &client.signing_key.serialize_pem(),
    );
    write_private(&dir.path().join("other.key"), &other.serialize_pem());
    fs::write(dir.path().join("garbage.txt"), "not a certificate\n").unwrap();
    dir
}

fn write_private(p: &Path, s: &str) {
    fs::write(p, s).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn every_invalid_fixture_fails_with_its_exact_messages() {
    let dir = stage();
    let dir_str = dir.path().display().to_string();
    let mut yamls: Vec<PathBuf> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    yamls.sort();
    assert!(
        yamls.len() >= 20,
        "expected at least 20 fixtures, found {}",
        yamls.len()
    );
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut failures = Vec::new();
    for y in &yamls {
        let stem = y.file_stem().unwrap().to_string_lossy().to_string();
        let errs = match Config::load(y) {
            Ok(_) => {
                failures.push(format!("{stem}: loaded successfully but must fail"));
                continue;
            }
            Err(e) => e,
        };
        let got = format!("{errs}\n").replace(&dir_str, "{DIR}");
        let expected_path = fixture_dir().join(format!("{stem}.expected"));
        match fs::read_to_string(&expected_path) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!("{stem}:\n--- expected\n{want}--- got\n{got}")),
            Err(_) if update => fs::write(&expected_path, &got).unwrap(),
            Err(_) => failures.push(format!("{stem}: no .expected file; got:\n{got}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_valid_config_with_mtls_identity_loads_and_resolves_paths_relative_to_the_file() {
    let dir = stage();
    let p = dir.path().join("ok.yaml");
    fs::write(
        &p,
        "endpoints:\n  - name: edge-int\n    host: lsedge.contoso.net\n    port: 5061\n    client_cert: client.pem\n    client_key: client.key\n    expect_client_auth: required\n    pool: edgepool\n    labels: {site: hq}\n",
    )
    .unwrap();
    let cfg = Config::load(&p).unwrap();
    let ep = &cfg.endpoints[0];
    assert_eq!(ep.meta.endpoint, "edge-int");
    assert_eq!(ep.meta.port, 5061);
    assert_eq!(ep.meta.profile, "default");
    assert_eq!(ep.spec.sni.as_deref(), Some("lsedge.contoso.net"));
    assert!(ep.spec.client_identity.is_some());
    assert!(ep.client_cert.as_ref().unwrap().not_after > 0);
    assert_eq!(
        cfg.stores.stores.len(),
        1,
        "default store is the built-in public one"
    );
    assert_eq!(cfg.stores.stores[0].name, "public");
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
}

#[cfg(unix)]
#[test]
fn a_key_readable_by_others_is_a_warning_and_never_echoes_key_material() {
    use std::os::unix::fs::PermissionsExt;
    let dir = stage();
    let key = dir.path().join("client.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let p = dir.path().join("ok.yaml");
    fs::write(
        &p,
        "endpoints:\n  - name: e\n    host: e.contoso.com\n    client_cert: client.pem\n    client_key: client.key\n",
    )
    .unwrap();
    let cfg = Config::load(&p).unwrap();
    let text: Vec<String> = cfg.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(
        text[0].contains("readable by group/others (mode 644)"),
        "{}",
        text[0]
    );
    let key_pem = fs::read_to_string(&key).unwrap();
    let body_line = key_pem.lines().nth(1).unwrap();
    assert!(!text[0].contains(body_line));
}

#[test]
fn sni_false_sends_no_sni_and_ip_hosts_default_to_none() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.yaml");
    fs::write(
        &p,
        "endpoints:\n  - {name: a, host: a.example.com, sni: false}\n  - {name: b, host: 127.0.0.1}\n  - {name: c, host: 127.0.0.1, sni: c.example.com}\n",
    )
    .unwrap();
    let cfg = Config::load(&p).unwrap();
    assert_eq!(cfg.endpoints[0].spec.sni, None);
    assert_eq!(cfg.endpoints[1].spec.sni, None);
    assert_eq!(cfg.endpoints[2].spec.sni.as_deref(), Some("c.example.com"));
}

#[test]
fn yaml_merge_keys_apply_defaults_to_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.yaml");
    fs::write(
        &p,
        "x-defaults: &d\n  port: 5061\n  pool: fepool\nendpoints:\n  - <<: *d\n    name: fe01\n    host: fe01.contoso.com\n",
    )
    .unwrap();
    // Unknown top-level keys are rejected, so the anchor must live in a known place.
    assert!(Config::load(&p).is_err());
    fs::write(
        &p,
        "endpoints:\n  - &fe\n    name: fe01\n    host: fe01.contoso.com\n    port: 5061\n    pool: fepool\n  - <<: *fe\n    name: fe02\n    host: fe02.contoso.com\n",
    )
    .unwrap();
    let cfg = Config::load(&p).unwrap();
    assert_eq!(cfg.endpoints[1].meta.port, 5061);
    assert_eq!(cfg.endpoints[1].meta.pool.as_deref(), Some("fepool"));
}

#[test]
fn a_shard_split_covers_every_endpoint_exactly_once() {
    use certprobe::config::Shard;
    let names: Vec<String> = (0..1000).map(|i| format!("ep-{i}.contoso.com")).collect();
    for n in [1u32, 2, 3, 7] {
        let mut counts = vec![0usize; n as usize];
        for name in &names {
            let owners: Vec<u32> = (0..n)
                .filter(|i| {
                    Shard {
                        index: *i,
                        count: n,
                    }
                    .owns(name)
                })
                .collect();
            assert_eq!(owners.len(), 1, "{name} owned by {owners:?} of {n}");
            counts[owners[0] as usize] += 1;
        }
        // Stable hash spreads reasonably: no shard is empty for 1000 names.
        assert!(counts.iter().all(|c| *c > 0), "{counts:?}");
    }
}
