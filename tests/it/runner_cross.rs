//! Cross-endpoint rules applied to a round of outcomes: pool verdicts land on the right members
//! and re-roll their status.

use certprobe::config::{BaseDir, Config};
use certprobe::policy::{Status, Verdict};
use certprobe::probe::Capture;
use certprobe::runner::{self, EvalContext};
use rustls_pki_types::CertificateDer;

fn leaf(names: &[&str]) -> CertificateDer<'static> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    rcgen::generate_simple_self_signed(names)
        .unwrap()
        .cert
        .der()
        .clone()
}

#[test]
fn members_of_an_edge_pool_with_different_keys_get_a_failing_pool_verdict() {
    let yaml = "policy: {preset: lync2013, vars: {sip_domains: [contoso.com]}}\nendpoints:\n  - {name: edge1, host: sip.contoso.com, resolve: [127.0.0.1], profile: edge_external, pool: edgepool}\n  - {name: edge2, host: sip.contoso.com, resolve: [127.0.0.2], profile: edge_external, pool: edgepool}\n  - {name: other, host: web.contoso.com, resolve: [127.0.0.3]}\n";
    let cfg = Config::from_yaml(yaml, "<test>", BaseDir(".".into())).unwrap();
    let ctx = EvalContext {
        stores: cfg.stores.clone(),
        policy: cfg.policy.clone(),
        at: None,
    };
    let now = runner::unix_now();
    let mut outcomes: Vec<_> = cfg
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, ep)| {
            let addr = format!("127.0.0.{}:443", i + 1);
            let mut c = Capture::new(addr.parse().unwrap(), ep.spec.sni.clone());
            // Two different self-signed leaves: different keys in one Edge pool.
            c.chain = vec![leaf(&["sip.contoso.com"])];
            c.tls_version = certprobe::vocab::TlsVersion::from_name("TLSv1.3");
            runner::evaluate_capture(ep, addr, c, &ctx, now)
        })
        .collect();
    let pools = runner::apply_cross_rules(&cfg.policy, &mut outcomes);
    let edge = pools.iter().find(|p| p.pool == "edgepool").unwrap();
    assert!(!edge.consistent, "{edge:?}");
    for o in &outcomes[..2] {
        let v = o
            .evaluation
            .verdict(certprobe::vocab::RuleId::PoolConsistency)
            .expect("pool verdict on each member");
        assert_eq!(v.verdict, Verdict::Fail, "{}: {v:?}", o.target.endpoint);
        assert_eq!(o.evaluation.status, Status::Critical);
    }
    assert!(outcomes[2]
        .evaluation
        .verdict(certprobe::vocab::RuleId::PoolConsistency)
        .is_none());
}
