//! Prometheus metrics of the operator (served at `/metrics`), and JSON logging.
//!
//! Metric names (all prefixed `kfp_operator_`):
//! - `reconciliations_total{controller,result}`: reconciles by result (`success`, `error`);
//! - `reconcile_errors_total{controller,reason}`: failed reconciles by error reason;
//! - `reconcile_duration_seconds{controller}`: reconcile latency histogram;
//! - `resources{kind,state}`: objects per kind and synchronization state, as last reconciled;
//! - `executor_operations_total{kind,action,result}`: provider operations `submitted`, `succeeded`, `failed`;
//! - `provider_call_duration_seconds{kind,action,result}`: in-process provider call latency (direct executor).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerResult {
    controller: String,
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerReason {
    controller: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabel {
    controller: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindState {
    kind: String,
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Operation {
    kind: String,
    action: String,
    result: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The operator's metrics; share it as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciliations: Family<ControllerResult, Counter>,
    reconcile_errors: Family<ControllerReason, Counter>,
    reconcile_duration: Histograms<ControllerLabel>,
    resources: Family<KindState, Gauge>,
    operations: Family<Operation, Counter>,
    provider_calls: Histograms<Operation>,
    /// Last recorded state of each object, so the `resources` gauge moves an object between states.
    states: Mutex<HashMap<(String, String), String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kfp_operator");
        let reconciliations = Family::<ControllerResult, Counter>::default();
        registry.register(
            "reconciliations",
            "Reconciles by controller and result",
            reconciliations.clone(),
        );
        let reconcile_errors = Family::<ControllerReason, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciles by controller and error reason",
            reconcile_errors.clone(),
        );
        let reconcile_duration: Histograms<ControllerLabel> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile latency by controller",
            reconcile_duration.clone(),
        );
        let resources = Family::<KindState, Gauge>::default();
        registry.register(
            "resources",
            "Objects per kind and synchronization state, as last reconciled",
            resources.clone(),
        );
        let operations = Family::<Operation, Counter>::default();
        registry.register(
            "executor_operations",
            "Provider operations by kind, action and result (submitted, succeeded, failed)",
            operations.clone(),
        );
        let provider_calls: Histograms<Operation> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "provider_call_duration_seconds",
            "In-process provider call latency by kind, action and result",
            provider_calls.clone(),
        );
        Self {
            registry,
            reconciliations,
            reconcile_errors,
            reconcile_duration,
            resources,
            operations,
            provider_calls,
            states: Mutex::new(HashMap::new()),
        }
    }

    pub fn shared() -> Arc<Self> {
        Arc::new(Self::new())
    }

    /// Records one reconcile; `error_reason` is `None` on success.
    pub fn reconciled(&self, controller: &str, duration: Duration, error_reason: Option<&str>) {
        let result = if error_reason.is_some() {
            "error"
        } else {
            "success"
        };
        self.reconciliations
            .get_or_create(&ControllerResult {
                controller: controller.to_string(),
                result: result.to_string(),
            })
            .inc();
        if let Some(reason) = error_reason {
            self.reconcile_errors
                .get_or_create(&ControllerReason {
                    controller: controller.to_string(),
                    reason: reason.to_string(),
                })
                .inc();
        }
        self.reconcile_duration
            .get_or_create(&ControllerLabel {
                controller: controller.to_string(),
            })
            .observe(duration.as_secs_f64());
    }

    /// Records the synchronization state of an object (`state` `None`: the object is gone).
    pub fn resource_state(&self, kind: &str, key: &str, state: Option<&str>) {
        let Ok(mut states) = self.states.lock() else {
            return;
        };
        let id = (kind.to_string(), key.to_string());
        let previous = match state {
            Some(state) => states.insert(id, state.to_string()),
            None => states.remove(&id),
        };
        if previous.as_deref() == state {
            return;
        }
        if let Some(previous) = previous {
            self.resources
                .get_or_create(&KindState {
                    kind: kind.to_string(),
                    state: previous,
                })
                .dec();
        }
        if let Some(state) = state {
            self.resources
                .get_or_create(&KindState {
                    kind: kind.to_string(),
                    state: state.to_string(),
                })
                .inc();
        }
    }

    /// Records a provider operation event: `result` is `submitted`, `succeeded` or `failed`.
    pub fn operation(&self, kind: &str, action: &str, result: &str) {
        self.operations
            .get_or_create(&Operation {
                kind: kind.to_string(),
                action: action.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    /// Records the latency of one in-process provider call.
    pub fn provider_call(&self, kind: &str, action: &str, result: &str, duration: Duration) {
        self.provider_calls
            .get_or_create(&Operation {
                kind: kind.to_string(),
                action: action.to_string(),
                result: result.to_string(),
            })
            .observe(duration.as_secs_f64());
    }

    /// The OpenMetrics text of all metrics.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_gauge_moves_objects_between_states() {
        let metrics = Metrics::new();
        metrics.resource_state("pipeline", "default/a", Some("Creating"));
        metrics.resource_state("pipeline", "default/b", Some("Creating"));
        metrics.resource_state("pipeline", "default/a", Some("Succeeded"));
        metrics.resource_state("pipeline", "default/b", None);
        let text = metrics.encode();
        assert!(
            text.contains(r#"kfp_operator_resources{kind="pipeline",state="Succeeded"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"kfp_operator_resources{kind="pipeline",state="Creating"} 0"#),
            "{text}"
        );
    }

    #[test]
    fn reconciles_count_by_result_and_reason() {
        let metrics = Metrics::new();
        metrics.reconciled("run", Duration::from_millis(3), None);
        metrics.reconciled("run", Duration::from_millis(3), Some("kube"));
        let text = metrics.encode();
        assert!(text.contains(r#"kfp_operator_reconciliations_total{controller="run",result="error"} 1"#));
        assert!(text.contains(r#"kfp_operator_reconcile_errors_total{controller="run",reason="kube"} 1"#));
        assert!(text.contains("kfp_operator_reconcile_duration_seconds_count{controller=\"run\"} 2"));
    }
}
