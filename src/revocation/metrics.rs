//! Per-URL CRL families, read from the process-wide cache at scrape time: the CDPs are
//! targets of their own, shared by every endpoint whose certificates name them (one series per
//! URL, however many endpoints), and the same for OCSP responders (one series per responder
//! URL). Registered in the daemon's registry as a collector.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::MetricType;

use super::cache::{self, UrlState};

/// (name without prefix, help) of the per-URL families.
pub const CRL_FAMILIES: [(&str, &str); 7] = [
    ("crl_fetch_success", "1 if the last fetch of this CRL URL gave a usable CRL (200, or 304 to a conditional GET), else 0."),
    ("crl_fetch_failure", "1 for the bounded reason the last fetch of this CRL URL failed (dns, connect, tls, timeout, http_status, redirect, too_large, bad_der, bad_url, blocked); absent while it succeeds."),
    ("crl_this_update_timestamp_seconds", "thisUpdate of the CRL held for this URL (the last good copy), Unix time."),
    ("crl_next_update_timestamp_seconds", "nextUpdate of the CRL held for this URL (the last good copy), Unix time; absent when the CRL has none."),
    ("crl_entries", "Revoked entries in the CRL held for this URL."),
    ("crl_size_bytes", "Size in bytes of the CRL held for this URL."),
    ("crl_last_fetch_timestamp_seconds", "Unix time of the last fetch attempt of this CRL URL."),
];

/// (name without prefix, help) of the per-responder OCSP families (encoded by the same
/// collector: one registration covers both).
pub const OCSP_FAMILIES: [(&str, &str); 4] = [
    ("ocsp_fetch_success", "1 if the last request to this OCSP responder got an HTTP 200 answer, else 0 (over the certificates asked)."),
    ("ocsp_fetch_failure", "1 for the bounded reason the last failed request to this OCSP responder failed (dns, connect, tls, timeout, http_status, redirect, too_large, bad_url, blocked); absent while it succeeds."),
    ("ocsp_next_update_timestamp_seconds", "Soonest nextUpdate among the responses cached from this OCSP responder, Unix time; absent when none announces one."),
    ("ocsp_last_fetch_timestamp_seconds", "Unix time of the last request to this OCSP responder."),
];

/// One responder's row: (url label, success, failure reason, soonest nextUpdate, last attempt).
type ResponderRow = (String, bool, Option<&'static str>, Option<i64>, f64);

/// Per responder, from the OCSP cache's entries (one per certificate asked): the latest attempt
/// decides success/failure.
fn responder_rows() -> Vec<ResponderRow> {
    let mut rows: Vec<ResponderRow> = Vec::new();
    for e in super::ocsp_cache::global().snapshot() {
        let url = url_label(&e.responder);
        let next = e.body.as_ref().and(e.next_update);
        match rows.last_mut().filter(|r| r.0 == url) {
            Some(r) => {
                if e.attempted_at >= r.4 {
                    r.1 = e.last_error.is_none();
                    r.2 = e.last_error.map(|x| x.as_str());
                    r.4 = e.attempted_at;
                }
                r.3 = match (r.3, next) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            None => rows.push((
                url,
                e.last_error.is_none(),
                e.last_error.map(|x| x.as_str()),
                next,
                e.attempted_at,
            )),
        }
    }
    rows
}

fn encode_ocsp(encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let rows = responder_rows();
    if rows.is_empty() {
        return Ok(());
    }
    for (f, (name, help)) in OCSP_FAMILIES.iter().enumerate() {
        let samples: Vec<(&str, Option<&str>, f64)> = rows
            .iter()
            .filter_map(|(url, ok, reason, next, at)| {
                let v = match f {
                    0 => Some((None, if *ok { 1.0 } else { 0.0 })),
                    1 => reason.map(|r| (Some(r), 1.0)),
                    2 => next.map(|n| (None, n as f64)),
                    _ => Some((None, *at)),
                };
                v.map(|(r, v)| (url.as_str(), r, v))
            })
            .collect();
        if samples.is_empty() {
            continue;
        }
        let mut me = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (url, reason, v) in samples {
            let pairs: Vec<(&str, &str)> = match reason {
                Some(r) => vec![("url", url), ("reason", r)],
                None => vec![("url", url)],
            };
            encode_value(me.encode_family(&Labels(&pairs))?, v)?;
        }
    }
    Ok(())
}

fn encode_value(
    mut fe: prometheus_client::encoding::MetricEncoder<'_>,
    v: f64,
) -> Result<(), std::fmt::Error> {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        fe.encode_gauge(&(v as i64))
    } else {
        fe.encode_gauge(&v)
    }
}

struct Labels<'a>(&'a [(&'a str, &'a str)]);

impl EncodeLabelSet for Labels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        for (k, v) in self.0 {
            prometheus_client::encoding::EncodeLabel::encode(&(*k, *v), encoder.encode_label())?;
        }
        Ok(())
    }
}

/// The collector of [`CRL_FAMILIES`] over [`cache::global`].
#[derive(Debug, Default)]
pub struct CrlCollector;

/// A URL as a label value: at most 256 bytes, control characters replaced (prometheus-client
/// escapes quotes, backslashes and newlines itself).
fn url_label(url: &str) -> String {
    crate::text::bounded(url, 256)
}

fn value(f: usize, st: &UrlState) -> Option<(Option<&'static str>, f64)> {
    let crl = st.crl.as_ref();
    match f {
        0 => Some((None, if st.last_error.is_none() { 1.0 } else { 0.0 })),
        1 => st.last_error.map(|r| (Some(r.as_str()), 1.0)),
        2 => crl.map(|c| (None, c.this_update as f64)),
        3 => crl.and_then(|c| c.next_update).map(|n| (None, n as f64)),
        4 => crl.map(|c| (None, c.entries() as f64)),
        5 => crl.map(|c| (None, c.size() as f64)),
        6 => Some((None, st.attempted_at)),
        _ => None,
    }
}

impl Collector for CrlCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_ocsp(&mut encoder)?;
        let snapshot = cache::global().snapshot();
        if snapshot.is_empty() {
            return Ok(());
        }
        let urls: Vec<String> = snapshot.iter().map(|(u, _)| url_label(u)).collect();
        for (f, (name, help)) in CRL_FAMILIES.iter().enumerate() {
            let rows: Vec<(&str, Option<&'static str>, f64)> = snapshot
                .iter()
                .zip(&urls)
                .filter_map(|((_, st), url)| value(f, st).map(|(r, v)| (url.as_str(), r, v)))
                .collect();
            if rows.is_empty() {
                continue;
            }
            let mut me = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (url, reason, v) in rows {
                let pairs: Vec<(&str, &str)> = match reason {
                    Some(r) => vec![("url", url), ("reason", r)],
                    None => vec![("url", url)],
                };
                encode_value(me.encode_family(&Labels(&pairs))?, v)?;
            }
        }
        Ok(())
    }
}
