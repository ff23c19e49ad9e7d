//! The operator's configuration (SPEC 7): one typed struct, loaded from a YAML file and the environment.
//!
//! Every key has a default here (the Go operator had none in code and relied on Helm); `docs/configuration.md`
//! lists them. Keys follow the Go operator's file layout (`system.*`, `spec.*`) so an existing configuration file
//! keeps working; this project's additions sit beside them.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use kfp_core::config::DefaultProviderValues;
use kfp_core::conversion::ConversionConfig;
use kfp_core::values::NamespacedName;
use serde::{Deserialize, Deserializer, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OperatorConfig {
    pub system: SystemConfig,
    pub spec: SpecConfig,
}

/// `system.*`: how the process runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SystemConfig {
    pub leader_election: LeaderElectionConfig,
    /// Address of `/healthz` and `/readyz` (the Go operator's probe port 8081).
    pub health_address: String,
    /// Address of the Prometheus `/metrics` endpoint (the Go operator's metrics port 8080).
    pub metrics_address: String,
    /// How many objects of one kind are reconciled at once (per controller); one object is never reconciled twice
    /// at once whatever this is.
    pub concurrency: ControllerConcurrency,
}

impl Default for SystemConfig {
    fn default() -> Self {
        Self {
            leader_election: LeaderElectionConfig::default(),
            health_address: "0.0.0.0:8081".to_string(),
            metrics_address: "0.0.0.0:8080".to_string(),
            concurrency: ControllerConcurrency::default(),
        }
    }
}

/// `system.leaderElection.*`: a `coordination.k8s.io` Lease so that two replicas never write at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LeaderElectionConfig {
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
    pub pipeline: u16,
    pub run: u16,
    pub run_schedule: u16,
    pub experiment: u16,
    pub run_configuration: u16,
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
    pub default_provider_values: DefaultProviderValues,
    /// Image of the `tfx` framework given to v1alpha6/v1alpha5 Providers on conversion.
    pub default_tfx_image: String,
    /// Deprecated: the namespace of v1alpha6 provider references.
    pub workflow_namespace: String,
    /// Provider (`ns/name`) of v1alpha5 objects without the provider annotation.
    pub default_provider: String,
    /// Framework of v1alpha5 Pipelines without `tfxComponents`.
    pub default_framework: String,
    pub multiversion: bool,
    /// Finished Runs are deleted this long after completion; unset keeps them.
    #[serde(
        rename = "runCompletionTTL",
        with = "optional_duration_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub run_completion_ttl: Option<Duration>,
    pub run_completion_feed: RunCompletionFeedConfig,
    pub executor: ExecutorKind,
    pub argo: ArgoConfig,
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

/// `spec.runCompletionFeed.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunCompletionFeedConfig {
    pub port: u16,
    pub endpoints: Vec<FeedEndpoint>,
}

impl Default for RunCompletionFeedConfig {
    fn default() -> Self {
        Self {
            port: 8082,
            endpoints: Vec::new(),
        }
    }
}

/// A gRPC endpoint the feed forwards events to (`host:port` + `path`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FeedEndpoint {
    pub host: String,
    pub port: u16,
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
}
