//! The two error types of the crate: one for reading an expression, one for evaluating it.
//!
//! Messages are lowercase and carry no prefix: the gateway wraps them as
//! `failed to read filter expression: <ParseError>` and `failed to read result page: <EvalError>`.
//! Positions are byte offsets into the expression, starting at 0.

use crate::{MAX_EXPRESSION_LEN, MAX_NESTING_DEPTH};

/// Why an expression could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The expression is empty or only whitespace.
    #[error("empty expression")]
    Empty,

    /// The expression exceeds [`MAX_EXPRESSION_LEN`] bytes.
    #[error("expression is longer than {MAX_EXPRESSION_LEN} bytes")]
    TooLong {
        /// The length of the rejected expression in bytes.
        len: usize,
    },

    /// Parentheses, `not` or `any`/`all` nest deeper than [`MAX_NESTING_DEPTH`] levels.
    #[error("expression nests deeper than {MAX_NESTING_DEPTH} levels at position {position}")]
    TooDeep {
        /// Where the first level too many starts.
        position: usize,
    },

    /// A `"` or `` ` `` string without its closing quote.
    #[error("unterminated string literal at position {position}")]
    UnterminatedString {
        /// Where the string starts.
        position: usize,
    },

    /// A backslash escape that Go's string syntax does not allow.
    #[error("invalid escape sequence {sequence} in string literal at position {position}")]
    InvalidEscape {
        /// The offending escape as written, e.g. `\q`.
        sequence: String,
        /// Where the escape starts.
        position: usize,
    },

    /// A raw line break inside a double-quoted string (Go forbids it; use `\n`).
    #[error("newline in string literal at position {position}")]
    NewlineInString {
        /// Where the line break is.
        position: usize,
    },

    /// `\x` or octal escapes that do not form valid UTF-8.
    #[error("string literal at position {position} is not valid UTF-8")]
    InvalidUtf8 {
        /// Where the string starts.
        position: usize,
    },

    /// A `(` without its `)`, or a `)` without its `(`.
    #[error("unmatched parentheses at position {position}")]
    UnmatchedParentheses {
        /// Where the lonely parenthesis is.
        position: usize,
    },

    /// An operator-like run of symbols other than `==` and `!=`, e.g. `=~` or `<`.
    #[error("unknown operator \"{operator}\" at position {position}")]
    UnknownOperator {
        /// The operator as written.
        operator: String,
        /// Where it starts.
        position: usize,
    },

    /// A character that cannot start any token.
    #[error("unexpected character {character:?} at position {position}")]
    UnexpectedCharacter {
        /// The character.
        character: char,
        /// Where it is.
        position: usize,
    },

    /// A number that does not match `-?(0|[1-9][0-9]*)(\.[0-9]+)?` followed by a delimiter.
    #[error("invalid number literal \"{text}\" at position {position}")]
    InvalidNumber {
        /// The literal as written, up to the next delimiter.
        text: String,
        /// Where it starts.
        position: usize,
    },

    /// `[` in a selector not followed by a quoted key.
    #[error("invalid index at position {position}: expected a quoted map key after \"[\"")]
    InvalidIndex {
        /// Where the `[` is.
        position: usize,
    },

    /// `["key"` without the closing `]`.
    #[error("unclosed index expression at position {position}")]
    UnclosedIndex {
        /// Where the `[` is.
        position: usize,
    },

    /// A malformed selector, e.g. a trailing `.` or a quoted JSON pointer with a bad segment.
    #[error("invalid selector at position {position}: {reason}")]
    InvalidSelector {
        /// What is wrong with it.
        reason: String,
        /// Where the selector starts.
        position: usize,
    },

    /// The parser needed one kind of token and found another.
    #[error("expected {expected} at position {position}, found {found}")]
    Unexpected {
        /// What the grammar allows here.
        expected: &'static str,
        /// The token found, quoted, or `end of expression`.
        found: String,
        /// Where the token starts.
        position: usize,
    },

    /// A complete expression followed by more tokens.
    #[error("unexpected {found} at position {position} after the end of the expression")]
    TrailingInput {
        /// The first extra token, quoted.
        found: String,
        /// Where it starts.
        position: usize,
    },

    /// A word operator (`and`, `in`, `contains`, ...) glued to its neighbour.
    #[error("missing whitespace around \"{keyword}\" at position {position}")]
    MissingWhitespace {
        /// The operator word.
        keyword: &'static str,
        /// Where the operator word starts.
        position: usize,
    },

    /// The right-hand side of `matches` is not a valid RE2-style regular expression.
    #[error("invalid regular expression {pattern:?} at position {position}: {reason}")]
    InvalidRegex {
        /// The pattern as unquoted.
        pattern: String,
        /// Why the regex engine rejected it.
        reason: String,
        /// Where the pattern literal starts.
        position: usize,
    },

    /// `as k, k`: one name bound to both the key and the value.
    #[error(
        "\"{name}\" cannot be used as a placeholder for both the index and the value at position {position}"
    )]
    DuplicateBinding {
        /// The name used twice.
        name: String,
        /// Where the second use starts.
        position: usize,
    },
}

/// Why an expression could not be evaluated against a document.
///
/// Any of these aborts the whole request in Nomad, so the evaluator stops at the first one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A selector names a field the document's struct does not have.
    #[error(
        "error finding value in datum: {pointer} at part {part}: couldn't find struct field with name {field:?}"
    )]
    NoSuchField {
        /// The selector as a JSON pointer.
        pointer: String,
        /// Which segment failed, from 0.
        part: usize,
        /// The missing field.
        field: String,
    },

    /// `==`/`!=` on an object or an array.
    #[error("unable to find suitable primitive comparison function for matching")]
    NoComparison,

    /// `in`/`contains` on an array whose elements are objects or arrays.
    #[error(
        "unable to find suitable primitive comparison function for \"in\" comparison on elements of type {kind}"
    )]
    NoInComparison {
        /// The JSON type of the element.
        kind: &'static str,
    },

    /// The literal could not be coerced to the field's type (a number or a bool).
    #[error("error getting match value in expression: {reason}")]
    MatchValue {
        /// Which literal failed to convert to what.
        reason: String,
    },

    /// `in`/`contains` on a number or a bool.
    #[error("cannot perform in/contains operations on type {kind} for selector: {selector:?}")]
    InContains {
        /// The JSON type of the field.
        kind: &'static str,
        /// The selector, segments joined with `.`.
        selector: String,
    },

    /// `is empty` on a number or a bool.
    #[error("cannot perform is empty operations on type {kind} for selector: {selector:?}")]
    IsEmpty {
        /// The JSON type of the field.
        kind: &'static str,
        /// The selector, segments joined with `.`.
        selector: String,
    },

    /// `matches` on something other than a string.
    #[error("cannot perform matches operations on type {kind} for selector: {selector:?}")]
    Matches {
        /// The JSON type of the field.
        kind: &'static str,
        /// The selector, segments joined with `.`.
        selector: String,
    },

    /// `any`/`all` over something other than an array or an object.
    #[error("{selector} is not a list or a map")]
    NotCollection {
        /// The selector, segments joined with `.`.
        selector: String,
    },
}
