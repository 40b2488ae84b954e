//! Chain analysis: DER -> parsed facts -> verification against named trust stores, hostname
//! matching, hygiene and issuer classification. Pure: a function of (chain, name, stores, now).
//!
//! Contract used by `policy`, `metrics` and the CLI output:
//! - [`parse_cert`] turns one DER certificate into [`CertFacts`].
//! - [`analyze`] turns a presented chain into a [`ChainReport`].

pub mod facts;
pub mod hostname;
pub mod memo;
pub mod store;
pub mod verify;

pub use facts::{parse_cert, AdcsExtensions, CertFacts, KeyAlgorithm, SignatureHash};
pub use hostname::{match_hostname, HostnameMatch, NameCheck};
pub use store::{StoreClass, TrustStore, TrustStores};
pub use verify::{analyze, ChainReport, Hygiene, IssuerClass, StoreVerdict, VerifyErrorKind};
