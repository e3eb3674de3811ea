//! Splits an expression into tokens.
//!
//! A bare selector (`Meta["connect.log_level"]`, `NodeResources.Networks.0.IP`) is one token,
//! because it may not contain whitespace except inside its brackets. Words are not classified
//! here: whether `in` is an operator or a field name depends on where it stands, which only the
//! parser knows. Each token records whether whitespace preceded it, since the grammar requires
//! whitespace around word operators but not around `==`.

use crate::error::ParseError;

/// One token and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token<'a> {
    pub(crate) kind: TokenKind,
    /// Byte offset of the first character.
    pub(crate) position: usize,
    /// The source text of the token, for error messages.
    pub(crate) text: &'a str,
    /// Whether whitespace separates this token from the previous one.
    pub(crate) space_before: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// A bare selector: an identifier followed by `.ident`, `.digits` or `["key"]` parts.
    /// `plain` is set when it is a lone identifier, the only form a keyword can take.
    Path {
        segments: Vec<String>,
        plain: bool,
    },
    /// A double-quoted string, escapes processed.
    String(String),
    /// A backtick string, taken as written.
    RawString(String),
    /// A number literal, as written.
    Number(String),
    EqualEqual,
    NotEqual,
    LeftParen,
    RightParen,
    LeftBrace,
    RightBrace,
    Comma,
    Underscore,
    Eof,
}

impl Token<'_> {
    /// The keyword this token spells, if it is a lone lowercase word.
    pub(crate) fn word(&self) -> Option<&str> {
        match &self.kind {
            TokenKind::Path {
                segments,
                plain: true,
            } => segments.first().map(String::as_str),
            _ => None,
        }
    }

    /// Whether this token is the bare word `keyword`.
    pub(crate) fn is_word(&self, keyword: &str) -> bool {
        self.word() == Some(keyword)
    }

    /// The token quoted for an error message.
    pub(crate) fn describe(&self) -> String {
        if self.kind == TokenKind::Eof {
            "end of expression".to_owned()
        } else {
            format!("{:?}", self.text)
        }
    }
}

/// Whitespace as the grammar defines it: no vertical tab, no Unicode spaces.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Characters that run together into an operator, so `=~` is reported whole.
fn is_operator_char(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>' | '~')
}

fn is_ident_continue(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '/'
}

/// Tokenizes the whole input; the last token is always [`TokenKind::Eof`].
pub(crate) fn tokenize(input: &str) -> Result<Vec<Token<'_>>, ParseError> {
    let mut lexer = Lexer { input, pos: 0 };
    let mut tokens = Vec::new();
    loop {
        let space_before = lexer.skip_space();
        let start = lexer.pos;
        let kind = lexer.next_kind()?;
        let eof = kind == TokenKind::Eof;
        tokens.push(Token {
            kind,
            position: start,
            text: &input[start..lexer.pos],
            space_before,
        });
        if eof {
            return Ok(tokens);
        }
    }
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.input[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat_while(&mut self, predicate: impl Fn(char) -> bool) -> &str {
        let start = self.pos;
        while self.peek().is_some_and(&predicate) {
            self.bump();
        }
        &self.input[start..self.pos]
    }

    fn skip_space(&mut self) -> bool {
        !self.eat_while(is_space).is_empty()
    }

    fn next_kind(&mut self) -> Result<TokenKind, ParseError> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Ok(TokenKind::Eof);
        };
        let single = |lexer: &mut Self, kind| {
            lexer.bump();
            Ok(kind)
        };
        match c {
            '(' => single(self, TokenKind::LeftParen),
            ')' => single(self, TokenKind::RightParen),
            '{' => single(self, TokenKind::LeftBrace),
            '}' => single(self, TokenKind::RightBrace),
            ',' => single(self, TokenKind::Comma),
            '_' if !self.peek_second().is_some_and(is_ident_continue) => {
                single(self, TokenKind::Underscore)
            }
            '"' | '`' => self.string().map(|s| match c {
                '"' => TokenKind::String(s),
                _ => TokenKind::RawString(s),
            }),
            '-' | '0'..='9' => self.number(),
            c if c.is_ascii_alphabetic() => self.path(),
            c if is_operator_char(c) => {
                let operator = self.eat_while(is_operator_char);
                match operator {
                    "==" => Ok(TokenKind::EqualEqual),
                    "!=" => Ok(TokenKind::NotEqual),
                    _ => Err(ParseError::UnknownOperator {
                        operator: operator.to_owned(),
                        position: start,
                    }),
                }
            }
            character => Err(ParseError::UnexpectedCharacter {
                character,
                position: start,
            }),
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, which must end at whitespace, `)`, `}` or the end.
    fn number(&mut self) -> Result<TokenKind, ParseError> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.bump();
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(ParseError::UnexpectedCharacter {
                    character: '-',
                    position: start,
                });
            }
        }
        if self.peek() == Some('0') {
            self.bump();
        } else {
            self.eat_while(|c| c.is_ascii_digit());
        }
        if self.peek() == Some('.') && self.peek_second().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            self.eat_while(|c| c.is_ascii_digit());
        }
        let end = self.pos;
        if self
            .peek()
            .is_none_or(|c| is_space(c) || c == ')' || c == '}')
        {
            return Ok(TokenKind::Number(self.input[start..end].to_owned()));
        }
        // Report the whole malformed word, not just the valid prefix.
        self.eat_while(|c| !is_space(c) && !matches!(c, '(' | ')' | '{' | '}'));
        Err(ParseError::InvalidNumber {
            text: self.input[start..self.pos].to_owned(),
            position: start,
        })
    }

    /// An identifier and its `.ident`, `.digits` and `["key"]` parts.
    fn path(&mut self) -> Result<TokenKind, ParseError> {
        let start = self.pos;
        let mut segments = vec![self.eat_while(is_ident_continue).to_owned()];
        let mut plain = true;
        loop {
            match self.peek() {
                Some('.') => {
                    let dot = self.pos;
                    self.bump();
                    let segment = match self.peek() {
                        Some(c) if c.is_ascii_alphabetic() => self.eat_while(is_ident_continue),
                        Some(c) if c.is_ascii_digit() => self.eat_while(|c| c.is_ascii_digit()),
                        _ => {
                            return Err(ParseError::InvalidSelector {
                                reason: format!(
                                    "expected a field name or an index after \".\" at position {dot}"
                                ),
                                position: start,
                            });
                        }
                    };
                    segments.push(segment.to_owned());
                }
                Some('[') => {
                    let bracket = self.pos;
                    self.bump();
                    self.skip_space();
                    if !matches!(self.peek(), Some('"' | '`')) {
                        return Err(ParseError::InvalidIndex { position: bracket });
                    }
                    let key = self.string()?;
                    self.skip_space();
                    if self.peek() != Some(']') {
                        return Err(ParseError::UnclosedIndex { position: bracket });
                    }
                    self.bump();
                    segments.push(key);
                }
                _ => break,
            }
            plain = false;
        }
        Ok(TokenKind::Path { segments, plain })
    }

    /// A `"…"` string with Go escapes, or a `` `…` `` raw string. The lexer stands on the quote.
    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        let quote = self.bump();
        if quote == Some('`') {
            let body = self.eat_while(|c| c != '`');
            // Go's strconv.Unquote drops carriage returns from raw strings.
            let body = body.replace('\r', "");
            return match self.bump() {
                Some('`') => Ok(body),
                _ => Err(ParseError::UnterminatedString { position: start }),
            };
        }
        // Escapes such as \xff produce bytes, so collect bytes and check UTF-8 at the end.
        let mut bytes = Vec::new();
        loop {
            let here = self.pos;
            match self.bump() {
                None => return Err(ParseError::UnterminatedString { position: start }),
                Some('"') => break,
                Some('\n') => return Err(ParseError::NewlineInString { position: here }),
                Some('\\') => self.escape(here, &mut bytes)?,
                Some(c) => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        String::from_utf8(bytes).map_err(|_| ParseError::InvalidUtf8 { position: start })
    }

    /// One escape sequence after its backslash, as Go's double-quoted strings define them.
    fn escape(&mut self, start: usize, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let invalid = |lexer: &Self| {
            // Show the escape as written, without running past the end of the input.
            let end = lexer.pos.max(start + 1);
            ParseError::InvalidEscape {
                sequence: lexer.input[start..end].to_owned(),
                position: start,
            }
        };
        let Some(c) = self.bump() else {
            return Err(ParseError::UnterminatedString { position: start });
        };
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
        if let Some(byte) = simple {
            out.push(byte);
            return Ok(());
        }
        match c {
            'x' => {
                let value = self.hex_digits(2).ok_or_else(|| invalid(self))?;
                out.push(u8::try_from(value).map_err(|_| invalid(self))?);
            }
            '0'..='7' => {
                let mut value = c.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let digit = self.peek().and_then(|d| d.to_digit(8));
                    let Some(digit) = digit else {
                        return Err(invalid(self));
                    };
                    self.bump();
                    value = value * 8 + digit;
                }
                out.push(u8::try_from(value).map_err(|_| invalid(self))?);
            }
            'u' | 'U' => {
                let width = if c == 'u' { 4 } else { 8 };
                let value = self.hex_digits(width).ok_or_else(|| invalid(self))?;
                let ch = char::from_u32(value).ok_or_else(|| invalid(self))?;
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
            }
            _ => return Err(invalid(self)),
        }
        Ok(())
    }

    /// Exactly `count` hex digits, or `None` (consuming what it looked at).
    fn hex_digits(&mut self, count: usize) -> Option<u32> {
        let mut value: u32 = 0;
        for _ in 0..count {
            let digit = self.peek()?.to_digit(16)?;
            self.bump();
            value = value.checked_mul(16)?.checked_add(digit)?;
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<TokenKind> {
        tokenize(input)
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    fn path(segments: &[&str], plain: bool) -> TokenKind {
        TokenKind::Path {
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            plain,
        }
    }

    #[test]
    fn selectors_are_one_token() {
        assert_eq!(
            kinds(r#"Meta["connect.log_level"].x.0[ `raw` ] == 1"#),
            vec![
                path(&["Meta", "connect.log_level", "x", "0", "raw"], false),
                TokenKind::EqualEqual,
                TokenKind::Number("1".into()),
                TokenKind::Eof,
            ]
        );
        assert_eq!(kinds("in"), vec![path(&["in"], true), TokenKind::Eof]);
        assert_eq!(kinds("a/b_c"), vec![path(&["a/b_c"], true), TokenKind::Eof]);
    }

    #[test]
    fn records_whitespace() {
        let tokens = tokenize("a ==\t\"b\"(").unwrap();
        let spaces: Vec<bool> = tokens.iter().map(|t| t.space_before).collect();
        assert_eq!(spaces, vec![false, true, true, false, false]);
        assert_eq!(tokens[2].text, "\"b\"");
    }

    #[test]
    fn go_escapes() {
        let input = r#""\a\b\f\n\r\t\v\\\"\x41\101\u00e9\U0001F600\xc3\xa9""#;
        assert_eq!(
            kinds(input)[0],
            TokenKind::String("\u{7}\u{8}\u{c}\n\r\t\u{b}\\\"AAé😀é".into())
        );
    }

    #[test]
    fn bad_escapes() {
        for input in [
            r#""\q""#,
            r#""\'""#,
            r#""\x4""#,
            r#""\u12""#,
            r#""\ud800""#,
            r#""\400""#,
        ] {
            assert!(
                matches!(
                    tokenize(input),
                    Err(ParseError::InvalidEscape { position: 1, .. })
                ),
                "{input}"
            );
        }
        assert_eq!(
            tokenize(r#""\xff""#),
            Err(ParseError::InvalidUtf8 { position: 0 })
        );
        assert_eq!(
            tokenize("\"a\nb\""),
            Err(ParseError::NewlineInString { position: 2 })
        );
    }

    #[test]
    fn raw_strings_keep_backslashes_and_drop_carriage_returns() {
        assert_eq!(
            kinds("`a\\n\r\nb`")[0],
            TokenKind::RawString("a\\n\nb".into())
        );
    }

    #[test]
    fn numbers() {
        for ok in ["0", "-0", "12", "-12.5", "0.25"] {
            assert_eq!(kinds(ok)[0], TokenKind::Number(ok.into()), "{ok}");
        }
        assert_eq!(kinds("1)")[0], TokenKind::Number("1".into()));
        for bad in ["01", "1.", "1.2.3", "12abc", "1e5", "-"] {
            assert!(tokenize(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn operators() {
        assert_eq!(
            tokenize("a =~ b"),
            Err(ParseError::UnknownOperator {
                operator: "=~".into(),
                position: 2
            })
        );
        assert!(matches!(
            tokenize("a # b"),
            Err(ParseError::UnexpectedCharacter {
                character: '#',
                position: 2
            })
        ));
    }
}
