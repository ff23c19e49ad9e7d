//! Wiring: the six controllers on one [`Context`], stopped together by a [`Shutdown`], and what runs beside them
//! (health and metrics endpoints, webhooks, the run-completion feed, the Providers' event sources, leader election).
//!
//! Embedders use [`Operator::builder`] (docs/embedding-guide.md); the `kfp-operator run` command is the same builder
//! with everything switched on as the configuration says ([`run`]). The lower-level pieces ([`run_controllers`],
//! [`run_as_leader`], [`executor_for`], [`start_feed`]) stay public for tests and unusual wiring.

use std::sync::Arc;

use kfp_core::resources::v1beta1::{Experiment, Pipeline, Provider, RunSchedule};

use kfp_core::executor::Executor;
use kfp_core::registry::ProviderRegistry;
use kube::Client;
use tokio::sync::watch;

use crate::config::{ExecutorKind, OperatorConfig};
use crate::controllers::{self, Context, generic};
use crate::executor::Completions;
use crate::executor::argo::{ArgoExecutor, ArgoExecutorConfig};
use crate::executor::direct::{DirectExecutor, RegistryResolver};
use crate::feed::sources::EventSources;
use crate::health::Readiness;
use crate::leader::{LeaderElector, LeaseConfig};
use crate::telemetry::Metrics;

// The shutdown signal lives in its own module (the webhook server and the controllers both wait on it); kept here
// too for embedders that import it from `operator`.
pub use crate::shutdown::{Shutdown, ShutdownTrigger};

/// Runs all six controllers until `shutdown`, then returns once each finished its in-flight reconciles. Each
/// controller registers a readiness check in `readiness` that passes once its cache is filled.
pub async fn run_controllers(ctx: Arc<Context>, shutdown: Shutdown, readiness: &Readiness) {
    let concurrency = ctx.config.system.concurrency.clone();
    tracing::info!(executor = ?ctx.config.spec.executor, "starting controllers");
    let ready = |name: &str| readiness.register(&format!("{name} controller cache"));
    tokio::join!(
        generic::run_simple::<Pipeline>(
            ctx.clone(),
            concurrency.pipeline,
            shutdown.signalled(),
            ready("pipeline")
        ),
        generic::run_runs(ctx.clone(), concurrency.run, shutdown.signalled(), ready("run")),
        generic::run_simple::<RunSchedule>(
            ctx.clone(),
            concurrency.run_schedule,
            shutdown.signalled(),
            ready("runschedule")
        ),
        generic::run_simple::<Experiment>(
            ctx.clone(),
            concurrency.experiment,
            shutdown.signalled(),
            ready("experiment")
        ),
        controllers::run_configuration::run(
            ctx.clone(),
            concurrency.run_configuration,
            shutdown.signalled(),
            ready("runconfiguration")
        ),
        controllers::provider::run(
            ctx.clone(),
            concurrency.provider,
            shutdown.signalled(),
            ready("provider")
        ),
    );
    tracing::info!("controllers stopped");
}

/// [`run_controllers`], and beside them the Providers' event sources of direct mode when `sources` is given: both
/// stop at `shutdown` (on a leader, both run only while it leads).
pub async fn run_controllers_and_sources(
    ctx: Arc<Context>,
    sources: Option<EventSources>,
    shutdown: Shutdown,
    readiness: &Readiness,
) {
    let providers = ctx.watched::<Provider>();
    let sources = async {
        if let Some(sources) = sources {
            crate::feed::sources::run(sources, providers, shutdown.signalled()).await;
        }
    };
    tokio::join!(run_controllers(ctx.clone(), shutdown.clone(), readiness), sources);
}

/// Builds the configured executor (`spec.executor`). The direct executor resolves Providers through `registry`
/// and wakes controllers through the returned [`Completions`].
pub fn executor_for(
    config: &OperatorConfig,
    client: &Client,
    registry: ProviderRegistry,
    metrics: &Arc<Metrics>,
) -> (Arc<dyn Executor>, Option<Completions>) {
    match config.spec.executor {
        ExecutorKind::Argo => {
            // One Workflow watch for outcomes and wake-ups (issue 18): the controllers are woken through the
            // completions once the cache has the change.
            let completions = Completions::default();
            let resource = crate::executor::argo::workflow_api_resource();
            let api = match config.system.watch_namespace.as_str() {
                "" => kube::Api::all_with(client.clone(), &resource),
                namespace => kube::Api::namespaced_with(client.clone(), namespace, &resource),
            };
            let cache = crate::executor::workflows::WorkflowCache::start(api, completions.clone());
            let executor = ArgoExecutor::new(
                client.clone(),
                ArgoExecutorConfig::from_spec(&config.spec),
                metrics.clone(),
            )
            .with_cache(cache);
            (Arc::new(executor), Some(completions))
        }
        ExecutorKind::Direct => {
            let direct = &config.spec.direct;
            let resolver = RegistryResolver::from_config(client.clone(), registry, direct);
            let namespace = crate::environment::Pod::from_env().namespace;
            let compiler = crate::compiler::from_config(direct, client.clone(), &namespace);
            let completions = Completions::default();
            let executor =
                DirectExecutor::new(Arc::new(resolver), compiler, completions.clone(), metrics.clone())
                    .with_provider_timeout(direct.provider_timeout);
            (Arc::new(executor), Some(completions))
        }
    }
}

/// Runs the controllers only while `elector` holds the Lease: waits to acquire it, runs until `shutdown` or until
/// leadership is lost, and releases the Lease on shutdown.
///
/// A leader that loses the Lease (it could not renew before the renew deadline, e.g. during an API server outage
/// longer than the Lease, or another replica holds it) stops its controllers before the Lease expires, then
/// competes for the Lease again in the same process, with backoff, and runs the controllers afresh (empty
/// caches) once it holds it. It does not exit: an outage makes no replica restart or flap
/// (docs/decisions/0016-backoff-during-outages.md). Returns only on `shutdown` or a permanent leader election
/// error (bad settings, 401/403).
pub async fn run_as_leader(
    ctx: Arc<Context>,
    sources: Option<EventSources>,
    elector: LeaderElector,
    shutdown: Shutdown,
    readiness: &Readiness,
) -> Result<(), OperatorError> {
    let identity = elector.config().identity.clone();
    let elector = Arc::new(elector);
    loop {
        tracing::info!(%identity, "waiting for the leader election Lease");
        let lease = elector.config().name.clone();
        ctx.metrics.standard.leading(&lease, false);
        tokio::select! {
            acquired = elector.acquire() => acquired?,
            () = shutdown.signalled() => return Ok(()),
        }
        ctx.metrics.standard.leading(&lease, true);
        let guard = elector.clone().run_shared();
        if lead(
            ctx.clone().with_fresh_caches(),
            sources.clone(),
            guard.leading(),
            &shutdown,
            readiness,
        )
        .await
        {
            drop(guard);
            tracing::warn!(
                %identity,
                "lost the leader election Lease and stopped the controllers; competing for the Lease again"
            );
            continue;
        }
        guard.release().await?;
        ctx.metrics.standard.leading(&lease, false);
        tracing::info!(%identity, "released the leader election Lease");
        return Ok(());
    }
}

/// The kube client of `Client::try_default`, counting its requests in `rest_client_requests_total`.
async fn counted_client(metrics: &Arc<Metrics>) -> Result<Client, OperatorError> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| OperatorError::Client(kube::Error::InferConfig(e)))?;
    let host = config
        .cluster_url
        .authority()
        .map(ToString::to_string)
        .unwrap_or_default();
    let layer = crate::telemetry::RestClientMetrics::new(metrics.clone(), &host);
    Ok(kube::client::ClientBuilder::try_from(config)
        .map_err(OperatorError::Client)?
        .with_layer(&layer)
        .build())
}

/// Runs the controllers until `shutdown` or until `leading` turns false; true when leadership was lost.
async fn lead(
    ctx: Arc<Context>,
    sources: Option<EventSources>,
    mut leading: watch::Receiver<bool>,
    shutdown: &Shutdown,
    readiness: &Readiness,
) -> bool {
    let (trigger, controllers_shutdown) = Shutdown::new();
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let lost = lost.clone();
        let outer = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                changed = leading.wait_for(|leading| !*leading) => {
                    if changed.is_ok() {
                        lost.store(true, std::sync::atomic::Ordering::SeqCst);
                        tracing::error!("lost the leader election Lease; stopping the controllers");
                    }
                }
                () = outer.signalled() => {}
            }
            trigger.trigger();
        })
    };
    run_controllers_and_sources(ctx, sources, controllers_shutdown, readiness).await;
    watcher.abort();
    lost.load(std::sync::atomic::Ordering::SeqCst)
}

/// Why `kfp-operator run` stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorError {
    /// The configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Logging could not be set up.
    #[error(transparent)]
    Logging(#[from] crate::telemetry::LoggingError),
    /// No API server to talk to.
    #[error("no Kubernetes API server to talk to (in-cluster config or KUBECONFIG): {0}")]
    Client(#[source] kube::Error),
    /// A port could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// Leader election failed.
    #[error(transparent)]
    Leader(#[from] crate::leader::LeaderError),
    /// This replica lost the Lease. Not returned by [`run_as_leader`] since it competes for the Lease again
    /// instead of exiting (docs/decisions/0016-backoff-during-outages.md); kept for embedders that match on it.
    #[error("lost the leader election Lease")]
    LostLeadership,
    /// The NATS publisher could not be set up.
    #[error(transparent)]
    Nats(#[from] crate::feed::nats::PublishError),
    /// The webhook server could not start.
    #[error(transparent)]
    Webhook(#[from] crate::webhook::WebhookError),
}

/// What `kfp-operator run` reads from its command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The configuration file (`--config`); `None`: defaults and environment only.
    pub config: Option<std::path::PathBuf>,
}

/// `kfp-operator run`: the operator process. Loads the configuration, serves `/healthz`, `/readyz` and
/// `/metrics`, starts the webhook server when `system.webhook.enabled` (on every replica; `/readyz` then waits for
/// its serving certificate), takes the leader election Lease when enabled, and runs the controllers until SIGTERM
/// or Ctrl-C, finishing in-flight reconciles before it exits.
pub async fn run(options: RunOptions, registry: ProviderRegistry) -> Result<(), OperatorError> {
    let config = OperatorConfig::load(options.config.as_deref(), std::env::vars())?;
    crate::telemetry::init_logging(config.system.logging.format, &config.system.logging.level)?;
    let metrics = Metrics::shared();
    let client = counted_client(&metrics).await?;
    let (trigger, shutdown) = Shutdown::new();
    tokio::spawn(async move {
        termination_signal().await;
        tracing::info!("shutting down: finishing in-flight reconciles");
        trigger.trigger();
    });
    let (webhooks, leader_election) = (
        config.system.webhook.enabled,
        config.system.leader_election.enabled,
    );
    Operator::builder(client)
        .config(config)
        .registry(registry)
        .metrics(metrics)
        .with_health_endpoints(true)
        .with_webhooks(webhooks)
        .with_feed(true)
        .with_leader_election(leader_election)
        .build()
        .run(shutdown)
        .await
}

/// The operator as a library: the six controllers and, as switched on, what runs beside them. Made by
/// [`Operator::builder`]; [`Operator::run`] runs it until a [`Shutdown`].
///
/// ```no_run
/// # async fn example(client: kube::Client) -> Result<(), kfp_operator::operator::OperatorError> {
/// use kfp_operator::config::{ExecutorKind, OperatorConfig};
/// use kfp_operator::operator::{Operator, Shutdown};
///
/// let mut config = OperatorConfig::default();
/// config.spec.executor = ExecutorKind::Direct;
/// let (_trigger, shutdown) = Shutdown::new();
/// Operator::builder(client)
///     .config(config)
///     .registry(kfp_providers::default_registry())
///     .build()
///     .run(shutdown)
///     .await
/// # }
/// ```
pub struct Operator {
    client: Client,
    config: OperatorConfig,
    registry: ProviderRegistry,
    executor: Option<(Arc<dyn Executor>, Option<Completions>)>,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    parts: Parts,
}

/// What runs beside the controllers; all off unless switched on.
#[derive(Debug, Clone, Copy, Default)]
struct Parts {
    health: bool,
    webhooks: bool,
    feed: bool,
    leader_election: bool,
}

/// Builds an [`Operator`]: a kube [`Client`], then the configuration, provider registry, executor and the parts
/// to run beside the controllers. Unset: [`OperatorConfig::default`], [`kfp_providers::default_registry`], the
/// executor `spec.executor` selects, new [`Metrics`] and [`Readiness`], controllers only.
#[must_use]
pub struct OperatorBuilder {
    operator: Operator,
}

impl Operator {
    /// A builder for an operator that talks to the API server through `client`.
    pub fn builder(client: Client) -> OperatorBuilder {
        OperatorBuilder {
            operator: Operator {
                client,
                config: OperatorConfig::default(),
                registry: kfp_providers::default_registry(),
                executor: None,
                metrics: Metrics::shared(),
                readiness: Readiness::new(),
                parts: Parts::default(),
            },
        }
    }

    /// Runs until `shutdown`, then returns once the controllers finished their in-flight reconciles. Fails only
    /// when a part cannot start: a port cannot be bound (health, webhooks, feed), the NATS publisher cannot be set
    /// up, or leader election fails permanently.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), OperatorError> {
        let Operator {
            client,
            config,
            registry,
            executor,
            metrics,
            readiness,
            parts,
        } = self;
        let pod = crate::environment::Pod::from_env();
        if parts.health {
            serve_health(&config, &readiness, &metrics, &shutdown).await?;
        }
        if parts.webhooks {
            // On every replica, before leader election: admission and conversion must not wait for a leader.
            crate::webhook::start(
                &config,
                client.clone(),
                &readiness,
                crate::webhook::StartOptions::new(pod.namespace.clone()),
                shutdown.clone(),
            )
            .await?;
        }
        let processor = if parts.feed {
            start_feed(&config, &client, &metrics, &readiness, &shutdown).await?
        } else {
            crate::feed::Processor::new(client.clone(), &config, None, metrics.clone())
        };
        // Direct mode: the Providers' event sources report run completions in-process (docs/direct-executor.md).
        let sources = (config.spec.executor == ExecutorKind::Direct).then(|| {
            EventSources::new(
                registry.clone(),
                config.spec.direct.default_provider_type.clone(),
                processor,
            )
        });
        let (executor, completions) =
            executor.unwrap_or_else(|| executor_for(&config, &client, registry, &metrics));
        let leader_election = config.system.leader_election.clone();
        let ctx = Context::new(client.clone(), executor, completions, Arc::new(config), metrics);
        if !parts.leader_election {
            run_controllers_and_sources(ctx, sources, shutdown, &readiness).await;
            return Ok(());
        }
        let identity = pod.identity();
        // Events name the replica that wrote them the way the Lease names the leader.
        let ctx = ctx.with_instance(identity.clone());
        let lease = LeaseConfig::from_config(&leader_election, Some(&pod.namespace), &identity);
        run_as_leader(
            ctx,
            sources,
            LeaderElector::new(client, lease),
            shutdown,
            &readiness,
        )
        .await
    }
}

impl OperatorBuilder {
    /// The configuration (`system.*`, `spec.*`; see docs/configuration.md).
    pub fn config(mut self, config: OperatorConfig) -> Self {
        self.operator.config = config;
        self
    }

    /// The provider registry the direct executor and the event sources build providers from.
    pub fn registry(mut self, registry: ProviderRegistry) -> Self {
        self.operator.registry = registry;
        self
    }

    /// An executor of your own instead of the one `spec.executor` selects, with the [`Completions`] that wake the
    /// controllers when its operations finish (`None`: the controllers poll, as for an executor without them).
    pub fn executor(mut self, executor: Arc<dyn Executor>, completions: Option<Completions>) -> Self {
        self.operator.executor = Some((executor, completions));
        self
    }

    /// The metrics registry (`/metrics`); share one with a kube client layer to count its requests.
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.operator.metrics = metrics;
        self
    }

    /// The readiness checks the controllers, webhooks and NATS register in (`/readyz`).
    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.operator.readiness = readiness;
        self
    }

    /// Serve `/healthz`, `/readyz` and `/metrics` on `system.healthAddress` and `system.metricsAddress`.
    pub fn with_health_endpoints(mut self, on: bool) -> Self {
        self.operator.parts.health = on;
        self
    }

    /// Serve the conversion and admission webhooks as `system.webhook.*` says (docs/webhooks.md).
    pub fn with_webhooks(mut self, on: bool) -> Self {
        self.operator.parts.webhooks = on;
        self
    }

    /// Serve the run-completion feed and publish to NATS as `spec.runCompletionFeed.*` says
    /// (docs/run-completion-events.md).
    pub fn with_feed(mut self, on: bool) -> Self {
        self.operator.parts.feed = on;
        self
    }

    /// Run the controllers only while this process holds the Lease `system.leaderElection.*` names.
    pub fn with_leader_election(mut self, on: bool) -> Self {
        self.operator.parts.leader_election = on;
        self
    }

    /// The operator, ready to [`Operator::run`].
    pub fn build(self) -> Operator {
        self.operator
    }
}

/// Serves `/healthz`, `/readyz` and `/metrics` on the configured addresses (one server when they are the same).
async fn serve_health(
    config: &OperatorConfig,
    readiness: &Readiness,
    metrics: &Arc<Metrics>,
    shutdown: &Shutdown,
) -> Result<(), OperatorError> {
    let mut addresses = vec![config.system.health_address.clone()];
    if config.system.metrics_address != config.system.health_address {
        addresses.push(config.system.metrics_address.clone());
    }
    for address in addresses {
        let listener =
            tokio::net::TcpListener::bind(&address)
                .await
                .map_err(|source| OperatorError::Bind {
                    address: address.clone(),
                    source,
                })?;
        let server = crate::health::serve(listener, readiness.clone(), metrics.clone(), shutdown.signalled());
        tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::error!(%error, "the health/metrics server stopped");
            }
        });
    }
    Ok(())
}

/// Starts the run-completion feed on `spec.runCompletionFeed.address:port` (on every replica, leader or not) and,
/// when `spec.runCompletionFeed.nats.url` is set, the NATS publisher (its connection is a reported check:
/// `/readyz?verbose` lists it, `/readyz` does not wait for it). Returns the processor the feed uses, for the
/// in-process event sources of direct mode.
pub async fn start_feed(
    config: &OperatorConfig,
    client: &Client,
    metrics: &Arc<Metrics>,
    readiness: &Readiness,
    shutdown: &Shutdown,
) -> Result<crate::feed::Processor, OperatorError> {
    let feed_config = &config.spec.run_completion_feed;
    if !feed_config.endpoints.is_empty() {
        tracing::warn!(
            endpoints = feed_config.endpoints.len(),
            "spec.runCompletionFeed.endpoints (gRPC forwarding) is not supported and is ignored: the operator \
             publishes run completion events to NATS itself (spec.runCompletionFeed.nats)"
        );
    }
    let publisher = if feed_config.nats.enabled() {
        Some(crate::feed::nats::Publisher::start(&feed_config.nats, readiness).await?)
    } else {
        None
    };
    let processor = crate::feed::Processor::new(client.clone(), config, publisher, metrics.clone());
    let feed = crate::feed::Feed::new(processor.clone(), client.clone(), config, metrics.clone());
    let address = feed_config.socket_address()?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| OperatorError::Bind {
            address: address.to_string(),
            source,
        })?;
    tracing::info!(%address, "run completion feed listening");
    let server = crate::feed::serve(listener, feed, shutdown.signalled());
    tokio::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(%error, "the run completion feed stopped");
        }
    });
    Ok(processor)
}

/// SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn termination_signal() {
    #[cfg(unix)]
    {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
