//! An operator restarted mid-operation loses nothing and duplicates nothing (all state is in the API server). Argo: a
//! Pipeline whose create Workflow was submitted by an operator that then stopped is finished by a new operator, with
//! still exactly one Workflow. Direct: objects created while no operator runs are reconciled by the next one, and a
//! restarted operator that finds everything Succeeded writes nothing. A migration: objects the Go operator v0.7.0 left
//! (its versions, its status shape, a tokenless provider service) are taken over without a provider call.

use crate::support;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use kfp_core::resources::labels;
use kfp_core::resources::v1beta1::{Conditions, Pipeline, Provider, Run};
use kfp_core::values::SynchronizationState::{Creating, Succeeded};
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};
use support::{Harness, Mode, wait_for_state};

const PIPELINE: &str = "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {name: pipeline, namespace: $NS}
spec: {provider: $PROVIDER, image: 'alpine:3.20', framework: {name: stub, parameters: {}}}
";

const RUN: &str = "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Run
metadata: {name: run, namespace: $NS}
spec: {provider: $PROVIDER, pipeline: pipeline, parameters: [{name: a, value: '1'}]}
";

/// The Workflows owned by the Pipeline `name` (by the three owner labels, processed or not).
async fn workflows_of_pipeline(harness: &Harness, name: &str) -> Vec<DynamicObject> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        harness.client.clone(),
        &harness.namespace,
        &kfp_operator::executor::argo::workflow_api_resource(),
    );
    let selector = format!(
        "{}=pipeline,{}={name},{}={}",
        labels::OWNER_KIND,
        labels::OWNER_NAME,
        labels::OWNER_NAMESPACE,
        harness.namespace
    );
    api.list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items
}

async fn wait_for_reconciles(harness: &Harness, controllers: &[&str]) {
    kfp_testenv::wait_for(
        format!("the new operator to reconcile {controllers:?}"),
        support::WAIT,
        || async {
            Ok::<_, String>(
                controllers
                    .iter()
                    .all(|c| harness.reconciliations(c) >= 1)
                    .then_some(()),
            )
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_restart_while_a_workflow_runs_finishes_it_without_a_second_workflow() {
    let mut harness = Harness::prepare(Mode::Argo, |_| {}).await;
    harness.start_operator();
    let pipelines = harness.api::<Pipeline>();
    harness.create::<Pipeline>(PIPELINE).await;
    wait_for_state(&pipelines, "pipeline", Creating, |p: &Pipeline| p.status.as_ref()).await;
    kfp_testenv::wait_for("one create Workflow", support::WAIT, || async {
        Ok::<_, String>((workflows_of_pipeline(&harness, "pipeline").await.len() == 1).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    harness.stop().await;

    // A new operator looks at the Creating Pipeline while its Workflow still runs: it waits, submits nothing.
    harness.start_operator();
    wait_for_reconciles(&harness, &["pipeline"]).await;
    assert_eq!(
        workflows_of_pipeline(&harness, "pipeline").await.len(),
        1,
        "the new operator submitted nothing while the Workflow ran"
    );
    let pipeline = pipelines.get("pipeline").await.unwrap();
    assert_eq!(
        pipeline.status.as_ref().unwrap().synchronization_state(),
        Creating
    );

    // Argo finishes the Workflow: the new operator takes its outcome.
    harness.start_argo();
    let pipeline = wait_for_state(&pipelines, "pipeline", Succeeded, |p: &Pipeline| {
        p.status.as_ref()
    })
    .await;
    assert_eq!(pipeline.status.unwrap().provider.id, "create-pipeline-succeeded");
    let workflows = workflows_of_pipeline(&harness, "pipeline").await;
    assert_eq!(
        workflows.len(),
        1,
        "still exactly one Workflow: {:#?}",
        workflows.iter().map(ResourceExt::name_any).collect::<Vec<_>>()
    );
    harness.stop().await;
}

/// `name -> resourceVersion` of every object of a kind in the namespace.
async fn versions<K>(api: &Api<K>) -> BTreeMap<String, String>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| (o.name_any(), o.resource_version().unwrap_or_default()))
        .collect()
}

/// Each object's status, without the kstatus conditions the operator adds once to a status written before them
/// (`Ready`, `Reconciling`, `Stalled`; docs/gitops.md), and whether each has `Ready`.
async fn statuses_but_kstatus<K>(api: &Api<K>) -> BTreeMap<String, (serde_json::Value, bool)>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| {
            let mut status = serde_json::to_value(&o).unwrap()["status"].take();
            let mut ready = false;
            if let Some(conditions) = status["conditions"].as_array_mut() {
                ready = conditions.iter().any(|c| c["type"] == "Ready");
                conditions.retain(|c| {
                    !["Ready", "Reconciling", "Stalled"].contains(&c["type"].as_str().unwrap_or(""))
                });
            }
            (o.name_any(), (status, ready))
        })
        .collect()
}

/// Everything the operator writes in the namespace, by kind.
async fn snapshot(harness: &Harness) -> BTreeMap<&'static str, BTreeMap<String, String>> {
    BTreeMap::from([
        ("pipelines", versions(&harness.api::<Pipeline>()).await),
        ("runs", versions(&harness.api::<Run>()).await),
        ("providers", versions(&harness.api::<Provider>()).await),
        ("deployments", versions(&harness.api::<Deployment>()).await),
        ("services", versions(&harness.api::<Service>()).await),
        ("events", versions(&harness.api::<Event>()).await),
    ])
}

#[tokio::test]
async fn objects_created_without_an_operator_are_reconciled_and_a_restart_writes_nothing() {
    let mut harness = Harness::prepare(Mode::Direct, |_| {}).await;
    let pipelines = harness.api::<Pipeline>();
    let runs = harness.api::<Run>();
    harness.create::<Pipeline>(PIPELINE).await;
    harness.create::<Run>(RUN).await;

    harness.start_operator();
    wait_for_state(&pipelines, "pipeline", Succeeded, |p: &Pipeline| {
        p.status.as_ref()
    })
    .await;
    let run = wait_for_state(&runs, "run", Succeeded, |r: &Run| r.status.as_ref()).await;
    assert_eq!(run.status.unwrap().status.provider.id, "create-run-succeeded");
    wait_for_state(&harness.api::<Provider>(), "stub", Succeeded, |p: &Provider| {
        p.status.as_ref()
    })
    .await;
    harness.stop().await;

    let before = snapshot(&harness).await;
    assert!(!before["deployments"].is_empty() && !before["services"].is_empty());
    harness.start_operator();
    let readiness = harness.operator.as_ref().unwrap().readiness.clone();
    kfp_testenv::wait_for("the new operator to be ready", support::WAIT, || async {
        Ok::<_, String>(readiness.is_ready().then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {:?}", readiness.not_ready_reasons()));
    wait_for_reconciles(&harness, &["pipeline", "run", "provider"]).await;
    let after = snapshot(&harness).await;
    assert_eq!(
        before, after,
        "a restarted operator finding everything Succeeded writes nothing"
    );
    harness.stop().await;
}

/// A shutdown that arrives before the controllers' caches were first filled (e.g. leadership lost at once) stops
/// the operator at once; kube-runtime alone would hold each controller until its cache fills, which never
/// happens once its watch has stopped.
#[tokio::test]
async fn an_operator_stopped_before_its_caches_filled_stops_at_once() {
    let mut harness = Harness::prepare(Mode::Direct, |_| {}).await;
    for _ in 0..3 {
        harness.start_operator();
        harness.stop().await;
    }
}

/// The Go KFP Operator v0.7.0's leavings: a Pipeline whose image v0.7.0 and head parse differently, a Run and a
/// RunConfiguration (`onChange: [runSpec]`) with `valueFrom` parameters (head hashes `optional`, v0.7.0 does not),
/// all `Succeeded` under v0.7.0's versions, with its finalizer and its status shape.
const GO_V0_7_0_OBJECTS: &str = "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {name: pipeline, namespace: $NS, finalizers: [finalizer.pipelines.kubeflow.org], generation: 1}
spec: {provider: $PROVIDER, image: 'UPPER/img:tag', framework: {name: stub, parameters: {}}}
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {name: dep, namespace: $NS}
spec: {run: {provider: $PROVIDER, pipeline: pipeline}}
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {name: rc, namespace: $NS}
spec:
  run:
    provider: $PROVIDER
    pipeline: pipeline
    parameters: [{name: model, valueFrom: {runConfigurationRef: {name: dep, outputArtifact: model}}}]
  triggers: {onChange: [runSpec]}
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Run
metadata: {name: run, namespace: $NS, finalizers: [finalizer.pipelines.kubeflow.org]}
spec:
  provider: $PROVIDER
  pipeline: pipeline
  parameters: [{name: model, valueFrom: {runConfigurationRef: {name: dep, outputArtifact: model, optional: true}}}]
";

/// A `Synchronized` condition as the Go operator wrote it.
fn go_condition(state: &str) -> serde_json::Value {
    serde_json::json!([{"type": "Synchronized", "status": "True", "reason": state, "message": "",
        "observedGeneration": 1, "lastTransitionTime": "2026-11-01T10:00:00Z"}])
}

/// A migration from the Go operator v0.7.0 (docs/platform-guide.md): our operator starts on the objects the Go
/// operator left, with v0.7.0's versions in their statuses, and a Go provider service without a token reports a
/// run. Nothing is sent to the provider (no Workflow), no Run is started, every status is kept as it is (but for
/// the kstatus conditions added once, docs/gitops.md), and the event is recorded.
#[tokio::test]
async fn objects_left_by_the_go_operator_v0_7_0_are_taken_over_without_a_provider_call() {
    use kfp_core::resources::v1beta1::{CompletionState, RunConfiguration};
    use kfp_core::version::{self, HashAlgorithm};
    use kube::api::{Patch, PatchParams};
    use serde_json::json;

    let mut harness = Harness::prepare(Mode::Argo, |config| {
        config
            .spec
            .run_completion_feed
            .authentication
            .allow_unauthenticated = true;
    })
    .await;
    let ns = harness.namespace.clone();
    let provider = harness.provider.to_string();
    let yaml = GO_V0_7_0_OBJECTS
        .replace("$NS", &ns)
        .replace("$PROVIDER", &provider);
    kfp_testenv::apply_yaml(
        &harness.client,
        &yaml,
        &kfp_testenv::ApplyOptions::in_namespace(&ns),
    )
    .await
    .unwrap();
    let pipelines = harness.api::<Pipeline>();
    let runs = harness.api::<Run>();
    let rcs = harness.api::<RunConfiguration>();

    // The statuses v0.7.0 wrote; where its hash differs from head's, the test would catch a recomputation.
    let pipeline = pipelines.get("pipeline").await.unwrap();
    let pipeline_version = version::pipeline_version(&pipeline.spec, HashAlgorithm::V0_7_0);
    assert_ne!(
        pipeline_version,
        version::pipeline_version(&pipeline.spec, HashAlgorithm::Head),
        "the image must be one the two algorithms read differently"
    );
    let rc = rcs.get("rc").await.unwrap();
    let run_spec_version = version::run_spec_version(&rc.spec.run, HashAlgorithm::V0_7_0);
    assert_ne!(
        run_spec_version,
        version::run_spec_version(&rc.spec.run, HashAlgorithm::Head)
    );
    let run = runs.get("run").await.unwrap();
    let run_version = version::run_version(&run.spec, &pipeline_version, HashAlgorithm::V0_7_0);
    assert_ne!(
        run_version,
        version::run_version(&run.spec, &pipeline_version, HashAlgorithm::Head)
    );
    let statuses = [
        (
            "pipelines",
            "pipeline",
            json!({"provider": {"name": provider, "id": "go-pipeline-id"}, "version": pipeline_version,
                "observedGeneration": 1, "conditions": go_condition("Succeeded")}),
        ),
        (
            "runconfigurations",
            "dep",
            json!({"provider": provider, "observedGeneration": 1, "conditions": go_condition("Succeeded"),
                "dependencies": {"pipeline": {"version": pipeline_version}},
                "latestRuns": {"succeeded": {"providerId": "go-dep-run",
                    "artifacts": [{"name": "model", "location": "gs://models/1"}]}}}),
        ),
        (
            "runconfigurations",
            "rc",
            json!({"provider": provider, "observedGeneration": 1, "conditions": go_condition("Succeeded"),
                "dependencies": {"pipeline": {"version": pipeline_version}, "runConfigurations": {
                    format!("{ns}/dep"): {"providerId": "go-dep-run",
                        "artifacts": [{"name": "model", "location": "gs://models/1"}]}}},
                "triggers": {"runSpec": {"version": run_spec_version}}}),
        ),
        (
            "runs",
            "run",
            json!({"provider": {"name": provider, "id": "go-run-id"}, "version": run_version,
                "observedGeneration": 1, "conditions": go_condition("Succeeded"),
                "dependencies": {"pipeline": {"version": pipeline_version}}}),
        ),
    ];
    for (plural, name, status) in &statuses {
        let api: Api<DynamicObject> = Api::namespaced_with(
            harness.client.clone(),
            &ns,
            &kube::api::ApiResource {
                group: "pipelines.kubeflow.org".into(),
                version: "v1beta1".into(),
                api_version: "pipelines.kubeflow.org/v1beta1".into(),
                kind: String::new(),
                plural: (*plural).into(),
            },
        );
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap();
    }
    let before = (
        statuses_but_kstatus(&pipelines).await,
        versions(&runs).await,
        statuses_but_kstatus(&rcs).await,
    );

    harness.start_argo();
    harness.start_operator();
    let feed = support::nats::RunningFeed::start(&harness.client, harness.config.clone()).await;
    wait_for_reconciles(&harness, &["pipeline", "run", "runconfiguration"]).await;

    // The Go provider service reports the Run's completion, without a token.
    let event = format!(
        r#"{{"status":"succeeded","pipelineName":"{ns}/pipeline","runName":"{ns}/run","runId":"go-run-id","runStartTime":"2026-12-01T10:00:00.25Z","runEndTime":"2026-12-01T10:05:00.125Z","servingModelArtifacts":null,"pipelineComponents":null,"provider":"{provider}"}}"#
    );
    assert_eq!(feed.post_as_go_provider_service(&event).await, 200);
    let run = support::wait_until(&runs, "run", "the Run completed", |r: &Run| {
        r.status.as_ref().and_then(|s| s.completion_state) == Some(CompletionState::Succeeded)
    })
    .await;

    let workflows: Api<DynamicObject> = Api::namespaced_with(
        harness.client.clone(),
        &ns,
        &kfp_operator::executor::argo::workflow_api_resource(),
    );
    let submitted: Vec<String> = versions(&workflows).await.into_keys().collect();
    assert!(
        submitted.is_empty(),
        "no provider operation may start: {submitted:?}"
    );
    let run_names: Vec<String> = versions(&runs).await.into_keys().collect();
    assert_eq!(run_names, ["run"], "no RunConfiguration may start a Run");
    let status = run.status.unwrap();
    assert_eq!(
        status.status.version, run_version,
        "the Run keeps v0.7.0's version"
    );
    assert_eq!(status.status.provider.id, "go-run-id");
    // Only the recorded completion changed anything: the other objects' statuses are as v0.7.0 wrote them, but for
    // the kstatus conditions added once (issue 19), which each has now.
    let after = (
        statuses_but_kstatus(&pipelines).await,
        versions(&runs).await,
        statuses_but_kstatus(&rcs).await,
    );
    let unmarked =
        |statuses: &BTreeMap<String, (serde_json::Value, bool)>| -> BTreeMap<String, serde_json::Value> {
            statuses
                .iter()
                .map(|(name, (status, _))| (name.clone(), status.clone()))
                .collect()
        };
    assert!(
        after.0.values().chain(after.2.values()).all(|(_, ready)| *ready),
        "{after:?}"
    );
    let before = (unmarked(&before.0), before.1, unmarked(&before.2));
    let after = (unmarked(&after.0), after.1, unmarked(&after.2));
    assert_eq!(before.0, after.0, "the Pipeline's status is v0.7.0's");
    if before.2 != after.2 {
        for rc in rcs.list(&ListParams::default()).await.unwrap().items {
            eprintln!(
                "DEBUG {} {}",
                rc.name_any(),
                serde_json::to_string(&rc.status).unwrap()
            );
        }
    }
    assert_eq!(before.2, after.2, "the RunConfigurations' statuses are v0.7.0's");
    assert_eq!(
        pipelines.get("pipeline").await.unwrap().status.unwrap().version,
        pipeline_version
    );
    assert_eq!(
        rcs.get("rc")
            .await
            .unwrap()
            .status
            .unwrap()
            .triggers
            .run_spec
            .version,
        run_spec_version
    );
    harness.stop().await;
}

/// How long the tests take the API server away.
const OUTAGE: std::time::Duration = std::time::Duration::from_secs(15);
/// How long the operator may take to pick up again: its watches back off to at most 30 s (jittered).
const RECOVERY: std::time::Duration = std::time::Duration::from_secs(90);

/// The API server goes away for 15 s (a proxy between the operator and it closes every connection): the operator
/// backs off (a few connection attempts per second, one log line per failure kind, no line per attempt), does not
/// stop, and reconciles a Pipeline created meanwhile once the API server is back (docs/reliability.md).
/// Current-thread, so that the capturing subscriber sees every task of the operator and nothing of other tests.
#[tokio::test(flavor = "current_thread")]
async fn an_api_server_outage_costs_few_connections_and_log_lines_and_the_operator_resumes() {
    use support::outage::{Fixture, LogCapture};
    let fixture = Fixture::start().await;
    let logs = LogCapture::default();
    let _logging = tracing::subscriber::set_default(logs.subscriber());
    let operator = support::RunningOperator::start_with_sources(fixture.context(), Some(fixture.sources()));
    fixture.create_pipeline("before").await;
    fixture.wait_succeeded("before", support::WAIT).await;

    let figures = fixture
        .outage(&logs, OUTAGE, fixture.create_pipeline("during"))
        .await;
    let back = std::time::Instant::now();
    fixture.wait_succeeded("during", RECOVERY).await;
    eprintln!(
        "outage {:.1} s: {} connection attempts ({:.2}/s), {} log lines ({:.1}/min) {:?}; reconciling again {:.1} s \
         after the API server came back",
        figures.seconds,
        figures.attempts,
        figures.attempts_per_second(),
        figures.lines.len(),
        figures.lines_per_minute(),
        figures.lines_by_failure(),
        back.elapsed().as_secs_f64()
    );
    figures.assert_bounded();
    assert!(
        figures.attempts > 0,
        "the operator kept trying during the outage: {figures:#?}"
    );
    operator.stop().await;
}
