//! Closed vocabularies: every bounded set of names that certprobe reads from a policy, judges
//! with, and writes as a metric label or a JSON value, each defined once.
//!
//! Each vocabulary is one enum made by `vocabulary!` from a single table of
//! `Variant => "name", "Human name"` rows, which gives:
//! - `ALL` (every value, in table order) and `NAMES` (their names);
//! - `as_str()`: the machine name, used as the metric label value, in JSON and in policy files;
//! - `human()` and `Display`: the name a person reads in the table and in messages;
//! - `from_name()`: the machine name (or an alias listed in the table) back to the value;
//! - serde `Serialize`/`Deserialize` and a JSON schema (`enum` of the accepted names), all from
//!   the same rows, so that the config schema, the JSON output and the metrics cannot disagree.
//!
//! The enums live here, on the ground floor, so that `config`, `chain`, `policy`, `report` and
//! `daemon` all import from below; their owners re-export them under their old paths.
//! [`FailureReason`] (the probe's `reason` label) and [`RevocationReason`] (the revocation
//! metrics' `reason` label) are tables here too, re-exported as `probe::FailureReason` and
//! `revocation::Reason`.

/// Deserializes a name through `parse`, the way serde's derive reads a unit variant (an enum
/// whose identifier is checked while it is read), so that a config error points at the
/// value's line and column and says which names are allowed.
#[doc(hidden)]
pub fn deserialize_name<'de, D, T>(
    d: D,
    enum_name: &'static str,
    names: &'static [&'static str],
    parse: fn(&str) -> Option<T>,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Name<T> {
        names: &'static [&'static str],
        parse: fn(&str) -> Option<T>,
    }
    impl<T> Clone for Name<T> {
        fn clone(&self) -> Self {
            *self
        }
    }
    impl<T> Copy for Name<T> {}
    impl<T> serde::de::Visitor<'_> for Name<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "one of {}", self.names.join(", "))
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
            (self.parse)(s).ok_or_else(|| E::unknown_variant(s, self.names))
        }
    }
    impl<'de, T> serde::de::DeserializeSeed<'de> for Name<T> {
        type Value = T;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
            d.deserialize_identifier(self)
        }
    }
    impl<'de, T> serde::de::Visitor<'de> for Enum<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "one of {}", self.0.names.join(", "))
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
            serde::de::Visitor::visit_str(self.0, s)
        }
        fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<T, A::Error> {
            use serde::de::VariantAccess;
            let (value, variant) = data.variant_seed(self.0)?;
            variant.unit_variant()?;
            Ok(value)
        }
    }
    struct Enum<T>(Name<T>);
    d.deserialize_enum(enum_name, names, Enum(Name { names, parse }))
}

/// Defines a closed vocabulary. Rows: `Variant [= discriminant] => "name", "Human"
/// [ ["other", ...]]`.
macro_rules! vocabulary {
    (
        $(#[doc = $doc:literal])*
        pub enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident $(= $disc:literal)? => $key:literal, $human:literal
                $([$($alias:literal),* $(,)?])?
            ),+ $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant $(= $disc)? ),+
        }

        impl $name {
            /// Every value, in table order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every machine name, in table order.
            pub const NAMES: &'static [&'static str] = &[$($key),+];

            /// The machine name: metric label value, JSON value, policy spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $key),+
                }
            }

            /// The name a person reads (tables, messages).
            pub const fn human(self) -> &'static str {
                match self {
                    $($name::$variant => $human),+
                }
            }

            /// The value named `s` (its machine name or one of its aliases).
            pub fn from_name(s: &str) -> Option<Self> {
                match s {
                    $($key $($(| $alias)*)? => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.human())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::vocab::deserialize_name(
                    d,
                    stringify!($name),
                    Self::NAMES,
                    Self::from_name,
                )
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let names: Vec<&'static str> =
                    vec![$($key $($(, $alias)*)?),+];
                let doc: Vec<&str> = vec![$($doc.trim()),*];
                schemars::json_schema!({
                    "description": doc.join(" "),
                    "type": "string",
                    "enum": names,
                })
            }
        }
    };
}

vocabulary! {
    /// A negotiated TLS protocol version (`tls_version_info{version}`, `capture.tls_version`,
    /// the `tls_version` rule's `min`). Ordered oldest first. People read OpenSSL's spelling
    /// (`TLSv1.2`), so the human name is the machine name.
    pub enum TlsVersion {
        Ssl3 => "SSLv3", "SSLv3" ["ssl3", "sslv3"],
        Tls10 => "TLSv1.0", "TLSv1.0" ["tls1.0", "tls1", "tlsv1", "TLSv1", "1.0"],
        Tls11 => "TLSv1.1", "TLSv1.1" ["tls1.1", "tlsv1.1", "1.1"],
        Tls12 => "TLSv1.2", "TLSv1.2" ["tls1.2", "tlsv1.2", "1.2"],
        Tls13 => "TLSv1.3", "TLSv1.3" ["tls1.3", "tlsv1.3", "1.3"],
        /// A version number certprobe does not know (a server answering with a version it was
        /// not offered). Never passes a minimum.
        Unrecognized => "unrecognized", "an unrecognised version",
    }
}

impl TlsVersion {
    /// The version of a wire protocol number (`0x0303` is TLS 1.2).
    pub fn from_wire(version: u16) -> Self {
        match version {
            0x0300 => Self::Ssl3,
            0x0301 => Self::Tls10,
            0x0302 => Self::Tls11,
            0x0303 => Self::Tls12,
            0x0304 => Self::Tls13,
            _ => Self::Unrecognized,
        }
    }

    /// A version the prober (rustls) speaks, so that a probe can be bounded to it
    /// (`tls.min_version`, `--min-tls`); older servers are captured by the legacy hello.
    pub fn is_probe_version(self) -> bool {
        matches!(self, Self::Tls12 | Self::Tls13)
    }

    /// Older than TLS 1.2 (the `legacy` marks in metrics and the table).
    pub fn is_legacy(self) -> bool {
        matches!(self, Self::Ssl3 | Self::Tls10 | Self::Tls11)
    }
}

/// A [`TlsVersion`] a probe can be bounded to, as configs spell it (`tls.min_version: "1.2"`):
/// TLS 1.2 or 1.3, the versions rustls speaks. A restriction of the one vocabulary, not a
/// second one; servers that speak only older versions are captured by the legacy hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeTlsVersion(pub TlsVersion);

impl ProbeTlsVersion {
    const NAMES: &'static [&'static str] = &["1.2", "1.3"];
}

impl<'de> serde::Deserialize<'de> for ProbeTlsVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_name(d, "ProbeTlsVersion", Self::NAMES, |s| {
            TlsVersion::from_name(s)
                .filter(|v| v.is_probe_version())
                .map(Self)
        })
    }
}

impl schemars::JsonSchema for ProbeTlsVersion {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ProbeTlsVersion".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A TLS version a probe may be bounded to (rustls' floor is 1.2).",
            "type": "string",
            "enum": Self::NAMES,
        })
    }
}

vocabulary! {
    /// The hash of a signature algorithm (`signature_hash` rule, certificate facts, JSON).
    pub enum SignatureHash {
        Md5 => "md5", "MD5",
        Sha1 => "sha1", "SHA1",
        Sha224 => "sha224", "SHA224",
        Sha256 => "sha256", "SHA256",
        Sha384 => "sha384", "SHA384",
        Sha512 => "sha512", "SHA512",
        /// Ed25519 / Ed448 (no separate hash).
        Intrinsic => "intrinsic", "intrinsic",
        /// A signature algorithm certprobe cannot name.
        Unknown => "unknown", "unknown",
    }
}

vocabulary! {
    /// Issuer classification: `internal` when a store of class internal trusts the chain
    /// (verified, or trusted apart from the leaf's EKU), else `public` likewise, else `unknown`
    /// (the AD CS fallback heuristic is reported as an inference, not as a class). Also the
    /// values of the `issuer_class` rule's `allowed` list.
    pub enum IssuerClass {
        /// Chains to a store of class `internal`.
        Internal => "internal", "internal",
        /// Chains to a store of class `public`.
        Public => "public", "public",
        /// Chains to no configured store.
        Unknown => "unknown", "unknown",
    }
}

vocabulary! {
    /// Bounded reason why a store rejected a chain (`certprobe_chain_verified{error}`, JSON).
    pub enum VerifyErrorKind {
        UnknownIssuer => "unknown_issuer", "unknown issuer",
        Expired => "expired", "expired",
        NotYetValid => "not_yet_valid", "not yet valid",
        BadSignature => "bad_signature", "bad signature",
        UnsupportedSignatureAlgorithm => "unsupported_signature_algorithm",
            "unsupported signature algorithm",
        BadEku => "bad_eku", "extended key usage not allowed",
        PathTooLong => "path_too_long", "path too long",
        NameConstraints => "name_constraints", "name constraints violated",
        CaUsedAsLeaf => "ca_used_as_leaf", "CA certificate used as the leaf",
        NotCa => "not_ca", "issuer is not a CA",
        Malformed => "malformed", "malformed certificate",
        Other => "other", "other error",
    }
}

vocabulary! {
    /// Why a DNS lookup gave no usable answer (`certprobe_discovery_success` is 0 with
    /// `certprobe_discovery_failure{reason}`, the probe's `dns` failure detail, JSON).
    pub enum DnsReason {
        /// The name does not exist (NXDOMAIN).
        NxDomain => "nxdomain", "NXDOMAIN (no such name)",
        /// The name exists but has no record of the asked type (NOERROR, empty answer).
        NoRecords => "no_records", "no records of that type",
        /// The server answered SERVFAIL.
        ServFail => "servfail", "SERVFAIL",
        /// The server refused the query (REFUSED).
        Refused => "refused", "REFUSED",
        /// No answer within the configured timeout and attempts.
        Timeout => "timeout", "timed out",
        /// The answer held a target that is not a valid host name, or too many targets.
        BadAnswer => "bad_answer", "unusable answer",
        /// Any other resolver error (transport, other response codes).
        Error => "error", "resolver error",
    }
}

vocabulary! {
    /// The DNS record a discovered endpoint came from (`discover:` sources, the `record` label
    /// of `certprobe_discovery_target_info`).
    pub enum DiscoveryRecord {
        /// `_sip._tls.<domain>`: Lync clients' external sign-in (Access Edge, 443).
        SipTls => "sip_tls", "_sip._tls",
        /// `_sipinternaltls._tcp.<domain>`: internal sign-in (Front End / Director, 5061).
        SipInternalTls => "sipinternaltls", "_sipinternaltls._tcp",
        /// `lyncdiscover.<domain>`: external Autodiscover (reverse proxy, 443).
        LyncDiscover => "lyncdiscover", "lyncdiscover",
        /// `lyncdiscoverinternal.<domain>`: internal Autodiscover (Front End web, 443).
        LyncDiscoverInternal => "lyncdiscoverinternal", "lyncdiscoverinternal",
        /// `_sipfederationtls._tcp.<domain>`: federation (Access Edge, 5061).
        SipFederationTls => "sipfederationtls", "_sipfederationtls._tcp",
        /// `_xmpp-server._tcp.<domain>`: XMPP federation (Access Edge, 5269, STARTTLS).
        XmppServer => "xmpp_server", "_xmpp-server._tcp",
        /// Any other SRV name given as `srv:`.
        Srv => "srv", "SRV",
    }
}

vocabulary! {
    /// A policy rule (`certprobe_policy_rule_failed{rule}`, JSON `verdicts[].rule`, the keys of
    /// a profile's `rules:`), in evaluation order. Operators know rules by their id (docs,
    /// configs, alerts), so the human name is the id. `pool_consistency` and `same_issuer` come from
    /// the cross-endpoint functions in [`crate::policy::cross`].
    pub enum RuleId {
        Reachable => "reachable", "reachable",
        Trusted => "trusted", "trusted",
        IssuerClass => "issuer_class", "issuer_class",
        Hostname => "hostname", "hostname",
        Validity => "validity", "validity",
        Expiry => "expiry", "expiry",
        MaxValidity => "max_validity", "max_validity",
        SignatureHash => "signature_hash", "signature_hash",
        RsassaPss => "rsassa_pss", "rsassa_pss",
        Key => "key", "key",
        Eku => "eku", "eku",
        EkuCritical => "eku_critical", "eku_critical",
        KeyUsage => "key_usage", "key_usage",
        CrlDp => "crl_dp", "crl_dp",
        Revocation => "revocation", "revocation",
        CrlFresh => "crl_fresh", "crl_fresh",
        CdpLdapOnly => "cdp_ldap_only", "cdp_ldap_only",
        SanRequired => "san_required", "san_required",
        SubjectInSan => "subject_in_san", "subject_in_san",
        SubjectContains => "subject_contains", "subject_contains",
        CnWildcard => "cn_wildcard", "cn_wildcard",
        SanWildcard => "san_wildcard", "san_wildcard",
        SrvTargetName => "srv_target_name", "srv_target_name",
        DiscoveryCname => "discovery_cname", "discovery_cname",
        TlsVersion => "tls_version", "tls_version",
        MtlsEnforced => "mtls_enforced", "mtls_enforced",
        ClientCertAccepted => "client_cert_accepted", "client_cert_accepted",
        HandshakeSignature => "handshake_signature", "handshake_signature",
        ChainHygiene => "chain_hygiene", "chain_hygiene",
        AiaCompletesChain => "aia_completes_chain", "aia_completes_chain",
        IntermediateExpiry => "intermediate_expiry", "intermediate_expiry",
        PoolConsistency => "pool_consistency", "pool_consistency",
        SameIssuer => "same_issuer", "same_issuer",
        /// The OAuth metadata document (`oauth_metadata: true`) was fetched and parsed.
        OAuthMetadata => "oauth_metadata", "oauth_metadata",
        /// The OAuth metadata document publishes a second certificate while the older one is
        /// still valid (a certificate roll; severity info).
        OAuthRollWindow => "oauth_roll_window", "oauth_roll_window",
    }
}

vocabulary! {
    /// Why the OAuth metadata document of a Front End (`https://<pool>/metadata/json/1`) gave
    /// no certificate (`certprobe_oauth_metadata_failure{reason}`, JSON `oauth.failure`).
    /// Every remote input is bounded; each bound that is hit has its own reason.
    pub enum OAuthFailure {
        /// The TCP connection failed.
        Connect => "connect", "connection failed",
        /// The TLS handshake failed (the server's certificate does not verify for the name
        /// against the configured stores and the public roots).
        Tls => "tls", "TLS handshake failed",
        /// No complete answer within the endpoint's handshake timeout.
        Timeout => "timeout", "timed out",
        /// The HTTP status was not 200 (redirects are not followed).
        HttpStatus => "http_status", "HTTP status not 200",
        /// The body was larger than the bound (256 KiB).
        TooLarge => "too_large", "response too large",
        /// Not JSON, or JSON of the wrong shape (a field of the wrong type).
        BadJson => "bad_json", "not a valid JSON document",
        /// JSON nested deeper than the bound (32 levels).
        TooDeep => "too_deep", "JSON nested too deeply",
        /// `keys`, `keyValue` or `keyValue.value` missing.
        MissingField => "missing_field", "a required field is missing",
        /// More entries in `keys` than the bound (8).
        TooManyKeys => "too_many_keys", "too many keys",
        /// No key with `usage: Signing`.
        NoSigningKey => "no_signing_key", "no signing key",
        /// `keyValue.value` is not base64.
        BadBase64 => "bad_base64", "keyValue.value is not base64",
        /// `keyValue.value` is not one DER X.509 certificate.
        BadDer => "bad_der", "not a DER certificate",
    }
}

vocabulary! {
    /// How many per-target series the daemon exports (`metrics.detail`, global or per
    /// endpoint; docs/metrics.md "Series budget").
    pub enum MetricsDetail {
        /// The budget: per-address facts an operator alerts on, and a series per non-passing
        /// finding (about 10 series for a healthy address).
        Default => "default", "default",
        /// Everything `default` exports plus every certificate position, every evaluated rule
        /// (passing ones at 0), the chain hygiene gauges, the probe-phase durations per address
        /// and the 0/1 gauges whose 0 is the healthy case.
        Full => "full", "full",
    }
}

vocabulary! {
    /// A chain hygiene problem (`certprobe_chain_problem{problem}`): one series per problem the
    /// presented chain has, none for a clean chain.
    pub enum ChainProblem {
        OrderInvalid => "order_invalid", "certificates out of order",
        Incomplete => "incomplete", "intermediate missing",
        RootSent => "root_sent", "root certificate sent",
        WeakSignatureHash => "weak_signature_hash", "SHA-1/MD5 signature on the path",
    }
}

vocabulary! {
    /// Per-rule severity chosen by the operator (`severity` label, policy files).
    pub enum Severity {
        Fail => "fail", "fail",
        Warn => "warn", "warn",
        Info => "info", "info",
        Off => "off", "off",
    }
}

vocabulary! {
    /// One rule's verdict.
    pub enum Verdict {
        Pass => "pass", "pass",
        Warn => "warn", "warn",
        Fail => "fail", "fail",
        NotApplicable => "not_applicable", "n/a",
    }
}

vocabulary! {
    /// Rolled-up status, Nagios-compatible numbering: the discriminant is the exit code of
    /// `probe --once` and the value of `certprobe_policy_status`.
    pub enum Status {
        Ok = 0 => "ok", "OK",
        Warning = 1 => "warning", "WARNING",
        Critical = 2 => "critical", "CRITICAL",
        Unknown = 3 => "unknown", "UNKNOWN",
    }
}

impl Status {
    /// Nagios exit code (also the `certprobe_policy_status` value).
    pub fn exit_code(self) -> u8 {
        self as u8
    }

    /// Worst of two for roll-up: Critical > Unknown > Warning > Ok. (Nagios numbers Unknown
    /// above Critical for exit codes; for a verdict, Critical is worst.)
    pub fn worst(self, other: Status) -> Status {
        fn rank(s: Status) -> u8 {
            match s {
                Status::Ok => 0,
                Status::Warning => 1,
                Status::Unknown => 2,
                Status::Critical => 3,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distinct(names: &[&str]) -> bool {
        let mut v = names.to_vec();
        v.sort_unstable();
        v.dedup();
        v.len() == names.len()
    }

    #[test]
    fn names_are_distinct_and_round_trip() {
        macro_rules! check {
            ($t:ty) => {
                assert!(distinct(<$t>::NAMES), stringify!($t));
                assert_eq!(<$t>::ALL.len(), <$t>::NAMES.len());
                for v in <$t>::ALL {
                    assert_eq!(<$t>::from_name(v.as_str()), Some(*v));
                    let json = serde_json::to_string(v).unwrap();
                    assert_eq!(json, format!("\"{}\"", v.as_str()));
                    assert_eq!(serde_json::from_str::<$t>(&json).unwrap(), *v);
                }
            };
        }
        check!(TlsVersion);
        check!(SignatureHash);
        check!(IssuerClass);
        check!(VerifyErrorKind);
        check!(RuleId);
        check!(Severity);
        check!(Verdict);
        check!(Status);
        check!(MetricsDetail);
        check!(ChainProblem);
        check!(OAuthFailure);
    }

    #[test]
    fn rule_ids_are_label_safe() {
        for r in RuleId::ALL {
            assert!(r
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }

    #[test]
    fn tls_versions_parse_from_policy_and_openssl_spellings_and_order_oldest_first() {
        assert_eq!(TlsVersion::from_name("tls1.2"), Some(TlsVersion::Tls12));
        assert_eq!(TlsVersion::from_name("TLSv1"), Some(TlsVersion::Tls10));
        assert_eq!(TlsVersion::from_name("QUIC"), None);
        assert_eq!(TlsVersion::from_wire(0x0304), TlsVersion::Tls13);
        assert_eq!(TlsVersion::from_wire(0x7f1c), TlsVersion::Unrecognized);
        assert!(TlsVersion::Tls10 < TlsVersion::Tls12);
        assert!(TlsVersion::Tls11.is_legacy() && !TlsVersion::Tls12.is_legacy());
        let err = serde_json::from_str::<TlsVersion>("\"tls2\"").unwrap_err();
        assert!(err.to_string().contains("TLSv1.2"), "{err}");
    }

    #[test]
    fn status_numbers_are_nagios_exit_codes_and_roll_up_worst_first() {
        assert_eq!(Status::Critical.exit_code(), 2);
        assert_eq!(Status::Unknown.exit_code(), 3);
        assert_eq!(Status::Ok.to_string(), "OK");
        assert_eq!(Status::Warning.worst(Status::Unknown), Status::Unknown);
        assert_eq!(Status::Critical.worst(Status::Unknown), Status::Critical);
    }
}

vocabulary! {
    /// The protocols certprobe upgrades with STARTTLS (`starttls:` in the config, `--starttls`,
    /// the `starttls` label). People type them as they are, so the human name is the machine
    /// name.
    pub enum StartTls {
        Smtp => "smtp", "smtp",
        Lmtp => "lmtp", "lmtp",
        Imap => "imap", "imap",
        Pop3 => "pop3", "pop3",
        Ftp => "ftp", "ftp",
        Ldap => "ldap", "ldap",
        XmppClient => "xmpp-client", "xmpp-client",
        XmppServer => "xmpp-server", "xmpp-server",
        Postgres => "postgres", "postgres",
        Mysql => "mysql", "mysql",
        Sieve => "sieve", "sieve",
        Nntp => "nntp", "nntp",
    }
}

vocabulary! {
    /// A certificate key type a probe may ask for by offering only its signature schemes
    /// (`key_types:`, `--key-type`, the `key_type` label).
    pub enum KeyType {
        Ecdsa => "ecdsa", "ECDSA",
        Rsa => "rsa", "RSA",
    }
}

vocabulary! {
    /// Why a probe failed (the `reason` metric label, `failure.reason` in JSON). A small closed
    /// set: it becomes a metric label value. The human name is the label value.
    pub enum FailureReason {
        /// Name resolution failed or returned no address.
        Dns => "dns", "dns",
        /// TCP connection refused (RST to SYN).
        ConnectRefused => "connect_refused", "connect_refused",
        /// TCP connect did not complete within the connect timeout.
        ConnectTimeout => "connect_timeout", "connect_timeout",
        /// Other TCP connect error (unreachable, ...).
        ConnectError => "connect_error", "connect_error",
        /// The TLS handshake did not complete within the handshake timeout.
        HandshakeTimeout => "handshake_timeout", "handshake_timeout",
        /// The server sent a fatal TLS alert (the alert name is in [`crate::probe::Failure::alert`]).
        TlsAlert => "tls_alert", "tls_alert",
        /// The server only speaks TLS < 1.2 (a legacy capture may still have the chain).
        ProtocolVersion => "protocol_version", "protocol_version",
        /// The peer sent something that is not TLS.
        NotTls => "not_tls", "not_tls",
        /// The connection was reset by the peer.
        Reset => "reset", "reset",
        /// The peer closed the connection without an alert.
        Closed => "closed", "closed",
        /// The server rejected our client certificate (or the absence of one).
        ClientCertRejected => "client_cert_rejected", "client_cert_rejected",
        /// The server's chain exceeded the configured certificate count or byte cap.
        ChainTooLarge => "chain_too_large", "chain_too_large",
        /// No cipher suite / parameters in common (handshake_failure alert before any certificate).
        HandshakeFailure => "handshake_failure", "handshake_failure",
        /// The server presented a certificate that cannot be parsed.
        BadCertificate => "bad_certificate", "bad_certificate",
        /// Any other TLS protocol error (detail has the text).
        TlsError => "tls_error", "tls_error",
        /// STARTTLS: the server does not offer the upgrade (capability missing).
        StarttlsUnsupported => "starttls_unsupported", "starttls_unsupported",
        /// STARTTLS: the server refused the upgrade (its reply code is in the detail).
        StarttlsRefused => "starttls_refused", "starttls_refused",
        /// STARTTLS: an unexpected reply, an over-long or endless answer, or data after the
        /// server's go-ahead (the port may speak another protocol).
        StarttlsProtocol => "starttls_protocol", "starttls_protocol",
        /// The proxy could not be reached, timed out, or does not speak its protocol.
        ProxyConnect => "proxy_connect", "proxy_connect",
        /// The proxy refused the tunnel (its status or SOCKS reply is in the detail).
        ProxyRefused => "proxy_refused", "proxy_refused",
        /// The proxy wants credentials, or rejected ours.
        ProxyAuth => "proxy_auth", "proxy_auth",
    }
}

vocabulary! {
    /// Bounded reason why a CRL or an OCSP response could not be used (the `reason` label of
    /// the revocation metrics). The human name completes "the CRL/response is unusable: ...".
    pub enum RevocationReason {
        Dns => "dns", "its host does not resolve",
        Connect => "connect", "the connection failed",
        Tls => "tls", "the TLS connection failed",
        Timeout => "timeout", "the fetch timed out",
        HttpStatus => "http_status", "the server answered with an error status",
        Redirect => "redirect", "it redirects to another host",
        TooLarge => "too_large", "it is larger than max_crl_bytes",
        BadDer => "bad_der", "it is not a DER or PEM CRL",
        BadUrl => "bad_url", "the URL is malformed or carries userinfo",
        /// Another scheme than http/https.
        Unsupported => "unsupported", "its scheme is not http or https",
        /// Refused by the fetch policy (link-local/metadata address, host not in `allow_hosts`).
        Blocked => "blocked", "the fetch policy refuses its host or address",
        BadSignature => "bad_signature", "its signature does not verify with the issuer's key",
        WrongIssuer => "wrong_issuer", "it is issued by another CA than the certificate's issuer",
        /// The CRL's Issuing Distribution Point does not cover the certificate (or is indirect,
        /// or a delta CRL was published as the base).
        Scope => "scope", "its issuing distribution point does not cover the certificate",
        Expired => "expired", "it is past its nextUpdate",
        NotYetValid => "not_yet_valid", "its thisUpdate is in the future",
        /// OCSP: the responder answered with another status than successful (tryLater,
        /// internalError, unauthorized...).
        ResponderStatus => "responder_status", "the responder answered with an error status",
        /// OCSP: signed neither by the issuer nor by a delegated responder certificate with
        /// id-kp-OCSPSigning issued by it.
        Unauthorized => "unauthorized", "it is signed by neither the issuer nor a delegated OCSP responder of the issuer",
        /// OCSP: no SingleResponse for this certificate (CertID mismatch).
        NoMatchingResponse => "no_matching_response", "it holds no response for this certificate",
        /// OCSP: the responder does not know the certificate (status `unknown`).
        CertUnknown => "cert_unknown", "the responder does not know the certificate",
    }
}
