//! Metric label names: the ones certprobe writes itself, and which names an operator may give
//! an endpoint's own `labels:` (checked when the config is validated, used by the metrics).

/// Label names certprobe uses itself. Configured endpoint labels must not use them.
pub const RESERVED_LABELS: &[&str] = &[
    "endpoint",
    "address",
    "key_type",
    "starttls",
    "role",
    "pool",
    "phase",
    "reason",
    "alert",
    "version",
    "cipher",
    "position",
    "subject_cn",
    "issuer_cn",
    "serial",
    "fingerprint_sha256",
    "signature_algorithm",
    "key_algorithm",
    "key_bits",
    "store",
    "error",
    "source",
    "profile",
    "rule",
    "severity",
    "result",
    "revision",
    "job",
    "instance",
    "le",
    "quantile",
];

pub fn valid_label_name(k: &str) -> bool {
    let mut chars = k.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !k.starts_with("__")
}

/// True when `key` may be used as a configured endpoint label.
pub fn is_allowed_endpoint_label(key: &str) -> bool {
    valid_label_name(key) && !RESERVED_LABELS.contains(&key)
}
