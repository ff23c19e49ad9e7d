//! Dependency triggering across namespaces (docs/controllers.md, "RunConfigurations"; the
//! `runconfiguration-dependency.yaml` shape) on a real API server. In the `cluster_wide` test binary: the operator
//! here watches every namespace, so it must not share the control plane with the namespace-scoped operators of other
//! tests.

use crate::support;

use kfp_core::resources::labels;
use kfp_core::resources::v1beta1::{Pipeline, Run, RunConfiguration, RunReference};
use kfp_core::values::Artifact;
use kfp_core::values::SynchronizationState::Succeeded;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use support::owned::{owned, wait_owned};
use support::{Harness, Mode, wait_for_state, wait_until};

const PIPELINE: &str = "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {name: pipeline, namespace: $NS}
spec: {provider: $PROVIDER, image: 'alpine:3.20', framework: {name: stub, parameters: {}}}
";

/// A dependency trigger in the `runconfiguration-dependency.yaml` shape: B (another namespace) is triggered when A
/// records a new succeeded run, and B's Run carries A's artifact location as its parameter.
#[tokio::test]
async fn a_dependency_success_triggers_the_dependant_with_its_artifact() {
    let mut harness = Harness::start_with(Mode::Direct, |config| config.system.watch_namespace.clear()).await;
    let (client, base) = support::client_and_namespace().await;
    let base_rcs: Api<RunConfiguration> = Api::namespaced(client.clone(), &base);
    let a: RunConfiguration = serde_saphyr::from_str(&format!(
        "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {{name: examples-rc, namespace: {base}}}
spec:
  run:
    provider: {provider}
    pipeline: examples-pipeline:v1
    artifacts: [{{name: examples, path: 'CsvExampleGen:examples'}}]
",
        provider = harness.provider
    ))
    .unwrap();
    base_rcs.create(&Default::default(), &a).await.unwrap();
    harness.create::<Pipeline>(PIPELINE).await;
    let rcs = harness.api::<RunConfiguration>();
    harness
        .create::<RunConfiguration>(&format!(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {{name: training-rc, namespace: $NS}}
spec:
  run:
    provider: $PROVIDER
    pipeline: pipeline
    parameters:
    - name: examples_location
      valueFrom:
        runConfigurationRef: {{name: {base}/examples-rc, outputArtifact: examples}}
  triggers:
    runConfigurations: [{base}/examples-rc]
"
        ))
        .await;
    // A dependency that never succeeded triggers nothing (decision 0002, "RunConfigurations"). Wait until B has seen A
    // (its baseline in status.triggers): a success recorded before that is only taken as the baseline and triggers
    // nothing.
    let key = format!("{base}/examples-rc");
    let b = wait_until(
        &rcs,
        "training-rc",
        "the dependency to be snapshotted and seen",
        |rc: &RunConfiguration| {
            // The triggers, not only the dependency snapshot: B records them one reconcile later, and a success
            // of A recorded before that would be taken for the baseline and trigger nothing.
            rc.status.as_ref().is_some_and(|s| {
                s.dependencies.run_configurations.contains_key(&key)
                    && s.triggers.run_configurations.contains_key(&key)
            })
        },
    )
    .await;
    assert!(
        owned(&harness.api::<Run>(), &b).await.is_empty(),
        "no Run before the dependency succeeds"
    );

    // A records a succeeded run, as the run completion feed does.
    let succeeded = RunReference {
        provider_id: "stub-run-1".to_string(),
        artifacts: vec![Artifact {
            name: "examples".to_string(),
            location: "gs://bucket/examples/1".to_string(),
        }],
        run_end_time: None,
        run_name: String::new(),
    };
    base_rcs
        .patch_status(
            "examples-rc",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"latestRuns": {"succeeded": succeeded}}})),
        )
        .await
        .unwrap();
    let runs = harness.api::<Run>();
    let triggered = wait_owned(&runs, &b, 1, "a Run triggered by the dependency", |_: &Run| true).await;
    let run = &triggered[0];
    assert_eq!(run.labels()[labels::TRIGGER_TYPE], "runConfiguration");
    assert_eq!(run.labels()[labels::TRIGGER_SOURCE], "examples-rc");
    assert_eq!(run.labels()[labels::TRIGGER_SOURCE_NAMESPACE], base);
    let finished = wait_for_state(&runs, &run.name_any(), Succeeded, |r: &Run| r.status.as_ref()).await;
    let dependency =
        &finished.status.unwrap().dependencies.run_configurations[&format!("{base}/examples-rc")];
    assert_eq!(dependency.artifacts[0].location, "gs://bucket/examples/1");
    harness.stop().await;
}
