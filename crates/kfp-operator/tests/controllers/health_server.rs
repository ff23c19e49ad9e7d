//! The probe and metrics server over real HTTP.

use std::time::Duration;

use kfp_operator::health::{Readiness, serve};
use kfp_operator::telemetry::{CONTENT_TYPE, Metrics};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

struct Server {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), kfp_operator::health::HealthError>>,
}

async fn start(readiness: Readiness, metrics: std::sync::Arc<Metrics>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, readiness, metrics, async {
        let _ = stopped.await;
    }));
    Server {
        base,
        stop: Some(stop),
        task,
    }
}

async fn get(url: &str) -> (u16, String, String) {
    kfp_providers::http::install_crypto_provider();
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn healthz_answers_while_the_process_runs() {
    let server = start(Readiness::new(), Metrics::shared()).await;
    let (status, _, body) = get(&format!("{}/healthz", server.base)).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
}

#[tokio::test]
async fn readyz_names_what_is_not_ready() {
    let readiness = Readiness::new();
    let caches = readiness.register("caches");
    let leader = readiness.register("leader-election");
    let server = start(readiness.clone(), Metrics::shared()).await;
    let url = format!("{}/readyz", server.base);

    let (status, _, body) = get(&url).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body, "not ready: caches\nnot ready: leader-election\n");

    caches.set(true);
    let (status, _, body) = get(&url).await;
    assert_eq!((status, body.as_str()), (503, "not ready: leader-election\n"));

    leader.set(true);
    let (status, _, body) = get(&url).await;
    assert_eq!((status, body.as_str()), (200, "ok"));

    // A check registered later makes the process unready again.
    let _webhooks = readiness.register("webhooks");
    let (status, _, body) = get(&url).await;
    assert_eq!((status, body.as_str()), (503, "not ready: webhooks\n"));
}

/// A reported check (the NATS connection) never takes `/readyz` down, so an outage of what it reports cannot empty
/// the webhook Service; `/readyz?verbose` lists it beside the gating checks (docs/platform-guide.md#endpoints).
#[tokio::test]
async fn a_reported_check_is_listed_but_never_makes_readyz_fail() {
    let readiness = Readiness::new();
    let caches = readiness.register("caches");
    let nats = readiness.register_reported("nats connection");
    let server = start(readiness.clone(), Metrics::shared()).await;
    let (plain, verbose) = (
        format!("{}/readyz", server.base),
        format!("{}/readyz?verbose", server.base),
    );

    let (status, _, body) = get(&verbose).await;
    assert_eq!(
        (status, body.as_str()),
        (
            503,
            "[-]caches not ok\n[-]nats connection not ok\nreadyz: not ready\n"
        )
    );
    let (status, _, body) = get(&plain).await;
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: caches\n"),
        "only gating checks are named"
    );

    caches.set(true);
    let (status, _, body) = get(&plain).await;
    assert_eq!((status, body.as_str()), (200, "ok"), "NATS down: still ready");
    let (status, _, body) = get(&verbose).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "[+]caches ok\n[-]nats connection not ok\nreadyz: ok\n")
    );

    nats.set(true);
    let (status, _, body) = get(&verbose).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "[+]caches ok\n[+]nats connection ok\nreadyz: ok\n")
    );
}

#[tokio::test]
async fn metrics_are_openmetrics_text() {
    let metrics = Metrics::shared();
    metrics.reconciled("pipeline", Duration::from_millis(5), None);
    let server = start(Readiness::new(), metrics.clone()).await;
    let (status, content_type, body) = get(&format!("{}/metrics", server.base)).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, CONTENT_TYPE);
    assert!(
        body.contains(r#"kfp_operator_reconciliations_total{controller="pipeline",result="success"} 1"#),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");

    // Served live, not a snapshot.
    metrics.reconciled("pipeline", Duration::from_millis(5), None);
    let (_, _, body) = get(&format!("{}/metrics", server.base)).await;
    assert!(
        body.contains(r#"kfp_operator_reconciliations_total{controller="pipeline",result="success"} 2"#),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let server = start(Readiness::new(), Metrics::shared()).await;
    let (status, _, _) = get(&format!("{}/livez", server.base)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_server_stops_on_shutdown() {
    let mut server = start(Readiness::new(), Metrics::shared()).await;
    let (status, _, _) = get(&format!("{}/healthz", server.base)).await;
    assert_eq!(status, 200);
    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), &mut server.task)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
    kfp_providers::http::install_crypto_provider();
    assert!(reqwest::get(format!("{}/healthz", server.base)).await.is_err());
}
