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
}

impl TrustStore {
    /// A store from PEM-decoded DER certificates.
    pub fn from_certs(
        name: impl Into<String>,
        class: StoreClass,
        certs: Vec<CertificateDer<'static>>,
    ) -> Result<Self, String> {
        let mut anchors = Vec::with_capacity(certs.len());
        for (i, c) in certs.iter().enumerate() {
            let a = webpki::anchor_from_trusted_cert(c)
                .map_err(|e| format!("certificate #{i} is not a usable trust anchor: {e:?}"))?;
            anchors.push(a.to_owned());
        }
        let anchor_facts = certs.iter().filter_map(|c| parse_cert(c).ok()).collect();
        Ok(Self {
            name: name.into(),
            class,
            anchors,
            anchor_certs: certs,
            anchor_facts,
        })
    }

    /// The built-in public store (webpki-roots, Mozilla's root program).
    pub fn webpki_roots(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            class: StoreClass::Public,
            anchors: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            anchor_certs: Vec::new(),
            anchor_facts: Vec::new(),
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
