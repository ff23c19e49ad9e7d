//! The operator's webhook server for tests that need the API server to call it: served from this process over TLS
//! with a test CA, and the control plane's CRDs (conversion) and ValidatingWebhookConfiguration pointing at it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kfp_core::conversion::ConversionConfig;
use kfp_operator::webhook::certificates::Material;
use kfp_operator::webhook::configuration::Endpoint;
use kfp_operator::webhook::{ServingCertificate, WebhookState};
use kfp_testenv::TestEnv;

/// A webhook server the API server calls, and how to reach it.
pub struct WebhookServer {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The PEM CA that signed its serving certificate.
    pub ca_pem: String,
}

/// Starts the webhook server with `conversion` and registers it on `env`: CRDs converting through it (waited until
/// served) and the validating webhooks. The API server picks the webhook settings up a moment later: callers wait
/// for a conversion and a refusal they expect before relying on them.
pub async fn serve_webhooks(
    env: &'static TestEnv,
    conversion: ConversionConfig,
    manager: &str,
) -> WebhookServer {
    let material = Material::generate(
        &["127.0.0.1".to_string()],
        SystemTime::now(),
        Duration::from_secs(24 * 3600),
        None,
    )
    .unwrap();
    let port = start_server(env, &material, conversion).await;
    let url = format!("https://127.0.0.1:{port}");
    let client = env.client().await.unwrap();
    kfp_operator::local::webhooks::register(
        &client,
        &Endpoint::Url(url.clone()),
        material.ca_pem.as_bytes(),
        manager,
    )
    .await
    .unwrap();
    WebhookServer {
        url,
        ca_pem: material.ca_pem.clone(),
    }
}

/// Starts the webhook server on its own thread and runtime (tests each have a runtime of their own, and the
/// server must outlive every one of them); returns its port.
async fn start_server(env: &'static TestEnv, material: &Material, conversion: ConversionConfig) -> u16 {
    let (port_tx, port_rx) = tokio::sync::oneshot::channel();
    let (cert, key) = (material.cert_pem.clone(), material.key_pem.clone());
    std::thread::Builder::new()
        .name("webhook-server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let client = env.client().await.unwrap();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                let serving = ServingCertificate::new();
                serving.set_pem(cert.as_bytes(), key.as_bytes()).unwrap();
                let router = kfp_operator::webhook::router(WebhookState {
                    client,
                    conversion: Arc::new(conversion),
                });
                kfp_operator::webhook::tls::serve(listener, serving, router, std::future::pending())
                    .await
                    .unwrap();
            });
        })
        .unwrap();
    port_rx.await.unwrap()
}
