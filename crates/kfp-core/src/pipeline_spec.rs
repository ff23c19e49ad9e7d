//! What providers read from a compiled pipeline (KFP IR, a `PipelineSpec`): the types of the root component's input
//! parameters, and run parameters converted to those types.
//!
//! Run parameters are strings in the resources, while Kubeflow Pipelines (since 2.0, `validatePipelineJobInputs`) and
//! Vertex AI (`runtimeConfig.parameterValues`) take a `google.protobuf.Value` of the declared kind and refuse a string
//! for a number, boolean, list or struct input. The conversion follows the KFP UI's (a string typed by a user becomes
//! the declared type) and is documented, with its table, in `docs/providers/kubeflow-pipelines.md`.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// The type of a pipeline input parameter (`ParameterType.ParameterTypeEnum` of the IR), as far as a run can set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterType {
    /// `STRING`: sent as given.
    String,
    /// `NUMBER_INTEGER`: a whole number.
    NumberInteger,
    /// `NUMBER_DOUBLE`: a finite number.
    NumberDouble,
    /// `BOOLEAN`: `true` or `false`.
    Boolean,
    /// `LIST`: a JSON array.
    List,
    /// `STRUCT`: a JSON object.
    Struct,
}

impl ParameterType {
    /// The IR name: `parameterType` of schema 2.1.0, or the `type` of older schemas (`INT`, `DOUBLE`, `STRING`).
    /// `None` for types a run cannot set (`TASK_FINAL_STATUS`, unspecified) and unknown names.
    pub fn from_ir(name: &str) -> Option<Self> {
        match name {
            "STRING" => Some(Self::String),
            "NUMBER_INTEGER" | "INT" => Some(Self::NumberInteger),
            "NUMBER_DOUBLE" | "DOUBLE" => Some(Self::NumberDouble),
            "BOOLEAN" => Some(Self::Boolean),
            "LIST" => Some(Self::List),
            "STRUCT" => Some(Self::Struct),
            _ => None,
        }
    }

    /// The schema 2.1.0 name, e.g. `NUMBER_DOUBLE`.
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "STRING",
            Self::NumberInteger => "NUMBER_INTEGER",
            Self::NumberDouble => "NUMBER_DOUBLE",
            Self::Boolean => "BOOLEAN",
            Self::List => "LIST",
            Self::Struct => "STRUCT",
        }
    }

    /// True when `value` is of this type's JSON kind (what KFP's `validatePipelineJobInputs` checks: a number for
    /// both number types).
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            Self::String => value.is_string(),
            Self::NumberInteger | Self::NumberDouble => value.is_number(),
            Self::Boolean => value.is_boolean(),
            Self::List => value.is_array(),
            Self::Struct => value.is_object(),
        }
    }
}

impl fmt::Display for ParameterType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A root input parameter of a compiled pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputParameter {
    /// Its declared type.
    pub parameter_type: ParameterType,
    /// True when a run may leave it out: `isOptional`, or a `defaultValue` is declared.
    pub optional: bool,
}

/// The root component's input parameters of a compiled pipeline, by name.
///
/// `compiled` is a `PipelineSpec`, or a wrapper holding one in `pipelineSpec` (a Vertex AI/TFX `PipelineJob`) or in
/// `pipeline_spec` (KFP's answer for a version uploaded with a platform spec). Parameters whose type a run cannot set
/// are left out; so is everything when the spec has no such inputs.
pub fn input_parameters(compiled: &Value) -> BTreeMap<String, InputParameter> {
    let spec = if compiled.get("root").is_some() {
        compiled
    } else {
        ["pipelineSpec", "pipeline_spec"]
            .iter()
            .find_map(|key| compiled.get(*key).filter(|inner| inner.is_object()))
            .unwrap_or(compiled)
    };
    let Some(parameters) = spec
        .get("root")
        .and_then(|root| root.get("inputDefinitions"))
        .and_then(|inputs| inputs.get("parameters"))
        .and_then(Value::as_object)
    else {
        return BTreeMap::new();
    };
    parameters
        .iter()
        .filter_map(|(name, definition)| {
            let type_name = definition
                .get("parameterType")
                .or_else(|| definition.get("type"))
                .and_then(Value::as_str)?;
            let parameter_type = ParameterType::from_ir(type_name)?;
            let optional = definition.get("isOptional").and_then(Value::as_bool) == Some(true)
                || definition.get("defaultValue").is_some_and(|v| !v.is_null());
            Some((
                name.clone(),
                InputParameter {
                    parameter_type,
                    optional,
                },
            ))
        })
        .collect()
}

/// Longest part of a value quoted in an error, in characters (a parameter may hold a whole JSON document).
const QUOTED_VALUE_LENGTH: usize = 64;

/// A run parameter whose value cannot be converted to the type the compiled pipeline declares for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "run parameter {name:?} has the value {value:?}, which is not a {parameter_type} as the compiled pipeline declares: {reason}"
)]
pub struct ParameterValueError {
    /// The parameter.
    pub name: String,
    /// Its value, cut to 64 characters (with `…`).
    pub value: String,
    /// The declared type.
    pub parameter_type: ParameterType,
    /// What the type needs.
    pub reason: &'static str,
}

fn quoted(value: &str) -> String {
    match value.char_indices().nth(QUOTED_VALUE_LENGTH) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_string(),
    }
}

/// Converts one value to `parameter_type` (the table of `docs/providers/kubeflow-pipelines.md`).
pub fn typed_value(
    name: &str,
    value: &str,
    parameter_type: ParameterType,
) -> Result<Value, ParameterValueError> {
    let fail = |reason| ParameterValueError {
        name: name.to_string(),
        value: quoted(value),
        parameter_type,
        reason,
    };
    let text = value.trim();
    match parameter_type {
        ParameterType::String => Ok(Value::String(value.to_string())),
        ParameterType::NumberInteger => {
            if let Ok(n) = text.parse::<i64>() {
                return Ok(Value::from(n));
            }
            // `1e3` and `2.0` are whole numbers too (the KFP UI takes what JavaScript's Number() reads as an
            // integer); beyond 2^53 a double no longer holds every integer, so those must be written out.
            const EXACT: f64 = 9_007_199_254_740_992.0;
            match text.parse::<f64>() {
                Ok(x) if x.is_finite() && x.fract() == 0.0 && x.abs() <= EXACT => Ok(Value::from(x as i64)),
                _ => Err(fail("expected a whole number such as 42")),
            }
        }
        ParameterType::NumberDouble => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| fail("expected a finite number such as 0.5")),
        ParameterType::Boolean => {
            if text.eq_ignore_ascii_case("true") {
                Ok(Value::Bool(true))
            } else if text.eq_ignore_ascii_case("false") {
                Ok(Value::Bool(false))
            } else {
                Err(fail("expected true or false"))
            }
        }
        ParameterType::List => match serde_json::from_str::<Value>(text) {
            Ok(list @ Value::Array(_)) => Ok(list),
            _ => Err(fail("expected a JSON array such as [1, 2]")),
        },
        ParameterType::Struct => match serde_json::from_str::<Value>(text) {
            Ok(object @ Value::Object(_)) => Ok(object),
            _ => Err(fail("expected a JSON object such as {\"key\": 1}")),
        },
    }
}

/// The runtime parameters of a run: each value converted to the type `inputs` declares for it; a parameter the
/// pipeline does not declare stays a string.
///
/// An empty value of a non-`STRING` input is left out, so the pipeline's default applies (as in the KFP UI, where an
/// empty field is no value); when the input has no default and is not optional that is an error, as the platform
/// would refuse the run.
pub fn typed_parameters(
    inputs: &BTreeMap<String, InputParameter>,
    parameters: &BTreeMap<String, String>,
) -> Result<Map<String, Value>, ParameterValueError> {
    let mut typed = Map::new();
    for (name, value) in parameters {
        let Some(input) = inputs.get(name) else {
            typed.insert(name.clone(), Value::String(value.clone()));
            continue;
        };
        if input.parameter_type != ParameterType::String && value.trim().is_empty() {
            if input.optional {
                continue;
            }
            return Err(ParameterValueError {
                name: name.clone(),
                value: String::new(),
                parameter_type: input.parameter_type,
                reason: "the value is empty and the pipeline declares no default for it",
            });
        }
        typed.insert(name.clone(), typed_value(name, value, input.parameter_type)?);
    }
    Ok(typed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use serde_json::json;

    use super::*;
    use ParameterType::*;

    #[test]
    fn values_convert_to_the_declared_type() {
        let cases: &[(ParameterType, &str, Value)] = &[
            (String, " a b ", json!(" a b ")),
            (String, "", json!("")),
            (String, "1", json!("1")),
            (NumberInteger, "42", json!(42)),
            (NumberInteger, " -7 ", json!(-7)),
            (NumberInteger, "2.0", json!(2)),
            (NumberInteger, "1e3", json!(1000)),
            (NumberInteger, "9223372036854775807", json!(i64::MAX)),
            (NumberDouble, "0.5", json!(0.5)),
            (NumberDouble, "3", json!(3.0)),
            (NumberDouble, "-1e-3", json!(-0.001)),
            (Boolean, "true", json!(true)),
            (Boolean, "False", json!(false)),
            (Boolean, " TRUE ", json!(true)),
            (List, "[1, \"a\", {\"b\": null}]", json!([1, "a", {"b": null}])),
            (List, "[]", json!([])),
            (
                Struct,
                "{\"k\": [1, 2], \"n\": 0.5}",
                json!({"k": [1, 2], "n": 0.5}),
            ),
            (Struct, " {} ", json!({})),
        ];
        for (parameter_type, value, expected) in cases {
            let converted = typed_value("p", value, *parameter_type).unwrap();
            assert_eq!(&converted, expected, "{value:?} as {parameter_type}");
            assert!(parameter_type.accepts(&converted));
        }
    }

    #[test]
    fn values_that_do_not_fit_are_refused_with_the_name_value_and_type() {
        let cases: &[(ParameterType, &str)] = &[
            (NumberInteger, "abc"),
            (NumberInteger, "1.5"),
            (NumberInteger, "1e20"),
            (NumberInteger, "inf"),
            (NumberInteger, ""),
            (NumberDouble, "one"),
            (NumberDouble, "NaN"),
            (NumberDouble, "infinity"),
            (NumberDouble, "1,5"),
            (Boolean, "yes"),
            (Boolean, "1"),
            (List, "1, 2"),
            (List, "{\"a\": 1}"),
            (List, "[1,"),
            (Struct, "[1]"),
            (Struct, "a=1"),
        ];
        for (parameter_type, value) in cases {
            let error = typed_value("learning_rate", value, *parameter_type).unwrap_err();
            assert_eq!(error.parameter_type, *parameter_type);
            let message = error.to_string();
            assert!(
                message.starts_with(&format!(
                    "run parameter \"learning_rate\" has the value {value:?}, which is not a {parameter_type}"
                )),
                "{message}"
            );
        }
    }

    #[test]
    fn long_values_are_cut_in_the_message() {
        let value = "é".repeat(1000);
        let error = typed_value("p", &value, NumberDouble).unwrap_err();
        assert_eq!(error.value, format!("{}…", "é".repeat(64)));
        assert!(error.to_string().len() < 400, "{error}");
    }

    fn spec() -> Value {
        json!({"root": {"inputDefinitions": {"parameters": {
            "i": {"parameterType": "NUMBER_INTEGER"},
            "d": {"parameterType": "NUMBER_DOUBLE", "defaultValue": 1.0, "isOptional": true},
            "b": {"parameterType": "BOOLEAN", "defaultValue": false},
            "l": {"parameterType": "LIST", "isOptional": true},
            "s": {"parameterType": "STRUCT"},
            "t": {"parameterType": "STRING"},
            "status": {"parameterType": "TASK_FINAL_STATUS"},
            "odd": {"parameterType": 3},
            "legacy_int": {"type": "INT"},
            "legacy_double": {"type": "DOUBLE"}
        }}}})
    }

    #[test]
    fn input_parameters_are_read_from_the_spec_or_its_wrappers() {
        let inputs = input_parameters(&spec());
        let types: Vec<(&str, ParameterType, bool)> = inputs
            .iter()
            .map(|(name, input)| (name.as_str(), input.parameter_type, input.optional))
            .collect();
        assert_eq!(
            types,
            [
                ("b", Boolean, true),
                ("d", NumberDouble, true),
                ("i", NumberInteger, false),
                ("l", List, true),
                ("legacy_double", NumberDouble, false),
                ("legacy_int", NumberInteger, false),
                ("s", Struct, false),
                ("t", String, false),
            ]
        );
        assert_eq!(input_parameters(&json!({"pipelineSpec": spec()})), inputs);
        assert_eq!(
            input_parameters(&json!({"pipeline_spec": spec(), "platform_spec": {}})),
            inputs
        );
        for nothing in [json!({}), json!("x"), json!({"root": {"inputDefinitions": []}})] {
            assert!(input_parameters(&nothing).is_empty());
        }
    }

    #[test]
    fn run_parameters_take_the_declared_types_and_undeclared_ones_stay_strings() {
        let inputs = input_parameters(&spec());
        let parameters: BTreeMap<std::string::String, std::string::String> = [
            ("i", "3"),
            ("d", "0.25"),
            ("b", "true"),
            ("l", "[\"x\"]"),
            ("s", "{\"a\": 1}"),
            ("t", "7"),
            ("status", "{}"),
            ("undeclared", "12"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let typed = typed_parameters(&inputs, &parameters).unwrap();
        assert_eq!(
            Value::Object(typed),
            json!({"i": 3, "d": 0.25, "b": true, "l": ["x"], "s": {"a": 1}, "t": "7", "status": "{}",
                   "undeclared": "12"})
        );
    }

    #[test]
    fn empty_values_leave_optional_inputs_to_their_default_and_fail_required_ones() {
        let inputs = input_parameters(&spec());
        let one = |name: &str, value: &str| {
            typed_parameters(&inputs, &BTreeMap::from([(name.to_string(), value.to_string())]))
        };
        assert_eq!(one("d", " ").unwrap(), Map::new());
        assert_eq!(one("b", "").unwrap(), Map::new());
        assert_eq!(one("t", "").unwrap()["t"], json!(""));
        let error = one("i", "").unwrap_err();
        assert_eq!((error.name.as_str(), error.parameter_type), ("i", NumberInteger));
        assert!(error.to_string().contains("no default"), "{error}");
        let error = one("s", "[1]").unwrap_err();
        assert_eq!(
            error.to_string(),
            "run parameter \"s\" has the value \"[1]\", which is not a STRUCT as the compiled pipeline declares: \
             expected a JSON object such as {\"key\": 1}"
        );
    }
}
