//! The generic state machine of Pipeline, Run, RunSchedule and Experiment (docs/controllers.md, "The state machine
//! of Pipelines, Runs, RunSchedules and Experiments"), with retries, deletion from every state and `Pending`
//! (decision 0002, "Retries", "Deletion and missing providers"; docs/controllers.md, "Runs").
//!
//! Here: the commands, the observed inputs and the retry state. The state machine is `machine`, the planners of
//! Pipeline, RunSchedule and Experiment are `planners`, condition and Event texts are `texts`.
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

mod machine;
mod planners;
mod texts;

pub(crate) use machine::{Machine, Out, current_status};
pub use planners::{plan_experiment, plan_pipeline, plan_run_schedule};
pub use texts::{event_message, messages, permanent_suffix, state_event, transient_suffix};

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
