//! Pure reconcile planning: `plan(&Observed) -> Plan` for every controller (docs/controllers.md; decision 0002).
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

/// Event reasons: the Go operator's, and this project's own (docs/platform-guide.md, "Event reasons").
pub mod reasons {
    /// The object reached `Succeeded` or `Deleted` (and optional-parameter notices).
    pub const SYNCED: &str = "Synced";
    /// The object reached `Failed`.
    pub const SYNC_FAILED: &str = "SyncFailed";
    /// The object is `Creating`, `Updating`, `Deleting` or `Pending`.
    pub const SYNCING: &str = "Syncing";
    /// The finalizer was released because the Provider no longer exists (decision 0002).
    pub const PROVIDER_GONE: &str = "ProviderGone";
}

/// The `Synchronized` condition for a state (docs/concepts.md, "Status").
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

/// The kstatus condition types written beside `Synchronized`, so that GitOps tools (Flux, Argo CD, `kubectl wait
/// --for=condition=Ready`, cli-utils) read a resource's health without knowing this API (docs/gitops.md).
pub mod kstatus {
    /// `True` once the resource is `Succeeded`; `False` (reason: the state) otherwise.
    pub const READY: &str = "Ready";
    /// Present (`True`) only while the operator is still working on the resource: `Unknown`, `Creating`,
    /// `Updating`, `Deleting`. Not `Pending`: that waits for input (a pipeline version, a dependency's first
    /// success) that may take days, and a reconciling resource would hold a GitOps sync (the Argo CD health check
    /// reads it as Suspended for the same reason; docs/gitops.md).
    pub const RECONCILING: &str = "Reconciling";
    /// Present (`True`) only when the resource is `Failed`: the operator cannot make progress until something
    /// changes (a transient failure is still retried; the message says which).
    pub const STALLED: &str = "Stalled";
}

/// Every condition a synchronization state implies: `Synchronized` first, then the kstatus ones ([`kstatus`]).
pub fn state_conditions(
    state: SynchronizationState,
    message: &str,
    observed_generation: i64,
    now: &Time,
) -> Vec<Condition> {
    use SynchronizationState as St;
    let synchronized = synchronized_condition(state, message, observed_generation, now);
    let with = |type_: &str, status: &str| Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        ..synchronized.clone()
    };
    let ready = with(
        kstatus::READY,
        if state == St::Succeeded { "True" } else { "False" },
    );
    let mut conditions = vec![synchronized.clone(), ready];
    match state {
        St::Failed => conditions.push(with(kstatus::STALLED, "True")),
        St::Succeeded | St::Deleted | St::Pending => {}
        _ => conditions.push(with(kstatus::RECONCILING, "True")),
    }
    conditions
}

/// Merges the conditions of `state` ([`state_conditions`]) into `conditions`, each with [`merge_condition`], and
/// removes a `Reconciling` or `Stalled` condition the state no longer implies (kstatus: abnormal-true conditions
/// are present only while true). Other condition types (e.g. `Readable`) stay.
pub fn merge_state_conditions(
    conditions: &mut Vec<Condition>,
    state: SynchronizationState,
    message: &str,
    observed_generation: i64,
    now: &Time,
) {
    let wanted = state_conditions(state, message, observed_generation, now);
    conditions.retain(|c| {
        ![kstatus::RECONCILING, kstatus::STALLED].contains(&c.type_.as_str())
            || wanted.iter().any(|w| w.type_ == c.type_)
    });
    for condition in wanted {
        merge_condition(conditions, condition);
    }
}

/// Sets `observedGeneration` on the conditions [`state_conditions`] writes (a status write that changes no state).
pub fn observe_generation(conditions: &mut [Condition], observed_generation: i64) {
    for c in conditions.iter_mut().filter(|c| {
        [
            SYNCHRONIZED,
            kstatus::READY,
            kstatus::RECONCILING,
            kstatus::STALLED,
        ]
        .contains(&c.type_.as_str())
    }) {
        c.observed_generation = Some(observed_generation);
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
