//! Typed operator configuration that the pure planners need (docs/configuration.md).
//!
//! The operator loads its configuration file (and environment) in `kfp-operator`; the parts that planning depends
//! on are typed here so that `kfp-core` stays free of IO.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde::{Deserialize, Serialize};

/// `spec.defaultProviderValues`: how every provider service is deployed (docs/controllers.md, "Providers"). The Helm
/// chart renders it
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
    /// How provider services reach the operator's run-completion feed. Not a key of
    /// `spec.defaultProviderValues`: the operator fills it in from `spec.runCompletionFeed` (with the Argo
    /// executor; in direct mode the operator reads events itself and provider services get no webhook).
    #[serde(skip)]
    pub feed: Option<FeedAccess>,
}

/// How a provider service reaches the operator's run-completion feed: `OPERATORWEBHOOK` and the token
/// (docs/run-completion-events.md, "Authentication").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedAccess {
    /// The feed's URL, given to the provider service as `OPERATORWEBHOOK`.
    pub webhook_url: String,
    /// The audience of the projected ServiceAccount token mounted for the feed ([`FEED_TOKEN_DIR`]); `None`: no
    /// token is mounted (the feed takes a static token, mounted by the platform).
    pub token_audience: Option<String>,
}

/// The provider-service variable holding the feed's URL.
pub const OPERATOR_WEBHOOK_ENV: &str = "OPERATORWEBHOOK";
/// The pod volume of the projected feed token.
pub const FEED_TOKEN_VOLUME: &str = "kfp-operator-token";
/// Where the feed token is mounted: the folder of the provider service's default `OPERATORWEBHOOK_TOKEN_FILE`
/// (`/var/run/secrets/kfp-operator/token`).
pub const FEED_TOKEN_DIR: &str = "/var/run/secrets/kfp-operator";
/// The file name of the feed token in [`FEED_TOKEN_DIR`].
pub const FEED_TOKEN_FILE: &str = "token";
/// How long a projected feed token is valid; kubelet renews it well before (the provider service re-reads it on
/// every send).
pub const FEED_TOKEN_EXPIRATION_SECONDS: i64 = 3600;
