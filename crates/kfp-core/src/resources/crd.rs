//! The CustomResourceDefinitions of all six kinds, every version in one CRD per kind (SPEC 1.1).
//!
//! `kfp-operator crds` prints [`all`]; the output is checked in under `config/crd/`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, ServiceReference, WebhookClientConfig,
    WebhookConversion,
};
use kube::CustomResourceExt;
use kube::core::crd::{MergeError, merge_crds};

use super::{v1alpha5, v1alpha6, v1beta1};

/// The hub version: stored, and the one every other version converts through.
pub const STORAGE_VERSION: &str = "v1beta1";

/// Where the API server sends ConversionReviews. The Helm chart overrides name, namespace and CA bundle.
pub const CONVERSION_SERVICE_NAME: &str = "kfp-operator-webhook-service";
pub const CONVERSION_SERVICE_NAMESPACE: &str = "kfp-operator-system";
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
    }
    Ok(crds)
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

/// The Provider schema keeps fields it does not know at its root (SPEC 1.1), as the Go operator's does.
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
