//! Artifact selection (docs/run-completion-events.md, "What the operator records"): which of a finished run's outputs a
//! RunConfiguration or Run exposes.
//!
//! Each [`OutputArtifact`] names a path `COMPONENT:ARTIFACT[:INDEX][[FILTER]]`. Against the run's
//! [`PipelineComponent`]s it resolves as follows:
//! 1. the first component whose `name` is `COMPONENT`;
//! 2. in it, the first component artifact whose `name` is `ARTIFACT`;
//! 3. the instance at `INDEX` (default 0): skipped if out of range or if its `uri` is empty;
//! 4. if a `FILTER` is given, it must hold for the instance's `metadata` ([`filter::Filter`]); an invalid filter or
//!    one that cannot be evaluated skips the artifact, as the Go operator does;
//! 5. the result is `Artifact {name, location: uri}`.
//!
//! Unresolvable outputs are left out (never an error): a run that did not produce an artifact simply does not
//! expose it. [`select`] also says why each one was left out, for logs.

pub mod filter;

use crate::event::PipelineComponent;
use crate::values::{Artifact, ArtifactPath, OutputArtifact};

pub use filter::{EvalError, Filter, FilterError};

/// Why an output artifact was not resolved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SkipReason {
    /// The run has no component of that name.
    #[error("the run has no component {component:?}")]
    ComponentNotFound {
        /// The component.
        component: String,
    },
    /// The component has no output artifact of that name.
    #[error("component {component:?} has no artifact {artifact:?}")]
    ArtifactNotFound {
        /// The component.
        component: String,
        /// The output artifact.
        artifact: String,
    },
    /// The output has fewer instances than the index asks for.
    #[error(
        "artifact {artifact:?} of component {component:?} has {count} instance(s), index {index} is out of range"
    )]
    IndexOutOfRange {
        /// The component.
        component: String,
        /// The output artifact.
        artifact: String,
        /// The index asked for.
        index: usize,
        /// How many instances there are.
        count: usize,
    },
    /// The instance has no URI.
    #[error("the selected instance has an empty uri")]
    EmptyUri,
    /// The filter does not parse.
    #[error("{0}")]
    InvalidFilter(FilterError),
    /// The filter could not be evaluated on the metadata.
    #[error("filter {filter:?} could not be evaluated: {error}")]
    FilterFailed {
        /// The filter.
        filter: String,
        /// Why it could not be evaluated.
        error: EvalError,
    },
    /// The filter is false for the metadata.
    #[error("filter {filter:?} does not match the artifact's metadata")]
    FilterNotMatched {
        /// The filter.
        filter: String,
    },
}

/// An output artifact that was left out, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// The [`OutputArtifact`]'s name.
    pub name: String,
    /// Where it was looked for.
    pub path: ArtifactPath,
    /// Why it was left out.
    pub reason: SkipReason,
}

/// The outcome of resolving a list of output artifacts: the artifacts found (in the order asked) and the rest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// The artifacts found, in the order asked.
    pub artifacts: Vec<Artifact>,
    /// The output artifacts left out, with the reason.
    pub skipped: Vec<Skipped>,
}

/// Resolves one artifact path against a run's components (steps 1-4 above), returning the instance's uri.
pub fn resolve(path: &ArtifactPath, components: &[PipelineComponent]) -> Result<String, SkipReason> {
    let component = components
        .iter()
        .find(|c| c.name == path.component)
        .ok_or_else(|| SkipReason::ComponentNotFound {
            component: path.component.clone(),
        })?;
    let artifact = component
        .component_artifacts
        .iter()
        .find(|a| a.name == path.artifact)
        .ok_or_else(|| SkipReason::ArtifactNotFound {
            component: path.component.clone(),
            artifact: path.artifact.clone(),
        })?;
    let instance = artifact
        .artifacts
        .get(path.index)
        .ok_or_else(|| SkipReason::IndexOutOfRange {
            component: path.component.clone(),
            artifact: path.artifact.clone(),
            index: path.index,
            count: artifact.artifacts.len(),
        })?;
    if instance.uri.is_empty() {
        return Err(SkipReason::EmptyUri);
    }
    if let Some(source) = &path.filter {
        let filter = Filter::parse(source).map_err(SkipReason::InvalidFilter)?;
        match filter.evaluate_object(&instance.metadata) {
            Ok(true) => {}
            Ok(false) => {
                return Err(SkipReason::FilterNotMatched {
                    filter: source.clone(),
                });
            }
            Err(error) => {
                return Err(SkipReason::FilterFailed {
                    filter: source.clone(),
                    error,
                });
            }
        }
    }
    Ok(instance.uri.clone())
}

/// Resolves every output artifact, keeping the reasons for those left out.
pub fn select(outputs: &[OutputArtifact], components: &[PipelineComponent]) -> Selection {
    let mut selection = Selection::default();
    for output in outputs {
        match resolve(&output.path, components) {
            Ok(location) => selection.artifacts.push(Artifact {
                name: output.name.clone(),
                location,
            }),
            Err(reason) => selection.skipped.push(Skipped {
                name: output.name.clone(),
                path: output.path.clone(),
                reason,
            }),
        }
    }
    selection
}

/// The artifacts `outputs` resolve to in a run's components; unresolvable ones are left out.
pub fn select_artifacts(outputs: &[OutputArtifact], components: &[PipelineComponent]) -> Vec<Artifact> {
    select(outputs, components).artifacts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ComponentArtifact, ComponentArtifactInstance};
    use serde_json::json;

    fn components() -> Vec<PipelineComponent> {
        serde_json::from_value(json!([
            {"name": "Trainer", "componentArtifacts": [
                {"name": "model", "artifacts": [
                    {"uri": "gs://b/model/0", "metadata": {"accuracy": 0.8}},
                    {"uri": "gs://b/model/1", "metadata": {"accuracy": 0.95, "stage": "prod"}},
                    {"uri": "", "metadata": {"accuracy": 1}}
                ]},
                {"name": "empty", "artifacts": []}
            ]},
            {"name": "Pusher", "componentArtifacts": [
                {"name": "pushed_model", "artifacts": [{"uri": "gs://b/m/1", "metadata": {"pushed": 1}}]}
            ]},
            {"name": "Pusher", "componentArtifacts": [
                {"name": "pushed_model", "artifacts": [{"uri": "gs://b/m/2", "metadata": {"pushed": 1}}]}
            ]}
        ]))
        .unwrap()
    }

    fn output(name: &str, path: &str) -> OutputArtifact {
        OutputArtifact {
            name: name.into(),
            path: path.parse().unwrap(),
        }
    }

    #[test]
    fn table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Pusher:pushed_model", Some("gs://b/m/1")),
            ("Pusher:pushed_model:0[pushed == 1]", Some("gs://b/m/1")),
            ("Pusher:pushed_model:0[pushed == 0]", None),
            ("Trainer:model", Some("gs://b/model/0")),
            ("Trainer:model:1", Some("gs://b/model/1")),
            (
                "Trainer:model:1[accuracy > 0.9 and stage == prod]",
                Some("gs://b/model/1"),
            ),
            ("Trainer:model:0[accuracy > 0.9]", None),
            ("Trainer:model:0[stage == prod]", None), // missing field
            ("Trainer:model:2", None),                // empty uri
            ("Trainer:model:3", None),                // index out of range
            ("Trainer:empty", None),
            ("Trainer:missing", None),
            ("Missing:model", None),
            ("Trainer:model:0[accuracy >]", None), // invalid filter
        ];
        for (path, expected) in cases {
            let got = select_artifacts(&[output("out", path)], &components());
            let expected: Vec<Artifact> = expected
                .iter()
                .map(|l| Artifact {
                    name: "out".into(),
                    location: (*l).into(),
                })
                .collect();
            assert_eq!(got, expected, "{path}");
        }
    }

    #[test]
    fn skip_reasons_explain() {
        let outputs = [
            output("a", "Missing:model"),
            output("b", "Trainer:missing"),
            output("c", "Trainer:model:3"),
            output("d", "Trainer:model:2"),
            output("e", "Trainer:model:0[accuracy >]"),
            output("f", "Trainer:model:0[stage == prod]"),
            output("g", "Trainer:model:0[accuracy > 0.9]"),
            output("h", "Trainer:model:1"),
        ];
        let selection = select(&outputs, &components());
        assert_eq!(
            selection.artifacts,
            vec![Artifact {
                name: "h".into(),
                location: "gs://b/model/1".into()
            }]
        );
        let reasons: Vec<String> = selection
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.name, s.reason))
            .collect();
        assert_eq!(
            reasons,
            vec![
                "a: the run has no component \"Missing\"",
                "b: component \"Trainer\" has no artifact \"missing\"",
                "c: artifact \"model\" of component \"Trainer\" has 3 instance(s), index 3 is out of range",
                "d: the selected instance has an empty uri",
                "e: invalid filter expression \"accuracy >\": expected a value, found end of expression at column 11",
                "f: filter \"stage == prod\" could not be evaluated: no value at selector \"stage\"",
                "g: filter \"accuracy > 0.9\" does not match the artifact's metadata",
            ]
        );
    }

    #[test]
    fn the_first_matching_component_wins_and_order_is_kept() {
        let got = select_artifacts(
            &[
                output("second", "Trainer:model:1"),
                output("first", "Pusher:pushed_model"),
            ],
            &components(),
        );
        assert_eq!(
            got,
            vec![
                Artifact {
                    name: "second".into(),
                    location: "gs://b/model/1".into()
                },
                Artifact {
                    name: "first".into(),
                    location: "gs://b/m/1".into()
                },
            ]
        );
        assert!(select_artifacts(&[], &components()).is_empty());
        assert!(select_artifacts(&[output("x", "Pusher:pushed_model")], &[]).is_empty());
    }

    #[test]
    fn metadata_object_is_what_the_filter_sees() {
        let mut metadata = serde_json::Map::new();
        metadata.insert("nested".into(), json!({"a": [1, 2]}));
        let components = vec![PipelineComponent {
            name: "C".into(),
            component_artifacts: vec![ComponentArtifact {
                name: "a".into(),
                artifacts: vec![ComponentArtifactInstance::new("u", metadata)],
            }],
        }];
        assert_eq!(
            resolve(&"C:a[2 in nested.a]".parse().unwrap(), &components),
            Ok("u".to_string())
        );
        assert!(resolve(&"C:a[nested.a.1 == 2]".parse().unwrap(), &components).is_ok());
        assert!(resolve(&"C:a[nested.a.2 == 2]".parse().unwrap(), &components).is_err());
    }
}
