//! The conversion and admission webhooks (docs/webhooks.md): one HTTPS server the API server calls.
//!
//! | path | what |
//! |---|---|
//! | `POST /convert` | ConversionReview v1: any of the six kinds between v1alpha5, v1alpha6 and v1beta1, with `kfp_core::conversion` ([`conversion`]) |
//! | `POST /validate-pipelines-kubeflow-org-v1beta1-<kind>` | AdmissionReview v1 for `pipeline`, `run`, `runconfiguration`, `runschedule`, `experiment`, `provider` ([`admission`]) |
//!
//! No kind gets a mutating (defaulting) webhook: the only defaults beyond the CRD schemas' (v1alpha5's default provider
//! and framework) are applied by the conversion, and the rest are CRD schema defaults
//! (`docs/decisions/0007-webhooks.md`).
//!
//! The server speaks TLS with a certificate that can change while it runs ([`tls::ServingCertificate`]): the
//! operator keeps one in a Secret and rotates it (`self` mode), or reloads one that cert-manager writes into a folder
//! (`files` mode), see [`certificates`]. [`configuration`] builds the ValidatingWebhookConfiguration and the CRDs'
//! conversion settings that point the API server here. [`start`] wires it all for `kfp-operator run`; it runs on
//! every replica, leader or not, so admission never waits for an election.

pub mod admission;
pub mod certificates;
pub mod configuration;
pub mod conversion;
pub mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kfp_core::conversion::ConversionConfig;
use kube::Client;

use crate::config::{CertificateMode, OperatorConfig};
use crate::health::Readiness;
use crate::shutdown::Shutdown;

pub use tls::ServingCertificate;

/// Where the API server sends ConversionReviews (the CRDs' `conversion.webhook.clientConfig` path).
pub const CONVERT_PATH: &str = kfp_core::resources::crd::CONVERSION_PATH;

/// The readiness check that passes once the server has a serving certificate.
pub const READINESS_CHECK: &str = "webhook serving certificate";

/// Review bodies can hold many objects (a list converted for `kubectl get`); the API server itself bounds them.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The six kinds, as the webhook paths and names spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `pipelines`.
    Pipeline,
    /// `runs`.
    Run,
    /// `runconfigurations`.
    RunConfiguration,
    /// `runschedules`.
    RunSchedule,
    /// `experiments`.
    Experiment,
    /// `providers`.
    Provider,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 6] = [
        Self::Pipeline,
        Self::Run,
        Self::RunConfiguration,
        Self::RunSchedule,
        Self::Experiment,
        Self::Provider,
    ];

    /// `Pipeline`, `RunConfiguration`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pipeline => "Pipeline",
            Self::Run => "Run",
            Self::RunConfiguration => "RunConfiguration",
            Self::RunSchedule => "RunSchedule",
            Self::Experiment => "Experiment",
            Self::Provider => "Provider",
        }
    }

    /// The resource name: `pipelines`, `runconfigurations`, ...
    pub fn plural(self) -> String {
        format!("{}s", self.lowercase())
    }

    /// `pipeline`, `runconfiguration`, ...
    pub fn lowercase(self) -> String {
        self.as_str().to_ascii_lowercase()
    }

    /// `/validate-pipelines-kubeflow-org-v1beta1-<kind>`, as kubebuilder names it.
    pub fn validate_path(self) -> String {
        format!("/validate-pipelines-kubeflow-org-v1beta1-{}", self.lowercase())
    }

    /// `v<kind>.pipelines.kubeflow.org`: the webhook's name in the ValidatingWebhookConfiguration.
    pub fn validating_webhook_name(self) -> String {
        format!("v{}.{}", self.lowercase(), kfp_core::resources::GROUP)
    }
}

/// Why the webhook server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The webhook address could not be bound.
    #[error("the webhook server cannot listen on {address} (system.webhook.address): {source}")]
    Bind {
        /// The address.
        address: String,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// TLS could not be set up.
    #[error("the webhook server's TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// What the handlers share: a client for Provider lookups and the conversion settings.
#[derive(Clone)]
pub struct WebhookState {
    /// For Provider lookups.
    pub client: Client,
    /// How v1alpha5 and v1alpha6 objects convert (default provider, framework, ...).
    pub conversion: Arc<ConversionConfig>,
}

/// The routes of every webhook (see the module documentation).
pub fn router(state: WebhookState) -> Router {
    let mut router = Router::new().route(CONVERT_PATH, post(convert));
    for kind in Kind::ALL {
        router = router.route(
            &kind.validate_path(),
            post(move |state: State<WebhookState>, body: axum::body::Bytes| validate(state, kind, body)),
        );
    }
    router
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(
            kfp_providers::service::edge::body_deadline,
        ))
        .with_state(state)
}

/// Anything but the paths above (an unknown kind, a typo): 404 with a JSON body saying what is served, so a
/// misconfigured webhook reads as such in the API server's error.
async fn unknown_route(request: axum::extract::Request) -> Response {
    let message = format!(
        "no webhook at {} {}; served: POST {CONVERT_PATH} and \
         POST /validate-pipelines-kubeflow-org-v1beta1-<kind> for the kinds {}",
        kfp_providers::service::edge::quote(request.method().as_str()),
        kfp_providers::service::edge::quote(request.uri().path()),
        Kind::ALL.map(Kind::lowercase).join(", ")
    );
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

async fn convert(State(state): State<WebhookState>, body: axum::body::Bytes) -> Response {
    let (status, review) = conversion::review(&body, &state.conversion);
    (status, axum::Json(review)).into_response()
}

async fn validate(State(state): State<WebhookState>, kind: Kind, body: axum::body::Bytes) -> Response {
    let (status, review) = admission::review(&state.client, kind, &body).await;
    (status, axum::Json(review)).into_response()
}

/// What [`start`] needs besides the configuration.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The operator's own namespace (`POD_NAMESPACE`): where the certificate Secret lives, and the namespace in the
    /// certificate's DNS names.
    pub namespace: String,
    /// How often `files` mode reads the certificate files (default 10 s).
    pub files_period: Duration,
    /// The longest `self` mode waits between two looks at its Secret (default 60 s).
    pub secret_resync: Duration,
}

impl StartOptions {
    /// The options for an operator in `namespace`, with the default periods.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            files_period: Duration::from_secs(10),
            secret_resync: Duration::from_secs(60),
        }
    }
}

/// Starts the webhook server on `system.webhook.address` and the certificate source of
/// `system.webhook.certificates.mode`, until `shutdown`. Registers [`READINESS_CHECK`] in `readiness`, which passes
/// once a serving certificate is loaded. Fails only when the address cannot be bound; certificate trouble is
/// logged and retried (the operator stays unready meanwhile).
pub async fn start(
    config: &OperatorConfig,
    client: Client,
    readiness: &Readiness,
    options: StartOptions,
    shutdown: Shutdown,
) -> Result<(), WebhookError> {
    let settings = &config.system.webhook;
    let listener = tokio::net::TcpListener::bind(&settings.address)
        .await
        .map_err(|source| WebhookError::Bind {
            address: settings.address.clone(),
            source,
        })?;
    let serving = ServingCertificate::new().with_readiness(readiness.register(READINESS_CHECK));
    let state = WebhookState {
        client: client.clone(),
        conversion: Arc::new(config.spec.conversion()),
    };
    let server = tls::serve(listener, serving.clone(), router(state), shutdown.signalled());
    tokio::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(%error, "the webhook server stopped");
        }
    });
    match settings.certificates.mode {
        CertificateMode::SelfManaged => {
            let manager = certificates::SelfManaged::new(
                client,
                certificates::SelfManagedSettings::from_config(settings, &options.namespace),
                serving,
            )
            .with_resync(options.secret_resync);
            tokio::spawn(manager.run(shutdown));
        }
        CertificateMode::Files => {
            let files = certificates::Files::new(PathBuf::from(&settings.cert_dir), serving)
                .with_period(options.files_period);
            tokio::spawn(files.run(shutdown));
        }
    }
    tracing::info!(
        address = %settings.address,
        mode = ?settings.certificates.mode,
        "webhook server started"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_names_follow_the_contract() {
        assert_eq!(
            Kind::RunConfiguration.validate_path(),
            "/validate-pipelines-kubeflow-org-v1beta1-runconfiguration"
        );
        assert_eq!(Kind::RunSchedule.plural(), "runschedules");
        assert_eq!(
            Kind::Provider.validating_webhook_name(),
            "vprovider.pipelines.kubeflow.org"
        );
        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(kinds, kfp_core::conversion::KINDS);
    }
}
