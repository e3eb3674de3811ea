//! Source positions and diagnostics, printed the way HCL prints them
//! (`input.hcl:3,5-8: Unsupported argument; An argument named "foo" is not expected here.`).
//!
//! HCL positions are 1-based lines and columns, columns counted in characters, and a range's
//! end column is the one just past its last character. A diagnostic without a position prints
//! `<nil>` in its place, as Nomad's do.

use std::fmt;
use std::ops::Range;

/// A position in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// 0-based byte offset.
    pub byte: usize,
}

/// A span of a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRange {
    pub filename: String,
    pub start: Pos,
    pub end: Pos,
}

impl fmt::Display for SourceRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start.line == self.end.line {
            write!(
                f,
                "{}:{},{}-{}",
                self.filename, self.start.line, self.start.column, self.end.column
            )
        } else {
            write!(
                f,
                "{}:{},{}-{},{}",
                self.filename, self.start.line, self.start.column, self.end.line, self.end.column
            )
        }
    }
}

/// One problem found in a jobspec: `<subject>: <summary>; <detail>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub summary: String,
    pub detail: String,
    /// Where the problem is; `None` when it has no single place (e.g. no `job` block).
    pub subject: Option<SourceRange>,
}

impl Diagnostic {
    pub(crate) fn new(
        summary: impl Into<String>,
        detail: impl Into<String>,
        subject: Option<SourceRange>,
    ) -> Diagnostic {
        Diagnostic {
            summary: summary.into(),
            detail: detail.into(),
            subject,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subject {
            Some(r) => write!(f, "{r}: {}; {}", self.summary, self.detail),
            None => write!(f, "<nil>: {}; {}", self.summary, self.detail),
        }
    }
}

/// A parsed file's name and line table, to turn byte spans into [`SourceRange`]s.
#[derive(Debug)]
pub(crate) struct SourceFile {
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: &str, text: &str) -> SourceFile {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            name: name.to_owned(),
            text: text.to_owned(),
            line_starts,
        }
    }

    pub fn pos(&self, byte: usize) -> Pos {
        let byte = byte.min(self.text.len());
        let line_idx = match self.line_starts.binary_search(&byte) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line_idx).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..byte)
            .map_or(byte - start, |s| s.chars().count())
            + 1;
        Pos {
            line: line_idx + 1,
            column,
            byte,
        }
    }

    pub fn range(&self, span: &Range<usize>) -> SourceRange {
        SourceRange {
            filename: self.name.clone(),
            start: self.pos(span.start),
            end: self.pos(span.end.max(span.start)),
        }
    }

    /// The source text of a span ("" when out of bounds).
    pub fn slice(&self, span: &Range<usize>) -> &str {
        self.text.get(span.clone()).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_print_like_hcl() {
        let f = SourceFile::new("input.hcl", "job \"x\" {\n  foo = 1\n}\n");
        let r = f.range(&(12..15));
        assert_eq!(r.to_string(), "input.hcl:2,3-6");
        let multi = f.range(&(0..21));
        assert_eq!(multi.to_string(), "input.hcl:1,1-3,2");
        let d = Diagnostic::new("Summary", "Detail.", None);
        assert_eq!(d.to_string(), "<nil>: Summary; Detail.");
    }

    #[test]
    fn columns_count_characters() {
        let f = SourceFile::new("a.hcl", "x = \"é\" y");
        assert_eq!(f.pos(9).column, 9);
    }
}
