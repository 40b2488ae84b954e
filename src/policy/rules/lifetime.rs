//! Rules about time: the leaf's validity period, the expiry windows, the maximum validity
//! period and the presented intermediates' validity.

use crate::chain::{fmt_time, CertFacts, ChainReport};
use crate::policy::spec::{BasicRule, ExpiryRule, IntermediateExpiryRule, MaxValidityRule};

use super::{days, label, Ctx, Finding, DAY};

/// `validity`: the leaf is within its validity period now.
pub(super) fn validity(c: &Ctx<'_>, _: &BasicRule) -> Finding {
    let (leaf, now) = (c.leaf, c.now);
    if now < leaf.not_before {
        Finding::Violation(format!(
            "leaf {} is not yet valid (notBefore {})",
            label(leaf),
            fmt_time(leaf.not_before)
        ))
    } else if now > leaf.not_after {
        Finding::Violation(format!(
            "leaf {} expired at {}",
            label(leaf),
            fmt_time(leaf.not_after)
        ))
    } else {
        Finding::Pass(format!(
            "leaf {} valid {} .. {}",
            label(leaf),
            fmt_time(leaf.not_before),
            fmt_time(leaf.not_after)
        ))
    }
}

/// The notAfter the expiry windows apply to, and the certificate it belongs to.
fn expiry_basis(report: &ChainReport, leaf: &CertFacts) -> (i64, String) {
    match report.best_path_not_after {
        Some(t) => {
            let who = report
                .certs
                .iter()
                .find(|x| x.not_after == t)
                .or(report.anchor.as_ref().filter(|a| a.not_after == t))
                .map(label)
                .unwrap_or_else(|| "the verified path".into());
            (t, who)
        }
        None => (leaf.not_after, label(leaf)),
    }
}

/// `expiry`: the leaf (or the earliest certificate on the verified path) is outside the
/// warning and critical windows.
pub(super) fn expiry(c: &Ctx<'_>, r: &ExpiryRule) -> Finding {
    let warn = i64::from(r.warn_days.unwrap_or(30)) * DAY;
    let crit = match r.critical_hours {
        Some(h) => i64::from(h) * 3600,
        None => i64::from(r.critical_days.unwrap_or(7)) * DAY,
    };
    let (t, who) = expiry_basis(c.report, c.leaf);
    let left = t - c.now;
    if left <= 0 {
        Finding::Violation(format!("{who} expired at {}", fmt_time(t)))
    } else if c.now + crit > t {
        Finding::Violation(format!(
            "{who} expires in {} at {} (critical window {})",
            days(left),
            fmt_time(t),
            days(crit)
        ))
    } else if c.now + warn > t {
        Finding::Advisory(format!(
            "{who} expires in {} at {} (warning window {})",
            days(left),
            fmt_time(t),
            days(warn)
        ))
    } else {
        Finding::Pass(format!(
            "{who} expires in {} at {}",
            days(left),
            fmt_time(t)
        ))
    }
}

/// `max_validity`: the leaf's validity period is not longer than `max_days`.
pub(super) fn max_validity(c: &Ctx<'_>, r: &MaxValidityRule) -> Finding {
    let leaf = c.leaf;
    let max = i64::from(r.max_days.unwrap_or(398));
    let span = leaf.not_after - leaf.not_before;
    if span > max * DAY {
        Finding::Violation(format!(
            "leaf {} is valid for {} (> {max} days)",
            label(leaf),
            days(span)
        ))
    } else {
        Finding::Pass(format!("validity period {} <= {max} days", days(span)))
    }
}

/// `intermediate_expiry`: every presented intermediate is valid now and not within
/// `warn_days` of its notAfter.
pub(super) fn intermediate_expiry(c: &Ctx<'_>, r: &IntermediateExpiryRule) -> Finding {
    let (report, now) = (c.report, c.now);
    let warn = i64::from(r.warn_days.unwrap_or(30)) * DAY;
    let mut bad = Vec::new();
    let mut soon = Vec::new();
    for x in report.certs.iter().skip(1) {
        if now > x.not_after {
            bad.push(format!("{} expired at {}", label(x), fmt_time(x.not_after)));
        } else if now < x.not_before {
            bad.push(format!(
                "{} not valid before {}",
                label(x),
                fmt_time(x.not_before)
            ));
        } else if now + warn > x.not_after {
            soon.push(format!("{} expires at {}", label(x), fmt_time(x.not_after)));
        }
    }
    if !bad.is_empty() {
        bad.extend(soon);
        Finding::Violation(bad.join("; "))
    } else if !soon.is_empty() {
        Finding::Advisory(soon.join("; "))
    } else if report.certs.len() <= 1 {
        Finding::NotApplicable("no intermediate presented".into())
    } else {
        Finding::Pass("presented intermediates valid".into())
    }
}
