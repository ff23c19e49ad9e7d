//! Pure reconcile planning: `plan(&Observed) -> Plan` for every controller (SPEC 3, as amended by SPEC 12).
//!
//! A controller in `kfp-operator` gathers what it observed (the resource, its provider, outcomes of submitted
//! operations, dependencies, and `now`), asks the kind's planner for a [`Plan`], and applies its commands in order,
//! stopping at the first error. All decisions live here; the controllers hold no state logic. Each controller has its
//! own command type, because what it can do differs (submit provider operations, create child objects, apply a
//! Deployment); what every command type shares is here: events, conditions and requeueing.

pub mod completion;
pub mod dependencies;
pub mod failure;
pub mod provider;
pub mod run_configuration;
pub mod unreadable;

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::resources::v1beta1::SYNCHRONIZED;
use crate::values::SynchronizationState;

/// What a controller must do, in order, and when to look again.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<C> {
    /// The commands, in order; the first that fails stops the rest.
    pub commands: Vec<C>,
    /// Reconcile again after this long even if nothing changes (retries, TTLs, waiting on a workflow).
    pub requeue_after: Option<Duration>,
}

impl<C> Default for Plan<C> {
    fn default() -> Self {
        Self {
            commands: Vec::new(),
            requeue_after: None,
        }
    }
}

impl<C> Plan<C> {
    /// A plan of `commands` with no requeue.
    pub fn new(commands: Vec<C>) -> Self {
        Self {
            commands,
            requeue_after: None,
        }
    }

    /// The plan, reconciled again after `after`.
    pub fn requeue_after(mut self, after: Duration) -> Self {
        self.requeue_after = Some(after);
        self
    }
}

/// `Normal` or `Warning`, as Kubernetes Events have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// An Event of type `Normal`.
    Normal,
    /// An Event of type `Warning`.
    Warning,
}

impl EventType {
    /// `Normal` or `Warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// A Kubernetes Event to record on the reconciled object (reporting component `kfp-operator`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub type_: EventType,
    /// The reason (`Synced`, `SyncFailed`, ...).
    pub reason: String,
    /// The message.
    pub message: String,
}

/// Event reasons (SPEC 3.1, and this project's own).
pub mod reasons {
    /// The object reached `Succeeded` or `Deleted` (and optional-parameter notices).
    pub const SYNCED: &str = "Synced";
    /// The object reached `Failed`.
    pub const SYNC_FAILED: &str = "SyncFailed";
    /// The object is `Creating`, `Updating`, `Deleting` or `Pending`.
    pub const SYNCING: &str = "Syncing";
    /// SPEC 12.2: the finalizer was released because the Provider no longer exists.
    pub const PROVIDER_GONE: &str = "ProviderGone";
}

/// The `Synchronized` condition for a state (SPEC 1.2).
pub fn synchronized_condition(
    state: SynchronizationState,
    message: &str,
    observed_generation: i64,
    now: &Time,
) -> Condition {
    Condition {
        type_: SYNCHRONIZED.to_string(),
        status: state.condition_status().to_string(),
        reason: state.as_str().to_string(),
        message: message.to_string(),
        observed_generation: Some(observed_generation),
        last_transition_time: now.clone(),
    }
}

/// Puts `new` into `conditions`, replacing a condition of the same type only if its reason, status, message or
/// observedGeneration changed, so `lastTransitionTime` moves only on a real change.
pub fn merge_condition(conditions: &mut Vec<Condition>, new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            let changed = existing.reason != new.reason
                || existing.status != new.status
                || existing.message != new.message
                || existing.observed_generation != new.observed_generation;
            if changed {
                *existing = new;
            }
        }
        None => conditions.push(new),
    }
}

pub mod definition;
pub mod generic;
pub mod run;
