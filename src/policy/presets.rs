//! Shipped profile sets, kept as YAML next to this file (they double as examples).

use std::collections::BTreeMap;

use super::spec::{Preset, ProfileSpec};
use super::ResolvedProfile;

const DEFAULT: &str = include_str!("presets/default.yaml");
const LYNC2013: &str = include_str!("presets/lync2013.yaml");
const LYNC2013_HARDENED: &str = include_str!("presets/lync2013-hardened.yaml");
const PUBLIC_WEB: &str = include_str!("presets/public-web.yaml");

type ProfileSet = BTreeMap<String, ProfileSpec>;

fn parse(name: &str, yaml: &str) -> ProfileSet {
    // The preset files are part of the source and covered by tests; a parse error is a
    // programming error caught by `presets_parse`.
    serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("built-in preset {name}: {e}"))
}

/// The YAML text of a preset (for `certprobe schema`/docs).
pub fn source(preset: Preset) -> &'static str {
    match preset {
        Preset::Lync2013 => LYNC2013,
        Preset::Lync2013Hardened => LYNC2013_HARDENED,
        Preset::PublicWeb => PUBLIC_WEB,
    }
}

/// Profile layers to load, lowest first, with their origin path for messages.
pub fn layers(preset: Option<Preset>) -> Vec<(String, ProfileSet)> {
    let mut out = vec![("builtin".to_string(), parse("default", DEFAULT))];
    match preset {
        None => {}
        Some(Preset::Lync2013) => {
            out.push((
                "policy.preset(lync2013)".into(),
                parse("lync2013", LYNC2013),
            ));
        }
        Some(Preset::Lync2013Hardened) => {
            out.push((
                "policy.preset(lync2013)".into(),
                parse("lync2013", LYNC2013),
            ));
            out.push((
                "policy.preset(lync2013-hardened)".into(),
                parse("lync2013-hardened", LYNC2013_HARDENED),
            ));
        }
        Some(Preset::PublicWeb) => {
            out.push((
                "policy.preset(public-web)".into(),
                parse("public-web", PUBLIC_WEB),
            ));
        }
    }
    out
}

/// The built-in `default` profile, resolved.
pub fn builtin_default() -> ResolvedProfile {
    let mut set = parse("default", DEFAULT);
    let p = set
        .remove("default")
        .expect("default.yaml defines `default`");
    ResolvedProfile {
        name: "default".into(),
        description: p.description,
        ancestry: Vec::new(),
        rules: p.rules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse() {
        for p in [
            Preset::Lync2013,
            Preset::Lync2013Hardened,
            Preset::PublicWeb,
        ] {
            let l = layers(Some(p));
            assert!(l.len() >= 2, "{p:?}");
        }
        assert!(builtin_default().rules.trusted.is_some());
    }
}
