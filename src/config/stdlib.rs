//! The standard library: `sys.env` and a few string and list helpers,
//! under both their namespaced names and Alloy's deprecated top-level ones.

use super::convert::{FromValue, type_error};
use super::value::{CallError, Function, Number, Value};

type Builtin = fn(&[Value]) -> Result<Value, CallError>;

/// Every function by its full name; a dotted name is reached through its
/// namespace object (`sys` → `{ env = … }`).
const BUILTINS: &[(&str, Builtin)] = &[
    ("coalesce", coalesce),
    ("sys.env", env),
    ("env", env),
    ("array.concat", concat),
    ("concat", concat),
    ("string.format", format),
    ("format", format),
    ("string.join", join),
    ("join", join),
    ("string.to_lower", to_lower),
    ("to_lower", to_lower),
    ("string.to_upper", to_upper),
    ("to_upper", to_upper),
    ("string.trim_space", trim_space),
    ("trim_space", trim_space),
    ("convert.nonsensitive", nonsensitive),
    ("nonsensitive", nonsensitive),
];

/// The namespace part of a full name (`sys` of `sys.env`), or the whole
/// name for a top-level function.
fn top_level(full_name: &str) -> &str {
    full_name
        .split_once('.')
        .map_or(full_name, |(namespace, _)| namespace)
}

/// Whether `name` is a top-level standard-library identifier; these shadow
/// anything of the same name in a scope.
pub(crate) fn is_stdlib_name(name: &str) -> bool {
    BUILTINS
        .iter()
        .any(|(full_name, _)| top_level(full_name) == name)
}

/// The value of a top-level standard-library identifier.
pub(crate) fn lookup(name: &str) -> Option<Value> {
    let function = |full_name: &'static str, call: Builtin| {
        Value::Function(Function {
            name: full_name,
            call,
        })
    };
    if let Some(&(full_name, call)) = BUILTINS.iter().find(|(full_name, _)| *full_name == name) {
        return Some(function(full_name, call));
    }
    let members: Value = BUILTINS
        .iter()
        .filter_map(|&(full_name, call)| {
            let member = full_name.strip_prefix(name)?.strip_prefix('.')?;
            Some((member.to_string(), function(full_name, call)))
        })
        .collect();
    match &members {
        Value::Object(fields) if !fields.is_empty() => Some(members),
        _ => None,
    }
}

fn exact_args<const N: usize>(args: &[Value]) -> Result<&[Value; N], CallError> {
    args.try_into().map_err(|_| {
        let plural = if N == 1 { "" } else { "s" };
        CallError::new(format!("expected {N} argument{plural}, got {}", args.len()))
    })
}

fn string_arg(args: &[Value], index: usize) -> Result<String, CallError> {
    let value = args.get(index).unwrap_or(&Value::Null);
    String::from_value(value).map_err(|message| CallError::at_argument(index, message))
}

fn env(args: &[Value]) -> Result<Value, CallError> {
    exact_args::<1>(args)?;
    let name = string_arg(args, 0)?;
    // Names the OS cannot hold are simply unset, like any other unset name.
    let valid = !name.is_empty() && !name.contains(['=', '\0']);
    let value = valid.then(|| std::env::var_os(&name)).flatten();
    Ok(Value::String(
        value
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default(),
    ))
}

fn concat(args: &[Value]) -> Result<Value, CallError> {
    let mut joined = Vec::new();
    for (index, arg) in args.iter().enumerate() {
        let Value::List(items) = arg else {
            return Err(CallError::at_argument(index, type_error("list", arg)));
        };
        joined.extend_from_slice(items);
    }
    Ok(Value::List(joined))
}

/// The first argument that is not null or empty (`""`, `0`, `false`, `[]`,
/// `{}`); the last argument if all are.
fn coalesce(args: &[Value]) -> Result<Value, CallError> {
    let is_empty = |value: &Value| match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == 0.0,
        Value::String(s) => s.is_empty(),
        Value::List(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
        Value::Secret(secret) => secret.expose().is_empty(),
        Value::Capsule(_) | Value::Function(_) => false,
    };
    let chosen = args.iter().find(|arg| !is_empty(arg)).or(args.last());
    Ok(chosen.cloned().unwrap_or(Value::Null))
}

fn join(args: &[Value]) -> Result<Value, CallError> {
    let [items, _] = exact_args::<2>(args)?;
    let items =
        Vec::<String>::from_value(items).map_err(|message| CallError::at_argument(0, message))?;
    let separator = string_arg(args, 1)?;
    Ok(Value::String(items.join(&separator)))
}

fn map_string(args: &[Value], transform: fn(&str) -> String) -> Result<Value, CallError> {
    exact_args::<1>(args)?;
    Ok(Value::String(transform(&string_arg(args, 0)?)))
}

fn to_lower(args: &[Value]) -> Result<Value, CallError> {
    map_string(args, str::to_lowercase)
}

fn to_upper(args: &[Value]) -> Result<Value, CallError> {
    map_string(args, str::to_uppercase)
}

fn trim_space(args: &[Value]) -> Result<Value, CallError> {
    map_string(args, |s| s.trim().to_string())
}

/// The explicit way to turn a secret back into a plain string.
fn nonsensitive(args: &[Value]) -> Result<Value, CallError> {
    match exact_args::<1>(args)? {
        [Value::Secret(secret)] => Ok(Value::String(secret.expose().to_string())),
        [Value::String(s)] => Ok(Value::String(s.clone())),
        [other] => Err(CallError::at_argument(0, type_error("secret", other))),
    }
}

/// Go-style `format("%s-%d", …)` with the verbs `%s %v %d %q %%`.
fn format(args: &[Value]) -> Result<Value, CallError> {
    if args.is_empty() {
        return Err(CallError::new("expected at least 1 argument, got 0"));
    }
    let template = string_arg(args, 0)?;
    let mut out = String::with_capacity(template.len());
    let mut next_arg = 1;
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars
            .next()
            .ok_or_else(|| CallError::at_argument(0, "format ends with a lone %"))?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args
            .get(next_arg)
            .ok_or_else(|| CallError::new(format!("missing argument for %{verb}")))?;
        let formatted =
            format_verb(verb, arg).map_err(|message| CallError::at_argument(next_arg, message))?;
        out.push_str(&formatted);
        next_arg += 1;
    }
    if next_arg < args.len() {
        let used = next_arg - 1;
        let message = format!(
            "too many arguments: the format uses {used}, got {}",
            args.len() - 1
        );
        return Err(CallError::at_argument(next_arg, message));
    }
    Ok(Value::String(out))
}

fn format_verb(verb: char, arg: &Value) -> Result<String, String> {
    match (verb, arg) {
        (_, Value::Secret(_)) => Err("a secret cannot be formatted into a string".into()),
        ('s' | 'v', Value::String(s)) => Ok(s.clone()),
        ('s' | 'v', other) => Ok(other.to_string()),
        ('d', Value::Number(Number::Int(i))) => Ok(i.to_string()),
        ('d', other) => Err(format!("%d needs an integer, got {}", other.describe())),
        ('q', other) => String::from_value(other).map(|s| format!("{s:?}")),
        (other, _) => Err(format!(
            "unsupported verb %{other} (use %s, %v, %d, %q or %%)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: &[Value]) -> Result<Value, CallError> {
        let Some(Value::Function(function)) = lookup(name) else {
            panic!("{name} is not a function");
        };
        function.call(args)
    }

    fn s(text: &str) -> Value {
        Value::from(text)
    }

    #[test]
    fn namespaces_hold_their_functions() {
        let Some(Value::Object(sys)) = lookup("sys") else {
            panic!("sys is an object")
        };
        assert!(matches!(&sys["env"], Value::Function(f) if f.name == "sys.env"));
        assert!(lookup("string").is_some() && lookup("array").is_some());
        assert!(lookup("pyroscope").is_none() && lookup("sy").is_none());
        assert!(is_stdlib_name("sys") && is_stdlib_name("env") && is_stdlib_name("coalesce"));
        assert!(!is_stdlib_name("pyroscope") && !is_stdlib_name("sys.env"));
    }

    #[test]
    fn env_reads_the_environment_and_unset_is_empty() {
        assert_eq!(call("env", &[s("PYROSCOPE_RELAY_SURELY_UNSET")]), Ok(s("")));
        assert_eq!(call("env", &[s("a=b")]), Ok(s("")));
        let path = std::env::var("PATH").unwrap_or_default();
        assert_eq!(call("env", &[s("PATH")]), Ok(Value::String(path)));
        assert_eq!(
            call("env", &[]).unwrap_err().message,
            "expected 1 argument, got 0"
        );
    }

    #[test]
    fn concat_and_coalesce() {
        let list = |items: &[i64]| Value::from(items.to_vec());
        assert_eq!(
            call("concat", &[list(&[1]), list(&[]), list(&[2, 3])]),
            Ok(list(&[1, 2, 3]))
        );
        assert_eq!(
            call("concat", &[list(&[1]), s("x")]).unwrap_err().argument,
            Some(1)
        );
        assert_eq!(
            call("coalesce", &[Value::Null, s(""), list(&[]), s("x")]),
            Ok(s("x"))
        );
        assert_eq!(
            call("coalesce", &[s(""), Value::from(0)]),
            Ok(Value::from(0))
        );
        assert_eq!(call("coalesce", &[]), Ok(Value::Null));
    }

    #[test]
    fn string_helpers() {
        let parts = Value::from(vec![s("a"), Value::from(1)]);
        assert_eq!(call("join", &[parts, s("-")]), Ok(s("a-1")));
        assert_eq!(call("string.to_lower", &[s("AbC")]), Ok(s("abc")));
        assert_eq!(call("to_upper", &[s("AbC")]), Ok(s("ABC")));
        assert_eq!(call("trim_space", &[s("  x \n")]), Ok(s("x")));
        assert_eq!(
            call("to_upper", &[Value::Null]).unwrap_err().argument,
            Some(0)
        );
    }

    #[test]
    fn format_verbs() {
        let args = [
            s("%s-%d %v %q 100%%"),
            s("web"),
            Value::from(3),
            Value::from(1.5),
            s("a\"b"),
        ];
        assert_eq!(call("format", &args), Ok(s("web-3 1.5 \"a\\\"b\" 100%")));
        assert_eq!(
            call("format", &[s("%d"), s("x")]).unwrap_err().argument,
            Some(1)
        );
        assert!(
            call("format", &[s("%s")])
                .unwrap_err()
                .message
                .contains("missing argument")
        );
        assert!(
            call("format", &[s("x"), s("y")])
                .unwrap_err()
                .message
                .contains("too many")
        );
        assert!(
            call("format", &[s("%x"), s("y")])
                .unwrap_err()
                .message
                .contains("unsupported verb")
        );
        assert!(call("format", &[s("50%")]).is_err());
    }

    #[test]
    fn secrets_only_leave_through_nonsensitive() {
        let secret = Value::Secret(crate::config::Secret::new("pw"));
        assert!(call("format", &[s("%s"), secret.clone()]).is_err());
        assert!(call("to_upper", std::slice::from_ref(&secret)).is_err());
        assert_eq!(call("convert.nonsensitive", &[secret]), Ok(s("pw")));
    }
}
