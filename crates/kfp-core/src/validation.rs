//! Admission rules (docs/webhooks.md, "What the admission webhook checks"; decision 0007): pure checks of one object,
//! and of the Provider it names.
//!
//! The validating webhook (`kfp_operator::webhook`) looks the Provider up and calls these; everything that needs no
//! IO lives here so it is tested table-style and usable by embedders. Errors are Kubernetes field errors
//! ([`FieldError`]), worded as `k8s.io/apimachinery/pkg/util/validation/field` words them
//! (`spec.provider: Not found: "ns/name"`), so a refusal reads like any other API server refusal.
//!
//! Update rule, for every kind: an update that leaves `spec` unchanged is always allowed (finalizer and annotation
//! writes must never be blocked, e.g. releasing the finalizer of a Pipeline whose Provider is gone). The webhook
//! applies it before calling these functions.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::reconcile::provider::{PARAMETERS_ENV_PREFIX, is_reserved_env_name};
use crate::resources::GROUP;
use crate::resources::v1beta1::{
    Experiment, Parameter, PatchType, Pipeline, Provider, Run, RunConfiguration, RunSchedule,
};
use crate::values::{NamespacedName, ValueError};

/// The kind of a field error, as the Kubernetes API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// `FieldValueNotFound`: a referenced object does not exist.
    NotFound,
    /// `FieldValueRequired`.
    Required,
    /// `FieldValueDuplicate`.
    Duplicate,
    /// `FieldValueInvalid`.
    Invalid,
    /// `FieldValueNotSupported`: not one of the allowed values.
    NotSupported,
    /// `FieldValueForbidden`.
    Forbidden,
}

impl ErrorType {
    /// The wording in messages (`field.ErrorType.String()`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "Not found",
            Self::Required => "Required value",
            Self::Duplicate => "Duplicate value",
            Self::Invalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Forbidden => "Forbidden",
        }
    }

    /// The `reason` of a `StatusCause` (`metav1.CauseType`).
    pub fn cause_reason(self) -> &'static str {
        match self {
            Self::NotFound => "FieldValueNotFound",
            Self::Required => "FieldValueRequired",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
        }
    }

    /// Required and Forbidden errors do not repeat the value (as in Kubernetes).
    fn shows_value(self) -> bool {
        !matches!(self, Self::Required | Self::Forbidden)
    }
}

/// One problem with one field: `<field>: <type>[: <value>][: <detail>]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The kind of problem.
    pub type_: ErrorType,
    /// The JSON path of the field, `spec.triggers.schedules[1].cronExpression`.
    pub field: String,
    /// The value at fault, if the message shows it.
    pub value: Option<Value>,
    /// Why, as a sentence fragment.
    pub detail: String,
}

impl FieldError {
    fn new(
        type_: ErrorType,
        field: impl Into<String>,
        value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            field: field.into(),
            value,
            detail: detail.into(),
        }
    }

    /// `<field>: Not found: <value>`.
    pub fn not_found(field: impl Into<String>, value: impl Serialize) -> Self {
        Self::new(ErrorType::NotFound, field, to_value(value), "")
    }

    /// `<field>: Required value: <detail>`.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, field, None, detail)
    }

    /// `<field>: Duplicate value: <value>`.
    pub fn duplicate(field: impl Into<String>, value: impl Serialize) -> Self {
        Self::new(ErrorType::Duplicate, field, to_value(value), "")
    }

    /// `<field>: Invalid value: <value>: <detail>`.
    pub fn invalid(field: impl Into<String>, value: impl Serialize, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, field, to_value(value), detail)
    }

    /// `supported` are listed in the detail, quoted, as Kubernetes does.
    pub fn not_supported(field: impl Into<String>, value: impl Serialize, supported: &[String]) -> Self {
        let detail = if supported.is_empty() {
            "no values are supported".to_string()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorType::NotSupported, field, to_value(value), detail)
    }

    /// `<field>: Forbidden: <detail>`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, field, None, detail)
    }

    /// The message without the field path (`field.Error.ErrorBody()`).
    pub fn body(&self) -> String {
        let mut body = self.type_.as_str().to_string();
        if self.type_.shows_value()
            && let Some(value) = &self.value
        {
            body.push_str(": ");
            body.push_str(&bounded(&value.to_string()));
        }
        if !self.detail.is_empty() {
            body.push_str(": ");
            body.push_str(&self.detail);
        }
        body
    }
}

/// The most of a value a refusal repeats: the user has the rest in their manifest, and refusals end up in logs and
/// Events (docs/platform-guide.md, troubleshooting).
const MAX_SHOWN_VALUE: usize = 256;

/// `value` cut to 256 bytes (at a character boundary), saying how long it was: how much of a user's or a peer's
/// text a message, log line or status repeats.
pub fn bounded(value: &str) -> String {
    if value.len() <= MAX_SHOWN_VALUE {
        return value.to_string();
    }
    let mut end = MAX_SHOWN_VALUE;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &value[..end], value.len())
}

fn to_value(value: impl Serialize) -> Option<Value> {
    serde_json::to_value(value).ok()
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// The message of a refused object, as `apierrors.NewInvalid` writes it:
/// `Pipeline.pipelines.kubeflow.org "name" is invalid: <error>` (several errors: `[<error>, <error>]`).
pub fn invalid_message(kind: &str, name: &str, errors: &[FieldError]) -> String {
    let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let joined = match listed.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    format!("{kind}.{GROUP} {name:?} is invalid: {joined}")
}

// ---------------------------------------------------------------------------------------------------------------
// Provider references (every kind but Provider)
// ---------------------------------------------------------------------------------------------------------------

/// `field` names the Provider `reference`; `provider` is what the lookup found. The Provider must exist, and when
/// it lists `allowedNamespaces`, the resource's `namespace` must be one of them.
pub fn provider_reference(
    field: &str,
    reference: &NamespacedName,
    namespace: &str,
    provider: Option<&Provider>,
) -> Vec<FieldError> {
    if reference.name.is_empty() {
        return vec![FieldError::required(
            field,
            "the Provider (NAMESPACE/NAME) that runs this resource must be set; v1alpha5 objects name it with \
             the pipelines.kubeflow.org/provider annotation, or the operator's spec.defaultProvider applies",
        )];
    }
    let Some(provider) = provider else {
        return vec![FieldError::not_found(field, reference.to_string())];
    };
    let allowed = &provider.spec.allowed_namespaces;
    if allowed.is_empty() || allowed.iter().any(|n| n == namespace) {
        return Vec::new();
    }
    vec![FieldError::forbidden(
        "metadata.namespace",
        format!(
            "namespace {namespace:?} is not allowed by provider {reference} (its spec.allowedNamespaces: {})",
            allowed.join(", ")
        ),
    )]
}

/// The namespace of an object (empty when it has none yet).
fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------------------------
// Kinds
// ---------------------------------------------------------------------------------------------------------------

/// `vpipeline`: the Provider exists and allows the namespace; `spec.framework.name` is one of the Provider's
/// frameworks, compared ignoring case.
pub fn pipeline(pipeline: &Pipeline, provider: Option<&Provider>) -> Vec<FieldError> {
    let mut errors = provider_reference(
        "spec.provider",
        &pipeline.spec.provider,
        namespace_of(&pipeline.metadata),
        provider,
    );
    if let Some(provider) = provider
        && errors.is_empty()
    {
        let requested = &pipeline.spec.framework.name;
        let frameworks = &provider.spec.frameworks;
        if !frameworks.iter().any(|f| f.name.eq_ignore_ascii_case(requested)) {
            let supported: Vec<String> = frameworks.iter().map(|f| f.name.clone()).collect();
            errors.push(FieldError::not_supported(
                "spec.framework.name",
                requested,
                &supported,
            ));
        }
    }
    errors
}

/// `vrun` on create: the Provider, and no parameter with both `value` and `valueFrom`.
pub fn run(run: &Run, provider: Option<&Provider>) -> Vec<FieldError> {
    let mut errors = provider_reference(
        "spec.provider",
        &run.spec.provider,
        namespace_of(&run.metadata),
        provider,
    );
    errors.extend(parameters("spec.parameters", &run.spec.parameters));
    errors
}

/// `vrun` on update: the spec of a Run never changes (a Run is one run; create another instead).
pub fn run_update(old: &Run, new: &Run) -> Vec<FieldError> {
    let (Ok(Value::Object(old_spec)), Ok(Value::Object(new_spec))) =
        (serde_json::to_value(&old.spec), serde_json::to_value(&new.spec))
    else {
        return Vec::new();
    };
    let mut changed: Vec<&str> = old_spec
        .iter()
        .filter(|(key, value)| new_spec.get(*key) != Some(value))
        .map(|(key, _)| key.as_str())
        .chain(
            new_spec
                .keys()
                .filter(|key| !old_spec.contains_key(*key))
                .map(String::as_str),
        )
        .collect();
    if changed.is_empty() {
        return Vec::new();
    }
    changed.sort_unstable();
    changed.dedup();
    let fields: Vec<String> = changed.iter().map(|k| format!("spec.{k}")).collect();
    vec![FieldError::forbidden(
        "spec",
        format!(
            "the spec of a Run is immutable (changed: {}); create a new Run instead",
            fields.join(", ")
        ),
    )]
}

fn parameters(path: &str, parameters: &[Parameter]) -> Vec<FieldError> {
    parameters
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.value.is_empty() && p.value_from.is_some())
        .map(|(i, p)| {
            FieldError::invalid(
                format!("{path}[{i}]"),
                p,
                format!(
                    "only one of value or valueFrom can be set (parameter {:?})",
                    p.name
                ),
            )
        })
        .collect()
}

/// `spec.triggers` of a RunConfiguration and its run: the Provider, value/valueFrom exclusivity, cron syntax (a real
/// cron parser), no duplicate schedules, onChange or runConfigurations (`ns/name` and `name` in the own namespace are
/// the same), and no RunConfiguration triggered by itself (every success would start it again).
pub fn run_configuration(rc: &RunConfiguration, provider: Option<&Provider>) -> Vec<FieldError> {
    let namespace = namespace_of(&rc.metadata);
    let mut errors = provider_reference("spec.run.provider", &rc.spec.run.provider, namespace, provider);
    errors.extend(parameters("spec.run.parameters", &rc.spec.run.parameters));
    let triggers = &rc.spec.triggers;
    for (i, schedule) in triggers.schedules.iter().enumerate() {
        if let Some(error) = cron(
            &format!("spec.triggers.schedules[{i}].cronExpression"),
            schedule.cron_expression.as_str(),
        ) {
            errors.push(error);
        }
    }
    errors.extend(duplicates("spec.triggers.schedules", &triggers.schedules, |s| {
        s.clone()
    }));
    errors.extend(duplicates("spec.triggers.onChange", &triggers.on_change, |o| *o));
    errors.extend(duplicates(
        "spec.triggers.runConfigurations",
        &triggers.run_configurations,
        |r| r.with_default_namespace(namespace),
    ));
    let own = NamespacedName::new(namespace, rc.metadata.name.clone().unwrap_or_default());
    for (i, reference) in triggers.run_configurations.iter().enumerate() {
        if !own.name.is_empty() && reference.with_default_namespace(namespace) == own {
            errors.push(FieldError::invalid(
                format!("spec.triggers.runConfigurations[{i}]"),
                reference.to_string(),
                "a RunConfiguration cannot be triggered by its own runs (each success would start another)",
            ));
        }
    }
    errors
}

/// The RunSchedule's cron expression parses with the real cron parser; and its Provider.
pub fn run_schedule(rs: &RunSchedule, provider: Option<&Provider>) -> Vec<FieldError> {
    let mut errors = provider_reference(
        "spec.provider",
        &rs.spec.provider,
        namespace_of(&rs.metadata),
        provider,
    );
    errors.extend(cron(
        "spec.schedule.cronExpression",
        rs.spec.schedule.cron_expression.as_str(),
    ));
    errors
}

/// An Experiment needs only its Provider.
pub fn experiment(experiment: &Experiment, provider: Option<&Provider>) -> Vec<FieldError> {
    provider_reference(
        "spec.provider",
        &experiment.spec.provider,
        namespace_of(&experiment.metadata),
        provider,
    )
}

/// `vprovider`: no `podTemplateEnv` name the operator sets itself (case-insensitive); also frameworks
/// named once (names compare ignoring case) and patch payloads that are JSON of their type.
pub fn provider(provider: &Provider) -> Vec<FieldError> {
    let mut errors: Vec<FieldError> = provider
        .spec
        .pod_template_env
        .iter()
        .enumerate()
        .filter(|(_, env)| is_reserved_env_name(&env.name))
        .map(|(i, env)| {
            FieldError::invalid(
                format!("spec.podTemplateEnv[{i}].name"),
                &env.name,
                format!(
                    "the name is reserved by the operator, which sets PROVIDERNAME, PIPELINEROOTSTORAGE and \
                     {PARAMETERS_ENV_PREFIX}<KEY> (from spec.parameters) itself"
                ),
            )
        })
        .collect();
    let frameworks = &provider.spec.frameworks;
    let names: Vec<&str> = frameworks.iter().map(|f| f.name.as_str()).collect();
    errors.extend(
        duplicates("spec.frameworks", &names, |n| n.to_ascii_lowercase())
            .into_iter()
            .map(|mut e| {
                e.field.push_str(".name");
                e
            }),
    );
    for (i, framework) in frameworks.iter().enumerate() {
        // Optional in the schema as in the Go operator (docs/decisions/0015), but no Pipeline could select it.
        if framework.name.is_empty() {
            errors.push(FieldError::required(
                format!("spec.frameworks[{i}].name"),
                "Pipelines select a framework by this name (their spec.framework.name)",
            ));
        }
        for (j, patch) in framework.patches.iter().enumerate() {
            if patch.payload.is_empty() {
                errors.push(FieldError::required(
                    format!("spec.frameworks[{i}].patches[{j}].payload"),
                    "the patch as a JSON string (json: an RFC 6902 array of operations, merge: an RFC 7396 \
                     object); without it every Pipeline of the framework would fail to compile",
                ));
                continue;
            }
            if let Err(reason) = patch_payload(patch.type_, &patch.payload) {
                errors.push(FieldError::invalid(
                    format!("spec.frameworks[{i}].patches[{j}].payload"),
                    &patch.payload,
                    reason,
                ));
            }
        }
    }
    errors
}

fn patch_payload(type_: PatchType, payload: &str) -> Result<(), String> {
    match type_ {
        PatchType::Json => serde_json::from_str::<json_patch::Patch>(payload)
            .map(|_| ())
            .map_err(|e| format!("a json patch is a JSON array of RFC 6902 operations: {e}")),
        PatchType::Merge => serde_json::from_str::<Value>(payload)
            .map(|_| ())
            .map_err(|e| format!("a merge patch is a JSON document (RFC 7396): {e}")),
    }
}

/// A cron expression checked with the cron parser the operator schedules with (5 fields, or 6 with seconds).
fn cron(field: &str, expression: &str) -> Option<FieldError> {
    // Optional in the schema as in the Go operator (docs/decisions/0015); a schedule without one would never run.
    if expression.trim().is_empty() {
        return Some(FieldError::required(
            field,
            "a cron expression of 5 fields (minute hour day-of-month month day-of-week) or 6 with leading \
             seconds, e.g. \"0 * * * *\"",
        ));
    }
    match expression.parse::<crate::values::CronExpression>() {
        Ok(_) => None,
        Err(ValueError::Cron { reason, .. }) => Some(FieldError::invalid(field, expression, reason)),
        Err(other) => Some(FieldError::invalid(field, expression, other.to_string())),
    }
}

/// A Duplicate error at each later item whose key equals an earlier item's.
fn duplicates<T: Serialize, K: PartialEq>(path: &str, items: &[T], key: impl Fn(&T) -> K) -> Vec<FieldError> {
    let keys: Vec<K> = items.iter().map(&key).collect();
    items
        .iter()
        .enumerate()
        .filter(|(i, _)| keys[..*i].contains(&keys[*i]))
        .map(|(i, item)| FieldError::duplicate(format!("{path}[{i}]"), item))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::v1beta1::{Framework, OnChangeType, Patch, Schedule, ValueFrom};
    use crate::values::CronExpression;
    use k8s_openapi::api::core::v1::EnvVar;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("team".into()),
            ..ObjectMeta::default()
        }
    }

    fn stub_provider(allowed: &[&str]) -> Provider {
        let mut provider = Provider {
            metadata: ObjectMeta {
                name: Some("stub".into()),
                namespace: Some("ops".into()),
                ..ObjectMeta::default()
            },
            ..Provider::default()
        };
        provider.spec.frameworks = vec![
            Framework {
                name: "TFX".into(),
                image: "t".into(),
                patches: Vec::new(),
            },
            Framework {
                name: "stub".into(),
                image: "s".into(),
                patches: Vec::new(),
            },
        ];
        provider.spec.allowed_namespaces = allowed.iter().map(|s| s.to_string()).collect();
        provider
    }

    fn messages(errors: &[FieldError]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    fn a_pipeline(framework: &str) -> Pipeline {
        let mut p = Pipeline {
            metadata: meta("p"),
            ..Pipeline::default()
        };
        p.spec.provider = NamespacedName::new("ops", "stub");
        p.spec.image = "img".into();
        p.spec.framework.name = framework.into();
        p
    }

    #[test]
    fn field_errors_read_like_kubernetes_ones() {
        assert_eq!(
            FieldError::not_found("spec.provider", "ns/name").to_string(),
            r#"spec.provider: Not found: "ns/name""#
        );
        assert_eq!(
            FieldError::forbidden("spec", "immutable").to_string(),
            "spec: Forbidden: immutable"
        );
        assert_eq!(
            FieldError::not_supported("spec.framework.name", "x", &["a".into(), "b".into()]).to_string(),
            r#"spec.framework.name: Unsupported value: "x": supported values: "a", "b""#
        );
        assert_eq!(
            FieldError::duplicate("spec.triggers.onChange[1]", OnChangeType::Pipeline).to_string(),
            r#"spec.triggers.onChange[1]: Duplicate value: "pipeline""#
        );
        let one = [FieldError::required("spec.provider", "")];
        assert_eq!(
            invalid_message("Pipeline", "p", &one),
            r#"Pipeline.pipelines.kubeflow.org "p" is invalid: spec.provider: Required value"#
        );
        let two = [
            FieldError::required("a", ""),
            FieldError::invalid("b", 1, "too small"),
        ];
        assert_eq!(
            invalid_message("Run", "r", &two),
            r#"Run.pipelines.kubeflow.org "r" is invalid: [a: Required value, b: Invalid value: 1: too small]"#
        );
    }

    #[test]
    fn pipeline_needs_an_existing_provider() {
        assert_eq!(
            messages(&pipeline(&a_pipeline("stub"), None)),
            [r#"spec.provider: Not found: "ops/stub""#]
        );
        let mut unnamed = a_pipeline("stub");
        unnamed.spec.provider = NamespacedName::default();
        let errors = pipeline(&unnamed, None);
        assert_eq!(errors[0].type_, ErrorType::Required);
        assert!(
            errors[0].detail.contains("pipelines.kubeflow.org/provider"),
            "{errors:?}"
        );
    }

    #[test]
    fn pipeline_namespace_must_be_allowed_by_the_provider() {
        assert!(pipeline(&a_pipeline("stub"), Some(&stub_provider(&[]))).is_empty());
        assert!(pipeline(&a_pipeline("stub"), Some(&stub_provider(&["team"]))).is_empty());
        assert_eq!(
            messages(&pipeline(&a_pipeline("stub"), Some(&stub_provider(&["a", "b"])))),
            [
                r#"metadata.namespace: Forbidden: namespace "team" is not allowed by provider ops/stub (its spec.allowedNamespaces: a, b)"#
            ]
        );
    }

    #[test]
    fn decision_13_framework_names_compare_ignoring_case() {
        let provider = stub_provider(&[]);
        assert!(pipeline(&a_pipeline("tfx"), Some(&provider)).is_empty());
        assert!(pipeline(&a_pipeline("STUB"), Some(&provider)).is_empty());
        assert_eq!(
            messages(&pipeline(&a_pipeline("kfpsdk"), Some(&provider))),
            [r#"spec.framework.name: Unsupported value: "kfpsdk": supported values: "TFX", "stub""#]
        );
    }

    fn a_run() -> Run {
        let mut run = Run {
            metadata: meta("r"),
            ..Run::default()
        };
        run.spec.provider = NamespacedName::new("ops", "stub");
        run.spec.parameters = vec![
            Parameter {
                name: "a".into(),
                value: "1".into(),
                value_from: None,
            },
            Parameter {
                name: "b".into(),
                value: "2".into(),
                value_from: Some(ValueFrom::default()),
            },
        ];
        run
    }

    #[test]
    fn run_parameters_take_value_or_value_from() {
        let errors = run(&a_run(), Some(&stub_provider(&[])));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "spec.parameters[1]");
        assert!(
            errors[0]
                .to_string()
                .contains("only one of value or valueFrom can be set"),
            "{errors:?}"
        );
    }

    #[test]
    fn run_spec_is_immutable_and_the_message_names_what_changed() {
        let old = a_run();
        assert!(run_update(&old, &old.clone()).is_empty());
        let mut labelled = old.clone();
        labelled.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
        assert!(run_update(&old, &labelled).is_empty(), "metadata may change");
        let mut new = old.clone();
        new.spec.experiment_name = "e".into();
        new.spec.parameters.clear();
        assert_eq!(
            messages(&run_update(&old, &new)),
            [
                "spec: Forbidden: the spec of a Run is immutable (changed: spec.experimentName, spec.parameters); create a new Run instead"
            ]
        );
    }

    fn an_rc() -> RunConfiguration {
        let mut rc = RunConfiguration {
            metadata: meta("rc"),
            ..RunConfiguration::default()
        };
        rc.spec.run.provider = NamespacedName::new("ops", "stub");
        rc
    }

    #[test]
    fn run_configuration_triggers_are_unique_and_crons_parse() {
        let mut rc = an_rc();
        let schedule = |cron: &str| Schedule {
            cron_expression: CronExpression::unchecked(cron),
            start_time: None,
            end_time: None,
        };
        rc.spec.triggers.schedules = vec![
            schedule("0 * * * *"),
            schedule("0 * * * *"),
            schedule("61 * * * *"),
        ];
        rc.spec.triggers.on_change = vec![
            OnChangeType::Pipeline,
            OnChangeType::RunSpec,
            OnChangeType::Pipeline,
        ];
        rc.spec.triggers.run_configurations = vec![
            NamespacedName::new("team", "base"),
            NamespacedName::new("", "base"),
        ];
        let errors = messages(&run_configuration(&rc, Some(&stub_provider(&[]))));
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert_eq!(
            errors[0],
            r#"spec.triggers.schedules[2].cronExpression: Invalid value: "61 * * * *": minute 61 is out of range 0-59"#
        );
        assert_eq!(
            errors[1],
            r#"spec.triggers.schedules[1]: Duplicate value: {"cronExpression":"0 * * * *"}"#
        );
        assert_eq!(
            errors[2],
            r#"spec.triggers.onChange[2]: Duplicate value: "pipeline""#
        );
        assert_eq!(
            errors[3],
            r#"spec.triggers.runConfigurations[1]: Duplicate value: "base""#
        );
    }

    #[test]
    fn run_configuration_cannot_trigger_itself() {
        let mut rc = an_rc();
        rc.spec.triggers.run_configurations = vec![NamespacedName::new("", "rc")];
        let errors = messages(&run_configuration(&rc, Some(&stub_provider(&[]))));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with(r#"spec.triggers.runConfigurations[0]: Invalid value: "rc": "#));
    }

    #[test]
    fn run_configuration_checks_its_run() {
        let mut rc = an_rc();
        rc.spec.run.parameters = a_run().spec.parameters;
        let errors = run_configuration(&rc, None);
        assert_eq!(
            errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
            ["spec.run.provider", "spec.run.parameters[1]"]
        );
    }

    #[test]
    fn refusals_repeat_at_most_a_few_hundred_bytes_of_the_value() {
        let mut rs = RunSchedule {
            metadata: meta("rs"),
            ..RunSchedule::default()
        };
        rs.spec.provider = NamespacedName::new("ops", "stub");
        let long = format!("{}61 * * * *", "1,".repeat(500));
        rs.spec.schedule.cron_expression = CronExpression::unchecked(long.clone());
        let errors = messages(&run_schedule(&rs, Some(&stub_provider(&[]))));
        let shown = format!("\"{long}\"");
        assert_eq!(
            errors,
            [format!(
                "spec.schedule.cronExpression: Invalid value: {}… ({} bytes): minute 61 is out of range 0-59",
                &shown[..256],
                shown.len()
            )]
        );
    }

    #[test]
    fn decision_15_run_schedule_cron_is_parsed() {
        let mut rs = RunSchedule {
            metadata: meta("rs"),
            ..RunSchedule::default()
        };
        rs.spec.provider = NamespacedName::new("ops", "stub");
        rs.spec.schedule.cron_expression = CronExpression::unchecked("0 0 * * * *");
        assert!(run_schedule(&rs, Some(&stub_provider(&[]))).is_empty());
        rs.spec.schedule.cron_expression = CronExpression::unchecked("every hour");
        let errors = messages(&run_schedule(&rs, Some(&stub_provider(&[]))));
        assert_eq!(
            errors,
            [
                r#"spec.schedule.cronExpression: Invalid value: "every hour": expected 5 fields, or 6 with leading seconds, found 2"#
            ]
        );
    }

    #[test]
    fn experiment_needs_its_provider() {
        let mut e = Experiment {
            metadata: meta("e"),
            ..Experiment::default()
        };
        e.spec.provider = NamespacedName::new("ops", "stub");
        assert!(experiment(&e, Some(&stub_provider(&["team"]))).is_empty());
        assert_eq!(experiment(&e, None)[0].type_, ErrorType::NotFound);
        assert_eq!(
            experiment(&e, Some(&stub_provider(&["x"])))[0].field,
            "metadata.namespace"
        );
    }

    #[test]
    fn provider_env_names_the_operator_sets_are_reserved() {
        let mut provider = stub_provider(&[]);
        let env = |name: &str| EnvVar {
            name: name.into(),
            value: Some("v".into()),
            value_from: None,
        };
        provider.spec.pod_template_env = vec![
            env("providerName"),
            env("FINE"),
            env("PipelineRootStorage"),
            env("parameters_restKfpApiUrl"),
            env("PARAMETERSX"),
        ];
        let errors = provider_errors(&provider);
        assert_eq!(
            errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
            [
                "spec.podTemplateEnv[0].name",
                "spec.podTemplateEnv[2].name",
                "spec.podTemplateEnv[3].name"
            ]
        );
        assert!(
            errors[2]
                .to_string()
                .starts_with(r#"spec.podTemplateEnv[3].name: Invalid value: "parameters_restKfpApiUrl": the name is reserved by the operator"#),
            "{errors:?}"
        );
    }

    fn provider_errors(p: &Provider) -> Vec<FieldError> {
        provider(p)
    }

    #[test]
    fn provider_frameworks_are_named_once_and_patches_are_json() {
        let mut p = stub_provider(&[]);
        p.spec.frameworks.push(Framework {
            name: "tfx".into(),
            image: "other".into(),
            patches: vec![
                Patch {
                    type_: PatchType::Json,
                    payload: r#"[{"op":"add","path":"/a","value":1}]"#.into(),
                },
                Patch {
                    type_: PatchType::Json,
                    payload: r#"{"op":"add"}"#.into(),
                },
                Patch {
                    type_: PatchType::Merge,
                    payload: "{not json".into(),
                },
            ],
        });
        let errors = messages(&provider_errors(&p));
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert_eq!(errors[0], r#"spec.frameworks[2].name: Duplicate value: "tfx""#);
        assert!(
            errors[1].starts_with("spec.frameworks[2].patches[1].payload: Invalid value: ")
                && errors[1].contains("a json patch is a JSON array of RFC 6902 operations"),
            "{errors:?}"
        );
        assert!(
            errors[2].starts_with("spec.frameworks[2].patches[2].payload: Invalid value: ")
                && errors[2].contains("a merge patch is a JSON document"),
            "{errors:?}"
        );
    }

    #[test]
    fn go_optional_framework_fields_are_refused_when_nothing_could_work_without_them() {
        let mut p = stub_provider(&[]);
        p.spec.frameworks.push(Framework {
            name: String::new(),
            image: String::new(),
            patches: vec![Patch {
                type_: PatchType::Json,
                payload: String::new(),
            }],
        });
        let errors = messages(&provider_errors(&p));
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(
            errors[0].starts_with("spec.frameworks[2].name: Required value: Pipelines select a framework"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with(
                "spec.frameworks[2].patches[0].payload: Required value: the patch as a JSON string"
            ),
            "{errors:?}"
        );
        // A framework without an image is accepted: the Pipeline that uses it says what is missing.
        p.spec.frameworks[2].name = "kfpsdk".into();
        p.spec.frameworks[2].patches.clear();
        assert_eq!(messages(&provider_errors(&p)), Vec::<String>::new());
    }

    #[test]
    fn a_missing_cron_expression_is_required_not_malformed() {
        let mut rs = RunSchedule {
            metadata: meta("rs"),
            ..RunSchedule::default()
        };
        rs.spec.provider = NamespacedName::new("ops", "stub");
        let errors = messages(&run_schedule(&rs, Some(&stub_provider(&[]))));
        assert_eq!(
            errors,
            [
                r#"spec.schedule.cronExpression: Required value: a cron expression of 5 fields (minute hour day-of-month month day-of-week) or 6 with leading seconds, e.g. "0 * * * *""#
            ]
        );
        let mut rc = RunConfiguration {
            metadata: meta("rc"),
            ..RunConfiguration::default()
        };
        rc.spec.run.provider = NamespacedName::new("ops", "stub");
        rc.spec.triggers.schedules.push(Schedule::default());
        let errors = messages(&run_configuration(&rc, Some(&stub_provider(&[]))));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("spec.triggers.schedules[0].cronExpression: Required value: "),
            "{errors:?}"
        );
    }
}
