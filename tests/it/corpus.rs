//! External test suites: C2SP/x509-limbo and NIST PKITS, run through certprobe's own chain
//! evaluator (`chain::analyze`). Data under tests/data (see tests/data/README.md).
//!
//! A case SUCCEEDS for certprobe iff some store verified the chain, the expected name matched
//! (SAN only, no CN fallback) and no store reported BadEku. Every `core` case must agree with
//! the expected result or be listed in tests/data/known-divergences.tsv with a reason; a listed
//! case that now agrees also fails the test (the list must stay honest). `optional` cases are
//! informational. `pathological::*` cases must finish within a time bound (a correctness bound
//! against path-building explosions, not a performance claim).
//!
//! Run: `cargo test --test it corpus:: -- --nocapture` (prints the agreement figures).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use certprobe::chain::{analyze, NameCheck, StoreClass, TrustStore, TrustStores, VerifyErrorKind};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::Deserialize;

fn data(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(p)
}

/// Fixed evaluation time for cases without one (limbo certificates are valid 1970..2969; the
/// PKITS anchor is valid 2010..2030): 2025-01-01T00:00:00Z.
const FIXED_TIME: u64 = 1_735_689_600;
/// Pathological cases must finish within this bound.
const PATHOLOGICAL_BOUND: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
struct Limbo {
    testcases: Vec<LimboCase>,
}

#[derive(Deserialize)]
struct LimboCase {
    id: String,
    validation_kind: String,
    trusted_certs: Vec<String>,
    untrusted_intermediates: Vec<String>,
    peer_certificate: String,
    validation_time: Option<String>,
    expected_peer_name: Option<PeerName>,
    expected_result: String,
}

#[derive(Deserialize)]
struct PeerName {
    kind: String,
    value: String,
}

fn known_divergences() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(data("known-divergences.tsv")).unwrap();
    let mut m = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, reason) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("known-divergences.tsv: no TAB in {line:?}"));
        assert!(
            !reason.trim().is_empty(),
            "known-divergences.tsv: {id} has no reason"
        );
        assert!(
            m.insert(id.to_string(), reason.to_string()).is_none(),
            "duplicate {id}"
        );
    }
    m
}

fn pem_cert(s: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(s.as_bytes()).expect("PEM certificate")
}

fn parse_time(s: &str) -> UnixTime {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("validation_time {s:?}: {e}"));
    UnixTime::since_unix_epoch(Duration::from_secs(t.unix_timestamp() as u64))
}

/// certprobe's verdict for one chain: trusted by some store, name matched, EKU fine.
fn certprobe_accepts(
    chain: &[CertificateDer<'static>],
    name: Option<&str>,
    stores: &TrustStores,
    now: UnixTime,
) -> (bool, String) {
    let check = name.map(|n| NameCheck {
        name: n.to_string(),
        allow_cn_fallback: false,
    });
    let r = analyze(chain, check.as_ref(), stores, now);
    let trusted = r.stores.iter().any(|s| s.verified);
    let bad_eku = r
        .stores
        .iter()
        .any(|s| s.error == Some(VerifyErrorKind::BadEku));
    let name_ok = r.hostname.as_ref().is_none_or(|h| h.matched);
    let why = format!(
        "stores={:?} hostname={:?}",
        r.stores
            .iter()
            .map(|s| (s.verified, s.legacy_algorithms, s.error, s.detail.clone()))
            .collect::<Vec<_>>(),
        r.hostname
            .as_ref()
            .map(|h| (h.matched, h.matched_by.clone()))
    );
    (trusted && name_ok && !bad_eku, why)
}

struct Tally {
    agree: usize,
    known: usize,
    unexpected: Vec<String>,
    stale: Vec<String>,
}

fn tally(
    suite: &str,
    results: &[(String, bool, bool, String)],
    known: &BTreeMap<String, String>,
) -> Tally {
    let mut t = Tally {
        agree: 0,
        known: 0,
        unexpected: Vec::new(),
        stale: Vec::new(),
    };
    for (id, expected, got, why) in results {
        let listed = known.contains_key(id);
        match (expected == got, listed) {
            (true, false) => t.agree += 1,
            (true, true) => t.stale.push(id.clone()),
            (false, true) => t.known += 1,
            (false, false) => t.unexpected.push(format!(
                "{id}: expected {}, certprobe says {} ({why})",
                if *expected { "SUCCESS" } else { "FAILURE" },
                if *got { "SUCCESS" } else { "FAILURE" }
            )),
        }
    }
    println!(
        "{suite}: {} agree, {} known divergences, {} unexpected, {} stale (of {})",
        t.agree,
        t.known,
        t.unexpected.len(),
        t.stale.len(),
        results.len()
    );
    t
}

/// Optional cases are informational: print the agreement and the disagreeing ids.
fn report_optional(suite: &str, results: &[(String, bool, bool, String)]) {
    let disagree: Vec<&str> = results
        .iter()
        .filter(|r| r.1 != r.2)
        .map(|r| r.0.as_str())
        .collect();
    println!(
        "{suite}: {} agree, {} disagree (informational, of {}): {disagree:?}",
        results.len() - disagree.len(),
        disagree.len(),
        results.len()
    );
}

#[test]
fn limbo_core_server_cases_agree_or_are_known_divergences_and_optional_ones_are_reported() {
    let limbo: Limbo =
        serde_json::from_str(&std::fs::read_to_string(data("x509-limbo/limbo.json")).unwrap())
            .unwrap();
    let scopes: BTreeMap<String, String> =
        std::fs::read_to_string(data("x509-limbo/prober-subset.tsv"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                (cols[0].to_string(), cols[4].to_string())
            })
            .collect();
    let known = known_divergences();
    let mut core = Vec::new();
    let mut optional = Vec::new();
    let mut slow = Vec::new();
    let mut pathological = 0;
    for case in &limbo.testcases {
        let scope = scopes
            .get(&case.id)
            .map(String::as_str)
            .unwrap_or("missing");
        if case.validation_kind != "SERVER" || !matches!(scope, "core" | "optional") {
            continue;
        }
        let stores = TrustStores {
            // x509-limbo's trusted_certs are anchors whatever they are (some are not
            // self-signed).
            stores: vec![TrustStore::from_anchors(
                "limbo",
                StoreClass::Internal,
                case.trusted_certs.iter().map(|p| pem_cert(p)).collect(),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", case.id))],
        };
        let mut chain = vec![pem_cert(&case.peer_certificate)];
        chain.extend(case.untrusted_intermediates.iter().map(|p| pem_cert(p)));
        let now = case
            .validation_time
            .as_deref()
            .map(parse_time)
            .unwrap_or(UnixTime::since_unix_epoch(Duration::from_secs(FIXED_TIME)));
        let name = case.expected_peer_name.as_ref().map(|n| {
            assert!(
                matches!(n.kind.as_str(), "DNS" | "IP"),
                "{}: {}",
                case.id,
                n.kind
            );
            n.value.as_str()
        });
        let started = Instant::now();
        let (got, why) = certprobe_accepts(&chain, name, &stores, now);
        let took = started.elapsed();
        if case.id.starts_with("pathological::") {
            pathological += 1;
            if took >= PATHOLOGICAL_BOUND {
                slow.push(format!("{} took {took:?}", case.id));
            }
        }
        let expected = case.expected_result == "SUCCESS";
        let row = (case.id.clone(), expected, got, why);
        if scope == "core" {
            core.push(row);
        } else {
            optional.push(row);
        }
    }
    assert_eq!(
        core.len(),
        100,
        "all 100 core cases are SERVER cases and were run"
    );
    assert!(pathological > 0);
    let known_limbo: BTreeMap<_, _> = known
        .iter()
        .filter(|(k, _)| !k.starts_with("pkits::"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Every listed limbo divergence must be a core case.
    let core_ids: BTreeSet<&String> = core.iter().map(|r| &r.0).collect();
    for id in known_limbo.keys() {
        assert!(
            core_ids.contains(id),
            "known-divergences.tsv lists {id}, not a core case"
        );
    }
    let c = tally("limbo core", &core, &known_limbo);
    report_optional("limbo optional", &optional);
    assert!(
        slow.is_empty(),
        "pathological cases over {PATHOLOGICAL_BOUND:?}: {slow:?}"
    );
    assert!(
        c.unexpected.is_empty(),
        "unexpected core mismatches: {:#?}",
        c.unexpected
    );
    assert!(
        c.stale.is_empty(),
        "listed divergences that now agree: {:?}",
        c.stale
    );
}

#[test]
fn pkits_core_cases_agree_or_are_known_divergences_and_optional_ones_are_reported() {
    let dir = data("pkits/certs");
    let anchor =
        CertificateDer::from(std::fs::read(dir.join("TrustAnchorRootCertificate.crt")).unwrap());
    let stores = TrustStores {
        stores: vec![TrustStore::from_bundle("pkits", StoreClass::Internal, vec![anchor]).unwrap()],
    };
    // Every non-end-entity certificate is the untrusted pool; path building picks.
    let mut pool_names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.ends_with("EE.crt") && n != "TrustAnchorRootCertificate.crt")
        .collect();
    pool_names.sort();
    let pool: Vec<CertificateDer<'static>> = pool_names
        .iter()
        .map(|n| CertificateDer::from(std::fs::read(dir.join(n)).unwrap()))
        .collect();
    let now = UnixTime::since_unix_epoch(Duration::from_secs(FIXED_TIME));
    let known = known_divergences();
    let mut core = Vec::new();
    let mut optional = Vec::new();
    for line in std::fs::read_to_string(data("pkits/index.tsv"))
        .unwrap()
        .lines()
    {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, expected, scope) = (cols[0], cols[1], cols[3]);
        if !matches!(scope, "core" | "optional") {
            continue;
        }
        let mut chain = vec![CertificateDer::from(std::fs::read(dir.join(file)).unwrap())];
        chain.extend(pool.iter().cloned());
        let started = Instant::now();
        let (got, why) = certprobe_accepts(&chain, None, &stores, now);
        assert!(
            started.elapsed() < PATHOLOGICAL_BOUND,
            "{file} took {:?}",
            started.elapsed()
        );
        let row = (format!("pkits::{file}"), expected == "SUCCESS", got, why);
        if scope == "core" {
            core.push(row);
        } else {
            optional.push(row);
        }
    }
    assert_eq!(core.len(), 44);
    let known_pkits: BTreeMap<_, _> = known
        .iter()
        .filter(|(k, _)| k.starts_with("pkits::"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let c = tally("pkits core", &core, &known_pkits);
    report_optional("pkits optional", &optional);
    assert!(
        c.unexpected.is_empty(),
        "unexpected core mismatches: {:#?}",
        c.unexpected
    );
    assert!(
        c.stale.is_empty(),
        "listed divergences that now agree: {:?}",
        c.stale
    );
}
