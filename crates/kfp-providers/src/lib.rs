//! Provider implementations and the provider-service HTTP server (docs/provider-service.md, docs/providers/).
//!
//! - [`service`]: an HTTP server that serves ANY [`Provider`] over the provider-service contract
//!   (docs/provider-service.md), with health probes, Prometheus metrics on a separate port, and forwarding of the
//!   provider's [`EventSource`] to the operator's run-completion feed ([`events`]).
//! - [`http::HttpProvider`]: a [`Provider`] that calls a remote provider service over the same contract.
//! - [`stub::StubProvider`]: the backend-less stub provider (docs/provider-service.md, "The stub provider"), with its
//!   event source.
//! - [`conformance`]: a reusable test kit that checks any [`Provider`] (and its events) against the contract.
//! - [`kfp::KfpProvider`]: Kubeflow Pipelines (v2beta1 REST), with an in-process API fake behind feature `fakes`, and
//!   its event source [`kfp::events::KfpEventSource`] (Argo workflows via kube).
//! - [`vai::VaiProvider`]: Vertex AI (Cloud Storage + aiplatform v1 REST, Pub/Sub events), with a fake behind `fakes`.
//! - [`default_registry`]: a registry with the provider types of this crate (`stub`, `http`, `kfp`, `vai`).
//!
//! [`Provider`]: kfp_core::provider::Provider
//! [`EventSource`]: kfp_core::provider::EventSource

// Every public item is documented: provider authors build on this crate.
#![warn(missing_docs)]

use kfp_core::registry::ProviderRegistry;

pub mod config;
pub mod conformance;
pub mod events;
pub mod http;
pub mod kfp;
pub mod metrics;
pub mod service;
pub mod stub;
pub mod vai;

/// The kinds of resource the provider-service contract knows: the `{type}` of `/resource/{type}`.
pub use kfp_core::executor::ResourceKind;

/// A registry with this crate's provider types: `stub` (with its event source, [`stub::StubHub`]) and `http`
/// (a remote provider service, [`http::HttpProvider::from_config`]; no event source: the remote service forwards
/// its own events).
pub fn default_registry() -> ProviderRegistry {
    let mut registry = ProviderRegistry::new();
    register_defaults(&mut registry);
    registry
}

/// Adds `stub` and `http` to `registry` (for binaries that add their own types too). Names already taken are left
/// as they are.
pub fn register_defaults(registry: &mut ProviderRegistry) {
    let hub = stub::StubHub::default();
    let events_hub = hub.clone();
    let _ = registry.register_with_events(
        stub::TYPE_NAME,
        move |config| hub.provider(config).map(|p| p as _),
        move |config| events_hub.event_source(config).map(|s| Box::new(s) as _),
    );
    let _ = registry.register(http::TYPE_NAME, |config| {
        http::HttpProvider::from_config(config).map(|p| std::sync::Arc::new(p) as _)
    });
    let _ = registry.register_with_events(
        kfp::PROVIDER_TYPE,
        kfp::KfpProvider::factory,
        kfp::events::KfpEventSource::factory,
    );
    let _ = registry.register_with_events(
        vai::PROVIDER_TYPE,
        vai::VaiProvider::factory,
        vai::events::VaiEventSource::factory,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for kind in ResourceKind::ALL {
            assert_eq!(kind.as_str().parse::<ResourceKind>().unwrap(), kind);
        }
        let err = "Pipeline".parse::<ResourceKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown resource kind \"Pipeline\"; expected one of pipeline, run, runschedule, experiment"
        );
    }

    #[test]
    fn default_registry_knows_stub_http_kfp_and_vai() {
        let registry = default_registry();
        assert_eq!(
            registry.type_names().collect::<Vec<_>>(),
            ["http", "kfp", "stub", "vai"]
        );
    }

    #[test]
    fn kfp_has_an_event_source_that_connects_lazily() {
        let registry = default_registry();
        let config =
            kfp_core::provider::ProviderConfig::new(kfp_core::values::NamespacedName::new("ops", "kfp"));
        assert!(registry.build_event_source("kfp", &config).is_ok());
    }
}
