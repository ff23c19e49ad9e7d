//! The Provider controller (docs/controllers.md, "Providers"; planned by `kfp_core::reconcile::provider`): the
//! provider service's Deployment and Service, applied with server-side apply (field manager `kfp-operator`).
//!
//! Watches: Providers, and the Deployments and Services they control.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kfp_core::reconcile::provider::{
    APP_LABEL, Command, FIELD_MANAGER, MANAGED_BY_LABEL, Observed, Subresource, plan, plan_apply_failure,
    resource_name,
};
use kfp_core::resources::v1beta1::{Conditions, Provider};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::{Context, ControllerError, error_policy, get_opt, instrumented, now, replace_status};
use crate::health::ReadinessFlag;

const CONTROLLER: &str = "provider";

fn controlled_by<K: Resource>(child: &K, owner_uid: &str) -> bool {
    child
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.uid == owner_uid)
}

/// One reconcile of a Provider.
pub async fn reconcile(object: Arc<Provider>, ctx: Arc<Context>) -> Result<Action, ControllerError> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    instrumented(&ctx, CONTROLLER, &namespace, &name, async {
        let api: Api<Provider> = Api::namespaced(ctx.client.clone(), &namespace);
        let Some(provider) = get_opt(&api, &name, "Provider").await? else {
            ctx.metrics
                .resource_state(CONTROLLER, &format!("{namespace}/{name}"), None);
            return Ok(Action::await_change());
        };
        let uid = provider.uid().unwrap_or_default();
        let selector = ListParams::default().labels(&format!("{APP_LABEL}={}", resource_name(&provider)));
        let deployments_api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
        let services_api: Api<Service> = Api::namespaced(ctx.client.clone(), &namespace);
        let deployments = deployments_api
            .list(&selector)
            .await
            .map_err(|e| ControllerError::kube(format!("listing the Deployments of Provider {name}"), e))?
            .items
            .into_iter()
            .filter(|d| controlled_by(d, &uid))
            .collect();
        let services = services_api
            .list(&selector)
            .await
            .map_err(|e| ControllerError::kube(format!("listing the Services of Provider {name}"), e))?
            .items
            .into_iter()
            .filter(|s| controlled_by(s, &uid))
            .collect();
        let observed = Observed {
            provider,
            deployments,
            services,
            now: now(),
        };
        let values = ctx.config.spec.provider_values(&ctx.pod.namespace);
        let plan = match plan(&observed, &values) {
            Ok(plan) => plan,
            Err(error) => {
                // Operator misconfiguration: nothing a retry can fix until the operator's configuration changes.
                tracing::error!(%error, "cannot build the provider Deployment");
                return Ok(Action::await_change());
            }
        };
        let apply = PatchParams::apply(FIELD_MANAGER).force();
        let mut provider = observed.provider.clone();
        for command in plan.commands {
            let failed = match command {
                Command::ApplyDeployment(deployment) => deployments_api
                    .patch(
                        &resource_name(&provider),
                        &apply,
                        &Patch::Apply(deployment.as_ref()),
                    )
                    .await
                    .err()
                    .map(|e| (Subresource::Deployment, e)),
                Command::ApplyService(service) => services_api
                    .patch(&resource_name(&provider), &apply, &Patch::Apply(service.as_ref()))
                    .await
                    .err()
                    .map(|e| (Subresource::Service, e)),
                Command::DeleteDeployment { name } => {
                    delete_ignoring_missing(&deployments_api, &name, "Deployment").await?;
                    None
                }
                Command::DeleteService { name } => {
                    delete_ignoring_missing(&services_api, &name, "Service").await?;
                    None
                }
                Command::SetStatus { status, event } => {
                    let state = status.synchronization_state();
                    provider.status = Some(status);
                    provider = replace_status(&api, &provider).await?;
                    ctx.metrics.resource_state(
                        CONTROLLER,
                        &format!("{namespace}/{name}"),
                        Some(state.as_str()),
                    );
                    if let Some(event) = event {
                        tracing::info!(state = state.as_str(), message = %event.message, "state changed");
                        ctx.record(&provider, &event).await;
                    }
                    None
                }
            };
            if let Some((subresource, error)) = failed {
                tracing::warn!(%error, ?subresource, "server-side apply failed");
                let observed = Observed {
                    provider: provider.clone(),
                    ..observed.clone()
                };
                for command in plan_apply_failure(&observed, subresource).commands {
                    if let Command::SetStatus { status, event } = command {
                        provider.status = Some(status);
                        provider = replace_status(&api, &provider).await?;
                        if let Some(event) = event {
                            ctx.record(&provider, &event).await;
                        }
                    }
                }
                return Err(ControllerError::kube(
                    format!("applying the provider {subresource:?}"),
                    error,
                ));
            }
        }
        Ok(super::action(plan.requeue_after))
    })
    .await
}

async fn delete_ignoring_missing<K>(api: &Api<K>, name: &str, what: &str) -> Result<(), ControllerError>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {
            tracing::info!(name, what, "legacy object deleted");
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(ControllerError::kube(format!("deleting {what} {name}"), e)),
    }
}

/// Runs the Provider controller until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    concurrency: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ready: ReadinessFlag,
) {
    let config = watcher::Config::default();
    // The first Provider controller of a context fills the cache the other controllers read.
    let controller = match ctx.providers.take_writer() {
        Some(writer) => super::controller_with_store(&ctx, config, ready, ctx.providers.store(), writer),
        None => super::controller_with_readiness(&ctx, config, ready),
    }
    .with_config(kube::runtime::controller::Config::default().concurrency(concurrency));
    let store = controller.store();
    let shutdown = super::share_shutdown(shutdown);
    let managed = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={FIELD_MANAGER}"));
    let run = controller
        .owns(ctx.watched::<Deployment>(), managed.clone())
        .owns(ctx.watched::<Service>(), managed)
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move { super::log_run_result(CONTROLLER, result) });
    super::drive(store, shutdown, run).await;
}
