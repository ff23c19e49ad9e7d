//! `pipelines.kubeflow.org/v1alpha5`: deprecated, served again because user documentation still shows it
//! (SPEC 1.1a). Converted to and from the `v1beta1` hub.
//!
//! The provider is named by the annotation [`super::labels::PROVIDER_ANNOTATION`]; `runtimeParameters` accepts a list
//! of `{name, value | valueFrom}` or a map `{name: "value"}`; RunConfiguration schedules are plain cron strings.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::v1alpha6::{Dependencies, ProviderStatus, RunConfigurationStatus, RuntimeParameter};
use super::v1beta1::{CompletionState, OnChangeType};
use crate::values::{
    CronExpression, JsonMap, NamedValue, NamespacedName, OutputArtifact, PipelineIdentifier, json_map_schema,
};

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// The status of Pipeline, RunSchedule and Experiment (inlined in RunStatus).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub synchronization_state: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_generation: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

// ---------------------------------------------------------------------------------------------------------------
// runtimeParameters: list or map
// ---------------------------------------------------------------------------------------------------------------

/// `runtimeParameters` in either form users write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeParameters {
    /// `[{name, value | valueFrom}]`
    List(Vec<RuntimeParameter>),
    /// `{name: "value"}`
    Map(BTreeMap<String, String>),
}

impl Default for RuntimeParameters {
    fn default() -> Self {
        Self::List(Vec::new())
    }
}

impl RuntimeParameters {
    pub fn is_empty(&self) -> bool {
        match self {
            Self::List(list) => list.is_empty(),
            Self::Map(map) => map.is_empty(),
        }
    }
}

impl Serialize for RuntimeParameters {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::List(list) => list.serialize(serializer),
            Self::Map(map) => map.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for RuntimeParameters {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Null => Ok(Self::default()),
            list @ serde_json::Value::Array(_) => serde_json::from_value(list).map(Self::List).map_err(|e| {
                D::Error::custom(format!(
                    "runtimeParameters is not a list of {{name, value | valueFrom}}: {e}"
                ))
            }),
            serde_json::Value::Object(map) => map
                .into_iter()
                .map(|(name, value)| match value {
                    serde_json::Value::String(s) => Ok((name, s)),
                    other => Err(D::Error::custom(RuntimeParameterNotAString {
                        name,
                        value: other,
                    })),
                })
                .collect::<Result<_, _>>()
                .map(Self::Map),
            other => Err(D::Error::custom(format!(
                "runtimeParameters must be a list of {{name, value | valueFrom}} or a map of strings, found {other}"
            ))),
        }
    }
}

struct RuntimeParameterNotAString {
    name: String,
    value: serde_json::Value,
}

impl fmt::Display for RuntimeParameterNotAString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "runtimeParameters.{} must be a string, found {}",
            self.name, self.value
        )
    }
}

/// Either form is accepted, so the schema keeps the field as it is; the conversion webhook validates it.
fn runtime_parameters_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

// ---------------------------------------------------------------------------------------------------------------
// Pipeline
// ---------------------------------------------------------------------------------------------------------------

#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha5",
    kind = "Pipeline",
    namespaced,
    status = "Status",
    derive = "PartialEq",
    derive = "Default",
    shortname = "mlp",
    category = "kfp",
    deprecated = "pipelines.kubeflow.org/v1alpha5 is deprecated; use v1beta1",
    printcolumn(
        name = "SynchronizationState",
        type_ = "string",
        json_path = ".status.synchronizationState"
    ),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version")
)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpec {
    pub image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tfx_components: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<NamedValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub beam_args: Vec<NamedValue>,
}

// ---------------------------------------------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------------------------------------------

#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha5",
    kind = "Run",
    namespaced,
    status = "RunStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "mlr",
    category = "kfp",
    deprecated = "pipelines.kubeflow.org/v1alpha5 is deprecated; use v1beta1",
    printcolumn(
        name = "SynchronizationState",
        type_ = "string",
        json_path = ".status.synchronizationState"
    ),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version"),
    printcolumn(
        name = "CompletionState",
        type_ = "string",
        json_path = ".status.completionState"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct RunSpec {
    #[serde(default, skip_serializing_if = "PipelineIdentifier::is_empty")]
    pub pipeline: PipelineIdentifier,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub experiment_name: String,
    #[serde(default, skip_serializing_if = "RuntimeParameters::is_empty")]
    #[schemars(schema_with = "runtime_parameters_schema")]
    pub runtime_parameters: RuntimeParameters,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OutputArtifact>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    #[serde(flatten)]
    pub status: Status,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub observed_pipeline_version: String,
    #[serde(default, skip_serializing_if = "Dependencies::is_empty")]
    pub dependencies: Dependencies,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_state: Option<CompletionState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marked_completed_at: Option<Time>,
}

// ---------------------------------------------------------------------------------------------------------------
// RunConfiguration
// ---------------------------------------------------------------------------------------------------------------

#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha5",
    kind = "RunConfiguration",
    namespaced,
    status = "RunConfigurationStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "mlrc",
    category = "kfp",
    deprecated = "pipelines.kubeflow.org/v1alpha5 is deprecated; use v1beta1",
    printcolumn(
        name = "SynchronizationState",
        type_ = "string",
        json_path = ".status.synchronizationState"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct RunConfigurationSpec {
    pub run: RunSpec,
    #[serde(default)]
    pub triggers: Triggers,
}

/// Triggers with schedules as plain cron strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Triggers {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<CronExpression>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_change: Vec<OnChangeType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_configurations: Vec<NamespacedName>,
}

// ---------------------------------------------------------------------------------------------------------------
// RunSchedule
// ---------------------------------------------------------------------------------------------------------------

#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha5",
    kind = "RunSchedule",
    namespaced,
    status = "Status",
    derive = "PartialEq",
    derive = "Default",
    shortname = "mlrs",
    category = "kfp",
    deprecated = "pipelines.kubeflow.org/v1alpha5 is deprecated; use v1beta1",
    printcolumn(
        name = "SynchronizationState",
        type_ = "string",
        json_path = ".status.synchronizationState"
    ),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version")
)]
#[serde(rename_all = "camelCase")]
pub struct RunScheduleSpec {
    #[serde(default, skip_serializing_if = "PipelineIdentifier::is_empty")]
    pub pipeline: PipelineIdentifier,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub experiment_name: String,
    /// Values only: a RunSchedule cannot take `valueFrom`.
    #[serde(default, skip_serializing_if = "RuntimeParameters::is_empty")]
    #[schemars(schema_with = "runtime_parameters_schema")]
    pub runtime_parameters: RuntimeParameters,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OutputArtifact>,
    /// A cron expression; `startTime`/`endTime` of the hub travel in the remainder.
    pub schedule: CronExpression,
}

// ---------------------------------------------------------------------------------------------------------------
// Experiment
// ---------------------------------------------------------------------------------------------------------------

#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha5",
    kind = "Experiment",
    namespaced,
    status = "Status",
    derive = "PartialEq",
    derive = "Default",
    shortname = "mlexp",
    category = "kfp",
    deprecated = "pipelines.kubeflow.org/v1alpha5 is deprecated; use v1beta1",
    printcolumn(
        name = "SynchronizationState",
        type_ = "string",
        json_path = ".status.synchronizationState"
    ),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version")
)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

// ---------------------------------------------------------------------------------------------------------------
// Provider
// ---------------------------------------------------------------------------------------------------------------

/// Same shape as v1alpha6's Provider.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha5",
    kind = "Provider",
    namespaced,
    status = "ProviderStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "mlprv",
    category = "kfp",
    deprecated = "pipelines.kubeflow.org/v1alpha5 is deprecated; use v1beta1",
    printcolumn(
        name = "SynchronizationState",
        type_ = "string",
        json_path = ".status.synchronizationState"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ProviderSpec {
    pub service_image: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub execution_mode: String,
    #[serde(default)]
    pub service_account: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_beam_args: Vec<NamedValue>,
    #[serde(default)]
    pub pipeline_root_storage: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "json_map_schema")]
    pub parameters: JsonMap,
}
