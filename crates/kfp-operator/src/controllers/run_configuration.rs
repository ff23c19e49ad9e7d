//! The RunConfiguration controller (docs/controllers.md, "RunConfigurations"; planned by
//! `kfp_core::reconcile::run_configuration`).
//!
//! Watches: RunConfigurations (all changes, status included: a planning step that writes status and stops relies
//! on it), owned RunSchedules and Runs, Pipelines (by `spec.run.pipeline`, same namespace), and the
//! RunConfigurations a RunConfiguration depends on (parameters and `triggers.runConfigurations`), so a dependency's
//! new succeeded run reaches its dependants.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use kfp_core::reconcile::dependencies::referenced_run_configurations;
use kfp_core::reconcile::run_configuration::{Command, Observed, plan};
use kfp_core::resources::labels;
use kfp_core::resources::v1beta1::{Conditions, Pipeline, Run, RunConfiguration, RunSchedule};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::generic::{get_run_configuration, pipeline_observation};
use super::{Context, ControllerError, error_policy, get_opt, instrumented, now, replace_status};
use crate::health::ReadinessFlag;

const CONTROLLER: &str = "runconfiguration";

/// Every RunConfiguration `rc` reads (parameter and trigger references), as `ns/name` keys.
pub fn dependencies_of(rc: &RunConfiguration) -> std::collections::BTreeSet<String> {
    let namespace = rc.namespace().unwrap_or_default();
    referenced_run_configurations(
        &rc.spec.run.parameters,
        &rc.spec.triggers.run_configurations,
        &namespace,
    )
}

fn controlled_by<K: Resource>(child: &K, owner_uid: &str) -> bool {
    child
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.uid == owner_uid)
}

/// One reconcile of a RunConfiguration.
pub async fn reconcile(object: Arc<RunConfiguration>, ctx: Arc<Context>) -> Result<Action, ControllerError> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    instrumented(&ctx, CONTROLLER, &namespace, &name, async {
        let api: Api<RunConfiguration> = Api::namespaced(ctx.client.clone(), &namespace);
        let Some(rc) = get_opt(&api, &name, "RunConfiguration").await? else {
            ctx.metrics
                .resource_state(CONTROLLER, &format!("{namespace}/{name}"), None);
            return Ok(Action::await_change());
        };
        let uid = rc.uid().unwrap_or_default();

        let pipeline = if rc.spec.run.pipeline.version.is_empty() {
            let pipelines: Api<Pipeline> = Api::namespaced(ctx.client.clone(), &namespace);
            get_opt(&pipelines, &rc.spec.run.pipeline.name, "Pipeline")
                .await?
                .map(|p| pipeline_observation(&p))
        } else {
            None
        };
        let mut run_configurations = BTreeMap::new();
        for key in dependencies_of(&rc) {
            if let Some(dependency) = get_run_configuration(&ctx, &key).await? {
                run_configurations.insert(key, dependency.status.unwrap_or_default());
            }
        }
        let schedules: Api<RunSchedule> = Api::namespaced(ctx.client.clone(), &namespace);
        let runs_api: Api<Run> = Api::namespaced(ctx.client.clone(), &namespace);
        let run_schedules =
            super::tolerant::list::<RunSchedule>(&ctx.client, &namespace, &ListParams::default())
                .await
                .map_err(|e| ControllerError::kube(format!("listing the RunSchedules of {name}"), e))?
                .into_iter()
                .filter(|s| controlled_by(s, &uid))
                .collect();
        let owned_runs = ListParams::default().labels(&format!("{}={name}", labels::RUN_CONFIGURATION_NAME));
        let runs = super::tolerant::list::<Run>(&ctx.client, &namespace, &owned_runs)
            .await
            .map_err(|e| ControllerError::kube(format!("listing the Runs of {name}"), e))?
            .into_iter()
            .filter(|r| controlled_by(r, &uid))
            .collect();

        let observed = Observed {
            run_configuration: rc,
            pipeline,
            run_configurations,
            run_schedules,
            runs,
            now: now(),
        };
        let plan = plan(&observed);
        let mut rc = observed.run_configuration;
        for command in plan.commands {
            match command {
                Command::SetStatus { status, event } => {
                    let state = status.synchronization_state();
                    rc.status = Some(status);
                    rc = replace_status(&api, &rc).await?;
                    ctx.metrics.resource_state(
                        CONTROLLER,
                        &format!("{namespace}/{name}"),
                        Some(state.as_str()),
                    );
                    if let Some(event) = event {
                        tracing::info!(state = state.as_str(), message = %event.message, "state changed");
                        ctx.record(&rc, &event).await;
                    }
                }
                Command::RecordEvent(event) => ctx.record(&rc, &event).await,
                Command::CreateRunSchedule(schedule) => {
                    let created = schedules
                        .create(&PostParams::default(), &schedule)
                        .await
                        .map_err(|e| {
                            ControllerError::kube(format!("creating a RunSchedule for {name}"), e)
                        })?;
                    tracing::info!(run_schedule = %created.name_any(), "RunSchedule created");
                }
                Command::DeleteRunSchedule { name: schedule } => {
                    match schedules.delete(&schedule, &DeleteParams::background()).await {
                        Ok(_) => tracing::info!(run_schedule = %schedule, "RunSchedule deleted"),
                        Err(kube::Error::Api(status)) if status.code == 404 => {}
                        Err(e) => {
                            return Err(ControllerError::kube(
                                format!("deleting RunSchedule {schedule}"),
                                e,
                            ));
                        }
                    }
                }
                Command::CreateRun(run) => {
                    let created = runs_api
                        .create(&PostParams::default(), &run)
                        .await
                        .map_err(|e| ControllerError::kube(format!("creating a Run for {name}"), e))?;
                    tracing::info!(run = %created.name_any(), "Run triggered");
                }
            }
        }
        Ok(super::action(plan.requeue_after))
    })
    .await
}

/// Runs the RunConfiguration controller until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    concurrency: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ready: ReadinessFlag,
) {
    let controller =
        super::controller_with_readiness::<RunConfiguration>(&ctx, watcher::Config::default(), ready)
            .with_config(kube::runtime::controller::Config::default().concurrency(concurrency));
    let by_pipeline = controller.store();
    let by_dependency = controller.store();
    let store = controller.store();
    let shutdown = super::share_shutdown(shutdown);
    let run = controller
        .owns_stream(super::tolerant::touched::<RunSchedule>(
            &ctx,
            watcher::Config::default(),
        ))
        .owns_stream(super::tolerant::touched::<Run>(&ctx, watcher::Config::default()))
        .watches_stream(
            super::generic::pipeline_versions(&ctx),
            move |pipeline: Pipeline| {
                let namespace = pipeline.namespace().unwrap_or_default();
                let name = pipeline.name_any();
                by_pipeline
                    .state()
                    .into_iter()
                    .filter(|rc| {
                        rc.namespace().as_deref() == Some(namespace.as_str())
                            && rc.spec.run.pipeline.name == name
                    })
                    .map(|rc| ObjectRef::from_obj(rc.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .watches_stream(
            super::tolerant::touched::<RunConfiguration>(&ctx, watcher::Config::default()),
            move |dependency: RunConfiguration| {
                let key = format!(
                    "{}/{}",
                    dependency.namespace().unwrap_or_default(),
                    dependency.name_any()
                );
                by_dependency
                    .state()
                    .into_iter()
                    .filter(|rc| dependencies_of(rc).contains(&key))
                    .map(|rc| ObjectRef::from_obj(rc.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move { super::log_run_result(CONTROLLER, result) });
    super::drive(store, shutdown, run).await;
}
