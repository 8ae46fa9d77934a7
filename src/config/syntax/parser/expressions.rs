//! Expressions: precedence climbing over the binary operators, then
//! prefix operators, postfix access/index/call, and primary expressions.

use super::{Diagnostic, MAX_HEIGHT, Parser, Span, TokenKind, Tree};
use crate::config::syntax::ast::{BinaryOp, Expr, ExprKind, ObjectField, UnaryOp};

impl Parser<'_> {
    fn node(&mut self, kind: ExprKind, span: Span, child_height: u32) -> Tree {
        let height = child_height + 1;
        if height > MAX_HEIGHT {
            let message =
                format!("expression is too deeply nested (the limit is {MAX_HEIGHT} levels)");
            self.syntax_error(Diagnostic::new(span, message));
            return self.invalid(span);
        }
        Tree {
            expr: Expr { kind, span },
            height,
        }
    }

    pub(super) fn invalid(&self, span: Span) -> Tree {
        Tree {
            expr: Expr {
                kind: ExprKind::Invalid,
                span,
            },
            height: 1,
        }
    }

    pub(super) fn expression(&mut self) -> Tree {
        if !self.enter() {
            let span = self.span();
            self.skip_expression();
            return self.invalid(span);
        }
        let tree = self.binary(1);
        self.leave();
        tree
    }

    /// Precedence climbing over the binary operators.
    fn binary(&mut self, min_precedence: u8) -> Tree {
        let mut lhs = self.unary();
        while let Some(op) = binary_op(self.peek()) {
            let precedence = op.precedence();
            if precedence < min_precedence {
                break;
            }
            let op_span = self.advance().span;
            let rhs = if op == BinaryOp::Pow {
                // Right-associative: the operand may itself be a power.
                if !self.enter() {
                    self.skip_expression();
                    return self.invalid(op_span);
                }
                let rhs = self.binary(precedence);
                self.leave();
                rhs
            } else {
                self.binary(precedence + 1)
            };
            let span = lhs.expr.span.to(rhs.expr.span);
            let height = lhs.height.max(rhs.height);
            let kind = ExprKind::Binary {
                op,
                op_span,
                lhs: Box::new(lhs.expr),
                rhs: Box::new(rhs.expr),
            };
            lhs = self.node(kind, span, height);
        }
        lhs
    }

    fn unary(&mut self) -> Tree {
        let op = match self.peek() {
            TokenKind::Not => UnaryOp::Not,
            TokenKind::Minus => UnaryOp::Negate,
            _ => return self.postfix(),
        };
        let op_span = self.advance().span;
        if !self.enter() {
            self.skip_expression();
            return self.invalid(op_span);
        }
        let operand = self.unary();
        self.leave();
        let span = op_span.to(operand.expr.span);
        let kind = ExprKind::Unary {
            op,
            operand: Box::new(operand.expr),
        };
        self.node(kind, span, operand.height)
    }

    /// A primary expression followed by `.field`, `[index]` and `(args)`.
    fn postfix(&mut self) -> Tree {
        let mut tree = self.primary();
        loop {
            let start = tree.expr.span;
            let (kind, end, child_height) = match self.peek() {
                TokenKind::Dot => {
                    self.advance();
                    let TokenKind::Ident(field) = self.peek() else {
                        self.unexpected("field name after \".\"");
                        return tree;
                    };
                    let field = field.clone();
                    let field_span = self.advance().span;
                    let target = Box::new(tree.expr);
                    (
                        ExprKind::Access {
                            target,
                            field,
                            field_span,
                        },
                        field_span,
                        tree.height,
                    )
                }
                TokenKind::LBracket => {
                    self.advance();
                    let index = self.expression();
                    let end = self.closing(TokenKind::RBracket);
                    let height = tree.height.max(index.height);
                    let (target, index) = (Box::new(tree.expr), Box::new(index.expr));
                    (ExprKind::Index { target, index }, end, height)
                }
                TokenKind::LParen => {
                    self.advance();
                    let mut args = Vec::new();
                    let (end, args_height) = self.sequence(TokenKind::RParen, |parser| {
                        let arg = parser.expression();
                        args.push(arg.expr);
                        arg.height
                    });
                    let callee = Box::new(tree.expr);
                    (
                        ExprKind::Call { callee, args },
                        end,
                        tree.height.max(args_height),
                    )
                }
                _ => return tree,
            };
            tree = self.node(kind, start.to(end), child_height);
        }
    }

    fn primary(&mut self) -> Tree {
        match self.peek() {
            TokenKind::LParen => return self.parenthesized(),
            TokenKind::LBracket => return self.list(),
            TokenKind::LBrace => return self.object(),
            TokenKind::Null
            | TokenKind::True
            | TokenKind::False
            | TokenKind::Number(_)
            | TokenKind::Ident(_)
            | TokenKind::String { .. } => {}
            _ => {
                let span = self.span();
                self.unexpected("expression");
                self.skip_expression();
                return self.invalid(span);
            }
        }
        let token = self.advance();
        let kind = match token.kind {
            TokenKind::Null => ExprKind::Null,
            TokenKind::True => ExprKind::Bool(true),
            TokenKind::False => ExprKind::Bool(false),
            TokenKind::Number(number) => ExprKind::Number(number),
            TokenKind::Ident(name) => ExprKind::Identifier(name),
            TokenKind::String { value, .. } => ExprKind::String(value),
            _ => ExprKind::Invalid,
        };
        self.node(kind, token.span, 0)
    }

    fn parenthesized(&mut self) -> Tree {
        let open = self.advance().span;
        let mut inner = self.expression();
        let close = self.closing(TokenKind::RParen);
        // Keep the parentheses in the span so error carets cover them.
        inner.expr.span = open.to(close);
        inner
    }

    fn list(&mut self) -> Tree {
        let open = self.advance().span;
        let mut items = Vec::new();
        let (close, height) = self.sequence(TokenKind::RBracket, |parser| {
            let item = parser.expression();
            items.push(item.expr);
            item.height
        });
        self.node(ExprKind::List(items), open.to(close), height)
    }

    fn object(&mut self) -> Tree {
        let open = self.advance().span;
        let mut fields = Vec::new();
        let (close, height) = self.sequence(TokenKind::RBrace, |parser| {
            let Some(field) = parser.object_field() else {
                return 0;
            };
            let height = field.1;
            fields.push(field.0);
            height
        });
        self.node(ExprKind::Object(fields), open.to(close), height)
    }

    /// `( identifier | string ) "=" Expr`
    fn object_field(&mut self) -> Option<(ObjectField, u32)> {
        let quoted = matches!(self.peek(), TokenKind::String { .. });
        if !quoted && !matches!(self.peek(), TokenKind::Ident(_)) {
            self.unexpected("field name (identifier or string)");
            self.skip_expression();
            return None;
        }
        let token = self.advance();
        let (TokenKind::Ident(key) | TokenKind::String { value: key, .. }) = token.kind else {
            return None;
        };
        if !self.at(&TokenKind::Assign) {
            self.unexpected(&format!("\"=\" after field name {key:?}"));
            self.skip_expression();
            return None;
        }
        self.advance();
        let value = self.expression();
        let field = ObjectField {
            key,
            key_span: token.span,
            quoted,
            value: value.expr,
        };
        Some((field, value.height))
    }

    /// Comma-separated elements up to `close`, which is consumed. A trailing
    /// comma is allowed; a newline is not a separator (as in Alloy). Returns
    /// the closing span and the tallest element's height.
    fn sequence(
        &mut self,
        close: TokenKind,
        mut element: impl FnMut(&mut Self) -> u32,
    ) -> (Span, u32) {
        let close_symbol = match close {
            TokenKind::RParen => ")",
            TokenKind::RBracket => "]",
            _ => "}",
        };
        let mut height = 0;
        loop {
            match self.peek() {
                kind if *kind == close => return (self.advance().span, height),
                TokenKind::Eof | TokenKind::RParen | TokenKind::RBracket | TokenKind::RBrace => {
                    self.unexpected(&format!("\"{close_symbol}\""));
                    return (self.span(), height);
                }
                TokenKind::Terminator => {
                    self.advance();
                    continue;
                }
                _ => {}
            }
            height = height.max(element(self));
            match self.peek() {
                TokenKind::Comma => {
                    self.advance();
                }
                TokenKind::Terminator => {
                    let message = "missing \",\" before newline";
                    let help = "elements spanning several lines need a comma after each one, including the last";
                    self.syntax_error(Diagnostic::new(self.span(), message).with_help(help));
                    self.advance();
                }
                TokenKind::Eof | TokenKind::RParen | TokenKind::RBracket | TokenKind::RBrace => {}
                _ => self.unexpected(&format!("\",\" or \"{close_symbol}\"")),
            }
        }
    }

    /// Consumes `close` if present; otherwise reports it missing.
    fn closing(&mut self, close: TokenKind) -> Span {
        if self.at(&close) {
            return self.advance().span;
        }
        let symbol = if close == TokenKind::RParen { ")" } else { "]" };
        self.unexpected(&format!("\"{symbol}\""));
        let here = self.span();
        Span {
            end: here.start,
            ..here
        }
    }
}

pub(super) fn starts_expression(kind: &TokenKind) -> bool {
    matches!(
        kind,
        TokenKind::Ident(_)
            | TokenKind::String { .. }
            | TokenKind::Number(_)
            | TokenKind::True
            | TokenKind::False
            | TokenKind::Null
            | TokenKind::LParen
            | TokenKind::LBracket
            | TokenKind::LBrace
            | TokenKind::Not
            | TokenKind::Minus
    )
}

fn binary_op(kind: &TokenKind) -> Option<BinaryOp> {
    Some(match kind {
        TokenKind::Or => BinaryOp::Or,
        TokenKind::And => BinaryOp::And,
        TokenKind::Eq => BinaryOp::Eq,
        TokenKind::NotEq => BinaryOp::NotEq,
        TokenKind::Lt => BinaryOp::Lt,
        TokenKind::LtEq => BinaryOp::LtEq,
        TokenKind::Gt => BinaryOp::Gt,
        TokenKind::GtEq => BinaryOp::GtEq,
        TokenKind::Plus => BinaryOp::Add,
        TokenKind::Minus => BinaryOp::Sub,
        TokenKind::Star => BinaryOp::Mul,
        TokenKind::Slash => BinaryOp::Div,
        TokenKind::Percent => BinaryOp::Mod,
        TokenKind::Caret => BinaryOp::Pow,
        _ => return None,
    })
}
