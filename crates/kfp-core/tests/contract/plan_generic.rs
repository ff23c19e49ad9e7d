//! Table tests of the generic state machine, the Run extras, RunSchedule/Experiment definitions, retries, deletion
//! and `Pending` (docs/controllers.md; decision 0002). Test names keep the numbering of the design notes the project
//! started from (`spec_3_2_*`, `decision_1_*`, ...; decision 0002 says so).

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use kfp_core::definitions::{ExperimentDefinition, ProviderOutput, RunDefinition, TriggerIndicator};
use kfp_core::executor::{
    Action, FailureClass, Operation, OperationDefinition, OperationOutcome, OutcomeState, ResourceKind,
    ResourceRef,
};
use kfp_core::reconcile::generic::{
    Observed, RETRY_ANNOTATION, ResourceCommand, RetryState, StatusLike, plan_experiment, plan_pipeline,
    plan_run_schedule, retry_delay, state_event,
};
use kfp_core::reconcile::run::{PipelineObservation, RunInputs, optional_parameter_message, plan_run};
use kfp_core::reconcile::{Event, EventType, Plan, merge_state_conditions, reasons, state_conditions};
use kfp_core::resources::v1beta1::*;
use kfp_core::resources::{FINALIZER, labels};
use kfp_core::values::{
    Artifact, CronExpression, NamespacedName, PipelineIdentifier, SynchronizationState as St,
};
use kfp_core::version;

use common::{now, provider, provider_name};

type Cmd = ResourceCommand<Status>;

fn t(s: &str) -> Time {
    Time(s.parse().unwrap())
}

fn later(after: Duration) -> Time {
    Time(now().0.checked_add(after).unwrap())
}

fn status(state: St, version: &str, id: &str, message: &str) -> Status {
    Status {
        provider: if id.is_empty() && state == St::Unknown {
            ProviderAndId::default()
        } else {
            ProviderAndId {
                name: provider_name(),
                id: id.into(),
            }
        },
        version: version.into(),
        observed_generation: 1,
        conditions: if state == St::Unknown {
            vec![]
        } else {
            state_conditions(state, message, 1, &t("2023-12-31T00:00:00Z"))
        },
    }
}

fn pipeline() -> Pipeline {
    let mut p = Pipeline::new(
        "p",
        PipelineSpec {
            provider: provider_name(),
            image: "img:1".into(),
            env: vec![],
            framework: PipelineFramework {
                name: "tfx".into(),
                parameters: Default::default(),
            },
        },
    );
    p.metadata.namespace = Some("ns".into());
    p.metadata.generation = Some(1);
    p.metadata.uid = Some("uid-p".into());
    p.metadata.finalizers = Some(vec![FINALIZER.into()]);
    p
}

fn v() -> String {
    version::pipeline_version(&pipeline().spec, version::HashAlgorithm::Head)
}

fn pipeline_in(state: St, version: &str, id: &str) -> Pipeline {
    let mut p = pipeline();
    p.status = Some(status(state, version, id, ""));
    p
}

fn deleting(mut p: Pipeline) -> Pipeline {
    p.metadata.deletion_timestamp = Some(t("2023-12-31T12:00:00Z"));
    p
}

fn with_retry(mut p: Pipeline, attempt: u32, next: Time) -> Pipeline {
    let retry = RetryState {
        version: v(),
        attempt,
        next_attempt_at: next,
    };
    p.metadata.annotations = Some(BTreeMap::from([(
        RETRY_ANNOTATION.to_string(),
        retry.to_annotation(),
    )]));
    p
}

fn plan(p: &Pipeline, outcomes: &[OperationOutcome]) -> Plan<Cmd> {
    let prov = provider();
    plan_pipeline(&Observed {
        resource: p,
        provider: Some(&prov),
        outcomes,
        now: now(),
        finds_by_identity: false,
    })
}

/// The SetStatus the planner must emit: `mutate` applied, observedGeneration, merged condition, the state's event.
fn expect_status<S: StatusLike>(
    current: &S,
    state: St,
    message: &str,
    mutate: impl FnOnce(&mut Status),
) -> ResourceCommand<S> {
    let mut s = current.clone();
    mutate(s.base_mut());
    s.base_mut().observed_generation = 1;
    merge_state_conditions(&mut s.base_mut().conditions, state, message, 1, &now());
    let event = state_event(state, &s.base().version, message);
    ResourceCommand::SetStatus {
        status: s,
        event: Some(event),
    }
}

fn pref() -> ResourceRef {
    ResourceRef::new(ResourceKind::Pipeline, "ns", "p")
}

fn pipeline_definition_json(version: &str) -> serde_json::Value {
    serde_json::json!({"name": "ns/p", "version": version, "image": "img:1", "framework": {"name": "tfx", "parameters": {}}})
}

fn create_op() -> Cmd {
    ResourceCommand::Submit(Operation {
        resource: pref(),
        provider: provider_name(),
        action: Action::Create {
            definition: OperationDefinition::Pipeline {
                definition: pipeline_definition_json(&v()),
                framework_image: "compiler:1".into(),
            },
        },
        version: v(),
        created: None,
    })
}

fn update_op(id: &str) -> Cmd {
    ResourceCommand::Submit(Operation {
        resource: pref(),
        provider: provider_name(),
        action: Action::Update {
            id: id.into(),
            definition: OperationDefinition::Pipeline {
                definition: pipeline_definition_json(&v()),
                framework_image: "compiler:1".into(),
            },
        },
        version: v(),
        created: None,
    })
}

fn delete_op(id: &str) -> Cmd {
    ResourceCommand::Submit(Operation {
        resource: pref(),
        provider: provider_name(),
        action: Action::Delete { id: id.into() },
        version: v(),
        created: None,
    })
}

fn outcome(state: OutcomeState) -> OperationOutcome {
    OperationOutcome {
        key: "wf-1".into(),
        created: t("2023-12-31T23:59:00Z"),
        state,
    }
}

fn ok(id: &str) -> OperationOutcome {
    outcome(OutcomeState::Succeeded {
        output: Ok(ProviderOutput {
            id: id.into(),
            provider_error: String::new(),
        }),
    })
}

fn consumed() -> Cmd {
    ResourceCommand::MarkConsumed {
        keys: vec!["wf-1".into()],
    }
}

fn transient_message(message: &str, attempt: u32) -> String {
    let next = later(retry_delay(attempt, "uid-p"));
    format!(
        "{message} (transient failure, attempt {attempt}: next attempt at {})",
        next.0
    )
}

fn set_retry(attempt: u32) -> Cmd {
    ResourceCommand::SetRetry(Some(RetryState {
        version: v(),
        attempt,
        next_attempt_at: later(retry_delay(attempt, "uid-p")),
    }))
}

// ----------------------------------------------------------------------------------------------------------------
// Status writes: condition, observedGeneration, event (docs/controllers.md, "Events and metrics" and
// "The state machine of Pipelines, Runs, RunSchedules and Experiments")
// ----------------------------------------------------------------------------------------------------------------

#[test]
fn spec_3_1_acquires_finalizer_first() {
    let mut p = pipeline();
    p.metadata.finalizers = None;
    let first = plan(&p, &[]);
    // The finalizer alone: a DELETE racing its patch can remove the object anyway (kubernetes#77988), so nothing
    // reaches the provider before a reconcile sees the finalizer on the object.
    assert_eq!(first.commands, vec![ResourceCommand::AddFinalizer]);
    let next = plan(&pipeline(), &[]);
    assert!(
        next.commands
            .iter()
            .any(|c| matches!(c, ResourceCommand::Submit(_))),
        "{next:?}"
    );
}

#[test]
fn kstatus_conditions_follow_the_state() {
    // Issue 19: `Ready` beside `Synchronized`, and `Reconciling` / `Stalled` only while true (kstatus), so Flux,
    // Argo CD and `kubectl wait --for=condition=Ready` read health without knowing this API.
    let types = |state| -> Vec<(String, String)> {
        state_conditions(state, "m", 1, &now())
            .into_iter()
            .map(|c| (c.type_, c.status))
            .collect()
    };
    let pair = |t: &str, s: &str| (t.to_string(), s.to_string());
    assert_eq!(
        types(St::Succeeded),
        vec![pair("Synchronized", "True"), pair("Ready", "True")]
    );
    assert_eq!(
        types(St::Failed),
        vec![
            pair("Synchronized", "False"),
            pair("Ready", "False"),
            pair("Stalled", "True")
        ]
    );
    assert_eq!(
        types(St::Pending),
        vec![pair("Synchronized", "False"), pair("Ready", "False")],
        "waiting for input is not reconciling (docs/gitops.md)"
    );
    for state in [St::Unknown, St::Creating, St::Updating, St::Deleting] {
        assert_eq!(
            types(state),
            vec![
                pair("Synchronized", state.condition_status()),
                pair("Ready", "False"),
                pair("Reconciling", "True")
            ],
            "{state}"
        );
    }
    // Moving on drops what no longer holds and keeps conditions of other types.
    let mut conditions = state_conditions(St::Creating, "", 1, &now());
    conditions.push(Condition {
        type_: "Readable".into(),
        ..conditions[0].clone()
    });
    merge_state_conditions(&mut conditions, St::Succeeded, "", 1, &now());
    let kinds: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(kinds, ["Synchronized", "Ready", "Readable"]);
}

#[test]
fn a_status_from_before_the_kstatus_conditions_gets_them_once_without_an_event_or_an_operation() {
    // An upgrade (or the Go operator's objects): only `Synchronized`. A `Failed` one must not read as healthy.
    let mut p = pipeline_in(St::Failed, &v(), "id-1");
    p.status
        .as_mut()
        .unwrap()
        .conditions
        .retain(|c| c.type_ == "Synchronized");
    let upgrade = plan(&p, &[]);
    let [ResourceCommand::SetStatus { status, event }] = upgrade.commands.as_slice() else {
        panic!("{upgrade:?}")
    };
    assert_eq!(event, &None, "no Event: the state did not change");
    let types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, ["Synchronized", "Ready", "Stalled"]);
    p.status = Some(status.clone());
    assert_eq!(plan(&p, &[]).commands, vec![], "once");
}

#[test]
fn spec_3_1_observed_generation_is_written_when_nothing_else_is() {
    let mut p = pipeline_in(St::Succeeded, &v(), "id-1");
    p.metadata.generation = Some(2);
    let plan = plan(&p, &[]);
    let [ResourceCommand::SetStatus { status, event }] = plan.commands.as_slice() else {
        panic!("{plan:?}")
    };
    assert_eq!(status.observed_generation, 2);
    assert_eq!(status.conditions[0].observed_generation, Some(2));
    assert_eq!(status.conditions[0].reason, "Succeeded");
    assert_eq!(
        event.as_ref().unwrap(),
        &Event {
            type_: EventType::Normal,
            reason: "Synced".into(),
            message: format!("Succeeded [version: \"{}\"]", v())
        }
    );
}

#[test]
fn spec_3_1_events_follow_state_and_version() {
    let plan = plan(&pipeline_in(St::Creating, "", ""), &[]);
    let [ResourceCommand::SetStatus { event, .. }] = plan.commands.as_slice() else {
        panic!()
    };
    assert_eq!(
        event.as_ref().unwrap(),
        &Event {
            type_: EventType::Warning,
            reason: reasons::SYNC_FAILED.into(),
            message: "Failed: creating resource with empty version".into()
        }
    );
}

// ----------------------------------------------------------------------------------------------------------------
// The state machine's cells (docs/controllers.md, "The state machine of Pipelines, Runs, RunSchedules and
// Experiments")
// ----------------------------------------------------------------------------------------------------------------

#[test]
fn spec_3_2_cell_0_provider_changed_fails() {
    let mut p = pipeline_in(St::Succeeded, &v(), "id-1");
    p.status.as_mut().unwrap().provider.name = NamespacedName::new("prov", "old");
    let current = p.status.clone().unwrap();
    assert_eq!(
        plan(&p, &[]).commands,
        vec![expect_status(
            &current,
            St::Failed,
            "the provider has changed",
            |_| {}
        )]
    );
    // Already reported: no repeated write.
    p.status = Some(status(St::Failed, &v(), "id-1", "the provider has changed"));
    p.status.as_mut().unwrap().provider.name = NamespacedName::new("prov", "old");
    assert_eq!(plan(&p, &[]).commands, vec![]);
}

#[test]
fn spec_3_2_cell_1_unknown_creates_with_reset_status() {
    let mut p = pipeline();
    p.status = Some(Status {
        version: "stale".into(),
        observed_generation: 1,
        ..Default::default()
    });
    let plan = plan(&p, &[]);
    let expected = expect_status(&Status::default(), St::Creating, "", |s| s.version = v());
    assert_eq!(plan.commands, vec![expected, create_op()]);
}

#[test]
fn spec_3_2_cell_1_unknown_with_id_updates() {
    let mut p = pipeline();
    p.status = Some(Status {
        provider: ProviderAndId {
            name: provider_name(),
            id: "id-1".into(),
        },
        observed_generation: 1,
        ..Default::default()
    });
    let current = p.status.clone().unwrap();
    assert_eq!(
        plan(&p, &[]).commands,
        vec![
            expect_status(&current, St::Updating, "", |s| s.version = v()),
            update_op("id-1")
        ]
    );
}

#[test]
fn spec_3_2_cell_1_unknown_build_error_fails() {
    let mut p = pipeline();
    p.spec.framework.name = "kfpsdk".into();
    let version = version::pipeline_version(&p.spec, version::HashAlgorithm::Head);
    let plan = plan(&p, &[]);
    let message = "error in workflow: [kfpsdk] framework not support by provider (permanent failure: waiting for a spec change)";
    assert_eq!(
        plan.commands,
        vec![expect_status(&Status::default(), St::Failed, message, |s| s
            .version =
            version)]
    );
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn spec_3_2_cell_1_error_constructing_workflow() {
    let mut p = pipeline();
    let mut prov = provider();
    prov.spec.frameworks[0].patches = vec![Patch {
        type_: PatchType::Json,
        payload: r#"[{"op":"remove","path":"/missing"}]"#.into(),
    }];
    let plan = plan_pipeline(&Observed {
        resource: &p,
        provider: Some(&prov),
        outcomes: &[],
        now: now(),
        finds_by_identity: false,
    });
    p.status = Some(Status::default());
    let message = "error constructing workflow (permanent failure: waiting for a spec change)";
    assert_eq!(
        plan.commands,
        vec![expect_status(&Status::default(), St::Failed, message, |s| s
            .version =
            v())]
    );
}

#[test]
fn spec_3_2_cell_2_succeeded_unchanged_does_nothing() {
    assert_eq!(
        plan(&pipeline_in(St::Succeeded, &v(), "id-1"), &[]),
        Plan::default()
    );
}

#[test]
fn spec_3_2_cell_2_failed_unchanged_is_not_retried_without_retry_state() {
    assert_eq!(plan(&pipeline_in(St::Failed, &v(), "id-1"), &[]), Plan::default());
}

#[test]
fn spec_3_2_cell_2_succeeded_changed_updates() {
    let p = pipeline_in(St::Succeeded, "old", "id-1");
    let current = p.status.clone().unwrap();
    assert_eq!(
        plan(&p, &[]).commands,
        vec![
            expect_status(&current, St::Updating, "", |s| s.version = v()),
            update_op("id-1")
        ]
    );
}

#[test]
fn spec_3_2_cell_2_failed_changed_without_id_creates() {
    let p = pipeline_in(St::Failed, "old", "");
    let current = p.status.clone().unwrap();
    assert_eq!(
        plan(&p, &[]).commands,
        vec![
            expect_status(&current, St::Creating, "", |s| s.version = v()),
            create_op()
        ]
    );
}

#[test]
fn spec_3_2_cell_2_deleting_without_id_is_deleted_and_released() {
    let p = deleting(pipeline_in(St::Succeeded, &v(), ""));
    let current = p.status.clone().unwrap();
    assert_eq!(
        plan(&p, &[]).commands,
        vec![
            expect_status(&current, St::Deleted, "", |_| {}),
            ResourceCommand::RemoveFinalizer
        ]
    );
}

#[test]
fn spec_3_2_cell_2_deleting_with_id_deletes() {
    let p = deleting(pipeline_in(St::Failed, &v(), "id-1"));
    let current = p.status.clone().unwrap();
    assert_eq!(
        plan(&p, &[]).commands,
        vec![
            expect_status(&current, St::Deleting, "", |_| {}),
            delete_op("id-1")
        ]
    );
}

#[test]
fn spec_3_2_cell_3_creating_with_empty_version_fails() {
    let p = pipeline_in(St::Creating, "", "");
    let current = p.status.clone().unwrap();
    assert_eq!(
        plan(&p, &[]).commands,
        vec![expect_status(
            &current,
            St::Failed,
            "creating resource with empty version",
            |_| {}
        )]
    );
}

#[test]
fn spec_3_2_cell_3_creating_in_progress_waits() {
    let p = pipeline_in(St::Creating, &v(), "");
    assert_eq!(
        plan(&p, &[outcome(OutcomeState::InProgress), ok("x")]),
        Plan::default()
    );
}

#[test]
fn spec_3_2_cell_3_creating_success_succeeds() {
    let p = pipeline_in(St::Creating, &v(), "");
    let current = p.status.clone().unwrap();
    let expected = expect_status(&current, St::Succeeded, "", |s| {
        s.provider = ProviderAndId {
            name: provider_name(),
            id: "id-1".into(),
        }
    });
    assert_eq!(plan(&p, &[ok("id-1")]).commands, vec![expected, consumed()]);
}

#[test]
fn spec_3_2_await_latest_succeeded_wins_and_all_are_consumed() {
    let p = pipeline_in(St::Creating, &v(), "");
    let mut older = ok("old-id");
    older.key = "wf-0".into();
    older.created = t("2023-12-31T00:00:00Z");
    let failed = OperationOutcome {
        key: "wf-2".into(),
        created: t("2023-12-31T23:59:30Z"),
        state: OutcomeState::Failed {
            class: FailureClass::Transient,
            message: String::new(),
        },
    };
    let plan = plan(&p, &[older, ok("id-1"), failed]);
    let ResourceCommand::SetStatus { status, .. } = &plan.commands[0] else {
        panic!()
    };
    assert_eq!(status.provider.id, "id-1");
    assert_eq!(
        plan.commands[1],
        ResourceCommand::MarkConsumed {
            keys: vec!["wf-0".into(), "wf-1".into(), "wf-2".into()]
        }
    );
}

fn assert_transient_failure(state: St, outcomes: &[OperationOutcome], message: &str, provider: Option<&str>) {
    let id = if state == St::Updating { "id-1" } else { "" };
    let p = pipeline_in(state, &v(), id);
    let current = p.status.clone().unwrap();
    let plan = plan(&p, outcomes);
    let expected = expect_status(&current, St::Failed, &transient_message(message, 1), |s| {
        if let Some(id) = provider {
            s.provider = ProviderAndId {
                name: provider_name(),
                id: id.into(),
            };
        }
    });
    let mut commands = vec![set_retry(1), expected];
    if !outcomes.is_empty() {
        commands.push(consumed());
    }
    assert_eq!(plan.commands, commands);
    assert_eq!(plan.requeue_after, Some(retry_delay(1, "uid-p")));
}

#[test]
fn spec_3_2_await_unreadable_output_fails() {
    let o = outcome(OutcomeState::Succeeded {
        output: Err("no output".into()),
    });
    assert_transient_failure(St::Creating, &[o], "could not retrieve workflow output", None);
}

#[test]
fn spec_3_2_await_provider_error_fails_and_sets_provider() {
    let o = outcome(OutcomeState::Succeeded {
        output: Ok(ProviderOutput {
            id: "id-9".into(),
            provider_error: "backend said no".into(),
        }),
    });
    assert_transient_failure(St::Creating, &[o], "backend said no", Some("id-9"));
}

#[test]
fn spec_3_2_await_empty_id_fails() {
    assert_transient_failure(St::Creating, &[ok("")], "id was empty", None);
}

#[test]
fn spec_3_2_await_failed_operation_fails() {
    let o = outcome(OutcomeState::Failed {
        class: FailureClass::Transient,
        message: String::new(),
    });
    assert_transient_failure(St::Creating, &[o], "operation failed", None);
    let o = outcome(OutcomeState::Failed {
        class: FailureClass::Transient,
        message: "workflow Error".into(),
    });
    assert_transient_failure(St::Updating, &[o], "operation failed: workflow Error", None);
}

#[test]
fn spec_3_2_await_no_outcome_is_progress_unknown() {
    assert_transient_failure(St::Creating, &[], "operation progress unknown", None);
}

#[test]
fn spec_3_2_cell_4_updating_with_empty_version_or_id_fails() {
    for (version, id) in [("", "id-1"), ("v", "")] {
        let p = pipeline_in(St::Updating, version, id);
        let current = p.status.clone().unwrap();
        assert_eq!(
            plan(&p, &[]).commands,
            vec![expect_status(
                &current,
                St::Failed,
                "updating resource with empty version or providerId",
                |_| {}
            )]
        );
    }
}

#[test]
fn spec_3_2_cell_4_updating_success_succeeds() {
    let p = pipeline_in(St::Updating, &v(), "id-1");
    let current = p.status.clone().unwrap();
    assert_eq!(
        plan(&p, &[ok("id-1")]).commands,
        vec![expect_status(&current, St::Succeeded, "", |_| {}), consumed()]
    );
}

#[test]
fn spec_3_2_cell_5_deleting_success_is_deleted_and_released() {
    let p = deleting(pipeline_in(St::Deleting, &v(), "id-1"));
    let current = p.status.clone().unwrap();
    let expected = expect_status(&current, St::Deleted, "", |s| s.provider.id = String::new());
    assert_eq!(
        plan(&p, &[ok("")]).commands,
        vec![expected, ResourceCommand::RemoveFinalizer, consumed()]
    );
}

#[test]
fn spec_3_2_cell_5_deleting_returned_id_fails() {
    let p = deleting(pipeline_in(St::Deleting, &v(), "id-1"));
    let current = p.status.clone().unwrap();
    let expected = expect_status(
        &current,
        St::Deleting,
        &transient_message("id should be empty", 1),
        |_| {},
    );
    assert_eq!(
        plan(&p, &[ok("id-1")]).commands,
        vec![set_retry(1), expected, consumed()]
    );
}

#[test]
fn spec_3_2_cell_5_deleting_in_progress_waits() {
    let p = deleting(pipeline_in(St::Deleting, &v(), "id-1"));
    assert_eq!(plan(&p, &[outcome(OutcomeState::InProgress)]), Plan::default());
}

#[test]
fn spec_3_2_cell_6_deleted_only_releases_finalizer() {
    let p = deleting(pipeline_in(St::Deleted, &v(), ""));
    assert_eq!(plan(&p, &[]).commands, vec![ResourceCommand::RemoveFinalizer]);
    let mut gone = p.clone();
    gone.metadata.finalizers = None;
    assert_eq!(plan(&gone, &[]), Plan::default());
}

// ----------------------------------------------------------------------------------------------------------------
// Retries (decision 0002, "Retries")
// ----------------------------------------------------------------------------------------------------------------

#[test]
fn decision_1_transient_failure_retries_with_backoff() {
    let o = outcome(OutcomeState::Failed {
        class: FailureClass::Transient,
        message: "HTTP 503".into(),
    });
    assert_transient_failure(St::Creating, &[o], "operation failed: HTTP 503", None);
}

#[test]
fn decision_1_repeated_failure_doubles_the_backoff() {
    let p = with_retry(pipeline_in(St::Creating, &v(), ""), 2, t("2023-12-31T23:59:40Z"));
    let o = outcome(OutcomeState::Failed {
        class: FailureClass::Transient,
        message: String::new(),
    });
    let plan = plan(&p, &[o]);
    assert_eq!(plan.commands[0], set_retry(3));
    assert_eq!(plan.requeue_after, Some(retry_delay(3, "uid-p")));
    let ResourceCommand::SetStatus { status, .. } = &plan.commands[1] else {
        panic!()
    };
    assert_eq!(
        status.conditions[0].message,
        transient_message("operation failed", 3)
    );
}

#[test]
fn decision_1_failed_waits_until_the_next_attempt() {
    let p = with_retry(
        pipeline_in(St::Failed, &v(), ""),
        1,
        later(Duration::from_secs(7)),
    );
    assert_eq!(
        plan(&p, &[]),
        Plan::default().requeue_after(Duration::from_secs(7))
    );
}

#[test]
fn decision_1_failed_retries_when_due_without_spec_change() {
    let p = with_retry(pipeline_in(St::Failed, &v(), ""), 1, t("2023-12-31T23:59:59Z"));
    let current = p.status.clone().unwrap();
    assert_eq!(
        plan(&p, &[]).commands,
        vec![
            expect_status(&current, St::Creating, "", |s| s.version = v()),
            create_op()
        ]
    );
    let p = with_retry(pipeline_in(St::Failed, &v(), "id-1"), 1, now());
    assert_eq!(plan(&p, &[]).commands[1], update_op("id-1"));
}

#[test]
fn decision_1_permanent_failure_waits_for_spec_change() {
    let p = with_retry(pipeline_in(St::Updating, &v(), "id-1"), 2, now());
    let o = outcome(OutcomeState::Failed {
        class: FailureClass::Permanent,
        message: "HTTP 400: bad image".into(),
    });
    let current = p.status.clone().unwrap();
    let plan = plan(&p, &[o]);
    let message = "operation failed: HTTP 400: bad image (permanent failure: waiting for a spec change)";
    assert_eq!(
        plan.commands,
        vec![
            ResourceCommand::SetRetry(None),
            expect_status(&current, St::Failed, message, |_| {}),
            consumed()
        ]
    );
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn decision_1_retry_state_of_an_older_version_is_ignored() {
    let mut p = pipeline_in(St::Failed, &v(), "");
    let retry = RetryState {
        version: "older".into(),
        attempt: 4,
        next_attempt_at: now(),
    };
    p.metadata.annotations = Some(BTreeMap::from([(
        RETRY_ANNOTATION.to_string(),
        retry.to_annotation(),
    )]));
    assert_eq!(plan(&p, &[]), Plan::default());
}

#[test]
fn decision_1_success_clears_retry_state() {
    let p = with_retry(pipeline_in(St::Creating, &v(), ""), 3, now());
    let plan = plan(&p, &[ok("id-1")]);
    assert_eq!(plan.commands[0], ResourceCommand::SetRetry(None));
    assert!(
        matches!(&plan.commands[1], ResourceCommand::SetStatus { status, .. } if status.conditions[0].reason == "Succeeded")
    );
}

// ----------------------------------------------------------------------------------------------------------------
// Deletion (decision 0002, "Deletion and missing providers")
// ----------------------------------------------------------------------------------------------------------------

#[test]
fn decision_2_deleting_while_creating_waits_for_the_operation() {
    let p = deleting(pipeline_in(St::Creating, &v(), ""));
    assert_eq!(plan(&p, &[outcome(OutcomeState::InProgress)]), Plan::default());
    // Once it finished, the state is recorded; the next reconcile deletes.
    let current = p.status.clone().unwrap();
    let expected = expect_status(&current, St::Succeeded, "", |s| s.provider.id = "id-1".into());
    assert_eq!(plan(&p, &[ok("id-1")]).commands, vec![expected, consumed()]);
    let next = deleting(pipeline_in(St::Succeeded, &v(), "id-1"));
    assert_eq!(plan(&next, &[]).commands[1], delete_op("id-1"));
}

#[test]
fn decision_2_deletion_from_unknown_and_pending() {
    for state in [St::Unknown, St::Pending] {
        let p = deleting(pipeline_in(state, "", ""));
        let current = p.status.clone().unwrap();
        assert_eq!(
            plan(&p, &[]).commands,
            vec![
                expect_status(&current, St::Deleted, "", |_| {}),
                ResourceCommand::RemoveFinalizer
            ]
        );
    }
}

#[test]
fn decision_2_failed_delete_is_retried_with_backoff() {
    let p = deleting(pipeline_in(St::Deleting, &v(), "id-1"));
    let current = p.status.clone().unwrap();
    let o = outcome(OutcomeState::Failed {
        class: FailureClass::Permanent,
        message: "HTTP 500".into(),
    });
    let plan1 = plan(&p, &[o]);
    let expected = expect_status(
        &current,
        St::Deleting,
        &transient_message("operation failed: HTTP 500", 1),
        |_| {},
    );
    assert_eq!(plan1.commands, vec![set_retry(1), expected, consumed()]);
    assert_eq!(plan1.requeue_after, Some(retry_delay(1, "uid-p")));

    let waiting = with_retry(p.clone(), 1, later(Duration::from_secs(4)));
    assert_eq!(
        plan(&waiting, &[]),
        Plan::default().requeue_after(Duration::from_secs(4))
    );
    let due = with_retry(p, 1, now());
    assert_eq!(plan(&due, &[]).commands, vec![delete_op("id-1")]);
}

fn plan_finding(p: &Pipeline, outcomes: &[OperationOutcome]) -> Plan<Cmd> {
    let prov = provider();
    plan_pipeline(&Observed {
        resource: p,
        provider: Some(&prov),
        outcomes,
        now: now(),
        finds_by_identity: true,
    })
}

/// Issue 17: a resource deleted after a create whose answer was lost (`Failed`, no id) deletes by identity when
/// the executor can look up, instead of leaving the provider's object behind; a failure retries the same way.
#[test]
fn exactly_once_failed_without_id_deletes_by_identity_when_the_executor_finds() {
    let p = deleting(pipeline_in(St::Failed, &v(), ""));
    let current = p.status.clone().unwrap();
    assert_eq!(
        plan_finding(&p, &[]).commands,
        vec![expect_status(&current, St::Deleting, "", |_| {}), delete_op("")]
    );
    // Without lookups (Argo) the object is released as before.
    assert_eq!(
        plan(&p, &[]).commands,
        vec![
            expect_status(&current, St::Deleted, "", |_| {}),
            ResourceCommand::RemoveFinalizer
        ]
    );
    // Nothing was ever submitted from Succeeded/Pending/Unknown without an id: no lookup.
    let succeeded = deleting(pipeline_in(St::Succeeded, &v(), ""));
    assert_eq!(
        plan_finding(&succeeded, &[]).commands[1],
        ResourceCommand::RemoveFinalizer
    );
    // A failed lookup-delete waits for its retry and then looks up again.
    let retrying = with_retry(deleting(pipeline_in(St::Deleting, &v(), "")), 1, now());
    assert_eq!(plan_finding(&retrying, &[]).commands, vec![delete_op("")]);
}

#[test]
fn decision_2_provider_gone_releases_finalizer() {
    let p = deleting(pipeline_in(St::Deleting, &v(), "id-1"));
    let plan = plan_pipeline(&Observed {
        resource: &p,
        provider: None,
        outcomes: &[],
        now: now(),
        finds_by_identity: false,
    });
    assert_eq!(
        plan.commands,
        vec![
            ResourceCommand::RecordEvent(Event {
                type_: EventType::Warning,
                reason: "ProviderGone".into(),
                message: "the provider prov/kfp no longer exists; the provider-side resource with id \"id-1\" may be left behind"
                    .into(),
            }),
            ResourceCommand::RemoveFinalizer,
        ]
    );
}

#[test]
fn decision_2_missing_provider_without_deletion_requeues() {
    let p = pipeline_in(St::Succeeded, "old", "id-1");
    let plan = plan_pipeline(&Observed {
        resource: &p,
        provider: None,
        outcomes: &[],
        now: now(),
        finds_by_identity: false,
    });
    assert_eq!(plan, Plan::default().requeue_after(Duration::from_secs(30)));
}

// ----------------------------------------------------------------------------------------------------------------
// RunSchedule and Experiment definitions (docs/provider-service.md, "Request bodies")
// ----------------------------------------------------------------------------------------------------------------

#[test]
fn spec_3_5_run_schedule_definition() {
    let mut rs = RunSchedule::new(
        "rs",
        RunScheduleSpec {
            provider: provider_name(),
            pipeline: PipelineIdentifier::new("pl", "1.0"),
            experiment_name: "exp".into(),
            parameters: vec![kfp_core::values::NamedValue::new("a", "1")],
            artifacts: vec![],
            schedule: Schedule {
                cron_expression: CronExpression::unchecked("0 * * * *"),
                start_time: None,
                end_time: None,
            },
            ..RunScheduleSpec::default()
        },
    );
    rs.metadata.namespace = Some("ns".into());
    rs.metadata.generation = Some(1);
    rs.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "pipelines.kubeflow.org/v1beta1".into(),
        kind: "RunConfiguration".into(),
        name: "rc".into(),
        uid: "u".into(),
        controller: Some(true),
        block_owner_deletion: None,
    }]);
    let prov = provider();
    let observe = |rs: &RunSchedule| {
        plan_run_schedule(&Observed {
            resource: rs,
            provider: Some(&prov),
            outcomes: &[],
            now: now(),
            finds_by_identity: false,
        })
    };
    assert_eq!(observe(&rs).commands, vec![ResourceCommand::AddFinalizer]);
    rs.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
    let plan = observe(&rs);
    let ResourceCommand::Submit(Operation {
        action: Action::Create {
            definition: OperationDefinition::RunSchedule(d),
        },
        ..
    }) = &plan.commands[1]
    else {
        panic!("{plan:?}")
    };
    assert_eq!(d.name, NamespacedName::new("ns", "rs"));
    assert_eq!(
        d.version,
        version::run_schedule_version(&rs.spec, version::HashAlgorithm::Head)
    );
    assert_eq!(d.pipeline_name, NamespacedName::new("ns", "pl"));
    assert_eq!(d.pipeline_version, "1.0");
    assert_eq!(d.run_configuration_name, NamespacedName::new("ns", "rc"));
    assert_eq!(d.experiment_name, NamespacedName::new("ns", "exp"));
    assert_eq!(d.parameters, BTreeMap::from([("a".to_string(), "1".to_string())]));
    assert_eq!(
        d.trigger_indicator,
        TriggerIndicator {
            type_: "schedule".into(),
            source: "rs".into(),
            source_namespace: "ns".into()
        }
    );
    assert_eq!(d.schedule.cron_expression, "0 * * * *");
}

#[test]
fn spec_3_6_experiment_create() {
    let mut e = Experiment::new(
        "e",
        ExperimentSpec {
            provider: provider_name(),
            description: "d".into(),
        },
    );
    e.metadata.namespace = Some("ns".into());
    e.metadata.finalizers = Some(vec![FINALIZER.into()]);
    let prov = provider();
    let plan = plan_experiment(&Observed {
        resource: &e,
        provider: Some(&prov),
        outcomes: &[],
        now: now(),
        finds_by_identity: false,
    });
    let version = version::experiment_version(&e.spec, version::HashAlgorithm::Head);
    assert_eq!(
        plan.commands[1],
        ResourceCommand::Submit(Operation {
            resource: ResourceRef::new(ResourceKind::Experiment, "ns", "e"),
            provider: provider_name(),
            action: Action::Create {
                definition: OperationDefinition::Experiment(ExperimentDefinition {
                    name: NamespacedName::new("ns", "e"),
                    version: version.clone(),
                    description: "d".into()
                })
            },
            version,
            created: None,
        })
    );
}

// ----------------------------------------------------------------------------------------------------------------
// Runs and `Pending` (docs/controllers.md, "Runs")
// ----------------------------------------------------------------------------------------------------------------

fn run(parameters: Vec<Parameter>) -> Run {
    let mut r = Run::new(
        "r",
        RunSpec {
            provider: provider_name(),
            pipeline: PipelineIdentifier::new("pl", ""),
            experiment_name: "exp".into(),
            parameters,
            ..RunSpec::default()
        },
    );
    r.metadata.namespace = Some("ns".into());
    r.metadata.generation = Some(1);
    r.metadata.uid = Some("uid-r".into());
    r.metadata.finalizers = Some(vec![FINALIZER.into()]);
    r
}

fn run_status(pipeline_version: &str, deps: BTreeMap<String, RunReference>) -> RunStatus {
    RunStatus {
        status: Status {
            observed_generation: 1,
            ..Default::default()
        },
        dependencies: Dependencies {
            run_configurations: deps,
            pipeline: ObservedPipeline {
                version: pipeline_version.into(),
            },
        },
        ..Default::default()
    }
}

fn inputs() -> RunInputs {
    RunInputs {
        pipeline: Some(PipelineObservation {
            state: St::Succeeded,
            version: "pv1".into(),
        }),
        run_configurations: BTreeMap::new(),
        run_completion_ttl: None,
    }
}

fn plan_r(r: &Run, inputs: &RunInputs) -> Plan<ResourceCommand<RunStatus>> {
    let prov = provider();
    plan_run(
        &Observed {
            resource: r,
            provider: Some(&prov),
            outcomes: &[],
            now: now(),
            finds_by_identity: false,
        },
        inputs,
    )
}

fn value_from(name: &str, rc: &str, artifact: &str, optional: bool) -> Parameter {
    Parameter {
        name: name.into(),
        value: String::new(),
        value_from: Some(ValueFrom {
            run_configuration_ref: RunConfigurationRef {
                name: rc.parse().unwrap(),
                output_artifact: artifact.into(),
                optional,
            },
        }),
    }
}

#[test]
fn spec_3_4_floating_pipeline_version_is_snapshotted() {
    let r = run(vec![]);
    let plan = plan_r(&r, &inputs());
    assert_eq!(
        plan.commands,
        vec![ResourceCommand::SetStatus {
            status: run_status("pv1", BTreeMap::new()),
            event: None
        }]
    );
}

#[test]
fn spec_3_4_fixed_pipeline_version_is_used() {
    let mut r = run(vec![]);
    r.spec.pipeline.version = "fixed".into();
    let plan = plan_r(&r, &inputs());
    assert_eq!(
        plan.commands,
        vec![ResourceCommand::SetStatus {
            status: run_status("fixed", BTreeMap::new()),
            event: None
        }]
    );
}

#[test]
fn spec_3_4_missing_pipeline_version_pends() {
    let r = run(vec![]);
    let mut i = inputs();
    i.pipeline = Some(PipelineObservation {
        state: St::Creating,
        version: "x".into(),
    });
    let plan = plan_r(&r, &i);
    let [ResourceCommand::SetStatus { status, .. }] = plan.commands.as_slice() else {
        panic!("{plan:?}")
    };
    let c = &status.status.conditions[0];
    assert_eq!((c.reason.as_str(), c.status.as_str()), ("Pending", "False"));
    assert_eq!(
        c.message,
        "waiting for pipeline 'ns/pl' to have a succeeded version"
    );
    assert_eq!(status.status.provider.name, provider_name());
    assert!(status.status.provider.id.is_empty());
}

#[test]
fn spec_3_4_run_is_created_with_its_definition() {
    let mut r = run(vec![Parameter {
        name: "a".into(),
        value: "1".into(),
        value_from: None,
    }]);
    r.metadata.labels = Some(BTreeMap::from([
        (labels::RUN_CONFIGURATION_NAME.to_string(), "rc".to_string()),
        (labels::TRIGGER_TYPE.to_string(), "onChangePipeline".to_string()),
        (labels::TRIGGER_SOURCE.to_string(), "pl".to_string()),
        (labels::TRIGGER_SOURCE_NAMESPACE.to_string(), "ns".to_string()),
    ]));
    r.status = Some(run_status("pv1", BTreeMap::new()));
    let plan = plan_r(&r, &inputs());
    let version = version::run_version(&r.spec, "pv1", version::HashAlgorithm::Head);
    let current = r.status.clone().unwrap();
    assert_eq!(
        plan.commands[0],
        expect_status(&current, St::Creating, "", |s| s.version = version.clone())
    );
    assert_eq!(
        plan.commands[1],
        ResourceCommand::Submit(Operation {
            resource: ResourceRef::new(ResourceKind::Run, "ns", "r"),
            provider: provider_name(),
            action: Action::Create {
                definition: OperationDefinition::Run(RunDefinition {
                    name: NamespacedName::new("ns", "r"),
                    version: version.clone(),
                    pipeline_name: NamespacedName::new("ns", "pl"),
                    pipeline_version: "pv1".into(),
                    run_configuration_name: NamespacedName::new("ns", "rc"),
                    experiment_name: NamespacedName::new("ns", "exp"),
                    parameters: BTreeMap::from([("a".to_string(), "1".to_string())]),
                    artifacts: vec![],
                    trigger_indicator: TriggerIndicator {
                        type_: "onChangePipeline".into(),
                        source: "pl".into(),
                        source_namespace: "ns".into()
                    },
                    ..RunDefinition::default()
                })
            },
            version,
            created: None,
        })
    );
}

#[test]
fn decision_3_unresolved_parameter_pends() {
    let r = {
        let mut r = run(vec![value_from("EXAMPLES", "base/rc", "examples", false)]);
        r.status = Some(run_status(
            "pv1",
            BTreeMap::from([("base/rc".to_string(), RunReference::default())]),
        ));
        r
    };
    let plan = plan_r(&r, &inputs());
    let current = r.status.clone().unwrap();
    let version = version::run_version(&r.spec, "pv1", version::HashAlgorithm::Head);
    // base/rc is not among the inputs: it does not exist.
    let message = "Unable to resolve parameters: dependency 'base/rc' not found";
    assert_eq!(
        plan.commands,
        vec![expect_status(&current, St::Pending, message, |s| {
            s.version = version;
            // The PROVIDER column names the Provider while the Run waits (issue 19).
            s.provider.name = provider_name();
        })]
    );
    let ResourceCommand::SetStatus { status, event } = &plan.commands[0] else {
        panic!()
    };
    assert_eq!(status.status.conditions[0].status, "False");
    assert_eq!(event.as_ref().unwrap().reason, "Syncing");
}

#[test]
fn decision_3_pending_run_proceeds_when_dependency_appears() {
    let mut r = run(vec![value_from("EXAMPLES", "base/rc", "examples", false)]);
    r.status = Some(run_status(
        "pv1",
        BTreeMap::from([("base/rc".to_string(), RunReference::default())]),
    ));
    let mut i = inputs();
    let latest = RunReference {
        provider_id: "run-1".into(),
        artifacts: vec![
            Artifact {
                name: "examples".into(),
                location: "gs://b/e".into(),
            },
            Artifact {
                name: "other".into(),
                location: "gs://b/o".into(),
            },
        ],
        run_end_time: None,
        run_name: String::new(),
    };
    i.run_configurations.insert("base/rc".into(), latest);
    let snapshot = RunReference {
        provider_id: "run-1".into(),
        artifacts: vec![Artifact {
            name: "examples".into(),
            location: "gs://b/e".into(),
        }],
        run_end_time: None,
        run_name: String::new(),
    };
    let expected = run_status("pv1", BTreeMap::from([("base/rc".to_string(), snapshot)]));
    assert_eq!(
        plan_r(&r, &i).commands,
        vec![ResourceCommand::SetStatus {
            status: expected.clone(),
            event: None
        }]
    );

    r.status = Some(expected);
    let plan = plan_r(&r, &i);
    let ResourceCommand::Submit(Operation {
        action: Action::Create {
            definition: OperationDefinition::Run(d),
        },
        ..
    }) = &plan.commands[1]
    else {
        panic!("{plan:?}")
    };
    assert_eq!(
        d.parameters,
        BTreeMap::from([("EXAMPLES".to_string(), "gs://b/e".to_string())])
    );
}

#[test]
fn spec_3_4_optional_parameter_is_skipped_with_an_event() {
    let mut r = run(vec![value_from("OPT", "rc", "a", true)]);
    r.status = Some(run_status(
        "pv1",
        BTreeMap::from([("ns/rc".to_string(), RunReference::default())]),
    ));
    let plan = plan_r(&r, &inputs());
    assert!(matches!(plan.commands[1], ResourceCommand::Submit(_)));
    assert_eq!(
        plan.commands[2],
        ResourceCommand::RecordEvent(Event {
            type_: EventType::Normal,
            reason: "Synced".into(),
            message: "Unable to resolve parameter 'OPT', but skipping as it is marked as optional.".into(),
        })
    );
    assert_eq!(
        optional_parameter_message("OPT"),
        "Unable to resolve parameter 'OPT', but skipping as it is marked as optional."
    );
}

#[test]
fn spec_3_4_completion_is_marked() {
    let mut r = run(vec![]);
    let mut s = run_status("pv1", BTreeMap::new());
    s.status = status(St::Succeeded, "v", "id-1", "");
    s.completion_state = Some(CompletionState::Succeeded);
    r.status = Some(s.clone());
    let mut i = inputs();
    i.run_completion_ttl = Some(Duration::from_secs(1800));
    let plan = plan_r(&r, &i);
    s.marked_completed_at = Some(now());
    assert_eq!(
        plan.commands,
        vec![ResourceCommand::SetStatus {
            status: s,
            event: None
        }]
    );
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(1800)));
}

#[test]
fn spec_3_4_ttl_expired_deletes_the_run() {
    let mut r = run(vec![]);
    let mut s = run_status("pv1", BTreeMap::new());
    s.status = status(
        St::Succeeded,
        &version::run_version(&r.spec, "pv1", version::HashAlgorithm::Head),
        "id-1",
        "",
    );
    s.completion_state = Some(CompletionState::Failed);
    s.marked_completed_at = Some(t("2023-12-31T23:00:00Z"));
    r.status = Some(s);
    let mut i = inputs();
    i.run_completion_ttl = Some(Duration::from_secs(1800));
    assert_eq!(plan_r(&r, &i).commands, vec![ResourceCommand::DeleteResource]);
    // Not yet expired: requeue for the remaining time.
    r.status.as_mut().unwrap().marked_completed_at = Some(t("2023-12-31T23:50:00Z"));
    assert_eq!(
        plan_r(&r, &i),
        Plan::default().requeue_after(Duration::from_secs(1200))
    );
}

#[test]
fn spec_3_4_provider_changed_fails() {
    let mut r = run(vec![]);
    let mut s = run_status("pv1", BTreeMap::new());
    s.status = status(
        St::Succeeded,
        &version::run_version(&r.spec, "pv1", version::HashAlgorithm::Head),
        "id-1",
        "",
    );
    s.status.provider.name = NamespacedName::new("prov", "old");
    r.status = Some(s.clone());
    assert_eq!(
        plan_r(&r, &inputs()).commands,
        vec![expect_status(&s, St::Failed, "the provider has changed", |_| {})]
    );
}

#[test]
fn decision_2_run_deletion_ignores_unresolved_dependencies() {
    let mut r = run(vec![value_from("X", "rc", "a", false)]);
    r.metadata.deletion_timestamp = Some(now());
    let mut s = run_status("", BTreeMap::new());
    s.status = status(St::Pending, "", "", "Unable to resolve parameters: x");
    r.status = Some(s.clone());
    assert_eq!(
        plan_r(&r, &inputs()).commands,
        vec![
            expect_status(&s, St::Deleted, "", |_| {}),
            ResourceCommand::RemoveFinalizer
        ]
    );
}
