//! The production path end to end on a real node (kfp-testenv's cluster mode): kubelet and containerd running
//! real pods, the real Argo workflow-controller, the operator installed by its own chart from its own image.
//!
//! The test binary enters the cluster's network namespace before anything talks to it, so the test, helm and
//! every pod reach only addresses inside that namespace. Images are OCI tars written by `scripts/images.sh` from
//! the `kfp-operator` binary this `cargo test` built, imported into the node's containerd; nothing is pulled.
//! Pods share the node's network (hostNetwork): Service names the pods call resolve to 127.0.0.1 through
//! `hostAliases`, and every Service listens on its own port (docs/development.md, "The cluster tier").
//!
//! Needs root and the node assets: `scripts/test.sh` builds them (scripts/cluster/build-node-assets.sh).

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kfp_operator::local::cluster::{self as local_cluster, NAMESPACE, image};
use kfp_testenv::cluster::{BUSYBOX_IMAGE, Cluster};
use kfp_testenv::{ApplyOptions, apply_yaml};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
use kube::{Client, ResourceExt};
use serde_json::Value;

use support::chart::{SERVICE_ACCOUNT, chart_dir};

/// A real pod, a real Workflow: minutes on a busy 2-core machine, not seconds.
const WAIT: Duration = Duration::from_secs(240);
const USER_NAMESPACE: &str = "ml-team";

#[test]
fn the_operator_installed_by_its_chart_runs_every_kind_on_real_pods_and_argo() {
    // The same cluster, images and chart values as `kfp-operator local --cluster`.
    let cluster = local_cluster::start_and_enter().unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    // Declared after the cluster: dropped first, so it prints while the cluster still runs.
    let _diagnostics = Diagnostics(&cluster);
    runtime.block_on(scenario(&cluster));
}

async fn scenario(cluster: &Cluster) {
    let binary = Path::new(env!("CARGO_BIN_EXE_kfp-operator"));
    local_cluster::load_images(cluster, &support::repo_root(), binary).unwrap_or_else(|e| panic!("{e}"));
    let client = cluster.client().await.unwrap_or_else(|e| panic!("{e}"));
    local_cluster::install_chart(cluster, &support::chart::helm(), &chart_dir())
        .unwrap_or_else(|e| panic!("{e}"));
    operator_runs_from_its_image_as_the_charts_service_account(&client).await;

    let admission = apply(
        &client,
        USER_NAMESPACE,
        &run_configuration("bad-cron", "61 * * * *"),
    )
    .await;
    let refusal = admission.expect_err("a cron minute of 61 must be refused at admission");
    assert!(
        refusal.contains("denied the request") && refusal.contains("61"),
        "the refusal must come from the operator's webhook and name the value: {refusal}"
    );

    apply(&client, NAMESPACE, &provider_yaml())
        .await
        .expect("the Provider");
    wait_state(&client, "Provider", NAMESPACE, "stub", "Succeeded").await;
    wait_available(&client, NAMESPACE, "provider-stub").await;
    // The provider service logs as the operator does (JSON lines), in its pod's log.
    let logs = cluster.state_dir().join("pod-logs");
    kfp_testenv::wait_for("the provider pod's start line", WAIT, || async {
        let started = pod_logs(&logs).iter().any(|log| {
            log.to_string_lossy().contains("/provider-service/")
                && std::fs::read_to_string(log).is_ok_and(|t| t.contains("\"provider service started\""))
        });
        Ok::<_, std::io::Error>(started.then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    // Compiled in a pod (the stub framework image's compiler inside the pipeline image), uploaded through a
    // Workflow that calls the provider service pod.
    apply(
        &client,
        USER_NAMESPACE,
        &pipeline_yaml("stub-pipeline", BUSYBOX_IMAGE, "v1"),
    )
    .await
    .expect("the Pipeline");
    let pipeline = wait_state(&client, "Pipeline", USER_NAMESPACE, "stub-pipeline", "Succeeded").await;
    let first_version = pipeline["status"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        !first_version.is_empty(),
        "a Succeeded Pipeline has a version: {pipeline}"
    );
    let templates = succeeded_workflow_templates(&client, "stub-pipeline").await;
    assert!(
        templates.iter().any(|t| t.ends_with("create-compiled")),
        "the Pipeline was compiled and created by an Argo Workflow of the create-compiled template: {templates:?}"
    );

    // A KFP SDK pipeline compiled by the kfp SDK in a pod: the kfpsdk framework image's compiler and SDK, run by
    // the pipeline image's Python.
    apply(&client, USER_NAMESPACE, &kfpsdk_pipeline_yaml())
        .await
        .expect("the kfpsdk Pipeline");
    wait_state(&client, "Pipeline", USER_NAMESPACE, "add-pipeline", "Succeeded").await;

    apply(&client, USER_NAMESPACE, &experiment_yaml())
        .await
        .expect("the Experiment");
    wait_state(
        &client,
        "Experiment",
        USER_NAMESPACE,
        "stub-experiment",
        "Succeeded",
    )
    .await;

    // A run completes only through the completion event the provider pod posts to the operator's feed with its
    // projected ServiceAccount token.
    apply(&client, USER_NAMESPACE, &run_yaml("stub-run"))
        .await
        .expect("the Run");
    // (The stub's event comes 1 s after the create call, usually before Argo reports the Workflow done.)
    let run = wait_until(
        &client,
        "Run",
        USER_NAMESPACE,
        "stub-run",
        "Succeeded and completed",
        |o| o["status"]["completionState"] == "Succeeded" && state(o).0 == "Succeeded",
    )
    .await;
    assert_eq!(run["status"]["provider"]["id"], "create-run-succeeded", "{run}");

    // A schedule (a RunSchedule owned by the RunConfiguration), and a dependant triggered by its dependency's run.
    apply(
        &client,
        USER_NAMESPACE,
        &run_configuration("base-rc", "0 0 * * *"),
    )
    .await
    .expect("base-rc");
    wait_state(
        &client,
        "RunConfiguration",
        USER_NAMESPACE,
        "base-rc",
        "Succeeded",
    )
    .await;
    let schedules = list(&client, "RunSchedule", USER_NAMESPACE).await;
    assert!(
        schedules
            .iter()
            .any(|s| s.name_any().starts_with("base-rc") && state(&json(s)).0 == "Succeeded"),
        "base-rc's RunSchedule is Succeeded: {:?}",
        schedules
            .iter()
            .map(|s| (s.name_any(), state(&json(s))))
            .collect::<Vec<_>>()
    );

    // A dependency: dependant-rc starts a run when upstream-rc's run (started by onChange: [runSpec]) succeeds,
    // reading upstream's artifact. The dependant exists first: a success seen before it is only a baseline.
    apply(&client, USER_NAMESPACE, &dependant_rc_yaml())
        .await
        .expect("dependant-rc");
    wait_until(
        &client,
        "RunConfiguration",
        USER_NAMESPACE,
        "dependant-rc",
        "a state",
        |o| !state(o).0.is_empty(),
    )
    .await;
    apply(&client, USER_NAMESPACE, &upstream_rc_yaml())
        .await
        .expect("upstream-rc");
    let dependant_run = kfp_testenv::wait_for("a Succeeded run of dependant-rc", WAIT, || async {
        let runs = api(&client, "Run", USER_NAMESPACE)
            .list(&ListParams::default())
            .await?;
        Ok::<_, kube::Error>(runs.items.iter().map(json).find(|r| {
            r["metadata"]["ownerReferences"][0]["name"] == "dependant-rc"
                && r["status"]["completionState"] == "Succeeded"
        }))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let location = &dependant_run["status"]["dependencies"]["runConfigurations"]
        [format!("{USER_NAMESPACE}/upstream-rc")]["artifacts"][0]["location"];
    assert!(
        location.as_str().is_some_and(|l| l.starts_with("stub://")),
        "the dependant's run read upstream's artifact: {dependant_run}"
    );

    // A RunSchedule of its own (not a RunConfiguration's), created on the provider by a Workflow.
    apply(&client, USER_NAMESPACE, &run_schedule_yaml())
        .await
        .expect("the RunSchedule");
    wait_state(&client, "RunSchedule", USER_NAMESPACE, "hourly", "Succeeded").await;

    // An update: a new spec gives a new version, uploaded through another Workflow.
    apply(
        &client,
        USER_NAMESPACE,
        &pipeline_yaml("stub-pipeline", BUSYBOX_IMAGE, "v2"),
    )
    .await
    .expect("the updated Pipeline");
    let updated = wait_until(
        &client,
        "Pipeline",
        USER_NAMESPACE,
        "stub-pipeline",
        "a new version",
        |o| {
            state(o).0 == "Succeeded"
                && o["status"]["version"]
                    .as_str()
                    .is_some_and(|v| v != first_version)
        },
    )
    .await;
    assert_ne!(updated["status"]["version"], first_version);

    // A provider that answers 500: retried, the message says so.
    apply(&client, USER_NAMESPACE, &experiment_named("transient-fail"))
        .await
        .expect("transient-fail");
    let failing = wait_until(
        &client,
        "Experiment",
        USER_NAMESPACE,
        "transient-fail",
        "the 500 reported",
        |o| state(o).1.contains("failed transiently"),
    )
    .await;
    assert_ne!(state(&failing).0, "Succeeded", "{failing}");

    // A compiler that fails: a pipeline image without a shell cannot run the compiler.
    let no_shell = image("kfp-operator-controller");
    apply(
        &client,
        USER_NAMESPACE,
        &pipeline_yaml("uncompilable", &no_shell, "v1"),
    )
    .await
    .expect("the uncompilable Pipeline");
    let uncompilable = wait_state(&client, "Pipeline", USER_NAMESPACE, "uncompilable", "Failed").await;
    assert!(
        state(&uncompilable).1.contains("the compile step failed: ")
            && state(&uncompilable).1.contains("/shared/compile.sh"),
        "a Failed Pipeline names the step that failed: {uncompilable}"
    );

    // A delete: the provider is asked to delete it (a Workflow), then the finalizer goes.
    api(&client, "Pipeline", USER_NAMESPACE)
        .delete("stub-pipeline", &DeleteParams::default())
        .await
        .expect("deleting the Pipeline");
    kfp_testenv::wait_for("stub-pipeline to be deleted", WAIT, || async {
        let gone = api(&client, "Pipeline", USER_NAMESPACE)
            .get_opt("stub-pipeline")
            .await?
            .is_none();
        Ok::<_, kube::Error>(gone.then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

async fn operator_runs_from_its_image_as_the_charts_service_account(client: &Client) {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let list = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=kfp-operator"))
        .await
        .expect("listing the operator pods");
    let pod = list.items.first().expect("the chart's operator pod");
    let spec = pod.spec.as_ref().expect("a pod spec");
    assert_eq!(spec.service_account_name.as_deref(), Some(SERVICE_ACCOUNT));
    assert_eq!(
        spec.containers[0].image.as_deref(),
        Some(image("kfp-operator-controller").as_str())
    );
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    assert!(ready, "helm --wait returned with the operator pod Ready: {pod:?}");
}

fn provider_yaml() -> String {
    format!(
        r#"apiVersion: pipelines.kubeflow.org/v1beta1
kind: Provider
metadata: {{name: stub, namespace: {NAMESPACE}}}
spec:
  serviceImage: {service}
  serviceAccount: default
  pipelineRootStorage: /tmp/pipeline-root
  parameters: {{eventDelaySeconds: 1}}
  frameworks:
  - name: stub
    image: {compiler}
  - name: kfpsdk
    image: {kfpsdk}
  allowedNamespaces: [{USER_NAMESPACE}]
"#,
        service = image("kfp-operator-stub-provider"),
        compiler = image("kfp-operator-stub-compiler"),
        kfpsdk = image("kfp-operator-kfpsdk-compiler"),
    )
}

fn pipeline_yaml(name: &str, image: &str, revision: &str) -> String {
    format!(
        r#"apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {{name: {name}}}
spec:
  provider: {NAMESPACE}/stub
  image: {image}
  env: [{{name: REVISION, value: "{revision}"}}]
  framework: {{name: stub, parameters: {{}}}}
"#
    )
}

fn kfpsdk_pipeline_yaml() -> String {
    format!(
        r#"apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {{name: add-pipeline}}
spec:
  provider: {NAMESPACE}/stub
  image: {image}
  framework:
    name: kfpsdk
    parameters: {{pipeline: getting_started.pipeline.add_pipeline}}
"#,
        image = image("kfp-operator-example-pipelines"),
    )
}

fn experiment_named(name: &str) -> String {
    format!(
        r#"apiVersion: pipelines.kubeflow.org/v1beta1
kind: Experiment
metadata: {{name: {name}}}
spec:
  provider: {NAMESPACE}/stub
  description: an experiment
"#
    )
}

fn experiment_yaml() -> String {
    experiment_named("stub-experiment")
}

fn run_yaml(name: &str) -> String {
    format!(
        r#"apiVersion: pipelines.kubeflow.org/v1beta1
kind: Run
metadata: {{name: {name}}}
spec:
  provider: {NAMESPACE}/stub
  pipeline: stub-pipeline
  experimentName: stub-experiment
"#
    )
}

fn run_configuration(name: &str, cron: &str) -> String {
    format!(
        r#"apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {{name: {name}}}
spec:
  run:
    provider: {NAMESPACE}/stub
    pipeline: stub-pipeline
    experimentName: stub-experiment
  triggers:
    schedules: [{{cronExpression: "{cron}"}}]
"#
    )
}

fn run_schedule_yaml() -> String {
    format!(
        r#"apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunSchedule
metadata: {{name: hourly}}
spec:
  provider: {NAMESPACE}/stub
  pipeline: stub-pipeline
  experimentName: stub-experiment
  schedule: {{cronExpression: "0 * * * *", endTime: "9999-12-31T23:59:59Z"}}
"#
    )
}

fn upstream_rc_yaml() -> String {
    format!(
        r#"apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {{name: upstream-rc}}
spec:
  run:
    provider: {NAMESPACE}/stub
    pipeline: stub-pipeline
    experimentName: stub-experiment
    artifacts: [{{name: examples, path: "Gen:examples"}}]
  triggers: {{onChange: [runSpec]}}
"#
    )
}

fn dependant_rc_yaml() -> String {
    format!(
        r#"apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {{name: dependant-rc}}
spec:
  run:
    provider: {NAMESPACE}/stub
    pipeline: stub-pipeline
    experimentName: stub-experiment
    parameters:
    - name: examples_location
      valueFrom: {{runConfigurationRef: {{name: upstream-rc, outputArtifact: examples}}}}
  triggers: {{runConfigurations: [upstream-rc]}}
"#
    )
}

// ----- reading the cluster ---------------------------------------------------------------------------------------

fn api(client: &Client, kind: &str, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("pipelines.kubeflow.org", "v1beta1", kind),
        &format!("{}s", kind.to_lowercase()),
    );
    Api::namespaced_with(client.clone(), namespace, &resource)
}

async fn apply(client: &Client, namespace: &str, yaml: &str) -> Result<(), String> {
    ensure_namespace(client, namespace).await;
    apply_yaml(client, yaml, &ApplyOptions::in_namespace(namespace))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn ensure_namespace(client: &Client, namespace: &str) {
    let yaml = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n");
    apply_yaml(client, &yaml, &ApplyOptions::default())
        .await
        .unwrap_or_else(|e| panic!("namespace {namespace}: {e}"));
}

fn json(object: &DynamicObject) -> Value {
    serde_json::to_value(object).unwrap_or_default()
}

/// The `Synchronized` condition's reason (the state) and message.
fn state(object: &Value) -> (String, String) {
    let conditions = object["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    conditions
        .iter()
        .find(|c| c["type"] == "Synchronized")
        .map(|c| {
            (
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .unwrap_or_default()
}

async fn wait_state(client: &Client, kind: &str, namespace: &str, name: &str, wanted: &str) -> Value {
    wait_until(client, kind, namespace, name, wanted, |o| state(o).0 == wanted).await
}

async fn wait_until(
    client: &Client,
    kind: &str,
    namespace: &str,
    name: &str,
    what: &str,
    condition: impl Fn(&Value) -> bool,
) -> Value {
    let api = api(client, kind, namespace);
    let result = kfp_testenv::wait_for(format!("{kind} {namespace}/{name}: {what}"), WAIT, || async {
        let object = api.get_opt(name).await?;
        Ok::<_, kube::Error>(object.map(|o| json(&o)).filter(|o| condition(o)))
    })
    .await;
    match result {
        Ok(object) => object,
        Err(error) => {
            let current = api.get_opt(name).await.ok().flatten().map(|o| json(&o));
            panic!("{error}\ncurrent object: {current:#?}")
        }
    }
}

async fn list(client: &Client, kind: &str, namespace: &str) -> Vec<DynamicObject> {
    api(client, kind, namespace)
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("listing {kind}s: {e}"))
        .items
}

async fn wait_available(client: &Client, namespace: &str, name: &str) {
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), namespace);
    kfp_testenv::wait_for(
        format!("Deployment {namespace}/{name} available"),
        WAIT,
        || async {
            let d = deployments.get_opt(name).await?;
            let available = d
                .and_then(|d| d.status)
                .and_then(|s| s.available_replicas)
                .is_some_and(|n| n >= 1);
            Ok::<_, kube::Error>(available.then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// The WorkflowTemplates of the Succeeded Workflows of the operator's resource `owner`.
async fn succeeded_workflow_templates(client: &Client, owner: &str) -> Vec<String> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Workflow"));
    let workflows: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &resource);
    workflows
        .list(&ListParams::default().labels(&format!("pipelines.kubeflow.org/owner.name={owner}")))
        .await
        .unwrap_or_else(|e| panic!("listing Workflows: {e}"))
        .items
        .iter()
        .map(json)
        .filter(|w| w["status"]["phase"] == "Succeeded")
        .filter_map(|w| {
            w["spec"]["workflowTemplateRef"]["name"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

/// On failure, what happened on the node: objects, Workflows and pods, and every container's log.
struct Diagnostics<'a>(&'a Cluster);

impl Drop for Diagnostics<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let cluster = self.0;
        let kubectl = kubectl_path();
        let output = Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig_path())
            .args([
                "get",
                "pods,workflows,pipelines,runs,runconfigurations,runschedules,experiments,providers",
                "-A",
                "-o",
                "wide",
            ])
            .output();
        match output {
            Ok(o) => eprintln!(
                "==== cluster objects\n{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("==== kubectl ({}) failed: {e}", kubectl.display()),
        }
        for log in pod_logs(&cluster.state_dir().join("pod-logs")) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "==== {} (last 40 lines)\n{}",
                log.display(),
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        eprintln!("==== daemons\n{}", cluster.log_tails(20));
    }
}

/// kubectl as build-node-assets.sh builds it beside the other node binaries.
fn kubectl_path() -> PathBuf {
    std::env::var_os("KFP_NODE_ASSETS")
        .map(PathBuf::from)
        .or_else(kfp_testenv::assets::cache_dir)
        .map(|d| d.join("kubectl"))
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

fn pod_logs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "log") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}
