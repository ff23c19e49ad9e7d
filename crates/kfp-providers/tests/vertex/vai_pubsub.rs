//! The Vertex AI event source against Google's own Pub/Sub emulator (Debian package
//! `google-cloud-cli-pubsub-emulator`, tested with 528.0.0), so its `pull`, `acknowledge` and `modifyAckDeadline`
//! requests and the ack/nack rules of `docs/providers/vertex-ai.md` ("Events") meet the real Pub/Sub semantics:
//! a nack (deadline 0) is redelivered at once, an unsettled message only after the subscription's ack deadline.
//! The pipelineJobs API the source reads jobs from stays the in-process fake (`FakeVai`).
//!
//! One emulator serves the whole binary (it takes seconds to start); every scenario has its own topic and
//! subscription, and they run concurrently.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use kfp_core::event::RunCompletionStatus;
use kfp_core::provider::{DeliveryOutcome, EventDelivery, EventSource, Provider, ProviderError};
use kfp_core::values::NamespacedName;
use kfp_providers::vai::events::VaiEventSource;
use kfp_providers::vai::fake::FakeVai;
use kfp_providers::vai::{VaiConfig, VaiProvider};
use serde_json::{Value, json};

const PROJECT: &str = "proj";
const LOCATION: &str = "europe-west2";
const BUCKET: &str = "pipelines";
/// The package that provides the emulator, named when it is missing.
const PACKAGE: &str = "google-cloud-cli-pubsub-emulator";
const DEFAULT_EMULATOR: &str = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator";
/// Far longer than any wait below, so a message that comes back within one was nacked, not left to expire.
const LONG_DEADLINE: u64 = 600;
/// Pub/Sub's smallest ack deadline: the scenarios that must see a deadline pass use it.
const SHORT_DEADLINE: u64 = 10;

// --- the emulator ------------------------------------------------------------------------------------------------

/// A running emulator on a free loopback port; killed when dropped.
struct Emulator {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Emulator {
    /// Starts the emulator (`PUBSUB_EMULATOR`, else the Debian package's path) and waits until it answers
    /// `GET /`. Fails, never skips, when it is not installed: CI installs it.
    async fn start() -> Self {
        // reqwest is built without a default TLS provider in this workspace (loopback HTTP needs none, but the
        // client insists on one).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let binary = std::env::var_os("PUBSUB_EMULATOR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_EMULATOR));
        assert!(
            binary.exists(),
            "the Pub/Sub emulator {} is missing: install the Debian package {PACKAGE} (needs Java 17) or set \
             PUBSUB_EMULATOR to its cloud-pubsub-emulator script",
            binary.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = tempfile::NamedTempFile::new().unwrap();
        // Everything that can fail comes before the spawn: a panic between spawn and `Self` would leak the JVM.
        let http = reqwest::Client::new();
        let (stdout, stderr) = (log.reopen().unwrap(), log.reopen().unwrap());
        let child = Command::new(&binary)
            .arg("--host=127.0.0.1")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the Pub/Sub emulator {}: {e}", binary.display()));
        let mut emulator = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http,
        };
        // Java start-up: ~2 s on an idle machine, ~17 s on a busy CI runner.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(status)) = emulator.child.try_wait() {
                panic!(
                    "the Pub/Sub emulator exited with {status} before it was ready:\n{}",
                    std::fs::read_to_string(log.path()).unwrap_or_default()
                );
            }
            let ready = emulator.http.get(&emulator.url).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return emulator;
            }
            assert!(
                Instant::now() < deadline,
                "the Pub/Sub emulator did not answer on {} within 120 s:\n{}",
                emulator.url,
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}/v1/projects/{PROJECT}/{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    }

    /// A topic and its subscription, both named `name`.
    async fn subscription(&self, name: &str, ack_deadline: u64) {
        self.call(reqwest::Method::PUT, &format!("topics/{name}"), json!({}))
            .await;
        self.call(
            reqwest::Method::PUT,
            &format!("subscriptions/{name}"),
            json!({"topic": format!("projects/{PROJECT}/topics/{name}"), "ackDeadlineSeconds": ack_deadline}),
        )
        .await;
    }

    /// Publishes `data` (raw bytes) as one batch, as a Cloud Logging sink does; returns the message ids.
    async fn publish(&self, topic: &str, data: &[Vec<u8>]) -> Vec<String> {
        let messages: Vec<Value> = data
            .iter()
            .map(|d| {
                json!({
                    "data": base64::engine::general_purpose::STANDARD.encode(d),
                    "attributes": {"logging.googleapis.com/timestamp": "2025-06-01T12:09:12.004210Z"}
                })
            })
            .collect();
        let answer = self
            .call(
                reqwest::Method::POST,
                &format!("topics/{topic}:publish"),
                json!({"messages": messages}),
            )
            .await;
        serde_json::from_value(answer["messageIds"].clone()).unwrap()
    }

    /// What a pull hands out now: (ack id, message id).
    async fn pull(&self, subscription: &str) -> Vec<(String, String)> {
        let answer = self
            .call(
                reqwest::Method::POST,
                &format!("subscriptions/{subscription}:pull"),
                json!({"maxMessages": 100, "returnImmediately": true}),
            )
            .await;
        answer["receivedMessages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                (
                    m["ackId"].as_str().unwrap().to_string(),
                    m["message"]["messageId"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Message ids available until `timeout` ends, collected (and acknowledged, so each is seen once).
    async fn available_within(&self, subscription: &str, timeout: Duration) -> Vec<String> {
        let end = Instant::now() + timeout;
        let mut seen = Vec::new();
        while Instant::now() < end {
            let pulled = self.pull(subscription).await;
            if !pulled.is_empty() {
                let ack_ids: Vec<&String> = pulled.iter().map(|(a, _)| a).collect();
                self.call(
                    reqwest::Method::POST,
                    &format!("subscriptions/{subscription}:acknowledge"),
                    json!({"ackIds": ack_ids}),
                )
                .await;
                seen.extend(pulled.into_iter().map(|(_, id)| id));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    }

    /// Nacks `ack_id` from outside the source: a message still unacknowledged becomes available again at once,
    /// an acknowledged one stays gone. That is how the scenarios see an ack without waiting for a deadline.
    async fn nack(&self, subscription: &str, ack_id: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("subscriptions/{subscription}:modifyAckDeadline"),
            json!({"ackIds": [ack_id], "ackDeadlineSeconds": 0}),
        )
        .await;
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // The script execs java, so this is the JVM itself.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- a scenario: the Vertex fake with a job, an event source on the emulator ------------------------------------

struct Scenario<'a> {
    emulator: &'a Emulator,
    fake: FakeVai,
    name: String,
}

impl<'a> Scenario<'a> {
    async fn new(emulator: &'a Emulator, name: &str, ack_deadline: u64) -> Self {
        emulator.subscription(name, ack_deadline).await;
        Self {
            emulator,
            fake: FakeVai::start().await.unwrap(),
            name: name.to_string(),
        }
    }

    fn config(&self) -> VaiConfig {
        let mut config = VaiConfig::new(
            NamespacedName::new("kfp-operator-system", "vai"),
            PROJECT,
            LOCATION,
            BUCKET,
        );
        config.gcs_endpoint = self.fake.url().to_string();
        config.aiplatform_endpoint = self.fake.url().to_string();
        // The fake's metadata server hands out the token; the emulator ignores it.
        config.metadata_endpoint = Some(self.fake.url().to_string());
        config.pubsub_endpoint = self.emulator.url.clone();
        config.events_subscription = self.name.clone();
        // Shorter than the emulator holds an empty pull open (~90 s): a source that waited on Pub/Sub instead of
        // pulling with `returnImmediately` would fail its pulls while a subscription is quiet.
        config.request_timeout = Duration::from_secs(5);
        config
    }

    fn source(&self) -> VaiEventSource {
        let mut source = VaiEventSource::new(self.config()).unwrap();
        source.pull_interval = Duration::from_millis(50);
        source
    }

    /// A run submitted through the provider (so the fake holds its PipelineJob, labels included), moved to
    /// `state`; returns the job id.
    async fn job(&self, run: &str, state: &str) -> String {
        let provider = VaiProvider::new(self.config()).unwrap();
        provider
            .create_pipeline(
                &serde_json::from_value(json!({
                    "pipelineDefinition": {"name": "ns/p", "version": "v1", "image": "img:1",
                        "framework": {"name": "tfx", "parameters": {}}},
                    "compiledPipeline": {"pipelineInfo": {"name": "ns-p"}, "root": {"dag": {"tasks": {}}},
                        "schemaVersion": "2.1.0", "sdkVersion": "kfp-2.7.0"}
                }))
                .unwrap(),
            )
            .await
            .unwrap();
        provider
            .create_run(&serde_json::from_value(json!({
                "name": format!("ns/{run}"), "version": "rv1", "pipelineName": "ns/p", "pipelineVersion": "v1",
                "runConfigurationName": "ns/rc", "parameters": {},
                "triggerIndicator": {"type": "onChangePipeline", "source": "p", "sourceNamespace": "ns"}
            })).unwrap())
            .await
            .unwrap();
        let id = format!("ns-{run}-rv1");
        self.set_state(&id, state);
        id
    }

    fn set_state(&self, job: &str, state: &str) {
        self.fake.update_pipeline_job(
            &format!("projects/{PROJECT}/locations/{LOCATION}/pipelineJobs/{job}"),
            json!({
                "state": state,
                "startTime": "2025-06-01T12:00:00Z",
                "endTime": "2025-06-01T12:30:00Z",
                "jobDetail": {"taskDetails": [{"taskName": "trainer", "outputs": {"model": {"artifacts": [
                    {"uri": "gs://root/model", "metadata": {"accuracy": 0.9}}]}}}]}
            }),
        );
    }

    async fn publish(&self, data: &[Vec<u8>]) -> Vec<String> {
        self.emulator.publish(&self.name, data).await
    }
}

/// The LogEntry a Cloud Logging sink publishes for a PipelineJob's state change (the documented example in
/// `tests/fixtures/vai/log_entry.json`), for `job` (`None`: without `resource.labels.pipeline_job_id`).
fn log_entry(job: Option<&str>) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vai/log_entry.json");
    let mut entry: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let labels = entry["resource"]["labels"].as_object_mut().unwrap();
    match job {
        Some(job) => labels.insert("pipeline_job_id".into(), json!(job)),
        None => labels.remove("pipeline_job_id"),
    };
    entry.to_string().into_bytes()
}

/// The next event, failing after `timeout`.
async fn next(source: &mut VaiEventSource, timeout: Duration) -> EventDelivery {
    tokio::time::timeout(timeout, source.next_event())
        .await
        .expect("an event in time")
        .unwrap()
        .expect("an event")
}

/// How long a nacked message may take to come back: well inside `LONG_DEADLINE`.
const SOON: Duration = Duration::from_secs(5);

// --- the scenarios -----------------------------------------------------------------------------------------------

/// A finished job yields one event; settled as delivered it is acknowledged: nacking its ack id afterwards
/// brings nothing back.
async fn a_finished_job_is_one_event_and_acknowledged(emulator: &Emulator) {
    let s = Scenario::new(emulator, "succeeded", LONG_DEADLINE).await;
    let job = s.job("r", "PIPELINE_STATE_SUCCEEDED").await;
    let failed = s.job("f", "PIPELINE_STATE_FAILED").await;
    s.publish(&[log_entry(Some(&job)), log_entry(Some(&failed))])
        .await;
    let mut source = s.source();
    let mut events = Vec::new();
    for _ in 0..2 {
        let delivery = next(&mut source, SOON).await;
        source
            .settle(delivery.receipt.clone(), DeliveryOutcome::Delivered)
            .await
            .unwrap();
        events.push(delivery);
    }
    events.sort_by(|a, b| a.event.run_id.cmp(&b.event.run_id));
    let (failed_event, event) = (&events[0].event, &events[1].event);
    assert_eq!(failed_event.run_id, "ns-f-rv1");
    assert_eq!(failed_event.status, RunCompletionStatus::Failed);
    assert_eq!(event.run_id, "ns-r-rv1");
    assert_eq!(event.status, RunCompletionStatus::Succeeded);
    assert_eq!(event.run_name, Some(NamespacedName::new("ns", "r")));
    assert_eq!(event.pipeline_name, NamespacedName::new("ns", "p"));
    assert_eq!(
        event.run_configuration_name,
        Some(NamespacedName::new("ns", "rc"))
    );
    assert_eq!(
        serde_json::to_value(&event.pipeline_components).unwrap(),
        json!([{"name": "trainer", "componentArtifacts": [{"name": "model",
            "artifacts": [{"uri": "gs://root/model", "metadata": {"accuracy": 0.9}}]}]}])
    );
    for delivery in &events {
        s.emulator.nack(&s.name, &delivery.receipt.0).await;
    }
    assert_eq!(
        s.emulator.pull(&s.name).await,
        [],
        "acknowledged messages stay gone"
    );
}

/// An event the operator feed did not take (500) is nacked and the emulator hands it back at once.
async fn an_undelivered_event_comes_back(emulator: &Emulator) {
    let s = Scenario::new(emulator, "undelivered", LONG_DEADLINE).await;
    let job = s.job("r", "PIPELINE_STATE_SUCCEEDED").await;
    s.publish(&[log_entry(Some(&job))]).await;
    let mut source = s.source();
    let first = next(&mut source, SOON).await;
    source
        .settle(first.receipt.clone(), DeliveryOutcome::from_http_status(500))
        .await
        .unwrap();
    let again = next(&mut source, SOON).await;
    assert_eq!(again.event.run_id, job);
    assert_ne!(again.receipt, first.receipt, "a new delivery");
    // Settled as gone (410): acknowledged.
    source
        .settle(again.receipt.clone(), DeliveryOutcome::from_http_status(410))
        .await
        .unwrap();
    s.emulator.nack(&s.name, &again.receipt.0).await;
    assert_eq!(s.emulator.pull(&s.name).await, []);
}

/// A failed job lookup (503) is an error and the message is nacked: the next call yields it, long before the
/// ack deadline would have released it; a job still running is nacked until it finishes.
async fn messages_that_cannot_be_processed_yet_come_back(emulator: &Emulator) {
    let s = Scenario::new(emulator, "transient", LONG_DEADLINE).await;
    let job = s.job("r", "PIPELINE_STATE_SUCCEEDED").await;
    s.publish(&[log_entry(Some(&job))]).await;
    let mut source = s.source();
    s.fake.fail_next_matching("/pipelineJobs/", 503);
    let err = tokio::time::timeout(SOON, source.next_event())
        .await
        .expect("an answer in time")
        .unwrap_err();
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    let delivery = next(&mut source, SOON).await;
    assert_eq!(delivery.event.run_id, job);
    source
        .settle(delivery.receipt, DeliveryOutcome::Delivered)
        .await
        .unwrap();

    let running = s.job("running", "PIPELINE_STATE_RUNNING").await;
    // The job finishes only after the source has read it four times, i.e. its nacked message came back; one
    // uninterrupted `next_event` then yields it (cancelling a call could strand a pulled message). Pub/Sub hands a
    // nacked message back at once, so the source waits `pull_interval` before pulling again instead of spinning
    // on it and on `GetPipelineJob`: the re-reads are at least that far apart.
    let interval = Duration::from_millis(250);
    source.pull_interval = interval;
    let reads = |fake: &FakeVai| {
        fake.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with(&format!("/pipelineJobs/{running}")))
            .count()
    };
    let published = Instant::now();
    s.publish(&[log_entry(Some(&running))]).await;
    let finish = async {
        tokio::time::timeout(SOON, async {
            while reads(&s.fake) < 4 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the running job's message redelivered and read again");
        assert!(
            published.elapsed() >= interval * 3,
            "four reads in {:?}: the source spins on a nacked message",
            published.elapsed()
        );
        s.set_state(&running, "PIPELINE_STATE_SUCCEEDED");
    };
    let (delivery, ()) = tokio::join!(next(&mut source, SOON), finish);
    assert_eq!(delivery.event.run_id, running);
    assert_eq!(delivery.event.status, RunCompletionStatus::Succeeded);
}

/// Data that is no LogEntry is acknowledged (dropped), as is the entry of a job Vertex AI no longer has (404);
/// an entry without a job id is nacked (the documented rule). None stops the source, which yields the finished
/// job published with them; afterwards only the nacked one is available, and nothing else comes back once the
/// ack deadline has passed.
async fn malformed_and_unknown_messages_are_settled_without_an_event(emulator: &Emulator) {
    let s = Scenario::new(emulator, "malformed", SHORT_DEADLINE).await;
    let job = s.job("r", "PIPELINE_STATE_SUCCEEDED").await;
    let ids = s
        .publish(&[
            b"not json".to_vec(),
            b"[1, 2]".to_vec(),
            log_entry(Some("gone-rv1")),
            log_entry(None),
            log_entry(Some(&job)),
        ])
        .await;
    let mut source = s.source();
    let delivery = next(&mut source, SOON).await;
    assert_eq!(delivery.event.run_id, job);
    source
        .settle(delivery.receipt, DeliveryOutcome::Delivered)
        .await
        .unwrap();
    drop(source);
    let settled = Instant::now();
    let nacked = s.emulator.available_within(&s.name, SOON).await;
    assert_eq!(nacked, [ids[3].clone()], "only the entry without a job id");
    let rest = Duration::from_secs(SHORT_DEADLINE + 2).saturating_sub(settled.elapsed());
    assert_eq!(
        s.emulator.available_within(&s.name, rest).await,
        Vec::<String>::new(),
        "acknowledged, not merely left to expire"
    );
}

/// A source that dies with an event it has not settled loses nothing: the next one gets the message once the
/// ack deadline has passed.
async fn nothing_is_lost_when_the_source_restarts(emulator: &Emulator) {
    let s = Scenario::new(emulator, "restart", SHORT_DEADLINE).await;
    let job = s.job("r", "PIPELINE_STATE_SUCCEEDED").await;
    s.publish(&[log_entry(Some(&job))]).await;
    let mut source = s.source();
    let first = next(&mut source, SOON).await;
    drop(source);
    let mut restarted = s.source();
    let again = next(&mut restarted, Duration::from_secs(SHORT_DEADLINE + 10)).await;
    assert_eq!(again.event.run_id, job);
    assert_ne!(again.receipt, first.receipt);
    restarted
        .settle(again.receipt.clone(), DeliveryOutcome::Delivered)
        .await
        .unwrap();
    s.emulator.nack(&s.name, &again.receipt.0).await;
    assert_eq!(s.emulator.pull(&s.name).await, []);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_source_against_the_pubsub_emulator() {
    let emulator = Emulator::start().await;
    tokio::join!(
        a_finished_job_is_one_event_and_acknowledged(&emulator),
        an_undelivered_event_comes_back(&emulator),
        messages_that_cannot_be_processed_yet_come_back(&emulator),
        malformed_and_unknown_messages_are_settled_without_an_event(&emulator),
        nothing_is_lost_when_the_source_restarts(&emulator),
    );
}
