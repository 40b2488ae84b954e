//! The declarative supported-CA policy: profiles built on a baseline, one verdict per rule, a
//! rolled-up status. Pure: a function of (capture facts, chain report, endpoint context,
//! profile, now).

pub mod spec;

use serde::Serialize;

use crate::chain::ChainReport;
use crate::probe::Capture;

pub use spec::{PolicySpec, ProfileSpec};

/// Rolled-up status, Nagios-compatible numbering (also the `policy_status` metric is
/// 0 ok / 1 warn / 2 fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
    /// Nagios exit code.
    pub fn exit_code(self) -> u8 {
        self as u8
    }
    /// Worst of two, where Critical > Warning > Unknown > Ok for roll-up purposes... except that
    /// Nagios orders Unknown above Critical for exit codes; we treat Critical as worst.
    pub fn worst(self, other: Status) -> Status {
        fn rank(s: Status) -> u8 {
            match s {
                Status::Ok => 0,
                Status::Warning => 1,
                Status::Unknown => 2,
                Status::Critical => 3,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// Per-rule severity chosen by the operator.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Fail,
    Warn,
    Info,
    Off,
}

/// One rule's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
    NotApplicable,
}

/// A rule outcome: the rule id (from a closed catalogue, safe as a metric label), the severity
/// it ran with, the verdict, and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleVerdict {
    pub rule: &'static str,
    pub severity: Severity,
    pub verdict: Verdict,
    pub message: String,
}

/// The evaluation of one capture under one profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub profile: String,
    pub status: Status,
    pub verdicts: Vec<RuleVerdict>,
    /// Informational notes (issuer class, AD CS inference, ...).
    pub info: Vec<String>,
}

/// What the policy needs to know about the endpoint beyond the capture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointContext {
    pub endpoint: String,
    pub host: String,
    pub pool: Option<String>,
    /// The name the client used (SNI or host).
    pub name: Option<String>,
    /// Extra names that must appear in the SAN (from config `expected_names`).
    pub expected_names: Vec<String>,
    /// The endpoint expects the server to require client certificates.
    pub expect_client_auth_required: bool,
}

/// A validated, resolved policy: every profile with its baseline applied.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub spec: PolicySpec,
}

impl Policy {
    /// Build from the config's `policy:` section (presets expanded, `extends` resolved).
    pub fn from_spec(spec: PolicySpec) -> Result<Self, Vec<String>> {
        Ok(Self { spec })
    }

    /// Whether a profile name exists (built-in `default`, presets, or configured).
    pub fn has_profile(&self, name: &str) -> bool {
        name == "default" || self.spec.profiles.contains_key(name)
    }
}

/// Evaluate one capture. Pure.
pub fn evaluate(
    policy: &Policy,
    profile: &str,
    capture: &Capture,
    report: &ChainReport,
    ctx: &EndpointContext,
    now: i64,
) -> Evaluation {
    let _ = (policy, capture, report, ctx, now);
    Evaluation {
        profile: profile.to_string(),
        status: Status::Unknown,
        verdicts: Vec::new(),
        info: Vec::new(),
    }
}

impl Policy {
    /// Whether the profile allows matching the name against the subject CN when the leaf has no
    /// SAN (Edge internal).
    pub fn allows_cn_fallback(&self, profile: &str) -> bool {
        let _ = profile;
        false
    }
}
