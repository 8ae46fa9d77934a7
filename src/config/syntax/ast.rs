//! The syntax tree of a configuration file.

use crate::config::source::Span;
use crate::config::value::Number;

#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub body: Body,
}

/// The statements of a file or of a block, in source order.
#[derive(Clone, Debug, PartialEq)]
pub struct Body {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Attribute(Attribute),
    Block(Block),
}

impl Stmt {
    pub fn name(&self) -> &str {
        match self {
            Stmt::Attribute(attribute) => &attribute.name,
            Stmt::Block(block) => &block.name,
        }
    }

    pub fn name_span(&self) -> Span {
        match self {
            Stmt::Attribute(attribute) => attribute.name_span,
            Stmt::Block(block) => block.name_span,
        }
    }
}

/// `name = value`
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub name_span: Span,
    pub value: Expr,
}

/// `a.b.c "label" { body }`
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Dotted name, e.g. `pyroscope.write`.
    pub name: String,
    pub name_span: Span,
    pub label: Option<String>,
    /// Includes the quotes.
    pub label_span: Option<Span>,
    pub body: Body,
    /// From the name to the closing brace.
    pub span: Span,
}

impl Block {
    /// Name and label: where "missing attribute" style errors point.
    pub fn header_span(&self) -> Span {
        self.label_span
            .map_or(self.name_span, |label| self.name_span.to(label))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Identifier(String),
    List(Vec<Expr>),
    Object(Vec<ObjectField>),
    /// `target.field`
    Access {
        target: Box<Expr>,
        field: String,
        field_span: Span,
    },
    /// `target[index]`
    Index {
        target: Box<Expr>,
        index: Box<Expr>,
    },
    /// `callee(args…)`
    Call {
        callee: Box<Expr>,
        args: Vec<Expr>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        op_span: Span,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// Stands where the parser could not read an expression; the syntax
    /// error has already been reported.
    Invalid,
}

/// `key = value` inside an object literal.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectField {
    pub key: String,
    pub key_span: Span,
    /// Written as `"key"` rather than `key`.
    pub quoted: bool,
    pub value: Expr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Negate,
}

impl UnaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            UnaryOp::Not => "!",
            UnaryOp::Negate => "-",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::NotEq => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
        }
    }

    /// Binding strength; higher binds tighter. `^` is the only
    /// right-associative operator.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq
            | BinaryOp::NotEq
            | BinaryOp::Lt
            | BinaryOp::LtEq
            | BinaryOp::Gt
            | BinaryOp::GtEq => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 5,
            BinaryOp::Pow => 6,
        }
    }
}
