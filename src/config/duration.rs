//! Human durations in config files: `30s`, `5m`, `1h30m`, `500ms`, or a bare number of seconds.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written as `500ms`, `30s`, `5m`, `2h`, `1d`, combinations like `1h30m`, or a bare
/// integer number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl Default for HumanDuration {
    /// Ten seconds: the default handshake timeout.
    fn default() -> Self {
        Self(super::DEFAULT_TIMEOUT)
    }
}

/// Why a duration does not parse; the message quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("invalid duration {0:?}: expected a number before the unit (e.g. 30s, 5m, 1h)")]
    NoNumber(String),
    #[error("invalid duration {0:?}: number too large")]
    TooLarge(String),
    #[error("invalid duration {text:?}: missing unit after {n} (use ms, s, m, h or d)")]
    NoUnit { text: String, n: u64 },
    #[error("invalid duration {text:?}: unknown unit {unit:?} (use ms, s, m, h or d)")]
    UnknownUnit { text: String, unit: String },
}

impl HumanDuration {
    pub fn parse(s: &str) -> Result<Self, DurationError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(DurationError::Empty);
        }
        if let Ok(secs) = s.parse::<u64>() {
            return Ok(Self(Duration::from_secs(secs)));
        }
        let mut total = Duration::ZERO;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(DurationError::NoNumber(s.to_string()));
            }
            let n: u64 = rest[..digits]
                .parse()
                .map_err(|_| DurationError::TooLarge(s.to_string()))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let d = match unit {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                "m" => Duration::from_secs(n.saturating_mul(60)),
                "h" => Duration::from_secs(n.saturating_mul(3600)),
                "d" => Duration::from_secs(n.saturating_mul(86400)),
                "" => {
                    return Err(DurationError::NoUnit {
                        text: s.to_string(),
                        n,
                    })
                }
                other => {
                    return Err(DurationError::UnknownUnit {
                        text: s.to_string(),
                        unit: other.to_string(),
                    })
                }
            };
            total = total.saturating_add(d);
        }
        Ok(Self(total))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Secs(u64),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Secs(s) => Ok(Self(Duration::from_secs(s))),
            Repr::Text(t) => Self::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

impl schemars::JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: `500ms`, `30s`, `5m`, `2h`, `1d`, `1h30m`, or a number of seconds.",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^([0-9]+(ms|s|m|h|d))+$"}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(
            HumanDuration::parse("30s").unwrap().0,
            Duration::from_secs(30)
        );
        assert_eq!(
            HumanDuration::parse("5m").unwrap().0,
            Duration::from_secs(300)
        );
        assert_eq!(
            HumanDuration::parse("1h30m").unwrap().0,
            Duration::from_secs(5400)
        );
        assert_eq!(
            HumanDuration::parse("250ms").unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!(
            HumanDuration::parse("45").unwrap().0,
            Duration::from_secs(45)
        );
    }

    #[test]
    fn rejects_missing_or_unknown_units() {
        assert!(HumanDuration::parse("5x")
            .unwrap_err()
            .to_string()
            .contains("unknown unit"));
        assert!(HumanDuration::parse("m")
            .unwrap_err()
            .to_string()
            .contains("expected a number"));
        assert!(HumanDuration::parse("").is_err());
    }
}
