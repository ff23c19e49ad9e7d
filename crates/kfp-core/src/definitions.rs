//! What the operator sends a provider for each operation (SPEC 4.3), and what comes back.
//!
//! These are wire formats: field names and `omitempty` behaviour match the Go operator and the provider-service
//! contract, so existing provider services keep working.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

use crate::values::{JsonMap, NamedValue, NamespacedName, OutputArtifact};

/// A pipeline as the compiler and the provider see it, before framework patches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineDefinition {
    pub name: NamespacedName,
    pub version: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<NamedValue>,
    pub framework: PipelineFrameworkDefinition,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineFrameworkDefinition {
    pub name: String,
    #[serde(default)]
    pub parameters: JsonMap,
}

/// The body of `POST/PUT /resource/pipeline`: the (patched) definition and the compiler's output.
///
/// Both are kept as JSON values: framework patches may add fields the typed definition does not know, and the
/// compiled pipeline is the framework's own format.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineDefinitionWrapper {
    pub pipeline_definition: serde_json::Value,
    pub compiled_pipeline: serde_json::Value,
}

/// Which trigger started a run: `onChangePipeline`, `onChangeRunSpec`, `runConfiguration`, `schedule`, or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerIndicator {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub source_namespace: String,
}

/// The body of `POST /resource/run`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDefinition {
    pub name: NamespacedName,
    pub version: String,
    pub pipeline_name: NamespacedName,
    #[serde(default)]
    pub pipeline_version: String,
    #[serde(default)]
    pub run_configuration_name: NamespacedName,
    #[serde(default)]
    pub experiment_name: NamespacedName,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OutputArtifact>,
    #[serde(default)]
    pub trigger_indicator: TriggerIndicator,
}

/// The schedule of a RunScheduleDefinition. Times are RFC 3339 (the OpenAPI document's string form was a drift).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleDefinition {
    pub cron_expression: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
}

/// The body of `POST/PUT /resource/runschedule`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunScheduleDefinition {
    pub name: NamespacedName,
    pub version: String,
    pub pipeline_name: NamespacedName,
    #[serde(default)]
    pub pipeline_version: String,
    #[serde(default)]
    pub run_configuration_name: NamespacedName,
    #[serde(default)]
    pub experiment_name: NamespacedName,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OutputArtifact>,
    #[serde(default)]
    pub trigger_indicator: TriggerIndicator,
    pub schedule: ScheduleDefinition,
}

/// The body of `POST/PUT /resource/experiment`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentDefinition {
    pub name: NamespacedName,
    pub version: String,
    #[serde(default)]
    pub description: String,
}

/// What a provider operation returns: `{"id"}` on success, `{"providerError"}` (and maybe the id) on failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderOutput {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_error: String,
}
