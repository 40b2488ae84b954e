//! Endpoints from DNS: `discover:` sources (an SRV name, or a Lync SIP domain that expands to
//! the records Lync clients and federation partners use) become endpoints, one per SRV target
//! (or per lyncdiscover host), re-resolved every `global.discover_interval`.
//!
//! The split is the usual one: [`lookup`] asks DNS (I/O, bounded), [`build`] turns the answers
//! into endpoints (pure: the answers are its inputs), and the daemon keeps the last good set of
//! a source whose lookup failed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::Endpoint;
use crate::dns::{DnsFailure, DnsReason, HostAnswer, Resolver, SrvRecord};
pub use crate::vocab::DiscoveryRecord;

/// Default `global.discover_interval`.
pub const DEFAULT_DISCOVER_INTERVAL: Duration = Duration::from_secs(300);
/// Default and largest `max_targets` of one source.
pub const DEFAULT_MAX_TARGETS: usize = 32;
pub const MAX_MAX_TARGETS: usize = 256;

/// What a source asks DNS for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// `srv: NAME`.
    Srv(String),
    /// `lync_domain: DOMAIN`: every Lync record of the domain.
    LyncDomain(String),
}

/// One query of a source: a record kind, the name asked, the profile and defaults for its
/// endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub record: DiscoveryRecord,
    /// `_sipfederationtls._tcp.fabrikam.com` or `lyncdiscover.contoso.com`.
    pub name: String,
    /// The SIP domain the record belongs to (the part after `_service._proto.`).
    pub domain: String,
    /// Profile of the endpoints found.
    pub profile: String,
    /// Host records (lyncdiscover): the port to probe (443).
    pub host_port: Option<u16>,
}

impl DiscoveryRecord {
    /// The record's owner-name prefix and the lync2013 profile of its role.
    pub fn lync_parts(self) -> (&'static str, &'static str) {
        match self {
            Self::SipTls => ("_sip._tls.", "edge_external"),
            Self::SipInternalTls => ("_sipinternaltls._tcp.", "fe_default"),
            Self::LyncDiscover => ("lyncdiscover.", "reverse_proxy"),
            Self::LyncDiscoverInternal => ("lyncdiscoverinternal.", "fe_web_internal"),
            Self::SipFederationTls => ("_sipfederationtls._tcp.", "edge_external"),
            Self::XmppServer => ("_xmpp-server._tcp.", "edge_external"),
            Self::Srv => ("", "default"),
        }
    }

    /// A host (A/AAAA/CNAME) record rather than SRV.
    pub fn is_host(self) -> bool {
        matches!(self, Self::LyncDiscover | Self::LyncDiscoverInternal)
    }

    /// The record kind an SRV name is (`_sipfederationtls._tcp.x` is `sipfederationtls`).
    pub fn of_srv_name(name: &str) -> Self {
        let n = name.to_ascii_lowercase();
        [
            Self::SipTls,
            Self::SipInternalTls,
            Self::SipFederationTls,
            Self::XmppServer,
        ]
        .into_iter()
        .find(|r| n.starts_with(r.lync_parts().0))
        .unwrap_or(Self::Srv)
    }
}

/// The Lync records of a domain, in the order they are reported.
pub const LYNC_RECORDS: [DiscoveryRecord; 6] = [
    DiscoveryRecord::SipTls,
    DiscoveryRecord::SipInternalTls,
    DiscoveryRecord::LyncDiscover,
    DiscoveryRecord::LyncDiscoverInternal,
    DiscoveryRecord::SipFederationTls,
    DiscoveryRecord::XmppServer,
];

/// A validated `discover:` entry.
#[derive(Debug, Clone)]
pub struct Source {
    /// The `source` label: `name:` or derived from the SRV name / domain.
    pub id: String,
    pub kind: SourceKind,
    pub queries: Vec<Query>,
    /// Every discovered endpoint starts as a copy of this one (client certificate, labels,
    /// timeouts, pool...), with host, port, SNI, name and profile set per target.
    pub template: Arc<Endpoint>,
    pub max_targets: usize,
    /// `require_sip_domain:` of the entry (None: the profile's `srv_target_name` decides).
    pub require_sip_domain: Option<bool>,
}

/// The part of an SRV name after `_service._proto.` (the domain), else the name itself.
pub fn srv_domain(name: &str) -> String {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = n.split('.').collect();
    let skip = labels.iter().take_while(|l| l.starts_with('_')).count();
    labels[skip.min(labels.len())..].join(".")
}

/// The queries of a source; `profile` (when given) overrides the role profiles.
pub fn queries(kind: &SourceKind, profile: Option<&str>) -> Vec<Query> {
    match kind {
        SourceKind::Srv(name) => {
            let record = DiscoveryRecord::of_srv_name(name);
            // One federation SRV name on its own is a partner's (your own domain's records
            // come with `lync_domain`).
            let role = match record {
                DiscoveryRecord::SipFederationTls => "federation_partner",
                r => r.lync_parts().1,
            };
            vec![Query {
                record,
                name: name.trim_end_matches('.').to_ascii_lowercase(),
                domain: srv_domain(name),
                profile: profile.unwrap_or(role).to_string(),
                host_port: None,
            }]
        }
        SourceKind::LyncDomain(domain) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            LYNC_RECORDS
                .iter()
                .map(|&record| {
                    let (prefix, role) = record.lync_parts();
                    Query {
                        record,
                        name: format!("{prefix}{domain}"),
                        domain: domain.clone(),
                        profile: profile.unwrap_or(role).to_string(),
                        host_port: record.is_host().then_some(443),
                    }
                })
                .collect()
        }
    }
}

/// What DNS said for one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Srv(Vec<SrvRecord>),
    Host(HostAnswer),
    Failed(DnsFailure),
}

/// Where a discovered endpoint came from: the facts the `srv_target_name` and
/// `discovery_cname` rules and `certprobe_discovery_target_info` need.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Discovered {
    pub source: String,
    pub record: DiscoveryRecord,
    /// The name asked (`_sipfederationtls._tcp.fabrikam.com`).
    pub query: String,
    /// The SIP domain of the record.
    pub domain: String,
    /// The SRV target (or the lyncdiscover name): must be in the certificate.
    pub target: String,
    pub priority: Option<u16>,
    pub weight: Option<u16>,
    /// Whether the partner's `sip.<domain>` must be in the certificate too (None: the
    /// profile decides; only set for `_sipfederationtls` records).
    pub require_sip_domain: Option<bool>,
    /// CNAME links of a host record (lyncdiscover), in order.
    pub cnames: Vec<String>,
}

/// The result of one refresh of a source.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Endpoints found (sorted by name, at most `max_targets`).
    pub endpoints: Vec<Arc<Endpoint>>,
    /// Failures per query (`no_records` of an optional Lync record is not a failure of the
    /// source; see [`Outcome::failed`]).
    pub failures: Vec<(DiscoveryRecord, DnsFailure)>,
    /// Targets dropped beyond `max_targets`.
    pub dropped: usize,
}

impl Outcome {
    /// The source failed: a lookup failed for another reason than "this record does not exist"
    /// (NXDOMAIN / no records are answers: a domain need not publish every Lync record), or a
    /// single-SRV source found nothing. A failed source keeps its last good set.
    pub fn failed(&self, kind: &SourceKind) -> Option<&DnsFailure> {
        let hard = self
            .failures
            .iter()
            .map(|(_, f)| f)
            .find(|f| !matches!(f.reason, DnsReason::NxDomain | DnsReason::NoRecords));
        match (hard, kind) {
            (Some(f), _) => Some(f),
            (None, SourceKind::Srv(_)) => self.failures.first().map(|(_, f)| f),
            (None, SourceKind::LyncDomain(_)) if self.endpoints.is_empty() => {
                self.failures.first().map(|(_, f)| f)
            }
            _ => None,
        }
    }
}

/// A label-safe, stable endpoint name: lower-case letters, digits and `-`, at most 128
/// characters (longer ones keep a prefix and a hash of the whole).
pub fn endpoint_name(source: &str, record: DiscoveryRecord, target: &str, port: u16) -> String {
    let raw = format!("{source}-{}-{target}-{port}", record.as_str());
    let mut out = String::with_capacity(raw.len());
    for ch in raw.chars() {
        let c = ch.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.len() <= 128 {
        return out;
    }
    let h = hex::encode(&Sha256::digest(raw.as_bytes())[..6]);
    format!("{}-{h}", out[..115].trim_end_matches('-'))
}

/// Answers -> endpoints. Pure.
pub fn build(source: &Source, answers: &[(Query, Answer)]) -> Outcome {
    let mut found: BTreeMap<String, Arc<Endpoint>> = BTreeMap::new();
    let mut out = Outcome::default();
    for (q, answer) in answers {
        let targets: Vec<(String, u16, Option<&SrvRecord>, Vec<String>)> = match answer {
            Answer::Failed(f) => {
                out.failures.push((q.record, f.clone()));
                continue;
            }
            Answer::Srv(records) => records
                .iter()
                .map(|r| (r.target.clone(), r.port, Some(r), Vec::new()))
                .collect(),
            Answer::Host(h) => vec![(
                q.name.clone(),
                q.host_port.unwrap_or(443),
                None,
                h.cnames.clone(),
            )],
        };
        for (target, port, srv, cnames) in targets {
            if port == 0 {
                continue;
            }
            let name = endpoint_name(&source.id, q.record, &target, port);
            if found.contains_key(&name) {
                continue;
            }
            if found.len() >= source.max_targets {
                out.dropped += 1;
                continue;
            }
            let discovered = Discovered {
                source: source.id.clone(),
                record: q.record,
                query: q.name.clone(),
                domain: q.domain.clone(),
                target: target.clone(),
                priority: srv.map(|s| s.priority),
                weight: srv.map(|s| s.weight),
                require_sip_domain: source
                    .require_sip_domain
                    .filter(|_| q.record == DiscoveryRecord::SipFederationTls),
                cnames,
            };
            let ep = derive(&source.template, name.clone(), q, &target, port, discovered);
            found.insert(name, Arc::new(ep));
        }
    }
    out.endpoints = found.into_values().collect();
    out
}

/// The template endpoint with one target's host, port, SNI, name, profile and origin.
fn derive(
    template: &Endpoint,
    name: String,
    q: &Query,
    target: &str,
    port: u16,
    discovered: Discovered,
) -> Endpoint {
    let mut ep = template.clone();
    std::sync::Arc::make_mut(&mut ep.meta).endpoint = name;
    std::sync::Arc::make_mut(&mut ep.meta).host = target.to_string();
    std::sync::Arc::make_mut(&mut ep.meta).port = port;
    std::sync::Arc::make_mut(&mut ep.meta).profile = q.profile.clone();
    ep.spec.host = target.to_string();
    ep.spec.port = port;
    ep.spec.sni = Some(target.to_string());
    if q.record == DiscoveryRecord::XmppServer && ep.spec.starttls.is_none() {
        let mut st =
            crate::probe::starttls::StartTlsSpec::new(crate::probe::starttls::StartTls::XmppServer);
        st.xmpp_domain = Some(q.domain.clone());
        ep.spec.starttls = Some(st);
        std::sync::Arc::make_mut(&mut ep.meta).starttls =
            Some(crate::probe::starttls::StartTls::XmppServer);
    }
    let mut d = Sha256::new();
    d.update(template.digest.as_bytes());
    d.update(format!("{:?}", (&ep.meta, &ep.spec.sni, &discovered)).as_bytes());
    ep.digest = hex::encode(d.finalize());
    ep.discovered = Some(Arc::new(discovered));
    ep
}

/// Ask DNS for every query of `source` (concurrently; each bounded by the resolver's
/// timeout and attempts).
pub async fn lookup(resolver: &Resolver, source: &Source) -> Vec<(Query, Answer)> {
    let futs = source.queries.iter().map(|q| async move {
        let answer = if q.record.is_host() {
            match resolver.host(&q.name).await {
                Ok(h) => Answer::Host(h),
                Err(e) => Answer::Failed(e),
            }
        } else {
            match resolver.srv(&q.name).await {
                Ok(r) => Answer::Srv(r),
                Err(e) => Answer::Failed(e),
            }
        };
        (q.clone(), answer)
    });
    futures_util::future::join_all(futs).await
}

/// Lookup and build in one step.
pub async fn refresh(resolver: &Resolver, source: &Source) -> Outcome {
    let answers = lookup(resolver, source).await;
    build(source, &answers)
}

/// The state of one source in the daemon: the last good set and what the last refresh said.
#[derive(Debug, Clone, Default)]
pub struct SourceState {
    pub endpoints: Vec<Arc<Endpoint>>,
    pub last_success: Option<f64>,
    /// The last refresh's failure (None: it succeeded).
    pub failure: Option<DnsFailure>,
    pub refreshed: bool,
}

impl SourceState {
    /// Take a refresh: a success replaces the set, a failure keeps the last good one.
    pub fn update(&mut self, kind: &SourceKind, outcome: Outcome, now: f64) {
        self.refreshed = true;
        match outcome.failed(kind) {
            Some(f) => {
                self.failure = Some(f.clone());
            }
            None => {
                self.failure = None;
                self.last_success = Some(now);
                self.endpoints = outcome.endpoints;
            }
        }
    }
}

/// Discovery status for metrics.
#[derive(Debug, Clone)]
pub struct SourceStatus {
    pub source: String,
    pub success: bool,
    pub reason: Option<DnsReason>,
    pub targets: usize,
    pub last_success: Option<f64>,
    /// (endpoint, record, target, port, priority, weight)
    pub target_info: Vec<TargetInfo>,
}

#[derive(Debug, Clone)]
pub struct TargetInfo {
    pub endpoint: String,
    pub record: DiscoveryRecord,
    pub target: String,
    pub port: u16,
    pub priority: Option<u16>,
    pub weight: Option<u16>,
}

impl SourceStatus {
    pub fn of(id: &str, s: &SourceState) -> Self {
        Self {
            source: id.to_string(),
            success: s.failure.is_none() && s.refreshed,
            reason: s.failure.as_ref().map(|f| f.reason),
            targets: s.endpoints.len(),
            last_success: s.last_success,
            target_info: s
                .endpoints
                .iter()
                .filter_map(|e| {
                    let d = e.discovered.as_ref()?;
                    Some(TargetInfo {
                        endpoint: e.meta.endpoint.clone(),
                        record: d.record,
                        target: d.target.clone(),
                        port: e.meta.port,
                        priority: d.priority,
                        weight: d.weight,
                    })
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(yaml_entry: &str) -> Arc<Source> {
        let text = format!("policy: {{preset: lync2013}}\ndiscover:\n  - {yaml_entry}\n");
        let cfg = crate::config::Config::from_yaml(
            &text,
            "<test>",
            crate::config::BaseDir(std::path::PathBuf::from(".")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        cfg.discover[0].clone()
    }

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    #[test]
    fn build_makes_one_endpoint_per_target_capped_and_keeps_the_last_good_set() {
        let s = source("{srv: _sipfederationtls._tcp.fabrikam.com, name: fab, max_targets: 2}");
        let q = s.queries[0].clone();
        let answers = vec![(
            q.clone(),
            Answer::Srv(vec![
                srv(10, 60, 5061, "sip.fabrikam.com"),
                srv(20, 40, 5062, "sip2.fabrikam.com"),
                srv(30, 0, 5063, "sip3.fabrikam.com"),
                srv(40, 0, 0, "zero.fabrikam.com"),
            ]),
        )];
        let out = build(&s, &answers);
        let names: Vec<&str> = out
            .endpoints
            .iter()
            .map(|e| e.meta.endpoint.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "fab-sipfederationtls-sip-fabrikam-com-5061",
                "fab-sipfederationtls-sip2-fabrikam-com-5062"
            ]
        );
        assert_eq!(out.dropped, 1);
        let e = &out.endpoints[1];
        assert_eq!(e.spec.sni.as_deref(), Some("sip2.fabrikam.com"));
        assert_eq!(e.spec.port, 5062);
        assert_eq!(e.meta.profile, "federation_partner");
        let d = e.discovered.as_ref().unwrap();
        assert_eq!((d.priority, d.weight), (Some(20), Some(40)));
        assert_eq!(d.domain, "fabrikam.com");
        // Same answers, same digests: a refresh does not restart unchanged endpoints.
        let again = build(&s, &answers);
        assert_eq!(again.endpoints[0].digest, out.endpoints[0].digest);

        let mut state = SourceState::default();
        state.update(&s.kind, out, 1.0);
        assert_eq!(state.endpoints.len(), 2);
        let failed = build(
            &s,
            &[(
                q,
                Answer::Failed(DnsFailure {
                    reason: DnsReason::ServFail,
                    detail: String::new(),
                }),
            )],
        );
        state.update(&s.kind, failed, 2.0);
        assert_eq!(state.endpoints.len(), 2, "SERVFAIL keeps the last good set");
        assert_eq!(state.last_success, Some(1.0));
        assert_eq!(
            state.failure.as_ref().map(|f| f.reason),
            Some(DnsReason::ServFail)
        );
        let status = SourceStatus::of(&s.id, &state);
        assert!(!status.success);
        assert_eq!(status.targets, 2);
    }

    #[test]
    fn lync_domain_hosts_carry_their_cname_chain_and_xmpp_gets_starttls() {
        let s = source("{lync_domain: contoso.com}");
        let by = |r: DiscoveryRecord| s.queries.iter().find(|q| q.record == r).unwrap().clone();
        let answers = vec![
            (
                by(DiscoveryRecord::LyncDiscover),
                Answer::Host(HostAnswer {
                    cnames: vec!["lyncweb.contoso.net".into()],
                    addresses: vec!["127.0.0.1".parse().unwrap()],
                }),
            ),
            (
                by(DiscoveryRecord::XmppServer),
                Answer::Srv(vec![srv(0, 0, 5269, "xmpp.contoso.com")]),
            ),
            (
                by(DiscoveryRecord::SipTls),
                Answer::Failed(DnsFailure {
                    reason: DnsReason::NxDomain,
                    detail: String::new(),
                }),
            ),
        ];
        let out = build(&s, &answers);
        assert!(
            out.failed(&s.kind).is_none(),
            "a missing Lync record is an answer"
        );
        let disc = out
            .endpoints
            .iter()
            .find(|e| e.meta.endpoint == "contoso-com-lyncdiscover-lyncdiscover-contoso-com-443")
            .unwrap();
        assert_eq!(disc.meta.profile, "reverse_proxy");
        assert_eq!(
            disc.discovered.as_ref().unwrap().cnames,
            ["lyncweb.contoso.net"]
        );
        let xmpp = out
            .endpoints
            .iter()
            .find(|e| e.meta.endpoint.contains("xmpp"))
            .unwrap();
        assert_eq!(
            xmpp.spec
                .starttls
                .as_ref()
                .and_then(|s| s.xmpp_domain.as_deref()),
            Some("contoso.com")
        );
    }

    #[test]
    fn names_are_label_safe_and_stable() {
        let n = endpoint_name(
            "fabrikam.com",
            DiscoveryRecord::SipFederationTls,
            "sip.fabrikam.com",
            5061,
        );
        assert_eq!(n, "fabrikam-com-sipfederationtls-sip-fabrikam-com-5061");
        let long = endpoint_name("s", DiscoveryRecord::Srv, &"a".repeat(200), 1);
        assert!(long.len() <= 128, "{long}");
        assert_eq!(
            long,
            endpoint_name("s", DiscoveryRecord::Srv, &"a".repeat(200), 1)
        );
        assert!(long
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    }

    #[test]
    fn srv_names_give_their_domain_and_record() {
        assert_eq!(
            srv_domain("_sipfederationtls._tcp.Fabrikam.com."),
            "fabrikam.com"
        );
        assert_eq!(
            DiscoveryRecord::of_srv_name("_sipfederationtls._tcp.fabrikam.com"),
            DiscoveryRecord::SipFederationTls
        );
        assert_eq!(
            DiscoveryRecord::of_srv_name("_ldap._tcp.contoso.com"),
            DiscoveryRecord::Srv
        );
        let q = queries(&SourceKind::LyncDomain("contoso.com".into()), None);
        let names: Vec<&str> = q.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "_sip._tls.contoso.com",
                "_sipinternaltls._tcp.contoso.com",
                "lyncdiscover.contoso.com",
                "lyncdiscoverinternal.contoso.com",
                "_sipfederationtls._tcp.contoso.com",
                "_xmpp-server._tcp.contoso.com",
            ]
        );
        assert_eq!(q[2].host_port, Some(443));
        assert_eq!(q[4].profile, "edge_external");
    }

    #[test]
    fn missing_lync_records_are_not_a_failure_but_servfail_is() {
        let kind = SourceKind::LyncDomain("contoso.com".into());
        let nx = DnsFailure {
            reason: DnsReason::NxDomain,
            detail: String::new(),
        };
        let sf = DnsFailure {
            reason: DnsReason::ServFail,
            detail: String::new(),
        };
        let mut o = Outcome::default();
        o.failures.push((DiscoveryRecord::XmppServer, nx.clone()));
        // No endpoint at all: the NXDOMAIN is the source's failure.
        assert_eq!(o.failed(&kind), Some(&nx));
        o.failures.push((DiscoveryRecord::SipTls, sf.clone()));
        assert_eq!(o.failed(&kind), Some(&sf));
        let srv = SourceKind::Srv("_sipfederationtls._tcp.fabrikam.com".into());
        let o = Outcome {
            failures: vec![(DiscoveryRecord::SipFederationTls, nx.clone())],
            ..Default::default()
        };
        assert_eq!(o.failed(&srv), Some(&nx));
    }
}
