//! The Vertex AI provider (docs/providers/vertex-ai.md): Cloud Storage JSON API for compiled pipelines, the
//! `aiplatform` v1 REST API for pipeline jobs and schedules, with reqwest.
//!
//! | operation | REST calls |
//! |---|---|
//! | create/update pipeline | `POST /upload/storage/v1/b/<bucket>/o?uploadType=media&name=<ns>/<name>/<version>`; id `<ns>/<name>` |
//! | delete pipeline | `GET /storage/v1/b/<bucket>/o?prefix=<id>/` + `DELETE .../o/<object>` each; NotFound ignored |
//! | create run | `GET .../o/<object>?alt=media`, `POST /v1/projects/<p>/locations/<l>/pipelineJobs?pipelineJobId=<ns>-<run>-<version>`; id `<ns>-<run>` |
//! | delete run | nothing |
//! | create run schedule | `POST /v1/projects/<p>/locations/<l>/schedules`; id = the schedule's resource name |
//! | update run schedule | `PATCH /v1/<id>?updateMask=...` of the given id (the Go provider ignored it) |
//! | delete run schedule | `DELETE /v1/<id>`, then the long-running operation is polled (bounded); NotFound ignored |
//! | experiments | [`ProviderError::Unimplemented`] |
//! | find pipeline | `GET /storage/v1/b/<bucket>/o?prefix=<ns>/<name>/&maxResults=1`: an object: `<ns>/<name>` |
//! | find run | `GET /v1/projects/<p>/locations/<l>/pipelineJobs/<ns>-<run>-<version>` (404: `None`): `<ns>-<run>` when its `createTime` is no earlier than the resource (whole seconds) |
//! | find run schedule | `GET /v1/projects/<p>/locations/<l>/schedules?filter=display_name="rc-<ns>-<name>"`: the newest one's resource name |
//! | find experiment | [`ProviderError::Unimplemented`] |
//!
//! Errors: HTTP 400/409/422 are [`ProviderError::Invalid`], 404 [`ProviderError::NotFound`], 5xx, timeouts and
//! transport errors [`ProviderError::Transient`]. A repeated `create_run` whose job exists (409) returns the id.
//!
//! Auth (the private `auth` module): a bearer token from `accessToken`, else the file `accessTokenFile` (read per
//! request), else Google's `google-cloud-auth` crate: the credentials file `credentialsFile` (service-account key,
//! workload identity federation, ...), the metadata server at `metadataEndpoint`, else Application Default
//! Credentials. Tokens are never logged ([`AccessToken`] hides itself from `Debug`).
//!
//! See `docs/providers/vertex-ai.md` for the parameters.

mod auth;
pub mod events;
#[cfg(any(test, feature = "fakes"))]
pub mod fake;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kfp_core::definitions::{
    ExperimentDefinition, PipelineDefinitionWrapper, RunDefinition, RunScheduleDefinition,
};
use kfp_core::executor::ResourceKind;
use kfp_core::pipeline_spec::{input_parameters, typed_parameters};
use kfp_core::provider::{ObjectIdentity, Provider, ProviderConfig, ProviderError};
use kfp_core::values::{CronExpression, NamespacedName};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Map, Value, json};

use crate::kfp::pipeline::RunLabels;

/// The provider type name in the registry.
pub const PROVIDER_TYPE: &str = "vai";
/// Default of `gcsEndpoint`.
pub const DEFAULT_GCS_ENDPOINT: &str = "https://storage.googleapis.com";
/// The metadata server Application Default Credentials fall back to (unless `GCE_METADATA_HOST` names another).
pub const DEFAULT_METADATA_ENDPOINT: &str = "http://metadata.google.internal";
/// Default of `pubsubEndpoint`.
pub const DEFAULT_PUBSUB_ENDPOINT: &str = "https://pubsub.googleapis.com";
/// Default (and replacement of values <= 0) of `maxConcurrentRunCount`.
pub const DEFAULT_MAX_CONCURRENT_RUN_COUNT: i64 = 10;
/// Labels are cut to this length (Google's limit for label keys and values).
pub const MAX_LABEL_LENGTH: usize = 63;

/// Where "now" comes from (schedule start times); injectable so tests are deterministic.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// The provider's settings, read from the Provider resource's parameters by [`VaiConfig::from_provider_config`].
#[derive(Debug, Clone, PartialEq)]
pub struct VaiConfig {
    /// The Provider resource, `namespace/name`: named in every event.
    pub provider: NamespacedName,
    /// `spec.pipelineRootStorage`: jobs get `gcsOutputDirectory = <this>/<pipeline ns>/<pipeline name>`.
    pub pipeline_root_storage: String,
    /// `vaiProject` (required).
    pub project: String,
    /// `vaiLocation` (required).
    pub location: String,
    /// `vaiJobServiceAccount`.
    pub job_service_account: String,
    /// `pipelineBucket` (required): where compiled pipelines are kept.
    pub pipeline_bucket: String,
    /// `gcsEndpoint` (emulators), default [`DEFAULT_GCS_ENDPOINT`].
    pub gcs_endpoint: String,
    /// `aiplatformEndpoint`, default `https://<location>-aiplatform.googleapis.com`.
    pub aiplatform_endpoint: String,
    /// `maxConcurrentRunCount` of schedules (<= 0 or absent: 10).
    pub max_concurrent_run_count: i64,
    /// `pscNetworkAttachment`: jobs get `pscInterfaceConfig.networkAttachment` when set.
    pub psc_network_attachment: String,
    /// `accessToken`: a static bearer token.
    pub access_token: Option<AccessToken>,
    /// `accessTokenFile`: a file holding the bearer token, read on every request.
    pub access_token_file: Option<PathBuf>,
    /// `credentialsFile`: a Google credentials file (service-account key, external account / workload identity
    /// federation, authorized user, impersonated service account), used instead of Application Default
    /// Credentials.
    pub credentials_file: Option<PathBuf>,
    /// `metadataEndpoint`: take tokens from the metadata server at this URL instead of Application Default
    /// Credentials (tests, non-standard setups). None: ADC, whose last resort is [`DEFAULT_METADATA_ENDPOINT`].
    pub metadata_endpoint: Option<String>,
    /// `eventsourcePipelineEventsSubscription`: the Pub/Sub subscription of the event source (a name in
    /// `vaiProject`, or `projects/<p>/subscriptions/<s>`).
    pub events_subscription: String,
    /// `pubsubEndpoint`, default [`DEFAULT_PUBSUB_ENDPOINT`].
    pub pubsub_endpoint: String,
    /// `requestTimeoutSeconds` (default 30).
    pub request_timeout: Duration,
    /// `operationTimeoutSeconds` (default 60): how long a delete waits for its long-running operation.
    pub operation_timeout: Duration,
    /// How often a long-running operation is polled (default 1 s).
    pub operation_poll_interval: Duration,
}

/// A static bearer token (`accessToken`) whose `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// The token itself, for the `Authorization` header.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<hidden>)")
    }
}

impl From<&str> for AccessToken {
    fn from(token: &str) -> Self {
        Self(token.to_string())
    }
}

impl From<String> for AccessToken {
    fn from(token: String) -> Self {
        Self(token)
    }
}

impl VaiConfig {
    /// The settings for `project`, `location` and `bucket` with every other value at its default (tests,
    /// embedding).
    pub fn new(provider: NamespacedName, project: &str, location: &str, bucket: &str) -> Self {
        Self {
            provider,
            pipeline_root_storage: String::new(),
            project: project.to_string(),
            location: location.to_string(),
            job_service_account: String::new(),
            pipeline_bucket: bucket.to_string(),
            gcs_endpoint: DEFAULT_GCS_ENDPOINT.to_string(),
            aiplatform_endpoint: format!("https://{location}-aiplatform.googleapis.com"),
            max_concurrent_run_count: DEFAULT_MAX_CONCURRENT_RUN_COUNT,
            psc_network_attachment: String::new(),
            access_token: None,
            access_token_file: None,
            credentials_file: None,
            metadata_endpoint: None,
            events_subscription: String::new(),
            pubsub_endpoint: DEFAULT_PUBSUB_ENDPOINT.to_string(),
            request_timeout: Duration::from_secs(30),
            operation_timeout: Duration::from_secs(60),
            operation_poll_interval: Duration::from_secs(1),
        }
    }

    /// Reads the parameters (case-insensitive keys), see the module docs and `docs/providers/vertex-ai.md`.
    pub fn from_provider_config(config: &ProviderConfig) -> Result<Self, ProviderError> {
        let text = |key: &str| config.parameter_string(key).filter(|v| !v.is_empty());
        let required = |key: &str| {
            text(key).ok_or_else(|| ProviderError::invalid(format!("parameter {key} is required")))
        };
        let location = required("vaiLocation")?;
        let mut vai = Self::new(
            config.name.clone(),
            &required("vaiProject")?,
            &location,
            &required("pipelineBucket")?,
        );
        vai.pipeline_root_storage = config.pipeline_root_storage.clone();
        if let Some(v) = text("vaiJobServiceAccount") {
            vai.job_service_account = v;
        }
        if let Some(v) = text("gcsEndpoint") {
            vai.gcs_endpoint = v;
        }
        if let Some(v) = text("aiplatformEndpoint") {
            vai.aiplatform_endpoint = v;
        }
        if let Some(v) = text("pscNetworkAttachment") {
            vai.psc_network_attachment = v;
        }
        if let Some(v) = text("maxConcurrentRunCount") {
            let n: i64 = v.parse().map_err(|_| {
                ProviderError::invalid(format!(
                    "parameter maxConcurrentRunCount is {v:?}; expected a whole number"
                ))
            })?;
            vai.max_concurrent_run_count = if n <= 0 {
                DEFAULT_MAX_CONCURRENT_RUN_COUNT
            } else {
                n
            };
        }
        vai.access_token = text("accessToken").map(AccessToken::from);
        vai.access_token_file = text("accessTokenFile").map(PathBuf::from);
        vai.credentials_file = text("credentialsFile").map(PathBuf::from);
        vai.metadata_endpoint = text("metadataEndpoint");
        if let Some(v) = text("eventsourcePipelineEventsSubscription") {
            vai.events_subscription = v;
        }
        if let Some(v) = text("pubsubEndpoint") {
            vai.pubsub_endpoint = v;
        }
        let seconds = |key: &str| -> Result<Option<Duration>, ProviderError> {
            text(key)
                .map(|v| {
                    v.parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .map(Duration::from_secs)
                        .ok_or_else(|| {
                            ProviderError::invalid(format!(
                                "parameter {key} is {v:?}; expected a positive whole number"
                            ))
                        })
                })
                .transpose()
        };
        if let Some(d) = seconds("requestTimeoutSeconds")? {
            vai.request_timeout = d;
        }
        if let Some(d) = seconds("operationTimeoutSeconds")? {
            vai.operation_timeout = d;
        }
        Ok(vai)
    }

    fn parent(&self) -> String {
        format!("projects/{}/locations/{}", self.project, self.location)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------------------------

pub(crate) struct Client {
    http: reqwest::Client,
    config: VaiConfig,
    clock: Clock,
    auth: auth::Auth,
}

/// A failed request: the status (0 for transport errors) and the error.
pub(crate) struct Failure {
    pub status: u16,
    pub error: ProviderError,
}

impl From<Failure> for ProviderError {
    fn from(f: Failure) -> Self {
        f.error
    }
}

impl Client {
    pub(crate) fn new(config: VaiConfig, clock: Clock) -> Result<Self, ProviderError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| ProviderError::invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            auth: auth::Auth::new(&config),
            config,
            clock,
        })
    }

    async fn send(&self, request: RequestBuilder, what: &str) -> Result<Response, Failure> {
        let transient = |error| Failure { status: 0, error };
        let token = self.auth.token().await.map_err(transient)?;
        let response = request.bearer_auth(token).send().await.map_err(|e| {
            let kind = if e.is_timeout() { "timed out" } else { "failed" };
            transient(ProviderError::transient(format!(
                "Vertex AI request {what} {kind}: {}",
                error_chain(&e)
            )))
        })?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        if status == 401 {
            // A revoked or expired token: the next attempt fetches a fresh one.
            self.auth.forget();
        }
        let body = response.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.trim().chars().take(500).collect());
        let message = format!("Google Cloud answered HTTP {status} to {what}: {detail}");
        let error = match status {
            400 | 409 | 422 => ProviderError::invalid(message),
            404 => ProviderError::not_found(message),
            500..=599 => ProviderError::transient(message),
            _ => ProviderError::from_http_status(status, message),
        };
        Err(Failure { status, error })
    }

    pub(crate) async fn json(
        &self,
        method: Method,
        url: String,
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        let what = format!("{method} {}", url.split('?').next().unwrap_or_default());
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = self.send(request, &what).await?;
        let bytes = response.bytes().await.map_err(|e| Failure {
            status: 0,
            error: ProviderError::transient(format!(
                "reading the answer to {what} failed: {}",
                error_chain(&e)
            )),
        })?;
        if bytes.is_empty() {
            return Ok(Value::Object(Map::new()));
        }
        serde_json::from_slice(&bytes).map_err(|e| Failure {
            status: 0,
            error: ProviderError::transient(format!("the answer to {what} is not JSON: {e}")),
        })
    }

    fn gcs(&self) -> &str {
        self.config.gcs_endpoint.trim_end_matches('/')
    }

    pub(crate) fn aiplatform(&self, path: &str) -> String {
        format!(
            "{}/v1/{path}",
            self.config.aiplatform_endpoint.trim_end_matches('/')
        )
    }

    fn object_url(&self, object: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.gcs(),
            encode(&self.config.pipeline_bucket),
            encode(object)
        )
    }

    async fn upload(&self, object: &str, bytes: Vec<u8>) -> Result<(), ProviderError> {
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
            self.gcs(),
            encode(&self.config.pipeline_bucket),
            encode(object)
        );
        let request = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes);
        self.send(
            request,
            &format!("upload of gs://{}/{object}", self.config.pipeline_bucket),
        )
        .await?;
        Ok(())
    }

    async fn download(&self, object: &str) -> Result<Value, ProviderError> {
        let url = format!("{}?alt=media", self.object_url(object));
        let what = format!("download of gs://{}/{object}", self.config.pipeline_bucket);
        let response = self.send(self.http.get(&url), &what).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ProviderError::transient(format!("reading {what} failed: {}", error_chain(&e))))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::invalid(format!(
                "gs://{}/{object} is not JSON: {e}",
                self.config.pipeline_bucket
            ))
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, ProviderError> {
        let url = format!(
            "{}/storage/v1/b/{}/o?prefix={}",
            self.gcs(),
            encode(&self.config.pipeline_bucket),
            encode(prefix)
        );
        let objects = self.all_pages(url, "items").await?;
        Ok(objects
            .iter()
            .filter_map(|o| o["name"].as_str().map(str::to_string))
            .collect())
    }

    /// Every item (under `items`) of a paginated Google list, following `nextPageToken`; `url` has a query.
    async fn all_pages(&self, url: String, items: &str) -> Result<Vec<Value>, ProviderError> {
        let mut all = Vec::new();
        let mut page_token = String::new();
        for _ in 0..10_000 {
            let mut page_url = url.clone();
            if !page_token.is_empty() {
                page_url.push_str(&format!("&pageToken={}", encode(&page_token)));
            }
            let mut page = self.json(Method::GET, page_url, None).await?;
            if let Some(Value::Array(found)) = page.get_mut(items).map(Value::take) {
                all.extend(found);
            }
            match page["nextPageToken"].as_str() {
                Some(next) if !next.is_empty() && next != page_token => page_token = next.to_string(),
                _ => return Ok(all),
            }
        }
        let path = url.split('?').next().unwrap_or_default();
        Err(ProviderError::transient(format!("listing {path} did not end")))
    }

    /// Waits for the long-running operation `operation` (`{name, done, error?}`) to finish, polling within the
    /// configured bound.
    async fn wait(&self, mut operation: Value) -> Result<(), ProviderError> {
        let deadline = tokio::time::Instant::now() + self.config.operation_timeout;
        loop {
            if operation["done"].as_bool() == Some(true) {
                return match operation.get("error") {
                    None | Some(Value::Null) => Ok(()),
                    Some(error) => {
                        let message = format!(
                            "the operation {} failed: {}",
                            operation["name"].as_str().unwrap_or_default(),
                            error["message"].as_str().unwrap_or_default()
                        );
                        // google.rpc.Code: 3 INVALID_ARGUMENT, 5 NOT_FOUND, 9 FAILED_PRECONDITION.
                        Err(match error["code"].as_i64() {
                            Some(3 | 9) => ProviderError::invalid(message),
                            Some(5) => ProviderError::not_found(message),
                            _ => ProviderError::transient(message),
                        })
                    }
                };
            }
            let name = operation["name"].as_str().unwrap_or_default().to_string();
            if name.is_empty() {
                return Err(ProviderError::transient("a long-running operation has no name"));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProviderError::transient(format!(
                    "the operation {name} did not finish within {} s",
                    self.config.operation_timeout.as_secs()
                )));
            }
            tokio::time::sleep(self.config.operation_poll_interval).await;
            operation = self.json(Method::GET, self.aiplatform(&name), None).await?;
        }
    }
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

// ---------------------------------------------------------------------------------------------------------------
// Pipeline jobs
// ---------------------------------------------------------------------------------------------------------------

/// A run's `spec.serviceAccount` and `spec.labels` (docs/platform-features.md).
#[derive(Debug, Clone, Copy)]
struct RunOptions<'a> {
    service_account: &'a str,
    labels: &'a BTreeMap<String, String>,
}

/// Sanitises a label key or value for Vertex AI (docs/providers/vertex-ai.md, "Operations"): lower case; characters
/// outside `[a-z0-9_-]` are dropped, or replaced with `_` when `replace` (values of `pipeline-version`,
/// `schema_version`, `sdk_version`); cut to 63 characters.
pub fn sanitise_label(text: &str, replace: bool) -> String {
    text.to_lowercase()
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | '_' | '-' => Some(c),
            _ if replace => Some('_'),
            _ => None,
        })
        .take(MAX_LABEL_LENGTH)
        .collect()
}

/// The sanitised labels of a job: the generated ones, the TFX wrapper's `labels`, `schema_version`, `sdk_version`.
pub fn job_labels(
    generated: &BTreeMap<String, String>,
    compiled: &Value,
    spec: &Value,
) -> Map<String, Value> {
    let mut labels = Map::new();
    let mut put = |key: &str, value: &str| {
        let replace = matches!(key, "pipeline-version" | "schema_version" | "sdk_version");
        labels.insert(
            sanitise_label(key, false),
            Value::String(sanitise_label(value, replace)),
        );
    };
    if compiled.get("pipelineSpec").is_some()
        && let Some(wrapper) = compiled["labels"].as_object()
    {
        for (k, v) in wrapper {
            if let Some(v) = v.as_str() {
                put(k, v);
            }
        }
    }
    for (k, v) in generated {
        put(k, v);
    }
    for (label, field) in [("schema_version", "schemaVersion"), ("sdk_version", "sdkVersion")] {
        if let Some(v) = spec[field].as_str() {
            put(label, v);
        }
    }
    labels
}

/// Vertex AI's limit on a job's labels.
pub const MAX_LABELS: usize = 64;

/// Checks a run's `spec.labels` against Vertex AI's rules (keys 1-63 of `[a-z0-9_-]` starting with a letter, values
/// 0-63 of the same): a label breaking them is [`ProviderError::Invalid`] naming it, since Vertex would refuse the
/// job and retrying cannot help (docs/platform-features.md).
pub fn check_user_labels(labels: &BTreeMap<String, String>) -> Result<(), ProviderError> {
    let allowed = |text: &str| {
        text.len() <= MAX_LABEL_LENGTH
            && text
                .chars()
                .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
    };
    for (key, value) in labels {
        let shown = |text: &str| text.chars().take(MAX_LABEL_LENGTH + 1).collect::<String>();
        if !key.starts_with(|c: char| c.is_ascii_lowercase()) || !allowed(key) {
            return Err(ProviderError::invalid(format!(
                "spec.labels: the key {:?} is not a Vertex AI label key (1-63 lowercase letters, digits, _ and -, \
                 starting with a letter)",
                shown(key)
            )));
        }
        if !allowed(value) {
            return Err(ProviderError::invalid(format!(
                "spec.labels.{key}: the value {:?} is not a Vertex AI label value (at most 63 lowercase letters, \
                 digits, _ and -)",
                shown(value)
            )));
        }
    }
    Ok(())
}

/// True when `schema` (`2.1.0`) is at least 2.1.0: parameters then go to `parameterValues`.
pub fn uses_parameter_values(schema: &str) -> bool {
    let parts: Vec<u64> = schema.split('.').map(|p| p.trim().parse().unwrap_or(0)).collect();
    let at = |i: usize| parts.get(i).copied().unwrap_or(0);
    (at(0), at(1), at(2)) >= (2, 1, 0)
}

/// Parameters for schemas before 2.1.0 (`runtimeConfig.parameters`): a `Value` message holding `intValue` (int64,
/// a decimal string in JSON), `doubleValue` or `stringValue`, the only types those schemas declare (`INT`, `DOUBLE`,
/// `STRING`).
fn legacy_values(typed: Map<String, Value>) -> Map<String, Value> {
    typed
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                Value::Number(n) if n.is_i64() => json!({"intValue": n.to_string()}),
                Value::Number(n) => json!({"doubleValue": n}),
                Value::String(text) => json!({"stringValue": text}),
                other => json!({"stringValue": other.to_string()}),
            };
            (name, value)
        })
        .collect()
}

/// True when a job does nothing more: finished, or a cancel under way.
fn job_settled(job: &Value) -> bool {
    matches!(
        job["state"].as_str().unwrap_or_default(),
        "PIPELINE_STATE_SUCCEEDED"
            | "PIPELINE_STATE_FAILED"
            | "PIPELINE_STATE_CANCELLED"
            | "PIPELINE_STATE_CANCELLING"
    )
}

/// A PipelineJob id (`[a-z0-9][a-z0-9-]{0,127}`): lower case, other characters replaced with `-`, cut to 128.
pub fn pipeline_job_id(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect()
}

/// The Vertex AI [`Provider`].
pub struct VaiProvider {
    client: Client,
}

impl std::fmt::Debug for VaiProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaiProvider")
            .field("project", &self.client.config.project)
            .field("location", &self.client.config.location)
            .finish_non_exhaustive()
    }
}

impl VaiProvider {
    /// A provider for `config`; fails with `Invalid` when the settings cannot be used.
    pub fn new(config: VaiConfig) -> Result<Self, ProviderError> {
        Self::with_clock(config, system_clock())
    }

    /// With `clock` as "now" (tests).
    pub fn with_clock(config: VaiConfig, clock: Clock) -> Result<Self, ProviderError> {
        Ok(Self {
            client: Client::new(config, clock)?,
        })
    }

    /// The registry factory.
    pub fn factory(config: &ProviderConfig) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(Self::new(VaiConfig::from_provider_config(config)?)?))
    }

    /// The settings it was built with.
    pub fn config(&self) -> &VaiConfig {
        &self.client.config
    }

    async fn store_pipeline(&self, wrapper: &PipelineDefinitionWrapper) -> Result<String, ProviderError> {
        let definition = &wrapper.pipeline_definition;
        let name: NamespacedName = serde_json::from_value(definition["name"].clone())
            .map_err(|e| ProviderError::invalid(format!("the pipeline definition has no name: {e}")))?;
        let version = definition["version"].as_str().unwrap_or_default();
        if name.namespace.is_empty() || name.name.is_empty() || version.is_empty() {
            return Err(ProviderError::invalid(
                "the pipeline definition needs a namespace, a name and a version",
            ));
        }
        let bytes = serde_json::to_vec(&wrapper.compiled_pipeline)
            .map_err(|e| ProviderError::invalid(format!("the compiled pipeline cannot be written: {e}")))?;
        self.client
            .upload(&format!("{}/{}/{version}", name.namespace, name.name), bytes)
            .await?;
        Ok(format!("{}/{}", name.namespace, name.name))
    }

    /// The `pipelineJob` of a run or schedule.
    async fn pipeline_job(
        &self,
        pipeline: &NamespacedName,
        version: &str,
        parameters: &BTreeMap<String, String>,
        labels: &RunLabels<'_>,
        options: RunOptions<'_>,
    ) -> Result<Value, ProviderError> {
        let config = &self.client.config;
        check_user_labels(options.labels)?;
        if version.is_empty() {
            return Err(ProviderError::invalid(format!(
                "the run names no version of the pipeline {pipeline}"
            )));
        }
        let object = format!("{}/{}/{version}", pipeline.namespace, pipeline.name);
        let compiled = self.client.download(&object).await?;
        let spec = match compiled.get("pipelineSpec") {
            Some(inner) => inner.clone(),
            None => compiled.clone(),
        };
        let schema = spec["schemaVersion"].as_str().unwrap_or_default();
        // Vertex AI takes each parameter as the type the spec declares (as the aiplatform SDK sends it), so the
        // strings are converted; one that cannot be is a permanent error naming it.
        let typed = typed_parameters(&input_parameters(&spec), parameters)
            .map_err(|e| ProviderError::invalid(e.to_string()))?;
        let mut runtime = Map::new();
        if uses_parameter_values(schema) {
            runtime.insert("parameterValues".into(), Value::Object(typed));
        } else {
            runtime.insert("parameters".into(), Value::Object(legacy_values(typed)));
        }
        if !config.pipeline_root_storage.is_empty() {
            runtime.insert(
                "gcsOutputDirectory".into(),
                Value::String(format!(
                    "{}/{}/{}",
                    config.pipeline_root_storage.trim_end_matches('/'),
                    pipeline.namespace,
                    pipeline.name
                )),
            );
        }
        let mut job = Map::new();
        // The run's own labels first: the operator's, which the event source and lookups rely on, win a clash.
        let mut all_labels: Map<String, Value> = options
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        all_labels.extend(job_labels(&labels.to_map(), &compiled, &spec));
        if all_labels.len() > MAX_LABELS {
            return Err(ProviderError::invalid(format!(
                "spec.labels: {} labels with the operator's {} make {}, more than the {MAX_LABELS} Vertex AI allows",
                options.labels.len(),
                all_labels.len().saturating_sub(options.labels.len()),
                all_labels.len()
            )));
        }
        job.insert("labels".into(), Value::Object(all_labels));
        job.insert("runtimeConfig".into(), Value::Object(runtime));
        // The run's spec.serviceAccount, else the Provider's vaiJobServiceAccount, else Vertex AI's default.
        let service_account = Some(options.service_account)
            .filter(|a| !a.is_empty())
            .unwrap_or(&config.job_service_account);
        if !service_account.is_empty() {
            job.insert(
                "serviceAccount".into(),
                Value::String(service_account.to_string()),
            );
        }
        job.insert(
            "templateUri".into(),
            Value::String(format!("gs://{}/{object}", config.pipeline_bucket)),
        );
        job.insert("pipelineSpec".into(), spec);
        if !config.psc_network_attachment.is_empty() {
            job.insert(
                "pscInterfaceConfig".into(),
                json!({"networkAttachment": config.psc_network_attachment}),
            );
        }
        Ok(Value::Object(job))
    }

    async fn schedule_body(&self, schedule: &RunScheduleDefinition) -> Result<Value, ProviderError> {
        let config = &self.client.config;
        let cron: CronExpression = schedule
            .schedule
            .cron_expression
            .parse()
            .map_err(|e: kfp_core::values::ValueError| ProviderError::invalid(e.to_string()))?;
        let labels = RunLabels {
            provider: &config.provider,
            pipeline: &schedule.pipeline_name,
            pipeline_version: &schedule.pipeline_version,
            run_configuration: &schedule.run_configuration_name,
            run: None,
            trigger: &schedule.trigger_indicator,
        };
        let job = self
            .pipeline_job(
                &schedule.pipeline_name,
                &schedule.pipeline_version,
                &schedule.parameters,
                &labels,
                RunOptions {
                    service_account: &schedule.service_account,
                    labels: &schedule.labels,
                },
            )
            .await?;
        let mut body = Map::new();
        body.insert("cron".into(), Value::String(cron.five_fields()));
        body.insert(
            "createPipelineJobRequest".into(),
            json!({"parent": config.parent(), "pipelineJob": job}),
        );
        body.insert(
            "displayName".into(),
            Value::String(schedule_display_name(&schedule.name)),
        );
        body.insert(
            "maxConcurrentRunCount".into(),
            Value::String(config.max_concurrent_run_count.to_string()),
        );
        body.insert("allowQueueing".into(), Value::Bool(true));
        let now = (self.client.clock)();
        if let Some(start) = time_of(&schedule.schedule.start_time)?
            && start > now
        {
            body.insert("startTime".into(), Value::String(rfc3339(&start)));
        }
        if let Some(end) = time_of(&schedule.schedule.end_time)? {
            body.insert("endTime".into(), Value::String(rfc3339(&end)));
        }
        Ok(Value::Object(body))
    }
}

/// A Kubernetes time as a chrono time (through its RFC 3339 text).
impl VaiProvider {
    /// The compiled pipeline's objects are `<ns>/<name>/<version>`: any of them means the pipeline `<ns>/<name>`
    /// exists (create and update both upload, so the version is not compared).
    async fn find_pipeline(&self, identity: &ObjectIdentity) -> Result<Option<String>, ProviderError> {
        let id = format!("{}/{}", identity.name.namespace, identity.name.name);
        let url = format!(
            "{}/storage/v1/b/{}/o?prefix={}&maxResults=1",
            self.client.gcs(),
            encode(&self.client.config.pipeline_bucket),
            encode(&format!("{id}/"))
        );
        let page = match self.client.json(Method::GET, url, None).await {
            Ok(page) => page,
            Err(f) if f.error.is_not_found() => return Ok(None),
            Err(f) => return Err(f.error),
        };
        let found = page["items"].as_array().is_some_and(|items| !items.is_empty());
        Ok(found.then_some(id))
    }

    /// The job `<ns>-<name>-<version>` `create_run` submits, when it was created no earlier than the resource: the
    /// run's id `<ns>-<name>`.
    async fn find_run(&self, identity: &ObjectIdentity) -> Result<Option<String>, ProviderError> {
        let config = &self.client.config;
        let id = format!("{}-{}", identity.name.namespace, identity.name.name);
        let job_id = pipeline_job_id(&format!("{id}-{}", identity.version));
        let url = self
            .client
            .aiplatform(&format!("{}/pipelineJobs/{job_id}", config.parent()));
        let job = match self.client.json(Method::GET, url, None).await {
            Ok(job) => job,
            Err(f) if f.error.is_not_found() => return Ok(None),
            Err(f) => return Err(f.error),
        };
        let created = job["createTime"].as_str().map(google_time).transpose()?;
        let in_time = match &created {
            Some(time) => identity.created_in_time(time),
            None => identity.created.is_none(),
        };
        Ok(in_time.then_some(id))
    }

    /// The newest schedule whose display name is `rc-<ns>-<name>` (`schedules.list` with `filter=display_name="..."`):
    /// its resource name, the id `create_run_schedule` answered.
    async fn find_run_schedule(&self, identity: &ObjectIdentity) -> Result<Option<String>, ProviderError> {
        let display_name = schedule_display_name(&identity.name);
        let url = format!(
            "{}?filter={}",
            self.client
                .aiplatform(&format!("{}/schedules", self.client.config.parent())),
            encode(&format!("display_name=\"{display_name}\""))
        );
        let mut newest: Option<(i64, String)> = None;
        for schedule in self.client.all_pages(url, "schedules").await? {
            let name = schedule["name"].as_str().unwrap_or_default();
            if name.is_empty() || schedule["displayName"].as_str() != Some(display_name.as_str()) {
                continue;
            }
            let created = schedule["createTime"]
                .as_str()
                .map(google_time)
                .transpose()?
                .map_or(i64::MIN, |t| t.0.as_second());
            if newest.as_ref().is_none_or(|(best, _)| created > *best) {
                newest = Some((created, name.to_string()));
            }
        }
        Ok(newest.map(|(_, name)| name))
    }
}

/// The display name of the schedule of the RunSchedule `name`: `rc-<ns>-<name>`.
fn schedule_display_name(name: &NamespacedName) -> String {
    format!("rc-{}-{}", name.namespace, name.name)
}

/// A `google.protobuf.Timestamp` as Google writes it (RFC 3339).
fn google_time(text: &str) -> Result<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time, ProviderError> {
    text.parse::<k8s_openapi::jiff::Timestamp>()
        .map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time)
        .map_err(|e| {
            ProviderError::transient(format!(
                "Vertex AI answered a createTime {text:?} that is not RFC 3339: {e}"
            ))
        })
}

fn time_of<T: serde::Serialize>(time: &Option<T>) -> Result<Option<DateTime<Utc>>, ProviderError> {
    time.as_ref()
        .map(|t| match serde_json::to_value(t) {
            Ok(Value::String(s)) => DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| ProviderError::invalid(format!("the schedule time {s:?} is not RFC 3339: {e}"))),
            _ => Err(ProviderError::invalid(
                "a schedule time cannot be written as RFC 3339",
            )),
        })
        .transpose()
}

fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn ignore_not_found(result: Result<(), ProviderError>) -> Result<(), ProviderError> {
    match result {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

#[async_trait::async_trait]
impl Provider for VaiProvider {
    async fn create_pipeline(&self, pipeline: &PipelineDefinitionWrapper) -> Result<String, ProviderError> {
        self.store_pipeline(pipeline).await
    }

    async fn update_pipeline(
        &self,
        pipeline: &PipelineDefinitionWrapper,
        _id: &str,
    ) -> Result<String, ProviderError> {
        self.store_pipeline(pipeline).await
    }

    async fn delete_pipeline(&self, id: &str) -> Result<(), ProviderError> {
        let prefix = format!("{}/", id.trim_end_matches('/'));
        for object in ignore_not_found_list(self.client.list(&prefix).await)? {
            let url = self.client.object_url(&object);
            ignore_not_found(
                self.client
                    .json(Method::DELETE, url, None)
                    .await
                    .map(|_| ())
                    .map_err(ProviderError::from),
            )?;
        }
        Ok(())
    }

    async fn create_run(&self, run: &RunDefinition) -> Result<String, ProviderError> {
        let config = &self.client.config;
        let labels = RunLabels {
            provider: &config.provider,
            pipeline: &run.pipeline_name,
            pipeline_version: &run.pipeline_version,
            run_configuration: &run.run_configuration_name,
            run: Some(&run.name),
            trigger: &run.trigger_indicator,
        };
        let job = self
            .pipeline_job(
                &run.pipeline_name,
                &run.pipeline_version,
                &run.parameters,
                &labels,
                RunOptions {
                    service_account: &run.service_account,
                    labels: &run.labels,
                },
            )
            .await?;
        let id = format!("{}-{}", run.name.namespace, run.name.name);
        let job_id = pipeline_job_id(&format!("{id}-{}", run.version));
        let url = format!(
            "{}?pipelineJobId={}",
            self.client
                .aiplatform(&format!("{}/pipelineJobs", config.parent())),
            encode(&job_id)
        );
        match self.client.json(Method::POST, url, Some(&job)).await {
            Ok(_) => Ok(id),
            // The same run version was submitted before (a repeat after a crash): it exists, which is the goal.
            Err(Failure { status: 409, .. }) => Ok(id),
            Err(f) => Err(f.error),
        }
    }

    /// Cancels the run's job when it is still going; finished jobs stay as Vertex AI's history, as the Go operator
    /// leaves them (docs/platform-features.md). The id (`<namespace>-<name>`) does not hold the run's version, so
    /// the jobs are found by their id prefix `<namespace>-<name>-`, keeping only those whose remaining part is a
    /// version (no `-`: the job of a Run named `<name>-2` is not this Run's).
    async fn delete_run(&self, id: &str) -> Result<(), ProviderError> {
        let prefix = pipeline_job_id(&format!("{id}-"));
        let url = format!(
            "{}?filter={}",
            self.client
                .aiplatform(&format!("{}/pipelineJobs", self.client.config.parent())),
            encode(&format!("pipeline_job_user_id:\"{prefix}*\""))
        );
        for job in self.client.all_pages(url, "pipelineJobs").await? {
            let name = job["name"].as_str().unwrap_or_default();
            let job_id = name.rsplit('/').next().unwrap_or_default();
            let ours = job_id
                .strip_prefix(&prefix)
                .is_some_and(|version| !version.is_empty() && !version.contains('-'));
            if !ours || job_settled(&job) {
                continue;
            }
            let url = self.client.aiplatform(&format!("{name}:cancel"));
            match self.client.json(Method::POST, url, Some(&json!({}))).await {
                Ok(_) | Err(Failure { status: 404, .. }) => {}
                // FAILED_PRECONDITION: it finished meanwhile, nothing left to stop.
                Err(f) if f.status == 400 => {
                    let job = self
                        .client
                        .json(Method::GET, self.client.aiplatform(name), None)
                        .await;
                    if !job.as_ref().is_ok_and(job_settled) {
                        return Err(f.error);
                    }
                }
                Err(f) => return Err(f.error),
            }
        }
        Ok(())
    }

    async fn create_run_schedule(&self, schedule: &RunScheduleDefinition) -> Result<String, ProviderError> {
        let body = self.schedule_body(schedule).await?;
        let url = self
            .client
            .aiplatform(&format!("{}/schedules", self.client.config.parent()));
        let created = self.client.json(Method::POST, url, Some(&body)).await?;
        created["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .ok_or_else(|| ProviderError::transient("CreateSchedule answered without a name"))
    }

    async fn update_run_schedule(
        &self,
        schedule: &RunScheduleDefinition,
        id: &str,
    ) -> Result<String, ProviderError> {
        let body = self.schedule_body(schedule).await?;
        // The schedule the operator names (the Go provider ignored the id), with a mask of exactly the fields sent.
        let mask: Vec<&str> = body
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let url = format!(
            "{}?updateMask={}",
            self.client.aiplatform(id),
            encode(&mask.join(","))
        );
        let updated = self.client.json(Method::PATCH, url, Some(&body)).await?;
        Ok(updated["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or(id)
            .to_string())
    }

    async fn delete_run_schedule(&self, id: &str) -> Result<(), ProviderError> {
        let operation = match self
            .client
            .json(Method::DELETE, self.client.aiplatform(id), None)
            .await
        {
            Ok(op) => op,
            Err(f) if f.error.is_not_found() => return Ok(()),
            Err(f) => return Err(f.error),
        };
        ignore_not_found(self.client.wait(operation).await)
    }

    async fn create_experiment(&self, _experiment: &ExperimentDefinition) -> Result<String, ProviderError> {
        Err(unimplemented_experiments())
    }

    async fn update_experiment(
        &self,
        _experiment: &ExperimentDefinition,
        _id: &str,
    ) -> Result<String, ProviderError> {
        Err(unimplemented_experiments())
    }

    async fn delete_experiment(&self, _id: &str) -> Result<(), ProviderError> {
        Err(unimplemented_experiments())
    }

    /// Looks the object up by the name `create_*` gave it (see the module docs); experiments are `Unimplemented`,
    /// as everything about them.
    async fn find(&self, identity: &ObjectIdentity) -> Result<Option<String>, ProviderError> {
        match identity.kind {
            ResourceKind::Pipeline => self.find_pipeline(identity).await,
            ResourceKind::Run => self.find_run(identity).await,
            ResourceKind::RunSchedule => self.find_run_schedule(identity).await,
            ResourceKind::Experiment => Err(unimplemented_experiments()),
        }
    }
}

fn unimplemented_experiments() -> ProviderError {
    ProviderError::unimplemented("the Vertex AI provider does not implement experiments")
}

fn ignore_not_found_list(result: Result<Vec<String>, ProviderError>) -> Result<Vec<String>, ProviderError> {
    match result {
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        other => other,
    }
}
