//! `pipelines.kubeflow.org/v1alpha5`: deprecated, served again because user documentation still shows it
//! (docs/webhooks.md, "The conversion webhook"). Converted to and from the `v1beta1` hub.
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
    /// The resource's id on the provider (v1beta1: `status.provider.id`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_id: String,
    /// The synchronization state, the same as the `Synchronized` condition's reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub synchronization_state: String,
    /// The version of the spec the provider was last asked to hold (a hash of the spec).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_generation: i64,
    /// The `Synchronized` condition and the kstatus ones (`Ready`, `Reconciling`, `Stalled`; see v1beta1).
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
    /// True when no parameter is given, in either form.
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

/// The pipeline: its image, compile-time environment and TFX components.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha5",
    kind = "Pipeline",
    doc = "A TFX pipeline (v1alpha5, deprecated). The Provider is named by the annotation pipelines.kubeflow.org/provider, else the operator's spec.defaultProvider.",
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
#[serde(remote = "Self")]
pub struct PipelineSpec {
    /// The container image holding the pipeline's code.
    pub image: String,
    /// The `module.function` returning the TFX components. Without it the Pipeline gets the operator's
    /// `spec.defaultFramework` with empty parameters.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tfx_components: String,
    /// Environment variables of the compile step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<NamedValue>,
    /// Beam pipeline arguments, passed as `--name=value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub beam_args: Vec<NamedValue>,
}

// ---------------------------------------------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------------------------------------------

/// The run: which pipeline, provider and experiment, with which parameters.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha5",
    kind = "Run",
    doc = "One run of a Pipeline (v1alpha5, deprecated).",
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
#[serde(remote = "Self")]
pub struct RunSpec {
    /// The Pipeline, in the same namespace: `name` or `name:version`.
    #[serde(default, skip_serializing_if = "PipelineIdentifier::is_empty")]
    pub pipeline: PipelineIdentifier,
    /// The Experiment, in the same namespace; empty: the provider's default experiment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub experiment_name: String,
    /// The pipeline's runtime parameters: a list of `{name, value}` or `{name, valueFrom: {runConfigurationRef:
    /// {name, outputArtifact}}}`, or a map of names to string values (`{learning_rate: "0.01"}`).
    #[serde(default, skip_serializing_if = "RuntimeParameters::is_empty")]
    #[schemars(schema_with = "runtime_parameters_schema")]
    pub runtime_parameters: RuntimeParameters,
    /// Artifacts of the finished run to record, where dependent runs can read them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OutputArtifact>,
}

/// The status of a Run (v1alpha5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    /// The status shared by every kind.
    #[serde(flatten)]
    pub status: Status,
    /// The pipeline version the run runs (v1beta1: `dependencies.pipeline.version`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub observed_pipeline_version: String,
    /// The latest succeeded runs of the RunConfigurations its parameters read.
    #[serde(default, skip_serializing_if = "Dependencies::is_empty")]
    pub dependencies: Dependencies,
    /// How the run ended (`Succeeded` or `Failed`); empty while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_state: Option<CompletionState>,
    /// When the operator saw the completion (the start of `spec.runCompletionTTL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marked_completed_at: Option<Time>,
}

// ---------------------------------------------------------------------------------------------------------------
// RunConfiguration
// ---------------------------------------------------------------------------------------------------------------

/// The run to start and the triggers that start it.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha5",
    kind = "RunConfiguration",
    doc = "Runs of a Pipeline started by triggers (v1alpha5, deprecated).",
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
#[serde(remote = "Self")]
pub struct RunConfigurationSpec {
    /// The run to start. Optional, as in the Go operator; without it the run gets the default provider and no
    /// pipeline.
    #[serde(default)]
    pub run: RunSpec,
    /// What starts a run.
    #[serde(default)]
    pub triggers: Triggers,
}

/// Triggers with schedules as plain cron strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Triggers {
    /// Cron expressions (5 fields, or 6 with leading seconds); each becomes a RunSchedule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<CronExpression>,
    /// Start a run when the pipeline gets a new version (`pipeline`) or when `spec.run` changes (`runSpec`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_change: Vec<OnChangeType>,
    /// RunConfigurations (`name` or `namespace/name`) whose new succeeded runs start a run of this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_configurations: Vec<NamespacedName>,
}

// ---------------------------------------------------------------------------------------------------------------
// RunSchedule
// ---------------------------------------------------------------------------------------------------------------

/// The schedule: which pipeline, when, with which parameters.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha5",
    kind = "RunSchedule",
    doc = "A recurring run of a Pipeline registered with the Provider (v1alpha5, deprecated).",
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
#[serde(remote = "Self")]
pub struct RunScheduleSpec {
    /// The Pipeline, in the same namespace: `name` or `name:version`.
    #[serde(default, skip_serializing_if = "PipelineIdentifier::is_empty")]
    pub pipeline: PipelineIdentifier,
    /// The Experiment, in the same namespace; empty: the provider's default experiment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub experiment_name: String,
    /// Runtime parameters of every run, as a list of `{name, value}` or a map of names to strings; a RunSchedule
    /// cannot take `valueFrom`.
    #[serde(default, skip_serializing_if = "RuntimeParameters::is_empty")]
    #[schemars(schema_with = "runtime_parameters_schema")]
    pub runtime_parameters: RuntimeParameters,
    /// Artifacts of its finished runs to record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OutputArtifact>,
    /// A cron expression (5 fields, or 6 with leading seconds). v1beta1's `startTime` and `endTime` are kept in
    /// the conversion remainder annotation. Optional in the schema, as in the Go operator; the admission webhook
    /// refuses a RunSchedule without one.
    #[serde(default)]
    pub schedule: CronExpression,
}

// ---------------------------------------------------------------------------------------------------------------
// Experiment
// ---------------------------------------------------------------------------------------------------------------

/// The experiment.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha5",
    kind = "Experiment",
    doc = "An experiment on the Provider (v1alpha5, deprecated).",
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
#[serde(remote = "Self")]
pub struct ExperimentSpec {
    /// A description shown by the provider.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

// ---------------------------------------------------------------------------------------------------------------
// Provider
// ---------------------------------------------------------------------------------------------------------------

/// The provider service to deploy and the provider's parameters.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha5",
    kind = "Provider",
    doc = "An orchestration platform reached through a provider service (v1alpha5, deprecated).",
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
#[serde(remote = "Self")]
pub struct ProviderSpec {
    /// The image of the provider service the operator deploys. The Go operator's v1alpha5 had no such field, so it
    /// is optional here; a Provider without one is `Failed` with a message naming `spec.serviceImage` until it is
    /// set (in v1beta1 or v1alpha6).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_image: String,
    /// The TFX compiler image (v1beta1: the image of the `tfx` entry of `frameworks`).
    pub image: String,
    /// Deprecated and ignored.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub execution_mode: String,
    /// The ServiceAccount of the provider service's pods.
    #[serde(default)]
    pub service_account: String,
    /// Beam arguments added to every TFX pipeline (v1beta1: `json` patches of the `tfx` framework).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_beam_args: Vec<NamedValue>,
    /// Where pipeline runs write their outputs.
    #[serde(default)]
    pub pipeline_root_storage: String,
    /// Parameters of the provider type, read by the provider service as `PARAMETERS_<KEY>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "json_map_schema")]
    pub parameters: JsonMap,
}

// A missing `spec` reads as the empty one (docs/decisions/0015).
super::optional_spec!(
    PipelineSpec,
    RunSpec,
    RunConfigurationSpec,
    RunScheduleSpec,
    ExperimentSpec,
    ProviderSpec
);
