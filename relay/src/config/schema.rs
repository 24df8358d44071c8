//! A channel's `.avsc` file: found, read, and checked to be an Avro record
//! schema before anything starts.

use std::path::PathBuf;

use apache_avro::schema::SchemaKind;
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
