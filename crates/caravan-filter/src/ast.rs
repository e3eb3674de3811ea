//! The parsed form of an expression, and its canonical rendering.
//!
//! The tree is normalised as it is built so that equal meanings give equal trees: `and`/`or`
//! chains are flat lists, `not not x` is `x`, `contains` is `in` with its operands swapped, and a
//! selector is only its list of segments (`Meta.a`, `Meta["a"]` and `"/Meta/a"` are the same).
//! [`fmt::Display`] prints the one canonical spelling, which parses back to the same tree.

use std::fmt::{self, Write as _};

/// A boolean expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    /// At least two operands, none of them an `Or`.
    Or(Vec<Expr>),
    /// At least two operands, none of them an `And`.
    And(Vec<Expr>),
    /// Never directly wraps another `Not`.
    Not(Box<Expr>),
    Match(Match),
    Collection(Collection),
}

/// `Selector <op> Value` in any of its spellings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Match {
    pub(crate) selector: Selector,
    pub(crate) op: MatchOp,
}

/// The operator of a [`Match`] with its literal, kept as the raw unquoted text because
/// go-bexpr coerces it to the field's type only at evaluation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MatchOp {
    Equal(String),
    NotEqual(String),
    /// `"v" in Sel` and `Sel contains "v"`.
    In(String),
    /// `"v" not in Sel` and `Sel not contains "v"`.
    NotIn(String),
    IsEmpty,
    IsNotEmpty,
    IsNil,
    IsNotNil,
    Matches(Pattern),
    NotMatches(Pattern),
}

/// A regular expression compiled at parse time, compared by its source text.
#[derive(Clone)]
pub(crate) struct Pattern {
    pub(crate) source: String,
    pub(crate) regex: regex::Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

/// `any`/`all Sel as <binding> { body }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Collection {
    pub(crate) quantifier: Quantifier,
    pub(crate) selector: Selector,
    pub(crate) binding: Binding,
    pub(crate) body: Box<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quantifier {
    Any,
    All,
}

/// The names a collection expression introduces for its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Binding {
    /// `as v`: the element of an array, the key of an object (as in go-bexpr).
    Single(String),
    /// `as k, _`: the index of an array, the key of an object.
    Index(String),
    /// `as _, v`: the element of an array, the value of an object.
    Value(String),
    /// `as k, v`.
    IndexValue(String, String),
}

/// A path into the document: object keys or array indexes, resolved against the value found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Selector(pub(crate) Vec<String>);

/// Words with a grammatical role; a selector that is only one of these is printed quoted.
pub(crate) const KEYWORDS: &[&str] = &[
    "and", "or", "not", "in", "contains", "matches", "is", "empty", "nil", "any", "all", "as",
];

/// `[a-zA-Z][a-zA-Z0-9_/]*`, the first segment of a bare selector.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/')
}

/// A character allowed in a quoted JSON pointer segment (`[\pL\pN-_.~:|]`).
pub(crate) fn is_pointer_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | ':' | '|')
}

impl Selector {
    /// The segments joined with `.`, the form go-bexpr uses in error messages and when a bare
    /// selector-like word is used as a literal value.
    pub(crate) fn dotted(&self) -> String {
        self.0.join(".")
    }

    /// Whether the bare form (`First.next["odd key"]`) reads back as this selector. A lone
    /// `not` would read back as the `not` operator.
    fn has_bare_form(&self) -> bool {
        match self.0.first() {
            Some(first) => is_identifier(first) && !(self.0.len() == 1 && first == "not"),
            None => false,
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.has_bare_form() {
            // JSON pointer form, with `~` and `/` escaped as RFC 6901 says.
            f.write_char('"')?;
            for segment in &self.0 {
                f.write_char('/')?;
                f.write_str(&segment.replace('~', "~0").replace('/', "~1"))?;
            }
            return f.write_char('"');
        }
        for (i, segment) in self.0.iter().enumerate() {
            if i == 0 {
                f.write_str(segment)?;
            } else if is_identifier(segment)
                || (!segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()))
            {
                write!(f, ".{segment}")?;
            } else {
                write!(f, "[{}]", Quoted(segment))?;
            }
        }
        Ok(())
    }
}

/// A string in Go double-quoted syntax, the way `strconv.Quote` would print it.
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control() => write!(f, "\\u{:04x}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

/// Where an expression is printed, to know whether it needs parentheses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Top,
    AndOperand,
    NotOperand,
}

impl Expr {
    fn fmt_in(&self, f: &mut fmt::Formatter<'_>, context: Context) -> fmt::Result {
        match self {
            Expr::Or(operands) => {
                let parens = context != Context::Top;
                Self::fmt_list(f, operands, " or ", Context::Top, parens)
            }
            Expr::And(operands) => {
                let parens = context == Context::NotOperand;
                Self::fmt_list(f, operands, " and ", Context::AndOperand, parens)
            }
            Expr::Not(operand) => {
                f.write_str("not ")?;
                operand.fmt_in(f, Context::NotOperand)
            }
            Expr::Match(m) => fmt::Display::fmt(m, f),
            Expr::Collection(c) => fmt::Display::fmt(c, f),
        }
    }

    fn fmt_list(
        f: &mut fmt::Formatter<'_>,
        operands: &[Expr],
        separator: &str,
        context: Context,
        parens: bool,
    ) -> fmt::Result {
        if parens {
            f.write_char('(')?;
        }
        for (i, operand) in operands.iter().enumerate() {
            if i > 0 {
                f.write_str(separator)?;
            }
            operand.fmt_in(f, context)?;
        }
        if parens {
            f.write_char(')')?;
        }
        Ok(())
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_in(f, Context::Top)
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sel = &self.selector;
        match &self.op {
            MatchOp::Equal(v) => write!(f, "{sel} == {}", Quoted(v)),
            MatchOp::NotEqual(v) => write!(f, "{sel} != {}", Quoted(v)),
            MatchOp::In(v) => write!(f, "{} in {sel}", Quoted(v)),
            MatchOp::NotIn(v) => write!(f, "{} not in {sel}", Quoted(v)),
            MatchOp::IsEmpty => write!(f, "{sel} is empty"),
            MatchOp::IsNotEmpty => write!(f, "{sel} is not empty"),
            MatchOp::IsNil => write!(f, "{sel} is nil"),
            MatchOp::IsNotNil => write!(f, "{sel} is not nil"),
            MatchOp::Matches(p) => write!(f, "{sel} matches {}", Quoted(&p.source)),
            MatchOp::NotMatches(p) => write!(f, "{sel} not matches {}", Quoted(&p.source)),
        }
    }
}

impl fmt::Display for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quantifier = match self.quantifier {
            Quantifier::Any => "any",
            Quantifier::All => "all",
        };
        write!(f, "{quantifier} {} as ", self.selector)?;
        match &self.binding {
            Binding::Single(v) => f.write_str(v)?,
            Binding::Index(k) => write!(f, "{k}, _")?,
            Binding::Value(v) => write!(f, "_, {v}")?,
            Binding::IndexValue(k, v) => write!(f, "{k}, {v}")?,
        }
        write!(f, " {{ {} }}", self.body)
    }
}
