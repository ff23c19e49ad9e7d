//! Table tests of the RunConfiguration and Provider planners (docs/controllers.md, "RunConfigurations" and
//! "Providers"). Test names keep the numbering of the design notes the project started from (decision 0002).

// Test helpers outside `#[test]` functions fail loudly on bad fixtures, as the tests themselves do.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, PodTemplateSpec, Service, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use kfp_core::config::DefaultProviderValues;
use kfp_core::definitions::TriggerIndicator;
use kfp_core::reconcile::dependencies::PipelineObservation;
use kfp_core::reconcile::provider::{self, ProviderPlanError, Subresource};
use kfp_core::reconcile::run_configuration::{self, Command, Observed, WAITING_FOR_RUN_SCHEDULES};
use kfp_core::reconcile::{Event, EventType, Plan, definition, state_conditions, synchronized_condition};
use kfp_core::resources::labels;
use kfp_core::resources::v1beta1::Conditions;
use kfp_core::resources::v1beta1::{
    CompletionState, Provider, ProviderStatus, Run, RunConfiguration, RunConfigurationStatus, RunReference,
    RunSchedule, RunStatus, Status, TriggeredRunReference,
};
use kfp_core::values::{Artifact, CronExpression, NamespacedName, SynchronizationState};
use kfp_core::version;

/// The repository's acceptance fixtures (`fixtures/README.md`).
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
}

fn now() -> Time {
    Time(Timestamp::from_second(1_754_550_000).unwrap())
}

fn earlier() -> Time {
    Time(Timestamp::UNIX_EPOCH)
}

fn with_identity(mut rc: RunConfiguration) -> RunConfiguration {
    rc.metadata.uid = Some("rc-uid".into());
    rc.metadata.generation = Some(2);
    rc
}

/// `stub-runconfiguration` (default): onChange [pipeline, runSpec], one schedule.
fn stub_rc() -> RunConfiguration {
    with_identity(serde_saphyr::from_str(&fixture("runconfiguration-stub.yaml")).unwrap())
}

/// `[base, dependant]` from the cross-namespace dependency fixture.
fn dependency_rcs() -> Vec<RunConfiguration> {
    serde_saphyr::from_multiple::<RunConfiguration>(&fixture("runconfiguration-dependency.yaml"))
        .unwrap()
        .into_iter()
        .map(with_identity)
        .collect()
}

fn observed(rc: RunConfiguration) -> Observed {
    Observed {
        run_configuration: rc,
        pipeline: None,
        run_configurations: BTreeMap::new(),
        run_schedules: Vec::new(),
        runs: Vec::new(),
        now: now(),
    }
}

fn succeeded_pipeline(version: &str) -> Option<PipelineObservation> {
    Some(PipelineObservation {
        state: SynchronizationState::Succeeded,
        version: version.into(),
    })
}

fn condition(state: SynchronizationState, message: &str, generation: i64) -> Condition {
    synchronized_condition(state, message, generation, &earlier())
}

fn event(type_: EventType, reason: &str, message: &str) -> Event {
    Event {
        type_,
        reason: reason.into(),
        message: message.into(),
    }
}

/// The stub RC's status once pipeline `v1` was observed and both onChange triggers recorded.
fn stub_synced_status(rc: &RunConfiguration) -> RunConfigurationStatus {
    let mut status = RunConfigurationStatus::default();
    status.dependencies.pipeline.version = "v1".into();
    status.triggers.pipeline.version = "v1".into();
    status.triggers.run_spec.version = version::run_spec_version(&rc.spec.run, version::HashAlgorithm::Head);
    status
}

/// What the planner would create for `rc` (in sync with its status), as owned RunSchedules in `state`.
fn owned_schedules(rc: &RunConfiguration, state: SynchronizationState, message: &str) -> Vec<RunSchedule> {
    let status = rc.status.clone().unwrap_or_default();
    let ns = rc.metadata.namespace.clone().unwrap_or_default();
    let params = Vec::new();
    run_configuration::desired_run_schedules(rc, &status, &ns, &params)
        .into_iter()
        .enumerate()
        .map(|(i, mut rs)| {
            rs.metadata.name = Some(format!("stub-runconfiguration-{i}"));
            rs.status = Some(Status {
                conditions: vec![condition(state, message, 1)],
                ..Status::default()
            });
            rs
        })
        .collect()
}

fn set_status(plan: &Plan<Command>) -> (&RunConfigurationStatus, &Option<Event>) {
    match plan.commands.last() {
        Some(Command::SetStatus { status, event }) => (status, event),
        other => panic!("expected SetStatus last, got {other:?}"),
    }
}

fn created_runs(plan: &Plan<Command>) -> Vec<&Run> {
    plan.commands
        .iter()
        .filter_map(|c| {
            if let Command::CreateRun(run) = c {
                Some(run)
            } else {
                None
            }
        })
        .collect()
}

// -------------------------------------------------------------------------------------------------------------
// RunConfiguration
// -------------------------------------------------------------------------------------------------------------

#[test]
fn spec_3_7_step_1_deleting_does_nothing() {
    let mut rc = stub_rc();
    rc.metadata.deletion_timestamp = Some(now());
    rc.status = Some(RunConfigurationStatus {
        provider: "other/provider".parse().unwrap(),
        ..Default::default()
    });
    assert_eq!(run_configuration::plan(&observed(rc)), Plan::default());
}

#[test]
fn spec_3_7_provider_changed_fails() {
    let mut rc = stub_rc();
    let mut status = stub_synced_status(&rc);
    status.provider = "kfp-operator-system/old".parse().unwrap();
    rc.status = Some(status.clone());
    let plan = run_configuration::plan(&observed(rc.clone()));

    let mut expected = status;
    expected.observed_generation = 2;
    expected.conditions = state_conditions(
        SynchronizationState::Failed,
        "the provider has changed",
        2,
        &now(),
    );
    assert_eq!(
        plan,
        Plan::new(vec![Command::SetStatus {
            status: expected.clone(),
            event: Some(event(
                EventType::Warning,
                "SyncFailed",
                "Failed: the provider has changed"
            )),
        }])
    );

    // Already recorded: nothing more to write, no repeated event.
    rc.status = Some(expected);
    assert_eq!(run_configuration::plan(&observed(rc)), Plan::default());
}

#[test]
fn decision_15_bad_cron_fails_with_the_parsers_message() {
    let mut rc = stub_rc();
    rc.spec.triggers.schedules[0].cron_expression = CronExpression::unchecked("61 * * * *");
    let parser_message = rc.spec.triggers.schedules[0]
        .cron_expression
        .validate()
        .unwrap_err()
        .to_string();
    let plan = run_configuration::plan(&observed(rc));
    let (status, event) = set_status(&plan);
    let message = format!("spec.triggers.schedules[0].cronExpression: {parser_message}");
    assert_eq!(plan.commands.len(), 1);
    assert_eq!(status.conditions[0].reason, "Failed");
    assert_eq!(status.conditions[0].message, message);
    assert_eq!(status.provider, "kfp-operator-system/stub".parse().unwrap());
    assert_eq!(
        event.as_ref().unwrap(),
        &self::event(EventType::Warning, "SyncFailed", &format!("Failed: {message}"))
    );
}

#[test]
fn spec_3_7_step_3_observed_pipeline_version_is_recorded_then_returns() {
    let rc = stub_rc();
    let mut o = observed(rc);
    o.pipeline = succeeded_pipeline("v1");
    let mut expected = RunConfigurationStatus::default();
    expected.dependencies.pipeline.version = "v1".into();
    assert_eq!(
        run_configuration::plan(&o),
        Plan::new(vec![Command::SetStatus {
            status: expected,
            event: None
        }])
    );
}

#[test]
fn spec_3_7_step_3_fixed_pipeline_version_ignores_pipeline_updates() {
    let mut rc = stub_rc();
    rc.spec.run.pipeline = "stub-pipeline:pinned".parse().unwrap();
    let mut o = observed(rc);
    o.pipeline = succeeded_pipeline("v7");
    let plan = run_configuration::plan(&o);
    let (status, _) = set_status(&plan);
    assert_eq!(status.dependencies.pipeline.version, "pinned");
}

#[test]
fn spec_3_7_step_4_dependency_snapshot_is_recorded_from_fixture() {
    let dependant = dependency_rcs().remove(1);
    let mut o = observed(dependant);
    let mut base_status = RunConfigurationStatus::default();
    base_status.latest_runs.succeeded = RunReference {
        provider_id: "run-1".into(),
        artifacts: vec![
            Artifact {
                name: "examples".into(),
                location: "gs://b/examples/1".into(),
            },
            Artifact {
                name: "unreferenced".into(),
                location: "gs://b/x".into(),
            },
        ],
        run_end_time: Some(now()),
        run_name: String::new(),
    };
    o.run_configurations
        .insert("base-namespace/penguin-pipeline-examples-rc".into(), base_status);

    let mut expected = RunConfigurationStatus::default();
    expected.dependencies.run_configurations.insert(
        "base-namespace/penguin-pipeline-examples-rc".into(),
        RunReference {
            provider_id: "run-1".into(),
            artifacts: vec![Artifact {
                name: "examples".into(),
                location: "gs://b/examples/1".into(),
            }],
            run_end_time: None,
            run_name: String::new(),
        },
    );
    assert_eq!(
        run_configuration::plan(&o),
        Plan::new(vec![Command::SetStatus {
            status: expected,
            event: None
        }])
    );
}

#[test]
fn spec_3_7_step_5_unresolvable_parameters_make_the_run_configuration_pending() {
    // The Go operator left the state alone; like a Run the RunConfiguration is `Pending`, naming what is missing,
    // creates nothing, and still records the dependency as seen (decision 0004, "Planning amendments").
    let mut dependant = dependency_rcs().remove(1);
    let mut status = RunConfigurationStatus::default();
    status.dependencies.pipeline.version = "v1".into();
    // The dependency exists but never succeeded: an empty snapshot entry.
    status.dependencies.run_configurations.insert(
        "base-namespace/penguin-pipeline-examples-rc".into(),
        RunReference::default(),
    );
    dependant.status = Some(status.clone());
    let message = "Unable to resolve parameters: dependency 'base-namespace/penguin-pipeline-examples-rc' has no \
                   succeeded run yet";
    let with_dependency = |rc: RunConfiguration| {
        let mut o = observed(rc);
        o.pipeline = succeeded_pipeline("v1");
        o.run_configurations.insert(
            "base-namespace/penguin-pipeline-examples-rc".into(),
            RunConfigurationStatus::default(),
        );
        o
    };
    let mut expected = status;
    expected.triggers.run_configurations.insert(
        "base-namespace/penguin-pipeline-examples-rc".into(),
        TriggeredRunReference::default(),
    );
    expected.provider = dependant.spec.run.provider.clone();
    expected.observed_generation = 2;
    expected.conditions = state_conditions(SynchronizationState::Pending, message, 2, &now());
    let plan = run_configuration::plan(&with_dependency(dependant.clone()));
    assert_eq!(
        plan,
        Plan::new(vec![Command::SetStatus {
            status: expected.clone(),
            event: Some(event(
                EventType::Normal,
                "Syncing",
                &format!("Pending: {message}")
            )),
        }])
    );
    assert!(created_runs(&plan).is_empty());

    // Nothing changed: nothing to write, no repeated event.
    dependant.status = Some(expected);
    assert_eq!(
        run_configuration::plan(&with_dependency(dependant.clone())),
        Plan::default()
    );
    // The dependency deleted: the message says it is gone (issue 19).
    let mut gone = observed(dependant);
    gone.pipeline = succeeded_pipeline("v1");
    let plan = run_configuration::plan(&gone);
    let [Command::SetStatus { status, .. }] = plan.commands.as_slice() else {
        panic!("{plan:?}")
    };
    assert_eq!(
        status.conditions[0].message,
        "Unable to resolve parameters: dependency 'base-namespace/penguin-pipeline-examples-rc' not found"
    );
}

/// The dependant RC with its parameter made optional, so that only the trigger logic decides.
fn dependant_with(snapshot_id: &str, last_seen: Option<&str>) -> RunConfiguration {
    let mut dependant = dependency_rcs().remove(1);
    if let Some(value_from) = dependant.spec.run.parameters[0].value_from.as_mut() {
        value_from.run_configuration_ref.optional = true;
    }
    let key = "base-namespace/penguin-pipeline-examples-rc".to_string();
    let mut status = RunConfigurationStatus::default();
    // Its Pipeline has a succeeded version (dependant_observed), as recorded.
    status.dependencies.pipeline.version = "v1".into();
    let artifacts = if snapshot_id.is_empty() {
        vec![]
    } else {
        vec![Artifact {
            name: "examples".into(),
            location: format!("gs://b/{snapshot_id}"),
        }]
    };
    status.dependencies.run_configurations.insert(
        key.clone(),
        RunReference {
            provider_id: snapshot_id.into(),
            artifacts,
            run_end_time: None,
            run_name: String::new(),
        },
    );
    if let Some(seen) = last_seen {
        status.triggers.run_configurations.insert(
            key,
            TriggeredRunReference {
                provider_id: seen.into(),
                run_name: String::new(),
            },
        );
    }
    dependant.status = Some(status);
    dependant
}

fn dependant_observed(rc: RunConfiguration) -> Observed {
    let mut o = observed(rc.clone());
    o.pipeline = succeeded_pipeline("v1");
    let status = rc.status.unwrap_or_default();
    for (key, snapshot) in status.dependencies.run_configurations {
        let mut dep = RunConfigurationStatus::default();
        dep.latest_runs.succeeded = snapshot;
        o.run_configurations.insert(key, dep);
    }
    o
}

#[test]
fn decision_5_dependency_that_never_succeeded_triggers_nothing() {
    // First observation of a dependency without a succeeded run: the baseline is recorded, no Run.
    let rc = dependant_with("", None);
    let plan = run_configuration::plan(&dependant_observed(rc.clone()));
    assert!(created_runs(&plan).is_empty(), "{plan:?}");
    let mut expected = rc.status.clone().unwrap_or_default();
    expected.triggers.run_configurations.insert(
        "base-namespace/penguin-pipeline-examples-rc".into(),
        TriggeredRunReference::default(),
    );
    assert_eq!(
        plan,
        Plan::new(vec![Command::SetStatus {
            status: expected.clone(),
            event: None
        }])
    );

    // Next reconcile: triggers in sync, no Run either (only RunSchedule syncing / state, none here).
    let mut rc = rc;
    rc.status = Some(expected);
    let plan = run_configuration::plan(&dependant_observed(rc));
    assert!(created_runs(&plan).is_empty(), "{plan:?}");
}

#[test]
fn decision_5_a_dependency_already_succeeded_when_first_seen_only_records_the_baseline() {
    let plan = run_configuration::plan(&dependant_observed(dependant_with("run-1", None)));
    assert!(created_runs(&plan).is_empty(), "{plan:?}");
    let (status, _) = set_status(&plan);
    assert_eq!(
        status.triggers.run_configurations["base-namespace/penguin-pipeline-examples-rc"].provider_id,
        "run-1"
    );
}

#[test]
fn decision_5_a_new_succeeded_run_of_a_dependency_triggers_a_run() {
    for last_seen in ["", "run-1"] {
        let rc = dependant_with("run-2", Some(last_seen));
        let plan = run_configuration::plan(&dependant_observed(rc.clone()));
        let runs = created_runs(&plan);
        assert_eq!(runs.len(), 1, "last seen {last_seen:?}: {plan:?}");
        let run = runs[0];
        let expected_labels = BTreeMap::from([
            (
                labels::RUN_CONFIGURATION_NAME.to_string(),
                "penguin-pipeline-training-rc".to_string(),
            ),
            (labels::TRIGGER_TYPE.to_string(), "runConfiguration".to_string()),
            (
                labels::TRIGGER_SOURCE.to_string(),
                "penguin-pipeline-examples-rc".to_string(),
            ),
            (
                labels::TRIGGER_SOURCE_NAMESPACE.to_string(),
                "base-namespace".to_string(),
            ),
        ]);
        assert_eq!(run.metadata.labels.as_ref(), Some(&expected_labels));
        assert_eq!(
            run.metadata.generate_name.as_deref(),
            Some("penguin-pipeline-training-rc-")
        );
        assert_eq!(run.metadata.namespace.as_deref(), Some("dependant-namespace"));
        let owner = &run.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (
                owner.api_version.as_str(),
                owner.kind.as_str(),
                owner.name.as_str(),
                owner.uid.as_str()
            ),
            (
                "pipelines.kubeflow.org/v1beta1",
                "RunConfiguration",
                "penguin-pipeline-training-rc",
                "rc-uid"
            )
        );
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        // The Run resolves valueFrom itself: the spec is spec.run with the observed pipeline version.
        let pinned =
            kfp_core::values::PipelineIdentifier::new(rc.spec.run.pipeline.name.clone(), "v1".to_string());
        assert_eq!(run.spec.pipeline, pinned);
        assert_eq!(
            kfp_core::resources::v1beta1::RunSpec {
                pipeline: pinned,
                ..rc.spec.run.clone()
            },
            run.spec
        );
        let (status, event) = set_status(&plan);
        assert_eq!(
            status.triggers.run_configurations["base-namespace/penguin-pipeline-examples-rc"].provider_id,
            "run-2"
        );
        assert_eq!(event, &None);
    }
}

#[test]
fn decision_5_a_dependency_that_first_succeeds_while_parameters_are_unresolvable_triggers() {
    // The fixture as users write it: the parameter is required, so it cannot resolve before the dependency's
    // first success. The dependency is still seen (baseline ""), so that success triggers a Run.
    let key = "base-namespace/penguin-pipeline-examples-rc";
    let mut dependant = dependency_rcs().remove(1);
    let mut status = RunConfigurationStatus::default();
    status.dependencies.pipeline.version = "v1".into();
    status
        .dependencies
        .run_configurations
        .insert(key.into(), RunReference::default());
    dependant.status = Some(status);
    let plan = run_configuration::plan(&dependant_observed(dependant.clone()));
    assert!(created_runs(&plan).is_empty(), "{plan:?}");
    let Some(Command::SetStatus { status: recorded, .. }) = plan.commands.first() else {
        panic!("expected the baseline to be recorded first: {plan:?}");
    };
    assert_eq!(recorded.triggers.run_configurations[key].provider_id, "");
    assert_eq!(recorded.synchronization_state(), SynchronizationState::Pending);

    // The dependency succeeds: the snapshot has its run and artifact, the parameter resolves, a Run is created.
    let mut status = recorded.clone();
    status.dependencies.run_configurations.insert(
        key.into(),
        RunReference {
            provider_id: "run-1".into(),
            artifacts: vec![Artifact {
                name: "examples".into(),
                location: "gs://b/run-1".into(),
            }],
            run_end_time: None,
            run_name: String::new(),
        },
    );
    dependant.status = Some(status);
    let plan = run_configuration::plan(&dependant_observed(dependant));
    assert_eq!(created_runs(&plan).len(), 1, "{plan:?}");
}

#[test]
fn decision_5_a_dependency_losing_its_run_triggers_nothing() {
    let plan = run_configuration::plan(&dependant_observed(dependant_with("", Some("run-1"))));
    assert!(created_runs(&plan).is_empty(), "{plan:?}");
    assert!(matches!(plan.commands.as_slice(), [Command::SetStatus { .. }]));
}

fn owned_run(spec_from: &Run, completed: bool) -> Run {
    let mut run = spec_from.clone();
    run.metadata.name = Some("penguin-pipeline-training-rc-abcde".into());
    let mut status = RunStatus::default();
    status.dependencies.pipeline.version = "observed-by-the-run".into();
    status.completion_state = completed.then_some(CompletionState::Succeeded);
    run.status = Some(status);
    run
}

#[test]
fn decision_6_dedup_compares_run_spec() {
    let rc = dependant_with("run-2", Some("run-1"));
    let fresh = run_configuration::plan(&dependant_observed(rc.clone()));
    let would_create = created_runs(&fresh)[0].clone();

    // An in-flight owned Run with the same spec (whatever its observed state) suppresses the creation ...
    let mut o = dependant_observed(rc.clone());
    o.runs = vec![owned_run(&would_create, false)];
    let plan = run_configuration::plan(&o);
    assert!(created_runs(&plan).is_empty(), "{plan:?}");
    assert_eq!(plan.commands, vec![fresh.commands[1].clone()]);

    // ... one with a different spec does not ...
    let mut other = owned_run(&would_create, false);
    other.spec.experiment_name = "other".into();
    o.runs = vec![other];
    assert_eq!(created_runs(&run_configuration::plan(&o)).len(), 1);

    // ... nor does a completed Run: the same spec may legitimately run again.
    o.runs = vec![owned_run(&would_create, true)];
    assert_eq!(created_runs(&run_configuration::plan(&o)).len(), 1);
}

#[test]
fn spec_3_7_step_6_run_spec_change_wins_over_pipeline_change() {
    let mut rc = stub_rc();
    let mut status = RunConfigurationStatus::default();
    status.dependencies.pipeline.version = "v1".into();
    rc.status = Some(status);
    let mut o = observed(rc.clone());
    o.pipeline = succeeded_pipeline("v1");
    let plan = run_configuration::plan(&o);
    let runs = created_runs(&plan);
    assert_eq!(runs.len(), 1);
    let labels = runs[0].metadata.labels.clone().unwrap();
    assert_eq!(labels[labels::TRIGGER_TYPE], "onChangeRunSpec");
    assert_eq!(labels[labels::TRIGGER_SOURCE], "stub-runconfiguration");
    assert_eq!(labels[labels::TRIGGER_SOURCE_NAMESPACE], "default");
    assert_eq!(runs[0].spec.pipeline.to_string(), "stub-pipeline:v1");
    let (status, _) = set_status(&plan);
    assert_eq!(status.triggers, stub_synced_status(&rc).triggers);
}

#[test]
fn spec_3_7_step_6_pipeline_change_triggers_on_change_pipeline() {
    let mut rc = stub_rc();
    let mut status = stub_synced_status(&rc);
    status.dependencies.pipeline.version = "v2".into();
    rc.status = Some(status);
    let mut o = observed(rc);
    o.pipeline = succeeded_pipeline("v2");
    let plan = run_configuration::plan(&o);
    let runs = created_runs(&plan);
    assert_eq!(runs.len(), 1);
    let labels = runs[0].metadata.labels.clone().unwrap();
    assert_eq!(labels[labels::TRIGGER_TYPE], "onChangePipeline");
    assert_eq!(labels[labels::TRIGGER_SOURCE], "stub-pipeline");
    assert_eq!(labels[labels::TRIGGER_SOURCE_NAMESPACE], "default");
    assert_eq!(runs[0].spec.pipeline.to_string(), "stub-pipeline:v2");
    assert_eq!(set_status(&plan).0.triggers.pipeline.version, "v2");
}

#[test]
fn spec_1_4_trigger_labels_are_sanitised() {
    let rc = stub_rc();
    let indicator = TriggerIndicator {
        type_: "runConfiguration".into(),
        source: "a.b/c:d".into(),
        source_namespace: "ns/x".into(),
    };
    let run = run_configuration::desired_run(&rc, &RunConfigurationStatus::default(), "default", &indicator);
    let labels = run.metadata.labels.unwrap();
    assert_eq!(labels[labels::TRIGGER_SOURCE], "ab_cd");
    assert_eq!(labels[labels::TRIGGER_SOURCE_NAMESPACE], "ns_x");
}

#[test]
fn decision_4_updating_while_swapping_schedules() {
    let mut rc = stub_rc();
    rc.status = Some(stub_synced_status(&rc));
    let mut o = observed(rc.clone());
    o.pipeline = succeeded_pipeline("v1");
    let plan = run_configuration::plan(&o);
    let [
        Command::CreateRunSchedule(rs),
        Command::SetStatus { status, event },
    ] = plan.commands.as_slice()
    else {
        panic!("{plan:?}");
    };
    assert_eq!(
        rs.metadata.generate_name.as_deref(),
        Some("stub-runconfiguration-")
    );
    assert_eq!(
        rs.metadata.owner_references.as_ref().unwrap()[0].kind,
        "RunConfiguration"
    );
    assert_eq!(
        rs.spec.provider,
        "kfp-operator-system/stub".parse::<NamespacedName>().unwrap()
    );
    assert_eq!(rs.spec.pipeline.to_string(), "stub-pipeline:v1");
    assert_eq!(rs.spec.experiment_name, "Default");
    assert_eq!(rs.spec.schedule, rc.spec.triggers.schedules[0]);
    assert_eq!(status.conditions[0].reason, "Updating");
    assert_eq!(status.conditions[0].message, WAITING_FOR_RUN_SCHEDULES);
    assert_eq!(status.provider, "kfp-operator-system/stub".parse().unwrap());
    assert_eq!(status.observed_generation, 2);
    assert_eq!(
        event.as_ref().unwrap(),
        &self::event(
            EventType::Normal,
            "Syncing",
            &format!("Updating: {WAITING_FOR_RUN_SCHEDULES}")
        )
    );
}

#[test]
fn spec_3_7_step_7_changed_schedules_are_replaced_never_updated() {
    let mut rc = stub_rc();
    rc.status = Some(stub_synced_status(&rc));
    let mut stale = owned_schedules(&rc, SynchronizationState::Succeeded, "");
    stale[0].spec.schedule.cron_expression = CronExpression::unchecked("0 0 * * *");
    stale[0].metadata.name = Some("old".into());
    let mut o = observed(rc);
    o.pipeline = succeeded_pipeline("v1");
    o.run_schedules = stale;
    let plan = run_configuration::plan(&o);
    assert!(matches!(
        plan.commands.as_slice(),
        [Command::CreateRunSchedule(_), Command::DeleteRunSchedule { name }, Command::SetStatus { .. }] if name == "old"
    ));
    assert_eq!(set_status(&plan).0.conditions[0].reason, "Updating");
}

#[test]
fn spec_3_7_step_7_resolved_parameters_go_into_run_schedules() {
    let mut rc = dependant_with("run-2", Some("run-2"));
    rc.spec.triggers.schedules = vec![serde_json::from_str(r#"{"cronExpression":"0 * * * *"}"#).unwrap()];
    let plan = run_configuration::plan(&dependant_observed(rc));
    let Some(Command::CreateRunSchedule(rs)) = plan.commands.first() else {
        panic!("{plan:?}")
    };
    assert_eq!(
        rs.spec.parameters,
        vec![kfp_core::values::NamedValue::new(
            "examples_location",
            "gs://b/run-2"
        )]
    );
}

#[test]
fn spec_3_7_step_7_aggregate_state() {
    let cases = [
        (
            SynchronizationState::Succeeded,
            "",
            SynchronizationState::Succeeded,
            "",
        ),
        (
            SynchronizationState::Failed,
            "boom",
            SynchronizationState::Failed,
            "boom",
        ),
        (
            SynchronizationState::Creating,
            "",
            SynchronizationState::Updating,
            WAITING_FOR_RUN_SCHEDULES,
        ),
        (
            SynchronizationState::Unknown,
            "",
            SynchronizationState::Updating,
            WAITING_FOR_RUN_SCHEDULES,
        ),
    ];
    for (child, child_message, state, message) in cases {
        let mut rc = stub_rc();
        rc.status = Some(stub_synced_status(&rc));
        let mut o = observed(rc.clone());
        o.pipeline = succeeded_pipeline("v1");
        o.run_schedules = owned_schedules(&rc, child, child_message);
        let plan = run_configuration::plan(&o);
        let mut expected = stub_synced_status(&rc);
        expected.provider = "kfp-operator-system/stub".parse().unwrap();
        expected.observed_generation = 2;
        expected.conditions = state_conditions(state, message, 2, &now());
        let event = run_configuration::status_event(state, message);
        assert_eq!(
            plan,
            Plan::new(vec![Command::SetStatus {
                status: expected,
                event: Some(event)
            }]),
            "{child:?}"
        );
    }
}

#[test]
fn spec_3_7_step_8_in_sync_is_a_no_op() {
    let mut rc = stub_rc();
    let mut status = stub_synced_status(&rc);
    status.provider = "kfp-operator-system/stub".parse().unwrap();
    status.observed_generation = 2;
    status.conditions = state_conditions(SynchronizationState::Succeeded, "", 2, &earlier());
    rc.status = Some(status);
    let mut o = observed(rc.clone());
    o.pipeline = succeeded_pipeline("v1");
    o.run_schedules = owned_schedules(&rc, SynchronizationState::Succeeded, "");
    assert_eq!(run_configuration::plan(&o), Plan::default());
}

#[test]
fn spec_3_7_schedules_being_deleted_keep_the_state_updating() {
    let mut rc = stub_rc();
    rc.status = Some(stub_synced_status(&rc));
    let mut o = observed(rc.clone());
    o.pipeline = succeeded_pipeline("v1");
    o.run_schedules = owned_schedules(&rc, SynchronizationState::Succeeded, "");
    let mut leaving = o.run_schedules[0].clone();
    leaving.metadata.name = Some("leaving".into());
    leaving.metadata.deletion_timestamp = Some(now());
    o.run_schedules.push(leaving);
    let plan = run_configuration::plan(&o);
    assert_eq!(plan.commands.len(), 1);
    assert_eq!(set_status(&plan).0.conditions[0].reason, "Updating");
}

// -------------------------------------------------------------------------------------------------------------
// Provider
// -------------------------------------------------------------------------------------------------------------

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn config() -> DefaultProviderValues {
    let container = Container {
        name: "provider-service".into(),
        env: Some(vec![
            env("OPERATORWEBHOOK", "http://feed/events"),
            env("SERVER_PORT", "8080"),
        ]),
        volume_mounts: Some(vec![VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    DefaultProviderValues {
        labels: BTreeMap::from([("team".to_string(), "ml".to_string())]),
        replicas: 1,
        pod_template_spec: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(BTreeMap::from([("tier".to_string(), "provider".to_string())])),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![container],
                volumes: Some(vec![Volume {
                    name: "tmp".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        },
        service_container_name: "provider-service".into(),
        service_port: 8080,
        metrics_port: 8081,
        feed: None,
    }
}

fn stub_provider() -> Provider {
    let mut p: Provider = serde_saphyr::from_str(&fixture("provider-stub.yaml")).unwrap();
    p.metadata.uid = Some("provider-uid".into());
    p.metadata.generation = Some(3);
    p
}

fn provider_observed(provider: Provider) -> provider::Observed {
    provider::Observed {
        provider,
        deployments: vec![],
        services: vec![],
        now: now(),
    }
}

fn container_of(deployment: &Deployment) -> Container {
    deployment.spec.clone().unwrap().template.spec.unwrap().containers[0].clone()
}

/// The objects as the API server returns them: ours plus defaulted and foreign fields.
fn as_served(mut deployment: Deployment, mut service: Service) -> (Deployment, Service) {
    deployment.metadata.resource_version = Some("42".into());
    deployment.metadata.managed_fields = Some(vec![Default::default()]);
    if let Some(spec) = deployment.spec.as_mut() {
        spec.revision_history_limit = Some(10);
        spec.progress_deadline_seconds = Some(600);
        if let Some(pod) = spec.template.spec.as_mut() {
            pod.restart_policy = Some("Always".into());
            pod.dns_policy = Some("ClusterFirst".into());
            pod.containers[0].image_pull_policy = Some("IfNotPresent".into());
            pod.containers[0].termination_message_path = Some("/dev/termination-log".into());
        }
    }
    deployment.status = Some(Default::default());
    if let Some(spec) = service.spec.as_mut() {
        spec.cluster_ip = Some("10.0.0.7".into());
        spec.cluster_ips = Some(vec!["10.0.0.7".into()]);
        spec.session_affinity = Some("None".into());
        for port in spec.ports.iter_mut().flatten() {
            port.target_port = Some(IntOrString::Int(port.port));
        }
    }
    (deployment, service)
}

#[test]
fn spec_3_8_creates_deployment_and_service_from_fixture() {
    let p = stub_provider();
    let plan = provider::plan(&provider_observed(p.clone()), &config()).unwrap();
    let [
        provider::Command::ApplyDeployment(deployment),
        provider::Command::ApplyService(service),
        provider::Command::SetStatus { status, event },
    ] = plan.commands.as_slice()
    else {
        panic!("{plan:?}");
    };
    let app = BTreeMap::from([("app".to_string(), "provider-stub".to_string())]);
    let object_labels = BTreeMap::from([
        ("app".to_string(), "provider-stub".to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "kfp-operator".to_string(),
        ),
        ("team".to_string(), "ml".to_string()),
    ]);
    assert_eq!(deployment.metadata.name.as_deref(), Some("provider-stub"));
    assert_eq!(
        deployment.metadata.namespace.as_deref(),
        Some("kfp-operator-system")
    );
    assert_eq!(deployment.metadata.labels.as_ref(), Some(&object_labels));
    let owner = &deployment.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("Provider", "provider-uid", Some(true))
    );
    let spec = deployment.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.selector.match_labels.as_ref(), Some(&app));
    let pod_labels = spec.template.metadata.as_ref().unwrap().labels.as_ref().unwrap();
    assert_eq!(pod_labels["app"], "provider-stub");
    assert_eq!(pod_labels["tier"], "provider");
    assert_eq!(
        spec.template
            .spec
            .as_ref()
            .unwrap()
            .service_account_name
            .as_deref(),
        Some("default")
    );
    let container = container_of(deployment);
    assert_eq!(
        container.image.as_deref(),
        Some("kfp-operator/provider-service:latest")
    );
    assert_eq!(
        container.env.unwrap(),
        vec![
            env("OPERATORWEBHOOK", "http://feed/events"),
            env("SERVER_PORT", "8080"),
            env("PARAMETERS_PROVIDER", "stub"),
            env("PIPELINEROOTSTORAGE", "/tmp/pipeline-root"),
            env("PROVIDERNAME", "kfp-operator-system/stub"),
        ]
    );

    assert_eq!(service.metadata.name.as_deref(), Some("provider-stub"));
    assert_eq!(service.metadata.labels.as_ref(), Some(&object_labels));
    let sspec = service.spec.as_ref().unwrap();
    assert_eq!(sspec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(sspec.selector.as_ref(), Some(&app));
    let ports: Vec<_> = sspec
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone().unwrap(), p.port, p.protocol.clone().unwrap()))
        .collect();
    assert_eq!(
        ports,
        vec![
            ("http".into(), 8080, "TCP".into()),
            ("metrics".into(), 8081, "TCP".into())
        ]
    );

    assert_eq!(status.conditions[0].reason, "Creating");
    assert_eq!(status.observed_generation, 0);
    assert_eq!(
        event.as_ref().unwrap(),
        &self::event(EventType::Normal, "Syncing", "Creating")
    );
}

#[test]
fn spec_3_8_env_merge_rules() {
    let mut p = stub_provider();
    p.spec.parameters = BTreeMap::from([
        ("kfpNamespace".to_string(), serde_json::json!("kubeflow")),
        ("multi".to_string(), serde_json::json!({"b": 1, "a": [true]})),
        ("count".to_string(), serde_json::json!(3)),
    ]);
    p.spec.pod_template_env = vec![env("SERVER_PORT", "9090"), env("EXTRA", "x")];
    p.spec.pod_template_volumes = vec![
        Volume {
            name: "tmp".into(),
            empty_dir: Some(Default::default()),
            ..Default::default()
        },
        Volume {
            name: "token".into(),
            ..Default::default()
        },
    ];
    p.spec.pod_template_volume_mounts = vec![
        VolumeMount {
            name: "tmp2".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        },
        VolumeMount {
            name: "token".into(),
            mount_path: "/var/run/secrets/kfp".into(),
            ..Default::default()
        },
    ];
    let deployment = provider::desired_deployment(&p, &config()).unwrap();
    let container = container_of(&deployment);
    assert_eq!(
        container.env.unwrap(),
        vec![
            env("OPERATORWEBHOOK", "http://feed/events"),
            env("SERVER_PORT", "9090"),
            env("PARAMETERS_COUNT", "3"),
            env("PARAMETERS_KFPNAMESPACE", "kubeflow"),
            env("PARAMETERS_MULTI", r#"{"a":[true],"b":1}"#),
            env("PIPELINEROOTSTORAGE", "/tmp/pipeline-root"),
            env("PROVIDERNAME", "kfp-operator-system/stub"),
            env("EXTRA", "x"),
        ]
    );
    let mounts: Vec<_> = container
        .volume_mounts
        .unwrap()
        .into_iter()
        .map(|m| (m.name, m.mount_path))
        .collect();
    assert_eq!(
        mounts,
        vec![
            ("tmp2".into(), "/tmp".into()),
            ("token".into(), "/var/run/secrets/kfp".into())
        ]
    );
    let volumes = deployment.spec.unwrap().template.spec.unwrap().volumes.unwrap();
    assert_eq!(
        volumes.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        vec!["tmp", "token"]
    );
    assert!(volumes[0].empty_dir.is_some(), "replaced in place");
}

/// A provider deployed by the operator can post to the feed out of the box (docs/run-completion-events.md,
/// "Authentication"): `OPERATORWEBHOOK` and a projected token for the feed's audience where the provider service reads
/// it by default.
#[test]
fn decision_12_provider_deployments_get_the_feed_url_and_a_projected_token() {
    let mut cfg = config();
    cfg.pod_template_spec.spec.as_mut().unwrap().containers[0].env = None;
    cfg.feed = Some(kfp_core::config::FeedAccess {
        webhook_url: "http://feed.ops:80/events".into(),
        token_audience: Some("kfp-operator".into()),
    });
    let deployment = provider::desired_deployment(&stub_provider(), &cfg).unwrap();
    let container = container_of(&deployment);
    let vars = container.env.clone().unwrap();
    assert!(
        vars.contains(&env("OPERATORWEBHOOK", "http://feed.ops:80/events")),
        "{vars:?}"
    );
    let mount = container
        .volume_mounts
        .clone()
        .unwrap()
        .into_iter()
        .find(|m| m.mount_path == "/var/run/secrets/kfp-operator")
        .unwrap();
    assert_eq!(
        (mount.name.as_str(), mount.read_only),
        ("kfp-operator-token", Some(true))
    );
    let volumes = deployment.spec.unwrap().template.spec.unwrap().volumes.unwrap();
    let token = volumes.iter().find(|v| v.name == "kfp-operator-token").unwrap();
    let projection = token.projected.as_ref().unwrap().sources.as_ref().unwrap()[0]
        .service_account_token
        .clone()
        .unwrap();
    assert_eq!(projection.audience.as_deref(), Some("kfp-operator"));
    assert_eq!(projection.path, "token");

    // The pod template's own OPERATORWEBHOOK and a Provider's mount at the same path win; no token without an
    // audience (static-token feeds).
    let mut p = stub_provider();
    p.spec.pod_template_volume_mounts = vec![VolumeMount {
        name: "static".into(),
        mount_path: "/var/run/secrets/kfp-operator".into(),
        ..Default::default()
    }];
    let mut cfg = config();
    cfg.feed = Some(kfp_core::config::FeedAccess {
        webhook_url: "http://other/events".into(),
        token_audience: None,
    });
    let deployment = provider::desired_deployment(&p, &cfg).unwrap();
    let container = container_of(&deployment);
    let vars = container.env.clone().unwrap();
    assert!(vars.contains(&env("OPERATORWEBHOOK", "http://feed/events")));
    assert!(
        !vars
            .iter()
            .any(|e| e.value.as_deref() == Some("http://other/events"))
    );
    let mounts = container.volume_mounts.clone().unwrap();
    assert!(mounts.iter().any(|m| m.name == "static"));
    assert!(!mounts.iter().any(|m| m.name == "kfp-operator-token"));
}

#[test]
fn spec_3_8_reserved_env_fails() {
    for name in ["providername", "PipelineRootStorage", "parameters_anything"] {
        let mut p = stub_provider();
        p.spec.pod_template_env = vec![env("OK", "1"), env(name, "x")];
        let plan = provider::plan(&provider_observed(p), &config()).unwrap();
        let message = format!(
            "environment variable \"{name}\" in spec.podTemplateEnv is reserved by the operator \
             (reserved: PROVIDERNAME, PIPELINEROOTSTORAGE, PARAMETERS_*)"
        );
        let expected_status = ProviderStatus {
            observed_generation: 0,
            conditions: state_conditions(SynchronizationState::Failed, &message, 3, &now()),
        };
        assert_eq!(
            plan,
            Plan::new(vec![provider::Command::SetStatus {
                status: expected_status,
                event: Some(event(
                    EventType::Warning,
                    "SyncFailed",
                    &format!("Failed: {message}")
                )),
            }])
        );
    }
}

#[test]
fn spec_3_8_missing_service_container_is_an_error_without_status() {
    let mut cfg = config();
    cfg.service_container_name = "absent".into();
    assert_eq!(
        provider::plan(&provider_observed(stub_provider()), &cfg),
        Err(ProviderPlanError::MissingServiceContainer {
            name: "absent".into()
        })
    );
}

#[test]
fn decision_10_api_defaulted_fields_cause_no_apply() {
    let p = stub_provider();
    let (deployment, service) = as_served(
        provider::desired_deployment(&p, &config()).unwrap(),
        provider::desired_service(&p, &config()),
    );
    let mut o = provider_observed(p);
    o.deployments = vec![deployment];
    o.services = vec![service];
    let plan = provider::plan(&o, &config()).unwrap();
    assert_eq!(
        plan,
        Plan::new(vec![provider::Command::SetStatus {
            status: ProviderStatus {
                observed_generation: 3,
                conditions: state_conditions(SynchronizationState::Succeeded, "", 3, &now()),
            },
            event: Some(event(EventType::Normal, "Synced", "Succeeded")),
        }])
    );

    // Recorded: a true no-op.
    if let Some(provider::Command::SetStatus { status, .. }) = plan.commands.first() {
        o.provider.status = Some(status.clone());
    }
    assert_eq!(provider::plan(&o, &config()).unwrap(), Plan::default());
}

#[test]
fn spec_3_8_drift_is_applied_and_updating() {
    let mut p = stub_provider();
    let (deployment, service) = as_served(
        provider::desired_deployment(&p, &config()).unwrap(),
        provider::desired_service(&p, &config()),
    );
    p.spec.service_image = "kfp-operator/provider-service:v2".into();
    let mut cfg = config();
    cfg.metrics_port = 9999;
    let mut o = provider_observed(p.clone());
    o.deployments = vec![deployment];
    o.services = vec![service];
    let plan = provider::plan(&o, &cfg).unwrap();
    let [
        provider::Command::ApplyDeployment(d),
        provider::Command::ApplyService(s),
        provider::Command::SetStatus { status, event },
    ] = plan.commands.as_slice()
    else {
        panic!("{plan:?}");
    };
    assert_eq!(**d, provider::desired_deployment(&p, &cfg).unwrap());
    assert_eq!(**s, provider::desired_service(&p, &cfg));
    assert_eq!(status.conditions[0].reason, "Updating");
    assert_eq!(event.as_ref().unwrap().message, "Updating");

    // A removed podTemplateEnv entry shrinks the env list: that is drift too.
    let mut p2 = stub_provider();
    p2.spec.pod_template_env = vec![env("EXTRA", "x")];
    let (deployment, service) = as_served(
        provider::desired_deployment(&p2, &config()).unwrap(),
        provider::desired_service(&p2, &config()),
    );
    let mut o = provider_observed(stub_provider());
    o.deployments = vec![deployment];
    o.services = vec![service];
    let plan = provider::plan(&o, &config()).unwrap();
    assert!(
        matches!(plan.commands[0], provider::Command::ApplyDeployment(_)),
        "{plan:?}"
    );
    assert_eq!(plan.commands.len(), 2);
}

#[test]
fn spec_3_8_apply_failures_name_the_subresource() {
    let o = provider_observed(stub_provider());
    for (subresource, message) in [
        (
            Subresource::Deployment,
            "Failed to reconcile subresource deployment",
        ),
        (Subresource::Service, "Failed to reconcile subresource service"),
    ] {
        let plan = provider::plan_apply_failure(&o, subresource);
        let [provider::Command::SetStatus { status, event }] = plan.commands.as_slice() else {
            panic!("{plan:?}")
        };
        assert_eq!(
            (
                status.conditions[0].reason.as_str(),
                status.conditions[0].message.as_str()
            ),
            ("Failed", message)
        );
        assert_eq!(
            event.as_ref().unwrap(),
            &self::event(EventType::Warning, "SyncFailed", &format!("Failed: {message}"))
        );
    }
}

#[test]
fn decision_10_objects_of_the_go_operator_are_replaced_by_named_ones() {
    let p = stub_provider();
    let (deployment, service) = as_served(
        provider::desired_deployment(&p, &config()).unwrap(),
        provider::desired_service(&p, &config()),
    );
    let mut legacy_deployment = deployment.clone();
    legacy_deployment.metadata.name = Some("provider-stub-x7k2p".into());
    let mut legacy_service = service.clone();
    legacy_service.metadata.name = Some("provider-stub-q9z4m".into());

    // Before ours exist: create ours, keep the old ones serving.
    let mut o = provider_observed(p);
    o.deployments = vec![legacy_deployment.clone()];
    o.services = vec![legacy_service.clone()];
    let plan = provider::plan(&o, &config()).unwrap();
    assert_eq!(plan.commands.len(), 3);
    assert!(plan.commands.iter().all(|c| !matches!(
        c,
        provider::Command::DeleteDeployment { .. } | provider::Command::DeleteService { .. }
    )));

    // Once ours exist: delete the old ones.
    o.deployments.push(deployment);
    o.services.push(service);
    let plan = provider::plan(&o, &config()).unwrap();
    assert_eq!(
        &plan.commands[..2],
        &[
            provider::Command::DeleteDeployment {
                name: "provider-stub-x7k2p".into()
            },
            provider::Command::DeleteService {
                name: "provider-stub-q9z4m".into()
            },
        ]
    );
}

#[test]
fn spec_3_8_deleting_provider_does_nothing() {
    let mut p = stub_provider();
    p.metadata.deletion_timestamp = Some(now());
    assert_eq!(
        provider::plan(&provider_observed(p), &config()).unwrap(),
        Plan::default()
    );
}

#[test]
fn run_options_reach_the_runs_and_run_schedules_and_their_definitions() {
    // docs/platform-features.md: spec.run.serviceAccount and spec.run.labels go to every child and to the provider.
    let mut rc = stub_rc();
    rc.spec.run.service_account = "trainer@p.iam.gserviceaccount.com".into();
    rc.spec.run.labels = BTreeMap::from([("team".to_string(), "ml".to_string())]);
    let status = stub_synced_status(&rc);
    let ns = rc.metadata.namespace.clone().unwrap_or_default();
    let indicator = TriggerIndicator {
        type_: "onChangeRunSpec".into(),
        source: "stub-runconfiguration".into(),
        source_namespace: ns.clone(),
    };
    let run = run_configuration::desired_run(&rc, &status, &ns, &indicator);
    assert_eq!(run.spec.service_account, rc.spec.run.service_account);
    assert_eq!(run.spec.labels, rc.spec.run.labels);
    let definition = definition::run_definition(&run.metadata, &run.spec, "rv", "v1", BTreeMap::new());
    assert_eq!(definition.service_account, "trainer@p.iam.gserviceaccount.com");
    assert_eq!(definition.labels, rc.spec.run.labels);
    let body = serde_json::to_value(&definition).unwrap();
    assert_eq!(body["serviceAccount"], "trainer@p.iam.gserviceaccount.com");
    assert_eq!(body["labels"]["team"], "ml");

    let schedules = run_configuration::desired_run_schedules(&rc, &status, &ns, &[]);
    assert!(!schedules.is_empty());
    for mut rs in schedules {
        assert_eq!(rs.spec.service_account, rc.spec.run.service_account);
        assert_eq!(rs.spec.labels, rc.spec.run.labels);
        rs.metadata.name = Some("rs".into());
        let definition = definition::run_schedule_definition(&rs, "sv");
        assert_eq!(definition.service_account, rc.spec.run.service_account);
        assert_eq!(definition.labels, rc.spec.run.labels);
    }
    // Without them the provider's body has neither key (the Go contract).
    let plain = stub_rc();
    let run = run_configuration::desired_run(&plain, &stub_synced_status(&plain), &ns, &indicator);
    let body = serde_json::to_value(definition::run_definition(
        &run.metadata,
        &run.spec,
        "rv",
        "v1",
        BTreeMap::new(),
    ))
    .unwrap();
    assert!(
        body.get("serviceAccount").is_none() && body.get("labels").is_none(),
        "{body}"
    );
}

/// The status a plan writes, asserting it is `Pending` and the plan creates no Run and no RunSchedule.
fn pending_creating_nothing(plan: &Plan<Command>) -> RunConfigurationStatus {
    assert!(created_runs(plan).is_empty(), "{plan:?}");
    assert!(
        !plan
            .commands
            .iter()
            .any(|c| matches!(c, Command::CreateRunSchedule(_))),
        "{plan:?}"
    );
    let (status, _) = set_status(plan);
    assert_eq!(status.synchronization_state(), SynchronizationState::Pending);
    status.clone()
}

#[test]
fn a_run_configuration_applied_with_its_pipeline_starts_one_pinned_run_when_the_version_comes() {
    // Issue 17: applied together, the RunConfiguration (onChange [pipeline, runSpec], one schedule) used to fire a
    // floating Run at once, then a second, pinned Run and a replaced RunSchedule when the version came.
    let mut rc = stub_rc();
    let mut o = observed(rc.clone());
    o.pipeline = Some(PipelineObservation {
        state: SynchronizationState::Creating,
        version: String::new(),
    });
    let plan = run_configuration::plan(&o);
    let status = pending_creating_nothing(&plan);
    assert!(!run_configuration::awaits_pipeline_arrival(&status));
    assert_eq!(
        status.conditions[0].message,
        format!(
            "waiting for pipeline '{}/{}' to have a succeeded version",
            rc.metadata.namespace.as_deref().unwrap_or_default(),
            rc.spec.run.pipeline.name
        )
    );

    // The Pipeline succeeds: the planner records the version, then fires once, pinned.
    rc.status = Some(status.clone());
    let mut runs = Vec::new();
    let mut schedules = Vec::new();
    for _ in 0..6 {
        let mut o = observed(rc.clone());
        o.pipeline = succeeded_pipeline("v1");
        o.run_schedules = schedules.clone();
        let plan = run_configuration::plan(&o);
        for command in plan.commands {
            match command {
                Command::CreateRun(run) => runs.push(run),
                Command::CreateRunSchedule(mut rs) => {
                    rs.metadata.name = Some(format!("rs-{}", schedules.len()));
                    schedules.push(rs)
                }
                Command::SetStatus { status, .. } => rc.status = Some(status),
                _ => {}
            }
        }
    }
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].spec.pipeline.version, "v1");
    assert_eq!(schedules.len(), 1, "{schedules:?}");
    assert_eq!(schedules[0].spec.pipeline.version, "v1");
}

#[test]
fn a_run_configuration_created_before_its_pipeline_waits_for_it_then_falls_back_to_the_provider() {
    // Issue 17: a folder applied at once may create the RunConfiguration before its Pipeline. A new one waits
    // `PIPELINE_ARRIVAL_GRACE` for the Pipeline (its arrival wakes it) instead of firing a floating Run first.
    let mut rc = stub_rc();
    rc.metadata.creation_timestamp = Some(Time(now().0 - std::time::Duration::from_secs(3)));
    let plan = run_configuration::plan(&observed(rc.clone()));
    let status = pending_creating_nothing(&plan);
    assert!(run_configuration::awaits_pipeline_arrival(&status));
    assert_eq!(
        plan.requeue_after,
        Some(run_configuration::PIPELINE_ARRIVAL_GRACE - std::time::Duration::from_secs(3))
    );
    let message = &status.conditions[0].message;
    assert!(
        message.starts_with(&format!(
            "waiting for pipeline '{}/{}' to exist (until ",
            rc.metadata.namespace.as_deref().unwrap_or_default(),
            rc.spec.run.pipeline.name
        )),
        "{message}"
    );

    // The same status on the next reconcile: no rewrite, no new Event.
    rc.status = Some(status.clone());
    let again = run_configuration::plan(&observed(rc.clone()));
    assert!(again.commands.is_empty(), "{again:?}");

    // After the grace, a Pipeline that is not a resource is the provider's to resolve: the run spec fires.
    rc.metadata.creation_timestamp = Some(Time(now().0 - run_configuration::PIPELINE_ARRIVAL_GRACE));
    let mut fired = Vec::new();
    for _ in 0..4 {
        let plan = run_configuration::plan(&observed(rc.clone()));
        for command in plan.commands {
            match command {
                Command::CreateRun(run) => fired.push(run),
                Command::SetStatus { status, .. } => rc.status = Some(status),
                _ => {}
            }
        }
    }
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].spec.pipeline.version, "");
}

/// The dependant created at `earlier() + 100 s`; its dependency's latest success ended at `ended`.
fn dependant_first_seeing(ended: Time) -> Observed {
    let mut rc = dependant_with("run-1", None);
    rc.metadata.creation_timestamp = Some(Time(Timestamp::from_second(100).unwrap()));
    let mut o = dependant_observed(rc);
    for dependency in o.run_configurations.values_mut() {
        dependency.latest_runs.succeeded.run_end_time = Some(ended.clone());
    }
    o
}

#[test]
fn decision_5_amended_a_success_after_the_dependants_creation_fires_even_when_first_seen() {
    // Ended before the dependant existed: only the baseline (decision 0002, "RunConfigurations").
    let plan = run_configuration::plan(&dependant_first_seeing(Time(Timestamp::from_second(50).unwrap())));
    assert!(created_runs(&plan).is_empty(), "{plan:?}");
    // Ended after it was created (e.g. while the operator was down before its first reconcile): one Run.
    let plan = run_configuration::plan(&dependant_first_seeing(Time(
        Timestamp::from_second(150).unwrap(),
    )));
    assert_eq!(created_runs(&plan).len(), 1, "{plan:?}");
    assert_eq!(
        created_runs(&plan)[0].metadata.labels.as_ref().unwrap()[labels::TRIGGER_TYPE],
        "runConfiguration"
    );
}

#[test]
fn decision_5_amended_a_success_seen_while_pending_fires_when_the_dependant_can_run() {
    // The dependant's Pipeline is still being created when it first sees the dependency's new success.
    let mut o = dependant_first_seeing(Time(Timestamp::from_second(150).unwrap()));
    o.pipeline = Some(PipelineObservation {
        state: SynchronizationState::Creating,
        version: String::new(),
    });
    let mut rc = o.run_configuration.clone();
    let mut status = rc.status.clone().unwrap();
    status.dependencies.pipeline.version = String::new();
    rc.status = Some(status);
    o.run_configuration = rc.clone();
    let plan = run_configuration::plan(&o);
    assert!(created_runs(&plan).is_empty(), "{plan:?}");
    let (pending, _) = set_status(&plan);
    assert_eq!(pending.synchronization_state(), SynchronizationState::Pending);
    let key = "base-namespace/penguin-pipeline-examples-rc";
    assert_eq!(
        pending.triggers.run_configurations[key].provider_id, "",
        "kept as a change"
    );

    // The Pipeline succeeds: the recorded version, then exactly one Run from the dependency's success.
    rc.status = Some(pending.clone());
    let mut runs = Vec::new();
    for _ in 0..4 {
        let mut next = o.clone();
        next.run_configuration = rc.clone();
        next.pipeline = succeeded_pipeline("v1");
        for command in run_configuration::plan(&next).commands {
            match command {
                Command::CreateRun(run) => runs.push(run),
                Command::SetStatus { status, .. } => rc.status = Some(status),
                _ => {}
            }
        }
    }
    assert_eq!(runs.len(), 1, "{runs:?}");
}

/// Issue 17: two provider runs of one Run resource (a create repeated by a crashed operator) are one logical run:
/// the second success does not trigger the dependant again; another Run's success does.
#[test]
fn one_logical_run_triggers_its_dependants_once() {
    let with_runs = |snapshot_run: &str, seen_run: &str| {
        let mut rc = dependant_with("run-2", Some("run-1"));
        let status = rc.status.as_mut().unwrap();
        let key = "base-namespace/penguin-pipeline-examples-rc";
        status
            .dependencies
            .run_configurations
            .get_mut(key)
            .unwrap()
            .run_name = snapshot_run.into();
        status.triggers.run_configurations.get_mut(key).unwrap().run_name = seen_run.into();
        rc
    };
    let same = with_runs("base-namespace/examples-abc", "base-namespace/examples-abc");
    let plan = run_configuration::plan(&dependant_observed(same));
    assert!(created_runs(&plan).is_empty(), "{plan:?}");
    let (status, _) = set_status(&plan);
    let seen = &status.triggers.run_configurations["base-namespace/penguin-pipeline-examples-rc"];
    assert_eq!(
        (seen.provider_id.as_str(), seen.run_name.as_str()),
        ("run-2", "base-namespace/examples-abc"),
        "the new provider run is recorded as seen"
    );
    for (snapshot_run, seen_run) in [
        ("base-namespace/examples-def", "base-namespace/examples-abc"),
        ("", ""),
        ("base-namespace/examples-abc", ""),
    ] {
        let plan = run_configuration::plan(&dependant_observed(with_runs(snapshot_run, seen_run)));
        assert_eq!(
            created_runs(&plan).len(),
            1,
            "{snapshot_run:?} after {seen_run:?}: {plan:?}"
        );
    }
}
