//! The syntax of the configuration language: tokens, the tree, the parser
//! and reference extraction.

mod ast;
mod lexer;
mod parser;
mod references;

pub use ast::{Attribute, BinaryOp, Block, Body, Expr, ExprKind, File, ObjectField, Stmt, UnaryOp};
pub use parser::parse;
pub(crate) use references::reference_path;
pub use references::{Reference, body_references, references};
