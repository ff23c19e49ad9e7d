//! Bad input at the edges (issue 17, item 4): every endpoint answers every request with a status line, quickly,
//! never with a 5xx, never echoing much of what it was sent, and keeps answering afterwards.
//!
//! Each endpoint (the run-completion feed, the webhook server over TLS, the health and metrics server, the provider
//! service) gets a few thousand requests from a seeded generator: random methods, paths, headers and bodies,
//! huge and malformed ones among them, written as raw bytes on loopback connections. Request `i` of a run is made
//! from `seed + i` alone, so a failure names the seed and index that reproduce it.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

// The chaos run of issue 17 saw feed connections closed without an answer and TLS errors on the webhook path of
// an unknown kind; the suspected cause, a refusal (401, 404, 405, 413) closing with the body unread so that the
// kernel resets the connection, is guarded against by the servers' lingering close. Loopback did not reproduce it
// here (0 unanswered before and after); every other request is still sent whole before its answer is read, as
// most clients do, so such a reset would show.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kfp_core::conversion::ConversionConfig;
use kfp_operator::health::Readiness;
use kfp_operator::telemetry::Metrics;
use kfp_operator::webhook::certificates::Material;
use kfp_operator::webhook::{Kind, ServingCertificate, WebhookState};
use kfp_providers::config::ServiceConfig;
use kfp_providers::service::ProviderServer;
use serde_json::json;
use support::nats::RunningFeed;
use support::{client_and_namespace, config_for};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Requests per endpoint.
const REQUESTS: u64 = 2000;
/// Connections in flight at once.
const CONCURRENCY: u64 = 8;
/// Every answer must come within this bound...
const BOUND: Duration = Duration::from_secs(1);
/// ...and a missing one is given up on after this long (generous: a bound, not a benchmark).
const GIVE_UP: Duration = Duration::from_secs(10);
/// The most an error answer (and so the log line that says the same) may hold.
const MAX_ERROR_BODY: usize = 2048;

/// splitmix64: small, seeded, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap()
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    fn text(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b'a' + (self.next() % 26) as u8))
            .collect()
    }

    /// Up to `max` letters.
    fn word(&mut self, max: usize) -> String {
        let len = self.below(max);
        self.text(len)
    }
}

/// What an endpoint is fuzzed with.
struct Target {
    name: &'static str,
    addr: SocketAddr,
    tls: Option<TlsConnector>,
    /// Paths it serves; the generator mostly uses these.
    paths: Vec<String>,
    /// A body of the shape it expects, mutated by the generator.
    body: serde_json::Value,
}

/// A request's bytes and a short description for failure reports.
fn request(target: &Target, seed: u64, index: u64) -> (Vec<u8>, String) {
    let rng = &mut Rng(seed.wrapping_add(index).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let method = rng.pick(&[
        "POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "BREW", "post",
        "G@T",
    ]);
    let path = match rng.below(10) {
        0..=5 => target.paths[rng.below(target.paths.len())].clone(),
        6 => format!("/{}", rng.word(40)),
        7 => format!("/{}", "a".repeat(1 + rng.below(16 * 1024))),
        8 => format!("{}/%ff%00%2F..%2F{}", target.paths[0], rng.text(5)),
        _ => format!("{}?{}={}", target.paths[0], rng.text(4), rng.word(3000)),
    };
    let version = if rng.chance(5) { "HTTP/1.0" } else { "HTTP/1.1" };
    let mut head = format!("{method} {path} {version}\r\n");
    if rng.chance(95) {
        head.push_str(&format!("Host: {}\r\n", target.addr));
    }
    match rng.below(6) {
        0 => {}
        1 => head.push_str("Content-Type: text/plain\r\n"),
        2 => head.push_str("Content-Type: \u{1}garbage\r\n"),
        _ => head.push_str("Content-Type: application/json\r\n"),
    }
    match rng.below(5) {
        0 => head.push_str(&format!("Authorization: Bearer {}\r\n", rng.word(200))),
        1 => head.push_str("Authorization: Basic Zm9vOmJhcg==\r\n"),
        _ => {}
    }
    if rng.chance(5) {
        head.push_str(&format!(
            "X-{}: {}\r\n",
            rng.text(8),
            "v".repeat(rng.below(64 * 1024))
        ));
    }
    let (body, kind) = body(rng, &target.body);
    let framing = rng.below(20);
    match framing {
        0 => head.push_str("Transfer-Encoding: chunked\r\n"),
        1 => head.push_str(&format!(
            "Content-Length: {}\r\nContent-Length: {}\r\n",
            body.len(),
            body.len() + 1
        )),
        2 => head.push_str(&format!("Content-Length: {}\r\n", body.len() / 2)),
        3 => head.push_str("Content-Length: -1\r\n"),
        4 if body.is_empty() => {}
        _ => head.push_str(&format!("Content-Length: {}\r\n", body.len())),
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if framing == 0 {
        for chunk in body.chunks(64 * 1024) {
            bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            bytes.extend_from_slice(chunk);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
    } else {
        bytes.extend_from_slice(&body);
    }
    let shown: String = path.chars().take(60).collect();
    let description = format!(
        "#{index} {method} {shown} ({} path bytes), body {kind} of {} bytes, framing {framing}",
        path.len(),
        body.len()
    );
    (bytes, description)
}

/// A body: the endpoint's own shape with one field replaced by something bad, or worse.
fn body(rng: &mut Rng, shape: &serde_json::Value) -> (Vec<u8>, &'static str) {
    match rng.below(20) {
        0 => (Vec::new(), "empty"),
        1 => {
            let len = rng.below(2048);
            (rng.bytes(len), "random")
        }
        2 => (vec![b'['; 20_000 + rng.below(80_000)], "deep"),
        3 => {
            let len = 1_000_000 + rng.below(2_000_000);
            (rng.bytes(len), "huge random")
        }
        4..=6 => {
            let mut value = shape.clone();
            let huge = "x".repeat(if rng.chance(50) {
                1_000_000
            } else {
                300 + rng.below(5000)
            });
            replace_a_string(rng, &mut value, &huge);
            (serde_json::to_vec(&value).unwrap(), "long field")
        }
        7 => {
            let text = serde_json::to_vec(shape).unwrap();
            let cut = rng.below(text.len());
            (text[..cut].to_vec(), "truncated")
        }
        8..=11 => {
            let mut value = shape.clone();
            let odd = [
                json!(null),
                json!(1),
                json!([]),
                json!({}),
                json!("\u{0}"),
                json!(-1e300),
            ];
            let replacement = odd[rng.below(odd.len())].clone();
            replace_any(rng, &mut value, replacement);
            (serde_json::to_vec(&value).unwrap(), "mutated")
        }
        _ => (serde_json::to_vec(shape).unwrap(), "shaped"),
    }
}

fn leaves(value: &mut serde_json::Value) -> Vec<&mut serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map.values_mut().flat_map(leaves).collect(),
        serde_json::Value::Array(items) => items.iter_mut().flat_map(leaves).collect(),
        leaf => vec![leaf],
    }
}

fn replace_any(rng: &mut Rng, value: &mut serde_json::Value, replacement: serde_json::Value) {
    let mut all = leaves(value);
    if !all.is_empty() {
        let at = rng.below(all.len());
        *all[at] = replacement;
    }
}

fn replace_a_string(rng: &mut Rng, value: &mut serde_json::Value, replacement: &str) {
    let mut strings: Vec<_> = leaves(value).into_iter().filter(|v| v.is_string()).collect();
    if !strings.is_empty() {
        let at = rng.below(strings.len());
        *strings[at] = json!(replacement);
    }
}

/// An answer: its status and body (as far as read).
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// Writes `bytes` while reading the answer (a server may answer before it read everything); the status line, the
/// headers and a `Content-Length` body.
async fn exchange(target: &Target, bytes: Vec<u8>) -> Result<Answer, String> {
    exchange_as(target, bytes, false).await
}

/// [`exchange`]; with `send_all_first`, as most HTTP clients do (curl, Go's, reqwest): the whole request is written
/// before the answer is read.
async fn exchange_as(target: &Target, bytes: Vec<u8>, send_all_first: bool) -> Result<Answer, String> {
    let tcp = TcpStream::connect(target.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    // A HEAD answer says how long the GET's body would be, and has none.
    let head = bytes.starts_with(b"HEAD ");
    match &target.tls {
        None => exchange_on(tcp, bytes, head, send_all_first).await,
        Some(connector) => {
            let name = rustls::pki_types::ServerName::IpAddress(target.addr.ip().into());
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            exchange_on(tls, bytes, head, send_all_first).await
        }
    }
}

async fn exchange_on<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    bytes: Vec<u8>,
    head: bool,
    send_all_first: bool,
) -> Result<Answer, String> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let send = async move {
        // The server may close early; what matters is whether it answered.
        let _ = writer.write_all(&bytes).await;
        let _ = writer.flush().await;
        writer
    };
    let writing = if send_all_first {
        let writer = send.await;
        tokio::spawn(async move { writer })
    } else {
        tokio::spawn(send)
    };
    let mut answer = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let result = loop {
        if let Some(parsed) = parse(&answer, head) {
            break Ok(parsed);
        }
        match reader.read(&mut buffer).await {
            Ok(0) if answer.is_empty() => break Err("closed without an answer".to_string()),
            Ok(0) => break parse_partial(&answer),
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e) if answer.is_empty() => break Err(format!("read failed without an answer: {e}")),
            Err(_) => break parse_partial(&answer),
        }
    };
    writing.abort();
    result
}

/// A complete answer: status line, headers and `Content-Length` bytes of body (or no length: what came).
fn parse(bytes: &[u8], is_head: bool) -> Option<Answer> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]);
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .filter(|_| !is_head)
        .unwrap_or(0);
    let body = &bytes[end + 4..];
    (body.len() >= length || head.starts_with("HTTP/1.1 1")).then(|| Answer {
        status: status(&head).unwrap_or(0),
        body: body[..length.min(body.len())].to_vec(),
    })
}

fn parse_partial(bytes: &[u8]) -> Result<Answer, String> {
    let head = String::from_utf8_lossy(bytes);
    status(&head)
        .map(|status| Answer {
            status,
            body: Vec::new(),
        })
        .ok_or_else(|| {
            format!(
                "no status line in {:?}",
                head.chars().take(80).collect::<String>()
            )
        })
}

fn status(head: &str) -> Option<u16> {
    let line = head.lines().next()?;
    let mut parts = line.split(' ');
    (parts.next()?.starts_with("HTTP/1.")).then_some(())?;
    parts.next()?.parse().ok()
}

/// What a fuzz run found.
#[derive(Default)]
struct Report {
    sent: u64,
    unanswered: Vec<String>,
    server_errors: Vec<String>,
    slow: Vec<String>,
    echoing: Vec<String>,
    statuses: std::collections::BTreeMap<u16, u64>,
    slowest: Duration,
}

impl Report {
    fn failures(&self) -> usize {
        self.unanswered.len() + self.server_errors.len() + self.slow.len() + self.echoing.len()
    }
}

/// Sends [`REQUESTS`] generated requests to `target`, [`CONCURRENCY`] at a time.
async fn fuzz(target: Arc<Target>, seed: u64) -> Report {
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        let target = target.clone();
        workers.spawn(async move {
            let mut report = Report::default();
            let mut index = worker;
            while index < REQUESTS {
                let (bytes, description) = request(&target, seed, index);
                let started = Instant::now();
                // Every other request is sent whole before its answer is read, as most clients do.
                let answer = tokio::time::timeout(GIVE_UP, exchange_as(&target, bytes, index % 2 == 1)).await;
                let took = started.elapsed();
                report.sent += 1;
                report.slowest = report.slowest.max(took);
                match answer {
                    Err(_) => report
                        .unanswered
                        .push(format!("{description}: nothing within {GIVE_UP:?}")),
                    Ok(Err(error)) => report.unanswered.push(format!("{description}: {error}")),
                    Ok(Ok(answer)) => {
                        *report.statuses.entry(answer.status).or_default() += 1;
                        // 501 is the provider service's contract for what a provider does not implement.
                        if answer.status >= 500 && answer.status != 501 {
                            let text = String::from_utf8_lossy(&answer.body);
                            report.server_errors.push(format!(
                                "{description}: {} {}",
                                answer.status,
                                text.chars().take(300).collect::<String>()
                            ));
                        }
                        if answer.status >= 400 && answer.body.len() > MAX_ERROR_BODY {
                            report.echoing.push(format!(
                                "{description}: a {}-byte error answer",
                                answer.body.len()
                            ));
                        }
                        if took > BOUND {
                            report
                                .slow
                                .push(format!("{description}: answered after {took:?}"));
                        }
                    }
                }
                index += CONCURRENCY;
            }
            report
        });
    }
    let mut total = Report::default();
    while let Some(report) = workers.join_next().await {
        let report = report.unwrap();
        total.sent += report.sent;
        total.unanswered.extend(report.unanswered);
        total.server_errors.extend(report.server_errors);
        total.slow.extend(report.slow);
        total.echoing.extend(report.echoing);
        total.slowest = total.slowest.max(report.slowest);
        for (status, count) in report.statuses {
            *total.statuses.entry(status).or_default() += count;
        }
    }
    println!(
        "{}: {} requests (seed {seed}): {} unanswered, {} 5xx, {} slower than {BOUND:?}, {} error answers over \
         {MAX_ERROR_BODY} bytes; slowest {:?}; statuses {:?}",
        target.name,
        total.sent,
        total.unanswered.len(),
        total.server_errors.len(),
        total.slow.len(),
        total.echoing.len(),
        total.slowest,
        total.statuses
    );
    total
}

/// Fuzzes `target`, then checks it still answers `check` with `expected`.
async fn fuzz_and_check(target: Target, seed: u64, check: Vec<u8>, expected: u16) {
    let target = Arc::new(target);
    let report = fuzz(target.clone(), seed).await;
    let show = |what: &str, items: &[String]| {
        if items.is_empty() {
            String::new()
        } else {
            format!(
                "\n{what} ({}):\n  {}",
                items.len(),
                items.iter().take(10).cloned().collect::<Vec<_>>().join("\n  ")
            )
        }
    };
    assert_eq!(
        report.failures(),
        0,
        "{}: {} of {} requests failed (seed {seed}){}{}{}{}",
        target.name,
        report.failures(),
        report.sent,
        show("no answer", &report.unanswered),
        show("5xx", &report.server_errors),
        show("slow", &report.slow),
        show("echoing", &report.echoing)
    );
    let answer = exchange(&target, check).await.unwrap();
    assert_eq!(
        answer.status,
        expected,
        "{}: {}",
        target.name,
        String::from_utf8_lossy(&answer.body)
    );
}

fn post(path: &str, body: &serde_json::Value) -> Vec<u8> {
    let body = serde_json::to_vec(body).unwrap();
    let mut bytes = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

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

fn tls_connector(ca_pem: &str) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in kfp_operator::webhook::tls::certificates_from_pem(ca_pem.as_bytes()).unwrap() {
        roots.add(cert).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_webhook_server_answers_every_request() {
    let (client, _ns) = client_and_namespace().await;
    let material = Material::generate(
        &["127.0.0.1".to_string()],
        SystemTime::now(),
        Duration::from_secs(3600),
        None,
    )
    .unwrap();
    let serving = ServingCertificate::new();
    serving
        .set_pem(material.cert_pem.as_bytes(), material.key_pem.as_bytes())
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = kfp_operator::webhook::router(WebhookState {
        client,
        conversion: Arc::new(ConversionConfig::default()),
    });
    tokio::spawn(kfp_operator::webhook::tls::serve(
        listener,
        serving,
        router,
        std::future::pending(),
    ));
    let mut paths: Vec<String> = Kind::ALL.iter().map(|kind| kind.validate_path()).collect();
    paths.push(kfp_operator::webhook::CONVERT_PATH.to_string());
    paths.push("/validate-pipelines-kubeflow-org-v1beta1-widget".to_string());
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-1", "kind": {"group": "pipelines.kubeflow.org", "version": "v1beta1", "kind": "Pipeline"},
            "resource": {"group": "pipelines.kubeflow.org", "version": "v1beta1", "resource": "pipelines"},
            "operation": "CREATE", "namespace": "ns", "name": "p", "userInfo": {"username": "u"},
            "object": {"apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "Pipeline",
                "metadata": {"name": "p", "namespace": "ns"}, "spec": {"provider": "ns/stub", "image": "i", "framework": {"name": "tfx", "parameters": {}}}}}
    });
    let conversion = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
        "request": {"uid": "c-1", "desiredAPIVersion": "pipelines.kubeflow.org/v1beta1", "objects": [
            {"apiVersion": "pipelines.kubeflow.org/v1alpha6", "kind": "Experiment", "metadata": {"name": "e", "namespace": "ns"}, "spec": {"description": "d"}}]}
    });
    let target = Target {
        name: "webhook server",
        addr,
        tls: Some(tls_connector(&material.ca_pem)),
        paths,
        // Admission reviews: the richer shape (conversion reviews come through the same body handling).
        body: review,
    };
    fuzz_and_check(
        target,
        17_002,
        post(kfp_operator::webhook::CONVERT_PATH, &conversion),
        200,
    )
    .await;
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
