//! `examples/manifests/` on a real API server: every object is accepted by the CRDs, and the team's resources
//! reconcile with the direct executor, the stub provider standing in for Kubeflow Pipelines and the stub compiler
//! for the tfx and kfpsdk frameworks. The files' namespaces are mapped to fresh ones so tests never meet.

use crate::support;

use k8s_openapi::api::core::v1::Namespace;
use kfp_core::resources::v1beta1::{Experiment, Pipeline, Run, RunConfiguration, RunSchedule};
use kfp_core::values::SynchronizationState;
use kfp_operator::compiler::local::LocalCompiler;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::{Client, ResourceExt};
use support::{RunningOperator, repo_root, wait_for_state, wait_until};

/// Creates every object of the example files with their namespaces replaced; returns the created objects.
async fn create_examples(client: &Client, system: &str, team: &str) -> Vec<DynamicObject> {
    let mut created = Vec::new();
    let dir = repo_root().join("examples/manifests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 9, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace("kfp-operator-system", system)
            .replace("ml-team", team);
        for document in serde_saphyr::from_multiple::<serde_json::Value>(&text).unwrap() {
            let object: DynamicObject = serde_json::from_value(document.clone()).unwrap();
            let (group, version) = document["apiVersion"].as_str().unwrap().split_once('/').unwrap();
            let gvk = GroupVersionKind::gvk(group, version, document["kind"].as_str().unwrap());
            let (resource, _) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &object.namespace().unwrap(), &resource);
            let stored = api
                .create(&PostParams::default(), &object)
                .await
                .unwrap_or_else(|e| panic!("{} was refused: {e}", file.display()));
            created.push(stored);
        }
    }
    created
}

#[tokio::test]
async fn the_example_manifests_are_accepted_and_reconcile() {
    let (client, team) = support::client_and_namespace().await;
    let system = format!("{team}-sys");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": system}})).unwrap(),
        )
        .await
        .unwrap();
    let created = create_examples(&client, &system, &team).await;
    let kinds: Vec<String> = created
        .iter()
        .map(|o| o.types.as_ref().unwrap().kind.clone())
        .collect();
    for kind in [
        "Provider",
        "Pipeline",
        "Experiment",
        "RunConfiguration",
        "Run",
        "RunSchedule",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} among {kinds:?}");
    }

    let mut config = support::config_for(&team);
    config.spec.direct.default_provider_type = kfp_providers::stub::TYPE_NAME.to_string();
    let compiler = LocalCompiler::new().with_stub_for("tfx").with_stub_for("kfpsdk");
    let operator = RunningOperator::start(support::executors::registry_context(
        client.clone(),
        config,
        compiler,
    ));

    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), &team);
    for name in ["penguin-training", "add-numbers"] {
        wait_for_state(&pipelines, name, SynchronizationState::Succeeded, |p| {
            p.status.as_ref()
        })
        .await;
    }
    let experiments: Api<Experiment> = Api::namespaced(client.clone(), &team);
    wait_for_state(&experiments, "penguin", SynchronizationState::Succeeded, |e| {
        e.status.as_ref()
    })
    .await;
    let schedules: Api<RunSchedule> = Api::namespaced(client.clone(), &team);
    wait_for_state(
        &schedules,
        "add-numbers-weekly",
        SynchronizationState::Succeeded,
        |s| s.status.as_ref(),
    )
    .await;
    let rcs: Api<RunConfiguration> = Api::namespaced(client.clone(), &team);
    wait_for_state(&rcs, "penguin-examples", SynchronizationState::Succeeded, |r| {
        r.status.as_ref()
    })
    .await;
    let pending = |r: &RunConfiguration| {
        r.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Synchronized"))
            .is_some_and(|c| c.reason == "Pending" && c.message.contains("penguin-examples"))
    };
    wait_until(
        &rcs,
        "penguin-training",
        "penguin-training to be Pending on penguin-examples",
        pending,
    )
    .await;
    let runs: Api<Run> = Api::namespaced(client.clone(), &team);
    let run_name = created
        .iter()
        .find(|o| o.types.as_ref().unwrap().kind == "Run")
        .unwrap()
        .name_any();
    wait_until(&runs, &run_name, "the example Run to be Pending", |r| {
        r.status
            .as_ref()
            .and_then(|s| s.status.conditions.iter().find(|c| c.type_ == "Synchronized"))
            .is_some_and(|c| c.reason == "Pending")
    })
    .await;
    // The nightly schedule of penguin-examples became a RunSchedule of its own.
    let owned = schedules.list(&Default::default()).await.unwrap();
    assert!(
        owned
            .items
            .iter()
            .any(|s| s.name_any().starts_with("penguin-examples-")
                && s.spec.schedule.cron_expression.to_string() == "0 2 * * *"),
        "{owned:?}"
    );
    operator.stop().await;
}
