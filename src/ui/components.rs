//! `GET /api/v0/web/components` and `/api/v0/web/components/{id}`, in the
//! shape of Grafana Alloy's UI API: the list carries each component's
//! identity, references and health; one component adds its `arguments`
//! and `exports` as Alloy's JSON encoding of a config body (statements of
//! `{"name", "type": "attr", "value": {"type", "value"}}` and
//! `{"name", "type": "block", "body": [...]}`), secrets as the capsule
//! `(secret)`. `recentErrors` is ours: the component's last errors.

use http::StatusCode;
use serde::Serialize;
use serde_json::{Value as Json, json};

use super::{UiBody, json as json_response, json_error};
use crate::config::{Evaluated, Value};
use crate::runtime::{ComponentInfo, HealthState, Kind, Runtime};
use http::Response;

const PREFIX: &str = "/api/v0/web/components";

pub(super) async fn handle(runtime: &Runtime, path: &str) -> Response<UiBody> {
    let components = runtime.components().await;
    match path.strip_prefix(PREFIX) {
        Some("" | "/") => {
            let list: Vec<Detail> = components
                .iter()
                .map(|c| Detail::of(c, &components, false))
                .collect();
            json_response(StatusCode::OK, &list)
        }
        Some(rest) if rest.starts_with('/') => {
            let id = &rest[1..];
            match components.iter().find(|c| c.id == id) {
                Some(c) => json_response(StatusCode::OK, &Detail::of(c, &components, true)),
                None => json_error(StatusCode::NOT_FOUND, &format!("no component {id:?}")),
            }
        }
        _ => json_error(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "localID")]
    local_id: String,
    #[serde(rename = "moduleID")]
    module_id: &'static str,
    label: String,
    references_to: Vec<String>,
    referenced_by: Vec<String>,
    data_flow_edges_to: Vec<String>,
    health: Health,
    original: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exports: Option<Json>,
    live_debugging_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    recent_errors: Option<Vec<RecentError>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    state: &'static str,
    message: String,
    updated_time: String,
}

#[derive(Serialize)]
struct RecentError {
    time: String,
    message: String,
}

impl Detail {
    fn of(c: &ComponentInfo, all: &[ComponentInfo], full: bool) -> Detail {
        let name = c.kind.name();
        let referenced_by = all
            .iter()
            .filter(|other| other.references.contains(&c.id))
            .map(|other| other.id.clone())
            .collect();
        // Data flows along `forward_to`, to components that take profiles.
        let data_flow_edges_to = c
            .references
            .iter()
            .filter(|target| {
                all.iter()
                    .any(|t| &t.id == *target && t.kind.exports().contains(&"receiver"))
            })
            .cloned()
            .collect();
        let (state, message) = match &c.health {
            HealthState::Healthy => ("healthy", "started component".to_owned()),
            HealthState::Unhealthy(reason) => ("unhealthy", reason.clone()),
        };
        Detail {
            name,
            kind: "block",
            local_id: c.id.clone(),
            module_id: "",
            label: c
                .id
                .strip_prefix(name)
                .unwrap_or("")
                .trim_start_matches('.')
                .to_owned(),
            references_to: c.references.clone(),
            referenced_by,
            data_flow_edges_to,
            health: Health {
                state,
                message,
                updated_time: crate::archive::format_rfc3339(c.health_updated, true),
            },
            original: "",
            arguments: full.then(|| body(&c.evaluated)),
            exports: full.then(|| exports(&c.id, c.kind)),
            live_debugging_enabled: true,
            recent_errors: full.then(|| {
                c.tap
                    .recent_errors()
                    .into_iter()
                    .map(|e| RecentError {
                        time: crate::archive::format_rfc3339(e.time, true),
                        message: e.message,
                    })
                    .collect()
            }),
        }
    }
}

fn body(statements: &[Evaluated]) -> Json {
    Json::Array(
        statements
            .iter()
            .map(|s| match s {
                Evaluated::Attribute { name, value } => json!({
                    "name": name,
                    "type": "attr",
                    "value": value.as_ref().map_or_else(secret, value_json),
                }),
                Evaluated::Block { name, body: inner } => json!({
                    "name": name,
                    "type": "block",
                    "body": body(inner),
                }),
            })
            .collect(),
    )
}

fn secret() -> Json {
    json!({ "type": "capsule", "value": "(secret)" })
}

fn value_json(value: &Value) -> Json {
    match value {
        Value::Null => json!({ "type": "null", "value": null }),
        Value::Bool(b) => json!({ "type": "bool", "value": b }),
        Value::Number(n) => json!({ "type": "number", "value": n.as_f64() }),
        Value::String(s) => json!({ "type": "string", "value": s }),
        Value::List(items) => json!({
            "type": "array",
            "value": items.iter().map(value_json).collect::<Vec<_>>(),
        }),
        Value::Object(fields) => json!({
            "type": "object",
            "value": fields
                .iter()
                .map(|(k, v)| json!({ "key": k, "value": value_json(v) }))
                .collect::<Vec<_>>(),
        }),
        Value::Capsule(c) => {
            json!({ "type": "capsule", "value": format!("{}({})", c.type_name, c.id) })
        }
        Value::Function(_) => json!({ "type": "function", "value": "function" }),
        Value::Secret(_) => secret(),
    }
}

fn exports(id: &str, kind: Kind) -> Json {
    Json::Array(
        kind.exports()
            .iter()
            .map(|export| {
                json!({
                    "name": export,
                    "type": "attr",
                    "value": { "type": "capsule", "value": format!("{export}({id})") },
                })
            })
            .collect(),
    )
}
