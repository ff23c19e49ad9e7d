//! The provider service over real HTTP on loopback: the contract (docs/provider-service.md) checked against
//! docs/provider-service.openapi.yaml, the HttpProvider through the conformance kit, and event forwarding.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kfp_core::definitions::{
    ExperimentDefinition, PipelineDefinitionWrapper, RunDefinition, RunScheduleDefinition,
};
use kfp_core::provider::{ObjectIdentity, Provider, ProviderConfig, ProviderError};
use kfp_core::values::NamespacedName;
use kfp_providers::config::{RetryPolicy, ServiceConfig};
use kfp_providers::conformance::{self, ConformanceFixtures};
use kfp_providers::http::HttpProvider;
use kfp_providers::metrics::WebhookResult;
use kfp_providers::service::ProviderServer;
use kfp_providers::stub::StubProvider;
use serde_json::{Value, json};
use tokio::sync::oneshot;

struct Running {
    base: String,
    metrics: SocketAddr,
    server_metrics: Arc<kfp_providers::metrics::ServiceMetrics>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<Result<(), kfp_providers::service::ServiceError>>,
}

impl Running {
    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.done)
            .await
            .expect("graceful shutdown")
            .unwrap()
            .unwrap();
    }
}

async fn eventually(condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn loopback_config(name: &str) -> ServiceConfig {
    let mut config = ServiceConfig::from_env_vars([
        ("PROVIDERNAME", format!("ops/{name}")),
        ("SERVER_HOST", "127.0.0.1".into()),
        ("SERVER_PORT", "0".into()),
        ("METRICS_PORT", "0".into()),
        ("SERVER_MAXBODYBYTES", "4096".into()),
    ])
    .unwrap();
    config.webhook_retry = RetryPolicy {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        max_attempts: 5,
        request_timeout: Duration::from_secs(5),
    };
    config
}

async fn start(
    config: &ServiceConfig,
    provider: Arc<dyn Provider>,
    events: Option<Box<dyn kfp_core::provider::EventSource>>,
) -> Running {
    kfp_providers::http::install_crypto_provider();
    let server = ProviderServer::bind(config, provider, events).await.unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let metrics = server.metrics_addr().unwrap();
    let server_metrics = server.metrics();
    let (tx, rx) = oneshot::channel();
    let done = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    Running {
        base,
        metrics,
        server_metrics,
        stop: Some(tx),
        done,
    }
}

/// Answers with the id it is given, or errors chosen by id: `missing` NotFound, `nope` Unimplemented,
/// `boom` Transient, `bad` Invalid.
struct Echo;

fn by_id(id: &str) -> Result<String, ProviderError> {
    match id {
        "missing" => Err(ProviderError::not_found(format!("{id} does not exist"))),
        "nope" => Err(ProviderError::unimplemented("not supported")),
        "boom" => Err(ProviderError::transient("backend down")),
        "bad" => Err(ProviderError::invalid("bad request")),
        _ => Ok(id.to_string()),
    }
}

#[async_trait::async_trait]
impl Provider for Echo {
    async fn create_pipeline(&self, p: &PipelineDefinitionWrapper) -> Result<String, ProviderError> {
        Ok(p.pipeline_definition["name"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }
    async fn update_pipeline(
        &self,
        _: &PipelineDefinitionWrapper,
        id: &str,
    ) -> Result<String, ProviderError> {
        by_id(id)
    }
    async fn delete_pipeline(&self, id: &str) -> Result<(), ProviderError> {
        by_id(id).map(drop)
    }
    async fn create_run(&self, r: &RunDefinition) -> Result<String, ProviderError> {
        by_id(&r.name.name)
    }
    async fn delete_run(&self, id: &str) -> Result<(), ProviderError> {
        by_id(id).map(drop)
    }
    async fn create_run_schedule(&self, s: &RunScheduleDefinition) -> Result<String, ProviderError> {
        Ok(s.name.to_string())
    }
    async fn update_run_schedule(
        &self,
        _: &RunScheduleDefinition,
        id: &str,
    ) -> Result<String, ProviderError> {
        by_id(id)
    }
    async fn delete_run_schedule(&self, id: &str) -> Result<(), ProviderError> {
        by_id(id).map(drop)
    }
    async fn create_experiment(&self, e: &ExperimentDefinition) -> Result<String, ProviderError> {
        by_id(&e.name.name)
    }
    async fn update_experiment(&self, _: &ExperimentDefinition, id: &str) -> Result<String, ProviderError> {
        by_id(id)
    }
    async fn delete_experiment(&self, id: &str) -> Result<(), ProviderError> {
        by_id(id).map(drop)
    }
    /// `none` is not there; otherwise the id names what was asked for: `kind:ns/name@version>created`.
    async fn find(&self, identity: &ObjectIdentity) -> Result<Option<String>, ProviderError> {
        if identity.name.name == "none" {
            return Ok(None);
        }
        let id = by_id(&identity.name.name)?;
        let created = identity
            .created
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default();
        Ok(Some(format!(
            "{}:{}/{id}@{}>{created}",
            identity.kind, identity.name.namespace, identity.version
        )))
    }
}

// ------------------------------------------------------------------------------------------------------------
// The OpenAPI document
// ------------------------------------------------------------------------------------------------------------

fn openapi() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/provider-service.openapi.yaml"
    ))
    .unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// Validates `instance` against the JSON pointer `reference` (`#/components/...`) of the document.
fn validate(doc: &Value, reference: &str, instance: &Value) {
    let mut root = doc.clone();
    root["$ref"] = json!(reference);
    let validator = jsonschema::validator_for(&root).unwrap();
    let errors: Vec<String> = validator.iter_errors(instance).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{instance} does not match {reference}: {errors:?}"
    );
}

/// One exchange of the contract test.
struct Exchange {
    method: &'static str,
    path: String,
    status: u16,
    content_type: String,
    body: Value,
}

fn template(path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or_default();
    let segments = path.trim_start_matches('/').split('/').count();
    match (path.starts_with("/resource/"), segments) {
        (true, 2) => "/resource/{type}",
        (true, 3) => "/resource/{type}/{id}",
        _ if path == "/livez" => "/livez",
        _ if path == "/readyz" => "/readyz",
        _ => panic!("no template for {path}"),
    }
}

/// Every exchange's route, method and status is declared, and its JSON body matches the declared schema.
fn check_against_document(exchanges: &[Exchange]) {
    let doc = openapi();
    for x in exchanges {
        let operation = &doc["paths"][template(&x.path)][x.method.to_ascii_lowercase()];
        assert!(operation.is_object(), "{} {} is not declared", x.method, x.path);
        let mut response = operation["responses"][x.status.to_string()].clone();
        assert!(
            response.is_object(),
            "{} {} -> {} is not declared",
            x.method,
            x.path,
            x.status
        );
        if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
            let name = reference.trim_start_matches("#/components/responses/");
            response = doc["components"]["responses"][name].clone();
        }
        let media = x.content_type.split(';').next().unwrap().trim().to_string();
        let declared = &response["content"][&media];
        assert!(
            declared.is_object(),
            "{} {} -> {} answers {media}, not declared",
            x.method,
            x.path,
            x.status
        );
        if media == "application/json" {
            let reference = declared["schema"]["$ref"].as_str().unwrap();
            validate(&doc, reference, &x.body);
        }
    }
}

struct Client {
    base: String,
    http: reqwest::Client,
    exchanges: Mutex<Vec<Exchange>>,
}

impl Client {
    fn new(base: &str) -> Self {
        Self {
            base: base.to_string(),
            http: reqwest::Client::new(),
            exchanges: Mutex::new(Vec::new()),
        }
    }

    async fn send(
        &self,
        method: &'static str,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        let body = if content_type.starts_with("application/json") {
            serde_json::from_str(&text).unwrap()
        } else {
            Value::String(text)
        };
        self.exchanges.lock().unwrap().push(Exchange {
            method,
            path: path.to_string(),
            status,
            content_type,
            body: body.clone(),
        });
        (status, body)
    }

    async fn json(&self, method: &'static str, path: &str, body: &Value) -> (u16, Value) {
        self.send(
            method,
            path,
            Some("application/json"),
            Some(serde_json::to_vec(body).unwrap()),
        )
        .await
    }
}

#[tokio::test]
async fn the_contract_matches_the_openapi_document() {
    let server = start(&loopback_config("echo"), Arc::new(Echo), None).await;
    let client = Client::new(&server.base);
    let doc = openapi();
    let fixtures = ConformanceFixtures::default();
    let bodies = [
        (
            "pipeline",
            serde_json::to_value(&fixtures.pipeline).unwrap(),
            "PipelineDefinitionWrapper",
        ),
        (
            "run",
            serde_json::to_value(&fixtures.run).unwrap(),
            "RunDefinition",
        ),
        (
            "runschedule",
            serde_json::to_value(&fixtures.run_schedule).unwrap(),
            "RunScheduleDefinition",
        ),
        (
            "experiment",
            serde_json::to_value(&fixtures.experiment).unwrap(),
            "ExperimentDefinition",
        ),
    ];
    // The request bodies of docs/provider-service.md, which the document must accept (the Go document's drifts are
    // fixed).
    let mut schedule = bodies[2].1.clone();
    schedule["schedule"]["startTime"] = json!("2026-01-01T00:00:00Z");
    validate(&doc, "#/components/schemas/RunScheduleDefinition", &schedule);
    for (kind, body, schema) in &bodies {
        validate(&doc, &format!("#/components/schemas/{schema}"), body);
        let (status, answer) = client.json("POST", &format!("/resource/{kind}"), body).await;
        assert_eq!(status, 201, "{kind}: {answer}");
        assert!(!answer["id"].as_str().unwrap().is_empty());
        let (status, answer) = client.json("PUT", &format!("/resource/{kind}/a%2Fb"), body).await;
        if *kind == "run" {
            assert_eq!((status, answer["id"].as_str()), (501, Some("a/b")), "{answer}");
        } else {
            assert_eq!((status, answer), (200, json!({"id": "a/b"})), "{kind}");
        }
        let (status, answer) = client
            .send("DELETE", &format!("/resource/{kind}/x%20y"), None, None)
            .await;
        assert_eq!((status, answer), (200, json!({})));
    }
    // Lookups (this project's addition): found, none, and the provider's or the query's errors.
    let (status, answer) = client
        .send(
            "GET",
            "/resource/run?namespace=ns&name=r&version=v1&created=2026-01-01T00:00:00Z",
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, answer),
        (200, json!({"id": "run:ns/r@v1>2026-01-01T00:00:00Z"}))
    );
    let (status, answer) = client
        .send("GET", "/resource/pipeline?namespace=ns&name=none", None, None)
        .await;
    assert_eq!((status, answer), (200, json!({"id": ""})));
    for (query, status) in [
        ("name=nope", 501),
        ("name=boom", 500),
        ("name=x&created=yesterday", 400),
        ("namespace=ns", 400),
    ] {
        let (got, answer) = client
            .send("GET", &format!("/resource/experiment?{query}"), None, None)
            .await;
        assert_eq!(got, status, "{query}: {answer}");
        assert!(!answer["providerError"].as_str().unwrap().is_empty());
    }
    // Names and parameters longer than Kubernetes allows are refused, naming the field and the bound.
    let mut long_parameter = bodies[1].1.clone();
    long_parameter["parameters"] = json!({"p".repeat(254): "1"});
    let mut long_name = bodies[3].1.clone();
    long_name["name"] = json!(format!("ns/{}", "n".repeat(254)));
    let mut long_namespace = bodies[2].1.clone();
    long_namespace["pipelineName"] = json!(format!("{}/p", "s".repeat(64)));
    for (method, path, body, says) in [
        (
            "POST",
            "/resource/run",
            long_parameter,
            "is 254 bytes long; at most 253",
        ),
        (
            "POST",
            "/resource/experiment",
            long_name.clone(),
            "name (its name) is 254 bytes long; at most 253",
        ),
        (
            "PUT",
            "/resource/experiment/e1",
            long_name,
            "name (its name) is 254 bytes long",
        ),
        (
            "POST",
            "/resource/runschedule",
            long_namespace,
            "pipelineName (its namespace) is 64 bytes long; at most 63",
        ),
    ] {
        let (status, answer) = client.json(method, path, &body).await;
        assert_eq!(status, 400, "{path}: {answer}");
        let message = answer["providerError"].as_str().unwrap();
        assert!(message.contains(says), "{path}: {message}");
    }
    // Provider errors and their classes, with the decoded id.
    for (id, status) in [("missing", 404), ("nope", 501), ("boom", 500), ("bad", 400)] {
        let (got, answer) = client
            .send("DELETE", &format!("/resource/experiment/{id}"), None, None)
            .await;
        assert_eq!(got, status, "{answer}");
        assert_eq!(answer["id"], id);
        assert!(!answer["providerError"].as_str().unwrap().is_empty());
    }
    let mut experiment = bodies[3].1.clone();
    experiment["name"] = json!("ns/bad");
    let (status, answer) = client.json("POST", "/resource/experiment", &experiment).await;
    assert_eq!((status, answer), (400, json!({"providerError": "bad request"})));
    // Request problems.
    let (status, answer) = client.json("POST", "/resource/model", &json!({})).await;
    assert_eq!(status, 404);
    assert!(
        answer["providerError"]
            .as_str()
            .unwrap()
            .contains("unknown resource kind \"model\"")
    );
    let (status, answer) = client.send("DELETE", "/resource/model/x", None, None).await;
    assert_eq!(status, 404, "{answer}");
    // The body is JSON whatever the Content-Type says, as for the Go services (which never read the header).
    let experiment_body = serde_json::to_vec(&bodies[3].1).unwrap();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let (status, answer) = client
            .send(
                "POST",
                "/resource/experiment",
                content_type,
                Some(experiment_body.clone()),
            )
            .await;
        assert_eq!(status, 201, "{content_type:?}: {answer}");
        let (status, answer) = client
            .send(
                "PUT",
                "/resource/experiment/e1",
                content_type,
                Some(experiment_body.clone()),
            )
            .await;
        assert_eq!((status, answer), (200, json!({"id": "e1"})), "{content_type:?}");
    }
    let (status, answer) = client
        .send(
            "POST",
            "/resource/experiment",
            Some("text/plain"),
            Some(b"name: ns/e".to_vec()),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    // A RunScheduleDefinition without a cron expression, or without a schedule, reaches the provider with an
    // empty expression, as in Go: the document accepts it and the (echoing) provider creates it.
    let mut without_cron = bodies[2].1.clone();
    without_cron["schedule"]
        .as_object_mut()
        .unwrap()
        .remove("cronExpression");
    let mut without_schedule = bodies[2].1.clone();
    without_schedule.as_object_mut().unwrap().remove("schedule");
    for body in [without_cron, without_schedule] {
        validate(&doc, "#/components/schemas/RunScheduleDefinition", &body);
        let (status, answer) = client.json("POST", "/resource/runschedule", &body).await;
        assert_eq!(status, 201, "{body}: {answer}");
        let (status, answer) = client.json("PUT", "/resource/runschedule/s1", &body).await;
        assert_eq!((status, answer), (200, json!({"id": "s1"})), "{body}");
    }
    let (status, answer) = client
        .send(
            "POST",
            "/resource/run",
            Some("application/json"),
            Some(b"{\"name\": ".to_vec()),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["providerError"]
            .as_str()
            .unwrap()
            .starts_with("the request body is not a valid RunDefinition: EOF"),
        "{answer}"
    );
    let (status, answer) = client
        .json("POST", "/resource/run", &json!({"name": "ns/r"}))
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["providerError"]
            .as_str()
            .unwrap()
            .contains("missing field `version`"),
        "{answer}"
    );
    let (status, answer) = client
        .json(
            "PUT",
            "/resource/experiment/x",
            &json!({"name": "a/b/c", "version": "v"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["id"], "x");
    let (status, answer) = client
        .send(
            "POST",
            "/resource/run",
            Some("application/json"),
            Some(Vec::new()),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["providerError"].as_str().unwrap().contains("empty"),
        "{answer}"
    );
    let big = json!({"name": "ns/e", "version": "v", "description": "x".repeat(5000)});
    let (status, answer) = client.json("POST", "/resource/experiment", &big).await;
    assert_eq!(status, 413, "{answer}");
    let (status, answer) = client.send("DELETE", "/resource/run/%FF", None, None).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["providerError"]
            .as_str()
            .unwrap()
            .contains("cannot be decoded"),
        "{answer}"
    );
    // Probes.
    for probe in ["/livez", "/readyz"] {
        let (status, body) = client.send("GET", probe, None, None).await;
        assert_eq!((status, body), (200, json!("ok")));
    }
    check_against_document(&client.exchanges.lock().unwrap());

    // Unknown routes are 404 with a message (not part of the contract).
    let response = reqwest::get(format!("{}/nope", server.base)).await.unwrap();
    assert_eq!(response.status(), 404);

    // Metrics on their own port.
    let text = reqwest::get(format!("http://{}/metrics", server.metrics))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"http_server_requests_total{route="resource/run",method="POST",code="201"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_server_request_duration_seconds_bucket{le="#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="resource/experiment",method="DELETE",code="404""#),
        "{text}"
    );
    let on_api = reqwest::get(format!("{}/metrics", server.base)).await.unwrap();
    assert_eq!(on_api.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn http_provider_against_the_served_stub_conforms_and_events_are_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "first-token\n").unwrap();
    // The operator's feed fails once, then accepts.
    let (webhook, mut events) = support::webhook(&[500]).await;
    let mut config = loopback_config("stub");
    config.operator_webhook = Some(webhook.url.clone());
    config.webhook_token_file = token_file.clone();
    config
        .provider
        .parameters
        .insert("eventdelayseconds".into(), json!(0.05));
    let (stub, source) = StubProvider::with_events(&config.provider).unwrap();
    let server = start(&config, Arc::new(stub), Some(Box::new(source))).await;

    let provider: Arc<dyn Provider> =
        Arc::new(HttpProvider::with_timeout(&server.base, Duration::from_secs(10)).unwrap());
    let fixtures = ConformanceFixtures::stub();
    let report = conformance::run_all_with_events(provider.clone(), &mut events, &fixtures).await;
    assert!(report.passed(), "{report}");

    // Lookups travel: the served stub finds the run the kit created, and says it keeps no experiments.
    let run = |version: &str| {
        ObjectIdentity::new(
            kfp_providers::ResourceKind::Run,
            fixtures.run.name.clone(),
            version,
            None,
        )
    };
    assert_eq!(
        provider
            .find(&run(&fixtures.run.version))
            .await
            .unwrap()
            .as_deref(),
        Some("create-run-succeeded")
    );
    assert_eq!(provider.find(&run("another-version")).await.unwrap(), None);
    let experiment = ObjectIdentity::new(
        kfp_providers::ResourceKind::Experiment,
        fixtures.experiment.name.clone(),
        "",
        None,
    );
    assert!(matches!(
        provider.find(&experiment).await,
        Err(ProviderError::Unimplemented(_))
    ));

    // Transient failures travel as 500 and come back Transient.
    let mut experiment = fixtures.experiment.clone();
    experiment.name = NamespacedName::new("ns", kfp_providers::stub::TRANSIENT_FAIL);
    assert_eq!(
        provider.create_experiment(&experiment).await,
        Err(ProviderError::transient("create experiment failed transiently"))
    );
    assert_eq!(
        provider
            .update_pipeline(&fixtures.pipeline, "update-pipeline-fail")
            .await,
        Err(ProviderError::invalid("update pipeline failed"))
    );

    // The conformance kit created three runs (lifecycle, find and events checks): take the events it left.
    let forwarded = |n: u64| server.server_metrics.webhook_count(WebhookResult::Success) >= n;
    tokio::time::timeout(Duration::from_secs(20), async {
        while !forwarded(3) {
            let _ = tokio::time::timeout(
                Duration::from_millis(200),
                kfp_core::provider::EventSource::next_event(&mut events),
            )
            .await;
        }
    })
    .await
    .expect("the three runs' events are forwarded");
    // Whatever the sink still holds of them is taken too, so the next event read is the next run's.
    while tokio::time::timeout(
        Duration::from_millis(500),
        kfp_core::provider::EventSource::next_event(&mut events),
    )
    .await
    .is_ok()
    {}
    {
        let received = webhook.received.lock().unwrap();
        let statuses: Vec<u16> = received.iter().map(|r| r.answered).collect();
        assert_eq!(
            statuses,
            [500, 200, 200, 200],
            "the first attempt failed and was retried"
        );
        for r in received.iter() {
            assert_eq!(r.authorization.as_deref(), Some("Bearer first-token"));
            assert_eq!(r.content_type.as_deref(), Some("application/json"));
            validate(&openapi(), "#/components/schemas/RunCompletionEventData", &r.body);
        }
        assert_eq!(received[1].body["provider"], "ops/stub");
        let mut runs: Vec<&str> = received
            .iter()
            .filter_map(|r| r.body["runName"].as_str())
            .collect();
        runs.sort_unstable();
        runs.dedup();
        assert_eq!(runs, ["conformance/run", "conformance/run-find"]);
    }
    assert_eq!(
        server
            .server_metrics
            .webhook_count(WebhookResult::RecoverableFailure),
        1
    );

    // The token is read again for every send (rotation), and a missing file sends no header.
    std::fs::write(&token_file, "second-token").unwrap();
    provider.create_run(&fixtures.run).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        kfp_core::provider::EventSource::next_event(&mut events),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    std::fs::remove_file(&token_file).unwrap();
    provider.create_run(&fixtures.run).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        kfp_core::provider::EventSource::next_event(&mut events),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    eventually(|| server.server_metrics.webhook_count(WebhookResult::Success) == 5).await;
    {
        let received = webhook.received.lock().unwrap();
        assert_eq!(received[4].authorization.as_deref(), Some("Bearer second-token"));
        assert_eq!(received[5].authorization, None);
    }
    let text = reqwest::get(format!("http://{}/metrics", server.metrics))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"provider_webhook_send_events_count_total{result="Success"} 5"#),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn gone_events_are_dropped_and_failing_feeds_are_retried_with_backoff() {
    let (webhook, _events) = support::webhook(&[410, 503, 503, 503, 503, 503]).await;
    let mut config = loopback_config("stub");
    config.operator_webhook = Some(webhook.url.clone());
    config.webhook_token_file = "/nonexistent/token".into();
    config
        .provider
        .parameters
        .insert("eventdelayseconds".into(), json!(0));
    let (stub, source) = StubProvider::with_events(&config.provider).unwrap();
    let server = start(&config, Arc::new(stub), Some(Box::new(source))).await;
    let provider = HttpProvider::new(&server.base).unwrap();
    let run = ConformanceFixtures::default().run;
    provider.create_run(&run).await.unwrap();
    provider.create_run(&run).await.unwrap();
    // 410 for stub-run-1 (dropped); stub-run-2: five 503s use up the attempts, the source redelivers it, then 200.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while webhook.received.lock().unwrap().len() < 7 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            webhook.received.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = webhook.received.lock().unwrap().clone();
    let runs: Vec<&str> = received
        .iter()
        .map(|r| r.body["runId"].as_str().unwrap())
        .collect();
    assert_eq!(
        runs,
        [
            "stub-run-1",
            "stub-run-2",
            "stub-run-2",
            "stub-run-2",
            "stub-run-2",
            "stub-run-2",
            "stub-run-2"
        ]
    );
    assert_eq!(received[6].answered, 200);
    assert!(received.iter().all(|r| r.authorization.is_none()));
    let metrics = &server.server_metrics;
    eventually(|| metrics.webhook_count(WebhookResult::Success) == 1).await;
    assert_eq!(metrics.webhook_count(WebhookResult::UnrecoverableFailure), 1);
    assert_eq!(metrics.webhook_count(WebhookResult::RecoverableFailure), 5);
    assert_eq!(metrics.webhook_count(WebhookResult::Success), 1);
    server.stop().await;
}

#[tokio::test]
async fn the_default_registry_serves_the_stub() {
    let registry = kfp_providers::default_registry();
    let config = loopback_config("stub");
    let provider = registry.build("stub", &config.provider).unwrap();
    let server = start(&config, provider, None).await;
    let remote = ProviderConfig {
        parameters: [("url".to_string(), json!(server.base.clone()))]
            .into_iter()
            .collect(),
        ..ProviderConfig::new(NamespacedName::new("ops", "remote"))
    };
    let http = registry.build("http", &remote).unwrap();
    let report = conformance::run_all(http, &ConformanceFixtures::stub()).await;
    assert!(report.passed(), "{report}");
    server.stop().await;
}

/// A provider service without the lookup route (the Go services) answers `GET /resource/{type}` with 404 or 405:
/// the client reads it as "cannot look up", so the operator creates without looking instead of failing.
#[tokio::test]
async fn a_service_without_lookups_cannot_look_up() {
    use axum::routing::post;
    for with_post in [true, false] {
        let router = if with_post {
            // 405: the path exists for POST only.
            axum::Router::new().route("/resource/{type}", post(|| async { "{}" }))
        } else {
            axum::Router::new()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let provider = HttpProvider::with_timeout(&base, Duration::from_secs(10)).unwrap();
        let identity = ObjectIdentity::new(
            kfp_providers::ResourceKind::Run,
            NamespacedName::new("ns", "r"),
            "v1",
            None,
        );
        let found = provider.find(&identity).await;
        assert!(
            matches!(&found, Err(ProviderError::Unimplemented(m)) if m.contains("cannot look up a run")),
            "{found:?}"
        );
    }
}

/// Issue 17: a client that stalls inside its request head, or trickles it byte by byte, is answered 408 within
/// `HEAD_DEADLINE` (plus a margin) instead of holding the connection until it goes; a client that completes its
/// heads keeps its connection for several requests.
#[tokio::test]
async fn a_stalled_request_head_is_answered_408() {
    use kfp_providers::service::edge::HEAD_DEADLINE;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start(&loopback_config("heads"), Arc::new(StubProvider::new()), None).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let answer_of = |mut stream: tokio::net::TcpStream| async move {
        let mut answer = Vec::new();
        tokio::time::timeout(
            HEAD_DEADLINE + Duration::from_secs(5),
            stream.read_to_end(&mut answer),
        )
        .await
        .expect("answered and closed within the head deadline")
        .unwrap();
        String::from_utf8_lossy(&answer).to_string()
    };

    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (mut trickled_answer, mut trickling) =
        tokio::net::TcpStream::connect(&addr).await.unwrap().into_split();
    let trickle = tokio::spawn(async move {
        // One header byte a second: never a whole head within the deadline.
        for byte in b"GET /livez HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if trickling.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut kept = tokio::net::TcpStream::connect(&addr).await.unwrap();
    for _ in 0..2 {
        kept.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0u8; 512];
        let n = kept.read(&mut buffer).await.unwrap();
        assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
    }

    let answer = answer_of(stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("no complete request head within 10 s"),
        "{answer}"
    );
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), trickled_answer.read(&mut answer))
        .await
        .expect("the trickled head is answered within the deadline")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    trickle.abort();
    server.stop().await;
}

/// A parameter value longer than any Kubernetes object could hold is refused with 400 naming it, even when the
/// service accepts bodies that large.
#[tokio::test]
async fn parameter_values_are_bounded() {
    let mut config = loopback_config("bounds");
    config.max_body_bytes = 4 * 1024 * 1024;
    let server = start(&config, Arc::new(StubProvider::new()), None).await;
    let client = Client::new(&server.base);
    let mut run = serde_json::to_value(&ConformanceFixtures::default().run).unwrap();
    run["parameters"] = json!({"big": "x".repeat(1024 * 1024 + 1)});
    let (status, answer) = client.json("POST", "/resource/run", &run).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["providerError"],
        "parameters.big is 1048577 bytes long; at most 1048576 are accepted"
    );
    run["parameters"] = json!({"big": "x".repeat(1024 * 1024)});
    let (status, answer) = client.json("POST", "/resource/run", &run).await;
    assert_eq!(status, 201, "{answer}");
    server.stop().await;
}
