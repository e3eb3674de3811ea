//! Go string-literal unquoting, as HCL1 applies it to quoted tokens: Go escapes (`\n`, `\x41`,
//! `\101`, `\u00e9`, ...), and in native HCL the text of `${...}` kept verbatim.

/// Unquotes the text between the quotes. `None` is Go's `invalid syntax`.
pub(super) fn unquote(body: &str, interpolation: bool) -> Option<String> {
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(c) = rest.chars().next() {
        if interpolation && rest.starts_with("${") {
            let (copied, after) = copy_interpolation(rest)?;
            out.extend_from_slice(copied.as_bytes());
            rest = after;
            continue;
        }
        match c {
            '\n' => return None,
            '\\' => {
                let (bytes, after) = escape(&rest[1..])?;
                out.extend_from_slice(&bytes);
                rest = after;
            }
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    // `\x` and octal escapes are bytes in Go; a sequence that is not UTF-8 becomes U+FFFD here.
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// `${ ... }` up to its matching brace, copied as is.
fn copy_interpolation(s: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((&s[..=i], &s[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// One escape after the backslash: its bytes and the rest of the text.
fn escape(s: &str) -> Option<(Vec<u8>, &str)> {
    let c = s.chars().next()?;
    let simple = match c {
        'a' => Some(0x07),
        'b' => Some(0x08),
        'f' => Some(0x0c),
        'n' => Some(b'\n'),
        'r' => Some(b'\r'),
        't' => Some(b'\t'),
        'v' => Some(0x0b),
        '\\' => Some(b'\\'),
        '"' => Some(b'"'),
        _ => None,
    };
    if let Some(b) = simple {
        return Some((vec![b], &s[1..]));
    }
    match c {
        '0'..='7' => {
            let digits = s.get(..3)?;
            let v = u32::from_str_radix(digits, 8).ok()?;
            let b = u8::try_from(v).ok()?;
            Some((vec![b], &s[3..]))
        }
        'x' => {
            let digits = s.get(1..3)?;
            if !digits.chars().all(|d| d.is_ascii_hexdigit()) {
                return None;
            }
            let b = u8::from_str_radix(digits, 16).ok()?;
            Some((vec![b], &s[3..]))
        }
        'u' | 'U' => {
            let n = if c == 'u' { 4 } else { 8 };
            let digits = s.get(1..=n)?;
            if !digits.chars().all(|d| d.is_ascii_hexdigit()) {
                return None;
            }
            let v = u32::from_str_radix(digits, 16).ok()?;
            let ch = char::from_u32(v)?;
            let mut buf = [0u8; 4];
            Some((ch.encode_utf8(&mut buf).as_bytes().to_vec(), &s[n + 1..]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_escapes() {
        assert_eq!(
            unquote(r"a\tb\n\\\x41\101\u00e9\U0001F600", true).as_deref(),
            Some("a\tb\n\\AA\u{e9}\u{1F600}")
        );
        assert_eq!(unquote(r"\500", true), None);
        assert_eq!(unquote(r"\/", false), None);
        assert_eq!(unquote(r"\ud800", false), None);
        assert_eq!(unquote(r"\x4", false), None);
    }

    #[test]
    fn interpolations_are_verbatim() {
        assert_eq!(
            unquote(r#"a${ "\n" }b"#, true).as_deref(),
            Some(r#"a${ "\n" }b"#)
        );
        assert_eq!(unquote("a${ {x} }b", true).as_deref(), Some("a${ {x} }b"));
        assert_eq!(unquote("${x", true), None);
        assert_eq!(unquote("${x}", false).as_deref(), Some("${x}"));
    }
}
