//! The Nomad (go-bexpr) filter expression language: parser and evaluator over JSON.
//!
//! Nomad's list endpoints take `?filter=<expression>`, e.g.
//! `Meta["connect.log_level"] == "info" and not (Status != "ready" or Drain == true)`. This
//! crate owns that language: it reads an expression once into a [`Filter`], and tests a [`Filter`]
//! against documents, each the JSON Nomad would serialize for the object (PascalCase keys). It
//! does no I/O; the gateway wires it to `?filter=` and maps its errors to HTTP 400.
//!
//! Supported: `==`, `!=`, `in`, `not in`, `contains`, `not contains`, `matches`, `not matches`,
//! `is [not] empty`, `is [not] nil`, `and`, `or`, `not`, parentheses, `any`/`all` over arrays and
//! objects, bare selectors (`A.b.0["odd key"]`), quoted JSON pointers (`"/A/b"`), double-quoted
//! strings with Go escapes, backtick raw strings, numbers and bare words as literals. The
//! reference behaviour is `NOMAD-BEHAVIOR.md` §8.5.
//!
//! # Differences from go-bexpr
//!
//! go-bexpr walks Go structs; this crate walks their JSON, which cannot tell a struct from a map:
//!
//! - Every `null`, out-of-range index or step into a scalar is "missing" and gets the fixed
//!   answers go-bexpr gives a missing map key; so does an absent key, unless a [`Schema`] says
//!   the object is a struct ([`Filter::matches_in`]), where an unknown field is an error as in
//!   go-bexpr. go-bexpr also errors on a nil pointer on the way (`DrainStrategy.Deadline` on a
//!   node that is not draining); here that is simply missing.
//! - Literals are coerced to the field's JSON type: any number literal compares numerically with
//!   a number field (`1 == 1.0`), where Go would refuse `1.5` for an integer field.
//! - Error messages name JSON types (`number`, `object`, ...), not Go kinds (`uint64`, `struct`),
//!   and parse errors carry byte positions instead of the PEG parser's texts.
//! - `\"` works inside double-quoted strings, and a quoted literal on the right of an operator is
//!   always a string, even when it looks like a JSON pointer.
//! - A lone `not` cannot be a bare field name where an expression starts (write `"/not"`), and a
//!   binding name cannot be a keyword. Reusing one name for key and value is a parse error.
//!
//! # Layout
//!
//! - `lexer.rs`: text to tokens; string escapes, number syntax, bare selectors.
//! - `parser.rs`: tokens to the tree; precedence, whitespace rules, the length and depth limits.
//! - `ast.rs`: the normalised tree and its canonical printing.
//! - `eval.rs`: the tree against a [`serde_json::Value`]; missing values and type coercion.
//! - `error.rs`: [`ParseError`] and [`EvalError`].
//!
//! ```
//! use caravan_filter::Filter;
//!
//! let filter = Filter::parse(r#"Meta["env"] == "prod" and "gpu" in Tags"#)?;
//! let node = serde_json::json!({"Meta": {"env": "prod"}, "Tags": ["gpu", "ssd"]});
//! assert!(filter.matches(&node)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ast;
mod error;
mod eval;
mod lexer;
mod parser;

use std::fmt;
use std::str::FromStr;

pub use error::{EvalError, ParseError};

/// Longest expression accepted, in bytes; longer input is a [`ParseError::TooLong`].
pub const MAX_EXPRESSION_LEN: usize = 8192;

/// Deepest nesting of parentheses, `not` and `any`/`all` accepted; deeper is a
/// [`ParseError::TooDeep`]. Bounds the parser's recursion and the evaluator's.
pub const MAX_NESTING_DEPTH: usize = 64;

/// A parsed filter expression, ready to test documents.
///
/// Two filters are equal when they parse to the same normalised tree, whatever their spelling.
/// [`Display`](fmt::Display) prints the canonical spelling, which parses back to an equal filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    expr: ast::Expr,
}

impl Filter {
    /// Parses `expr`, compiling any regular expressions it contains.
    pub fn parse(expr: &str) -> Result<Filter, ParseError> {
        parser::parse(expr).map(|expr| Filter { expr })
    }

    /// Whether `doc` satisfies the filter. An error means the expression cannot be applied to
    /// this document (e.g. `==` on an object); Nomad fails the whole request on it.
    pub fn matches(&self, doc: &serde_json::Value) -> Result<bool, EvalError> {
        eval::evaluate(&self.expr, doc, &AllMaps)
    }

    /// Like [`Filter::matches`], for a document whose shape `schema` describes: objects that
    /// are structs reject fields they do not have ([`EvalError::NoSuchField`]), as go-bexpr
    /// does, so a misspelt selector is an error instead of a silent non-match.
    pub fn matches_in(
        &self,
        doc: &serde_json::Value,
        schema: &dyn Schema,
    ) -> Result<bool, EvalError> {
        eval::evaluate(&self.expr, doc, schema)
    }
}

/// The shape of the documents a filter runs on: which objects are maps (any key may be absent)
/// rather than structs (a fixed set of fields).
pub trait Schema: Sync {
    /// Whether the object at `path` is a map. `path` holds struct field names from the root,
    /// with `*` standing for an array element or a map value, e.g. `["Drivers", "*",
    /// "Attributes"]`.
    fn is_map(&self, path: &[String]) -> bool;
}

/// Every object is a map: missing keys never error (the default of [`Filter::matches`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllMaps;

impl Schema for AllMaps {
    fn is_map(&self, _path: &[String]) -> bool {
        true
    }
}

/// A schema given as the list of paths that are maps; every other object is a struct.
#[derive(Debug, Clone, Copy)]
pub struct MapPaths(pub &'static [&'static [&'static str]]);

impl Schema for MapPaths {
    fn is_map(&self, path: &[String]) -> bool {
        self.0
            .iter()
            .any(|p| p.len() == path.len() && p.iter().zip(path).all(|(a, b)| a == b))
    }
}

impl FromStr for Filter {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Filter::parse(s)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.expr, f)
    }
}
