//! The direct executor: carries out provider operations in-process, with no Argo and no provider service
//! (`docs/direct-executor.md`; docs/concepts.md, "Executors: how an operation reaches the provider").
//!
//! [`DirectExecutor::submit`] resolves the operation's Provider to an `Arc<dyn Provider>` (a [`ProviderResolver`]),
//! records the operation as in progress and returns; a tokio task then compiles the pipeline if there is one (a
//! [`Compiler`]), calls the provider, records the outcome and wakes the resource's controller through
//! [`Completions`]. The planner reads outcomes exactly as it reads Argo workflows, so the state machine is the same
//! under both executors.
//!
//! # Durability and exactly once
//! Outcomes live in memory until the planner consumes them; they are not written anywhere. The resource's status
//! write is what makes a finished operation durable, and the planner writes `Creating` before it submits a create
//! (the intent). If the operator restarts while an operation is in flight (or finished but not yet consumed), the
//! planner finds no outcome for a resource in `Creating`/`Updating`/`Deleting`, fails it as "operation progress
//! unknown" (transient) and retries with backoff. The retried create does not act twice: every create first asks
//! the provider for the resource's object ([`Provider::find`]) and adopts what it finds (a run is not started
//! again; the other kinds are updated in place), and a delete whose id was lost finds the object first
//! ([`Executor::finds_by_identity`]). A provider without lookups gets at-least-once creates, as under the Go
//! operator (docs/reliability.md "Exactly once").
//!
//! # Memory
//! One entry per operation that has not been consumed yet (in progress, or finished and waiting for its
//! controller). Consumed operations are dropped; an operation consumed while still in progress is forgotten when it
//! finishes.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kfp_core::compiler::{CompileRequest, Compiler};
use kfp_core::definitions::{PipelineDefinitionWrapper, ProviderOutput};
use kfp_core::executor::{
    Action, Executor, ExecutorError, FailureClass, Operation, OperationDefinition, OperationOutcome,
    OutcomeState, ResourceKind, ResourceRef,
};
use kfp_core::provider::{ObjectIdentity, Provider, ProviderConfig, ProviderError};
use kfp_core::reconcile::failure::{self, Verdict};
use kfp_core::registry::{ProviderRegistry, RegistryError};
use kfp_core::resources::v1beta1::Provider as ProviderResource;
use kfp_core::values::NamespacedName;
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::Completions;
use crate::config::{DirectConfig, format_duration};
use crate::telemetry::Metrics;

/// The annotation on a Provider that names its registry type (`stub`, `kfp`, `vai`, `http`, or your own).
pub const PROVIDER_TYPE_ANNOTATION: &str = "pipelines.kubeflow.org/provider-type";

/// How long a provider call may take unless configured (the Argo templates' step deadline, docs/executors.md).
pub const DEFAULT_PROVIDER_TIMEOUT: Duration = Duration::from_secs(5 * 60);

// ---------------------------------------------------------------------------------------------------------------
// Provider resolution
// ---------------------------------------------------------------------------------------------------------------

/// Why a Provider could not be turned into an `Arc<dyn Provider>`. `submit` reports it as
/// [`ExecutorError::ProviderUnavailable`] and the controller retries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No Provider of that name exists.
    #[error("the Provider {0} does not exist")]
    NotFound(NamespacedName),
    /// The Provider names no provider type and there is no default.
    #[error(
        "the Provider {provider} has no provider type: set its annotation {PROVIDER_TYPE_ANNOTATION} \
         (e.g. stub, kfp, vai, http) or the operator's spec.direct.defaultProviderType"
    )]
    NoType {
        /// The Provider.
        provider: NamespacedName,
    },
    /// The Provider could not be read.
    #[error("cannot read the Provider {provider}: {message}")]
    Api {
        /// The Provider.
        provider: NamespacedName,
        /// The API error.
        message: String,
    },
    /// The registry could not build the provider.
    #[error("cannot use the Provider {provider}: {source}")]
    Build {
        /// The Provider.
        provider: NamespacedName,
        /// Why the registry could not build it.
        source: RegistryError,
    },
}

/// Finds the provider implementation of a Provider resource (`ns/name`).
#[async_trait::async_trait]
pub trait ProviderResolver: Send + Sync {
    /// The implementation of the Provider `provider`.
    async fn resolve(&self, provider: &NamespacedName) -> Result<Arc<dyn Provider>, ResolveError>;
}

/// A fixed map of Provider names to implementations: for embedding (the platform builds its providers itself)
/// and tests. Unknown names are [`ResolveError::NotFound`].
#[derive(Clone, Default)]
pub struct StaticResolver {
    providers: HashMap<NamespacedName, Arc<dyn Provider>>,
}

impl StaticResolver {
    /// An empty resolver.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the implementation of the Provider `name`.
    pub fn with(mut self, name: NamespacedName, provider: Arc<dyn Provider>) -> Self {
        self.insert(name, provider);
        self
    }

    /// Adds (or replaces) the implementation of the Provider `name`.
    pub fn insert(&mut self, name: NamespacedName, provider: Arc<dyn Provider>) {
        self.providers.insert(name, provider);
    }
}

impl std::fmt::Debug for StaticResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<String> = self.providers.keys().map(ToString::to_string).collect();
        names.sort();
        f.debug_struct("StaticResolver")
            .field("providers", &names)
            .finish()
    }
}

#[async_trait::async_trait]
impl ProviderResolver for StaticResolver {
    async fn resolve(&self, provider: &NamespacedName) -> Result<Arc<dyn Provider>, ResolveError> {
        self.providers
            .get(provider)
            .cloned()
            .ok_or_else(|| ResolveError::NotFound(provider.clone()))
    }
}

/// Reads the Provider resource and builds its implementation with a [`ProviderRegistry`].
///
/// The type is the Provider's [`PROVIDER_TYPE_ANNOTATION`], else the configured default
/// (`spec.direct.defaultProviderType`). The implementation gets a [`ProviderConfig`] with the Provider's `ns/name`,
/// `spec.pipelineRootStorage` and `spec.parameters`: what the provider service would read from its environment
/// (docs/provider-service.md, "Configuration"). Built providers are cached per Provider, generation and type, so a
/// changed spec or annotation gets a fresh instance; the Provider is read again when the cached instance was last
/// verified more than [`PROVIDER_REVERIFY`] ago, so a deleted or changed Provider stops being used within that bound.
pub struct RegistryResolver {
    client: Client,
    registry: ProviderRegistry,
    default_type: String,
    cache: Mutex<HashMap<NamespacedName, Cached>>,
    reverify: Duration,
}

struct Cached {
    generation: Option<i64>,
    type_name: String,
    provider: Arc<dyn Provider>,
    /// When the Provider was last read and found unchanged.
    verified: Instant,
}

/// How long a built provider is used without reading its Provider again (issue 18: the resolver read the
/// Provider on every operation, one request per resource in a burst). A Provider deleted or changed is noticed
/// within this bound.
pub const PROVIDER_REVERIFY: Duration = Duration::from_secs(5);

impl std::fmt::Debug for RegistryResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryResolver")
            .field("registry", &self.registry)
            .field("default_type", &self.default_type)
            .finish_non_exhaustive()
    }
}

impl RegistryResolver {
    /// `default_type` is used for Providers without the annotation; empty: such Providers are refused.
    pub fn new(client: Client, registry: ProviderRegistry, default_type: impl Into<String>) -> Self {
        Self {
            client,
            registry,
            default_type: default_type.into().trim().to_string(),
            cache: Mutex::new(HashMap::new()),
            reverify: PROVIDER_REVERIFY,
        }
    }

    /// Reads the Provider again when its built provider was verified more than `period` ago (default
    /// [`PROVIDER_REVERIFY`]; zero: on every resolve).
    pub fn with_reverify(mut self, period: Duration) -> Self {
        self.reverify = period;
        self
    }

    /// A resolver with `spec.direct.defaultProviderType`.
    pub fn from_config(client: Client, registry: ProviderRegistry, config: &DirectConfig) -> Self {
        Self::new(client, registry, config.default_provider_type.clone())
    }

    /// The registry type of `provider`: its annotation (when not blank), else the default.
    pub fn provider_type(&self, provider: &ProviderResource) -> Result<String, ResolveError> {
        Self::type_of(provider, &self.default_type)
    }

    /// The registry type of `provider`: its annotation (when not blank), else `default_type` (when not blank).
    pub fn type_of(provider: &ProviderResource, default_type: &str) -> Result<String, ResolveError> {
        provider
            .annotations()
            .get(PROVIDER_TYPE_ANNOTATION)
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .or(Some(default_type.trim()).filter(|t| !t.is_empty()))
            .map(str::to_string)
            .ok_or_else(|| ResolveError::NoType {
                provider: provider_name(provider),
            })
    }

    /// The configuration a provider implementation is built from.
    pub fn provider_config(provider: &ProviderResource) -> ProviderConfig {
        ProviderConfig {
            name: provider_name(provider),
            pipeline_root_storage: provider.spec.pipeline_root_storage.clone(),
            parameters: provider.spec.parameters.clone(),
        }
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<NamespacedName, Cached>> {
        // The cache holds no invariant a panic could break half-way: keep using it.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn provider_name(provider: &ProviderResource) -> NamespacedName {
    NamespacedName::new(provider.namespace().unwrap_or_default(), provider.name_any())
}

#[async_trait::async_trait]
impl ProviderResolver for RegistryResolver {
    async fn resolve(&self, name: &NamespacedName) -> Result<Arc<dyn Provider>, ResolveError> {
        if let Some(cached) = self.cache().get(name)
            && cached.verified.elapsed() < self.reverify
        {
            return Ok(cached.provider.clone());
        }
        let api: Api<ProviderResource> = Api::namespaced(self.client.clone(), &name.namespace);
        let resource = api
            .get_opt(&name.name)
            .await
            .map_err(|e| ResolveError::Api {
                provider: name.clone(),
                message: e.to_string(),
            })?
            .ok_or_else(|| ResolveError::NotFound(name.clone()))?;
        let type_name = self.provider_type(&resource)?;
        let generation = resource.metadata.generation;
        let mut cache = self.cache();
        if let Some(cached) = cache.get_mut(name)
            && cached.generation == generation
            && cached.type_name == type_name
        {
            cached.verified = Instant::now();
            return Ok(cached.provider.clone());
        }
        let provider = self
            .registry
            .build(&type_name, &Self::provider_config(&resource))
            .map_err(|source| ResolveError::Build {
                provider: name.clone(),
                source,
            })?;
        tracing::info!(provider = %name, type_name, ?generation, "built a provider for the direct executor");
        cache.insert(
            name.clone(),
            Cached {
                generation,
                type_name,
                provider: provider.clone(),
                verified: Instant::now(),
            },
        );
        Ok(provider)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The executor
// ---------------------------------------------------------------------------------------------------------------

/// What a create or update sends the provider: a pipeline compiled into its request body.
enum Payload {
    Pipeline(PipelineDefinitionWrapper),
    Run(kfp_core::definitions::RunDefinition),
    RunSchedule(kfp_core::definitions::RunScheduleDefinition),
    Experiment(kfp_core::definitions::ExperimentDefinition),
}

impl Payload {
    fn kind(&self) -> ResourceKind {
        match self {
            Self::Pipeline(_) => ResourceKind::Pipeline,
            Self::Run(_) => ResourceKind::Run,
            Self::RunSchedule(_) => ResourceKind::RunSchedule,
            Self::Experiment(_) => ResourceKind::Experiment,
        }
    }
}

/// Unconsumed operations per resource, by key.
type Operations = HashMap<ResourceRef, BTreeMap<String, OperationOutcome>>;

/// Carries out provider operations in-process. See the module docs for durability and memory.
pub struct DirectExecutor {
    resolver: Arc<dyn ProviderResolver>,
    task: Task,
    next: AtomicU64,
}

/// What a running operation needs.
#[derive(Clone)]
struct Task {
    compiler: Arc<dyn Compiler>,
    completions: Completions,
    metrics: Arc<Metrics>,
    provider_timeout: Duration,
    operations: Arc<Mutex<Operations>>,
}

impl std::fmt::Debug for DirectExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectExecutor")
            .field("provider_timeout", &self.task.provider_timeout)
            .field("unconsumed", &self.unconsumed())
            .finish_non_exhaustive()
    }
}

impl DirectExecutor {
    /// An executor that finds providers with `resolver`, compiles pipelines with `compiler`, announces finished
    /// operations on `completions` and records `executor_operations_total` and `provider_call_duration_seconds`
    /// in `metrics`. Provider calls time out after [`DEFAULT_PROVIDER_TIMEOUT`].
    pub fn new(
        resolver: Arc<dyn ProviderResolver>,
        compiler: Arc<dyn Compiler>,
        completions: Completions,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            resolver,
            task: Task {
                compiler,
                completions,
                metrics,
                provider_timeout: DEFAULT_PROVIDER_TIMEOUT,
                operations: Arc::new(Mutex::new(HashMap::new())),
            },
            next: AtomicU64::new(1),
        }
    }

    /// A provider call that takes longer than `timeout` is abandoned and fails as transient (it is retried).
    pub fn with_provider_timeout(mut self, timeout: Duration) -> Self {
        self.task.provider_timeout = timeout;
        self
    }

    /// How many operations are held in memory (in progress, or finished and not consumed yet).
    pub fn unconsumed(&self) -> usize {
        self.task.lock().values().map(BTreeMap::len).sum()
    }
}

impl Task {
    fn lock(&self) -> MutexGuard<'_, Operations> {
        // Every update is a single insert or remove: a panic elsewhere cannot leave the map half-changed.
        self.operations.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one operation to its end, records the outcome (unless it was consumed meanwhile) and wakes the
    /// resource's controller.
    async fn run(
        self,
        provider: Arc<dyn Provider>,
        resource: ResourceRef,
        key: String,
        action: Action,
        identity: ObjectIdentity,
    ) {
        let (kind, action_name) = (resource.kind, action.name());
        let state = AssertUnwindSafe(self.execute(provider.as_ref(), action, &identity))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| OutcomeState::Failed {
                class: FailureClass::Transient,
                message: format!("the provider panicked during the {action_name} {kind} call"),
            });
        let result = match &state {
            OutcomeState::Succeeded { .. } => "succeeded",
            _ => "failed",
        };
        if let OutcomeState::Failed { class, message } = &state {
            tracing::info!(%resource, action = action_name, class = class.as_str(), message, "operation failed");
        } else {
            tracing::debug!(%resource, action = action_name, "operation succeeded");
        }
        self.metrics.operation(kind.as_str(), action_name, result);
        if let Some(outcome) = self.lock().get_mut(&resource).and_then(|ops| ops.get_mut(&key)) {
            outcome.state = state;
        }
        self.completions.notify(resource);
    }

    async fn execute(
        &self,
        provider: &dyn Provider,
        action: Action,
        identity: &ObjectIdentity,
    ) -> OutcomeState {
        let kind = identity.kind;
        let result = match action {
            Action::Create { definition } => match self.payload(definition).await {
                Err(failed) => Err(failed),
                // Exactly once: an object a crashed operator created is adopted, not made again
                // (docs/reliability.md "Exactly once").
                Ok(payload) => match self.find(provider, identity).await {
                    Err(failed) => Err(failed),
                    Ok(Some(id)) => self.adopt(provider, payload, id).await,
                    Ok(None) => self.create(provider, payload).await,
                },
            },
            Action::Update { id, definition } => match self.payload(definition).await {
                Err(failed) => Err(failed),
                Ok(payload) => self.update(provider, payload, id).await,
            },
            Action::Delete { id } => {
                let id = if id.is_empty() {
                    // The id was lost (a crash between the provider's answer and the status write).
                    match self.find(provider, identity).await {
                        Ok(Some(id)) => id,
                        Ok(None) => return Self::succeeded(String::new()),
                        Err(failed) => return failed,
                    }
                } else {
                    id
                };
                let deleted = match kind {
                    ResourceKind::Pipeline => self.call(kind, "delete", provider.delete_pipeline(&id)).await,
                    ResourceKind::Run => self.call(kind, "delete", provider.delete_run(&id)).await,
                    ResourceKind::RunSchedule => {
                        self.call(kind, "delete", provider.delete_run_schedule(&id)).await
                    }
                    ResourceKind::Experiment => {
                        self.call(kind, "delete", provider.delete_experiment(&id)).await
                    }
                };
                match deleted.map_err(|e| (failure::provider_error(&e, true), e)) {
                    // Deleting what is already gone is done: deletes are idempotent.
                    Ok(()) | Err((Verdict::Done, _)) => Ok(String::new()),
                    Err((_, e)) => Err(Self::failed(&e)),
                }
            }
        };
        match result {
            Ok(id) => Self::succeeded(id),
            Err(failed) => failed,
        }
    }

    fn succeeded(id: String) -> OutcomeState {
        OutcomeState::Succeeded {
            output: Ok(ProviderOutput {
                id,
                provider_error: String::new(),
            }),
        }
    }

    fn failed(e: &ProviderError) -> OutcomeState {
        OutcomeState::Failed {
            class: failure::provider_error_class(e),
            message: e.message().to_string(),
        }
    }

    /// What the provider is sent: a pipeline compiled first, so a compile failure calls no provider.
    async fn payload(&self, definition: OperationDefinition) -> Result<Payload, OutcomeState> {
        Ok(match definition {
            OperationDefinition::Pipeline {
                definition,
                framework_image,
            } => Payload::Pipeline(self.compile(definition, framework_image).await?),
            OperationDefinition::Run(run) => Payload::Run(run),
            OperationDefinition::RunSchedule(schedule) => Payload::RunSchedule(schedule),
            OperationDefinition::Experiment(experiment) => Payload::Experiment(experiment),
        })
    }

    /// The provider's object of `identity`; `None` also when the provider cannot look up (it then gets
    /// at-least-once creates, as under the Go operator).
    async fn find(
        &self,
        provider: &dyn Provider,
        identity: &ObjectIdentity,
    ) -> Result<Option<String>, OutcomeState> {
        match self.call(identity.kind, "find", provider.find(identity)).await {
            Ok(found) => Ok(found),
            Err(ProviderError::Unimplemented(_)) => Ok(None),
            Err(e) => Err(Self::failed(&e)),
        }
    }

    async fn create(&self, provider: &dyn Provider, payload: Payload) -> Result<String, OutcomeState> {
        let kind = payload.kind();
        let created = match payload {
            Payload::Pipeline(wrapper) => {
                self.call(kind, "create", provider.create_pipeline(&wrapper))
                    .await
            }
            Payload::Run(run) => self.call(kind, "create", provider.create_run(&run)).await,
            Payload::RunSchedule(schedule) => {
                self.call(kind, "create", provider.create_run_schedule(&schedule))
                    .await
            }
            Payload::Experiment(experiment) => {
                self.call(kind, "create", provider.create_experiment(&experiment))
                    .await
            }
        };
        created.map_err(|e| Self::failed(&e))
    }

    /// A create whose object exists already: a run is not started again (runs are immutable); the other kinds
    /// are brought to the definition with an update of the object found.
    async fn adopt(
        &self,
        provider: &dyn Provider,
        payload: Payload,
        id: String,
    ) -> Result<String, OutcomeState> {
        tracing::info!(kind = %payload.kind(), id, "the provider has this resource's object already: adopting it");
        match payload {
            Payload::Run(_) => Ok(id),
            payload => self.update(provider, payload, id).await,
        }
    }

    async fn update(
        &self,
        provider: &dyn Provider,
        payload: Payload,
        id: String,
    ) -> Result<String, OutcomeState> {
        let kind = payload.kind();
        let updated = match payload {
            Payload::Pipeline(wrapper) => {
                self.call(kind, "update", provider.update_pipeline(&wrapper, &id))
                    .await
            }
            // The provider contract has no run update: the provider service answers 501 (docs/provider-service.md).
            Payload::Run(run) => Err(ProviderError::unimplemented(format!(
                "run {} cannot be updated: providers do not support updating runs",
                run.name
            ))),
            Payload::RunSchedule(schedule) => {
                self.call(kind, "update", provider.update_run_schedule(&schedule, &id))
                    .await
            }
            Payload::Experiment(experiment) => {
                self.call(kind, "update", provider.update_experiment(&experiment, &id))
                    .await
            }
        };
        updated.map_err(|e| Self::failed(&e))
    }

    /// Compiles a pipeline into the provider's request body (as the Argo templates' `combine-files`), or the failed
    /// outcome.
    async fn compile(
        &self,
        definition: serde_json::Value,
        framework_image: String,
    ) -> Result<PipelineDefinitionWrapper, OutcomeState> {
        let request = CompileRequest {
            framework_image,
            pipeline_image: definition
                .get("image")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string(),
            pipeline_definition: definition,
        };
        match self.compiler.compile(&request).await {
            Ok(compiled) => Ok(PipelineDefinitionWrapper {
                pipeline_definition: request.pipeline_definition,
                compiled_pipeline: compiled,
            }),
            Err(e) => Err(OutcomeState::Failed {
                class: failure::compile_error_class(&e),
                // Either kind displays as its message alone.
                message: e.to_string(),
            }),
        }
    }

    /// One provider call, bounded by the provider timeout and timed.
    async fn call<T>(
        &self,
        kind: ResourceKind,
        action: &str,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let started = Instant::now();
        let (result, label) = match tokio::time::timeout(self.provider_timeout, call).await {
            Ok(Ok(value)) => (Ok(value), "succeeded"),
            Ok(Err(e)) => (Err(e), "failed"),
            Err(_) => (
                Err(ProviderError::transient(format!(
                    "the provider did not answer the {action} {kind} call within {}",
                    format_duration(self.provider_timeout)
                ))),
                "timeout",
            ),
        };
        self.metrics
            .provider_call(kind.as_str(), action, label, started.elapsed());
        result
    }
}

#[async_trait::async_trait]
impl Executor for DirectExecutor {
    async fn submit(&self, operation: Operation) -> Result<(), ExecutorError> {
        let identity = operation.identity();
        let Operation {
            resource,
            provider,
            action,
            ..
        } = operation;
        if let Some(definition) = action.definition()
            && definition.kind() != resource.kind
        {
            return Err(ExecutorError::Submit {
                message: format!("the operation carries a {} definition", definition.kind()),
                resource,
                action: action.name(),
            });
        }
        let instance =
            self.resolver
                .resolve(&provider)
                .await
                .map_err(|e| ExecutorError::ProviderUnavailable {
                    resource: resource.clone(),
                    provider: provider.clone(),
                    message: e.to_string(),
                })?;
        let key = format!("direct-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let outcome = OperationOutcome {
            key: key.clone(),
            created: Time(k8s_openapi::jiff::Timestamp::now()),
            state: OutcomeState::InProgress,
        };
        self.task
            .lock()
            .entry(resource.clone())
            .or_default()
            .insert(key.clone(), outcome);
        self.task
            .metrics
            .operation(resource.kind.as_str(), action.name(), "submitted");
        tracing::debug!(%resource, %provider, action = action.name(), key, "operation submitted");
        tokio::spawn(self.task.clone().run(instance, resource, key, action, identity));
        Ok(())
    }

    async fn outcomes(&self, resource: &ResourceRef) -> Result<Vec<OperationOutcome>, ExecutorError> {
        Ok(self
            .task
            .lock()
            .get(resource)
            .map(|ops| ops.values().cloned().collect())
            .unwrap_or_default())
    }

    fn finds_by_identity(&self) -> bool {
        true
    }

    async fn mark_consumed(&self, resource: &ResourceRef, keys: &[String]) -> Result<(), ExecutorError> {
        let mut operations = self.task.lock();
        if let Some(ops) = operations.get_mut(resource) {
            for key in keys {
                ops.remove(key);
            }
            if ops.is_empty() {
                operations.remove(resource);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kfp_core::resources::v1beta1::ProviderSpec;
    use serde_json::json;

    fn resolver(default_type: &str) -> Option<RegistryResolver> {
        // A client is needed to build one, not to use the pure helpers: any URL will do.
        let config = kube::Config::new("http://127.0.0.1:9".parse().ok()?);
        let client = Client::try_from(config).ok()?;
        Some(RegistryResolver::new(
            client,
            ProviderRegistry::new(),
            default_type,
        ))
    }

    fn provider(annotation: Option<&str>) -> ProviderResource {
        let mut provider = ProviderResource::new(
            "kfp",
            ProviderSpec {
                pipeline_root_storage: "gs://bucket".into(),
                parameters: [("kfpNamespace".to_string(), json!("kubeflow"))].into(),
                ..ProviderSpec::default()
            },
        );
        provider.metadata.namespace = Some("ops".into());
        if let Some(annotation) = annotation {
            provider
                .annotations_mut()
                .insert(PROVIDER_TYPE_ANNOTATION.into(), annotation.into());
        }
        provider
    }

    #[tokio::test]
    async fn the_type_comes_from_the_annotation_then_the_default() {
        let with_default = resolver("stub").unwrap();
        let without = resolver("").unwrap();
        assert_eq!(with_default.provider_type(&provider(Some("kfp"))).unwrap(), "kfp");
        assert_eq!(with_default.provider_type(&provider(Some(" "))).unwrap(), "stub");
        assert_eq!(with_default.provider_type(&provider(None)).unwrap(), "stub");
        assert_eq!(
            without.provider_type(&provider(None)).unwrap_err().to_string(),
            "the Provider ops/kfp has no provider type: set its annotation pipelines.kubeflow.org/provider-type \
             (e.g. stub, kfp, vai, http) or the operator's spec.direct.defaultProviderType"
        );
        let config = RegistryResolver::provider_config(&provider(None));
        assert_eq!(config.name, NamespacedName::new("ops", "kfp"));
        assert_eq!(config.pipeline_root_storage, "gs://bucket");
        assert_eq!(
            config.parameter_string("kfpnamespace").as_deref(),
            Some("kubeflow")
        );
    }
}
