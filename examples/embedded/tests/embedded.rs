//! The embedded operator reconciles a Pipeline and a Run to Succeeded on kfp-testenv through the in-house
//! provider type its own registry adds.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kfp_core::resources::v1beta1::{Conditions, Pipeline, Provider, Run};
use kfp_core::values::SynchronizationState;
use kfp_example_embedded::{InHousePlatform, config, registry, run};
use kfp_operator::operator::Shutdown;
use kube::Api;

const WAIT: Duration = Duration::from_secs(60);

async fn wait_succeeded<K, S>(api: &Api<K>, name: &str, status: impl Fn(&K) -> Option<&S>) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    S: Conditions,
{
    kfp_testenv::wait_for(format!("{name} to be Succeeded"), WAIT, || async {
        let object = api.get_opt(name).await?;
        Ok::<_, kube::Error>(object.filter(|o| {
            status(o).is_some_and(|s| s.synchronization_state() == SynchronizationState::Succeeded)
        }))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn the_embedded_controllers_reconcile_through_the_inhouse_provider() {
    let env = kfp_testenv::TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    env.install_crds(&[root.join("config/crd")])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let namespace = env.namespace().await.unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace.name().to_string();
    let client = env.client().await.unwrap();

    let manifests = format!(
        "apiVersion: pipelines.kubeflow.org/v1beta1
kind: Provider
metadata: {{name: inhouse, namespace: {ns}}}
spec:
  serviceImage: unused-in-direct-mode
  serviceAccount: default
  pipelineRootStorage: /data/pipelines
  frameworks: [{{name: stub, image: unused}}]
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {{name: training, namespace: {ns}}}
spec:
  provider: {ns}/inhouse
  image: registry.example/training:v1
  framework: {{name: stub, parameters: {{}}}}
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Run
metadata: {{name: training-run, namespace: {ns}}}
spec:
  provider: {ns}/inhouse
  pipeline: training
  parameters: [{{name: epochs, value: '3'}}]
"
    );
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&manifests).unwrap();
    let providers: Api<Provider> = Api::namespaced(client.clone(), &ns);
    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), &ns);
    let runs: Api<Run> = Api::namespaced(client.clone(), &ns);
    providers
        .create(
            &Default::default(),
            &serde_json::from_value(documents[0].clone()).unwrap(),
        )
        .await
        .unwrap();
    pipelines
        .create(
            &Default::default(),
            &serde_json::from_value(documents[1].clone()).unwrap(),
        )
        .await
        .unwrap();
    runs.create(
        &Default::default(),
        &serde_json::from_value(documents[2].clone()).unwrap(),
    )
    .await
    .unwrap();

    let platform = Arc::new(InHousePlatform::default());
    let (trigger, shutdown) = Shutdown::new();
    let operator = tokio::spawn(run(
        client.clone(),
        config(&ns),
        registry(platform.clone()).unwrap(),
        shutdown,
    ));

    let pipeline = wait_succeeded(&pipelines, "training", |p| p.status.as_ref()).await;
    let run = wait_succeeded(&runs, "training-run", |r| r.status.as_ref()).await;
    trigger.trigger();
    tokio::time::timeout(WAIT, operator)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let objects = platform.objects();
    let pipeline_id = &pipeline.status.unwrap().provider.id;
    let run_id = &run.status.unwrap().status.provider.id;
    assert_eq!(
        objects[pipeline_id],
        ("pipeline", format!("{ns}/training")),
        "{objects:?}"
    );
    assert_eq!(
        objects[run_id],
        ("run", format!("{ns}/training-run")),
        "{objects:?}"
    );
}
