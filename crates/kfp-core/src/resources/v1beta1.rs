//! `pipelines.kubeflow.org/v1beta1`: the hub and storage version (docs/reference/README.md).
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
    ScheduleTime, SynchronizationState, json_map_schema, provider_reference_schema,
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
    /// The Provider, `namespace/name`, that holds the resource. Once set, a different `spec.provider` makes the
    /// resource `Failed` ("the provider has changed"): delete and recreate it to move it to another provider.
    #[serde(default, skip_serializing_if = "NamespacedName::is_empty")]
    pub name: NamespacedName,
    /// The resource's id on the provider (a Kubeflow Pipelines pipeline id, a Vertex AI schedule name, ...); empty
    /// until the provider created it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
}

impl ProviderAndId {
    /// True when neither name nor id is set (the field is left out of the status).
    pub fn is_empty(&self) -> bool {
        self.name.is_empty() && self.id.is_empty()
    }
}

/// The status shared by Pipeline, RunSchedule and Experiment (and inlined in RunStatus).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Which Provider holds the resource, and under which id.
    #[serde(default, skip_serializing_if = "ProviderAndId::is_empty")]
    pub provider: ProviderAndId,
    /// The version of the spec the provider was last asked to hold: a hash of the spec (the Go operator's
    /// algorithm, so versions written by either operator compare equal). A spec change gives a new version, which
    /// the operator then sends to the provider.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_generation: i64,
    /// The condition of type `Synchronized`: its `reason` is the synchronization state (`Creating`, `Succeeded`,
    /// `Updating`, `Deleting`, `Deleted`, `Failed`, and `Pending` for Runs waiting on dependencies), its
    /// `message` says why. Beside it, kstatus conditions for GitOps tools: `Ready` (`True` once `Succeeded`),
    /// `Reconciling` (`True`, present only while `Creating`, `Updating` or `Deleting`) and `Stalled` (`True`,
    /// present only while `Failed`), with the same reason and message. A condition of type
    /// `Readable`, status `False`, appears while the operator cannot decode the object (it names the field and value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The condition type holding the synchronization state (the kstatus ones follow it: `reconcile::kstatus`).
pub const SYNCHRONIZED: &str = "Synchronized";

/// Read access to the `Synchronized` condition of any status that carries conditions.
pub trait Conditions {
    /// Every condition of the status.
    fn conditions(&self) -> &[Condition];

    /// The `Synchronized` condition, if the operator wrote one.
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
    doc = "A machine-learning pipeline: a container image holding the pipeline's code, compiled by a framework (tfx, kfpsdk, ...) and registered with a Provider. Each spec change registers a new pipeline version.",
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
#[serde(remote = "Self")]
pub struct PipelineSpec {
    /// The Provider that registers the pipeline, `namespace/name`.
    #[schemars(schema_with = "provider_reference_schema")]
    pub provider: NamespacedName,
    /// The container image holding the pipeline's code; the compile step runs it, and pipeline steps that do not
    /// name their own image run in it.
    pub image: String,
    /// Environment variables of the compile step, exported before the pipeline's module is imported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<NamedValue>,
    /// Which framework compiles the pipeline, with its parameters.
    pub framework: PipelineFramework,
}

/// `spec.framework`: which compiler builds the pipeline, with its parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PipelineFramework {
    /// The framework: one of the Provider's `spec.frameworks[].name` (compared ignoring case), e.g. `tfx`,
    /// `kfpsdk`, `stub`.
    pub name: String,
    /// The framework's parameters, `{}` when it takes none. tfx: `components` (or its alias `pipeline`, the
    /// `module.function` returning the TFX components), `beamArgs` (`[{name, value}]`), `usePipelineSpec2_1`
    /// (default true); kfpsdk: `pipeline` (the `module.function` of the `@dsl.pipeline`); both: `enableCaching`
    /// (default false: tasks do not cache, as the Go operator compiles).
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
    doc = "One run of a Pipeline on its Provider, with parameters and the artifacts it exposes. Providers cannot change a submitted run: create a new Run instead of editing one. status.completionState records how the run ended.",
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
#[serde(remote = "Self")]
pub struct RunSpec {
    /// The Provider that runs it, `namespace/name`.
    #[schemars(schema_with = "provider_reference_schema")]
    pub provider: NamespacedName,
    /// The Pipeline, in the same namespace: `name` runs its latest succeeded version, `name:version` pins one.
    #[serde(default, skip_serializing_if = "PipelineIdentifier::is_empty")]
    pub pipeline: PipelineIdentifier,
    /// The Experiment the run belongs to, in the same namespace; empty: the provider's default experiment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub experiment_name: String,
    /// The pipeline's runtime parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    /// Artifacts of the finished run to record (in the run completion event and, for a RunConfiguration, in
    /// `status.latestRuns.succeeded.artifacts`), where dependent runs can read them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OutputArtifact>,
    /// The identity the run's steps act as on the platform: a Kubernetes service account in Kubeflow
    /// Pipelines' namespace, a Google service account email on Vertex AI. Empty: the provider's default (Vertex
    /// AI: the Provider's `vaiJobServiceAccount`). See docs/platform-features.md.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 253))]
    pub service_account: String,
    /// Labels of the run on the platform (Vertex AI job labels; Kubeflow Pipelines runs have none), beside the
    /// operator's own labels, which win on a clash. Not the Kubernetes object's labels. See
    /// docs/platform-features.md.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A run parameter: a literal `value`, or `valueFrom` another RunConfiguration's latest succeeded run.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
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

/// An artifact of another RunConfiguration's latest succeeded run.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunConfigurationRef {
    /// The RunConfiguration, `name` (same namespace) or `namespace/name`.
    pub name: NamespacedName,
    /// The name of one of its `spec.run.artifacts`; the parameter's value is that artifact's location.
    pub output_artifact: String,
    /// Leave the parameter out when it cannot be resolved (the RunConfiguration has no succeeded run, or its run
    /// lacks the artifact) instead of keeping the run `Pending`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// A finished run as seen by its dependants: the provider's run id and the artifacts it exposed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunReference {
    /// The provider's id of the run.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_id: String,
    /// The artifacts the run exposed (the RunConfiguration's `spec.run.artifacts` that matched), with their
    /// locations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
    /// When the run ended, as reported by its completion event. An event about a run that ended earlier never
    /// replaces this one, so replayed or out-of-order events are harmless. Written with its fraction of a second,
    /// as the event carries it, so runs ending within one second keep their order.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::event::serialize_optional_time"
    )]
    pub run_end_time: Option<Time>,
    /// The Run resource (`namespace/name`) the run belongs to, when its completion event named one: the logical
    /// run. A second provider run of the same Run (a create repeated by a crashed operator) is not a new success
    /// for dependants (docs/decisions/0002).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_name: String,
}

impl RunReference {
    /// True when nothing is recorded (the field is left out of the status).
    pub fn is_empty(&self) -> bool {
        self.provider_id.is_empty()
            && self.artifacts.is_empty()
            && self.run_end_time.is_none()
            && self.run_name.is_empty()
    }
}

/// The pipeline version a Run or RunConfiguration runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObservedPipeline {
    /// The pinned version of `spec.pipeline`, else the Pipeline's `status.version` once it is `Succeeded`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// What a Run or RunConfiguration depends on, as last observed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dependencies {
    /// The latest succeeded run of each RunConfiguration the parameters (and, for RunConfigurations, the
    /// triggers) refer to, keyed by its `namespace/name`: where `valueFrom` parameters are read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub run_configurations: BTreeMap<String, RunReference>,
    /// The pipeline version it runs.
    #[serde(default)]
    pub pipeline: ObservedPipeline,
}

impl Dependencies {
    /// True when nothing is recorded (the field is left out of the status).
    pub fn is_empty(&self) -> bool {
        self.run_configurations.is_empty() && self.pipeline.version.is_empty()
    }
}

/// How a run ended, from its run completion event: `Succeeded` or `Failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
// The variants carry no doc comments: schemars would turn them into a `oneOf` whose hoisted enum loses the `null`
// value the CRD has always accepted for this optional field.
#[allow(missing_docs)]
pub enum CompletionState {
    Succeeded,
    Failed,
}

/// The status of a Run: the shared status plus what it depends on and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    /// `provider`, `version`, `observedGeneration` and `conditions`, as in every kind.
    #[serde(flatten)]
    pub status: Status,
    /// What the run depends on, as last observed before it was submitted.
    #[serde(default, skip_serializing_if = "Dependencies::is_empty")]
    pub dependencies: Dependencies,
    /// How the run ended (`Succeeded` or `Failed`), set by the run completion event; empty while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_state: Option<CompletionState>,
    /// When the operator saw the completion; with `spec.runCompletionTTL` configured, the Run is deleted that long
    /// after this time.
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
    doc = "Runs of a Pipeline started by triggers: cron schedules (one RunSchedule each), a change of the pipeline or of the run spec, and new succeeded runs of other RunConfigurations. Its latest succeeded run's artifacts feed the parameters of dependent runs.",
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
        json_path = ".status.conditions[?(@.type==\"Synchronized\")].reason"
    )
)]
#[serde(rename_all = "camelCase")]
#[serde(remote = "Self")]
pub struct RunConfigurationSpec {
    /// The run to start, as a Run's spec. Optional in the schema, as in the Go operator; the admission webhook
    /// refuses a RunConfiguration without `run.provider`.
    #[serde(default)]
    pub run: RunSpec,
    /// What starts a run.
    #[serde(default)]
    pub triggers: Triggers,
}

/// What starts runs of a RunConfiguration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Triggers {
    /// Cron schedules: each becomes a RunSchedule owned by the RunConfiguration, which the provider runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<Schedule>,
    /// Start a run when the pipeline gets a new version (`pipeline`) or when `spec.run` changes (`runSpec`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_change: Vec<OnChangeType>,
    /// RunConfigurations (`name` or `namespace/name`) whose new succeeded runs start a run of this one. A
    /// RunConfiguration that never succeeded triggers nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_configurations: Vec<NamespacedName>,
}

/// A change that starts a run (`triggers.onChange`).
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
    /// A cron expression of 5 fields (minute hour day-of-month month day-of-week) or 6 with leading seconds,
    /// e.g. `0 * * * *`. Kubeflow Pipelines gets 6 fields, Vertex AI 5. Optional in the schema, as in the Go
    /// operator; the admission webhook refuses a schedule without one.
    #[serde(default)]
    pub cron_expression: CronExpression,
    /// No run starts before this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<ScheduleTime>,
    /// No run starts after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<ScheduleTime>,
}

/// The latest runs of a RunConfiguration, by how they ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatestRuns {
    /// The latest succeeded run, from its run completion event: what dependent RunConfigurations and Runs read.
    #[serde(default, skip_serializing_if = "RunReference::is_empty")]
    pub succeeded: RunReference,
}

/// The run of a dependency that last triggered a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggeredRunReference {
    /// The provider's id of that run; a different id is a new succeeded run, which triggers again.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_id: String,
    /// The Run resource (`namespace/name`) of that run, when known: another provider run of the same Run does not
    /// trigger again.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_name: String,
}

/// A version that last triggered a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TriggeredVersion {
    /// The version; a different one triggers again.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// What last triggered a Run, so a trigger fires once per change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggersStatus {
    /// Per `triggers.runConfigurations` entry (`namespace/name`): the dependency's run last seen.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub run_configurations: BTreeMap<String, TriggeredRunReference>,
    /// The version of `spec.run` last triggered on (`onChange: [runSpec]`).
    #[serde(default)]
    pub run_spec: TriggeredVersion,
    /// The pipeline version last triggered on (`onChange: [pipeline]`).
    #[serde(default)]
    pub pipeline: TriggeredVersion,
}

/// The status of a RunConfiguration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunConfigurationStatus {
    /// The Provider (`namespace/name`) of the RunSchedules and Runs it created. A different `spec.run.provider`
    /// makes it `Failed` ("the provider has changed").
    #[serde(default, skip_serializing_if = "NamespacedName::is_empty")]
    pub provider: NamespacedName,
    /// Its latest runs, from run completion events.
    #[serde(default)]
    pub latest_runs: LatestRuns,
    /// What its runs depend on: the pipeline version and the referenced RunConfigurations' latest succeeded runs.
    #[serde(default, skip_serializing_if = "Dependencies::is_empty")]
    pub dependencies: Dependencies,
    /// What last triggered a run, so that each trigger fires once per change.
    #[serde(default)]
    pub triggers: TriggersStatus,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_generation: i64,
    /// One condition of type `Synchronized`: `Succeeded` when every owned RunSchedule is, `Updating` while they
    /// are replaced or synchronising, `Failed` with a RunSchedule's message, `Pending` while parameters cannot be
    /// resolved or its Pipeline has no succeeded version yet; the kstatus conditions beside it as in every kind
    /// (`Ready`, `Reconciling`, `Stalled`). A condition of type
    /// `Readable`, status `False`, appears while the operator cannot decode the object (it names the field and value).
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
    doc = "A recurring run of a Pipeline registered with the Provider, which starts runs on the cron schedule by itself. Usually owned by a RunConfiguration.",
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
#[serde(remote = "Self")]
pub struct RunScheduleSpec {
    /// The Provider that runs the schedule, `namespace/name`.
    #[schemars(schema_with = "provider_reference_schema")]
    pub provider: NamespacedName,
    /// The Pipeline, in the same namespace: `name` (the provider runs its latest version) or `name:version`.
    #[serde(default, skip_serializing_if = "PipelineIdentifier::is_empty")]
    pub pipeline: PipelineIdentifier,
    /// The Experiment its runs belong to, in the same namespace; empty: the provider's default experiment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub experiment_name: String,
    /// Runtime parameters of every run (literal values only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<NamedValue>,
    /// Artifacts of its finished runs to record in their run completion events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OutputArtifact>,
    /// The identity the run's steps act as on the platform: a Kubernetes service account in Kubeflow
    /// Pipelines' namespace, a Google service account email on Vertex AI. Empty: the provider's default (Vertex
    /// AI: the Provider's `vaiJobServiceAccount`). See docs/platform-features.md.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 253))]
    pub service_account: String,
    /// Labels of the run on the platform (Vertex AI job labels; Kubeflow Pipelines runs have none), beside the
    /// operator's own labels, which win on a clash. Not the Kubernetes object's labels. See
    /// docs/platform-features.md.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// When runs start. Optional in the schema, as in the Go operator; the admission webhook refuses a
    /// RunSchedule without `schedule.cronExpression`.
    #[serde(default)]
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
    doc = "An experiment on the Provider: a named group of runs.",
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
#[serde(remote = "Self")]
pub struct ExperimentSpec {
    /// The Provider that holds the experiment, `namespace/name`.
    #[schemars(schema_with = "provider_reference_schema")]
    pub provider: NamespacedName,
    /// A description shown by the provider.
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
    doc = "An orchestration platform (Kubeflow Pipelines, Vertex AI, or any platform behind a provider service) that Pipelines, Runs, RunSchedules and Experiments are registered with. The operator deploys its provider service.",
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
#[serde(remote = "Self")]
pub struct ProviderSpec {
    /// The image of the provider service the operator deploys for this Provider (Argo executor).
    pub service_image: String,
    /// Deprecated and ignored; kept so manifests that set it still apply.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub execution_mode: String,
    /// The ServiceAccount of the provider service's pods, in the Provider's namespace.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub service_account: String,
    /// Where pipeline runs write their outputs (e.g. `gs://bucket/pipelines`); each run gets
    /// `<pipelineRootStorage>/<pipeline namespace>/<pipeline name>`.
    pub pipeline_root_storage: String,
    /// Parameters of the provider type (Kubeflow Pipelines: `restKfpApiUrl`, `kfpNamespace`, ...; Vertex AI:
    /// `vaiProject`, `vaiLocation`, `pipelineBucket`, ...). The provider service reads each as `PARAMETERS_<KEY>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "json_map_schema")]
    pub parameters: JsonMap,
    /// The pipeline frameworks this provider compiles, each with its compiler image and patches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frameworks: Vec<Framework>,
    /// Namespaces whose resources may use this provider; empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_namespaces: Vec<String>,
    /// Environment variables added to the provider service's container (replacing variables of the same name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_template_env: Vec<EnvVar>,
    /// Volumes added to the provider service's pod (replacing volumes of the same name), e.g. a projected
    /// ServiceAccount token for multi-user Kubeflow Pipelines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_template_volumes: Vec<Volume>,
    /// Volume mounts added to the provider service's container (replacing mounts at the same path).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_template_volume_mounts: Vec<VolumeMount>,
}

/// A pipeline framework the provider supports: its compiler image and patches applied to pipeline definitions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Framework {
    /// The name Pipelines give in `spec.framework.name` (compared ignoring case). Optional in the schema, as in
    /// the Go operator; the admission webhook refuses a framework without one (no Pipeline could select it).
    #[serde(default)]
    pub name: String,
    /// The framework image: its `/entrypoint.sh` copies the compiler into the compile step. Optional, as in the
    /// Go operator: a Pipeline of a framework without one fails with a message naming this field.
    #[serde(default)]
    pub image: String,
    /// Patches applied in order to every pipeline definition of this framework before it is compiled (e.g.
    /// default `beamArgs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<Patch>,
}

/// A patch of the pipeline definition: RFC 6902 (`json`) or RFC 7396 (`merge`), as a JSON string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Patch {
    /// `json` (the default): an RFC 6902 JSON patch (an `add` creates missing parents); `merge`: an RFC 7396 merge
    /// patch.
    #[serde(rename = "type", default)]
    pub type_: PatchType,
    /// The patch as a JSON string, e.g. `[{"op": "add", "path": "/framework/parameters/beamArgs/0", "value":
    /// {"name": "a", "value": "b"}}]`. Optional in the schema, as in the Go operator; the admission webhook
    /// refuses a patch without one, and a patch written under `patch` (see docs/decisions/0015).
    #[serde(default)]
    pub payload: String,
}

/// The kind of a framework [`Patch`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PatchType {
    /// RFC 6902 JSON patch.
    #[default]
    #[serde(rename = "json")]
    Json,
    /// RFC 7396 JSON merge patch.
    #[serde(rename = "merge")]
    Merge,
}

/// The status of a Provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    /// The `metadata.generation` whose Deployment and Service are in place (set once `Succeeded`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_generation: i64,
    /// One condition of type `Synchronized`: `Creating` or `Updating` while the provider service's Deployment
    /// and Service are applied, `Succeeded` once they match, `Failed` with the reason; the kstatus conditions
    /// beside it as in every kind (`Ready`, `Reconciling`, `Stalled`). A condition of type
    /// `Readable`, status `False`, appears while the operator cannot decode the object (it names the field and value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl Conditions for ProviderStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
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
