//! The recording server-certificate verifier and the recording client-certificate resolver.
//!
//! Both are created per probe (never shared between concurrent probes) and write what they see
//! into one [`Recorder`] that the handshake code reads after `connect()` returned, whether the
//! handshake succeeded or not: on a failed handshake (TLS 1.2 MTLS rejection, chain too large,
//! bad signature) the stream is gone and only these hooks saw the chain.
//!
//! # Why accepting any chain is safe here
//!
//! [`RecordingVerifier::verify_server_cert`] accepts every presented chain: untrusted, expired,
//! self-signed, issued for another name. That would be a vulnerability in a client that then
//! sends secrets. The probe sends no application data at all (with `app_protocol: http` it sends
//! exactly `HEAD / HTTP/1.1` with the SNI as Host and nothing secret), so an impostor learns
//! nothing by completing the handshake. Trust is decided afterwards, on the captured DER, in
//! `chain::analyze` against the configured stores. The *handshake signature* is still verified
//! against the presented leaf key (that proves the server holds the key for the chain it sent);
//! only keys too weak for the provider (RSA < 2048) are let through, flagged.

use std::sync::{Arc, Mutex, MutexGuard};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::capture::HandshakeSignature;

/// How many acceptable-CA names from a CertificateRequest are kept.
pub const MAX_ACCEPTABLE_CA_NAMES: usize = 64;

/// RSA keys below this size cannot be verified by ring's (webpki's) RSA algorithms.
const MIN_VERIFIABLE_RSA_BITS: usize = 2048;

/// What the verifier and the client-cert resolver observed during one handshake.
#[derive(Debug, Default, Clone)]
pub struct Recorded {
    /// The presented chain (leaf first), truncated to the caps.
    pub chain: Vec<CertificateDer<'static>>,
    /// Set when the presented chain exceeded the caps (detail for the failure).
    pub chain_too_large: Option<String>,
    /// Handshake signature outcome (None until the signature was checked).
    pub handshake_signature: Option<HandshakeSignature>,
    /// A genuine handshake signature failure with a key the provider can verify.
    pub signature_error: Option<String>,
    /// The leaf could not be parsed for the signature check.
    pub leaf_unparseable: bool,
    /// The scheme of the server's handshake signature (IANA name, e.g.
    /// `ecdsa_secp256r1_sha256`).
    pub signature_scheme: Option<String>,
    /// Length of the OCSP response the server stapled (None: nothing stapled).
    pub ocsp_staple_bytes: Option<usize>,
    /// The stapled response, when it is within `revocation::ocsp::MAX_RESPONSE_BYTES`.
    pub ocsp_staple: Option<Arc<[u8]>>,
    /// The server sent a CertificateRequest.
    pub client_auth_requested: bool,
    /// Acceptable CA names from the CertificateRequest (RFC 4514 strings).
    pub acceptable_ca_names: Vec<String>,
    pub acceptable_ca_names_truncated: bool,
    /// We answered the CertificateRequest with a certificate.
    pub client_cert_sent: bool,
}

/// Shared, per-probe record.
#[derive(Debug, Default, Clone)]
pub struct Recorder(Arc<Mutex<Recorded>>);

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Lock the record (a poisoned lock still yields the data: it is plain facts).
    pub fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of what was recorded so far.
    pub fn snapshot(&self) -> Recorded {
        self.lock().clone()
    }
}

/// A `ServerCertVerifier` that records the presented chain and accepts it (see the module docs
/// for why that is safe), enforces the chain caps, and verifies the handshake signature.
#[derive(Debug)]
pub struct RecordingVerifier {
    algorithms: WebPkiSupportedAlgorithms,
    max_chain_certs: usize,
    max_chain_bytes: usize,
    recorder: Recorder,
    /// Offer only this key type's schemes.
    key_types: Option<super::handshake::KeyType>,
}

impl RecordingVerifier {
    /// Offer only `key_type`'s signature schemes (None: every scheme).
    pub fn with_key_type(mut self, key_type: Option<super::handshake::KeyType>) -> Self {
        self.key_types = key_type;
        self
    }

    pub fn new(
        algorithms: WebPkiSupportedAlgorithms,
        max_chain_certs: usize,
        max_chain_bytes: usize,
        recorder: Recorder,
    ) -> Self {
        Self {
            algorithms,
            max_chain_certs,
            max_chain_bytes,
            recorder,
            key_types: None,
        }
    }

    /// Record the outcome of a handshake-signature check. A failure with a leaf key that is too
    /// weak for the provider (RSA < 2048, which ring refuses to verify) is flagged and allowed;
    /// so is a scheme offered only for capture that the provider cannot verify (ECDSA P-521);
    /// any other failure aborts the handshake.
    fn judge_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        result: Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let mut rec = self.recorder.lock();
        rec.signature_scheme = Some(scheme_name(dss.scheme));
        // Schemes ring's rustls provider does not map: verified here where ring can (RSA-PSS
        // with an id-RSASSA-PSS key), flagged as unverifiable where it cannot (P-521).
        let result = match (&result, capture_only_scheme(dss.scheme)) {
            (Err(_), Some(CaptureOnly::RsaPssKey(alg))) => match rsa_pss_key_bits(cert) {
                Some(key) => {
                    let ok = ring::signature::UnparsedPublicKey::new(alg, &key)
                        .verify(message, dss.signature())
                        .is_ok();
                    if ok {
                        Ok(HandshakeSignatureValid::assertion())
                    } else {
                        result
                    }
                }
                None => result,
            },
            (Err(_), Some(CaptureOnly::Unverifiable)) => {
                rec.handshake_signature = Some(HandshakeSignature::Unverifiable(format!(
                    "the crypto provider cannot verify {} signatures",
                    scheme_name(dss.scheme)
                )));
                return Ok(HandshakeSignatureValid::assertion());
            }
            _ => result,
        };
        match result {
            Ok(valid) => {
                rec.handshake_signature = Some(HandshakeSignature::Verified);
                Ok(valid)
            }
            Err(err) => match leaf_rsa_bits(cert) {
                Some(Some(bits)) if bits < MIN_VERIFIABLE_RSA_BITS => {
                    rec.handshake_signature = Some(HandshakeSignature::WeakKeyNotVerified(
                        format!("RSA-{bits} leaf key: handshake signature not verifiable ({err})"),
                    ));
                    Ok(HandshakeSignatureValid::assertion())
                }
                parsed => {
                    rec.leaf_unparseable = parsed.is_none();
                    rec.signature_error = Some(format!("handshake signature invalid: {err}"));
                    Err(err)
                }
            },
        }
    }
}

/// A scheme certprobe offers so that every chain another TLS stack can capture is captured,
/// though rustls' ring provider does not map it.
enum CaptureOnly {
    /// rsa_pss_pss_* (RFC 8446: an id-RSASSA-PSS leaf key): ring verifies it given the key.
    RsaPssKey(&'static ring::signature::RsaParameters),
    /// ring has no implementation (ECDSA P-521).
    Unverifiable,
}

/// rsa_pss_pss_sha256/384/512 (RFC 8446 4.2.3).
const RSA_PSS_PSS: [(u16, &ring::signature::RsaParameters); 3] = [
    (0x0809, &ring::signature::RSA_PSS_2048_8192_SHA256),
    (0x080a, &ring::signature::RSA_PSS_2048_8192_SHA384),
    (0x080b, &ring::signature::RSA_PSS_2048_8192_SHA512),
];

fn capture_only_scheme(scheme: SignatureScheme) -> Option<CaptureOnly> {
    let code = u16::from(scheme);
    if scheme == SignatureScheme::ECDSA_NISTP521_SHA512 {
        return Some(CaptureOnly::Unverifiable);
    }
    RSA_PSS_PSS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, alg)| CaptureOnly::RsaPssKey(alg))
}

/// The schemes offered beyond the provider's: P-521 and the RSA-PSS-key schemes.
fn capture_only_schemes() -> impl Iterator<Item = SignatureScheme> {
    std::iter::once(SignatureScheme::ECDSA_NISTP521_SHA512)
        .chain(RSA_PSS_PSS.iter().map(|(c, _)| SignatureScheme::from(*c)))
}

/// IANA TLS SignatureScheme name (`ecdsa_secp256r1_sha256`), or `0x....`.
pub fn scheme_name(scheme: SignatureScheme) -> String {
    let name = match u16::from(scheme) {
        0x0201 => "rsa_pkcs1_sha1",
        0x0203 => "ecdsa_sha1",
        0x0401 => "rsa_pkcs1_sha256",
        0x0501 => "rsa_pkcs1_sha384",
        0x0601 => "rsa_pkcs1_sha512",
        0x0403 => "ecdsa_secp256r1_sha256",
        0x0503 => "ecdsa_secp384r1_sha384",
        0x0603 => "ecdsa_secp521r1_sha512",
        0x0804 => "rsa_pss_rsae_sha256",
        0x0805 => "rsa_pss_rsae_sha384",
        0x0806 => "rsa_pss_rsae_sha512",
        0x0807 => "ed25519",
        0x0808 => "ed448",
        0x0809 => "rsa_pss_pss_sha256",
        0x080a => "rsa_pss_pss_sha384",
        0x080b => "rsa_pss_pss_sha512",
        other => return format!("0x{other:04x}"),
    };
    name.to_string()
}

/// The RSAPublicKey of an id-RSASSA-PSS leaf (the SPKI's bit string), when the leaf has one.
fn rsa_pss_key_bits(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    use x509_parser::prelude::FromDer;
    let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(cert.as_ref()).ok()?;
    let spki = parsed.public_key();
    (spki.algorithm.algorithm.to_id_string() == "1.2.840.113549.1.1.10")
        .then(|| spki.subject_public_key.data.to_vec())
}

/// `None` when the certificate cannot be parsed, `Some(None)` for a non-RSA key, else the RSA
/// modulus size in bits.
fn leaf_rsa_bits(cert: &CertificateDer<'_>) -> Option<Option<usize>> {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(cert.as_ref()).ok()?;
    match parsed.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => Some(Some(rsa.key_size())),
        Ok(_) => Some(None),
        Err(_) => None,
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !ocsp_response.is_empty() {
            let mut rec = self.recorder.lock();
            rec.ocsp_staple_bytes = Some(ocsp_response.len());
            rec.ocsp_staple = (ocsp_response.len() <= crate::revocation::ocsp::MAX_RESPONSE_BYTES)
                .then(|| Arc::from(ocsp_response));
        }
        let presented = 1 + intermediates.len();
        let presented_bytes: usize =
            end_entity.len() + intermediates.iter().map(|c| c.len()).sum::<usize>();
        let mut kept = Vec::with_capacity(presented.min(self.max_chain_certs));
        let mut kept_bytes = 0usize;
        for cert in std::iter::once(end_entity).chain(intermediates) {
            if kept.len() >= self.max_chain_certs || kept_bytes + cert.len() > self.max_chain_bytes
            {
                break;
            }
            kept_bytes += cert.len();
            kept.push(cert.clone().into_owned());
        }
        let mut rec = self.recorder.lock();
        let truncated = kept.len() < presented;
        rec.chain = kept;
        if truncated {
            let detail = format!(
                "server presented {presented} certificates / {presented_bytes} bytes, over the cap of {} certificates / {} bytes",
                self.max_chain_certs, self.max_chain_bytes
            );
            rec.chain_too_large = Some(detail.clone());
            return Err(rustls::Error::General(detail));
        }
        // Trust is NOT decided here: see the module docs. chain::analyze judges the DER later.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let result = rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms);
        self.judge_signature(message, cert, dss, result)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let result = rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms);
        self.judge_signature(message, cert, dss, result)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        // The provider's schemes, then the capture-only ones (a server that has only a P-521 or
        // an RSA-PSS key must still show its chain; see `judge_signature`).
        let mut schemes = self.algorithms.supported_schemes();
        for extra in capture_only_schemes() {
            if !schemes.contains(&extra) {
                schemes.push(extra);
            }
        }
        if let Some(only) = &self.key_types {
            schemes.retain(|s| only.allows(*s));
        }
        schemes
    }
}

/// A `ResolvesClientCert` that records the CertificateRequest (and its acceptable CA names) and
/// presents the configured client identity, if any.
#[derive(Debug)]
pub struct RecordingClientCertResolver {
    identity: Option<Arc<CertifiedKey>>,
    recorder: Recorder,
}

impl RecordingClientCertResolver {
    pub fn new(identity: Option<Arc<CertifiedKey>>, recorder: Recorder) -> Self {
        Self { identity, recorder }
    }
}

impl ResolvesClientCert for RecordingClientCertResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let mut rec = self.recorder.lock();
        rec.client_auth_requested = true;
        rec.acceptable_ca_names = root_hint_subjects
            .iter()
            .take(MAX_ACCEPTABLE_CA_NAMES)
            .map(|der| distinguished_name_to_string(der))
            .collect();
        rec.acceptable_ca_names_truncated = root_hint_subjects.len() > MAX_ACCEPTABLE_CA_NAMES;
        rec.client_cert_sent = self.identity.is_some();
        self.identity.clone()
    }

    fn has_certs(&self) -> bool {
        self.identity.is_some()
    }
}

/// DER `Name` -> RFC 4514 string, the same rendering as certificate subjects and issuers
/// (`CN=Issuing CA,O=Contoso`, most significant RDN last); undecodable names as `#<hex>`.
pub fn distinguished_name_to_string(der: &[u8]) -> String {
    use x509_parser::prelude::FromDer;
    match x509_parser::x509::X509Name::from_der(der) {
        Ok((_, name)) => crate::chain::facts::rfc4514(&name),
        Err(_) => format!("#{}", hex::encode(der)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_distinguished_name_renders_as_hex() {
        assert_eq!(distinguished_name_to_string(&[0x01, 0x02]), "#0102");
    }

    #[test]
    fn distinguished_name_renders_rfc4514_like() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test CA");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        use x509_parser::prelude::FromDer;
        let (_, parsed) =
            x509_parser::certificate::X509Certificate::from_der(cert.der().as_ref()).unwrap();
        let s = distinguished_name_to_string(parsed.subject().as_raw());
        assert!(s.contains("CN=Test CA"), "{s}");
        assert!(s.contains("O=Example"), "{s}");
    }
}
