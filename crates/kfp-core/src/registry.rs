//! The provider registry: provider type names (`kfp`, `vai`, `http`, `stub`, or your own) to factories.
//!
//! A binary that serves or embeds providers builds one registry, registers every type it knows, and builds the
//! configured one:
//!
//! ```
//! use std::sync::Arc;
//! use kfp_core::provider::{Provider, ProviderConfig, ProviderError};
//! use kfp_core::registry::ProviderRegistry;
//! # fn my_provider(_: &ProviderConfig) -> Result<Arc<dyn Provider>, ProviderError> {
//! #     Err(ProviderError::unimplemented("example"))
//! # }
//!
//! let mut registry = ProviderRegistry::new();
//! registry.register("mine", my_provider)?;
//! assert!(registry.contains("MINE"));
//! # Ok::<(), kfp_core::registry::RegistryError>(())
//! ```
//!
//! Type names compare case-insensitively (as framework names do, decision 0007).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::provider::{EventSource, Provider, ProviderConfig, ProviderError};

/// Builds a provider from its configuration.
pub type ProviderFactory =
    Arc<dyn Fn(&ProviderConfig) -> Result<Arc<dyn Provider>, ProviderError> + Send + Sync>;

/// Builds the event source of a provider from its configuration.
pub type EventSourceFactory =
    Arc<dyn Fn(&ProviderConfig) -> Result<Box<dyn EventSource>, ProviderError> + Send + Sync>;

/// A registration or lookup that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The type name is taken (names compare case-insensitively).
    #[error("provider type {type_name:?} is already registered")]
    Duplicate {
        /// The type name as first registered.
        type_name: String,
    },
    /// The type name is empty.
    #[error("a provider type name must not be empty")]
    EmptyName,
    /// No provider type of that name.
    #[error("unknown provider type {type_name:?}; known types: {}", known_list(.known))]
    Unknown {
        /// The type asked for.
        type_name: String,
        /// The registered types.
        known: Vec<String>,
    },
    /// The type has no event source.
    #[error("provider type {type_name:?} has no event source")]
    NoEventSource {
        /// The type.
        type_name: String,
    },
    /// The factory failed.
    #[error("cannot build provider type {type_name:?}: {source}")]
    Build {
        /// The type.
        type_name: String,
        /// Why.
        source: ProviderError,
    },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    }
}

#[derive(Clone)]
struct Entry {
    type_name: String,
    provider: ProviderFactory,
    event_source: Option<EventSourceFactory>,
}

/// Provider type names to factories.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    entries: BTreeMap<String, Entry>,
}

impl fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderRegistry")
            .field("types", &self.type_names().collect::<Vec<_>>())
            .finish()
    }
}

impl ProviderRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a provider type without an event source. Fails if the name is empty or already taken.
    pub fn register<F>(
        &mut self,
        type_name: impl Into<String>,
        factory: F,
    ) -> Result<&mut Self, RegistryError>
    where
        F: Fn(&ProviderConfig) -> Result<Arc<dyn Provider>, ProviderError> + Send + Sync + 'static,
    {
        self.insert(type_name.into(), Arc::new(factory), None)
    }

    /// Registers a provider type with the factory of its event source.
    pub fn register_with_events<F, E>(
        &mut self,
        type_name: impl Into<String>,
        factory: F,
        event_source: E,
    ) -> Result<&mut Self, RegistryError>
    where
        F: Fn(&ProviderConfig) -> Result<Arc<dyn Provider>, ProviderError> + Send + Sync + 'static,
        E: Fn(&ProviderConfig) -> Result<Box<dyn EventSource>, ProviderError> + Send + Sync + 'static,
    {
        self.insert(type_name.into(), Arc::new(factory), Some(Arc::new(event_source)))
    }

    fn insert(
        &mut self,
        type_name: String,
        provider: ProviderFactory,
        event_source: Option<EventSourceFactory>,
    ) -> Result<&mut Self, RegistryError> {
        let key = type_name.trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err(RegistryError::EmptyName);
        }
        if let Some(existing) = self.entries.get(&key) {
            return Err(RegistryError::Duplicate {
                type_name: existing.type_name.clone(),
            });
        }
        self.entries.insert(
            key,
            Entry {
                type_name: type_name.trim().to_string(),
                provider,
                event_source,
            },
        );
        Ok(self)
    }

    /// Whether `type_name` is registered (ignoring case).
    pub fn contains(&self, type_name: &str) -> bool {
        self.entries.contains_key(&type_name.trim().to_ascii_lowercase())
    }

    /// The registered type names, sorted.
    pub fn type_names(&self) -> impl Iterator<Item = &str> {
        self.entries.values().map(|e| e.type_name.as_str())
    }

    fn entry(&self, type_name: &str) -> Result<&Entry, RegistryError> {
        self.entries
            .get(&type_name.trim().to_ascii_lowercase())
            .ok_or_else(|| RegistryError::Unknown {
                type_name: type_name.to_string(),
                known: self.type_names().map(str::to_string).collect(),
            })
    }

    /// Builds a provider of `type_name`. Fails with the known names if the type is not registered, or with the
    /// factory's error.
    pub fn build(
        &self,
        type_name: &str,
        config: &ProviderConfig,
    ) -> Result<Arc<dyn Provider>, RegistryError> {
        let entry = self.entry(type_name)?;
        (entry.provider)(config).map_err(|source| RegistryError::Build {
            type_name: entry.type_name.clone(),
            source,
        })
    }

    /// Builds the event source of `type_name`; [`RegistryError::NoEventSource`] if it registered none.
    pub fn build_event_source(
        &self,
        type_name: &str,
        config: &ProviderConfig,
    ) -> Result<Box<dyn EventSource>, RegistryError> {
        let entry = self.entry(type_name)?;
        let factory = entry
            .event_source
            .as_ref()
            .ok_or_else(|| RegistryError::NoEventSource {
                type_name: entry.type_name.clone(),
            })?;
        factory(config).map_err(|source| RegistryError::Build {
            type_name: entry.type_name.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{MockEventSource, MockProvider};
    use crate::values::NamespacedName;

    fn mock(_: &ProviderConfig) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(MockProvider::new()))
    }

    fn config() -> ProviderConfig {
        ProviderConfig::new(NamespacedName::new("ops", "p"))
    }

    #[test]
    fn duplicate_names_are_refused() {
        let mut registry = ProviderRegistry::new();
        registry
            .register("kfp", mock)
            .unwrap()
            .register("stub", mock)
            .unwrap();
        let err = registry.register("KFP", mock).unwrap_err();
        assert_eq!(
            err,
            RegistryError::Duplicate {
                type_name: "kfp".into()
            }
        );
        assert_eq!(err.to_string(), "provider type \"kfp\" is already registered");
        assert_eq!(
            registry.register(" ", mock).unwrap_err(),
            RegistryError::EmptyName
        );
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let mut registry = ProviderRegistry::new();
        assert_eq!(
            registry
                .build("kfp", &config())
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("unknown provider type \"kfp\"; known types: none")
        );
        registry
            .register("vai", mock)
            .unwrap()
            .register("kfp", mock)
            .unwrap()
            .register("stub", mock)
            .unwrap();
        let err = registry.build("argo", &config()).err().unwrap();
        assert_eq!(
            err.to_string(),
            "unknown provider type \"argo\"; known types: kfp, stub, vai"
        );
        assert!(registry.build("Kfp", &config()).is_ok());
        assert_eq!(registry.type_names().collect::<Vec<_>>(), ["kfp", "stub", "vai"]);
    }

    #[test]
    fn factory_errors_and_event_sources() {
        let mut registry = ProviderRegistry::new();
        registry
            .register("broken", |c: &ProviderConfig| {
                Err(ProviderError::invalid(format!("{} lacks vaiProject", c.name)))
            })
            .unwrap();
        registry
            .register_with_events("evented", mock, |_: &ProviderConfig| {
                Ok(Box::new(MockEventSource::new()) as Box<dyn EventSource>)
            })
            .unwrap();
        let err = registry.build("broken", &config()).err().unwrap();
        assert_eq!(
            err.to_string(),
            "cannot build provider type \"broken\": ops/p lacks vaiProject"
        );
        assert!(registry.build_event_source("evented", &config()).is_ok());
        let err = registry.build_event_source("broken", &config()).err().unwrap();
        assert_eq!(err.to_string(), "provider type \"broken\" has no event source");
        assert!(format!("{registry:?}").contains("broken"));
    }
}
