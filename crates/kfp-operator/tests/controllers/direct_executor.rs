//! The direct executor end to end: the real stub provider and the real local compiler running
//! `compilers/stub/compile.sh`, mock providers and compilers for the error classes, timeouts, panics, completions
//! and consumption; and the registry resolver against a real kube-apiserver (`kfp-testenv`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kfp_core::compiler::{CompileError, MockCompiler};
use kfp_core::definitions::{
    ExperimentDefinition, PipelineDefinitionWrapper, ProviderOutput, RunDefinition, RunScheduleDefinition,
};
use kfp_core::executor::{
    Action, Executor, ExecutorError, FailureClass, Operation, OperationDefinition, OperationOutcome,
    OutcomeState, ResourceKind, ResourceRef,
};
use kfp_core::provider::{MockProvider, ObjectIdentity, Provider, ProviderError};
use kfp_core::resources::v1beta1::{Provider as ProviderResource, ProviderSpec};
use kfp_core::values::NamespacedName;
use kfp_operator::compiler::LocalCompiler;
use kfp_operator::executor::Completions;
use kfp_operator::executor::direct::{
    DirectExecutor, PROVIDER_TYPE_ANNOTATION, ProviderResolver, RegistryResolver, ResolveError,
    StaticResolver,
};
use kfp_operator::telemetry::Metrics;
use kfp_providers::stub::{StubProvider, TRANSIENT_FAIL};
use serde_json::json;
use tokio::sync::broadcast;

const NS: &str = "team";

fn provider_name() -> NamespacedName {
    NamespacedName::new("ops", "stub")
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stub_compiler() -> Arc<LocalCompiler> {
    Arc::new(LocalCompiler::with_stub(
        repo_root().join("compilers/stub/compile.sh"),
    ))
}

struct Harness {
    executor: DirectExecutor,
    completions: broadcast::Receiver<ResourceRef>,
    metrics: Arc<Metrics>,
}

fn harness_with(
    provider: Arc<dyn Provider>,
    compiler: Arc<dyn kfp_core::compiler::Compiler>,
    timeout: Option<Duration>,
) -> Harness {
    let completions = Completions::default();
    let receiver = completions.subscribe();
    let metrics = Arc::new(Metrics::new());
    let resolver = StaticResolver::new().with(provider_name(), provider);
    let mut executor = DirectExecutor::new(Arc::new(resolver), compiler, completions, metrics.clone());
    if let Some(timeout) = timeout {
        executor = executor.with_provider_timeout(timeout);
    }
    Harness {
        executor,
        completions: receiver,
        metrics,
    }
}

fn stub_harness() -> Harness {
    harness_with(Arc::new(StubProvider::new()), stub_compiler(), None)
}

fn resource(kind: ResourceKind, name: &str) -> ResourceRef {
    ResourceRef::new(kind, NS, name)
}

fn definition(kind: ResourceKind, name: &str) -> OperationDefinition {
    let name_ref = NamespacedName::new(NS, name);
    match kind {
        ResourceKind::Pipeline => OperationDefinition::Pipeline {
            definition: json!({
                "name": format!("{NS}/{name}"), "version": "v1", "image": "pipeline-image:1",
                "framework": {"name": "stub", "parameters": {}}
            }),
            framework_image: "stub-compiler:1".into(),
        },
        ResourceKind::Run => OperationDefinition::Run(RunDefinition {
            name: name_ref,
            version: "v1".into(),
            pipeline_name: NamespacedName::new(NS, "p"),
            ..RunDefinition::default()
        }),
        ResourceKind::RunSchedule => OperationDefinition::RunSchedule(RunScheduleDefinition {
            name: name_ref,
            version: "v1".into(),
            pipeline_name: NamespacedName::new(NS, "p"),
            ..RunScheduleDefinition::default()
        }),
        ResourceKind::Experiment => OperationDefinition::Experiment(ExperimentDefinition {
            name: name_ref,
            version: "v1".into(),
            description: "an experiment".into(),
        }),
    }
}

fn create(kind: ResourceKind, name: &str) -> Operation {
    Operation {
        resource: resource(kind, name),
        provider: provider_name(),
        action: Action::Create {
            definition: definition(kind, name),
        },
        version: String::new(),
        created: None,
    }
}

fn update(kind: ResourceKind, name: &str, id: &str) -> Operation {
    Operation {
        resource: resource(kind, name),
        provider: provider_name(),
        action: Action::Update {
            id: id.into(),
            definition: definition(kind, name),
        },
        version: String::new(),
        created: None,
    }
}

fn delete(kind: ResourceKind, name: &str, id: &str) -> Operation {
    Operation {
        resource: resource(kind, name),
        provider: provider_name(),
        action: Action::Delete { id: id.into() },
        version: String::new(),
        created: None,
    }
}

fn succeeded(id: &str) -> OutcomeState {
    OutcomeState::Succeeded {
        output: Ok(ProviderOutput {
            id: id.into(),
            provider_error: String::new(),
        }),
    }
}

fn failed(class: FailureClass, message: &str) -> OutcomeState {
    OutcomeState::Failed {
        class,
        message: message.into(),
    }
}

impl Harness {
    /// Waits (bounded) for the completion announcement of `resource`.
    async fn completed(&mut self, resource: &ResourceRef) {
        let wait = async {
            loop {
                match self.completions.recv().await {
                    Ok(done) if &done == resource => return,
                    Ok(_) => {}
                    Err(e) => panic!("completions closed or lagged: {e}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .unwrap_or_else(|_| panic!("no completion for {resource} within 20s"));
    }

    /// Submits, waits for the completion, returns the (single) outcome and consumes it.
    async fn run(&mut self, operation: Operation) -> OperationOutcome {
        let resource = operation.resource.clone();
        self.executor.submit(operation).await.unwrap();
        self.completed(&resource).await;
        let outcomes = self.executor.outcomes(&resource).await.unwrap();
        assert_eq!(outcomes.len(), 1, "{outcomes:?}");
        let outcome = outcomes.into_iter().next().unwrap();
        self.executor
            .mark_consumed(&resource, std::slice::from_ref(&outcome.key))
            .await
            .unwrap();
        outcome
    }

    async fn state(&mut self, operation: Operation) -> OutcomeState {
        self.run(operation).await.state
    }
}

#[tokio::test]
async fn stub_operations_of_every_kind_produce_the_stub_ids() {
    let mut h = stub_harness();
    for kind in ResourceKind::ALL {
        let name = format!("my-{kind}");
        assert_eq!(
            h.state(create(kind, &name)).await,
            succeeded(&format!("create-{kind}-succeeded")),
            "create {kind}"
        );
        let expected_update = if kind == ResourceKind::Run {
            failed(
                FailureClass::Permanent,
                "run team/my-run cannot be updated: providers do not support updating runs",
            )
        } else {
            succeeded(&format!("update-{kind}-succeeded"))
        };
        assert_eq!(
            h.state(update(kind, &name, &format!("create-{kind}-succeeded")))
                .await,
            expected_update,
            "update {kind}"
        );
        assert_eq!(
            h.state(delete(kind, &name, &format!("create-{kind}-succeeded")))
                .await,
            succeeded(""),
            "delete {kind}"
        );
    }
    assert_eq!(h.executor.unconsumed(), 0);
    let metrics = h.metrics.encode();
    for line in [
        r#"kfp_operator_executor_operations_total{kind="pipeline",action="create",result="submitted"} 1"#,
        r#"kfp_operator_executor_operations_total{kind="run",action="update",result="failed"} 1"#,
        r#"kfp_operator_executor_operations_total{kind="experiment",action="delete",result="succeeded"} 1"#,
        r#"kfp_operator_provider_call_duration_seconds_count{kind="runschedule",action="update",result="succeeded"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
}

#[tokio::test]
async fn stub_failure_triggers_are_permanent_and_transient_fail_is_transient() {
    let mut h = stub_harness();
    for kind in ResourceKind::ALL {
        assert_eq!(
            h.state(create(kind, &format!("create-{kind}-fail"))).await,
            failed(FailureClass::Permanent, &format!("create {kind} failed")),
            "create {kind}"
        );
        assert_eq!(
            h.state(delete(kind, "x", &format!("delete-{kind}-fail"))).await,
            failed(FailureClass::Permanent, &format!("delete {kind} failed")),
            "delete {kind}"
        );
        assert_eq!(
            h.state(create(kind, TRANSIENT_FAIL)).await,
            failed(
                FailureClass::Transient,
                &format!("create {kind} failed transiently")
            ),
            "transient create {kind}"
        );
    }
    assert_eq!(
        h.state(update(ResourceKind::Pipeline, "p", "update-pipeline-fail"))
            .await,
        failed(FailureClass::Permanent, "update pipeline failed")
    );
    for kind in [ResourceKind::RunSchedule, ResourceKind::Experiment] {
        assert_eq!(
            h.state(update(kind, &format!("update-{kind}-fail"), "id")).await,
            failed(FailureClass::Permanent, &format!("update {kind} failed"))
        );
    }
}

#[tokio::test]
async fn pipelines_are_compiled_and_sent_with_their_definition() {
    let mut provider = MockProvider::new();
    provider.expect_find().returning(|_| Ok(None));
    provider
        .expect_create_pipeline()
        .withf(|w: &PipelineDefinitionWrapper| {
            w.compiled_pipeline == json!({"foo": "bar"}) && w.pipeline_definition["name"] == "team/p"
        })
        .times(1)
        .returning(|_| Ok("pipeline-1".into()));
    provider
        .expect_update_pipeline()
        .withf(|w, id| id == "pipeline-1" && w.compiled_pipeline == json!({"foo": "bar"}))
        .times(1)
        .returning(|_, _| Ok("pipeline-1".into()));
    let mut h = harness_with(Arc::new(provider), stub_compiler(), None);
    assert_eq!(
        h.state(create(ResourceKind::Pipeline, "p")).await,
        succeeded("pipeline-1")
    );
    assert_eq!(
        h.state(update(ResourceKind::Pipeline, "p", "pipeline-1")).await,
        succeeded("pipeline-1")
    );
}

#[tokio::test]
async fn compile_failures_keep_their_class_and_skip_the_provider() {
    let mut compiler = MockCompiler::new();
    compiler
        .expect_compile()
        .withf(|r| {
            r.framework_image == "stub-compiler:1"
                && r.pipeline_image == "pipeline-image:1"
                && r.pipeline_definition["name"] == "team/bad"
        })
        .returning(|_| Err(CompileError::invalid("no module named pipeline")));
    compiler
        .expect_compile()
        .returning(|_| Err(CompileError::transient("image pull backoff")));
    // No expectations: a provider call would panic, which the executor reports as a transient failure.
    let mut h = harness_with(Arc::new(MockProvider::new()), Arc::new(compiler), None);
    assert_eq!(
        h.state(create(ResourceKind::Pipeline, "bad")).await,
        failed(FailureClass::Permanent, "no module named pipeline")
    );
    assert_eq!(
        h.state(update(ResourceKind::Pipeline, "other", "id")).await,
        failed(FailureClass::Transient, "image pull backoff")
    );
}

#[tokio::test]
async fn provider_errors_are_classified_and_deletes_are_idempotent() {
    let mut provider = MockProvider::new();
    provider.expect_find().returning(|_| Ok(None));
    provider
        .expect_create_run()
        .returning(|_| Err(ProviderError::invalid("parameter x is not declared")));
    provider
        .expect_create_experiment()
        .returning(|_| Err(ProviderError::transient("HTTP 503 from the backend")));
    provider
        .expect_create_run_schedule()
        .returning(|_| Err(ProviderError::not_found("pipeline team/p not found")));
    provider
        .expect_update_experiment()
        .returning(|_, _| Err(ProviderError::unimplemented("experiments cannot be updated")));
    provider
        .expect_delete_run()
        .returning(|id| Err(ProviderError::not_found(format!("run {id} not found"))));
    provider
        .expect_delete_pipeline()
        .returning(|_| Err(ProviderError::transient("connection reset")));
    let mut h = harness_with(Arc::new(provider), stub_compiler(), None);
    assert_eq!(
        h.state(create(ResourceKind::Run, "r")).await,
        failed(FailureClass::Permanent, "parameter x is not declared")
    );
    assert_eq!(
        h.state(create(ResourceKind::Experiment, "e")).await,
        failed(FailureClass::Transient, "HTTP 503 from the backend")
    );
    assert_eq!(
        h.state(create(ResourceKind::RunSchedule, "rs")).await,
        failed(FailureClass::Transient, "pipeline team/p not found")
    );
    assert_eq!(
        h.state(update(ResourceKind::Experiment, "e", "e-1")).await,
        failed(FailureClass::Permanent, "experiments cannot be updated")
    );
    assert_eq!(
        h.state(delete(ResourceKind::Run, "r", "r-1")).await,
        succeeded("")
    );
    assert_eq!(
        h.state(delete(ResourceKind::Pipeline, "p", "p-1")).await,
        failed(FailureClass::Transient, "connection reset")
    );
}

/// A provider whose calls never return (until released).
struct Gate {
    release: tokio::sync::Semaphore,
}

impl Gate {
    fn closed() -> Arc<Self> {
        Arc::new(Self {
            release: tokio::sync::Semaphore::new(0),
        })
    }

    async fn pass(&self) -> Result<String, ProviderError> {
        let _permit = self
            .release
            .acquire()
            .await
            .map_err(|e| ProviderError::transient(e.to_string()))?;
        Ok("gated".into())
    }
}

#[async_trait::async_trait]
impl Provider for Gate {
    async fn create_pipeline(&self, _: &PipelineDefinitionWrapper) -> Result<String, ProviderError> {
        self.pass().await
    }
    async fn update_pipeline(&self, _: &PipelineDefinitionWrapper, _: &str) -> Result<String, ProviderError> {
        self.pass().await
    }
    async fn delete_pipeline(&self, _: &str) -> Result<(), ProviderError> {
        self.pass().await.map(drop)
    }
    async fn create_run(&self, _: &RunDefinition) -> Result<String, ProviderError> {
        self.pass().await
    }
    async fn delete_run(&self, _: &str) -> Result<(), ProviderError> {
        self.pass().await.map(drop)
    }
    async fn create_run_schedule(&self, _: &RunScheduleDefinition) -> Result<String, ProviderError> {
        self.pass().await
    }
    async fn update_run_schedule(&self, _: &RunScheduleDefinition, _: &str) -> Result<String, ProviderError> {
        self.pass().await
    }
    async fn delete_run_schedule(&self, _: &str) -> Result<(), ProviderError> {
        self.pass().await.map(drop)
    }
    async fn create_experiment(&self, _: &ExperimentDefinition) -> Result<String, ProviderError> {
        self.pass().await
    }
    async fn update_experiment(&self, _: &ExperimentDefinition, _: &str) -> Result<String, ProviderError> {
        self.pass().await
    }
    async fn delete_experiment(&self, _: &str) -> Result<(), ProviderError> {
        self.pass().await.map(drop)
    }
}

#[tokio::test]
async fn a_hanging_provider_fails_transiently_after_the_timeout() {
    let mut h = harness_with(Gate::closed(), stub_compiler(), Some(Duration::from_millis(200)));
    assert_eq!(
        h.state(create(ResourceKind::Run, "r")).await,
        failed(
            FailureClass::Transient,
            "the provider did not answer the create run call within 200ms"
        )
    );
    assert_eq!(
        h.state(delete(ResourceKind::Experiment, "e", "e-1")).await,
        failed(
            FailureClass::Transient,
            "the provider did not answer the delete experiment call within 200ms"
        )
    );
    assert!(h.metrics.encode().contains(
        r#"kfp_operator_provider_call_duration_seconds_count{kind="run",action="create",result="timeout"} 1"#
    ));
}

#[tokio::test]
async fn in_progress_operations_are_listed_until_they_finish() {
    let gate = Gate::closed();
    let mut h = harness_with(gate.clone(), stub_compiler(), None);
    let run = resource(ResourceKind::Run, "r");
    h.executor.submit(create(ResourceKind::Run, "r")).await.unwrap();
    let outcomes = h.executor.outcomes(&run).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].in_progress());
    let (key, created) = (outcomes[0].key.clone(), outcomes[0].created.clone());
    assert!(
        h.executor
            .outcomes(&resource(ResourceKind::Run, "other"))
            .await
            .unwrap()
            .is_empty()
    );
    gate.release.add_permits(1);
    h.completed(&run).await;
    let outcomes = h.executor.outcomes(&run).await.unwrap();
    assert_eq!(outcomes[0].state, succeeded("gated"));
    // The same operation, still dated by its submission (the planner picks the latest by this time).
    assert_eq!((&outcomes[0].key, &outcomes[0].created), (&key, &created));
}

#[tokio::test]
async fn consumed_outcomes_disappear_even_while_in_progress() {
    let gate = Gate::closed();
    let mut h = harness_with(gate.clone(), stub_compiler(), None);
    let run = resource(ResourceKind::Run, "r");
    h.executor.submit(create(ResourceKind::Run, "r")).await.unwrap();
    h.executor.submit(create(ResourceKind::Run, "r")).await.unwrap();
    let keys: Vec<String> = h
        .executor
        .outcomes(&run)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
    assert_eq!(h.executor.unconsumed(), 2);
    // Consuming one leaves the other; consuming a key twice or an unknown key is harmless.
    h.executor.mark_consumed(&run, &keys[..1]).await.unwrap();
    h.executor.mark_consumed(&run, &keys[..1]).await.unwrap();
    h.executor
        .mark_consumed(&run, &["nope".to_string()])
        .await
        .unwrap();
    assert_eq!(h.executor.outcomes(&run).await.unwrap().len(), 1);
    h.executor.mark_consumed(&run, &keys).await.unwrap();
    assert!(h.executor.outcomes(&run).await.unwrap().is_empty());
    // Both finish: the consumed operations do not come back, and the controller is still woken.
    gate.release.add_permits(2);
    h.completed(&run).await;
    h.completed(&run).await;
    assert!(h.executor.outcomes(&run).await.unwrap().is_empty());
    assert_eq!(h.executor.unconsumed(), 0);
}

/// Issue 17 (docs/reliability.md "Exactly once"): every create looks first. What the provider has already (a
/// create that reached it before the operator lost the answer) is adopted: a run is not started again, a pipeline
/// is updated in place; a delete with no id deletes what the lookup finds; a provider that cannot look up gets the
/// create as before, and a failed lookup fails the operation with its class (nothing is created blind).
#[tokio::test]
async fn creates_adopt_what_the_provider_has_and_deletes_find_lost_ids() {
    let mut provider = MockProvider::new();
    provider
        .expect_find()
        .withf(|i: &ObjectIdentity| {
            i.kind == ResourceKind::Run && i.name.name == "found" && i.version == "v7"
        })
        .returning(|_| Ok(Some("run-1".into())));
    provider
        .expect_find()
        .withf(|i: &ObjectIdentity| i.kind == ResourceKind::Pipeline)
        .returning(|_| Ok(Some("pipeline-1".into())));
    provider
        .expect_find()
        .withf(|i: &ObjectIdentity| i.name.name == "new")
        .returning(|_| Ok(None));
    provider
        .expect_find()
        .withf(|i: &ObjectIdentity| i.name.name == "blind")
        .returning(|_| Err(ProviderError::unimplemented("no lookups")));
    provider
        .expect_find()
        .withf(|i: &ObjectIdentity| i.name.name == "down")
        .returning(|_| Err(ProviderError::transient("backend down")));
    provider
        .expect_find()
        .withf(|i: &ObjectIdentity| i.kind == ResourceKind::RunSchedule && i.name.name == "lost")
        .returning(|_| Ok(Some("schedule-9".into())));
    provider.expect_create_run().never();
    provider
        .expect_update_pipeline()
        .withf(|_, id| id == "pipeline-1")
        .times(1)
        .returning(|_, id| Ok(id.to_string()));
    provider
        .expect_create_experiment()
        .times(2)
        .returning(|e| Ok(format!("experiment-{}", e.name.name)));
    provider
        .expect_delete_run_schedule()
        .withf(|id| id == "schedule-9")
        .times(1)
        .returning(|_| Ok(()));
    let mut h = harness_with(Arc::new(provider), stub_compiler(), None);
    let mut run = create(ResourceKind::Run, "found");
    run.version = "v7".into();
    assert_eq!(h.state(run).await, succeeded("run-1"));
    assert_eq!(
        h.state(create(ResourceKind::Pipeline, "p")).await,
        succeeded("pipeline-1")
    );
    assert_eq!(
        h.state(create(ResourceKind::Experiment, "new")).await,
        succeeded("experiment-new")
    );
    assert_eq!(
        h.state(create(ResourceKind::Experiment, "blind")).await,
        succeeded("experiment-blind")
    );
    assert_eq!(
        h.state(create(ResourceKind::Experiment, "down")).await,
        failed(FailureClass::Transient, "backend down")
    );
    assert_eq!(
        h.state(delete(ResourceKind::RunSchedule, "lost", "")).await,
        succeeded("")
    );
    assert_eq!(h.state(delete(ResourceKind::Run, "new", "")).await, succeeded(""));
    assert!(h.executor.finds_by_identity());
}

#[tokio::test]
async fn a_panicking_provider_fails_transiently() {
    // A mock without expectations panics when called.
    let mut h = harness_with(Arc::new(MockProvider::new()), stub_compiler(), None);
    assert_eq!(
        h.state(create(ResourceKind::Experiment, "e")).await,
        failed(
            FailureClass::Transient,
            "the provider panicked during the create experiment call"
        )
    );
}

#[tokio::test]
async fn submit_refuses_unknown_providers_and_mismatched_definitions() {
    let h = stub_harness();
    let mut operation = create(ResourceKind::Run, "r");
    operation.provider = NamespacedName::new("ops", "missing");
    let err = h.executor.submit(operation).await.unwrap_err();
    assert!(
        matches!(err, ExecutorError::ProviderUnavailable { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the provider ops/missing of run team/r could not be reached: the Provider ops/missing does not exist"
    );
    let mut operation = create(ResourceKind::Run, "r");
    operation.action = Action::Create {
        definition: definition(ResourceKind::Experiment, "r"),
    };
    let err = h.executor.submit(operation).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not submit the create operation for run team/r: the operation carries a experiment definition"
    );
    assert_eq!(h.executor.unconsumed(), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// The registry resolver on a real API server
// ---------------------------------------------------------------------------------------------------------------

async fn api_server() -> (kube::Client, kfp_testenv::TestNamespace) {
    let env = kfp_testenv::TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    env.install_crds(&[repo_root().join("config/crd")])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ns = env.namespace().await.unwrap_or_else(|e| panic!("{e}"));
    (env.client().await.unwrap_or_else(|e| panic!("{e}")), ns)
}

async fn apply_provider(client: &kube::Client, ns: &str, name: &str, type_: Option<&str>, root: &str) {
    let mut provider = ProviderResource::new(
        name,
        ProviderSpec {
            service_image: "provider-service:1".into(),
            service_account: "provider".into(),
            pipeline_root_storage: root.into(),
            parameters: [("eventDelaySeconds".to_string(), json!(0))].into(),
            ..ProviderSpec::default()
        },
    );
    if let Some(type_) = type_ {
        provider
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(PROVIDER_TYPE_ANNOTATION.into(), type_.into());
    }
    let api: kube::Api<ProviderResource> = kube::Api::namespaced(client.clone(), ns);
    api.patch(
        name,
        &kube::api::PatchParams::apply("direct-executor-test").force(),
        &kube::api::Patch::Apply(&provider),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_registry_resolver_picks_the_type_from_the_annotation_or_the_default() {
    let (client, ns) = api_server().await;
    let ns = ns.name().to_string();
    apply_provider(&client, &ns, "annotated", Some("stub"), "gs://a").await;
    apply_provider(&client, &ns, "plain", None, "gs://b").await;
    apply_provider(&client, &ns, "unknown-type", Some("argo"), "gs://c").await;
    let registry = kfp_providers::default_registry();
    let strict = RegistryResolver::new(client.clone(), registry.clone(), "");
    let defaulting = RegistryResolver::new(client.clone(), registry, "stub");
    let name = |n: &str| NamespacedName::new(ns.clone(), n);

    assert!(strict.resolve(&name("annotated")).await.is_ok());
    let err = strict.resolve(&name("plain")).await.err().unwrap();
    assert!(matches!(err, ResolveError::NoType { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "the Provider {ns}/plain has no provider type: set its annotation pipelines.kubeflow.org/provider-type \
             (e.g. stub, kfp, vai, http) or the operator's spec.direct.defaultProviderType"
        )
    );
    assert!(defaulting.resolve(&name("plain")).await.is_ok());

    let err = defaulting.resolve(&name("unknown-type")).await.err().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot use the Provider {ns}/unknown-type: unknown provider type \"argo\"; known types: http, kfp, stub, vai"
        )
    );
    let err = defaulting.resolve(&name("missing")).await.err().unwrap();
    assert_eq!(
        err.to_string(),
        format!("the Provider {ns}/missing does not exist")
    );
}

#[tokio::test]
async fn the_registry_resolver_caches_per_generation_and_type() {
    let (client, ns) = api_server().await;
    let ns = ns.name().to_string();
    apply_provider(&client, &ns, "stub", Some("stub"), "gs://a").await;
    // Read on every resolve, so each change below is seen at once.
    let resolver = RegistryResolver::new(client.clone(), kfp_providers::default_registry(), "")
        .with_reverify(Duration::ZERO);
    let name = NamespacedName::new(ns.clone(), "stub");
    let first = resolver.resolve(&name).await.unwrap();
    let again = resolver.resolve(&name).await.unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "the same generation reuses the instance"
    );
    // A spec change bumps the generation: a fresh instance.
    apply_provider(&client, &ns, "stub", Some("stub"), "gs://changed").await;
    let changed = resolver.resolve(&name).await.unwrap();
    assert!(!Arc::ptr_eq(&first, &changed));
    assert!(Arc::ptr_eq(&changed, &resolver.resolve(&name).await.unwrap()));
    // An annotation change does not bump the generation, but changes the type: a fresh instance too.
    apply_provider(&client, &ns, "stub", Some("STUB"), "gs://changed").await;
    let retyped = resolver.resolve(&name).await.unwrap();
    assert!(!Arc::ptr_eq(&changed, &retyped));

    // Issue 18: by default a built provider is used for a few seconds without reading its Provider again (one
    // GET per operation was one request per resource); a deleted Provider is then noticed.
    let batching = RegistryResolver::new(client.clone(), kfp_providers::default_registry(), "");
    let kept = batching.resolve(&name).await.unwrap();
    let providers: kube::Api<ProviderResource> = kube::Api::namespaced(client.clone(), &ns);
    providers.delete("stub", &Default::default()).await.unwrap();
    assert!(
        Arc::ptr_eq(&kept, &batching.resolve(&name).await.unwrap()),
        "within the period: no read"
    );
    assert!(matches!(
        resolver.resolve(&name).await,
        Err(ResolveError::NotFound(_))
    ));
}

#[tokio::test]
async fn the_executor_drives_a_stub_provider_read_from_the_api_server() {
    let (client, ns) = api_server().await;
    let ns = ns.name().to_string();
    apply_provider(&client, &ns, "stub", None, "gs://a").await;
    let completions = Completions::default();
    let mut receiver = completions.subscribe();
    let resolver = RegistryResolver::new(client.clone(), kfp_providers::default_registry(), "stub");
    let executor = DirectExecutor::new(
        Arc::new(resolver),
        Arc::new(LocalCompiler::new()),
        completions,
        Arc::new(Metrics::new()),
    );
    let mut operation = create(ResourceKind::Pipeline, "p");
    operation.provider = NamespacedName::new(ns.clone(), "stub");
    executor.submit(operation).await.unwrap();
    let done = tokio::time::timeout(Duration::from_secs(20), receiver.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done, resource(ResourceKind::Pipeline, "p"));
    let outcomes = executor.outcomes(&done).await.unwrap();
    assert_eq!(outcomes[0].state, succeeded("create-pipeline-succeeded"));

    let mut operation = create(ResourceKind::Run, "r");
    operation.provider = NamespacedName::new(ns.clone(), "gone");
    let err = executor.submit(operation).await.unwrap_err();
    assert!(
        matches!(err, ExecutorError::ProviderUnavailable { .. }),
        "{err:?}"
    );
}

/// Kubernetes can delete an object whose finalizer was added while the DELETE was in flight (kubernetes#77988; the
/// chaos suite saw Runs go that way with their platform runs left). The clean-up the controllers start on such a
/// DELETED event deletes the provider object: by the recorded id, else by the id of the finished create, else by
/// identity; and it consumes the outcomes nobody else will.
#[tokio::test]
async fn a_resource_deleted_past_its_finalizer_has_its_provider_object_deleted() {
    use kfp_core::executor::Executor;
    use kfp_core::resources::FINALIZER;
    use kfp_core::resources::v1beta1::Run;
    use kfp_operator::controllers::{Context, bypassed};
    let (client, _ns) = api_server().await;
    let mut provider = MockProvider::new();
    provider
        .expect_find()
        .returning(|i| Ok((i.name.name == "lost").then(|| "run-found".to_string())));
    provider
        .expect_create_run()
        .returning(|r| Ok(format!("run-of-{}", r.name.name)));
    let (deleted_tx, mut deleted_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    provider.expect_delete_run().returning(move |id| {
        deleted_tx.send(id.to_string()).unwrap();
        Ok(())
    });
    let h = harness_with(Arc::new(provider), stub_compiler(), None);
    let executor: Arc<dyn Executor> = Arc::new(h.executor);
    let ctx = Context::new(
        client,
        executor.clone(),
        None,
        Arc::new(kfp_operator::config::OperatorConfig::default()),
        h.metrics,
    );
    let run = |name: &str, id: &str| -> Run {
        let mut run: Run = serde_json::from_value(json!({
            "apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "Run",
            "metadata": {"name": name, "namespace": NS, "finalizers": [FINALIZER]},
            "spec": {"provider": provider_name().to_string(), "pipeline": "p"},
            "status": {"provider": {"name": provider_name().to_string(), "id": id}, "version": "v1"},
        }))
        .unwrap();
        assert!(bypassed::bypassed(&run));
        run.metadata.creation_timestamp = None;
        run
    };

    // The id recorded in the status.
    bypassed::clean_up(ctx.clone(), run("recorded", "run-1"));
    assert_eq!(next_delete(&mut deleted_rx).await, "run-1");
    // No id recorded, but the create finished: its id, and the create's outcome is consumed.
    executor
        .submit(create(ResourceKind::Run, "finished"))
        .await
        .unwrap();
    bypassed::clean_up(ctx.clone(), run("finished", ""));
    assert_eq!(next_delete(&mut deleted_rx).await, "run-of-finished");
    // Nothing known: looked up by identity.
    bypassed::clean_up(ctx.clone(), run("lost", ""));
    assert_eq!(next_delete(&mut deleted_rx).await, "run-found");
    // The intent recorded (`Creating`), no id, an executor that cannot look up (as Argo's), and the create submitted
    // only after the DELETED event (the chaos suite's Argo case): the clean-up waits for it and deletes what it made.
    let looks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let blind: Arc<dyn Executor> = Arc::new(Blind(executor.clone(), looks.clone()));
    let blind_ctx = Context::new(
        ctx.client.clone(),
        blind.clone(),
        None,
        Arc::new(kfp_operator::config::OperatorConfig::default()),
        ctx.metrics.clone(),
    );
    let mut late = run("late", "");
    late.status.as_mut().unwrap().status.conditions = vec![
        serde_json::from_value(json!({
        "type": "Synchronized", "status": "Unknown", "reason": "Creating", "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z"}))
        .unwrap(),
    ];
    assert_eq!(
        kfp_core::resources::v1beta1::Conditions::synchronization_state(late.status.as_ref().unwrap()),
        kfp_core::values::SynchronizationState::Creating
    );
    bypassed::clean_up(blind_ctx, late);
    // The late submit: only once the clean-up has looked and found nothing.
    kfp_testenv::wait_for(
        "the clean-up to look at the outcomes",
        Duration::from_secs(20),
        || async { Ok::<_, String>((looks.load(std::sync::atomic::Ordering::SeqCst) > 0).then_some(())) },
    )
    .await
    .unwrap();
    blind.submit(create(ResourceKind::Run, "late")).await.unwrap();
    assert_eq!(next_delete(&mut deleted_rx).await, "run-of-late");
    let finished = resource(ResourceKind::Run, "finished");
    kfp_testenv::wait_for("the outcomes consumed", Duration::from_secs(20), || async {
        Ok::<_, String>(
            executor
                .outcomes(&finished)
                .await
                .unwrap()
                .is_empty()
                .then_some(()),
        )
    })
    .await
    .unwrap();
}

/// An executor that cannot look provider objects up by identity (as the Argo executor); otherwise the one it wraps.
/// Counts the reads of outcomes.
struct Blind(
    Arc<dyn kfp_core::executor::Executor>,
    Arc<std::sync::atomic::AtomicUsize>,
);

#[async_trait::async_trait]
impl kfp_core::executor::Executor for Blind {
    async fn submit(
        &self,
        operation: kfp_core::executor::Operation,
    ) -> Result<(), kfp_core::executor::ExecutorError> {
        self.0.submit(operation).await
    }
    async fn outcomes(
        &self,
        resource: &kfp_core::executor::ResourceRef,
    ) -> Result<Vec<kfp_core::executor::OperationOutcome>, kfp_core::executor::ExecutorError> {
        let outcomes = self.0.outcomes(resource).await;
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        outcomes
    }
    async fn mark_consumed(
        &self,
        resource: &kfp_core::executor::ResourceRef,
        keys: &[String],
    ) -> Result<(), kfp_core::executor::ExecutorError> {
        self.0.mark_consumed(resource, keys).await
    }
    fn finds_by_identity(&self) -> bool {
        false
    }
}

async fn next_delete(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a provider delete")
        .unwrap()
}
