//! A status written by the Go operator, at v0.7.0 or later, holds that operator's version of the spec. The planners
//! must read a version of either Go algorithm as "unchanged" (docs/decisions/0003-conversion-and-hashing.md): no
//! provider operation, no triggered Run, the stored version kept until the spec really changes.

use crate::common;

use std::collections::BTreeMap;

use kfp_core::executor::{Action, Operation};
use kfp_core::reconcile::generic::{Observed, ResourceCommand, plan_pipeline};
use kfp_core::reconcile::run::{PipelineObservation, RunInputs, plan_run};
use kfp_core::reconcile::run_configuration::{self, Command};
use kfp_core::reconcile::{Plan, state_conditions};
use kfp_core::resources::FINALIZER;
use kfp_core::resources::v1beta1::*;
use kfp_core::values::{PipelineIdentifier, SynchronizationState as St};
use kfp_core::version::{self, HashAlgorithm};

use common::{now, provider, provider_name};

fn succeeded(version: &str) -> Status {
    Status {
        provider: ProviderAndId {
            name: provider_name(),
            id: "id-1".into(),
        },
        version: version.into(),
        observed_generation: 1,
        conditions: state_conditions(St::Succeeded, "", 1, &now()),
    }
}

fn identity(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    meta.namespace = Some("ns".into());
    meta.generation = Some(1);
    meta.uid = Some("uid".into());
    meta.finalizers = Some(vec![FINALIZER.into()]);
}

/// An image the two Go reference parsers read differently: v0.7.0 has no IPv6 registries, so no tag.
fn pipeline(image: &str) -> Pipeline {
    let mut p = Pipeline::new(
        "p",
        PipelineSpec {
            provider: provider_name(),
            image: image.into(),
            env: vec![],
            framework: PipelineFramework {
                name: "tfx".into(),
                parameters: Default::default(),
            },
        },
    );
    identity(&mut p.metadata);
    p
}

fn plan_p(p: &Pipeline) -> Plan<ResourceCommand<Status>> {
    let prov = provider();
    plan_pipeline(&Observed {
        resource: p,
        provider: Some(&prov),
        outcomes: &[],
        now: now(),
        finds_by_identity: false,
    })
}

fn submitted<S>(plan: &Plan<ResourceCommand<S>>) -> Vec<&Operation> {
    plan.commands
        .iter()
        .filter_map(|c| match c {
            ResourceCommand::Submit(op) => Some(op),
            _ => None,
        })
        .collect()
}

#[test]
fn a_pipeline_with_its_v0_7_0_version_is_unchanged() {
    let mut p = pipeline("[::1]:5000/img:dev");
    let head = version::pipeline_version(&p.spec, HashAlgorithm::Head);
    let v0_7_0 = version::pipeline_version(&p.spec, HashAlgorithm::V0_7_0);
    assert_ne!(head, v0_7_0);
    for stored in [&head, &v0_7_0] {
        p.status = Some(succeeded(stored));
        assert_eq!(plan_p(&p), Plan::default(), "stored {stored}");
    }

    // A real spec change updates the provider, with the head version.
    p.status = Some(succeeded(&v0_7_0));
    p.spec.image = "[::1]:5000/img:dev2".into();
    let plan = plan_p(&p);
    let [op] = submitted(&plan)[..] else {
        panic!("{plan:?}")
    };
    assert!(matches!(op.action, Action::Update { .. }), "{op:?}");
    let Some(ResourceCommand::SetStatus { status, .. }) = plan.commands.first() else {
        panic!("{plan:?}")
    };
    assert_eq!(
        status.version,
        version::pipeline_version(&p.spec, HashAlgorithm::Head)
    );
}

fn optional_parameter() -> Parameter {
    Parameter {
        name: "EXAMPLES".into(),
        value: String::new(),
        value_from: Some(ValueFrom {
            run_configuration_ref: RunConfigurationRef {
                name: "base/rc".parse().unwrap(),
                output_artifact: "examples".into(),
                optional: true,
            },
        }),
    }
}

fn run_spec() -> RunSpec {
    RunSpec {
        provider: provider_name(),
        pipeline: PipelineIdentifier::new("pl", ""),
        experiment_name: "exp".into(),
        parameters: vec![optional_parameter()],
        ..RunSpec::default()
    }
}

#[test]
fn a_run_with_its_v0_7_0_version_is_unchanged() {
    let mut r = Run::new("r", run_spec());
    identity(&mut r.metadata);
    // v0.7.0 does not hash `optional`.
    let head = version::run_version(&r.spec, "pv1", HashAlgorithm::Head);
    let v0_7_0 = version::run_version(&r.spec, "pv1", HashAlgorithm::V0_7_0);
    assert_ne!(head, v0_7_0);
    let inputs = RunInputs {
        pipeline: Some(PipelineObservation {
            state: St::Succeeded,
            version: "pv1".into(),
        }),
        run_configurations: BTreeMap::new(),
        run_completion_ttl: None,
    };
    let prov = provider();
    for stored in [&head, &v0_7_0] {
        let mut status = RunStatus {
            status: succeeded(stored),
            ..Default::default()
        };
        status.dependencies.pipeline.version = "pv1".into();
        status
            .dependencies
            .run_configurations
            .insert("base/rc".into(), RunReference::default());
        r.status = Some(status);
        let plan = plan_run(
            &Observed {
                resource: &r,
                provider: Some(&prov),
                outcomes: &[],
                now: now(),
                finds_by_identity: false,
            },
            &inputs,
        );
        assert_eq!(plan, Plan::default(), "stored {stored}");
    }
}

fn run_configuration(stored_run_spec_version: &str) -> RunConfiguration {
    let mut rc = RunConfiguration::new(
        "rc",
        RunConfigurationSpec {
            run: run_spec(),
            triggers: Triggers {
                on_change: vec![OnChangeType::RunSpec],
                ..Default::default()
            },
        },
    );
    identity(&mut rc.metadata);
    rc.metadata.finalizers = None;
    let mut status = RunConfigurationStatus {
        provider: provider_name(),
        observed_generation: 1,
        conditions: state_conditions(St::Succeeded, "", 1, &now()),
        ..Default::default()
    };
    status.dependencies.pipeline.version = "pv1".into();
    status
        .dependencies
        .run_configurations
        .insert("base/rc".into(), RunReference::default());
    status.triggers.run_spec.version = stored_run_spec_version.into();
    rc.status = Some(status);
    rc
}

fn plan_rc(rc: RunConfiguration) -> Plan<Command> {
    run_configuration::plan(&run_configuration::Observed {
        run_configuration: rc,
        pipeline: Some(PipelineObservation {
            state: St::Succeeded,
            version: "pv1".into(),
        }),
        run_configurations: BTreeMap::new(),
        run_schedules: Vec::new(),
        runs: Vec::new(),
        now: now(),
    })
}

fn created_runs(plan: &Plan<Command>) -> usize {
    plan.commands
        .iter()
        .filter(|c| matches!(c, Command::CreateRun(_)))
        .count()
}

#[test]
fn a_run_configuration_with_its_v0_7_0_run_spec_version_triggers_no_run() {
    let head = version::run_spec_version(&run_spec(), HashAlgorithm::Head);
    let v0_7_0 = version::run_spec_version(&run_spec(), HashAlgorithm::V0_7_0);
    assert_ne!(head, v0_7_0);
    for stored in [&head, &v0_7_0] {
        let plan = plan_rc(run_configuration(stored));
        assert_eq!(created_runs(&plan), 0, "stored {stored}: {plan:?}");
        for command in &plan.commands {
            if let Command::SetStatus { status, .. } = command {
                assert_eq!(
                    &status.triggers.run_spec.version, stored,
                    "the stored version is kept"
                );
            }
        }
    }

    // Any other stored version is a change of the run spec: one Run, and the head version recorded.
    let plan = plan_rc(run_configuration("000000"));
    assert_eq!(created_runs(&plan), 1, "{plan:?}");
    let Some(Command::SetStatus { status, .. }) = plan.commands.last() else {
        panic!("{plan:?}")
    };
    assert_eq!(status.triggers.run_spec.version, head);
}
