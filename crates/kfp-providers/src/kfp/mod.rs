//! The Kubeflow Pipelines provider (docs/providers/kubeflow-pipelines.md): drives the KFP **v2beta1 REST API** with
//! reqwest.
//!
//! | operation | REST calls |
//! |---|---|
//! | create pipeline | `POST /apis/v2beta1/pipelines/upload` (multipart `uploadfile`=`resource.yaml`, `name=<ns>-<name>`), then update; an existing pipeline of that name is adopted (idempotent create) |
//! | update pipeline | list + `DELETE .../pipelines/{id}/versions/{vid}` for every version, `POST /apis/v2beta1/pipelines/upload_version` (`pipelineid`, `name=<version>`); id unchanged |
//! | delete pipeline | delete every version, `DELETE /apis/v2beta1/pipelines/{id}`; NotFound ignored |
//! | create run | pipeline, version and experiment ids by `filter` `display_name EQUALS`, the version's spec by `GET /apis/v2beta1/pipelines/{id}/versions/{vid}` (parameter types), `POST /apis/v2beta1/runs` (`display_name=<ns>-<name>`, `description=kfp-operator run <ns>/<name> version <version>`) |
//! | delete run | `GET /apis/v2beta1/runs/{id}`, `POST .../runs/{id}:terminate` when it is still going (runs are kept in KFP) |
//! | create/update/delete run schedule | `POST /apis/v2beta1/recurringruns` / delete + create (new id) / `DELETE .../recurringruns/{id}` (NotFound ignored) |
//! | create/update/delete experiment | `POST /apis/v2beta1/experiments` / delete + create (new id) / `DELETE .../experiments/{id}` (NotFound ignored) |
//! | find pipeline | `GET /apis/v2beta1/pipelines?filter=<display_name EQUALS <ns>-<name>>`: its id, none: `None` |
//! | find run | `GET /apis/v2beta1/runs?filter=<display_name EQUALS <ns>-<name>>` (`namespace` in multi-user mode): the newest run created no earlier than the resource (whole seconds) whose description names the resource's version; a run without the provider's description (made by an older operator) is compared by name and time only |
//! | find run schedule | `GET /apis/v2beta1/recurringruns?filter=<display_name EQUALS <ns>-<name>>` (`namespace` in multi-user mode): the newest |
//! | find experiment | `GET /apis/v2beta1/experiments?filter=<display_name EQUALS <ns>-<name>>` (`namespace` in multi-user mode): its id; two are `Invalid` |
//!
//! Errors: HTTP 400/409/422 are [`ProviderError::Invalid`], 404 [`ProviderError::NotFound`], 5xx, timeouts and
//! transport errors [`ProviderError::Transient`]. In multi-user mode every request carries the bearer token read
//! from `tokenPath` at that moment (so a rotated projected token is used at once).
//!
//! Finished runs are reported by [`events::KfpEventSource`] (Argo workflows in `kfpNamespace`,
//! docs/providers/kubeflow-pipelines.md, "Events"), with their output artifacts read over REST ([`artifacts`]) or from
//! ML Metadata over gRPC ([`mlmd`]), as [`KfpConfig::artifact_source`] says.
//!
//! See `docs/providers/kubeflow-pipelines.md` for the parameters.

// Wire types named as in the KFP v2beta1 API reference (see the module docs), which documents their fields.
#[allow(missing_docs)]
pub mod api;
pub mod artifacts;
mod client;
pub mod events;
#[cfg(any(test, feature = "fakes"))]
pub mod fake;
pub mod mlmd;
pub mod pipeline;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kfp_core::definitions::{
    ExperimentDefinition, PipelineDefinitionWrapper, RunDefinition, RunScheduleDefinition,
};
use kfp_core::executor::ResourceKind;
use kfp_core::pipeline_spec::input_parameters;
use kfp_core::provider::{ObjectIdentity, Provider, ProviderConfig, ProviderError};
use kfp_core::values::{CronExpression, NamespacedName};

use self::api::{
    CreateRecurringRun, CreateRun, CronSchedule, Experiment, ListExperimentsResponse,
    ListPipelineVersionsResponse, ListPipelinesResponse, ListRecurringRunsResponse, ListRunsResponse,
    Pipeline, PipelineVersion, PipelineVersionReference, RUN_DESCRIPTION_PREFIX, RecurringRun, Run,
    RuntimeConfig, SETTLED_RUN_STATES, Trigger, display_name_filter, run_description,
};
use self::client::{KfpClient, TokenSource};
use self::pipeline::{RunLabels, prepare_compiled_pipeline, runtime_parameters};

/// The provider type name in the registry.
pub const PROVIDER_TYPE: &str = "kfp";
/// Default of `restKfpApiUrl`.
pub const DEFAULT_REST_URL: &str = "http://ml-pipeline.kubeflow:8888";
/// Default of `tokenPath`: where the projected ServiceAccount token (audience `pipelines.kubeflow.org`) is mounted.
pub const DEFAULT_TOKEN_PATH: &str = "/var/run/secrets/kfp/token";
/// Default of `defaultExperiment`: the experiment KFP creates itself.
pub const DEFAULT_EXPERIMENT: &str = "Default";
/// Default of `grpcMetadataStoreAddress` when `artifactSource` is `mlmd` and no address is given
/// (docs/providers/kubeflow-pipelines.md, "Parameters").
pub const DEFAULT_METADATA_STORE_ADDRESS: &str = "metadata-grpc-service.kubeflow:8080";

/// Where the event source reads the output artifacts of finished runs from (`artifactSource`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ArtifactSource {
    /// The KFP v2beta1 REST API: task details of the run + `GetArtifact` ([`artifacts::RestArtifactResolver`]).
    #[default]
    Rest,
    /// ML Metadata over gRPC at this address (`host:port` or `http://host:port`) ([`mlmd::MlmdArtifactResolver`]).
    Mlmd {
        /// The address of the ML Metadata gRPC service.
        address: String,
    },
}

/// The provider's settings, read from the Provider resource's parameters by [`KfpConfig::from_provider_config`].
#[derive(Debug, Clone, PartialEq)]
pub struct KfpConfig {
    /// The Provider resource, `namespace/name` (label values, multi-user namespace).
    pub provider: NamespacedName,
    /// `spec.pipelineRootStorage`; runs get `pipeline_root = <this>/<pipeline ns>/<pipeline name>` when set.
    pub pipeline_root_storage: String,
    /// `restKfpApiUrl`.
    pub rest_url: String,
    /// `kfpNamespace` (the namespace of the KFP installation; used by the event source).
    pub kfp_namespace: String,
    /// `kfpMultiUserMode`: a token is required and experiments are scoped to the provider's namespace.
    pub multi_user: bool,
    /// `defaultExperiment`: the KFP experiment of runs that name none, used as is.
    pub default_experiment: String,
    /// `tokenPath`: the bearer token file, read on every request.
    pub token_path: PathBuf,
    /// `requestTimeoutSeconds` (default 30): the limit of one HTTP request.
    pub request_timeout: Duration,
    /// `pageSize` (default 100): the page size of list requests.
    pub page_size: u32,
    /// `artifactSource` / `grpcMetadataStoreAddress`: where output artifacts are read from (default REST; ML
    /// Metadata when `grpcMetadataStoreAddress` is set).
    pub artifact_source: ArtifactSource,
}

impl KfpConfig {
    /// Defaults for the provider `provider`.
    pub fn new(provider: NamespacedName) -> Self {
        Self {
            provider,
            pipeline_root_storage: String::new(),
            rest_url: DEFAULT_REST_URL.to_string(),
            kfp_namespace: "kubeflow".to_string(),
            multi_user: false,
            default_experiment: DEFAULT_EXPERIMENT.to_string(),
            token_path: PathBuf::from(DEFAULT_TOKEN_PATH),
            request_timeout: Duration::from_secs(30),
            page_size: 100,
            artifact_source: ArtifactSource::Rest,
        }
    }

    /// Reads the parameters (case-insensitive keys): `restKfpApiUrl`, `kfpNamespace`, `kfpMultiUserMode`,
    /// `defaultExperiment`, `tokenPath`, `requestTimeoutSeconds`, `pageSize`, `grpcMetadataStoreAddress`,
    /// `artifactSource`.
    ///
    /// Artifacts come from ML Metadata when `grpcMetadataStoreAddress` is set (as in the Go provider's Provider
    /// resources) or `artifactSource` is `mlmd` (address [`DEFAULT_METADATA_STORE_ADDRESS`] unless given), and from
    /// the REST API otherwise or when `artifactSource` is `rest`.
    pub fn from_provider_config(config: &ProviderConfig) -> Result<Self, ProviderError> {
        let mut kfp = Self::new(config.name.clone());
        kfp.pipeline_root_storage = config.pipeline_root_storage.clone();
        let text = |key: &str| config.parameter_string(key).filter(|v| !v.is_empty());
        if let Some(url) = text("restKfpApiUrl") {
            kfp.rest_url = url;
        }
        if let Some(namespace) = text("kfpNamespace") {
            kfp.kfp_namespace = namespace;
        }
        if let Some(mode) = text("kfpMultiUserMode") {
            kfp.multi_user = match mode.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ProviderError::invalid(format!(
                        "parameter kfpMultiUserMode is {mode:?}; expected true or false"
                    )));
                }
            };
        }
        if let Some(experiment) = text("defaultExperiment") {
            kfp.default_experiment = experiment;
        }
        if let Some(path) = text("tokenPath") {
            kfp.token_path = PathBuf::from(path);
        }
        let number = |key: &str| -> Result<Option<u64>, ProviderError> {
            text(key)
                .map(|v| {
                    v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                        ProviderError::invalid(format!(
                            "parameter {key} is {v:?}; expected a positive whole number"
                        ))
                    })
                })
                .transpose()
        };
        if let Some(seconds) = number("requestTimeoutSeconds")? {
            kfp.request_timeout = Duration::from_secs(seconds);
        }
        if let Some(size) = number("pageSize")? {
            kfp.page_size = u32::try_from(size).unwrap_or(u32::MAX);
        }
        let address = text("grpcMetadataStoreAddress");
        kfp.artifact_source = match text("artifactSource").map(|s| s.to_ascii_lowercase()).as_deref() {
            None if address.is_none() => ArtifactSource::Rest,
            None | Some("mlmd") => ArtifactSource::Mlmd {
                address: address.unwrap_or_else(|| DEFAULT_METADATA_STORE_ADDRESS.to_string()),
            },
            Some("rest") => ArtifactSource::Rest,
            Some(other) => {
                return Err(ProviderError::invalid(format!(
                    "parameter artifactSource is {other:?}; expected mlmd or rest"
                )));
            }
        };
        Ok(kfp)
    }
}

/// The Kubeflow Pipelines [`Provider`].
#[derive(Debug, Clone)]
pub struct KfpProvider {
    config: KfpConfig,
    client: KfpClient,
}

impl KfpProvider {
    /// A provider for `config`; fails with `Invalid` when the API URL cannot be used.
    pub fn new(config: KfpConfig) -> Result<Self, ProviderError> {
        let token = TokenSource {
            path: config.token_path.clone(),
            required: config.multi_user,
        };
        let client = KfpClient::new(&config.rest_url, token, config.request_timeout, config.page_size)?;
        Ok(Self { config, client })
    }

    /// The registry factory: `registry.register(kfp::PROVIDER_TYPE, KfpProvider::factory)`.
    pub fn factory(config: &ProviderConfig) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(Self::new(KfpConfig::from_provider_config(config)?)?))
    }

    /// The settings it was built with.
    pub fn config(&self) -> &KfpConfig {
        &self.config
    }

    // --- pipelines -------------------------------------------------------------------------------------------

    /// The uploadable file: the compiled pipeline with the TFX wrapper removed and the labels declared.
    fn pipeline_file(wrapper: &PipelineDefinitionWrapper) -> Result<(PipelineInfo, Vec<u8>), ProviderError> {
        let info: PipelineInfo = serde_json::from_value(wrapper.pipeline_definition.clone())
            .map_err(|e| ProviderError::invalid(format!("the pipeline definition cannot be read: {e}")))?;
        let spec = prepare_compiled_pipeline(&info.framework.name, &wrapper.compiled_pipeline)?;
        let bytes = serde_json::to_vec(&spec)
            .map_err(|e| ProviderError::invalid(format!("the compiled pipeline cannot be written: {e}")))?;
        Ok((info, bytes))
    }

    async fn pipeline_version_ids(&self, pipeline_id: &str) -> Result<Vec<String>, ProviderError> {
        let url = self.client.url(&["pipelines", pipeline_id, "versions"])?;
        let versions = self
            .client
            .list_all(url, &[], |r: ListPipelineVersionsResponse| {
                (r.pipeline_versions, r.next_page_token)
            })
            .await?;
        Ok(versions.into_iter().map(|v| v.pipeline_version_id).collect())
    }

    async fn delete_pipeline_versions(&self, pipeline_id: &str) -> Result<(), ProviderError> {
        for version in self.pipeline_version_ids(pipeline_id).await? {
            let url = self
                .client
                .url(&["pipelines", pipeline_id, "versions", &version])?;
            ignore_not_found(self.client.delete(url).await)?;
        }
        Ok(())
    }

    async fn upload_version(
        &self,
        pipeline_id: &str,
        info: &PipelineInfo,
        file: Vec<u8>,
    ) -> Result<PipelineVersion, ProviderError> {
        let url = self.client.url(&["pipelines", "upload_version"])?;
        let query = [
            ("pipelineid", pipeline_id.to_string()),
            ("name", info.version.clone()),
            ("display_name", info.version.clone()),
        ];
        self.client.upload(url, &query, file).await
    }

    // --- lookups ---------------------------------------------------------------------------------------------

    fn exactly_one<T>(mut found: Vec<T>, what: &str) -> Result<T, ProviderError> {
        match found.len() {
            1 => found
                .pop()
                .ok_or_else(|| ProviderError::not_found(format!("no {what}"))),
            0 => Err(ProviderError::not_found(format!(
                "Kubeflow Pipelines has no {what} (found 0, expected exactly 1)"
            ))),
            n => Err(ProviderError::invalid(format!(
                "Kubeflow Pipelines has {n} {what}s (expected exactly 1)"
            ))),
        }
    }

    async fn pipeline_id(&self, pipeline: &NamespacedName) -> Result<String, ProviderError> {
        let display_name = display_name(pipeline);
        let url = self.client.url(&["pipelines"])?;
        let query = [("filter", display_name_filter(&display_name))];
        let found = self
            .client
            .list_all(url, &query, |r: ListPipelinesResponse| {
                (r.pipelines, r.next_page_token)
            })
            .await?;
        let what = format!("pipeline named {display_name:?}");
        Self::exactly_one(found, &what).map(|p: Pipeline| p.pipeline_id)
    }

    async fn pipeline_version_id(&self, pipeline_id: &str, version: &str) -> Result<String, ProviderError> {
        let url = self.client.url(&["pipelines", pipeline_id, "versions"])?;
        if version.is_empty() {
            // No version asked for: the newest.
            let page: ListPipelineVersionsResponse = self
                .client
                .get(
                    url,
                    &[
                        ("sort_by", "created_at desc".to_string()),
                        ("page_size", "1".into()),
                    ],
                )
                .await?;
            return page
                .pipeline_versions
                .into_iter()
                .next()
                .map(|v| v.pipeline_version_id)
                .ok_or_else(|| {
                    ProviderError::not_found(format!("the pipeline {pipeline_id} has no versions"))
                });
        }
        let query = [("filter", display_name_filter(version))];
        let found = self
            .client
            .list_all(url, &query, |r: ListPipelineVersionsResponse| {
                (r.pipeline_versions, r.next_page_token)
            })
            .await?;
        let what = format!("version {version:?} of the pipeline {pipeline_id}");
        Self::exactly_one(found, &what).map(|v: PipelineVersion| v.pipeline_version_id)
    }

    async fn experiment_id(&self, experiment: &NamespacedName) -> Result<String, ProviderError> {
        let display_name = if experiment.is_empty() {
            self.config.default_experiment.clone()
        } else {
            display_name(experiment)
        };
        let found = self.experiments_named(&display_name).await?;
        let what = format!("experiment named {display_name:?}");
        Self::exactly_one(found, &what).map(|e: Experiment| e.experiment_id)
    }

    /// `filter` `display_name EQUALS <name>`, and in multi-user mode the provider's `namespace`: experiments, runs
    /// and recurring runs belong to a namespace there, and KFP refuses to list without one.
    fn named_query(&self, display_name: &str) -> Vec<(&'static str, String)> {
        let mut query = vec![("filter", display_name_filter(display_name))];
        if self.config.multi_user {
            query.push(("namespace", self.config.provider.namespace.clone()));
        }
        query
    }

    async fn experiments_named(&self, display_name: &str) -> Result<Vec<Experiment>, ProviderError> {
        let url = self.client.url(&["experiments"])?;
        self.client
            .list_all(
                url,
                &self.named_query(display_name),
                |r: ListExperimentsResponse| (r.experiments, r.next_page_token),
            )
            .await
    }

    // --- find (exactly once) -----------------------------------------------------------------------------------

    /// The pipeline of that display name; KFP keeps pipeline names unique.
    async fn find_pipeline(&self, identity: &ObjectIdentity) -> Result<Option<String>, ProviderError> {
        match self.pipeline_id(&identity.name).await {
            Ok(id) => Ok(Some(id)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The experiment of that display name (in the provider's namespace in multi-user mode); KFP keeps experiment
    /// names unique, so more than one is refused as `experiment_id` refuses it.
    async fn find_experiment(&self, identity: &ObjectIdentity) -> Result<Option<String>, ProviderError> {
        let display_name = display_name(&identity.name);
        let found = self.experiments_named(&display_name).await?;
        if found.is_empty() {
            return Ok(None);
        }
        let what = format!("experiment named {display_name:?}");
        Self::exactly_one(found, &what).map(|e| Some(e.experiment_id))
    }

    /// The newest run of that display name created no earlier than the resource, whose description names the
    /// identity's version. A run whose description is not one the provider writes (made by an older operator)
    /// has no version to compare: its name and creation time decide.
    async fn find_run(&self, identity: &ObjectIdentity) -> Result<Option<String>, ProviderError> {
        let display_name = display_name(&identity.name);
        let url = self.client.url(&["runs"])?;
        let runs = self
            .client
            .list_all(url, &self.named_query(&display_name), |r: ListRunsResponse| {
                (r.runs, r.next_page_token)
            })
            .await?;
        let wanted = run_description(&identity.name.to_string(), &identity.version);
        let candidates = runs.into_iter().filter(|run| {
            run.display_name == display_name
                && (!run.description.starts_with(RUN_DESCRIPTION_PREFIX) || run.description == wanted)
        });
        newest_in_time(identity, candidates, |run| (&run.created_at, &run.run_id))
    }

    /// The newest recurring run of that display name (an update deletes and creates, so there is one unless a
    /// crash came between the two).
    async fn find_run_schedule(&self, identity: &ObjectIdentity) -> Result<Option<String>, ProviderError> {
        let display_name = display_name(&identity.name);
        let url = self.client.url(&["recurringruns"])?;
        let schedules = self
            .client
            .list_all(
                url,
                &self.named_query(&display_name),
                |r: ListRecurringRunsResponse| (r.recurring_runs, r.next_page_token),
            )
            .await?;
        let named = schedules.into_iter().filter(|s| s.display_name == display_name);
        let everything = ObjectIdentity {
            created: None,
            ..identity.clone()
        };
        newest_in_time(&everything, named, |s: &RecurringRun| {
            (&s.created_at, &s.recurring_run_id)
        })
    }

    /// The ids and runtime config shared by runs and recurring runs.
    async fn run_target(
        &self,
        run: RunTarget<'_>,
    ) -> Result<(String, PipelineVersionReference, RuntimeConfig), ProviderError> {
        let pipeline_id = self.pipeline_id(run.pipeline).await?;
        let pipeline_version_id = self
            .pipeline_version_id(&pipeline_id, run.labels.pipeline_version)
            .await?;
        // The parameters take the types the version's spec declares (KFP refuses a string for a typed input), so
        // the spec is read back from KFP: the run names a version, not the compiled pipeline.
        let version: PipelineVersion = self
            .client
            .get(
                self.client
                    .url(&["pipelines", &pipeline_id, "versions", &pipeline_version_id])?,
                &[],
            )
            .await?;
        let inputs = version
            .pipeline_spec
            .as_ref()
            .map(input_parameters)
            .unwrap_or_default();
        let experiment_id = self.experiment_id(run.experiment).await?;
        let pipeline_root = if self.config.pipeline_root_storage.is_empty() {
            String::new()
        } else {
            format!(
                "{}/{}/{}",
                self.config.pipeline_root_storage.trim_end_matches('/'),
                run.pipeline.namespace,
                run.pipeline.name
            )
        };
        let runtime_config = RuntimeConfig {
            parameters: runtime_parameters(&inputs, run.parameters, &run.labels.to_map())?,
            pipeline_root,
        };
        Ok((
            experiment_id,
            PipelineVersionReference {
                pipeline_id,
                pipeline_version_id,
            },
            runtime_config,
        ))
    }
}

/// What the provider reads from a PipelineDefinition.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct PipelineInfo {
    name: NamespacedName,
    #[serde(default)]
    version: String,
    #[serde(default)]
    framework: FrameworkInfo,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
struct FrameworkInfo {
    #[serde(default)]
    name: String,
}

struct RunTarget<'a> {
    pipeline: &'a NamespacedName,
    experiment: &'a NamespacedName,
    parameters: &'a std::collections::BTreeMap<String, String>,
    labels: RunLabels<'a>,
}

/// Backend display names are `<namespace>-<name>` (docs/providers/kubeflow-pipelines.md, "Operations").
fn display_name(name: &NamespacedName) -> String {
    if name.namespace.is_empty() {
        name.name.clone()
    } else {
        format!("{}-{}", name.namespace, name.name)
    }
}

/// The id of the newest of `objects` created in time for `identity` ([`ObjectIdentity::created_in_time`]), read
/// with `fields` as (`created_at`, id). An object without a creation time counts as in time only when the identity
/// has none either; one whose time KFP wrote unreadably is an error (KFP writes RFC 3339).
fn newest_in_time<T>(
    identity: &ObjectIdentity,
    objects: impl IntoIterator<Item = T>,
    fields: impl Fn(&T) -> (&Option<String>, &String),
) -> Result<Option<String>, ProviderError> {
    let mut newest: Option<(i64, String)> = None;
    for object in objects {
        let (created_at, id) = fields(&object);
        let created = match created_at.as_deref().filter(|t| !t.is_empty()) {
            Some(text) => Some(parse_time(text)?),
            None => None,
        };
        let in_time = match &created {
            Some(time) => identity.created_in_time(time),
            None => identity.created.is_none(),
        };
        let seconds = created.map_or(i64::MIN, |t| t.0.as_second());
        if in_time && newest.as_ref().is_none_or(|(best, _)| seconds > *best) {
            newest = Some((seconds, id.clone()));
        }
    }
    Ok(newest.map(|(_, id)| id))
}

/// An RFC 3339 time as KFP writes it.
fn parse_time(text: &str) -> Result<Time, ProviderError> {
    text.parse::<k8s_openapi::jiff::Timestamp>()
        .map(Time)
        .map_err(|e| {
            ProviderError::transient(format!(
                "Kubeflow Pipelines answered a creation time {text:?} that is not RFC 3339: {e}"
            ))
        })
}

fn ignore_not_found(result: Result<(), ProviderError>) -> Result<(), ProviderError> {
    match result {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

/// A Kubernetes time as its RFC 3339 text.
fn time_text<T: serde::Serialize>(time: &Option<T>) -> Result<Option<String>, ProviderError> {
    time.as_ref()
        .map(|t| match serde_json::to_value(t) {
            Ok(serde_json::Value::String(s)) => Ok(s),
            _ => Err(ProviderError::invalid(
                "a schedule time cannot be written as RFC 3339",
            )),
        })
        .transpose()
}

#[async_trait::async_trait]
impl Provider for KfpProvider {
    async fn create_pipeline(&self, pipeline: &PipelineDefinitionWrapper) -> Result<String, ProviderError> {
        let (info, file) = Self::pipeline_file(pipeline)?;
        let url = self.client.url(&["pipelines", "upload"])?;
        let name = display_name(&info.name);
        let query = [("name", name.clone()), ("display_name", name)];
        let pipeline_id = match self.client.upload::<Pipeline>(url, &query, file.clone()).await {
            Ok(created) if created.pipeline_id.is_empty() => {
                return Err(ProviderError::transient(
                    "UploadPipeline answered without a pipeline_id",
                ));
            }
            Ok(created) => created.pipeline_id,
            // A create repeated after a failure half-way (e.g. the operator crashed): KFP answers 409 because the
            // pipeline exists. Adopt it, so create stays idempotent; any other rejection stands.
            Err(ProviderError::Invalid(message)) => match self.pipeline_id(&info.name).await {
                Ok(existing) => existing,
                Err(_) => return Err(ProviderError::Invalid(message)),
            },
            Err(e) => return Err(e),
        };
        self.delete_pipeline_versions(&pipeline_id).await?;
        self.upload_version(&pipeline_id, &info, file).await?;
        Ok(pipeline_id)
    }

    async fn update_pipeline(
        &self,
        pipeline: &PipelineDefinitionWrapper,
        id: &str,
    ) -> Result<String, ProviderError> {
        let (info, file) = Self::pipeline_file(pipeline)?;
        self.delete_pipeline_versions(id).await?;
        self.upload_version(id, &info, file).await?;
        Ok(id.to_string())
    }

    async fn delete_pipeline(&self, id: &str) -> Result<(), ProviderError> {
        ignore_not_found(self.delete_pipeline_versions(id).await)?;
        ignore_not_found(self.client.delete(self.client.url(&["pipelines", id])?).await)
    }

    async fn create_run(&self, run: &RunDefinition) -> Result<String, ProviderError> {
        let labels = RunLabels {
            provider: &self.config.provider,
            pipeline: &run.pipeline_name,
            pipeline_version: &run.pipeline_version,
            run_configuration: &run.run_configuration_name,
            run: Some(&run.name),
            trigger: &run.trigger_indicator,
        };
        let (experiment_id, pipeline_version_reference, runtime_config) = self
            .run_target(RunTarget {
                pipeline: &run.pipeline_name,
                experiment: &run.experiment_name,
                parameters: &run.parameters,
                labels,
            })
            .await?;
        let body = CreateRun {
            display_name: display_name(&run.name),
            experiment_id,
            pipeline_version_reference,
            runtime_config,
            service_account: run.service_account.clone(),
            description: run_description(&run.name.to_string(), &run.version),
        };
        let created: Run = self.client.post_json(self.client.url(&["runs"])?, &body).await?;
        Ok(created.run_id)
    }

    /// Terminates the run when it is still going; finished runs stay as KFP's history, as the Go operator leaves
    /// them (docs/platform-features.md).
    async fn delete_run(&self, id: &str) -> Result<(), ProviderError> {
        let settled = |run: &Run| SETTLED_RUN_STATES.contains(&run.state.as_str());
        let run: Run = match self.client.get(self.client.url(&["runs", id])?, &[]).await {
            Ok(run) => run,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        if settled(&run) {
            return Ok(());
        }
        let terminate = self.client.url(&["runs", &format!("{id}:terminate")])?;
        match self
            .client
            .post_json::<_, serde_json::Value>(terminate, &serde_json::json!({}))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            // Refused because it finished meanwhile: nothing left to stop.
            Err(e) => match self.client.get::<Run>(self.client.url(&["runs", id])?, &[]).await {
                Ok(run) if settled(&run) => Ok(()),
                _ => Err(e),
            },
        }
    }

    async fn create_run_schedule(&self, schedule: &RunScheduleDefinition) -> Result<String, ProviderError> {
        let cron: CronExpression = schedule
            .schedule
            .cron_expression
            .parse()
            .map_err(|e: kfp_core::values::ValueError| ProviderError::invalid(e.to_string()))?;
        let labels = RunLabels {
            provider: &self.config.provider,
            pipeline: &schedule.pipeline_name,
            pipeline_version: &schedule.pipeline_version,
            run_configuration: &schedule.run_configuration_name,
            run: None,
            trigger: &schedule.trigger_indicator,
        };
        let (experiment_id, pipeline_version_reference, runtime_config) = self
            .run_target(RunTarget {
                pipeline: &schedule.pipeline_name,
                experiment: &schedule.experiment_name,
                parameters: &schedule.parameters,
                labels,
            })
            .await?;
        let body = CreateRecurringRun {
            display_name: display_name(&schedule.name),
            experiment_id,
            pipeline_version_reference,
            runtime_config,
            max_concurrency: "1".to_string(),
            no_catchup: true,
            mode: "ENABLE".to_string(),
            service_account: schedule.service_account.clone(),
            trigger: Trigger {
                cron_schedule: CronSchedule {
                    cron: cron.six_fields(),
                    start_time: time_text(&schedule.schedule.start_time)?,
                    end_time: time_text(&schedule.schedule.end_time)?,
                },
            },
        };
        let created: RecurringRun = self
            .client
            .post_json(self.client.url(&["recurringruns"])?, &body)
            .await?;
        Ok(created.recurring_run_id)
    }

    async fn update_run_schedule(
        &self,
        schedule: &RunScheduleDefinition,
        id: &str,
    ) -> Result<String, ProviderError> {
        self.delete_run_schedule(id).await?;
        self.create_run_schedule(schedule).await
    }

    async fn delete_run_schedule(&self, id: &str) -> Result<(), ProviderError> {
        ignore_not_found(self.client.delete(self.client.url(&["recurringruns", id])?).await)
    }

    async fn create_experiment(&self, experiment: &ExperimentDefinition) -> Result<String, ProviderError> {
        let body = Experiment {
            experiment_id: String::new(),
            display_name: display_name(&experiment.name),
            description: experiment.description.clone(),
            namespace: if self.config.multi_user {
                self.config.provider.namespace.clone()
            } else {
                String::new()
            },
        };
        let created: Experiment = self
            .client
            .post_json(self.client.url(&["experiments"])?, &body)
            .await?;
        Ok(created.experiment_id)
    }

    async fn update_experiment(
        &self,
        experiment: &ExperimentDefinition,
        id: &str,
    ) -> Result<String, ProviderError> {
        self.delete_experiment(id).await?;
        self.create_experiment(experiment).await
    }

    async fn delete_experiment(&self, id: &str) -> Result<(), ProviderError> {
        ignore_not_found(self.client.delete(self.client.url(&["experiments", id])?).await)
    }

    /// Looks the object up by its display name `<namespace>-<name>` (see the module docs); runs also by their
    /// creation time and version.
    async fn find(&self, identity: &ObjectIdentity) -> Result<Option<String>, ProviderError> {
        match identity.kind {
            ResourceKind::Pipeline => self.find_pipeline(identity).await,
            ResourceKind::Run => self.find_run(identity).await,
            ResourceKind::RunSchedule => self.find_run_schedule(identity).await,
            ResourceKind::Experiment => self.find_experiment(identity).await,
        }
    }
}
