//! The controllers of Pipeline, Run, RunSchedule and Experiment: the generic state machine (docs/controllers.md, "The
//! state machine of Pipelines, Runs, RunSchedules and Experiments"; planned by `kfp_core::reconcile::generic` and
//! `::run`), carried out through the [`Executor`](kfp_core::executor::Executor).
//!
//! Watches (docs/controllers.md): the kind itself; Workflows mapped back to their owner by label (Argo executor) or
//! executor completions (direct executor); for Runs also Pipelines (by `spec.pipeline`, same namespace) and the
//! RunConfigurations their parameters read.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use kfp_core::executor::{ResourceKind, ResourceRef};
use kfp_core::reconcile::Plan;
use kfp_core::reconcile::dependencies::{PipelineObservation, referenced_run_configurations};
use kfp_core::reconcile::generic::{
    Observed, ResourceCommand, StatusLike, plan_experiment, plan_pipeline, plan_run_schedule,
};
use kfp_core::reconcile::run::{RunInputs, plan_run};
use kfp_core::resources::FINALIZER;
use kfp_core::resources::v1beta1::{
    Conditions, Experiment, Pipeline, Provider, Run, RunConfiguration, RunSchedule, RunStatus, Status,
};
use kfp_core::values::NamespacedName;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{
    Context, ControllerError, action, completion_triggers, drive, error_policy, get_opt, instrumented,
    log_run_result, now, replace_status, share_shutdown,
};
use crate::executor::argo;
use crate::health::ReadinessFlag;

/// A kind driven by the generic state machine.
pub trait SynchronizedKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The kind's status type.
    type Status: StatusLike + Conditions + Serialize + Debug + Send + Sync;
    /// What the planner needs beyond the object, its Provider and its outcomes.
    type Inputs: Send + Sync;
    /// The kind, as executors and workflow labels name it.
    const KIND: ResourceKind;

    /// The object's status, if it has one.
    fn status(&self) -> Option<&Self::Status>;
    /// The object's status, to fill in.
    fn status_mut(&mut self) -> &mut Option<Self::Status>;
    /// `spec.provider`: the Provider the object names.
    fn provider(&self) -> &NamespacedName;
    /// Reads what [`SynchronizedKind::plan`] needs beyond the object (the Pipeline of a Run, the RunConfigurations it
    /// reads, ...).
    fn gather(
        ctx: &Context,
        object: &Self,
    ) -> impl Future<Output = Result<Self::Inputs, ControllerError>> + Send;
    /// The kind's pure planner.
    fn plan(observed: &Observed<'_, Self>, inputs: &Self::Inputs) -> Plan<ResourceCommand<Self::Status>>;
}

macro_rules! simple_kind {
    ($kind:ty, $resource_kind:expr, $planner:path) => {
        impl SynchronizedKind for $kind {
            type Status = Status;
            type Inputs = ();
            const KIND: ResourceKind = $resource_kind;

            fn status(&self) -> Option<&Status> {
                self.status.as_ref()
            }
            fn status_mut(&mut self) -> &mut Option<Status> {
                &mut self.status
            }
            fn provider(&self) -> &NamespacedName {
                &self.spec.provider
            }
            async fn gather(_: &Context, _: &Self) -> Result<(), ControllerError> {
                Ok(())
            }
            fn plan(observed: &Observed<'_, Self>, _: &()) -> Plan<ResourceCommand<Status>> {
                $planner(observed)
            }
        }
    };
}

simple_kind!(Pipeline, ResourceKind::Pipeline, plan_pipeline);
simple_kind!(RunSchedule, ResourceKind::RunSchedule, plan_run_schedule);
simple_kind!(Experiment, ResourceKind::Experiment, plan_experiment);

impl SynchronizedKind for Run {
    type Status = RunStatus;
    type Inputs = RunInputs;
    const KIND: ResourceKind = ResourceKind::Run;

    fn status(&self) -> Option<&RunStatus> {
        self.status.as_ref()
    }
    fn status_mut(&mut self) -> &mut Option<RunStatus> {
        &mut self.status
    }
    fn provider(&self) -> &NamespacedName {
        &self.spec.provider
    }

    async fn gather(ctx: &Context, run: &Run) -> Result<RunInputs, ControllerError> {
        let namespace = run.namespace().unwrap_or_default();
        let pipeline = if run.spec.pipeline.version.is_empty() {
            match ctx.pipelines.get(&namespace, &run.spec.pipeline.name) {
                Some(observed) => observed,
                None => {
                    let api: Api<Pipeline> = Api::namespaced(ctx.client.clone(), &namespace);
                    get_opt(&api, &run.spec.pipeline.name, "Pipeline")
                        .await?
                        .map(|p| pipeline_observation(&p))
                }
            }
        } else {
            None
        };
        let mut run_configurations = std::collections::BTreeMap::new();
        for key in referenced_run_configurations(&run.spec.parameters, &[], &namespace) {
            if let Some(rc) = get_run_configuration(ctx, &key).await? {
                let succeeded = rc.status.map(|s| s.latest_runs.succeeded).unwrap_or_default();
                run_configurations.insert(key, succeeded);
            }
        }
        Ok(RunInputs {
            pipeline,
            run_configurations,
            run_completion_ttl: ctx.config.spec.run_completion_ttl,
        })
    }

    fn plan(observed: &Observed<'_, Run>, inputs: &RunInputs) -> Plan<ResourceCommand<RunStatus>> {
        plan_run(observed, inputs)
    }
}

/// What the Run and RunConfiguration planners need to know of a Pipeline.
pub fn pipeline_observation(pipeline: &Pipeline) -> PipelineObservation {
    let status = pipeline.status.clone().unwrap_or_default();
    PipelineObservation {
        state: status.synchronization_state(),
        version: status.version,
    }
}

/// The Pipeline changes Runs and RunConfigurations react to: the version they would observe (docs/controllers.md,
/// "Runs": the version of a `Succeeded` Pipeline, none once `Deleted`; other states leave it as it was). A Pipeline's
/// own progress (finalizer, `Creating`, `Updating`, its Events) does not wake its dependants: with many Runs per
/// Pipeline those wake-ups were most of the Run controller's reconciles.
pub fn pipeline_versions(
    ctx: &Context,
) -> impl futures::Stream<Item = Result<Pipeline, watcher::Error>> + Send + 'static {
    pipeline_versions_observed(ctx, None)
}

/// [`pipeline_versions`], recording every event in `observations` before anything is woken (the Run controller's
/// stream: its reconciles read the observations instead of the Pipeline).
pub fn pipeline_versions_observed(
    ctx: &Context,
    observations: Option<Arc<super::PipelineObservations>>,
) -> impl futures::Stream<Item = Result<Pipeline, watcher::Error>> + Send + 'static {
    use futures::StreamExt;
    use std::collections::HashMap;
    fn seen_version(pipeline: &Pipeline) -> u64 {
        use std::hash::{Hash, Hasher};
        let observation = pipeline_observation(pipeline);
        let seen = match observation.state {
            kfp_core::values::SynchronizationState::Succeeded => Some(observation.version.as_str()),
            kfp_core::values::SynchronizationState::Deleted => Some(""),
            _ => None,
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (seen, pipeline.metadata.deletion_timestamp.is_some()).hash(&mut hasher);
        hasher.finish()
    }
    // kube's `predicate_filter` keys its cache on each Pipeline's name, namespace and uid (about 350 bytes per
    // Pipeline, and two controllers watch them); a hash of namespace/name and one of the seen version are enough.
    // Entries go with the Pipeline's Delete event; one deleted while the watch was down stays (16 bytes).
    let seen: std::sync::Mutex<HashMap<u64, u64>> = std::sync::Mutex::default();
    let key_of = |pipeline: &Pipeline| -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (&pipeline.metadata.namespace, &pipeline.metadata.name).hash(&mut hasher);
        hasher.finish()
    };
    // Its own backoff: a stream given to `watches_stream` is retried as soon as it is polled again.
    let watch = super::tolerant::watch::<Pipeline>(ctx, watcher::Config::default());
    watch.filter_map(move |event| {
        if let (Some(observations), Ok(event)) = (&observations, &event) {
            observations.follow(event);
        }
        // The map is only touched in single insert/remove calls: a poisoned lock holds nothing half-done.
        let mut seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = match event {
            Ok(watcher::Event::Apply(pipeline) | watcher::Event::InitApply(pipeline)) => {
                let version = seen_version(&pipeline);
                (seen.insert(key_of(&pipeline), version) != Some(version)).then_some(Ok(pipeline))
            }
            Ok(watcher::Event::Delete(pipeline)) => {
                seen.remove(&key_of(&pipeline));
                Some(Ok(pipeline))
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
            Err(error) => Some(Err(error)),
        };
        futures::future::ready(out)
    })
}

/// Providers as they first appear: objects applied before their Provider (a whole folder applied at once) wake
/// when it is created instead of after `PROVIDER_MISSING_REQUEUE`, which stays the fallback. Later changes of a
/// Provider do not wake anything (its status updates would otherwise reconcile every object naming it); a re-list
/// after a watch error finds them seen. A Provider deleted and recreated while the watch was down is missed and
/// found by the fallback.
pub fn provider_arrivals(
    ctx: &Context,
) -> impl futures::Stream<Item = Result<Provider, watcher::Error>> + Send + 'static {
    let seen: std::sync::Mutex<std::collections::HashSet<NamespacedName>> = std::sync::Mutex::default();
    let watch = super::tolerant::watch::<Provider>(ctx, watcher::Config::default());
    watch.filter_map(move |event| {
        // The set is only touched in single insert/remove calls: a poisoned lock holds nothing half-done.
        let mut seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = match event {
            Ok(watcher::Event::Apply(provider) | watcher::Event::InitApply(provider)) => seen
                .insert(NamespacedName::new(
                    provider.namespace().unwrap_or_default(),
                    provider.name_any(),
                ))
                .then_some(Ok(provider)),
            Ok(watcher::Event::Delete(provider)) => {
                seen.remove(&NamespacedName::new(
                    provider.namespace().unwrap_or_default(),
                    provider.name_any(),
                ));
                None
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
            Err(error) => Some(Err(error)),
        };
        futures::future::ready(out)
    })
}

/// Reads the RunConfiguration of a dependency key (`ns/name`).
pub async fn get_run_configuration(
    ctx: &Context,
    key: &str,
) -> Result<Option<RunConfiguration>, ControllerError> {
    let Some((namespace, name)) = key.split_once('/') else {
        return Ok(None);
    };
    let api: Api<RunConfiguration> = Api::namespaced(ctx.client.clone(), namespace);
    get_opt(&api, name, "RunConfiguration").await
}

fn resource_ref<K: SynchronizedKind>(object: &K) -> ResourceRef {
    ResourceRef::new(K::KIND, object.namespace().unwrap_or_default(), object.name_any())
}

/// One reconcile of a Pipeline, Run, RunSchedule or Experiment.
pub async fn reconcile<K: SynchronizedKind>(
    cached: Arc<K>,
    ctx: Arc<Context>,
) -> Result<Action, ControllerError> {
    let namespace = cached.namespace().unwrap_or_default();
    let name = cached.name_any();
    instrumented(&ctx, K::KIND.as_str(), &namespace, &name, async {
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
        let version = cached.resource_version();
        // Plan on the cached copy when it is as fresh as a read for our purpose (issue 18, decision 0004):
        // - it carries our last write;
        // - it lacks our finalizer and is not being deleted: the plan's first command is then the finalizer patch
        //   (every write carries the copy's resourceVersion), so a stale copy fails with a conflict before anything
        //   else happens.
        // A copy at one of our writes that a later write of ours superseded is skipped: that write's watch event
        // reconciles the resource.
        let unclaimed =
            cached.meta().deletion_timestamp.is_none() && !cached.finalizers().iter().any(|f| f == FINALIZER);
        let fresh = if ctx
            .own_writes
            .take_current(K::KIND, &namespace, &name, version.as_deref())
            || unclaimed
        {
            Some(Arc::unwrap_or_clone(cached))
        } else if ctx
            .own_writes
            .superseded(K::KIND, &namespace, &name, version.as_deref())
        {
            return Ok(Action::await_change());
        } else {
            get_opt(&api, &name, K::KIND.as_str()).await?
        };
        let Some(object) = fresh else {
            ctx.own_writes.forget(K::KIND, &namespace, &name);
            ctx.metrics
                .resource_state(K::KIND.as_str(), &format!("{namespace}/{name}"), None);
            return Ok(Action::await_change());
        };
        let provider_name = object.provider().clone();
        let provider = if provider_name.name.is_empty() {
            None
        } else {
            ctx.providers.get(&ctx.client, &provider_name).await?
        };
        let reference = resource_ref(&object);
        let outcomes = ctx.executor.outcomes(&reference).await?;
        let inputs = K::gather(&ctx, &object).await?;
        let observed = Observed {
            resource: &object,
            provider: provider.as_ref(),
            outcomes: &outcomes,
            now: now(),
            finds_by_identity: ctx.executor.finds_by_identity(),
        };
        let plan = K::plan(&observed, &inputs);
        apply(&ctx, &api, object.clone(), &reference, plan).await
    })
    .await
}

/// Applies a plan's commands in order; the first error stops the rest (docs/controllers.md).
async fn apply<K: SynchronizedKind>(
    ctx: &Context,
    api: &Api<K>,
    mut object: K,
    reference: &ResourceRef,
    plan: Plan<ResourceCommand<K::Status>>,
) -> Result<Action, ControllerError> {
    let name = object.name_any();
    let key = format!("{}/{}", reference.namespace, reference.name);
    for command in plan.commands {
        match command {
            ResourceCommand::AddFinalizer => {
                let mut finalizers = object.finalizers().to_vec();
                if !finalizers.iter().any(|f| f == FINALIZER) {
                    finalizers.push(FINALIZER.to_string());
                }
                object = patch_metadata(
                    api,
                    &object,
                    json!({ "finalizers": finalizers }),
                    "adding the finalizer",
                )
                .await?;
                wrote(ctx, reference, &object);
                tracing::debug!("finalizer added");
            }
            ResourceCommand::RemoveFinalizer => {
                let finalizers: Vec<&String> =
                    object.finalizers().iter().filter(|f| *f != FINALIZER).collect();
                patch_metadata(
                    api,
                    &object,
                    json!({ "finalizers": finalizers }),
                    "releasing the finalizer",
                )
                .await?;
                ctx.own_writes
                    .forget(K::KIND, &reference.namespace, &reference.name);
                ctx.metrics.resource_state(K::KIND.as_str(), &key, None);
                tracing::info!("finalizer released");
                return Ok(Action::await_change());
            }
            ResourceCommand::SetRetry(retry) => {
                let value = retry.map(|r| r.to_annotation());
                let annotations = json!({ kfp_core::reconcile::generic::RETRY_ANNOTATION: value });
                object = patch_metadata(
                    api,
                    &object,
                    json!({ "annotations": annotations }),
                    "recording the retry",
                )
                .await?;
                wrote(ctx, reference, &object);
            }
            ResourceCommand::SetStatus { status, event } => {
                let state = status.synchronization_state();
                *object.status_mut() = Some(status);
                object = replace_status(api, &object).await?;
                wrote(ctx, reference, &object);
                ctx.metrics
                    .resource_state(K::KIND.as_str(), &key, Some(state.as_str()));
                if let Some(event) = event {
                    tracing::info!(state = state.as_str(), message = %event.message, "state changed");
                    ctx.record(&object, &event).await;
                }
            }
            ResourceCommand::Submit(operation) => {
                let action = operation.action.name();
                ctx.executor.submit(operation).await?;
                tracing::info!(action, "operation submitted");
            }
            ResourceCommand::MarkConsumed { keys } => {
                ctx.executor.mark_consumed(reference, &keys).await?;
            }
            ResourceCommand::RecordEvent(event) => ctx.record(&object, &event).await,
            ResourceCommand::DeleteResource => {
                api.delete(&name, &DeleteParams::default())
                    .await
                    .map_err(|e| ControllerError::kube(format!("deleting {key}"), e))?;
                ctx.own_writes
                    .forget(K::KIND, &reference.namespace, &reference.name);
                tracing::info!("deleted after its completion TTL");
                return Ok(Action::await_change());
            }
        }
    }
    Ok(action(plan.requeue_after))
}

/// Remembers the version our write left `object` at (see [`super::own_writes`]).
fn wrote<K: SynchronizedKind>(ctx: &Context, reference: &ResourceRef, object: &K) {
    ctx.own_writes.record(
        K::KIND,
        &reference.namespace,
        &reference.name,
        object.meta().resource_version.as_deref(),
    );
}

/// A JSON merge patch of `metadata` that only applies to the version we planned on.
async fn patch_metadata<K: SynchronizedKind>(
    api: &Api<K>,
    object: &K,
    mut metadata: serde_json::Value,
    what: &str,
) -> Result<K, ControllerError> {
    metadata["resourceVersion"] = json!(object.resource_version());
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": metadata })),
    )
    .await
    .map_err(|e| ControllerError::kube(format!("{what} of {}", object.name_any()), e))
}

/// The watcher configuration of Workflows owned by objects of `kind`.
fn workflow_watch(kind: ResourceKind) -> watcher::Config {
    watcher::Config::default().labels(&format!(
        "{}={}",
        kfp_core::resources::labels::OWNER_KIND,
        kind.as_str()
    ))
}

/// Builds the controller of `K` with its watches (without the Run-specific ones).
fn controller<K: SynchronizedKind>(ctx: &Context, concurrency: u16, ready: ReadinessFlag) -> Controller<K> {
    let cleanup_ctx = Arc::new(ctx.clone());
    let deleted = move |object: &K| {
        if super::bypassed::bypassed(object) {
            super::bypassed::clean_up(cleanup_ctx.clone(), object.clone());
        }
    };
    let controller =
        super::controller_with_deletions::<K>(ctx, watcher::Config::default().any_semantic(), ready, deleted)
            .with_config(kube::runtime::controller::Config::default().concurrency(concurrency));
    let objects = controller.store();
    let mut controller = controller.watches_stream(provider_arrivals(ctx), move |provider: Provider| {
        let key = NamespacedName::new(provider.namespace().unwrap_or_default(), provider.name_any());
        objects
            .state()
            .into_iter()
            .filter(|object| object.provider() == &key)
            .map(|object| ObjectRef::from_obj(object.as_ref()))
            .collect::<Vec<_>>()
    });
    if ctx.completions.is_some() {
        controller = controller.reconcile_on(completion_triggers::<K>(ctx, K::KIND));
    } else {
        let workflows = ctx.watched_dynamic(&argo::workflow_api_resource());
        controller = controller.watches_with(
            workflows,
            argo::workflow_api_resource(),
            workflow_watch(K::KIND),
            |workflow| {
                argo::owner_of(&workflow)
                    .filter(|owner| owner.kind == K::KIND)
                    .map(|owner| ObjectRef::new(&owner.name).within(&owner.namespace))
            },
        );
    }
    controller
}

/// Runs the controller of a simple kind (Pipeline, RunSchedule, Experiment) until `shutdown`.
pub async fn run_simple<K: SynchronizedKind>(
    ctx: Arc<Context>,
    concurrency: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ready: ReadinessFlag,
) {
    let controller = controller::<K>(&ctx, concurrency, ready);
    let store = controller.store();
    let shutdown = share_shutdown(shutdown);
    let run = controller
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile::<K>, error_policy, ctx)
        .for_each(|result| async move { log_run_result(K::KIND.as_str(), result) });
    drive(store, shutdown, run).await;
}

/// Runs the Run controller until `shutdown`: also watches Pipelines and the RunConfigurations Runs read.
pub async fn run_runs(
    ctx: Arc<Context>,
    concurrency: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ready: ReadinessFlag,
) {
    let controller = controller::<Run>(&ctx, concurrency, ready);
    let runs = controller.store();
    let store = runs.clone();
    let shutdown = share_shutdown(shutdown);
    let runs_of_pipeline = runs.clone();
    let run = controller
        .watches_stream(
            pipeline_versions_observed(&ctx, Some(ctx.pipelines.clone())),
            move |pipeline: Pipeline| {
                let namespace = pipeline.namespace().unwrap_or_default();
                let name = pipeline.name_any();
                runs_of_pipeline
                    .state()
                    .into_iter()
                    .filter(|run| {
                        run.namespace().as_deref() == Some(namespace.as_str())
                            && run.spec.pipeline.name == name
                    })
                    .map(|run| ObjectRef::from_obj(run.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .watches_stream(
            super::tolerant::touched::<RunConfiguration>(&ctx, watcher::Config::default()),
            move |rc: RunConfiguration| {
                let key = format!("{}/{}", rc.namespace().unwrap_or_default(), rc.name_any());
                runs.state()
                    .into_iter()
                    .filter(|run| {
                        let namespace = run.namespace().unwrap_or_default();
                        referenced_run_configurations(&run.spec.parameters, &[], &namespace).contains(&key)
                    })
                    .map(|run| ObjectRef::from_obj(run.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile::<Run>, error_policy, ctx)
        .for_each(|result| async move { log_run_result("run", result) });
    drive(store, shutdown, run).await;
}
