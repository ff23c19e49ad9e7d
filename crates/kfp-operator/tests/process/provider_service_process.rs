//! `kfp-operator provider-service --provider stub` as a real process on loopback, driven end to end by the
//! HttpProvider through the conformance kit; its events go to a test feed that fails once (retry) and checks the
//! bearer token read from a token file. SIGTERM stops it gracefully.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kfp_core::event::RunCompletionEventData;
use kfp_core::provider::{
    DeliveryOutcome, DeliveryReceipt, EventDelivery, EventSource, Provider, ProviderError,
};
use kfp_providers::conformance::{self, ConformanceFixtures};
use kfp_providers::http::HttpProvider;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.1 feed: answers the scripted statuses (then 200), records (authorization, status), and
/// passes accepted events on.
async fn feed(script: Vec<u16>) -> (String, Arc<Mutex<Vec<(Option<String>, u16)>>>, FeedEvents) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::unbounded_channel();
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let (script, record, tx) = (script.clone(), record.clone(), tx.clone());
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read one request: headers, then Content-Length bytes of body.
                let (head, body) = loop {
                    let n = socket.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        while buffer.len() < end + 4 + length {
                            let n = socket.read(&mut chunk).await.unwrap();
                            buffer.extend_from_slice(&chunk[..n]);
                        }
                        break (head, buffer[end + 4..end + 4 + length].to_vec());
                    }
                };
                let authorization = head
                    .lines()
                    .find_map(|l| {
                        l.split_once(':')
                            .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                    })
                    .map(|(_, v)| v.trim().to_string());
                let status = script.lock().unwrap().pop_front().unwrap_or(200);
                record.lock().unwrap().push((authorization, status));
                if status == 200 {
                    let event: RunCompletionEventData = serde_json::from_slice(&body).unwrap();
                    tx.send(event).unwrap();
                }
                let response =
                    format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                socket.write_all(response.as_bytes()).await.unwrap();
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, seen, FeedEvents(rx))
}

struct FeedEvents(mpsc::UnboundedReceiver<RunCompletionEventData>);

#[async_trait::async_trait]
impl EventSource for FeedEvents {
    async fn next_event(&mut self) -> Result<Option<EventDelivery>, ProviderError> {
        Ok(self.0.recv().await.map(|event| EventDelivery {
            receipt: DeliveryReceipt(event.run_id.clone()),
            event,
        }))
    }
    async fn settle(&mut self, _: DeliveryReceipt, _: DeliveryOutcome) -> Result<(), ProviderError> {
        Ok(())
    }
}

#[tokio::test]
async fn the_provider_service_process_serves_the_stub_and_forwards_events() {
    kfp_providers::http::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "process-token\n").unwrap();
    let (url, seen, mut events) = feed(vec![500]).await;
    let (port, metrics_port) = (free_port(), free_port());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kfp-operator"))
        .args(["provider-service", "--provider", "stub"])
        .env("PROVIDERNAME", "kfp-operator-system/stub")
        .env("PARAMETERS_EVENTDELAYSECONDS", "0.1")
        .env("SERVER_HOST", "127.0.0.1")
        .env("SERVER_PORT", port.to_string())
        .env("METRICS_PORT", metrics_port.to_string())
        .env("OPERATORWEBHOOK", &url)
        .env("OPERATORWEBHOOK_TOKEN_FILE", &token_file)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the provider service exited early"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the provider service did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let provider: Arc<dyn Provider> = Arc::new(HttpProvider::new(&base).unwrap());
    let mut fixtures = ConformanceFixtures::stub();
    fixtures.event_timeout = Duration::from_secs(20);
    let report = conformance::run_all_with_events(provider, &mut events, &fixtures).await;
    assert!(report.passed(), "{report}");

    // The default retry waits 1 s after the 500; both runs' events arrive, all with the token.
    let _ = tokio::time::timeout(Duration::from_secs(20), events.next_event())
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    let statuses: Vec<u16> = seen.iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses, [500, 200, 200]);
    assert!(
        seen.iter()
            .all(|(auth, _)| auth.as_deref() == Some("Bearer process-token")),
        "{seen:?}"
    );

    let metrics = client
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"provider_webhook_send_events_count_total{result="RecoverableFailure"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"route="resource/run",method="POST",code="201""#),
        "{metrics}"
    );

    // SIGTERM: graceful shutdown, exit code 0.
    let pid = child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}
