//! The probe and metrics HTTP endpoints (docs/platform-guide.md, "Endpoints": probes on `system.healthAddress`,
//! `:8081`; metrics on `system.metricsAddress`, `:8080`).
//!
//! | request | answer |
//! |---|---|
//! | `GET /healthz` | 200 `ok` while the process serves requests (liveness) |
//! | `GET /readyz` | 200 `ok` when every registered readiness check passes, else 503 with one line per check that does not, `not ready: <name>` (readiness) |
//! | `GET /readyz?verbose` | the same status, and one line per check, reported ones included: `[+]<name> ok`, `[-]<name> not ok` |
//! | `GET /metrics` | 200, the OpenMetrics text of [`Metrics::encode`], content type [`CONTENT_TYPE`] |
//!
//! [`serve`] serves all three routes on one listener. The binary calls it once per distinct address: when
//! `system.healthAddress` and `system.metricsAddress` differ, it binds both and serves the same routes on each
//! (so `/metrics` also answers on the probe port, which is harmless), and when they are equal it binds once.
//!
//! Readiness is a set of named flags ([`Readiness::register`]), each owned by the part of the operator it
//! describes (for example `caches` once the informers have synced, `leader` while leader election is held, if
//! non-leaders should not be ready). No check registered: ready.
//!
//! A *reported* check ([`Readiness::register_reported`]) is listed by `/readyz?verbose` but never makes the
//! process unready: the NATS connection is one, because every replica shares NATS and an outage would otherwise
//! take all of them out of the webhook Service, refusing every change (docs/platform-guide.md#endpoints).

use std::collections::BTreeMap;
use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::telemetry::{CONTENT_TYPE, Metrics};

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HealthError {
    /// Serving failed.
    #[error("the health and metrics server on {address} failed: {source}")]
    Serve {
        /// The address served.
        address: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The operator's readiness: a cloneable handle to a set of named checks.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<BTreeMap<String, ReadinessFlag>>>,
}

/// One readiness check, not ready until [`set`](Self::set) to true. Cloneable; clones share the state.
#[derive(Debug, Clone)]
pub struct ReadinessFlag {
    name: Arc<str>,
    ready: Arc<AtomicBool>,
    /// False for a reported check, which `/readyz` lists (verbose) but does not wait for.
    gates: bool,
}

impl ReadinessFlag {
    /// Marks the check ready (`true`) or not.
    pub fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Whether the check is ready.
    pub fn is_set(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// The check's name, as `/readyz` reports it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Readiness {
    /// No checks yet: ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the check `name`, not ready at first. Registering a name again returns the same flag.
    pub fn register(&self, name: &str) -> ReadinessFlag {
        self.add(name, true)
    }

    /// Adds the reported check `name`, not ok at first: `/readyz?verbose` lists it and [`check`](Self::check)
    /// answers it, but the process stays ready while it fails. Registering a name again returns the same flag.
    pub fn register_reported(&self, name: &str) -> ReadinessFlag {
        self.add(name, false)
    }

    fn add(&self, name: &str, gates: bool) -> ReadinessFlag {
        let new_flag = || ReadinessFlag {
            name: Arc::from(name),
            ready: Arc::new(AtomicBool::new(false)),
            gates,
        };
        match self.checks.lock() {
            Ok(mut checks) => checks.entry(name.to_string()).or_insert_with(new_flag).clone(),
            // A thread panicked while holding the lock; a detached flag keeps the caller going, and
            // `not_ready_reasons` reports the broken state.
            Err(_) => new_flag(),
        }
    }

    /// True when every registered check is set.
    pub fn is_ready(&self) -> bool {
        self.not_ready_reasons().is_empty()
    }

    /// The names of the checks that are not set and make the process unready, in name order.
    pub fn not_ready_reasons(&self) -> Vec<String> {
        match self.checks.lock() {
            Ok(checks) => checks
                .values()
                .filter(|flag| flag.gates && !flag.is_set())
                .map(|flag| flag.name().to_string())
                .collect(),
            Err(_) => vec![POISONED.to_string()],
        }
    }

    /// Whether check `name` (gating or reported) is set; `None` when no such check is registered.
    pub fn check(&self, name: &str) -> Option<bool> {
        self.checks.lock().ok()?.get(name).map(ReadinessFlag::is_set)
    }

    /// Every check, reported ones included, as `(name, set)` in name order.
    pub fn checks(&self) -> Vec<(String, bool)> {
        match self.checks.lock() {
            Ok(checks) => checks
                .values()
                .map(|flag| (flag.name().to_string(), flag.is_set()))
                .collect(),
            Err(_) => vec![(POISONED.to_string(), false)],
        }
    }
}

const POISONED: &str = "readiness state (a thread panicked while updating it)";

#[derive(Clone)]
struct AppState {
    readiness: Readiness,
    metrics: Arc<Metrics>,
}

/// The router of `/healthz`, `/readyz` and `/metrics`.
pub fn router(readiness: Readiness, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(serve_metrics))
        .with_state(AppState { readiness, metrics })
}

/// Serves [`router`] on `listener` until `shutdown` completes (then finishes the requests in flight).
pub async fn serve(
    listener: TcpListener,
    readiness: Readiness,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HealthError> {
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "an unknown address".to_string());
    axum::serve(
        kfp_providers::service::edge::Listener::new(listener),
        router(readiness, metrics),
    )
    .with_graceful_shutdown(shutdown)
    .into_future()
    .await
    .map_err(|source| HealthError::Serve { address, source })
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let reasons = state.readiness.not_ready_reasons();
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // `?verbose` (as the Kubernetes API server's) lists every check, reported ones included, so a failing
    // reported check (NATS) is visible although the probe passes.
    if query.is_some_and(|q| q.split('&').any(|p| p == "verbose" || p.starts_with("verbose="))) {
        let body: String = state
            .readiness
            .checks()
            .iter()
            .map(|(name, ok)| match ok {
                true => format!("[+]{name} ok\n"),
                false => format!("[-]{name} not ok\n"),
            })
            .collect();
        let verdict = if status == StatusCode::OK {
            "ok"
        } else {
            "not ready"
        };
        return (status, format!("{body}readyz: {verdict}\n")).into_response();
    }
    if reasons.is_empty() {
        return (StatusCode::OK, "ok").into_response();
    }
    let body: String = reasons
        .iter()
        .map(|name| format!("not ready: {name}\n"))
        .collect();
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}

async fn serve_metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        state.metrics.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_every_flag() {
        let readiness = Readiness::new();
        assert!(readiness.is_ready(), "no checks: ready");
        let caches = readiness.register("caches");
        let leader = readiness.clone().register("leader");
        assert_eq!(readiness.not_ready_reasons(), vec!["caches", "leader"]);
        caches.set(true);
        assert_eq!(readiness.not_ready_reasons(), vec!["leader"]);
        readiness.register("leader").set(true);
        assert!(leader.is_set(), "registering a name again gives the same flag");
        assert!(readiness.is_ready());
        caches.set(false);
        assert!(!readiness.is_ready());
    }

    #[test]
    fn a_reported_check_never_makes_the_process_unready() {
        let readiness = Readiness::new();
        let nats = readiness.register_reported("nats connection");
        assert!(
            readiness.is_ready(),
            "a failing reported check leaves the process ready"
        );
        assert_eq!(readiness.check("nats connection"), Some(false));
        assert_eq!(readiness.checks(), vec![("nats connection".to_string(), false)]);
        nats.set(true);
        assert_eq!(readiness.check("nats connection"), Some(true));
        assert_eq!(readiness.check("missing"), None);
    }
}
