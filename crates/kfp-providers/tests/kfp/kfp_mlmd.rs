//! The ML Metadata artifact resolver against a fake `ml_metadata.MetadataStoreService` served by tonic on loopback
//! (the same hand-written messages, real HTTP/2 gRPC). The fake keeps an in-memory store shaped like what KFP v2's
//! driver and launcher write (a `system.PipelineRun` context named after the run id, executions with a
//! `display_name` custom property, OUTPUT events whose path key is the output name, artifacts with `uri` and custom
//! properties, `display_name` defaulting to the output name) and answers like MLMD does: an unknown context is an
//! empty response (not an error), `GetExecutionsByContext` pages at most 100 (`max_result_size` <= 0 is
//! InvalidArgument) and returns everything without options, `GetEventsByExecutionIDs` / `GetArtifactsByID` return
//! what exists. It records every call with its `authorization` header, can require a token, fail or hang calls.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use kfp_core::artifact::select_artifacts;
use kfp_core::event::RunCompletionStatus;
use kfp_core::provider::{DeliveryOutcome, EventSource, Provider, ProviderConfig, ProviderError};
use kfp_core::values::{Artifact as Selected, NamespacedName, OutputArtifact};
use kfp_providers::conformance::ConformanceFixtures;
use kfp_providers::kfp::api::Run;
use kfp_providers::kfp::artifacts::ArtifactResolver;
use kfp_providers::kfp::events::{KfpEventSource, workflow_resource};
use kfp_providers::kfp::fake::FakeKfp;
use kfp_providers::kfp::mlmd::proto::event::path::{Step, step};
use kfp_providers::kfp::mlmd::proto::event::{Path, Type};
use kfp_providers::kfp::mlmd::proto::{
    Artifact, Context, Event, Execution, GetArtifactsByIdRequest, GetArtifactsByIdResponse,
    GetContextByTypeAndNameRequest, GetContextByTypeAndNameResponse, GetEventsByExecutionIdsRequest,
    GetEventsByExecutionIdsResponse, GetExecutionsByContextRequest, GetExecutionsByContextResponse, Value,
};
use kfp_providers::kfp::mlmd::{
    DISPLAY_NAME, MlmdArtifactResolver, PIPELINE_RUN_CONTEXT_TYPE, SERVICE, methods,
};
use kfp_providers::kfp::{ArtifactSource, DEFAULT_METADATA_STORE_ADDRESS, KfpConfig, KfpProvider};
use kfp_testenv::TestEnv;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::json;
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Request, Response, Status};

// --- the fake MetadataStoreService --------------------------------------------------------------------------------

/// One call the fake answered (or refused).
#[derive(Debug, Clone, PartialEq)]
struct Call {
    method: String,
    authorization: Option<String>,
}

#[derive(Default)]
struct Store {
    next_id: i64,
    contexts: Vec<Context>,
    /// (execution, context id)
    executions: Vec<(Execution, i64)>,
    events: Vec<Event>,
    artifacts: Vec<Artifact>,
    calls: Vec<Call>,
    required_token: Option<String>,
    /// (method name or "*", status): the next call of that method fails with the status.
    failures: VecDeque<(String, Status)>,
    hang: bool,
}

impl Store {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn context_by_type_and_name(
        &mut self,
        request: GetContextByTypeAndNameRequest,
    ) -> Result<GetContextByTypeAndNameResponse, Status> {
        // MLMD: "If no context found, it returns OK and empty response."
        let context = self
            .contexts
            .iter()
            .find(|c| c.r#type == request.type_name && c.name == request.context_name)
            .cloned();
        Ok(GetContextByTypeAndNameResponse { context })
    }

    fn executions_by_context(
        &mut self,
        request: GetExecutionsByContextRequest,
    ) -> Result<GetExecutionsByContextResponse, Status> {
        let context_id = request.context_id.unwrap_or_default();
        let all: Vec<Execution> = self
            .executions
            .iter()
            .filter(|(_, c)| *c == context_id)
            .map(|(e, _)| e.clone())
            .collect();
        let Some(options) = request.options else {
            // No options: every execution.
            return Ok(GetExecutionsByContextResponse {
                executions: all,
                next_page_token: None,
            });
        };
        let size = options.max_result_size.unwrap_or(20);
        if size <= 0 {
            return Err(Status::invalid_argument("max_result_size must be positive"));
        }
        let size = size.min(100) as usize;
        // An opaque token: the last id returned (ordered by id, ascending, MLMD's default).
        let after: i64 = match options.next_page_token.as_deref().filter(|t| !t.is_empty()) {
            None => 0,
            Some(token) => token
                .strip_prefix("after-")
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| Status::invalid_argument("bad next_page_token"))?,
        };
        let rest: Vec<Execution> = all
            .into_iter()
            .filter(|e| e.id.unwrap_or_default() > after)
            .collect();
        let more = rest.len() > size;
        let executions: Vec<Execution> = rest.into_iter().take(size).collect();
        let next_page_token = more
            .then(|| executions.last().and_then(|e| e.id))
            .flatten()
            .map(|id| format!("after-{id}"));
        Ok(GetExecutionsByContextResponse {
            executions,
            next_page_token,
        })
    }

    fn events_by_execution_ids(
        &mut self,
        request: GetEventsByExecutionIdsRequest,
    ) -> Result<GetEventsByExecutionIdsResponse, Status> {
        let events = self
            .events
            .iter()
            .filter(|e| {
                request
                    .execution_ids
                    .contains(&e.execution_id.unwrap_or_default())
            })
            .cloned()
            .collect();
        Ok(GetEventsByExecutionIdsResponse { events })
    }

    fn artifacts_by_id(
        &mut self,
        request: GetArtifactsByIdRequest,
    ) -> Result<GetArtifactsByIdResponse, Status> {
        // Not index-aligned: unknown ids are left out.
        let artifacts = self
            .artifacts
            .iter()
            .filter(|a| request.artifact_ids.contains(&a.id.unwrap_or_default()))
            .cloned()
            .collect();
        Ok(GetArtifactsByIdResponse { artifacts })
    }
}

#[derive(Clone)]
struct FakeMlmd {
    store: Arc<Mutex<Store>>,
    address: String,
    _shutdown: Arc<tokio::sync::oneshot::Sender<()>>,
}

impl FakeMlmd {
    async fn start() -> Self {
        let store = Arc::new(Mutex::new(Store::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let service = MlmdService { store: store.clone() };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), async {
                    let _ = rx.await;
                }),
        );
        Self {
            store,
            address,
            _shutdown: Arc::new(tx),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap()
    }

    /// The `system.PipelineRun` context KFP's root driver creates for a run (name = run id).
    fn add_run(&self, run_id: &str) -> i64 {
        let mut store = self.store();
        let id = store.id();
        store.contexts.push(Context {
            id: Some(id),
            type_id: Some(1),
            name: Some(run_id.to_string()),
            r#type: Some(PIPELINE_RUN_CONTEXT_TYPE.to_string()),
            ..Context::default()
        });
        id
    }

    /// An execution of the run `context` (`system.ContainerExecution`, state COMPLETE) with `display_name`.
    fn add_execution(&self, context: i64, display_name: Option<&str>) -> i64 {
        let mut store = self.store();
        let id = store.id();
        let mut execution = Execution {
            id: Some(id),
            type_id: Some(2),
            last_known_state: Some(3),
            r#type: Some("system.ContainerExecution".into()),
            ..Execution::default()
        };
        if let Some(name) = display_name {
            execution
                .custom_properties
                .insert(DISPLAY_NAME.into(), Value::string(name));
            execution
                .custom_properties
                .insert("task_name".into(), Value::string(name));
        }
        store.executions.push((execution, context));
        id
    }

    /// An output artifact as KFP's launcher records it: `display_name` = the output name unless given, an OUTPUT
    /// event with path `[key: output]`.
    fn add_output(&self, execution: i64, output: &str, uri: &str, properties: &[(&str, Value)]) -> i64 {
        let mut store = self.store();
        let id = store.id();
        let mut artifact = Artifact {
            id: Some(id),
            type_id: Some(3),
            uri: Some(uri.to_string()),
            state: Some(2),
            r#type: Some("system.Model".into()),
            ..Artifact::default()
        };
        for (key, value) in properties {
            artifact.custom_properties.insert(key.to_string(), value.clone());
        }
        artifact
            .custom_properties
            .entry(DISPLAY_NAME.into())
            .or_insert_with(|| Value::string(output));
        store.artifacts.push(artifact);
        store.events.push(event(execution, id, Type::Output, output));
        id
    }

    /// An INPUT event: `execution` read `artifact`.
    fn add_input(&self, execution: i64, artifact: i64, key: &str) {
        self.store()
            .events
            .push(event(execution, artifact, Type::Input, key));
    }

    /// The next call of `method` (`"*"`: any) fails with `status`.
    fn fail(&self, method: &str, status: Status) {
        self.store().failures.push_back((method.to_string(), status));
    }

    fn calls(&self) -> Vec<Call> {
        self.store().calls.clone()
    }

    fn methods_called(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.method).collect()
    }
}

fn event(execution: i64, artifact: i64, kind: Type, key: &str) -> Event {
    Event {
        artifact_id: Some(artifact),
        execution_id: Some(execution),
        path: Some(Path {
            steps: vec![Step {
                value: Some(step::Value::Key(key.into())),
            }],
        }),
        r#type: Some(kind as i32),
        milliseconds_since_epoch: Some(1_700_000_000_000),
    }
}

/// The tower service tonic serves: routes the four RPCs by path, like generated server code.
#[derive(Clone)]
struct MlmdService {
    store: Arc<Mutex<Store>>,
}

impl NamedService for MlmdService {
    const NAME: &'static str = SERVICE;
}

struct Handler<Req, Resp> {
    store: Arc<Mutex<Store>>,
    method: &'static str,
    answer: fn(&mut Store, Req) -> Result<Resp, Status>,
}

impl<Req: Send + 'static, Resp: Send + 'static> UnaryService<Req> for Handler<Req, Resp> {
    type Response = Resp;
    type Future = BoxFuture<Response<Resp>, Status>;

    fn call(&mut self, request: Request<Req>) -> Self::Future {
        let store = self.store.clone();
        let method = self.method;
        let answer = self.answer;
        Box::pin(async move {
            let authorization = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let hang = {
                let mut store = store.lock().unwrap();
                store.calls.push(Call {
                    method: method.rsplit('/').next().unwrap().to_string(),
                    authorization: authorization.clone(),
                });
                if let Some(token) = &store.required_token
                    && authorization.as_deref() != Some(format!("Bearer {token}").as_str())
                {
                    return Err(Status::unauthenticated("a valid bearer token is required"));
                }
                let name = method.rsplit('/').next().unwrap();
                if let Some(i) = store.failures.iter().position(|(m, _)| m == "*" || m == name)
                    && let Some((_, status)) = store.failures.remove(i)
                {
                    return Err(status);
                }
                store.hang
            };
            if hang {
                std::future::pending::<()>().await;
            }
            let mut store = store.lock().unwrap();
            answer(&mut store, request.into_inner()).map(Response::new)
        })
    }
}

async fn serve<B, Req, Resp>(
    store: Arc<Mutex<Store>>,
    method: &'static str,
    answer: fn(&mut Store, Req) -> Result<Resp, Status>,
    request: http::Request<B>,
) -> http::Response<tonic::body::Body>
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
{
    let handler = Handler {
        store,
        method,
        answer,
    };
    let mut grpc = Grpc::new(tonic_prost::ProstCodec::<Resp, Req>::default());
    grpc.unary(handler, request).await
}

impl<B> Service<http::Request<B>> for MlmdService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let store = self.store.clone();
        Box::pin(async move {
            let path = request.uri().path().to_string();
            Ok(match path.as_str() {
                methods::GET_CONTEXT_BY_TYPE_AND_NAME => {
                    serve(
                        store,
                        methods::GET_CONTEXT_BY_TYPE_AND_NAME,
                        Store::context_by_type_and_name,
                        request,
                    )
                    .await
                }
                methods::GET_EXECUTIONS_BY_CONTEXT => {
                    serve(
                        store,
                        methods::GET_EXECUTIONS_BY_CONTEXT,
                        Store::executions_by_context,
                        request,
                    )
                    .await
                }
                methods::GET_EVENTS_BY_EXECUTION_IDS => {
                    serve(
                        store,
                        methods::GET_EVENTS_BY_EXECUTION_IDS,
                        Store::events_by_execution_ids,
                        request,
                    )
                    .await
                }
                methods::GET_ARTIFACTS_BY_ID => {
                    serve(
                        store,
                        methods::GET_ARTIFACTS_BY_ID,
                        Store::artifacts_by_id,
                        request,
                    )
                    .await
                }
                other => Status::unimplemented(format!("{other} is not served by the fake")).into_http(),
            })
        })
    }
}

// --- helpers ---------------------------------------------------------------------------------------------------

fn config(timeout: Duration) -> KfpConfig {
    let mut config = KfpConfig::new(NamespacedName::new("kfp-operator-system", "kfp"));
    config.request_timeout = timeout;
    config.token_path = "/nonexistent/token".into();
    config
}

fn resolver(fake: &FakeMlmd, config: &KfpConfig) -> MlmdArtifactResolver {
    MlmdArtifactResolver::new(&fake.address, config).unwrap()
}

async fn components(
    resolver: &MlmdArtifactResolver,
    run_id: &str,
) -> Result<Vec<kfp_core::event::PipelineComponent>, ProviderError> {
    resolver.pipeline_components(run_id, &Run::default()).await
}

fn output(name: &str, path: &str) -> OutputArtifact {
    OutputArtifact {
        name: name.to_string(),
        path: path.parse().unwrap(),
    }
}

fn selected(name: &str, location: &str) -> Selected {
    Selected {
        name: name.into(),
        location: location.into(),
    }
}

fn assert_transient<T: std::fmt::Debug>(result: Result<T, ProviderError>) -> String {
    match result {
        Err(ProviderError::Transient(message)) => message,
        other => panic!("expected a transient error, got {other:?}"),
    }
}

/// A TFX-like run: Trainer (model pushed: 1, statistics), Evaluator (KFP-style double and bool metadata), Pusher
/// (reads the model, writes an unpushed model), a DAG execution with no outputs, and another run's execution.
fn kfp_run(fake: &FakeMlmd, run_id: &str) {
    let context = fake.add_run(run_id);
    fake.add_execution(context, Some("root"));
    let trainer = fake.add_execution(context, Some("Trainer"));
    let model = fake.add_output(
        trainer,
        "model",
        "gs://bucket/trainer/model/1",
        &[("pushed", Value::int(1))],
    );
    fake.add_output(trainer, "statistics", "gs://bucket/stats/1", &[]);
    let evaluator = fake.add_execution(context, Some("Evaluator"));
    fake.add_input(evaluator, model, "model");
    fake.add_output(
        evaluator,
        "evaluation",
        "gs://bucket/evaluation/1",
        &[("blessed", Value::double(1.0)), ("accuracy", Value::double(0.93))],
    );
    let pusher = fake.add_execution(context, Some("Pusher"));
    fake.add_input(pusher, model, "model");
    fake.add_output(
        pusher,
        "pushed_model",
        "gs://bucket/pusher/model/2",
        &[
            ("pushed", Value::int(0)),
            ("pushed_destination", Value::string("")),
        ],
    );

    let other = fake.add_run("another-run");
    let stranger = fake.add_execution(other, Some("Trainer"));
    fake.add_output(
        stranger,
        "model",
        "gs://bucket/other/model",
        &[("pushed", Value::int(1))],
    );
}

// --- tests -----------------------------------------------------------------------------------------------------

#[tokio::test]
async fn outputs_of_a_kfp_run_become_components_that_artifact_selection_resolves() {
    let fake = FakeMlmd::start().await;
    kfp_run(&fake, "run-1");
    let resolver = resolver(&fake, &config(Duration::from_secs(5)));

    let components = components(&resolver, "run-1").await.unwrap();
    assert_eq!(
        serde_json::to_value(&components).unwrap(),
        json!([
            {"name": "Trainer", "componentArtifacts": [
                {"name": "model", "artifacts": [{"uri": "gs://bucket/trainer/model/1",
                    "metadata": {"display_name": "model", "pushed": 1}}]},
                {"name": "statistics", "artifacts": [{"uri": "gs://bucket/stats/1",
                    "metadata": {"display_name": "statistics"}}]}
            ]},
            {"name": "Evaluator", "componentArtifacts": [
                {"name": "evaluation", "artifacts": [{"uri": "gs://bucket/evaluation/1",
                    "metadata": {"accuracy": 0.93, "blessed": 1.0, "display_name": "evaluation"}}]}
            ]},
            {"name": "Pusher", "componentArtifacts": [
                {"name": "pushed_model", "artifacts": [{"uri": "gs://bucket/pusher/model/2",
                    "metadata": {"display_name": "pushed_model", "pushed": 0, "pushed_destination": ""}}]}
            ]}
        ])
    );

    // The operator's artifact selection with the real selection function: the int property `pushed: 1` and the double
    // `blessed: 1.0` both satisfy `== 1`; the pusher's `pushed: 0` does not.
    let outputs = [
        output("model", "Trainer:model:0[pushed == 1]"),
        output("stats", "Trainer:statistics:0"),
        output(
            "blessed",
            "Evaluator:evaluation:0[blessed == 1 and accuracy > 0.9]",
        ),
        output("pushed", "Pusher:pushed_model:0[pushed == 1]"),
        output("missing", "Trainer:model:1"),
    ];
    assert_eq!(
        select_artifacts(&outputs, &components),
        vec![
            selected("model", "gs://bucket/trainer/model/1"),
            selected("stats", "gs://bucket/stats/1"),
            selected("blessed", "gs://bucket/evaluation/1"),
        ]
    );

    // The walk of docs/providers/kubeflow-pipelines.md, "Artifacts from ML Metadata", one request each, no token
    // without a token file.
    assert_eq!(
        fake.methods_called(),
        [
            "GetContextByTypeAndName",
            "GetExecutionsByContext",
            "GetEventsByExecutionIDs",
            "GetArtifactsByID"
        ]
    );
    assert!(fake.calls().iter().all(|c| c.authorization.is_none()));
}

#[tokio::test]
async fn a_run_without_a_context_has_no_components() {
    let fake = FakeMlmd::start().await;
    kfp_run(&fake, "run-1");
    let resolver = resolver(&fake, &config(Duration::from_secs(5)));
    assert!(components(&resolver, "unknown-run").await.unwrap().is_empty());
    assert_eq!(fake.methods_called(), ["GetContextByTypeAndName"]);

    // A context without executions (or without outputs) has none either.
    fake.add_run("empty-run");
    assert!(components(&resolver, "empty-run").await.unwrap().is_empty());
}

#[tokio::test]
async fn executions_are_paged_and_ids_sent_in_chunks() {
    let fake = FakeMlmd::start().await;
    let context = fake.add_run("big-run");
    for i in 0..150 {
        let execution = fake.add_execution(context, Some(&format!("step-{i:03}")));
        fake.add_output(
            execution,
            "out",
            &format!("gs://bucket/{i}"),
            &[("i", Value::int(i))],
        );
    }
    let resolver = resolver(&fake, &config(Duration::from_secs(5)));
    let components = components(&resolver, "big-run").await.unwrap();
    assert_eq!(components.len(), 150);
    assert_eq!(components[0].name, "step-000");
    assert_eq!(components[149].name, "step-149");
    assert_eq!(
        components[149].component_artifacts[0].artifacts[0].uri,
        "gs://bucket/149"
    );
    assert_eq!(
        fake.methods_called(),
        [
            "GetContextByTypeAndName",
            "GetExecutionsByContext",
            "GetExecutionsByContext",
            "GetEventsByExecutionIDs",
            "GetEventsByExecutionIDs",
            "GetArtifactsByID",
            "GetArtifactsByID"
        ]
    );
}

#[tokio::test]
async fn an_unreachable_store_is_transient() {
    // A loopback port that was just free and is closed now.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let resolver = MlmdArtifactResolver::new(&address, &config(Duration::from_secs(5))).unwrap();
    let message = assert_transient(components(&resolver, "run-1").await);
    assert!(message.contains("GetContextByTypeAndName"), "{message}");
}

#[tokio::test]
async fn failing_and_hanging_calls_are_transient() {
    let fake = FakeMlmd::start().await;
    kfp_run(&fake, "run-1");
    let resolver = resolver(&fake, &config(Duration::from_millis(500)));

    for code in [Code::Unavailable, Code::DeadlineExceeded, Code::Internal] {
        fake.fail("*", Status::new(code, "store trouble"));
        let message = assert_transient(components(&resolver, "run-1").await);
        assert!(message.contains("store trouble"), "{message}");
    }
    // A failure late in the walk fails the whole read: no partial components.
    fake.fail("GetArtifactsByID", Status::unavailable("artifacts down"));
    let message = assert_transient(components(&resolver, "run-1").await);
    assert!(
        message.contains("GetArtifactsByID") && message.contains("artifacts down"),
        "{message}"
    );
    assert_eq!(components(&resolver, "run-1").await.unwrap().len(), 3);

    // A call that never answers is cut at the request timeout.
    fake.store().hang = true;
    let message = assert_transient(components(&resolver, "run-1").await);
    assert!(
        message.contains("did not answer") || message.contains("imeout"),
        "{message}"
    );
    fake.store().hang = false;
    assert_eq!(components(&resolver, "run-1").await.unwrap().len(), 3);

    // Invalid requests are permanent errors of the resolver (the event source still retries).
    fake.fail("*", Status::invalid_argument("bad request"));
    assert!(components(&resolver, "run-1").await.unwrap_err().is_permanent());
}

#[tokio::test]
async fn the_bearer_token_is_sent_and_reread_after_rotation() {
    let fake = FakeMlmd::start().await;
    kfp_run(&fake, "run-1");
    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("token");
    std::fs::write(&token_path, "token-1\n").unwrap();
    let mut config = config(Duration::from_secs(5));
    config.multi_user = true;
    config.token_path = token_path.clone();
    let resolver = resolver(&fake, &config);

    fake.store().required_token = Some("token-1".into());
    assert_eq!(components(&resolver, "run-1").await.unwrap().len(), 3);
    let calls = fake.calls();
    assert_eq!(calls.len(), 4);
    assert!(
        calls
            .iter()
            .all(|c| c.authorization.as_deref() == Some("Bearer token-1")),
        "{calls:?}"
    );

    // The projected token rotates: the next call reads the file again.
    std::fs::write(&token_path, "token-2").unwrap();
    fake.store().required_token = Some("token-2".into());
    assert_eq!(components(&resolver, "run-1").await.unwrap().len(), 3);
    assert_eq!(
        fake.calls().last().unwrap().authorization.as_deref(),
        Some("Bearer token-2")
    );

    // A refused token is an error, and the token is not in it.
    fake.store().required_token = Some("token-3".into());
    let message = assert_transient(components(&resolver, "run-1").await);
    assert!(
        message.contains("Unauthenticated") && !message.contains("token-2"),
        "{message}"
    );

    // Multi-user mode without a token file: nothing is sent.
    std::fs::remove_file(&token_path).unwrap();
    let before = fake.calls().len();
    assert_transient(components(&resolver, "run-1").await);
    assert_eq!(fake.calls().len(), before);
}

#[test]
fn parameters_choose_the_artifact_source() {
    let source = |parameters: &[(&str, &str)]| {
        let mut vars = vec![("PROVIDERNAME".to_string(), "ops/kfp".to_string())];
        vars.extend(
            parameters
                .iter()
                .map(|(k, v)| (format!("PARAMETERS_{}", k.to_ascii_uppercase()), v.to_string())),
        );
        let config =
            ProviderConfig::from_env_vars(vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        KfpConfig::from_provider_config(&config).map(|c| c.artifact_source)
    };
    let mlmd = |address: &str| ArtifactSource::Mlmd {
        address: address.into(),
    };
    assert_eq!(source(&[]).unwrap(), ArtifactSource::Rest);
    assert_eq!(
        source(&[("grpcMetadataStoreAddress", "mlmd.kubeflow:8080")]).unwrap(),
        mlmd("mlmd.kubeflow:8080")
    );
    assert_eq!(
        source(&[("artifactSource", "MLMD")]).unwrap(),
        mlmd(DEFAULT_METADATA_STORE_ADDRESS)
    );
    assert_eq!(
        source(&[
            ("artifactSource", "rest"),
            ("grpcMetadataStoreAddress", "mlmd:8080")
        ])
        .unwrap(),
        ArtifactSource::Rest
    );
    assert!(source(&[("artifactSource", "s3")]).unwrap_err().is_permanent());
    // The event source factory accepts both (it connects lazily); an https address is refused.
    let factory = |parameters: Vec<(&str, &str)>| {
        let mut config = ProviderConfig::new(NamespacedName::new("ops", "kfp"));
        for (k, v) in parameters {
            config.parameters.insert(k.to_ascii_lowercase(), json!(v));
        }
        KfpEventSource::factory(&config)
    };
    assert!(factory(vec![("grpcMetadataStoreAddress", "mlmd:8080")]).is_ok());
    let Err(err) = factory(vec![("grpcMetadataStoreAddress", "https://mlmd:443")]) else {
        panic!("an https address is refused");
    };
    assert!(err.is_permanent(), "{err:?}");
}

#[tokio::test]
async fn the_event_source_reads_artifacts_from_ml_metadata_when_configured() {
    let env = TestEnv::shared().await.unwrap();
    env.install_argo_crds().await.unwrap();
    let namespace = env.namespace().await.unwrap();
    let client = env.client().await.unwrap();
    let kfp = FakeKfp::start().await.unwrap();
    let mlmd = FakeMlmd::start().await;

    // The configuration as the provider service reads it: grpcMetadataStoreAddress selects ML Metadata.
    let mut provider_config = ProviderConfig::new(NamespacedName::new("kfp-operator-system", "kfp"));
    for (key, value) in [
        ("restKfpApiUrl", kfp.url().to_string()),
        ("kfpNamespace", namespace.name().to_string()),
        ("grpcMetadataStoreAddress", mlmd.address.clone()),
        ("requestTimeoutSeconds", "5".to_string()),
    ] {
        provider_config
            .parameters
            .insert(key.to_ascii_lowercase(), json!(value));
    }
    let config = KfpConfig::from_provider_config(&provider_config).unwrap();
    assert!(matches!(config.artifact_source, ArtifactSource::Mlmd { .. }));

    let provider = KfpProvider::new(config.clone()).unwrap();
    let mut fixtures = ConformanceFixtures::default();
    // The kit's pipeline declares no inputs, and KFP (and the fake) refuse undeclared parameters.
    fixtures.run.parameters.clear();
    provider.create_pipeline(&fixtures.pipeline).await.unwrap();
    provider.create_experiment(&fixtures.experiment).await.unwrap();
    let run_id = provider.create_run(&fixtures.run).await.unwrap();
    kfp_run(&mlmd, &run_id);

    let workflows: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace.name(), &workflow_resource());
    let workflow: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "wf-mlmd", "labels": {"pipeline/runid": run_id, "workflows.argoproj.io/phase": "Succeeded"}},
        "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "busybox"}}]},
        "status": {"phase": "Succeeded"}
    }))
    .unwrap();
    workflows.create(&PostParams::default(), &workflow).await.unwrap();

    let mut source = KfpEventSource::new(config, client).unwrap();
    // ML Metadata is down once: no event without its artifacts; the workflow is read again on the next call.
    mlmd.fail("GetExecutionsByContext", Status::unavailable("restarting"));
    let err = tokio::time::timeout(Duration::from_secs(20), source.next_event())
        .await
        .expect("no answer in time")
        .expect_err("a failed MLMD read is an error");
    assert!(!err.is_permanent(), "{err:?}");

    let delivery = tokio::time::timeout(Duration::from_secs(20), source.next_event())
        .await
        .expect("no event in time")
        .unwrap()
        .unwrap();
    let event = &delivery.event;
    assert_eq!(event.status, RunCompletionStatus::Succeeded);
    assert_eq!(event.run_id, run_id);
    let names: Vec<&str> = event
        .pipeline_components
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["Trainer", "Evaluator", "Pusher"]);
    assert_eq!(
        event
            .to_event(&[output("model", "Trainer:model:0[pushed == 1]")])
            .artifacts,
        vec![selected("model", "gs://bucket/trainer/model/1")]
    );
    // The REST artifact API was not used.
    assert!(
        kfp.requests()
            .iter()
            .all(|r| !r.path.starts_with("/apis/v2beta1/artifacts/"))
    );
    source
        .settle(delivery.receipt, DeliveryOutcome::Delivered)
        .await
        .unwrap();
}
