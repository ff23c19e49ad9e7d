//! The Vertex AI provider against the in-process fake of Cloud Storage, aiplatform v1 and the metadata server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kfp_core::definitions::{PipelineDefinitionWrapper, RunDefinition, RunScheduleDefinition};
use kfp_core::provider::{ObjectIdentity, Provider, ProviderConfig, ProviderError};
use kfp_core::values::NamespacedName;
use kfp_providers::ResourceKind;
use kfp_providers::conformance::{self, ConformanceFixtures, Operation};
use kfp_providers::vai::fake::FakeVai;
use kfp_providers::vai::{Clock, VaiConfig, VaiProvider, job_labels, sanitise_label, uses_parameter_values};
use serde_json::{Value, json};

const BUCKET: &str = "pipelines";
const PARENT: &str = "projects/proj/locations/europe-west2";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
}

struct Setup {
    fake: FakeVai,
    provider: VaiProvider,
    clock: Arc<Mutex<DateTime<Utc>>>,
}

async fn setup_with(configure: impl FnOnce(&mut VaiConfig)) -> Setup {
    let fake = FakeVai::start().await.unwrap();
    let mut config = VaiConfig::new(
        NamespacedName::new("kfp-operator-system", "vai"),
        "proj",
        "europe-west2",
        BUCKET,
    );
    config.gcs_endpoint = fake.url().to_string();
    config.aiplatform_endpoint = fake.url().to_string();
    config.metadata_endpoint = Some(fake.url().to_string());
    config.pipeline_root_storage = "gs://root".into();
    config.job_service_account = "runner@proj.iam.gserviceaccount.com".into();
    config.request_timeout = Duration::from_secs(2);
    config.operation_poll_interval = Duration::from_millis(10);
    configure(&mut config);
    let clock = Arc::new(Mutex::new(now()));
    let shared = clock.clone();
    let clock_fn: Clock = Arc::new(move || *shared.lock().unwrap());
    let provider = VaiProvider::with_clock(config, clock_fn).unwrap();
    Setup {
        fake,
        provider,
        clock,
    }
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

fn spec(schema: &str) -> Value {
    json!({
        "pipelineInfo": {"name": "ns-p"},
        "root": {"dag": {"tasks": {}}},
        "schemaVersion": schema,
        "sdkVersion": "kfp-2.7.0"
    })
}

fn pipeline(version: &str, compiled: Value) -> PipelineDefinitionWrapper {
    PipelineDefinitionWrapper {
        pipeline_definition: json!({
            "name": "ns/p", "version": version, "image": "img:1",
            "framework": {"name": "tfx", "parameters": {}}
        }),
        compiled_pipeline: compiled,
    }
}

fn run() -> RunDefinition {
    serde_json::from_value(json!({
        "name": "ns/r", "version": "rv1", "pipelineName": "ns/p", "pipelineVersion": "v1",
        "runConfigurationName": "ns/rc",
        "parameters": {"a": "1"},
        "triggerIndicator": {"type": "onChangePipeline", "source": "p", "sourceNamespace": "ns"}
    }))
    .unwrap()
}

fn schedule(cron: &str) -> RunScheduleDefinition {
    serde_json::from_value(json!({
        "name": "ns/rs", "version": "sv", "pipelineName": "ns/p", "pipelineVersion": "v1",
        "runConfigurationName": "ns/rc",
        "parameters": {"a": "1"},
        "triggerIndicator": {"type": "schedule", "source": "rc", "sourceNamespace": "ns"},
        "schedule": {"cronExpression": cron}
    }))
    .unwrap()
}

fn only_job(fake: &FakeVai) -> Value {
    let jobs = fake.pipeline_jobs();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    jobs.into_values().next().unwrap()
}

#[tokio::test]
async fn pipelines_are_uploaded_to_gcs_and_deleted_by_prefix() {
    let s = setup().await;
    let id = s
        .provider
        .create_pipeline(&pipeline("v1", spec("2.1.0")))
        .await
        .unwrap();
    assert_eq!(id, "ns/p");
    assert_eq!(s.fake.object(BUCKET, "ns/p/v1"), Some(spec("2.1.0")));
    let id = s
        .provider
        .update_pipeline(&pipeline("v2", spec("2.0.0")), &id)
        .await
        .unwrap();
    assert_eq!(id, "ns/p");
    s.fake.put_object(BUCKET, "ns/other/v1", b"{}".to_vec());
    s.fake.put_object(BUCKET, "ns/p-2/v1", b"{}".to_vec());
    assert_eq!(
        s.fake.object_names(BUCKET),
        ["ns/other/v1", "ns/p-2/v1", "ns/p/v1", "ns/p/v2"]
    );
    s.provider.delete_pipeline(&id).await.unwrap();
    assert_eq!(s.fake.object_names(BUCKET), ["ns/other/v1", "ns/p-2/v1"]);
    // Gone already: still fine.
    s.provider.delete_pipeline(&id).await.unwrap();
    let upload = s
        .fake
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/upload/"))
        .unwrap();
    assert_eq!(upload.path, "/upload/storage/v1/b/pipelines/o");
    assert_eq!(upload.query["uploadType"], "media");
    assert_eq!(upload.query["name"], "ns/p/v1");
    assert!(upload.authorization.unwrap().starts_with("Bearer fake-token-"));
}

#[tokio::test]
async fn a_pipeline_without_a_version_is_invalid() {
    let s = setup().await;
    let err = s
        .provider
        .create_pipeline(&pipeline("", spec("2.1.0")))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn runs_submit_a_pipeline_job_read_back_from_gcs() {
    let s = setup_with(|c| c.psc_network_attachment = "projects/proj/regions/r/networkAttachments/a".into())
        .await;
    s.provider
        .create_pipeline(&pipeline("v1", spec("2.1.0")))
        .await
        .unwrap();
    let id = s.provider.create_run(&run()).await.unwrap();
    assert_eq!(id, "ns-r");
    let jobs = s.fake.pipeline_jobs();
    let (name, job) = jobs.iter().next().unwrap();
    assert_eq!(name, &format!("{PARENT}/pipelineJobs/ns-r-rv1"));
    assert_eq!(job["templateUri"], "gs://pipelines/ns/p/v1");
    assert_eq!(job["serviceAccount"], "runner@proj.iam.gserviceaccount.com");
    assert_eq!(job["pipelineSpec"], spec("2.1.0"));
    assert_eq!(job["runtimeConfig"]["gcsOutputDirectory"], "gs://root/ns/p");
    assert_eq!(job["runtimeConfig"]["parameterValues"], json!({"a": "1"}));
    assert!(job["runtimeConfig"].get("parameters").is_none());
    assert_eq!(
        job["pscInterfaceConfig"],
        json!({"networkAttachment": "projects/proj/regions/r/networkAttachments/a"})
    );
    assert_eq!(
        job["labels"],
        json!({
            "provider-name": "vai", "provider-namespace": "kfp-operator-system",
            "pipeline-name": "p", "pipeline-namespace": "ns", "pipeline-version": "v1",
            "runconfiguration-name": "rc", "runconfiguration-namespace": "ns",
            "run-name": "r", "run-namespace": "ns",
            "trigger-type": "onchangepipeline", "trigger-source": "p", "trigger-source-namespace": "ns",
            "schema_version": "2_1_0", "sdk_version": "kfp-2_7_0"
        })
    );
    // A repeat of the same run version finds the job there: same id, no second job.
    assert_eq!(s.provider.create_run(&run()).await.unwrap(), "ns-r");
    assert_eq!(s.fake.pipeline_jobs().len(), 1);
    s.provider.delete_run(&id).await.unwrap();
}

#[tokio::test]
async fn schema_2_0_puts_parameters_in_the_deprecated_string_values() {
    let s = setup().await;
    s.provider
        .create_pipeline(&pipeline("v1", spec("2.0.0")))
        .await
        .unwrap();
    s.provider.create_run(&run()).await.unwrap();
    let job = only_job(&s.fake);
    assert_eq!(
        job["runtimeConfig"]["parameters"],
        json!({"a": {"stringValue": "1"}})
    );
    assert!(job["runtimeConfig"].get("parameterValues").is_none());
    assert!(!uses_parameter_values("2.0.9"));
    assert!(uses_parameter_values("2.1.0"));
    assert!(uses_parameter_values("2.10"));
    assert!(uses_parameter_values("3"));
    assert!(!uses_parameter_values(""));
}

// --- typed parameters --------------------------------------------------------------------------------------------

/// `examples/pipelines` `add_pipeline` as the kfp SDK compiled it: `a`, `b`, `c` are NUMBER_DOUBLE with defaults.
fn add_pipeline() -> Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipelines/add_pipeline.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `spec(schema)` with one input of every type a run can set.
fn every_type(schema: &str) -> Value {
    let mut spec = spec(schema);
    spec["root"]["inputDefinitions"] = json!({"parameters": {
        "i": {"parameterType": "NUMBER_INTEGER"},
        "d": {"parameterType": "NUMBER_DOUBLE"},
        "b": {"parameterType": "BOOLEAN"},
        "l": {"parameterType": "LIST"},
        "s": {"parameterType": "STRUCT"},
        "t": {"parameterType": "STRING"}
    }});
    spec
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
        .create_pipeline(&pipeline("v1", add_pipeline()))
        .await
        .unwrap();
    let run = with_parameters(run(), json!({"a": "1.5", "b": "2", "c": ""}));
    s.provider.create_run(&run).await.unwrap();
    assert_eq!(
        only_job(&s.fake)["runtimeConfig"]["parameterValues"],
        json!({"a": 1.5, "b": 2.0}),
        "empty: c keeps its default"
    );
    let schedule = with_parameters(schedule("0 * * * *"), json!({"a": "-0.25"}));
    let id = s.provider.create_run_schedule(&schedule).await.unwrap();
    assert_eq!(
        s.fake.schedules()[&id]["createPipelineJobRequest"]["pipelineJob"]["runtimeConfig"]["parameterValues"],
        json!({"a": -0.25})
    );
}

#[tokio::test]
async fn jobs_and_schedules_send_every_parameter_with_its_declared_type() {
    let s = setup().await;
    s.provider
        .create_pipeline(&pipeline("v1", every_type("2.1.0")))
        .await
        .unwrap();
    let parameters = json!({
        "i": "42", "d": "0.5", "b": "false", "l": "[1, \"two\"]", "s": "{\"k\": {\"n\": 1}}", "t": "7",
        "undeclared": "8"
    });
    let expected = json!({
        "i": 42, "d": 0.5, "b": false, "l": [1, "two"], "s": {"k": {"n": 1}}, "t": "7", "undeclared": "8"
    });
    s.provider
        .create_run(&with_parameters(run(), parameters.clone()))
        .await
        .unwrap();
    assert_eq!(only_job(&s.fake)["runtimeConfig"]["parameterValues"], expected);
    let id = s
        .provider
        .create_run_schedule(&with_parameters(schedule("0 * * * *"), parameters))
        .await
        .unwrap();
    assert_eq!(
        s.fake.schedules()[&id]["createPipelineJobRequest"]["pipelineJob"]["runtimeConfig"]["parameterValues"],
        expected
    );
}

#[tokio::test]
async fn schema_2_0_sends_int_and_double_values_as_declared() {
    let s = setup().await;
    let mut legacy = spec("2.0.0");
    legacy["root"]["inputDefinitions"] = json!({"parameters": {
        "n": {"type": "INT"}, "x": {"type": "DOUBLE"}, "t": {"type": "STRING"}
    }});
    s.provider.create_pipeline(&pipeline("v1", legacy)).await.unwrap();
    let run = with_parameters(run(), json!({"n": "3", "x": "2", "t": "4"}));
    s.provider.create_run(&run).await.unwrap();
    assert_eq!(
        only_job(&s.fake)["runtimeConfig"]["parameters"],
        json!({"n": {"intValue": "3"}, "x": {"doubleValue": 2.0}, "t": {"stringValue": "4"}})
    );
}

#[tokio::test]
async fn a_value_that_cannot_take_its_type_fails_before_any_job_is_created() {
    let s = setup().await;
    s.provider
        .create_pipeline(&pipeline("v1", every_type("2.1.0")))
        .await
        .unwrap();
    let error = s
        .provider
        .create_run(&with_parameters(run(), json!({"b": "yes"})))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ProviderError::Invalid(
            "run parameter \"b\" has the value \"yes\", which is not a BOOLEAN as the compiled pipeline declares: \
             expected true or false"
                .into()
        )
    );
    let error = s
        .provider
        .create_run_schedule(&with_parameters(schedule("0 * * * *"), json!({"s": "[1]"})))
        .await
        .unwrap_err();
    assert!(
        error.is_permanent() && error.message().contains("\"s\"") && error.message().contains("STRUCT"),
        "{error:?}"
    );
    assert!(s.fake.pipeline_jobs().is_empty() && s.fake.schedules().is_empty());
}

#[tokio::test]
async fn the_fake_refuses_a_value_of_another_type_than_declared() {
    let s = setup().await;
    s.fake.accept_token("t");
    let client = reqwest::Client::new();
    let post = |parameter_values: Value| {
        client
            .post(format!("{}/v1/{PARENT}/pipelineJobs", s.fake.url()))
            .bearer_auth("t")
            .json(&json!({"pipelineSpec": add_pipeline(), "runtimeConfig": {"parameterValues": parameter_values}}))
            .send()
    };
    let answer = post(json!({"a": "1.5"})).await.unwrap();
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("runtime parameter \"a\" does not match its type NUMBER_DOUBLE"),
        "{body}"
    );
    let answer = post(json!({"a": 1.5, "b": 2})).await.unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
}

#[tokio::test]
async fn tfx_wrappers_are_unwrapped_and_their_labels_kept() {
    let s = setup().await;
    let wrapper = json!({"displayName": "x", "labels": {"tfx_version": "1.14.0", "Team": "ML Ops"}, "pipelineSpec": spec("2.0.0")});
    s.provider
        .create_pipeline(&pipeline("v1", wrapper))
        .await
        .unwrap();
    s.provider.create_run(&run()).await.unwrap();
    let job = only_job(&s.fake);
    assert_eq!(job["pipelineSpec"], spec("2.0.0"));
    assert_eq!(job["labels"]["tfx_version"], "1140");
    assert_eq!(job["labels"]["team"], "mlops");
}

#[test]
fn pipeline_job_ids_fit_vertex_ai() {
    use kfp_providers::vai::pipeline_job_id;
    assert_eq!(pipeline_job_id("NS-Run_1-v1.2"), "ns-run-1-v1-2");
    assert_eq!(pipeline_job_id(&"a".repeat(200)).len(), 128);
}

#[test]
fn labels_are_sanitised() {
    assert_eq!(sanitise_label("My.Run/Name_1-x", false), "myrunname_1-x");
    assert_eq!(sanitise_label("V1.2.3+build", true), "v1_2_3_build");
    assert_eq!(sanitise_label(&"a".repeat(100), false).len(), 63);
    assert_eq!(sanitise_label(&"Ä.".repeat(100), true).len(), 63);
    let generated = [
        ("run-name".to_string(), "Run.One".to_string()),
        ("pipeline-version".to_string(), "1.2.3".to_string()),
    ]
    .into();
    let labels = job_labels(
        &generated,
        &json!({}),
        &json!({"schemaVersion": "2.1.0", "sdkVersion": "KFP 2.7"}),
    );
    assert_eq!(
        Value::Object(labels),
        json!({"run-name": "runone", "pipeline-version": "1_2_3", "schema_version": "2_1_0", "sdk_version": "kfp_2_7"})
    );
}

#[tokio::test]
async fn a_run_of_a_pipeline_version_never_uploaded_is_not_found() {
    let s = setup().await;
    let err = s.provider.create_run(&run()).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(s.fake.pipeline_jobs().is_empty());
}

#[tokio::test]
async fn a_runs_service_account_and_labels_reach_its_job_and_its_schedules_jobs() {
    // docs/platform-features.md: spec.serviceAccount wins over vaiJobServiceAccount; the operator's labels win a clash.
    let s = setup().await;
    s.provider
        .create_pipeline(&pipeline("v1", spec("2.1.0")))
        .await
        .unwrap();
    let options = |mut value: Value| {
        value["serviceAccount"] = json!("trainer@proj.iam.gserviceaccount.com");
        value["labels"] = json!({"team": "ml", "run-name": "mine"});
        value
    };
    let definition: RunDefinition =
        serde_json::from_value(options(serde_json::to_value(run()).unwrap())).unwrap();
    s.provider.create_run(&definition).await.unwrap();
    let job = only_job(&s.fake);
    assert_eq!(job["serviceAccount"], "trainer@proj.iam.gserviceaccount.com");
    assert_eq!(job["labels"]["team"], "ml");
    assert_eq!(job["labels"]["run-name"], "r");
    let schedule_definition: RunScheduleDefinition =
        serde_json::from_value(options(serde_json::to_value(schedule("0 * * * *")).unwrap())).unwrap();
    let id = s
        .provider
        .create_run_schedule(&schedule_definition)
        .await
        .unwrap();
    let scheduled = &s.fake.schedules()[&id]["createPipelineJobRequest"]["pipelineJob"];
    assert_eq!(
        scheduled["serviceAccount"],
        "trainer@proj.iam.gserviceaccount.com"
    );
    assert_eq!(scheduled["labels"]["team"], "ml");

    // Labels Vertex AI would refuse fail before any job, naming the label; nothing is retried.
    for (labels, message) in [
        (
            json!({"Team": "ml"}),
            "spec.labels: the key \"Team\" is not a Vertex AI label key",
        ),
        (
            json!({"team": "ML Ops"}),
            "spec.labels.team: the value \"ML Ops\" is not a Vertex AI label value",
        ),
        (
            json!({"team": "x".repeat(64)}),
            "is not a Vertex AI label value (at most 63",
        ),
    ] {
        let mut value = serde_json::to_value(run()).unwrap();
        value["name"] = json!("ns/other");
        value["labels"] = labels;
        let error = s
            .provider
            .create_run(&serde_json::from_value(value).unwrap())
            .await
            .unwrap_err();
        assert!(error.is_permanent(), "{error}");
        assert!(error.to_string().contains(message), "{error}");
    }
    let too_many: serde_json::Map<String, Value> = (0..60).map(|i| (format!("l{i}"), json!("v"))).collect();
    let mut value = serde_json::to_value(run()).unwrap();
    value["name"] = json!("ns/many");
    value["labels"] = Value::Object(too_many);
    let error = s
        .provider
        .create_run(&serde_json::from_value(value).unwrap())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("more than the 64 Vertex AI allows"),
        "{error}"
    );
    assert_eq!(s.fake.pipeline_jobs().len(), 1);
}

#[tokio::test]
async fn deleting_a_run_cancels_its_jobs_still_going_and_no_other_runs_jobs() {
    // docs/platform-features.md: the job of ns/r (any version) still going is cancelled; finished ones and the
    // job of ns/r-2, whose id shares the prefix, are left alone.
    let s = setup().await;
    s.provider
        .create_pipeline(&pipeline("v1", spec("2.1.0")))
        .await
        .unwrap();
    let with = |name: &str, version: &str| {
        let mut value = serde_json::to_value(run()).unwrap();
        value["name"] = json!(name);
        value["version"] = json!(version);
        serde_json::from_value::<RunDefinition>(value).unwrap()
    };
    assert_eq!(s.provider.create_run(&with("ns/r", "rv1")).await.unwrap(), "ns-r");
    s.provider.create_run(&with("ns/r", "rv2")).await.unwrap();
    s.provider.create_run(&with("ns/r-2", "rv1")).await.unwrap();
    let job = |id: &str| format!("{PARENT}/pipelineJobs/{id}");
    s.fake
        .update_pipeline_job(&job("ns-r-rv1"), json!({"state": "PIPELINE_STATE_RUNNING"}));
    s.fake
        .update_pipeline_job(&job("ns-r-rv2"), json!({"state": "PIPELINE_STATE_SUCCEEDED"}));
    s.fake
        .update_pipeline_job(&job("ns-r-2-rv1"), json!({"state": "PIPELINE_STATE_RUNNING"}));

    s.provider.delete_run("ns-r").await.unwrap();
    let state = |id: &str| s.fake.pipeline_jobs()[&job(id)]["state"].clone();
    assert_eq!(state("ns-r-rv1"), "PIPELINE_STATE_CANCELLING");
    assert_eq!(state("ns-r-rv2"), "PIPELINE_STATE_SUCCEEDED");
    assert_eq!(state("ns-r-2-rv1"), "PIPELINE_STATE_RUNNING");
    let cancels: Vec<String> = s
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(":cancel"))
        .map(|r| r.path)
        .collect();
    assert_eq!(cancels, vec![format!("/v1/{}:cancel", job("ns-r-rv1"))]);
    // Again (cancelling), and for a run with no job: nothing to do.
    s.provider.delete_run("ns-r").await.unwrap();
    s.provider.delete_run("ns-never").await.unwrap();

    // A cancel refused while the job still runs is an error (the operator retries the delete).
    s.fake.answer_next_matching(
        "POST",
        ":cancel",
        400,
        json!({"error": {"code": 400, "message": "no", "status": "FAILED_PRECONDITION"}}),
    );
    assert!(s.provider.delete_run("ns-r-2").await.is_err());
    assert_eq!(state("ns-r-2-rv1"), "PIPELINE_STATE_RUNNING");
    s.provider.delete_run("ns-r-2").await.unwrap();
    assert_eq!(state("ns-r-2-rv1"), "PIPELINE_STATE_CANCELLING");
}

#[tokio::test]
async fn run_schedules_are_created_with_five_field_cron() {
    let s = setup_with(|c| c.max_concurrent_run_count = 3).await;
    s.provider
        .create_pipeline(&pipeline("v1", spec("2.1.0")))
        .await
        .unwrap();
    let mut definition = schedule("0 30 2 * * *");
    definition.schedule.start_time = Some(serde_json::from_value(json!("2025-01-01T00:00:00Z")).unwrap());
    definition.schedule.end_time = Some(serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap());
    let id = s.provider.create_run_schedule(&definition).await.unwrap();
    assert!(id.starts_with(&format!("{PARENT}/schedules/")), "{id}");
    let stored = &s.fake.schedules()[&id];
    assert_eq!(stored["cron"], "30 2 * * *");
    assert_eq!(stored["displayName"], "rc-ns-rs");
    assert_eq!(stored["maxConcurrentRunCount"], "3");
    assert_eq!(stored["allowQueueing"], true);
    // The start is in the past of the injected clock: left out. The end is kept.
    assert!(stored.get("startTime").is_none(), "{stored}");
    assert_eq!(stored["endTime"], "2026-01-01T00:00:00Z");
    let request = &stored["createPipelineJobRequest"];
    assert_eq!(request["parent"], PARENT);
    assert!(request.get("pipelineJobId").is_none());
    assert_eq!(request["pipelineJob"]["templateUri"], "gs://pipelines/ns/p/v1");
    assert_eq!(request["pipelineJob"]["labels"]["trigger-type"], "schedule");
    assert!(request["pipelineJob"]["labels"].get("run-name").is_none());

    // A start in the future of the clock is sent.
    *s.clock.lock().unwrap() = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
    let id = s.provider.create_run_schedule(&definition).await.unwrap();
    assert_eq!(s.fake.schedules()[&id]["startTime"], "2025-01-01T00:00:00Z");
}

#[tokio::test]
async fn an_invalid_cron_is_invalid() {
    let s = setup().await;
    s.provider
        .create_pipeline(&pipeline("v1", spec("2.1.0")))
        .await
        .unwrap();
    let err = s
        .provider
        .create_run_schedule(&schedule("not a cron"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn decision_9_schedule_update_patches_the_given_id() {
    let s = setup().await;
    s.provider
        .create_pipeline(&pipeline("v1", spec("2.1.0")))
        .await
        .unwrap();
    let first = s
        .provider
        .create_run_schedule(&schedule("0 1 * * *"))
        .await
        .unwrap();
    let second = s
        .provider
        .create_run_schedule(&schedule("0 2 * * *"))
        .await
        .unwrap();
    let updated = s
        .provider
        .update_run_schedule(&schedule("0 5 * * *"), &first)
        .await
        .unwrap();
    assert_eq!(updated, first);
    let schedules = s.fake.schedules();
    assert_eq!(schedules[&first]["cron"], "0 5 * * *");
    assert_eq!(schedules[&second]["cron"], "0 2 * * *");
    let patch = s
        .fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(patch.path, format!("/v1/{first}"));
    let mask: Vec<&str> = patch.query["updateMask"].split(',').collect();
    assert!(
        mask.contains(&"cron") && mask.contains(&"createPipelineJobRequest"),
        "{mask:?}"
    );
    // Updating a schedule that is gone is NotFound (the operator then recreates it).
    s.provider.delete_run_schedule(&first).await.unwrap();
    let err = s
        .provider
        .update_run_schedule(&schedule("0 5 * * *"), &first)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn schedule_deletes_wait_for_the_operation_and_ignore_not_found() {
    let s = setup().await;
    s.provider
        .create_pipeline(&pipeline("v1", spec("2.1.0")))
        .await
        .unwrap();
    let id = s
        .provider
        .create_run_schedule(&schedule("0 1 * * *"))
        .await
        .unwrap();
    s.provider.delete_run_schedule(&id).await.unwrap();
    assert!(s.fake.schedules().is_empty());
    assert!(
        s.fake
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path.contains("/operations/"))
    );
    s.provider.delete_run_schedule(&id).await.unwrap();
}

#[tokio::test]
async fn an_operation_that_never_finishes_is_transient() {
    let s = setup_with(|c| c.operation_timeout = Duration::from_millis(200)).await;
    s.provider
        .create_pipeline(&pipeline("v1", spec("2.1.0")))
        .await
        .unwrap();
    let id = s
        .provider
        .create_run_schedule(&schedule("0 1 * * *"))
        .await
        .unwrap();
    s.fake.hold_operations(true);
    let err = s.provider.delete_run_schedule(&id).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Transient(m) if m.contains("did not finish")),
        "{err:?}"
    );
    let polls = s
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.contains("/operations/"))
        .count();
    assert!(polls >= 2, "polled {polls} times");
}

#[tokio::test]
async fn experiments_are_unimplemented() {
    let s = setup().await;
    let experiment = serde_json::from_value(json!({"name": "ns/e", "version": "v"})).unwrap();
    assert!(matches!(
        s.provider.create_experiment(&experiment).await,
        Err(ProviderError::Unimplemented(_))
    ));
    assert!(matches!(
        s.provider.update_experiment(&experiment, "x").await,
        Err(ProviderError::Unimplemented(_))
    ));
    assert!(matches!(
        s.provider.delete_experiment("x").await,
        Err(ProviderError::Unimplemented(_))
    ));
}

// --- find (exactly once) ------------------------------------------------------------------------------------------

fn identity(kind: ResourceKind, name: &str, version: &str, created: Option<&str>) -> ObjectIdentity {
    ObjectIdentity::new(
        kind,
        name.parse().unwrap(),
        version,
        created.map(|t| Time(t.parse().unwrap())),
    )
}

#[tokio::test]
async fn find_answers_the_pipeline_of_any_uploaded_version() {
    let s = setup().await;
    let find = async |name: &str| {
        s.provider
            .find(&identity(ResourceKind::Pipeline, name, "v9", None))
            .await
    };
    assert_eq!(find("ns/p").await, Ok(None));
    let id = s
        .provider
        .create_pipeline(&pipeline("v1", spec("2.1.0")))
        .await
        .unwrap();
    s.provider
        .create_pipeline(&pipeline("v2", spec("2.1.0")))
        .await
        .unwrap();
    assert_eq!(find("ns/p").await, Ok(Some(id)));
    // Another pipeline whose name starts the same is not it.
    assert_eq!(find("ns/pi").await, Ok(None));
    assert_eq!(find("n/sp").await, Ok(None));
    let lookup = s.fake.requests().last().unwrap().clone();
    assert_eq!(lookup.method, "GET");
    assert_eq!(lookup.query["prefix"], "n/sp/");
    assert_eq!(lookup.query["maxResults"], "1");
    s.provider.delete_pipeline("ns/p").await.unwrap();
    assert_eq!(find("ns/p").await, Ok(None));
}

#[tokio::test]
async fn find_answers_the_job_of_the_run_version_created_in_time() {
    let s = setup().await;
    s.provider
        .create_pipeline(&pipeline("v1", spec("2.1.0")))
        .await
        .unwrap();
    let id = s.provider.create_run(&run()).await.unwrap();
    s.fake.update_pipeline_job(
        &format!("{PARENT}/pipelineJobs/ns-r-rv1"),
        json!({"createTime": "2026-01-01T10:00:05.250Z"}),
    );
    let jobs_before = s.fake.pipeline_jobs();
    let find = async |version: &str, created: Option<&str>| {
        s.provider
            .find(&identity(ResourceKind::Run, "ns/r", version, created))
            .await
    };
    assert_eq!(find("rv1", None).await, Ok(Some(id.clone())));
    assert_eq!(
        find("rv1", Some("2026-01-01T10:00:00Z")).await,
        Ok(Some(id.clone()))
    );
    // Whole seconds: a resource created later in the same second still owns it.
    assert_eq!(
        find("rv1", Some("2026-01-01T10:00:05.900Z")).await,
        Ok(Some(id.clone()))
    );
    assert_eq!(find("rv1", Some("2026-01-01T10:00:06Z")).await, Ok(None));
    // Another version's job is another run.
    assert_eq!(find("rv2", None).await, Ok(None));
    let lookup = s.fake.requests().last().unwrap().clone();
    assert_eq!(
        (lookup.method.as_str(), lookup.path.as_str()),
        ("GET", format!("/v1/{PARENT}/pipelineJobs/ns-r-rv2").as_str())
    );
    assert_eq!(s.fake.pipeline_jobs(), jobs_before, "find changes nothing");
    // Failures other than 404 are the provider's errors.
    s.fake.fail_next(503);
    assert!(matches!(
        find("rv1", None).await,
        Err(ProviderError::Transient(_))
    ));
}

#[tokio::test]
async fn find_answers_the_newest_schedule_of_the_display_name() {
    let s = setup().await;
    s.provider
        .create_pipeline(&pipeline("v1", spec("2.1.0")))
        .await
        .unwrap();
    let find = async |name: &str| {
        s.provider
            .find(&identity(ResourceKind::RunSchedule, name, "sv", None))
            .await
    };
    assert_eq!(find("ns/rs").await, Ok(None));
    let older = s
        .provider
        .create_run_schedule(&schedule("*/5 * * * *"))
        .await
        .unwrap();
    let newer = s
        .provider
        .create_run_schedule(&schedule("*/5 * * * *"))
        .await
        .unwrap();
    s.fake
        .update_schedule(&older, json!({"createTime": "2026-01-01T10:00:09Z"}));
    s.fake
        .update_schedule(&newer, json!({"createTime": "2026-01-01T10:00:10Z"}));
    let mut other = schedule("*/5 * * * *");
    other.name = "ns/rs-other".parse().unwrap();
    let other_id = s.provider.create_run_schedule(&other).await.unwrap();
    s.fake
        .update_schedule(&other_id, json!({"createTime": "2026-01-01T11:00:00Z"}));
    assert_eq!(find("ns/rs").await, Ok(Some(newer.clone())));
    assert_eq!(find("ns/rs-other").await, Ok(Some(other_id)));
    assert_eq!(find("ns/r").await, Ok(None));
    let lookup = s.fake.requests().last().unwrap().clone();
    assert_eq!(lookup.path, format!("/v1/{PARENT}/schedules"));
    assert_eq!(lookup.query["filter"], "display_name=\"rc-ns-r\"");
    s.provider.delete_run_schedule(&newer).await.unwrap();
    assert_eq!(find("ns/rs").await, Ok(Some(older)));
}

#[tokio::test]
async fn find_of_experiments_is_unimplemented() {
    let s = setup().await;
    let found = s
        .provider
        .find(&identity(ResourceKind::Experiment, "ns/e", "v", None))
        .await;
    assert!(matches!(found, Err(ProviderError::Unimplemented(_))), "{found:?}");
    assert!(s.fake.requests().is_empty());
}

/// `schedules.list` `filter` as the v1 reference documents it for `display_name`: `=`, `!=`, `:` with `*`; what
/// the fake does not implement is refused, not answered wrongly.
#[tokio::test]
async fn the_fake_filters_schedules_by_display_name_as_documented() {
    let s = setup().await;
    s.provider
        .create_pipeline(&pipeline("v1", spec("2.1.0")))
        .await
        .unwrap();
    for name in ["ns/a", "ns/ab", "other/a"] {
        let mut definition = schedule("*/5 * * * *");
        definition.name = name.parse().unwrap();
        s.provider.create_run_schedule(&definition).await.unwrap();
    }
    let token = s.fake.requests()[0].authorization.clone().unwrap();
    let list = |filter: &str| {
        let url = format!("{}/v1/{PARENT}/schedules", s.fake.url());
        let (filter, token) = (filter.to_string(), token.clone());
        async move {
            let answer = reqwest::Client::new()
                .get(url)
                .query(&[("filter", filter)])
                .header("Authorization", token)
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            let body: Value = answer.json().await.unwrap();
            let mut names: Vec<String> = body["schedules"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|s| s["displayName"].as_str().unwrap().to_string())
                .collect();
            names.sort();
            (status, names)
        }
    };
    assert_eq!(
        list("display_name=\"rc-ns-a\"").await,
        (200, vec!["rc-ns-a".to_string()])
    );
    assert_eq!(
        list("display_name = \"rc-ns-a\"").await,
        (200, vec!["rc-ns-a".to_string()])
    );
    assert_eq!(
        list("display_name!=\"rc-ns-a\"").await,
        (200, vec!["rc-ns-ab".to_string(), "rc-other-a".to_string()])
    );
    assert_eq!(
        list("display_name:\"rc-ns-*\"").await,
        (200, vec!["rc-ns-a".to_string(), "rc-ns-ab".to_string()])
    );
    assert_eq!(list("display_name=\"rc-none\"").await, (200, vec![]));
    for refused in [
        "state=\"ACTIVE\"",
        "display_name=rc-ns-a",
        "display_name=\"rc-ns-a\" AND state=\"ACTIVE\"",
        "create_time>\"2021-05-18T00:00:00Z\"",
    ] {
        assert_eq!(list(refused).await.0, 400, "{refused}");
    }
}

#[tokio::test]
async fn server_errors_are_transient_and_bad_requests_invalid() {
    let s = setup().await;
    for (status, transient) in [(500, true), (503, true), (429, true), (400, false)] {
        s.fake.fail_next(status);
        let err = s
            .provider
            .create_pipeline(&pipeline("v1", spec("2.1.0")))
            .await
            .unwrap_err();
        assert_eq!(
            matches!(err, ProviderError::Transient(_)),
            transient,
            "{status}: {err:?}"
        );
        assert_eq!(err.is_permanent(), !transient, "{status}: {err:?}");
        assert!(err.message().contains("injected failure"), "{err:?}");
    }
    // The fake's own validation: an unknown field is a 400 with Google's error body.
    s.provider
        .create_pipeline(&pipeline("v1", spec("2.1.0")))
        .await
        .unwrap();
    let err = s
        .provider
        .create_run_schedule(&schedule("0 1 * * * * *"))
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
}

#[tokio::test]
async fn timeouts_and_unreachable_servers_are_transient() {
    let s = setup_with(|c| c.request_timeout = Duration::from_millis(300)).await;
    s.fake.hang_next(1);
    let err = s
        .provider
        .create_pipeline(&pipeline("v1", spec("2.1.0")))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Transient(m) if m.contains("timed out")),
        "{err:?}"
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let s = setup_with(|c| c.gcs_endpoint = closed).await;
    let err = s
        .provider
        .create_pipeline(&pipeline("v1", spec("2.1.0")))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
}

#[test]
fn config_from_provider_parameters() {
    let mut config = ProviderConfig::new(NamespacedName::new("ops", "vai"));
    config.pipeline_root_storage = "gs://root".into();
    for (k, v) in [
        ("vaiproject", json!("proj")),
        ("vailocation", json!("europe-west2")),
        ("pipelinebucket", json!("bucket")),
        ("vaijobserviceaccount", json!("sa@proj")),
        ("maxconcurrentruncount", json!(0)),
        ("gcsendpoint", json!("http://gcs:4443")),
    ] {
        config.parameters.insert(k.into(), v);
    }
    let vai = VaiConfig::from_provider_config(&config).unwrap();
    assert_eq!(vai.project, "proj");
    assert_eq!(
        vai.aiplatform_endpoint,
        "https://europe-west2-aiplatform.googleapis.com"
    );
    assert_eq!(vai.gcs_endpoint, "http://gcs:4443");
    assert_eq!(vai.max_concurrent_run_count, 10);
    assert_eq!(vai.job_service_account, "sa@proj");
    // No source named: Application Default Credentials.
    assert_eq!(
        (&vai.access_token, &vai.credentials_file, &vai.metadata_endpoint),
        (&None, &None, &None)
    );
    config.parameters.insert(
        "credentialsfile".into(),
        json!("/var/run/secrets/google/credentials.json"),
    );
    config
        .parameters
        .insert("metadataendpoint".into(), json!("http://127.0.0.1:8080"));
    let vai = VaiConfig::from_provider_config(&config).unwrap();
    assert_eq!(
        vai.credentials_file.as_deref(),
        Some(std::path::Path::new("/var/run/secrets/google/credentials.json"))
    );
    assert_eq!(vai.metadata_endpoint.as_deref(), Some("http://127.0.0.1:8080"));
    config.parameters.insert("maxconcurrentruncount".into(), json!(4));
    assert_eq!(
        VaiConfig::from_provider_config(&config)
            .unwrap()
            .max_concurrent_run_count,
        4
    );
    config.parameters.remove("vaiproject");
    let err = VaiConfig::from_provider_config(&config).unwrap_err();
    assert_eq!(err, ProviderError::invalid("parameter vaiProject is required"));
    assert!(kfp_providers::default_registry().type_names().any(|t| t == "vai"));
}

/// The kit's fixtures for Vertex AI: runs read their pipeline back from Cloud Storage, so the kit uploads it first
/// (`prepare_dependencies`); experiments are not implemented.
fn conformance_fixtures() -> ConformanceFixtures {
    let mut fixtures = ConformanceFixtures {
        prepare_dependencies: true,
        unsupported: vec![ResourceKind::Experiment],
        find_unsupported: vec![ResourceKind::Experiment],
        ..Default::default()
    };
    let mut bad = fixtures.run_schedule.clone();
    bad.schedule.cron_expression = "every minute".into();
    fixtures.invalid = vec![
        Operation::CreateRunSchedule(bad),
        Operation::CreateExperiment(fixtures.experiment.clone()),
    ];
    fixtures
}

#[tokio::test]
async fn conformance_kit_passes() {
    let s = setup().await;
    let report = conformance::run_all(Arc::new(s.provider), &conformance_fixtures()).await;
    assert!(report.passed(), "{report}");
    assert!(
        s.fake.object_names(BUCKET).is_empty(),
        "the kit cleans up what it uploaded"
    );
}

// --- events ----------------------------------------------------------------------------------------------------

mod events {
    use super::*;
    use kfp_core::event::RunCompletionStatus;
    use kfp_core::provider::{DeliveryOutcome, EventSource};
    use kfp_providers::vai::events::VaiEventSource;

    async fn source(fake: &FakeVai) -> VaiEventSource {
        let mut config = VaiConfig::new(
            NamespacedName::new("kfp-operator-system", "vai"),
            "proj",
            "europe-west2",
            BUCKET,
        );
        config.aiplatform_endpoint = fake.url().to_string();
        config.pubsub_endpoint = fake.url().to_string();
        config.metadata_endpoint = Some(fake.url().to_string());
        config.events_subscription = "pipeline-events".into();
        let mut source = VaiEventSource::new(config).unwrap();
        source.pull_interval = Duration::from_millis(10);
        // A pull cancelled by the tests' timeouts leaves its messages outstanding until the deadline, as in Pub/Sub.
        fake.set_ack_deadline(Duration::from_millis(100));
        source
    }

    async fn next(source: &mut VaiEventSource) -> Option<kfp_core::provider::EventDelivery> {
        tokio::time::timeout(Duration::from_millis(300), source.next_event())
            .await
            .ok()
            .map(|r| r.unwrap().unwrap())
    }

    /// A submitted run whose job the backend has moved to `state`.
    async fn finished_run(s: &Setup, state: &str) -> String {
        s.provider
            .create_pipeline(&pipeline("v1", spec("2.1.0")))
            .await
            .unwrap();
        s.provider.create_run(&run()).await.unwrap();
        let name = format!("{PARENT}/pipelineJobs/ns-r-rv1");
        s.fake.update_pipeline_job(
            &name,
            json!({
                "state": state,
                "startTime": "2025-06-01T12:00:00Z",
                "endTime": "2025-06-01T12:30:00Z",
                "jobDetail": {"taskDetails": [{
                    "taskName": "trainer",
                    "outputs": {"model": {"artifacts": [{"uri": "gs://root/model", "metadata": {"accuracy": 0.9}}]}}
                }]}
            }),
        );
        "ns-r-rv1".to_string()
    }

    #[tokio::test]
    async fn a_succeeded_job_is_yielded_and_acked_when_delivered() {
        let s = setup().await;
        let job = finished_run(&s, "PIPELINE_STATE_SUCCEEDED").await;
        let ack = s.fake.publish_log_entry(Some(&job));
        let mut source = source(&s.fake).await;
        let delivery = next(&mut source).await.expect("an event");
        let event = &delivery.event;
        assert_eq!(event.status, RunCompletionStatus::Succeeded);
        assert_eq!(event.run_id, "ns-r-rv1");
        assert_eq!(event.pipeline_name, NamespacedName::new("ns", "p"));
        assert_eq!(event.run_name, Some(NamespacedName::new("ns", "r")));
        assert_eq!(
            event.run_configuration_name,
            Some(NamespacedName::new("ns", "rc"))
        );
        assert_eq!(event.provider, NamespacedName::new("kfp-operator-system", "vai"));
        assert!(event.run_end_time.is_some());
        assert_eq!(
            serde_json::to_value(&event.pipeline_components).unwrap(),
            json!([{"name": "trainer", "componentArtifacts": [{"name": "model", "artifacts": [{"uri": "gs://root/model", "metadata": {"accuracy": 0.9}}]}]}])
        );
        assert_eq!(delivery.receipt.0, ack);
        source
            .settle(delivery.receipt, DeliveryOutcome::Delivered)
            .await
            .unwrap();
        assert_eq!(s.fake.acked(), [ack]);
        assert!(next(&mut source).await.is_none());
    }

    #[tokio::test]
    async fn failed_and_cancelled_jobs_are_failed_runs_and_410_is_acked() {
        for state in ["PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"] {
            let s = setup().await;
            let job = finished_run(&s, state).await;
            let ack = s.fake.publish_log_entry(Some(&job));
            let mut source = source(&s.fake).await;
            let delivery = next(&mut source).await.expect("an event");
            assert_eq!(delivery.event.status, RunCompletionStatus::Failed, "{state}");
            source
                .settle(delivery.receipt, DeliveryOutcome::from_http_status(410))
                .await
                .unwrap();
            assert_eq!(s.fake.acked(), [ack]);
        }
    }

    #[tokio::test]
    async fn an_undelivered_event_is_nacked_and_comes_back() {
        let s = setup().await;
        let job = finished_run(&s, "PIPELINE_STATE_SUCCEEDED").await;
        let ack = s.fake.publish_log_entry(Some(&job));
        let mut source = source(&s.fake).await;
        let delivery = next(&mut source).await.expect("an event");
        source
            .settle(delivery.receipt, DeliveryOutcome::from_http_status(500))
            .await
            .unwrap();
        assert!(s.fake.acked().is_empty());
        assert_eq!(s.fake.available_messages(), std::slice::from_ref(&ack));
        let again = next(&mut source).await.expect("redelivered");
        assert_eq!(again.receipt.0, ack);
    }

    #[tokio::test]
    async fn messages_without_a_job_id_are_nacked_and_missing_jobs_acked() {
        let s = setup().await;
        let no_id = s.fake.publish_log_entry(None);
        let missing = s.fake.publish_log_entry(Some("no-such-job"));
        let mut source = source(&s.fake).await;
        // Neither yields an event; the first keeps coming back (nacked), the second is dropped (acked).
        assert!(next(&mut source).await.is_none());
        assert_eq!(s.fake.acked(), [missing]);
        assert!(
            s.fake
                .requests()
                .iter()
                .filter(|r| r.path.ends_with(":modifyAckDeadline"))
                .all(|r| r.body.as_ref().unwrap()["ackIds"] == json!([no_id.clone()]))
        );
    }

    #[tokio::test]
    async fn an_unfinished_job_is_nacked() {
        let s = setup().await;
        let job = finished_run(&s, "PIPELINE_STATE_RUNNING").await;
        let ack = s.fake.publish_log_entry(Some(&job));
        let mut source = source(&s.fake).await;
        assert!(next(&mut source).await.is_none());
        assert!(s.fake.acked().is_empty());
        // Once it finishes, the redelivered message yields it.
        s.fake.update_pipeline_job(
            &format!("{PARENT}/pipelineJobs/{job}"),
            json!({"state": "PIPELINE_STATE_SUCCEEDED"}),
        );
        let delivery = next(&mut source).await.expect("an event");
        assert_eq!(delivery.receipt.0, ack);
    }

    #[tokio::test]
    async fn a_failed_job_read_is_an_error_and_the_message_is_nacked() {
        let s = setup().await;
        let job = finished_run(&s, "PIPELINE_STATE_SUCCEEDED").await;
        let ack = s.fake.publish_log_entry(Some(&job));
        let mut source = source(&s.fake).await;
        s.fake.fail_next_matching("/pipelineJobs/", 503);
        let err = source.next_event().await.unwrap_err();
        assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
        assert_eq!(s.fake.available_messages(), std::slice::from_ref(&ack));
        let delivery = next(&mut source).await.expect("an event after the error");
        assert_eq!(delivery.receipt.0, ack);
    }

    #[test]
    fn the_event_source_needs_a_subscription() {
        let config = VaiConfig::new(NamespacedName::new("ops", "vai"), "p", "l", "b");
        let err = VaiEventSource::new(config).err().unwrap();
        assert!(err.is_permanent(), "{err:?}");
    }
}
