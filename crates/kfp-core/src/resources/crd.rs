//! The CustomResourceDefinitions of all six kinds, every version in one CRD per kind (docs/reference/README.md).
//!
//! `kfp-operator crds` prints [`all`]; the output is checked in under `config/crd/`.
//!
//! The admission rules that need no lookup are also written into the v1beta1 schemas as CEL validations
//! ([`validations`]), so the API server enforces them even while the admission webhook is down: a Run's spec is
//! immutable, a parameter has `value` or `valueFrom`, a Provider's `podTemplateEnv` avoids the names the operator
//! sets (with `podTemplateEnv` bounded to 256 variables of names up to 1024 characters, so the rule's cost is
//! bounded), and `triggers.onChange` / `triggers.runConfigurations` hold no duplicates (`x-kubernetes-list-type:
//! set`).
//! (Only v1beta1 needs them: with the webhook down, the conversion webhook is down too, and no other version can be
//! written.)

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
    ServiceReference, ValidationRule, WebhookClientConfig, WebhookConversion,
};
use kube::CustomResourceExt;
use kube::core::crd::{MergeError, merge_crds};

use super::{v1alpha5, v1alpha6, v1beta1};

/// The hub version: stored, and the one every other version converts through.
pub const STORAGE_VERSION: &str = "v1beta1";

/// Where the API server sends ConversionReviews. The Helm chart overrides name, namespace and CA bundle.
pub const CONVERSION_SERVICE_NAME: &str = "kfp-operator-webhook-service";
/// The namespace of that Service.
pub const CONVERSION_SERVICE_NAMESPACE: &str = "kfp-operator-system";
/// The path of the conversion webhook.
pub const CONVERSION_PATH: &str = "/convert";

/// All six CRDs, sorted by kind.
pub fn all() -> Result<Vec<CustomResourceDefinition>, MergeError> {
    let mut crds = vec![
        multi_version(vec![
            v1beta1::Experiment::crd(),
            v1alpha6::Experiment::crd(),
            v1alpha5::Experiment::crd(),
        ])?,
        multi_version(vec![
            v1beta1::Pipeline::crd(),
            v1alpha6::Pipeline::crd(),
            v1alpha5::Pipeline::crd(),
        ])?,
        multi_version(vec![
            v1beta1::Provider::crd(),
            v1alpha6::Provider::crd(),
            v1alpha5::Provider::crd(),
        ])?,
        multi_version(vec![
            v1beta1::Run::crd(),
            v1alpha6::Run::crd(),
            v1alpha5::Run::crd(),
        ])?,
        multi_version(vec![
            v1beta1::RunConfiguration::crd(),
            v1alpha6::RunConfiguration::crd(),
            v1alpha5::RunConfiguration::crd(),
        ])?,
        multi_version(vec![
            v1beta1::RunSchedule::crd(),
            v1alpha6::RunSchedule::crd(),
            v1alpha5::RunSchedule::crd(),
        ])?,
    ];
    for crd in &mut crds {
        if crd.spec.names.kind == "Provider" {
            preserve_unknown_fields_at_root(crd);
        }
        drop_zero_defaults(crd);
        add_validations(crd);
    }
    Ok(crds)
}

/// Fields that are optional as in the Go operator's schemas (docs/decisions/0015) but get no schema `default`: the
/// zero value schemars would write (`""`, an empty spec) would be stored on every object and say nothing. A
/// missing one reads as empty, and the webhook or the controller names it. Paths as in [`SchemaRule`]; a path a
/// version lacks is skipped. `spec` itself is on this list for every kind.
const NO_SCHEMA_DEFAULT: &[(&str, &[&str])] = &[
    ("RunConfiguration", &["spec", "run"]),
    (
        "RunConfiguration",
        &["spec", "triggers", "schedules", "[]", "cronExpression"],
    ),
    ("RunSchedule", &["spec", "schedule"]),
    ("RunSchedule", &["spec", "schedule", "cronExpression"]),
    ("Provider", &["spec", "serviceImage"]),
    ("Provider", &["spec", "frameworks", "[]", "name"]),
    ("Provider", &["spec", "frameworks", "[]", "image"]),
    (
        "Provider",
        &["spec", "frameworks", "[]", "patches", "[]", "payload"],
    ),
];

/// `spec` is not required at the root (the Go operator's schemas do not require it) and, like the fields of
/// [`NO_SCHEMA_DEFAULT`], has no schema default.
fn drop_zero_defaults(crd: &mut CustomResourceDefinition) {
    let kind = crd.spec.names.kind.clone();
    for version in &mut crd.spec.versions {
        let Some(root) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        if let Some(required) = root.required.as_mut() {
            required.retain(|r| r != "spec");
            if required.is_empty() {
                root.required = None;
            }
        }
        let paths = NO_SCHEMA_DEFAULT
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, path)| *path)
            .chain(std::iter::once(&["spec"][..]));
        for path in paths {
            if let Some(schema) = schema_at(root, path) {
                schema.default = None;
            }
        }
    }
}

/// What a CEL validation or list type applies to: a kind's v1beta1 schema at `path` (property names; `[]` steps
/// into list items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaRule {
    /// The kind (`Run`, ...).
    pub kind: &'static str,
    /// The property path in its v1beta1 schema.
    pub path: &'static [&'static str],
    /// What applies there.
    pub rule: Rule,
}

/// A validation the CRD schema itself holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// An `x-kubernetes-validations` entry: CEL `rule`, and the message (or CEL `message_expression`) of a refusal.
    Cel {
        /// The CEL expression.
        rule: &'static str,
        /// The refusal's message.
        message: Option<&'static str>,
        /// A CEL expression computing the message.
        message_expression: Option<&'static str>,
    },
    /// `x-kubernetes-list-type: set`: the API server refuses duplicate items (`Duplicate value`).
    ListSet,
    /// `maxItems` of a list: bounds what a CEL rule over its items may cost (the API server refuses rules whose
    /// estimated cost is unbounded).
    MaxItems(i64),
    /// `maxLength` of a string, for the same reason.
    MaxLength(i64),
    /// A field that is not part of the API but that manifests in circulation use by mistake: declared (a string),
    /// so the API server does not prune it silently, and refused by a CEL rule with `message`.
    RefusedField {
        /// The field's name.
        name: &'static str,
        /// Its description in the schema and the reference.
        description: &'static str,
        /// The refusal's message.
        message: &'static str,
    },
}

/// Only one of `value` and `valueFrom` (docs/webhooks.md, "Rules the CRDs hold themselves"); an empty `value` is the
/// same as none (it is omitted).
const VALUE_OR_VALUE_FROM: Rule = Rule::Cel {
    rule: "!has(self.valueFrom) || !has(self.value) || self.value == ''",
    message: Some("only one of value or valueFrom can be set"),
    message_expression: None,
};

/// The admission rules the CRDs carry themselves (see the module documentation).
pub fn validations() -> Vec<SchemaRule> {
    vec![
        SchemaRule {
            kind: "Run",
            path: &["spec"],
            rule: Rule::Cel {
                rule: "self == oldSelf",
                message: Some("the spec of a Run is immutable; create a new Run instead"),
                message_expression: None,
            },
        },
        SchemaRule {
            kind: "Run",
            path: &["spec", "parameters", "[]"],
            rule: VALUE_OR_VALUE_FROM,
        },
        SchemaRule {
            kind: "RunConfiguration",
            path: &["spec", "run", "parameters", "[]"],
            rule: VALUE_OR_VALUE_FROM,
        },
        SchemaRule {
            kind: "RunConfiguration",
            path: &["spec", "triggers", "onChange"],
            rule: Rule::ListSet,
        },
        SchemaRule {
            kind: "RunConfiguration",
            path: &["spec", "triggers", "runConfigurations"],
            rule: Rule::ListSet,
        },
        // The reserved-name rule is evaluated per variable; without bounds its estimated cost is refused.
        SchemaRule {
            kind: "Provider",
            path: &["spec", "podTemplateEnv"],
            rule: Rule::MaxItems(256),
        },
        SchemaRule {
            kind: "Provider",
            path: &["spec", "podTemplateEnv", "[]", "name"],
            rule: Rule::MaxLength(1024),
        },
        // The Go operator's Provider documentation writes framework patches under `patch`; its schema pruned the
        // field and every Pipeline of the framework compiled without the patch (docs/decisions/0015).
        SchemaRule {
            kind: "Provider",
            path: &["spec", "frameworks", "[]", "patches", "[]"],
            rule: Rule::RefusedField {
                name: "patch",
                description: "Not a field: the patch goes under `payload`. Declared only so that manifests written \
                              with `patch` (as in the Go operator's documentation, whose schema dropped it \
                              silently) are refused with a message instead of losing their patch.",
                message: "patch is not a field of a framework patch: rename it to payload (the Go operator \
                          dropped `patch` silently and compiled every pipeline without the patch; see \
                          docs/decisions/0015-go-schema-compatibility.md)",
            },
        },
        SchemaRule {
            kind: "Provider",
            path: &["spec", "podTemplateEnv", "[]"],
            rule: Rule::Cel {
                rule: "!(self.name.upperAscii() in ['PROVIDERNAME', 'PIPELINEROOTSTORAGE']) && \
                       !self.name.upperAscii().startsWith('PARAMETERS_')",
                message: None,
                message_expression: Some(
                    "'the name ' + self.name + ' is reserved by the operator, which sets PROVIDERNAME, \
                     PIPELINEROOTSTORAGE and PARAMETERS_<KEY> itself'",
                ),
            },
        },
    ]
}

fn add_validations(crd: &mut CustomResourceDefinition) {
    let kind = crd.spec.names.kind.clone();
    let Some(version) = crd.spec.versions.iter_mut().find(|v| v.name == STORAGE_VERSION) else {
        return;
    };
    let Some(root) = version
        .schema
        .as_mut()
        .and_then(|s| s.open_api_v3_schema.as_mut())
    else {
        return;
    };
    for rule in validations().into_iter().filter(|r| r.kind == kind) {
        let Some(schema) = schema_at(root, rule.path) else {
            continue;
        };
        match rule.rule {
            Rule::Cel {
                rule,
                message,
                message_expression,
            } => schema
                .x_kubernetes_validations
                .get_or_insert_default()
                .push(ValidationRule {
                    rule: rule.to_string(),
                    message: message.map(str::to_string),
                    message_expression: message_expression.map(str::to_string),
                    ..ValidationRule::default()
                }),
            Rule::ListSet => schema.x_kubernetes_list_type = Some("set".to_string()),
            Rule::MaxItems(n) => schema.max_items = Some(n),
            Rule::MaxLength(n) => schema.max_length = Some(n),
            Rule::RefusedField {
                name,
                description,
                message,
            } => {
                schema.properties.get_or_insert_default().insert(
                    name.to_string(),
                    JSONSchemaProps {
                        type_: Some("string".to_string()),
                        description: Some(description.to_string()),
                        ..JSONSchemaProps::default()
                    },
                );
                schema
                    .x_kubernetes_validations
                    .get_or_insert_default()
                    .push(ValidationRule {
                        rule: format!("!has(self.{name})"),
                        message: Some(message.to_string()),
                        ..ValidationRule::default()
                    });
            }
        }
    }
}

/// The schema at `path` below `root` (`[]` steps into list items).
pub fn schema_at<'s>(root: &'s mut JSONSchemaProps, path: &[&str]) -> Option<&'s mut JSONSchemaProps> {
    let mut current = root;
    for step in path {
        current = if *step == "[]" {
            match current.items.as_mut()? {
                JSONSchemaPropsOrArray::Schema(items) => items.as_mut(),
                JSONSchemaPropsOrArray::Schemas(_) => return None,
            }
        } else {
            current.properties.as_mut()?.get_mut(*step)?
        };
    }
    Some(current)
}

/// Merges single-version CRDs of one kind, stores the hub version, and converts through the webhook when more than
/// one version is served.
fn multi_version(versions: Vec<CustomResourceDefinition>) -> Result<CustomResourceDefinition, MergeError> {
    let mut crd = merge_crds(versions, STORAGE_VERSION)?;
    if crd.spec.versions.iter().filter(|v| v.served).count() > 1 {
        crd.spec.conversion = Some(CustomResourceConversion {
            strategy: "Webhook".to_string(),
            webhook: Some(WebhookConversion {
                conversion_review_versions: vec!["v1".to_string()],
                client_config: Some(WebhookClientConfig {
                    service: Some(ServiceReference {
                        name: CONVERSION_SERVICE_NAME.to_string(),
                        namespace: CONVERSION_SERVICE_NAMESPACE.to_string(),
                        path: Some(CONVERSION_PATH.to_string()),
                        port: Some(443),
                    }),
                    ..Default::default()
                }),
            }),
        });
    }
    Ok(crd)
}

/// The Provider schema keeps fields it does not know at its root, as the Go operator's does.
fn preserve_unknown_fields_at_root(crd: &mut CustomResourceDefinition) {
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            schema.x_kubernetes_preserve_unknown_fields = Some(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_is_the_first_printer_column_of_every_kind_that_has_one() {
        let crds = all().unwrap_or_default();
        assert_eq!(crds.len(), 6);
        let mut checked = Vec::new();
        for crd in &crds {
            for version in &crd.spec.versions {
                let columns: Vec<&str> = version
                    .additional_printer_columns
                    .iter()
                    .flatten()
                    .map(|c| c.name.as_str())
                    .collect();
                if columns.contains(&"Provider") {
                    assert_eq!(
                        columns[0], "Provider",
                        "{} {}: {columns:?}",
                        crd.spec.names.kind, version.name
                    );
                    checked.push(format!("{} {}", crd.spec.names.kind, version.name));
                }
            }
        }
        assert!(
            checked.contains(&"RunConfiguration v1beta1".to_string()),
            "{checked:?}"
        );
        assert!(
            checked.contains(&"RunConfiguration v1alpha6".to_string()),
            "{checked:?}"
        );
    }

    #[test]
    fn spec_and_the_go_optional_fields_are_neither_required_nor_defaulted() {
        let mut crds = all().unwrap_or_default();
        assert_eq!(crds.len(), 6);
        for crd in &mut crds {
            let kind = crd.spec.names.kind.clone();
            for version in &mut crd.spec.versions {
                let name = version.name.clone();
                let root = version
                    .schema
                    .as_mut()
                    .and_then(|s| s.open_api_v3_schema.as_mut())
                    .unwrap_or_else(|| unreachable!("{kind} {name} has a schema"));
                assert!(
                    !root.required.iter().flatten().any(|r| r == "spec"),
                    "{kind} {name}: spec is optional"
                );
                for (_, path) in NO_SCHEMA_DEFAULT.iter().filter(|(k, _)| *k == kind) {
                    if let Some(schema) = schema_at(root, path) {
                        assert_eq!(schema.default, None, "{kind} {name} {path:?}");
                    }
                }
                let spec = schema_at(root, &["spec"]).unwrap_or_else(|| unreachable!("{kind} {name} spec"));
                assert_eq!(spec.default, None, "{kind} {name}: spec has no default");
            }
        }
        let provider = crds.iter_mut().find(|c| c.spec.names.kind == "Provider");
        let hub = provider
            .and_then(|c| c.spec.versions.iter_mut().find(|v| v.name == STORAGE_VERSION))
            .and_then(|v| v.schema.as_mut())
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .unwrap_or_else(|| unreachable!("the v1beta1 Provider schema"));
        let framework =
            schema_at(hub, &["spec", "frameworks", "[]"]).unwrap_or_else(|| unreachable!("frameworks"));
        assert_eq!(framework.required, None, "framework name and image are optional");
        let patch = schema_at(hub, &["spec", "frameworks", "[]", "patches", "[]"])
            .unwrap_or_else(|| unreachable!("patches"));
        assert_eq!(patch.required, None, "patch type and payload are optional");
        let type_ = schema_at(hub, &["spec", "frameworks", "[]", "patches", "[]", "type"])
            .unwrap_or_else(|| unreachable!("patch type"));
        assert_eq!(
            type_.default,
            Some(
                k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON(serde_json::json!(
                    "json"
                ))
            )
        );
    }

    #[test]
    fn every_validation_lands_in_the_v1beta1_schema() {
        let mut crds = all().unwrap_or_default();
        for rule in validations() {
            let crd = crds
                .iter_mut()
                .find(|c| c.spec.names.kind == rule.kind)
                .unwrap_or_else(|| unreachable!("a CRD for {}", rule.kind));
            let version = crd
                .spec
                .versions
                .iter_mut()
                .find(|v| v.name == STORAGE_VERSION)
                .and_then(|v| v.schema.as_mut())
                .and_then(|s| s.open_api_v3_schema.as_mut());
            let schema = version.and_then(|root| schema_at(root, rule.path));
            let present = match (&rule.rule, schema) {
                (Rule::Cel { rule: cel, .. }, Some(schema)) => schema
                    .x_kubernetes_validations
                    .iter()
                    .flatten()
                    .any(|v| v.rule == *cel),
                (Rule::ListSet, Some(schema)) => schema.x_kubernetes_list_type.as_deref() == Some("set"),
                (Rule::MaxItems(n), Some(schema)) => schema.max_items == Some(*n),
                (Rule::MaxLength(n), Some(schema)) => schema.max_length == Some(*n),
                (Rule::RefusedField { name, .. }, Some(schema)) => {
                    schema.properties.as_ref().is_some_and(|p| p.contains_key(*name))
                        && schema
                            .x_kubernetes_validations
                            .iter()
                            .flatten()
                            .any(|v| v.rule == format!("!has(self.{name})"))
                }
                (_, None) => false,
            };
            assert!(present, "{rule:?} is in the {} CRD", rule.kind);
        }
    }
}
