//! Typed operator configuration that the pure planners need (SPEC 7).
//!
//! The operator loads its configuration file (and environment) in `kfp-operator`; the parts that planning depends
//! on are typed here so that `kfp-core` stays free of IO.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde::{Deserialize, Serialize};

/// `spec.defaultProviderValues`: how every provider service is deployed (SPEC 3.8, 7). The Helm chart renders it
/// from its `provider.*` values (container `provider-service`, ports `http` 8080 and `metrics` 8081).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultProviderValues {
    /// Labels of the provider Deployment and Service (the `app` label is added to them).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Replicas of the provider Deployment.
    #[serde(default)]
    pub replicas: i32,
    /// The pod template the provider's own settings are merged into; must contain `serviceContainerName`.
    #[serde(default)]
    pub pod_template_spec: PodTemplateSpec,
    /// The container of the pod template that runs the provider service.
    pub service_container_name: String,
    /// Port of the provider Service's `http` port (the provider-service API).
    pub service_port: i32,
    /// Port of the provider Service's `metrics` port.
    pub metrics_port: i32,
}
