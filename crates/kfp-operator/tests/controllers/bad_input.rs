//! Bad input at the edges (issue 17, item 4): every endpoint answers every request with a status line, quickly,
//! never with a 5xx, never echoing much of what it was sent, and keeps answering afterwards.
//!
//! Each endpoint (the run-completion feed, the webhook server over TLS, the health and metrics server, the provider
//! service) gets a few thousand requests from a seeded generator: random methods, paths, headers and bodies,
//! huge and malformed ones among them, written as raw bytes on loopback connections. Request `i` of a run is made
//! from `seed + i` alone, so a failure names the seed and index that reproduce it.

// The chaos run of issue 17 saw feed connections closed without an answer and TLS errors on the webhook path of
// an unknown kind; the suspected cause, a refusal (401, 404, 405, 413) closing with the body unread so that the
// kernel resets the connection, is guarded against by the servers' lingering close. Loopback did not reproduce it
// here (0 unanswered before and after); every other request is still sent whole before its answer is read, as
// most clients do, so such a reset would show.

use crate::support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kfp_operator::health::Readiness;
use kfp_operator::telemetry::Metrics;
use kfp_providers::config::ServiceConfig;
use kfp_providers::service::ProviderServer;
use serde_json::json;
use support::chaos::fuzz::{
    BOUND, GIVE_UP, MAX_ERROR_BODY, Target, exchange, fuzz_and_check, get, parse, post, webhook_target,
};
use support::nats::RunningFeed;
use support::{client_and_namespace, config_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn event(ns: &str, run_id: &str) -> serde_json::Value {
    json!({
        "status": "succeeded", "pipelineName": format!("{ns}/p"), "runName": format!("{ns}/run"),
        "runId": run_id, "runEndTime": "2026-12-07T10:00:00Z",
        "pipelineComponents": [{"name": "Trainer", "componentArtifacts": [{"name": "model",
            "artifacts": [{"uri": "gs://b/model", "metadata": {"pushed": 1}}]}]}],
        "provider": format!("{ns}/stub")
    })
}

/// A feed that accepts events without a token (so bodies are read and parsed whatever the Authorization).
async fn open_feed() -> (String, RunningFeed) {
    let (client, ns) = client_and_namespace().await;
    let yaml = format!(
        "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Provider
metadata: {{name: stub, namespace: {ns}}}
spec: {{serviceImage: unused, serviceAccount: provider-sa, pipelineRootStorage: /tmp, allowedNamespaces: [{ns}]}}
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Run
metadata: {{name: run, namespace: {ns}}}
spec: {{provider: {ns}/stub, pipeline: p}}
"
    );
    kfp_testenv::apply_yaml(&client, &yaml, &kfp_testenv::ApplyOptions::in_namespace(&ns))
        .await
        .unwrap();
    let mut config = config_for(&ns);
    config
        .spec
        .run_completion_feed
        .authentication
        .allow_unauthenticated = true;
    config.spec.run_completion_feed.max_body_bytes = 1024 * 1024;
    let feed = RunningFeed::start(&client, config).await;
    (ns, feed)
}

fn feed_target(ns: &str, feed: &RunningFeed) -> Target {
    let addr = feed.url.trim_start_matches("http://").trim_end_matches("/events");
    Target {
        name: "run-completion feed",
        addr: addr.parse().unwrap(),
        tls: None,
        paths: vec!["/events".into()],
        body: event(ns, "run-1"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_feed_answers_every_request() {
    let (ns, feed) = open_feed().await;
    let target = feed_target(&ns, &feed);
    // Afterwards: an event of a run nobody knows is answered 410.
    let mut gone = event(&ns, "run-2");
    gone["runName"] = json!(format!("{ns}/nobody"));
    fuzz_and_check(target, 17_001, post("/events", &gone), 410).await;
}

/// A 1 MB `runId` was accepted and stored on the Run: refused with 400 naming the field and its bound.
#[tokio::test]
async fn the_feed_refuses_overlong_fields_naming_them() {
    let (ns, feed) = open_feed().await;
    let target = feed_target(&ns, &feed);
    let answer = exchange(&target, post("/events", &event(&ns, &"r".repeat(1_000_000))))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&answer.body);
    assert_eq!(answer.status, 400, "{text}");
    assert!(text.contains("runId") && text.contains("512"), "{text}");
    assert!(answer.body.len() < MAX_ERROR_BODY, "{text}");
    let mut long_uri = event(&ns, "r-1");
    long_uri["pipelineComponents"][0]["componentArtifacts"][0]["artifacts"][0]["uri"] =
        json!("u".repeat(10_000));
    let answer = exchange(&target, post("/events", &long_uri)).await.unwrap();
    let text = String::from_utf8_lossy(&answer.body);
    assert_eq!(answer.status, 400, "{text}");
    assert!(text.contains("uri") && text.contains("4096"), "{text}");
    // A `runId` at the bound is recorded.
    let answer = exchange(&target, post("/events", &event(&ns, &"r".repeat(512))))
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
}

/// Answers that quote what they were sent quote a bounded part of it.
#[tokio::test]
async fn refusals_quote_a_bounded_part_of_the_input() {
    let (ns, feed) = open_feed().await;
    let target = feed_target(&ns, &feed);
    let mut bad_status = event(&ns, "r-1");
    bad_status["status"] = json!("s".repeat(500_000));
    let answer = exchange(&target, post("/events", &bad_status)).await.unwrap();
    assert_eq!(answer.status, 400);
    assert!(answer.body.len() < MAX_ERROR_BODY, "{} bytes", answer.body.len());
    let long_path = format!("/{}", "p".repeat(50_000));
    let answer = exchange(&target, get(&long_path)).await.unwrap();
    assert_eq!(answer.status, 404);
    assert!(answer.body.len() < MAX_ERROR_BODY, "{} bytes", answer.body.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_webhook_server_answers_every_request() {
    let (client, _ns) = client_and_namespace().await;
    let (target, check) = webhook_target(client).await;
    fuzz_and_check(target, 17_002, check, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_health_server_answers_every_request() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(kfp_operator::health::serve(
        listener,
        Readiness::new(),
        Metrics::shared(),
        std::future::pending(),
    ));
    let target = Target {
        name: "health and metrics server",
        addr,
        tls: None,
        paths: vec![
            "/healthz".into(),
            "/readyz".into(),
            "/readyz?verbose".into(),
            "/metrics".into(),
        ],
        body: json!({"a": "b"}),
    };
    fuzz_and_check(target, 17_003, get("/healthz"), 200).await;
}

/// The provider service of the stub provider on a free loopback port.
async fn provider_service() -> SocketAddr {
    let config = ServiceConfig::from_env_vars([
        ("PROVIDERNAME", "ops/stub".to_string()),
        ("SERVER_HOST", "127.0.0.1".into()),
        ("SERVER_PORT", "0".into()),
        ("METRICS_PORT", "0".into()),
        ("SERVER_MAXBODYBYTES", "65536".into()),
    ])
    .unwrap();
    let server = ProviderServer::bind(&config, Arc::new(kfp_providers::stub::StubProvider::new()), None)
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run(std::future::pending()));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_provider_service_answers_every_request() {
    let addr = provider_service().await;
    let mut paths: Vec<String> = ["pipeline", "run", "runschedule", "experiment", "widget"]
        .iter()
        .flat_map(|kind| {
            [
                format!("/resource/{kind}"),
                format!("/resource/{kind}/some-id"),
                format!("/resource/{kind}/{}", "i".repeat(5000)),
            ]
        })
        .collect();
    paths.extend(["/livez".to_string(), "/readyz".to_string()]);
    let run = json!({
        "name": "ns/r", "version": "v1", "pipelineName": "ns/p", "pipelineVersion": "v1",
        "experimentName": "ns/e", "runConfigurationName": "ns/rc", "artifacts": [],
        "parameters": {"learning_rate": "0.1"}, "runtimeParameters": {}
    });
    let target = Target {
        name: "provider service",
        addr,
        tls: None,
        paths,
        body: run,
    };
    fuzz_and_check(target, 17_004, get("/livez"), 200).await;
}

/// A client that stops sending mid-body gets its answer within the body deadline instead of holding the request
/// forever (the deadline is the bound; this test takes about that long).
#[tokio::test]
async fn a_stalled_body_is_answered_within_the_deadline() {
    let addr = provider_service().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /resource/run HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n{\"name\":")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while parse(&answer, false).is_none() {
        let read = tokio::time::timeout(GIVE_UP, stream.read(&mut buffer))
            .await
            .expect("no answer to a stalled body within 10 s")
            .unwrap();
        assert!(read > 0, "closed without an answer");
        answer.extend_from_slice(&buffer[..read]);
    }
    let took = started.elapsed();
    let answer = parse(&answer, false).unwrap();
    assert_eq!(answer.status, 400, "{}", String::from_utf8_lossy(&answer.body));
    let deadline = kfp_providers::service::edge::BODY_IDLE;
    assert!(
        took >= deadline - Duration::from_millis(100) && took < deadline + BOUND,
        "{took:?}"
    );
}

/// An `{id}` longer than any platform's is refused naming the bound, without being echoed back.
#[tokio::test]
async fn the_provider_service_refuses_an_overlong_id_without_echoing_it() {
    let addr = provider_service().await;
    let target = Target {
        name: "provider service",
        addr,
        tls: None,
        paths: Vec::new(),
        body: json!({}),
    };
    // (hyper answers 414 to a path over 64 KiB before any handler.)
    let path = format!("/resource/experiment/{}", "i".repeat(20_000));
    let request = format!("DELETE {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes();
    let answer = exchange(&target, request).await.unwrap();
    let text = String::from_utf8_lossy(&answer.body);
    assert_eq!(answer.status, 400, "{text}");
    assert!(text.contains("{id}") && text.contains("1024"), "{text}");
    assert!(answer.body.len() < MAX_ERROR_BODY, "{} bytes", answer.body.len());
}
