//! HCL values as the evaluator sees them (a small stand-in for go-cty), the conversions HCL
//! applies when a value meets a typed attribute, and the `interface{}` JSON shape Nomad gives
//! free-form values such as a task's `config`.
//!
//! Lists, sets and tuples are all [`Value::List`]; maps and objects are [`Value::Object`].
//! Numbers keep integers exact ([`Num::Int`]) and fall back to `f64`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// An HCL number.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    /// A float that is a whole number in `i64` range becomes an `Int`.
    pub fn from_f64(f: f64) -> Num {
        // 2^63 as f64; the cast below saturates, so stay strictly inside.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if f.fract() == 0.0 && f > -LIMIT && f < LIMIT {
            #[allow(clippy::cast_possible_truncation)]
            Num::Int(f as i64)
        } else {
            Num::Float(f)
        }
    }

    pub fn as_f64(self) -> f64 {
        match self {
            #[allow(clippy::cast_precision_loss)]
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    pub fn as_i64(self) -> Option<i64> {
        match self {
            Num::Int(i) => Some(i),
            Num::Float(_) => None,
        }
    }

    pub fn add(self, o: Num) -> Num {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => a
                .checked_add(b)
                .map_or_else(|| Num::Float(self.as_f64() + o.as_f64()), Num::Int),
            _ => Num::from_f64(self.as_f64() + o.as_f64()),
        }
    }

    pub fn sub(self, o: Num) -> Num {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => a
                .checked_sub(b)
                .map_or_else(|| Num::Float(self.as_f64() - o.as_f64()), Num::Int),
            _ => Num::from_f64(self.as_f64() - o.as_f64()),
        }
    }

    pub fn mul(self, o: Num) -> Num {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => a
                .checked_mul(b)
                .map_or_else(|| Num::Float(self.as_f64() * o.as_f64()), Num::Int),
            _ => Num::from_f64(self.as_f64() * o.as_f64()),
        }
    }

    pub fn div(self, o: Num) -> Num {
        Num::from_f64(self.as_f64() / o.as_f64())
    }

    pub fn rem(self, o: Num) -> Num {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) if b != 0 => Num::Int(a.wrapping_rem(b)),
            _ => Num::from_f64(self.as_f64() % o.as_f64()),
        }
    }

    pub fn neg(self) -> Num {
        match self {
            Num::Int(i) => i
                .checked_neg()
                .map_or_else(|| Num::Float(-self.as_f64()), Num::Int),
            Num::Float(f) => Num::Float(-f),
        }
    }

    pub fn cmp(self, o: Num) -> Ordering {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => a.cmp(&b),
            _ => self
                .as_f64()
                .partial_cmp(&o.as_f64())
                .unwrap_or(Ordering::Equal),
        }
    }
}

impl PartialEq for Num {
    fn eq(&self, other: &Num) -> bool {
        self.cmp(*other) == Ordering::Equal
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::Int(i) => write!(f, "{i}"),
            Num::Float(x) if x.is_infinite() && *x > 0.0 => f.write_str("+Inf"),
            Num::Float(x) if x.is_infinite() => f.write_str("-Inf"),
            Num::Float(x) => write!(f, "{x}"),
        }
    }
}

/// Parses a number the way cty converts a string to a number (decimal, optional sign,
/// fraction and exponent).
pub(crate) fn parse_number(s: &str) -> Option<Num> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(i) = t.parse::<i64>() {
        return Some(Num::Int(i));
    }
    let valid = t
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'));
    if !valid {
        return None;
    }
    t.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Num::from_f64)
}

/// A value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Number(Num),
    String(String),
    List(Vec<Value>),
    Object(BTreeMap<String, Value>),
}

impl Value {
    /// The type name HCL uses in messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "tuple",
            Value::Object(_) => "object",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// String conversion (cty `convert` to `string`); `Ok(None)` for null.
    pub fn to_str(&self) -> Result<Option<String>, String> {
        match self {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            Value::Number(n) => Ok(Some(n.to_string())),
            Value::Bool(b) => Ok(Some(b.to_string())),
            Value::List(_) | Value::Object(_) => Err("string required".to_owned()),
        }
    }

    /// Number conversion; strings holding a number convert.
    pub fn to_num(&self) -> Result<Option<Num>, String> {
        match self {
            Value::Null => Ok(None),
            Value::Number(n) => Ok(Some(*n)),
            Value::String(s) => parse_number(s)
                .map(Some)
                .ok_or_else(|| "a number is required".to_owned()),
            _ => Err("a number is required".to_owned()),
        }
    }

    /// Bool conversion; the strings `true` and `false` convert.
    pub fn to_bool(&self) -> Result<Option<bool>, String> {
        match self {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(*b)),
            Value::String(s) if s == "true" => Ok(Some(true)),
            Value::String(s) if s == "false" => Ok(Some(false)),
            _ => Err("a bool is required".to_owned()),
        }
    }

    /// `list(string)` conversion.
    pub fn to_str_list(&self) -> Result<Option<Vec<String>>, String> {
        match self {
            Value::Null => Ok(None),
            Value::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item.to_str() {
                        Ok(Some(s)) => out.push(s),
                        Ok(None) => {
                            return Err(format!("element {i}: null value is not allowed"));
                        }
                        Err(e) => return Err(format!("element {i}: {e}")),
                    }
                }
                Ok(Some(out))
            }
            _ => Err("list of string required".to_owned()),
        }
    }

    /// `map(string)` conversion.
    pub fn to_str_map(&self) -> Result<Option<BTreeMap<String, String>>, String> {
        match self {
            Value::Null => Ok(None),
            Value::Object(m) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    match v.to_str() {
                        Ok(Some(s)) => {
                            out.insert(k.clone(), s);
                        }
                        Ok(None) => {
                            return Err(format!("element {k:?}: null value is not allowed"));
                        }
                        Err(e) => return Err(format!("element {k:?}: {e}")),
                    }
                }
                Ok(Some(out))
            }
            _ => Err("map of string required".to_owned()),
        }
    }

    /// The JSON Nomad writes for a free-form (`interface{}`) value: whole numbers as
    /// integers, object keys sorted.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(Num::Int(i)) => serde_json::Value::from(*i),
            Value::Number(Num::Float(f)) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Object(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// The reverse of [`Value::to_json`] (for `jsondecode`).
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Number(Num::Int(i)),
                None => Value::Number(Num::from_f64(n.as_f64().unwrap_or(0.0))),
            },
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// HCL equality: same type and same value.
    pub fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::List(a), Value::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equals(y))
            }
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka == kb && va.equals(vb))
            }
            _ => self == other,
        }
    }
}

/// A variable's type constraint (`type = list(string)`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Type {
    Any,
    String,
    Number,
    Bool,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, Type>),
    Tuple(Vec<Type>),
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Any => f.write_str("any"),
            Type::String => f.write_str("string"),
            Type::Number => f.write_str("number"),
            Type::Bool => f.write_str("bool"),
            Type::List(t) => write!(f, "list of {t}"),
            Type::Set(t) => write!(f, "set of {t}"),
            Type::Map(t) => write!(f, "map of {t}"),
            Type::Object(_) => f.write_str("object"),
            Type::Tuple(_) => f.write_str("tuple"),
        }
    }
}

impl Type {
    /// Converts a value to this type, as cty's `convert.Convert` does for the cases a
    /// jobspec meets.
    pub fn convert(&self, v: &Value) -> Result<Value, String> {
        if v.is_null() {
            return Ok(Value::Null);
        }
        match self {
            Type::Any => Ok(v.clone()),
            Type::String => Ok(v.to_str()?.map_or(Value::Null, Value::String)),
            Type::Number => Ok(v.to_num()?.map_or(Value::Null, Value::Number)),
            Type::Bool => Ok(v.to_bool()?.map_or(Value::Null, Value::Bool)),
            Type::List(t) | Type::Set(t) => match v {
                Value::List(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        out.push(t.convert(item).map_err(|e| format!("element {i}: {e}"))?);
                    }
                    if matches!(self, Type::Set(_)) {
                        let mut dedup: Vec<Value> = Vec::new();
                        for item in out {
                            if !dedup.iter().any(|d| d.equals(&item)) {
                                dedup.push(item);
                            }
                        }
                        return Ok(Value::List(dedup));
                    }
                    Ok(Value::List(out))
                }
                _ => Err(format!("{self} required")),
            },
            Type::Map(t) => match v {
                Value::Object(m) => {
                    let mut out = BTreeMap::new();
                    for (k, item) in m {
                        out.insert(
                            k.clone(),
                            t.convert(item).map_err(|e| format!("element {k:?}: {e}"))?,
                        );
                    }
                    Ok(Value::Object(out))
                }
                _ => Err(format!("{self} required")),
            },
            Type::Object(fields) => match v {
                Value::Object(m) => {
                    let mut out = BTreeMap::new();
                    for (k, t) in fields {
                        let item = m
                            .get(k)
                            .ok_or_else(|| format!("attribute {k:?} is required"))?;
                        out.insert(
                            k.clone(),
                            t.convert(item)
                                .map_err(|e| format!("attribute {k:?}: {e}"))?,
                        );
                    }
                    Ok(Value::Object(out))
                }
                _ => Err("object required".to_owned()),
            },
            Type::Tuple(types) => match v {
                Value::List(items) if items.len() == types.len() => {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, (t, item)) in types.iter().zip(items).enumerate() {
                        out.push(t.convert(item).map_err(|e| format!("element {i}: {e}"))?);
                    }
                    Ok(Value::List(out))
                }
                Value::List(_) => Err(format!("tuple required with {} elements", types.len())),
                _ => Err("tuple required".to_owned()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_exact_and_print_like_cty() {
        assert_eq!(Num::Int(2).add(Num::Int(3)).to_string(), "5");
        assert_eq!(Num::Int(7).div(Num::Int(2)).to_string(), "3.5");
        assert_eq!(Num::Int(6).div(Num::Int(2)).as_i64(), Some(3));
        assert_eq!(parse_number("1e3").and_then(Num::as_i64), Some(1000));
        assert!(parse_number("12abc").is_none());
    }

    #[test]
    fn conversions() {
        assert_eq!(
            Value::Number(Num::Int(3)).to_str(),
            Ok(Some("3".to_owned()))
        );
        assert_eq!(
            Value::String("42".into())
                .to_num()
                .map(|n| n.and_then(Num::as_i64)),
            Ok(Some(42))
        );
        assert!(Value::String("x".into()).to_bool().is_err());
        let t = Type::List(Box::new(Type::Number));
        assert!(
            t.convert(&Value::List(vec![Value::String("x".into())]))
                .is_err()
        );
        assert_eq!(
            Type::Set(Box::new(Type::String)).convert(&Value::List(vec![
                Value::String("a".into()),
                Value::String("a".into())
            ])),
            Ok(Value::List(vec![Value::String("a".into())]))
        );
    }
}
