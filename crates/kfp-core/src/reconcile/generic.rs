//! The generic state machine of Pipeline, Run, RunSchedule and Experiment (docs/controllers.md, "The state machine
//! of Pipelines, Runs, RunSchedules and Experiments"), with retries, deletion from every state and `Pending`
//! (decision 0002, "Retries", "Deletion and missing providers"; docs/controllers.md, "Runs").
//!
//! # Retry state
//! The attempt count of a transient failure must survive reconciles, and `plan` is pure, so it is kept on the object
//! in the annotation [`RETRY_ANNOTATION`] as JSON `{"version","attempt","nextAttemptAt"}` ([`RetryState`]), written
//! by [`ResourceCommand::SetRetry`] (a metadata merge patch, planned before the status write). It needs no CRD
//! schema change, is readable with `kubectl`, and is ignored once the spec (the version) changes. The condition
//! message says, in words, whether a failure is permanent or transient and when the next attempt is.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Serialize};

use super::definition::{self, BuildError};
use super::{Event, EventType, Plan, merge_state_conditions, observe_generation, reasons};
use crate::definitions::ProviderOutput;
use crate::executor::{
    Action, FailureClass, Operation, OperationDefinition, OperationOutcome, OutcomeState, ResourceKind,
    ResourceRef,
};
use crate::resources::FINALIZER;
use crate::resources::v1beta1::{
    Conditions, Experiment, Pipeline, Provider, ProviderAndId, RunSchedule, RunStatus, Status,
};
use crate::values::{NamespacedName, SynchronizationState};
use crate::version;

/// Annotation holding the [`RetryState`] of a resource whose last operation failed transiently.
pub const RETRY_ANNOTATION: &str = "pipelines.kubeflow.org/retry";

/// First retry delay (decision 0002, "Retries"): [`super::failure::OPERATION_RETRY`]'s.
pub const RETRY_FIRST: Duration = super::failure::OPERATION_RETRY.initial;
/// Longest retry delay (decision 0002, "Retries"): [`super::failure::OPERATION_RETRY`]'s.
pub const RETRY_CAP: Duration = super::failure::OPERATION_RETRY.max;
/// How soon to look again for a resource whose Provider cannot be loaded (the Go operator's requeue).
pub const PROVIDER_MISSING_REQUEUE: Duration = Duration::from_secs(30);

/// Persisted retry bookkeeping (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryState {
    /// The resource version the failed operation was for; a different version starts afresh.
    pub version: String,
    /// Consecutive transient failures, starting at 1.
    pub attempt: u32,
    /// When the next attempt is due.
    pub next_attempt_at: Time,
}

impl RetryState {
    /// Reads the annotation; a missing or unreadable one means no retry is scheduled.
    pub fn from_meta(meta: &ObjectMeta) -> Option<Self> {
        let raw = meta.annotations.as_ref()?.get(RETRY_ANNOTATION)?;
        serde_json::from_str(raw).ok()
    }

    /// The annotation value.
    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The delay before retry number `attempt` (1-based): 10 s doubling up to 10 min, minus up to 10 % jitter derived
/// deterministically from `seed` (the object's uid or name) and the attempt, so objects failing together spread out.
pub fn retry_delay(attempt: u32, seed: &str) -> Duration {
    let base =
        u64::try_from(super::failure::OPERATION_RETRY.ceiling(attempt).as_millis()).unwrap_or(u64::MAX);
    // FNV-1a: stable across platforms and releases, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed.bytes().chain(attempt.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Duration::from_millis(base - base * (hash % 100) / 1000)
}

/// The provider delete for a resource Kubernetes deleted while it still carried [`FINALIZER`] (a DELETE racing the
/// finalizer patch, kubernetes#77988), given its last status's provider id, its settled outcomes and whether the
/// executor finds objects by identity: by the recorded id, else by the id a finished create returned, else by
/// identity (an empty id); `None` when nothing can be done (no id and no lookup).
pub fn bypassed_delete(
    recorded_id: &str,
    outcomes: &[OperationOutcome],
    finds_by_identity: bool,
) -> Option<Action> {
    let created = || {
        outcomes.iter().find_map(|o| match &o.state {
            OutcomeState::Succeeded { output: Ok(output) } if !output.id.is_empty() => {
                Some(output.id.clone())
            }
            _ => None,
        })
    };
    let id = if recorded_id.is_empty() {
        created().unwrap_or_default()
    } else {
        recorded_id.to_string()
    };
    (!id.is_empty() || finds_by_identity).then_some(Action::Delete { id })
}

/// What a Pipeline, Run, RunSchedule or Experiment controller must do. `S` is the kind's status type.
// A plan holds a handful of commands; boxing the operation would only add noise to every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceCommand<S> {
    /// Add [`FINALIZER`] (full object update).
    AddFinalizer,
    /// Set (`Some`) or remove (`None`) the [`RETRY_ANNOTATION`] (metadata merge patch).
    SetRetry(Option<RetryState>),
    /// Replace the status (status subresource), then record the event if any.
    SetStatus {
        /// The new status.
        status: S,
        /// The Event recording the change, if any.
        event: Option<Event>,
    },
    /// Hand an operation to the executor.
    Submit(Operation),
    /// Tell the executor these outcomes were acted on.
    MarkConsumed {
        /// The outcomes' keys.
        keys: Vec<String>,
    },
    /// Record an Event on the object.
    RecordEvent(Event),
    /// Remove [`FINALIZER`]; the object goes away.
    RemoveFinalizer,
    /// Delete the object itself (the Run completion TTL, docs/controllers.md, "Runs").
    DeleteResource,
}

/// What a controller observed for one reconcile of a Pipeline, RunSchedule or Experiment (a Run adds
/// [`super::run::RunInputs`]).
#[derive(Debug, Clone)]
pub struct Observed<'a, R> {
    /// The object.
    pub resource: &'a R,
    /// The Provider named by `spec.provider`; `None` when it does not exist (any other load error: do not plan).
    pub provider: Option<&'a Provider>,
    /// The executor's unconsumed outcomes for this resource.
    pub outcomes: &'a [OperationOutcome],
    /// The current time (planning is pure: the controller passes it in).
    pub now: Time,
    /// The executor can find a provider object by its resource when the id was lost
    /// ([`crate::executor::Executor::finds_by_identity`]): a delete with no recorded id after a create that may
    /// have reached the provider then looks it up instead of leaving it behind.
    pub finds_by_identity: bool,
}

/// Access to the shared [`Status`] inside a kind's status.
pub trait StatusLike: Clone + Default {
    /// The shared status.
    fn base(&self) -> &Status;
    /// The shared status, to change.
    fn base_mut(&mut self) -> &mut Status;
}

impl StatusLike for Status {
    fn base(&self) -> &Status {
        self
    }
    fn base_mut(&mut self) -> &mut Status {
        self
    }
}

impl StatusLike for RunStatus {
    fn base(&self) -> &Status {
        &self.status
    }
    fn base_mut(&mut self) -> &mut Status {
        &mut self.status
    }
}

/// What building a create/update definition produced.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Built {
    Ready(OperationDefinition),
    /// `Pending`: not buildable yet; the message names what is missing (docs/controllers.md, "Runs").
    Pending(String),
}

/// The event message (docs/controllers.md, "Events and metrics"): `<State> [version: "<v>"]: <message>`, the bracket
/// only with a version and the colon part only with a message.
pub fn event_message(state: SynchronizationState, version: &str, message: &str) -> String {
    let mut text = state.as_str().to_string();
    if !version.is_empty() {
        text.push_str(&format!(" [version: \"{version}\"]"));
    }
    if !message.is_empty() {
        text.push_str(": ");
        text.push_str(message);
    }
    text
}

/// The event for a status write (docs/controllers.md, "Events and metrics").
pub fn state_event(state: SynchronizationState, version: &str, message: &str) -> Event {
    let (type_, reason) = match state {
        SynchronizationState::Failed => (EventType::Warning, reasons::SYNC_FAILED),
        SynchronizationState::Succeeded | SynchronizationState::Deleted => {
            (EventType::Normal, reasons::SYNCED)
        }
        _ => (EventType::Normal, reasons::SYNCING),
    };
    Event {
        type_,
        reason: reason.to_string(),
        message: event_message(state, version, message),
    }
}

/// Condition messages of the state machine (docs/platform-guide.md, "Condition messages").
pub mod messages {
    /// The Provider that holds the object is not the one it names.
    pub const PROVIDER_CHANGED: &str = "the provider has changed";
    /// `Creating` without a version (a status edited by hand).
    pub const CREATING_EMPTY_VERSION: &str = "creating resource with empty version";
    /// `Updating` without a version or provider id (a status edited by hand).
    pub const UPDATING_EMPTY_VERSION_OR_ID: &str = "updating resource with empty version or providerId";
    /// The workflow finished without a readable provider answer.
    pub const UNREADABLE_OUTPUT: &str = "could not retrieve workflow output";
    /// A create or update answered no id.
    pub const ID_EMPTY: &str = "id was empty";
    /// A delete answered an id.
    pub const ID_NOT_EMPTY: &str = "id should be empty";
    /// The operation failed (the provider's or the workflow's message follows).
    pub const OPERATION_FAILED: &str = "operation failed";
    /// No operation is known for the in-flight state (the executor lost it).
    pub const PROGRESS_UNKNOWN: &str = "operation progress unknown";
}

/// Text appended to a failure message (decision 0002, "Retries").
pub fn permanent_suffix() -> &'static str {
    " (permanent failure: waiting for a spec change)"
}

/// Text appended to a transient failure's message: the attempt and when the next one is (decision 0002, "Retries").
pub fn transient_suffix(attempt: u32, next: &Time) -> String {
    format!(
        " (transient failure, attempt {attempt}: next attempt at {})",
        next.0
    )
}

enum Awaited {
    Waiting,
    Success {
        id: String,
    },
    Failure {
        class: FailureClass,
        message: String,
        provider_id: Option<String>,
    },
}

/// One reconcile of the generic state machine.
pub(crate) struct Machine<'a> {
    pub kind: ResourceKind,
    pub meta: &'a ObjectMeta,
    pub spec_provider: &'a NamespacedName,
    pub provider: Option<&'a Provider>,
    pub outcomes: &'a [OperationOutcome],
    pub now: &'a Time,
    pub version: String,
    pub finds_by_identity: bool,
}

/// Commands under construction.
pub(crate) struct Out<S> {
    pub commands: Vec<ResourceCommand<S>>,
    pub requeue_after: Option<Duration>,
    status_set: bool,
}

impl<S> Out<S> {
    pub fn new() -> Self {
        Self {
            commands: Vec::new(),
            requeue_after: None,
            status_set: false,
        }
    }

    pub fn push(&mut self, command: ResourceCommand<S>) {
        if matches!(command, ResourceCommand::SetStatus { .. }) {
            self.status_set = true;
        }
        self.commands.push(command);
    }

    pub fn requeue(&mut self, after: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(after, |r| r.min(after)));
    }

    pub fn into_plan(self) -> Plan<ResourceCommand<S>> {
        Plan {
            commands: self.commands,
            requeue_after: self.requeue_after,
        }
    }
}

fn duration_until(now: &Time, then: &Time) -> Duration {
    let millis = then.0.as_millisecond().saturating_sub(now.0.as_millisecond());
    Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

fn time_after(now: &Time, after: Duration) -> Time {
    Time(now.0.checked_add(after).unwrap_or(now.0))
}

impl<'a> Machine<'a> {
    pub fn generation(&self) -> i64 {
        self.meta.generation.unwrap_or(0)
    }

    pub fn deleting(&self) -> bool {
        self.meta.deletion_timestamp.is_some()
    }

    pub fn has_finalizer(&self) -> bool {
        self.meta.finalizers.iter().flatten().any(|f| f == FINALIZER)
    }

    fn resource_ref(&self) -> ResourceRef {
        ResourceRef::new(
            self.kind,
            self.meta.namespace.clone().unwrap_or_default(),
            self.meta.name.clone().unwrap_or_default(),
        )
    }

    fn seed(&self) -> String {
        match &self.meta.uid {
            Some(uid) => uid.clone(),
            None => self.resource_ref().namespaced_name().to_string(),
        }
    }

    /// A status write with its condition, observedGeneration and event (docs/controllers.md, "The state machine of
    /// Pipelines, Runs, RunSchedules and Experiments").
    pub fn set_status<S: StatusLike>(
        &self,
        out: &mut Out<S>,
        current: &S,
        state: SynchronizationState,
        message: &str,
        mutate: impl FnOnce(&mut Status),
    ) {
        let mut status = current.clone();
        let generation = self.generation();
        let base = status.base_mut();
        mutate(base);
        base.observed_generation = generation;
        merge_state_conditions(&mut base.conditions, state, message, generation, self.now);
        let event = state_event(state, &base.version, message);
        out.push(ResourceCommand::SetStatus {
            status,
            event: Some(event),
        });
    }

    /// A status write that changes no state (dependency snapshots, completion marks): no event.
    pub fn set_status_quietly<S: StatusLike>(&self, out: &mut Out<S>, status: S) {
        let mut status = status;
        let generation = self.generation();
        let base = status.base_mut();
        base.observed_generation = generation;
        observe_generation(&mut base.conditions, generation);
        out.push(ResourceCommand::SetStatus { status, event: None });
    }

    /// When nothing writes the status but the generation moved, write it to record observedGeneration.
    pub fn finish<S: StatusLike>(&self, mut out: Out<S>, current: &S) -> Plan<ResourceCommand<S>> {
        // A finalizer patch wakes the next reconcile, which writes the status anyway (one write, not two).
        let finalizing = out.commands.iter().any(|c| {
            matches!(
                c,
                ResourceCommand::RemoveFinalizer | ResourceCommand::AddFinalizer
            )
        });
        if out.status_set || finalizing {
            return out.into_plan();
        }
        let base = current.base();
        let state = base.synchronization_state();
        let message = base.synchronized().map(|c| c.message.clone()).unwrap_or_default();
        // A status written before the kstatus conditions existed (an upgrade, the Go operator's objects) gets them
        // once, quietly, so GitOps tools do not read an old `Failed` resource as healthy.
        let lacks_kstatus = base.synchronized().is_some()
            && !base.conditions.iter().any(|c| c.type_ == super::kstatus::READY);
        if self.generation() != base.observed_generation {
            self.set_status(&mut out, current, state, &message, |_| {});
        } else if lacks_kstatus {
            let mut status = current.clone();
            let generation = self.generation();
            merge_state_conditions(
                &mut status.base_mut().conditions,
                state,
                &message,
                generation,
                self.now,
            );
            out.push(ResourceCommand::SetStatus { status, event: None });
        }
        out.into_plan()
    }

    /// Runs the state machine. `build` produces the create/update definition when one is needed.
    pub fn plan<S: StatusLike>(
        &self,
        current: &S,
        build: &mut dyn FnMut(&Provider) -> Result<Built, BuildError>,
    ) -> Plan<ResourceCommand<S>> {
        let mut out = Out::new();
        self.run(&mut out, current, build);
        self.finish(out, current)
    }

    pub fn run<S: StatusLike>(
        &self,
        out: &mut Out<S>,
        current: &S,
        build: &mut dyn FnMut(&Provider) -> Result<Built, BuildError>,
    ) {
        use SynchronizationState as St;
        let status = current.base();
        let state = status.synchronization_state();
        let id = status.provider.id.as_str();
        let deleting = self.deleting();
        let provider_changed =
            !status.provider.name.is_empty() && status.provider.name != *self.spec_provider;

        if deleting && !self.has_finalizer() {
            return;
        }
        // Without the provider the provider-side object cannot be deleted; let the object go (decision 0002,
        // "Deletion and missing providers").
        if deleting && (self.provider.is_none() || provider_changed) {
            let provider = if provider_changed {
                &status.provider.name
            } else {
                self.spec_provider
            };
            let message = if id.is_empty() {
                format!("the provider {provider} no longer exists; releasing the finalizer")
            } else {
                format!(
                    "the provider {provider} no longer exists; the provider-side resource with id \"{id}\" may be left behind"
                )
            };
            out.push(ResourceCommand::RecordEvent(Event {
                type_: EventType::Warning,
                reason: reasons::PROVIDER_GONE.to_string(),
                message,
            }));
            out.push(ResourceCommand::RemoveFinalizer);
            return;
        }
        let Some(provider) = self.provider else {
            out.requeue(PROVIDER_MISSING_REQUEUE);
            return;
        };
        if !deleting && !self.has_finalizer() {
            // The finalizer alone: nothing reaches the provider until a later reconcile sees it on the object. A
            // DELETE racing the finalizer patch can remove the object finalizer and all (kubernetes#77988); planning
            // the create in the same step left its provider object behind whenever the operator stopped before the
            // DELETED event (docs/reliability.md "Exactly once").
            out.push(ResourceCommand::AddFinalizer);
            return;
        }
        // The provider changed: the first row of the state table (docs/controllers.md, "The state machine of Pipelines,
        // Runs, RunSchedules and Experiments").
        if provider_changed {
            let message = status
                .synchronized()
                .map(|c| c.message.as_str())
                .unwrap_or_default();
            if state != St::Failed || message != messages::PROVIDER_CHANGED {
                self.set_status(out, current, St::Failed, messages::PROVIDER_CHANGED, |_| {});
            }
            return;
        }
        let retry = RetryState::from_meta(self.meta).filter(|r| r.version == self.version);

        match (deleting, state) {
            (_, St::Deleted) => {
                if deleting {
                    out.push(ResourceCommand::RemoveFinalizer);
                }
            }
            (_, St::Deleting) => self.await_delete(out, current, provider, retry.as_ref()),
            (true, St::Creating | St::Updating) => {
                // Let the operation in flight finish (decision 0002, "Deletion and missing providers"); the next
                // reconcile deletes.
                self.await_apply(out, current, state, retry.as_ref());
            }
            (true, St::Unknown | St::Succeeded | St::Failed | St::Pending) => {
                if id.is_empty() && state == St::Failed && self.finds_by_identity {
                    // A create may have reached the provider before its id was lost (a crash, an unknown
                    // outcome): delete by identity (docs/reliability.md "Exactly once").
                    self.submit_delete(out, current, provider, "", true);
                } else if id.is_empty() {
                    self.set_status(out, current, St::Deleted, "", |_| {});
                    out.push(ResourceCommand::RemoveFinalizer);
                } else {
                    self.submit_delete(out, current, provider, id, true);
                }
            }
            (false, St::Unknown | St::Pending) => {
                self.submit_apply(out, current, provider, St::Unknown, build)
            }
            (false, St::Succeeded | St::Failed) => {
                if status.version != self.version {
                    self.submit_apply(out, current, provider, state, build);
                } else if state == St::Failed
                    && let Some(retry) = retry
                {
                    if retry.next_attempt_at.0 <= self.now.0 {
                        self.submit_apply(out, current, provider, state, build);
                    } else {
                        out.requeue(duration_until(self.now, &retry.next_attempt_at));
                    }
                }
            }
            (false, St::Creating) => {
                if status.version.is_empty() {
                    self.set_status(out, current, St::Failed, messages::CREATING_EMPTY_VERSION, |_| {});
                } else {
                    self.await_apply(out, current, state, retry.as_ref());
                }
            }
            (false, St::Updating) => {
                if status.version.is_empty() || id.is_empty() {
                    self.set_status(
                        out,
                        current,
                        St::Failed,
                        messages::UPDATING_EMPTY_VERSION_OR_ID,
                        |_| {},
                    );
                } else {
                    self.await_apply(out, current, state, retry.as_ref());
                }
            }
        }
    }

    fn submit_apply<S: StatusLike>(
        &self,
        out: &mut Out<S>,
        current: &S,
        provider: &Provider,
        from: SynchronizationState,
        build: &mut dyn FnMut(&Provider) -> Result<Built, BuildError>,
    ) {
        use SynchronizationState as St;
        let version = self.version.clone();
        let id = current.base().provider.id.clone();
        match build(provider) {
            Err(error) => {
                if RetryState::from_meta(self.meta).is_some() {
                    out.push(ResourceCommand::SetRetry(None));
                }
                let message = format!("{error}{}", permanent_suffix());
                self.set_status(out, current, St::Failed, &message, |s| s.version = version);
            }
            Ok(Built::Pending(message)) => {
                let unchanged = current.base().synchronization_state() == St::Pending
                    && current
                        .base()
                        .synchronized()
                        .is_some_and(|c| c.message == message)
                    && current.base().version == version
                    && current.base().provider.name == *self.spec_provider;
                if !unchanged {
                    self.set_status(out, current, St::Pending, &message, |s| {
                        s.version = version;
                        self.name_provider(s);
                    });
                }
            }
            Ok(Built::Ready(definition)) => {
                let action = if id.is_empty() {
                    // From Unknown the status is reset to the version alone.
                    let reset = from == St::Unknown;
                    self.set_status(out, current, St::Creating, "", |s| {
                        if reset {
                            *s = Status {
                                conditions: std::mem::take(&mut s.conditions),
                                ..Default::default()
                            };
                        }
                        s.version = version;
                    });
                    Action::Create { definition }
                } else {
                    self.set_status(out, current, St::Updating, "", |s| s.version = version);
                    Action::Update { id, definition }
                };
                out.push(ResourceCommand::Submit(self.operation(action)));
            }
        }
    }

    fn submit_delete<S: StatusLike>(
        &self,
        out: &mut Out<S>,
        current: &S,
        _provider: &Provider,
        id: &str,
        write_status: bool,
    ) {
        if write_status {
            self.set_status(out, current, SynchronizationState::Deleting, "", |_| {});
        }
        out.push(ResourceCommand::Submit(
            self.operation(Action::Delete { id: id.to_string() }),
        ));
    }

    fn operation(&self, action: Action) -> Operation {
        Operation {
            resource: self.resource_ref(),
            provider: self.spec_provider.clone(),
            action,
            version: self.version.clone(),
            created: self.meta.creation_timestamp.clone(),
        }
    }

    /// Awaiting (docs/controllers.md, "The state machine of Pipelines, Runs, RunSchedules and Experiments"), for the
    /// outcomes of a create/update or a delete.
    fn awaited(&self, expect_id: bool) -> Awaited {
        if self.outcomes.iter().any(OperationOutcome::in_progress) {
            return Awaited::Waiting;
        }
        let latest = |succeeded: bool| {
            self.outcomes
                .iter()
                .filter(|o| matches!(o.state, OutcomeState::Succeeded { .. }) == succeeded)
                .max_by(|a, b| a.created.0.cmp(&b.created.0))
        };
        let transient = |message: &str| Awaited::Failure {
            class: FailureClass::Transient,
            message: message.to_string(),
            provider_id: None,
        };
        match (latest(true), latest(false)) {
            (Some(o), _) => match &o.state {
                OutcomeState::Succeeded { output: Err(_) } => transient(messages::UNREADABLE_OUTPUT),
                OutcomeState::Succeeded {
                    output: Ok(ProviderOutput { id, provider_error }),
                } => {
                    if !provider_error.is_empty() {
                        Awaited::Failure {
                            class: FailureClass::Transient,
                            message: provider_error.clone(),
                            provider_id: Some(id.clone()),
                        }
                    } else if expect_id && id.is_empty() {
                        transient(messages::ID_EMPTY)
                    } else if !expect_id && !id.is_empty() {
                        transient(messages::ID_NOT_EMPTY)
                    } else {
                        Awaited::Success { id: id.clone() }
                    }
                }
                _ => transient(messages::OPERATION_FAILED),
            },
            (
                None,
                Some(OperationOutcome {
                    state: OutcomeState::Failed { class, message },
                    ..
                }),
            ) => {
                let message = if message.is_empty() {
                    messages::OPERATION_FAILED.to_string()
                } else {
                    format!("{}: {message}", messages::OPERATION_FAILED)
                };
                Awaited::Failure {
                    class: *class,
                    message,
                    provider_id: None,
                }
            }
            _ => transient(messages::PROGRESS_UNKNOWN),
        }
    }

    fn mark_consumed<S>(&self, out: &mut Out<S>) {
        let keys: Vec<String> = self.outcomes.iter().map(|o| o.key.clone()).collect();
        if !keys.is_empty() {
            out.push(ResourceCommand::MarkConsumed { keys });
        }
    }

    /// Records a failure: the retry state and the message suffix of decision 0002, "Retries".
    fn failure_message<S>(
        &self,
        out: &mut Out<S>,
        class: FailureClass,
        message: &str,
        retry: Option<&RetryState>,
    ) -> String {
        match class {
            FailureClass::Permanent => {
                if RetryState::from_meta(self.meta).is_some() {
                    out.push(ResourceCommand::SetRetry(None));
                }
                format!("{message}{}", permanent_suffix())
            }
            FailureClass::Transient => {
                let attempt = retry.map_or(0, |r| r.attempt).saturating_add(1);
                let delay = retry_delay(attempt, &self.seed());
                let next = time_after(self.now, delay);
                out.push(ResourceCommand::SetRetry(Some(RetryState {
                    version: self.version.clone(),
                    attempt,
                    next_attempt_at: next.clone(),
                })));
                out.requeue(delay);
                format!("{message}{}", transient_suffix(attempt, &next))
            }
        }
    }

    fn clear_retry<S>(&self, out: &mut Out<S>) {
        if RetryState::from_meta(self.meta).is_some() {
            out.push(ResourceCommand::SetRetry(None));
        }
    }

    /// A `Pending` status names the Provider that will run the resource, so the PROVIDER column is not empty while
    /// it waits (issue 19); the id stays empty until the provider created it.
    pub fn name_provider(&self, status: &mut Status) {
        status.provider.name = self.spec_provider.clone();
    }

    fn await_apply<S: StatusLike>(
        &self,
        out: &mut Out<S>,
        current: &S,
        _state: SynchronizationState,
        retry: Option<&RetryState>,
    ) {
        let provider_name = self.spec_provider.clone();
        match self.awaited(true) {
            Awaited::Waiting => return,
            Awaited::Success { id } => {
                self.clear_retry(out);
                self.set_status(out, current, SynchronizationState::Succeeded, "", |s| {
                    s.provider = ProviderAndId {
                        name: provider_name,
                        id,
                    };
                });
            }
            Awaited::Failure {
                class,
                message,
                provider_id,
            } => {
                let message = self.failure_message(out, class, &message, retry);
                self.set_status(out, current, SynchronizationState::Failed, &message, |s| {
                    if let Some(id) = provider_id {
                        s.provider = ProviderAndId {
                            name: provider_name,
                            id,
                        };
                    }
                });
            }
        }
        self.mark_consumed(out);
    }

    /// Deleting: await the delete; on failure stay `Deleting` and retry with backoff (decision 0002, "Deletion and
    /// missing providers").
    fn await_delete<S: StatusLike>(
        &self,
        out: &mut Out<S>,
        current: &S,
        provider: &Provider,
        retry: Option<&RetryState>,
    ) {
        use SynchronizationState as St;
        let provider_name = self.spec_provider.clone();
        if self.outcomes.is_empty()
            && let Some(retry) = retry
        {
            // A failed delete waiting for its next attempt.
            if retry.next_attempt_at.0 <= self.now.0 {
                let id = current.base().provider.id.clone();
                if id.is_empty() && !self.finds_by_identity {
                    self.clear_retry(out);
                    self.set_status(out, current, St::Deleted, "", |_| {});
                    if self.deleting() {
                        out.push(ResourceCommand::RemoveFinalizer);
                    }
                } else {
                    self.submit_delete(out, current, provider, &id, false);
                }
            } else {
                out.requeue(duration_until(self.now, &retry.next_attempt_at));
            }
            return;
        }
        match self.awaited(false) {
            Awaited::Waiting => return,
            Awaited::Success { .. } => {
                self.clear_retry(out);
                self.set_status(out, current, St::Deleted, "", |s| {
                    s.provider = ProviderAndId {
                        name: provider_name,
                        id: String::new(),
                    };
                });
                if self.deleting() {
                    out.push(ResourceCommand::RemoveFinalizer);
                }
            }
            Awaited::Failure { message, .. } => {
                // A failed delete is always retried: it must not park in Deleting.
                let message = self.failure_message(out, FailureClass::Transient, &message, retry);
                self.set_status(out, current, St::Deleting, &message, |_| {});
            }
        }
        self.mark_consumed(out);
    }
}

fn status_of<S: StatusLike>(status: &Option<S>) -> std::borrow::Cow<'_, S> {
    match status {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(S::default()),
    }
}

pub(crate) fn current_status<S: StatusLike>(status: &Option<S>) -> std::borrow::Cow<'_, S> {
    status_of(status)
}

/// Plans a Pipeline (docs/controllers.md, "The state machine of Pipelines, Runs, RunSchedules and Experiments").
pub fn plan_pipeline(observed: &Observed<'_, Pipeline>) -> Plan<ResourceCommand<Status>> {
    let pipeline = observed.resource;
    let stored = pipeline.status.as_ref().map_or("", |s| s.version.as_str());
    let version = version::current(stored, |a| version::pipeline_version(&pipeline.spec, a));
    let machine = Machine {
        finds_by_identity: observed.finds_by_identity,
        kind: ResourceKind::Pipeline,
        meta: &pipeline.metadata,
        spec_provider: &pipeline.spec.provider,
        provider: observed.provider,
        outcomes: observed.outcomes,
        now: &observed.now,
        version,
    };
    let current = current_status(&pipeline.status);
    let v = machine.version.clone();
    machine.plan(current.as_ref(), &mut |provider| {
        definition::pipeline_definition(pipeline, provider, &v).map(Built::Ready)
    })
}

/// Plans a RunSchedule (docs/controllers.md, "The state machine of Pipelines, Runs, RunSchedules and Experiments").
pub fn plan_run_schedule(observed: &Observed<'_, RunSchedule>) -> Plan<ResourceCommand<Status>> {
    let rs = observed.resource;
    let machine = Machine {
        finds_by_identity: observed.finds_by_identity,
        kind: ResourceKind::RunSchedule,
        meta: &rs.metadata,
        spec_provider: &rs.spec.provider,
        provider: observed.provider,
        outcomes: observed.outcomes,
        now: &observed.now,
        version: version::current(rs.status.as_ref().map_or("", |s| s.version.as_str()), |a| {
            version::run_schedule_version(&rs.spec, a)
        }),
    };
    let current = current_status(&rs.status);
    let v = machine.version.clone();
    machine.plan(current.as_ref(), &mut |provider| {
        definition::check_allowed_namespace(&rs.metadata, provider)?;
        Ok(Built::Ready(OperationDefinition::RunSchedule(
            definition::run_schedule_definition(rs, &v),
        )))
    })
}

/// Plans an Experiment (docs/controllers.md, "The state machine of Pipelines, Runs, RunSchedules and Experiments").
pub fn plan_experiment(observed: &Observed<'_, Experiment>) -> Plan<ResourceCommand<Status>> {
    let experiment = observed.resource;
    let machine = Machine {
        finds_by_identity: observed.finds_by_identity,
        kind: ResourceKind::Experiment,
        meta: &experiment.metadata,
        spec_provider: &experiment.spec.provider,
        provider: observed.provider,
        outcomes: observed.outcomes,
        now: &observed.now,
        version: version::current(
            experiment.status.as_ref().map_or("", |s| s.version.as_str()),
            |a| version::experiment_version(&experiment.spec, a),
        ),
    };
    let current = current_status(&experiment.status);
    let v = machine.version.clone();
    machine.plan(current.as_ref(), &mut |provider| {
        definition::check_allowed_namespace(&experiment.metadata, provider)?;
        Ok(Built::Ready(OperationDefinition::Experiment(
            definition::experiment_definition(experiment, &v),
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_1_backoff_doubles_from_10s_to_a_10min_cap_with_bounded_jitter() {
        for (attempt, base) in [(1u32, 10u64), (2, 20), (3, 40), (4, 80), (7, 600), (40, 600)] {
            let d = retry_delay(attempt, "uid-1");
            assert!(
                d <= Duration::from_secs(base) && d > Duration::from_secs(base) * 9 / 10,
                "{attempt}: {d:?}"
            );
            assert_eq!(d, retry_delay(attempt, "uid-1"), "deterministic");
        }
        assert_ne!(
            retry_delay(3, "uid-1"),
            retry_delay(3, "uid-2"),
            "jitter spreads objects"
        );
    }

    #[test]
    fn a_resource_deleted_past_its_finalizer_is_deleted_by_the_best_id_known() {
        let finished = |id: &str| OperationOutcome {
            key: "k".into(),
            created: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            state: OutcomeState::Succeeded {
                output: Ok(ProviderOutput {
                    id: id.into(),
                    provider_error: String::new(),
                }),
            },
        };
        let delete = |id: &str| Some(Action::Delete { id: id.into() });
        assert_eq!(bypassed_delete("rec", &[finished("out")], false), delete("rec"));
        assert_eq!(bypassed_delete("", &[finished("out")], false), delete("out"));
        assert_eq!(bypassed_delete("", &[finished("")], true), delete(""));
        assert_eq!(bypassed_delete("", &[], false), None);
    }

    #[test]
    fn spec_3_1_event_message_format() {
        assert_eq!(
            event_message(SynchronizationState::Succeeded, "v1", ""),
            "Succeeded [version: \"v1\"]"
        );
        assert_eq!(
            event_message(SynchronizationState::Failed, "", "boom"),
            "Failed: boom"
        );
        assert_eq!(
            event_message(SynchronizationState::Creating, "v", "m"),
            "Creating [version: \"v\"]: m"
        );
    }
}
