//! The operation vocabulary between the pure planners and whatever carries out provider operations.
//!
//! A planner decides that a pipeline, run, run schedule or experiment must be created, updated or deleted on its
//! provider and emits an [`Operation`]. An [`Executor`] carries it out and later reports [`OperationOutcome`]s, which
//! the planner reads on the next reconcile (docs/controllers.md, "The state machine of Pipelines, Runs, RunSchedules
//! and Experiments"). Two executors fit this trait (both in `kfp-operator`):
//! - `ArgoExecutor`: one Argo `Workflow` per operation (docs/executors.md); `outcomes` lists the unprocessed workflows
//!   found by the three owner labels, `key` is `<workflow namespace>/<workflow name>`, `created` its
//!   `creationTimestamp`; `mark_consumed` sets the `processed` label.
//! - `DirectExecutor`: calls an in-process `Provider`; outcomes live in memory until consumed.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

use crate::definitions::{ExperimentDefinition, ProviderOutput, RunDefinition, RunScheduleDefinition};
use crate::values::NamespacedName;

/// The kinds whose objects exist on a provider. The wire names (`resource-kind` argument, `/resource/{type}` path,
/// `owner.kind` workflow label) are lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    /// A Pipeline (`pipeline`).
    Pipeline,
    /// A Run (`run`).
    Run,
    /// A RunSchedule (`runschedule`).
    RunSchedule,
    /// An Experiment (`experiment`).
    Experiment,
}

impl ResourceKind {
    /// Every kind.
    pub const ALL: [ResourceKind; 4] = [Self::Pipeline, Self::Run, Self::RunSchedule, Self::Experiment];

    /// The name in workflow labels and provider-service paths (`pipeline`, `run`, `runschedule`, `experiment`).
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

impl FromStr for ResourceKind {
    type Err = ExecutorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ExecutorError::UnknownKind(s.to_string()))
    }
}

/// The Kubernetes object an operation belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceRef {
    /// The kind.
    pub kind: ResourceKind,
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl ResourceRef {
    /// The `kind` object `namespace/name`.
    pub fn new(kind: ResourceKind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// `namespace/name`.
    pub fn namespaced_name(&self) -> NamespacedName {
        NamespacedName::new(self.namespace.clone(), self.name.clone())
    }
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// What to send the provider for a create or update (docs/provider-service.md, "Request bodies").
#[derive(Debug, Clone, PartialEq)]
pub enum OperationDefinition {
    /// The pipeline definition with the framework's patches applied (JSON: patches may add fields the typed
    /// definition does not know), and the framework image that compiles it (`pipeline-framework-image`).
    Pipeline {
        /// The patched definition.
        definition: serde_json::Value,
        /// The compiler image of the framework.
        framework_image: String,
    },
    /// A run to start.
    Run(RunDefinition),
    /// A recurring run to create or replace.
    RunSchedule(RunScheduleDefinition),
    /// An experiment to create or replace.
    Experiment(ExperimentDefinition),
}

impl OperationDefinition {
    /// The kind of resource it is for.
    pub fn kind(&self) -> ResourceKind {
        match self {
            Self::Pipeline { .. } => ResourceKind::Pipeline,
            Self::Run(_) => ResourceKind::Run,
            Self::RunSchedule(_) => ResourceKind::RunSchedule,
            Self::Experiment(_) => ResourceKind::Experiment,
        }
    }

    /// The `resource-definition` body as JSON.
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        match self {
            Self::Pipeline { definition, .. } => Ok(definition.clone()),
            Self::Run(d) => serde_json::to_value(d),
            Self::RunSchedule(d) => serde_json::to_value(d),
            Self::Experiment(d) => serde_json::to_value(d),
        }
    }
}

/// Create, update or delete on the provider. A delete needs no definition (it must work even when none can be
/// built any more, decision 0002), so the definition travels with the actions that use it.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create the object on the provider.
    Create {
        /// What to create.
        definition: OperationDefinition,
    },
    /// Replace the provider's object `id`.
    Update {
        /// The provider's id.
        id: String,
        /// What to replace it with.
        definition: OperationDefinition,
    },
    /// Delete the provider's object `id`. An empty `id` means "find it by its resource first" (only submitted to
    /// an executor that [`Executor::finds_by_identity`]).
    Delete {
        /// The provider's id.
        id: String,
    },
}

impl Action {
    /// `create`, `update` or `delete`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Create { .. } => "create",
            Self::Update { .. } => "update",
            Self::Delete { .. } => "delete",
        }
    }

    /// The definition sent (none for a delete).
    pub fn definition(&self) -> Option<&OperationDefinition> {
        match self {
            Self::Create { definition } | Self::Update { definition, .. } => Some(definition),
            Self::Delete { .. } => None,
        }
    }

    /// The provider-side id the operation acts on (`resource-id`), if any.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Create { .. } => None,
            Self::Update { id, .. } | Self::Delete { id } => Some(id),
        }
    }
}

/// One provider operation for one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// The resource it is for.
    pub resource: ResourceRef,
    /// The Provider object (`ns/name`) whose service carries out the operation.
    pub provider: NamespacedName,
    /// What to do.
    pub action: Action,
    /// The resource's version (`status.version` being applied, or the one recorded when deleting).
    pub version: String,
    /// The resource's `creationTimestamp`.
    pub created: Option<Time>,
}

impl Operation {
    /// What identifies the resource's provider-side object without its id ([`crate::provider::Provider::find`]).
    pub fn identity(&self) -> crate::provider::ObjectIdentity {
        crate::provider::ObjectIdentity::new(
            self.resource.kind,
            self.resource.namespaced_name(),
            self.version.clone(),
            self.created.clone(),
        )
    }
}

/// Whether retrying the same operation may succeed (docs/reliability.md, "Which failures are retried").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureClass {
    /// The provider answered 400/422, or the resource itself is invalid: wait for a spec change.
    Permanent,
    /// Provider 5xx, transport error, timeout, workflow `Error` or an unknown outcome: retry with backoff.
    Transient,
}

impl FailureClass {
    /// `permanent` or `transient`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permanent => "permanent",
            Self::Transient => "transient",
        }
    }
}

/// Where an operation is.
#[derive(Debug, Clone, PartialEq)]
pub enum OutcomeState {
    /// Still running.
    InProgress,
    /// The operation ran to its end. The output is the provider's answer (`{"id"?, "providerError"?}`), or why it
    /// could not be read ("could not retrieve workflow output").
    Succeeded {
        /// The provider's answer, or why it could not be read.
        output: Result<ProviderOutput, String>,
    },
    /// The operation itself failed (Argo: workflow `Failed`/`Error`; direct: the provider call failed).
    Failed {
        /// Whether a retry may help.
        class: FailureClass,
        /// What went wrong.
        message: String,
    },
}

/// An operation an executor started, as it stands now.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationOutcome {
    /// Identifies the operation to `mark_consumed` (Argo: the workflow name; direct: an operation id).
    pub key: String,
    /// When the operation started: among outcomes of one class the latest wins (docs/controllers.md, "The state
    /// machine of Pipelines, Runs, RunSchedules and Experiments").
    pub created: Time,
    /// Where it is.
    pub state: OutcomeState,
}

impl OperationOutcome {
    /// True while the operation runs.
    pub fn in_progress(&self) -> bool {
        matches!(self.state, OutcomeState::InProgress)
    }
}

/// Why an executor could not submit, list or consume operations (the controller retries).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutorError {
    /// A workflow label names no kind.
    #[error("unknown resource kind {0:?}; expected one of pipeline, run, runschedule, experiment")]
    UnknownKind(String),
    /// The provider could not be reached or built (direct executor; Argo: its Service is missing).
    #[error("the provider {provider} of {resource} could not be reached: {message}")]
    ProviderUnavailable {
        /// The resource.
        resource: ResourceRef,
        /// The Provider.
        provider: NamespacedName,
        /// Why.
        message: String,
    },
    /// The operation could not be started.
    #[error("could not submit the {action} operation for {resource}: {message}")]
    Submit {
        /// The resource.
        resource: ResourceRef,
        /// `create`, `update` or `delete`.
        action: &'static str,
        /// Why.
        message: String,
    },
    /// The operations of a resource could not be listed.
    #[error("could not list the operations of {resource}: {message}")]
    Outcomes {
        /// The resource.
        resource: ResourceRef,
        /// Why.
        message: String,
    },
    /// Finished operations could not be marked as consumed.
    #[error("could not mark the operations {keys:?} of {resource} as consumed: {message}")]
    MarkConsumed {
        /// The resource.
        resource: ResourceRef,
        /// The operations.
        keys: Vec<String>,
        /// Why.
        message: String,
    },
}

/// Carries out provider operations and reports how they went. Object safe: controllers hold `Arc<dyn Executor>`.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Starts an operation. Returns once it is durably recorded (Argo: the Workflow exists), not when it finished.
    async fn submit(&self, operation: Operation) -> Result<(), ExecutorError>;

    /// The operations of a resource not yet consumed, in any order.
    async fn outcomes(&self, resource: &ResourceRef) -> Result<Vec<OperationOutcome>, ExecutorError>;

    /// Forgets finished operations once the planner acted on them, so they are not seen again.
    async fn mark_consumed(&self, resource: &ResourceRef, keys: &[String]) -> Result<(), ExecutorError>;

    /// True when this executor carries out a delete with an empty id by finding the object by its resource
    /// ([`Operation::identity`], [`crate::provider::Provider::find`]). Only then does a planner submit one.
    /// The default is false: the Argo executor's workflows call the Go provider-service contract, which has no
    /// lookup (and its Workflows keep every outcome durable, so no id is lost there).
    fn finds_by_identity(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_use_lowercase_wire_names() {
        for (kind, name) in
            ResourceKind::ALL
                .into_iter()
                .zip(["pipeline", "run", "runschedule", "experiment"])
        {
            assert_eq!(kind.as_str(), name);
            assert_eq!(name.parse::<ResourceKind>().unwrap(), kind);
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(name));
        }
        assert!("Pipeline".parse::<ResourceKind>().is_err());
    }

    #[test]
    fn executor_is_object_safe() {
        fn takes(_: Option<std::sync::Arc<dyn Executor>>) {}
        takes(None);
    }
}
