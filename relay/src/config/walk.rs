//! Typed reads from a parsed YAML tree, each naming its field on failure.
//!
//! `serde_norway::Value` keeps no positions, so errors name the field by path
//! (`channels[1].port`) instead of by line. Reading everything by hand (rather
//! than through serde) lets one pass report every problem, list the allowed
//! keys next to an unknown one, and accept the few spellings SpeedData's
//! Python loader (PyYAML, YAML 1.1) accepted where the meaning is unambiguous:
//!
//! - booleans also as `yes`/`no`/`on`/`off` (any case; PyYAML reads those
//!   unquoted words as booleans) and as the strings `"true"`/`"false"`;
//! - whole numbers also as digit strings (`port: "26000"`), with `_`
//!   separators (`3_600`), or as floats without a fraction (`1e3`, `5.0`);
//!   a digit string with a leading zero is refused (YAML 1.1 reads it as octal);
//! - choices (`algorithm`, `mode`, `codec`) in any case;
//! - a key whose value is null (`decimation:` with nothing after it) counts
//!   as absent.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use serde_norway::Value;

use super::error::Problems;

/// `parent.key`, or `key` at the top level.
pub(super) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub(super) fn index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// Where a value came from: the file and the field path inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Loc {
    pub file: PathBuf,
    pub field: String,
}

impl Loc {
    pub(super) fn child(&self, key: &str) -> Loc {
        Loc {
            file: self.file.clone(),
            field: join(&self.field, key),
        }
    }

    /// `field in file-name`, for messages that point at a second place.
    pub(super) fn describe(&self) -> String {
        let name = self.file.file_name().map_or_else(
            || self.file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        format!("{} in {name}", self.field)
    }
}

/// The entries of a YAML mapping whose keys have been checked.
pub(super) struct Map<'v> {
    entries: Vec<(&'v str, &'v Value)>,
}

impl<'v> Map<'v> {
    /// The value of `key`; `None` when absent or null.
    pub(super) fn get(&self, key: &str) -> Option<&'v Value> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_null())
    }
}

/// Reads values out of one file, recording problems against it.
pub(super) struct Walker<'a> {
    pub file: &'a Path,
    pub problems: &'a mut Problems,
}

impl Walker<'_> {
    pub(super) fn error(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(self.file, field, message);
    }

    pub(super) fn loc(&self, field: &str) -> Loc {
        Loc {
            file: self.file.to_path_buf(),
            field: field.to_owned(),
        }
    }

    /// A mapping whose keys are all in `allowed`. Unknown keys are reported
    /// (with the allowed list) and skipped; the known ones are returned.
    pub(super) fn mapping<'v>(
        &mut self,
        value: &'v Value,
        field: &str,
        allowed: &[&str],
    ) -> Option<Map<'v>> {
        let Value::Mapping(mapping) = untag(self, value, field)? else {
            self.error(
                field,
                format!(
                    "expected a mapping with keys {}, got {}",
                    allowed.join(", "),
                    show(value)
                ),
            );
            return None;
        };
        let mut entries = Vec::with_capacity(mapping.len());
        for (key, value) in mapping {
            let Value::String(key) = key else {
                self.error(field, format!("keys must be strings, got {}", show(key)));
                continue;
            };
            if allowed.contains(&key.as_str()) {
                entries.push((key.as_str(), value));
            } else {
                let hint = suggestion(key, allowed)
                    .map_or_else(String::new, |s| format!("; did you mean \"{s}\"?"));
                self.error(
                    &join(field, key),
                    format!(
                        "unknown key \"{key}\" (allowed: {}){hint}",
                        allowed.join(", ")
                    ),
                );
            }
        }
        Some(Map { entries })
    }

    pub(super) fn sequence<'v>(&mut self, value: &'v Value, field: &str) -> Option<&'v [Value]> {
        match untag(self, value, field)? {
            Value::Sequence(items) => Some(items),
            other => {
                self.error(field, format!("expected a list, got {}", show(other)));
                None
            }
        }
    }

    /// A non-empty string (surrounding whitespace removed).
    pub(super) fn string(&mut self, value: &Value, field: &str) -> Option<String> {
        match untag(self, value, field)? {
            Value::String(s) if s.trim().is_empty() => {
                self.error(field, "must not be empty");
                None
            }
            Value::String(s) => Some(s.trim().to_owned()),
            other @ (Value::Number(_) | Value::Bool(_)) => {
                self.error(
                    field,
                    format!(
                        "expected a string, got {} (quote it if it is meant as text)",
                        show(other)
                    ),
                );
                None
            }
            other => {
                self.error(field, format!("expected a string, got {}", show(other)));
                None
            }
        }
    }

    pub(super) fn bool(&mut self, value: &Value, field: &str) -> Option<bool> {
        let parsed = match untag(self, value, field)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" => Some(true),
                "false" | "no" | "off" => Some(false),
                _ => None,
            },
            Value::Number(n) => match n.as_u64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                field,
                format!("expected true or false, got {}", show(value)),
            );
        }
        parsed
    }

    /// A whole number in `range`.
    pub(super) fn uint(
        &mut self,
        value: &Value,
        field: &str,
        range: RangeInclusive<u64>,
    ) -> Option<u64> {
        let n = match whole_number(untag(self, value, field)?) {
            Ok(n) => n,
            Err(why) => {
                self.error(field, why);
                return None;
            }
        };
        let in_range = u64::try_from(n).ok().filter(|n| range.contains(n));
        if in_range.is_none() {
            let (min, max) = (*range.start(), *range.end());
            let message = if n == 0 && min == 1 {
                format!("must be at least 1, got 0 (allowed {min}..={max})")
            } else {
                format!("{n} is out of range (allowed {min}..={max})")
            };
            self.error(field, message);
        }
        in_range
    }

    /// A UDP port, 1..=65535 (0 means "any" to the kernel: never what a config means).
    pub(super) fn port(&mut self, value: &Value, field: &str) -> Option<u16> {
        self.uint(value, field, 1..=u64::from(u16::MAX))
            .map(|p| u16::try_from(p).expect("range-checked"))
    }

    pub(super) fn ipv4(&mut self, value: &Value, field: &str) -> Option<Ipv4Addr> {
        let text = self.string(value, field)?;
        match text.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.error(field, format!("not an IPv4 address: \"{text}\""));
                None
            }
        }
    }

    /// One of `options` (compared ignoring case).
    pub(super) fn choice<T: Copy>(
        &mut self,
        value: &Value,
        field: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let names = || {
            options
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Value::String(text) = untag(self, value, field)? else {
            self.error(
                field,
                format!("expected one of {}, got {}", names(), show(value)),
            );
            return None;
        };
        let wanted = text.trim().to_ascii_lowercase();
        let found = options.iter().find(|(n, _)| *n == wanted).map(|(_, v)| *v);
        if found.is_none() {
            self.error(
                field,
                format!("unknown value \"{text}\" (allowed: {})", names()),
            );
        }
        found
    }
}

/// Tags (`!foo`) carry meaning we cannot honour: refuse them rather than guess.
fn untag<'v>(walker: &mut Walker<'_>, value: &'v Value, field: &str) -> Option<&'v Value> {
    if let Value::Tagged(tagged) = value {
        walker.error(
            field,
            format!("YAML tags are not supported, got {}", tagged.tag),
        );
        return None;
    }
    Some(value)
}

/// A whole number from a YAML number or a digit string; negative values come
/// back as they are so the range message can show them.
fn whole_number(value: &Value) -> Result<i128, String> {
    match value {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Ok(i128::from(u))
            } else if let Some(i) = n.as_i64() {
                Ok(i128::from(i))
            } else {
                integral(n.as_f64().unwrap_or(f64::NAN))
                    .ok_or_else(|| format!("expected a whole number, got {n}"))
            }
        }
        Value::String(s) => {
            let t = s.trim();
            let digits: String = t.chars().filter(|c| *c != '_').collect();
            let well_formed = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !t.starts_with('_')
                && !t.ends_with('_')
                && !t.contains("__");
            if !well_formed {
                Err(format!("expected a whole number, got \"{s}\""))
            } else if digits.len() > 1 && digits.starts_with('0') {
                Err(format!(
                    "ambiguous number \"{s}\": a leading zero means octal to YAML 1.1; write it without the zero"
                ))
            } else {
                digits
                    .parse::<i128>()
                    .map_err(|_| format!("{s} is out of range"))
            }
        }
        other => Err(format!("expected a whole number, got {}", show(other))),
    }
}

/// `f` as an integer when it has no fraction (`5.0`, `1e3`).
#[expect(
    clippy::cast_possible_truncation,
    reason = "checked finite, integral and far inside i128 first"
)]
fn integral(f: f64) -> Option<i128> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 1e30).then_some(f as i128)
}

/// A short description of a value for messages.
pub(super) fn show(value: &Value) -> String {
    match value {
        Value::Null => "nothing (null)".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("\"{s}\""),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

/// The allowed key closest to `key`, if it looks like a typo of it.
fn suggestion<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edit_distance(&key.to_ascii_lowercase(), a), *a))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
