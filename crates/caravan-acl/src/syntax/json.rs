//! JSON rules, read as HCL1's JSON parser reads them: lenient (trailing commas, an object ends
//! at the first token that is not a comma, booleans and nested lists inside lists are skipped),
//! then flattened: an object whose values are all objects becomes multi-key items, and a list of
//! objects repeats its key, so `{"namespace": {"default": {...}}}` reads like
//! `namespace "default" {...}`.

use super::unquote::unquote;
use super::{Item, MAX_DEPTH, Node, SyntaxError};

pub(super) fn parse(rules: &str) -> Result<Vec<Item>, SyntaxError> {
    let mut p = Parser {
        sc: Scanner::new(rules),
        tok: Tok::Eof,
        depth: 0,
    };
    let root = p.root().map_err(Error::into_syntax)?;
    Ok(flatten_list(root))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Eof,
    Str(String),
    Number(String),
    Float(String),
    Bool(String),
    Null,
    LBrack,
    RBrack,
    LBrace,
    RBrace,
    Comma,
    Colon,
    Period,
}

impl Tok {
    fn name(&self) -> &'static str {
        match self {
            Tok::Eof => "EOF",
            Tok::Str(_) => "STRING",
            Tok::Number(_) => "NUMBER",
            Tok::Float(_) => "FLOAT",
            Tok::Bool(_) => "BOOL",
            Tok::Null => "NULL",
            Tok::LBrack => "LBRACK",
            Tok::RBrack => "RBRACK",
            Tok::LBrace => "LBRACE",
            Tok::RBrace => "RBRACE",
            Tok::Comma => "COMMA",
            Tok::Colon => "COLON",
            Tok::Period => "PERIOD",
        }
    }
}

enum Error {
    /// "EOF token found": ends an object quietly.
    Eof,
    /// A parser error, overlooked when it stopped on a `}`.
    Parse(String),
    /// Scanner and unquoting errors, and the depth limit.
    Fatal(String),
}

impl Error {
    fn into_syntax(self) -> SyntaxError {
        match self {
            Error::Eof => SyntaxError("EOF token found".to_owned()),
            Error::Parse(m) | Error::Fatal(m) => SyntaxError(m),
        }
    }
}

struct Scanner {
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
}

impl Scanner {
    fn new(src: &str) -> Scanner {
        Scanner {
            chars: src.chars().collect(),
            i: 0,
            line: 1,
            col: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 0;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    /// Positioned at the last character read, as HCL1's JSON scanner reports.
    fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::Fatal(format!("{}:{}: {msg}", self.line, self.col.max(1)))
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some('0'..='9')) {
            self.bump();
        }
    }

    fn next_token(&mut self) -> Result<Tok, Error> {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.bump();
        }
        let start = self.i;
        let Some(c) = self.bump() else {
            return Ok(Tok::Eof);
        };
        Ok(match c {
            c if c.is_ascii_alphabetic() || c == '_' || (!c.is_ascii() && c.is_alphabetic()) => {
                while matches!(self.peek(), Some(c) if c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
                {
                    self.bump();
                }
                let word: String = self.chars[start..self.i].iter().collect();
                match word.as_str() {
                    "true" | "false" => Tok::Bool(word),
                    "null" => Tok::Null,
                    _ => return Err(self.err("illegal char")),
                }
            }
            '0'..='9' | '-' => {
                if c == '-' && !matches!(self.peek(), Some('0'..='9')) {
                    return Err(self.err("illegal char"));
                }
                self.digits();
                let mut float = false;
                if self.peek() == Some('.') {
                    self.bump();
                    self.digits();
                    float = true;
                }
                if matches!(self.peek(), Some('e' | 'E')) {
                    self.bump();
                    if matches!(self.peek(), Some('+' | '-')) {
                        self.bump();
                    }
                    self.digits();
                    float = true;
                }
                let text: String = self.chars[start..self.i].iter().collect();
                if float {
                    Tok::Float(text)
                } else {
                    Tok::Number(text)
                }
            }
            '.' => Tok::Period,
            '"' => self.string()?,
            '[' => Tok::LBrack,
            ']' => Tok::RBrack,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            ',' => Tok::Comma,
            ':' => Tok::Colon,
            c => return Err(self.err(format!("illegal char: {c}"))),
        })
    }

    fn string(&mut self) -> Result<Tok, Error> {
        let start = self.i;
        loop {
            match self.bump() {
                None | Some('\n') => return Err(self.err("literal not terminated")),
                Some('"') => break,
                Some('\\') => {
                    if self.bump().is_none() {
                        return Err(self.err("literal not terminated"));
                    }
                }
                Some(_) => {}
            }
        }
        let body: String = self.chars[start..self.i - 1].iter().collect();
        match unquote(&body, false) {
            Some(v) => Ok(Tok::Str(v)),
            None => Err(Error::Fatal(format!(
                "invalid acl policy: unquote \"{body}\" err: invalid syntax"
            ))),
        }
    }
}

struct Parser {
    sc: Scanner,
    tok: Tok,
    depth: usize,
}

impl Parser {
    fn scan(&mut self) -> Result<Tok, Error> {
        self.tok = self.sc.next_token()?;
        Ok(self.tok.clone())
    }

    fn root(&mut self) -> Result<Vec<Item>, Error> {
        match self.scan()? {
            Tok::LBrace => self.object_type(),
            Tok::Eof => Err(Error::Eof),
            t => Err(Error::Parse(format!(
                "Expected object, got unknown token: {}",
                t.name()
            ))),
        }
    }

    fn nest<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, Error>) -> Result<T, Error> {
        if self.depth >= MAX_DEPTH {
            return Err(self
                .sc
                .err(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// After `{`. The token ending the item list is taken as the end of the object, whatever
    /// it is, as HCL1 does.
    fn object_type(&mut self) -> Result<Vec<Item>, Error> {
        self.nest(|p| {
            let mut items = Vec::new();
            loop {
                match p.object_item() {
                    Ok(item) => items.push(item),
                    Err(Error::Eof) => break,
                    Err(Error::Parse(_)) if p.tok == Tok::RBrace => break,
                    Err(e) => return Err(e),
                }
                if p.scan()? != Tok::Comma {
                    break;
                }
            }
            Ok(items)
        })
    }

    fn object_item(&mut self) -> Result<Item, Error> {
        let mut keys = Vec::new();
        loop {
            match self.scan()? {
                Tok::Eof => return Err(Error::Eof),
                Tok::Str(k) => keys.push(k),
                Tok::Colon if !keys.is_empty() => break,
                t => return Err(Error::Parse(format!("expected: STRING got: {}", t.name()))),
            }
        }
        let val = match self.scan()? {
            Tok::Str(s) | Tok::Number(s) | Tok::Float(s) | Tok::Bool(s) => Node::Literal(s),
            // HCL1 reads JSON null as an empty string.
            Tok::Null => Node::Literal(String::new()),
            Tok::LBrace => Node::Object(self.object_type()?),
            Tok::LBrack => Node::List(self.list_type()?),
            Tok::Eof => return Err(Error::Eof),
            t => {
                return Err(Error::Parse(format!(
                    "Expected object value, got unknown token: {}",
                    t.name()
                )));
            }
        };
        Ok(Item { keys, val })
    }

    fn list_type(&mut self) -> Result<Vec<Node>, Error> {
        self.nest(|p| {
            let mut list = Vec::new();
            loop {
                match p.scan()? {
                    Tok::Str(s) | Tok::Number(s) | Tok::Float(s) => list.push(Node::Literal(s)),
                    // HCL1 skips these inside lists.
                    Tok::Comma | Tok::Bool(_) | Tok::LBrack => {}
                    Tok::LBrace => list.push(Node::Object(p.object_type()?)),
                    Tok::RBrack => return Ok(list),
                    t => {
                        return Err(Error::Parse(format!(
                            "unexpected token while parsing list: {}",
                            t.name()
                        )));
                    }
                }
            }
        })
    }
}

fn flatten_list(items: Vec<Item>) -> Vec<Item> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        flatten_item(item, &mut out);
    }
    for item in &mut out {
        flatten_node(&mut item.val);
    }
    out
}

fn flatten_node(node: &mut Node) {
    match node {
        Node::Object(items) => *items = flatten_list(std::mem::take(items)),
        Node::List(elems) => elems.iter_mut().for_each(flatten_node),
        Node::Literal(_) => {}
    }
}

fn is_object(n: &Node) -> bool {
    matches!(n, Node::Object(_))
}

fn flatten_item(item: Item, out: &mut Vec<Item>) {
    match item.val {
        Node::Object(children)
            if !children.is_empty() && children.iter().all(|c| is_object(&c.val)) =>
        {
            for child in children {
                let mut keys = item.keys.clone();
                keys.extend(child.keys);
                flatten_item(
                    Item {
                        keys,
                        val: child.val,
                    },
                    out,
                );
            }
        }
        Node::List(elems) if !elems.is_empty() && elems.iter().all(is_object) => {
            for val in elems {
                flatten_item(
                    Item {
                        keys: item.keys.clone(),
                        val,
                    },
                    out,
                );
            }
        }
        val => out.push(Item {
            keys: item.keys,
            val,
        }),
    }
}
