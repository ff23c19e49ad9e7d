//! Conversion between the `v1beta1` hub and the `v1alpha6` and `v1alpha5` spokes (docs/webhooks.md, "The conversion
//! webhook"; decision 0003).
//!
//! Pure: no IO. Each spoke type implements [`Spoke`] (`to_hub`, `from_hub`); [`convert`] is the one dynamic entry
//! point of the conversion webhook, routing spoke -> hub -> spoke by `apiVersion` and `kind`.
//!
//! What one side cannot hold travels as JSON in the annotation [`REMAINDER_ANNOTATION`], on whichever object lacks
//! the field: to-hub reads and removes the spoke's remainder and writes a hub remainder only for spoke-only data
//! (the v1alpha5 map form of `runtimeParameters`, a defaulted v1alpha5 provider, a v1alpha6 Provider `image`, a
//! `synchronizationState` without a condition); from-hub does the mirror image. Keys a conversion does not know pass
//! through unchanged, so data of one spoke survives a trip through another.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::resources::v1beta1::{self, SYNCHRONIZED};
use crate::resources::{GROUP, REMAINDER_ANNOTATION};
use crate::values::{NamedValue, NamespacedName};

pub mod field_paths;
pub mod v1alpha5;
pub mod v1alpha6;

/// The served versions, hub first.
pub const VERSIONS: [&str; 3] = ["v1beta1", "v1alpha6", "v1alpha5"];

/// The kinds of the group.
pub const KINDS: [&str; 6] = [
    "Pipeline",
    "Run",
    "RunConfiguration",
    "RunSchedule",
    "Experiment",
    "Provider",
];

/// Operator configuration the conversions depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionConfig {
    /// Namespace of a v1alpha6 provider reference without a remainder `providerNamespace`.
    pub workflow_namespace: String,
    /// Image of the `tfx` framework created for a v1alpha6/v1alpha5 Provider.
    pub default_tfx_image: String,
    /// Provider of a v1alpha5 object without the `pipelines.kubeflow.org/provider` annotation; its namespace is also
    /// the namespace of an annotated provider without a remainder `providerNamespace`.
    pub default_provider: NamespacedName,
    /// Framework of a v1alpha5 Pipeline without `tfxComponents` (parameters empty).
    pub default_framework: String,
}

impl Default for ConversionConfig {
    fn default() -> Self {
        Self {
            workflow_namespace: String::new(),
            default_tfx_image: String::new(),
            default_provider: NamespacedName::default(),
            default_framework: "tfx".to_string(),
        }
    }
}

/// Why an object cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConversionError {
    /// A v1alpha5/v1alpha6 Pipeline has no TFX components and no framework to take them from.
    #[error(
        "missing tfx components in framework parameters: {kind} {name:?} has an empty spec.tfxComponents and no framework in annotation {REMAINDER_ANNOTATION}."
    )]
    MissingTfxComponents {
        /// The kind.
        kind: &'static str,
        /// The object.
        name: String,
    },
    /// A Provider has no `tfx` framework, which the older version needs.
    #[error(
        "Provider {name:?} cannot be converted to {version}: spec.frameworks has no framework named \"tfx\", which holds the image and defaultBeamArgs there."
    )]
    MissingTfxFramework {
        /// The Provider.
        name: String,
        /// The target version.
        version: &'static str,
    },
    /// The remainder annotation does not hold what conversion wrote.
    #[error("Annotation {REMAINDER_ANNOTATION} holds {value}, which is not valid: {reason}.")]
    InvalidRemainder {
        /// The annotation's value.
        value: String,
        /// Why it is not valid.
        reason: String,
    },
    /// A field has a value the target version cannot hold.
    #[error("Field {field} is not valid: {reason}.")]
    InvalidField {
        /// The field.
        field: String,
        /// Why it is not valid.
        reason: String,
    },
    /// A field the conversion needs is missing.
    #[error("Field {field} is missing or not a string.")]
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// The object's `apiVersion` is not served.
    #[error(
        "Field apiVersion {api_version:?} is not a served version of pipelines.kubeflow.org (v1beta1, v1alpha6 or v1alpha5)."
    )]
    UnsupportedVersion {
        /// The `apiVersion` given.
        api_version: String,
    },
    /// The object's `kind` is not one of the six.
    #[error("Field kind {kind:?} is not a kind of pipelines.kubeflow.org.")]
    UnsupportedKind {
        /// The `kind` given.
        kind: String,
    },
    /// The object does not decode as its kind and version.
    #[error("The {kind} object of {api_version} cannot be read: {reason}.")]
    InvalidObject {
        /// The kind.
        kind: String,
        /// The version.
        api_version: String,
        /// Why it does not decode.
        reason: String,
    },
}

/// A spoke version of a kind: converts to and from its hub (`v1beta1`) type.
pub trait Spoke: Sized {
    /// The hub type (the v1beta1 kind).
    type Hub;

    /// Converts to the hub, keeping what the hub cannot hold in the remainder annotation.
    fn to_hub(&self, config: &ConversionConfig) -> Result<Self::Hub, ConversionError>;

    /// Converts from the hub, restoring what the remainder annotation kept.
    fn from_hub(hub: &Self::Hub, config: &ConversionConfig) -> Result<Self, ConversionError>;
}

/// Converts `object` (any served version and kind of the group) to `desired_api_version`
/// (`pipelines.kubeflow.org/<version>`), through the hub. The same version returns the object unchanged.
pub fn convert(
    object: Value,
    desired_api_version: &str,
    config: &ConversionConfig,
) -> Result<Value, ConversionError> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or(ConversionError::MissingField { field: "apiVersion" })?
        .to_string();
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .ok_or(ConversionError::MissingField { field: "kind" })?
        .to_string();
    let from = version_of(&api_version)?;
    let to = version_of(desired_api_version)?;
    if !KINDS.contains(&kind.as_str()) {
        return Err(ConversionError::UnsupportedKind { kind });
    }
    if from == to {
        return Ok(object);
    }
    let Value::Object(mut fields) = object else {
        return Err(ConversionError::MissingField { field: "apiVersion" });
    };
    // Fields outside apiVersion/kind/metadata/spec/status (the Provider schema preserves them) pass through.
    let extra: Map<String, Value> = fields
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "spec" | "status"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    fields.retain(|k, _| !extra.contains_key(k));
    let hub = up(&kind, from, Value::Object(fields), config)?;
    let mut out = down(&kind, to, hub, config)?;
    if let Value::Object(out_fields) = &mut out {
        out_fields.extend(extra);
    }
    Ok(out)
}

fn version_of(api_version: &str) -> Result<&'static str, ConversionError> {
    let unsupported = || ConversionError::UnsupportedVersion {
        api_version: api_version.to_string(),
    };
    let (group, version) = api_version.split_once('/').ok_or_else(unsupported)?;
    if group != GROUP {
        return Err(unsupported());
    }
    VERSIONS
        .into_iter()
        .find(|v| *v == version)
        .ok_or_else(unsupported)
}

macro_rules! route {
    ($kind:expr, $version:expr, $f:ident, $value:expr, $config:expr) => {{
        use crate::resources::{v1alpha5 as a5, v1alpha6 as a6};
        match ($version, $kind) {
            ("v1alpha6", "Pipeline") => $f::<a6::Pipeline>($value, $config),
            ("v1alpha6", "Run") => $f::<a6::Run>($value, $config),
            ("v1alpha6", "RunConfiguration") => $f::<a6::RunConfiguration>($value, $config),
            ("v1alpha6", "RunSchedule") => $f::<a6::RunSchedule>($value, $config),
            ("v1alpha6", "Experiment") => $f::<a6::Experiment>($value, $config),
            ("v1alpha6", "Provider") => $f::<a6::Provider>($value, $config),
            ("v1alpha5", "Pipeline") => $f::<a5::Pipeline>($value, $config),
            ("v1alpha5", "Run") => $f::<a5::Run>($value, $config),
            ("v1alpha5", "RunConfiguration") => $f::<a5::RunConfiguration>($value, $config),
            ("v1alpha5", "RunSchedule") => $f::<a5::RunSchedule>($value, $config),
            ("v1alpha5", "Experiment") => $f::<a5::Experiment>($value, $config),
            ("v1alpha5", "Provider") => $f::<a5::Provider>($value, $config),
            (_, kind) => Err(ConversionError::UnsupportedKind {
                kind: kind.to_string(),
            }),
        }
    }};
}

fn up(kind: &str, version: &str, value: Value, config: &ConversionConfig) -> Result<Value, ConversionError> {
    if version == "v1beta1" {
        return Ok(value);
    }
    route!(kind, version, spoke_to_hub, value, config)
}

fn down(kind: &str, version: &str, hub: Value, config: &ConversionConfig) -> Result<Value, ConversionError> {
    if version == "v1beta1" {
        return Ok(hub);
    }
    route!(kind, version, hub_to_spoke, hub, config)
}

fn spoke_to_hub<S>(value: Value, config: &ConversionConfig) -> Result<Value, ConversionError>
where
    S: Spoke + DeserializeOwned + kube::Resource<DynamicType = ()>,
    S::Hub: Serialize,
{
    let spoke: S = decode::<S>(value)?;
    encode(&spoke.to_hub(config)?)
}

fn hub_to_spoke<S>(value: Value, config: &ConversionConfig) -> Result<Value, ConversionError>
where
    S: Spoke + Serialize,
    S::Hub: DeserializeOwned + kube::Resource<DynamicType = ()>,
{
    let hub = decode::<S::Hub>(value)?;
    encode(&S::from_hub(&hub, config)?)
}

fn decode<T: DeserializeOwned + kube::Resource<DynamicType = ()>>(
    value: Value,
) -> Result<T, ConversionError> {
    serde_json::from_value(value).map_err(|e| ConversionError::InvalidObject {
        kind: T::kind(&()).to_string(),
        api_version: T::api_version(&()).to_string(),
        reason: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Result<Value, ConversionError> {
    serde_json::to_value(value).map_err(|e| ConversionError::InvalidField {
        field: "object".to_string(),
        reason: e.to_string(),
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Remainder
// ---------------------------------------------------------------------------------------------------------------

/// The JSON object in [`REMAINDER_ANNOTATION`]: keys are taken as they are used; what is left passes through.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Remainder(Map<String, Value>);

impl Remainder {
    /// Reads and removes the annotation (an object without annotations left gets `None`).
    pub(crate) fn take_from(meta: &mut ObjectMeta) -> Result<Self, ConversionError> {
        match remove_annotation(meta, REMAINDER_ANNOTATION) {
            None => Ok(Self::default()),
            Some(raw) if raw.trim().is_empty() => Ok(Self::default()),
            Some(raw) => match serde_json::from_str::<Value>(&raw) {
                Ok(Value::Object(map)) => Ok(Self(map)),
                Ok(_) => Err(ConversionError::InvalidRemainder {
                    value: raw,
                    reason: "it is not a JSON object".to_string(),
                }),
                Err(e) => Err(ConversionError::InvalidRemainder {
                    value: raw,
                    reason: e.to_string(),
                }),
            },
        }
    }

    /// Takes `key` (absent or `null` is `None`).
    pub(crate) fn take<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, ConversionError> {
        match self.0.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value.clone()).map(Some).map_err(|e| {
                ConversionError::InvalidRemainder {
                    value: format!("{key}: {value}"),
                    reason: e.to_string(),
                }
            }),
        }
    }

    pub(crate) fn put<T: Serialize>(&mut self, key: &str, value: &T) -> Result<(), ConversionError> {
        let value = serde_json::to_value(value).map_err(|e| ConversionError::InvalidField {
            field: format!("remainder {key}"),
            reason: e.to_string(),
        })?;
        self.0.insert(key.to_string(), value);
        Ok(())
    }

    /// Puts `value` unless it is empty (per `is_empty`).
    pub(crate) fn put_nonempty<T: Serialize>(
        &mut self,
        key: &str,
        value: &T,
        is_empty: impl FnOnce(&T) -> bool,
    ) -> Result<(), ConversionError> {
        if is_empty(value) {
            Ok(())
        } else {
            self.put(key, value)
        }
    }

    /// Writes the annotation when anything is left.
    pub(crate) fn write_to(self, meta: &mut ObjectMeta) -> Result<(), ConversionError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let raw = serde_json::to_string(&self.0).map_err(|e| ConversionError::InvalidField {
            field: "remainder".to_string(),
            reason: e.to_string(),
        })?;
        meta.annotations
            .get_or_insert_with(Default::default)
            .insert(REMAINDER_ANNOTATION.to_string(), raw);
        Ok(())
    }

    /// Moves the keys nobody took into `other` (which wins on a clash).
    pub(crate) fn pass_into(self, other: &mut Remainder) {
        for (k, v) in self.0 {
            other.0.entry(k).or_insert(v);
        }
    }
}

pub(crate) fn remove_annotation(meta: &mut ObjectMeta, key: &str) -> Option<String> {
    let annotations = meta.annotations.as_mut()?;
    let value = annotations.remove(key);
    if annotations.is_empty() {
        meta.annotations = None;
    }
    value
}

pub(crate) fn set_annotation(meta: &mut ObjectMeta, key: &str, value: &str) {
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(key.to_string(), value.to_string());
}

// ---------------------------------------------------------------------------------------------------------------
// Shared rules
// ---------------------------------------------------------------------------------------------------------------

/// Remainder keys. Spoke side: what the spoke cannot hold. Hub side: what the hub cannot hold.
pub(crate) mod keys {
    pub const PROVIDER_NAMESPACE: &str = "providerNamespace";
    pub const PROVIDER_STATUS_NAMESPACE: &str = "providerStatusNamespace";
    pub const PROVIDER_STATUS_NAME: &str = "providerStatusName";
    pub const FRAMEWORK: &str = "framework";
    pub const OPTIONAL_PARAMETERS: &str = "optionalParameters";
    pub const FRAMEWORKS: &str = "frameworks";
    pub const ALLOWED_NAMESPACES: &str = "allowedNamespaces";
    pub const POD_TEMPLATE_ENV: &str = "podTemplateEnv";
    pub const POD_TEMPLATE_VOLUMES: &str = "podTemplateVolumes";
    pub const POD_TEMPLATE_VOLUME_MOUNTS: &str = "podTemplateVolumeMounts";
    pub const SCHEDULES: &str = "schedules";
    pub const SCHEDULE: &str = "schedule";
    pub const SERVICE_ACCOUNT: &str = "serviceAccount";
    pub const LABELS: &str = "labels";
    // hub side
    pub const IMAGE: &str = "image";
    pub const SYNCHRONIZATION_STATE: &str = "synchronizationState";
    pub const RUNTIME_PARAMETERS_FORM: &str = "runtimeParametersForm";
    pub const PROVIDER_DEFAULTED: &str = "providerDefaulted";
}

/// The v1beta1 run options no older version has (`serviceAccount`, `labels` of RunSpec and RunScheduleSpec).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RunOptions {
    pub service_account: String,
    pub labels: BTreeMap<String, String>,
}

impl RunOptions {
    /// Takes them from the spoke's remainder (going up).
    pub(crate) fn take(spoke: &mut Remainder) -> Result<Self, ConversionError> {
        Ok(Self {
            service_account: spoke.take(keys::SERVICE_ACCOUNT)?.unwrap_or_default(),
            labels: spoke.take(keys::LABELS)?.unwrap_or_default(),
        })
    }

    /// Keeps them in the spoke's remainder (going down), when set.
    pub(crate) fn put(
        spoke: &mut Remainder,
        service_account: &String,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), ConversionError> {
        spoke.put_nonempty(keys::SERVICE_ACCOUNT, service_account, String::is_empty)?;
        spoke.put_nonempty(keys::LABELS, labels, BTreeMap::is_empty)
    }
}

/// A bare provider name to the hub: namespace from the remainder, else `default_namespace`; empty stays empty.
pub(crate) fn provider_to_hub(
    name: &str,
    namespace: Option<String>,
    default_namespace: &str,
) -> NamespacedName {
    if name.is_empty() {
        NamespacedName::default()
    } else {
        NamespacedName::new(namespace.unwrap_or_else(|| default_namespace.to_string()), name)
    }
}

/// A hub provider reference to a bare name, and the namespace to remember (unless it is the default one).
pub(crate) fn provider_from_hub(
    provider: &NamespacedName,
    default_namespace: &str,
) -> (String, Option<String>) {
    if provider.name.is_empty() || provider.namespace == default_namespace {
        (provider.name.clone(), None)
    } else {
        (provider.name.clone(), Some(provider.namespace.clone()))
    }
}

fn synchronized_reason(conditions: &[Condition]) -> Option<&str> {
    conditions
        .iter()
        .find(|c| c.type_ == SYNCHRONIZED)
        .map(|c| c.reason.as_str())
}

/// `synchronizationState` to the hub: the condition reason carries it; without a condition it goes to the hub
/// remainder (objects written before conditions existed).
pub(crate) fn sync_state_to_hub(
    state: &str,
    conditions: &[Condition],
    hub_remainder: &mut Remainder,
) -> Result<(), ConversionError> {
    if synchronized_reason(conditions).is_none() && !state.is_empty() {
        hub_remainder.put(keys::SYNCHRONIZATION_STATE, &state)?;
    }
    Ok(())
}

/// `synchronizationState` from the hub: the `Synchronized` condition's reason, else the hub remainder's.
pub(crate) fn sync_state_from_hub(
    conditions: &[Condition],
    hub_remainder: &mut Remainder,
) -> Result<String, ConversionError> {
    let stashed: Option<String> = hub_remainder.take(keys::SYNCHRONIZATION_STATE)?;
    Ok(match synchronized_reason(conditions) {
        Some(reason) => reason.to_string(),
        None => stashed.unwrap_or_default(),
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Pipeline framework <-> tfxComponents / beamArgs
// ---------------------------------------------------------------------------------------------------------------

pub(crate) const TFX: &str = "tfx";

/// The hub framework for `tfxComponents` and `beamArgs` (`beamArgs` left out when empty).
pub(crate) fn tfx_framework(
    components: &str,
    beam_args: &[NamedValue],
) -> Result<v1beta1::PipelineFramework, ConversionError> {
    let mut parameters = crate::values::JsonMap::new();
    parameters.insert("components".to_string(), Value::String(components.to_string()));
    if !beam_args.is_empty() {
        parameters.insert("beamArgs".to_string(), encode(&beam_args)?);
    }
    Ok(v1beta1::PipelineFramework {
        name: TFX.to_string(),
        parameters,
    })
}

/// `tfxComponents` (or its alias `pipeline`, compilers/README.md) and `beamArgs` read from framework parameters, best
/// effort.
pub(crate) fn tfx_fields(framework: &v1beta1::PipelineFramework) -> (String, Vec<NamedValue>) {
    let components = ["components", "pipeline"]
        .iter()
        .find_map(|k| framework.parameters.get(*k).and_then(Value::as_str))
        .unwrap_or_default()
        .to_string();
    let beam_args = framework
        .parameters
        .get("beamArgs")
        .and_then(|v| serde_json::from_value::<Vec<NamedValue>>(v.clone()).ok())
        .unwrap_or_default();
    (components, beam_args)
}

/// The hub framework of a spoke Pipeline: a stashed non-tfx framework whole; a stashed tfx framework when the
/// spoke's fields still match it, else with the spoke's fields written over it; else built from the fields.
pub(crate) fn framework_to_hub(
    stash: Option<v1beta1::PipelineFramework>,
    components: &str,
    beam_args: &[NamedValue],
) -> Result<Option<v1beta1::PipelineFramework>, ConversionError> {
    match stash {
        Some(f) if !f.name.eq_ignore_ascii_case(TFX) => Ok(Some(f)),
        Some(f) if tfx_fields(&f) == (components.to_string(), beam_args.to_vec()) => Ok(Some(f)),
        Some(mut f) if !components.is_empty() => {
            for key in ["components", "pipeline", "beamArgs"] {
                f.parameters.remove(key);
            }
            f.parameters
                .extend(tfx_framework(components, beam_args)?.parameters);
            Ok(Some(f))
        }
        _ if !components.is_empty() => tfx_framework(components, beam_args).map(Some),
        _ => Ok(None),
    }
}

/// Spoke fields of a hub framework, and the framework to stash when the fields cannot rebuild it exactly.
pub(crate) fn framework_from_hub(
    framework: &v1beta1::PipelineFramework,
) -> Result<(String, Vec<NamedValue>, Option<v1beta1::PipelineFramework>), ConversionError> {
    let (components, beam_args) = tfx_fields(framework);
    let exact = !components.is_empty() && tfx_framework(&components, &beam_args)? == *framework;
    Ok((components, beam_args, (!exact).then(|| framework.clone())))
}

// ---------------------------------------------------------------------------------------------------------------
// Run parameters
// ---------------------------------------------------------------------------------------------------------------

use crate::resources::v1alpha6::{
    RunConfigurationRef as SpokeRef, RuntimeParameter, ValueFrom as SpokeValueFrom,
};

/// `runtimeParameters` to hub `parameters`; `optional` comes back from the remainder's list of names.
pub(crate) fn parameters_to_hub(params: &[RuntimeParameter], optional: &[String]) -> Vec<v1beta1::Parameter> {
    params
        .iter()
        .map(|p| v1beta1::Parameter {
            name: p.name.clone(),
            value: p.value.clone(),
            value_from: p.value_from.as_ref().map(|vf| v1beta1::ValueFrom {
                run_configuration_ref: v1beta1::RunConfigurationRef {
                    name: vf.run_configuration_ref.name.clone(),
                    output_artifact: vf.run_configuration_ref.output_artifact.clone(),
                    optional: optional.contains(&p.name),
                },
            }),
        })
        .collect()
}

/// Hub `parameters` to `runtimeParameters`, and the names of optional ones, which the remainder keeps (decision 0003).
pub(crate) fn parameters_from_hub(params: &[v1beta1::Parameter]) -> (Vec<RuntimeParameter>, Vec<String>) {
    let optional = params
        .iter()
        .filter(|p| {
            p.value_from
                .as_ref()
                .is_some_and(|vf| vf.run_configuration_ref.optional)
        })
        .map(|p| p.name.clone())
        .collect();
    let spoke = params
        .iter()
        .map(|p| RuntimeParameter {
            name: p.name.clone(),
            value: p.value.clone(),
            value_from: p.value_from.as_ref().map(|vf| SpokeValueFrom {
                run_configuration_ref: SpokeRef {
                    name: vf.run_configuration_ref.name.clone(),
                    output_artifact: vf.run_configuration_ref.output_artifact.clone(),
                },
            }),
        })
        .collect();
    (spoke, optional)
}

// ---------------------------------------------------------------------------------------------------------------
// Provider frameworks <-> image / defaultBeamArgs
// ---------------------------------------------------------------------------------------------------------------

pub(crate) const BEAM_ARGS_PATCH_PATH: &str = "/framework/parameters/beamArgs/0";

/// One `json` patch with one `add` op per beam argument (none when there are no arguments).
pub(crate) fn beam_arg_patches(args: &[NamedValue]) -> Result<Vec<v1beta1::Patch>, ConversionError> {
    if args.is_empty() {
        return Ok(Vec::new());
    }
    let ops: Vec<Value> = args
        .iter()
        .map(|a| serde_json::json!({"op": "add", "path": BEAM_ARGS_PATCH_PATH, "value": {"name": a.name, "value": a.value}}))
        .collect();
    let payload = serde_json::to_string(&ops).map_err(|e| ConversionError::InvalidField {
        field: "spec.defaultBeamArgs".to_string(),
        reason: e.to_string(),
    })?;
    Ok(vec![v1beta1::Patch {
        type_: v1beta1::PatchType::Json,
        payload,
    }])
}

/// Beam arguments read back from `add` ops at [`BEAM_ARGS_PATCH_PATH`] of `json` patches; anything else is skipped.
pub(crate) fn beam_args_from_patches(patches: &[v1beta1::Patch]) -> Vec<NamedValue> {
    patches
        .iter()
        .filter(|p| p.type_ == v1beta1::PatchType::Json)
        .filter_map(|p| serde_json::from_str::<Vec<Value>>(&p.payload).ok())
        .flatten()
        .filter(|op| {
            op.get("op").and_then(Value::as_str) == Some("add")
                && op.get("path").and_then(Value::as_str) == Some(BEAM_ARGS_PATCH_PATH)
        })
        .filter_map(|op| {
            op.get("value")
                .and_then(|v| serde_json::from_value::<NamedValue>(v.clone()).ok())
        })
        .collect()
}

fn is_tfx(f: &v1beta1::Framework) -> bool {
    f.name.eq_ignore_ascii_case(TFX)
}

/// The hub Provider spec of a v1alpha6/v1alpha5 Provider (both share [`crate::resources::v1alpha6::ProviderSpec`]).
pub(crate) fn provider_spec_to_hub(
    spec: &crate::resources::v1alpha6::ProviderSpec,
    spoke_remainder: &mut Remainder,
    hub_remainder: &mut Remainder,
    config: &ConversionConfig,
) -> Result<v1beta1::ProviderSpec, ConversionError> {
    let mut frameworks: Vec<v1beta1::Framework> = spoke_remainder.take(keys::FRAMEWORKS)?.unwrap_or_default();
    if !frameworks.iter().any(is_tfx) {
        frameworks.insert(
            0,
            v1beta1::Framework {
                name: TFX.to_string(),
                image: config.default_tfx_image.clone(),
                patches: Vec::new(),
            },
        );
    }
    let mut tfx_image = String::new();
    for framework in frameworks.iter_mut().filter(|f| is_tfx(f)) {
        if beam_args_from_patches(&framework.patches) != spec.default_beam_args {
            framework.patches = beam_arg_patches(&spec.default_beam_args)?;
        }
        tfx_image = framework.image.clone();
    }
    if spec.image != tfx_image {
        hub_remainder.put(keys::IMAGE, &spec.image)?;
    }
    Ok(v1beta1::ProviderSpec {
        service_image: spec.service_image.clone(),
        execution_mode: spec.execution_mode.clone(),
        service_account: spec.service_account.clone(),
        pipeline_root_storage: spec.pipeline_root_storage.clone(),
        parameters: spec.parameters.clone(),
        frameworks,
        allowed_namespaces: spoke_remainder
            .take(keys::ALLOWED_NAMESPACES)?
            .unwrap_or_default(),
        pod_template_env: spoke_remainder.take(keys::POD_TEMPLATE_ENV)?.unwrap_or_default(),
        pod_template_volumes: spoke_remainder
            .take(keys::POD_TEMPLATE_VOLUMES)?
            .unwrap_or_default(),
        pod_template_volume_mounts: spoke_remainder
            .take(keys::POD_TEMPLATE_VOLUME_MOUNTS)?
            .unwrap_or_default(),
    })
}

/// The v1alpha6/v1alpha5 Provider spec of a hub Provider; needs a `tfx` framework.
pub(crate) fn provider_spec_from_hub(
    spec: &v1beta1::ProviderSpec,
    name: &str,
    version: &'static str,
    hub_remainder: &mut Remainder,
    spoke_remainder: &mut Remainder,
    config: &ConversionConfig,
) -> Result<crate::resources::v1alpha6::ProviderSpec, ConversionError> {
    let tfx =
        spec.frameworks
            .iter()
            .find(|f| is_tfx(f))
            .ok_or_else(|| ConversionError::MissingTfxFramework {
                name: name.to_string(),
                version,
            })?;
    let image: Option<String> = hub_remainder.take(keys::IMAGE)?;
    let default_beam_args = beam_args_from_patches(&tfx.patches);
    let rebuilt = vec![v1beta1::Framework {
        name: TFX.to_string(),
        image: config.default_tfx_image.clone(),
        patches: beam_arg_patches(&default_beam_args)?,
    }];
    if rebuilt != spec.frameworks {
        spoke_remainder.put(keys::FRAMEWORKS, &spec.frameworks)?;
    }
    spoke_remainder.put_nonempty(keys::ALLOWED_NAMESPACES, &spec.allowed_namespaces, Vec::is_empty)?;
    spoke_remainder.put_nonempty(keys::POD_TEMPLATE_ENV, &spec.pod_template_env, Vec::is_empty)?;
    spoke_remainder.put_nonempty(
        keys::POD_TEMPLATE_VOLUMES,
        &spec.pod_template_volumes,
        Vec::is_empty,
    )?;
    spoke_remainder.put_nonempty(
        keys::POD_TEMPLATE_VOLUME_MOUNTS,
        &spec.pod_template_volume_mounts,
        Vec::is_empty,
    )?;
    Ok(crate::resources::v1alpha6::ProviderSpec {
        service_image: spec.service_image.clone(),
        image: image.unwrap_or_else(|| tfx.image.clone()),
        execution_mode: spec.execution_mode.clone(),
        service_account: spec.service_account.clone(),
        default_beam_args,
        pipeline_root_storage: spec.pipeline_root_storage.clone(),
        parameters: spec.parameters.clone(),
    })
}

pub(crate) fn provider_status_to_hub(
    status: &crate::resources::v1alpha6::ProviderStatus,
    hub_remainder: &mut Remainder,
) -> Result<v1beta1::ProviderStatus, ConversionError> {
    sync_state_to_hub(&status.synchronization_state, &status.conditions, hub_remainder)?;
    Ok(v1beta1::ProviderStatus {
        observed_generation: status.observed_generation,
        conditions: status.conditions.clone(),
    })
}

pub(crate) fn provider_status_from_hub(
    status: &v1beta1::ProviderStatus,
    hub_remainder: &mut Remainder,
) -> Result<crate::resources::v1alpha6::ProviderStatus, ConversionError> {
    Ok(crate::resources::v1alpha6::ProviderStatus {
        synchronization_state: sync_state_from_hub(&status.conditions, hub_remainder)?,
        observed_generation: status.observed_generation,
        conditions: status.conditions.clone(),
    })
}
