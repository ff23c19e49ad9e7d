//! The status updater (docs/run-completion-events.md, "What the operator records"; decision 0005): records a
//! run-completion event on the Run and the RunConfiguration it names.
//!
//! - RunConfiguration named and the run succeeded: `status.latestRuns.succeeded = {providerId: runId, artifacts,
//!   runEndTime}`, the artifacts selected by the RunConfiguration's `spec.run.artifacts`, unless the recorded run
//!   is newer ([`kfp_core::reconcile::completion::latest_succeeded`]).
//! - Run named: `status.completionState` (`Succeeded`/`Failed`) unless it has one; the Run controller then sets
//!   `markedCompletedAt` and applies the completion TTL.
//!
//! Writes are JSON merge patches of the status subresource carrying the `resourceVersion` that was read: when the
//! object changed in between, the API server answers 409 and the updater reads it again and re-plans (up to
//! [`CONFLICT_ATTEMPTS`] times). Nothing is written when nothing changes, so replays are free.
//!
//! Both named and both missing, or the only one named missing: [`ProcessError::Gone`] (410). An object that uses
//! another Provider than the event's: [`ProcessError::Forbidden`] (a provider reports its own runs only).

use kfp_core::artifact::select_artifacts;
use kfp_core::event::{RunCompletionEvent, RunCompletionEventData, format_time};
use kfp_core::reconcile::completion::{latest_succeeded, run_completion_state};
use kfp_core::resources::v1beta1::{Run, RunConfiguration};
use kfp_core::values::{NamespacedName, OutputArtifact};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::ProcessError;

/// How often a write that met a conflict is planned again before the event is answered 500 (and retried by the
/// provider).
pub const CONFLICT_ATTEMPTS: usize = 5;

/// Records events on Runs and RunConfigurations.
#[derive(Clone)]
pub struct StatusUpdater {
    client: Client,
    watch_namespace: String,
}

/// Which of the named objects exist, as they are after the update.
#[derive(Debug, Default)]
pub struct Recorded {
    /// The RunConfiguration, if the event named one and it exists.
    pub run_configuration: Option<RunConfiguration>,
    /// The Run, if the event named one and it exists.
    pub run: Option<Run>,
}

impl Recorded {
    /// The output artifacts to publish: the RunConfiguration's `spec.run.artifacts` if it was found, else the
    /// Run's `spec.artifacts` (docs/run-completion-events.md, "The published event: NATS").
    pub fn outputs(&self) -> &[OutputArtifact] {
        match (&self.run_configuration, &self.run) {
            (Some(rc), _) => &rc.spec.run.artifacts,
            (None, Some(run)) => &run.spec.artifacts,
            (None, None) => &[],
        }
    }
}

impl StatusUpdater {
    /// `watch_namespace` (`system.watchNamespace`): objects of other namespaces count as missing.
    pub fn new(client: Client, watch_namespace: &str) -> Self {
        Self {
            client,
            watch_namespace: watch_namespace.to_string(),
        }
    }

    /// Records `event`; returns the event to publish.
    pub async fn record(&self, event: &RunCompletionEventData) -> Result<RunCompletionEvent, ProcessError> {
        let (rc_name, run_name) = (event.run_configuration(), event.run());
        if rc_name.is_none() && run_name.is_none() {
            return Err(ProcessError::NothingReferenced);
        }
        let mut recorded = Recorded::default();
        if let Some(name) = rc_name {
            recorded.run_configuration = self
                .update(name, event, |rc: &RunConfiguration, event| {
                    let provider = &rc.spec.run.provider;
                    let status = rc.status.clone().unwrap_or_default();
                    let artifacts = select_artifacts(&rc.spec.run.artifacts, &event.pipeline_components);
                    let next = latest_succeeded(&status.latest_runs.succeeded, event, artifacts);
                    let patch = next.map(|next| {
                        json!({"latestRuns": {"succeeded": {
                            "providerId": next.provider_id,
                            "artifacts": next.artifacts,
                            // With its fraction of a second, as the event carries it (`Time` drops it).
                            "runEndTime": next.run_end_time.as_ref().map(format_time),
                        }}})
                    });
                    (provider.clone(), patch)
                })
                .await?;
        }
        if let Some(name) = run_name {
            recorded.run = self
                .update(name, event, |run: &Run, event| {
                    let current = run.status.as_ref().and_then(|s| s.completion_state);
                    let patch = run_completion_state(current, event.status)
                        .map(|state| json!({ "completionState": state }));
                    (run.spec.provider.clone(), patch)
                })
                .await?;
        }
        if recorded.run_configuration.is_none() && recorded.run.is_none() {
            let names: Vec<String> = [rc_name, run_name]
                .into_iter()
                .flatten()
                .map(ToString::to_string)
                .collect();
            return Err(ProcessError::Gone(format!(
                "neither the RunConfiguration nor the Run the event names exists ({})",
                names.join(", ")
            )));
        }
        Ok(event.to_event(recorded.outputs()))
    }

    /// Reads object `name`, checks that it uses the event's Provider, and writes the status patch `plan` returns
    /// (if any), re-planning on conflicts. `None`: the object does not exist.
    async fn update<K, F>(
        &self,
        name: &NamespacedName,
        event: &RunCompletionEventData,
        plan: F,
    ) -> Result<Option<K>, ProcessError>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + DeserializeOwned,
        F: Fn(&K, &RunCompletionEventData) -> (NamespacedName, Option<Value>),
    {
        let kind = K::kind(&());
        if !self.watch_namespace.is_empty() && self.watch_namespace != name.namespace {
            tracing::info!(%kind, %name, "the event names an object outside the watched namespace");
            return Ok(None);
        }
        let api: Api<K> = Api::namespaced(self.client.clone(), &name.namespace);
        for _ in 0..CONFLICT_ATTEMPTS {
            let Some(object) = api
                .get_opt(&name.name)
                .await
                .map_err(|e| ProcessError::Api(format!("reading {kind} {name}: {e}")))?
            else {
                return Ok(None);
            };
            let (provider, patch) = plan(&object, event);
            if !same_provider(&provider, &event.provider) {
                return Err(ProcessError::Forbidden(format!(
                    "{kind} {name} uses Provider {provider}, but the event comes from Provider {}",
                    event.provider
                )));
            }
            let Some(status) = patch else {
                return Ok(Some(object));
            };
            let body = json!({
                "metadata": {"resourceVersion": object.resource_version()},
                "status": status,
            });
            match api
                .patch_status(&name.name, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
                Ok(updated) => {
                    tracing::info!(%kind, %name, run_id = %event.run_id, status = %status, "recorded a run completion");
                    return Ok(Some(updated));
                }
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    tracing::debug!(%kind, %name, "conflict while recording a run completion; reading again");
                }
                Err(kube::Error::Api(e)) if e.code == 404 => return Ok(None),
                Err(e) => {
                    return Err(ProcessError::Api(format!(
                        "writing the status of {kind} {name}: {e}"
                    )));
                }
            }
        }
        Err(ProcessError::Api(format!(
            "the status of {kind} {name} changed {CONFLICT_ATTEMPTS} times while recording the run completion"
        )))
    }
}

/// Whether an object's provider reference names `provider` (a reference without a namespace matches by name).
fn same_provider(reference: &NamespacedName, provider: &NamespacedName) -> bool {
    if reference.namespace.is_empty() {
        reference.name == provider.name
    } else {
        reference == provider
    }
}
