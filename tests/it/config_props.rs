//! Property tests for the config's human durations (`src/config/duration.rs`).

use std::time::Duration;

use certprobe::config::duration::HumanDuration;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any u32 number of seconds written as `{n}s` parses back to exactly that duration.
    #[test]
    fn seconds_round_trip(n in any::<u32>()) {
        let d = HumanDuration::parse(&format!("{n}s")).unwrap();
        prop_assert_eq!(d.0, Duration::from_secs(u64::from(n)));
    }

    /// A bare number is seconds too.
    #[test]
    fn bare_numbers_are_seconds(n in any::<u32>()) {
        prop_assert_eq!(
            HumanDuration::parse(&n.to_string()).unwrap().0,
            Duration::from_secs(u64::from(n))
        );
    }

    /// What `Display` prints (used in messages and `config show`) parses back to the same value.
    #[test]
    fn display_round_trips(ms in 0u64..=(u64::from(u32::MAX) * 1000)) {
        let d = HumanDuration(Duration::from_millis(ms));
        let text = d.to_string();
        prop_assert_eq!(HumanDuration::parse(&text).unwrap(), d, "printed as {}", text);
    }

    /// Units add up: `{h}h{m}m{s}s{ms}ms` is the sum of its parts.
    #[test]
    fn combinations_sum_their_parts(
        h in 0u64..10_000,
        m in 0u64..10_000,
        s in 0u64..100_000,
        ms in 0u64..100_000,
    ) {
        let text = format!("{h}h{m}m{s}s{ms}ms");
        let want = Duration::from_secs(h * 3600 + m * 60 + s) + Duration::from_millis(ms);
        prop_assert_eq!(HumanDuration::parse(&text).unwrap().0, want);
    }

    /// Parsing is total: any string gives Ok or a message, never a panic; and an error message
    /// quotes or explains (is never empty).
    #[test]
    fn parse_never_panics(s in "\\PC{0,24}|[0-9smhd]{0,24}") {
        if let Err(e) = HumanDuration::parse(&s) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    /// A number followed by a unit that is not ms/s/m/h/d is refused.
    #[test]
    fn unknown_units_are_refused(n in any::<u32>(), unit in "[a-z]{1,3}") {
        prop_assume!(!["ms", "s", "m", "h", "d"].contains(&unit.as_str()));
        let e = HumanDuration::parse(&format!("{n}{unit}")).unwrap_err();
        prop_assert!(e.to_string().contains("unknown unit"), "{}", e);
    }
}

/// Huge values saturate instead of overflowing (and never panic).
#[test]
fn overflowing_values_saturate_or_error() {
    assert_eq!(
        HumanDuration::parse("18446744073709551615d").unwrap().0,
        Duration::from_secs(u64::MAX)
    );
    assert!(HumanDuration::parse("99999999999999999999999s")
        .unwrap_err()
        .to_string()
        .contains("too large"));
}
