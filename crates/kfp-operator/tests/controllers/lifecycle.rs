//! Every kind through its life on a real API server, under both executors (docs/controllers.md): create ->
//! Succeeded, update -> Updating -> Succeeded with a new version, delete -> finalizer released; Events and
//! `observedGeneration`; permanent and transient provider failures; deletion from a failed state and with the
//! Provider gone. Under the Argo executor a simulated Argo controller runs each workflow's provider call for real.

use crate::support;

use kfp_core::reconcile::generic::{RETRY_ANNOTATION, RetryState};
use kfp_core::resources::FINALIZER;
use kfp_core::resources::v1beta1::{Conditions, Experiment, Pipeline, Provider, Run, RunSchedule, Status};
use kfp_core::values::SynchronizationState::{Creating, Failed, Succeeded};
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use support::{Harness, Mode, wait_for_state, wait_gone, wait_until};

const PIPELINE: &str = "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {name: pipeline, namespace: $NS}
spec: {provider: $PROVIDER, image: 'alpine:3.20', framework: {name: stub, parameters: {}}}
";

fn status_of<K: HasStatus>(object: &K) -> Option<&Status> {
    object.base_status()
}

/// The shared status of the simple kinds.
trait HasStatus {
    fn base_status(&self) -> Option<&Status>;
}

impl HasStatus for Pipeline {
    fn base_status(&self) -> Option<&Status> {
        self.status.as_ref()
    }
}
impl HasStatus for Experiment {
    fn base_status(&self) -> Option<&Status> {
        self.status.as_ref()
    }
}
impl HasStatus for RunSchedule {
    fn base_status(&self) -> Option<&Status> {
        self.status.as_ref()
    }
}
impl HasStatus for Run {
    fn base_status(&self) -> Option<&Status> {
        self.status.as_ref().map(|s| &s.status)
    }
}

/// `observedGeneration` in the status and its condition equals the object's generation.
fn assert_observed_generation<K: HasStatus + kube::Resource>(object: &K) {
    let generation = object.meta().generation.unwrap();
    let status = object.base_status().unwrap();
    assert_eq!(
        status.observed_generation, generation,
        "status.observedGeneration"
    );
    assert_eq!(
        status.synchronized().unwrap().observed_generation,
        Some(generation),
        "condition observedGeneration"
    );
}

async fn assert_events(harness: &Harness, name: &str, expected: &[(&str, &str)]) {
    harness
        .wait_for_events(name, &format!("the Events {expected:?} on {name}"), |events| {
            expected.iter().all(|(reason, note_start)| {
                events
                    .iter()
                    .any(|(r, n)| r == reason && n.starts_with(note_start))
            })
        })
        .await;
}

/// The kstatus conditions as the API server stored them: `(type, status)` of each but `Synchronized`, in order.
fn kstatus_of<K: HasStatus>(object: &K) -> Vec<(String, String)> {
    object
        .base_status()
        .unwrap()
        .conditions
        .iter()
        .filter(|c| c.type_ != "Synchronized")
        .map(|c| (c.type_.clone(), c.status.clone()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(t, s)| (t.to_string(), s.to_string()))
        .collect()
}

async fn pipeline_lifecycle(mode: Mode) {
    let mut harness = Harness::start(mode).await;
    let pipelines = harness.api::<Pipeline>();
    harness.create::<Pipeline>(PIPELINE).await;
    let pipeline = wait_for_state(&pipelines, "pipeline", Succeeded, status_of).await;
    let status = pipeline.status.clone().unwrap();
    assert_eq!(status.provider.id, "create-pipeline-succeeded");
    assert_eq!(status.provider.name, harness.provider);
    assert!(status.version.starts_with("3.20-"), "{}", status.version);
    assert!(pipeline.finalizers().iter().any(|f| f == FINALIZER));
    assert_observed_generation(&pipeline);
    // Issue 19: kstatus reads it as Current (Ready, nothing reconciling or stalled).
    assert_eq!(kstatus_of(&pipeline), pairs(&[("Ready", "True")]));

    pipelines
        .patch(
            "pipeline",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"image": "alpine:3.21"}})),
        )
        .await
        .unwrap();
    let updated = wait_until(&pipelines, "pipeline", "the update to succeed", |p: &Pipeline| {
        p.status
            .as_ref()
            .is_some_and(|s| s.version.starts_with("3.21-") && s.synchronization_state() == Succeeded)
    })
    .await;
    assert_eq!(
        updated.status.as_ref().unwrap().provider.id,
        "update-pipeline-succeeded"
    );
    assert_observed_generation(&updated);
    assert_events(
        &harness,
        "pipeline",
        &[
            ("Syncing", "Creating"),
            ("Synced", "Succeeded"),
            ("Syncing", "Updating"),
        ],
    )
    .await;

    pipelines
        .delete("pipeline", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&pipelines, "pipeline").await;
    harness.stop().await;
}

async fn run_lifecycle(mode: Mode) {
    let mut harness = Harness::start(mode).await;
    harness.create::<Pipeline>(PIPELINE).await;
    let pipeline = wait_for_state(&harness.api::<Pipeline>(), "pipeline", Succeeded, status_of).await;
    let runs = harness.api::<Run>();
    harness
        .create::<Run>(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Run
metadata: {name: run, namespace: $NS}
spec:
  provider: $PROVIDER
  pipeline: pipeline
  parameters: [{name: TRAINING_RUNS, value: '100'}]
",
        )
        .await;
    let run = wait_for_state(&runs, "run", Succeeded, status_of).await;
    let status = run.status.clone().unwrap();
    assert_eq!(status.status.provider.id, "create-run-succeeded");
    assert_eq!(
        status.dependencies.pipeline.version,
        pipeline.status.unwrap().version,
        "the Run records the pipeline version it ran"
    );
    assert_observed_generation(&run);
    assert_events(
        &harness,
        "run",
        &[("Syncing", "Creating"), ("Synced", "Succeeded")],
    )
    .await;
    runs.delete("run", &DeleteParams::default()).await.unwrap();
    wait_gone(&runs, "run").await;
    harness.stop().await;
}

async fn experiment_lifecycle(mode: Mode) {
    let mut harness = Harness::start(mode).await;
    let experiments = harness.api::<Experiment>();
    harness
        .create::<Experiment>(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Experiment
metadata: {name: experiment, namespace: $NS}
spec: {provider: $PROVIDER, description: first}
",
        )
        .await;
    let created = wait_for_state(&experiments, "experiment", Succeeded, status_of).await;
    assert_eq!(
        created.status.as_ref().unwrap().provider.id,
        "create-experiment-succeeded"
    );
    let first_version = created.status.unwrap().version;
    experiments
        .patch(
            "experiment",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"description": "second"}})),
        )
        .await
        .unwrap();
    let updated = wait_until(
        &experiments,
        "experiment",
        "the update to succeed",
        |e: &Experiment| {
            e.status
                .as_ref()
                .is_some_and(|s| s.version != first_version && s.synchronization_state() == Succeeded)
        },
    )
    .await;
    assert_eq!(
        updated.status.as_ref().unwrap().provider.id,
        "update-experiment-succeeded"
    );
    assert_observed_generation(&updated);
    experiments
        .delete("experiment", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&experiments, "experiment").await;
    harness.stop().await;
}

async fn run_schedule_lifecycle(mode: Mode) {
    let mut harness = Harness::start(mode).await;
    let schedules = harness.api::<RunSchedule>();
    harness
        .create::<RunSchedule>(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunSchedule
metadata: {name: schedule, namespace: $NS}
spec:
  provider: $PROVIDER
  pipeline: pipeline
  experimentName: experiment
  parameters: [{name: TRAINING_RUNS, value: '100'}]
  schedule: {cronExpression: '0 * * * *', startTime: '2024-01-01T00:00:00Z', endTime: '2024-12-31T23:59:59Z'}
",
        )
        .await;
    let created = wait_for_state(&schedules, "schedule", Succeeded, status_of).await;
    assert_eq!(
        created.status.as_ref().unwrap().provider.id,
        "create-runschedule-succeeded"
    );
    schedules
        .patch(
            "schedule",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"schedule": {"cronExpression": "30 * * * *"}}})),
        )
        .await
        .unwrap();
    let first_version = created.status.unwrap().version;
    let updated = wait_until(
        &schedules,
        "schedule",
        "the update to succeed",
        |s: &RunSchedule| {
            s.status
                .as_ref()
                .is_some_and(|s| s.version != first_version && s.synchronization_state() == Succeeded)
        },
    )
    .await;
    assert_eq!(
        updated.status.as_ref().unwrap().provider.id,
        "update-runschedule-succeeded"
    );
    schedules
        .delete("schedule", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&schedules, "schedule").await;
    harness.stop().await;
}

const FAILING_EXPERIMENT: &str = "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Experiment
metadata: {name: NAME, namespace: $NS}
spec: {provider: $PROVIDER, description: failing}
";

/// A provider's 400 is permanent (no retry until the spec changes); a deletion from `Failed`
/// releases the finalizer.
async fn permanent_failure(mode: Mode) {
    let mut harness = Harness::start(mode).await;
    let experiments = harness.api::<Experiment>();
    harness
        .create::<Experiment>(&FAILING_EXPERIMENT.replace("NAME", "create-experiment-fail"))
        .await;
    let failed = wait_for_state(&experiments, "create-experiment-fail", Failed, status_of).await;
    let message = failed
        .status
        .as_ref()
        .unwrap()
        .synchronized()
        .unwrap()
        .message
        .clone();
    assert!(message.contains("create experiment failed"), "{message}");
    assert!(message.contains("permanent failure"), "{message}");
    assert!(
        !failed.annotations().contains_key(RETRY_ANNOTATION),
        "no retry is scheduled"
    );
    assert_events(&harness, "create-experiment-fail", &[("SyncFailed", "Failed")]).await;
    // Issue 19: kstatus (Flux's health check) reads it as Failed, not as healthy.
    assert_eq!(
        kstatus_of(&failed),
        pairs(&[("Ready", "False"), ("Stalled", "True")])
    );

    experiments
        .delete("create-experiment-fail", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&experiments, "create-experiment-fail").await;
    harness.stop().await;
}

/// A provider's 500 is transient: retried with backoff (first after 10 s, then doubled).
async fn transient_failure_is_retried(mode: Mode) {
    let mut harness = Harness::start(mode).await;
    let experiments = harness.api::<Experiment>();
    harness
        .create::<Experiment>(&FAILING_EXPERIMENT.replace("NAME", "transient-fail"))
        .await;
    let retry = |e: &Experiment| {
        e.annotations()
            .get(RETRY_ANNOTATION)
            .map(|a| serde_json::from_str::<RetryState>(a).unwrap())
    };
    let first = wait_until(
        &experiments,
        "transient-fail",
        "a first transient failure",
        |e: &Experiment| {
            retry(e).is_some_and(|r| r.attempt == 1)
                && e.status
                    .as_ref()
                    .is_some_and(|s| s.synchronization_state() == Failed)
        },
    )
    .await;
    let message = first
        .status
        .as_ref()
        .unwrap()
        .synchronized()
        .unwrap()
        .message
        .clone();
    assert!(message.contains("transient failure, attempt 1"), "{message}");
    let first_retry = retry(&first).unwrap();
    let failed_at = first
        .status
        .as_ref()
        .unwrap()
        .synchronized()
        .unwrap()
        .last_transition_time
        .0;
    let delay = first_retry
        .next_attempt_at
        .0
        .duration_since(failed_at)
        .as_secs_f64();
    assert!(
        (5.0..=15.0).contains(&delay),
        "first retry after about 10 s, got {delay} s"
    );

    let second = wait_until(
        &experiments,
        "transient-fail",
        "a second attempt",
        |e: &Experiment| retry(e).is_some_and(|r| r.attempt == 2),
    )
    .await;
    let second_retry = retry(&second).unwrap();
    assert!(
        second_retry.next_attempt_at.0 > first_retry.next_attempt_at.0,
        "the second retry is scheduled later"
    );
    experiments
        .delete("transient-fail", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&experiments, "transient-fail").await;
    harness.stop().await;
}

/// With the Provider gone, deletion releases the finalizer with a `ProviderGone` warning.
async fn deletion_with_the_provider_gone(mode: Mode) {
    let mut harness = Harness::start(mode).await;
    let pipelines = harness.api::<Pipeline>();
    harness.create::<Pipeline>(PIPELINE).await;
    wait_for_state(&pipelines, "pipeline", Succeeded, status_of).await;
    harness
        .api::<Provider>()
        .delete("stub", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&harness.api::<Provider>(), "stub").await;
    pipelines
        .delete("pipeline", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&pipelines, "pipeline").await;
    assert_events(&harness, "pipeline", &[("ProviderGone", "")]).await;
    harness.stop().await;
}

/// A Pipeline applied before its Provider (a folder applied at once) is reconciled as soon as the Provider appears,
/// not after the 30 s fallback requeue (`PROVIDER_MISSING_REQUEUE`; docs/controllers.md).
async fn objects_applied_before_their_provider_wake_when_it_appears(mode: Mode) {
    let mut harness = Harness::prepare(mode, |_| {}).await;
    let providers = harness.api::<Provider>();
    let provider = providers.get("stub").await.unwrap();
    providers.delete("stub", &DeleteParams::default()).await.unwrap();
    wait_gone(&providers, "stub").await;
    harness.start_argo();
    harness.start_operator();
    let pipelines = harness.api::<Pipeline>();
    harness.create::<Pipeline>(PIPELINE).await;
    // The operator has seen the Pipeline without its Provider (and requeued it for 30 s).
    kfp_testenv::wait_for("the Pipeline's first reconcile", support::WAIT, || async {
        Ok::<_, std::convert::Infallible>((harness.reconciliations("pipeline") > 0).then_some(()))
    })
    .await
    .unwrap();
    let seen = std::time::Instant::now();
    providers
        .create(&Default::default(), &provider_manifest_of(&provider))
        .await
        .unwrap();
    // Well inside the 30 s fallback: only the Provider's arrival can have woken it.
    kfp_testenv::wait_for(
        "the Pipeline to take its finalizer",
        std::time::Duration::from_secs(15),
        || async {
            let pipeline = pipelines.get("pipeline").await?;
            Ok::<_, kube::Error>(pipeline.finalizers().iter().any(|f| f == FINALIZER).then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e} ({:?} after the first reconcile)", seen.elapsed()));
    wait_for_state(&pipelines, "pipeline", Succeeded, status_of).await;
    harness.stop().await;
}

/// The Provider as it was created (no server-set fields).
fn provider_manifest_of(provider: &Provider) -> Provider {
    let mut fresh = Provider::new(&provider.name_any(), provider.spec.clone());
    fresh.metadata.namespace = provider.metadata.namespace.clone();
    fresh
}

/// Deleting a resource while its create is in flight waits for the create, then deletes it on the
/// provider and releases the finalizer. Argo only: the workflow is held back by starting the simulated Argo
/// controller after the deletion.
#[tokio::test]
async fn deletion_while_creating_waits_for_the_operation_then_deletes() {
    let mut harness = Harness::start(Mode::Argo).await;
    drop(harness.argo.take());
    let pipelines = harness.api::<Pipeline>();
    harness.create::<Pipeline>(PIPELINE).await;
    wait_until(
        &pipelines,
        "pipeline",
        "the create to be in flight",
        |p: &Pipeline| {
            p.status
                .as_ref()
                .is_some_and(|s| s.synchronization_state() == Creating)
        },
    )
    .await;
    pipelines
        .delete("pipeline", &DeleteParams::default())
        .await
        .unwrap();
    let deleting = wait_until(
        &pipelines,
        "pipeline",
        "the deletion to be seen",
        |p: &Pipeline| p.metadata.deletion_timestamp.is_some(),
    )
    .await;
    assert!(
        deleting.finalizers().iter().any(|f| f == FINALIZER),
        "held while the create is in flight"
    );

    let url = support::serve_provider(
        &harness.provider,
        std::sync::Arc::new(kfp_providers::stub::StubProvider::new()),
    )
    .await;
    harness.argo = Some(support::SimulatedArgo::start(
        harness.client.clone(),
        &harness.namespace,
        url,
    ));
    wait_gone(&pipelines, "pipeline").await;
    assert_events(
        &harness,
        "pipeline",
        &[
            ("Synced", "Succeeded"),
            ("Syncing", "Deleting"),
            ("Synced", "Deleted"),
        ],
    )
    .await;
    harness.stop().await;
}

macro_rules! both_executors {
    ($($scenario:ident),* $(,)?) => {
        mod argo {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Mode::Argo).await
                }
            )*
        }
        mod direct {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Mode::Direct).await
                }
            )*
        }
    };
}

both_executors!(
    pipeline_lifecycle,
    run_lifecycle,
    experiment_lifecycle,
    run_schedule_lifecycle,
    permanent_failure,
    transient_failure_is_retried,
    deletion_with_the_provider_gone,
    objects_applied_before_their_provider_wake_when_it_appears,
);
