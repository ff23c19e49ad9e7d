//! A provider for a toy platform, as a provider author writes one: the "platform" is a folder on disk
//! ([`FolderPlatform`]) that keeps every pipeline, run, run schedule and experiment as a JSON file, and finishes
//! each run the moment it is created.
//!
//! - [`FolderProvider`] implements [`Provider`]: ids are the platform's file names, a missing id is
//!   [`ProviderError::NotFound`], a request the platform cannot take is [`ProviderError::Invalid`] (permanent: the
//!   operator waits for a spec change), a run update is [`ProviderError::Unimplemented`] (runs are immutable).
//! - [`FolderEventSource`] implements [`EventSource`]: every run file not yet marked reported is a finished run;
//!   settling it as delivered (or rejected) writes the marker, a failed delivery leaves it to be delivered again:
//!   at least once, and the state survives a restart because it lives in the folder.
//! - [`register`] adds the type `folder` to a provider registry (parameter `root`: the folder), which is how the
//!   provider service binary (`src/main.rs`) and an operator with the direct executor find it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kfp_core::definitions::{
    ExperimentDefinition, PipelineDefinitionWrapper, RunDefinition, RunScheduleDefinition,
};
use kfp_core::event::{RunCompletionEventData, RunCompletionStatus};
use kfp_core::executor::ResourceKind;
use kfp_core::provider::{
    DeliveryOutcome, DeliveryReceipt, EventDelivery, EventSource, ObjectIdentity, Provider, ProviderConfig,
    ProviderError,
};
use kfp_core::registry::ProviderRegistry;
use kfp_core::values::NamespacedName;
use serde_json::{Value, json};

/// The provider type name in the registry.
pub const TYPE_NAME: &str = "folder";
/// The Provider parameter naming the platform's folder.
pub const ROOT_PARAMETER: &str = "root";
/// How often the event source looks for new runs.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The toy platform: one folder per kind of object, one JSON file per object.
#[derive(Debug, Clone)]
pub struct FolderPlatform {
    root: PathBuf,
}

/// The kinds of object the platform keeps, and their folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Compiled pipelines (`pipelines/`).
    Pipeline,
    /// Runs (`runs/`).
    Run,
    /// Run schedules (`runschedules/`).
    RunSchedule,
    /// Experiments (`experiments/`).
    Experiment,
}

impl Kind {
    fn folder(self) -> &'static str {
        match self {
            Self::Pipeline => "pipelines",
            Self::Run => "runs",
            Self::RunSchedule => "runschedules",
            Self::Experiment => "experiments",
        }
    }
}

fn io_error(what: &str, path: &Path, error: std::io::Error) -> ProviderError {
    ProviderError::transient(format!("cannot {what} {}: {error}", path.display()))
}

impl FolderPlatform {
    /// The platform in `root` (created when missing).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ProviderError> {
        let platform = Self { root: root.into() };
        for kind in [Kind::Pipeline, Kind::Run, Kind::RunSchedule, Kind::Experiment] {
            let folder = platform.root.join(kind.folder());
            std::fs::create_dir_all(&folder).map_err(|e| io_error("create", &folder, e))?;
        }
        Ok(platform)
    }

    /// The platform's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, kind: Kind, id: &str) -> Result<PathBuf, ProviderError> {
        // Ids come back from the operator percent-decoded: never let one leave the folder.
        if id.is_empty() || id.contains(['/', '\\']) || id.starts_with('.') {
            return Err(ProviderError::invalid(format!(
                "{id:?} is not an id of this platform (ids are plain file names)"
            )));
        }
        Ok(self.root.join(kind.folder()).join(format!("{id}.json")))
    }

    /// Writes object `id`; `must_exist` for updates.
    pub fn write(&self, kind: Kind, id: &str, value: &Value, must_exist: bool) -> Result<(), ProviderError> {
        let path = self.path(kind, id)?;
        if must_exist && !path.exists() {
            return Err(ProviderError::not_found(format!(
                "the platform has no {kind:?} {id}"
            )));
        }
        // Write then rename: a reader never sees half a file.
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, value.to_string()).map_err(|e| io_error("write", &temporary, e))?;
        std::fs::rename(&temporary, &path).map_err(|e| io_error("write", &path, e))
    }

    /// Reads object `id`.
    pub fn read(&self, kind: Kind, id: &str) -> Result<Value, ProviderError> {
        let path = self.path(kind, id)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ProviderError::not_found(format!(
                    "the platform has no {kind:?} {id}"
                )));
            }
            Err(e) => return Err(io_error("read", &path, e)),
        };
        serde_json::from_str(&text)
            .map_err(|e| ProviderError::transient(format!("{} is corrupt: {e}", path.display())))
    }

    /// Deletes object `id`; deleting what is not there is done (the operator treats both answers as gone).
    pub fn delete(&self, kind: Kind, id: &str) -> Result<(), ProviderError> {
        let path = self.path(kind, id)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error("delete", &path, e)),
            _ => Ok(()),
        }
    }

    /// The ids of every object of `kind`, sorted.
    pub fn ids(&self, kind: Kind) -> Result<Vec<String>, ProviderError> {
        let folder = self.root.join(kind.folder());
        let entries = std::fs::read_dir(&folder).map_err(|e| io_error("list", &folder, e))?;
        let mut ids: Vec<String> = entries
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".json").map(str::to_string)
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    fn reported_marker(&self, id: &str) -> PathBuf {
        self.root.join(Kind::Run.folder()).join(format!("{id}.reported"))
    }
}

/// `ns-name`: how the platform names the objects of a resource.
fn platform_name(name: &str) -> String {
    name.replace('/', "-")
}

/// The [`Provider`] of the folder platform.
#[derive(Debug, Clone)]
pub struct FolderProvider {
    platform: FolderPlatform,
    provider: NamespacedName,
    next_run: Arc<AtomicU64>,
}

impl FolderProvider {
    /// A provider on `platform`, reporting events as the Provider `provider`.
    pub fn new(platform: FolderPlatform, provider: NamespacedName) -> Self {
        Self {
            platform,
            provider,
            next_run: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The provider the Provider resource's configuration describes: parameter `root` is the folder.
    pub fn from_config(config: &ProviderConfig) -> Result<Self, ProviderError> {
        let root = config
            .parameter_string(ROOT_PARAMETER)
            .filter(|root| !root.trim().is_empty())
            .ok_or_else(|| {
                ProviderError::invalid(format!(
                    "the folder provider {} needs parameter {ROOT_PARAMETER}: the platform's folder",
                    config.name
                ))
            })?;
        Ok(Self::new(FolderPlatform::open(root)?, config.name.clone()))
    }

    /// The platform it writes to.
    pub fn platform(&self) -> &FolderPlatform {
        &self.platform
    }

    fn store_pipeline(
        &self,
        pipeline: &PipelineDefinitionWrapper,
        id: Option<&str>,
    ) -> Result<String, ProviderError> {
        if !pipeline.compiled_pipeline.is_object() {
            return Err(ProviderError::invalid(
                "the compiled pipeline must be a JSON object: this platform runs compiled pipeline specs",
            ));
        }
        let name = pipeline.pipeline_definition["name"].as_str().unwrap_or_default();
        if name.is_empty() {
            return Err(ProviderError::invalid("the pipeline definition has no name"));
        }
        let id = id.map_or_else(|| platform_name(name), str::to_string);
        let value =
            json!({"definition": pipeline.pipeline_definition, "compiled": pipeline.compiled_pipeline});
        self.platform.write(Kind::Pipeline, &id, &value, false)?;
        Ok(id)
    }
}

#[async_trait::async_trait]
impl Provider for FolderProvider {
    async fn create_pipeline(&self, pipeline: &PipelineDefinitionWrapper) -> Result<String, ProviderError> {
        self.store_pipeline(pipeline, None)
    }

    async fn update_pipeline(
        &self,
        pipeline: &PipelineDefinitionWrapper,
        id: &str,
    ) -> Result<String, ProviderError> {
        self.platform.read(Kind::Pipeline, id)?;
        self.store_pipeline(pipeline, Some(id))
    }

    async fn delete_pipeline(&self, id: &str) -> Result<(), ProviderError> {
        self.platform.delete(Kind::Pipeline, id)
    }

    async fn create_run(&self, run: &RunDefinition) -> Result<String, ProviderError> {
        let n = self.next_run.fetch_add(1, Ordering::Relaxed);
        let id = format!(
            "{}-{}-{n}",
            platform_name(&run.name.to_string()),
            chrono::Utc::now().timestamp_micros()
        );
        let now = chrono::Utc::now();
        let record = json!({
            "definition": run,
            "provider": self.provider.to_string(),
            "state": "succeeded",
            "started": now,
            "finished": now,
        });
        self.platform.write(Kind::Run, &id, &record, false)?;
        Ok(id)
    }

    async fn delete_run(&self, id: &str) -> Result<(), ProviderError> {
        self.platform.delete(Kind::Run, id)?;
        let marker = self.platform.reported_marker(id);
        match std::fs::remove_file(&marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error("delete", &marker, e)),
            _ => Ok(()),
        }
    }

    async fn create_run_schedule(&self, schedule: &RunScheduleDefinition) -> Result<String, ProviderError> {
        let id = platform_name(&schedule.name.to_string());
        self.platform
            .write(Kind::RunSchedule, &id, &json!(schedule), false)?;
        Ok(id)
    }

    async fn update_run_schedule(
        &self,
        schedule: &RunScheduleDefinition,
        id: &str,
    ) -> Result<String, ProviderError> {
        self.platform
            .write(Kind::RunSchedule, id, &json!(schedule), true)?;
        Ok(id.to_string())
    }

    async fn delete_run_schedule(&self, id: &str) -> Result<(), ProviderError> {
        self.platform.delete(Kind::RunSchedule, id)
    }

    async fn create_experiment(&self, experiment: &ExperimentDefinition) -> Result<String, ProviderError> {
        let id = platform_name(&experiment.name.to_string());
        self.platform
            .write(Kind::Experiment, &id, &json!(experiment), false)?;
        Ok(id)
    }

    async fn update_experiment(
        &self,
        experiment: &ExperimentDefinition,
        id: &str,
    ) -> Result<String, ProviderError> {
        self.platform
            .write(Kind::Experiment, id, &json!(experiment), true)?;
        Ok(id.to_string())
    }

    async fn delete_experiment(&self, id: &str) -> Result<(), ProviderError> {
        self.platform.delete(Kind::Experiment, id)
    }

    /// Finds what a create made for a resource, so a crashed operator neither runs twice nor leaks: pipelines,
    /// schedules and experiments by their deterministic file name; runs by the name, version and creation time
    /// the run's file records (the newest that matches).
    async fn find(&self, identity: &ObjectIdentity) -> Result<Option<String>, ProviderError> {
        let kind = match identity.kind {
            ResourceKind::Pipeline => Kind::Pipeline,
            ResourceKind::RunSchedule => Kind::RunSchedule,
            ResourceKind::Experiment => Kind::Experiment,
            ResourceKind::Run => {
                let mut newest: Option<(String, String)> = None;
                for id in self.platform.ids(Kind::Run)? {
                    let Ok(record) = self.platform.read(Kind::Run, &id) else {
                        continue; // deleted meanwhile
                    };
                    let definition = &record["definition"];
                    let started = record["started"].as_str().unwrap_or_default().to_string();
                    let in_time = serde_json::from_value(json!(started))
                        .is_ok_and(|created| identity.created_in_time(&created));
                    if definition["name"] == identity.name.to_string()
                        && definition["version"] == identity.version
                        && in_time
                        && newest.as_ref().is_none_or(|(_, at)| started > *at)
                    {
                        newest = Some((id, started));
                    }
                }
                return Ok(newest.map(|(id, _)| id));
            }
        };
        let id = platform_name(&identity.name.to_string());
        match self.platform.read(kind, &id) {
            Ok(_) => Ok(Some(id)),
            Err(ProviderError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Finished runs of the folder platform: each run file without its `.reported` marker.
#[derive(Debug)]
pub struct FolderEventSource {
    platform: FolderPlatform,
    /// Handed out and not settled yet: not handed out again until then.
    in_flight: HashSet<String>,
}

impl FolderEventSource {
    /// An event source over the finished runs of `platform`.
    pub fn new(platform: FolderPlatform) -> Self {
        Self {
            platform,
            in_flight: HashSet::new(),
        }
    }

    fn event_of(&self, id: &str) -> Result<RunCompletionEventData, ProviderError> {
        let record = self.platform.read(Kind::Run, id)?;
        let definition: RunDefinition = serde_json::from_value(record["definition"].clone())
            .map_err(|e| ProviderError::transient(format!("run {id} has an unreadable definition: {e}")))?;
        let time = |key: &str| serde_json::from_value(record[key].clone()).ok();
        let provider = record["provider"].as_str().unwrap_or_default();
        Ok(RunCompletionEventData {
            status: if record["state"] == "failed" {
                RunCompletionStatus::Failed
            } else {
                RunCompletionStatus::Succeeded
            },
            pipeline_name: definition.pipeline_name.clone(),
            run_configuration_name: Some(definition.run_configuration_name.clone())
                .filter(|name| !name.is_empty()),
            run_name: Some(definition.name.clone()).filter(|name| !name.is_empty()),
            run_id: id.to_string(),
            run_start_time: time("started"),
            run_end_time: time("finished"),
            pipeline_components: Vec::new(),
            provider: provider.parse().unwrap_or_default(),
        })
    }
}

#[async_trait::async_trait]
impl EventSource for FolderEventSource {
    async fn next_event(&mut self) -> Result<Option<EventDelivery>, ProviderError> {
        loop {
            for id in self.platform.ids(Kind::Run)? {
                if self.in_flight.contains(&id) || self.platform.reported_marker(&id).exists() {
                    continue;
                }
                let event = match self.event_of(&id) {
                    Ok(event) => event,
                    // Deleted between listing and reading: nothing to report.
                    Err(ProviderError::NotFound(_)) => continue,
                    Err(e) => return Err(e),
                };
                self.in_flight.insert(id.clone());
                return Ok(Some(EventDelivery {
                    event,
                    receipt: DeliveryReceipt(id),
                }));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn settle(
        &mut self,
        receipt: DeliveryReceipt,
        outcome: DeliveryOutcome,
    ) -> Result<(), ProviderError> {
        let id = receipt.0;
        if outcome.is_settled() {
            let marker = self.platform.reported_marker(&id);
            std::fs::write(&marker, outcome_text(outcome)).map_err(|e| io_error("write", &marker, e))?;
        }
        self.in_flight.remove(&id);
        Ok(())
    }
}

fn outcome_text(outcome: DeliveryOutcome) -> &'static str {
    match outcome {
        DeliveryOutcome::Delivered => "delivered",
        DeliveryOutcome::Rejected => "rejected",
        DeliveryOutcome::Failed => "failed",
    }
}

/// Registers the type [`TYPE_NAME`] with its event source. The provider and its event source share nothing but
/// the folder.
pub fn register(registry: &mut ProviderRegistry) -> Result<(), kfp_core::registry::RegistryError> {
    registry.register_with_events(
        TYPE_NAME,
        |config| FolderProvider::from_config(config).map(|p| Arc::new(p) as Arc<dyn Provider>),
        |config| {
            FolderProvider::from_config(config)
                .map(|p| Box::new(FolderEventSource::new(p.platform().clone())) as Box<dyn EventSource>)
        },
    )?;
    Ok(())
}
