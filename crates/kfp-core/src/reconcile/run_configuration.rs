//! RunConfiguration planning (docs/controllers.md, "RunConfigurations"; decision 0002, "RunConfigurations").
//!
//! A RunConfiguration has no finalizer and no workflows: it owns RunSchedules (one per `triggers.schedules` entry)
//! and creates Runs when a trigger fires. [`plan`] decides, in this order:
//!
//! 1. being deleted -> nothing (owned RunSchedules and Runs are garbage collected through their ownerReferences);
//! 2. `status.provider` set and different from `spec.run.provider` -> `Failed` "the provider has changed";
//! 3. a cron expression in `triggers.schedules` that does not parse -> `Failed` with the parser's message;
//! 4. a new observed pipeline version -> write `status.dependencies.pipeline.version`, stop;
//! 5. a new dependency snapshot -> write `status.dependencies.runConfigurations`, stop;
//! 6. parameters that cannot be resolved -> `Pending` "Unable to resolve parameters: `<err>`" (as a Run), stop;
//! 7. triggers changed -> maybe create a Run, write `status.triggers`, stop;
//! 8. replace RunSchedules that differ from the desired ones, then write the aggregated state.
//!
//! Steps that write status and stop rely on the RunConfiguration's own watch (a status write is a change) to be
//! reconciled again; the controller must not filter RunConfiguration events by generation.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};

use crate::definitions::TriggerIndicator;
use crate::reconcile::dependencies::{
    PipelineObservation, dependency_key, observed_pipeline_version, resolve_parameters,
    snapshot_run_configurations,
};
use crate::reconcile::{Event, EventType, Plan, merge_state_conditions, reasons};
use crate::resources::labels;
use crate::resources::v1beta1::{
    Conditions, OnChangeType, Run, RunConfiguration, RunConfigurationStatus, RunSchedule, RunScheduleSpec,
    RunSpec, TriggeredRunReference, TriggersStatus,
};
use crate::values::{NamedValue, NamespacedName, PipelineIdentifier, SynchronizationState};
use crate::version;

/// Everything the RunConfiguration planner looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The RunConfiguration, with metadata (name, namespace, uid, generation, deletionTimestamp), spec and status.
    pub run_configuration: RunConfiguration,
    /// The Pipeline `<rc namespace>/<spec.run.pipeline.name>`; `None` when it does not exist. Not read when
    /// `spec.run.pipeline` pins a version.
    pub pipeline: Option<PipelineObservation>,
    /// Status of every referenced RunConfiguration that exists (parameter and trigger references), keyed by
    /// `namespace/name`.
    pub run_configurations: BTreeMap<String, RunConfigurationStatus>,
    /// RunSchedules controlled by this RunConfiguration.
    pub run_schedules: Vec<RunSchedule>,
    /// Runs controlled by this RunConfiguration.
    pub runs: Vec<Run>,
    /// The current time.
    pub now: Time,
}

/// What the RunConfiguration controller does, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Replace the status subresource, then record `event` if any.
    SetStatus {
        /// The new status.
        status: RunConfigurationStatus,
        /// The Event recording the change, if any.
        event: Option<Event>,
    },
    /// Record an Event on the RunConfiguration.
    RecordEvent(Event),
    /// Create this RunSchedule (it has `generateName`, namespace and a controller ownerReference).
    CreateRunSchedule(RunSchedule),
    /// Delete the owned RunSchedule of this name (in the RunConfiguration's namespace).
    DeleteRunSchedule {
        /// The RunSchedule's name.
        name: String,
    },
    /// Create this Run (it has `generateName`, namespace, labels and a controller ownerReference).
    CreateRun(Run),
}

/// Condition message while RunSchedules are being replaced or are not yet synchronised.
pub const WAITING_FOR_RUN_SCHEDULES: &str =
    "Waiting for all dependant runschedules to be in a state of Succeeded";
/// Condition message when `status.provider` differs from `spec.run.provider`.
pub const PROVIDER_CHANGED: &str = "the provider has changed";

/// Trigger types (label `pipelines.kubeflow.org/trigger-type`, and the provider's trigger indicator).
pub mod trigger_types {
    /// A new pipeline version (`triggers.onChange: [pipeline]`).
    pub const ON_CHANGE_PIPELINE: &str = "onChangePipeline";
    /// A change of `spec.run` (`triggers.onChange: [runSpec]`).
    pub const ON_CHANGE_RUN_SPEC: &str = "onChangeRunSpec";
    /// A new succeeded run of a RunConfiguration in `triggers.runConfigurations`.
    pub const RUN_CONFIGURATION: &str = "runConfiguration";
    /// A RunSchedule's cron schedule.
    pub const SCHEDULE: &str = "schedule";
}

/// Plans one reconcile of a RunConfiguration (see the module documentation for the steps).
pub fn plan(observed: &Observed) -> Plan<Command> {
    let rc = &observed.run_configuration;
    if rc.metadata.deletion_timestamp.is_some() {
        return Plan::default();
    }
    let spec = &rc.spec;
    let status = rc.status.clone().unwrap_or_default();
    let namespace = rc.metadata.namespace.clone().unwrap_or_default();

    if !status.provider.is_empty() && status.provider != spec.run.provider {
        let provider = status.provider.clone();
        return Plan::new(conclude(
            observed,
            &status,
            provider,
            SynchronizationState::Failed,
            PROVIDER_CHANGED,
        ));
    }

    for (index, schedule) in spec.triggers.schedules.iter().enumerate() {
        if let Err(error) = schedule.cron_expression.validate() {
            let message = format!("spec.triggers.schedules[{index}].cronExpression: {error}");
            let provider = spec.run.provider.clone();
            return Plan::new(conclude(
                observed,
                &status,
                provider,
                SynchronizationState::Failed,
                &message,
            ));
        }
    }

    let pipeline_version = observed_pipeline_version(
        &spec.run.pipeline,
        observed.pipeline.as_ref(),
        &status.dependencies.pipeline.version,
    );
    if pipeline_version != status.dependencies.pipeline.version {
        let mut new = status;
        new.dependencies.pipeline.version = pipeline_version;
        return Plan::new(vec![Command::SetStatus {
            status: new,
            event: None,
        }]);
    }

    let snapshot = snapshot_run_configurations(
        &spec.run.parameters,
        &spec.triggers.run_configurations,
        &namespace,
        |key| {
            observed
                .run_configurations
                .get(key)
                .map(|s| &s.latest_runs.succeeded)
        },
    );
    if snapshot != status.dependencies.run_configurations {
        let mut new = status;
        new.dependencies.run_configurations = snapshot;
        return Plan::new(vec![Command::SetStatus {
            status: new,
            event: None,
        }]);
    }

    // `Pending`, as a Run without a pipeline version, for a RunConfiguration whose Pipeline exists but has no succeeded
    // version yet (typically both applied at once): nothing is started and no RunSchedule made until it has one. Firing
    // on the run spec at once gave a floating Run, then a second, pinned Run and a replaced RunSchedule when the
    // version came (issue 17). A Pipeline that is not a resource at all keeps the Go operator's behaviour: the provider
    // resolves the name itself (a pipeline registered by other means).
    let pipeline_in_flight = observed
        .pipeline
        .as_ref()
        .is_some_and(|p| p.state != SynchronizationState::Succeeded);
    if status.dependencies.pipeline.version.is_empty() && pipeline_in_flight {
        let message = format!(
            "waiting for pipeline '{}' to have a succeeded version",
            NamespacedName::new(namespace.clone(), spec.run.pipeline.name.clone())
        );
        return pending(observed, &status, &namespace, &message);
    }

    // The same when the Pipeline resource does not exist yet but the RunConfiguration is new: a folder applied at
    // once may create the RunConfiguration first. For `PIPELINE_ARRIVAL_GRACE` after its creation it waits for the
    // Pipeline (whose arrival wakes it); after that a Pipeline that is not a resource is resolved by the provider
    // as above (docs/decisions/0002, "One Run for one change").
    if let Some((wait, until)) = pipeline_arrival_wait(observed, &status) {
        let message = format!(
            "waiting for pipeline '{}' {ARRIVAL_WAIT}{until}; then the provider resolves the name)",
            NamespacedName::new(namespace.clone(), spec.run.pipeline.name.clone()),
        );
        let mut plan = pending(observed, &status, &namespace, &message);
        plan.requeue_after = Some(wait);
        return plan;
    }

    let exists = |key: &str| observed.run_configurations.contains_key(key);
    let parameters = match resolve_parameters(&spec.run.parameters, &namespace, &status.dependencies, exists)
    {
        Ok(resolved) => resolved.values,
        Err(error) => {
            // `Pending`, as for Runs: parameters that cannot be resolved yet (a dependency never
            // succeeded or lacks the artifact) make the RunConfiguration `Pending`, naming what is missing;
            // nothing is created until they resolve.
            let message = format!("Unable to resolve parameters: {error}");
            return pending(observed, &status, &namespace, &message);
        }
    };

    if let Some(commands) = sync_with_runs(observed, &status, &namespace) {
        return Plan::new(commands);
    }

    sync_status(observed, &status, &namespace, parameters)
}

/// True when the dependency `key`'s latest succeeded run ended after the RunConfiguration was created (decision
/// 0002, "RunConfigurations"): such a success is a trigger even when the dependency is first seen.
/// What the `Pending` message of a RunConfiguration waiting for its Pipeline to arrive says before the deadline.
const ARRIVAL_WAIT: &str = "to exist (until ";

/// Whether the RunConfiguration is `Pending` only until its Pipeline arrives or [`PIPELINE_ARRIVAL_GRACE`] ends: a
/// wait that ends by itself, unlike the other `Pending` states (a tool waiting for resources to settle, such as
/// `kfp-operator local`, waits on).
pub fn awaits_pipeline_arrival(status: &RunConfigurationStatus) -> bool {
    status.synchronization_state() == SynchronizationState::Pending
        && status
            .synchronized()
            .is_some_and(|c| c.message.contains(ARRIVAL_WAIT))
}

/// How long a new RunConfiguration waits for a Pipeline resource it names before the provider resolves the name.
pub const PIPELINE_ARRIVAL_GRACE: Duration = Duration::from_secs(10);

/// The time left to wait for the Pipeline resource and when the wait ends: `Some` while nothing pins the pipeline
/// version, the Pipeline does not exist, and the RunConfiguration was created less than [`PIPELINE_ARRIVAL_GRACE`]
/// ago.
fn pipeline_arrival_wait(observed: &Observed, status: &RunConfigurationStatus) -> Option<(Duration, String)> {
    let rc = &observed.run_configuration;
    if observed.pipeline.is_some()
        || !rc.spec.run.pipeline.version.is_empty()
        || !status.dependencies.pipeline.version.is_empty()
    {
        return None;
    }
    let until = rc
        .metadata
        .creation_timestamp
        .as_ref()?
        .0
        .checked_add(PIPELINE_ARRIVAL_GRACE)
        .ok()?;
    let left = observed.now.0.duration_until(until);
    (left.is_positive()).then(|| {
        let left = Duration::try_from(left).unwrap_or(PIPELINE_ARRIVAL_GRACE);
        (left, until.to_string())
    })
}

fn succeeded_since_creation(observed: &Observed, key: &str) -> bool {
    let created = observed.run_configuration.metadata.creation_timestamp.as_ref();
    let ended = observed
        .run_configurations
        .get(key)
        .and_then(|d| d.latest_runs.succeeded.run_end_time.as_ref());
    matches!((ended, created), (Some(ended), Some(created)) if ended.0 > created.0)
}

/// `Pending` with `message`, creating nothing.
///
/// A dependency triggers when its provider id differs from the one last seen. A dependency must still be *seen* while
/// the RunConfiguration waits (typically: it never succeeded), or its first success would only record a baseline and
/// never trigger. Only dependencies not yet seen are recorded: a change to a known one stays pending until the
/// RunConfiguration can run, and then fires. A dependency that succeeded since the RunConfiguration's creation is
/// recorded with an empty baseline, so that success fires too.
fn pending(
    observed: &Observed,
    status: &RunConfigurationStatus,
    namespace: &str,
    message: &str,
) -> Plan<Command> {
    let rc = &observed.run_configuration;
    let mut seen = status.clone();
    for (key, reference) in desired_triggers(rc, status, namespace).run_configurations {
        // A success since the RunConfiguration's creation is kept as a change to fire once it can run.
        let baseline = if succeeded_since_creation(observed, &key) {
            TriggeredRunReference::default()
        } else {
            reference
        };
        seen.triggers.run_configurations.entry(key).or_insert(baseline);
    }
    let provider = rc.spec.run.provider.clone();
    let mut commands = conclude(observed, &seen, provider, SynchronizationState::Pending, message);
    if commands.is_empty() && seen != *status {
        commands.push(Command::SetStatus {
            status: seen,
            event: None,
        });
    }
    Plan::new(commands)
}

/// The triggers status for the current spec and dependencies.
fn desired_triggers(
    rc: &RunConfiguration,
    status: &RunConfigurationStatus,
    namespace: &str,
) -> TriggersStatus {
    let spec = &rc.spec;
    let mut triggers = TriggersStatus::default();
    if spec.triggers.on_change.contains(&OnChangeType::Pipeline) {
        triggers.pipeline.version = status.dependencies.pipeline.version.clone();
    }
    if spec.triggers.on_change.contains(&OnChangeType::RunSpec) {
        // A version written by the Go operator at v0.7.0 for the same spec is no change.
        triggers.run_spec.version = version::current(&status.triggers.run_spec.version, |a| {
            version::run_spec_version(&spec.run, a)
        });
    }
    for reference in &spec.triggers.run_configurations {
        let key = dependency_key(reference, namespace);
        let seen = status
            .dependencies
            .run_configurations
            .get(&key)
            .map(|d| TriggeredRunReference {
                provider_id: d.provider_id.clone(),
                run_name: d.run_name.clone(),
            })
            .unwrap_or_default();
        triggers.run_configurations.insert(key, seen);
    }
    triggers
}

/// Which trigger fired, first match wins: a new run spec version, a new pipeline version, then a dependency that
/// recorded a NEW succeeded run (a provider id different from the one last seen, and not empty). A
/// dependency seen for the first time only records its baseline, unless its succeeded run ended after the
/// RunConfiguration was created (`succeeded_since_creation`): that success happened while the RunConfiguration
/// existed and must not be lost, e.g. to an operator restart before its first reconcile (decision 0002,
/// "RunConfigurations", issue 17).
fn fired_trigger(
    observed: &Observed,
    old: &TriggersStatus,
    new: &TriggersStatus,
    namespace: &str,
) -> Option<TriggerIndicator> {
    let rc = &observed.run_configuration;
    let indicator = |type_: &str, source: &str, source_namespace: &str| TriggerIndicator {
        type_: type_.to_string(),
        source: source.to_string(),
        source_namespace: source_namespace.to_string(),
    };
    if !new.run_spec.version.is_empty() && new.run_spec.version != old.run_spec.version {
        let name = rc.metadata.name.as_deref().unwrap_or_default();
        return Some(indicator(trigger_types::ON_CHANGE_RUN_SPEC, name, namespace));
    }
    if !new.pipeline.version.is_empty() && new.pipeline.version != old.pipeline.version {
        return Some(indicator(
            trigger_types::ON_CHANGE_PIPELINE,
            &rc.spec.run.pipeline.name,
            namespace,
        ));
    }
    new.run_configurations.iter().find_map(|(key, seen)| {
        let fired = match old.run_configurations.get(key) {
            Some(previous) => seen.provider_id != previous.provider_id && !same_logical_run(seen, previous),
            None => succeeded_since_creation(observed, key),
        };
        if seen.provider_id.is_empty() || !fired {
            return None;
        }
        let source = key.parse::<NamespacedName>().unwrap_or_default();
        Some(indicator(
            trigger_types::RUN_CONFIGURATION,
            &source.name,
            &source.namespace,
        ))
    })
}

/// True when two runs seen of a dependency are provider runs of the same Run resource (a create repeated by a
/// crashed operator, or replayed events of such runs): one logical run triggers once (issue 17). Runs without a
/// Run resource (scheduled runs) are told apart by their provider id alone.
fn same_logical_run(seen: &TriggeredRunReference, previous: &TriggeredRunReference) -> bool {
    !seen.run_name.is_empty() && seen.run_name == previous.run_name
}

/// Step 7: when the triggers changed, create a Run if one fired (unless one with the same spec is in flight) and
/// record the new triggers. `None` when the triggers did not change.
fn sync_with_runs(
    observed: &Observed,
    status: &RunConfigurationStatus,
    namespace: &str,
) -> Option<Vec<Command>> {
    let rc = &observed.run_configuration;
    let triggers = desired_triggers(rc, status, namespace);
    if triggers == status.triggers {
        return None;
    }
    let mut commands = Vec::new();
    if let Some(indicator) = fired_trigger(observed, &status.triggers, &triggers, namespace) {
        let run = desired_run(rc, status, namespace, &indicator);
        let in_flight_duplicate = observed.runs.iter().any(|existing| {
            existing.metadata.deletion_timestamp.is_none()
                && existing
                    .status
                    .as_ref()
                    .and_then(|s| s.completion_state)
                    .is_none()
                && existing.spec == run.spec
        });
        if !in_flight_duplicate {
            commands.push(Command::CreateRun(run));
        }
    }
    let mut new = status.clone();
    new.triggers = triggers;
    commands.push(Command::SetStatus {
        status: new,
        event: None,
    });
    Some(commands)
}

/// The controller ownerReference that children of `rc` carry.
pub fn owner_reference(rc: &RunConfiguration) -> OwnerReference {
    OwnerReference {
        api_version: format!("{}/v1beta1", crate::resources::GROUP),
        kind: "RunConfiguration".to_string(),
        name: rc.metadata.name.clone().unwrap_or_default(),
        uid: rc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn child_metadata(
    rc: &RunConfiguration,
    namespace: &str,
    labels: Option<BTreeMap<String, String>>,
) -> ObjectMeta {
    ObjectMeta {
        generate_name: Some(format!("{}-", rc.metadata.name.as_deref().unwrap_or_default())),
        namespace: Some(namespace.to_string()),
        labels,
        owner_references: Some(vec![owner_reference(rc)]),
        ..ObjectMeta::default()
    }
}

/// `spec.run` with the pipeline version pinned to the observed one.
fn pinned_pipeline(rc: &RunConfiguration, status: &RunConfigurationStatus) -> PipelineIdentifier {
    PipelineIdentifier::new(
        rc.spec.run.pipeline.name.clone(),
        status.dependencies.pipeline.version.clone(),
    )
}

/// The Run a fired trigger creates (docs/controllers.md, "RunConfigurations").
pub fn desired_run(
    rc: &RunConfiguration,
    status: &RunConfigurationStatus,
    namespace: &str,
    indicator: &TriggerIndicator,
) -> Run {
    let mut run_labels = BTreeMap::new();
    run_labels.insert(
        labels::RUN_CONFIGURATION_NAME.to_string(),
        rc.metadata.name.clone().unwrap_or_default(),
    );
    run_labels.insert(labels::TRIGGER_TYPE.to_string(), indicator.type_.clone());
    run_labels.insert(
        labels::TRIGGER_SOURCE.to_string(),
        labels::sanitize_value(&indicator.source),
    );
    run_labels.insert(
        labels::TRIGGER_SOURCE_NAMESPACE.to_string(),
        labels::sanitize_value(&indicator.source_namespace),
    );
    Run {
        metadata: child_metadata(rc, namespace, Some(run_labels)),
        spec: RunSpec {
            pipeline: pinned_pipeline(rc, status),
            ..rc.spec.run.clone()
        },
        status: None,
    }
}

/// The RunSchedules `rc` should own, one per `triggers.schedules` entry.
pub fn desired_run_schedules(
    rc: &RunConfiguration,
    status: &RunConfigurationStatus,
    namespace: &str,
    parameters: &[NamedValue],
) -> Vec<RunSchedule> {
    rc.spec
        .triggers
        .schedules
        .iter()
        .map(|schedule| RunSchedule {
            metadata: child_metadata(rc, namespace, None),
            spec: RunScheduleSpec {
                provider: rc.spec.run.provider.clone(),
                pipeline: pinned_pipeline(rc, status),
                experiment_name: rc.spec.run.experiment_name.clone(),
                parameters: parameters.to_vec(),
                artifacts: rc.spec.run.artifacts.clone(),
                service_account: rc.spec.run.service_account.clone(),
                labels: rc.spec.run.labels.clone(),
                schedule: schedule.clone(),
            },
            status: None,
        })
        .collect()
}

/// Step 8: replace RunSchedules whose spec differs (never update), then write the state.
fn sync_status(
    observed: &Observed,
    status: &RunConfigurationStatus,
    namespace: &str,
    parameters: Vec<NamedValue>,
) -> Plan<Command> {
    let rc = &observed.run_configuration;
    let desired = desired_run_schedules(rc, status, namespace, &parameters);
    let live: Vec<&RunSchedule> = observed
        .run_schedules
        .iter()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    let terminating = live.len() != observed.run_schedules.len();

    let mut matched = vec![false; live.len()];
    let mut commands = Vec::new();
    for schedule in desired {
        let found = live
            .iter()
            .enumerate()
            .position(|(i, rs)| !matched[i] && rs.spec == schedule.spec);
        match found.and_then(|i| matched.get_mut(i)) {
            Some(m) => *m = true,
            None => commands.push(Command::CreateRunSchedule(schedule)),
        }
    }
    let mut excess: Vec<String> = live
        .iter()
        .zip(&matched)
        .filter(|(_, m)| !**m)
        .map(|(rs, _)| rs.metadata.name.clone().unwrap_or_default())
        .collect();
    excess.sort();
    commands.extend(excess.into_iter().map(|name| Command::DeleteRunSchedule { name }));

    let (state, message) = if !commands.is_empty() || terminating {
        // Never an empty state while swapping (the Go operator's was, and failed the CRD's validation).
        (
            SynchronizationState::Updating,
            WAITING_FOR_RUN_SCHEDULES.to_string(),
        )
    } else {
        aggregate_state(&live)
    };
    commands.extend(conclude(
        observed,
        status,
        rc.spec.run.provider.clone(),
        state,
        &message,
    ));
    Plan::new(commands)
}

/// Any RunSchedule not Succeeded or Failed -> `Updating`; else the first Failed (by name) -> `Failed` with its
/// message; else `Succeeded`.
fn aggregate_state(run_schedules: &[&RunSchedule]) -> (SynchronizationState, String) {
    let mut sorted = run_schedules.to_vec();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let state_of = |rs: &RunSchedule| {
        rs.status
            .as_ref()
            .map(|s| s.synchronization_state())
            .unwrap_or_default()
    };
    let waiting = sorted.iter().any(|rs| {
        !matches!(
            state_of(rs),
            SynchronizationState::Succeeded | SynchronizationState::Failed
        )
    });
    if waiting {
        return (
            SynchronizationState::Updating,
            WAITING_FOR_RUN_SCHEDULES.to_string(),
        );
    }
    let failed = sorted
        .iter()
        .find(|rs| state_of(rs) == SynchronizationState::Failed);
    match failed {
        Some(rs) => {
            let message = rs
                .status
                .as_ref()
                .and_then(|s| s.synchronized())
                .map(|c| c.message.clone())
                .unwrap_or_default();
            (SynchronizationState::Failed, message)
        }
        None => (SynchronizationState::Succeeded, String::new()),
    }
}

/// The Event that accompanies a status write (docs/controllers.md, "Events and metrics"): Warning/`SyncFailed` for
/// Failed, Normal/`Synced` for Succeeded and Deleted, Normal/`Syncing` otherwise; message `<State>` plus `: <message>`
/// when there is one.
pub fn status_event(state: SynchronizationState, message: &str) -> Event {
    let (type_, reason) = match state {
        SynchronizationState::Failed => (EventType::Warning, reasons::SYNC_FAILED),
        SynchronizationState::Succeeded | SynchronizationState::Deleted => {
            (EventType::Normal, reasons::SYNCED)
        }
        _ => (EventType::Normal, reasons::SYNCING),
    };
    let message = if message.is_empty() {
        state.to_string()
    } else {
        format!("{state}: {message}")
    };
    Event {
        type_,
        reason: reason.to_string(),
        message,
    }
}

/// Concludes a reconcile with its state: `observedGeneration`, `provider` and the condition; a SetStatus only when
/// something changed.
fn conclude(
    observed: &Observed,
    status: &RunConfigurationStatus,
    provider: NamespacedName,
    state: SynchronizationState,
    message: &str,
) -> Vec<Command> {
    let generation = observed.run_configuration.metadata.generation.unwrap_or_default();
    let mut new = status.clone();
    new.observed_generation = generation;
    new.provider = provider;
    merge_state_conditions(&mut new.conditions, state, message, generation, &observed.now);
    if new == *status {
        return Vec::new();
    }
    // An Event for a change of state or message, not for the kstatus conditions an upgrade adds.
    let condition_changed = new.synchronized() != status.synchronized();
    let event = condition_changed.then(|| status_event(state, message));
    vec![Command::SetStatus { status: new, event }]
}
