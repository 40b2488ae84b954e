//! Chain analysis: DER -> parsed facts -> verification against named trust stores, hostname
//! matching, hygiene and issuer classification. Pure: a function of (chain, name, stores, now).
//!
//! Contract used by `policy`, `metrics` and the CLI output:
//! - [`parse_cert`] turns one DER certificate into [`CertFacts`].
//! - [`analyze`] turns a presented chain into a [`ChainReport`].

pub mod facts;
pub mod hostname;
pub mod intern;
pub mod memo;
pub mod store;
pub mod verify;

pub use facts::{
    parse_cert, AdcsExtensions, CertFacts, CertParseError, KeyAlgorithm, SignatureHash,
};
pub use hostname::{match_hostname, HostnameMatch, NameCheck};
pub use store::{AnchorError, StoreClass, TrustStore, TrustStores};
pub use verify::{
    analyze, analyze_with_aia, webpki_error_text, ChainReport, Hygiene, IssuerClass, StoreVerdict,
    VerifyErrorKind,
};

/// Unix seconds as an RFC 3339 UTC timestamp (`2026-12-08T15:46:18Z`); the number itself when
/// it is outside the representable range. The one date format of every human message.
pub fn fmt_time(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// A PEM parsing error as a sentence (rustls-pki-types' own text prints byte arrays, e.g.
/// `missing section end marker: [45, 45, …]`).
pub fn pem_error_text(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error as E;
    let text = |b: &[u8]| crate::text::bounded(&String::from_utf8_lossy(b), 80);
    match e {
        E::MissingSectionEnd { end_marker } => format!(
            "a PEM section has no end line (expected \"-----END {}-----\")",
            text(end_marker)
        ),
        E::IllegalSectionStart { line } => {
            format!("malformed PEM BEGIN line \"{}\"", text(line))
        }
        E::Base64Decode(d) => {
            // The crate hands its Debug text over (`InvalidCharacter(33)`, `PrematurePadding`).
            let why = match d
                .strip_prefix("InvalidCharacter(")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|n| n.parse::<u8>().ok())
            {
                Some(b) if b.is_ascii_graphic() => {
                    format!("character '{}' (byte {b}) is not base64", b as char)
                }
                Some(b) => format!("byte {b} is not base64"),
                None if d.contains("Padding") => "misplaced '=' padding".to_string(),
                None => "it does not decode".to_string(),
            };
            format!("the base64 inside a PEM section is invalid: {why}")
        }
        E::Io(io) => format!("read error: {io}"),
        E::NoItemsFound => "no PEM section of the expected type".into(),
        E::SectionTooLarge => "a PEM section is larger than 256 MB".into(),
        _ => "malformed PEM".into(),
    }
}
