//! The Argo executor (SPEC 4): one Workflow per provider operation.

use std::str::FromStr;

use kfp_core::executor::{ResourceKind, ResourceRef};
use kfp_core::resources::labels;
use kube::api::{ApiResource, DynamicObject};
use kube::core::GroupVersionKind;

/// The Argo `Workflow` resource (`argoproj.io/v1alpha1`), for APIs and watches.
pub fn workflow_api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Workflow"),
        "workflows",
    )
}

/// The object a Workflow was created for, from its three owner labels.
pub fn owner_of(workflow: &DynamicObject) -> Option<ResourceRef> {
    let labels = workflow.metadata.labels.as_ref()?;
    let kind = ResourceKind::from_str(labels.get(labels::OWNER_KIND)?).ok()?;
    Some(ResourceRef::new(
        kind,
        labels.get(labels::OWNER_NAMESPACE)?.clone(),
        labels.get(labels::OWNER_NAME)?.clone(),
    ))
}
