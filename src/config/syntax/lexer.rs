//! Turns source text into tokens, inserting statement terminators at
//! newlines the way Alloy (and Go) do.

use crate::config::source::{Diagnostic, FileId, Span};
use crate::config::value::Number;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TokenKind {
    Ident(String),
    String {
        value: String,
        raw: bool,
    },
    Number(Number),
    True,
    False,
    Null,
    Or,
    And,
    Not,
    NotEq,
    Assign,
    Eq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Caret,
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    /// A newline (or end of file) that ends a statement.
    Terminator,
    Eof,
}

impl TokenKind {
    /// How the token is named in "expected X, got Y" messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            TokenKind::Ident(name) => format!("identifier \"{name}\""),
            TokenKind::String { .. } => "string".to_string(),
            TokenKind::Number(_) => "number".to_string(),
            TokenKind::Terminator => "newline".to_string(),
            TokenKind::Eof => "end of file".to_string(),
            other => format!("\"{}\"", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            TokenKind::True => "true",
            TokenKind::False => "false",
            TokenKind::Null => "null",
            TokenKind::Or => "||",
            TokenKind::And => "&&",
            TokenKind::Not => "!",
            TokenKind::NotEq => "!=",
            TokenKind::Assign => "=",
            TokenKind::Eq => "==",
            TokenKind::Lt => "<",
            TokenKind::LtEq => "<=",
            TokenKind::Gt => ">",
            TokenKind::GtEq => ">=",
            TokenKind::Plus => "+",
            TokenKind::Minus => "-",
            TokenKind::Star => "*",
            TokenKind::Slash => "/",
            TokenKind::Percent => "%",
            TokenKind::Caret => "^",
            TokenKind::LBrace => "{",
            TokenKind::RBrace => "}",
            TokenKind::LParen => "(",
            TokenKind::RParen => ")",
            TokenKind::LBracket => "[",
            TokenKind::RBracket => "]",
            TokenKind::Comma => ",",
            TokenKind::Dot => ".",
            _ => "",
        }
    }

    /// Tokens after which a newline ends the statement.
    fn ends_statement(&self) -> bool {
        matches!(
            self,
            TokenKind::Ident(_)
                | TokenKind::String { .. }
                | TokenKind::Number(_)
                | TokenKind::True
                | TokenKind::False
                | TokenKind::Null
                | TokenKind::RParen
                | TokenKind::RBracket
                | TokenKind::RBrace
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) span: Span,
}

/// Tokenizes the whole file. Always ends with [`TokenKind::Eof`]; lexical
/// errors are reported and the offending text skipped, so parsing can go on.
pub(crate) fn tokenize(file: FileId, text: &str, diags: &mut Vec<Diagnostic>) -> Vec<Token> {
    let mut lexer = Lexer {
        file,
        text,
        pos: 0,
        diags,
        tokens: Vec::with_capacity(text.len() / 4),
    };
    lexer.run();
    lexer.tokens
}

struct Lexer<'a> {
    file: FileId,
    text: &'a str,
    pos: usize,
    diags: &'a mut Vec<Diagnostic>,
    tokens: Vec<Token>,
}

impl Lexer<'_> {
    fn run(&mut self) {
        if self.text.starts_with('\u{feff}') {
            self.pos = '\u{feff}'.len_utf8();
        }
        loop {
            let newline_at = self.skip_blanks_and_comments();
            let wants_terminator = self.tokens.last().is_some_and(|t| t.kind.ends_statement());
            if wants_terminator && (newline_at.is_some() || self.pos >= self.text.len()) {
                let at = newline_at.unwrap_or(self.pos);
                self.push(TokenKind::Terminator, at, at + 1);
            }
            if self.pos >= self.text.len() {
                self.push(TokenKind::Eof, self.pos, self.pos);
                return;
            }
            self.next_token();
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.text[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, expected: char) -> bool {
        let matches = self.peek() == Some(expected);
        if matches {
            self.pos += expected.len_utf8();
        }
        matches
    }

    fn push(&mut self, kind: TokenKind, start: usize, end: usize) {
        let span = Span::new(self.file, start, end);
        self.tokens.push(Token { kind, span });
    }

    fn error(&mut self, start: usize, end: usize, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::new(Span::new(self.file, start, end), message));
    }

    /// Skips whitespace and comments; returns the offset of the first newline
    /// passed (including ones inside comments), which may end a statement.
    fn skip_blanks_and_comments(&mut self) -> Option<usize> {
        let mut newline_at = None;
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' => self.pos += 1,
                '\n' => {
                    newline_at.get_or_insert(self.pos);
                    self.pos += 1;
                }
                '/' if self.peek_second() == Some('/') => {
                    let line_end = self.text[self.pos..]
                        .find('\n')
                        .map_or(self.text.len(), |i| self.pos + i);
                    self.pos = line_end;
                }
                '/' if self.peek_second() == Some('*') => {
                    let start = self.pos;
                    match self.text[start + 2..].find("*/") {
                        Some(close) => {
                            let end = start + 2 + close + 2;
                            if let Some(newline) = self.text[start..end].find('\n') {
                                newline_at.get_or_insert(start + newline);
                            }
                            self.pos = end;
                        }
                        None => {
                            self.error(start, start + 2, "block comment not terminated");
                            self.pos = self.text.len();
                        }
                    }
                }
                _ => break,
            }
        }
        newline_at
    }

    fn next_token(&mut self) {
        let start = self.pos;
        let Some(c) = self.bump() else { return };
        let kind = match c {
            c if is_letter(c) => self.identifier(start),
            '0'..='9' => self.number(start),
            '.' if self.peek().is_some_and(|d| d.is_ascii_digit()) => self.number(start),
            '"' => self.quoted_string(start, '"'),
            '\'' => {
                self.error(
                    start,
                    start + 1,
                    "illegal single-quoted string; use double quotes",
                );
                self.quoted_string(start, '\'')
            }
            '`' => self.raw_string(start),
            '|' => self.doubled(start, '|', TokenKind::Or),
            '&' => self.doubled(start, '&', TokenKind::And),
            '!' => self.with_equals(TokenKind::Not, TokenKind::NotEq),
            '=' => self.with_equals(TokenKind::Assign, TokenKind::Eq),
            '<' => self.with_equals(TokenKind::Lt, TokenKind::LtEq),
            '>' => self.with_equals(TokenKind::Gt, TokenKind::GtEq),
            '+' => TokenKind::Plus,
            '-' => TokenKind::Minus,
            '*' => TokenKind::Star,
            '/' => TokenKind::Slash,
            '%' => TokenKind::Percent,
            '^' => TokenKind::Caret,
            '{' => TokenKind::LBrace,
            '}' => TokenKind::RBrace,
            '(' => TokenKind::LParen,
            ')' => TokenKind::RParen,
            '[' => TokenKind::LBracket,
            ']' => TokenKind::RBracket,
            ',' => TokenKind::Comma,
            '.' => TokenKind::Dot,
            other => {
                let message = format!("illegal character U+{:04X} {other:?}", other as u32);
                self.error(start, self.pos, message);
                return;
            }
        };
        self.push(kind, start, self.pos);
    }

    fn with_equals(&mut self, single: TokenKind, with_equals: TokenKind) -> TokenKind {
        if self.eat('=') { with_equals } else { single }
    }

    fn doubled(&mut self, start: usize, c: char, kind: TokenKind) -> TokenKind {
        if !self.eat(c) {
            self.error(start, start + 1, format!("missing second {c} in {c}{c}"));
        }
        kind
    }

    fn identifier(&mut self, start: usize) -> TokenKind {
        while self.peek().is_some_and(|c| is_letter(c) || c.is_numeric()) {
            self.bump();
        }
        match &self.text[start..self.pos] {
            "true" => TokenKind::True,
            "false" => TokenKind::False,
            "null" => TokenKind::Null,
            name => TokenKind::Ident(name.to_string()),
        }
    }

    fn skip_digits(&mut self) -> usize {
        let from = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - from
    }

    /// `digits [ "." digits ] [ ("e"|"E") ["+"|"-"] digits ]`, or `.digits…`.
    fn number(&mut self, start: usize) -> TokenKind {
        self.skip_digits();
        let mut is_float = self.text[start..].starts_with('.');
        if !is_float && self.eat('.') {
            is_float = true;
        }
        if is_float {
            self.skip_digits();
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            is_float = true;
            self.pos += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.pos += 1;
            }
            if self.skip_digits() == 0 {
                self.error(start, self.pos, "exponent has no digits");
                return TokenKind::Number(Number::Float(0.0));
            }
        }
        let literal = &self.text[start..self.pos];
        if is_float {
            return TokenKind::Number(Number::Float(literal.parse().unwrap_or(f64::INFINITY)));
        }
        match literal.parse() {
            Ok(int) => TokenKind::Number(Number::Int(int)),
            Err(_) => {
                self.error(
                    start,
                    self.pos,
                    format!(
                        "integer {literal} is too large (the maximum is {})",
                        i64::MAX
                    ),
                );
                TokenKind::Number(Number::Int(i64::MAX))
            }
        }
    }

    fn raw_string(&mut self, start: usize) -> TokenKind {
        let body_start = self.pos;
        let Some(close) = self.text[body_start..].find('`') else {
            self.error(start, start + 1, "raw string literal not terminated");
            self.pos = self.text.len();
            return TokenKind::String {
                value: self.text[body_start..].replace('\r', ""),
                raw: true,
            };
        };
        self.pos = body_start + close + 1;
        // Go drops carriage returns from raw strings so CRLF files read the same.
        let value = self.text[body_start..body_start + close].replace('\r', "");
        TokenKind::String { value, raw: true }
    }

    /// A string with Go escapes. Escapes may produce arbitrary bytes (`\xff`),
    /// so the value is assembled as bytes and must be valid UTF-8 at the end.
    fn quoted_string(&mut self, start: usize, quote: char) -> TokenKind {
        let mut bytes = Vec::new();
        loop {
            match self.peek() {
                None | Some('\n') => {
                    self.error(start, start + 1, "string literal not terminated");
                    break;
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    break;
                }
                Some('\\') => {
                    let escape_start = self.pos;
                    self.pos += 1;
                    if let Err(message) = self.escape(&mut bytes) {
                        self.error(escape_start, self.pos.max(escape_start + 1), message);
                    }
                }
                Some(c) => {
                    self.pos += c.len_utf8();
                    let mut buf = [0; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        let value = String::from_utf8(bytes).unwrap_or_else(|err| {
            self.error(start, self.pos, "string escapes produce invalid UTF-8");
            String::from_utf8_lossy(err.as_bytes()).into_owned()
        });
        TokenKind::String { value, raw: false }
    }

    /// Reads one escape after the backslash, appending its bytes. On error
    /// stops at the offending character without consuming it.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let simple = match self.peek() {
            Some('a') => Some(0x07),
            Some('b') => Some(0x08),
            Some('f') => Some(0x0c),
            Some('n') => Some(b'\n'),
            Some('r') => Some(b'\r'),
            Some('t') => Some(b'\t'),
            Some('v') => Some(0x0b),
            Some('\\') => Some(b'\\'),
            Some('"') => Some(b'"'),
            Some('\'') => Some(b'\''),
            _ => None,
        };
        if let Some(byte) = simple {
            self.pos += 1;
            out.push(byte);
            return Ok(());
        }
        let (digits, radix, is_byte) = match self.peek() {
            Some('0'..='7') => (3, 8, true),
            Some('x') => (2, 16, true),
            Some('u') => (4, 16, false),
            Some('U') => (8, 16, false),
            None | Some('\n') => return Err("escape sequence not terminated".to_string()),
            Some(other) => return Err(format!("unknown escape sequence \\{other}")),
        };
        if radix == 16 {
            self.pos += 1;
        }
        let mut code: u32 = 0;
        for _ in 0..digits {
            match self.peek() {
                Some(c) if c.is_digit(radix) => {
                    code = code * radix + c.to_digit(radix).unwrap_or(0);
                    self.pos += 1;
                }
                None | Some('\n') => return Err("escape sequence not terminated".to_string()),
                Some(c) => return Err(format!("illegal character {c:?} in escape sequence")),
            }
        }
        if is_byte {
            let byte = u8::try_from(code)
                .map_err(|_| format!("octal escape value {code} is greater than 255"))?;
            out.push(byte);
            return Ok(());
        }
        let c = char::from_u32(code).ok_or("escape sequence is an invalid Unicode code point")?;
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }
}

pub(crate) fn is_letter(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (!c.is_ascii() && c.is_alphabetic())
}

/// Whether `s` could be written as a bare identifier (block labels must be).
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_letter) && chars.all(|c| is_letter(c) || c.is_numeric())
}

#[cfg(test)]
#[path = "lexer_tests.rs"]
mod tests;
