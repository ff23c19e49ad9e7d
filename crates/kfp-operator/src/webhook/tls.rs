//! HTTPS for the webhooks: rustls (ring) with a certificate that can be replaced while serving, and hyper serving
//! the axum router on each TLS connection.
//!
//! [`ServingCertificate`] is what rustls asks for the certificate on every handshake, so a rotated Secret or a
//! renewed file takes effect on the next connection, without a restart. Connections are HTTP/1.1 (ALPN), as
//! controller-runtime serves webhooks; each has its own task, and a handshake that does not finish within 10 s is
//! dropped, so a slow client never holds up the others.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use kfp_providers::service::edge::Connection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::WebhookError;
use crate::health::ReadinessFlag;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// In-flight requests get this long to finish on shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a certificate and key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateLoadError {
    /// The certificate is not PEM.
    #[error("the certificate is not PEM: {0}")]
    CertificatePem(String),
    /// The PEM holds no certificate.
    #[error("the certificate PEM holds no certificate")]
    NoCertificate,
    /// The key is not a PEM private key.
    #[error("the private key is not a PEM private key (PKCS#8, PKCS#1 or SEC1): {0}")]
    KeyPem(String),
    /// The key does not fit the certificate.
    #[error("the private key does not fit the certificate or is not supported: {0}")]
    Key(rustls::Error),
}

/// The certificate the webhook server presents, replaceable at any time; cheap to clone (clones share it).
#[derive(Debug, Clone, Default)]
pub struct ServingCertificate {
    current: Arc<RwLock<Option<Loaded>>>,
    ready: Option<ReadinessFlag>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl ServingCertificate {
    /// An empty holder: no certificate until one is set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `flag` once a certificate is loaded (the webhook's readiness check).
    pub fn with_readiness(mut self, flag: ReadinessFlag) -> Self {
        if self.is_loaded() {
            flag.set(true);
        }
        self.ready = Some(flag);
        self
    }

    /// Serves `cert_pem` (the certificate, then any intermediates) with `key_pem` from the next handshake on.
    /// Returns whether anything changed; on error the previous certificate stays.
    pub fn set_pem(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<bool, CertificateLoadError> {
        if self.holds(cert_pem, key_pem) {
            return Ok(false);
        }
        let key = certified_key(cert_pem, key_pem)?;
        let loaded = Loaded {
            key: Arc::new(key),
            cert_pem: cert_pem.to_vec(),
            key_pem: key_pem.to_vec(),
        };
        match self.current.write() {
            Ok(mut current) => *current = Some(loaded),
            Err(poisoned) => *poisoned.into_inner() = Some(loaded),
        }
        if let Some(flag) = &self.ready {
            flag.set(true);
        }
        Ok(true)
    }

    /// Whether a certificate is loaded.
    pub fn is_loaded(&self) -> bool {
        self.read(|loaded| loaded.is_some())
    }

    /// The PEM of the certificate being served, if any.
    pub fn certificate_pem(&self) -> Option<Vec<u8>> {
        self.read(|loaded| loaded.map(|l| l.cert_pem.clone()))
    }

    fn holds(&self, cert_pem: &[u8], key_pem: &[u8]) -> bool {
        self.read(|loaded| loaded.is_some_and(|l| l.cert_pem == cert_pem && l.key_pem == key_pem))
    }

    fn read<T>(&self, f: impl FnOnce(Option<&Loaded>) -> T) -> T {
        match self.current.read() {
            Ok(current) => f(current.as_ref()),
            Err(poisoned) => f(poisoned.get_ref().as_ref()),
        }
    }
}

impl ResolvesServerCert for ServingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.read(|loaded| loaded.map(|l| l.key.clone()))
    }
}

/// A rustls key from PEM, checked to belong to the certificate.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, CertificateLoadError> {
    let chain = certificates_from_pem(cert_pem)?;
    if chain.is_empty() {
        return Err(CertificateLoadError::NoCertificate);
    }
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| CertificateLoadError::KeyPem(e.to_string()))?;
    CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider())
        .map_err(CertificateLoadError::Key)
}

/// Every certificate in a PEM bundle, in order.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, CertificateLoadError> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertificateLoadError::CertificatePem(e.to_string()))
}

/// Serves `router` over TLS on `listener` with `certificate` until `shutdown`, then lets requests in flight finish
/// (up to 10 s). Handshakes before a certificate is loaded fail (the client sees a TLS alert) and are retried by
/// the API server.
pub async fn serve(
    listener: TcpListener,
    certificate: ServingCertificate,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebhookError> {
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(certificate));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: say so, and give the system a moment.
                tracing::warn!(%error, "the webhook server could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(Connection::new(tcp))).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake with a webhook client failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake with a webhook client timed out");
                        return;
                    }
                };
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(TokioIo::new(tls), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%peer, %error, "webhook connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("webhook requests still in flight after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
    Ok(())
}
