//! Prometheus metrics of the operator (served at `/metrics`), and JSON logging.
//!
//! ## Logging
//! [`init_logging`] installs a `tracing` subscriber writing one line per event to stderr, JSON by default (the
//! Go operator's zap JSON), or human-readable text. `RUST_LOG` (an `EnvFilter` directive such as
//! `info,kfp_operator=debug`) wins over the configured level. A JSON line is flat: `timestamp`, `level`,
//! `logger` (the module that logs), `message`, the fields of every enclosing span (outermost first), `span` (the
//! innermost span's name) and the event's own fields, e.g.
//!
//! ```text
//! {"timestamp":"2025-01-01T10:00:00.123456Z","level":"info","logger":"kfp_operator::controllers","kind":"Pipeline",
//!  "namespace":"ml","name":"training","reconciliation_id":"3f2a1c-17","span":"reconcile","message":"reconciled",
//!  "duration_ms":12}
//! ```
//!
//! A failure that repeats (the API server unreachable: every watch, reconcile and Lease poll fails) is logged once
//! per kind and [`FAILURE_LOG_INTERVAL`] ([`failure_log`]); the line names the kind in `failure` (e.g.
//! `watch/pipeline`, `reconcile/run/transport`, `leader/acquire`) and counts the repeats held back since the last
//! line in `suppressed`. kube-client's own error line per failed request is filtered out (see [`log_filter`]).
//!
//! Controllers wrap each reconcile in [`reconcile_span`] and record `duration_ms` on it (or on their last event).
//! Levels follow the Go operator's verbosity: `info` state transitions and errors, `debug` provider operations and
//! retrievals, `trace` object dumps.
//!
//! Metric names (all prefixed `kfp_operator_`; controller-runtime's names, unprefixed, are listed at [`StandardMetrics`]):
//! - `reconciliations_total{controller,result}`: reconciles by result (`success`, `error`);
//! - `reconcile_errors_total{controller,reason}`: failed reconciles by error reason;
//! - `reconcile_duration_seconds{controller}`: reconcile latency histogram;
//! - `resources{kind,state}`: objects per kind and synchronization state, as last reconciled;
//! - `executor_operations_total{kind,action,result}`: provider operations `submitted`, `succeeded`, `failed`;
//! - `provider_call_duration_seconds{kind,action,result}`: in-process provider call latency (direct executor);
//! - `run_completion_feed_requests_total{method,endpoint,code}`: requests to the run-completion feed by answer;
//! - `run_completion_events_total{source,result}`: events from the feed (`source="feed"`; `feed_unauthenticated`
//!   for those accepted without a token in migration mode) or from in-process event sources (`source="direct"`) by
//!   outcome (`recorded`, `gone`, `rejected`, `failed`);
//! - `run_completion_events_published_total{result}`: NATS publishes (`published`, `failed`).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

mod standard;

pub use standard::{Counted, RestClientMetrics, StandardMetrics};

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
    /// The run-completion feed's counters.
    pub feed: FeedMetrics,
    /// The controller-runtime names (unprefixed).
    pub standard: StandardMetrics,
    /// Last recorded state of each object, so the `resources` gauge moves an object between states.
    states: Mutex<HashMap<(String, String), String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, in a fresh registry.
    pub fn new() -> Self {
        let mut root = Registry::default();
        let standard = StandardMetrics::register(&mut root);
        let registry = root.sub_registry_with_prefix("kfp_operator");
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
        let feed = FeedMetrics::register(registry, standard.feed_requests.clone());
        Self {
            registry: root,
            feed,
            standard,
            reconciliations,
            reconcile_errors,
            reconcile_duration,
            resources,
            operations,
            provider_calls,
            states: Mutex::new(HashMap::new()),
        }
    }

    /// [`Metrics::new`] behind an `Arc`, to share between controllers, executor and feed.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::new())
    }

    /// Records that a reconcile of `controller` started (`controller_runtime_active_workers`).
    pub fn reconcile_started(&self, controller: &str) {
        self.standard.reconcile_started(controller);
    }

    /// Records one reconcile; `error_reason` is `None` on success. Pair with [`Metrics::reconcile_started`].
    pub fn reconciled(&self, controller: &str, duration: Duration, error_reason: Option<&str>) {
        self.standard
            .reconciled(controller, duration, error_reason.is_some());
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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedRequest {
    method: String,
    endpoint: String,
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceResult {
    source: String,
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

/// The run-completion feed's metrics (`crate::feed`), part of [`Metrics`].
#[derive(Debug, Clone)]
pub struct FeedMetrics {
    requests: Family<FeedRequest, Counter>,
    /// The same counts under the Go operator's unprefixed name.
    requests_alias: Family<FeedRequest, Counter>,
    events: Family<SourceResult, Counter>,
    published: Family<ResultLabel, Counter>,
}

impl FeedMetrics {
    fn register(registry: &mut Registry, requests_alias: Family<FeedRequest, Counter>) -> Self {
        let requests = Family::<FeedRequest, Counter>::default();
        registry.register(
            "run_completion_feed_requests",
            "Requests to the run-completion feed by method, endpoint and status code",
            requests.clone(),
        );
        let events = Family::<SourceResult, Counter>::default();
        registry.register(
            "run_completion_events",
            "Run-completion events by source (feed, direct) and outcome (recorded, gone, rejected, failed)",
            events.clone(),
        );
        let published = Family::<ResultLabel, Counter>::default();
        registry.register(
            "run_completion_events_published",
            "Run-completion events published to NATS by result (published, failed)",
            published.clone(),
        );
        Self {
            requests,
            requests_alias,
            events,
            published,
        }
    }

    /// Records one feed request and its answer.
    pub fn request(&self, method: &str, endpoint: &str, code: u16) {
        let labels = FeedRequest {
            method: method.to_string(),
            endpoint: endpoint.to_string(),
            code: code.to_string(),
        };
        self.requests.get_or_create(&labels).inc();
        self.requests_alias.get_or_create(&labels).inc();
    }

    /// Records what became of one event from `source` (`feed` or `direct`).
    pub fn event(&self, source: &str, result: &str) {
        self.events
            .get_or_create(&SourceResult {
                source: source.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    /// Records one NATS publish.
    pub fn published(&self, ok: bool) {
        let result = if ok { "published" } else { "failed" };
        self.published
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------------------------------------------

/// How log lines are written (`system.logging.format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogFormat {
    /// One flat JSON object per line (the default; what log collectors parse).
    #[default]
    Json,
    /// Human-readable text, for a terminal.
    Text,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Json => "json",
            LogFormat::Text => "text",
        })
    }
}

impl FromStr for LogFormat {
    type Err = LoggingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "text" => Ok(LogFormat::Text),
            _ => Err(LoggingError::Format(s.to_string())),
        }
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoggingError {
    /// `system.logging.format` is neither `json` nor `text`.
    #[error("unknown log format {0:?}: use json or text")]
    Format(String),
    /// `system.logging.level` is not a level, verbosity or filter.
    #[error(
        "invalid log level {level:?}: {message} (use error, warn, info, debug, trace, a verbosity 0-3, or directives such as info,kfp_operator=debug)"
    )]
    Level {
        /// The configured level.
        level: String,
        /// Why it is not valid.
        message: String,
    },
    /// `RUST_LOG` is not a valid filter.
    #[error("invalid RUST_LOG {value:?}: {message}")]
    RustLog {
        /// The variable's value.
        value: String,
        /// Why it is not valid.
        message: String,
    },
}

/// The target of kube-client's own line per failed request (see [`log_filter`]).
pub const KUBE_CLIENT_REQUEST_LOG: &str = "kube_client::client::builder";
/// The target of kube-client's warnings about broken watch connections and undecodable bodies (see
/// [`log_filter`]).
pub const KUBE_CLIENT_LOG: &str = "kube_client::client";

/// The filter of `level` (a level name, a Go verbosity `0`-`3`, or `EnvFilter` directives), unless `rust_log`
/// (the value of `RUST_LOG`) is set and not empty, which wins.
pub fn log_filter(level: &str, rust_log: Option<&str>) -> Result<EnvFilter, LoggingError> {
    if let Some(value) = rust_log.filter(|v| !v.trim().is_empty()) {
        return EnvFilter::try_new(value).map_err(|e| LoggingError::RustLog {
            value: value.to_string(),
            message: e.to_string(),
        });
    }
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let directives = match level.trim() {
        "" | "0" => "info",
        "1" | "2" => "debug",
        verbosity if verbosity.parse::<u8>().is_ok() => "trace",
        // A bare word would be read as a target name and let everything of that target through.
        word if !word.contains(['=', ',']) && !LEVELS.contains(&word.to_ascii_lowercase().as_str()) => {
            return Err(LoggingError::Level {
                level: level.to_string(),
                message: "not a level name".to_string(),
            });
        }
        directives => directives,
    };
    // kube-client logs an error line of its own for every failed request, and a warning for every watch
    // connection that breaks (and one echoing the whole body of a response it cannot decode), none saying what the
    // request was for: during an API server outage that is a line per connection attempt. The operator logs each
    // failure where it happens, with its context and throttled by kind (`failure_log`), so those lines are left
    // out unless directives (or `RUST_LOG`) ask for them.
    let directives = if directives.contains(['=', ',']) || directives.eq_ignore_ascii_case("off") {
        directives.to_string()
    } else {
        format!("{directives},{KUBE_CLIENT_LOG}=error,{KUBE_CLIENT_REQUEST_LOG}=off")
    };
    EnvFilter::try_new(&directives).map_err(|e| LoggingError::Level {
        level: level.to_string(),
        message: e.to_string(),
    })
}

/// A subscriber writing `format` lines of what `filter` lets through to `writer`; [`init_logging`] installs one
/// writing to stderr. Public so that embedding binaries and tests can direct it elsewhere.
pub fn log_subscriber<W>(format: LogFormat, filter: EnvFilter, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(
            builder
                .fmt_fields(JsonFields::new())
                .event_format(FlatJson)
                .finish(),
        ),
        LogFormat::Text => Box::new(builder.with_ansi(false).finish()),
    }
}

/// Installs the process-wide subscriber: `format` lines on stderr at `level`, `RUST_LOG` winning when set.
/// Idempotent: when a subscriber is already installed (a second call, a test harness), it is kept and this
/// returns `Ok`.
pub fn init_logging(format: LogFormat, level: &str) -> Result<(), LoggingError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = log_filter(level, rust_log.as_deref())?;
    // Err only when a global subscriber exists already, which is what idempotence asks for.
    let _ = tracing::subscriber::set_global_default(log_subscriber(format, filter, std::io::stderr));
    Ok(())
}

/// How often a line of one failure kind is logged while the failure repeats ([`failure_log`]).
pub const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Lets one log line per failure kind through per interval and counts the ones it holds back, so that a
/// failure repeating many times a second (an API server outage: every watch, reconcile and Lease poll fails)
/// logs a line per kind per interval, with the count of repeats (docs/reliability.md).
#[derive(Debug)]
pub struct LogThrottle {
    interval: Duration,
    kinds: Mutex<HashMap<String, (std::time::Instant, u64)>>,
}

impl LogThrottle {
    /// A throttle letting one line per kind through every `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            kinds: Mutex::default(),
        }
    }

    /// `Some(suppressed)` when a line of `kind` may be logged now, `suppressed` being how many lines of that kind
    /// were held back since the last one; `None` when this one is held back. `kind` names the failure (a fixed
    /// set of words, never user input), e.g. `watch/pipeline`.
    pub fn check(&self, kind: &str) -> Option<u64> {
        self.check_at(kind, std::time::Instant::now())
    }

    /// [`check`](Self::check) at the instant `now`.
    pub fn check_at(&self, kind: &str, now: std::time::Instant) -> Option<u64> {
        let mut kinds = self
            .kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match kinds.get_mut(kind) {
            Some((last, suppressed)) if now.saturating_duration_since(*last) < self.interval => {
                *suppressed = suppressed.saturating_add(1);
                None
            }
            Some((last, suppressed)) => {
                *last = now;
                Some(std::mem::take(suppressed))
            }
            None => {
                kinds.insert(kind.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

/// The process-wide [`LogThrottle`] of repeating failures, one line per kind per [`FAILURE_LOG_INTERVAL`].
pub fn failure_log() -> &'static LogThrottle {
    static THROTTLE: OnceLock<LogThrottle> = OnceLock::new();
    THROTTLE.get_or_init(|| LogThrottle::new(FAILURE_LOG_INTERVAL))
}

/// The span of one reconcile: `info_span!("reconcile", kind, namespace, name, reconciliation_id, duration_ms)`,
/// with a process-unique `reconciliation_id` and `duration_ms` empty for the caller to
/// `span.record("duration_ms", ms)`.
pub fn reconcile_span(kind: &str, namespace: &str, name: &str) -> tracing::Span {
    tracing::info_span!(
        "reconcile",
        kind = kind,
        namespace = namespace,
        name = name,
        reconciliation_id = %next_reconciliation_id(),
        duration_ms = tracing::field::Empty,
    )
}

/// `<process start, hex>-<counter, hex>`: unique within the process, and across restarts unless two processes
/// start in the same millisecond (modulo 2^24 ms, about 4.7 hours).
fn next_reconciliation_id() -> String {
    static START: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let start = *START.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    format!("{:06x}-{n:x}", start & 0xff_ffff)
}

/// The flat JSON line format (see the module documentation). Span fields are read from the JSON that
/// [`JsonFields`] stores on each span, so it is used with `fmt_fields(JsonFields::new())`.
struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        let mut timestamp = String::new();
        tracing_subscriber::fmt::time::SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.insert("timestamp".into(), Value::String(timestamp));
        let metadata = event.metadata();
        line.insert(
            "level".into(),
            Value::String(metadata.level().to_string().to_ascii_lowercase()),
        );
        // `logger`, as zap (the Go operator's logger) and the seed's example name it: the Rust module path.
        line.insert("logger".into(), Value::String(metadata.target().to_string()));
        if let Some(scope) = ctx.event_scope() {
            let mut innermost = None;
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields.as_str())
                {
                    line.extend(fields);
                }
                innermost = Some(span.name());
            }
            if let Some(name) = innermost {
                line.insert("span".into(), Value::String(name.to_string()));
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Records event fields into a JSON object.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.0.insert(field.name().into(), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.to_string()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().into(), Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `MakeWriter` into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;

        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    impl Buffer {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    #[test]
    fn json_lines_carry_the_reconcile_span_fields() {
        let buffer = Buffer::default();
        let subscriber = log_subscriber(LogFormat::Json, log_filter("info", None).unwrap(), buffer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = reconcile_span("Pipeline", "ml", "training");
            let _entered = span.enter();
            tracing::debug!("filtered out at info");
            span.record("duration_ms", 12_u64);
            tracing::info!(state = "Succeeded", "reconciled");
        });
        let lines = buffer.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(line["level"], "info", "{line}");
        assert_eq!(line["message"], "reconciled", "{line}");
        assert_eq!(line["span"], "reconcile", "{line}");
        assert_eq!(line["kind"], "Pipeline", "{line}");
        assert_eq!(line["namespace"], "ml", "{line}");
        assert_eq!(
            line["name"], "training",
            "the span field, not the span name: {line}"
        );
        assert_eq!(line["duration_ms"], 12, "{line}");
        assert_eq!(line["state"], "Succeeded", "{line}");
        assert!(
            line["reconciliation_id"]
                .as_str()
                .is_some_and(|id| id.contains('-')),
            "{line}"
        );
        assert!(
            line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
        assert_eq!(line["logger"], module_path!(), "{line}");
    }

    #[test]
    fn reconciliation_ids_are_unique() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| next_reconciliation_id()).collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn text_lines_are_readable() {
        let buffer = Buffer::default();
        let subscriber = log_subscriber(
            LogFormat::Text,
            log_filter("debug", None).unwrap(),
            buffer.clone(),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = reconcile_span("Run", "ml", "r1");
            let _entered = span.enter();
            tracing::debug!(action = "create", "submitted");
        });
        let lines = buffer.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("DEBUG"), "{}", lines[0]);
        assert!(
            lines[0].contains(r#"reconcile{kind="Run" namespace="ml" name="r1""#),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("submitted action=\"create\""), "{}", lines[0]);
    }

    #[test]
    fn levels_verbosities_and_rust_log() {
        let quiet = |level: &str| format!("{KUBE_CLIENT_REQUEST_LOG}=off,{KUBE_CLIENT_LOG}=error,{level}");
        assert_eq!(log_filter("0", None).unwrap().to_string(), quiet("info"));
        assert_eq!(log_filter("2", None).unwrap().to_string(), quiet("debug"));
        assert_eq!(log_filter("3", None).unwrap().to_string(), quiet("trace"));
        assert_eq!(log_filter("warn", Some("")).unwrap().to_string(), quiet("warn"));
        assert_eq!(
            log_filter("info,kube_client=debug", None).unwrap().to_string(),
            "kube_client=debug,info",
            "explicit directives are taken as written"
        );
        assert_eq!(
            log_filter("warn", Some("kfp_operator=trace"))
                .unwrap()
                .to_string(),
            "kfp_operator=trace"
        );
        let error = log_filter("loud", None).unwrap_err().to_string();
        assert!(error.contains("\"loud\""), "{error}");
        let error = log_filter("info", Some("kfp_operator=shouty"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("RUST_LOG"), "{error}");
        assert_eq!("JSON".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert!(
            "xml"
                .parse::<LogFormat>()
                .unwrap_err()
                .to_string()
                .contains("xml")
        );
    }

    #[test]
    fn kube_clients_line_per_failed_request_is_left_out() {
        let buffer = Buffer::default();
        let subscriber = log_subscriber(LogFormat::Json, log_filter("info", None).unwrap(), buffer.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "kube_client::client::builder", "failed with error connection refused");
            tracing::warn!(target: "kube_client::client", "eof in poll: a watch connection broke");
            tracing::error!(target: "kube_client::client", "other kube-client errors stay");
        });
        let lines = buffer.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("other kube-client errors stay"), "{lines:?}");
    }

    #[test]
    fn the_throttle_lets_one_line_per_kind_through_per_interval_and_counts_the_rest() {
        let throttle = LogThrottle::new(Duration::from_secs(30));
        let start = std::time::Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        assert_eq!(throttle.check_at("watch/pipeline", at(0)), Some(0));
        assert_eq!(throttle.check_at("watch/pipeline", at(1)), None);
        assert_eq!(throttle.check_at("watch/pipeline", at(29)), None);
        assert_eq!(
            throttle.check_at("watch/run", at(29)),
            Some(0),
            "kinds are counted apart"
        );
        assert_eq!(
            throttle.check_at("watch/pipeline", at(30)),
            Some(2),
            "the repeats held back"
        );
        assert_eq!(throttle.check_at("watch/pipeline", at(31)), None);
        assert_eq!(throttle.check_at("watch/pipeline", at(100)), Some(1));
        assert_eq!(throttle.check_at("watch/pipeline", at(101)), None);
    }

    #[test]
    fn init_logging_is_idempotent() {
        init_logging(LogFormat::Json, "error").unwrap();
        init_logging(LogFormat::Text, "error").unwrap();
        assert!(init_logging(LogFormat::Json, "loud").is_err() || std::env::var("RUST_LOG").is_ok());
    }

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
