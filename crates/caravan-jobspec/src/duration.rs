//! Go's `time.ParseDuration` (`"30s"`, `"1h30m"`, `"1.5h"`, `"300ms"`), which Nomad uses for
//! every duration in a jobspec, with Go's error texts.

/// Nanoseconds per unit.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Parses a Go duration string into nanoseconds.
pub(crate) fn parse_go_duration(orig: &str) -> Result<i64, String> {
    let quoted = format!("{orig:?}");
    let invalid = || format!("time: invalid duration {quoted}");
    let mut s = orig;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        // The number: digits, optionally a fraction.
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(invalid());
            }
        } else if int_part.is_empty() {
            return Err(invalid());
        }
        // The unit: everything up to the next digit or dot.
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {quoted}"));
        }
        let per = unit_nanos(unit)
            .ok_or_else(|| format!("time: unknown unit {unit:?} in duration {quoted}"))?;
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut value = whole.checked_mul(per).ok_or_else(invalid)?;
        if !frac_part.is_empty() {
            // Scale the fraction exactly: digits / 10^len * per, truncated as Go does.
            let digits = &frac_part[..frac_part.len().min(30)];
            let numer: u128 = digits.parse().map_err(|_| invalid())?;
            let denom = 10u128.checked_pow(u32::try_from(digits.len()).map_err(|_| invalid())?);
            if let Some(denom) = denom {
                value = value
                    .checked_add(numer.checked_mul(per).ok_or_else(invalid)? / denom)
                    .ok_or_else(invalid)?;
            }
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > i64::MAX as u128 + u128::from(neg) {
            return Err(invalid());
        }
    }
    let total = i128::try_from(total).map_err(|_| invalid())?;
    let signed = if neg { -total } else { total };
    i64::try_from(signed).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30s"), Ok(30 * S));
        assert_eq!(parse_go_duration("1h30m"), Ok(5400 * S));
        assert_eq!(parse_go_duration("10m"), Ok(600 * S));
        assert_eq!(parse_go_duration("1.5h"), Ok(5400 * S));
        assert_eq!(parse_go_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_go_duration("2us"), Ok(2000));
        assert_eq!(parse_go_duration("-1s"), Ok(-S));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration(".5s"), Ok(S / 2));
    }

    #[test]
    fn go_errors() {
        assert_eq!(
            parse_go_duration("abc"),
            Err("time: invalid duration \"abc\"".to_owned())
        );
        assert_eq!(
            parse_go_duration("10"),
            Err("time: missing unit in duration \"10\"".to_owned())
        );
        assert_eq!(
            parse_go_duration("10x"),
            Err("time: unknown unit \"x\" in duration \"10x\"".to_owned())
        );
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("9999999999h").is_err());
    }
}
