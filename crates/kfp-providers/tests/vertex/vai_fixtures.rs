//! Holds the Vertex AI client's requests, its parsing of answers and the fake's answers against the examples in
//! `tests/fixtures/vai/` (written from the official Cloud Storage JSON API, Vertex AI REST v1 and Pub/Sub v1
//! references and the googleapis protos; see the README there).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::{TimeZone, Utc};
use kfp_core::definitions::{PipelineDefinitionWrapper, RunDefinition, RunScheduleDefinition};
use kfp_core::event::RunCompletionStatus;
use kfp_core::provider::{DeliveryOutcome, EventDelivery, EventSource, Provider, ProviderError};
use kfp_core::values::NamespacedName;
use kfp_providers::vai::events::VaiEventSource;
use kfp_providers::vai::fake::{FakeVai, RecordedRequest};
use kfp_providers::vai::{Clock, VaiConfig, VaiProvider};
use serde_json::{Value, json};

const BUCKET: &str = "my-pipelines";
const PARENT: &str = "projects/my-project/locations/us-central1";
const JOB: &str = "projects/my-project/locations/us-central1/pipelineJobs/team-a-nightly-rv1";

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vai")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

/// Every field of `answer` is a field of the recorded example `example` (the fake may leave fields out).
fn assert_shape(answer: &Value, example: &str) {
    let extra: Vec<String> = keys(answer)
        .difference(&keys(&fixture(example)))
        .cloned()
        .collect();
    assert!(
        extra.is_empty(),
        "{example}: fields {extra:?} are not documented; {answer}"
    );
}

fn config(fake: &FakeVai) -> VaiConfig {
    let mut config = VaiConfig::new(
        NamespacedName::new("kfp-operator-system", "vai"),
        "my-project",
        "us-central1",
        BUCKET,
    );
    config.gcs_endpoint = fake.url().to_string();
    config.aiplatform_endpoint = fake.url().to_string();
    config.metadata_endpoint = Some(fake.url().to_string());
    config.pubsub_endpoint = fake.url().to_string();
    config.events_subscription = "pipeline-events".into();
    config.pipeline_root_storage = "gs://my-pipeline-root".into();
    config.job_service_account = "pipeline-runner@my-project.iam.gserviceaccount.com".into();
    config.request_timeout = Duration::from_secs(2);
    config.operation_poll_interval = Duration::from_millis(10);
    config
}

fn provider(fake: &FakeVai) -> VaiProvider {
    let clock: Clock = Arc::new(|| Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap());
    VaiProvider::with_clock(config(fake), clock).unwrap()
}

fn event_source(fake: &FakeVai) -> VaiEventSource {
    let mut source = VaiEventSource::new(config(fake)).unwrap();
    source.pull_interval = Duration::from_millis(10);
    source
}

async fn next(source: &mut VaiEventSource) -> EventDelivery {
    tokio::time::timeout(Duration::from_secs(2), source.next_event())
        .await
        .expect("an event in time")
        .unwrap()
        .expect("an event")
}

fn pipeline(version: &str) -> PipelineDefinitionWrapper {
    PipelineDefinitionWrapper {
        pipeline_definition: json!({
            "name": "team-a/training", "version": version, "image": "img:1",
            "framework": {"name": "kfp-sdk", "parameters": {}}
        }),
        compiled_pipeline: fixture("pipeline_jobs_create.request.json")["pipelineSpec"].clone(),
    }
}

fn run() -> RunDefinition {
    serde_json::from_value(json!({
        "name": "team-a/nightly", "version": "rv1", "pipelineName": "team-a/training", "pipelineVersion": "v1",
        "runConfigurationName": "team-a/nightly-rc", "parameters": {"learning_rate": "0.01"},
        "triggerIndicator": {"type": "onChangePipeline", "source": "training", "sourceNamespace": "team-a"}
    }))
    .unwrap()
}

fn schedule() -> RunScheduleDefinition {
    serde_json::from_value(json!({
        "name": "team-a/daily", "version": "sv1", "pipelineName": "team-a/training", "pipelineVersion": "v1",
        "runConfigurationName": "team-a/daily-rc", "parameters": {"learning_rate": "0.01"},
        "triggerIndicator": {"type": "schedule", "source": "daily-rc", "sourceNamespace": "team-a"},
        "schedule": {"cronExpression": "0 0 6 * * *", "startTime": "2025-07-01T00:00:00Z", "endTime": "2026-01-01T00:00:00Z"}
    }))
    .unwrap()
}

/// The path as the server reads it (the client percent-encodes every non-alphanumeric character).
fn decoded(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .to_string()
}

fn find<'a>(requests: &'a [RecordedRequest], method: &str, path_end: &str) -> &'a RecordedRequest {
    requests
        .iter()
        .find(|r| r.method == method && decoded(&r.path).ends_with(path_end))
        .unwrap_or_else(|| panic!("no {method} ...{path_end}"))
}

fn with_ack_id(mut value: Value, ack_id: &str) -> Value {
    value["ackIds"] = json!([ack_id]);
    value
}

#[tokio::test]
async fn requests_match_the_recorded_examples() {
    let fake = FakeVai::start().await.unwrap();
    let provider = provider(&fake);
    provider.create_pipeline(&pipeline("v1")).await.unwrap();
    provider.create_run(&run()).await.unwrap();
    let id = provider.create_run_schedule(&schedule()).await.unwrap();
    provider.update_run_schedule(&schedule(), &id).await.unwrap();

    let requests = fake.requests();
    // objects.insert media upload: the name in the query, the bytes as the body.
    let upload = find(&requests, "POST", &format!("/upload/storage/v1/b/{BUCKET}/o"));
    assert_eq!(upload.query.get("uploadType").map(String::as_str), Some("media"));
    assert_eq!(
        upload.query.get("name").map(String::as_str),
        Some("team-a/training/v1")
    );
    assert_eq!(upload.body, Some(pipeline("v1").compiled_pipeline));

    let create = find(&requests, "POST", &format!("{PARENT}/pipelineJobs"));
    assert_eq!(create.body, Some(fixture("pipeline_jobs_create.request.json")));
    assert_eq!(
        create.query.get("pipelineJobId").map(String::as_str),
        Some("team-a-nightly-rv1")
    );

    let created = find(&requests, "POST", &format!("{PARENT}/schedules"));
    assert_eq!(created.body, Some(fixture("schedules_create.request.json")));

    let patch = find(&requests, "PATCH", &id);
    let patch_fixture = fixture("schedules_patch.request.json");
    assert_eq!(patch.body.as_ref(), Some(&patch_fixture));
    // updateMask is a FieldMask in its JSON form: comma-separated camelCase paths, here exactly the fields sent.
    let mask: BTreeSet<String> = patch.query["updateMask"].split(',').map(str::to_string).collect();
    assert_eq!(mask, keys(&patch_fixture));

    // Pub/Sub: pull, acknowledge (delivered) and modifyAckDeadline 0 (nack of an entry without a job id).
    fake.update_pipeline_job(JOB, json!({"state": "PIPELINE_STATE_SUCCEEDED"}));
    let no_job = fake.publish_log_entry(None);
    let ack = fake.publish_log_entry(Some("team-a-nightly-rv1"));
    let mut source = event_source(&fake);
    let delivery = next(&mut source).await;
    assert_eq!(delivery.receipt.0, ack);
    source
        .settle(delivery.receipt, DeliveryOutcome::Delivered)
        .await
        .unwrap();
    let requests = fake.requests();
    let subscription = "/v1/projects/my-project/subscriptions/pipeline-events";
    assert_eq!(
        find(&requests, "POST", &format!("{subscription}:pull")).body,
        Some(fixture("pubsub_pull.request.json"))
    );
    assert_eq!(
        find(&requests, "POST", &format!("{subscription}:acknowledge")).body,
        Some(with_ack_id(fixture("pubsub_acknowledge.request.json"), &ack))
    );
    assert_eq!(
        find(&requests, "POST", &format!("{subscription}:modifyAckDeadline")).body,
        Some(with_ack_id(
            fixture("pubsub_modify_ack_deadline.request.json"),
            &no_job
        ))
    );
}

#[tokio::test]
async fn recorded_answers_go_through_the_clients_parsing() {
    let fake = FakeVai::start().await.unwrap();
    let provider = provider(&fake);
    provider.create_pipeline(&pipeline("v1")).await.unwrap();

    // objects.insert: the documented object resource is accepted.
    fake.answer_next_matching(
        "POST",
        "/upload/storage/v1/b/",
        200,
        fixture("gcs_objects_insert.response.json"),
    );
    assert_eq!(
        provider.create_pipeline(&pipeline("v2")).await.unwrap(),
        "team-a/training"
    );

    // pipelineJobs.create: the created PipelineJob.
    fake.answer_next_matching(
        "POST",
        "/pipelineJobs",
        200,
        fixture("pipeline_jobs_create.response.json"),
    );
    assert_eq!(provider.create_run(&run()).await.unwrap(), "team-a-nightly");

    // schedules.create / patch: the id is the Schedule's `name`.
    let created = fixture("schedules_create.response.json");
    fake.answer_next_matching("POST", "/schedules", 200, created.clone());
    let id = provider.create_run_schedule(&schedule()).await.unwrap();
    assert_eq!(id, created["name"].as_str().unwrap());
    let patched = fixture("schedules_patch.response.json");
    fake.answer_next_matching("PATCH", "/schedules/", 200, patched.clone());
    assert_eq!(
        provider.update_run_schedule(&schedule(), &id).await.unwrap(),
        patched["name"].as_str().unwrap()
    );

    // schedules.delete: a long-running Operation, polled with operations.get until done.
    fake.answer_next_matching(
        "DELETE",
        "/schedules/",
        200,
        fixture("schedules_delete.response.json"),
    );
    fake.answer_next_matching(
        "GET",
        "/operations/",
        200,
        fixture("operations_get.response.json"),
    );
    provider.delete_run_schedule(&id).await.unwrap();
    let operation = fixture("schedules_delete.response.json");
    let polled = fake.requests();
    assert!(
        polled
            .iter()
            .any(|r| r.method == "GET" && r.path == format!("/v1/{}", operation["name"].as_str().unwrap())),
        "the operation is polled by its name"
    );
    // An operation done with an error: google.rpc.Status code 9 (FAILED_PRECONDITION) is invalid.
    let failed = fixture("operations_get_failed.response.json");
    fake.answer_next_matching("DELETE", "/schedules/", 200, failed.clone());
    let error = provider.delete_run_schedule(&id).await.unwrap_err();
    assert!(matches!(error, ProviderError::Invalid(_)), "{error}");
    assert!(
        error
            .to_string()
            .contains(failed["error"]["message"].as_str().unwrap()),
        "{error}"
    );

    // Google's error body: the message is carried, 404 is NotFound (a delete ignores it), 400 is invalid.
    fake.answer_next_matching("DELETE", "/schedules/", 404, fixture("error.response.json"));
    provider.delete_run_schedule(&id).await.unwrap();
    let bad = fixture("error_invalid_argument.response.json");
    fake.answer_next_matching("POST", "/schedules", 400, bad.clone());
    let error = provider.create_run_schedule(&schedule()).await.unwrap_err();
    assert!(matches!(error, ProviderError::Invalid(_)), "{error}");
    assert!(
        error
            .to_string()
            .contains(bad["error"]["message"].as_str().unwrap()),
        "{error}"
    );

    // objects.list: items' names are deleted, nextPageToken is followed.
    let first = fixture("gcs_objects_list.response.json");
    let last = fixture("gcs_objects_list_last_page.response.json");
    fake.answer_next_matching("GET", &format!("/storage/v1/b/{BUCKET}/o"), 200, first.clone());
    fake.answer_next_matching("GET", &format!("/storage/v1/b/{BUCKET}/o"), 200, last.clone());
    provider.delete_pipeline("team-a/training").await.unwrap();
    let requests = fake.requests();
    let lists: Vec<&RecordedRequest> = requests
        .iter()
        .filter(|r| r.method == "GET" && decoded(&r.path) == format!("/storage/v1/b/{BUCKET}/o"))
        .collect();
    assert_eq!(lists.len(), 2);
    assert_eq!(
        lists[1].query.get("pageToken"),
        first["nextPageToken"].as_str().map(str::to_string).as_ref()
    );
    let deleted: Vec<String> = requests
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.starts_with("/storage/"))
        .map(|r| decoded(r.path.rsplit('/').next().unwrap()))
        .collect();
    assert_eq!(deleted, ["team-a/training/v1", "team-a/training/v2"]);

    // subscriptions.pull: the base64 LogEntry names the job; pipelineJobs.get of a finished job is the event.
    let pulled = fixture("pubsub_pull.response.json");
    let received = &pulled["receivedMessages"][0];
    let data = base64::engine::general_purpose::STANDARD
        .decode(received["message"]["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&data).unwrap(),
        fixture("log_entry.json")
    );
    fake.answer_next_matching("POST", ":pull", 200, pulled.clone());
    fake.answer_next_matching(
        "GET",
        "/pipelineJobs/team-a-nightly-rv1",
        200,
        fixture("pipeline_jobs_get.response.json"),
    );
    let mut source = event_source(&fake);
    let delivery = next(&mut source).await;
    assert_eq!(delivery.receipt.0, received["ackId"].as_str().unwrap());
    let event = delivery.event;
    assert_eq!(event.status, RunCompletionStatus::Succeeded);
    assert_eq!(event.run_id, "team-a-nightly-rv1");
    assert_eq!(event.pipeline_name, NamespacedName::new("team-a", "training"));
    assert_eq!(event.run_name, Some(NamespacedName::new("team-a", "nightly")));
    assert_eq!(
        event.run_configuration_name,
        Some(NamespacedName::new("team-a", "nightly-rc"))
    );
    assert!(event.run_start_time.is_some() && event.run_end_time.is_some());
    assert_eq!(
        serde_json::to_value(&event.pipeline_components).unwrap(),
        json!([{"name": "train", "componentArtifacts": [{"name": "model", "artifacts": [
            {"uri": "gs://my-pipeline-root/team-a/training/123/train/model", "metadata": {"accuracy": 0.93}}
        ]}]}])
    );
}

#[tokio::test]
async fn the_fake_answers_with_the_documented_shapes() {
    let fake = FakeVai::start().await.unwrap();
    fake.accept_token("t");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", fake.url());
    let send = |request: reqwest::RequestBuilder| async move {
        let answer = request.bearer_auth("t").send().await.unwrap();
        let status = answer.status().as_u16();
        (status, answer.json::<Value>().await.unwrap())
    };

    // Cloud Storage.
    let spec = fixture("pipeline_jobs_create.request.json")["pipelineSpec"].clone();
    let (status, inserted) = send(
        http.post(url(&format!(
            "/upload/storage/v1/b/{BUCKET}/o?uploadType=media&name=team-a%2Ftraining%2Fv1"
        )))
        .json(&spec),
    )
    .await;
    assert_eq!(status, 200);
    assert_shape(&inserted, "gcs_objects_insert.response.json");
    let (_, listed) = send(http.get(url(&format!("/storage/v1/b/{BUCKET}/o?prefix=team-a%2F")))).await;
    assert_shape(&listed, "gcs_objects_list.response.json");
    assert_shape(&listed["items"][0], "gcs_objects_insert.response.json");

    // aiplatform: the recorded requests are accepted, and answered with documented fields.
    let (status, job) = send(
        http.post(url(&format!(
            "/v1/{PARENT}/pipelineJobs?pipelineJobId=team-a-nightly-rv1"
        )))
        .json(&fixture("pipeline_jobs_create.request.json")),
    )
    .await;
    assert_eq!(status, 200, "{job}");
    assert_shape(&job, "pipeline_jobs_create.response.json");
    assert_eq!(job["name"], JOB);
    let (_, got) = send(http.get(url(&format!("/v1/{JOB}")))).await;
    assert_shape(&got, "pipeline_jobs_get.response.json");
    let (status, schedule) = send(
        http.post(url(&format!("/v1/{PARENT}/schedules")))
            .json(&fixture("schedules_create.request.json")),
    )
    .await;
    assert_eq!(status, 200, "{schedule}");
    assert_shape(&schedule, "schedules_create.response.json");
    let name = schedule["name"].as_str().unwrap().to_string();
    let request = fixture("schedules_patch.request.json");
    let mask: Vec<String> = keys(&request).into_iter().collect();
    let (status, patched) = send(
        http.patch(url(&format!("/v1/{name}?updateMask={}", mask.join(","))))
            .json(&request),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_shape(&patched, "schedules_patch.response.json");
    let (_, operation) = send(http.delete(url(&format!("/v1/{name}")))).await;
    assert_shape(&operation, "schedules_delete.response.json");
    assert_eq!(operation["done"], false);
    let (_, done) = send(http.get(url(&format!("/v1/{}", operation["name"].as_str().unwrap())))).await;
    assert_shape(&done, "operations_get.response.json");
    assert_eq!(
        done["response"],
        fixture("operations_get.response.json")["response"]
    );

    // Empty lists are left out (proto3 JSON; the JSON API's object list).
    let (_, empty) = send(http.get(url(&format!("/storage/v1/b/{BUCKET}/o?prefix=nothing%2F")))).await;
    assert_eq!(empty, json!({"kind": "storage#objects"}));
    let (_, nothing) = send(
        http.post(url("/v1/projects/my-project/subscriptions/pipeline-events:pull"))
            .json(&fixture("pubsub_pull.request.json")),
    )
    .await;
    assert_eq!(nothing, json!({}));

    // Google's error body.
    let (status, error) = send(http.get(url(&format!("/v1/{JOB}-missing")))).await;
    assert_eq!(status, 404);
    assert_eq!(keys(&error), keys(&fixture("error.response.json")));
    assert_eq!(
        keys(&error["error"]),
        keys(&fixture("error.response.json")["error"])
    );
    assert_eq!(error["error"]["status"], "NOT_FOUND");

    // Pub/Sub.
    let ack_id = fake.publish_log_entry(Some("team-a-nightly-rv1"));
    let subscription = "/v1/projects/my-project/subscriptions/pipeline-events";
    let (status, pulled) = send(
        http.post(url(&format!("{subscription}:pull")))
            .json(&fixture("pubsub_pull.request.json")),
    )
    .await;
    assert_eq!(status, 200, "{pulled}");
    assert_shape(&pulled, "pubsub_pull.response.json");
    let received = &pulled["receivedMessages"][0];
    let example = &fixture("pubsub_pull.response.json")["receivedMessages"][0];
    assert!(keys(received).is_subset(&keys(example)), "{received}");
    assert!(
        keys(&received["message"]).is_subset(&keys(&example["message"])),
        "{received}"
    );
    let entry: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(received["message"]["data"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_shape(&entry, "log_entry.json");
    let documented = fixture("log_entry.json");
    assert!(keys(&entry["resource"]).is_subset(&keys(&documented["resource"])));
    assert!(keys(&entry["resource"]["labels"]).is_subset(&keys(&documented["resource"]["labels"])));
    assert_eq!(entry["resource"]["type"], documented["resource"]["type"]);
    let (status, _) = send(
        http.post(url(&format!("{subscription}:acknowledge")))
            .json(&with_ack_id(fixture("pubsub_acknowledge.request.json"), &ack_id)),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fake.acked(), [ack_id]);
}

#[tokio::test]
async fn answers_without_their_empty_lists_parse() {
    let fake = FakeVai::start().await.unwrap();
    let provider = provider(&fake);
    // objects.list of an empty prefix: `{"kind": "storage#objects"}`, nothing to delete.
    provider.delete_pipeline("team-a/nothing").await.unwrap();
    assert!(!fake.requests().iter().any(|r| r.method == "DELETE"));
    // subscriptions.pull with no messages: `{}`, pulled again.
    let mut source = event_source(&fake);
    let waited = tokio::time::timeout(Duration::from_millis(100), source.next_event()).await;
    assert!(waited.is_err(), "no event without messages");
    let pulls = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(":pull"))
        .count();
    assert!(pulls >= 2, "pulled {pulls} times");
}
