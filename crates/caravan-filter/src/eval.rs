//! Evaluates a parsed expression against a JSON document.
//!
//! go-bexpr walks Go structs; here the document is the JSON Nomad would serialize, so its rules
//! are adapted: a missing key, a `null`, an out-of-range index or a step into a scalar are all
//! "missing", and the operators give go-bexpr's fixed answers for a missing map key. Literals are
//! coerced to the JSON type of the field they are compared with.

use std::rc::Rc;

use serde_json::{Map, Number, Value};

use crate::Schema;
use crate::ast::{Binding, Collection, Expr, Match, MatchOp, Quantifier, Selector};
use crate::error::EvalError;

/// Evaluates `expr` against the root document `doc`, whose maps `schema` names.
pub(crate) fn evaluate(expr: &Expr, doc: &Value, schema: &dyn Schema) -> Result<bool, EvalError> {
    let mut scope = Scope {
        root: doc,
        schema,
        bindings: Vec::new(),
    };
    scope.eval(expr)
}

/// Where a value sits in the document's shape: struct field names, with `*` for array elements
/// and map values (what [`Schema::is_map`] is asked about).
type ShapePath = Rc<Vec<String>>;

/// What a name bound by `any`/`all` stands for inside the braces.
#[derive(Clone)]
enum Bound<'d> {
    /// An element or value in the document; selectors can walk into it.
    Value(&'d Value, ShapePath),
    /// An object key; a string with nothing below it.
    Key(&'d str),
    /// An array index; a number with nothing below it.
    Index(usize),
}

/// A resolved, non-null field.
#[derive(Clone, Copy)]
enum Datum<'d> {
    Bool(bool),
    Number(Num),
    String(&'d str),
    Array(&'d [Value]),
    Object(&'d Map<String, Value>),
}

/// A JSON number, kept exact when it is an integer so large indexes and timestamps
/// (`SubmitTime` is nanoseconds) compare without rounding.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn from_json(n: &Number) -> Num {
        if let Some(i) = n.as_i64() {
            Num::Int(i128::from(i))
        } else if let Some(u) = n.as_u64() {
            Num::Int(i128::from(u))
        } else {
            Num::Float(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    /// Only used when one side is already a float, so the rounding is what the user asked for.
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    fn equals(self, other: Num) -> bool {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a == b,
            (a, b) => a.as_f64() == b.as_f64(),
        }
    }
}

impl Datum<'_> {
    fn of(value: &Value) -> Option<Datum<'_>> {
        match value {
            Value::Null => None,
            Value::Bool(b) => Some(Datum::Bool(*b)),
            Value::Number(n) => Some(Datum::Number(Num::from_json(n))),
            Value::String(s) => Some(Datum::String(s)),
            Value::Array(a) => Some(Datum::Array(a)),
            Value::Object(o) => Some(Datum::Object(o)),
        }
    }

    /// The type name used in error messages.
    fn kind(self) -> &'static str {
        match self {
            Datum::Bool(_) => "bool",
            Datum::Number(_) => "number",
            Datum::String(_) => "string",
            Datum::Array(_) => "array",
            Datum::Object(_) => "object",
        }
    }
}

struct Scope<'d, 'f, 's> {
    root: &'d Value,
    schema: &'s dyn Schema,
    /// Innermost last, so inner bindings shadow outer ones and document fields.
    bindings: Vec<(&'f str, Bound<'d>)>,
}

impl<'d, 'f> Scope<'d, 'f, '_> {
    fn eval(&mut self, expr: &'f Expr) -> Result<bool, EvalError> {
        match expr {
            Expr::Or(operands) => {
                for operand in operands {
                    if self.eval(operand)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Expr::And(operands) => {
                for operand in operands {
                    if !self.eval(operand)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Expr::Not(operand) => Ok(!self.eval(operand)?),
            Expr::Match(m) => self.eval_match(m),
            Expr::Collection(c) => self.eval_collection(c),
        }
    }

    /// Follows `selector` from the binding it starts with, or from the root. `None` means
    /// missing or null; a field a struct does not have is an error, as in go-bexpr.
    fn resolve(&self, selector: &Selector) -> Result<Option<(Datum<'d>, ShapePath)>, EvalError> {
        let segments = &selector.0;
        let bound = segments.first().and_then(|first| {
            self.bindings
                .iter()
                .rev()
                .find(|(name, _)| *name == first.as_str())
                .map(|(_, bound)| bound.clone())
        });
        let (mut value, rest, mut shape) = match bound {
            None => (self.root, &segments[..], Vec::new()),
            Some(Bound::Value(value, shape)) => (value, &segments[1..], shape.as_ref().clone()),
            // Keys and indexes are scalars: nothing can be selected below them.
            Some(Bound::Key(key)) => {
                let datum = segments[1..].is_empty().then_some(Datum::String(key));
                return Ok(datum.map(|d| (d, Rc::new(Vec::new()))));
            }
            Some(Bound::Index(i)) => {
                let Ok(i) = i128::try_from(i) else {
                    return Ok(None);
                };
                let datum = segments[1..]
                    .is_empty()
                    .then_some(Datum::Number(Num::Int(i)));
                return Ok(datum.map(|d| (d, Rc::new(Vec::new()))));
            }
        };
        for (part, segment) in rest.iter().enumerate() {
            value = match value {
                Value::Object(map) if self.schema.is_map(&shape) => {
                    shape.push("*".to_owned());
                    match map.get(segment) {
                        Some(v) => v,
                        None => return Ok(None),
                    }
                }
                Value::Object(map) => match map.get(segment) {
                    Some(v) => {
                        shape.push(segment.clone());
                        v
                    }
                    None => {
                        return Err(EvalError::NoSuchField {
                            pointer: format!("/{}", rest.join("/")),
                            part,
                            field: segment.clone(),
                        });
                    }
                },
                Value::Array(items) => {
                    shape.push("*".to_owned());
                    match parse_index(segment).and_then(|i| items.get(i)) {
                        Some(v) => v,
                        None => return Ok(None),
                    }
                }
                _ => return Ok(None),
            };
        }
        Ok(Datum::of(value).map(|d| (d, Rc::new(shape))))
    }

    fn eval_match(&self, m: &Match) -> Result<bool, EvalError> {
        let Some((datum, _)) = self.resolve(&m.selector)? else {
            return Ok(missing_result(&m.op));
        };
        let selector = || m.selector.dotted();
        match &m.op {
            MatchOp::Equal(literal) => equals(datum, literal),
            MatchOp::NotEqual(literal) => equals(datum, literal).map(|eq| !eq),
            MatchOp::In(literal) => contains(datum, literal, selector),
            MatchOp::NotIn(literal) => contains(datum, literal, selector).map(|found| !found),
            MatchOp::IsEmpty => is_empty(datum, selector),
            MatchOp::IsNotEmpty => is_empty(datum, selector).map(|empty| !empty),
            MatchOp::IsNil => Ok(false),
            MatchOp::IsNotNil => Ok(true),
            MatchOp::Matches(pattern) | MatchOp::NotMatches(pattern) => {
                let Datum::String(s) = datum else {
                    return Err(EvalError::Matches {
                        kind: datum.kind(),
                        selector: selector(),
                    });
                };
                let matched = pattern.regex.is_match(s);
                Ok(matched == matches!(m.op, MatchOp::Matches(_)))
            }
        }
    }

    fn eval_collection(&mut self, c: &'f Collection) -> Result<bool, EvalError> {
        let want = c.quantifier == Quantifier::Any;
        // (index or key, element or value) pairs, collected to walk arrays and objects alike.
        let entries: Vec<(Bound<'d>, Bound<'d>)> = match self.resolve(&c.selector)? {
            // Nothing to iterate: `any` finds nothing, `all` holds vacuously.
            None => return Ok(!want),
            Some((Datum::Array(items), shape)) => {
                let inner = element_shape(&shape);
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| (Bound::Index(i), Bound::Value(item, inner.clone())))
                    .collect()
            }
            Some((Datum::Object(map), shape)) => {
                let inner = element_shape(&shape);
                map.iter()
                    .map(|(k, v)| (Bound::Key(k), Bound::Value(v, inner.clone())))
                    .collect()
            }
            Some(_) => {
                return Err(EvalError::NotCollection {
                    selector: c.selector.dotted(),
                });
            }
        };
        for (index, value) in entries {
            let mark = self.bindings.len();
            match &c.binding {
                // go-bexpr binds a lone name to the element of a list but to the key of a map.
                Binding::Single(name) => {
                    let bound = if matches!(index, Bound::Key(_)) {
                        index.clone()
                    } else {
                        value.clone()
                    };
                    self.bindings.push((name.as_str(), bound));
                }
                Binding::Index(k) => self.bindings.push((k.as_str(), index.clone())),
                Binding::Value(v) => self.bindings.push((v.as_str(), value.clone())),
                Binding::IndexValue(k, v) => {
                    self.bindings.push((k.as_str(), index.clone()));
                    self.bindings.push((v.as_str(), value.clone()));
                }
            }
            let result = self.eval(&c.body);
            self.bindings.truncate(mark);
            if result? == want {
                return Ok(want);
            }
        }
        Ok(!want)
    }
}

/// The shape path of the elements (or values) of the collection at `shape`.
fn element_shape(shape: &ShapePath) -> ShapePath {
    let mut inner = shape.as_ref().clone();
    inner.push("*".to_owned());
    Rc::new(inner)
}

/// go-bexpr's answers when the selected value does not exist (here also: is null).
fn missing_result(op: &MatchOp) -> bool {
    match op {
        MatchOp::Equal(_)
        | MatchOp::In(_)
        | MatchOp::Matches(_)
        | MatchOp::IsNotEmpty
        | MatchOp::IsNotNil => false,
        MatchOp::NotEqual(_)
        | MatchOp::NotIn(_)
        | MatchOp::NotMatches(_)
        | MatchOp::IsEmpty
        | MatchOp::IsNil => true,
    }
}

/// An array index segment: plain decimal digits only.
fn parse_index(segment: &str) -> Option<usize> {
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok()
}

/// `==` with the literal coerced to the field's type.
fn equals(datum: Datum<'_>, literal: &str) -> Result<bool, EvalError> {
    match datum {
        Datum::String(s) => Ok(s == literal),
        Datum::Bool(b) => Ok(parse_bool(literal)? == b),
        Datum::Number(n) => Ok(parse_number(literal)?.equals(n)),
        Datum::Array(_) | Datum::Object(_) => Err(EvalError::NoComparison),
    }
}

/// `in`/`contains`: substring of a string, element of an array, key of an object.
fn contains(
    datum: Datum<'_>,
    literal: &str,
    selector: impl Fn() -> String,
) -> Result<bool, EvalError> {
    match datum {
        Datum::String(s) => Ok(s.contains(literal)),
        Datum::Object(map) => Ok(map.contains_key(literal)),
        Datum::Array(items) => {
            for item in items {
                let Some(element) = Datum::of(item) else {
                    continue;
                };
                let found = match element {
                    Datum::Array(_) | Datum::Object(_) => {
                        return Err(EvalError::NoInComparison {
                            kind: element.kind(),
                        });
                    }
                    scalar => equals(scalar, literal)?,
                };
                if found {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Datum::Bool(_) | Datum::Number(_) => Err(EvalError::InContains {
            kind: datum.kind(),
            selector: selector(),
        }),
    }
}

/// `is empty`: zero length for strings, arrays and objects.
fn is_empty(datum: Datum<'_>, selector: impl Fn() -> String) -> Result<bool, EvalError> {
    match datum {
        Datum::String(s) => Ok(s.is_empty()),
        Datum::Array(items) => Ok(items.is_empty()),
        Datum::Object(map) => Ok(map.is_empty()),
        Datum::Bool(_) | Datum::Number(_) => Err(EvalError::IsEmpty {
            kind: datum.kind(),
            selector: selector(),
        }),
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(literal: &str) -> Result<bool, EvalError> {
    match literal {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(EvalError::MatchValue {
            reason: format!("cannot parse {literal:?} as a bool"),
        }),
    }
}

/// An integer when the literal is one (exact comparison), otherwise a float.
fn parse_number(literal: &str) -> Result<Num, EvalError> {
    if let Ok(i) = literal.parse::<i128>() {
        return Ok(Num::Int(i));
    }
    literal
        .parse::<f64>()
        .map(Num::Float)
        .map_err(|_| EvalError::MatchValue {
            reason: format!("cannot parse {literal:?} as a number"),
        })
}
