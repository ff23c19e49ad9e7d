//! The operator's configuration (SPEC 7): one typed struct, loaded from a YAML file and the environment.
//!
//! Every key has a default here (the Go operator had none in code and relied on Helm); `docs/configuration.md`
//! lists them. Keys follow the Go operator's file layout (`system.*`, `spec.*`) so an existing configuration file
//! keeps working; this project's additions sit beside them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use kfp_core::config::DefaultProviderValues;
use kfp_core::conversion::ConversionConfig;
use kfp_core::values::NamespacedName;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::telemetry::{LogFormat, log_filter};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OperatorConfig {
    /// `system.*`: how the process runs.
    pub system: SystemConfig,
    /// `spec.*`: what the controllers do.
    pub spec: SpecConfig,
}

/// `system.*`: how the process runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
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
pub enum ExecutorKind {
    /// One Argo Workflow per operation (SPEC 4), the production default.
    #[default]
    Argo,
    /// In-process provider calls (embedded use, the local demo).
    Direct,
}

/// `spec.*`: what the controllers do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
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

/// The operator's own namespace: `POD_NAMESPACE` (the chart sets it from the downward API), else
/// `kfp-operator-system`.
pub fn operator_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "kfp-operator-system".to_string())
}

/// `spec.runCompletionFeed.*`: where provider services post run-completion events (`crate::feed`), how they
/// authenticate, and where the operator publishes the events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
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

/// `spec.runCompletionFeed.authentication.*` (SPEC 12.12): how the feed knows a request comes from a provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
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

/// How published events are encoded (SPEC 12.18).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventFormat {
    /// CloudEvents 1.0, structured JSON.
    #[default]
    CloudEvents,
    /// The Go operator's `{"data": <event>}`.
    Legacy,
}

/// `spec.runCompletionFeed.nats.*`: publishing run-completion events to NATS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NatsConfig {
    /// The NATS server (`nats://host:4222`, several separated by commas; credentials as `nats://user:password@host`
    /// or `nats://token@host`); empty: events are not published.
    pub url: String,
    /// The subject events are published on (the Go trigger's default `events`).
    pub subject: String,
    /// CloudEvents 1.0 (Decision 18) or the Go operator's `{"data": ...}` body.
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
pub struct ArgoConfig {
    /// Prefix of the WorkflowTemplate names (`<prefix>create-compiled`, ...); the chart installs them unprefixed.
    pub workflow_template_prefix: String,
}

/// `spec.direct.*`: the direct executor (`docs/direct-executor.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
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
    /// `compile.sh` that takes `--pipeline_config <file> --output_file <path>` (SPEC 8). The framework `stub` is
    /// built in (`compilers/stub/compile.sh`) unless listed here.
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
pub enum CompilerKind {
    /// A local subprocess per framework (`crate::compiler::LocalCompiler`).
    #[default]
    Local,
    /// A Kubernetes Job per compilation (`crate::compiler::JobCompiler`).
    Job,
}

// ---------------------------------------------------------------------------------------------------------------
// Loading: file, then environment overrides, then validation
// ---------------------------------------------------------------------------------------------------------------

/// Environment variables that start with this prefix and continue with a top-level key (`SYSTEM_`, `SPEC_`)
/// override configuration keys: `KFP_OPERATOR_SPEC_RUNCOMPLETIONTTL=30s` sets `spec.runCompletionTTL`.
pub const ENV_PREFIX: &str = "KFP_OPERATOR_";

/// Why the configuration could not be loaded; every message names the file, variable or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The file is not valid YAML for this configuration.
    #[error("the configuration file {} is invalid: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the line and column where it can tell.
        message: String,
    },
    /// The file has a key the configuration does not know (a misspelt key would otherwise be ignored).
    #[error(
        "the configuration file {} has the unknown key {key:?}; the keys are listed in docs/configuration.md",
        path.display()
    )]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The unknown key's path, e.g. `spec.runCompletionTtl`.
        key: String,
    },
    /// A `KFP_OPERATOR_*` environment variable names no key.
    #[error(
        "the environment variable {variable} names no configuration key; overrides are KFP_OPERATOR_ followed by \
         the key path in upper case with '_' between its parts, e.g. KFP_OPERATOR_SPEC_RUNCOMPLETIONTTL for \
         spec.runCompletionTTL (see docs/configuration.md)"
    )]
    UnknownOverride {
        /// The variable.
        variable: String,
    },
    /// A `KFP_OPERATOR_*` environment variable's value does not fit its key.
    #[error("the environment variable {variable}={value:?} is not a valid value of {key}: {message}")]
    InvalidOverride {
        /// The variable.
        variable: String,
        /// The key it overrides.
        key: String,
        /// Its value.
        value: String,
        /// Why the value does not fit.
        message: String,
    },
    /// The configuration loaded but a value cannot be used.
    #[error("invalid configuration: {key} is {value}, but {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// Its value.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The configuration could not be converted for the environment overrides.
    #[error("cannot represent the configuration as JSON: {0}")]
    Json(String),
}

impl OperatorConfig {
    /// Loads the configuration: the YAML file at `path` (none: all defaults), then the `KFP_OPERATOR_*` overrides
    /// found in `env` (pass `std::env::vars()`), then [`validate`](Self::validate)s the result.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<OperatorConfig, ConfigError> {
        let config = match path {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        let config = config.with_env_overrides(env)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a YAML configuration file (not validated).
    pub fn from_file(path: &Path) -> Result<OperatorConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(&text, path)
    }

    /// Parses YAML configuration text; `origin` names it in errors. The text is laid over the defaults key by
    /// key (a key set to null keeps its default; lists are replaced whole), so a file names only what it
    /// changes. Keys the configuration does not have are refused (a misspelt key would otherwise be silently
    /// ignored).
    pub fn from_yaml(text: &str, origin: &Path) -> Result<OperatorConfig, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: origin.to_path_buf(),
            message,
        };
        let raw: Value = serde_saphyr::from_str(text).map_err(|e| parse_error(e.to_string()))?;
        let mut merged =
            serde_json::to_value(Self::default()).map_err(|e| ConfigError::Json(e.to_string()))?;
        lay_over(&mut merged, &raw);
        let config: OperatorConfig = match serde_json::from_value(merged) {
            Ok(config) => config,
            Err(json_error) => {
                // The YAML parser says where the error is; but it does not know the defaults, so its complaints
                // about missing keys are not the problem.
                let message = match serde_saphyr::from_str::<OperatorConfig>(text) {
                    Err(e) if !e.to_string().contains("missing field") => e.to_string(),
                    _ => json_error.to_string(),
                };
                return Err(parse_error(message));
            }
        };
        let known = serde_json::to_value(&config).map_err(|e| ConfigError::Json(e.to_string()))?;
        if let Some(key) = first_unknown_key(&raw, &known, "") {
            return Err(ConfigError::UnknownKey {
                path: origin.to_path_buf(),
                key,
            });
        }
        Ok(config)
    }

    /// Applies the `KFP_OPERATOR_<PATH>` variables of `env` (see [`ENV_PREFIX`]). A variable's path is matched
    /// case-insensitively against the camelCase keys, one `_`-separated part per key (a number indexes a list).
    /// The value is read as a YAML scalar or flow collection (`true`, `8080`, `[a, b]`, `{team: ml}`), except that
    /// keys holding text (and unset optional keys) take it verbatim. Variables whose first part is not a
    /// top-level key (`SYSTEM`, `SPEC`) are ignored: Kubernetes service links such as
    /// `KFP_OPERATOR_SERVICE_HOST` share the prefix.
    pub fn with_env_overrides(
        self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<OperatorConfig, ConfigError> {
        let mut value = serde_json::to_value(&self).map_err(|e| ConfigError::Json(e.to_string()))?;
        let top_level: Vec<String> = value
            .as_object()
            .map(|object| object.keys().map(|k| k.to_ascii_uppercase()).collect())
            .unwrap_or_default();
        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(variable, _)| {
                variable
                    .strip_prefix(ENV_PREFIX)
                    .and_then(|path| path.split('_').next())
                    .is_some_and(|first| top_level.contains(&first.to_ascii_uppercase()))
            })
            .collect();
        if overrides.is_empty() {
            return Ok(self);
        }
        overrides.sort();
        for (variable, text) in overrides {
            let path = variable.get(ENV_PREFIX.len()..).unwrap_or_default();
            let segments: Vec<&str> = path.split('_').collect();
            let (key, slot) = locate(&mut value, &segments).ok_or_else(|| ConfigError::UnknownOverride {
                variable: variable.clone(),
            })?;
            *slot = override_value(slot, &text);
            // Checked one variable at a time, so that an error names the variable at fault.
            serde_json::from_value::<OperatorConfig>(value.clone()).map_err(|e| {
                ConfigError::InvalidOverride {
                    variable: variable.clone(),
                    key,
                    value: text.clone(),
                    message: e.to_string(),
                }
            })?;
        }
        serde_json::from_value(value).map_err(|e| ConfigError::Json(e.to_string()))
    }

    /// Checks what the types alone do not: ports in range, leader-election timing, addresses, names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let system = &self.system;
        for (key, address) in [
            ("system.healthAddress", &system.health_address),
            ("system.metricsAddress", &system.metrics_address),
        ] {
            if address.parse::<SocketAddr>().is_err() {
                return invalid(
                    key,
                    format!("{address:?}"),
                    "it must be IP:PORT, e.g. 0.0.0.0:8080",
                );
            }
        }
        if let Err(e) = log_filter(&system.logging.level, None) {
            return invalid(
                "system.logging.level",
                format!("{:?}", system.logging.level),
                &e.to_string(),
            );
        }
        system.webhook.validate()?;
        let election = &system.leader_election;
        if election.id.is_empty() {
            return invalid("system.leaderElection.id", "empty", "the Lease needs a name");
        }
        if election.lease_duration < Duration::from_secs(1) {
            return invalid(
                "system.leaderElection.leaseDuration",
                format_duration(election.lease_duration),
                "a Lease lasts at least 1s (it is stored in whole seconds)",
            );
        }
        if election.renew_period.is_zero() || election.renew_period >= election.lease_duration {
            return invalid(
                "system.leaderElection.renewPeriod",
                format_duration(election.renew_period),
                &format!(
                    "it must be above zero and below system.leaderElection.leaseDuration ({}), so that the leader \
                     renews before its Lease can expire",
                    format_duration(election.lease_duration)
                ),
            );
        }
        let concurrency = &system.concurrency;
        for (controller, value) in [
            ("pipeline", concurrency.pipeline),
            ("run", concurrency.run),
            ("runSchedule", concurrency.run_schedule),
            ("experiment", concurrency.experiment),
            ("runConfiguration", concurrency.run_configuration),
            ("provider", concurrency.provider),
        ] {
            if value == 0 {
                return invalid(
                    &format!("system.concurrency.{controller}"),
                    "0",
                    "at least one reconcile must be allowed",
                );
            }
        }

        let spec = &self.spec;
        let values = &spec.default_provider_values;
        for (key, port) in [
            ("spec.defaultProviderValues.servicePort", values.service_port),
            ("spec.defaultProviderValues.metricsPort", values.metrics_port),
        ] {
            if !(1..=65535).contains(&port) {
                return invalid(key, port.to_string(), "a port is between 1 and 65535");
            }
        }
        if values.service_port == values.metrics_port {
            return invalid(
                "spec.defaultProviderValues.metricsPort",
                values.metrics_port.to_string(),
                "it must differ from spec.defaultProviderValues.servicePort",
            );
        }
        if values.replicas < 0 {
            return invalid(
                "spec.defaultProviderValues.replicas",
                values.replicas.to_string(),
                "replicas cannot be negative",
            );
        }
        if values.service_container_name.is_empty() {
            return invalid(
                "spec.defaultProviderValues.serviceContainerName",
                "empty",
                "it names the container that runs the provider service",
            );
        }
        let has_service_container = values.pod_template_spec.spec.as_ref().is_some_and(|pod| {
            pod.containers
                .iter()
                .any(|c| c.name == values.service_container_name)
        });
        if !has_service_container {
            return invalid(
                "spec.defaultProviderValues.podTemplateSpec.spec.containers",
                "without that container",
                &format!(
                    "it must contain the container {:?} (spec.defaultProviderValues.serviceContainerName)",
                    values.service_container_name
                ),
            );
        }
        if !spec.default_provider.is_empty() {
            match spec.default_provider.parse::<NamespacedName>() {
                Ok(name) if !name.namespace.is_empty() => {}
                Ok(_) => {
                    return invalid(
                        "spec.defaultProvider",
                        format!("{:?}", spec.default_provider),
                        "it must be NAMESPACE/NAME",
                    );
                }
                Err(e) => {
                    return invalid(
                        "spec.defaultProvider",
                        format!("{:?}", spec.default_provider),
                        &e.to_string(),
                    );
                }
            }
        }
        let feed = &spec.run_completion_feed;
        if feed.port == 0 {
            return invalid(
                "spec.runCompletionFeed.port",
                "0",
                "a port is between 1 and 65535",
            );
        }
        validate_feed(feed)?;
        for (index, endpoint) in feed.endpoints.iter().enumerate() {
            if endpoint.host.is_empty() {
                return invalid(
                    &format!("spec.runCompletionFeed.endpoints[{index}].host"),
                    "empty",
                    "an endpoint needs a host",
                );
            }
            if endpoint.port == 0 {
                return invalid(
                    &format!("spec.runCompletionFeed.endpoints[{index}].port"),
                    "0",
                    "a port is between 1 and 65535",
                );
            }
        }
        Ok(())
    }
}

impl WebhookConfig {
    /// `system.webhook.*` rules: an `IP:PORT` address, a Service name that is a DNS label, a Secret name, and a
    /// validity longer than `rotateBefore` (else every certificate would be replaced as soon as it is made).
    fn validate(&self) -> Result<(), ConfigError> {
        if self.address.parse::<SocketAddr>().is_err() {
            return invalid(
                "system.webhook.address",
                format!("{:?}", self.address),
                "it must be IP:PORT, e.g. 0.0.0.0:9443",
            );
        }
        let dns_label = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !s.starts_with('-')
                && !s.ends_with('-')
        };
        if !dns_label(&self.service_name) {
            return invalid(
                "system.webhook.serviceName",
                format!("{:?}", self.service_name),
                "it must be a Service name (a DNS label: lower-case letters, digits and '-')",
            );
        }
        let certificates = &self.certificates;
        if certificates.secret_name.is_empty() {
            return invalid(
                "system.webhook.certificates.secretName",
                "empty",
                "it names the Secret that holds the serving certificate",
            );
        }
        if certificates.rotate_before.is_zero() || certificates.rotate_before >= certificates.validity {
            return invalid(
                "system.webhook.certificates.rotateBefore",
                format_duration(certificates.rotate_before),
                &format!(
                    "it must be above zero and below system.webhook.certificates.validity ({})",
                    format_duration(certificates.validity)
                ),
            );
        }
        if self.enabled && certificates.mode == CertificateMode::Files && self.cert_dir.is_empty() {
            return invalid(
                "system.webhook.certDir",
                "empty",
                "files mode reads tls.crt and tls.key from this folder",
            );
        }
        Ok(())
    }
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
            _ => "kfp-operator-system".to_string(),
        }
    }
}

/// The feed's own rules: address, body limit, an authentication method, NATS settings.
fn validate_feed(feed: &RunCompletionFeedConfig) -> Result<(), ConfigError> {
    feed.socket_address()?;
    if feed.max_body_bytes < 1024 {
        return invalid(
            "spec.runCompletionFeed.maxBodyBytes",
            feed.max_body_bytes.to_string(),
            "it must be at least 1024: events carry every output artifact of a run",
        );
    }
    let auth = &feed.authentication;
    if !auth.token_review && auth.static_token_file.is_empty() && !auth.allow_unauthenticated {
        return invalid(
            "spec.runCompletionFeed.authentication.tokenReview",
            "false",
            "the feed then accepts no one: set spec.runCompletionFeed.authentication.staticTokenFile too \
             (or allowUnauthenticated while migrating from the Go operator)",
        );
    }
    if auth.token_review && auth.audience.trim().is_empty() {
        return invalid(
            "spec.runCompletionFeed.authentication.audience",
            "empty",
            "TokenReview needs the audience provider tokens are issued for",
        );
    }
    let url = feed.service_url.as_str();
    if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
        return invalid(
            "spec.runCompletionFeed.serviceUrl",
            format!("{:?}", feed.service_url),
            "it must be an http:// or https:// URL",
        );
    }
    let nats = &feed.nats;
    if nats.enabled() {
        for server in nats.url.split(',') {
            if let Err(e) = server.trim().parse::<async_nats::ServerAddr>() {
                return invalid(
                    "spec.runCompletionFeed.nats.url",
                    format!("{:?}", crate::feed::nats::redact_credentials(server)),
                    &format!("it is not a NATS server address ({e}); use nats://host:4222"),
                );
            }
        }
        let subject = nats.subject.as_str();
        let valid_subject = !subject.is_empty()
            && !subject.contains([' ', '\t', '*', '>'])
            && subject.split('.').all(|token| !token.is_empty());
        if !valid_subject {
            return invalid(
                "spec.runCompletionFeed.nats.subject",
                format!("{subject:?}"),
                "it must be a NATS subject without spaces or wildcards, e.g. events",
            );
        }
        if nats.publish_timeout.is_zero() {
            return invalid(
                "spec.runCompletionFeed.nats.publishTimeout",
                "0s",
                "a publish needs time to reach the server",
            );
        }
    }
    Ok(())
}

fn invalid(key: &str, value: impl Into<String>, reason: &str) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid {
        key: key.to_string(),
        value: value.into(),
        reason: reason.to_string(),
    })
}

/// Lays `layer` over `base`: objects merge key by key, null keeps the base, anything else replaces it.
fn lay_over(base: &mut Value, layer: &Value) {
    match (base, layer) {
        (_, Value::Null) => {}
        (Value::Object(base), Value::Object(layer)) => {
            for (key, value) in layer {
                match base.get_mut(key) {
                    Some(slot) => lay_over(slot, value),
                    None if value.is_null() => {}
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, layer) => *base = layer.clone(),
    }
}

/// The dotted path of the first key of `raw` (the file as written) that the parsed configuration `known` does
/// not have; keys set to null are ignored.
fn first_unknown_key(raw: &Value, known: &Value, prefix: &str) -> Option<String> {
    let (Value::Object(raw), Value::Object(known)) = (raw, known) else {
        return None;
    };
    raw.iter().find_map(|(key, raw_value)| {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match known.get(key) {
            None if raw_value.is_null() => None,
            None => Some(path),
            Some(known_value) => first_unknown_key(raw_value, known_value, &path),
        }
    })
}

/// Finds the value at `segments` (case-insensitive keys, numeric list indexes); returns its dotted key path.
fn locate<'v>(value: &'v mut Value, segments: &[&str]) -> Option<(String, &'v mut Value)> {
    let mut current = value;
    let mut path = String::new();
    for segment in segments {
        current = match current {
            Value::Object(object) => {
                let key = object.keys().find(|k| k.eq_ignore_ascii_case(segment))?.clone();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key);
                object.get_mut(&key)?
            }
            Value::Array(items) => {
                let index: usize = segment.parse().ok()?;
                path.push_str(&format!("[{index}]"));
                items.get_mut(index)?
            }
            _ => return None,
        };
    }
    if path.is_empty() {
        None
    } else {
        Some((path, current))
    }
}

/// The JSON value an override's text stands for, given the value it replaces.
fn override_value(existing: &Value, text: &str) -> Value {
    let parsed = serde_saphyr::from_str::<Value>(text).ok();
    match (existing, parsed) {
        (Value::String(_), _) => Value::String(text.to_string()),
        (Value::Null, Some(parsed @ (Value::Array(_) | Value::Object(_)))) => parsed,
        (Value::Null, _) => Value::String(text.to_string()),
        (_, Some(parsed)) => parsed,
        _ => Value::String(text.to_string()),
    }
}

/// The chart's provider defaults (SPEC 7): container `provider-service`, ports 8080 and 8081, one replica.
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

/// Parses a Go `time.Duration` string (`1h30m`, `90s`, `500ms`, `2h`); a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".to_string());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("duration {text:?} has a number without a unit (h, m, s, ms)"))?;
        let (number, tail) = rest.split_at(number_end);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("duration {text:?} has no number before its unit"))?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let seconds = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            other => {
                return Err(format!(
                    "duration {text:?} has unknown unit {other:?} (use h, m, s, ms)"
                ));
            }
        };
        total += Duration::from_secs_f64(value * seconds);
        rest = tail;
    }
    Ok(total)
}

/// Formats a duration as Go would parse it back (`90s`, `1500ms`).
pub fn format_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

mod duration_text {
    use super::*;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

mod optional_duration_text {
    use super::*;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        match text.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => parse_duration(text).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every dotted key path of a serialized configuration, objects descended except below `opaque` paths (maps and
    /// Kubernetes types, documented as a whole).
    fn key_paths(value: &Value, opaque: &[&str]) -> Vec<String> {
        fn walk(
            value: &serde_json::Map<String, Value>,
            prefix: &str,
            opaque: &[&str],
            out: &mut Vec<String>,
        ) {
            for (key, child) in value {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                out.push(path.clone());
                if let Value::Object(child) = child
                    && !opaque.contains(&path.as_str())
                {
                    walk(child, &path, opaque, out);
                }
            }
        }
        let mut out = Vec::new();
        if let Value::Object(object) = value {
            walk(object, "", opaque, &mut out);
        }
        out
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1500ms").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert!(parse_duration("3 days").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let config: OperatorConfig = serde_saphyr::from_str("{}").unwrap();
        assert_eq!(config, OperatorConfig::default());
        assert_eq!(config.spec.default_provider_values.service_port, 8080);
        assert_eq!(config.spec.run_completion_feed.port, 8082);
        assert_eq!(config.spec.executor, ExecutorKind::Argo);
        assert_eq!(config.spec.direct.provider_timeout, Duration::from_secs(300));
        assert_eq!(config.spec.direct.compiler, CompilerKind::Local);
    }

    #[test]
    fn direct_executor_keys_load() {
        let yaml = "
spec:
  executor: direct
  direct:
    defaultProviderType: stub
    providerTimeout: 90s
    compiler: job
    compilers: {tfx: /opt/tfx/compile.sh}
    compileTimeout: 10m
    compileNamespace: builds
    compileServiceAccount: compiler
    compileJobTtl: 5m
";
        let config: OperatorConfig = serde_saphyr::from_str(yaml).unwrap();
        let direct = config.spec.direct;
        assert_eq!(direct.default_provider_type, "stub");
        assert_eq!(direct.provider_timeout, Duration::from_secs(90));
        assert_eq!(direct.compiler, CompilerKind::Job);
        assert_eq!(direct.compilers["tfx"], "/opt/tfx/compile.sh");
        assert_eq!(direct.compile_timeout, Duration::from_secs(600));
        assert_eq!(direct.compile_namespace, "builds");
        assert_eq!(direct.compile_service_account, "compiler");
        assert_eq!(direct.compile_job_ttl, Duration::from_secs(300));
    }

    #[test]
    fn the_go_operator_file_layout_loads() {
        let yaml = "
system:
  leaderElection: {enabled: true, id: my-lock}
spec:
  runCompletionTTL: 30s
  workflowNamespace: kfp
  defaultProviderValues:
    replicas: 2
    serviceContainerName: provider-service
    servicePort: 8080
    metricsPort: 8081
  runCompletionFeed: {port: 8082, endpoints: [{host: trigger, port: 50051, path: /}]}
";
        let config: OperatorConfig = serde_saphyr::from_str(yaml).unwrap();
        assert!(config.system.leader_election.enabled);
        assert_eq!(config.system.leader_election.id, "my-lock");
        assert_eq!(config.spec.run_completion_ttl, Some(Duration::from_secs(30)));
        assert_eq!(config.spec.default_provider_values.replicas, 2);
        assert_eq!(config.spec.run_completion_feed.endpoints[0].host, "trigger");
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_yaml(yaml: &str, vars: &[(&str, &str)]) -> Result<OperatorConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, yaml).unwrap();
        OperatorConfig::load(Some(&path), env(vars))
    }

    #[test]
    fn loading_nothing_gives_the_defaults() {
        assert_eq!(
            OperatorConfig::load(None, env(&[])).unwrap(),
            OperatorConfig::default()
        );
        assert_eq!(load_yaml("", &[]).unwrap(), OperatorConfig::default());
        assert_eq!(
            load_yaml("# only a comment\n", &[]).unwrap(),
            OperatorConfig::default()
        );
    }

    #[test]
    fn a_file_names_only_what_it_changes() {
        let config = load_yaml("spec:\n  defaultProviderValues:\n    replicas: 2\n", &[]).unwrap();
        assert_eq!(config.spec.default_provider_values.replicas, 2);
        assert_eq!(config.spec.default_provider_values.service_port, 8080);
        assert_eq!(
            config.spec.default_provider_values.service_container_name,
            "provider-service"
        );
        let config = load_yaml("system:\n  leaderElection: null\n", &[]).unwrap();
        assert_eq!(config, OperatorConfig::default(), "null keeps the default");
    }

    #[test]
    fn a_type_error_after_a_partial_section_is_still_named() {
        let yaml = "spec:\n  defaultProviderValues: {replicas: 2}\n  runCompletionFeed: {port: lots}\n";
        let message = load_yaml(yaml, &[]).unwrap_err().to_string();
        assert!(message.contains("lots") || message.contains("u16"), "{message}");
        assert!(!message.contains("missing field"), "{message}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = OperatorConfig::load(Some(Path::new("/nonexistent/kfp.yaml")), env(&[])).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }));
        assert!(error.to_string().contains("/nonexistent/kfp.yaml"), "{error}");
    }

    #[test]
    fn a_type_error_names_the_file_and_the_line() {
        let error = load_yaml(
            "spec:\n  multiversion: true\n  runCompletionFeed:\n    port: lots\n",
            &[],
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, ConfigError::Parse { .. }), "{message}");
        assert!(message.contains("config.yaml"), "{message}");
        assert!(message.contains('4'), "the line: {message}");
    }

    #[test]
    fn an_unknown_key_in_the_file_is_named() {
        let error = load_yaml("spec:\n  runCompletionTtl: 30s\n", &[]).unwrap_err();
        assert!(
            matches!(&error, ConfigError::UnknownKey { key, .. } if key == "spec.runCompletionTtl"),
            "{error}"
        );
        assert!(error.to_string().contains("config.yaml"), "{error}");
        let error = load_yaml(
            "spec:\n  defaultProviderValues:\n    podTemplateSpec:\n      spec:\n        containerz: []\n",
            &[],
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("spec.defaultProviderValues.podTemplateSpec.spec.containerz"),
            "{error}"
        );
        // Null values and map entries are fine.
        let config = load_yaml(
            "spec:\n  runCompletionTTL: null\n  defaultProviderValues:\n    labels: {team: ml}\n",
            &[],
        )
        .unwrap();
        assert_eq!(config.spec.default_provider_values.labels["team"], "ml");
    }

    #[test]
    fn environment_overrides_set_keys_case_insensitively() {
        let config = load_yaml(
            "spec:\n  runCompletionTTL: 1h\n",
            &[
                ("KFP_OPERATOR_SPEC_RUNCOMPLETIONTTL", "30s"),
                ("KFP_OPERATOR_SYSTEM_LEADERELECTION_ENABLED", "true"),
                ("KFP_OPERATOR_SPEC_EXECUTOR", "direct"),
                ("KFP_OPERATOR_system_concurrency_RUN", "3"),
                ("KFP_OPERATOR_SPEC_DEFAULTTFXIMAGE", "123"),
                ("KFP_OPERATOR_SPEC_DEFAULTPROVIDERVALUES_LABELS", "{team: ml}"),
                (
                    "KFP_OPERATOR_SPEC_RUNCOMPLETIONFEED_ENDPOINTS",
                    r#"[{"host": "trigger", "port": 50051}]"#,
                ),
                ("KFP_OPERATOR_SPEC_DIRECT_DEFAULTPROVIDERTYPE", "stub"),
                ("HOME", "/root"),
            ],
        )
        .unwrap();
        assert_eq!(
            config.spec.run_completion_ttl,
            Some(Duration::from_secs(30)),
            "env wins over the file"
        );
        assert!(config.system.leader_election.enabled);
        assert_eq!(config.spec.executor, ExecutorKind::Direct);
        assert_eq!(config.system.concurrency.run, 3);
        assert_eq!(
            config.spec.default_tfx_image, "123",
            "text keys take the value verbatim"
        );
        assert_eq!(config.spec.default_provider_values.labels["team"], "ml");
        assert_eq!(config.spec.run_completion_feed.endpoints[0].port, 50051);
        assert_eq!(config.spec.direct.default_provider_type, "stub");
    }

    #[test]
    fn overrides_index_lists_and_set_unset_optional_keys() {
        let config = load_yaml(
            "spec:\n  runCompletionFeed: {endpoints: [{host: a, port: 1}, {host: b, port: 2}]}\n",
            &[
                ("KFP_OPERATOR_SPEC_RUNCOMPLETIONFEED_ENDPOINTS_1_PORT", "50052"),
                ("KFP_OPERATOR_SPEC_RUNCOMPLETIONTTL", "45"),
            ],
        )
        .unwrap();
        assert_eq!(config.spec.run_completion_feed.endpoints[1].port, 50052);
        assert_eq!(config.spec.run_completion_ttl, Some(Duration::from_secs(45)));
        let config = load_yaml(
            "spec: {runCompletionTTL: 1h}\n",
            &[("KFP_OPERATOR_SPEC_RUNCOMPLETIONTTL", "")],
        )
        .unwrap();
        assert_eq!(config.spec.run_completion_ttl, None, "an empty value unsets it");
    }

    #[test]
    fn an_unknown_override_names_the_variable() {
        let error =
            OperatorConfig::load(None, env(&[("KFP_OPERATOR_SPEC_RUNCOMPLETIONTTLL", "30s")])).unwrap_err();
        assert!(
            matches!(&error, ConfigError::UnknownOverride { variable } if variable == "KFP_OPERATOR_SPEC_RUNCOMPLETIONTTLL"),
            "{error}"
        );
        assert!(
            error.to_string().contains("KFP_OPERATOR_SPEC_RUNCOMPLETIONTTLL"),
            "{error}"
        );
        for variable in [
            "KFP_OPERATOR_SPEC_",
            "KFP_OPERATOR_SPEC_RUNCOMPLETIONFEED_ENDPOINTS_0_HOST",
        ] {
            let error = OperatorConfig::load(None, env(&[(variable, "x")])).unwrap_err();
            assert!(
                matches!(error, ConfigError::UnknownOverride { .. }),
                "{variable}: {error}"
            );
        }
    }

    #[test]
    fn kubernetes_service_links_are_not_overrides() {
        let config = OperatorConfig::load(
            None,
            env(&[
                ("KFP_OPERATOR_SERVICE_HOST", "10.0.0.1"),
                ("KFP_OPERATOR_PORT", "tcp://10.0.0.1:8080"),
                ("KFP_OPERATOR_WEBHOOK_SERVICE_PORT_443_TCP", "tcp://10.0.0.2:443"),
            ]),
        )
        .unwrap();
        assert_eq!(config, OperatorConfig::default());
    }

    #[test]
    fn an_invalid_override_names_the_variable_key_and_value() {
        let error = OperatorConfig::load(
            None,
            env(&[
                ("KFP_OPERATOR_SYSTEM_CONCURRENCY_RUN", "many"),
                ("KFP_OPERATOR_SPEC_MULTIVERSION", "false"),
            ]),
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(&error, ConfigError::InvalidOverride { key, .. } if key == "system.concurrency.run"),
            "{message}"
        );
        assert!(
            message.contains("KFP_OPERATOR_SYSTEM_CONCURRENCY_RUN=\"many\""),
            "{message}"
        );
        let error =
            OperatorConfig::load(None, env(&[("KFP_OPERATOR_SPEC_EXECUTOR", "kubernetes")])).unwrap_err();
        assert!(error.to_string().contains("spec.executor"), "{error}");
        let error =
            OperatorConfig::load(None, env(&[("KFP_OPERATOR_SPEC_RUNCOMPLETIONTTL", "3 days")])).unwrap_err();
        assert!(error.to_string().contains("unknown unit"), "{error}");
    }

    fn invalid_key(yaml: &str) -> (String, String) {
        match load_yaml(yaml, &[]) {
            Err(ConfigError::Invalid { key, .. }) => (key, load_yaml(yaml, &[]).unwrap_err().to_string()),
            other => panic!("expected a validation error for {yaml:?}, got {other:?}"),
        }
    }

    #[test]
    fn ports_must_be_in_range() {
        for yaml in [
            "spec: {defaultProviderValues: {serviceContainerName: provider-service, servicePort: 0, metricsPort: 8081}}",
            "spec: {defaultProviderValues: {serviceContainerName: provider-service, servicePort: 70000, metricsPort: 8081}}",
        ] {
            let (key, message) = invalid_key(yaml);
            assert_eq!(key, "spec.defaultProviderValues.servicePort", "{message}");
            assert!(message.contains("between 1 and 65535"), "{message}");
        }
        let (key, _) = invalid_key(
            "spec: {defaultProviderValues: {serviceContainerName: provider-service, servicePort: 8080, metricsPort: 8080}}",
        );
        assert_eq!(key, "spec.defaultProviderValues.metricsPort");
        assert_eq!(
            invalid_key("spec: {runCompletionFeed: {port: 0}}").0,
            "spec.runCompletionFeed.port"
        );
        assert_eq!(
            invalid_key("spec: {runCompletionFeed: {endpoints: [{host: a, port: 0}]}}").0,
            "spec.runCompletionFeed.endpoints[0].port"
        );
        assert_eq!(
            invalid_key("system: {metricsAddress: ':8080'}").0,
            "system.metricsAddress"
        );
    }

    #[test]
    fn the_leader_renews_within_the_lease_duration() {
        let (key, message) = invalid_key("system: {leaderElection: {leaseDuration: 10s, renewPeriod: 10s}}");
        assert_eq!(key, "system.leaderElection.renewPeriod");
        assert!(
            message.contains("below system.leaderElection.leaseDuration (10s)"),
            "{message}"
        );
        assert_eq!(
            invalid_key("system: {leaderElection: {leaseDuration: 500ms, renewPeriod: 100ms}}").0,
            "system.leaderElection.leaseDuration"
        );
        assert_eq!(
            invalid_key("system: {leaderElection: {id: ''}}").0,
            "system.leaderElection.id"
        );
        assert!(
            load_yaml(
                "system: {leaderElection: {leaseDuration: 2s, renewPeriod: 500ms}}",
                &[]
            )
            .is_ok()
        );
    }

    #[test]
    fn the_default_provider_is_namespace_slash_name() {
        let config = load_yaml("spec: {defaultProvider: kfp/vai}", &[]).unwrap();
        assert_eq!(
            config.spec.conversion().default_provider,
            NamespacedName::new("kfp", "vai")
        );
        for value in ["vai", "a/b/c", "/vai"] {
            let (key, message) = invalid_key(&format!("spec: {{defaultProvider: '{value}'}}"));
            assert_eq!(key, "spec.defaultProvider", "{message}");
            assert!(message.contains(value), "{message}");
        }
    }

    #[test]
    fn other_rules_name_their_keys() {
        assert_eq!(
            invalid_key("system: {concurrency: {run: 0}}").0,
            "system.concurrency.run"
        );
        assert_eq!(
            invalid_key("system: {logging: {level: loud}}").0,
            "system.logging.level"
        );
        assert_eq!(invalid_key("spec: {defaultProviderValues: {serviceContainerName: svc, servicePort: 8080, metricsPort: 8081}}").0,
            "spec.defaultProviderValues.podTemplateSpec.spec.containers");
        assert_eq!(
            invalid_key("spec: {defaultProviderValues: {serviceContainerName: provider-service, servicePort: 8080, metricsPort: 8081, replicas: -1}}").0,
            "spec.defaultProviderValues.replicas"
        );
    }

    #[test]
    fn run_completion_feed_keys_load_and_are_checked() {
        let config = load_yaml(
            "spec:\n  runCompletionFeed:\n    address: 127.0.0.1\n    maxBodyBytes: 4096\n    serviceUrl: http://feed.ops:80/events\n    authentication: {tokenReview: false, staticTokenFile: /etc/feed/token}\n    nats: {url: 'nats://nats.nats:4222', subject: ml.events, eventFormat: legacy, publishTimeout: 2s}\n",
            &[],
        )
        .unwrap();
        let feed = &config.spec.run_completion_feed;
        assert_eq!(feed.socket_address().unwrap().to_string(), "127.0.0.1:8082");
        assert_eq!(feed.max_body_bytes, 4096);
        assert_eq!(feed.webhook_url("ops"), "http://feed.ops:80/events");
        assert!(!feed.authentication.token_review);
        assert_eq!(feed.nats.event_format, EventFormat::Legacy);
        assert_eq!(feed.nats.publish_timeout, Duration::from_secs(2));
        assert!(feed.nats.enabled());
        let defaults = RunCompletionFeedConfig::default();
        assert!(!defaults.nats.enabled(), "publishing is off by default");
        assert_eq!(
            defaults.webhook_url("kfp"),
            "http://kfp-operator-runcompletion-webhook-service.kfp:80/events"
        );
        for (yaml, key) in [
            (
                "spec: {runCompletionFeed: {address: 'localhost'}}",
                "spec.runCompletionFeed.address",
            ),
            (
                "spec: {runCompletionFeed: {maxBodyBytes: 10}}",
                "spec.runCompletionFeed.maxBodyBytes",
            ),
            (
                "spec: {runCompletionFeed: {authentication: {tokenReview: false}}}",
                "spec.runCompletionFeed.authentication.tokenReview",
            ),
            (
                "spec: {runCompletionFeed: {authentication: {audience: ''}}}",
                "spec.runCompletionFeed.authentication.audience",
            ),
            (
                "spec: {runCompletionFeed: {serviceUrl: 'feed:80'}}",
                "spec.runCompletionFeed.serviceUrl",
            ),
            (
                "spec: {runCompletionFeed: {nats: {url: 'nats://a b'}}}",
                "spec.runCompletionFeed.nats.url",
            ),
            (
                "spec: {runCompletionFeed: {nats: {url: 'nats://n:4222', subject: 'ev.*'}}}",
                "spec.runCompletionFeed.nats.subject",
            ),
            (
                "spec: {runCompletionFeed: {nats: {url: 'nats://n:4222', publishTimeout: 0s}}}",
                "spec.runCompletionFeed.nats.publishTimeout",
            ),
        ] {
            assert_eq!(invalid_key(yaml).0, key, "{yaml}");
        }
    }

    #[test]
    fn provider_deployments_reach_the_feed_with_the_argo_executor_only() {
        let mut spec = SpecConfig::default();
        let feed = spec.provider_values("ops").feed.unwrap();
        assert_eq!(
            feed.webhook_url,
            "http://kfp-operator-runcompletion-webhook-service.ops:80/events"
        );
        assert_eq!(feed.token_audience.as_deref(), Some("kfp-operator"));
        spec.run_completion_feed.authentication.token_review = false;
        assert_eq!(spec.provider_values("ops").feed.unwrap().token_audience, None);
        spec.executor = ExecutorKind::Direct;
        assert_eq!(spec.provider_values("ops").feed, None);
    }

    #[test]
    fn webhook_settings_are_checked_and_overridable() {
        assert_eq!(
            invalid_key("system: {webhook: {address: ':9443'}}").0,
            "system.webhook.address"
        );
        assert_eq!(
            invalid_key("system: {webhook: {serviceName: Webhook_Service}}").0,
            "system.webhook.serviceName"
        );
        let (key, message) =
            invalid_key("system: {webhook: {certificates: {validity: 1h, rotateBefore: 2h}}}");
        assert_eq!(key, "system.webhook.certificates.rotateBefore", "{message}");
        assert!(
            message.contains("below system.webhook.certificates.validity (3600s)"),
            "{message}"
        );
        assert_eq!(
            invalid_key("system: {webhook: {certificates: {secretName: ''}}}").0,
            "system.webhook.certificates.secretName"
        );
        let config = OperatorConfig::load(
            None,
            env(&[
                ("KFP_OPERATOR_SYSTEM_WEBHOOK_ENABLED", "true"),
                ("KFP_OPERATOR_SYSTEM_WEBHOOK_CERTIFICATES_MODE", "files"),
                ("KFP_OPERATOR_SYSTEM_WEBHOOK_CERTDIR", "/certs"),
            ]),
        )
        .unwrap();
        let webhook = &config.system.webhook;
        assert!(webhook.enabled);
        assert_eq!(webhook.certificates.mode, CertificateMode::Files);
        assert_eq!(webhook.cert_dir, "/certs");
        let defaults = WebhookConfig::default();
        assert!(!defaults.enabled, "local and test runs need no certificate");
        assert_eq!(defaults.address, "0.0.0.0:9443");
        assert_eq!(defaults.certificates.mode, CertificateMode::SelfManaged);
        assert_eq!(
            defaults.certificates.secret_name,
            "kfp-operator-webhook-server-cert"
        );
        let config = load_yaml(
            "system: {webhook: {certificates: {mode: self, validity: 8760h}}}",
            &[],
        )
        .unwrap();
        assert_eq!(
            config.system.webhook.certificates.validity,
            Duration::from_secs(365 * 24 * 3600)
        );
        assert!(load_yaml("system: {webhook: {certificates: {mode: vault}}}", &[]).is_err());
    }

    #[test]
    fn the_lease_namespace_falls_back_to_the_pod_namespace() {
        let mut election = LeaderElectionConfig::default();
        assert_eq!(election.lease_namespace(None), "kfp-operator-system");
        assert_eq!(election.lease_namespace(Some("ops")), "ops");
        election.namespace = "locks".into();
        assert_eq!(election.lease_namespace(Some("ops")), "locks");
    }

    /// Keys documented as a whole (maps and Kubernetes types), not key by key.
    const OPAQUE_KEYS: &[&str] = &[
        "spec.defaultProviderValues.labels",
        "spec.defaultProviderValues.podTemplateSpec",
    ];

    #[test]
    fn every_key_is_documented_in_docs_configuration_md() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/configuration.md"
        ))
        .unwrap();
        let defaults = serde_json::to_value(OperatorConfig::default()).unwrap();
        let paths = key_paths(&defaults, OPAQUE_KEYS);
        assert!(paths.contains(&"spec.runCompletionTTL".to_string()), "{paths:?}");
        let mut missing: Vec<String> = paths
            .into_iter()
            .filter(|path| {
                // Leaves, and opaque keys; objects of our own structs are documented through their keys.
                OPAQUE_KEYS.contains(&path.as_str())
                    || defaults
                        .pointer(&format!("/{}", path.replace('.', "/")))
                        .is_some_and(|v| !v.is_object())
            })
            .filter(|path| !doc.contains(&format!("`{path}`")))
            .collect();
        // The fields of list items are documented as `list[].field`.
        for field in ["host", "port", "path"] {
            let path = format!("spec.runCompletionFeed.endpoints[].{field}");
            if !doc.contains(&format!("`{path}`")) {
                missing.push(path);
            }
        }
        assert!(
            missing.is_empty(),
            "docs/configuration.md does not document these keys (add a row with type, default and meaning): {missing:?}"
        );
    }

    #[test]
    fn the_documented_example_loads() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/configuration.md"
        ))
        .unwrap();
        let example = doc
            .split("```yaml\n")
            .nth(1)
            .unwrap()
            .split("```")
            .next()
            .unwrap();
        let config = load_yaml(example, &[]).unwrap();
        assert_eq!(config.spec.run_completion_ttl, Some(Duration::from_secs(86400)));
        assert_eq!(config.system.concurrency.run, 32);
        assert_eq!(
            config.system.concurrency.pipeline, 8,
            "unset keys keep their defaults"
        );
    }
}
