//! Finding the references an expression makes, so the runtime can order
//! components before evaluating anything.

use super::ast::{Body, Expr, ExprKind, Stmt};
use crate::config::source::Span;
use crate::config::stdlib;

/// An identifier followed by field accesses, e.g.
/// `pyroscope.write.staging.receiver`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub path: Vec<String>,
    pub span: Span,
}

/// Every maximal `a.b.c` chain in `expr`, in source order, except chains
/// rooted at a standard-library name (`sys.env("X")` yields nothing, though
/// its arguments are still searched).
pub fn references(expr: &Expr) -> Vec<Reference> {
    let mut found = Vec::new();
    collect(expr, &mut found);
    found
}

/// The references of every attribute in `body`, including nested blocks.
pub fn body_references(body: &Body) -> Vec<Reference> {
    let mut found = Vec::new();
    collect_body(body, &mut found);
    found
}

fn collect_body(body: &Body, found: &mut Vec<Reference>) {
    for stmt in &body.stmts {
        match stmt {
            Stmt::Attribute(attribute) => collect(&attribute.value, found),
            Stmt::Block(block) => collect_body(&block.body, found),
        }
    }
}

fn collect(expr: &Expr, found: &mut Vec<Reference>) {
    if let Some(path) = reference_path(expr) {
        if !stdlib::is_stdlib_name(&path[0]) {
            found.push(Reference {
                path,
                span: expr.span,
            });
        }
        return;
    }
    match &expr.kind {
        ExprKind::List(items) => items.iter().for_each(|item| collect(item, found)),
        ExprKind::Object(fields) => fields.iter().for_each(|field| collect(&field.value, found)),
        ExprKind::Access { target, .. } => collect(target, found),
        ExprKind::Index { target, index } => {
            collect(target, found);
            collect(index, found);
        }
        ExprKind::Call { callee, args } => {
            collect(callee, found);
            args.iter().for_each(|arg| collect(arg, found));
        }
        ExprKind::Unary { operand, .. } => collect(operand, found),
        ExprKind::Binary { lhs, rhs, .. } => {
            collect(lhs, found);
            collect(rhs, found);
        }
        ExprKind::Null
        | ExprKind::Bool(_)
        | ExprKind::Number(_)
        | ExprKind::String(_)
        | ExprKind::Identifier(_)
        | ExprKind::Invalid => {}
    }
}

/// `Some(["a", "b", "c"])` if `expr` is exactly `a.b.c`.
pub(crate) fn reference_path(expr: &Expr) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut current = expr;
    loop {
        match &current.kind {
            ExprKind::Access { target, field, .. } => {
                fields.push(field.clone());
                current = target;
            }
            ExprKind::Identifier(root) => {
                fields.push(root.clone());
                fields.reverse();
                return Some(fields);
            }
            _ => return None,
        }
    }
}
