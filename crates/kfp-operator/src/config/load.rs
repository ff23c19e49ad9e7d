//! Loading the configuration: the YAML file, then the `KFP_OPERATOR_*` environment overrides laid over it, then
//! [`OperatorConfig::validate`].

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::OperatorConfig;

/// Environment variables that start with this prefix and continue with a top-level key (`SYSTEM_`, `SPEC_`)
/// override configuration keys: `KFP_OPERATOR_SPEC_RUNCOMPLETIONTTL=30s` sets `spec.runCompletionTTL`.
pub const ENV_PREFIX: &str = "KFP_OPERATOR_";

/// Why the configuration could not be loaded; every message names the file, variable or key at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The file is not valid YAML for this configuration.
    #[error("the configuration file {} is invalid: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the line and column where it can tell.
        message: String,
    },
    /// The file has a key the configuration does not know (a misspelt key would otherwise be ignored).
    #[error(
        "the configuration file {} has the unknown key {key:?}; the keys are listed in docs/configuration.md",
        path.display()
    )]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The unknown key's path, e.g. `spec.runCompletionTtl`.
        key: String,
    },
    /// A `KFP_OPERATOR_*` environment variable names no key.
    #[error(
        "the environment variable {variable} names no configuration key; overrides are KFP_OPERATOR_ followed by \
         the key path in upper case with '_' between its parts, e.g. KFP_OPERATOR_SPEC_RUNCOMPLETIONTTL for \
         spec.runCompletionTTL (see docs/configuration.md)"
    )]
    UnknownOverride {
        /// The variable.
        variable: String,
    },
    /// A `KFP_OPERATOR_*` environment variable's value does not fit its key.
    #[error("the environment variable {variable}={value:?} is not a valid value of {key}: {message}")]
    InvalidOverride {
        /// The variable.
        variable: String,
        /// The key it overrides.
        key: String,
        /// Its value.
        value: String,
        /// Why the value does not fit.
        message: String,
    },
    /// The configuration loaded but a value cannot be used.
    #[error("invalid configuration: {key} is {value}, but {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// Its value.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The configuration could not be converted for the environment overrides.
    #[error("cannot represent the configuration as JSON: {0}")]
    Json(String),
}

impl OperatorConfig {
    /// Loads the configuration: the YAML file at `path` (none: all defaults), then the `KFP_OPERATOR_*` overrides
    /// found in `env` (pass `std::env::vars()`), then [`validate`](Self::validate)s the result.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<OperatorConfig, ConfigError> {
        let config = match path {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        let config = config.with_env_overrides(env)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a YAML configuration file (not validated).
    pub fn from_file(path: &Path) -> Result<OperatorConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(&text, path)
    }

    /// Parses YAML configuration text; `origin` names it in errors. The text is laid over the defaults key by
    /// key (a key set to null keeps its default; lists are replaced whole), so a file names only what it
    /// changes. Keys the configuration does not have are refused (a misspelt key would otherwise be silently
    /// ignored).
    pub fn from_yaml(text: &str, origin: &Path) -> Result<OperatorConfig, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: origin.to_path_buf(),
            message,
        };
        let raw: Value = serde_saphyr::from_str(text).map_err(|e| parse_error(e.to_string()))?;
        let mut merged =
            serde_json::to_value(Self::default()).map_err(|e| ConfigError::Json(e.to_string()))?;
        lay_over(&mut merged, &raw);
        let config: OperatorConfig = match serde_json::from_value(merged) {
            Ok(config) => config,
            Err(json_error) => {
                // The YAML parser says where the error is; but it does not know the defaults, so its complaints
                // about missing keys are not the problem.
                let message = match serde_saphyr::from_str::<OperatorConfig>(text) {
                    Err(e) if !e.to_string().contains("missing field") => e.to_string(),
                    _ => json_error.to_string(),
                };
                return Err(parse_error(message));
            }
        };
        let known = serde_json::to_value(&config).map_err(|e| ConfigError::Json(e.to_string()))?;
        if let Some(key) = first_unknown_key(&raw, &known, "") {
            return Err(ConfigError::UnknownKey {
                path: origin.to_path_buf(),
                key,
            });
        }
        Ok(config)
    }

    /// Applies the `KFP_OPERATOR_<PATH>` variables of `env` (see [`ENV_PREFIX`]). A variable's path is matched
    /// case-insensitively against the camelCase keys, one `_`-separated part per key (a number indexes a list).
    /// The value is read as a YAML scalar or flow collection (`true`, `8080`, `[a, b]`, `{team: ml}`), except that
    /// keys holding text (and unset optional keys) take it verbatim. Variables whose first part is not a
    /// top-level key (`SYSTEM`, `SPEC`) are ignored: Kubernetes service links such as
    /// `KFP_OPERATOR_SERVICE_HOST` share the prefix.
    pub fn with_env_overrides(
        self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<OperatorConfig, ConfigError> {
        let mut value = serde_json::to_value(&self).map_err(|e| ConfigError::Json(e.to_string()))?;
        let top_level: Vec<String> = value
            .as_object()
            .map(|object| object.keys().map(|k| k.to_ascii_uppercase()).collect())
            .unwrap_or_default();
        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(variable, _)| {
                variable
                    .strip_prefix(ENV_PREFIX)
                    .and_then(|path| path.split('_').next())
                    .is_some_and(|first| top_level.contains(&first.to_ascii_uppercase()))
            })
            .collect();
        if overrides.is_empty() {
            return Ok(self);
        }
        overrides.sort();
        for (variable, text) in overrides {
            let path = variable.get(ENV_PREFIX.len()..).unwrap_or_default();
            let segments: Vec<&str> = path.split('_').collect();
            let (key, slot) = locate(&mut value, &segments).ok_or_else(|| ConfigError::UnknownOverride {
                variable: variable.clone(),
            })?;
            *slot = override_value(slot, &text);
            // Checked one variable at a time, so that an error names the variable at fault.
            serde_json::from_value::<OperatorConfig>(value.clone()).map_err(|e| {
                ConfigError::InvalidOverride {
                    variable: variable.clone(),
                    key,
                    value: text.clone(),
                    message: e.to_string(),
                }
            })?;
        }
        serde_json::from_value(value).map_err(|e| ConfigError::Json(e.to_string()))
    }
}

/// Lays `layer` over `base`: objects merge key by key, null keeps the base, anything else replaces it.
fn lay_over(base: &mut Value, layer: &Value) {
    match (base, layer) {
        (_, Value::Null) => {}
        (Value::Object(base), Value::Object(layer)) => {
            for (key, value) in layer {
                match base.get_mut(key) {
                    Some(slot) => lay_over(slot, value),
                    None if value.is_null() => {}
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, layer) => *base = layer.clone(),
    }
}

/// The dotted path of the first key of `raw` (the file as written) that the parsed configuration `known` does
/// not have; keys set to null are ignored.
fn first_unknown_key(raw: &Value, known: &Value, prefix: &str) -> Option<String> {
    let (Value::Object(raw), Value::Object(known)) = (raw, known) else {
        return None;
    };
    raw.iter().find_map(|(key, raw_value)| {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match known.get(key) {
            None if raw_value.is_null() => None,
            None => Some(path),
            Some(known_value) => first_unknown_key(raw_value, known_value, &path),
        }
    })
}

/// Finds the value at `segments` (case-insensitive keys, numeric list indexes); returns its dotted key path.
fn locate<'v>(value: &'v mut Value, segments: &[&str]) -> Option<(String, &'v mut Value)> {
    let mut current = value;
    let mut path = String::new();
    for segment in segments {
        current = match current {
            Value::Object(object) => {
                let key = object.keys().find(|k| k.eq_ignore_ascii_case(segment))?.clone();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key);
                object.get_mut(&key)?
            }
            Value::Array(items) => {
                let index: usize = segment.parse().ok()?;
                path.push_str(&format!("[{index}]"));
                items.get_mut(index)?
            }
            _ => return None,
        };
    }
    if path.is_empty() {
        None
    } else {
        Some((path, current))
    }
}

/// The JSON value an override's text stands for, given the value it replaces.
fn override_value(existing: &Value, text: &str) -> Value {
    let parsed = serde_saphyr::from_str::<Value>(text).ok();
    match (existing, parsed) {
        (Value::String(_), _) => Value::String(text.to_string()),
        (Value::Null, Some(parsed @ (Value::Array(_) | Value::Object(_)))) => parsed,
        (Value::Null, _) => Value::String(text.to_string()),
        (_, Some(parsed)) => parsed,
        _ => Value::String(text.to_string()),
    }
}
