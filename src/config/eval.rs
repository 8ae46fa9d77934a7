//! Evaluation of expressions against a scope of named values.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use super::convert::Secret;
use super::source::{Diagnostic, Span, did_you_mean};
use super::stdlib;
use super::syntax::{BinaryOp, Expr, ExprKind, UnaryOp, reference_path};
use super::value::{Number, Value};

/// Resolves top-level identifiers that are not in the standard library,
/// e.g. `pyroscope` to the tree of component exports.
pub trait Scope {
    fn lookup(&self, name: &str) -> Option<Value>;
}

/// The empty scope: only the standard library is visible.
impl Scope for () {
    fn lookup(&self, _name: &str) -> Option<Value> {
        None
    }
}

impl Scope for BTreeMap<String, Value> {
    fn lookup(&self, name: &str) -> Option<Value> {
        self.get(name).cloned()
    }
}

impl Scope for HashMap<String, Value> {
    fn lookup(&self, name: &str) -> Option<Value> {
        self.get(name).cloned()
    }
}

/// Evaluates `expr`. Standard-library names resolve before the scope.
pub fn eval(expr: &Expr, scope: &dyn Scope) -> Result<Value, Diagnostic> {
    let span = expr.span;
    match &expr.kind {
        ExprKind::Null => Ok(Value::Null),
        ExprKind::Bool(b) => Ok(Value::Bool(*b)),
        ExprKind::Number(n) => Ok(Value::Number(*n)),
        ExprKind::String(s) => Ok(Value::String(s.clone())),
        ExprKind::Identifier(name) => stdlib::lookup(name)
            .or_else(|| scope.lookup(name))
            .ok_or_else(|| Diagnostic::new(span, format!("identifier {name:?} does not exist"))),
        ExprKind::List(items) => items
            .iter()
            .map(|item| eval(item, scope))
            .collect::<Result<_, _>>()
            .map(Value::List),
        ExprKind::Object(fields) => {
            let mut object = BTreeMap::new();
            for field in fields {
                let value = eval(&field.value, scope)?;
                if object.insert(field.key.clone(), value).is_some() {
                    let message = format!("field {:?} is given twice in this object", field.key);
                    return Err(Diagnostic::new(field.key_span, message));
                }
            }
            Ok(Value::Object(object))
        }
        ExprKind::Access {
            target,
            field,
            field_span,
        } => access(eval(target, scope)?, target, field, *field_span),
        ExprKind::Index { target, index } => {
            index_into(eval(target, scope)?, eval(index, scope)?, index.span)
        }
        ExprKind::Call { callee, args } => {
            call(eval(callee, scope)?, callee.span, args, span, scope)
        }
        ExprKind::Unary { op, operand } => unary(*op, eval(operand, scope)?, operand.span),
        ExprKind::Binary { op, lhs, rhs, .. } => {
            let operands = (eval(lhs, scope)?, eval(rhs, scope)?);
            binary(*op, operands, (lhs.span, rhs.span), span)
        }
        ExprKind::Invalid => Err(Diagnostic::new(
            span,
            "cannot evaluate an expression that failed to parse",
        )),
    }
}

fn access(
    target: Value,
    target_expr: &Expr,
    field: &str,
    field_span: Span,
) -> Result<Value, Diagnostic> {
    let Value::Object(mut fields) = target else {
        let message = format!("cannot access field {field:?} on {}", target.describe());
        return Err(Diagnostic::new(field_span, message));
    };
    if let Some(value) = fields.remove(field) {
        return Ok(value);
    }
    let message = match reference_path(target_expr) {
        Some(path) => format!("field {field:?} does not exist in {:?}", path.join(".")),
        None => format!("field {field:?} does not exist"),
    };
    let diagnostic = Diagnostic::new(field_span, message);
    Err(
        match did_you_mean(field, fields.keys().map(String::as_str)) {
            Some(help) => diagnostic.with_help(help),
            None => diagnostic,
        },
    )
}

/// `list[i]` or `object["key"]`; a missing object key gives `null`, as in
/// Alloy, so optional keys can be probed.
fn index_into(target: Value, index: Value, index_span: Span) -> Result<Value, Diagnostic> {
    let error = |message: String| Err(Diagnostic::new(index_span, message));
    match (target, index) {
        (Value::List(mut items), Value::Number(number)) => {
            let len = items.len();
            let position = match number {
                Number::Int(i) => usize::try_from(i).ok(),
                Number::Float(f) if f.fract() == 0.0 && f >= 0.0 => Some(f as usize),
                Number::Float(_) => {
                    return error(format!("list index must be a whole number, got {number}"));
                }
            };
            match position.filter(|&p| p < len) {
                Some(p) => Ok(items.swap_remove(p)),
                None => error(format!(
                    "index {number} is out of range for a list of {len} elements"
                )),
            }
        }
        (Value::Object(mut fields), Value::String(key)) => {
            Ok(fields.remove(&key).unwrap_or(Value::Null))
        }
        (Value::List(_), other) => error(format!(
            "list index must be a number, got {}",
            other.describe()
        )),
        (Value::Object(_), other) => error(format!(
            "object key must be a string, got {}",
            other.describe()
        )),
        (other, _) => error(format!("cannot index into {}", other.describe())),
    }
}

fn call(
    callee: Value,
    callee_span: Span,
    args: &[Expr],
    span: Span,
    scope: &dyn Scope,
) -> Result<Value, Diagnostic> {
    let Value::Function(function) = callee else {
        return Err(Diagnostic::new(
            callee_span,
            format!("{} is not a function", callee.describe()),
        ));
    };
    let values = args
        .iter()
        .map(|arg| eval(arg, scope))
        .collect::<Result<Vec<_>, _>>()?;
    function.call(&values).map_err(|error| {
        let at = error
            .argument
            .and_then(|i| args.get(i))
            .map_or(span, |arg| arg.span);
        Diagnostic::new(at, format!("{}: {}", function.name, error.message))
    })
}

fn operand_error(symbol: &str, expected: &str, got: &Value, span: Span) -> Diagnostic {
    Diagnostic::new(
        span,
        format!(
            "operator \"{symbol}\" expects {expected}, got {}",
            got.describe()
        ),
    )
}

fn unary(op: UnaryOp, operand: Value, span: Span) -> Result<Value, Diagnostic> {
    match (op, operand) {
        (UnaryOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
        (UnaryOp::Negate, Value::Number(Number::Int(i))) => i
            .checked_neg()
            .map(Value::from)
            .ok_or_else(|| Diagnostic::new(span, format!("integer overflow negating {i}"))),
        (UnaryOp::Negate, Value::Number(Number::Float(f))) => Ok(Value::from(-f)),
        (UnaryOp::Not, other) => Err(operand_error("!", "bool", &other, span)),
        (UnaryOp::Negate, other) => Err(operand_error("-", "number", &other, span)),
    }
}

/// Alloy compares a string with a secret by content.
fn values_equal(lhs: &Value, rhs: &Value) -> bool {
    match (lhs, rhs) {
        (Value::String(s), Value::Secret(secret)) | (Value::Secret(secret), Value::String(s)) => {
            s == secret.expose()
        }
        _ => lhs == rhs,
    }
}

fn binary(
    op: BinaryOp,
    (lhs, rhs): (Value, Value),
    (lhs_span, rhs_span): (Span, Span),
    span: Span,
) -> Result<Value, Diagnostic> {
    let symbol = op.symbol();
    match op {
        BinaryOp::Eq => return Ok(Value::Bool(values_equal(&lhs, &rhs))),
        BinaryOp::NotEq => return Ok(Value::Bool(!values_equal(&lhs, &rhs))),
        _ => {}
    }
    let (expected, lhs_ok) = match op {
        BinaryOp::Or | BinaryOp::And => ("bool", matches!(lhs, Value::Bool(_))),
        BinaryOp::Add => (
            "number, string or secret",
            matches!(lhs, Value::Number(_) | Value::String(_) | Value::Secret(_)),
        ),
        BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq => (
            "number or string",
            matches!(lhs, Value::Number(_) | Value::String(_)),
        ),
        _ => ("number", matches!(lhs, Value::Number(_))),
    };
    if !lhs_ok {
        return Err(operand_error(symbol, expected, &lhs, lhs_span));
    }
    let mismatch = |lhs: &Value, rhs: &Value| {
        operand_error(
            symbol,
            &format!("{} on both sides", lhs.type_name()),
            rhs,
            rhs_span,
        )
    };
    match (lhs, rhs) {
        (Value::Bool(a), Value::Bool(b)) => Ok(Value::Bool(if op == BinaryOp::Or {
            a || b
        } else {
            a && b
        })),
        (Value::String(a), Value::String(b)) if op == BinaryOp::Add => Ok(Value::String(a + &b)),
        (Value::String(a), Value::String(b)) => Ok(Value::Bool(ordering_holds(op, a.cmp(&b)))),
        (Value::Number(a), Value::Number(b)) => match op {
            BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq => {
                Ok(Value::Bool(compare_numbers(op, a, b)))
            }
            _ => arithmetic(op, a, b)
                .map(Value::Number)
                .map_err(|message| Diagnostic::new(span, message)),
        },
        (a @ (Value::String(_) | Value::Secret(_)), b @ (Value::String(_) | Value::Secret(_)))
            if op == BinaryOp::Add =>
        {
            // Adding anything to a secret keeps the result secret.
            let text = |v: &Value| match v {
                Value::Secret(secret) => secret.expose().to_string(),
                Value::String(s) => s.clone(),
                _ => String::new(),
            };
            Ok(Value::Secret(Secret::new(text(&a) + &text(&b))))
        }
        (lhs, rhs) => Err(mismatch(&lhs, &rhs)),
    }
}

fn ordering_holds(op: BinaryOp, ordering: Ordering) -> bool {
    match op {
        BinaryOp::Lt => ordering.is_lt(),
        BinaryOp::LtEq => ordering.is_le(),
        BinaryOp::Gt => ordering.is_gt(),
        _ => ordering.is_ge(),
    }
}

fn compare_numbers(op: BinaryOp, a: Number, b: Number) -> bool {
    let ordering = match (a, b) {
        (Number::Int(x), Number::Int(y)) => Some(x.cmp(&y)),
        _ => a.as_f64().partial_cmp(&b.as_f64()),
    };
    ordering.is_some_and(|ordering| ordering_holds(op, ordering))
}

/// Integers stay exact and overflow is an error rather than a wrap; any
/// float operand makes the operation a float one.
fn arithmetic(op: BinaryOp, a: Number, b: Number) -> Result<Number, String> {
    let (Number::Int(x), Number::Int(y)) = (a, b) else {
        let (x, y) = (a.as_f64(), b.as_f64());
        if matches!(op, BinaryOp::Div | BinaryOp::Mod) && y == 0.0 {
            return Err("division by zero".to_string());
        }
        return Ok(Number::Float(match op {
            BinaryOp::Add => x + y,
            BinaryOp::Sub => x - y,
            BinaryOp::Mul => x * y,
            BinaryOp::Div => x / y,
            BinaryOp::Mod => x % y,
            _ => x.powf(y),
        }));
    };
    if matches!(op, BinaryOp::Div | BinaryOp::Mod) && y == 0 {
        return Err("division by zero".to_string());
    }
    if op == BinaryOp::Pow && y < 0 {
        return Ok(Number::Float((x as f64).powf(y as f64)));
    }
    let result = match op {
        BinaryOp::Add => x.checked_add(y),
        BinaryOp::Sub => x.checked_sub(y),
        BinaryOp::Mul => x.checked_mul(y),
        BinaryOp::Div => x.checked_div(y),
        BinaryOp::Mod => x.checked_rem(y),
        _ => integer_power(x, y),
    };
    result
        .map(Number::Int)
        .ok_or_else(|| format!("integer overflow in {x} {} {y}", op.symbol()))
}

fn integer_power(base: i64, exponent: i64) -> Option<i64> {
    match base {
        0 | 1 => Some(if exponent == 0 { 1 } else { base }),
        -1 => Some(if exponent % 2 == 0 { 1 } else { -1 }),
        _ => base.checked_pow(u32::try_from(exponent).ok()?),
    }
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
