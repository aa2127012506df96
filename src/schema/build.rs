//! The pieces the schemas are built from: closed tables, typed keys (durations with the
//! pattern `limits::parse_duration` reads, integers with the ranges the parsers check).

use serde_json::{json, Map, Value};

/// The draft the schemas declare: taplo and most editors read draft-07.
pub const DRAFT: &str = "http://json-schema.org/draft-07/schema#";

/// A document's root: `$schema`, `$id`, title and the table itself.
pub(super) fn root(id: &str, title: &str, mut table: Value) -> Value {
    if let Some(m) = table.as_object_mut() {
        m.insert("$schema".into(), json!(DRAFT));
        m.insert(
            "$id".into(),
            json!(format!("https://failover.dev/schema/{id}.json")),
        );
        m.insert("title".into(), json!(title));
    }
    table
}

/// A closed table: only these keys, `required` among them.
pub(super) fn table(description: &str, props: Vec<(&str, Value)>, required: &[&str]) -> Value {
    let mut p = Map::new();
    for (k, v) in props {
        p.insert(k.to_string(), v);
    }
    json!({
        "type": "object",
        "description": description,
        "properties": p,
        "required": required,
        "additionalProperties": false,
    })
}

/// A zone's name, e.g. us-west-2a (keys of per-zone tables).
pub const ZONE_PATTERN: &str = "^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$";

/// A table keyed by zone.
pub(super) fn by_zone(description: &str, value: Value) -> Value {
    json!({
        "type": "object",
        "description": description,
        "propertyNames": {"pattern": ZONE_PATTERN},
        "additionalProperties": value,
    })
}

/// A fixed string (a step's `action`, a group's `kind`).
pub(super) fn constant(value: &str, description: &str) -> Value {
    json!({"type": "string", "const": value, "description": description})
}

/// A table of named entries (`[groups.NAME]`, `[endpoints.NAME]`).
pub(super) fn map_of(description: &str, value: Value) -> Value {
    json!({"type": "object", "description": description, "additionalProperties": value})
}

pub(super) fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

pub(super) fn one_of_strings(description: &str, values: &[&str]) -> Value {
    json!({"type": "string", "description": description, "enum": values})
}

pub(super) fn boolean(description: &str) -> Value {
    json!({"type": "boolean", "description": description})
}

pub(super) fn integer(description: &str, min: i64, max: i64) -> Value {
    json!({"type": "integer", "description": description, "minimum": min, "maximum": max})
}

pub(super) fn number(description: &str) -> Value {
    json!({"type": "number", "description": description})
}

/// A duration as `limits::parse_duration` reads it: "500ms", "30s", "5m", "1h 30m".
pub(super) fn duration(description: &str) -> Value {
    json!({
        "type": "string",
        "description": format!("{description} (a duration: \"500ms\", \"30s\", \"5m\", \"1h 30m\"; at most 7d)"),
        "pattern": DURATION_PATTERN,
    })
}

/// What humantime accepts, loosely: numbers each followed by a unit.
pub const DURATION_PATTERN: &str = r"^\s*([0-9]+\s*[a-zA-Zµ]+\s*)+$";

pub(super) fn strings(description: &str) -> Value {
    json!({"type": "array", "description": description, "items": {"type": "string"}})
}

pub(super) fn string_or_strings(description: &str) -> Value {
    json!({
        "description": description,
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
    })
}

/// HTTP status codes: one or a list.
pub(super) fn statuses(description: &str) -> Value {
    let code = json!({"type": "integer", "minimum": 100, "maximum": 599});
    json!({
        "description": description,
        "anyOf": [code.clone(), {"type": "array", "items": code}],
    })
}

/// HTTP methods, upper or lower case (the parsers upper-case them).
pub(super) fn method(description: &str, methods: &[&str]) -> Value {
    let mut all: Vec<String> = methods.iter().map(|m| m.to_string()).collect();
    all.extend(methods.iter().map(|m| m.to_ascii_lowercase()));
    json!({"type": "string", "description": description, "enum": all})
}
