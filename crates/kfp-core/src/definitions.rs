//! What the operator sends a provider for each operation (docs/provider-service.md, "Request bodies"), and what
//! comes back.
//!
//! These are wire formats: field names and `omitempty` behaviour match the Go operator and the provider-service
//! contract, so existing provider services keep working.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::values::{JsonMap, NamedValue, NamespacedName, OutputArtifact, ScheduleTime};

/// A pipeline as the compiler and the provider see it, before framework patches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineDefinition {
    /// The Pipeline resource, `namespace/name`.
    pub name: NamespacedName,
    /// Its `status.version` to be: the version the provider stores the compiled pipeline as.
    pub version: String,
    /// The image with the pipeline's code, which the compiler runs.
    pub image: String,
    /// Compile-time environment variables (`spec.env`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<NamedValue>,
    /// The framework and its parameters (after the Provider's patches).
    pub framework: PipelineFrameworkDefinition,
}

/// `framework`: which compiler, with which parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineFrameworkDefinition {
    /// The framework name (`tfx`, `kfpsdk`, ...), compared case-insensitively.
    pub name: String,
    /// The framework's parameters (`components`, `pipeline`, `beamArgs`, ...).
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
    /// The patched PipelineDefinition, as JSON.
    pub pipeline_definition: serde_json::Value,
    /// The compiler's output (KFP IR, or the TFX runner's PipelineJob wrapper).
    pub compiled_pipeline: serde_json::Value,
}

/// Which trigger started a run: `onChangePipeline`, `onChangeRunSpec`, `runConfiguration`, `schedule`, or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerIndicator {
    /// The trigger type (`onChangePipeline`, `onChangeRunSpec`, `runConfiguration`, `schedule`), empty when none.
    #[serde(rename = "type", default)]
    pub type_: String,
    /// What fired it: the RunConfiguration, Pipeline or RunSchedule name.
    #[serde(default)]
    pub source: String,
    /// The namespace of `source`.
    #[serde(default)]
    pub source_namespace: String,
}

impl TriggerIndicator {
    /// True when no trigger is named (a Run users created): the RunDefinition then leaves it out.
    pub fn is_empty(&self) -> bool {
        self.type_.is_empty() && self.source.is_empty() && self.source_namespace.is_empty()
    }
}

/// The body of `POST /resource/run`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDefinition {
    /// The Run resource, `namespace/name`.
    pub name: NamespacedName,
    /// Its `status.version`.
    pub version: String,
    /// The Pipeline it runs.
    pub pipeline_name: NamespacedName,
    /// The pipeline version to run; empty: the pipeline's latest.
    #[serde(default)]
    pub pipeline_version: String,
    /// The RunConfiguration that created the Run; empty when users created it.
    #[serde(default)]
    pub run_configuration_name: NamespacedName,
    /// The Experiment it belongs to; empty: the provider's default experiment.
    #[serde(default)]
    pub experiment_name: NamespacedName,
    /// Runtime parameters, resolved to strings (`valueFrom` already replaced by the artifact location).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// Artifacts of the finished run the completion event should select.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OutputArtifact>,
    /// What started the run; left out when nothing did, as Go leaves out its nil `*Indicator` (`omitempty`).
    #[serde(default, skip_serializing_if = "TriggerIndicator::is_empty")]
    pub trigger_indicator: TriggerIndicator,
    /// The identity the run acts as on the platform (`spec.serviceAccount`); empty: the provider's default. Not in
    /// the Go operator's contract, so left out when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account: String,
    /// Labels of the run on the platform (`spec.labels`); left out when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The schedule of a RunScheduleDefinition. Times are RFC 3339 (the OpenAPI document's string form was a drift).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleDefinition {
    /// A cron expression of 5 or 6 fields, as written; providers convert it to their form. A body without it
    /// decodes as empty, as in Go, and the provider decides (the KFP and Vertex AI providers refuse it).
    #[serde(default)]
    pub cron_expression: String,
    /// No run before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<ScheduleTime>,
    /// No run after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<ScheduleTime>,
}

/// The body of `POST/PUT /resource/runschedule`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunScheduleDefinition {
    /// The RunSchedule resource, `namespace/name`.
    pub name: NamespacedName,
    /// Its `status.version`.
    pub version: String,
    /// The Pipeline it runs.
    pub pipeline_name: NamespacedName,
    /// The pipeline version; empty: the pipeline's latest.
    #[serde(default)]
    pub pipeline_version: String,
    /// The RunConfiguration that owns the RunSchedule, if any.
    #[serde(default)]
    pub run_configuration_name: NamespacedName,
    /// The Experiment its runs belong to; empty: the provider's default.
    #[serde(default)]
    pub experiment_name: NamespacedName,
    /// Runtime parameters of every run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// Artifacts of its finished runs the completion events should select.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<OutputArtifact>,
    /// What the schedule's runs are attributed to (type `schedule`). Always written, empty or not: Go's field is
    /// a value without `omitempty`.
    #[serde(default)]
    pub trigger_indicator: TriggerIndicator,
    /// When runs start. A body without it decodes as an empty schedule, as in Go.
    #[serde(default)]
    pub schedule: ScheduleDefinition,
    /// The identity the run acts as on the platform (`spec.serviceAccount`); empty: the provider's default. Not in
    /// the Go operator's contract, so left out when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account: String,
    /// Labels of the run on the platform (`spec.labels`); left out when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The body of `POST/PUT /resource/experiment`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentDefinition {
    /// The Experiment resource, `namespace/name`.
    pub name: NamespacedName,
    /// Its `status.version`.
    pub version: String,
    /// The description shown by the provider.
    #[serde(default)]
    pub description: String,
}

/// What a provider operation returns: `{"id"}` on success, `{"providerError"}` (and maybe the id) on failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderOutput {
    /// The provider's id of the object; empty after a delete.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Why the operation failed; empty on success.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_error: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Go's provider-service structs: `RunDefinition.TriggerIndicator` is a `*triggers.Indicator` with
    /// `omitempty` (nil for a Run no trigger started), `RunScheduleDefinition.TriggerIndicator` a value without it,
    /// and the indicator's own fields have no `omitempty`.
    #[test]
    fn the_trigger_indicator_is_left_out_of_a_run_only_when_empty() {
        let mut run = RunDefinition {
            name: NamespacedName::new("ns", "r"),
            version: "v".into(),
            pipeline_name: NamespacedName::new("ns", "p"),
            ..RunDefinition::default()
        };
        assert_eq!(
            serde_json::to_value(&run).unwrap(),
            json!({"name": "ns/r", "version": "v", "pipelineName": "ns/p", "pipelineVersion": "",
                "runConfigurationName": "", "experimentName": ""})
        );
        run.trigger_indicator = TriggerIndicator {
            type_: "onChangeRunSpec".into(),
            source: "rc".into(),
            source_namespace: "ns".into(),
        };
        assert_eq!(
            serde_json::to_value(&run).unwrap()["triggerIndicator"],
            json!({"type": "onChangeRunSpec", "source": "rc", "sourceNamespace": "ns"})
        );
        let schedule = RunScheduleDefinition::default();
        assert_eq!(
            serde_json::to_value(&schedule).unwrap()["triggerIndicator"],
            json!({"type": "", "source": "", "sourceNamespace": ""})
        );
    }

    /// Go decodes into value structs, so a missing `schedule` or `cronExpression` is an empty one (the provider
    /// decides what an empty expression means).
    #[test]
    fn a_schedule_without_a_cron_expression_decodes_as_in_go() {
        let base = json!({"name": "ns/s", "version": "v", "pipelineName": "ns/p"});
        let mut with_schedule = base.clone();
        with_schedule["schedule"] = json!({});
        for body in [base, with_schedule] {
            let decoded: RunScheduleDefinition = serde_json::from_value(body.clone()).unwrap();
            assert_eq!(decoded.schedule.cron_expression, "", "{body}");
        }
    }
}
