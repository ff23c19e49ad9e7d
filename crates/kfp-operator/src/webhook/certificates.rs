//! Where the webhook's serving certificate comes from (`system.webhook.certificates.mode`).
//!
//! **`self`** ([`SelfManaged`]): the operator keeps a CA and a serving certificate for
//! `<serviceName>.<namespace>.svc` (and `.svc.cluster.local`) in the Secret `secretName` (type `kubernetes.io/tls`,
//! keys `tls.crt`, `tls.key`, `ca.crt`) in its own namespace, and:
//! - creates the Secret, or adopts one that exists (any Secret of that type whose certificate verifies against its
//!   `ca.crt` for the service's names, with `rotateBefore` to spare; otherwise its content is replaced);
//! - writes only with `resourceVersion` guards (create, or replace of the version it read), so replicas never
//!   fight: the loser of a race reads the winner's certificate and serves that;
//! - replaces the certificate `rotateBefore` its expiry, with a new CA each time; `ca.crt` keeps the previous CA
//!   beside the new one, so a replica still serving the previous certificate stays trusted until it reloads;
//! - patches the `caBundle` of the CRDs' conversion webhook and of every webhook in the webhook configurations
//!   (JSON merge patch or JSON patch of exactly that field, field manager `kfp-operator`) whenever they differ,
//!   watching those objects so that a reinstall (which resets the field) is repaired at once;
//! - serves a new certificate only `switch_after` (10 s) after the new caBundle went out, while the previous one is
//!   still valid: the API server takes a moment to use a new caBundle, and meanwhile it trusts the previous CA;
//! - looks at the Secret again at least every `resync` (and every `rotateBefore / 2`), so a certificate another
//!   replica rotated is served within that time.
//!
//! The CA's private key is never stored: each rotation makes a new CA, so nothing in the Secret can sign another
//! certificate.
//!
//! **`files`** ([`Files`]): another issuer (cert-manager) writes `tls.crt` and `tls.key` into `certDir` (a mounted
//! Secret) and injects the `caBundle` itself; the operator reads the files every `resync` and serves them when they
//! change.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, Resource};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{ServerName, UnixTime};
use serde_json::{Value, json};

use super::configuration::VALIDATING_CONFIGURATION_NAME;
use super::tls::{ServingCertificate, certificates_from_pem, certified_key};
use crate::config::WebhookConfig;
use crate::shutdown::Shutdown;

/// The field manager of every write the certificate manager makes.
pub const FIELD_MANAGER: &str = kfp_core::reconcile::provider::FIELD_MANAGER;
/// The Secret type and keys of the contract (what cert-manager writes too).
pub const SECRET_TYPE: &str = "kubernetes.io/tls";
/// The Secret key of the serving certificate.
pub const CERT_KEY: &str = "tls.crt";
/// The Secret key of its private key.
pub const PRIVATE_KEY_KEY: &str = "tls.key";
/// The Secret key of the CA bundle.
pub const CA_KEY: &str = "ca.crt";
/// How long to wait after a failed pass before the next.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Write attempts per pass: each conflict means another replica wrote first, and the next read sees its result.
const WRITE_ATTEMPTS: usize = 4;

/// Why a certificate pass failed (each is logged and retried).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// A certificate could not be generated.
    #[error("generating a certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A generated certificate could not be loaded for serving.
    #[error("the generated certificate cannot be served: {0}")]
    Load(#[from] Box<super::tls::CertificateLoadError>),
    /// An API call on the Secret failed.
    #[error("{action} the Secret {namespace}/{name} failed: {source}")]
    Secret {
        /// What was being done.
        action: &'static str,
        /// The Secret's namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The Secret exists with another type, which cannot change.
    #[error(
        "the Secret {namespace}/{name} has type {found:?}, not {SECRET_TYPE:?} (a Secret's type cannot change): \
         delete it, or set system.webhook.certificates.secretName to another name"
    )]
    SecretType {
        /// The Secret's namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its type.
        found: String,
    },
    /// Other replicas kept writing the Secret.
    #[error("the Secret {namespace}/{name} kept changing while it was being written; trying again")]
    Contended {
        /// The Secret's namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Patching a `caBundle` failed.
    #[error("patching the caBundle of {what} failed: {source}")]
    CaBundle {
        /// The object patched (a CRD or webhook configuration).
        what: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// A certificate file could not be read (`files` mode).
    #[error("reading {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
}

/// The objects whose `caBundle` the manager keeps equal to the CA bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaBundleTargets {
    /// CRD names (`pipelines.pipelines.kubeflow.org`, ...): their conversion webhook.
    pub crds: Vec<String>,
    /// ValidatingWebhookConfiguration names: every webhook in them.
    pub validating: Vec<String>,
    /// MutatingWebhookConfiguration names: every webhook in them.
    pub mutating: Vec<String>,
}

impl Default for CaBundleTargets {
    /// The six CRDs and the webhook configurations of the contract (`kfp-operator-*-webhook-configuration`).
    fn default() -> Self {
        let crds = kfp_core::resources::crd::all()
            .map(|crds| crds.into_iter().filter_map(|c| c.metadata.name).collect())
            .unwrap_or_default();
        Self {
            crds,
            validating: vec![VALIDATING_CONFIGURATION_NAME.to_string()],
            // No kind has a defaulting webhook, so the operator installs no MutatingWebhookConfiguration and
            // needs no RBAC on them; embedders that add one name it here.
            mutating: Vec::new(),
        }
    }
}

/// `self` mode settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfManagedSettings {
    /// The operator's namespace: where the Secret is.
    pub namespace: String,
    /// The Secret holding the CA and the serving certificate.
    pub secret_name: String,
    /// The names the serving certificate is issued for (and checked against when adopting a Secret).
    pub dns_names: Vec<String>,
    /// How long generated certificates are valid.
    pub validity: Duration,
    /// How long before expiry a certificate is replaced.
    pub rotate_before: Duration,
    /// The objects whose `caBundle` is kept equal to the CA bundle.
    pub targets: CaBundleTargets,
}

impl SelfManagedSettings {
    /// The settings of `system.webhook.*` for an operator in `namespace`: the certificate is for
    /// `<serviceName>.<namespace>.svc` and `<serviceName>.<namespace>.svc.cluster.local`, the names the API server
    /// uses for a webhook Service.
    pub fn from_config(config: &WebhookConfig, namespace: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            secret_name: config.certificates.secret_name.clone(),
            dns_names: service_dns_names(&config.service_name, namespace),
            validity: config.certificates.validity,
            rotate_before: config.certificates.rotate_before,
            targets: CaBundleTargets::default(),
        }
    }
}

/// `<service>.<namespace>.svc` and `<service>.<namespace>.svc.cluster.local`.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    let base = format!("{service}.{namespace}.svc");
    vec![base.clone(), format!("{base}.cluster.local")]
}

/// A CA bundle and a serving certificate with its key, all PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Material {
    /// The serving certificate.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
    /// The CA that signed `cert_pem`, first, then the previous CA (still trusted for the overlap).
    pub ca_pem: String,
}

impl Material {
    /// A new CA and a serving certificate signed by it for `dns_names`, valid from an hour before `now` (clock
    /// skew) until `now + validity`. `previous_ca` (the bundle being replaced) contributes its first certificate.
    pub fn generate(
        dns_names: &[String],
        now: SystemTime,
        validity: Duration,
        previous_ca: Option<&str>,
    ) -> Result<Material, CertificateError> {
        let not_before = offset(now, -3600);
        let not_after = offset(now, i64::try_from(validity.as_secs()).unwrap_or(i64::MAX / 2));
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kfp-operator webhook CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.not_before = not_before;
        ca_params.not_after = not_after;
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let mut params = CertificateParams::new(dns_names.to_vec())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(first) = dns_names.first() {
            params.distinguished_name.push(DnType::CommonName, first.as_str());
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca)?;

        let mut ca_pem = ca.pem();
        if let Some(previous) = previous_ca.and_then(first_pem_block) {
            ca_pem.push_str(&previous);
        }
        Ok(Material {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            ca_pem,
        })
    }

    /// Checks that the key fits the certificate and that the certificate verifies against `ca_pem` for every
    /// one of `dns_names` at time `at` (so `at = now + rotateBefore` asks "still good when it should be rotated").
    pub fn check(&self, dns_names: &[String], at: SystemTime) -> Result<(), String> {
        certified_key(self.cert_pem.as_bytes(), self.key_pem.as_bytes()).map_err(|e| e.to_string())?;
        verify(self.cert_pem.as_bytes(), self.ca_pem.as_bytes(), dns_names, at)
    }

    fn from_secret(secret: &Secret) -> Option<Material> {
        let data = secret.data.as_ref()?;
        let text = |key: &str| {
            data.get(key)
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
                .filter(|s| !s.trim().is_empty())
        };
        Some(Material {
            cert_pem: text(CERT_KEY)?,
            key_pem: text(PRIVATE_KEY_KEY)?,
            ca_pem: text(CA_KEY)?,
        })
    }

    fn secret_data(&self) -> std::collections::BTreeMap<String, ByteString> {
        [
            (CERT_KEY, &self.cert_pem),
            (PRIVATE_KEY_KEY, &self.key_pem),
            (CA_KEY, &self.ca_pem),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect()
    }
}

/// Whether the certificate chain `cert_pem` verifies against the CA bundle `ca_pem` for each of `dns_names` at
/// time `at` (signature, validity period, names, key usage), as a TLS client checks it.
pub fn verify(cert_pem: &[u8], ca_pem: &[u8], dns_names: &[String], at: SystemTime) -> Result<(), String> {
    let chain = certificates_from_pem(cert_pem).map_err(|e| e.to_string())?;
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err("tls.crt holds no certificate".to_string());
    };
    let mut roots = RootCertStore::empty();
    for ca in certificates_from_pem(ca_pem).map_err(|e| format!("ca.crt: {e}"))? {
        roots.add(ca).map_err(|e| format!("ca.crt: {e}"))?;
    }
    if roots.is_empty() {
        return Err("ca.crt holds no certificate".to_string());
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|e| e.to_string())?;
    let time = UnixTime::since_unix_epoch(at.duration_since(UNIX_EPOCH).unwrap_or_default());
    for name in dns_names {
        let server_name = ServerName::try_from(name.clone()).map_err(|e| format!("{name}: {e}"))?;
        verifier
            .verify_server_cert(leaf, intermediates, &server_name, &[], time)
            .map_err(|e| format!("the certificate does not verify for {name}: {e}"))?;
    }
    Ok(())
}

fn offset(now: SystemTime, seconds: i64) -> time::OffsetDateTime {
    let base = now
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(base.saturating_add(seconds))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// The first `-----BEGIN ...-----` block of a PEM bundle, with its trailing newline.
fn first_pem_block(pem: &str) -> Option<String> {
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find("-----BEGIN CERTIFICATE-----")?;
    let end = pem[start..].find(END)? + start + END.len();
    Some(format!("{}\n", &pem[start..end]))
}

// ---------------------------------------------------------------------------------------------------------------
// self mode
// ---------------------------------------------------------------------------------------------------------------

/// The `self` mode certificate manager (see the module documentation).
pub struct SelfManaged {
    client: Client,
    settings: SelfManagedSettings,
    serving: ServingCertificate,
    resync: Duration,
    switch_after: Duration,
    /// A new certificate seen in the Secret, and when, while the previous one is still served.
    pending: std::sync::Mutex<Option<(String, std::time::Instant)>>,
}

/// What one pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    /// What the Secret holds.
    pub material: Material,
    /// Whether this pass wrote the Secret (created it or rotated the certificate).
    pub wrote_secret: bool,
    /// The objects whose caBundle this pass patched (`CustomResourceDefinition/<name>`, ...).
    pub patched: Vec<String>,
    /// Whether the Secret's certificate is the one served; `false` while a new certificate waits for the API
    /// server to take up the new caBundle (the previous certificate is still served meanwhile).
    pub serving: bool,
    /// When the next pass is due.
    pub next: Duration,
}

impl SelfManaged {
    /// A manager of the Secret `settings` names, serving through `serving`.
    pub fn new(client: Client, settings: SelfManagedSettings, serving: ServingCertificate) -> Self {
        Self {
            client,
            settings,
            serving,
            resync: Duration::from_secs(60),
            switch_after: Duration::from_secs(10),
            pending: std::sync::Mutex::new(None),
        }
    }

    /// The longest time between two looks at the Secret (default 60 s).
    pub fn with_resync(mut self, resync: Duration) -> Self {
        self.resync = resync;
        self
    }

    /// How long a replica keeps serving its (still valid) certificate after a new one appeared in the Secret
    /// (default 10 s): the new caBundle, which trusts both, is patched first, and the API server takes a moment to
    /// use it. Serving the new certificate at once could fail the calls in between.
    pub fn with_switch_after(mut self, switch_after: Duration) -> Self {
        self.switch_after = switch_after;
        self
    }

    /// How long to wait between passes: `resync`, but at most half of `rotateBefore`, so that rotation always
    /// happens before expiry.
    pub fn period(&self) -> Duration {
        self.resync
            .min(self.settings.rotate_before / 2)
            .max(Duration::from_millis(100))
    }

    /// Runs passes until `shutdown`: every [`period`](Self::period), and when a CRD or webhook configuration
    /// changes. Errors are logged (once per 30 s) and retried after 5 s, doubling up to the period, jittered.
    pub async fn run(self, shutdown: Shutdown) {
        let changes = tokio::sync::Notify::new();
        let changes = Arc::new(changes);
        let watchers = self.watch_targets(changes.clone());
        let backoff = crate::retry::Backoff::new(RETRY_AFTER.min(self.period()), self.period());
        let mut failures = 0u32;
        loop {
            let wait = match self.pass().await {
                Ok(pass) => {
                    failures = 0;
                    if pass.wrote_secret || !pass.patched.is_empty() {
                        tracing::info!(
                            secret = %self.secret_ref(),
                            wrote_secret = pass.wrote_secret,
                            patched = ?pass.patched,
                            serving = pass.serving,
                            "webhook certificate up to date"
                        );
                    }
                    pass.next
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    if let Some(suppressed) = crate::telemetry::failure_log().check("webhook/certificate") {
                        tracing::error!(
                            failure = "webhook/certificate",
                            %error,
                            failures,
                            suppressed,
                            "webhook certificate pass failed"
                        );
                    }
                    backoff.delay(failures)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = changes.notified() => {}
                () = shutdown.signalled() => break,
            }
        }
        watchers.abort();
    }

    /// Watches the caBundle targets' metadata; any change wakes the loop (our own patches too, which then find
    /// nothing to do).
    fn watch_targets(&self, changes: Arc<tokio::sync::Notify>) -> tokio::task::JoinHandle<()> {
        let targets = self.settings.targets.clone();
        let client = self.client.clone();
        tokio::spawn(async move {
            let mut streams = Vec::new();
            for name in &targets.crds {
                streams.push(name_watch::<CustomResourceDefinition>(&client, name));
            }
            for name in &targets.validating {
                streams.push(name_watch::<ValidatingWebhookConfiguration>(&client, name));
            }
            for name in &targets.mutating {
                streams.push(name_watch::<MutatingWebhookConfiguration>(&client, name));
            }
            let mut all = futures::stream::select_all(streams);
            while all.next().await.is_some() {
                changes.notify_one();
            }
        })
    }

    fn secret_ref(&self) -> String {
        format!("{}/{}", self.settings.namespace, self.settings.secret_name)
    }

    /// One pass: the Secret holds good material (created, adopted or rotated), every caBundle target carries its
    /// CA bundle, and its certificate is served (at once when nothing valid is served yet, else `switch_after`
    /// after it first appeared).
    pub async fn pass(&self) -> Result<Pass, CertificateError> {
        let (material, wrote_secret) = self.ensure_secret().await?;
        let patched = self.patch_ca_bundles(material.ca_pem.as_bytes()).await?;
        let wait = self.serve(&material)?;
        Ok(Pass {
            serving: wait.is_none(),
            next: wait.map_or(self.period(), |w| w.min(self.period())),
            material,
            wrote_secret,
            patched,
        })
    }

    /// Serves `material`, or says how long until it will.
    fn serve(&self, material: &Material) -> Result<Option<Duration>, CertificateError> {
        let mut pending = match self.pending.lock() {
            Ok(pending) => pending,
            Err(poisoned) => poisoned.into_inner(),
        };
        let served = self.serving.certificate_pem();
        if served.as_deref() == Some(material.cert_pem.as_bytes()) {
            *pending = None;
            return Ok(None);
        }
        let served_still_trusted = served.as_deref().is_some_and(|served| {
            verify(
                served,
                material.ca_pem.as_bytes(),
                &self.settings.dns_names,
                SystemTime::now(),
            )
            .is_ok()
        });
        let now = std::time::Instant::now();
        let since = match pending.as_ref() {
            Some((cert, since)) if *cert == material.cert_pem => *since,
            _ => now,
        };
        let elapsed = now.saturating_duration_since(since);
        if !served_still_trusted || elapsed >= self.switch_after {
            self.serving
                .set_pem(material.cert_pem.as_bytes(), material.key_pem.as_bytes())
                .map_err(Box::new)?;
            *pending = None;
            return Ok(None);
        }
        *pending = Some((material.cert_pem.clone(), since));
        Ok(Some(self.switch_after - elapsed))
    }

    async fn ensure_secret(&self) -> Result<(Material, bool), CertificateError> {
        let settings = &self.settings;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &settings.namespace);
        let names = &settings.dns_names;
        let secret_error = |action, source| CertificateError::Secret {
            action,
            namespace: settings.namespace.clone(),
            name: settings.secret_name.clone(),
            source: Box::new(source),
        };
        for _ in 0..WRITE_ATTEMPTS {
            let existing = secrets
                .get_opt(&settings.secret_name)
                .await
                .map_err(|e| secret_error("reading", e))?;
            let now = SystemTime::now();
            let current = existing.as_ref().and_then(Material::from_secret);
            if let Some(secret) = &existing {
                let found = secret.type_.clone().unwrap_or_else(|| "Opaque".to_string());
                if found != SECRET_TYPE {
                    return Err(CertificateError::SecretType {
                        namespace: settings.namespace.clone(),
                        name: settings.secret_name.clone(),
                        found,
                    });
                }
            }
            let verdict = match &current {
                None => Err("no certificate yet".to_string()),
                Some(material) => material.check(names, now + settings.rotate_before),
            };
            match (verdict, current) {
                (Ok(()), Some(material)) => return Ok((material, false)),
                (Err(reason), current) => {
                    tracing::info!(secret = %self.secret_ref(), %reason, "issuing a new webhook certificate");
                    let previous = current.as_ref().map(|m| m.ca_pem.as_str());
                    let material = Material::generate(names, now, settings.validity, previous)?;
                    let written = match existing {
                        None => secrets
                            .create(&post_params(), &self.new_secret(&material))
                            .await
                            .map(|_| ()),
                        Some(mut secret) => {
                            // Replace carries the resourceVersion that was read: a concurrent write wins and
                            // this one gets 409.
                            secret.data = Some(material.secret_data());
                            secret.string_data = None;
                            secrets
                                .replace(&settings.secret_name, &post_params(), &secret)
                                .await
                                .map(|_| ())
                        }
                    };
                    match written {
                        Ok(()) => return Ok((material, true)),
                        Err(kube::Error::Api(status)) if status.code == 409 => {
                            tracing::debug!(secret = %self.secret_ref(), "another replica wrote the certificate first");
                            continue;
                        }
                        Err(e) => return Err(secret_error("writing", e)),
                    }
                }
                (Ok(()), None) => continue,
            }
        }
        Err(CertificateError::Contended {
            namespace: settings.namespace.clone(),
            name: settings.secret_name.clone(),
        })
    }

    fn new_secret(&self, material: &Material) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(self.settings.secret_name.clone()),
                namespace: Some(self.settings.namespace.clone()),
                labels: Some(
                    [(
                        kfp_core::reconcile::provider::MANAGED_BY_LABEL.to_string(),
                        FIELD_MANAGER.to_string(),
                    )]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            type_: Some(SECRET_TYPE.to_string()),
            data: Some(material.secret_data()),
            ..Secret::default()
        }
    }

    /// Patches every target whose caBundle differs from `bundle`; returns what it patched. Targets that do not
    /// exist are skipped (e.g. no MutatingWebhookConfiguration is installed).
    pub async fn patch_ca_bundles(&self, bundle: &[u8]) -> Result<Vec<String>, CertificateError> {
        let encoded = serde_json::to_value(ByteString(bundle.to_vec())).unwrap_or(Value::Null);
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let mut patched = Vec::new();
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        for name in &self.settings.targets.crds {
            let what = format!("CustomResourceDefinition/{name}");
            let fail = |source| CertificateError::CaBundle {
                what: what.clone(),
                source: Box::new(source),
            };
            let Some(crd) = crds.get_opt(name).await.map_err(fail)? else {
                tracing::debug!(%what, "not installed; no caBundle to patch");
                continue;
            };
            let conversion = crd.spec.conversion.as_ref();
            if conversion.map(|c| c.strategy.as_str()) != Some("Webhook") {
                continue;
            }
            let current = conversion
                .and_then(|c| c.webhook.as_ref())
                .and_then(|w| w.client_config.as_ref())
                .and_then(|c| c.ca_bundle.as_ref());
            if current.map(|b| b.0.as_slice()) == Some(bundle) {
                continue;
            }
            let patch = json!({"spec": {"conversion": {"webhook": {"clientConfig": {"caBundle": encoded}}}}});
            crds.patch(name, &params, &Patch::Merge(&patch))
                .await
                .map_err(fail)?;
            patched.push(what);
        }
        let validating: Api<ValidatingWebhookConfiguration> = Api::all(self.client.clone());
        for name in &self.settings.targets.validating {
            let webhooks = |c: &ValidatingWebhookConfiguration| {
                c.webhooks
                    .iter()
                    .flatten()
                    .map(|w| (w.name.clone(), w.client_config.ca_bundle.clone()))
                    .collect::<Vec<_>>()
            };
            if patch_webhooks(&validating, name, bundle, &encoded, &params, webhooks).await? {
                patched.push(format!("ValidatingWebhookConfiguration/{name}"));
            }
        }
        let mutating: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
        for name in &self.settings.targets.mutating {
            let webhooks = |c: &MutatingWebhookConfiguration| {
                c.webhooks
                    .iter()
                    .flatten()
                    .map(|w| (w.name.clone(), w.client_config.ca_bundle.clone()))
                    .collect::<Vec<_>>()
            };
            if patch_webhooks(&mutating, name, bundle, &encoded, &params, webhooks).await? {
                patched.push(format!("MutatingWebhookConfiguration/{name}"));
            }
        }
        Ok(patched)
    }
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    }
}

/// A metadata watch of the one cluster-scoped object `name`, as a stream of "something happened" (errors, such as
/// missing RBAC, are retried with backoff).
fn name_watch<K>(client: &Client, name: &str) -> futures::stream::BoxStream<'static, ()>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default,
{
    let api: Api<PartialObjectMeta<K>> = Api::all(client.clone());
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    watcher(api, config)
        .default_backoff()
        .filter_map(|event| async move {
            match event {
                Ok(_) => Some(()),
                Err(error) => {
                    tracing::debug!(%error, "watching a caBundle target failed; the watch retries");
                    None
                }
            }
        })
        .boxed()
}

/// JSON-patches the caBundle of each webhook of configuration `name` that differs from `bundle`, guarding each
/// index with a `test` of the webhook's name. Returns whether it patched.
async fn patch_webhooks<K>(
    api: &Api<K>,
    name: &str,
    bundle: &[u8],
    encoded: &Value,
    params: &PatchParams,
    webhooks: impl Fn(&K) -> Vec<(String, Option<ByteString>)>,
) -> Result<bool, CertificateError>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let what = format!("{}/{name}", K::kind(&K::DynamicType::default()));
    let fail = |source| CertificateError::CaBundle {
        what: what.clone(),
        source: Box::new(source),
    };
    let Some(configuration) = api.get_opt(name).await.map_err(fail)? else {
        tracing::debug!(%what, "not installed; no caBundle to patch");
        return Ok(false);
    };
    let mut operations = Vec::new();
    for (index, (webhook, current)) in webhooks(&configuration).into_iter().enumerate() {
        if current.as_ref().map(|b| b.0.as_slice()) == Some(bundle) {
            continue;
        }
        operations.push(json!({"op": "test", "path": format!("/webhooks/{index}/name"), "value": webhook}));
        operations.push(json!({"op": "add", "path": format!("/webhooks/{index}/clientConfig/caBundle"), "value": encoded}));
    }
    if operations.is_empty() {
        return Ok(false);
    }
    let patch: json_patch::Patch =
        serde_json::from_value(Value::Array(operations)).map_err(|e| CertificateError::CaBundle {
            what: what.clone(),
            source: Box::new(kube::Error::SerdeError(e)),
        })?;
    api.patch(name, params, &Patch::<()>::Json(patch))
        .await
        .map_err(fail)?;
    Ok(true)
}

// ---------------------------------------------------------------------------------------------------------------
// files mode
// ---------------------------------------------------------------------------------------------------------------

/// The `files` mode reloader: serves `<dir>/tls.crt` and `<dir>/tls.key`, looking at them every `period`.
pub struct Files {
    dir: PathBuf,
    serving: ServingCertificate,
    period: Duration,
}

impl Files {
    /// Serves the `tls.crt` and `tls.key` of `dir` through `serving`, reloading them when they change.
    pub fn new(dir: PathBuf, serving: ServingCertificate) -> Self {
        Self {
            dir,
            serving,
            period: Duration::from_secs(10),
        }
    }

    /// How often the files are read (default 10 s).
    pub fn with_period(mut self, period: Duration) -> Self {
        self.period = period;
        self
    }

    /// Reads the files and serves them if they changed; `Ok(true)` when a new certificate is served. A missing
    /// or broken pair leaves the previous certificate in place.
    pub fn load(&self) -> Result<bool, CertificateError> {
        let read = |name: &str| {
            let path = self.dir.join(name);
            std::fs::read(&path).map_err(|source| CertificateError::File {
                path: path.display().to_string(),
                source,
            })
        };
        let cert = read(CERT_KEY)?;
        let key = read(PRIVATE_KEY_KEY)?;
        Ok(self.serving.set_pem(&cert, &key).map_err(Box::new)?)
    }

    /// Loads the files every `period` until `shutdown`, logging changes and (once per distinct error) failures.
    pub async fn run(self, shutdown: Shutdown) {
        let mut last_error = None;
        loop {
            match self.load() {
                Ok(true) => {
                    tracing::info!(dir = %self.dir.display(), "serving the webhook certificate from files");
                    last_error = None;
                }
                Ok(false) => last_error = None,
                Err(error) => {
                    let text = error.to_string();
                    if last_error.as_ref() != Some(&text) {
                        tracing::warn!(error = %text, "cannot load the webhook certificate files; keeping the current one");
                        last_error = Some(text);
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.period) => {}
                () = shutdown.signalled() => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["svc.ns.svc".to_string(), "svc.ns.svc.cluster.local".to_string()]
    }

    #[test]
    fn generated_material_verifies_for_its_names_until_it_expires() {
        let now = SystemTime::now();
        let material = Material::generate(&names(), now, Duration::from_secs(3600), None).unwrap();
        material.check(&names(), now).unwrap();
        material.check(&names(), now + Duration::from_secs(3500)).unwrap();
        let expired = material
            .check(&names(), now + Duration::from_secs(3700))
            .unwrap_err();
        assert!(expired.contains("svc.ns.svc"), "{expired}");
        let other = material.check(&["other.ns.svc".to_string()], now).unwrap_err();
        assert!(other.contains("other.ns.svc"), "{other}");
    }

    #[test]
    fn a_rotated_bundle_keeps_the_previous_ca() {
        let now = SystemTime::now();
        let first = Material::generate(&names(), now, Duration::from_secs(3600), None).unwrap();
        let second =
            Material::generate(&names(), now, Duration::from_secs(3600), Some(&first.ca_pem)).unwrap();
        let third =
            Material::generate(&names(), now, Duration::from_secs(3600), Some(&second.ca_pem)).unwrap();
        assert_eq!(certificates_from_pem(second.ca_pem.as_bytes()).unwrap().len(), 2);
        assert_eq!(
            certificates_from_pem(third.ca_pem.as_bytes()).unwrap().len(),
            2,
            "only the previous CA is kept"
        );
        // A replica still serving the first certificate is trusted by the second bundle, not by the third.
        let first_under_second = Material {
            ca_pem: second.ca_pem.clone(),
            ..first.clone()
        };
        first_under_second.check(&names(), now).unwrap();
        let first_under_third = Material {
            ca_pem: third.ca_pem.clone(),
            ..first
        };
        assert!(first_under_third.check(&names(), now).is_err());
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let now = SystemTime::now();
        let a = Material::generate(&names(), now, Duration::from_secs(3600), None).unwrap();
        let b = Material::generate(&names(), now, Duration::from_secs(3600), None).unwrap();
        let mixed = Material {
            key_pem: b.key_pem,
            ..a
        };
        let error = mixed.check(&names(), now).unwrap_err();
        assert!(error.contains("does not fit"), "{error}");
    }

    #[test]
    fn files_are_served_when_they_change_and_a_broken_pair_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let serving = ServingCertificate::new();
        let files = Files::new(dir.path().to_path_buf(), serving.clone());
        let error = files.load().unwrap_err().to_string();
        assert!(error.contains("tls.crt"), "{error}");
        let now = SystemTime::now();
        let write = |m: &Material| {
            std::fs::write(dir.path().join(CERT_KEY), &m.cert_pem).unwrap();
            std::fs::write(dir.path().join(PRIVATE_KEY_KEY), &m.key_pem).unwrap();
        };
        let first = Material::generate(&names(), now, Duration::from_secs(3600), None).unwrap();
        write(&first);
        assert!(files.load().unwrap());
        assert!(!files.load().unwrap(), "unchanged files are not reloaded");
        let second = Material::generate(&names(), now, Duration::from_secs(3600), None).unwrap();
        write(&second);
        assert!(files.load().unwrap());
        assert_eq!(serving.certificate_pem().unwrap(), second.cert_pem.as_bytes());
        std::fs::write(dir.path().join(PRIVATE_KEY_KEY), "garbage").unwrap();
        assert!(files.load().is_err());
        assert_eq!(
            serving.certificate_pem().unwrap(),
            second.cert_pem.as_bytes(),
            "a broken pair keeps the certificate being served"
        );
    }
}
