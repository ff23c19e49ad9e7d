//! What the provider does to a compiled pipeline before uploading it, and the labels it passes to runs
//! (docs/providers/kubeflow-pipelines.md, "What is uploaded" and "Run parameters").

use std::collections::BTreeMap;

use kfp_core::definitions::TriggerIndicator;
use kfp_core::pipeline_spec::{InputParameter, typed_parameters};
use kfp_core::provider::ProviderError;
use kfp_core::values::NamespacedName;
use serde_json::{Map, Value, json};

/// Every label key the operator passes to Kubeflow Pipelines as a runtime parameter, in that order.
pub const LABEL_KEYS: [&str; 12] = [
    "provider-name",
    "provider-namespace",
    "pipeline-name",
    "pipeline-namespace",
    "pipeline-version",
    "runconfiguration-name",
    "runconfiguration-namespace",
    "run-name",
    "run-namespace",
    "trigger-type",
    "trigger-source",
    "trigger-source-namespace",
];

/// Prepares a compiled pipeline for upload: unwraps a TFX PipelineJob wrapper (framework `tfx` and a
/// `pipelineSpec` field) and declares every label key as an optional STRING input of the root component, so runs
/// can pass the labels as parameters.
pub fn prepare_compiled_pipeline(framework: &str, compiled: &Value) -> Result<Value, ProviderError> {
    let mut spec = match compiled.get("pipelineSpec") {
        Some(inner) if framework.eq_ignore_ascii_case("tfx") => inner.clone(),
        _ => compiled.clone(),
    };
    let invalid = |what: &str| {
        ProviderError::invalid(format!(
            "the compiled pipeline cannot take the operator's labels: {what} is not a JSON object"
        ))
    };
    let root = spec.as_object_mut().ok_or_else(|| invalid("the pipeline spec"))?;
    let parameters = object_at(root, "root")
        .ok_or_else(|| invalid("root"))
        .and_then(|root| object_at(root, "inputDefinitions").ok_or_else(|| invalid("root.inputDefinitions")))
        .and_then(|inputs| {
            object_at(inputs, "parameters").ok_or_else(|| invalid("root.inputDefinitions.parameters"))
        })?;
    for key in LABEL_KEYS {
        parameters.insert(
            key.to_string(),
            json!({"parameterType": "STRING", "isOptional": true, "defaultValue": ""}),
        );
    }
    Ok(spec)
}

/// The object at `key`, created when absent; `None` when something else is there.
fn object_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    map.entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
}

/// The labels of a run or run schedule: only those with a value.
pub struct RunLabels<'a> {
    /// The Provider (`provider-name`, `provider-namespace` labels).
    pub provider: &'a NamespacedName,
    /// The Pipeline (`pipeline-name`, `pipeline-namespace`).
    pub pipeline: &'a NamespacedName,
    /// The pipeline version run (`pipeline-version`).
    pub pipeline_version: &'a str,
    /// The RunConfiguration that started it, if any (`runconfiguration-name`, `runconfiguration-namespace`).
    pub run_configuration: &'a NamespacedName,
    /// The Run; `None` for run schedules.
    pub run: Option<&'a NamespacedName>,
    /// What triggered the run (`trigger-type`, `trigger-source`, `trigger-source-namespace`).
    pub trigger: &'a TriggerIndicator,
}

impl RunLabels<'_> {
    /// The labels as a map, leaving out those without a value.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let run = self.run.cloned().unwrap_or_default();
        let pairs = [
            ("provider-name", self.provider.name.as_str()),
            ("provider-namespace", self.provider.namespace.as_str()),
            ("pipeline-name", self.pipeline.name.as_str()),
            ("pipeline-namespace", self.pipeline.namespace.as_str()),
            ("pipeline-version", self.pipeline_version),
            ("runconfiguration-name", self.run_configuration.name.as_str()),
            (
                "runconfiguration-namespace",
                self.run_configuration.namespace.as_str(),
            ),
            ("run-name", run.name.as_str()),
            ("run-namespace", run.namespace.as_str()),
            ("trigger-type", self.trigger.type_.as_str()),
            ("trigger-source", self.trigger.source.as_str()),
            ("trigger-source-namespace", self.trigger.source_namespace.as_str()),
        ];
        pairs
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }
}

/// Run parameters merged with the labels (labels win), each of the type the pipeline version declares for it
/// (`inputs`, see [`kfp_core::pipeline_spec`]); undeclared ones stay strings. A value that cannot take its type is
/// [`ProviderError::Invalid`]: KFP would refuse it, and retrying cannot help.
pub fn runtime_parameters(
    inputs: &BTreeMap<String, InputParameter>,
    parameters: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> Result<Map<String, Value>, ProviderError> {
    let mut merged = parameters.clone();
    merged.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    typed_parameters(inputs, &merged).map_err(|e| ProviderError::invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_declared_as_optional_string_inputs() {
        let compiled = json!({"root": {"dag": {}, "inputDefinitions": {"parameters": {"x": {"parameterType": "NUMBER_INTEGER"}}}}});
        let spec = prepare_compiled_pipeline("kfp-sdk", &compiled).unwrap();
        let parameters = &spec["root"]["inputDefinitions"]["parameters"];
        assert_eq!(parameters["x"], json!({"parameterType": "NUMBER_INTEGER"}));
        for key in LABEL_KEYS {
            assert_eq!(
                parameters[key],
                json!({"parameterType": "STRING", "isOptional": true, "defaultValue": ""})
            );
        }
        let bare = prepare_compiled_pipeline("kfp-sdk", &json!({})).unwrap();
        assert_eq!(
            bare["root"]["inputDefinitions"]["parameters"]
                .as_object()
                .map(Map::len),
            Some(12)
        );
    }

    #[test]
    fn tfx_wrappers_are_unwrapped_only_for_tfx() {
        let wrapper =
            json!({"displayName": "d", "labels": {}, "pipelineSpec": {"root": {}, "schemaVersion": "2.1.0"}});
        let spec = prepare_compiled_pipeline("TFX", &wrapper).unwrap();
        assert_eq!(spec["schemaVersion"], "2.1.0");
        assert!(spec.get("pipelineSpec").is_none());
        let kept = prepare_compiled_pipeline("kfp-sdk", &wrapper).unwrap();
        assert!(kept.get("pipelineSpec").is_some());
    }

    #[test]
    fn a_spec_that_is_not_an_object_is_invalid() {
        for bad in [
            json!("x"),
            json!({"root": 1}),
            json!({"root": {"inputDefinitions": []}}),
        ] {
            assert!(
                prepare_compiled_pipeline("kfp-sdk", &bad)
                    .unwrap_err()
                    .is_permanent()
            );
        }
    }

    #[test]
    fn labels_win_over_parameters() {
        let provider = NamespacedName::new("ops", "kfp");
        let pipeline = NamespacedName::new("ns", "p");
        let rc = NamespacedName::default();
        let trigger = TriggerIndicator {
            type_: "schedule".into(),
            ..Default::default()
        };
        let labels = RunLabels {
            provider: &provider,
            pipeline: &pipeline,
            pipeline_version: "v1",
            run_configuration: &rc,
            run: None,
            trigger: &trigger,
        }
        .to_map();
        assert_eq!(labels.len(), 6);
        let parameters = BTreeMap::from([
            ("pipeline-name".to_string(), "mine".to_string()),
            ("a".to_string(), "b".to_string()),
        ]);
        let merged = runtime_parameters(&BTreeMap::new(), &parameters, &labels).unwrap();
        assert_eq!(merged["pipeline-name"], "p");
        assert_eq!(merged["a"], "b");
        assert_eq!(merged["trigger-type"], "schedule");
    }
}
