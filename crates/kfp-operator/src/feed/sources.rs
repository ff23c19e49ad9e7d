//! Direct mode (issue 6 item 4): each Provider's [`EventSource`](kfp_core::provider::EventSource), built from the
//! provider registry, feeds the [`Processor`] in-process, with no provider service and no HTTP in between.
//!
//! [`run`] watches the Providers (of `system.watchNamespace`, or all) and keeps one task per Provider whose
//! registry type has an event source; the type is chosen as the direct executor chooses it (the
//! `pipelines.kubeflow.org/provider-type` annotation, else `spec.direct.defaultProviderType`). Each task runs
//! `kfp_providers::events::forward_events` with a sink that records and publishes the event: recorded ->
//! `Delivered`; gone, not referencing anything or from the wrong Provider -> `Rejected` (dropped, as the provider
//! service drops a 410); API or NATS failure -> retried with backoff, then `Failed` (the source delivers it again
//! later). A Provider whose spec, annotations or uid change gets its source rebuilt; a deleted one loses it.
//!
//! The tasks run with the controllers (on the leader only) and stop with them, finishing the delivery in flight.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use futures::StreamExt;
use kfp_core::event::RunCompletionEventData;
use kfp_core::provider::DeliveryOutcome;
use kfp_core::registry::{ProviderRegistry, RegistryError};
use kfp_core::resources::v1beta1::Provider;
use kfp_core::values::NamespacedName;
use kfp_providers::config::RetryPolicy;
use kfp_providers::events::{EventSink, forward_events};
use kube::ResourceExt;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Processor;
use crate::executor::direct::RegistryResolver;

/// What direct mode needs to run event sources: the registry, the default provider type and the processor.
#[derive(Clone)]
pub struct EventSources {
    registry: ProviderRegistry,
    default_type: String,
    processor: Processor,
    retry: RetryPolicy,
}

impl EventSources {
    /// Event sources of `registry`'s types, `default_type` for Providers without the type annotation.
    pub fn new(registry: ProviderRegistry, default_type: impl Into<String>, processor: Processor) -> Self {
        Self {
            registry,
            default_type: default_type.into(),
            processor,
            retry: RetryPolicy::default(),
        }
    }

    /// The same with another retry policy for failed deliveries (tests use short backoffs).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// Delivers to the processor in-process.
struct ProcessorSink {
    processor: Processor,
}

#[async_trait::async_trait]
impl EventSink for ProcessorSink {
    async fn attempt(&self, event: &RunCompletionEventData) -> Result<DeliveryOutcome, String> {
        match self.processor.process(event, "direct").await {
            Ok(_) => Ok(DeliveryOutcome::Delivered),
            Err(error) => match error.outcome() {
                DeliveryOutcome::Failed => Err(error.to_string()),
                settled => Ok(settled),
            },
        }
    }
}

/// What a running source was built from: a change rebuilds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    uid: Option<String>,
    generation: Option<i64>,
    type_name: String,
}

struct Running {
    identity: Identity,
    task: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl Running {
    async fn stop(self) {
        if let Some((stop, task)) = self.task {
            let _ = stop.send(true);
            let _ = task.await;
        }
    }
}

/// Runs `sources` for the Providers `providers` lists (the watched namespace, or all) until `shutdown`.
pub async fn run(
    sources: EventSources,
    providers: kube::Api<Provider>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut running: HashMap<NamespacedName, Running> = HashMap::new();
    // Providers listed since the watch (re)started: the others were deleted while it was down.
    let mut listed: Option<HashSet<NamespacedName>> = None;
    // With backoff: this loop polls the watch again at once, so a watch failing fast (the API server down)
    // would otherwise reconnect thousands of times a second.
    let mut events = watcher::watcher(providers, watcher::Config::default())
        .default_backoff()
        .boxed();
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            () = &mut shutdown => break,
        };
        match event {
            Some(Ok(watcher::Event::Apply(provider))) => {
                reconcile(&sources, &mut running, &provider).await;
            }
            Some(Ok(watcher::Event::InitApply(provider))) => {
                if let Some(listed) = listed.as_mut() {
                    listed.insert(NamespacedName::new(
                        provider.namespace().unwrap_or_default(),
                        provider.name_any(),
                    ));
                }
                reconcile(&sources, &mut running, &provider).await;
            }
            Some(Ok(watcher::Event::Init)) => listed = Some(HashSet::new()),
            Some(Ok(watcher::Event::InitDone)) => {
                let listed = listed.take().unwrap_or_default();
                let gone: Vec<NamespacedName> = running
                    .keys()
                    .filter(|name| !listed.contains(*name))
                    .cloned()
                    .collect();
                for name in gone {
                    if let Some(source) = running.remove(&name) {
                        tracing::info!(provider = %name, "the Provider is gone: stopping its event source");
                        source.stop().await;
                    }
                }
            }
            Some(Ok(watcher::Event::Delete(provider))) => {
                let name = NamespacedName::new(provider.namespace().unwrap_or_default(), provider.name_any());
                if let Some(source) = running.remove(&name) {
                    tracing::info!(provider = %name, "the Provider is gone: stopping its event source");
                    source.stop().await;
                }
            }
            Some(Err(error)) => {
                if let Some(suppressed) = crate::telemetry::failure_log().check("watch/event-sources") {
                    tracing::warn!(
                        failure = "watch/event-sources",
                        %error,
                        suppressed,
                        "the Provider watch for event sources failed; retrying with backoff (one line every 30 s, \
                         `suppressed` counts the others)"
                    );
                }
            }
            None => break,
        }
    }
    for (_, source) in running.drain() {
        source.stop().await;
    }
    tracing::debug!("event sources stopped");
}

/// Starts, rebuilds or keeps the source of `provider`.
async fn reconcile(
    sources: &EventSources,
    running: &mut HashMap<NamespacedName, Running>,
    provider: &Provider,
) {
    let name = NamespacedName::new(provider.namespace().unwrap_or_default(), provider.name_any());
    let type_name = match RegistryResolver::type_of(provider, &sources.default_type) {
        Ok(type_name) => type_name,
        Err(error) => {
            tracing::debug!(provider = %name, %error, "no event source: the Provider has no type");
            if let Some(old) = running.remove(&name) {
                old.stop().await;
            }
            return;
        }
    };
    let identity = Identity {
        uid: provider.uid(),
        generation: provider.metadata.generation,
        type_name: type_name.clone(),
    };
    if running.get(&name).is_some_and(|r| r.identity == identity) {
        return;
    }
    if let Some(old) = running.remove(&name) {
        tracing::info!(provider = %name, "the Provider changed: rebuilding its event source");
        old.stop().await;
    }
    let config = RegistryResolver::provider_config(provider);
    let task = match sources.registry.build_event_source(&type_name, &config) {
        Ok(source) => {
            tracing::info!(provider = %name, provider_type = %type_name, "reading run completion events in-process");
            let (stop, stopped) = watch::channel(false);
            let sink = ProcessorSink {
                processor: sources.processor.clone(),
            };
            let task = tokio::spawn(forward_events(source, sink, sources.retry, stopped));
            Some((stop, task))
        }
        Err(RegistryError::NoEventSource { .. }) => {
            tracing::debug!(provider = %name, provider_type = %type_name, "this provider type has no event source");
            None
        }
        Err(error) => {
            tracing::warn!(provider = %name, %error, "cannot build the Provider's event source");
            None
        }
    };
    running.insert(name, Running { identity, task });
}
