//! `pipelines.kubeflow.org/v1beta1`: the hub and storage version (SPEC 1.3).
//!
//! Field names, required fields and `omitempty` behaviour follow the Go operator, so objects written by either
//! operator read the same in both.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::values::{
    Artifact, CronExpression, JsonMap, NamedValue, NamespacedName, OutputArtifact, PipelineIdentifier,
    SynchronizationState, json_map_schema, provider_reference_schema,
};

fn is_zero(n: &i64) -> bool {
    *n == 0
}

// ---------------------------------------------------------------------------------------------------------------
// Shared status
// ---------------------------------------------------------------------------------------------------------------

/// `status.provider`: which provider holds the resource, and under which id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderAndId {
    #[serde(default, skip_serializing_if = "NamespacedName::is_empty")]
    pub name: NamespacedName,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
}

impl ProviderAndId {
    pub fn is_empty(&self) -> bool {
        self.name.is_empty() && self.id.is_empty()
    }
}

/// The status shared by Pipeline, RunSchedule and Experiment (and inlined in RunStatus).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(default, skip_serializing_if = "ProviderAndId::is_empty")]
    pub provider: ProviderAndId,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_generation: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The one condition type the operator writes.
pub const SYNCHRONIZED: &str = "Synchronized";

/// Read access to the `Synchronized` condition of any status that carries conditions.
pub trait Conditions {
    fn conditions(&self) -> &[Condition];

    fn synchronized(&self) -> Option<&Condition> {
        self.conditions().iter().find(|c| c.type_ == SYNCHRONIZED)
    }

    /// The state recorded in the `Synchronized` condition's reason (`Unknown` when none).
    fn synchronization_state(&self) -> SynchronizationState {
        self.synchronized()
            .map(|c| SynchronizationState::parse(&c.reason))
            .unwrap_or_default()
    }
}

impl Conditions for Status {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Pipeline
// ---------------------------------------------------------------------------------------------------------------

/// A pipeline: a container image with the pipeline's code, compiled by a framework and registered with a provider.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1beta1",
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
        json_path = ".status.conditions[?(@.type==\"Synchronized\")].reason"
    ),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version")
)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpec {
    #[schemars(schema_with = "provider_reference_schema")]
    pub provider: NamespacedName,
    pub image: String,
    /// Environment of the compile step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<NamedValue>,
    pub framework: PipelineFramework,
}

/// `spec.framework`: which compiler builds the pipeline, with its parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PipelineFramework {
    pub name: String,
    /// Framework parameters (tfx: `components`, `beamArgs`, `usePipelineSpec2_1`; kfpsdk: `pipeline`).
    #[schemars(schema_with = "json_map_schema")]
    pub parameters: JsonMap,
}

// ---------------------------------------------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------------------------------------------

/// One run of a pipeline.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1beta1",
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
        json_path = ".status.conditions[?(@.type==\"Synchronized\")].reason"
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
    #[schemars(schema_with = "provider_reference_schema")]
    pub provider: NamespacedName,
    #[serde(default, skip_serializing_if = "PipelineIdentifier::is_empty")]
    pub pipeline: PipelineIdentifier,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub experiment_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OutputArtifact>,
}

/// A run parameter: a literal `value`, or `valueFrom` another RunConfiguration's latest succeeded run.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
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

/// An artifact of another RunConfiguration's latest succeeded run.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunConfigurationRef {
    pub name: NamespacedName,
    pub output_artifact: String,
    /// An unresolvable optional parameter is left out instead of blocking the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// A finished run as seen by its dependants: the provider's run id and the artifacts it exposed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunReference {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
    /// When the run ended, as reported by its completion event (SPEC 12.7: an older event never replaces a newer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_end_time: Option<Time>,
}

impl RunReference {
    pub fn is_empty(&self) -> bool {
        self.provider_id.is_empty() && self.artifacts.is_empty() && self.run_end_time.is_none()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObservedPipeline {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// What a Run or RunConfiguration depends on, as last observed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dependencies {
    /// Keyed by `namespace/name` of the referenced RunConfiguration.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub run_configurations: BTreeMap<String, RunReference>,
    #[serde(default)]
    pub pipeline: ObservedPipeline,
}

impl Dependencies {
    pub fn is_empty(&self) -> bool {
        self.run_configurations.is_empty() && self.pipeline.version.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CompletionState {
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    #[serde(flatten)]
    pub status: Status,
    #[serde(default, skip_serializing_if = "Dependencies::is_empty")]
    pub dependencies: Dependencies,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_state: Option<CompletionState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marked_completed_at: Option<Time>,
}

impl Conditions for RunStatus {
    fn conditions(&self) -> &[Condition] {
        &self.status.conditions
    }
}

// ---------------------------------------------------------------------------------------------------------------
// RunConfiguration
// ---------------------------------------------------------------------------------------------------------------

/// Runs of a pipeline started by triggers: schedules, changes, and other RunConfigurations' successes.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1beta1",
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
        json_path = ".status.conditions[?(@.type==\"Synchronized\")].reason"
    ),
    printcolumn(name = "Provider", type_ = "string", json_path = ".status.provider")
)]
#[serde(rename_all = "camelCase")]
pub struct RunConfigurationSpec {
    pub run: RunSpec,
    #[serde(default)]
    pub triggers: Triggers,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Triggers {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<Schedule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_change: Vec<OnChangeType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_configurations: Vec<NamespacedName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum OnChangeType {
    /// A new version of the referenced Pipeline.
    #[serde(rename = "pipeline")]
    Pipeline,
    /// A change of `spec.run`.
    #[serde(rename = "runSpec")]
    RunSpec,
}

/// A cron schedule, optionally bounded in time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub cron_expression: CronExpression,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatestRuns {
    #[serde(default, skip_serializing_if = "RunReference::is_empty")]
    pub succeeded: RunReference,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggeredRunReference {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TriggeredVersion {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// What last triggered a Run, so a trigger fires once per change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggersStatus {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub run_configurations: BTreeMap<String, TriggeredRunReference>,
    #[serde(default)]
    pub run_spec: TriggeredVersion,
    #[serde(default)]
    pub pipeline: TriggeredVersion,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunConfigurationStatus {
    #[serde(default, skip_serializing_if = "NamespacedName::is_empty")]
    pub provider: NamespacedName,
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

impl Conditions for RunConfigurationStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

// ---------------------------------------------------------------------------------------------------------------
// RunSchedule
// ---------------------------------------------------------------------------------------------------------------

/// A schedule registered with the provider, which starts runs by itself.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1beta1",
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
        json_path = ".status.conditions[?(@.type==\"Synchronized\")].reason"
    ),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version")
)]
#[serde(rename_all = "camelCase")]
pub struct RunScheduleSpec {
    #[schemars(schema_with = "provider_reference_schema")]
    pub provider: NamespacedName,
    #[serde(default, skip_serializing_if = "PipelineIdentifier::is_empty")]
    pub pipeline: PipelineIdentifier,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub experiment_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<NamedValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OutputArtifact>,
    pub schedule: Schedule,
}

// ---------------------------------------------------------------------------------------------------------------
// Experiment
// ---------------------------------------------------------------------------------------------------------------

/// An experiment: a grouping of runs on the provider.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1beta1",
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
        json_path = ".status.conditions[?(@.type==\"Synchronized\")].reason"
    ),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version")
)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentSpec {
    #[schemars(schema_with = "provider_reference_schema")]
    pub provider: NamespacedName,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

// ---------------------------------------------------------------------------------------------------------------
// Provider
// ---------------------------------------------------------------------------------------------------------------

/// An orchestration platform (Kubeflow Pipelines, Vertex AI, ...) reached through a provider service that the
/// operator deploys.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1beta1",
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
        json_path = ".status.conditions[?(@.type==\"Synchronized\")].reason"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ProviderSpec {
    pub service_image: String,
    /// Deprecated and ignored; kept so manifests that set it still apply.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub execution_mode: String,
    /// ServiceAccount of the provider service's pods.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub service_account: String,
    pub pipeline_root_storage: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "json_map_schema")]
    pub parameters: JsonMap,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frameworks: Vec<Framework>,
    /// Namespaces whose resources may use this provider; empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_template_env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_template_volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_template_volume_mounts: Vec<VolumeMount>,
}

/// A pipeline framework the provider supports: its compiler image and patches applied to pipeline definitions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Framework {
    pub name: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<Patch>,
}

/// A patch of the pipeline definition: RFC 6902 (`json`) or RFC 7396 (`merge`), as a JSON string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Patch {
    #[serde(rename = "type")]
    pub type_: PatchType,
    pub payload: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PatchType {
    #[default]
    #[serde(rename = "json")]
    Json,
    #[serde(rename = "merge")]
    Merge,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_generation: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl Conditions for ProviderStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}
