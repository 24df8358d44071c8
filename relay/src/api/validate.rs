//! Request bodies and path parameters checked into typed values. Plain
//! functions (the only I/O: reading a schema file), so every rule is
//! unit-tested without a server.

use std::io;
use std::path::{Component, Path, PathBuf};

use apache_avro::schema::{ResolvedSchema, SchemaKind};
use apache_avro::Schema;
use serde_json::{json, Map, Value};

use super::control::{NewChannel, SchemaDirs};
use super::overrides::{kind, Overrides};

/// Longest channel name (it is also a directory name).
pub const NAME_MAX: usize = 64;
/// Lowest port a channel may use: below are the privileged ports.
pub const PORT_MIN: u16 = 1024;
/// Largest schema accepted (a file, or inline).
pub const SCHEMA_MAX_BYTES: usize = 1 << 20;
/// Longest schema path accepted.
const PATH_MAX: usize = 4096;

/// A 400 answer: SpeedData's `{"error": ..., "field"?, "details"?, ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid(pub Map<String, Value>);

impl Invalid {
    pub fn new(error: impl Into<String>) -> Invalid {
        let mut m = Map::new();
        m.insert("error".into(), Value::String(error.into()));
        Invalid(m)
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Invalid {
        self.0.insert(key.into(), value.into());
        self
    }

    pub fn error(&self) -> &str {
        self.0.get("error").and_then(Value::as_str).unwrap_or_default()
    }
}

/// `[A-Za-z0-9_.-]{1,64}`, and not `.` or `..` (it names a directory).
pub fn channel_name(name: &str) -> Result<(), Invalid> {
    let ok = (1..=NAME_MAX).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        // "." and ".." are directory names; ".speeddata" holds the registry.
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Invalid::new("Invalid channel name")
            .with("field", "name")
            .with("details", format!("use 1 to {NAME_MAX} of A-Z a-z 0-9 _ . - (not starting with \".\")")))
    }
}

/// A port in a URL path or query: decimal, 1024..=65535.
pub fn port_text(text: &str, field: &str) -> Result<u16, Invalid> {
    let n = text
        .parse::<u64>()
        .map_err(|_| Invalid::new("Port must be an integer").with("field", field))?;
    port_range(n, field)
}

/// SpeedData's `port`: an integer, or a string of digits (Python's `int()`).
pub fn port_value(v: &Value) -> Result<u16, Invalid> {
    let n = match v {
        Value::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
        Value::String(s) => s.trim().parse::<i64>().ok().map(i128::from),
        _ => None,
    };
    match n {
        Some(n) => port_range(n, "port"),
        None => Err(Invalid::new("Port must be an integer").with("field", "port")),
    }
}

fn port_range(n: impl Into<i128>, field: &str) -> Result<u16, Invalid> {
    let n: i128 = n.into();
    match u16::try_from(n) {
        Ok(p) if p >= PORT_MIN => Ok(p),
        _ => Err(Invalid::new(format!("Port must be between {PORT_MIN} and 65535"))
            .with("field", field)
            .with("port", i64::try_from(n).map_or_else(|_| Value::String(n.to_string()), Value::from))),
    }
}

/// `POST /channels`: `{name, port, schema, config?}`. `schema` is a path
/// (SpeedData's form) or the schema itself (a JSON object).
pub fn registration(body: &Value, dirs: &SchemaDirs) -> Result<NewChannel, Invalid> {
    let Some(map) = body.as_object().filter(|m| !m.is_empty()) else {
        return Err(Invalid::new("Request body required")
            .with("details", format!("expected a JSON object {{name, port, schema, config}}, got {}", kind(body))));
    };
    if let Some(k) = map.keys().find(|k| !["name", "port", "schema", "config"].contains(&k.as_str())) {
        return Err(Invalid::new("Unknown field")
            .with("field", k.as_str())
            .with("details", "a registration has name, port, schema and config"));
    }
    // As SpeedData: a missing, null, empty or zero value is missing.
    let given = |k: &str| map.get(k).filter(|v| !is_falsy(v));
    let (Some(name), Some(port), Some(schema)) = (given("name"), given("port"), given("schema")) else {
        return Err(Invalid::new("Missing required fields").with("required", json!(["name", "port", "schema"])));
    };
    let name = name.as_str().ok_or_else(|| {
        Invalid::new("Invalid channel name").with("field", "name").with("details", format!("must be a string, got {}", kind(name)))
    })?;
    channel_name(name)?;
    let port = port_value(port)?;
    let overrides = Overrides::from_request(map.get("config"))
        .map_err(|(field, why)| Invalid::new("Invalid config").with("field", field).with("details", why))?;
    let (schema_path, schema_file, schema_json) = match schema {
        Value::String(written) => {
            let (file, text) = schema_from_path(written, dirs)?;
            (Some(written.clone()), Some(file), text)
        }
        Value::Object(_) => {
            let text = serde_json::to_string(schema).expect("a JSON value serializes");
            if text.len() > SCHEMA_MAX_BYTES {
                return Err(Invalid::new("Schema too large").with("details", format!("at most {SCHEMA_MAX_BYTES} bytes")));
            }
            (None, None, text)
        }
        other => {
            return Err(Invalid::new("Invalid schema")
                .with("field", "schema")
                .with("details", format!("must be a path (a string) or a schema (an object), got {}", kind(other))))
        }
    };
    let parsed = record_schema(&schema_json)
        .map_err(|why| Invalid::new("Invalid schema").with("field", "schema").with("details", why))?;
    if let Some(f) = overrides.decimation.as_ref().and_then(|d| d.time_field.as_deref()) {
        if !has_field(&parsed, f) {
            return Err(Invalid::new("Invalid config")
                .with("field", "config.decimation.time_field")
                .with("details", format!("the schema has no field \"{f}\"")));
        }
    }
    Ok(NewChannel { name: name.to_owned(), port, schema_path, schema_file, schema_json, overrides })
}

fn is_falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Finds `written` (absolute, or relative to each of `dirs.bases` in turn)
/// inside `dirs.allowed` and reads it. Nothing outside the allowed
/// directories is touched: a candidate is checked by name first, then again
/// after following symbolic links. Returns the canonical path and the text.
pub fn schema_from_path(written: &str, dirs: &SchemaDirs) -> Result<(PathBuf, String), Invalid> {
    let refuse = |error: &str, details: String| {
        Invalid::new(error).with("field", "schema").with("path", written).with("details", details)
    };
    if written.len() > PATH_MAX || written.contains('\0') {
        return Err(refuse("Invalid schema path", format!("at most {PATH_MAX} bytes, no NUL")));
    }
    let path = Path::new(written);
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(refuse("Invalid schema path", "must not contain \"..\"".into()));
    }
    let allowed: Vec<(PathBuf, Option<PathBuf>)> =
        dirs.allowed.iter().map(|d| (d.clone(), std::fs::canonicalize(d).ok())).collect();
    let inside = |p: &Path| allowed.iter().any(|(d, real)| p.starts_with(d) || real.as_ref().is_some_and(|r| p.starts_with(r)));
    let candidates: Vec<PathBuf> = if path.is_absolute() {
        vec![path.components().collect()]
    } else {
        dirs.bases.iter().map(|b| b.join(path).components().collect()).collect()
    };
    let shown_dirs = || dirs.allowed.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
    let candidates: Vec<PathBuf> = candidates.into_iter().filter(|c| inside(c)).collect();
    if candidates.is_empty() {
        return Err(refuse(
            "Schema path outside the schema directories",
            format!("schema files are read from: {}", shown_dirs()),
        ));
    }
    let mut found = None;
    for c in &candidates {
        match std::fs::canonicalize(c) {
            Ok(real) => {
                found = Some(real);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(refuse("Cannot read schema file", e.to_string())),
        }
    }
    let Some(real) = found else {
        let tried: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
        return Err(refuse("Schema file not found", format!("tried: {}", tried.join(", "))));
    };
    if !allowed.iter().any(|(_, r)| r.as_ref().is_some_and(|r| real.starts_with(r))) {
        return Err(refuse(
            "Schema path outside the schema directories",
            format!("it leads (through a symbolic link) outside {}", shown_dirs()),
        ));
    }
    if real.to_str().is_none() {
        return Err(refuse("Invalid schema path", "the file's path is not UTF-8".into()));
    }
    let meta = std::fs::metadata(&real).map_err(|e| refuse("Cannot read schema file", e.to_string()))?;
    if !meta.is_file() {
        return Err(refuse("Cannot read schema file", "not a regular file".into()));
    }
    if meta.len() > SCHEMA_MAX_BYTES as u64 {
        return Err(refuse("Schema too large", format!("{} bytes; at most {SCHEMA_MAX_BYTES}", meta.len())));
    }
    let text = std::fs::read_to_string(&real).map_err(|e| refuse("Cannot read schema file", e.to_string()))?;
    if let Err(e) = serde_json::from_str::<Value>(&text) {
        return Err(refuse("Invalid schema file (not valid JSON)", e.to_string()));
    }
    Ok((real, text))
}

/// Parses `text` as an Avro schema that is a record (one datum per datagram).
pub fn record_schema(text: &str) -> Result<Schema, String> {
    let schema = Schema::parse_str(text).map_err(|e| format!("not a valid Avro schema: {e}"))?;
    match schema {
        Schema::Record(_) => Ok(schema),
        other => Err(format!(
            "must be an Avro record (one datum per datagram), got {:?}",
            SchemaKind::from(&other)
        )),
    }
}

/// Whether record `schema` has the field `path` (`a.b`: field `b` of the
/// record-typed field `a`).
pub fn has_field(schema: &Schema, path: &str) -> bool {
    let Ok(resolved) = ResolvedSchema::try_from(schema) else {
        return false;
    };
    let names = resolved.get_names();
    let mut current = schema;
    for part in path.split('.') {
        if let Schema::Ref { name } = current {
            match names.get(name) {
                Some(s) => current = s,
                None => return false,
            }
        }
        let Schema::Record(record) = current else {
            return false;
        };
        let Some(field) = record.fields.iter().find(|f| f.name == part) else {
            return false;
        };
        current = &field.schema;
    }
    true
}

/// `validate-schema`: the body is `{"schema": S}` (SpeedData's form) or the
/// schema itself; `S` may be a JSON object or its text. `None`: no schema in it.
pub fn provided_schema(body: &Value) -> Option<Value> {
    let map = body.as_object()?;
    let s = match map.get("schema") {
        Some(s) => s,
        None if map.contains_key("type") => body,
        None => return None,
    };
    match s {
        Value::String(text) => Some(serde_json::from_str(text).unwrap_or_else(|_| s.clone())),
        Value::Null => None,
        _ => Some(s.clone()),
    }
}

/// Equal as JSON (SpeedData's test), or the same Avro schema in Parsing
/// Canonical Form (same datums on the wire, whatever the docs, key order or
/// namespace spelling).
pub fn same_schema(registered: &Value, provided: &Value) -> bool {
    if registered == provided {
        return true;
    }
    let parse = |v: &Value| Schema::parse(v).ok().map(|s| s.canonical_form());
    matches!((parse(registered), parse(provided)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests;
