//! Named trust stores.

use rustls_pki_types::{CertificateDer, TrustAnchor};
use serde::Serialize;

use super::facts::{parse_cert, CertFacts};

/// How a store classifies the issuers it trusts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum StoreClass {
    /// Enterprise / internal CA roots.
    Internal,
    /// Public web PKI roots.
    Public,
}

/// One named trust store.
///
/// A bundle's self-signed roots are its trust anchors; the other certificates of a bundle
/// (issuing and policy CAs) are only path-building helpers, as in a client's intermediate
/// store: a chain that needs one of them verifies, but is reported incomplete (the server does
/// not send that CA, and clients that trust only the root fail). Certificates the operator
/// marks as anchors ([`TrustStore::from_anchors`], config `anchor_files`) are anchors whatever
/// they are.
#[derive(Debug, Clone)]
pub struct TrustStore {
    pub name: String,
    pub class: StoreClass,
    pub anchors: Vec<TrustAnchor<'static>>,
    /// The anchor certificates when known (PEM bundles); empty for webpki-roots.
    pub anchor_certs: Vec<CertificateDer<'static>>,
    /// Parsed facts of `anchor_certs` (parsed once when the store is built; certificates that
    /// x509-parser cannot read are absent).
    pub anchor_facts: Vec<CertFacts>,
    /// Non-anchor CA certificates of the bundle: offered to path building after the presented
    /// intermediates, never trusted by themselves.
    pub helpers: Vec<CertificateDer<'static>>,
    /// Parsed facts of `helpers`, index for index.
    pub helper_facts: Vec<Option<CertFacts>>,
    /// Memo of chain verifications against this store (see [`super::verify::VerdictCache`]).
    pub verdict_cache: super::verify::VerdictCache,
}

/// A certificate that cannot be a trust anchor (webpki's reason, in words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("certificate #{index} is not a usable trust anchor: {reason}")]
pub struct AnchorError {
    /// Position in the certificates given.
    pub index: usize,
    pub reason: String,
}

impl TrustStore {
    /// A store from a PEM bundle's certificates: self-signed roots become anchors, every other
    /// certificate a path-building helper.
    pub fn from_bundle(
        name: impl Into<String>,
        class: StoreClass,
        certs: Vec<CertificateDer<'static>>,
    ) -> Result<Self, AnchorError> {
        let mut roots = Vec::new();
        let mut helpers = Vec::new();
        let mut helper_facts = Vec::new();
        for c in certs {
            match parse_cert(&c) {
                Ok(f) if !f.self_signed => {
                    helpers.push(c);
                    helper_facts.push(Some(f));
                }
                // Self-signed, or unreadable by x509-parser (webpki decides below).
                _ => roots.push(c),
            }
        }
        let mut store = Self::from_anchors(name, class, roots)?;
        store.helpers = helpers;
        store.helper_facts = helper_facts;
        Ok(store)
    }

    /// A store whose every certificate is a trust anchor (pinned intermediates or server
    /// certificates; x509-limbo's `trusted_certs`).
    pub fn from_anchors(
        name: impl Into<String>,
        class: StoreClass,
        certs: Vec<CertificateDer<'static>>,
    ) -> Result<Self, AnchorError> {
        let mut anchors = Vec::with_capacity(certs.len());
        for (i, c) in certs.iter().enumerate() {
            let a = webpki::anchor_from_trusted_cert(c).map_err(|e| AnchorError {
                index: i,
                reason: super::verify::webpki_error_text(&e),
            })?;
            anchors.push(a.to_owned());
        }
        let anchor_facts = certs.iter().filter_map(|c| parse_cert(c).ok()).collect();
        Ok(Self {
            name: name.into(),
            class,
            anchors,
            anchor_certs: certs,
            anchor_facts,
            helpers: Vec::new(),
            helper_facts: Vec::new(),
            verdict_cache: Default::default(),
        })
    }

    /// Add certificates the operator marks as anchors to this store.
    pub fn add_anchors(&mut self, certs: Vec<CertificateDer<'static>>) -> Result<(), AnchorError> {
        let extra = Self::from_anchors(self.name.clone(), self.class, certs)?;
        self.anchors.extend(extra.anchors);
        self.anchor_certs.extend(extra.anchor_certs);
        self.anchor_facts.extend(extra.anchor_facts);
        Ok(())
    }

    /// The built-in public store (webpki-roots, Mozilla's root program).
    pub fn webpki_roots(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            class: StoreClass::Public,
            anchors: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            anchor_certs: Vec::new(),
            anchor_facts: Vec::new(),
            helpers: Vec::new(),
            helper_facts: Vec::new(),
            verdict_cache: Default::default(),
        }
    }
}

/// All configured stores, in configuration order.
#[derive(Debug, Clone, Default)]
pub struct TrustStores {
    pub stores: Vec<TrustStore>,
}

impl TrustStores {
    pub fn get(&self, name: &str) -> Option<&TrustStore> {
        self.stores.iter().find(|s| s.name == name)
    }
}
