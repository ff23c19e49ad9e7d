//! The provider service's configuration (docs/provider-service.md, "Configuration"): one typed struct read from the
//! environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PROVIDERNAME` | required | the Provider resource, `namespace/name` |
//! | `PIPELINEROOTSTORAGE` | empty | root for pipeline outputs |
//! | `PARAMETERS_<KEY>` | none | provider parameters (see [`ProviderConfig::from_env_vars`]) |
//! | `SERVER_HOST` | `0.0.0.0` | address the API listens on |
//! | `SERVER_PORT` | `8080` | port of the API and the probes |
//! | `METRICS_PORT` | `8081` | port of `/metrics` |
//! | `SERVER_MAXBODYBYTES` | `33554432` (32 MiB) | largest request body accepted (larger: 413) |
//! | `OPERATORWEBHOOK` | unset | URL the run-completion events are POSTed to; unset: events are not forwarded |
//! | `OPERATORWEBHOOK_TOKEN_FILE` | `/var/run/secrets/kfp-operator/token` | bearer token for the webhook, re-read on every send; absent file: no `Authorization` header |
//!
//! Keys are case-insensitive and `.` counts as `_`, as in the Go service (`server.port` = `SERVER_PORT`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use kfp_core::provider::{ProviderConfig, ProviderConfigError};

/// Where the projected ServiceAccount token (audience `kfp-operator`) is mounted by default
/// (docs/run-completion-events.md, "Authentication").
pub const DEFAULT_TOKEN_FILE: &str = "/var/run/secrets/kfp-operator/token";

/// Everything the provider service needs to start.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// The provider's own configuration: name, storage root, parameters.
    pub provider: ProviderConfig,
    /// The address the API and the probes listen on (`SERVER_HOST`, default `0.0.0.0`).
    pub server_host: IpAddr,
    /// The port of the API and the probes (`SERVER_PORT`, default 8080).
    pub server_port: u16,
    /// The port of `/metrics` (`METRICS_PORT`, default 8081), apart from the API so it can be scraped without
    /// reaching it.
    pub metrics_port: u16,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Where events go; `None`: the event source is not run.
    pub operator_webhook: Option<String>,
    /// The bearer token sent with every event (`OPERATORWEBHOOK_TOKEN_FILE`), read again on every send because
    /// kubelet rotates projected tokens.
    pub webhook_token_file: PathBuf,
    /// How failed event deliveries are retried (not read from the environment).
    pub webhook_retry: RetryPolicy,
}

/// Exponential backoff for event deliveries, jittered: `initial`, doubled after each failure up to `max`; after
/// `max_attempts` failed attempts the event is settled as failed and its source delivers it again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt.
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// Failed attempts after which the event goes back to its source, which delivers it again later.
    pub max_attempts: u32,
    /// Timeout of one POST.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_attempts: 10,
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th failed attempt (1-based): drawn within `[ceiling/2, ceiling]`, the ceiling
    /// `initial_backoff` doubled per failure up to `max_backoff`, so the provider services that failed to reach an
    /// operator together do not all retry at the same moment when it is back.
    pub fn backoff(&self, failures: u32) -> Duration {
        kfp_core::backoff::Backoff::new(self.initial_backoff, self.max_backoff).delay(failures)
    }
}

/// An environment that does not describe a provider service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceConfigError {
    /// The provider part of the environment (`PROVIDERNAME`, `PARAMETERS_*`) is not valid.
    #[error(transparent)]
    Provider(#[from] ProviderConfigError),
    /// A service variable has a value that cannot be used.
    #[error("{key} {value:?} is not valid: {reason}")]
    Invalid {
        /// The variable, e.g. `SERVER_PORT`.
        key: &'static str,
        /// Its value as given.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
}

impl ServiceConfig {
    /// A configuration with every default, for `provider`.
    pub fn new(provider: ProviderConfig) -> Self {
        Self {
            provider,
            server_host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            server_port: 8080,
            metrics_port: 8081,
            max_body_bytes: 32 * 1024 * 1024,
            operator_webhook: None,
            webhook_token_file: PathBuf::from(DEFAULT_TOKEN_FILE),
            webhook_retry: RetryPolicy::default(),
        }
    }

    /// Reads the configuration from `(key, value)` pairs (see the module docs). Pure: pass `std::env::vars()` or a
    /// test's own list.
    pub fn from_env_vars<I, K, V>(vars: I) -> Result<Self, ServiceConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
            .collect();
        let provider = ProviderConfig::from_env_vars(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        let mut config = Self::new(provider);
        for (key, value) in &vars {
            let normalized = key.replace('.', "_").to_ascii_uppercase();
            match normalized.as_str() {
                "SERVER_HOST" => {
                    config.server_host = value.trim().parse().map_err(|e: std::net::AddrParseError| {
                        ServiceConfigError::Invalid {
                            key: "SERVER_HOST",
                            value: value.clone(),
                            reason: format!("{e}; expected an IP address such as 0.0.0.0"),
                        }
                    })?;
                }
                "SERVER_PORT" => config.server_port = port("SERVER_PORT", value)?,
                "METRICS_PORT" => config.metrics_port = port("METRICS_PORT", value)?,
                "SERVER_MAXBODYBYTES" => {
                    config.max_body_bytes = value.trim().parse().map_err(|e: std::num::ParseIntError| {
                        ServiceConfigError::Invalid {
                            key: "SERVER_MAXBODYBYTES",
                            value: value.clone(),
                            reason: e.to_string(),
                        }
                    })?;
                }
                "OPERATORWEBHOOK" => {
                    let url = value.trim();
                    config.operator_webhook = if url.is_empty() {
                        None
                    } else if url.starts_with("http://") || url.starts_with("https://") {
                        Some(url.to_string())
                    } else {
                        return Err(ServiceConfigError::Invalid {
                            key: "OPERATORWEBHOOK",
                            value: value.clone(),
                            reason: "expected an http:// or https:// URL".into(),
                        });
                    };
                }
                "OPERATORWEBHOOK_TOKEN_FILE" if !value.trim().is_empty() => {
                    config.webhook_token_file = PathBuf::from(value.trim());
                }
                _ => {}
            }
        }
        Ok(config)
    }

    /// Reads the configuration from this process's environment.
    pub fn from_process_env() -> Result<Self, ServiceConfigError> {
        Self::from_env_vars(std::env::vars())
    }

    /// Where the API listens.
    pub fn server_addr(&self) -> SocketAddr {
        SocketAddr::new(self.server_host, self.server_port)
    }

    /// Where `/metrics` listens (same host, `METRICS_PORT`).
    pub fn metrics_addr(&self) -> SocketAddr {
        SocketAddr::new(self.server_host, self.metrics_port)
    }
}

fn port(key: &'static str, value: &str) -> Result<u16, ServiceConfigError> {
    value
        .trim()
        .parse()
        .map_err(|e: std::num::ParseIntError| ServiceConfigError::Invalid {
            key,
            value: value.to_string(),
            reason: format!("{e}; expected a port number 0-65535"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kfp_core::values::NamespacedName;
    use serde_json::json;

    #[test]
    fn defaults() {
        let config = ServiceConfig::from_env_vars([("PROVIDERNAME", "ops/stub")]).unwrap();
        assert_eq!(config.provider.name, NamespacedName::new("ops", "stub"));
        assert_eq!(config.server_addr().to_string(), "0.0.0.0:8080");
        assert_eq!(config.metrics_addr().to_string(), "0.0.0.0:8081");
        assert_eq!(config.operator_webhook, None);
        assert_eq!(config.webhook_token_file, PathBuf::from(DEFAULT_TOKEN_FILE));
        assert_eq!(config.max_body_bytes, 32 * 1024 * 1024);
    }

    #[test]
    fn every_key_is_read_case_insensitively() {
        let config = ServiceConfig::from_env_vars([
            ("providerName", "ops/kfp"),
            ("PIPELINEROOTSTORAGE", "gs://b"),
            ("parameters.kfpNamespace", "kubeflow"),
            ("server.host", "127.0.0.1"),
            ("SERVER_PORT", "9090"),
            ("metrics_port", "9091"),
            ("SERVER_MAXBODYBYTES", "1024"),
            ("OPERATORWEBHOOK", "http://op:80/events"),
            ("OPERATORWEBHOOK_TOKEN_FILE", "/tmp/token"),
        ])
        .unwrap();
        assert_eq!(config.server_addr().to_string(), "127.0.0.1:9090");
        assert_eq!(config.metrics_port, 9091);
        assert_eq!(config.max_body_bytes, 1024);
        assert_eq!(config.operator_webhook.as_deref(), Some("http://op:80/events"));
        assert_eq!(config.webhook_token_file, PathBuf::from("/tmp/token"));
        assert_eq!(config.provider.pipeline_root_storage, "gs://b");
        assert_eq!(
            config.provider.parameter("kfpNamespace"),
            Some(&json!("kubeflow"))
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            ("SERVER_PORT", "http", "SERVER_PORT \"http\" is not valid"),
            ("METRICS_PORT", "70000", "METRICS_PORT \"70000\" is not valid"),
            (
                "SERVER_HOST",
                "localhost",
                "SERVER_HOST \"localhost\" is not valid",
            ),
            (
                "OPERATORWEBHOOK",
                "op:80/events",
                "expected an http:// or https:// URL",
            ),
        ];
        for (key, value, expected) in cases {
            let err = ServiceConfig::from_env_vars([("PROVIDERNAME", "ops/p"), (key, value)])
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
        let none: [(&str, &str); 0] = [];
        assert!(
            ServiceConfig::from_env_vars(none)
                .unwrap_err()
                .to_string()
                .contains("PROVIDERNAME")
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_jittered_below_it() {
        let policy = RetryPolicy::default();
        for (failures, ceiling) in [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (9, 60), (u32::MAX, 60)] {
            let ceiling = Duration::from_secs(ceiling);
            let wait = policy.backoff(failures);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "{failures}: {wait:?} not in [{ceiling:?}/2, {ceiling:?}]"
            );
        }
    }
}
