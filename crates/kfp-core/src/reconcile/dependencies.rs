//! What Runs and RunConfigurations depend on, shared by their planners (docs/controllers.md, "Runs" and
//! "RunConfigurations").
//!
//! - [`resolve_parameters`]: turns `spec.run.parameters` into literal values, reading `valueFrom` references from the
//!   dependency snapshot in `status.dependencies.runConfigurations`.
//! - [`snapshot_run_configurations`]: the snapshot itself, taken from the referenced RunConfigurations' latest
//!   succeeded runs.
//! - [`observed_pipeline_version`]: the pipeline version a Run or RunConfiguration runs.
//!
//! All functions are pure; the controller gathers the referenced objects.

use std::collections::{BTreeMap, BTreeSet};

use crate::reconcile::{Event, EventType, reasons};
use crate::resources::v1beta1::{Dependencies, Parameter, RunReference};
use crate::values::{NamedValue, NamespacedName, PipelineIdentifier, SynchronizationState};

/// A `valueFrom` parameter that cannot be resolved (and is not optional).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolutionError {
    /// The dependency snapshot has the RunConfiguration, but its latest succeeded run lacks the artifact.
    /// The dependency's latest succeeded run did not expose the artifact.
    #[error("artifact '{artifact}' not found in dependency '{dependency}'")]
    ArtifactNotFound {
        /// The artifact (`outputArtifact`).
        artifact: String,
        /// The RunConfiguration, `namespace/name`.
        dependency: String,
    },
    /// The RunConfiguration does not exist (or the snapshot has no entry for it).
    #[error("dependency '{dependency}' not found")]
    DependencyNotFound {
        /// The RunConfiguration, `namespace/name`.
        dependency: String,
    },
    /// The RunConfiguration exists but has no succeeded run yet.
    #[error("dependency '{dependency}' has no succeeded run yet")]
    NoSucceededRun {
        /// The RunConfiguration, `namespace/name`.
        dependency: String,
    },
}

/// Every required `valueFrom` parameter that could not be resolved, in spec order (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Unresolved(pub Vec<ResolutionError>);

/// Parameters with every resolvable value filled in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedParameters {
    /// In the order of the spec; optional parameters that could not be resolved are left out.
    pub values: Vec<NamedValue>,
    /// Names of optional parameters that were left out, so the caller can tell the user
    /// ([`optional_parameter_skipped_event`]).
    pub skipped_optional: Vec<String>,
}

/// The key of a referenced RunConfiguration in `dependencies.runConfigurations` and `triggers.runConfigurations`:
/// `namespace/name`, the namespace defaulting to the referring object's.
pub fn dependency_key(reference: &NamespacedName, referring_namespace: &str) -> String {
    reference.with_default_namespace(referring_namespace).to_string()
}

/// Resolves `parameters` of an object in `namespace` against its dependency snapshot (docs/controllers.md, "Runs").
///
/// A literal `value` is taken as it is. `valueFrom` reads
/// `dependencies.runConfigurations[<ns>/<rc>].artifacts[name = outputArtifact].location`. When that is missing, an
/// optional parameter is left out (and reported in [`ResolvedParameters::skipped_optional`]); otherwise it is
/// unresolved, and every unresolved parameter is returned so a message can name all that is missing. `exists` tells
/// a RunConfiguration that is not there (`DependencyNotFound`) from one without a succeeded run (`NoSucceededRun`):
/// the snapshot keeps the same empty entry for both, as the Go operator's does.
pub fn resolve_parameters(
    parameters: &[Parameter],
    namespace: &str,
    dependencies: &Dependencies,
    exists: impl Fn(&str) -> bool,
) -> Result<ResolvedParameters, Unresolved> {
    let mut resolved = ResolvedParameters::default();
    let mut unresolved = Vec::new();
    for parameter in parameters {
        let Some(value_from) = &parameter.value_from else {
            resolved
                .values
                .push(NamedValue::new(&parameter.name, &parameter.value));
            continue;
        };
        let reference = &value_from.run_configuration_ref;
        let dependency = dependency_key(&reference.name, namespace);
        let location = match dependencies.run_configurations.get(&dependency) {
            None => Err(ResolutionError::DependencyNotFound { dependency }),
            Some(_) if !exists(&dependency) => Err(ResolutionError::DependencyNotFound { dependency }),
            Some(run) if run.provider_id.is_empty() && run.artifacts.is_empty() => {
                Err(ResolutionError::NoSucceededRun { dependency })
            }
            Some(run) => run
                .artifacts
                .iter()
                .find(|a| a.name == reference.output_artifact)
                .map(|a| a.location.clone())
                .ok_or(ResolutionError::ArtifactNotFound {
                    artifact: reference.output_artifact.clone(),
                    dependency,
                }),
        };
        match location {
            Ok(location) => resolved.values.push(NamedValue::new(&parameter.name, location)),
            Err(_) if reference.optional => resolved.skipped_optional.push(parameter.name.clone()),
            Err(error) => unresolved.push(error),
        }
    }
    if unresolved.is_empty() {
        Ok(resolved)
    } else {
        Err(Unresolved(unresolved))
    }
}

/// The message for an optional parameter that was left out (docs/controllers.md, "Runs").
pub fn optional_parameter_message(name: &str) -> String {
    format!("Unable to resolve parameter '{name}', but skipping as it is marked as optional.")
}

/// The Normal/`Synced` event for an optional parameter that was left out.
pub fn optional_parameter_skipped_event(name: &str) -> Event {
    Event {
        type_: EventType::Normal,
        reason: reasons::SYNCED.to_string(),
        message: optional_parameter_message(name),
    }
}

/// Every RunConfiguration referenced by `parameters` (`valueFrom`) and `trigger_references`, as
/// [`dependency_key`]s.
pub fn referenced_run_configurations(
    parameters: &[Parameter],
    trigger_references: &[NamespacedName],
    namespace: &str,
) -> BTreeSet<String> {
    parameters
        .iter()
        .filter_map(|p| p.value_from.as_ref())
        .map(|v| dependency_key(&v.run_configuration_ref.name, namespace))
        .chain(trigger_references.iter().map(|r| dependency_key(r, namespace)))
        .collect()
}

/// The dependency snapshot for `status.dependencies.runConfigurations` (docs/controllers.md, "Runs").
///
/// One entry per referenced RunConfiguration (parameter and trigger references, namespaces defaulting to
/// `namespace`): `{providerId, artifacts}` of its `status.latestRuns.succeeded`, keeping only the artifacts some
/// parameter reads, in the dependency's order. A RunConfiguration for which `latest_succeeded` (keyed by
/// `namespace/name`) finds nothing gets an empty entry, as does one that never succeeded. `runEndTime` is not copied:
/// dependants compare provider ids only.
pub fn snapshot_run_configurations<'a>(
    parameters: &[Parameter],
    trigger_references: &[NamespacedName],
    namespace: &str,
    latest_succeeded: impl Fn(&str) -> Option<&'a RunReference>,
) -> BTreeMap<String, RunReference> {
    let mut read_artifacts: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for parameter in parameters {
        if let Some(value_from) = &parameter.value_from {
            let reference = &value_from.run_configuration_ref;
            read_artifacts
                .entry(dependency_key(&reference.name, namespace))
                .or_default()
                .insert(reference.output_artifact.as_str());
        }
    }
    referenced_run_configurations(parameters, trigger_references, namespace)
        .into_iter()
        .map(|key| {
            let snapshot = match latest_succeeded(&key) {
                None => RunReference::default(),
                Some(succeeded) => {
                    let wanted = read_artifacts.get(&key);
                    RunReference {
                        provider_id: succeeded.provider_id.clone(),
                        artifacts: succeeded
                            .artifacts
                            .iter()
                            .filter(|a| wanted.is_some_and(|w| w.contains(a.name.as_str())))
                            .cloned()
                            .collect(),
                        run_end_time: None,
                        run_name: succeeded.run_name.clone(),
                    }
                }
            };
            (key, snapshot)
        })
        .collect()
}

/// The state and version of a referenced Pipeline, as observed by the controller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineObservation {
    /// The reason of the Pipeline's `Synchronized` condition.
    pub state: SynchronizationState,
    /// The Pipeline's `status.version`.
    pub version: String,
}

/// The pipeline version a Run or RunConfiguration runs (docs/controllers.md, "Runs").
///
/// A fixed version in `spec.pipeline` (`name:version`) wins. Otherwise the Pipeline `<ns>/<name>` decides:
/// `None` (not found) -> `""`; `Succeeded` -> its `status.version`; `Deleted` -> `""`; any other state (in flight or
/// failed) keeps `current`, the version observed before.
pub fn observed_pipeline_version(
    pipeline: &PipelineIdentifier,
    observed: Option<&PipelineObservation>,
    current: &str,
) -> String {
    if !pipeline.version.is_empty() {
        return pipeline.version.clone();
    }
    match observed {
        None => String::new(),
        Some(p) => match p.state {
            SynchronizationState::Succeeded => p.version.clone(),
            SynchronizationState::Deleted => String::new(),
            _ => current.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::v1beta1::{LatestRuns, RunConfigurationRef, RunConfigurationStatus, ValueFrom};
    use crate::values::Artifact;

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

    type Entry<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

    fn deps(entries: &[Entry]) -> Dependencies {
        Dependencies {
            run_configurations: entries
                .iter()
                .map(|(k, id, arts)| {
                    let artifacts = arts.iter().map(|(n, l)| Artifact {
                        name: (*n).into(),
                        location: (*l).into(),
                    });
                    (
                        (*k).to_string(),
                        RunReference {
                            provider_id: (*id).into(),
                            artifacts: artifacts.collect(),
                            run_end_time: None,
                            run_name: String::new(),
                        },
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn spec_3_4_resolution_reads_artifact_locations_with_default_namespace() {
        let params = vec![
            Parameter {
                name: "lit".into(),
                value: "1".into(),
                value_from: None,
            },
            value_from("a", "base/rc", "examples", false),
            value_from("b", "local-rc", "model", false),
        ];
        let d = deps(&[
            ("base/rc", "r1", &[("examples", "gs://e")]),
            ("ns/local-rc", "r2", &[("model", "gs://m")]),
        ]);
        let resolved = resolve_parameters(&params, "ns", &d, |_| true).unwrap();
        assert_eq!(
            resolved.values,
            vec![
                NamedValue::new("lit", "1"),
                NamedValue::new("a", "gs://e"),
                NamedValue::new("b", "gs://m")
            ]
        );
        assert!(resolved.skipped_optional.is_empty());
    }

    #[test]
    fn spec_3_4_resolution_errors_name_artifact_and_dependency() {
        let d = deps(&[("base/rc", "r1", &[])]);
        let resolve = |rc: &str, d: &Dependencies, exists: bool| {
            resolve_parameters(&[value_from("a", rc, "examples", false)], "ns", d, |_| exists)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            resolve("base/rc", &d, true),
            "artifact 'examples' not found in dependency 'base/rc'"
        );
        assert_eq!(resolve("other", &d, true), "dependency 'ns/other' not found");
        // The snapshot's empty entry: a RunConfiguration without a succeeded run, or one that does not exist
        // (issue 19: the latter used to say "artifact ... not found").
        let empty = deps(&[("base/rc", "", &[])]);
        assert_eq!(
            resolve("base/rc", &empty, true),
            "dependency 'base/rc' has no succeeded run yet"
        );
        assert_eq!(
            resolve("base/rc", &empty, false),
            "dependency 'base/rc' not found"
        );
    }

    #[test]
    fn spec_3_4_optional_parameters_are_skipped_and_reported() {
        let params = vec![
            value_from("a", "base/rc", "examples", true),
            value_from("b", "gone", "x", true),
        ];
        let resolved = resolve_parameters(&params, "ns", &deps(&[("base/rc", "", &[])]), |_| true).unwrap();
        assert!(resolved.values.is_empty());
        assert_eq!(resolved.skipped_optional, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(
            optional_parameter_skipped_event("a").message,
            "Unable to resolve parameter 'a', but skipping as it is marked as optional."
        );
    }

    #[test]
    fn spec_3_7_step_4_snapshot_keeps_referenced_artifacts_and_empty_entries_for_missing() {
        let params = vec![value_from("a", "base/rc", "examples", false)];
        let triggers = vec!["base/rc".parse().unwrap(), "missing".parse().unwrap()];
        let mut statuses = BTreeMap::new();
        statuses.insert(
            "base/rc".to_string(),
            RunConfigurationStatus {
                latest_runs: LatestRuns {
                    succeeded: RunReference {
                        provider_id: "run-1".into(),
                        artifacts: vec![
                            Artifact {
                                name: "other".into(),
                                location: "gs://o".into(),
                            },
                            Artifact {
                                name: "examples".into(),
                                location: "gs://e".into(),
                            },
                        ],
                        run_end_time: None,
                        run_name: String::new(),
                    },
                },
                ..Default::default()
            },
        );
        let snapshot = snapshot_run_configurations(&params, &triggers, "ns", |key| {
            statuses
                .get(key)
                .map(|s: &RunConfigurationStatus| &s.latest_runs.succeeded)
        });
        assert_eq!(snapshot.len(), 2);
        assert_eq!(snapshot["base/rc"].provider_id, "run-1");
        assert_eq!(
            snapshot["base/rc"].artifacts,
            vec![Artifact {
                name: "examples".into(),
                location: "gs://e".into()
            }]
        );
        assert_eq!(snapshot["ns/missing"], RunReference::default());
    }

    #[test]
    fn spec_3_4_rule_4b_observed_pipeline_version() {
        let floating = PipelineIdentifier::new("p", "");
        let fixed = PipelineIdentifier::new("p", "v9");
        let obs = |state, version: &str| PipelineObservation {
            state,
            version: version.into(),
        };
        assert_eq!(observed_pipeline_version(&fixed, None, "old"), "v9");
        assert_eq!(observed_pipeline_version(&floating, None, "old"), "");
        let succeeded = obs(SynchronizationState::Succeeded, "v2");
        assert_eq!(
            observed_pipeline_version(&floating, Some(&succeeded), "old"),
            "v2"
        );
        let deleted = obs(SynchronizationState::Deleted, "v2");
        assert_eq!(observed_pipeline_version(&floating, Some(&deleted), "old"), "");
        for state in [
            SynchronizationState::Updating,
            SynchronizationState::Failed,
            SynchronizationState::Unknown,
        ] {
            assert_eq!(
                observed_pipeline_version(&floating, Some(&obs(state, "v3")), "old"),
                "old"
            );
        }
    }
}
