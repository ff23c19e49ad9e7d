//! An in-process fake of the Google Cloud APIs the Vertex AI provider uses (axum), for tests (feature `fakes`).
//!
//! Written from the official references (Cloud Storage JSON API `objects.insert` media upload, `objects.get`
//! `alt=media`, `objects.list` (`prefix`, `maxResults`, `pageToken`), `objects.delete`; Vertex AI REST v1
//! `projects.locations.pipelineJobs.create`, `projects.locations.schedules.create/patch/delete/get/list`,
//! `projects.locations.operations.get`; the GCE metadata server's `service-accounts/default/token`; the Security Token Service `v1/token`, the OAuth 2.0 token endpoint and
//! IAM Credentials `generateAccessToken`), not from this crate's client:
//! - JSON bodies may only hold the documented (camelCase) fields, else 400 with Google's error body
//!   `{"error": {"code", "message", "status"}}`; `pipelineJobId` must match `[a-z0-9][a-z0-9-]{0,127}`; labels must
//!   be at most 63 characters of `[a-z0-9_-]`; a schedule's `cron` must be a valid 5-field cron; `updateMask` is
//!   required on patch and may only name Schedule fields; `runtimeConfig.parameterValues` must be of the kind the
//!   job's `pipelineSpec` declares for each input (a number, whole for `NUMBER_INTEGER`, a boolean, list, struct or
//!   string), and old schemas' `parameters` must use the declared `intValue`/`doubleValue`/`stringValue`;
//! - missing objects, jobs, schedules answer 404 (`NOT_FOUND`); a repeated `pipelineJobId` 409 (`ALREADY_EXISTS`);
//! - schedule deletes answer a long-running operation `{name, done: false}` that is done on the next `GET`;
//! - every request needs `Authorization: Bearer <token>` with a token the fake issued (or one set with
//!   [`FakeVai::accept_token`], or a self-signed JWT of the key [`FakeVai::trust_service_account_key`] trusts),
//!   else 401;
//! - Google's token endpoints on the same URL: the metadata server (`Metadata-Flavor: Google` required, else 403),
//!   the OAuth refresh-token grant (`POST /token`), the Security Token Service exchange (`POST /v1/token`) and IAM
//!   Credentials `generateAccessToken`, recorded apart ([`FakeVai::token_requests`]);
//! - Pub/Sub `subscriptions.pull`, `acknowledge`, `modifyAckDeadline` (deadline 0 = nack: redelivered) over
//!   messages published with [`FakeVai::publish_log_entry`]; `pipelineJobs.get`; `pipelineJobs.list` with only the
//!   filter `pipeline_job_user_id:"<prefix>*"` (any other filter is refused with 400); `pipelineJobs.cancel`
//!   (`PIPELINE_STATE_CANCELLING`; a finished job answers 400 `FAILED_PRECONDITION`, as Vertex AI does);
//! - jobs and schedules get a `createTime` (now) when created; `schedules.get`; `schedules.list` with a `filter` on
//!   `display_name` (`=`, `!=`, `:` with `*` wildcards, as the v1 reference documents; the other fields and
//!   operators Vertex AI takes are refused with 400);
//! - failure injection: [`FakeVai::fail_next`] (answer the next requests with a status), [`FakeVai::hang_next`]
//!   (never answer, for timeouts).
//!
//! Uploaded objects, jobs and schedules are kept for inspection ([`FakeVai::object`], [`FakeVai::pipeline_jobs`],
//! [`FakeVai::schedules`]) and every request is recorded ([`FakeVai::requests`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// The HTTP method.
    pub method: String,
    /// The path, e.g. `/v1/projects/p/locations/l/pipelineJobs`.
    pub path: String,
    /// Decoded query parameters.
    pub query: BTreeMap<String, String>,
    /// The `Authorization` header, as sent.
    pub authorization: Option<String>,
    /// The body parsed as JSON, if it is JSON.
    pub body: Option<Value>,
}

#[derive(Debug, Default)]
struct FakeState {
    next_id: u64,
    objects: BTreeMap<(String, String), Vec<u8>>,
    pipeline_jobs: BTreeMap<String, Value>,
    schedules: BTreeMap<String, Value>,
    operations: BTreeMap<String, Value>,
    requests: Vec<RecordedRequest>,
    fail_next: VecDeque<u16>,
    hang_next: usize,
    tokens: BTreeSet<String>,
    token_lifetime: i64,
    tokens_issued: usize,
    hold_operations: bool,
    /// Pub/Sub messages: (ack id, message, delivered at; `None` when available).
    messages: Vec<(String, Value, Option<std::time::Instant>)>,
    acked: Vec<String>,
    ack_deadline: Duration,
    fail_matching: Vec<(String, u16)>,
    trusted_key: Option<Vec<u8>>,
    /// Requests to the token endpoints (metadata server, OAuth, STS, IAM Credentials).
    token_requests: Vec<RecordedRequest>,
    /// (client id, client secret, refresh token) the OAuth endpoint takes.
    refresh_tokens: Vec<(String, String, String)>,
    /// (audience, subject token) the Security Token Service exchanges.
    subject_tokens: Vec<(String, String)>,
    /// Service accounts `generateAccessToken` may impersonate.
    impersonable: BTreeSet<String>,
    /// Scripted answers: (method, path part, status, body), each used once.
    scripted: Vec<(String, String, u16, Value)>,
}

type Shared = Arc<Mutex<FakeState>>;

fn lock(state: &Shared) -> MutexGuard<'_, FakeState> {
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running fake on a loopback port (GCS, aiplatform and the metadata server on one URL); stops when dropped.
#[derive(Debug)]
pub struct FakeVai {
    url: String,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeVai {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeVai {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let state: Shared = Arc::new(Mutex::new(FakeState {
            token_lifetime: 3600,
            ack_deadline: Duration::from_secs(10),
            ..FakeState::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = Router::new().fallback(handle).with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, state, task })
    }

    /// The base URL, for `gcsEndpoint`, `aiplatformEndpoint` and `metadataEndpoint`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Accepts `token` as a bearer token (as if the metadata server had issued it).
    pub fn accept_token(&self, token: &str) {
        lock(&self.state).tokens.insert(token.to_string());
    }

    /// Forgets every issued token (as if they had expired): requests with them answer 401.
    pub fn revoke_tokens(&self) {
        lock(&self.state).tokens.clear();
    }

    /// The `expires_in` of tokens the metadata server issues (default 3600).
    pub fn set_token_lifetime(&self, seconds: i64) {
        lock(&self.state).token_lifetime = seconds;
    }

    /// How many tokens the metadata server has issued.
    pub fn tokens_issued(&self) -> usize {
        lock(&self.state).tokens_issued
    }

    /// Answers the next request (not the metadata server's) with `status` and a Google error body.
    pub fn fail_next(&self, status: u16) {
        lock(&self.state).fail_next.push_back(status);
    }

    /// Never answers the next `count` requests (not the metadata server's).
    pub fn hang_next(&self, count: usize) {
        lock(&self.state).hang_next += count;
    }

    /// While `true`, long-running operations never finish (`done: false` on every `GET`).
    pub fn hold_operations(&self, hold: bool) {
        lock(&self.state).hold_operations = hold;
    }

    /// Publishes a Cloud Logging `LogEntry` of the pipeline job `job_id` to every subscription (`None`: an entry
    /// without `resource.labels.pipeline_job_id`). Returns the message's ack id.
    pub fn publish_log_entry(&self, job_id: Option<&str>) -> String {
        use base64::Engine;
        let mut labels = json!({"location": "europe-west2"});
        if let Some(id) = job_id {
            labels["pipeline_job_id"] = json!(id);
        }
        let entry = json!({
            "logName": "projects/proj/logs/aiplatform.googleapis.com%2Fpipeline_job_events",
            "resource": {"type": "aiplatform.googleapis.com/PipelineJob", "labels": labels},
            "jsonPayload": {"state": "PIPELINE_STATE_SUCCEEDED"}
        });
        let mut s = lock(&self.state);
        s.next_id += 1;
        let ack_id = format!("ack-{}", s.next_id);
        let data = base64::engine::general_purpose::STANDARD.encode(entry.to_string());
        let message =
            json!({"data": data, "messageId": s.next_id.to_string(), "publishTime": "2025-06-01T12:00:00Z"});
        s.messages.push((ack_id.clone(), message, None));
        ack_id
    }

    /// Trusts the RSA public key `der` (PKCS#1 `RSAPublicKey`) of a service account: bearer tokens that are
    /// self-signed JWTs of that key are accepted (AIP-4111, what service-account key files give); without it none.
    pub fn trust_service_account_key(&self, der: Vec<u8>) {
        lock(&self.state).trusted_key = Some(der);
    }

    /// Lets the OAuth endpoint `POST /token` grant tokens for this refresh token of `client_id` (an
    /// `authorized_user` file, what `gcloud auth application-default login` writes).
    pub fn trust_refresh_token(&self, client_id: &str, client_secret: &str, refresh_token: &str) {
        lock(&self.state).refresh_tokens.push((
            client_id.to_string(),
            client_secret.to_string(),
            refresh_token.to_string(),
        ));
    }

    /// Lets the Security Token Service `POST /v1/token` exchange `subject_token` for the workload identity pool
    /// provider `audience` (`//iam.googleapis.com/projects/<n>/locations/global/workloadIdentityPools/<p>/providers/<x>`).
    pub fn trust_subject_token(&self, audience: &str, subject_token: &str) {
        lock(&self.state)
            .subject_tokens
            .push((audience.to_string(), subject_token.to_string()));
    }

    /// Lets `POST /v1/projects/-/serviceAccounts/<email>:generateAccessToken` impersonate `email` (for any token
    /// the fake issued).
    pub fn allow_impersonation(&self, email: &str) {
        lock(&self.state).impersonable.insert(email.to_string());
    }

    /// The requests to the token endpoints, in order (forms as JSON objects of their fields).
    pub fn token_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).token_requests.clone()
    }

    /// How long a pulled message stays outstanding before it is delivered again (default 10 s).
    pub fn set_ack_deadline(&self, deadline: Duration) {
        lock(&self.state).ack_deadline = deadline;
    }

    /// Answers the next request whose path contains `path_part` with `status`.
    pub fn fail_next_matching(&self, path_part: &str, status: u16) {
        lock(&self.state)
            .fail_matching
            .push((path_part.to_string(), status));
    }

    /// Answers the next `method` request whose (percent-decoded) path contains `path_part` with `status` and the JSON `body` (after
    /// the bearer token is checked), instead of the fake's own answer: lets tests hand the client recorded answers.
    pub fn answer_next_matching(&self, method: &str, path_part: &str, status: u16, body: Value) {
        lock(&self.state)
            .scripted
            .push((method.to_string(), path_part.to_string(), status, body));
    }

    /// Ack ids acknowledged so far.
    pub fn acked(&self) -> Vec<String> {
        lock(&self.state).acked.clone()
    }

    /// Ack ids neither acknowledged nor outstanding (available to the next pull).
    pub fn available_messages(&self) -> Vec<String> {
        lock(&self.state)
            .messages
            .iter()
            .filter(|(_, _, out)| out.is_none())
            .map(|(id, _, _)| id.clone())
            .collect()
    }

    /// Sets fields of the pipeline job `name` (`state`, `jobDetail`, `startTime`, ...), as the backend would.
    pub fn update_pipeline_job(&self, name: &str, fields: Value) {
        let mut s = lock(&self.state);
        if let (Some(job), Some(fields)) = (s.pipeline_jobs.get_mut(name), fields.as_object()) {
            for (k, v) in fields {
                job[k] = v.clone();
            }
        }
    }

    /// Sets fields of the schedule `name` (its resource name), e.g. `createTime`.
    pub fn update_schedule(&self, name: &str, fields: Value) {
        let mut s = lock(&self.state);
        if let (Some(schedule), Some(fields)) = (s.schedules.get_mut(name), fields.as_object()) {
            for (k, v) in fields {
                schedule[k] = v.clone();
            }
        }
    }

    /// Stores an object as if uploaded.
    pub fn put_object(&self, bucket: &str, name: &str, bytes: Vec<u8>) {
        lock(&self.state)
            .objects
            .insert((bucket.to_string(), name.to_string()), bytes);
    }

    /// An uploaded object, parsed as JSON.
    pub fn object(&self, bucket: &str, name: &str) -> Option<Value> {
        lock(&self.state)
            .objects
            .get(&(bucket.to_string(), name.to_string()))
            .and_then(|b| serde_json::from_slice(b).ok())
    }

    /// The names of the objects in `bucket`.
    pub fn object_names(&self, bucket: &str) -> Vec<String> {
        lock(&self.state)
            .objects
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// The created pipeline jobs by resource name.
    pub fn pipeline_jobs(&self) -> BTreeMap<String, Value> {
        lock(&self.state).pipeline_jobs.clone()
    }

    /// The schedules by resource name.
    pub fn schedules(&self) -> BTreeMap<String, Value> {
        lock(&self.state).schedules.clone()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }
}

// ---------------------------------------------------------------------------------------------------------------

fn google_error(code: u16, message: impl Into<String>) -> Response {
    let status = match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        _ => "UNKNOWN",
    };
    google_status_error(code, status, message)
}

/// Google's error body with an explicit canonical status (e.g. 400 `FAILED_PRECONDITION`).
fn google_status_error(code: u16, status: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"code": code, "message": message.into(), "status": status}});
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .to_string()
}

fn query_map(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(&v.replace('+', " ")))
        })
        .collect()
}

/// Fields the v1 reference documents, per message.
const PIPELINE_JOB_FIELDS: &[&str] = &[
    "name",
    "displayName",
    "createTime",
    "startTime",
    "endTime",
    "updateTime",
    "pipelineSpec",
    "state",
    "jobDetail",
    "error",
    "labels",
    "runtimeConfig",
    "encryptionSpec",
    "serviceAccount",
    "network",
    "reservedIpRanges",
    "pscInterfaceConfig",
    "templateUri",
    "templateMetadata",
    "scheduleName",
    "preflightValidations",
];
const RUNTIME_CONFIG_FIELDS: &[&str] = &[
    "parameters",
    "gcsOutputDirectory",
    "parameterValues",
    "failurePolicy",
    "inputArtifacts",
];
const SCHEDULE_FIELDS: &[&str] = &[
    "name",
    "displayName",
    "startTime",
    "endTime",
    "maxRunCount",
    "startedRunCount",
    "state",
    "createTime",
    "updateTime",
    "nextRunTime",
    "lastPauseTime",
    "lastResumeTime",
    "maxConcurrentRunCount",
    "allowQueueing",
    "catchUp",
    "lastScheduledRunResponse",
    "cron",
    "createPipelineJobRequest",
];
const CREATE_PIPELINE_JOB_REQUEST_FIELDS: &[&str] = &["parent", "pipelineJob", "pipelineJobId"];

fn unknown_fields(value: &Value, allowed: &[&str], what: &str) -> Result<(), String> {
    let object = value
        .as_object()
        .ok_or_else(|| format!("{what} must be a JSON object"))?;
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "Invalid JSON payload received. Unknown name \"{k}\" at '{what}': Cannot find field."
        )),
        None => Ok(()),
    }
}

fn label_ok(text: &str) -> bool {
    text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Vertex AI binds `parameterValues` to the inputs `pipelineSpec` declares and refuses a value of another kind (the
/// aiplatform SDK converts values to the declared type before sending, `pipeline_utils.py`); the wording of the
/// error is this fake's, Vertex AI's own is not documented. Old schemas' `parameters` must use the `Value` field of
/// the declared `INT`/`DOUBLE`/`STRING` type.
fn validate_parameter_types(job: &Value, runtime: &Value) -> Result<(), String> {
    let declared = job
        .get("pipelineSpec")
        .and_then(|spec| spec.get("root"))
        .and_then(|root| root.get("inputDefinitions"))
        .and_then(|inputs| inputs.get("parameters"))
        .and_then(Value::as_object);
    let Some(declared) = declared else {
        return Ok(());
    };
    if let Some(values) = runtime.get("parameterValues").and_then(Value::as_object) {
        for (name, value) in values {
            let Some(parameter_type) = declared
                .get(name)
                .and_then(|d| d.get("parameterType"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let ok = match parameter_type {
                "NUMBER_INTEGER" => value.as_f64().is_some_and(|x| x.fract() == 0.0),
                "NUMBER_DOUBLE" => value.is_number(),
                "BOOLEAN" => value.is_boolean(),
                "LIST" => value.is_array(),
                "STRUCT" => value.is_object(),
                "STRING" => value.is_string(),
                _ => true,
            };
            if !ok {
                return Err(format!(
                    "The value {value} of runtime parameter \"{name}\" does not match its type {parameter_type} in the pipeline spec."
                ));
            }
        }
    }
    if let Some(values) = runtime.get("parameters").and_then(Value::as_object) {
        for (name, value) in values {
            let field = match declared
                .get(name)
                .and_then(|d| d.get("type"))
                .and_then(Value::as_str)
            {
                Some("INT") => "intValue",
                Some("DOUBLE") => "doubleValue",
                Some("STRING") => "stringValue",
                _ => continue,
            };
            if value.get(field).is_none() {
                return Err(format!(
                    "Runtime parameter \"{name}\" must be given as {field} as the pipeline spec declares."
                ));
            }
        }
    }
    Ok(())
}

fn validate_job(job: &Value, what: &str) -> Result<(), String> {
    unknown_fields(job, PIPELINE_JOB_FIELDS, what)?;
    if let Some(runtime) = job.get("runtimeConfig") {
        unknown_fields(runtime, RUNTIME_CONFIG_FIELDS, &format!("{what}.runtime_config"))?;
        validate_parameter_types(job, runtime)?;
        if let Some(parameters) = runtime.get("parameters").and_then(Value::as_object) {
            for (k, v) in parameters {
                let known = ["intValue", "doubleValue", "stringValue"];
                if !v
                    .as_object()
                    .is_some_and(|o| o.len() == 1 && o.keys().all(|key| known.contains(&key.as_str())))
                {
                    return Err(format!(
                        "runtime_config.parameters[{k:?}] must be a Value with one of intValue, doubleValue, stringValue"
                    ));
                }
            }
        }
    }
    if let Some(labels) = job.get("labels") {
        let labels = labels
            .as_object()
            .ok_or_else(|| "labels must be a map".to_string())?;
        for (k, v) in labels {
            let v = v.as_str().unwrap_or("!");
            if k.is_empty() || !label_ok(k) || !label_ok(v) {
                return Err(format!("Invalid label {k:?}: {v:?}"));
            }
        }
    }
    if job.get("pipelineSpec").is_none() && job.get("templateUri").is_none() {
        return Err("pipeline_spec or template_uri is required".into());
    }
    Ok(())
}

fn validate_schedule(schedule: &Value, partial: bool) -> Result<(), String> {
    unknown_fields(schedule, SCHEDULE_FIELDS, "schedule")?;
    if let Some(cron) = schedule.get("cron") {
        let cron = cron.as_str().unwrap_or_default();
        let text = cron
            .strip_prefix("TZ=")
            .or_else(|| cron.strip_prefix("CRON_TZ="))
            .map_or(cron, |rest| rest.split_once(' ').map_or("", |(_, c)| c));
        if text.split_whitespace().count() != 5 {
            return Err(format!("Invalid cron {cron:?}: expected 5 fields"));
        }
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| format!("Invalid cron {cron:?}: {e}"))?;
    } else if !partial {
        return Err("cron is required".into());
    }
    if let Some(request) = schedule.get("createPipelineJobRequest") {
        unknown_fields(
            request,
            CREATE_PIPELINE_JOB_REQUEST_FIELDS,
            "schedule.create_pipeline_job_request",
        )?;
        let job = request
            .get("pipelineJob")
            .ok_or_else(|| "create_pipeline_job_request.pipeline_job is required".to_string())?;
        validate_job(job, "schedule.create_pipeline_job_request.pipeline_job")?;
    } else if !partial {
        return Err("create_pipeline_job_request is required".into());
    }
    if let Some(count) = schedule.get("maxConcurrentRunCount") {
        let n = count
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .or_else(|| count.as_i64());
        if n.is_none_or(|n| n <= 0) {
            return Err("max_concurrent_run_count must be positive".into());
        }
    } else if !partial {
        return Err("max_concurrent_run_count is required".into());
    }
    Ok(())
}

/// An OAuth 2.0 error answer (`{"error", "error_description"}`), as Google's token endpoints give them.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": error, "error_description": description}).to_string(),
    )
        .into_response()
}

/// Google's token endpoints, answered before the API's bearer check: the metadata server's token, the OAuth 2.0
/// refresh-token grant (`POST /token`, what `authorized_user` files use), the Security Token Service exchange
/// (`POST /v1/token`, workload identity federation) and IAM Credentials `generateAccessToken` (service-account
/// impersonation). Each is recorded in [`FakeVai::token_requests`]. `None` for every other path.
fn auth_endpoint(
    state: &Shared,
    request: &RecordedRequest,
    metadata_flavor: Option<&str>,
    raw: &[u8],
) -> Option<Response> {
    let path = request.path.as_str();
    let impersonation = path
        .strip_prefix("/v1/projects/-/serviceAccounts/")
        .and_then(|p| p.strip_suffix(":generateAccessToken"));
    let is_auth =
        path == METADATA_TOKEN_PATH || path == "/token" || path == "/v1/token" || impersonation.is_some();
    if !is_auth {
        return None;
    }
    // Forms (`application/x-www-form-urlencoded`) are recorded as a JSON object of their fields.
    let form = query_map(Some(&String::from_utf8_lossy(raw)));
    let mut recorded = request.clone();
    if recorded.body.is_none() && !form.is_empty() {
        recorded.body = Some(json!(form));
    }
    let mut s = lock(state);
    s.token_requests.push(recorded.clone());
    let lifetime = s.token_lifetime;
    let field = |name: &str| {
        recorded
            .body
            .as_ref()
            .and_then(|b| b[name].as_str())
            .unwrap_or_default()
            .to_string()
    };
    if path == METADATA_TOKEN_PATH {
        if request.method != "GET" {
            return Some((StatusCode::METHOD_NOT_ALLOWED, "").into_response());
        }
        if metadata_flavor != Some("Google") {
            return Some((StatusCode::FORBIDDEN, "Missing Metadata-Flavor:Google header").into_response());
        }
        return Some(ok(s.issue("fake-token")));
    }
    if request.method != "POST" {
        return Some((StatusCode::METHOD_NOT_ALLOWED, "").into_response());
    }
    if let Some(email) = impersonation {
        let email = decode(email);
        let bearer = request
            .authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "));
        if !bearer.is_some_and(|t| s.tokens.contains(t)) {
            return Some(google_error(
                401,
                "Request had invalid authentication credentials.",
            ));
        }
        let body = recorded.body.clone().unwrap_or(Value::Null);
        if let Err(e) = unknown_fields(
            &body,
            &["delegates", "scope", "lifetime"],
            "GenerateAccessTokenRequest",
        ) {
            return Some(google_error(400, e));
        }
        if body["scope"].as_array().is_none_or(|a| a.is_empty()) {
            return Some(google_error(400, "Scope required."));
        }
        if !s.impersonable.contains(&email) {
            return Some(google_error(
                403,
                format!("Permission 'iam.serviceAccounts.getAccessToken' denied on resource {email}"),
            ));
        }
        let issued = s.issue("impersonated-token");
        let expire = chrono::Utc::now() + chrono::Duration::seconds(lifetime);
        return Some(ok(json!({
            "accessToken": issued["access_token"],
            "expireTime": expire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })));
    }
    if path == "/token" {
        if field("grant_type") != "refresh_token" {
            return Some(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Invalid grant_type",
            ));
        }
        let known = s.refresh_tokens.iter().any(|(id, secret, token)| {
            *id == field("client_id") && *secret == field("client_secret") && *token == field("refresh_token")
        });
        if !known {
            return Some(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Bad Request",
            ));
        }
        return Some(ok(s.issue("user-token")));
    }
    // The Security Token Service, `POST https://sts.googleapis.com/v1/token` (RFC 8693 token exchange).
    if field("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" {
        return Some(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid value for \"grant_type\".",
        ));
    }
    if field("requested_token_type") != "urn:ietf:params:oauth:token-type:access_token" {
        return Some(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid value for \"requested_token_type\".",
        ));
    }
    let subject_types = [
        "urn:ietf:params:oauth:token-type:jwt",
        "urn:ietf:params:oauth:token-type:id_token",
        "urn:ietf:params:oauth:token-type:saml2",
        "urn:ietf:params:aws:token-type:aws4_request",
    ];
    if !subject_types.contains(&field("subject_token_type").as_str()) {
        return Some(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid value for \"subject_token_type\".",
        ));
    }
    let scope = field("scope");
    if scope.is_empty()
        || !scope
            .split(' ')
            .all(|scope| scope.starts_with("https://www.googleapis.com/auth/"))
    {
        return Some(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Invalid value for \"scope\".",
        ));
    }
    let trusted = s
        .subject_tokens
        .iter()
        .any(|(audience, token)| *audience == field("audience") && *token == field("subject_token"));
    if !trusted {
        return Some(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The audience in ID Token does not match the expected audience.",
        ));
    }
    let mut issued = s.issue("sts-token");
    issued["issued_token_type"] = json!("urn:ietf:params:oauth:token-type:access_token");
    Some(ok(issued))
}

/// The metadata server's token path.
const METADATA_TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

impl FakeState {
    /// A new token `<prefix>-<n>` accepted from now on, as a token endpoint's answer.
    fn issue(&mut self, prefix: &str) -> Value {
        self.tokens_issued += 1;
        let token = format!("{prefix}-{}", self.tokens_issued);
        self.tokens.insert(token.clone());
        json!({"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"})
    }
}

/// True when `token` is a self-signed service-account JWT (AIP-4111) Google would take as a bearer token: RS256
/// signed by `key`, `iss` = `sub`, a `cloud-platform` scope or an audience, issued now for at most about an hour.
fn self_signed_jwt_ok(token: &str, key: &[u8]) -> bool {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let [header_part, claims_part, signature_part] = parts.as_slice() else {
        return false;
    };
    let decode_json = |part: &str| {
        engine
            .decode(part)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    };
    let (Some(header_json), Some(claims), Ok(signature)) = (
        decode_json(header_part),
        decode_json(claims_part),
        engine.decode(signature_part),
    ) else {
        return false;
    };
    let now = chrono::Utc::now().timestamp();
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    let scoped = claims["scope"]
        .as_str()
        .is_some_and(|s| s.split(' ').any(|scope| scope.ends_with("/auth/cloud-platform")))
        || claims["aud"].as_str().is_some_and(|a| !a.is_empty());
    let claims_ok = header_json["alg"] == "RS256"
        && claims["iss"].as_str().is_some_and(|i| !i.is_empty())
        && claims["sub"] == claims["iss"]
        && scoped
        && iat <= now + 60
        && exp > now
        && exp - iat <= 3600 + 300;
    let signed = format!("{header_part}.{claims_part}");
    let public = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, key);
    claims_ok && public.verify(signed.as_bytes(), &signature).is_ok()
}

/// Now, as Google writes a `Timestamp` (RFC 3339, UTC, fractional seconds).
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The `filter` of `schedules.list` on `display_name`, as the v1 reference documents it (AIP-160): `=` and `!=`
/// compare the whole name, `:` matches it with `*` standing for any text (`display_name:"rc-*"`). The other fields
/// Vertex AI takes (`state`, `create_time`, ...), `AND`/`OR`/`NOT` and unquoted values are refused with 400: the
/// fake does not answer what it does not implement.
#[derive(Debug)]
enum DisplayNameFilter {
    Equals(String),
    NotEquals(String),
    Has(String),
}

impl DisplayNameFilter {
    fn parse(text: &str) -> Result<Self, String> {
        let refuse = |why: &str| format!("the fake does not take the schedules filter {text:?}: {why}");
        let text = text.trim();
        let rest = text
            .strip_prefix("display_name")
            .ok_or_else(|| refuse("only display_name is implemented"))?
            .trim_start();
        let (make, value): (fn(String) -> Self, &str) = if let Some(v) = rest.strip_prefix("!=") {
            (Self::NotEquals, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (Self::Equals, v)
        } else if let Some(v) = rest.strip_prefix(':') {
            (Self::Has, v)
        } else {
            return Err(refuse("expected =, != or :"));
        };
        let value = value.trim();
        let inner = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .filter(|v| !v.contains('"'))
            .ok_or_else(|| refuse("the value must be one double-quoted string"))?;
        Ok(make(inner.to_string()))
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Equals(v) => name == v,
            Self::NotEquals(v) => name != v,
            Self::Has(pattern) => wildcard(pattern, name),
        }
    }
}

/// `pattern` with `*` for any text matches all of `text`.
fn wildcard(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| wildcard(tail, &rest[i..]))
        }
    }
}

fn job_id_ok(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.len() <= 128
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

async fn handle(State(state): State<Shared>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = query_map(request.uri().query());
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let metadata_flavor = request
        .headers()
        .get("Metadata-Flavor")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = to_bytes(request.into_body(), 64 * 1024 * 1024)
        .await
        .unwrap_or_default()
        .to_vec();
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();

    let recorded = RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        authorization: authorization.clone(),
        body: body.clone(),
    };
    if let Some(answer) = auth_endpoint(&state, &recorded, metadata_flavor.as_deref(), &bytes) {
        return answer;
    }

    let (fail, hang) = {
        let mut s = lock(&state);
        s.requests.push(recorded);
        let hang = if s.hang_next > 0 {
            s.hang_next -= 1;
            true
        } else {
            false
        };
        let matching = s
            .fail_matching
            .iter()
            .position(|(part, _)| path.contains(part.as_str()));
        let fail = match matching {
            _ if hang => None,
            Some(i) => Some(s.fail_matching.remove(i).1),
            None => s.fail_next.pop_front(),
        };
        (fail, hang)
    };
    if hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if let Some(status) = fail {
        return google_error(status, "injected failure");
    }
    let token_ok = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|t| {
            let s = lock(&state);
            s.tokens.contains(t)
                || s.trusted_key
                    .as_deref()
                    .is_some_and(|key| self_signed_jwt_ok(t, key))
        });
    if !token_ok {
        return google_error(401, "Request had invalid authentication credentials.");
    }
    let scripted = {
        let mut s = lock(&state);
        let position = s
            .scripted
            .iter()
            .position(|(m, part, _, _)| *m == method.as_str() && decode(&path).contains(part.as_str()));
        position.map(|i| s.scripted.remove(i))
    };
    if let Some((_, _, status, body)) = scripted {
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }

    let segments: Vec<String> = path.trim_start_matches('/').split('/').map(decode).collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let mut s = lock(&state);
    match (method.clone(), segs.as_slice()) {
        // --- Cloud Storage ---
        (Method::POST, ["upload", "storage", "v1", "b", bucket, "o"]) => {
            if query.get("uploadType").map(String::as_str) != Some("media") {
                return google_error(400, "uploadType must be media in this fake");
            }
            let Some(name) = query.get("name").filter(|n| !n.is_empty()) else {
                return google_error(400, "Required parameter: name");
            };
            s.objects
                .insert((bucket.to_string(), name.clone()), bytes.clone());
            ok(
                json!({"kind": "storage#object", "bucket": bucket, "name": name, "size": bytes.len().to_string()}),
            )
        }
        (Method::GET, ["storage", "v1", "b", bucket, "o"]) => {
            let prefix = query.get("prefix").cloned().unwrap_or_default();
            // `maxResults` (at most 1000, the default) and `pageToken` page the list.
            let max = match query.get("maxResults").map(|m| m.parse::<usize>()) {
                None => 1000,
                Some(Ok(n)) if n > 0 => n.min(1000),
                Some(_) => return google_error(400, "Invalid value for maxResults"),
            };
            let offset = match query.get("pageToken") {
                None => 0,
                Some(token) => match token.strip_prefix("offset-").and_then(|n| n.parse().ok()) {
                    Some(n) => n,
                    None => return google_error(400, format!("Invalid pageToken {token:?}")),
                },
            };
            let all: Vec<Value> = s
                .objects
                .keys()
                .filter(|(b, n)| b == bucket && n.starts_with(&prefix))
                .map(|(b, n)| json!({"kind": "storage#object", "bucket": b, "name": n}))
                .collect();
            let more = all.len() > offset + max;
            let items: Vec<Value> = all.into_iter().skip(offset).take(max).collect();
            let mut answer = json!({"kind": "storage#objects"});
            // An empty list is left out, as the JSON API does.
            if !items.is_empty() {
                answer["items"] = json!(items);
            }
            if more {
                answer["nextPageToken"] = json!(format!("offset-{}", offset + max));
            }
            ok(answer)
        }
        (Method::GET, ["storage", "v1", "b", bucket, "o", name]) => {
            match s.objects.get(&(bucket.to_string(), name.to_string())) {
                Some(bytes) if query.get("alt").map(String::as_str) == Some("media") => {
                    (StatusCode::OK, bytes.clone()).into_response()
                }
                Some(_) => ok(json!({"kind": "storage#object", "bucket": bucket, "name": name})),
                None => google_error(404, format!("No such object: {bucket}/{name}")),
            }
        }
        (Method::DELETE, ["storage", "v1", "b", bucket, "o", name]) => {
            match s.objects.remove(&(bucket.to_string(), name.to_string())) {
                Some(_) => (StatusCode::NO_CONTENT, "").into_response(),
                None => google_error(404, format!("No such object: {bucket}/{name}")),
            }
        }
        // --- Vertex AI ---
        (Method::POST, ["v1", "projects", project, "locations", location, "pipelineJobs"]) => {
            let Some(job) = body else {
                return google_error(400, "the body must be a PipelineJob");
            };
            if let Err(e) = validate_job(&job, "pipeline_job") {
                return google_error(400, e);
            }
            s.next_id += 1;
            let id = query
                .get("pipelineJobId")
                .cloned()
                .unwrap_or_else(|| format!("job-{}", s.next_id));
            if !job_id_ok(&id) {
                return google_error(400, format!("Invalid pipeline job id {id:?}"));
            }
            let name = format!("projects/{project}/locations/{location}/pipelineJobs/{id}");
            if s.pipeline_jobs.contains_key(&name) {
                return google_error(409, format!("PipelineJob {name} already exists"));
            }
            let mut stored = job;
            stored["name"] = json!(name);
            stored["state"] = json!("PIPELINE_STATE_PENDING");
            stored["createTime"] = json!(now());
            s.pipeline_jobs.insert(name, stored.clone());
            ok(stored)
        }
        (Method::POST, ["v1", "projects", project, "locations", location, "schedules"]) => {
            let Some(schedule) = body else {
                return google_error(400, "the body must be a Schedule");
            };
            if let Err(e) = validate_schedule(&schedule, false) {
                return google_error(400, e);
            }
            s.next_id += 1;
            let name = format!(
                "projects/{project}/locations/{location}/schedules/{}",
                1_000_000 + s.next_id
            );
            let mut stored = schedule;
            stored["name"] = json!(name);
            stored["state"] = json!("ACTIVE");
            stored["createTime"] = json!(now());
            s.schedules.insert(name, stored.clone());
            ok(stored)
        }
        (Method::PATCH, ["v1", "projects", _, "locations", _, "schedules", _]) => {
            let name = segs[1..].join("/");
            let Some(patch) = body else {
                return google_error(400, "the body must be a Schedule");
            };
            let Some(mask) = query.get("updateMask").filter(|m| !m.is_empty()) else {
                return google_error(400, "update_mask is required");
            };
            if let Err(e) = validate_schedule(&patch, true) {
                return google_error(400, e);
            }
            let Some(existing) = s.schedules.get_mut(&name) else {
                return google_error(404, format!("Schedule {name} not found"));
            };
            for field in mask.split(',') {
                if !SCHEDULE_FIELDS.contains(&field) {
                    return google_error(400, format!("Invalid update_mask path {field:?}"));
                }
            }
            for field in mask.split(',') {
                match patch.get(field) {
                    Some(v) => existing[field] = v.clone(),
                    None => {
                        if let Some(o) = existing.as_object_mut() {
                            o.remove(field);
                        }
                    }
                }
            }
            ok(existing.clone())
        }
        (Method::GET, ["v1", "projects", project, "locations", location, "schedules"]) => {
            let parent = format!("projects/{project}/locations/{location}/schedules/");
            let filter = match query.get("filter").map(String::as_str) {
                None | Some("") => None,
                Some(text) => match DisplayNameFilter::parse(text) {
                    Ok(filter) => Some(filter),
                    Err(e) => return google_error(400, e),
                },
            };
            let schedules: Vec<Value> = s
                .schedules
                .iter()
                .filter(|(name, _)| name.starts_with(&parent))
                .filter(|(_, schedule)| {
                    filter
                        .as_ref()
                        .is_none_or(|f| f.matches(schedule["displayName"].as_str().unwrap_or_default()))
                })
                .map(|(_, schedule)| schedule.clone())
                .collect();
            // An empty list is left out, as protojson does.
            if schedules.is_empty() {
                ok(json!({}))
            } else {
                ok(json!({"schedules": schedules}))
            }
        }
        (Method::GET, ["v1", "projects", _, "locations", _, "schedules", _]) => {
            let name = segs[1..].join("/");
            match s.schedules.get(&name) {
                Some(schedule) => ok(schedule.clone()),
                None => google_error(404, format!("Schedule {name} not found")),
            }
        }
        (Method::DELETE, ["v1", "projects", project, "locations", location, "schedules", _]) => {
            let name = segs[1..].join("/");
            if s.schedules.remove(&name).is_none() {
                return google_error(404, format!("Schedule {name} not found"));
            }
            s.next_id += 1;
            let op = format!("projects/{project}/locations/{location}/operations/{}", s.next_id);
            let operation = json!({"name": op, "done": false});
            s.operations.insert(op, operation.clone());
            ok(operation)
        }
        (Method::GET, ["v1", "projects", project, "locations", location, "pipelineJobs"]) => {
            // Only the filter the provider sends (a `pipeline_job_user_id` prefix); Vertex AI takes more, which the
            // fake refuses rather than answering wrongly.
            let parent = format!("projects/{project}/locations/{location}/pipelineJobs/");
            let prefix = match query.get("filter").map(String::as_str) {
                None | Some("") => String::new(),
                Some(filter) => match filter
                    .strip_prefix("pipeline_job_user_id:\"")
                    .and_then(|rest| rest.strip_suffix("*\""))
                {
                    Some(prefix) => prefix.to_string(),
                    None => {
                        return google_error(400, format!("the fake does not take the filter {filter:?}"));
                    }
                },
            };
            let jobs: Vec<Value> = s
                .pipeline_jobs
                .iter()
                .filter(|(name, _)| {
                    name.strip_prefix(&parent)
                        .is_some_and(|id| id.starts_with(&prefix))
                })
                .map(|(_, job)| job.clone())
                .collect();
            ok(json!({"pipelineJobs": jobs}))
        }
        (Method::POST, ["v1", "projects", _, "locations", _, "pipelineJobs", call])
            if call.ends_with(":cancel") =>
        {
            let name = segs[1..].join("/");
            let name = name.trim_end_matches(":cancel");
            let Some(job) = s.pipeline_jobs.get_mut(name) else {
                return google_error(404, format!("PipelineJob {name} not found"));
            };
            let state = job["state"].as_str().unwrap_or_default().to_string();
            if matches!(
                state.as_str(),
                "PIPELINE_STATE_SUCCEEDED" | "PIPELINE_STATE_FAILED" | "PIPELINE_STATE_CANCELLED"
            ) {
                // Vertex AI: FAILED_PRECONDITION for a job that has finished.
                return google_status_error(
                    400,
                    "FAILED_PRECONDITION",
                    format!("PipelineJob {name} is in state {state} and cannot be cancelled"),
                );
            }
            job["state"] = json!("PIPELINE_STATE_CANCELLING");
            ok(json!({}))
        }
        (Method::GET, ["v1", "projects", _, "locations", _, "pipelineJobs", _]) => {
            let name = segs[1..].join("/");
            match s.pipeline_jobs.get(&name) {
                Some(job) => ok(job.clone()),
                None => google_error(404, format!("PipelineJob {name} not found")),
            }
        }
        (Method::POST, ["v1", "projects", _, "subscriptions", call]) => {
            let Some((_, verb)) = call.split_once(':') else {
                return google_error(404, format!("no route {method} {path} in the fake"));
            };
            let body = body.unwrap_or(Value::Null);
            let allowed: &[&str] = match verb {
                "pull" => &["maxMessages", "returnImmediately"],
                "acknowledge" => &["ackIds"],
                "modifyAckDeadline" => &["ackIds", "ackDeadlineSeconds"],
                _ => return google_error(404, format!("no route {method} {path} in the fake")),
            };
            if let Err(e) = unknown_fields(&body, allowed, verb) {
                return google_error(400, e);
            }
            let ids: Vec<String> = body["ackIds"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            match verb {
                "pull" => {
                    let Some(max) = body["maxMessages"].as_u64().filter(|n| *n > 0) else {
                        return google_error(400, "max_messages must be positive");
                    };
                    let mut received = Vec::new();
                    let deadline = s.ack_deadline;
                    let now = std::time::Instant::now();
                    for (ack_id, message, outstanding) in s.messages.iter_mut() {
                        let available = outstanding.is_none_or(|at| now.duration_since(at) >= deadline);
                        if available && (received.len() as u64) < max {
                            *outstanding = Some(now);
                            received.push(json!({"ackId": ack_id, "message": message, "deliveryAttempt": 1}));
                        }
                    }
                    // Proto3 JSON leaves an empty repeated field out: no messages is `{}`.
                    if received.is_empty() {
                        ok(json!({}))
                    } else {
                        ok(json!({"receivedMessages": received}))
                    }
                }
                "acknowledge" => {
                    s.messages.retain(|(id, _, _)| !ids.contains(id));
                    s.acked.extend(ids);
                    ok(json!({}))
                }
                _ => {
                    if body["ackDeadlineSeconds"].as_i64() == Some(0) {
                        for (id, _, outstanding) in s.messages.iter_mut() {
                            if ids.contains(id) {
                                *outstanding = None;
                            }
                        }
                    }
                    ok(json!({}))
                }
            }
        }
        (Method::GET, ["v1", "projects", _, "locations", _, "operations", _]) => {
            let name = segs[1..].join("/");
            let hold = s.hold_operations;
            match s.operations.get_mut(&name) {
                Some(op) if hold => ok(op.clone()),
                Some(op) => {
                    op["done"] = json!(true);
                    op["response"] = json!({"@type": "type.googleapis.com/google.protobuf.Empty"});
                    ok(op.clone())
                }
                None => google_error(404, format!("Operation {name} not found")),
            }
        }
        _ => google_error(404, format!("no route {method} {path} in the fake")),
    }
}
