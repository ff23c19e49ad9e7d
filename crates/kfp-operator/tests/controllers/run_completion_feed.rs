//! The run-completion feed (issue 6) against real components: the kube-apiserver of kfp-testenv (TokenReview,
//! TokenRequest, status patches), a real `nats-server` started on a free loopback port, and the provider service
//! as a process (`kfp-operator provider-service --provider stub`) posting its events over HTTP.

use crate::support;

use std::time::Duration;

use kfp_core::resources::v1beta1::{CompletionState, Run, RunConfiguration};
use kube::Client;
use kube::api::Api;
use serde_json::{Value, json};
use support::nats::{NatsServer, RunningFeed, free_port, next_json, service_account_token, subscribe};
use support::{WAIT, client_and_namespace, config_for, wait_until};

const PROVIDER_SA: &str = "provider-sa";

/// A Provider `stub` running as `provider-sa`, a RunConfiguration `rc` exposing `CsvExampleGen:examples`, a Run `run`.
async fn objects(client: &Client, ns: &str) {
    let yaml = format!(
        "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Provider
metadata: {{name: stub, namespace: {ns}}}
spec: {{serviceImage: unused, serviceAccount: {PROVIDER_SA}, pipelineRootStorage: /tmp, allowedNamespaces: [{ns}]}}
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Provider
metadata: {{name: other, namespace: {ns}}}
spec: {{serviceImage: unused, serviceAccount: other-sa, pipelineRootStorage: /tmp}}
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {{name: rc, namespace: {ns}}}
spec:
  run:
    provider: {ns}/stub
    pipeline: p
    artifacts: [{{name: examples, path: 'CsvExampleGen:examples'}}, {{name: pushed, path: 'Pusher:model:0[pushed == 1]'}}]
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {{name: foreign, namespace: {ns}}}
spec: {{run: {{provider: {ns}/other, pipeline: p}}}}
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Run
metadata: {{name: run, namespace: {ns}}}
spec: {{provider: {ns}/stub, pipeline: p, artifacts: [{{name: examples, path: 'CsvExampleGen:examples'}}]}}
"
    );
    kfp_testenv::apply_yaml(client, &yaml, &kfp_testenv::ApplyOptions::in_namespace(ns))
        .await
        .unwrap();
}

/// The objects, a NATS server with a subscriber on `events`, and a feed publishing there, connected.
async fn feed_with_nats(client: &Client, ns: &str) -> (NatsServer, async_nats::Subscriber, RunningFeed) {
    objects(client, ns).await;
    let nats = NatsServer::start().await;
    let subscriber = subscribe(&nats.url(), "events").await;
    let feed = RunningFeed::start(client, feed_config(ns, Some(&nats))).await;
    feed.wait_connected().await;
    (nats, subscriber, feed)
}

fn feed_config(ns: &str, nats: Option<&NatsServer>) -> kfp_operator::config::OperatorConfig {
    let mut config = config_for(ns);
    if let Some(nats) = nats {
        config.spec.run_completion_feed.nats.url = nats.url();
    }
    config
}

fn event(ns: &str, run_id: &str, end: &str) -> Value {
    json!({
        "status": "succeeded", "pipelineName": format!("{ns}/p"),
        "runConfigurationName": format!("{ns}/rc"), "runId": run_id, "runEndTime": end,
        "pipelineComponents": [
            {"name": "CsvExampleGen", "componentArtifacts": [{"name": "examples", "artifacts": [{"uri": format!("gs://b/{run_id}/examples"), "metadata": {}}]}]},
            {"name": "Pusher", "componentArtifacts": [{"name": "model", "artifacts": [{"uri": format!("gs://b/{run_id}/model"), "metadata": {"pushed": 0}}]}]}
        ],
        "provider": format!("{ns}/stub")
    })
}

async fn post(url: &str, token: Option<&str>, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn post_json(url: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    post(url, token, "application/json", serde_json::to_vec(body).unwrap()).await
}

fn latest(rc: &RunConfiguration) -> (String, Vec<(String, String)>) {
    let succeeded = rc.status.clone().unwrap_or_default().latest_runs.succeeded;
    let artifacts = succeeded
        .artifacts
        .iter()
        .map(|a| (a.name.clone(), a.location.clone()))
        .collect();
    (succeeded.provider_id, artifacts)
}

/// A provider service process whose events go to `feed_url` with the token in `token_file`.
struct ProviderProcess {
    base: String,
    /// Killed when dropped.
    _child: tokio::process::Child,
    /// Holds the token file.
    _dir: tempfile::TempDir,
}

impl ProviderProcess {
    /// Starts the provider service of Provider `ns/stub` with a token of its ServiceAccount for the feed's audience
    /// in its token file, as the projected volume would hold it.
    async fn start(ns: &str, feed_url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        let token = service_account_token(ns, PROVIDER_SA, &["kfp-operator"]).await;
        std::fs::write(&token_file, token).unwrap();
        let (port, metrics_port) = (free_port(), free_port());
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kfp-operator"))
            .args(["provider-service", "--provider", "stub"])
            .env("PROVIDERNAME", format!("{ns}/stub"))
            .env("PARAMETERS_EVENTDELAYSECONDS", "0.1")
            .env("SERVER_HOST", "127.0.0.1")
            .env("SERVER_PORT", port.to_string())
            .env("METRICS_PORT", metrics_port.to_string())
            .env("OPERATORWEBHOOK", feed_url)
            .env("OPERATORWEBHOOK_TOKEN_FILE", &token_file)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let readyz = format!("{base}/readyz");
        kfp_testenv::wait_for("the provider service to be ready", WAIT, || {
            let readyz = readyz.clone();
            async move {
                let ready = reqwest::get(&readyz).await.is_ok_and(|r| r.status() == 200);
                Ok::<_, String>(ready.then_some(()))
            }
        })
        .await
        .unwrap();
        Self {
            base,
            _child: child,
            _dir: dir,
        }
    }

    /// Creates a run of `run` (and RunConfiguration `rc`) with the provider: its event follows 0.1 s later.
    async fn create_run(&self, ns: &str, run: &str, rc: &str) {
        let definition = json!({
            "name": format!("{ns}/{run}"), "version": "v1", "pipelineName": format!("{ns}/p"),
            "runConfigurationName": format!("{ns}/{rc}"), "experimentName": "",
            "artifacts": [{"name": "examples", "path": "CsvExampleGen:examples"}]
        });
        let response = reqwest::Client::new()
            .post(format!("{}/resource/run", self.base))
            .json(&definition)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
    }
}

/// Issue 6: an event POSTed by a provider service process (with its ServiceAccount token) completes the Run,
/// records the RunConfiguration's succeeded run with the artifacts it selects, and arrives on NATS as a
/// CloudEvent.
#[tokio::test]
async fn a_provider_service_event_updates_status_and_arrives_on_nats_as_a_cloud_event() {
    let (client, ns) = client_and_namespace().await;
    let (_nats, mut subscriber, feed) = feed_with_nats(&client, &ns).await;

    let provider = ProviderProcess::start(&ns, &feed.url).await;
    provider.create_run(&ns, "run", "rc").await;

    let message = next_json(&mut subscriber, WAIT).await;
    assert_eq!(message["specversion"], "1.0");
    assert_eq!(message["type"], "org.kubeflow.pipelines.run-completion");
    assert_eq!(message["source"], format!("{ns}/stub"));
    assert_eq!(message["subject"], format!("{ns}/rc"));
    assert_eq!(message["datacontenttype"], "application/json");
    assert!(
        message["id"].as_str().is_some_and(|id| id.len() == 40),
        "{message}"
    );
    let data = &message["data"];
    assert_eq!(data["status"], "succeeded");
    assert_eq!(data["runId"], "stub-run-1");
    assert_eq!(data["runName"], format!("{ns}/run"));
    let location = format!("stub://{ns}/run/CsvExampleGen/examples/0");
    assert_eq!(
        data["artifacts"],
        json!([{"name": "examples", "location": location}])
    );
    assert_eq!(message["time"], data["runEndTime"]);

    let rcs: Api<RunConfiguration> = Api::namespaced(client.clone(), &ns);
    let rc = rcs.get("rc").await.unwrap();
    assert_eq!(
        latest(&rc),
        ("stub-run-1".to_string(), vec![("examples".to_string(), location)])
    );
    assert!(rc.status.unwrap().latest_runs.succeeded.run_end_time.is_some());
    let runs: Api<Run> = Api::namespaced(client.clone(), &ns);
    let run = runs.get("run").await.unwrap();
    assert_eq!(
        run.status.unwrap().completion_state,
        Some(CompletionState::Succeeded)
    );
    feed.wait_answered(200, 1).await;
    drop(provider);
}

/// Authentication (docs/run-completion-events.md): only a Provider's ServiceAccount, with a token for the feed's
/// audience, reporting its own Provider's runs, gets in; the static token is the alternative.
#[tokio::test]
async fn unauthenticated_and_wrongly_authenticated_requests_are_refused() {
    let (client, ns) = client_and_namespace().await;
    objects(&client, &ns).await;
    let feed = RunningFeed::start(&client, feed_config(&ns, None)).await;
    let body = event(&ns, "r1", "2026-01-01T10:00:00Z");

    let (status, answer) = post_json(&feed.url, None, &body).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("no bearer token"),
        "{answer}"
    );
    let response = reqwest::Client::new()
        .post(&feed.url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    assert_eq!(post_json(&feed.url, Some("not-a-token"), &body).await.0, 401);
    let wrong_audience = service_account_token(&ns, PROVIDER_SA, &[]).await;
    let (status, answer) = post_json(&feed.url, Some(&wrong_audience), &body).await;
    assert_eq!(status, 401, "a token for another audience: {answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("kfp-operator"),
        "{answer}"
    );

    let stranger = service_account_token(&ns, "stranger", &["kfp-operator"]).await;
    let (status, answer) = post_json(&feed.url, Some(&stranger), &body).await;
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains(&format!("{ns}/stranger")),
        "{answer}"
    );

    let other = service_account_token(&ns, "other-sa", &["kfp-operator"]).await;
    let (status, answer) = post_json(&feed.url, Some(&other), &body).await;
    assert_eq!(
        status, 403,
        "Provider other reports Provider stub's run: {answer}"
    );
    assert_eq!(
        answer["error"],
        format!(
            "the event names provider \"{ns}/stub\", but the token belongs to ServiceAccount {ns}/other-sa \
             of Provider {ns}/other"
        ),
        "the provider as written, not a Debug struct"
    );
    let mut foreign = event(&ns, "r1", "2026-01-01T10:00:00Z");
    foreign["provider"] = json!(format!("{ns}/other"));
    foreign["runConfigurationName"] = json!(format!("{ns}/rc"));
    let (status, answer) = post_json(&feed.url, Some(&other), &foreign).await;
    assert_eq!(status, 403, "the RunConfiguration uses Provider stub: {answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("uses Provider"),
        "{answer}"
    );

    let rcs: Api<RunConfiguration> = Api::namespaced(client.clone(), &ns);
    assert_eq!(
        latest(&rcs.get("rc").await.unwrap()).0,
        "",
        "nothing refused was recorded"
    );

    let token = service_account_token(&ns, PROVIDER_SA, &["kfp-operator"]).await;
    let (status, answer) = post_json(&feed.url, Some(&token), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(latest(&rcs.get("rc").await.unwrap()).0, "r1");

    // The static token (a file, as a mounted Secret): accepted for an existing Provider, re-read when it changes.
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("feed-token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let mut config = feed_config(&ns, None);
    config.spec.run_completion_feed.authentication.token_review = false;
    config.spec.run_completion_feed.authentication.static_token_file = token_file.display().to_string();
    let static_feed = RunningFeed::start(&client, config).await;
    assert_eq!(post_json(&static_feed.url, Some(&token), &body).await.0, 401);
    let later = event(&ns, "r2", "2026-01-01T11:00:00Z");
    assert_eq!(post_json(&static_feed.url, Some("s3cret"), &later).await.0, 200);
    let mut unknown = later.clone();
    unknown["provider"] = json!(format!("{ns}/nobody"));
    let (status, answer) = post_json(&static_feed.url, Some("s3cret"), &unknown).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(
        answer["error"],
        format!("the event names provider \"{ns}/nobody\", which is not a Provider this operator knows")
    );
    std::fs::write(&token_file, "rotated").unwrap();
    assert_eq!(post_json(&static_feed.url, Some("s3cret"), &later).await.0, 401);
    assert_eq!(post_json(&static_feed.url, Some("rotated"), &later).await.0, 200);
    assert_eq!(latest(&rcs.get("rc").await.unwrap()).0, "r2");
}

/// A run completion event of `rc` as a Go provider service marshals it (Go's field order, RFC 3339 times with
/// nanoseconds, `null` for a nil slice).
fn go_event(ns: &str, run_id: &str) -> String {
    format!(
        concat!(
            r#"{{"status":"succeeded","pipelineName":"{ns}/p","runConfigurationName":"{ns}/rc","runId":"{id}","#,
            r#""runStartTime":"2026-01-01T10:00:00.123456789Z","runEndTime":"2026-01-01T10:05:35.5Z","#,
            r#""servingModelArtifacts":null,"pipelineComponents":[{{"name":"CsvExampleGen","componentArtifacts":"#,
            r#"[{{"name":"examples","artifacts":[{{"uri":"gs://b/{id}/examples","metadata":{{}}}}]}}]}}],"#,
            r#""provider":"{ns}/stub"}}"#
        ),
        ns = ns,
        id = run_id
    )
}

/// Migration from the Go operator (`authentication.allowUnauthenticated`): exactly what a Go provider service
/// sends is refused by default and accepted in migration mode, where a token that is sent is still checked and
/// the event must name an existing Provider.
#[tokio::test]
async fn migration_mode_accepts_what_a_go_provider_service_sends() {
    let (client, ns) = client_and_namespace().await;
    objects(&client, &ns).await;
    let strict = RunningFeed::start(&client, feed_config(&ns, None)).await;
    assert_eq!(
        strict.post_as_go_provider_service(&go_event(&ns, "go-1")).await,
        401,
        "tokens are required by default"
    );

    let mut config = feed_config(&ns, None);
    config
        .spec
        .run_completion_feed
        .authentication
        .allow_unauthenticated = true;
    let feed = RunningFeed::start(&client, config).await;
    assert_eq!(
        feed.post_as_go_provider_service(&go_event(&ns, "go-1")).await,
        200
    );
    let rcs: Api<RunConfiguration> = Api::namespaced(client.clone(), &ns);
    let (run_id, artifacts) = latest(&rcs.get("rc").await.unwrap());
    assert_eq!(run_id, "go-1");
    assert_eq!(
        artifacts,
        vec![("examples".to_string(), "gs://b/go-1/examples".to_string())]
    );
    let counted = feed
        .metrics
        .encode()
        .lines()
        .any(|l| l.contains("source=\"feed_unauthenticated\"") && l.contains("result=\"recorded\""));
    assert!(
        counted,
        "events without a token are counted apart:\n{}",
        feed.metrics.encode()
    );

    // A token that is sent is still checked; a tokenless event must name a Provider this operator knows.
    let body = event(&ns, "r2", "2026-01-01T11:00:00Z");
    assert_eq!(post_json(&feed.url, Some("not-a-token"), &body).await.0, 401);
    let mut unknown = body.clone();
    unknown["provider"] = json!(format!("{ns}/nobody"));
    let (status, answer) = post_json(&feed.url, None, &unknown).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(
        latest(&rcs.get("rc").await.unwrap()).0,
        "go-1",
        "nothing refused was recorded"
    );
}

/// The feed's status codes for bad requests (docs/run-completion-events.md, "The feed's answers"); nothing crashes and
/// nothing is recorded.
#[tokio::test]
async fn malformed_and_oversized_bodies_are_rejected_cleanly() {
    let (client, ns) = client_and_namespace().await;
    objects(&client, &ns).await;
    let mut config = feed_config(&ns, None);
    config.spec.run_completion_feed.max_body_bytes = 4096;
    let feed = RunningFeed::start(&client, config).await;
    let bearer = service_account_token(&ns, PROVIDER_SA, &["kfp-operator"]).await;
    let token = Some(bearer.as_str());
    let http = reqwest::Client::new();

    let get = http.get(&feed.url).bearer_auth(&bearer).send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    let (status, answer) = post(&feed.url, token, "text/plain", b"{}".to_vec()).await;
    assert_eq!(status, 415, "{answer}");
    let (status, answer) = post(&feed.url, token, "application/json", Vec::new()).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("empty"), "{answer}");
    let (status, answer) = post(&feed.url, token, "application/json", b"{\"status\": ".to_vec()).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("not a valid run completion event"),
        "{answer}"
    );
    let mut bad = event(&ns, "r1", "2026-01-01T10:00:00Z");
    bad["status"] = json!("running");
    let (status, answer) = post_json(&feed.url, token, &bad).await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().unwrap().contains("running"), "{answer}");
    let mut anonymous = event(&ns, "r1", "2026-01-01T10:00:00Z");
    anonymous.as_object_mut().unwrap().remove("runConfigurationName");
    let (status, answer) = post_json(&feed.url, token, &anonymous).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("neither a RunConfiguration"),
        "{answer}"
    );
    let mut gone = event(&ns, "r1", "2026-01-01T10:00:00Z");
    gone["runConfigurationName"] = json!(format!("{ns}/deleted"));
    gone["runName"] = json!(format!("{ns}/deleted-run"));
    assert_eq!(post_json(&feed.url, token, &gone).await.0, 410);

    let mut huge = event(&ns, "r1", "2026-01-01T10:00:00Z");
    huge["padding"] = json!("x".repeat(8192));
    let (status, answer) = post_json(&feed.url, token, &huge).await;
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("maxBodyBytes"),
        "{answer}"
    );
    let unknown = http
        .post(feed.url.replace("/events", "/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    let rcs: Api<RunConfiguration> = Api::namespaced(client.clone(), &ns);
    assert_eq!(latest(&rcs.get("rc").await.unwrap()).0, "");
    let good = event(&ns, "r1", "2026-01-01T10:00:00Z");
    assert_eq!(
        post_json(&feed.url, token, &good).await.0,
        200,
        "the feed still serves"
    );
    assert_eq!((feed.answered(413), feed.answered(400)), (1, 4));
}

/// Ordering (decision 0005): out-of-order and replayed events leave the newest run recorded; every event is published,
/// and a replay carries the same CloudEvents id.
#[tokio::test]
async fn out_of_order_and_replayed_events_leave_the_newest_run_recorded() {
    let (client, ns) = client_and_namespace().await;
    let (nats, mut subscriber, feed) = feed_with_nats(&client, &ns).await;
    let token = service_account_token(&ns, PROVIDER_SA, &["kfp-operator"]).await;
    let rcs: Api<RunConfiguration> = Api::namespaced(client.clone(), &ns);

    let sequence = [
        ("r2", "2026-01-01T11:00:00Z"),
        ("r1", "2026-01-01T10:00:00Z"),
        ("r2", "2026-01-01T11:00:00Z"),
        ("r3", "2026-01-01T10:30:00Z"),
    ];
    let mut ids = Vec::new();
    for (run_id, end) in sequence {
        let (status, answer) = post_json(&feed.url, Some(&token), &event(&ns, run_id, end)).await;
        assert_eq!(status, 200, "{answer}");
        let message = next_json(&mut subscriber, WAIT).await;
        assert_eq!(message["data"]["runId"], run_id);
        ids.push(message["id"].as_str().unwrap().to_string());
        assert_eq!(
            latest(&rcs.get("rc").await.unwrap()),
            (
                "r2".to_string(),
                vec![("examples".to_string(), "gs://b/r2/examples".to_string())]
            ),
            "after {run_id}"
        );
    }
    assert_eq!(ids[0], ids[2], "a replay has the same id");
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[1], ids[3]);

    // A newer run replaces it; the legacy format is the Go operator's body.
    let mut legacy = feed_config(&ns, Some(&nats));
    legacy.spec.run_completion_feed.nats.event_format = kfp_operator::config::EventFormat::Legacy;
    let legacy_feed = RunningFeed::start(&client, legacy).await;
    legacy_feed.wait_connected().await;
    let newest = event(&ns, "r4", "2026-01-02T09:00:00Z");
    assert_eq!(post_json(&legacy_feed.url, Some(&token), &newest).await.0, 200);
    let message = next_json(&mut subscriber, WAIT).await;
    assert_eq!(message.as_object().unwrap().keys().collect::<Vec<_>>(), ["data"]);
    assert_eq!(message["data"]["runId"], "r4");
    assert_eq!(
        message["data"]["artifacts"],
        json!([{"name": "examples", "location": "gs://b/r4/examples"}]),
        "the filter [pushed == 1] selects nothing from pushed: 0"
    );
    assert_eq!(latest(&rcs.get("rc").await.unwrap()).0, "r4");
}

/// At-least-once delivery (docs/run-completion-events.md, "The published event: NATS"): with NATS down the feed records
/// the status, answers 500, and the provider service retries until NATS is back; the event then arrives, none is lost,
/// and the status is right. Throughout, `/readyz` stays 200 (the replica keeps serving the webhooks:
/// docs/platform-guide.md#endpoints) and `/readyz?verbose` follows the connection.
#[tokio::test]
async fn with_nats_down_the_provider_retries_until_it_is_back_and_no_event_is_lost() {
    let (client, ns) = client_and_namespace().await;
    let (mut nats, mut subscriber, feed) = feed_with_nats(&client, &ns).await;
    let provider = ProviderProcess::start(&ns, &feed.url).await;
    // The probe server `kfp-operator run` serves, on the feed's readiness, as the kubelet and an operator see it.
    let probes = ProbeServer::start(&feed).await;
    assert_eq!(
        probes.get("/readyz?verbose").await,
        (200, "[+]nats connection ok\nreadyz: ok\n".to_string())
    );

    nats.stop().await;
    kfp_testenv::wait_for(
        "/readyz?verbose to report the NATS connection down",
        WAIT,
        || async {
            let answer = probes.get("/readyz?verbose").await;
            Ok::<_, String>(answer.1.contains("[-]nats connection not ok").then_some(()))
        },
    )
    .await
    .unwrap();
    assert_eq!(
        probes.get("/readyz?verbose").await,
        (200, "[-]nats connection not ok\nreadyz: ok\n".to_string()),
        "NATS down is reported but the status stays 200"
    );
    assert_eq!(
        probes.get("/readyz").await,
        (200, "ok".to_string()),
        "NATS down leaves the replica ready"
    );
    provider.create_run(&ns, "run", "rc").await;
    feed.wait_answered(500, 1).await;
    // The status is recorded first, although the publish failed.
    let runs: Api<Run> = Api::namespaced(client.clone(), &ns);
    wait_until(&runs, "run", "the Run to be completed", |r: &Run| {
        r.status.as_ref().and_then(|s| s.completion_state) == Some(CompletionState::Succeeded)
    })
    .await;
    assert_eq!(feed.answered(200), 0);

    nats.restart().await;
    let message = next_json(&mut subscriber, Duration::from_secs(60)).await;
    assert_eq!(message["data"]["runId"], "stub-run-1");
    assert_eq!(message["data"]["runName"], format!("{ns}/run"));
    feed.wait_answered(200, 1).await;
    assert_eq!(
        probes.get("/readyz?verbose").await,
        (200, "[+]nats connection ok\nreadyz: ok\n".to_string())
    );
    let rcs: Api<RunConfiguration> = Api::namespaced(client.clone(), &ns);
    assert_eq!(latest(&rcs.get("rc").await.unwrap()).0, "stub-run-1");
    // Exactly the one event: nothing else arrives.
    let extra = tokio::time::timeout(
        Duration::from_millis(500),
        futures::StreamExt::next(&mut subscriber),
    )
    .await;
    assert!(extra.is_err(), "no duplicate after a 200: {extra:?}");
    drop(provider);
}

/// 410: an event naming objects that do not exist is answered 410 once and dropped by the provider
/// service; the next event goes through.
#[tokio::test]
async fn an_event_for_missing_objects_is_gone_and_the_provider_drops_it() {
    let (client, ns) = client_and_namespace().await;
    objects(&client, &ns).await;
    let feed = RunningFeed::start(&client, feed_config(&ns, None)).await;
    let provider = ProviderProcess::start(&ns, &feed.url).await;
    provider.create_run(&ns, "missing-run", "missing-rc").await;
    provider.create_run(&ns, "run", "rc").await;
    let runs: Api<Run> = Api::namespaced(client.clone(), &ns);
    wait_until(&runs, "run", "the second Run to be completed", |r: &Run| {
        r.status.as_ref().and_then(|s| s.completion_state).is_some()
    })
    .await;
    feed.wait_answered(200, 1).await;
    assert_eq!(
        feed.answered(410),
        1,
        "the first event was answered 410 once and dropped"
    );
    drop(provider);
}

/// `/healthz`, `/readyz` and `/metrics` served on a free loopback port for a feed's readiness and metrics.
struct ProbeServer {
    base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl ProbeServer {
    async fn start(feed: &RunningFeed) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(kfp_operator::health::serve(
            listener,
            feed.readiness.clone(),
            feed.metrics.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        Self { base, _stop: stop }
    }

    /// The status and body of `GET path`.
    async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}
