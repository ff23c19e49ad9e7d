//! The Kubeflow Pipelines provider against the REAL KFP API server (2.0.5, `scripts/kfp-apiserver/build.sh`) with
//! MariaDB and an S3 server on loopback, started by `kfp_testenv::kfp_apiserver` against the test control plane.
//!
//! The pipeline is `examples/pipelines`' `add_pipeline(a: float, b: float, c: float)` compiled by the real kfp SDK
//! (the compilers' venv, `scripts/python-env.sh`). Runs do not progress (no Argo controller, driver or ML
//! Metadata): a run is checked as the Argo Workflow KFP creates, a recurring run as its ScheduledWorkflow.
//!
//! Tests share one server and make their own names (`<test>/...`), so they run in parallel.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kfp_core::definitions::{
    ExperimentDefinition, PipelineDefinitionWrapper, RunDefinition, RunScheduleDefinition,
};
use kfp_core::executor::ResourceKind;
use kfp_core::provider::{ObjectIdentity, Provider, ProviderError};
use kfp_core::values::NamespacedName;
use kfp_providers::conformance;
use kfp_providers::kfp::{KfpConfig, KfpProvider};
use kfp_testenv::TestEnv;
use kfp_testenv::kfp_apiserver::{KfpApiServer, KfpOptions};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `add_pipeline` compiled by the real kfp SDK once per test binary.
fn add_pipeline() -> Value {
    static COMPILED: OnceLock<Value> = OnceLock::new();
    COMPILED.get_or_init(compile_add_pipeline).clone()
}

fn compile_add_pipeline() -> Value {
    let venv = std::env::var_os("KFP_OPERATOR_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME or KFP_OPERATOR_VENV is set"))
                .join(".cache/kfp-operator/venv")
        });
    let python = venv.join("bin/python3");
    assert!(
        python.is_file(),
        "this test compiles examples/pipelines with the kfp SDK of the compilers' Python environment {}, which is \
         missing: run scripts/python-env.sh (scripts/test.sh does), or point KFP_OPERATOR_VENV at one",
        venv.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let definition = dir.path().join("definition.json");
    let output = dir.path().join("compiled.json");
    std::fs::write(
        &definition,
        json!({"name": "default/add-pipeline", "version": "v1", "image": "registry.invalid/getting-started:v1",
               "framework": {"name": "kfpsdk", "parameters": {"pipeline": "getting_started.pipeline.add_pipeline"}}})
        .to_string(),
    )
    .unwrap();
    let root = repository();
    let compiled = Command::new("sh")
        .arg(root.join("compilers/kfpsdk/compile.sh"))
        .arg("--pipeline_config")
        .arg(&definition)
        .arg("--output_file")
        .arg(&output)
        .env("PYTHON", &python)
        .env("PYTHONPATH", root.join("examples/pipelines"))
        .output()
        .unwrap();
    assert!(
        compiled.status.success(),
        "compiling add_pipeline failed:\n{}{}",
        String::from_utf8_lossy(&compiled.stdout),
        String::from_utf8_lossy(&compiled.stderr)
    );
    serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap()
}

async fn server() -> &'static KfpApiServer {
    KfpApiServer::shared().await.unwrap()
}

fn provider(server: &KfpApiServer) -> KfpProvider {
    provider_with(server, |_| {})
}

fn provider_with(server: &KfpApiServer, configure: impl FnOnce(&mut KfpConfig)) -> KfpProvider {
    let mut config = KfpConfig::new(NamespacedName::new("kfp-operator-system", "kfp"));
    config.rest_url = server.url().to_string();
    config.request_timeout = Duration::from_secs(30);
    // Small pages: the lists the provider follows really paginate.
    config.page_size = 2;
    configure(&mut config);
    KfpProvider::new(config).unwrap()
}

fn pipeline(namespace: &str, version: &str, compiled: Value) -> PipelineDefinitionWrapper {
    PipelineDefinitionWrapper {
        pipeline_definition: json!({
            "name": format!("{namespace}/add"), "version": version, "image": "registry.invalid/getting-started:v1",
            "framework": {"name": "kfpsdk", "parameters": {"pipeline": "getting_started.pipeline.add_pipeline"}}
        }),
        compiled_pipeline: compiled,
    }
}

fn experiment(namespace: &str) -> ExperimentDefinition {
    ExperimentDefinition {
        name: NamespacedName::new(namespace, "e"),
        version: "ev".into(),
        description: format!("experiment of {namespace}"),
    }
}

fn run(namespace: &str, parameters: Value) -> RunDefinition {
    serde_json::from_value(json!({
        "name": format!("{namespace}/r"), "version": "rv", "pipelineName": format!("{namespace}/add"),
        "pipelineVersion": "v1", "runConfigurationName": format!("{namespace}/rc"),
        "experimentName": format!("{namespace}/e"), "parameters": parameters,
        "triggerIndicator": {"type": "runConfiguration", "source": "rc", "sourceNamespace": namespace}
    }))
    .unwrap()
}

fn schedule(namespace: &str, parameters: Value) -> RunScheduleDefinition {
    serde_json::from_value(json!({
        "name": format!("{namespace}/rs"), "version": "sv", "pipelineName": format!("{namespace}/add"),
        "pipelineVersion": "v1", "runConfigurationName": format!("{namespace}/rc"),
        "experimentName": format!("{namespace}/e"), "parameters": parameters,
        "triggerIndicator": {"type": "schedule", "source": "rc", "sourceNamespace": namespace},
        "schedule": {"cronExpression": "0 * * * *", "startTime": "2030-01-01T00:00:00Z"}
    }))
    .unwrap()
}

/// A GET of the v2beta1 API: the status and the JSON body.
async fn get(server: &KfpApiServer, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{}/apis/v2beta1/{path}", server.url()))
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(server: &KfpApiServer, path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/apis/v2beta1/{path}", server.url()))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn kube_kind(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn workflow_kind() -> ApiResource {
    kube_kind("argoproj.io", "v1alpha1", "Workflow", "workflows")
}

fn scheduled_workflow_kind() -> ApiResource {
    kube_kind(
        "kubeflow.org",
        "v1beta1",
        "ScheduledWorkflow",
        "scheduledworkflows",
    )
}

async fn kube_objects(namespace: &str, resource: &ApiResource) -> Vec<DynamicObject> {
    let client = TestEnv::shared().await.unwrap().client().await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, resource);
    api.list(&Default::default()).await.unwrap().items
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, ProviderError>) -> String {
    match result {
        Err(ProviderError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, ProviderError>) -> String {
    match result {
        Err(ProviderError::NotFound(m)) => m,
        other => panic!("expected NotFound, got {other:?}"),
    }
}

// --- the conformance kit ------------------------------------------------------------------------------------------

#[tokio::test]
async fn kfp_provider_conforms_against_the_real_api_server() {
    let server = server().await;
    eprintln!(
        "KFP API server {} at {}, started in {:?}",
        server.version(),
        server.url(),
        server.startup_time()
    );
    let mut fixtures = support::kfp_conformance_fixtures(add_pipeline());
    fixtures.pipeline.pipeline_definition["name"] = json!("conformance/pipeline");
    let report = conformance::run_all(Arc::new(provider(server)), &fixtures).await;
    assert!(report.passed(), "{report}");
}

// --- pipelines ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn pipelines_are_uploaded_given_new_versions_adopted_and_deleted() {
    let server = server().await;
    let kfp = provider(server);
    let ns = "pipelines";
    let id = kfp
        .create_pipeline(&pipeline(ns, "v1", add_pipeline()))
        .await
        .unwrap();
    let (status, found) = get(server, &format!("pipelines/{id}")).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["display_name"], "pipelines-add");
    let versions = |found: &Value| -> Vec<String> {
        found["pipeline_versions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|v| v["display_name"].as_str().unwrap().to_string())
            .collect()
    };
    // The upload's own first version was replaced by the one named after the Pipeline's version.
    let (_, listed) = get(server, &format!("pipelines/{id}/versions")).await;
    assert_eq!(versions(&listed), ["v1"], "{listed}");
    // The labels are declared, next to the pipeline's own inputs, with their types.
    let version_id = listed["pipeline_versions"][0]["pipeline_version_id"]
        .as_str()
        .unwrap();
    let (_, version) = get(server, &format!("pipelines/{id}/versions/{version_id}")).await;
    let inputs = &version["pipeline_spec"]["root"]["inputDefinitions"]["parameters"];
    assert_eq!(inputs["a"]["parameterType"], "NUMBER_DOUBLE", "{version}");
    assert_eq!(inputs["run-name"]["parameterType"], "STRING", "{version}");

    assert_eq!(
        kfp.update_pipeline(&pipeline(ns, "v2", add_pipeline()), &id)
            .await
            .unwrap(),
        id
    );
    let (_, listed) = get(server, &format!("pipelines/{id}/versions")).await;
    assert_eq!(versions(&listed), ["v2"], "{listed}");

    // A repeated create (after a crash half-way) adopts the pipeline of that name.
    let again = kfp
        .create_pipeline(&pipeline(ns, "v3", add_pipeline()))
        .await
        .unwrap();
    assert_eq!(again, id);
    let (_, listed) = get(server, &format!("pipelines/{id}/versions")).await;
    assert_eq!(versions(&listed), ["v3"], "{listed}");

    kfp.delete_pipeline(&id).await.unwrap();
    let (status, _) = get(server, &format!("pipelines/{id}")).await;
    assert_eq!(status, 404);
    // Deleting again is fine; updating a pipeline that is gone is NotFound.
    kfp.delete_pipeline(&id).await.unwrap();
    assert_not_found(
        kfp.update_pipeline(&pipeline(ns, "v4", add_pipeline()), &id)
            .await,
    );
}

#[tokio::test]
async fn a_spec_that_is_not_a_pipeline_is_invalid() {
    let server = server().await;
    let kfp = provider(server);
    let message = assert_invalid(
        kfp.create_pipeline(&pipeline("not-a-pipeline", "v1", json!({"hello": "world"})))
            .await,
    );
    // KFP 2.0.5 answers HTTP 500 with an InvalidInputError (as every failed upload); the provider reads the class.
    assert!(message.contains("pipeline spec is invalid"), "{message}");
}

// --- runs ----------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_example_pipeline_runs_with_typed_parameters() {
    let server = server().await;
    let kfp = provider_with(server, |c| {
        c.pipeline_root_storage = "s3://mlpipeline/root".into()
    });
    let ns = "typed-runs";
    kfp.create_pipeline(&pipeline(ns, "v1", add_pipeline()))
        .await
        .unwrap();
    kfp.create_experiment(&experiment(ns)).await.unwrap();
    let mut typed = run(ns, json!({"a": "1.5", "b": "2", "c": ""}));
    typed.service_account = "team-runner".into();
    let id = kfp.create_run(&typed).await.unwrap();
    let (status, created) = get(server, &format!("runs/{id}")).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["display_name"], "typed-runs-r");
    let parameters = &created["runtime_config"]["parameters"];
    assert_eq!(parameters["a"].as_f64(), Some(1.5), "{created}");
    assert_eq!(parameters["b"].as_f64(), Some(2.0), "{created}");
    assert!(
        parameters.get("c").is_none(),
        "empty: c keeps its default: {created}"
    );
    assert_eq!(parameters["run-name"], "r", "{created}");
    assert_eq!(parameters["trigger-type"], "runConfiguration", "{created}");
    assert_eq!(
        created["runtime_config"]["pipeline_root"], "s3://mlpipeline/root/typed-runs/add",
        "{created}"
    );
    // KFP made the Argo Workflow of the run in its namespace.
    let workflows = kube_objects(server.namespace(), &workflow_kind()).await;
    let workflow = workflows
        .iter()
        .find(|w| w.metadata.labels.as_ref().and_then(|l| l.get("pipeline/runid")) == Some(&id))
        .unwrap_or_else(|| panic!("no Workflow labelled with run {id} among {workflows:?}"));
    assert!(
        serde_json::to_string(&workflow.data).unwrap().contains("1.5"),
        "the Workflow carries the parameter"
    );
    // The run's service account is the Workflow's.
    assert_eq!(created["service_account"], "team-runner", "{created}");
    assert_eq!(workflow.data["spec"]["serviceAccountName"], "team-runner");
    // Deleting a run that is still going terminates it; the run stays in KFP's history.
    kfp.delete_run(&id).await.unwrap();
    let (status, deleted) = get(server, &format!("runs/{id}")).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["state"], "CANCELING", "{deleted}");
    // Deleting it again (already settling) is fine.
    kfp.delete_run(&id).await.unwrap();
}

/// What KFP 2.0.5 itself refuses (`validatePipelineJobInputs`), sent directly: a string for a NUMBER_DOUBLE input,
/// a parameter the pipeline does not declare, a required input left out.
#[tokio::test]
async fn kfp_refuses_strings_for_typed_inputs_and_undeclared_or_missing_parameters() {
    let server = server().await;
    let kfp = provider(server);
    let ns = "refusals";
    let mut required = add_pipeline();
    let a = required["root"]["inputDefinitions"]["parameters"]["a"]
        .as_object_mut()
        .unwrap();
    a.remove("defaultValue");
    a.remove("isOptional");
    let pipeline_id = kfp.create_pipeline(&pipeline(ns, "v1", required)).await.unwrap();
    let (_, versions) = get(server, &format!("pipelines/{pipeline_id}/versions")).await;
    let version_id = versions["pipeline_versions"][0]["pipeline_version_id"].clone();
    let body = |parameters: Value| {
        json!({
            "display_name": "refused",
            "pipeline_version_reference": {"pipeline_id": pipeline_id, "pipeline_version_id": version_id},
            "runtime_config": {"parameters": parameters}
        })
    };
    let (status, answer) = post(server, "runs", &body(json!({"a": "1.5"}))).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("input parameter a requires type double or integer"),
        "{answer}"
    );
    let (status, answer) = post(server, "runs", &body(json!({"a": 1.5, "zzz": "x"}))).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("parameter(s) provided are not required by pipeline: zzz"),
        "{answer}"
    );
    let (status, answer) = post(server, "runs", &body(json!({"b": 1.0}))).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("parameter a is not optional"),
        "{answer}"
    );

    // Through the provider: a value that cannot be a number fails before sending; an undeclared parameter and a
    // missing required one are KFP's 400s, Invalid.
    kfp.create_experiment(&experiment(ns)).await.unwrap();
    let message = assert_invalid(kfp.create_run(&run(ns, json!({"a": "one"}))).await);
    assert!(message.contains('a') && message.contains("one"), "{message}");
    let message = assert_invalid(kfp.create_run(&run(ns, json!({"a": "1", "zzz": "x"}))).await);
    assert!(
        message.contains("HTTP 400") && message.contains("zzz"),
        "{message}"
    );
    let message = assert_invalid(kfp.create_run(&run(ns, json!({"b": "1"}))).await);
    assert!(
        message.contains("HTTP 400") && message.contains("parameter a"),
        "{message}"
    );
    let message = assert_invalid(
        kfp.create_run_schedule(&schedule(ns, json!({"zzz": "x", "a": "1"})))
            .await,
    );
    assert!(message.contains("zzz"), "{message}");
}

#[tokio::test]
async fn runs_of_missing_pipelines_versions_or_experiments_are_not_found() {
    let server = server().await;
    let kfp = provider(server);
    let ns = "missing";
    let message = assert_not_found(kfp.create_run(&run(ns, json!({}))).await);
    assert!(message.contains("missing-add"), "{message}");
    kfp.create_pipeline(&pipeline(ns, "v1", add_pipeline()))
        .await
        .unwrap();
    let mut other_version = run(ns, json!({}));
    other_version.pipeline_version = "v9".into();
    let message = assert_not_found(kfp.create_run(&other_version).await);
    assert!(message.contains("v9"), "{message}");
    let message = assert_not_found(kfp.create_run(&run(ns, json!({}))).await);
    assert!(message.contains("missing-e"), "{message}");
    // No experiment named: KFP's own default experiment ("Default", made at start in single-user mode).
    let mut default_experiment = run(ns, json!({}));
    default_experiment.experiment_name = NamespacedName::default();
    kfp.create_run(&default_experiment).await.unwrap();
}

// --- recurring runs ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn run_schedules_are_recurring_runs_replaced_on_update_and_deleted() {
    let server = server().await;
    let kfp = provider(server);
    let ns = "schedules";
    kfp.create_pipeline(&pipeline(ns, "v1", add_pipeline()))
        .await
        .unwrap();
    kfp.create_experiment(&experiment(ns)).await.unwrap();
    let mut scheduled_run = schedule(ns, json!({"a": "3"}));
    scheduled_run.service_account = "team-runner".into();
    let id = kfp.create_run_schedule(&scheduled_run).await.unwrap();
    let (status, created) = get(server, &format!("recurringruns/{id}")).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        created["trigger"]["cron_schedule"]["cron"], "0 0 * * * *",
        "{created}"
    );
    assert_eq!(
        created["runtime_config"]["parameters"]["a"].as_f64(),
        Some(3.0),
        "{created}"
    );
    assert_eq!(created["status"], "ENABLED", "{created}");
    assert_eq!(created["service_account"], "team-runner", "{created}");
    let scheduled = kube_objects(server.namespace(), &scheduled_workflow_kind()).await;
    assert!(
        scheduled
            .iter()
            .any(|s| s.data["spec"]["trigger"]["cronSchedule"]["cron"] == "0 0 * * * *"),
        "{scheduled:?}"
    );

    let replaced = kfp
        .update_run_schedule(&schedule(ns, json!({"a": "4"})), &id)
        .await
        .unwrap();
    assert_ne!(replaced, id);
    assert_eq!(get(server, &format!("recurringruns/{id}")).await.0, 404);
    let (_, updated) = get(server, &format!("recurringruns/{replaced}")).await;
    assert_eq!(
        updated["runtime_config"]["parameters"]["a"].as_f64(),
        Some(4.0),
        "{updated}"
    );

    kfp.delete_run_schedule(&replaced).await.unwrap();
    assert_eq!(get(server, &format!("recurringruns/{replaced}")).await.0, 404);
    kfp.delete_run_schedule(&replaced).await.unwrap();
}

// --- experiments ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn experiments_are_created_found_by_display_name_replaced_and_deleted() {
    let server = server().await;
    let kfp = provider(server);
    let ns = "experiments";
    let id = kfp.create_experiment(&experiment(ns)).await.unwrap();
    let (_, created) = get(server, &format!("experiments/{id}")).await;
    assert_eq!(created["display_name"], "experiments-e", "{created}");
    assert_eq!(created["description"], "experiment of experiments", "{created}");
    // A second experiment of that name: KFP refuses it (409), Invalid.
    let message = assert_invalid(kfp.create_experiment(&experiment(ns)).await);
    assert!(message.contains("HTTP 409"), "{message}");

    let replaced = kfp.update_experiment(&experiment(ns), &id).await.unwrap();
    assert_ne!(replaced, id);
    assert_eq!(get(server, &format!("experiments/{id}")).await.0, 404);
    kfp.delete_experiment(&replaced).await.unwrap();
    assert_eq!(get(server, &format!("experiments/{replaced}")).await.0, 404);
    kfp.delete_experiment(&replaced).await.unwrap();
}

// --- find (exactly once) ------------------------------------------------------------------------------------------

/// `created` seconds from now (negative: before).
fn seconds_from_now(seconds: i64) -> Option<Time> {
    let now = k8s_openapi::jiff::Timestamp::now();
    Some(Time(
        k8s_openapi::jiff::Timestamp::from_second(now.as_second() + seconds).unwrap(),
    ))
}

#[tokio::test]
async fn find_answers_what_create_made_for_every_kind() {
    let server = server().await;
    let kfp = provider(server);
    let ns = "find";
    let name = |n: &str| NamespacedName::new(ns, n);
    let identity =
        |kind, n: &str, version: &str, created| ObjectIdentity::new(kind, name(n), version, created);
    let before = seconds_from_now(-300);
    let later = seconds_from_now(3600);
    for kind in ResourceKind::ALL {
        let unknown = identity(kind, "never-made", "v1", before.clone());
        assert_eq!(kfp.find(&unknown).await, Ok(None), "{kind}");
    }
    let pipeline_id = kfp
        .create_pipeline(&pipeline(ns, "v1", add_pipeline()))
        .await
        .unwrap();
    let experiment_id = kfp.create_experiment(&experiment(ns)).await.unwrap();
    let run_id = kfp.create_run(&run(ns, json!({"a": "1"}))).await.unwrap();
    let schedule_id = kfp
        .create_run_schedule(&schedule(ns, json!({"a": "1"})))
        .await
        .unwrap();
    // KFP keeps the description that names the run's version.
    let (_, created) = get(server, &format!("runs/{run_id}")).await;
    assert_eq!(
        created["description"], "kfp-operator run find/r version rv",
        "{created}"
    );

    for (kind, n, version, id) in [
        (ResourceKind::Pipeline, "add", "v1", &pipeline_id),
        (ResourceKind::Experiment, "e", "ev", &experiment_id),
        (ResourceKind::Run, "r", "rv", &run_id),
        (ResourceKind::RunSchedule, "rs", "sv", &schedule_id),
    ] {
        let found = kfp.find(&identity(kind, n, version, before.clone())).await;
        assert_eq!(found.as_ref(), Ok(&Some(id.clone())), "{kind}");
        assert_eq!(kfp.find(&identity(kind, n, version, None)).await, found, "{kind}");
        // A resource created after the object: a run belongs to an earlier Run of that name; the other kinds
        // keep one object per name, which is found whenever it was made.
        let after = kfp.find(&identity(kind, n, version, later.clone())).await;
        if kind == ResourceKind::Run {
            assert_eq!(after, Ok(None), "{kind}");
        } else {
            assert_eq!(after, found, "{kind}");
        }
    }
    // Another version of the Run is another run.
    assert_eq!(
        kfp.find(&identity(ResourceKind::Run, "r", "rv2", None)).await,
        Ok(None)
    );
    // A second run of the version: the newest (KFP keeps seconds, so one second apart at least).
    let newest = loop {
        let id = kfp.create_run(&run(ns, json!({"a": "2"}))).await.unwrap();
        let (_, made) = get(server, &format!("runs/{id}")).await;
        if made["created_at"] != created["created_at"] {
            break id;
        }
        // Made in the same second as the first, so either could be the newest: removed, and made again.
        let answer = reqwest::Client::new()
            .delete(format!("{}/apis/v2beta1/runs/{id}", server.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 200, "{:?}", answer.text().await);
    };
    assert_eq!(
        kfp.find(&identity(ResourceKind::Run, "r", "rv", before.clone()))
            .await,
        Ok(Some(newest))
    );

    // After the deletes, nothing is found; runs stay in KFP's history (delete terminates them).
    kfp.delete_run_schedule(&schedule_id).await.unwrap();
    kfp.delete_experiment(&experiment_id).await.unwrap();
    kfp.delete_pipeline(&pipeline_id).await.unwrap();
    for (kind, n) in [
        (ResourceKind::Pipeline, "add"),
        (ResourceKind::Experiment, "e"),
        (ResourceKind::RunSchedule, "rs"),
    ] {
        assert_eq!(kfp.find(&identity(kind, n, "v1", None)).await, Ok(None), "{kind}");
    }
}

/// The list filters the fake refuses, the real server refuses: a key its model does not map (`pipeline_version_id`
/// on runs, `namespace` and `experiment_id` on recurring runs) is 400 `no support for filtering on unrecognized
/// field`; `display_name EQUALS`, which the provider sends, is taken by both.
#[tokio::test]
async fn the_real_server_and_the_fake_take_and_refuse_the_same_filters() {
    let server = server().await;
    let fake = kfp_providers::kfp::fake::FakeKfp::start().await.unwrap();
    let list = |base: String, path: &'static str, key: &'static str| async move {
        let filter = json!({"predicates": [{"key": key, "operation": "EQUALS", "string_value": "x"}]});
        let answer = reqwest::Client::new()
            .get(format!("{base}/apis/v2beta1/{path}"))
            .query(&[("filter", filter.to_string())])
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.json::<Value>().await.unwrap_or(Value::Null))
    };
    for (path, key, refused) in [
        ("runs", "display_name", false),
        ("recurringruns", "display_name", false),
        ("experiments", "display_name", false),
        ("pipelines", "display_name", false),
        ("runs", "pipeline_version_id", true),
        ("recurringruns", "namespace", true),
        ("recurringruns", "experiment_id", true),
    ] {
        let (real, real_answer) = list(server.url().to_string(), path, key).await;
        let (faked, fake_answer) = list(fake.url().to_string(), path, key).await;
        assert_eq!(real, faked, "{path} {key}: KFP {real_answer}, fake {fake_answer}");
        if refused {
            assert_eq!(real, 400, "{path} {key}: {real_answer}");
            let wanted = format!("no support for filtering on unrecognized field \"{key}\"");
            for answer in [&real_answer, &fake_answer] {
                let message = answer["message"].as_str().unwrap_or_default();
                assert!(message.contains(&wanted), "{path} {key}: {answer}");
            }
        } else {
            assert_eq!(real, 200, "{path} {key}: {real_answer}");
        }
    }
    // The recurring runs' list is camelCase in KFP's answers (`recurringRuns`, as the proto names it), and in the
    // fake's: one recurring run listed by its display name, by both.
    let ns = "filters";
    let on_fake = provider_with(server, |c| c.rest_url = fake.url().to_string());
    for (base, kfp) in [
        (server.url().to_string(), provider(server)),
        (fake.url().to_string(), on_fake),
    ] {
        kfp.create_pipeline(&pipeline(ns, "v1", add_pipeline()))
            .await
            .unwrap();
        kfp.create_experiment(&experiment(ns)).await.unwrap();
        kfp.create_run_schedule(&schedule(ns, json!({}))).await.unwrap();
        let filter = json!({"predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": "filters-rs"}]});
        let listed: Value = reqwest::Client::new()
            .get(format!("{base}/apis/v2beta1/recurringruns"))
            .query(&[("filter", filter.to_string())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            listed["recurringRuns"].as_array().map(Vec::len),
            Some(1),
            "{base}: {listed}"
        );
        assert!(listed.get("recurring_runs").is_none(), "{base}: {listed}");
    }
}

// --- errors --------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_malformed_id_is_not_found_and_a_bad_cron_invalid() {
    let server = server().await;
    let kfp = provider(server);
    // KFP 2.0.5 answers 404 for an id that is no UUID as for a missing one (gateway answers carry their status).
    let message = assert_not_found(
        kfp.update_pipeline(&pipeline("bad-id", "v1", add_pipeline()), "not-a-uuid")
            .await,
    );
    assert!(message.contains("ResourceNotFoundError"), "{message}");
    let mut bad = schedule("bad-cron", json!({}));
    bad.schedule.cron_expression = "61 * * * *".into();
    assert_invalid(kfp.create_run_schedule(&bad).await);
}

// --- multi-user mode -----------------------------------------------------------------------------------------------

/// A second server in multi-user mode: experiments (and so runs and recurring runs) belong to the provider's
/// namespace, pipelines are shared, and every request carries
/// the provider's ServiceAccount token (audience `pipelines.kubeflow.org`), which KFP reviews with the control
/// plane and authorizes with SubjectAccessReviews.
#[tokio::test]
async fn multi_user_mode_works_in_the_provider_namespace() {
    let env = TestEnv::shared().await.unwrap();
    let server = KfpApiServer::start_with(env, KfpOptions { multi_user: true })
        .await
        .unwrap();
    let ns = env.namespace().await.unwrap();
    let client = env.client().await.unwrap();
    kfp_testenv::apply_yaml(
        &client,
        &format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: kfp-user}}\nrules:\n\
             - apiGroups: [pipelines.kubeflow.org]\n  resources: ['*']\n  verbs: ['*']\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: kfp-user}}\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: kfp-user}}\n\
             subjects: [{{kind: ServiceAccount, name: kfp-operator, namespace: {}}}]\n",
            ns.name()
        ),
        &kfp_testenv::ApplyOptions::in_namespace(ns.name()),
    )
    .await
    .unwrap();
    let token = env
        .service_account_token(ns.name(), "kfp-operator", &["pipelines.kubeflow.org"])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &token).unwrap();
    let mut config = KfpConfig::new(NamespacedName::new(ns.name(), "kfp"));
    config.rest_url = server.url().to_string();
    config.multi_user = true;
    config.token_path = dir.path().join("token");
    let kfp = KfpProvider::new(config.clone()).unwrap();

    let id = kfp.create_experiment(&experiment("team")).await.unwrap();
    let answer = reqwest::Client::new()
        .get(format!("{}/apis/v2beta1/experiments/{id}", server.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let created: Value = answer.json().await.unwrap();
    assert_eq!(created["namespace"], ns.name(), "{created}");
    let replaced = kfp.update_experiment(&experiment("team"), &id).await.unwrap();
    // Pipelines are shared (no namespace); runs and recurring runs go to the experiment's namespace, where KFP
    // makes their Workflow and ScheduledWorkflow.
    let pipeline_id = kfp
        .create_pipeline(&pipeline("team", "v1", add_pipeline()))
        .await
        .unwrap();
    let run_id = kfp.create_run(&run("team", json!({"a": "2"}))).await.unwrap();
    let workflows = kube_objects(ns.name(), &workflow_kind()).await;
    assert!(
        workflows
            .iter()
            .any(|w| w.metadata.labels.as_ref().and_then(|l| l.get("pipeline/runid")) == Some(&run_id)),
        "no Workflow of run {run_id} in {}: {workflows:?}",
        ns.name()
    );
    let schedule_id = kfp
        .create_run_schedule(&schedule("team", json!({"a": "2"})))
        .await
        .unwrap();
    assert_eq!(kube_objects(ns.name(), &scheduled_workflow_kind()).await.len(), 1);
    kfp.delete_run_schedule(&schedule_id).await.unwrap();
    kfp.delete_pipeline(&pipeline_id).await.unwrap();
    kfp.delete_experiment(&replaced).await.unwrap();

    // Without a token, KFP refuses the request.
    let unauthenticated = reqwest::get(format!(
        "{}/apis/v2beta1/experiments?namespace={}",
        server.url(),
        ns.name()
    ))
    .await
    .unwrap();
    let status = unauthenticated.status().as_u16();
    assert!((400..500).contains(&status), "{status}");
    let stranger = env
        .service_account_token(ns.name(), "stranger", &["pipelines.kubeflow.org"])
        .await
        .unwrap();
    std::fs::write(dir.path().join("token"), &stranger).unwrap();
    // KFP answers 403 PermissionDenied; the provider retries it (Transient): RBAC can be fixed without changing
    // the resource.
    match kfp.create_experiment(&experiment("team")).await {
        Err(ProviderError::Transient(message)) => {
            assert!(
                message.contains("HTTP 403") && message.contains("stranger"),
                "{message}"
            )
        }
        other => panic!("expected Transient, got {other:?}"),
    }

    // Dropping the server ends MariaDB, gofakes3 and the API server and removes its folder.
    let (pids, folder) = (server.process_ids(), server.dir().to_path_buf());
    assert_eq!(pids.len(), 3);
    drop(server);
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} is left"
        );
    }
    assert!(!folder.exists(), "{} is left", folder.display());
}
