//! The run-completion feed (docs/run-completion-events.md; decision 0005): provider services report finished runs here,
//! the operator records them on Runs and RunConfigurations and publishes them to NATS.
//!
//! `POST /events` on `spec.runCompletionFeed.address`:`port` (default `0.0.0.0:8082`), body a
//! [`RunCompletionEventData`]. Checks in order, the first that fails answers:
//!
//! | answer | when |
//! |---|---|
//! | 405 | the method is not POST (`Allow: POST`) |
//! | 401 | no bearer token (unless migration mode accepts none), or one that is not accepted ([`auth`]) |
//! | 403 | a valid token of someone who is not a Provider's ServiceAccount |
//! | 415 | the `Content-Type` is not `application/json` |
//! | 413 | the body is larger than `spec.runCompletionFeed.maxBodyBytes` |
//! | 400 | the body is empty or not a run-completion event (the message names the field), names neither a RunConfiguration nor a Run, or a field is longer than its bound ([`check_lengths`]: the message names the field and the bound) |
//! | 403 | the event's `provider` is not the sender's Provider, or a named object uses another Provider |
//! | 410 | the objects the event names do not exist (the provider drops the event) |
//! | 500 | the API server or NATS failed: the provider retries |
//! | 200 | recorded (and published); the body is the published event |
//!
//! Every answer but 200 has the body `{"error": "<what is wrong>"}`; it quotes at most a few hundred bytes of what
//! was sent ([`kfp_providers::service::edge::quote`]), and so do the log lines. The Go operator answered 500 to a body that
//! is not JSON; this feed answers 400 (the provider retries both).
//!
//! The status update comes first and is the source of truth, the NATS publish follows (docs/run-completion-events.md,
//! "The published event: NATS"): if the publish fails the feed answers 500, the provider delivers the event again, the
//! status update is then a no-op and the publish is retried. Every replica serves the feed (its writes are guarded,
//! idempotent patches), not only the leader. In direct mode the Providers' event sources feed the same [`Processor`]
//! in-process ([`sources`]).

pub mod auth;
pub mod nats;
pub mod sources;
pub mod status;

use std::future::{Future, IntoFuture};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use kfp_core::event::{RunCompletionEvent, RunCompletionEventData};
use kfp_core::provider::DeliveryOutcome;
use kfp_providers::service::edge::{self, quote};
use kube::Client;
use tokio::net::TcpListener;

use crate::config::OperatorConfig;
use crate::telemetry::Metrics;
use auth::{AuthError, Authenticator, Identity};
use nats::{PublishError, Publisher};
use status::StatusUpdater;

/// The feed's only endpoint.
pub const ENDPOINT: &str = "/events";

/// Why an event was not recorded and published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// The event names neither a RunConfiguration nor a Run (400).
    #[error("the event names neither a RunConfiguration (runConfigurationName) nor a Run (runName)")]
    NothingReferenced,
    /// A field is longer than any platform or Kubernetes accepts (400; dropped in-process).
    #[error("{0}")]
    Invalid(String),
    /// Nothing the event names exists (410: the provider drops it).
    #[error("{0}")]
    Gone(String),
    /// The sender may not report this event (403).
    #[error("{0}")]
    Forbidden(String),
    /// An API call failed (500: the provider retries).
    #[error("{0}")]
    Api(String),
    /// The status was updated but NATS did not take the event (500: the provider retries, the status update is then
    /// a no-op).
    #[error("the event was recorded but not published: {0}")]
    Publish(#[from] PublishError),
}

impl ProcessError {
    /// The feed's HTTP answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NothingReferenced | Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::Gone(_) => StatusCode::GONE,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Api(_) | Self::Publish(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What an in-process event source does with the event: drop it when it can never be recorded, else
    /// deliver it again later.
    pub fn outcome(&self) -> DeliveryOutcome {
        match self {
            Self::NothingReferenced | Self::Invalid(_) | Self::Gone(_) | Self::Forbidden(_) => {
                DeliveryOutcome::Rejected
            }
            Self::Api(_) | Self::Publish(_) => DeliveryOutcome::Failed,
        }
    }

    fn metric(&self) -> &'static str {
        match self {
            Self::Gone(_) => "gone",
            Self::NothingReferenced | Self::Invalid(_) | Self::Forbidden(_) => "rejected",
            Self::Api(_) | Self::Publish(_) => "failed",
        }
    }
}

/// Records events and publishes them: what the feed and the in-process event sources share. Cheap to clone.
#[derive(Clone)]
pub struct Processor {
    updater: StatusUpdater,
    publisher: Option<Arc<Publisher>>,
    metrics: Arc<Metrics>,
}

impl Processor {
    /// A processor writing with `client` within `system.watchNamespace`, publishing with `publisher` if any.
    pub fn new(
        client: Client,
        config: &OperatorConfig,
        publisher: Option<Arc<Publisher>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            updater: StatusUpdater::new(client, &config.system.watch_namespace),
            publisher,
            metrics,
        }
    }

    /// Records `event` (status first), then publishes it; `source` (`feed`, `direct`) labels the metrics.
    pub async fn process(
        &self,
        event: &RunCompletionEventData,
        source: &str,
    ) -> Result<RunCompletionEvent, ProcessError> {
        let result = self.record_and_publish(event).await;
        let label = match &result {
            Ok(_) => "recorded",
            Err(error) => error.metric(),
        };
        self.metrics.feed.event(source, label);
        if let Err(error) = &result {
            tracing::warn!(
                run_id = %quote(&event.run_id),
                provider = %quote(&event.provider.to_string()),
                %error,
                source,
                "run completion event not processed"
            );
        }
        result
    }

    async fn record_and_publish(
        &self,
        event: &RunCompletionEventData,
    ) -> Result<RunCompletionEvent, ProcessError> {
        check_lengths(event)?;
        let published = self.updater.record(event).await?;
        if let Some(publisher) = &self.publisher {
            let result = publisher.publish(&published).await;
            self.metrics.feed.published(result.is_ok());
            result?;
        }
        Ok(published)
    }
}

/// The longest `runId` taken: KFP's are UUIDs (36 bytes), Vertex AI's pipeline job names about 130.
pub const MAX_RUN_ID_BYTES: usize = 512;
/// The longest artifact `uri` taken.
pub const MAX_URI_BYTES: usize = 4096;
/// The longest component or artifact name taken (a Kubernetes name's bound).
pub const MAX_NAME_BYTES: usize = 253;
/// The longest namespace (a DNS label).
pub const MAX_NAMESPACE_BYTES: usize = 63;

/// Refuses an event with a field longer than anything the platforms or Kubernetes produce or accept (they would
/// refuse it later, after it was stored): `runId` ([`MAX_RUN_ID_BYTES`]), the `namespace/name` references
/// ([`MAX_NAMESPACE_BYTES`], [`MAX_NAME_BYTES`]), component and artifact names ([`MAX_NAME_BYTES`]), artifact
/// `uri`s ([`MAX_URI_BYTES`]). The message names the field as sent and the bound. The whole body is bounded too
/// (`spec.runCompletionFeed.maxBodyBytes`), so metadata needs no bound of its own.
pub fn check_lengths(event: &RunCompletionEventData) -> Result<(), ProcessError> {
    let too_long = |field: &str, value: &str, bound: usize| {
        (value.len() > bound).then(|| {
            ProcessError::Invalid(format!(
                "{field} is {} bytes long; at most {bound} are accepted",
                value.len()
            ))
        })
    };
    let reference = |field: &str, value: Option<&kfp_core::values::NamespacedName>| {
        value.and_then(|v| {
            too_long(&format!("{field} (namespace)"), &v.namespace, MAX_NAMESPACE_BYTES)
                .or_else(|| too_long(&format!("{field} (name)"), &v.name, MAX_NAME_BYTES))
        })
    };
    let mut problems = vec![
        too_long("runId", &event.run_id, MAX_RUN_ID_BYTES),
        reference("pipelineName", Some(&event.pipeline_name)),
        reference("runConfigurationName", event.run_configuration_name.as_ref()),
        reference("runName", event.run_name.as_ref()),
        reference("provider", Some(&event.provider)),
    ];
    for (c, component) in event.pipeline_components.iter().enumerate() {
        let at = format!("pipelineComponents[{c}]");
        problems.push(too_long(&format!("{at}.name"), &component.name, MAX_NAME_BYTES));
        for (a, artifact) in component.component_artifacts.iter().enumerate() {
            let at = format!("{at}.componentArtifacts[{a}]");
            problems.push(too_long(&format!("{at}.name"), &artifact.name, MAX_NAME_BYTES));
            for (i, instance) in artifact.artifacts.iter().enumerate() {
                problems.push(too_long(
                    &format!("{at}.artifacts[{i}].uri"),
                    &instance.uri,
                    MAX_URI_BYTES,
                ));
            }
        }
    }
    match problems.into_iter().flatten().next() {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

/// The HTTP feed: authentication in front of a [`Processor`].
pub struct Feed {
    processor: Processor,
    auth: Authenticator,
    max_body_bytes: usize,
    metrics: Arc<Metrics>,
}

impl Feed {
    /// The feed of `processor`, authenticating with `client` as `config` says, counting requests in `metrics`.
    pub fn new(
        processor: Processor,
        client: Client,
        config: &OperatorConfig,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let feed = &config.spec.run_completion_feed;
        if feed.authentication.allow_unauthenticated {
            tracing::warn!(
                "migration mode: the run-completion feed accepts events without a token \
                 (spec.runCompletionFeed.authentication.allowUnauthenticated); only a NetworkPolicy keeps other \
                 senders out. Turn it off once every provider service sends its token"
            );
        }
        Arc::new(Self {
            processor,
            auth: Authenticator::new(client, &feed.authentication, &config.system.watch_namespace),
            max_body_bytes: usize::try_from(feed.max_body_bytes).unwrap_or(usize::MAX),
            metrics,
        })
    }
}

/// A refused request: its status and a sentence saying why.
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl From<AuthError> for Refusal {
    fn from(error: AuthError) -> Self {
        let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, error.to_string())
    }
}

impl From<ProcessError> for Refusal {
    fn from(error: ProcessError) -> Self {
        Self::new(error.status(), error.to_string())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = axum::Json(serde_json::json!({ "error": self.message }));
        let mut response = (self.status, body).into_response();
        match self.status {
            StatusCode::METHOD_NOT_ALLOWED => {
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            StatusCode::UNAUTHORIZED => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

/// The feed's router: `/events`, anything else 404.
pub fn router(feed: Arc<Feed>) -> Router {
    Router::new()
        .route(ENDPOINT, any(events))
        .fallback(unknown_route)
        .layer(axum::middleware::from_fn(edge::body_deadline))
        .with_state(feed)
}

/// Serves [`router`] on `listener` until `shutdown` completes (then finishes the requests in flight).
pub async fn serve(
    listener: TcpListener,
    feed: Arc<Feed>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(edge::Listener::new(listener), router(feed))
        .with_graceful_shutdown(shutdown)
        .into_future()
        .await
}

async fn unknown_route(State(feed): State<Arc<Feed>>, request: Request) -> Response {
    feed.metrics
        .feed
        .request(request.method().as_str(), "unmatched", 404);
    Refusal::new(
        StatusCode::NOT_FOUND,
        format!(
            "no route for {} {}; events are posted to {ENDPOINT}",
            quote(request.method().as_str()),
            quote(request.uri().path())
        ),
    )
    .into_response()
}

async fn events(State(feed): State<Arc<Feed>>, request: Request) -> Response {
    let method = request.method().clone();
    let response = match accept(&feed, request).await {
        Ok(event) => (StatusCode::OK, axum::Json(event)).into_response(),
        Err(refusal) => {
            if refusal.status.is_server_error() {
                tracing::warn!(status = refusal.status.as_u16(), message = %refusal.message, "feed request failed");
            } else {
                tracing::info!(status = refusal.status.as_u16(), message = %refusal.message, "feed request refused");
            }
            refusal.into_response()
        }
    };
    feed.metrics
        .feed
        .request(method.as_str(), ENDPOINT, response.status().as_u16());
    response
}

/// The checks of the module docs, in order.
async fn accept(feed: &Feed, request: Request) -> Result<RunCompletionEvent, Refusal> {
    if request.method() != Method::POST {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "{} is not allowed on {ENDPOINT}: use POST",
                quote(request.method().as_str())
            ),
        ));
    }
    let headers = request.headers().clone();
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let identity = feed.auth.authenticate(authorization).await?;
    kfp_providers::service::require_json(&headers)
        .map_err(|message| Refusal::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message))?;
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than {} bytes (spec.runCompletionFeed.maxBodyBytes)",
                feed.max_body_bytes
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > feed.max_body_bytes) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(request.into_body(), feed.max_body_bytes)
        .await
        .map_err(|error| {
            let limit = std::error::Error::source(&error)
                .is_some_and(|source| source.to_string().contains("length limit"));
            if limit || error.to_string().contains("length limit") {
                too_large()
            } else {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {}", quote(&error.to_string())),
                )
            }
        })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "the request body is empty; expected a run completion event",
        ));
    }
    let event: RunCompletionEventData = serde_json::from_slice(&body).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the request body is not a valid run completion event: {}",
                quote(&e.to_string())
            ),
        )
    })?;
    feed.auth.authorize(&identity, &event.provider).await?;
    // Events accepted without a token are counted apart, so the end of a migration can be seen in the metrics.
    let source = match identity {
        Identity::Unauthenticated => "feed_unauthenticated",
        _ => "feed",
    };
    Ok(feed.processor.process(&event, source).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Over HTTP only 410 is dropped by the provider service (docs/provider-service.md, "Events"); in-process, errors
    /// that can never succeed (400, 403) are dropped too instead of being redelivered forever.
    #[test]
    fn errors_answer_and_settle_by_whether_a_retry_can_help() {
        let cases = [
            (ProcessError::NothingReferenced, 400, DeliveryOutcome::Rejected),
            (ProcessError::Invalid("x".into()), 400, DeliveryOutcome::Rejected),
            (ProcessError::Gone("x".into()), 410, DeliveryOutcome::Rejected),
            (
                ProcessError::Forbidden("x".into()),
                403,
                DeliveryOutcome::Rejected,
            ),
            (ProcessError::Api("x".into()), 500, DeliveryOutcome::Failed),
            (
                ProcessError::Publish(PublishError::NotConnected {
                    url: "nats://n".into(),
                }),
                500,
                DeliveryOutcome::Failed,
            ),
        ];
        for (error, status, outcome) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
            assert_eq!(error.outcome(), outcome, "{error}");
        }
    }
}
