//! Nomad's three time encodings (NOMAD-BEHAVIOR 7.2):
//!
//! - Go `time.Time` fields travel as RFC 3339 strings with nanoseconds (Go's `RFC3339Nano`:
//!   trailing zeros of the fraction trimmed, `Z` for UTC, `+hh:mm` otherwise), and the zero time
//!   travels as JSON `null`. [`Time`] mirrors that type: it keeps the offset it was given so a
//!   value read from the wire is written back byte for byte.
//! - `CreateTime`, `ModifyTime`, `TaskEvent.Time`, `RescheduleTime`, `SubmitTime` are plain
//!   `i64` Unix nanoseconds; `Node.StatusUpdatedAt` is `i64` Unix seconds.
//! - `time.Duration` fields are plain `i64` nanoseconds. [`format_go_duration`] renders them
//!   the way Go's `Duration.String` does, for display messages.
//!
//! Hand-written on purpose: the crate needs only UTC civil-date arithmetic and fixed offsets, not
//! a calendar library.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Nanoseconds per second.
pub const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Unix seconds of Go's zero time, `0001-01-01T00:00:00Z`.
const GO_ZERO_UNIX_SECS: i64 = -62_135_596_800;

/// A point in time with the UTC offset it is displayed in, like Go's `time.Time`.
///
/// The zero value (`Time::ZERO`, also `Default`) is Go's zero time and serializes as `null`.
/// Fields are ordered so that the derived `Ord` sorts by instant first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time {
    /// Seconds since the Unix epoch (UTC).
    secs: i64,
    /// Nanoseconds within the second, `0..1e9`.
    nanos: u32,
    /// Offset east of UTC in seconds, used only for display.
    offset_secs: i32,
}

/// Why an RFC 3339 string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 time {input:?}: {reason}")]
pub struct TimeParseError {
    input: String,
    reason: &'static str,
}

impl Time {
    /// Go's zero time, `0001-01-01T00:00:00Z`; `null` on the wire.
    pub const ZERO: Time = Time {
        secs: GO_ZERO_UNIX_SECS,
        nanos: 0,
        offset_secs: 0,
    };

    /// True for Go's zero time (whatever its offset), which Nomad encodes as `null`.
    pub fn is_zero(&self) -> bool {
        self.secs == GO_ZERO_UNIX_SECS && self.nanos == 0
    }

    /// A UTC time from Unix seconds and nanoseconds (the nanoseconds are normalised).
    pub fn from_unix(secs: i64, nanos: i64) -> Time {
        let secs = secs.saturating_add(nanos.div_euclid(NANOS_PER_SEC));
        let nanos = nanos.rem_euclid(NANOS_PER_SEC) as u32;
        Time {
            secs,
            nanos,
            offset_secs: 0,
        }
    }

    /// A UTC time from Unix nanoseconds, the unit of `CreateTime` and friends.
    pub fn from_unix_nanos(nanos: i64) -> Time {
        Time::from_unix(0, nanos)
    }

    /// A UTC time from a `SystemTime` (the caller owns the clock; this crate never reads it).
    pub fn from_system_time(t: SystemTime) -> Time {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Time::from_unix(
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                i64::from(d.subsec_nanos()),
            ),
            Err(e) => {
                let d = e.duration();
                Time::from_unix(
                    -i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                    -i64::from(d.subsec_nanos()),
                )
            }
        }
    }

    /// The same instant as a `SystemTime`.
    pub fn to_system_time(&self) -> SystemTime {
        let base = if self.secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(self.secs as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(self.secs.unsigned_abs())
        };
        base + Duration::from_nanos(u64::from(self.nanos))
    }

    /// Unix seconds (UTC).
    pub fn unix_secs(&self) -> i64 {
        self.secs
    }

    /// Nanoseconds within the second.
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// Unix nanoseconds, saturating outside Go's `UnixNano` range (years 1678..2262).
    pub fn unix_nanos(&self) -> i64 {
        let n = i128::from(self.secs) * i128::from(NANOS_PER_SEC) + i128::from(self.nanos);
        i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
    }

    /// The display offset east of UTC, in seconds.
    pub fn offset_secs(&self) -> i32 {
        self.offset_secs
    }

    /// The same instant displayed at another UTC offset.
    pub fn with_offset(self, offset_secs: i32) -> Time {
        Time {
            offset_secs,
            ..self
        }
    }

    /// The same instant displayed in UTC.
    pub fn to_utc(self) -> Time {
        self.with_offset(0)
    }

    /// This time plus a (possibly negative) number of nanoseconds, as Go's `Time.Add`.
    pub fn add_nanos(self, nanos: i64) -> Time {
        let t = Time::from_unix(self.secs, i64::from(self.nanos) + nanos);
        t.with_offset(self.offset_secs)
    }

    /// Nanoseconds from `earlier` to `self`, as Go's `Time.Sub` (saturating).
    pub fn nanos_since(&self, earlier: &Time) -> i64 {
        let n = (i128::from(self.secs) - i128::from(earlier.secs)) * i128::from(NANOS_PER_SEC)
            + i128::from(self.nanos)
            - i128::from(earlier.nanos);
        i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
    }

    /// Go's `RFC3339Nano` rendering, e.g. `2019-08-26T12:22:50.6873373+02:00`.
    pub fn to_rfc3339(&self) -> String {
        self.to_string()
    }

    /// Parses an RFC 3339 time (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)`). Go's zero time, in
    /// any offset, comes back as [`Time::ZERO`].
    pub fn parse_rfc3339(s: &str) -> Result<Time, TimeParseError> {
        let err = |reason| TimeParseError {
            input: s.to_owned(),
            reason,
        };
        let b = s.as_bytes();
        if b.len() < 20 {
            return Err(err("too short"));
        }
        let year = digits(b, 0, 4).ok_or_else(|| err("bad year"))?;
        let month = digits(b, 5, 2).ok_or_else(|| err("bad month"))?;
        let day = digits(b, 8, 2).ok_or_else(|| err("bad day"))?;
        let hour = digits(b, 11, 2).ok_or_else(|| err("bad hour"))?;
        let minute = digits(b, 14, 2).ok_or_else(|| err("bad minute"))?;
        let second = digits(b, 17, 2).ok_or_else(|| err("bad second"))?;
        if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
            return Err(err("bad date separator"));
        }
        if b[13] != b':' || b[16] != b':' {
            return Err(err("bad time separator"));
        }
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(err("date out of range"));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(err("time of day out of range"));
        }
        let mut i = 19;
        let mut nanos: u32 = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 9 {
                    nanos = nanos * 10 + u32::from(b[i] - b'0');
                }
                i += 1;
            }
            let n = i - start;
            if n == 0 {
                return Err(err("empty fraction"));
            }
            for _ in n..9 {
                nanos *= 10;
            }
        }
        let offset_secs: i32 = match &b[i..] {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let hh = two(*h1, *h2).ok_or_else(|| err("bad offset"))?;
                let mm = two(*m1, *m2).ok_or_else(|| err("bad offset"))?;
                if hh > 23 || mm > 59 {
                    return Err(err("offset out of range"));
                }
                let o = (hh * 3600 + mm * 60) as i32;
                if *sign == b'-' { -o } else { o }
            }
            _ => return Err(err("bad zone")),
        };
        let days = days_from_civil(i64::from(year), month, day);
        let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
        let t = Time {
            secs: local - i64::from(offset_secs),
            nanos,
            offset_secs,
        };
        Ok(if t.is_zero() { Time::ZERO } else { t })
    }
}

impl Default for Time {
    fn default() -> Self {
        Time::ZERO
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.secs + i64::from(self.offset_secs);
        let days = local.div_euclid(86_400);
        let sod = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        )?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            f.write_str(".")?;
            f.write_str(frac.trim_end_matches('0'))?;
        }
        if self.offset_secs == 0 {
            return f.write_str("Z");
        }
        let sign = if self.offset_secs < 0 { '-' } else { '+' };
        let o = self.offset_secs.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", o / 3600, (o / 60) % 60)
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            f.write_str("Time::ZERO")
        } else {
            write!(f, "Time({self})")
        }
    }
}

impl FromStr for Time {
    type Err = TimeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Time::parse_rfc3339(s)
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // go-msgpack's JSON handle writes the zero time as null (NOMAD-BEHAVIOR 7.2).
        if self.is_zero() {
            s.serialize_none()
        } else {
            s.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Time::ZERO),
            Some(s) if s.is_empty() => Ok(Time::ZERO),
            Some(s) => Time::parse_rfc3339(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// Serde helpers for `i64` nanosecond durations that old documents sometimes wrote as strings
/// (the docs' `RescheduleEvent.Delay` is `"5000000000"`). Reads a number or a numeric string;
/// always writes a number, as Nomad does.
pub mod lenient_i64 {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(i64),
        Float(f64),
        Str(String),
        Null(()),
    }

    /// Writes the value as a JSON number.
    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(*v)
    }

    /// Reads a number, a numeric string, or null (as 0).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Num(n) => Ok(n),
            // Whole floats only: `5e9` is a fine way to write five seconds.
            NumOrStr::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(f as i64),
            NumOrStr::Float(f) => Err(serde::de::Error::custom(format!(
                "expected an integer, got {f}"
            ))),
            NumOrStr::Str(s) => s.trim().parse().map_err(serde::de::Error::custom),
            NumOrStr::Null(()) => Ok(0),
        }
    }
}

/// Renders nanoseconds as Go's `time.Duration.String` does: `0s`, `1.5s`, `1m30s`, `1h0m0s`,
/// `250ms`, `3µs`, `7ns`. Used in task event display messages (NOMAD-BEHAVIOR 7.4).
pub fn format_go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if u < 1_000_000_000 {
        // Below a second Go picks the largest unit that keeps a non-zero integer part.
        let (unit, scale) = match u {
            0..=999 => ("ns", 1),
            1_000..=999_999 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        push_fraction(&mut out, u / scale, u % scale, scale);
        out.push_str(unit);
        return out;
    }
    let secs = u / 1_000_000_000;
    let frac = u % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    push_fraction(&mut out, s, frac, 1_000_000_000);
    out.push('s');
    out
}

/// Writes `whole[.frac]` with the fraction's trailing zeros trimmed; `scale` is 10^digits.
fn push_fraction(out: &mut String, whole: u64, frac: u64, scale: u64) {
    out.push_str(&whole.to_string());
    if frac == 0 {
        return;
    }
    let width = scale.ilog10() as usize;
    let f = format!("{frac:0width$}");
    out.push('.');
    out.push_str(f.trim_end_matches('0'));
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let mut v = 0u32;
    for &c in b.get(at..at + n)? {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn two(a: u8, b: u8) -> Option<u32> {
    digits(&[a, b], 0, 2)
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the "days from civil" algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Go's `time.ParseDuration` syntax (`300ms`, `1.5h`, `2h45m`; a bare `0`; any other number
/// needs a unit), which Nomad accepts for `wait` and in driver configs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}")]
pub struct DurationError(pub String);

/// Parses a non-negative Go duration. Negative durations are accepted by Go; a negative wait
/// means "use the default", so they parse to zero.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(input.to_owned());
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(err());
    }
    let mut total_ns: u128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, rest) = s.split_at(int_len);
        let (frac_part, rest) = match rest.strip_prefix('.') {
            Some(r) => {
                let n = r.bytes().take_while(u8::is_ascii_digit).count();
                r.split_at(n)
            }
            None => ("", rest),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err());
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err())?
        };
        let mut value = whole.checked_mul(unit_ns).ok_or_else(err)?;
        // Fraction digits beyond what nanoseconds can hold do not change the result.
        let mut scale = unit_ns;
        for digit in frac_part.bytes().take(30) {
            scale /= 10;
            if scale == 0 {
                break;
            }
            value += u128::from(digit - b'0') * scale;
        }
        total_ns = total_ns.checked_add(value).ok_or_else(err)?;
        if total_ns > u128::from(u64::MAX) {
            return Err(err());
        }
        s = rest;
    }
    if negative {
        return Ok(Duration::ZERO);
    }
    Ok(Duration::from_nanos(
        u64::try_from(total_ns).map_err(|_| err())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zero_time_is_null_both_ways() {
        assert_eq!(serde_json::to_string(&Time::ZERO).unwrap(), "null");
        assert_eq!(serde_json::to_string(&Time::default()).unwrap(), "null");
        let t: Time = serde_json::from_str("null").unwrap();
        assert!(t.is_zero());
        let t: Time = serde_json::from_str("\"0001-01-01T00:00:00Z\"").unwrap();
        assert!(t.is_zero());
        assert_eq!(serde_json::to_string(&t).unwrap(), "null");
    }

    #[test]
    fn go_rfc3339nano_round_trips_byte_for_byte() {
        for s in [
            "2019-08-26T12:22:50.762716458+02:00",
            "2019-08-26T12:22:50.6873373+02:00",
            "2019-08-26T12:22:50+02:00",
            "2021-11-04T09:14:12.04996Z",
            "2018-04-11T23:33:48.7819898Z",
            "2022-02-18T19:36:54.421823-05:00",
            "1969-12-31T23:59:59.999999999Z",
            "2000-02-29T00:00:00Z",
        ] {
            let t = Time::parse_rfc3339(s).unwrap();
            assert_eq!(t.to_rfc3339(), s);
            let json = format!("\"{s}\"");
            let back: Time = serde_json::from_str(&json).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), json);
        }
    }

    #[test]
    fn offsets_name_the_same_instant() {
        let a = Time::parse_rfc3339("2019-08-26T12:22:50+02:00").unwrap();
        let b = Time::parse_rfc3339("2019-08-26T10:22:50Z").unwrap();
        assert_eq!(a.unix_nanos(), b.unix_nanos());
        assert_eq!(a.to_utc(), b);
        assert_eq!(b.unix_secs(), 1_566_814_970);
    }

    #[test]
    fn unix_nanos_convert() {
        let t = Time::from_unix_nanos(1_636_017_249_798_459_000);
        assert_eq!(t.to_rfc3339(), "2021-11-04T09:14:09.798459Z");
        assert_eq!(t.unix_nanos(), 1_636_017_249_798_459_000);
        assert_eq!(
            t.add_nanos(-798_459_000).to_rfc3339(),
            "2021-11-04T09:14:09Z"
        );
        assert_eq!(
            t.nanos_since(&Time::from_unix_nanos(1_636_017_249_000_000_000)),
            798_459_000
        );
        let st = t.to_system_time();
        assert_eq!(Time::from_system_time(st), t);
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "2019-08-26",
            "2019-13-01T00:00:00Z",
            "2019-02-30T00:00:00Z",
            "2019-08-26T25:00:00Z",
            "2019-08-26T12:22:50",
            "2019-08-26T12:22:50.Z",
            "2019-08-26T12:22:50+0200",
        ] {
            assert!(Time::parse_rfc3339(s).is_err(), "{s}");
        }
        assert!(serde_json::from_str::<Time>("42").is_err());
    }

    #[test]
    fn go_duration_strings() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (250_000_000, "250ms"),
            (1_500_000_000, "1.5s"),
            (5_000_000_000, "5s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (-5_000_000_000, "-5s"),
        ];
        for (n, s) in cases {
            assert_eq!(format_go_duration(n), s, "{n}");
        }
    }

    #[test]
    fn lenient_i64_reads_numbers_and_strings() {
        #[derive(Deserialize, Serialize)]
        struct D {
            #[serde(with = "lenient_i64")]
            d: i64,
        }
        for (input, want) in [
            (r#"{"d":5000000000}"#, 5_000_000_000),
            (r#"{"d":"5000000000"}"#, 5_000_000_000),
            (r#"{"d":null}"#, 0),
            (r#"{"d":5e9}"#, 5_000_000_000),
        ] {
            let v: D = serde_json::from_str(input).unwrap();
            assert_eq!(v.d, want);
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                r#"{"d":5000000000}"#.replace("5000000000", &want.to_string())
            );
        }
    }

    proptest! {
        #[test]
        fn rfc3339_round_trip(secs in -62_135_000_000i64..253_402_000_000, nanos in 0u32..1_000_000_000, off_min in -1439i32..1439) {
            let t = Time::from_unix(secs, i64::from(nanos)).with_offset(off_min * 60);
            let s = t.to_rfc3339();
            let back = Time::parse_rfc3339(&s).unwrap();
            prop_assert_eq!(back, t);
        }
    }
}
