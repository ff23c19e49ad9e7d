//! Property tests (issue 6 "fuzz target") for what the run-completion feed does with untrusted input: decoding a
//! `POST /events` body and selecting artifacts from it. Decoding never panics and valid events round-trip;
//! selection keeps its invariants whatever the components, paths and filters are.

use kfp_core::artifact::{Filter, select};
use kfp_core::event::{
    ComponentArtifact, ComponentArtifactInstance, PipelineComponent, RunCompletionEventData,
    RunCompletionStatus,
};
use kfp_core::reconcile::completion::{compare_runs, latest_succeeded};
use kfp_core::resources::v1beta1::RunReference;
use kfp_core::values::{ArtifactPath, NamespacedName, OutputArtifact};
use proptest::prelude::*;
use serde_json::{Value, json};

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z0-9 /:._-]{0,12}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const KEYS: &[&str] = &[
    "status",
    "pipelineName",
    "runConfigurationName",
    "runName",
    "runId",
    "runStartTime",
    "runEndTime",
    "pipelineComponents",
    "provider",
];

/// Objects with the event's keys holding arbitrary values: most are invalid in some field.
fn event_like() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(prop::sample::select(KEYS), json_value(), 0..KEYS.len())
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9_-]{0,5}"
}

fn metadata() -> impl Strategy<Value = serde_json::Map<String, Value>> {
    prop::collection::btree_map(
        prop::sample::select(&["pushed", "accuracy", "stage"][..]),
        json_leaf(),
        0..3,
    )
    .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn components() -> impl Strategy<Value = Vec<PipelineComponent>> {
    let instance = (
        prop_oneof![Just(String::new()), "gs://[a-z]{1,6}/[0-9]{1,3}"],
        metadata(),
    )
        .prop_map(|(uri, metadata)| ComponentArtifactInstance::new(uri, metadata));
    let artifact = (
        prop::sample::select(&["model", "examples", "pushed_model"][..]),
        prop::collection::vec(instance, 0..3),
    )
        .prop_map(|(name, artifacts)| ComponentArtifact {
            name: name.to_string(),
            artifacts,
        });
    let component = (
        prop::sample::select(&["Trainer", "Pusher", "CsvExampleGen"][..]),
        prop::collection::vec(artifact, 0..3),
    )
        .prop_map(|(name, component_artifacts)| PipelineComponent {
            name: name.to_string(),
            component_artifacts,
        });
    prop::collection::vec(component, 0..4)
}

fn filter_text() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        prop::sample::select(
            &[
                "pushed == 1",
                "accuracy > 0.5",
                "stage == prod and pushed == 1",
                "not (accuracy < 0.1)",
                "stage in [prod, dev]",
                "pushed ==",
                "((",
                "accuracy > 'x'",
            ][..]
        )
        .prop_map(|s| Some(s.to_string())),
        "[ -~]{0,16}".prop_map(Some),
    ]
}

fn outputs() -> impl Strategy<Value = Vec<OutputArtifact>> {
    let output = (
        name(),
        prop::sample::select(&["Trainer", "Pusher", "CsvExampleGen", "Missing"][..]),
        prop::sample::select(&["model", "examples", "pushed_model", "other"][..]),
        0usize..4,
        filter_text(),
    )
        .prop_map(|(name, component, artifact, index, filter)| OutputArtifact {
            name,
            path: ArtifactPath {
                component: component.to_string(),
                artifact: artifact.to_string(),
                index,
                filter,
            },
        });
    prop::collection::vec(output, 0..5)
}

fn valid_event() -> impl Strategy<Value = RunCompletionEventData> {
    (
        any::<bool>(),
        name(),
        prop::option::of(name()),
        name(),
        prop::option::of(0i64..4_000_000_000),
        components(),
    )
        .prop_map(
            |(succeeded, pipeline, rc, run_id, end, components)| RunCompletionEventData {
                status: if succeeded {
                    RunCompletionStatus::Succeeded
                } else {
                    RunCompletionStatus::Failed
                },
                pipeline_name: NamespacedName::new("ns", pipeline),
                run_configuration_name: rc.map(|rc| NamespacedName::new("ns", rc)),
                run_name: None,
                run_id,
                run_start_time: None,
                run_end_time: end.map(|seconds| {
                    serde_json::from_value(json!(
                        k8s_openapi::jiff::Timestamp::from_second(seconds)
                            .unwrap()
                            .to_string()
                    ))
                    .unwrap()
                }),
                pipeline_components: components,
                provider: NamespacedName::new("ops", "stub"),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<RunCompletionEventData>(&bytes);
    }

    #[test]
    fn decoding_event_shaped_objects_never_panics(value in event_like()) {
        if let Ok(event) = serde_json::from_value::<RunCompletionEventData>(value) {
            // Whatever decodes re-encodes and decodes to the same event.
            let again: RunCompletionEventData =
                serde_json::from_value(serde_json::to_value(&event).unwrap()).unwrap();
            prop_assert_eq!(again, event);
        }
    }

    #[test]
    fn valid_events_round_trip(event in valid_event()) {
        let text = serde_json::to_string(&event).unwrap();
        let back: RunCompletionEventData = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, event);
    }

    #[test]
    fn filters_never_panic(text in "[ -~]{0,40}", metadata in metadata()) {
        if let Ok(filter) = Filter::parse(&text) {
            let _ = filter.evaluate_object(&metadata);
        }
    }

    #[test]
    fn selection_keeps_its_invariants(outputs in outputs(), components in components()) {
        let selection = select(&outputs, &components);
        // Every output is either selected or skipped, never both, in the order asked.
        prop_assert_eq!(selection.artifacts.len() + selection.skipped.len(), outputs.len());
        let mut selected = selection.artifacts.iter().peekable();
        let mut skipped = selection.skipped.iter().peekable();
        for output in &outputs {
            if selected.peek().is_some_and(|a| a.name == output.name)
                && skipped.peek().is_none_or(|s| s.name != output.name || s.path != output.path)
            {
                let artifact = selected.next().unwrap();
                // A selected location is the uri at the path's index of the first matching component/artifact.
                let component = components.iter().find(|c| c.name == output.path.component).unwrap();
                let named = component
                    .component_artifacts
                    .iter()
                    .find(|a| a.name == output.path.artifact)
                    .unwrap();
                let instance = &named.artifacts[output.path.index];
                prop_assert!(!artifact.location.is_empty());
                prop_assert_eq!(&artifact.location, &instance.uri);
            } else {
                let skip = skipped.next().unwrap();
                prop_assert_eq!(&skip.name, &output.name);
            }
        }
        // Without a filter, an output is selected exactly when its instance exists with a uri.
        for output in outputs.iter().filter(|o| o.path.filter.is_none()) {
            let resolvable = components
                .iter()
                .find(|c| c.name == output.path.component)
                .and_then(|c| c.component_artifacts.iter().find(|a| a.name == output.path.artifact))
                .and_then(|a| a.artifacts.get(output.path.index))
                .is_some_and(|i| !i.uri.is_empty());
            let alone = select(std::slice::from_ref(output), &components);
            prop_assert_eq!(alone.artifacts.len() == 1, resolvable);
        }
    }

    #[test]
    fn the_recorded_run_is_the_newest_whatever_the_order(
        events in prop::collection::vec(valid_event(), 1..6),
        seed in any::<u64>(),
    ) {
        let events: Vec<RunCompletionEventData> = events
            .into_iter()
            .map(|mut e| {
                e.status = RunCompletionStatus::Succeeded;
                e.pipeline_components.clear();
                e
            })
            .collect();
        let apply = |order: &[RunCompletionEventData]| {
            let mut recorded = RunReference::default();
            for event in order {
                if let Some(next) = latest_succeeded(&recorded, event, Vec::new()) {
                    prop_assert!(compare_runs(&next, &recorded).is_ge());
                    recorded = next;
                }
            }
            Ok(recorded)
        };
        let forward = apply(&events)?;
        // Replaying everything again changes nothing.
        let mut twice = events.clone();
        twice.extend(events.iter().cloned());
        prop_assert_eq!(apply(&twice)?, forward.clone());
        // Among timed events, the order does not matter.
        if events.iter().all(|e| e.run_end_time.is_some()) {
            let mut shuffled = events.clone();
            let len = shuffled.len();
            shuffled.rotate_left((seed as usize) % len);
            shuffled.reverse();
            prop_assert_eq!(apply(&shuffled)?, forward);
        }
    }
}
