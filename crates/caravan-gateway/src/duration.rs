//! Go's `time.ParseDuration` syntax, which Nomad accepts for `wait`: a sequence of decimal
//! numbers, each with an optional fraction and a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`),
//! e.g. `300ms`, `1.5h`, `2h45m`. A bare `0` is valid; any other number needs a unit.

use std::time::Duration;

pub use caravan_structs::time::{DurationError, parse_go_duration};

/// Formats a duration the way Go's `Duration.String` does (`5s`, `1m30s`, `1h0m0s`, `300ms`).
pub fn format_go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim_frac(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim_frac(ns, 1_000_000));
    }
    let total_secs = ns / 1_000_000_000;
    let sub = ns % 1_000_000_000;
    let h = total_secs / 3600;
    let m = (total_secs % 3600) / 60;
    let s = total_secs % 60;
    let secs = if sub == 0 {
        format!("{s}")
    } else {
        let frac = format!("{sub:09}");
        format!("{s}.{}", frac.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{m}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

fn trim_frac(ns: u128, unit: u128) -> String {
    let whole = ns / unit;
    let rem = ns % unit;
    if rem == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let frac = format!("{rem:0width$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_syntax() {
        let cases = [
            ("0", 0),
            ("10s", 10_000_000_000),
            ("5m", 300_000_000_000),
            ("1h30m", 5_400_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("300000ms", 300_000_000_000),
            ("2h45m", 9_900_000_000_000),
            ("500us", 500_000),
            ("500µs", 500_000),
            ("1ns", 1),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("+3s", 3_000_000_000),
        ];
        for (input, ns) in cases {
            assert_eq!(
                parse_go_duration(input),
                Ok(Duration::from_nanos(ns)),
                "{input}"
            );
        }
    }

    #[test]
    fn negative_is_zero() {
        assert_eq!(parse_go_duration("-5s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "abc",
            "10",
            "5x",
            "s",
            ".s",
            "1..5s",
            "--1s",
            "1h-5m",
            "99999999999999999999h",
        ] {
            assert!(
                parse_go_duration(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_go_duration(Duration::from_millis(300)), "300ms");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = parse_go_duration(&s);
        }

        #[test]
        fn round_trips_whole_units(h in 0u64..1000, m in 0u64..60, sec in 0u64..60) {
            let d = Duration::from_secs(h * 3600 + m * 60 + sec);
            proptest::prop_assert_eq!(parse_go_duration(&format_go_duration(d)), Ok(d));
        }
    }
}
