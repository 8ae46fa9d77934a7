use super::*;
use crate::config::source::SourceMap;
use crate::config::syntax::{Stmt, parse};
use crate::config::value::Capsule;

/// Parses `x = <text>` and evaluates the value; errors come back as
/// `(line, column, message)`.
fn run(text: &str, scope: &dyn Scope) -> Result<Value, (usize, usize, String)> {
    let mut map = SourceMap::new();
    let file = map.add("test.alloy", format!("x = {text}\n"));
    let (parsed, diags) = parse(&map, file);
    assert!(diags.is_empty(), "{text}: {diags:?}");
    let Some(Stmt::Attribute(attribute)) = parsed.body.stmts.first() else {
        panic!("attribute expected")
    };
    eval(&attribute.value, scope).map_err(|d| {
        let (_, line, col) = map.line_col(d.span);
        (line, col, d.message)
    })
}

fn ok(text: &str) -> Value {
    run(text, &()).unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

fn err(text: &str) -> (usize, usize, String) {
    run(text, &()).expect_err(text)
}

fn int(i: i64) -> Value {
    Value::from(i)
}

fn scope_with(name: &str, value: Value) -> BTreeMap<String, Value> {
    BTreeMap::from([(name.to_string(), value)])
}

fn object(fields: &[(&str, Value)]) -> Value {
    fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn literals_lists_and_objects() {
    assert_eq!(ok("null"), Value::Null);
    assert_eq!(
        ok("[1, \"a\", true]"),
        Value::from(vec![int(1), Value::from("a"), Value::Bool(true)])
    );
    assert_eq!(
        ok("{ b = 2, \"a.b\" = [] }"),
        object(&[("a.b", Value::List(vec![])), ("b", int(2))])
    );
}

#[test]
fn integer_arithmetic_stays_exact() {
    assert_eq!(ok("1 + 2 * 3 - 4"), int(3));
    assert_eq!(ok("7 / 2"), int(3));
    assert_eq!(ok("-7 % 3"), int(-1));
    assert_eq!(ok("2 ^ 3 ^ 2"), int(512));
    assert_eq!(ok("-2 ^ 2"), int(4));
    assert_eq!(ok("9007199254740993 + 0"), int(9_007_199_254_740_993));
}

#[test]
fn floats_take_over_when_mixed() {
    assert_eq!(ok("1 + 0.5"), Value::from(1.5));
    assert_eq!(ok("2 ^ -1"), Value::from(0.5));
    assert_eq!(ok("7.5 % 2"), Value::from(1.5));
}

#[test]
fn arithmetic_errors() {
    assert_eq!(err("1 / 0"), (1, 5, "division by zero".into()));
    assert_eq!(err("1.0 % 0"), (1, 5, "division by zero".into()));
    assert_eq!(
        err("9223372036854775807 + 1").2,
        "integer overflow in 9223372036854775807 + 1"
    );
    assert_eq!(err("2 ^ 64").2, "integer overflow in 2 ^ 64");
    assert_eq!(ok("1 ^ 99999999999"), int(1));
}

#[test]
fn operand_type_errors_point_at_the_operand() {
    assert_eq!(
        err("1 + \"a\""),
        (
            1,
            9,
            "operator \"+\" expects number on both sides, got string \"a\"".into()
        )
    );
    assert_eq!(
        err("\"a\" - 1"),
        (
            1,
            5,
            "operator \"-\" expects number, got string \"a\"".into()
        )
    );
    assert_eq!(
        err("1 || true"),
        (1, 5, "operator \"||\" expects bool, got number 1".into())
    );
    assert_eq!(
        err("!1"),
        (1, 6, "operator \"!\" expects bool, got number 1".into())
    );
    assert_eq!(
        err("-\"a\""),
        (
            1,
            6,
            "operator \"-\" expects number, got string \"a\"".into()
        )
    );
    assert_eq!(
        err("[1] < [2]").2,
        "operator \"<\" expects number or string, got list [1]"
    );
}

#[test]
fn strings_logic_and_comparisons() {
    assert_eq!(ok("\"a\" + \"b\""), Value::from("ab"));
    assert_eq!(ok("\"abc\" < \"abd\""), Value::Bool(true));
    assert_eq!(
        ok("2 >= 2.0 && 1 <= 2 && 3 > 2.5 && !(1 < 1)"),
        Value::Bool(true)
    );
    assert_eq!(ok("true || false"), Value::Bool(true));
    assert_eq!(ok("-(3)"), int(-3));
}

#[test]
fn equality_works_across_types() {
    assert_eq!(ok("3 == 3.0"), Value::Bool(true));
    assert_eq!(ok("1 == \"1\""), Value::Bool(false));
    assert_eq!(ok("[1, {a = null}] == [1, {a = null}]"), Value::Bool(true));
    assert_eq!(ok("null != false"), Value::Bool(true));
}

#[test]
fn indexing_lists_and_objects() {
    assert_eq!(ok("[10, 20][1]"), int(20));
    assert_eq!(ok("{ a = 1 }[\"a\"]"), int(1));
    assert_eq!(ok("{ a = 1 }[\"missing\"]"), Value::Null);
    assert_eq!(
        err("[10][1]"),
        (
            1,
            10,
            "index 1 is out of range for a list of 1 elements".into()
        )
    );
    assert_eq!(
        err("[10][-1]").2,
        "index -1 is out of range for a list of 1 elements"
    );
    assert_eq!(
        err("[10][\"a\"]").2,
        "list index must be a number, got string \"a\""
    );
    assert_eq!(
        err("{a = 1}[0]").2,
        "object key must be a string, got number 0"
    );
    assert_eq!(err("\"s\"[0]").2, "cannot index into string \"s\"");
}

#[test]
fn field_access_and_missing_fields() {
    assert_eq!(ok("{ a = { b = 2 } }.a.b"), int(2));
    let scope = scope_with(
        "pyroscope",
        object(&[("write", object(&[("staging", object(&[]))]))]),
    );
    let error = run("pyroscope.write.stagin", &scope).unwrap_err();
    assert_eq!(
        error,
        (
            1,
            21,
            "field \"stagin\" does not exist in \"pyroscope.write\"".into()
        )
    );
    let diagnostic = {
        let mut map = SourceMap::new();
        let file = map.add("t", "x = pyroscope.write.stagin");
        let (parsed, _) = parse(&map, file);
        let Stmt::Attribute(attribute) = &parsed.body.stmts[0] else {
            panic!()
        };
        eval(&attribute.value, &scope).unwrap_err()
    };
    assert_eq!(
        diagnostic.help.as_deref(),
        Some("did you mean \"staging\"?")
    );
    assert_eq!(err("{ a = 1 }.b").2, "field \"b\" does not exist");
    assert_eq!(err("[1].a").2, "cannot access field \"a\" on list [1]");
}

#[test]
fn identifiers_resolve_stdlib_first_then_scope() {
    assert_eq!(
        err("nope"),
        (1, 5, "identifier \"nope\" does not exist".into())
    );
    let scope = scope_with("answer", int(42));
    assert_eq!(run("answer + 1", &scope), Ok(int(43)));
    let shadowing = scope_with("sys", int(1));
    assert!(matches!(run("sys", &shadowing), Ok(Value::Object(_))));
    let hashed: HashMap<String, Value> = HashMap::from([("h".to_string(), int(1))]);
    assert_eq!(run("h", &hashed), Ok(int(1)));
}

#[test]
fn references_to_capsules_evaluate_to_the_capsules() {
    let receiver = Capsule::new("ProfilesReceiver", "pyroscope.write.staging", ());
    let tree = object(&[(
        "write",
        object(&[("staging", object(&[("receiver", receiver.clone().into())]))]),
    )]);
    let scope = scope_with("pyroscope", tree);
    let value = run("[pyroscope.write.staging.receiver]", &scope).unwrap();
    assert_eq!(value, Value::List(vec![Value::Capsule(receiver)]));
}

#[test]
fn sys_env_and_its_deprecated_alias() {
    assert_eq!(
        ok("sys.env(\"PYROSCOPE_RELAY_SURELY_UNSET\")"),
        Value::from("")
    );
    assert_eq!(ok("env(\"PYROSCOPE_RELAY_SURELY_UNSET\")"), Value::from(""));
    let path = std::env::var("PATH").unwrap_or_default();
    assert_eq!(ok("sys.env(\"PATH\")"), Value::from(path));
}

#[test]
fn stdlib_calls_compose() {
    assert_eq!(
        ok("format(\"%s-%d\", to_upper(\"a\"), 2)"),
        Value::from("A-2")
    );
    assert_eq!(
        ok("string.join(array.concat([\"a\"], [\"b\"]), \",\")"),
        Value::from("a,b")
    );
    assert_eq!(
        ok("coalesce(sys.env(\"PYROSCOPE_RELAY_SURELY_UNSET\"), \"fallback\")"),
        Value::from("fallback")
    );
}

#[test]
fn call_errors_point_at_the_argument_or_the_call() {
    assert_eq!(
        err("format(\"%d\", \"x\")"),
        (
            1,
            18,
            "format: %d needs an integer, got string \"x\"".into()
        )
    );
    assert_eq!(
        err("sys.env()"),
        (1, 5, "sys.env: expected 1 argument, got 0".into())
    );
    assert_eq!(
        err("\"s\"(1)"),
        (1, 5, "string \"s\" is not a function".into())
    );
}

#[test]
fn secrets_stay_secret_through_concatenation() {
    let scope = scope_with("password", Value::Secret(Secret::new("pw")));
    let joined = run("\"user:\" + password", &scope).unwrap();
    assert_eq!(joined, Value::Secret(Secret::new("user:pw")));
    assert_eq!(run("password == \"pw\"", &scope), Ok(Value::Bool(true)));
    assert!(run("password < \"x\"", &scope).is_err());
}

#[test]
fn duplicate_object_keys_are_an_error() {
    assert_eq!(
        err("{ a = 1, \"a\" = 2 }"),
        (1, 14, "field \"a\" is given twice in this object".into())
    );
}
