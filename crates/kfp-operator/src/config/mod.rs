//! The operator's configuration (docs/configuration.md): one typed struct, loaded from a YAML file and the environment.
//!
//! Every key has a default here (the Go operator had none in code and relied on Helm); `docs/configuration.md`
//! lists them. Keys follow the Go operator's file layout (`system.*`, `spec.*`) so an existing configuration file
//! keeps working; this project's additions sit beside them.
//!
//! Here: the types and their defaults. Loading (file, then `KFP_OPERATOR_*` overrides) is `load`, the rules the
//! types alone cannot hold are `validate`, Go duration text is `duration`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use kfp_core::config::DefaultProviderValues;
use kfp_core::conversion::ConversionConfig;
use kfp_core::values::NamespacedName;
use serde::{Deserialize, Serialize};

use crate::telemetry::LogFormat;

mod duration;
mod load;
mod validate;

use duration::{duration_text, optional_duration_text};
pub use duration::{format_duration, parse_duration};
pub use load::{ConfigError, ENV_PREFIX};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct OperatorConfig {
    /// `system.*`: how the process runs.
    pub system: SystemConfig,
    /// `spec.*`: what the controllers do.
    pub spec: SpecConfig,
}

/// `system.*`: how the process runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct SystemConfig {
    /// `system.leaderElection.*`: hold a Lease while reconciling.
    pub leader_election: LeaderElectionConfig,
    /// Address of `/healthz` and `/readyz` (the Go operator's probe port 8081).
    pub health_address: String,
    /// Address of the Prometheus `/metrics` endpoint (the Go operator's metrics port 8080).
    pub metrics_address: String,
    /// How many objects of one kind are reconciled at once (per controller); one object is never reconciled twice
    /// at once whatever this is.
    pub concurrency: ControllerConcurrency,
    /// Watch and reconcile only this namespace (a namespace-scoped install); empty: all namespaces.
    pub watch_namespace: String,
    /// `system.logging.*`: format and level of the log lines.
    pub logging: LoggingConfig,
    /// `system.webhook.*`: the admission and conversion webhook server.
    pub webhook: WebhookConfig,
}

/// `system.logging.*`: log lines on stderr (see [`crate::telemetry::init_logging`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct LoggingConfig {
    /// `json` (one flat object per line) or `text`.
    pub format: LogFormat,
    /// A level (`error`, `warn`, `info`, `debug`, `trace`), a Go verbosity (`0` info, `1`-`2` debug, `3` trace),
    /// or `EnvFilter` directives (`info,kfp_operator=debug`); `RUST_LOG`, when set, wins.
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            level: "info".to_string(),
        }
    }
}

impl Default for SystemConfig {
    fn default() -> Self {
        Self {
            leader_election: LeaderElectionConfig::default(),
            health_address: "0.0.0.0:8081".to_string(),
            metrics_address: "0.0.0.0:8080".to_string(),
            concurrency: ControllerConcurrency::default(),
            watch_namespace: String::new(),
            logging: LoggingConfig::default(),
            webhook: WebhookConfig::default(),
        }
    }
}

/// `system.webhook.*`: the HTTPS server of the conversion and admission webhooks (`crate::webhook`). It runs on
/// every replica (admission must not depend on who leads); off by default so that local and test runs need no
/// certificate, on in the Helm chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// Serve the webhooks over HTTPS, on every replica (off by default so local and test runs need no certificate).
    pub enabled: bool,
    /// Where the HTTPS server listens (`IP:PORT`); the chart's Service sends port 443 here.
    pub address: String,
    /// The webhook Service in the operator's namespace: the serving certificate is issued for
    /// `<serviceName>.<namespace>.svc` and `<serviceName>.<namespace>.svc.cluster.local`.
    pub service_name: String,
    /// `files` mode: the folder holding `tls.crt` and `tls.key` (a mounted Secret, e.g. cert-manager's).
    pub cert_dir: String,
    /// `system.webhook.certificates.*`: who issues the serving certificate.
    pub certificates: WebhookCertificatesConfig,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            address: "0.0.0.0:9443".to_string(),
            service_name: "kfp-operator-webhook-service".to_string(),
            cert_dir: "/tmp/k8s-webhook-server/serving-certs".to_string(),
            certificates: WebhookCertificatesConfig::default(),
        }
    }
}

/// `system.webhook.certificates.*`: where the serving certificate comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct WebhookCertificatesConfig {
    /// `self` (the operator issues and rotates its own) or `files` (another issuer writes them to `certDir`).
    pub mode: CertificateMode,
    /// `self` mode: the Secret (type `kubernetes.io/tls`, keys `tls.crt`, `tls.key`, `ca.crt`) in the operator's
    /// namespace that holds the CA and the serving certificate, shared by all replicas.
    pub secret_name: String,
    /// `self` mode: how long a generated certificate (and its CA) is valid.
    #[serde(with = "duration_text")]
    pub validity: Duration,
    /// `self` mode: a certificate is replaced this long before it expires.
    #[serde(with = "duration_text")]
    pub rotate_before: Duration,
}

impl Default for WebhookCertificatesConfig {
    fn default() -> Self {
        Self {
            mode: CertificateMode::SelfManaged,
            secret_name: "kfp-operator-webhook-server-cert".to_string(),
            validity: Duration::from_secs(365 * 24 * 3600),
            rotate_before: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Who issues the webhook's serving certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CertificateMode {
    /// The operator keeps a CA and a serving certificate in a Secret, rotates them, and patches the `caBundle` of
    /// the CRDs and webhook configurations.
    #[default]
    #[serde(rename = "self")]
    SelfManaged,
    /// Another issuer (cert-manager) writes `tls.crt`/`tls.key` into `certDir` and injects the `caBundle`; the
    /// operator reloads the files when they change.
    #[serde(rename = "files")]
    Files,
}

/// `system.leaderElection.*`: a `coordination.k8s.io` Lease so that two replicas never write at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct LeaderElectionConfig {
    /// Hold the Lease before reconciling (the chart enables it).
    pub enabled: bool,
    /// The Lease name.
    pub id: String,
    /// The Lease namespace; empty: the operator's own namespace (`POD_NAMESPACE`), else `kfp-operator-system`.
    pub namespace: String,
    /// How long a Lease is valid without renewal.
    #[serde(with = "duration_text")]
    pub lease_duration: Duration,
    /// How often the leader renews.
    #[serde(with = "duration_text")]
    pub renew_period: Duration,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            id: "kfp-operator-lock".to_string(),
            namespace: String::new(),
            lease_duration: Duration::from_secs(15),
            renew_period: Duration::from_secs(5),
        }
    }
}

/// Concurrent reconciles per controller (`system.concurrency.<controller>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ControllerConcurrency {
    /// Pipelines reconciled at once.
    pub pipeline: u16,
    /// Runs reconciled at once.
    pub run: u16,
    /// RunSchedules reconciled at once.
    pub run_schedule: u16,
    /// Experiments reconciled at once.
    pub experiment: u16,
    /// RunConfigurations reconciled at once.
    pub run_configuration: u16,
    /// Providers reconciled at once.
    pub provider: u16,
}

impl Default for ControllerConcurrency {
    fn default() -> Self {
        Self {
            pipeline: 8,
            run: 16,
            run_schedule: 8,
            experiment: 4,
            run_configuration: 8,
            provider: 2,
        }
    }
}

/// Which executor carries out provider operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ExecutorKind {
    /// One Argo Workflow per operation (docs/executors.md, "Argo executor"), the production default.
    #[default]
    Argo,
    /// In-process provider calls (embedded use, the local demo).
    Direct,
}

/// `spec.*`: what the controllers do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct SpecConfig {
    /// `spec.defaultProviderValues.*`: the Deployment and Service of every provider service.
    pub default_provider_values: DefaultProviderValues,
    /// Image of the `tfx` framework given to v1alpha6/v1alpha5 Providers on conversion.
    pub default_tfx_image: String,
    /// Deprecated: the namespace of v1alpha6 provider references.
    pub workflow_namespace: String,
    /// Provider (`ns/name`) of v1alpha5 objects without the provider annotation.
    pub default_provider: String,
    /// Framework of v1alpha5 Pipelines without `tfxComponents`.
    pub default_framework: String,
    /// Serve the older API versions (v1alpha5, v1alpha6) through the conversion webhook.
    pub multiversion: bool,
    /// Finished Runs are deleted this long after completion; unset keeps them.
    #[serde(rename = "runCompletionTTL", with = "optional_duration_text")]
    pub run_completion_ttl: Option<Duration>,
    /// `spec.runCompletionFeed.*`: the feed, its authentication and the NATS publisher.
    pub run_completion_feed: RunCompletionFeedConfig,
    /// Which executor carries out provider operations: `argo` (default) or `direct`.
    pub executor: ExecutorKind,
    /// `spec.argo.*`: the Argo executor.
    pub argo: ArgoConfig,
    /// `spec.direct.*`: the direct executor and its compilers.
    pub direct: DirectConfig,
}

impl Default for SpecConfig {
    fn default() -> Self {
        Self {
            default_provider_values: default_provider_values(),
            default_tfx_image: String::new(),
            workflow_namespace: "kfp-operator-system".to_string(),
            default_provider: String::new(),
            default_framework: "tfx".to_string(),
            multiversion: true,
            run_completion_ttl: None,
            run_completion_feed: RunCompletionFeedConfig::default(),
            executor: ExecutorKind::Argo,
            argo: ArgoConfig::default(),
            direct: DirectConfig::default(),
        }
    }
}

impl SpecConfig {
    /// What the conversions need.
    pub fn conversion(&self) -> ConversionConfig {
        ConversionConfig {
            workflow_namespace: self.workflow_namespace.clone(),
            default_tfx_image: self.default_tfx_image.clone(),
            default_provider: self
                .default_provider
                .parse::<NamespacedName>()
                .unwrap_or_default(),
            default_framework: self.default_framework.clone(),
        }
    }
}

impl SpecConfig {
    /// `spec.defaultProviderValues` with the feed access of provider services (`OPERATORWEBHOOK` and the
    /// projected token) filled in from `spec.runCompletionFeed`: with the Argo executor only, since in direct mode
    /// the operator reads the providers' events itself.
    pub fn provider_values(&self, operator_namespace: &str) -> DefaultProviderValues {
        let mut values = self.default_provider_values.clone();
        if self.executor == ExecutorKind::Argo {
            let feed = &self.run_completion_feed;
            values.feed = Some(kfp_core::config::FeedAccess {
                webhook_url: feed.webhook_url(operator_namespace),
                token_audience: feed
                    .authentication
                    .token_review
                    .then(|| feed.authentication.audience.clone()),
            });
        }
        values
    }
}

/// `spec.runCompletionFeed.*`: where provider services post run-completion events (`crate::feed`), how they
/// authenticate, and where the operator publishes the events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct RunCompletionFeedConfig {
    /// The port provider services post events to (the Go chart's 8082).
    pub port: u16,
    /// The IP address the feed listens on (with `port`).
    pub address: String,
    /// Largest request body accepted; larger bodies are answered 413.
    pub max_body_bytes: u64,
    /// The Go operator's gRPC forwarding endpoints; not supported (the operator publishes to NATS itself), a
    /// non-empty list is logged as ignored so that an existing configuration still loads.
    pub endpoints: Vec<FeedEndpoint>,
    /// The URL provider Deployments get as `OPERATORWEBHOOK`; empty: the Go chart's Service,
    /// `http://kfp-operator-runcompletion-webhook-service.<operator namespace>:80/events`.
    pub service_url: String,
    /// `spec.runCompletionFeed.authentication.*`: who may post events.
    pub authentication: FeedAuthentication,
    /// `spec.runCompletionFeed.nats.*`: where recorded events are published.
    pub nats: NatsConfig,
}

impl Default for RunCompletionFeedConfig {
    fn default() -> Self {
        Self {
            port: 8082,
            address: "0.0.0.0".to_string(),
            max_body_bytes: 8 * 1024 * 1024,
            endpoints: Vec::new(),
            service_url: String::new(),
            authentication: FeedAuthentication::default(),
            nats: NatsConfig::default(),
        }
    }
}

impl RunCompletionFeedConfig {
    /// The socket address the feed binds.
    pub fn socket_address(&self) -> Result<SocketAddr, ConfigError> {
        let ip: std::net::IpAddr = self.address.parse().map_err(|_| ConfigError::Invalid {
            key: "spec.runCompletionFeed.address".to_string(),
            value: format!("{:?}", self.address),
            reason: "it must be an IP address such as 0.0.0.0 or ::".to_string(),
        })?;
        Ok(SocketAddr::new(ip, self.port))
    }

    /// The `OPERATORWEBHOOK` of provider Deployments: `serviceUrl`, else the Go chart's feed Service in
    /// `operator_namespace`.
    pub fn webhook_url(&self, operator_namespace: &str) -> String {
        if self.service_url.is_empty() {
            format!("http://kfp-operator-runcompletion-webhook-service.{operator_namespace}:80/events")
        } else {
            self.service_url.clone()
        }
    }
}

/// `spec.runCompletionFeed.authentication.*` (docs/run-completion-events.md, "Authentication"): how the feed knows a
/// request comes from a provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct FeedAuthentication {
    /// Check bearer tokens with a `TokenReview` (the provider service's projected ServiceAccount token).
    pub token_review: bool,
    /// The audience tokens must be issued for; provider Deployments get a projected token with it.
    pub audience: String,
    /// A file (mounted from a Secret) holding a static bearer token that is accepted too; empty: none. Read on
    /// every request, so a rotated Secret takes effect without a restart.
    pub static_token_file: String,
    /// Migration from the Go operator, whose provider services post without a token: accept a request that has
    /// no `Authorization` header when its event names an existing Provider. Off by default; the operator warns at
    /// start while it is on, and the chart then limits the feed port to provider pods with its NetworkPolicy.
    pub allow_unauthenticated: bool,
}

impl Default for FeedAuthentication {
    fn default() -> Self {
        Self {
            token_review: true,
            audience: "kfp-operator".to_string(),
            static_token_file: String::new(),
            allow_unauthenticated: false,
        }
    }
}

/// How published events are encoded (docs/run-completion-events.md, "The published event: NATS").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum EventFormat {
    /// CloudEvents 1.0, structured JSON.
    #[default]
    CloudEvents,
    /// The Go operator's `{"data": <event>}`.
    Legacy,
}

/// `url` (one or more comma-separated NATS URLs) with any `user:password@` or `token@` replaced by `***@`, for
/// logs and error messages.
pub fn redact_credentials(url: &str) -> String {
    url.split(',')
        .map(|server| {
            let server = server.trim();
            let (scheme, rest) = server.split_once("://").unwrap_or(("", server));
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            let masked = if host.len() < rest.len() {
                format!("***@{host}")
            } else {
                host.to_string()
            };
            if scheme.is_empty() {
                masked
            } else {
                format!("{scheme}://{masked}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `spec.runCompletionFeed.nats.*`: publishing run-completion events to NATS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct NatsConfig {
    /// The NATS server (`nats://host:4222`, several separated by commas; credentials as `nats://user:password@host`
    /// or `nats://token@host`); empty: events are not published.
    pub url: String,
    /// The subject events are published on (the Go trigger's default `events`).
    pub subject: String,
    /// CloudEvents 1.0 (docs/run-completion-events.md, "The published event: NATS") or the Go operator's `{"data":
    /// ...}` body.
    pub event_format: EventFormat,
    /// How long a publish may take (until the server has the message) before the feed answers 500.
    #[serde(with = "duration_text")]
    pub publish_timeout: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            subject: "events".to_string(),
            event_format: EventFormat::CloudEvents,
            publish_timeout: Duration::from_secs(5),
        }
    }
}

impl NatsConfig {
    /// Whether events are published.
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }
}

/// A gRPC endpoint the feed forwards events to (`host:port` + `path`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct FeedEndpoint {
    /// The gRPC server's host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The path appended to `host:port`.
    pub path: String,
}

/// `spec.argo.*`: the Argo executor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ArgoConfig {
    /// Prefix of the WorkflowTemplate names (`<prefix>create-compiled`, ...); the chart installs them unprefixed.
    pub workflow_template_prefix: String,
}

/// `spec.direct.*`: the direct executor (`docs/direct-executor.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct DirectConfig {
    /// Registry name (`stub`, `kfp`, `vai`, `http`, ...) of Providers without the
    /// `pipelines.kubeflow.org/provider-type` annotation; empty: such Providers cannot be used in direct mode.
    pub default_provider_type: String,
    /// How long one provider call may take before it counts as a transient failure (default `5m`, the Argo
    /// templates' step deadline).
    #[serde(with = "duration_text")]
    pub provider_timeout: Duration,
    /// Where pipelines are compiled: `local` (a subprocess per framework, for development) or `job` (a Kubernetes
    /// Job running the framework and pipeline images, as the Argo `compile` step does). Default `local`.
    pub compiler: CompilerKind,
    /// `local` compiler: framework name (compared ignoring case) to the command that compiles it, a path to a
    /// `compile.sh` that takes `--pipeline_config <file> --output_file <path>` (compilers/README.md, "The contract").
    /// The framework `stub` is built in (`compilers/stub/compile.sh`) unless listed here.
    pub compilers: BTreeMap<String, String>,
    /// How long one compilation may take: the local subprocess is killed, the Job gets it as
    /// `activeDeadlineSeconds` (default `30m`, the Argo compile step deadline).
    #[serde(with = "duration_text")]
    pub compile_timeout: Duration,
    /// `job` compiler: the namespace of the compile Jobs; empty: the operator's namespace (`POD_NAMESPACE`), else
    /// `kfp-operator-system`.
    pub compile_namespace: String,
    /// `job` compiler: the ServiceAccount of the compile pods; empty: the namespace's default.
    pub compile_service_account: String,
    /// `job` compiler: finished Jobs that the operator could not delete itself are removed this long after they
    /// finish (`ttlSecondsAfterFinished`, default `1h`).
    #[serde(with = "duration_text")]
    pub compile_job_ttl: Duration,
}

impl Default for DirectConfig {
    fn default() -> Self {
        Self {
            default_provider_type: String::new(),
            provider_timeout: Duration::from_secs(5 * 60),
            compiler: CompilerKind::Local,
            compilers: BTreeMap::new(),
            compile_timeout: Duration::from_secs(30 * 60),
            compile_namespace: String::new(),
            compile_service_account: String::new(),
            compile_job_ttl: Duration::from_secs(3600),
        }
    }
}

/// Which [`Compiler`](kfp_core::compiler::Compiler) the direct executor uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum CompilerKind {
    /// A local subprocess per framework (`crate::compiler::LocalCompiler`).
    #[default]
    Local,
    /// A Kubernetes Job per compilation (`crate::compiler::JobCompiler`).
    Job,
}

impl LeaderElectionConfig {
    /// The namespace of the Lease: `namespace`, else the operator's own (`POD_NAMESPACE`, passed in), else
    /// `kfp-operator-system`.
    pub fn lease_namespace(&self, pod_namespace: Option<&str>) -> String {
        if !self.namespace.is_empty() {
            return self.namespace.clone();
        }
        match pod_namespace {
            Some(ns) if !ns.is_empty() => ns.to_string(),
            _ => crate::environment::DEFAULT_NAMESPACE.to_string(),
        }
    }
}

/// The chart's provider defaults (docs/configuration.md; docs/controllers.md, "Providers"): container
/// `provider-service`, ports 8080 and 8081, one replica.
pub fn default_provider_values() -> DefaultProviderValues {
    DefaultProviderValues {
        labels: BTreeMap::new(),
        replicas: 1,
        pod_template_spec: PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "provider-service".to_string(),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
        },
        service_container_name: "provider-service".to_string(),
        service_port: 8080,
        metrics_port: 8081,
        feed: None,
    }
}

#[cfg(test)]
mod tests;
