//! Component exports as config values: the scope that references such as
//! `pyroscope.write.staging.receiver` are evaluated in.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{Capsule, FromValue, Scope, Value};
use crate::pipeline::Receiver;

const RECEIVER_TYPE: &str = "ProfilesReceiver";

/// Every component's exports, keyed by component id.
#[derive(Default)]
pub struct ExportScope {
    tree: BTreeMap<String, Value>,
}

impl ExportScope {
    /// Adds `value` at `<component id>.<export>`, e.g. `pyroscope.write.a.receiver`.
    pub fn insert(&mut self, component_id: &str, export: &str, value: Value) {
        let mut path: Vec<&str> = component_id.split('.').collect();
        path.push(export);
        insert_path(&mut self.tree, &path, value);
    }

    pub fn insert_receiver(&mut self, receiver: &Receiver) {
        self.insert(
            receiver.component_id(),
            "receiver",
            receiver_value(receiver),
        );
    }
}

fn insert_path(tree: &mut BTreeMap<String, Value>, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            tree.insert((*last).to_string(), value);
        }
        [first, rest @ ..] => {
            let entry = tree
                .entry((*first).to_string())
                .or_insert_with(|| Value::Object(BTreeMap::new()));
            if let Value::Object(child) = entry {
                insert_path(child, rest, value);
            }
        }
    }
}

impl Scope for ExportScope {
    fn lookup(&self, name: &str) -> Option<Value> {
        self.tree.get(name).cloned()
    }
}

pub fn receiver_value(receiver: &Receiver) -> Value {
    Value::Capsule(Capsule {
        type_name: RECEIVER_TYPE,
        id: receiver.component_id().to_string(),
        inner: Arc::new(receiver.clone()) as Arc<dyn Any + Send + Sync>,
    })
}

impl FromValue for Receiver {
    fn from_value(value: &Value) -> Result<Self, String> {
        if let Value::Capsule(capsule) = value
            && let Some(receiver) = capsule.inner.downcast_ref::<Receiver>()
        {
            return Ok(receiver.clone());
        }
        let what = match value {
            Value::Capsule(capsule) => format!("{} {:?}", capsule.type_name, capsule.id),
            other => other.describe(),
        };
        Err(format!(
            "{what} is not a profiles receiver; use an export such as pyroscope.write.<label>.receiver"
        ))
    }
}
