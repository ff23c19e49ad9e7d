//! Issue 6 item 5, end to end: the `runconfiguration-dependency.yaml` fixture as it is, with the stub provider.
//! A (base-namespace) records a succeeded run from a real event posted to the feed with the Provider's
//! ServiceAccount token; B (dependant-namespace, triggered by A, reading A's artifact) creates a Run whose
//! parameter holds A's artifact location; the stub provider's own event (direct mode: its event source read
//! in-process) then completes that Run and records B's succeeded run.
//!
//! Its own control plane: the operator watches every namespace (the fixture names fixed ones).

use crate::support;

use std::sync::Arc;

use kfp_core::resources::v1beta1::{CompletionState, Provider, Run, RunConfiguration};
use kfp_core::values::SynchronizationState;
use kfp_operator::config::{ExecutorKind, OperatorConfig};
use kfp_operator::controllers::Context;
use kfp_operator::executor::Completions;
use kfp_operator::executor::direct::{DirectExecutor, RegistryResolver};
use kfp_operator::feed::sources::EventSources;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use support::nats::RunningFeed;
use support::{RunningOperator, WAIT, fixtures_dir, repo_root, wait_for_state, wait_until};

#[tokio::test]
async fn the_dependency_fixture_runs_end_to_end_with_the_stub_provider() {
    let (env, client) = support::dedicated_env().await;
    let namespaces = "
apiVersion: v1
kind: Namespace
metadata: {name: kfp-operator-system}
---
apiVersion: v1
kind: Namespace
metadata: {name: base-namespace}
---
apiVersion: v1
kind: Namespace
metadata: {name: dependant-namespace}
";
    kfp_testenv::apply_yaml(&client, namespaces, &Default::default())
        .await
        .unwrap();
    // The local example's stub Provider (it allows the fixture's namespaces), with quick events and without its
    // scheduled runs: this test posts A's run completion itself.
    let text = std::fs::read_to_string(repo_root().join("examples/local/provider-stub.yaml")).unwrap();
    let mut provider: Provider = serde_saphyr::from_str(&text).unwrap();
    provider
        .spec
        .parameters
        .insert("eventDelaySeconds".into(), json!(0.2));
    provider
        .spec
        .parameters
        .remove(kfp_providers::stub::SCHEDULE_PERIOD_PARAMETER);
    Api::<Provider>::namespaced(client.clone(), "kfp-operator-system")
        .create(&PostParams::default(), &provider)
        .await
        .unwrap();
    let pipelines = "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {name: penguin-pipeline-examples, namespace: base-namespace}
spec: {provider: kfp-operator-system/stub, image: 'alpine:3.20', framework: {name: stub, parameters: {}}}
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {name: penguin-pipeline-training, namespace: dependant-namespace}
spec: {provider: kfp-operator-system/stub, image: 'alpine:3.20', framework: {name: stub, parameters: {}}}
";
    kfp_testenv::apply_yaml(&client, pipelines, &Default::default())
        .await
        .unwrap();
    kfp_testenv::apply_yaml_file(
        &client,
        &fixtures_dir().join("runconfiguration-dependency.yaml"),
        &Default::default(),
    )
    .await
    .unwrap();

    // The operator as `kfp-operator run` builds it in direct mode: registry-resolved stub, its event source
    // in-process, and the feed.
    let mut config = OperatorConfig::default();
    config.spec.executor = ExecutorKind::Direct;
    config.spec.direct.default_provider_type = "stub".into();
    let feed = RunningFeed::start(&client, config.clone()).await;
    let registry = kfp_providers::default_registry();
    let metrics = support::metrics();
    let completions = Completions::default();
    let resolver = RegistryResolver::from_config(client.clone(), registry.clone(), &config.spec.direct);
    let executor = DirectExecutor::new(
        Arc::new(resolver),
        Arc::new(kfp_operator::compiler::local::LocalCompiler::new()),
        completions.clone(),
        metrics.clone(),
    );
    let sources = EventSources::new(registry, "stub", feed.processor.clone());
    let ctx = Context::new(
        client.clone(),
        Arc::new(executor),
        Some(completions),
        Arc::new(config),
        metrics,
    );
    let operator = RunningOperator::start_with_sources(ctx, Some(sources));

    let base: Api<RunConfiguration> = Api::namespaced(client.clone(), "base-namespace");
    let dependant: Api<RunConfiguration> = Api::namespaced(client.clone(), "dependant-namespace");
    let a = "penguin-pipeline-examples-rc";
    let b = "penguin-pipeline-training-rc";
    let key = format!("base-namespace/{a}");
    wait_until(
        &dependant,
        b,
        "B to have seen its dependency",
        |rc: &RunConfiguration| {
            rc.status
                .as_ref()
                .is_some_and(|s| s.triggers.run_configurations.contains_key(&key))
        },
    )
    .await;
    wait_for_state(
        &base,
        a,
        SynchronizationState::Succeeded,
        |rc: &RunConfiguration| rc.status.as_ref(),
    )
    .await;
    let runs: Api<Run> = Api::namespaced(client.clone(), "dependant-namespace");
    assert!(runs.list(&ListParams::default()).await.unwrap().items.is_empty());

    // A's scheduled run finishes: its provider posts the event to the feed, as the provider service does.
    let token = env
        .service_account_token("kfp-operator-system", "default", &["kfp-operator"])
        .await
        .unwrap();
    let event = json!({
        "status": "succeeded", "pipelineName": "base-namespace/penguin-pipeline-examples",
        "runConfigurationName": format!("base-namespace/{a}"), "runId": "kfp-run-1",
        "runEndTime": "2026-01-01T10:05:00Z",
        "pipelineComponents": [{"name": "CsvExampleGen", "componentArtifacts": [
            {"name": "examples", "artifacts": [{"uri": "gs://bucket/examples/1", "metadata": {}}]}]}],
        "provider": "kfp-operator-system/stub"
    });
    let response = reqwest::Client::new()
        .post(&feed.url)
        .bearer_auth(&token)
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let recorded = base.get(a).await.unwrap().status.unwrap().latest_runs.succeeded;
    assert_eq!(recorded.provider_id, "kfp-run-1");
    assert_eq!(recorded.artifacts[0].location, "gs://bucket/examples/1");

    // B is triggered: one Run, its parameter resolved to A's artifact.
    let triggered = kfp_testenv::wait_for("B to create a Run", WAIT, || async {
        let list = runs
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((list.items.len() == 1).then(|| list.items[0].clone()))
    })
    .await
    .unwrap();
    assert_eq!(
        triggered.labels()["pipelines.kubeflow.org/trigger-type"],
        "runConfiguration"
    );
    let name = triggered.name_any();
    let run = wait_for_state(&runs, &name, SynchronizationState::Succeeded, |r: &Run| {
        r.status.as_ref()
    })
    .await;
    let status = run.status.unwrap();
    assert_eq!(
        status.dependencies.run_configurations[&key].artifacts[0].location,
        "gs://bucket/examples/1"
    );
    assert_eq!(run.spec.parameters[0].name, "examples_location");

    // The stub's event for B's Run, read in-process, completes it and records B's succeeded run.
    wait_until(&runs, &name, "the stub's event to complete the Run", |r: &Run| {
        r.status.as_ref().and_then(|s| s.completion_state) == Some(CompletionState::Succeeded)
    })
    .await;
    let b_run = wait_until(
        &dependant,
        b,
        "B to record its succeeded run",
        |rc: &RunConfiguration| {
            rc.status
                .as_ref()
                .is_some_and(|s| s.latest_runs.succeeded.provider_id.starts_with("stub-run-"))
        },
    )
    .await;
    assert!(b_run.status.unwrap().latest_runs.succeeded.run_end_time.is_some());
    assert!(
        feed.metrics
            .encode()
            .contains(r#"kfp_operator_run_completion_events_total{source="direct",result="recorded"} 1"#),
        "{}",
        feed.metrics.encode()
    );
    operator.stop().await;
}
