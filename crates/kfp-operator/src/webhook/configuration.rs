//! The objects that point the API server at the webhooks: the ValidatingWebhookConfiguration and the CRDs'
//! conversion settings, for a Service in the cluster or a URL (tests, out-of-cluster development).
//!
//! The Helm chart renders the same objects (its drift test compares them with [`validating`]); `kfp-operator
//! webhook-configurations` prints them. Names and settings are the webhook contract:
//! `kfp-operator-validating-webhook-configuration`, one webhook `v<kind>.pipelines.kubeflow.org` per kind on
//! `/validate-pipelines-kubeflow-org-v1beta1-<kind>`, `failurePolicy: Fail`, `sideEffects: None`,
//! `admissionReviewVersions: [v1]`, `matchPolicy: Equivalent` (a v1alpha5 or v1alpha6 request is converted to
//! v1beta1 and checked by the same rules), CREATE and UPDATE of the plural resource in `v1beta1`. No kind is
//! defaulted, so there is no MutatingWebhookConfiguration ([`mutating`] returns `None`).

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, RuleWithOperations, ServiceReference, ValidatingWebhook,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use kube::api::ObjectMeta;

use super::{CONVERT_PATH, Kind};
use kfp_core::resources::GROUP;
use kfp_core::resources::crd::STORAGE_VERSION;

/// The ValidatingWebhookConfiguration's name (the contract).
pub const VALIDATING_CONFIGURATION_NAME: &str = "kfp-operator-validating-webhook-configuration";
/// The MutatingWebhookConfiguration's name, should a kind get defaulting (none does today).
pub const MUTATING_CONFIGURATION_NAME: &str = "kfp-operator-mutating-webhook-configuration";
/// The webhook Service and its defaults (the contract).
pub const SERVICE_NAME: &str = "kfp-operator-webhook-service";
/// The namespace of the webhook Service by default.
pub const SERVICE_NAMESPACE: &str = crate::environment::DEFAULT_NAMESPACE;
/// The port of the webhook Service.
pub const SERVICE_PORT: i32 = 443;
/// How long the API server waits for an answer.
pub const TIMEOUT_SECONDS: i32 = 10;

/// Where the API server reaches the webhook server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Service in the cluster (`<name>.<namespace>.svc:<port>`).
    Service {
        /// The Service's namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its port.
        port: i32,
    },
    /// A base URL such as `https://127.0.0.1:9443`; paths are appended.
    Url(String),
}

impl Endpoint {
    /// The contract's Service: `kfp-operator-webhook-service` in `namespace`, port 443.
    pub fn service(namespace: impl Into<String>) -> Self {
        Self::Service {
            namespace: namespace.into(),
            name: SERVICE_NAME.to_string(),
            port: SERVICE_PORT,
        }
    }

    /// The client config for `path` on this endpoint, trusting `ca_bundle` (PEM) if given.
    pub fn client_config(&self, path: &str, ca_bundle: Option<&[u8]>) -> WebhookClientConfig {
        let ca_bundle = ca_bundle.map(|b| ByteString(b.to_vec()));
        match self {
            Self::Service {
                namespace,
                name,
                port,
            } => WebhookClientConfig {
                ca_bundle,
                service: Some(ServiceReference {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    path: Some(path.to_string()),
                    port: Some(*port),
                }),
                url: None,
            },
            Self::Url(base) => WebhookClientConfig {
                ca_bundle,
                service: None,
                url: Some(format!("{}{path}", base.trim_end_matches('/'))),
            },
        }
    }
}

/// The ValidatingWebhookConfiguration of all six kinds on `endpoint`, trusting `ca_bundle` (PEM) if given.
pub fn validating(endpoint: &Endpoint, ca_bundle: Option<&[u8]>) -> ValidatingWebhookConfiguration {
    let webhooks = Kind::ALL
        .into_iter()
        .map(|kind| ValidatingWebhook {
            name: kind.validating_webhook_name(),
            admission_review_versions: vec!["v1".to_string()],
            client_config: endpoint.client_config(&kind.validate_path(), ca_bundle),
            failure_policy: Some("Fail".to_string()),
            match_policy: Some("Equivalent".to_string()),
            side_effects: "None".to_string(),
            timeout_seconds: Some(TIMEOUT_SECONDS),
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec![GROUP.to_string()]),
                api_versions: Some(vec![STORAGE_VERSION.to_string()]),
                operations: Some(vec!["CREATE".to_string(), "UPDATE".to_string()]),
                resources: Some(vec![kind.plural()]),
                scope: Some("Namespaced".to_string()),
            }]),
            ..ValidatingWebhook::default()
        })
        .collect();
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(VALIDATING_CONFIGURATION_NAME.to_string()),
            ..ObjectMeta::default()
        },
        webhooks: Some(webhooks),
    }
}

/// The MutatingWebhookConfiguration: `None`, no kind is defaulted (see `docs/decisions/0007-webhooks.md`).
pub fn mutating(_endpoint: &Endpoint, _ca_bundle: Option<&[u8]>) -> Option<MutatingWebhookConfiguration> {
    None
}

/// The conversion settings of every multi-version CRD: `Webhook` on `endpoint` at `/convert`.
pub fn conversion(endpoint: &Endpoint, ca_bundle: Option<&[u8]>) -> apiextensions::CustomResourceConversion {
    let config = endpoint.client_config(CONVERT_PATH, ca_bundle);
    apiextensions::CustomResourceConversion {
        strategy: "Webhook".to_string(),
        webhook: Some(apiextensions::WebhookConversion {
            conversion_review_versions: vec!["v1".to_string()],
            client_config: Some(apiextensions::WebhookClientConfig {
                ca_bundle: config.ca_bundle,
                service: config.service.map(|s| apiextensions::ServiceReference {
                    name: s.name,
                    namespace: s.namespace,
                    path: s.path,
                    port: s.port,
                }),
                url: config.url,
            }),
        }),
    }
}

/// The six CRDs (`kfp_core::resources::crd::all`) converting through `endpoint`.
pub fn crds(
    endpoint: &Endpoint,
    ca_bundle: Option<&[u8]>,
) -> Result<Vec<apiextensions::CustomResourceDefinition>, kube::core::crd::MergeError> {
    let mut crds = kfp_core::resources::crd::all()?;
    for crd in &mut crds {
        if crd.spec.conversion.is_some() {
            crd.spec.conversion = Some(conversion(endpoint, ca_bundle));
        }
    }
    Ok(crds)
}

/// The webhook configurations as multi-document YAML (what `kfp-operator webhook-configurations` prints).
pub fn render(endpoint: &Endpoint, ca_bundle: Option<&[u8]>) -> Result<String, String> {
    let mut documents = vec![
        serde_json::to_value(with_type_meta(validating(endpoint, ca_bundle))).map_err(|e| e.to_string())?,
    ];
    if let Some(mutating) = mutating(endpoint, ca_bundle) {
        documents.push(serde_json::to_value(with_type_meta(mutating)).map_err(|e| e.to_string())?);
    }
    let mut out = String::from("# Generated by `kfp-operator webhook-configurations`.\n");
    for document in documents {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&document).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Typed objects serialise without apiVersion/kind; manifests need them.
fn with_type_meta<K: kube::Resource<DynamicType = ()> + serde::Serialize>(object: K) -> serde_json::Value {
    let mut value = serde_json::to_value(&object).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), K::api_version(&()).into());
        map.insert("kind".into(), K::kind(&()).into());
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_webhook_per_kind_with_the_contract_settings() {
        let configuration = validating(&Endpoint::service("ops"), Some(b"PEM"));
        assert_eq!(
            configuration.metadata.name.as_deref(),
            Some(VALIDATING_CONFIGURATION_NAME)
        );
        let webhooks = configuration.webhooks.unwrap();
        assert_eq!(webhooks.len(), 6);
        let run = webhooks
            .iter()
            .find(|w| w.name == "vrun.pipelines.kubeflow.org")
            .unwrap();
        assert_eq!(run.failure_policy.as_deref(), Some("Fail"));
        assert_eq!(run.match_policy.as_deref(), Some("Equivalent"));
        assert_eq!(run.side_effects, "None");
        assert_eq!(run.admission_review_versions, ["v1"]);
        let service = run.client_config.service.as_ref().unwrap();
        assert_eq!(
            (service.namespace.as_str(), service.name.as_str(), service.port),
            ("ops", SERVICE_NAME, Some(443))
        );
        assert_eq!(
            service.path.as_deref(),
            Some("/validate-pipelines-kubeflow-org-v1beta1-run")
        );
        assert_eq!(run.client_config.ca_bundle.as_ref().unwrap().0, b"PEM");
        let rule = &run.rules.as_ref().unwrap()[0];
        assert_eq!(rule.resources.as_deref(), Some(&["runs".to_string()][..]));
        assert_eq!(
            rule.operations.as_deref(),
            Some(&["CREATE".to_string(), "UPDATE".to_string()][..])
        );
        assert_eq!(rule.api_versions.as_deref(), Some(&["v1beta1".to_string()][..]));
    }

    #[test]
    fn a_url_endpoint_appends_the_paths() {
        let endpoint = Endpoint::Url("https://127.0.0.1:9443/".into());
        let configuration = validating(&endpoint, None);
        assert_eq!(
            configuration.webhooks.unwrap()[0].client_config.url.as_deref(),
            Some("https://127.0.0.1:9443/validate-pipelines-kubeflow-org-v1beta1-pipeline")
        );
        let crds = crds(&endpoint, Some(b"CA")).unwrap();
        let client = crds[0]
            .spec
            .conversion
            .as_ref()
            .and_then(|c| c.webhook.as_ref())
            .and_then(|w| w.client_config.as_ref())
            .unwrap();
        assert_eq!(client.url.as_deref(), Some("https://127.0.0.1:9443/convert"));
        assert_eq!(client.ca_bundle.as_ref().unwrap().0, b"CA");
    }

    #[test]
    fn the_service_conversion_matches_the_generated_crds() {
        let generated = kfp_core::resources::crd::all().unwrap();
        let rebuilt = crds(&Endpoint::service(SERVICE_NAMESPACE), None).unwrap();
        assert_eq!(
            generated, rebuilt,
            "the checked-in CRDs point at the contract's Service"
        );
        assert!(mutating(&Endpoint::service("x"), None).is_none());
        let yaml = render(&Endpoint::service("ops"), None).unwrap();
        assert!(yaml.contains("kind: ValidatingWebhookConfiguration"), "{yaml}");
        assert!(
            yaml.contains("apiVersion: admissionregistration.k8s.io/v1"),
            "{yaml}"
        );
    }
}
