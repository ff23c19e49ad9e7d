//! `pipelines.kubeflow.org/v1alpha6`: a spoke converted to and from the `v1beta1` hub (SPEC 2).
//!
//! Providers are referenced by bare name (the namespace travels in the conversion remainder), Pipelines carry
//! `tfxComponents`/`beamArgs` instead of a framework, runs carry `runtimeParameters`, and every status keeps
//! `synchronizationState` beside its conditions.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::v1beta1::{
    CompletionState, LatestRuns, RunReference, Schedule, TriggeredRunReference, TriggeredVersion, Triggers,
};
use crate::values::{
    JsonMap, NamedValue, NamespacedName, OutputArtifact, PipelineIdentifier, json_map_schema,
};

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `status.provider`: the provider's bare name and the resource's id there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderAndId {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
}

impl ProviderAndId {
    pub fn is_empty(&self) -> bool {
        self.name.is_empty() && self.id.is_empty()
    }
}

/// The status of Pipeline, RunSchedule and Experiment (inlined in RunStatus).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(default, skip_serializing_if = "ProviderAndId::is_empty")]
    pub provider: ProviderAndId,
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
// Pipeline
// ---------------------------------------------------------------------------------------------------------------

#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha6",
    kind = "Pipeline",
    namespaced,
    status = "Status",
    derive = "PartialEq",
    derive = "Default",
    shortname = "mlp",
    category = "kfp",
    printcolumn(name = "Provider", type_ = "string", json_path = ".status.provider.name"),
    printcolumn(
        name = "SynchronizationState",
        type_ = "string",
        json_path = ".status.synchronizationState"
    ),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version")
)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpec {
    /// The provider's bare name; its namespace is the remainder's `providerNamespace` or the workflow namespace.
    pub provider: String,
    pub image: String,
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
    version = "v1alpha6",
    kind = "Run",
    namespaced,
    status = "RunStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "mlr",
    category = "kfp",
    printcolumn(name = "Provider", type_ = "string", json_path = ".status.provider.name"),
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
    pub provider: String,
    #[serde(default, skip_serializing_if = "PipelineIdentifier::is_empty")]
    pub pipeline: PipelineIdentifier,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub experiment_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_parameters: Vec<RuntimeParameter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OutputArtifact>,
}

/// A run parameter: a literal `value`, or `valueFrom` another RunConfiguration's latest succeeded run.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeParameter {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    pub run_configuration_ref: RunConfigurationRef,
}

/// Like the hub's, without `optional` (kept in the remainder, SPEC 12.14).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunConfigurationRef {
    pub name: NamespacedName,
    pub output_artifact: String,
}

/// `status.dependencies` without the pipeline version (that is `status.observedPipelineVersion` here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dependencies {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub run_configurations: BTreeMap<String, RunReference>,
}

impl Dependencies {
    pub fn is_empty(&self) -> bool {
        self.run_configurations.is_empty()
    }
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
    version = "v1alpha6",
    kind = "RunConfiguration",
    namespaced,
    status = "RunConfigurationStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "mlrc",
    category = "kfp",
    printcolumn(
        name = "SynchronizationState",
        type_ = "string",
        json_path = ".status.synchronizationState"
    ),
    printcolumn(name = "Provider", type_ = "string", json_path = ".status.provider")
)]
#[serde(rename_all = "camelCase")]
pub struct RunConfigurationSpec {
    pub run: RunSpec,
    #[serde(default)]
    pub triggers: Triggers,
}

/// `status.triggers` without the pipeline version (that is `status.triggeredPipelineVersion` here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggersStatus {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub run_configurations: BTreeMap<String, TriggeredRunReference>,
    #[serde(default)]
    pub run_spec: TriggeredVersion,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunConfigurationStatus {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub synchronization_state: String,
    /// The provider's bare name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub observed_pipeline_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub triggered_pipeline_version: String,
    #[serde(default)]
    pub latest_runs: LatestRuns,
    #[serde(default, skip_serializing_if = "Dependencies::is_empty")]
    pub dependencies: Dependencies,
    #[serde(default)]
    pub triggers: TriggersStatus,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_generation: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

// ---------------------------------------------------------------------------------------------------------------
// RunSchedule
// ---------------------------------------------------------------------------------------------------------------

#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha6",
    kind = "RunSchedule",
    namespaced,
    status = "Status",
    derive = "PartialEq",
    derive = "Default",
    shortname = "mlrs",
    category = "kfp",
    printcolumn(name = "Provider", type_ = "string", json_path = ".status.provider.name"),
    printcolumn(
        name = "SynchronizationState",
        type_ = "string",
        json_path = ".status.synchronizationState"
    ),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version")
)]
#[serde(rename_all = "camelCase")]
pub struct RunScheduleSpec {
    pub provider: String,
    #[serde(default, skip_serializing_if = "PipelineIdentifier::is_empty")]
    pub pipeline: PipelineIdentifier,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub experiment_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_parameters: Vec<NamedValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OutputArtifact>,
    pub schedule: Schedule,
}

// ---------------------------------------------------------------------------------------------------------------
// Experiment
// ---------------------------------------------------------------------------------------------------------------

#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha6",
    kind = "Experiment",
    namespaced,
    status = "Status",
    derive = "PartialEq",
    derive = "Default",
    shortname = "mlexp",
    category = "kfp",
    printcolumn(name = "Provider", type_ = "string", json_path = ".status.provider.name"),
    printcolumn(
        name = "SynchronizationState",
        type_ = "string",
        json_path = ".status.synchronizationState"
    ),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version")
)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentSpec {
    pub provider: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

// ---------------------------------------------------------------------------------------------------------------
// Provider
// ---------------------------------------------------------------------------------------------------------------

#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha6",
    kind = "Provider",
    namespaced,
    status = "ProviderStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "mlprv",
    category = "kfp",
    printcolumn(
        name = "SynchronizationState",
        type_ = "string",
        json_path = ".status.synchronizationState"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ProviderSpec {
    pub service_image: String,
    /// The TFX compiler image.
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub synchronization_state: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_generation: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
