//! A conformance kit for [`Provider`] implementations: run it from any crate's tests against your provider (in
//! process, or through [`crate::http::HttpProvider`] against a running provider service).
//!
//! ```no_run
//! # async fn example(provider: std::sync::Arc<dyn kfp_core::provider::Provider>) {
//! use kfp_providers::conformance::{self, ConformanceFixtures};
//! let report = conformance::run_all(provider, &ConformanceFixtures::default()).await;
//! assert!(report.passed(), "{report}");
//! # }
//! ```
//!
//! Checks (each a public function returning a [`CheckResult`]):
//! - [`check_lifecycle`] per kind: create returns a non-empty id, update of that id returns a non-empty id (not
//!   for runs: runs are immutable), delete of that id succeeds;
//! - [`check_delete_missing`] per kind: deleting an id that never existed is idempotent: `Ok` or
//!   [`ProviderError::NotFound`] both pass (the operator treats both as "gone"); any other error fails;
//! - [`check_invalid_requests`]: every request of [`ConformanceFixtures::invalid`] fails with a permanent error
//!   ([`ProviderError::is_permanent`]: `Invalid` or `Unimplemented`), so the operator does not retry it;
//! - [`check_find`] per kind ([`Provider::find`], exactly-once creates): after a create, `find` of the resource's
//!   [`ObjectIdentity`] (created a few minutes before) answers the created id; `find` of an identity nothing was
//!   created for answers `None`; for runs, `find` of the identity with a `created` one hour after now answers
//!   `None` (the run belongs to an earlier resource of that name). The check creates a run of its own name
//!   (`<run name>-find`), so runs of the other checks do not count. A kind in [`ConformanceFixtures::find_unsupported`]
//!   must answer [`ProviderError::Unimplemented`] instead (and nothing else may: a provider cannot pass by not
//!   implementing `find`); a kind in [`ConformanceFixtures::unsupported`] is only looked up, never created;
//! - [`check_events`] (optional, needs an [`EventSource`]): after creating a run, the source yields within the
//!   timeout an event that survives a JSON round trip as [`RunCompletionEventData`] and names the run (its
//!   `runName`, `pipelineName` and, if set, `runConfigurationName` are those of the definition) and the provider
//!   (non-empty `provider`); settling it as delivered succeeds.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kfp_core::definitions::{
    ExperimentDefinition, PipelineDefinitionWrapper, RunDefinition, RunScheduleDefinition,
    ScheduleDefinition, TriggerIndicator,
};
use kfp_core::event::RunCompletionEventData;
use kfp_core::provider::{DeliveryOutcome, EventSource, ObjectIdentity, Provider, ProviderError};
use kfp_core::values::{NamedValue, NamespacedName};
use serde_json::json;

use crate::ResourceKind;

/// One provider operation, for fixtures that must fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// `create_pipeline` with this definition.
    CreatePipeline(PipelineDefinitionWrapper),
    /// `update_pipeline` of the id with this definition.
    UpdatePipeline(PipelineDefinitionWrapper, String),
    /// `delete_pipeline` of the id.
    DeletePipeline(String),
    /// `create_run` with this definition.
    CreateRun(RunDefinition),
    /// `delete_run` of the id.
    DeleteRun(String),
    /// `create_run_schedule` with this definition.
    CreateRunSchedule(RunScheduleDefinition),
    /// `update_run_schedule` of the id with this definition.
    UpdateRunSchedule(RunScheduleDefinition, String),
    /// `delete_run_schedule` of the id.
    DeleteRunSchedule(String),
    /// `create_experiment` with this definition.
    CreateExperiment(ExperimentDefinition),
    /// `update_experiment` of the id with this definition.
    UpdateExperiment(ExperimentDefinition, String),
    /// `delete_experiment` of the id.
    DeleteExperiment(String),
}

impl Operation {
    /// Runs the operation; the id (or nothing) on success.
    pub async fn apply(&self, provider: &dyn Provider) -> Result<Option<String>, ProviderError> {
        Ok(match self {
            Self::CreatePipeline(p) => Some(provider.create_pipeline(p).await?),
            Self::UpdatePipeline(p, id) => Some(provider.update_pipeline(p, id).await?),
            Self::DeletePipeline(id) => provider.delete_pipeline(id).await.map(|()| None)?,
            Self::CreateRun(r) => Some(provider.create_run(r).await?),
            Self::DeleteRun(id) => provider.delete_run(id).await.map(|()| None)?,
            Self::CreateRunSchedule(s) => Some(provider.create_run_schedule(s).await?),
            Self::UpdateRunSchedule(s, id) => Some(provider.update_run_schedule(s, id).await?),
            Self::DeleteRunSchedule(id) => provider.delete_run_schedule(id).await.map(|()| None)?,
            Self::CreateExperiment(e) => Some(provider.create_experiment(e).await?),
            Self::UpdateExperiment(e, id) => Some(provider.update_experiment(e, id).await?),
            Self::DeleteExperiment(id) => provider.delete_experiment(id).await.map(|()| None)?,
        })
    }

    /// A short description for reports: `create experiment ns/name`, `delete run <id>`.
    pub fn describe(&self) -> String {
        match self {
            Self::CreatePipeline(p) => format!(
                "create pipeline {}",
                p.pipeline_definition.get("name").unwrap_or(&json!(""))
            ),
            Self::UpdatePipeline(_, id) => format!("update pipeline {id}"),
            Self::DeletePipeline(id) => format!("delete pipeline {id}"),
            Self::CreateRun(r) => format!("create run {}", r.name),
            Self::DeleteRun(id) => format!("delete run {id}"),
            Self::CreateRunSchedule(s) => format!("create runschedule {}", s.name),
            Self::UpdateRunSchedule(_, id) => format!("update runschedule {id}"),
            Self::DeleteRunSchedule(id) => format!("delete runschedule {id}"),
            Self::CreateExperiment(e) => format!("create experiment {}", e.name),
            Self::UpdateExperiment(_, id) => format!("update experiment {id}"),
            Self::DeleteExperiment(id) => format!("delete experiment {id}"),
        }
    }
}

/// The requests the checks send. [`Default`] gives valid definitions in namespace `conformance`, the id
/// `conformance-missing-id` for deletes of missing objects, and no invalid requests; [`ConformanceFixtures::stub`]
/// adds the stub provider's failing names.
#[derive(Debug, Clone, PartialEq)]
pub struct ConformanceFixtures {
    /// The pipeline the lifecycle check creates, updates and deletes.
    pub pipeline: PipelineDefinitionWrapper,
    /// The run the lifecycle and event checks create (runs are not updated).
    pub run: RunDefinition,
    /// The run schedule the lifecycle check creates, updates and deletes.
    pub run_schedule: RunScheduleDefinition,
    /// The experiment the lifecycle check creates, updates and deletes.
    pub experiment: ExperimentDefinition,
    /// An id no object has.
    pub missing_id: String,
    /// Requests that must fail with a permanent error.
    pub invalid: Vec<Operation>,
    /// How long [`check_events`] waits for the event of the created run.
    pub event_timeout: Duration,
    /// Backends that resolve a run's pipeline (version) and experiment when the run is created (Kubeflow
    /// Pipelines) need them to exist first: when true, the run and run schedule lifecycle checks create
    /// [`Self::pipeline`] and [`Self::experiment`] through the provider before, and delete them after. Default false.
    pub prepare_dependencies: bool,
    /// Kinds the provider does not implement (Vertex AI has no experiments): for these the kit expects
    /// `Unimplemented` from create and accepts it from delete, and dependency preparation leaves them out.
    pub unsupported: Vec<ResourceKind>,
    /// Kinds whose objects the provider cannot find by their resource ([`Provider::find`]): for these the kit
    /// expects `Unimplemented` from `find` (the operator then creates at least once). Default empty: every kind must
    /// be found.
    pub find_unsupported: Vec<ResourceKind>,
}

impl Default for ConformanceFixtures {
    fn default() -> Self {
        let ns = "conformance";
        let name = |n: &str| NamespacedName::new(ns, n);
        let trigger = TriggerIndicator {
            type_: "runConfiguration".into(),
            source: "rc".into(),
            source_namespace: ns.into(),
        };
        let run = RunDefinition {
            name: name("run"),
            version: "v1".into(),
            pipeline_name: name("pipeline"),
            pipeline_version: "0.0.1".into(),
            run_configuration_name: name("rc"),
            experiment_name: name("experiment"),
            parameters: [("learning_rate".to_string(), "0.1".to_string())].into(),
            artifacts: Vec::new(),
            trigger_indicator: trigger.clone(),
            service_account: String::new(),
            labels: Default::default(),
        };
        let run_schedule = RunScheduleDefinition {
            name: name("schedule"),
            version: "v1".into(),
            pipeline_name: run.pipeline_name.clone(),
            pipeline_version: run.pipeline_version.clone(),
            run_configuration_name: name("rc"),
            experiment_name: name("experiment"),
            parameters: run.parameters.clone(),
            artifacts: Vec::new(),
            trigger_indicator: trigger,
            schedule: ScheduleDefinition {
                cron_expression: "0 0 * * * *".into(),
                start_time: None,
                end_time: None,
            },
            service_account: String::new(),
            labels: Default::default(),
        };
        let env = vec![NamedValue::new("LOG_LEVEL", "info")];
        Self {
            pipeline: PipelineDefinitionWrapper {
                pipeline_definition: json!({
                    "name": format!("{ns}/pipeline"),
                    "version": "0.0.1",
                    "image": "registry.example/pipeline:0.0.1",
                    "env": env,
                    "framework": {"name": "tfx", "parameters": {"components": "pipeline.create_components"}}
                }),
                compiled_pipeline: json!({"pipelineSpec": {"pipelineInfo": {"name": "conformance-pipeline"}}}),
            },
            run,
            run_schedule,
            experiment: ExperimentDefinition {
                name: name("experiment"),
                version: "v1".into(),
                description: "conformance experiment".into(),
            },
            missing_id: "conformance-missing-id".into(),
            invalid: Vec::new(),
            event_timeout: Duration::from_secs(10),
            prepare_dependencies: false,
            unsupported: Vec::new(),
            find_unsupported: Vec::new(),
        }
    }
}

impl ConformanceFixtures {
    /// The defaults plus the requests the stub provider refuses permanently (docs/provider-service.md, "The stub
    /// provider"); it keeps no pipelines, run schedules or experiments, so it finds runs only
    /// ([`Self::find_unsupported`]).
    pub fn stub() -> Self {
        let mut fixtures = Self {
            find_unsupported: vec![
                ResourceKind::Pipeline,
                ResourceKind::RunSchedule,
                ResourceKind::Experiment,
            ],
            ..Self::default()
        };
        let named = |n: &str| NamespacedName::new("conformance", n);
        let mut pipeline = fixtures.pipeline.clone();
        pipeline.pipeline_definition["name"] = json!("conformance/create-pipeline-fail");
        let mut run = fixtures.run.clone();
        run.name = named("create-run-fail");
        let mut schedule = fixtures.run_schedule.clone();
        schedule.name = named("create-runschedule-fail");
        let mut updated_schedule = fixtures.run_schedule.clone();
        updated_schedule.name = named("update-runschedule-fail");
        let mut experiment = fixtures.experiment.clone();
        experiment.name = named("create-experiment-fail");
        let mut updated_experiment = fixtures.experiment.clone();
        updated_experiment.name = named("update-experiment-fail");
        fixtures.invalid = vec![
            Operation::CreatePipeline(pipeline),
            Operation::UpdatePipeline(fixtures.pipeline.clone(), "update-pipeline-fail".into()),
            Operation::CreateRun(run),
            Operation::CreateRunSchedule(schedule),
            Operation::UpdateRunSchedule(updated_schedule, "id".into()),
            Operation::CreateExperiment(experiment),
            Operation::UpdateExperiment(updated_experiment, "id".into()),
        ];
        for kind in ResourceKind::ALL {
            let id = format!("delete-{kind}-fail");
            fixtures.invalid.push(match kind {
                ResourceKind::Pipeline => Operation::DeletePipeline(id),
                ResourceKind::Run => Operation::DeleteRun(id),
                ResourceKind::RunSchedule => Operation::DeleteRunSchedule(id),
                ResourceKind::Experiment => Operation::DeleteExperiment(id),
            });
        }
        fixtures
    }
}

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider behaved as the contract says.
    Passed,
    /// It did not; the message says what it did instead.
    Failed(String),
    /// The check could not run (e.g. no event source); says why. Does not fail the report.
    Skipped(String),
}

/// One named check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The check and the kind it ran for, e.g. `lifecycle pipeline`.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
}

impl CheckResult {
    fn new(name: impl Into<String>, result: Result<(), String>) -> Self {
        Self {
            name: name.into(),
            outcome: match result {
                Ok(()) => Outcome::Passed,
                Err(message) => Outcome::Failed(message),
            },
        }
    }

    /// True unless the check failed (a skipped check passes).
    pub fn passed(&self) -> bool {
        !matches!(self.outcome, Outcome::Failed(_))
    }
}

/// Every check that ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConformanceReport {
    /// Every check, in the order they ran.
    pub checks: Vec<CheckResult>,
}

impl ConformanceReport {
    /// True when no check failed (skipped checks do not fail).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(CheckResult::passed)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| !c.passed())
    }

    /// `Ok` if every check passed, else the report as the error (its `Display` lists every check).
    pub fn into_result(self) -> Result<Self, Self> {
        if self.passed() { Ok(self) } else { Err(self) }
    }
}

impl fmt::Display for ConformanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.failures().count();
        writeln!(f, "{} checks, {} failed", self.checks.len(), failed)?;
        for check in &self.checks {
            match &check.outcome {
                Outcome::Passed => writeln!(f, "  ok      {}", check.name)?,
                Outcome::Failed(m) => writeln!(f, "  FAILED  {}: {m}", check.name)?,
                Outcome::Skipped(m) => writeln!(f, "  skipped {}: {m}", check.name)?,
            }
        }
        Ok(())
    }
}

fn non_empty(op: &str, id: String) -> Result<String, String> {
    if id.is_empty() {
        Err(format!("{op} returned an empty id"))
    } else {
        Ok(id)
    }
}

fn failed(op: &str, e: ProviderError) -> String {
    format!("{op} failed: {e:?}")
}

/// Create, update (not runs) and delete of one `kind` with the fixtures' definition.
pub async fn check_lifecycle(
    provider: &dyn Provider,
    fixtures: &ConformanceFixtures,
    kind: ResourceKind,
) -> CheckResult {
    if fixtures.unsupported.contains(&kind) {
        return CheckResult::new(
            format!("{kind} lifecycle"),
            unsupported_create(provider, fixtures, kind).await,
        );
    }
    let needs_dependencies =
        fixtures.prepare_dependencies && matches!(kind, ResourceKind::Run | ResourceKind::RunSchedule);
    let dependencies = if needs_dependencies {
        match create_dependencies(provider, fixtures).await {
            Ok(ids) => Some(ids),
            Err(message) => return CheckResult::new(format!("{kind} lifecycle"), Err(message)),
        }
    } else {
        None
    };
    let result = lifecycle(provider, fixtures, kind).await;
    let cleanup = match dependencies {
        Some(ids) => delete_dependencies(provider, ids).await,
        None => Ok(()),
    };
    CheckResult::new(format!("{kind} lifecycle"), result.and(cleanup))
}

/// A kind the provider does not implement must say so: `Unimplemented`, not success or another error.
async fn unsupported_create(
    provider: &dyn Provider,
    fixtures: &ConformanceFixtures,
    kind: ResourceKind,
) -> Result<(), String> {
    let result = match kind {
        ResourceKind::Pipeline => provider.create_pipeline(&fixtures.pipeline).await,
        ResourceKind::Run => provider.create_run(&fixtures.run).await,
        ResourceKind::RunSchedule => provider.create_run_schedule(&fixtures.run_schedule).await,
        ResourceKind::Experiment => provider.create_experiment(&fixtures.experiment).await,
    };
    match result {
        Err(ProviderError::Unimplemented(_)) => Ok(()),
        other => Err(format!(
            "{kind} is declared unsupported, so create must answer Unimplemented, got {other:?}"
        )),
    }
}

/// The pipeline and experiment ids created by [`create_dependencies`] (no experiment when unsupported).
struct DependencyIds {
    pipeline: String,
    experiment: Option<String>,
}

async fn create_dependencies(
    provider: &dyn Provider,
    fixtures: &ConformanceFixtures,
) -> Result<DependencyIds, String> {
    let pipeline = provider
        .create_pipeline(&fixtures.pipeline)
        .await
        .map_err(|e| failed("preparing: create pipeline", e))?;
    if fixtures.unsupported.contains(&ResourceKind::Experiment) {
        return Ok(DependencyIds {
            pipeline,
            experiment: None,
        });
    }
    let experiment = match provider.create_experiment(&fixtures.experiment).await {
        Ok(id) => Some(id),
        Err(e) => {
            let _ = provider.delete_pipeline(&pipeline).await;
            return Err(failed("preparing: create experiment", e));
        }
    };
    Ok(DependencyIds { pipeline, experiment })
}

async fn delete_dependencies(provider: &dyn Provider, ids: DependencyIds) -> Result<(), String> {
    let experiment = match &ids.experiment {
        Some(id) => provider.delete_experiment(id).await,
        None => Ok(()),
    };
    let pipeline = provider.delete_pipeline(&ids.pipeline).await;
    experiment.map_err(|e| failed("cleaning up: delete experiment", e))?;
    pipeline.map_err(|e| failed("cleaning up: delete pipeline", e))
}

async fn lifecycle(
    provider: &dyn Provider,
    fixtures: &ConformanceFixtures,
    kind: ResourceKind,
) -> Result<(), String> {
    {
        match kind {
            ResourceKind::Pipeline => {
                let p = &fixtures.pipeline;
                let id = non_empty(
                    "create",
                    provider
                        .create_pipeline(p)
                        .await
                        .map_err(|e| failed("create", e))?,
                )?;
                let id = non_empty(
                    "update",
                    provider
                        .update_pipeline(p, &id)
                        .await
                        .map_err(|e| failed("update", e))?,
                )?;
                provider
                    .delete_pipeline(&id)
                    .await
                    .map_err(|e| failed("delete", e))
            }
            ResourceKind::Run => {
                let id = non_empty(
                    "create",
                    provider
                        .create_run(&fixtures.run)
                        .await
                        .map_err(|e| failed("create", e))?,
                )?;
                provider.delete_run(&id).await.map_err(|e| failed("delete", e))
            }
            ResourceKind::RunSchedule => {
                let s = &fixtures.run_schedule;
                let id = non_empty(
                    "create",
                    provider
                        .create_run_schedule(s)
                        .await
                        .map_err(|e| failed("create", e))?,
                )?;
                let id = non_empty(
                    "update",
                    provider
                        .update_run_schedule(s, &id)
                        .await
                        .map_err(|e| failed("update", e))?,
                )?;
                provider
                    .delete_run_schedule(&id)
                    .await
                    .map_err(|e| failed("delete", e))
            }
            ResourceKind::Experiment => {
                let e = &fixtures.experiment;
                let id = non_empty(
                    "create",
                    provider
                        .create_experiment(e)
                        .await
                        .map_err(|e| failed("create", e))?,
                )?;
                let id = non_empty(
                    "update",
                    provider
                        .update_experiment(e, &id)
                        .await
                        .map_err(|e| failed("update", e))?,
                )?;
                provider
                    .delete_experiment(&id)
                    .await
                    .map_err(|e| failed("delete", e))
            }
        }
    }
}

/// Deleting `fixtures.missing_id` of `kind` returns `Ok` or `NotFound`.
pub async fn check_delete_missing(
    provider: &dyn Provider,
    fixtures: &ConformanceFixtures,
    kind: ResourceKind,
) -> CheckResult {
    let id = fixtures.missing_id.as_str();
    let result = match kind {
        ResourceKind::Pipeline => provider.delete_pipeline(id).await,
        ResourceKind::Run => provider.delete_run(id).await,
        ResourceKind::RunSchedule => provider.delete_run_schedule(id).await,
        ResourceKind::Experiment => provider.delete_experiment(id).await,
    };
    let result = match result {
        Ok(()) | Err(ProviderError::NotFound(_)) => Ok(()),
        Err(ProviderError::Unimplemented(_)) if fixtures.unsupported.contains(&kind) => Ok(()),
        Err(e) => Err(format!(
            "deleting the missing {kind} {id:?} must succeed or answer NotFound, got {e:?}"
        )),
    };
    CheckResult::new(format!("{kind} delete of a missing id"), result)
}

/// How far before the create the kit dates the resource it looks up: the provider's clock (or its backend's) may
/// be behind the kit's.
const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// [`Provider::find`] of `kind`: after a create, the identity of the fixture's resource answers the created id; an
/// identity nothing was created for answers `None`; for runs, an identity created one hour from now answers `None`.
pub async fn check_find(
    provider: &dyn Provider,
    fixtures: &ConformanceFixtures,
    kind: ResourceKind,
) -> CheckResult {
    let name = format!("{kind} find");
    let never = ObjectIdentity::new(
        kind,
        NamespacedName::new("conformance", format!("never-created-{kind}")),
        "v1",
        Some(time_from_now(-CLOCK_SKEW.as_secs_f64())),
    );
    if fixtures.find_unsupported.contains(&kind) {
        let result = match provider.find(&never).await {
            Err(ProviderError::Unimplemented(_)) => Ok(()),
            other => Err(format!(
                "find of {kind} is declared unsupported, so it must answer Unimplemented, got {other:?}"
            )),
        };
        return CheckResult::new(name, result);
    }
    let missing = match provider.find(&never).await {
        Ok(None) => Ok(()),
        Ok(Some(id)) => Err(format!(
            "find of the {kind} {} that was never created answered {id:?}, expected None",
            never.name
        )),
        Err(e) => Err(failed(
            &format!("find of the {kind} {} that was never created", never.name),
            e,
        )),
    };
    if fixtures.unsupported.contains(&kind) || missing.is_err() {
        return CheckResult::new(name, missing);
    }
    let needs_dependencies =
        fixtures.prepare_dependencies && matches!(kind, ResourceKind::Run | ResourceKind::RunSchedule);
    let dependencies = if needs_dependencies {
        match create_dependencies(provider, fixtures).await {
            Ok(ids) => Some(ids),
            Err(message) => return CheckResult::new(name, Err(message)),
        }
    } else {
        None
    };
    let result = find_after_create(provider, fixtures, kind).await;
    let cleanup = match dependencies {
        Some(ids) => delete_dependencies(provider, ids).await,
        None => Ok(()),
    };
    CheckResult::new(name, result.and(cleanup))
}

/// Now plus `seconds` (negative: before now) as a Kubernetes time in whole seconds.
fn time_from_now(seconds: f64) -> Time {
    let now = Timestamp::now();
    let shifted = now
        .checked_add(SignedDuration::from_secs_f64(seconds))
        .unwrap_or(now);
    Time(Timestamp::from_second(shifted.as_second()).unwrap_or(shifted))
}

async fn find_after_create(
    provider: &dyn Provider,
    fixtures: &ConformanceFixtures,
    kind: ResourceKind,
) -> Result<(), String> {
    let before = Some(time_from_now(-CLOCK_SKEW.as_secs_f64()));
    let mut run = fixtures.run.clone();
    run.name.name = format!("{}-find", run.name.name);
    let (resource, version, created) = match kind {
        ResourceKind::Pipeline => {
            let definition = &fixtures.pipeline.pipeline_definition;
            let resource: NamespacedName = serde_json::from_value(definition["name"].clone())
                .map_err(|e| format!("the fixtures' pipeline has no namespace/name: {e}"))?;
            let version = definition["version"].as_str().unwrap_or_default().to_string();
            let id = provider
                .create_pipeline(&fixtures.pipeline)
                .await
                .map_err(|e| failed("create", e))?;
            (resource, version, id)
        }
        ResourceKind::Run => {
            let id = provider.create_run(&run).await.map_err(|e| failed("create", e))?;
            (run.name.clone(), run.version.clone(), id)
        }
        ResourceKind::RunSchedule => {
            let schedule = &fixtures.run_schedule;
            let id = provider
                .create_run_schedule(schedule)
                .await
                .map_err(|e| failed("create", e))?;
            (schedule.name.clone(), schedule.version.clone(), id)
        }
        ResourceKind::Experiment => {
            let experiment = &fixtures.experiment;
            let id = provider
                .create_experiment(experiment)
                .await
                .map_err(|e| failed("create", e))?;
            (experiment.name.clone(), experiment.version.clone(), id)
        }
    };
    let identity = ObjectIdentity::new(kind, resource, version, before);
    let found = async {
        match provider.find(&identity).await {
            Ok(Some(id)) if id == created => {}
            Ok(other) => {
                return Err(format!(
                    "find of the {kind} {} just created as {created:?} answered {other:?}",
                    identity.name
                ));
            }
            Err(e) => return Err(failed(&format!("find of the {kind} {} just created", identity.name), e)),
        }
        if kind == ResourceKind::Run {
            let later = ObjectIdentity {
                created: Some(time_from_now(3600.0)),
                ..identity.clone()
            };
            match provider.find(&later).await {
                Ok(None) => {}
                other => {
                    return Err(format!(
                        "find of the run {} for a resource created one hour from now must answer None (the run \
                         belongs to an earlier resource of that name), got {other:?}",
                        identity.name
                    ));
                }
            }
        }
        Ok(())
    }
    .await;
    let deleted = match kind {
        ResourceKind::Pipeline => provider.delete_pipeline(&created).await,
        ResourceKind::Run => provider.delete_run(&created).await,
        ResourceKind::RunSchedule => provider.delete_run_schedule(&created).await,
        ResourceKind::Experiment => provider.delete_experiment(&created).await,
    };
    found?;
    deleted.map_err(|e| failed("cleaning up: delete", e))
}

/// Every request of `fixtures.invalid` fails with a permanent error.
pub async fn check_invalid_requests(
    provider: &dyn Provider,
    fixtures: &ConformanceFixtures,
) -> Vec<CheckResult> {
    if fixtures.invalid.is_empty() {
        return vec![CheckResult {
            name: "invalid requests".into(),
            outcome: Outcome::Skipped("the fixtures name no invalid request".into()),
        }];
    }
    let mut results = Vec::new();
    for operation in &fixtures.invalid {
        let result = match operation.apply(provider).await {
            Err(e) if e.is_permanent() => Ok(()),
            Err(e) => Err(format!(
                "expected a permanent error (Invalid or Unimplemented), got {e:?}"
            )),
            Ok(id) => Err(format!(
                "expected a permanent error, but it succeeded with {id:?}"
            )),
        };
        results.push(CheckResult::new(
            format!("invalid request: {}", operation.describe()),
            result,
        ));
    }
    results
}

/// Creates `fixtures.run` and waits for its event from `events`.
pub async fn check_events(
    provider: &dyn Provider,
    events: &mut dyn EventSource,
    fixtures: &ConformanceFixtures,
) -> CheckResult {
    let result: Result<(), String> = async {
        let run = &fixtures.run;
        provider
            .create_run(run)
            .await
            .map_err(|e| failed("create run", e))?;
        let delivery = tokio::time::timeout(fixtures.event_timeout, async {
            loop {
                match events.next_event().await {
                    Ok(Some(d)) if d.event.run_name.as_ref() == Some(&run.name) => return Ok(d),
                    Ok(Some(other)) => {
                        // Another run's event (an earlier check's): leave it to its source.
                        let _ = events.settle(other.receipt, DeliveryOutcome::Delivered).await;
                    }
                    Ok(None) => return Err("the event source ended before the run's event".to_string()),
                    Err(e) => return Err(format!("the event source failed: {e:?}")),
                }
            }
        })
        .await
        .map_err(|_| {
            format!(
                "no event named run {} within {:?}",
                run.name, fixtures.event_timeout
            )
        })??;
        let json =
            serde_json::to_value(&delivery.event).map_err(|e| format!("the event does not encode: {e}"))?;
        let event: RunCompletionEventData = serde_json::from_value(json.clone())
            .map_err(|e| format!("the event {json} does not parse: {e}"))?;
        if event.pipeline_name != run.pipeline_name {
            return Err(format!(
                "the event names pipeline {}, expected {}",
                event.pipeline_name, run.pipeline_name
            ));
        }
        if !run.run_configuration_name.name.is_empty()
            && event.run_configuration() != Some(&run.run_configuration_name)
        {
            return Err(format!(
                "the event names run configuration {:?}, expected {}",
                event.run_configuration_name, run.run_configuration_name
            ));
        }
        if event.run_id.is_empty() || event.provider.name.is_empty() {
            return Err(format!("the event lacks a runId or provider: {json}"));
        }
        events
            .settle(delivery.receipt, DeliveryOutcome::Delivered)
            .await
            .map_err(|e| failed("settle", e))
    }
    .await;
    CheckResult::new("run completion event", result)
}

/// Every check except events, against `provider`.
pub async fn run_all(provider: Arc<dyn Provider>, fixtures: &ConformanceFixtures) -> ConformanceReport {
    let mut report = ConformanceReport::default();
    for kind in ResourceKind::ALL {
        report
            .checks
            .push(check_lifecycle(provider.as_ref(), fixtures, kind).await);
        report
            .checks
            .push(check_delete_missing(provider.as_ref(), fixtures, kind).await);
        report
            .checks
            .push(check_find(provider.as_ref(), fixtures, kind).await);
    }
    report
        .checks
        .extend(check_invalid_requests(provider.as_ref(), fixtures).await);
    report
}

/// [`run_all`] plus [`check_events`] with `events`.
pub async fn run_all_with_events(
    provider: Arc<dyn Provider>,
    events: &mut dyn EventSource,
    fixtures: &ConformanceFixtures,
) -> ConformanceReport {
    let mut report = run_all(provider.clone(), fixtures).await;
    report
        .checks
        .push(check_events(provider.as_ref(), events, fixtures).await);
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stub::StubProvider;
    use kfp_core::provider::ProviderConfig;

    #[tokio::test]
    async fn the_stub_conforms() {
        let mut config = ProviderConfig::new(NamespacedName::new("ops", "stub"));
        config.parameters.insert("eventdelayseconds".into(), json!(0.05));
        let (stub, mut events) = StubProvider::with_events(&config).unwrap();
        let report = run_all_with_events(Arc::new(stub), &mut events, &ConformanceFixtures::stub()).await;
        assert!(report.passed(), "{report}");
        assert_eq!(report.checks.len(), 12 + 11 + 1, "{report}");
    }

    #[tokio::test]
    async fn find_is_required_unless_declared_unsupported_and_then_must_be() {
        let stub: Arc<dyn Provider> = Arc::new(StubProvider::new());
        // The stub finds runs only: without the declaration, its other kinds fail the kit.
        let mut fixtures = ConformanceFixtures::stub();
        fixtures.find_unsupported.clear();
        let text = run_all(stub.clone(), &fixtures).await.to_string();
        for kind in ["pipeline", "runschedule", "experiment"] {
            assert!(
                text.contains(&format!(
                    "FAILED  {kind} find: find of the {kind} conformance/never-created-{kind}"
                )),
                "{text}"
            );
        }
        assert!(text.contains("ok      run find"), "{text}");
        // Declaring runs unsupported when the stub finds them fails too.
        fixtures.find_unsupported = ResourceKind::ALL.to_vec();
        let text = run_all(stub, &fixtures).await.to_string();
        assert!(
            text.contains(
                "FAILED  run find: find of run is declared unsupported, so it must answer Unimplemented"
            ),
            "{text}"
        );
        assert!(text.contains("ok      pipeline find"), "{text}");
    }

    #[tokio::test]
    async fn a_broken_provider_fails_with_reasons() {
        let report = run_all(Arc::new(Broken), &ConformanceFixtures::stub()).await;
        assert!(!report.passed());
        let text = report.to_string();
        assert!(
            text.contains("FAILED  pipeline lifecycle: create returned an empty id"),
            "{text}"
        );
        assert!(text.contains("FAILED  run delete of a missing id"), "{text}");
        // No find (the trait's default answers Unimplemented), none declared unsupported.
        assert!(
            text.contains(
                "FAILED  run find: find of the run conformance/never-created-run that was never created"
            ),
            "{text}"
        );
        assert!(
            text.contains("expected a permanent error, but it succeeded"),
            "{text}"
        );
        assert!(report.into_result().is_err());
    }

    /// Returns empty ids, succeeds at everything else except deletes, which fail transiently.
    struct Broken;

    #[async_trait::async_trait]
    impl Provider for Broken {
        async fn create_pipeline(&self, _: &PipelineDefinitionWrapper) -> Result<String, ProviderError> {
            Ok(String::new())
        }
        async fn update_pipeline(
            &self,
            _: &PipelineDefinitionWrapper,
            _: &str,
        ) -> Result<String, ProviderError> {
            Ok("x".into())
        }
        async fn delete_pipeline(&self, _: &str) -> Result<(), ProviderError> {
            Err(ProviderError::transient("down"))
        }
        async fn create_run(&self, _: &RunDefinition) -> Result<String, ProviderError> {
            Ok("x".into())
        }
        async fn delete_run(&self, _: &str) -> Result<(), ProviderError> {
            Err(ProviderError::transient("down"))
        }
        async fn create_run_schedule(&self, _: &RunScheduleDefinition) -> Result<String, ProviderError> {
            Ok("x".into())
        }
        async fn update_run_schedule(
            &self,
            _: &RunScheduleDefinition,
            _: &str,
        ) -> Result<String, ProviderError> {
            Ok("x".into())
        }
        async fn delete_run_schedule(&self, _: &str) -> Result<(), ProviderError> {
            Err(ProviderError::transient("down"))
        }
        async fn create_experiment(&self, _: &ExperimentDefinition) -> Result<String, ProviderError> {
            Ok("x".into())
        }
        async fn update_experiment(
            &self,
            _: &ExperimentDefinition,
            _: &str,
        ) -> Result<String, ProviderError> {
            Ok("x".into())
        }
        async fn delete_experiment(&self, _: &str) -> Result<(), ProviderError> {
            Err(ProviderError::transient("down"))
        }
    }
}
