//! Native HCL1, the syntax of Nomad's ACL rules. HCL2 parsers (hcl-rs) refuse forms HCL1 takes
//! and policies use: several items on one line, nested one-line blocks, repeated keys. So the
//! grammar is read here, following HCL1's parser including its leniencies (optional commas
//! between items, a value missing at the very end is dropped).

use super::unquote::unquote;
use super::{Item, MAX_DEPTH, Node, SyntaxError};

pub(super) fn parse(rules: &str) -> Result<Vec<Item>, SyntaxError> {
    let src = rules.replace("\r\n", "\n");
    let mut p = Parser {
        sc: Scanner::new(&src),
        tok: Token::eof(),
        buffered: false,
        depth: 0,
    };
    let (items, err) = p.object_list(false);
    match err {
        Some(e) => Err(e.into_syntax()),
        None => Ok(items),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Eof,
    Ident,
    Number,
    Float,
    Bool,
    Str(String),
    Heredoc(String),
    LBrack,
    RBrack,
    LBrace,
    RBrace,
    Comma,
    Assign,
    Period,
    Add,
    Sub,
}

impl Tok {
    fn name(&self) -> &'static str {
        match self {
            Tok::Eof => "EOF",
            Tok::Ident => "IDENT",
            Tok::Number => "NUMBER",
            Tok::Float => "FLOAT",
            Tok::Bool => "BOOL",
            Tok::Str(_) => "STRING",
            Tok::Heredoc(_) => "HEREDOC",
            Tok::LBrack => "LBRACK",
            Tok::RBrack => "RBRACK",
            Tok::LBrace => "LBRACE",
            Tok::RBrace => "RBRACE",
            Tok::Comma => "COMMA",
            Tok::Assign => "ASSIGN",
            Tok::Period => "PERIOD",
            Tok::Add => "ADD",
            Tok::Sub => "SUB",
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// The source text, quotes included (HCL1 quotes it in some messages).
    text: String,
    line: usize,
    col: usize,
}

impl Token {
    fn eof() -> Token {
        Token {
            tok: Tok::Eof,
            text: String::new(),
            line: 1,
            col: 1,
        }
    }

    /// The literal's value as the decoder sees it.
    fn value(&self) -> String {
        match &self.tok {
            Tok::Str(v) | Tok::Heredoc(v) => v.clone(),
            _ => self.text.clone(),
        }
    }

    fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::Parse(format!("At {}:{}: {msg}", self.line, self.col))
    }
}

enum Error {
    /// HCL1's "EOF token found": ends an object list quietly.
    Eof,
    /// A parser error, which HCL1 overlooks when it stopped on a `}` inside an object.
    Parse(String),
    /// Scanner errors, unquoting failures (a recovered panic in Nomad) and the depth limit:
    /// never overlooked.
    Fatal(String),
}

impl Error {
    fn into_syntax(self) -> SyntaxError {
        SyntaxError(self.text())
    }

    fn text(&self) -> String {
        match self {
            Error::Eof => "EOF token found".to_owned(),
            Error::Parse(m) | Error::Fatal(m) => m.clone(),
        }
    }
}

struct Scanner {
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
    /// Where the last character read was (one past the end after reading the end), which is
    /// where HCL1 places scanner errors.
    last: (usize, usize),
}

impl Scanner {
    fn new(src: &str) -> Scanner {
        Scanner {
            chars: src.chars().collect(),
            i: 0,
            line: 1,
            col: 1,
            last: (1, 1),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek2(&self) -> Option<char> {
        self.chars.get(self.i + 1).copied()
    }

    fn bump(&mut self) -> Option<char> {
        self.last = (self.line, self.col);
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn err(&self, msg: &str) -> Error {
        Error::Fatal(format!("At {}:{}: {msg}", self.last.0, self.last.1))
    }

    fn text_from(&self, start: usize) -> String {
        self.chars[start..self.i].iter().collect()
    }

    /// The next token, comments and whitespace skipped.
    fn next_token(&mut self) -> Result<Token, Error> {
        loop {
            while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
                self.bump();
            }
            match (self.peek(), self.peek2()) {
                (Some('#'), _) | (Some('/'), Some('/')) => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            None => return Err(self.err("comment not terminated")),
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                break;
                            }
                            Some(_) => {}
                        }
                    }
                }
                (Some('/'), _) => {
                    self.bump();
                    return Err(self.err("expected '/' for comment"));
                }
                _ => break,
            }
        }
        let (line, col, start) = (self.line, self.col, self.i);
        let Some(c) = self.bump() else {
            return Ok(Token {
                tok: Tok::Eof,
                text: String::new(),
                line,
                col,
            });
        };
        let tok = match c {
            c if is_letter(c) => {
                while matches!(self.peek(), Some(c) if is_letter(c) || is_digit(c) || c == '-' || c == '.')
                {
                    self.bump();
                }
                let text = self.text_from(start);
                if text == "true" || text == "false" {
                    Tok::Bool
                } else {
                    Tok::Ident
                }
            }
            '0'..='9' => self.number(c)?,
            '-' if matches!(self.peek(), Some('0'..='9')) => {
                let first = self.bump().unwrap_or('0');
                self.number(first)?
            }
            '-' => Tok::Sub,
            '+' => Tok::Add,
            '.' if matches!(self.peek(), Some('0'..='9')) => {
                self.digits();
                self.exponent();
                Tok::Float
            }
            '.' => Tok::Period,
            '"' => self.string()?,
            '<' => self.heredoc()?,
            '[' => Tok::LBrack,
            ']' => Tok::RBrack,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            ',' => Tok::Comma,
            '=' => Tok::Assign,
            _ => return Err(self.err("illegal char")),
        };
        Ok(Token {
            tok,
            text: self.text_from(start),
            line,
            col,
        })
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some('0'..='9')) {
            self.bump();
        }
    }

    fn exponent(&mut self) -> bool {
        if !matches!(self.peek(), Some('e' | 'E')) {
            return false;
        }
        self.bump();
        if matches!(self.peek(), Some('+' | '-')) {
            self.bump();
        }
        self.digits();
        true
    }

    fn fraction_and_exponent(&mut self) -> Option<Tok> {
        if self.exponent() {
            return Some(Tok::Float);
        }
        if self.peek() == Some('.') {
            self.bump();
            self.digits();
            self.exponent();
            return Some(Tok::Float);
        }
        None
    }

    /// A number whose first digit was just read: decimal, octal, hex, float.
    fn number(&mut self, first: char) -> Result<Tok, Error> {
        if first == '0' && matches!(self.peek(), Some('x' | 'X')) {
            self.bump();
            let mut found = false;
            while matches!(self.peek(), Some(c) if c.is_ascii_hexdigit()) {
                self.bump();
                found = true;
            }
            if !found {
                return Err(self.err("illegal hexadecimal number"));
            }
            return Ok(Tok::Number);
        }
        let start = self.i;
        self.digits();
        if let Some(tok) = self.fraction_and_exponent() {
            return Ok(tok);
        }
        let octal_digits_bad = self.chars[start..self.i]
            .iter()
            .any(|c| matches!(c, '8' | '9'));
        if first == '0' && octal_digits_bad {
            return Err(self.err("illegal octal number"));
        }
        Ok(Tok::Number)
    }

    /// A double-quoted string; `${...}` may hold quotes and newlines.
    fn string(&mut self) -> Result<Tok, Error> {
        let start = self.i;
        let mut braces = 0usize;
        loop {
            let Some(c) = self.bump() else {
                return Err(self.err("literal not terminated"));
            };
            match c {
                '\n' if braces == 0 => return Err(self.err("literal not terminated")),
                '"' if braces == 0 => break,
                '$' if braces == 0 && self.peek() == Some('{') => {
                    self.bump();
                    braces += 1;
                }
                '{' if braces > 0 => braces += 1,
                '}' if braces > 0 => braces -= 1,
                '\\' => self.escape()?,
                _ => {}
            }
        }
        let body: String = self.chars[start..self.i - 1].iter().collect();
        match unquote(&body, true) {
            Some(v) => Ok(Tok::Str(v)),
            None => Err(Error::Fatal(format!(
                "invalid acl policy: unquote \"{body}\" err: invalid syntax"
            ))),
        }
    }

    /// The scanner's own check of an escape (the value is computed by `unquote`).
    fn escape(&mut self) -> Result<(), Error> {
        let (base, n) = match self.bump() {
            Some('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\' | '"') => return Ok(()),
            Some('0'..='7') => (8, 2),
            Some('x') => (16, 2),
            Some('u') => (16, 4),
            Some('U') => (16, 8),
            _ => return Err(self.err("illegal char escape")),
        };
        for _ in 0..n {
            match self.peek() {
                Some(c) if c.is_digit(base) => {
                    self.bump();
                }
                _ => return Err(self.err("illegal char escape")),
            }
        }
        Ok(())
    }

    /// `<<ANCHOR` or `<<-ANCHOR`, then lines up to one holding only the anchor.
    fn heredoc(&mut self) -> Result<Tok, Error> {
        if self.bump() != Some('<') {
            return Err(self.err("heredoc expected second '<', didn't see it"));
        }
        let indent = self.peek() == Some('-');
        if indent {
            self.bump();
        }
        let anchor_start = self.i;
        while matches!(self.peek(), Some(c) if is_letter(c) || is_digit(c)) {
            self.bump();
        }
        let anchor = self.text_from(anchor_start);
        if self.peek() == Some('\r') && self.peek2() == Some('\n') {
            self.bump();
        }
        match self.bump() {
            None => return Err(self.err("heredoc not terminated")),
            Some('\n') => {}
            Some(_) => return Err(self.err("invalid characters in heredoc anchor")),
        }
        if anchor.is_empty() {
            return Err(self.err("zero-length heredoc anchor"));
        }
        let mut lines: Vec<String> = Vec::new();
        let closing_indent = loop {
            let start = self.i;
            loop {
                match self.bump() {
                    None => return Err(self.err("heredoc not terminated")),
                    Some('\n') => break,
                    Some(_) => {}
                }
            }
            let line: String = self.chars[start..self.i - 1].iter().collect();
            let body = line.trim_end_matches('\r');
            let trimmed = body.trim_start_matches([' ', '\t', '\x0b', '\x0c', '\r']);
            if trimmed == anchor {
                break body[..body.len() - trimmed.len()].to_owned();
            }
            lines.push(line);
        };
        let value = if indent && lines.iter().all(|l| l.starts_with(&closing_indent)) {
            lines
                .iter()
                .map(|l| format!("{}\n", &l[closing_indent.len()..]))
                .collect()
        } else {
            lines.iter().map(|l| format!("{l}\n")).collect()
        };
        Ok(Tok::Heredoc(value))
    }
}

fn is_letter(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (!c.is_ascii() && c.is_alphabetic())
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

enum KeyEnd {
    Eof,
    Err(Error),
}

struct Parser {
    sc: Scanner,
    tok: Token,
    buffered: bool,
    depth: usize,
}

impl Parser {
    fn scan(&mut self) -> Result<Token, Error> {
        if self.buffered {
            self.buffered = false;
        } else {
            self.tok = self.sc.next_token()?;
        }
        Ok(self.tok.clone())
    }

    fn unscan(&mut self) {
        self.buffered = true;
    }

    /// Items up to `}` (inside an object) or the end. The error comes back with the items so
    /// far, as in HCL1, where the caller may overlook it.
    fn object_list(&mut self, in_object: bool) -> (Vec<Item>, Option<Error>) {
        let mut items = Vec::new();
        loop {
            if in_object {
                match self.scan() {
                    Ok(t) => {
                        self.unscan();
                        if t.tok == Tok::RBrace {
                            break;
                        }
                    }
                    Err(e) => return (items, Some(e)),
                }
            }
            match self.object_item() {
                Ok(item) => items.push(item),
                Err(Error::Eof) => break,
                Err(e) => return (items, Some(e)),
            }
            match self.scan() {
                Ok(t) if t.tok == Tok::Comma => {}
                Ok(_) => self.unscan(),
                Err(e) => return (items, Some(e)),
            }
        }
        (items, None)
    }

    fn object_item(&mut self) -> Result<Item, Error> {
        let (keys, mut end) = self.object_key()?;
        if !keys.is_empty() && matches!(end, Some(KeyEnd::Eof)) {
            end = None;
        }
        if !keys.is_empty() && end.is_some() && self.tok.tok == Tok::RBrace {
            // Keys without a value before `}`: report the missing value below, and make sure
            // the enclosing object does not take the `}` as its end.
            end = None;
            self.tok.tok = Tok::Eof;
        }
        match end {
            Some(KeyEnd::Eof) => return Err(Error::Eof),
            Some(KeyEnd::Err(e)) => return Err(e),
            None => {}
        }
        let val = match self.tok.tok {
            Tok::Assign => self.value()?,
            Tok::LBrace => Node::Object(self.object_type()?),
            _ => {
                let text: Vec<&str> = keys.iter().map(|(_, raw)| raw.as_str()).collect();
                return Err(self.tok.err(format!(
                    "key '{}' expected start of object ('{{') or assignment ('=')",
                    text.join(" ")
                )));
            }
        };
        Ok(Item {
            keys: keys.into_iter().map(|(k, _)| k).collect(),
            val,
        })
    }

    /// Keys (value and source text) up to `=` or `{`.
    #[allow(clippy::type_complexity)]
    fn object_key(&mut self) -> Result<(Vec<(String, String)>, Option<KeyEnd>), Error> {
        let mut keys: Vec<(String, String)> = Vec::new();
        loop {
            let t = self.scan()?;
            match &t.tok {
                Tok::Eof => return Ok((keys, Some(KeyEnd::Eof))),
                Tok::Assign => {
                    if keys.len() > 1 {
                        return Err(t.err("nested object expected: LBRACE got: ASSIGN"));
                    }
                    if keys.is_empty() {
                        return Err(t.err("no object keys found!"));
                    }
                    return Ok((keys, None));
                }
                Tok::LBrace => {
                    if keys.is_empty() {
                        let e = t.err("expected: IDENT | STRING got: LBRACE");
                        return Ok((keys, Some(KeyEnd::Err(e))));
                    }
                    return Ok((keys, None));
                }
                Tok::Ident | Tok::Str(_) => keys.push((t.value(), t.text.clone())),
                other => {
                    let e = t.err(format!(
                        "expected: IDENT | STRING | ASSIGN | LBRACE got: {}",
                        other.name()
                    ));
                    return Ok((keys, Some(KeyEnd::Err(e))));
                }
            }
        }
    }

    /// The value after `=`.
    fn value(&mut self) -> Result<Node, Error> {
        let t = self.scan()?;
        match &t.tok {
            Tok::Number | Tok::Float | Tok::Bool | Tok::Str(_) | Tok::Heredoc(_) => {
                Ok(Node::Literal(t.value()))
            }
            Tok::LBrace => Ok(Node::Object(self.object_type()?)),
            Tok::LBrack => Ok(Node::List(self.list_type()?)),
            Tok::Eof => Err(Error::Eof),
            other => Err(t.err(format!("Unknown token: {} {}", other.name(), t.text))),
        }
    }

    /// Runs `f` one level deeper, refusing to go past `MAX_DEPTH`.
    fn nest<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, Error>) -> Result<T, Error> {
        if self.depth >= MAX_DEPTH {
            return Err(Error::Fatal(format!(
                "At {}:{}: nesting deeper than {MAX_DEPTH} levels",
                self.tok.line, self.tok.col
            )));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// After `{`: the items and the closing `}`.
    fn object_type(&mut self) -> Result<Vec<Item>, Error> {
        self.nest(Self::object_type_inner)
    }

    fn object_type_inner(&mut self) -> Result<Vec<Item>, Error> {
        let (items, err) = self.object_list(true);
        match err {
            // HCL1 overlooks a parser error that stopped on a `}`, and reads on.
            Some(Error::Parse(_)) if self.tok.tok == Tok::RBrace => {}
            Some(e) => return Err(e),
            None => {}
        }
        let t = self.scan()?;
        if t.tok != Tok::RBrace {
            return Err(t.err(format!(
                "object expected closing RBRACE got: {}",
                t.tok.name()
            )));
        }
        Ok(items)
    }

    /// After `[`: the elements and the closing `]`.
    fn list_type(&mut self) -> Result<Vec<Node>, Error> {
        self.nest(Self::list_type_inner)
    }

    fn list_type_inner(&mut self) -> Result<Vec<Node>, Error> {
        let mut list = Vec::new();
        let mut need_comma = false;
        loop {
            let t = self.scan()?;
            if need_comma && !matches!(t.tok, Tok::Comma | Tok::RBrack) {
                return Err(t.err(format!(
                    "error parsing list, expected comma or list end, got: {}",
                    t.tok.name()
                )));
            }
            match &t.tok {
                Tok::Bool | Tok::Number | Tok::Float | Tok::Str(_) | Tok::Heredoc(_) => {
                    list.push(Node::Literal(t.value()));
                    need_comma = true;
                }
                Tok::Comma => need_comma = false,
                Tok::LBrace => {
                    let items = self.object_type().map_err(|e| nested(&t, "object", e))?;
                    list.push(Node::Object(items));
                    need_comma = true;
                }
                Tok::LBrack => {
                    // HCL1 does not ask for a comma after a nested list.
                    let inner = self.list_type().map_err(|e| nested(&t, "list", e))?;
                    list.push(Node::List(inner));
                }
                Tok::RBrack => return Ok(list),
                other => {
                    return Err(t.err(format!(
                        "unexpected token while parsing list: {}",
                        other.name()
                    )));
                }
            }
        }
    }
}

fn nested(t: &Token, what: &str, e: Error) -> Error {
    match e {
        Error::Fatal(_) => e,
        e => t.err(format!(
            "error while trying to parse {what} within list: {}",
            e.text()
        )),
    }
}
