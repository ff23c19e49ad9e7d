//! Provider implementations and the provider-service HTTP server (SPEC 5).
//!
//! - [`service`]: an HTTP server that serves ANY [`Provider`] over the provider-service contract (SPEC 5.1), with
//!   health probes, Prometheus metrics on a separate port, and forwarding of the provider's [`EventSource`] to the
//!   operator's run-completion feed ([`events`]).
//! - [`http::HttpProvider`]: a [`Provider`] that calls a remote provider service over the same contract.
//! - [`stub::StubProvider`]: the backend-less stub provider of SPEC 5.5, with its event source.
//! - [`conformance`]: a reusable test kit that checks any [`Provider`] (and its events) against the contract.
//! - [`default_registry`]: a registry with the provider types of this crate (`stub`, `http`).
//!
//! [`Provider`]: kfp_core::provider::Provider
//! [`EventSource`]: kfp_core::provider::EventSource

use std::fmt;
use std::str::FromStr;

use kfp_core::registry::ProviderRegistry;

pub mod config;
pub mod conformance;
pub mod events;
pub mod http;
pub mod metrics;
pub mod service;
pub mod stub;

/// The kinds of resource the provider-service contract knows: the `{type}` of `/resource/{type}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    Pipeline,
    Run,
    RunSchedule,
    Experiment,
}

impl ResourceKind {
    /// Every kind, in the order of the contract.
    pub const ALL: [ResourceKind; 4] = [Self::Pipeline, Self::Run, Self::RunSchedule, Self::Experiment];

    /// The path segment: `pipeline`, `run`, `runschedule`, `experiment`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pipeline => "pipeline",
            Self::Run => "run",
            Self::RunSchedule => "runschedule",
            Self::Experiment => "experiment",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `{type}` that is not one of `pipeline`, `run`, `runschedule`, `experiment`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown resource type {0:?}; known types: pipeline, run, runschedule, experiment")]
pub struct UnknownResourceKind(pub String);

impl FromStr for ResourceKind {
    type Err = UnknownResourceKind;

    /// Exact, lower-case names only, as the Go service routes them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownResourceKind(s.to_string()))
    }
}

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
            "unknown resource type \"Pipeline\"; known types: pipeline, run, runschedule, experiment"
        );
    }

    #[test]
    fn default_registry_knows_stub_and_http() {
        let registry = default_registry();
        assert_eq!(registry.type_names().collect::<Vec<_>>(), ["http", "stub"]);
    }
}
