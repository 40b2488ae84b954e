//! DNS name comparison and variable expansion for name patterns.

use super::spec::{VarValue, Vars};
use super::EndpointContext;

/// Lower-case, without a trailing dot.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// True when `entry` (a SAN dNSName, possibly `*.rest`) matches `name` with RFC 6125 semantics:
/// the wildcard is the whole left-most label, matches exactly one non-empty label, and the
/// rest has at least two labels. Partial-label wildcards (`f*.example.com`) never match.
pub fn dns_matches(entry: &str, name: &str) -> bool {
    let entry = normalize(entry);
    let name = normalize(name);
    if let Some(rest) = entry.strip_prefix("*.") {
        if rest.contains('*') || !rest.contains('.') {
            return false;
        }
        match name.split_once('.') {
            Some((first, tail)) => !first.is_empty() && !first.contains('*') && tail == rest,
            None => false,
        }
    } else if entry.contains('*') {
        false
    } else {
        entry == name
    }
}

/// Whether a SAN entry is a wildcard.
pub fn is_wildcard(entry: &str) -> bool {
    entry.contains('*')
}

/// How a required name is covered by a SAN list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    Explicit,
    Wildcard(String),
    Missing,
}

/// Find how `name` is covered by `sans`: explicitly, only by a wildcard, or not at all.
pub fn coverage(sans: &[String], name: &str) -> Coverage {
    let n = normalize(name);
    if sans.iter().any(|s| !is_wildcard(s) && normalize(s) == n) {
        return Coverage::Explicit;
    }
    match sans.iter().find(|s| is_wildcard(s) && dns_matches(s, name)) {
        Some(w) => Coverage::Wildcard(w.clone()),
        None => Coverage::Missing,
    }
}

/// Result of looking a variable up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No variable has that name (a configuration error).
    Unknown,
    /// Known but not set.
    Unset,
    Values(Vec<String>),
}

/// Variable names provided by the typed [`Vars`] struct and the endpoint context.
pub const KNOWN_VARS: &[&str] = &[
    "sip_domains",
    "fe_pool",
    "fe_servers",
    "fe_web_internal",
    "fe_web_external",
    "director_pool",
    "director_web_external",
    "mediation_pool",
    "edge_access_fqdn",
    "edge_webconf_fqdn",
    "edge_av_fqdn",
    "edge_internal_fqdn",
    "xmpp_domains",
    "meet_urls",
    "dialin_urls",
    "admin_url",
    "owa_fqdn",
    "simple_urls",
    "pool",
    "endpoint.host",
    "endpoint.sni",
    "endpoint.name",
];

fn one(v: &Option<String>) -> Lookup {
    match v {
        Some(s) if !s.is_empty() => Lookup::Values(vec![s.clone()]),
        _ => Lookup::Unset,
    }
}

fn many(v: &[String]) -> Lookup {
    if v.is_empty() {
        Lookup::Unset
    } else {
        Lookup::Values(v.to_vec())
    }
}

/// Look a variable up. `ctx` None means "validation time": endpoint variables are known but
/// unset.
pub fn lookup(vars: &Vars, ctx: Option<&EndpointContext>, name: &str) -> Lookup {
    match name {
        "sip_domains" => many(&vars.sip_domains),
        "fe_pool" => one(&vars.fe_pool),
        "fe_servers" => many(&vars.fe_servers),
        "fe_web_internal" => one(&vars.fe_web_internal),
        "fe_web_external" => one(&vars.fe_web_external),
        "director_pool" => one(&vars.director_pool),
        "director_web_external" => one(&vars.director_web_external),
        "mediation_pool" => one(&vars.mediation_pool),
        "edge_access_fqdn" => one(&vars.edge_access_fqdn),
        "edge_webconf_fqdn" => one(&vars.edge_webconf_fqdn),
        "edge_av_fqdn" => one(&vars.edge_av_fqdn),
        "edge_internal_fqdn" => one(&vars.edge_internal_fqdn),
        "xmpp_domains" => many(&vars.xmpp_domains),
        "meet_urls" => many(&vars.meet_urls),
        "dialin_urls" => many(&vars.dialin_urls),
        "admin_url" => one(&vars.admin_url),
        "owa_fqdn" => one(&vars.owa_fqdn),
        "simple_urls" => {
            let mut all = vars.meet_urls.clone();
            all.extend(vars.dialin_urls.iter().cloned());
            all.extend(vars.admin_url.iter().cloned());
            many(&all)
        }
        "pool" => one(&ctx.and_then(|c| c.pool.clone())),
        "endpoint.host" => one(&ctx.map(|c| c.host.clone())),
        "endpoint.sni" | "endpoint.name" => one(&ctx.and_then(|c| c.name.clone())),
        other => match vars.extra.get(other) {
            Some(VarValue::One(s)) => one(&Some(s.clone())),
            Some(VarValue::Many(v)) => many(v),
            None => Lookup::Unknown,
        },
    }
}

/// One `${...}` reference inside a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ref {
    name: String,
    /// `[N]`: one element.
    index: Option<usize>,
    optional: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Var(Ref),
}

/// Why a name pattern does not parse, or does not expand for an endpoint; the message quotes
/// the pattern or names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("unterminated \"${{\" in pattern {0:?}")]
    Unterminated(String),
    #[error("bad index in ${{{body}}} in pattern {pattern:?}")]
    BadIndexForm { body: String, pattern: String },
    #[error("bad index [{index}] in pattern {pattern:?} (use [*] or [N])")]
    BadIndex { index: String, pattern: String },
    #[error("empty variable name in pattern {0:?}")]
    EmptyName(String),
    #[error("unknown variable ${{{name}}} in pattern {pattern:?}")]
    UnknownInPattern { name: String, pattern: String },
    #[error("variable ${{{name}}} has no element [{index}]")]
    NoElement { name: String, index: usize },
    #[error("variable ${{{0}}} is not set")]
    Unset(String),
    #[error("unknown variable ${{{0}}}")]
    Unknown(String),
}

fn parse(pattern: &str) -> Result<Vec<Piece>, NameError> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            out.push(Piece::Lit(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| NameError::Unterminated(pattern.to_string()))?;
        let mut body = after[..end].trim();
        let optional = body.ends_with('?');
        if optional {
            body = &body[..body.len() - 1];
        }
        let (name, index) = match body.find('[') {
            Some(i) => {
                let idx = body[i..]
                    .strip_prefix('[')
                    .and_then(|s| s.strip_suffix(']'))
                    .ok_or_else(|| NameError::BadIndexForm {
                        body: body.to_string(),
                        pattern: pattern.to_string(),
                    })?;
                let index = if idx == "*" {
                    None
                } else {
                    Some(idx.parse::<usize>().map_err(|_| NameError::BadIndex {
                        index: idx.to_string(),
                        pattern: pattern.to_string(),
                    })?)
                };
                (&body[..i], index)
            }
            None => (body, None),
        };
        if name.is_empty() {
            return Err(NameError::EmptyName(pattern.to_string()));
        }
        out.push(Piece::Var(Ref {
            name: name.to_string(),
            index,
            optional,
        }));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Lit(rest.to_string()));
    }
    Ok(out)
}

/// Check a pattern at validation time: syntax and variable names.
pub fn validate_pattern(vars: &Vars, pattern: &str) -> Result<(), NameError> {
    for piece in parse(pattern)? {
        if let Piece::Var(r) = piece {
            if lookup(vars, None, &r.name) == Lookup::Unknown {
                return Err(NameError::UnknownInPattern {
                    name: r.name,
                    pattern: pattern.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Expand a pattern into names (cartesian product over list variables). An unset optional
/// variable yields no names; an unset required variable is an error naming it.
pub fn expand(vars: &Vars, ctx: &EndpointContext, pattern: &str) -> Result<Vec<String>, NameError> {
    let mut acc = vec![String::new()];
    for piece in parse(pattern)? {
        match piece {
            Piece::Lit(l) => acc.iter_mut().for_each(|a| a.push_str(&l)),
            Piece::Var(r) => {
                let values = match lookup(vars, Some(ctx), &r.name) {
                    Lookup::Values(v) => match r.index {
                        Some(i) => match v.get(i) {
                            Some(x) => vec![x.clone()],
                            None if r.optional => return Ok(Vec::new()),
                            None => {
                                return Err(NameError::NoElement {
                                    name: r.name,
                                    index: i,
                                })
                            }
                        },
                        None => v,
                    },
                    Lookup::Unset if r.optional => return Ok(Vec::new()),
                    Lookup::Unset => {
                        return Err(NameError::Unset(r.name));
                    }
                    Lookup::Unknown => {
                        return Err(NameError::Unknown(r.name));
                    }
                };
                acc = acc
                    .iter()
                    .flat_map(|a| values.iter().map(move |v| format!("{a}{v}")))
                    .collect();
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    acc.retain(|n| seen.insert(normalize(n)));
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            sip_domains: vec!["contoso.com".into(), "fabrikam.com".into()],
            fe_pool: Some("eepool.contoso.com".into()),
            ..Vars::default()
        }
    }

    #[test]
    fn wildcard_matches_exactly_one_left_label() {
        assert!(dns_matches("*.contoso.com", "meet.contoso.com"));
        assert!(dns_matches("*.Contoso.com.", "MEET.contoso.com"));
        assert!(!dns_matches("*.contoso.com", "a.meet.contoso.com"));
        assert!(!dns_matches("*.contoso.com", "contoso.com"));
        assert!(!dns_matches("*.com", "contoso.com"));
        assert!(!dns_matches("m*.contoso.com", "meet.contoso.com"));
        assert!(dns_matches("meet.contoso.com", "meet.contoso.com."));
    }

    #[test]
    fn coverage_distinguishes_explicit_and_wildcard() {
        let sans = vec!["*.contoso.com".to_string(), "pool.contoso.com".to_string()];
        assert_eq!(coverage(&sans, "pool.contoso.com"), Coverage::Explicit);
        assert_eq!(
            coverage(&sans, "meet.contoso.com"),
            Coverage::Wildcard("*.contoso.com".into())
        );
        assert_eq!(coverage(&sans, "meet.fabrikam.com"), Coverage::Missing);
    }

    #[test]
    fn expansion_products_lists_and_handles_optional() {
        let ctx = EndpointContext {
            host: "ee01.contoso.com".into(),
            ..Default::default()
        };
        let v = vars();
        assert_eq!(
            expand(&v, &ctx, "sip.${sip_domains[*]}").unwrap(),
            vec!["sip.contoso.com", "sip.fabrikam.com"]
        );
        assert_eq!(
            expand(&v, &ctx, "${fe_pool}").unwrap(),
            vec!["eepool.contoso.com"]
        );
        assert_eq!(
            expand(&v, &ctx, "${endpoint.host}").unwrap(),
            vec!["ee01.contoso.com"]
        );
        assert_eq!(
            expand(&v, &ctx, "x.${sip_domains[1]}").unwrap(),
            vec!["x.fabrikam.com"]
        );
        assert!(expand(&v, &ctx, "${owa_fqdn?}").unwrap().is_empty());
        assert_eq!(
            expand(&v, &ctx, "${owa_fqdn}").unwrap_err().to_string(),
            "variable ${owa_fqdn} is not set"
        );
        assert!(validate_pattern(&v, "${nope}").is_err());
        assert!(validate_pattern(&v, "${fe_pool").is_err());
        assert!(validate_pattern(&v, "${sip_domains[x]}").is_err());
    }
}
