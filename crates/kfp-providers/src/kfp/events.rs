//! The Kubeflow Pipelines [`EventSource`] (docs/providers/kubeflow-pipelines.md, "Events").
//!
//! KFP runs are Argo `Workflow`s (`argoproj.io/v1alpha1`) in `kfpNamespace`. The source watches those with the
//! label selector `pipeline/runid,pipelines.kubeflow.org/events-published!=true` (kube-runtime's watcher: one list
//! at start, so workflows that finished while the provider was down are found, then a watch; it re-lists after a
//! broken watch). For every workflow whose phase label `workflows.argoproj.io/phase` is `Succeeded` (status
//! `succeeded`) or `Failed`/`Error` (`failed`) it reads the run with `GET /apis/v2beta1/runs/{run id}` and yields a
//! [`RunCompletionEventData`]:
//! - names from the run's runtime parameters (the label keys the provider passed when creating it,
//!   docs/providers/kubeflow-pipelines.md, "Run parameters"): `pipeline-namespace/pipeline-name`,
//!   `runconfiguration-namespace/runconfiguration-name` and `run-namespace/run-name` (each only if the name is not
//!   empty);
//! - `runStartTime` = `created_at`, `runEndTime` = `finished_at` (now when missing);
//! - `pipelineComponents` from the run's task details and their output artifacts, read by an [`ArtifactResolver`]
//!   chosen by `config.artifact_source`: [`RestArtifactResolver`] (`run_details.task_details[].outputs` +
//!   `GET /apis/v2beta1/artifacts/{id}`, see [`super::artifacts`]) or [`MlmdArtifactResolver`] (ML Metadata gRPC,
//!   see [`super::mlmd`]). If the artifacts cannot be read, nothing is yielded for the workflow now: the error
//!   is returned (as [`ProviderError::Transient`]) and the workflow is read again on the next call, so an event is
//!   never delivered with its artifacts silently missing.
//!
//! Other phases are ignored (the workflow comes back when its phase changes). A run without a `pipeline-name`
//! parameter was not started by the operator and is skipped, as is a workflow whose run KFP no longer has.
//!
//! Settling: [`DeliveryOutcome::Delivered`] and [`DeliveryOutcome::Rejected`] set the label
//! `pipelines.kubeflow.org/events-published: "true"` with a JSON **merge** patch (the Go provider's
//! JSON-patch `replace` fails when the label is absent), which takes the workflow out of the selector for good.
//! [`DeliveryOutcome::Failed`] leaves it unlabelled and queues it again: the next `next_event` reads it afresh and
//! yields it once more (and a restarted provider finds it in its first list); so does a workflow whose read failed or
//! was cut short by a cancelled `next_event`. A workflow is never yielded twice while its delivery is unsettled, nor
//! again after it was labelled (an update the watch queued before the label is skipped until the watch drops it).
//!
//! The receipt is the workflow's name.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kfp_core::event::{RunCompletionEventData, RunCompletionStatus};
use kfp_core::provider::{
    DeliveryOutcome, DeliveryReceipt, EventDelivery, EventSource, ProviderConfig, ProviderError,
};
use kfp_core::values::NamespacedName;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use serde_json::{Value, json};

use super::api::Run;
use super::artifacts::{ArtifactResolver, RestArtifactResolver};
use super::client::{KfpClient, TokenSource};
use super::mlmd::MlmdArtifactResolver;
use super::{ArtifactSource, KfpConfig, KfpProvider};

/// The label every KFP workflow carries: the run id.
pub const RUN_ID_LABEL: &str = "pipeline/runid";
/// The label Argo keeps the workflow phase in.
pub const PHASE_LABEL: &str = "workflows.argoproj.io/phase";
/// The label that marks a workflow's event as delivered.
pub const EVENTS_PUBLISHED_LABEL: &str = "pipelines.kubeflow.org/events-published";
/// The label selector of the watch.
pub const WORKFLOW_SELECTOR: &str = "pipeline/runid,pipelines.kubeflow.org/events-published!=true";

type WorkflowEvents =
    Pin<Box<dyn Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>> + Send>>;

/// The Argo `Workflow` resource (`argoproj.io/v1alpha1`, plural `workflows`).
pub fn workflow_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Workflow"),
        "workflows",
    )
}

/// The connection to Kubernetes: given, or made on first use from the default configuration.
#[allow(clippy::large_enum_variant)] // one per source
enum Kube {
    Pending,
    Connected {
        workflows: Api<DynamicObject>,
        stream: WorkflowEvents,
    },
}

/// The Kubeflow Pipelines event source: Argo workflows in `kfpNamespace`, run details from the KFP REST API.
pub struct KfpEventSource {
    config: KfpConfig,
    kfp: KfpClient,
    artifacts: Arc<dyn ArtifactResolver>,
    kube: Kube,
    /// Workflow names to read and yield before taking more from the watch (settled `Failed`, or errored).
    retry: VecDeque<String>,
    /// Workflow names yielded and not yet settled.
    in_flight: HashSet<String>,
    /// Workflow names labelled published whose removal from the watch (a `Delete` event, as they leave the selector)
    /// has not been seen yet: an update queued before the label must not yield them again.
    published: HashSet<String>,
    /// The workflow being read when `next_event` was last left (cancelled mid-read): read it again first.
    reading: Option<String>,
}

impl std::fmt::Debug for KfpEventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KfpEventSource")
            .field("kfp_namespace", &self.config.kfp_namespace)
            .field("retry", &self.retry)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl KfpEventSource {
    /// A source that watches workflows with `client` (in `config.kfp_namespace`) and reads runs from
    /// `config.rest_url`.
    pub fn new(config: KfpConfig, client: kube::Client) -> Result<Self, ProviderError> {
        let mut source = Self::lazy(config)?;
        source.connect(client);
        Ok(source)
    }

    /// A source that connects to Kubernetes with `kube::Client::try_default()` on its first `next_event` (an
    /// unavailable cluster is a [`ProviderError::Transient`] from that call).
    pub fn lazy(config: KfpConfig) -> Result<Self, ProviderError> {
        let token = TokenSource {
            path: config.token_path.clone(),
            required: config.multi_user,
        };
        let kfp = KfpClient::new(&config.rest_url, token, config.request_timeout, config.page_size)?;
        let artifacts: Arc<dyn ArtifactResolver> = match &config.artifact_source {
            ArtifactSource::Rest => Arc::new(RestArtifactResolver::with_client(kfp.clone())),
            ArtifactSource::Mlmd { address } => Arc::new(MlmdArtifactResolver::new(address, &config)?),
        };
        Ok(Self {
            config,
            kfp,
            artifacts,
            kube: Kube::Pending,
            retry: VecDeque::new(),
            in_flight: HashSet::new(),
            published: HashSet::new(),
            reading: None,
        })
    }

    /// The registry's event-source factory for type `kfp`.
    pub fn factory(config: &ProviderConfig) -> Result<Box<dyn EventSource>, ProviderError> {
        Ok(Box::new(Self::lazy(KfpConfig::from_provider_config(config)?)?))
    }

    /// Reads output artifacts with `resolver` instead of the KFP REST API (e.g. ML Metadata).
    pub fn with_artifact_resolver(mut self, resolver: Arc<dyn ArtifactResolver>) -> Self {
        self.artifacts = resolver;
        self
    }

    fn connect(&mut self, client: kube::Client) {
        let workflows: Api<DynamicObject> =
            Api::namespaced_with(client, &self.config.kfp_namespace, &workflow_resource());
        let stream = watcher(
            workflows.clone(),
            watcher::Config::default().labels(WORKFLOW_SELECTOR),
        )
        .default_backoff()
        .boxed();
        self.kube = Kube::Connected { workflows, stream };
    }

    async fn ensure_connected(&mut self) -> Result<(), ProviderError> {
        if matches!(self.kube, Kube::Pending) {
            let client = kube::Client::try_default().await.map_err(|e| {
                ProviderError::transient(format!(
                    "the Kubeflow Pipelines event source cannot reach Kubernetes: {e}"
                ))
            })?;
            self.connect(client);
        }
        Ok(())
    }

    fn deliver(&mut self, name: String, event: RunCompletionEventData) -> EventDelivery {
        self.in_flight.insert(name.clone());
        EventDelivery {
            event,
            receipt: DeliveryReceipt(name),
        }
    }
}

/// The event of `workflow`, if it is finished, unpublished, not in flight and describes an operator run.
async fn event_of(
    kfp: &KfpClient,
    artifacts: &dyn ArtifactResolver,
    provider: &NamespacedName,
    in_flight: &HashSet<String>,
    published: &HashSet<String>,
    workflow: &DynamicObject,
) -> Result<Option<RunCompletionEventData>, ProviderError> {
    {
        let labels = workflow.metadata.labels.clone().unwrap_or_default();
        let name = workflow.metadata.name.clone().unwrap_or_default();
        if name.is_empty()
            || in_flight.contains(&name)
            || published.contains(&name)
            || labels.get(EVENTS_PUBLISHED_LABEL).map(String::as_str) == Some("true")
        {
            return Ok(None);
        }
        let Some(run_id) = labels.get(RUN_ID_LABEL).filter(|id| !id.is_empty()) else {
            return Ok(None);
        };
        let phase = labels
            .get(PHASE_LABEL)
            .cloned()
            .or_else(|| workflow.data["status"]["phase"].as_str().map(str::to_string))
            .unwrap_or_default();
        let Some(status) = completion_status(&phase) else {
            return Ok(None);
        };
        let url = kfp.url(&["runs", run_id])?;
        let run: Run = match kfp.get(url, &[]).await {
            Ok(run) => run,
            Err(ProviderError::NotFound(message)) => {
                tracing::warn!(workflow = %name, run_id = %run_id, "skipping a workflow whose run is gone: {message}");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let Some(mut event) = event_data(&run, run_id, status, provider) else {
            tracing::debug!(workflow = %name, run_id = %run_id, "skipping a run the operator did not start");
            return Ok(None);
        };
        event.pipeline_components = artifacts
            .pipeline_components(run_id, &run)
            .await
            .map_err(|e| {
                ProviderError::transient(format!(
                    "the output artifacts of run {run_id} (workflow {name}) could not be read, the event waits: {e}"
                ))
            })?;
        Ok(Some(event))
    }
}

/// The event status of an Argo phase: `Succeeded` -> succeeded, `Failed`/`Error` -> failed, others none.
pub fn completion_status(phase: &str) -> Option<RunCompletionStatus> {
    match phase {
        "Succeeded" => Some(RunCompletionStatus::Succeeded),
        "Failed" | "Error" => Some(RunCompletionStatus::Failed),
        _ => None,
    }
}

/// The event of the KFP run `run` (`None` without a `pipeline-name` runtime parameter), without its
/// `pipelineComponents` (the [`ArtifactResolver`] adds them).
pub fn event_data(
    run: &Run,
    run_id: &str,
    status: RunCompletionStatus,
    provider: &NamespacedName,
) -> Option<RunCompletionEventData> {
    let empty = serde_json::Map::new();
    let parameters = run
        .runtime_config
        .as_ref()
        .map(|c| &c.parameters)
        .unwrap_or(&empty);
    let text = |key: &str| {
        parameters
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let named = |prefix: &str| {
        let name = text(&format!("{prefix}-name"));
        (!name.is_empty()).then(|| NamespacedName::new(text(&format!("{prefix}-namespace")), name))
    };
    let pipeline_name = named("pipeline")?;
    let end = run
        .finished_at
        .as_deref()
        .and_then(parse_time)
        .or_else(|| parse_time(&chrono::Utc::now().to_rfc3339()));
    Some(RunCompletionEventData {
        status,
        pipeline_name,
        run_configuration_name: named("runconfiguration"),
        run_name: named("run"),
        run_id: if run.run_id.is_empty() {
            run_id.to_string()
        } else {
            run.run_id.clone()
        },
        run_start_time: run.created_at.as_deref().and_then(parse_time),
        run_end_time: end,
        pipeline_components: Vec::new(),
        provider: provider.clone(),
    })
}

/// An RFC 3339 time; `None` for anything else (KFP writes the zero time `1970-01-01T00:00:00Z` for "unset").
fn parse_time(text: &str) -> Option<Time> {
    if text.is_empty() || text.starts_with("1970-01-01T00:00:00") {
        return None;
    }
    serde_json::from_value(json!(text)).ok()
}

#[async_trait::async_trait]
impl EventSource for KfpEventSource {
    async fn next_event(&mut self) -> Result<Option<EventDelivery>, ProviderError> {
        self.ensure_connected().await?;
        // A read cut short by a cancelled call (e.g. `tokio::time::timeout`): that workflow is not lost.
        if let Some(name) = self.reading.take()
            && !self.retry.contains(&name)
        {
            self.retry.push_front(name);
        }
        loop {
            if let Some(name) = self.retry.pop_front() {
                let Kube::Connected { workflows, .. } = &self.kube else {
                    return Err(ProviderError::transient("the event source is not connected"));
                };
                let workflow = match workflows.get_opt(&name).await {
                    Ok(Some(workflow)) => workflow,
                    Ok(None) => continue,
                    Err(e) => {
                        self.retry.push_front(name.clone());
                        return Err(ProviderError::transient(format!(
                            "reading the workflow {name} failed: {e}"
                        )));
                    }
                };
                self.reading = Some(name.clone());
                let event = event_of(
                    &self.kfp,
                    self.artifacts.as_ref(),
                    &self.config.provider,
                    &self.in_flight,
                    &self.published,
                    &workflow,
                )
                .await;
                self.reading = None;
                match event {
                    Ok(Some(event)) => return Ok(Some(self.deliver(name, event))),
                    Ok(None) => continue,
                    Err(e) => {
                        self.retry.push_front(name);
                        return Err(e);
                    }
                }
            }
            let Kube::Connected { stream, .. } = &mut self.kube else {
                return Err(ProviderError::transient("the event source is not connected"));
            };
            let workflow = match stream.next().await {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(ProviderError::transient(format!(
                        "watching Argo workflows in {} failed: {e}",
                        self.config.kfp_namespace
                    )));
                }
                Some(Ok(watcher::Event::Apply(w) | watcher::Event::InitApply(w))) => w,
                Some(Ok(watcher::Event::Delete(w))) => {
                    if let Some(name) = &w.metadata.name {
                        self.published.remove(name);
                    }
                    continue;
                }
                // A fresh list follows, without the published workflows: nothing stale can come after it.
                Some(Ok(watcher::Event::Init)) => {
                    self.published.clear();
                    continue;
                }
                Some(Ok(_)) => continue,
            };
            let name = workflow.metadata.name.clone().unwrap_or_default();
            self.reading = Some(name.clone()).filter(|n| !n.is_empty());
            let event = event_of(
                &self.kfp,
                self.artifacts.as_ref(),
                &self.config.provider,
                &self.in_flight,
                &self.published,
                &workflow,
            )
            .await;
            self.reading = None;
            match event {
                Ok(Some(event)) => return Ok(Some(self.deliver(name, event))),
                Ok(None) => continue,
                Err(e) => {
                    // Read it again on the next call.
                    if !name.is_empty() && !self.retry.contains(&name) {
                        self.retry.push_back(name);
                    }
                    return Err(e);
                }
            }
        }
    }

    async fn settle(
        &mut self,
        receipt: DeliveryReceipt,
        outcome: DeliveryOutcome,
    ) -> Result<(), ProviderError> {
        let name = receipt.0;
        if !outcome.is_settled() {
            self.in_flight.remove(&name);
            if !self.retry.contains(&name) {
                self.retry.push_back(name);
            }
            return Ok(());
        }
        let Kube::Connected { workflows, .. } = &self.kube else {
            return Err(ProviderError::transient("the event source is not connected"));
        };
        let patch = json!({"metadata": {"labels": {EVENTS_PUBLISHED_LABEL: "true"}}});
        match workflows
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                self.in_flight.remove(&name);
                self.published.insert(name);
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {
                self.in_flight.remove(&name);
                Ok(())
            }
            Err(e) => {
                // Still unlabelled: deliver it again.
                self.in_flight.remove(&name);
                if !self.retry.contains(&name) {
                    self.retry.push_back(name.clone());
                }
                Err(ProviderError::transient(format!(
                    "labelling the workflow {name} as published failed: {e}"
                )))
            }
        }
    }
}

impl KfpProvider {
    /// The event source of this provider's configuration (connects to Kubernetes on first use).
    pub fn event_source(&self) -> Result<KfpEventSource, ProviderError> {
        KfpEventSource::lazy(self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kfp::api::RuntimeConfig;

    fn run(parameters: Value, finished_at: Option<&str>) -> Run {
        Run {
            run_id: "r1".into(),
            created_at: Some("2026-01-01T10:00:00Z".into()),
            finished_at: finished_at.map(str::to_string),
            runtime_config: Some(RuntimeConfig {
                parameters: parameters.as_object().cloned().unwrap_or_default(),
                pipeline_root: String::new(),
            }),
            ..Run::default()
        }
    }

    #[test]
    fn phases_map_to_statuses() {
        assert_eq!(
            completion_status("Succeeded"),
            Some(RunCompletionStatus::Succeeded)
        );
        assert_eq!(completion_status("Failed"), Some(RunCompletionStatus::Failed));
        assert_eq!(completion_status("Error"), Some(RunCompletionStatus::Failed));
        for phase in ["Running", "Pending", "", "succeeded"] {
            assert_eq!(completion_status(phase), None, "{phase}");
        }
    }

    #[test]
    fn names_come_from_runtime_parameters() {
        let provider = NamespacedName::new("ops", "kfp");
        let parameters = json!({
            "pipeline-name": "p", "pipeline-namespace": "ns", "runconfiguration-name": "rc",
            "runconfiguration-namespace": "ns", "run-name": "", "run-namespace": "", "learning_rate": 0.1
        });
        let event = event_data(
            &run(parameters, Some("2026-01-01T11:00:00Z")),
            "r1",
            RunCompletionStatus::Succeeded,
            &provider,
        )
        .unwrap();
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            json!({"status": "succeeded", "pipelineName": "ns/p", "runConfigurationName": "ns/rc", "runId": "r1",
                   "runStartTime": "2026-01-01T10:00:00Z", "runEndTime": "2026-01-01T11:00:00Z",
                   "provider": "ops/kfp"})
        );
    }

    #[test]
    fn runs_without_a_pipeline_name_are_not_the_operators() {
        let provider = NamespacedName::new("ops", "kfp");
        let event = event_data(
            &run(json!({"x": "y"}), None),
            "r1",
            RunCompletionStatus::Failed,
            &provider,
        );
        assert!(event.is_none());
    }

    #[test]
    fn a_missing_or_zero_finish_time_is_now() {
        let provider = NamespacedName::new("ops", "kfp");
        for finished in [None, Some("1970-01-01T00:00:00Z")] {
            let event = event_data(
                &run(
                    json!({"pipeline-name": "p", "pipeline-namespace": "ns"}),
                    finished,
                ),
                "r1",
                RunCompletionStatus::Failed,
                &provider,
            )
            .unwrap();
            let end = serde_json::to_value(&event.run_end_time).unwrap();
            assert!(end.as_str().unwrap().starts_with("20"), "{end}");
        }
    }
}
