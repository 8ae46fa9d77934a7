//! Recursive-descent parser. It never stops at the first error: each
//! problem is reported and parsing resumes at the next statement, element
//! or closing bracket, so one run lists every syntax error in a file.

mod expressions;

use super::ast::{Attribute, Block, Body, Expr, File, Stmt};
use super::lexer::{Token, TokenKind, is_identifier, tokenize};
use crate::config::source::{Diagnostic, FileId, SourceMap, Span};
use expressions::starts_expression;

/// Deepest recursion into blocks, brackets and prefix operators; far beyond
/// any real configuration, small enough that garbage input can't overflow
/// the stack.
const MAX_NESTING: u32 = 128;

/// Tallest expression tree. Left-associative chains (`a.b.b.b…`, `1+1+1…`)
/// are built by loops, not recursion, so they need their own bound to keep
/// tree walks (evaluation, dropping) off the end of the stack.
const MAX_HEIGHT: u32 = 256;

/// Parses a file added to `map`. Returns everything that could be parsed,
/// plus every lexical and syntax error, ordered by position.
pub fn parse(map: &SourceMap, file: FileId) -> (File, Vec<Diagnostic>) {
    let text = map.text(file);
    let mut diags = Vec::new();
    let tokens = tokenize(file, text, &mut diags);
    let mut parser = Parser {
        map,
        file,
        tokens,
        pos: 0,
        consumed_end: 0,
        diags: Vec::new(),
        last_error_line: 0,
        nesting: 0,
    };
    let stmts = parser.body(Closing::EndOfFile);
    diags.append(&mut parser.diags);
    diags.sort_by_key(|d| d.span.start);
    let span = Span::new(file, 0, text.len());
    (
        File {
            body: Body { stmts, span },
        },
        diags,
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Closing {
    EndOfFile,
    Brace,
}

/// An expression and the height of its tree (see [`MAX_HEIGHT`]).
struct Tree {
    expr: Expr,
    height: u32,
}

struct Parser<'a> {
    map: &'a SourceMap,
    file: FileId,
    /// Always ends with `Eof`; `pos` never moves past it.
    tokens: Vec<Token>,
    pos: usize,
    /// End offset of the last consumed token, terminators aside.
    consumed_end: u32,
    diags: Vec<Diagnostic>,
    /// 1-based line of the last syntax error; 0 before the first one.
    last_error_line: usize,
    nesting: u32,
}

impl Parser<'_> {
    // === Token access ===

    fn peek(&self) -> &TokenKind {
        &self.tokens[self.pos].kind
    }

    fn span(&self) -> Span {
        self.tokens[self.pos].span
    }

    /// Consumes the current token, handing over its contents.
    fn advance(&mut self) -> Token {
        let current = &mut self.tokens[self.pos];
        if current.kind == TokenKind::Eof {
            return current.clone();
        }
        self.pos += 1;
        if current.kind != TokenKind::Terminator {
            self.consumed_end = current.span.end;
        }
        // Consumed tokens are never looked at again, so take rather than clone.
        let placeholder = Token {
            kind: TokenKind::Eof,
            span: current.span,
        };
        std::mem::replace(current, placeholder)
    }

    /// Whether the current token starts on a later line than the last
    /// consumed one ended.
    fn on_new_line(&self) -> bool {
        let previous_line = self
            .map
            .line_of(self.file, self.consumed_end.saturating_sub(1));
        self.map.line_of(self.file, self.span().start) > previous_line
    }

    fn at(&self, kind: &TokenKind) -> bool {
        self.peek() == kind
    }

    // === Errors and recovery ===

    /// Reports a syntax error unless one was already reported on the same
    /// line: after the first error, the rest of the line is usually noise.
    fn syntax_error(&mut self, diagnostic: Diagnostic) {
        let line = self.map.line_of(self.file, diagnostic.span.start);
        if line != self.last_error_line {
            self.last_error_line = line;
            self.diags.push(diagnostic);
        }
    }

    /// Reports that the current token is not what `expected` describes.
    /// When that token is on a later line, the problem is at the end of the
    /// previous one, so that is where the error points.
    fn unexpected(&mut self, expected: &str) {
        let (span, got) = if self.on_new_line() {
            let end = self.consumed_end as usize;
            (Span::new(self.file, end, end), "newline".to_string())
        } else {
            (self.span(), self.peek().describe())
        };
        self.syntax_error(Diagnostic::new(
            span,
            format!("expected {expected}, got {got}"),
        ));
    }

    /// Skips to the end of the current statement: a newline outside
    /// brackets, or the `}` closing the enclosing block (not consumed).
    fn skip_statement(&mut self) {
        let mut depth = 0i32;
        loop {
            match self.peek() {
                TokenKind::Eof => return,
                TokenKind::Terminator | TokenKind::RBrace if depth <= 0 => return,
                TokenKind::LBrace | TokenKind::LParen | TokenKind::LBracket => depth += 1,
                TokenKind::RBrace | TokenKind::RParen | TokenKind::RBracket => depth -= 1,
                _ => {}
            }
            self.advance();
        }
    }

    /// Skips the rest of a broken expression, up to a token that can end it.
    fn skip_expression(&mut self) {
        while !matches!(
            self.peek(),
            TokenKind::Terminator
                | TokenKind::Comma
                | TokenKind::RParen
                | TokenKind::RBracket
                | TokenKind::RBrace
                | TokenKind::Eof
        ) {
            self.advance();
        }
    }

    fn enter(&mut self) -> bool {
        if self.nesting >= MAX_NESTING {
            let message = format!("nesting is too deep (the limit is {MAX_NESTING} levels)");
            self.syntax_error(Diagnostic::new(self.span(), message));
            return false;
        }
        self.nesting += 1;
        true
    }

    fn leave(&mut self) {
        self.nesting -= 1;
    }

    // === Statements ===

    /// `Body = [ Stmt { newline Stmt } ]`, up to (not including) its closing.
    fn body(&mut self, closing: Closing) -> Vec<Stmt> {
        let mut stmts = Vec::new();
        loop {
            match self.peek() {
                TokenKind::Eof => break,
                TokenKind::Terminator => {
                    self.advance();
                    continue;
                }
                TokenKind::RBrace if closing == Closing::Brace => break,
                TokenKind::RBrace => {
                    self.syntax_error(Diagnostic::new(
                        self.span(),
                        "unexpected \"}\" with no block to close",
                    ));
                    self.advance();
                    continue;
                }
                _ => {}
            }
            stmts.extend(self.statement());
            match self.peek() {
                TokenKind::Terminator => {
                    self.advance();
                }
                TokenKind::RBrace | TokenKind::Eof => {}
                // Only after recovery: the statement was cut short at a
                // newline that produced no terminator.
                _ if self.on_new_line() => {}
                _ => {
                    self.unexpected("newline after statement");
                    self.skip_statement();
                }
            }
        }
        stmts
    }

    /// `Stmt = ident "=" Expr | ident { "." ident } [ label ] "{" Body "}"`
    fn statement(&mut self) -> Option<Stmt> {
        let TokenKind::Ident(first) = self.peek() else {
            self.unexpected("attribute or block");
            self.skip_statement();
            return None;
        };
        let mut name = first.clone();
        let mut name_span = self.advance().span;
        while self.at(&TokenKind::Dot) {
            self.advance();
            let TokenKind::Ident(part) = self.peek() else {
                self.unexpected("identifier after \".\"");
                self.skip_statement();
                return None;
            };
            name.push('.');
            name.push_str(part);
            name_span = name_span.to(self.advance().span);
        }
        let label = self.block_label();
        match self.peek() {
            TokenKind::Assign => {
                let assign = self.advance().span;
                let value = self.attribute_value(assign);
                self.attribute(name, name_span, label.is_some(), value)
            }
            TokenKind::LBrace => self.block(name, name_span, label).map(Stmt::Block),
            _ => {
                let expected = if name.contains('.') || label.is_some() {
                    "\"{\" to open the block".to_string()
                } else {
                    format!("\"=\" or \"{{\" after \"{name}\"")
                };
                self.unexpected(&expected);
                self.skip_statement();
                None
            }
        }
    }

    /// The value after `=`. A newline there does not end the statement (as
    /// in Alloy), so a forgotten value would swallow the next line; when the
    /// next line starts like a statement, report the value missing instead.
    fn attribute_value(&mut self, assign: Span) -> Expr {
        if self.on_new_line() && (!starts_expression(self.peek()) || self.looks_like_statement()) {
            let message = format!(
                "expected a value after \"=\", got {}",
                self.peek().describe()
            );
            self.syntax_error(Diagnostic::new(assign, message));
            return self.invalid(assign).expr;
        }
        self.expression().expr
    }

    /// `ident { "." ident } [ string ] ( "=" | "{" )` ahead?
    fn looks_like_statement(&self) -> bool {
        let mut ahead = self.tokens[self.pos..].iter().map(|token| &token.kind);
        if !matches!(ahead.next(), Some(TokenKind::Ident(_))) {
            return false;
        }
        loop {
            match ahead.next() {
                Some(TokenKind::Dot) if matches!(ahead.next(), Some(TokenKind::Ident(_))) => {
                    continue;
                }
                Some(TokenKind::String { .. }) => {
                    return matches!(ahead.next(), Some(TokenKind::LBrace));
                }
                Some(TokenKind::Assign | TokenKind::LBrace) => return true,
                _ => return false,
            }
        }
    }

    fn attribute(
        &mut self,
        name: String,
        name_span: Span,
        has_label: bool,
        value: Expr,
    ) -> Option<Stmt> {
        if name.contains('.') {
            let message =
                format!("attribute name \"{name}\" must be a single identifier, without \".\"");
            self.diags.push(Diagnostic::new(name_span, message));
            return None;
        }
        if has_label {
            self.diags
                .push(Diagnostic::new(name_span, "attributes cannot have labels"));
            return None;
        }
        Some(Stmt::Attribute(Attribute {
            name,
            name_span,
            value,
        }))
    }

    /// The optional `"label"` after a block name.
    fn block_label(&mut self) -> Option<(String, Span)> {
        let TokenKind::String { raw, .. } = *self.peek() else {
            return None;
        };
        let token = self.advance();
        let TokenKind::String { value, .. } = token.kind else {
            return None;
        };
        if raw {
            let message = "block label must be a double-quoted string";
            self.syntax_error(Diagnostic::new(token.span, message));
        } else if !is_identifier(&value) {
            let message = format!("block label must be a valid identifier, got {value:?}");
            let help = "labels use letters, digits and underscores, and do not start with a digit";
            self.syntax_error(Diagnostic::new(token.span, message).with_help(help));
        }
        Some((value, token.span))
    }

    fn block(
        &mut self,
        name: String,
        name_span: Span,
        label: Option<(String, Span)>,
    ) -> Option<Block> {
        let open = self.advance().span;
        if !self.enter() {
            self.skip_past_closing_brace();
            return None;
        }
        let stmts = self.body(Closing::Brace);
        self.leave();
        let close = if self.at(&TokenKind::RBrace) {
            self.advance().span
        } else {
            let message =
                format!("block \"{name}\" is not closed: expected \"}}\" before end of file");
            self.diags.push(Diagnostic::new(open, message));
            self.span()
        };
        let (label, label_span) = label.unzip();
        Some(Block {
            name,
            name_span,
            label,
            label_span,
            body: Body {
                stmts,
                span: open.to(close),
            },
            span: name_span.to(close),
        })
    }

    /// After an opening brace whose contents are being dropped.
    fn skip_past_closing_brace(&mut self) {
        let mut depth = 0u32;
        loop {
            match self.advance().kind {
                TokenKind::Eof => return,
                TokenKind::LBrace => depth += 1,
                TokenKind::RBrace if depth == 0 => return,
                TokenKind::RBrace => depth -= 1,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
