//! `pipelines.kubeflow.org/v1alpha6`: a spoke converted to and from the `v1beta1` hub (docs/webhooks.md, "The
//! conversion webhook").
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
    /// The Provider's name (its namespace is not shown in this version).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The resource's id on the provider; empty until the provider created it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
}

impl ProviderAndId {
    /// True when neither name nor id is set (the field is left out of the status).
    pub fn is_empty(&self) -> bool {
        self.name.is_empty() && self.id.is_empty()
    }
}

/// The status of Pipeline, RunSchedule and Experiment (inlined in RunStatus).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Which Provider holds the resource, and under which id.
    #[serde(default, skip_serializing_if = "ProviderAndId::is_empty")]
    pub provider: ProviderAndId,
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
// Pipeline
// ---------------------------------------------------------------------------------------------------------------

/// The pipeline: its image, compile-time environment and TFX components.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha6",
    kind = "Pipeline",
    doc = "A TFX pipeline (v1alpha6): a container image with the pipeline's code and the function that returns its components.",
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
#[serde(remote = "Self")]
pub struct PipelineSpec {
    /// The Provider's name. Its namespace is the operator's `spec.workflowNamespace`, unless the object was
    /// written in v1beta1 with another one (kept in the conversion remainder annotation).
    pub provider: String,
    /// The container image holding the pipeline's code.
    pub image: String,
    /// The `module.function` returning the TFX components (v1beta1: `framework.parameters.components`).
    pub tfx_components: String,
    /// Environment variables of the compile step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<NamedValue>,
    /// Beam pipeline arguments, passed as `--name=value` (v1beta1: `framework.parameters.beamArgs`).
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
    version = "v1alpha6",
    kind = "Run",
    doc = "One run of a Pipeline (v1alpha6).",
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
#[serde(remote = "Self")]
pub struct RunSpec {
    /// The Provider's name. Its namespace is the operator's `spec.workflowNamespace`, unless the object was
    /// written in v1beta1 with another one (kept in the conversion remainder annotation).
    pub provider: String,
    /// The Pipeline, in the same namespace: `name` or `name:version`.
    #[serde(default, skip_serializing_if = "PipelineIdentifier::is_empty")]
    pub pipeline: PipelineIdentifier,
    /// The Experiment, in the same namespace; empty: the provider's default experiment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub experiment_name: String,
    /// The pipeline's runtime parameters (v1beta1: `parameters`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_parameters: Vec<RuntimeParameter>,
    /// Artifacts of the finished run to record, where dependent runs can read them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OutputArtifact>,
}

/// A run parameter: a literal `value`, or `valueFrom` another RunConfiguration's latest succeeded run.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeParameter {
    /// The parameter's name in the pipeline.
    pub name: String,
    /// A literal value; leave it empty when `valueFrom` is set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Where the value comes from instead of `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

/// The source of a parameter's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    /// The location of an artifact of another RunConfiguration's latest succeeded run.
    pub run_configuration_ref: RunConfigurationRef,
}

/// An artifact of another RunConfiguration's latest succeeded run. v1beta1's `optional` has no field here; a
/// conversion keeps it in the remainder annotation.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunConfigurationRef {
    /// The RunConfiguration, `name` (same namespace) or `namespace/name`.
    pub name: NamespacedName,
    /// The name of one of its `spec.run.artifacts`.
    pub output_artifact: String,
}

/// `status.dependencies` without the pipeline version (that is `status.observedPipelineVersion` here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dependencies {
    /// The latest succeeded run of each referenced RunConfiguration, keyed by its `namespace/name`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub run_configurations: BTreeMap<String, RunReference>,
}

impl Dependencies {
    /// True when nothing is recorded (the field is left out of the status).
    pub fn is_empty(&self) -> bool {
        self.run_configurations.is_empty()
    }
}

/// The status of a Run (v1alpha6).
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
    version = "v1alpha6",
    kind = "RunConfiguration",
    doc = "Runs of a Pipeline started by triggers (v1alpha6).",
    namespaced,
    status = "RunConfigurationStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "mlrc",
    category = "kfp",
    // Provider first, as on every other kind (issue 19).
    printcolumn(name = "Provider", type_ = "string", json_path = ".status.provider"),
    printcolumn(
        name = "SynchronizationState",
        type_ = "string",
        json_path = ".status.synchronizationState"
    )
)]
#[serde(rename_all = "camelCase")]
#[serde(remote = "Self")]
pub struct RunConfigurationSpec {
    /// The run to start. Optional in the schema, as in the Go operator; the admission webhook refuses a
    /// RunConfiguration without `run.provider`.
    #[serde(default)]
    pub run: RunSpec,
    /// What starts a run.
    #[serde(default)]
    pub triggers: Triggers,
}

/// `status.triggers` without the pipeline version (that is `status.triggeredPipelineVersion` here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggersStatus {
    /// Per `triggers.runConfigurations` entry (`namespace/name`): the dependency's run last seen.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub run_configurations: BTreeMap<String, TriggeredRunReference>,
    /// The version of `spec.run` last triggered on.
    #[serde(default)]
    pub run_spec: TriggeredVersion,
}

/// The status of a RunConfiguration (v1alpha6).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunConfigurationStatus {
    /// The synchronization state, the same as the `Synchronized` condition's reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub synchronization_state: String,
    /// The Provider's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider: String,
    /// The pipeline version its runs run (v1beta1: `dependencies.pipeline.version`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub observed_pipeline_version: String,
    /// The pipeline version last triggered on (v1beta1: `triggers.pipeline.version`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub triggered_pipeline_version: String,
    /// Its latest runs, from run completion events.
    #[serde(default)]
    pub latest_runs: LatestRuns,
    /// The latest succeeded runs of the RunConfigurations it refers to.
    #[serde(default, skip_serializing_if = "Dependencies::is_empty")]
    pub dependencies: Dependencies,
    /// What last triggered a run.
    #[serde(default)]
    pub triggers: TriggersStatus,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_generation: i64,
    /// The `Synchronized` condition and the kstatus ones (`Ready`, `Reconciling`, `Stalled`; see v1beta1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

// ---------------------------------------------------------------------------------------------------------------
// RunSchedule
// ---------------------------------------------------------------------------------------------------------------

/// The schedule: which pipeline, when, with which parameters.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha6",
    kind = "RunSchedule",
    doc = "A recurring run of a Pipeline registered with the Provider (v1alpha6).",
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
#[serde(remote = "Self")]
pub struct RunScheduleSpec {
    /// The Provider's name. Its namespace is the operator's `spec.workflowNamespace`, unless the object was
    /// written in v1beta1 with another one (kept in the conversion remainder annotation).
    pub provider: String,
    /// The Pipeline, in the same namespace: `name` or `name:version`.
    #[serde(default, skip_serializing_if = "PipelineIdentifier::is_empty")]
    pub pipeline: PipelineIdentifier,
    /// The Experiment, in the same namespace; empty: the provider's default experiment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub experiment_name: String,
    /// Runtime parameters of every run (literal values only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_parameters: Vec<NamedValue>,
    /// Artifacts of its finished runs to record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OutputArtifact>,
    /// When runs start. Optional in the schema, as in the Go operator; the admission webhook refuses a
    /// RunSchedule without `schedule.cronExpression`.
    #[serde(default)]
    pub schedule: Schedule,
}

// ---------------------------------------------------------------------------------------------------------------
// Experiment
// ---------------------------------------------------------------------------------------------------------------

/// The experiment.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pipelines.kubeflow.org",
    version = "v1alpha6",
    kind = "Experiment",
    doc = "An experiment on the Provider (v1alpha6).",
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
#[serde(remote = "Self")]
pub struct ExperimentSpec {
    /// The Provider's name. Its namespace is the operator's `spec.workflowNamespace`, unless the object was
    /// written in v1beta1 with another one (kept in the conversion remainder annotation).
    pub provider: String,
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
    version = "v1alpha6",
    kind = "Provider",
    doc = "An orchestration platform reached through a provider service (v1alpha6).",
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
#[serde(remote = "Self")]
pub struct ProviderSpec {
    /// The image of the provider service the operator deploys.
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

/// The status of a Provider (v1alpha6 and v1alpha5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    /// The synchronization state, the same as the `Synchronized` condition's reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub synchronization_state: String,
    /// The `metadata.generation` whose Deployment and Service are in place.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_generation: i64,
    /// The `Synchronized` condition and the kstatus ones (`Ready`, `Reconciling`, `Stalled`; see v1beta1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
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
