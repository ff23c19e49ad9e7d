//! The planners of the kinds that are the state machine alone: Pipeline, RunSchedule, Experiment.

use super::*;

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
