//! `helm install` of the chart into a real API server (kfp-testenv), then the operator process itself run as the
//! chart's ServiceAccount (a TokenRequest token) with the configuration file the chart rendered, reconciling the
//! acceptance fixtures: the chart's RBAC is enough for the operator. `helm uninstall` keeps the CRDs (and so the
//! resources), and a second install adopts them, with the validating webhooks registered for real.

use crate::support;

use std::sync::Arc;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kfp_core::resources::v1beta1::{Experiment, Pipeline, Provider, Run, RunConfiguration, RunSchedule};
use kfp_core::values::{NamespacedName, SynchronizationState::Succeeded};
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;
use support::chart::{self, NAMESPACE, OperatorProcess, RELEASE};
use support::{SimulatedArgo, wait_for_state};

/// Webhooks off: the API server here cannot reach a webhook Service (no pods, no kube-proxy).
const NO_WEBHOOKS: &str = "
manager:
  webhooks:
    enabled: false
";

const CHART_PROVIDER_VALUES: &str = "
providers:
  - name: chart-stub
    serviceImage: kfp-operator/provider-service:latest
    pipelineRootStorage: /tmp/pipeline-root
    frameworks:
      - {name: stub, image: kfp-operator/stub-compiler:latest}
    allowedNamespaces: [default]
";

fn install_args<'a>(chart: &'a str, values: Option<&'a str>) -> Vec<&'a str> {
    let mut args = vec![
        "install",
        RELEASE,
        chart,
        "--namespace",
        NAMESPACE,
        "--create-namespace",
    ];
    if let Some(values) = values {
        args.extend(["--values", values]);
    }
    args
}

#[tokio::test]
async fn the_chart_installs_and_the_operator_reconciles_under_its_service_account() {
    kfp_providers::http::install_crypto_provider();
    // Its own control plane: helm installs the chart's CRDs, which other modules install their own way.
    let env = kfp_testenv::TestEnv::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    env.install_argo_crds().await.unwrap_or_else(|e| panic!("{e}"));
    let client = env.client().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = Some(env.kubeconfig_path());
    let chart_dir = chart::chart_dir();
    let chart_path = chart_dir.to_str().unwrap();

    // Install, then add a Provider with an upgrade, as docs/installation.md does: the chart's Providers are a
    // post-install/post-upgrade hook, which needs the Provider CRD served (on a first install, `--wait` ensures
    // that; it cannot be used here, where no pod ever runs).
    let values = chart::values_file(home.path(), "values.yaml", NO_WEBHOOKS);
    let values = values.to_str().unwrap();
    chart::run_helm(home.path(), kubeconfig, &install_args(chart_path, Some(values)))
        .unwrap_or_else(|e| panic!("{e}"));
    let providers_values = chart::values_file(home.path(), "providers.yaml", CHART_PROVIDER_VALUES);
    chart::run_helm(
        home.path(),
        kubeconfig,
        &[
            "upgrade",
            RELEASE,
            chart_path,
            "--namespace",
            NAMESPACE,
            "--reuse-values",
            "--values",
            providers_values.to_str().unwrap(),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let status: Value = serde_json::from_str(
        &chart::run_helm(
            home.path(),
            kubeconfig,
            &["status", RELEASE, "-n", NAMESPACE, "-o", "json"],
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(status["info"]["status"], "deployed", "{status}");

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for plural in [
        "pipelines",
        "runs",
        "runconfigurations",
        "runschedules",
        "experiments",
        "providers",
    ] {
        let crd = crds
            .get(&format!("{plural}.pipelines.kubeflow.org"))
            .await
            .unwrap();
        assert_eq!(
            crd.annotations()
                .get("helm.sh/resource-policy")
                .map(String::as_str),
            Some("keep")
        );
        assert_eq!(crd.spec.versions.len(), 1, "v1beta1 only without multiversion");
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    deployments.get("kfp-operator-controller-manager").await.unwrap();
    let cluster_roles: Api<ClusterRole> = Api::all(client.clone());
    cluster_roles.get("kfp-operator-manager-role").await.unwrap();
    let templates: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NAMESPACE,
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "WorkflowTemplate"),
            "workflowtemplates",
        ),
    );
    let names: Vec<String> = templates
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    for name in kfp_operator::executor::argo::TEMPLATE_NAMES {
        assert!(names.iter().any(|n| n == name), "{names:?}");
    }
    let providers: Api<Provider> = Api::namespaced(client.clone(), NAMESPACE);
    providers
        .get("chart-stub")
        .await
        .expect("the post-upgrade hook created the chart's Provider");

    // The operator, as the chart's ServiceAccount, with the chart's configuration (Argo executor, leader
    // election in the release namespace). A simulated Argo runs the workflows against a stub provider service.
    let provider_url = support::serve_provider(
        &NamespacedName::new(NAMESPACE.to_string(), "stub".to_string()),
        Arc::new(kfp_providers::stub::StubProvider::new()),
    )
    .await;
    let _argo = SimulatedArgo::start(client.clone(), NAMESPACE, provider_url);
    let operator_kubeconfig = chart::service_account_kubeconfig(&env, home.path()).await;
    let config = chart::installed_configuration(&client, home.path()).await;
    let operator = OperatorProcess::start(&operator_kubeconfig, &config);
    operator.wait_ready().await;

    // The acceptance fixtures, as users write them.
    let fixtures = support::fixtures_dir();
    for file in [
        "provider-stub.yaml",
        "pipeline-stub.yaml",
        "experiment.yaml",
        "runconfiguration-stub.yaml",
    ] {
        kfp_testenv::apply_yaml_file(&client, &fixtures.join(file), &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    for name in ["stub", "chart-stub"] {
        wait_for_state(&providers, name, Succeeded, |p: &Provider| p.status.as_ref()).await;
    }
    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), "default");
    wait_for_state(&pipelines, "stub-pipeline", Succeeded, |p: &Pipeline| {
        p.status.as_ref()
    })
    .await;
    let experiments: Api<Experiment> = Api::namespaced(client.clone(), "default");
    wait_for_state(&experiments, "penguin-experiment", Succeeded, |e: &Experiment| {
        e.status.as_ref()
    })
    .await;
    let rcs: Api<RunConfiguration> = Api::namespaced(client.clone(), "default");
    wait_for_state(
        &rcs,
        "stub-runconfiguration",
        Succeeded,
        |r: &RunConfiguration| r.status.as_ref(),
    )
    .await;
    let schedules: Api<RunSchedule> = Api::namespaced(client.clone(), "default");
    let schedule = schedules.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(schedule.len(), 1, "the RunConfiguration's schedule");
    wait_for_state(
        &schedules,
        &schedule[0].name_any(),
        Succeeded,
        |s: &RunSchedule| s.status.as_ref(),
    )
    .await;
    let runs: Api<Run> = Api::namespaced(client.clone(), "default");
    let triggered = kfp_testenv::wait_for("the RunConfiguration to trigger a Run", support::WAIT, || async {
        let list = runs
            .list(
                &ListParams::default()
                    .labels("pipelines.kubeflow.org/runconfiguration.name=stub-runconfiguration"),
            )
            .await?;
        Ok::<_, kube::Error>(list.items.into_iter().next())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\nstderr:\n{}", operator.stderr()));
    wait_for_state(&runs, &triggered.name_any(), Succeeded, |r: &Run| {
        r.status.as_ref()
    })
    .await;

    // Its metrics are served, and nothing it did was refused.
    let metrics = operator.metrics().await;
    for family in [
        "kfp_operator_reconciliations_total{",
        "kfp_operator_resources{",
        "kfp_operator_executor_operations_total{",
    ] {
        assert!(metrics.contains(family), "{family} in:\n{metrics}");
    }
    let stderr = operator.stop().await;
    let refused = chart::forbidden_lines(&stderr);
    assert!(
        refused.is_empty(),
        "refused API calls under the chart's RBAC:\n{}",
        refused.join("\n")
    );

    // Uninstall: the operator's objects go, the CRDs (and every resource) stay.
    chart::run_helm(
        home.path(),
        kubeconfig,
        &["uninstall", RELEASE, "-n", NAMESPACE, "--wait"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    kfp_testenv::wait_for("the Deployment to be deleted", support::WAIT, || async {
        Ok::<_, kube::Error>(
            deployments
                .get_opt("kfp-operator-controller-manager")
                .await?
                .is_none()
                .then_some(()),
        )
    })
    .await
    .unwrap();
    assert!(
        cluster_roles
            .get_opt("kfp-operator-manager-role")
            .await
            .unwrap()
            .is_none()
    );
    crds.get("pipelines.pipelines.kubeflow.org")
        .await
        .expect("crds.keep keeps the CRDs");
    pipelines.get("stub-pipeline").await.expect("and the resources");
    providers
        .get("chart-stub")
        .await
        .expect("hook objects (the chart's Providers) are not removed");

    // A new install with the defaults adopts the kept CRDs and registers the validating webhooks: the API server
    // now consults them (failurePolicy Fail), and with no operator serving them, it refuses a Pipeline.
    chart::run_helm(home.path(), kubeconfig, &install_args(chart_path, None))
        .unwrap_or_else(|e| panic!("the reinstall failed to adopt the kept CRDs: {e}"));
    let webhooks: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let configuration = webhooks
        .get("kfp-operator-validating-webhook-configuration")
        .await
        .unwrap();
    assert_eq!(configuration.webhooks.as_ref().map(Vec::len), Some(6));
    let mut pipeline: Pipeline = pipelines.get("stub-pipeline").await.unwrap();
    pipeline.metadata = kube::api::ObjectMeta {
        name: Some("refused".to_string()),
        namespace: Some("default".to_string()),
        ..Default::default()
    };
    pipeline.status = None;
    let refused = pipelines
        .create(&Default::default(), &pipeline)
        .await
        .expect_err("the webhook is consulted");
    assert!(
        refused.to_string().contains("vpipeline.pipelines.kubeflow.org"),
        "the refusal names the webhook: {refused}"
    );
    chart::run_helm(
        home.path(),
        kubeconfig,
        &["uninstall", RELEASE, "-n", NAMESPACE, "--wait"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        webhooks
            .get_opt("kfp-operator-validating-webhook-configuration")
            .await
            .unwrap()
            .is_none()
    );
}
