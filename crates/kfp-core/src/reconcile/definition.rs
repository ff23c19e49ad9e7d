//! Building what a provider operation sends (docs/provider-service.md, "Request bodies"): pure functions of the
//! resource and its Provider.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::definitions::{
    ExperimentDefinition, PipelineDefinition, PipelineFrameworkDefinition, RunDefinition,
    RunScheduleDefinition, ScheduleDefinition, TriggerIndicator,
};
use crate::executor::OperationDefinition;
use crate::resources::v1beta1::{Experiment, PatchType, Pipeline, Provider, RunSchedule, RunSpec};
use crate::resources::{GROUP, labels};
use crate::values::NamespacedName;

/// Why no definition could be built. The Display text is the `Failed` condition message (docs/platform-guide.md,
/// "Condition messages").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Something went wrong assembling the definition (e.g. a framework patch that does not apply).
    /// The definition could not be assembled (e.g. a framework patch does not apply).
    #[error("error constructing workflow")]
    Construct {
        /// What went wrong, for the log (the condition says only "error constructing workflow", as the Go operator
        /// does).
        detail: String,
    },
    /// The resource cannot be used with its provider (framework, allowed namespaces, ...).
    #[error("error in workflow: {0}")]
    Parameter(String),
}

fn meta_name(meta: &ObjectMeta) -> NamespacedName {
    NamespacedName::new(
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// A provider with `allowedNamespaces` serves only resources in those namespaces.
pub fn check_allowed_namespace(meta: &ObjectMeta, provider: &Provider) -> Result<(), BuildError> {
    let allowed = &provider.spec.allowed_namespaces;
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    if allowed.is_empty() || allowed.iter().any(|n| n == namespace) {
        return Ok(());
    }
    Err(BuildError::Parameter(format!(
        "resource {} in namespace {} is not allowed by provider {}",
        meta.name.as_deref().unwrap_or_default(),
        namespace,
        meta_name(&provider.metadata)
    )))
}

/// The patched PipelineDefinition and the framework image (docs/provider-service.md, "Request bodies"; framework names
/// compare case-insensitively).
pub fn pipeline_definition(
    pipeline: &Pipeline,
    provider: &Provider,
    version: &str,
) -> Result<OperationDefinition, BuildError> {
    check_allowed_namespace(&pipeline.metadata, provider)?;
    let requested = &pipeline.spec.framework.name;
    let (index, framework) = provider
        .spec
        .frameworks
        .iter()
        .enumerate()
        .find(|(_, f)| f.name.eq_ignore_ascii_case(requested))
        .ok_or_else(|| BuildError::Parameter(format!("[{requested}] framework not support by provider")))?;
    // Optional in the schema, as in the Go operator (docs/decisions/0015); the compile step cannot run without it.
    if framework.image.is_empty() {
        return Err(BuildError::Parameter(format!(
            "framework {:?} of provider {} has no image: set spec.frameworks[{index}].image of the Provider to \
             the framework's compiler image",
            framework.name,
            meta_name(&provider.metadata)
        )));
    }
    let definition = PipelineDefinition {
        name: meta_name(&pipeline.metadata),
        version: version.to_string(),
        image: pipeline.spec.image.clone(),
        env: pipeline.spec.env.clone(),
        framework: PipelineFrameworkDefinition {
            name: pipeline.spec.framework.name.clone(),
            parameters: pipeline.spec.framework.parameters.clone(),
        },
    };
    let mut json = serde_json::to_value(&definition).map_err(|e| BuildError::Construct {
        detail: e.to_string(),
    })?;
    for (index, patch) in framework.patches.iter().enumerate() {
        apply_patch(&mut json, patch.type_, &patch.payload).map_err(|detail| BuildError::Construct {
            detail: format!("patch {index} of framework {}: {detail}", framework.name),
        })?;
    }
    Ok(OperationDefinition::Pipeline {
        definition: json,
        framework_image: framework.image.clone(),
    })
}

/// Applies one framework patch: `json` = RFC 6902 where `add` creates missing parents (as the Go operator's
/// `EnsurePathExistsOnAdd`), `merge` = RFC 7396.
pub fn apply_patch(doc: &mut Value, type_: PatchType, payload: &str) -> Result<(), String> {
    let patch: Value = serde_json::from_str(payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    match type_ {
        PatchType::Merge => {
            json_patch::merge(doc, &patch);
            Ok(())
        }
        PatchType::Json => {
            let Value::Array(ops) = patch else {
                return Err("a json patch must be an array of operations".to_string());
            };
            for op in ops {
                if op.get("op").and_then(Value::as_str) == Some("add")
                    && let Some(path) = op.get("path").and_then(Value::as_str)
                {
                    ensure_parents(doc, path);
                }
                let parsed: json_patch::Patch = serde_json::from_value(Value::Array(vec![op]))
                    .map_err(|e| format!("invalid operation: {e}"))?;
                json_patch::patch(doc, &parsed.0).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
    }
}

/// Creates the missing containers on the way to `path`'s parent: an array when the next token is an index (or `-`),
/// else an object.
fn ensure_parents(doc: &mut Value, path: &str) {
    let tokens: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((_, parents)) = tokens.split_last() else {
        return;
    };
    let mut current = doc;
    for (i, token) in parents.iter().enumerate() {
        let next_is_index = tokens
            .get(i + 1)
            .is_some_and(|t| t == "-" || t.parse::<usize>().is_ok());
        let fresh = || {
            if next_is_index {
                Value::Array(Vec::new())
            } else {
                Value::Object(Default::default())
            }
        };
        current = match current {
            Value::Object(map) => map.entry(token.clone()).or_insert_with(fresh),
            Value::Array(items) => match token.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(item) => item,
                None => return,
            },
            _ => return,
        };
        if current.is_null() {
            *current = fresh();
        }
    }
}

/// The trigger indicator from a Run's labels (docs/concepts.md, "Labels and annotations").
fn trigger_indicator_from_labels(meta: &ObjectMeta) -> TriggerIndicator {
    let label = |key: &str| {
        meta.labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default()
    };
    TriggerIndicator {
        type_: label(labels::TRIGGER_TYPE),
        source: label(labels::TRIGGER_SOURCE),
        source_namespace: label(labels::TRIGGER_SOURCE_NAMESPACE),
    }
}

fn experiment_name(namespace: &str, experiment: &str) -> NamespacedName {
    if experiment.is_empty() {
        NamespacedName::default()
    } else {
        NamespacedName::new(namespace, experiment)
    }
}

/// The RunDefinition; `parameters` are the resolved values.
pub fn run_definition(
    meta: &ObjectMeta,
    spec: &RunSpec,
    version: &str,
    pipeline_version: &str,
    parameters: BTreeMap<String, String>,
) -> RunDefinition {
    let namespace = meta.namespace.clone().unwrap_or_default();
    let run_configuration_name = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::RUN_CONFIGURATION_NAME))
        .filter(|n| !n.is_empty())
        .map(|n| NamespacedName::new(namespace.clone(), n.clone()))
        .unwrap_or_default();
    RunDefinition {
        name: meta_name(meta),
        version: version.to_string(),
        pipeline_name: NamespacedName::new(namespace.clone(), spec.pipeline.name.clone()),
        pipeline_version: pipeline_version.to_string(),
        run_configuration_name,
        experiment_name: experiment_name(&namespace, &spec.experiment_name),
        parameters,
        artifacts: spec.artifacts.clone(),
        trigger_indicator: trigger_indicator_from_labels(meta),
        service_account: spec.service_account.clone(),
        labels: spec.labels.clone(),
    }
}

/// The RunScheduleDefinition.
pub fn run_schedule_definition(rs: &RunSchedule, version: &str) -> RunScheduleDefinition {
    let namespace = rs.metadata.namespace.clone().unwrap_or_default();
    let run_configuration_name = rs
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| {
            o.controller == Some(true)
                && o.kind == "RunConfiguration"
                && o.api_version.split('/').next() == Some(GROUP)
        })
        .map(|o| NamespacedName::new(namespace.clone(), o.name.clone()))
        .unwrap_or_default();
    RunScheduleDefinition {
        name: meta_name(&rs.metadata),
        version: version.to_string(),
        pipeline_name: NamespacedName::new(namespace.clone(), rs.spec.pipeline.name.clone()),
        pipeline_version: rs.spec.pipeline.version.clone(),
        run_configuration_name,
        experiment_name: experiment_name(&namespace, &rs.spec.experiment_name),
        parameters: rs
            .spec
            .parameters
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect(),
        artifacts: rs.spec.artifacts.clone(),
        trigger_indicator: TriggerIndicator {
            type_: "schedule".to_string(),
            source: rs.metadata.name.clone().unwrap_or_default(),
            source_namespace: namespace,
        },
        schedule: ScheduleDefinition {
            cron_expression: rs.spec.schedule.cron_expression.as_str().to_string(),
            start_time: rs.spec.schedule.start_time.clone(),
            end_time: rs.spec.schedule.end_time.clone(),
        },
        service_account: rs.spec.service_account.clone(),
        labels: rs.spec.labels.clone(),
    }
}

/// The ExperimentDefinition.
pub fn experiment_definition(experiment: &Experiment, version: &str) -> ExperimentDefinition {
    ExperimentDefinition {
        name: meta_name(&experiment.metadata),
        version: version.to_string(),
        description: experiment.spec.description.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::v1beta1::{Framework, Patch, PipelineFramework, PipelineSpec, ProviderSpec};
    use serde_json::json;

    fn provider(frameworks: Vec<Framework>, allowed: &[&str]) -> Provider {
        let mut p = Provider::new(
            "kfp",
            ProviderSpec {
                frameworks,
                allowed_namespaces: allowed.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
        );
        p.metadata.namespace = Some("prov".into());
        p
    }

    fn pipeline(framework: &str) -> Pipeline {
        let mut p = Pipeline::new(
            "p",
            PipelineSpec {
                provider: NamespacedName::new("prov", "kfp"),
                image: "img:1".into(),
                env: vec![],
                framework: PipelineFramework {
                    name: framework.into(),
                    parameters: Default::default(),
                },
            },
        );
        p.metadata.namespace = Some("ns".into());
        p
    }

    fn tfx(patches: Vec<Patch>) -> Framework {
        Framework {
            name: "tfx".into(),
            image: "tfx-compiler:1".into(),
            patches,
        }
    }

    #[test]
    fn decision_13_framework_matches_case_insensitively() {
        let def = pipeline_definition(&pipeline("TFX"), &provider(vec![tfx(vec![])], &[]), "v1").unwrap();
        let OperationDefinition::Pipeline {
            definition,
            framework_image,
        } = def
        else {
            panic!()
        };
        assert_eq!(framework_image, "tfx-compiler:1");
        assert_eq!(
            definition,
            json!({"name": "ns/p", "version": "v1", "image": "img:1", "framework": {"name": "TFX", "parameters": {}}})
        );
    }

    #[test]
    fn spec_3_2_unsupported_framework_is_an_error_in_workflow() {
        let err =
            pipeline_definition(&pipeline("kfpsdk"), &provider(vec![tfx(vec![])], &[]), "v1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "error in workflow: [kfpsdk] framework not support by provider"
        );
    }

    #[test]
    fn decision_0015_a_framework_without_image_fails_the_pipeline_naming_the_field() {
        let mut imageless = tfx(vec![]);
        imageless.image.clear();
        let provider = provider(vec![Framework::default(), imageless], &[]);
        let err = pipeline_definition(&pipeline("tfx"), &provider, "v1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "error in workflow: framework \"tfx\" of provider prov/kfp has no image: set spec.frameworks[1].image \
             of the Provider to the framework's compiler image"
        );
    }

    #[test]
    fn spec_4_1_allowed_namespaces() {
        let err = pipeline_definition(&pipeline("tfx"), &provider(vec![tfx(vec![])], &["other"]), "v1")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "error in workflow: resource p in namespace ns is not allowed by provider prov/kfp"
        );
        assert!(
            pipeline_definition(
                &pipeline("tfx"),
                &provider(vec![tfx(vec![])], &["other", "ns"]),
                "v1"
            )
            .is_ok()
        );
    }

    #[test]
    fn spec_4_3_patches_apply_in_order_and_add_creates_parents() {
        let patches = vec![
            Patch {
                type_: PatchType::Json,
                payload: r#"[{"op":"add","path":"/framework/parameters/beamArgs/0","value":{"name":"a","value":"1"}}]"#
                    .into(),
            },
            Patch {
                type_: PatchType::Json,
                payload: r#"[{"op":"add","path":"/framework/parameters/beamArgs/-","value":{"name":"b","value":"2"}}]"#
                    .into(),
            },
            Patch { type_: PatchType::Merge, payload: r#"{"image":"patched:2","extra":{"x":1}}"#.into() },
        ];
        let def = pipeline_definition(&pipeline("tfx"), &provider(vec![tfx(patches)], &[]), "v1").unwrap();
        let OperationDefinition::Pipeline { definition, .. } = def else {
            panic!()
        };
        assert_eq!(
            definition["framework"]["parameters"]["beamArgs"],
            json!([{"name":"a","value":"1"},{"name":"b","value":"2"}])
        );
        assert_eq!(definition["image"], json!("patched:2"));
        assert_eq!(definition["extra"], json!({"x": 1}));
    }

    #[test]
    fn spec_3_2_bad_patch_is_error_constructing_workflow() {
        let patches = vec![Patch {
            type_: PatchType::Json,
            payload: r#"[{"op":"remove","path":"/nope"}]"#.into(),
        }];
        let err =
            pipeline_definition(&pipeline("tfx"), &provider(vec![tfx(patches)], &[]), "v1").unwrap_err();
        assert_eq!(err.to_string(), "error constructing workflow");
    }
}
