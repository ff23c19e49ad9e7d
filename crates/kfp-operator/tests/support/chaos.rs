//! The chaos suite's pieces (`tests/chaos.rs`, docs/reliability.md "Chaos suite"): a counting in-memory backend
//! that behaves like a real platform (every create makes a new object with a fresh id, runs finish and report
//! their completion, `find` looks objects up by their resource), served as a provider service that forwards its
//! run-completion events to the operator's feed; and the seeded request generator the endpoint tests share.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kfp_core::definitions::{
    ExperimentDefinition, PipelineDefinitionWrapper, RunDefinition, RunScheduleDefinition,
};
use kfp_core::event::{RunCompletionEventData, RunCompletionStatus};
use kfp_core::executor::ResourceKind;
use kfp_core::provider::{
    DeliveryOutcome, DeliveryReceipt, EventDelivery, EventSource, ObjectIdentity, Provider, ProviderConfig,
    ProviderError,
};
use kfp_core::values::NamespacedName;
use kfp_providers::config::{RetryPolicy, ServiceConfig};
use kfp_providers::service::ProviderServer;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// One object the backend made.
#[derive(Debug, Clone)]
pub struct Object {
    pub kind: ResourceKind,
    pub id: String,
    /// The resource it was made for (`namespace/name` of the definition).
    pub name: NamespacedName,
    /// The resource's version the definition carried.
    pub version: String,
    /// The RunConfiguration a run or run schedule was made for (empty otherwise).
    pub run_configuration: NamespacedName,
    pub created: Time,
    /// Deleted (a run: stopped) by the operator.
    pub deleted: bool,
    /// A run that finished (and reported its completion).
    pub finished: bool,
}

/// What the backend holds and counted.
#[derive(Debug, Default)]
pub struct Ledger {
    pub objects: Vec<Object>,
    /// `find` calls answered, and how many found an object.
    pub finds: u64,
    pub found: u64,
    /// Deletes of an id the backend does not hold (or holds deleted): answered NotFound.
    pub deletes_of_missing: u64,
    /// Event deliveries settled, by outcome.
    pub delivered: u64,
    pub rejected: u64,
    pub redelivered: u64,
    /// Every call, in order: `<ms since the backend started> <call> <kind> <name or id> -> <answer>`.
    pub calls: Vec<String>,
}

/// A platform in memory: counts what it is asked to do. Every create and delete takes effect at once and is
/// answered after a seeded latency (the window in which a platform has made an object and its client does not
/// know it yet). Runs finish `run_time` after they were created (unless they were deleted first) and their
/// completion is reported through [`BackendEvents`].
pub struct Backend {
    ledger: Arc<Mutex<Ledger>>,
    /// Created runs that have not finished and been delivered (or dropped as deleted) yet.
    outstanding: Arc<AtomicU64>,
    started: mpsc::UnboundedSender<(String, Instant)>,
    run_time: Duration,
    next: AtomicU64,
    latency: Mutex<fuzz::Rng>,
    started_at: Instant,
}

/// The longest a create or delete takes to answer (a platform's API, not loopback's).
pub const MAX_LATENCY_MS: usize = 300;

impl Backend {
    /// A backend whose runs take `run_time` and whose answers' latencies are drawn from `seed`, and the event
    /// source of its runs' completions, naming `provider`.
    pub fn new(provider: NamespacedName, run_time: Duration, seed: u64) -> (Arc<Backend>, BackendEvents) {
        let (started, finished) = mpsc::unbounded_channel();
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let outstanding = Arc::new(AtomicU64::new(0));
        let backend = Arc::new(Backend {
            ledger: ledger.clone(),
            outstanding: outstanding.clone(),
            started,
            run_time,
            next: AtomicU64::new(0),
            latency: Mutex::new(fuzz::Rng(seed)),
            started_at: Instant::now(),
        });
        let events = BackendEvents {
            provider,
            ledger,
            outstanding,
            finished,
            redeliver: VecDeque::new(),
            in_flight: HashMap::new(),
        };
        (backend, events)
    }

    /// Everything the backend made, in creation order.
    pub fn objects(&self) -> Vec<Object> {
        self.ledger.lock().unwrap().objects.clone()
    }

    /// Reads the ledger.
    pub fn ledger<T>(&self, read: impl FnOnce(&Ledger) -> T) -> T {
        read(&self.ledger.lock().unwrap())
    }

    /// Runs created whose completion was not delivered (or dropped because the run was deleted) yet.
    pub fn outstanding_runs(&self) -> u64 {
        self.outstanding.load(Ordering::SeqCst)
    }

    fn record(&self, ledger: &mut Ledger, call: &str, kind: ResourceKind, what: &str, answer: &str) {
        let at = self.started_at.elapsed().as_millis();
        ledger
            .calls
            .push(format!("{at} {call} {kind} {what} -> {answer}"));
    }

    /// The calls that named `name` or `id`.
    pub fn calls_about(&self, name: &str, id: &str) -> Vec<String> {
        let (name, id) = (format!(" {name} "), format!(" {id} "));
        self.ledger(|l| {
            l.calls
                .iter()
                .filter(|c| c.contains(&name) || c.contains(&id) || c.ends_with(id.trim_end()))
                .cloned()
                .collect()
        })
    }

    /// Waits for the answer's latency.
    async fn answer(&self) {
        let millis = self.latency.lock().unwrap().below(MAX_LATENCY_MS);
        tokio::time::sleep(Duration::from_millis(millis as u64)).await;
    }

    async fn create(
        &self,
        kind: ResourceKind,
        name: NamespacedName,
        version: &str,
        run_configuration: NamespacedName,
    ) -> String {
        let id = format!("{kind}-id-{}", self.next.fetch_add(1, Ordering::SeqCst) + 1);
        {
            let mut ledger = self.ledger.lock().unwrap();
            self.record(
                &mut ledger,
                "create",
                kind,
                &format!("{} {version}", name.name),
                &id,
            );
            ledger.objects.push(Object {
                kind,
                id: id.clone(),
                name,
                version: version.to_string(),
                run_configuration,
                created: Time(k8s_openapi::jiff::Timestamp::now()),
                deleted: false,
                finished: false,
            });
        }
        if kind == ResourceKind::Run {
            self.outstanding.fetch_add(1, Ordering::SeqCst);
            let _ = self.started.send((id.clone(), Instant::now() + self.run_time));
        }
        self.answer().await;
        id
    }

    fn live(&self, kind: ResourceKind, id: &str) -> Result<(), ProviderError> {
        let ledger = self.ledger.lock().unwrap();
        if ledger
            .objects
            .iter()
            .any(|o| o.kind == kind && o.id == id && !o.deleted)
        {
            Ok(())
        } else {
            Err(ProviderError::not_found(format!("no {kind} {id}")))
        }
    }

    async fn delete(&self, kind: ResourceKind, id: &str) -> Result<(), ProviderError> {
        let deleted = self.delete_now(kind, id);
        self.answer().await;
        deleted
    }

    fn delete_now(&self, kind: ResourceKind, id: &str) -> Result<(), ProviderError> {
        let mut ledger = self.ledger.lock().unwrap();
        let result = match ledger
            .objects
            .iter_mut()
            .find(|o| o.kind == kind && o.id == id && !o.deleted)
        {
            Some(object) => {
                object.deleted = true;
                Ok(())
            }
            None => {
                ledger.deletes_of_missing += 1;
                Err(ProviderError::not_found(format!("no {kind} {id}")))
            }
        };
        let answer = if result.is_ok() { "deleted" } else { "not found" };
        self.record(&mut ledger, "delete", kind, id, answer);
        result
    }
}

/// The `namespace/name` a pipeline definition names.
fn pipeline_name(pipeline: &PipelineDefinitionWrapper) -> NamespacedName {
    pipeline
        .pipeline_definition
        .get("name")
        .and_then(|n| n.as_str())
        .and_then(|n| n.parse().ok())
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl Provider for Backend {
    async fn create_pipeline(&self, pipeline: &PipelineDefinitionWrapper) -> Result<String, ProviderError> {
        Ok(self
            .create(
                ResourceKind::Pipeline,
                pipeline_name(pipeline),
                "",
                NamespacedName::default(),
            )
            .await)
    }

    async fn update_pipeline(
        &self,
        _pipeline: &PipelineDefinitionWrapper,
        id: &str,
    ) -> Result<String, ProviderError> {
        self.live(ResourceKind::Pipeline, id).map(|()| id.to_string())
    }

    async fn delete_pipeline(&self, id: &str) -> Result<(), ProviderError> {
        self.delete(ResourceKind::Pipeline, id).await
    }

    async fn create_run(&self, run: &RunDefinition) -> Result<String, ProviderError> {
        Ok(self
            .create(
                ResourceKind::Run,
                run.name.clone(),
                &run.version,
                run.run_configuration_name.clone(),
            )
            .await)
    }

    async fn delete_run(&self, id: &str) -> Result<(), ProviderError> {
        self.delete(ResourceKind::Run, id).await
    }

    async fn create_run_schedule(&self, schedule: &RunScheduleDefinition) -> Result<String, ProviderError> {
        Ok(self
            .create(
                ResourceKind::RunSchedule,
                schedule.name.clone(),
                &schedule.version,
                schedule.run_configuration_name.clone(),
            )
            .await)
    }

    async fn update_run_schedule(
        &self,
        _schedule: &RunScheduleDefinition,
        id: &str,
    ) -> Result<String, ProviderError> {
        self.live(ResourceKind::RunSchedule, id).map(|()| id.to_string())
    }

    async fn delete_run_schedule(&self, id: &str) -> Result<(), ProviderError> {
        self.delete(ResourceKind::RunSchedule, id).await
    }

    async fn create_experiment(&self, experiment: &ExperimentDefinition) -> Result<String, ProviderError> {
        Ok(self
            .create(
                ResourceKind::Experiment,
                experiment.name.clone(),
                &experiment.version,
                NamespacedName::default(),
            )
            .await)
    }

    async fn update_experiment(
        &self,
        _experiment: &ExperimentDefinition,
        id: &str,
    ) -> Result<String, ProviderError> {
        self.live(ResourceKind::Experiment, id).map(|()| id.to_string())
    }

    async fn delete_experiment(&self, id: &str) -> Result<(), ProviderError> {
        self.delete(ResourceKind::Experiment, id).await
    }

    /// As a platform looks up by display name: for runs the newest of that name and version created no earlier
    /// than the resource, for the other kinds the object of that name; deleted objects are not found.
    async fn find(&self, identity: &ObjectIdentity) -> Result<Option<String>, ProviderError> {
        let mut ledger = self.ledger.lock().unwrap();
        let found = ledger
            .objects
            .iter()
            .rev()
            .find(|o| {
                o.kind == identity.kind
                    && o.name == identity.name
                    && !o.deleted
                    && (o.kind != ResourceKind::Run
                        || (o.version == identity.version && identity.created_in_time(&o.created)))
            })
            .map(|o| o.id.clone());
        ledger.finds += 1;
        ledger.found += u64::from(found.is_some());
        let what = format!(
            "{} {} {:?}",
            identity.name.name,
            identity.version,
            identity.created.as_ref().map(|t| t.0.to_string())
        );
        self.record(
            &mut ledger,
            "find",
            identity.kind,
            &what,
            found.as_deref().unwrap_or("none"),
        );
        Ok(found)
    }
}

/// The completions of a [`Backend`]'s runs, in the order they finish: one `succeeded` event per run that was not
/// deleted before it finished; an event whose delivery failed is delivered again.
pub struct BackendEvents {
    provider: NamespacedName,
    ledger: Arc<Mutex<Ledger>>,
    outstanding: Arc<AtomicU64>,
    finished: mpsc::UnboundedReceiver<(String, Instant)>,
    redeliver: VecDeque<EventDelivery>,
    in_flight: HashMap<DeliveryReceipt, EventDelivery>,
}

#[async_trait::async_trait]
impl EventSource for BackendEvents {
    async fn next_event(&mut self) -> Result<Option<EventDelivery>, ProviderError> {
        let delivery = loop {
            if let Some(delivery) = self.redeliver.pop_front() {
                break delivery;
            }
            let Some((id, due)) = self.finished.recv().await else {
                return Ok(None);
            };
            tokio::time::sleep_until(due).await;
            let mut ledger = self.ledger.lock().unwrap();
            let Some(run) = ledger.objects.iter_mut().find(|o| o.id == id) else {
                continue;
            };
            if run.deleted {
                // Stopped before it finished: nothing to report.
                self.outstanding.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            run.finished = true;
            let time = |t: &Time| Some(t.clone());
            let event = RunCompletionEventData {
                status: RunCompletionStatus::Succeeded,
                pipeline_name: NamespacedName::new(run.name.namespace.clone(), "pipeline".to_string()),
                run_configuration_name: Some(run.run_configuration.clone()).filter(|n| !n.name.is_empty()),
                run_name: Some(run.name.clone()).filter(|n| !n.name.is_empty()),
                run_id: run.id.clone(),
                run_start_time: time(&run.created),
                run_end_time: time(&Time(k8s_openapi::jiff::Timestamp::now())),
                pipeline_components: Vec::new(),
                provider: self.provider.clone(),
            };
            break EventDelivery {
                receipt: DeliveryReceipt(id),
                event,
            };
        };
        self.in_flight.insert(delivery.receipt.clone(), delivery.clone());
        Ok(Some(delivery))
    }

    async fn settle(
        &mut self,
        receipt: DeliveryReceipt,
        outcome: DeliveryOutcome,
    ) -> Result<(), ProviderError> {
        let Some(delivery) = self.in_flight.remove(&receipt) else {
            return Err(ProviderError::not_found(format!(
                "no event in flight with receipt {:?}",
                receipt.0
            )));
        };
        let mut ledger = self.ledger.lock().unwrap();
        match outcome {
            DeliveryOutcome::Delivered => ledger.delivered += 1,
            DeliveryOutcome::Rejected => ledger.rejected += 1,
            DeliveryOutcome::Failed => {
                ledger.redelivered += 1;
                self.redeliver.push_back(delivery);
                return Ok(());
            }
        }
        self.outstanding.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Serves `backend` as a provider service on loopback, forwarding `events` to the feed at `feed_url` with the
/// bearer token in `token_file`; returns the service's base URL. Deliveries are retried quickly (a killed
/// operator is back within seconds).
pub async fn serve(
    provider: &NamespacedName,
    backend: Arc<Backend>,
    events: BackendEvents,
    feed_url: &str,
    token_file: &Path,
) -> String {
    let mut config = ServiceConfig::new(ProviderConfig::new(provider.clone()));
    config.server_host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    config.server_port = 0;
    config.metrics_port = 0;
    config.operator_webhook = Some(feed_url.to_string());
    config.webhook_token_file = token_file.to_path_buf();
    config.webhook_retry = RetryPolicy {
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        max_attempts: 5,
        request_timeout: Duration::from_secs(5),
    };
    let server = ProviderServer::bind(&config, backend, Some(Box::new(events)))
        .await
        .unwrap_or_else(|e| panic!("cannot serve the chaos backend: {e}"));
    assert!(server.forwards_events());
    let url = format!("http://{}", server.local_addr().unwrap());
    tokio::spawn(server.run(std::future::pending()));
    url
}

/// The seeded request generator of the endpoint tests (`bad_input.rs`, `chaos.rs`): request `i` of a run is made
/// from `seed + i` alone, so a failure names the seed and index that reproduce it.
pub mod fuzz {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime};

    use kfp_core::conversion::ConversionConfig;
    use kfp_operator::webhook::certificates::Material;
    use kfp_operator::webhook::{Kind, ServingCertificate, WebhookState};
    use serde_json::json;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio_rustls::TlsConnector;

    /// Requests per endpoint.
    pub const REQUESTS: u64 = 2000;
    /// Connections in flight at once.
    pub const CONCURRENCY: u64 = 8;
    /// Every answer must come within this bound...
    pub const BOUND: Duration = Duration::from_secs(1);
    /// ...and a missing one is given up on after this long (generous: a bound, not a benchmark).
    pub const GIVE_UP: Duration = Duration::from_secs(10);
    /// The most an error answer (and so the log line that says the same) may hold.
    pub const MAX_ERROR_BODY: usize = 2048;

    /// splitmix64: small, seeded, deterministic.
    pub struct Rng(pub u64);

    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        pub fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n.max(1) as u64).unwrap()
        }

        pub fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }

        pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
            items[self.below(items.len())]
        }

        pub fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }

        pub fn text(&mut self, len: usize) -> String {
            (0..len)
                .map(|_| char::from(b'a' + (self.next() % 26) as u8))
                .collect()
        }

        /// Up to `max` letters.
        pub fn word(&mut self, max: usize) -> String {
            let len = self.below(max);
            self.text(len)
        }
    }

    /// What an endpoint is fuzzed with.
    pub struct Target {
        pub name: &'static str,
        pub addr: SocketAddr,
        pub tls: Option<TlsConnector>,
        /// Paths it serves; the generator mostly uses these.
        pub paths: Vec<String>,
        /// A body of the shape it expects, mutated by the generator.
        pub body: serde_json::Value,
    }

    /// A request's bytes and a short description for failure reports.
    pub fn request(target: &Target, seed: u64, index: u64) -> (Vec<u8>, String) {
        let rng = &mut Rng(seed.wrapping_add(index).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let method = rng.pick(&[
            "POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "BREW",
            "post", "G@T",
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
    pub fn body(rng: &mut Rng, shape: &serde_json::Value) -> (Vec<u8>, &'static str) {
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

    pub fn leaves(value: &mut serde_json::Value) -> Vec<&mut serde_json::Value> {
        match value {
            serde_json::Value::Object(map) => map.values_mut().flat_map(leaves).collect(),
            serde_json::Value::Array(items) => items.iter_mut().flat_map(leaves).collect(),
            leaf => vec![leaf],
        }
    }

    pub fn replace_any(rng: &mut Rng, value: &mut serde_json::Value, replacement: serde_json::Value) {
        let mut all = leaves(value);
        if !all.is_empty() {
            let at = rng.below(all.len());
            *all[at] = replacement;
        }
    }

    pub fn replace_a_string(rng: &mut Rng, value: &mut serde_json::Value, replacement: &str) {
        let mut strings: Vec<_> = leaves(value).into_iter().filter(|v| v.is_string()).collect();
        if !strings.is_empty() {
            let at = rng.below(strings.len());
            *strings[at] = json!(replacement);
        }
    }

    /// An answer: its status and body (as far as read).
    pub struct Answer {
        pub status: u16,
        pub body: Vec<u8>,
    }

    /// Writes `bytes` while reading the answer (a server may answer before it read everything); the status line, the
    /// headers and a `Content-Length` body.
    pub async fn exchange(target: &Target, bytes: Vec<u8>) -> Result<Answer, String> {
        exchange_as(target, bytes, false).await
    }

    /// [`exchange`]; with `send_all_first`, as most HTTP clients do (curl, Go's, reqwest): the whole request is written
    /// before the answer is read.
    pub async fn exchange_as(
        target: &Target,
        bytes: Vec<u8>,
        send_all_first: bool,
    ) -> Result<Answer, String> {
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

    pub async fn exchange_on<S: AsyncRead + AsyncWrite + Send + 'static>(
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
    pub fn parse(bytes: &[u8], is_head: bool) -> Option<Answer> {
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

    pub fn parse_partial(bytes: &[u8]) -> Result<Answer, String> {
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

    pub fn status(head: &str) -> Option<u16> {
        let line = head.lines().next()?;
        let mut parts = line.split(' ');
        (parts.next()?.starts_with("HTTP/1.")).then_some(())?;
        parts.next()?.parse().ok()
    }

    /// What a fuzz run found.
    #[derive(Default)]
    pub struct Report {
        pub sent: u64,
        pub unanswered: Vec<String>,
        pub server_errors: Vec<String>,
        pub slow: Vec<String>,
        pub echoing: Vec<String>,
        pub statuses: std::collections::BTreeMap<u16, u64>,
        pub slowest: Duration,
    }

    impl Report {
        pub fn failures(&self) -> usize {
            self.unanswered.len() + self.server_errors.len() + self.slow.len() + self.echoing.len()
        }
    }

    /// Sends [`REQUESTS`] generated requests to `target`, [`CONCURRENCY`] at a time.
    pub async fn fuzz(target: Arc<Target>, seed: u64) -> Report {
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
                    let answer =
                        tokio::time::timeout(GIVE_UP, exchange_as(&target, bytes, index % 2 == 1)).await;
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
    pub async fn fuzz_and_check(target: Target, seed: u64, check: Vec<u8>, expected: u16) -> Report {
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
        report
    }

    pub fn post(path: &str, body: &serde_json::Value) -> Vec<u8> {
        let body = serde_json::to_vec(body).unwrap();
        let mut bytes = format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(&body);
        bytes
    }

    pub fn get(path: &str) -> Vec<u8> {
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
    }

    pub fn tls_connector(ca_pem: &str) -> TlsConnector {
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

    /// The operator's webhook server over TLS on a free loopback port, as a fuzz target, and a conversion review
    /// it must still answer 200 afterwards.
    pub async fn webhook_target(client: kube::Client) -> (Target, Vec<u8>) {
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
        (target, post(kfp_operator::webhook::CONVERT_PATH, &conversion))
    }
}

/// The experiments of `tests/chaos.rs`: the kills (with their namespace, workload and counts), and what the
/// outage and fuzz experiments share (one experiment at a time, the seed, the operator binary, panics).
pub mod experiments {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use kfp_core::executor::ResourceKind;
    use kfp_core::resources::labels;
    use kfp_core::resources::v1beta1::{
        CompletionState, Conditions, Pipeline, Run, RunConfiguration, RunSchedule,
    };
    use kfp_core::values::NamespacedName;
    use kfp_core::values::SynchronizationState::Succeeded;
    use kube::api::{Api, DeleteParams, ListParams};
    use kube::{Client, ResourceExt};

    use super::fuzz::Rng;
    use super::{Backend, Object};
    use crate::support::process::{OperatorProcess, free_port};

    /// Runs the test creates during the kills.
    pub const RUNS: usize = 96;
    /// Of which it deletes this many while the operator is being killed.
    pub const DELETES: usize = 24;
    /// SIGKILLs of the operator process.
    pub const KILLS: usize = 12;
    /// A kill comes within this long after a life's Runs were created, drawn from the seed.
    pub const KILL_WITHIN_MS: usize = 2500;
    /// How long a backend run takes before it reports its completion.
    pub const RUN_TIME: Duration = Duration::from_millis(1500);
    /// How long everything may take to settle after the last restart (reconcile backoff after a crash: 5 s doubling).
    pub const SETTLE: Duration = Duration::from_secs(180);

    /// The RunConfigurations, created in this order (dependants first: an upstream success after a dependant's
    /// creation always fires it, decision 0002), with their triggers. `up-*` start one run on creation; `dep-*` fire
    /// on their upstream's success (`dep-1` behind `dep-0`, a chain); `up-1`, `up-2` and `sched-0` own a schedule.
    pub const RUN_CONFIGURATIONS: &[(&str, &str)] = &[
        ("dep-0", "{runConfigurations: [up-0]}"),
        ("dep-1", "{runConfigurations: [dep-0]}"),
        ("dep-2", "{runConfigurations: [up-1]}"),
        ("dep-3", "{runConfigurations: [up-2]}"),
        ("up-0", "{onChange: [runSpec]}"),
        (
            "up-1",
            "{onChange: [runSpec], schedules: [{cronExpression: '0 0 * * *'}]}",
        ),
        (
            "up-2",
            "{onChange: [runSpec], schedules: [{cronExpression: '30 1 * * *'}]}",
        ),
        ("sched-0", "{schedules: [{cronExpression: '0 12 * * 1'}]}"),
    ];

    /// One experiment at a time.
    pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// `CHAOS_SEED`, else `default`; printed.
    pub fn seed(experiment: &str, default: u64) -> u64 {
        let seed = std::env::var("CHAOS_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(default);
        eprintln!("chaos {experiment}: seed {seed} (CHAOS_SEED={seed} repeats it)");
        seed
    }

    pub fn binary() -> &'static Path {
        Path::new(env!("CARGO_BIN_EXE_kfp-operator"))
    }

    /// Lines of `processes`' stderr that report a panic.
    pub fn panics(processes: &[OperatorProcess]) -> Vec<String> {
        processes
            .iter()
            .flat_map(OperatorProcess::stderr_lines)
            .filter(|line| line.contains("panicked"))
            .collect()
    }

    pub fn parse<K: serde::de::DeserializeOwned>(yaml: &str) -> K {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Executor {
        Direct,
        Argo,
    }

    impl Executor {
        pub fn name(self) -> &'static str {
            match self {
                Executor::Direct => "direct",
                Executor::Argo => "argo",
            }
        }
    }

    /// What an experiment with kills measured.
    #[derive(Debug, Default)]
    pub struct Figures {
        pub seed: u64,
        pub kills: usize,
        /// Runs the test created and deleted; Runs the RunConfigurations created.
        pub runs: usize,
        pub deleted: usize,
        pub run_configuration_runs: usize,
        /// Surviving Runs that are not Succeeded with completion state Succeeded at the end.
        pub lost: Vec<String>,
        /// Deleted Runs still there at the end.
        pub not_gone: Vec<String>,
        /// Backend objects created beyond the first for one resource (kind/name: count).
        pub duplicated: BTreeMap<String, usize>,
        /// Backend objects not deleted whose resource is gone.
        pub leaked: Vec<String>,
        /// Dependants whose Runs differ from their upstream's successes (name: fired/successes).
        pub misfired: BTreeMap<String, (usize, usize)>,
        pub panics: Vec<String>,
        /// Backend: objects created by kind, finds (found), deletes of what it did not hold, events.
        pub created: BTreeMap<String, usize>,
        pub finds: (u64, u64),
        pub deletes_of_missing: u64,
        pub events: (u64, u64, u64),
        pub settled_after: Option<Duration>,
        pub unsettled: Vec<String>,
    }

    impl Figures {
        pub fn duplicates(&self) -> usize {
            self.duplicated.values().sum()
        }

        pub fn summary(&self, executor: Executor) -> String {
            format!(
                "chaos kills, {} executor (seed {}): {} kills; {} Runs created, {} deleted, {} started by \
                 RunConfigurations ({} expected); lost {}, deleted but not gone {}, duplicated {} {:?}, leaked {} {:?}, dependants \
                 misfired {} {:?}, panics {}; backend created {:?}, finds {} ({} found), deletes of missing ids {}, \
                 events delivered {} rejected {} redelivered {}; settled {}",
                executor.name(),
                self.seed,
                self.kills,
                self.runs,
                self.deleted,
                self.run_configuration_runs,
                RUN_CONFIGURATIONS
                    .iter()
                    .filter(|(_, t)| t.contains("onChange") || t.contains("runConfigurations"))
                    .count(),
                self.lost.len(),
                self.not_gone.len(),
                self.duplicates(),
                self.duplicated,
                self.leaked.len(),
                self.leaked,
                self.misfired.len(),
                self.misfired,
                self.panics.len(),
                self.created,
                self.finds.0,
                self.finds.1,
                self.deletes_of_missing,
                self.events.0,
                self.events.1,
                self.events.2,
                match self.settled_after {
                    Some(after) => format!("{:.1} s after the last restart", after.as_secs_f64()),
                    None => format!("NOT within {SETTLE:?}: {:?}", self.unsettled),
                }
            )
        }
    }

    /// The namespace of one experiment and what it needs.
    pub struct Chaos {
        client: Client,
        namespace: String,
        provider: NamespacedName,
        backend: std::sync::Arc<Backend>,
        env: Vec<(String, String)>,
        kubeconfig: PathBuf,
        _token: tempfile::NamedTempFile,
        /// Every version of every Run the API server showed, by name: what a failure report prints.
        history: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Vec<String>>>>,
        _watch: AbortOnDrop,
    }

    /// Aborts a task when dropped.
    struct AbortOnDrop(tokio::task::AbortHandle);

    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }

    /// One line per version of a Run: when, its resourceVersion, finalizer, deletion, state and provider id.
    fn run_version(started: Instant, event: &str, run: &Run) -> String {
        let status = run.status.as_ref();
        format!(
            "{} ms {event} rv {} finalizers {:?} deleting {} state {:?} id {:?}",
            started.elapsed().as_millis(),
            run.resource_version().unwrap_or_default(),
            run.finalizers(),
            run.metadata.deletion_timestamp.is_some(),
            status.map(|s| s.synchronization_state()),
            status.map(|s| s.status.provider.id.clone()).unwrap_or_default()
        )
    }

    impl Chaos {
        /// The versions of the Run `name` the test's watch saw.
        pub fn history_of(&self, name: &str) -> Vec<String> {
            self.history
                .lock()
                .unwrap()
                .get(name)
                .cloned()
                .unwrap_or_default()
        }

        pub async fn start(executor: Executor, seed: u64) -> (Chaos, Option<crate::support::SimulatedArgo>) {
            let kubeconfig = crate::support::env().await.kubeconfig_path().to_path_buf();
            let (client, namespace) = crate::support::client_and_namespace().await;
            let provider = NamespacedName::new(namespace.clone(), "chaos".to_string());
            let mut token = tempfile::NamedTempFile::new().unwrap();
            std::io::Write::write_all(&mut token, b"chaos-feed-token").unwrap();
            // One feed port for every operator process: the provider service keeps delivering to it across kills.
            let feed_port = free_port();
            let (backend, events) = Backend::new(provider.clone(), RUN_TIME, seed.wrapping_add(1));
            let url = super::serve(
                &provider,
                backend.clone(),
                events,
                &format!("http://127.0.0.1:{feed_port}/events"),
                token.path(),
            )
            .await;
            let providers: Api<kfp_core::resources::v1beta1::Provider> =
                Api::namespaced(client.clone(), &namespace);
            let manifest = parse(&format!(
                "
    apiVersion: pipelines.kubeflow.org/v1beta1
    kind: Provider
    metadata:
      name: chaos
      namespace: {namespace}
      annotations: {{pipelines.kubeflow.org/provider-type: http}}
    spec:
      serviceImage: kfp-operator/provider-service:latest
      serviceAccount: default
      pipelineRootStorage: /tmp/pipeline-root
      frameworks: [{{name: stub, image: kfp-operator/stub-compiler:latest}}]
      allowedNamespaces: [{namespace}]
      parameters: {{url: '{url}', timeoutSeconds: 10}}
    "
            ));
            providers.create(&Default::default(), &manifest).await.unwrap();
            let argo = (executor == Executor::Argo)
                .then(|| crate::support::SimulatedArgo::start(client.clone(), &namespace, url.clone()));
            let env = vec![
                ("KFP_OPERATOR_SPEC_EXECUTOR", executor.name().to_string()),
                ("KFP_OPERATOR_SYSTEM_WATCHNAMESPACE", namespace.clone()),
                ("KFP_OPERATOR_SPEC_RUNCOMPLETIONFEED_PORT", feed_port.to_string()),
                (
                    "KFP_OPERATOR_SPEC_RUNCOMPLETIONFEED_AUTHENTICATION_TOKENREVIEW",
                    "false".to_string(),
                ),
                (
                    "KFP_OPERATOR_SPEC_RUNCOMPLETIONFEED_AUTHENTICATION_STATICTOKENFILE",
                    token.path().display().to_string(),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let history: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Vec<String>>>> = Default::default();
            let watch = {
                use futures::StreamExt;
                let (history, started) = (history.clone(), Instant::now());
                let api: Api<Run> = Api::namespaced(client.clone(), &namespace);
                tokio::spawn(async move {
                    let mut events =
                        kube::runtime::watcher(api, kube::runtime::watcher::Config::default()).boxed();
                    while let Some(event) = events.next().await {
                        let (kind, run) = match event {
                            Ok(kube::runtime::watcher::Event::Apply(run))
                            | Ok(kube::runtime::watcher::Event::InitApply(run)) => ("applied", run),
                            Ok(kube::runtime::watcher::Event::Delete(run)) => ("deleted", run),
                            _ => continue,
                        };
                        let line = run_version(started, kind, &run);
                        history
                            .lock()
                            .unwrap()
                            .entry(run.name_any())
                            .or_default()
                            .push(line);
                    }
                })
                .abort_handle()
            };
            let chaos = Chaos {
                client,
                namespace,
                provider,
                backend,
                env,
                kubeconfig,
                _token: token,
                history,
                _watch: AbortOnDrop(watch),
            };
            (chaos, argo)
        }

        pub fn operator(&self) -> OperatorProcess {
            let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            OperatorProcess::start(binary(), &self.kubeconfig, &env)
        }

        pub fn api<K>(&self) -> Api<K>
        where
            K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
        {
            Api::namespaced(self.client.clone(), &self.namespace)
        }

        pub async fn create<K>(&self, yaml: &str)
        where
            K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
                + Clone
                + std::fmt::Debug
                + serde::Serialize
                + serde::de::DeserializeOwned,
        {
            let yaml = yaml
                .replace("$NS", &self.namespace)
                .replace("$PROVIDER", &self.provider.to_string());
            self.api::<K>()
                .create(&Default::default(), &parse::<K>(&yaml))
                .await
                .unwrap_or_else(|e| panic!("cannot create {yaml}: {e}"));
        }

        pub async fn create_run(&self, name: String) {
            self.create::<Run>(&format!(
                "
    apiVersion: pipelines.kubeflow.org/v1beta1
    kind: Run
    metadata: {{name: {name}, namespace: $NS}}
    spec: {{provider: $PROVIDER, pipeline: pipeline, parameters: [{{name: run, value: '{name}'}}]}}
    "
            ))
            .await;
        }

        pub async fn create_pipeline_and_run_configurations(&self) {
            self.create::<Pipeline>(
                "
    apiVersion: pipelines.kubeflow.org/v1beta1
    kind: Pipeline
    metadata: {name: pipeline, namespace: $NS}
    spec: {provider: $PROVIDER, image: 'alpine:3.20', framework: {name: stub, parameters: {}}}
    ",
            )
            .await;
            for (name, triggers) in RUN_CONFIGURATIONS {
                self.create::<RunConfiguration>(&format!(
                    "
    apiVersion: pipelines.kubeflow.org/v1beta1
    kind: RunConfiguration
    metadata: {{name: {name}, namespace: $NS}}
    spec:
      run: {{provider: $PROVIDER, pipeline: pipeline, parameters: [{{name: rc, value: {name}}}]}}
      triggers: {triggers}
    "
                ))
                .await;
            }
        }

        /// The experiment: [`KILLS`] lives of the operator process. In each, after a seeded while (the operator
        /// starting and catching up), the test creates its share of the [`RUNS`] Runs at once and deletes the Runs
        /// due (each of the [`DELETES`] chosen Runs in the life it was created or one of the next two), and the
        /// process is SIGKILLed a seeded while later, with operations in flight. Returns the names deleted and the
        /// killed processes (their stderr).
        pub async fn lives(&self, seed: u64) -> (Vec<String>, Vec<OperatorProcess>) {
            let rng = &mut Rng(seed);
            let life_of = |run: usize| run * KILLS / RUNS;
            let mut doomed: Vec<usize> = (0..RUNS).collect();
            for i in 0..RUNS {
                doomed.swap(i, i + rng.below(RUNS - i));
            }
            let mut deletions: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for &run in &doomed[..DELETES] {
                let life = (life_of(run) + rng.below(3)).min(KILLS - 1);
                deletions.entry(life).or_default().push(run);
            }
            let runs = self.api::<Run>();
            let (mut deleted, mut processes) = (Vec::new(), Vec::new());
            for life in 0..KILLS {
                let mut operator = self.operator();
                // The experiment's moments (seeded), not waits for anything.
                tokio::time::sleep(Duration::from_millis(200 + rng.below(1300) as u64)).await;
                let creates = (0..RUNS)
                    .filter(|run| life_of(*run) == life)
                    .map(|run| self.create_run(format!("run-{run}")));
                futures::future::join_all(creates).await;
                for run in deletions.remove(&life).unwrap_or_default() {
                    let name = format!("run-{run}");
                    runs.delete(&name, &DeleteParams::default())
                        .await
                        .unwrap_or_else(|e| panic!("cannot delete {name}: {e}"));
                    deleted.push(name);
                }
                // The last kill comes soon, so that the operator after it finds operations cut short.
                let within = if life + 1 == KILLS { 500 } else { KILL_WITHIN_MS };
                tokio::time::sleep(Duration::from_millis(rng.below(within) as u64)).await;
                operator.child.start_kill().unwrap();
                operator.child.wait().await.unwrap();
                processes.push(operator);
            }
            (deleted, processes)
        }
    }

    /// What is not settled yet (empty: everything is), from the objects in the namespace and the backend.
    pub async fn unsettled(chaos: &Chaos, deleted: &BTreeSet<String>) -> Result<Vec<String>, kube::Error> {
        let runs = chaos.api::<Run>().list(&ListParams::default()).await?.items;
        let rcs = chaos
            .api::<RunConfiguration>()
            .list(&ListParams::default())
            .await?
            .items;
        let schedules = chaos
            .api::<RunSchedule>()
            .list(&ListParams::default())
            .await?
            .items;
        let mut pending = Vec::new();
        for run in &runs {
            let name = run.name_any();
            if deleted.contains(&name) {
                pending.push(format!("deleted Run {name} still there"));
                continue;
            }
            let status = run.status.as_ref();
            let state = status.map(|s| s.synchronization_state());
            let completion = status.and_then(|s| s.completion_state);
            if state != Some(Succeeded) || completion != Some(CompletionState::Succeeded) {
                pending.push(format!("Run {name}: {state:?}, completion {completion:?}"));
            }
        }
        let by_name: BTreeMap<String, &RunConfiguration> = rcs.iter().map(|rc| (rc.name_any(), rc)).collect();
        for rc in &rcs {
            let name = rc.name_any();
            let status = rc.status.clone().unwrap_or_default();
            if status.synchronization_state() != Succeeded {
                pending.push(format!(
                    "RunConfiguration {name}: {:?}",
                    status.synchronization_state()
                ));
            }
            // Each trigger has seen its upstream's latest success: nothing more can fire.
            for upstream in &rc.spec.triggers.run_configurations {
                let upstream = &upstream.name;
                let key = format!("{}/{upstream}", chaos.namespace);
                let latest = by_name
                    .get(upstream.as_str())
                    .and_then(|u| u.status.as_ref())
                    .map(|s| s.latest_runs.succeeded.provider_id.clone())
                    .unwrap_or_default();
                let seen = status
                    .triggers
                    .run_configurations
                    .get(&key)
                    .map(|t| t.provider_id.clone())
                    .unwrap_or_default();
                if latest.is_empty() || seen != latest {
                    pending.push(format!(
                        "RunConfiguration {name}: trigger {upstream} saw {seen:?}, latest success {latest:?}"
                    ));
                }
            }
        }
        let expected_schedules = RUN_CONFIGURATIONS
            .iter()
            .filter(|(_, t)| t.contains("schedules"))
            .count();
        if schedules.len() != expected_schedules {
            pending.push(format!(
                "{} RunSchedules, expected {expected_schedules}",
                schedules.len()
            ));
        }
        for schedule in &schedules {
            let state = schedule.status.as_ref().map(|s| s.synchronization_state());
            if state != Some(Succeeded) {
                pending.push(format!("RunSchedule {}: {state:?}", schedule.name_any()));
            }
        }
        let outstanding = chaos.backend.outstanding_runs();
        if outstanding > 0 {
            pending.push(format!("{outstanding} backend runs not finished and delivered"));
        }
        Ok(pending)
    }

    /// The figures from the settled (or timed-out) namespace and the backend.
    pub async fn measure(chaos: &Chaos, figures: &mut Figures, deleted: &BTreeSet<String>) {
        let runs = chaos
            .api::<Run>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        let schedules = chaos
            .api::<RunSchedule>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        let pipelines = chaos
            .api::<Pipeline>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        let objects = chaos.backend.objects();
        for run in &runs {
            let name = run.name_any();
            if deleted.contains(&name) {
                figures.not_gone.push(name);
                continue;
            }
            let status = run.status.as_ref();
            if status.map(|s| s.synchronization_state()) != Some(Succeeded)
                || status.and_then(|s| s.completion_state) != Some(CompletionState::Succeeded)
            {
                figures.lost.push(name);
            }
        }
        figures.run_configuration_runs = runs
            .iter()
            .filter(|r| {
                r.labels().contains_key(labels::RUN_CONFIGURATION_NAME) || !r.owner_references().is_empty()
            })
            .count();
        let live: BTreeSet<(ResourceKind, String)> = runs
            .iter()
            .map(|r| (ResourceKind::Run, r.name_any()))
            .chain(
                schedules
                    .iter()
                    .map(|s| (ResourceKind::RunSchedule, s.name_any())),
            )
            .chain(pipelines.iter().map(|p| (ResourceKind::Pipeline, p.name_any())))
            .collect();
        let mut per_resource: BTreeMap<String, usize> = BTreeMap::new();
        for object in &objects {
            *figures.created.entry(object.kind.to_string()).or_default() += 1;
            *per_resource
                .entry(format!("{}/{}", object.kind, object.name.name))
                .or_default() += 1;
            if !object.deleted && !live.contains(&(object.kind, object.name.name.clone())) {
                figures
                    .leaked
                    .push(format!("{} {} of {}", object.kind, object.id, object.name.name));
            }
        }
        figures.duplicated = per_resource
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(resource, n)| (resource, n - 1))
            .collect();
        // Each dependant fires once per upstream Run that succeeded (one logical run, however many backend runs it
        // had: those are counted as duplicates above).
        let successes = |rc: &str| -> usize {
            objects
                .iter()
                .filter(|o: &&Object| {
                    o.kind == ResourceKind::Run && o.finished && o.run_configuration.name == rc
                })
                .map(|o| o.name.name.clone())
                .collect::<BTreeSet<_>>()
                .len()
        };
        for (name, triggers) in RUN_CONFIGURATIONS {
            let Some(upstream) = triggers
                .strip_prefix("{runConfigurations: [")
                .and_then(|t| t.strip_suffix("]}"))
            else {
                continue;
            };
            let fired = runs
                .iter()
                .filter(|r| {
                    r.labels().get(labels::TRIGGER_TYPE).map(String::as_str) == Some("runConfiguration")
                        && r.owner_references().iter().any(|o| o.name == *name)
                })
                .count();
            let expected = successes(upstream);
            if fired != expected || fired == 0 {
                figures.misfired.insert(name.to_string(), (fired, expected));
            }
        }
        chaos.backend.ledger(|ledger| {
            figures.finds = (ledger.finds, ledger.found);
            figures.deletes_of_missing = ledger.deletes_of_missing;
            figures.events = (ledger.delivered, ledger.rejected, ledger.redelivered);
        });
    }

    /// The experiment: kills while Runs are created and deleted, then everything settles and is counted.
    pub async fn kills(executor: Executor, default_seed: u64) -> Figures {
        kfp_providers::http::install_crypto_provider();
        let _serial = SERIAL.lock().await;
        let seed = seed(&format!("kills/{}", executor.name()), default_seed);
        let (chaos, _argo) = Chaos::start(executor, seed).await;
        chaos.create_pipeline_and_run_configurations().await;
        let (deleted, mut processes) = chaos.lives(seed).await;
        let deleted: BTreeSet<String> = deleted.into_iter().collect();
        let last = chaos.operator();
        let restarted = Instant::now();
        let last_pending = std::sync::Mutex::new(Vec::new());
        let settled = kfp_testenv::wait_for("everything to settle", SETTLE, || async {
            let pending = unsettled(&chaos, &deleted).await?;
            let done = pending.is_empty();
            *last_pending.lock().unwrap() = pending;
            Ok::<_, kube::Error>(done.then_some(()))
        })
        .await;
        let mut figures = Figures {
            seed,
            kills: KILLS,
            runs: RUNS,
            deleted: deleted.len(),
            settled_after: settled.is_ok().then(|| restarted.elapsed()),
            unsettled: last_pending.into_inner().unwrap(),
            ..Figures::default()
        };
        measure(&chaos, &mut figures, &deleted).await;
        let mut last = last;
        if settled.is_err() {
            let lines = last.stderr_lines();
            eprintln!(
                "the last operator ({}) logged {} lines; the last 40:\n{}",
                match last.child.try_wait() {
                    Ok(Some(exit)) => format!("exited: {exit}"),
                    _ => "running".to_string(),
                },
                lines.len(),
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        processes.push(last);
        figures.panics = panics(&processes);
        eprintln!("{}", figures.summary(executor));
        // What the backend was asked and the operators said about the resources that went wrong, for the report.
        for leaked in &figures.leaked {
            let mut words = leaked.split(' ');
            let (_, id, _, name) = (words.next(), words.next(), words.next(), words.next());
            for call in chaos
                .backend
                .calls_about(name.unwrap_or_default(), id.unwrap_or_default())
            {
                eprintln!("backend: {call}");
            }
            for version in chaos.history_of(name.unwrap_or_default()) {
                eprintln!("api server: {} {version}", name.unwrap_or_default());
            }
        }
        let names: BTreeSet<String> = figures
            .leaked
            .iter()
            .filter_map(|l| l.rsplit(' ').next().map(str::to_string))
            .chain(
                figures
                    .duplicated
                    .keys()
                    .filter_map(|k| k.split('/').nth(1).map(str::to_string)),
            )
            .chain(figures.lost.iter().cloned())
            .chain(figures.misfired.keys().cloned())
            .collect();
        for (life, process) in processes.iter().enumerate() {
            for line in process.stderr_lines() {
                if names
                    .iter()
                    .any(|n| line.contains(&format!("\"{n}\"")) || line.contains(&format!("/{n}")))
                {
                    eprintln!("life {life}: {line}");
                }
            }
        }
        figures
    }

    pub fn assert_clean(executor: Executor, figures: &Figures) {
        let summary = figures.summary(executor);
        assert!(figures.settled_after.is_some(), "{summary}");
        assert!(figures.lost.is_empty(), "lost Runs: {summary}");
        assert!(figures.not_gone.is_empty(), "deleted Runs not gone: {summary}");
        assert_eq!(figures.duplicates(), 0, "duplicated: {summary}");
        assert!(figures.leaked.is_empty(), "leaked: {summary}");
        assert!(figures.misfired.is_empty(), "dependants misfired: {summary}");
        assert!(figures.panics.is_empty(), "panics: {summary}");
    }
}
