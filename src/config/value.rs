//! Runtime values of the configuration language.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::convert::Secret;

/// A number that keeps integers exact; floats appear only when written with
/// a fraction or exponent, or produced by mixed arithmetic.
#[derive(Clone, Copy, Debug)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// `3 == 3.0`, as in Alloy.
impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        match (*self, *other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            (a, b) => a.as_f64() == b.as_f64(),
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Float(x) => write!(f, "{x}"),
        }
    }
}

/// An opaque runtime value, such as the `receiver` a component exports.
/// Configuration code can pass capsules around but never look inside.
#[derive(Clone)]
pub struct Capsule {
    pub type_name: &'static str,
    /// Identity used for equality, e.g. the exporting component's id.
    pub id: String,
    pub inner: Arc<dyn Any + Send + Sync>,
}

impl Capsule {
    pub fn new<T: Any + Send + Sync>(
        type_name: &'static str,
        id: impl Into<String>,
        inner: T,
    ) -> Self {
        Capsule {
            type_name,
            id: id.into(),
            inner: Arc::new(inner),
        }
    }

    pub fn downcast<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        Arc::clone(&self.inner).downcast::<T>().ok()
    }

    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.inner.downcast_ref::<T>()
    }
}

impl PartialEq for Capsule {
    fn eq(&self, other: &Self) -> bool {
        self.type_name == other.type_name && self.id == other.id
    }
}

impl fmt::Debug for Capsule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "capsule({} {:?})", self.type_name, self.id)
    }
}

/// Why a standard-library call failed; `argument` (0-based) lets the error
/// point at the offending argument instead of the whole call.
#[derive(Clone, Debug, PartialEq)]
pub struct CallError {
    pub argument: Option<usize>,
    pub message: String,
}

impl CallError {
    pub fn new(message: impl Into<String>) -> Self {
        CallError {
            argument: None,
            message: message.into(),
        }
    }

    pub fn at_argument(argument: usize, message: impl Into<String>) -> Self {
        CallError {
            argument: Some(argument),
            message: message.into(),
        }
    }
}

/// A built-in function. Only the standard library creates these.
#[derive(Clone, Copy)]
pub struct Function {
    /// Full name as written in configs, e.g. `sys.env`.
    pub name: &'static str,
    pub(crate) call: fn(&[Value]) -> Result<Value, CallError>,
}

impl Function {
    pub fn call(&self, args: &[Value]) -> Result<Value, CallError> {
        (self.call)(args)
    }
}

impl PartialEq for Function {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "function({})", self.name)
    }
}

/// A value of the configuration language.
#[derive(Clone, Debug, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    Object(BTreeMap<String, Value>),
    Capsule(Capsule),
    Function(Function),
    /// Holds a [`Secret`] rather than a bare string so that `{:?}` on a value
    /// tree can never print it.
    Secret(Secret),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Object(_) => "object",
            Value::Capsule(_) => "capsule",
            Value::Function(_) => "function",
            Value::Secret(_) => "secret",
        }
    }

    /// The type and a short excerpt of the value, for messages such as
    /// `expected number, got string "abc"`. Secrets are never shown.
    pub fn describe(&self) -> String {
        const MAX_CHARS: usize = 60;
        match self {
            Value::Null => "null".to_string(),
            Value::Capsule(capsule) => format!("capsule {}", capsule.type_name),
            Value::Function(function) => format!("function {}", function.name),
            Value::Secret(_) => "secret".to_string(),
            _ => {
                let shown = self.to_string();
                let shown = if shown.chars().count() > MAX_CHARS {
                    let cut: String = shown.chars().take(MAX_CHARS).collect();
                    format!("{cut}…")
                } else {
                    shown
                };
                format!("{} {shown}", self.type_name())
            }
        }
    }
}

/// Structural equality; capsules compare by type and id, functions by name.
impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => a == b,
            (Value::Capsule(a), Value::Capsule(b)) => a == b,
            (Value::Function(a), Value::Function(b)) => a == b,
            (Value::Secret(a), Value::Secret(b)) => a == b,
            _ => false,
        }
    }
}

/// Alloy-like literal syntax, used in messages; secrets print as `(secret)`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Object(fields) => {
                f.write_str("{")?;
                for (index, (key, value)) in fields.iter().enumerate() {
                    let separator = if index > 0 { ", " } else { " " };
                    write!(f, "{separator}{key:?} = {value}")?;
                }
                f.write_str(if fields.is_empty() { "}" } else { " }" })
            }
            Value::Capsule(capsule) => write!(f, "{capsule:?}"),
            Value::Function(function) => write!(f, "{function:?}"),
            Value::Secret(secret) => write!(f, "{secret}"),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Number(Number::Int(i))
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Number(Number::Float(x))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<Capsule> for Value {
    fn from(capsule: Capsule) -> Self {
        Value::Capsule(capsule)
    }
}

impl<V: Into<Value>> From<Vec<V>> for Value {
    fn from(items: Vec<V>) -> Self {
        Value::List(items.into_iter().map(Into::into).collect())
    }
}

impl<V: Into<Value>> FromIterator<(String, V)> for Value {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(fields: I) -> Self {
        Value::Object(fields.into_iter().map(|(k, v)| (k, v.into())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_across_int_and_float() {
        assert_eq!(Number::Int(3), Number::Float(3.0));
        assert_ne!(Number::Int(3), Number::Float(3.5));
    }

    #[test]
    fn capsules_compare_by_type_and_id_only() {
        let a = Capsule::new("ProfilesReceiver", "pyroscope.write.a", 1u8);
        let same_id = Capsule::new("ProfilesReceiver", "pyroscope.write.a", 2u8);
        let other = Capsule::new("ProfilesReceiver", "pyroscope.write.b", 1u8);
        assert_eq!(Value::from(a.clone()), Value::from(same_id));
        assert_ne!(Value::from(a.clone()), Value::from(other));
        assert_eq!(
            format!("{a:?}"),
            "capsule(ProfilesReceiver \"pyroscope.write.a\")"
        );
        assert_eq!(a.downcast::<u8>().as_deref(), Some(&1));
        assert!(a.downcast_ref::<String>().is_none());
    }

    #[test]
    fn describe_names_the_type_and_hides_secrets() {
        assert_eq!(Value::from("abc").describe(), "string \"abc\"");
        assert_eq!(Value::from(vec![1i64, 2]).describe(), "list [1, 2]");
        assert_eq!(Value::Secret(Secret::new("hunter2")).describe(), "secret");
        let object: Value = [("k".to_string(), 1i64)].into_iter().collect();
        assert_eq!(object.describe(), "object { \"k\" = 1 }");
        assert!(!format!("{:?}", Value::Secret(Secret::new("hunter2"))).contains("hunter2"));
        let long = Value::from("x".repeat(100)).describe();
        assert!(long.ends_with('…') && long.chars().count() < 80);
    }
}
