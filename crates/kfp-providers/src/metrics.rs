//! Prometheus metrics of the provider service (docs/provider-service.md, "Metrics"), served on `METRICS_PORT` at
//! `/metrics`.
//!
//! - `http_server_requests_total{route,method,code}`: requests answered; `route` is `resource/<type>` for the
//!   resource API (as the Go service's otelhttp route), `livez`/`readyz` for probes, `unmatched` otherwise.
//! - `http_server_request_duration_seconds{route,method,code}`: latency histogram.
//! - `provider_webhook_send_events_count_total{result}`: event deliveries to the operator by result
//!   (`Success`, `RecoverableFailure`, `UnrecoverableFailure`, `Discarded`); the counter is named
//!   `provider_webhook_send_events_count` and, like every Prometheus counter, exposed with the `_total` suffix
//!   (as the Go service's OpenTelemetry exporter does).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of [`ServiceMetrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The labels of the HTTP metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// `resource/<type>` for the resource API, `livez`/`readyz` for probes, `unmatched` otherwise.
    pub route: String,
    /// The HTTP method.
    pub method: String,
    /// The status code answered.
    pub code: String,
}

/// The result of one attempt to send an event to the operator (docs/provider-service.md, "Events").
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum WebhookResult {
    /// The operator answered 2xx.
    Success,
    /// Another status or a transport error: the event is retried.
    RecoverableFailure,
    /// 410: the operator will never accept the event; it is dropped.
    UnrecoverableFailure,
    /// The event could not be encoded, or was abandoned at shutdown before it could be sent.
    Discarded,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    result: WebhookResult,
}

type HistogramFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The metrics of one provider service; cheap to share (`Arc`).
#[derive(Debug)]
pub struct ServiceMetrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    durations: HistogramFamily,
    webhook: Family<WebhookLabels, Counter>,
}

impl ServiceMetrics {
    /// An empty set of metrics with its registry.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let requests = Family::<HttpLabels, Counter>::default();
        let durations: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let webhook = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "http_server_requests",
            "HTTP requests answered by the provider service",
            requests.clone(),
        );
        registry.register(
            "http_server_request_duration_seconds",
            "Time to answer an HTTP request",
            durations.clone(),
        );
        registry.register(
            "provider_webhook_send_events_count",
            "Attempts to send a run-completion event to the operator, by result",
            webhook.clone(),
        );
        Arc::new(Self {
            registry,
            requests,
            durations,
            webhook,
        })
    }

    /// Records one answered request.
    pub fn observe_request(&self, route: &str, method: &str, code: u16, elapsed: Duration) {
        let labels = HttpLabels {
            route: route.to_string(),
            method: method.to_string(),
            code: code.to_string(),
        };
        self.requests.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Records one event delivery attempt.
    pub fn observe_webhook(&self, result: WebhookResult) {
        self.webhook.get_or_create(&WebhookLabels { result }).inc();
    }

    /// How many delivery attempts ended with `result` so far.
    pub fn webhook_count(&self, result: WebhookResult) -> u64 {
        self.webhook.get_or_create(&WebhookLabels { result }).get()
    }

    /// The metrics in the OpenMetrics text format (which Prometheus scrapes).
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
    fn encodes_requests_and_webhook_results() {
        let metrics = ServiceMetrics::new();
        metrics.observe_request("resource/run", "POST", 201, Duration::from_millis(3));
        metrics.observe_webhook(WebhookResult::RecoverableFailure);
        metrics.observe_webhook(WebhookResult::Success);
        let text = metrics.encode();
        assert!(
            text.contains(r#"http_server_requests_total{route="resource/run",method="POST",code="201"} 1"#),
            "{text}"
        );
        assert!(text.contains(
            r#"http_server_request_duration_seconds_count{route="resource/run",method="POST",code="201"} 1"#
        ));
        assert!(text.contains(r#"provider_webhook_send_events_count_total{result="RecoverableFailure"} 1"#));
        assert!(text.contains(r#"provider_webhook_send_events_count_total{result="Success"} 1"#));
        assert_eq!(metrics.webhook_count(WebhookResult::Success), 1);
    }
}
