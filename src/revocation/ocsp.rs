//! OCSP responses (RFC 6960), stapled or fetched: parsed with a bounded DER reader of our own
//! over the few structures OCSP adds, with x509-parser (already in the tree) for the embedded
//! certificates, algorithm identifiers and the ring-backed signature check (the choice is
//! recorded in docs/dependencies.md).
//!
//! [`check`] is pure: the response bytes, the certificate's serial, its issuer (name and
//! SubjectPublicKeyInfo) and `now` give an [`OcspAnswer`] or a bounded [`Reason`]. A response
//! counts only when it is signed by the issuer's key or by a delegated responder certificate
//! carrying id-kp-OCSPSigning issued by that issuer, and holds a SingleResponse whose CertID
//! (issuer name hash, issuer key hash, serial) matches the certificate. Malformed,
//! unauthorized, mismatched and out-of-date responses are typed reasons, never "good".

use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

use super::Reason;

/// Largest OCSP response judged (stapled or fetched); AD CS responses are 1–4 KiB.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// SingleResponses looked at in one response, embedded certificates tried.
const MAX_SINGLE_RESPONSES: usize = 64;
const MAX_CERTS: usize = 8;
/// Clock skew tolerated on thisUpdate (and on the responder certificate's validity), seconds.
pub const SKEW_SECS: i64 = 300;

/// DER of the OID id-pkix-ocsp-basic (1.3.6.1.5.5.7.48.1.1), contents only.
const OID_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// Hash algorithm OIDs (contents) a CertID may use.
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const OID_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

/// Status a responder gave for the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CertStatus {
    Good,
    Revoked,
    /// The responder does not know the certificate.
    Unknown,
}

impl CertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Good => "good",
            CertStatus::Revoked => "revoked",
            CertStatus::Unknown => "unknown",
        }
    }
}

/// A verified answer about one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OcspAnswer {
    pub status: CertStatus,
    /// Revocation time (Unix seconds) and CRL reason code when revoked.
    pub revoked_at: Option<i64>,
    pub reason: Option<u8>,
    pub this_update: i64,
    pub next_update: Option<i64>,
    pub produced_at: i64,
    /// Signed by a delegated responder certificate rather than the issuer's own key.
    pub delegated: bool,
}

/// The issuer a response must speak for.
#[derive(Debug, Clone, Copy)]
pub struct Issuer<'a> {
    /// Contents of the issuer Name (without the SEQUENCE header), as `CertFacts::issuer_der`.
    pub name_contents: &'a [u8],
    /// The issuer's SubjectPublicKeyInfo DER.
    pub spki_der: &'a [u8],
}

/// Judge an OCSP response for the certificate `serial` (lowercase hex without leading zeros,
/// `CertFacts::serial`) of `issuer` at `now` (Unix seconds). Pure.
pub fn check(der: &[u8], serial: &str, issuer: Issuer<'_>, now: i64) -> Result<OcspAnswer, Reason> {
    if der.len() > MAX_RESPONSE_BYTES {
        return Err(Reason::TooLarge);
    }
    let basic = basic_response(der)?;
    let (_, issuer_spki) =
        SubjectPublicKeyInfo::from_der(issuer.spki_der).map_err(|_| Reason::BadSignature)?;
    let issuer_name = der_wrap(0x30, issuer.name_contents);
    let issuer_key_bits = issuer_spki.subject_public_key.data.as_ref();

    // Who signed it: the issuer itself, or a delegated responder it certified.
    let tbs = parse_tbs(basic.tbs_body)?;
    let names_issuer = match tbs.responder {
        Responder::ByName(name) => name == issuer_name.as_slice(),
        Responder::ByKey(hash) => hash == sha1(issuer_key_bits).as_slice(),
    };
    let delegated = if names_issuer {
        if !verify(&issuer_spki, &basic)? {
            return Err(Reason::BadSignature);
        }
        false
    } else {
        authorize_delegate(
            &basic,
            &tbs.responder,
            &issuer_spki,
            issuer.name_contents,
            now,
        )?;
        true
    };

    // The SingleResponse about this certificate.
    let mut single = None;
    let mut rest = Der(tbs.responses);
    let mut seen = 0;
    while !rest.is_empty() && seen < MAX_SINGLE_RESPONSES {
        seen += 1;
        let body = rest.expect(0x30)?;
        let s = parse_single(body)?;
        if s.matches(serial, &issuer_name, issuer_key_bits)? {
            single = Some(s);
            break;
        }
    }
    let s = single.ok_or(Reason::NoMatchingResponse)?;
    if s.this_update > now + SKEW_SECS {
        return Err(Reason::NotYetValid);
    }
    if s.next_update.is_some_and(|n| n < now) {
        return Err(Reason::Expired);
    }
    Ok(OcspAnswer {
        status: s.status,
        revoked_at: s.revoked_at,
        reason: s.reason,
        this_update: s.this_update,
        next_update: s.next_update,
        produced_at: tbs.produced_at,
        delegated,
    })
}

/// The nextUpdate a response announces for `serial` without verifying anything (scheduling a
/// refetch only; [`check`] judges it).
pub fn announced_next_update(der: &[u8]) -> Option<i64> {
    let basic = basic_response(der).ok()?;
    let tbs = parse_tbs(basic.tbs_body).ok()?;
    let mut rest = Der(tbs.responses);
    let body = rest.expect(0x30).ok()?;
    parse_single(body).ok()?.next_update
}

/// A DER OCSPRequest for one certificate (SHA-1 CertID, what AD CS and Windows use; no
/// nonce, so that responses can be cached as AD CS's Online Responder expects).
pub fn request(serial: &str, issuer: Issuer<'_>) -> Option<Vec<u8>> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(issuer.spki_der).ok()?;
    let name_hash = sha1(&der_wrap(0x30, issuer.name_contents));
    let key_hash = sha1(spki.subject_public_key.data.as_ref());
    let mut serial_bytes = hex::decode(if serial.len() % 2 == 1 {
        format!("0{serial}")
    } else {
        serial.to_string()
    })
    .ok()?;
    if serial_bytes.first().is_some_and(|b| b & 0x80 != 0) {
        serial_bytes.insert(0, 0);
    }
    let alg = der_wrap(0x30, &[der_wrap(0x06, OID_SHA1), vec![0x05, 0x00]].concat());
    let cert_id = der_wrap(
        0x30,
        &[
            alg,
            der_wrap(0x04, &name_hash),
            der_wrap(0x04, &key_hash),
            der_wrap(0x02, &serial_bytes),
        ]
        .concat(),
    );
    let request = der_wrap(0x30, &cert_id);
    let request_list = der_wrap(0x30, &request);
    let tbs_request = der_wrap(0x30, &request_list);
    Some(der_wrap(0x30, &tbs_request))
}

/// The GET URL of an OCSP request (RFC 6960 appendix A.1: base64, URL-encoded, appended).
pub fn get_url(responder: &str, request: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(request);
    let mut enc = String::with_capacity(b64.len() + 8);
    for c in b64.chars() {
        match c {
            '+' => enc.push_str("%2B"),
            '/' => enc.push_str("%2F"),
            '=' => enc.push_str("%3D"),
            c => enc.push(c),
        }
    }
    let sep = if responder.ends_with('/') { "" } else { "/" };
    format!("{responder}{sep}{enc}")
}

struct Basic<'a> {
    /// The whole tbsResponseData TLV (what is signed) and its contents.
    tbs_raw: &'a [u8],
    tbs_body: &'a [u8],
    sig_alg_raw: &'a [u8],
    sig_raw: &'a [u8],
    certs: Vec<&'a [u8]>,
}

fn basic_response(der: &[u8]) -> Result<Basic<'_>, Reason> {
    let mut top = Der(der);
    let resp = top.expect(0x30)?;
    if !top.is_empty() {
        return Err(Reason::BadDer);
    }
    let mut resp = Der(resp);
    let status = resp.expect(0x0a)?;
    if status != [0] {
        // malformedRequest, internalError, tryLater, sigRequired, unauthorized.
        return Err(Reason::ResponderStatus);
    }
    let bytes = resp.expect(0xa0)?;
    let mut bytes = Der(Der(bytes).expect_only(0x30)?);
    if bytes.expect(0x06)? != OID_OCSP_BASIC {
        return Err(Reason::BadDer);
    }
    let basic = bytes.expect(0x04)?;
    let mut basic = Der(Der(basic).expect_only(0x30)?);
    let (tag, tbs_body, tbs_raw) = basic.next()?;
    if tag != 0x30 {
        return Err(Reason::BadDer);
    }
    let (tag, _, sig_alg_raw) = basic.next()?;
    if tag != 0x30 {
        return Err(Reason::BadDer);
    }
    let (tag, _, sig_raw) = basic.next()?;
    if tag != 0x03 {
        return Err(Reason::BadDer);
    }
    let mut certs = Vec::new();
    if let Some(list) = basic.optional(0xa0)? {
        let mut list = Der(Der(list).expect_only(0x30)?);
        while !list.is_empty() && certs.len() < MAX_CERTS {
            let (tag, _, raw) = list.next()?;
            if tag != 0x30 {
                return Err(Reason::BadDer);
            }
            certs.push(raw);
        }
    }
    Ok(Basic {
        tbs_raw,
        tbs_body,
        sig_alg_raw,
        sig_raw,
        certs,
    })
}

enum Responder<'a> {
    /// The full Name TLV.
    ByName(&'a [u8]),
    /// SHA-1 of the responder's public key bits.
    ByKey(&'a [u8]),
}

struct Tbs<'a> {
    responder: Responder<'a>,
    produced_at: i64,
    /// Contents of the SEQUENCE OF SingleResponse.
    responses: &'a [u8],
}

fn parse_tbs(body: &[u8]) -> Result<Tbs<'_>, Reason> {
    let mut d = Der(body);
    if let Some(v) = d.optional(0xa0)? {
        // Only v1 (INTEGER 0) exists.
        if Der(v).expect_only(0x02)? != [0] {
            return Err(Reason::BadDer);
        }
    }
    let responder = match d.next()? {
        (0xa1, name, _) => {
            let (tag, _, raw) = Der(name).next_only()?;
            if tag != 0x30 {
                return Err(Reason::BadDer);
            }
            Responder::ByName(raw)
        }
        (0xa2, key, _) => Responder::ByKey(Der(key).expect_only(0x04)?),
        _ => return Err(Reason::BadDer),
    };
    let produced_at = generalized_time(d.expect(0x18)?)?;
    let responses = d.expect(0x30)?;
    Ok(Tbs {
        responder,
        produced_at,
        responses,
    })
}

struct Single<'a> {
    hash_oid: &'a [u8],
    name_hash: &'a [u8],
    key_hash: &'a [u8],
    serial: &'a [u8],
    status: CertStatus,
    revoked_at: Option<i64>,
    reason: Option<u8>,
    this_update: i64,
    next_update: Option<i64>,
}

impl Single<'_> {
    fn matches(&self, serial: &str, issuer_name: &[u8], key_bits: &[u8]) -> Result<bool, Reason> {
        if super::crl::serial_hex(self.serial) != serial {
            return Ok(false);
        }
        let alg: &'static ring::digest::Algorithm = match self.hash_oid {
            OID_SHA1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            OID_SHA256 => &ring::digest::SHA256,
            OID_SHA384 => &ring::digest::SHA384,
            OID_SHA512 => &ring::digest::SHA512,
            _ => return Ok(false),
        };
        Ok(
            ring::digest::digest(alg, issuer_name).as_ref() == self.name_hash
                && ring::digest::digest(alg, key_bits).as_ref() == self.key_hash,
        )
    }
}

fn parse_single(body: &[u8]) -> Result<Single<'_>, Reason> {
    let mut d = Der(body);
    let mut id = Der(d.expect(0x30)?);
    let mut alg = Der(id.expect(0x30)?);
    let hash_oid = alg.expect(0x06)?;
    let name_hash = id.expect(0x04)?;
    let key_hash = id.expect(0x04)?;
    let serial = id.expect(0x02)?;
    let (mut revoked_at, mut reason) = (None, None);
    let status = match d.next()? {
        (0x80, _, _) => CertStatus::Good,
        (0xa1, info, _) => {
            let mut info = Der(info);
            revoked_at = Some(generalized_time(info.expect(0x18)?)?);
            if let Some(r) = info.optional(0xa0)? {
                let code = Der(r).expect_only(0x0a)?;
                reason = code.last().copied();
            }
            CertStatus::Revoked
        }
        (0x82, _, _) => CertStatus::Unknown,
        _ => return Err(Reason::BadDer),
    };
    let this_update = generalized_time(d.expect(0x18)?)?;
    let next_update = match d.optional(0xa0)? {
        Some(n) => Some(generalized_time(Der(n).expect_only(0x18)?)?),
        None => None,
    };
    Ok(Single {
        hash_oid,
        name_hash,
        key_hash,
        serial,
        status,
        revoked_at,
        reason,
        this_update,
        next_update,
    })
}

/// The signature of `basic` checked with `spki`. Err for an undecodable algorithm or
/// signature; Ok(false) when it does not verify.
fn verify(spki: &SubjectPublicKeyInfo<'_>, basic: &Basic<'_>) -> Result<bool, Reason> {
    let (_, alg) = AlgorithmIdentifier::from_der(basic.sig_alg_raw).map_err(|_| Reason::BadDer)?;
    let (_, sig) =
        <x509_parser::asn1_rs::BitString as x509_parser::asn1_rs::FromDer>::from_der(basic.sig_raw)
            .map_err(|_| Reason::BadDer)?;
    Ok(x509_parser::verify::verify_signature(spki, &alg, &sig, basic.tbs_raw).is_ok())
}

/// A delegated responder: an embedded certificate named by the responder ID, issued (name and
/// signature) by the issuer, carrying id-kp-OCSPSigning, valid at `now`, whose key signed the
/// response. Anything less is `Unauthorized` (`BadSignature` when it is authorized but its
/// key did not sign).
fn authorize_delegate(
    basic: &Basic<'_>,
    responder: &Responder<'_>,
    issuer_spki: &SubjectPublicKeyInfo<'_>,
    issuer_name_contents: &[u8],
    now: i64,
) -> Result<(), Reason> {
    for raw in &basic.certs {
        let Ok((_, cert)) = X509Certificate::from_der(raw) else {
            continue;
        };
        let named = match responder {
            Responder::ByName(name) => cert.subject().as_raw() == *name,
            Responder::ByKey(hash) => {
                sha1(cert.public_key().subject_public_key.data.as_ref()).as_slice() == *hash
            }
        };
        if !named {
            continue;
        }
        let issued = super::crl::name_contents(cert.issuer().as_raw())
            .is_some_and(|n| n == issuer_name_contents)
            && cert.verify_signature(Some(issuer_spki)).is_ok();
        let ocsp_signing = matches!(cert.extended_key_usage(), Ok(Some(e)) if e.value.ocsp_signing);
        let v = cert.validity();
        let valid = v.not_before.timestamp() <= now + SKEW_SECS && now <= v.not_after.timestamp();
        if !(issued && ocsp_signing && valid) {
            return Err(Reason::Unauthorized);
        }
        return if verify(cert.public_key(), basic)? {
            Ok(())
        } else {
            Err(Reason::BadSignature)
        };
    }
    Err(Reason::Unauthorized)
}

fn sha1(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

/// A DER TLV with a short-form tag (also re-wraps a trust anchor's SPKI contents in `mod.rs`).
pub(crate) fn der_wrap(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(contents);
    out
}

/// GeneralizedTime `YYYYMMDDHHMMSS[.fff]Z` as Unix seconds.
fn generalized_time(b: &[u8]) -> Result<i64, Reason> {
    let s = std::str::from_utf8(b).map_err(|_| Reason::BadDer)?;
    let s = s.strip_suffix('Z').ok_or(Reason::BadDer)?;
    let whole = s.split('.').next().unwrap_or("");
    if whole.len() != 14 || !whole.bytes().all(|c| c.is_ascii_digit()) {
        return Err(Reason::BadDer);
    }
    let n = |r: std::ops::Range<usize>| whole[r].parse::<i64>().unwrap_or(0);
    let (y, mo, d, h, mi, se) = (n(0..4), n(4..6), n(6..8), n(8..10), n(10..12), n(12..14));
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(Reason::BadDer);
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// A bounded DER reader: short-form tags, definite lengths of at most 4 bytes, every length
/// checked against the input.
pub(crate) struct Der<'a>(pub(crate) &'a [u8]);

impl<'a> Der<'a> {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (tag, contents, whole TLV).
    pub(crate) fn next(&mut self) -> Result<(u8, &'a [u8], &'a [u8]), Reason> {
        let input = self.0;
        let (&tag, rest) = input.split_first().ok_or(Reason::BadDer)?;
        if tag & 0x1f == 0x1f {
            return Err(Reason::BadDer);
        }
        let (&first, rest) = rest.split_first().ok_or(Reason::BadDer)?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return Err(Reason::BadDer);
            }
            let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err(Reason::BadDer);
        }
        let header = input.len() - rest.len();
        self.0 = &rest[len..];
        Ok((tag, &rest[..len], &input[..header + len]))
    }

    fn expect(&mut self, tag: u8) -> Result<&'a [u8], Reason> {
        match self.next()? {
            (t, body, _) if t == tag => Ok(body),
            _ => Err(Reason::BadDer),
        }
    }

    fn optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, Reason> {
        if self.0.first() == Some(&tag) {
            self.expect(tag).map(Some)
        } else {
            Ok(None)
        }
    }

    fn next_only(mut self) -> Result<(u8, &'a [u8], &'a [u8]), Reason> {
        let r = self.next()?;
        if !self.is_empty() {
            return Err(Reason::BadDer);
        }
        Ok(r)
    }

    fn expect_only(mut self, tag: u8) -> Result<&'a [u8], Reason> {
        let r = self.expect(tag)?;
        if !self.is_empty() {
            return Err(Reason::BadDer);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_times_are_unix_seconds() {
        assert_eq!(generalized_time(b"19700101000000Z"), Ok(0));
        assert_eq!(generalized_time(b"20260101120000Z"), Ok(1_767_268_800));
        assert_eq!(generalized_time(b"20260101120000.123Z"), Ok(1_767_268_800));
        assert_eq!(generalized_time(b"2026010112Z"), Err(Reason::BadDer));
        assert_eq!(generalized_time(b"20261301000000Z"), Err(Reason::BadDer));
    }

    #[test]
    fn garbage_and_truncations_are_bad_der_never_a_panic() {
        let issuer = Issuer {
            name_contents: &[],
            spki_der: &[],
        };
        for bytes in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x03\x0a\x01\x00",
            b"garbage bytes, not DER",
            b"\x1f\x01\x00",
        ] {
            assert!(check(bytes, "1", issuer, 0).is_err());
        }
        // tryLater (3) is the responder's own status.
        assert_eq!(
            check(b"\x30\x03\x0a\x01\x03", "1", issuer, 0),
            Err(Reason::ResponderStatus)
        );
        assert_eq!(
            check(&vec![0x30; MAX_RESPONSE_BYTES + 1], "1", issuer, 0),
            Err(Reason::TooLarge)
        );
    }

    #[test]
    fn requests_carry_a_sha1_cert_id_and_urls_are_encoded() {
        assert_eq!(der_wrap(0x04, &[1, 2]), vec![4, 2, 1, 2]);
        assert_eq!(
            get_url("http://ocsp.test/ocsp", &[0xfb, 0xff]),
            "http://ocsp.test/ocsp/%2B%2F8%3D"
        );
    }
}
