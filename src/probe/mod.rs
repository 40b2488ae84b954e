//! Probing: TCP connect, TLS/MTLS handshake, and a faithful capture of everything the server
//! presented. This module does I/O only; trust decisions happen in [`crate::chain`] and
//! [`crate::policy`].
//!
//! The probe completes the handshake even when the presented chain is untrusted, expired,
//! self-signed or issued for another name: a probe never sends application data (at most an
//! HTTP `HEAD` for the MTLS enforcement check, which carries no secret), so accepting an
//! untrusted peer cannot leak anything. The handshake *signature* is still verified against the
//! presented leaf key, which is what proves the server holds the key.
//!
//! - [`mod@resolve`]: host -> addresses (all or first), IP literals pass through.
//! - [`handshake`]: [`probe_address`] (rustls handshake, verdict read, MTLS enforcement check,
//!   legacy fallback) and [`probe_endpoint`] (resolve, then every address concurrently).
//! - [`verifier`]: the per-probe recording server-certificate verifier and client-cert resolver.
//! - [`legacy`]: hand-built TLS 1.0-1.2 ClientHello and the pure server-flight parser.
//! - [`reason`]: the bounded failure reasons and TLS alert names.

pub mod capture;
pub mod handshake;
pub mod legacy;
pub mod proxy;
pub mod reason;
pub mod resolve;
pub mod starttls;
pub mod tap;
pub mod verifier;

pub use capture::{Capture, ClientAuthFacts, HandshakeSignature, LegacyFacts};
pub use handshake::{
    probe_address, probe_address_key_types, probe_addresses, probe_endpoint, ClientIdentity,
    KeyType, KeyTypes, ProbeSpec,
};
pub use reason::{Failure, FailureReason};
pub use resolve::{resolve, AddressMode};
