//! The Vertex AI event source (docs/providers/vertex-ai.md, "Events"): pulls the Pub/Sub subscription fed by a log sink
//! on `aiplatform.googleapis.com/PipelineJob` terminal states, reads each job, and yields finished runs.
//!
//! Per message (a base64 `LogEntry`): data that is not a base64 JSON object -> Ack (dropped: it can never be
//! read); no `resource.labels.pipeline_job_id` -> Nack; `GetPipelineJob` NotFound ->
//! Ack (dropped); job not finished or the read failed -> Nack; `PIPELINE_STATE_SUCCEEDED` -> `succeeded`,
//! `PIPELINE_STATE_FAILED`/`PIPELINE_STATE_CANCELLED` -> `failed`, yielded with the ack id as receipt. Settling
//! acknowledges delivered and rejected (410) events and nacks (`modifyAckDeadline` 0) failed ones.

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine;
use kfp_core::event::{
    ComponentArtifact, ComponentArtifactInstance, PipelineComponent, RunCompletionEventData,
    RunCompletionStatus,
};
use kfp_core::provider::{
    DeliveryOutcome, DeliveryReceipt, EventDelivery, EventSource, ProviderConfig, ProviderError,
};
use kfp_core::values::NamespacedName;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Client, Clock, VaiConfig, system_clock};

/// Pulls finished pipeline jobs from Pub/Sub.
pub struct VaiEventSource {
    client: Client,
    subscription: String,
    pending: VecDeque<Value>,
    /// A message was nacked since the last pull: Pub/Sub hands it back at once, so the next pull waits
    /// `pull_interval` rather than spinning on it (and on `GetPipelineJob`).
    nacked: bool,
    /// How long to wait after an empty pull, and before pulling again after a nack (default 1 s).
    pub pull_interval: Duration,
    /// `maxMessages` of a pull (default 10).
    pub max_messages: u32,
}

impl VaiEventSource {
    /// An event source for `config`; fails with `Invalid` without `eventsourcePipelineEventsSubscription`.
    pub fn new(config: VaiConfig) -> Result<Self, ProviderError> {
        Self::with_clock(config, system_clock())
    }

    /// [`VaiEventSource::new`] with `clock` as "now" (tests).
    pub fn with_clock(config: VaiConfig, clock: Clock) -> Result<Self, ProviderError> {
        if config.events_subscription.is_empty() {
            return Err(ProviderError::invalid(
                "parameter eventsourcePipelineEventsSubscription is required for Vertex AI events",
            ));
        }
        let subscription = if config.events_subscription.starts_with("projects/") {
            config.events_subscription.clone()
        } else {
            format!(
                "projects/{}/subscriptions/{}",
                config.project, config.events_subscription
            )
        };
        Ok(Self {
            client: Client::new(config, clock)?,
            subscription,
            pending: VecDeque::new(),
            nacked: false,
            pull_interval: Duration::from_secs(1),
            max_messages: 10,
        })
    }

    /// The registry's event-source factory.
    pub fn factory(config: &ProviderConfig) -> Result<Box<dyn EventSource>, ProviderError> {
        Ok(Box::new(Self::new(VaiConfig::from_provider_config(config)?)?))
    }

    fn pubsub(&self, verb: &str) -> String {
        format!(
            "{}/v1/{}:{verb}",
            self.client.config.pubsub_endpoint.trim_end_matches('/'),
            self.subscription
        )
    }

    async fn ack(&self, ack_id: &str) -> Result<(), ProviderError> {
        let body = json!({"ackIds": [ack_id]});
        self.client
            .json(Method::POST, self.pubsub("acknowledge"), Some(&body))
            .await?;
        Ok(())
    }

    async fn nack(&mut self, ack_id: &str) -> Result<(), ProviderError> {
        self.nacked = true;
        let body = json!({"ackIds": [ack_id], "ackDeadlineSeconds": 0});
        self.client
            .json(Method::POST, self.pubsub("modifyAckDeadline"), Some(&body))
            .await?;
        Ok(())
    }

    /// The event of one received message, or `None` when the message was settled here.
    async fn handle(&mut self, received: &Value) -> Result<Option<EventDelivery>, ProviderError> {
        let ack_id = received["ackId"].as_str().unwrap_or_default().to_string();
        let entry = received["message"]["data"]
            .as_str()
            .and_then(|data| base64::engine::general_purpose::STANDARD.decode(data).ok())
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .filter(Value::is_object);
        let Some(entry) = entry else {
            // Redelivering it would not make it readable.
            tracing::warn!("a Pub/Sub message is not a base64 JSON LogEntry; acknowledged and dropped");
            self.ack(&ack_id).await?;
            return Ok(None);
        };
        let Some(job_id) = entry["resource"]["labels"]["pipeline_job_id"]
            .as_str()
            .filter(|id| !id.is_empty())
        else {
            tracing::warn!("a Pub/Sub message has no resource.labels.pipeline_job_id; nacked");
            self.nack(&ack_id).await?;
            return Ok(None);
        };
        let job_id = job_id.to_string();
        let url = self
            .client
            .aiplatform(&format!("{}/pipelineJobs/{job_id}", self.client.config.parent()));
        let job = match self.client.json(Method::GET, url, None).await {
            Ok(job) => job,
            Err(f) if f.error.is_not_found() => {
                self.ack(&ack_id).await?;
                return Ok(None);
            }
            Err(f) => {
                self.nack(&ack_id).await?;
                return Err(f.error);
            }
        };
        let status = match job["state"].as_str().unwrap_or_default() {
            "PIPELINE_STATE_SUCCEEDED" => RunCompletionStatus::Succeeded,
            "PIPELINE_STATE_FAILED" | "PIPELINE_STATE_CANCELLED" => RunCompletionStatus::Failed,
            _ => {
                self.nack(&ack_id).await?;
                return Ok(None);
            }
        };
        Ok(Some(EventDelivery {
            event: event_of(&job, &job_id, status, &self.client.config.provider),
            receipt: DeliveryReceipt(ack_id),
        }))
    }
}

/// The run completion event of a finished PipelineJob.
pub fn event_of(
    job: &Value,
    job_id: &str,
    status: RunCompletionStatus,
    provider: &NamespacedName,
) -> RunCompletionEventData {
    let label = |key: &str| job["labels"][key].as_str().unwrap_or_default().to_string();
    let name = |ns: &str, n: &str| {
        let (namespace, name) = (label(ns), label(n));
        (!name.is_empty()).then(|| NamespacedName::new(namespace, name))
    };
    let time = |key: &str| serde_json::from_value(job[key].clone()).ok();
    let pipeline_components = job["jobDetail"]["taskDetails"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|task| PipelineComponent {
            name: task["taskName"].as_str().unwrap_or_default().to_string(),
            component_artifacts: task["outputs"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(output, list)| ComponentArtifact {
                    name: output.clone(),
                    artifacts: list["artifacts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            ComponentArtifactInstance::new(
                                a["uri"].as_str().unwrap_or_default(),
                                a["metadata"].as_object().cloned().unwrap_or_default(),
                            )
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    RunCompletionEventData {
        status,
        pipeline_name: name("pipeline-namespace", "pipeline-name").unwrap_or_default(),
        run_configuration_name: name("runconfiguration-namespace", "runconfiguration-name"),
        run_name: name("run-namespace", "run-name"),
        run_id: job_id.to_string(),
        run_start_time: time("startTime"),
        run_end_time: time("endTime"),
        pipeline_components,
        provider: provider.clone(),
    }
}

#[async_trait::async_trait]
impl EventSource for VaiEventSource {
    async fn next_event(&mut self) -> Result<Option<EventDelivery>, ProviderError> {
        loop {
            while let Some(received) = self.pending.pop_front() {
                if let Some(delivery) = self.handle(&received).await? {
                    return Ok(Some(delivery));
                }
            }
            if std::mem::take(&mut self.nacked) {
                tokio::time::sleep(self.pull_interval).await;
            }
            // `returnImmediately`: without it Pub/Sub may hold an empty pull open (the emulator ~90 s), past
            // `requestTimeoutSeconds`, and every quiet period would end in a timeout error.
            let body = json!({"maxMessages": self.max_messages, "returnImmediately": true});
            let pulled = self
                .client
                .json(Method::POST, self.pubsub("pull"), Some(&body))
                .await?;
            self.pending.extend(
                pulled["receivedMessages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
            if self.pending.is_empty() {
                tokio::time::sleep(self.pull_interval).await;
            }
        }
    }

    async fn settle(
        &mut self,
        receipt: DeliveryReceipt,
        outcome: DeliveryOutcome,
    ) -> Result<(), ProviderError> {
        if outcome.is_settled() {
            self.ack(&receipt.0).await
        } else {
            self.nack(&receipt.0).await
        }
    }
}
