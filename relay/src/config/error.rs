//! What [`super::load`] reports: every problem found, each naming the file,
//! the field and what is wrong with it.

use std::fmt;
use std::path::{Path, PathBuf};

/// An invalid configuration: one or more [`Problem`]s, in the order found.
///
/// `Display` prints one problem per line, so the whole list reads well after
/// anyhow's `Error: ` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file the problem is in (or the path given to `load` when it could
    /// not be read at all).
    pub file: PathBuf,
    /// `line:column` in `file`, when known (YAML syntax errors).
    pub position: Option<(usize, usize)>,
    /// Path of the offending field, like `channels[1].port` or
    /// `multicast.full_rate.address`; empty for whole-file problems.
    pub field: String,
    /// What is wrong, including the offending value.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Collects problems while the configuration is read and checked.
#[derive(Debug, Default)]
pub(super) struct Problems(Vec<Problem>);

impl Problems {
    pub(super) fn push(&mut self, file: &Path, field: &str, message: impl Into<String>) {
        self.0.push(Problem {
            file: file.to_path_buf(),
            position: None,
            field: field.to_owned(),
            message: message.into(),
        });
    }

    pub(super) fn push_at(&mut self, file: &Path, position: (usize, usize), message: String) {
        self.0.push(Problem {
            file: file.to_path_buf(),
            position: Some(position),
            field: String::new(),
            message,
        });
    }

    /// How many problems so far: compare before and after reading a section
    /// to know whether it was clean.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn into_result<T>(self, value: T) -> Result<T, ConfigError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError { problems: self.0 })
        }
    }

    pub(super) fn into_error(self) -> ConfigError {
        debug_assert!(!self.0.is_empty());
        ConfigError { problems: self.0 }
    }
}
