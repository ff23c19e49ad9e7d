//! The stub provider (docs/provider-service.md, "The stub provider"): no backend, predictable answers, and a
//! run-completion event for every run.
//!
//! Answers:
//! - success: the id `<op>-<kind>-succeeded` (`create-run-succeeded`, `update-pipeline-succeeded`, ...);
//! - [`ProviderError::Invalid`] (permanent, HTTP 400) with the message `<op> <kind> failed` when the resource
//!   *name* (the `name` of the definition's `namespace/name`) is `create-<kind>-fail` on create, or
//!   `update-runschedule-fail` / `update-experiment-fail` on update, or when the *id* is `update-pipeline-fail`
//!   on update or `delete-<kind>-fail` on delete. (The Go stub answered these with 500; they fail the same way
//!   every time, so this project classes them as permanent.)
//! - [`ProviderError::Transient`] (HTTP 500) with the message `<op> <kind> failed transiently` when the name or
//!   the id is `transient-fail`, to exercise retries.
//!
//! Lookups ([`Provider::find`]): runs only. The stub remembers the runs it created (the newest
//! [`REMEMBERED_RUNS`]: name, version, creation time) and finds them as a platform keeps its run history; for the
//! other kinds it has no state and answers `Unimplemented` (the operator then creates without looking).
//!
//! Events: every created run yields a `succeeded` [`RunCompletionEventData`] after a delay (parameter
//! `eventDelaySeconds`, default 5, fractions allowed), with `runId` `stub-run-<n>` (n counts from 1 per
//! provider), the pipeline, run and run configuration names of the run definition, the provider's name, and one
//! artifact per output the run definition asks for (`stub://<ns>/<run>/<component>/<artifact>/<index>`). The
//! provider and its [`StubEventSource`] share a bounded in-memory queue ([`EVENT_QUEUE_CAPACITY`]); when it is
//! full a run is still created but its event is dropped (logged). An event settled as failed is delivered again.
//!
//! Schedules (parameter `schedulePeriodSeconds`, unset by default: no scheduled runs): each RunSchedule starts a
//! run when it is created or updated and then every that many seconds, whatever its cron says, so a playground
//! sees scheduled runs and their dependants within seconds (`kfp-operator local` sets 60 s,
//! docs/getting-started.md). A scheduled run's event names the RunConfiguration that owns the schedule and no Run,
//! as a platform's scheduled run does. Its id is then `runschedule-<namespace>/<name>`, so that a delete stops it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kfp_core::definitions::{
    ExperimentDefinition, PipelineDefinitionWrapper, RunDefinition, RunScheduleDefinition,
};
use kfp_core::event::{RunCompletionEventData, RunCompletionStatus};
use kfp_core::provider::{
    DeliveryOutcome, DeliveryReceipt, EventDelivery, EventSource, ObjectIdentity, Provider, ProviderConfig,
    ProviderError,
};
use kfp_core::values::NamespacedName;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::ResourceKind;

/// The registry type name.
pub const TYPE_NAME: &str = "stub";
/// The name that makes any operation fail with [`ProviderError::Transient`].
pub const TRANSIENT_FAIL: &str = "transient-fail";
/// How many created runs may wait for their event.
pub const EVENT_QUEUE_CAPACITY: usize = 1024;
/// How many created runs the stub remembers for [`Provider::find`].
pub const REMEMBERED_RUNS: usize = 10_000;
/// Default delay between creating a run and its event.
pub const DEFAULT_EVENT_DELAY: Duration = Duration::from_secs(5);
/// The Provider parameter that makes the stub run its schedules, every that many seconds.
pub const SCHEDULE_PERIOD_PARAMETER: &str = "schedulePeriodSeconds";

struct CreatedRun {
    run: RunDefinition,
    created: chrono::DateTime<chrono::Utc>,
    due: Instant,
}

/// The stub provider. Build it with [`StubProvider::new`] (no events) or [`StubProvider::with_events`].
pub struct StubProvider {
    events: Option<mpsc::Sender<CreatedRun>>,
    delay: Duration,
    runs: Arc<Mutex<RunHistory>>,
    schedules: Schedules,
}

/// The schedules a stub runs (`schedulePeriodSeconds`): one task per RunSchedule, shared by every provider built
/// for one name (as the run history is).
#[derive(Clone, Default)]
struct Schedules {
    period: Option<Duration>,
    running: Arc<Mutex<HashMap<String, tokio::task::AbortHandle>>>,
}

impl Schedules {
    fn id(schedule: &NamespacedName) -> String {
        format!("runschedule-{schedule}")
    }

    /// Starts (or restarts, on update) `schedule`'s runs; its id. Runs go to `events` while that queue is open.
    fn start(
        &self,
        schedule: &RunScheduleDefinition,
        events: &mpsc::Sender<CreatedRun>,
        delay: Duration,
    ) -> Option<String> {
        let period = self.period?;
        let id = Self::id(&schedule.name);
        let events = events.downgrade();
        let run = RunDefinition {
            name: NamespacedName::default(),
            version: schedule.version.clone(),
            pipeline_name: schedule.pipeline_name.clone(),
            pipeline_version: schedule.pipeline_version.clone(),
            run_configuration_name: schedule.run_configuration_name.clone(),
            experiment_name: schedule.experiment_name.clone(),
            parameters: schedule.parameters.clone(),
            artifacts: schedule.artifacts.clone(),
            ..RunDefinition::default()
        };
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            loop {
                ticks.tick().await;
                // The provider and its event source are gone: so is the schedule.
                let Some(events) = events.upgrade() else { return };
                let created = CreatedRun {
                    run: run.clone(),
                    created: chrono::Utc::now(),
                    due: Instant::now() + delay,
                };
                if events.try_send(created).is_err() {
                    tracing::warn!("the stub's event queue is full or closed: a scheduled run has no event");
                }
            }
        });
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(previous) = running.insert(id.clone(), task.abort_handle()) {
            previous.abort();
        }
        Some(id)
    }

    fn stop(&self, id: &str) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(task) = running.remove(id) {
            task.abort();
        }
    }
}

/// The runs created, oldest first: `(name, version, created)`.
#[derive(Default)]
struct RunHistory(VecDeque<(NamespacedName, String, chrono::DateTime<chrono::Utc>)>);

impl RunHistory {
    fn record(&mut self, run: &RunDefinition, created: chrono::DateTime<chrono::Utc>) {
        if self.0.len() >= REMEMBERED_RUNS {
            self.0.pop_front();
        }
        self.0.push_back((run.name.clone(), run.version.clone(), created));
    }

    fn contains(&self, identity: &ObjectIdentity) -> bool {
        self.0.iter().rev().any(|(name, version, created)| {
            *name == identity.name
                && *version == identity.version
                && identity.created.as_ref().is_none_or(|resource| {
                    // Whole seconds, as Kubernetes keeps creationTimestamp.
                    created.timestamp() >= resource.0.as_second()
                })
        })
    }
}

impl StubProvider {
    /// A stub without events.
    pub fn new() -> Self {
        Self {
            events: None,
            delay: DEFAULT_EVENT_DELAY,
            runs: Arc::default(),
            schedules: Schedules::default(),
        }
    }

    /// A stub and its event source; events are named after `config.name` and come `event_delay(config)` after
    /// each run is created.
    pub fn with_events(config: &ProviderConfig) -> Result<(Self, StubEventSource), ProviderError> {
        let delay = event_delay(config)?;
        let (tx, rx) = mpsc::channel(EVENT_QUEUE_CAPACITY);
        let provider = Self {
            events: Some(tx),
            delay,
            runs: Arc::default(),
            schedules: Schedules {
                period: schedule_period(config)?,
                running: Arc::default(),
            },
        };
        Ok((provider, StubEventSource::new(config.name.clone(), rx)))
    }
}

impl Default for StubProvider {
    fn default() -> Self {
        Self::new()
    }
}

/// The `eventDelaySeconds` parameter (a non-negative number, default 5).
pub fn event_delay(config: &ProviderConfig) -> Result<Duration, ProviderError> {
    Ok(seconds(config, "eventDelaySeconds", false)?.unwrap_or(DEFAULT_EVENT_DELAY))
}

/// Whether a Provider with these `spec.parameters` runs its schedules (`schedulePeriodSeconds` set, any case).
pub fn runs_schedules(parameters: &kfp_core::values::JsonMap) -> bool {
    parameters
        .keys()
        .any(|k| k.eq_ignore_ascii_case(SCHEDULE_PERIOD_PARAMETER))
}

/// The `schedulePeriodSeconds` parameter (a positive number; unset: the stub runs no schedules).
pub fn schedule_period(config: &ProviderConfig) -> Result<Option<Duration>, ProviderError> {
    seconds(config, SCHEDULE_PERIOD_PARAMETER, true)
}

/// A parameter holding seconds (fractions allowed), non-negative or, with `positive`, above zero.
fn seconds(config: &ProviderConfig, name: &str, positive: bool) -> Result<Option<Duration>, ProviderError> {
    let Some(value) = config.parameter_string(name) else {
        return Ok(None);
    };
    let what = if positive { "positive" } else { "non-negative" };
    value
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .filter(|d| !positive || !d.is_zero())
        .map(Some)
        .ok_or_else(|| {
            let shown: String = value.chars().take(64).collect();
            ProviderError::invalid(format!(
                "parameter {name} {shown:?} is not a {what} number of seconds"
            ))
        })
}

fn check(
    op: &str,
    kind: ResourceKind,
    name: Option<&str>,
    id: Option<&str>,
) -> Result<String, ProviderError> {
    if name == Some(TRANSIENT_FAIL) || id == Some(TRANSIENT_FAIL) {
        return Err(ProviderError::transient(format!(
            "{op} {kind} failed transiently"
        )));
    }
    let fail = format!("{op}-{kind}-fail");
    let by_name = matches!(
        (op, kind),
        ("create", _) | ("update", ResourceKind::RunSchedule | ResourceKind::Experiment)
    );
    let by_id = matches!((op, kind), ("delete", _) | ("update", ResourceKind::Pipeline));
    if (by_name && name == Some(fail.as_str())) || (by_id && id == Some(fail.as_str())) {
        return Err(ProviderError::invalid(format!("{op} {kind} failed")));
    }
    Ok(format!("{op}-{kind}-succeeded"))
}

impl StubProvider {
    /// Runs `schedule` when this stub runs schedules and has events; its id then.
    fn run_schedule(&self, schedule: &RunScheduleDefinition) -> Option<String> {
        self.schedules.start(schedule, self.events.as_ref()?, self.delay)
    }
}

/// The `name` part of a pipeline definition's `name` (`ns/name`).
fn pipeline_name(pipeline: &PipelineDefinitionWrapper) -> Option<String> {
    let full = pipeline.pipeline_definition.get("name")?.as_str()?;
    Some(full.rsplit('/').next().unwrap_or(full).to_string())
}

#[async_trait::async_trait]
impl Provider for StubProvider {
    async fn create_pipeline(&self, pipeline: &PipelineDefinitionWrapper) -> Result<String, ProviderError> {
        check(
            "create",
            ResourceKind::Pipeline,
            pipeline_name(pipeline).as_deref(),
            None,
        )
    }

    async fn update_pipeline(
        &self,
        pipeline: &PipelineDefinitionWrapper,
        id: &str,
    ) -> Result<String, ProviderError> {
        check(
            "update",
            ResourceKind::Pipeline,
            pipeline_name(pipeline).as_deref(),
            Some(id),
        )
    }

    async fn delete_pipeline(&self, id: &str) -> Result<(), ProviderError> {
        check("delete", ResourceKind::Pipeline, None, Some(id)).map(drop)
    }

    async fn create_run(&self, run: &RunDefinition) -> Result<String, ProviderError> {
        let id = check("create", ResourceKind::Run, Some(&run.name.name), None)?;
        let now = chrono::Utc::now();
        // The history holds no invariant a panic could break half-way: keep using it.
        self.runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(run, now);
        if let Some(events) = &self.events {
            let created = CreatedRun {
                run: run.clone(),
                created: now,
                due: Instant::now() + self.delay,
            };
            if events.try_send(created).is_err() {
                tracing::warn!(run = %run.name, "the stub's event queue is full or closed: no event for this run");
            }
        }
        Ok(id)
    }

    async fn delete_run(&self, id: &str) -> Result<(), ProviderError> {
        check("delete", ResourceKind::Run, None, Some(id)).map(drop)
    }

    async fn create_run_schedule(&self, schedule: &RunScheduleDefinition) -> Result<String, ProviderError> {
        let id = check(
            "create",
            ResourceKind::RunSchedule,
            Some(&schedule.name.name),
            None,
        )?;
        Ok(self.run_schedule(schedule).unwrap_or(id))
    }

    async fn update_run_schedule(
        &self,
        schedule: &RunScheduleDefinition,
        id: &str,
    ) -> Result<String, ProviderError> {
        let id = check(
            "update",
            ResourceKind::RunSchedule,
            Some(&schedule.name.name),
            Some(id),
        )?;
        Ok(self.run_schedule(schedule).unwrap_or(id))
    }

    async fn delete_run_schedule(&self, id: &str) -> Result<(), ProviderError> {
        check("delete", ResourceKind::RunSchedule, None, Some(id))?;
        self.schedules.stop(id);
        Ok(())
    }

    async fn create_experiment(&self, experiment: &ExperimentDefinition) -> Result<String, ProviderError> {
        check(
            "create",
            ResourceKind::Experiment,
            Some(&experiment.name.name),
            None,
        )
    }

    async fn update_experiment(
        &self,
        experiment: &ExperimentDefinition,
        id: &str,
    ) -> Result<String, ProviderError> {
        check(
            "update",
            ResourceKind::Experiment,
            Some(&experiment.name.name),
            Some(id),
        )
    }

    async fn delete_experiment(&self, id: &str) -> Result<(), ProviderError> {
        check("delete", ResourceKind::Experiment, None, Some(id)).map(drop)
    }

    async fn find(&self, identity: &ObjectIdentity) -> Result<Option<String>, ProviderError> {
        if identity.kind != ResourceKind::Run {
            return Err(ProviderError::unimplemented(format!(
                "the stub provider keeps no {}s to look up",
                identity.kind
            )));
        }
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        Ok(runs
            .contains(identity)
            .then(|| format!("create-{}-succeeded", ResourceKind::Run)))
    }
}

/// The events of a [`StubProvider`]: one `succeeded` event per created run, after the configured delay.
pub struct StubEventSource {
    provider: NamespacedName,
    created: mpsc::Receiver<CreatedRun>,
    redeliver: VecDeque<EventDelivery>,
    in_flight: HashMap<DeliveryReceipt, EventDelivery>,
    counter: AtomicU64,
    /// The hub this source was taken from: it goes back there when dropped, with its undelivered events.
    home: Option<StubHub>,
}

impl StubEventSource {
    fn new(provider: NamespacedName, created: mpsc::Receiver<CreatedRun>) -> Self {
        Self {
            provider,
            created,
            redeliver: VecDeque::new(),
            in_flight: HashMap::new(),
            counter: AtomicU64::new(0),
            home: None,
        }
    }

    fn event(&self, created: CreatedRun) -> RunCompletionEventData {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let time = |t: chrono::DateTime<chrono::Utc>| {
            serde_json::from_value(serde_json::Value::String(
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ))
            .ok()
        };
        let run = created.run;
        let pipeline_components = stub_components(&run);
        RunCompletionEventData {
            status: RunCompletionStatus::Succeeded,
            pipeline_name: run.pipeline_name,
            run_configuration_name: Some(run.run_configuration_name).filter(|n| !n.name.is_empty()),
            run_name: Some(run.name).filter(|n| !n.name.is_empty()),
            run_id: format!("stub-run-{n}"),
            run_start_time: time(created.created),
            run_end_time: time(chrono::Utc::now()),
            pipeline_components,
            provider: self.provider.clone(),
        }
    }
}

/// One component artifact per output the run asks for (`spec.artifacts` of its Run or RunConfiguration), with
/// instances up to the path's index at `stub://<run ns>/<run name>/<component>/<artifact>/<index>` and no
/// metadata (so paths with a filter select nothing): artifact passing between RunConfigurations works end to end
/// with the stub.
fn stub_components(run: &RunDefinition) -> Vec<kfp_core::event::PipelineComponent> {
    use kfp_core::event::{ComponentArtifact, ComponentArtifactInstance, PipelineComponent};
    // A scheduled run has no Run: its artifacts sit under the RunConfiguration that owns the schedule.
    let owner = if run.name.name.is_empty() {
        &run.run_configuration_name
    } else {
        &run.name
    };
    let mut components: Vec<PipelineComponent> = Vec::new();
    for output in &run.artifacts {
        let path = &output.path;
        let instances = (0..=path.index)
            .map(|index| {
                let uri = format!(
                    "stub://{}/{}/{}/{}/{index}",
                    owner.namespace, owner.name, path.component, path.artifact
                );
                ComponentArtifactInstance::new(uri, serde_json::Map::new())
            })
            .collect();
        let artifact = ComponentArtifact {
            name: path.artifact.clone(),
            artifacts: instances,
        };
        match components.iter_mut().find(|c| c.name == path.component) {
            Some(component) => component.component_artifacts.push(artifact),
            None => components.push(PipelineComponent {
                name: path.component.clone(),
                component_artifacts: vec![artifact],
            }),
        }
    }
    components
}

#[async_trait::async_trait]
impl EventSource for StubEventSource {
    async fn next_event(&mut self) -> Result<Option<EventDelivery>, ProviderError> {
        let delivery = if let Some(delivery) = self.redeliver.pop_front() {
            delivery
        } else {
            let Some(created) = self.created.recv().await else {
                return Ok(None);
            };
            tokio::time::sleep_until(created.due).await;
            let event = self.event(created);
            EventDelivery {
                receipt: DeliveryReceipt(event.run_id.clone()),
                event,
            }
        };
        self.in_flight.insert(delivery.receipt.clone(), delivery.clone());
        Ok(Some(delivery))
    }

    async fn settle(
        &mut self,
        receipt: DeliveryReceipt,
        outcome: DeliveryOutcome,
    ) -> Result<(), ProviderError> {
        match self.in_flight.remove(&receipt) {
            Some(delivery) if !outcome.is_settled() => self.redeliver.push_back(delivery),
            Some(_) => {}
            None => {
                return Err(ProviderError::not_found(format!(
                    "the stub has no event in flight with receipt {:?}",
                    receipt.0
                )));
            }
        }
        Ok(())
    }
}

impl Drop for StubEventSource {
    /// A source taken from a [`StubHub`] goes back to it, with the events not yet delivered (in flight ones
    /// first), so that the next [`StubHub::event_source`] of the name continues where this one stopped.
    fn drop(&mut self) {
        let Some(hub) = self.home.take() else {
            return;
        };
        let Ok(mut entries) = hub.entries.lock() else {
            return;
        };
        if let Some(entry) = entries.get_mut(&self.provider)
            && entry.source.is_none()
        {
            let (_, closed) = mpsc::channel(1);
            let mut returned = StubEventSource::new(
                self.provider.clone(),
                std::mem::replace(&mut self.created, closed),
            );
            returned.redeliver = self.in_flight.drain().map(|(_, d)| d).collect();
            returned.redeliver.extend(self.redeliver.drain(..));
            returned.counter = AtomicU64::new(self.counter.load(Ordering::Relaxed));
            entry.source = Some(returned);
        }
    }
}

/// Pairs stub providers with their event sources when a registry builds them separately: both factories of the
/// `stub` registry entry share one hub, and the provider and the event source built for the same provider name
/// share one queue. The event source of a name can be built once at a time: a dropped one returns to the hub.
#[derive(Clone, Default)]
pub struct StubHub {
    entries: Arc<Mutex<HashMap<NamespacedName, HubEntry>>>,
}

struct HubEntry {
    sender: mpsc::Sender<CreatedRun>,
    delay: Duration,
    /// Shared by every provider built for this name, so a rebuilt one still finds the runs.
    runs: Arc<Mutex<RunHistory>>,
    schedules: Schedules,
    source: Option<StubEventSource>,
}

impl StubHub {
    fn with_entry<T>(
        &self,
        config: &ProviderConfig,
        f: impl FnOnce(&mut HubEntry) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| ProviderError::transient("the stub hub is poisoned"))?;
        let entry = match entries.entry(config.name.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let (provider, source) = StubProvider::with_events(config)?;
                let sender = provider
                    .events
                    .ok_or_else(|| ProviderError::transient("stub without events"))?;
                v.insert(HubEntry {
                    sender,
                    delay: provider.delay,
                    runs: provider.runs,
                    schedules: provider.schedules,
                    source: Some(source),
                })
            }
        };
        f(entry)
    }

    /// The stub provider for `config.name`.
    pub fn provider(&self, config: &ProviderConfig) -> Result<Arc<StubProvider>, ProviderError> {
        self.with_entry(config, |entry| {
            Ok(Arc::new(StubProvider {
                events: Some(entry.sender.clone()),
                delay: entry.delay,
                runs: entry.runs.clone(),
                schedules: entry.schedules.clone(),
            }))
        })
    }

    /// The event source for `config.name`; fails if it was built before.
    pub fn event_source(&self, config: &ProviderConfig) -> Result<StubEventSource, ProviderError> {
        let mut source = self.with_entry(config, |entry| {
            entry.source.take().ok_or_else(|| {
                ProviderError::invalid(format!(
                    "the event source of stub provider {} is in use",
                    config.name
                ))
            })
        })?;
        source.home = Some(self.clone());
        Ok(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(name: &str) -> RunDefinition {
        RunDefinition {
            name: NamespacedName::new("ns", name),
            version: "v1".into(),
            pipeline_name: NamespacedName::new("ns", "p"),
            run_configuration_name: NamespacedName::new("ns", "rc"),
            ..RunDefinition::default()
        }
    }

    fn experiment(name: &str) -> ExperimentDefinition {
        ExperimentDefinition {
            name: NamespacedName::new("ns", name),
            version: "v".into(),
            description: String::new(),
        }
    }

    fn pipeline(name: &str) -> PipelineDefinitionWrapper {
        PipelineDefinitionWrapper {
            pipeline_definition: json!({"name": format!("ns/{name}")}),
            compiled_pipeline: json!({}),
        }
    }

    #[tokio::test]
    async fn finds_the_runs_it_created_by_name_version_and_time() {
        let stub = StubProvider::new();
        let identity = |name: &str, version: &str, created: Option<&str>| {
            ObjectIdentity::new(
                ResourceKind::Run,
                NamespacedName::new("ns", name),
                version,
                created.map(|c| serde_json::from_value(json!(c)).unwrap()),
            )
        };
        assert_eq!(stub.find(&identity("r", "v1", None)).await.unwrap(), None);
        stub.create_run(&run("r")).await.unwrap();
        let id = Some("create-run-succeeded".to_string());
        assert_eq!(stub.find(&identity("r", "v1", None)).await.unwrap(), id);
        assert_eq!(
            stub.find(&identity("r", "v1", Some("2000-01-01T00:00:00Z")))
                .await
                .unwrap(),
            id
        );
        // Another version, another name, or a resource created after the run: not this run.
        assert_eq!(stub.find(&identity("r", "v2", None)).await.unwrap(), None);
        assert_eq!(stub.find(&identity("other", "v1", None)).await.unwrap(), None);
        assert_eq!(
            stub.find(&identity("r", "v1", Some("2999-01-01T00:00:00Z")))
                .await
                .unwrap(),
            None
        );
        let pipeline = ObjectIdentity::new(ResourceKind::Pipeline, NamespacedName::new("ns", "p"), "", None);
        assert!(matches!(
            stub.find(&pipeline).await,
            Err(ProviderError::Unimplemented(_))
        ));
    }

    #[tokio::test]
    async fn answers_follow_the_names_and_ids() {
        let stub = StubProvider::new();
        assert_eq!(
            stub.create_pipeline(&pipeline("p")).await.unwrap(),
            "create-pipeline-succeeded"
        );
        assert_eq!(
            stub.create_pipeline(&pipeline("create-pipeline-fail")).await,
            Err(ProviderError::invalid("create pipeline failed"))
        );
        assert_eq!(
            stub.update_pipeline(&pipeline("p"), "update-pipeline-fail").await,
            Err(ProviderError::invalid("update pipeline failed"))
        );
        assert_eq!(
            stub.update_pipeline(&pipeline("update-pipeline-fail"), "id")
                .await
                .unwrap(),
            "update-pipeline-succeeded"
        );
        assert_eq!(stub.create_run(&run("r")).await.unwrap(), "create-run-succeeded");
        assert_eq!(
            stub.create_run(&run("create-run-fail")).await,
            Err(ProviderError::invalid("create run failed"))
        );
        assert_eq!(
            stub.delete_run("delete-run-fail").await,
            Err(ProviderError::invalid("delete run failed"))
        );
        assert_eq!(stub.delete_run("x").await, Ok(()));
        assert_eq!(
            stub.update_experiment(&experiment("update-experiment-fail"), "x")
                .await,
            Err(ProviderError::invalid("update experiment failed"))
        );
        assert_eq!(
            stub.update_experiment(&experiment("e"), "x").await.unwrap(),
            "update-experiment-succeeded"
        );
        assert_eq!(
            stub.delete_experiment("delete-experiment-fail").await,
            Err(ProviderError::invalid("delete experiment failed"))
        );
        assert_eq!(
            stub.create_experiment(&experiment(TRANSIENT_FAIL)).await,
            Err(ProviderError::transient("create experiment failed transiently"))
        );
        assert_eq!(
            stub.delete_run_schedule(TRANSIENT_FAIL).await,
            Err(ProviderError::transient("delete runschedule failed transiently"))
        );
    }

    #[tokio::test]
    async fn created_runs_complete_after_the_delay() {
        let mut config = ProviderConfig::new(NamespacedName::new("ops", "stub"));
        config.parameters.insert("eventdelayseconds".into(), json!(0.2));
        let (stub, mut source) = StubProvider::with_events(&config).unwrap();
        let start = Instant::now();
        stub.create_run(&run("r1")).await.unwrap();
        stub.create_run(&run("create-run-fail")).await.unwrap_err();
        let delivery = source.next_event().await.unwrap().unwrap();
        assert!(start.elapsed() >= Duration::from_millis(200));
        let event = serde_json::to_value(&delivery.event).unwrap();
        assert_eq!(event["status"], "succeeded");
        assert_eq!(event["runId"], "stub-run-1");
        assert_eq!(event["runName"], "ns/r1");
        assert_eq!(event["runConfigurationName"], "ns/rc");
        assert_eq!(event["pipelineName"], "ns/p");
        assert_eq!(event["provider"], "ops/stub");
        assert!(event["runStartTime"].is_string() && event["runEndTime"].is_string());
        // A failed delivery comes back; a delivered one does not.
        source
            .settle(delivery.receipt.clone(), DeliveryOutcome::Failed)
            .await
            .unwrap();
        let again = source.next_event().await.unwrap().unwrap();
        assert_eq!(again.event.run_id, "stub-run-1");
        source
            .settle(again.receipt.clone(), DeliveryOutcome::Delivered)
            .await
            .unwrap();
        assert!(
            source
                .settle(again.receipt, DeliveryOutcome::Delivered)
                .await
                .unwrap_err()
                .is_not_found()
        );
        drop(stub);
        assert_eq!(source.next_event().await.unwrap(), None);
    }

    #[tokio::test]
    async fn schedules_run_every_period_until_deleted() {
        let mut config = ProviderConfig::new(NamespacedName::new("ops", "stub"));
        config.parameters.insert("eventdelayseconds".into(), json!(0));
        config
            .parameters
            .insert("scheduleperiodseconds".into(), json!(0.1));
        let (stub, mut source) = StubProvider::with_events(&config).unwrap();
        let schedule = RunScheduleDefinition {
            name: NamespacedName::new("ns", "rc-schedule"),
            pipeline_name: NamespacedName::new("ns", "p"),
            run_configuration_name: NamespacedName::new("ns", "rc"),
            ..RunScheduleDefinition::default()
        };
        let id = stub.create_run_schedule(&schedule).await.unwrap();
        assert_eq!(id, "runschedule-ns/rc-schedule");
        for n in 1..=2 {
            let delivery = source.next_event().await.unwrap().unwrap();
            let event = serde_json::to_value(&delivery.event).unwrap();
            assert_eq!(event["runId"], format!("stub-run-{n}"));
            assert_eq!(event["runConfigurationName"], "ns/rc");
            assert_eq!(event["pipelineName"], "ns/p");
            assert!(event.get("runName").is_none_or(|n| n.is_null()), "{event}");
            source
                .settle(delivery.receipt, DeliveryOutcome::Delivered)
                .await
                .unwrap();
        }
        stub.delete_run_schedule(&id).await.unwrap();
        // Deleted: no further run; dropping the provider closes the queue, so the source ends.
        drop(stub);
        let rest = tokio::time::timeout(Duration::from_secs(5), async {
            let mut more = 0;
            while let Some(delivery) = source.next_event().await.unwrap() {
                more += 1;
                let _ = source.settle(delivery.receipt, DeliveryOutcome::Delivered).await;
            }
            more
        })
        .await
        .expect("the source ends once the provider is dropped and its schedule deleted");
        assert!(rest <= 1, "at most the run already queued at the delete: {rest}");
    }

    #[test]
    fn schedule_period_parameter() {
        let mut config = ProviderConfig::new(NamespacedName::new("ops", "stub"));
        assert_eq!(schedule_period(&config).unwrap(), None);
        config
            .parameters
            .insert("scheduleperiodseconds".into(), json!("15"));
        assert_eq!(schedule_period(&config).unwrap(), Some(Duration::from_secs(15)));
        config.parameters.insert("scheduleperiodseconds".into(), json!(0));
        assert_eq!(
            schedule_period(&config).unwrap_err().to_string(),
            "parameter schedulePeriodSeconds \"0\" is not a positive number of seconds"
        );
    }

    #[test]
    fn event_delay_parameter() {
        let mut config = ProviderConfig::new(NamespacedName::new("ops", "stub"));
        assert_eq!(event_delay(&config).unwrap(), DEFAULT_EVENT_DELAY);
        config
            .parameters
            .insert("eventdelayseconds".into(), json!("0.25"));
        assert_eq!(event_delay(&config).unwrap(), Duration::from_millis(250));
        config.parameters.insert("eventdelayseconds".into(), json!(-1));
        assert!(
            event_delay(&config)
                .unwrap_err()
                .to_string()
                .contains("eventDelaySeconds")
        );
    }

    #[test]
    fn the_hub_pairs_provider_and_event_source() {
        let hub = StubHub::default();
        let config = ProviderConfig::new(NamespacedName::new("ops", "stub"));
        let _source = hub.event_source(&config).unwrap();
        let _provider = hub.provider(&config).unwrap();
        assert!(hub.event_source(&config).is_err());
    }

    #[tokio::test]
    async fn a_dropped_event_source_returns_to_the_hub_with_its_events() {
        let hub = StubHub::default();
        let mut config = ProviderConfig::new(NamespacedName::new("ops", "stub"));
        config.parameters.insert("eventdelayseconds".into(), json!(0));
        let provider = hub.provider(&config).unwrap();
        let mut source = hub.event_source(&config).unwrap();
        provider.create_run(&run("r1")).await.unwrap();
        provider.create_run(&run("r2")).await.unwrap();
        let first = source.next_event().await.unwrap().unwrap();
        assert_eq!(first.event.run_id, "stub-run-1");
        drop(source);
        let mut again = hub.event_source(&config).unwrap();
        let redelivered = again.next_event().await.unwrap().unwrap();
        assert_eq!(
            redelivered.event.run_id, "stub-run-1",
            "the unsettled event comes back"
        );
        again
            .settle(redelivered.receipt, DeliveryOutcome::Delivered)
            .await
            .unwrap();
        let next = again.next_event().await.unwrap().unwrap();
        assert_eq!(next.event.run_id, "stub-run-2", "the count goes on");
    }
}
