//! A channel's `.avsc` file: found, read, and checked to be an Avro record
//! schema before anything starts.

use std::path::{Path, PathBuf};

use apache_avro::schema::{ResolvedSchema, SchemaKind};
use apache_avro::Schema;

/// The first of `candidates` that exists, read and checked; `Err` is a
/// message (the caller adds file and field).
pub(super) fn load(written: &str, candidates: &[PathBuf]) -> Result<(PathBuf, String), String> {
    let Some(path) = candidates.iter().find(|p| p.exists()) else {
        let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        return Err(format!(
            "schema file \"{written}\" not found; tried: {}",
            tried.join(", ")
        ));
    };
    let shown = path.display();
    if path.is_dir() {
        return Err(format!("schema \"{written}\" is a directory: {shown}"));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read schema file {shown}: {e}"))?;
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
        return Err(format!("schema file {shown} is not valid JSON: {e}"));
    }
    let schema = Schema::parse_str(&text)
        .map_err(|e| format!("schema file {shown} is not a valid Avro schema: {e}"))?;
    if !matches!(schema, Schema::Record(_)) {
        return Err(format!(
            "schema file {shown} must define a record (one datum per datagram), got {:?}",
            SchemaKind::from(&schema)
        ));
    }
    Ok((path.clone(), text))
}

/// `record NAME, N fields` for [`super::describe`]; the text was checked at load.
pub(super) fn summary(text: &str) -> String {
    match Schema::parse_str(text) {
        Ok(Schema::Record(record)) => {
            format!("record {}, {} fields", record.name, record.fields.len())
        }
        Ok(other) => format!("{:?}", SchemaKind::from(&other)),
        Err(e) => format!("unparsable: {e}"),
    }
}

/// Checks that the record schema in `text` has the field `path` (`a.b` is
/// field `b` of the record-typed field `a`); `Err` says what is there instead.
pub(super) fn find_field(schema_path: &Path, text: &str, path: &str) -> Result<(), String> {
    let shown = schema_path.display();
    let schema =
        Schema::parse_str(text).map_err(|e| format!("schema {shown} is unparsable: {e}"))?;
    let resolved = ResolvedSchema::try_from(&schema)
        .map_err(|e| format!("schema {shown} does not resolve: {e}"))?;
    let names = resolved.get_names();
    let mut current = &schema;
    let mut walked = String::new();
    for part in path.split('.') {
        if let Schema::Ref { name } = current {
            current = names.get(name).copied().unwrap_or(current);
        }
        let Schema::Record(record) = current else {
            return Err(format!(
                "no field \"{path}\" in schema {shown}: \"{walked}\" is not a record"
            ));
        };
        let Some(field) = record.fields.iter().find(|f| f.name == part) else {
            let have: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
            let whose = if walked.is_empty() {
                format!("record {}", record.name)
            } else {
                format!("\"{walked}\"")
            };
            return Err(format!(
                "no field \"{path}\" in schema {shown} ({whose} has fields {})",
                have.join(", ")
            ));
        };
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(part);
        current = &field.schema;
    }
    Ok(())
}
