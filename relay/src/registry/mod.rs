//! The durable registry of channels registered through the API, so they
//! survive a restart. SQLite in WAL mode with `synchronous=FULL`: a write is
//! one transaction, on disk before the call returns, and a crash leaves
//! either the whole change or none of it.
//!
//! A row holds everything needed to rebuild the channel without the files
//! it came from: name, port, the schema's JSON text (and the path it was
//! read from, as written and as resolved), the decimation/rotation overrides
//! as JSON, and when it was registered.

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::api::control::NewChannel;
use crate::api::overrides::Overrides;

/// The layout this code writes; a newer one is refused rather than misread.
const SCHEMA_VERSION: i64 = 1;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS channels (
    name         TEXT    PRIMARY KEY,
    port         INTEGER NOT NULL UNIQUE CHECK (port BETWEEN 1 AND 65535),
    schema_path  TEXT,
    schema_file  TEXT,
    schema_json  TEXT    NOT NULL,
    config_json  TEXT    NOT NULL,
    created_at   TEXT    NOT NULL
) STRICT;
";

/// A registered channel, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub channel: NewChannel,
    /// RFC 3339, UTC, whole seconds (`2025-12-24T10:00:00Z`).
    pub created_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("channel name \"{0}\" is already registered")]
    NameTaken(String),
    #[error("port {port} is already registered to channel \"{used_by}\"")]
    PortTaken { port: u16, used_by: String },
    #[error("registry {path}: written by a newer speeddata-xdp (layout {found}, this one knows {SCHEMA_VERSION})")]
    TooNew { path: PathBuf, found: i64 },
    #[error("registry {path}: channel \"{name}\": {what}")]
    Corrupt { path: PathBuf, name: String, what: String },
    #[error("registry {path}: {what}: {source}")]
    Sqlite {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("registry {path}: creating its directory: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<RegistryError> for crate::api::ControlError {
    fn from(e: RegistryError) -> Self {
        use crate::api::ControlError;
        match e {
            RegistryError::NameTaken(name) => ControlError::NameInUse(name),
            RegistryError::PortTaken { port, used_by } => ControlError::PortInUse { port, used_by },
            other => ControlError::Failed(other.to_string()),
        }
    }
}

pub struct Registry {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("path", &self.path).finish()
    }
}

impl Registry {
    /// Opens (creating it and its directory if needed) the registry at `path`.
    pub fn open(path: &Path) -> Result<Registry, RegistryError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| RegistryError::Io { path: path.to_owned(), source })?;
        }
        let sql = |what: &'static str| {
            let path = path.to_owned();
            move |source| RegistryError::Sqlite { path, what, source }
        };
        let conn = Connection::open(path).map_err(sql("opening"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql("setting the busy timeout"))?;
        // WAL: a crash mid-write leaves the last committed state; FULL: a
        // commit is on disk before it returns (the API answers 201 after it).
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sql("enabling WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            log::warn!("registry {}: journal mode is {mode}, not wal", path.display());
        }
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql("setting synchronous=FULL"))?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql("reading the layout version"))?;
        if found > SCHEMA_VERSION {
            return Err(RegistryError::TooNew { path: path.to_owned(), found });
        }
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {CREATE} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"))
            .map_err(sql("creating the table"))?;
        Ok(Registry { conn, path: path.to_owned() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every registered channel, by name.
    pub fn list(&self) -> Result<Vec<Registered>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT name, port, schema_path, schema_file, schema_json, config_json, created_at
                 FROM channels ORDER BY name",
            )
            .map_err(self.sql("listing channels"))?;
        let rows = stmt
            .query_map([], read_row)
            .map_err(self.sql("listing channels"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql("listing channels"))?;
        rows.into_iter().map(|r| self.decode(r)).collect()
    }

    pub fn get(&self, name: &str) -> Result<Option<Registered>, RegistryError> {
        let row = self
            .conn
            .query_row(
                "SELECT name, port, schema_path, schema_file, schema_json, config_json, created_at
                 FROM channels WHERE name = ?1",
                [name],
                read_row,
            )
            .optional()
            .map_err(self.sql("reading a channel"))?;
        row.map(|r| self.decode(r)).transpose()
    }

    /// Stores `ch`, stamped with the current time. Refuses a name or port
    /// already registered (checked and written in one transaction).
    pub fn insert(&mut self, ch: &NewChannel) -> Result<Registered, RegistryError> {
        let created_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let config_json = serde_json::to_string(&ch.overrides).expect("overrides serialize");
        let schema_file = ch.schema_file.as_ref().map(|p| p.to_string_lossy().into_owned());
        let path = self.path.clone();
        let sql = |what: &'static str| {
            let path = path.clone();
            move |source| RegistryError::Sqlite { path, what, source }
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("starting a transaction"))?;
        let used_by: Option<String> = tx
            .query_row("SELECT name FROM channels WHERE port = ?1", [ch.port], |r| r.get(0))
            .optional()
            .map_err(sql("checking the port"))?;
        if let Some(used_by) = used_by {
            return Err(RegistryError::PortTaken { port: ch.port, used_by });
        }
        let name_taken: bool = tx
            .query_row("SELECT EXISTS (SELECT 1 FROM channels WHERE name = ?1)", [&ch.name], |r| r.get(0))
            .map_err(sql("checking the name"))?;
        if name_taken {
            return Err(RegistryError::NameTaken(ch.name.clone()));
        }
        tx.execute(
            "INSERT INTO channels (name, port, schema_path, schema_file, schema_json, config_json, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![ch.name, ch.port, ch.schema_path, schema_file, ch.schema_json, config_json, created_at],
        )
        .map_err(sql("inserting a channel"))?;
        tx.commit().map_err(sql("committing"))?;
        Ok(Registered { channel: ch.clone(), created_at })
    }

    /// Forgets `name`; `false` if it was not registered.
    pub fn delete(&mut self, name: &str) -> Result<bool, RegistryError> {
        let n = self
            .conn
            .execute("DELETE FROM channels WHERE name = ?1", [name])
            .map_err(self.sql("deleting a channel"))?;
        Ok(n > 0)
    }

    fn sql(&self, what: &'static str) -> impl FnOnce(rusqlite::Error) -> RegistryError {
        let path = self.path.clone();
        move |source| RegistryError::Sqlite { path, what, source }
    }

    fn decode(&self, r: RawRow) -> Result<Registered, RegistryError> {
        let corrupt = |what: String| RegistryError::Corrupt { path: self.path.clone(), name: r.name.clone(), what };
        let port = u16::try_from(r.port).map_err(|_| corrupt(format!("port {} out of range", r.port)))?;
        let overrides: Overrides =
            serde_json::from_str(&r.config_json).map_err(|e| corrupt(format!("config_json: {e}")))?;
        Ok(Registered {
            channel: NewChannel {
                name: r.name.clone(),
                port,
                schema_path: r.schema_path,
                schema_file: r.schema_file.map(PathBuf::from),
                schema_json: r.schema_json,
                overrides,
            },
            created_at: r.created_at,
        })
    }
}

struct RawRow {
    name: String,
    port: i64,
    schema_path: Option<String>,
    schema_file: Option<String>,
    schema_json: String,
    config_json: String,
    created_at: String,
}

fn read_row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        name: r.get(0)?,
        port: r.get(1)?,
        schema_path: r.get(2)?,
        schema_file: r.get(3)?,
        schema_json: r.get(4)?,
        config_json: r.get(5)?,
        created_at: r.get(6)?,
    })
}
