//! An API server outage without touching the API server: a loopback TCP proxy between the operator and the API
//! server that the test switches off (every connection it accepts is then closed at once, and counted), and a
//! capture of the operator's log lines as the production subscriber writes them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kfp_testenv::TestEnv;
use kube::Client;
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

/// A TCP proxy to the API server that counts the connections it accepts and can be cut and restored.
pub struct Proxy {
    pub address: SocketAddr,
    accepted: Arc<AtomicU64>,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    /// A proxy to `target`, up.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicU64::new(0));
        let up = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accept = {
            let (accepted, up, connections) = (accepted.clone(), up.clone(), connections.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    if !up.load(Ordering::SeqCst) {
                        // Down: the client sees its connection closed during the TLS handshake, at once.
                        drop(inbound);
                        continue;
                    }
                    let connection = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    let mut connections = connections.lock().unwrap();
                    connections.retain(|c| !c.is_finished());
                    connections.push(connection.abort_handle());
                }
            })
            .abort_handle()
        };
        Proxy {
            address,
            accepted,
            up,
            connections,
            accept,
        }
    }

    /// A proxy to `env`'s API server and an admin client connecting through it.
    pub async fn to(env: &TestEnv) -> (Proxy, Client) {
        let server: SocketAddr = env.server_url().trim_start_matches("https://").parse().unwrap();
        let proxy = Proxy::start(server).await;
        let mut config = env.admin_config().await.unwrap();
        config.cluster_url = format!("https://{}", proxy.address).parse().unwrap();
        let client = Client::try_from(config).unwrap();
        (proxy, client)
    }

    /// The API server goes away: open connections are closed, new ones are accepted (and counted) and closed.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    /// The API server is back.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// The connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Log lines written by a subscriber, for counting.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The production subscriber (JSON lines at `info`, the operator's default filter) writing here. Install it
    /// with `tracing::subscriber::set_default` in a current-thread test, so that every task of the test logs
    /// into it and nothing of other tests does.
    pub fn subscriber(&self) -> Box<dyn tracing::Subscriber + Send + Sync> {
        kfp_operator::telemetry::log_subscriber(
            kfp_operator::telemetry::LogFormat::Json,
            kfp_operator::telemetry::log_filter("info", None).unwrap(),
            self.clone(),
        )
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The bounds an outage must keep (docs/reliability.md): connection attempts per second over the whole outage,
/// and lines per failure kind (one per `telemetry::FAILURE_LOG_INTERVAL`, plus the first).
pub const MAX_ATTEMPTS_PER_SECOND: f64 = 8.0;
/// Lines that are not a throttled failure (`lost the Lease`, `stopped`): a handful, never one per attempt.
pub const MAX_OTHER_LINES: usize = 10;

/// A control plane of its own, a namespace with the Provider `stub`, and a proxy the operator talks through.
pub struct Fixture {
    pub env: TestEnv,
    pub client: Client,
    pub proxied: Client,
    pub proxy: Proxy,
    pub namespace: String,
    pub provider: kfp_core::values::NamespacedName,
}

impl Fixture {
    pub async fn start() -> Fixture {
        let (env, client) = super::dedicated_env().await;
        let namespace = env.namespace().await.unwrap().name().to_string();
        let provider = kfp_core::values::NamespacedName::new(namespace.clone(), "stub".to_string());
        kube::Api::<kfp_core::resources::v1beta1::Provider>::namespaced(client.clone(), &namespace)
            .create(&Default::default(), &super::provider_manifest(&namespace, "stub"))
            .await
            .unwrap();
        let (proxy, proxied) = Proxy::to(&env).await;
        Fixture {
            env,
            client,
            proxied,
            proxy,
            namespace,
            provider,
        }
    }

    /// A direct-executor operator context on the namespace, talking through the proxy.
    pub fn context(&self) -> Arc<kfp_operator::controllers::Context> {
        let stub: Arc<dyn kfp_core::provider::Provider> = Arc::new(kfp_providers::stub::StubProvider::new());
        super::executors::direct_context(self.proxied.clone(), self.config(), &self.provider, stub)
    }

    /// The Providers' event sources for [`Self::context`] (their Provider watch goes through the proxy too).
    pub fn sources(&self) -> kfp_operator::feed::sources::EventSources {
        let processor =
            kfp_operator::feed::Processor::new(self.proxied.clone(), &self.config(), None, super::metrics());
        kfp_operator::feed::sources::EventSources::new(kfp_providers::default_registry(), "stub", processor)
    }

    fn config(&self) -> kfp_operator::config::OperatorConfig {
        let mut config = super::config_for(&self.namespace);
        config.spec.executor = kfp_operator::config::ExecutorKind::Direct;
        config
    }

    /// Creates the Pipeline `name` (directly, not through the proxy).
    pub async fn create_pipeline(&self, name: &str) {
        let yaml = format!(
            "apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {{name: {name}, namespace: {namespace}}}
spec: {{provider: {provider}, image: 'alpine:3.20', framework: {{name: stub, parameters: {{}}}}}}
",
            namespace = self.namespace,
            provider = self.provider,
        );
        let pipeline: kfp_core::resources::v1beta1::Pipeline = serde_saphyr::from_str(&yaml).unwrap();
        self.pipelines()
            .create(&Default::default(), &pipeline)
            .await
            .unwrap();
    }

    pub fn pipelines(&self) -> kube::Api<kfp_core::resources::v1beta1::Pipeline> {
        kube::Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Waits up to `within` until the Pipeline `name` is `Succeeded`.
    pub async fn wait_succeeded(&self, name: &str, within: std::time::Duration) {
        use kfp_core::resources::v1beta1::Conditions;
        let api = self.pipelines();
        kfp_testenv::wait_for(format!("{name} to be Succeeded"), within, || async {
            let pipeline = api.get_opt(name).await?;
            Ok::<_, kube::Error>(pipeline.filter(|p| {
                p.status.as_ref().is_some_and(|s| {
                    s.synchronization_state() == kfp_core::values::SynchronizationState::Succeeded
                })
            }))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Takes the API server away for `duration` (a fixed time the test drives, not a wait for a condition),
    /// running `during` once it is away, and returns what the operator did meanwhile.
    pub async fn outage(
        &self,
        logs: &LogCapture,
        duration: std::time::Duration,
        during: impl std::future::Future<Output = ()>,
    ) -> Figures {
        let (accepted, logged) = (self.proxy.accepted(), logs.lines().len());
        let started = tokio::time::Instant::now();
        self.proxy.cut();
        during.await;
        tokio::time::sleep_until(started + duration).await;
        let figures = Figures {
            attempts: self.proxy.accepted() - accepted,
            lines: logs.lines().split_off(logged),
            seconds: started.elapsed().as_secs_f64(),
        };
        self.proxy.restore();
        figures
    }
}

/// What the operator did during an outage.
#[derive(Debug)]
pub struct Figures {
    /// Connections the proxy accepted (and closed) while the API server was away.
    pub attempts: u64,
    /// The log lines written meanwhile.
    pub lines: Vec<String>,
    pub seconds: f64,
}

impl Figures {
    pub fn attempts_per_second(&self) -> f64 {
        self.attempts as f64 / self.seconds
    }

    pub fn lines_per_minute(&self) -> f64 {
        self.lines.len() as f64 * 60.0 / self.seconds
    }

    /// Lines per `failure` kind; lines without one under `""`.
    pub fn lines_by_failure(&self) -> std::collections::BTreeMap<String, usize> {
        let mut kinds = std::collections::BTreeMap::new();
        for line in &self.lines {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let kind = value["failure"].as_str().unwrap_or_default().to_string();
            *kinds.entry(kind).or_insert(0) += 1;
        }
        kinds
    }

    /// Asserts the bounds of docs/reliability.md: a few connection attempts per second, one line per failure kind
    /// per 30 s (plus the first), and only a handful of other lines.
    pub fn assert_bounded(&self) {
        let summary = format!("{self:#?}\nby failure kind: {:?}", self.lines_by_failure());
        assert!(
            self.attempts_per_second() < MAX_ATTEMPTS_PER_SECOND,
            "{:.1} connection attempts per second; {summary}",
            self.attempts_per_second()
        );
        let per_kind = (self.seconds / 30.0).ceil() as usize + 1;
        for (kind, lines) in self.lines_by_failure() {
            if kind.is_empty() {
                assert!(lines <= MAX_OTHER_LINES, "{lines} other lines; {summary}");
            } else {
                assert!(lines <= per_kind, "{lines} lines of {kind}; {summary}");
            }
        }
    }
}
