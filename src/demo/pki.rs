//! The demo lab's PKI, generated at start-up with rcgen (plus the committed SHA-1 fixture that
//! rcgen cannot make). Also used by tests that need a realistic Lync-style estate.

use std::path::{Path, PathBuf};

use super::{Error, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod,
    KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// A CA: its parameters (to issue from), key and certificate.
pub struct Ca {
    pub params: CertificateParams,
    pub key: KeyPair,
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
}

/// An issued end-entity certificate with its chain (leaf first, without the root) and key.
pub struct Leaf {
    pub chain_pem: String,
    pub key_pem: String,
}

/// What to put in a leaf.
pub struct LeafSpec<'a> {
    pub cn: Option<&'a str>,
    pub sans: &'a [&'a str],
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub server_auth: bool,
    pub client_auth: bool,
    /// AD CS v1 template name (1.3.6.1.4.1.311.20.2, BMPString), e.g. `WebServer`.
    pub template_name: Option<&'a str>,
    /// AD CS v2 template information (1.3.6.1.4.1.311.21.7) and application policies.
    pub template_v2: bool,
    pub crl_dp: Option<&'a str>,
    /// Serial number (random when None); set for a certificate a CRL revokes.
    pub serial: Option<u64>,
}

impl<'a> LeafSpec<'a> {
    /// A server certificate valid from a day ago for `days` days.
    pub fn server(now: OffsetDateTime, cn: &'a str, sans: &'a [&'a str], days: i64) -> Self {
        Self {
            cn: Some(cn),
            sans,
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(days),
            server_auth: true,
            client_auth: false,
            template_name: None,
            template_v2: false,
            crl_dp: None,
            serial: None,
        }
    }
}

/// DER of an OID's content octets (no tag/length).
fn oid_body(arcs: &[u64]) -> Vec<u8> {
    let mut out = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &a in &arcs[2..] {
        let mut stack = vec![(a & 0x7f) as u8];
        let mut v = a >> 7;
        while v > 0 {
            stack.push(((v & 0x7f) as u8) | 0x80);
            v >>= 7;
        }
        out.extend(stack.into_iter().rev());
    }
    out
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend([0x81, n as u8]);
    } else {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(body);
    out
}

/// 1.3.6.1.4.1.311.20.2 as a BMPString (what Windows emits).
pub fn ms_template_name(name: &str) -> CustomExtension {
    let utf16: Vec<u8> = name.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 311, 20, 2], tlv(0x1e, &utf16))
}

/// 1.3.6.1.4.1.311.21.7: a v2 template OID, major 100, minor 3.
pub fn ms_template_info() -> CustomExtension {
    let oid = tlv(
        0x06,
        &oid_body(&[1, 3, 6, 1, 4, 1, 311, 21, 8, 5138, 1, 14, 3]),
    );
    let body = [oid, tlv(0x02, &[100]), tlv(0x02, &[3])].concat();
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 311, 21, 7], tlv(0x30, &body))
}

/// 1.3.6.1.4.1.311.21.10 listing serverAuth (and clientAuth).
pub fn ms_application_policies(client_auth: bool) -> CustomExtension {
    let mut body = tlv(0x30, &tlv(0x06, &oid_body(&[1, 3, 6, 1, 5, 5, 7, 3, 1])));
    if client_auth {
        body.extend(tlv(
            0x30,
            &tlv(0x06, &oid_body(&[1, 3, 6, 1, 5, 5, 7, 3, 2])),
        ));
    }
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 311, 21, 10], tlv(0x30, &body))
}

/// 1.3.6.1.4.1.311.21.1 CA Version V0.0.
pub fn ms_ca_version() -> CustomExtension {
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 311, 21, 1], tlv(0x02, &[0]))
}

fn dn(cn: &str, org: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::OrganizationName, org);
    d.push(DnType::CommonName, cn);
    d
}

impl Ca {
    /// A self-signed root, valid ten years around `now`.
    pub fn root(cn: &str, org: &str, now: OffsetDateTime, adcs: bool) -> Result<Self> {
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(cn, org);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.not_before = now - Duration::days(365);
        p.not_after = now + Duration::days(3650);
        if adcs {
            p.custom_extensions.push(ms_ca_version());
        }
        let key = KeyPair::generate().map_err(|e| Error::Pki("generating a CA key", e))?;
        let cert = p
            .self_signed(&key)
            .map_err(|e| Error::Pki("self-signing a root", e))?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            params: p,
            key,
        })
    }

    /// An intermediate issued by `self`, with `crl_dp` as its CRL distribution point.
    pub fn intermediate(
        &self,
        cn: &str,
        org: &str,
        now: OffsetDateTime,
        adcs: bool,
        crl_dp: Option<&str>,
    ) -> Result<Self> {
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(cn, org);
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.not_before = now - Duration::days(300);
        p.not_after = now + Duration::days(1825);
        p.use_authority_key_identifier_extension = true;
        if adcs {
            p.custom_extensions.push(ms_ca_version());
        }
        if let Some(url) = crl_dp {
            p.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![url.to_string()],
            }];
        }
        let key =
            KeyPair::generate().map_err(|e| Error::Pki("generating an intermediate key", e))?;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = p
            .signed_by(&key, &issuer)
            .map_err(|e| Error::Pki("issuing an intermediate", e))?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            params: p,
            key,
        })
    }

    /// Issue a leaf; `chain_tail` is appended after the leaf (this CA's PEM when it is an
    /// intermediate).
    pub fn issue(&self, spec: &LeafSpec<'_>, chain_tail: &str) -> Result<Leaf> {
        let sans: Vec<String> = spec.sans.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(sans).map_err(|e| Error::Pki("leaf SANs", e))?;
        if spec.sans.is_empty() {
            p.subject_alt_names.clear();
        }
        p.distinguished_name = DistinguishedName::new();
        if let Some(cn) = spec.cn {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        p.not_before = spec.not_before;
        p.not_after = spec.not_after;
        p.serial_number = spec.serial.map(SerialNumber::from);
        p.use_authority_key_identifier_extension = true;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        if spec.server_auth {
            p.extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if spec.client_auth {
            p.extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        if let Some(url) = spec.crl_dp {
            p.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![url.to_string()],
            }];
        }
        if let Some(t) = spec.template_name {
            p.custom_extensions.push(ms_template_name(t));
        }
        if spec.template_v2 {
            p.custom_extensions.push(ms_template_info());
            p.custom_extensions
                .push(ms_application_policies(spec.client_auth));
        }
        let key = KeyPair::generate().map_err(|e| Error::Pki("generating a leaf key", e))?;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = p
            .signed_by(&key, &issuer)
            .map_err(|e| Error::Pki("issuing a leaf", e))?;
        Ok(Leaf {
            chain_pem: format!("{}{}", cert.pem(), chain_tail),
            key_pem: key.serialize_pem(),
        })
    }
}

impl Ca {
    /// A CRL of this CA (DER) published an hour ago, whose nextUpdate is `next_update_in` from
    /// `now`, revoking `revoked` (serial, reason) as of a day ago.
    pub fn crl(
        &self,
        now: OffsetDateTime,
        next_update_in: Duration,
        number: u64,
        revoked: &[(u64, RevocationReason)],
    ) -> Result<Vec<u8>> {
        let params = CertificateRevocationListParams {
            this_update: now - Duration::hours(1),
            next_update: now + next_update_in,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|&(serial, reason)| RevokedCertParams {
                    serial_number: SerialNumber::from(serial),
                    revocation_time: now - Duration::days(1),
                    reason_code: Some(reason),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let issuer = Issuer::from_params(&self.params, &self.key);
        let crl = params
            .signed_by(&issuer)
            .map_err(|e| Error::Pki("signing a lab CRL", e))?;
        Ok(crl.der().to_vec())
    }
}

/// Write `contents` to `dir/name`, private files with mode 0600.
pub fn write(dir: &Path, name: &str, contents: &str, private: bool) -> Result<PathBuf> {
    let p = dir.join(name);
    std::fs::write(&p, contents).map_err(|e| Error::Io(format!("writing {}", p.display()), e))?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::Io(format!("chmod 600 {}", p.display()), e))?;
    }
    #[cfg(not(unix))]
    let _ = private;
    Ok(p)
}
