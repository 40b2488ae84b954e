//! The YAML shape of the `policy:` section of the config.
//!
//! Every field is optional so that profiles can be layered: a preset profile, then the
//! profile it `extends`, then the operator's overrides, merged field by field (the most
//! specific value wins). [`super::Policy::from_spec`] resolves the layers and validates them.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Severity;
pub use crate::vocab::{IssuerClass, SignatureHash, TlsVersion};

/// The `policy:` section.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Schema version of the policy section. Only `1` exists; absent means `1`.
    #[serde(default)]
    pub version: Option<u32>,
    /// Shipped profile set to load: `lync2013` (Lync Server 2013 documentation as written),
    /// `lync2013-hardened` (SHA-1 and RSA < 2048 fail, TLS < 1.2 warns) or `public-web`
    /// (public CA, SHA-256+, <= 398 days validity). The built-in `default` profile always
    /// exists. A configured profile with the same name as a preset profile is layered on top
    /// of it.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// Variables expanded in name patterns (`${fe_pool}`, `sip.${sip_domains[*]}`,
    /// `${owa_fqdn?}`).
    #[serde(default)]
    pub vars: Vars,
    /// Named profiles; endpoints refer to them with `profile:`.
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileSpec>,
}

/// Shipped profile sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub enum Preset {
    /// The Lync Server 2013 documentation as written (baseline plus every role profile).
    #[serde(rename = "lync2013")]
    Lync2013,
    /// `lync2013` with SHA-1 anywhere on the path and RSA < 2048 failing, TLS < 1.2 warning.
    #[serde(rename = "lync2013-hardened")]
    Lync2013Hardened,
    /// A generic public web profile `public_web`: public CA, SHA-256+, validity <= 398 days.
    #[serde(rename = "public-web")]
    PublicWeb,
}

impl Preset {
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Lync2013 => "lync2013",
            Preset::Lync2013Hardened => "lync2013-hardened",
            Preset::PublicWeb => "public-web",
        }
    }
}

/// Estate variables. Lists expand to one name per element with `[*]`; a variable used without
/// `?` that is unset makes the rule using it fail with a message naming the variable.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Vars {
    /// SIP domains (`<sd>`); the first is the default SIP domain (OAuth realm).
    #[serde(default)]
    pub sip_domains: Vec<String>,
    /// Front End pool FQDN (`<pool>`; the server FQDN on Standard Edition).
    #[serde(default)]
    pub fe_pool: Option<String>,
    /// Front End member server FQDNs (informational; `${endpoint.host}` is the probed member).
    #[serde(default)]
    pub fe_servers: Vec<String>,
    /// Internal web services FQDN of the Front End pool.
    #[serde(default)]
    pub fe_web_internal: Option<String>,
    /// External web services FQDN of the Front End pool (published through the reverse proxy).
    #[serde(default)]
    pub fe_web_external: Option<String>,
    /// Director pool FQDN.
    #[serde(default)]
    pub director_pool: Option<String>,
    /// Director external web services FQDN (must differ from the Front End pool's).
    #[serde(default)]
    pub director_web_external: Option<String>,
    /// Stand-alone Mediation pool FQDN.
    #[serde(default)]
    pub mediation_pool: Option<String>,
    /// Access Edge external FQDN (or the HLB VIP name).
    #[serde(default)]
    pub edge_access_fqdn: Option<String>,
    /// Web Conferencing Edge external FQDN.
    #[serde(default)]
    pub edge_webconf_fqdn: Option<String>,
    /// A/V Edge external FQDN.
    #[serde(default)]
    pub edge_av_fqdn: Option<String>,
    /// Edge internal interface FQDN (or the internal HLB VIP name).
    #[serde(default)]
    pub edge_internal_fqdn: Option<String>,
    /// XMPP federated domains that must appear in the Access Edge SAN.
    #[serde(default)]
    pub xmpp_domains: Vec<String>,
    /// Meeting simple URL FQDNs (`meet.contoso.com`, one per SIP domain at least).
    #[serde(default)]
    pub meet_urls: Vec<String>,
    /// Dial-in simple URL FQDNs.
    #[serde(default)]
    pub dialin_urls: Vec<String>,
    /// Administrative simple URL FQDN (internal only).
    #[serde(default)]
    pub admin_url: Option<String>,
    /// Office Web Apps server FQDN published through the reverse proxy.
    #[serde(default)]
    pub owa_fqdn: Option<String>,
    /// Deployment features that switch conditional rules on.
    #[serde(default)]
    pub features: Features,
    /// Free-form variables for operator patterns: a string or a list of strings.
    #[serde(default)]
    pub extra: BTreeMap<String, VarValue>,
}

/// Deployment features (condition names usable in `when:`).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Features {
    /// Public IM connectivity with AOL is used: the Access Edge cert then needs the Client
    /// Authentication EKU.
    #[serde(default)]
    pub public_im_aol: bool,
    /// Lync Autodiscover is published on HTTPS 443 through the reverse proxy (then
    /// `lyncdiscover.<sd>` must be in its SAN; not needed when published on port 80 only).
    #[serde(default)]
    pub autodiscover_https: bool,
    /// Automatic client sign-in with strict DNS name matching is used: pools that serve as
    /// auto-logon servers then need `sip.<sd>` for every SIP domain.
    #[serde(default)]
    pub strict_dns_autologon: bool,
    /// Further named booleans usable in `when:` conditions.
    #[serde(default)]
    pub other: BTreeMap<String, bool>,
}

impl Features {
    /// Value of a named feature; None when no feature has that name.
    pub fn get(&self, name: &str) -> Option<bool> {
        match name {
            "public_im_aol" => Some(self.public_im_aol),
            "autodiscover_https" => Some(self.autodiscover_https),
            "strict_dns_autologon" => Some(self.strict_dns_autologon),
            other => self.other.get(other).copied(),
        }
    }
}

/// A free variable value.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum VarValue {
    One(String),
    Many(Vec<String>),
}

/// One profile.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    /// Profile (or preset profile) this one builds on; its rules apply unless overridden here.
    #[serde(default)]
    pub extends: Option<String>,
    /// Human description (shown by `check-config` and in reports).
    #[serde(default)]
    pub description: Option<String>,
    /// Per-rule settings; a rule absent here (and in every ancestor) is not evaluated.
    #[serde(default)]
    pub rules: RulesSpec,
}

/// How the endpoint name is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NameMode {
    /// SAN only (TLS in Lync ignores the subject name).
    San,
    /// SAN, or the subject CN when the certificate has no SAN extension (Edge internal).
    SanOrCn,
}

/// Extended key usages the policy knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EkuName {
    /// 1.3.6.1.5.5.7.3.1
    ServerAuth,
    /// 1.3.6.1.5.5.7.3.2
    ClientAuth,
}

impl EkuName {
    pub fn as_str(self) -> &'static str {
        match self {
            EkuName::ServerAuth => "server_auth",
            EkuName::ClientAuth => "client_auth",
        }
    }
}

/// Wildcard SAN handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WildcardMode {
    /// Wildcard SAN entries are fine.
    Allow,
    /// Allowed, but reported as a warning (e.g. Edge internal: the SAN is not queried).
    Warn,
    /// Any wildcard SAN entry is a violation.
    Forbid,
    /// Wildcards may stand only for the names listed in `allow_for`: every wildcard must cover
    /// at least one of them, and the endpoint name must not be matched only through a wildcard
    /// unless it is one of them.
    AllowFor,
}

/// Pool consistency modes.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PoolMode {
    /// Every member and address presents the very same leaf certificate.
    SameCert,
    /// Every member and address presents a leaf with the same public key (SPKI).
    SameSpki,
}

/// A required name: a pattern string, or a pattern with options.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum NamePattern {
    /// A pattern such as `sip.${sip_domains[*]}`; must be present explicitly in the SAN.
    Plain(String),
    /// A pattern with options.
    Detailed(NamePatternSpec),
}

/// A required name with options.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NamePatternSpec {
    /// The pattern.
    pub name: String,
    /// A wildcard SAN entry (`*.contoso.com`) may satisfy this name (simple URLs, lyncdiscover).
    #[serde(default)]
    pub wildcard_ok: bool,
    /// Only required when this feature is on (`autodiscover_https`); prefix `!` for off.
    #[serde(default)]
    pub when: Option<String>,
}

impl NamePattern {
    pub fn pattern(&self) -> &str {
        match self {
            NamePattern::Plain(s) => s,
            NamePattern::Detailed(d) => &d.name,
        }
    }
    pub fn wildcard_ok(&self) -> bool {
        matches!(self, NamePattern::Detailed(d) if d.wildcard_ok)
    }
    pub fn when(&self) -> Option<&str> {
        match self {
            NamePattern::Plain(_) => None,
            NamePattern::Detailed(d) => d.when.as_deref(),
        }
    }
}

/// What every rule's settings have in common: the severity (`None` is the default, `fail`).
/// The rule catalogue (`policy::rules`) judges any rule through this one trait.
pub trait RuleSpec {
    /// The configured severity, if any.
    fn severity(&self) -> Option<Severity>;
}

macro_rules! rule_struct {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// `fail` (CRITICAL), `warn` (WARNING), `info` (reported, never degrades the
            /// status) or `off` (not evaluated). Default `fail`.
            #[serde(default)]
            pub severity: Option<Severity>,
            $($(#[$fm])* #[serde(default)] pub $field: Option<$ty>,)*
        }
        impl RuleSpec for $name {
            fn severity(&self) -> Option<Severity> {
                self.severity
            }
        }
        impl $name {
            /// Layer `over` on top of `self` (fields set in `over` win).
            pub fn merged(&self, over: &Self) -> Self {
                Self {
                    severity: over.severity.or(self.severity),
                    $($field: over.$field.clone().or_else(|| self.$field.clone()),)*
                }
            }
        }
    };
}

rule_struct!(
    /// `reachable`: the handshake produced a parseable chain.
    BasicRule {}
);
rule_struct!(
    /// `srv_target_name`: a discovered endpoint's certificate carries its SRV target name.
    SrvTargetNameRule {
        /// `_sipfederationtls` records: `sip.<partner domain>` must be in the SAN too.
        require_sip_domain: bool,
    }
);
rule_struct!(
    /// `trusted`: the chain verifies against at least one of `stores` (any configured store
    /// when absent or empty).
    TrustedRule {
        /// Named stores, any of which may verify the chain.
        stores: Vec<String>,
    }
);
rule_struct!(
    /// `issuer_class`: the issuer class must be one of `allowed`.
    IssuerClassRule {
        /// Allowed classes (default `[internal, public]`).
        allowed: Vec<IssuerClass>,
    }
);
rule_struct!(
    /// `hostname`: the endpoint name (SNI, else host) matches the leaf.
    HostnameRule {
        /// `san` (default) or `san_or_cn`.
        mode: NameMode,
    }
);
rule_struct!(
    /// `expiry`: warning / critical windows before notAfter of the best verified path (the
    /// leaf when unverified).
    ExpiryRule {
        /// Warn when expiring within this many days (default 30).
        warn_days: u32,
        /// Violation (the rule severity) when expiring within this many days (default 7).
        critical_days: u32,
        /// Critical window in hours; when set it replaces `critical_days` (OAuth: 24, A/V: 8).
        critical_hours: u32,
    }
);
rule_struct!(
    /// `max_validity`: the leaf's total validity period is at most `max_days`.
    MaxValidityRule {
        /// Maximum validity in days (notAfter - notBefore), default 398.
        max_days: u32,
    }
);
rule_struct!(
    /// `signature_hash`: hashes used by the signatures on the path (the self-signed root's
    /// own signature is ignored).
    SignatureHashRule {
        /// Allowed hashes (default sha1, sha224, sha256, sha384, sha512).
        allowed: Vec<SignatureHash>,
        /// Allowed hashes that still yield a warning (e.g. `[sha1]`).
        warn: Vec<SignatureHash>,
    }
);
rule_struct!(
    /// `key`: the leaf's public key.
    KeyRule {
        /// RSA keys below this size are a violation (default 1024).
        rsa_min_bits: u32,
        /// RSA keys below this size (but >= `rsa_min_bits`) warn (default none).
        rsa_warn_below: u32,
        /// Strict-size mode: RSA sizes outside this list warn (e.g. `[1024, 2048, 4096]`);
        /// empty or absent disables it.
        rsa_sizes: Vec<u32>,
        /// Allowed EC curves (default `[P-256, P-384, P-521]`).
        ec_curves: Vec<String>,
        /// Ed25519 / Ed448 keys allowed (default false).
        allow_eddsa: bool,
    }
);
rule_struct!(
    /// `eku`: required extended key usages of the leaf.
    EkuRule {
        /// Always required (default `[server_auth]`).
        require: Vec<EkuName>,
        /// Required only while a feature is on, e.g. `{public_im_aol: [client_auth]}`.
        require_when: BTreeMap<String, Vec<EkuName>>,
        /// Only check when the leaf has an EKU extension at all (default false).
        only_if_present: bool,
    }
);
rule_struct!(
    /// `key_usage`: required keyUsage bits and criticality.
    KeyUsageRule {
        /// Required bits (`digital_signature`, `key_encipherment`, ...).
        require: Vec<String>,
        /// Required criticality of the extension (absent: not checked).
        critical: bool,
    }
);
rule_struct!(
    /// `san_required`: names that must appear in the SAN.
    SanRequiredRule {
        /// Name patterns (variables expanded).
        names: Vec<NamePattern>,
    }
);
rule_struct!(
    /// `subject_contains`: the subject DN contains one of the patterns (OAuth: a SIP domain).
    SubjectContainsRule {
        /// Patterns, any of which must appear in the subject DN (case-insensitive).
        any_of: Vec<String>,
    }
);
rule_struct!(
    /// `san_wildcard`: wildcard SAN entries.
    SanWildcardRule {
        /// `allow`, `warn`, `forbid` or `allow_for` (default `forbid`).
        mode: WildcardMode,
        /// With `allow_for`: the name patterns a wildcard may stand for.
        allow_for: Vec<String>,
    }
);
rule_struct!(
    /// `tls_version`: minimum negotiated protocol version.
    TlsVersionRule {
        /// Minimum version (default `tls1.0`).
        min: TlsVersion,
    }
);
rule_struct!(
    /// `intermediate_expiry`: non-leaf certificates on the presented chain.
    IntermediateExpiryRule {
        /// Warn when an intermediate expires within this many days (default 30).
        warn_days: u32,
    }
);
rule_struct!(
    /// `crl_fresh`: the CRLs that judged the verified path are not about to expire and are not
    /// a last good copy kept after a failed refetch.
    CrlFreshRule {
        /// Warn when a CRL's nextUpdate is less than this many hours away (default 24).
        warn_hours: u32,
    }
);
rule_struct!(
    /// `pool_consistency` (cross-endpoint): every member/address of the endpoint's pool
    /// presents the same certificate, or at least the same key.
    PoolConsistencyRule {
        /// `same_cert` or `same_spki` (default `same_cert`).
        mode: PoolMode,
    }
);
rule_struct!(
    /// `same_issuer` (cross-endpoint): the leaf issuer (DN and AKI) equals the leaf issuer of
    /// the endpoints using `profile`.
    SameIssuerRule {
        /// The referenced profile (e.g. `fe_default`).
        profile: String,
    }
);

rule_struct!(
    /// `oauth_metadata`: endpoints of this profile (Front End web services) fetch the OAuth
    /// metadata document `https://<endpoint name>/metadata/json/1` and judge each published
    /// token-issuer certificate with `profile`. The severity is that of a failed fetch (a bad
    /// document, a non-200 status, a timeout); `off` disables the fetch. An endpoint's
    /// `oauth_metadata: true|false` overrides it.
    OAuthMetadataRule {
        /// Profile judging each OAuth certificate (default: the built-in `oauth`).
        profile: String,
    }
);

/// Per-rule settings of a profile. The keys are the rule ids.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RulesSpec {
    /// The handshake produced a (parseable) chain. A probe without a chain is always CRITICAL.
    #[serde(default)]
    pub reachable: Option<BasicRule>,
    /// Chain verifies against a configured trust store.
    #[serde(default)]
    pub trusted: Option<TrustedRule>,
    /// Issuer class (internal / public / unknown) is allowed.
    #[serde(default)]
    pub issuer_class: Option<IssuerClassRule>,
    /// Endpoint name matches the leaf.
    #[serde(default)]
    pub hostname: Option<HostnameRule>,
    /// Leaf within its validity period at evaluation time.
    #[serde(default)]
    pub validity: Option<BasicRule>,
    /// Expiry windows.
    #[serde(default)]
    pub expiry: Option<ExpiryRule>,
    /// Maximum validity period.
    #[serde(default)]
    pub max_validity: Option<MaxValidityRule>,
    /// Allowed signature hashes across the path.
    #[serde(default)]
    pub signature_hash: Option<SignatureHashRule>,
    /// RSASSA-PSS signatures (1.2.840.113549.1.1.10) anywhere on the path are a violation.
    #[serde(default)]
    pub rsassa_pss: Option<BasicRule>,
    /// Leaf key algorithm and size.
    #[serde(default)]
    pub key: Option<KeyRule>,
    /// Required EKUs.
    #[serde(default)]
    pub eku: Option<EkuRule>,
    /// The EKU extension must not be critical.
    #[serde(default)]
    pub eku_critical: Option<BasicRule>,
    /// keyUsage bits and criticality.
    #[serde(default)]
    pub key_usage: Option<KeyUsageRule>,
    /// At least one CRL distribution point (OCSP alone does not satisfy it).
    #[serde(default)]
    pub crl_dp: Option<BasicRule>,
    /// No certificate of the verified path is revoked, and its revocation status could be
    /// obtained (a CDP that exists but gives no usable CRL is a violation, as for Windows).
    #[serde(default)]
    pub revocation: Option<BasicRule>,
    /// The CRLs used are fresh (nextUpdate not within `warn_hours`, not a stale copy).
    #[serde(default)]
    pub crl_fresh: Option<CrlFreshRule>,
    /// Some CDP of every non-root certificate is http(s): an LDAP-only CDP is unreachable for
    /// clients outside the domain (Edge, reverse proxy, federation partners).
    #[serde(default)]
    pub cdp_ldap_only: Option<BasicRule>,
    /// The chain is complete as presented, not only through certificates fetched from its AIA
    /// caIssuers URLs (Windows fetches them; Java, Android and many appliances do not).
    /// Judged only when an AIA chase ran (`revocation.aia_hosts` set, chain incomplete).
    #[serde(default)]
    pub aia_completes_chain: Option<BasicRule>,
    /// Required SAN entries.
    #[serde(default)]
    pub san_required: Option<SanRequiredRule>,
    /// The subject CN is repeated in the SAN.
    #[serde(default)]
    pub subject_in_san: Option<BasicRule>,
    /// The subject DN contains one of the given names.
    #[serde(default)]
    pub subject_contains: Option<SubjectContainsRule>,
    /// No wildcard in the subject CN.
    #[serde(default)]
    pub cn_wildcard: Option<BasicRule>,
    /// Wildcard SAN entries.
    #[serde(default)]
    pub san_wildcard: Option<SanWildcardRule>,
    /// Discovered endpoints (`discover:`): the certificate carries the SRV target name as a
    /// SAN dNSName, explicitly (Lync's federation rule: a wildcard does not count), and for
    /// `_sipfederationtls` records also `sip.<partner domain>` when `require_sip_domain`.
    /// Part of every profile for discovered endpoints (severity fail) unless set.
    #[serde(default)]
    pub srv_target_name: Option<SrvTargetNameRule>,
    /// Discovered lyncdiscover names: a CNAME chain that leaves the SIP domain breaks mobile
    /// clients' certificate check. Part of every profile for discovered host records
    /// (severity warn) unless set.
    #[serde(default)]
    pub discovery_cname: Option<BasicRule>,
    /// Minimum TLS version negotiated.
    #[serde(default)]
    pub tls_version: Option<TlsVersionRule>,
    /// When the endpoint expects client certificates to be required, the server refused a
    /// client without one.
    #[serde(default)]
    pub mtls_enforced: Option<BasicRule>,
    /// When we presented a client certificate, the server accepted it.
    #[serde(default)]
    pub client_cert_accepted: Option<BasicRule>,
    /// The server's handshake signature was verified with the leaf key (a weak key that could
    /// not be verified warns).
    #[serde(default)]
    pub handshake_signature: Option<BasicRule>,
    /// Chain complete, in order, nothing superfluous (findings warn).
    #[serde(default)]
    pub chain_hygiene: Option<BasicRule>,
    /// Intermediates valid and not about to expire.
    #[serde(default)]
    pub intermediate_expiry: Option<IntermediateExpiryRule>,
    /// Pool members present the same certificate / key (cross-endpoint).
    #[serde(default)]
    pub pool_consistency: Option<PoolConsistencyRule>,
    /// Same issuer as another profile's endpoints (cross-endpoint).
    #[serde(default)]
    pub same_issuer: Option<SameIssuerRule>,
    /// Fetch the OAuth metadata document and judge its certificates (Front End web services).
    #[serde(default)]
    pub oauth_metadata: Option<OAuthMetadataRule>,
}

fn merge_opt<T: Clone>(base: &Option<T>, over: &Option<T>, f: impl Fn(&T, &T) -> T) -> Option<T> {
    match (base, over) {
        (Some(b), Some(o)) => Some(f(b, o)),
        (Some(b), None) => Some(b.clone()),
        (None, Some(o)) => Some(o.clone()),
        (None, None) => None,
    }
}

macro_rules! merge_rules {
    ($base:expr, $over:expr, $($f:ident: $t:ident),* $(,)?) => {
        RulesSpec { $($f: merge_opt(&$base.$f, &$over.$f, $t::merged),)* }
    };
}

impl RulesSpec {
    /// Layer `over` on top of `self`, rule by rule and field by field.
    pub fn merged(&self, over: &RulesSpec) -> RulesSpec {
        merge_rules!(self, over,
            reachable: BasicRule,
            trusted: TrustedRule,
            issuer_class: IssuerClassRule,
            hostname: HostnameRule,
            validity: BasicRule,
            expiry: ExpiryRule,
            max_validity: MaxValidityRule,
            signature_hash: SignatureHashRule,
            rsassa_pss: BasicRule,
            key: KeyRule,
            eku: EkuRule,
            eku_critical: BasicRule,
            key_usage: KeyUsageRule,
            crl_dp: BasicRule,
            revocation: BasicRule,
            crl_fresh: CrlFreshRule,
            cdp_ldap_only: BasicRule,
            aia_completes_chain: BasicRule,
            san_required: SanRequiredRule,
            subject_in_san: BasicRule,
            subject_contains: SubjectContainsRule,
            cn_wildcard: BasicRule,
            san_wildcard: SanWildcardRule,
            srv_target_name: SrvTargetNameRule,
            discovery_cname: BasicRule,
            tls_version: TlsVersionRule,
            mtls_enforced: BasicRule,
            client_cert_accepted: BasicRule,
            handshake_signature: BasicRule,
            chain_hygiene: BasicRule,
            intermediate_expiry: IntermediateExpiryRule,
            pool_consistency: PoolConsistencyRule,
            same_issuer: SameIssuerRule,
            oauth_metadata: OAuthMetadataRule,
        )
    }
}
