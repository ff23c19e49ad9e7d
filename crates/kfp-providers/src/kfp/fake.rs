//! An in-process fake of the Kubeflow Pipelines v2beta1 REST API (axum), for tests (feature `fakes`).
//!
//! Written from the official API reference (kubeflow/pipelines `backend/api/v2beta1/swagger/*.swagger.json`,
//! `filter.proto`, `python_http_client/docs/V2beta1*.md`), not from this crate's client, so it catches field-name
//! drift:
//! - JSON bodies must only hold the fields the reference documents for the message (snake_case), else 400 with the
//!   gateway's `googlerpcStatus` body `{"code": 3, "message": ..., "details": []}`; unknown query parameters too;
//! - pipelines: multipart `uploadfile` upload and `upload_version`, one default version per uploaded pipeline,
//!   duplicate names 409 (`ALREADY_EXISTS`, code 6), `DeletePipeline` refuses a pipeline with versions (400,
//!   `FAILED_PRECONDITION`, code 9), the uploaded file is kept ([`FakePipelineVersion::pipeline_spec`]);
//! - lists (pipelines, versions, experiments, runs, recurring runs) paginate with `page_size` (default 20, capped by
//!   [`FakeKfp::set_max_page_size`]) and an opaque `next_page_token`, and apply `filter` predicates
//!   `display_name EQUALS <string_value>`; a filter key KFP 2.0.5 does not know for that list is refused with its
//!   400 `no support for filtering on unrecognized field` (e.g. `pipeline_version_id` on runs, `namespace` on
//!   recurring runs), and so is any other predicate (which KFP may take but the fake does not implement); runs and
//!   recurring runs are scoped by `experiment_id` or by `namespace` (their experiment's); the recurring runs' list
//!   is `recurringRuns`, as `recurring_run.proto` names it (the other lists are snake_case);
//! - runs and recurring runs get `created_at` from the wall clock in whole seconds, as KFP keeps it
//!   ([`FakeKfp::set_created_at`] changes it);
//! - runs and recurring runs: as KFP's `validatePipelineJobInputs` (2.0.5 and later) requires, a parameter the
//!   version's spec declares must be of its type's JSON kind (a number for `NUMBER_*`, a boolean, list, struct or
//!   string), else 400 `invalid pipeline job inputs: input parameter <name> requires type ...`; a required input
//!   (neither `isOptional` nor a `defaultValue`) must be given and an undeclared one must not;
//! - recurring runs: the cron must have 6 fields (leading seconds) as the backend's parser wants, `max_concurrency`
//!   in 1..=10, `mode` `ENABLE`/`DISABLE`;
//! - missing ids answer 404 (`NOT_FOUND`, code 5);
//! - run task details and artifacts (run.proto `RunDetails`/`PipelineTaskDetail`/`ArtifactList`, artifact.proto
//!   `Artifact` and `ArtifactService.GetArtifact` at `GET /apis/v2beta1/artifacts/{artifact_id}`):
//!   [`FakeKfp::add_artifact`] stores `{artifact_id, name, type, uri, metadata, created_at, namespace}` (ids are
//!   int64s, written as strings as protojson does), [`FakeKfp::add_task_detail`] appends
//!   `{run_id, task_id, display_name, state, outputs: {<key>: {artifact_ids}}}` to the run's
//!   `run_details.task_details`, and [`FakeKfp::fail_artifact_reads`] fails the next `GetArtifact` calls only;
//! - failed uploads answered as by the gateway of newer servers (409, 400, 404), or as KFP 2.0.5 answers them
//!   ([`FakeKfp::answer_uploads_like_kfp_2_0_5`]: HTTP 500 with the error class in `error_message`);
//! - failure injection: [`FakeKfp::fail_next`] (answer the next requests with a status), [`FakeKfp::hang_next`]
//!   (never answer, for timeouts), [`FakeKfp::require_token`] (401 without the bearer token).
//!
//! Every request is recorded ([`FakeKfp::requests`]) with its `Authorization` header, query and JSON body.
//! Uploaded files must be JSON (a YAML subset); the real server also takes YAML.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::to_bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// The HTTP method.
    pub method: String,
    /// The path, e.g. `/apis/v2beta1/runs`.
    pub path: String,
    /// Decoded query parameters.
    pub query: BTreeMap<String, String>,
    /// The `Authorization` header, as sent.
    pub authorization: Option<String>,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// The multipart `uploadfile` part's file name, if any.
    pub upload_file_name: Option<String>,
}

/// A pipeline the fake holds.
#[derive(Debug, Clone, PartialEq)]
pub struct FakePipeline {
    /// Its id, as the fake made it.
    pub pipeline_id: String,
    /// Its display name, as uploaded.
    pub display_name: String,
    /// Its namespace (multi-user mode); empty otherwise.
    pub namespace: String,
    /// Its description.
    pub description: String,
}

/// A version of a pipeline the fake holds.
#[derive(Debug, Clone, PartialEq)]
pub struct FakePipelineVersion {
    /// The pipeline it belongs to.
    pub pipeline_id: String,
    /// Its id, as the fake made it.
    pub pipeline_version_id: String,
    /// Its display name, as uploaded.
    pub display_name: String,
    /// The uploaded file, parsed.
    pub pipeline_spec: Value,
}

/// An experiment the fake holds.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeExperiment {
    /// Its id, as the fake made it.
    pub experiment_id: String,
    /// Its display name.
    pub display_name: String,
    /// Its description.
    pub description: String,
    /// Its namespace (multi-user mode); empty otherwise.
    pub namespace: String,
}

#[derive(Debug, Default)]
struct FakeState {
    next_id: u64,
    pipelines: Vec<FakePipeline>,
    versions: Vec<FakePipelineVersion>,
    experiments: Vec<FakeExperiment>,
    runs: Vec<Value>,
    recurring_runs: Vec<Value>,
    artifacts: Vec<Value>,
    next_artifact_id: u64,
    fail_artifact_reads: VecDeque<u16>,
    requests: Vec<RecordedRequest>,
    fail_next: VecDeque<u16>,
    hang_next: usize,
    max_page_size: usize,
    required_token: Option<String>,
    uploads_like_2_0_5: bool,
}

impl FakeState {
    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.next_id)
    }

    /// Now, in whole seconds as KFP keeps creation times (`CreatedAtInSec`), in RFC 3339 as it writes them.
    fn timestamp(&self) -> String {
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }
}

type Shared = Arc<Mutex<FakeState>>;

fn lock(state: &Shared) -> MutexGuard<'_, FakeState> {
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running fake KFP API server on a loopback port; stops when dropped.
#[derive(Debug)]
pub struct FakeKfp {
    url: String,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeKfp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeKfp {
    /// Starts the server on `127.0.0.1:<free port>` in the current tokio runtime.
    pub async fn start() -> std::io::Result<Self> {
        let state: Shared = Arc::new(Mutex::new(FakeState {
            max_page_size: 200,
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

    /// The base URL, e.g. `http://127.0.0.1:41234` (the `restKfpApiUrl`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answers the next `count` requests with `status` (and a `googlerpcStatus` body) without handling them.
    pub fn fail_next(&self, count: usize, status: u16) {
        lock(&self.state)
            .fail_next
            .extend(std::iter::repeat_n(status, count));
    }

    /// Never answers the next `count` requests.
    pub fn hang_next(&self, count: usize) {
        lock(&self.state).hang_next += count;
    }

    /// Caps the page size of list answers.
    pub fn set_max_page_size(&self, size: usize) {
        lock(&self.state).max_page_size = size.max(1);
    }

    /// Requires `Authorization: Bearer <token>` (401 otherwise); `None` accepts anything.
    pub fn require_token(&self, token: Option<&str>) {
        lock(&self.state).required_token = token.map(str::to_string);
    }

    /// Answers failed uploads as KFP 2.0.5's upload handlers do (measured by `tests/kfp/kfp_apiserver.rs`): HTTP 500
    /// with `{"error_message", "error_details"}` whose text names the error class (`Already exist error: ...`,
    /// `InvalidInputError: ...`, `ResourceNotFoundError: ...`), instead of the gateway's 409/400/404.
    pub fn answer_uploads_like_kfp_2_0_5(&self) {
        lock(&self.state).uploads_like_2_0_5 = true;
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        lock(&self.state).requests.clear();
    }

    /// Every pipeline the fake holds.
    pub fn pipelines(&self) -> Vec<FakePipeline> {
        lock(&self.state).pipelines.clone()
    }

    /// The versions of `pipeline_id`, oldest first.
    pub fn pipeline_versions(&self, pipeline_id: &str) -> Vec<FakePipelineVersion> {
        lock(&self.state)
            .versions
            .iter()
            .filter(|v| v.pipeline_id == pipeline_id)
            .cloned()
            .collect()
    }

    /// Every experiment the fake holds.
    pub fn experiments(&self) -> Vec<FakeExperiment> {
        lock(&self.state).experiments.clone()
    }

    /// Runs as stored (the created body plus `run_id`, `state`, `created_at`, ...).
    pub fn runs(&self) -> Vec<Value> {
        lock(&self.state).runs.clone()
    }

    /// Recurring runs as stored.
    pub fn recurring_runs(&self) -> Vec<Value> {
        lock(&self.state).recurring_runs.clone()
    }

    /// Sets the `created_at` of the run or recurring run `id` (RFC 3339), e.g. to make one older than a resource.
    /// Panics without it (a test error).
    #[allow(clippy::panic)]
    pub fn set_created_at(&self, id: &str, created_at: &str) {
        let mut state = lock(&self.state);
        let state = &mut *state;
        let found = state.runs.iter_mut().find(|r| r["run_id"] == id).or_else(|| {
            state
                .recurring_runs
                .iter_mut()
                .find(|r| r["recurring_run_id"] == id)
        });
        match found {
            Some(object) => object["created_at"] = json!(created_at),
            None => panic!("the fake has no run or recurring run {id}"),
        }
    }

    /// Stores an artifact (artifact.proto `Artifact`, type `Artifact`) with `uri` and `metadata` (its custom
    /// properties, a JSON object); returns its id (an int64, as a string).
    pub fn add_artifact(&self, name: &str, uri: &str, metadata: Value) -> String {
        let mut state = lock(&self.state);
        state.next_artifact_id += 1;
        let artifact_id = state.next_artifact_id.to_string();
        let created_at = state.timestamp();
        state.artifacts.push(json!({
            "artifact_id": artifact_id, "name": name, "type": "Artifact", "uri": uri, "metadata": metadata,
            "created_at": created_at, "namespace": ""
        }));
        artifact_id
    }

    /// Appends a task to the run's `run_details.task_details` with `outputs` (output key -> artifact ids); returns
    /// the task id. Panics without the run (a test error).
    #[allow(clippy::panic)]
    pub fn add_task_detail(&self, run_id: &str, display_name: &str, outputs: &[(&str, &[String])]) -> String {
        let mut state = lock(&self.state);
        let task_id = state.id();
        let outputs: Map<String, Value> = outputs
            .iter()
            .map(|(key, ids)| (key.to_string(), json!({"artifact_ids": ids})))
            .collect();
        let task = json!({
            "run_id": run_id, "task_id": task_id, "display_name": display_name, "state": "SUCCEEDED",
            "outputs": outputs
        });
        let Some(run) = state.runs.iter_mut().find(|r| r["run_id"] == run_id) else {
            panic!("the fake has no run {run_id}");
        };
        if run.get("run_details").is_none() {
            run["run_details"] = json!({"task_details": []});
        }
        if let Some(tasks) = run["run_details"]["task_details"].as_array_mut() {
            tasks.push(task);
        }
        task_id
    }

    /// Answers the next `count` `GetArtifact` requests with `status` (other requests are served).
    pub fn fail_artifact_reads(&self, count: usize, status: u16) {
        lock(&self.state)
            .fail_artifact_reads
            .extend(std::iter::repeat_n(status, count));
    }

    /// Creates an experiment directly (e.g. KFP's `Default`); returns its id.
    pub fn add_experiment(&self, display_name: &str, namespace: &str) -> String {
        let mut state = lock(&self.state);
        let experiment_id = state.id();
        state.experiments.push(FakeExperiment {
            experiment_id: experiment_id.clone(),
            display_name: display_name.to_string(),
            description: String::new(),
            namespace: namespace.to_string(),
        });
        experiment_id
    }

    /// Adds a version to a pipeline directly (e.g. to have more versions than a page); returns its id.
    pub fn add_pipeline_version(&self, pipeline_id: &str, display_name: &str) -> String {
        let mut state = lock(&self.state);
        let pipeline_version_id = state.id();
        state.versions.push(FakePipelineVersion {
            pipeline_id: pipeline_id.to_string(),
            pipeline_version_id: pipeline_version_id.clone(),
            display_name: display_name.to_string(),
            pipeline_spec: json!({}),
        });
        pipeline_version_id
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

/// A gRPC status as the gateway writes it.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: i32,
    message: String,
}

impl ApiError {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 3,
            message: message.into(),
        }
    }
    fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: 5,
            message: message.into(),
        }
    }
    fn already_exists(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            code: 6,
            message: message.into(),
        }
    }
    fn failed_precondition(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 9,
            message: message.into(),
        }
    }
    fn from_status(status: u16) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = match status.as_u16() {
            400 => 3,
            401 => 16,
            403 => 7,
            404 => 5,
            409 => 6,
            429 => 8,
            501 => 12,
            503 => 14,
            504 => 4,
            _ => 13,
        };
        Self {
            status,
            code,
            message: format!("injected failure (HTTP {})", status.as_u16()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"code": self.code, "message": self.message, "details": []});
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

type ApiResult = Result<Value, ApiError>;

// ---------------------------------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------------------------------

struct Upload {
    file_name: String,
    bytes: Vec<u8>,
}

async fn handle(State(state): State<Shared>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query: BTreeMap<String, String> = request
        .uri()
        .query()
        .and_then(|q| reqwest::Url::parse(&format!("http://fake/?{q}")).ok())
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default();
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));

    let (body, upload) = if multipart {
        match read_upload(request).await {
            Ok(upload) => (None, upload),
            Err(e) => return e.into_response(),
        }
    } else {
        match to_bytes(request.into_body(), 64 << 20).await {
            Ok(bytes) if bytes.is_empty() => (None, None),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(value) => (Some(value), None),
                Err(e) => return ApiError::invalid(format!("invalid JSON body: {e}")).into_response(),
            },
            Err(e) => return ApiError::invalid(format!("unreadable body: {e}")).into_response(),
        }
    };

    let is_upload = path.ends_with("/pipelines/upload") || path.ends_with("/pipelines/upload_version");
    let (hang, fail, required_token, uploads_like_2_0_5) = {
        let mut s = lock(&state);
        s.requests.push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            authorization: authorization.clone(),
            body: body.clone(),
            upload_file_name: upload.as_ref().map(|u| u.file_name.clone()),
        });
        let hang = s.hang_next > 0;
        if hang {
            s.hang_next -= 1;
        }
        let fail = if hang { None } else { s.fail_next.pop_front() };
        (hang, fail, s.required_token.clone(), s.uploads_like_2_0_5)
    };
    if hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if let Some(status) = fail {
        return ApiError::from_status(status).into_response();
    }
    if let Some(token) = required_token
        && authorization.as_deref() != Some(format!("Bearer {token}").as_str())
    {
        return ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: 16,
            message: "Request header error: there is no user identity header.".into(),
        }
        .into_response();
    }

    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let result = match segments.as_slice() {
        ["apis", "v2beta1", rest @ ..] => {
            let mut s = lock(&state);
            dispatch(&mut s, &method, rest, &query, body.as_ref(), upload)
        }
        _ => Err(ApiError::not_found("Not Found")),
    };
    match result {
        Ok(value) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            value.to_string(),
        )
            .into_response(),
        Err(e) if is_upload && uploads_like_2_0_5 => upload_error_of_2_0_5(e),
        Err(e) => e.into_response(),
    }
}

/// A failed upload as KFP 2.0.5 answers it (`pipeline_upload_server.go` `writeErrorToResponse`).
fn upload_error_of_2_0_5(error: ApiError) -> Response {
    let class = match error.code {
        6 => "Already exist error: ",
        3 | 9 => "InvalidInputError: ",
        5 => "ResourceNotFoundError: ",
        _ => "InternalServerError: ",
    };
    let message = format!(
        "Failed to create a pipeline and a pipeline version: {class}{}",
        error.message
    );
    let body = json!({"error_message": message, "error_details": message});
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn read_upload(request: Request) -> Result<Option<Upload>, ApiError> {
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::invalid(format!("invalid multipart body: {e}")))?;
    let mut upload = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::invalid(format!("invalid multipart body: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        if name != "uploadfile" {
            return Err(ApiError::invalid(format!("unexpected form field {name:?}")));
        }
        let file_name = field.file_name().unwrap_or_default().to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::invalid(format!("invalid multipart body: {e}")))?;
        upload = Some(Upload {
            file_name,
            bytes: bytes.to_vec(),
        });
    }
    Ok(upload)
}

fn dispatch(
    s: &mut FakeState,
    method: &Method,
    path: &[&str],
    query: &BTreeMap<String, String>,
    body: Option<&Value>,
    upload: Option<Upload>,
) -> ApiResult {
    const LIST: &[&str] = &["page_token", "page_size", "sort_by", "filter"];
    let m = method.as_str();
    match (m, path) {
        ("POST", ["pipelines", "upload"]) => {
            allow_query(
                query,
                &[
                    "name",
                    "display_name",
                    "description",
                    "namespace",
                    "tags",
                    "code_source_url",
                ],
            )?;
            upload_pipeline(s, query, upload)
        }
        ("POST", ["pipelines", "upload_version"]) => {
            allow_query(
                query,
                &[
                    "name",
                    "display_name",
                    "pipelineid",
                    "description",
                    "tags",
                    "code_source_url",
                ],
            )?;
            upload_pipeline_version(s, query, upload)
        }
        ("GET", ["pipelines"]) => {
            allow_query(query, &[LIST, &["namespace"]].concat())?;
            let items: Vec<Value> = s.pipelines.iter().map(pipeline_json).collect();
            list(s, query, items, "pipelines", PIPELINE_FILTER_KEYS)
        }
        ("GET", ["pipelines", id]) => {
            allow_query(query, &[])?;
            find_pipeline(s, id).map(pipeline_json)
        }
        ("DELETE", ["pipelines", id]) => {
            allow_query(query, &[])?;
            find_pipeline(s, id)?;
            if s.versions.iter().any(|v| v.pipeline_id == *id) {
                return Err(ApiError::failed_precondition(format!(
                    "Failed to delete pipeline {id}: it has pipeline versions"
                )));
            }
            s.pipelines.retain(|p| p.pipeline_id != *id);
            Ok(json!({}))
        }
        ("GET", ["pipelines", id, "versions"]) => {
            allow_query(query, LIST)?;
            find_pipeline(s, id)?;
            let items: Vec<Value> = s
                .versions
                .iter()
                .filter(|v| v.pipeline_id == *id)
                .map(version_json)
                .collect();
            list(s, query, items, "pipeline_versions", PIPELINE_VERSION_FILTER_KEYS)
        }
        ("GET", ["pipelines", id, "versions", version]) => {
            allow_query(query, &[])?;
            find_version(s, id, version).map(version_json)
        }
        ("DELETE", ["pipelines", id, "versions", version]) => {
            allow_query(query, &[])?;
            find_version(s, id, version)?;
            s.versions.retain(|v| v.pipeline_version_id != *version);
            Ok(json!({}))
        }
        ("POST", ["runs"]) => {
            allow_query(query, &[])?;
            create_run(s, body)
        }
        ("GET", ["runs"]) => {
            allow_query(query, &[LIST, &["namespace", "experiment_id"]].concat())?;
            let items = in_scope(s, query, &s.runs)?;
            list(s, query, items, "runs", RUN_FILTER_KEYS)
        }
        ("GET", ["artifacts", id]) => {
            allow_query(query, &["view"])?;
            if let Some(status) = s.fail_artifact_reads.pop_front() {
                return Err(ApiError::from_status(status));
            }
            find_json(&s.artifacts, "artifact_id", id, "artifact")
        }
        ("GET", ["runs", id]) => {
            allow_query(query, &[])?;
            find_json(&s.runs, "run_id", id, "run")
        }
        ("POST", ["runs", action]) if action.ends_with(":terminate") => {
            allow_query(query, &[])?;
            let id = action.trim_end_matches(":terminate");
            find_json(&s.runs, "run_id", id, "run")?;
            if let Some(run) = s.runs.iter_mut().find(|r| r["run_id"] == id) {
                run["state"] = json!("CANCELING");
            }
            Ok(json!({}))
        }
        ("DELETE", ["runs", id]) => {
            allow_query(query, &[])?;
            find_json(&s.runs, "run_id", id, "run")?;
            s.runs.retain(|r| r["run_id"] != *id);
            Ok(json!({}))
        }
        ("POST", ["recurringruns"]) => {
            allow_query(query, &[])?;
            create_recurring_run(s, body)
        }
        ("GET", ["recurringruns"]) => {
            allow_query(query, &[LIST, &["namespace", "experiment_id"]].concat())?;
            let items = in_scope(s, query, &s.recurring_runs)?;
            // The proto names this list `recurringRuns` (the other lists are snake_case).
            list(s, query, items, "recurringRuns", RECURRING_RUN_FILTER_KEYS)
        }
        ("GET", ["recurringruns", id]) => {
            allow_query(query, &[])?;
            find_json(&s.recurring_runs, "recurring_run_id", id, "recurring run")
        }
        ("DELETE", ["recurringruns", id]) => {
            allow_query(query, &[])?;
            find_json(&s.recurring_runs, "recurring_run_id", id, "recurring run")?;
            s.recurring_runs.retain(|r| r["recurring_run_id"] != *id);
            Ok(json!({}))
        }
        ("POST", ["experiments"]) => {
            allow_query(query, &[])?;
            create_experiment(s, body)
        }
        ("GET", ["experiments"]) => {
            allow_query(query, &[LIST, &["namespace"]].concat())?;
            let namespace = query.get("namespace").cloned().unwrap_or_default();
            let items: Vec<Value> = s
                .experiments
                .iter()
                .filter(|e| namespace.is_empty() || e.namespace == namespace)
                .map(experiment_json)
                .collect();
            list(s, query, items, "experiments", EXPERIMENT_FILTER_KEYS)
        }
        ("GET", ["experiments", id]) => {
            allow_query(query, &[])?;
            find_experiment(s, id).map(experiment_json)
        }
        ("DELETE", ["experiments", id]) => {
            allow_query(query, &[])?;
            find_experiment(s, id)?;
            s.experiments.retain(|e| e.experiment_id != *id);
            Ok(json!({}))
        }
        _ => Err(ApiError::not_found("Not Found")),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Validation helpers
// ---------------------------------------------------------------------------------------------------------------

fn allow_query(query: &BTreeMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    match query.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(ApiError::invalid(format!("unknown query parameter {key:?}"))),
        None => Ok(()),
    }
}

/// The body as an object holding only `allowed` fields (protojson rejects unknown fields).
fn object<'a>(
    value: Option<&'a Value>,
    message: &str,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, ApiError> {
    let map = value
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::invalid(format!("{message}: expected a JSON object")))?;
    if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!(
            "proto: (line 1:2): unknown field {key:?} in {message}"
        )));
    }
    Ok(map)
}

fn string_field(map: &Map<String, Value>, key: &str, message: &str) -> Result<String, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ApiError::invalid(format!(
            "{message}.{key}: expected a string, got {other}"
        ))),
    }
}

const RUN_FIELDS: &[&str] = &[
    "experiment_id",
    "run_id",
    "display_name",
    "storage_state",
    "description",
    "pipeline_version_id",
    "pipeline_spec",
    "pipeline_version_reference",
    "runtime_config",
    "service_account",
    "created_at",
    "scheduled_at",
    "finished_at",
    "state",
    "error",
    "run_details",
    "recurring_run_id",
    "state_history",
];
const RECURRING_RUN_FIELDS: &[&str] = &[
    "recurring_run_id",
    "display_name",
    "description",
    "pipeline_version_id",
    "pipeline_spec",
    "pipeline_version_reference",
    "runtime_config",
    "service_account",
    "max_concurrency",
    "trigger",
    "mode",
    "created_at",
    "updated_at",
    "status",
    "error",
    "no_catchup",
    "namespace",
    "experiment_id",
];
const EXPERIMENT_FIELDS: &[&str] = &[
    "experiment_id",
    "display_name",
    "description",
    "created_at",
    "namespace",
    "storage_state",
    "last_run_created_at",
];

/// Checks `pipeline_version_reference` and `runtime_config` of a run or recurring run.
fn check_run_references(s: &FakeState, map: &Map<String, Value>, message: &str) -> Result<(), ApiError> {
    let reference = object(
        map.get("pipeline_version_reference"),
        &format!("{message}.pipeline_version_reference"),
        &["pipeline_id", "pipeline_version_id"],
    )?;
    let pipeline_id = string_field(reference, "pipeline_id", "pipeline_version_reference")?;
    let version_id = string_field(reference, "pipeline_version_id", "pipeline_version_reference")?;
    let version = find_version(s, &pipeline_id, &version_id)?;
    let no_parameters = Map::new();
    let mut parameters = &no_parameters;
    if let Some(config) = map.get("runtime_config") {
        let config = object(
            Some(config),
            &format!("{message}.runtime_config"),
            &["parameters", "pipeline_root"],
        )?;
        if let Some(given) = config.get("parameters") {
            parameters = given
                .as_object()
                .ok_or_else(|| ApiError::invalid("runtime_config.parameters: expected a JSON object"))?;
        }
        string_field(config, "pipeline_root", "runtime_config")?;
    }
    check_parameter_types(&version.pipeline_spec, parameters).map_err(|e| {
        let action = if message == "run" {
            "Failed to create a run: Failed to generate the ExecutionSpec"
        } else {
            "Failed to create a recurring run during scheduled workflow creation"
        };
        ApiError::invalid(format!("{action}: invalid pipeline job inputs: {e}"))
    })?;
    let experiment_id = string_field(map, "experiment_id", message)?;
    if !experiment_id.is_empty() {
        find_experiment(s, &experiment_id)?;
    }
    if string_field(map, "display_name", message)?.is_empty() {
        return Err(ApiError::invalid(format!("{message}.display_name is required")));
    }
    Ok(())
}

/// KFP's `validatePipelineJobInputs` (`backend/src/apiserver/template/v2_template.go`, since
/// kubeflow/pipelines#9228; KFP 2.0.5 makes all three checks, measured by `tests/kfp/kfp_apiserver.rs`): a required
/// input (not `isOptional`, no `defaultValue`) must be given, a parameter the root component declares must hold a
/// `google.protobuf.Value` of the declared kind, and no undeclared parameter may be given; the messages are the
/// backend's.
fn check_parameter_types(spec: &Value, parameters: &Map<String, Value>) -> Result<(), String> {
    let empty = Map::new();
    let declared = spec
        .get("root")
        .and_then(|root| root.get("inputDefinitions"))
        .and_then(|inputs| inputs.get("parameters"))
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, input) in declared {
        let optional = input.get("isOptional").and_then(Value::as_bool) == Some(true)
            || input.get("defaultValue").is_some();
        if !optional && !parameters.contains_key(name) {
            return Err(format!(
                "parameter {name} is not optional, yet has neither default value nor user provided value"
            ));
        }
    }
    let undeclared: Vec<&str> = parameters
        .keys()
        .filter(|name| !declared.contains_key(*name))
        .map(String::as_str)
        .collect();
    if !undeclared.is_empty() {
        return Err(format!(
            "parameter(s) provided are not required by pipeline: {}",
            undeclared.join(", ")
        ));
    }
    for (name, value) in parameters {
        let Some(parameter_type) = declared
            .get(name)
            .and_then(|d| d.get("parameterType"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let (ok, wanted, what) = match parameter_type {
            "NUMBER_DOUBLE" | "NUMBER_INTEGER" => (
                value.is_number(),
                "double or integer",
                "the parameter value is not of number",
            ),
            "STRING" => (
                value.is_string(),
                "string",
                "the input parameter is not of string",
            ),
            "BOOLEAN" => (value.is_boolean(), "bool", "the input parameter is not of bool"),
            "LIST" => (value.is_array(), "list", "the input parameter is not of list"),
            "STRUCT" => (
                value.is_object(),
                "struct",
                "the input parameter is not of struct",
            ),
            _ => continue,
        };
        if !ok {
            return Err(format!(
                "input parameter {name} requires type {wanted}, but {what} value type"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------------------------

fn parse_upload(upload: Option<Upload>) -> Result<Value, ApiError> {
    let upload =
        upload.ok_or_else(|| ApiError::invalid("Failed to read pipeline from file: missing uploadfile"))?;
    let spec: Value = serde_json::from_slice(&upload.bytes)
        .map_err(|e| ApiError::invalid(format!("Failed to parse the pipeline spec: {e}")))?;
    if !spec.is_object() {
        return Err(ApiError::invalid(
            "Failed to parse the pipeline spec: not an object",
        ));
    }
    Ok(spec)
}

fn upload_pipeline(s: &mut FakeState, query: &BTreeMap<String, String>, upload: Option<Upload>) -> ApiResult {
    let spec = parse_upload(upload)?;
    let name = query
        .get("display_name")
        .or_else(|| query.get("name"))
        .cloned()
        .unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::invalid("pipeline name is required"));
    }
    let namespace = query.get("namespace").cloned().unwrap_or_default();
    if s.pipelines
        .iter()
        .any(|p| p.display_name == name && p.namespace == namespace)
    {
        return Err(ApiError::already_exists(format!(
            "Failed to create a pipeline: a pipeline named {name:?} already exists"
        )));
    }
    let pipeline_id = s.id();
    let pipeline = FakePipeline {
        pipeline_id: pipeline_id.clone(),
        display_name: name.clone(),
        namespace,
        description: query.get("description").cloned().unwrap_or_default(),
    };
    s.pipelines.push(pipeline.clone());
    // Like the backend, the upload also creates the first version, named after the pipeline.
    let pipeline_version_id = s.id();
    s.versions.push(FakePipelineVersion {
        pipeline_id,
        pipeline_version_id,
        display_name: name,
        pipeline_spec: spec,
    });
    Ok(pipeline_json(&pipeline))
}

fn upload_pipeline_version(
    s: &mut FakeState,
    query: &BTreeMap<String, String>,
    upload: Option<Upload>,
) -> ApiResult {
    let spec = parse_upload(upload)?;
    let pipeline_id = query.get("pipelineid").cloned().unwrap_or_default();
    if pipeline_id.is_empty() {
        return Err(ApiError::invalid("pipelineid is required"));
    }
    find_pipeline(s, &pipeline_id)?;
    let name = query
        .get("display_name")
        .or_else(|| query.get("name"))
        .cloned()
        .unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::invalid("pipeline version name is required"));
    }
    if s.versions
        .iter()
        .any(|v| v.pipeline_id == pipeline_id && v.display_name == name)
    {
        return Err(ApiError::already_exists(format!(
            "Failed to create a pipeline version: version {name:?} already exists"
        )));
    }
    let version = FakePipelineVersion {
        pipeline_id,
        pipeline_version_id: s.id(),
        display_name: name,
        pipeline_spec: spec,
    };
    s.versions.push(version.clone());
    Ok(version_json(&version))
}

fn create_run(s: &mut FakeState, body: Option<&Value>) -> ApiResult {
    let map = object(body, "v2beta1.Run", RUN_FIELDS)?;
    check_run_references(s, map, "run")?;
    let mut run = map.clone();
    run.insert("run_id".into(), Value::String(s.id()));
    run.insert("state".into(), json!("PENDING"));
    run.insert("storage_state".into(), json!("AVAILABLE"));
    run.insert("created_at".into(), Value::String(s.timestamp()));
    let run = Value::Object(run);
    s.runs.push(run.clone());
    Ok(run)
}

fn create_recurring_run(s: &mut FakeState, body: Option<&Value>) -> ApiResult {
    let map = object(body, "v2beta1.RecurringRun", RECURRING_RUN_FIELDS)?;
    check_run_references(s, map, "recurring_run")?;
    let trigger = object(
        map.get("trigger"),
        "recurring_run.trigger",
        &["cron_schedule", "periodic_schedule"],
    )?;
    let cron = object(
        trigger.get("cron_schedule"),
        "recurring_run.trigger.cron_schedule",
        &["start_time", "end_time", "cron"],
    )?;
    let expression = string_field(cron, "cron", "cron_schedule")?;
    if expression.split_whitespace().count() != 6 {
        return Err(ApiError::invalid(format!(
            "Invalid input error: invalid cron schedule {expression:?}: expected exactly 6 fields (with seconds)"
        )));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .build()
        .parse(&expression)
        .map_err(|e| {
            ApiError::invalid(format!(
                "Invalid input error: invalid cron schedule {expression:?}: {e}"
            ))
        })?;
    for key in ["start_time", "end_time"] {
        string_field(cron, key, "cron_schedule")?;
    }
    let max_concurrency = match map.get("max_concurrency") {
        Some(Value::String(s)) => s.parse::<i64>().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    if !max_concurrency.is_some_and(|n| (1..=10).contains(&n)) {
        return Err(ApiError::invalid("max_concurrency must be in [1, 10]"));
    }
    let mode = string_field(map, "mode", "recurring_run")?;
    if !["", "ENABLE", "DISABLE", "MODE_UNSPECIFIED"].contains(&mode.as_str()) {
        return Err(ApiError::invalid(format!(
            "invalid value for enum RecurringRunMode: {mode:?}"
        )));
    }
    if let Some(no_catchup) = map.get("no_catchup")
        && !no_catchup.is_boolean()
    {
        return Err(ApiError::invalid("no_catchup: expected a boolean"));
    }
    let mut recurring = map.clone();
    recurring.insert("recurring_run_id".into(), Value::String(s.id()));
    recurring.insert(
        "status".into(),
        json!(if mode == "DISABLE" { "DISABLED" } else { "ENABLED" }),
    );
    recurring.insert("created_at".into(), Value::String(s.timestamp()));
    let recurring = Value::Object(recurring);
    s.recurring_runs.push(recurring.clone());
    Ok(recurring)
}

fn create_experiment(s: &mut FakeState, body: Option<&Value>) -> ApiResult {
    let map = object(body, "v2beta1.Experiment", EXPERIMENT_FIELDS)?;
    let display_name = string_field(map, "display_name", "experiment")?;
    if display_name.is_empty() {
        return Err(ApiError::invalid("experiment.display_name is required"));
    }
    let namespace = string_field(map, "namespace", "experiment")?;
    if s.experiments
        .iter()
        .any(|e| e.display_name == display_name && e.namespace == namespace)
    {
        return Err(ApiError::already_exists(format!(
            "Failed to create a new experiment: an experiment named {display_name:?} already exists"
        )));
    }
    let experiment = FakeExperiment {
        experiment_id: s.id(),
        display_name,
        description: string_field(map, "description", "experiment")?,
        namespace,
    };
    s.experiments.push(experiment.clone());
    Ok(experiment_json(&experiment))
}

// ---------------------------------------------------------------------------------------------------------------
// Lookups, lists, JSON
// ---------------------------------------------------------------------------------------------------------------

fn find_pipeline<'a>(s: &'a FakeState, id: &str) -> Result<&'a FakePipeline, ApiError> {
    s.pipelines
        .iter()
        .find(|p| p.pipeline_id == id)
        .ok_or_else(|| ApiError::not_found(format!("Pipeline {id} not found")))
}

fn find_version<'a>(
    s: &'a FakeState,
    pipeline_id: &str,
    id: &str,
) -> Result<&'a FakePipelineVersion, ApiError> {
    s.versions
        .iter()
        .find(|v| v.pipeline_id == pipeline_id && v.pipeline_version_id == id)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Pipeline version {id} of pipeline {pipeline_id:?} not found"
            ))
        })
}

fn find_experiment<'a>(s: &'a FakeState, id: &str) -> Result<&'a FakeExperiment, ApiError> {
    s.experiments
        .iter()
        .find(|e| e.experiment_id == id)
        .ok_or_else(|| ApiError::not_found(format!("Experiment {id} not found")))
}

fn find_json(items: &[Value], key: &str, id: &str, what: &str) -> ApiResult {
    items
        .iter()
        .find(|item| item[key] == *id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("{what} {id} not found")))
}

fn pipeline_json(p: &FakePipeline) -> Value {
    let mut value = json!({"pipeline_id": p.pipeline_id, "name": p.display_name, "display_name": p.display_name, "created_at": "2024-01-01T00:00:00Z"});
    if !p.namespace.is_empty() {
        value["namespace"] = json!(p.namespace);
    }
    if !p.description.is_empty() {
        value["description"] = json!(p.description);
    }
    value
}

fn version_json(v: &FakePipelineVersion) -> Value {
    json!({
        "pipeline_id": v.pipeline_id,
        "pipeline_version_id": v.pipeline_version_id,
        "name": v.display_name,
        "display_name": v.display_name,
        "created_at": "2024-01-01T00:00:00Z",
        "pipeline_spec": v.pipeline_spec,
    })
}

fn experiment_json(e: &FakeExperiment) -> Value {
    let mut value = json!({
        "experiment_id": e.experiment_id,
        "display_name": e.display_name,
        "created_at": "2024-01-01T00:00:00Z",
        "storage_state": "AVAILABLE",
    });
    if !e.description.is_empty() {
        value["description"] = json!(e.description);
    }
    if !e.namespace.is_empty() {
        value["namespace"] = json!(e.namespace);
    }
    value
}

/// Applies `filter`, `sort_by` and pagination; answers `{<items_key>, total_size, next_page_token}` with empty
/// fields left out, as protojson does.
/// The runs or recurring runs of the `experiment_id` or `namespace` asked for (the namespace of their experiment),
/// as `ListRuns`/`ListRecurringRuns` scope them; all without either.
fn in_scope(
    s: &FakeState,
    query: &BTreeMap<String, String>,
    items: &[Value],
) -> Result<Vec<Value>, ApiError> {
    let experiment = query.get("experiment_id").filter(|e| !e.is_empty());
    let namespace = query.get("namespace").filter(|n| !n.is_empty());
    if let Some(id) = experiment {
        find_experiment(s, id)?;
    }
    let namespace_of = |item: &Value| {
        s.experiments
            .iter()
            .find(|e| item["experiment_id"] == e.experiment_id.as_str())
            .map(|e| e.namespace.clone())
            .unwrap_or_default()
    };
    Ok(items
        .iter()
        .filter(|item| experiment.is_none_or(|id| item["experiment_id"] == id.as_str()))
        .filter(|item| experiment.is_some() || namespace.is_none_or(|ns| namespace_of(item) == **ns))
        .cloned()
        .collect())
}

/// The keys KFP 2.0.5 takes in a list `filter` (`backend/src/apiserver/model/*.go`, `APIToModelFieldMap`: v2beta1
/// and v1beta1 names); any other is refused with `no support for filtering on unrecognized field`.
const PIPELINE_FILTER_KEYS: &[&str] = &[
    "id",
    "pipeline_id",
    "name",
    "display_name",
    "created_at",
    "description",
    "namespace",
];
const PIPELINE_VERSION_FILTER_KEYS: &[&str] = &[
    "id",
    "pipeline_version_id",
    "name",
    "display_name",
    "created_at",
    "status",
    "description",
    "pipeline_spec",
];
const RUN_FILTER_KEYS: &[&str] = &[
    "run_id",
    "id",
    "display_name",
    "name",
    "created_at",
    "finished_at",
    "description",
    "scheduled_at",
    "storage_state",
    "status",
    "namespace",
    "experiment_id",
    "state",
    "state_history",
    "runtime_details",
    "recurring_run_id",
];
const RECURRING_RUN_FILTER_KEYS: &[&str] = &[
    "id",
    "recurring_run_id",
    "name",
    "display_name",
    "created_at",
    "updated_at",
    "description",
];
const EXPERIMENT_FILTER_KEYS: &[&str] = &[
    "id",
    "experiment_id",
    "name",
    "display_name",
    "created_at",
    "description",
    "namespace",
    "storage_state",
];

fn list(
    s: &FakeState,
    query: &BTreeMap<String, String>,
    items: Vec<Value>,
    items_key: &str,
    filter_keys: &[&str],
) -> ApiResult {
    let mut items = match query.get("filter").filter(|f| !f.is_empty()) {
        Some(filter) => {
            let wanted = parse_filter(filter, filter_keys)?;
            items
                .into_iter()
                .filter(|item| wanted.iter().all(|(key, value)| item[key.as_str()] == *value))
                .collect()
        }
        None => items,
    };
    match query.get("sort_by").map(String::as_str) {
        None | Some("") | Some("created_at") | Some("created_at asc") => {}
        Some("created_at desc") => items.reverse(),
        Some(other) => return Err(ApiError::invalid(format!("Invalid sorting field: {other:?}"))),
    }
    let page_size = match query.get("page_size") {
        None => 20,
        Some(size) => match size.parse::<usize>() {
            Ok(0) => 20,
            Ok(n) => n,
            Err(_) => return Err(ApiError::invalid(format!("page_size: invalid value {size:?}"))),
        },
    }
    .min(s.max_page_size);
    let offset = match query.get("page_token").map(String::as_str) {
        None | Some("") => 0,
        Some(token) => token
            .strip_prefix("offset-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| ApiError::invalid(format!("Invalid page token {token:?}")))?,
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(page_size).collect();
    let mut answer = Map::new();
    if !page.is_empty() {
        answer.insert(items_key.to_string(), Value::Array(page));
    }
    answer.insert("total_size".into(), json!(total));
    if offset + page_size < total {
        answer.insert(
            "next_page_token".into(),
            json!(format!("offset-{}", offset + page_size)),
        );
    }
    Ok(Value::Object(answer))
}

/// A JSON `Filter` (filter.proto): `{"predicates": [{"key", "operation", "string_value"}]}`. Supports `EQUALS` on
/// `display_name` with a `string_value`. A key KFP does not know for the listed type (`known`) is refused with KFP's
/// own message; one it knows, or another operation, is refused too (the fake does not answer what it does not
/// implement), with a message saying so.
fn parse_filter(filter: &str, known: &[&str]) -> Result<Vec<(String, Value)>, ApiError> {
    let value: Value = serde_json::from_str(filter).map_err(|e| {
        ApiError::invalid(format!(
            "Failed to create list options: Invalid input error: failed to parse valid filter from {filter:?}: {e}"
        ))
    })?;
    let map = object(Some(&value), "Filter", &["predicates"])?;
    let predicates = map
        .get("predicates")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid("Invalid filter: predicates must be a list"))?;
    let allowed = [
        "operation",
        "key",
        "int_value",
        "long_value",
        "string_value",
        "timestamp_value",
        "int_values",
        "long_values",
        "string_values",
    ];
    let mut wanted = Vec::new();
    let mut seen = BTreeSet::new();
    for predicate in predicates {
        let p = object(Some(predicate), "Predicate", &allowed)?;
        let key = string_field(p, "key", "Predicate")?;
        let operation = string_field(p, "operation", "Predicate")?;
        if !known.contains(&key.as_str()) {
            return Err(ApiError::invalid(format!(
                "Failed to create list options: Invalid input error: no support for filtering on unrecognized field {key:?}"
            )));
        }
        if operation != "EQUALS" || key != "display_name" || !seen.insert(key.clone()) {
            return Err(ApiError::invalid(format!(
                "Invalid filter: the fake supports display_name EQUALS only, got {key:?} {operation:?}"
            )));
        }
        let value = p.get("string_value").filter(|v| v.is_string()).ok_or_else(|| {
            ApiError::invalid("Invalid filter: EQUALS on display_name needs a string_value")
        })?;
        wanted.push((key, value.clone()));
    }
    Ok(wanted)
}
