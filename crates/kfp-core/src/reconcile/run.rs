//! A Run's extras around the generic state machine (completion TTL, dependency snapshots, parameter resolution with
//! `Pending`, fixed vs floating pipeline versions): docs/controllers.md, "Runs".

use std::collections::BTreeMap;
use std::time::Duration;

use super::Plan;
use super::definition;
use super::dependencies;
use super::generic::{Built, Machine, Observed, Out, ResourceCommand, current_status};
use crate::executor::{OperationDefinition, ResourceKind};
use crate::resources::v1beta1::{Conditions, Run, RunReference, RunStatus};
use crate::values::{NamespacedName, SynchronizationState};
use crate::version;

pub use super::dependencies::{PipelineObservation, optional_parameter_message};

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

/// Plans a Run (docs/controllers.md, "Runs").
pub fn plan_run(observed: &Observed<'_, Run>, inputs: &RunInputs) -> Plan<ResourceCommand<RunStatus>> {
    let run = observed.resource;
    let namespace = run.metadata.namespace.as_deref().unwrap_or_default();
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
        finds_by_identity: observed.finds_by_identity,
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
    // proceeds when they appear).
    let state = status.synchronization_state();
    let unsubmitted = matches!(
        state,
        SynchronizationState::Unknown | SynchronizationState::Pending
    ) && status.status.provider.id.is_empty();
    if !deleting
        && observed.provider.is_some()
        && (status.dependencies.pipeline.version.is_empty() || unsubmitted)
    {
        let snapshot =
            dependencies::snapshot_run_configurations(&run.spec.parameters, &[], namespace, |key| {
                inputs.run_configurations.get(key)
            });
        if snapshot != status.dependencies.run_configurations {
            status.dependencies.run_configurations = snapshot;
            machine.set_status_quietly(&mut out, status);
            return out.into_plan();
        }
        let pipeline_version = dependencies::observed_pipeline_version(
            &run.spec.pipeline,
            inputs.pipeline.as_ref(),
            &status.dependencies.pipeline.version,
        );
        if pipeline_version != status.dependencies.pipeline.version {
            status.dependencies.pipeline.version = pipeline_version;
            machine.set_status_quietly(&mut out, status);
            return out.into_plan();
        }
        if status.dependencies.pipeline.version.is_empty() {
            // Nothing can be submitted without a pipeline version: say so (`Pending`) instead of silence.
            let message = format!(
                "waiting for pipeline '{}' to have a succeeded version",
                NamespacedName::new(
                    run.metadata.namespace.clone().unwrap_or_default(),
                    run.spec.pipeline.name.clone()
                )
            );
            machine.version =
                version::current(&status.status.version, |a| version::run_version(&run.spec, "", a));
            let unchanged = state == SynchronizationState::Pending
                && status.synchronized().is_some_and(|c| c.message == message)
                && status.status.provider.name == run.spec.provider;
            if matches!(
                state,
                SynchronizationState::Unknown | SynchronizationState::Pending
            ) {
                if !machine.has_finalizer() {
                    out.push(ResourceCommand::AddFinalizer);
                }
                if !unchanged {
                    machine.set_status(&mut out, &status, SynchronizationState::Pending, &message, |s| {
                        machine.name_provider(s)
                    });
                }
                return machine.finish(out, &status);
            }
        }
    }

    machine.version = version::current(&status.status.version, |a| {
        version::run_version(&run.spec, &status.dependencies.pipeline.version, a)
    });
    let resolution =
        dependencies::resolve_parameters(&run.spec.parameters, namespace, &status.dependencies, |key| {
            inputs.run_configurations.contains_key(key)
        });
    let pipeline_version = status.dependencies.pipeline.version.clone();
    let v = machine.version.clone();
    let mut submitted_with_skips = false;
    let mut build = |provider: &crate::resources::v1beta1::Provider| {
        definition::check_allowed_namespace(&run.metadata, provider)?;
        let resolved = match &resolution {
            Ok(resolved) => resolved,
            Err(unresolved) => {
                return Ok(Built::Pending(format!(
                    "Unable to resolve parameters: {unresolved}"
                )));
            }
        };
        submitted_with_skips = !resolved.skipped_optional.is_empty();
        Ok(Built::Ready(OperationDefinition::Run(
            definition::run_definition(
                &run.metadata,
                &run.spec,
                &v,
                &pipeline_version,
                resolved
                    .values
                    .iter()
                    .map(|p| (p.name.clone(), p.value.clone()))
                    .collect(),
            ),
        )))
    };
    machine.run(&mut out, &status, &mut build);
    let submitted = out
        .commands
        .iter()
        .any(|c| matches!(c, ResourceCommand::Submit(_)));
    if let (true, true, Ok(resolved)) = (submitted, submitted_with_skips, &resolution) {
        for name in &resolved.skipped_optional {
            out.push(ResourceCommand::RecordEvent(
                dependencies::optional_parameter_skipped_event(name),
            ));
        }
    }
    machine.finish(out, &status)
}
