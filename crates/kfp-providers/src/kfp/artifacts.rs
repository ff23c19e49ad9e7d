//! The output artifacts of a finished KFP run, as the event's `pipelineComponents`
//! (docs/providers/kubeflow-pipelines.md, "Artifacts from the REST API").
//!
//! [`ArtifactResolver`] is the seam: the event source asks it for the components of a run and delivers nothing
//! when it fails (the workflow is read again later), so an event never goes out with artifacts missing.
//!
//! [`RestArtifactResolver`] is the REST-only implementation:
//! - the tasks come from the run the source has already read (`GET /apis/v2beta1/runs/{id}`):
//!   `run_details.task_details[]` with `display_name` and `outputs` (`map<string, ArtifactList>`, each
//!   `{artifact_ids: [int64...]}`), run.proto `PipelineTaskDetail`;
//! - each artifact is read with `GET /apis/v2beta1/artifacts/{artifact_id}` (`ArtifactService.GetArtifact`).
//!
//! Mapping (the same shape as the ML Metadata route's, [`crate::kfp::mlmd`]): component = task `display_name`;
//! component artifact = the output key; instance = `{uri, metadata}` with the artifact's `uri` (empty when unset) and
//! `metadata` (its custom properties; empty when the server's `Artifact` message has none, as KFP 2.x `artifacts.proto`
//! does). Tasks without outputs are left out; tasks sharing a display name (loop iterations) are merged into one
//! component, their instances appended in task order.
//!
//! [`super::mlmd::MlmdArtifactResolver`] is the ML Metadata gRPC implementation of the same trait
//! (`GetContextByTypeAndName(system.PipelineRun, <run id>)` -> `GetExecutionsByContext` -> `GetEventsByExecutionIDs`
//! (OUTPUT) -> `GetArtifactsByID`), chosen by the `grpcMetadataStoreAddress` / `artifactSource` parameters.

use std::collections::BTreeMap;

use kfp_core::event::{ComponentArtifact, ComponentArtifactInstance, PipelineComponent};
use kfp_core::provider::ProviderError;

use super::KfpConfig;
use super::api::{Artifact, Run};
use super::client::{KfpClient, TokenSource};

/// Reads the output artifacts of a finished run.
#[async_trait::async_trait]
pub trait ArtifactResolver: Send + Sync + std::fmt::Debug {
    /// The components of the run `run_id` (read as `run`) with their output artifacts. An error means the
    /// artifacts could not be read (now): the event must not be delivered without them.
    async fn pipeline_components(
        &self,
        run_id: &str,
        run: &Run,
    ) -> Result<Vec<PipelineComponent>, ProviderError>;
}

/// [`ArtifactResolver`] over the KFP v2beta1 REST API (task details of the run + `GetArtifact`).
#[derive(Debug, Clone)]
pub struct RestArtifactResolver {
    kfp: KfpClient,
}

impl RestArtifactResolver {
    /// A resolver that reads artifacts from `config.rest_url` (with the configured token).
    pub fn new(config: &KfpConfig) -> Result<Self, ProviderError> {
        let token = TokenSource {
            path: config.token_path.clone(),
            required: config.multi_user,
        };
        let kfp = KfpClient::new(&config.rest_url, token, config.request_timeout, config.page_size)?;
        Ok(Self { kfp })
    }

    pub(crate) fn with_client(kfp: KfpClient) -> Self {
        Self { kfp }
    }
}

#[async_trait::async_trait]
impl ArtifactResolver for RestArtifactResolver {
    async fn pipeline_components(
        &self,
        _run_id: &str,
        run: &Run,
    ) -> Result<Vec<PipelineComponent>, ProviderError> {
        let mut artifacts: BTreeMap<String, Artifact> = BTreeMap::new();
        for id in artifact_ids(run) {
            if artifacts.contains_key(id) {
                continue;
            }
            let url = self.kfp.url(&["artifacts", id])?;
            let artifact: Artifact = self.kfp.get(url, &[]).await?;
            artifacts.insert(id.to_string(), artifact);
        }
        Ok(components(run, |id| {
            artifacts.get(id).map(instance).unwrap_or_default()
        }))
    }
}

/// Every output artifact id of the run's tasks, in task and output-key order (may repeat).
pub fn artifact_ids(run: &Run) -> impl Iterator<Item = &str> {
    run.run_details
        .iter()
        .flat_map(|details| &details.task_details)
        .flat_map(|task| task.outputs.values())
        .flat_map(|list| &list.artifact_ids)
        .map(String::as_str)
}

/// The instance of an artifact: `{uri, metadata}`.
pub fn instance(artifact: &Artifact) -> ComponentArtifactInstance {
    ComponentArtifactInstance::new(
        artifact.uri.clone().unwrap_or_default(),
        artifact.metadata.clone().unwrap_or_default(),
    )
}

/// The components of `run`'s task details, with `instance_of(artifact id)` as each output's instances.
pub fn components(
    run: &Run,
    mut instance_of: impl FnMut(&str) -> ComponentArtifactInstance,
) -> Vec<PipelineComponent> {
    let mut components: Vec<PipelineComponent> = Vec::new();
    let tasks = run.run_details.iter().flat_map(|d| &d.task_details);
    for task in tasks {
        if task.outputs.values().all(|l| l.artifact_ids.is_empty()) {
            continue;
        }
        let index = match components.iter().position(|c| c.name == task.display_name) {
            Some(index) => index,
            None => {
                components.push(PipelineComponent {
                    name: task.display_name.clone(),
                    component_artifacts: Vec::new(),
                });
                components.len() - 1
            }
        };
        let component = &mut components[index];
        for (key, list) in &task.outputs {
            if list.artifact_ids.is_empty() {
                continue;
            }
            let instances = list.artifact_ids.iter().map(|id| instance_of(id));
            match component.component_artifacts.iter_mut().find(|a| a.name == *key) {
                Some(existing) => existing.artifacts.extend(instances),
                None => component.component_artifacts.push(ComponentArtifact {
                    name: key.clone(),
                    artifacts: instances.collect(),
                }),
            }
        }
    }
    components
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(details: serde_json::Value) -> Run {
        serde_json::from_value(json!({"run_id": "r1", "run_details": details})).unwrap()
    }

    #[test]
    fn tasks_become_components_and_outputs_their_artifacts() {
        let run = run(json!({"task_details": [
            {"display_name": "Trainer", "outputs": {"model": {"artifact_ids": ["1", 2]}, "empty": {}}},
            {"display_name": "root"},
            {"display_name": "Pusher", "outputs": {"pushed_model": {"artifact_ids": ["3"]}}},
            {"display_name": "Trainer", "outputs": {"model": {"artifact_ids": ["4"]}}}
        ]}));
        assert_eq!(artifact_ids(&run).collect::<Vec<_>>(), ["1", "2", "3", "4"]);
        let components = components(&run, |id| {
            ComponentArtifactInstance::new(format!("gs://b/{id}"), serde_json::Map::new())
        });
        let json = serde_json::to_value(&components).unwrap();
        assert_eq!(
            json,
            json!([
                {"name": "Trainer", "componentArtifacts": [{"name": "model", "artifacts": [
                    {"uri": "gs://b/1", "metadata": {}}, {"uri": "gs://b/2", "metadata": {}},
                    {"uri": "gs://b/4", "metadata": {}}]}]},
                {"name": "Pusher", "componentArtifacts": [{"name": "pushed_model", "artifacts": [
                    {"uri": "gs://b/3", "metadata": {}}]}]}
            ])
        );
    }

    #[test]
    fn a_run_without_details_has_no_components() {
        let run: Run = serde_json::from_value(json!({"run_id": "r1"})).unwrap();
        assert!(components(&run, |_| ComponentArtifactInstance::default()).is_empty());
    }

    #[test]
    fn artifacts_without_uri_or_metadata_are_empty() {
        let artifact: Artifact =
            serde_json::from_value(json!({"artifact_id": "7", "storage_path": "x"})).unwrap();
        assert_eq!(instance(&artifact), ComponentArtifactInstance::default());
    }
}
