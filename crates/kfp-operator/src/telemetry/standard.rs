//! The metric names operators built on controller-runtime expose (unprefixed), so the dashboards and alerts platform
//! teams already have for operators work on this one too (issue 19). Beside the project's own `kfp_operator_*`.
//!
//! | metric | labels | here |
//! |---|---|---|
//! | `controller_runtime_reconcile_total` | `controller`, `result` (`success`, `error`) | every reconcile |
//! | `controller_runtime_reconcile_errors_total` | `controller` | failed reconciles |
//! | `controller_runtime_reconcile_time_seconds` | `controller` | reconcile latency histogram |
//! | `controller_runtime_active_workers` | `controller` | reconciles in flight |
//! | `workqueue_adds_total` | `name` (the controller) | items taken off the queue: kube-rs merges triggers for one object while it waits, as a workqueue does, and does not count the merged ones |
//! | `workqueue_retries_total` | `name` | reconciles that failed and were requeued with backoff |
//! | `workqueue_work_duration_seconds` | `name` | time processing an item (the reconcile) |
//! | `rest_client_requests_total` | `code`, `method`, `host` | every request to the API server (`code` `<error>` when none answered) |
//! | `leader_election_master_status` | `name` (the Lease) | 1 while this replica leads, 0 otherwise (only with leader election) |
//! | `run_completion_feed_requests_total` | `method`, `endpoint`, `code` | the Go operator's name of `kfp_operator_run_completion_feed_requests_total` |
//!
//! Not exposed: `workqueue_depth`, `workqueue_queue_duration_seconds`, `workqueue_unfinished_work_seconds` and
//! `workqueue_longest_running_processor_seconds`: kube-rs's scheduler does not show its queue, and a made-up value
//! would mislead an alert.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{ControllerLabel, ControllerResult, FeedRequest, Histograms, Metrics, latency_histogram};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueName {
    name: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RestRequest {
    code: String,
    method: String,
    host: String,
}

/// The controller-runtime metrics, registered unprefixed; part of [`Metrics`]. The names, as in the module docs:
/// `controller_runtime_reconcile_total`, `controller_runtime_reconcile_errors_total`,
/// `controller_runtime_reconcile_time_seconds`, `controller_runtime_active_workers`, `workqueue_adds_total`,
/// `workqueue_retries_total`, `workqueue_work_duration_seconds`, `rest_client_requests_total`,
/// `leader_election_master_status`, and the Go operator's `run_completion_feed_requests_total`
/// (docs/platform-guide.md, "Operator metrics").
#[derive(Debug, Clone)]
pub struct StandardMetrics {
    reconcile_total: Family<ControllerResult, Counter>,
    reconcile_errors: Family<ControllerLabel, Counter>,
    reconcile_time: Histograms<ControllerLabel>,
    active_workers: Family<ControllerLabel, Gauge>,
    queue_adds: Family<QueueName, Counter>,
    queue_retries: Family<QueueName, Counter>,
    queue_work: Histograms<QueueName>,
    rest_requests: Family<RestRequest, Counter>,
    leader: Family<QueueName, Gauge>,
    pub(super) feed_requests: Family<FeedRequest, Counter>,
}

impl StandardMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconcile_total: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_time: Family::new_with_constructor(latency_histogram),
            active_workers: Family::default(),
            queue_adds: Family::default(),
            queue_retries: Family::default(),
            queue_work: Family::new_with_constructor(latency_histogram),
            rest_requests: Family::default(),
            leader: Family::default(),
            feed_requests: Family::default(),
        };
        let m = metrics.clone();
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            m.reconcile_total,
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            m.reconcile_errors,
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            m.reconcile_time,
        );
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            m.active_workers,
        );
        registry.register(
            "workqueue_adds",
            "Total number of adds handled by workqueue",
            m.queue_adds,
        );
        registry.register(
            "workqueue_retries",
            "Total number of retries handled by workqueue",
            m.queue_retries,
        );
        registry.register(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            m.queue_work,
        );
        registry.register(
            "rest_client_requests",
            "Number of HTTP requests, partitioned by status code, method, and host",
            m.rest_requests,
        );
        registry.register(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master",
            m.leader,
        );
        registry.register(
            "run_completion_feed_requests",
            "Requests to the run-completion feed (the Go operator's name)",
            m.feed_requests,
        );
        metrics
    }

    pub(super) fn reconcile_started(&self, controller: &str) {
        self.active_workers.get_or_create(&label(controller)).inc();
        // Present at 0 before the first error, as controller-runtime initialises them, so `rate()` and absence
        // alerts work from the start.
        drop(self.reconcile_errors.get_or_create(&label(controller)));
        drop(self.queue_retries.get_or_create(&QueueName {
            name: controller.to_string(),
        }));
    }

    pub(super) fn reconciled(&self, controller: &str, duration: Duration, failed: bool) {
        let result = if failed { "error" } else { "success" };
        self.reconcile_total
            .get_or_create(&ControllerResult {
                controller: controller.to_string(),
                result: result.to_string(),
            })
            .inc();
        self.reconcile_time
            .get_or_create(&label(controller))
            .observe(duration.as_secs_f64());
        self.active_workers.get_or_create(&label(controller)).dec();
        let queue = QueueName {
            name: controller.to_string(),
        };
        self.queue_adds.get_or_create(&queue).inc();
        self.queue_work
            .get_or_create(&queue)
            .observe(duration.as_secs_f64());
        if failed {
            self.reconcile_errors.get_or_create(&label(controller)).inc();
            self.queue_retries.get_or_create(&queue).inc();
        }
    }

    /// Records whether this replica holds the Lease `name`.
    pub fn leading(&self, name: &str, leading: bool) {
        self.leader
            .get_or_create(&QueueName {
                name: name.to_string(),
            })
            .set(i64::from(leading));
    }

    /// Counts one request to the API server (what [`RestClientMetrics`] does for each).
    pub fn rest_request(&self, code: &str, method: &str, host: &str) {
        self.rest_requests
            .get_or_create(&RestRequest {
                code: code.to_string(),
                method: method.to_string(),
                host: host.to_string(),
            })
            .inc();
    }
}

fn label(controller: &str) -> ControllerLabel {
    ControllerLabel {
        controller: controller.to_string(),
    }
}

/// A `tower` layer for the kube client that counts every request in `rest_client_requests_total`, labelled with
/// `host` (the API server's `host:port`, as client-go labels it).
#[derive(Clone)]
pub struct RestClientMetrics {
    metrics: Arc<Metrics>,
    host: Arc<str>,
}

impl RestClientMetrics {
    /// The layer for a client of the API server at `host` (`host:port`).
    pub fn new(metrics: Arc<Metrics>, host: &str) -> Self {
        Self {
            metrics,
            host: host.into(),
        }
    }
}

impl<S> tower::Layer<S> for RestClientMetrics {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Counted {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`RestClientMetrics`].
#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    layer: RestClientMetrics,
}

impl<S, B, R> tower::Service<axum::http::Request<B>> for Counted<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let method = request.method().as_str().to_string();
        let layer = self.layer.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            let code = match &result {
                Ok(response) => response.status().as_str().to_string(),
                Err(_) => "<error>".to_string(),
            };
            layer.metrics.standard.rest_request(&code, &method, &layer.host);
            result
        })
    }
}
