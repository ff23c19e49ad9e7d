//! Forwarding of run-completion events to the operator (docs/provider-service.md, "Events").
//!
//! [`forward_events`] drives an [`EventSource`] as kfp-core documents it: take the next event, deliver it to the
//! operator's feed with [`WebhookSink::deliver`], settle it with the outcome, repeat. One event is in flight at a
//! time; the source is the queue (the backend keeps an event until it is settled, the stub keeps a bounded
//! in-memory queue), so a slow or unavailable operator pushes back on the source instead of filling memory.
//!
//! Delivery: `POST <OPERATORWEBHOOK>` with the event as JSON.
//! - 2xx: delivered (`Success`), settled [`DeliveryOutcome::Delivered`];
//! - 410: the operator will never accept it (`UnrecoverableFailure`), settled [`DeliveryOutcome::Rejected`];
//! - any other status or a transport error (`RecoverableFailure`): retried with exponential backoff
//!   ([`RetryPolicy`]); after `max_attempts` it is settled [`DeliveryOutcome::Failed`] and the source delivers it
//!   again later.
//!
//! Authentication (docs/run-completion-events.md, "Authentication"): each attempt reads the bearer token from the token
//! file (the projected ServiceAccount token with audience `kfp-operator`; kubelet rotates it, so it is read again every
//! time) and sends `Authorization: Bearer <token>`. If the file does not exist, no header is sent (an operator that
//! authenticates its feed then answers 401, which is retried). The token is never logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kfp_core::event::RunCompletionEventData;
use kfp_core::provider::{DeliveryOutcome, EventSource};
use tokio::sync::watch;

use crate::config::RetryPolicy;
use crate::http::{error_chain, install_crypto_provider};
use crate::metrics::{ServiceMetrics, WebhookResult};

/// POSTs events to the operator's run-completion feed.
#[derive(Clone)]
pub struct WebhookSink {
    client: reqwest::Client,
    url: String,
    token_file: PathBuf,
    retry: RetryPolicy,
    metrics: Arc<ServiceMetrics>,
}

/// Why one attempt did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptError {
    /// The operator answered with this status (not 2xx, not 410).
    Status(u16),
    /// The request did not get an answer.
    Transport(String),
}

impl WebhookSink {
    /// A sink posting to `url` with the token of `token_file`, retrying as `retry` says and counting attempts in
    /// `metrics`.
    pub fn new(
        url: impl Into<String>,
        token_file: impl Into<PathBuf>,
        retry: RetryPolicy,
        metrics: Arc<ServiceMetrics>,
    ) -> Result<Self, reqwest::Error> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(retry.request_timeout)
            .connect_timeout(retry.request_timeout)
            .build()?;
        Ok(Self {
            client,
            url: url.into(),
            token_file: token_file.into(),
            retry,
            metrics,
        })
    }

    /// One POST of `body`: `Ok(Delivered | Rejected)` or why it failed. Records the metric.
    pub async fn send_once(&self, body: &[u8]) -> Result<DeliveryOutcome, AttemptError> {
        let mut request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(token) = read_token(&self.token_file).await {
            request = request.bearer_auth(token);
        }
        let result = match request.send().await {
            Ok(response) => match DeliveryOutcome::from_http_status(response.status().as_u16()) {
                DeliveryOutcome::Failed => Err(AttemptError::Status(response.status().as_u16())),
                settled => Ok(settled),
            },
            Err(e) => Err(AttemptError::Transport(error_chain(&e))),
        };
        self.metrics.observe_webhook(match &result {
            Ok(DeliveryOutcome::Delivered) => WebhookResult::Success,
            Ok(_) => WebhookResult::UnrecoverableFailure,
            Err(_) => WebhookResult::RecoverableFailure,
        });
        result
    }

    /// Delivers `event`, retrying per the [`RetryPolicy`] until it is delivered or rejected, the attempts are used
    /// up, or `shutdown` turns true (then [`DeliveryOutcome::Failed`]: the source keeps the event).
    pub async fn deliver(
        &self,
        event: &RunCompletionEventData,
        shutdown: &mut watch::Receiver<bool>,
    ) -> DeliveryOutcome {
        deliver_with_retry(self, event, &self.retry, shutdown).await
    }

    /// How failed deliveries are retried.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }
}

/// Where [`forward_events`] delivers events: the operator's feed over HTTP ([`WebhookSink`]), or, in the
/// operator's direct mode, its status updater in-process.
#[async_trait::async_trait]
pub trait EventSink: Send + Sync {
    /// One attempt: `Ok(Delivered | Rejected)`, or why it failed (it is retried).
    async fn attempt(&self, event: &RunCompletionEventData) -> Result<DeliveryOutcome, String>;
}

#[async_trait::async_trait]
impl EventSink for WebhookSink {
    async fn attempt(&self, event: &RunCompletionEventData) -> Result<DeliveryOutcome, String> {
        let body = match serde_json::to_vec(event) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(run_id = %event.run_id, error = %e, "cannot encode the event: discarded");
                self.metrics.observe_webhook(WebhookResult::Discarded);
                return Ok(DeliveryOutcome::Rejected);
            }
        };
        self.send_once(&body).await.map_err(|error| format!("{error:?}"))
    }
}

/// Delivers `event` to `sink`, retrying per `retry` until it is delivered or rejected, the attempts are used up,
/// or `shutdown` turns true (then [`DeliveryOutcome::Failed`]: the source keeps the event).
pub async fn deliver_with_retry(
    sink: &(impl EventSink + ?Sized),
    event: &RunCompletionEventData,
    retry: &RetryPolicy,
    shutdown: &mut watch::Receiver<bool>,
) -> DeliveryOutcome {
    let mut failures = 0;
    loop {
        match sink.attempt(event).await {
            Ok(outcome) => {
                if outcome == DeliveryOutcome::Rejected {
                    tracing::warn!(run_id = %event.run_id, "the operator will never accept the event: dropped");
                }
                return outcome;
            }
            Err(error) => {
                failures += 1;
                let wait = retry.backoff(failures);
                tracing::warn!(run_id = %event.run_id, %error, failures, retry_in = ?wait, "event delivery failed");
                if failures >= retry.max_attempts {
                    return DeliveryOutcome::Failed;
                }
                if wait_or_shutdown(wait, shutdown).await {
                    return DeliveryOutcome::Failed;
                }
            }
        }
    }
}

/// Reads the bearer token; `None` if the file is missing, unreadable or empty.
async fn read_token(path: &Path) -> Option<String> {
    match tokio::fs::read_to_string(path).await {
        Ok(token) => Some(token.trim().to_string()).filter(|t| !t.is_empty()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the webhook token file: sending no token");
            None
        }
    }
}

/// Sleeps `wait`; true if `shutdown` turned true first.
async fn wait_or_shutdown(wait: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = shutdown.wait_for(|stop| *stop) => true,
    }
}

/// Runs `source` until it ends or `shutdown` turns true, delivering every event to `sink` (retried per `retry`)
/// and settling it.
/// Errors of the source are logged and retried after a pause.
pub async fn forward_events(
    mut source: Box<dyn EventSource>,
    sink: impl EventSink,
    retry: RetryPolicy,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut source_failures = 0;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let next = tokio::select! {
            next = source.next_event() => next,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let delivery = match next {
            Ok(Some(delivery)) => {
                source_failures = 0;
                delivery
            }
            Ok(None) => {
                tracing::info!("the event source ended");
                return;
            }
            Err(e) => {
                source_failures += 1;
                let wait = retry.backoff(source_failures);
                tracing::warn!(error = %e, retry_in = ?wait, "the event source failed");
                if wait_or_shutdown(wait, &mut shutdown).await {
                    return;
                }
                continue;
            }
        };
        let outcome = deliver_with_retry(&sink, &delivery.event, &retry, &mut shutdown).await;
        if let Err(e) = source.settle(delivery.receipt, outcome).await {
            tracing::warn!(error = %e, ?outcome, "cannot settle the event with its source");
        }
        if outcome == DeliveryOutcome::Failed && wait_or_shutdown(retry.max_backoff, &mut shutdown).await {
            return;
        }
    }
}
