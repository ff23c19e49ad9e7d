//! Wire types of the Kubeflow Pipelines v2beta1 REST API (grpc-gateway, snake_case JSON), as far as the provider
//! uses them.
//!
//! Field names follow the official API reference: `backend/api/v2beta1/swagger/{pipeline,pipeline.upload,run,
//! recurring_run,experiment,filter}.swagger.json` and the generated `python_http_client/docs/V2beta1*.md` of
//! kubeflow/pipelines; run task details and artifacts follow `backend/api/v2beta1/{run,artifacts,artifact}.proto`. Request types omit empty fields; response types accept missing fields (protojson leaves
//! unpopulated fields out) and ignore fields they do not read.

use serde::{Deserialize, Serialize};

/// `googlerpcStatus`: the body of every non-2xx answer of the gateway (`{"code", "message", "details"}`). Older gateways
/// also sent `error`, kept as a fallback for the message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RpcStatus {
    #[serde(default)]
    pub code: i32,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The upload handlers' (`/pipelines/upload`, `/upload_version`) own error body is `{"error_message",
    /// "error_details"}` (KFP 2.0.5, measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default)]
    pub details: Vec<serde_json::Value>,
}

/// `v2beta1Pipeline` (answer of `UploadPipeline`, items of `ListPipelines`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Pipeline {
    #[serde(default)]
    pub pipeline_id: String,
    #[serde(default)]
    pub display_name: String,
}

/// `v2beta1PipelineVersion` (answer of `UploadPipelineVersion` and `GetPipelineVersion`, items of
/// `ListPipelineVersions`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PipelineVersion {
    #[serde(default)]
    pub pipeline_id: String,
    #[serde(default)]
    pub pipeline_version_id: String,
    #[serde(default)]
    pub display_name: String,
    /// The uploaded pipeline spec (`google.protobuf.Struct`); with a platform spec, newer servers nest it as
    /// `{pipeline_spec, platform_spec}`.
    #[serde(default)]
    pub pipeline_spec: Option<serde_json::Value>,
}

/// `v2beta1ListPipelinesResponse`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ListPipelinesResponse {
    #[serde(default)]
    pub pipelines: Vec<Pipeline>,
    #[serde(default)]
    pub total_size: i32,
    #[serde(default)]
    pub next_page_token: String,
}

/// `v2beta1ListPipelineVersionsResponse`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ListPipelineVersionsResponse {
    #[serde(default)]
    pub pipeline_versions: Vec<PipelineVersion>,
    #[serde(default)]
    pub total_size: i32,
    #[serde(default)]
    pub next_page_token: String,
}

/// `v2beta1Experiment`: the body of `CreateExperiment` and its answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub experiment_id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// `v2beta1ListExperimentsResponse`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ListExperimentsResponse {
    #[serde(default)]
    pub experiments: Vec<Experiment>,
    #[serde(default)]
    pub total_size: i32,
    #[serde(default)]
    pub next_page_token: String,
}

/// `v2beta1PipelineVersionReference`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineVersionReference {
    pub pipeline_id: String,
    pub pipeline_version_id: String,
}

/// `v2beta1RuntimeConfig`: parameters are `google.protobuf.Value`s (plain JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub parameters: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pipeline_root: String,
}

/// `v2beta1Run`: the body of `CreateRun` (the fields the provider sets).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateRun {
    pub display_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub experiment_id: String,
    pub pipeline_version_reference: PipelineVersionReference,
    pub runtime_config: RuntimeConfig,
    /// The run's `spec.serviceAccount`; empty: KFP's default.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub service_account: String,
    /// What identifies the Run resource and its version ([`run_description`]), so a lost run can be found again.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// The start of every run description the provider writes ([`run_description`]).
pub const RUN_DESCRIPTION_PREFIX: &str = "kfp-operator run ";

/// The description of the KFP run of the Run resource `name` at `version`: `kfp-operator run <ns>/<name> version
/// <version>`. KFP keeps no other field a run's version could be read back from (runtime parameters must be declared
/// by the pipeline, and the pipeline's own version is not the Run's), so `find` compares this text.
pub fn run_description(name: &str, version: &str) -> String {
    format!("{RUN_DESCRIPTION_PREFIX}{name} version {version}")
}

/// `v2beta1RuntimeState`s after which a run does nothing more (CANCELING: a terminate is under way).
pub const SETTLED_RUN_STATES: [&str; 5] = ["SUCCEEDED", "SKIPPED", "FAILED", "CANCELED", "CANCELING"];

/// `v2beta1Run` as answered by `CreateRun` and `GetRun`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Run {
    #[serde(default)]
    pub run_id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub experiment_id: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub runtime_config: Option<RuntimeConfig>,
    /// `run_details` (`v2beta1RunDetails`): the tasks of the run and their output artifact ids.
    #[serde(default)]
    pub run_details: Option<RunDetails>,
}

/// `v2beta1ListRunsResponse`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ListRunsResponse {
    #[serde(default)]
    pub runs: Vec<Run>,
    #[serde(default)]
    pub total_size: i32,
    #[serde(default)]
    pub next_page_token: String,
}

/// `v2beta1RunDetails` (run.proto `RunDetails`), as far as the event source reads it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RunDetails {
    #[serde(default)]
    pub task_details: Vec<PipelineTaskDetail>,
}

/// `v2beta1PipelineTaskDetail` (run.proto `PipelineTaskDetail`): `display_name` is the task's name in the
/// pipeline spec, `outputs` maps an output name to its artifacts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PipelineTaskDetail {
    #[serde(default)]
    pub task_id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub outputs: std::collections::BTreeMap<String, ArtifactList>,
}

/// `v2beta1ArtifactList` (run.proto `ArtifactList`): `repeated int64 artifact_ids`, which protojson writes as
/// strings (numbers are accepted too).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ArtifactList {
    #[serde(default, deserialize_with = "int64_strings")]
    pub artifact_ids: Vec<String>,
}

fn int64_strings<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let values: Option<Vec<serde_json::Value>> = Option::deserialize(deserializer)?;
    values
        .unwrap_or_default()
        .into_iter()
        .map(|value| match value {
            serde_json::Value::String(text) => Ok(text),
            serde_json::Value::Number(number) => Ok(number.to_string()),
            other => Err(serde::de::Error::custom(format!(
                "an artifact id must be an int64, not {other}"
            ))),
        })
        .collect()
}

/// `v2beta1Artifact`, the answer of `GetArtifact` (`GET /apis/v2beta1/artifacts/{artifact_id}`). The KFP 2.x
/// `artifacts.proto` message has `artifact_id`, `uri` and storage fields but no properties; the MLMD-free
/// `artifact.proto` message of newer releases adds `name`, `type` and `metadata` (the custom properties,
/// `map<string, google.protobuf.Value>`). A missing `metadata` is empty.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Artifact {
    #[serde(default)]
    pub artifact_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `v2beta1CronSchedule`: a 6-field cron (leading seconds) and optional RFC 3339 bounds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CronSchedule {
    pub cron: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
}

/// `v2beta1Trigger`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub cron_schedule: CronSchedule,
}

/// `v2beta1RecurringRun`: the body of `CreateRecurringRun` (the fields the provider sets).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateRecurringRun {
    pub display_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub experiment_id: String,
    pub pipeline_version_reference: PipelineVersionReference,
    pub runtime_config: RuntimeConfig,
    /// int64, which protojson writes as a string.
    pub max_concurrency: String,
    pub no_catchup: bool,
    /// `RecurringRunMode`: `ENABLE`.
    pub mode: String,
    pub trigger: Trigger,
    /// The schedule's `spec.serviceAccount`; empty: KFP's default.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub service_account: String,
}

/// `v2beta1RecurringRun` as answered by `CreateRecurringRun` and listed by `ListRecurringRuns`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RecurringRun {
    #[serde(default)]
    pub recurring_run_id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// `v2beta1ListRecurringRunsResponse`. Its list is the one camelCase field of the v2beta1 answers: the proto field
/// is `recurringRuns` (`recurring_run.proto`, and so the swagger and KFP 2.0.5's answers, measured);
/// `recurring_runs` is read too.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ListRecurringRunsResponse {
    #[serde(default, rename = "recurringRuns", alias = "recurring_runs")]
    pub recurring_runs: Vec<RecurringRun>,
    #[serde(default)]
    pub total_size: i32,
    #[serde(default)]
    pub next_page_token: String,
}

/// The `filter` query parameter: a JSON-serialised `Filter` message (filter.proto) with one
/// `display_name EQUALS <value>` predicate.
pub fn display_name_filter(display_name: &str) -> String {
    serde_json::json!({
        "predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": display_name}]
    })
    .to_string()
}
