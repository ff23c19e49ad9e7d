//! The webhooks of `kfp-operator local`: the same conversion and admission webhooks a cluster gets from the chart,
//! served from this process on loopback with a CA made for the run, and the local control plane's CRDs and
//! ValidatingWebhookConfiguration pointed at them. So a v1alpha5 manifest is converted and a bad cron is refused
//! on a laptop exactly as in a cluster (docs/getting-started.md).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kfp_core::conversion::ConversionConfig;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

use super::{FIELD_MANAGER, LocalError};
use crate::shutdown::Shutdown;
use crate::webhook::certificates::Material;
use crate::webhook::configuration::{self, Endpoint};
use crate::webhook::{ServingCertificate, WebhookState, tls};

/// How long the API server may take to call the webhooks after they are registered.
const TAKE_EFFECT: Duration = Duration::from_secs(30);

/// Serves the webhooks on `127.0.0.1:<free port>` until `shutdown`, installs the CRDs converting through them and
/// the validating webhooks, and returns once the API server calls both; their URL.
pub async fn serve(
    client: &Client,
    conversion: ConversionConfig,
    shutdown: Shutdown,
) -> Result<String, LocalError> {
    let failed = |what: &str, error: &dyn std::fmt::Display| LocalError::Webhooks(format!("{what}: {error}"));
    // Valid for a year: a local control plane lives as long as the command.
    let material = Material::generate(
        &["127.0.0.1".to_string()],
        SystemTime::now(),
        Duration::from_secs(365 * 24 * 3600),
        None,
    )
    .map_err(|e| failed("making the webhooks' certificate", &e))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| failed("binding a loopback port", &e))?;
    let port = listener
        .local_addr()
        .map_err(|e| failed("reading the webhooks' port", &e))?
        .port();
    let serving = ServingCertificate::new();
    serving
        .set_pem(material.cert_pem.as_bytes(), material.key_pem.as_bytes())
        .map_err(|e| failed("loading the webhooks' certificate", &e))?;
    let router = crate::webhook::router(WebhookState {
        client: client.clone(),
        conversion: Arc::new(conversion),
    });
    tokio::spawn(async move {
        if let Err(error) = tls::serve(listener, serving, router, shutdown.signalled()).await {
            tracing::error!(%error, "the local webhook server stopped");
        }
    });
    let url = format!("https://127.0.0.1:{port}");
    register(
        client,
        &Endpoint::Url(url.clone()),
        material.ca_pem.as_bytes(),
        FIELD_MANAGER,
    )
    .await?;
    take_effect(client).await?;
    Ok(url)
}

/// Installs the CRDs (conversion through `endpoint`, trusting `ca`) and the validating webhooks, as the chart does
/// in a cluster, server-side applied by `manager`; returns once the CRDs are served. Tests that serve the webhooks
/// themselves register them the same way.
pub async fn register(
    client: &Client,
    endpoint: &Endpoint,
    ca: &[u8],
    manager: &str,
) -> Result<(), LocalError> {
    let apply = PatchParams::apply(manager).force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let rendered =
        configuration::crds(endpoint, Some(ca)).map_err(|e| LocalError::Webhooks(e.to_string()))?;
    for crd in &rendered {
        crds.patch(&crd.name_any(), &apply, &Patch::Apply(crd))
            .await
            .map_err(|source| LocalError::Apply {
                what: format!("CustomResourceDefinition {}", crd.name_any()),
                source,
            })?;
    }
    for crd in &rendered {
        kfp_testenv::wait_until_served(client, &crd.name_any(), TAKE_EFFECT).await?;
    }
    let validating = configuration::validating(endpoint, Some(ca));
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .patch(&validating.name_any(), &apply, &Patch::Apply(&validating))
        .await
        .map_err(|source| LocalError::Apply {
            what: format!("ValidatingWebhookConfiguration {}", validating.name_any()),
            source,
        })?;
    Ok(())
}

/// A v1alpha5 RunSchedule with a cron the admission webhook refuses: the API server converts it (the conversion
/// webhook) and asks the validating webhook, so a refusal quoting the cron shows both in effect.
const PROBE: &str = r#"{
  "apiVersion": "pipelines.kubeflow.org/v1alpha5",
  "kind": "RunSchedule",
  "metadata": {"name": "kfp-operator-local-webhook-probe", "namespace": "default"},
  "spec": {"pipeline": "probe", "schedule": "61 * * * *"}
}"#;

/// Waits until the API server calls both webhooks (it reads a new webhook configuration a moment after the write):
/// a dry-run create of [`PROBE`] is refused for its cron.
async fn take_effect(client: &Client) -> Result<(), LocalError> {
    let probe: DynamicObject =
        serde_json::from_str(PROBE).map_err(|e| LocalError::Webhooks(format!("the probe: {e}")))?;
    let gvk = kube::core::GroupVersionKind::gvk(kfp_core::resources::GROUP, "v1alpha5", "RunSchedule");
    let resource = kube::api::ApiResource::from_gvk(&gvk);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let mut last = String::from("no answer yet");
    let deadline = tokio::time::Instant::now() + TAKE_EFFECT;
    while tokio::time::Instant::now() < deadline {
        match api.create(&dry_run, &probe).await {
            // Our refusal quotes the cron; the API server's own errors (conversion unreachable) do not.
            Err(kube::Error::Api(status))
                if status.code == 422 && status.message.contains("\"61 * * * *\"") =>
            {
                return Ok(());
            }
            Err(error) => last = error.to_string(),
            Ok(_) => last = "the probe was accepted: the validating webhook is not called yet".to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(LocalError::Webhooks(format!(
        "the API server did not call the webhooks within {TAKE_EFFECT:?}: {last}"
    )))
}
