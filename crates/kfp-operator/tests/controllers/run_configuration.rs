//! The RunConfiguration controller on a real API server (docs/controllers.md, "RunConfigurations"): RunSchedules per
//! schedule (replaced, never updated), onChange triggers, dependency triggers across namespaces carrying the
//! dependency's artifact into the new Run's parameters, and a provider change. The direct executor carries out the
//! operations of the RunSchedules and Runs the RunConfiguration creates.

use crate::support;

use kfp_core::resources::labels;
use kfp_core::resources::v1beta1::{Conditions, Pipeline, Run, RunConfiguration, RunSchedule};
use kfp_core::values::SynchronizationState::{Failed, Succeeded};
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::owned::wait_owned;
use support::{Harness, Mode, wait_for_state};

const PIPELINE: &str = "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {name: pipeline, namespace: $NS}
spec: {provider: $PROVIDER, image: 'alpine:3.20', framework: {name: stub, parameters: {}}}
";

#[tokio::test]
async fn schedules_become_run_schedules_and_are_replaced_not_updated() {
    let mut harness = Harness::start(Mode::Direct).await;
    harness.create::<Pipeline>(PIPELINE).await;
    let rcs = harness.api::<RunConfiguration>();
    harness
        .create::<RunConfiguration>(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {name: rc, namespace: $NS}
spec:
  run: {provider: $PROVIDER, pipeline: pipeline, experimentName: Default}
  triggers:
    schedules:
    - {cronExpression: '0 * * * *', startTime: '2025-01-01T00:00:00Z', endTime: '2030-12-31T23:59:59Z'}
    - {cronExpression: '30 2 * * *'}
",
        )
        .await;
    let rc = wait_for_state(&rcs, "rc", Succeeded, |rc: &RunConfiguration| rc.status.as_ref()).await;
    let schedules = harness.api::<RunSchedule>();
    let first = wait_owned(
        &schedules,
        &rc,
        2,
        "two synchronised RunSchedules",
        |s: &RunSchedule| {
            s.status
                .as_ref()
                .is_some_and(|s| s.synchronization_state() == Succeeded)
        },
    )
    .await;
    let mut crons: Vec<String> = first
        .iter()
        .map(|s| s.spec.schedule.cron_expression.to_string())
        .collect();
    crons.sort();
    assert_eq!(crons, ["0 * * * *", "30 2 * * *"]);
    assert!(first.iter().all(|s| s.spec.provider == harness.provider));
    let pipeline_version = harness
        .api::<Pipeline>()
        .get("pipeline")
        .await
        .unwrap()
        .status
        .unwrap()
        .version;
    assert!(
        first.iter().all(|s| s.spec.pipeline.version == pipeline_version),
        "RunSchedules pin the observed pipeline version"
    );
    assert_eq!(rc.status.as_ref().unwrap().provider, harness.provider);

    // Change one schedule: that RunSchedule is replaced (a new object), the other is kept.
    rcs.patch(
        "rc",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"triggers": {"schedules": [
            {"cronExpression": "0 * * * *", "startTime": "2025-01-01T00:00:00Z", "endTime": "2030-12-31T23:59:59Z"},
            {"cronExpression": "45 3 * * *"}
        ]}}})),
    )
    .await
    .unwrap();
    let second = wait_owned(
        &schedules,
        &rc,
        2,
        "the changed schedule replaced",
        |s: &RunSchedule| {
            s.spec.schedule.cron_expression.to_string() != "30 2 * * *"
                && s.metadata.deletion_timestamp.is_none()
        },
    )
    .await;
    let kept = first
        .iter()
        .find(|s| s.spec.schedule.cron_expression.to_string() == "0 * * * *")
        .unwrap();
    assert!(
        second.iter().any(|s| s.uid() == kept.uid()),
        "the unchanged RunSchedule is kept"
    );
    let replaced = second
        .iter()
        .find(|s| s.spec.schedule.cron_expression.to_string() == "45 3 * * *")
        .unwrap();
    assert!(
        first.iter().all(|s| s.uid() != replaced.uid()),
        "the changed RunSchedule is a new object"
    );
    wait_for_state(&rcs, "rc", Succeeded, |rc: &RunConfiguration| rc.status.as_ref()).await;
    harness.stop().await;
}

#[tokio::test]
async fn on_change_triggers_create_runs_with_trigger_labels() {
    let mut harness = Harness::start(Mode::Direct).await;
    harness.create::<Pipeline>(PIPELINE).await;
    let rcs = harness.api::<RunConfiguration>();
    harness
        .create::<RunConfiguration>(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {name: rc, namespace: $NS}
spec:
  run: {provider: $PROVIDER, pipeline: pipeline, parameters: [{name: a, value: '1'}]}
  triggers: {onChange: [runSpec]}
",
        )
        .await;
    let rc = wait_for_state(&rcs, "rc", Succeeded, |rc: &RunConfiguration| rc.status.as_ref()).await;
    let runs = harness.api::<Run>();
    let first = wait_owned(&runs, &rc, 1, "a Run for the new run spec", |_: &Run| true).await;
    assert_eq!(first[0].labels()[labels::TRIGGER_TYPE], "onChangeRunSpec");
    assert_eq!(first[0].labels()[labels::RUN_CONFIGURATION_NAME], "rc");
    wait_for_state(&runs, &first[0].name_any(), Succeeded, |r: &Run| {
        r.status.as_ref()
    })
    .await;

    // A new run spec triggers one more Run; the same spec again does not.
    rcs.patch(
        "rc",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"run": {"parameters": [{"name": "a", "value": "2"}]}}})),
    )
    .await
    .unwrap();
    let both = wait_owned(&runs, &rc, 2, "a second Run for the changed spec", |_: &Run| true).await;
    let second = both.iter().find(|r| r.uid() != first[0].uid()).unwrap();
    assert_eq!(second.spec.parameters[0].value, "2");
    harness.stop().await;
}

#[tokio::test]
async fn a_changed_provider_fails_the_run_configuration() {
    let mut harness = Harness::start(Mode::Direct).await;
    let rcs = harness.api::<RunConfiguration>();
    harness
        .create::<RunConfiguration>(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {name: rc, namespace: $NS}
spec:
  run: {provider: $PROVIDER, pipeline: 'pipeline:v1'}
",
        )
        .await;
    wait_for_state(&rcs, "rc", Succeeded, |rc: &RunConfiguration| rc.status.as_ref()).await;
    rcs.patch(
        "rc",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"run": {"provider": format!("{}/other", harness.namespace)}}})),
    )
    .await
    .unwrap();
    let failed = wait_for_state(&rcs, "rc", Failed, |rc: &RunConfiguration| rc.status.as_ref()).await;
    assert_eq!(
        failed.status.unwrap().synchronized().unwrap().message,
        "the provider has changed"
    );
    harness
        .wait_for_events("rc", "a SyncFailed Event", |events| {
            events.iter().any(|(reason, _)| reason == "SyncFailed")
        })
        .await;
    harness.stop().await;
}

#[tokio::test]
async fn a_new_pipeline_version_triggers_a_run_on_change_pipeline() {
    let mut harness = Harness::start(Mode::Direct).await;
    harness.create::<Pipeline>(PIPELINE).await;
    let pipelines = harness.api::<Pipeline>();
    let first_version = wait_for_state(&pipelines, "pipeline", Succeeded, |p: &Pipeline| {
        p.status.as_ref()
    })
    .await
    .status
    .unwrap()
    .version;
    let rcs = harness.api::<RunConfiguration>();
    harness
        .create::<RunConfiguration>(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {name: rc, namespace: $NS}
spec:
  run: {provider: $PROVIDER, pipeline: pipeline}
  triggers: {onChange: [pipeline]}
",
        )
        .await;
    let rc = wait_for_state(&rcs, "rc", Succeeded, |rc: &RunConfiguration| rc.status.as_ref()).await;
    let runs = harness.api::<Run>();
    let first = wait_owned(
        &runs,
        &rc,
        1,
        "a Run for the first pipeline version",
        |_: &Run| true,
    )
    .await;
    assert_eq!(first[0].labels()[labels::TRIGGER_TYPE], "onChangePipeline");
    assert_eq!(
        first[0].spec.pipeline.version, first_version,
        "the Run pins the observed version"
    );

    // A new image is a new pipeline version: once the Pipeline is Succeeded with it, one more Run.
    pipelines
        .patch(
            "pipeline",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"image": "alpine:3.21"}})),
        )
        .await
        .unwrap();
    let both = wait_owned(&runs, &rc, 2, "a Run for the new pipeline version", |_: &Run| {
        true
    })
    .await;
    let second = both.iter().find(|r| r.uid() != first[0].uid()).unwrap();
    assert!(
        second.spec.pipeline.version.starts_with("3.21-"),
        "{:?}",
        second.spec.pipeline
    );
    assert_eq!(second.labels()[labels::TRIGGER_SOURCE], "pipeline");
    harness.stop().await;
}
