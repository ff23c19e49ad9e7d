//! The provider interface: what a machine-learning backend (Kubeflow Pipelines, Vertex AI, your own) implements so
//! the operator can drive it (docs/provider-author-guide.md), and how it reports finished runs
//! (docs/run-completion-events.md).
//!
//! A provider author implements [`Provider`] (and usually [`EventSource`]), registers a factory in a
//! [`crate::registry::ProviderRegistry`], and serves it with the provider-service HTTP server of `kfp-providers`,
//! or embeds it in the operator with the direct executor. Everything here is runtime-agnostic: no IO, no clock.
//!
//! # Errors
//! Every operation fails with a [`ProviderError`] whose class decides what the operator does next
//! (docs/reliability.md, "Which failures are retried"):
//!
//! | class | meaning | operator reaction | provider-service HTTP status |
//! |---|---|---|---|
//! | [`ProviderError::Invalid`] | the request can never succeed as written (bad definition, rejected by the backend) | `Failed`, waits for a spec change | 400 |
//! | [`ProviderError::NotFound`] | the backend has no such object | retried with backoff; a delete treats it as done | 404 |
//! | [`ProviderError::Unimplemented`] | this provider does not support the operation | `Failed`, waits for a spec change | 501 |
//! | [`ProviderError::Transient`] | backend 5xx, transport error, timeout, anything else | retried with backoff | 500 |
//!
//! The Go provider services answer 400/501/500 only (docs/provider-service.md, "Status codes"); 404 is this project's
//! addition and reads as a failure to any client that only knows those three.

use std::sync::Arc;

use crate::definitions::{
    ExperimentDefinition, PipelineDefinitionWrapper, RunDefinition, RunScheduleDefinition,
};
use crate::event::RunCompletionEventData;
use crate::executor::ResourceKind;
use crate::values::{JsonMap, NamespacedName};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Why a provider operation failed; the variant is the class that decides retries (see the module docs).
///
/// Messages are shown to users in the resource's `Synchronized` condition: write complete sentences that name the
/// object and the backend's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The request is invalid and will fail the same way until the resource changes (HTTP 400/422).
    #[error("{0}")]
    Invalid(String),
    /// The backend object the request refers to does not exist (HTTP 404/410).
    #[error("{0}")]
    NotFound(String),
    /// The provider does not implement this operation (HTTP 501).
    #[error("{0}")]
    Unimplemented(String),
    /// Anything that may succeed if tried again: backend 5xx, transport errors, timeouts (HTTP 5xx and the rest).
    #[error("{0}")]
    Transient(String),
}

impl ProviderError {
    /// A [`ProviderError::Invalid`] with `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    /// A [`ProviderError::NotFound`] with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    /// A [`ProviderError::Unimplemented`] with `message`.
    pub fn unimplemented(message: impl Into<String>) -> Self {
        Self::Unimplemented(message.into())
    }

    /// A [`ProviderError::Transient`] with `message`.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient(message.into())
    }

    /// The message, whatever the class.
    pub fn message(&self) -> &str {
        match self {
            Self::Invalid(m) | Self::NotFound(m) | Self::Unimplemented(m) | Self::Transient(m) => m,
        }
    }

    /// True when retrying the same request cannot help (`Invalid`, `Unimplemented`): the resource stays `Failed`
    /// until its spec changes. `NotFound` and `Transient` are retried with backoff.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Invalid(_) | Self::Unimplemented(_))
    }

    /// True for `NotFound`: a delete that gets it has nothing left to do.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    /// The status code the provider service answers with: `Invalid` 400, `NotFound` 404, `Unimplemented` 501,
    /// `Transient` 500.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Invalid(_) => 400,
            Self::NotFound(_) => 404,
            Self::Unimplemented(_) => 501,
            Self::Transient(_) => 500,
        }
    }

    /// Classifies a provider service's (or a backend's) non-success HTTP answer: 400 and 422 are `Invalid`, 404 and
    /// 410 `NotFound`, 501 `Unimplemented`, everything else (5xx, 401/403/408/409/429, unexpected codes)
    /// `Transient`. An empty message is replaced by one naming the status code.
    pub fn from_http_status(status: u16, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.trim().is_empty() {
            message = format!("the provider answered HTTP {status}");
        }
        match status {
            400 | 422 => Self::Invalid(message),
            404 | 410 => Self::NotFound(message),
            501 => Self::Unimplemented(message),
            _ => Self::Transient(message),
        }
    }
}

/// What identifies the provider-side object of one resource without its id: the resource's kind and
/// `namespace/name`, its version (for runs, part of the identity: one run per version) and its `creationTimestamp`
/// (an object created before it belongs to an earlier resource of the same name). See [`Provider::find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectIdentity {
    /// The resource's kind.
    pub kind: ResourceKind,
    /// The resource's `namespace/name`.
    pub name: NamespacedName,
    /// The resource's version (`status.version`); providers compare it for runs only.
    pub version: String,
    /// The resource's `creationTimestamp`: provider objects created before it do not belong to this resource.
    pub created: Option<Time>,
}

impl ObjectIdentity {
    /// The identity of `kind` `name` at `version`, created at `created`.
    pub fn new(
        kind: ResourceKind,
        name: NamespacedName,
        version: impl Into<String>,
        created: Option<Time>,
    ) -> Self {
        Self {
            kind,
            name,
            version: version.into(),
            created,
        }
    }

    /// True when a provider object created at `object_created` may belong to this resource: it was not created
    /// before the resource (compared in whole seconds, as Kubernetes keeps `creationTimestamp`).
    pub fn created_in_time(&self, object_created: &Time) -> bool {
        self.created
            .as_ref()
            .is_none_or(|created| object_created.0.as_second() >= created.0.as_second())
    }
}

/// A backend for pipelines, runs, run schedules and experiments: the provider-service backend interface
/// (docs/provider-author-guide.md, "The `Provider` trait").
///
/// Ids are the provider's own: whatever `create_*` returns is stored in the resource's `status.provider.id` and
/// passed back to `update_*`/`delete_*`. Implementations should return [`ProviderError::NotFound`] from a delete of
/// something already gone. There is no `update_run`: runs are immutable (the HTTP service answers
/// `PUT /resource/run` with 501).
///
/// # Exactly once
/// The operator can crash after a provider created an object and before the id was recorded. Providers name their
/// objects deterministically after the resource (`<namespace>-<name>` display names, a job id with the version) and
/// implement [`Provider::find`] to look them up by that [`ObjectIdentity`]. The direct executor calls `find` before
/// every create (an object found is adopted: a run is not started again, a pipeline, run schedule or experiment
/// is updated in place) and for a delete with no recorded id (docs/reliability.md "Exactly once"). A provider
/// without `find` (the default answers [`ProviderError::Unimplemented`]) gets at-least-once creates, as under the
/// Go operator. The conformance kit (`kfp_providers::conformance`) checks `find` for every provider.
///
/// Used as `Arc<dyn Provider>`. With the `mock` feature (or in this crate's tests) mockall generates `MockProvider`.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// Uploads a compiled pipeline; returns the new pipeline's id.
    async fn create_pipeline(&self, pipeline: &PipelineDefinitionWrapper) -> Result<String, ProviderError>;

    /// Uploads a new version of the pipeline `id`; returns its id (usually unchanged).
    async fn update_pipeline(
        &self,
        pipeline: &PipelineDefinitionWrapper,
        id: &str,
    ) -> Result<String, ProviderError>;

    /// Deletes the pipeline `id` and its versions.
    async fn delete_pipeline(&self, id: &str) -> Result<(), ProviderError>;

    /// Starts a run; returns its id. Completion is reported later through an [`EventSource`].
    async fn create_run(&self, run: &RunDefinition) -> Result<String, ProviderError>;

    /// The Run resource of run `id` is being deleted: stop the run if it is still going (the KFP provider
    /// terminates it, the Vertex AI provider cancels its job); a finished run may stay as the platform's history.
    /// Called again after a failure, so it must be idempotent.
    async fn delete_run(&self, id: &str) -> Result<(), ProviderError>;

    /// Creates a recurring run; returns its id.
    async fn create_run_schedule(&self, schedule: &RunScheduleDefinition) -> Result<String, ProviderError>;

    /// Replaces the recurring run `id`; returns its id, which may be new (delete + create backends).
    async fn update_run_schedule(
        &self,
        schedule: &RunScheduleDefinition,
        id: &str,
    ) -> Result<String, ProviderError>;

    /// Deletes the recurring run `id`.
    async fn delete_run_schedule(&self, id: &str) -> Result<(), ProviderError>;

    /// Creates an experiment; returns its id.
    async fn create_experiment(&self, experiment: &ExperimentDefinition) -> Result<String, ProviderError>;

    /// Replaces the experiment `id`; returns its id, which may be new.
    async fn update_experiment(
        &self,
        experiment: &ExperimentDefinition,
        id: &str,
    ) -> Result<String, ProviderError>;

    /// Deletes the experiment `id`.
    async fn delete_experiment(&self, id: &str) -> Result<(), ProviderError>;

    /// The id of the object a `create_*` made for `identity`, or `None` when there is none. For runs, the newest
    /// run of that name and version created no earlier than `identity.created`; for the other kinds, the object of
    /// that name. Must not create or change anything. The default answers [`ProviderError::Unimplemented`]: the
    /// operator then creates without looking (at least once) and cannot clean up an object whose id it lost.
    async fn find(&self, identity: &ObjectIdentity) -> Result<Option<String>, ProviderError> {
        Err(ProviderError::unimplemented(format!(
            "this provider cannot look up a {} by its resource",
            identity.kind
        )))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------------------------

/// Identifies one delivered event to its [`EventSource`] when it is settled: whatever the source needs to
/// acknowledge it (a workflow name to label, a Pub/Sub ack id). Opaque to everyone else.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DeliveryReceipt(pub String);

/// A finished run read from the backend, not yet settled.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDelivery {
    /// The finished run.
    pub event: RunCompletionEventData,
    /// What to pass to [`EventSource::settle`].
    pub receipt: DeliveryReceipt,
}

/// What became of a delivered event; the source acknowledges or redelivers accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryOutcome {
    /// The operator accepted the event: never deliver it again (KFP: label the workflow; Vertex AI: Ack).
    Delivered,
    /// The operator will never accept it (HTTP 410: the Run and RunConfiguration are gone): drop it, as acknowledged.
    Rejected,
    /// It could not be delivered now (other status, transport error): deliver it again later (Vertex AI: Nack).
    Failed,
}

impl DeliveryOutcome {
    /// The outcome of POSTing an event to the operator's feed (docs/provider-service.md, "Events"): 2xx delivered, 410
    /// rejected, anything else failed.
    pub fn from_http_status(status: u16) -> Self {
        match status {
            200..=299 => Self::Delivered,
            410 => Self::Rejected,
            _ => Self::Failed,
        }
    }

    /// True when the source should forget the event.
    pub fn is_settled(self) -> bool {
        !matches!(self, Self::Failed)
    }
}

/// A stream of finished runs from a backend (docs/provider-author-guide.md, "Run completion: the `EventSource`
/// trait").
///
/// The provider service (or, in direct mode, the operator itself) drives it in one task:
/// ```text
/// while let Some(delivery) = source.next_event().await? {   // errors: log, pause, call again
///     let outcome = deliver(delivery.event);               // POST /events -> DeliveryOutcome::from_http_status
///     source.settle(delivery.receipt, outcome).await?;
/// }
/// ```
///
/// # Delivery guarantees
/// At least once, end to end. The guarantee lives in the **source**: an event stays pending in the backend until it
/// is settled as [`DeliveryOutcome::Delivered`] or [`DeliveryOutcome::Rejected`] (Kubeflow Pipelines: the
/// `pipelines.kubeflow.org/events-published` label on the workflow; Vertex AI: the Pub/Sub ack). A
/// [`DeliveryOutcome::Failed`] event, or one never settled because the process died, comes back from `next_event`
/// later. The operator's feed writes status first and answers 500 if anything fails, and its status updates are
/// idempotent and ordered by `runEndTime` (docs/run-completion-events.md), so duplicates are harmless; consumers of the
/// published events must tolerate them too.
///
/// Runs that are not finished, or that the source cannot describe, are the source's business: it settles or skips
/// them itself and yields only complete [`RunCompletionEventData`].
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait::async_trait]
pub trait EventSource: Send {
    /// Waits for the next finished run. `Ok(None)` means the source has ended (its stream closed) and will yield
    /// nothing more. An `Err` is not terminal: the caller logs it, waits, and calls again.
    async fn next_event(&mut self) -> Result<Option<EventDelivery>, ProviderError>;

    /// Records the outcome of delivering the event with `receipt`.
    async fn settle(
        &mut self,
        receipt: DeliveryReceipt,
        outcome: DeliveryOutcome,
    ) -> Result<(), ProviderError>;
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------------------

/// What a provider is built from: the Provider resource's identity, storage root and free-form parameters
/// (`spec.parameters`, e.g. `kfpNamespace` or `vaiProject`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderConfig {
    /// The Provider resource, `namespace/name`.
    pub name: NamespacedName,
    /// Root for pipeline outputs (`spec.pipelineRootStorage`, e.g. `gs://bucket/root`); empty when not set.
    pub pipeline_root_storage: String,
    /// Provider parameters. Read from the environment, keys are lower case: look them up with
    /// [`ProviderConfig::parameter`], which ignores case.
    pub parameters: JsonMap,
}

/// A provider environment that does not describe a provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderConfigError {
    /// `PROVIDERNAME` is not set.
    #[error("PROVIDERNAME is not set: it must hold the Provider resource as namespace/name")]
    MissingName,
    /// `PROVIDERNAME` is not `namespace/name`.
    #[error("PROVIDERNAME {value:?} is not a namespace/name: {reason}")]
    InvalidName {
        /// The variable's value.
        value: String,
        /// Why it is not valid.
        reason: String,
    },
}

impl ProviderConfig {
    /// A configuration for the Provider `name`, without storage root or parameters.
    pub fn new(name: NamespacedName) -> Self {
        Self {
            name,
            ..Self::default()
        }
    }

    /// Reads the provider-service environment (docs/provider-service.md, "Configuration") from `(key, value)` pairs,
    /// e.g. `std::env::vars()`:
    /// - `PROVIDERNAME` (required, `namespace/name`), `PIPELINEROOTSTORAGE` (optional);
    /// - `PARAMETERS_<KEY>`: one parameter each; the value is parsed as JSON when it is JSON (`true`, `10`,
    ///   `"text"`, `{"a":1}`), else kept as a string (`kubeflow`); the key is lower-cased.
    ///
    /// Keys are case-insensitive and `.` counts as `_` (`parameters.kfpNamespace` = `PARAMETERS_KFPNAMESPACE`);
    /// when two keys collide the later wins. Other keys (`OPERATORWEBHOOK`, `SERVER_PORT`, ...) belong to the
    /// service and are ignored here, as is an empty parameter key.
    pub fn from_env_vars<I, K, V>(vars: I) -> Result<Self, ProviderConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        const PARAMETERS: &str = "PARAMETERS_";
        let mut name = None;
        let mut config = Self::default();
        for (key, value) in vars {
            let (key, value) = (key.as_ref().replace('.', "_"), value.as_ref());
            let upper = key.to_ascii_uppercase();
            match upper.as_str() {
                "PROVIDERNAME" => name = Some(value.to_string()),
                "PIPELINEROOTSTORAGE" => config.pipeline_root_storage = value.to_string(),
                _ if upper.starts_with(PARAMETERS) && upper.len() > PARAMETERS.len() => {
                    let parameter = key[PARAMETERS.len()..].to_ascii_lowercase();
                    let parsed = serde_json::from_str(value)
                        .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
                    config.parameters.insert(parameter, parsed);
                }
                _ => {}
            }
        }
        let value = name.ok_or(ProviderConfigError::MissingName)?;
        let invalid = |reason: String| ProviderConfigError::InvalidName {
            value: value.clone(),
            reason,
        };
        let parsed: NamespacedName = value
            .parse()
            .map_err(|e: crate::values::ValueError| invalid(e.to_string()))?;
        if parsed.namespace.is_empty() || parsed.name.is_empty() {
            return Err(invalid("both the namespace and the name are required".into()));
        }
        config.name = parsed;
        Ok(config)
    }

    /// The parameter `key`, ignoring case (`kfpNamespace` finds `kfpnamespace`).
    pub fn parameter(&self, key: &str) -> Option<&serde_json::Value> {
        self.parameters.get(key).or_else(|| {
            self.parameters
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
    }

    /// The parameter `key` as a string: a JSON string as is, other JSON values as their JSON text.
    pub fn parameter_string(&self, key: &str) -> Option<String> {
        self.parameter(key).map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// A shared, type-erased provider, as the executors hold it.
pub type SharedProvider = Arc<dyn Provider>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_classes() {
        let cases = [
            (ProviderError::invalid("bad"), true, 400),
            (ProviderError::not_found("gone"), false, 404),
            (ProviderError::unimplemented("no"), true, 501),
            (ProviderError::transient("later"), false, 500),
        ];
        for (error, permanent, status) in cases {
            assert_eq!(error.is_permanent(), permanent, "{error:?}");
            assert_eq!(error.http_status(), status);
            assert_eq!(ProviderError::from_http_status(status, error.message()), error);
        }
        assert_eq!(ProviderError::invalid("bad").to_string(), "bad");
    }

    #[test]
    fn http_statuses_classify() {
        let class = |status| match ProviderError::from_http_status(status, "m") {
            ProviderError::Invalid(_) => "invalid",
            ProviderError::NotFound(_) => "not found",
            ProviderError::Unimplemented(_) => "unimplemented",
            ProviderError::Transient(_) => "transient",
        };
        for (status, expected) in [
            (400, "invalid"),
            (422, "invalid"),
            (404, "not found"),
            (410, "not found"),
            (501, "unimplemented"),
            (500, "transient"),
            (502, "transient"),
            (503, "transient"),
            (504, "transient"),
            (401, "transient"),
            (403, "transient"),
            (408, "transient"),
            (429, "transient"),
            (999, "transient"),
        ] {
            assert_eq!(class(status), expected, "{status}");
        }
        assert_eq!(
            ProviderError::from_http_status(503, " ").message(),
            "the provider answered HTTP 503"
        );
    }

    #[test]
    fn delivery_outcomes_follow_the_webhook_sink() {
        assert_eq!(DeliveryOutcome::from_http_status(200), DeliveryOutcome::Delivered);
        assert_eq!(DeliveryOutcome::from_http_status(410), DeliveryOutcome::Rejected);
        for status in [400, 404, 500, 503] {
            assert_eq!(DeliveryOutcome::from_http_status(status), DeliveryOutcome::Failed);
        }
        assert!(DeliveryOutcome::Rejected.is_settled() && !DeliveryOutcome::Failed.is_settled());
    }

    #[test]
    fn config_from_environment() {
        let config = ProviderConfig::from_env_vars([
            ("PROVIDERNAME", "kfp-operator-system/kfp"),
            ("pipelineRootStorage", "gs://bucket/root"),
            ("PARAMETERS_KFPNAMESPACE", "kubeflow"),
            ("parameters.restKfpApiUrl", "\"http://ml-pipeline.kubeflow:8888\""),
            ("PARAMETERS_KFPMULTIUSERMODE", "true"),
            ("PARAMETERS_MAXCONCURRENTRUNCOUNT", "10"),
            ("PARAMETERS_NESTED", "{\"a\": [1]}"),
            ("PARAMETERS_", "ignored"),
            ("OPERATORWEBHOOK", "http://x/events"),
            ("PATH", "/usr/bin"),
        ])
        .unwrap();
        assert_eq!(config.name, NamespacedName::new("kfp-operator-system", "kfp"));
        assert_eq!(config.pipeline_root_storage, "gs://bucket/root");
        assert_eq!(config.parameter("kfpNamespace"), Some(&json!("kubeflow")));
        assert_eq!(
            config.parameter_string("restKfpApiUrl").as_deref(),
            Some("http://ml-pipeline.kubeflow:8888")
        );
        assert_eq!(config.parameter("kfpMultiUserMode"), Some(&json!(true)));
        assert_eq!(
            config.parameter_string("maxConcurrentRunCount").as_deref(),
            Some("10")
        );
        assert_eq!(config.parameter("nested"), Some(&json!({"a": [1]})));
        assert_eq!(config.parameters.len(), 5);
        assert_eq!(config.parameter("absent"), None);
    }

    #[test]
    fn config_needs_a_provider_name() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(
            ProviderConfig::from_env_vars(none),
            Err(ProviderConfigError::MissingName)
        );
        for bad in ["", "kfp", "a/b/c", "/kfp"] {
            let err = ProviderConfig::from_env_vars([("providername", bad)])
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("PROVIDERNAME {bad:?} is not a namespace/name")),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn mock_provider_is_usable_as_a_shared_trait_object() {
        let mut mock = MockProvider::new();
        mock.expect_create_experiment()
            .returning(|e| Ok(format!("exp-{}", e.name.name)));
        mock.expect_delete_run()
            .returning(|id| Err(ProviderError::not_found(format!("run {id} not found"))));
        let provider: SharedProvider = Arc::new(mock);
        let experiment = ExperimentDefinition {
            name: NamespacedName::new("ns", "e"),
            version: "v".into(),
            description: String::new(),
        };
        assert_eq!(
            provider.create_experiment(&experiment).await,
            Ok("exp-e".to_string())
        );
        assert!(provider.delete_run("r1").await.unwrap_err().is_not_found());
    }

    #[tokio::test]
    async fn event_source_loop_settles_each_delivery() {
        let event: RunCompletionEventData = serde_json::from_value(json!({
            "status": "succeeded", "pipelineName": "ns/p", "runId": "r", "provider": "ops/kfp"
        }))
        .unwrap();
        let mut source = MockEventSource::new();
        let mut queue = vec![EventDelivery {
            event,
            receipt: DeliveryReceipt("wf-1".into()),
        }];
        source
            .expect_next_event()
            .times(2)
            .returning(move || Ok(queue.pop()));
        source
            .expect_settle()
            .withf(|receipt, outcome| receipt.0 == "wf-1" && *outcome == DeliveryOutcome::Delivered)
            .times(1)
            .returning(|_, _| Ok(()));
        let mut source: Box<dyn EventSource> = Box::new(source);
        while let Some(delivery) = source.next_event().await.unwrap() {
            source
                .settle(delivery.receipt, DeliveryOutcome::from_http_status(200))
                .await
                .unwrap();
        }
    }
}
