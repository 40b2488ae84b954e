//! The YAML shape of the `policy:` section of the config.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The `policy:` section.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Schema version of the policy section.
    #[serde(default)]
    pub version: Option<u32>,
    /// Named profiles; endpoints refer to them with `profile:`.
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileSpec>,
}

/// One profile.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    /// Profile (or preset) this one builds on.
    #[serde(default)]
    pub extends: Option<String>,
}
