//! The HCL functions a jobspec may call: the commonly used part of Nomad's library
//! (`jobspec2/functions.go`, mostly go-cty's stdlib), with go-cty's semantics, plus the
//! `to*` conversion functions. `file` and friends read the file system only when the caller
//! allows it, as Nomad's `guardFS` does.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;

use crate::eval::FsAccess;
use crate::value::{Num, Type, Value};

/// Why a call failed.
#[derive(Debug)]
pub(crate) enum FuncError {
    Unknown,
    Arity {
        min: usize,
        max: Option<usize>,
        got: usize,
    },
    Failed(String),
}

type FResult = Result<Value, FuncError>;

/// Widths and indentation a jobspec may ask for: enough for any real use, and a jobspec
/// cannot make the parser allocate gigabytes with `format("%999999999d", 1)`.
const MAX_PAD: usize = 4096;

fn fail<T>(msg: impl Into<String>) -> Result<T, FuncError> {
    Err(FuncError::Failed(msg.into()))
}

/// `(min, max)` argument counts; `None` max is variadic.
fn arity(name: &str) -> Option<(usize, Option<usize>)> {
    Some(match name {
        "abs" | "ceil" | "floor" | "signum" | "chomp" | "lower" | "upper" | "title"
        | "trimspace" | "strrev" | "strlen" | "length" | "keys" | "values" | "flatten"
        | "distinct" | "compact" | "reverse" | "sort" | "jsonencode" | "jsondecode"
        | "base64encode" | "base64decode" | "urlencode" | "tostring" | "tonumber" | "tobool"
        | "tolist" | "toset" | "tomap" | "file" | "filebase64" | "fileexists" | "basename"
        | "dirname" | "abspath" | "pathexpand" => (1, Some(1)),
        "join" | "split" | "contains" | "element" | "index" | "trim" | "trimprefix"
        | "trimsuffix" | "indent" | "pow" | "log" | "zipmap" | "chunklist" | "parseint" => {
            (2, Some(2))
        }
        "replace" | "regex_replace" | "substr" | "slice" => (3, Some(3)),
        "lookup" => (2, Some(3)),
        "range" => (1, Some(3)),
        "format" | "formatlist" => (1, None),
        "coalesce" | "coalescelist" | "concat" | "merge" | "min" | "max" | "setunion"
        | "setintersection" => (0, None),
        _ => return None,
    })
}

/// Calls a function by name.
pub(crate) fn call(name: &str, args: Vec<Value>, fs: &FsAccess) -> FResult {
    let Some((min, max)) = arity(name) else {
        return Err(FuncError::Unknown);
    };
    if args.len() < min || max.is_some_and(|m| args.len() > m) {
        return Err(FuncError::Arity {
            min,
            max,
            got: args.len(),
        });
    }
    let a = Args(args);
    match name {
        // Numbers.
        "abs" => Ok(num(if a.num(0)?.as_f64() < 0.0 {
            a.num(0)?.neg()
        } else {
            a.num(0)?
        })),
        "ceil" => Ok(num(Num::from_f64(a.num(0)?.as_f64().ceil()))),
        "floor" => Ok(num(Num::from_f64(a.num(0)?.as_f64().floor()))),
        "signum" => Ok(num(Num::Int(match a.num(0)?.as_f64() {
            x if x > 0.0 => 1,
            x if x < 0.0 => -1,
            _ => 0,
        }))),
        "pow" => Ok(num(Num::from_f64(
            a.num(0)?.as_f64().powf(a.num(1)?.as_f64()),
        ))),
        "log" => Ok(num(Num::from_f64(
            a.num(0)?.as_f64().ln() / a.num(1)?.as_f64().ln(),
        ))),
        "min" | "max" => {
            if a.0.is_empty() {
                return fail("must pass at least one number");
            }
            let mut best = a.num(0)?;
            for i in 1..a.0.len() {
                let n = a.num(i)?;
                let better = if name == "min" {
                    n.cmp(best).is_lt()
                } else {
                    n.cmp(best).is_gt()
                };
                if better {
                    best = n;
                }
            }
            Ok(num(best))
        }
        "parseint" => {
            let s = a.str(0)?;
            let base = a.num(1)?.as_i64().unwrap_or(0);
            let Ok(base) = u32::try_from(base) else {
                return fail("base must be a whole number between 2 and 62");
            };
            if !(2..=36).contains(&base) {
                return fail("base must be a whole number between 2 and 36");
            }
            i64::from_str_radix(&s, base)
                .map(|i| num(Num::Int(i)))
                .or_else(|_| fail(format!("cannot parse {s:?} as a base {base} integer")))
        }
        "range" => {
            let (start, limit, step) = match a.0.len() {
                1 => (0.0, a.num(0)?.as_f64(), 1.0),
                2 => (a.num(0)?.as_f64(), a.num(1)?.as_f64(), 1.0),
                _ => (a.num(0)?.as_f64(), a.num(1)?.as_f64(), a.num(2)?.as_f64()),
            };
            if step == 0.0 {
                return fail("step must not be zero");
            }
            let mut out = Vec::new();
            let mut x = start;
            while (step > 0.0 && x < limit) || (step < 0.0 && x > limit) {
                if out.len() >= 1024 {
                    return fail(
                        "more than 1024 values were generated; either decrease the difference between start and end or use a smaller step",
                    );
                }
                out.push(num(Num::from_f64(x)));
                x += step;
            }
            Ok(Value::List(out))
        }

        // Strings.
        "lower" => Ok(Value::String(a.str(0)?.to_lowercase())),
        "upper" => Ok(Value::String(a.str(0)?.to_uppercase())),
        "title" => Ok(Value::String(title(&a.str(0)?))),
        "trimspace" => Ok(Value::String(a.str(0)?.trim().to_owned())),
        "chomp" => Ok(Value::String(
            a.str(0)?.trim_end_matches(['\r', '\n']).to_owned(),
        )),
        "strrev" => Ok(Value::String(a.str(0)?.chars().rev().collect())),
        "strlen" => Ok(num(Num::Int(
            i64::try_from(a.str(0)?.chars().count()).unwrap_or(i64::MAX),
        ))),
        "trim" => {
            let cut: Vec<char> = a.str(1)?.chars().collect();
            Ok(Value::String(
                a.str(0)?.trim_matches(|c| cut.contains(&c)).to_owned(),
            ))
        }
        "trimprefix" => {
            let s = a.str(0)?;
            let p = a.str(1)?;
            Ok(Value::String(s.strip_prefix(&p).unwrap_or(&s).to_owned()))
        }
        "trimsuffix" => {
            let s = a.str(0)?;
            let p = a.str(1)?;
            Ok(Value::String(s.strip_suffix(&p).unwrap_or(&s).to_owned()))
        }
        "indent" => {
            let n = usize::try_from(a.num(0)?.as_i64().unwrap_or(0)).unwrap_or(0);
            if n > MAX_PAD {
                return fail(format!("indentation {n} is too large"));
            }
            let pad = " ".repeat(n);
            let s = a.str(1)?;
            Ok(Value::String(s.replace('\n', &format!("\n{pad}"))))
        }
        "substr" => {
            let s: Vec<char> = a.str(0)?.chars().collect();
            let len = i64::try_from(s.len()).unwrap_or(i64::MAX);
            let mut offset = a.num(1)?.as_i64().unwrap_or(0);
            let mut length = a.num(2)?.as_i64().unwrap_or(-1);
            if offset < 0 {
                offset += len;
            }
            if offset < 0 || offset > len {
                return fail("offset out of range");
            }
            if length < 0 || offset + length > len {
                length = len - offset;
            }
            let start = usize::try_from(offset).unwrap_or(0);
            let end = usize::try_from(offset + length).unwrap_or(start);
            Ok(Value::String(s[start..end].iter().collect()))
        }
        "replace" => Ok(Value::String(a.str(0)?.replace(&a.str(1)?, &a.str(2)?))),
        "regex_replace" => {
            let re = regex::Regex::new(&a.str(1)?)
                .or_else(|e| fail(format!("invalid regular expression: {e}")))?;
            Ok(Value::String(
                re.replace_all(&a.str(0)?, a.str(2)?.as_str()).into_owned(),
            ))
        }
        "split" => {
            let sep = a.str(0)?;
            let s = a.str(1)?;
            if s.is_empty() {
                return Ok(Value::List(Vec::new()));
            }
            Ok(Value::List(
                s.split(sep.as_str())
                    .map(|p| Value::String(p.to_owned()))
                    .collect(),
            ))
        }
        "join" => {
            let sep = a.str(0)?;
            let items = a.str_list(1)?;
            Ok(Value::String(items.join(&sep)))
        }
        "format" => Ok(Value::String(format_verbs(&a.str(0)?, &a.0[1..])?)),
        "formatlist" => formatlist(&a),
        "urlencode" => Ok(Value::String(urlencode(&a.str(0)?))),
        "base64encode" => Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(a.str(0)?),
        )),
        "base64decode" => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(a.str(0)?)
                .or_else(|e| fail(format!("failed to decode base64 data: {e}")))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .or_else(|_| fail("the result of decoding the provided string is not valid UTF-8"))
        }

        // Collections.
        "length" => match &a.0[0] {
            Value::List(l) => Ok(count(l.len())),
            Value::Object(m) => Ok(count(m.len())),
            Value::String(s) => Ok(count(s.chars().count())),
            other => fail(format!(
                "collection must be a list, a map or a tuple, not {}",
                other.type_name()
            )),
        },
        "concat" => {
            let mut out = Vec::new();
            for i in 0..a.0.len() {
                out.extend(a.list(i)?);
            }
            Ok(Value::List(out))
        }
        "contains" => {
            let l = a.list(0)?;
            Ok(Value::Bool(l.iter().any(|v| v.equals(&a.0[1]))))
        }
        "element" => {
            let l = a.list(0)?;
            if l.is_empty() {
                return fail("cannot use element function with an empty list");
            }
            let i = a.num(1)?.as_i64().unwrap_or(0);
            if i < 0 {
                return fail("cannot use element function with a negative index");
            }
            let idx = usize::try_from(i).unwrap_or(0) % l.len();
            Ok(l[idx].clone())
        }
        "index" => {
            let l = a.list(0)?;
            l.iter()
                .position(|v| v.equals(&a.0[1]))
                .map(count)
                .map_or_else(|| fail("item not found"), Ok)
        }
        "distinct" => {
            let mut out: Vec<Value> = Vec::new();
            for v in a.list(0)? {
                if !out.iter().any(|o| o.equals(&v)) {
                    out.push(v);
                }
            }
            Ok(Value::List(out))
        }
        "compact" => Ok(Value::List(
            a.str_list(0)?
                .into_iter()
                .filter(|s| !s.is_empty())
                .map(Value::String)
                .collect(),
        )),
        "reverse" => {
            let mut l = a.list(0)?;
            l.reverse();
            Ok(Value::List(l))
        }
        "sort" => {
            let mut l = a.str_list(0)?;
            l.sort();
            Ok(Value::List(l.into_iter().map(Value::String).collect()))
        }
        "flatten" => {
            fn flat(v: Vec<Value>, out: &mut Vec<Value>) {
                for item in v {
                    match item {
                        Value::List(inner) => flat(inner, out),
                        other => out.push(other),
                    }
                }
            }
            let mut out = Vec::new();
            flat(a.list(0)?, &mut out);
            Ok(Value::List(out))
        }
        "chunklist" => {
            let l = a.list(0)?;
            let size = usize::try_from(a.num(1)?.as_i64().unwrap_or(0)).unwrap_or(0);
            if size == 0 {
                return Ok(Value::List(vec![Value::List(l)]));
            }
            Ok(Value::List(
                l.chunks(size).map(|c| Value::List(c.to_vec())).collect(),
            ))
        }
        "slice" => {
            let l = a.list(0)?;
            let start = usize::try_from(a.num(1)?.as_i64().unwrap_or(-1));
            let end = usize::try_from(a.num(2)?.as_i64().unwrap_or(-1));
            match (start, end) {
                (Ok(s), Ok(e)) if s <= e && e <= l.len() => Ok(Value::List(l[s..e].to_vec())),
                _ => fail(
                    "the start and end indices must be within the list and start must not be greater than end",
                ),
            }
        }
        "keys" => Ok(Value::List(
            a.object(0)?.into_keys().map(Value::String).collect(),
        )),
        "values" => Ok(Value::List(a.object(0)?.into_values().collect())),
        "lookup" => {
            let m = a.object(0)?;
            let k = a.str(1)?;
            match m.get(&k) {
                Some(v) => Ok(v.clone()),
                None if a.0.len() == 3 => Ok(a.0[2].clone()),
                None => fail(format!("the given key {k:?} was not found in the map")),
            }
        }
        "merge" => {
            let mut out = BTreeMap::new();
            for i in 0..a.0.len() {
                if a.0[i].is_null() {
                    continue;
                }
                out.extend(a.object(i)?);
            }
            Ok(Value::Object(out))
        }
        "zipmap" => {
            let keys = a.str_list(0)?;
            let values = a.list(1)?;
            if keys.len() != values.len() {
                return fail("number of keys and values must be equal");
            }
            Ok(Value::Object(keys.into_iter().zip(values).collect()))
        }
        "coalesce" => {
            a.0.iter()
                .find(|v| !v.is_null() && **v != Value::String(String::new()))
                .cloned()
                .map_or_else(|| fail("no non-null, non-empty-string arguments"), Ok)
        }
        "coalescelist" => {
            a.0.iter()
                .find(|v| matches!(v, Value::List(l) if !l.is_empty()))
                .cloned()
                .map_or_else(|| fail("no non-null arguments"), Ok)
        }
        "setunion" => {
            let mut out: Vec<Value> = Vec::new();
            for i in 0..a.0.len() {
                for v in a.list(i)? {
                    if !out.iter().any(|o| o.equals(&v)) {
                        out.push(v);
                    }
                }
            }
            Ok(Value::List(out))
        }
        "setintersection" => {
            if a.0.is_empty() {
                return Ok(Value::List(Vec::new()));
            }
            let mut out = a.list(0)?;
            for i in 1..a.0.len() {
                let other = a.list(i)?;
                out.retain(|v| other.iter().any(|o| o.equals(v)));
            }
            Ok(Value::List(out))
        }

        // Encoding and conversion.
        "jsonencode" => serde_json::to_string(&a.0[0].to_json())
            .map(Value::String)
            .or_else(|e| fail(e.to_string())),
        "jsondecode" => serde_json::from_str::<serde_json::Value>(&a.str(0)?)
            .map(|j| Value::from_json(&j))
            .or_else(|e| fail(e.to_string())),
        "tostring" => convert(&a.0[0], &Type::String),
        "tonumber" => convert(&a.0[0], &Type::Number),
        "tobool" => convert(&a.0[0], &Type::Bool),
        "tolist" => convert(&a.0[0], &Type::List(Box::new(Type::Any))),
        "toset" => convert(&a.0[0], &Type::Set(Box::new(Type::Any))),
        "tomap" => convert(&a.0[0], &Type::Map(Box::new(Type::Any))),

        // The file system, when allowed.
        "file" | "filebase64" | "fileexists" | "basename" | "dirname" | "abspath"
        | "pathexpand" => {
            if !fs.allowed {
                return fail("filesystem function disabled");
            }
            file_function(name, &a.str(0)?, fs)
        }
        _ => Err(FuncError::Unknown),
    }
}

fn num(n: Num) -> Value {
    Value::Number(n)
}

fn count(n: usize) -> Value {
    Value::Number(Num::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

fn convert(v: &Value, t: &Type) -> FResult {
    t.convert(v)
        .or_else(|e| fail(format!("cannot convert {} to {t}: {e}", v.type_name())))
}

/// Positional argument accessors with go-cty's parameter type errors.
struct Args(Vec<Value>);

impl Args {
    fn str(&self, i: usize) -> Result<String, FuncError> {
        match self.0.get(i).map(Value::to_str) {
            Some(Ok(Some(s))) => Ok(s),
            Some(Ok(None)) => fail(format!("argument {} must not be null", i + 1)),
            _ => fail(format!(
                "invalid value for argument {}: string required",
                i + 1
            )),
        }
    }

    fn num(&self, i: usize) -> Result<Num, FuncError> {
        match self.0.get(i).map(Value::to_num) {
            Some(Ok(Some(n))) => Ok(n),
            Some(Ok(None)) => fail(format!("argument {} must not be null", i + 1)),
            _ => fail(format!(
                "invalid value for argument {}: number required",
                i + 1
            )),
        }
    }

    fn list(&self, i: usize) -> Result<Vec<Value>, FuncError> {
        match self.0.get(i) {
            Some(Value::List(l)) => Ok(l.clone()),
            _ => fail(format!(
                "invalid value for argument {}: list required",
                i + 1
            )),
        }
    }

    fn str_list(&self, i: usize) -> Result<Vec<String>, FuncError> {
        match self.0.get(i).map(Value::to_str_list) {
            Some(Ok(Some(l))) => Ok(l),
            Some(Err(e)) => fail(format!("invalid value for argument {}: {e}", i + 1)),
            _ => fail(format!(
                "invalid value for argument {}: list of string required",
                i + 1
            )),
        }
    }

    fn object(&self, i: usize) -> Result<BTreeMap<String, Value>, FuncError> {
        match self.0.get(i) {
            Some(Value::Object(m)) => Ok(m.clone()),
            _ => fail(format!(
                "invalid value for argument {}: map required",
                i + 1
            )),
        }
    }
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_word_start = true;
    for c in s.chars() {
        if at_word_start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_word_start = !c.is_alphanumeric();
    }
    out
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// go-cty's `format`: `%s %d %f %t %q %v %x %X %o %b %e %%`, with flags, width and
/// precision for the numeric verbs.
fn format_verbs(fmt: &str, args: &[Value]) -> Result<String, FuncError> {
    let mut out = String::new();
    let mut next = 0usize;
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek() {
            if matches!(f, '-' | '+' | ' ' | '0' | '#') {
                flags.push(f);
                chars.next();
            } else {
                break;
            }
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() {
                width.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_digit() {
                    p.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            let p: usize = p.parse().unwrap_or(0);
            if p > MAX_PAD {
                return fail(format!("precision {p} is too large"));
            }
            precision = Some(p);
        }
        let Some(verb) = chars.next() else {
            return fail("invalid format string: unterminated verb");
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            return fail(format!("not enough arguments for %{verb} at {}", out.len()));
        };
        next += 1;
        let body = match verb {
            's' => arg.to_str().ok().flatten().ok_or_else(|| {
                FuncError::Failed(format!(
                    "unsupported value for \"%s\" at {}: string required",
                    out.len()
                ))
            })?,
            'q' => format!(
                "{:?}",
                arg.to_str()
                    .ok()
                    .flatten()
                    .ok_or_else(|| FuncError::Failed(
                        "unsupported value for \"%q\": string required".to_owned()
                    ))?
            ),
            'v' => match arg {
                Value::String(s) => s.clone(),
                Value::Null => "null".to_owned(),
                Value::List(_) | Value::Object(_) => {
                    serde_json::to_string(&arg.to_json()).unwrap_or_default()
                }
                other => other.to_str().ok().flatten().unwrap_or_default(),
            },
            't' => match arg.to_bool() {
                Ok(Some(b)) => b.to_string(),
                _ => return fail("unsupported value for \"%t\": bool required"),
            },
            'd' | 'x' | 'X' | 'o' | 'b' => {
                let n = match arg.to_num() {
                    Ok(Some(n)) => n,
                    _ => {
                        return fail(format!(
                            "unsupported value for \"%{verb}\": number required"
                        ));
                    }
                };
                let Some(i) = n.as_i64() else {
                    return fail(format!(
                        "unsupported value for \"%{verb}\": integer required"
                    ));
                };
                let mut s = match verb {
                    'x' => format!("{i:x}"),
                    'X' => format!("{i:X}"),
                    'o' => format!("{i:o}"),
                    'b' => format!("{i:b}"),
                    _ => i.to_string(),
                };
                if flags.contains('+') && i >= 0 {
                    s.insert(0, '+');
                }
                s
            }
            'f' | 'e' | 'g' => {
                let n = match arg.to_num() {
                    Ok(Some(n)) => n.as_f64(),
                    _ => {
                        return fail(format!(
                            "unsupported value for \"%{verb}\": number required"
                        ));
                    }
                };
                let mut s = match (verb, precision) {
                    ('e', Some(p)) => format!("{n:.p$e}"),
                    ('e', None) => format!("{n:.6e}"),
                    ('g', _) => Num::from_f64(n).to_string(),
                    (_, Some(p)) => format!("{n:.p$}"),
                    (_, None) => format!("{n:.6}"),
                };
                if flags.contains('+') && n >= 0.0 {
                    s.insert(0, '+');
                }
                s
            }
            other => return fail(format!("unrecognized format verb {other:?}")),
        };
        let width: usize = if width.is_empty() {
            0
        } else {
            width.parse().unwrap_or(usize::MAX)
        };
        if width > MAX_PAD {
            return fail(format!("width {width} is too large"));
        }
        let len = body.chars().count();
        if len < width {
            let pad = width - len;
            if flags.contains('-') {
                out.push_str(&body);
                out.push_str(&" ".repeat(pad));
            } else if flags.contains('0') && matches!(verb, 'd' | 'f' | 'e' | 'x' | 'X') {
                let (sign, digits) = match body.strip_prefix(['-', '+']) {
                    Some(rest) => (&body[..1], rest),
                    None => ("", body.as_str()),
                };
                out.push_str(sign);
                out.push_str(&"0".repeat(pad));
                out.push_str(digits);
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(&body);
            }
        } else {
            out.push_str(&body);
        }
    }
    if next < args.len() {
        return fail(format!(
            "too many arguments; only {next} used by format string"
        ));
    }
    Ok(out)
}

fn formatlist(a: &Args) -> FResult {
    let fmt = a.str(0)?;
    let rest = &a.0[1..];
    let n = rest
        .iter()
        .filter_map(|v| match v {
            Value::List(l) => Some(l.len()),
            _ => None,
        })
        .max();
    let Some(n) = n else {
        return Ok(Value::List(vec![Value::String(format_verbs(&fmt, rest)?)]));
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut row = Vec::with_capacity(rest.len());
        for v in rest {
            match v {
                Value::List(l) if l.len() == n => row.push(l[i].clone()),
                Value::List(_) => return fail("all list arguments must have the same length"),
                other => row.push(other.clone()),
            }
        }
        out.push(Value::String(format_verbs(&fmt, &row)?));
    }
    Ok(Value::List(out))
}

fn file_function(name: &str, arg: &str, fs: &FsAccess) -> FResult {
    let expanded = if let Some(rest) = arg.strip_prefix("~/") {
        std::env::var_os("HOME").map_or_else(|| arg.into(), |h| Path::new(&h).join(rest))
    } else {
        Path::new(arg).to_path_buf()
    };
    let resolved = if expanded.is_absolute() {
        expanded.clone()
    } else {
        fs.base_dir.join(&expanded)
    };
    match name {
        "file" => std::fs::read_to_string(&resolved)
            .map(Value::String)
            .or_else(|e| fail(format!("failed to read {arg:?}: {e}"))),
        "filebase64" => std::fs::read(&resolved)
            .map(|b| Value::String(base64::engine::general_purpose::STANDARD.encode(b)))
            .or_else(|e| fail(format!("failed to read {arg:?}: {e}"))),
        "fileexists" => Ok(Value::Bool(resolved.is_file())),
        "basename" => Ok(Value::String(
            Path::new(arg)
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| ".".to_owned()),
        )),
        "dirname" => Ok(Value::String(
            Path::new(arg)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| ".".to_owned()),
        )),
        "abspath" => Ok(Value::String(
            std::path::absolute(&expanded)
                .map(|p| p.to_string_lossy().into_owned())
                .or_else(|e| fail(e.to_string()))?,
        )),
        "pathexpand" => Ok(Value::String(expanded.to_string_lossy().into_owned())),
        _ => Err(FuncError::Unknown),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::path::PathBuf;

    fn fs() -> FsAccess {
        FsAccess {
            allowed: false,
            base_dir: PathBuf::from("."),
        }
    }

    fn s(v: &str) -> Value {
        Value::String(v.to_owned())
    }

    fn n(i: i64) -> Value {
        Value::Number(Num::Int(i))
    }

    #[test]
    fn strings() {
        assert_eq!(call("upper", vec![s("ab")], &fs()).unwrap(), s("AB"));
        assert_eq!(
            call(
                "format",
                vec![s("%s-%03d-%.2f-%v"), s("x"), n(7), n(2), n(1)],
                &fs()
            )
            .unwrap(),
            s("x-007-2.00-1")
        );
        assert_eq!(
            call("join", vec![s(","), Value::List(vec![s("a"), n(1)])], &fs()).unwrap(),
            s("a,1")
        );
        assert_eq!(
            call("split", vec![s(","), s("a,b")], &fs()).unwrap(),
            Value::List(vec![s("a"), s("b")])
        );
        assert_eq!(
            call("replace", vec![s("a.b.c"), s("."), s("-")], &fs()).unwrap(),
            s("a-b-c")
        );
        assert_eq!(call("trimspace", vec![s("  x \n")], &fs()).unwrap(), s("x"));
        assert_eq!(
            call("substr", vec![s("hello"), n(1), n(3)], &fs()).unwrap(),
            s("ell")
        );
        assert_eq!(
            call("title", vec![s("hello world")], &fs()).unwrap(),
            s("Hello World")
        );
    }

    #[test]
    fn collections_and_numbers() {
        assert_eq!(
            call("length", vec![Value::List(vec![n(1), n(2)])], &fs()).unwrap(),
            n(2)
        );
        assert_eq!(call("max", vec![n(1), n(5), n(3)], &fs()).unwrap(), n(5));
        assert_eq!(call("min", vec![n(4), s("2")], &fs()).unwrap(), n(2));
        assert_eq!(
            call("coalesce", vec![Value::Null, s(""), s("x")], &fs()).unwrap(),
            s("x")
        );
        assert_eq!(
            call(
                "concat",
                vec![Value::List(vec![n(1)]), Value::List(vec![n(2)])],
                &fs()
            )
            .unwrap(),
            Value::List(vec![n(1), n(2)])
        );
        assert_eq!(
            call(
                "jsonencode",
                vec![Value::Object(BTreeMap::from([
                    ("b".into(), n(1)),
                    ("a".into(), s("x"))
                ]))],
                &fs()
            )
            .unwrap(),
            s(r#"{"a":"x","b":1}"#)
        );
        assert_eq!(call("tonumber", vec![s("12")], &fs()).unwrap(), n(12));
        assert_eq!(call("tostring", vec![n(12)], &fs()).unwrap(), s("12"));
        assert!(matches!(
            call("nope", vec![], &fs()),
            Err(FuncError::Unknown)
        ));
        assert!(matches!(
            call("upper", vec![], &fs()),
            Err(FuncError::Arity { .. })
        ));
    }

    #[test]
    fn widths_are_bounded() {
        assert!(matches!(
            call("format", vec![s("%999999999999d"), n(1)], &fs()),
            Err(FuncError::Failed(_))
        ));
        assert!(matches!(
            call("indent", vec![n(1_000_000_000), s("a\nb")], &fs()),
            Err(FuncError::Failed(_))
        ));
    }

    #[test]
    fn file_functions_need_permission() {
        match call("file", vec![s("/etc/hostname")], &fs()) {
            Err(FuncError::Failed(m)) => assert_eq!(m, "filesystem function disabled"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
