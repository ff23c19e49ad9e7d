//! Holds the KFP client's requests and its parsing of answers against the recorded v2beta1 examples in
//! `tests/fixtures/kfp/` (written from the official API reference; see the README there).

use std::collections::BTreeSet;
use std::path::PathBuf;

use kfp_core::definitions::{ExperimentDefinition, PipelineDefinitionWrapper};
use kfp_core::provider::Provider;
use kfp_core::values::NamespacedName;
use kfp_providers::kfp::api::{
    Experiment, ListExperimentsResponse, ListPipelineVersionsResponse, ListPipelinesResponse,
    ListRecurringRunsResponse, ListRunsResponse, Pipeline, PipelineVersion, RecurringRun, RpcStatus, Run,
};
use kfp_providers::kfp::fake::FakeKfp;
use kfp_providers::kfp::{KfpConfig, KfpProvider};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn fixture_text(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kfp")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture(name: &str) -> Value {
    serde_json::from_str(&fixture_text(name)).unwrap()
}

fn parse<T: DeserializeOwned>(name: &str) -> T {
    serde_json::from_str(&fixture_text(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn answers_parse() {
    let p: Pipeline = parse("upload_pipeline.response.json");
    assert_eq!(p.pipeline_id, "4b9a8e3c-2a5d-4f3e-9c1b-1a2b3c4d5e6f");
    assert_eq!(p.display_name, "ns-p");

    let v: PipelineVersion = parse("upload_pipeline_version.response.json");
    assert_eq!(v.pipeline_version_id, "9f8e7d6c-5b4a-4321-8fed-cba987654321");
    assert_eq!(v.display_name, "v1");

    let list: ListPipelinesResponse = parse("list_pipelines.response.json");
    assert_eq!(list.pipelines.len(), 1);
    assert_eq!(list.total_size, 2);
    assert!(!list.next_page_token.is_empty());

    let versions: ListPipelineVersionsResponse = parse("list_pipeline_versions.response.json");
    assert_eq!(versions.pipeline_versions.len(), 2);
    assert_eq!(versions.next_page_token, "", "the last page has no token");

    let run: Run = parse("create_run.response.json");
    assert_eq!(run.run_id, "1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a");
    assert_eq!(run.state, "PENDING");
    assert_eq!(run.created_at.as_deref(), Some("2024-03-01T10:05:00Z"));

    let runs: ListRunsResponse = parse("list_runs.response.json");
    assert_eq!(runs.runs[0].description, "kfp-operator run ns/r version rv");
    assert_eq!(runs.runs[0].created_at.as_deref(), Some("2024-03-01T10:05:00Z"));
    assert!(!runs.next_page_token.is_empty());
    let recurring_runs: ListRecurringRunsResponse = parse("list_recurring_runs.response.json");
    assert_eq!(recurring_runs.recurring_runs[0].display_name, "ns-rs");
    assert_eq!(
        recurring_runs.recurring_runs[0].created_at.as_deref(),
        Some("2024-03-01T10:06:00Z")
    );

    let recurring: RecurringRun = parse("create_recurring_run.response.json");
    assert_eq!(recurring.recurring_run_id, "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b");

    let experiment: Experiment = parse("create_experiment.response.json");
    assert_eq!(experiment.experiment_id, "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f");
    let experiments: ListExperimentsResponse = parse("list_experiments.response.json");
    assert_eq!(experiments.experiments[0].display_name, "ns-e");

    let error: RpcStatus = parse("error.response.json");
    assert_eq!(error.code, 3);
    assert!(error.message.contains("6 fields"));
    // Empty lists are left out by protojson.
    let empty: ListPipelinesResponse = serde_json::from_str("{}").unwrap();
    assert!(empty.pipelines.is_empty() && empty.next_page_token.is_empty());
}

/// Replaces `<placeholders>` in a request fixture with the ids the fake gave out.
fn with_ids(mut value: Value, ids: &[(&str, &str)]) -> Value {
    fn walk(value: &mut Value, ids: &[(&str, &str)]) {
        match value {
            Value::String(s) => {
                for (placeholder, id) in ids {
                    if s == placeholder {
                        *s = (*id).to_string();
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, ids)),
            Value::Object(map) => map.values_mut().for_each(|v| walk(v, ids)),
            _ => {}
        }
    }
    walk(&mut value, ids);
    value
}

#[tokio::test]
async fn requests_match_the_recorded_examples() {
    let fake = FakeKfp::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t").unwrap();
    let mut config = KfpConfig::new(NamespacedName::new("kfp-operator-system", "kfp"));
    config.rest_url = fake.url().to_string();
    config.token_path = token;
    config.multi_user = true;
    config.pipeline_root_storage = "gs://bucket/root".into();
    let provider = KfpProvider::new(config).unwrap();

    let pipeline_id = provider
        .create_pipeline(&PipelineDefinitionWrapper {
            pipeline_definition: json!({"name": "ns/p", "version": "v1", "image": "i", "framework": {"name": "kfp-sdk", "parameters": {}}}),
            // `a` is declared: KFP refuses undeclared run parameters.
            compiled_pipeline: json!({"root": {"inputDefinitions": {"parameters": {"a": {"parameterType": "STRING", "isOptional": true}}}}}),
        })
        .await
        .unwrap();
    let version_id = fake.pipeline_versions(&pipeline_id)[0]
        .pipeline_version_id
        .clone();
    let experiment_id = provider
        .create_experiment(&ExperimentDefinition {
            name: NamespacedName::new("ns", "e"),
            version: "ev".into(),
            description: "an experiment".into(),
        })
        .await
        .unwrap();
    let ids = [
        ("<pipeline_id>", pipeline_id.as_str()),
        ("<pipeline_version_id>", version_id.as_str()),
        ("<experiment_id>", experiment_id.as_str()),
    ];

    let run = serde_json::from_value(json!({
        "name": "ns/r", "version": "rv", "pipelineName": "ns/p", "pipelineVersion": "v1",
        "runConfigurationName": "ns/rc", "experimentName": "ns/e", "parameters": {"a": "1"},
        "triggerIndicator": {"type": "onChangePipeline", "source": "p", "sourceNamespace": "ns"}
    }))
    .unwrap();
    provider.create_run(&run).await.unwrap();
    let schedule = serde_json::from_value(json!({
        "name": "ns/rs", "version": "sv", "pipelineName": "ns/p", "pipelineVersion": "v1",
        "runConfigurationName": "ns/rc", "experimentName": "ns/e", "parameters": {"a": "1"},
        "triggerIndicator": {"type": "schedule", "source": "rc", "sourceNamespace": "ns"},
        "schedule": {"cronExpression": "*/5 * * * *", "startTime": "2024-01-01T00:00:00Z", "endTime": "2025-01-01T00:00:00Z"}
    }))
    .unwrap();
    provider.create_run_schedule(&schedule).await.unwrap();

    let requests = fake.requests();
    let body = |method: &str, path: &str| {
        requests
            .iter()
            .find(|r| r.method == method && r.path == path)
            .and_then(|r| r.body.clone())
            .unwrap_or_else(|| panic!("no {method} {path} with a body"))
    };
    assert_eq!(
        body("POST", "/apis/v2beta1/experiments"),
        fixture("create_experiment.request.json")
    );
    assert_eq!(
        body("POST", "/apis/v2beta1/runs"),
        with_ids(fixture("create_run.request.json"), &ids)
    );
    assert_eq!(
        body("POST", "/apis/v2beta1/recurringruns"),
        with_ids(fixture("create_recurring_run.request.json"), &ids)
    );
    // Uploads carry their parameters in the query, as the reference documents.
    let upload = requests
        .iter()
        .find(|r| r.path == "/apis/v2beta1/pipelines/upload")
        .unwrap();
    assert_eq!(upload.query.get("name").map(String::as_str), Some("ns-p"));
    let upload_version = requests
        .iter()
        .find(|r| r.path == "/apis/v2beta1/pipelines/upload_version")
        .unwrap();
    assert_eq!(upload_version.query.get("pipelineid"), Some(&pipeline_id));
    assert_eq!(upload_version.query.get("name").map(String::as_str), Some("v1"));
}

#[tokio::test]
async fn the_fake_answers_with_the_documented_shapes() {
    let fake = FakeKfp::start().await.unwrap();
    // reqwest has no bundled crypto provider: the workspace's is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<BTreeSet<_>>();

    // Unknown fields are rejected with a googlerpcStatus body.
    let answer = http
        .post(format!("{}/apis/v2beta1/experiments", fake.url()))
        .json(&json!({"displayName": "camelCase is not the documented name"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(keys(&body), keys(&fixture("error.response.json")));
    assert_eq!(body["code"], 3);

    // A created experiment has only documented fields.
    let created: Value = http
        .post(format!("{}/apis/v2beta1/experiments", fake.url()))
        .json(&json!({"display_name": "ns-e", "description": "an experiment", "namespace": "kfp-operator-system"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        keys(&created).is_subset(&keys(&fixture("create_experiment.response.json"))),
        "{created}"
    );

    // A 5-field cron is rejected as the backend does; 6 fields (leading seconds) are accepted.
    let form = reqwest::multipart::Form::new().part(
        "uploadfile",
        reqwest::multipart::Part::bytes(b"{\"root\": {}}".to_vec()).file_name("resource.yaml"),
    );
    let pipeline: Value = http
        .post(format!("{}/apis/v2beta1/pipelines/upload?name=ns-p", fake.url()))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        keys(&pipeline).is_subset(
            &keys(&fixture("upload_pipeline.response.json"))
                .union(&BTreeSet::from(["name".to_string()]))
                .cloned()
                .collect()
        ),
        "{pipeline}"
    );
    let pipeline_id = pipeline["pipeline_id"].as_str().unwrap();
    let version_id = fake.pipeline_versions(pipeline_id)[0].pipeline_version_id.clone();
    let experiment_id = created["experiment_id"].as_str().unwrap();
    let recurring = |cron: &str| {
        json!({
            "display_name": "x", "experiment_id": experiment_id,
            "pipeline_version_reference": {"pipeline_id": pipeline_id, "pipeline_version_id": version_id},
            "max_concurrency": "1", "mode": "ENABLE", "trigger": {"cron_schedule": {"cron": cron}}
        })
    };
    let url = format!("{}/apis/v2beta1/recurringruns", fake.url());
    let answer = http
        .post(&url)
        .json(&recurring("*/5 * * * *"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let answer = http
        .post(&url)
        .json(&recurring("0 */5 * * * *"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let created: Value = answer.json().await.unwrap();
    assert!(
        keys(&created).is_subset(&keys(&fixture("create_recurring_run.response.json"))),
        "{created}"
    );

    // The recurring runs' list has the documented (camelCase) list field and each item only documented fields.
    let listed: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    let example = fixture("list_recurring_runs.response.json");
    assert!(keys(&listed).is_subset(&keys(&example)), "{listed}");
    assert!(
        keys(&listed["recurringRuns"][0]).is_subset(&keys(&example["recurringRuns"][0])),
        "{listed}"
    );

    // Missing ids are 404 with code 5.
    let answer = http
        .get(format!("{}/apis/v2beta1/runs/nope", fake.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    assert_eq!(answer.json::<Value>().await.unwrap()["code"], 5);

    // Unknown query parameters and filters on other keys are rejected.
    let answer = http
        .get(format!("{}/apis/v2beta1/experiments?pageSize=3", fake.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
}
