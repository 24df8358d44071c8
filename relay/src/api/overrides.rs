//! Per-channel settings a registration may carry (`config` in SpeedData's
//! request): decimation and rotation, laid over the global values the same
//! way a `relay.yaml` channel section is (field by field for decimation).
//!
//! Stored in the registry as JSON in the shape of the YAML sections, so a
//! registered channel reads like one written in `relay.yaml`:
//! `{"decimation": {"factor": 5}, "rotation": {"mode": "time", "threshold": 3600}}`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::config::{Algorithm, ChannelConfig, Decimation, Rotation, Window};

/// Longest decimation window by time: a day (as in the config loader).
pub const INTERVAL_MS_MAX: u64 = 86_400_000;

const DECIMATION_KEYS: &[&str] = &["enabled", "factor", "interval_ms", "algorithm", "time_field"];
const ROTATION_KEYS: &[&str] = &["mode", "threshold"];
const ALGORITHMS: &[(&str, Algorithm)] = &[
    ("downsample", Algorithm::Downsample),
    ("average", Algorithm::Average),
    ("minmax", Algorithm::MinMax),
    ("rms", Algorithm::Rms),
];

/// What a registration changes from the global settings. Empty = all global.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimation: Option<DecimationOverride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationOverride>,
}

/// Each field replaces the global one when set; `factor` and `interval_ms`
/// are never both set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecimationOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// One of `downsample`, `average`, `minmax`, `rms` (checked on input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_field: Option<String>,
}

/// A whole rotation setting: unlike YAML, the mode is never inherited,
/// because a threshold means seconds in one mode and bytes in the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationOverride {
    pub mode: RotationMode,
    pub threshold: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RotationMode {
    /// `threshold` in seconds.
    Time,
    /// `threshold` in bytes.
    Size,
}

impl Overrides {
    /// The effective settings: these overrides over `decimation`/`rotation`
    /// (the global values). A `factor` or `interval_ms` replaces the inherited
    /// window, whichever kind it was.
    pub fn apply(&self, decimation: &Decimation, rotation: Rotation) -> (Decimation, Rotation) {
        let mut d = decimation.clone();
        if let Some(o) = &self.decimation {
            if let Some(enabled) = o.enabled {
                d.enabled = enabled;
            }
            match (o.interval_ms, o.factor) {
                (Some(ms), _) => d.window = Window::Time(Duration::from_millis(ms)),
                (None, Some(n)) => d.window = Window::Count(n),
                (None, None) => {}
            }
            if let Some(a) = o.algorithm.as_deref().and_then(algorithm) {
                d.algorithm = a;
            }
            if let Some(f) = &o.time_field {
                d.time_field.clone_from(f);
            }
        }
        let r = match self.rotation {
            Some(RotationOverride { mode: RotationMode::Time, threshold }) => {
                Rotation::Time(Duration::from_secs(threshold))
            }
            Some(RotationOverride { mode: RotationMode::Size, threshold }) => Rotation::Size(threshold),
            None => rotation,
        };
        (d, r)
    }

    /// Reads SpeedData's `config` object. Accepted, besides the YAML-shaped
    /// sections: `decimation: N` (a factor, as SpeedData's page sends) and
    /// `rotation: N` (seconds, SpeedData's default mode). `null` anywhere
    /// means "not given". `Err` is `(field, message)`.
    pub fn from_request(config: Option<&Value>) -> Result<Overrides, (String, String)> {
        let map = match config {
            None | Some(Value::Null) => return Ok(Overrides::default()),
            Some(Value::Object(m)) => m,
            Some(other) => return Err(("config".into(), format!("must be an object, got {}", kind(other)))),
        };
        check_keys(map, "config", &["decimation", "rotation"])?;
        Ok(Overrides {
            decimation: match map.get("decimation") {
                None | Some(Value::Null) => None,
                Some(v) => Some(decimation_override(v)?),
            },
            rotation: match map.get("rotation") {
                None | Some(Value::Null) => None,
                Some(v) => Some(rotation_override(v)?),
            },
        })
    }

    pub fn is_empty(&self) -> bool {
        self.decimation.is_none() && self.rotation.is_none()
    }
}

/// The settings a channel runs with, in the shape of the YAML sections, for
/// the `config` field of API responses.
pub fn effective_config(ch: &ChannelConfig) -> Value {
    let d = &ch.decimation;
    let mut dec = Map::new();
    dec.insert("enabled".into(), d.enabled.into());
    match d.window {
        Window::Count(n) => dec.insert("factor".into(), n.into()),
        Window::Time(t) => dec.insert(
            "interval_ms".into(),
            u64::try_from(t.as_millis()).unwrap_or(u64::MAX).into(),
        ),
    };
    let algorithm = ALGORITHMS
        .iter()
        .find(|(_, a)| *a == d.algorithm)
        .map_or("downsample", |(n, _)| n);
    dec.insert("algorithm".into(), algorithm.into());
    dec.insert("time_field".into(), d.time_field.clone().into());
    let rotation = match ch.rotation {
        Rotation::Time(t) => json!({"mode": "time", "threshold": t.as_secs()}),
        Rotation::Size(b) => json!({"mode": "size", "threshold": b}),
    };
    json!({"decimation": dec, "rotation": rotation})
}

fn algorithm(name: &str) -> Option<Algorithm> {
    ALGORITHMS.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

fn decimation_override(v: &Value) -> Result<DecimationOverride, (String, String)> {
    const F: &str = "config.decimation";
    let map = match v {
        Value::Number(_) => {
            return Ok(DecimationOverride {
                factor: Some(factor(v, F)?),
                ..Default::default()
            })
        }
        Value::Object(m) => m,
        other => {
            return Err((
                F.into(),
                format!("must be a factor (integer ≥ 1) or an object {{{}}}, got {}", DECIMATION_KEYS.join(", "), kind(other)),
            ))
        }
    };
    check_keys(map, F, DECIMATION_KEYS)?;
    let field = |k: &str| map.get(k).filter(|v| !v.is_null());
    let sub = |k: &str| format!("{F}.{k}");
    let factor = field("factor")
        .map(|v| factor(v, &sub("factor")))
        .transpose()?;
    let interval_ms = field("interval_ms")
        .map(|v| uint_in(v, &sub("interval_ms"), 1, INTERVAL_MS_MAX))
        .transpose()?;
    if factor.is_some() && interval_ms.is_some() {
        return Err((
            sub("interval_ms"),
            "give either factor (a window of N datums) or interval_ms (a window of arrival time), not both".into(),
        ));
    }
    let enabled = field("enabled")
        .map(|v| v.as_bool().ok_or_else(|| (sub("enabled"), format!("must be true or false, got {}", kind(v)))))
        .transpose()?;
    let algorithm = field("algorithm")
        .map(|v| match v.as_str() {
            Some(s) if algorithm(s).is_some() => Ok(s.to_owned()),
            _ => Err((
                sub("algorithm"),
                format!(
                    "must be one of {}, got {v}",
                    ALGORITHMS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ),
            )),
        })
        .transpose()?;
    let time_field = field("time_field")
        .map(|v| match v.as_str() {
            Some(s) if is_field_path(s) => Ok(s.to_owned()),
            _ => Err((
                sub("time_field"),
                format!("must be an Avro field name ([A-Za-z_][A-Za-z0-9_]*, '.' for a nested record's field), got {v}"),
            )),
        })
        .transpose()?;
    Ok(DecimationOverride { enabled, factor, interval_ms, algorithm, time_field })
}

fn rotation_override(v: &Value) -> Result<RotationOverride, (String, String)> {
    const F: &str = "config.rotation";
    let map = match v {
        Value::Number(_) => {
            return Ok(RotationOverride { mode: RotationMode::Time, threshold: uint_in(v, F, 1, u64::MAX)? })
        }
        Value::Object(m) => m,
        other => {
            return Err((
                F.into(),
                format!("must be seconds (integer ≥ 1) or an object {{mode, threshold}}, got {}", kind(other)),
            ))
        }
    };
    check_keys(map, F, ROTATION_KEYS)?;
    let mode = match map.get("mode").filter(|v| !v.is_null()) {
        None => RotationMode::Time,
        Some(v) => match v.as_str() {
            Some("time") => RotationMode::Time,
            Some("size") => RotationMode::Size,
            _ => return Err((format!("{F}.mode"), format!("must be \"time\" or \"size\", got {v}"))),
        },
    };
    let threshold = match map.get("threshold").filter(|v| !v.is_null()) {
        Some(v) => uint_in(v, &format!("{F}.threshold"), 1, u64::MAX)?,
        None => {
            return Err((
                format!("{F}.threshold"),
                "missing: seconds for mode \"time\", bytes for mode \"size\"".into(),
            ))
        }
    };
    Ok(RotationOverride { mode, threshold })
}

fn check_keys(map: &Map<String, Value>, field: &str, known: &[&str]) -> Result<(), (String, String)> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err((format!("{field}.{k}"), format!("unknown setting; known: {}", known.join(", ")))),
        None => Ok(()),
    }
}

fn factor(v: &Value, field: &str) -> Result<u32, (String, String)> {
    uint_in(v, field, 1, u64::from(u32::MAX)).map(|n| u32::try_from(n).expect("range-checked"))
}

fn uint_in(v: &Value, field: &str, min: u64, max: u64) -> Result<u64, (String, String)> {
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err((field.into(), format!("must be an integer from {min} to {max}, got {v}"))),
    }
}

/// `a` or `a.b`, each part an Avro name.
fn is_field_path(path: &str) -> bool {
    path.len() <= 256
        && path.split('.').all(|part| {
            part.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

/// `a string`, `an array`… for messages.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::defaults;

    fn parse(v: Value) -> Result<Overrides, (String, String)> {
        Overrides::from_request(Some(&v))
    }

    #[test]
    fn speeddata_shorthands() {
        let o = parse(json!({"decimation": 5, "rotation": 3600})).unwrap();
        assert_eq!(o.decimation.as_ref().unwrap().factor, Some(5));
        assert_eq!(o.rotation, Some(RotationOverride { mode: RotationMode::Time, threshold: 3600 }));
        assert!(parse(json!({})).unwrap().is_empty());
        assert!(Overrides::from_request(None).unwrap().is_empty());
        // SpeedData's page sends `parseInt("")` = NaN, which JSON-encodes as null.
        assert!(parse(json!({"decimation": null})).unwrap().is_empty());
    }

    #[test]
    fn yaml_shaped_sections() {
        let o = parse(json!({
            "decimation": {"interval_ms": 10, "algorithm": "minmax", "time_field": "hdr.time", "enabled": true},
            "rotation": {"mode": "size", "threshold": 1000000}
        }))
        .unwrap();
        let d = o.decimation.clone().unwrap();
        assert_eq!((d.interval_ms, d.algorithm.as_deref()), (Some(10), Some("minmax")));
        let (dec, rot) = o.apply(&defaults::decimation(), defaults::ROTATION);
        assert_eq!(dec.window, Window::Time(Duration::from_millis(10)));
        assert_eq!(dec.algorithm, Algorithm::MinMax);
        assert_eq!(dec.time_field, "hdr.time");
        assert_eq!(rot, Rotation::Size(1_000_000));
    }

    #[test]
    fn apply_keeps_what_is_not_overridden() {
        let base = Decimation { window: Window::Time(Duration::from_millis(5)), ..defaults::decimation() };
        let (d, r) = parse(json!({"decimation": {"algorithm": "rms"}})).unwrap().apply(&base, defaults::ROTATION);
        assert_eq!((d.window, d.algorithm), (base.window, Algorithm::Rms));
        assert_eq!(r, defaults::ROTATION);
        let (d, _) = parse(json!({"decimation": 7})).unwrap().apply(&base, defaults::ROTATION);
        assert_eq!(d.window, Window::Count(7));
    }

    #[test]
    fn refuses_bad_values_naming_the_field() {
        for (v, field) in [
            (json!([]), "config"),
            (json!({"decimaton": 5}), "config.decimaton"),
            (json!({"decimation": 0}), "config.decimation"),
            (json!({"decimation": -3}), "config.decimation"),
            (json!({"decimation": 2.5}), "config.decimation"),
            (json!({"decimation": "5"}), "config.decimation"),
            (json!({"decimation": {"factor": 4294967296u64}}), "config.decimation.factor"),
            (json!({"decimation": {"factor": 2, "interval_ms": 10}}), "config.decimation.interval_ms"),
            (json!({"decimation": {"interval_ms": 86400001}}), "config.decimation.interval_ms"),
            (json!({"decimation": {"algorithm": "median"}}), "config.decimation.algorithm"),
            (json!({"decimation": {"time_field": "1x"}}), "config.decimation.time_field"),
            (json!({"decimation": {"enabled": "yes"}}), "config.decimation.enabled"),
            (json!({"decimation": {"window": 1}}), "config.decimation.window"),
            (json!({"rotation": 0}), "config.rotation"),
            (json!({"rotation": {"mode": "size"}}), "config.rotation.threshold"),
            (json!({"rotation": {"mode": "daily", "threshold": 1}}), "config.rotation.mode"),
        ] {
            let (f, msg) = parse(v.clone()).unwrap_err();
            assert_eq!(f, field, "{v}: {msg}");
        }
    }

    #[test]
    fn stored_form_round_trips() {
        let o = parse(json!({"decimation": {"factor": 5, "algorithm": "average"}, "rotation": 60})).unwrap();
        let text = serde_json::to_string(&o).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"decimation": {"factor": 5, "algorithm": "average"}, "rotation": {"mode": "time", "threshold": 60}})
        );
        assert_eq!(serde_json::from_str::<Overrides>(&text).unwrap(), o);
    }
}
