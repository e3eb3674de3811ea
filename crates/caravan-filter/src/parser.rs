//! Recursive-descent parser for the go-bexpr grammar.
//!
//! ```text
//! or         := and ("or" and)*
//! and        := not ("and" not)*
//! not        := "not" not | primary
//! primary    := "(" or ")" | collection | match
//! collection := ("any" | "all") selector "as" binding "{" or "}"
//! binding    := name | name "," name | name "," "_" | "_" "," name
//! match      := selector ("==" | "!=") value
//!             | selector ["not"] ("contains" | "matches") value
//!             | selector "is" ["not"] ("empty" | "nil")
//!             | value ["not"] "in" selector
//! ```
//!
//! Word operators need whitespace on both sides; `==`, `!=`, parentheses and braces do not.
//! Keywords are recognised by position, as in the PEG grammar, so a field called `in` is still a
//! field. Recursion only happens through parentheses, `not` and collection bodies, each of which
//! counts towards [`MAX_NESTING_DEPTH`]; `and`/`or` chains are loops.

use crate::MAX_NESTING_DEPTH;
use crate::ast::{
    Binding, Collection, Expr, KEYWORDS, Match, MatchOp, Pattern, Quantifier, Selector,
    is_pointer_char,
};
use crate::error::ParseError;
use crate::lexer::{Token, TokenKind, tokenize};

/// Upper bound on the compiled size of one regex, so a short pattern like `(a{999}){999}` cannot
/// make the server allocate hundreds of megabytes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Parses a whole expression, checking the length limit first.
pub(crate) fn parse(input: &str) -> Result<Expr, ParseError> {
    if input.len() > crate::MAX_EXPRESSION_LEN {
        return Err(ParseError::TooLong { len: input.len() });
    }
    let tokens = tokenize(input)?;
    let mut parser = Parser {
        tokens,
        index: 0,
        depth: 0,
    };
    if parser.peek().kind == TokenKind::Eof {
        return Err(ParseError::Empty);
    }
    let expr = parser.or()?;
    let next = parser.peek();
    match next.kind {
        TokenKind::Eof => Ok(expr),
        TokenKind::RightParen => Err(ParseError::UnmatchedParentheses {
            position: next.position,
        }),
        _ => Err(ParseError::TrailingInput {
            found: next.describe(),
            position: next.position,
        }),
    }
}

/// The operator of a match expression, told apart before the operands are interpreted.
#[derive(Clone, Copy)]
enum Operator {
    Compare,
    In,
    Contains,
    Matches,
    Is,
}

struct Parser<'a> {
    tokens: Vec<Token<'a>>,
    index: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    /// The current token; past the end this stays on the final `Eof`.
    fn peek(&self) -> &Token<'a> {
        self.peek_at(0)
    }

    fn peek_at(&self, offset: usize) -> &Token<'a> {
        let last = self.tokens.len().saturating_sub(1);
        &self.tokens[(self.index + offset).min(last)]
    }

    fn advance(&mut self) -> Token<'a> {
        let token = self.peek().clone();
        if self.index + 1 < self.tokens.len() {
            self.index += 1;
        }
        token
    }

    fn unexpected<T>(&self, expected: &'static str) -> Result<T, ParseError> {
        let token = self.peek();
        Err(ParseError::Unexpected {
            expected,
            found: token.describe(),
            position: token.position,
        })
    }

    /// Consumes the word operator `keyword` at the current token, which the caller has checked,
    /// after making sure whitespace separates it from both neighbours.
    fn word_operator(&mut self, keyword: &'static str) -> Result<(), ParseError> {
        let token = self.peek();
        let position = token.position;
        if !token.space_before || !self.space_after() {
            return Err(ParseError::MissingWhitespace { keyword, position });
        }
        self.advance();
        Ok(())
    }

    /// Whether whitespace follows the current token. At the end of the input the question is
    /// moot: the caller goes on to report the missing operand instead.
    fn space_after(&self) -> bool {
        let next = self.peek_at(1);
        next.space_before || next.kind == TokenKind::Eof
    }

    /// Runs `inner` one nesting level deeper, refusing to go past the limit.
    fn nested<T>(
        &mut self,
        position: usize,
        inner: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        if self.depth >= MAX_NESTING_DEPTH {
            return Err(ParseError::TooDeep { position });
        }
        self.depth += 1;
        let result = inner(self);
        self.depth -= 1;
        result
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut operands = Vec::new();
        push_flat(&mut operands, self.and()?, |e| matches!(e, Expr::Or(_)));
        while self.peek().is_word("or") {
            self.word_operator("or")?;
            push_flat(&mut operands, self.and()?, |e| matches!(e, Expr::Or(_)));
        }
        Ok(join(operands, Expr::Or))
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut operands = Vec::new();
        push_flat(&mut operands, self.not()?, |e| matches!(e, Expr::And(_)));
        while self.peek().is_word("and") {
            self.word_operator("and")?;
            push_flat(&mut operands, self.not()?, |e| matches!(e, Expr::And(_)));
        }
        Ok(join(operands, Expr::And))
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        let token = self.peek();
        if !token.is_word("not") {
            return self.primary();
        }
        let position = token.position;
        if !self.space_after() {
            return Err(ParseError::MissingWhitespace {
                keyword: "not",
                position,
            });
        }
        self.advance();
        let operand = self.nested(position, Self::not)?;
        // `not not x` is `x`, as go-bexpr simplifies it.
        Ok(match operand {
            Expr::Not(inner) => *inner,
            other => Expr::Not(Box::new(other)),
        })
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let token = self.peek();
        let position = token.position;
        if token.kind == TokenKind::LeftParen {
            self.advance();
            return self.nested(position, |parser| {
                let expr = parser.or()?;
                if parser.peek().kind != TokenKind::RightParen {
                    return Err(match parser.peek().kind {
                        TokenKind::Eof | TokenKind::RightBrace => {
                            ParseError::UnmatchedParentheses { position }
                        }
                        _ => ParseError::Unexpected {
                            expected: "\"and\", \"or\" or \")\"",
                            found: parser.peek().describe(),
                            position: parser.peek().position,
                        },
                    });
                }
                parser.advance();
                Ok(expr)
            });
        }
        if let Some(quantifier) = self.collection_start() {
            return self.nested(position, |parser| parser.collection(quantifier));
        }
        self.match_expr()
    }

    /// Whether `any`/`all` here starts a collection expression rather than naming a field.
    /// It does when followed by a selector that is not an operator word (`any Tags ...`); when
    /// that selector is an operator word, only `any in as v` is a collection: `any in as` alone is
    /// the match `"any" in as`, and a binding name can never follow a complete match.
    fn collection_start(&self) -> Option<Quantifier> {
        let quantifier = match self.peek().word() {
            Some("any") => Quantifier::Any,
            Some("all") => Quantifier::All,
            _ => return None,
        };
        let next = self.peek_at(1);
        if !matches!(next.kind, TokenKind::Path { .. } | TokenKind::String(_)) {
            return None;
        }
        let operator_word = next.word().is_some_and(|w| KEYWORDS.contains(&w));
        let binding_follows = self.peek_at(2).is_word("as") && {
            let name = self.peek_at(3);
            name.kind == TokenKind::Underscore
                || name.word().is_some_and(|w| !KEYWORDS.contains(&w))
        };
        (!operator_word || binding_follows).then_some(quantifier)
    }

    fn collection(&mut self, quantifier: Quantifier) -> Result<Expr, ParseError> {
        if !self.space_after() {
            let keyword = self.peek();
            return Err(ParseError::MissingWhitespace {
                keyword: if quantifier == Quantifier::Any {
                    "any"
                } else {
                    "all"
                },
                position: keyword.position,
            });
        }
        self.advance();
        let selector_token = self.advance();
        let selector = selector_of(&selector_token)?;
        if !self.peek().is_word("as") {
            return self.unexpected("\"as\"");
        }
        self.word_operator("as")?;
        let binding = self.binding()?;
        if self.peek().kind != TokenKind::LeftBrace {
            return self.unexpected("\"{\"");
        }
        self.advance();
        let body = self.or()?;
        if self.peek().kind != TokenKind::RightBrace {
            return self.unexpected("\"and\", \"or\" or \"}\"");
        }
        self.advance();
        Ok(Expr::Collection(Collection {
            quantifier,
            selector,
            binding,
            body: Box::new(body),
        }))
    }

    /// `v`, `k, v`, `k, _` or `_, v`.
    fn binding(&mut self) -> Result<Binding, ParseError> {
        let first = self.binding_name()?;
        if self.peek().kind != TokenKind::Comma {
            return match first {
                Some(name) => Ok(Binding::Single(name)),
                None => self.unexpected("\",\""),
            };
        }
        self.advance();
        let position = self.peek().position;
        let second = self.binding_name()?;
        match (first, second) {
            (Some(k), Some(v)) if k == v => Err(ParseError::DuplicateBinding { name: v, position }),
            (Some(k), Some(v)) => Ok(Binding::IndexValue(k, v)),
            (Some(k), None) => Ok(Binding::Index(k)),
            (None, Some(v)) => Ok(Binding::Value(v)),
            (None, None) => Err(ParseError::Unexpected {
                expected: "a name for the index or the value",
                found: "\"_\"".to_owned(),
                position,
            }),
        }
    }

    /// A binding name, or `None` for `_`.
    fn binding_name(&mut self) -> Result<Option<String>, ParseError> {
        let token = self.peek();
        if token.kind == TokenKind::Underscore {
            self.advance();
            return Ok(None);
        }
        match token.word() {
            Some(word) if !KEYWORDS.contains(&word) => {
                let name = word.to_owned();
                self.advance();
                Ok(Some(name))
            }
            _ => self.unexpected("a binding name"),
        }
    }

    fn match_expr(&mut self) -> Result<Expr, ParseError> {
        let first = self.advance();
        if !matches!(
            first.kind,
            TokenKind::Path { .. }
                | TokenKind::String(_)
                | TokenKind::RawString(_)
                | TokenKind::Number(_)
        ) {
            return Err(ParseError::Unexpected {
                expected: "an expression",
                found: first.describe(),
                position: first.position,
            });
        }
        // `not` here negates the operator word that follows it.
        let negated = self.peek().is_word("not");
        let operator = match (&self.peek().kind, self.peek_at(usize::from(negated)).word()) {
            (TokenKind::EqualEqual | TokenKind::NotEqual, _) => Operator::Compare,
            (_, Some("in")) => Operator::In,
            (_, Some("contains")) => Operator::Contains,
            (_, Some("matches")) => Operator::Matches,
            (_, Some("is")) if !negated => Operator::Is,
            _ if negated => {
                self.advance();
                return self.unexpected("\"in\", \"contains\" or \"matches\" after \"not\"");
            }
            _ => return self.unexpected("an operator"),
        };
        if negated {
            self.word_operator("not")?;
        }
        let (selector, op) = match operator {
            // `value [not] in selector`: here the first operand is the value.
            Operator::In => self.in_operands(&first, negated)?,
            Operator::Compare => (selector_of(&first)?, self.compare()?),
            Operator::Is => (selector_of(&first)?, self.is_operator()?),
            Operator::Contains => {
                let selector = selector_of(&first)?;
                self.word_operator("contains")?;
                let value = self.value()?;
                let op = if negated {
                    MatchOp::NotIn(value)
                } else {
                    MatchOp::In(value)
                };
                (selector, op)
            }
            Operator::Matches => {
                let selector = selector_of(&first)?;
                self.word_operator("matches")?;
                let pattern = self.pattern()?;
                let op = if negated {
                    MatchOp::NotMatches(pattern)
                } else {
                    MatchOp::Matches(pattern)
                };
                (selector, op)
            }
        };
        Ok(Expr::Match(Match { selector, op }))
    }

    /// `== value` or `!= value`.
    fn compare(&mut self) -> Result<MatchOp, ParseError> {
        let equal = self.advance().kind == TokenKind::EqualEqual;
        let value = self.value()?;
        Ok(if equal {
            MatchOp::Equal(value)
        } else {
            MatchOp::NotEqual(value)
        })
    }

    /// `is empty`, `is not empty`, `is nil`, `is not nil`.
    fn is_operator(&mut self) -> Result<MatchOp, ParseError> {
        let is = self.advance();
        if !is.space_before {
            return Err(ParseError::MissingWhitespace {
                keyword: "is",
                position: is.position,
            });
        }
        let negated = self.peek().is_word("not");
        if negated {
            self.advance();
        }
        let op = match (self.peek().word(), negated) {
            (Some("empty"), false) => MatchOp::IsEmpty,
            (Some("empty"), true) => MatchOp::IsNotEmpty,
            (Some("nil"), false) => MatchOp::IsNil,
            (Some("nil"), true) => MatchOp::IsNotNil,
            _ => return self.unexpected("\"empty\" or \"nil\""),
        };
        self.advance();
        Ok(op)
    }

    /// `in selector`, after a value and an optional `not`.
    fn in_operands(
        &mut self,
        value_token: &Token<'_>,
        negated: bool,
    ) -> Result<(Selector, MatchOp), ParseError> {
        self.word_operator("in")?;
        let value = value_of(value_token);
        let selector_token = self.advance();
        if !matches!(
            selector_token.kind,
            TokenKind::Path { .. } | TokenKind::String(_)
        ) {
            return Err(ParseError::Unexpected {
                expected: "a selector",
                found: selector_token.describe(),
                position: selector_token.position,
            });
        }
        let selector = selector_of(&selector_token)?;
        let op = if negated {
            MatchOp::NotIn(value)
        } else {
            MatchOp::In(value)
        };
        Ok((selector, op))
    }

    /// The literal on the right of `==`, `!=`, `contains` or `matches`.
    fn value(&mut self) -> Result<String, ParseError> {
        match self.peek().kind {
            TokenKind::Path { .. }
            | TokenKind::String(_)
            | TokenKind::RawString(_)
            | TokenKind::Number(_) => {
                let token = self.advance();
                Ok(value_of(&token))
            }
            _ => self.unexpected("a value"),
        }
    }

    /// The literal on the right of `matches`, compiled now so a bad regex fails the request
    /// before any document is read.
    fn pattern(&mut self) -> Result<Pattern, ParseError> {
        let position = self.peek().position;
        let source = self.value()?;
        let regex = regex::RegexBuilder::new(&source)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|err| ParseError::InvalidRegex {
                pattern: source.clone(),
                reason: regex_reason(&err),
                position,
            })?;
        Ok(Pattern { source, regex })
    }
}

/// Appends `expr` to a chain, splicing in the operands of a chain of the same operator so that
/// `(a or b) or c` and `a or (b or c)` give the same tree.
fn push_flat(operands: &mut Vec<Expr>, expr: Expr, same: impl Fn(&Expr) -> bool) {
    if same(&expr) {
        if let Expr::Or(inner) | Expr::And(inner) = expr {
            operands.extend(inner);
        }
    } else {
        operands.push(expr);
    }
}

fn join(mut operands: Vec<Expr>, chain: fn(Vec<Expr>) -> Expr) -> Expr {
    match operands.pop() {
        Some(only) if operands.is_empty() => only,
        Some(last) => {
            operands.push(last);
            chain(operands)
        }
        None => chain(operands),
    }
}

/// A literal's text: a string unquoted, a number as written, a bare word's segments joined by
/// `.` (go-bexpr reads `Status == running` as the string "running").
fn value_of(token: &Token<'_>) -> String {
    match &token.kind {
        TokenKind::String(s) | TokenKind::RawString(s) | TokenKind::Number(s) => s.clone(),
        TokenKind::Path { segments, .. } => segments.join("."),
        _ => String::new(),
    }
}

/// The selector a bare path or a quoted JSON pointer (`"/Meta/a~1b"`) spells.
fn selector_of(token: &Token<'_>) -> Result<Selector, ParseError> {
    match &token.kind {
        TokenKind::Path { segments, .. } => Ok(Selector(segments.clone())),
        TokenKind::String(pointer) => parse_pointer(pointer, token.position),
        _ => Err(ParseError::Unexpected {
            expected: "a selector",
            found: token.describe(),
            position: token.position,
        }),
    }
}

fn parse_pointer(pointer: &str, position: usize) -> Result<Selector, ParseError> {
    let invalid = |reason: String| ParseError::InvalidSelector { reason, position };
    if pointer.is_empty() {
        return Ok(Selector::default());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(invalid(format!(
            "a quoted selector must be a JSON pointer starting with \"/\", found {pointer:?}"
        )));
    };
    let mut segments = Vec::new();
    for segment in rest.split('/') {
        if segment.is_empty() || !segment.chars().all(is_pointer_char) {
            return Err(invalid(format!(
                "invalid JSON pointer segment {segment:?} in {pointer:?}"
            )));
        }
        segments.push(
            unescape_pointer_segment(segment).ok_or_else(|| {
                invalid(format!("invalid \"~\" escape in JSON pointer {pointer:?}"))
            })?,
        );
    }
    Ok(Selector(segments))
}

/// RFC 6901: `~1` is `/`, `~0` is `~`, any other `~` is an error.
fn unescape_pointer_segment(segment: &str) -> Option<String> {
    let mut out = String::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            _ => return None,
        }
    }
    Some(out)
}

/// The regex crate's error without its multi-line source excerpt.
fn regex_reason(err: &regex::Error) -> String {
    match err {
        regex::Error::Syntax(text) => text
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix("error: "))
            .unwrap_or(text)
            .trim()
            .to_owned(),
        regex::Error::CompiledTooBig(limit) => {
            format!("compiled regex exceeds the size limit of {limit} bytes")
        }
        other => other.to_string(),
    }
}
