//! What a run-completion event changes in the status of the Run and RunConfiguration it names
//! (docs/run-completion-events.md, "What the operator records"; decision 0005).
//!
//! The operator's feed and its in-process event sources read the named objects, ask these functions what to write,
//! and write it with a `resourceVersion`-guarded patch. Both functions answer `None` when nothing needs writing, so
//! a replayed event (at-least-once delivery) is a no-op.
//!
//! Ordering of `status.latestRuns.succeeded` (decision 0005, "Ordering"). Each recorded run keeps its `runEndTime`; an
//! event replaces the record only when it is not older. Two runs ending at the same instant are ordered by run id, so
//! the outcome of any set of events is the same whatever order they arrive in, and a replay never flips the record back
//! (each flip would trigger the dependants of the RunConfiguration). An event without `runEndTime` cannot show that it
//! is newer: it replaces a record only when that record has no `runEndTime` either (the Go operator's "last one wins",
//! for providers that report no times).

use std::cmp::Ordering;

use crate::event::{RunCompletionEventData, RunCompletionStatus};
use crate::resources::v1beta1::{CompletionState, RunReference};
use crate::values::Artifact;

/// The `completionState` to write on the Run an event names, or `None` when it already has one.
///
/// A Run completes once: the first completion recorded stays (its `markedCompletedAt` and the completion TTL
/// count from it), so replays and late duplicates change nothing.
pub fn run_completion_state(
    current: Option<CompletionState>,
    status: RunCompletionStatus,
) -> Option<CompletionState> {
    match current {
        Some(_) => None,
        None => Some(match status {
            RunCompletionStatus::Succeeded => CompletionState::Succeeded,
            RunCompletionStatus::Failed => CompletionState::Failed,
        }),
    }
}

/// How a succeeded run compares with the recorded one (decision 0005): `Greater` or `Equal` replace it.
pub fn compare_runs(event: &RunReference, recorded: &RunReference) -> Ordering {
    if recorded.provider_id.is_empty() {
        return Ordering::Greater;
    }
    match (&event.run_end_time, &recorded.run_end_time) {
        (Some(event_end), Some(recorded_end)) => event_end
            .cmp(recorded_end)
            .then_with(|| event.provider_id.cmp(&recorded.provider_id)),
        (None, Some(_)) => Ordering::Less,
        // Without times the newest arrival wins, as in the Go operator.
        (_, None) => Ordering::Greater,
    }
}

/// The `status.latestRuns.succeeded` to write on the RunConfiguration an event names, or `None` when nothing
/// changes: the event is not a success, it is older than the recorded run, or it is the recorded run again with
/// the same artifacts.
///
/// `artifacts` are the outputs the RunConfiguration's `spec.run.artifacts` select from the event's components
/// ([`crate::artifact::select_artifacts`]).
pub fn latest_succeeded(
    recorded: &RunReference,
    event: &RunCompletionEventData,
    artifacts: Vec<Artifact>,
) -> Option<RunReference> {
    if event.status != RunCompletionStatus::Succeeded {
        return None;
    }
    let candidate = RunReference {
        provider_id: event.run_id.clone(),
        artifacts,
        run_end_time: event.run_end_time.clone(),
        run_name: event
            .run_name
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    };
    match compare_runs(&candidate, recorded) {
        Ordering::Less => None,
        _ if &candidate == recorded => None,
        _ => Some(candidate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::NamespacedName;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn time(text: &str) -> Option<Time> {
        Some(serde_json::from_value(serde_json::json!(text)).unwrap())
    }

    fn event(run_id: &str, end: Option<Time>) -> RunCompletionEventData {
        RunCompletionEventData {
            status: RunCompletionStatus::Succeeded,
            pipeline_name: NamespacedName::new("ns", "p"),
            run_configuration_name: Some(NamespacedName::new("ns", "rc")),
            run_name: None,
            run_id: run_id.into(),
            run_start_time: None,
            run_end_time: end,
            pipeline_components: Vec::new(),
            provider: NamespacedName::new("ops", "kfp"),
        }
    }

    fn recorded(run_id: &str, end: Option<Time>) -> RunReference {
        RunReference {
            provider_id: run_id.into(),
            artifacts: Vec::new(),
            run_end_time: end,
            run_name: String::new(),
        }
    }

    #[test]
    fn the_first_completion_of_a_run_stays() {
        assert_eq!(
            run_completion_state(None, RunCompletionStatus::Failed),
            Some(CompletionState::Failed)
        );
        assert_eq!(
            run_completion_state(None, RunCompletionStatus::Succeeded),
            Some(CompletionState::Succeeded)
        );
        assert_eq!(
            run_completion_state(Some(CompletionState::Failed), RunCompletionStatus::Succeeded),
            None
        );
    }

    #[test]
    fn decision_7_newer_runs_replace_older_ones_never_the_reverse() {
        let ten = time("2026-01-01T10:00:00Z");
        let eleven = time("2026-01-01T11:00:00Z");
        let empty = RunReference::default();
        let first = latest_succeeded(&empty, &event("r1", ten.clone()), Vec::new()).unwrap();
        assert_eq!(first, recorded("r1", ten.clone()));
        let second = latest_succeeded(&first, &event("r2", eleven.clone()), Vec::new()).unwrap();
        assert_eq!(second, recorded("r2", eleven.clone()));
        assert_eq!(
            latest_succeeded(&second, &event("r1", ten.clone()), Vec::new()),
            None
        );
        assert_eq!(
            latest_succeeded(&second, &event("r2", eleven.clone()), Vec::new()),
            None,
            "a replay writes nothing"
        );
        let mut failed = event("r3", time("2026-01-01T12:00:00Z"));
        failed.status = RunCompletionStatus::Failed;
        assert_eq!(latest_succeeded(&second, &failed, Vec::new()), None);
    }

    #[test]
    fn decision_7_ties_and_missing_times() {
        let ten = time("2026-01-01T10:00:00Z");
        let a = recorded("run-a", ten.clone());
        assert!(latest_succeeded(&a, &event("run-b", ten.clone()), Vec::new()).is_some());
        let b = recorded("run-b", ten.clone());
        assert_eq!(
            latest_succeeded(&b, &event("run-a", ten.clone()), Vec::new()),
            None
        );
        assert_eq!(
            latest_succeeded(&a, &event("run-x", None), Vec::new()),
            None,
            "an event without an end time does not replace a timed record"
        );
        let untimed = recorded("run-a", None);
        assert!(latest_succeeded(&untimed, &event("run-x", None), Vec::new()).is_some());
        assert!(latest_succeeded(&untimed, &event("run-x", ten), Vec::new()).is_some());
    }

    #[test]
    fn the_same_run_with_other_artifacts_is_rewritten() {
        let ten = time("2026-01-01T10:00:00Z");
        let artifacts = vec![Artifact {
            name: "model".into(),
            location: "gs://b/m".into(),
        }];
        let updated = latest_succeeded(&recorded("r1", ten.clone()), &event("r1", ten), artifacts.clone());
        assert_eq!(updated.map(|r| r.artifacts), Some(artifacts));
    }
}
