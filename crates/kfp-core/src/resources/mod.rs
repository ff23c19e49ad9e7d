//! The API of group `pipelines.kubeflow.org`: six kinds in three versions (SPEC 1).
//!
//! `v1beta1` is the hub and storage version; `v1alpha6` and `v1alpha5` (deprecated) are spokes converted to and from
//! it by [`crate::conversion`]. [`crd`] renders the multi-version CustomResourceDefinitions.

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

/// Lossy conversion data: JSON that the hub cannot hold, kept on the spoke object (SPEC 2).
pub const REMAINDER_ANNOTATION: &str = "v1beta1.pipelines.kubeflow.org/conversions.remainder";

/// Labels the operator reads and writes (SPEC 1.4).
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
