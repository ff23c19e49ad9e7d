//! What a Run does beyond the generic state machine, on a real API server (docs/controllers.md, "Runs"): completion is
//! marked and, with `spec.runCompletionTTL`, the Run is deleted once the TTL has passed (kept without one); a Run whose
//! `valueFrom` dependency is missing or has no succeeded run waits in `Pending` without submitting anything and
//! proceeds once the dependency records the artifact; an optional unresolvable parameter is skipped with an Event; a
//! fixed pipeline version is taken without the Pipeline existing.

use crate::support;

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kfp_core::reconcile::dependencies::optional_parameter_message;
use kfp_core::resources::v1beta1::{Conditions, Run, RunConfiguration, RunReference};
use kfp_core::values::Artifact;
use kfp_core::values::SynchronizationState::{Pending, Succeeded};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use support::{Harness, Mode, wait_for_state, wait_gone, wait_until};

/// A Run with a fixed pipeline version, so that no Pipeline is needed.
const RUN: &str = "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Run
metadata: {name: run, namespace: $NS}
spec: {provider: $PROVIDER, pipeline: 'pipeline:v1', parameters: [{name: a, value: '1'}]}
";

fn run_status(run: &Run) -> Option<&kfp_core::resources::v1beta1::RunStatus> {
    run.status.as_ref()
}

/// Patches `status.completionState` as the run completion feed does.
async fn complete(runs: &Api<Run>, name: &str) {
    runs.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"completionState": "Succeeded"}})),
    )
    .await
    .unwrap();
}

/// Changes an annotation of the Run, which the operator sees as a watch event, and waits until the operator
/// counted one more Run reconcile than before: afterwards a reconcile has looked at the Run as it is now.
async fn poke_and_wait_for_reconcile(harness: &Harness, runs: &Api<Run>, name: &str) {
    let before = harness.reconciliations("run");
    runs.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"test/poke": before.to_string()}}})),
    )
    .await
    .unwrap();
    kfp_testenv::wait_for("a reconcile of the Run", support::WAIT, || async {
        Ok::<_, String>((harness.reconciliations("run") > before).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn completed_runs_are_marked_and_deleted_after_the_ttl() {
    const TTL: Duration = Duration::from_secs(2);
    let mut harness = Harness::start_with(Mode::Direct, |config| {
        config.spec.run_completion_ttl = Some(TTL);
    })
    .await;
    let runs = harness.api::<Run>();
    harness.create::<Run>(RUN).await;
    wait_for_state(&runs, "run", Succeeded, run_status).await;

    complete(&runs, "run").await;
    let marked = wait_until(&runs, "run", "markedCompletedAt to be set", |r: &Run| {
        run_status(r).is_some_and(|s| s.marked_completed_at.is_some())
    })
    .await;
    let marked_at = marked.status.unwrap().marked_completed_at.unwrap().0;
    let expires = marked_at + TTL;
    // Not before the TTL: the Run is still there while its TTL has not passed.
    let still = runs.get_opt("run").await.unwrap();
    if Timestamp::now() < expires {
        let still = still.expect("the Run exists before its TTL has passed");
        assert!(
            still.metadata.deletion_timestamp.is_none(),
            "the Run is not being deleted before its TTL has passed"
        );
    }

    wait_gone(&runs, "run").await;
    assert!(
        Timestamp::now() >= expires,
        "the Run was deleted at {} before its TTL expired at {expires}",
        Timestamp::now()
    );
    harness.stop().await;
}

#[tokio::test]
async fn completed_runs_are_kept_without_a_ttl() {
    let mut harness = Harness::start(Mode::Direct).await;
    let runs = harness.api::<Run>();
    harness.create::<Run>(RUN).await;
    wait_for_state(&runs, "run", Succeeded, run_status).await;

    complete(&runs, "run").await;
    let marked = wait_until(&runs, "run", "markedCompletedAt to be set", |r: &Run| {
        run_status(r).is_some_and(|s| s.marked_completed_at.is_some())
    })
    .await;
    let marked_at = marked.status.as_ref().unwrap().marked_completed_at.clone();

    poke_and_wait_for_reconcile(&harness, &runs, "run").await;
    let kept = runs
        .get_opt("run")
        .await
        .unwrap()
        .expect("a completed Run is kept without a TTL");
    assert!(kept.metadata.deletion_timestamp.is_none(), "not being deleted");
    let status = kept.status.unwrap();
    assert_eq!(status.marked_completed_at, marked_at, "marked once, not again");
    assert_eq!(status.status.synchronization_state(), Succeeded);
    harness.stop().await;
}

#[tokio::test]
async fn unresolvable_parameters_wait_in_pending_until_the_dependency_succeeds() {
    let mut harness = Harness::start(Mode::Direct).await;
    let runs = harness.api::<Run>();
    harness
        .create::<Run>(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Run
metadata: {name: run, namespace: $NS}
spec:
  provider: $PROVIDER
  pipeline: 'pipeline:v1'
  parameters:
  - name: examples_location
    valueFrom:
      runConfigurationRef: {name: upstream, outputArtifact: examples}
",
        )
        .await;
    let dependency = format!("{}/upstream", harness.namespace);

    // The dependency does not exist: Pending, naming it; nothing submitted.
    let pending = wait_for_state(&runs, "run", Pending, run_status).await;
    let status = pending.status.unwrap();
    let condition = status.synchronized().unwrap().clone();
    assert_eq!(condition.status, "False", "{condition:?}");
    assert_eq!(condition.reason, "Pending");
    assert_eq!(
        condition.message,
        format!("Unable to resolve parameters: dependency '{dependency}' not found"),
        "the message names the missing dependency"
    );
    assert!(status.status.provider.id.is_empty(), "nothing submitted");

    // The dependency exists but has no succeeded run yet: still Pending, still nothing submitted.
    let rcs = harness.api::<RunConfiguration>();
    harness
        .create::<RunConfiguration>(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {name: upstream, namespace: $NS}
spec:
  run:
    provider: $PROVIDER
    pipeline: 'upstream-pipeline:v1'
    artifacts: [{name: examples, path: 'CsvExampleGen:examples'}]
",
        )
        .await;
    let no_run_yet =
        format!("Unable to resolve parameters: dependency '{dependency}' has no succeeded run yet");
    let waiting = wait_until(
        &runs,
        "run",
        "the message to say the dependency has no run yet",
        |r: &Run| {
            run_status(r).is_some_and(|s| {
                s.dependencies.run_configurations.contains_key(&dependency)
                    && s.synchronized()
                        .is_some_and(|c| c.reason == "Pending" && c.message == no_run_yet)
            })
        },
    )
    .await;
    let status = waiting.status.unwrap();
    assert!(status.status.provider.id.is_empty(), "nothing submitted");
    assert!(
        harness
            .events_of("run")
            .await
            .iter()
            .all(|(reason, _)| reason != "Synced"),
        "never Succeeded while waiting"
    );

    // The dependency records a succeeded run with the artifact, as the run completion feed does.
    let succeeded = RunReference {
        provider_id: "upstream-run-1".to_string(),
        artifacts: vec![Artifact {
            name: "examples".to_string(),
            location: "gs://bucket/examples/1".to_string(),
        }],
        run_end_time: None,
        run_name: String::new(),
    };
    rcs.patch_status(
        "upstream",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"latestRuns": {"succeeded": succeeded}}})),
    )
    .await
    .unwrap();
    let finished = wait_for_state(&runs, "run", Succeeded, run_status).await;
    let status = finished.status.unwrap();
    assert!(!status.status.provider.id.is_empty(), "submitted");
    let snapshot = &status.dependencies.run_configurations[&dependency];
    assert_eq!(snapshot.provider_id, "upstream-run-1");
    assert_eq!(snapshot.artifacts[0].name, "examples");
    assert_eq!(snapshot.artifacts[0].location, "gs://bucket/examples/1");
    harness.stop().await;
}

#[tokio::test]
async fn an_optional_unresolvable_parameter_is_skipped_with_an_event() {
    let mut harness = Harness::start(Mode::Direct).await;
    let runs = harness.api::<Run>();
    harness
        .create::<Run>(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Run
metadata: {name: run, namespace: $NS}
spec:
  provider: $PROVIDER
  pipeline: 'pipeline:v1'
  parameters:
  - {name: plain, value: '1'}
  - name: examples_location
    valueFrom:
      runConfigurationRef: {name: missing, outputArtifact: examples, optional: true}
",
        )
        .await;
    let finished = wait_for_state(&runs, "run", Succeeded, run_status).await;
    assert!(!finished.status.unwrap().status.provider.id.is_empty());
    let expected = optional_parameter_message("examples_location");
    harness
        .wait_for_events("run", &format!("a Synced Event {expected:?}"), |events| {
            events
                .iter()
                .any(|(reason, note)| reason == "Synced" && *note == expected)
        })
        .await;
    let event_types: Vec<_> = {
        let api: Api<k8s_openapi::api::events::v1::Event> = harness.api();
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.note.as_deref() == Some(expected.as_str()))
            .map(|e| e.type_.unwrap_or_default())
            .collect()
    };
    assert_eq!(event_types, ["Normal"]);
    harness.stop().await;
}

#[tokio::test]
async fn a_fixed_pipeline_version_needs_no_pipeline() {
    let mut harness = Harness::start(Mode::Direct).await;
    let runs = harness.api::<Run>();
    harness
        .create::<Run>(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Run
metadata: {name: run, namespace: $NS}
spec: {provider: $PROVIDER, pipeline: 'absent:v9'}
",
        )
        .await;
    let finished = wait_for_state(&runs, "run", Succeeded, run_status).await;
    assert_eq!(finished.status.unwrap().dependencies.pipeline.version, "v9");
    let pipelines = harness.api::<kfp_core::resources::v1beta1::Pipeline>();
    assert!(
        pipelines.get_opt("absent").await.unwrap().is_none(),
        "no Pipeline was involved"
    );
    harness.stop().await;
}
