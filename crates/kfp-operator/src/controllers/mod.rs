//! The six controllers (docs/controllers.md): each gathers what its planner needs, calls the pure `kfp_core::reconcile`
//! planner, and applies the planned commands in order, stopping at the first error (decision 0002). No state
//! logic lives here.
//!
//! A reconcile acts on the object as it is now (decision 0004, "Reads and writes"), so a status written a moment ago is
//! never planned on twice: the object is read from the API server, unless the watch cache's copy carries the
//! `resourceVersion` of this process's own last write of it ([`own_writes`]), which makes it as fresh as a read. Writes
//! use the observed `resourceVersion`, so a write based on a stale copy fails with a conflict and the object is
//! reconciled again.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kfp_core::executor::{Executor, ExecutorError, ResourceKind, ResourceRef};
use kfp_core::reconcile::Event;
use kfp_core::resources::v1beta1::Provider;
use kube::runtime::controller::Action;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::config::OperatorConfig;
use crate::executor::Completions;
use crate::telemetry::Metrics;
use events::Recorder;

pub mod bypassed;
pub mod events;
pub mod generic;
pub mod own_writes;
pub mod provider;
pub mod run_configuration;
pub mod tolerant;

/// The reporting controller of every Event the operator records (docs/controllers.md, "Events and metrics").
pub const REPORTER: &str = "kfp-operator";

/// How long a resource with nothing pending waits before it is looked at again anyway. A safety net: every change
/// that matters arrives through a watch or an executor completion.
pub const RESYNC: Duration = Duration::from_secs(600);

/// How soon a reconcile that failed (API error, executor unreachable) is tried again the first time.
pub const ERROR_REQUEUE: Duration = Duration::from_secs(5);

/// The backoff of an object whose reconciles keep failing: [`ERROR_REQUEUE`] doubling up to 5 minutes, jittered.
/// A watch event of the object (or the re-list after the API server comes back) reconciles it earlier, so the
/// cap only bounds how often a failing object is retried on its own (docs/reliability.md).
pub const ERROR_BACKOFF: crate::retry::Backoff =
    crate::retry::Backoff::new(ERROR_REQUEUE, Duration::from_secs(300));

/// What every controller shares.
#[derive(Clone)]
pub struct Context {
    /// The API client every controller uses.
    pub client: Client,
    /// Carries out provider operations (Argo or direct).
    pub executor: Arc<dyn Executor>,
    /// Wake-ups from an executor that finishes operations itself (the direct executor). `None`: the executor
    /// reports through watched objects (Argo Workflows).
    pub completions: Option<Completions>,
    /// The operator's configuration.
    pub config: Arc<OperatorConfig>,
    /// The metrics every controller records.
    pub metrics: Arc<Metrics>,
    /// Records Kubernetes Events on the reconciled objects.
    pub recorder: Recorder,
    /// This process's pod (`POD_NAMESPACE`, `POD_NAME`), read once when the context is made.
    pub pod: crate::environment::Pod,
    /// Providers as the Provider controller's watch sees them, read by the other controllers.
    pub providers: ProviderCache,
    /// The versions of our last writes: a cached object carrying one needs no fresh read (see [`own_writes`]).
    pub own_writes: Arc<own_writes::OwnWrites>,
    /// Consecutive reconcile failures per object, for [`error_policy`]'s backoff.
    pub failures: Arc<crate::retry::Failures>,
    /// The objects reported as unreadable so far (see [`tolerant`]).
    pub unreadable: Arc<tolerant::Reports>,
    /// What the Run controller's Pipeline watch has seen of each Pipeline, read instead of a GET per reconcile.
    pub pipelines: Arc<PipelineObservations>,
}

/// The state and version of every watched Pipeline, as the Run controller's Pipeline watch saw them (issue 18: a
/// Run's reconcile read its Pipeline with a GET, a quarter of the API server's time in the scale run).
///
/// Filled by the same stream that wakes Runs when their Pipeline's version changes, before it wakes them, so a
/// woken Run never reads an older observation than the change that woke it. Holds two small strings per
/// Pipeline, not the Pipelines. Until the watch's first list is complete nothing is known and readers GET.
#[derive(Debug, Default)]
pub struct PipelineObservations {
    inner: std::sync::RwLock<ObservationMap>,
}

#[derive(Debug, Default)]
struct ObservationMap {
    ready: bool,
    /// During a (re-)list: the Pipelines listed so far; the rest are gone once it is done.
    listing: Option<std::collections::HashSet<(String, String)>>,
    seen: std::collections::HashMap<(String, String), kfp_core::reconcile::dependencies::PipelineObservation>,
}

impl PipelineObservations {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ObservationMap> {
        // Single inserts and removes: a panic elsewhere cannot leave it half-changed.
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Follows one event of the Pipeline watch.
    pub fn follow(&self, event: &kube::runtime::watcher::Event<kfp_core::resources::v1beta1::Pipeline>) {
        use kube::runtime::watcher::Event;
        let key =
            |p: &kfp_core::resources::v1beta1::Pipeline| (p.namespace().unwrap_or_default(), p.name_any());
        let mut map = self.write();
        match event {
            Event::Init => map.listing = Some(Default::default()),
            Event::InitApply(pipeline) | Event::Apply(pipeline) => {
                if let Some(listing) = map.listing.as_mut() {
                    listing.insert(key(pipeline));
                }
                map.seen
                    .insert(key(pipeline), generic::pipeline_observation(pipeline));
            }
            Event::Delete(pipeline) => {
                map.seen.remove(&key(pipeline));
            }
            Event::InitDone => {
                if let Some(listed) = map.listing.take() {
                    map.seen.retain(|key, _| listed.contains(key));
                }
                map.ready = true;
            }
        }
    }

    /// The observation of Pipeline `namespace/name`: `Some(None)` when the watch knows it does not exist,
    /// `None` when the watch has not listed yet (read it instead).
    pub fn get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<Option<kfp_core::reconcile::dependencies::PipelineObservation>> {
        let map = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.ready
            .then(|| map.seen.get(&(namespace.to_string(), name.to_string())).cloned())
    }
}

/// The Providers the Provider controller watches, shared with the controllers that read a Provider on every
/// reconcile (Pipeline, Run, RunSchedule, Experiment).
///
/// Providers change rarely and are read on every reconcile of every resource, so they come from this cache and
/// not from the API server (the resources themselves are still read fresh, see the module docs). A Provider the
/// cache does not hold (not seen yet, outside the watched namespace, or the Provider controller is not running in
/// this process) is read from the API server. A Provider changed a moment ago may be planned on in its previous
/// state once; its watch event then reconciles nothing of the resources, but the next reconcile of each sees it.
#[derive(Clone)]
pub struct ProviderCache {
    store: Store<Provider>,
    writer: Arc<std::sync::Mutex<Option<Writer<Provider>>>>,
}

impl Default for ProviderCache {
    fn default() -> Self {
        let (store, writer) = kube::runtime::reflector::store();
        Self {
            store,
            writer: Arc::new(std::sync::Mutex::new(Some(writer))),
        }
    }
}

impl ProviderCache {
    /// The store's writer, for the one watch that fills it (the Provider controller's); `None` once taken.
    pub fn take_writer(&self) -> Option<Writer<Provider>> {
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// The store itself (what the Provider controller's watch has seen so far).
    pub fn store(&self) -> Store<Provider> {
        self.store.clone()
    }

    /// The Provider `name` from the cache, else from the API server; `None` when it does not exist.
    pub async fn get(
        &self,
        client: &Client,
        name: &kfp_core::values::NamespacedName,
    ) -> Result<Option<Provider>, ControllerError> {
        let key = ObjectRef::new(&name.name).within(&name.namespace);
        if let Some(provider) = self.store.get(&key) {
            return Ok(Some(provider.as_ref().clone()));
        }
        let api: kube::Api<Provider> = kube::Api::namespaced(client.clone(), &name.namespace);
        get_opt(&api, &name.name, "Provider").await
    }
}

impl Context {
    /// A context for `client`, `executor` (with the `completions` of a direct executor), `config` and `metrics`;
    /// the Event recorder names the pod (`POD_NAME`) as the reporting instance.
    pub fn new(
        client: Client,
        executor: Arc<dyn Executor>,
        completions: Option<Completions>,
        config: Arc<OperatorConfig>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let pod = crate::environment::Pod::from_env();
        let recorder = Recorder::new(client.clone(), pod.name.clone());
        Arc::new(Self {
            client,
            executor,
            completions,
            config,
            metrics,
            recorder,
            pod,
            providers: ProviderCache::default(),
            own_writes: Arc::default(),
            failures: Arc::default(),
            unreadable: Arc::default(),
            pipelines: Arc::default(),
        })
    }

    /// The same context with empty caches (Providers, own writes, failure counts), for controllers started again
    /// in the same process: a leader that lost its Lease and took it again starts from what the API server says.
    pub fn with_fresh_caches(self: Arc<Self>) -> Arc<Self> {
        let mut ctx = Arc::unwrap_or_clone(self);
        ctx.providers = ProviderCache::default();
        ctx.own_writes = Arc::default();
        ctx.failures = Arc::default();
        ctx.unreadable = Arc::default();
        ctx.pipelines = Arc::default();
        Arc::new(ctx)
    }

    /// The same context with Events reported by `instance` (`reportingInstance`) instead of the `POD_NAME`
    /// environment variable: the replica's leader election identity, or one of several replicas in one process.
    pub fn with_instance(self: Arc<Self>, instance: impl Into<String>) -> Arc<Self> {
        let mut ctx = Arc::unwrap_or_clone(self);
        ctx.recorder = Recorder::new(ctx.client.clone(), Some(instance.into()));
        Arc::new(ctx)
    }

    /// An API over the watched namespaces: one namespace with `system.watchNamespace`, else all.
    pub fn watched<K>(&self) -> kube::Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        match self.config.system.watch_namespace.as_str() {
            "" => kube::Api::all(self.client.clone()),
            namespace => kube::Api::namespaced(self.client.clone(), namespace),
        }
    }

    /// [`Self::watched`] for dynamic objects (Argo Workflows).
    pub fn watched_dynamic(&self, resource: &kube::api::ApiResource) -> kube::Api<kube::api::DynamicObject> {
        match self.config.system.watch_namespace.as_str() {
            "" => kube::Api::all_with(self.client.clone(), resource),
            namespace => kube::Api::namespaced_with(self.client.clone(), namespace, resource),
        }
    }

    /// Records a Kubernetes Event on `object`. A failure to record is logged, never fatal: events are for humans.
    pub async fn record<K: Resource<DynamicType = ()>>(&self, object: &K, event: &Event) {
        if let Err(error) = self.recorder.record(object, event).await {
            // Fails for every object while the API server is away: one line per 30 s.
            if let Some(suppressed) = crate::telemetry::failure_log().check("events/record") {
                tracing::warn!(
                    failure = "events/record",
                    %error,
                    reason = %event.reason,
                    suppressed,
                    "could not record an event"
                );
            }
        }
    }
}

/// Why a reconcile failed. The controller retries after [`ERROR_REQUEUE`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError {
    /// An API call failed.
    #[error("{action} failed: {source}")]
    Kube {
        /// What was being done, e.g. `writing the status of training`.
        action: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The executor could not submit or report an operation.
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    /// The object cannot be reconciled as it is (the message says why).
    #[error("{0}")]
    Invalid(String),
}

impl ControllerError {
    /// A [`ControllerError::Kube`] for `action`.
    pub fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            action: action.into(),
            source,
        }
    }

    /// A short label for the `reconcile_errors_total` metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Kube { source, .. } => match source {
                kube::Error::Api(status) if status.code == 409 => "conflict",
                kube::Error::Api(status) if status.code == 404 => "not_found",
                kube::Error::Api(_) => "api",
                _ => "transport",
            },
            Self::Executor(_) => "executor",
            Self::Invalid(_) => "invalid",
        }
    }

    /// Whether the failure says nothing about the object: the API server or the executor could not be reached or
    /// answered 5xx/429. These repeat for every object during an outage, so they are logged once per kind and
    /// interval (`telemetry::failure_log`), not once per object.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Kube {
                source: kube::Error::Api(status),
                ..
            } => status.code >= 500 || status.code == 429,
            Self::Kube { .. } | Self::Executor(_) => true,
            Self::Invalid(_) => false,
        }
    }

    /// A conflict means the object changed under us: the next reconcile (its watch event) sees the new version,
    /// so it is not worth a warning.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Kube { source: kube::Error::Api(status), .. } if status.code == 409)
    }
}

/// The current time as a Kubernetes `Time` (planners take `now` as an input).
pub fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Turns a plan's `requeue_after` into a controller action.
pub fn action(requeue_after: Option<Duration>) -> Action {
    Action::requeue(requeue_after.map_or(RESYNC, |d| d.min(RESYNC)))
}

/// The error policy of every controller: log, and retry after the object's [`ERROR_BACKOFF`] (a success
/// resets it, see [`instrumented`]). Failures that say nothing about the object ([`ControllerError::is_unavailable`])
/// are logged once per controller and reason per interval, with the count of repeats.
pub fn error_policy<K: Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &ControllerError,
    ctx: Arc<Context>,
) -> Action {
    let controller = K::kind(&()).to_ascii_lowercase();
    let namespace = object.namespace().unwrap_or_default();
    let failures = ctx.failures.fail(&crate::retry::Failures::key(
        &controller,
        &namespace,
        &object.name_any(),
    ));
    let retry_in = ERROR_BACKOFF.delay(failures);
    if error.is_conflict() {
        tracing::debug!(name = %object.name_any(), %error, "conflict; reconciling again");
    } else if error.is_unavailable() {
        let kind = format!("reconcile/{controller}/{}", error.reason());
        if let Some(suppressed) = crate::telemetry::failure_log().check(&kind) {
            tracing::warn!(
                failure = %kind,
                name = %object.name_any(),
                %namespace,
                %error,
                failures,
                ?retry_in,
                suppressed,
                "reconcile failed; retrying with backoff (one line per controller and reason every 30 s, \
                 `suppressed` counts the others)"
            );
        }
    } else {
        tracing::warn!(name = %object.name_any(), %namespace, %error, failures, ?retry_in, "reconcile failed");
    }
    Action::requeue(retry_in)
}

/// Logs what a controller's run stream reports besides reconciles, which [`error_policy`] logs: a failed watch
/// (the API server unreachable or refusing the watch), once per controller per interval with the count of
/// repeats. The watches retry by themselves with kube-runtime's jittered backoff.
pub fn log_run_result<T, E1, E2>(
    controller: &'static str,
    result: Result<T, kube::runtime::controller::Error<E1, E2>>,
) where
    E1: std::error::Error,
    E2: std::error::Error,
{
    use kube::runtime::controller::Error;
    match result {
        Err(Error::QueueError(error)) => {
            let kind = format!("watch/{controller}");
            if let Some(suppressed) = crate::telemetry::failure_log().check(&kind) {
                tracing::warn!(
                    failure = %kind,
                    %error,
                    suppressed,
                    "a watch failed; retrying with backoff (one line per controller every 30 s, `suppressed` counts \
                     the others)"
                );
            }
        }
        Err(Error::ReconcilerFailed(..)) | Ok(_) => {}
        Err(error) => tracing::debug!(controller, %error, "controller"),
    }
}

/// Runs `reconcile` inside a span carrying the object's identity, and records its duration and result.
pub async fn instrumented<F>(
    ctx: &Context,
    controller: &'static str,
    namespace: &str,
    name: &str,
    reconcile: F,
) -> Result<Action, ControllerError>
where
    F: std::future::Future<Output = Result<Action, ControllerError>>,
{
    let span = crate::telemetry::reconcile_span(controller, namespace, name);
    ctx.metrics.reconcile_started(controller);
    let started = Instant::now();
    let result = reconcile.instrument(span.clone()).await;
    if result.is_ok() {
        ctx.failures
            .succeed(&crate::retry::Failures::key(controller, namespace, name));
    }
    let elapsed = started.elapsed();
    ctx.metrics.reconciled(
        controller,
        elapsed,
        result.as_ref().err().map(ControllerError::reason),
    );
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    span.record("duration_ms", duration_ms);
    span.in_scope(|| tracing::debug!(duration_ms, ok = result.is_ok(), "reconciled"));
    result
}

/// Maps executor completions of `kind` to object references, for `Controller::reconcile_on`.
pub fn completion_triggers<K>(
    ctx: &Context,
    kind: ResourceKind,
) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + 'static,
{
    let receiver = ctx.completions.as_ref().map(Completions::subscribe);
    let stream = match receiver {
        Some(receiver) => tokio_stream_from(receiver).boxed(),
        None => futures::stream::empty().boxed(),
    };
    stream.filter_map(move |r: ResourceRef| async move {
        (r.kind == kind).then(|| ObjectRef::<K>::new(&r.name).within(&r.namespace))
    })
}

/// A broadcast receiver as a stream that skips lag notices (a lagging controller resyncs anyway).
fn tokio_stream_from(
    receiver: tokio::sync::broadcast::Receiver<ResourceRef>,
) -> impl futures::Stream<Item = ResourceRef> + Send {
    futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(item) => return Some((item, receiver)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// A controller of the `K`s in the watched namespaces, whose `ready` flag (`/readyz`) is set once its cache holds
/// the first complete list. Objects that do not decode as `K` are left out and reported ([`tolerant`]).
///
/// The flag is set from the watch stream itself: kube-runtime's `Store::wait_until_ready` wakes only the waiter
/// that polled it last, and the controller's runner waits on it too, so a separate task waiting on it could
/// sleep forever and leave the operator unready for good.
pub fn controller_with_readiness<K>(
    ctx: &Context,
    config: kube::runtime::watcher::Config,
    ready: crate::health::ReadinessFlag,
) -> kube::runtime::Controller<K>
where
    K: tolerant::Kind,
{
    let (reader, writer) = kube::runtime::reflector::store();
    controller_with_store(ctx, config, ready, reader, writer)
}

/// [`controller_with_readiness`] that also hands every object the watch reports deleted to `deleted` (before the
/// controller sees the event).
pub fn controller_with_deletions<K>(
    ctx: &Context,
    config: kube::runtime::watcher::Config,
    ready: crate::health::ReadinessFlag,
    deleted: impl Fn(&K) + Send + 'static,
) -> kube::runtime::Controller<K>
where
    K: tolerant::Kind,
{
    let (reader, writer) = kube::runtime::reflector::store();
    controller_from(ctx, config, ready, reader, writer, deleted)
}

/// [`controller_with_readiness`] filling the given store (which others may read too).
pub fn controller_with_store<K>(
    ctx: &Context,
    config: kube::runtime::watcher::Config,
    ready: crate::health::ReadinessFlag,
    reader: kube::runtime::reflector::Store<K>,
    writer: kube::runtime::reflector::store::Writer<K>,
) -> kube::runtime::Controller<K>
where
    K: tolerant::Kind,
{
    controller_from(ctx, config, ready, reader, writer, |_: &K| {})
}

fn controller_from<K>(
    ctx: &Context,
    config: kube::runtime::watcher::Config,
    ready: crate::health::ReadinessFlag,
    reader: kube::runtime::reflector::Store<K>,
    writer: kube::runtime::reflector::store::Writer<K>,
    deleted: impl Fn(&K) + Send + 'static,
) -> kube::runtime::Controller<K>
where
    K: tolerant::Kind,
{
    use kube::runtime::WatchStreamExt;
    // Backoff per watch (kube-runtime also backs off all trigger streams of a controller together): without it
    // a watch that cannot reach the API server reconnects at once, thousands of times a second. The tolerant watch
    // has it built in.
    let watch = tolerant::watch::<K>(ctx, config).modify(slim);
    let stream = kube::runtime::reflector(writer, watch)
        .inspect(move |event| match event {
            Ok(kube::runtime::watcher::Event::InitDone) => ready.set(true),
            Ok(kube::runtime::watcher::Event::Delete(object)) => deleted(object),
            _ => {}
        })
        .applied_objects();
    kube::runtime::Controller::for_stream(stream, reader)
}

/// Drops what no cached copy is read for: `managedFields` (often larger than the rest of the object) and the
/// client-side apply annotation. Reconciles read the object fresh from the API server; the caches only map
/// events to objects, so the operator's memory grows with the number of objects, not with their write history.
pub fn slim<K: Resource>(object: &mut K) {
    object.managed_fields_mut().clear();
    if let Some(annotations) = object.meta_mut().annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// A shutdown future that can be awaited more than once (by the controller and by [`drive`]).
pub type SharedShutdown = futures::future::Shared<futures::future::BoxFuture<'static, ()>>;

/// Makes `shutdown` awaitable more than once.
pub fn share_shutdown(shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> SharedShutdown {
    futures::FutureExt::shared(futures::FutureExt::boxed(shutdown))
}

/// Drives a controller (`run`, built with `graceful_shutdown_on(shutdown.clone())`) to its end.
///
/// kube-runtime holds a controller's runner until its cache (`store`) was filled for the first time, and keeps
/// holding it during a graceful shutdown although the watch that would fill the cache has stopped: a shutdown
/// that arrives before the first list completed would wait forever. Such a controller has not reconciled
/// anything yet (its runner never started), so it is dropped at once instead.
pub async fn drive<K>(
    store: kube::runtime::reflector::Store<K>,
    shutdown: SharedShutdown,
    run: impl std::future::Future<Output = ()>,
) where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    tokio::pin!(run);
    tokio::select! {
        () = &mut run => return,
        () = shutdown => {}
    }
    if futures::FutureExt::now_or_never(store.wait_until_ready()).is_none() {
        tracing::debug!("shutdown before the controller's cache was filled: nothing to finish");
        return;
    }
    run.await;
}

/// Replaces the status subresource of `object` with its current `status`, using its `resourceVersion`.
pub async fn replace_status<K>(api: &kube::Api<K>, object: &K) -> Result<K, ControllerError>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    api.replace_status(&object.name_any(), &Default::default(), object)
        .await
        .map_err(|e| ControllerError::kube(format!("writing the status of {}", object.name_any()), e))
}

/// Reads an object; `None` when it does not exist.
pub async fn get_opt<K>(api: &kube::Api<K>, name: &str, what: &str) -> Result<Option<K>, ControllerError>
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    api.get_opt(name)
        .await
        .map_err(|e| ControllerError::kube(format!("reading {what} {name}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kfp_core::resources::v1beta1::Pipeline;
    use kube::runtime::watcher::Event;

    fn pipeline(name: &str, version: &str) -> Pipeline {
        let mut pipeline: Pipeline = serde_json::from_value(serde_json::json!({
            "apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "Pipeline",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"provider": "ops/stub", "image": "i", "framework": {"name": "stub", "parameters": {}}},
        }))
        .unwrap();
        pipeline.status = Some(kfp_core::resources::v1beta1::Status {
            version: version.into(),
            ..Default::default()
        });
        pipeline
    }

    /// Nothing is known before the first list is done (readers GET); then what the watch saw, and a re-list drops
    /// the Pipelines that went while the watch was away.
    #[test]
    fn pipeline_observations_follow_the_watch() {
        let observations = PipelineObservations::default();
        observations.follow(&Event::Init);
        observations.follow(&Event::InitApply(pipeline("a", "v1")));
        assert_eq!(observations.get("ns", "a"), None, "not listed yet");
        observations.follow(&Event::InitApply(pipeline("b", "v1")));
        observations.follow(&Event::InitDone);
        assert_eq!(observations.get("ns", "a").unwrap().unwrap().version, "v1");
        assert_eq!(observations.get("ns", "missing"), Some(None));
        observations.follow(&Event::Apply(pipeline("a", "v2")));
        assert_eq!(observations.get("ns", "a").unwrap().unwrap().version, "v2");
        observations.follow(&Event::Delete(pipeline("a", "v2")));
        assert_eq!(observations.get("ns", "a"), Some(None));
        observations.follow(&Event::Init);
        observations.follow(&Event::InitApply(pipeline("c", "v1")));
        observations.follow(&Event::InitDone);
        assert_eq!(
            observations.get("ns", "b"),
            Some(None),
            "gone while the watch was away"
        );
        assert!(observations.get("ns", "c").unwrap().is_some());
    }
}
