//! The provider service: serves ANY [`Provider`] over the provider-service HTTP contract and forwards
//! its [`EventSource`] to the operator ([`crate::events`]). The contract is documented in
//! `docs/provider-service.openapi.yaml`.
//!
//! | request | success | errors (`{"providerError": "...", "id"?}`) |
//! |---|---|---|
//! | `POST /resource/{type}` | 201 `{"id"}` | 400, 404, 413, 500, 501 |
//! | `PUT /resource/{type}/{id}` | 200 `{"id"}` | the same, with the decoded `id`; `PUT /resource/run/{id}` is always 501 |
//! | `DELETE /resource/{type}/{id}` | 200 `{}` | 400, 404, 500, 501, with the decoded `id` |
//! | `GET /resource/{type}?namespace=&name=&version=&created=` | 200 `{"id"}`, `""` when there is none ([`Provider::find`]) | 400, 500, 501 |
//! | `GET /livez`, `GET /readyz` | 200 `ok` | |
//!
//! Status codes: 400 the body is not JSON of the expected shape, a name or parameter in it is longer than
//! Kubernetes allows ([`MAX_PARAMETER_VALUE_BYTES`]), the `{id}` does not decode or is longer than
//! [`MAX_ID_BYTES`], or the provider
//! answered [`ProviderError::Invalid`]; 404 unknown `{type}` or route, or [`ProviderError::NotFound`] (this
//! project's addition: the Go services never answer 404 from a provider); 413 the body is larger than
//! `SERVER_MAXBODYBYTES`; 501 [`ProviderError::Unimplemented`]; 500 [`ProviderError::Transient`]. `{id}` is
//! percent-decoded (`a%2Fb` is the id `a/b`). The body is read as JSON whatever its `Content-Type`, as the Go
//! services read it (docs/provider-service.md): clients that send none, or curl's form type, keep working.
//!
//! `GET /resource/{type}` is this project's addition (the Go services have no lookup and answer it 404 or 405,
//! which [`crate::http::HttpProvider`] reads as "cannot look up"): it finds the object a create made for a
//! resource, so an operator that lost an id neither creates twice nor leaks (docs/reliability.md "Exactly once").
//! `created` is the resource's `creationTimestamp` (RFC 3339, optional).
//!
//! Metrics ([`crate::metrics`]) are served on their own port at `GET /metrics`.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kfp_core::definitions::{
    ExperimentDefinition, PipelineDefinitionWrapper, ProviderOutput, RunDefinition, RunScheduleDefinition,
};
use kfp_core::provider::{EventSource, ObjectIdentity, Provider, ProviderError};
use kfp_core::registry::{ProviderRegistry, RegistryError};
use kfp_core::values::NamespacedName;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::ResourceKind;
use crate::config::{ServiceConfig, ServiceConfigError};
use crate::events::{WebhookSink, forward_events};
use crate::metrics::{self, ServiceMetrics};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The environment does not describe a provider service.
    #[error("invalid configuration: {0}")]
    Config(#[from] ServiceConfigError),
    /// The provider type is not in the registry, or its factory failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why not.
        source: std::io::Error,
    },
    /// The HTTP client for event forwarding could not be built.
    #[error("cannot build the webhook client: {0}")]
    Client(String),
    /// The HTTP server stopped with an error.
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
}

#[derive(Clone)]
struct AppState {
    provider: Arc<dyn Provider>,
}

/// An error answer.
struct ApiError {
    status: StatusCode,
    message: String,
    id: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            id: None,
        }
    }

    fn with_id(mut self, id: Option<&str>) -> Self {
        self.id = id.map(str::to_string);
        self
    }

    fn from_provider(error: ProviderError, id: Option<&str>) -> Self {
        let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, error.message()).with_id(id)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ProviderOutput {
            id: self.id.unwrap_or_default(),
            provider_error: self.message,
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// The API router (resources and probes) over `provider`, recording into `metrics`; bodies above
/// `max_body_bytes` are refused with 413.
pub fn router(provider: Arc<dyn Provider>, metrics: Arc<ServiceMetrics>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/resource/{type}", post(create).get(find))
        .route("/resource/{type}/{id}", put(update).delete(delete))
        .route("/livez", get(probe))
        .route("/readyz", get(probe))
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn(edge::body_deadline))
        .layer(middleware::from_fn_with_state(metrics, track))
        .with_state(AppState { provider })
}

/// The metrics router: `GET /metrics`.
pub fn metrics_router(metrics: Arc<ServiceMetrics>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(metrics)
}

async fn serve_metrics(State(metrics): State<Arc<ServiceMetrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        )],
        metrics.encode(),
    )
        .into_response()
}

async fn probe() -> &'static str {
    "ok"
}

async fn unknown_route(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no route for {} {}",
            edge::quote(request.method().as_str()),
            edge::quote(request.uri().path())
        ),
    )
}

/// The metrics `route` label of a path.
fn route_label(path: &str) -> String {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["resource", kind] | ["resource", kind, _] if kind.parse::<ResourceKind>().is_ok() => {
            format!("resource/{kind}")
        }
        ["livez"] => "livez".into(),
        ["readyz"] => "readyz".into(),
        _ => "unmatched".into(),
    }
}

async fn track(State(metrics): State<Arc<ServiceMetrics>>, request: Request, next: Next) -> Response {
    let route = route_label(request.uri().path());
    let method = request.method().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.observe_request(&route, &method, response.status().as_u16(), start.elapsed());
    response
}

fn kind(raw: &str) -> Result<ResourceKind, ApiError> {
    raw.parse()
        .map_err(|e: kfp_core::executor::ExecutorError| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))
}

/// The longest `{id}` taken: the platforms' ids are far shorter (KFP's are UUIDs, Vertex AI's resource names about
/// 130 bytes), so a longer one can only be refused later, after a call to the platform.
pub const MAX_ID_BYTES: usize = 1024;

/// Refuses an `{id}` longer than [`MAX_ID_BYTES`] with 400, naming the bound and not echoing the id.
/// The longest parameter value a definition may carry: every definition comes from a Kubernetes object, which
/// holds at most 1.5 MiB, so a longer value is no operator's (issue 17: bounded where the platform would refuse).
pub const MAX_PARAMETER_VALUE_BYTES: usize = 1024 * 1024;
/// The longest parameter name (a Kubernetes name's bound).
pub const MAX_PARAMETER_NAME_BYTES: usize = 253;

/// Refuses a definition whose names or parameters exceed what Kubernetes allows (namespace 63 bytes, name 253,
/// parameter names 253, values [`MAX_PARAMETER_VALUE_BYTES`]), naming the field, its length and the bound.
fn check_bounds<'a>(
    names: &[(&str, &NamespacedName)],
    parameters: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<(), ApiError> {
    let too_long = |field: String, length: usize, bound: usize| {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{field} is {length} bytes long; at most {bound} are accepted"),
        ))
    };
    for (field, name) in names {
        if name.namespace.len() > 63 {
            return too_long(format!("{field} (its namespace)"), name.namespace.len(), 63);
        }
        if name.name.len() > 253 {
            return too_long(format!("{field} (its name)"), name.name.len(), 253);
        }
    }
    for (name, value) in parameters {
        if name.len() > MAX_PARAMETER_NAME_BYTES {
            return too_long(
                format!("the name of parameter {}", edge::quote(name)),
                name.len(),
                MAX_PARAMETER_NAME_BYTES,
            );
        }
        if value.len() > MAX_PARAMETER_VALUE_BYTES {
            return too_long(
                format!("parameters.{}", edge::quote(name)),
                value.len(),
                MAX_PARAMETER_VALUE_BYTES,
            );
        }
    }
    Ok(())
}

fn check_run(run: &RunDefinition) -> Result<(), ApiError> {
    check_bounds(
        &[
            ("name", &run.name),
            ("pipelineName", &run.pipeline_name),
            ("runConfigurationName", &run.run_configuration_name),
            ("experimentName", &run.experiment_name),
        ],
        &run.parameters,
    )
}

fn check_run_schedule(schedule: &RunScheduleDefinition) -> Result<(), ApiError> {
    check_bounds(
        &[
            ("name", &schedule.name),
            ("pipelineName", &schedule.pipeline_name),
            ("runConfigurationName", &schedule.run_configuration_name),
            ("experimentName", &schedule.experiment_name),
        ],
        &schedule.parameters,
    )
}

fn check_experiment(experiment: &ExperimentDefinition) -> Result<(), ApiError> {
    check_bounds(&[("name", &experiment.name)], std::iter::empty())
}

fn check_pipeline(pipeline: &PipelineDefinitionWrapper) -> Result<(), ApiError> {
    let name = pipeline.pipeline_definition["name"]
        .as_str()
        .and_then(|n| n.parse::<NamespacedName>().ok())
        .unwrap_or_default();
    check_bounds(&[("pipelineDefinition.name", &name)], std::iter::empty())
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.len() > MAX_ID_BYTES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the {{id}} in the path is {} bytes long; at most {MAX_ID_BYTES} are accepted",
                id.len()
            ),
        ));
    }
    Ok(())
}

fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!(
            "the request path cannot be decoded: {}",
            edge::quote(&rejection.body_text())
        ),
    )
}

/// Whether the `Content-Type` is JSON (`application/json` or `application/*+json`, parameters ignored).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let mime = v
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// `Ok` when the `Content-Type` is JSON ([`is_json`]); else the message of a 415 answer, naming what was sent. For
/// servers that insist on the header, as the operator's run-completion feed does (the provider service does not).
pub fn require_json(headers: &HeaderMap) -> Result<(), String> {
    if is_json(headers) {
        return Ok(());
    }
    let found = headers
        .get(header::CONTENT_TYPE)
        .map(|v| format!("{:?}", edge::quote(&String::from_utf8_lossy(v.as_bytes()))))
        .unwrap_or_else(|| "none".into());
    Err(format!(
        "the request body must be application/json; Content-Type was {found}"
    ))
}

/// Decodes the body as `T` (`what` names it in messages), whatever the `Content-Type` says.
fn decode<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>, what: &str) -> Result<T, ApiError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "the request body is larger than the service accepts (SERVER_MAXBODYBYTES)".to_string()
        } else {
            format!(
                "cannot read the request body: {}",
                edge::quote(&rejection.body_text())
            )
        };
        ApiError::new(status, message)
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the request body is empty; expected a {what}"),
        ));
    }
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the request body is not a valid {what}: {}",
                edge::quote(&e.to_string())
            ),
        )
    })
}

async fn create(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Path(raw_kind) = path.map_err(path_error)?;
    let provider = &state.provider;
    let result = match kind(&raw_kind)? {
        ResourceKind::Pipeline => {
            let pipeline: PipelineDefinitionWrapper = decode(body, "PipelineDefinitionWrapper")?;
            check_pipeline(&pipeline)?;
            provider.create_pipeline(&pipeline).await
        }
        ResourceKind::Run => {
            let run: RunDefinition = decode(body, "RunDefinition")?;
            check_run(&run)?;
            provider.create_run(&run).await
        }
        ResourceKind::RunSchedule => {
            let schedule: RunScheduleDefinition = decode(body, "RunScheduleDefinition")?;
            check_run_schedule(&schedule)?;
            provider.create_run_schedule(&schedule).await
        }
        ResourceKind::Experiment => {
            let experiment: ExperimentDefinition = decode(body, "ExperimentDefinition")?;
            check_experiment(&experiment)?;
            provider.create_experiment(&experiment).await
        }
    };
    let id = result.map_err(|e| ApiError::from_provider(e, None))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(ProviderOutput {
            id,
            ..ProviderOutput::default()
        }),
    )
        .into_response())
}

async fn update(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Path((raw_kind, id)) = path.map_err(path_error)?;
    check_id(&id)?;
    let provider = &state.provider;
    let with_id = |e: ApiError| e.with_id(Some(&id));
    let result = match kind(&raw_kind)? {
        ResourceKind::Pipeline => {
            let pipeline: PipelineDefinitionWrapper =
                decode(body, "PipelineDefinitionWrapper").map_err(with_id)?;
            check_pipeline(&pipeline).map_err(with_id)?;
            provider.update_pipeline(&pipeline, &id).await
        }
        ResourceKind::Run => Err(ProviderError::unimplemented(
            "runs cannot be updated: PUT /resource/run is not implemented",
        )),
        ResourceKind::RunSchedule => {
            let schedule: RunScheduleDefinition = decode(body, "RunScheduleDefinition").map_err(with_id)?;
            check_run_schedule(&schedule).map_err(with_id)?;
            provider.update_run_schedule(&schedule, &id).await
        }
        ResourceKind::Experiment => {
            let experiment: ExperimentDefinition = decode(body, "ExperimentDefinition").map_err(with_id)?;
            check_experiment(&experiment).map_err(with_id)?;
            provider.update_experiment(&experiment, &id).await
        }
    };
    let new_id = result.map_err(|e| ApiError::from_provider(e, Some(&id)))?;
    Ok((
        StatusCode::OK,
        axum::Json(ProviderOutput {
            id: new_id,
            ..ProviderOutput::default()
        }),
    )
        .into_response())
}

async fn delete(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path((raw_kind, id)) = path.map_err(path_error)?;
    check_id(&id)?;
    let provider = &state.provider;
    let result = match kind(&raw_kind)? {
        ResourceKind::Pipeline => provider.delete_pipeline(&id).await,
        ResourceKind::Run => provider.delete_run(&id).await,
        ResourceKind::RunSchedule => provider.delete_run_schedule(&id).await,
        ResourceKind::Experiment => provider.delete_experiment(&id).await,
    };
    result.map_err(|e| ApiError::from_provider(e, Some(&id)))?;
    Ok((StatusCode::OK, axum::Json(serde_json::json!({}))).into_response())
}

/// The query of `GET /resource/{type}`: the resource whose object to find.
#[derive(Debug, serde::Deserialize)]
struct FindQuery {
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    created: Option<String>,
}

async fn find(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<axum::extract::Query<FindQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(raw_kind) = path.map_err(path_error)?;
    let kind = kind(&raw_kind)?;
    let axum::extract::Query(query) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the lookup query is invalid: {}", edge::quote(&e.body_text())),
        )
    })?;
    if query.name.is_empty()
        || query.name.len() > 253
        || query.namespace.len() > 63
        || query.version.len() > 1024
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "a lookup needs name (at most 253 bytes), and namespace (at most 63) and version (at most 1024) \
             when given",
        ));
    }
    let created = match query.created.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(text) => Some(
            serde_json::from_value::<Time>(serde_json::Value::String(text.to_string())).map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("created {} is not an RFC 3339 time", edge::quote(text)),
                )
            })?,
        ),
    };
    let identity = ObjectIdentity::new(
        kind,
        NamespacedName::new(query.namespace, query.name),
        query.version,
        created,
    );
    let found = state
        .provider
        .find(&identity)
        .await
        .map_err(|e| ApiError::from_provider(e, None))?;
    // `{"id": ""}` when there is none: an empty id is written, unlike in ProviderOutput.
    Ok((
        StatusCode::OK,
        axum::Json(serde_json::json!({"id": found.unwrap_or_default()})),
    )
        .into_response())
}

/// A provider service bound to its ports, not yet serving.
pub struct ProviderServer {
    api: TcpListener,
    metrics_listener: TcpListener,
    app: Router,
    metrics_app: Router,
    metrics: Arc<ServiceMetrics>,
    forwarder: Option<(Box<dyn EventSource>, WebhookSink)>,
}

impl ProviderServer {
    /// Binds the API and metrics ports of `config` (port 0 picks a free one) for `provider`. If `events` is given
    /// and `config.operator_webhook` is set, the events are forwarded there while the server runs.
    pub async fn bind(
        config: &ServiceConfig,
        provider: Arc<dyn Provider>,
        events: Option<Box<dyn EventSource>>,
    ) -> Result<Self, ServiceError> {
        let metrics = ServiceMetrics::new();
        let listen = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServiceError::Bind { addr, source })
        };
        let api = listen(config.server_addr()).await?;
        let metrics_listener = listen(config.metrics_addr()).await?;
        let forwarder = match (events, &config.operator_webhook) {
            (Some(source), Some(url)) => {
                let sink = WebhookSink::new(
                    url,
                    &config.webhook_token_file,
                    config.webhook_retry,
                    metrics.clone(),
                )
                .map_err(|e| ServiceError::Client(crate::http::error_chain(&e)))?;
                Some((source, sink))
            }
            _ => None,
        };
        Ok(Self {
            api,
            metrics_listener,
            app: router(provider, metrics.clone(), config.max_body_bytes),
            metrics_app: metrics_router(metrics.clone()),
            metrics,
            forwarder,
        })
    }

    /// Where the API listens.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.api.local_addr()
    }

    /// Where `/metrics` listens.
    pub fn metrics_addr(&self) -> std::io::Result<SocketAddr> {
        self.metrics_listener.local_addr()
    }

    /// The service's metrics.
    pub fn metrics(&self) -> Arc<ServiceMetrics> {
        self.metrics.clone()
    }

    /// Whether events are forwarded.
    pub fn forwards_events(&self) -> bool {
        self.forwarder.is_some()
    }

    /// Serves until `shutdown` completes, then stops accepting, finishes the requests in flight and stops the
    /// event forwarding (an event being retried is settled as failed, so its source keeps it).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServiceError> {
        let (tx, rx) = watch::channel(false);
        let tx = Arc::new(tx);
        let signal_tx = tx.clone();
        let signal = tokio::spawn(async move {
            shutdown.await;
            let _ = signal_tx.send(true);
        });
        let forwarder = self.forwarder.map(|(source, sink)| {
            let retry = sink.retry();
            tokio::spawn(forward_events(source, sink, retry, rx.clone()))
        });
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let api =
            axum::serve(edge::Listener::new(self.api), self.app).with_graceful_shutdown(stopped(rx.clone()));
        let metrics = axum::serve(edge::Listener::new(self.metrics_listener), self.metrics_app)
            .with_graceful_shutdown(stopped(rx.clone()));
        let api_tx = tx.clone();
        let api = async move {
            let result = api.into_future().await;
            let _ = api_tx.send(true);
            result
        };
        let metrics_tx = tx.clone();
        let metrics = async move {
            let result = metrics.into_future().await;
            let _ = metrics_tx.send(true);
            result
        };
        let (api, metrics) = tokio::join!(api, metrics);
        let _ = tx.send(true);
        signal.abort();
        if let Some(forwarder) = forwarder {
            let _ = forwarder.await;
        }
        api.map_err(ServiceError::Serve)?;
        metrics.map_err(ServiceError::Serve)
    }
}

/// Builds the provider `provider_type` from `registry` with `config` (and its event source, when
/// `OPERATORWEBHOOK` is set and the type has one) and serves it until `shutdown`.
pub async fn run(
    registry: &ProviderRegistry,
    provider_type: &str,
    config: &ServiceConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServiceError> {
    let provider = registry.build(provider_type, &config.provider)?;
    let events = match &config.operator_webhook {
        None => {
            tracing::info!("OPERATORWEBHOOK is not set: run-completion events are not forwarded");
            None
        }
        Some(_) => match registry.build_event_source(provider_type, &config.provider) {
            Ok(source) => Some(source),
            Err(RegistryError::NoEventSource { .. }) => {
                tracing::info!(provider_type, "this provider type has no event source");
                None
            }
            Err(e) => return Err(e.into()),
        },
    };
    let server = ProviderServer::bind(config, provider, events).await?;
    tracing::info!(
        provider = %config.provider.name,
        provider_type,
        api = %server.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        metrics = %server.metrics_addr().map(|a| a.to_string()).unwrap_or_default(),
        forwards_events = server.forwards_events(),
        "provider service started"
    );
    server.run(shutdown).await
}

/// Reads [`ServiceConfig`] from the process environment and serves `provider_type` until SIGTERM or ctrl-c.
pub async fn run_from_env(registry: &ProviderRegistry, provider_type: &str) -> Result<(), ServiceError> {
    let config = ServiceConfig::from_process_env()?;
    run(registry, provider_type, &config, shutdown_signal()).await
}

/// Completes on SIGTERM or ctrl-c (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// What every HTTP server of the project does at its edge, whatever it is sent (issue 17): answer before it
/// closes, and quote only a bounded part of the input.
///
/// A server that answers a request without reading its whole body (a 401, 404, 405, 413 decided from the head)
/// and then closes the connection leaves the unread bytes in the socket's receive buffer; the kernel then resets
/// the connection, and the reset can reach the client before it read the answer: the client sees "connection
/// reset" (or a TLS error) instead of the status. [`Listener`](edge::Listener) wraps each accepted connection in a
/// [`Connection`](edge::Connection) that closes gracefully: it sends its FIN first, then reads and discards what
/// the client still sends for up to [`LINGER`](edge::LINGER) (or [`LINGER_BYTES`](edge::LINGER_BYTES)), so the
/// answer is read before the socket goes away.
pub mod edge {
    use std::io;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::task::{Context, Poll, ready};
    use std::time::Duration;

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::Sleep;

    /// The longest a closing connection keeps reading what the client still sends.
    pub const LINGER: Duration = Duration::from_secs(2);
    /// The most a closing connection reads and discards.
    pub const LINGER_BYTES: usize = 64 * 1024 * 1024;
    /// The longest a request's body may pause before the request is answered with an error: a client that
    /// stalls mid-body gets its answer (400) within this bound instead of holding the handler forever.
    pub const BODY_IDLE: Duration = Duration::from_secs(5);

    /// Middleware (`axum::middleware::from_fn(edge::body_deadline)`): the request's body ends with an error when
    /// no data comes for [`BODY_IDLE`], so the handler reading it answers.
    pub async fn body_deadline(
        request: axum::extract::Request,
        next: axum::middleware::Next,
    ) -> axum::response::Response {
        use futures::StreamExt;
        let (parts, body) = request.into_parts();
        let timed = futures::stream::unfold(Some(body.into_data_stream()), |state| async move {
            let mut frames = state?;
            match tokio::time::timeout(BODY_IDLE, frames.next()).await {
                Ok(Some(frame)) => Some((frame, Some(frames))),
                Ok(None) => None,
                Err(_) => Some((
                    Err(axum::Error::new(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no request body data for {} s", BODY_IDLE.as_secs()),
                    ))),
                    None,
                )),
            }
        });
        next.run(axum::extract::Request::from_parts(
            parts,
            axum::body::Body::from_stream(timed),
        ))
        .await
    }

    /// The most of a client's input an answer or a log line quotes.
    pub const QUOTE_BYTES: usize = 200;

    /// At most [`QUOTE_BYTES`] of `text` (cut at a character boundary), saying how long it was when cut.
    pub fn quote(text: &str) -> String {
        if text.len() <= QUOTE_BYTES {
            return text.to_string();
        }
        let mut cut = QUOTE_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}... ({} bytes)", &text[..cut], text.len())
    }

    /// A TCP listener for `axum::serve` whose connections close gracefully ([`Connection`]).
    #[derive(Debug)]
    pub struct Listener(TcpListener);

    impl Listener {
        /// Wraps `listener`.
        pub fn new(listener: TcpListener) -> Self {
            Self(listener)
        }
    }

    impl axum::serve::Listener for Listener {
        type Io = Connection<TcpStream>;
        type Addr = SocketAddr;

        async fn accept(&mut self) -> (Self::Io, Self::Addr) {
            loop {
                match self.0.accept().await {
                    Ok((stream, peer)) => return (Connection::new(stream), peer),
                    Err(error) => {
                        // Out of file descriptors and the like: say so, and give the system a moment.
                        tracing::warn!(%error, "could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }

        fn local_addr(&self) -> io::Result<SocketAddr> {
            self.0.local_addr()
        }
    }

    /// The longest a client may take to send a request's head once it started it: a client that stalls inside its
    /// headers is answered 408 and the connection closed (issue 17), instead of being held until it goes.
    pub const HEAD_DEADLINE: Duration = Duration::from_secs(10);

    /// The answer to a head not completed within [`HEAD_DEADLINE`].
    const HEAD_TIMEOUT_ANSWER: &[u8] = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n\
        content-length: 56\r\nconnection: close\r\n\r\n{\"providerError\":\"no complete request head within 10 s\"}";

    /// A connection that, when shut down, lingers, and that answers a stalled request head: see the
    /// [module](self) documentation and [`HEAD_DEADLINE`].
    #[derive(Debug)]
    pub struct Connection<S> {
        stream: S,
        closing: Option<Closing>,
        head: Head,
    }

    /// Where the connection stands in reading a request head. A head starts with the first byte read while
    /// awaiting one (at the start and after each answer written) and ends at `\r\n\r\n`.
    #[derive(Debug)]
    struct Head {
        awaiting: bool,
        /// How much of `\r\n\r\n` the bytes read so far end with.
        matched: usize,
        deadline: Option<Pin<Box<Sleep>>>,
        /// The 408 being written, and how much of it is out.
        answering: Option<usize>,
    }

    impl Head {
        fn new() -> Self {
            Self {
                awaiting: true,
                matched: 0,
                deadline: None,
                answering: None,
            }
        }

        /// Follows the bytes read while awaiting a head.
        fn read(&mut self, bytes: &[u8]) {
            if !self.awaiting || bytes.is_empty() {
                return;
            }
            if self.deadline.is_none() {
                self.deadline = Some(Box::pin(tokio::time::sleep(HEAD_DEADLINE)));
            }
            const END: &[u8] = b"\r\n\r\n";
            for &byte in bytes {
                self.matched = if byte == END[self.matched] {
                    self.matched + 1
                } else if byte == END[0] {
                    1
                } else {
                    0
                };
                if self.matched == END.len() {
                    // The body (if any) has its own deadline (`body_deadline`).
                    self.awaiting = false;
                    self.deadline = None;
                    self.matched = 0;
                    return;
                }
            }
        }

        /// An answer was written: the next bytes start a new head.
        fn answered(&mut self) {
            self.awaiting = true;
            self.matched = 0;
            self.deadline = None;
        }
    }

    #[derive(Debug)]
    struct Closing {
        deadline: Pin<Box<Sleep>>,
        drained: usize,
    }

    impl<S> Connection<S> {
        /// Wraps `stream`.
        pub fn new(stream: S) -> Self {
            Self {
                stream,
                closing: None,
                head: Head::new(),
            }
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Connection<S> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = &mut *self;
            if let Some(written) = this.head.answering {
                // The head timed out: write the 408, then read as the end of the stream, so the server closes.
                let mut written = written;
                while written < HEAD_TIMEOUT_ANSWER.len() {
                    match ready!(Pin::new(&mut this.stream).poll_write(cx, &HEAD_TIMEOUT_ANSWER[written..])) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            written += n;
                            this.head.answering = Some(written);
                        }
                    }
                }
                let _ = Pin::new(&mut this.stream).poll_flush(cx);
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            match Pin::new(&mut this.stream).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => {
                    this.head.read(&buf.filled()[before..]);
                    if this.head.deadline.as_ref().is_some_and(|d| d.is_elapsed()) {
                        // A head trickled in too slowly: the next read answers it.
                        this.head.deadline = None;
                        this.head.answering = Some(0);
                    }
                    Poll::Ready(Ok(()))
                }
                Poll::Pending => {
                    if let Some(deadline) = this.head.deadline.as_mut()
                        && deadline.as_mut().poll(cx).is_ready()
                    {
                        this.head.deadline = None;
                        this.head.answering = Some(0);
                        tracing::info!(
                            "a client did not complete its request head within {HEAD_DEADLINE:?}: answered 408"
                        );
                        cx.waker().wake_by_ref();
                    }
                    Poll::Pending
                }
                other => other,
            }
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Connection<S> {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let this = &mut *self;
            let written = ready!(Pin::new(&mut this.stream).poll_write(cx, buf));
            if matches!(written, Ok(n) if n > 0) {
                this.head.answered();
            }
            Poll::Ready(written)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.stream).poll_flush(cx)
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let this = &mut *self;
            let written = ready!(Pin::new(&mut this.stream).poll_write_vectored(cx, bufs));
            if matches!(written, Ok(n) if n > 0) {
                this.head.answered();
            }
            Poll::Ready(written)
        }

        fn is_write_vectored(&self) -> bool {
            self.stream.is_write_vectored()
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let this = &mut *self;
            if this.closing.is_none() {
                ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
                this.closing = Some(Closing {
                    deadline: Box::pin(tokio::time::sleep(LINGER)),
                    drained: 0,
                });
            }
            let Some(closing) = this.closing.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let mut scratch = [0u8; 8192];
            loop {
                if closing.drained >= LINGER_BYTES || closing.deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Ok(()));
                }
                let mut buf = ReadBuf::new(&mut scratch);
                match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                    Poll::Ready(Ok(())) => closing.drained += buf.filled().len(),
                    // The client is gone: nothing left to protect.
                    Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels() {
        assert_eq!(route_label("/resource/run"), "resource/run");
        assert_eq!(route_label("/resource/runschedule/a%2Fb"), "resource/runschedule");
        assert_eq!(route_label("/resource/model/x"), "unmatched");
        assert_eq!(route_label("/livez"), "livez");
        assert_eq!(route_label("/"), "unmatched");
    }

    #[test]
    fn json_content_types() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_json(&headers), ok, "{value}");
        }
    }
}
