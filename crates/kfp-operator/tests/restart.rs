//! An operator restarted mid-operation loses nothing and duplicates nothing (SPEC 3.1: all state is in the API
//! server). Argo: a Pipeline whose create Workflow was submitted by an operator that then stopped is finished by
//! a new operator, with still exactly one Workflow. Direct: objects created while no operator runs are
//! reconciled by the next one, and a restarted operator that finds everything Succeeded writes nothing.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod support;

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
