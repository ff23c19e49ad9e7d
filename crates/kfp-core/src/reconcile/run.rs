//! SPEC 3.4: a Run's extras around the generic state machine (completion TTL, dependency snapshots, parameter
//! resolution with Decision 3 `Pending`, fixed vs floating pipeline versions).

use std::collections::BTreeMap;
use std::time::Duration;

use super::Plan;
use super::definition;
use super::generic::{Built, Machine, Observed, Out, ResourceCommand, current_status};
use super::{Event, EventType, reasons};
use crate::executor::{OperationDefinition, ResourceKind};
use crate::resources::v1beta1::{Conditions, Run, RunReference, RunStatus};
use crate::values::{NamespacedName, SynchronizationState};
use crate::version;

/// The referenced Pipeline (`<run ns>/<spec.pipeline.name>`) as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineObservation {
    pub state: SynchronizationState,
    /// Its `status.version`.
    pub version: String,
}

/// What a Run depends on, gathered by the controller, and the Run configuration.
#[derive(Debug, Clone, Default)]
pub struct RunInputs {
    /// `None`: the Pipeline does not exist.
    pub pipeline: Option<PipelineObservation>,
    /// `status.latestRuns.succeeded` of each referenced RunConfiguration that exists, keyed `ns/name`.
    pub run_configurations: BTreeMap<String, RunReference>,
    /// `spec.runCompletionTTL`: finished Runs are deleted this long after completion.
    pub run_completion_ttl: Option<Duration>,
}

/// The message of the Normal event for a skipped optional parameter (SPEC 3.4 step 5).
pub fn optional_parameter_message(name: &str) -> String {
    format!("Unable to resolve parameter '{name}', but skipping as it is marked as optional.")
}

/// Resolved parameters, skipped optional ones, and the errors of required ones.
struct Resolution {
    values: BTreeMap<String, String>,
    skipped: Vec<String>,
    errors: Vec<String>,
}

fn resolve(run: &Run, status: &RunStatus) -> Resolution {
    let namespace = run.metadata.namespace.as_deref().unwrap_or_default();
    let mut resolution = Resolution {
        values: BTreeMap::new(),
        skipped: Vec::new(),
        errors: Vec::new(),
    };
    for parameter in &run.spec.parameters {
        let Some(from) = &parameter.value_from else {
            resolution
                .values
                .insert(parameter.name.clone(), parameter.value.clone());
            continue;
        };
        let reference = &from.run_configuration_ref;
        let key = reference.name.with_default_namespace(namespace).to_string();
        let found = match status.dependencies.run_configurations.get(&key) {
            None => Err(format!("dependency '{key}' not found")),
            Some(dependency) => dependency
                .artifacts
                .iter()
                .find(|a| a.name == reference.output_artifact)
                .map(|a| a.location.clone())
                .ok_or_else(|| {
                    format!(
                        "artifact '{}' not found in dependency '{key}'",
                        reference.output_artifact
                    )
                }),
        };
        match found {
            Ok(location) => {
                resolution.values.insert(parameter.name.clone(), location);
            }
            Err(_) if reference.optional => resolution.skipped.push(parameter.name.clone()),
            Err(error) => resolution.errors.push(error),
        }
    }
    resolution
}

/// SPEC 3.7 step 4 as used by a Run: the referenced RunConfigurations' latest succeeded runs, limited to the
/// referenced artifacts; a missing RunConfiguration is `{}`.
fn dependency_snapshot(run: &Run, inputs: &RunInputs) -> BTreeMap<String, RunReference> {
    let namespace = run.metadata.namespace.as_deref().unwrap_or_default();
    let mut snapshot: BTreeMap<String, RunReference> = BTreeMap::new();
    for parameter in &run.spec.parameters {
        let Some(from) = &parameter.value_from else {
            continue;
        };
        let reference = &from.run_configuration_ref;
        let key = reference.name.with_default_namespace(namespace).to_string();
        let entry = snapshot.entry(key.clone()).or_default();
        let Some(latest) = inputs.run_configurations.get(&key) else {
            continue;
        };
        entry.provider_id = latest.provider_id.clone();
        for artifact in latest
            .artifacts
            .iter()
            .filter(|a| a.name == reference.output_artifact)
        {
            if !entry.artifacts.contains(artifact) {
                entry.artifacts.push(artifact.clone());
            }
        }
    }
    snapshot
}

/// SPEC 3.4 step 4b: fixed `spec.pipeline` version, else the Pipeline's succeeded version.
fn observed_pipeline_version(run: &Run, inputs: &RunInputs, current: &str) -> String {
    if !run.spec.pipeline.version.is_empty() {
        return run.spec.pipeline.version.clone();
    }
    match &inputs.pipeline {
        None => String::new(),
        Some(p) if p.state == SynchronizationState::Succeeded => p.version.clone(),
        Some(p) if p.state == SynchronizationState::Deleted => String::new(),
        Some(_) => current.to_string(),
    }
}

/// Plans a Run (SPEC 3.4 with Decisions 1-3).
pub fn plan_run(observed: &Observed<'_, Run>, inputs: &RunInputs) -> Plan<ResourceCommand<RunStatus>> {
    let run = observed.resource;
    let current = current_status(&run.status);
    let mut status: RunStatus = current.as_ref().clone();
    let deleting = run.metadata.deletion_timestamp.is_some();
    let mut machine = Machine {
        kind: ResourceKind::Run,
        meta: &run.metadata,
        spec_provider: &run.spec.provider,
        provider: observed.provider,
        outcomes: observed.outcomes,
        now: &observed.now,
        version: String::new(),
    };
    let mut out = Out::new();

    // Step 1: completion and TTL.
    if status.completion_state.is_some() && status.marked_completed_at.is_none() {
        status.marked_completed_at = Some(observed.now.clone());
        machine.set_status_quietly(&mut out, status.clone());
        if let Some(ttl) = inputs.run_completion_ttl {
            out.requeue(ttl);
        }
        return out.into_plan();
    }
    if let (Some(ttl), Some(marked), false) =
        (inputs.run_completion_ttl, &status.marked_completed_at, deleting)
    {
        let expires = marked.0.checked_add(ttl).unwrap_or(marked.0);
        if observed.now.0 >= expires {
            out.push(ResourceCommand::DeleteResource);
            return out.into_plan();
        }
        let remaining = expires
            .as_millisecond()
            .saturating_sub(observed.now.0.as_millisecond());
        out.requeue(Duration::from_millis(u64::try_from(remaining).unwrap_or(0)));
    }

    // Steps 3-4: snapshots, while the Run has not been submitted (a Pending Run re-reads its dependencies, so it
    // proceeds when they appear: Decision 3).
    let state = status.synchronization_state();
    let unsubmitted = matches!(
        state,
        SynchronizationState::Unknown | SynchronizationState::Pending
    ) && status.status.provider.id.is_empty();
    if !deleting
        && observed.provider.is_some()
        && (status.dependencies.pipeline.version.is_empty() || unsubmitted)
    {
        let snapshot = dependency_snapshot(run, inputs);
        if snapshot != status.dependencies.run_configurations {
            status.dependencies.run_configurations = snapshot;
            machine.set_status_quietly(&mut out, status);
            return out.into_plan();
        }
        let pipeline_version = observed_pipeline_version(run, inputs, &status.dependencies.pipeline.version);
        if pipeline_version != status.dependencies.pipeline.version {
            status.dependencies.pipeline.version = pipeline_version;
            machine.set_status_quietly(&mut out, status);
            return out.into_plan();
        }
        if status.dependencies.pipeline.version.is_empty() {
            // Nothing can be submitted without a pipeline version: say so (Decision 3 style) instead of silence.
            let message = format!(
                "waiting for pipeline '{}' to have a succeeded version",
                NamespacedName::new(
                    run.metadata.namespace.clone().unwrap_or_default(),
                    run.spec.pipeline.name.clone()
                )
            );
            machine.version = version::run_version(&run.spec, "");
            let unchanged = state == SynchronizationState::Pending
                && status.synchronized().is_some_and(|c| c.message == message);
            if matches!(
                state,
                SynchronizationState::Unknown | SynchronizationState::Pending
            ) {
                if !machine.has_finalizer() {
                    out.push(ResourceCommand::AddFinalizer);
                }
                if !unchanged {
                    machine.set_status(&mut out, &status, SynchronizationState::Pending, &message, |_| {});
                }
                return machine.finish(out, &status);
            }
        }
    }

    machine.version = version::run_version(&run.spec, &status.dependencies.pipeline.version);
    let resolution = resolve(run, &status);
    let pipeline_version = status.dependencies.pipeline.version.clone();
    let v = machine.version.clone();
    let mut submitted_with_skips = false;
    let mut build = |provider: &crate::resources::v1beta1::Provider| {
        definition::check_allowed_namespace(&run.metadata, provider)?;
        if !resolution.errors.is_empty() {
            return Ok(Built::Pending(format!(
                "Unable to resolve parameters: {}",
                resolution.errors.join("; ")
            )));
        }
        submitted_with_skips = !resolution.skipped.is_empty();
        Ok(Built::Ready(OperationDefinition::Run(
            definition::run_definition(
                &run.metadata,
                &run.spec,
                &v,
                &pipeline_version,
                resolution.values.clone(),
            ),
        )))
    };
    machine.run(&mut out, &status, &mut build);
    let submitted = out
        .commands
        .iter()
        .any(|c| matches!(c, ResourceCommand::Submit(_)));
    if submitted && submitted_with_skips {
        for name in &resolution.skipped {
            out.push(ResourceCommand::RecordEvent(Event {
                type_: EventType::Normal,
                reason: reasons::SYNCED.to_string(),
                message: optional_parameter_message(name),
            }));
        }
    }
    machine.finish(out, &status)
}
