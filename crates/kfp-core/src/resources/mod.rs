//! The API of group `pipelines.kubeflow.org`: six kinds in three versions (docs/concepts.md, "Resources";
//! docs/reference/README.md).
//!
//! `v1beta1` is the hub and storage version; `v1alpha6` and `v1alpha5` (deprecated) are spokes converted to and from
//! it by [`crate::conversion`]. [`crd`] renders the multi-version CustomResourceDefinitions.
//!
//! `spec` is optional, as in the Go operator's schemas: an object without one reads as the empty spec
//! (`optional_spec`) instead of failing to decode, which would stop a controller's whole list. The admission
//! webhook then names the first field the kind cannot do without (docs/decisions/0015).

/// Serde for the spec types of the kinds: a missing (or `null`) `spec` decodes as `Default::default()`.
///
/// kube's derive gives the root type a required `spec` field and allows no serde attribute on it, but serde asks a
/// missing field's type to decode "none" (`deserialize_option`), so the spec type itself can answer with its
/// default. Each spec type derives serde with `remote = "Self"`, which turns the derived code into inherent
/// functions; these trait impls call them.
macro_rules! optional_spec {
    ($($spec:ty),* $(,)?) => {$(
        impl serde::Serialize for $spec {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                <$spec>::serialize(self, serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $spec {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Present($spec);
                impl<'de> serde::Deserialize<'de> for Present {
                    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                        <$spec>::deserialize(deserializer).map(Present)
                    }
                }
                Ok(Option::<Present>::deserialize(deserializer)?.map(|p| p.0).unwrap_or_default())
            }
        }
    )*};
}
use optional_spec;

pub mod crd;
// kube's `printcolumn(...)` lists repeat `type_ = "string"`, which clippy mistakes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
pub mod v1alpha5;
#[allow(clippy::duplicated_attributes)]
pub mod v1alpha6;
#[allow(clippy::duplicated_attributes)]
pub mod v1beta1;

/// The API group of every kind.
pub const GROUP: &str = "pipelines.kubeflow.org";

/// Held on Pipeline, Run, RunSchedule and Experiment until the provider side is deleted.
pub const FINALIZER: &str = "finalizer.pipelines.kubeflow.org";

/// Lossy conversion data: JSON that the other version cannot hold (docs/webhooks.md, "The conversion webhook").
pub const REMAINDER_ANNOTATION: &str = "v1beta1.pipelines.kubeflow.org/conversions.remainder";

/// Labels the operator reads and writes (docs/concepts.md, "Labels and annotations").
pub mod labels {
    /// The kind of the object a Workflow is for (`pipeline`, `run`, `runschedule`, `experiment`).
    pub const OWNER_KIND: &str = "pipelines.kubeflow.org/owner.kind";
    /// The name of the object a Workflow is for.
    pub const OWNER_NAME: &str = "pipelines.kubeflow.org/owner.name";
    /// The namespace of the object a Workflow is for.
    pub const OWNER_NAMESPACE: &str = "pipelines.kubeflow.org/owner.namespace";
    /// `true` once the operator acted on a Workflow's outcome.
    pub const PROCESSED: &str = "pipelines.kubeflow.org/processed";
    /// The RunConfiguration that created a Run.
    pub const RUN_CONFIGURATION_NAME: &str = "pipelines.kubeflow.org/runconfiguration.name";
    /// What triggered a Run (`onChangePipeline`, `onChangeRunSpec`, `runConfiguration`, `schedule`).
    pub const TRIGGER_TYPE: &str = "pipelines.kubeflow.org/trigger-type";
    /// The object whose change triggered it.
    pub const TRIGGER_SOURCE: &str = "pipelines.kubeflow.org/trigger-source";
    /// The namespace of that object.
    pub const TRIGGER_SOURCE_NAMESPACE: &str = "pipelines.kubeflow.org/trigger-source-namespace";
    /// v1alpha5: the provider a resource uses, as a bare name.
    pub const PROVIDER_ANNOTATION: &str = "pipelines.kubeflow.org/provider";

    /// Trigger label values: `/` becomes `_`, then characters outside `[a-zA-Z0-9_-]` are dropped.
    pub fn sanitize_value(value: &str) -> String {
        value
            .replace('/', "_")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{v1alpha5, v1alpha6, v1beta1};

    #[test]
    fn a_missing_or_null_spec_reads_as_the_empty_one_in_every_version() {
        let without = |api_version: &str, kind: &str| json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}});
        let hub = "pipelines.kubeflow.org/v1beta1";
        let pipeline: v1beta1::Pipeline =
            serde_json::from_value(without(hub, "Pipeline")).unwrap_or_default();
        assert_eq!(pipeline.metadata.name.as_deref(), Some("x"));
        assert_eq!(pipeline.spec, v1beta1::PipelineSpec::default());
        let provider: v1beta1::Provider = serde_json::from_value(
            json!({"apiVersion": hub, "kind": "Provider", "metadata": {"name": "x"}, "spec": null}),
        )
        .unwrap_or_default();
        assert_eq!(provider.metadata.name.as_deref(), Some("x"));
        let rc: v1alpha6::RunConfiguration =
            serde_json::from_value(without("pipelines.kubeflow.org/v1alpha6", "RunConfiguration"))
                .unwrap_or_default();
        assert_eq!(rc.metadata.name.as_deref(), Some("x"));
        let experiment: v1alpha5::Experiment =
            serde_json::from_value(without("pipelines.kubeflow.org/v1alpha5", "Experiment"))
                .unwrap_or_default();
        assert_eq!(experiment.metadata.name.as_deref(), Some("x"));
    }

    #[test]
    fn a_present_spec_reads_and_writes_as_derived() {
        let spec = json!({"provider": "ns/p", "image": "i:1", "framework": {"name": "tfx", "parameters": {"a": 1}},
            "env": [{"name": "E", "value": "v"}]});
        let decoded: v1beta1::PipelineSpec = serde_json::from_value(spec.clone()).unwrap_or_default();
        assert_eq!(decoded.image, "i:1");
        assert_eq!(serde_json::to_value(&decoded).ok(), Some(spec));
        let error = serde_json::from_value::<v1beta1::PipelineSpec>(json!({"image": 1}))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("invalid type: integer `1`, expected a string"),
            "{error}"
        );
    }
}
