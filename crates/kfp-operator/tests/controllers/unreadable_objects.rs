//! Objects the CRD schema admits but the operator cannot decode (issue 17, item 5), under both executors: one
//! of each kind next to good objects. The good ones reach `Succeeded`; each bad one gets a Warning Event
//! `Unreadable` and a `Readable=False` condition naming the field and the value. Both when the operator is running
//! as they are created, and when it starts after they exist (its first LIST holds them).
//!
//! What is unreadable (found against kube-apiserver 1.35, `docs/controllers.md` "Unreadable objects"): an
//! `int32` field holding 2^32 (the API server checks formats of strings only), an artifact path whose index
//! overflows (the schema's pattern admits any digits), and a `date-time` after 9999-12-30T22:00Z in a `Time`
//! field (a status condition's `lastTransitionTime`). A RunSchedule ending at 9999-12-31T23:59:59Z, what the chaos
//! run found, reads since `ScheduleTime`.

use crate::support;

use kfp_core::resources::v1beta1::{
    Conditions, Experiment, Pipeline, Provider, Run, RunConfiguration, RunSchedule,
};
use kfp_core::values::SynchronizationState::Succeeded;
use kube::Resource;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{Harness, Mode, wait_for_state};

/// One bad object: its kind, name, the field and the value its report must name.
struct Bad {
    resource: ApiResource,
    name: &'static str,
    field: &'static str,
    value: &'static str,
}

fn resource<K: Resource<DynamicType = ()>>() -> ApiResource {
    ApiResource::erase::<K>(&())
}

/// The kind, name, spec, status (written after the create), field and value of a bad object.
type BadManifest = (
    ApiResource,
    &'static str,
    Value,
    Option<Value>,
    &'static str,
    &'static str,
);

const FAR_TIME: &str = "9999-12-31T23:00:00Z";
const BIG_INDEX: &str = "c:a:99999999999999999999";

/// Creates the unreadable objects in the harness's namespace, and returns what each report must name.
async fn create_bad_objects(harness: &Harness) -> Vec<Bad> {
    let provider = harness.provider.to_string();
    // The bad Pipeline and Experiment name a Provider that does not exist, so nothing is submitted for them before
    // their status is made unreadable.
    let missing = format!("{}/missing", harness.namespace);
    let far_condition = json!({"conditions": [{"type": "Synchronized", "status": "True", "reason": "Succeeded",
        "message": "", "lastTransitionTime": FAR_TIME}]});
    let artifacts = json!([{"name": "a", "path": BIG_INDEX}]);
    let objects: Vec<BadManifest> = vec![
        (
            resource::<Provider>(),
            "bad-provider",
            json!({"serviceImage": "x", "serviceAccount": "default", "pipelineRootStorage": "/x",
                   "frameworks": [{"name": "stub", "image": "x"}],
                   "podTemplateVolumes": [{"name": "v", "configMap": {"name": "c", "defaultMode": 4_294_967_296_u64}}]}),
            None,
            "spec.podTemplateVolumes[0].configMap.defaultMode",
            "4294967296",
        ),
        (
            resource::<Run>(),
            "bad-run",
            json!({"provider": provider, "pipeline": "pipeline", "artifacts": artifacts}),
            None,
            "spec.artifacts[0].path",
            BIG_INDEX,
        ),
        (
            resource::<RunSchedule>(),
            "bad-schedule",
            json!({"provider": provider, "pipeline": "pipeline", "schedule": {"cronExpression": "0 * * * *"},
                   "artifacts": artifacts}),
            None,
            "spec.artifacts[0].path",
            BIG_INDEX,
        ),
        (
            resource::<RunConfiguration>(),
            "bad-rc",
            json!({"run": {"provider": provider, "pipeline": "pipeline", "artifacts": artifacts}}),
            None,
            "spec.run.artifacts[0].path",
            BIG_INDEX,
        ),
        (
            resource::<Pipeline>(),
            "bad-pipeline",
            json!({"provider": missing, "image": "x", "framework": {"name": "stub", "parameters": {}}}),
            Some(far_condition.clone()),
            "status.conditions[0].lastTransitionTime",
            FAR_TIME,
        ),
        (
            resource::<Experiment>(),
            "bad-experiment",
            json!({"provider": missing}),
            Some(far_condition),
            "status.conditions[0].lastTransitionTime",
            FAR_TIME,
        ),
    ];
    let mut bad = Vec::new();
    for (resource, name, spec, status, field, value) in objects {
        let api: Api<DynamicObject> =
            Api::namespaced_with(harness.client.clone(), &harness.namespace, &resource);
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": resource.api_version, "kind": resource.kind,
            "metadata": {"name": name, "namespace": harness.namespace}, "spec": spec
        }))
        .unwrap();
        api.create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("the schema admits {name}: {e}"));
        if let Some(status) = status {
            api.patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .unwrap_or_else(|e| panic!("the schema admits the status of {name}: {e}"));
        }
        bad.push(Bad {
            resource,
            name,
            field,
            value,
        });
    }
    bad
}

async fn create_good_objects(harness: &Harness) {
    harness
        .create::<Pipeline>(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {name: pipeline, namespace: $NS}
spec: {provider: $PROVIDER, image: 'alpine:3.20', framework: {name: stub, parameters: {}}}
",
        )
        .await;
    harness
        .create::<Experiment>(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Experiment
metadata: {name: experiment, namespace: $NS}
spec: {provider: $PROVIDER}
",
        )
        .await;
    harness
        .create::<Run>(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Run
metadata: {name: run, namespace: $NS}
spec: {provider: $PROVIDER, pipeline: pipeline}
",
        )
        .await;
    harness
        .create::<RunSchedule>(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunSchedule
metadata: {name: schedule, namespace: $NS}
spec: {provider: $PROVIDER, pipeline: pipeline, schedule: {cronExpression: '0 * * * *'}}
",
        )
        .await;
    harness
        .create::<RunConfiguration>(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {name: rc, namespace: $NS}
spec:
  run: {provider: $PROVIDER, pipeline: pipeline}
  triggers: {schedules: [{cronExpression: '30 2 * * *'}]}
",
        )
        .await;
}

/// Every good object reaches `Succeeded`: no bad object stopped its kind's watch.
async fn assert_good_objects_succeed(harness: &Harness) {
    let providers = harness.api::<Provider>();
    wait_for_state(&providers, "stub", Succeeded, |p: &Provider| p.status.as_ref()).await;
    wait_for_state(
        &harness.api::<Pipeline>(),
        "pipeline",
        Succeeded,
        |p: &Pipeline| p.status.as_ref(),
    )
    .await;
    wait_for_state(
        &harness.api::<Experiment>(),
        "experiment",
        Succeeded,
        |e: &Experiment| e.status.as_ref(),
    )
    .await;
    wait_for_state(&harness.api::<Run>(), "run", Succeeded, |r: &Run| {
        r.status.as_ref().map(|s| &s.status)
    })
    .await;
    wait_for_state(
        &harness.api::<RunSchedule>(),
        "schedule",
        Succeeded,
        |s: &RunSchedule| s.status.as_ref(),
    )
    .await;
    let rc = wait_for_state(
        &harness.api::<RunConfiguration>(),
        "rc",
        Succeeded,
        |rc: &RunConfiguration| rc.status.as_ref(),
    )
    .await;
    assert_eq!(rc.status.unwrap().synchronization_state(), Succeeded);
}

/// Each bad object gets the Warning Event and the `Readable=False` condition naming its field and value.
async fn assert_reported(harness: &Harness, bad: &[Bad]) {
    for object in bad {
        let names = |text: &str| text.contains(object.field) && text.contains(object.value);
        let events = harness
            .wait_for_events(
                object.name,
                &format!(
                    "a Warning Event Unreadable on {} naming {}",
                    object.name, object.field
                ),
                |events| {
                    events
                        .iter()
                        .any(|(reason, note)| reason == "Unreadable" && names(note))
                },
            )
            .await;
        let note = &events
            .iter()
            .find(|(reason, _)| reason == "Unreadable")
            .unwrap()
            .1;
        assert!(note.len() < 600, "the note is bounded: {note}");
        let api: Api<DynamicObject> =
            Api::namespaced_with(harness.client.clone(), &harness.namespace, &object.resource);
        let what = format!(
            "a Readable=False condition on {} naming {}",
            object.name, object.field
        );
        kfp_testenv::wait_for(&what, support::WAIT, || async {
            let current = api.get(object.name).await?;
            let found = current
                .data
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| {
                    c["type"] == "Readable"
                        && c["status"] == "False"
                        && c["reason"] == "Unreadable"
                        && c["message"].as_str().is_some_and(names)
                });
            Ok::<_, kube::Error>(found.then_some(()))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The operator runs while the objects are created.
async fn while_running(mode: Mode) {
    let mut harness = Harness::start(mode).await;
    let bad = create_bad_objects(&harness).await;
    create_good_objects(&harness).await;
    assert_good_objects_succeed(&harness).await;
    assert_reported(&harness, &bad).await;
    harness.stop().await;
}

/// The objects exist before the operator starts: its first LIST holds the bad ones.
async fn at_start(mode: Mode) {
    let mut harness = Harness::prepare(mode, |_| {}).await;
    let bad = create_bad_objects(&harness).await;
    create_good_objects(&harness).await;
    harness.start_argo();
    harness.start_operator();
    assert_good_objects_succeed(&harness).await;
    assert_reported(&harness, &bad).await;
    harness.stop().await;
}

#[tokio::test]
async fn unreadable_objects_are_reported_and_stop_nothing_direct() {
    while_running(Mode::Direct).await;
}

#[tokio::test]
async fn unreadable_objects_are_reported_and_stop_nothing_argo() {
    while_running(Mode::Argo).await;
}

#[tokio::test]
async fn unreadable_objects_in_the_first_list_stop_nothing_direct() {
    at_start(Mode::Direct).await;
}

#[tokio::test]
async fn unreadable_objects_in_the_first_list_stop_nothing_argo() {
    at_start(Mode::Argo).await;
}
