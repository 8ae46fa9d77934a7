//! Expression grammar: literals, operators and their precedence, postfix
//! forms, spans and reference extraction.

use super::*;
use crate::config::syntax::ast::Expr;
use crate::config::syntax::references::references;
use crate::config::value::Number;

fn attribute_value(text: &str) -> Expr {
    let parsed = parse_clean(&format!("x = {text}"));
    match parsed.body.stmts.into_iter().next() {
        Some(Stmt::Attribute(attribute)) => attribute.value,
        other => panic!("expected an attribute, got {other:?}"),
    }
}

/// Prefix notation showing the tree's shape.
fn sexpr(expr: &Expr) -> String {
    let list = |items: &[Expr]| items.iter().map(sexpr).collect::<Vec<_>>().join(" ");
    match &expr.kind {
        ExprKind::Null => "null".into(),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Number(n) => n.to_string(),
        ExprKind::String(s) => format!("{s:?}"),
        ExprKind::Identifier(name) => name.clone(),
        ExprKind::List(items) => format!("[{}]", list(items)),
        ExprKind::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|f| format!("{}={}", f.key, sexpr(&f.value)))
                .collect();
            format!("{{{}}}", fields.join(" "))
        }
        ExprKind::Access { target, field, .. } => format!("(. {} {field})", sexpr(target)),
        ExprKind::Index { target, index } => format!("([] {} {})", sexpr(target), sexpr(index)),
        ExprKind::Call { callee, args } => format!("(call {} {})", sexpr(callee), list(args)),
        ExprKind::Unary { op, operand } => format!("({} {})", op.symbol(), sexpr(operand)),
        ExprKind::Binary { op, lhs, rhs, .. } => {
            format!("({} {} {})", op.symbol(), sexpr(lhs), sexpr(rhs))
        }
        ExprKind::Invalid => "<invalid>".into(),
    }
}

fn shape(text: &str) -> String {
    sexpr(&attribute_value(text))
}

#[test]
fn literals() {
    assert_eq!(shape("null"), "null");
    assert_eq!(shape("true"), "true");
    assert_eq!(shape("false"), "false");
    assert_eq!(
        attribute_value("42").kind,
        ExprKind::Number(Number::Int(42))
    );
    assert_eq!(
        attribute_value("1.5").kind,
        ExprKind::Number(Number::Float(1.5))
    );
    assert_eq!(shape(r#""a\tb""#), "\"a\\tb\"");
    assert_eq!(shape("`raw\nstring`"), "\"raw\\nstring\"");
}

#[test]
fn lists_and_objects_allow_trailing_commas() {
    assert_eq!(shape("[]"), "[]");
    assert_eq!(shape("[1, 2,]"), "[1 2]");
    assert_eq!(shape("[\n  1,\n  2,\n]"), "[1 2]");
    assert_eq!(shape("{}"), "{}");
    assert_eq!(
        shape("{ a = 1, \"quoted.key\" = 2, }"),
        "{a=1 quoted.key=2}"
    );
    assert_eq!(
        shape("{\n  a = [1],\n  b = { c = 2 },\n}"),
        "{a=[1] b={c=2}}"
    );
    let ExprKind::Object(fields) = attribute_value("{ a = 1, \"b\" = 2 }").kind else {
        panic!("object")
    };
    assert_eq!((fields[0].quoted, fields[1].quoted), (false, true));
}

#[test]
fn precedence_climbs_from_or_to_power() {
    assert_eq!(
        shape("a || b && c == d + e * f ^ g"),
        "(|| a (&& b (== c (+ d (* e (^ f g))))))"
    );
    assert_eq!(
        shape("a ^ b * c + d != e && f || g"),
        "(|| (&& (!= (+ (* (^ a b) c) d) e) f) g)"
    );
    assert_eq!(shape("a < b"), "(< a b)");
    assert_eq!(shape("a <= b"), "(<= a b)");
    assert_eq!(shape("a > b"), "(> a b)");
    assert_eq!(shape("a >= b"), "(>= a b)");
    assert_eq!(shape("a / b % c"), "(% (/ a b) c)");
}

#[test]
fn binary_operators_associate_left_except_power() {
    assert_eq!(shape("1 - 2 - 3"), "(- (- 1 2) 3)");
    assert_eq!(shape("2 ^ 3 ^ 2"), "(^ 2 (^ 3 2))");
    assert_eq!(shape("(1 + 2) * 3"), "(* (+ 1 2) 3)");
}

#[test]
fn unary_binds_tighter_than_power_and_looser_than_postfix() {
    assert_eq!(shape("-a ^ 2"), "(^ (- a) 2)");
    assert_eq!(shape("!!a"), "(! (! a))");
    assert_eq!(shape("-a.b[0]"), "(- ([] (. a b) 0))");
    assert_eq!(shape("!a || b"), "(|| (! a) b)");
}

#[test]
fn postfix_access_index_and_calls() {
    assert_eq!(shape("a.b.c"), "(. (. a b) c)");
    assert_eq!(shape("a[0][\"k\"]"), "([] ([] a 0) \"k\")");
    assert_eq!(shape("sys.env(\"X\")"), "(call (. sys env) \"X\")");
    assert_eq!(shape("f()"), "(call f )");
    assert_eq!(shape("f(1, [2],)"), "(call f 1 [2])");
    assert_eq!(shape("f(1)(2).x"), "(. (call (call f 1) 2) x)");
}

#[test]
fn expression_spans_cover_their_source() {
    let text = "x = a.b + (c)\n";
    let (_, parsed, _) = parse_text(text);
    let Stmt::Attribute(attribute) = &parsed.body.stmts[0] else {
        panic!("attribute")
    };
    let span = attribute.value.span;
    assert_eq!(&text[span.start as usize..span.end as usize], "a.b + (c)");
}

#[test]
fn references_are_maximal_chains_outside_the_stdlib() {
    let refs = |text: &str| -> Vec<String> {
        references(&attribute_value(text))
            .iter()
            .map(|r| r.path.join("."))
            .collect()
    };
    assert_eq!(refs("a.b.c"), ["a.b.c"]);
    assert_eq!(refs("[a.x, b]"), ["a.x", "b"]);
    assert_eq!(refs("a.b[c.d].e"), ["a.b", "c.d"]);
    assert_eq!(refs("sys.env(x.y)"), ["x.y"]);
    assert_eq!(refs("env(\"A\") + concat([q])[0]"), ["q"]);
    assert_eq!(refs("{ k = -m.n, j = f(o) }"), ["m.n", "f", "o"]);
    assert_eq!(refs("1 + \"s\""), Vec::<String>::new());
    let value = attribute_value("[pyroscope.write.a.receiver]");
    let found = references(&value);
    assert_eq!((found[0].span.start, found[0].span.end), (5, 31));
}

#[test]
fn body_references_descend_into_nested_blocks() {
    let parsed = parse_clean("a = x.y\nb {\n  c {\n    d = [z.w]\n  }\n}\n");
    let paths: Vec<Vec<String>> = body_references(&parsed.body)
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, [vec!["x", "y"], vec!["z", "w"]]);
}
