//! The Kubeflow Pipelines provider against the in-process fake v2beta1 API.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kfp_core::definitions::{
    ExperimentDefinition, PipelineDefinitionWrapper, RunDefinition, RunScheduleDefinition,
};
use kfp_core::executor::ResourceKind;
use kfp_core::provider::{ObjectIdentity, Provider, ProviderConfig, ProviderError};
use kfp_core::values::NamespacedName;
use kfp_providers::kfp::fake::FakeKfp;
use kfp_providers::kfp::pipeline::LABEL_KEYS;
use kfp_providers::kfp::{KfpConfig, KfpProvider};
use serde_json::{Value, json};

struct Setup {
    fake: FakeKfp,
    provider: KfpProvider,
    _dir: tempfile::TempDir,
    token_path: std::path::PathBuf,
}

async fn setup_with(configure: impl FnOnce(&mut KfpConfig)) -> Setup {
    let fake = FakeKfp::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("token");
    let mut config = KfpConfig::new(NamespacedName::new("kfp-operator-system", "kfp"));
    config.rest_url = fake.url().to_string();
    config.token_path = token_path.clone();
    config.request_timeout = Duration::from_secs(5);
    configure(&mut config);
    let provider = KfpProvider::new(config).unwrap();
    Setup {
        fake,
        provider,
        _dir: dir,
        token_path,
    }
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

fn compiled() -> Value {
    json!({
        "pipelineInfo": {"name": "ns-p"},
        "root": {"dag": {"tasks": {}}, "inputDefinitions": {"parameters": {
            "x": {"parameterType": "STRING", "isOptional": true},
            "a": {"parameterType": "STRING", "isOptional": true}
        }}},
        "schemaVersion": "2.1.0",
        "sdkVersion": "kfp-2.7.0"
    })
}

fn pipeline(version: &str, framework: &str, compiled: Value) -> PipelineDefinitionWrapper {
    PipelineDefinitionWrapper {
        pipeline_definition: json!({
            "name": "ns/p", "version": version, "image": "img:1",
            "framework": {"name": framework, "parameters": {}}
        }),
        compiled_pipeline: compiled,
    }
}

fn run(experiment: &str) -> RunDefinition {
    serde_json::from_value(json!({
        "name": "ns/r", "version": "rv", "pipelineName": "ns/p", "pipelineVersion": "v1",
        "runConfigurationName": "ns/rc", "experimentName": experiment,
        "parameters": {"a": "1", "run-name": "overridden"},
        "triggerIndicator": {"type": "onChangePipeline", "source": "p", "sourceNamespace": "ns"}
    }))
    .unwrap()
}

fn schedule(cron: &str) -> RunScheduleDefinition {
    serde_json::from_value(json!({
        "name": "ns/rs", "version": "sv", "pipelineName": "ns/p", "pipelineVersion": "v1",
        "runConfigurationName": "ns/rc", "experimentName": "ns/e",
        "parameters": {"a": "1"},
        "triggerIndicator": {"type": "schedule", "source": "rc", "sourceNamespace": "ns"},
        "schedule": {"cronExpression": cron, "startTime": "2024-01-01T00:00:00Z", "endTime": "2025-01-01T00:00:00Z"}
    }))
    .unwrap()
}

fn experiment(description: &str) -> ExperimentDefinition {
    ExperimentDefinition {
        name: NamespacedName::new("ns", "e"),
        version: "ev".into(),
        description: description.into(),
    }
}

fn assert_transient(result: Result<impl std::fmt::Debug, ProviderError>) -> String {
    match result {
        Err(ProviderError::Transient(m)) => m,
        other => panic!("expected Transient, got {other:?}"),
    }
}

fn assert_invalid(result: Result<impl std::fmt::Debug, ProviderError>) -> String {
    match result {
        Err(ProviderError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// --- pipelines ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn create_pipeline_uploads_then_replaces_the_default_version() {
    let s = setup().await;
    let id = s
        .provider
        .create_pipeline(&pipeline("v1", "kfp-sdk", compiled()))
        .await
        .unwrap();

    let pipelines = s.fake.pipelines();
    assert_eq!(pipelines.len(), 1);
    assert_eq!(pipelines[0].pipeline_id, id);
    assert_eq!(pipelines[0].display_name, "ns-p");
    let versions = s.fake.pipeline_versions(&id);
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(versions[0].display_name, "v1");

    let requests = s.fake.requests();
    let upload = &requests[0];
    assert_eq!(
        (upload.method.as_str(), upload.path.as_str()),
        ("POST", "/apis/v2beta1/pipelines/upload")
    );
    assert_eq!(upload.query["name"], "ns-p");
    assert_eq!(upload.upload_file_name.as_deref(), Some("resource.yaml"));
    let upload_version = requests.last().unwrap();
    assert_eq!(upload_version.path, "/apis/v2beta1/pipelines/upload_version");
    assert_eq!(upload_version.query["pipelineid"], id);
    assert_eq!(upload_version.query["name"], "v1");
    assert_eq!(upload_version.upload_file_name.as_deref(), Some("resource.yaml"));
    // No token file in single-user mode: no header.
    assert!(requests.iter().all(|r| r.authorization.is_none()));
}

#[tokio::test]
async fn uploaded_pipelines_declare_every_label_as_an_optional_string_input() {
    let s = setup().await;
    let id = s
        .provider
        .create_pipeline(&pipeline("v1", "kfp-sdk", compiled()))
        .await
        .unwrap();
    let spec = &s.fake.pipeline_versions(&id)[0].pipeline_spec;
    let parameters = &spec["root"]["inputDefinitions"]["parameters"];
    assert_eq!(
        parameters["x"],
        json!({"parameterType": "STRING", "isOptional": true})
    );
    for key in LABEL_KEYS {
        assert_eq!(
            parameters[key],
            json!({"parameterType": "STRING", "isOptional": true, "defaultValue": ""}),
            "{key}"
        );
    }
    assert_eq!(spec["schemaVersion"], "2.1.0");
}

#[tokio::test]
async fn tfx_pipelines_are_unwrapped_before_upload() {
    let s = setup().await;
    let wrapper = json!({"displayName": "ns-p", "labels": {"a": "b"}, "pipelineSpec": compiled()});
    let id = s
        .provider
        .create_pipeline(&pipeline("v1", "tfx", wrapper))
        .await
        .unwrap();
    let spec = &s.fake.pipeline_versions(&id)[0].pipeline_spec;
    assert!(spec.get("pipelineSpec").is_none(), "{spec}");
    assert!(spec.get("displayName").is_none(), "{spec}");
    assert_eq!(spec["sdkVersion"], "kfp-2.7.0");
    assert_eq!(
        spec["root"]["inputDefinitions"]["parameters"]["pipeline-version"]["parameterType"],
        "STRING"
    );
}

#[tokio::test]
async fn update_pipeline_deletes_every_version_across_pages_and_keeps_the_id() {
    let s = setup_with(|c| c.page_size = 2).await;
    let id = s
        .provider
        .create_pipeline(&pipeline("v1", "kfp-sdk", compiled()))
        .await
        .unwrap();
    for n in 0..5 {
        s.fake.add_pipeline_version(&id, &format!("old-{n}"));
    }
    s.fake.set_max_page_size(2);
    s.fake.clear_requests();

    let updated = s
        .provider
        .update_pipeline(&pipeline("v2", "kfp-sdk", compiled()), &id)
        .await
        .unwrap();
    assert_eq!(updated, id);
    let versions = s.fake.pipeline_versions(&id);
    assert_eq!(
        versions
            .iter()
            .map(|v| v.display_name.as_str())
            .collect::<Vec<_>>(),
        ["v2"]
    );

    let lists: Vec<_> = s
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/versions"))
        .collect();
    assert_eq!(lists.len(), 3, "6 versions in pages of 2: {lists:?}");
    assert!(!lists[0].query.contains_key("page_token"));
    assert_eq!(lists[1].query["page_token"], "offset-2");
    assert_eq!(lists[0].query["page_size"], "2");
}

#[tokio::test]
async fn delete_pipeline_removes_versions_then_the_pipeline_and_ignores_not_found() {
    let s = setup().await;
    let id = s
        .provider
        .create_pipeline(&pipeline("v1", "kfp-sdk", compiled()))
        .await
        .unwrap();
    s.provider.delete_pipeline(&id).await.unwrap();
    assert!(s.fake.pipelines().is_empty());
    assert!(s.fake.pipeline_versions(&id).is_empty());
    s.provider.delete_pipeline(&id).await.unwrap();
    s.provider.delete_pipeline("never-existed").await.unwrap();
}

/// Creates the pipeline twice (as after a crash half-way): the second create adopts it and replaces its version.
/// Returns the id.
async fn create_twice_adopts(s: &Setup) -> String {
    let id = s
        .provider
        .create_pipeline(&pipeline("v1", "kfp-sdk", compiled()))
        .await
        .unwrap();
    let again = s
        .provider
        .create_pipeline(&pipeline("v2", "kfp-sdk", compiled()))
        .await
        .unwrap();
    assert_eq!(again, id);
    assert_eq!(s.fake.pipelines().len(), 1);
    let versions = s.fake.pipeline_versions(&id);
    assert_eq!(
        versions
            .iter()
            .map(|v| v.display_name.as_str())
            .collect::<Vec<_>>(),
        ["v2"]
    );
    id
}

#[tokio::test]
async fn a_repeated_create_adopts_the_existing_pipeline() {
    create_twice_adopts(&setup().await).await;
}

#[tokio::test]
async fn a_rejected_upload_is_invalid() {
    let s = setup().await;
    let message = assert_invalid(
        s.provider
            .create_pipeline(&pipeline("v1", "kfp-sdk", json!([1])))
            .await,
    );
    assert!(message.contains("JSON object"), "{message}");
    s.fake.fail_next(1, 409);
    let message = assert_invalid(
        s.provider
            .create_pipeline(&pipeline("v1", "kfp-sdk", compiled()))
            .await,
    );
    assert!(message.contains("HTTP 409"), "{message}");
}

#[tokio::test]
async fn failed_uploads_answered_as_by_kfp_2_0_5_are_read_by_their_error_class() {
    // KFP 2.0.5 answers every failed upload HTTP 500, the class in the text (tests/kfp/kfp_apiserver.rs).
    let s = setup().await;
    s.fake.answer_uploads_like_kfp_2_0_5();
    // "Already exist error": the repeated create adopts the pipeline instead of retrying forever.
    let id = create_twice_adopts(&s).await;
    // "InvalidInputError" (here a version without a name): Invalid, not Transient.
    let message = assert_invalid(
        s.provider
            .update_pipeline(&pipeline("", "kfp-sdk", compiled()), &id)
            .await,
    );
    assert!(
        message.contains("HTTP 500") && message.contains("InvalidInputError"),
        "{message}"
    );
    // A server fault stays transient.
    s.fake.fail_next(1, 500);
    assert_transient(
        s.provider
            .update_pipeline(&pipeline("v3", "kfp-sdk", compiled()), &id)
            .await,
    );
}

#[tokio::test]
async fn updating_a_missing_pipeline_is_not_found() {
    let s = setup().await;
    let error = s
        .provider
        .update_pipeline(&pipeline("v1", "kfp-sdk", compiled()), "missing")
        .await
        .unwrap_err();
    assert!(error.is_not_found(), "{error:?}");
}

// --- runs --------------------------------------------------------------------------------------------------------

async fn with_pipeline_and_experiment(s: &Setup) -> (String, String) {
    let pipeline_id = s
        .provider
        .create_pipeline(&pipeline("v1", "kfp-sdk", compiled()))
        .await
        .unwrap();
    let experiment_id = s.provider.create_experiment(&experiment("")).await.unwrap();
    (pipeline_id, experiment_id)
}

#[tokio::test]
async fn create_run_resolves_ids_by_display_name_and_passes_labels() {
    let s = setup_with(|c| c.pipeline_root_storage = "gs://bucket/root/".into()).await;
    let (pipeline_id, experiment_id) = with_pipeline_and_experiment(&s).await;
    let version_id = s.fake.pipeline_versions(&pipeline_id)[0]
        .pipeline_version_id
        .clone();
    s.fake.clear_requests();

    let run_id = s.provider.create_run(&run("ns/e")).await.unwrap();
    let runs = s.fake.runs();
    assert_eq!(runs.len(), 1);
    let created = &runs[0];
    assert_eq!(created["run_id"], run_id);
    assert_eq!(created["display_name"], "ns-r");
    assert_eq!(created["experiment_id"], experiment_id);
    assert_eq!(
        created["pipeline_version_reference"],
        json!({"pipeline_id": pipeline_id, "pipeline_version_id": version_id})
    );
    assert_eq!(
        created["runtime_config"]["pipeline_root"],
        "gs://bucket/root/ns/p"
    );
    let parameters = &created["runtime_config"]["parameters"];
    assert_eq!(parameters["a"], "1");
    assert_eq!(parameters["run-name"], "r", "labels win over parameters");
    assert_eq!(parameters["run-namespace"], "ns");
    assert_eq!(parameters["provider-name"], "kfp");
    assert_eq!(parameters["provider-namespace"], "kfp-operator-system");
    assert_eq!(parameters["pipeline-version"], "v1");
    assert_eq!(parameters["runconfiguration-name"], "rc");
    assert_eq!(parameters["trigger-type"], "onChangePipeline");
    assert_eq!(parameters["trigger-source-namespace"], "ns");

    let lookup = &s.fake.requests()[0];
    assert_eq!(lookup.path, "/apis/v2beta1/pipelines");
    let filter: Value = serde_json::from_str(&lookup.query["filter"]).unwrap();
    assert_eq!(
        filter,
        json!({"predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": "ns-p"}]})
    );

    // Deleting a run still going terminates it and keeps it in KFP; a second delete (already CANCELING) and a
    // delete of a run KFP no longer has are fine.
    assert!(created.get("service_account").is_none(), "{created}");
    s.provider.delete_run(&run_id).await.unwrap();
    assert_eq!(s.fake.runs().len(), 1);
    assert_eq!(s.fake.runs()[0]["state"], "CANCELING");
    s.provider.delete_run(&run_id).await.unwrap();
    s.provider.delete_run("no-such-run").await.unwrap();
}

#[tokio::test]
async fn a_runs_service_account_goes_to_its_run_and_recurring_run() {
    let s = setup().await;
    with_pipeline_and_experiment(&s).await;
    let with_account = |mut value: Value| {
        value["serviceAccount"] = json!("trainer");
        value["labels"] = json!({"team": "ml"});
        value
    };
    let definition: RunDefinition =
        serde_json::from_value(with_account(serde_json::to_value(run("ns/e")).unwrap())).unwrap();
    s.provider.create_run(&definition).await.unwrap();
    assert_eq!(s.fake.runs()[0]["service_account"], "trainer");
    // KFP runs have no labels: spec.labels are not sent (docs/platform-features.md).
    assert!(
        !serde_json::to_string(&s.fake.runs()[0])
            .unwrap()
            .contains("\"team\"")
    );
    let definition: RunScheduleDefinition =
        serde_json::from_value(with_account(serde_json::to_value(schedule("0 * * * *")).unwrap())).unwrap();
    s.provider.create_run_schedule(&definition).await.unwrap();
    assert_eq!(s.fake.recurring_runs()[0]["service_account"], "trainer");
}

#[tokio::test]
async fn runs_without_an_experiment_use_the_default_experiment() {
    let s = setup().await;
    s.provider
        .create_pipeline(&pipeline("v1", "kfp-sdk", compiled()))
        .await
        .unwrap();
    let default_id = s.fake.add_experiment("Default", "");
    s.provider.create_run(&run("")).await.unwrap();
    assert_eq!(s.fake.runs()[0]["experiment_id"], default_id);
    assert!(
        !s.fake.runs()[0]["runtime_config"]
            .as_object()
            .unwrap()
            .contains_key("pipeline_root")
    );
}

#[tokio::test]
async fn a_missing_pipeline_or_experiment_is_not_found_and_names_the_count() {
    let s = setup().await;
    let error = s.provider.create_run(&run("ns/e")).await.unwrap_err();
    assert!(error.is_not_found(), "{error:?}");
    assert!(
        error.message().contains("\"ns-p\"") && error.message().contains("found 0"),
        "{error}"
    );

    s.provider
        .create_pipeline(&pipeline("v1", "kfp-sdk", compiled()))
        .await
        .unwrap();
    let error = s.provider.create_run(&run("ns/e")).await.unwrap_err();
    assert!(
        error.is_not_found() && error.message().contains("experiment"),
        "{error:?}"
    );

    let mut other_version = run("ns/e");
    other_version.pipeline_version = "v9".into();
    s.provider.create_experiment(&experiment("")).await.unwrap();
    let error = s.provider.create_run(&other_version).await.unwrap_err();
    assert!(
        error.is_not_found() && error.message().contains("\"v9\""),
        "{error:?}"
    );
}

#[tokio::test]
async fn two_experiments_with_the_name_are_ambiguous() {
    let s = setup().await;
    s.provider
        .create_pipeline(&pipeline("v1", "kfp-sdk", compiled()))
        .await
        .unwrap();
    s.fake.add_experiment("ns-e", "a");
    s.fake.add_experiment("ns-e", "b");
    let message = assert_invalid(s.provider.create_run(&run("ns/e")).await);
    assert!(message.contains("2 experiment"), "{message}");
}

// --- recurring runs ----------------------------------------------------------------------------------------------

#[tokio::test]
async fn run_schedules_are_recurring_runs_with_six_field_crons() {
    let s = setup().await;
    let (pipeline_id, experiment_id) = with_pipeline_and_experiment(&s).await;
    let id = s
        .provider
        .create_run_schedule(&schedule("*/5 * * * *"))
        .await
        .unwrap();
    let stored = s.fake.recurring_runs();
    assert_eq!(stored.len(), 1);
    let r = &stored[0];
    assert_eq!(r["recurring_run_id"], id);
    assert_eq!(r["display_name"], "ns-rs");
    assert_eq!(r["experiment_id"], experiment_id);
    assert_eq!(r["pipeline_version_reference"]["pipeline_id"], pipeline_id);
    assert_eq!(r["max_concurrency"], "1");
    assert_eq!(r["no_catchup"], true);
    assert_eq!(r["mode"], "ENABLE");
    assert_eq!(
        r["trigger"],
        json!({"cron_schedule": {"cron": "0 */5 * * * *", "start_time": "2024-01-01T00:00:00Z", "end_time": "2025-01-01T00:00:00Z"}})
    );
    let parameters = &r["runtime_config"]["parameters"];
    assert_eq!(parameters["trigger-type"], "schedule");
    assert!(parameters.get("run-name").is_none());

    // Update = delete + create: a new id.
    let updated = s
        .provider
        .update_run_schedule(&schedule("0 0 * * * *"), &id)
        .await
        .unwrap();
    assert_ne!(updated, id);
    let stored = s.fake.recurring_runs();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["trigger"]["cron_schedule"]["cron"], "0 0 * * * *");

    s.provider.delete_run_schedule(&updated).await.unwrap();
    assert!(s.fake.recurring_runs().is_empty());
    s.provider.delete_run_schedule(&updated).await.unwrap();
    // Updating a schedule that is already gone still creates the new one.
    s.provider
        .update_run_schedule(&schedule("0 0 * * * *"), &updated)
        .await
        .unwrap();
    assert_eq!(s.fake.recurring_runs().len(), 1);
}

#[tokio::test]
async fn an_invalid_cron_is_invalid_before_any_request() {
    let s = setup().await;
    assert_invalid(s.provider.create_run_schedule(&schedule("not a cron")).await);
    assert!(s.fake.requests().is_empty());
}

// --- typed parameters --------------------------------------------------------------------------------------------

/// `examples/pipelines` `add_pipeline` as the kfp SDK compiled it: `a`, `b`, `c` are NUMBER_DOUBLE with defaults.
fn add_pipeline() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipelines/add_pipeline.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A pipeline with one input of every type a run can set.
fn every_type() -> Value {
    json!({
        "pipelineInfo": {"name": "ns-p"},
        "root": {"dag": {"tasks": {}}, "inputDefinitions": {"parameters": {
            "i": {"parameterType": "NUMBER_INTEGER"},
            "d": {"parameterType": "NUMBER_DOUBLE"},
            "b": {"parameterType": "BOOLEAN"},
            "l": {"parameterType": "LIST"},
            "s": {"parameterType": "STRUCT"},
            "t": {"parameterType": "STRING"}
        }}},
        "schemaVersion": "2.1.0",
        "sdkVersion": "kfp-2.7.0"
    })
}

fn with_parameters<T: serde::de::DeserializeOwned + serde::Serialize>(definition: T, parameters: Value) -> T {
    let mut value = serde_json::to_value(definition).unwrap();
    value["parameters"] = parameters;
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn the_example_pipeline_runs_with_numbers_for_its_float_inputs() {
    let s = setup().await;
    s.provider
        .create_pipeline(&pipeline("v1", "kfp-sdk", add_pipeline()))
        .await
        .unwrap();
    s.provider.create_experiment(&experiment("")).await.unwrap();
    let run = with_parameters(run("ns/e"), json!({"a": "1.5", "b": "2", "c": ""}));
    s.provider.create_run(&run).await.unwrap();
    let parameters = &s.fake.runs()[0]["runtime_config"]["parameters"];
    assert_eq!(parameters["a"], json!(1.5));
    assert_eq!(parameters["b"], json!(2.0));
    assert!(parameters.get("c").is_none(), "empty: c keeps its default");
    assert_eq!(parameters["run-name"], "r");

    let schedule = with_parameters(schedule("0 * * * *"), json!({"a": "-0.25"}));
    s.provider.create_run_schedule(&schedule).await.unwrap();
    let parameters = &s.fake.recurring_runs()[0]["runtime_config"]["parameters"];
    assert_eq!(parameters["a"], json!(-0.25));
    assert_eq!(parameters["trigger-type"], "schedule");
}

#[tokio::test]
async fn runs_and_recurring_runs_send_every_parameter_with_its_declared_type() {
    let s = setup().await;
    let pipeline_id = s
        .provider
        .create_pipeline(&pipeline("v1", "kfp-sdk", every_type()))
        .await
        .unwrap();
    s.provider.create_experiment(&experiment("")).await.unwrap();
    let parameters = json!({
        "i": "42", "d": "0.5", "b": "true", "l": "[1, \"two\"]", "s": "{\"k\": {\"n\": 1}}", "t": "7"
    });
    let expected = json!({
        "i": 42, "d": 0.5, "b": true, "l": [1, "two"], "s": {"k": {"n": 1}}, "t": "7"
    });
    s.fake.clear_requests();
    s.provider
        .create_run(&with_parameters(run("ns/e"), parameters.clone()))
        .await
        .unwrap();
    // The types come from the version KFP holds.
    let version_id = &s.fake.pipeline_versions(&pipeline_id)[0].pipeline_version_id;
    assert!(
        s.fake.requests().iter().any(|r| r.method == "GET"
            && r.path == format!("/apis/v2beta1/pipelines/{pipeline_id}/versions/{version_id}")),
        "{:#?}",
        s.fake.requests()
    );
    s.provider
        .create_run_schedule(&with_parameters(schedule("0 * * * *"), parameters.clone()))
        .await
        .unwrap();
    for sent in [&s.fake.runs()[0], &s.fake.recurring_runs()[0]] {
        let sent = &sent["runtime_config"]["parameters"];
        for (name, value) in expected.as_object().unwrap() {
            assert_eq!(&sent[name], value, "{name} in {sent}");
        }
        // Labels are declared STRING inputs, so they stay strings.
        assert_eq!(sent["pipeline-version"], "v1");
    }
    // A parameter the pipeline does not declare is sent as a string, and refused as KFP refuses it.
    let mut undeclared = parameters.clone();
    undeclared["undeclared"] = json!("8");
    let message = assert_invalid(
        s.provider
            .create_run(&with_parameters(run("ns/e"), undeclared))
            .await,
    );
    assert!(
        message.contains("not required by pipeline: undeclared"),
        "{message}"
    );
}

#[tokio::test]
async fn a_value_that_cannot_take_its_type_fails_before_anything_is_created() {
    let s = setup().await;
    s.provider
        .create_pipeline(&pipeline("v1", "kfp-sdk", every_type()))
        .await
        .unwrap();
    s.provider.create_experiment(&experiment("")).await.unwrap();
    let message = assert_invalid(
        s.provider
            .create_run(&with_parameters(run("ns/e"), json!({"d": "zero point five"})))
            .await,
    );
    assert_eq!(
        message,
        "run parameter \"d\" has the value \"zero point five\", which is not a NUMBER_DOUBLE as the compiled \
         pipeline declares: expected a finite number such as 0.5"
    );
    let long = format!("[{}", "1, ".repeat(500));
    let message = assert_invalid(
        s.provider
            .create_run_schedule(&with_parameters(schedule("0 * * * *"), json!({"l": long})))
            .await,
    );
    assert!(
        message.contains("\"l\"") && message.contains("LIST") && message.contains("1, 1, …\""),
        "{message}"
    );
    assert!(message.len() < 300, "the value is cut: {message}");
    assert!(s.fake.runs().is_empty() && s.fake.recurring_runs().is_empty());
}

#[tokio::test]
async fn the_fake_refuses_a_string_for_a_typed_input_as_kfp_does() {
    let s = setup().await;
    let pipeline_id = s
        .provider
        .create_pipeline(&pipeline("v1", "kfp-sdk", add_pipeline()))
        .await
        .unwrap();
    let version_id = s.fake.pipeline_versions(&pipeline_id)[0]
        .pipeline_version_id
        .clone();
    let reference = json!({"pipeline_id": pipeline_id, "pipeline_version_id": version_id});
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{}/apis/v2beta1/{path}", s.fake.url()))
            .json(&body)
            .send()
    };
    let answer = post(
        "runs",
        json!({"display_name": "r", "pipeline_version_reference": reference,
               "runtime_config": {"parameters": {"a": "1.5"}}}),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 400);
    assert_eq!(
        answer.json::<Value>().await.unwrap(),
        json!({"code": 3, "details": [], "message": "Failed to create a run: Failed to generate the ExecutionSpec: \
               invalid pipeline job inputs: input parameter a requires type double or integer, but the parameter \
               value is not of number value type"})
    );
    let answer = post(
        "recurringruns",
        json!({"display_name": "r", "pipeline_version_reference": reference, "max_concurrency": "1",
               "mode": "ENABLE", "trigger": {"cron_schedule": {"cron": "0 0 * * * *"}},
               "runtime_config": {"parameters": {"b": true}}}),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 400);
    let message = answer.json::<Value>().await.unwrap()["message"].clone();
    assert!(
        message.as_str().unwrap().ends_with("input parameter b requires type double or integer, but the parameter value is not of number value type"),
        "{message}"
    );
    // Numbers pass; so does a string for a label, which uploads declare STRING.
    let answer = post(
        "runs",
        json!({"display_name": "r", "pipeline_version_reference": reference,
               "runtime_config": {"parameters": {"a": 1.5, "b": 2, "run-name": "r"}}}),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 200);
}

// --- experiments -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn experiments_are_created_replaced_and_deleted() {
    let s = setup().await;
    let id = s.provider.create_experiment(&experiment("first")).await.unwrap();
    let stored = s.fake.experiments();
    assert_eq!(
        (stored[0].display_name.as_str(), stored[0].description.as_str()),
        ("ns-e", "first")
    );
    assert_eq!(stored[0].namespace, "", "single-user mode sends no namespace");
    assert_eq!(
        s.fake.requests()[0].body,
        Some(json!({"display_name": "ns-e", "description": "first"}))
    );

    let new_id = s
        .provider
        .update_experiment(&experiment("second"), &id)
        .await
        .unwrap();
    assert_ne!(new_id, id);
    let stored = s.fake.experiments();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].description, "second");

    s.provider.delete_experiment(&new_id).await.unwrap();
    assert!(s.fake.experiments().is_empty());
    s.provider.delete_experiment(&new_id).await.unwrap();
}

#[tokio::test]
async fn a_duplicate_experiment_is_invalid() {
    let s = setup().await;
    s.provider.create_experiment(&experiment("")).await.unwrap();
    let message = assert_invalid(s.provider.create_experiment(&experiment("")).await);
    assert!(message.contains("409"), "{message}");
}

// --- find (exactly once) ------------------------------------------------------------------------------------------

fn time(text: &str) -> Time {
    Time(text.parse().unwrap())
}

fn identity(kind: ResourceKind, name: &str, version: &str, created: Option<&str>) -> ObjectIdentity {
    ObjectIdentity::new(kind, name.parse().unwrap(), version, created.map(time))
}

/// The filter a find request sent: the display name it asked for.
fn filtered_name(request: &kfp_providers::kfp::fake::RecordedRequest) -> Value {
    let filter: Value = serde_json::from_str(&request.query["filter"]).unwrap();
    assert_eq!(filter["predicates"].as_array().unwrap().len(), 1, "{filter}");
    assert_eq!(filter["predicates"][0]["key"], "display_name", "{filter}");
    assert_eq!(filter["predicates"][0]["operation"], "EQUALS", "{filter}");
    filter["predicates"][0]["string_value"].clone()
}

#[tokio::test]
async fn find_answers_the_object_of_each_kind_by_its_display_name() {
    let s = setup().await;
    let (pipeline_id, experiment_id) = with_pipeline_and_experiment(&s).await;
    let run_id = s.provider.create_run(&run("ns/e")).await.unwrap();
    let schedule_id = s
        .provider
        .create_run_schedule(&schedule("*/5 * * * *"))
        .await
        .unwrap();
    // The run records the Run resource and its version: find compares it.
    assert_eq!(
        s.fake.runs()[0]["description"],
        "kfp-operator run ns/r version rv"
    );

    let before = Some("2020-01-01T00:00:00Z");
    for (kind, name, version, id) in [
        (ResourceKind::Pipeline, "ns/p", "v1", &pipeline_id),
        (ResourceKind::Experiment, "ns/e", "ev", &experiment_id),
        (ResourceKind::Run, "ns/r", "rv", &run_id),
        (ResourceKind::RunSchedule, "ns/rs", "sv", &schedule_id),
    ] {
        s.fake.clear_requests();
        let found = s
            .provider
            .find(&identity(kind, name, version, before))
            .await
            .unwrap();
        assert_eq!(found.as_ref(), Some(id), "{kind}");
        // One list request by display name, nothing created or changed.
        let requests = s.fake.requests();
        assert_eq!(requests.len(), 1, "{kind}: {requests:?}");
        assert_eq!(requests[0].method, "GET");
        assert_eq!(
            filtered_name(&requests[0]),
            json!(name.replace('/', "-")),
            "{kind}"
        );
        assert!(
            !requests[0].query.contains_key("namespace"),
            "single-user: {requests:?}"
        );
        // Nothing of that name: None.
        let other = format!("ns/other-{kind}");
        assert_eq!(
            s.provider.find(&identity(kind, &other, version, before)).await,
            Ok(None),
            "{kind}"
        );
    }
    assert_eq!(s.fake.runs().len(), 1);
    assert_eq!(s.fake.recurring_runs().len(), 1);
    // Pipelines, schedules and experiments: the object of that name, whenever it was made (their kind keeps one
    // object per name; the operator updates what it finds).
    for (kind, name, id) in [
        (ResourceKind::Pipeline, "ns/p", &pipeline_id),
        (ResourceKind::Experiment, "ns/e", &experiment_id),
        (ResourceKind::RunSchedule, "ns/rs", &schedule_id),
    ] {
        let later = identity(kind, name, "other", Some("2999-01-01T00:00:00Z"));
        assert_eq!(
            s.provider.find(&later).await.unwrap().as_ref(),
            Some(id),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn find_of_a_run_takes_the_newest_of_its_version_created_in_time() {
    let s = setup().await;
    with_pipeline_and_experiment(&s).await;
    let first = s.provider.create_run(&run("ns/e")).await.unwrap();
    let second = s.provider.create_run(&run("ns/e")).await.unwrap();
    let mut other_version = run("ns/e");
    other_version.version = "rv2".into();
    let third = s.provider.create_run(&other_version).await.unwrap();
    s.fake.set_created_at(&first, "2026-01-01T10:00:00Z");
    s.fake.set_created_at(&second, "2026-01-01T10:00:05Z");
    s.fake.set_created_at(&third, "2026-01-01T10:00:09Z");
    let find = async |version: &str, created: Option<&str>| {
        s.provider
            .find(&identity(ResourceKind::Run, "ns/r", version, created))
            .await
    };

    // The newest of that version, the other version's run left out.
    assert_eq!(
        find("rv", Some("2026-01-01T09:00:00Z")).await,
        Ok(Some(second.clone()))
    );
    assert_eq!(find("rv", None).await, Ok(Some(second.clone())));
    assert_eq!(find("rv2", None).await, Ok(Some(third.clone())));
    // Created in the same second as the resource counts (whole seconds); one second before does not.
    assert_eq!(
        find("rv", Some("2026-01-01T10:00:05.900Z")).await,
        Ok(Some(second.clone()))
    );
    assert_eq!(find("rv", Some("2026-01-01T10:00:06Z")).await, Ok(None));
    assert_eq!(find("rv2", Some("2026-01-01T10:00:10Z")).await, Ok(None));
    // A version no run was made for.
    assert_eq!(find("rv3", None).await, Ok(None));

    // A run without the provider's description (an older operator's) is compared by name and time only.
    let foreign = s.fake.runs()[0].clone();
    let mut body = json!({
        "display_name": "ns-r", "pipeline_version_reference": foreign["pipeline_version_reference"],
        "experiment_id": foreign["experiment_id"], "description": "made by hand"
    });
    body["runtime_config"] = json!({});
    let answer = reqwest::Client::new()
        .post(format!("{}/apis/v2beta1/runs", s.fake.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let unmarked = answer.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    s.fake.set_created_at(&unmarked, "2026-01-01T10:00:20Z");
    assert_eq!(find("rv3", None).await, Ok(Some(unmarked.clone())));
    assert_eq!(find("rv", None).await, Ok(Some(unmarked)));
    assert_eq!(find("rv", Some("2026-01-01T10:00:21Z")).await, Ok(None));
}

#[tokio::test]
async fn find_pages_through_every_run_of_the_name() {
    let s = setup_with(|c| c.page_size = 2).await;
    with_pipeline_and_experiment(&s).await;
    let mut ids = Vec::new();
    for second in 0..5 {
        let id = s.provider.create_run(&run("ns/e")).await.unwrap();
        s.fake
            .set_created_at(&id, &format!("2026-01-01T10:00:0{second}Z"));
        ids.push(id);
    }
    s.fake.clear_requests();
    let found = s
        .provider
        .find(&identity(ResourceKind::Run, "ns/r", "rv", None))
        .await;
    assert_eq!(found, Ok(ids.last().cloned()));
    assert_eq!(s.fake.requests().len(), 3, "5 runs in pages of 2");
}

#[tokio::test]
async fn multi_user_find_looks_in_the_provider_namespace() {
    let s = setup_with(|c| c.multi_user = true).await;
    std::fs::write(&s.token_path, "t1\n").unwrap();
    with_pipeline_and_experiment(&s).await;
    let run_id = s.provider.create_run(&run("ns/e")).await.unwrap();
    let schedule_id = s
        .provider
        .create_run_schedule(&schedule("*/5 * * * *"))
        .await
        .unwrap();
    // The same names in another namespace's experiment are not ours.
    let elsewhere = s.fake.add_experiment("ns-e", "someone-else");
    let theirs = json!({
        "display_name": "ns-r", "experiment_id": elsewhere,
        "pipeline_version_reference": s.fake.runs()[0]["pipeline_version_reference"]
    });
    let answer = reqwest::Client::new()
        .post(format!("{}/apis/v2beta1/runs", s.fake.url()))
        .bearer_auth("t1")
        .json(&theirs)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let theirs = answer.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    s.fake.set_created_at(&theirs, "2999-01-01T00:00:00Z");
    s.fake.clear_requests();
    for (kind, name, version, id) in [
        (
            ResourceKind::Experiment,
            "ns/e",
            "ev",
            s.fake.experiments()[0].experiment_id.clone(),
        ),
        (ResourceKind::Run, "ns/r", "rv", run_id),
        (ResourceKind::RunSchedule, "ns/rs", "sv", schedule_id),
    ] {
        assert_eq!(
            s.provider.find(&identity(kind, name, version, None)).await,
            Ok(Some(id)),
            "{kind}"
        );
    }
    let requests = s.fake.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(request.query["namespace"], "kfp-operator-system", "{request:?}");
        assert_eq!(request.authorization.as_deref(), Some("Bearer t1"));
    }
}

#[tokio::test]
async fn find_fails_as_the_lists_fail() {
    let s = setup().await;
    s.fake.fail_next(1, 503);
    assert_transient(
        s.provider
            .find(&identity(ResourceKind::Run, "ns/r", "rv", None))
            .await,
    );
    s.fake.fail_next(1, 503);
    assert_transient(
        s.provider
            .find(&identity(ResourceKind::Pipeline, "ns/p", "v", None))
            .await,
    );
    // Two experiments of one name (KFP refuses to make them; added behind its back) are ambiguous.
    s.fake.add_experiment("ns-e", "");
    s.fake.add_experiment("ns-e", "");
    let message = assert_invalid(
        s.provider
            .find(&identity(ResourceKind::Experiment, "ns/e", "ev", None))
            .await,
    );
    assert!(message.contains("2 experiment"), "{message}");
}

/// The fake refuses the list filters KFP 2.0.5 refuses (a key its model does not map), with KFP's message; the
/// real server's answers to the same requests are checked in `kfp_apiserver.rs`.
#[tokio::test]
async fn the_fake_refuses_filters_on_fields_kfp_does_not_filter_on() {
    let s = setup().await;
    let get = |path: &str, key: &str| {
        let filter = json!({"predicates": [{"key": key, "operation": "EQUALS", "string_value": "x"}]});
        let url = format!("{}/apis/v2beta1/{path}", s.fake.url());
        async move {
            let answer = reqwest::Client::new()
                .get(url)
                .query(&[("filter", filter.to_string())])
                .send()
                .await
                .unwrap();
            (answer.status().as_u16(), answer.json::<Value>().await.unwrap())
        }
    };
    for path in ["runs", "recurringruns", "experiments", "pipelines"] {
        let (status, answer) = get(path, "display_name").await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    for (path, key) in [
        ("runs", "pipeline_version_id"),
        ("recurringruns", "namespace"),
        ("recurringruns", "experiment_id"),
    ] {
        let (status, answer) = get(path, key).await;
        assert_eq!(status, 400, "{path} {key}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains(&format!(
                "no support for filtering on unrecognized field \"{key}\""
            )),
            "{message}"
        );
    }
}

// --- multi-user mode and tokens ----------------------------------------------------------------------------------

#[tokio::test]
async fn multi_user_experiments_are_scoped_to_the_provider_namespace() {
    let s = setup_with(|c| c.multi_user = true).await;
    std::fs::write(&s.token_path, "t1\n").unwrap();
    s.provider
        .create_pipeline(&pipeline("v1", "kfp-sdk", compiled()))
        .await
        .unwrap();
    s.provider.create_experiment(&experiment("d")).await.unwrap();
    assert_eq!(s.fake.experiments()[0].namespace, "kfp-operator-system");
    // A same-named experiment in another namespace is not found by the lookup.
    s.fake.add_experiment("ns-e", "someone-else");
    s.provider.create_run(&run("ns/e")).await.unwrap();
    let lookup = s
        .fake
        .requests()
        .into_iter()
        .find(|r| r.method == "GET" && r.path == "/apis/v2beta1/experiments")
        .unwrap();
    assert_eq!(lookup.query["namespace"], "kfp-operator-system");
    assert!(
        s.fake
            .requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer t1"))
    );
}

#[tokio::test]
async fn the_token_is_read_again_for_every_request() {
    let s = setup_with(|c| c.multi_user = true).await;
    s.fake.require_token(Some("first"));
    std::fs::write(&s.token_path, "first").unwrap();
    s.provider.create_experiment(&experiment("")).await.unwrap();

    // Rotation: the file changes, the next request carries the new token.
    std::fs::write(&s.token_path, "second").unwrap();
    s.fake.require_token(Some("second"));
    let id = s
        .provider
        .update_experiment(&experiment("x"), &s.fake.experiments()[0].experiment_id)
        .await
        .unwrap();
    let tokens: Vec<_> = s
        .fake
        .requests()
        .into_iter()
        .map(|r| r.authorization.unwrap())
        .collect();
    assert_eq!(tokens, ["Bearer first", "Bearer second", "Bearer second"]);
    assert!(!id.is_empty());

    // Rejected tokens (401) are transient: a rotation may fix them.
    std::fs::write(&s.token_path, "stale").unwrap();
    let message = assert_transient(s.provider.delete_experiment(&id).await);
    assert!(message.contains("401") && !message.contains("stale"), "{message}");
}

#[tokio::test]
async fn multi_user_mode_without_a_token_fails_before_sending() {
    let s = setup_with(|c| c.multi_user = true).await;
    let message = assert_transient(s.provider.create_experiment(&experiment("")).await);
    assert!(message.contains(&s.token_path.display().to_string()), "{message}");
    assert!(s.fake.requests().is_empty());
}

#[tokio::test]
async fn single_user_mode_sends_a_token_when_one_is_mounted() {
    let s = setup().await;
    std::fs::write(&s.token_path, "  tok  \n").unwrap();
    s.provider.create_experiment(&experiment("")).await.unwrap();
    assert_eq!(s.fake.requests()[0].authorization.as_deref(), Some("Bearer tok"));
}

// --- error classes -----------------------------------------------------------------------------------------------

#[tokio::test]
async fn server_errors_are_transient() {
    let s = setup().await;
    for status in [500, 502, 503] {
        s.fake.fail_next(1, status);
        let message = assert_transient(s.provider.create_experiment(&experiment("")).await);
        assert!(
            message.contains(&format!("HTTP {status}")) && message.contains("injected failure"),
            "{message}"
        );
    }
    // The next attempt succeeds.
    s.provider.create_experiment(&experiment("")).await.unwrap();
}

#[tokio::test]
async fn bad_requests_and_conflicts_are_invalid_and_missing_objects_not_found() {
    let s = setup().await;
    for status in [400, 409, 422] {
        s.fake.fail_next(1, status);
        assert_invalid(s.provider.create_experiment(&experiment("")).await);
    }
    s.fake.fail_next(1, 404);
    let error = s.provider.create_experiment(&experiment("")).await.unwrap_err();
    assert!(error.is_not_found(), "{error:?}");
}

#[tokio::test]
async fn timeouts_are_transient() {
    let s = setup_with(|c| c.request_timeout = Duration::from_millis(300)).await;
    s.fake.hang_next(1);
    let message = assert_transient(s.provider.create_experiment(&experiment("")).await);
    assert!(message.contains("timed out"), "{message}");
    s.provider.create_experiment(&experiment("")).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_server_is_transient() {
    // A loopback port that was just free and is closed now: dropping a std listener closes it synchronously.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut config = KfpConfig::new(NamespacedName::new("ops", "kfp"));
    config.rest_url = url;
    config.token_path = Path::new("/nonexistent/token").to_path_buf();
    let provider = KfpProvider::new(config).unwrap();
    assert_transient(provider.create_experiment(&experiment("")).await);
}

// --- configuration -----------------------------------------------------------------------------------------------

#[test]
fn configuration_from_provider_parameters() {
    let config = ProviderConfig::from_env_vars([
        ("PROVIDERNAME", "ops/kfp"),
        ("PIPELINEROOTSTORAGE", "gs://b"),
        ("PARAMETERS_RESTKFPAPIURL", "http://kfp:8888"),
        ("PARAMETERS_KFPNAMESPACE", "kf"),
        ("PARAMETERS_KFPMULTIUSERMODE", "true"),
        ("PARAMETERS_DEFAULTEXPERIMENT", "shared"),
        ("PARAMETERS_TOKENPATH", "/tok"),
        ("PARAMETERS_REQUESTTIMEOUTSECONDS", "7"),
        ("PARAMETERS_PAGESIZE", "50"),
    ])
    .unwrap();
    let kfp = KfpConfig::from_provider_config(&config).unwrap();
    assert_eq!(kfp.provider, NamespacedName::new("ops", "kfp"));
    assert_eq!(kfp.pipeline_root_storage, "gs://b");
    assert_eq!(kfp.rest_url, "http://kfp:8888");
    assert_eq!(kfp.kfp_namespace, "kf");
    assert!(kfp.multi_user);
    assert_eq!(kfp.default_experiment, "shared");
    assert_eq!(kfp.token_path, Path::new("/tok"));
    assert_eq!(kfp.request_timeout, Duration::from_secs(7));
    assert_eq!(kfp.page_size, 50);

    let defaults =
        KfpConfig::from_provider_config(&ProviderConfig::new(NamespacedName::new("ops", "kfp"))).unwrap();
    assert_eq!(defaults.rest_url, "http://ml-pipeline.kubeflow:8888");
    assert_eq!(defaults.kfp_namespace, "kubeflow");
    assert!(!defaults.multi_user);
    assert_eq!(defaults.token_path, Path::new("/var/run/secrets/kfp/token"));
    assert!(KfpProvider::factory(&config).is_ok());

    let mut bad = ProviderConfig::new(NamespacedName::new("ops", "kfp"));
    bad.parameters.insert("kfpmultiusermode".into(), json!("maybe"));
    assert!(KfpConfig::from_provider_config(&bad).unwrap_err().is_permanent());
    let mut bad_url = KfpConfig::new(NamespacedName::new("ops", "kfp"));
    bad_url.rest_url = "not a url".into();
    assert!(KfpProvider::new(bad_url).unwrap_err().is_permanent());
}
