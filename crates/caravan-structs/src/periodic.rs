//! Periodic jobs: the cron dialect Nomad accepts (github.com/hashicorp/cronexpr), evaluated in
//! the job's IANA time zone, and the record of a periodic job's last launch.
//!
//! The dialect, as Nomad reads it:
//! - 5 fields `minute hour day-of-month month day-of-week`, 6 fields add a trailing **year**,
//!   7 fields add a leading **second** as well (so a 6-field spec is *not* seconds-first, unlike
//!   most Rust cron crates); fields beyond the 7th are ignored; fewer than 5 is an error.
//! - `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight` (as `@daily`),
//!   `@hourly`; month and weekday names (three letters or in full, any case); `L`, `W`, `LW`,
//!   `5L`, `5#3`, `?`.
//!
//! Parsing and matching are done by `croner` (with seconds and years required, after the spec
//! is brought to 7 fields here); time zones come from the IANA database bundled in `jiff`, so
//! nothing here does I/O.

use jiff::Timestamp;
use jiff::Zoned;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::job::PeriodicConfig;

/// The only `SpecType` Nomad accepts from users.
pub const PERIODIC_SPEC_CRON: &str = "cron";

/// Appended to a periodic job's ID, with the launch's Unix seconds, to name a child.
pub const PERIODIC_LAUNCH_SUFFIX: &str = "/periodic-";

/// Why a cron spec does not parse; the texts are cronexpr's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronSpecError {
    #[error("missing field(s)")]
    MissingFields,
    #[error("syntax error in {field} field: '{directive}'")]
    Syntax {
        field: &'static str,
        directive: String,
    },
}

/// The field names of a 7-field spec, in order (cronexpr's names, used in its errors).
const FIELDS: [&str; 7] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
    "year",
];

/// Each field's wildcard, used to test one field alone.
const WILDCARD: [&str; 7] = ["0", "*", "*", "*", "*", "*", "*"];

/// Full month and weekday names, which cronexpr accepts and croner does not.
const FULL_NAMES: [(&str, &str); 19] = [
    ("january", "jan"),
    ("february", "feb"),
    ("march", "mar"),
    ("april", "apr"),
    ("june", "jun"),
    ("july", "jul"),
    ("august", "aug"),
    ("september", "sep"),
    ("october", "oct"),
    ("november", "nov"),
    ("december", "dec"),
    ("sunday", "sun"),
    ("monday", "mon"),
    ("tuesday", "tue"),
    ("wednesday", "wed"),
    ("thursday", "thu"),
    ("friday", "fri"),
    ("saturday", "sat"),
    // `may` is already short.
    ("may", "may"),
];

const YEAR: usize = 6;

/// cronexpr knows the years 1970 to 2099 only (a step after `/` is not a year).
fn years_in_range(field: &str) -> bool {
    field.split(',').all(|entry| {
        let years = entry.split('/').next().unwrap_or_default();
        years
            .split(|c: char| !c.is_ascii_digit())
            .filter(|n| !n.is_empty())
            .all(|n| n.parse::<u32>().is_ok_and(|y| (1970..=2099).contains(&y)))
    })
}

/// One parsed cron spec.
#[derive(Debug, Clone)]
pub struct CronSpec {
    cron: croner::Cron,
}

fn parser() -> croner::parser::CronParser {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .year(croner::parser::Year::Required)
        .build()
}

/// The spec's fields, aliases expanded, brought to 7 (second and year filled in).
fn seven_fields(spec: &str) -> Result<[String; 7], CronSpecError> {
    let expanded = match spec.trim().to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 0 1 1 * *".to_owned(),
        "@monthly" => "0 0 0 1 * * *".to_owned(),
        "@weekly" => "0 0 0 * * 0 *".to_owned(),
        "@daily" | "@midnight" => "0 0 0 * * * *".to_owned(),
        "@hourly" => "0 0 * * * * *".to_owned(),
        other => other.to_owned(),
    };
    let fields: Vec<&str> = expanded.split_whitespace().take(7).collect();
    let mut out: [String; 7] = Default::default();
    match fields.len() {
        0..=4 => return Err(CronSpecError::MissingFields),
        5 | 6 => {
            out[0] = "0".to_owned();
            for (slot, f) in out[1..].iter_mut().zip(&fields) {
                *slot = (*f).to_owned();
            }
            if fields.len() == 5 {
                out[6] = "*".to_owned();
            }
        }
        _ => {
            for (slot, f) in out.iter_mut().zip(&fields) {
                *slot = (*f).to_owned();
            }
        }
    }
    for f in &mut out {
        for (full, short) in FULL_NAMES {
            if f.contains(full) {
                *f = f.replace(full, short);
            }
        }
    }
    Ok(out)
}

/// Whether croner accepts `value` as field `idx` with every other field a wildcard.
fn field_ok(idx: usize, value: &str) -> bool {
    // `+` is croner's own day-of-week modifier; cronexpr has none.
    if value.contains('+') || value.is_empty() {
        return false;
    }
    if idx == YEAR && !years_in_range(value) {
        return false;
    }
    let mut parts = WILDCARD;
    parts[idx] = value;
    parser().parse(&parts.join(" ")).is_ok()
}

/// The first field (and entry of it) croner refuses, as cronexpr reports it.
fn syntax_error(fields: &[String; 7]) -> CronSpecError {
    for (idx, value) in fields.iter().enumerate() {
        if field_ok(idx, value) {
            continue;
        }
        let directive = value
            .split(',')
            .find(|entry| !field_ok(idx, entry))
            .unwrap_or(value);
        return CronSpecError::Syntax {
            field: FIELDS[idx],
            directive: directive.to_owned(),
        };
    }
    // Every field passes alone but not together (croner's own cross-field checks).
    CronSpecError::Syntax {
        field: FIELDS[3],
        directive: fields[3].clone(),
    }
}

impl CronSpec {
    pub fn parse(spec: &str) -> Result<CronSpec, CronSpecError> {
        let fields = seven_fields(spec)?;
        if fields.iter().any(|f| f.contains('+')) || !years_in_range(&fields[YEAR]) {
            return Err(syntax_error(&fields));
        }
        match parser().parse(&fields.join(" ")) {
            Ok(cron) => Ok(CronSpec { cron }),
            Err(_) => Err(syntax_error(&fields)),
        }
    }

    /// The first matching instant strictly after `after` (at second granularity), as wall
    /// time in `after`'s zone; `None` when the spec never matches again.
    pub fn next_after(&self, after: &Zoned) -> Option<Zoned> {
        self.cron.find_next_occurrence(after, false).ok()
    }
}

/// A time zone by its IANA name; empty and `UTC` are UTC, `Local` is taken as UTC too (a
/// server's local zone would make launches depend on where the leader runs).
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    match name {
        "" | "UTC" | "Local" => Ok(TimeZone::UTC),
        _ => TimeZone::get(name).map_err(|_| format!("unknown time zone {name}")),
    }
}

impl PeriodicConfig {
    /// The configured specs: `Spec`, or else each of `Specs`.
    pub fn spec_list(&self) -> Vec<&str> {
        if !self.spec.is_empty() {
            return vec![self.spec.as_str()];
        }
        self.specs.iter().flatten().map(String::as_str).collect()
    }

    /// Nomad's `PeriodicConfig.Validate` messages (none for a disabled block).
    pub fn validation_errors(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if !self.enabled {
            return errs;
        }
        let has_specs = self.specs.as_ref().is_some_and(|s| !s.is_empty());
        if !self.spec.is_empty() && has_specs {
            errs.push("Only cron or crons may be used".to_owned());
        }
        if self.spec.is_empty() && !has_specs {
            errs.push("Must specify a spec".to_owned());
        }
        if !self.time_zone.is_empty()
            && let Err(e) = time_zone(&self.time_zone)
        {
            errs.push(format!("Invalid time zone {:?}: {e}", self.time_zone));
        }
        if self.spec_type == PERIODIC_SPEC_CRON {
            let specs = (!self.spec.is_empty())
                .then_some(&self.spec)
                .into_iter()
                .chain(self.specs.iter().flatten());
            for spec in specs {
                if let Err(e) = CronSpec::parse(spec) {
                    errs.push(format!("Invalid cron spec {spec:?}: {e}"));
                }
            }
        } else {
            errs.push(format!(
                "Unknown periodic specification type {:?}",
                self.spec_type
            ));
        }
        errs
    }

    /// The first launch strictly after `after`: the earliest over every spec, computed in the
    /// job's time zone. `None` when no spec matches again (or none parses).
    pub fn next_launch(&self, after: Timestamp) -> Option<Timestamp> {
        let tz = time_zone(&self.time_zone).unwrap_or(TimeZone::UTC);
        let from = after.to_zoned(tz);
        self.spec_list()
            .into_iter()
            .filter_map(|spec| CronSpec::parse(spec).ok())
            .filter_map(|spec| spec.next_after(&from))
            .map(|z| z.timestamp())
            .min()
    }
}

/// The last launch of a periodic job (Nomad's `PeriodicLaunch`): what a new leader resumes
/// from, and what keeps one launch from happening twice.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PeriodicLaunch {
    pub create_index: u64,
    /// The periodic job's ID.
    pub id: String,
    /// The launch time, Unix nanoseconds.
    pub launch: i64,
    pub modify_index: u64,
    pub namespace: String,
}

/// `<parent>/periodic-<unix seconds>` (Nomad's derived job ID).
pub fn periodic_child_id(parent: &str, launch_nanos: i64) -> String {
    format!(
        "{parent}{PERIODIC_LAUNCH_SUFFIX}{}",
        launch_nanos.div_euclid(1_000_000_000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn next(spec: &str, tz: &str, after: &str) -> Option<Timestamp> {
        let p = PeriodicConfig {
            enabled: true,
            spec: spec.to_owned(),
            spec_type: "cron".into(),
            time_zone: tz.into(),
            ..Default::default()
        };
        p.next_launch(ts(after))
    }

    #[test]
    fn five_fields_run_on_whole_minutes() {
        assert_eq!(
            next("*/15 * * * *", "", "2026-01-01T10:07:30Z"),
            Some(ts("2026-01-01T10:15:00Z"))
        );
        // Strictly after: a launch at the matching second looks for the following one.
        assert_eq!(
            next("*/15 * * * *", "", "2026-01-01T10:15:00Z"),
            Some(ts("2026-01-01T10:30:00Z"))
        );
    }

    #[test]
    fn six_fields_end_with_the_year_and_seven_start_with_seconds() {
        // Six fields: minute ... day-of-week year (cronexpr), not seconds first.
        assert_eq!(
            next("0 12 1 1 * 2030", "", "2026-06-01T00:00:00Z"),
            Some(ts("2030-01-01T12:00:00Z"))
        );
        assert_eq!(next("0 12 1 1 * 2020", "", "2026-06-01T00:00:00Z"), None);
        assert_eq!(
            next("*/2 * * * * * *", "", "2026-01-01T00:00:01.5Z"),
            Some(ts("2026-01-01T00:00:02Z"))
        );
        assert_eq!(
            next("*/2 * * * * * *", "", "2026-01-01T00:00:02Z"),
            Some(ts("2026-01-01T00:00:04Z"))
        );
    }

    #[test]
    fn aliases() {
        let after = "2026-03-18T10:00:00Z"; // a Wednesday
        assert_eq!(next("@daily", "", after), Some(ts("2026-03-19T00:00:00Z")));
        assert_eq!(
            next("@midnight", "", after),
            Some(ts("2026-03-19T00:00:00Z"))
        );
        assert_eq!(next("@hourly", "", after), Some(ts("2026-03-18T11:00:00Z")));
        assert_eq!(next("@weekly", "", after), Some(ts("2026-03-22T00:00:00Z")));
        assert_eq!(
            next("@monthly", "", after),
            Some(ts("2026-04-01T00:00:00Z"))
        );
        assert_eq!(next("@yearly", "", after), Some(ts("2027-01-01T00:00:00Z")));
        assert_eq!(
            next("@annually", "", after),
            Some(ts("2027-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn last_weekday_and_nth() {
        // Last day of March 2026.
        assert_eq!(
            next("0 0 L * *", "", "2026-03-02T00:00:00Z"),
            Some(ts("2026-03-31T00:00:00Z"))
        );
        // The weekday nearest the 15th: Sunday 2026-03-15 → Monday the 16th.
        assert_eq!(
            next("0 0 15W * *", "", "2026-03-02T00:00:00Z"),
            Some(ts("2026-03-16T00:00:00Z"))
        );
        // The third Friday of March 2026.
        assert_eq!(
            next("0 0 * * 5#3", "", "2026-03-02T00:00:00Z"),
            Some(ts("2026-03-20T00:00:00Z"))
        );
        // Names, in full and short, any case.
        assert_eq!(
            next("0 9 * JAN-MAR Monday", "", "2026-03-18T00:00:00Z"),
            Some(ts("2026-03-23T09:00:00Z"))
        );
    }

    #[test]
    fn several_specs_take_the_earliest() {
        let p = PeriodicConfig {
            enabled: true,
            specs: Some(vec!["0 12 * * *".into(), "30 6 * * *".into()]),
            spec_type: "cron".into(),
            ..Default::default()
        };
        assert_eq!(
            p.next_launch(ts("2026-01-01T07:00:00Z")),
            Some(ts("2026-01-01T12:00:00Z"))
        );
        assert_eq!(
            p.next_launch(ts("2026-01-01T12:00:00Z")),
            Some(ts("2026-01-02T06:30:00Z"))
        );
    }

    #[test]
    fn time_zones_and_daylight_saving() {
        // 09:00 in New York is 14:00 UTC in winter, 13:00 UTC in summer.
        assert_eq!(
            next("0 9 * * *", "America/New_York", "2026-01-10T00:00:00Z"),
            Some(ts("2026-01-10T14:00:00Z"))
        );
        assert_eq!(
            next("0 9 * * *", "America/New_York", "2026-07-10T00:00:00Z"),
            Some(ts("2026-07-10T13:00:00Z"))
        );
        // Spring forward (2026-03-08, 02:00 → 03:00): 02:30 does not exist that day; the
        // launch still happens that day, right after the gap, and not twice.
        let p = PeriodicConfig {
            enabled: true,
            spec: "30 2 * * *".into(),
            spec_type: "cron".into(),
            time_zone: "America/New_York".into(),
            ..Default::default()
        };
        let first = p.next_launch(ts("2026-03-08T05:00:00Z"));
        let first = first.unwrap_or_else(|| panic!("no launch"));
        assert!(
            first >= ts("2026-03-08T07:00:00Z") && first <= ts("2026-03-08T07:30:00Z"),
            "{first}"
        );
        assert_eq!(p.next_launch(first), Some(ts("2026-03-09T06:30:00Z")));
        // Fall back (2026-11-01, 02:00 → 01:00): 01:30 happens twice on the wall clock but
        // launches once.
        let p = PeriodicConfig {
            spec: "30 1 * * *".into(),
            ..p
        };
        let first = p.next_launch(ts("2026-11-01T04:00:00Z"));
        assert_eq!(first, Some(ts("2026-11-01T05:30:00Z")));
        let second = first.and_then(|f| p.next_launch(f));
        assert_eq!(second, Some(ts("2026-11-02T06:30:00Z")));
    }

    #[test]
    fn errors_in_nomads_words() {
        assert_eq!(
            CronSpec::parse("* * *").err(),
            Some(CronSpecError::MissingFields)
        );
        assert_eq!(
            CronSpec::parse("61 * * * *").err().map(|e| e.to_string()),
            Some("syntax error in minute field: '61'".to_owned())
        );
        assert_eq!(
            CronSpec::parse("0 5,20 * * *").err(),
            None,
            "a list is fine"
        );
        assert_eq!(
            CronSpec::parse("* * * * * * 1900")
                .err()
                .map(|e| e.to_string()),
            Some("syntax error in year field: '1900'".to_owned())
        );
        assert_eq!(
            CronSpec::parse("0 5,xx * * *").err().map(|e| e.to_string()),
            Some("syntax error in hour field: 'xx'".to_owned())
        );
        let p = PeriodicConfig {
            enabled: true,
            spec: "not a cron".into(),
            spec_type: "cron".into(),
            time_zone: "Mars/Olympus".into(),
            ..Default::default()
        };
        assert_eq!(
            p.validation_errors(),
            vec![
                "Invalid time zone \"Mars/Olympus\": unknown time zone Mars/Olympus".to_owned(),
                "Invalid cron spec \"not a cron\": missing field(s)".to_owned(),
            ]
        );
        let p = PeriodicConfig {
            enabled: true,
            spec: "@daily".into(),
            specs: Some(vec!["@hourly".into()]),
            spec_type: "interval".into(),
            ..Default::default()
        };
        assert_eq!(
            p.validation_errors(),
            vec![
                "Only cron or crons may be used".to_owned(),
                "Unknown periodic specification type \"interval\"".to_owned(),
            ]
        );
        let disabled = PeriodicConfig::default();
        assert!(disabled.validation_errors().is_empty());
    }

    #[test]
    fn child_ids() {
        assert_eq!(
            periodic_child_id("backup", 1_700_000_000_999_000_000),
            "backup/periodic-1700000000"
        );
    }
}
