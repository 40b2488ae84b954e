//! One CRL, parsed once into what a probe needs: issuer, validity, scope and a serial set. A
//! CRL of 100,000 entries costs a hash lookup per probe; its signature is verified once per
//! issuer key (memoized), from the DER kept beside it.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::Reason;

/// OID of the delta CRL indicator extension (RFC 5280 5.2.4).
const OID_DELTA_CRL_INDICATOR: &str = "2.5.29.27";
/// OID of the Freshest CRL extension (RFC 5280 5.2.6).
const OID_FRESHEST_CRL: &str = "2.5.29.46";

/// A revoked entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RevokedEntry {
    /// Unix seconds.
    pub revoked_at: i64,
    /// CRL reason code (RFC 5280 5.3.1), when the entry carries one.
    pub reason: Option<u8>,
}

/// The Issuing Distribution Point of a CRL: which certificates it covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IdpScope {
    pub only_user_certs: bool,
    pub only_ca_certs: bool,
    pub only_attribute_certs: bool,
    pub only_some_reasons: bool,
    pub indirect: bool,
    /// URIs of the distribution point name (empty when absent or not a full name).
    pub uris: Vec<String>,
}

/// A parsed CRL.
#[derive(Debug)]
pub struct ParsedCrl {
    /// Contents (without the outer SEQUENCE header) of the issuer Name, as `CertFacts::issuer_der`.
    pub issuer_der: Vec<u8>,
    /// RFC 4514 issuer (messages only).
    pub issuer: String,
    pub this_update: i64,
    pub next_update: Option<i64>,
    /// CRL number, lowercase hex without leading zeros.
    pub crl_number: Option<String>,
    /// The CRL is a delta CRL (it carries a delta CRL indicator).
    pub is_delta: bool,
    /// The CRL names delta CRLs (Freshest CRL extension).
    pub has_freshest: bool,
    /// The Freshest CRL extension's URIs (where the delta CRLs are), bounded.
    pub freshest_urls: Vec<String>,
    /// For a delta CRL: the BaseCRLNumber of its delta CRL indicator (the oldest base it
    /// completes), lowercase hex without leading zeros.
    pub delta_base: Option<String>,
    pub idp: Option<IdpScope>,
    /// Revoked serials.
    revoked: Serials,
    /// DER bytes (signature verification).
    der: Vec<u8>,
    /// SHA-256 of issuer SPKI DERs already tried, with the result.
    verified: Mutex<Vec<([u8; 32], bool)>>,
}

impl ParsedCrl {
    /// Parse DER (or PEM, which some CAs publish). Errors are a bounded reason.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, Reason> {
        let der = if bytes.starts_with(b"-----BEGIN") {
            pem_to_der(&bytes).ok_or(Reason::BadDer)?
        } else {
            bytes
        };
        let parsed = {
            let (rest, crl) =
                CertificateRevocationList::from_der(&der).map_err(|_| Reason::BadDer)?;
            if !rest.is_empty() {
                return Err(Reason::BadDer);
            }
            let issuer_der = name_contents(crl.tbs_cert_list.issuer.as_raw())
                .ok_or(Reason::BadDer)?
                .to_vec();
            let revoked = Serials::new(crl.iter_revoked_certificates().map(|r| {
                (
                    r.raw_serial(),
                    RevokedEntry {
                        revoked_at: r.revocation_date.timestamp(),
                        reason: r.reason_code().map(|(_, c)| c.0),
                    },
                )
            }));
            let mut idp = None;
            let mut is_delta = false;
            let mut has_freshest = false;
            let mut freshest_urls = Vec::new();
            let mut delta_base = None;
            for ext in crl.extensions() {
                match ext.oid.to_id_string().as_str() {
                    OID_DELTA_CRL_INDICATOR => {
                        is_delta = true;
                        let mut d = super::ocsp::Der(ext.value);
                        match d.next() {
                            Ok((0x02, n, _)) if d.is_empty() && !n.is_empty() => {
                                delta_base = Some(serial_hex(n));
                            }
                            _ => return Err(Reason::BadDer),
                        }
                    }
                    OID_FRESHEST_CRL => {
                        has_freshest = true;
                        collect_uris(ext.value, 0, &mut freshest_urls);
                    }
                    _ => {}
                }
                if let ParsedExtension::IssuingDistributionPoint(p) = ext.parsed_extension() {
                    let mut uris = Vec::new();
                    if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                        for n in names {
                            if let GeneralName::URI(u) = n {
                                uris.push(crate::text::bounded(u, 256));
                            }
                        }
                    }
                    idp = Some(IdpScope {
                        only_user_certs: p.only_contains_user_certs,
                        only_ca_certs: p.only_contains_ca_certs,
                        only_attribute_certs: p.only_contains_attribute_certs,
                        only_some_reasons: p.only_some_reasons.is_some(),
                        indirect: p.indirect_crl,
                        uris,
                    });
                }
            }
            (
                issuer_der,
                crate::text::bounded(&crl.tbs_cert_list.issuer.to_string(), 256),
                crl.last_update().timestamp(),
                crl.next_update().map(|t| t.timestamp()),
                crl.crl_number().map(|n| n.to_str_radix(16)),
                is_delta,
                has_freshest,
                freshest_urls,
                delta_base,
                idp,
                revoked,
            )
        };
        let (
            issuer_der,
            issuer,
            this_update,
            next_update,
            crl_number,
            is_delta,
            has_freshest,
            freshest_urls,
            delta_base,
            idp,
            revoked,
        ) = parsed;
        Ok(Self {
            issuer_der,
            issuer,
            this_update,
            next_update,
            crl_number,
            is_delta,
            has_freshest,
            freshest_urls,
            delta_base,
            idp,
            revoked,
            der,
            verified: Mutex::new(Vec::new()),
        })
    }

    /// Number of revoked entries.
    pub fn entries(&self) -> usize {
        self.revoked.len()
    }

    /// Size of the DER in bytes.
    pub fn size(&self) -> usize {
        self.der.len()
    }

    /// Approximate memory held (DER plus the serial set), for the cache's cap.
    pub fn memory(&self) -> usize {
        self.der.len() + self.revoked.memory() + 256
    }

    /// The entry of `serial` (lowercase hex without leading zeros), if revoked.
    pub fn lookup(&self, serial: &str) -> Option<RevokedEntry> {
        self.revoked.get(serial)
    }

    /// Whether the CRL's signature verifies with `spki_der` (a full SubjectPublicKeyInfo DER).
    /// Memoized per key: the DER is parsed again only for a key not tried before.
    pub fn signed_by(&self, spki_der: &[u8]) -> bool {
        let digest = ring::digest::digest(&ring::digest::SHA256, spki_der);
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        let mut memo = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, ok)) = memo.iter().find(|(k, _)| *k == key) {
            return *ok;
        }
        let ok = match (
            CertificateRevocationList::from_der(&self.der),
            SubjectPublicKeyInfo::from_der(spki_der),
        ) {
            (Ok((_, crl)), Ok((_, spki))) => crl.verify_signature(&spki).is_ok(),
            _ => false,
        };
        if memo.len() >= 8 {
            memo.remove(0);
        }
        memo.push((key, ok));
        ok
    }
}

/// A CRL's revoked serials, compact: a serial of up to 20 octets (RFC 5280's maximum; leading
/// zero octets stripped) is a fixed-size key left-padded with zeros, kept sorted for a binary
/// search (40 bytes per entry instead of a hash map of hex strings, ~90); a longer, non-
/// conforming serial goes to a small map by its hex form.
#[derive(Debug, Default)]
struct Serials {
    sorted: Vec<([u8; SERIAL_KEY], RevokedEntry)>,
    long: HashMap<String, RevokedEntry>,
}

const SERIAL_KEY: usize = 20;

fn serial_key(raw: &[u8]) -> Option<[u8; SERIAL_KEY]> {
    let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
    let v = &raw[start..];
    (v.len() <= SERIAL_KEY).then(|| {
        let mut k = [0u8; SERIAL_KEY];
        k[SERIAL_KEY - v.len()..].copy_from_slice(v);
        k
    })
}

impl Serials {
    /// From (raw serial, entry) pairs; a serial listed twice keeps its last entry.
    fn new<'a>(entries: impl Iterator<Item = (&'a [u8], RevokedEntry)>) -> Self {
        let mut out = Serials::default();
        for (raw, e) in entries {
            match serial_key(raw) {
                Some(k) => out.sorted.push((k, e)),
                None => {
                    out.long.insert(serial_hex(raw), e);
                }
            }
        }
        // Stable sort, then keep the last of equal keys.
        out.sorted.sort_by_key(|a| a.0);
        let mut deduped: Vec<([u8; SERIAL_KEY], RevokedEntry)> =
            Vec::with_capacity(out.sorted.len());
        for item in out.sorted.drain(..) {
            match deduped.last_mut() {
                Some(last) if last.0 == item.0 => *last = item,
                _ => deduped.push(item),
            }
        }
        deduped.shrink_to_fit();
        out.sorted = deduped;
        out
    }

    fn len(&self) -> usize {
        self.sorted.len() + self.long.len()
    }

    fn memory(&self) -> usize {
        self.sorted.capacity() * std::mem::size_of::<([u8; SERIAL_KEY], RevokedEntry)>()
            + self.long.len() * 96
    }

    /// The entry of `serial` (hex, as [`serial_hex`] writes it).
    fn get(&self, serial: &str) -> Option<RevokedEntry> {
        let padded;
        let hex_str = if serial.len() % 2 == 1 {
            padded = format!("0{serial}");
            padded.as_str()
        } else {
            serial
        };
        let raw = hex::decode(hex_str).ok()?;
        match serial_key(&raw) {
            Some(k) => self
                .sorted
                .binary_search_by(|(key, _)| key.cmp(&k))
                .ok()
                .map(|i| self.sorted[i].1),
            None => self.long.get(&serial_hex(&raw)).copied(),
        }
    }
}

/// The URIs (`[6] IA5String`) anywhere in a DistributionPoints value, at most 4, depth-bounded.
fn collect_uris(value: &[u8], depth: usize, out: &mut Vec<String>) {
    if depth > 6 {
        return;
    }
    let mut d = super::ocsp::Der(value);
    while !d.is_empty() && out.len() < 4 {
        let Ok((tag, body, _)) = d.next() else { return };
        if tag == 0x86 {
            if let Ok(u) = std::str::from_utf8(body) {
                out.push(crate::text::bounded(u, 256));
            }
        } else if tag & 0x20 != 0 {
            collect_uris(body, depth + 1, out);
        }
    }
}

/// Compare two CRL numbers in `crl_number`'s form (lowercase hex without leading zeros).
pub fn cmp_crl_numbers(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Serial bytes as lowercase hex without leading zeros (`CertFacts::serial`'s form).
pub(crate) fn serial_hex(raw: &[u8]) -> String {
    let mut s = raw;
    while s.len() > 1 && s[0] == 0 {
        s = &s[1..];
    }
    hex::encode(s)
}

/// The contents of a DER TLV (the Name without its SEQUENCE header).
pub(crate) fn name_contents(tlv: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = tlv.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    (rest.len() == len).then_some(rest)
}

fn pem_to_der(pem: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN X509 CRL-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn serials_are_found_by_their_hex_form_whatever_their_length_and_the_last_entry_wins() {
        let e = |t| RevokedEntry {
            revoked_at: t,
            reason: None,
        };
        let long = [0x7fu8; 21];
        let s = Serials::new(
            [
                (&[0x00u8, 0x8f][..], e(1)),
                (&[0x0f][..], e(2)),
                (&[0x01, 0x00, 0x00][..], e(3)),
                (&long[..], e(4)),
                (&[0x0f][..], e(5)),
            ]
            .into_iter(),
        );
        assert_eq!(s.len(), 4);
        assert_eq!(s.get("8f").map(|x| x.revoked_at), Some(1));
        assert_eq!(
            s.get("0f").map(|x| x.revoked_at),
            Some(5),
            "the last entry wins"
        );
        assert_eq!(s.get("f").map(|x| x.revoked_at), Some(5));
        assert_eq!(s.get("010000").map(|x| x.revoked_at), Some(3));
        assert_eq!(s.get(&hex::encode(long)).map(|x| x.revoked_at), Some(4));
        assert!(s.get("0100").is_none());
        assert!(s.get("zz").is_none());
    }

    use super::*;

    #[test]
    fn crl_numbers_compare_as_numbers() {
        use std::cmp::Ordering::*;
        assert_eq!(cmp_crl_numbers("1000", "0fff"), Greater);
        assert_eq!(cmp_crl_numbers("0100", "100"), Equal);
        assert_eq!(cmp_crl_numbers("ff", "100"), Less);
    }

    #[test]
    fn freshest_crl_uris_are_collected_and_bounded() {
        // SEQUENCE { DistributionPoint { [0] { [0] { [6] "http://a/d.crl" } } } }
        let uri = b"http://a/d.crl";
        let mut v = vec![0x86, uri.len() as u8];
        v.extend_from_slice(uri);
        for tag in [0xa0, 0xa0, 0x30, 0x30] {
            let mut w = vec![tag, v.len() as u8];
            w.extend(v);
            v = w;
        }
        let mut out = Vec::new();
        collect_uris(&v, 0, &mut out);
        assert_eq!(out, ["http://a/d.crl"]);
        collect_uris(b"\x30\x05garbage", 0, &mut out);
        assert_eq!(out.len(), 1);
    }
}
